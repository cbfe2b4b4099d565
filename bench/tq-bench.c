/* SPDX-License-Identifier: MIT */
/*
 * tq-bench.c - the driver of tq-bench: command line and the scenario
 * families. It measures tq against the queues users would pick instead (a
 * bare ck_ring pass-through, a POSIX message queue, a pipe, redis,
 * beanstalkd), same workload, same run, so that every figure can be read as
 * a ratio taken on one machine at one time. tq-spin is tq again, with
 * workers that poll for --spin-us (default 1 ms) before sleeping.
 *
 * A scenario family expands into runs (run.c), one per point of its sweep
 * and per system:
 *   throughput  end-to-end tasks/s, P producers, W workers
 *   latency     submit -> start latency at --rate
 *   submit      throughput and submission rate by payload: 64 B, 1, 10, 100 KiB
 *   workers     throughput with 1, 2, 5, 10, 20, 64 workers
 *   ops         latency of each single operation (tq: ops.c)
 *   depth       throughput and latency with 100, 1k, 10k, 1M tasks pending
 *   clients     10, 50, 100 producer processes
 *   priority    per-level latency with every level loaded, strict and weighted
 *   burst       10k tasks at once: time to drain, latency during the drain
 *   sustained   --rate for --sustain seconds, memory of every process sampled
 *   race        100 workers over 10k tasks: duplicates and losses must be 0
 *   durable     throughput with the journal: durability none, async, sync
 *   recovery    tqd start -> N journaled tasks ready again (durable.c)
 *   failover    a worker SIGKILLed holding leases -> its tasks ready again
 * `tq-bench report` (report.c) runs the suite and writes docs/PERFORMANCE.md.
 */
#include "driver.h"
#include "tqd.h"

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <tq/tq.h>

const char *const scenario_name[SC_COUNT] = {
	"throughput", "latency", "race", "submit", "workers", "ops", "depth",
	"clients", "priority", "burst", "sustained", "durable", "recovery", "failover",
};
const struct bench_sys *const systems[] = {
	&bench_sys_tq, &bench_sys_tq_spin, &bench_sys_raw_ring, &bench_sys_posix_mq, &bench_sys_pipe,
	&bench_sys_redis, &bench_sys_beanstalkd, &bench_sys_beanstalkd_binlog,
	&bench_sys_beanstalkd_f0,
};
const unsigned nsystems = sizeof(systems) / sizeof(systems[0]);
#define NSYS (sizeof(systems) / sizeof(systems[0]))

volatile sig_atomic_t g_stop;
char g_machine_model[256];
char g_kernel[128];
long g_nproc;

static void on_signal(int sig)
{
	g_stop = sig;
}

/* ---- small helpers ----------------------------------------------------- */

void die(const char *fmt, ...)
{
	va_list ap;

	fputs("tq-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t parse_count(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || v > 1e15)
		die("bad %s: %s", what, s);
	switch (*end) {
	case 'k': case 'K': v *= 1e3; end++; break;
	case 'm': case 'M': v *= 1e6; end++; break;
	case 'g': case 'G': v *= 1e9; end++; break;
	default: break;
	}
	if (*end)
		die("bad %s: %s", what, s);
	return (uint64_t)(v + 0.5);
}

void read_machine(void)
{
	struct utsname u;
	char line[512];
	FILE *f;

	g_nproc = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(g_machine_model, sizeof(g_machine_model), "unknown");
	if ((f = fopen("/proc/cpuinfo", "r"))) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');

				if (c) {
					c++;
					while (*c == ' ' || *c == '\t')
						c++;
					c[strcspn(c, "\n")] = 0;
					snprintf(g_machine_model, sizeof(g_machine_model), "%s", c);
				}
				break;
			}
		}
		fclose(f);
	}
	snprintf(g_kernel, sizeof(g_kernel), "%s", uname(&u) == 0 ? u.release : "unknown");
}

const char *compiler(void)
{
#if defined(__clang__)
	return "clang " __clang_version__;
#elif defined(__GNUC__)
	return "gcc " __VERSION__;
#else
	return "unknown";
#endif
}

void add_note(struct result *res, const char *s)
{
	size_t n = strlen(res->note);

	if (!s || !*s)
		return;
	snprintf(res->note + n, sizeof(res->note) - n, "%s%s", n ? "; " : "", s);
}

/* Remove what an earlier tq-bench killed with SIGKILL left in /dev/shm:
 * names of ours whose process is gone. */
static void sweep_stale(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300];
		int pid;

		if (sscanf(e->d_name, "tq-bench-%d-", &pid) != 1 || pid <= 0 || pid == getpid())
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
		unlink(path);
	}
	closedir(d);
}
/* ---- command line ------------------------------------------------------ */

static void usage(FILE *f)
{
	fputs(
"usage: tq-bench [options]\n"
"       tq-bench report [--short|--long] [--out DIR] [--sections runs,durability,recovery]\n"
"  --scenario LIST     throughput, latency, race, submit, workers, ops, depth, clients,\n"
"                      priority, burst, sustained, durable, recovery, failover, or all\n"
"                      (comma-separated; default throughput; all = the first eleven)\n"
"  --system LIST       tq, tq-spin, raw-ring, posix-mq, pipe, redis, beanstalkd,\n"
"                      beanstalkd-binlog, beanstalkd-f0, all (all but the two beanstalkd\n"
"                      binlog variants; tq-spin only in the latency scenario) or durable\n"
"                      (those two); default tq; same workload on each. A system whose\n"
"                      program is missing gives an unsupported row saying so. tq-spin is\n"
"                      tq with workers that poll 1000 us (--spin-us) before sleeping:\n"
"                      no wake-up in the latency, a CPU kept busy between tasks. Named\n"
"                      in the list, it runs in every scenario (ops, recovery, failover:\n"
"                      unsupported rows, they time tq's own calls and tqd)\n"
"  --producers P       producer processes (default 1)\n"
"  --workers W         worker processes (default 1)\n"
"  --tasks N           measured tasks (default 1M; latency: 5 s at --rate); k/M suffixes\n"
"  --payload B         payload bytes, >= 16 (default 64)\n"
"  --prefill N         tasks pending, in the same queue and level, before the start; the\n"
"                      run then measures N more tasks and leaves the depth in place\n"
"  --rate R            latency: submits per second over all producers (default 10000)\n"
"  --spin              latency: sleep to 100 us before each send time, spin the rest\n"
"  --batch K           tasks per submit/lease call, 1..64 (default 1)\n"
"  --queues Q          tq: spread tasks over Q queues (default 1)\n"
"  --levels L          spread tasks over L priority levels; tq segment gets L levels\n"
"  --policy P          tq lease policy: strict or weighted (default strict)\n"
"  --warmup N          tasks before the measured ones (default 5%, at most 100k; latency 1k)\n"
"  --sample K          stamp one task in K for latency (default 64; latency 1)\n"
"  --touch             workers read the whole payload\n"
"  --pin               pin producers and workers to different CPUs\n"
"  --duration S        hard bound of one run in seconds (default 300)\n"
"  --race-workers N    race: workers (default 100)\n"
"  --race-producers N  race: producers (default 4)\n"
"  --race-tasks N      race: tasks (default 10000)\n"
"  --bpt-tasks K       tasks held to measure bytes per task (default 1M; 0 = skip)\n"
"  --spin-ns NS        raw-ring: worker spins this long before sleeping (default 20000,\n"
"                      as tq's lease does)\n"
"  --spin-us N         tq, tq-spin: workers' tq_lease_opts.spin_us, polling N us before\n"
"                      sleeping, 0..1000000 (default: tq 0 = libtq's adaptive spin of up\n"
"                      to 20 us while tasks keep coming; tq-spin 1000)\n"
"  --capacity N        tq: segment capacity (default: max(1Mi, prefill + 64Ki))\n"
"  --ring-slots N      raw-ring: slots per producer beyond the prefill (default 16384,\n"
"                      at most 4 MiB of payload)\n"
"  --mq-maxmsg N       posix-mq: queue depth (default prefill + 4096)\n"
"  --payloads LIST     submit: payload sizes (default 64,1k,10k,100k)\n"
"  --worker-counts L   workers: worker counts (default 1,2,5,10,20,64)\n"
"  --depths LIST       depth: tasks pending (default 100,1k,10k,1M)\n"
"  --clients LIST      clients: producer counts (default 10,50,100)\n"
"  --burst N           burst: tasks submitted at once (default 10000)\n"
"  --sustain S         sustained: seconds at --rate (default 10)\n"
"  --ops-rounds N      ops: rounds of each operation (default 20000)\n"
"  --durability LIST   durable: none, async, sync or all (default all: the three in one\n"
"                      run, with the async/none ratio); failover: async or sync runs it\n"
"                      on a journaled segment (default none)\n"
"  --flush-ms N        async: journal flush period (default libtq's, 10 ms)\n"
"  --journal-dir DIR   durable, recovery: journals go in a private directory under DIR\n"
"                      (default $TMPDIR, else /var/tmp; put it on the disk to measure)\n"
"  --tqd PATH          the tqd program (default $TQ_BENCH_TQD, else ../tools/tqd next to\n"
"                      tq-bench, else $PATH)\n"
"  --no-cold           recovery: skip the runs with the journal's page cache dropped\n"
"  --kills K           failover: workers killed, one after the other (default 200)\n"
"                      durable defaults: --tasks 1M (none, async), sync: 20k x batch (at\n"
"                      most 1M), other systems 5k; recovery: --tasks 1M; failover: --batch 16\n"
"  --repeat N          run everything N times (default 1)\n"
"  --json              one JSON object per run, one per line\n"
"  --help\n", f);
}

static void parse_list(const char *s, const char *const *names, unsigned nnames,
		       unsigned *out, unsigned *n, unsigned max, const char *what)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned i;

		/* Systems: "all" is every system but the two durable beanstalkd
		 * variants (slow: fsync), which "durable" adds. Scenarios: "all"
		 * is every one but durable, recovery and failover (disk, tqd). */
		if (strcmp(tok, "all") == 0 || (strcmp(tok, "durable") == 0 &&
						 strcmp(what, "system") == 0)) {
			int sys = strcmp(what, "system") == 0, durable = tok[0] == 'd';

			for (i = 0; i < nnames && *n < max; i++) {
				int d = sys && strncmp(names[i], "beanstalkd-", 11) == 0;

				if (!sys && i >= SC_DURABLE)
					continue;
				if (d == durable || (!sys && !durable))
					out[(*n)++] = i;
			}
			continue;
		}
		for (i = 0; i < nnames; i++)
			if (strcmp(tok, names[i]) == 0)
				break;
		if (i == nnames)
			die("unknown %s: %s", what, tok);
		if (*n < max)
			out[(*n)++] = i;
	}
}

static void parse_nums(const char *s, uint64_t *out, unsigned *n, const char *what)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= LIST_MAX)
			die("too many %s (at most %d)", what, LIST_MAX);
		out[(*n)++] = parse_count(tok, what);
	}
}

void parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		O_SCEN = 256, O_SYS, O_PROD, O_WORK, O_TASKS, O_PAYLOAD, O_PREFILL, O_RATE,
		O_SPIN, O_BATCH, O_QUEUES, O_LEVELS, O_POLICY, O_WARMUP, O_SAMPLE, O_TOUCH,
		O_PIN, O_DURATION, O_RW, O_RP, O_RT, O_BPT, O_SPINNS, O_CAP, O_RING, O_MQMAX,
		O_REPEAT, O_JSON, O_HELP, O_PAYLOADS, O_WCOUNTS, O_DEPTHS, O_CLIENTS, O_BURST,
		O_SUSTAIN, O_OPSR, O_DURABILITY, O_FLUSHMS, O_JDIR, O_TQD, O_NOCOLD, O_KILLS,
		O_SPINUS,
	};
	static const struct option lo[] = {
		{ "scenario", required_argument, 0, O_SCEN },
		{ "system", required_argument, 0, O_SYS },
		{ "producers", required_argument, 0, O_PROD },
		{ "workers", required_argument, 0, O_WORK },
		{ "tasks", required_argument, 0, O_TASKS },
		{ "payload", required_argument, 0, O_PAYLOAD },
		{ "prefill", required_argument, 0, O_PREFILL },
		{ "rate", required_argument, 0, O_RATE },
		{ "spin", no_argument, 0, O_SPIN },
		{ "batch", required_argument, 0, O_BATCH },
		{ "queues", required_argument, 0, O_QUEUES },
		{ "levels", required_argument, 0, O_LEVELS },
		{ "policy", required_argument, 0, O_POLICY },
		{ "warmup", required_argument, 0, O_WARMUP },
		{ "sample", required_argument, 0, O_SAMPLE },
		{ "touch", no_argument, 0, O_TOUCH },
		{ "pin", no_argument, 0, O_PIN },
		{ "duration", required_argument, 0, O_DURATION },
		{ "race-workers", required_argument, 0, O_RW },
		{ "race-producers", required_argument, 0, O_RP },
		{ "race-tasks", required_argument, 0, O_RT },
		{ "bpt-tasks", required_argument, 0, O_BPT },
		{ "spin-ns", required_argument, 0, O_SPINNS },
		{ "spin-us", required_argument, 0, O_SPINUS },
		{ "capacity", required_argument, 0, O_CAP },
		{ "ring-slots", required_argument, 0, O_RING },
		{ "mq-maxmsg", required_argument, 0, O_MQMAX },
		{ "repeat", required_argument, 0, O_REPEAT },
		{ "json", no_argument, 0, O_JSON },
		{ "payloads", required_argument, 0, O_PAYLOADS },
		{ "worker-counts", required_argument, 0, O_WCOUNTS },
		{ "depths", required_argument, 0, O_DEPTHS },
		{ "clients", required_argument, 0, O_CLIENTS },
		{ "burst", required_argument, 0, O_BURST },
		{ "sustain", required_argument, 0, O_SUSTAIN },
		{ "ops-rounds", required_argument, 0, O_OPSR },
		{ "durability", required_argument, 0, O_DURABILITY },
		{ "flush-ms", required_argument, 0, O_FLUSHMS },
		{ "journal-dir", required_argument, 0, O_JDIR },
		{ "tqd", required_argument, 0, O_TQD },
		{ "no-cold", no_argument, 0, O_NOCOLD },
		{ "kills", required_argument, 0, O_KILLS },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	const char *sys_names[NSYS];
	int c;

	for (unsigned i = 0; i < NSYS; i++)
		sys_names[i] = systems[i]->name;
	memset(o, 0, sizeof(*o));
	o->producers = o->workers = 1;
	o->payload = 64;
	o->rate = 10000;
	o->batch = 1;
	o->queues = 1;
	o->levels = 1;
	o->warmup = -1;
	o->sample = -1;
	o->duration = 300;
	o->race_workers = 100;
	o->race_producers = 4;
	o->race_tasks = 10000;
	o->bpt_tasks = -1;
	o->spin_ns = 20000;
	o->ring_slots = 16384;
	o->repeat = 1;
	o->sustain = 10;
	o->burst = 10000;
	o->ops_rounds = 20000;
	o->failover_reps = 200;

	optind = 0;              /* glibc: a full re-initialisation (report parses many) */
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_SCEN: parse_list(optarg, scenario_name, SC_COUNT, o->scen_list, &o->nscen, SC_COUNT * 2, "scenario"); break;
		case O_SYS: {
			char buf[256], *save = NULL, *tok;

			/* tq-spin by name runs everywhere; through "all", in
			 * the latency scenario only (run_suite). */
			snprintf(buf, sizeof(buf), "%s", optarg);
			for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				if (strcmp(tok, bench_sys_tq_spin.name) == 0)
					o->tq_spin_named = 1;
			parse_list(optarg, sys_names, NSYS, o->sys_list, &o->nsys, 32, "system");
			break;
		}
		case O_PROD: o->producers = (unsigned)parse_count(optarg, "producers"); break;
		case O_WORK: o->workers = (unsigned)parse_count(optarg, "workers"); break;
		case O_TASKS: o->tasks = parse_count(optarg, "tasks"); o->tasks_set = 1; break;
		case O_PAYLOAD: o->payload = (uint32_t)parse_count(optarg, "payload"); break;
		case O_PREFILL: o->prefill = parse_count(optarg, "prefill"); break;
		case O_RATE: o->rate = (double)parse_count(optarg, "rate"); break;
		case O_SPIN: o->spin_pace = 1; break;
		case O_BATCH: o->batch = (unsigned)parse_count(optarg, "batch"); break;
		case O_QUEUES: o->queues = (unsigned)parse_count(optarg, "queues"); break;
		case O_LEVELS: o->levels = (unsigned)parse_count(optarg, "levels"); o->levels_set = 1; break;
		case O_POLICY:
			if (strcmp(optarg, "strict") == 0)
				o->policy = 0;
			else if (strcmp(optarg, "weighted") == 0)
				o->policy = 1;
			else
				die("bad policy: %s", optarg);
			break;
		case O_WARMUP: o->warmup = (int64_t)parse_count(optarg, "warmup"); break;
		case O_SAMPLE: o->sample = (int64_t)parse_count(optarg, "sample"); break;
		case O_TOUCH: o->touch = 1; break;
		case O_PIN: o->pin = 1; break;
		case O_DURATION: {
			char *end;
			o->duration = strtod(optarg, &end);
			if (*end || !(o->duration > 0))
				die("bad duration: %s", optarg);
			break;
		}
		case O_RW: o->race_workers = (unsigned)parse_count(optarg, "race-workers"); break;
		case O_RP: o->race_producers = (unsigned)parse_count(optarg, "race-producers"); break;
		case O_RT: o->race_tasks = parse_count(optarg, "race-tasks"); break;
		case O_BPT: o->bpt_tasks = (int64_t)parse_count(optarg, "bpt-tasks"); break;
		case O_SPINNS: o->spin_ns = parse_count(optarg, "spin-ns"); break;
		case O_SPINUS: {
			uint64_t v = parse_count(optarg, "spin-us");

			if (v > TQ_SPIN_US_MAX)
				die("--spin-us must be 0..%u", TQ_SPIN_US_MAX);
			o->spin_us = (uint32_t)v;
			o->spin_us_set = 1;
			break;
		}
		case O_CAP: o->capacity = (uint32_t)parse_count(optarg, "capacity"); break;
		case O_RING: o->ring_slots = (uint32_t)parse_count(optarg, "ring-slots"); break;
		case O_MQMAX: o->mq_maxmsg = (long)parse_count(optarg, "mq-maxmsg"); break;
		case O_REPEAT: o->repeat = (unsigned)parse_count(optarg, "repeat"); break;
		case O_JSON: o->json = 1; break;
		case O_PAYLOADS: parse_nums(optarg, o->payload_list, &o->npayload, "payloads"); break;
		case O_WCOUNTS: parse_nums(optarg, o->workers_list, &o->nworkers, "worker-counts"); break;
		case O_DEPTHS: parse_nums(optarg, o->depth_list, &o->ndepth, "depths"); break;
		case O_CLIENTS: parse_nums(optarg, o->clients_list, &o->nclients, "clients"); break;
		case O_BURST: o->burst = parse_count(optarg, "burst"); break;
		case O_SUSTAIN: {
			char *end;
			o->sustain = strtod(optarg, &end);
			if (*end || !(o->sustain > 0))
				die("bad sustain: %s", optarg);
			break;
		}
		case O_OPSR: o->ops_rounds = parse_count(optarg, "ops-rounds"); break;
		case O_DURABILITY: {
			char buf[64], *save = NULL, *tok;

			snprintf(buf, sizeof(buf), "%s", optarg);
			o->ndur = 0;
			for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				unsigned d;

				if (!strcmp(tok, "all")) {
					o->dur_list[0] = 2;   /* TQ_DURABILITY_NONE */
					o->dur_list[1] = 0;   /* ASYNC */
					o->dur_list[2] = 1;   /* SYNC */
					o->ndur = 3;
					continue;
				}
				for (d = 0; d < 3 && strcmp(tok, durability_name(d)); d++)
					;
				if (d == 3)
					die("bad durability: %s (none, async, sync or all)", tok);
				if (o->ndur < 3)
					o->dur_list[o->ndur++] = d;
			}
			break;
		}
		case O_FLUSHMS:
			o->flush_ms = (uint32_t)parse_count(optarg, "flush-ms");
			if (o->flush_ms < 1 || o->flush_ms > 60000)
				die("--flush-ms must be 1..60000");
			break;
		case O_JDIR: o->journal_dir = optarg; break;
		case O_TQD: o->tqd = optarg; break;
		case O_NOCOLD: o->no_cold = 1; break;
		case O_KILLS:
			o->failover_reps = (unsigned)parse_count(optarg, "kills");
			if (o->failover_reps < 1 || o->failover_reps > 1000000)
				die("--kills must be 1..1000000");
			break;
		case O_HELP: case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument: %s", argv[optind]);
	if (!o->nscen)
		o->scen_list[o->nscen++] = SC_THROUGHPUT;
	if (!o->nsys)
		o->sys_list[o->nsys++] = 0;
	if (o->producers < 1 || o->producers > 1024 || o->workers < 1 || o->workers > 1024)
		die("--producers and --workers must be 1..1024");
	if (o->race_producers < 1 || o->race_producers > 1024 || o->race_workers < 1 ||
	    o->race_workers > 1024 || o->race_tasks < 1)
		die("--race-producers and --race-workers must be 1..1024, --race-tasks >= 1");
	if (o->payload < sizeof(struct task_head) || o->payload > (16u << 20))
		die("--payload must be %zu..%u", sizeof(struct task_head), 16u << 20);
	if (o->batch < 1 || o->batch > 64)
		die("--batch must be 1..64");
	if (o->queues < 1 || o->queues > 256 || o->levels < 1 || o->levels > 64)
		die("--queues must be 1..256, --levels 1..64");
	if (!(o->rate > 0))
		die("--rate must be > 0");
	if (o->repeat < 1)
		o->repeat = 1;
	if (o->ring_slots < 1)
		o->ring_slots = 1;
}

/* ---- the scenario families -------------------------------------------- */

static uint64_t dflt(uint64_t v, uint64_t d)
{
	return v ? v : d;
}

/* The runs of scenario sc: copies of o changed where the family says. */
static unsigned expand(const struct opts *o, enum scenario sc, struct opts *v)
{
	static const uint64_t payloads[] = { 64, 1024, 10240, 102400 };
	static const uint64_t wcounts[] = { 1, 2, 5, 10, 20, 64 };
	static const uint64_t depths[] = { 100, 1000, 10000, 1000000 };
	static const uint64_t clients[] = { 10, 50, 100 };
	const uint64_t *list = NULL;
	unsigned n = 1;

	v[0] = *o;
	/* Memory per task is measured by the throughput scenario only, unless
	 * asked for. */
	if (sc != SC_THROUGHPUT && o->bpt_tasks < 0)
		v[0].bpt_tasks = 0;
	switch (sc) {
	case SC_SUBMIT:
		list = o->npayload ? o->payload_list : payloads;
		n = o->npayload ? o->npayload : 4;
		break;
	case SC_WORKERS:
		list = o->nworkers ? o->workers_list : wcounts;
		n = o->nworkers ? o->nworkers : 6;
		break;
	case SC_DEPTH:
		list = o->ndepth ? o->depth_list : depths;
		n = o->ndepth ? o->ndepth : 4;
		break;
	case SC_CLIENTS:
		list = o->nclients ? o->clients_list : clients;
		n = o->nclients ? o->nclients : 3;
		break;
	case SC_PRIORITY:
		n = 2;
		break;
	case SC_DURABLE:
		n = o->ndur ? o->ndur : 3;
		break;
	default:
		break;
	}
	for (unsigned i = 0; i < n; i++) {
		struct opts *x = &v[i];

		*x = v[0];
		switch (sc) {
		case SC_SUBMIT:
			x->payload = (uint32_t)list[i];
			x->tasks = dflt(o->tasks, list[i] <= 1024 ? 200000 : list[i] <= 10240 ? 50000 : 20000);
			break;
		case SC_WORKERS:
			x->workers = (unsigned)list[i];
			x->tasks = dflt(o->tasks, 200000);
			break;
		case SC_DEPTH:
			x->prefill = list[i];
			x->tasks = dflt(o->tasks, 200000);
			break;
		case SC_CLIENTS:
			x->producers = (unsigned)list[i];
			x->tasks = dflt(o->tasks, 200000);
			break;
		case SC_PRIORITY:
			x->levels = o->levels_set ? o->levels : 8;
			x->levels_set = 1;
			x->policy = i;
			x->prefill = dflt(o->prefill, 10000);
			x->tasks = dflt(o->tasks, 100000);
			/* One in 1: a stride sharing a factor with the level
			 * count would stamp only some levels. */
			if (o->sample < 0)
				x->sample = 1;
			break;
		case SC_BURST:
			x->tasks = o->burst;
			x->warmup = 0;
			if (o->sample < 0)
				x->sample = 1;
			break;
		case SC_SUSTAINED:
			x->tasks = (uint64_t)(o->rate * o->sustain);
			if (x->duration < o->sustain * 2 + 30)
				x->duration = o->sustain * 2 + 30;
			break;
		case SC_DURABLE: {
			static const unsigned all3[3] = { 2, 0, 1 };   /* none, async, sync */
			unsigned d = o->ndur ? o->dur_list[i] : all3[i];

			x->dur_list[0] = d;
			x->ndur = 1;
			/* sync waits for the disk once per call: fewer tasks. */
			if (d == 1)
				x->tasks = dflt(o->tasks, o->batch * 20000u < 1000000u ? o->batch * 20000u : 1000000u);
			else
				x->tasks = dflt(o->tasks, 1000000);
			break;
		}
		default:
			break;
		}
		if (x->producers < 1 || x->producers > 1024 || x->workers < 1 || x->workers > 1024)
			die("%s: producers and workers must be 1..1024", scenario_name[sc]);
		if (x->payload < sizeof(struct task_head) || x->payload > (16u << 20))
			die("%s: payload must be %zu..%u", scenario_name[sc], sizeof(struct task_head),
			    16u << 20);
	}
	return n;
}

/* tq-spin that came with "all" runs in the latency scenario only: that is
 * the figure it is for (submit -> start without a wake-up). Elsewhere its
 * workers would burn up to a millisecond of CPU per idle lease: the race's
 * 100 polling workers would starve its producers on a small machine, and
 * the throughput scenarios, where a worker rarely waits, would only repeat
 * tq's figures at twice the run time. Named in --system, it runs. */
static int skip_sys(const struct opts *o, const struct bench_sys *sy, enum scenario sc)
{
	return sy == &bench_sys_tq_spin && !o->tq_spin_named && sc != SC_LATENCY;
}

unsigned run_suite(const struct opts *o, result_cb cb, void *arg)
{
	struct result *rs = calloc(o->nsys > 8 ? o->nsys : 8, sizeof(*rs));
	struct opts *v = calloc(LIST_MAX, sizeof(*v));
	struct result *drs = calloc(3 * 32, sizeof(*drs));
	unsigned seq = 0, failures = 0;

	if (!rs || !v || !drs)
		die("out of memory");
	for (unsigned rep = 0; rep < o->repeat && !g_stop; rep++) {
		for (unsigned s = 0; s < o->nscen && !g_stop; s++) {
			enum scenario sc = (enum scenario)o->scen_list[s];
			unsigned nv = expand(o, sc, v);

			if (sc == SC_OPS || sc == SC_RECOVERY || sc == SC_FAILOVER) {
				for (unsigned k = 0; k < o->nsys && !g_stop; k++) {
					const struct bench_sys *sy = systems[o->sys_list[k]];

					if (skip_sys(o, sy, sc))
						continue;
					unsigned n = sc == SC_OPS ? run_ops(o, sy, rs, 8)
						   : sc == SC_RECOVERY ? run_recovery(o, sy, rs, 8)
						   : run_failover(o, sy, rs, 8);

					for (unsigned j = 0; j < n; j++) {
						cb(o, &rs[j], arg);
						if (strcmp(rs[j].status, "ok") != 0 &&
						    strcmp(rs[j].status, "unsupported") != 0)
							failures++;
					}
				}
				continue;
			}
			unsigned nd = 0;

			for (unsigned i = 0; i < nv && !g_stop; i++) {
				for (unsigned k = 0; k < o->nsys && !g_stop; k++) {
					struct result *res = &rs[k];
					const struct bench_sys *sy = systems[o->sys_list[k]];

					if (skip_sys(o, sy, sc)) {
						res->status = "skipped";
						continue;
					}
					/* durable: the other systems have no durability
					 * setting: they run once, with the first. */
					if (sc == SC_DURABLE && i > 0 && !bench_is_tq(sy)) {
						res->status = "skipped";
						continue;
					}
					if (sc == SC_DURABLE && !bench_is_tq(sy) && !o->tasks_set) {
						/* fsync per put: a few thousand tasks are enough */
						struct opts w = v[i];

						w.tasks = 5000;
						run_one(&w, sy, sc, seq++, res);
					} else {
						run_one(&v[i], sy, sc, seq++, res);
					}
					cb(o, res, arg);
					if (sc == SC_DURABLE && nd < 3 * 32)
						drs[nd++] = *res;
					if (strcmp(res->status, "ok") != 0 &&
					    strcmp(res->status, "unsupported") != 0)
						failures++;
				}
				if (!o->json && !g_stop && sc != SC_DURABLE)
					print_ratios(rs, o->nsys);
			}
			if (sc == SC_DURABLE && !o->json && !g_stop)
				durable_summary(stdout, drs, nd, 0);
		}
	}
	free(rs);
	free(v);
	free(drs);
	return failures;
}

static void print_cb(const struct opts *o, const struct result *res, void *arg)
{
	(void)arg;
	if (o->json)
		print_json(stdout, o, res);
	else
		print_row(res);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa;
	unsigned failures;

	read_machine();
	sweep_stale();
	bench_journal_sweep(bench_journal_base(NULL));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (argc > 1 && strcmp(argv[1], "report") == 0)
		return report_main(argc - 1, argv + 1, argv[0]);
	parse_opts(argc, argv, &o);
	if (!o.json)
		print_header(&o);
	failures = run_suite(&o, print_cb, NULL);
	if (g_stop) {
		fprintf(stderr, "tq-bench: interrupted\n");
		return 128 + g_stop;
	}
	return failures ? 1 : 0;
}

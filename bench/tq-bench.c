/* SPDX-License-Identifier: MIT */
/*
 * tq-bench.c - the driver of tq-bench: command line, process orchestration
 * and reporting. It measures tq against two baselines in the same run (a
 * bare ck_ring pass-through in shared memory, and a POSIX message queue),
 * so that every figure can be read as a ratio taken on one machine at one
 * time.
 *
 * For each (scenario, system) it builds a `struct run`, maps a control
 * block shared with the children, lets the system create its named object,
 * forks the workers and the producers, starts them together once all are
 * attached, and waits for them with a bound. Workers count tasks/s from
 * their first measured lease to their last ack and keep a latency histogram
 * each in the control block; the parent merges them and prints one row.
 * Names are removed at the end of each run, on failure, and on SIGINT or
 * SIGTERM.
 */
#include "bench.h"

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BENCH_BUILDTYPE
#define BENCH_BUILDTYPE "unknown"
#endif
#ifndef BENCH_SANITIZE
#define BENCH_SANITIZE "none"
#endif

static const char *const scenario_name[SC_COUNT] = { "throughput", "latency", "race" };
static const struct bench_sys *const systems[] = {
	&bench_sys_tq, &bench_sys_raw_ring, &bench_sys_posix_mq,
};
#define NSYS (sizeof(systems) / sizeof(systems[0]))

struct opts {
	unsigned scen_list[8], nscen;
	unsigned sys_list[NSYS * 2], nsys;
	unsigned producers, workers;
	uint64_t tasks;           /* 0 = per-scenario default */
	uint32_t payload;
	uint64_t prefill;
	double rate;
	unsigned batch, queues, levels;
	int levels_set;
	unsigned policy;
	int64_t warmup, sample;   /* -1 = per-scenario default */
	int pin, json, touch, spin_pace;
	double duration;
	unsigned race_workers, race_producers;
	uint64_t race_tasks;
	int64_t bpt_tasks;        /* -1 = default */
	uint64_t spin_ns;
	uint32_t capacity, ring_slots;
	long mq_maxmsg;
	unsigned repeat;
};

struct result {
	const struct bench_sys *sys;
	char version[128];
	enum scenario sc;
	const char *status;      /* ok, error, timeout, unsupported, failed, interrupted */
	unsigned producers, workers, batch, queues, levels, policy;
	uint64_t tasks, warmup, prefill;
	uint32_t payload;
	double rate;
	double tasks_per_s, submit_per_s, elapsed_s;
	double cpu_us_per_task;  /* user + system time of all children / tasks handled */
	double csw_per_task;     /* their context switches / tasks handled */
	uint64_t samples;
	double p50, p90, p99, p999, max, mean;   /* microseconds */
	struct footprint fp;
	int race;
	uint64_t dups, losses, leftover, corrupt;
	char note[1024];
};

static volatile sig_atomic_t g_stop;
static char g_machine_model[256];
static char g_kernel[128];
static long g_nproc;

static void on_signal(int sig)
{
	g_stop = sig;
}

/* ---- small helpers ----------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
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

static void read_machine(void)
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

static const char *compiler(void)
{
#if defined(__clang__)
	return "clang " __clang_version__;
#elif defined(__GNUC__)
	return "gcc " __VERSION__;
#else
	return "unknown";
#endif
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v, int valid)
{
	if (valid && v == v)
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

static void add_note(struct result *res, const char *s)
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

/* ---- one run ----------------------------------------------------------- */

static pid_t *g_pids;
static unsigned g_npids;
/* What the children of the current run used, summed as they are reaped. */
static struct rusage g_ru;

static void kill_children(int sig)
{
	for (unsigned i = 0; i < g_npids; i++)
		if (g_pids[i] > 0)
			kill(g_pids[i], sig);
}

/* Reap whoever exited; returns how many are still alive. Records the
 * worst exit: *bad gets the first non-zero status seen. */
static unsigned reap(int *bad, int block_ms)
{
	unsigned alive = 0;

	if (block_ms > 0) {
		sigset_t set;
		struct timespec ts = { block_ms / 1000, (long)(block_ms % 1000) * 1000000L };

		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		sigtimedwait(&set, NULL, &ts);   /* EINTR on SIGINT is fine */
	}
	for (unsigned i = 0; i < g_npids; i++) {
		int st;

		if (g_pids[i] <= 0)
			continue;
		struct rusage ru;
		pid_t p = wait4(g_pids[i], &st, WNOHANG, &ru);
		if (p == g_pids[i]) {
			g_pids[i] = 0;
			g_ru.ru_utime.tv_sec += ru.ru_utime.tv_sec;
			g_ru.ru_utime.tv_usec += ru.ru_utime.tv_usec;
			g_ru.ru_stime.tv_sec += ru.ru_stime.tv_sec;
			g_ru.ru_stime.tv_usec += ru.ru_stime.tv_usec;
			g_ru.ru_nvcsw += ru.ru_nvcsw;
			g_ru.ru_nivcsw += ru.ru_nivcsw;
			int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (code && !*bad)
				*bad = code;
		} else if (p < 0 && errno == ECHILD) {
			g_pids[i] = 0;
		} else {
			alive++;
		}
	}
	return alive;
}

/* Stop everybody: ask, wait a little, then kill. */
static void stop_children(struct run *r)
{
	int dummy = 0;
	uint64_t until = bench_now() + 3000000000ull;

	atomic_store(&r->ctl->abort, 1);
	bench_futex_wake(&r->ctl->go, INT32_MAX);
	while (reap(&dummy, 20) && bench_now() < until)
		;
	kill_children(SIGKILL);
	while (reap(&dummy, 20))
		;
}

static void child_main(struct run *r, int is_worker, unsigned idx, pid_t parent)
{
	sigset_t none;
	int code;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(CHILD_ABORTED);
	bench_pin(r, is_worker, idx);
	code = is_worker ? r->sys->worker(r, idx) : r->sys->producer(r, idx);
	_exit(code);
}

static void finish_result(struct run *r, struct result *res)
{
	struct hdr *all = calloc(1, sizeof(*all));
	uint64_t first = UINT64_MAX, last = 0, measured = 0;
	uint64_t pstart = UINT64_MAX, pend = 0, submitted = 0;

	for (unsigned w = 0; w < r->workers; w++) {
		struct work_stat *ws = &r->work[w];

		if (ws->measured) {
			measured += ws->measured;
			if (ws->first_ns && ws->first_ns < first)
				first = ws->first_ns;
		}
		if (ws->count && ws->last_ns > last)
			last = ws->last_ns;
		if (all)
			hdr_merge(all, &r->hist[w]);
	}
	for (unsigned p = 0; p < r->producers; p++) {
		struct prod_stat *ps = &r->prod[p];

		submitted += ps->count;
		if (ps->start_ns && ps->start_ns < pstart)
			pstart = ps->start_ns;
		if (ps->end_ns > pend)
			pend = ps->end_ns;
	}
	if (measured && last > first) {
		res->elapsed_s = (double)(last - first) / 1e9;
		res->tasks_per_s = (double)measured / res->elapsed_s;
	}
	if (submitted && pend > pstart)
		res->submit_per_s = (double)submitted / ((double)(pend - pstart) / 1e9);
	if (all && hdr_count(all)) {
		res->samples = hdr_count(all);
		res->p50 = (double)hdr_percentile(all, 50) / 1e3;
		res->p90 = (double)hdr_percentile(all, 90) / 1e3;
		res->p99 = (double)hdr_percentile(all, 99) / 1e3;
		res->p999 = (double)hdr_percentile(all, 99.9) / 1e3;
		res->max = (double)hdr_max(all) / 1e3;
		res->mean = hdr_mean(all) / 1e3;
	}
	free(all);
}

static void run_one(const struct opts *o, const struct bench_sys *sys, enum scenario sc,
		    unsigned seq, struct result *res)
{
	struct run run, *r = &run;
	unsigned nchild, i;
	size_t off;
	int bad = 0, rc;
	pid_t parent = getpid();
	sigset_t chld, old;

	memset(r, 0, sizeof(*r));
	memset(res, 0, sizeof(*res));
	r->sys = sys;
	r->sc = sc;
	r->seq = seq;
	r->payload = o->payload;
	r->batch = o->batch;
	r->queues = o->queues;
	r->levels = o->levels;
	r->seg_levels = o->levels_set ? o->levels : 0;
	r->policy = o->policy;
	r->touch = o->touch;
	r->pin = o->pin;
	r->spin_pace = o->spin_pace;
	r->spin_ns = o->spin_ns;
	r->capacity = o->capacity;
	r->ring_slots = o->ring_slots;
	r->mq_maxmsg = o->mq_maxmsg;
	r->duration = o->duration;
	r->rate = o->rate;
	if (sc == SC_RACE) {
		r->producers = o->race_producers;
		r->workers = o->race_workers;
		r->tasks = o->race_tasks;
		r->warmup = 0;
		r->prefill = 0;
		r->sample = 0;
	} else {
		r->producers = o->producers;
		r->workers = o->workers;
		r->tasks = o->tasks ? o->tasks
			   : sc == SC_LATENCY ? (uint64_t)(o->rate * 5) : 1000000u;
		if (r->tasks == 0)
			r->tasks = 1;
		r->prefill = o->prefill;
		if (o->warmup >= 0)
			r->warmup = (uint64_t)o->warmup;
		else if (sc == SC_LATENCY)
			r->warmup = r->tasks / 20 < 1000 ? r->tasks / 20 : 1000;
		else
			r->warmup = r->tasks / 20 < 100000 ? r->tasks / 20 : 100000;
		r->sample = o->sample >= 0 ? (unsigned)o->sample : sc == SC_LATENCY ? 1u : 64u;
	}
	r->total = r->tasks + r->warmup;
	snprintf(r->name, sizeof(r->name), "/tq-bench-%d-%u", (int)getpid(), seq);

	res->sys = sys;
	sys->version(res->version, sizeof(res->version));
	res->sc = sc;
	res->producers = r->producers;
	res->workers = r->workers;
	res->tasks = r->tasks;
	res->warmup = r->warmup;
	res->prefill = r->prefill;
	res->payload = r->payload;
	res->batch = r->batch;
	res->queues = r->queues;
	res->levels = r->levels;
	res->policy = r->policy;
	res->rate = sc == SC_LATENCY ? r->rate : 0;
	res->race = sc == SC_RACE;
	res->status = "ok";

	/* The control block. */
	off = (sizeof(struct ctl) + BENCH_LINE - 1) / BENCH_LINE * BENCH_LINE;
	size_t off_prod = off;
	off += sizeof(struct prod_stat) * r->producers;
	size_t off_work = off;
	off += sizeof(struct work_stat) * r->workers;
	size_t off_hist = off;
	off += sizeof(struct hdr) * r->workers;
	size_t off_seen = off;
	off += sc == SC_RACE ? r->total : 0;
	r->ctl_size = off;
	r->ctl = mmap(NULL, r->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->ctl == MAP_FAILED) {
		res->status = "error";
		snprintf(res->note, sizeof(res->note), "mmap control block: %s", strerror(errno));
		return;
	}
	r->prod = (struct prod_stat *)((char *)r->ctl + off_prod);
	r->work = (struct work_stat *)((char *)r->ctl + off_work);
	r->hist = (struct hdr *)((char *)r->ctl + off_hist);
	r->seen = sc == SC_RACE ? (_Atomic uint8_t *)((char *)r->ctl + off_seen) : NULL;

	rc = sys->setup(r);
	if (rc != 0 || g_stop) {
		res->status = g_stop ? "interrupted" : rc == BENCH_UNSUPPORTED ? "unsupported" : "error";
		add_note(res, r->note);
		if (rc < 0 && !r->note[0])
			add_note(res, strerror(-rc));
		goto out;
	}

	/* Children: workers first, so they wait when the producers start. */
	nchild = r->producers + r->workers;
	g_pids = calloc(nchild, sizeof(*g_pids));
	g_npids = 0;
	if (!g_pids) {
		res->status = "error";
		add_note(res, "out of memory");
		goto out;
	}
	memset(&g_ru, 0, sizeof(g_ru));
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < nchild; i++) {
		int is_worker = i < r->workers;
		unsigned idx = is_worker ? i : i - r->workers;
		pid_t pid = fork();

		if (pid == 0)
			child_main(r, is_worker, idx, parent);
		if (pid < 0) {
			res->status = "error";
			snprintf(res->note, sizeof(res->note), "fork: %s", strerror(errno));
			stop_children(r);
			goto out_mask;
		}
		g_pids[g_npids++] = pid;
	}

	/* Start barrier: all attached, then go. */
	uint64_t give_up = bench_now() + 60000000000ull;
	while (atomic_load(&r->ctl->ready) < nchild) {
		if (g_stop || bad || bench_now() > give_up) {
			if (!bad)
				bad = g_stop ? 128 + g_stop : CHILD_TIMEOUT;
			break;
		}
		if (reap(&bad, 1) < nchild && !bad)
			bad = CHILD_ERROR;
	}
	if (bad) {
		stop_children(r);
		goto judge;
	}
	/* Latency schedule starts a little ahead, so every producer is awake. */
	r->ctl->t0_ns = bench_now() + (sc == SC_LATENCY ? 2000000u : 0u);
	r->ctl->deadline_ns = r->ctl->t0_ns + (uint64_t)(r->duration * 1e9);
	atomic_store(&r->ctl->go, 1);
	bench_futex_wake(&r->ctl->go, INT32_MAX);

	/* Wait for them, bounded by the run's deadline (plus a grace). */
	for (;;) {
		unsigned alive = reap(&bad, 100);

		if (!alive)
			break;
		if (g_stop || bad || bench_now() > r->ctl->deadline_ns + 5000000000ull) {
			if (!bad)
				bad = g_stop ? 128 + g_stop : CHILD_TIMEOUT;
			stop_children(r);
			break;
		}
	}
judge:
	if (bad) {
		if (g_stop)
			res->status = "interrupted";
		else if (bad == CHILD_TIMEOUT)
			res->status = "timeout";
		else
			res->status = "error";
		if (r->ctl->err_set)
			add_note(res, r->ctl->err);
		else if (bad == CHILD_TIMEOUT)
			add_note(res, "run did not finish within --duration");
		else if (bad > 128) {
			char b[64];

			snprintf(b, sizeof(b), "a child died of signal %d", bad - 128);
			add_note(res, b);
		}
	}
	add_note(res, r->note);
	r->note[0] = 0;
	finish_result(r, res);
	if (!bad && r->total) {
		double cpu = (double)(g_ru.ru_utime.tv_sec + g_ru.ru_stime.tv_sec) * 1e6 +
			     (double)(g_ru.ru_utime.tv_usec + g_ru.ru_stime.tv_usec);

		res->cpu_us_per_task = cpu / (double)r->total;
		res->csw_per_task = (double)(g_ru.ru_nvcsw + g_ru.ru_nivcsw) / (double)r->total;
	}

	if (!bad && sc == SC_RACE) {
		uint64_t corrupt = 0, bad_seq = 0;
		long n = sys->drain ? sys->drain(r) : 0;

		if (n < 0) {
			res->status = "failed";
			add_note(res, r->note[0] ? r->note : strerror((int)-n));
		} else {
			res->leftover = (uint64_t)n;
		}
		for (uint64_t k = 0; k < r->total; k++) {
			uint8_t s = r->seen[k];

			if (s == 0)
				res->losses++;
			else if (s > 1)
				res->dups += s - 1u;
		}
		for (unsigned w = 0; w < r->workers; w++) {
			corrupt += r->work[w].corrupt;
			bad_seq += r->work[w].bad_seq;
		}
		res->corrupt = corrupt + bad_seq;
		if (res->losses || res->dups || res->leftover || res->corrupt) {
			char b[200];

			res->status = "failed";
			snprintf(b, sizeof(b), "race: %" PRIu64 " duplicates, %" PRIu64 " lost, %" PRIu64
				 " left pending, %" PRIu64 " corrupt payloads", res->dups, res->losses,
				 res->leftover, res->corrupt);
			add_note(res, b);
		}
	}
out_mask:
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	sys->teardown(r);
	free(g_pids);
	g_pids = NULL;
	g_npids = 0;

	/* Memory per held task, on a fresh object of the same configuration. */
	int64_t k = o->bpt_tasks;
	if (k < 0)
		k = 1000000;
	if (!g_stop && sc != SC_RACE && k > 0 && sys->footprint &&
	    strcmp(res->status, "ok") == 0) {
		r->note[0] = 0;
		rc = sys->footprint(r, (uint64_t)k, &res->fp);
		if (rc < 0) {
			char b[128];

			snprintf(b, sizeof(b), "bytes/task: %s", strerror(-rc));
			add_note(res, b);
			res->fp.valid = 0;
		} else if (!res->fp.valid) {
			char b[256];

			snprintf(b, sizeof(b), "bytes/task not measurable with %" PRIu64 " tasks held (%s)",
				 res->fp.k, res->fp.method ? res->fp.method : "?");
			add_note(res, b);
		}
	}
	munmap(r->ctl, r->ctl_size);
}

/* ---- output ------------------------------------------------------------ */

static const char *policy_name(unsigned p)
{
	return p == 1 ? "weighted" : "strict";
}

static void print_json(const struct opts *o, const struct result *res)
{
	FILE *f = stdout;
	int lat = res->samples > 0;

	fputs("{\"system\":", f);
	json_string(f, res->sys->name);
	fputs(",\"system_version\":", f);
	json_string(f, res->version);
	fputs(",\"scenario\":", f);
	json_string(f, scenario_name[res->sc]);
	fputs(",\"status\":", f);
	json_string(f, res->status);
	fprintf(f, ",\"tasks\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"payload\":%u,\"producers\":%u,"
		"\"workers\":%u,\"prefill\":%" PRIu64 ",\"batch\":%u,\"queues\":%u,\"levels\":%u,"
		"\"policy\":\"%s\",\"pinned\":%s,\"rate\":",
		res->tasks, res->warmup, res->payload, res->producers, res->workers, res->prefill,
		res->batch, res->queues, res->levels, policy_name(res->policy),
		o->pin ? "true" : "false");
	json_num(f, res->rate, res->rate > 0);
	fputs(",\"tasks_per_s\":", f);
	json_num(f, res->tasks_per_s, res->tasks_per_s > 0);
	fputs(",\"submit_per_s\":", f);
	json_num(f, res->submit_per_s, res->submit_per_s > 0);
	fputs(",\"elapsed_s\":", f);
	json_num(f, res->elapsed_s, res->elapsed_s > 0);
	fputs(",\"cpu_us_per_task\":", f);
	json_num(f, res->cpu_us_per_task, res->cpu_us_per_task > 0);
	fputs(",\"csw_per_task\":", f);
	json_num(f, res->csw_per_task, res->cpu_us_per_task > 0);
	fputs(",\"latency_us\":{\"samples\":", f);
	fprintf(f, "%" PRIu64, res->samples);
	fputs(",\"p50\":", f);
	json_num(f, res->p50, lat);
	fputs(",\"p90\":", f);
	json_num(f, res->p90, lat);
	fputs(",\"p99\":", f);
	json_num(f, res->p99, lat);
	fputs(",\"p999\":", f);
	json_num(f, res->p999, lat);
	fputs(",\"max\":", f);
	json_num(f, res->max, lat);
	fputs(",\"mean\":", f);
	json_num(f, res->mean, lat);
	fputs("},\"bytes_per_task\":", f);
	json_num(f, res->fp.valid ? (double)res->fp.resident / (double)res->fp.k : 0, res->fp.valid);
	fputs(",\"bytes_per_task_marginal\":", f);
	json_num(f, res->fp.valid ? ((double)res->fp.resident - (double)res->fp.empty) / (double)res->fp.k : 0,
		 res->fp.valid);
	fputs(",\"bytes_measure\":", f);
	if (res->fp.valid) {
		fprintf(f, "{\"tasks_held\":%" PRIu64 ",\"resident\":%" PRIu64 ",\"resident_empty\":%" PRIu64
			",\"object_size\":%" PRIu64 ",\"method\":",
			res->fp.k, res->fp.resident, res->fp.empty, res->fp.size);
		json_string(f, res->fp.method ? res->fp.method : "");
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	if (res->race)
		fprintf(f, ",\"duplicates\":%" PRIu64 ",\"losses\":%" PRIu64 ",\"left_pending\":%" PRIu64
			",\"corrupt\":%" PRIu64, res->dups, res->losses, res->leftover, res->corrupt);
	else
		fputs(",\"duplicates\":null,\"losses\":null", f);
	fputs(",\"note\":", f);
	json_string(f, res->note);
	fprintf(f, ",\"machine\":{\"nproc\":%ld,\"model\":", g_nproc);
	json_string(f, g_machine_model);
	fputs(",\"kernel\":", f);
	json_string(f, g_kernel);
	fputs("},\"build\":{\"compiler\":", f);
	json_string(f, compiler());
	fputs(",\"buildtype\":", f);
	json_string(f, BENCH_BUILDTYPE);
	fputs(",\"sanitize\":", f);
	json_string(f, BENCH_SANITIZE);
	fputs("}}\n", f);
	fflush(f);
}

static void fmt_us(char *b, size_t n, double v, int valid)
{
	if (!valid)
		snprintf(b, n, "-");
	else if (v < 100)
		snprintf(b, n, "%.2f", v);
	else if (v < 10000)
		snprintf(b, n, "%.1f", v);
	else
		snprintf(b, n, "%.0f", v);
}

static void print_header(const struct opts *o)
{
	printf("# tq-bench on %ld x %s, Linux %s; %s, %s, sanitize %s%s\n", g_nproc,
	       g_machine_model, g_kernel, compiler(), BENCH_BUILDTYPE, BENCH_SANITIZE,
	       o->pin ? "; pinned" : "");
	printf("%-9s %-10s %3s %3s %9s %7s %8s %12s %8s %8s %8s %8s %9s %7s %8s  %s\n", "system",
	       "scenario", "P", "W", "tasks", "payload", "prefill", "tasks/s", "p50 us", "p90 us",
	       "p99 us", "p99.9 us", "max us", "B/task", "cpu us/t", "status / note");
	fflush(stdout);
}

static void print_row(const struct result *res)
{
	char p50[16], p90[16], p99[16], p999[16], mx[16], bpt[16], tps[24], cpu[24];
	int lat = res->samples > 0;

	fmt_us(p50, sizeof(p50), res->p50, lat);
	fmt_us(p90, sizeof(p90), res->p90, lat);
	fmt_us(p99, sizeof(p99), res->p99, lat);
	fmt_us(p999, sizeof(p999), res->p999, lat);
	fmt_us(mx, sizeof(mx), res->max, lat);
	if (res->fp.valid)
		snprintf(bpt, sizeof(bpt), "%.0f", (double)res->fp.resident / (double)res->fp.k);
	else
		snprintf(bpt, sizeof(bpt), "-");
	if (res->tasks_per_s > 0)
		snprintf(tps, sizeof(tps), "%.0f", res->tasks_per_s);
	else
		snprintf(tps, sizeof(tps), "-");
	if (res->cpu_us_per_task > 0)
		snprintf(cpu, sizeof(cpu), "%.3f", res->cpu_us_per_task);
	else
		snprintf(cpu, sizeof(cpu), "-");
	printf("%-9s %-10s %3u %3u %9" PRIu64 " %7u %8" PRIu64 " %12s %8s %8s %8s %8s %9s %7s %8s  %s%s%s\n",
	       res->sys->name, scenario_name[res->sc], res->producers, res->workers, res->tasks,
	       res->payload, res->prefill, tps, p50, p90, p99, p999, mx, bpt, cpu, res->status,
	       res->note[0] ? ": " : "", res->note);
	fflush(stdout);
}

/* Ratios of tq to each baseline that ran in the same group. */
static void print_ratios(const struct result *rs, unsigned n)
{
	const struct result *t = NULL;

	for (unsigned i = 0; i < n; i++)
		if (rs[i].sys == &bench_sys_tq && strcmp(rs[i].status, "ok") == 0)
			t = &rs[i];
	if (!t || n < 2)
		return;
	for (unsigned i = 0; i < n; i++) {
		const struct result *b = &rs[i];

		if (b == t || strcmp(b->status, "ok") != 0)
			continue;
		printf("  tq / %-9s", b->sys->name);
		if (t->tasks_per_s > 0 && b->tasks_per_s > 0)
			printf("  tasks/s x%.2f", t->tasks_per_s / b->tasks_per_s);
		if (t->samples && b->samples && b->p50 > 0)
			printf("  p50 x%.2f  p99 x%.2f", t->p50 / b->p50, b->p99 > 0 ? t->p99 / b->p99 : 0);
		if (t->fp.valid && b->fp.valid)
			printf("  B/task x%.2f", ((double)t->fp.resident / (double)t->fp.k) /
			       ((double)b->fp.resident / (double)b->fp.k));
		putchar('\n');
	}
	fflush(stdout);
}

/* ---- command line ------------------------------------------------------ */

static void usage(FILE *f)
{
	fputs(
"usage: tq-bench [options]\n"
"  --scenario LIST     throughput, latency, race (comma-separated; default throughput)\n"
"  --system LIST       tq, raw-ring, posix-mq or all (default tq); same workload on each\n"
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
"  --capacity N        tq: segment capacity (default: max(1Mi, prefill + 64Ki))\n"
"  --ring-slots N      raw-ring: slots per producer beyond the prefill (default 16384,\n"
"                      at most 4 MiB of payload)\n"
"  --mq-maxmsg N       posix-mq: queue depth (default prefill + 4096)\n"
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

		if (strcmp(what, "system") == 0 && strcmp(tok, "all") == 0) {
			for (i = 0; i < nnames && *n < max; i++)
				out[(*n)++] = i;
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

static void parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		O_SCEN = 256, O_SYS, O_PROD, O_WORK, O_TASKS, O_PAYLOAD, O_PREFILL, O_RATE,
		O_SPIN, O_BATCH, O_QUEUES, O_LEVELS, O_POLICY, O_WARMUP, O_SAMPLE, O_TOUCH,
		O_PIN, O_DURATION, O_RW, O_RP, O_RT, O_BPT, O_SPINNS, O_CAP, O_RING, O_MQMAX,
		O_REPEAT, O_JSON, O_HELP,
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
		{ "capacity", required_argument, 0, O_CAP },
		{ "ring-slots", required_argument, 0, O_RING },
		{ "mq-maxmsg", required_argument, 0, O_MQMAX },
		{ "repeat", required_argument, 0, O_REPEAT },
		{ "json", no_argument, 0, O_JSON },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	static const char *const sc_names[] = { "throughput", "latency", "race" };
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

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_SCEN: parse_list(optarg, sc_names, SC_COUNT, o->scen_list, &o->nscen, 8, "scenario"); break;
		case O_SYS: parse_list(optarg, sys_names, NSYS, o->sys_list, &o->nsys, NSYS * 2, "system"); break;
		case O_PROD: o->producers = (unsigned)parse_count(optarg, "producers"); break;
		case O_WORK: o->workers = (unsigned)parse_count(optarg, "workers"); break;
		case O_TASKS: o->tasks = parse_count(optarg, "tasks"); break;
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
		case O_CAP: o->capacity = (uint32_t)parse_count(optarg, "capacity"); break;
		case O_RING: o->ring_slots = (uint32_t)parse_count(optarg, "ring-slots"); break;
		case O_MQMAX: o->mq_maxmsg = (long)parse_count(optarg, "mq-maxmsg"); break;
		case O_REPEAT: o->repeat = (unsigned)parse_count(optarg, "repeat"); break;
		case O_JSON: o->json = 1; break;
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

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa;
	struct result *rs;
	unsigned seq = 0, failures = 0;

	parse_opts(argc, argv, &o);
	read_machine();
	sweep_stale();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rs = calloc(o.nsys, sizeof(*rs));
	if (!rs)
		die("out of memory");
	if (!o.json)
		print_header(&o);
	for (unsigned rep = 0; rep < o.repeat && !g_stop; rep++) {
		for (unsigned s = 0; s < o.nscen && !g_stop; s++) {
			for (unsigned k = 0; k < o.nsys && !g_stop; k++) {
				struct result *res = &rs[k];

				run_one(&o, systems[o.sys_list[k]], (enum scenario)o.scen_list[s], seq++, res);
				if (o.json)
					print_json(&o, res);
				else
					print_row(res);
				if (strcmp(res->status, "ok") != 0 && strcmp(res->status, "unsupported") != 0)
					failures++;
			}
			if (!o.json && !g_stop)
				print_ratios(rs, o.nsys);
		}
	}
	free(rs);
	if (g_stop) {
		fprintf(stderr, "tq-bench: interrupted\n");
		return 128 + g_stop;
	}
	return failures ? 1 : 0;
}

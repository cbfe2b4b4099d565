/* SPDX-License-Identifier: MIT */
/*
 * tqd - the supervisor of one tq segment.
 *
 * It creates the segment or adopts an existing one, becomes its one active
 * supervisor (a second tqd refuses, or with --standby waits and takes over
 * when the active one dies), and then, every --interval-ms, runs the repair
 * pass (tq_recover: the tasks of dead workers come back, expired leases are
 * taken back, what dead producers held returns to the pools), the
 * time-driven work (tq_tick: delayed tasks become ready, schedules fire),
 * and the journal's upkeep (tq_journal_maintain: the async flush, the next
 * file, checkpoints). With --journal, a segment it creates on a directory
 * holding a journal is restored from it. It logs every repair, serves
 * metrics (metrics-export.c) and keeps worker pools (tqd-pool.c). It runs
 * in the foreground (for systemd) or with --daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tq/tq.h>

#include "metrics-export.h"
#include "tqd-pool.h"

#define DEFAULT_SEGMENT "/tq"

struct opts {
	const char *segment;
	bool create;
	struct tq_config cfg;
	long interval_ms;
	bool standby;
	bool daemon;
	const char *log;
	bool once;
	bool unlink_on_exit;
	bool quiet;
	long sweep_s;
	const char *metrics_listen, *metrics_file;
	long metrics_file_ms;
};

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile sig_atomic_t stop;
static FILE *logfp;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(logfp, "%s.%03ld tqd[%d]: ", ts, now.tv_nsec / 1000000, (int)getpid());
	va_start(ap, fmt);
	vfprintf(logfp, fmt, ap);
	va_end(ap);
	fputc('\n', logfp);
	fflush(logfp);
}

/* What tq_create() found in the journal directory. */
static void report_replay(tq *t)
{
	struct tq_journal_info ji;

	if (tq_journal_info(t, &ji) < 0 || !ji.dir[0])
		return;
	say("journal %s: durability %s, files of %llu MiB", ji.dir,
	    ji.durability == TQ_DURABILITY_SYNC ? "sync" : "async",
	    (unsigned long long)(ji.file_bytes >> 20));
	if (ji.replay_records || ji.replay_damaged)
		say("journal replayed: %llu records, %llu unfinished tasks restored in %.1f ms",
		    (unsigned long long)ji.replay_records, (unsigned long long)ji.replay_tasks,
		    ji.replay_ns / 1e6);
	if (ji.replay_damaged)
		say("journal damage: %llu region%s skipped (%llu bytes), the first at LSN %llu "
		    "(file %llu, offset %llu)", (unsigned long long)ji.replay_damaged,
		    ji.replay_damaged == 1 ? "" : "s", (unsigned long long)ji.replay_dropped,
		    (unsigned long long)ji.replay_damage_lsn,
		    (unsigned long long)(ji.replay_damage_lsn / ji.file_bytes),
		    (unsigned long long)(ji.replay_damage_lsn % ji.file_bytes));
	if (ji.replay_lost)
		say("journal: %llu tasks could not be restored", (unsigned long long)ji.replay_lost);
}

/* Flush, prepare and checkpoint the journal; log what matters. */
static void journal_work(tq *t)
{
	static uint64_t errors_seen;
	struct tq_journal_info ji;
	int e = tq_journal_maintain(t);

	if (e < 0)
		say("journal: %s", *tq_last_error(t) ? tq_last_error(t) : tq_strerror(e));
	if (e > 0 && (e & TQ_JM_CHECKPOINT) && tq_journal_info(t, &ji) == 0)
		say("journal checkpoint %llu: %llu file%s now, from file %llu",
		    (unsigned long long)ji.checkpoints, (unsigned long long)ji.files,
		    ji.files == 1 ? "" : "s", (unsigned long long)ji.first_file);
	if (tq_journal_info(t, &ji) == 0 && ji.errors != errors_seen) {
		say("journal: %llu write or flush errors so far", (unsigned long long)ji.errors);
		errors_seen = ji.errors;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tqd [options]\n"
		"  -s, --segment NAME     segment to supervise (default $TQ_SEGMENT, else %s)\n"
		"  -c, --create           create the segment if it does not exist, with:\n"
		"      --queues N         named queues (default 16)\n"
		"      --levels N         priority levels, 1..64 (default 8)\n"
		"      --capacity N       tasks held at once (default 1048576)\n"
		"      --max-payload N    largest payload in bytes (default 1048576)\n"
		"      --procs N          handles attached at once (default 256)\n"
		"      --arena-bytes N    bytes for large payloads (default 67108864)\n"
		"      --mode OCTAL       permission bits (default 0600)\n"
		"      --journal DIR      keep the segment's journal in DIR (absolute; created\n"
		"                         0700, files 0600): tasks then survive a reboot, and a\n"
		"                         segment created on a DIR holding a journal is restored\n"
		"                         from it. Without it, tasks live in shared memory only.\n"
		"      --durability MODE  async (default: flushed every --flush-ms), sync (a\n"
		"                         submit returns once on disk) or none\n"
		"      --flush-ms N       async flush period, 1..60000 ms (default 10)\n"
		"      --journal-file-mb N  journal files roll at N MiB (default 64)\n"
		"      --schedule NAME:QUEUE:SPEC[:PAYLOAD]  a periodic task (repeatable): one\n"
		"                         task into QUEUE per tick of SPEC, in UTC: cron\n"
		"                         ('0 3 * * mon-fri'), @hourly, @daily, '@every 10s'...\n"
		"                         Set when tqd becomes active; tq schedule manages more.\n"
		"  -i, --interval-ms N    repair pass period, 1..1000 ms (default 10)\n"
		"      --standby          if another tqd is active, wait and take over when it dies\n"
		"      --sweep-s N        sweep for orphaned slots every N s, 0 never (default 10)\n"
		"      --metrics-listen ADDR:PORT  serve Prometheus metrics at /metrics on a\n"
		"                         loopback address (127.0.0.1:9464, [::1]:9464; port 0: any)\n"
		"      --metrics-file PATH  write them to PATH (atomically) for node_exporter's\n"
		"                         textfile collector, every --metrics-file-interval-ms N\n"
		"                         (default 5000); removed when tqd stops\n"
		"  -d, --daemon           run in the background (log to --log, else nowhere)\n"
		"  -l, --log FILE         append log lines to FILE (default stderr)\n"
		"  -f, --config FILE      read options from FILE: one 'name = value' per line,\n"
		"                         names as the long options, '#' starts a comment\n"
		"      --once             one repair pass, report it, exit\n"
		"      --unlink-on-exit   remove the segment when tqd stops\n"
		"  -q, --quiet            log only repairs and errors\n"
		"  -h, --help             this text\n",
		DEFAULT_SEGMENT);
	fprintf(f, "worker pools:\n%s", tqd_pool_usage);
}

static int parse_num(const char *name, const char *v, unsigned long long max,
		     unsigned long long *out, int base)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, base);
	if (errno || !*v || *end || n > max || v[0] == '-') {
		fprintf(stderr, "tqd: --%s: '%s' is not a number in 0..%llu\n", name, v, max);
		return -1;
	}
	*out = n;
	return 0;
}

enum { O_QUEUES = 1000, O_LEVELS, O_CAPACITY, O_MAXPAYLOAD, O_PROCS, O_ARENA, O_MODE,
       O_STANDBY, O_ONCE, O_UNLINK, O_SWEEP, O_METRICS_LISTEN, O_METRICS_FILE, O_METRICS_MS };

enum { O_JOURNAL = 1200, O_DURABILITY, O_FLUSH_MS, O_JFILE_MB, O_SCHEDULE };

/* --schedule NAME:QUEUE:SPEC[:PAYLOAD], set when tqd becomes active. */
#define MAX_SCHED TQ_SCHEDULES_MAX
static const char *schedules[MAX_SCHED];
static unsigned nschedules;

static int check_schedule(const char *arg)
{
	const char *a = strchr(arg, ':'), *b = a ? strchr(a + 1, ':') : NULL;

	if (!a || !b || a == arg || b == a + 1 || !b[1]) {
		fprintf(stderr, "tqd: --schedule %s: use NAME:QUEUE:SPEC[:PAYLOAD]\n", arg);
		return -1;
	}
	if (nschedules == MAX_SCHED) {
		fprintf(stderr, "tqd: at most %d --schedule options\n", MAX_SCHED);
		return -1;
	}
	schedules[nschedules++] = arg;
	return 0;
}

/* Set every --schedule (replacing what has the same name). */
static int set_schedules(tq *t)
{
	for (unsigned i = 0; i < nschedules; i++) {
		const char *arg = schedules[i], *a = strchr(arg, ':'), *b = strchr(a + 1, ':');
		const char *c = strchr(b + 1, ':');
		struct tq_schedule s;
		char queue[TQ_QUEUE_NAME_MAX + 1];
		size_t ln = (size_t)(a - arg), lq = (size_t)(b - a - 1);
		size_t ls = c ? (size_t)(c - b - 1) : strlen(b + 1);
		int q, e;

		memset(&s, 0, sizeof(s));
		if (ln > TQ_QUEUE_NAME_MAX || lq > TQ_QUEUE_NAME_MAX || ls > TQ_SCHEDULE_SPEC_MAX) {
			say("--schedule %s: a name or the spec is too long", arg);
			return -1;
		}
		memcpy(s.name, arg, ln);
		memcpy(queue, a + 1, lq);
		queue[lq] = 0;
		memcpy(s.spec, b + 1, ls);
		if (c) {
			s.payload = c + 1;
			s.len = (uint32_t)strlen(c + 1);
		}
		q = tq_queue_declare(t, queue, NULL);
		if (q < 0) {
			say("--schedule %s: queue %s: %s", arg, queue, tq_last_error(t));
			return -1;
		}
		s.queue = q;
		e = tq_schedule_set(t, &s);
		if (e < 0) {
			say("--schedule %s: %s", arg, *tq_last_error(t) ? tq_last_error(t) :
			    tq_strerror(e));
			return -1;
		}
		say("schedule %s: \"%s\" into %s", s.name, s.spec, queue);
	}
	return 0;
}

/* Worker pools (tqd-pool.c), in the order of enum tqd_pool_opt. */
enum { O_POOL = 1100, O_POOL_INTERVAL, O_POOL_WAIT, O_POOL_BACKLOG, O_POOL_IDLE, O_POOL_GRACE };

static const struct option longopts[] = {
	{ "segment", required_argument, NULL, 's' },
	{ "create", no_argument, NULL, 'c' },
	{ "journal", required_argument, NULL, O_JOURNAL },
	{ "durability", required_argument, NULL, O_DURABILITY },
	{ "flush-ms", required_argument, NULL, O_FLUSH_MS },
	{ "journal-file-mb", required_argument, NULL, O_JFILE_MB },
	{ "schedule", required_argument, NULL, O_SCHEDULE },
	{ "queues", required_argument, NULL, O_QUEUES },
	{ "levels", required_argument, NULL, O_LEVELS },
	{ "capacity", required_argument, NULL, O_CAPACITY },
	{ "max-payload", required_argument, NULL, O_MAXPAYLOAD },
	{ "procs", required_argument, NULL, O_PROCS },
	{ "arena-bytes", required_argument, NULL, O_ARENA },
	{ "mode", required_argument, NULL, O_MODE },
	{ "interval-ms", required_argument, NULL, 'i' },
	{ "standby", no_argument, NULL, O_STANDBY },
	{ "daemon", no_argument, NULL, 'd' },
	{ "log", required_argument, NULL, 'l' },
	{ "config", required_argument, NULL, 'f' },
	{ "once", no_argument, NULL, O_ONCE },
	{ "unlink-on-exit", no_argument, NULL, O_UNLINK },
	{ "sweep-s", required_argument, NULL, O_SWEEP },
	{ "metrics-listen", required_argument, NULL, O_METRICS_LISTEN },
	{ "metrics-file", required_argument, NULL, O_METRICS_FILE },
	{ "metrics-file-interval-ms", required_argument, NULL, O_METRICS_MS },
	{ "pool", required_argument, NULL, O_POOL },
	{ "pool-interval-ms", required_argument, NULL, O_POOL_INTERVAL },
	{ "pool-wait-ms", required_argument, NULL, O_POOL_WAIT },
	{ "pool-backlog", required_argument, NULL, O_POOL_BACKLOG },
	{ "pool-idle-ms", required_argument, NULL, O_POOL_IDLE },
	{ "pool-grace-ms", required_argument, NULL, O_POOL_GRACE },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int apply(struct opts *o, int c, const char *arg);

/* Strings read from a config file, freed at exit. */
static char *kept[256];
static unsigned nkept;

static void free_kept(void)
{
	while (nkept)
		free(kept[--nkept]);
}

static const char *keep(const char *s)
{
	char *d = strdup(s);

	if (!d || nkept == sizeof(kept) / sizeof(kept[0])) {
		free(d);
		fprintf(stderr, "tqd: config file too large\n");
		exit(2);
	}
	if (!nkept)
		atexit(free_kept);
	kept[nkept++] = d;
	return d;
}

/* Options from a file: "name = value" or "name" for flags. */
static int read_config(struct opts *o, const char *path)
{
	char line[1024];
	int lineno = 0, r = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		fprintf(stderr, "tqd: --config %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (r == 0 && fgets(line, sizeof(line), f)) {
		char *p = line, *name, *val = NULL, *e;
		const struct option *opt;

		lineno++;
		if ((e = strchr(p, '#')))
			*e = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strlen(p);
		while (e > p && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			*--e = 0;
		if (!*p)
			continue;
		name = p;
		if ((val = strchr(p, '='))) {
			*val++ = 0;
			while (*val == ' ' || *val == '\t')
				val++;
		}
		for (e = name + strlen(name); e > name && (e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = 0;
		for (opt = longopts; opt->name; opt++)
			if (!strcmp(opt->name, name))
				break;
		if (!opt->name || opt->val == 'f' || opt->val == 'h') {
			fprintf(stderr, "tqd: %s:%d: unknown option '%s'\n", path, lineno, name);
			r = -1;
		} else if ((opt->has_arg == required_argument) != (val && *val)) {
			fprintf(stderr, "tqd: %s:%d: option '%s' %s a value\n", path, lineno, name,
				opt->has_arg == required_argument ? "needs" : "takes no");
			r = -1;
		} else {
			/* The line buffer is reused: values live as long as tqd. */
			r = apply(o, opt->val, val ? keep(val) : NULL);
		}
	}
	fclose(f);
	return r;
}

static int apply(struct opts *o, int c, const char *arg)
{
	unsigned long long n;

	switch (c) {
	case 's': o->segment = arg; return 0;
	case 'c': o->create = true; return 0;
	case O_JOURNAL:
		if (arg[0] != '/' || strlen(arg) >= sizeof(o->cfg.journal_dir)) {
			fprintf(stderr, "tqd: --journal %s: give an absolute path shorter than %d bytes\n",
				arg, TQ_PATH_MAX);
			return -1;
		}
		memcpy(o->cfg.journal_dir, arg, strlen(arg) + 1);
		return 0;
	case O_DURABILITY:
		if (!strcmp(arg, "async"))
			o->cfg.durability = TQ_DURABILITY_ASYNC;
		else if (!strcmp(arg, "sync"))
			o->cfg.durability = TQ_DURABILITY_SYNC;
		else if (!strcmp(arg, "none"))
			o->cfg.durability = TQ_DURABILITY_NONE;
		else {
			fprintf(stderr, "tqd: --durability %s: use async, sync or none\n", arg);
			return -1;
		}
		return 0;
	case O_FLUSH_MS:
		if (parse_num("flush-ms", arg, 60000, &n, 10) < 0 || n < 1) {
			fprintf(stderr, "tqd: --flush-ms must be 1..60000\n");
			return -1;
		}
		o->cfg.flush_ms = (uint32_t)n;
		return 0;
	case O_SCHEDULE:
		return check_schedule(arg);
	case O_JFILE_MB:
		if (parse_num("journal-file-mb", arg, 1u << 20, &n, 10) < 0 || n < 1) {
			fprintf(stderr, "tqd: --journal-file-mb must be 1..1048576\n");
			return -1;
		}
		o->cfg.journal_file_mb = (uint32_t)n;
		return 0;
	case O_QUEUES:
		if (parse_num("queues", arg, TQ_QUEUES_MAX, &n, 10) < 0)
			return -1;
		o->cfg.queues = (uint32_t)n;
		return 0;
	case O_LEVELS:
		if (parse_num("levels", arg, TQ_LEVELS_MAX, &n, 10) < 0)
			return -1;
		o->cfg.levels = (uint32_t)n;
		return 0;
	case O_CAPACITY:
		if (parse_num("capacity", arg, TQ_CAPACITY_MAX, &n, 10) < 0)
			return -1;
		o->cfg.capacity = (uint32_t)n;
		return 0;
	case O_MAXPAYLOAD:
		if (parse_num("max-payload", arg, TQ_PAYLOAD_MAX, &n, 10) < 0)
			return -1;
		o->cfg.max_payload = (uint32_t)n;
		return 0;
	case O_PROCS:
		if (parse_num("procs", arg, 4096, &n, 10) < 0)
			return -1;
		o->cfg.procs = (uint32_t)n;
		return 0;
	case O_ARENA:
		if (parse_num("arena-bytes", arg, 1ull << 44, &n, 10) < 0)
			return -1;
		o->cfg.arena_bytes = n;
		return 0;
	case O_MODE:
		if (parse_num("mode", arg, 0777, &n, 8) < 0)
			return -1;
		o->cfg.mode = (uint32_t)n;
		return 0;
	case 'i':
		if (parse_num("interval-ms", arg, 1000, &n, 10) < 0)
			return -1;
		if (n < 1) {
			fprintf(stderr, "tqd: --interval-ms must be 1..1000\n");
			return -1;
		}
		o->interval_ms = (long)n;
		return 0;
	case O_STANDBY: o->standby = true; return 0;
	case 'd': o->daemon = true; return 0;
	case 'l': o->log = arg; return 0;
	case 'f': return read_config(o, arg);
	case O_ONCE: o->once = true; return 0;
	case O_UNLINK: o->unlink_on_exit = true; return 0;
	case O_SWEEP:
		if (parse_num("sweep-s", arg, 86400, &n, 10) < 0)
			return -1;
		o->sweep_s = (long)n;
		return 0;
	case O_METRICS_LISTEN:
		if (metrics_listen_check(arg)) {
			fprintf(stderr, "tqd: --metrics-listen %s: %s\n", arg, metrics_listen_check(arg));
			return -1;
		}
		o->metrics_listen = arg;
		return 0;
	case O_METRICS_FILE: o->metrics_file = arg; return 0;
	case O_METRICS_MS:
		if (parse_num("metrics-file-interval-ms", arg, 86400000, &n, 10) < 0)
			return -1;
		if (n < 100) {
			fprintf(stderr, "tqd: --metrics-file-interval-ms must be 100..86400000\n");
			return -1;
		}
		o->metrics_file_ms = (long)n;
		return 0;
	case O_POOL: case O_POOL_INTERVAL: case O_POOL_WAIT: case O_POOL_BACKLOG:
	case O_POOL_IDLE: case O_POOL_GRACE:
		return tqd_pool_option((enum tqd_pool_opt)(c - O_POOL), arg);
	case 'q': o->quiet = true; return 0;
	default: return -1;
	}
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -1;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (logfp == stderr)
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static void report(const struct tq_recovery *r)
{
	if (r->procs)
		say("recovered %u dead handle%s", r->procs, r->procs == 1 ? "" : "s");
	if (r->expired)
		say("took back %u expired lease%s", r->expired, r->expired == 1 ? "" : "s");
	if (r->requeued || r->dead || r->freed)
		say("requeued %u task%s, dead-lettered %u, freed %u slot%s or chunk%s",
		    r->requeued, r->requeued == 1 ? "" : "s", r->dead, r->freed,
		    r->freed == 1 ? "" : "s", r->freed == 1 ? "" : "s");
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa;
	struct tq_recovery rep;
	tq *t = NULL;
	int c, e;

	memset(&o, 0, sizeof(o));
	tq_config_init(&o.cfg);
	o.segment = getenv("TQ_SEGMENT") && *getenv("TQ_SEGMENT") ? getenv("TQ_SEGMENT") : DEFAULT_SEGMENT;
	o.interval_ms = 10;
	o.sweep_s = 10;
	logfp = stderr;
	while ((c = getopt_long(argc, argv, "s:ci:dl:f:qh", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?' || apply(&o, c, optarg) < 0) {
			if (c == '?')
				usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tqd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o.log) {
		logfp = fopen(o.log, "ae");
		if (!logfp) {
			fprintf(stderr, "tqd: --log %s: %s\n", o.log, strerror(errno));
			return 1;
		}
	}

	e = tq_attach(o.segment, &t);
	if (e == -ENOENT && o.create) {
		e = tq_create(o.segment, &o.cfg, &t);
		if (e == -EEXIST)
			e = tq_attach(o.segment, &t);
		else if (e == 0 && !o.quiet)
			say("created segment %s: %u queues, %u levels, capacity %u", o.segment,
			    o.cfg.queues, o.cfg.levels, o.cfg.capacity);
		if (e == 0)
			report_replay(t);
	} else if (e == 0 && o.cfg.journal_dir[0]) {
		struct tq_journal_info ji;

		if (tq_journal_info(t, &ji) == 0 && strcmp(ji.dir, o.cfg.journal_dir) != 0)
			say("warning: %s exists with %s%s; --journal %s is ignored", o.segment,
			    ji.dir[0] ? "its journal in " : "no journal", ji.dir, o.cfg.journal_dir);
	}
	if (e < 0) {
		fprintf(stderr, "tqd: %s: %s%s%s%s\n", o.segment, tq_strerror(e),
			*tq_last_error(NULL) ? " (" : "", tq_last_error(NULL),
			*tq_last_error(NULL) ? ")" : "");
		if (e == -ENOENT && !o.create)
			fprintf(stderr, "tqd: use --create to create it\n");
		return 1;
	}
	e = tq_supervisor_acquire(t, 0);
	if (e == -EBUSY && o.standby) {
		if (!o.quiet)
			say("standing by: %s", tq_last_error(t));
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		while (!stop && (e = tq_supervisor_acquire(t, 200)) == -EBUSY)
			;
		if (stop) {
			tq_detach(t);
			return 0;
		}
	}
	if (e < 0) {
		fprintf(stderr, "tqd: %s: %s\n", o.segment, *tq_last_error(t) ? tq_last_error(t) :
			tq_strerror(e));
		tq_detach(t);
		return 1;
	}

	if (o.once) {
		e = tq_recover(t, &rep);
		tq_tick(t);
		report(&rep);
		printf("repairs %d: dead handles %u, requeued %u, dead-lettered %u, expired %u, freed %u\n",
		       e, rep.procs, rep.requeued, rep.dead, rep.expired, rep.freed);
		if (o.unlink_on_exit)
			tq_unlink(o.segment);
		tq_detach(t);
		return 0;
	}
	struct metrics_export *mx = NULL;
	struct metrics_export_opts mo = { .listen = o.metrics_listen, .file = o.metrics_file,
		.file_interval_ms = o.metrics_file_ms, .segment = o.segment, .log = say };

	if ((mo.listen || mo.file) && metrics_export_open(&mx, &mo, t) < 0) {
		tq_detach(t);
		return 1;
	}
	if (o.daemon && daemonize() < 0) {
		fprintf(stderr, "tqd: cannot daemonize: %s\n", strerror(errno));
		metrics_export_close(mx);
		tq_detach(t);
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!o.quiet)
		say("supervising %s every %ld ms", o.segment, o.interval_ms);
	if (set_schedules(t) < 0) {
		metrics_export_close(mx);
		tq_detach(t);
		return 1;
	}
	if (tqd_pool_any())
		tqd_pool_start(t, o.segment, say);

	double next_sweep = mono_s();

	while (!stop) {
		struct timespec nap = { 0, o.interval_ms * 1000000L };

		if (!tq_supervisor_active(t)) {
			say("another tqd took over %s; stopping", o.segment);
			break;
		}
		if (tq_recover(t, &rep) > 0)
			report(&rep);
		tq_tick(t);
		journal_work(t);
		if (tqd_pool_any())
			tqd_pool_tick(t);
		if (o.sweep_s && mono_s() >= next_sweep) {
			if (tq_sweep(t, &rep) > 0)
				say("swept %u orphaned slot%s or chunk%s", rep.freed,
				    rep.freed == 1 ? "" : "s", rep.freed == 1 ? "" : "s");
			next_sweep = mono_s() + o.sweep_s;
		}
		if (mx)
			metrics_export_run(mx, t, o.interval_ms);   /* serves while it waits */
		else
			nanosleep(&nap, NULL);
	}
	tqd_pool_stop();
	metrics_export_close(mx);
	if (!o.quiet)
		say("stopping");
	if (o.unlink_on_exit)
		tq_unlink(o.segment);
	tq_detach(t);
	return 0;
}

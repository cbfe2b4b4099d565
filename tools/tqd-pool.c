/* SPDX-License-Identifier: MIT */
/*
 * tqd-pool.c - tqd's worker pools: for each --pool QUEUE:MIN:MAX:COMMAND,
 * keep between MIN and MAX worker processes, each `/bin/sh -c COMMAND` in
 * a process group of its own with TQ_SEGMENT and TQ_QUEUE in its
 * environment.
 *
 * Once per --pool-interval-ms it takes one scaling decision per pool, from
 * what the segment says (never from timings of its own): it grows by one
 * worker when tasks wait (depth > 0 and the oldest pending task has waited
 * --pool-wait-ms, or the median wait of the tasks leased during the last
 * interval is that long, or depth per worker reaches --pool-backlog), and
 * it retires one worker (SIGTERM to its group) when depth is 0 and a worker
 * has been idle for --pool-idle-ms: no lease held and no new lease taken,
 * as tq_procs() shows the handles of that worker's process group. Every
 * pass it reaps exited workers (waitpid WNOHANG) and restarts those that
 * crashed, backing off when one keeps dying within a second. Every
 * decision is logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tqd-pool.h"

extern char **environ;

#define MAX_POOLS    32
#define MAX_WORKERS  256

struct pworker {
	pid_t pid;               /* /bin/sh, leader of its process group */
	bool retiring;           /* SIGTERMed by us, or dead: not counted as live */
	bool killed;             /* SIGKILLed after the grace period */
	bool reaped;             /* the leader is gone; its group may not be */
	double started;          /* monotonic s */
	double retire_at, killed_at;
	double idle_since;       /* last time seen busy or taking a lease */
	uint64_t leased;         /* leases taken by its handles, at the last look */
	bool attached;           /* had a handle at the last look */
	bool busy;
};

struct pool {
	char queue[TQ_QUEUE_NAME_MAX + 1];
	unsigned min, max;
	const char *cmd;
	char *run;               /* what sh -c runs: "exec CMD" for a simple CMD */
	int q;                   /* -1 until the queue is declared */
	bool warned;
	struct pworker w[MAX_WORKERS];
	unsigned n;              /* retiring included */
	unsigned restarts;       /* crashed workers to replace */
	unsigned quick_crashes;  /* in a row, each within a second of its start */
	double restart_at;       /* no restart before this */
	struct tq_histogram prev;
	bool have_prev;
};

static struct pool pools[MAX_POOLS];
static unsigned npools;
static long interval_ms = 1000, wait_ms = 1000, idle_ms = 30000, grace_ms = 10000;
static unsigned long backlog;
static tqd_pool_log_fn say;
static const char *segment;
static uint32_t levels;
static double next_scale;

const char tqd_pool_usage[] =
	"      --pool Q:MIN:MAX:CMD  keep MIN..MAX worker processes for queue Q, each\n"
	"                         '/bin/sh -c CMD' with TQ_SEGMENT and TQ_QUEUE set\n"
	"                         (e.g. 'tq worker --exec ./job', or a program using\n"
	"                         libtq's worker runtime); repeatable; crashed workers\n"
	"                         are restarted; SIGTERM retires one\n"
	"      --pool-interval-ms N  one scaling step per pool per N ms (default 1000)\n"
	"      --pool-wait-ms N   grow while tasks have waited N ms (default 1000)\n"
	"      --pool-backlog N   also grow at N pending tasks per worker (default 0: off)\n"
	"      --pool-idle-ms N   retire a worker idle for N ms, down to MIN (default 30000)\n"
	"      --pool-grace-ms N  at shutdown, SIGTERM then SIGKILL after N ms (default 10000)\n";

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_ul(const char *what, const char *v, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || !*v || *end || v[0] == '-' || v[0] == '+' || n > max) {
		fprintf(stderr, "tqd: %s: '%s' is not a number in 0..%lu\n", what, v, max);
		return -1;
	}
	*out = n;
	return 0;
}

static int add_pool(const char *spec)
{
	char part[3][64];
	const char *p = spec;
	unsigned long min, max;
	struct pool *pl;

	for (int i = 0; i < 3; i++) {
		const char *c = strchr(p, ':');

		if (!c || (size_t)(c - p) >= sizeof(part[i])) {
			fprintf(stderr, "tqd: --pool '%s': want QUEUE:MIN:MAX:COMMAND\n", spec);
			return -1;
		}
		memcpy(part[i], p, (size_t)(c - p));
		part[i][c - p] = 0;
		p = c + 1;
	}
	if (!part[0][0] || strlen(part[0]) > TQ_QUEUE_NAME_MAX) {
		fprintf(stderr, "tqd: --pool '%s': bad queue name\n", spec);
		return -1;
	}
	if (parse_ul("--pool MIN", part[1], MAX_WORKERS, &min) < 0 ||
	    parse_ul("--pool MAX", part[2], MAX_WORKERS, &max) < 0)
		return -1;
	if (max < 1 || min > max) {
		fprintf(stderr, "tqd: --pool '%s': want 0 <= MIN <= MAX, 1 <= MAX <= %d\n", spec,
			MAX_WORKERS);
		return -1;
	}
	if (!*p) {
		fprintf(stderr, "tqd: --pool '%s': no command\n", spec);
		return -1;
	}
	for (unsigned i = 0; i < npools; i++)
		if (!strcmp(pools[i].queue, part[0])) {
			fprintf(stderr, "tqd: --pool: queue %s has a pool already\n", part[0]);
			return -1;
		}
	if (npools == MAX_POOLS) {
		fprintf(stderr, "tqd: --pool: at most %d pools\n", MAX_POOLS);
		return -1;
	}
	pl = &pools[npools++];
	memset(pl, 0, sizeof(*pl));
	strcpy(pl->queue, part[0]);
	pl->min = (unsigned)min;
	pl->max = (unsigned)max;
	pl->cmd = p;          /* option strings live as long as tqd */
	/* A simple command (words of plain characters) is exec'd by the
	 * shell: the worker is then tqd's child itself, gets the SIGTERM
	 * directly, and its exit status is the one reaped. */
	pl->run = malloc(strlen(p) + 6);
	if (!pl->run) {
		fprintf(stderr, "tqd: --pool: out of memory\n");
		npools--;
		return -1;
	}
	strcpy(pl->run, p);
	if (strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _./,:+@%-")
	    == strlen(p) && p[0] != '-')
		sprintf(pl->run, "exec %s", p);
	pl->q = -1;
	return 0;
}

int tqd_pool_option(enum tqd_pool_opt which, const char *arg)
{
	unsigned long n;

	switch (which) {
	case TQD_POOL_SPEC:
		return add_pool(arg);
	case TQD_POOL_INTERVAL:
		if (parse_ul("--pool-interval-ms", arg, 3600000, &n) < 0)
			return -1;
		if (n < 1) {
			fprintf(stderr, "tqd: --pool-interval-ms must be at least 1\n");
			return -1;
		}
		interval_ms = (long)n;
		return 0;
	case TQD_POOL_WAIT:
		if (parse_ul("--pool-wait-ms", arg, 86400000, &n) < 0)
			return -1;
		wait_ms = (long)n;
		return 0;
	case TQD_POOL_BACKLOG:
		return parse_ul("--pool-backlog", arg, 1ul << 30, &backlog);
	case TQD_POOL_IDLE:
		if (parse_ul("--pool-idle-ms", arg, 86400000, &n) < 0)
			return -1;
		idle_ms = (long)n;
		return 0;
	case TQD_POOL_GRACE:
		if (parse_ul("--pool-grace-ms", arg, 3600000, &n) < 0)
			return -1;
		grace_ms = (long)n;
		return 0;
	}
	return -1;
}

bool tqd_pool_any(void)
{
	return npools > 0;
}

static void describe(char *buf, size_t size, int st)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, size, "status 0x%x", st);
}

/* ------------------------------------------------------------------------
 * Starting and stopping workers
 */

/* Our environment with TQ_SEGMENT and TQ_QUEUE replaced. */
static char **worker_env(const struct pool *pl, char *seg, size_t segsz, char *que, size_t quesz)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "TQ_SEGMENT=", 11) && strncmp(environ[i], "TQ_QUEUE=", 9))
			env[k++] = environ[i];
	snprintf(seg, segsz, "TQ_SEGMENT=%s", segment);
	snprintf(que, quesz, "TQ_QUEUE=%s", pl->queue);
	env[k++] = seg;
	env[k++] = que;
	env[k] = NULL;
	return env;
}

static int spawn(struct pool *pl, const char *why)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD };
	char seg[TQ_NAME_MAX + 16], que[TQ_QUEUE_NAME_MAX + 16];
	char *argv[] = { "sh", "-c", pl->run, NULL };
	char **env;
	struct sigaction dfl;
	sigset_t none;
	struct pworker *w;
	pid_t pid, parent = getpid();

	if (pl->n == MAX_WORKERS)
		return -1;
	env = worker_env(pl, seg, sizeof(seg), que, sizeof(que));
	if (!env) {
		say("pool %s: cannot start a worker: out of memory", pl->queue);
		return -1;
	}
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&none);
	pid = fork();
	if (pid == 0) {
		int fd;

		/* Only async-signal-safe calls until exec. Its own process
		 * group: a retirement or a shutdown reaches the command's
		 * children too, and a terminal's ^C reaches tqd only. */
		setpgid(0, 0);
		/* If tqd dies, its workers are told to stop (a standby that
		 * takes over starts its own). */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(0);
		for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &dfl, NULL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		fd = open("/dev/null", O_RDONLY);
		if (fd > 0) {
			dup2(fd, 0);
			close(fd);
		}
		/* Nothing of tqd's beyond stdout and stderr. */
		close_range(3, ~0u, 0);
		execve("/bin/sh", argv, env);
		_exit(127);
	}
	free(env);
	if (pid < 0) {
		say("pool %s: cannot start a worker: %s", pl->queue, strerror(errno));
		return -1;
	}
	setpgid(pid, pid);           /* also here: no kill(-pid) can miss it */
	w = &pl->w[pl->n++];
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->started = w->idle_since = mono_s();
	say("pool %s: started worker %d (%s)", pl->queue, (int)pid, why);
	return 0;
}

static unsigned live(const struct pool *pl)
{
	unsigned n = 0;

	for (unsigned i = 0; i < pl->n; i++)
		n += !pl->w[i].retiring;
	return n;
}

static void retire(struct pool *pl, struct pworker *w, double now)
{
	w->retiring = true;
	w->retire_at = now;
	kill(-w->pid, SIGTERM);
}

/* Reap the pool's exited workers; count crashes for restart. A worker is
 * its process group: it is forgotten once the group is empty (or a second
 * after SIGKILL, for members that stay as zombies of another reaper). */
static void reap(struct pool *pl, double now)
{
	for (unsigned i = 0; i < pl->n;) {
		struct pworker *w = &pl->w[i];
		char how[96];
		int st;

		if (!w->reaped) {
			pid_t r = waitpid(w->pid, &st, WNOHANG);

			if (r == w->pid || (r < 0 && errno == ECHILD)) {
				w->reaped = true;
				if (r < 0)
					snprintf(how, sizeof(how), "lost: %s", strerror(errno));
				else
					describe(how, sizeof(how), st);
				if (w->retiring) {
					say("pool %s: worker %d retired (%s)", pl->queue, (int)w->pid, how);
				} else {
					bool quick = now - w->started < 1.0;

					pl->quick_crashes = quick ? pl->quick_crashes + 1 : 0;
					if (pl->quick_crashes) {
						unsigned k = pl->quick_crashes < 6 ? pl->quick_crashes : 6;
						double back = 0.1 * (double)(1u << k);

						pl->restart_at = now + (back < 5 ? back : 5);
					}
					pl->restarts++;
					say("pool %s: worker %d died (%s); restarting it%s", pl->queue,
					    (int)w->pid, how, pl->quick_crashes ? " after a backoff" : "");
					/* What the command left in its group goes too. */
					retire(pl, w, now);
				}
			}
		}
		if (w->reaped && ((kill(-w->pid, 0) < 0 && errno == ESRCH) ||
				  (w->killed && now - w->killed_at >= 1.0))) {
			*w = pl->w[--pl->n];
			continue;
		}
		/* Retiring past the grace period: SIGKILL the group. */
		if (w->retiring && !w->killed && now - w->retire_at >= grace_ms / 1000.0) {
			say("pool %s: worker %d still running %ld ms after SIGTERM: killing it",
			    pl->queue, (int)w->pid, grace_ms);
			kill(-w->pid, SIGKILL);
			w->killed = true;
			w->killed_at = now;
		}
		i++;
	}
}

/* ------------------------------------------------------------------------
 * Looking at the segment
 */

/* Which worker of the pool a process belongs to: its group leader. */
static struct pworker *owner_of(struct pool *pl, pid_t pid)
{
	char path[64], buf[512];
	const char *rp;
	FILE *f;
	size_t n;
	int pgrp = 0, ppid;
	char state;

	for (unsigned i = 0; i < pl->n; i++)
		if (pl->w[i].pid == pid)
			return &pl->w[i];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	rp = strrchr(buf, ')');
	if (!rp || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
		return NULL;
	for (unsigned i = 0; i < pl->n; i++)
		if (pl->w[i].pid == pgrp)
			return &pl->w[i];
	return NULL;
}

/* Update each worker's busy/idle view from the process records. */
static void observe(tq *t, struct pool *pl, double now)
{
	struct tq_proc_info pi[64];
	uint64_t leased[MAX_WORKERS];
	bool busy[MAX_WORKERS], attached[MAX_WORKERS];
	unsigned cur = 0;
	int n;

	memset(leased, 0, sizeof(leased));
	memset(busy, 0, sizeof(busy));
	memset(attached, 0, sizeof(attached));
	while ((n = tq_procs(t, pi, 64, &cur)) > 0) {
		for (int i = 0; i < n; i++) {
			struct pworker *w;
			unsigned k;

			if (pi[i].flags & TQ_PROC_SUPERVISOR || pi[i].state == TQ_PROC_DEAD ||
			    pi[i].state == TQ_PROC_DETACHED || pi[i].pid == getpid())
				continue;
			w = owner_of(pl, pi[i].pid);
			if (!w)
				continue;
			k = (unsigned)(w - pl->w);
			attached[k] = true;
			leased[k] += pi[i].leased;
			busy[k] |= pi[i].state == TQ_PROC_BUSY || pi[i].leased_now > 0;
		}
	}
	for (unsigned k = 0; k < pl->n; k++) {
		struct pworker *w = &pl->w[k];

		/* Not attached yet (starting) counts as busy: not idle. */
		if (busy[k] || !attached[k] || leased[k] != w->leased)
			w->idle_since = now;
		w->leased = leased[k];
		w->attached = attached[k];
		w->busy = busy[k];
	}
}

/* How long the oldest pending task of the queue has waited, in ms. */
static uint64_t oldest_wait_ms(tq *t, int q)
{
	uint64_t oldest = 0, now = tq_now_ns();

	for (uint32_t lv = 0; lv < levels; lv++) {
		uint64_t id, cur = 0;
		struct tq_info in;

		if (tq_list(t, q, (int)lv, TQ_STATE_PENDING, &id, 1, &cur) == 1 &&
		    tq_get(t, id, &in) == 0 && in.state == TQ_STATE_PENDING &&
		    (!oldest || in.submitted_ns < oldest))
			oldest = in.submitted_ns;
	}
	return oldest && oldest < now ? (now - oldest) / 1000000u : 0;
}

/* Median wait of the tasks first leased since the last look, in ms. */
static uint64_t recent_wait_ms(tq *t, struct pool *pl)
{
	struct tq_histogram h, d;
	uint64_t p50 = 0;

	if (tq_histogram(t, pl->q, -1, TQ_HIST_WAIT, &h) < 0)
		return 0;
	if (pl->have_prev && h.count > pl->prev.count) {
		memset(&d, 0, sizeof(d));
		for (unsigned b = 0; b < TQ_HIST_BUCKETS; b++)
			d.buckets[b] = h.buckets[b] >= pl->prev.buckets[b] ?
				       h.buckets[b] - pl->prev.buckets[b] : 0;
		d.count = h.count - pl->prev.count;
		p50 = tq_hist_percentile(&d, 50) / 1000000u;
	}
	pl->prev = h;
	pl->have_prev = true;
	return p50;
}

static void scale(tq *t, struct pool *pl, double now)
{
	struct tq_stats st;
	uint64_t oldest, recent;
	unsigned n = live(pl);
	struct pworker *idlest = NULL;

	if (tq_stats(t, pl->q, -1, &st) < 0)
		return;
	observe(t, pl, now);
	oldest = st.depth ? oldest_wait_ms(t, pl->q) : 0;
	recent = recent_wait_ms(t, pl);
	if (n < pl->max && st.depth > 0 &&
	    ((uint64_t)wait_ms <= oldest || (uint64_t)wait_ms <= recent ||
	     (backlog && st.depth >= backlog * (n ? n : 1)))) {
		char why[160];

		snprintf(why, sizeof(why), "growing to %u: depth %" PRIu64 ", oldest wait %" PRIu64
			 " ms, median wait %" PRIu64 " ms", n + 1, st.depth, oldest, recent);
		spawn(pl, why);
		return;
	}
	if (n <= pl->min || st.depth > 0)
		return;
	for (unsigned k = 0; k < pl->n; k++) {
		struct pworker *w = &pl->w[k];

		if (w->retiring || w->busy || !w->attached)
			continue;
		if ((now - w->idle_since) * 1000.0 < (double)idle_ms)
			continue;
		if (!idlest || w->idle_since < idlest->idle_since)
			idlest = w;
	}
	if (idlest) {
		say("pool %s: shrinking to %u: worker %d idle for %.0f ms", pl->queue, n - 1,
		    (int)idlest->pid, (now - idlest->idle_since) * 1000.0);
		retire(pl, idlest, now);
	}
}

/* ------------------------------------------------------------------------
 * tqd's hooks
 */
void tqd_pool_start(tq *t, const char *seg, tqd_pool_log_fn log)
{
	struct tq_segment_info si;

	say = log;
	segment = seg;
	levels = tq_segment_info(t, &si) == 0 ? si.config.levels : 1;
	for (unsigned i = 0; i < npools; i++)
		say("pool %s: %u..%u workers running '%s'", pools[i].queue, pools[i].min,
		    pools[i].max, pools[i].cmd);
	next_scale = mono_s() + interval_ms / 1000.0;
	tqd_pool_tick(t);
}

void tqd_pool_tick(tq *t)
{
	double now = mono_s();
	bool do_scale = now >= next_scale;

	if (do_scale)
		next_scale = now + interval_ms / 1000.0;
	for (unsigned i = 0; i < npools; i++) {
		struct pool *pl = &pools[i];

		reap(pl, now);
		if (pl->q < 0) {
			pl->q = tq_queue_find(t, pl->queue);
			if (pl->q < 0) {
				if (!pl->warned)
					say("pool %s: no such queue yet; starting its workers once "
					    "it is declared", pl->queue);
				pl->warned = true;
				continue;
			}
		}
		if (now >= pl->restart_at) {
			while (pl->restarts && live(pl) < pl->max && pl->n < MAX_WORKERS) {
				pl->restarts--;
				if (spawn(pl, "replacing a dead worker") < 0)
					break;
			}
			pl->restarts = 0;
			while (live(pl) < pl->min && pl->n < MAX_WORKERS)
				if (spawn(pl, "below the minimum") < 0)
					break;
		}
		if (do_scale)
			scale(t, pl, now);
	}
}

void tqd_pool_stop(void)
{
	unsigned left = 0;
	double now = mono_s();

	for (unsigned i = 0; i < npools; i++)
		for (unsigned k = 0; k < pools[i].n; k++) {
			struct pworker *w = &pools[i].w[k];

			if (!w->retiring)
				retire(&pools[i], w, now);
			left++;
		}
	if (left)
		say("pool: stopping %u worker%s (SIGTERM, SIGKILL after %ld ms)", left,
		    left == 1 ? "" : "s", grace_ms);
	while (left) {
		struct timespec nap = { 0, 10000000 };

		left = 0;
		now = mono_s();
		for (unsigned i = 0; i < npools; i++) {
			reap(&pools[i], now);
			left += pools[i].n;
		}
		if (left)
			nanosleep(&nap, NULL);
	}
}

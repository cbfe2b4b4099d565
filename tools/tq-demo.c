/* SPDX-License-Identifier: MIT */
/*
 * tq-demo - the main job in one command: a segment, its supervisor (tqd),
 * producer processes submitting tasks at three priority levels and worker
 * processes leasing, acking and sometimes failing them, with a live line
 * four times a second and a summary at the end. Half-way through it kills
 * a worker with SIGKILL, and tqd gives its tasks back.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tq/tq.h>

#define MAXW 64
#define LEVELS 3

struct shared {
	int stop;
	uint64_t lat_sum_ns[LEVELS];
	uint64_t lat_n[LEVELS];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int e, tq *t)
{
	fprintf(stderr, "tq-demo: %s: %s%s%s\n", what, tq_strerror(e), *tq_last_error(t) ? ": " : "",
		tq_last_error(t));
	exit(1);
}

static void worker(const char *name, int q, int fail_pct, struct shared *sh, unsigned seed)
{
	struct tq_lease_opts lo = { .queues = &q, .nqueues = 1, .timeout_ms = 100 };
	struct tq_task task[16];
	tq *t;
	int e = tq_attach(name, &t);

	if (e < 0)
		die("worker attach", e, NULL);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		int n = tq_lease(t, &lo, task, 16);

		if (n == -ETIMEDOUT || n == -EINTR)
			continue;
		if (n < 0)
			die("lease", n, t);
		for (int i = 0; i < n; i++) {
			uint64_t sent;

			memcpy(&sent, task[i].payload, sizeof(sent));
			if (task[i].attempts == 1 && task[i].level < LEVELS) {
				__atomic_add_fetch(&sh->lat_sum_ns[task[i].level], mono_ns() - sent,
						   __ATOMIC_RELAXED);
				__atomic_add_fetch(&sh->lat_n[task[i].level], 1, __ATOMIC_RELAXED);
			}
			seed = seed * 1103515245u + 12345u;
			if ((int)((seed >> 16) % 100) < fail_pct)
				tq_fail(t, task[i].id);
			else
				tq_ack(t, task[i].id, NULL, 0);
		}
	}
	tq_detach(t);
	_exit(0);
}

static void producer(const char *name, int q, long n, unsigned seed)
{
	struct tq_task_spec spec[8];
	char payload[8][64];
	tq *t;
	int e = tq_attach(name, &t);

	if (e < 0)
		die("producer attach", e, NULL);
	memset(payload, 0, sizeof(payload));
	for (long i = 0; i < n;) {
		int k = n - i < 8 ? (int)(n - i) : 8;
		struct tq_submit_opts so = { .timeout_ms = -1, .max_attempts = 3 };

		for (int j = 0; j < k; j++) {
			uint64_t now = mono_ns();
			seed = seed * 1103515245u + 12345u;
			memcpy(payload[j], &now, sizeof(now));
			spec[j].payload = payload[j];
			spec[j].len = sizeof(payload[j]);
			spec[j].level = (seed >> 16) % 10 == 0 ? 0 : (seed >> 16) % 10 < 4 ? 1 : 2;
			spec[j].type = 1;
		}
		e = tq_submit_batch(t, q, spec, (unsigned)k, &so, NULL);
		if (e < 0)
			die("submit", e, t);
		i += e;
	}
	tq_detach(t);
	_exit(0);
}

static pid_t spawn_tqd(const char *self, const char *name)
{
	char path[PATH_MAX], copy[PATH_MAX];
	const char *env = getenv("TQD");
	pid_t pid;

	snprintf(copy, sizeof(copy), "%s", self);
	snprintf(path, sizeof(path), "%s/tqd", dirname(copy));
	if (env && *env)
		snprintf(path, sizeof(path), "%s", env);
	pid = fork();
	if (pid == 0) {
		execl(path, "tqd", "--segment", name, "--interval-ms", "10", "--quiet", (char *)NULL);
		fprintf(stderr, "tq-demo: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	return pid;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: tq-demo [--segment NAME] [--producers P] [--workers W] [--tasks N]\n"
		   "               [--fail-pct F] [--no-kill]\n"
		   "Runs tqd, P producers and W workers on segment NAME (default $TQ_SEGMENT,\n"
		   "else /tq), shows a live line, kills one worker half-way, prints a summary.\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "segment", required_argument, NULL, 's' }, { "producers", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' }, { "tasks", required_argument, NULL, 'n' },
		{ "fail-pct", required_argument, NULL, 'f' }, { "no-kill", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *name = getenv("TQ_SEGMENT") && *getenv("TQ_SEGMENT") ? getenv("TQ_SEGMENT") : "/tq";
	long producers = 2, workers = 4, tasks = 2000000, fail_pct = 2;
	bool do_kill = true, created = false, killed = false;
	pid_t wpid[MAXW], ppid[MAXW], tqd;
	struct tq_config cfg;
	struct shared *sh;
	tq *t;
	int c, q, e, st;
	char *end;

	while ((c = getopt_long(argc, argv, "s:p:w:n:f:kh", lopts, NULL)) != -1) {
		long *dst = c == 'p' ? &producers : c == 'w' ? &workers : c == 'n' ? &tasks :
			    c == 'f' ? &fail_pct : NULL;
		if (c == 's') {
			name = optarg;
		} else if (c == 'k') {
			do_kill = false;
		} else if (c == 'h') {
			usage(stdout);
			return 0;
		} else if (dst) {
			errno = 0;
			*dst = strtol(optarg, &end, 10);
			if (errno || *end || *dst < (c == 'f' ? 0 : 1) ||
			    *dst > (c == 'f' ? 50 : c == 'n' ? 100000000 : MAXW)) {
				fprintf(stderr, "tq-demo: bad value '%s' for -%c\n", optarg, c);
				return 2;
			}
		} else {
			usage(stderr);
			return 2;
		}
	}

	tq_config_init(&cfg);
	cfg.capacity = 1u << 16;
	e = tq_attach(name, &t);
	if (e == -ENOENT) {
		e = tq_create(name, &cfg, &t);
		created = e == 0;
	}
	if (e < 0)
		die(name, e, NULL);
	q = tq_queue_declare(t, "demo", &(struct tq_queue_config){ .max_attempts = 3 });
	if (q < 0)
		die("declare", q, t);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap", -errno, NULL);
	memset(sh, 0, sizeof(*sh));

	tqd = spawn_tqd(argv[0], name);
	for (long i = 0; i < workers; i++)
		if ((wpid[i] = fork()) == 0)
			worker(name, q, (int)fail_pct, sh, (unsigned)i * 7919u + 1);
	uint64_t t0 = mono_ns();
	for (long i = 0; i < producers; i++)
		if ((ppid[i] = fork()) == 0)
			producer(name, q, tasks / producers + (i < tasks % producers), (unsigned)i + 77);

	printf("tq-demo: segment %s, tqd pid %d, %ld producers, %ld workers, %ld tasks at "
	       "levels 0-2, %ld%% of attempts fail\n", name, (int)tqd, producers, workers, tasks,
	       fail_pct);
	printf("%8s %10s %10s %8s %8s %8s %8s %10s %8s\n", "time", "submitted", "acked", "failed",
	       "dead", "pending", "leased", "tasks/s", "repairs");
	uint64_t last_acked = 0, last_t = t0;
	for (;;) {
		struct tq_stats s;
		struct tq_segment_info si;
		uint64_t now;

		usleep(250000);
		now = mono_ns();
		tq_stats(t, q, -1, &s);
		tq_segment_info(t, &si);
		printf("%7.2fs %10llu %10llu %8llu %8llu %8llu %8llu %10.0f %8llu\n", (now - t0) / 1e9,
		       (unsigned long long)s.submitted, (unsigned long long)s.acked,
		       (unsigned long long)s.failed, (unsigned long long)s.dead,
		       (unsigned long long)s.depth, (unsigned long long)s.leased_now,
		       (s.acked - last_acked) / ((now - last_t) / 1e9),
		       (unsigned long long)si.repairs);
		fflush(stdout);
		last_acked = s.acked;
		last_t = now;
		if (do_kill && !killed && s.acked >= (uint64_t)tasks / 2) {
			kill(wpid[0], SIGKILL);
			waitpid(wpid[0], &st, 0);
			printf("         killed worker %d with SIGKILL holding %s; tqd gives its tasks back\n",
			       (int)wpid[0], s.leased_now ? "leases" : "nothing");
			if ((wpid[0] = fork()) == 0)
				worker(name, q, (int)fail_pct, sh, 4242);
			killed = true;
		}
		/* Done when everything submitted is finished: nothing pending,
		 * and the only slots still held are the dead letters. */
		if (s.submitted >= (uint64_t)tasks && s.depth == 0 && si.tasks_held <= s.dead)
			break;
		if (now - t0 > 600ull * 1000000000ull) {
			fprintf(stderr, "tq-demo: not finished after 600 s\n");
			break;
		}
	}
	double secs = (mono_ns() - t0) / 1e9;
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	for (long i = 0; i < producers; i++)
		waitpid(ppid[i], &st, 0);
	for (long i = 0; i < workers; i++)
		waitpid(wpid[i], &st, 0);
	kill(tqd, SIGTERM);
	waitpid(tqd, &st, 0);

	struct tq_stats all;
	struct tq_segment_info si;
	tq_stats(t, q, -1, &all);
	tq_segment_info(t, &si);
	printf("\nsummary: %ld tasks in %.2f s = %.0f tasks/s end to end\n", tasks, secs, tasks / secs);
	printf("  %-6s %10s %10s %8s %8s %14s\n", "level", "submitted", "acked", "failed", "dead",
	       "submit->start");
	for (int l = 0; l < LEVELS; l++) {
		struct tq_stats s;
		tq_stats(t, q, l, &s);
		printf("  %-6d %10llu %10llu %8llu %8llu %11.1f us\n", l,
		       (unsigned long long)s.submitted, (unsigned long long)s.acked,
		       (unsigned long long)s.failed, (unsigned long long)s.dead,
		       sh->lat_n[l] ? sh->lat_sum_ns[l] / 1e3 / sh->lat_n[l] : 0.0);
	}
	printf("  all    %10llu %10llu %8llu %8llu   (pending %llu, leased %llu)\n",
	       (unsigned long long)all.submitted, (unsigned long long)all.acked,
	       (unsigned long long)all.failed, (unsigned long long)all.dead,
	       (unsigned long long)all.depth, (unsigned long long)all.leased_now);
	bool ok = all.submitted >= (uint64_t)tasks && all.depth == 0 && si.tasks_held == all.dead;
	printf("  repairs by tqd: %llu; every task finished (acked or dead-lettered), none stuck: %s\n",
	       (unsigned long long)si.repairs, ok ? "yes" : "NO");
	tq_detach(t);
	if (created)
		tq_unlink(name);
	return ok ? 0 : 1;
}

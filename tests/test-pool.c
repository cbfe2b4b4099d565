/* SPDX-License-Identifier: MIT */
/*
 * test-pool - tqd's worker pools (--pool QUEUE:MIN:MAX:COMMAND): the pool
 * starts MIN workers; under a burst it grows above MIN (and never above
 * MAX), and once the queue is drained and the workers idle it shrinks back
 * to MIN; a SIGKILLed pool worker is replaced by a new process; at tqd's
 * stop every pool worker goes, and when tqd is SIGKILLed its workers stop
 * by themselves. Everything is asserted on what the segment
 * shows (tq_procs, tq_stats), with bounded polling, never on timings.
 * Run as: test-pool PATH_TO_TQD PATH_TO_POOL_WORKER
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tq-test.h"

#define MIN_W 1
#define MAX_W 3
#define BURST 40

static const char *tqd_path, *worker_path;

static bool file_has(const char *path, const char *needle)
{
	static char buf[1 << 20];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

/* Bounded wait for a line of tqd's log. */
static bool log_has(const char *path, const char *needle)
{
	uint64_t end = tqt_mono_ms() + 30000;

	while (!file_has(path, needle)) {
		if (tqt_mono_ms() >= end)
			return false;
		tqt_sleep_ms(10);
	}
	return true;
}

static pid_t tqd_pid;

/* The live pool workers attached to the segment: distinct PIDs of
 * records that are neither tqd's nor ours. */
static unsigned pool_pids(tq *t, pid_t *pids, unsigned max)
{
	struct tq_proc_info pi[64];
	unsigned cur = 0, n = 0;
	int k;

	while ((k = tq_procs(t, pi, 64, &cur)) > 0)
		for (int i = 0; i < k; i++) {
			bool dup = false;

			if (pi[i].flags & TQ_PROC_SUPERVISOR || pi[i].pid == getpid() ||
			    pi[i].pid == tqd_pid ||
			    pi[i].state == TQ_PROC_DEAD || pi[i].state == TQ_PROC_DETACHED)
				continue;
			for (unsigned j = 0; j < n; j++)
				dup |= pids[j] == pi[i].pid;
			if (!dup && n < max)
				pids[n++] = pi[i].pid;
		}
	return n;
}

static unsigned pool_count(tq *t)
{
	pid_t pids[64];

	return pool_pids(t, pids, 64);
}

/* Records asleep in tq_lease(), other than tqd's and ours. */
static unsigned waiting(tq *t)
{
	struct tq_proc_info pi[64];
	unsigned cur = 0, n = 0;
	int k;

	while ((k = tq_procs(t, pi, 64, &cur)) > 0)
		for (int i = 0; i < k; i++)
			n += pi[i].state == TQ_PROC_WAITING && pi[i].pid != getpid() &&
			     pi[i].pid != tqd_pid;
	return n;
}

/* Poll (bounded) until the pool has exactly `want` workers. */
static bool count_becomes(tq *t, unsigned want, unsigned ms)
{
	uint64_t end = tqt_mono_ms() + ms;

	while (pool_count(t) != want) {
		if (tqt_mono_ms() >= end)
			return false;
		tqt_sleep_ms(10);
	}
	return true;
}

static uint64_t acked(tq *t, int q)
{
	struct tq_stats st;

	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	return st.acked;
}

static void test_usage(const char *tmp)
{
	char err[256];
	int st;
	const char *bad[][3] = {
		{ "--pool", "q:1", NULL },
		{ "--pool", "q:3:2:cmd", NULL },
		{ "--pool", "q:0:0:cmd", NULL },
		{ "--pool", "q:1:2:", NULL },
		{ "--pool-interval-ms", "0", NULL },
	};

	snprintf(err, sizeof(err), "%s/usage", tmp);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid = tqt_fork();

		if (pid == 0) {
			int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			dup2(fd, 2);
			dup2(fd, 1);
			execl(tqd_path, tqd_path, bad[i][0], bad[i][1], "--once", (char *)NULL);
			_exit(127);
		}
		CHECK_RET(tqt_wait_pid(pid, 20000, &st), 0);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s %s: status 0x%x", bad[i][0],
		       bad[i][1], st);
	}
	pid_t pid = tqt_fork();
	if (pid == 0) {
		int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, 1);
		execl(tqd_path, tqd_path, "--help", (char *)NULL);
		_exit(127);
	}
	CHECK_RET(tqt_wait_pid(pid, 20000, &st), 0);
	CHECK(file_has(err, "--pool Q:MIN:MAX:CMD"));
	CHECK(file_has(err, "--pool-idle-ms"));
}

static void test_pool(const char *tmp)
{
	char name[TQ_NAME_MAX + 1], log[256], spec[512], cfgpath[256];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "burst", NULL));
	pid_t pids[64];
	int st;

	snprintf(log, sizeof(log), "%s/tqd.log", tmp);
	snprintf(spec, sizeof(spec), "burst:%d:%d:%s --work-ms 100", MIN_W, MAX_W, worker_path);
	/* The pool's tuning through the config file, as a deployment would. */
	snprintf(cfgpath, sizeof(cfgpath), "%s/tqd.conf", tmp);
	FILE *f = fopen(cfgpath, "w");
	CHECK(f != NULL);
	fprintf(f, "pool-interval-ms = 50\npool-wait-ms = 30\npool-idle-ms = 300\n"
		"pool-grace-ms = 5000\n");
	fclose(f);
	pid_t tqd = tqt_fork();
	tqd_pid = tqd;
	if (tqd == 0) {
		execl(tqd_path, tqd_path, "--segment", name, "--interval-ms", "5", "--log", log,
		      "--config", cfgpath, "--pool", spec, (char *)NULL);
		_exit(127);
	}

	/* MIN workers come up. */
	CHECK(log_has(log, "pool burst: 1..3 workers"));
	CHECKF(count_becomes(t, MIN_W, 30000), "the pool did not start %d worker", MIN_W);

	/* A burst: the pool grows above MIN, never above MAX. */
	struct tq_submit_opts so = { 0 };
	for (int i = 0; i < BURST; i++)
		CHECK_RET(tq_submit(t, q, "b", 1, &so, NULL), 0);
	unsigned most = 0;
	uint64_t end = tqt_mono_ms() + 120000;
	while (acked(t, q) < BURST && tqt_mono_ms() < end) {
		unsigned n = pool_count(t);

		most = n > most ? n : most;
		tqt_sleep_ms(10);
	}
	CHECK_EQU(acked(t, q), BURST);
	TQT_LOG("the pool grew to %u workers", most);
	CHECKF(most > MIN_W, "the pool never grew above %d", MIN_W);
	CHECK_LE(most, MAX_W);
	CHECK(log_has(log, "growing to 2"));

	/* Drained and idle: back to MIN. */
	CHECKF(count_becomes(t, MIN_W, 60000), "the pool did not shrink back to %d", MIN_W);
	CHECK(log_has(log, "shrinking to"));
	CHECK(log_has(log, "retired (exit 0)"));

	/* A pool worker is SIGKILLed: a new process replaces it. */
	CHECK_EQ(pool_pids(t, pids, 64), MIN_W);
	pid_t victim = pids[0];
	CHECK_EQ(kill(victim, SIGKILL), 0);
	end = tqt_mono_ms() + 60000;
	bool replaced = false;
	while (!replaced && tqt_mono_ms() < end) {
		unsigned n = pool_pids(t, pids, 64);

		replaced = n == MIN_W && pids[0] != victim;
		if (!replaced)
			tqt_sleep_ms(10);
	}
	CHECKF(replaced, "killed worker %d was not replaced", (int)victim);
	CHECK(log_has(log, "restarting it"));
	pid_t fresh = pids[0];

	/* The replacement works. */
	CHECK_RET(tq_submit(t, q, "after", 5, &so, NULL), 0);
	end = tqt_mono_ms() + 30000;
	while (acked(t, q) < BURST + 1 && tqt_mono_ms() < end)
		tqt_sleep_ms(10);
	CHECK_EQU(acked(t, q), BURST + 1);

	/* tqd stops: its pool goes with it. */
	kill(tqd, SIGTERM);
	CHECK_RET(tqt_wait_pid(tqd, 30000, &st), 0);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "tqd status 0x%x", st);
	CHECK(log_has(log, "pool: stopping "));
	CHECK(!tqt_pid_alive(fresh));
	CHECK(!tqt_pid_alive(victim));
	struct tq_stats qs;
	CHECK_RET(tq_stats(t, q, -1, &qs), 0);
	CHECK_EQU(qs.leased_now, 0);
	CHECK_EQU(qs.depth, 0);
	tq_detach(t);
}

/* tqd is SIGKILLed: its pool workers are told (parent-death signal) and
 * stop by themselves, giving back what they hold. The pool comes from the
 * config file this time. */
static void test_orphans(const char *tmp)
{
	char name[TQ_NAME_MAX + 1], log[256], cfgpath[256];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	int st;

	CHECK_OK(tq_queue_declare(t, "orphans", NULL));
	snprintf(log, sizeof(log), "%s/tqd2.log", tmp);
	snprintf(cfgpath, sizeof(cfgpath), "%s/tqd2.conf", tmp);
	FILE *f = fopen(cfgpath, "w");
	CHECK(f != NULL);
	fprintf(f, "segment = %s\ninterval-ms = 5\nlog = %s\n"
		"pool = orphans:2:2:%s --work-ms 10   # two workers\n", name, log, worker_path);
	fclose(f);
	pid_t tqd = tqt_fork();
	tqd_pid = tqd;
	if (tqd == 0) {
		execl(tqd_path, tqd_path, "--config", cfgpath, (char *)NULL);
		_exit(127);
	}
	CHECK(log_has(log, "pool orphans: 2..2 workers"));
	CHECKF(count_becomes(t, 2, 30000), "the pool did not start 2 workers");
	/* Both asleep in tq_lease(), so past their setup (signal handlers
	 * installed): a SIGTERM is then a clean stop. */
	uint64_t end = tqt_mono_ms() + 30000;
	while (waiting(t) < 2 && tqt_mono_ms() < end)
		tqt_sleep_ms(10);
	CHECK_EQ(waiting(t), 2);
	kill(tqd, SIGKILL);
	CHECK_RET(tqt_wait_pid(tqd, 10000, &st), 0);
	CHECKF(count_becomes(t, 0, 30000), "the workers of a killed tqd kept running");
	tq_detach(t);
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/tq-test-pool-XXXXXX";

	tqt_init("pool");
	tqt_guard(280);
	if (argc < 3 || access(argv[1], X_OK) != 0 || access(argv[2], X_OK) != 0)
		tqt_skip("run as: test-pool PATH_TO_TQD PATH_TO_POOL_WORKER");
	tqd_path = argv[1];
	worker_path = argv[2];
	CHECK(mkdtemp(tmp) != NULL);
	test_usage(tmp);
	test_pool(tmp);
	test_orphans(tmp);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	CHECK_EQ(system(cmd), 0);
	return 0;
}

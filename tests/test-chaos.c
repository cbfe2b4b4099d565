/* SPDX-License-Identifier: MIT */
/*
 * test-chaos - producers and workers run a workload under tqd while a
 * driver SIGKILLs random producers, workers and tqd itself at random
 * moments (200 kills; fewer under sanitizers), restarting each. At the end:
 * every task a producer was told was accepted has been finished at least
 * once, no task is stuck anywhere, and tasks run more than once no more
 * often than the killed workers can explain. The segment keeps a journal
 * (tqd flushes and checkpoints it while being killed); at the end the
 * segment is dropped and restored from the journal, which must bring back
 * no task but the few whose acks died unwritten with a killed worker.
 * Run as: test-chaos PATH_TO_TQD
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tq-test.h"

#if defined(TQ_TSAN) || defined(TQ_ASAN)
#define KILLS 60
#define PER_PRODUCER 10000
#else
#define KILLS 200
#define PER_PRODUCER 40000
#endif
#define PRODUCERS 3
#define WORKERS 4
#define BATCH 4
#define N (PRODUCERS * PER_PRODUCER)

struct shared {
	uint64_t accepted[N];    /* task ID once its submit returned, else 0 */
	uint32_t next[PRODUCERS];/* next index each producer submits */
	uint32_t ran[N];         /* times a worker took it to completion */
	int stop;
};

static const char *tqd_path;
static char name[TQ_NAME_MAX + 1];
static struct shared *sh;

static pid_t spawn_tqd(void)
{
	pid_t pid = tqt_fork();

	if (pid == 0) {
		execl(tqd_path, "tqd", "--segment", name, "--interval-ms", "5", "--standby",
		      "--quiet", "--sweep-s", "1", "--log", "/dev/null", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static pid_t spawn_producer(int p, int q)
{
	pid_t pid = tqt_fork();

	if (pid == 0) {
		tq *t = tqt_attach(name);
		struct tq_submit_opts so = { .timeout_ms = 1000, .max_attempts = 255 };

		for (;;) {
			uint32_t i = __atomic_load_n(&sh->next[p], __ATOMIC_SEQ_CST);
			uint32_t idx = (uint32_t)p * PER_PRODUCER + i;
			uint64_t id;

			if (i >= PER_PRODUCER)
				break;
			if (tq_submit(t, q, &idx, sizeof idx, &so, &id) != 0)
				continue;
			/* Accepted: record it, then move on. A kill between
			 * the two leaves an accepted task we did not record
			 * (it still runs) and the next producer resubmits
			 * index i, which is fine: both run. */
			__atomic_store_n(&sh->accepted[idx], id, __ATOMIC_SEQ_CST);
			__atomic_store_n(&sh->next[p], i + 1, __ATOMIC_SEQ_CST);
		}
		tq_detach(t);
		_exit(0);
	}
	return pid;
}

static pid_t spawn_worker(int q)
{
	pid_t pid = tqt_fork();

	if (pid == 0) {
		tq *t = tqt_attach(name);
		struct tq_lease_opts lo = { .queues = &q, .nqueues = 1, .timeout_ms = 20 };
		struct tq_task task[BATCH];

		while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
			int n = tq_lease(t, &lo, task, BATCH);

			for (int k = 0; k < n; k++) {
				uint32_t idx;

				memcpy(&idx, task[k].payload, sizeof idx);
				if (idx < N)
					__atomic_add_fetch(&sh->ran[idx], 1, __ATOMIC_SEQ_CST);
				tq_ack(t, task[k].id, NULL, 0);
			}
		}
		tq_detach(t);
		_exit(0);
	}
	return pid;
}

static void reap(pid_t pid)
{
	int st;

	CHECK_RET(tqt_wait_pid(pid, 10000, &st), 0);
}

int main(int argc, char **argv)
{
	struct tq_config cfg = tqt_small_config();
	pid_t tqd, prod[PRODUCERS], work[WORKERS];
	int kills = 0, worker_kills = 0, tqd_kills = 0;
	uint64_t seed;

	tqt_init("chaos");
	tqt_guard(170);
	if (argc < 2 || access(argv[1], X_OK) != 0)
		tqt_skip("no tqd binary given");
	tqd_path = argv[1];
	sh = tqt_shared(sizeof(*sh));
	seed = tqt_seed();
	cfg.capacity = 4096;
	cfg.journal_file_mb = 1;
	char jdir[PATH_MAX / 16];
	snprintf(cfg.journal_dir, sizeof cfg.journal_dir, "%s", tqt_tmpdir(jdir));
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "chaos", NULL));

	tqd = spawn_tqd();
	for (int p = 0; p < PRODUCERS; p++)
		prod[p] = spawn_producer(p, q);
	for (int w = 0; w < WORKERS; w++)
		work[w] = spawn_worker(q);

	while (kills < KILLS) {
		unsigned r = (unsigned)(tqt_rand(&seed) % 100);

		tqt_sleep_ms((unsigned)(tqt_rand(&seed) % 8));
		if (r < 10) {
			kill(tqd, SIGKILL);
			reap(tqd);
			tqd = spawn_tqd();
			tqd_kills++;
		} else if (r < 40) {
			int p = (int)(tqt_rand(&seed) % PRODUCERS);
			kill(prod[p], SIGKILL);
			reap(prod[p]);
			prod[p] = spawn_producer(p, q);
		} else {
			int w = (int)(tqt_rand(&seed) % WORKERS);
			kill(work[w], SIGKILL);
			reap(work[w]);
			work[w] = spawn_worker(q);
			worker_kills++;
		}
		kills++;
	}

	uint32_t left_at_end = 0;
	for (int p = 0; p < PRODUCERS; p++)
		left_at_end += PER_PRODUCER - __atomic_load_n(&sh->next[p], __ATOMIC_SEQ_CST);
	/* Let the producers finish, then wait for every accepted task. */
	for (int p = 0; p < PRODUCERS; p++)
		reap(prod[p]);
	bool done = false;
	for (int tries = 0; tries < 6000 && !done; tries++) {
		struct tq_segment_info now;

		done = tq_segment_info(t, &now) == 0 && now.tasks_held == 0;
		for (int i = 0; i < N && done; i++)
			if (!__atomic_load_n(&sh->ran[i], __ATOMIC_SEQ_CST))
				done = false;
		if (!done)
			tqt_sleep_ms(10);
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	for (int w = 0; w < WORKERS; w++)
		reap(work[w]);
	/* One last repair pass by tqd (still running), then stop it. */
	tqt_sleep_ms(50);
	kill(tqd, SIGTERM);
	reap(tqd);
	tq_recover(t, NULL);
	tq_sweep(t, NULL);

	uint64_t twice = 0;
	struct tq_info in;
	for (int i = 0; i < N; i++) {
		CHECKF(sh->ran[i] >= 1, "task %d never ran (accepted id %llu)", i,
		       (unsigned long long)sh->accepted[i]);
		if (sh->accepted[i])
			CHECK_ERR(tq_get(t, sh->accepted[i], &in), -ENOENT);
		twice += sh->ran[i] - 1;
	}
	/* A task runs twice only when a worker died holding it (counted
	 * before its ack, requeued by recovery), or a producer died between
	 * its submit and its record (the index is submitted again). */
	CHECK_LEU(twice, (uint64_t)(worker_kills * BATCH + kills));
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 0);
	CHECK_GEU(si.repairs, 1);
	uint32_t left = 0;
	for (int p = 0; p < PRODUCERS; p++)
		left += PER_PRODUCER - sh->next[p];
	TQT_LOG("%d kills (%d of tqd, %d of workers) over %d tasks, %u still unsubmitted at the "
		"last kill; %llu tasks ran twice, %llu repairs\n", kills, tqd_kills, worker_kills, N,
		left_at_end, (unsigned long long)twice, (unsigned long long)si.repairs);
	(void)left;

	/* The whole machine goes down: the journal brings back what was not
	 * finished, which is nothing but tasks whose gathered acks a killed
	 * worker had not written yet (they run again: at least once). */
	struct tq_journal_info ji;
	CHECK_RET(tq_journal_info(t, &ji), 0);
	uint64_t checkpoints = ji.checkpoints;
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	t = NULL;
	int r = tq_create(name, &cfg, &t);
	CHECKF(r == 0, "replay after chaos: %s (%s)", tq_strerror(r), tq_last_error(NULL));
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_EQU(ji.replay_lost, 0);
	CHECK_LEU(ji.replay_tasks, (uint64_t)worker_kills * (64 + BATCH));
	uint64_t back = 0;
	for (int i = 0; i < N; i++)
		if (sh->accepted[i] && tq_get(t, sh->accepted[i], &in) == 0) {
			CHECK_EQ(in.state, TQ_STATE_PENDING);
			back++;
		}
	CHECK_EQU(back, ji.replay_tasks);
	TQT_LOG("journal: %llu checkpoints; replay read %llu records, brought back %llu tasks "
		"(acks lost with killed workers), %llu damaged regions", (unsigned long long)checkpoints,
		(unsigned long long)ji.replay_records, (unsigned long long)ji.replay_tasks,
		(unsigned long long)ji.replay_damaged);
	tq_detach(t);
	return 0;
}

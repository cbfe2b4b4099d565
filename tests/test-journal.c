/* SPDX-License-Identifier: MIT */
/*
 * test-journal - the journal: every unfinished task comes back after the
 * segment is gone (a reboot), with its ID, queue, level, attempts, state
 * and payload, and nothing finished comes back; queues come back with their
 * settings and pause state; IDs are never given twice across the restart;
 * checkpoints delete old files and lose nothing; sync durability; a
 * producer SIGKILLed mid-batch loses no accepted task; bad settings.
 * Power cuts (torn and corrupt files) are in test-powercut.
 */
#include <sys/wait.h>

#include "tq-test.h"

static struct tq_config jconfig(const char *dir, unsigned durability)
{
	struct tq_config c = tqt_small_config();
	c.capacity = 4096;
	c.levels = 4;
	c.journal_file_mb = 1;
	c.durability = durability;
	snprintf(c.journal_dir, sizeof c.journal_dir, "%s", dir);
	return c;
}

/* "Reboot": the segment goes, the journal stays; create it again. */
static tq *reboot(tq *t, const char *name, const struct tq_config *c)
{
	tq *u = NULL;
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	int r = tq_create(name, c, &u);
	CHECKF(r == 0, "tq_create after reboot: %s (%s)", tq_strerror(r), tq_last_error(NULL));
	return u;
}

static void payload_of(uint64_t i, uint8_t *buf, uint32_t len)
{
	for (uint32_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(i * 31 + k * 7);
}

struct want {
	uint64_t id;
	uint32_t state, level, attempts, len, type;
	bool held;               /* leased when the segment went */
};

static void check_task(tq *t, const struct want *w)
{
	struct tq_info in;
	int r = tq_get(t, w->id, &in);
	CHECKF(r == 0, "task %llu: tq_get %s", (unsigned long long)w->id, tq_strerror(r));
	CHECKF(in.state == w->state, "task %llu: state %u, want %u", (unsigned long long)w->id,
	       in.state, w->state);
	CHECK_EQ(in.level, w->level);
	CHECK_EQ(in.attempts, w->attempts);
	CHECK_EQ(in.len, w->len);
	CHECK_EQ(in.type, w->type);
}

static void test_round_trip(void)
{
	char name[TQ_NAME_MAX + 1], dir[PATH_MAX / 16];
	struct tq_config c = jconfig(tqt_tmpdir(dir), TQ_DURABILITY_ASYNC);
	tq *t = tqt_create(name, &c);
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.max_attempts = 2;
	qc.lease_ms = 1234;
	qc.max_length = 3000;
	int qa = CHECK_OK(tq_queue_declare(t, "alpha", &qc));
	int qb = CHECK_OK(tq_queue_declare(t, "beta", NULL));
	CHECK_RET(tq_queue_pause(t, qb), 0);

	struct tq_journal_info ji;
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_EQ(ji.durability, TQ_DURABILITY_ASYNC);
	CHECK(strcmp(ji.dir, dir) == 0);
	CHECK_GT(ji.records, 0);

	/* 300 tasks: inline and arena payloads, levels 0..3, every 10th
	 * delayed by an hour; batches and single submits. */
	enum { N = 300 };
	static struct want w[N];
	static uint8_t buf[N][2000];
	for (int i = 0; i < N; i++) {
		uint32_t len = (uint32_t)(i % 3 == 0 ? 10 : i % 3 == 1 ? 300 : 1999);
		payload_of((uint64_t)i, buf[i], len);
		w[i].len = len;
		w[i].level = (uint32_t)(i % 4);
		w[i].type = (uint32_t)i;
		w[i].state = TQ_STATE_PENDING;
	}
	for (int i = 0; i < N; i += 10) {
		struct tq_task_spec sp[10];
		uint64_t ids[10];
		struct tq_submit_opts so;
		memset(&so, 0, sizeof so);
		for (int k = 0; k < 10; k++) {
			sp[k].payload = buf[i + k];
			sp[k].len = w[i + k].len;
			sp[k].level = w[i + k].level;
			sp[k].type = w[i + k].type;
		}
		CHECK_RET(tq_submit_batch(t, qa, sp, 9, &so, ids), 9);
		for (int k = 0; k < 9; k++)
			w[i + k].id = ids[k];
		so.level = w[i + 9].level;
		so.type = w[i + 9].type;
		so.not_before_ns = tq_now_ns() + 3600ull * 1000000000ull;
		CHECK_RET(tq_submit(t, qa, buf[i + 9], w[i + 9].len, &so, &w[i + 9].id), 0);
		w[i + 9].state = TQ_STATE_DELAYED;
	}
	/* A task in the paused queue. */
	uint64_t bid;
	CHECK_RET(tq_submit(t, qb, "b", 1, NULL, &bid), 0);

	/* Lease 120 (the most urgent first): ack 40, fail 40 once (back to
	 * ready, attempt 1), fail 20 twice (dead letters), keep 20 leased. */
	struct tq_lease_opts lo;
	memset(&lo, 0, sizeof lo);
	lo.queues = &qa;
	lo.nqueues = 1;
	int finished = 0;
	uint64_t acks[20];
	unsigned nacks = 0;
	for (int n = 0; n < 120; n++) {
		struct tq_task task;
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		struct want *x = NULL;
		for (int i = 0; i < N; i++)
			if (w[i].id == task.id)
				x = &w[i];
		CHECK(x != NULL);
		CHECK_EQ(task.len, x->len);
		CHECK(memcmp(task.payload, buf[x - w], x->len) == 0);
		if (n < 40) {
			/* Half with a result, half without: those in one
			 * tq_ack_batch() at the end of the 40. */
			if (n % 2)
				CHECK_RET(tq_ack(t, task.id, "result", 6), 0);
			else
				acks[nacks++] = task.id;
			if (n == 39)
				CHECK_RET(tq_ack_batch(t, acks, nacks, NULL), 20);
			x->state = 0;           /* finished */
			finished++;
		} else if (n < 80 || task.attempts == 2) {
			/* A second failure makes a dead letter. */
			int r = tq_fail(t, task.id);
			CHECK_EQ(r, task.attempts == 2 ? 1 : 0);
			x->attempts = task.attempts;
			if (r == 1)
				x->state = TQ_STATE_DEAD;
		} else if (n < 100) {
			CHECK_RET(tq_fail(t, task.id), 0);
			struct tq_task again;
			/* Its retry is at the tail of its level: take it back by ID. */
			for (;;) {
				CHECK_RET(tq_lease(t, &lo, &again, 1), 1);
				if (again.id == task.id)
					break;
				CHECK_RET(tq_release(t, again.id), 0);
			}
			CHECK_RET(tq_fail(t, again.id), 1);
			x->state = TQ_STATE_DEAD;
			x->attempts = 2;
		} else {
			/* Leased at the crash: pending again, the interrupted
			 * attempt not counted (leases are not journaled). */
			x->attempts = task.attempts - 1;
			x->held = true;
		}
	}
	/* Cancel 10 pending, move 10 to level 3, requeue 5 dead letters,
	 * forget 5 others. */
	int cancelled = 0, moved = 0, requeued = 0, forgotten = 0;
	for (int i = 0; i < N; i++) {
		if (w[i].held)
			continue;
		if (w[i].state == TQ_STATE_PENDING && w[i].attempts == 0 && cancelled < 10) {
			CHECK_RET(tq_cancel(t, w[i].id), 0);
			w[i].state = 0;
			cancelled++;
		} else if (w[i].state == TQ_STATE_PENDING && w[i].attempts == 0 && w[i].level != 3 &&
			   moved < 10) {
			CHECK_RET(tq_set_level(t, w[i].id, 3), 0);
			w[i].level = 3;
			moved++;
		} else if (w[i].state == TQ_STATE_DEAD && requeued < 5) {
			CHECK_RET(tq_requeue_dead(t, w[i].id), 0);
			w[i].state = TQ_STATE_PENDING;
			w[i].attempts = 0;
			requeued++;
		} else if (w[i].state == TQ_STATE_DEAD && forgotten < 5) {
			CHECK_RET(tq_forget(t, w[i].id), 0);
			w[i].state = 0;
			forgotten++;
		}
	}
	CHECK_EQ(cancelled, 10);
	CHECK_EQ(moved, 10);
	CHECK_EQ(requeued, 5);
	CHECK_EQ(forgotten, 5);

	t = reboot(t, name, &c);
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_EQU(ji.replay_damaged, 0);
	CHECK_EQU(ji.replay_lost, 0);
	unsigned live = 0;
	for (int i = 0; i < N; i++) {
		if (!w[i].state) {
			struct tq_info in;
			CHECKF(tq_get(t, w[i].id, &in) == -ENOENT, "finished task %d came back", i);
			continue;
		}
		check_task(t, &w[i]);
		live++;
	}
	CHECK_EQU(ji.replay_tasks, live + 1);
	CHECK_EQ(tq_queue_find(t, "alpha"), qa);
	CHECK_EQ(tq_queue_find(t, "beta"), qb);
	CHECK_EQ(tq_queue_paused(t, qb), 1);
	CHECK_EQ(tq_queue_paused(t, qa), 0);
	struct tq_info bin;
	CHECK_RET(tq_get(t, bid, &bin), 0);
	CHECK_EQ(bin.state, TQ_STATE_PENDING);

	/* Payloads and per-queue settings are intact: lease everything that
	 * is pending and compare. */
	unsigned got = 0;
	for (;;) {
		struct tq_task task;
		memset(&lo, 0, sizeof lo);
		lo.queues = &qa;
		lo.nqueues = 1;
		int r = tq_lease(t, &lo, &task, 1);
		if (r == -EAGAIN)
			break;
		CHECK_RET(r, 1);
		struct want *x = NULL;
		for (int i = 0; i < N; i++)
			if (w[i].id == task.id)
				x = &w[i];
		CHECK(x != NULL && x->state == TQ_STATE_PENDING);
		CHECK_EQ(task.len, x->len);
		CHECK(memcmp(task.payload, buf[x - w], x->len) == 0);
		CHECK_EQ(task.max_attempts, 2);
		CHECK_EQU(task.deadline_ns - tq_now_ns() <= 1234ull * 1000000, 1);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
		got++;
	}
	unsigned pending = 0;
	for (int i = 0; i < N; i++)
		pending += w[i].state == TQ_STATE_PENDING;
	CHECK_EQ(got, pending);
	/* Strict order held: levels came out most urgent first (checked by
	 * tq_lease); new IDs differ from every old one. */
	for (int k = 0; k < 50; k++) {
		uint64_t id;
		CHECK_RET(tq_submit(t, qa, "n", 1, NULL, &id), 0);
		for (int i = 0; i < N; i++)
			CHECKF(id != w[i].id, "new task got old ID %llu", (unsigned long long)id);
	}
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Many submits and acks roll files; a checkpoint deletes the old ones and
 * replay still finds exactly the unfinished tasks. */
static void test_checkpoint(void)
{
	char name[TQ_NAME_MAX + 1], dir[PATH_MAX / 16];
	struct tq_config c = jconfig(tqt_tmpdir(dir), TQ_DURABILITY_ASYNC);
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "q", NULL));
	static uint8_t pay[1000];
	uint64_t keep[100];
	unsigned nkeep = 0;

	memset(pay, 'p', sizeof pay);
	for (int round = 0; round < 40; round++) {
		struct tq_submit_opts so;
		memset(&so, 0, sizeof so);
		/* One task that stays: delayed by an hour, or a dead letter. */
		so.not_before_ns = round % 2 ? tq_now_ns() + 3600ull * 1000000000ull : 0;
		so.max_attempts = 1;
		so.level = 2;
		CHECK_RET(tq_submit(t, q, pay, 100, &so, &keep[nkeep]), 0);
		if (round % 2 == 0) {
			struct tq_task task;
			CHECK_RET(tq_lease(t, NULL, &task, 1), 1);
			CHECK_EQU(task.id, keep[nkeep]);
			CHECK_RET(tq_fail(t, task.id), 1);
		}
		nkeep++;
		for (int i = 0; i < 100; i++) {
			uint64_t id;
			CHECK_RET(tq_submit(t, q, pay, sizeof pay, NULL, &id), 0);
		}
		for (int i = 0; i < 100; i++) {
			struct tq_task task;
			CHECK_RET(tq_lease(t, NULL, &task, 1), 1);
			CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
		}
	}
	struct tq_journal_info ji;
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_GE(ji.files, 4);
	uint64_t files_before = ji.files;
	int del = tq_journal_checkpoint(t);
	CHECKF(del >= 3, "checkpoint deleted %d files", del);
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_EQU(ji.checkpoints, 1);
	CHECK_LT(ji.files, files_before);
	CHECK_GT(ji.first_file, 0);
	/* Old files are gone from the directory. */
	unsigned ondisk = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		ondisk += strstr(e->d_name, ".tqj") != NULL;
	closedir(d);
	CHECK_LE(ondisk, ji.files + 2);
	/* A dead letter made before the checkpoint does not pin old files:
	 * it is rewritten like any live task. */
	t = reboot(t, name, &c);
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_EQU(ji.replay_tasks, nkeep);
	for (unsigned i = 0; i < nkeep; i++) {
		struct tq_info in;
		CHECK_RET(tq_get(t, keep[i], &in), 0);
		CHECK_EQ(in.state, i % 2 ? TQ_STATE_DELAYED : TQ_STATE_DEAD);
		CHECK_EQ(in.attempts, i % 2 ? 0 : 1);
		CHECK_EQ(in.level, 2);
		CHECK_EQ(in.len, 100);
	}
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* sync: submits flush; replay after a reboot. */
static void test_sync(void)
{
	char name[TQ_NAME_MAX + 1], dir[PATH_MAX / 16];
	struct tq_config c = jconfig(tqt_tmpdir(dir), TQ_DURABILITY_SYNC);
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "s", NULL));
	struct tq_journal_info ji;
	uint64_t ids[64];
	struct tq_task_spec sp[64];

	for (int i = 0; i < 64; i++) {
		sp[i].payload = "sync";
		sp[i].len = 4;
		sp[i].level = 1;
		sp[i].type = 7;
	}
	CHECK_RET(tq_journal_info(t, &ji), 0);
	uint64_t f0 = ji.flushes;
	CHECK_RET(tq_submit_batch(t, q, sp, 64, NULL, ids), 64);
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_GT(ji.flushes, f0);
	CHECK_GEU(ji.durable_lsn, ji.tail_lsn);
	CHECK_RET(tq_journal_flush(t), 0);
	t = reboot(t, name, &c);
	for (int i = 0; i < 64; i++) {
		struct tq_info in;
		CHECK_RET(tq_get(t, ids[i], &in), 0);
		CHECK_EQ(in.level, 1);
		CHECK_EQ(in.type, 7);
	}
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Producers SIGKILLed at random moments: every task a producer was told
 * was accepted comes back after a reboot (the journal in the page cache
 * survives the process). */
static void test_killed_producers(void)
{
	char name[TQ_NAME_MAX + 1], dir[PATH_MAX / 16];
	struct tq_config c = jconfig(tqt_tmpdir(dir), TQ_DURABILITY_ASYNC);
	c.capacity = 1 << 16;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "k", NULL));
	uint64_t *acc = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(acc != MAP_FAILED);

	enum { P = 4 };
	unsigned seed = (unsigned)getpid();
	for (int round = 0; round < 5; round++) {
		pid_t pids[P];
		for (int p = 0; p < P; p++) {
			pids[p] = tqt_fork();
			if (pids[p] == 0) {
				tq *u = tqt_attach(name);
				uint64_t *mine = acc + (size_t)(round * P + p) * 20000;
				for (unsigned n = 0; n < 19000;) {
					struct tq_task_spec sp[8];
					uint64_t ids[8];
					for (int k = 0; k < 8; k++) {
						sp[k].payload = &n;
						sp[k].len = sizeof n;
						sp[k].level = 0;
						sp[k].type = 0;
					}
					int r = tq_submit_batch(u, q, sp, 8, NULL, ids);
					if (r < 0)
						_exit(3);
					/* Told accepted: record it (then count). */
					for (int k = 0; k < r; k++)
						mine[1 + n + (unsigned)k] = ids[k];
					n += (unsigned)r;
					__atomic_store_n(&mine[0], n, __ATOMIC_RELEASE);
				}
				_exit(0);
			}
		}
		tqt_sleep_ms(2 + rand_r(&seed) % 10);
		for (int p = 0; p < P; p++)
			kill(pids[p], SIGKILL);
		for (int p = 0; p < P; p++)
			tqt_wait_pid(pids[p], 10000, NULL);
		/* The supervisor's repair pass, as tqd would run it. */
		CHECK_GE(tq_recover(t, NULL), 0);
	}
	t = reboot(t, name, &c);
	unsigned total = 0;
	for (int k = 0; k < 5 * P; k++) {
		uint64_t *mine = acc + (size_t)k * 20000;
		uint64_t n = mine[0];
		for (uint64_t i = 0; i < n; i++) {
			struct tq_info in;
			int r = tq_get(t, mine[1 + i], &in);
			CHECKF(r == 0, "accepted task %llu lost", (unsigned long long)mine[1 + i]);
		}
		total += (unsigned)n;
	}
	TQT_LOG("%u accepted tasks of killed producers all came back", total);
	CHECK_GT(total, 0);
	munmap(acc, 8 << 20);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_errors(void)
{
	char name[TQ_NAME_MAX + 1], dir[PATH_MAX / 16];
	struct tq_config c = tqt_small_config();
	tq *t = NULL;

	snprintf(c.journal_dir, sizeof c.journal_dir, "relative/dir");
	tqt_segname(name);
	CHECK_ERR(tq_create(name, &c, &t), -EINVAL);
	c.journal_dir[0] = '/';
	c.durability = 9;
	CHECK_ERR(tq_create(name, &c, &t), -EINVAL);
	/* A file where the directory should be. */
	c = jconfig(tqt_tmpdir(dir), TQ_DURABILITY_ASYNC);
	char path[PATH_MAX / 16 + 32];
	snprintf(path, sizeof path, "%s/file", dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fclose(f);
	memcpy(c.journal_dir, path, strlen(path) + 1);
	CHECK_ERR(tq_create(name, &c, &t), -ENOTDIR);
	CHECK(t == NULL);
	/* A journal file with a bad header only: read with the caller's
	 * layout, the damage reported. */
	c = jconfig(tqt_tmpdir(dir), TQ_DURABILITY_ASYNC);
	snprintf(path, sizeof path, "%s/0000000000000000.tqj", dir);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("garbage", f);
	fclose(f);
	CHECK_RET(tq_create(name, &c, &t), 0);
	struct tq_journal_info ji;
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_GEU(ji.replay_damaged, 1);
	CHECK_EQU(ji.replay_tasks, 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	t = NULL;
	/* No journal: info says none, flush is not supported. */
	c = tqt_small_config();
	t = tqt_create(name, &c);
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_EQ(ji.durability, TQ_DURABILITY_NONE);
	CHECK_EQ(ji.dir[0], 0);
	CHECK_ERR(tq_journal_flush(t), -ENOTSUP);
	CHECK_ERR(tq_journal_checkpoint(t), -ENOTSUP);
	CHECK_RET(tq_journal_maintain(t), 0);
	CHECK_ERR(tq_journal_info(t, NULL), -EINVAL);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	/* durability NONE with a directory: no journal is written. */
	c = jconfig(tqt_tmpdir(dir), TQ_DURABILITY_NONE);
	t = tqt_create(name, &c);
	CHECK_RET(tq_journal_info(t, &ji), 0);
	CHECK_EQ(ji.durability, TQ_DURABILITY_NONE);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("journal");
	tqt_guard(170);
	test_errors();
	test_round_trip();
	test_checkpoint();
	test_sync();
	test_killed_producers();
	return 0;
}

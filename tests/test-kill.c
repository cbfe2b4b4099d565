/* SPDX-License-Identifier: MIT */
/*
 * test-kill - SIGKILL at random moments.
 *
 * Producers (one task or a batch at a time) and workers run on one segment
 * while the test's main process (the driver) SIGKILLs random ones at random
 * moments and starts a replacement for each (at least 40 kills; replacements
 * of producers go on with the dead one's sequence). Every process has its own guard alarm, so
 * the survivors must never block: each one exits on its own, within its own
 * timeout, once the driver says stop. Then fresh workers drain what is
 * pending, and every task a producer was told is accepted is either acked
 * (workers ack with a result, so the task stays DONE and visible) or shown
 * by tq_get as LEASED or BUSY by an owner_pid that is dead. No ID is acked
 * twice, and every acked payload is one that a producer submitted.
 */
#include "tq-test.h"

#if TQT_SANITIZED == 2
enum { PRODUCERS = 4, WORKERS = 8, TASKS = 2000, KILLS = 30 };
#elif TQT_SLOW
enum { PRODUCERS = 8, WORKERS = 32, TASKS = 40000, KILLS = 300 };
#else
enum { PRODUCERS = 8, WORKERS = 32, TASKS = 10000, KILLS = 40 };
#endif
enum { PER = TASKS / PRODUCERS, DRAINERS = 3, ACKLOG = TASKS * 2, LEVELS = 4 };
#define MAGIC 0x4b494c4c54415348ull
/* Each process's own bound: it must be gone well before this. */
#define CHILD_GUARD_S 120
#define RUN_MS 300000u

struct payload {
	uint64_t magic;
	uint32_t producer;
	uint32_t seq;
	uint64_t check;
};

struct result {
	uint64_t magic;
	int32_t pid;
	uint32_t index;
};

struct shared {
	atomic_int stop_producers;
	atomic_int stop_workers;
	atomic_int abort;
	atomic_uint_fast64_t bogus;
	atomic_uint next_seq[PRODUCERS];    /* next seq to submit, per producer slot */
	uint64_t accepted[TASKS];           /* ID per (producer, seq), 0 = not known */
	atomic_uint acklog_n;
	uint64_t acklog[ACKLOG];            /* IDs acked (logged after tq_ack returns 0) */
	atomic_int worker_pids_n;
	int32_t worker_pids[4096];
};

static struct shared *sh;
static char segname[TQ_NAME_MAX + 1];
static int queue_idx;

static uint64_t check_of(uint32_t p, uint32_t seq)
{
	uint64_t s = ((uint64_t)p << 32 | seq) ^ 0x5bd1e995ull;
	return tqt_rand(&s);
}

static void producer(int p)
{
	tqt_guard(CHILD_GUARD_S);
	tq *t = tqt_attach(segname);
	uint64_t rs = tqt_seed() ^ (uint64_t)getpid();
	unsigned burst = 0;
	uint64_t give_up = tqt_mono_ms() + (CHILD_GUARD_S - 20) * 1000ull;
	for (;;) {
		if (tqt_mono_ms() > give_up)
			FAIL("producer %d: could not submit seq %u for %d s", p,
			     atomic_load(&sh->next_seq[p]), CHILD_GUARD_S - 20);
		if (atomic_load(&sh->stop_producers) || atomic_load(&sh->abort))
			break;
		/* Bursts of submits with pauses, so that the run lasts a few
		 * seconds and kills land both inside and outside the library. */
		if (++burst % 16 == 0)
			tqt_sleep_ms(10 + (unsigned)(tqt_rand(&rs) % 40));
		uint32_t seq = atomic_load(&sh->next_seq[p]);
		if (seq >= PER)
			break;
		/* One task, or a batch of 2..8 of one level, published as a
		 * run of ring cells (tq__ring_push_many()). */
		unsigned want = tqt_rand(&rs) % 2 ? 2 + (unsigned)(tqt_rand(&rs) % 7) : 1;
		struct payload pl[8];
		struct tq_task_spec specs[8];
		uint64_t ids[8] = { 0 };
		struct tq_submit_opts o = { .level = (uint32_t)(tqt_rand(&rs) % LEVELS),
					    .timeout_ms = 100, .max_attempts = TQ_ATTEMPTS_MAX };
		int r;

		if (want > PER - seq)
			want = PER - seq;
		for (unsigned i = 0; i < want; i++) {
			pl[i] = (struct payload){ MAGIC, (uint32_t)p, seq + i,
						  check_of((uint32_t)p, seq + i) };
			specs[i] = (struct tq_task_spec){ .payload = &pl[i], .len = sizeof pl[i],
							  .level = o.level };
		}
		if (want == 1) {
			r = tq_submit(t, queue_idx, &pl[0], sizeof pl[0], &o, &ids[0]);
			if (r == 0)
				r = 1;
		} else {
			r = tq_submit_batch(t, queue_idx, specs, want, &o, ids);
		}
		if (r == -ETIMEDOUT || r == -EAGAIN)
			continue;
		CHECK_GE(r, 1);
		/* A replacement resubmits a seq whose ID was not recorded: that is
		 * a second task with the same payload, which is fine. */
		for (int i = 0; i < r; i++) {
			CHECK_NEU(ids[i], 0);
			sh->accepted[(uint32_t)p * PER + seq + (uint32_t)i] = ids[i];
		}
		atomic_store(&sh->next_seq[p], seq + (uint32_t)r);
	}
	tq_detach(t);
	_exit(0);
}

static void worker(bool drain)
{
	tqt_guard(CHILD_GUARD_S);
	int slot = atomic_fetch_add(&sh->worker_pids_n, 1);
	if (slot < 4096)
		sh->worker_pids[slot] = getpid();
	tq *t = tqt_attach(segname);
	uint64_t rs = tqt_seed() ^ (uint64_t)getpid();
	unsigned idle = 0;
	for (;;) {
		if (atomic_load(&sh->abort))
			break;
		if (!drain && atomic_load(&sh->stop_workers))
			break;
		struct tq_task tasks[4];
		struct tq_lease_opts lo = { .timeout_ms = 50,
					    .policy = (uint32_t)(tqt_rand(&rs) % 2) };
		int n = tq_lease(t, &lo, tasks, 1 + (unsigned)(tqt_rand(&rs) % 4));
		if (n == -ETIMEDOUT) {
			/* Drainers stop after a quiet second: nothing was ready
			 * (whether everything is accounted for is checked task by
			 * task afterwards). */
			if (drain && ++idle >= 20)
				break;
			continue;
		}
		idle = 0;
		CHECK_GE(n, 1);
		for (int k = 0; k < n; k++) {
			struct payload pl = { 0 };
			bool ok = tasks[k].len == sizeof pl;
			if (ok) {
				memcpy(&pl, tasks[k].payload, sizeof pl);
				ok = pl.magic == MAGIC && pl.producer < PRODUCERS && pl.seq < PER &&
				     pl.check == check_of(pl.producer, pl.seq);
			}
			if (!ok) {
				atomic_fetch_add(&sh->bogus, 1);
				FAIL("task %llu: a payload nobody submitted",
				     (unsigned long long)tasks[k].id);
			}
			/* Some work while holding the lease. */
			if (!drain && tqt_rand(&rs) % 4 == 0)
				tqt_sleep_ms(1 + (unsigned)(tqt_rand(&rs) % 3));
			struct result res = { MAGIC, getpid(), pl.producer * PER + pl.seq };
			CHECK_RET(tq_ack(t, tasks[k].id, &res, sizeof res), 0);
			unsigned at = atomic_fetch_add(&sh->acklog_n, 1);
			if (at < ACKLOG)
				sh->acklog[at] = tasks[k].id;
		}
	}
	tq_detach(t);
	_exit(0);
}

enum role { PRODUCER, WORKER };

struct proc {
	pid_t pid;
	enum role role;
	int slot;
};

static pid_t spawn(enum role role, int slot)
{
	pid_t pid = tqt_fork();
	if (pid == 0) {
		if (role == PRODUCER)
			producer(slot);
		worker(false);
	}
	return pid;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	tqt_init("kill");
	tqt_guard(RUN_MS / 1000 + 200);
	uint64_t seed = tqt_seed();
	TQT_LOG("seed %llu (TQ_TEST_SEED to repeat the driver's choices)",
		(unsigned long long)seed);
	sh = tqt_shared(sizeof *sh);
	struct tq_config c;
	tq_config_init(&c);
	c.levels = LEVELS;
	c.capacity = TASKS * 2 + 4096;  /* acked tasks keep their results */
	c.max_payload = 1024;
	c.procs = 1024;
	c.arena_bytes = 4u << 20;
	tq *t = tqt_create(segname, &c);
	queue_idx = CHECK_OK(tq_queue_declare(t, "kill", NULL));

	struct proc procs[PRODUCERS + WORKERS];
	int np = 0;
	for (int p = 0; p < PRODUCERS; p++)
		procs[np++] = (struct proc){ spawn(PRODUCER, p), PRODUCER, p };
	for (int w = 0; w < WORKERS; w++)
		procs[np++] = (struct proc){ spawn(WORKER, w), WORKER, w };

	/* Kill at random moments; replace each victim. */
	uint64_t rs = seed;
	int kills = 0, killed_producers = 0;
	uint64_t t0 = tqt_mono_ms();
	for (;;) {
		bool producing = false;
		for (int p = 0; p < PRODUCERS; p++)
			producing |= atomic_load(&sh->next_seq[p]) < PER;
		if ((kills >= KILLS && !producing) || tqt_mono_ms() - t0 >= RUN_MS ||
		    kills >= 20 * KILLS)
			break;
		tqt_sleep_ms(5 + (unsigned)(tqt_rand(&rs) % 60));
		/* Half the victims are producers still at work. */
		int i = PRODUCERS + (int)(tqt_rand(&rs) % WORKERS);
		if (producing && tqt_rand(&rs) % 2) {
			int p = (int)(tqt_rand(&rs) % PRODUCERS);
			for (int k = 0; k < PRODUCERS; k++, p = (p + 1) % PRODUCERS)
				if (atomic_load(&sh->next_seq[p]) < PER)
					break;
			i = p;
		}
		kill(procs[i].pid, SIGKILL);
		int st = 0;
		CHECKF(tqt_wait_pid(procs[i].pid, 60000, &st) == 0, "killed child %d not reaped",
		       (int)procs[i].pid);
		if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
			/* It had ended by itself before the kill: only fine for a
			 * producer whose share is done. */
			CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			       "child %d ended on its own with status 0x%x", (int)procs[i].pid, st);
			CHECK(procs[i].role == PRODUCER);
		} else {
			kills++;
			killed_producers += procs[i].role == PRODUCER;
		}
		procs[i].pid = spawn(procs[i].role, procs[i].slot);
	}
	TQT_LOG("%d kills (%d producers) in %llu ms", kills, killed_producers,
		(unsigned long long)(tqt_mono_ms() - t0));
	CHECK_GE(kills, KILLS);

	/* Survivors: producers finish their shares, then workers stop. Each
	 * must exit on its own (status 0) before its own guard fires. */
	int bad = 0;
	for (int i = 0; i < np; i++) {
		if (procs[i].role != PRODUCER)
			continue;
		int st = 0;
		if (tqt_wait_pid(procs[i].pid, (CHILD_GUARD_S + 30) * 1000u, &st) < 0) {
			TQT_LOG("producer %d never exited", (int)procs[i].pid);
			bad++;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			char s[128];
			tqt_status_str(s, sizeof s, st);
			TQT_LOG("producer %d: %s", (int)procs[i].pid, s);
			bad++;
		}
	}
	atomic_store(&sh->stop_workers, 1);
	bad += tqt_wait_all_abort((CHILD_GUARD_S + 30) * 1000u, &sh->abort);
	CHECKF(bad == 0, "%d surviving processes did not exit cleanly by themselves", bad);
	for (int p = 0; p < PRODUCERS; p++)
		CHECK_EQ(atomic_load(&sh->next_seq[p]), PER);

	/* Fresh workers drain what is pending. */
	for (int d = 0; d < DRAINERS; d++)
		if (tqt_fork() == 0)
			worker(true);
	CHECK_EQ(tqt_wait_all_abort((CHILD_GUARD_S + 30) * 1000u, &sh->abort), 0);
	CHECK_EQU(atomic_load(&sh->bogus), 0);

	/* The verdict. */
	/* Counters are only exact when every caller finished its call, which
	 * killed ones did not: they are logged, the tasks are checked. */
	struct tq_stats st;
	CHECK_RET(tq_stats(t, queue_idx, -1, &st), 0);
	TQT_LOG("counters: submitted %llu, acked %llu, depth %llu, leased now %llu",
		(unsigned long long)st.submitted, (unsigned long long)st.acked,
		(unsigned long long)st.depth, (unsigned long long)st.leased_now);
	struct tq_task left;
	CHECK_ERR(tq_lease(t, &(struct tq_lease_opts){ .timeout_ms = 0 }, &left, 1), -EAGAIN);
	unsigned done = 0, dead_owner = 0, lost = 0, unrecorded = 0;
	for (uint32_t i = 0; i < TASKS; i++) {
		uint64_t id = sh->accepted[i];
		if (id == 0) {
			unrecorded++; /* its producer died between submit and record */
			continue;
		}
		struct tq_info in;
		int r = tq_get(t, id, &in);
		if (r == 0 && in.state == TQ_STATE_DONE) {
			struct result res;
			CHECK_RET(tq_result(t, id, &res, sizeof res), (int)sizeof res);
			CHECK_EQU(res.magic, MAGIC);
			CHECK_EQ(res.index, i);
			done++;
		} else if (r == 0 && (in.state == TQ_STATE_LEASED || in.state == TQ_STATE_BUSY) &&
			   in.owner_pid > 0 && !tqt_pid_alive(in.owner_pid)) {
			bool ours = false;
			int nw = atomic_load(&sh->worker_pids_n);
			for (int k = 0; k < nw && k < 4096; k++)
				ours |= sh->worker_pids[k] == in.owner_pid;
			CHECKF(ours, "task %llu leased by pid %d, which was no worker",
			       (unsigned long long)id, in.owner_pid);
			dead_owner++;
		} else {
			if (lost < 10)
				TQT_LOG("task %llu (producer %u seq %u): tq_get %d, state %u, owner %d",
					(unsigned long long)id, i / PER, i % PER, r,
					r == 0 ? in.state : 0, r == 0 ? in.owner_pid : 0);
			lost++;
		}
	}
	TQT_LOG("accepted tasks: %u acked, %u leased by a dead worker, %u lost; %u IDs never "
		"recorded (producer killed after submit)", done, dead_owner, lost, unrecorded);
	CHECKF(lost == 0, "%u accepted tasks neither acked nor held by a dead owner", lost);
	CHECK_LE(unrecorded, (unsigned)killed_producers);

	/* No ID acked twice; every logged ack is DONE. */
	unsigned n = atomic_load(&sh->acklog_n);
	CHECK_LE(n, ACKLOG);
	qsort(sh->acklog, n, sizeof sh->acklog[0], cmp_u64);
	for (unsigned i = 0; i < n; i++) {
		if (sh->acklog[i] == 0)
			continue; /* its worker was killed before it wrote the entry */
		CHECKF(i == 0 || sh->acklog[i] != sh->acklog[i - 1], "ID %llu acked twice",
		       (unsigned long long)sh->acklog[i]);
		struct tq_info in;
		CHECK_RET(tq_get(t, sh->acklog[i], &in), 0);
		CHECK_EQ(in.state, TQ_STATE_DONE);
	}
	tq_detach(t);
	CHECK_RET(tq_unlink(segname), 0);
	return 0;
}

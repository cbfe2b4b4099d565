/* SPDX-License-Identifier: MIT */
/*
 * test-stress - many processes on one segment.
 *
 * Phase 1: 8 producer processes submit 10,000 tasks (single and batch
 * submits, random levels, payloads inline and out of line, backpressure
 * from a small capacity) while 100 worker processes lease them (strict and
 * weighted, batches of 1..4) and finish them (ack, ack with a result then
 * forget, release, fail-and-retry). Producers record each accepted ID in
 * shared memory, workers each ack. Afterwards: every accepted ID was acked
 * exactly once, by the task the producer submitted (payload intact), and
 * nothing else was acked; the counters agree.
 *
 * Phase 2: the queue is paused while the producers fill it with mixed
 * levels; then one worker drains it and sees levels non-decreasing and,
 * within a level, each producer's tasks in submission order.
 *
 * Sanitizer builds run fewer processes (TQT_SANITIZED); -Dslow_tests=true
 * runs ten times the tasks.
 */
#include "tq-test.h"

#if TQT_SANITIZED == 2
enum { PRODUCERS = 4, WORKERS = 16, TASKS = 2000, ORDERED = 400 };
#elif TQT_SLOW
enum { PRODUCERS = 8, WORKERS = 100, TASKS = 100000, ORDERED = 4000 };
#else
enum { PRODUCERS = 8, WORKERS = 100, TASKS = 10000, ORDERED = 2000 };
#endif
enum { PER = TASKS / PRODUCERS, OPER = ORDERED / PRODUCERS, LEVELS = 8 };
#define RUN_SECONDS 400
#define MAGIC 0x7153545245535331ull

struct payload {
	uint64_t magic;
	uint32_t producer;
	uint32_t seq;
	uint32_t level;
	uint32_t len;
	/* then len - sizeof(struct payload) bytes from tqt_fill(seed = index) */
};

struct shared {
	uint64_t deadline_ms;
	atomic_uint_fast64_t acked_total;
	atomic_uint_fast64_t bogus;
	atomic_uint_fast64_t errors;
	atomic_uint_fast64_t released;
	atomic_uint_fast64_t failed;
	atomic_int ready_workers;
	atomic_int go;
	atomic_int abort;
	uint64_t accepted[TASKS];      /* ID per task index, 0 = not yet */
	uint64_t acked_id[TASKS];      /* ID the acking worker saw */
	atomic_uint ack_count[TASKS];
};

static struct shared *sh;
static char segname[TQ_NAME_MAX + 1];

static uint32_t payload_len(uint32_t index)
{
	/* Mostly small (inline), one in 8 larger than a slot's inline area. */
	uint32_t x = index * 2654435761u;
	if (x % 8 == 0)
		return (uint32_t)sizeof(struct payload) + 100 + x % 1500;
	return (uint32_t)sizeof(struct payload) + x % 48;
}

static void make_payload(uint8_t *buf, uint32_t producer, uint32_t seq, uint32_t level,
			 uint32_t index)
{
	struct payload p = { MAGIC, producer, seq, level, payload_len(index) };
	memcpy(buf, &p, sizeof p);
	tqt_fill(buf + sizeof p, p.len - sizeof p, index);
}

/* The task's index, or -1 if its payload is not one we submitted. */
static int64_t check_payload(const struct tq_task *task, uint32_t per)
{
	struct payload p;
	if (task->len < sizeof p || !task->payload)
		return -1;
	memcpy(&p, task->payload, sizeof p);
	if (p.magic != MAGIC || p.producer >= PRODUCERS || p.seq >= per || p.len != task->len ||
	    p.level != task->level || p.level >= LEVELS)
		return -1;
	uint32_t index = p.producer * per + p.seq;
	if (p.len != payload_len(index))
		return -1;
	if (!tqt_fill_check((const uint8_t *)task->payload + sizeof p, p.len - sizeof p, index))
		return -1;
	return index;
}

static void wait_go(void)
{
	while (!atomic_load(&sh->go) && !atomic_load(&sh->abort) &&
	       tqt_mono_ms() < sh->deadline_ms)
		tqt_sleep_ms(5);
}

static void producer(int p, int q)
{
	tqt_guard(RUN_SECONDS + 60);
	tq *t = tqt_attach(segname);
	uint64_t rs = 0x1234567ull * (uint64_t)(p + 1);
	static uint8_t bufs[8][2048];
	wait_go();
	uint32_t seq = 0;
	while (seq < PER) {
		if (tqt_mono_ms() > sh->deadline_ms)
			FAIL("producer %d: deadline passed at seq %u", p, seq);
		if (atomic_load(&sh->abort))
			_exit(2);
		unsigned n = (tqt_rand(&rs) % 4 == 0) ? 1 + (unsigned)(tqt_rand(&rs) % 8) : 1;
		if (n > PER - seq)
			n = PER - seq;
		struct tq_task_spec specs[8];
		for (unsigned k = 0; k < n; k++) {
			uint32_t index = (uint32_t)p * PER + seq + k;
			uint32_t level = (uint32_t)(tqt_rand(&rs) % LEVELS);
			make_payload(bufs[k], (uint32_t)p, seq + k, level, index);
			specs[k] = (struct tq_task_spec){ .payload = bufs[k], .len = payload_len(index),
							  .level = level, .type = (uint32_t)p };
		}
		struct tq_submit_opts o = { .timeout_ms = 200, .max_attempts = TQ_ATTEMPTS_MAX };
		if (n == 1) {
			o.level = specs[0].level;
			o.type = specs[0].type;
			uint64_t id = 0;
			int r = tq_submit(t, q, specs[0].payload, specs[0].len, &o, &id);
			if (r == -ETIMEDOUT || r == -EAGAIN)
				continue;
			CHECK_RET(r, 0);
			CHECK_NEU(id, 0);
			sh->accepted[(uint32_t)p * PER + seq] = id;
			seq++;
		} else {
			uint64_t ids[8] = { 0 };
			int r = tq_submit_batch(t, q, specs, n, &o, ids);
			if (r == -ETIMEDOUT || r == -EAGAIN)
				continue;
			CHECK_GE(r, 1);
			CHECK_LE(r, n);
			for (int k = 0; k < r; k++) {
				CHECK_NEU(ids[k], 0);
				sh->accepted[(uint32_t)p * PER + seq + (uint32_t)k] = ids[k];
			}
			seq += (uint32_t)r;
		}
	}
	tq_detach(t);
	_exit(0);
}

static void worker(int w)
{
	tqt_guard(RUN_SECONDS + 60);
	tq *t = tqt_attach(segname);
	uint64_t rs = 0xabcdefull * (uint64_t)(w + 7);
	atomic_fetch_add(&sh->ready_workers, 1);
	wait_go();
	while (atomic_load(&sh->acked_total) < TASKS) {
		if (tqt_mono_ms() > sh->deadline_ms)
			FAIL("worker %d: deadline passed with %llu acked", w,
			     (unsigned long long)atomic_load(&sh->acked_total));
		if (atomic_load(&sh->abort))
			_exit(2);
		struct tq_task tasks[4];
		struct tq_lease_opts lo = {
			.timeout_ms = 50,
			.policy = w % 2 ? TQ_POLICY_WEIGHTED : TQ_POLICY_STRICT,
		};
		int n = tq_lease(t, &lo, tasks, 1 + (unsigned)(tqt_rand(&rs) % 4));
		if (n == -ETIMEDOUT)
			continue;
		CHECK_GE(n, 1);
		for (int k = 0; k < n; k++) {
			int64_t index = check_payload(&tasks[k], PER);
			if (index < 0) {
				atomic_fetch_add(&sh->bogus, 1);
				FAIL("worker %d: task %llu has a payload nobody submitted", w,
				     (unsigned long long)tasks[k].id);
			}
			unsigned dice = (unsigned)(tqt_rand(&rs) % 100);
			if (dice < 3) {
				CHECK_RET(tq_release(t, tasks[k].id), 0);
				atomic_fetch_add(&sh->released, 1);
				continue;
			}
			if (dice < 5) {
				CHECK_RET(tq_fail(t, tasks[k].id), 0);
				atomic_fetch_add(&sh->failed, 1);
				continue;
			}
			sh->acked_id[index] = tasks[k].id;
			if (dice < 15) {
				uint32_t res = (uint32_t)index;
				CHECK_RET(tq_ack(t, tasks[k].id, &res, sizeof res), 0);
				uint32_t back = 0;
				CHECK_RET(tq_result(t, tasks[k].id, &back, sizeof back), 4);
				CHECK_EQ(back, res);
				CHECK_RET(tq_forget(t, tasks[k].id), 0);
			} else {
				CHECK_RET(tq_ack(t, tasks[k].id, NULL, 0), 0);
			}
			atomic_fetch_add(&sh->ack_count[index], 1);
			atomic_fetch_add(&sh->acked_total, 1);
		}
	}
	tq_detach(t);
	_exit(0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void phase_exactly_once(tq *t, int q)
{
	uint64_t t0 = tqt_mono_ms();
	sh->deadline_ms = t0 + RUN_SECONDS * 1000ull;
	for (int w = 0; w < WORKERS; w++)
		if (tqt_fork() == 0)
			worker(w);
	for (int p = 0; p < PRODUCERS; p++)
		if (tqt_fork() == 0)
			producer(p, q);
	/* Start together once the workers are attached (bounded wait). */
	while (atomic_load(&sh->ready_workers) < WORKERS && tqt_mono_ms() < t0 + 60000)
		tqt_sleep_ms(10);
	atomic_store(&sh->go, 1);
	int bad = tqt_wait_all_abort((RUN_SECONDS + 30) * 1000u, &sh->abort);
	TQT_LOG("phase 1: %d producers, %d workers, %d tasks in %llu ms (%llu released, "
		"%llu failed and retried)", PRODUCERS, WORKERS, TASKS,
		(unsigned long long)(tqt_mono_ms() - t0),
		(unsigned long long)atomic_load(&sh->released),
		(unsigned long long)atomic_load(&sh->failed));
	CHECKF(bad == 0, "%d producer or worker processes failed", bad);

	CHECK_EQU(atomic_load(&sh->bogus), 0);
	CHECK_EQU(atomic_load(&sh->acked_total), TASKS);
	unsigned missing = 0, twice = 0, wrong = 0;
	for (uint32_t i = 0; i < TASKS; i++) {
		unsigned c = atomic_load(&sh->ack_count[i]);
		if (sh->accepted[i] == 0)
			missing++;
		if (c == 0)
			missing++;
		if (c > 1)
			twice++;
		if (c == 1 && sh->acked_id[i] != sh->accepted[i]) {
			if (wrong++ < 10)
				TQT_LOG("task %u (producer %u seq %u): accepted as %#llx, acked as %#llx",
					i, i / PER, i % PER, (unsigned long long)sh->accepted[i],
					(unsigned long long)sh->acked_id[i]);
		}
	}
	CHECKF(missing == 0, "%u tasks never accepted or never acked", missing);
	CHECKF(twice == 0, "%u tasks acked more than once", twice);
	CHECKF(wrong == 0, "%u tasks acked under another ID than they were accepted with", wrong);
	uint64_t *ids = malloc(sizeof(uint64_t) * TASKS);
	CHECK(ids);
	memcpy(ids, sh->accepted, sizeof(uint64_t) * TASKS);
	qsort(ids, TASKS, sizeof ids[0], cmp_u64);
	for (uint32_t i = 1; i < TASKS; i++)
		CHECKF(ids[i] != ids[i - 1], "ID %llu accepted twice", (unsigned long long)ids[i]);
	free(ids);

	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.submitted, TASKS);
	CHECK_EQU(st.acked, TASKS);
	CHECK_EQU(st.depth, 0);
	CHECK_EQU(st.leased_now, 0);
	CHECK_EQU(st.released, atomic_load(&sh->released));
	CHECK_EQU(st.failed, atomic_load(&sh->failed));
	CHECK_EQU(st.leased, TASKS + st.released + st.failed);
	CHECK_EQU(st.dead, 0);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.procs_attached, 1);
	CHECK_EQU(si.repairs, 0);
	struct tq_task task;
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -EAGAIN);
}

/* Phase 2: order as seen by a single worker draining a pre-filled queue. */
static void phase_order(tq *t)
{
	int q = CHECK_OK(tq_queue_declare(t, "ordered", NULL));
	CHECK_RET(tq_queue_pause(t, q), 0);
	for (int p = 0; p < PRODUCERS; p++) {
		if (tqt_fork() == 0) {
			tqt_guard(RUN_SECONDS);
			tq *u = tqt_attach(segname);
			uint64_t rs = 77 + (uint64_t)p;
			static uint8_t buf[2048];
			for (uint32_t seq = 0; seq < OPER;) {
				uint32_t index = (uint32_t)p * OPER + seq;
				uint32_t level = (uint32_t)(tqt_rand(&rs) % LEVELS);
				make_payload(buf, (uint32_t)p, seq, level, index);
				struct tq_submit_opts o = { .level = level, .timeout_ms = 1000 };
				int r = tq_submit(u, q, buf, payload_len(index), &o, NULL);
				if (r == -ETIMEDOUT)
					continue;
				CHECK_RET(r, 0);
				seq++;
			}
			tq_detach(u);
			_exit(0);
		}
	}
	CHECK_EQ(tqt_wait_all(RUN_SECONDS * 1000u), 0);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.depth, ORDERED);
	CHECK_EQU(st.leased, 0);
	CHECK_RET(tq_queue_resume(t, q), 0);

	pid_t pid = tqt_fork();
	if (pid == 0) {
		tqt_guard(RUN_SECONDS);
		tq *u = tqt_attach(segname);
		int only[1] = { q };
		struct tq_lease_opts lo = { .queues = only, .nqueues = 1, .timeout_ms = 0 };
		int last_level = -1;
		static int64_t last_seq[PRODUCERS][LEVELS];
		for (int p = 0; p < PRODUCERS; p++)
			for (int l = 0; l < LEVELS; l++)
				last_seq[p][l] = -1;
		uint64_t rs = 5;
		unsigned got = 0;
		while (got < ORDERED) {
			struct tq_task tasks[8];
			int n = CHECK_OK(tq_lease(u, &lo, tasks, 1 + (unsigned)(tqt_rand(&rs) % 8)));
			CHECK_GE(n, 1);
			for (int k = 0; k < n; k++) {
				int64_t index = check_payload(&tasks[k], OPER);
				CHECKF(index >= 0, "a payload nobody submitted");
				struct payload pl;
				memcpy(&pl, tasks[k].payload, sizeof pl);
				CHECKF((int)pl.level >= last_level, "level %u after level %d", pl.level,
				       last_level);
				CHECKF((int64_t)pl.seq > last_seq[pl.producer][pl.level],
				       "producer %u level %u: seq %u after %lld", pl.producer, pl.level,
				       pl.seq, (long long)last_seq[pl.producer][pl.level]);
				last_level = (int)pl.level;
				last_seq[pl.producer][pl.level] = pl.seq;
				CHECK_RET(tq_ack(u, tasks[k].id, NULL, 0), 0);
			}
			got += (unsigned)n;
		}
		CHECK_ERR(tq_lease(u, &lo, (struct tq_task[1]){ { 0 } }, 1), -EAGAIN);
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, RUN_SECONDS * 1000u);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.acked, ORDERED);
	CHECK_EQU(st.depth, 0);
}

int main(void)
{
	tqt_init("stress");
	tqt_guard(RUN_SECONDS + 150);
	sh = tqt_shared(sizeof *sh);
	struct tq_config c;
	tq_config_init(&c);
	c.levels = LEVELS;
	c.capacity = 2048;
	c.max_payload = 4096;
	c.procs = PRODUCERS + WORKERS + 16;
	c.arena_bytes = 8u << 20;
	tq *t = tqt_create(segname, &c);
	int q = CHECK_OK(tq_queue_declare(t, "stress", NULL));
	phase_exactly_once(t, q);
	phase_order(t);
	tq_detach(t);
	CHECK_RET(tq_unlink(segname), 0);
	return 0;
}

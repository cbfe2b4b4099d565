/* SPDX-License-Identifier: MIT */
/*
 * test-finish - finishing leased tasks: tq_ack with and without a result,
 * tq_result, tq_forget, tq_fail (requeue at the tail, then dead letter with
 * 1), tq_release (no attempt counted), tq_extend, lease expiry and -ESTALE
 * (another handle, another process, an expired lease), -ENOENT for unknown
 * IDs, -EMSGSIZE and -EAGAIN for results, and tq_requeue_dead.
 */
#include "tq-test.h"

static const struct tq_lease_opts lease_now = { .timeout_ms = 0 };

static void lease_one(tq *t, struct tq_task *task)
{
	CHECK_RET(tq_lease(t, &lease_now, task, 1), 1);
}

static uint32_t state_of(tq *t, uint64_t id)
{
	struct tq_info info;
	CHECK_RET(tq_get(t, id, &info), 0);
	return info.state;
}

static void test_ack_result(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.max_payload = 256 << 10;
	c.arena_bytes = 16u << 20;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "a", NULL));
	uint64_t id;
	struct tq_task task;
	struct tq_info info;

	/* No result: the slot is freed, the ID is unknown from then on. */
	CHECK_RET(tq_submit(t, q, "one", 3, NULL, &id), 0);
	lease_one(t, &task);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	memset(&info, 0x77, sizeof info);
	CHECK_ERR(tq_get(t, id, &info), -ENOENT);
	for (size_t i = 0; i < sizeof info; i++)
		CHECK_EQ(((unsigned char *)&info)[i], 0x77);
	CHECK_ERR(tq_ack(t, id, NULL, 0), -ENOENT);
	CHECK_ERR(tq_result(t, id, NULL, 0), -ENOENT);
	CHECK_ERR(tq_forget(t, id), -ENOENT);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 0);

	/* A small result is kept: DONE. */
	CHECK_RET(tq_submit(t, q, "two", 3, NULL, &id), 0);
	lease_one(t, &task);
	char r8[8];
	memset(r8, 'Q', sizeof r8);
	CHECK_ERR(tq_result(t, id, r8, sizeof r8), -EBUSY);
	CHECK_EQ(r8[0], 'Q');
	CHECK_ERR(tq_forget(t, id), -EBUSY);
	CHECK_ERR(tq_ack(t, id, NULL, 5), -EINVAL);
	CHECK_EQ(state_of(t, id), TQ_STATE_LEASED);
	CHECK_RET(tq_ack(t, id, "result!", 7), 0);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_DONE);
	CHECK_EQ(info.len, 7);
	CHECK_EQ(info.attempts, 1);
	CHECK_RET(tq_result(t, id, r8, sizeof r8), 7);
	CHECK(memcmp(r8, "result!", 7) == 0);
	/* A short buffer gets a prefix; the full length is returned. */
	memset(r8, 'Q', sizeof r8);
	CHECK_RET(tq_result(t, id, r8, 3), 7);
	CHECK(memcmp(r8, "resQ", 4) == 0);
	CHECK_RET(tq_result(t, id, NULL, 0), 7);
	/* DONE is not leased any more. */
	int r = tq_ack(t, id, NULL, 0);
	CHECKF(r == -ESTALE, "ack of a DONE task: %d (%s)", r, tq_strerror(r));
	CHECK_ERR(tq_cancel(t, id), -EBUSY);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 1);
	CHECK_RET(tq_forget(t, id), 0);
	CHECK_ERR(tq_get(t, id, &info), -ENOENT);
	CHECK_ERR(tq_forget(t, id), -ENOENT);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 0);

	/* Results of every size up to max_payload, read from another process. */
	static const uint32_t sizes[] = { 1, 15, 16, 64, 100, 1000, 4096, 65536, 100000,
					  256 << 10 };
	enum { N = sizeof sizes / sizeof sizes[0] };
	uint64_t ids[N];
	uint8_t *buf = malloc(256 << 10);
	CHECK(buf);
	for (unsigned i = 0; i < N; i++) {
		CHECK_RET(tq_submit(t, q, &i, sizeof i, NULL, &ids[i]), 0);
		lease_one(t, &task);
		CHECK_EQU(task.id, ids[i]);
		tqt_fill(buf, sizes[i], 77 + i);
		CHECK_RET(tq_ack(t, ids[i], buf, sizes[i]), 0);
	}
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		uint8_t *b = malloc(256 << 10);
		CHECK(b);
		for (unsigned i = 0; i < N; i++) {
			struct tq_info in;
			CHECK_RET(tq_get(u, ids[i], &in), 0);
			CHECK_EQ(in.state, TQ_STATE_DONE);
			CHECK_EQ(in.len, sizes[i]);
			CHECK_RET(tq_result(u, ids[i], b, 256 << 10), (int)sizes[i]);
			CHECKF(tqt_fill_check(b, sizes[i], 77 + i), "result of %u bytes", sizes[i]);
			/* Another handle may forget it. */
			CHECK_RET(tq_forget(u, ids[i]), 0);
		}
		free(b);
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	for (unsigned i = 0; i < N; i++)
		CHECK_ERR(tq_get(t, ids[i], &info), -ENOENT);

	/* Too large a result: -EMSGSIZE, and the task stays leased. */
	CHECK_RET(tq_submit(t, q, "big", 3, NULL, &id), 0);
	lease_one(t, &task);
	CHECK_ERR(tq_ack(t, id, buf, (256 << 10) + 1), -EMSGSIZE);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_LEASED);
	CHECK_EQ(info.owner_pid, getpid());
	CHECK_RET(tq_ack(t, id, buf, 10), 0);
	CHECK_RET(tq_forget(t, id), 0);
	free(buf);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Results that do not fit in the arena: -EAGAIN, the task stays leased,
 * and room given back by tq_forget is usable again. */
static void test_result_no_room(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.max_payload = 64 << 10;
	c.arena_bytes = 1u << 20;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "r", NULL));
	enum { N = 200 };
	uint64_t ids[N];
	for (int i = 0; i < N; i++)
		CHECK_RET(tq_submit(t, q, &i, sizeof i, NULL, &ids[i]), 0);
	static uint8_t res[60 << 10];
	tqt_fill(res, sizeof res, 5);
	int done = 0, full_at = -1;
	for (int i = 0; i < N; i++) {
		struct tq_task task;
		lease_one(t, &task);
		int r = tq_ack(t, task.id, res, sizeof res);
		if (r == -EAGAIN) {
			struct tq_info info;
			CHECK_RET(tq_get(t, task.id, &info), 0);
			CHECK_EQ(info.state, TQ_STATE_LEASED);
			CHECK_EQ(info.owner_pid, getpid());
			full_at = i;
			/* Make room, then the same ack succeeds. */
			CHECK_RET(tq_forget(t, ids[0]), 0);
			CHECK_RET(tq_ack(t, task.id, res, sizeof res), 0);
			break;
		}
		CHECK_RET(r, 0);
		done++;
	}
	CHECKF(full_at > 0, "%d results of 60 KiB fit in a 1 MiB arena", done);
	TQT_LOG("arena of 1 MiB held %d results of 60 KiB", done);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_fail_release(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "f", NULL));
	uint64_t a, b;
	struct tq_task task;
	struct tq_info info;
	struct tq_stats st;

	/* Failing requeues at the tail of the level while attempts remain. */
	CHECK_RET(tq_submit(t, q, "A", 1, NULL, &a), 0);
	CHECK_RET(tq_submit(t, q, "B", 1, NULL, &b), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, a);
	CHECK_EQ(task.attempts, 1);
	CHECK_EQ(task.max_attempts, 3);
	CHECK_RET(tq_fail(t, a), 0);
	CHECK_RET(tq_get(t, a, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_PENDING);
	CHECK_EQ(info.attempts, 1);
	CHECK_EQ(info.owner_pid, 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, b);
	CHECK_RET(tq_ack(t, b, NULL, 0), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, a);
	CHECK_EQ(task.attempts, 2);
	CHECK_RET(tq_fail(t, a), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, a);
	CHECK_EQ(task.attempts, 3);
	/* The last attempt fails: dead letter, and tq_fail says 1. */
	CHECK_RET(tq_fail(t, a), 1);
	CHECK_RET(tq_get(t, a, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_DEAD);
	CHECK_EQ(info.attempts, 3);
	CHECK_EQ(info.owner_pid, 0);
	CHECK_ERR(tq_lease(t, &lease_now, &task, 1), -EAGAIN);
	CHECK_ERR(tq_fail(t, a), -ESTALE);
	CHECK_ERR(tq_result(t, a, NULL, 0), -EBUSY);
	CHECK_ERR(tq_cancel(t, a), -EBUSY);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.failed, 3);
	CHECK_EQU(st.dead, 1);
	CHECK_EQU(st.leased, 4);
	CHECK_EQU(st.depth, 0);

	/* Dead letters come back with their attempts reset. */
	CHECK_RET(tq_requeue_dead(t, a), 0);
	CHECK_RET(tq_get(t, a, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_PENDING);
	CHECK_EQ(info.attempts, 0);
	CHECK_ERR(tq_requeue_dead(t, a), -EBUSY);
	lease_one(t, &task);
	CHECK_EQU(task.id, a);
	CHECK_EQ(task.attempts, 1);
	CHECK_ERR(tq_requeue_dead(t, a), -EBUSY);
	CHECK_RET(tq_fail(t, a), 0);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.requeued, 1);
	CHECK_EQU(st.dead, 1);
	CHECK_EQU(st.failed, 4);

	/* max_attempts 1: the first failure is final. A dead task can be
	 * forgotten. */
	struct tq_submit_opts o = { .max_attempts = 1 };
	CHECK_RET(tq_submit(t, q, "one", 3, &o, &b), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, a);
	CHECK_RET(tq_ack(t, a, NULL, 0), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, b);
	CHECK_EQ(task.max_attempts, 1);
	CHECK_RET(tq_fail(t, b), 1);
	CHECK_EQ(state_of(t, b), TQ_STATE_DEAD);
	CHECK_RET(tq_forget(t, b), 0);
	CHECK_ERR(tq_get(t, b, &info), -ENOENT);
	CHECK_ERR(tq_requeue_dead(t, b), -ENOENT);

	/* Releasing never counts an attempt, however often. */
	CHECK_RET(tq_submit(t, q, "rel", 3, &o, &b), 0);
	for (int i = 0; i < 10; i++) {
		lease_one(t, &task);
		CHECK_EQU(task.id, b);
		CHECK_EQ(task.attempts, 1);
		CHECK_RET(tq_release(t, b), 0);
		CHECK_RET(tq_get(t, b, &info), 0);
		CHECK_EQ(info.state, TQ_STATE_PENDING);
		CHECK_EQ(info.attempts, 0);
		CHECK_EQ(info.owner_pid, 0);
	}
	CHECK_ERR(tq_release(t, b), -ESTALE);
	lease_one(t, &task);
	CHECK_RET(tq_fail(t, b), 1);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.released, 10);
	CHECK_EQU(st.dead, 3);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_extend(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.lease_ms = 5000;
	int q = CHECK_OK(tq_queue_declare(t, "x", &qc));
	uint64_t id;
	struct tq_task task;
	struct tq_info info;
	CHECK_RET(tq_submit(t, q, "e", 1, NULL, &id), 0);
	uint64_t t0 = tq_now_ns();
	lease_one(t, &task);
	uint64_t t1 = tq_now_ns();
	CHECK_GEU(task.deadline_ns, t0 + 5000ull * 1000000ull);
	CHECK_LEU(task.deadline_ns, t1 + 5000ull * 1000000ull);

	t0 = tq_now_ns();
	CHECK_RET(tq_extend(t, id, 60000), 0);
	t1 = tq_now_ns();
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_LEASED);
	CHECK_GEU(info.due_ns, t0 + 60000ull * 1000000ull);
	CHECK_LEU(info.due_ns, t1 + 60000ull * 1000000ull);
	/* Shorter is allowed too: the deadline is now + ms. */
	t0 = tq_now_ns();
	CHECK_RET(tq_extend(t, id, 2000), 0);
	t1 = tq_now_ns();
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_GEU(info.due_ns, t0 + 2000ull * 1000000ull);
	CHECK_LEU(info.due_ns, t1 + 2000ull * 1000000ull);
	/* 0 = the task's own lease length. */
	t0 = tq_now_ns();
	CHECK_RET(tq_extend(t, id, 0), 0);
	t1 = tq_now_ns();
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_GEU(info.due_ns, t0 + 5000ull * 1000000ull);
	CHECK_LEU(info.due_ns, t1 + 5000ull * 1000000ull);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	CHECK_ERR(tq_extend(t, id, 100), -ENOENT);
	/* Only a leased task can be extended. */
	CHECK_RET(tq_submit(t, q, "p", 1, NULL, &id), 0);
	CHECK_ERR(tq_extend(t, id, 100), -ESTALE);
	CHECK_RET(tq_cancel(t, id), 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_stale(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "s", NULL));
	uint64_t id;
	struct tq_task task;
	struct tq_info info;

	/* A pending task is leased by nobody. */
	CHECK_RET(tq_submit(t, q, "s", 1, NULL, &id), 0);
	CHECK_ERR(tq_ack(t, id, NULL, 0), -ESTALE);
	CHECK_ERR(tq_fail(t, id), -ESTALE);
	CHECK_ERR(tq_release(t, id), -ESTALE);
	CHECK_ERR(tq_extend(t, id, 100), -ESTALE);
	CHECK_EQ(state_of(t, id), TQ_STATE_PENDING);

	/* Another handle of this process. */
	lease_one(t, &task);
	tq *u = tqt_attach(name);
	CHECK_ERR(tq_ack(u, id, NULL, 0), -ESTALE);
	CHECK_ERR(tq_ack(u, id, "r", 1), -ESTALE);
	CHECK_ERR(tq_fail(u, id), -ESTALE);
	CHECK_ERR(tq_release(u, id), -ESTALE);
	CHECK_ERR(tq_extend(u, id, 100), -ESTALE);
	CHECK_RET(tq_get(u, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_LEASED);
	CHECK_EQ(info.owner_pid, getpid());
	CHECK_EQ(info.attempts, 1);
	tq_detach(u);

	/* Another process. */
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *v = tqt_attach(name);
		CHECK_ERR(tq_ack(v, id, NULL, 0), -ESTALE);
		CHECK_ERR(tq_fail(v, id), -ESTALE);
		CHECK_ERR(tq_release(v, id), -ESTALE);
		CHECK_ERR(tq_extend(v, id, 100), -ESTALE);
		tq_detach(v);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_LEASED);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.acked, 1);
	CHECK_EQU(st.failed, 0);
	CHECK_EQU(st.released, 0);

	/* A lease past its deadline that nobody took back is still this
	 * handle's (the public API has no call that takes leases back, so
	 * only "not stale yet" can be checked here). */
	CHECK_RET(tq_submit(t, q, "x", 1, NULL, &id), 0);
	struct tq_lease_opts lo = { .timeout_ms = 0, .lease_ms = 1 };
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, id);
	while (tq_now_ns() <= task.deadline_ns)
		tqt_sleep_ms(1);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_LEASED);
	CHECK_EQU(info.due_ns, task.deadline_ns);
	CHECK_RET(tq_extend(t, id, 1000), 0);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* The record of this process's only handle, t's, in tq_procs(). */
static struct tq_proc_info my_proc(tq *t)
{
	struct tq_proc_info pi[16];
	unsigned cur = 0;
	int n = CHECK_OK(tq_procs(t, pi, 16, &cur));

	for (int i = 0; i < n; i++)
		if (pi[i].pid == getpid())
			return pi[i];
	CHECK(!"no process record of this process");
	return pi[0];
}

/* tq_ack_batch: each ID on its own, errors per ID, the same counters,
 * gauges and process figures as tq_ack() would leave, and bad arguments
 * ack nothing. */
/*
 * One batch of tasks from two queues and two levels, interleaved: each
 * (queue, level) counts its own acks and run times, and a queue with a
 * max_length gets back exactly the room its acked tasks held.
 */
static void test_ack_batch_groups(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	struct tq_queue_config qc = { .max_length = 6 };
	int qa = CHECK_OK(tq_queue_declare(t, "capped", &qc));
	int qb = CHECK_OK(tq_queue_declare(t, "open", NULL));
	struct tq_task_spec sp[6];
	struct tq_task tasks[12];
	struct tq_lease_opts all = { .timeout_ms = 0 };
	struct tq_stats st;
	struct tq_histogram h;
	uint64_t ids[12];

	for (int i = 0; i < 6; i++)
		sp[i] = (struct tq_task_spec){ .payload = "g", .len = 1, .level = (uint32_t)i % 2 };
	CHECK_RET(tq_submit_batch(t, qa, sp, 6, NULL, NULL), 6);
	CHECK_RET(tq_submit_batch(t, qb, sp, 6, NULL, NULL), 6);
	CHECK_ERR(tq_submit(t, qa, "x", 1, NULL, NULL), -EAGAIN);
	CHECK_RET(tq_lease(t, &all, tasks, 12), 12);
	/* Interleave the queues: a new group at nearly every task. */
	for (int i = 0; i < 6; i++) {
		ids[2 * i] = tasks[i].id;
		ids[2 * i + 1] = tasks[11 - i].id;
	}
	CHECK_RET(tq_ack_batch(t, ids, 12, NULL), 12);
	for (int q = qa; q <= qb; q++) {
		for (int lv = 0; lv < 2; lv++) {
			CHECK_RET(tq_stats(t, q, lv, &st), 0);
			CHECK_EQU(st.acked, 3);
			CHECK_EQU(st.leased_now, 0);
			CHECK_EQU(st.depth, 0);
			CHECK_RET(tq_histogram(t, q, lv, TQ_HIST_RUN, &h), 0);
			CHECK_EQU(h.count, 3);
		}
	}
	CHECK_EQU(my_proc(t).leased_now, 0);
	CHECK_EQU(my_proc(t).done, 12);
	/* The capped queue has its six places back, no more. */
	CHECK_RET(tq_submit_batch(t, qa, sp, 6, NULL, NULL), 6);
	CHECK_ERR(tq_submit(t, qa, "x", 1, NULL, NULL), -EAGAIN);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_ack_batch(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "b", NULL));
	struct tq_task tasks[8], other;
	struct tq_lease_opts all = { .timeout_ms = 0 };
	struct tq_segment_info si;
	struct tq_stats st;
	uint64_t ids[12], pending;
	int errs[12];

	for (int i = 0; i < 8; i++)
		CHECK_RET(tq_submit(t, q, "b", 1, NULL, NULL), 0);
	CHECK_RET(tq_lease(t, &all, tasks, 8), 8);
	CHECK_EQU(my_proc(t).leased_now, 8);

	/* Bad arguments: nothing acked, the tasks still leased. */
	CHECK_ERR(tq_ack_batch(NULL, ids, 1, NULL), -EINVAL);
	CHECK_ERR(tq_ack_batch(t, NULL, 1, NULL), -EINVAL);
	CHECK_ERR(tq_ack_batch(t, ids, 0, NULL), -EINVAL);
	CHECK_ERR(tq_ack_batch(t, ids, TQ_BATCH_MAX + 1, NULL), -EINVAL);
	CHECK_EQ(state_of(t, tasks[0].id), TQ_STATE_LEASED);

	/* Four acked; an unknown ID, a pending task, a task twice and a task
	 * leased by another handle fail on their own. */
	tq *u = tqt_attach(name);
	CHECK_RET(tq_submit(u, q, "o", 1, NULL, NULL), 0);
	CHECK_RET(tq_lease(u, &all, &other, 1), 1);
	CHECK_RET(tq_submit(t, q, "p", 1, NULL, &pending), 0);
	ids[0] = tasks[0].id;
	ids[1] = tasks[1].id ^ (1ull << 40);    /* another generation: unknown */
	ids[2] = tasks[1].id;
	ids[3] = pending;
	ids[4] = tasks[2].id;
	ids[5] = tasks[2].id;                   /* acked just before: gone */
	ids[6] = other.id;
	ids[7] = tasks[3].id;
	memset(errs, 0x55, sizeof(errs));
	CHECK_RET(tq_ack_batch(t, ids, 8, errs), 4);
	CHECK_RET(errs[0], 0);
	CHECK_RET(errs[1], -ENOENT);
	CHECK_RET(errs[2], 0);
	CHECK_RET(errs[3], -ESTALE);
	CHECK_RET(errs[4], 0);
	CHECK_RET(errs[5], -ENOENT);
	CHECK_RET(errs[6], -ESTALE);
	CHECK_RET(errs[7], 0);
	CHECK(tq_last_error(t)[0] != 0);
	CHECK_EQ(errs[8], 0x55555555);          /* past n: untouched */
	for (int i = 0; i < 4; i++)
		CHECK_ERR(tq_get(t, tasks[i].id, &(struct tq_info){ 0 }), -ENOENT);
	CHECK_EQ(state_of(t, other.id), TQ_STATE_LEASED);
	CHECK_EQ(state_of(t, pending), TQ_STATE_PENDING);
	CHECK_RET(tq_ack(u, other.id, NULL, 0), 0);
	tq_detach(u);
	CHECK_EQU(my_proc(t).leased_now, 4);

	/* The rest, without errs; then the books balance. */
	for (int i = 0; i < 4; i++)
		ids[i] = tasks[4 + i].id;
	CHECK_RET(tq_ack_batch(t, ids, 4, NULL), 4);
	CHECK_RET(tq_ack_batch(t, ids, 4, NULL), 0);
	struct tq_proc_info pi = my_proc(t);
	CHECK_EQU(pi.leased_now, 0);
	CHECK_EQU(pi.done, 8);
	CHECK_EQU(pi.leased, 8);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.acked, 9);
	CHECK_EQU(st.leased_now, 0);
	CHECK_EQU(st.depth, 1);
	struct tq_histogram h;
	CHECK_RET(tq_histogram(t, q, -1, TQ_HIST_RUN, &h), 0);
	CHECK_EQU(h.count, 9);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 1);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_unknown_ids(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "u", NULL));
	uint64_t real;
	CHECK_RET(tq_submit(t, q, "r", 1, NULL, &real), 0);
	uint64_t s = 4242;
	uint64_t ids[40];
	ids[0] = 0;
	ids[1] = UINT64_MAX;
	ids[2] = 1ull << 63;
	ids[3] = real ^ (1ull << 62);
	ids[4] = real ^ (1ull << 40);
	ids[5] = real + (1ull << 32);
	for (int i = 6; i < 40; i++)
		ids[i] = tqt_rand(&s);
	for (int i = 0; i < 40; i++) {
		uint64_t id = ids[i];
		if (id == real)
			continue;
		struct tq_info info;
		char buf[4];
		CHECK_ERR(tq_get(t, id, &info), -ENOENT);
		CHECK_ERR(tq_ack(t, id, NULL, 0), -ENOENT);
		CHECK_ERR(tq_ack(t, id, "x", 1), -ENOENT);
		CHECK_ERR(tq_fail(t, id), -ENOENT);
		CHECK_ERR(tq_release(t, id), -ENOENT);
		CHECK_ERR(tq_extend(t, id, 1), -ENOENT);
		CHECK_ERR(tq_result(t, id, buf, sizeof buf), -ENOENT);
		CHECK_ERR(tq_forget(t, id), -ENOENT);
		CHECK_ERR(tq_cancel(t, id), -ENOENT);
		CHECK_ERR(tq_set_level(t, id, 0), -ENOENT);
		CHECK_ERR(tq_requeue_dead(t, id), -ENOENT);
	}
	CHECK_EQ(state_of(t, real), TQ_STATE_PENDING);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Retry backoff: a failed task waits in the delay wheel for at least half
 * its backoff (equal jitter), the waits grow by the factor, and after the
 * last attempt it goes to the dead letters at once. */
static void test_retry_backoff(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	struct tq_queue_config qc;
	struct tq_lease_opts lo = { .timeout_ms = 5000 };
	struct tq_task task;
	struct tq_info in;
	struct tq_stats st;
	uint64_t id, t0;

	memset(&qc, 0, sizeof qc);
	qc.max_attempts = 3;
	qc.retry_base_ms = 40;
	qc.retry_factor = 300;
	int q = CHECK_OK(tq_queue_declare(t, "retry", &qc));
	CHECK_RET(tq_submit(t, q, "r", 1, NULL, &id), 0);

	/* Attempt 1 fails: delayed by d in [20, 40] ms. */
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	t0 = tq_now_ns();
	CHECK_RET(tq_fail(t, task.id), 0);
	CHECK_RET(tq_get(t, id, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DELAYED);
	CHECK_GEU(in.due_ns, t0 + 20000000ull);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.delayed, 1);
	CHECK_EQU(st.depth, 0);
	struct tq_lease_opts now = { .timeout_ms = 0 };
	CHECK_ERR(tq_lease(t, &now, &task, 1), -EAGAIN);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_GEU(tq_now_ns(), in.due_ns - 1000000ull);   /* not before (clock ms) */
	CHECK_EQU(task.attempts, 2);

	/* Attempt 2 fails: d = 120 ms, so at least 60 ms. */
	t0 = tq_now_ns();
	CHECK_RET(tq_fail(t, task.id), 0);
	CHECK_RET(tq_get(t, id, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DELAYED);
	CHECK_GEU(in.due_ns, t0 + 60000000ull);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.attempts, 3);

	/* The last attempt fails: dead letter at once, no wait. */
	CHECK_RET(tq_fail(t, task.id), 1);
	CHECK_RET(tq_get(t, id, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DEAD);

	/* Bad settings. */
	qc.retry_factor = 99;
	CHECK_ERR(tq_queue_declare(t, "bad1", &qc), -EINVAL);
	qc.retry_factor = 1001;
	CHECK_ERR(tq_queue_declare(t, "bad2", &qc), -EINVAL);
	qc.retry_factor = 0;
	qc.retry_base_ms = 86400001u;
	CHECK_ERR(tq_queue_declare(t, "bad3", &qc), -EINVAL);
	tq_detach(t);
}

/* Results with a TTL are forgotten by tq_tick() once it has passed; without
 * one they stay. */
static void test_result_ttl(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	struct tq_queue_config qc;
	struct tq_lease_opts lo = { 0 };
	struct tq_task task;
	struct tq_info in;
	uint64_t a, b, keep;
	char buf[8];

	memset(&qc, 0, sizeof qc);
	qc.result_ttl_ms = 30;
	int q = CHECK_OK(tq_queue_declare(t, "ttl", &qc));
	int k = CHECK_OK(tq_queue_declare(t, "keep", NULL));
	CHECK_RET(tq_submit(t, q, "a", 1, NULL, &a), 0);
	CHECK_RET(tq_submit(t, q, "b", 1, NULL, &b), 0);
	CHECK_RET(tq_submit(t, k, "k", 1, NULL, &keep), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		CHECK_RET(tq_ack(t, task.id, "res", 3), 0);
	}
	CHECK_RET(tq_result(t, a, buf, sizeof buf), 3);
	CHECK_RET(tq_get(t, a, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DONE);
	CHECK_GEU(in.due_ns, 1);
	/* Forgotten by hand before its time: fine, and the ring skips it. */
	CHECK_RET(tq_forget(t, b), 0);
	/* Not yet: a tick right away keeps it. */
	CHECK_RET(tq_tick(t), 0);
	CHECK_RET(tq_get(t, a, &in), 0);
	uint64_t t0 = tq_now_ns();
	while (tq_get(t, a, &in) == 0 && tq_now_ns() - t0 < 5000000000ull) {
		tqt_sleep_ms(5);
		CHECK_RET(tq_tick(t), 0);
	}
	CHECK_ERR(tq_get(t, a, &in), -ENOENT);
	CHECK_GEU(tq_now_ns() - t0, 1);
	/* The queue without a TTL keeps its result. */
	CHECK_RET(tq_result(t, keep, buf, sizeof buf), 3);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 1);
	tq_detach(t);
}

int main(void)
{
	tqt_init("finish");
	tqt_guard(115);
	test_ack_result();
	test_result_no_room();
	test_fail_release();
	test_extend();
	test_stale();
	test_ack_batch();
	test_ack_batch_groups();
	test_unknown_ids();
	test_retry_backoff();
	test_result_ttl();
	return 0;
}

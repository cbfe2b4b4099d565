/* SPDX-License-Identifier: MIT */
/*
 * test-inspect - looking at and steering tasks nobody holds: tq_get in every
 * state (fields, owner_pid of this and of another process, dead or alive),
 * tq_cancel (pending and delayed; -EBUSY otherwise; leasing skips it),
 * tq_set_level (moves to the tail of the new level; -EINVAL, -EBUSY), and
 * delayed tasks: TQ_STATE_DELAYED, never leased before not_before_ns, leased
 * after it (by a waiting worker too). No timing assertion other than "not
 * before its time".
 */
#include "tq-test.h"

static const struct tq_lease_opts lease_now = { .timeout_ms = 0 };

static void lease_one(tq *t, struct tq_task *task)
{
	CHECK_RET(tq_lease(t, &lease_now, task, 1), 1);
}

static struct tq_info get(tq *t, uint64_t id)
{
	struct tq_info info;
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQU(info.id, id);
	return info;
}

static void test_get_states(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 4;
	tq *t = tqt_create(name, &c);
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.max_attempts = 2;
	qc.lease_ms = 7000;
	int q = CHECK_OK(tq_queue_declare(t, "g", &qc));

	struct tq_submit_opts o = { .level = 2, .type = 513 };
	uint64_t id, t0 = tq_now_ns();
	CHECK_RET(tq_submit(t, q, "payload", 7, &o, &id), 0);
	uint64_t t1 = tq_now_ns();
	struct tq_info in = get(t, id);
	CHECK_EQ(in.state, TQ_STATE_PENDING);
	CHECK_EQ(in.queue, q);
	CHECK_EQ(in.level, 2);
	CHECK_EQ(in.type, 513);
	CHECK_EQ(in.attempts, 0);
	CHECK_EQ(in.max_attempts, 2);
	CHECK_EQ(in.len, 7);
	CHECK_EQ(in.lease_ms, 7000);
	CHECK_EQ(in.owner_pid, 0);
	CHECK_GEU(in.submitted_ns, t0);
	CHECK_LEU(in.submitted_ns, t1);
	uint64_t submitted = in.submitted_ns;

	struct tq_task task;
	lease_one(t, &task);
	in = get(t, id);
	CHECK_EQ(in.state, TQ_STATE_LEASED);
	CHECK_EQ(in.owner_pid, getpid());
	CHECK_EQ(in.attempts, 1);
	CHECK_EQU(in.due_ns, task.deadline_ns);
	CHECK_EQU(in.submitted_ns, submitted);
	CHECK_EQ(in.level, 2);
	CHECK_EQ(in.type, 513);
	CHECK_EQ(in.len, 7);

	CHECK_RET(tq_fail(t, id), 0);
	in = get(t, id);
	CHECK_EQ(in.state, TQ_STATE_PENDING);
	CHECK_EQ(in.owner_pid, 0);
	CHECK_EQ(in.attempts, 1);
	lease_one(t, &task);
	CHECK_RET(tq_fail(t, id), 1);
	in = get(t, id);
	CHECK_EQ(in.state, TQ_STATE_DEAD);
	CHECK_EQ(in.attempts, 2);
	CHECK_EQ(in.owner_pid, 0);
	CHECK_EQ(in.len, 7);
	CHECK_RET(tq_requeue_dead(t, id), 0);
	lease_one(t, &task);
	CHECK_RET(tq_ack(t, id, "0123456789", 10), 0);
	in = get(t, id);
	CHECK_EQ(in.state, TQ_STATE_DONE);
	CHECK_EQ(in.len, 10);
	CHECK_EQ(in.owner_pid, 0);
	CHECK_EQ(in.queue, q);
	CHECK_EQ(in.type, 513);
	CHECK_RET(tq_forget(t, id), 0);

	/* Failures leave *info untouched; bad arguments. */
	struct tq_info keep;
	memset(&keep, 0x3c, sizeof keep);
	CHECK_ERR(tq_get(t, id, &keep), -ENOENT);
	CHECK_ERR(tq_get(t, 0, &keep), -ENOENT);
	for (size_t i = 0; i < sizeof keep; i++)
		CHECK_EQ(((unsigned char *)&keep)[i], 0x3c);
	CHECK_RET(tq_submit(t, q, "n", 1, NULL, &id), 0);
	CHECK_ERR(tq_get(t, id, NULL), -EINVAL);

	/* Leased by another process: its PID, alive and then dead (a dead
	 * owner's lease stays recorded against it). */
	int *go = tqt_shared(sizeof *go);
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		struct tq_task tk;
		lease_one(u, &tk);
		if (tk.id != id)
			_exit(10);
		__atomic_store_n(go, 1, __ATOMIC_SEQ_CST);
		for (int i = 0; i < 3000 && __atomic_load_n(go, __ATOMIC_SEQ_CST) != 2; i++)
			tqt_sleep_ms(10);
		_exit(0); /* dies holding the lease, without tq_detach */
	}
	for (int i = 0; i < 3000 && __atomic_load_n(go, __ATOMIC_SEQ_CST) != 1; i++)
		tqt_sleep_ms(10);
	CHECK_EQ(__atomic_load_n(go, __ATOMIC_SEQ_CST), 1);
	in = get(t, id);
	CHECK_EQ(in.state, TQ_STATE_LEASED);
	CHECK_EQ(in.owner_pid, pid);
	CHECK_ERR(tq_cancel(t, id), -EBUSY);
	CHECK_ERR(tq_ack(t, id, NULL, 0), -ESTALE);
	__atomic_store_n(go, 2, __ATOMIC_SEQ_CST);
	tqt_expect_child_ok(pid, 30000);
	in = get(t, id);
	CHECK(in.state == TQ_STATE_LEASED || in.state == TQ_STATE_BUSY);
	CHECK_EQ(in.owner_pid, pid);
	CHECK(!tqt_pid_alive(pid));

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_cancel(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "c", NULL));
	uint64_t a, b, d;
	struct tq_task task;
	struct tq_info info;

	CHECK_RET(tq_submit(t, q, "A", 1, NULL, &a), 0);
	CHECK_RET(tq_submit(t, q, "B", 1, NULL, &b), 0);
	CHECK_RET(tq_submit(t, q, "D", 1, NULL, &d), 0);
	CHECK_RET(tq_cancel(t, b), 0);
	CHECK_ERR(tq_get(t, b, &info), -ENOENT);
	CHECK_ERR(tq_cancel(t, b), -ENOENT);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.depth, 2);
	CHECK_EQU(st.cancelled, 1);
	/* Leasing skips it. */
	lease_one(t, &task);
	CHECK_EQU(task.id, a);
	lease_one(t, &task);
	CHECK_EQU(task.id, d);
	CHECK_ERR(tq_lease(t, &lease_now, &task, 1), -EAGAIN);
	/* Leased: -EBUSY, and it stays leased. */
	CHECK_ERR(tq_cancel(t, a), -EBUSY);
	CHECK_EQ(get(t, a).state, TQ_STATE_LEASED);
	CHECK_RET(tq_ack(t, a, "done", 4), 0);
	CHECK_ERR(tq_cancel(t, a), -EBUSY);
	CHECK_EQ(get(t, a).state, TQ_STATE_DONE);
	CHECK_RET(tq_forget(t, a), 0);
	struct tq_submit_opts one = { .max_attempts = 1 };
	CHECK_RET(tq_ack(t, d, NULL, 0), 0);
	CHECK_RET(tq_submit(t, q, "E", 1, &one, &d), 0);
	lease_one(t, &task);
	CHECK_RET(tq_fail(t, d), 1);
	CHECK_ERR(tq_cancel(t, d), -EBUSY);
	CHECK_EQ(get(t, d).state, TQ_STATE_DEAD);

	/* Cancelling many pending tasks in a batch, every other one. */
	uint64_t ids[40];
	for (int i = 0; i < 40; i++)
		CHECK_RET(tq_submit(t, q, &i, sizeof i, NULL, &ids[i]), 0);
	for (int i = 0; i < 40; i += 2)
		CHECK_RET(tq_cancel(t, ids[i]), 0);
	for (int i = 1; i < 40; i += 2) {
		lease_one(t, &task);
		CHECK_EQU(task.id, ids[i]);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
	CHECK_ERR(tq_lease(t, &lease_now, &task, 1), -EAGAIN);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.cancelled, 21);
	CHECK_EQU(st.depth, 0);

	/* A cancelled task's slot is reused, its ID stays unknown. */
	uint64_t x;
	CHECK_RET(tq_submit(t, q, "x", 1, NULL, &x), 0);
	for (int i = 0; i < 40; i += 2)
		CHECK_ERR(tq_get(t, ids[i], &info), -ENOENT);
	CHECK_RET(tq_cancel(t, x), 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_set_level(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 4;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "l", NULL));
	uint64_t a, b, m, z;
	struct tq_task task;
	struct tq_submit_opts o = { .level = 0 };

	CHECK_RET(tq_submit(t, q, "a", 1, &o, &a), 0);
	o.level = 3;
	CHECK_RET(tq_submit(t, q, "m", 1, &o, &m), 0);
	o.level = 0;
	CHECK_RET(tq_submit(t, q, "b", 1, &o, &b), 0);
	o.level = 2;
	CHECK_RET(tq_submit(t, q, "z", 1, &o, &z), 0);

	/* Level 3 -> 0: to the tail of level 0, before level 2. */
	CHECK_RET(tq_set_level(t, m, 0), 0);
	struct tq_info in = get(t, m);
	CHECK_EQ(in.level, 0);
	CHECK_EQ(in.state, TQ_STATE_PENDING);
	CHECK_ERR(tq_set_level(t, m, 4), -EINVAL);
	CHECK_ERR(tq_set_level(t, m, 1000), -EINVAL);
	CHECK_EQ(get(t, m).level, 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, a);
	lease_one(t, &task);
	CHECK_EQU(task.id, b);
	lease_one(t, &task);
	CHECK_EQU(task.id, m);
	CHECK_EQ(task.level, 0);
	/* Leased: -EBUSY. */
	CHECK_ERR(tq_set_level(t, m, 1), -EBUSY);
	CHECK_EQ(get(t, m).level, 0);
	CHECK_RET(tq_ack(t, m, "r", 1), 0);
	CHECK_ERR(tq_set_level(t, m, 1), -EBUSY);
	CHECK_RET(tq_forget(t, m), 0);
	CHECK_RET(tq_ack(t, a, NULL, 0), 0);
	CHECK_RET(tq_ack(t, b, NULL, 0), 0);

	/* Level 2 -> 3, then back to 1: leased at the level it has now. */
	CHECK_RET(tq_set_level(t, z, 3), 0);
	o.level = 2;
	uint64_t y;
	CHECK_RET(tq_submit(t, q, "y", 1, &o, &y), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, y);
	CHECK_RET(tq_ack(t, y, NULL, 0), 0);
	CHECK_RET(tq_set_level(t, z, 1), 0);
	CHECK_RET(tq_submit(t, q, "y", 1, &o, &y), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, z);
	CHECK_EQ(task.level, 1);
	CHECK_RET(tq_ack(t, z, NULL, 0), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, y);
	CHECK_RET(tq_ack(t, y, NULL, 0), 0);

	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.moved, 3);
	CHECK_EQU(st.depth, 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_delayed(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 4;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "d", NULL));
	struct tq_task task;
	struct tq_stats st;
	uint64_t id;

	/* Not before its time, then at the latest when a waiting lease ends. */
	struct tq_submit_opts o = { .level = 1 };
	o.not_before_ns = tq_now_ns() + 700ull * 1000000ull;
	CHECK_RET(tq_submit(t, q, "soon", 4, &o, &id), 0);
	struct tq_info in = get(t, id);
	CHECK_EQ(in.state, TQ_STATE_DELAYED);
	CHECK_EQU(in.due_ns, o.not_before_ns);
	CHECK_EQ(in.level, 1);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.delayed, 1);
	CHECK_EQU(st.depth, 0);
	int r = tq_lease(t, &lease_now, &task, 1);
	if (r == 1)
		CHECK_GEU(tq_now_ns(), o.not_before_ns);
	else
		CHECK_ERR(r, -EAGAIN);
	struct tq_lease_opts lo = { .timeout_ms = 100 };
	r = tq_lease(t, &lo, &task, 1);
	if (r == 1)
		CHECK_GEU(tq_now_ns(), o.not_before_ns);
	else
		CHECK_ERR(r, -ETIMEDOUT);
	if (r != 1) {
		lo.timeout_ms = 30000;
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	}
	CHECK_GEU(tq_now_ns(), o.not_before_ns);
	CHECK_EQU(task.id, id);
	CHECK_EQ(task.level, 1);
	CHECK_EQ(task.attempts, 1);
	CHECK_EQ(get(t, id).state, TQ_STATE_LEASED);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.delayed, 0);

	/* A worker sleeping in another process gets it at its time. */
	o.not_before_ns = tq_now_ns() + 500ull * 1000000ull;
	uint64_t nb = o.not_before_ns;
	CHECK_RET(tq_submit(t, q, "later", 5, &o, &id), 0);
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		struct tq_lease_opts wl = { .timeout_ms = 30000 };
		struct tq_task tk;
		CHECK_RET(tq_lease(u, &wl, &tk, 1), 1);
		CHECK_EQU(tk.id, id);
		CHECK_GEU(tq_now_ns(), nb);
		CHECK(tk.len == 5 && memcmp(tk.payload, "later", 5) == 0);
		CHECK_RET(tq_ack(u, tk.id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 60000);

	/* Cancelled or moved while delayed. */
	o.not_before_ns = tq_now_ns() + 300ull * 1000000ull;
	uint64_t cancelled, moved;
	CHECK_RET(tq_submit(t, q, "c", 1, &o, &cancelled), 0);
	CHECK_RET(tq_submit(t, q, "m", 1, &o, &moved), 0);
	CHECK_RET(tq_set_level(t, moved, 3), 0);
	in = get(t, moved);
	CHECK_EQ(in.state, TQ_STATE_DELAYED);
	CHECK_EQ(in.level, 3);
	CHECK_EQU(in.due_ns, o.not_before_ns);
	CHECK_RET(tq_cancel(t, cancelled), 0);
	CHECK_ERR(tq_get(t, cancelled, &in), -ENOENT);
	lo.timeout_ms = 30000;
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_GEU(tq_now_ns(), o.not_before_ns);
	CHECK_EQU(task.id, moved);
	CHECK_EQ(task.level, 3);
	CHECK_RET(tq_ack(t, moved, NULL, 0), 0);
	CHECK_ERR(tq_lease(t, &lease_now, &task, 1), -EAGAIN);

	/* Far in the future: still delayed; many delayed at mixed times are
	 * each leased no earlier than due. */
	o.not_before_ns = tq_now_ns() + 3600ull * 1000000000ull;
	uint64_t far;
	CHECK_RET(tq_submit(t, q, "far", 3, &o, &far), 0);
	enum { N = 12 };
	uint64_t due[N], ids[N];
	uint64_t base = tq_now_ns();
	for (int i = 0; i < N; i++) {
		o.not_before_ns = base + (uint64_t)((i * 7) % N) * 50ull * 1000000ull + 100000000ull;
		o.level = (uint32_t)(i % 4);
		due[i] = o.not_before_ns;
		CHECK_RET(tq_submit(t, q, &i, sizeof i, &o, &ids[i]), 0);
	}
	for (int k = 0; k < N; k++) {
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		uint64_t now = tq_now_ns();
		int i = -1;
		for (int j = 0; j < N; j++)
			if (ids[j] == task.id)
				i = j;
		CHECKF(i >= 0, "leased an unexpected task %llu", (unsigned long long)task.id);
		CHECK_GEU(now, due[i]);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
	CHECK_ERR(tq_lease(t, &lease_now, &task, 1), -EAGAIN);
	CHECK_EQ(get(t, far).state, TQ_STATE_DELAYED);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.delayed, 1);
	CHECK_RET(tq_cancel(t, far), 0);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.delayed, 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("inspect");
	tqt_guard(115);
	test_get_states();
	test_cancel();
	test_set_level();
	test_delayed();
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test-submit - tq_submit and tq_submit_batch: every option and its bounds,
 * payload round trips from empty to 1 MiB (in this process and another),
 * -EMSGSIZE, -EAGAIN and -ETIMEDOUT when the segment or a queue is full,
 * waiting submits that succeed when another process frees room, batch
 * prefixes, and task IDs that are unique and never reused (across slot
 * reuse, and across concurrent submitters).
 */
#include "tq-test.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const struct tq_lease_opts lease_now = { .timeout_ms = 0 };

static void lease_one(tq *t, struct tq_task *task)
{
	CHECK_RET(tq_lease(t, &lease_now, task, 1), 1);
}

static void test_single_and_options(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 4;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "s", NULL));
	int unused = q == 0 ? 1 : 0;

	/* Defaults. */
	uint64_t t0 = tq_now_ns();
	uint64_t id = 0;
	CHECK_RET(tq_submit(t, q, "hello", 5, NULL, &id), 0);
	uint64_t t1 = tq_now_ns();
	struct tq_info info;
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQU(info.id, id);
	CHECK_EQ(info.state, TQ_STATE_PENDING);
	CHECK_EQ(info.queue, q);
	CHECK_EQ(info.level, 0);
	CHECK_EQ(info.type, 0);
	CHECK_EQ(info.attempts, 0);
	CHECK_EQ(info.max_attempts, 3);
	CHECK_EQ(info.len, 5);
	CHECK_EQ(info.lease_ms, 30000);
	CHECK_EQ(info.owner_pid, 0);
	CHECK_GEU(info.submitted_ns, t0);
	CHECK_LEU(info.submitted_ns, t1);
	struct tq_task task;
	lease_one(t, &task);
	CHECK_EQU(task.id, id);
	CHECK_EQ(task.len, 5);
	CHECK(memcmp(task.payload, "hello", 5) == 0);
	CHECK_EQ(task.queue, q);
	CHECK_EQ(task.level, 0);
	CHECK_EQ(task.type, 0);
	CHECK_EQ(task.attempts, 1);
	CHECK_EQ(task.max_attempts, 3);
	CHECK_EQU(task.submitted_ns, info.submitted_ns);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);

	/* A zeroed options struct is the same as NULL; id may be NULL. */
	struct tq_submit_opts o;
	memset(&o, 0, sizeof o);
	CHECK_RET(tq_submit(t, q, "z", 1, &o, NULL), 0);
	lease_one(t, &task);
	CHECK_EQ(task.level, 0);
	CHECK_EQ(task.max_attempts, 3);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);

	/* Every option, at its largest valid value. */
	memset(&o, 0, sizeof o);
	o.level = 3;
	o.type = TQ_TYPE_MAX;
	o.max_attempts = TQ_ATTEMPTS_MAX;
	o.lease_ms = 4321;
	CHECK_RET(tq_submit(t, q, "opts", 4, &o, &id), 0);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.level, 3);
	CHECK_EQ(info.type, TQ_TYPE_MAX);
	CHECK_EQ(info.max_attempts, TQ_ATTEMPTS_MAX);
	CHECK_EQ(info.lease_ms, 4321);
	t0 = tq_now_ns();
	lease_one(t, &task);
	t1 = tq_now_ns();
	CHECK_EQU(task.id, id);
	CHECK_EQ(task.level, 3);
	CHECK_EQ(task.type, TQ_TYPE_MAX);
	CHECK_EQ(task.max_attempts, TQ_ATTEMPTS_MAX);
	/* The lease lasts the task's lease_ms. */
	CHECK_GEU(task.deadline_ns, t0 + 4321ull * 1000000ull);
	CHECK_LEU(task.deadline_ns, t1 + 4321ull * 1000000ull);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);

	/* not_before_ns in the future: DELAYED. */
	memset(&o, 0, sizeof o);
	o.not_before_ns = tq_now_ns() + 3600ull * 1000000000ull;
	CHECK_RET(tq_submit(t, q, "later", 5, &o, &id), 0);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_DELAYED);
	CHECK_EQU(info.due_ns, o.not_before_ns);
	CHECK_ERR(tq_lease(t, &lease_now, &task, 1), -EAGAIN);
	CHECK_RET(tq_cancel(t, id), 0);
	/* not_before_ns in the past: ready at once. */
	o.not_before_ns = tq_now_ns() - 1000000000ull;
	CHECK_RET(tq_submit(t, q, "past", 4, &o, &id), 0);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_PENDING);
	lease_one(t, &task);
	CHECK_EQU(task.id, id);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);

	/* Invalid options and arguments; *id untouched. */
	struct {
		const char *what;
		struct tq_submit_opts o;
	} bad[] = {
		{ "level == levels", { .level = 4 } },
		{ "level huge", { .level = 0xffffffffu } },
		{ "type over TQ_TYPE_MAX", { .type = TQ_TYPE_MAX + 1 } },
		{ "max_attempts over TQ_ATTEMPTS_MAX", { .max_attempts = TQ_ATTEMPTS_MAX + 1 } },
		{ "flags 1", { .flags = 1 } },
		{ "flags high bit", { .flags = 0x80000000u } },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t keep = 0xdeadbeefcafeull;
		int r = tq_submit(t, q, "x", 1, &bad[i].o, &keep);
		CHECKF(r == -EINVAL, "%s: got %d (%s)", bad[i].what, r, tq_strerror(r));
		CHECK_EQU(keep, 0xdeadbeefcafeull);
	}
	uint64_t keep = 7;
	CHECK_ERR(tq_submit(t, unused, "x", 1, NULL, &keep), -ENOENT);
	CHECK_ERR(tq_submit(t, c.queues, "x", 1, NULL, &keep), -ENOENT);
	int r = tq_submit(t, -1, "x", 1, NULL, &keep);
	CHECKF(r == -ENOENT || r == -EINVAL, "queue -1: %d", r);
	CHECK_ERR(tq_submit(t, q, NULL, 5, NULL, &keep), -EINVAL);
	CHECK_EQU(keep, 7);
	/* A length that does not fit in 32 bits must not be truncated. */
	char five[8] = "abcde";
	CHECK_ERR(tq_submit(t, q, five, ((size_t)1 << 32) + 5, NULL, &keep), -EMSGSIZE);
	CHECK_EQU(keep, 7);

	/* Empty payloads are tasks too. */
	CHECK_RET(tq_submit(t, q, "", 0, NULL, &id), 0);
	CHECK_RET(tq_submit(t, q, NULL, 0, NULL, NULL), 0);
	lease_one(t, &task);
	CHECK_EQU(task.id, id);
	CHECK_EQ(task.len, 0);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	lease_one(t, &task);
	CHECK_EQ(task.len, 0);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);

	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.depth, 0);
	CHECK_EQU(st.submitted, 7);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Sizes around every boundary an engine could have, byte-exact. */
static void test_payload_sizes(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.max_payload = 1u << 20;
	c.arena_bytes = 64ull << 20;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "p", NULL));
	static const uint32_t sizes[] = {
		1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 56, 63, 64, 65, 96, 100, 127, 128,
		129, 200, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024, 1025, 2047, 2048,
		2049, 4095, 4096, 4097, 8191, 8192, 8193, 16384, 65535, 65536, 65537,
		100 * 1024, 262144, 262145, 524288, 1000000, (1u << 20) - 1, 1u << 20,
	};
	enum { N = sizeof sizes / sizeof sizes[0] };
	uint8_t *buf = malloc(1u << 20);
	CHECK(buf);
	uint64_t ids[N];
	for (unsigned i = 0; i < N; i++) {
		tqt_fill(buf, sizes[i], 1000 + i);
		CHECK_RET(tq_submit(t, q, buf, sizes[i], NULL, &ids[i]), 0);
		/* The caller's buffer is free to change at once. */
		memset(buf, 0xee, sizes[i]);
	}
	uint64_t too = 0;
	CHECK_ERR(tq_submit(t, q, buf, (1u << 20) + 1, NULL, &too), -EMSGSIZE);
	CHECK_ERR(tq_submit(t, q, buf, 1u << 24, NULL, &too), -EMSGSIZE);
	CHECK_EQU(too, 0);

	/* The first half is read by another process, the rest by this one. */
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		for (unsigned i = 0; i < N / 2; i++) {
			struct tq_task task;
			lease_one(u, &task);
			CHECK_EQU(task.id, ids[i]);
			CHECKF(task.len == sizes[i], "len %u want %u", task.len, sizes[i]);
			CHECKF(tqt_fill_check(task.payload, task.len, 1000 + i),
			       "payload of %u bytes differs in another process", sizes[i]);
			CHECK_RET(tq_ack(u, task.id, NULL, 0), 0);
		}
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 60000);
	for (unsigned i = N / 2; i < N; i++) {
		struct tq_task task;
		lease_one(t, &task);
		CHECK_EQU(task.id, ids[i]);
		CHECKF(task.len == sizes[i], "len %u want %u", task.len, sizes[i]);
		CHECKF(tqt_fill_check(task.payload, task.len, 1000 + i),
		       "payload of %u bytes differs", sizes[i]);
		struct tq_info info;
		CHECK_RET(tq_get(t, task.id, &info), 0);
		CHECK_EQ(info.len, sizes[i]);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}

	/* Large payloads many times over: their space is given back. */
	for (unsigned round = 0; round < 200; round++) {
		uint32_t len = round % 2 ? 100 * 1024 : 1u << 20;
		tqt_fill(buf, len, round);
		uint64_t id;
		CHECK_RET(tq_submit(t, q, buf, len, NULL, &id), 0);
		struct tq_task task;
		lease_one(t, &task);
		CHECK_EQU(task.id, id);
		CHECK_EQ(task.len, len);
		CHECKF(tqt_fill_check(task.payload, len, round), "round %u", round);
		CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	}
	free(buf);

	/* A smaller max_payload: exactly max is fine, one more is not. */
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	c = tqt_small_config();
	c.max_payload = 4096;
	t = tqt_create(name, &c);
	q = CHECK_OK(tq_queue_declare(t, "p", NULL));
	static uint8_t b4[4097];
	CHECK_RET(tq_submit(t, q, b4, 4096, NULL, NULL), 0);
	CHECK_ERR(tq_submit(t, q, b4, 4097, NULL, NULL), -EMSGSIZE);
	struct tq_task_spec sp = { .payload = b4, .len = 4097 };
	uint64_t bid = 0;
	CHECK_ERR(tq_submit_batch(t, q, &sp, 1, NULL, &bid), -EMSGSIZE);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.submitted, 1);
	CHECK_EQU(st.depth, 1);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_batch(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 8;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "b", NULL));

	struct tq_task_spec specs[TQ_BATCH_MAX + 1];
	uint8_t bufs[TQ_BATCH_MAX + 1][300];
	for (unsigned i = 0; i <= TQ_BATCH_MAX; i++) {
		specs[i].len = (i * 37) % 300;
		tqt_fill(bufs[i], specs[i].len, i);
		specs[i].payload = bufs[i];
		specs[i].level = 1 + i % 7;
		specs[i].type = 100 + i;
	}
	uint64_t ids[TQ_BATCH_MAX + 1];
	memset(ids, 0, sizeof ids);
	CHECK_ERR(tq_submit_batch(t, q, specs, 0, NULL, ids), -EINVAL);
	CHECK_ERR(tq_submit_batch(t, q, specs, TQ_BATCH_MAX + 1, NULL, ids), -EINVAL);
	CHECK_ERR(tq_submit_batch(t, q, NULL, 3, NULL, ids), -EINVAL);
	int unused = q == 0 ? 1 : 0;
	CHECK_ERR(tq_submit_batch(t, unused, specs, 3, NULL, ids), -ENOENT);
	struct tq_submit_opts o = { .flags = 1 };
	CHECK_ERR(tq_submit_batch(t, q, specs, 3, &o, ids), -EINVAL);
	struct tq_task_spec badlevel = { .payload = "x", .len = 1, .level = 8 };
	CHECK_ERR(tq_submit_batch(t, q, &badlevel, 1, NULL, ids), -EINVAL);
	struct tq_task_spec badtype = { .payload = "x", .len = 1, .type = TQ_TYPE_MAX + 1 };
	CHECK_ERR(tq_submit_batch(t, q, &badtype, 1, NULL, ids), -EINVAL);
	for (unsigned i = 0; i <= TQ_BATCH_MAX; i++)
		CHECK_EQU(ids[i], 0);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.submitted, 0);

	/* A full batch: each spec's level and type, and the options' attempts. */
	memset(&o, 0, sizeof o);
	o.max_attempts = 7;
	CHECK_RET(tq_submit_batch(t, q, specs, TQ_BATCH_MAX, &o, ids), TQ_BATCH_MAX);
	for (unsigned i = 0; i < TQ_BATCH_MAX; i++) {
		for (unsigned j = 0; j < i; j++)
			CHECK_NEU(ids[i], ids[j]);
		struct tq_info info;
		CHECK_RET(tq_get(t, ids[i], &info), 0);
		CHECK_EQ(info.state, TQ_STATE_PENDING);
		CHECK_EQ(info.level, specs[i].level);
		CHECK_EQ(info.type, specs[i].type);
		CHECK_EQ(info.len, specs[i].len);
		CHECK_EQ(info.max_attempts, 7);
	}
	/* Leased back level by level, in batch order within a level. */
	unsigned got = 0;
	int last_level = -1;
	unsigned last_index[8] = { 0 };
	bool seen_level[8] = { false };
	while (got < TQ_BATCH_MAX) {
		struct tq_task tasks[TQ_BATCH_MAX];
		int n = CHECK_OK(tq_lease(t, &lease_now, tasks, 5));
		CHECK_GE(n, 1);
		CHECK_LE(n, 5);
		for (int k = 0; k < n; k++) {
			unsigned i = tasks[k].type - 100;
			CHECK_LT(i, TQ_BATCH_MAX);
			CHECK_EQU(tasks[k].id, ids[i]);
			CHECK_EQ(tasks[k].len, specs[i].len);
			CHECK(tqt_fill_check(tasks[k].payload, tasks[k].len, i));
			CHECK_GE((int)tasks[k].level, last_level);
			if (seen_level[tasks[k].level])
				CHECK_GT(i, last_index[tasks[k].level]);
			seen_level[tasks[k].level] = true;
			last_index[tasks[k].level] = i;
			last_level = (int)tasks[k].level;
			CHECK_RET(tq_ack(t, tasks[k].id, NULL, 0), 0);
		}
		got += (unsigned)n;
	}
	CHECK_ERR(tq_lease(t, &lease_now, (struct tq_task[1]){ { 0 } }, 1), -EAGAIN);

	/* Prefixes: a queue with room for 10. */
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.max_length = 10;
	int s = CHECK_OK(tq_queue_declare(t, "small", &qc));
	CHECK_RET(tq_submit_batch(t, s, specs, 8, NULL, ids), 8);
	memset(ids, 0, sizeof ids);
	CHECK_RET(tq_submit_batch(t, s, specs + 8, 5, NULL, ids), 2);
	CHECK_NEU(ids[0], 0);
	CHECK_NEU(ids[1], 0);
	CHECK_EQU(ids[2], 0);
	struct tq_info info;
	CHECK_RET(tq_get(t, ids[0], &info), 0);
	CHECK_EQ(info.type, specs[8].type);
	CHECK_RET(tq_get(t, ids[1], &info), 0);
	CHECK_EQ(info.type, specs[9].type);
	CHECK_ERR(tq_submit_batch(t, s, specs, 5, NULL, ids), -EAGAIN);
	o.timeout_ms = 50;
	CHECK_ERR(tq_submit_batch(t, s, specs, 5, &o, ids), -ETIMEDOUT);
	CHECK_RET(tq_stats(t, s, -1, &st), 0);
	CHECK_EQU(st.submitted, 10);
	CHECK_EQU(st.depth, 10);

	/* A batch whose third spec is too large: either the first two are
	 * accepted (a prefix) or the call fails whole with -EMSGSIZE. */
	int big = CHECK_OK(tq_queue_declare(t, "big", NULL));
	static uint8_t huge[(64 << 10) + 1];
	struct tq_task_spec mixed[4] = {
		{ .payload = "a", .len = 1 }, { .payload = "b", .len = 1 },
		{ .payload = huge, .len = sizeof huge }, { .payload = "d", .len = 1 },
	};
	int r = tq_submit_batch(t, big, mixed, 4, NULL, ids);
	CHECK_RET(tq_stats(t, big, -1, &st), 0);
	if (r == 2)
		CHECK_EQU(st.submitted, 2);
	else if (r == -EMSGSIZE)
		CHECK_EQU(st.submitted, 0);
	else
		FAIL("batch with an oversized third spec gave %d (%s)", r, tq_strerror(r));

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_full(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.capacity = 64;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "f", NULL));
	int q2 = CHECK_OK(tq_queue_declare(t, "g", NULL));
	uint64_t ids[64];
	for (int i = 0; i < 64; i++)
		CHECK_RET(tq_submit(t, i % 2 ? q : q2, &i, sizeof i, NULL, &ids[i]), 0);
	uint64_t keep = 42;
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, &keep), -EAGAIN);
	CHECK_ERR(tq_submit(t, q2, "x", 1, NULL, &keep), -EAGAIN);
	CHECK_EQU(keep, 42);
	struct tq_submit_opts o = { .timeout_ms = 100 };
	uint64_t t0 = mono_ns();
	CHECK_ERR(tq_submit(t, q, "x", 1, &o, &keep), -ETIMEDOUT);
	/* It waited (at least the timeout, give or take a clock tick). */
	CHECK_GEU(mono_ns() - t0, 99ull * 1000000ull);
	CHECK_EQU(keep, 42);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 64);

	/* Leased tasks and DONE tasks still hold their slots. */
	struct tq_task task;
	lease_one(t, &task);
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, NULL), -EAGAIN);
	CHECK_RET(tq_ack(t, task.id, "r", 1), 0);
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, NULL), -EAGAIN);
	CHECK_RET(tq_forget(t, task.id), 0);
	CHECK_RET(tq_submit(t, q, "x", 1, NULL, &keep), 0);
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, NULL), -EAGAIN);
	/* A cancelled task gives its slot back. */
	CHECK_RET(tq_cancel(t, keep), 0);
	CHECK_RET(tq_submit(t, q, "x", 1, NULL, NULL), 0);

	/* A submit waiting with a bound gets in when another process frees room. */
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		tqt_sleep_ms(200);
		struct tq_task tk;
		lease_one(u, &tk);
		CHECK_RET(tq_ack(u, tk.id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	o.timeout_ms = 30000;
	CHECK_RET(tq_submit(t, q, "w", 1, &o, &keep), 0);
	tqt_expect_child_ok(pid, 30000);

	/* And without a bound (the test's guard alarm is the bound). */
	pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		tqt_sleep_ms(200);
		struct tq_task tk[3];
		CHECK_RET(tq_lease(u, &lease_now, tk, 3), 3);
		for (int i = 0; i < 3; i++)
			CHECK_RET(tq_ack(u, tk[i].id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	o.timeout_ms = -1;
	CHECK_RET(tq_submit(t, q2, "w", 1, &o, &keep), 0);
	tqt_expect_child_ok(pid, 30000);
	struct tq_task_spec sp[4] = {
		{ .payload = "1", .len = 1 }, { .payload = "2", .len = 1 },
		{ .payload = "3", .len = 1 }, { .payload = "4", .len = 1 },
	};
	uint64_t bids[4];
	o.timeout_ms = 0;
	CHECK_RET(tq_submit_batch(t, q, sp, 4, &o, bids), 2);
	CHECK_ERR(tq_submit_batch(t, q, sp, 4, &o, bids), -EAGAIN);

	/* A waiting batch gets the prefix that fits once room appears. */
	pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		tqt_sleep_ms(200);
		struct tq_task tk;
		lease_one(u, &tk);
		CHECK_RET(tq_ack(u, tk.id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	o.timeout_ms = 3000;
	CHECK_RET(tq_submit_batch(t, q, sp, 4, &o, bids), 1);
	tqt_expect_child_ok(pid, 30000);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 64);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	/* A queue's max_length: pending + leased. */
	c = tqt_small_config();
	t = tqt_create(name, &c);
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.max_length = 5;
	q = CHECK_OK(tq_queue_declare(t, "five", &qc));
	q2 = CHECK_OK(tq_queue_declare(t, "other", NULL));
	for (int i = 0; i < 5; i++)
		CHECK_RET(tq_submit(t, q, "x", 1, NULL, NULL), 0);
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, NULL), -EAGAIN);
	o.timeout_ms = 30;
	CHECK_ERR(tq_submit(t, q, "x", 1, &o, NULL), -ETIMEDOUT);
	CHECK_RET(tq_submit(t, q2, "x", 1, NULL, NULL), 0);
	int only[1] = { q };
	struct tq_lease_opts lo = { .queues = only, .nqueues = 1, .timeout_ms = 0 };
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, NULL), -EAGAIN);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	CHECK_RET(tq_submit(t, q, "x", 1, NULL, NULL), 0);
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, NULL), -EAGAIN);
	/* Room freed by another process wakes a waiting submit. */
	pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		tqt_sleep_ms(150);
		struct tq_task tk;
		CHECK_RET(tq_lease(u, &lo, &tk, 1), 1);
		CHECK_RET(tq_ack(u, tk.id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	o.timeout_ms = 30000;
	CHECK_RET(tq_submit(t, q, "x", 1, &o, NULL), 0);
	tqt_expect_child_ok(pid, 30000);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void check_unique(uint64_t *ids, size_t n)
{
	qsort(ids, n, sizeof ids[0], cmp_u64);
	for (size_t i = 1; i < n; i++)
		CHECKF(ids[i] != ids[i - 1], "ID %llu given twice", (unsigned long long)ids[i]);
}

static void test_ids(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.capacity = 64;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "ids", NULL));

	/* The slot of an acked task is reused; its old ID is not. */
	uint64_t a, b;
	CHECK_RET(tq_submit(t, q, "A", 1, NULL, &a), 0);
	struct tq_task task;
	lease_one(t, &task);
	CHECK_RET(tq_ack(t, a, NULL, 0), 0);
	CHECK_RET(tq_submit(t, q, "B", 1, NULL, &b), 0);
	CHECK_NEU(a, b);
	lease_one(t, &task);
	CHECK_EQU(task.id, b);
	struct tq_info info;
	CHECK_ERR(tq_get(t, a, &info), -ENOENT);
	CHECK_ERR(tq_ack(t, a, NULL, 0), -ENOENT);
	CHECK_ERR(tq_fail(t, a), -ENOENT);
	CHECK_ERR(tq_release(t, a), -ENOENT);
	CHECK_ERR(tq_extend(t, a, 1000), -ENOENT);
	CHECK_ERR(tq_cancel(t, a), -ENOENT);
	CHECK_RET(tq_get(t, b, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_LEASED);
	CHECK_RET(tq_ack(t, b, NULL, 0), 0);

	/* Many cycles through 64 slots with 1..16 tasks in flight. */
	size_t cycles = TQT_SLOW ? 100000 : 10000;
	uint64_t *ids = malloc(cycles * sizeof ids[0]);
	CHECK(ids);
	size_t n = 0;
	uint64_t rs = 12345;
	while (n < cycles) {
		unsigned k = 1 + (unsigned)(tqt_rand(&rs) % 16);
		if (k > cycles - n)
			k = (unsigned)(cycles - n);
		for (unsigned i = 0; i < k; i++)
			CHECK_RET(tq_submit(t, q, &n, sizeof n, NULL, &ids[n + i]), 0);
		struct tq_task tk[16];
		CHECK_RET(tq_lease(t, &lease_now, tk, k), (int)k);
		for (unsigned i = 0; i < k; i++) {
			CHECK_EQU(tk[i].id, ids[n + i]);
			if (i % 3 == 0) {
				CHECK_RET(tq_ack(t, tk[i].id, "r", 1), 0);
				CHECK_RET(tq_forget(t, tk[i].id), 0);
			} else {
				CHECK_RET(tq_ack(t, tk[i].id, NULL, 0), 0);
			}
		}
		n += k;
	}
	/* Old IDs all stay unknown. */
	for (size_t i = 0; i < n; i += 97)
		CHECK_ERR(tq_get(t, ids[i], &info), -ENOENT);
	check_unique(ids, n);
	free(ids);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	/* Concurrent submitters in four processes: all IDs distinct. */
	enum { P = 4, PER = 500 };
	c = tqt_small_config();
	c.capacity = 4096;
	t = tqt_create(name, &c);
	q = CHECK_OK(tq_queue_declare(t, "ids", NULL));
	uint64_t *shared = tqt_shared(sizeof(uint64_t) * P * PER);
	for (int p = 0; p < P; p++) {
		if (tqt_fork() == 0) {
			tq *u = tqt_attach(name);
			for (int i = 0; i < PER; i++) {
				if (i % 50 == 0) {
					struct tq_task_spec sp[10];
					for (int j = 0; j < 10; j++)
						sp[j] = (struct tq_task_spec){ .payload = &i, .len = sizeof i };
					CHECK_RET(tq_submit_batch(u, q, sp, 10, NULL,
								  &shared[p * PER + i]), 10);
					i += 9;
				} else {
					CHECK_RET(tq_submit(u, q, &i, sizeof i, NULL,
							    &shared[p * PER + i]), 0);
				}
			}
			tq_detach(u);
			_exit(0);
		}
	}
	CHECK_EQ(tqt_wait_all(60000), 0);
	for (int i = 0; i < P * PER; i++) {
		CHECK_RET(tq_get(t, shared[i], &info), 0);
		CHECK_EQ(info.state, TQ_STATE_PENDING);
	}
	check_unique(shared, P * PER);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.submitted, P * PER);
	CHECK_EQU(st.depth, P * PER);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Lease up to `max` tasks (all there are, if fewer), checking that their
 * payloads count on from *next, and ack them; returns how many. */
static int take_in_order(tq *t, uint64_t *next, int max)
{
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	struct tq_task tasks[TQ_BATCH_MAX];
	int k = tq_lease(t, &lo, tasks, max < (int)TQ_BATCH_MAX ? (unsigned)max : TQ_BATCH_MAX);

	if (k == -EAGAIN)
		return 0;
	CHECK_GE(k, 1);
	for (int i = 0; i < k; i++) {
		uint64_t v;
		memcpy(&v, tasks[i].payload, sizeof v);
		CHECK_EQU(v, *next);
		(*next)++;
		CHECK_RET(tq_ack(t, tasks[i].id, NULL, 0), 0);
	}
	return k;
}

/* A deep queue fills the producers' window of the first 16 Ki slots: they
 * go on past it, reuse the slots a worker frees there, and every slot of
 * the segment can still be filled. */
static void test_deep(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	enum { CAP = 65536, HALF = 40000 };
	c.capacity = CAP;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "deep", NULL));
	uint64_t n = 0, next = 0;

	/* HALF pending, more than the window holds. */
	for (; n < HALF; n++)
		CHECK_RET(tq_submit(t, q, &n, sizeof n, NULL, NULL), 0);
	/* Take and finish the oldest 30000 (in order: FIFO), submitting one
	 * for each: the queue stays deep while slots past the window free. */
	while (next < 30000) {
		int k = take_in_order(t, &next, TQ_BATCH_MAX);
		CHECK_GE(k, 1);
		for (int i = 0; i < k; i++, n++)
			CHECK_RET(tq_submit(t, q, &n, sizeof n, NULL, NULL), 0);
	}
	/* Fill the segment to the last slot, then it is full. */
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.depth, HALF);
	while (st.depth < CAP) {
		int e = tq_submit(t, q, &n, sizeof n, NULL, NULL);
		if (e == -EAGAIN)
			break;
		CHECK_RET(e, 0);
		n++;
		st.depth++;
	}
	CHECK_ERR(tq_submit(t, q, "x", 1, NULL, NULL), -EAGAIN);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	/* Every slot holds a task but those the handle keeps reserved. */
	CHECK_GEU(st.depth, CAP - 64);
	/* And they come out in order, each once. */
	while (take_in_order(t, &next, TQ_BATCH_MAX))
		;
	CHECK_EQU(next, n);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("submit");
	tqt_guard(170);
	test_single_and_options();
	test_payload_sizes();
	test_batch();
	test_full();
	test_ids();
	test_deep();
	return 0;
}

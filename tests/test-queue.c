/* SPDX-License-Identifier: MIT */
/*
 * test-queue - named queues: tq_queue_declare (name and config validation,
 * idempotence, -ENOSPC, concurrent declares from several processes),
 * tq_queue_find, tq_queue_name, tq_queue_pause/resume/paused (seen by other
 * handles and processes; leasing skips a paused queue, submitting does not),
 * and tq_last_error() on a handle.
 */
#include "tq-test.h"

static void check_bad_q(int r, const char *what)
{
	CHECKF(r == -ENOENT || r == -EINVAL, "%s: got %d (%s), want -ENOENT or -EINVAL", what,
	       r, tq_strerror(r));
}

static void test_declare_find_name(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.queues = 8;
	tq *t = tqt_create(name, &c);

	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.max_attempts = 5;
	qc.lease_ms = 1234;
	int a = CHECK_OK(tq_queue_declare(t, "alpha", &qc));
	int b = CHECK_OK(tq_queue_declare(t, "beta", NULL));
	CHECK_LT(a, 8);
	CHECK_LT(b, 8);
	CHECK_NE(a, b);
	CHECK_STREQ(tq_last_error(t), "");

	/* Declaring again looks it up; the new config is ignored. */
	qc.max_attempts = 9;
	qc.lease_ms = 999;
	CHECK_RET(tq_queue_declare(t, "alpha", &qc), a);
	CHECK_RET(tq_queue_declare(t, "alpha", NULL), a);
	uint64_t id;
	CHECK_RET(tq_submit(t, a, "x", 1, NULL, &id), 0);
	struct tq_info info;
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.queue, a);
	CHECK_EQ(info.max_attempts, 5);
	CHECK_EQ(info.lease_ms, 1234);
	/* The second queue got the defaults. */
	CHECK_RET(tq_submit(t, b, "y", 1, NULL, &id), 0);
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.max_attempts, 3);
	CHECK_EQ(info.lease_ms, 30000);

	CHECK_RET(tq_queue_find(t, "alpha"), a);
	CHECK_RET(tq_queue_find(t, "beta"), b);
	CHECK_ERR(tq_queue_find(t, "gamma"), -ENOENT);
	CHECK_ERR(tq_queue_find(t, "alph"), -ENOENT);
	CHECK_ERR(tq_queue_find(t, "alphaa"), -ENOENT);
	CHECK_ERR(tq_queue_find(t, "ALPHA"), -ENOENT);
	check_bad_q(tq_queue_find(t, ""), "find empty name");
	check_bad_q(tq_queue_find(t, "bad name"), "find invalid name");

	char buf[TQ_QUEUE_NAME_MAX + 1];
	memset(buf, 'Z', sizeof buf);
	CHECK_OK(tq_queue_name(t, a, buf, sizeof buf));
	CHECK_STREQ(buf, "alpha");
	CHECK_OK(tq_queue_name(t, b, buf, sizeof buf));
	CHECK_STREQ(buf, "beta");

	/* Failures leave the buffer alone. */
	memset(buf, 'Z', sizeof buf);
	int unused = 0;
	while (unused == a || unused == b)
		unused++;
	CHECK_ERR(tq_queue_name(t, unused, buf, sizeof buf), -ENOENT);
	check_bad_q(tq_queue_name(t, -1, buf, sizeof buf), "name of queue -1");
	check_bad_q(tq_queue_name(t, 8, buf, sizeof buf), "name of queue 8 (queues = 8)");
	check_bad_q(tq_queue_name(t, TQ_QUEUES_MAX, buf, sizeof buf), "name of queue 256");
	/* A buffer under TQ_QUEUE_NAME_MAX + 1 bytes: the header requires that
	 * size, so any error is fine, but nothing is written. */
	int r = tq_queue_name(t, a, buf, 3);
	CHECKF(r < 0, "buffer of 3 bytes: got %d", r);
	CHECK_ERR(tq_queue_name(t, a, NULL, sizeof buf), -EINVAL);
	for (size_t i = 0; i < sizeof buf; i++)
		CHECK_EQ(buf[i], 'Z');
	CHECK(tq_last_error(t)[0] != 0);

	/* Another handle in another process sees the same table. */
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		CHECK_RET(tq_queue_find(u, "alpha"), a);
		CHECK_RET(tq_queue_find(u, "beta"), b);
		CHECK_RET(tq_queue_declare(u, "beta", NULL), b);
		char nb[TQ_QUEUE_NAME_MAX + 1];
		CHECK_OK(tq_queue_name(u, a, nb, sizeof nb));
		CHECK_STREQ(nb, "alpha");
		int g = CHECK_OK(tq_queue_declare(u, "gamma", NULL));
		CHECK_NE(g, a);
		CHECK_NE(g, b);
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	int g = CHECK_OK(tq_queue_find(t, "gamma"));
	CHECK_OK(tq_queue_name(t, g, buf, sizeof buf));
	CHECK_STREQ(buf, "gamma");
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.queues_declared, 3);

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_names(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.queues = 16;
	tq *t = tqt_create(name, &c);

	char longest[TQ_QUEUE_NAME_MAX + 2];
	memset(longest, 'n', sizeof longest);
	longest[TQ_QUEUE_NAME_MAX] = 0;
	int l = CHECK_OK(tq_queue_declare(t, longest, NULL));
	char buf[TQ_QUEUE_NAME_MAX + 1];
	CHECK_OK(tq_queue_name(t, l, buf, sizeof buf));
	CHECK_STREQ(buf, longest);
	CHECK_RET(tq_queue_find(t, longest), l);

	int all = CHECK_OK(tq_queue_declare(t, "AZaz09_.:-", NULL));
	CHECK_RET(tq_queue_find(t, "AZaz09_.:-"), all);
	CHECK_OK(tq_queue_declare(t, "x", NULL));

	longest[TQ_QUEUE_NAME_MAX] = 'n';
	longest[TQ_QUEUE_NAME_MAX + 1] = 0;
	static const char *const bad[] = {
		"", "a b", "a/b", "/a", "a\tb", "a\nb", "a*", "a,b", "a;b", "\xc3\xa9t\xc3\xa9",
		"a\x7f", "a\x01", "(x)", "a+b", "a@b", "a#b",
	};
	/* The header lists -EINVAL for a bad name; -ENAMETOOLONG says more. */
	int rl = tq_queue_declare(t, longest, NULL);
	CHECKF(rl == -EINVAL || rl == -ENAMETOOLONG, "48-byte queue name: %d", rl);
	CHECK(tq_last_error(t)[0] != 0);
	CHECK_ERR(tq_queue_declare(t, NULL, NULL), -EINVAL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r = tq_queue_declare(t, bad[i], NULL);
		CHECKF(r == -EINVAL, "declare \"%s\": got %d (%s), want -EINVAL", bad[i], r,
		       tq_strerror(r));
	}
	CHECK_OK(tq_queue_declare(t, "ok-again", NULL));
	CHECK_STREQ(tq_last_error(t), "");

	/* Bad queue configurations. */
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.max_attempts = TQ_ATTEMPTS_MAX + 1;
	CHECK_ERR(tq_queue_declare(t, "bad-attempts", &qc), -EINVAL);
	CHECK_ERR(tq_queue_find(t, "bad-attempts"), -ENOENT);
	qc.max_attempts = TQ_ATTEMPTS_MAX;
	int m = CHECK_OK(tq_queue_declare(t, "max-attempts", &qc));
	uint64_t id;
	CHECK_RET(tq_submit(t, m, "", 0, NULL, &id), 0);
	struct tq_info info;
	CHECK_RET(tq_get(t, id, &info), 0);
	CHECK_EQ(info.max_attempts, TQ_ATTEMPTS_MAX);

	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.queues_declared, 5);

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_nospc(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.queues = 4;
	tq *t = tqt_create(name, &c);
	int idx[4];
	for (int i = 0; i < 4; i++) {
		char qn[16];
		snprintf(qn, sizeof qn, "q%d", i);
		idx[i] = CHECK_OK(tq_queue_declare(t, qn, NULL));
		CHECK_LT(idx[i], 4);
		for (int j = 0; j < i; j++)
			CHECK_NE(idx[i], idx[j]);
	}
	CHECK_ERR(tq_queue_declare(t, "q4", NULL), -ENOSPC);
	CHECK_ERR(tq_queue_find(t, "q4"), -ENOENT);
	/* Looking up an existing queue still works when the table is full. */
	CHECK_RET(tq_queue_declare(t, "q2", NULL), idx[2]);
	CHECK_ERR(tq_submit(t, 4, "x", 1, NULL, NULL), -ENOENT);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	c.queues = TQ_QUEUES_MAX;
	t = tqt_create(name, &c);
	for (int i = 0; i < TQ_QUEUES_MAX; i++) {
		char qn[16];
		snprintf(qn, sizeof qn, "q%d", i);
		int q = CHECK_OK(tq_queue_declare(t, qn, NULL));
		CHECK_LT(q, TQ_QUEUES_MAX);
	}
	CHECK_ERR(tq_queue_declare(t, "one-more", NULL), -ENOSPC);
	CHECK_OK(tq_queue_find(t, "q255"));
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Several processes declare the same names at once: one index per name. */
static void test_concurrent_declare(void)
{
	enum { PROCS = 6, NAMES = 10 };
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.queues = 16;
	tq *t = tqt_create(name, &c);
	int (*seen)[NAMES] = tqt_shared(sizeof(int) * PROCS * NAMES);
	for (int p = 0; p < PROCS; p++) {
		if (tqt_fork() == 0) {
			tq *u = tqt_attach(name);
			for (int k = 0; k < NAMES; k++) {
				int n = (k + p) % NAMES;
				char qn[16];
				snprintf(qn, sizeof qn, "race-%d", n);
				seen[p][n] = CHECK_OK(tq_queue_declare(u, qn, NULL));
			}
			tq_detach(u);
			_exit(0);
		}
	}
	CHECK_EQ(tqt_wait_all(60000), 0);
	for (int n = 0; n < NAMES; n++) {
		char qn[16];
		snprintf(qn, sizeof qn, "race-%d", n);
		int q = CHECK_OK(tq_queue_find(t, qn));
		for (int p = 0; p < PROCS; p++)
			CHECK_EQ(seen[p][n], q);
		for (int m = 0; m < n; m++)
			CHECK_NE(seen[0][m], q);
	}
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.queues_declared, NAMES);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_pause(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int p = CHECK_OK(tq_queue_declare(t, "paused", NULL));
	int o = CHECK_OK(tq_queue_declare(t, "open", NULL));
	int unused = 0;
	while (unused == p || unused == o)
		unused++;

	CHECK_RET(tq_queue_paused(t, p), 0);
	CHECK_RET(tq_queue_pause(t, p), 0);
	CHECK_RET(tq_queue_paused(t, p), 1);
	CHECK_RET(tq_queue_pause(t, p), 0);
	CHECK_RET(tq_queue_paused(t, p), 1);
	CHECK_RET(tq_queue_paused(t, o), 0);
	CHECK_ERR(tq_queue_pause(t, unused), -ENOENT);
	CHECK_ERR(tq_queue_resume(t, unused), -ENOENT);
	CHECK_ERR(tq_queue_paused(t, unused), -ENOENT);
	check_bad_q(tq_queue_pause(t, -1), "pause -1");
	check_bad_q(tq_queue_resume(t, 100000), "resume 100000");
	check_bad_q(tq_queue_paused(t, -5), "paused -5");

	/* Submits are accepted while paused; leasing skips the queue. */
	uint64_t pid_task, oid_task;
	CHECK_RET(tq_submit(t, p, "p", 1, NULL, &pid_task), 0);
	CHECK_RET(tq_submit(t, o, "o", 1, NULL, &oid_task), 0);

	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		CHECK_RET(tq_queue_paused(u, p), 1);
		struct tq_task task;
		struct tq_lease_opts lo = { .timeout_ms = 0 };
		CHECK_RET(tq_lease(u, &lo, &task, 1), 1);
		CHECK_EQU(task.id, oid_task);
		CHECK_RET(tq_ack(u, task.id, NULL, 0), 0);
		CHECK_ERR(tq_lease(u, &lo, &task, 1), -EAGAIN);
		int only_p[1] = { p };
		lo.queues = only_p;
		lo.nqueues = 1;
		CHECK_ERR(tq_lease(u, &lo, &task, 1), -EAGAIN);
		lo.timeout_ms = 50;
		CHECK_ERR(tq_lease(u, &lo, &task, 1), -ETIMEDOUT);
		/* Resume from this process; the parent sees it. */
		CHECK_RET(tq_queue_resume(u, p), 0);
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	CHECK_RET(tq_queue_paused(t, p), 0);
	CHECK_RET(tq_queue_resume(t, p), 0);
	CHECK_RET(tq_queue_paused(t, p), 0);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, p, -1, &st), 0);
	CHECK_EQU(st.depth, 1);
	struct tq_task task;
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, pid_task);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);

	/* A worker sleeping in tq_lease on a paused queue gets the task once
	 * the queue is resumed. */
	CHECK_RET(tq_queue_pause(t, p), 0);
	CHECK_RET(tq_submit(t, p, "later", 5, NULL, &pid_task), 0);
	pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		int only_p[1] = { p };
		struct tq_lease_opts wl = { .queues = only_p, .nqueues = 1, .timeout_ms = 20000 };
		struct tq_task tk;
		CHECK_RET(tq_lease(u, &wl, &tk, 1), 1);
		CHECK_EQU(tk.id, pid_task);
		CHECK_RET(tq_queue_paused(u, p), 0);
		CHECK_RET(tq_ack(u, tk.id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	tqt_sleep_ms(200);
	CHECK_RET(tq_queue_resume(t, p), 0);
	tqt_expect_child_ok(pid, 40000);

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("queue");
	tqt_guard(55);
	test_declare_find_name();
	test_names();
	test_nospc();
	test_concurrent_declare();
	test_pause();
	return 0;
}

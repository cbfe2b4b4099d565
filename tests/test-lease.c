/* SPDX-License-Identifier: MIT */
/*
 * test-lease - tq_lease: strict priority (levels, then FIFO within a level),
 * the weighted policy's shares over levels and queues (loose bounds from the
 * weights: nobody starves, nobody takes everything), queue sets and their
 * preference order, paused queues, batches and their runs of ring cells
 * across chunks and cancelled entries, -EAGAIN, -ETIMEDOUT, -EINTR,
 * -ENOBUFS, -EINVAL, -ENOENT, the lease_ms override, and sleeping workers in
 * other processes woken by submits.
 */
#include "tq-test.h"

/* A lease of exactly one task. */
#define CHECK_RET_1(expr) (tqt_check_err((expr), 1, #expr, __FILE__, __LINE__))

struct pl {
	uint32_t seq;
	uint32_t level;
	uint32_t queue;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void submit_pl(tq *t, int q, uint32_t level, uint32_t seq, uint64_t *id)
{
	struct pl p = { seq, level, (uint32_t)q };
	struct tq_submit_opts o = { .level = level };
	CHECK_RET(tq_submit(t, q, &p, sizeof p, &o, id), 0);
}

static struct pl task_pl(const struct tq_task *task)
{
	struct pl p;
	CHECK_EQ(task->len, sizeof p);
	memcpy(&p, task->payload, sizeof p);
	CHECK_EQ(task->level, p.level);
	CHECK_EQ(task->queue, p.queue);
	return p;
}

static void test_strict(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 8;
	c.capacity = 4096;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "strict", NULL));

	enum { N = 1000 };
	uint64_t rs = 99;
	for (uint32_t i = 0; i < N; i++)
		submit_pl(t, q, (uint32_t)(tqt_rand(&rs) % 8), i, NULL);
	int last_level = -1;
	int64_t last_seq[8];
	for (int l = 0; l < 8; l++)
		last_seq[l] = -1;
	unsigned got = 0;
	struct tq_lease_opts lo = { .timeout_ms = 0, .policy = TQ_POLICY_STRICT };
	while (got < N) {
		struct tq_task tasks[TQ_BATCH_MAX];
		unsigned want = 1 + got % 9;
		int n = CHECK_OK(tq_lease(t, &lo, tasks, want));
		CHECK_LE(n, want);
		CHECK_EQ(n, want <= N - got ? want : N - got);
		for (int k = 0; k < n; k++) {
			struct pl p = task_pl(&tasks[k]);
			CHECKF((int)p.level >= last_level, "level %u after level %d", p.level,
			       last_level);
			CHECKF((int64_t)p.seq > last_seq[p.level],
			       "level %u: seq %u after %lld (not FIFO)", p.level, p.seq,
			       (long long)last_seq[p.level]);
			last_level = (int)p.level;
			last_seq[p.level] = p.seq;
			CHECK_EQ(tasks[k].attempts, 1);
			CHECK_RET(tq_ack(t, tasks[k].id, NULL, 0), 0);
		}
		got += (unsigned)n;
	}
	CHECK_ERR(tq_lease(t, &lo, (struct tq_task[1]){ { 0 } }, 1), -EAGAIN);

	/* A more urgent task submitted later goes first. */
	uint64_t a, b, d;
	submit_pl(t, q, 5, 1, &a);
	submit_pl(t, q, 5, 2, &b);
	struct tq_task task;
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, a);
	submit_pl(t, q, 2, 3, &d);
	CHECK_RET(tq_ack(t, a, NULL, 0), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, d);
	CHECK_RET(tq_ack(t, d, NULL, 0), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, b);
	CHECK_RET(tq_ack(t, b, NULL, 0), 0);

	/* Batches: what is ready, up to max. */
	for (uint32_t i = 0; i < 10; i++)
		submit_pl(t, q, 1, i, NULL);
	struct tq_task tasks[TQ_BATCH_MAX];
	CHECK_RET(tq_lease(t, &lo, tasks, 3), 3);
	CHECK_RET(tq_lease(t, &lo, tasks + 3, TQ_BATCH_MAX), 7);
	for (uint32_t i = 0; i < 10; i++) {
		CHECK_EQ(task_pl(&tasks[i]).seq, i);
		CHECK_RET(tq_ack(t, tasks[i].id, NULL, 0), 0);
	}

	/* The lease_ms override. */
	submit_pl(t, q, 0, 0, NULL);
	lo.lease_ms = 777;
	uint64_t t0 = tq_now_ns();
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	uint64_t t1 = tq_now_ns();
	CHECK_GEU(task.deadline_ns, t0 + 777ull * 1000000ull);
	CHECK_LEU(task.deadline_ns, t1 + 777ull * 1000000ull);
	struct tq_info info;
	CHECK_RET(tq_get(t, task.id, &info), 0);
	CHECK_EQU(info.due_ns, task.deadline_ns);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_errors(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.queues = 4;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "e", NULL));
	int unused = q == 0 ? 1 : 0;
	struct tq_task tasks[TQ_BATCH_MAX + 1];
	struct tq_lease_opts lo = { .timeout_ms = 0 };

	/* Failures leave the output alone. */
	memset(tasks, 0x6b, sizeof tasks);
	CHECK_ERR(tq_lease(t, &lo, tasks, 4), -EAGAIN);
	for (size_t i = 0; i < sizeof tasks; i++)
		CHECK_EQ(((unsigned char *)tasks)[i], 0x6b);
	lo.timeout_ms = 100;
	uint64_t t0 = mono_ns();
	CHECK_ERR(tq_lease(t, &lo, tasks, 1), -ETIMEDOUT);
	CHECK_GEU(mono_ns() - t0, 99ull * 1000000ull);
	/* A spin longer than the timeout still ends at the timeout. */
	lo.spin_us = TQ_SPIN_US_MAX;
	lo.timeout_ms = 20;
	CHECK_ERR(tq_lease(t, &lo, tasks, 1), -ETIMEDOUT);
	lo.spin_us = 0;
	lo.timeout_ms = 0;

	/* Bad arguments. */
	CHECK_RET(tq_submit(t, q, "x", 1, NULL, NULL), 0);
	CHECK_ERR(tq_lease(t, &lo, tasks, 0), -EINVAL);
	CHECK_ERR(tq_lease(t, &lo, tasks, TQ_BATCH_MAX + 1), -EINVAL);
	CHECK_ERR(tq_lease(t, &lo, NULL, 1), -EINVAL);
	struct tq_lease_opts bad = { .policy = 2 };
	CHECK_ERR(tq_lease(t, &bad, tasks, 1), -EINVAL);
	bad = (struct tq_lease_opts){ .spin_us = TQ_SPIN_US_MAX + 1 };
	CHECK_ERR(tq_lease(t, &bad, tasks, 1), -EINVAL);
	bad = (struct tq_lease_opts){ .queues = NULL, .nqueues = 1 };
	CHECK_ERR(tq_lease(t, &bad, tasks, 1), -EINVAL);
	int qs[2] = { q, unused };
	bad = (struct tq_lease_opts){ .queues = qs, .nqueues = 2 };
	CHECK_ERR(tq_lease(t, &bad, tasks, 1), -ENOENT);
	int qbig[1] = { 4 };
	bad = (struct tq_lease_opts){ .queues = qbig, .nqueues = 1 };
	int r = tq_lease(t, &bad, tasks, 1);
	CHECKF(r == -ENOENT || r == -EINVAL, "queue index 4 of 4: %d", r);
	int qneg[1] = { -1 };
	bad = (struct tq_lease_opts){ .queues = qneg, .nqueues = 1 };
	r = tq_lease(t, &bad, tasks, 1);
	CHECKF(r == -ENOENT || r == -EINVAL, "queue index -1: %d", r);
	/* Nothing was taken by the failed calls; NULL opts are the defaults. */
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.depth, 1);
	CHECK_EQU(st.leased, 0);
	CHECK_RET(tq_lease(t, NULL, tasks, 1), 1);
	CHECK_RET(tq_ack(t, tasks[0].id, NULL, 0), 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_enobufs(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "h", NULL));
	/* Submitted through another handle: a submitting handle may keep
	 * free slots of its own, which TQ_HELD_MAX counts too. */
	tq *p = tqt_attach(name);
	for (unsigned i = 0; i < TQ_HELD_MAX + 10; i++)
		CHECK_RET(tq_submit(p, q, &i, sizeof i, NULL, NULL), 0);
	tq_detach(p);
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	static struct tq_task held[TQ_HELD_MAX + TQ_BATCH_MAX];
	unsigned n = 0;
	while (n < TQ_HELD_MAX - 6) {
		int got = CHECK_OK(tq_lease(t, &lo, held + n,
					    TQ_HELD_MAX - 6 - n < TQ_BATCH_MAX ?
					    TQ_HELD_MAX - 6 - n : TQ_BATCH_MAX));
		CHECK_GE(got, 1);
		n += (unsigned)got;
	}
	CHECK_EQ(n, TQ_HELD_MAX - 6);
	/* A batch never takes the handle over its limit. */
	int r = CHECK_OK(tq_lease(t, &lo, held + n, TQ_BATCH_MAX));
	CHECK_LE(r, 6);
	n += (unsigned)r;
	while (n < TQ_HELD_MAX)
		n += (unsigned)CHECK_RET_1(tq_lease(t, &lo, held + n, 1));
	CHECK_ERR(tq_lease(t, &lo, held + n, 1), -ENOBUFS);
	lo.timeout_ms = 50;
	CHECK_ERR(tq_lease(t, &lo, held + n, 1), -ENOBUFS);
	lo.timeout_ms = 0;
	/* Another handle is not limited by this one. */
	tq *u = tqt_attach(name);
	struct tq_task other;
	CHECK_RET(tq_lease(u, &lo, &other, 1), 1);
	CHECK_RET(tq_ack(u, other.id, NULL, 0), 0);
	tq_detach(u);
	/* Finishing one makes room for one. */
	CHECK_RET(tq_ack(t, held[0].id, NULL, 0), 0);
	CHECK_RET(tq_lease(t, &lo, held + n, TQ_BATCH_MAX), 1);
	CHECK_ERR(tq_lease(t, &lo, held + n + 1, 1), -ENOBUFS);
	CHECK_RET(tq_release(t, held[1].id), 0);
	CHECK_RET(tq_fail(t, held[2].id), 0);
	CHECK_RET(tq_lease(t, &lo, held + n + 1, 2), 2);
	for (unsigned i = 3; i < n + 3; i++)
		CHECK_RET(tq_ack(t, held[i].id, NULL, 0), 0);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.leased_now, 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_queue_sets(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 4;
	tq *t = tqt_create(name, &c);
	int q0 = CHECK_OK(tq_queue_declare(t, "q0", NULL));
	int q1 = CHECK_OK(tq_queue_declare(t, "q1", NULL));
	int q2 = CHECK_OK(tq_queue_declare(t, "q2", NULL));
	struct tq_task task;

	for (uint32_t i = 0; i < 3; i++) {
		submit_pl(t, q0, 1, i, NULL);
		submit_pl(t, q1, 1, i, NULL);
		submit_pl(t, q2, 1, i, NULL);
	}
	/* Only the named queue. */
	int s1[1] = { q1 };
	struct tq_lease_opts lo = { .queues = s1, .nqueues = 1 };
	for (uint32_t i = 0; i < 3; i++) {
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		CHECK_EQ(task.queue, q1);
		CHECK_EQ(task_pl(&task).seq, i);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -EAGAIN);
	lo.timeout_ms = 30;
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -ETIMEDOUT);
	lo.timeout_ms = 0;

	/* Equal levels: preference order decides. */
	int s20[2] = { q2, q0 };
	lo.queues = s20;
	lo.nqueues = 2;
	for (int i = 0; i < 6; i++) {
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		CHECK_EQ(task.queue, i < 3 ? q2 : q0);
		CHECK_EQ(task_pl(&task).seq, (uint32_t)(i % 3));
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -EAGAIN);

	/* Under the strict policy a more urgent level of a less preferred
	 * queue comes before a less urgent level of a preferred one. */
	submit_pl(t, q2, 3, 0, NULL);
	submit_pl(t, q0, 0, 0, NULL);
	submit_pl(t, q2, 2, 1, NULL);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQ(task.queue, q0);
	CHECK_EQ(task.level, 0);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQ(task.queue, q2);
	CHECK_EQ(task.level, 2);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQ(task.level, 3);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);

	/* nqueues == 0: every declared queue; paused ones are skipped. */
	submit_pl(t, q0, 0, 0, NULL);
	submit_pl(t, q1, 0, 0, NULL);
	submit_pl(t, q2, 0, 0, NULL);
	CHECK_RET(tq_queue_pause(t, q0), 0);
	CHECK_RET(tq_queue_pause(t, q2), 0);
	lo = (struct tq_lease_opts){ .timeout_ms = 0 };
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQ(task.queue, q1);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -EAGAIN);
	lo.queues = s20;
	lo.nqueues = 2;
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -EAGAIN);
	lo.policy = TQ_POLICY_WEIGHTED;
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -EAGAIN);
	CHECK_RET(tq_queue_resume(t, q2), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQ(task.queue, q2);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	CHECK_ERR(tq_lease(t, &lo, &task, 1), -EAGAIN);
	CHECK_RET(tq_queue_resume(t, q0), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQ(task.queue, q0);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Lease k tasks one at a time under the weighted policy and count them per
 * level; each stays FIFO within its level. */
static void weighted_counts(tq *t, const struct tq_lease_opts *lo, unsigned k,
			    unsigned *per_level, unsigned *per_queue, unsigned nlevels)
{
	static int64_t last[TQ_QUEUES_MAX * TQ_LEVELS_MAX];
	for (unsigned i = 0; i < TQ_QUEUES_MAX * TQ_LEVELS_MAX; i++)
		last[i] = -1;
	for (unsigned i = 0; i < k; i++) {
		struct tq_task task;
		CHECK_RET(tq_lease(t, lo, &task, 1), 1);
		struct pl p = task_pl(&task);
		CHECK_LT(p.level, nlevels);
		CHECK_LT(p.queue, TQ_QUEUES_MAX);
		unsigned key = p.queue * TQ_LEVELS_MAX + p.level;
		CHECKF((int64_t)p.seq > last[key], "weighted: not FIFO within a level");
		last[key] = p.seq;
		per_level[p.level]++;
		if (per_queue)
			per_queue[p.queue]++;
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
}

static void check_shares(const char *what, const unsigned *got, const double *weight,
			 unsigned n, unsigned k)
{
	double sum = 0;
	for (unsigned i = 0; i < n; i++)
		sum += weight[i];
	for (unsigned i = 0; i < n; i++) {
		double share = k * weight[i] / sum;
		TQT_LOG("%s: %u: %u of %u leases (weight share %.1f)", what, i, got[i], k, share);
		CHECKF(got[i] >= 1, "%s: %u starved", what, i);
		CHECKF(got[i] >= share / 2, "%s: %u got %u, under half its share %.1f", what, i,
		       got[i], share);
		CHECKF(got[i] <= share * 1.5 + 2, "%s: %u got %u, over 1.5x its share %.1f",
		       what, i, got[i], share);
	}
}

static void test_weighted(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 4;
	c.capacity = 16384;
	tq *t = tqt_create(name, &c);

	/* Default level weights 2^(levels-1-l): 8, 4, 2, 1. */
	int q = CHECK_OK(tq_queue_declare(t, "w-default", NULL));
	enum { K = 600, PER = K + 10 };
	for (uint32_t i = 0; i < PER; i++)
		for (uint32_t l = 0; l < 4; l++)
			submit_pl(t, q, l, i, NULL);
	int only[1] = { q };
	struct tq_lease_opts lo = { .queues = only, .nqueues = 1, .policy = TQ_POLICY_WEIGHTED };
	unsigned got[TQ_LEVELS_MAX] = { 0 };
	weighted_counts(t, &lo, K, got, NULL, 4);
	double w_def[4] = { 8, 4, 2, 1 };
	check_shares("default level weights", got, w_def, 4, K);
	/* The strict policy on the same queue takes level 0 only. */
	lo.policy = TQ_POLICY_STRICT;
	memset(got, 0, sizeof got);
	weighted_counts(t, &lo, 20, got, NULL, 4);
	CHECK_EQ(got[0], 20);

	/* Explicit level weights, with 0 meaning the default. */
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.level_weight[0] = 1;
	qc.level_weight[1] = 1;
	qc.level_weight[2] = 3;
	qc.level_weight[3] = 0; /* default: 1 */
	int e = CHECK_OK(tq_queue_declare(t, "w-explicit", &qc));
	for (uint32_t i = 0; i < PER; i++)
		for (uint32_t l = 0; l < 4; l++)
			submit_pl(t, e, l, i, NULL);
	only[0] = e;
	lo.policy = TQ_POLICY_WEIGHTED;
	memset(got, 0, sizeof got);
	weighted_counts(t, &lo, K, got, NULL, 4);
	double w_exp[4] = { 1, 1, 3, 1 };
	check_shares("explicit level weights", got, w_exp, 4, K);

	/* Only non-empty pairs count: with one level left, it gets everything. */
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	t = tqt_create(name, &c);
	q = CHECK_OK(tq_queue_declare(t, "w", NULL));
	for (uint32_t i = 0; i < 50; i++)
		submit_pl(t, q, 3, i, NULL);
	lo = (struct tq_lease_opts){ .policy = TQ_POLICY_WEIGHTED };
	memset(got, 0, sizeof got);
	weighted_counts(t, &lo, 50, got, NULL, 4);
	CHECK_EQ(got[3], 50);

	/* Queue weights 3 and 1 at one level. */
	memset(&qc, 0, sizeof qc);
	qc.weight = 3;
	int a = CHECK_OK(tq_queue_declare(t, "w-three", &qc));
	qc.weight = 1;
	int b = CHECK_OK(tq_queue_declare(t, "w-one", &qc));
	for (uint32_t i = 0; i < 420; i++) {
		submit_pl(t, a, 1, i, NULL);
		submit_pl(t, b, 1, i, NULL);
	}
	int ab[2] = { a, b };
	lo = (struct tq_lease_opts){ .queues = ab, .nqueues = 2, .policy = TQ_POLICY_WEIGHTED };
	static unsigned per_q[TQ_QUEUES_MAX];
	memset(got, 0, sizeof got);
	weighted_counts(t, &lo, 400, got, per_q, 4);
	unsigned qgot[2] = { per_q[a], per_q[b] };
	double w_q[2] = { 3, 1 };
	check_shares("queue weights", qgot, w_q, 2, 400);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	/* Eight levels, default weights 128..1: the lowest still moves. */
	c.levels = 8;
	t = tqt_create(name, &c);
	q = CHECK_OK(tq_queue_declare(t, "w8", NULL));
	enum { K8 = 255 * 4 };
	for (uint32_t i = 0; i < K8 + 5; i++)
		for (uint32_t l = 0; l < 8; l++)
			submit_pl(t, q, l, i, NULL);
	lo = (struct tq_lease_opts){ .policy = TQ_POLICY_WEIGHTED };
	memset(got, 0, sizeof got);
	weighted_counts(t, &lo, K8, got, NULL, 8);
	double w8[8] = { 128, 64, 32, 16, 8, 4, 2, 1 };
	check_shares("eight levels", got, w8, 8, K8);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static void test_wakeups(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "wake", NULL));
	int q2 = CHECK_OK(tq_queue_declare(t, "other", NULL));

	/* Several workers sleep in other processes; one submit each. */
	enum { W = 4 };
	uint64_t *got = tqt_shared(sizeof(uint64_t) * W);
	for (int w = 0; w < W; w++) {
		if (tqt_fork() == 0) {
			tq *u = tqt_attach(name);
			int only[1] = { q };
			struct tq_lease_opts lo = { .queues = only, .nqueues = 1,
						    .timeout_ms = 30000 };
			struct tq_task task;
			CHECK_RET(tq_lease(u, &lo, &task, 1), 1);
			CHECK_EQ(task.len, sizeof(int));
			got[w] = task.id;
			CHECK_RET(tq_ack(u, task.id, NULL, 0), 0);
			tq_detach(u);
			_exit(0);
		}
	}
	tqt_sleep_ms(300);
	/* A task in another queue wakes nobody for good. */
	CHECK_RET(tq_submit(t, q2, "o", 1, NULL, NULL), 0);
	tqt_sleep_ms(100);
	uint64_t ids[W];
	for (int w = 0; w < W; w++) {
		CHECK_RET(tq_submit(t, q, &w, sizeof w, NULL, &ids[w]), 0);
		tqt_sleep_ms(20);
	}
	CHECK_EQ(tqt_wait_all(60000), 0);
	for (int w = 0; w < W; w++) {
		int found = 0;
		for (int k = 0; k < W; k++)
			found += got[k] == ids[w];
		CHECK_EQ(found, 1);
	}
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q2, -1, &st), 0);
	CHECK_EQU(st.depth, 1);

	/* A worker waiting without a limit is woken too, and its lease and
	 * the task's wait are timed from when it woke, not from when it
	 * went to sleep. */
	struct tq_histogram h0, h1;
	CHECK_RET(tq_histogram(t, q, -1, TQ_HIST_WAIT, &h0), 0);
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		int only[1] = { q };
		struct tq_lease_opts lo = { .queues = only, .nqueues = 1, .timeout_ms = -1,
					    .lease_ms = 60000 };
		struct tq_task task;
		CHECK_RET(tq_lease(u, &lo, &task, 1), 1);
		CHECK(task.len == 4 && memcmp(task.payload, "ping", 4) == 0);
		CHECK_GEU(task.deadline_ns, task.submitted_ns + 60000ull * 1000000ull);
		CHECK_RET(tq_ack(u, task.id, "pong", 4), 0);
		tq_detach(u);
		_exit(0);
	}
	tqt_sleep_ms(300);
	uint64_t id;
	CHECK_RET(tq_submit(t, q, "ping", 4, NULL, &id), 0);
	tqt_expect_child_ok(pid, 60000);
	CHECK_RET(tq_histogram(t, q, -1, TQ_HIST_WAIT, &h1), 0);
	CHECK_EQU(h1.count, h0.count + 1);
	char buf[8];
	CHECK_RET(tq_result(t, id, buf, sizeof buf), 4);
	CHECK(memcmp(buf, "pong", 4) == 0);

	/* A worker with spin_us polls after a task instead of sleeping, and
	 * takes the next task submitted meanwhile. */
	atomic_int *phase = tqt_shared(sizeof *phase);
	CHECK_RET(tq_submit(t, q, "warm", 4, NULL, NULL), 0);
	pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		int only[1] = { q };
		struct tq_lease_opts lo = { .queues = only, .nqueues = 1, .timeout_ms = 30000,
					    .spin_us = TQ_SPIN_US_MAX };
		struct tq_task task;
		CHECK_RET(tq_lease(u, &lo, &task, 1), 1);
		CHECK_RET(tq_ack(u, task.id, NULL, 0), 0);
		atomic_store(phase, 1);
		CHECK_RET(tq_lease(u, &lo, &task, 1), 1);
		CHECK(task.len == 4 && memcmp(task.payload, "spun", 4) == 0);
		CHECK_RET(tq_ack(u, task.id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	while (!atomic_load(phase))
		tqt_sleep_ms(1);
	tqt_sleep_ms(20);
	{
		struct tq_proc_info pi[8];
		unsigned cur = 0;
		int np = CHECK_OK(tq_procs(t, pi, 8, &cur)), seen = 0;
		for (int i = 0; i < np; i++) {
			if (pi[i].pid != pid)
				continue;
			seen = 1;
			CHECKF(pi[i].state != TQ_PROC_WAITING, "the spinning worker is asleep");
		}
		CHECK(seen);
	}
	CHECK_RET(tq_submit(t, q, "spun", 4, NULL, NULL), 0);
	tqt_expect_child_ok(pid, 60000);

	/* A batch submit wakes a batch lease. */
	pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		int only[1] = { q };
		struct tq_lease_opts lo = { .queues = only, .nqueues = 1, .timeout_ms = 30000 };
		struct tq_task tasks[8];
		unsigned n = 0;
		while (n < 8) {
			int k = CHECK_OK(tq_lease(u, &lo, tasks + n, 8 - n));
			CHECK_GE(k, 1);
			n += (unsigned)k;
		}
		for (unsigned i = 0; i < 8; i++)
			CHECK_RET(tq_ack(u, tasks[i].id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	tqt_sleep_ms(300);
	struct tq_task_spec sp[8];
	for (int i = 0; i < 8; i++)
		sp[i] = (struct tq_task_spec){ .payload = "b", .len = 1 };
	CHECK_RET(tq_submit_batch(t, q, sp, 8, NULL, NULL), 8);
	tqt_expect_child_ok(pid, 60000);

	/* -EINTR: a signal (handler without SA_RESTART) ends the wait. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	atomic_int *stop = tqt_shared(sizeof *stop);
	for (int bounded = 0; bounded < 2; bounded++) {
		got_usr1 = 0;
		atomic_store(stop, 0);
		pid_t parent = getpid();
		pid = tqt_fork();
		if (pid == 0) {
			/* Keep signalling until the parent is out of tq_lease. */
			for (int i = 0; i < 200 && !atomic_load(stop); i++) {
				tqt_sleep_ms(300);
				if (!atomic_load(stop))
					kill(parent, SIGUSR1);
			}
			_exit(0);
		}
		int only[1] = { q };
		struct tq_lease_opts lo = { .queues = only, .nqueues = 1,
					    .timeout_ms = bounded ? 30000 : -1 };
		struct tq_task task;
		int r = tq_lease(t, &lo, &task, 1);
		atomic_store(stop, 1);
		CHECK_ERR(r, -EINTR);
		CHECK(got_usr1);
		tqt_expect_child_ok(pid, 30000);
	}
	signal(SIGUSR1, SIG_DFL);

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/*
 * Batches move runs of ring cells (tq__ring_push_many() and
 * tq__ring_pop_many()): FIFO over several 512-cell chunks with batches of
 * every size from 1 to 64, runs that stop at cancelled entries (single
 * ones, and a stretch of ten) and go on after them, nothing taken twice,
 * nothing left behind, and the books balanced afterwards.
 */
static void test_runs(void)
{
	enum { N = 1300 };
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.capacity = 4096;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "runs", NULL));
	static uint64_t ids[N];
	static bool cancelled[N];
	struct tq_task_spec specs[TQ_BATCH_MAX];
	struct pl pls[TQ_BATCH_MAX];
	struct tq_task tasks[TQ_BATCH_MAX];
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	unsigned next = 0, taken = 0, ncancel = 0;

	for (unsigned i = 0, round = 0; i < N; round++) {
		unsigned k = 1 + (round * 37u) % TQ_BATCH_MAX;

		if (k > N - i)
			k = N - i;
		for (unsigned j = 0; j < k; j++) {
			pls[j] = (struct pl){ i + j, 0, (uint32_t)q };
			specs[j] = (struct tq_task_spec){ .payload = &pls[j], .len = sizeof pls[j] };
		}
		CHECK_RET(tq_submit_batch(t, q, specs, k, NULL, &ids[i]), k);
		i += k;
	}
	for (unsigned i = 0; i < N; i++) {
		/* Single stale cells in the first 400, a stretch of ten at
		 * 600; long clean runs everywhere else. */
		if ((i < 400 && i % 7 == 3) || (i >= 600 && i < 610)) {
			CHECK_RET(tq_cancel(t, ids[i]), 0);
			cancelled[i] = true;
			ncancel++;
		}
	}
	for (unsigned round = 0;; round++) {
		unsigned max = 1 + (round * 29u) % TQ_BATCH_MAX;
		uint64_t acks[TQ_BATCH_MAX];
		int n = tq_lease(t, &lo, tasks, max);

		if (n == -EAGAIN)
			break;
		CHECK_GE(n, 1);
		CHECK(n <= (int)max);
		for (int k = 0; k < n; k++) {
			struct pl p = task_pl(&tasks[k]);

			while (next < N && cancelled[next])
				next++;
			CHECK_EQU(p.seq, next);
			CHECK_EQU(tasks[k].id, ids[next]);
			acks[k] = tasks[k].id;
			next++;
		}
		CHECK_RET(tq_ack_batch(t, acks, (unsigned)n, NULL), n);
		taken += (unsigned)n;
	}
	while (next < N && cancelled[next])
		next++;
	CHECK_EQU(next, N);
	CHECK_EQU(taken, N - ncancel);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.submitted, N);
	CHECK_EQU(st.cancelled, ncancel);
	CHECK_EQU(st.acked, N - ncancel);
	CHECK_EQU(st.depth, 0);
	CHECK_EQU(st.leased_now, 0);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("lease");
	tqt_guard(115);
	test_strict();
	test_errors();
	test_enobufs();
	test_queue_sets();
	test_weighted();
	test_wakeups();
	test_runs();
	return 0;
}

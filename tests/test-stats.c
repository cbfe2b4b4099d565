/* SPDX-License-Identifier: MIT */
/*
 * test-stats - every counter of tq_stats after a known sequence of
 * operations, per level and summed (level -1), counters changed by another
 * process, the errors of tq_stats, and tq_segment_info; the latency
 * histograms against known values, and tq_procs.
 */
#include "tq-test.h"

struct want {
	uint64_t depth, leased_now, submitted, leased, acked, failed, released, dead,
		cancelled, requeued;
};

static void check_stats(tq *t, int q, int level, const struct want *w, const char *what)
{
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, level, &st), 0);
#define F(f) CHECKF(st.f == w->f, "%s, level %d: " #f " is %llu, want %llu", what, level, \
		    (unsigned long long)st.f, (unsigned long long)w->f)
	F(depth);
	F(leased_now);
	F(submitted);
	F(leased);
	F(acked);
	F(failed);
	F(released);
	F(dead);
	F(cancelled);
	F(requeued);
#undef F
}

static struct tq_stats stats(tq *t, int q, int level)
{
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, level, &st), 0);
	return st;
}

static void test_sequence(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 4;
	tq *t = tqt_create(name, &c);
	struct tq_queue_config qc;
	memset(&qc, 0, sizeof qc);
	qc.max_attempts = 2;
	int a = CHECK_OK(tq_queue_declare(t, "A", &qc));
	int b = CHECK_OK(tq_queue_declare(t, "B", NULL));

	/* Fresh queues: all zero. */
	struct want zero;
	memset(&zero, 0, sizeof zero);
	for (int l = -1; l < 4; l++) {
		check_stats(t, a, l, &zero, "fresh");
		CHECK_EQU(stats(t, a, l).delayed, 0);
		CHECK_EQU(stats(t, a, l).moved, 0);
	}

	uint64_t p[5], r[3], d, bb[2];
	struct tq_submit_opts o = { .level = 0 };
	for (int i = 0; i < 5; i++)
		CHECK_RET(tq_submit(t, a, "p", 1, &o, &p[i]), 0);
	o.level = 2;
	for (int i = 0; i < 3; i++)
		CHECK_RET(tq_submit(t, a, "r", 1, &o, &r[i]), 0);
	o.level = 1;
	o.not_before_ns = tq_now_ns() + 3600ull * 1000000000ull;
	CHECK_RET(tq_submit(t, a, "d", 1, &o, &d), 0);
	o.not_before_ns = 0;
	o.level = 3;
	for (int i = 0; i < 2; i++)
		CHECK_RET(tq_submit(t, b, "b", 1, &o, &bb[i]), 0);

	int only_a[1] = { a };
	struct tq_lease_opts lo = { .queues = only_a, .nqueues = 1, .timeout_ms = 0 };
	struct tq_task tk[8];

	/* Level 0: lease 2, ack one, fail one (requeued), lease and release
	 * one, lease the 4 left, fail p1 again (dead), ack 3 (one with a
	 * result), put p1 back from the dead letters. */
	CHECK_RET(tq_lease(t, &lo, tk, 2), 2);
	CHECK_EQU(tk[0].id, p[0]);
	CHECK_EQU(tk[1].id, p[1]);
	struct want w0 = { .depth = 3, .leased_now = 2, .submitted = 5, .leased = 2 };
	check_stats(t, a, 0, &w0, "after leasing 2");
	CHECK_RET(tq_ack(t, p[0], NULL, 0), 0);
	CHECK_RET(tq_fail(t, p[1]), 0);
	w0 = (struct want){ .depth = 4, .submitted = 5, .leased = 2, .acked = 1, .failed = 1 };
	check_stats(t, a, 0, &w0, "after ack and fail");
	CHECK_RET(tq_lease(t, &lo, tk, 1), 1);
	CHECK_EQ(tk[0].level, 0);
	CHECK_RET(tq_release(t, tk[0].id), 0);
	CHECK_RET(tq_lease(t, &lo, tk, 4), 4);
	int dead_seen = 0, with_result = 0;
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(tk[i].level, 0);
		if (tk[i].id == p[1]) {
			CHECK_EQ(tk[i].attempts, 2);
			CHECK_RET(tq_fail(t, p[1]), 1);
			dead_seen++;
		} else if (!with_result++) {
			CHECK_RET(tq_ack(t, tk[i].id, "res", 3), 0);
		} else {
			CHECK_RET(tq_ack(t, tk[i].id, NULL, 0), 0);
		}
	}
	CHECK_EQ(dead_seen, 1);
	w0 = (struct want){ .depth = 0, .submitted = 5, .leased = 7, .acked = 4, .failed = 2,
			    .released = 1, .dead = 1 };
	check_stats(t, a, 0, &w0, "level 0 drained");
	CHECK_RET(tq_requeue_dead(t, p[1]), 0);
	w0.depth = 1;
	w0.requeued = 1;
	check_stats(t, a, 0, &w0, "dead letter requeued");

	/* Level 2: cancel one, move one to level 3; cancel the requeued
	 * task of level 0, so that the next lease takes the last of level 2. */
	CHECK_RET(tq_cancel(t, r[0]), 0);
	CHECK_RET(tq_set_level(t, r[1], 3), 0);
	CHECK_RET(tq_cancel(t, p[1]), 0);
	w0.depth = 0;
	w0.cancelled = 1;
	check_stats(t, a, 0, &w0, "requeued task cancelled");
	CHECK_RET(tq_lease(t, &lo, tk, 1), 1);
	CHECK_EQU(tk[0].id, r[2]);

	struct want w1 = { .submitted = 1 };
	struct want w2 = { .leased_now = 1, .submitted = 3, .leased = 1, .cancelled = 1 };
	struct want w3 = { .depth = 1 };
	check_stats(t, a, 0, &w0, "final");
	check_stats(t, a, 1, &w1, "final");
	check_stats(t, a, 2, &w2, "final");
	check_stats(t, a, 3, &w3, "final");
	struct want sum = { .depth = 1, .leased_now = 1, .submitted = 9, .leased = 8,
			    .acked = 4, .failed = 2, .released = 1, .dead = 1, .cancelled = 2,
			    .requeued = 1 };
	check_stats(t, a, -1, &sum, "final");
	/* moved: once, counted at the old level or the new one. */
	struct tq_stats s2 = stats(t, a, 2), s3 = stats(t, a, 3), sall = stats(t, a, -1);
	CHECK_EQU(sall.moved, 1);
	CHECK_EQU(s2.moved + s3.moved, 1);
	CHECK_EQU(stats(t, a, 0).moved + stats(t, a, 1).moved, 0);
	/* delayed: queue-wide (the same at every level) or per level. */
	CHECK_EQU(sall.delayed, 1);
	struct tq_stats s1 = stats(t, a, 1);
	CHECK_EQU(s1.delayed, 1);
	uint64_t d0 = stats(t, a, 0).delayed;
	CHECK(d0 == 0 || d0 == 1);
	/* Level -2 is "< 0" too. */
	struct tq_stats sm2 = stats(t, a, -2);
	CHECK(memcmp(&sm2, &sall, sizeof sall) == 0);

	/* Queue B is separate. */
	struct want wb = { .depth = 2, .submitted = 2 };
	check_stats(t, b, -1, &wb, "queue B");
	check_stats(t, b, 3, &wb, "queue B");
	check_stats(t, b, 0, &zero, "queue B");

	/* Another process changes counters: they add up. */
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		struct tq_submit_opts so = { .level = 3 };
		for (int i = 0; i < 10; i++)
			CHECK_RET(tq_submit(u, b, "c", 1, &so, NULL), 0);
		int only_b[1] = { b };
		struct tq_lease_opts bl = { .queues = only_b, .nqueues = 1, .timeout_ms = 0 };
		struct tq_task x[4];
		CHECK_RET(tq_lease(u, &bl, x, 4), 4);
		for (int i = 0; i < 4; i++)
			CHECK_RET(tq_ack(u, x[i].id, NULL, 0), 0);
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	wb = (struct want){ .depth = 8, .submitted = 12, .leased = 4, .acked = 4 };
	check_stats(t, b, -1, &wb, "queue B after the child");
	check_stats(t, b, 3, &wb, "queue B after the child");
	check_stats(t, a, -1, &sum, "queue A after the child");

	/* Errors, with *st untouched. */
	struct tq_stats keep;
	memset(&keep, 0x5e, sizeof keep);
	int unused = 0;
	while (unused == a || unused == b)
		unused++;
	CHECK_ERR(tq_stats(t, unused, -1, &keep), -ENOENT);
	CHECK_ERR(tq_stats(t, a, 4, &keep), -EINVAL);
	CHECK_ERR(tq_stats(t, a, 64, &keep), -EINVAL);
	int rr = tq_stats(t, 10000, -1, &keep);
	CHECKF(rr == -ENOENT || rr == -EINVAL, "queue 10000: %d", rr);
	for (size_t i = 0; i < sizeof keep; i++)
		CHECK_EQ(((unsigned char *)&keep)[i], 0x5e);
	CHECK_ERR(tq_stats(t, a, -1, NULL), -EINVAL);

	/* Segment-wide figures. Slots in use: p1 (cancelled: no), one DONE
	 * result, r1 (pending), r2 (leased), d (delayed), B: 8 pending. */
	struct tq_segment_info si;
	memset(&si, 0, sizeof si);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.queues_declared, 2);
	CHECK_EQ(si.procs_attached, 1);
	CHECK_EQU(si.tasks_held, 12);
	CHECK_EQU(si.repairs, 0);
	CHECK_EQ(si.config.levels, 4);
	CHECK_EQ(si.config.capacity, c.capacity);
	CHECK_EQ(si.config.max_payload, c.max_payload);
	CHECK_EQ(si.config.procs, c.procs);
	CHECK_EQU(si.config.arena_bytes, c.arena_bytes);
	CHECK_GT(si.segment_bytes, 0);
	tq *u = tqt_attach(name);
	CHECK_RET(tq_segment_info(u, &si), 0);
	CHECK_EQ(si.procs_attached, 2);
	tq_detach(u);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.procs_attached, 1);
	CHECK_ERR(tq_segment_info(t, NULL), -EINVAL);

	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* Bucket bounds: contiguous, increasing, each value in the bucket whose
 * bounds hold it, and at most 25% wide past the exact ones. */
static void test_hist_buckets(void)
{
	uint64_t lo = 0;

	for (unsigned b = 0; b < TQ_HIST_BUCKETS; b++) {
		uint64_t hi = tq_hist_bucket_max_ns(b);
		CHECKF(hi >= lo, "bucket %u: max %llu below its start %llu", b,
		       (unsigned long long)hi, (unsigned long long)lo);
		if (b >= 4 && b + 1 < TQ_HIST_BUCKETS)
			CHECKF((double)(hi - lo + 1) <= 0.25 * (double)lo + 1,
			       "bucket %u [%llu, %llu] wider than 25%%", b,
			       (unsigned long long)lo, (unsigned long long)hi);
		if (b + 1 == TQ_HIST_BUCKETS)
			CHECK_EQU(hi, UINT64_MAX);
		lo = hi + 1;
	}
	/* The last bound covers more than an hour. */
	CHECK_GEU(tq_hist_bucket_max_ns(TQ_HIST_BUCKETS - 2), 3600ull * 1000000000ull);

	struct tq_histogram h;
	memset(&h, 0, sizeof h);
	CHECK_EQU(tq_hist_percentile(&h, 50), 0);
	CHECK_EQU(tq_hist_percentile(NULL, 50), 0);
	/* 90 events of 3 ns, 10 of about 1 ms. */
	h.buckets[3] = 90;
	unsigned big = 0;
	while (tq_hist_bucket_max_ns(big) < 1000000)
		big++;
	h.buckets[big] = 10;
	h.count = 100;
	CHECK_EQU(tq_hist_percentile(&h, 50), 3);
	CHECK_EQU(tq_hist_percentile(&h, 90), 3);
	CHECK_EQU(tq_hist_percentile(&h, 91), tq_hist_bucket_max_ns(big));
	CHECK_EQU(tq_hist_percentile(&h, 100), tq_hist_bucket_max_ns(big));
	CHECK_EQU(tq_hist_percentile(&h, 0), 3);
}

static void test_hist_and_procs(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.levels = 2;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "h", NULL));
	struct tq_histogram h;
	struct tq_submit_opts so;
	struct tq_task task;
	uint64_t id, t0;

	CHECK_RET(tq_histogram(t, q, -1, TQ_HIST_WAIT, &h), 0);
	CHECK_EQU(h.count, 0);
	CHECK_ERR(tq_histogram(t, q, 0, 7, &h), -EINVAL);
	CHECK_ERR(tq_histogram(t, q, 2, TQ_HIST_RUN, &h), -EINVAL);
	CHECK_ERR(tq_histogram(t, 99, 0, TQ_HIST_RUN, &h), -ENOENT);
	CHECK_ERR(tq_histogram(t, q, 0, TQ_HIST_RUN, NULL), -EINVAL);

	/* Three tasks at level 1 wait at least 20 ms; each runs at least 10 ms. */
	memset(&so, 0, sizeof so);
	so.level = 1;
	t0 = tq_now_ns();
	for (int i = 0; i < 3; i++)
		CHECK_RET(tq_submit(t, q, "x", 1, &so, &id), 0);
	tqt_sleep_ms(20);
	for (int i = 0; i < 3; i++) {
		CHECK_RET(tq_lease(t, NULL, &task, 1), 1);
		tqt_sleep_ms(10);
		if (i < 2)
			CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
		else
			CHECK_RET(tq_fail(t, task.id), 0);
	}
	uint64_t elapsed = tq_now_ns() - t0;
	CHECK_RET(tq_histogram(t, q, 1, TQ_HIST_WAIT, &h), 0);
	CHECK_EQU(h.count, 3);
	CHECK_GEU(h.sum_ns, 3 * 20000000ull);
	CHECK_GEU(tq_hist_percentile(&h, 50), 20000000ull);
	CHECK_LEU(tq_hist_percentile(&h, 100), 2 * elapsed);
	CHECK_RET(tq_histogram(t, q, 0, TQ_HIST_WAIT, &h), 0);
	CHECK_EQU(h.count, 0);
	CHECK_RET(tq_histogram(t, q, -1, TQ_HIST_RUN, &h), 0);
	CHECK_EQU(h.count, 3);
	CHECK_GEU(tq_hist_percentile(&h, 1), 10000000ull);
	/* A retry is not a first lease: no new wait sample, one more run. */
	CHECK_RET(tq_lease(t, NULL, &task, 1), 1);
	CHECK_EQ(task.attempts, 2);

	struct tq_proc_info pi[4];
	unsigned cur = 0;
	tq *u = tqt_attach(name);
	CHECK_RET(tq_procs(t, pi, 4, &cur), 2);
	CHECK_RET(tq_procs(t, pi, 4, &cur), 0);
	int me = pi[0].pid == getpid() && pi[0].leased_now ? 0 : 1;
	CHECK_EQ(pi[me].pid, getpid());
	CHECK_EQ(pi[me].state, TQ_PROC_BUSY);
	CHECK_EQU(pi[me].leased_now, 1);
	CHECK_EQU(pi[me].current_task, task.id);
	CHECK_EQU(pi[me].leased, 4);
	CHECK_EQU(pi[me].done, 3);
	CHECK_EQU(pi[me].submitted, 3);
	CHECK_EQ(pi[1 - me].state, TQ_PROC_IDLE);
	CHECK_EQU(pi[1 - me].leased, 0);
	uint64_t hb = pi[1 - me].heartbeat_ns;
	tqt_sleep_ms(2);
	tq_heartbeat(u);
	cur = 0;
	CHECK_RET(tq_procs(t, pi, 4, &cur), 2);
	CHECK_GT(pi[1 - me].heartbeat_ns, hb);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	cur = 0;
	CHECK_RET(tq_procs(t, pi, 1, &cur), 1);
	CHECK_RET(tq_procs(t, pi, 1, &cur), 1);
	CHECK_RET(tq_procs(t, pi, 1, &cur), 0);
	CHECK_ERR(tq_procs(t, NULL, 1, &cur), -EINVAL);
	CHECK_ERR(tq_procs(t, pi, 1, NULL), -EINVAL);
	tq_supervisor_acquire(u, 0);
	cur = 0;
	CHECK_RET(tq_procs(t, pi, 4, &cur), 2);
	CHECK((pi[0].flags | pi[1].flags) == TQ_PROC_SUPERVISOR);
	tq_detach(u);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("stats");
	tqt_guard(55);
	test_sequence();
	test_hist_buckets();
	test_hist_and_procs();
	return 0;
}

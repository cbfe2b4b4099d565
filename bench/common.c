/* SPDX-License-Identifier: MIT */
/*
 * common.c - what every system's producer and worker processes share in
 * tq-bench: the start barrier, bounded waits, error reporting through the
 * control block, pinning, pacing, and the per-task bookkeeping.
 */
#include "bench.h"

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BENCH_SPIN_PACE_NS 100000u

int bench_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&r->ctl->err_set, 1) == 0) {
		int n = snprintf(r->ctl->err, sizeof(r->ctl->err), "pid %d: ", (int)getpid());

		va_start(ap, fmt);
		vsnprintf(r->ctl->err + n, sizeof(r->ctl->err) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	atomic_store(&r->ctl->abort, 1);
	return CHILD_ERROR;
}

long bench_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000u),
		.tv_nsec = (long)(timeout_ns % 1000000000u),
	};

	/* Shared futex (no FUTEX_PRIVATE_FLAG): the word is in MAP_SHARED
	 * memory and the waker is another process. */
	return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, &ts, NULL, 0);
}

long bench_futex_wake(_Atomic uint32_t *word, int n)
{
	return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}

int bench_check(struct run *r)
{
	if (atomic_load_explicit(&r->ctl->abort, memory_order_relaxed))
		return CHILD_ABORTED;
	if (bench_now() > r->ctl->deadline_ns) {
		atomic_store(&r->ctl->abort, 1);
		return CHILD_TIMEOUT;
	}
	if (getppid() == 1)      /* the parent is gone */
		return CHILD_ABORTED;
	return 0;
}

int bench_ready(struct run *r)
{
	/* The parent waits at most this long for every child to be ready and
	 * then either starts or aborts; a child never waits longer. */
	uint64_t give_up = bench_now() + 60ull * 1000000000u;

	atomic_fetch_add(&r->ctl->ready, 1);
	while (atomic_load(&r->ctl->go) == 0) {
		if (atomic_load(&r->ctl->abort))
			return CHILD_ABORTED;
		if (bench_now() > give_up || getppid() == 1)
			return CHILD_ABORTED;
		bench_futex_wait(&r->ctl->go, 0, 20000000u);
	}
	return 0;
}

void bench_pin(const struct run *r, int is_worker, unsigned idx)
{
	cpu_set_t all, one;
	int cpus[CPU_SETSIZE], n = 0;

	if (!r->pin || sched_getaffinity(0, sizeof(all), &all) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all))
			cpus[n++] = c;
	if (n == 0)
		return;
	/* Producers on the even positions, workers on the odd ones: with two
	 * CPUs, producers share one and workers the other. */
	CPU_ZERO(&one);
	CPU_SET(cpus[(2 * idx + (is_worker ? 1u : 0u)) % (unsigned)n], &one);
	sched_setaffinity(0, sizeof(one), &one);
}

void bench_wait_until(const struct run *r, uint64_t t)
{
	uint64_t sleep_to = t;

	/* --spin: sleep to within BENCH_SPIN_PACE_NS of the send time (a
	 * sleep's wake-up is late by tens of microseconds), spin the rest. */
	if (r->spin_pace)
		sleep_to = t > BENCH_SPIN_PACE_NS ? t - BENCH_SPIN_PACE_NS : 0;
	if (bench_now() < sleep_to) {
		struct timespec ts = {
			.tv_sec = (time_t)(sleep_to / 1000000000u),
			.tv_nsec = (long)(sleep_to % 1000000000u),
		};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	if (r->spin_pace) {
		/* Bounded by the window above and by the run's deadline. */
		while (bench_now() < t && bench_now() < r->ctl->deadline_ns)
			bench_relax();
	}
}

int bench_producer_init(struct pctx *c, struct run *r, unsigned idx)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->idx = idx;
	c->n = bench_share(r->total, r->producers, idx);
	c->base = bench_share_base(r->total, r->producers, idx);
	/* Stagger the sampled tasks across producers. */
	c->countdown = r->sample ? 1 + (idx % r->sample) : 0;
	c->buf = calloc(r->batch ? r->batch : 1, r->payload);
	if (!c->buf)
		return bench_fail(r, "out of memory");
	for (unsigned b = 0; b < (r->batch ? r->batch : 1); b++)
		memset(c->buf + (size_t)b * r->payload, 0xa5, r->payload);
	r->prod[idx].count = 0;
	return 0;
}

void bench_producer_done(struct pctx *c)
{
	c->r->prod[c->idx].end_ns = bench_now();
	c->r->prod[c->idx].count = c->n;
	free(c->buf);
	c->buf = NULL;
}

void bench_worker_init(struct wctx *c, struct run *r, unsigned idx, uint64_t quota)
{
	uint64_t warm = bench_share(r->warmup, r->workers, idx);

	memset(c, 0, sizeof(*c));
	c->r = r;
	c->ws = &r->work[idx];
	c->h = &r->hist[idx];
	c->idx = idx;
	c->quota = quota;
	c->warm = warm < quota ? warm : quota;
	memset(c->ws, 0, sizeof(*c->ws));
}

void bench_worker_done(struct wctx *c)
{
	c->ws->last_ns = bench_now();
	c->ws->count = c->done;
	c->ws->measured = c->done > c->warm ? c->done - c->warm : 0;
	if (c->sink == 1)        /* keep the --touch reads alive */
		c->ws->pad[0] = 1;
}

void bench_race_check(struct wctx *c, const unsigned char *p, uint32_t len)
{
	struct run *r = c->r;
	uint64_t seq;

	memcpy(&seq, p, sizeof(seq));
	if (len != r->payload || seq >= r->total) {
		c->ws->bad_seq++;
		return;
	}
	for (uint32_t k = sizeof(struct task_head); k < len; k++) {
		if (p[k] != (unsigned char)(seq * 131u + k * 7u)) {
			c->ws->corrupt++;
			break;
		}
	}
#ifdef BENCH_INJECT_FAULT
	/* Test of the test (tq-bench-inject): one task seen twice, one never. */
	if (seq == 7)
		atomic_fetch_add_explicit(&r->seen[seq], 1, memory_order_relaxed);
	if (seq == 9)
		return;
#endif
	/* Saturating: a count of 255 is already damning. */
	if (atomic_load_explicit(&r->seen[seq], memory_order_relaxed) < 255)
		atomic_fetch_add_explicit(&r->seen[seq], 1, memory_order_relaxed);
}

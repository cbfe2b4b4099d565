/* SPDX-License-Identifier: MIT */
/*
 * wait.c - sleeping and waking across processes without polling.
 *
 * Waiters sleep on 32-bit futex words in the shared mapping (never with
 * FUTEX_PRIVATE_FLAG, which would only match this address space). Each
 * word comes with a count word (sleepers:32 | signalled:32): a waker calls
 * the kernel only while sleepers outnumber the wakes already in flight, so
 * a producer nobody waits for makes no system call, and one sleep costs at
 * most one wake call however many tasks arrive before the sleeper runs.
 *
 * The handshake that loses no wake-up (all sequentially consistent):
 *   waiter: sleepers++, read seq, check the condition again, sleep while
 *           seq is unchanged; on leaving: sleepers--, and signalled-- if
 *           non-zero (one CAS on the count word)
 *   waker:  make the condition true, then, if sleepers > signalled:
 *           signalled++ (CAS), seq++, wake one
 * A waker that sees a sleeper changes seq after making the condition
 * true, so the sleeper either reads the new seq (and then, reading after
 * it, sees the condition) or sleeps on the old one and is woken or returns
 * at once. A sleeper that leaves without being woken may take up another's
 * signal; that only makes the count overstate the unsignalled sleepers,
 * which costs a spare wake call, never a missed one.
 * A sleeper that dies leaves the count too high: wakers then make useless
 * calls until a supervisor recomputes it; nobody waits longer, and every
 * sleep is capped anyway.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "handle.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

uint64_t tq__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Absolute CLOCK_MONOTONIC deadline for a timeout; -1 = none, 0 = now. */
int64_t tq__deadline(int32_t timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return (int64_t)(tq__mono_ns() + (uint64_t)timeout_ms * 1000000ull);
}

static void abs_ts(int64_t deadline_ns, struct timespec *ts)
{
	ts->tv_sec = deadline_ns / 1000000000;
	ts->tv_nsec = deadline_ns % 1000000000;
}

/* 0 when woken (or the value had changed), -ETIMEDOUT, -EINTR. */
int tq__futex_wait(uint32_t *word, uint32_t val, int64_t deadline_ns)
{
	struct timespec ts;
	long r;

	if (deadline_ns >= 0) {
		if ((uint64_t)deadline_ns <= tq__mono_ns())
			return -ETIMEDOUT;
		abs_ts(deadline_ns, &ts);
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
		r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
	} else {
		r = syscall(SYS_futex, word, FUTEX_WAIT, val, NULL, NULL, 0);
	}
	if (r == 0 || errno == EAGAIN)
		return 0;
	return errno == ETIMEDOUT ? -ETIMEDOUT : errno == EINTR ? -EINTR : 0;
}

int tq__futex_waitv(uint32_t **words, const uint32_t *vals, unsigned n, int64_t deadline_ns)
{
	struct futex_waitv w[128];
	struct timespec ts;
	long r;

	if (n == 1)
		return tq__futex_wait(words[0], vals[0], deadline_ns);
	if (n > 128)
		n = 128;
	for (unsigned i = 0; i < n; i++) {
		w[i].val = vals[i];
		w[i].uaddr = (uint64_t)(uintptr_t)words[i];
		w[i].flags = FUTEX_32;
		w[i].__reserved = 0;
	}
	if (deadline_ns >= 0) {
		if ((uint64_t)deadline_ns <= tq__mono_ns())
			return -ETIMEDOUT;
		abs_ts(deadline_ns, &ts);
	}
	r = syscall(SYS_futex_waitv, w, n, 0, deadline_ns >= 0 ? &ts : NULL, CLOCK_MONOTONIC);
	if (r >= 0 || errno == EAGAIN)
		return 0;
	if (errno == ENOSYS) {
		/* Before Linux 5.16: sleep on the first word, briefly. */
		int64_t d = (int64_t)tq__mono_ns() + 1000000;
		if (deadline_ns >= 0 && deadline_ns < d)
			d = deadline_ns;
		r = tq__futex_wait(words[0], vals[0], d);
		return r == -ETIMEDOUT && (deadline_ns < 0 || (uint64_t)deadline_ns > tq__mono_ns()) ? 0 : (int)r;
	}
	return errno == ETIMEDOUT ? -ETIMEDOUT : errno == EINTR ? -EINTR : 0;
}

void tq__futex_wake(uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

uint32_t tq__waitq_enter(struct tq__waitq *w)
{
	tq__add(&w->count, 1ull << 32);
	return tq__load(&w->seq);
}

void tq__waitq_leave(struct tq__waitq *w)
{
	uint64_t v = tq__load(&w->count);

	for (;;) {
		uint64_t s = v >> 32, k = (uint32_t)v, nv;

		if (!s)
			return;                  /* corrupt; nothing to undo */
		nv = ((s - 1) << 32) | (k ? k - 1 : 0);
		if (__atomic_compare_exchange_n(&w->count, &v, nv, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
	}
}

void tq__waitq_wake(struct tq__waitq *w, unsigned n)
{
	/* Sequentially consistent after the publishing CAS: see the top. */
	uint64_t v = __atomic_load_n(&w->count, __ATOMIC_SEQ_CST), m;

	for (;;) {
		uint64_t s = v >> 32, k = (uint32_t)v;

		if (s <= k)
			return;
		m = s - k < n ? s - k : n;
		if (__atomic_compare_exchange_n(&w->count, &v, v + m, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			break;
	}
	tq__add(&w->seq, 1);
	tq__futex_wake(&w->seq, m > INT_MAX ? INT_MAX : (int)m);
}

void tq__wake_ready(tq *t, uint32_t q, unsigned n)
{
	tq__waitq_wake(&tq__queue(t, q)->ready, n);
}

void tq__wake_space(tq *t)
{
	tq__waitq_wake(&t->hdr->space, 1);
}

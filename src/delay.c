/* SPDX-License-Identifier: MIT */
/*
 * delay.c - tasks with a not-before time wait in a timing wheel of 256
 * one-millisecond buckets plus a "far" ring, all ordinary rings (ring.c).
 *
 * The cursor wheel_ms says every bucket up to that millisecond has been
 * drained. Whoever moves the cursor by one with a CAS (any leasing worker,
 * or the supervisor) drains the bucket it moved onto: due tasks are
 * published to their ready ring, others go back into the wheel. Every 128
 * ticks the far ring is drained the same way, so a task due later than the
 * wheel's span reaches a bucket before its time. A cursor that lags more
 * than a whole turn jumps and drains everything once.
 *
 * A submitter that pushes into a bucket the cursor has already passed
 * takes its task back (CAS on the slot) and publishes it itself, so no task
 * waits for the wheel's next turn. A drainer that dies leaves the tasks it
 * had claimed BUSY on its held list (for recovery) and the rest in the
 * bucket, drained one turn (256 ms) later.
 */
#include "ring.h"

#define FAR TQ__WHEEL

static uint64_t due_ms_of(uint64_t due_ns)
{
	return (due_ns + 999999u) / 1000000u;
}

static uint32_t bucket_for(uint64_t due_ms, uint64_t cursor)
{
	return due_ms - cursor < TQ__WHEEL ? (uint32_t)(due_ms % TQ__WHEEL) : FAR;
}

/* Publish a delayed slot this handle holds BUSY: due now. */
static int promote_one(tq *t, uint32_t idx)
{
	struct tq__slot *s = tq__slot(t, idx);
	uint32_t q = tq__load_rlx(&s->queue), lv = tq__load_rlx(&s->level);
	int e;

	if (q >= t->lay.queues || lv >= t->lay.levels)
		return tq__fail(t, -EPROTO, "delayed slot %u names queue %u level %u", idx, q, lv);
	e = tq__publish_ready(t, idx, q, lv);
	if (e < 0)
		return e;
	tq__add(&t->hdr->delayed, (uint64_t)-1);
	tq__count(t, q, lv, TQ__C_DELAY_OUT, 1);
	return 0;
}

int tq__delay_push(tq *t, uint32_t idx, uint64_t due_ns)
{
	uint64_t due = due_ms_of(due_ns), c = tq__load(&t->hdr->wheel_ms), st;
	uint32_t b, r;
	int e;

	if (due <= c)
		return 1;              /* due already: the caller publishes it */
	b = bucket_for(due, c);
	r = tq__ring_wheel(&t->lay, b);
	e = tq__ring_push(t, r, idx, TQ__K_DELAYED);
	if (e < 0)
		return e;
	tq__add(&t->hdr->delayed, 1);
	if (b == FAR || tq__load(&t->hdr->wheel_ms) < due)
		return 0;
	/* The cursor passed our bucket while we pushed: take the task back. */
	st = tq__load(&tq__slot(t, idx)->state);
	if (tq__st_kind(st) == TQ__K_DELAYED && tq__st_ring(st) == r &&
	    tq__cas64(&tq__slot(t, idx)->state, st, t->st_reserved)) {
		tq__add(&t->hdr->delayed, (uint64_t)-1);
		return 1;
	}
	return 0;                      /* a drainer took it */
}

static void drain(tq *t, uint32_t b, uint64_t cursor)
{
	uint32_t r = tq__ring_wheel(&t->lay, b);
	uint64_t len = tq__ring_len(t, r);

	/* At most what the bucket held when we came: what is pushed back
	 * meanwhile belongs to a later tick. */
	if (len > t->lay.capacity)
		len = t->lay.capacity;
	for (uint64_t n = 0; n < len; n++) {
		struct tq__slot *s;
		uint32_t idx, nb;
		uint64_t due;
		int hi, e;

		hi = tq__held_add(t, 0);
		if (hi < 0)
			return;
		e = tq__ring_pop(t, r, TQ__K_DELAYED, t->st_busy, hi, &idx);
		if (e < 0) {
			tq__held_del(t, hi);
			return;
		}
		s = tq__slot(t, idx);
		due = due_ms_of(tq__load_rlx(&s->due_ns));
		if (due <= cursor) {
			e = promote_one(t, idx);
		} else {
			nb = bucket_for(due, cursor);
			e = tq__ring_push(t, tq__ring_wheel(&t->lay, nb), idx, TQ__K_DELAYED);
		}
		if (e < 0) {
			/* No room to move it: put it back where it was. */
			if (tq__ring_push(t, r, idx, TQ__K_DELAYED) < 0)
				return;    /* stays BUSY on our held list */
		}
		tq__held_del(t, hi);
	}
}

void tq__delay_promote(tq *t)
{
	uint64_t now = tq_now_ns() / 1000000u;

	for (int i = 0; i < 2 * (int)TQ__WHEEL; i++) {
		uint64_t c = tq__load(&t->hdr->wheel_ms);

		if (c >= now)
			return;
		if (now - c > TQ__WHEEL) {
			if (!tq__cas64(&t->hdr->wheel_ms, c, now))
				continue;
			for (uint32_t b = 0; b <= FAR; b++)
				drain(t, b, now);
			continue;
		}
		if (!tq__cas64(&t->hdr->wheel_ms, c, c + 1))
			continue;
		drain(t, (uint32_t)((c + 1) % TQ__WHEEL), c + 1);
		if ((c + 1) % (TQ__WHEEL / 2) == 0)
			drain(t, FAR, c + 1);
	}
}

int64_t tq__delay_next_ns(tq *t)
{
	(void)t;
	return (int64_t)(tq__mono_ns() + 1000000u);
}

/* SPDX-License-Identifier: MIT */
/*
 * stats.c - counters. Each (queue, level) has TQ__STRIPES blocks of
 * counters and a handle adds to the block of its stripe only, so a producer
 * and a worker never write the same cache line to count. A reader sums the
 * stripes without stopping anyone; gauges (depth, delayed, leased now) are
 * differences of monotonic counters and are clamped at zero while writers
 * are mid-way.
 */
#include <string.h>

#include "handle.h"

static uint64_t gauge(uint64_t in, uint64_t out)
{
	return in > out ? in - out : 0;
}

int tq_stats(tq *t, int q, int level, struct tq_stats *st)
{
	uint64_t c[TQ__C_COUNT];
	uint32_t lo, hi;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!st)
		return tq__fail(t, -EINVAL, "st is NULL");
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	if (level >= (int)t->lay.levels)
		return tq__fail(t, -EINVAL, "level %d, the segment has %u", level, t->lay.levels);
	lo = level < 0 ? 0 : (uint32_t)level;
	hi = level < 0 ? t->lay.levels : (uint32_t)level + 1;
	memset(c, 0, sizeof(c));
	for (uint32_t lv = lo; lv < hi; lv++)
		for (uint32_t s = 0; s < TQ__STRIPES; s++) {
			struct tq__counters *k = tq__ctr(t, (uint32_t)q, lv, s);
			for (int i = 0; i < TQ__C_COUNT; i++)
				c[i] += tq__load_rlx(&k->c[i]);
		}
	memset(st, 0, sizeof(*st));
	st->depth = gauge(c[TQ__C_SUBMITTED] - c[TQ__C_SUB_DELAYED] + c[TQ__C_ENQ],
			  c[TQ__C_LEASED] + c[TQ__C_DEQ]);
	st->delayed = gauge(c[TQ__C_SUB_DELAYED] + c[TQ__C_DELAY_IN], c[TQ__C_DELAY_OUT]);
	st->leased_now = gauge(c[TQ__C_LEASED], c[TQ__C_ACKED] + c[TQ__C_FAILED] +
			       c[TQ__C_RELEASED] + c[TQ__C_RECOVERED]);
	st->submitted = c[TQ__C_SUBMITTED];
	st->leased = c[TQ__C_LEASED];
	st->acked = c[TQ__C_ACKED];
	st->failed = c[TQ__C_FAILED];
	st->released = c[TQ__C_RELEASED];
	st->dead = c[TQ__C_DEAD];
	st->cancelled = c[TQ__C_CANCELLED];
	st->requeued = c[TQ__C_REQUEUED];
	st->moved = c[TQ__C_MOVED];
	st->expired = c[TQ__C_EXPIRED];
	return 0;
}

int tq_segment_info(tq *t, struct tq_segment_info *info)
{
	struct tq_segment_info in;
	uint32_t attached = 0;
	uint64_t cached = 0, used;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!info)
		return tq__fail(t, -EINVAL, "info is NULL");
	memset(&in, 0, sizeof(in));
	in.config.queues = t->lay.queues;
	in.config.levels = t->lay.levels;
	in.config.capacity = t->lay.capacity;
	in.config.max_payload = t->lay.max_payload;
	in.config.procs = t->lay.procs;
	in.config.mode = tq__load_rlx(&t->hdr->mode);
	in.config.group = tq__load_rlx(&t->hdr->group);
	in.config.arena_bytes = tq__load_rlx(&t->hdr->arena_bytes);
	for (uint32_t p = 0; p < t->lay.procs; p++) {
		struct tq__proc *rec = tq__proc_at(t, p);
		uint64_t ow = tq__load_rlx(&rec->owner);

		if (!ow)
			continue;
		if (ow >> TQ__TOKEN_BITS)
			attached++;
		cached += tq__load_rlx(&rec->cached);
	}
	in.queues_declared = (uint32_t)tq__load_rlx(&t->hdr->queues_declared);
	in.procs_attached = attached;
	/* Slots in use, less the free ones producers keep reserved. */
	used = tq__pool_used(tq__slot_bits(t), t->lay.capacity);
	in.tasks_held = used > cached ? used - cached : 0;
	in.segment_bytes = t->lay.total;
	in.repairs = tq__load_rlx(&t->hdr->repairs);
	*info = in;
	return 0;
}

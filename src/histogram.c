/* SPDX-License-Identifier: MIT */
/*
 * histogram.c - the latency histograms kept per (queue, level) in the
 * segment: reading them (merged over levels on request), bucket bounds and
 * percentiles. Writers add with one relaxed atomic each (handle.h,
 * tq__hist_add()): a reader sees every bucket exact once writers are quiet,
 * and count is the sum of the buckets it read, so it is always consistent
 * with them.
 */
#include <string.h>

#include "handle.h"

int tq_histogram(tq *t, int q, int level, unsigned kind, struct tq_histogram *h)
{
	uint32_t lo, hi;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!h)
		return tq__fail(t, -EINVAL, "h is NULL");
	if (kind != TQ_HIST_WAIT && kind != TQ_HIST_RUN)
		return tq__fail(t, -EINVAL, "unknown histogram kind %u", kind);
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	if (level >= (int)t->lay.levels)
		return tq__fail(t, -EINVAL, "level %d, the segment has %u", level, t->lay.levels);
	lo = level < 0 ? 0 : (uint32_t)level;
	hi = level < 0 ? t->lay.levels : (uint32_t)level + 1;
	memset(h, 0, sizeof(*h));
	for (uint32_t lv = lo; lv < hi; lv++) {
		const struct tq__hist *src = tq__hist(t, (uint32_t)q, lv, kind);

		for (unsigned b = 0; b < TQ_HIST_BUCKETS; b++) {
			uint64_t n = tq__load_rlx(&src->b[b]);
			h->buckets[b] += n;
			h->count += n;
		}
		h->sum_ns += tq__load_rlx(&src->sum);
	}
	return 0;
}

uint64_t tq_hist_bucket_max_ns(unsigned b)
{
	unsigned e;

	if (b < 4)
		return b;
	if (b >= TQ_HIST_BUCKETS - 1)
		return UINT64_MAX;
	/* Bucket b >= 4 holds [(4 + sub) << (e - 2), (5 + sub) << (e - 2)). */
	e = b / 4 + 1;
	return ((uint64_t)(5 + b % 4) << (e - 2)) - 1;
}

uint64_t tq_hist_percentile(const struct tq_histogram *h, double pct)
{
	uint64_t rank, seen = 0;

	if (!h || !h->count)
		return 0;
	if (!(pct > 0))
		pct = 0;
	if (pct > 100)
		pct = 100;
	/* The smallest bucket whose cumulative count reaches the rank. */
	rank = (uint64_t)(pct / 100.0 * (double)h->count + 0.5);
	if (rank < 1)
		rank = 1;
	for (unsigned b = 0; b < TQ_HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen >= rank)
			return tq_hist_bucket_max_ns(b);
	}
	return tq_hist_bucket_max_ns(TQ_HIST_BUCKETS - 1);
}

/* SPDX-License-Identifier: MIT */
/*
 * hdr.c - the log-linear histogram declared in hdr.h.
 *
 * Index layout (as in HdrHistogram with a unit of 1): bucket b covers
 * [1024 << b, 2048 << b) in 1024 steps of 2^b, except bucket 0, which
 * covers [0, 2048) in steps of 1. counts[] holds bucket 0 whole, then the
 * upper half of each following bucket: index = ((b + 1) << 10) + sub - 1024.
 */
#include "hdr.h"

#include <math.h>
#include <string.h>

#define SUB_MASK ((UINT64_C(1) << HDR_SUB_BITS) - 1u)

static unsigned bucket_of(uint64_t v)
{
	/* Position of the highest set bit, counting bits above the 11 that a
	 * sub-bucket resolves; 0 for every value below 2048. */
	return (unsigned)(64 - __builtin_clzll(v | SUB_MASK)) - HDR_SUB_BITS;
}

static unsigned index_of(uint64_t v)
{
	unsigned b = bucket_of(v);
	unsigned sub = (unsigned)(v >> b);

	return ((b + 1u) << (HDR_SUB_BITS - 1u)) + sub - HDR_SUB_HALF;
}

static uint64_t lowest_at(unsigned idx)
{
	int b = (int)(idx >> (HDR_SUB_BITS - 1u)) - 1;
	uint64_t sub = (idx & (HDR_SUB_HALF - 1u)) + HDR_SUB_HALF;

	if (b < 0) {
		sub -= HDR_SUB_HALF;
		b = 0;
	}
	return sub << b;
}

static uint64_t width_at(unsigned idx)
{
	int b = (int)(idx >> (HDR_SUB_BITS - 1u)) - 1;

	return UINT64_C(1) << (b < 0 ? 0 : b);
}

uint64_t hdr_lowest_equivalent(uint64_t v)
{
	if (v > HDR_MAX_VALUE)
		v = HDR_MAX_VALUE;
	return lowest_at(index_of(v));
}

uint64_t hdr_highest_equivalent(uint64_t v)
{
	unsigned idx;

	if (v > HDR_MAX_VALUE)
		v = HDR_MAX_VALUE;
	idx = index_of(v);
	return lowest_at(idx) + width_at(idx) - 1u;
}

void hdr_reset(struct hdr *h)
{
	memset(h, 0, sizeof(*h));
}

void hdr_record(struct hdr *h, uint64_t v)
{
	uint64_t c = v;

	if (h->total == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	if (v > HDR_MAX_VALUE) {
		h->overflow++;
		c = HDR_MAX_VALUE;
	}
	h->counts[index_of(c)]++;
	h->total++;
	h->sum += v;
}

void hdr_merge(struct hdr *dst, const struct hdr *src)
{
	if (src->total == 0)
		return;
	if (dst->total == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	for (unsigned i = 0; i < HDR_COUNTS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum += src->sum;
	dst->overflow += src->overflow;
}

uint64_t hdr_rank(double p, uint64_t n)
{
	double x;
	uint64_t r;

	if (n == 0)
		return 0;
	if (!(p > 0.0))
		return 1;
	if (p >= 100.0)
		return n;
	/* p/100*n carries rounding error of a few ulps; an exact integer must
	 * not be pushed to the next rank by it. */
	x = p / 100.0 * (double)n;
	r = (uint64_t)ceil(x - x * 1e-12);
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return r;
}

uint64_t hdr_percentile(const struct hdr *h, double p)
{
	uint64_t want, seen = 0, v;

	if (h->total == 0)
		return 0;
	want = hdr_rank(p, h->total);
	for (unsigned i = 0; i < HDR_COUNTS; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			v = lowest_at(i) + width_at(i) - 1u;
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

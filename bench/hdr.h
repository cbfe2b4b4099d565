/* SPDX-License-Identifier: MIT */
/*
 * hdr.h - a fixed-size HDR histogram for tq-bench (private to bench/).
 *
 * Log-linear buckets in the manner of Gil Tene's HdrHistogram: values below
 * 2048 are counted exactly; above that, each power-of-two range is cut into
 * 1024 equal sub-buckets, so a value is known to within 1/1024 of itself
 * (3 significant digits). Values are unsigned integers (nanoseconds in
 * tq-bench) from 0 to HDR_MAX_VALUE (2^43 - 1 ns, about 2.4 hours); larger
 * ones are counted in the top bucket and in `overflow`, and `max` stays
 * exact.
 *
 * The struct holds no pointer and an all-zero struct is an empty histogram,
 * so it can sit in a MAP_SHARED mapping made before fork(): each worker
 * process fills its own, and the parent merges them once they have exited.
 * One histogram belongs to one writer at a time; nothing here is atomic.
 */
#ifndef TQ_BENCH_HDR_H
#define TQ_BENCH_HDR_H

#include <stdint.h>

#define HDR_SUB_BITS    11u                          /* 2048 sub-buckets */
#define HDR_SUB_HALF    (1u << (HDR_SUB_BITS - 1))   /* 1024 */
#define HDR_BUCKETS     33u
#define HDR_COUNTS      ((HDR_BUCKETS + 1u) * HDR_SUB_HALF)
#define HDR_MAX_VALUE   ((UINT64_C(1) << (HDR_BUCKETS + HDR_SUB_BITS - 1u)) - 1u)

struct hdr {
	uint64_t total;      /* values recorded */
	uint64_t sum;        /* their exact sum */
	uint64_t min;        /* exact; meaningless while total == 0 */
	uint64_t max;        /* exact */
	uint64_t overflow;   /* values above HDR_MAX_VALUE */
	uint64_t counts[HDR_COUNTS];
};

/** Empty h (the same as zeroing it). */
void hdr_reset(struct hdr *h);

/** Count one value. O(1), no branch on the common path but the min/max. */
void hdr_record(struct hdr *h, uint64_t v);

/** Add every count of src to dst. */
void hdr_merge(struct hdr *dst, const struct hdr *src);

/**
 * The value at percentile p (0..100): the smallest recorded value v such
 * that at least p% of the values are <= v, reported as the highest value of
 * its bucket (never below the true one, above it by less than 1/1024 of it),
 * capped at the exact max. 0 when empty.
 */
uint64_t hdr_percentile(const struct hdr *h, double p);

/** Rank (1-based) of percentile p among n sorted values: ceil(p/100 * n),
 * at least 1, computed so that 99.9% of 1000 values is 999, not 1000. */
uint64_t hdr_rank(double p, uint64_t n);

static inline uint64_t hdr_count(const struct hdr *h) { return h->total; }
static inline uint64_t hdr_max(const struct hdr *h) { return h->max; }
static inline uint64_t hdr_min(const struct hdr *h) { return h->total ? h->min : 0; }
static inline double hdr_mean(const struct hdr *h)
{
	return h->total ? (double)h->sum / (double)h->total : 0.0;
}

/** Lowest and highest value counted in the same bucket as v. */
uint64_t hdr_lowest_equivalent(uint64_t v);
uint64_t hdr_highest_equivalent(uint64_t v);

#endif /* TQ_BENCH_HDR_H */

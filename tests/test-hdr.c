/* SPDX-License-Identifier: MIT */
/*
 * test-hdr.c - checks tq-bench's histogram (bench/hdr.c) against exact
 * percentiles of sorted arrays drawn from several distributions, and checks
 * that merging per-worker histograms gives the histogram of the whole.
 * Exit 0 pass, 1 fail.
 */
#include "hdr.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...) do {                                          \
	if (!(cond)) {                                                 \
		fprintf(stderr, "%s:%d: check failed: %s: ",           \
			__FILE__, __LINE__, #cond);                    \
		fprintf(stderr, __VA_ARGS__);                          \
		fputc('\n', stderr);                                   \
		failures++;                                            \
	}                                                              \
} while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, good enough for shapes. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static double unit(void)
{
	return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}

static uint64_t clamp_value(double x)
{
	if (x < 0)
		return 0;
	if (x > 3.6e12)
		return (uint64_t)3.6e12;
	return (uint64_t)x;
}

enum dist { UNIFORM, SMALL, EXPONENTIAL, LOGNORMAL, PARETO, LOGUNIFORM, CONSTANT, BIMODAL, NDIST };
static const char *const dist_name[NDIST] = {
	"uniform", "small", "exponential", "lognormal", "pareto",
	"log-uniform 1ns..1h", "constant", "bimodal",
};

static uint64_t draw(enum dist d)
{
	switch (d) {
	case UNIFORM:     return 1 + rnd() % 1000000;
	case SMALL:       return rnd() % 3000;
	case EXPONENTIAL: return clamp_value(-20000.0 * log(unit()));
	case LOGNORMAL: {
		double u1 = unit(), u2 = unit();
		double z = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
		return clamp_value(exp(log(5000.0) + 1.5 * z));
	}
	case PARETO:      return clamp_value(1000.0 / pow(unit(), 1 / 1.2));
	case LOGUNIFORM:  return clamp_value(exp(unit() * log(3.6e12)));
	case CONSTANT:    return 123457;
	case BIMODAL:     return (rnd() & 7) ? 800 + rnd() % 400 : 2000000 + rnd() % 9000000;
	default:          return 0;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static const double pcts[] = {
	0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 99.999, 100,
};

static void check_against(const struct hdr *h, const uint64_t *sorted, size_t n,
			  const char *what)
{
	uint64_t sum = 0;   /* at most 200000 values of at most 3.6e12 */

	for (size_t i = 0; i < n; i++)
		sum += sorted[i];
	CHECK(hdr_count(h) == n, "%s: count %" PRIu64 " != %zu", what, hdr_count(h), n);
	CHECK(hdr_min(h) == sorted[0], "%s: min %" PRIu64 " != %" PRIu64, what,
	      hdr_min(h), sorted[0]);
	CHECK(hdr_max(h) == sorted[n - 1], "%s: max %" PRIu64 " != %" PRIu64, what,
	      hdr_max(h), sorted[n - 1]);
	CHECK(fabs(hdr_mean(h) - (double)sum / (double)n) <= 1e-9 * ((double)sum / (double)n) + 1e-9,
	      "%s: mean %.3f != %.3f", what, hdr_mean(h), (double)sum / (double)n);

	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		uint64_t exact = sorted[hdr_rank(pcts[i], n) - 1];
		uint64_t got = hdr_percentile(h, pcts[i]);

		/* Three significant digits: never below the true value, above
		 * it by at most a thousandth of it (exact below 2048). */
		CHECK(got >= exact && (double)(got - exact) <= (double)exact / 1000.0,
		      "%s: p%g = %" PRIu64 ", exact %" PRIu64, what, pcts[i], got, exact);
	}
}

static void test_distributions(void)
{
	const size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));
	struct hdr *h = calloc(1, sizeof(*h));
	struct hdr *part = calloc(4, sizeof(*part));
	struct hdr *merged = calloc(1, sizeof(*merged));

	if (!v || !h || !part || !merged) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (int d = 0; d < NDIST; d++) {
		char what[64];

		hdr_reset(h);
		hdr_reset(merged);
		for (int k = 0; k < 4; k++)
			hdr_reset(&part[k]);
		for (size_t i = 0; i < n; i++) {
			v[i] = draw((enum dist)d);
			hdr_record(h, v[i]);
			/* Uneven split, as workers get uneven shares. */
			hdr_record(&part[(i * 7 / 3) % 4 == 3 && (i & 1) ? 0 : (i % 4)], v[i]);
		}
		qsort(v, n, sizeof(*v), cmp_u64);
		snprintf(what, sizeof(what), "%s", dist_name[d]);
		check_against(h, v, n, what);

		for (int k = 0; k < 4; k++)
			hdr_merge(merged, &part[k]);
		snprintf(what, sizeof(what), "%s merged", dist_name[d]);
		check_against(merged, v, n, what);
		CHECK(memcmp(merged, h, sizeof(*h)) == 0, "%s: merge differs from whole",
		      dist_name[d]);
		/* Small prefix: percentiles on few values. */
		for (size_t m = 1; m <= 5; m++) {
			hdr_reset(h);
			for (size_t i = 0; i < m; i++)
				hdr_record(h, v[i * (n / m)]);
			uint64_t w[5];
			for (size_t i = 0; i < m; i++)
				w[i] = v[i * (n / m)];
			qsort(w, m, sizeof(*w), cmp_u64);
			snprintf(what, sizeof(what), "%s n=%zu", dist_name[d], m);
			check_against(h, w, m, what);
		}
	}
	free(v);
	free(h);
	free(part);
	free(merged);
}

static void test_edges(void)
{
	struct hdr *h = calloc(1, sizeof(*h)), *e = calloc(1, sizeof(*e));
	const uint64_t hour = UINT64_C(3600000000000);

	if (!h || !e)
		exit(1);
	/* Empty. */
	CHECK(hdr_count(h) == 0 && hdr_percentile(h, 50) == 0 && hdr_max(h) == 0,
	      "empty histogram not empty");
	/* Merging empties changes nothing; merging into empty copies. */
	hdr_record(h, 5);
	hdr_record(h, hour);
	hdr_merge(h, e);
	CHECK(hdr_count(h) == 2 && hdr_min(h) == 5 && hdr_max(h) == hour, "merge of empty");
	hdr_merge(e, h);
	CHECK(memcmp(e, h, sizeof(*h)) == 0, "merge into empty is not a copy");
	CHECK(hdr_percentile(h, 50) == 5, "p50 of {5, 1h} = %" PRIu64, hdr_percentile(h, 50));
	CHECK(hdr_percentile(h, 100) == hour, "p100 = %" PRIu64, hdr_percentile(h, 100));

	/* Every value up to 2048 is exact; above, the bucket is within 1/1024. */
	for (uint64_t x = 0; x < 4096; x++)
		CHECK(x >= 2048 || hdr_highest_equivalent(x) == x, "value %" PRIu64 " not exact", x);
	for (uint64_t x = 1; x < HDR_MAX_VALUE; x = x * 3 + 1) {
		uint64_t lo = hdr_lowest_equivalent(x), hi = hdr_highest_equivalent(x);
		CHECK(lo <= x && x <= hi && (double)(hi - lo) <= (double)lo / 1024.0,
		      "bucket of %" PRIu64 ": [%" PRIu64 ", %" PRIu64 "]", x, lo, hi);
	}
	/* One hour is in range; past the top is counted, and max stays exact. */
	CHECK(hour < HDR_MAX_VALUE, "one hour above HDR_MAX_VALUE");
	hdr_reset(h);
	hdr_record(h, HDR_MAX_VALUE + 12345);
	CHECK(h->overflow == 1 && hdr_count(h) == 1 && hdr_max(h) == HDR_MAX_VALUE + 12345,
	      "overflow not counted");
	CHECK(hdr_percentile(h, 50) <= hdr_max(h), "percentile above max");
	/* Ranks: 99.9% of 1000 is the 999th, 50% of 3 is the 2nd. */
	CHECK(hdr_rank(99.9, 1000) == 999, "rank(99.9, 1000) = %" PRIu64, hdr_rank(99.9, 1000));
	CHECK(hdr_rank(50, 3) == 2, "rank(50, 3)");
	CHECK(hdr_rank(0, 10) == 1 && hdr_rank(100, 10) == 10, "rank ends");
	free(h);
	free(e);
}

int main(void)
{
	test_edges();
	test_distributions();
	if (failures) {
		fprintf(stderr, "test-hdr: %d checks failed\n", failures);
		return 1;
	}
	printf("test-hdr: ok\n");
	return 0;
}

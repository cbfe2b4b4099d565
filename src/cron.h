/* SPDX-License-Identifier: MIT */
/*
 * cron.h - PRIVATE: parsing cron schedules and computing their next tick,
 * for the scheduler of periodic tasks (schedule.c). Not part of the API.
 * Pure functions: no segment, no clock, no locale, no time zone, no
 * allocation; any thread may call them at any time.
 *
 * Schedule syntax (docs/schedules.md says the same for users):
 *
 *   minute hour day-of-month month day-of-week          5 fields
 *   second minute hour day-of-month month day-of-week   6 fields
 *
 * separated by spaces or tabs. Ranges: second 0-59, minute 0-59, hour 0-23,
 * day-of-month 1-31, month 1-12 or jan-dec, day-of-week 0-7 or sun-sat
 * (0 and 7 are both Sunday). A field is a comma-separated list of items:
 *
 *   *       every value              N      the value N
 *   A-B     A to B inclusive         *\/S   every S-th value from the first
 *   A-B/S   every S-th from A to B   N/S    every S-th from N to the last
 *
 * ("*\/S" is written with a backslash here only because of C comments.)
 * A step S must be from 1 to the number of values of the field. Names are
 * three letters, in any case, and stand wherever a number may (also in
 * ranges: "mon-fri", "jan-mar/2"). In day-of-week, '*' and "N/S" end at 6
 * (Saturday); 7 counts as Sunday as a value or at the end of a range
 * ("5-7" is Friday to Sunday).
 *
 * Days follow Vixie cron: when both day-of-month and day-of-week are
 * restricted, a day matches when either matches; when one of them is '*'
 * (exactly "*" or "*\/1"), only the other counts. Unlike Vixie cron, where
 * any field that starts with '*' counts as '*', "*\/2" is restricted.
 *
 * Macros: @yearly = @annually = "0 0 1 1 *", @monthly = "0 0 1 * *",
 * @weekly = "0 0 * * 0", @daily = @midnight = "0 0 * * *", @hourly =
 * "0 * * * *", and "@every D", D being a sum of terms with units d, h, m,
 * s and ms (lower case) from largest to smallest ("250ms", "1h30m", "1d"), from 1ms to
 * 365d. "@every D" ticks at the multiples of D since the Unix epoch, so
 * that every process computes the same ticks. Macro names are
 * case-insensitive.
 *
 * All times are UTC: there is no time zone and no daylight saving time. A
 * spec is at most 63 bytes; anything else is refused with -EINVAL and a
 * message naming the field and the token.
 *
 * The ticks of a field schedule are whole seconds; tq__cron_next() looks
 * TQ__CRON_HORIZON_DAYS ahead and no further, so a spec that never matches
 * ("0 0 31 2 *") costs a few microseconds, not a search without end.
 */
#ifndef TQ_CRON_H
#define TQ_CRON_H

#include <stddef.h>
#include <stdint.h>

struct tq__cron {
	uint64_t every_ns;       /* "@every": fixed period (then the fields are unused) */
	uint64_t minute;         /* bit m set: minute m (0..59) matches */
	uint32_t hour;           /* bits 0..23 */
	uint32_t dom;            /* bits 1..31 */
	uint16_t month;          /* bits 1..12 */
	uint8_t dow;             /* bits 0..6, Sunday = 0 (7 accepted as Sunday in input) */
	uint8_t flags;           /* TQ__CRON_DOM_STAR, TQ__CRON_DOW_STAR: which of dom/dow was '*' */
	uint64_t second;         /* 6-field form only: bits 0..59; else just bit 0 */
};
#define TQ__CRON_DOM_STAR 1
#define TQ__CRON_DOW_STAR 2

/* The longest spec accepted, in bytes without the terminating NUL. */
#define TQ__CRON_SPEC_MAX 63

/* How far tq__cron_next() looks: 5 years, of 365 days and at most 2 leap days. */
#define TQ__CRON_HORIZON_DAYS 1827u

/* Parse spec; 0 or -EINVAL with a message in err (err may be NULL). */
int tq__cron_parse(const char *spec, struct tq__cron *c, char *err, size_t errlen);
/* The first tick strictly after after_ns (CLOCK_REALTIME ns, UTC), or 0 if none within 5 years. */
uint64_t tq__cron_next(const struct tq__cron *c, uint64_t after_ns);

#endif /* TQ_CRON_H */

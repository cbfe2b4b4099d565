/* SPDX-License-Identifier: MIT */
/*
 * test-cron - the cron schedule parser and next-tick calculator (cron.c).
 * White-box: it calls tq__cron_parse() and tq__cron_next() directly.
 *
 * Checks the bitmaps of known specs, known next ticks from fixed instants
 * (steps, weekdays over a weekend, month ends and leap years, Feb 29, the
 * day-of-month/day-of-week OR rule, names, the seconds field, the macros
 * and @every alignment), every parse error with its message, that specs
 * which never match give 0 quickly, and then a cross-check: a few hundred
 * random specs are generated together with the sets they stand for, the
 * parse is compared with those sets, and tq__cron_next() from random
 * instants is compared with a naive search that walks the days one by one
 * with gmtime_r() and, on a matching day, its minutes (or seconds) one by
 * one. TQ_TEST_SEED=<n> repeats a run.
 */
#include <string.h>
#include <time.h>

#include "cron.h"
#include "tq-test.h"

#define NS 1000000000ull
#define MS 1000000ull
#define DAY 86400ull

/* A UTC instant in ns, through libc (cron.c has its own arithmetic). */
static uint64_t at(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	time_t t = timegm(&tm);
	CHECK(t >= 0);
	return (uint64_t)t * NS;
}

static const char *show(char *buf, size_t size, uint64_t ns)
{
	if (ns == 0) {
		snprintf(buf, size, "0 (none)");
		return buf;
	}
	time_t t = (time_t)(ns / NS);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%09llu %s", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned long long)(ns % NS),
		 (const char *[]){ "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }[tm.tm_wday]);
	return buf;
}

static struct tq__cron parse_ok_at(const char *file, int line, const char *spec)
{
	struct tq__cron c;
	char err[256];
	int r = tq__cron_parse(spec, &c, err, sizeof err);
	if (r != 0)
		tqt_fail_at(file, line, "tq__cron_parse(\"%s\") = %d: %s", spec, r, err);
	return c;
}
#define parse_ok(spec) parse_ok_at(__FILE__, __LINE__, spec)

static void check_next_at(const char *file, int line, const char *spec, uint64_t after,
			  uint64_t want)
{
	struct tq__cron c = parse_ok_at(file, line, spec);
	uint64_t got = tq__cron_next(&c, after);
	if (got != want) {
		char a[64], g[64], w[64];
		tqt_fail_at(file, line, "\"%s\" after %s: got %s, want %s", spec,
			    show(a, sizeof a, after), show(g, sizeof g, got), show(w, sizeof w, want));
	}
}
#define NEXT(spec, after, want) check_next_at(__FILE__, __LINE__, spec, after, want)

/* Bits lo..hi. */
static uint64_t bits(unsigned lo, unsigned hi)
{
	uint64_t m = 0;
	for (unsigned i = lo; i <= hi; i++)
		m |= 1ull << i;
	return m;
}

/* ------------------------------------------------------------------------
 * Parsing
 */

static void check_fields(const char *spec, uint64_t sec, uint64_t min, uint64_t hour,
			 uint64_t dom, uint64_t mon, uint64_t dow, unsigned flags)
{
	struct tq__cron c = parse_ok(spec);
	CHECKF(c.every_ns == 0, "\"%s\": every_ns %llu", spec, (unsigned long long)c.every_ns);
	CHECKF(c.second == sec, "\"%s\": second %#llx, want %#llx", spec,
	       (unsigned long long)c.second, (unsigned long long)sec);
	CHECKF(c.minute == min, "\"%s\": minute %#llx, want %#llx", spec,
	       (unsigned long long)c.minute, (unsigned long long)min);
	CHECKF(c.hour == hour, "\"%s\": hour %#x, want %#llx", spec, c.hour, (unsigned long long)hour);
	CHECKF(c.dom == dom, "\"%s\": dom %#x, want %#llx", spec, c.dom, (unsigned long long)dom);
	CHECKF(c.month == mon, "\"%s\": month %#x, want %#llx", spec, c.month,
	       (unsigned long long)mon);
	CHECKF(c.dow == dow, "\"%s\": dow %#x, want %#llx", spec, c.dow, (unsigned long long)dow);
	CHECKF(c.flags == flags, "\"%s\": flags %u, want %u", spec, c.flags, flags);
}

static void test_parse_fields(void)
{
	const uint64_t S0 = 1, ALLMIN = bits(0, 59), ALLH = bits(0, 23), ALLDOM = bits(1, 31),
		       ALLMON = bits(1, 12), ALLDOW = bits(0, 6);
	const unsigned BOTH = TQ__CRON_DOM_STAR | TQ__CRON_DOW_STAR;

	check_fields("* * * * *", S0, ALLMIN, ALLH, ALLDOM, ALLMON, ALLDOW, BOTH);
	check_fields("*/15 * * * *", S0, 1 | 1ull << 15 | 1ull << 30 | 1ull << 45, ALLH, ALLDOM,
		     ALLMON, ALLDOW, BOTH);
	check_fields("*/1 * */1 * */1", S0, ALLMIN, ALLH, ALLDOM, ALLMON, ALLDOW, BOTH);
	check_fields("5/20 1-3,7 * * *", S0, 1ull << 5 | 1ull << 25 | 1ull << 45,
		     bits(1, 3) | 1 << 7, ALLDOM, ALLMON, ALLDOW, BOTH);
	check_fields("0 0 */2 * *", S0, 1, 1, 0xaaaaaaaaull, ALLMON, ALLDOW,
		     TQ__CRON_DOW_STAR);
	check_fields("0 0 1-31 * *", S0, 1, 1, ALLDOM, ALLMON, ALLDOW, TQ__CRON_DOW_STAR);
	check_fields("0 0 * * 0-7", S0, 1, 1, ALLDOM, ALLMON, ALLDOW, TQ__CRON_DOM_STAR);
	check_fields("0 0 * * 5-7", S0, 1, 1, ALLDOM, ALLMON, 1 | 1 << 5 | 1 << 6, TQ__CRON_DOM_STAR);
	check_fields("0 0 * * 7", S0, 1, 1, ALLDOM, ALLMON, 1, TQ__CRON_DOM_STAR);
	check_fields("0 0 * * 1/2", S0, 1, 1, ALLDOM, ALLMON, 1 << 1 | 1 << 3 | 1 << 5,
		     TQ__CRON_DOM_STAR);
	check_fields("0 0 * * */3", S0, 1, 1, ALLDOM, ALLMON, 1 | 1 << 3 | 1 << 6, TQ__CRON_DOM_STAR);
	check_fields("0 0 * * 1-7/2", S0, 1, 1, ALLDOM, ALLMON, 1 | 1 << 1 | 1 << 3 | 1 << 5,
		     TQ__CRON_DOM_STAR);
	check_fields("0 0 13 * FRI", S0, 1, 1, 1u << 13, ALLMON, 1 << 5, 0);
	check_fields("0 0 * JAN-mar/2 Sat,sun", S0, 1, 1, ALLDOM, 1 << 1 | 1 << 3, 1 | 1 << 6,
		     TQ__CRON_DOM_STAR);
	check_fields("0 0 * dec * ", S0, 1, 1, ALLDOM, 1 << 12, ALLDOW, BOTH);
	check_fields("0 0 1 jan,Jul,DEC mon-fri", S0, 1, 1, 1 << 1, 1 << 1 | 1 << 7 | 1 << 12,
		     bits(1, 5), 0);
	check_fields("59 23 31 12 6", S0, 1ull << 59, 1u << 23, 1u << 31, 1 << 12, 1 << 6, 0);
	check_fields("00 007 01 01 00", S0, 1, 1 << 7, 1 << 1, 1 << 1, 1, 0);
	check_fields("  0\t0  * *   *  ", S0, 1, 1, ALLDOM, ALLMON, ALLDOW, BOTH);
	check_fields("0-59/59 0-23/23 1-31/30 1-12/11 0-6/6", S0, 1 | 1ull << 59, 1 | 1 << 23,
		     1 << 1 | 1u << 31, 1 << 1 | 1 << 12, 1 | 1 << 6, 0);
	check_fields("*/60 */24 */31 */12 */7", S0, 1, 1, 1 << 1, 1 << 1, 1, 0);
	/* Six fields: seconds first. */
	check_fields("*/20 0 0 * * *", 1 | 1ull << 20 | 1ull << 40, 1, 1, ALLDOM, ALLMON, ALLDOW, BOTH);
	check_fields("* * * * * *", ALLMIN, ALLMIN, ALLH, ALLDOM, ALLMON, ALLDOW, BOTH);
	check_fields("59 59 23 31 12 7", 1ull << 59, 1ull << 59, 1u << 23, 1u << 31, 1 << 12, 1, 0);

	/* The macros are their expansions. */
	static const char *const mac[][2] = {
		{ "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
		{ "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
		{ "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
		{ "@hourly", "0 * * * *" },  { "  @Daily\t", "0 0 * * *" },
		{ "@HOURLY", "0 * * * *" },
	};
	for (unsigned i = 0; i < sizeof mac / sizeof mac[0]; i++) {
		struct tq__cron a = parse_ok(mac[i][0]), b = parse_ok(mac[i][1]);
		CHECKF(memcmp(&a, &b, sizeof a) == 0, "%s is not \"%s\"", mac[i][0], mac[i][1]);
	}

	/* @every */
	static const struct { const char *spec; uint64_t ns; } ev[] = {
		{ "@every 250ms", 250 * MS },
		{ "@every 10s", 10 * NS },
		{ "@every 5m", 300 * NS },
		{ "@every 2h", 7200 * NS },
		{ "@every 1h30m", 5400 * NS },
		{ "@every 1d", DAY * NS },
		{ "@every 1ms", MS },
		{ "@every 365d", 365 * DAY * NS },
		{ "@every 364d23h59m59s999ms", 365 * DAY * NS - MS },
		{ "@every 1d2h3m4s5ms", (DAY + 7200 + 180 + 4) * NS + 5 * MS },
		{ "@every 90m", 5400 * NS },
		{ "@every 0h1ms", MS },
		{ "@every 1500ms", 1500 * MS },
		{ " @EVERY\t2m ", 120 * NS },
	};
	for (unsigned i = 0; i < sizeof ev / sizeof ev[0]; i++) {
		struct tq__cron c = parse_ok(ev[i].spec);
		CHECKF(c.every_ns == ev[i].ns, "\"%s\": every_ns %llu, want %llu", ev[i].spec,
		       (unsigned long long)c.every_ns, (unsigned long long)ev[i].ns);
	}

	/* The longest spec is 63 bytes. */
	char spec[80];
	snprintf(spec, sizeof spec, "%-63s", "0 0 * * *");
	CHECK_EQ(strlen(spec), 63);
	parse_ok(spec);
	snprintf(spec, sizeof spec, "%s", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 0-23 * * *");
	CHECK_EQ(strlen(spec), 63);
	check_fields(spec, S0, bits(0, 20), ALLH, ALLDOM, ALLMON, ALLDOW, BOTH);
}

/* Every way to get it wrong: -EINVAL, a message containing `want`, and
 * the output untouched. */
static void parse_bad_at(const char *file, int line, const char *spec, const char *want)
{
	struct tq__cron c, before;
	char err[256];

	memset(&c, 0x5a, sizeof c);
	before = c;
	memset(err, 'x', sizeof err);
	int r = tq__cron_parse(spec, &c, err, sizeof err);
	if (r != -EINVAL)
		tqt_fail_at(file, line, "tq__cron_parse(\"%s\") = %d, want -EINVAL", spec, r);
	if (memchr(err, 0, sizeof err) == NULL || !strstr(err, want))
		tqt_fail_at(file, line, "tq__cron_parse(\"%s\"): message \"%.255s\" lacks \"%s\"",
			    spec, err, want);
	if (memcmp(&c, &before, sizeof c) != 0)
		tqt_fail_at(file, line, "tq__cron_parse(\"%s\") failed but wrote its output", spec);
	/* No message buffer, or a tiny one, is fine too. */
	if (tq__cron_parse(spec, &c, NULL, 0) != -EINVAL || tq__cron_parse(spec, &c, NULL, 99) != -EINVAL)
		tqt_fail_at(file, line, "tq__cron_parse(\"%s\", NULL) did not fail", spec);
	char tiny[4] = "abc";
	if (tq__cron_parse(spec, &c, tiny, sizeof tiny) != -EINVAL || strlen(tiny) != 3)
		tqt_fail_at(file, line, "tq__cron_parse(\"%s\") with 4 bytes: \"%s\"", spec, tiny);
	if (memcmp(&c, &before, sizeof c) != 0)
		tqt_fail_at(file, line, "tq__cron_parse(\"%s\") failed but wrote its output", spec);
}
#define BAD(spec, want) parse_bad_at(__FILE__, __LINE__, spec, want)

static void test_parse_errors(void)
{
	struct tq__cron c;
	char err[256];

	CHECK_ERR(tq__cron_parse(NULL, &c, err, sizeof err), -EINVAL);
	CHECK(strstr(err, "no schedule"));
	CHECK_ERR(tq__cron_parse("* * * * *", NULL, err, sizeof err), -EINVAL);

	/* Shape. */
	BAD("", "empty schedule");
	BAD(" \t ", "empty schedule");
	BAD("* * * *", "got 4");
	BAD("*", "got 1");
	BAD("* * * * * * *", "got 7");
	BAD("* * * * * * * * * * *", "got 11");
	BAD("0 0 * * *\n", "day-of-week (field 5 of 5) \"*\n\"");
	char spec[80];
	snprintf(spec, sizeof spec, "%-64s", "0 0 * * *");
	BAD(spec, "longer than 63 bytes");
	BAD("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21 0-23 * * *", "longer than 63");

	/* Out of range, in each field. */
	BAD("60 * * * *", "minute (field 1 of 5) \"60\": 60 is out of range 0-59");
	BAD("* 24 * * *", "hour (field 2 of 5) \"24\": 24 is out of range 0-23");
	BAD("* * 0 * *", "day-of-month (field 3 of 5) \"0\": 0 is out of range 1-31");
	BAD("* * 32 * *", "32 is out of range 1-31");
	BAD("* * * 0 *", "month (field 4 of 5) \"0\": 0 is out of range 1-12");
	BAD("* * * 13 *", "13 is out of range 1-12");
	BAD("* * * * 8", "day-of-week (field 5 of 5) \"8\": 8 is out of range 0-7");
	BAD("60 * * * * *", "second (field 1 of 6) \"60\": 60 is out of range 0-59");
	BAD("* 60 * * * *", "minute (field 2 of 6)");
	BAD("* * * * * 8", "day-of-week (field 6 of 6)");
	BAD("1-60 * * * *", "60 is out of range 0-59");
	BAD("* 1,2,99 * * *", "99 is out of range 0-23");
	BAD("99999999999999999999999 * * * *", "is out of range 0-59");
	BAD("* 0-24/2 * * *", "24 is out of range 0-23");

	/* Empty items. */
	BAD("1,,2 * * * *", "minute (field 1 of 5) \"1,,2\": empty list item");
	BAD(",1 * * * *", "empty list item");
	BAD("1, * * * *", "empty list item");
	BAD("* * * * ,", "day-of-week (field 5 of 5) \",\": empty list item");

	/* Steps. */
	BAD("*/0 * * * *", "step 0 in \"*/0\" is out of range 1-60");
	BAD("1-5/0 * * * *", "step 0 in \"1-5/0\"");
	BAD("5/0 * * * *", "step 0 in \"5/0\"");
	BAD("*/61 * * * *", "step 61 in \"*/61\" is out of range 1-60");
	BAD("* */25 * * *", "out of range 1-24");
	BAD("* * */32 * *", "out of range 1-31");
	BAD("* * * */13 *", "out of range 1-12");
	BAD("* * * * */8", "out of range 1-7");
	BAD("*/ * * * *", "expected a step after '/' in \"*/\"");
	BAD("*/x * * * *", "expected a step after '/' in \"*/x\"");
	BAD("*/2/2 * * * *", "unexpected \"/2\" in \"*/2/2\"");
	BAD("*/-1 * * * *", "expected a step");
	BAD("* * * * */sun", "expected a step");

	/* Ranges. */
	BAD("5-1 * * * *", "minute (field 1 of 5) \"5-1\": range \"5-1\" is reversed");
	BAD("* * * dec-jan *", "range \"dec-jan\" is reversed");
	BAD("* * * * sat-sun", "range \"sat-sun\" is reversed");
	BAD("* * * * 7-1", "range \"7-1\" is reversed");
	BAD("1- * * * *", "expected a number at \"\" in \"1-\"");
	BAD("1-* * * * *", "expected a number at \"*\" in \"1-*\"");
	BAD("-1 * * * *", "expected a number at \"-1\" in \"-1\"");
	BAD("1-2-3 * * * *", "unexpected \"-3\" in \"1-2-3\"");
	BAD("* * * 1--2 *", "expected a number or a name at \"-2\"");

	/* Garbage. */
	BAD("5x * * * *", "minute (field 1 of 5) \"5x\": unexpected \"x\" in \"5x\"");
	BAD("*x * * * *", "unexpected \"x\" in \"*x\"");
	BAD("** * * * *", "unexpected \"*\" in \"**\"");
	BAD("1.5 * * * *", "unexpected \".5\"");
	BAD("+1 * * * *", "expected a number at \"+1\"");
	BAD("? * * * *", "expected a number at \"?\"");
	BAD("* * ? * *", "day-of-month (field 3 of 5)");
	BAD("0 0 L * *", "expected a number, not \"L\"");
	BAD("0 0 * * 1#2", "unexpected \"#2\"");
	BAD("*/5x * * * *", "unexpected \"x\" in \"*/5x\"");

	/* Names: only months and days, only known ones, whole words. */
	BAD("jan * * * *", "minute (field 1 of 5) \"jan\": expected a number, not \"jan\"");
	BAD("* * * foo *", "month (field 4 of 5) \"foo\": \"foo\" is not a month name");
	BAD("* * * janx *", "\"janx\" is not a month name");
	BAD("* * * january *", "\"january\" is not a month name");
	BAD("* * * ja *", "\"ja\" is not a month name");
	BAD("* * * * jan", "\"jan\" is not a day name");
	BAD("* * * mon *", "\"mon\" is not a month name");
	BAD("* * * * monday", "\"monday\" is not a day name");
	BAD("* * * jan1 *", "unexpected \"1\" in \"jan1\"");

	/* Macros. */
	BAD("@", "unknown macro \"@\"");
	BAD("@foo", "unknown macro \"@foo\"");
	BAD("@every5m", "unknown macro \"@every5m\"");
	BAD("@daily x", "unexpected \"x\" after @daily");
	BAD("@hourly 0", "unexpected \"0\" after @hourly");
	BAD("0 @daily", "got 2");
	BAD("@every", "@every needs a duration");
	BAD("@every 5m 3s", "@every takes one duration, got \"3s\" after it");
	BAD("@every 0s", "@every \"0s\": shorter than 1ms");
	BAD("@every 0ms", "shorter than 1ms");
	BAD("@every 0d0h", "shorter than 1ms");
	BAD("@every 366d", "@every \"366d\": longer than 365d");
	BAD("@every 365d1ms", "longer than 365d");
	BAD("@every 8761h", "longer than 365d");
	BAD("@every 99999999999999999999999d", "longer than 365d");
	BAD("@every 99999999999999999999999ms", "longer than 365d");
	BAD("@every 5", "\"5\" needs a unit");
	BAD("@every 1h30", "\"30\" needs a unit");
	BAD("@every m", "expected a number at \"m\"");
	BAD("@every -5m", "expected a number at \"-5m\"");
	BAD("@every 1.5h", "\"1\" needs a unit");
	BAD("@every 5x", "unknown unit \"x\"");
	BAD("@every 5us", "unknown unit \"us\"");
	BAD("@every 5min", "unknown unit \"min\"");
	BAD("@every 2M", "unknown unit \"M\"");
	BAD("@every 1H", "unknown unit \"H\"");
	BAD("@every 1s1m", "\"1m\": units must go from largest to smallest, each once");
	BAD("@every 1m1m", "\"1m\": units must go");
	BAD("@every 1ms1s", "units must go");
}

/* ------------------------------------------------------------------------
 * Known next ticks
 */

static void test_known(void)
{
	/* Saturday 2024-01-06 10:07:30 UTC. */
	const uint64_t E = at(2024, 1, 6, 10, 7, 30);
	char b[64];

	CHECKF(strstr(show(b, sizeof b, E), "Sat"), "%s", b);
	CHECK_EQU(E, 1704535650ull * NS);

	/* Steps, and "strictly after". */
	NEXT("*/15 * * * *", E, at(2024, 1, 6, 10, 15, 0));
	NEXT("*/15 * * * *", at(2024, 1, 6, 10, 15, 0), at(2024, 1, 6, 10, 30, 0));
	NEXT("*/15 * * * *", at(2024, 1, 6, 10, 15, 0) - 1, at(2024, 1, 6, 10, 15, 0));
	NEXT("*/15 * * * *", at(2024, 1, 6, 10, 59, 59) + 999999999, at(2024, 1, 6, 11, 0, 0));
	NEXT("*/15 * * * *", at(2023, 12, 31, 23, 59, 0), at(2024, 1, 1, 0, 0, 0));
	NEXT("* * * * *", E, at(2024, 1, 6, 10, 8, 0));
	NEXT("* * * * *", at(2024, 1, 6, 10, 8, 0), at(2024, 1, 6, 10, 9, 0));
	NEXT("7 10 * * *", E, at(2024, 1, 7, 10, 7, 0));
	NEXT("8 10 * * *", E, at(2024, 1, 6, 10, 8, 0));
	NEXT("5-10/2 * * * *", E, at(2024, 1, 6, 10, 9, 0));
	NEXT("5/20 * * * *", E, at(2024, 1, 6, 10, 25, 0));
	NEXT("0 0 * * *", 0, at(1970, 1, 2, 0, 0, 0));
	NEXT("* * * * *", 0, 60 * NS);

	/* Weekdays over a weekend. */
	NEXT("0 9 * * 1-5", E, at(2024, 1, 8, 9, 0, 0));
	NEXT("0 9 * * 1-5", at(2024, 1, 12, 9, 0, 0), at(2024, 1, 15, 9, 0, 0));
	NEXT("0 9 * * 1-5", at(2024, 1, 12, 8, 59, 59), at(2024, 1, 12, 9, 0, 0));
	NEXT("0 9 * * mon-fri", at(2024, 1, 12, 9, 0, 0), at(2024, 1, 15, 9, 0, 0));
	NEXT("30 8 * * sat-7", E, at(2024, 1, 7, 8, 30, 0));
	NEXT("30 8 * * sat,SUN", at(2024, 1, 7, 8, 30, 0), at(2024, 1, 13, 8, 30, 0));
	NEXT("0 0 * * 7", E, at(2024, 1, 7, 0, 0, 0));
	NEXT("0 0 * * 0", E, at(2024, 1, 7, 0, 0, 0));

	/* Month ends and leap years. */
	NEXT("0 0 1 * *", at(2024, 1, 31, 23, 59, 59) + 500000000, at(2024, 2, 1, 0, 0, 0));
	NEXT("0 0 1 * *", at(2024, 2, 1, 0, 0, 0), at(2024, 3, 1, 0, 0, 0));
	NEXT("0 0 1 * *", at(2024, 2, 28, 12, 0, 0), at(2024, 3, 1, 0, 0, 0));
	NEXT("0 0 1 * *", at(2023, 2, 28, 12, 0, 0), at(2023, 3, 1, 0, 0, 0));
	NEXT("0 0 1 * *", at(2024, 12, 31, 23, 0, 0), at(2025, 1, 1, 0, 0, 0));
	NEXT("0 0 29 * *", at(2023, 1, 30, 0, 0, 0), at(2023, 3, 29, 0, 0, 0));
	NEXT("0 0 29 * *", at(2024, 1, 30, 0, 0, 0), at(2024, 2, 29, 0, 0, 0));
	NEXT("0 0 31 * *", at(2024, 1, 31, 0, 0, 0), at(2024, 3, 31, 0, 0, 0));
	NEXT("0 0 31 * *", at(2024, 3, 31, 0, 0, 0), at(2024, 5, 31, 0, 0, 0));
	NEXT("0 0 30 * *", at(2100, 1, 31, 0, 0, 0), at(2100, 3, 30, 0, 0, 0));
	NEXT("59 23 28-31 2 *", at(2023, 2, 28, 23, 59, 0), at(2024, 2, 28, 23, 59, 0));
	NEXT("59 23 28-31 2 *", at(2024, 2, 28, 23, 59, 0), at(2024, 2, 29, 23, 59, 0));

	/* Feb 29: the next leap year, 2000 is one and 2100 is not. */
	NEXT("30 2 29 2 *", E, at(2024, 2, 29, 2, 30, 0));
	NEXT("30 2 29 2 *", at(2024, 2, 29, 2, 30, 0), at(2028, 2, 29, 2, 30, 0));
	NEXT("30 2 29 2 *", at(2025, 1, 1, 0, 0, 0), at(2028, 2, 29, 2, 30, 0));
	NEXT("0 0 29 2 *", at(1999, 6, 1, 0, 0, 0), at(2000, 2, 29, 0, 0, 0));
	NEXT("0 0 29 2 *", at(2100, 1, 1, 0, 0, 0), at(2104, 2, 29, 0, 0, 0));
	NEXT("0 0 29 2 *", at(2099, 3, 1, 0, 0, 0), at(2104, 2, 29, 0, 0, 0));
	/* 2096-03-01 to 2104-02-29 is more than the 5 years searched. */
	NEXT("0 0 29 2 *", at(2096, 3, 1, 0, 0, 0), 0);

	/* Never. */
	NEXT("0 0 31 2 *", E, 0);
	NEXT("0 0 30 2 *", E, 0);
	NEXT("* * 31 4,6,9,11 *", E, 0);
	NEXT("0 0 30,31 feb *", at(2000, 1, 1, 0, 0, 0), 0);
	/* ... unless day-of-week adds days (the OR rule). */
	NEXT("0 0 31 2 mon", E, at(2024, 2, 5, 0, 0, 0));
	NEXT("0 0 31 2 mon", at(2024, 2, 28, 0, 0, 0), at(2025, 2, 3, 0, 0, 0));

	/* The day-of-month/day-of-week OR rule. */
	NEXT("0 12 13 * 5", E, at(2024, 1, 12, 12, 0, 0));
	NEXT("0 12 13 * 5", at(2024, 1, 12, 12, 0, 0), at(2024, 1, 13, 12, 0, 0));
	NEXT("0 12 13 * 5", at(2024, 1, 13, 12, 0, 0), at(2024, 1, 19, 12, 0, 0));
	NEXT("0 12 13 * *", E, at(2024, 1, 13, 12, 0, 0));
	NEXT("0 12 * * 5", E, at(2024, 1, 12, 12, 0, 0));
	NEXT("0 12 * * 5", at(2024, 1, 12, 12, 0, 0), at(2024, 1, 19, 12, 0, 0));
	NEXT("0 12 */2 * 5", E, at(2024, 1, 7, 12, 0, 0));     /* "*\/2" restricts */
	NEXT("0 12 */1 * 5", E, at(2024, 1, 12, 12, 0, 0));    /* "*\/1" does not */
	NEXT("0 12 1-31 * 5", E, at(2024, 1, 6, 12, 0, 0));
	NEXT("0 12 * * 0-7", E, at(2024, 1, 6, 12, 0, 0));
	NEXT("0 12 20 * 0-7", at(2024, 1, 6, 13, 0, 0), at(2024, 1, 7, 12, 0, 0));
	NEXT("0 0 1 * mon", at(2024, 2, 1, 0, 0, 0), at(2024, 2, 5, 0, 0, 0));
	NEXT("0 0 1 * mon", at(2024, 3, 25, 0, 0, 0), at(2024, 4, 1, 0, 0, 0));

	/* Names. */
	NEXT("0 0 * jan-mar mon", at(2024, 3, 26, 0, 0, 0), at(2025, 1, 6, 0, 0, 0));
	NEXT("0 0 1 JAN,Jul *", E, at(2024, 7, 1, 0, 0, 0));
	NEXT("0 0 1 jun-aug/2 *", E, at(2024, 6, 1, 0, 0, 0));
	NEXT("0 0 1 jun-aug/2 *", at(2024, 6, 1, 0, 0, 0), at(2024, 8, 1, 0, 0, 0));
	NEXT("0 6 * * tue/2", E, at(2024, 1, 9, 6, 0, 0));            /* Tue, Thu, Sat */
	NEXT("0 6 * * tue/2", at(2024, 1, 11, 6, 0, 0), at(2024, 1, 13, 6, 0, 0));

	/* Six fields. */
	NEXT("*/10 * * * * *", E, at(2024, 1, 6, 10, 7, 40));
	NEXT("*/10 * * * * *", E + 500000000, at(2024, 1, 6, 10, 7, 40));
	NEXT("*/10 * * * * *", at(2024, 1, 6, 10, 7, 50), at(2024, 1, 6, 10, 8, 0));
	NEXT("* * * * * *", E, E + NS);
	NEXT("* * * * * *", E - 1, E);
	NEXT("15 30 10 * * *", E, at(2024, 1, 6, 10, 30, 15));
	NEXT("15 7 10 * * *", E, at(2024, 1, 7, 10, 7, 15));
	NEXT("45 7 10 * * *", E, at(2024, 1, 6, 10, 7, 45));
	NEXT("0 0 0 1 1 *", E, at(2025, 1, 1, 0, 0, 0));
	NEXT("59 59 23 31 12 *", E, at(2024, 12, 31, 23, 59, 59));
	NEXT("0 0 0 29 2 *", at(2024, 2, 29, 0, 0, 0), at(2028, 2, 29, 0, 0, 0));
	NEXT("0 0 0 31 2 *", E, 0);

	/* Macros. */
	NEXT("@hourly", E, at(2024, 1, 6, 11, 0, 0));
	NEXT("@daily", E, at(2024, 1, 7, 0, 0, 0));
	NEXT("@midnight", E, at(2024, 1, 7, 0, 0, 0));
	NEXT("@weekly", E, at(2024, 1, 7, 0, 0, 0));
	NEXT("@weekly", at(2024, 1, 7, 0, 0, 0), at(2024, 1, 14, 0, 0, 0));
	NEXT("@monthly", E, at(2024, 2, 1, 0, 0, 0));
	NEXT("@yearly", E, at(2025, 1, 1, 0, 0, 0));
	NEXT("@annually", at(2025, 1, 1, 0, 0, 0), at(2026, 1, 1, 0, 0, 0));

	/* @every: multiples of the period since the epoch, strictly after. */
	NEXT("@every 250ms", 0, 250 * MS);
	NEXT("@every 250ms", 1000, 250 * MS);
	NEXT("@every 250ms", 250 * MS - 1, 250 * MS);
	NEXT("@every 250ms", 250 * MS, 500 * MS);
	NEXT("@every 250ms", E, E + 250 * MS);
	NEXT("@every 250ms", E + 100 * MS, E + 250 * MS);
	NEXT("@every 250ms", E + 750 * MS, E + NS);
	NEXT("@every 10s", E, at(2024, 1, 6, 10, 7, 40));
	NEXT("@every 5m", E, at(2024, 1, 6, 10, 10, 0));
	NEXT("@every 2h", E, at(2024, 1, 6, 12, 0, 0));
	NEXT("@every 1d", E, at(2024, 1, 7, 0, 0, 0));
	NEXT("@every 1h30m", E, at(2024, 1, 6, 10, 30, 0));   /* 1704535650 / 5400 -> 315655 */
	NEXT("@every 7ms", E, (E / (7 * MS) + 1) * 7 * MS);
	NEXT("@every 365d", 0, 365 * DAY * NS);

	/* Every @every tick from random instants is aligned, after, within one period. */
	static const char *const every[] = { "@every 250ms", "@every 1ms", "@every 7s", "@every 1h30m",
					     "@every 3d", "@every 365d", "@every 999ms" };
	uint64_t rng = 12345;
	for (unsigned i = 0; i < sizeof every / sizeof every[0]; i++) {
		struct tq__cron c = parse_ok(every[i]);
		for (int k = 0; k < 2000; k++) {
			uint64_t a = tqt_rand(&rng) % (UINT64_MAX / 2);
			uint64_t n = tq__cron_next(&c, a);
			CHECKF(n > a && n - a <= c.every_ns && n % c.every_ns == 0,
			       "%s after %llu: %llu", every[i], (unsigned long long)a,
			       (unsigned long long)n);
		}
	}

	/* No overflow at the end of uint64_t nanoseconds (year 2554). */
	struct tq__cron c = parse_ok("@every 1ms");
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX), 0);
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX - MS), UINT64_MAX / MS * MS);
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX / MS * MS), 0);
	c = parse_ok("* * * * * *");
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX), 0);
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX / NS * NS - NS - 1), UINT64_MAX / NS * NS - NS);
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX / NS * NS - NS), UINT64_MAX / NS * NS);
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX / NS * NS), 0);
	c = parse_ok("@yearly");
	CHECK_EQU(tq__cron_next(&c, UINT64_MAX - 100 * DAY * NS), 0);

	/* A hand-made struct with an empty field never matches; NULL neither. */
	c = parse_ok("* * * * *");
	c.hour = 0;
	CHECK_EQU(tq__cron_next(&c, E), 0);
	c = parse_ok("* * * * *");
	c.second = 1ull << 60;      /* only an invalid bit */
	CHECK_EQU(tq__cron_next(&c, E), 0);
	c = parse_ok("0 0 1 * 1");
	c.dom = 0;
	c.dow = 0;
	CHECK_EQU(tq__cron_next(&c, E), 0);
	CHECK_EQU(tq__cron_next(NULL, E), 0);
}

/* Specs that match rarely or never cost well under a millisecond. */
static void test_fast(void)
{
	static const char *const specs[] = {
		"0 0 31 2 *", "0 0 30 2 *", "59 59 23 31 2 *", "* * 31 4,6,9,11 *", "0 0 29 2 *",
		"59 23 31 12 *", "59 59 23 29 2 *", "0 0 29 2 1", "0 0 31 2 */7",
	};
	uint64_t rng = 99, worst = 0;
	const unsigned rounds = 2000;

	for (unsigned i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct tq__cron c = parse_ok(specs[i]);
		struct timespec t0, t1;
		uint64_t sink = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (unsigned k = 0; k < rounds; k++)
			sink += tq__cron_next(&c, tqt_rand(&rng) % (15000000000ull * NS));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * NS + (uint64_t)t1.tv_nsec -
			      (uint64_t)t0.tv_nsec;
		printf("  %-20s %6.2f us per call (sum %llu)\n", specs[i], ns / 1e3 / rounds,
		       (unsigned long long)(sink & 1));
		if (ns / rounds > worst)
			worst = ns / rounds;
	}
	CHECKF(worst < 1000000, "%llu ns per call", (unsigned long long)worst);
}

/* ------------------------------------------------------------------------
 * Random specs against a naive search
 */

struct rfield {
	unsigned lo, hi, top;
	const char *const *names;
	unsigned base, nnames;
};

static const char *const mnames[] = { "jan", "feb", "mar", "apr", "may", "jun",
				      "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const dnames[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static const struct rfield rfields[6] = {
	{ 0, 59, 59, NULL, 0, 0 },  { 0, 59, 59, NULL, 0, 0 }, { 0, 23, 23, NULL, 0, 0 },
	{ 1, 31, 31, NULL, 0, 0 },  { 1, 12, 12, mnames, 1, 12 }, { 0, 7, 6, dnames, 0, 7 },
};

struct want {
	uint64_t mask[6];
	bool star[6];
	bool six;
	char spec[TQ__CRON_SPEC_MAX + 1];
};

static unsigned pick(uint64_t *rng, unsigned lo, unsigned hi)
{
	return lo + (unsigned)(tqt_rand(rng) % (hi - lo + 1));
}

/* A value as a number or, sometimes, a name in random case. */
static int put_value(char *p, size_t n, uint64_t *rng, const struct rfield *f, unsigned v)
{
	if (f->names && v - f->base < f->nnames && tqt_rand(rng) % 3 == 0) {
		const char *w = f->names[v - f->base];
		char s[4];
		for (int i = 0; i < 3; i++)
			s[i] = tqt_rand(rng) % 4 == 0 ? (char)(w[i] - 'a' + 'A') : w[i];
		s[3] = 0;
		return snprintf(p, n, "%s", s);
	}
	return snprintf(p, n, tqt_rand(rng) % 10 == 0 ? "0%u" : "%u", v);
}

/* One random field, its text appended to out, its set in *mask. A sparse
 * field is a list of single values. */
static void gen_field(uint64_t *rng, unsigned fi, bool sparse, char *out, size_t outlen,
		      uint64_t *mask, bool *star)
{
	const struct rfield *f = &rfields[fi];
	unsigned items = tqt_rand(rng) % 4 == 0 ? pick(rng, 2, 3) : 1;
	unsigned span = f->top - f->lo + 1;
	size_t len = strlen(out);

	*mask = 0;
	*star = false;
	for (unsigned it = 0; it < items; it++) {
		char *p = out + len;
		size_t n = outlen - len;
		unsigned lo, hi, step = 1, kind = sparse ? 2 : (unsigned)(tqt_rand(rng) % 8);
		int w = 0;
		if (it)
			w += snprintf(p + w, n - w, ",");
		/* Small steps mostly, so that specs match often enough. */
		unsigned s = tqt_rand(rng) % 4 ? pick(rng, 1, span < 6 ? span : 6) : pick(rng, 1, span);
		switch (kind) {
		case 0:
		case 1: /* '*' */
			lo = f->lo;
			hi = f->top;
			w += snprintf(p + w, n - w, "*");
			if (items == 1)
				*star = true;
			break;
		case 2: /* N */
			lo = hi = pick(rng, f->lo, f->hi);
			w += put_value(p + w, n - w, rng, f, lo);
			break;
		case 3: /* A-B */
		case 4: /* A-B/S */
			lo = pick(rng, f->lo, f->hi);
			hi = pick(rng, lo, f->hi);
			w += put_value(p + w, n - w, rng, f, lo);
			w += snprintf(p + w, n - w, "-");
			w += put_value(p + w, n - w, rng, f, hi);
			if (kind == 4) {
				step = s;
				w += snprintf(p + w, n - w, "/%u", step);
			}
			break;
		case 5: /* N/S */
			lo = pick(rng, f->lo, f->top);
			hi = f->top;
			step = s;
			w += put_value(p + w, n - w, rng, f, lo);
			w += snprintf(p + w, n - w, "/%u", step);
			break;
		default: /* '*' /S */
			lo = f->lo;
			hi = f->top;
			step = s;
			w += snprintf(p + w, n - w, "*/%u", step);
			if (items == 1 && step == 1)
				*star = true;
			break;
		}
		for (unsigned v = lo; v <= hi; v += step)
			*mask |= 1ull << (fi == 5 && v == 7 ? 0 : v);
		len += (size_t)w;
		CHECK(len < outlen);
	}
}

static void gen_spec(uint64_t *rng, struct want *w)
{
	char buf[256];

	for (;;) {
		memset(w, 0, sizeof *w);
		buf[0] = 0;
		w->six = tqt_rand(rng) % 3 == 0;
		/* Some specs match rarely (a few days a year, or never): day-of-month,
		 * month and day-of-week are lists of single values, or '*'. */
		bool sparse = tqt_rand(rng) % 3 == 0;
		w->mask[0] = 1;
		for (unsigned fi = w->six ? 0 : 1; fi < 6; fi++) {
			if (strlen(buf))
				strcat(buf, tqt_rand(rng) % 5 ? " " : " \t ");
			/* Often plain '*', so that specs are dense. */
			if (tqt_rand(rng) % (sparse && fi >= 3 ? 4 : 3) == 0) {
				strcat(buf, "*");
				w->mask[fi] = bits(rfields[fi].lo, rfields[fi].top);
				w->star[fi] = true;
				continue;
			}
			gen_field(rng, fi, sparse && fi >= 3, buf, sizeof buf, &w->mask[fi],
				  &w->star[fi]);
		}
		if (strlen(buf) <= TQ__CRON_SPEC_MAX) {
			memcpy(w->spec, buf, strlen(buf) + 1);
			return;
		}
	}
}

/* Walk the days one by one from the day of the first candidate second; on
 * a day that matches, walk its hours, in a matching hour its minutes, and
 * in a matching minute (six fields) its seconds. */
static uint64_t naive_next(const struct want *w, uint64_t after)
{
	uint64_t t0 = after / NS + 1, limit = after / NS + TQ__CRON_HORIZON_DAYS * DAY;
	unsigned step = w->six ? 1 : 60;

	for (uint64_t day = t0 / DAY * DAY; day <= limit; day += DAY) {
		time_t tt = (time_t)day;
		struct tm tm;
		gmtime_r(&tt, &tm);
		if (!(w->mask[4] >> (tm.tm_mon + 1) & 1))
			continue;
		bool dm = w->mask[3] >> tm.tm_mday & 1, wm = w->mask[5] >> tm.tm_wday & 1;
		bool ok = w->star[3] ? (w->star[5] ? true : wm) : (w->star[5] ? dm : dm || wm);
		if (!ok)
			continue;
		uint64_t s = day < t0 ? t0 - day : 0;
		s = (s + step - 1) / step * step;
		while (s < DAY) {
			uint64_t t = day + s;
			if (t > limit || t > UINT64_MAX / NS)
				return 0;
			if (!(w->mask[2] >> (s / 3600) & 1))
				s = (s / 3600 + 1) * 3600;
			else if (!(w->mask[1] >> (s / 60 % 60) & 1))
				s = (s / 60 + 1) * 60;
			else if (w->mask[0] >> (s % 60) & 1)
				return t * NS;
			else
				s += step;
		}
	}
	return 0;
}

static uint64_t random_instant(uint64_t *rng)
{
	uint64_t r = tqt_rand(rng);
	switch (r % 8) {
	case 0: /* on a whole minute */
		return tqt_rand(rng) % 13000000000ull / 60 * 60 * NS;
	case 1: /* on a whole second */
		return tqt_rand(rng) % 13000000000ull * NS;
	case 2: /* near the end of the range */
		return UINT64_MAX - tqt_rand(rng) % (3000ull * DAY * NS);
	case 3: /* around now */
		return (1700000000ull + tqt_rand(rng) % 400000000ull) * NS + tqt_rand(rng) % NS;
	default:
		return tqt_rand(rng) % (13000000000ull * NS);
	}
}

static void test_random(void)
{
	uint64_t seed = tqt_seed(), rng = seed;
	const unsigned nspecs = TQT_SANITIZED ? 300 : 600;
	unsigned nonzero = 0, zero = 0, far = 0;

	printf("  seed %llu (TQ_TEST_SEED=%llu repeats it)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	for (unsigned i = 0; i < nspecs; i++) {
		struct want w;
		gen_spec(&rng, &w);
		struct tq__cron c = parse_ok(w.spec);
		static const char *const fname[] = { "second", "minute", "hour", "dom", "month", "dow" };
		uint64_t got[6] = { c.second, c.minute, c.hour, c.dom, c.month, c.dow };
		for (int f = 0; f < 6; f++)
			CHECKF(got[f] == w.mask[f], "\"%s\": %s %#llx, want %#llx (seed %llu)", w.spec,
			       fname[f], (unsigned long long)got[f], (unsigned long long)w.mask[f],
			       (unsigned long long)seed);
		unsigned flags = (w.star[3] ? TQ__CRON_DOM_STAR : 0) | (w.star[5] ? TQ__CRON_DOW_STAR : 0);
		CHECKF(c.flags == flags, "\"%s\": flags %u, want %u (seed %llu)", w.spec, c.flags,
		       flags, (unsigned long long)seed);
		CHECK_EQU(c.every_ns, 0);

		for (int k = 0; k < 4; k++) {
			uint64_t after = random_instant(&rng);
			/* Then follow a few consecutive ticks. */
			for (int chain = 0; chain < 4; chain++) {
				uint64_t n = tq__cron_next(&c, after), want = naive_next(&w, after);
				if (n != want) {
					char a[64], g[64], x[64];
					FAIL("\"%s\" after %s (%llu): got %s, naive %s (seed %llu)", w.spec,
					     show(a, sizeof a, after), (unsigned long long)after,
					     show(g, sizeof g, n), show(x, sizeof x, want),
					     (unsigned long long)seed);
				}
				if (!n) {
					zero++;
					break;
				}
				nonzero++;
				far += n - after > 31 * DAY * NS;
				CHECK(n > after && n % NS == 0);
				after = n;
			}
		}
	}
	printf("  %u specs: %u ticks compared (%u over a month away), %u \"none\"\n", nspecs,
	       nonzero, far, zero);
	CHECK(nonzero > nspecs);
}

int main(void)
{
	tqt_init("cron");
	tqt_guard(60);
	test_parse_fields();
	test_parse_errors();
	test_known();
	test_fast();
	test_random();
	return 0;
}

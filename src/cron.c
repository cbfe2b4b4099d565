/* SPDX-License-Identifier: MIT */
/*
 * cron.c - cron schedules: the parser (a spec to bitmaps of matching
 * seconds, minutes, hours, days and months, or a fixed period for
 * "@every") and the next-tick calculator of the periodic task scheduler.
 * The syntax is in cron.h and docs/schedules.md.
 *
 * The calculator does its own civil-date arithmetic (days since the epoch
 * to and from year, month, day, after Howard Hinnant's algorithms) rather
 * than gmtime_r()/timegm(): it is pure, needs no time zone or locale, and
 * cannot fail. It never steps through time unit by unit: it moves to the
 * next matching month, then takes the first matching day from a bitmap of
 * that month's days, then the first matching hour, minute and second with
 * a bit scan. A field that runs out carries into the next larger one,
 * which is then a fresh start and always finds a match, so a call costs a
 * few steps per month searched, and at most 5 years of months are searched
 * (TQ__CRON_HORIZON_DAYS): a spec that never matches ("0 0 31 2 *") costs
 * about 60 months' worth of bit operations.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cron.h"

#define NS_PER_SEC 1000000000ull
#define NS_PER_MS  1000000ull
#define DAY_SEC    86400ull
#define EVERY_MAX  (365ull * DAY_SEC * NS_PER_SEC)

/* ------------------------------------------------------------------------
 * Parsing
 */

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_N };

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};
static const char *const day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static const struct field {
	const char *name;
	unsigned lo, hi;            /* values accepted */
	unsigned top;               /* where '*' and "N/S" end */
	const char *const *names;   /* names[i] stands for names_base + i */
	unsigned names_base, nnames;
	const char *what;           /* "a month name" */
} fields[F_N] = {
	[F_SEC] = { "second", 0, 59, 59, NULL, 0, 0, NULL },
	[F_MIN] = { "minute", 0, 59, 59, NULL, 0, 0, NULL },
	[F_HOUR] = { "hour", 0, 23, 23, NULL, 0, 0, NULL },
	[F_DOM] = { "day-of-month", 1, 31, 31, NULL, 0, 0, NULL },
	[F_MON] = { "month", 1, 12, 12, month_names, 1, 12, "a month" },
	[F_DOW] = { "day-of-week", 0, 7, 6, day_names, 0, 7, "a day" },
};

/* Where a message comes from: one field of the spec. */
struct ctx {
	char *err;
	size_t errlen;
	const struct field *f;
	unsigned pos, nfields;      /* 1-based position, field count */
	const char *text;           /* the whole field */
};

static __attribute__((format(printf, 3, 4)))
int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A message about field x: "hour (field 2 of 5) "1-24": ...". */
static __attribute__((format(printf, 2, 3)))
int ferr(const struct ctx *x, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fail(x->err, x->errlen, "%s (field %u of %u) \"%s\": %s", x->f->name, x->pos,
		    x->nfields, x->text, msg);
}

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_alpha(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
static char lower(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch; }
static bool is_space(char ch) { return ch == ' ' || ch == '\t'; }

/* s[0..n) equals the lower-case word w, ignoring case (ASCII only, no locale). */
static bool word_is(const char *s, size_t n, const char *w)
{
	if (strlen(w) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(s[i]) != w[i])
			return false;
	return true;
}

/* Digits at *pp (before end), saturating well above any valid value. */
static unsigned long long digits(const char **pp, const char *end)
{
	unsigned long long n = 0;
	const char *p = *pp;

	while (p < end && is_digit(*p)) {
		if (n < 1000000000000ull)
			n = n * 10 + (unsigned)(*p - '0');
		p++;
	}
	*pp = p;
	return n;
}

/* A number or a name at *pp, within the field's range. item is the list
 * item [item, end) it is part of, for messages. */
static int parse_value(const struct ctx *x, const char **pp, const char *item, const char *end,
		       unsigned *v)
{
	const struct field *f = x->f;
	const char *p = *pp, *s = p;

	if (p < end && is_digit(*p)) {
		unsigned long long n = digits(&p, end);
		if (n < f->lo || n > f->hi)
			return ferr(x, "%.*s is out of range %u-%u", (int)(p - s), s, f->lo, f->hi);
		*v = (unsigned)n;
	} else if (p < end && is_alpha(*p)) {
		unsigned i;
		while (p < end && is_alpha(*p))
			p++;
		if (!f->names)
			return ferr(x, "expected a number, not \"%.*s\"", (int)(p - s), s);
		for (i = 0; i < f->nnames; i++)
			if (word_is(s, (size_t)(p - s), f->names[i]))
				break;
		if (i == f->nnames)
			return ferr(x, "\"%.*s\" is not %s name", (int)(p - s), s, f->what);
		*v = f->names_base + i;
	} else {
		return ferr(x, "expected a number%s at \"%.*s\" in \"%.*s\"",
			    f->names ? " or a name" : "", (int)(end - p), p, (int)(end - item), item);
	}
	*pp = p;
	return 0;
}

/* One list item [p, end) into *mask. *star: it is "*" or "*\/1". */
static int parse_item(const struct ctx *x, const char *p, const char *end, uint64_t *mask,
		      bool *star)
{
	const struct field *f = x->f;
	const char *q = p;
	unsigned lo, hi, step = 1, span = f->top - f->lo + 1;
	bool single = false;
	int r;

	*star = false;
	if (q < end && *q == '*') {
		lo = f->lo;
		hi = f->top;
		q++;
		*star = true;
	} else {
		if ((r = parse_value(x, &q, p, end, &lo)) < 0)
			return r;
		if (q < end && *q == '-') {
			q++;
			if ((r = parse_value(x, &q, p, end, &hi)) < 0)
				return r;
			if (hi < lo)
				return ferr(x, "range \"%.*s\" is reversed", (int)(q - p), p);
		} else {
			hi = lo;
			single = true;
		}
	}
	if (q < end && *q == '/') {
		const char *s = ++q;
		unsigned long long n = digits(&q, end);
		if (q == s)
			return ferr(x, "expected a step after '/' in \"%.*s\"", (int)(end - p), p);
		if (n < 1 || n > span)
			return ferr(x, "step %.*s in \"%.*s\" is out of range 1-%u", (int)(q - s), s,
				    (int)(end - p), p, span);
		step = (unsigned)n;
		if (single) /* N/S: from N to the last value */
			hi = lo > f->top ? lo : f->top;
		if (step != 1)
			*star = false;
	}
	if (q != end)
		return ferr(x, "unexpected \"%.*s\" in \"%.*s\"", (int)(end - q), q, (int)(end - p), p);
	for (unsigned v = lo; v <= hi; v += step)
		*mask |= 1ull << v;
	return 0;
}

/* A whole field: a comma-separated list of items. */
static int parse_field(const struct ctx *x, uint64_t *mask, bool *star)
{
	const char *p = x->text;
	unsigned items = 0;
	bool item_star = false;
	int r;

	*mask = 0;
	for (;;) {
		const char *e = strchr(p, ',');
		if (!e)
			e = p + strlen(p);
		if (e == p)
			return ferr(x, "empty list item");
		if ((r = parse_item(x, p, e, mask, &item_star)) < 0)
			return r;
		items++;
		if (!*e)
			break;
		p = e + 1;
	}
	*star = items == 1 && item_star;
	return 0;
}

/* "@every" durations: terms <number><unit>, units from largest to smallest. */
static int parse_every(const char *d, uint64_t *ns, char *err, size_t errlen)
{
	static const struct { const char *name; uint64_t ns; } units[] = {
		{ "d", DAY_SEC * NS_PER_SEC }, { "h", 3600 * NS_PER_SEC },
		{ "m", 60 * NS_PER_SEC },      { "s", NS_PER_SEC },
		{ "ms", NS_PER_MS },
	};
	const unsigned nunits = sizeof units / sizeof units[0];
	const char *p = d;
	uint64_t total = 0;
	unsigned last = 0;      /* index + 1 of the previous unit */

	while (*p) {
		const char *num = p, *u;
		unsigned long long n = digits(&p, p + strlen(p));
		unsigned i;

		if (p == num)
			return fail(err, errlen, "@every \"%s\": expected a number at \"%s\"", d, p);
		u = p;
		while (is_alpha(*p))
			p++;
		if (p == u)
			return fail(err, errlen, "@every \"%s\": \"%.*s\" needs a unit (d, h, m, s or ms)",
				    d, (int)(p - num), num);
		/* Units are lower case only: "M" could be read as months. */
		for (i = 0; i < nunits; i++)
			if (strlen(units[i].name) == (size_t)(p - u) &&
			    memcmp(u, units[i].name, (size_t)(p - u)) == 0)
				break;
		if (i == nunits)
			return fail(err, errlen, "@every \"%s\": unknown unit \"%.*s\" (use d, h, m, s or ms)",
				    d, (int)(p - u), u);
		if (i + 1 <= last)
			return fail(err, errlen,
				    "@every \"%s\": \"%.*s\": units must go from largest to smallest, each once",
				    d, (int)(p - num), num);
		last = i + 1;
		if (n > EVERY_MAX / units[i].ns || total + n * units[i].ns > EVERY_MAX)
			return fail(err, errlen, "@every \"%s\": longer than 365d", d);
		total += n * units[i].ns;
	}
	if (total < NS_PER_MS)
		return fail(err, errlen, "@every \"%s\": shorter than 1ms", d);
	*ns = total;
	return 0;
}

static int parse_macro(char **tok, unsigned n, struct tq__cron *c, char *err, size_t errlen)
{
	static const struct { const char *name, *spec; } macros[] = {
		{ "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" },
		{ "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
		{ "@daily", "0 0 * * *" },   { "@midnight", "0 0 * * *" },
		{ "@hourly", "0 * * * *" },
	};
	const char *m = tok[0];

	if (word_is(m, strlen(m), "@every")) {
		if (n < 2)
			return fail(err, errlen, "@every needs a duration, e.g. \"@every 5m\"");
		if (n > 2)
			return fail(err, errlen, "@every takes one duration, got \"%s\" after it",
				    tok[2]);
		memset(c, 0, sizeof *c);
		return parse_every(tok[1], &c->every_ns, err, errlen);
	}
	for (unsigned i = 0; i < sizeof macros / sizeof macros[0]; i++)
		if (word_is(m, strlen(m), macros[i].name)) {
			if (n != 1)
				return fail(err, errlen, "unexpected \"%s\" after %s", tok[1], m);
			return tq__cron_parse(macros[i].spec, c, err, errlen);
		}
	return fail(err, errlen,
		    "unknown macro \"%s\" (use @yearly, @annually, @monthly, @weekly, @daily, "
		    "@midnight, @hourly or @every)", m);
}

int tq__cron_parse(const char *spec, struct tq__cron *c, char *err, size_t errlen)
{
	char buf[TQ__CRON_SPEC_MAX + 1];
	char *tok[7];
	unsigned n = 0;
	struct tq__cron out;
	size_t len;
	int r;

	if (err && errlen)
		err[0] = 0;
	if (!spec || !c)
		return fail(err, errlen, "no schedule");
	len = strnlen(spec, sizeof buf);
	if (len > TQ__CRON_SPEC_MAX)
		return fail(err, errlen, "schedule is longer than %u bytes", TQ__CRON_SPEC_MAX);
	memcpy(buf, spec, len + 1);
	for (char *p = buf; *p;) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		if (n < sizeof tok / sizeof tok[0])
			tok[n] = p;
		n++;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = 0;
	}
	if (n == 0)
		return fail(err, errlen, "empty schedule");

	memset(&out, 0, sizeof out);
	if (tok[0][0] == '@') {
		if ((r = parse_macro(tok, n, &out, err, errlen)) < 0)
			return r;
		*c = out;
		return 0;
	}
	if (n != 5 && n != 6)
		return fail(err, errlen, "expected 5 fields (minute hour day-of-month month day-of-week), "
			    "6 (with seconds first) or an @macro, got %u", n);

	unsigned first = n == 6 ? F_SEC : F_MIN;
	uint64_t mask[F_N] = { [F_SEC] = 1 };
	bool star[F_N] = { false };
	for (unsigned i = 0; i < n; i++) {
		struct ctx x = { err, errlen, &fields[first + i], i + 1, n, tok[i] };
		if ((r = parse_field(&x, &mask[first + i], &star[first + i])) < 0)
			return r;
	}
	if (mask[F_DOW] & (1u << 7))   /* 7 is Sunday too */
		mask[F_DOW] = (mask[F_DOW] & 0x7f) | 1;

	out.second = mask[F_SEC];
	out.minute = mask[F_MIN];
	out.hour = (uint32_t)mask[F_HOUR];
	out.dom = (uint32_t)mask[F_DOM];
	out.month = (uint16_t)mask[F_MON];
	out.dow = (uint8_t)mask[F_DOW];
	out.flags = (uint8_t)((star[F_DOM] ? TQ__CRON_DOM_STAR : 0) |
			      (star[F_DOW] ? TQ__CRON_DOW_STAR : 0));
	*c = out;
	return 0;
}

/* ------------------------------------------------------------------------
 * Civil dates (proleptic Gregorian, UTC), after Howard Hinnant's
 * "chrono-compatible low-level date algorithms". Days count from
 * 1970-01-01; only dates from 1970 on occur here.
 */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);                           /* [0, 399] */
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;       /* [0, 365] */
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                 /* [0, 146096] */
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned char dim[13] = { 0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dim[m];
}

/* Bits 1..31: the days of month m of year y that match. */
static uint64_t day_mask(const struct tq__cron *c, uint64_t dom, uint64_t dow, int64_t y,
			 unsigned m)
{
	unsigned dim = days_in_month(y, m);
	uint64_t in_month = ((1ull << dim) - 1) << 1;
	uint64_t by_dow = 0;

	if (c->flags & TQ__CRON_DOW_STAR)
		return c->flags & TQ__CRON_DOM_STAR ? in_month : dom & in_month;
	/* 1970-01-01 was a Thursday (4). */
	unsigned wd = (unsigned)((days_from_civil(y, m, 1) % 7 + 7 + 4) % 7);
	for (unsigned d = 1; d <= dim; d++, wd = wd == 6 ? 0 : wd + 1)
		if (dow >> wd & 1)
			by_dow |= 1ull << d;
	return c->flags & TQ__CRON_DOM_STAR ? by_dow : (dom & in_month) | by_dow;
}

static unsigned lowest(uint64_t x) { return (unsigned)__builtin_ctzll(x); }

uint64_t tq__cron_next(const struct tq__cron *c, uint64_t after_ns)
{
	if (!c)
		return 0;
	if (c->every_ns) {
		uint64_t k = after_ns / c->every_ns + 1;
		return k > UINT64_MAX / c->every_ns ? 0 : k * c->every_ns;
	}

	/* Only the valid bits, so a hand-made struct cannot send us astray. */
	uint64_t sec = c->second & ((1ull << 60) - 1), min = c->minute & ((1ull << 60) - 1);
	uint64_t hour = c->hour & ((1ull << 24) - 1), mon = c->month & 0x1ffeull;
	uint64_t dom = c->dom & 0xfffffffeull, dow = c->dow & 0x7full;
	if (!sec || !min || !hour || !mon)
		return 0;

	uint64_t t0 = after_ns / NS_PER_SEC + 1;   /* whole seconds, strictly after */
	uint64_t limit = after_ns / NS_PER_SEC + TQ__CRON_HORIZON_DAYS * DAY_SEC;
	int64_t y;
	unsigned m, d, h = (unsigned)(t0 % DAY_SEC / 3600), mi = (unsigned)(t0 % 3600 / 60),
		   s = (unsigned)(t0 % 60);
	civil_from_days((int64_t)(t0 / DAY_SEC), &y, &m, &d);

	/* Each pass either finds the tick, or moves (d, h, mi, s) to the start
	 * of a later unit; only the whole-month moves can repeat many times,
	 * and the limit stops them. */
	for (;;) {
		uint64_t x;
		if ((uint64_t)days_from_civil(y, m, 1) * DAY_SEC > limit)
			return 0;
		if (!(mon >> m & 1))
			goto next_month;
		x = day_mask(c, dom, dow, y, m) & (~0ull << d);
		if (!x)
			goto next_month;
		if (lowest(x) != d) {
			d = lowest(x);
			h = mi = s = 0;
		}
		x = hour & (~0ull << h);
		if (!x) {
			d++;
			h = mi = s = 0;
			continue;
		}
		if (lowest(x) != h) {
			h = lowest(x);
			mi = s = 0;
		}
		x = min & (~0ull << mi);
		if (!x) {
			h++;
			mi = s = 0;
			continue;
		}
		if (lowest(x) != mi) {
			mi = lowest(x);
			s = 0;
		}
		x = sec & (~0ull << s);
		if (!x) {
			mi++;
			s = 0;
			continue;
		}
		s = lowest(x);
		uint64_t t = (uint64_t)days_from_civil(y, m, d) * DAY_SEC + h * 3600u + mi * 60u + s;
		if (t > limit || t > UINT64_MAX / NS_PER_SEC)
			return 0;
		return t * NS_PER_SEC;
next_month:
		d = 1;
		h = mi = s = 0;
		if (++m > 12) {
			m = 1;
			y++;
		}
	}
}

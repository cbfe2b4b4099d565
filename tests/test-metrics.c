/* SPDX-License-Identifier: MIT */
/*
 * test-metrics - tqd's Prometheus metrics: --metrics-listen refuses every
 * address that is not loopback (exit 2); a tqd with --metrics-listen
 * 127.0.0.1:0 and --metrics-file serves GET /metrics (200, the 0.0.4
 * content type), HEAD, 404 and 405 and 400; the exposition, from HTTP, from
 * the file and from `tq stats --prometheus`, parses under a strict parser
 * of the text format (and `promtool check metrics` when it is installed);
 * its figures are what a known workload did; idle clients are cut off at
 * the connection limit and after the timeout, and never stop tqd from
 * giving back a killed worker's tasks; SIGTERM removes the file.
 *
 * Run as: test-metrics PATH_TO_TQD [PATH_TO_TQ]
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tq-test.h"

static const char *tqd_path, *tq_path;
static char tmp[] = "/tmp/tq-test-metrics-XXXXXX";
static bool have_tmp;

static void remove_tmp(void)
{
	char cmd[128];

	if (!have_tmp || tqt_in_child())
		return;
	tqt_kill_children();     /* nobody writes there any more */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "test-metrics: could not remove %s\n", tmp);
}

/* ------------------------------------------------------------------------
 * Running programs
 */

static pid_t spawn(const char *path, const char *const *args, const char *out, const char *err)
{
	const char *argv[40];
	int n = 0;
	pid_t pid;

	argv[n++] = path;
	for (int i = 0; args[i] && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = tqt_fork();
	if (pid == 0) {
		int fo = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fo >= 0)
			dup2(fo, 1);
		if (fe >= 0)
			dup2(fe, 2);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int run(const char *path, const char *const *args, const char *out, const char *err)
{
	int st = 0;
	pid_t pid = spawn(path, args, out, err);

	CHECK_RET(tqt_wait_pid(pid, 30000, &st), 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The whole file (at most 4 MiB), NUL-terminated, or NULL if absent. */
static char *slurp(const char *path, size_t *len)
{
	size_t cap = 4u << 20, n = 0;
	char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	CHECK(buf != NULL);
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		CHECK(r >= 0);
		if (r == 0)
			break;
		n += (size_t)r;
		CHECK(n < cap);
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static bool file_has(const char *path, const char *needle)
{
	char *s = slurp(path, NULL);
	bool r = s && strstr(s, needle);

	free(s);
	return r;
}

/* ------------------------------------------------------------------------
 * A strict parser of the text format 0.0.4, as far as tq uses it: every
 * line is "# HELP name text", "# TYPE name type" or a sample
 * name{label="value",...} value (no timestamps, no other comments, no
 * blank lines). It checks names, escapes, that each sample's family has a
 * TYPE before it and that a family's lines are together, that no series
 * appears twice, and that each histogram has increasing `le` buckets with
 * cumulative counts ending in +Inf, equal to its _count, and a _sum.
 */

#define MAX_LABELS 8

struct sample {
	char name[128];
	int family;
	unsigned nlabels;
	char key[MAX_LABELS][64];
	char val[MAX_LABELS][256];
	char series[1024];           /* name + labels in order, le excluded */
	double value;
	double le;                   /* histogram buckets */
};

struct family {
	char name[128];
	char type[16];
	bool help;
};

struct expo {
	struct sample *s;
	size_t n, cap;
	struct family f[256];
	unsigned nf;
};

static bool valid_name(const char *s, bool label)
{
	if (!*s || !(isalpha((unsigned char)*s) || *s == '_' || (!label && *s == ':')))
		return false;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || (!label && *s == ':')))
			return false;
	return true;
}

static int family_of(struct expo *x, const char *name)
{
	for (unsigned i = 0; i < x->nf; i++)
		if (!strcmp(x->f[i].name, name))
			return (int)i;
	return -1;
}

/* The family a sample name belongs to: itself, or the histogram whose
 * _bucket, _sum or _count it is. */
static int family_of_sample(struct expo *x, const char *name)
{
	static const char *const suffix[] = { "_bucket", "_sum", "_count" };
	int f = family_of(x, name);
	size_t n = strlen(name);

	if (f >= 0 && strcmp(x->f[f].type, "histogram"))
		return f;
	for (int i = 0; i < 3; i++) {
		size_t sl = strlen(suffix[i]);
		char base[128];

		if (n <= sl || strcmp(name + n - sl, suffix[i]) || n - sl >= sizeof(base))
			continue;
		memcpy(base, name, n - sl);
		base[n - sl] = 0;
		f = family_of(x, base);
		if (f >= 0 && !strcmp(x->f[f].type, "histogram"))
			return f;
	}
	return -1;
}

static bool parse_value(const char *s, double *v)
{
	char *end;

	if (!strcmp(s, "+Inf")) {
		*v = INFINITY;
		return true;
	}
	if (!strcmp(s, "-Inf")) {
		*v = -INFINITY;
		return true;
	}
	if (!strcmp(s, "NaN")) {
		*v = NAN;
		return true;
	}
	if (!*s || isspace((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtod(s, &end);
	return !*end && errno == 0;
}

#define PFAIL(...) do { fprintf(stderr, "line %u: ", lineno); FAIL(__VA_ARGS__); \
	return false; } while (0)

static bool parse_sample(struct expo *x, char *line, unsigned lineno, int cur_family)
{
	struct sample sm;
	char *p = line, *sp;
	size_t n;

	memset(&sm, 0, sizeof(sm));
	sm.le = NAN;
	n = strcspn(p, "{ ");
	if (n == 0 || n >= sizeof(sm.name))
		PFAIL("bad metric name in '%s'", line);
	memcpy(sm.name, p, n);
	if (!valid_name(sm.name, false))
		PFAIL("bad metric name '%s'", sm.name);
	p += n;
	snprintf(sm.series, sizeof(sm.series), "%s{", sm.name);
	if (*p == '{') {
		p++;
		while (*p != '}') {
			char *k = sm.key[sm.nlabels], *v = sm.val[sm.nlabels];
			size_t vl = 0;

			if (sm.nlabels == MAX_LABELS)
				PFAIL("too many labels");
			n = strcspn(p, "=");
			if (!p[n] || n == 0 || n >= sizeof(sm.key[0]))
				PFAIL("bad label in '%s'", line);
			memcpy(k, p, n);
			k[n] = 0;
			if (!valid_name(k, true) || !strncmp(k, "__", 2))
				PFAIL("bad label name '%s'", k);
			for (unsigned i = 0; i < sm.nlabels; i++)
				if (!strcmp(sm.key[i], k))
					PFAIL("label '%s' twice", k);
			p += n + 1;
			if (*p++ != '"')
				PFAIL("label value not quoted in '%s'", line);
			for (; *p != '"'; p++) {
				char ch = *p;

				if (!ch || ch == '\n')
					PFAIL("unterminated label value in '%s'", line);
				if (ch == '\\') {
					p++;
					if (*p == 'n')
						ch = '\n';
					else if (*p == '\\' || *p == '"')
						ch = *p;
					else
						PFAIL("bad escape \\%c in a label value", *p);
				}
				if (vl + 1 >= sizeof(sm.val[0]))
					PFAIL("label value too long");
				v[vl++] = ch;
			}
			v[vl] = 0;
			p++;
			sm.nlabels++;
			if (*p == ',') {
				p++;
				if (*p == '}')
					PFAIL("trailing comma in '%s'", line);
			} else if (*p != '}') {
				PFAIL("expected , or } in '%s'", line);
			}
		}
		p++;
	}
	if (*p != ' ')
		PFAIL("no space before the value in '%s'", line);
	p++;
	sp = strchr(p, ' ');
	if (sp)
		PFAIL("a timestamp or junk after the value in '%s'", line);
	if (!parse_value(p, &sm.value))
		PFAIL("bad value '%s'", p);

	sm.family = family_of_sample(x, sm.name);
	if (sm.family < 0)
		PFAIL("sample %s has no # TYPE before it", sm.name);
	if (sm.family != cur_family)
		PFAIL("sample %s is apart from the rest of its family", sm.name);
	const char *type = x->f[sm.family].type;
	if (!strcmp(type, "histogram")) {
		bool bucket = strlen(sm.name) > 7 && !strcmp(sm.name + strlen(sm.name) - 7, "_bucket");
		bool has_le = false;

		for (unsigned i = 0; i < sm.nlabels; i++)
			if (!strcmp(sm.key[i], "le")) {
				has_le = true;
				if (!parse_value(sm.val[i], &sm.le) || isnan(sm.le))
					PFAIL("bad le=\"%s\"", sm.val[i]);
			}
		if (bucket != has_le)
			PFAIL("%s: le on a bucket and only there", sm.name);
		if (sm.value < 0 || isnan(sm.value))
			PFAIL("%s: negative or NaN", sm.name);
	}
	if (!strcmp(type, "counter") && (sm.value < 0 || isnan(sm.value)))
		PFAIL("counter %s is negative or NaN", sm.name);
	/* The series: the name and labels (le apart), to find duplicates. */
	for (unsigned i = 0; i < sm.nlabels; i++) {
		size_t l = strlen(sm.series);

		if (!strcmp(sm.key[i], "le"))
			continue;
		snprintf(sm.series + l, sizeof(sm.series) - l, "%s=\"%s\",", sm.key[i], sm.val[i]);
	}
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 256;
		x->s = realloc(x->s, x->cap * sizeof(*x->s));
		CHECK(x->s != NULL);
	}
	x->s[x->n++] = sm;
	return true;
}

static int cmp_series(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;
	int c = strcmp(x->series, y->series);

	if (c)
		return c;
	return x->le < y->le ? -1 : x->le > y->le ? 1 : 0;
}

/* Histogram checks over samples sorted by series then le. */
static void check_histograms(struct expo *x)
{
	struct sample *s;
	size_t n = x->n;

	/* Sorted copy: buckets of one series together, by le. */
	s = malloc((n ? n : 1) * sizeof(*s));
	CHECK(s != NULL);
	memcpy(s, x->s, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_series);
	for (size_t i = 0; i + 1 < n; i++)
		if (!isnan(s[i].le) || !isnan(s[i + 1].le)) {
			if (!strcmp(s[i].series, s[i + 1].series) && s[i].le == s[i + 1].le)
				FAIL("series %s le=%g appears twice", s[i].series, s[i].le);
		} else if (!strcmp(s[i].series, s[i + 1].series)) {
			FAIL("series %s appears twice", s[i].series);
		}
	for (size_t i = 0; i < n;) {
		size_t j = i;
		const char *name = s[i].name;
		size_t nl = strlen(name);

		while (j < n && !strcmp(s[j].series, s[i].series))
			j++;
		if (nl > 7 && !strcmp(name + nl - 7, "_bucket")) {
			char base[128], other[1100];
			bool found_count = false, found_sum = false;
			double count = -1;

			CHECKF(isinf(s[j - 1].le) && s[j - 1].le > 0, "%s does not end with +Inf",
			       s[i].series);
			for (size_t k = i + 1; k < j; k++)
				CHECKF(s[k].value >= s[k - 1].value, "%s not cumulative at le=%g",
				       s[i].series, s[k].le);
			CHECKF(j - i >= 2, "%s: only the +Inf bucket", s[i].series);
			snprintf(base, sizeof(base), "%.*s", (int)(nl - 7), name);
			/* The _count and _sum of the same labels. */
			for (size_t k = 0; k < n; k++) {
				const char *rest = s[i].series + nl;

				snprintf(other, sizeof(other), "%s_count%s", base, rest);
				if (!strcmp(s[k].series, other)) {
					found_count = true;
					count = s[k].value;
				}
				snprintf(other, sizeof(other), "%s_sum%s", base, rest);
				if (!strcmp(s[k].series, other))
					found_sum = true;
			}
			CHECKF(found_count && found_sum, "%s: no _count or _sum", s[i].series);
			CHECKF(count == s[j - 1].value, "%s: +Inf bucket %g, _count %g", s[i].series,
			       s[j - 1].value, count);
		}
		i = j;
	}
	free(s);
}

/* Parse text into x (zeroed by the caller); fails the test on any error. */
static void parse_expo(struct expo *x, char *text)
{
	unsigned lineno = 0;
	int cur = -1;
	bool seen_sample[256] = { false };
	char *line = text;

	CHECKF(*text, "empty exposition");
	CHECKF(text[strlen(text) - 1] == '\n', "the exposition does not end with a newline");
	while (*line) {
		char *nl = strchr(line, '\n');

		lineno++;
		*nl = 0;
		if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
			char *name = line + 7, *rest = strchr(name, ' ');
			int f;

			CHECKF(rest, "line %u: '%s' has no text", lineno, line);
			*rest++ = 0;
			CHECKF(valid_name(name, false), "line %u: bad name '%s'", lineno, name);
			f = family_of(x, name);
			if (f < 0) {
				CHECK(x->nf < 256);
				f = (int)x->nf++;
				snprintf(x->f[f].name, sizeof(x->f[f].name), "%s", name);
			}
			CHECKF(!seen_sample[f], "line %u: HELP or TYPE of %s after its samples",
			       lineno, name);
			if (line[2] == 'H') {
				CHECKF(!x->f[f].help, "line %u: second HELP for %s", lineno, name);
				x->f[f].help = true;
				for (char *p = rest; *p; p++)
					if (*p == '\\') {
						CHECKF(p[1] == '\\' || p[1] == 'n',
						       "line %u: bad escape in HELP", lineno);
						p++;
					}
			} else {
				CHECKF(!x->f[f].type[0], "line %u: second TYPE for %s", lineno, name);
				CHECKF(!strcmp(rest, "counter") || !strcmp(rest, "gauge") ||
				       !strcmp(rest, "histogram") || !strcmp(rest, "summary") ||
				       !strcmp(rest, "untyped"), "line %u: bad type '%s'", lineno, rest);
				snprintf(x->f[f].type, sizeof(x->f[f].type), "%s", rest);
			}
			rest[-1] = ' ';      /* the text is left as it was */
			cur = f;
		} else {
			CHECKF(line[0] != '#', "line %u: a comment that is not HELP or TYPE", lineno);
			CHECKF(line[0], "line %u: blank", lineno);
			parse_sample(x, line, lineno, cur);
			seen_sample[x->s[x->n - 1].family] = true;
		}
		*nl = '\n';
		line = nl + 1;
	}
	for (unsigned f = 0; f < x->nf; f++) {
		CHECKF(x->f[f].help, "%s has no HELP", x->f[f].name);
		CHECKF(x->f[f].type[0], "%s has no TYPE", x->f[f].name);
		if (!strcmp(x->f[f].type, "counter")) {
			size_t l = strlen(x->f[f].name);

			CHECKF(l > 6 && !strcmp(x->f[f].name + l - 6, "_total"),
			       "counter %s does not end in _total", x->f[f].name);
		}
	}
	check_histograms(x);
}

static void expo_free(struct expo *x)
{
	free(x->s);
	memset(x, 0, sizeof(*x));
}

static const char *label(const struct sample *s, const char *key)
{
	for (unsigned i = 0; i < s->nlabels; i++)
		if (!strcmp(s->key[i], key))
			return s->val[i];
	return NULL;
}

/* Samples named `name` whose labels include every (key, value) pair of the
 * NULL-terminated list; the count, and the first's value into *v. */
static int find_v(const struct expo *x, double *v, const char *name, va_list ap)
{
	const char *want[16];
	int nw = 0, found = 0;

	while (nw < 16 && (want[nw] = va_arg(ap, const char *)))
		nw++;
	for (size_t i = 0; i < x->n; i++) {
		bool ok = !strcmp(x->s[i].name, name);

		for (int k = 0; ok && k + 1 < nw; k += 2) {
			const char *l = label(&x->s[i], want[k]);

			ok = l && !strcmp(l, want[k + 1]);
		}
		if (ok && !found++ && v)
			*v = x->s[i].value;
	}
	return found;
}

static int count_of(const struct expo *x, const char *name, ...)
{
	va_list ap;
	int n;

	va_start(ap, name);
	n = find_v(x, NULL, name, ap);
	va_end(ap);
	return n;
}

/* The value of the one sample that matches; fails if not exactly one. */
static double value_of(const struct expo *x, const char *name, ...)
{
	va_list ap;
	double v = NAN;
	int n;

	va_start(ap, name);
	n = find_v(x, &v, name, ap);
	va_end(ap);
	CHECKF(n == 1, "%d samples of %s match, want 1", n, name);
	return v;
}

/* ------------------------------------------------------------------------
 * HTTP
 */

static int connect_to(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECKF(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s", strerror(errno));
	return fd;
}

struct response {
	int status;
	char *raw;                   /* head and body */
	char *head;                  /* the head lines, NUL-terminated */
	char *body;
	size_t body_len;
};

/* Send req and read the answer until the server closes (bounded). */
static void http(int port, const char *req, struct response *r)
{
	size_t cap = 1 << 16, n = 0;
	uint64_t end = tqt_mono_ms() + 10000;
	int fd = connect_to(port);
	char *sep;

	memset(r, 0, sizeof(*r));
	CHECK((size_t)send(fd, req, strlen(req), MSG_NOSIGNAL) == strlen(req));
	r->raw = malloc(cap + 1);
	CHECK(r->raw != NULL);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t got;

		CHECKF(tqt_mono_ms() < end, "no complete answer to '%.20s' in 10 s", req);
		if (poll(&p, 1, 100) <= 0)
			continue;
		got = recv(fd, r->raw + n, cap - n, 0);
		if (got < 0 && errno == EINTR)
			continue;
		CHECKF(got >= 0, "recv: %s", strerror(errno));
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == cap) {
			cap *= 2;
			r->raw = realloc(r->raw, cap + 1);
			CHECK(r->raw != NULL);
		}
	}
	close(fd);
	r->raw[n] = 0;
	CHECKF(sscanf(r->raw, "HTTP/1.%*d %d ", &r->status) == 1, "bad status line: %.40s", r->raw);
	sep = strstr(r->raw, "\r\n\r\n");
	CHECKF(sep, "no end of the head");
	*sep = 0;
	r->head = r->raw;
	r->body = sep + 4;
	r->body_len = n - (size_t)(r->body - r->raw);
	CHECKF(strlen(r->body) == r->body_len, "a NUL in the body");
	/* The body is exactly Content-Length bytes. */
	const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
	CHECKF(cl, "no Content-Length");
	if (strncmp(req, "HEAD ", 5))
		CHECK_EQU(strtoull(cl + 18, NULL, 10), r->body_len);
}

static void response_free(struct response *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

/* True when the server has closed fd (EOF or reset), waiting up to ms. */
static bool closed_by_server(int fd, unsigned ms)
{
	uint64_t end = tqt_mono_ms() + ms;

	do {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[4096];

		if (poll(&p, 1, 50) > 0) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return true;
		}
	} while (tqt_mono_ms() < end);
	return false;
}

/* ------------------------------------------------------------------------
 * promtool, when installed
 */

static bool find_promtool(char *path, size_t size)
{
	const char *env = getenv("PATH");
	char dirs[4096];

	snprintf(dirs, sizeof(dirs), "%s", env && *env ? env : "/usr/local/bin:/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, size, "%s/promtool", d);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

static void promtool_check(const char *text, const char *what)
{
	char prom[512], in[300], out[300];
	FILE *f;
	int st = 0;
	pid_t pid;

	if (!find_promtool(prom, sizeof(prom))) {
		TQT_LOG("promtool not installed (Debian: apt-get install prometheus): "
			"not checking %s with it", what);
		return;
	}
	snprintf(in, sizeof(in), "%s/promtool-in", tmp);
	snprintf(out, sizeof(out), "%s/promtool-out", tmp);
	f = fopen(in, "w");
	CHECK(f != NULL);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
	pid = tqt_fork();
	if (pid == 0) {
		int fi = open(in, O_RDONLY), fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fi < 0 || fo < 0)
			_exit(127);
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fo, 2);
		execl(prom, "promtool", "check", "metrics", (char *)NULL);
		_exit(127);
	}
	CHECK_RET(tqt_wait_pid(pid, 30000, &st), 0);
	char *said = slurp(out, NULL);
	/* Exit 0 and no lint remark at all. */
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0 && said && !*said,
	       "promtool check metrics on %s: status %d, said: %s", what, st, said ? said : "");
	free(said);
	TQT_LOG("promtool check metrics: %s passes", what);
}

/* ------------------------------------------------------------------------
 * The tests
 */

static void test_refused(const char *name)
{
	static const char *const bad[] = { "0.0.0.0:9464", "[::]:9464", "10.1.2.3:9464",
					   "192.168.0.1:0", "[fe80::1]:80", "[::ffff:10.0.0.1]:80",
					   "example.com:80", "127.0.0.1", "127.0.0.1:65536",
					   "127.0.0.1:x", "::1:80", NULL };
	char err[300];

	snprintf(err, sizeof(err), "%s/refused.err", tmp);
	for (int i = 0; bad[i]; i++) {
		int rc = run(tqd_path, (const char *[]){ "--segment", name, "--create",
							 "--metrics-listen", bad[i], NULL }, NULL, err);

		CHECKF(rc == 2, "--metrics-listen %s: exit %d, want 2", bad[i], rc);
		CHECKF(file_has(err, "--metrics-listen"), "no message for %s", bad[i]);
	}
	run(tqd_path, (const char *[]){ "--metrics-listen", "0.0.0.0:1", NULL }, NULL, err);
	CHECK(file_has(err, "not a loopback address"));
	CHECK_EQ(run(tqd_path, (const char *[]){ "--metrics-file-interval-ms", "5", NULL }, NULL,
		     err), 2);
	/* None of them created the segment: the option is refused first. */
	tq *t;
	CHECK_ERR(tq_attach(name, &t), -ENOENT);
	/* Loopback in every spelling is fine (--help parses it, then exits). */
	CHECK_EQ(run(tqd_path, (const char *[]){ "--metrics-listen", "[::1]:0", "--metrics-listen",
						 "localhost:0", "--metrics-listen", "127.3.2.1:1",
						 "--help", NULL }, NULL, err), 0);
	char help[300];
	snprintf(help, sizeof(help), "%s/help.out", tmp);
	CHECK_EQ(run(tqd_path, (const char *[]){ "--help", NULL }, help, NULL), 0);
	CHECK(file_has(help, "--metrics-listen"));
	CHECK(file_has(help, "--metrics-file"));
}

/* Wait for tqd's log line "serving metrics on http://127.0.0.1:PORT/metrics". */
static int wait_port(const char *log)
{
	for (int i = 0; i < 2000; i++) {
		char *s = slurp(log, NULL);
		const char *p = s ? strstr(s, "serving metrics on http://127.0.0.1:") : NULL;
		int port = p ? atoi(p + strlen("serving metrics on http://127.0.0.1:")) : 0;

		free(s);
		if (port > 0)
			return port;
		tqt_sleep_ms(5);
	}
	FAIL("tqd never said where it serves metrics");
	return -1;
}

struct workload {
	int emails, reports;
	unsigned acked, failed, leased_l0, submitted_l0, submitted_l2, submitted_reports;
	unsigned cancelled_reports;
	unsigned recovered;          /* leases given back by tqd */
	uint64_t held_id;            /* leased, not finished: the handle is busy */
};

static void workload(tq *t, struct workload *w)
{
	struct tq_submit_opts so = { .level = 0 };
	struct tq_lease_opts lo = { .queues = &w->emails, .nqueues = 1, .timeout_ms = 2000 };
	struct tq_task task;
	uint64_t id;

	w->emails = CHECK_OK(tq_queue_declare(t, "emails", NULL));
	w->reports = CHECK_OK(tq_queue_declare(t, "reports", NULL));
	CHECK_OK(tq_queue_declare(t, "idle.queue", NULL));
	w->submitted_l0 = 10;
	for (unsigned i = 0; i < w->submitted_l0; i++)
		CHECK_RET(tq_submit(t, w->emails, "mail", 4, &so, NULL), 0);
	so.level = 2;
	w->submitted_l2 = 5;
	for (unsigned i = 0; i < w->submitted_l2; i++)
		CHECK_RET(tq_submit(t, w->emails, "mail", 4, &so, NULL), 0);
	so.level = 1;
	w->submitted_reports = 3;
	for (unsigned i = 0; i < w->submitted_reports; i++)
		CHECK_RET(tq_submit(t, w->reports, "r", 1, &so, &id), 0);
	CHECK_RET(tq_cancel(t, id), 0);
	w->cancelled_reports = 1;
	CHECK_RET(tq_queue_pause(t, w->reports), 0);

	/* Level 0 of emails: 3 acked (after a little work), 1 failed, 1
	 * leased and held. Strict policy: all from level 0. */
	for (int i = 0; i < 5; i++) {
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		CHECK_EQU(task.level, 0);
		if (i < 3) {
			tqt_sleep_ms(2);
			CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
		} else if (i == 3) {
			CHECK_OK(tq_fail(t, task.id));
		} else {
			w->held_id = task.id;
		}
	}
	w->acked = 3;
	w->failed = 1;
	w->leased_l0 = 5;
}

/* True once x shows the whole workload (a rendering may be up to 100 ms
 * old, and the file is written every 100 ms). */
static bool workload_shows(const struct expo *x, const struct workload *w)
{
	double v[5];
	const char *names[5] = { "tq_tasks_acked_total", "tq_tasks_failed_total",
				 "tq_tasks_leased_total", "tq_queue_pending_tasks",
				 "tq_queue_leased_tasks" };

	for (int i = 0; i < 5; i++)
		if (count_of(x, names[i], "queue", "emails", "level", "0", NULL) != 1)
			return false;
	for (int i = 0; i < 5; i++)
		v[i] = value_of(x, names[i], "queue", "emails", "level", "0", NULL);
	return v[0] == w->acked && v[1] == w->failed && v[2] == w->leased_l0 &&
	       v[3] == w->submitted_l0 - w->leased_l0 + w->failed + w->recovered && v[4] == 1;
}

/* Fetch /metrics until the workload shows (the exposition may be reused
 * for 100 ms), parse it strictly, and return it in x. */
static void fetch_expo(int port, const char *seg, const struct workload *w, struct expo *x,
		       char **text)
{
	for (int i = 0;; i++) {
		struct response r;

		http(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n", &r);
		CHECK_EQ(r.status, 200);
		CHECKF(strcasestr(r.head, "\r\nContent-Type: text/plain; version=0.0.4"),
		       "content type: %s", r.head);
		memset(x, 0, sizeof(*x));
		parse_expo(x, r.body);
		if (workload_shows(x, w)) {
			*text = strdup(r.body);
			response_free(&r);
			return;
		}
		response_free(&r);
		expo_free(x);
		CHECKF(i < 100, "the workload never showed in /metrics");
		tqt_sleep_ms(20);
	}
}

static void check_figures(const struct expo *x, const char *seg, const struct workload *w,
			  bool same_handle_live)
{
#define V(...) value_of(x, __VA_ARGS__, NULL)
	char l0[] = "0", l1[] = "1", l2[] = "2";

	CHECK(V("tq_up", "segment", seg) == 1);
	CHECK(V("tq_build_info", "version", TQ_VERSION) == 1);
	CHECK(V("tq_tasks_capacity", "segment", seg) == 4096);
	CHECK(V("tq_queues_declared", "segment", seg) == 3);
	CHECK(V("tq_levels", "segment", seg) == 8);
	CHECK(V("tq_repairs_total", "segment", seg) >= 0);
	/* emails: 10 at level 0, 5 at level 2; reports: 3 at level 1, one cancelled. */
	CHECK(V("tq_tasks_submitted_total", "segment", seg, "queue", "emails", "level", l0) ==
	      w->submitted_l0);
	CHECK(V("tq_tasks_submitted_total", "queue", "emails", "level", l2) == w->submitted_l2);
	CHECK(V("tq_tasks_submitted_total", "queue", "reports", "level", l1) ==
	      w->submitted_reports);
	CHECK(V("tq_tasks_cancelled_total", "queue", "reports", "level", l1) ==
	      w->cancelled_reports);
	CHECK(V("tq_queue_pending_tasks", "queue", "reports", "level", l1) ==
	      w->submitted_reports - w->cancelled_reports);
	CHECK(V("tq_queue_paused", "queue", "reports") == 1);
	CHECK(V("tq_queue_paused", "queue", "emails") == 0);
	CHECK(V("tq_tasks_leased_total", "queue", "emails", "level", l0) == w->leased_l0);
	CHECK(V("tq_tasks_acked_total", "queue", "emails", "level", l0) == w->acked);
	CHECK(V("tq_tasks_failed_total", "queue", "emails", "level", l0) == w->failed);
	CHECK(V("tq_tasks_dead_lettered_total", "queue", "emails", "level", l0) == 0);
	/* 10 - 5 leased + 1 failed back to ready (+ what tqd gave back); one
	 * leased now. */
	CHECK(V("tq_queue_pending_tasks", "queue", "emails", "level", l0) ==
	      w->submitted_l0 - w->leased_l0 + w->failed + w->recovered);
	CHECK(V("tq_queue_leased_tasks", "queue", "emails", "level", l0) == 1);
	CHECK(V("tq_queue_pending_tasks", "queue", "emails", "level", l2) == w->submitted_l2);
	/* Levels with nothing are left out; level 0 of every queue is not. */
	CHECK_EQ(count_of(x, "tq_tasks_submitted_total", "queue", "emails", NULL), 2);
	CHECK_EQ(count_of(x, "tq_tasks_submitted_total", "queue", "emails", "level", l1, NULL), 0);
	CHECK_EQ(count_of(x, "tq_tasks_submitted_total", "queue", "reports", NULL), 2);
	CHECK(V("tq_tasks_submitted_total", "queue", "reports", "level", l0) == 0);
	CHECK(V("tq_tasks_submitted_total", "queue", "idle.queue", "level", l0) == 0);
	CHECK_EQ(count_of(x, "tq_tasks_submitted_total", "queue", "idle.queue", NULL), 1);
	/* Every sample names the segment. */
	for (size_t i = 0; i < x->n; i++)
		CHECKF(label(&x->s[i], "segment") && !strcmp(label(&x->s[i], "segment"), seg),
		       "%s has no segment=\"%s\"", x->s[i].series, seg);

#ifndef TQ_METRICS_NO_HISTOGRAM
	/* Four attempts ended (3 acks, 1 fail) at level 0, each after >= 0;
	 * the acks slept 2 ms. Five first leases waited. */
	CHECK(V("tq_task_run_seconds_count", "queue", "emails", "level", l0) ==
	      w->acked + w->failed);
	CHECK(V("tq_task_run_seconds_sum", "queue", "emails", "level", l0) >= 0.006);
	double waits = V("tq_task_wait_seconds_count", "queue", "emails", "level", l0);
	CHECKF(waits >= 4 && waits <= w->leased_l0, "wait count %g", waits);
	CHECK(V("tq_task_run_seconds_count", "queue", "emails", "level", l2) == 0);
	CHECK(V("tq_task_wait_seconds_bucket", "queue", "emails", "level", l2, "le", "+Inf") == 0);
	/* A 2 ms run is over 1.048576 ms (2^20 ns) and within 2^30 ns. */
	int buckets = count_of(x, "tq_task_run_seconds_bucket", "queue", "emails", "level", l0, NULL);
	CHECKF(buckets >= 10 && buckets <= 40, "%d buckets", buckets);
	for (size_t i = 0; i < x->n; i++) {
		const struct sample *s = &x->s[i];
		const char *q = label(s, "queue"), *lv = label(s, "level");

		if (strcmp(s->name, "tq_task_run_seconds_bucket") || !q || strcmp(q, "emails") ||
		    strcmp(lv, l0))
			continue;
		if (s->le < 0.001)
			CHECKF(s->value == 1 || s->value == 0, "le %g: %g", s->le, s->value);
		if (s->le >= 1.0)
			CHECKF(s->value == w->acked + w->failed, "le %g: %g", s->le, s->value);
	}
#endif
#ifndef TQ_METRICS_NO_PROCS
	/* tqd and this handle (busy: it holds a lease) at least. */
	CHECK(V("tq_procs_attached", "segment", seg) >= 2);
	if (same_handle_live)
		CHECK(V("tq_procs", "state", "busy") >= 1);
	CHECK(V("tq_procs_leases_held", "segment", seg) >= (same_handle_live ? 1 : 0));
	CHECK(V("tq_supervisor_active", "segment", seg) == 1);
	CHECK_EQ(count_of(x, "tq_procs", NULL), 5);
#endif
#ifndef TQ_METRICS_NO_JOURNAL
	CHECK(V("tq_journal_enabled", "segment", seg) == 0);
#endif
#undef V
}

static void test_serve(const char *name)
{
	char log[300], file[300], tmpfile[320];
	struct workload w;
	struct expo x;
	struct response r;
	char *text;
	int port, st;

	snprintf(log, sizeof(log), "%s/tqd.log", tmp);
	snprintf(file, sizeof(file), "%s/tq.prom", tmp);
	snprintf(tmpfile, sizeof(tmpfile), "%s.tmp", file);
	pid_t tqd = spawn(tqd_path, (const char *[]){ "--segment", name, "--create", "--capacity",
						      "4096", "--interval-ms", "5", "--log", log,
						      "--metrics-listen", "127.0.0.1:0",
						      "--metrics-file", file,
						      "--metrics-file-interval-ms", "100", NULL },
			  NULL, NULL);
	port = wait_port(log);
	TQT_LOG("tqd serves metrics on port %d", port);
	/* The file was written before tqd said so. */
	CHECK(access(file, R_OK) == 0);

	tq *t = tqt_attach(name);
	memset(&w, 0, sizeof(w));
	workload(t, &w);

	/* Over HTTP. */
	fetch_expo(port, name, &w, &x, &text);
	check_figures(&x, name, &w, true);
	TQT_LOG("/metrics: %zu samples in %u families, %zu bytes", x.n, x.nf, strlen(text));
	promtool_check(text, "/metrics");
	expo_free(&x);
	free(text);

	/* The other answers. */
	http(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", &r);
	CHECK_EQ(r.status, 200);
	response_free(&r);
	http(port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	CHECK_EQ(r.status, 200);
	CHECK_EQU(r.body_len, 0);
	CHECK(strcasestr(r.head, "\r\nContent-Length: ") &&
	      strtoull(strcasestr(r.head, "\r\nContent-Length: ") + 18, NULL, 10) > 1000);
	response_free(&r);
	http(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	CHECK_EQ(r.status, 404);
	response_free(&r);
	http(port, "GET /metricsx HTTP/1.1\r\n\r\n", &r);
	CHECK_EQ(r.status, 404);
	response_free(&r);
	http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
	CHECK_EQ(r.status, 405);
	CHECK(strcasestr(r.head, "\r\nAllow: GET, HEAD"));
	response_free(&r);
	http(port, "DELETE / HTTP/1.1\r\n\r\n", &r);
	CHECK_EQ(r.status, 405);
	response_free(&r);
	http(port, "garbage\r\n\r\n", &r);
	CHECK_EQ(r.status, 400);
	response_free(&r);
	{
		/* Headers past 4 KiB. */
		char big[6000];

		memset(big, 'a', sizeof(big));
		memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
		memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
		http(port, big, &r);
		CHECK_EQ(r.status, 431);
		response_free(&r);
	}

	/* The connection limit: 16 idle clients take every place; a scraper
	 * still gets its answer, in the place of the oldest idle client; tqd
	 * goes on repairing meanwhile: a killed worker's task comes back. */
	int idle[16];
	for (int i = 0; i < 16; i++)
		idle[i] = connect_to(port);
	tqt_sleep_ms(50);            /* accepted by tqd's loop */
	http(port, "GET /metrics HTTP/1.1\r\n\r\n", &r);
	CHECK_EQ(r.status, 200);
	response_free(&r);
	CHECKF(closed_by_server(idle[0], 2000), "the oldest idle client was not let go");
	CHECKF(!closed_by_server(idle[1], 100), "a younger idle client was let go");
	{
		int *ready = tqt_shared(sizeof(int));
		pid_t worker = tqt_lease_and_hang(name, w.emails, 1, ready);
		uint64_t ids[8], cursor = 0;

		CHECK_RET(tq_list(t, w.emails, -1, TQ_STATE_LEASED, ids, 8, &cursor), 2);
		kill(worker, SIGKILL);
		CHECK_RET(tqt_wait_pid(worker, 5000, &st), 0);
		bool back = false;
		for (int i = 0; i < 1000 && !back; i++) {
			cursor = 0;
			back = tq_list(t, w.emails, -1, TQ_STATE_LEASED, ids, 8, &cursor) == 1;
			if (!back)
				tqt_sleep_ms(5);
		}
		CHECKF(back, "tqd did not give the killed worker's task back");
		w.leased_l0++;
		w.recovered++;
	}
	for (int i = 0; i < 16; i++)
		close(idle[i]);

	/* A client that starts a request and never ends it: cut off after the
	 * connection timeout (10 s), checked at the end. */
	int staller = connect_to(port);
	CHECK(send(staller, "GET /met", 8, MSG_NOSIGNAL) == 8);
	uint64_t stalled_at = tqt_mono_ms();

	/* The file: the same strict parse, the same figures (once written
	 * after the workload: every 100 ms). */
	for (int i = 0;; i++) {
		char *s = slurp(file, NULL);

		CHECKF(s, "%s went away", file);
		memset(&x, 0, sizeof(x));
		parse_expo(&x, s);
		if (workload_shows(&x, &w)) {
			check_figures(&x, name, &w, true);
			promtool_check(s, "the metrics file");
			free(s);
			expo_free(&x);
			break;
		}
		free(s);
		expo_free(&x);
		CHECKF(i < 200, "the file never showed the workload");
		tqt_sleep_ms(20);
	}

	/* `tq stats --prometheus`: the same exposition from the CLI. */
	if (tq_path) {
		char out[300], err[300];

		snprintf(out, sizeof(out), "%s/stats.prom", tmp);
		snprintf(err, sizeof(err), "%s/stats.err", tmp);
		CHECK_EQ(run(tq_path, (const char *[]){ "--segment", name, "stats", "--prometheus",
							NULL }, out, err), 0);
		char *s = slurp(out, NULL);
		CHECK(s != NULL);
		memset(&x, 0, sizeof(x));
		parse_expo(&x, s);
		check_figures(&x, name, &w, true);
		promtool_check(s, "tq stats --prometheus");
		expo_free(&x);
		free(s);
		/* One queue only. */
		CHECK_EQ(run(tq_path, (const char *[]){ "--segment", name, "stats", "--prometheus",
							"--queue", "reports", "--queue", "reports",
							NULL }, out, err), 0);
		s = slurp(out, NULL);
		CHECK(s != NULL);
		memset(&x, 0, sizeof(x));
		parse_expo(&x, s);
		CHECK_EQ(count_of(&x, "tq_tasks_submitted_total", "queue", "emails", NULL), 0);
		CHECK_EQ(count_of(&x, "tq_tasks_submitted_total", "queue", "reports", NULL), 2);
		expo_free(&x);
		free(s);
		CHECK_EQ(run(tq_path, (const char *[]){ "--segment", name, "stats", "--prometheus",
							"--json", NULL }, out, err), 2);
	}


	/* The staller is cut off 10 s after it connected. */
	uint64_t waited = tqt_mono_ms() - stalled_at;
	CHECKF(closed_by_server(staller, (unsigned)(waited < 12000 ? 12000 - waited : 1000)),
	       "an idle client was not cut off after the connection timeout");
	CHECKF(tqt_mono_ms() - stalled_at >= 9000, "cut off too early: %llu ms",
	       (unsigned long long)(tqt_mono_ms() - stalled_at));
	close(staller);

	/* SIGTERM: tqd stops and removes the file. */
	kill(tqd, SIGTERM);
	CHECK_RET(tqt_wait_pid(tqd, 10000, &st), 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(access(file, F_OK) != 0);
	CHECK(access(tmpfile, F_OK) != 0);
	tq_detach(t);
}

#ifndef TQ_METRICS_NO_JOURNAL
/* A segment with a journal, in a directory whose name needs escaping in a
 * label value: the journal's figures, through `tq stats --prometheus`. */
static void test_journal(const char *name)
{
	struct tq_config cfg = tqt_small_config();
	char dir[200], out[300], err[300];
	struct expo x;
	tq *t;

	if (!tq_path)
		return;
	snprintf(dir, sizeof(dir), "%s/jnl \"q\" \\ dir", tmp);
	snprintf(cfg.journal_dir, sizeof(cfg.journal_dir), "%s", dir);
	cfg.durability = TQ_DURABILITY_ASYNC;
	cfg.flush_ms = 10;
	CHECK_OK(tq_create(name, &cfg, &t));
	int q = CHECK_OK(tq_queue_declare(t, "j", NULL));
	for (int i = 0; i < 7; i++)
		CHECK_RET(tq_submit(t, q, "x", 1, NULL, NULL), 0);
	snprintf(out, sizeof(out), "%s/journal.prom", tmp);
	snprintf(err, sizeof(err), "%s/journal.err", tmp);
	CHECK_EQ(run(tq_path, (const char *[]){ "--segment", name, "stats", "--prometheus", NULL },
		     out, err), 0);
	char *s = slurp(out, NULL);
	CHECK(s != NULL);
	memset(&x, 0, sizeof(x));
	parse_expo(&x, s);
	CHECK(value_of(&x, "tq_journal_enabled", "segment", name, NULL) == 1);
	/* The parser unescaped the label: the directory comes back whole. */
	CHECK(value_of(&x, "tq_journal_info", "durability", "async", "dir", dir, NULL) == 1);
	CHECK(value_of(&x, "tq_journal_records_total", "segment", name, NULL) >= 7);
	CHECK(value_of(&x, "tq_journal_bytes_total", "segment", name, NULL) > 0);
	CHECK(value_of(&x, "tq_journal_tail_lsn", "segment", name, NULL) >=
	      value_of(&x, "tq_journal_durable_lsn", "segment", name, NULL));
	CHECK(value_of(&x, "tq_journal_flush_interval_seconds", "segment", name, NULL) == 0.01);
	CHECK_EQ(count_of(&x, "tq_journal_replay_tasks", NULL), 1);
	CHECK(value_of(&x, "tq_tasks_submitted_total", "queue", "j", "level", "0", NULL) == 7);
	promtool_check(s, "a segment with a journal");
	expo_free(&x);
	free(s);
	tq_detach(t);
	tqt_segname_drop(name);
}
#endif

/* A directory that cannot hold the file: tqd says so and exits 1. */
static void test_bad_file(const char *name)
{
	char err[300];

	snprintf(err, sizeof(err), "%s/badfile.err", tmp);
	CHECK_EQ(run(tqd_path, (const char *[]){ "--segment", name, "--create", "--capacity", "4096",
						 "--metrics-file", "/nonexistent-dir/x/tq.prom",
						 NULL }, NULL, err), 1);
	CHECK(file_has(err, "/nonexistent-dir/x/tq.prom"));
}

int main(int argc, char **argv)
{
	char name[TQ_NAME_MAX + 1];

	tqt_init("metrics");
	tqt_guard(110);
	if (argc < 2 || access(argv[1], X_OK) != 0)
		tqt_skip("no tqd binary given");
	tqd_path = argv[1];
	if (argc > 2 && access(argv[2], X_OK) == 0)
		tq_path = argv[2];
	CHECK(mkdtemp(tmp) != NULL);
	have_tmp = true;
	atexit(remove_tmp);
	test_refused(tqt_segname(name));
	test_bad_file(tqt_segname(name));
	test_serve(tqt_segname(name));
#ifndef TQ_METRICS_NO_JOURNAL
	test_journal(tqt_segname(name));
#endif
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * metrics-export.c - tqd's Prometheus endpoint and textfile, run from its
 * loop (metrics-export.h says what each call does).
 *
 * The HTTP side is the least a scraper needs: one request per connection
 * (HTTP/1.0 and 1.1, `Connection: close`), GET and HEAD of /metrics (any
 * query string ignored), 404 for another path, 405 for another method, 400
 * for a request line that does not parse, 431 for headers over 4 KiB.
 * Every socket is non-blocking and polled with the loop's own timeout;
 * each connection holds at most its 4 KiB request and a reference to a
 * shared rendered body, lives at most CONN_TIMEOUT_MS, and at most
 * MAX_CONNS are open: when all are taken, a new client takes the place of
 * the one that has been connected longest without being answered (idle
 * clients cannot lock a scraper out), and is closed at once when every
 * place is busy sending an answer. A rendering is
 * reused for RENDER_REUSE_MS, so a client asking in a tight loop cannot
 * turn tqd into a renderer. It only binds loopback addresses: the figures
 * name queues, and exposing them further is a reverse proxy's job.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "metrics-export.h"

#define MAX_CONNS 16
#define REQ_MAX 4096
#define CONN_TIMEOUT_MS 10000   /* request read and response written by then */
#define DRAIN_MS 1000           /* after the response: wait for the client's close */
#define RENDER_REUSE_MS 100

/* A rendered exposition, shared by the connections sending it. */
struct body {
	unsigned refs;
	size_t len;
	char data[];
};

enum conn_state { C_FREE = 0, C_READ, C_WRITE, C_DRAIN };

struct conn {
	int fd;
	enum conn_state state;
	uint64_t seq;                /* order of arrival */
	uint64_t deadline_ms;
	size_t rlen;                 /* bytes of the request read */
	size_t hlen, hoff;           /* response head: length, sent */
	struct body *body;           /* NULL: no body (HEAD) */
	size_t boff;                 /* body bytes sent */
	char head[512];
	char req[REQ_MAX];
};

struct metrics_export {
	struct metrics_export_opts o;
	int lfd;
	int port;
	char addr[INET6_ADDRSTRLEN + 8];   /* as listened on, for the log */
	struct conn conns[MAX_CONNS];
	uint64_t accepted;
	struct body *cached;
	uint64_t cached_ms;
	int last_render_err;
	struct metrics_buf buf;
	char *path, *tmp_path;       /* absolute: a daemon changes directory */
	uint64_t next_file_ms;
	int last_file_err;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void body_put(struct body *b)
{
	if (b && --b->refs == 0)
		free(b);
}

static struct body *body_new(const char *s, size_t len)
{
	struct body *b = malloc(sizeof(*b) + len + 1);

	if (!b)
		return NULL;
	b->refs = 1;
	b->len = len;
	memcpy(b->data, s, len);
	b->data[len] = 0;
	return b;
}

/* ------------------------------------------------------------------------
 * The address
 */

static bool parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl,
			 const char **why)
{
	char host[64];
	const char *colon, *h, *p;
	size_t hl;
	char *end;
	unsigned long port;
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':') {
			*why = "expected [IPv6]:PORT, e.g. [::1]:9464";
			return false;
		}
		h = s + 1;
		hl = (size_t)(rb - h);
		p = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon) {
			*why = "expected ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464";
			return false;
		}
		h = s;
		hl = (size_t)(colon - s);
		p = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		*why = "expected ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464";
		return false;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	errno = 0;
	port = strtoul(p, &end, 10);
	if (!*p || *end || errno || port > 65535 || *p == '-' || *p == '+') {
		*why = "the port is not a number in 0..65535 (0 picks a free one)";
		return false;
	}
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*v4);
		if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) {
			*why = "not a loopback address: tqd serves metrics on 127.0.0.0/8 or [::1] "
			       "only (put a reverse proxy in front to expose them further)";
			return false;
		}
		return true;
	}
	if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		const uint8_t *a = v6->sin6_addr.s6_addr;

		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*v6);
		if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) &&
		    !(IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && a[12] == 127)) {
			*why = "not a loopback address: tqd serves metrics on 127.0.0.0/8 or [::1] "
			       "only (put a reverse proxy in front to expose them further)";
			return false;
		}
		return true;
	}
	*why = "not a numeric IPv4 address, [IPv6] address or localhost";
	return false;
}

const char *metrics_listen_check(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	const char *why = NULL;

	return parse_listen(addr, &ss, &sl, &why) ? NULL : why;
}

/* ------------------------------------------------------------------------
 * Rendering, shared by the HTTP side and the file
 */

static struct body *get_body(struct metrics_export *x, tq *t)
{
	uint64_t now = mono_ms();
	struct metrics_opts mo = { .segment = x->o.segment };
	struct body *b;
	int e;

	if (x->cached && now - x->cached_ms < RENDER_REUSE_MS) {
		x->cached->refs++;
		return x->cached;
	}
	metrics_buf_reset(&x->buf);
	e = metrics_render(t, &mo, &x->buf);
	if (e != x->last_render_err && x->o.log) {
		if (e < 0)
			x->o.log("metrics: reading the segment failed: %s (%s); serving tq_up 0",
				 tq_strerror(e), tq_last_error(t));
		else
			x->o.log("metrics: reading the segment works again");
	}
	x->last_render_err = e;
	if (x->buf.failed || !x->buf.data)
		return NULL;
	b = body_new(x->buf.data, x->buf.len);
	if (!b)
		return NULL;
	body_put(x->cached);
	x->cached = b;
	x->cached_ms = now;
	b->refs++;
	/* A large exposition's buffer is not kept between scrapes. */
	if (x->buf.cap > (1u << 20))
		metrics_buf_free(&x->buf);
	return b;
}

/* ------------------------------------------------------------------------
 * The file
 */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int write_file(struct metrics_export *x, tq *t)
{
	struct body *b = get_body(x, t);
	int fd, e;

	if (!b)
		return -ENOMEM;
	/* The textfile collector reads only *.prom: PATH.tmp is never read
	 * half-written, and rename() swaps the whole file at once. */
	fd = open(x->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		e = -errno;
	} else {
		e = write_all(fd, b->data, b->len);
		if (close(fd) < 0 && e == 0)
			e = -errno;
		if (e == 0 && rename(x->tmp_path, x->o.file) < 0)
			e = -errno;
		if (e < 0)
			unlink(x->tmp_path);
	}
	body_put(b);
	if (e != x->last_file_err && x->o.log) {
		if (e < 0)
			x->o.log("metrics: cannot write %s: %s", x->o.file, strerror(-e));
		else if (x->last_file_err)
			x->o.log("metrics: writing %s works again", x->o.file);
	}
	x->last_file_err = e;
	return e;
}

/* ------------------------------------------------------------------------
 * HTTP
 */

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	body_put(c->body);
	c->body = NULL;
	c->fd = -1;
	c->state = C_FREE;
}

static void respond(struct conn *c, int status, const char *reason, const char *ctype,
		    const char *extra, struct body *body, bool head_only)
{
	int n = snprintf(c->head, sizeof(c->head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "%sConnection: close\r\n\r\n",
			 status, reason, ctype, body ? body->len : 0, extra);

	c->hlen = n > 0 && (size_t)n < sizeof(c->head) ? (size_t)n : 0;
	c->hoff = 0;
	if (head_only) {
		body_put(body);
		body = NULL;
	}
	c->body = body;
	c->boff = 0;
	c->state = C_WRITE;
}

static void respond_text(struct conn *c, int status, const char *reason, const char *extra,
			 const char *text, bool head_only)
{
	respond(c, status, reason, "text/plain; charset=utf-8", extra,
		body_new(text, strlen(text)), head_only);
}

/* A whole request head is in c->req: answer it. */
static void handle_request(struct metrics_export *x, tq *t, struct conn *c)
{
	char method[16], target[256], version[16];
	char *sp1, *sp2, *eol, *q;
	bool head;

	eol = strpbrk(c->req, "\r\n");
	if (eol)
		*eol = 0;
	sp1 = strchr(c->req, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || (size_t)(sp1 - c->req) >= sizeof(method) ||
	    (size_t)(sp2 - sp1 - 1) >= sizeof(target) || strlen(sp2 + 1) >= sizeof(version) ||
	    sp1 == c->req || sp2 == sp1 + 1 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		respond_text(c, 400, "Bad Request", "", "bad request\n", false);
		return;
	}
	memcpy(method, c->req, (size_t)(sp1 - c->req));
	method[sp1 - c->req] = 0;
	memcpy(target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	target[sp2 - sp1 - 1] = 0;
	if ((q = strchr(target, '?')))
		*q = 0;
	head = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head) {
		respond_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
			     "method not allowed: use GET\n", false);
		return;
	}
	if (strcmp(target, "/metrics")) {
		respond_text(c, 404, "Not Found", "", "not found: the metrics are at /metrics\n",
			     head);
		return;
	}
	struct body *b = get_body(x, t);

	if (!b)
		respond_text(c, 503, "Service Unavailable", "", "out of memory\n", head);
	else
		respond(c, 200, "OK", METRICS_CONTENT_TYPE, "", b, head);
}

static void conn_read(struct metrics_export *x, tq *t, struct conn *c)
{
	for (;;) {
		char drain[1024];
		char *buf = c->state == C_DRAIN ? drain : c->req + c->rlen;
		size_t room = c->state == C_DRAIN ? sizeof(drain) : REQ_MAX - 1 - c->rlen;
		ssize_t n = recv(c->fd, buf, room, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(c);   /* closed before asking, or drained */
			return;
		}
		if (c->state == C_DRAIN)
			continue;
		c->rlen += (size_t)n;
		c->req[c->rlen] = 0;
		if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
			handle_request(x, t, c);
			return;
		}
		if (c->rlen == REQ_MAX - 1) {
			respond_text(c, 431, "Request Header Fields Too Large", "",
				     "request too large\n", false);
			return;
		}
	}
}

static void conn_write(struct conn *c)
{
	for (;;) {
		struct iovec iov[2];
		struct msghdr mh;
		int n = 0;
		ssize_t w;

		if (c->hoff < c->hlen) {
			iov[n].iov_base = c->head + c->hoff;
			iov[n++].iov_len = c->hlen - c->hoff;
		}
		if (c->body && c->boff < c->body->len) {
			iov[n].iov_base = c->body->data + c->boff;
			iov[n++].iov_len = c->body->len - c->boff;
		}
		if (n == 0) {
			/* All sent: half-close, and read until the client
			 * closes, so that closing with unread bytes does not
			 * reset the connection before it read the answer. */
			shutdown(c->fd, SHUT_WR);
			body_put(c->body);
			c->body = NULL;
			c->state = C_DRAIN;
			c->deadline_ms = mono_ms() + DRAIN_MS;
			return;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n;
		w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w < 0) {
			conn_close(c);
			return;
		}
		size_t hw = c->hlen - c->hoff < (size_t)w ? c->hlen - c->hoff : (size_t)w;

		c->hoff += hw;
		c->boff += (size_t)w - hw;
	}
}

static void do_accept(struct metrics_export *x)
{
	/* Bounded: each round takes a place or returns. */
	for (int round = 0; round <= MAX_CONNS; round++) {
		int fd = accept4(x->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c = NULL, *victim = NULL;

		if (fd < 0)
			return;          /* EAGAIN, or an aborted connection */
		for (int i = 0; i < MAX_CONNS; i++)
			if (x->conns[i].state == C_FREE) {
				c = &x->conns[i];
				break;
			}
		for (int i = 0; !c && i < MAX_CONNS; i++) {
			struct conn *o = &x->conns[i];

			if (o->state != C_WRITE && (!victim || o->seq < victim->seq))
				victim = o;
		}
		if (!c && !victim) {
			close(fd);
			return;
		}
		if (!c) {
			conn_close(victim);
			c = victim;
		}
		memset(c, 0, offsetof(struct conn, head));
		c->fd = fd;
		c->state = C_READ;
		c->req[0] = 0;
		c->seq = ++x->accepted;
		c->deadline_ms = mono_ms() + CONN_TIMEOUT_MS;
	}
}

static int open_listener(struct metrics_export *x)
{
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	const char *why = NULL;
	int one = 1, fd, e;

	if (!parse_listen(x->o.listen, &ss, &sl, &why)) {
		if (x->o.log)
			x->o.log("metrics: --metrics-listen %s: %s", x->o.listen, why);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, MAX_CONNS) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto fail;
	x->lfd = fd;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;

		x->port = ntohs(v4->sin_port);
		inet_ntop(AF_INET, &v4->sin_addr, x->addr, sizeof(x->addr));
	} else {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

		x->port = ntohs(v6->sin6_port);
		x->addr[0] = '[';
		inet_ntop(AF_INET6, &v6->sin6_addr, x->addr + 1, sizeof(x->addr) - 2);
		strcat(x->addr, "]");
	}
	return 0;
fail:
	e = -errno;
	if (x->o.log)
		x->o.log("metrics: cannot listen on %s: %s", x->o.listen, strerror(errno));
	if (fd >= 0)
		close(fd);
	return e;
}

int metrics_export_open(struct metrics_export **ret, const struct metrics_export_opts *o, tq *t)
{
	struct metrics_export *x = calloc(1, sizeof(*x));
	int e;

	if (!x)
		return -ENOMEM;
	x->o = *o;
	x->lfd = -1;
	if (x->o.file_interval_ms <= 0)
		x->o.file_interval_ms = METRICS_FILE_INTERVAL_MS;
	for (int i = 0; i < MAX_CONNS; i++)
		x->conns[i].fd = -1;
	if (o->listen && (e = open_listener(x)) < 0)
		goto fail;
	if (o->file) {
		char cwd[4096] = "";
		size_t n;

		if (o->file[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
			e = -errno;
			if (x->o.log)
				x->o.log("metrics: --metrics-file %s: %s", o->file, strerror(errno));
			goto fail;
		}
		n = strlen(cwd) + strlen(o->file) + 6;
		x->path = malloc(n);
		x->tmp_path = malloc(n);
		if (!x->path || !x->tmp_path) {
			e = -ENOMEM;
			goto fail;
		}
		snprintf(x->path, n, "%s%s%s", cwd, *cwd ? "/" : "", o->file);
		snprintf(x->tmp_path, n, "%s.tmp", x->path);
		x->o.file = x->path;
		/* A path that cannot be written is a mistake to report now,
		 * not every few seconds for ever. */
		if ((e = write_file(x, t)) < 0)
			goto fail;
		x->next_file_ms = mono_ms() + (uint64_t)x->o.file_interval_ms;
	}
	if (x->o.log && o->listen)
		x->o.log("serving metrics on http://%s:%d/metrics", x->addr, x->port);
	if (x->o.log && o->file)
		x->o.log("writing metrics to %s every %ld ms", o->file, x->o.file_interval_ms);
	*ret = x;
	return 0;
fail:
	x->o.file = NULL;        /* nothing of ours to remove */
	metrics_export_close(x);
	return e;
}

int metrics_export_port(const struct metrics_export *x)
{
	return x && x->lfd >= 0 ? x->port : 0;
}

void metrics_export_run(struct metrics_export *x, tq *t, long ms)
{
	uint64_t now = mono_ms(), end = now + (uint64_t)(ms > 0 ? ms : 0);

	for (;;) {
		struct pollfd pfd[MAX_CONNS + 1];
		struct conn *who[MAX_CONNS + 1];
		uint64_t wake = end;
		nfds_t n = 0;
		int r;

		if (x->o.file && now >= x->next_file_ms) {
			write_file(x, t);
			x->next_file_ms = now + (uint64_t)x->o.file_interval_ms;
		}
		if (x->o.file && x->next_file_ms < wake)
			wake = x->next_file_ms;
		if (x->lfd >= 0) {
			pfd[n].fd = x->lfd;
			pfd[n].events = POLLIN;
			who[n++] = NULL;
		}
		for (int i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &x->conns[i];

			if (c->state == C_FREE)
				continue;
			if (now >= c->deadline_ms) {
				conn_close(c);   /* too slow, or never closed */
				continue;
			}
			if (c->deadline_ms < wake)
				wake = c->deadline_ms;
			pfd[n].fd = c->fd;
			pfd[n].events = c->state == C_WRITE ? POLLOUT : POLLIN;
			who[n++] = c;
		}
		r = poll(pfd, n, (int)(wake > now ? wake - now : 0));
		if (r < 0 && errno == EINTR)
			return;          /* a signal: let the caller look at it */
		for (nfds_t i = 0; r > 0 && i < n; i++) {
			struct conn *c = who[i];

			if (!pfd[i].revents)
				continue;
			if (!c)
				do_accept(x);
			else if (c->state == C_WRITE)
				conn_write(c);
			else
				conn_read(x, t, c);
			/* A request answered now: try sending at once. */
			if (c && c->state == C_WRITE)
				conn_write(c);
		}
		now = mono_ms();
		if (now >= end)
			return;
	}
}

void metrics_export_close(struct metrics_export *x)
{
	if (!x)
		return;
	for (int i = 0; i < MAX_CONNS; i++)
		if (x->conns[i].state != C_FREE)
			conn_close(&x->conns[i]);
	if (x->lfd >= 0)
		close(x->lfd);
	if (x->o.file)
		unlink(x->o.file);
	body_put(x->cached);
	metrics_buf_free(&x->buf);
	free(x->path);
	free(x->tmp_path);
	free(x);
}

/* SPDX-License-Identifier: MIT */
/*
 * sys-beanstalkd.c - tq-bench's systems "beanstalkd", "beanstalkd-binlog"
 * and "beanstalkd-f0": the workload on a beanstalkd the harness starts for
 * each run (127.0.0.1, a port and a directory of its own), through its text
 * protocol over TCP, one connection per process:
 *   producer: put <level> 0 <ttr> <bytes>     (priority = level, 0 first)
 *   worker:   reserve-with-timeout 1, then delete <id>
 * beanstalkd has leases (TTR) like tq, so this is the like-for-like broker.
 * "beanstalkd" runs without a binlog; "beanstalkd-binlog" with -b DIR and
 * its default fsync policy; "beanstalkd-f0" with -b DIR -f0 (fsync after
 * every write). Jobs up to the payload size are allowed with -z.
 * When beanstalkd is not on $PATH, every row is "unsupported" and says so.
 */
#include "bench.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BS_TTR 120
#define BS_IO_TIMEOUT_S 30

enum bs_mode { BS_NOLOG, BS_BINLOG, BS_F0 };

struct bs_priv {
	struct bench_server srv;
	char path[256];
};

/* A connection with a read buffer. */
struct bs_conn {
	int fd;
	size_t len, off;
	char buf[65536];
};

static void bs_version(char *buf, size_t size)
{
	static char v[96];
	char path[256], cmd[300];

	if (!v[0]) {
		if (bench_find_program("beanstalkd", path, sizeof(path)) == 0) {
			snprintf(cmd, sizeof(cmd), "%s -v 2>&1", path);
			bench_program_output(cmd, v, sizeof(v));
		} else {
			snprintf(v, sizeof(v), "beanstalkd not found");
		}
	}
	snprintf(buf, size, "%s", v);
}

static int bs_open(struct bs_conn *c, int port)
{
	struct timeval tv = { BS_IO_TIMEOUT_S, 0 };

	c->len = c->off = 0;
	c->fd = bench_tcp_connect(port);
	if (c->fd < 0)
		return -1;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

static int bs_fill(struct bs_conn *c)
{
	ssize_t n;

	if (c->off > 0) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == sizeof(c->buf))
		return -1;
	do
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

/* One reply line, without its \r\n, into line. 0 or -1. */
static int bs_line(struct bs_conn *c, char *line, size_t size)
{
	for (;;) {
		char *e = memmem(c->buf + c->off, c->len - c->off, "\r\n", 2);

		if (e) {
			size_t n = (size_t)(e - (c->buf + c->off));

			snprintf(line, size, "%.*s", (int)(n < size ? n : size - 1), c->buf + c->off);
			c->off += n + 2;
			return 0;
		}
		if (bs_fill(c) != 0)
			return -1;
	}
}

/* Exactly n bytes of body, then its \r\n. */
static int bs_body(struct bs_conn *c, unsigned char *out, size_t n)
{
	size_t got = 0;

	while (got < n + 2) {
		if (c->off == c->len && bs_fill(c) != 0)
			return -1;
		size_t k = c->len - c->off < n + 2 - got ? c->len - c->off : n + 2 - got;
		for (size_t i = 0; i < k; i++, got++)
			if (got < n)
				out[got] = (unsigned char)c->buf[c->off + i];
		c->off += k;
	}
	return 0;
}

static int bs_write(int fd, const struct iovec *iov, int n)
{
	struct iovec v[4];
	int i = 0;

	memcpy(v, iov, sizeof(*iov) * (size_t)n);
	while (i < n) {
		ssize_t w = writev(fd, v + i, n - i);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (i < n && (size_t)w >= v[i].iov_len)
			w -= (ssize_t)v[i++].iov_len;
		if (i < n) {
			v[i].iov_base = (char *)v[i].iov_base + w;
			v[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int bs_send_put(struct bs_conn *c, unsigned pri, const unsigned char *buf, uint32_t len)
{
	char head[96];
	int h = snprintf(head, sizeof(head), "put %u 0 %d %u\r\n", pri, BS_TTR, len);
	struct iovec iov[3] = {
		{ head, (size_t)h }, { (void *)buf, len }, { "\r\n", 2 },
	};

	return bs_write(c->fd, iov, 3);
}

static int bs_cmd(struct bs_conn *c, const char *cmd)
{
	struct iovec iov = { (void *)cmd, strlen(cmd) };

	return bs_write(c->fd, &iov, 1);
}

static int bs_setup_mode(struct run *r, enum bs_mode mode)
{
	struct bs_priv *p = calloc(1, sizeof(*p));
	char port[16], zmax[24], *argv[16];
	struct bs_conn *c = NULL;
	unsigned char *buf = NULL;
	int rc, a = 0;

	if (!p)
		return -ENOMEM;
	r->priv = p;
	if (bench_find_program("beanstalkd", p->path, sizeof(p->path)) != 0) {
		snprintf(r->note, sizeof(r->note), "skipped: beanstalkd not found on $PATH");
		return BENCH_UNSUPPORTED;
	}
	if ((rc = bench_server_prepare(&p->srv)) < 0) {
		snprintf(r->note, sizeof(r->note), "server directory or port: %s", strerror(-rc));
		return rc;
	}
	snprintf(port, sizeof(port), "%d", p->srv.port);
	snprintf(zmax, sizeof(zmax), "%u", r->payload > 65535 ? r->payload : 65535);
	argv[a++] = p->path;
	argv[a++] = "-l"; argv[a++] = "127.0.0.1";
	argv[a++] = "-p"; argv[a++] = port;
	argv[a++] = "-z"; argv[a++] = zmax;
	if (mode != BS_NOLOG) {
		argv[a++] = "-b";
		argv[a++] = p->srv.dir;
	}
	if (mode == BS_F0)
		argv[a++] = "-f0";
	argv[a] = NULL;
	if ((rc = bench_server_spawn(r, &p->srv, argv)) < 0)
		return rc;
	r->server_pid = p->srv.pid;
	if (r->queues > 1)
		snprintf(r->note, sizeof(r->note), "one tube (--queues ignored)");
	if (r->batch > 1) {
		size_t n = strlen(r->note);
		snprintf(r->note + n, sizeof(r->note) - n, "%sno batch calls", n ? "; " : "");
	}
	if (!r->prefill)
		return 0;
	c = malloc(sizeof(*c));
	buf = malloc(r->payload);
	if (!c || !buf || bs_open(c, p->srv.port) != 0) {
		rc = -ECONNREFUSED;
		snprintf(r->note, sizeof(r->note), "prefill: cannot connect");
		goto out;
	}
	rc = 0;
	for (uint64_t j = 0; j < r->prefill && !rc;) {
		uint64_t k, n = r->prefill - j < 256 ? r->prefill - j : 256;
		char line[128];

		for (k = 0; k < n; k++) {
			bench_fill_prefill(r, buf, j + k);
			if (bs_send_put(c, bench_level(r->levels, j + k), buf, r->payload) != 0) {
				rc = -EIO;
				break;
			}
		}
		for (k = 0; k < n && !rc; k++)
			if (bs_line(c, line, sizeof(line)) != 0 || strncmp(line, "INSERTED", 8) != 0) {
				snprintf(r->note, sizeof(r->note), "prefill: put: %s", line);
				rc = -EIO;
			}
		j += n;
	}
out:
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
	free(buf);
	return rc;
}

static int bs_setup(struct run *r) { return bs_setup_mode(r, BS_NOLOG); }
static int bs_setup_binlog(struct run *r) { return bs_setup_mode(r, BS_BINLOG); }
static int bs_setup_f0(struct run *r) { return bs_setup_mode(r, BS_F0); }

static int bs_producer(struct run *r, unsigned idx)
{
	struct bs_priv *p = r->priv;
	struct bs_conn *c = malloc(sizeof(*c));
	char line[128];
	struct pctx pc;
	int ex;

	if (!c || bs_open(c, p->srv.port) != 0) {
		free(c);
		return bench_fail(r, "beanstalkd: connect 127.0.0.1:%d: %s", p->srv.port, strerror(errno));
	}
	if ((ex = bench_producer_init(&pc, r, idx)) != 0)
		goto out_close;
	if ((ex = bench_ready(r)) != 0)
		goto out;
	r->prod[idx].start_ns = bench_now();
	for (uint64_t i = 0; i < pc.n; i++) {
		uint64_t seq = pc.base + i;

		bench_fill(r, pc.buf, seq);
		int smp = bench_sampled(&pc);
		if (r->paced)
			bench_wait_until(r, bench_send_time(r, idx, i));
		bench_stamp(pc.buf, smp);
		uint64_t t0 = r->phist ? bench_now() : 0;
		if (bs_send_put(c, bench_level(r->levels, seq), pc.buf, r->payload) != 0 ||
		    bs_line(c, line, sizeof(line)) != 0) {
			ex = atomic_load(&r->ctl->abort) ? CHILD_ABORTED
				: bench_fail(r, "beanstalkd put: %s", strerror(errno));
			goto out;
		}
		if (strncmp(line, "INSERTED", 8) != 0) {
			ex = bench_fail(r, "beanstalkd put: %s", line);
			goto out;
		}
		if (r->phist)   /* durable: the put's round trip (its fsync with -f0) */
			hdr_record(&r->phist[idx], bench_now() - t0);
		if ((i & 1023) == 1023 && (ex = bench_check(r)) != 0)
			goto out;
	}
	bench_producer_done(&pc);
	ex = CHILD_OK;
out:
	free(pc.buf);
out_close:
	close(c->fd);
	free(c);
	return ex;
}

static int bs_worker(struct run *r, unsigned idx)
{
	struct bs_priv *p = r->priv;
	struct bs_conn *c = malloc(sizeof(*c));
	unsigned char *buf = malloc(r->payload + 1u);
	char line[128], cmd[64];
	struct wctx wc;
	int ex;

	if (!c || !buf || bs_open(c, p->srv.port) != 0) {
		free(c);
		free(buf);
		return bench_fail(r, "beanstalkd: connect 127.0.0.1:%d: %s", p->srv.port, strerror(errno));
	}
	bench_worker_init(&wc, r, idx, bench_share(r->total, r->workers, idx));
	if ((ex = bench_ready(r)) != 0)
		goto out;
	while (wc.done < wc.quota) {
		unsigned long long id;
		unsigned len;

		if (bs_cmd(c, "reserve-with-timeout 1\r\n") != 0 || bs_line(c, line, sizeof(line)) != 0)
			goto io_error;
		if (strncmp(line, "TIMED_OUT", 9) == 0 || strncmp(line, "DEADLINE_SOON", 13) == 0) {
			if ((ex = bench_check(r)) != 0)
				goto out;
			continue;
		}
		if (sscanf(line, "RESERVED %llu %u", &id, &len) != 2 || len > r->payload) {
			ex = bench_fail(r, "beanstalkd reserve: %s", line);
			goto out;
		}
		if (bs_body(c, buf, len) != 0)
			goto io_error;
		bench_leased(&wc, 1);
		bench_handle(&wc, buf, len);
		snprintf(cmd, sizeof(cmd), "delete %llu\r\n", id);
		if (bs_cmd(c, cmd) != 0 || bs_line(c, line, sizeof(line)) != 0)
			goto io_error;
		if (strcmp(line, "DELETED") != 0) {
			ex = bench_fail(r, "beanstalkd delete %llu: %s", id, line);
			goto out;
		}
	}
	bench_worker_done(&wc);
	ex = CHILD_OK;
	goto out;
io_error:
	ex = atomic_load(&r->ctl->abort) ? CHILD_ABORTED
		: bench_fail(r, "beanstalkd: %s", errno ? strerror(errno) : "connection closed");
out:
	close(c->fd);
	free(c);
	free(buf);
	return ex;
}

static long bs_drain(struct run *r)
{
	struct bs_priv *p = r->priv;
	struct bs_conn *c = malloc(sizeof(*c));
	unsigned char *buf = malloc(r->payload + 1u);
	char line[128], cmd[64];
	long n = 0;

	if (!p || !c || !buf || bs_open(c, p->srv.port) != 0) {
		free(c);
		free(buf);
		return -ECONNREFUSED;
	}
	for (;;) {
		unsigned long long id;
		unsigned len;
		uint64_t seq;

		if (bs_cmd(c, "reserve-with-timeout 0\r\n") != 0 || bs_line(c, line, sizeof(line)) != 0) {
			n = -EIO;
			break;
		}
		if (sscanf(line, "RESERVED %llu %u", &id, &len) != 2)
			break;
		if (len > r->payload || bs_body(c, buf, len) != 0) {
			n = -EIO;
			break;
		}
		memcpy(&seq, buf, sizeof(seq));
		if (r->seen && seq < r->total && r->seen[seq] < 255)
			r->seen[seq]++;
		n++;
		snprintf(cmd, sizeof(cmd), "delete %llu\r\n", id);
		if (bs_cmd(c, cmd) != 0 || bs_line(c, line, sizeof(line)) != 0) {
			n = -EIO;
			break;
		}
	}
	close(c->fd);
	free(c);
	free(buf);
	return n;
}

static void bs_teardown(struct run *r)
{
	struct bs_priv *p = r->priv;

	if (!p)
		return;
	bench_server_stop(&p->srv);
	free(p);
	r->priv = NULL;
	r->server_pid = 0;
}

#define BS_SYSTEM(var, nm, setup_fn)                                        \
	const struct bench_sys var = {                                      \
		.name = nm,                                                 \
		.version = bs_version,                                      \
		.setup = setup_fn,                                          \
		.producer = bs_producer,                                    \
		.worker = bs_worker,                                        \
		.drain = bs_drain,                                          \
		.teardown = bs_teardown,                                    \
		.footprint = NULL,                                          \
	}
BS_SYSTEM(bench_sys_beanstalkd, "beanstalkd", bs_setup);
BS_SYSTEM(bench_sys_beanstalkd_binlog, "beanstalkd-binlog", bs_setup_binlog);
BS_SYSTEM(bench_sys_beanstalkd_f0, "beanstalkd-f0", bs_setup_f0);

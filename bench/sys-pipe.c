/* SPDX-License-Identifier: MIT */
/*
 * sys-pipe.c - tq-bench's system "pipe": the workload through one
 * anonymous pipe made by the parent before the fork, every producer writing
 * whole messages and every worker reading them. The pipe is what a shell
 * user reaches for first; every message is copied into the kernel and out.
 *
 * A write of at most PIPE_BUF bytes is atomic, so with messages that small
 * any number of producers and workers share the pipe (each read asks for
 * exactly one message and gets one). Larger messages are a byte stream:
 * they run with one producer and one worker only; other shapes give an
 * "unsupported" row. No priorities and no queues: one FIFO. The pipe's
 * buffer is raised to 1 MiB (F_SETPIPE_SZ) where the system allows, or to
 * what the prefill needs.
 *
 * The ends are non-blocking; an end that is full or empty waits in poll()
 * for at most 100 ms, then the loop checks the abort flag and the deadline.
 */
#include "bench.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PIPE_WAIT_MS 100
#define PIPE_SIZE (1 << 20)

struct pipe_priv {
	int fd[2];
	long size;
};

static void pipe_version(char *buf, size_t size)
{
	struct utsname u;

	snprintf(buf, size, "linux %s", uname(&u) == 0 ? u.release : "?");
}

static void pipe_note(struct run *r, const char *s)
{
	size_t n = strlen(r->note);

	snprintf(r->note + n, sizeof(r->note) - n, "%s%s", n ? "; " : "", s);
}

/* Write or read len bytes in full, waiting (bounded) when the pipe is full
 * or empty. 0, or a child exit code. */
static int pipe_io(struct run *r, int fd, unsigned char *buf, size_t len, int is_write)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = is_write ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return bench_fail(r, "pipe: unexpected end of file");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return bench_fail(r, "pipe %s: %s", is_write ? "write" : "read", strerror(errno));
		struct pollfd p = { .fd = fd, .events = is_write ? POLLOUT : POLLIN };
		if (poll(&p, 1, PIPE_WAIT_MS) == 0) {
			int ex = bench_check(r);

			if (ex)
				return ex;
		}
	}
	return 0;
}

static int pipe_setup(struct run *r)
{
	struct pipe_priv *p = calloc(1, sizeof(*p));
	uint64_t need = r->prefill * r->payload;
	long want = PIPE_SIZE;
	unsigned char *buf;
	int rc;

	if (!p)
		return -ENOMEM;
	p->fd[0] = p->fd[1] = -1;
	r->priv = p;
	if (r->payload > PIPE_BUF && (r->producers > 1 || r->workers > 1)) {
		snprintf(r->note, sizeof(r->note),
			 "messages over PIPE_BUF (%d B) are not atomic: one producer and one worker only",
			 PIPE_BUF);
		return BENCH_UNSUPPORTED;
	}
	if (r->queues > 1 || r->levels > 1)
		pipe_note(r, "no queues or priorities: one FIFO");
	if (r->batch > 1)
		pipe_note(r, "no batch calls");
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(r->note, sizeof(r->note), "pipe2: %s", strerror(errno));
		return -errno;
	}
	if (need + r->payload > (uint64_t)want)
		want = need + r->payload > LONG_MAX / 2 ? LONG_MAX / 2 : (long)(need + r->payload);
	p->size = fcntl(p->fd[1], F_SETPIPE_SZ, (int)(want > INT_MAX ? INT_MAX : want));
	if (p->size < 0) {
		p->size = fcntl(p->fd[1], F_SETPIPE_SZ, PIPE_SIZE);
		if (p->size < 0)
			p->size = fcntl(p->fd[1], F_GETPIPE_SZ);
	}
	if (need && need > (uint64_t)p->size) {
		snprintf(r->note, sizeof(r->note),
			 "prefill of %llu x %u B does not fit the pipe's buffer (%ld B)",
			 (unsigned long long)r->prefill, r->payload, p->size);
		return BENCH_UNSUPPORTED;
	}
	if (!(buf = malloc(r->payload)))
		return -ENOMEM;
	for (uint64_t j = 0; j < r->prefill; j++) {
		bench_fill_prefill(r, buf, j);
		if (write(p->fd[1], buf, r->payload) != (ssize_t)r->payload) {
			rc = -errno;
			snprintf(r->note, sizeof(r->note), "prefill: write: %s", strerror(errno));
			free(buf);
			return rc ? rc : -EIO;
		}
	}
	free(buf);
	return 0;
}

static int pipe_producer(struct run *r, unsigned idx)
{
	struct pipe_priv *p = r->priv;
	struct pctx c;
	int ex;

	if ((ex = bench_producer_init(&c, r, idx)) != 0)
		return ex;
	if ((ex = bench_ready(r)) != 0)
		goto out;
	r->prod[idx].start_ns = bench_now();
	for (uint64_t i = 0; i < c.n; i++) {
		bench_fill(r, c.buf, c.base + i);
		int smp = bench_sampled(&c);
		if (r->paced)
			bench_wait_until(r, bench_send_time(r, idx, i));
		bench_stamp(c.buf, smp);
		if ((ex = pipe_io(r, p->fd[1], c.buf, r->payload, 1)) != 0)
			goto out;
	}
	bench_producer_done(&c);
	ex = CHILD_OK;
out:
	free(c.buf);
	return ex;
}

static int pipe_worker(struct run *r, unsigned idx)
{
	struct pipe_priv *p = r->priv;
	unsigned char *buf = malloc(r->payload);
	struct wctx c;
	int ex;

	if (!buf)
		return bench_fail(r, "out of memory");
	bench_worker_init(&c, r, idx, bench_share(r->total, r->workers, idx));
	if ((ex = bench_ready(r)) != 0)
		goto out;
	while (c.done < c.quota) {
		if ((ex = pipe_io(r, p->fd[0], buf, r->payload, 0)) != 0)
			goto out;
		bench_leased(&c, 1);
		bench_handle(&c, buf, r->payload);
	}
	bench_worker_done(&c);
	ex = CHILD_OK;
out:
	free(buf);
	return ex;
}

static long pipe_drain(struct run *r)
{
	struct pipe_priv *p = r->priv;
	unsigned char *buf;
	long n = 0;
	ssize_t len;

	if (!p || p->fd[0] < 0 || !(buf = malloc(r->payload)))
		return -EINVAL;
	while ((len = read(p->fd[0], buf, r->payload)) == (ssize_t)r->payload) {
		uint64_t seq;

		memcpy(&seq, buf, sizeof(seq));
		if (r->seen && seq < r->total && r->seen[seq] < 255)
			r->seen[seq]++;
		n++;
	}
	free(buf);
	if (len > 0) {
		snprintf(r->note, sizeof(r->note), "drain: a partial message of %zd B", len);
		return -EPROTO;
	}
	return len < 0 && errno != EAGAIN ? -errno : n;
}

static void pipe_teardown(struct run *r)
{
	struct pipe_priv *p = r->priv;

	if (!p)
		return;
	if (p->fd[0] >= 0)
		close(p->fd[0]);
	if (p->fd[1] >= 0)
		close(p->fd[1]);
	free(p);
	r->priv = NULL;
}

const struct bench_sys bench_sys_pipe = {
	.name = "pipe",
	.version = pipe_version,
	.setup = pipe_setup,
	.producer = pipe_producer,
	.worker = pipe_worker,
	.drain = pipe_drain,
	.teardown = pipe_teardown,
	.footprint = NULL,
};

/* SPDX-License-Identifier: MIT */
/*
 * sys-posix-mq.c - tq-bench's system "posix-mq": the workload on one POSIX
 * message queue (mq_open, mq_timedsend, mq_timedreceive), the kernel's own
 * priority queue between processes. Task levels map to message priorities
 * (level 0, the most urgent, gets the highest). Every call copies the
 * payload through the kernel.
 *
 * Limits: /proc/sys/fs/mqueue/msg_max and msgsize_max bound an
 * unprivileged queue's depth and message size, RLIMIT_MSGQUEUE its bytes.
 * tq-bench raises its RLIMIT_MSGQUEUE where it may, asks for the depth it
 * wants, and says in the row what it got; a payload or prefill that does
 * not fit gives an "unsupported" row that says why.
 */
#include "bench.h"

#include <fcntl.h>
#include <mqueue.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MQ_WAIT_NS 100000000u
#define MQ_DEFAULT_MAXMSG 4096

struct mq_priv {
	mqd_t q;
	long maxmsg, msgsize;
};

static void mq_version(char *buf, size_t size)
{
	struct utsname u;

	if (uname(&u) == 0)
		snprintf(buf, size, "linux %s", u.release);
	else
		snprintf(buf, size, "linux");
}

static long proc_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void raise_msgqueue_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MSGQUEUE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
	if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0 && getrlimit(RLIMIT_MSGQUEUE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_MSGQUEUE, &rl);
	}
}

static void append_note(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append_note(struct run *r, const char *fmt, ...)
{
	size_t n = strlen(r->note);
	va_list ap;

	if (n && n + 2 < sizeof(r->note)) {
		memcpy(r->note + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(r->note + n, sizeof(r->note) - n, fmt, ap);
	va_end(ap);
}

/* Open a new queue `name` for messages of `msgsize` bytes, asking for
 * `want` of them; *got says how many it holds. 0, BENCH_UNSUPPORTED, or a
 * negative errno, with r->note saying why. */
static int mq_make(struct run *r, const char *name, long want, long msgsize, mqd_t *q, long *got)
{
	long msg_max = proc_long("/proc/sys/fs/mqueue/msg_max");
	long msgsize_max = proc_long("/proc/sys/fs/mqueue/msgsize_max");
	struct mq_attr a = { .mq_maxmsg = want, .mq_msgsize = msgsize };

	raise_msgqueue_limit();
	for (;;) {
		*q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &a);
		if (*q != (mqd_t)-1)
			break;
		if (errno == EINVAL && msgsize_max > 0 && msgsize > msgsize_max) {
			append_note(r, "payload %ld > /proc/sys/fs/mqueue/msgsize_max %ld", msgsize,
				    msgsize_max);
			return BENCH_UNSUPPORTED;
		}
		if ((errno == EINVAL || errno == EMFILE || errno == ENOMEM) && a.mq_maxmsg > 1) {
			/* Over msg_max (unprivileged) or over RLIMIT_MSGQUEUE:
			 * settle for a shallower queue and say so. */
			long next = msg_max > 0 && a.mq_maxmsg > msg_max ? msg_max : a.mq_maxmsg / 2;
			a.mq_maxmsg = next > 0 ? next : 1;
			continue;
		}
		int e = errno;
		append_note(r, "mq_open(%s): %s", name, strerror(e));
		return e == ENOSYS || e == EACCES || e == EPERM ? BENCH_UNSUPPORTED : -e;
	}
	*got = a.mq_maxmsg;
	if (a.mq_maxmsg < want)
		append_note(r, "mq_maxmsg %ld (asked %ld)", a.mq_maxmsg, want);
	if (msgsize_max > 0 && msgsize > msgsize_max)
		append_note(r, "payload %ld > msgsize_max %ld, allowed for a privileged process",
			    msgsize, msgsize_max);
	return 0;
}

static inline unsigned mq_prio(const struct run *r, uint64_t j)
{
	unsigned level = bench_level(r->levels, j);

	return r->levels - 1u - level;
}

static int mq_setup(struct run *r)
{
	struct mq_priv *p = calloc(1, sizeof(*p));
	long want = r->mq_maxmsg ? r->mq_maxmsg
		    : (long)(r->prefill + MQ_DEFAULT_MAXMSG);
	unsigned char *buf;
	int rc;

	if (!p)
		return -ENOMEM;
	p->q = (mqd_t)-1;
	r->priv = p;
	if (r->queues > 1)
		snprintf(r->note, sizeof(r->note), "one queue (--queues ignored)");
	if (r->batch > 1)
		append_note(r, "no batch calls (--batch %u ignored)", r->batch);
	p->msgsize = r->payload;
	rc = mq_make(r, r->name, want, p->msgsize, &p->q, &p->maxmsg);
	if (rc != 0)
		return rc;
	if (r->prefill && (uint64_t)p->maxmsg <= r->prefill) {
		append_note(r, "prefill %llu does not fit mq_maxmsg %ld",
			    (unsigned long long)r->prefill, p->maxmsg);
		return BENCH_UNSUPPORTED;
	}
	buf = malloc(r->payload);
	if (!buf)
		return -ENOMEM;
	for (uint64_t j = 0; j < r->prefill; j++) {
		bench_fill_prefill(r, buf, j);
		if (mq_send(p->q, (const char *)buf, r->payload, mq_prio(r, j)) != 0) {
			rc = -errno;
			snprintf(r->note, sizeof(r->note), "prefill: mq_send: %s", strerror(errno));
			free(buf);
			return rc;
		}
	}
	free(buf);
	return 0;
}

static void abs_in(struct timespec *ts, uint64_t ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ns / 1000000000u);
	ts->tv_nsec += (long)(ns % 1000000000u);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int mq_producer(struct run *r, unsigned idx)
{
	struct pctx c;
	struct timespec until;
	const int paced = r->paced;
	mqd_t q;
	int ex;

	q = mq_open(r->name, O_WRONLY);
	if (q == (mqd_t)-1)
		return bench_fail(r, "mq_open(%s): %s", r->name, strerror(errno));
	if ((ex = bench_producer_init(&c, r, idx)) != 0)
		return ex;
	if ((ex = bench_ready(r)) != 0)
		goto out;
	r->prod[idx].start_ns = bench_now();
	/* An absolute timeout is only looked at when the call would block, so
	 * one computed now serves until a call times out. */
	abs_in(&until, MQ_WAIT_NS);
	for (uint64_t i = 0; i < c.n; i++) {
		unsigned prio = mq_prio(r, c.base + i);

		bench_fill(r, c.buf, c.base + i);
		int smp = bench_sampled(&c);
		if (paced)
			bench_wait_until(r, bench_send_time(r, idx, i));
		for (;;) {
			bench_stamp(c.buf, smp);
			if (mq_timedsend(q, (const char *)c.buf, r->payload, prio, &until) == 0)
				break;
			if (errno != ETIMEDOUT && errno != EINTR) {
				ex = bench_fail(r, "mq_timedsend: %s", strerror(errno));
				goto out;
			}
			if ((ex = bench_check(r)) != 0)
				goto out;
			abs_in(&until, MQ_WAIT_NS);
		}
	}
	bench_producer_done(&c);
	ex = CHILD_OK;
out:
	free(c.buf);
	mq_close(q);
	return ex;
}

static int mq_worker(struct run *r, unsigned idx)
{
	struct mq_attr a;
	struct timespec until;
	struct wctx c;
	unsigned char *buf = NULL;
	unsigned prio;
	mqd_t q;
	int ex;

	q = mq_open(r->name, O_RDONLY);
	if (q == (mqd_t)-1)
		return bench_fail(r, "mq_open(%s): %s", r->name, strerror(errno));
	if (mq_getattr(q, &a) != 0 || !(buf = malloc((size_t)a.mq_msgsize))) {
		ex = bench_fail(r, "mq_getattr: %s", strerror(errno));
		goto out;
	}
	bench_worker_init(&c, r, idx, bench_share(r->total, r->workers, idx));
	if ((ex = bench_ready(r)) != 0)
		goto out;
	abs_in(&until, MQ_WAIT_NS);
	while (c.done < c.quota) {
		ssize_t n = mq_timedreceive(q, (char *)buf, (size_t)a.mq_msgsize, &prio, &until);

		if (n >= 0) {
			bench_leased(&c, 1);
			bench_handle(&c, buf, (uint32_t)n);
			continue;
		}
		if (errno != ETIMEDOUT && errno != EINTR) {
			ex = bench_fail(r, "mq_timedreceive: %s", strerror(errno));
			goto out;
		}
		if ((ex = bench_check(r)) != 0)
			goto out;
		abs_in(&until, MQ_WAIT_NS);
	}
	bench_worker_done(&c);
	ex = CHILD_OK;
out:
	free(buf);
	mq_close(q);
	return ex;
}

static long mq_drain(struct run *r)
{
	struct mq_priv *p = r->priv;
	unsigned char *buf;
	long n = 0;
	ssize_t len;

	if (!p || p->q == (mqd_t)-1 || !(buf = malloc((size_t)p->msgsize)))
		return -EINVAL;
	while ((len = mq_receive(p->q, (char *)buf, (size_t)p->msgsize, NULL)) >= 0) {
		uint64_t seq;

		memcpy(&seq, buf, sizeof(seq));
		if (r->seen && seq < r->total && r->seen[seq] < 255)
			r->seen[seq]++;
		n++;
	}
	free(buf);
	return errno == EAGAIN ? n : -errno;
}

static void mq_teardown(struct run *r)
{
	struct mq_priv *p = r->priv;

	if (!p)
		return;
	mq_unlink(r->name);
	if (p->q != (mqd_t)-1)
		mq_close(p->q);
	free(p);
	r->priv = NULL;
}

static long meminfo_kb(const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int mq_footprint(struct run *r, uint64_t k, struct footprint *fp)
{
	char name[sizeof(r->name) + 8], note[sizeof(r->note)];
	unsigned char *buf;
	long got = 0, before, after;
	uint64_t j;
	mqd_t q;
	int rc;

	/* mq_make writes its complaints into r->note: keep the row's. */
	memcpy(note, r->note, sizeof(note));
	snprintf(name, sizeof(name), "%s-fp", r->name);
	rc = mq_make(r, name, k > 65536 ? 65536 : (long)k, r->payload, &q, &got);
	memcpy(r->note, note, sizeof(note));
	if (rc != 0)
		return rc < 0 ? rc : -ENOTSUP;
	buf = calloc(1, r->payload);
	if (!buf) {
		mq_unlink(name);
		mq_close(q);
		return -ENOMEM;
	}
	/* The kernel keeps each message in a slab object: the machine-wide
	 * Slab figure before and after is what can be seen from here. */
	before = meminfo_kb("Slab");
	for (j = 0; j < (uint64_t)got; j++) {
		memcpy(buf, &j, sizeof(j));
		if (mq_send(q, (const char *)buf, r->payload, 0) != 0)
			break;
	}
	after = meminfo_kb("Slab");
	fp->k = j;
	fp->empty = 0;
	fp->resident = after > before ? (uint64_t)(after - before) * 1024u : 0;
	fp->size = 0;
	/* Below a few thousand messages the delta is lost in the machine's
	 * own slab traffic: say nothing rather than something wrong. */
	fp->valid = j >= 4096 && after > before;
	fp->method = "Slab delta in /proc/meminfo (machine-wide, approximate)";
	free(buf);
	mq_unlink(name);
	mq_close(q);
	return 0;
}

const struct bench_sys bench_sys_posix_mq = {
	.name = "posix-mq",
	.version = mq_version,
	.setup = mq_setup,
	.producer = mq_producer,
	.worker = mq_worker,
	.drain = mq_drain,
	.teardown = mq_teardown,
	.footprint = mq_footprint,
};

/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the worker runtime (include/tq/worker.h): handlers per task
 * type run by N workers, each a pair of threads.
 *
 * A tq handle belongs to one thread at a time, and tq_extend() must be
 * called on the handle that holds the lease. So each worker's lease thread
 * owns its handle and makes every engine call (lease, extend, heartbeat,
 * ack, fail, release), and hands each task to the worker's handler thread,
 * which runs the user's handler on a private copy of the payload. While the
 * handler runs, the lease thread sleeps on a futex until the earliest of:
 * the handler returning, the next lease extension (half the lease length),
 * the next heartbeat, the handler's timeout, or the shutdown deadline. It
 * alone decides the task's fate, so a late result after a timeout or a
 * shutdown is simply never looked at.
 *
 * The handoff between the two threads uses release/acquire atomics on two
 * words (go: bumped by the lease thread to start a job, bit 31 to quit;
 * done: set by the handler thread to the job's number when it returns) and
 * private futexes to sleep. tq_worker_stop() only stores atomics and wakes
 * futexes, which makes it async-signal-safe.
 *
 * Nothing here uses the engine's internals: only the public API.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <tq/tq.h>
#include <tq/worker.h>

#define NO_TIME     UINT64_MAX
#define GO_QUIT     0x80000000u
#define GO_SEQ      0x7fffffffu

struct handler {
	uint32_t type;
	bool timeout_set;
	uint32_t timeout_ms;
	tq_handler_fn fn;
	void *arg;
};

struct tq_job {
	struct slot *slot;
	struct tq_task task;       /* payload points to buf */
	uint8_t *buf;
	size_t cap;
	uint8_t *res;
	size_t res_len, res_cap;
	uint64_t deadline_ns;      /* monotonic; NO_TIME without a timeout */
	tq_handler_fn fn;
	void *arg;
	int rc;                    /* the handler's return */
	uint32_t cancelled;        /* futex word: 1 once given up */
};

struct slot {
	struct tq_worker *w;
	unsigned index;
	tq *t;
	pthread_t lease_thr, exec_thr;
	bool lease_started, exec_started;
	bool abandoned;            /* lease thread left a handler running */
	uint32_t seq;              /* last job number (lease thread only) */
	uint32_t go;               /* job number | GO_QUIT; handler thread sleeps on it */
	uint32_t done;             /* number of the last job that returned */
	uint32_t wake;             /* the lease thread sleeps on it */
	pthread_mutex_t mu;        /* orders "detached" against the handler's exit */
	bool detached;
	struct tq_job job;
};

struct tq_worker {
	char name[TQ_NAME_MAX + 1];
	struct tq_worker_config cfg;
	int qs[TQ_QUEUES_MAX];
	unsigned nq;
	uint32_t max_result;

	struct handler *h;         /* sorted by type */
	size_t nh, caph;
	struct handler any;        /* TQ_WORKER_ANY_TYPE */

	uint32_t running_flag;     /* tq_worker_run() in progress */
	uint64_t stop_at;          /* monotonic ns; NO_TIME until stopped */
	int error;                 /* first fatal error */
	uint32_t refs;             /* the user's, plus one per abandoned thread */
	struct slot *slots;
	unsigned nslots;

	bool signals;
	struct sigaction old_term, old_int;

	struct {
		uint64_t leased, done, failed, timeouts, released, lost, unhandled, extended;
		uint32_t running;
	} ctr;
};

/* ------------------------------------------------------------------------
 * Small helpers
 */
static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep while *word == val, until the monotonic time `at` (NO_TIME: no
 * limit). Spurious returns are fine: every caller re-checks. */
static void fwait(uint32_t *word, uint32_t val, uint64_t at)
{
	struct timespec ts;

	if (at == NO_TIME) {
		syscall(SYS_futex, word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
		return;
	}
	ts.tv_sec = (time_t)(at / 1000000000ull);
	ts.tv_nsec = (long)(at % 1000000000ull);
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
	syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, &ts, NULL,
		FUTEX_BITSET_MATCH_ANY);
}

static void fwake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

static void bump(uint32_t *word)
{
	__atomic_fetch_add(word, 1, __ATOMIC_RELEASE);
	fwake(word);
}

#define CTR_ADD(w, f) __atomic_fetch_add(&(w)->ctr.f, 1, __ATOMIC_RELAXED)

static uint64_t stop_at(const struct tq_worker *w)
{
	return __atomic_load_n(&w->stop_at, __ATOMIC_ACQUIRE);
}

static bool stopping(const struct tq_worker *w)
{
	return stop_at(w) != NO_TIME;
}

static void fatal(struct tq_worker *w, int err)
{
	int zero = 0;

	__atomic_compare_exchange_n(&w->error, &zero, err, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	tq_worker_stop(w, 0);
}

static void cancel(struct tq_job *job)
{
	__atomic_store_n(&job->cancelled, 1, __ATOMIC_RELEASE);
	fwake(&job->cancelled);
}

static void worker_destroy(struct tq_worker *w)
{
	for (unsigned i = 0; i < w->nslots; i++) {
		pthread_mutex_destroy(&w->slots[i].mu);
		free(w->slots[i].job.buf);
		free(w->slots[i].job.res);
	}
	free(w->slots);
	free(w->h);
	free(w);
}

static void worker_unref(struct tq_worker *w)
{
	if (__atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) == 0)
		worker_destroy(w);
}

/* ------------------------------------------------------------------------
 * Construction and handlers
 */
int tq_worker_new(const char *name, const struct tq_worker_config *cfg, tq_worker **ret)
{
	static const struct tq_worker_config defaults;
	struct tq_segment_info si;
	struct tq_worker *w;
	tq *t;
	int e;

	if (!name || !ret)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	if (cfg->threads > TQ_WORKER_THREADS_MAX || cfg->nqueues > TQ_QUEUES_MAX ||
	    (cfg->nqueues && !cfg->queues) || cfg->poll_ms > 1000 ||
	    cfg->spin_us > TQ_SPIN_US_MAX ||
	    (cfg->policy != TQ_POLICY_STRICT && cfg->policy != TQ_POLICY_WEIGHTED))
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(cfg->reserved) / sizeof(cfg->reserved[0]); i++)
		if (cfg->reserved[i])
			return -EINVAL;
	if (strlen(name) > TQ_NAME_MAX)
		return -ENAMETOOLONG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	strcpy(w->name, name);
	w->cfg = *cfg;
	w->cfg.queues = NULL;        /* resolved below; the caller's array may go */
	if (!w->cfg.threads)
		w->cfg.threads = 1;
	if (!w->cfg.heartbeat_ms)
		w->cfg.heartbeat_ms = 1000;
	if (!w->cfg.poll_ms)
		w->cfg.poll_ms = 100;
	w->any.timeout_ms = cfg->timeout_ms;
	w->any.timeout_set = true;
	w->stop_at = NO_TIME;
	w->refs = 1;

	e = tq_attach(name, &t);
	if (e < 0) {
		free(w);
		return e;
	}
	for (unsigned i = 0; i < cfg->nqueues; i++) {
		e = cfg->queues[i] ? tq_queue_find(t, cfg->queues[i]) : -EINVAL;
		if (e < 0)
			break;
		w->qs[w->nq++] = e;
	}
	if (e >= 0)
		e = tq_segment_info(t, &si);
	tq_detach(t);
	if (e < 0) {
		free(w);
		return e;
	}
	w->max_result = si.config.max_payload;

	w->nslots = w->cfg.threads;
	w->slots = calloc(w->nslots, sizeof(*w->slots));
	if (!w->slots) {
		free(w);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < w->nslots; i++) {
		w->slots[i].w = w;
		w->slots[i].index = i;
		w->slots[i].job.slot = &w->slots[i];
		pthread_mutex_init(&w->slots[i].mu, NULL);
	}
	*ret = w;
	return 0;
}

/* The entry for `type`, created (zeroed) if `create`; NULL if absent or
 * out of memory. */
static struct handler *entry(struct tq_worker *w, uint32_t type, bool create)
{
	size_t lo = 0, hi = w->nh;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (w->h[mid].type == type)
			return &w->h[mid];
		if (w->h[mid].type < type)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create)
		return NULL;
	if (w->nh == w->caph) {
		size_t cap = w->caph ? 2 * w->caph : 8;
		struct handler *n = realloc(w->h, cap * sizeof(*n));

		if (!n)
			return NULL;
		w->h = n;
		w->caph = cap;
	}
	memmove(&w->h[lo + 1], &w->h[lo], (w->nh - lo) * sizeof(*w->h));
	memset(&w->h[lo], 0, sizeof(*w->h));
	w->h[lo].type = type;
	w->nh++;
	return &w->h[lo];
}

static int check_setup(const struct tq_worker *w, uint32_t type)
{
	if (!w || (type > TQ_TYPE_MAX && type != TQ_WORKER_ANY_TYPE))
		return -EINVAL;
	if (__atomic_load_n(&w->running_flag, __ATOMIC_ACQUIRE))
		return -EBUSY;
	return 0;
}

int tq_worker_handle(tq_worker *w, uint32_t type, tq_handler_fn fn, void *arg)
{
	struct handler *h;
	int e = check_setup(w, type);

	if (e < 0)
		return e;
	h = type == TQ_WORKER_ANY_TYPE ? &w->any : entry(w, type, true);
	if (!h)
		return -ENOMEM;
	h->fn = fn;
	h->arg = fn ? arg : NULL;
	return 0;
}

int tq_worker_set_timeout(tq_worker *w, uint32_t type, uint32_t timeout_ms)
{
	struct handler *h;
	int e = check_setup(w, type);

	if (e < 0)
		return e;
	h = type == TQ_WORKER_ANY_TYPE ? &w->any : entry(w, type, true);
	if (!h)
		return -ENOMEM;
	h->timeout_ms = timeout_ms;
	h->timeout_set = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * Stopping and signals
 */
int tq_worker_stop(tq_worker *w, uint32_t deadline_ms)
{
	uint64_t at, cur;

	if (!w)
		return -EINVAL;
	at = mono_ns() + (uint64_t)deadline_ms * 1000000ull;
	cur = __atomic_load_n(&w->stop_at, __ATOMIC_ACQUIRE);
	while (at < cur && !__atomic_compare_exchange_n(&w->stop_at, &cur, at, false,
							 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	for (unsigned i = 0; i < w->nslots; i++)
		bump(&w->slots[i].wake);
	return 0;
}

static tq_worker *sig_worker;
static uint32_t sig_deadline_ms;

static void on_signal(int sig)
{
	int saved = errno;
	tq_worker *w = __atomic_load_n(&sig_worker, __ATOMIC_ACQUIRE);

	(void)sig;
	if (w)
		tq_worker_stop(w, sig_deadline_ms);
	errno = saved;
}

int tq_worker_install_signals(tq_worker *w, uint32_t deadline_ms)
{
	struct sigaction sa;
	tq_worker *none = NULL;

	if (!w)
		return -EINVAL;
	if (w->signals)
		return 0;
	sig_deadline_ms = deadline_ms;
	if (!__atomic_compare_exchange_n(&sig_worker, &none, w, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return -EBUSY;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, &w->old_term) < 0 || sigaction(SIGINT, &sa, &w->old_int) < 0) {
		int e = -errno;

		sigaction(SIGTERM, &w->old_term, NULL);
		__atomic_store_n(&sig_worker, NULL, __ATOMIC_RELEASE);
		return e;
	}
	w->signals = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * The handler thread
 */
static void *exec_main(void *arg)
{
	struct slot *s = arg;
	struct tq_worker *w = s->w;
	uint32_t seen = 0;
	bool detached;

	for (;;) {
		uint32_t g = __atomic_load_n(&s->go, __ATOMIC_ACQUIRE);
		struct tq_job *job = &s->job;

		if ((g & GO_SEQ) == seen) {
			if (g & GO_QUIT)
				break;
			fwait(&s->go, g, NO_TIME);
			continue;
		}
		seen = g & GO_SEQ;
		__atomic_fetch_add(&w->ctr.running, 1, __ATOMIC_RELAXED);
		job->rc = job->fn(job, &job->task, job->arg);
		__atomic_fetch_sub(&w->ctr.running, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&s->done, seen, __ATOMIC_RELEASE);
		bump(&s->wake);
	}
	pthread_mutex_lock(&s->mu);
	detached = s->detached;
	pthread_mutex_unlock(&s->mu);
	if (detached)
		worker_unref(w);
	return NULL;
}

/* ------------------------------------------------------------------------
 * The lease thread
 */
static const struct handler *lookup(const struct tq_worker *w, uint32_t type,
				    uint32_t *timeout_ms)
{
	const struct handler *h = entry((struct tq_worker *)w, type, false);

	*timeout_ms = h && h->timeout_set ? h->timeout_ms : w->any.timeout_ms;
	if (h && h->fn)
		return h;
	return w->any.fn ? &w->any : NULL;
}

/* What a finishing call's error means for the runtime. -ESTALE/-ENOENT:
 * the lease was taken back. Others (no room to requeue or for the result)
 * leave the task leased by this handle: it comes back when its lease
 * expires (tq_recover()), so it is counted as lost too. Only a corrupt
 * segment stops the runtime. */
static void finish_error(struct slot *s, int e)
{
	if (e == -EPROTO || e == -EINVAL)
		fatal(s->w, e);
	else if (e < 0)
		CTR_ADD(s->w, lost);
}

static void finish_fail(struct slot *s, uint64_t id)
{
	int e = tq_fail(s->t, id);

	if (e >= 0)
		CTR_ADD(s->w, failed);
	else
		finish_error(s, e);
}

static void finish_release(struct slot *s, uint64_t id)
{
	int e = tq_release(s->t, id);

	if (e >= 0)
		CTR_ADD(s->w, released);
	else
		finish_error(s, e);
}

static void finish(struct slot *s, uint64_t id, int rc)
{
	struct tq_job *job = &s->job;
	int e;

	switch (rc) {
	case TQ_WORK_OK:
		e = tq_ack(s->t, id, job->res_len ? job->res : NULL, job->res_len);
		if (e == -EAGAIN || e == -EMSGSIZE)
			finish_fail(s, id);        /* no room for the result */
		else if (e >= 0)
			CTR_ADD(s->w, done);
		else
			finish_error(s, e);
		return;
	case TQ_WORK_RELEASE:
		finish_release(s, id);
		return;
	default:
		finish_fail(s, id);
		return;
	}
}

static uint64_t min3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a < b ? a : b;

	return m < c ? m : c;
}

/* Run one leased task through its handler and decide its fate. */
static void run_one(struct slot *s, const struct tq_task *task)
{
	static uint8_t empty;
	struct tq_worker *w = s->w;
	struct tq_job *job = &s->job;
	const struct handler *h;
	uint32_t timeout_ms;
	uint64_t now, lease_ns, rt_now, ext_ns, next_extend, next_hb, hb_ns;
	bool given_up = false;
	uint32_t seq;

	h = lookup(w, task->type, &timeout_ms);
	if (!h) {
		CTR_ADD(w, unhandled);
		finish_fail(s, task->id);
		return;
	}
	if (task->len > job->cap) {
		uint8_t *b = realloc(job->buf, task->len);

		if (!b) {
			finish_release(s, task->id);
			fatal(w, -ENOMEM);
			return;
		}
		job->buf = b;
		job->cap = task->len;
	}
	if (task->len)
		memcpy(job->buf, task->payload, task->len);
	job->task = *task;
	job->task.payload = task->len ? job->buf : &empty;
	job->res_len = 0;
	job->fn = h->fn;
	job->arg = h->arg;
	job->rc = TQ_WORK_FAIL;
	__atomic_store_n(&job->cancelled, 0, __ATOMIC_RELAXED);

	now = mono_ns();
	rt_now = tq_now_ns();
	job->deadline_ns = timeout_ms ? now + (uint64_t)timeout_ms * 1000000ull : NO_TIME;
	lease_ns = w->cfg.lease_ms ? (uint64_t)w->cfg.lease_ms * 1000000ull :
		   task->deadline_ns > rt_now ? task->deadline_ns - rt_now : 0;
	/* Extend at half the lease (at most every millisecond). */
	ext_ns = lease_ns / 2 > 1000000ull ? lease_ns / 2 : 1000000ull;
	next_extend = now + ext_ns;
	hb_ns = (uint64_t)w->cfg.heartbeat_ms * 1000000ull;
	next_hb = now + hb_ns;

	seq = (s->seq + 1) & GO_SEQ;
	if (!seq)
		seq = 1;
	s->seq = seq;
	/* Keep GO_QUIT as it is (never set while this thread runs). */
	__atomic_store_n(&s->go, seq, __ATOMIC_RELEASE);
	fwake(&s->go);

	for (;;) {
		uint32_t wv = __atomic_load_n(&s->wake, __ATOMIC_ACQUIRE);
		uint64_t sa, wake_at;
		int e;

		if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) == seq)
			break;
		now = mono_ns();
		if (!given_up && now >= job->deadline_ns) {
			cancel(job);
			given_up = true;
			e = tq_fail(s->t, task->id);
			if (e >= 0)
				CTR_ADD(w, timeouts);
			else
				finish_error(s, e);
		}
		if (!given_up && now >= next_extend) {
			e = tq_extend(s->t, task->id, w->cfg.lease_ms);
			if (e < 0) {
				cancel(job);
				given_up = true;
				finish_error(s, e);
			} else {
				CTR_ADD(w, extended);
				next_extend = now + ext_ns;
				next_hb = now + hb_ns;
			}
		}
		if (now >= next_hb) {
			tq_heartbeat(s->t);
			next_hb = now + hb_ns;
		}
		sa = stop_at(w);
		if (now >= sa) {
			/* The shutdown deadline: give the task back and leave
			 * the handler to finish on its own. */
			if (!given_up) {
				cancel(job);
				finish_release(s, task->id);
			}
			s->abandoned = true;
			return;
		}
		wake_at = min3(next_hb, sa, given_up ? NO_TIME : job->deadline_ns);
		if (!given_up && next_extend < wake_at)
			wake_at = next_extend;
		fwait(&s->wake, wv, wake_at);
	}
	if (!given_up)
		finish(s, task->id, job->rc);
}

static void *lease_main(void *arg)
{
	struct slot *s = arg;
	struct tq_worker *w = s->w;
	struct tq_lease_opts lo;

	memset(&lo, 0, sizeof(lo));
	lo.queues = w->nq ? w->qs : NULL;
	lo.nqueues = w->nq;
	lo.policy = w->cfg.policy;
	lo.lease_ms = w->cfg.lease_ms;
	lo.timeout_ms = (int32_t)w->cfg.poll_ms;
	lo.spin_us = w->cfg.spin_us;
	while (!stopping(w)) {
		struct tq_task task;
		int r = tq_lease(s->t, &lo, &task, 1);

		if (r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR)
			continue;
		if (r < 0) {
			fatal(w, r);
			break;
		}
		CTR_ADD(w, leased);
		if (stopping(w)) {
			finish_release(s, task.id);
			break;
		}
		run_one(s, &task);
		if (s->abandoned)
			break;
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Running
 */

/* After the lease thread is gone: stop the handler thread, joining it
 * when it is idle, leaving it (with a reference on w) when its handler
 * still runs. */
static void stop_exec(struct slot *s)
{
	struct tq_worker *w = s->w;
	bool busy;

	pthread_mutex_lock(&s->mu);
	busy = __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != s->seq;
	if (busy) {
		s->detached = true;
		__atomic_fetch_add(&w->refs, 1, __ATOMIC_RELAXED);
	}
	__atomic_fetch_or(&s->go, GO_QUIT, __ATOMIC_RELEASE);
	fwake(&s->go);
	pthread_mutex_unlock(&s->mu);
	if (busy)
		pthread_detach(s->exec_thr);
	else
		pthread_join(s->exec_thr, NULL);
	s->exec_started = false;
}

int tq_worker_run(tq_worker *w)
{
	sigset_t block, old;
	uint32_t zero = 0;
	int e = 0;

	if (!w)
		return -EINVAL;
	if (!__atomic_compare_exchange_n(&w->running_flag, &zero, 1, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return -EBUSY;
	for (unsigned i = 0; i < w->nslots && e == 0 && !stopping(w); i++) {
		struct slot *s = &w->slots[i];

		if (s->abandoned || s->t)
			continue;
		e = tq_attach(w->name, &s->t);
	}
	/* The runtime's threads leave SIGTERM and SIGINT to the caller's. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (unsigned i = 0; i < w->nslots && e == 0 && !stopping(w); i++) {
		struct slot *s = &w->slots[i];
		int pe = pthread_create(&s->exec_thr, NULL, exec_main, s);

		if (pe) {
			e = -pe;
			break;
		}
		s->exec_started = true;
		pe = pthread_create(&s->lease_thr, NULL, lease_main, s);
		if (pe) {
			e = -pe;
			break;
		}
		s->lease_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e < 0)
		fatal(w, e);
	for (unsigned i = 0; i < w->nslots; i++) {
		struct slot *s = &w->slots[i];

		if (s->lease_started) {
			pthread_join(s->lease_thr, NULL);
			s->lease_started = false;
		}
		if (s->exec_started)
			stop_exec(s);
		tq_detach(s->t);
		s->t = NULL;
	}
	e = __atomic_load_n(&w->error, __ATOMIC_SEQ_CST);
	/* Stopped for good: a later run returns at once. */
	tq_worker_stop(w, 0);
	__atomic_store_n(&w->running_flag, 0, __ATOMIC_RELEASE);
	return e;
}

int tq_worker_stats(const tq_worker *w, struct tq_worker_stats *st)
{
	if (!w || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->leased = __atomic_load_n(&w->ctr.leased, __ATOMIC_RELAXED);
	st->done = __atomic_load_n(&w->ctr.done, __ATOMIC_RELAXED);
	st->failed = __atomic_load_n(&w->ctr.failed, __ATOMIC_RELAXED);
	st->timeouts = __atomic_load_n(&w->ctr.timeouts, __ATOMIC_RELAXED);
	st->released = __atomic_load_n(&w->ctr.released, __ATOMIC_RELAXED);
	st->lost = __atomic_load_n(&w->ctr.lost, __ATOMIC_RELAXED);
	st->unhandled = __atomic_load_n(&w->ctr.unhandled, __ATOMIC_RELAXED);
	st->extended = __atomic_load_n(&w->ctr.extended, __ATOMIC_RELAXED);
	st->running = __atomic_load_n(&w->ctr.running, __ATOMIC_RELAXED);
	st->threads = w->cfg.threads;
	return 0;
}

void tq_worker_free(tq_worker *w)
{
	tq_worker *self;

	if (!w)
		return;
	if (w->signals) {
		sigaction(SIGTERM, &w->old_term, NULL);
		sigaction(SIGINT, &w->old_int, NULL);
		self = w;
		__atomic_compare_exchange_n(&sig_worker, &self, NULL, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
	}
	worker_unref(w);
}

/* ------------------------------------------------------------------------
 * Inside a handler
 */
int tq_job_set_result(tq_job *job, const void *data, size_t len)
{
	if (!job || (len && !data))
		return -EINVAL;
	if (len > job->slot->w->max_result)
		return -EMSGSIZE;
	if (len > job->res_cap) {
		uint8_t *r = realloc(job->res, len);

		if (!r)
			return -ENOMEM;
		job->res = r;
		job->res_cap = len;
	}
	if (len)
		memcpy(job->res, data, len);
	job->res_len = len;
	return 0;
}

int tq_job_cancelled(const tq_job *job)
{
	return job && __atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static uint64_t job_end(const tq_job *job)
{
	uint64_t sa = stop_at(job->slot->w);

	return job->deadline_ns < sa ? job->deadline_ns : sa;
}

int64_t tq_job_remaining_ms(const tq_job *job)
{
	uint64_t end, now;

	if (!job)
		return -1;
	end = job_end(job);
	if (end == NO_TIME)
		return -1;
	now = mono_ns();
	return end > now ? (int64_t)((end - now) / 1000000ull) : 0;
}

int tq_job_sleep(tq_job *job, uint32_t ms)
{
	uint64_t end;

	if (!job)
		return -EINVAL;
	end = mono_ns() + (uint64_t)ms * 1000000ull;
	for (;;) {
		if (__atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE))
			return -ECANCELED;
		if (mono_ns() >= end)
			return 0;
		fwait(&job->cancelled, 0, end);
	}
}

unsigned tq_job_worker_index(const tq_job *job)
{
	return job ? job->slot->index : 0;
}

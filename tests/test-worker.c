/* SPDX-License-Identifier: MIT */
/*
 * test-worker - the worker runtime (tq/worker.h): handlers per task type
 * over N threads process M tasks exactly once and store their results; a
 * task of a type without a handler is failed; a handler that overruns its
 * timeout has its task failed and retried by another worker while it still
 * runs, and its late result is discarded; leases are extended and the
 * heartbeat advances while a handler runs; tq_worker_stop() and SIGTERM
 * shut down within the deadline and give back what is still held, so no
 * task is lost; a handler abandoned at shutdown outlives tq_worker_free().
 */
#include <pthread.h>

#include <tq/worker.h>

#include "tq-test.h"

/* Bounded wait for cond(arg), sleeping between looks. */
static bool eventually(bool (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t end = tqt_mono_ms() + ms;

	while (!cond(arg)) {
		if (tqt_mono_ms() >= end)
			return false;
		tqt_sleep_ms(2);
	}
	return true;
}

struct runner {
	pthread_t thr;
	tq_worker *w;
	int rc;
	uint64_t returned_ms;
	int finished;
};

static void *run_main(void *arg)
{
	struct runner *r = arg;

	r->rc = tq_worker_run(r->w);
	r->returned_ms = tqt_mono_ms();
	__atomic_store_n(&r->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void runner_start(struct runner *r, tq_worker *w)
{
	memset(r, 0, sizeof(*r));
	r->w = w;
	CHECK_EQ(pthread_create(&r->thr, NULL, run_main, r), 0);
}

static bool runner_done(void *arg)
{
	return __atomic_load_n(&((struct runner *)arg)->finished, __ATOMIC_ACQUIRE) != 0;
}

/* Join the runner, failing (after a bound) if it does not return. */
static int runner_join(struct runner *r, unsigned ms)
{
	CHECKF(eventually(runner_done, r, ms), "tq_worker_run() did not return in %u ms", ms);
	pthread_join(r->thr, NULL);
	return r->rc;
}

struct stat_want {
	tq *t;
	int q;
	uint64_t acked, dead, leased_now;
};

static bool acked_at_least(void *arg)
{
	struct stat_want *sw = arg;
	struct tq_stats st;

	return tq_stats(sw->t, sw->q, -1, &st) == 0 && st.acked >= sw->acked &&
	       st.dead >= sw->dead;
}

/* acked_at_least() for sw->acked, with a recovery pass at each look;
 * sw->dead counts the leases it took back as expired. */
static bool acked_recovering(void *arg)
{
	struct stat_want *sw = arg;
	struct tq_recovery rep;
	struct tq_stats st;

	if (tq_recover(sw->t, &rep) >= 0)
		sw->dead += rep.expired;
	return tq_stats(sw->t, sw->q, -1, &st) == 0 && st.acked >= sw->acked;
}

static bool leased_now_is(void *arg)
{
	struct stat_want *sw = arg;
	struct tq_stats st;

	return tq_stats(sw->t, sw->q, -1, &st) == 0 && st.leased_now == sw->leased_now;
}

/* ------------------------------------------------------------------------
 * Handlers per type, N threads, M tasks exactly once, results
 */
#define M 400

struct counts {
	uint32_t seen[M];
	uint32_t per_worker[8];
};

static int h_echo(tq_job *job, const struct tq_task *task, void *arg)
{
	struct counts *c = arg;
	unsigned i;
	char res[64];

	CHECK_EQU(task->len, sizeof(unsigned));
	memcpy(&i, task->payload, sizeof(i));
	CHECK(i < M);
	CHECK_EQ(tq_job_cancelled(job), 0);
	CHECK_EQ(tq_job_remaining_ms(job), -1);
	__atomic_fetch_add(&c->seen[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->per_worker[tq_job_worker_index(job) % 8], 1, __ATOMIC_RELAXED);
	snprintf(res, sizeof(res), "done %u", i);
	CHECK_RET(tq_job_set_result(job, "overwritten", 11), 0);
	CHECK_RET(tq_job_set_result(job, res, strlen(res)), 0);
	return TQ_WORK_OK;
}

static int h_fail(tq_job *job, const struct tq_task *task, void *arg)
{
	(void)job;
	(void)task;
	__atomic_fetch_add((uint32_t *)arg, 1, __ATOMIC_RELAXED);
	return TQ_WORK_FAIL;
}

static int h_big(tq_job *job, const struct tq_task *task, void *arg)
{
	static char big[128 << 10];

	(void)task;
	(void)arg;
	CHECK_ERR(tq_job_set_result(job, big, sizeof(big)), -EMSGSIZE);
	CHECK_RET(tq_job_set_result(job, "small", 5), 0);
	return TQ_WORK_OK;
}

static void test_handlers(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	struct tq_queue_config qc = { .max_attempts = 1 };
	int q = CHECK_OK(tq_queue_declare(t, "work", &qc));
	CHECK_OK(tq_queue_declare(t, "other", NULL));
	const char *queues[] = { "work" };
	/* Its threads poll for 200 us after each task (tq_lease_opts.spin_us). */
	struct tq_worker_config wc = { .threads = 4, .nqueues = 1, .queues = queues,
				       .spin_us = 200 };
	struct counts *c = calloc(1, sizeof(*c));
	uint32_t fails = 0;
	uint64_t ids[M], fail_id, stray_id, big_id;
	tq_worker *w;
	struct runner r;

	CHECK(c != NULL);
	CHECK_RET(tq_worker_new(name, &wc, &w), 0);
	CHECK_RET(tq_worker_handle(w, 1, h_echo, c), 0);
	CHECK_RET(tq_worker_handle(w, 2, h_fail, &fails), 0);
	CHECK_RET(tq_worker_handle(w, 3, h_big, NULL), 0);
	/* Registered and removed again: type 4 has no handler. */
	CHECK_RET(tq_worker_handle(w, 4, h_fail, &fails), 0);
	CHECK_RET(tq_worker_handle(w, 4, NULL, NULL), 0);

	struct tq_submit_opts so = { .type = 1 };
	for (unsigned i = 0; i < M; i++)
		CHECK_RET(tq_submit(t, q, &i, sizeof(i), &so, &ids[i]), 0);
	so.type = 2;
	CHECK_RET(tq_submit(t, q, "f", 1, &so, &fail_id), 0);
	so.type = 4;
	CHECK_RET(tq_submit(t, q, "s", 1, &so, &stray_id), 0);
	so.type = 3;
	CHECK_RET(tq_submit(t, q, "b", 1, &so, &big_id), 0);

	runner_start(&r, w);
	struct stat_want sw = { .t = t, .q = q, .acked = M + 1, .dead = 2 };
	CHECKF(eventually(acked_at_least, &sw, 60000), "the tasks were not all processed");

	/* Every task once, with its result. */
	for (unsigned i = 0; i < M; i++) {
		char buf[64], want[64];
		int n;

		uint32_t seen = __atomic_load_n(&c->seen[i], __ATOMIC_RELAXED);

		CHECKF(seen == 1, "task %u handled %u times", i, seen);
		n = CHECK_OK(tq_result(t, ids[i], buf, sizeof(buf)));
		snprintf(want, sizeof(want), "done %u", i);
		CHECK_EQ(n, (int)strlen(want));
		buf[n] = 0;
		CHECK_STREQ(buf, want);
	}
	char buf[16];
	CHECK_RET(tq_result(t, big_id, buf, sizeof(buf)), 5);
	CHECK(memcmp(buf, "small", 5) == 0);
	struct tq_info in;
	CHECK_RET(tq_get(t, fail_id, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DEAD);
	CHECK_RET(tq_get(t, stray_id, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DEAD);
	CHECK_EQU(__atomic_load_n(&fails, __ATOMIC_RELAXED), 1);

	/* Registration is refused while running. */
	CHECK_ERR(tq_worker_handle(w, 5, h_fail, NULL), -EBUSY);
	CHECK_RET(tq_worker_stop(w, 1000), 0);
	CHECK_RET(runner_join(&r, 10000), 0);

	struct tq_worker_stats ws;
	CHECK_RET(tq_worker_stats(w, &ws), 0);
	CHECK_EQU(ws.leased, M + 3);
	CHECK_EQU(ws.done, M + 1);
	CHECK_EQU(ws.failed, 2);
	CHECK_EQU(ws.unhandled, 1);
	CHECK_EQU(ws.timeouts, 0);
	CHECK_EQU(ws.lost, 0);
	CHECK_EQU(ws.released, 0);
	CHECK_EQU(ws.running, 0);
	CHECK_EQU(ws.threads, 4);
	unsigned used = 0;
	for (unsigned i = 0; i < 4; i++)
		used += __atomic_load_n(&c->per_worker[i], __ATOMIC_RELAXED) ? 1 : 0;
	TQT_LOG("handlers: %u of 4 workers took tasks", used);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.leased_now, 0);
	CHECK_EQU(st.depth, 0);
	/* A second run after a stop returns at once. */
	CHECK_RET(tq_worker_run(w), 0);
	tq_worker_free(w);
	free(c);
	tq_detach(t);
}

/* ------------------------------------------------------------------------
 * A handler overruns its timeout: the task is failed at once and retried
 * by the other worker while the first handler still runs; the first
 * handler's late result is discarded.
 */
struct overrun {
	uint32_t first_worker, second_worker;
	uint32_t second_started;
	uint32_t first_saw_cancel;
	uint32_t calls;
};

static bool flag_set(void *arg)
{
	return __atomic_load_n((uint32_t *)arg, __ATOMIC_ACQUIRE) != 0;
}

static int h_overrun(tq_job *job, const struct tq_task *task, void *arg)
{
	struct overrun *o = arg;

	__atomic_fetch_add(&o->calls, 1, __ATOMIC_RELAXED);
	if (task->attempts == 1) {
		o->first_worker = tq_job_worker_index(job);
		CHECK_GE(tq_job_remaining_ms(job), 0);
		/* Overrun: sleep until the runtime gives the task up. */
		CHECK_ERR(tq_job_sleep(job, 60000), -ECANCELED);
		CHECK_EQ(tq_job_cancelled(job), 1);
		CHECK_EQ(tq_job_remaining_ms(job), 0);
		__atomic_store_n(&o->first_saw_cancel, 1, __ATOMIC_RELEASE);
		/* Still running while the retry runs elsewhere. */
		CHECK(eventually(flag_set, &o->second_started, 20000));
		tq_job_set_result(job, "late", 4);
		return TQ_WORK_OK;
	}
	o->second_worker = tq_job_worker_index(job);
	__atomic_store_n(&o->second_started, 1, __ATOMIC_RELEASE);
	tq_job_set_result(job, "second", 6);
	return TQ_WORK_OK;
}

static void test_timeout(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "slow", NULL));
	struct tq_worker_config wc = { .threads = 2, .timeout_ms = 0 };
	struct overrun o;
	tq_worker *w;
	struct runner r;
	uint64_t id;

	memset(&o, 0, sizeof(o));
	CHECK_RET(tq_worker_new(name, &wc, &w), 0);
	CHECK_RET(tq_worker_handle(w, TQ_WORKER_ANY_TYPE, h_overrun, &o), 0);
	CHECK_RET(tq_worker_set_timeout(w, 9, 150), 0);
	CHECK_ERR(tq_worker_set_timeout(w, TQ_TYPE_MAX + 1, 10), -EINVAL);
	struct tq_submit_opts so = { .type = 9 };
	CHECK_RET(tq_submit(t, q, "x", 1, &so, &id), 0);
	runner_start(&r, w);
	struct stat_want sw = { .t = t, .q = q, .acked = 1 };
	CHECK(eventually(acked_at_least, &sw, 30000));
	CHECK(eventually(flag_set, &o.first_saw_cancel, 20000));
	CHECK(flag_set(&o.second_started));
	CHECK_NE(o.first_worker, o.second_worker);

	char buf[16];
	CHECK_RET(tq_result(t, id, buf, sizeof(buf)), 6);
	CHECK(memcmp(buf, "second", 6) == 0);
	struct tq_info in;
	CHECK_RET(tq_get(t, id, &in), 0);
	CHECK_EQU(in.attempts, 2);
	CHECK_RET(tq_worker_stop(w, 5000), 0);
	CHECK_RET(runner_join(&r, 20000), 0);
	/* Exact once the workers are gone. */
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.failed, 1);
	CHECK_EQU(st.acked, 1);
	struct tq_worker_stats ws;
	CHECK_RET(tq_worker_stats(w, &ws), 0);
	CHECK_EQU(ws.timeouts, 1);
	CHECK_EQU(ws.done, 1);
	CHECK_EQU(ws.failed, 0);
	CHECK_EQU(ws.lost, 0);
	CHECK_EQU(o.calls, 2);
	tq_worker_free(w);
	tq_detach(t);
}

/* ------------------------------------------------------------------------
 * Lease extension and heartbeat while a handler runs longer than its lease.
 */
static int h_long(tq_job *job, const struct tq_task *task, void *arg)
{
	(void)task;
	CHECK_RET(tq_job_sleep(job, 700), 0);
	__atomic_store_n((uint32_t *)arg, 1, __ATOMIC_RELEASE);
	return TQ_WORK_OK;
}

static bool busy_heartbeat(void *arg)
{
	uint64_t *hb = arg;  /* [0] the handle, [1] first value seen, [2] out */
	tq *t = (tq *)(uintptr_t)hb[0];
	struct tq_proc_info pi[64];
	unsigned cur = 0;
	int n = tq_procs(t, pi, 64, &cur);

	for (int i = 0; i < n; i++) {
		if (pi[i].pid != getpid() || pi[i].leased_now != 1)
			continue;
		if (!hb[1])
			hb[1] = pi[i].heartbeat_ns;
		else if (pi[i].heartbeat_ns > hb[1])
			return true;
	}
	return false;
}

static void test_extend_heartbeat(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "long", NULL));
	struct tq_worker_config wc = { .threads = 1, .heartbeat_ms = 20 };
	uint32_t finished = 0;
	tq_worker *w;
	struct runner r;
	uint64_t id;

	CHECK_RET(tq_worker_new(name, &wc, &w), 0);
	CHECK_RET(tq_worker_handle(w, 0, h_long, &finished), 0);
	/* A 200 ms lease, a 700 ms handler: it must be extended. */
	struct tq_submit_opts so = { .lease_ms = 200 };
	CHECK_RET(tq_submit(t, q, "l", 1, &so, &id), 0);
	runner_start(&r, w);
	uint64_t hb[3] = { (uintptr_t)t, 0, 0 };
	CHECKF(eventually(busy_heartbeat, hb, 20000), "no heartbeat advance while busy");
	/* Recovery passes run meanwhile (as tqd's would): a lease not
	 * extended in time would be taken back. */
	struct stat_want sw = { .t = t, .q = q, .acked = 1 };
	CHECK(eventually(acked_recovering, &sw, 30000));
	CHECK_EQU(sw.dead, 0);
	CHECK_RET(tq_worker_stop(w, 1000), 0);
	CHECK_RET(runner_join(&r, 10000), 0);
	struct tq_worker_stats ws;
	CHECK_RET(tq_worker_stats(w, &ws), 0);
	CHECK_GEU(ws.extended, 1);
	CHECK_EQU(ws.done, 1);
	CHECK_EQU(ws.lost, 0);
	CHECK(finished);
	tq_worker_free(w);
	tq_detach(t);
}

/* ------------------------------------------------------------------------
 * Shutdown: handlers that finish within the deadline are acked; the others
 * are cancelled and their tasks released; nothing is lost.
 */
static uint32_t stop_asked;

static int h_shutdown(tq_job *job, const struct tq_task *task, void *arg)
{
	(void)arg;
	if (task->len == 5 && !memcmp(task->payload, "quick", 5)) {
		/* Runs until the stop, then finishes within the grace period. */
		CHECK(eventually(flag_set, &stop_asked, 20000));
		CHECK_RET(tq_job_sleep(job, 100), 0);
		return TQ_WORK_OK;
	}
	CHECK_ERR(tq_job_sleep(job, 120000), -ECANCELED);
	return TQ_WORK_OK;    /* discarded: the task was released */
}

struct gate {
	uint32_t open;
	uint32_t entered;
};

/* Ignores cancellation: abandoned at the deadline. */
static int h_stuck(tq_job *job, const struct tq_task *task, void *arg)
{
	struct gate *g = arg;

	(void)job;
	(void)task;
	__atomic_store_n(&g->entered, 1, __ATOMIC_RELEASE);
	CHECK(eventually(flag_set, &g->open, 60000));
	return TQ_WORK_OK;
}

static void test_stop(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "s", NULL));
	struct tq_worker_config wc = { .threads = 3 };
	tq_worker *w;
	struct runner r;
	uint64_t ids[3];

	CHECK_RET(tq_worker_new(name, &wc, &w), 0);
	CHECK_RET(tq_worker_handle(w, TQ_WORKER_ANY_TYPE, h_shutdown, NULL), 0);
	CHECK_RET(tq_submit(t, q, "quick", 5, NULL, &ids[0]), 0);
	CHECK_RET(tq_submit(t, q, "slow1", 5, NULL, &ids[1]), 0);
	CHECK_RET(tq_submit(t, q, "slow2", 5, NULL, &ids[2]), 0);
	runner_start(&r, w);
	struct stat_want sw = { .t = t, .q = q, .leased_now = 3 };
	CHECK(eventually(leased_now_is, &sw, 20000));
	uint64_t asked = tqt_mono_ms();
	CHECK_RET(tq_worker_stop(w, 1500), 0);
	__atomic_store_n(&stop_asked, 1, __ATOMIC_RELEASE);
	CHECK_RET(runner_join(&r, 20000), 0);
	TQT_LOG("stop: run returned %llu ms after a 1500 ms deadline was asked",
		(unsigned long long)(r.returned_ms - asked));

	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.leased_now, 0);
	CHECK_EQU(st.acked, 1);
	CHECK_EQU(st.released, 2);
	CHECK_EQU(st.depth, 2);
	CHECK_EQU(st.submitted, st.acked + st.depth);
	struct tq_info in;
	CHECK_RET(tq_get(t, ids[1], &in), 0);
	CHECK_EQU(in.state, TQ_STATE_PENDING);
	CHECK_EQU(in.attempts, 0);
	struct tq_worker_stats ws;
	CHECK_RET(tq_worker_stats(w, &ws), 0);
	CHECK_EQU(ws.done, 1);
	CHECK_EQU(ws.released, 2);
	tq_worker_free(w);

	/* A handler that ignores cancellation is abandoned at the deadline:
	 * run returns, the task is released, and freeing the runtime while
	 * the handler still runs is safe. */
	static struct gate gate;
	struct gate *g = &gate;
	wc.threads = 1;
	CHECK_RET(tq_worker_new(name, &wc, &w), 0);
	CHECK_RET(tq_worker_handle(w, TQ_WORKER_ANY_TYPE, h_stuck, g), 0);
	runner_start(&r, w);
	CHECK(eventually(flag_set, &g->entered, 20000));
	CHECK_RET(tq_worker_stop(w, 0), 0);
	CHECK_RET(runner_join(&r, 20000), 0);
	CHECK_RET(tq_worker_stats(w, &ws), 0);
	CHECK_EQU(ws.released, 1);
	CHECK_EQU(ws.running, 1);
	tq_worker_free(w);
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.leased_now, 0);
	CHECK_EQU(st.depth, 2);
	__atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
	/* The abandoned thread frees the runtime when it returns; give it
	 * time before g goes (bounded: it only has to see the flag). */
	tqt_sleep_ms(200);
	tq_detach(t);
}

/* SIGTERM with tq_worker_install_signals(), in a child process. */
static void test_sigterm(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "sig", NULL));
	uint64_t id;
	int st;

	CHECK_RET(tq_submit(t, q, "slow", 4, NULL, &id), 0);
	pid_t pid = tqt_fork();
	if (pid == 0) {
		struct tq_worker_config wc = { .threads = 2 };
		tq_worker *w;

		tqt_guard(60);
		CHECK_RET(tq_worker_new(name, &wc, &w), 0);
		CHECK_RET(tq_worker_handle(w, TQ_WORKER_ANY_TYPE, h_shutdown, NULL), 0);
		CHECK_RET(tq_worker_install_signals(w, 200), 0);
		tq_worker *other;
		CHECK_RET(tq_worker_new(name, &wc, &other), 0);
		CHECK_ERR(tq_worker_install_signals(other, 200), -EBUSY);
		tq_worker_free(other);
		CHECK_RET(tq_worker_run(w), 0);
		tq_worker_free(w);
		_exit(0);
	}
	struct stat_want sw = { .t = t, .q = q, .leased_now = 1 };
	CHECK(eventually(leased_now_is, &sw, 20000));
	kill(pid, SIGTERM);
	CHECK_RET(tqt_wait_pid(pid, 20000, &st), 0);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker child status 0x%x", st);
	struct tq_info in;
	CHECK_RET(tq_get(t, id, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_PENDING);
	/* Nothing left recorded against the child's handles. */
	struct tq_recovery rep;
	CHECK_OK(tq_recover(t, &rep));
	CHECK_EQU(rep.requeued, 0);
	tq_detach(t);
}

/* ------------------------------------------------------------------------
 * Argument checks
 */
static int h_nop(tq_job *job, const struct tq_task *task, void *arg)
{
	(void)job;
	(void)task;
	(void)arg;
	return TQ_WORK_OK;
}

static void test_errors(void)
{
	char name[TQ_NAME_MAX + 1], absent[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	tq *t = tqt_create(name, &cfg);
	struct tq_worker_config wc;
	const char *nope[] = { "nope" };
	tq_worker *w = NULL;

	CHECK_OK(tq_queue_declare(t, "q", NULL));
	tqt_segname(absent);
	CHECK_ERR(tq_worker_new(absent, NULL, &w), -ENOENT);
	memset(&wc, 0, sizeof(wc));
	wc.threads = TQ_WORKER_THREADS_MAX + 1;
	CHECK_ERR(tq_worker_new(name, &wc, &w), -EINVAL);
	memset(&wc, 0, sizeof(wc));
	wc.nqueues = 1;
	CHECK_ERR(tq_worker_new(name, &wc, &w), -EINVAL);
	wc.queues = nope;
	CHECK_ERR(tq_worker_new(name, &wc, &w), -ENOENT);
	memset(&wc, 0, sizeof(wc));
	wc.reserved[0] = 1;
	CHECK_ERR(tq_worker_new(name, &wc, &w), -EINVAL);
	memset(&wc, 0, sizeof(wc));
	wc.spin_us = TQ_SPIN_US_MAX + 1;
	CHECK_ERR(tq_worker_new(name, &wc, &w), -EINVAL);
	CHECK(w == NULL);
	CHECK_ERR(tq_worker_new(NULL, NULL, &w), -EINVAL);
	CHECK_RET(tq_worker_new(name, NULL, &w), 0);
	CHECK_ERR(tq_worker_handle(w, TQ_TYPE_MAX + 1, h_nop, NULL), -EINVAL);
	CHECK_ERR(tq_worker_handle(NULL, 1, h_nop, NULL), -EINVAL);
	CHECK_ERR(tq_worker_stop(NULL, 0), -EINVAL);
	CHECK_ERR(tq_worker_stats(NULL, NULL), -EINVAL);
	CHECK_ERR(tq_job_set_result(NULL, "x", 1), -EINVAL);
	CHECK_EQ(tq_job_cancelled(NULL), 0);
	/* Stopped before it runs: run returns at once. */
	CHECK_RET(tq_worker_stop(w, 0), 0);
	CHECK_RET(tq_worker_run(w), 0);
	tq_worker_free(w);
	tq_worker_free(NULL);
	tq_detach(t);
}

int main(void)
{
	tqt_init("worker");
	tqt_guard(280);
	test_errors();
	test_handlers();
	test_timeout();
	test_extend_heartbeat();
	test_stop();
	test_sigterm();
	return 0;
}

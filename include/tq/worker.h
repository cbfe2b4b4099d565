/* SPDX-License-Identifier: MIT */
/*
 * worker.h - the worker runtime of libtq: register a handler per task type,
 * then tq_worker_run() leases tasks with N threads and calls the handlers,
 * while the runtime keeps each lease alive, heartbeats, enforces a per-task
 * timeout and, on tq_worker_stop() (or SIGTERM), shuts down within a
 * deadline without losing a task. Include it after (or instead of) tq.h;
 * docs/worker-runtime.md explains the threading model.
 *
 * Conventions are those of tq.h: >= 0 success, negative errno failure,
 * output parameters untouched on failure, destructors accept NULL, the
 * library never logs, exits or raises a signal.
 *
 * Threads: each of the `threads` workers is a pair of threads. The lease
 * thread owns a tq handle of its own (tq_attach()) and makes every call on
 * it: lease, extend, heartbeat, ack, fail, release. The handler thread runs
 * the handler on a private copy of the task, so a handler never touches the
 * segment and a handler that overruns cannot block the lease's upkeep.
 */
#ifndef TQ_WORKER_H
#define TQ_WORKER_H

#include <tq/tq.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A worker runtime: handlers, configuration, threads. Process-local. */
typedef struct tq_worker tq_worker;

/** One run of a handler on one task (valid only during the handler call). */
typedef struct tq_job tq_job;

/** What a handler returns. */
enum tq_work_result {
	TQ_WORK_OK = 0,          /* ack, with the result set by tq_job_set_result() */
	TQ_WORK_FAIL = 1,        /* fail this attempt: retried (with the queue's
	                          * backoff) while attempts remain, then dead-lettered */
	TQ_WORK_RELEASE = 2,     /* give the task back untouched (attempt not
	                          * counted): for "not now", e.g. a rate limit */
};

/**
 * A handler. `task` describes the leased task; task->payload points to a
 * copy owned by the runtime, valid until the handler returns (it is not in
 * the segment, so it stays intact even when the runtime has already given
 * the task up). `arg` is what was registered. Returns an enum tq_work_result;
 * any other value counts as TQ_WORK_FAIL. Runs on one of the runtime's
 * handler threads: handlers of different tasks run concurrently.
 */
typedef int (*tq_handler_fn)(tq_job *job, const struct tq_task *task, void *arg);

/** Type for tq_worker_handle()/tq_worker_set_timeout(): every type that
 * has no handler of its own. */
#define TQ_WORKER_ANY_TYPE UINT32_MAX

#define TQ_WORKER_THREADS_MAX 256u

/** Configuration of a worker runtime; a zeroed struct gives the defaults. */
struct tq_worker_config {
	uint32_t threads;          /* concurrent tasks (worker threads), 1..256 (default 1) */
	uint32_t nqueues;          /* entries of queues; 0 = every declared queue */
	const char *const *queues; /* queue names, in preference order; they must
	                            * exist (tq_queue_declare() them first) */
	uint32_t policy;           /* enum tq_policy (default TQ_POLICY_STRICT) */
	uint32_t lease_ms;         /* lease length asked for; 0 = each task's own */
	uint32_t timeout_ms;       /* default run time limit of a handler; 0 = none */
	uint32_t heartbeat_ms;     /* signs of life while a handler runs (default 1000) */
	uint32_t poll_ms;          /* an idle thread notices a stop within this
	                            * (default 100, 1..1000) */
	uint32_t spin_us;          /* tq_lease_opts.spin_us of every thread:
	                            * poll this long after a task (0 = adaptive) */
	uint32_t reserved[4];      /* must be 0 */
};

/**
 * Make a worker runtime for segment `name` (tq_attach() naming rules). The
 * segment is attached once here to check it and resolve the queue names
 * (and then detached); cfg may be NULL for the defaults. No thread starts
 * before tq_worker_run().
 * Errors: -EINVAL bad configuration, -ENAMETOOLONG, -ENOENT no such
 * segment or queue, -ENOMEM, and those of tq_attach().
 */
TQ_API int tq_worker_new(const char *name, const struct tq_worker_config *cfg, tq_worker **ret);

/**
 * Register fn (with arg) as the handler of task type `type` (0..TQ_TYPE_MAX),
 * or with TQ_WORKER_ANY_TYPE as the default handler of every type without
 * one. Registering again replaces the handler; fn NULL removes it. A task
 * whose type has no handler and no default is failed (counted in
 * `unhandled`): retried, then dead-lettered, so it is seen rather than
 * silently bounced between workers; give handlers for different types their
 * own queues when processes handle different types.
 * Errors: -EINVAL bad type, -EBUSY tq_worker_run() is running, -ENOMEM.
 * Not thread-safe: call before tq_worker_run().
 */
TQ_API int tq_worker_handle(tq_worker *w, uint32_t type, tq_handler_fn fn, void *arg);

/**
 * Run-time limit of a handler of task type `type` (or TQ_WORKER_ANY_TYPE:
 * the default, as cfg->timeout_ms), in ms; 0 = none. When a handler
 * overruns, the runtime fails the attempt on its behalf at once (so another
 * worker can retry it), marks the job cancelled (tq_job_cancelled(),
 * tq_job_sleep() returns) and discards whatever the handler does with it
 * later. The handler thread is not killed: that worker leases again once
 * the handler returns. Errors: -EINVAL, -EBUSY running, -ENOMEM.
 */
TQ_API int tq_worker_set_timeout(tq_worker *w, uint32_t type, uint32_t timeout_ms);

/**
 * Lease and handle tasks with cfg->threads workers until tq_worker_stop()
 * (or a fatal error). Blocks. Each worker attaches its own handle; the
 * runtime keeps leases alive (tq_extend() at half the lease length) and
 * heartbeats while handlers run. Returns 0 after a stop, or the first fatal
 * error of a worker (e.g. -EPROTO, -EUSERS: the others are then stopped as
 * by tq_worker_stop(w, 0)). A stop requested before the call makes it
 * return 0 at once. -EBUSY when already running in another thread.
 * SIGTERM and SIGINT are blocked in the runtime's threads, so a process
 * signal reaches the caller's thread.
 */
TQ_API int tq_worker_run(tq_worker *w);

/**
 * Ask a running (or not yet running) worker to stop: no new task is leased;
 * handlers running now get deadline_ms to finish (and their results are
 * kept as usual); at the deadline each still-running job is cancelled and
 * its task released (given back untouched, no attempt counted), and
 * tq_worker_run() returns. A handler still running then is abandoned: it
 * keeps its thread until it returns, and its result is discarded. A second
 * call can only bring the deadline nearer.
 * Async-signal-safe (atomics and futex wake-ups only) and callable from
 * any thread. Returns 0, -EINVAL for NULL.
 */
TQ_API int tq_worker_stop(tq_worker *w, uint32_t deadline_ms);

/**
 * Make SIGTERM and SIGINT call tq_worker_stop(w, deadline_ms) (sigaction,
 * no SA_RESTART); the previous actions come back at tq_worker_free(). One
 * worker per process at a time: -EBUSY if another has them. -EINVAL.
 */
TQ_API int tq_worker_install_signals(tq_worker *w, uint32_t deadline_ms);

/** Counters of a worker runtime, since tq_worker_new(). */
struct tq_worker_stats {
	uint64_t leased;           /* tasks leased */
	uint64_t done;             /* acked */
	uint64_t failed;           /* failed by handler result, missing handler
	                            * or no room for the result (not timeouts) */
	uint64_t timeouts;         /* failed by the runtime after a handler overran */
	uint64_t released;         /* given back (TQ_WORK_RELEASE or shutdown) */
	uint64_t lost;             /* leases lost (expired and taken back) */
	uint64_t unhandled;        /* of failed: no handler for the type */
	uint64_t extended;         /* lease extensions */
	uint32_t running;          /* handlers running now */
	uint32_t threads;          /* configured workers */
};

/** Read the counters; any thread, any time (relaxed atomic reads). */
TQ_API int tq_worker_stats(const tq_worker *w, struct tq_worker_stats *st);

/**
 * Free the runtime. Must not race tq_worker_run() (call it after run
 * returned). Memory an abandoned handler thread still uses is freed when
 * that handler returns. Restores signal actions taken by
 * tq_worker_install_signals(). NULL is a no-op.
 */
TQ_API void tq_worker_free(tq_worker *w);

/* ------------------------------------------------------------------------
 * Inside a handler. These take the job passed to the handler and may be
 * called from the handler's thread only (tq_job_cancelled() from any).
 */

/**
 * Set the result stored with the task when the handler returns TQ_WORK_OK
 * (copied; a second call replaces it; len 0 = no result, the task is then
 * forgotten at the ack). Errors: -EMSGSIZE over the segment's max_payload,
 * -ENOMEM, -EINVAL; the previous result, if any, is then kept. When the
 * segment has no room for the result at the ack, the attempt is failed.
 */
TQ_API int tq_job_set_result(tq_job *job, const void *data, size_t len);

/** 1 once the runtime has given the task up (timeout, lost lease or
 * shutdown deadline): whatever the handler does with it is discarded, so it
 * should return soon. 0 otherwise. Lock-free, any thread. */
TQ_API int tq_job_cancelled(const tq_job *job);

/** Milliseconds left before the handler's timeout (0 once past it), or -1
 * without a timeout. A shutdown deadline counts when it is nearer. */
TQ_API int64_t tq_job_remaining_ms(const tq_job *job);

/** Sleep up to ms, waking at once when the job is cancelled. Returns 0
 * after the full time, -ECANCELED when cancelled (before or during). */
TQ_API int tq_job_sleep(tq_job *job, uint32_t ms);

/** Index (0..threads-1) of the worker running this job. */
TQ_API unsigned tq_job_worker_index(const tq_job *job);

#ifdef __cplusplus
}
#endif

#endif /* TQ_WORKER_H */

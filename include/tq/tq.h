/* SPDX-License-Identifier: MIT */
/*
 * tq.h - the public interface of libtq, a task queue for one host whose
 * whole engine lives in one POSIX shared-memory segment.
 *
 * Producers and workers attach to a named segment and hand tasks to each
 * other through lock-free per-priority queues; there is no broker process
 * in the path. Everything declared in this header is the API; nothing else
 * in the source tree is.
 *
 * Conventions, for every function below unless it says otherwise:
 *  - Functions return an int: >= 0 on success, a negative errno on failure.
 *    tq_strerror() turns a result into words. The library never logs, never
 *    calls exit() and never raises a signal.
 *  - Output parameters are left untouched on failure. Destructors accept NULL.
 *  - A `tq` handle belongs to one thread at a time. Open one handle per
 *    thread; any number of handles, in any number of processes, may work on
 *    one segment concurrently.
 *  - No call waits for another process's progress without a bound: every wait
 *    takes a timeout, and a process killed at any instruction leaves every
 *    other one able to go on (see docs/protocols.md).
 *  - A segment whose contents fail a check yields -EPROTO, never a crash or a
 *    write outside the mapping.
 */
#ifndef TQ_TQ_H
#define TQ_TQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <tq/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TQ_API __attribute__((visibility("default")))
#else
#define TQ_API
#endif

/** Opaque, process-local handle on one attached segment. */
typedef struct tq tq;

/* ------------------------------------------------------------------------
 * Limits
 */
#define TQ_NAME_MAX        200          /* segment name, leading '/' included */
#define TQ_QUEUE_NAME_MAX  47           /* queue name, [A-Za-z0-9_.:-] */
#define TQ_QUEUES_MAX      256          /* named queues per segment */
#define TQ_LEVELS_MAX      64           /* priority levels per segment */
#define TQ_CAPACITY_MAX    (1u << 28)   /* tasks held at once */
#define TQ_PAYLOAD_MAX     (16u << 20)  /* largest payload class ever */
#define TQ_TYPE_MAX        65535u       /* largest task type tag */
#define TQ_ATTEMPTS_MAX    255u         /* largest max_attempts */
#define TQ_BATCH_MAX       64u          /* tasks per submit or lease call */
#define TQ_HELD_MAX        256u         /* tasks and slots one handle holds */
#define TQ_SPIN_US_MAX     1000000u     /* tq_lease_opts.spin_us */
#define TQ_PATH_MAX        256          /* journal directory, NUL included */

/* ------------------------------------------------------------------------
 * Segment lifetime
 */

/** Creation-time layout of a segment. Zero a struct or call
 * tq_config_init() for the defaults, then change what you need. */
struct tq_config {
	uint32_t queues;       /* named queues, 1..TQ_QUEUES_MAX (default 16) */
	uint32_t levels;       /* priority levels, 1..64 (default 8); 0 is the most urgent */
	uint32_t capacity;     /* tasks held at once, 64..TQ_CAPACITY_MAX (default 1 Mi) */
	uint32_t max_payload;  /* largest payload or result in bytes (default 1 MiB) */
	uint32_t procs;        /* handles attached at once, 8..4096 (default 256) */
	uint32_t mode;         /* permission bits (default 0600; 0660 with a group) */
	int64_t  group;        /* group owning the segment, or -1 for none (default;
	                        * 0 counts as none unless mode has group bits) */
	uint64_t arena_bytes;  /* bytes for out-of-slot payloads, split over the
	                        * size classes (default 64 MiB, pages are only
	                        * used when touched) */
	/* The journal (docs/journal.md). "" = none: tasks live in shared
	 * memory only and survive any process's death but not a reboot. With
	 * a directory, every change that decides a task's fate is appended to
	 * mmap'd files there, and tq_create() on a directory that holds a
	 * journal restores every unfinished task, with its ID, before the
	 * segment can be attached. */
	char journal_dir[TQ_PATH_MAX];
	uint32_t durability;   /* enum tq_durability (default, 0: TQ_DURABILITY_ASYNC) */
	uint32_t flush_ms;     /* TQ_DURABILITY_ASYNC: flushed this often, by the
	                        * supervisor's tq_journal_maintain() (default 10) */
	uint32_t journal_file_mb; /* files roll at this size (default 64; at
	                        * least 4 x max_payload) */
	uint32_t reserved0;
};

/** How far an accepted task is safe. */
enum tq_durability {
	TQ_DURABILITY_ASYNC = 0, /* the default: flushed every flush_ms, so a power
	                          * cut loses at most the last flush_ms of changes */
	TQ_DURABILITY_SYNC = 1,  /* tq_submit() returns once the task is on disk;
	                          * concurrent callers share one flush (group commit) */
	TQ_DURABILITY_NONE = 2,  /* no journal even with journal_dir: tasks survive
	                          * any process's death (the segment is in shared
	                          * memory), not a reboot */
};

/** Fill *cfg with the defaults listed above. */
TQ_API void tq_config_init(struct tq_config *cfg);

/**
 * Create the segment `name` (one optional leading '/', no other '/', at
 * most TQ_NAME_MAX bytes) with shm_open(O_CREAT|O_EXCL) and attach to it.
 * cfg may be NULL for the defaults.
 *
 * Errors: -EINVAL bad name or configuration, -ENAMETOOLONG, -EEXIST the
 * segment exists, -ENOMEM/-ENOSPC no room, -EACCES/-EPERM, -EUSERS no free
 * process slot (cannot happen on a new segment).
 */
TQ_API int tq_create(const char *name, const struct tq_config *cfg, tq **ret);

/**
 * Attach to an existing segment. Errors: -ENOENT no such segment, -EPROTO
 * wrong magic, layout version or size (tq_last_error() says which),
 * -EUSERS every process slot is taken, -EACCES.
 */
TQ_API int tq_attach(const char *name, tq **ret);

/** Give back the handle's process slot and unmap. Tasks the handle still
 * leases stay recorded against it for a supervisor to recover. NULL is a
 * no-op. */
TQ_API void tq_detach(tq *t);

/** Remove the segment's name; mapped handles keep working. -ENOENT if absent. */
TQ_API int tq_unlink(const char *name);

/** Words for a result of any tq function (negative errno). Never NULL. */
TQ_API const char *tq_strerror(int err);

/** A sentence on the last failure of this handle's last call, more specific
 * than tq_strerror() (e.g. which header field failed), or "" if none. For
 * tq_create()/tq_attach(), which have no handle yet, pass NULL: the text is
 * kept per thread. */
TQ_API const char *tq_last_error(const tq *t);

/* ------------------------------------------------------------------------
 * Queues
 */

/** Per-queue settings, fixed when the queue is declared. Zero = default. */
struct tq_queue_config {
	uint32_t max_length;     /* tasks pending + leased at most; 0 = segment capacity */
	uint32_t lease_ms;       /* default lease length (default 30000) */
	uint32_t max_attempts;   /* default attempts before dead letter (default 3) */
	uint32_t weight;         /* share of this queue under TQ_POLICY_WEIGHTED (default 1) */
	uint32_t level_weight[TQ_LEVELS_MAX]; /* share of each level under
	                          * TQ_POLICY_WEIGHTED; 0 = default 2^(levels-1-l) */
	/* Retry backoff after tq_fail(): attempt n waits a random time in
	 * [d/2, d], d = min(retry_cap_ms, retry_base_ms * (retry_factor/100)^(n-1)),
	 * in the delay wheel before it is ready again. retry_base_ms 0 = retry
	 * at once (default). */
	uint32_t retry_base_ms;
	uint32_t retry_cap_ms;   /* 0 = 1 hour */
	uint32_t retry_factor;   /* percent, 100..1000; 0 = 200 (doubling) */
	uint32_t result_ttl_ms;  /* results of acked tasks are forgotten this long
	                          * after the ack (by tq_tick(), so by tqd);
	                          * 0 = kept until tq_forget() (default) */
};

/**
 * Declare the queue `name` or look it up if it exists (its configuration is
 * then left as it was; qc is ignored). Returns the queue index (>= 0), which
 * every other call takes. qc may be NULL.
 * Errors: -EINVAL bad name or config, -ENOSPC every queue is declared.
 */
TQ_API int tq_queue_declare(tq *t, const char *name, const struct tq_queue_config *qc);

/** Index of an existing queue, or -ENOENT. */
TQ_API int tq_queue_find(tq *t, const char *name);

/** Copy queue q's name into buf (size >= TQ_QUEUE_NAME_MAX + 1). */
TQ_API int tq_queue_name(tq *t, int q, char *buf, size_t size);

/** Stop (pause) or restart (resume) leasing from queue q. Submits are still
 * accepted while it is paused. Idempotent. */
TQ_API int tq_queue_pause(tq *t, int q);
TQ_API int tq_queue_resume(tq *t, int q);
/** 1 if queue q is paused, 0 if not. */
TQ_API int tq_queue_paused(tq *t, int q);

/* ------------------------------------------------------------------------
 * Submitting
 */

/** Options of a submit; a zeroed struct (or NULL) gives the defaults. */
struct tq_submit_opts {
	uint32_t level;          /* priority level, 0 = most urgent (default 0) */
	uint32_t type;           /* application's task type tag, 0..TQ_TYPE_MAX */
	uint32_t max_attempts;   /* 0 = queue default */
	uint32_t lease_ms;       /* 0 = queue default */
	uint64_t not_before_ns;  /* CLOCK_REALTIME; not leased before; 0 = now */
	int32_t  timeout_ms;     /* when full: 0 = -EAGAIN at once, < 0 = wait
	                          * without limit, > 0 = wait that long, then
	                          * -ETIMEDOUT */
	uint32_t flags;          /* reserved, must be 0 */
};

/** One task of a batch: its payload, and level and type overriding opts. */
struct tq_task_spec {
	const void *payload;
	uint32_t len;
	uint32_t level;
	uint32_t type;
};

/**
 * Submit one task to queue q. On success *id (if not NULL) gets the task
 * ID: 64 bits, never given to another task in the segment's life, looked up
 * in O(1). The task is accepted when this returns 0: from then on it is
 * never lost, whoever dies.
 * Errors: -EINVAL, -ENOENT no queue q, -EMSGSIZE payload over max_payload,
 * -EAGAIN full (queue max_length or segment capacity) and timeout_ms == 0,
 * -ETIMEDOUT still full after timeout_ms, -EPROTO corrupt segment.
 * Lock-free; any number of callers concurrently.
 */
TQ_API int tq_submit(tq *t, int q, const void *payload, size_t len,
		     const struct tq_submit_opts *opts, uint64_t *id);

/**
 * Submit n (1..TQ_BATCH_MAX) tasks to queue q in one call. Returns how many
 * were accepted, always a prefix of specs (their IDs in ids[0..ret-1]).
 * When room runs out with timeout_ms == 0, the accepted prefix is returned,
 * or -EAGAIN if none fit.
 */
TQ_API int tq_submit_batch(tq *t, int q, const struct tq_task_spec *specs, unsigned n,
			   const struct tq_submit_opts *opts, uint64_t *ids);

/* ------------------------------------------------------------------------
 * Leasing and finishing
 */

enum tq_policy {
	TQ_POLICY_STRICT = 0,    /* always the most urgent level first */
	TQ_POLICY_WEIGHTED = 1,  /* smooth weighted round robin over non-empty
	                          * (queue, level) pairs: none starves */
};

struct tq_lease_opts {
	const int *queues;       /* queues to take from, in preference order */
	unsigned nqueues;        /* 0 = every declared queue */
	uint32_t policy;         /* enum tq_policy */
	int32_t timeout_ms;      /* nothing ready: 0 = -EAGAIN at once,
	                          * < 0 = wait without limit, > 0 = bounded */
	uint32_t lease_ms;       /* 0 = the task's own lease length */
	uint32_t spin_us;        /* nothing ready: poll until this long after
	                          * this handle last took a task, then sleep
	                          * (at most TQ_SPIN_US_MAX); 0 = up to 20 us,
	                          * and only while tasks keep coming */
};

/** A leased task. payload points into the segment and stays valid while
 * the lease is held (until ack, fail or release on it, or lease loss). */
struct tq_task {
	uint64_t id;
	const void *payload;
	uint32_t len;
	uint32_t queue;
	uint32_t level;
	uint32_t type;
	uint32_t attempts;       /* this attempt included: 1 on the first lease */
	uint32_t max_attempts;
	uint64_t submitted_ns;   /* CLOCK_REALTIME */
	uint64_t deadline_ns;    /* lease expiry, CLOCK_REALTIME */
};

/**
 * Lease up to max (1..TQ_BATCH_MAX) of the most urgent ready tasks from
 * the given queues. The handle's ownership of each task is written in the
 * segment before the task leaves its queue. Returns the number leased
 * (>= 1). Paused queues are skipped. A waiting caller spins briefly, then
 * sleeps on a futex in the segment; producers only make a system call when
 * somebody sleeps.
 * Errors: -EAGAIN nothing ready and timeout_ms == 0, -ETIMEDOUT, -EINTR a
 * signal interrupted the wait, -ENOBUFS the handle already holds
 * TQ_HELD_MAX tasks, -EINVAL, -ENOENT, -EPROTO.
 */
TQ_API int tq_lease(tq *t, const struct tq_lease_opts *opts, struct tq_task *out, unsigned max);

/**
 * Finish a leased task successfully. With result_len > 0 the result bytes
 * are kept with the task (state TQ_STATE_DONE) for tq_result(); with none,
 * the task's slot is freed at once and its ID is then unknown (-ENOENT).
 * Errors: -ENOENT unknown ID, -ESTALE the lease was lost (expired and taken
 * back, or the task is not leased by this handle), -EMSGSIZE result too
 * large, -EAGAIN no room for the result (the task stays leased).
 */
TQ_API int tq_ack(tq *t, uint64_t id, const void *result, size_t result_len);

/**
 * Ack the n (1..TQ_BATCH_MAX) leased tasks ids[] without results, as n
 * calls of tq_ack(t, ids[i], NULL, 0) would, for less per task. Each ID
 * is acked or not on its own: with errs, errs[i] gets 0 or what tq_ack()
 * would have returned for ids[i] (-ENOENT, -ESTALE), and tq_last_error()
 * tells of the last that failed. Returns how many were acked; -EINVAL for
 * a bad argument (then none is).
 */
TQ_API int tq_ack_batch(tq *t, const uint64_t *ids, unsigned n, int *errs);

/** Fail this attempt: back to ready (at the tail of its level, after the
 * queue's retry backoff if it has one: TQ_STATE_DELAYED meanwhile) while
 * attempts remain, else to the queue's dead letters. Returns 0 when
 * requeued, 1 when dead-lettered. Errors as tq_ack(). */
TQ_API int tq_fail(tq *t, uint64_t id);

/** Give a leased task back untouched: ready again, attempt not counted. */
TQ_API int tq_release(tq *t, uint64_t id);

/** Extend the lease: the new deadline is now + ms (0 = the task's lease
 * length). Errors: -ESTALE lease lost, -ENOENT. */
TQ_API int tq_extend(tq *t, uint64_t id, uint32_t ms);

/* ------------------------------------------------------------------------
 * Inspecting and controlling tasks
 */

enum tq_state {
	TQ_STATE_PENDING = 1,    /* ready to be leased */
	TQ_STATE_DELAYED = 2,    /* waiting for its not-before time */
	TQ_STATE_LEASED = 3,     /* held by a worker */
	TQ_STATE_DONE = 4,       /* acked with a result kept */
	TQ_STATE_DEAD = 5,       /* in the dead letters */
	TQ_STATE_BUSY = 6,       /* in transit (being submitted, moved or freed) */
};

struct tq_info {
	uint64_t id;
	uint32_t state;          /* enum tq_state */
	uint32_t queue;
	uint32_t level;
	uint32_t type;
	uint32_t attempts;
	uint32_t max_attempts;
	uint32_t len;            /* payload bytes, or result bytes when DONE */
	uint32_t lease_ms;
	int32_t  owner_pid;      /* leasing process, 0 if none */
	uint32_t reserved;
	uint64_t submitted_ns;
	uint64_t due_ns;         /* not-before (DELAYED), lease deadline (LEASED) */
};

/** Read task id's record; a consistent snapshot even while others work on it.
 * -ENOENT: never existed, or finished and its slot reused or freed. */
TQ_API int tq_get(tq *t, uint64_t id, struct tq_info *info);

/** Copy the result of a DONE task into buf (up to size bytes). Returns the
 * full result length. -ENOENT, -EBUSY not DONE. */
TQ_API int tq_result(tq *t, uint64_t id, void *buf, size_t size);

/** Forget a DONE or DEAD task: free its slot. -EBUSY in another state. */
TQ_API int tq_forget(tq *t, uint64_t id);

/** Cancel a PENDING or DELAYED task: it is removed and will not run.
 * -EBUSY when it is leased or finished, -ENOENT. */
TQ_API int tq_cancel(tq *t, uint64_t id);

/** Move a PENDING or DELAYED task to another level of its queue (to the
 * tail of that level). -EBUSY when not pending, -EINVAL bad level. */
TQ_API int tq_set_level(tq *t, uint64_t id, unsigned level);

/**
 * List tasks of queue q in one state: TQ_STATE_PENDING (at `level`, or at
 * every level with level < 0, most urgent first, FIFO within a level),
 * TQ_STATE_DELAYED, TQ_STATE_LEASED or TQ_STATE_DEAD. Up to max task IDs go
 * into ids, starting at *cursor (0 to begin); *cursor is set so that the
 * next call goes on; returns how many were written, 0 at the end. A
 * snapshot taken while others work: tasks that change state meanwhile may
 * or may not show, none shows twice in one pass. Errors: -ENOENT, -EINVAL.
 */
TQ_API int tq_list(tq *t, int q, int level, unsigned state, uint64_t *ids, unsigned max,
		   uint64_t *cursor);

/** Put a DEAD task back to ready at its level, with its attempts reset. */
TQ_API int tq_requeue_dead(tq *t, uint64_t id);

/**
 * List the dead letters of queue q, oldest first: up to max task IDs into
 * ids, starting at *cursor (set it to 0 to begin); *cursor is then set so
 * that the next call goes on. Returns how many were written; 0 at the end.
 * Letters requeued or forgotten meanwhile may or may not show; none shows
 * twice in one pass. Purging is tq_forget() of each, requeuing
 * tq_requeue_dead() of each. Errors: -ENOENT, -EINVAL.
 */
TQ_API int tq_dead_list(tq *t, int q, uint64_t *ids, unsigned max, uint64_t *cursor);

/* ------------------------------------------------------------------------
 * Counters. Read without stopping anyone; each counter is exact once the
 * callers that change it are quiet.
 */
struct tq_stats {
	uint64_t depth;          /* pending now (ready to lease) */
	uint64_t delayed;        /* waiting for their not-before time (queue-wide) */
	uint64_t leased_now;     /* leased now */
	uint64_t submitted;      /* accepted by submit */
	uint64_t leased;         /* leases given (attempts) */
	uint64_t acked;
	uint64_t failed;         /* attempts that failed */
	uint64_t released;
	uint64_t dead;           /* dead-lettered */
	uint64_t cancelled;
	uint64_t requeued;       /* dead letters put back */
	uint64_t moved;          /* level changes */
	uint64_t expired;        /* leases taken back from live workers at their
	                          * deadline: the one way a task runs twice */
};

/** Counters of queue q at one level, or summed over all levels with
 * level < 0. */
TQ_API int tq_stats(tq *t, int q, int level, struct tq_stats *st);

/** Segment-wide figures: configuration and use. */
struct tq_segment_info {
	struct tq_config config;
	uint32_t queues_declared;
	uint32_t procs_attached;
	uint64_t tasks_held;     /* slots in use */
	uint64_t segment_bytes;
	uint64_t repairs;        /* half-done operations repaired */
};
TQ_API int tq_segment_info(tq *t, struct tq_segment_info *info);

/* ------------------------------------------------------------------------
 * Latency histograms, per (queue, level), kept in the segment: log-linear
 * buckets (4 per power of two, so a bucket is at most 25% wide) from 1 ns to
 * over an hour. Updated with one relaxed atomic add per event.
 */
#define TQ_HIST_BUCKETS 168

enum tq_hist_kind {
	TQ_HIST_WAIT = 0,        /* submit (or last ready) -> first lease of the task */
	TQ_HIST_RUN = 1,         /* lease -> ack or fail, as the worker saw it */
};

struct tq_histogram {
	uint64_t count;          /* sum of buckets */
	uint64_t sum_ns;
	uint64_t buckets[TQ_HIST_BUCKETS];
};

/** Histogram `kind` of queue q at one level, or merged over all levels with
 * level < 0. -EINVAL bad kind or level, -ENOENT no queue q. */
TQ_API int tq_histogram(tq *t, int q, int level, unsigned kind, struct tq_histogram *h);

/** Inclusive upper bound in ns of bucket b (UINT64_MAX for the last). */
TQ_API uint64_t tq_hist_bucket_max_ns(unsigned b);

/** The value below which `pct` percent (0..100) of the histogram's events
 * fall: the upper bound of the bucket holding that rank. 0 when empty. */
TQ_API uint64_t tq_hist_percentile(const struct tq_histogram *h, double pct);

/* ------------------------------------------------------------------------
 * Attached processes, as the segment records them (for tqtop, tq stats).
 */
enum tq_proc_state {
	TQ_PROC_IDLE = 0,        /* attached, holds no lease, not waiting */
	TQ_PROC_WAITING = 1,     /* asleep in tq_lease() */
	TQ_PROC_BUSY = 2,        /* holds at least one lease */
	TQ_PROC_DEAD = 3,        /* process gone, record not yet recovered */
	TQ_PROC_DETACHED = 4,    /* detached while still holding tasks */
};
#define TQ_PROC_SUPERVISOR 1u    /* flags: the active supervisor */

struct tq_proc_info {
	int32_t  pid;
	uint32_t state;          /* enum tq_proc_state */
	uint32_t flags;          /* TQ_PROC_SUPERVISOR */
	uint32_t leased_now;     /* leases held now */
	uint64_t heartbeat_ns;   /* CLOCK_REALTIME of its last sign of life */
	uint64_t attached_ns;
	uint64_t current_task;   /* last task leased, 0 none */
	uint64_t leased;         /* leases taken since attach */
	uint64_t done;           /* acks and fails since attach */
	uint64_t submitted;      /* tasks submitted since attach */
};

/**
 * List attached process records: up to max into out, starting at *cursor
 * (0 to begin; set so that the next call goes on). Returns how many were
 * written, 0 at the end. A snapshot: records change while it runs.
 */
TQ_API int tq_procs(tq *t, struct tq_proc_info *out, unsigned max, unsigned *cursor);

/** Record a sign of life for this handle (tq_lease() and tq_extend() do it
 * too). Unlike every other call, safe from any thread while another thread
 * uses the handle. */
TQ_API void tq_heartbeat(tq *t);

/* ------------------------------------------------------------------------
 * The journal (docs/journal.md)
 */
struct tq_journal_info {
	uint32_t durability;     /* enum tq_durability; TQ_DURABILITY_NONE and
	                          * dir "" when the segment has no journal */
	uint32_t flush_ms;
	uint64_t file_bytes;     /* roll size */
	uint64_t first_file;     /* oldest file still needed */
	uint64_t files;          /* files from first_file to the tail's */
	uint64_t head_lsn;       /* replay starts here (last complete checkpoint) */
	uint64_t tail_lsn;       /* the next record goes here */
	uint64_t durable_lsn;    /* every record that ended below this is on disk */
	uint64_t records;        /* appended since the segment was created */
	uint64_t bytes;          /* appended since the segment was created */
	uint64_t flushes;
	uint64_t checkpoints;
	uint64_t last_flush_ns;  /* CLOCK_REALTIME */
	uint64_t errors;         /* records or flushes that failed (EIO, ENOSPC) */
	/* What tq_create() found when it replayed the directory. */
	uint64_t replay_records; /* good records read */
	uint64_t replay_tasks;   /* unfinished tasks restored */
	uint64_t replay_ns;      /* time it took */
	uint64_t replay_damaged; /* damaged regions skipped (torn or corrupt) */
	uint64_t replay_dropped; /* bytes in them */
	uint64_t replay_damage_lsn; /* position of the first, 0 none */
	uint64_t replay_lost;    /* tasks found that could not be restored (their
	                          * queue's record was lost, or no room) */
	char dir[TQ_PATH_MAX];
};

/** The journal's state. Without a journal: 0 and durability NONE, dir "". */
TQ_API int tq_journal_info(tq *t, struct tq_journal_info *ji);

/** Make every record appended so far durable (fdatasync), sharing the flush
 * with concurrent callers. -ENOTSUP without a journal, -EIO on a write error. */
TQ_API int tq_journal_flush(tq *t);

/**
 * The supervisor's journal work, called in its loop (tqd): the periodic
 * flush (TQ_DURABILITY_ASYNC), creating the next file before it is needed,
 * and, once the files hold much more than the live tasks, a checkpoint that
 * rewrites the live tasks at the tail so old files can be deleted (dead
 * letters included, so nothing pins an old file). Returns a mask of
 * TQ_JM_* of what it did, or a negative errno.
 */
#define TQ_JM_FLUSHED    1
#define TQ_JM_PREPARED   2
#define TQ_JM_CHECKPOINT 4
#define TQ_JM_DELETED    8
TQ_API int tq_journal_maintain(tq *t);

/** Rewrite the live state now and delete the files no longer needed,
 * whatever their size. Returns the number of files deleted. */
TQ_API int tq_journal_checkpoint(tq *t);

/* ------------------------------------------------------------------------
 * Periodic tasks (docs/schedules.md). A schedule submits one task per tick
 * of a cron expression; the segment's active supervisor (tqd) fires them
 * from tq_tick(), exactly once per tick, also when a standby supervisor
 * takes over half-way through a tick. Ticks missed while no supervisor ran
 * are caught up with one task, for the latest of them.
 */
#define TQ_SCHEDULES_MAX        64
#define TQ_SCHEDULE_SPEC_MAX    63      /* bytes of a spec */
#define TQ_SCHEDULE_PAYLOAD_MAX 1024

struct tq_schedule {
	char name[TQ_QUEUE_NAME_MAX + 1];  /* [A-Za-z0-9_.:-], unique */
	char spec[TQ_SCHEDULE_SPEC_MAX + 1]; /* cron, in UTC: "0 3 * * mon-fri",
	                          * "30 * * * *", "@hourly", "@every 10s" */
	int queue;
	uint32_t level;
	uint32_t type;
	uint32_t max_attempts;   /* 0 = the queue's */
	const void *payload;
	uint32_t len;            /* at most TQ_SCHEDULE_PAYLOAD_MAX */
};

struct tq_schedule_info {
	char name[TQ_QUEUE_NAME_MAX + 1];
	char spec[TQ_SCHEDULE_SPEC_MAX + 1];
	uint32_t queue, level, type, len;
	uint64_t next_ns;        /* the next tick, CLOCK_REALTIME */
	uint64_t last_tick_ns;   /* the last tick fired, 0 none */
	uint64_t last_task;      /* the task it submitted */
	uint64_t fired;          /* ticks fired since set */
};

/** Add the schedule s->name, or replace it (its next tick is then computed
 * afresh). Returns its index. -EINVAL bad name, spec (tq_last_error() says
 * where), level or queue; -EMSGSIZE payload; -ENOSPC table full. */
TQ_API int tq_schedule_set(tq *t, const struct tq_schedule *s);

/** Remove schedule `name`. -ENOENT if there is none. */
TQ_API int tq_schedule_remove(tq *t, const char *name);

/** Up to max schedules into out; returns how many. */
TQ_API int tq_schedule_list(tq *t, struct tq_schedule_info *out, unsigned max);

/* ------------------------------------------------------------------------
 * Recovery: the supervisor's repair pass (tqd calls it in a loop).
 */
struct tq_recovery {
	uint32_t procs;          /* dead handles whose records were recovered */
	uint32_t requeued;       /* tasks put back where they belong (ready, the
	                          * delay wheel, dead letters) */
	uint32_t dead;           /* leases ended after their last attempt: dead-lettered */
	uint32_t expired;        /* leases of live workers past their deadline, taken back */
	uint32_t freed;          /* slots and chunks given back to their pools */
};

/**
 * One repair pass over the segment. For every handle whose process is gone
 * (checked by PID and process start time, so a reused PID is not taken for
 * the old process) or which detached still holding tasks: each task it
 * leased goes back to ready with the attempt counted, or to the dead
 * letters after its last attempt; tasks it was moving are put where they
 * were going; a task it was submitting that reached its state but not its
 * ring is published; free slots it had reserved and storage it was freeing
 * go back to their pools; its sleeper registrations are undone; its record
 * is freed. For live handles, leases past their deadline are taken back the
 * same way (the worker learns -ESTALE on its next call for the task).
 * Returns the number of repairs (also added to tq_segment_info().repairs)
 * and, if report is not NULL, their breakdown. Any number of callers may
 * run it concurrently: each dead record is claimed by one of them, and a
 * recoverer that dies is taken over by the next.
 */
TQ_API int tq_recover(tq *t, struct tq_recovery *report);

/**
 * Sweep the whole segment for storage that no process record names: free
 * slots and free chunks whose bitmap bit is still set (a process killed in
 * the few instructions between taking bits and claiming what they stand
 * for), found so by two successive sweeps of this handle (a live
 * allocator holds that state for nanoseconds, an orphan for ever). Safe while others work: an item's own state word is the truth, and
 * a bit cleared early only makes an allocator's claim fail and retry; other
 * handles' batched frees may be given back early, which is harmless. O(slots
 * in use): tqd runs it every few seconds. Returns the number of items given
 * back (report->freed). Payload blocks are not swept (they have no owner
 * word); a supervisor sweeps them while no handle is attached (issue 3).
 */
TQ_API int tq_sweep(tq *t, struct tq_recovery *report);

/**
 * Become the segment's one active supervisor. Returns 0 when this handle is
 * it; -EBUSY when another live handle is, after waiting up to timeout_ms
 * for it to go (0: do not wait, < 0: wait without limit; the holder's death
 * is noticed within 100 ms by PID and start time). Released on detach.
 */
TQ_API int tq_supervisor_acquire(tq *t, int32_t timeout_ms);

/** 1 if this handle is still the active supervisor, 0 if not. */
TQ_API int tq_supervisor_active(tq *t);

/**
 * Time-driven work: make delayed tasks whose time has come ready (workers
 * do this as they lease; a supervisor calls it so delays are honoured when
 * no worker is leasing), forget expired results, and, in the active
 * supervisor, fire the schedules whose tick has come. Returns the number
 * of schedule ticks fired.
 */
TQ_API int tq_tick(tq *t);

/** The realtime clock in ns, as used for timestamps in the segment. */
TQ_API uint64_t tq_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif /* TQ_TQ_H */

/* SPDX-License-Identifier: MIT */
/*
 * bench.h - private to tq-bench: what the driver (tq-bench.c) and the
 * systems under test (sys-*.c) share.
 *
 * A run is one workload on one system. The parent fills a `struct run`,
 * maps the control block (`struct ctl`, MAP_SHARED, made before fork so
 * every child sees it at the same address), lets the system create its
 * shared object, then forks the workers and the producers. Each child
 * attaches to the system's object by name, says it is ready, waits for the
 * common start, does its share and _exit()s. The parent merges what the
 * workers wrote into the control block.
 *
 * Every wait is bounded: children look at ctl->abort and the run's deadline
 * whenever a blocking call times out, and the parent kills what is left.
 */
#ifndef TQ_BENCH_BENCH_H
#define TQ_BENCH_BENCH_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "hdr.h"

#define BENCH_LINE 64

enum scenario {
	SC_THROUGHPUT, SC_LATENCY, SC_RACE, SC_SUBMIT, SC_WORKERS, SC_OPS, SC_DEPTH,
	SC_CLIENTS, SC_PRIORITY, SC_BURST, SC_SUSTAINED, SC_DURABLE, SC_RECOVERY, SC_FAILOVER,
	SC_COUNT
};

/* Durable scenario: the journal's figures after the run (sys-tq.c). */
struct bench_jstat {
	int valid;
	uint64_t records, bytes, flushes, checkpoints, files, errors;
};

/* Exit codes of a child. */
enum {
	CHILD_OK = 0,
	CHILD_ERROR = 1,     /* ctl->err says what */
	CHILD_ABORTED = 3,   /* somebody else failed or the parent stopped us */
	CHILD_TIMEOUT = 4,   /* the run's deadline passed */
};

/* What a producer writes at the start of every payload. */
struct task_head {
	uint64_t seq;        /* global index of the task; BENCH_PREFILL set on prefill */
	uint64_t stamp;      /* CLOCK_MONOTONIC ns right before submit, 0 = not sampled */
};
#define BENCH_PREFILL (UINT64_C(1) << 63)

struct prod_stat {
	uint64_t start_ns, end_ns, count;
	char pad[BENCH_LINE - 3 * sizeof(uint64_t)];
};

struct work_stat {
	uint64_t first_ns;   /* clock right after the first measured lease */
	uint64_t last_ns;    /* clock right after the last ack */
	uint64_t count;      /* tasks handled, warm-up included */
	uint64_t measured;   /* tasks handled after the warm-up */
	uint64_t corrupt;    /* race: payloads that failed the check */
	uint64_t bad_seq;    /* race: sequence numbers out of range */
	char pad[BENCH_LINE - 6 * sizeof(uint64_t)];
};

/* The control block: one per run, MAP_SHARED | MAP_ANONYMOUS. */
struct ctl {
	_Atomic uint32_t ready;          /* children past attach */
	_Atomic uint32_t go;             /* futex word: 0 until the start */
	_Atomic uint32_t abort;          /* 1: everybody stop */
	_Atomic uint32_t err_set;
	uint64_t t0_ns;                  /* CLOCK_MONOTONIC at the start */
	uint64_t deadline_ns;            /* CLOCK_MONOTONIC, run's hard end */
	char err[512];
	/* then: prod_stat[P], work_stat[W], hdr[W], seen[race tasks] */
};

struct bench_sys;

/* One run, built by the parent before fork; children get a copy. */
struct run {
	const struct bench_sys *sys;
	enum scenario sc;
	unsigned producers, workers;
	uint64_t tasks;          /* measured tasks */
	uint64_t warmup;         /* tasks before them, not measured */
	uint64_t total;          /* tasks + warmup: what producers submit */
	uint64_t prefill;        /* pending before the start, left pending after */
	uint32_t payload;        /* bytes, >= sizeof(struct task_head) */
	double rate;             /* latency: submits per second over all producers */
	unsigned batch;          /* tasks per submit/lease call */
	unsigned queues;         /* tq: named queues the tasks are spread over */
	unsigned levels;         /* levels the tasks are spread over */
	unsigned seg_levels;     /* levels of the segment (tq), priorities (mq) */
	unsigned policy;         /* tq lease policy */
	unsigned sample;         /* stamp one task in `sample` (0: none) */
	int paced;               /* producers follow the --rate schedule */
	int touch;               /* workers read the whole payload */
	int pin;
	int spin_pace;           /* latency: spin to the send time, not sleep */
	uint64_t spin_ns;        /* raw-ring: spin before sleeping */
	uint32_t spin_us;        /* tq, tq-spin: the workers' tq_lease_opts.spin_us
	                          * (0 = libtq's adaptive spin) */
	uint32_t capacity;       /* tq: segment capacity, 0 = default */
	uint32_t ring_slots;     /* raw-ring: slots per producer besides prefill */
	long mq_maxmsg;          /* posix-mq: 0 = automatic */
	double duration;         /* seconds: hard bound of the run */
	unsigned seq;            /* run number, for unique names */

	char name[96];           /* the system's shared object */
	struct ctl *ctl;
	size_t ctl_size;
	struct prod_stat *prod;
	struct work_stat *work;
	struct hdr *hist;
	_Atomic uint8_t *seen;   /* race: times each task was handled */
	struct hdr *lhist;       /* priority: [worker * levels + level], or NULL */
	int server_pid;          /* redis, beanstalkd: the server, sampled for memory */
	/* Durable scenario (tq): the journal and its supervisor. */
	unsigned durability;     /* enum tq_durability */
	uint32_t flush_ms;       /* 0 = libtq's default */
	const char *journal_base;/* directory the journal's temporary directory goes in */
	const char *tqd_opt;     /* --tqd, or NULL */
	struct hdr *phist;       /* durable: per producer, latency of each submit call */
	struct bench_jstat jst;  /* filled by the system's teardown */

	void *priv;              /* the system's parent-side state */
	char note[512];          /* said in the output row */
};

/* Payload bytes a footprint measurement holds at most (fewer tasks when
 * payloads are large), so that it never fills the machine's memory. */
#define BENCH_FOOTPRINT_BYTES (UINT64_C(1) << 30)

/* Memory held per pending task, measured on a fresh object. */
struct footprint {
	uint64_t k;              /* tasks held while measuring */
	uint64_t resident;       /* bytes resident with k tasks held */
	uint64_t empty;          /* bytes resident with none */
	uint64_t size;           /* size of the object, if it has one */
	int valid;
	const char *method;
};

/* A system under test. Loops are per system so the hot path has no
 * indirect call. */
struct bench_sys {
	const char *name;
	void (*version)(char *buf, size_t size);
	/* Parent, before fork: create the object named r->name, declare,
	 * prefill. 0; BENCH_UNSUPPORTED with r->note saying why this workload
	 * cannot run on this system; or a negative errno with r->note. */
	int (*setup)(struct run *r);
	/* Children: attach by name, bench_ready(), do the share. Exit code. */
	int (*producer)(struct run *r, unsigned idx);
	int (*worker)(struct run *r, unsigned idx);
	/* Parent, after the children: take what is still pending (race) and
	 * count it in r->seen; returns how many, or a negative errno. May be
	 * NULL. Also checks the system's own counters where it has some. */
	long (*drain)(struct run *r);
	/* Parent: remove the name, unmap. Idempotent; also run on SIGINT. */
	void (*teardown)(struct run *r);
	/* Parent: on a fresh object, hold k tasks of r->payload bytes and
	 * measure. 0 or a negative errno. May be NULL. */
	int (*footprint)(struct run *r, uint64_t k, struct footprint *fp);
};
#define BENCH_UNSUPPORTED 1

extern const struct bench_sys bench_sys_tq;
extern const struct bench_sys bench_sys_tq_spin;
extern const struct bench_sys bench_sys_raw_ring;
extern const struct bench_sys bench_sys_posix_mq;
extern const struct bench_sys bench_sys_pipe;
extern const struct bench_sys bench_sys_redis;
extern const struct bench_sys bench_sys_beanstalkd;
extern const struct bench_sys bench_sys_beanstalkd_binlog;
extern const struct bench_sys bench_sys_beanstalkd_f0;

/* tq-spin: tq whose workers poll this long (us) before sleeping on the
 * futex, unless --spin-us says otherwise. 1 ms is ten inter-arrival times
 * at the latency scenario's 10,000 tasks/s: the worker never sleeps, so no
 * cross-CPU wake-up of a halted vCPU lands in the latency; it pays with a
 * CPU kept busy between tasks. */
#define BENCH_TQ_SPIN_US 1000u

/* Both tq systems: same library, same code, only the workers' spin differs. */
static inline int bench_is_tq(const struct bench_sys *s)
{
	return s == &bench_sys_tq || s == &bench_sys_tq_spin;
}

/* The level task seq goes to when tasks are spread over r->levels: every
 * system routes by the global sequence number, so a worker can tell a
 * task's level from its payload (per-level latency). */
static inline unsigned bench_level(unsigned levels, uint64_t seq)
{
	return levels > 1 ? (unsigned)(seq % levels) : 0;
}

/* ---- helpers for children (common.c) ---------------------------------- */

static inline uint64_t bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Record an error (first one wins), raise abort; returns CHILD_ERROR. */
int bench_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Announce readiness and wait (bounded) for the common start. 0, or the
 * child exit code to return. */
int bench_ready(struct run *r);
/* After a blocking call timed out: 0 to go on, else the exit code. */
int bench_check(struct run *r);
/* Cheap per-iteration version for spin loops: reads the clock itself. */
long bench_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns);
long bench_futex_wake(_Atomic uint32_t *word, int n);
/* Pin the calling process to a CPU chosen for (role, idx) if r->pin. */
void bench_pin(const struct run *r, int is_worker, unsigned idx);

/* Share of `total` items for member i of n (the first total % n get one more). */
static inline uint64_t bench_share(uint64_t total, unsigned n, unsigned i)
{
	return total / n + (i < total % n ? 1 : 0);
}
static inline uint64_t bench_share_base(uint64_t total, unsigned n, unsigned i)
{
	return (total / n) * i + (i < total % n ? i : total % n);
}

/* Absolute send time of task i (0-based, within producer p) in the latency
 * schedule: the P producers interleave evenly at r->rate in total. */
static inline uint64_t bench_send_time(const struct run *r, unsigned p, uint64_t i)
{
	double slot = (double)(i * r->producers + p);

	return r->ctl->t0_ns + (uint64_t)(slot * 1e9 / r->rate);
}
/* Wait until the monotonic time t: sleep (TIMER_ABSTIME) or spin. */
void bench_wait_until(const struct run *r, uint64_t t);

/* ---- producer side ----------------------------------------------------- */

struct pctx {
	struct run *r;
	unsigned idx;
	uint64_t n;              /* tasks of this producer */
	uint64_t base;           /* global index of its first task */
	uint64_t countdown;      /* until the next stamped task */
	unsigned char *buf;      /* payload buffer(s), r->batch of them */
};

/* Prepare a producer: its share, buffers. 0 or exit code. */
int bench_producer_init(struct pctx *c, struct run *r, unsigned idx);
void bench_producer_done(struct pctx *c);

/* Fill the payload of the task with global index seq (no stamp yet). */
static inline void bench_fill(const struct run *r, unsigned char *buf, uint64_t seq)
{
	if (r->sc == SC_RACE) {
		/* A pattern that depends on seq, checked by the worker. */
		for (uint32_t k = sizeof(struct task_head); k < r->payload; k++)
			buf[k] = (unsigned char)(seq * 131u + k * 7u);
	}
	memcpy(buf, &seq, sizeof(seq));
}

/* Payload of prefill task j: marked, never stamped (it is not measured). */
static inline void bench_fill_prefill(const struct run *r, unsigned char *buf, uint64_t j)
{
	struct task_head th = { .seq = j | BENCH_PREFILL, .stamp = 0 };

	memset(buf, 0x5a, r->payload);
	memcpy(buf, &th, sizeof(th));
}

/* Whether the producer's next task carries a timestamp: every
 * r->sample-th one. Decide once per task, before any retry. */
static inline int bench_sampled(struct pctx *c)
{
	if (c->countdown && --c->countdown == 0) {
		c->countdown = c->r->sample;
		return 1;
	}
	return 0;
}

/* Write the timestamp (or 0) right before the submit call. */
static inline void bench_stamp(unsigned char *buf, int sampled)
{
	uint64_t now = sampled ? bench_now() : 0;

	memcpy(buf + offsetof(struct task_head, stamp), &now, sizeof(now));
}

/* ---- worker side ------------------------------------------------------- */

struct wctx {
	struct run *r;
	struct work_stat *ws;
	struct hdr *h;
	unsigned idx;
	uint64_t quota;          /* tasks to handle, warm-up included */
	uint64_t warm;           /* the first `warm` of them are warm-up */
	uint64_t done;
	uint64_t now;            /* clock of the current lease call, 0 = unread */
	uint64_t sink;
};

void bench_worker_init(struct wctx *c, struct run *r, unsigned idx, uint64_t quota);
/* Call once the worker's quota is done: last clock, counters. */
void bench_worker_done(struct wctx *c);
/* Race: check one payload, count it in r->seen. */
void bench_race_check(struct wctx *c, const unsigned char *p, uint32_t len);

/* Call right after a lease call returned k >= 1 tasks, before handling:
 * starts the worker's clock at its first measured lease. */
static inline void bench_leased(struct wctx *c, unsigned k)
{
	c->now = 0;
	if (c->ws->first_ns == 0 && c->done + k > c->warm) {
		c->now = bench_now();
		c->ws->first_ns = c->now;
	}
}

/* Handle one leased task (payload p, len bytes); before its ack. */
static inline void bench_handle(struct wctx *c, const void *p, uint32_t len)
{
	struct task_head th;

	memcpy(&th, p, sizeof(th));
	if (c->done >= c->warm && th.stamp) {
		if (!c->now)
			c->now = bench_now();
		uint64_t v = c->now > th.stamp ? c->now - th.stamp : 0;

		hdr_record(c->h, v);
		if (c->r->lhist)
			hdr_record(&c->r->lhist[(size_t)c->idx * c->r->levels +
						 bench_level(c->r->levels, th.seq)], v);
	}
	if (c->r->touch) {
		const unsigned char *b = p;
		uint64_t s = 0, w;
		uint32_t k;

		for (k = 0; k + 8 <= len; k += 8) {
			memcpy(&w, b + k, 8);
			s += w;
		}
		for (; k < len; k++)
			s += b[k];
		c->sink += s;
	}
	if (c->r->sc == SC_RACE)
		bench_race_check(c, p, len);
	c->done++;
}

#endif /* TQ_BENCH_BENCH_H */

/* SPDX-License-Identifier: MIT */
/*
 * layout.h - PRIVATE: the byte layout of a tq segment and the encodings of
 * the words that live in it. Not part of the API.
 *
 * Everything here is position-independent: the segment maps at a different
 * address in every process, so the segment holds offsets and indices, never
 * pointers. Every index read back from the segment is bounds-checked by the
 * code that uses it, because another process (or a bug, or garbage) wrote it.
 * docs/segment-layout.md draws the picture.
 */
#ifndef TQ_LAYOUT_H
#define TQ_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tq/tq.h>

#include "journal.h"

#define TQ__MAGIC          0x544e4d4745535154ull  /* "TQSEGMNT" little-endian */
#define TQ__LAYOUT_VERSION 3u
#define TQ__CACHELINE      64u

#define TQ__SLOT_SIZE      128u                  /* header + inline payload */
#define TQ__SLOT_HDR       48u
#define TQ__INLINE_MAX     (TQ__SLOT_SIZE - TQ__SLOT_HDR)
#define TQ__CHUNK_CELLS    512u                  /* cells per ring chunk (4 KiB) */
#define TQ__STRIPES        8u                    /* counter stripes */
#define TQ__WHEEL          256u                  /* 1 ms buckets of the delay wheel */
#define TQ__CLASSES_MAX    12u                   /* payload size classes */
#define TQ__CLASS_MIN_SHIFT 8u                   /* smallest class: 256 B */
#define TQ__NIL            0xffffffffu
#define TQ__NO_DUE         UINT64_MAX

/* ------------------------------------------------------------------------
 * Atomics on shared memory. The GCC/Clang __atomic builtins work on plain
 * fields, which keeps the segment structs free of _Atomic qualifiers.
 */
#define tq__load(p)        __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define tq__load_rlx(p)    __atomic_load_n((p), __ATOMIC_RELAXED)
#define tq__store(p, v)    __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define tq__store_rlx(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define tq__add(p, v)      __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define tq__add_rlx(p, v)  __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define tq__fence()        __atomic_thread_fence(__ATOMIC_SEQ_CST)

static inline bool tq__cas64(uint64_t *p, uint64_t expect, uint64_t desired)
{
	return __atomic_compare_exchange_n(p, &expect, desired, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

static inline bool tq__cas32(uint32_t *p, uint32_t expect, uint32_t desired)
{
	return __atomic_compare_exchange_n(p, &expect, desired, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

static inline void tq__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* ------------------------------------------------------------------------
 * The state word of a slot: the single source of truth about a task.
 *
 *   63..60 kind   59..0 argument
 *
 * READY, DELAYED and DEAD carry the ring and position the slot was
 * published at (ring:16 | pos:44), so a consumer can claim exactly the
 * entry it read and nothing recycled since. RESERVED, LEASED, BUSY and
 * FREEING carry the owner token of the handle that holds the slot. FREE
 * always means the payload is already dropped. Every transition is a
 * single CAS on this word; docs/protocols.md lists them.
 */
enum tq__kind {
	TQ__K_FREE = 0,      /* in the free pool (or on its way there) */
	TQ__K_RESERVED = 1,  /* taken by a handle, being filled or cached */
	TQ__K_READY = 2,     /* published in a ready ring */
	TQ__K_DELAYED = 3,   /* published in a delay-wheel ring */
	TQ__K_LEASED = 4,    /* held by a worker */
	TQ__K_BUSY = 5,      /* in transit, owned by a handle */
	TQ__K_DONE = 6,      /* acked, result kept */
	TQ__K_DEAD = 7,      /* published in a dead-letter ring */
	TQ__K_RETIRED = 8,   /* generation exhausted: never reused */
	TQ__K_FREEING = 9,   /* payload being dropped by its owner, then FREE */
};

#define TQ__POS_BITS   44
#define TQ__POS_MASK   ((1ull << TQ__POS_BITS) - 1)
#define TQ__ARG_MASK   ((1ull << 60) - 1)

static inline uint64_t tq__st(unsigned kind, uint64_t arg)
{
	return ((uint64_t)kind << 60) | (arg & TQ__ARG_MASK);
}
static inline uint64_t tq__st_at(unsigned kind, uint32_t ring, uint64_t pos)
{
	return tq__st(kind, ((uint64_t)ring << TQ__POS_BITS) | (pos & TQ__POS_MASK));
}
static inline unsigned tq__st_kind(uint64_t st) { return (unsigned)(st >> 60); }
static inline uint64_t tq__st_arg(uint64_t st) { return st & TQ__ARG_MASK; }
static inline uint32_t tq__st_ring(uint64_t st) { return (uint32_t)((st & TQ__ARG_MASK) >> TQ__POS_BITS); }

/* Owner token: (epoch:26 | proc index:16). Epoch >= 1, so a token is never 0.
 * A process record's owner word is (pid:22 | token:42): the PID is claimed
 * with the record in one CAS, so no record ever looks owned by nobody. */
#define TQ__TOKEN_BITS 42
#define TQ__TOKEN_MASK ((1ull << TQ__TOKEN_BITS) - 1)
static inline uint64_t tq__token(uint32_t epoch, uint32_t proc)
{
	return ((uint64_t)(epoch & 0x03ffffffu) << 16) | (proc & 0xffffu);
}
static inline uint64_t tq__owner_word(uint32_t pid, uint64_t token)
{
	return ((uint64_t)(pid & 0x3fffffu) << TQ__TOKEN_BITS) | token;
}
static inline uint32_t tq__token_proc(uint64_t token) { return (uint32_t)(token & 0xffffu); }

/* ------------------------------------------------------------------------
 * A task slot: 48-byte header and the inline payload. Fields other than
 * state are written by the slot's owner only (the state word says who);
 * tq_get() reads them relaxed and re-checks gen and state afterwards.
 */
struct tq__slot {
	uint64_t state;
	uint32_t gen;           /* ID = gen << 32 | index; bumped when reserved */
	uint32_t len;           /* payload (or result) bytes */
	uint32_t block;         /* arena reference when len > TQ__INLINE_MAX */
	uint32_t lease_ms;
	uint64_t submitted_ns;
	uint64_t due_ns;        /* not-before while delayed, deadline while leased;
	                         * TQ__NO_DUE while ready (recovery then knows a
	                         * fresh lease has not stamped its deadline yet) */
	union {
		struct {
			uint16_t type;
			uint8_t queue;
			uint8_t level;
			uint8_t attempts;
			uint8_t max_attempts;
			uint16_t held;  /* while leased: the held-list entry of
			                 * the lessee, written and read by it only */
		};
		uint64_t meta;          /* all of them, written at once by a submit
		                         * (tq__slot_meta()) */
	};
	uint8_t data[TQ__INLINE_MAX];
};
_Static_assert(sizeof(struct tq__slot) == TQ__SLOT_SIZE, "slot size");
_Static_assert(offsetof(struct tq__slot, data) == TQ__SLOT_HDR, "slot header");
_Static_assert(offsetof(struct tq__slot, meta) % 8 == 0 && offsetof(struct tq__slot, type) ==
	       offsetof(struct tq__slot, meta), "slot meta word");

/* The meta word of a slot (little-endian, as the fields above lay out on
 * the machines tq runs on): no attempts yet, no held entry. */
static inline uint64_t tq__slot_meta(uint32_t type, uint32_t queue, uint32_t level,
				     uint32_t max_attempts)
{
	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "meta word layout");
	return (uint64_t)(uint16_t)type | (uint64_t)(uint8_t)queue << 16 |
	       (uint64_t)(uint8_t)level << 24 | (uint64_t)(uint8_t)max_attempts << 40;
}

/* Arena block reference: class:4 | index:28. */
static inline uint32_t tq__blockref(uint32_t cls, uint32_t idx) { return (cls << 28) | idx; }
static inline uint32_t tq__blockref_class(uint32_t ref) { return ref >> 28; }
static inline uint32_t tq__blockref_index(uint32_t ref) { return ref & 0x0fffffffu; }

/* Held-list entry of a process record: kind:2 | index:30. 0 is empty. */
enum { TQ__H_SLOT = 1, TQ__H_CHUNK = 2, TQ__H_BLOCK = 3 };
static inline uint32_t tq__held(unsigned kind, uint32_t idx) { return ((uint32_t)kind << 30) | (idx & 0x3fffffffu); }
/* The entry of slot idx < capacity (at most TQ_CAPACITY_MAX, checked at
 * create and attach, under 2^30: nothing to mask off). */
static inline uint32_t tq__held_slot(uint32_t idx) { return (uint32_t)TQ__H_SLOT << 30 | idx; }
_Static_assert(TQ_CAPACITY_MAX <= 0x40000000u, "slot indices fit a held entry");

/* ------------------------------------------------------------------------
 * A ring: an unbounded FIFO of slot indices made of 512-cell chunks taken
 * from a shared chunk pool. Consumer words and producer words sit on
 * separate cache lines. head/tail are (chunk gen:32 | chunk index:32).
 */
struct tq__ring {
	_Alignas(TQ__CACHELINE) uint64_t head;
	uint64_t rpos;
	_Alignas(TQ__CACHELINE) uint64_t tail;
	uint64_t wpos;
};

/* A chunk header; the chunk's cells live in a separate page-aligned array.
 * A cell is (chunk gen:32 | slot index + 1:32); gen with 0 is empty. */
struct tq__chunk {
	uint64_t gen_next;      /* gen:32 | next chunk index:32 (TQ__NIL: none) */
	uint64_t base;          /* queue position of cell 0 */
	uint64_t owner;         /* 0 free, token of the handle placing it, or
	                         * (1 << 63 | ring) once linked into a ring */
	uint64_t ring;          /* ring it is being linked into (recovery) */
};
#define TQ__CHUNK_LINKED (1ull << 63)

/* ------------------------------------------------------------------------
 * A wait queue in the segment: a futex word and one word counting
 * (sleepers:32 | wakes in flight:32), so that a waker calls the kernel only
 * while some sleeper has not been signalled yet (wait.c).
 */
struct tq__waitq {
	uint32_t seq;            /* futex word, bumped by every signal */
	uint32_t pad;
	uint64_t count;          /* sleepers << 32 | signalled */
};

/* ------------------------------------------------------------------------
 * Named queue.
 */
enum { TQ__Q_FREE = 0, TQ__Q_ACTIVE = 1 }; /* else: (2 << 60 | token) being declared */
#define TQ__Q_INIT (2ull << 60)

struct tq__queue {
	uint64_t state;
	char name[TQ_QUEUE_NAME_MAX + 1];
	uint32_t max_length;
	uint32_t lease_ms;
	uint32_t max_attempts;
	uint32_t weight;
	uint32_t paused;
	uint32_t retry_base_ms;
	uint32_t retry_cap_ms;
	uint32_t retry_factor;   /* percent */
	uint32_t result_ttl_ms;  /* 0: results kept until forgotten */
	uint32_t level_weight[TQ_LEVELS_MAX];
	_Alignas(TQ__CACHELINE) uint64_t count; /* tasks not finished (max_length only) */
	_Alignas(TQ__CACHELINE) struct tq__waitq ready; /* workers waiting for tasks */
};

/* ------------------------------------------------------------------------
 * Process record: one per attached handle. Only its owner writes it, except
 * for a supervisor recovering it after the owner died.
 */
struct tq__proc {
	uint64_t owner;          /* 0 free, else tq__owner_word(pid, token); pid 0
	                          * once detached with tasks still held */
	int32_t pid;             /* for display; the owner word is the truth */
	uint32_t epoch;
	uint64_t start_time;     /* /proc/<pid>/stat starttime, against PID reuse */
	uint64_t heartbeat_ns;
	uint32_t space_sleeping; /* 1 while registered on the header's space queue */
	uint32_t cached;         /* free slots in its cache or not yet given back */
	uint32_t free_word;      /* slot bitmap word of its pending frees */
	uint32_t res_word;       /* slot bitmap word of its reserved slots */
	uint64_t free_mask;      /* its freed slots whose bits are not cleared yet */
	uint64_t res_mask;       /* its reserved slots (cached, being filled or
	                          * published), named as held entries are (I2) */
	uint64_t recoverer;      /* token of the handle recovering it, 0 none */
	uint64_t sleeping[TQ_QUEUES_MAX / 64]; /* queues whose ready queue it sleeps on */
	/* For display (tq_procs()); written by the owner, relaxed. */
	uint64_t attached_ns;
	uint64_t current_task;   /* last task leased */
	uint64_t n_leased, n_done, n_submitted;
	uint32_t leased_now;
	uint32_t pad2;
	uint64_t jres;           /* journal space reserved, not yet committed: the
	                          * LSN (or the tail seen before reserving), 0 none */
	_Alignas(TQ__CACHELINE) uint32_t held[TQ_HELD_MAX];
};

/* Counter indices of a (queue, level, stripe) block. Each operation on the
 * hot path adds to one counter only; gauges are derived (stats.c):
 *   depth   = SUBMITTED - SUB_DELAYED + ENQ - LEASED - DEQ
 *   delayed = SUB_DELAYED + DELAY_IN - DELAY_OUT
 *   leased  = LEASED - ACKED - FAILED - RELEASED - RECOVERED */
enum tq__ctr {
	TQ__C_SUBMITTED,     /* accepted by submit */
	TQ__C_SUB_DELAYED,   /* ... of which went to the delay wheel */
	TQ__C_ENQ,           /* ready entries from anything but submit */
	TQ__C_LEASED,        /* leases given */
	TQ__C_DEQ,           /* ready entries removed by anything but lease */
	TQ__C_ACKED, TQ__C_FAILED, TQ__C_RELEASED,
	TQ__C_RECOVERED,     /* leases ended by recovery (supervisor) */
	TQ__C_DEAD, TQ__C_CANCELLED, TQ__C_REQUEUED, TQ__C_MOVED,
	TQ__C_DELAY_IN,      /* delayed entries from anything but submit */
	TQ__C_DELAY_OUT,
	TQ__C_EXPIRED,       /* leases of live workers taken back at expiry */
	TQ__C_COUNT
};
struct tq__counters {
	uint64_t c[16];
};
_Static_assert(TQ__C_COUNT <= 16, "counters block");

/* A periodic task's schedule (schedule.c). Edited under the header's
 * sched_lock; the tick words are written by the active supervisor only. */
enum { TQ__S_FREE = 0, TQ__S_EDIT = 1, TQ__S_ACTIVE = 2 };
struct tq__sched {
	uint32_t state;
	uint32_t queue, level, type, max_attempts, len;
	char name[TQ_QUEUE_NAME_MAX + 1];
	char spec[TQ_SCHEDULE_SPEC_MAX + 1];
	uint64_t next_ns;        /* the next tick to fire */
	uint64_t tick_ns;        /* the tick being fired, or the last fired */
	uint64_t task;           /* task of the tick being fired, 0 none */
	uint64_t last_task;
	uint64_t fired;          /* ticks fired << 16 | tag of the last (schedule.c) */
	uint8_t payload[TQ_SCHEDULE_PAYLOAD_MAX];
};

/* A latency histogram of one (queue, level, kind): log-linear buckets, 4 per
 * power of two (tq_hist_bucket_max_ns() gives the bounds), and the sum. */
struct tq__hist {
	uint64_t b[TQ_HIST_BUCKETS];
	uint64_t sum;
	uint64_t pad[7];
};

static inline unsigned tq__hist_bucket(uint64_t v)
{
	unsigned e, b;

	if (v < 4)
		return (unsigned)v;
	/* The top three bits of v, 4..7, pick the quarter: bucket
	 * 4 * (e - 1) + (top - 4). */
	e = 63u - (unsigned)__builtin_clzll(v);
	b = 4u * e + (unsigned)(v >> (e - 2u)) - 8u;
	return b < TQ_HIST_BUCKETS ? b : TQ_HIST_BUCKETS - 1;
}

/* ------------------------------------------------------------------------
 * The layout, computed from the configuration by tq__layout_compute() and
 * stored in the header; attach recomputes it and compares every field.
 */
struct tq__layout {
	uint32_t queues, levels, capacity, max_payload, procs;
	uint32_t slot_size, chunk_cells, stripes, wheel;
	uint32_t nrings, nchunks, nclasses;
	uint32_t class_size[TQ__CLASSES_MAX];
	uint32_t class_count[TQ__CLASSES_MAX];
	uint64_t off_procs, off_queues, off_rings, off_counters, off_hist;
	uint64_t off_chunks, off_chunk_bits, off_cells;
	uint64_t off_slot_bits, off_slots;
	uint64_t off_class_bits[TQ__CLASSES_MAX];
	uint64_t off_class[TQ__CLASSES_MAX];
	uint64_t total;
};

struct tq__hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t total_size;
	uint32_t mode;
	uint32_t pad;
	uint64_t arena_bytes;
	int64_t group;
	struct tq__layout lay;
	/* Runtime words, each group on its own line. */
	_Alignas(TQ__CACHELINE) uint64_t wheel_ms; /* delay wheel: buckets up to here drained */
	uint64_t delayed;        /* tasks in the wheel */
	_Alignas(TQ__CACHELINE) struct tq__waitq space; /* producers waiting for room */
	uint64_t free_hint;      /* slot bitmap word a worker cleared bits of last
	                          * (past the window: where producers look first
	                          * when a deep queue fills the window) */
	_Alignas(TQ__CACHELINE) uint64_t repairs; /* half-done operations repaired */
	uint64_t queues_declared;
	uint64_t supervisor;     /* token of the active supervisor, 0 none */
	uint64_t sched_lock;     /* token of the handle editing or firing schedules */
	struct tq__sched sched[TQ_SCHEDULES_MAX];
	_Alignas(TQ__CACHELINE) struct tq__jhdr jnl; /* the journal (journal.h) */
};

/* Ring numbering. */
static inline uint32_t tq__ring_ready(const struct tq__layout *l, uint32_t q, uint32_t lv)
{
	return q * l->levels + lv;
}
static inline uint32_t tq__ring_dead(const struct tq__layout *l, uint32_t q)
{
	return l->queues * l->levels + q;
}
static inline uint32_t tq__ring_done(const struct tq__layout *l, uint32_t q)
{
	return l->queues * (l->levels + 1) + q;  /* results with a TTL */
}
static inline uint32_t tq__ring_wheel(const struct tq__layout *l, uint32_t b)
{
	return l->queues * (l->levels + 2) + b;  /* b == TQ__WHEEL: the far ring */
}

int tq__layout_compute(const struct tq_config *cfg, struct tq__layout *lay);

#endif /* TQ_LAYOUT_H */

/* SPDX-License-Identifier: MIT */
/*
 * handle.h - PRIVATE: the process-local handle (struct tq) and the internal
 * interfaces between the engine's files. Not part of the API.
 *
 * A handle is used by one thread at a time, so nothing in it needs atomics;
 * everything shared lives in the segment (layout.h).
 */
#ifndef TQ_HANDLE_H
#define TQ_HANDLE_H

#include <errno.h>
#include <stdarg.h>
#include <time.h>

#include "layout.h"

#define TQ__CACHE_MAX  32u     /* reserved free slots a handle keeps */
#define TQ__SLOT_WINDOW 256u  /* producers take slots from the first 16 Ki first */

struct tq {
	uint8_t *base;             /* the mapping */
	uint64_t size;
	struct tq__hdr *hdr;
	struct tq__layout lay;     /* validated copy: trust this, not the segment */
	/* Where the arrays of the hot path are (base + their offsets), so
	 * that a lookup is one load and an index. */
	struct tq__slot *slots;
	struct tq__ring *rings;
	struct tq__chunk *chunks;
	uint64_t *cells;
	struct tq__queue *queues;
	struct tq__counters *ctrs;
	struct tq__hist *hists;
	uint64_t *slot_bits;

	struct tq__proc *proc;     /* this handle's process record */
	uint32_t proc_idx;
	uint64_t token;
	uint64_t st_reserved, st_leased, st_busy, st_freeing; /* state words owned by token */
	uint32_t stripe;

	/* Held list bookkeeping (the list itself is proc->held). */
	uint16_t held_free[TQ_HELD_MAX];
	uint32_t nheld_free;
	/* Lease start (ns, odd, so never 0) of each held entry that names a
	 * task leased by tq_lease(); 0 for any other entry. */
	uint64_t held_t0[TQ_HELD_MAX];
	uint64_t n_leased, n_done, n_submitted;
	uint32_t leased_now;

	/* Reserved free slots, all of one bitmap word, named by the process
	 * record's res_word and res_mask (written there as res_mask). */
	uint64_t cache[TQ__CACHE_MAX]; /* as task IDs: generation << 32 | index */
	uint32_t ncache;
	uint64_t res_mask;
	uint32_t slot_cursor;      /* next word to look at in the slot window */
	uint32_t slot_far;         /* next word to look at past it (window full) */
	uint32_t window_skip;      /* refills left before looking at a full window again */
	uint32_t chunk_cursor;
	uint32_t class_cursor[TQ__CLASSES_MAX];

	int64_t *wrr;              /* per (queue, level): weighted round robin */
	bool spin_ok;              /* tasks came while spinning: spin again */
	uint64_t last_take_ns;     /* when tq_lease() last took tasks */
	uint64_t rng;              /* xorshift state for retry jitter */
	uint64_t *sweep_prev;      /* tq_sweep(): free items with bits set last time */
	uint32_t free_word;        /* slot bitmap word of the pending frees */
	uint64_t free_mask;        /* freed slots whose bits are not cleared yet */
	uint32_t free_count;
	uint32_t allq[TQ_QUEUES_MAX]; /* declared queues, for a lease of "all" */
	uint32_t nallq;
	uint64_t allq_seen;        /* hdr->queues_declared when allq was built */

	/* The journal (journal.c): on when the segment has one. */
	bool jon;
	uint32_t jsync;            /* durability is TQ_DURABILITY_SYNC */
	uint64_t jfile_bytes;
	struct tq__jmap jmap[TQ__JMAPS];
	uint32_t jmap_next;
	uint8_t *jbuf;             /* the record being built */
	uint32_t jbuf_size;
	int jrec_fd;               /* the file it goes to */
	uint64_t jend[TQ__JEND_MAX]; /* finished IDs not yet journaled */
	uint32_t jend_n;
	uint64_t jend_t0;
	char jdir[TQ_PATH_MAX];

	char err[256];
};

/* error.c */
int tq__fail(tq *t, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tq__set_tls_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Address of things, bounds already known good. */
static inline struct tq__slot *tq__slot(tq *t, uint32_t idx)
{
	return t->slots + idx;
}
static inline struct tq__ring *tq__ring(tq *t, uint32_t r)
{
	return t->rings + r;
}
static inline struct tq__chunk *tq__chunk(tq *t, uint32_t c)
{
	return t->chunks + c;
}
static inline uint64_t *tq__cells(tq *t, uint32_t c)
{
	return t->cells + (uint64_t)c * TQ__CHUNK_CELLS;
}
static inline struct tq__queue *tq__queue(tq *t, uint32_t q)
{
	return t->queues + q;
}
static inline struct tq__proc *tq__proc_at(tq *t, uint32_t p)
{
	return (struct tq__proc *)(t->base + t->lay.off_procs) + p;
}
static inline uint64_t *tq__slot_bits(tq *t)
{
	return t->slot_bits;
}
static inline uint64_t *tq__chunk_bits(tq *t)
{
	return (uint64_t *)(t->base + t->lay.off_chunk_bits);
}
static inline uint64_t *tq__class_bits(tq *t, uint32_t cls)
{
	return (uint64_t *)(t->base + t->lay.off_class_bits[cls]);
}
static inline uint8_t *tq__block(tq *t, uint32_t cls, uint32_t idx)
{
	return t->base + t->lay.off_class[cls] + (uint64_t)idx * t->lay.class_size[cls];
}
static inline uint64_t tq__bitmap_words(uint32_t n) { return (n + 63u) / 64u; }

/* pool.c: bitmap allocator, bit set = in use. */
unsigned tq__pool_take(uint64_t *bits, uint32_t n, uint32_t *cursor, unsigned max, uint32_t *out);
void tq__pool_give(uint64_t *bits, uint32_t idx);
uint64_t tq__pool_used(const uint64_t *bits, uint32_t n);

/* proc.c: process records, held lists, liveness. */
int tq__proc_claim(tq *t);
void tq__proc_release(tq *t);
void tq__held_forget_lost(tq *t, uint32_t idx);
int tq__owner_pid(tq *t, uint64_t token);
bool tq__token_alive(tq *t, uint64_t token);

/* The held list (proc.c explains it), on every hot path, so inline. An
 * entry is named in the segment before the thing it names is claimed.
 * This form is for a caller that has checked there is a free entry. */
static inline int tq__held_add_known(tq *t, uint32_t entry)
{
	int hi = t->held_free[--t->nheld_free];

	tq__store(&t->proc->held[hi], entry);
	return hi;
}

/* The same, checking that there is a free entry: -ENOBUFS if not. */
static inline int tq__held_add(tq *t, uint32_t entry)
{
	if (!t->nheld_free)
		return -ENOBUFS;
	return tq__held_add_known(t, entry);
}

/* Reserve an entry without writing it: it is 0 already (tq__held_del()
 * cleared it), and the caller writes it before its claim. */
static inline int tq__held_reserve(tq *t)
{
	if (!t->nheld_free)
		return -ENOBUFS;
	return t->held_free[--t->nheld_free];
}

static inline void tq__held_set(tq *t, int hi, uint32_t entry)
{
	tq__store(&t->proc->held[hi], entry);
}

static inline void tq__held_del(tq *t, int hi)
{
	tq__store(&t->proc->held[hi], 0);
	t->held_free[t->nheld_free++] = (uint16_t)hi;
}

/* tq_now_ns() without the call into another file. */
static inline uint64_t tq__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ring.c: chunked claim-on-slot rings (push and pop: ring.h). */
int tq__ring_init(tq *t, uint32_t r);
bool tq__ring_maybe_ready(tq *t, uint32_t r);
uint64_t tq__ring_wpos(tq *t, uint32_t r);
uint64_t tq__ring_len(tq *t, uint32_t r);
unsigned tq__ring_skip_stale(tq *t, uint32_t r, unsigned kind, unsigned max);
unsigned tq__ring_list(tq *t, uint32_t r, unsigned kind, uint64_t *from, uint64_t *ids,
		       unsigned max);
bool tq__ring_head_live(tq *t, uint32_t r, unsigned kind, uint32_t *idx, uint64_t *st);
void tq__ring_mark_chunks(tq *t, uint32_t r, uint64_t *bits);

/* wait.c: futex sleeping and waking in the shared mapping. */
int tq__futex_wait(uint32_t *word, uint32_t val, int64_t deadline_ns);
int tq__futex_waitv(uint32_t **words, const uint32_t *vals, unsigned n, int64_t deadline_ns);
void tq__futex_wake(uint32_t *word, int n);
uint32_t tq__waitq_enter(struct tq__waitq *w);
void tq__waitq_leave(struct tq__waitq *w);
void tq__waitq_wake(struct tq__waitq *w, unsigned n);
void tq__wake_ready(tq *t, uint32_t q, unsigned n);
void tq__wake_space(tq *t);
int64_t tq__deadline(int32_t timeout_ms);
uint64_t tq__mono_ns(void);

/* payload.c: inline or arena storage of payloads and results. */
int tq__payload_store(tq *t, struct tq__slot *s, const void *data, uint32_t len);
void tq__payload_drop_block(tq *t, struct tq__slot *s);

/* Copy an inline payload (n <= TQ__INLINE_MAX bytes) into a slot with a few
 * overlapping fixed-size moves, cheaper than a call or a rep movs for
 * sizes this small. */
static inline void tq__copy_inline(uint8_t *d, const void *src, uint32_t n)
{
	const uint8_t *s = src;

	_Static_assert(TQ__INLINE_MAX <= 96, "three moves of 32 cover it");
	if (n >= 32) {
		__builtin_memcpy(d, s, 32);
		if (n > 64)
			__builtin_memcpy(d + 32, s + 32, 32);
		__builtin_memcpy(d + n - 32, s + n - 32, 32);
	} else if (n >= 16) {
		__builtin_memcpy(d, s, 16);
		__builtin_memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		__builtin_memcpy(d, s, 4);
		__builtin_memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* Forget the slot's bytes, giving back the arena block if it has one. */
static inline void tq__payload_drop(tq *t, struct tq__slot *s)
{
	if (tq__load_rlx(&s->len) > TQ__INLINE_MAX)
		tq__payload_drop_block(t, s);
	else
		tq__store_rlx(&s->len, 0);
}
int tq__payload_replace(tq *t, struct tq__slot *s, const void *data, uint32_t len);
const void *tq__payload_ptr_block(tq *t, const struct tq__slot *s, uint32_t *len);

/* Where the slot's bytes are (*len of them), or NULL (and *len 0) if the
 * slot is corrupt. Inline payloads without the call. */
static inline const void *tq__payload_ptr(tq *t, const struct tq__slot *s, uint32_t *len)
{
	uint32_t n = tq__load_rlx(&s->len);

	if (n <= TQ__INLINE_MAX) {
		*len = n;
		return s->data;
	}
	return tq__payload_ptr_block(t, s, len);
}
int tq__class_for(const struct tq__layout *l, uint32_t len);

/* slots, shared by submit, finish and inspect (submit.c). */
int tq__slot_refill(tq *t);

/* Start fetching both lines of slot idx for writing: a slot about to be
 * claimed or filled that may sit in memory, not in a cache. */
static inline void tq__slot_prefetch(tq *t, uint32_t idx)
{
	uint8_t *p = (uint8_t *)tq__slot(t, idx);

	__builtin_prefetch(p, 1, 3);
	__builtin_prefetch(p + TQ__CACHELINE, 1, 3);
}

/* A reserved free slot from the handle's cache, refilled 32 at a time, as
 * its new ID *id (the slot is its low half); it stays named in the process
 * record until tq__slot_unname(). The caller writes the process record's
 * gauge of cached slots (tq__slot_gauge()), once for a run of takes.
 * ahead (a constant): fetch the next one's lines, for a caller that takes
 * one at a time (a refill has just fetched them all for one that takes a
 * run). */
static inline int tq__slot_take(tq *t, uint64_t *id, bool ahead)
{
	if (__builtin_expect(!t->ncache, 0)) {
		int e = tq__slot_refill(t);
		if (e < 0)
			return e;
	}
	t->ncache--;
	*id = t->cache[t->ncache];
	/* Fetch the next slot's lines now, so that the next submit's stores
	 * hit and its publishing CAS does not wait for them. */
	if (ahead && t->ncache)
		tq__slot_prefetch(t, (uint32_t)t->cache[t->ncache - 1]);
	return 0;
}

/* The slots of mask (of the cache's bitmap word) have reached their next
 * owner (a ring, the delay wheel, the free pool): no longer the handle's
 * to name (P7 in docs/protocols.md). */
static inline void tq__slot_unname(tq *t, uint64_t mask)
{
	t->res_mask &= ~mask;
	tq__store(&t->proc->res_mask, t->res_mask);
}

static inline uint64_t tq__slot_bit(uint32_t idx)
{
	return 1ull << (idx % 64u);
}

static inline void tq__slot_gauge(tq *t)
{
	tq__store_rlx(&t->proc->cached, t->ncache + t->free_count);
}
void tq__slot_free(tq *t, uint32_t idx);
void tq__slot_flush(tq *t);

/* Give back a slot already in state FREE. Its bit is cleared by the next
 * flush: one atomic AND for up to 16 slots of one bitmap word. Until then
 * the slot is FREE with its bit set, which nobody can allocate; the
 * pending frees are recorded in the process record, so that recovery
 * returns them if this handle dies (docs/protocols.md, "free pool").
 * This is the form for a loop over many slots, which calls
 * tq__slot_release_end() after it: the process record's gauge and the
 * check for a producer waiting for room once for the loop. */
static inline void tq__slot_release_many(tq *t, uint32_t idx)
{
	uint32_t w = idx / 64u;
	uint64_t m;

	/* free_word means something only while free_mask is not 0. */
	if (w != t->free_word) {
		if (t->free_mask)
			tq__slot_flush(t);
		t->free_word = w;
		tq__store_rlx(&t->proc->free_word, w);
	}
	m = t->free_mask | tq__slot_bit(idx);
	t->free_mask = m;
	tq__store(&t->proc->free_mask, m);
	if (++t->free_count >= 16)
		tq__slot_flush(t);
}

/* The end of a loop of tq__slot_release_many(). */
static inline void tq__slot_release_end(tq *t)
{
	tq__slot_gauge(t);
	if (t->free_mask && tq__load_rlx(&t->hdr->space.count))
		tq__slot_flush(t);
}

/* One slot given back: flushed at once while a producer waits for room. */
static inline void tq__slot_release(tq *t, uint32_t idx)
{
	tq__slot_release_many(t, idx);
	tq__slot_release_end(t);
}

int tq__slot_lookup_fail(tq *t, uint64_t id);

/* The slot of task ID id, if that ID is its current one. */
static inline int tq__slot_lookup(tq *t, uint64_t id, uint32_t *idx)
{
	uint32_t i = (uint32_t)id, gen = (uint32_t)(id >> 32);

	if (__builtin_expect(i < t->lay.capacity && gen != 0 && gen != 0xffffffffu &&
			     tq__load(&tq__slot(t, i)->gen) == gen, 1)) {
		*idx = i;
		return 0;
	}
	*idx = TQ__NIL;
	return tq__slot_lookup_fail(t, id);
}
int tq__submit_announced(tq *t, uint32_t q, const void *payload, uint32_t len, uint32_t level,
			 uint32_t type, uint32_t max_attempts, uint64_t submitted_ns,
			 uint64_t *announce, uint64_t *id);

/* schedule.c */
bool tq__sched_pending(tq *t, uint64_t id);
int tq__sched_run(tq *t);
int tq__sched_restore(tq *t, const struct tq__jsched *js, const uint8_t *payload);
void tq__jnl_sched(tq *t, uint32_t i, bool removed);

/* journal.c: whether this segment keeps a journal (fixed at creation). */
static inline bool tq__jnl_on(tq *t) { return t->jon; }

/* queue.c */
int tq__queue_check_fail(tq *t, int q);

/* 0 if q names a declared queue, else -ENOENT with the reason. */
static inline int tq__queue_check(tq *t, int q)
{
	if (__builtin_expect((uint32_t)q < t->lay.queues &&
			     tq__load(&tq__queue(t, (uint32_t)q)->state) == TQ__Q_ACTIVE, 1))
		return 0;
	return tq__queue_check_fail(t, q);
}
void tq__queue_config_of(tq *t, uint32_t q, struct tq_queue_config *qc);
int tq__queue_restore(tq *t, uint32_t q, const char *name, const struct tq_queue_config *qc,
		      bool paused);

/* stats.c */
static inline struct tq__counters *tq__ctr(tq *t, uint32_t q, uint32_t lv, uint32_t stripe)
{
	return t->ctrs + ((uint64_t)(q * t->lay.levels + lv) * TQ__STRIPES + stripe);
}
static inline struct tq__hist *tq__hist(tq *t, uint32_t q, uint32_t lv, unsigned kind)
{
	return t->hists + ((uint64_t)(q * t->lay.levels + lv) * 2 + kind);
}
static inline void tq__hist_put(struct tq__hist *h, uint64_t ns)
{
	tq__add_rlx(&h->b[tq__hist_bucket(ns)], 1);
	tq__add_rlx(&h->sum, ns);
}
static inline void tq__hist_add(tq *t, uint32_t q, uint32_t lv, unsigned kind, uint64_t ns)
{
	tq__hist_put(tq__hist(t, q, lv, kind), ns);
}
static inline void tq__count(tq *t, uint32_t q, uint32_t lv, enum tq__ctr c, uint64_t n)
{
	tq__add_rlx(&tq__ctr(t, q, lv, t->stripe)->c[c], n);
}

/* delay.c: the delay wheel. */
int tq__delay_push(tq *t, uint32_t idx, uint64_t due_ns);
void tq__delay_promote(tq *t);
int64_t tq__delay_next_ns(tq *t);

/* finish.c helpers used by inspect.c */
int tq__publish_ready(tq *t, uint32_t idx, uint32_t q, uint32_t lv);
void tq__queue_leave_counted(tq *t, uint32_t q, uint32_t n);

/* n tasks leave queue q for good (acked, dead-lettered, cancelled): the
 * queue counts them if it has a max_length. */
static inline void tq__queue_leave_n(tq *t, uint32_t q, uint32_t n)
{
	if (tq__load_rlx(&tq__queue(t, q)->max_length))
		tq__queue_leave_counted(t, q, n);
}

static inline void tq__queue_leave(tq *t, uint32_t q)
{
	tq__queue_leave_n(t, q, 1);
}

#endif /* TQ_HANDLE_H */

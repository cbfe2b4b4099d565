/* SPDX-License-Identifier: MIT */
/*
 * ring.h - PRIVATE: the common cases of pushing to and popping from a ring
 * (ring.c explains the protocol), in line, because they are on the hot
 * path of every task. Anything unusual goes to the careful loops of ring.c.
 */
#ifndef TQ_RING_H
#define TQ_RING_H

#include "handle.h"

#define TQ__POP_AHEAD 8u      /* tq__ring_pop() prefetches this far ahead */

/* Cells and chunk heads hold pairs (generation:32 | index:32). */
static inline uint32_t tq__pair_gen(uint64_t x) { return (uint32_t)(x >> 32); }
static inline uint32_t tq__pair_low(uint64_t x) { return (uint32_t)x; }
static inline uint64_t tq__pair(uint32_t g, uint32_t i) { return ((uint64_t)g << 32) | i; }

/* Start fetching the slot TQ__POP_AHEAD cells past cell `at` of a chunk
 * (generation g, cells[]): behind a deep queue the next slots were written
 * long ago and sit in memory, not in a cache, and their claims would wait
 * for them. */
static inline void tq__ring_prefetch_ahead(tq *t, const uint64_t *cells, uint64_t at, uint32_t g)
{
	if (at + TQ__POP_AHEAD < TQ__CHUNK_CELLS) {
		uint64_t ahead = tq__load_rlx(&cells[at + TQ__POP_AHEAD]);

		if (tq__pair_gen(ahead) == g && tq__pair_low(ahead) - 1 < t->lay.capacity)
			tq__slot_prefetch(t, tq__pair_low(ahead) - 1);
	}
}

int tq__ring_push_slow(tq *t, uint32_t r, uint32_t idx, unsigned kind, uint64_t prev);
int tq__ring_pop_slow(tq *t, uint32_t r, unsigned kind, uint64_t new_state, int hi,
		      uint32_t *out);
unsigned tq__ring_push_many(tq *t, uint32_t r, const uint32_t *idx, unsigned n, unsigned kind);
int tq__ring_pop_many(tq *t, uint32_t r, unsigned kind, uint64_t new_state, uint32_t *out,
		      int *hi, unsigned max);

/*
 * Publish slot idx at the tail of ring r as (kind @ r, position). The
 * common case: the tail chunk is current and has room, and the cell at wpos
 * is empty. Everything else (a full chunk, a lagging tail, a lost race, a
 * corrupt index) goes the careful way, tq__ring_push_slow().
 */
static inline __attribute__((always_inline)) int
tq__ring_push(tq *t, uint32_t r, uint32_t idx, unsigned kind)
{
	struct tq__ring *rg = tq__ring(t, r);
	struct tq__slot *s = tq__slot(t, idx);
	uint64_t prev = tq__load(&s->state);
	uint64_t w = tq__load(&rg->wpos), tl = tq__load(&rg->tail), want, *cell;
	uint32_t c = tq__pair_low(tl), g = tq__pair_gen(tl);
	struct tq__chunk *ch;
	uint64_t base;

	if (__builtin_expect(c >= t->lay.nchunks, 0))
		return tq__ring_push_slow(t, r, idx, kind, prev);
	ch = tq__chunk(t, c);
	/* gen_next of a current tail chunk is (g, NIL); its base then says
	 * whether wpos falls in it. */
	if (__builtin_expect(tq__load(&ch->gen_next) != tq__pair(g, TQ__NIL), 0))
		return tq__ring_push_slow(t, r, idx, kind, prev);
	base = tq__load(&ch->base);
	if (__builtin_expect(w - base >= TQ__CHUNK_CELLS, 0))   /* also w < base: wraps */
		return tq__ring_push_slow(t, r, idx, kind, prev);
	cell = &tq__cells(t, c)[w - base];
	want = tq__st_at(kind, r, w);
	if (__builtin_expect(tq__load(cell) != tq__pair(g, 0), 0))
		return tq__ring_push_slow(t, r, idx, kind, prev);
	/* The state moves by CAS, never by a store (ring.c says why). */
	if (prev != want) {
		if (__builtin_expect(!tq__cas64(&s->state, prev, want), 0))
			return 0;
		prev = want;
	}
	if (__builtin_expect(!tq__cas64(cell, tq__pair(g, 0), tq__pair(g, idx + 1)), 0))
		return tq__ring_push_slow(t, r, idx, kind, prev);
	tq__cas64(&rg->wpos, w, w + 1);
	return 0;
}

/*
 * Claim the entry at the head of ring r: its slot moves from (kind @ r,
 * rpos) to new_state by CAS, after held entry hi (if >= 0) names it. The
 * common cases: the head chunk is current, and the cell at rpos is empty
 * (-EAGAIN) or holds a live entry that the CAS takes. Everything else (the
 * end of a chunk, a stale entry, a lost race) goes to tq__ring_pop_slow().
 */
static inline int tq__ring_pop(tq *t, uint32_t r, unsigned kind, uint64_t new_state, int hi,
			       uint32_t *out)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint64_t rp = tq__load(&rg->rpos), hd = tq__load(&rg->head), base, v, expect, *cells;
	uint32_t c = tq__pair_low(hd), g = tq__pair_gen(hd), idx;
	struct tq__chunk *ch;
	struct tq__slot *s;

	if (__builtin_expect(c >= t->lay.nchunks, 0))
		return tq__ring_pop_slow(t, r, kind, new_state, hi, out);
	ch = tq__chunk(t, c);
	if (__builtin_expect(tq__pair_gen(tq__load(&ch->gen_next)) != g, 0))
		return tq__ring_pop_slow(t, r, kind, new_state, hi, out);
	base = tq__load(&ch->base);
	if (__builtin_expect(rp - base >= TQ__CHUNK_CELLS, 0))  /* also rp < base: wraps */
		return tq__ring_pop_slow(t, r, kind, new_state, hi, out);
	cells = tq__cells(t, c);
	v = tq__load(&cells[rp - base]);
	if (v == tq__pair(g, 0))
		return -EAGAIN;                 /* nothing published at rpos */
	idx = tq__pair_low(v) - 1;
	if (__builtin_expect(tq__pair_gen(v) != g || idx >= t->lay.capacity, 0))
		return tq__ring_pop_slow(t, r, kind, new_state, hi, out);
	s = tq__slot(t, idx);
	expect = tq__st_at(kind, r, rp);
	if (__builtin_expect(tq__load(&s->state) != expect, 0))
		return tq__ring_pop_slow(t, r, kind, new_state, hi, out);
	if (hi >= 0)
		tq__held_set(t, hi, tq__held(TQ__H_SLOT, idx));
	if (__builtin_expect(!tq__cas64(&s->state, expect, new_state), 0))
		return tq__ring_pop_slow(t, r, kind, new_state, hi, out);
	tq__cas64(&rg->rpos, rp, rp + 1);
	*out = idx;
	tq__ring_prefetch_ahead(t, cells, rp - base, g);
	return 0;
}

#endif /* TQ_RING_H */

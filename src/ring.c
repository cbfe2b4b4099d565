/* SPDX-License-Identifier: MIT */
/*
 * ring.c - the queue that carries slot indices: an unbounded lock-free FIFO
 * made of 512-cell chunks taken from a shared chunk pool, safe against a
 * process dying at any instruction.
 *
 * Why not ck_ring or a Vyukov queue: both have a window in which a dead
 * producer wedges every consumer (see ../shared/DESIGN-NOTES.md, 1). Here
 * every step is one CAS that either happened or did not, and every step
 * after the commit point can be finished by anybody ("helping", as in
 * iceoryx's index queue):
 *
 *   push:  the pusher owns the slot; it writes the slot's state word
 *          (kind @ ring, position), then CASes the empty cell at wpos to
 *          hold the slot (the commit point), then CASes wpos forward. Any
 *          pusher that finds the cell at wpos already full advances wpos.
 *   pop:   the popper reads the cell at rpos, then CASes the *slot's* state
 *          from (kind @ ring, rpos) to its new owner (the commit point,
 *          so ownership is written before the task leaves the queue), then
 *          CASes rpos forward. Any popper that finds the slot at rpos no
 *          longer in that exact state (claimed, cancelled, moved) advances
 *          rpos.
 *
 * Chunks: a cell is (chunk gen:32 | slot index + 1:32), empty when the low
 * half is 0. A chunk's generation changes when it is freed, so a process
 * that stalls holding a stale chunk index fails its CAS instead of writing
 * into a recycled chunk. A pusher that finds wpos past the tail chunk links
 * a fresh chunk with one CAS on the tail's next field; the popper that
 * moves head past a fully consumed chunk frees it.
 *
 * Every index read from the segment is checked; every loop is bounded and
 * ends in -EAGAIN (nothing done) or -EPROTO (corruption).
 */
#include "ring.h"

#define GEN(x)     tq__pair_gen(x)
#define LOW(x)     tq__pair_low(x)
#define PAIR(g, i) tq__pair((g), (i))
#define TRIES      (1 << 16)

static int chunk_alloc(tq *t, uint64_t base, uint32_t *out, int *out_hi)
{
	for (int tries = 0; tries < 64; tries++) {
		struct tq__chunk *ch;
		uint64_t *cells;
		uint32_t c, g;
		int hi;

		if (!tq__pool_take(tq__chunk_bits(t), t->lay.nchunks, &t->chunk_cursor, 1, &c))
			return -EAGAIN;
		hi = tq__held_add(t, tq__held(TQ__H_CHUNK, c));
		if (hi < 0) {
			tq__pool_give(tq__chunk_bits(t), c);
			return hi;
		}
		ch = tq__chunk(t, c);
		if (!tq__cas64(&ch->owner, 0, t->token)) {
			/* Bitmap and owner disagree: leave it to the sweep. */
			tq__held_del(t, hi);
			continue;
		}
		g = GEN(tq__load(&ch->gen_next));
		tq__store(&ch->gen_next, PAIR(g, TQ__NIL));
		tq__store(&ch->base, base);
		cells = tq__cells(t, c);
		/* 512 stores, one per pushed task: unrolled, the loop costs
		 * less than the stores. */
#pragma GCC unroll 8
		for (uint32_t i = 0; i < TQ__CHUNK_CELLS; i++)
			tq__store_rlx(&cells[i], PAIR(g, 0));
		*out = c;
		*out_hi = hi;
		return 0;
	}
	return -EAGAIN;
}

/* Free a chunk this handle owns or just unlinked from a ring's head. */
static void chunk_free(tq *t, uint32_t c)
{
	struct tq__chunk *ch = tq__chunk(t, c);
	uint32_t g = GEN(tq__load(&ch->gen_next));

	tq__store(&ch->gen_next, PAIR(g + 1, TQ__NIL));
	tq__store(&ch->owner, 0);
	tq__pool_give(tq__chunk_bits(t), c);
}

int tq__ring_init(tq *t, uint32_t r)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint32_t c;
	int hi, e;

	e = chunk_alloc(t, 0, &c, &hi);
	if (e < 0)
		return e;
	tq__store(&tq__chunk(t, c)->ring, r);
	tq__store(&rg->rpos, 0);
	tq__store(&rg->wpos, 0);
	tq__store(&rg->head, PAIR(GEN(tq__load(&tq__chunk(t, c)->gen_next)), c));
	tq__store(&rg->tail, tq__load(&rg->head));
	tq__store(&tq__chunk(t, c)->owner, TQ__CHUNK_LINKED | r);
	tq__held_del(t, hi);
	return 0;
}

/* Read chunk c's header as of generation g; false if c is not (or no
 * longer) that incarnation. */
static bool chunk_read(tq *t, uint32_t c, uint32_t g, uint64_t *gen_next, uint64_t *base)
{
	struct tq__chunk *ch = tq__chunk(t, c);

	/* One read of the generation is enough: a base read from a later
	 * incarnation can only lead to a cell of the wrong generation (a
	 * failed CAS) or to a slot whose state does not match (I3), and head
	 * and tail moves are CASes on the (gen, chunk) pair that was read. */
	*gen_next = tq__load(&ch->gen_next);
	if (GEN(*gen_next) != g)
		return false;
	*base = tq__load(&ch->base);
	return true;
}

/* The pair for chunk `next` that chunk c (generation g) links to, checked
 * against c still being alive so that next was alive when read. */
static bool next_pair(tq *t, uint32_t c, uint32_t g, uint32_t next, uint64_t *pair)
{
	uint32_t ng = GEN(tq__load(&tq__chunk(t, next)->gen_next));

	if (GEN(tq__load(&tq__chunk(t, c)->gen_next)) != g)
		return false;
	*pair = PAIR(ng, next);
	return true;
}

/* Set the bit of every chunk reachable from ring r's head (tq_sweep()). */
void tq__ring_mark_chunks(tq *t, uint32_t r, uint64_t *bits)
{
	uint64_t hd = tq__load(&tq__ring(t, r)->head);
	uint32_t c = LOW(hd), g = GEN(hd);

	for (uint32_t steps = 0; steps < t->lay.nchunks && c < t->lay.nchunks; steps++) {
		uint64_t gn = tq__load(&tq__chunk(t, c)->gen_next);

		if (GEN(gn) != g)
			return;
		bits[c / 64] |= 1ull << (c % 64);
		c = LOW(gn);
		if (c >= t->lay.nchunks)
			return;
		g = GEN(tq__load(&tq__chunk(t, c)->gen_next));
	}
}

/* tq__ring_push() (ring.h) when the common case does not hold. */
int tq__ring_push_slow(tq *t, uint32_t r, uint32_t idx, unsigned kind, uint64_t prev)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint32_t nchunks = t->lay.nchunks;

	for (int tries = 0; tries < TRIES; tries++) {
		uint64_t w = tq__load(&rg->wpos);
		uint64_t tl = tq__load(&rg->tail);
		uint32_t c = LOW(tl), g = GEN(tl), next;
		uint64_t gn, base, v, pair, *cell;

		if (c >= nchunks)
			return tq__fail(t, -EPROTO, "ring %u: tail chunk %u out of range", r, c);
		if (!chunk_read(t, c, g, &gn, &base)) {
			/* The tail lagged behind a head that freed its chunk. */
			uint64_t hd = tq__load(&rg->head), hgn, hbase;

			if (LOW(hd) >= nchunks)
				return tq__fail(t, -EPROTO, "ring %u: head chunk out of range", r);
			if (!chunk_read(t, LOW(hd), GEN(hd), &hgn, &hbase) &&
			    tq__load(&rg->head) == hd)
				return tq__fail(t, -EPROTO, "ring %u: head names a freed chunk", r);
			tq__cas64(&rg->tail, tl, hd);
			continue;
		}
		if (w < base)
			continue;
		if (w - base >= TQ__CHUNK_CELLS) {
			next = LOW(gn);
			if (next == TQ__NIL) {
				uint32_t nc;
				int hi, e;

				if (w - base != TQ__CHUNK_CELLS)
					continue;
				e = chunk_alloc(t, base + TQ__CHUNK_CELLS, &nc, &hi);
				if (e < 0)
					return e;
				tq__store(&tq__chunk(t, nc)->ring, r);
				pair = PAIR(GEN(tq__load(&tq__chunk(t, nc)->gen_next)), nc);
				/* Marked linked before it can be reached: a chunk
				 * that is in a ring never carries a token, so only the
				 * consumer that moves the head past it frees it, never
				 * recovery too. A linker dying right here leaves a
				 * linked, unreachable chunk: tq_sweep() frees it. */
				tq__store(&tq__chunk(t, nc)->owner, TQ__CHUNK_LINKED | r);
				if (tq__cas64(&tq__chunk(t, c)->gen_next, PAIR(g, TQ__NIL), PAIR(g, nc))) {
					tq__held_del(t, hi);
					tq__cas64(&rg->tail, tl, pair);
				} else {
					chunk_free(t, nc);
					tq__held_del(t, hi);
				}
				continue;
			}
			if (next >= nchunks)
				return tq__fail(t, -EPROTO, "ring %u: next chunk %u out of range", r, next);
			if (next_pair(t, c, g, next, &pair))
				tq__cas64(&rg->tail, tl, pair);
			continue;
		}
		cell = &tq__cells(t, c)[w - base];
		v = tq__load(cell);
		if (v == PAIR(g, 0)) {
			uint64_t want = tq__st_at(kind, r, w);

			/* The state goes from what we hold to "at (r, w)" by CAS,
			 * never by a store: if recovery took the slot meanwhile
			 * (it read our "at (r, w)" before the cell was set, as a
			 * dead publisher would leave it), the task is its to
			 * publish, and it may already have been leased and
			 * finished: a store would bring it back. */
			if (prev != want) {
				if (!tq__cas64(&tq__slot(t, idx)->state, prev, want))
					return 0;
				prev = want;
			}
			if (tq__cas64(cell, PAIR(g, 0), PAIR(g, idx + 1))) {
				tq__cas64(&rg->wpos, w, w + 1);
				return 0;
			}
			continue;
		}
		if (GEN(v) == g)
			tq__cas64(&rg->wpos, w, w + 1);    /* a pusher died or is slow: help */
	}
	return tq__fail(t, -EAGAIN, "ring %u: push did not settle", r);
}

/* Whether the cell at rpos holds something. Consumers never read wpos,
 * which stays in the producers' caches: the cell says the same (a cell is
 * full exactly when something was published at its position). Anything
 * unclear says "maybe" and lets tq__ring_pop() sort it out. */
bool tq__ring_maybe_ready(tq *t, uint32_t r)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint64_t rp = tq__load(&rg->rpos), hd = tq__load(&rg->head), gn, base, v;
	uint32_t c = LOW(hd), g = GEN(hd);

	if (c >= t->lay.nchunks || !chunk_read(t, c, g, &gn, &base) || rp < base)
		return true;
	if (rp - base >= TQ__CHUNK_CELLS)
		return LOW(gn) != TQ__NIL;
	v = tq__load(&tq__cells(t, c)[rp - base]);
	return GEN(v) != g || LOW(v) != 0;
}

uint64_t tq__ring_wpos(tq *t, uint32_t r)
{
	return tq__load(&tq__ring(t, r)->wpos);
}

uint64_t tq__ring_len(tq *t, uint32_t r)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint64_t rp = tq__load(&rg->rpos), wp = tq__load(&rg->wpos);

	return wp > rp ? wp - rp : 0;
}

/* tq__ring_pop() (ring.h) when the common case does not hold. */
int tq__ring_pop_slow(tq *t, uint32_t r, unsigned kind, uint64_t new_state, int hi,
		      uint32_t *out)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint32_t nchunks = t->lay.nchunks;

	for (int tries = 0; tries < TRIES; tries++) {
		uint64_t rp = tq__load(&rg->rpos);
		uint64_t hd, gn, base, v, st, expect, pair;
		uint32_t c, g, next, idx;
		struct tq__slot *s;

		hd = tq__load(&rg->head);
		c = LOW(hd);
		g = GEN(hd);
		if (c >= nchunks)
			return tq__fail(t, -EPROTO, "ring %u: head chunk %u out of range", r, c);
		if (!chunk_read(t, c, g, &gn, &base)) {
			/* A head chunk is freed only after head moved off it. */
			if (tq__load(&rg->head) == hd)
				return tq__fail(t, -EPROTO, "ring %u: head names a freed chunk", r);
			continue;
		}
		if (rp < base)
			continue;
		if (rp - base >= TQ__CHUNK_CELLS) {
			next = LOW(gn);
			if (next == TQ__NIL)
				return -EAGAIN;     /* consumed to the end: empty */
			if (next >= nchunks)
				return tq__fail(t, -EPROTO, "ring %u: next chunk %u out of range", r, next);
			if (next_pair(t, c, g, next, &pair) && tq__cas64(&rg->head, hd, pair))
				chunk_free(t, c);
			continue;
		}
		v = tq__load(&tq__cells(t, c)[rp - base]);
		if (GEN(v) != g)
			continue;
		if (LOW(v) == 0)
			return -EAGAIN;             /* nothing published at rpos */
		idx = LOW(v) - 1;
		if (idx >= t->lay.capacity)
			return tq__fail(t, -EPROTO, "ring %u: cell holds slot %u out of range", r, idx);
		s = tq__slot(t, idx);
		expect = tq__st_at(kind, r, rp);
		st = tq__load(&s->state);
		if (st == expect) {
			if (hi >= 0)
				tq__held_set(t, hi, tq__held(TQ__H_SLOT, idx));
			if (tq__cas64(&s->state, expect, new_state)) {
				tq__cas64(&rg->rpos, rp, rp + 1);
				*out = idx;
				return 0;
			}
			continue;
		}
		/* Claimed by someone else, cancelled or moved: skip it. */
		tq__cas64(&rg->rpos, rp, rp + 1);
	}
	return -EAGAIN;
}

/* Move position word *pos from `from` to `to` (> from), or as far as others
 * have not moved it already: every cell in between was committed by the
 * caller, so any step over them is a step the protocol allows (the same
 * step a helper makes over a full cell at wpos, or a claimed one at rpos). */
static void advance_to(uint64_t *pos, uint64_t from, uint64_t to)
{
	uint64_t cur = from;

	while (cur < to && !__atomic_compare_exchange_n(pos, &cur, to, false, __ATOMIC_SEQ_CST,
							 __ATOMIC_SEQ_CST))
		;
}

/*
 * Publish the slots idx[0..n) at the tail of ring r, in order, as one run
 * of cells of the tail chunk: the tail, its chunk and wpos are read once,
 * each task is still its own state CAS and cell CAS (the commit), and wpos
 * moves once at the end (others help it over full cells meanwhile, as
 * over any slow pusher's). Stops at the end of the chunk, at a cell taken
 * by another pusher, or at anything unusual. Returns how many leading
 * slots it published; the caller pushes the rest one by one, which sorts
 * out whatever stopped this (a slot whose state was no longer its pusher's
 * counts as published, as tq__ring_push() reports it).
 */
unsigned tq__ring_push_many(tq *t, uint32_t r, const uint32_t *idx, unsigned n, unsigned kind)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint64_t w = tq__load(&rg->wpos), tl = tq__load(&rg->tail), gn, base, *cells;
	uint32_t c = LOW(tl), g = GEN(tl);
	struct tq__slot *slots = t->slots;
	unsigned k = 0, done = 0;

	/* The tail chunk, current (no next yet), with wpos in it. */
	if (c >= t->lay.nchunks || !chunk_read(t, c, g, &gn, &base) || LOW(gn) != TQ__NIL ||
	    w - base >= TQ__CHUNK_CELLS)
		return 0;
	if (n > TQ__CHUNK_CELLS - (w - base))
		n = (unsigned)(TQ__CHUNK_CELLS - (w - base));
	/* The state word of position w + k is that of w, plus k, unless the
	 * 44-bit position wraps within the run (the one-by-one path then). */
	if ((w & TQ__POS_MASK) + n > TQ__POS_MASK)
		return 0;
	cells = tq__cells(t, c) + (w - base);
	for (const uint64_t want0 = tq__st_at(kind, r, w); k < n; k++) {
		struct tq__slot *s = &slots[idx[k]];
		uint64_t prev = tq__load(&s->state), want = want0 + k;

		if (tq__load(&cells[k]) != PAIR(g, 0))
			break;
		/* As in tq__ring_push(): the state moves by CAS, and a slot
		 * that recovery took meanwhile is its to publish (done). */
		if (prev != want && !tq__cas64(&s->state, prev, want)) {
			done = 1;
			break;
		}
		if (!tq__cas64(&cells[k], PAIR(g, 0), PAIR(g, idx[k] + 1)))
			break;     /* its state says (r, w + k): the next push moves it */
	}
	if (k)
		advance_to(&rg->wpos, w, w + k);
	return k + done;
}

/*
 * Claim up to max entries from the head of ring r, in order, as one run of
 * cells of the head chunk: rpos, the head and its chunk are read once, each
 * entry is still named by a held entry of its own (reserved here, its index
 * in hi[]) before its own state CAS (the commit), and rpos moves once at
 * the end (others help it over claimed cells meanwhile, as over any slow
 * popper's). Stops at an empty cell, a stale entry, the end of the chunk,
 * or anything unusual, never passing a live entry. Returns how many it
 * claimed, or -EAGAIN when the cell at rpos is empty (nothing is there);
 * after 0 the caller goes on one by one with tq__ring_pop().
 */
int tq__ring_pop_many(tq *t, uint32_t r, unsigned kind, uint64_t new_state, uint32_t *out,
			   int *hi, unsigned max)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint64_t rp = tq__load(&rg->rpos), hd = tq__load(&rg->head), gn, base, *cells;
	uint32_t c = LOW(hd), g = GEN(hd), cap = t->lay.capacity;
	struct tq__slot *slots = t->slots;
	unsigned k = 0;

	/* The head chunk, current, with rpos in it. */
	if (c >= t->lay.nchunks || !chunk_read(t, c, g, &gn, &base) || rp - base >= TQ__CHUNK_CELLS)
		return 0;
	if (max > TQ__CHUNK_CELLS - (rp - base))
		max = (unsigned)(TQ__CHUNK_CELLS - (rp - base));
	if (max > t->nheld_free)
		max = t->nheld_free;
	if ((rp & TQ__POS_MASK) + max > TQ__POS_MASK)
		return 0;                  /* as in tq__ring_push_many() */
	cells = tq__cells(t, c) + (rp - base);
	for (const uint64_t expect0 = tq__st_at(kind, r, rp); k < max; k++) {
		uint64_t v = tq__load(&cells[k]), expect = expect0 + k;
		uint32_t idx = LOW(v) - 1;
		struct tq__slot *s;
		int h;

		if (GEN(v) != g || idx >= cap) {
			if (!k && v == PAIR(g, 0))
				return -EAGAIN;
			break;     /* empty (LOW 0 wraps past cap), or not this chunk's */
		}
		s = &slots[idx];
		if (tq__load(&s->state) != expect)
			break;
		h = tq__held_add_known(t, tq__held_slot(idx));   /* max <= nheld_free, idx < cap */
		if (!tq__cas64(&s->state, expect, new_state)) {
			tq__held_del(t, h);
			break;
		}
		out[k] = idx;
		hi[k] = h;
	}
	if (k) {
		advance_to(&rg->rpos, rp, rp + k);
		tq__ring_prefetch_ahead(t, cells - (rp - base), rp - base + k, g);
	}
	return (int)k;
}

/* Advance rpos over stale cells at the head of ring r: cells whose slot is
 * no longer in the state (kind @ r, position) they published. Stops at the
 * first live entry, an empty cell, or after max cells. Used on rings nobody
 * pops (the dead letters), whose entries leave by CAS on their slots, so
 * that their chunks go back to the pool. Returns the cells skipped. */
unsigned tq__ring_skip_stale(tq *t, uint32_t r, unsigned kind, unsigned max)
{
	struct tq__ring *rg = tq__ring(t, r);
	unsigned skipped = 0;

	for (unsigned tries = 0; skipped < max && tries < 4 * max + 16; tries++) {
		uint64_t rp = tq__load(&rg->rpos), hd = tq__load(&rg->head), gn, base, v, pair;
		uint32_t c = LOW(hd), g = GEN(hd), next, idx;

		if (c >= t->lay.nchunks || !chunk_read(t, c, g, &gn, &base) || rp < base)
			return skipped;
		if (rp - base >= TQ__CHUNK_CELLS) {
			next = LOW(gn);
			if (next == TQ__NIL || next >= t->lay.nchunks)
				return skipped;
			if (next_pair(t, c, g, next, &pair) && tq__cas64(&rg->head, hd, pair))
				chunk_free(t, c);
			continue;
		}
		v = tq__load(&tq__cells(t, c)[rp - base]);
		if (GEN(v) != g || LOW(v) == 0)
			return skipped;
		idx = LOW(v) - 1;
		if (idx >= t->lay.capacity ||
		    tq__load(&tq__slot(t, idx)->state) == tq__st_at(kind, r, rp))
			return skipped;        /* live: it pins the head */
		if (tq__cas64(&rg->rpos, rp, rp + 1))
			skipped++;
	}
	return skipped;
}

/* The slot at the head of ring r if it is a live (kind @ r, rpos) entry. */
bool tq__ring_head_live(tq *t, uint32_t r, unsigned kind, uint32_t *idx, uint64_t *st)
{
	struct tq__ring *rg = tq__ring(t, r);
	uint64_t rp = tq__load(&rg->rpos), hd = tq__load(&rg->head), gn, base, v;
	uint32_t c = LOW(hd), g = GEN(hd);

	if (c >= t->lay.nchunks || !chunk_read(t, c, g, &gn, &base) || rp < base ||
	    rp - base >= TQ__CHUNK_CELLS)
		return false;
	v = tq__load(&tq__cells(t, c)[rp - base]);
	if (GEN(v) != g || LOW(v) == 0 || LOW(v) - 1 >= t->lay.capacity)
		return false;
	*idx = LOW(v) - 1;
	*st = tq__load(&tq__slot(t, *idx)->state);
	return *st == tq__st_at(kind, r, rp);
}

/* Live (kind @ r, position) entries of ring r from position *from on, up
 * to max, as task IDs; *from is set past the last position looked at.
 * Concurrent changes may make an entry show or not; none shows twice in
 * one call, and the walk restarts from the head when a chunk moves. */
unsigned tq__ring_list(tq *t, uint32_t r, unsigned kind, uint64_t *from, uint64_t *ids,
		       unsigned max)
{
	struct tq__ring *rg = tq__ring(t, r);
	unsigned n = 0;

	for (int restarts = 0; restarts < 64 && n < max; restarts++) {
		uint64_t hd = tq__load(&rg->head), wp = tq__load(&rg->wpos), gn, base;
		uint32_t c = LOW(hd), g = GEN(hd);
		bool moved = false;

		if (*from < tq__load(&rg->rpos))
			*from = tq__load(&rg->rpos);
		for (uint32_t steps = 0; steps < t->lay.nchunks && n < max && *from < wp; steps++) {
			if (c >= t->lay.nchunks || !chunk_read(t, c, g, &gn, &base)) {
				moved = true;
				break;
			}
			if (*from < base) {
				moved = true;
				break;
			}
			for (; *from - base < TQ__CHUNK_CELLS && *from < wp && n < max; (*from)++) {
				uint64_t v = tq__load(&tq__cells(t, c)[*from - base]);
				uint32_t idx;
				struct tq__slot *s;

				if (GEN(v) != g) {
					moved = true;
					break;
				}
				if (LOW(v) == 0 || LOW(v) - 1 >= t->lay.capacity)
					continue;
				idx = LOW(v) - 1;
				s = tq__slot(t, idx);
				if (tq__load(&s->state) == tq__st_at(kind, r, *from))
					ids[n++] = ((uint64_t)tq__load(&s->gen) << 32) | idx;
			}
			if (moved || *from - base < TQ__CHUNK_CELLS)
				break;
			c = LOW(gn);
			if (c == TQ__NIL || c >= t->lay.nchunks)
				break;
			g = GEN(tq__load(&tq__chunk(t, c)->gen_next));
		}
		if (!moved)
			break;
	}
	return n;
}

/* SPDX-License-Identifier: MIT */
/*
 * recover.c - giving back what dead handles left behind, and taking back
 * leases that expired: tq_recover(), the supervisor's repair pass.
 *
 * A handle is dead when its process is gone (or was reused: PID and start
 * time), or when it detached while still holding tasks. Its record is
 * claimed for recovery with one CAS on its recoverer word, so two
 * recoverers never work on one record and a recoverer that dies is taken
 * over by the next; the owner word keeps the dead token until the end. Everything the dead handle could have held is on
 * its held list (I2); each entry is finished according to the state its
 * slot or chunk is in, by CAS from exactly that state, which makes every
 * step safe to repeat. docs/protocols.md, "Recovery", has the table.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"

#define PUBLISHED_WALK_MAX 1000000u

/* Whether cell `pos` of ring r holds slot idx (a push that got as far as
 * its commit point). The walk restarts when the head moves under it; when
 * the answer stays unclear it says "published", the answer that moves
 * nothing. A slot that was consumed meanwhile is safe either way: its state
 * changed, so the caller's CAS from the state it read fails. */
static bool ring_holds(tq *t, uint32_t r, uint64_t pos, uint32_t idx)
{
	struct tq__ring *rg = tq__ring(t, r);

	for (int tries = 0; tries < 1000; tries++) {
		uint64_t hd = tq__load(&rg->head), gn, base, v;
		uint32_t c = (uint32_t)hd, g = (uint32_t)(hd >> 32);
		bool moved = false;

		if (pos < tq__load(&rg->rpos))
			return false;  /* passed, yet the slot still says it is there */
		for (uint32_t steps = 0; steps < t->lay.nchunks; steps++) {
			if (c >= t->lay.nchunks)
				return true;
			gn = tq__load(&tq__chunk(t, c)->gen_next);
			if ((uint32_t)(gn >> 32) != g) {
				moved = true;
				break;
			}
			base = tq__load(&tq__chunk(t, c)->base);
			if (pos < base) {
				moved = true;
				break;
			}
			if (pos - base < TQ__CHUNK_CELLS) {
				v = tq__load(&tq__cells(t, c)[pos - base]);
				if ((uint32_t)(v >> 32) != g) {
					moved = true;
					break;
				}
				return v == (((uint64_t)g << 32) | (idx + 1));
			}
			c = (uint32_t)gn;
			if (c == TQ__NIL)
				return false;  /* beyond the tail: never pushed */
			if (c >= t->lay.nchunks)
				return true;
			g = (uint32_t)(tq__load(&tq__chunk(t, c)->gen_next) >> 32);
		}
		if (!moved || tq__load(&rg->head) == hd)
			return true;
	}
	return true;
}

static bool chunk_reachable(tq *t, uint32_t r, uint32_t want)
{
	uint64_t hd = tq__load(&tq__ring(t, r)->head);
	uint32_t c = (uint32_t)hd;

	for (uint32_t steps = 0; steps < t->lay.nchunks && c < t->lay.nchunks; steps++) {
		if (c == want)
			return true;
		c = (uint32_t)tq__load(&tq__chunk(t, c)->gen_next);
	}
	return false;
}

static int slot_place(tq *t, struct tq__slot *s, uint32_t *q, uint32_t *lv)
{
	*q = tq__load_rlx(&s->queue);
	*lv = tq__load_rlx(&s->level);
	return *q < t->lay.queues && *lv < t->lay.levels ? 0 : -EPROTO;
}

/* A slot we hold BUSY that had been leased: the lease ended without a
 * verdict. Back to ready, or to the dead letters after its last attempt. */
static void end_lease(tq *t, uint32_t idx, struct tq_recovery *rep)
{
	struct tq__slot *s = tq__slot(t, idx);
	uint32_t q, lv;

	uint64_t id = (uint64_t)tq__load_rlx(&s->gen) << 32 | idx;
	uint32_t att = tq__load_rlx(&s->attempts);

	if (slot_place(t, s, &q, &lv) < 0)
		return;
	tq__count(t, q, lv, TQ__C_RECOVERED, 1);
	if (att >= tq__load_rlx(&s->max_attempts)) {
		if (tq__ring_push(t, tq__ring_dead(&t->lay, q), idx, TQ__K_DEAD) == 0) {
			tq__count(t, q, lv, TQ__C_DEAD, 1);
			tq__queue_leave(t, q);
			rep->dead++;
			if (tq__jnl_on(t))
				tq__jnl_set(t, id, TQ__JS_DEAD, lv, att, 0);
		}
	} else if (tq__publish_ready(t, idx, q, lv) == 0) {
		rep->requeued++;
		if (tq__jnl_on(t))
			tq__jnl_set(t, id, TQ__JS_READY, lv, att, 0);
	}
}

/* A slot we hold BUSY whose owner died moving it (fail, release, a level
 * change, a requeue, a wheel drain): put it where it was going. */
static void finish_move(tq *t, uint32_t idx, struct tq_recovery *rep)
{
	struct tq__slot *s = tq__slot(t, idx);
	uint32_t q, lv;
	int e;

	if (slot_place(t, s, &q, &lv) < 0)
		return;
	uint64_t due = tq__load_rlx(&s->due_ns);

	if (tq__load_rlx(&s->attempts) == 0 && due != TQ__NO_DUE && due > tq_now_ns()) {
		e = tq__delay_push(t, idx, tq__load_rlx(&s->due_ns));
		if (e == 0) {
			rep->requeued++;
			return;
		}
	}
	if (tq__publish_ready(t, idx, q, lv) == 0)
		rep->requeued++;
}

static void free_slot(tq *t, uint32_t idx, struct tq_recovery *rep)
{
	tq__payload_drop(t, tq__slot(t, idx));
	tq__store(&tq__slot(t, idx)->state, tq__st(TQ__K_FREE, 0));
	tq__slot_release(t, idx);
	tq__slot_flush(t);
	rep->freed++;
}

static void recover_slot(tq *t, uint64_t dead, uint32_t idx, struct tq_recovery *rep)
{
	struct tq__slot *s = tq__slot(t, idx);
	uint64_t st = tq__load(&s->state), busy = t->st_busy;
	unsigned kind = tq__st_kind(st);
	int hi;

	switch (kind) {
	case TQ__K_RESERVED:
		/* A schedule's tick being fired: the supervisor publishes it. */
		if (tq__st_arg(st) == dead &&
		    tq__sched_pending(t, (uint64_t)tq__load(&s->gen) << 32 | idx))
			return;
		__attribute__((fallthrough));
	case TQ__K_LEASED:
	case TQ__K_BUSY:
	case TQ__K_FREEING:
		if (tq__st_arg(st) != dead)
			return;            /* another handle's now */
		break;
	case TQ__K_DONE:
		if (!tq__st_arg(st))
			return;            /* a result kept until forgotten */
		/* A result with a TTL, in (or on its way to) its queue's
		 * results ring: as the published kinds below. */
		__attribute__((fallthrough));
	case TQ__K_READY:
	case TQ__K_DELAYED:
	case TQ__K_DEAD:
		/* Published, or stopped between writing its state and the
		 * cell CAS (P4): then publish it now. */
		if (tq__st_ring(st) >= t->lay.nrings ||
		    ring_holds(t, tq__st_ring(st), st & TQ__POS_MASK, idx))
			return;
		break;
	case TQ__K_FREE:
		/* It died after storing FREE and before its pending free was
		 * recorded: the bit may still be set. FREE means the payload
		 * is gone, so clearing the bit of a FREE slot is always safe
		 * (at worst early, for a slot someone else just freed). */
		if (tq__load(&tq__slot_bits(t)[idx / 64]) & (1ull << (idx % 64))) {
			tq__pool_give(tq__slot_bits(t), idx);
			tq__wake_space(t);
			rep->freed++;
		}
		return;
	default:
		return;                    /* RETIRED: nothing held */
	}
	hi = tq__held_add(t, tq__held(TQ__H_SLOT, idx));
	if (hi < 0)
		return;
	if (!tq__cas64(&s->state, st, kind == TQ__K_RESERVED || kind == TQ__K_FREEING ?
			t->st_freeing : busy)) {
		tq__held_del(t, hi);
		return;
	}
	switch (kind) {
	case TQ__K_RESERVED:           /* a producer's cache or an unfinished submit */
	case TQ__K_FREEING:            /* an unfinished ack, cancel or forget */
		free_slot(t, idx, rep);
		break;
	case TQ__K_LEASED:
		end_lease(t, idx, rep);
		break;
	case TQ__K_DEAD:
	case TQ__K_DONE:
		if (tq__ring_push(t, tq__st_ring(st), idx, kind) == 0)
			rep->requeued++;
		break;
	default:                       /* BUSY, or READY/DELAYED not yet in its ring */
		finish_move(t, idx, rep);
		break;
	}
	tq__held_del(t, hi);
}

static void recover_chunk(tq *t, uint64_t dead, uint32_t c, struct tq_recovery *rep)
{
	struct tq__chunk *ch = tq__chunk(t, c);
	uint64_t r = tq__load(&ch->ring), gn;

	if (tq__load(&ch->owner) != dead)
		return;
	if (r < t->lay.nrings && chunk_reachable(t, (uint32_t)r, c)) {
		tq__cas64(&ch->owner, dead, TQ__CHUNK_LINKED | r);
		return;
	}
	if (!tq__cas64(&ch->owner, dead, t->token))
		return;
	gn = tq__load(&ch->gen_next);
	tq__store(&ch->gen_next, ((gn >> 32) + 1) << 32 | TQ__NIL);
	tq__store(&ch->owner, 0);
	tq__pool_give(tq__chunk_bits(t), c);
	rep->freed++;
}

static void recover_proc(tq *t, uint32_t p, uint64_t dead, struct tq_recovery *rep)
{
	struct tq__proc *rec = tq__proc_at(t, p);
	uint64_t mask;
	uint32_t w;

	for (uint32_t h = 0; h < TQ_HELD_MAX; h++) {
		uint32_t e = tq__load(&rec->held[h]), idx = e & 0x3fffffffu;

		if (!e)
			continue;
		if (e >> 30 == TQ__H_SLOT && idx < t->lay.capacity)
			recover_slot(t, dead, idx, rep);
		else if (e >> 30 == TQ__H_CHUNK && idx < t->lay.nchunks)
			recover_chunk(t, dead, idx, rep);
		tq__store(&rec->held[h], 0);
	}
	/* Its reserved slots: named as held entries are, and finished the
	 * same way (a cached slot is freed, a published one left alone, one
	 * caught between its state and its cell published). */
	mask = tq__load(&rec->res_mask);
	w = tq__load(&rec->res_word);
	if (mask && w < tq__bitmap_words(t->lay.capacity)) {
		for (uint64_t m = mask; m; m &= m - 1) {
			uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(m);
			if (idx < t->lay.capacity)
				recover_slot(t, dead, idx, rep);
		}
	}
	tq__store(&rec->res_mask, 0);
	/* Its freed slots whose bits it had not cleared yet. */
	mask = tq__load(&rec->free_mask);
	w = tq__load(&rec->free_word);
	if (mask && w < tq__bitmap_words(t->lay.capacity)) {
		for (uint64_t m = mask; m; m &= m - 1) {
			uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(m);
			if (idx < t->lay.capacity &&
			    tq__load(&tq__slot(t, idx)->state) == tq__st(TQ__K_FREE, 0))
				tq__pool_give(tq__slot_bits(t), idx);
		}
		tq__store(&rec->free_mask, 0);
		tq__wake_space(t);
	}
	/* Its registrations as a sleeper. */
	for (uint32_t k = 0; k < TQ_QUEUES_MAX / 64; k++) {
		for (uint64_t m = tq__load(&rec->sleeping[k]); m; m &= m - 1) {
			uint32_t q = k * 64 + (uint32_t)__builtin_ctzll(m);
			if (q < t->lay.queues)
				tq__waitq_leave(&tq__queue(t, q)->ready);
		}
		tq__store(&rec->sleeping[k], 0);
	}
	if (tq__load(&rec->space_sleeping)) {
		tq__waitq_leave(&t->hdr->space);
		tq__store(&rec->space_sleeping, 0);
	}
	tq__store(&rec->pid, 0);
	tq__store(&rec->start_time, 0);
	tq__store(&rec->owner, 0);
	tq__store(&rec->recoverer, 0);
	rep->procs++;
}

/* Take back the leases of a live handle that are past their deadline. */
static void expire_leases(tq *t, uint32_t p, uint64_t owner, uint64_t now,
			  struct tq_recovery *rep)
{
	struct tq__proc *rec = tq__proc_at(t, p);
	uint64_t leased = tq__st(TQ__K_LEASED, owner);

	for (uint32_t h = 0; h < TQ_HELD_MAX; h++) {
		uint32_t e = tq__load(&rec->held[h]), idx = e & 0x3fffffffu;
		struct tq__slot *s;
		int hi;

		if (e >> 30 != TQ__H_SLOT || idx >= t->lay.capacity)
			continue;
		s = tq__slot(t, idx);
		/* TQ__NO_DUE: leased a moment ago, deadline not stamped yet. */
		if (tq__load(&s->state) != leased || tq__load(&s->due_ns) >= now)
			continue;
		hi = tq__held_add(t, tq__held(TQ__H_SLOT, idx));
		if (hi < 0)
			return;
		/* The worker's own finishing CAS races with this one: exactly
		 * one wins, and the loser learns -ESTALE. */
		if (tq__cas64(&s->state, leased, t->st_busy)) {
			uint32_t q = tq__load_rlx(&s->queue), lv = tq__load_rlx(&s->level);

			/* The one way a task can run twice: counted per queue. */
			if (q < t->lay.queues && lv < t->lay.levels)
				tq__count(t, q, lv, TQ__C_EXPIRED, 1);
			end_lease(t, idx, rep);
			rep->expired++;
		}
		tq__held_del(t, hi);
	}
}

int tq_recover(tq *t, struct tq_recovery *report)
{
	struct tq_recovery rep;
	uint64_t now;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	memset(&rep, 0, sizeof(rep));
	now = tq_now_ns();
	for (uint32_t p = 0; p < t->lay.procs; p++) {
		struct tq__proc *rec = tq__proc_at(t, p);
		uint64_t ow = tq__load(&rec->owner), owner = ow & TQ__TOKEN_MASK, rcv;

		if (!ow || owner == t->token)
			continue;
		if (tq__token_alive(t, owner)) {
			expire_leases(t, p, owner, now, &rep);
			continue;
		}
		/* Dead: claim it for recovery, or take it over from a dead
		 * recoverer. Its owner word keeps the dead token meanwhile. */
		rcv = tq__load(&rec->recoverer);
		if (rcv && (rcv == t->token || tq__token_alive(t, rcv)))
			continue;
		if (!tq__cas64(&rec->recoverer, rcv, t->token))
			continue;
		if (tq__load(&rec->owner) != ow) {
			tq__store(&rec->recoverer, 0);
			continue;
		}
		recover_proc(t, p, owner, &rep);
	}
	tq__add(&t->hdr->repairs, (uint64_t)rep.procs + rep.requeued + rep.dead + rep.expired +
				  rep.freed);
	if (report)
		*report = rep;
	return (int)(rep.procs + rep.requeued + rep.dead + rep.expired + rep.freed > 0x7fffffff ?
		     0x7fffffff : rep.procs + rep.requeued + rep.dead + rep.expired + rep.freed);
}

int tq_supervisor_acquire(tq *t, int32_t timeout_ms)
{
	int64_t deadline;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	deadline = tq__deadline(timeout_ms);
	for (;;) {
		uint64_t cur = tq__load(&t->hdr->supervisor);

		if (cur == t->token)
			return 0;
		if ((!cur || !tq__token_alive(t, cur)) && tq__cas64(&t->hdr->supervisor, cur, t->token))
			return 0;
		if (deadline >= 0 && (uint64_t)deadline <= tq__mono_ns())
			return tq__fail(t, -EBUSY, "another supervisor (pid %d) is active",
					tq__owner_pid(t, cur));
		usleep(20000);
	}
}

int tq_supervisor_active(tq *t)
{
	return t && tq__load(&t->hdr->supervisor) == t->token;
}

/* Keep a dead-letter ring short: skip the stale cells at its head, and
 * when a long-lived dead letter pins the head while the ring holds much
 * more behind it, move that letter to the tail (claimed by CAS, so a
 * concurrent requeue or forget wins cleanly) so the stale cells behind it
 * and their chunks can go. Dead letters thus never pin storage
 * (beanstalkd #43, #570). */
static void compact_dead(tq *t, uint32_t q)
{
	uint32_t r = tq__ring_dead(&t->lay, q), idx;
	uint64_t st;

	tq__ring_skip_stale(t, r, TQ__K_DEAD, 256);
	for (int moved = 0; moved < 16 && tq__ring_len(t, r) > 2 * TQ__CHUNK_CELLS; moved++) {
		int hi;

		if (!tq__ring_head_live(t, r, TQ__K_DEAD, &idx, &st))
			break;
		hi = tq__held_add(t, tq__held(TQ__H_SLOT, idx));
		if (hi < 0)
			break;
		if (tq__cas64(&tq__slot(t, idx)->state, st, t->st_busy) &&
		    tq__ring_push(t, r, idx, TQ__K_DEAD) < 0) {
			/* No chunk for it: it stays BUSY on our held list, for
			 * recovery; should not happen, the cells it frees come
			 * first. */
			break;
		}
		tq__held_del(t, hi);
		tq__ring_skip_stale(t, r, TQ__K_DEAD, 256);
	}
}

/* Forget results whose TTL has passed, from the head of the queue's
 * results ring (acks come in order and the TTL is the queue's, so the head
 * expires first). */
static void expire_results(tq *t, uint32_t q, uint64_t now)
{
	uint32_t r = tq__ring_done(&t->lay, q), idx;
	uint64_t st;

	tq__ring_skip_stale(t, r, TQ__K_DONE, 256);
	for (int n = 0; n < 256 && tq__ring_head_live(t, r, TQ__K_DONE, &idx, &st); n++) {
		struct tq__slot *s = tq__slot(t, idx);
		int hi;

		if (tq__load_rlx(&s->due_ns) > now)
			break;
		hi = tq__held_add(t, tq__held(TQ__H_SLOT, idx));
		if (hi < 0)
			break;
		if (tq__cas64(&s->state, st, t->st_freeing)) {
			tq__payload_drop(t, s);
			tq__store(&s->state, tq__st(TQ__K_FREE, 0));
			tq__slot_release(t, idx);
			tq__slot_flush(t);
		}
		tq__held_del(t, hi);
		tq__ring_skip_stale(t, r, TQ__K_DONE, 256);
	}
}

int tq_tick(tq *t)
{
	uint64_t now;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (tq__load_rlx(&t->hdr->delayed))
		tq__delay_promote(t);
	now = tq_now_ns();
	for (uint32_t q = 0; q < t->lay.queues; q++) {
		if (tq__load_rlx(&tq__queue(t, q)->state) != TQ__Q_ACTIVE)
			continue;
		if (tq__ring_len(t, tq__ring_dead(&t->lay, q)))
			compact_dead(t, q);
		if (tq__ring_len(t, tq__ring_done(&t->lay, q)))
			expire_results(t, q, now);
	}
	return tq__sched_run(t);
}

/* Slots in live handles' recorded pending frees, not orphans. */
static uint64_t pending_mask(tq *t, uint32_t w)
{
	uint64_t m = 0;

	for (uint32_t p = 0; p < t->lay.procs; p++) {
		struct tq__proc *rec = tq__proc_at(t, p);

		if (tq__load_rlx(&rec->owner) && tq__load_rlx(&rec->free_word) == w)
			m |= tq__load_rlx(&rec->free_mask);
	}
	return m;
}

/* The bits of one bitmap that are set on items whose own word says free,
 * and were so at the previous sweep too (prev[], this handle's memory of
 * it): an allocator between taking bits and claiming items, or a handle
 * between freeing and clearing, holds that state for nanoseconds, an
 * orphan for ever. */
static uint32_t sweep_bits(tq *t, uint64_t *bits, uint32_t n, bool is_slots, uint64_t *prev,
			   const uint64_t *reachable)
{
	uint32_t freed = 0, nwords = (uint32_t)tq__bitmap_words(n);

	for (uint32_t w = 0; w < nwords; w++) {
		uint64_t skip = UINT64_MAX, seen = 0;

		for (uint64_t m = tq__load_rlx(&bits[w]); m; m &= m - 1) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(m);
			bool free_now;

			if (i >= n)
				break;
			if (is_slots) {
				free_now = tq__load(&tq__slot(t, i)->state) == tq__st(TQ__K_FREE, 0);
			} else {
				uint64_t ow = tq__load(&tq__chunk(t, i)->owner);

				/* Free, or linked where no ring reaches it: its
				 * linker died before linking it, or its consumer
				 * before freeing it (ring.c). */
				free_now = ow == 0 || ((ow & TQ__CHUNK_LINKED) &&
						       !(reachable[i / 64] & (1ull << (i % 64))));
				if (free_now && ow) {
					if (!(prev[w] & (1ull << (i % 64)))) {
						seen |= 1ull << (i % 64);
						continue;
					}
					if (!tq__cas64(&tq__chunk(t, i)->owner, ow, t->token))
						continue;
					tq__store(&tq__chunk(t, i)->gen_next,
						  (tq__load(&tq__chunk(t, i)->gen_next) + (1ull << 32)) |
						  TQ__NIL);
					tq__store(&tq__chunk(t, i)->owner, 0);
					tq__pool_give(bits, i);
					freed++;
					continue;
				}
			}
			if (free_now && is_slots) {
				if (skip == UINT64_MAX)
					skip = pending_mask(t, w);
				free_now = !(skip & (1ull << (i % 64)));
			}
			if (!free_now)
				continue;
			if (!(prev[w] & (1ull << (i % 64)))) {
				seen |= 1ull << (i % 64);   /* first sighting */
				continue;
			}
			tq__pool_give(bits, i);
			freed++;
		}
		prev[w] = seen;
	}
	return freed;
}

int tq_sweep(tq *t, struct tq_recovery *report)
{
	struct tq_recovery rep;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	memset(&rep, 0, sizeof(rep));
	/* Our own pending frees are FREE with bits set too: give them first
	 * so that they are not counted as repairs. */
	tq__slot_flush(t);
	if (!t->sweep_prev) {
		t->sweep_prev = calloc(tq__bitmap_words(t->lay.capacity) +
				       tq__bitmap_words(t->lay.nchunks), sizeof(uint64_t));
		if (!t->sweep_prev)
			return tq__fail(t, -ENOMEM, "no memory for the sweep");
	}
	uint64_t *reach = calloc(tq__bitmap_words(t->lay.nchunks), sizeof(uint64_t));

	if (!reach)
		return tq__fail(t, -ENOMEM, "no memory for the sweep");
	for (uint32_t r = 0; r < t->lay.nrings; r++)
		tq__ring_mark_chunks(t, r, reach);
	rep.freed = sweep_bits(t, tq__slot_bits(t), t->lay.capacity, true, t->sweep_prev, NULL) +
		    sweep_bits(t, tq__chunk_bits(t), t->lay.nchunks, false,
			       t->sweep_prev + tq__bitmap_words(t->lay.capacity), reach);
	free(reach);
	if (rep.freed) {
		tq__add(&t->hdr->repairs, rep.freed);
		tq__wake_space(t);
	}
	if (report)
		*report = rep;
	return (int)rep.freed;
}

/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - looking at one task by ID and acting on a task that no worker
 * holds: tq_get(), tq_result(), tq_forget(), tq_cancel(), tq_set_level(),
 * tq_requeue_dead().
 *
 * Reads are consistent snapshots without locks: the slot's generation and
 * state are read before and after the fields and the read is retried if
 * either moved. Actions take the slot with one CAS from the exact state
 * (kind @ ring, position) that was read, after naming the slot on the held
 * list, so they race safely with workers leasing the same task: exactly one
 * CAS wins, and the ring skips an entry whose slot has moved on.
 */
#include <string.h>

#include "ring.h"

#define TRIES 1000

/* Read the slot's state for the task id; -ENOENT if the slot has moved on
 * to another task. The generation is checked after the state, and a new
 * task's generation is written before its first state, so a state read
 * here always belongs to task id. */
static int state_of(tq *t, uint64_t id, uint32_t idx, uint64_t *st)
{
	struct tq__slot *s = tq__slot(t, idx);

	*st = tq__load(&s->state);
	if (tq__load(&s->gen) != (uint32_t)(id >> 32) || tq__st_kind(*st) == TQ__K_FREE)
		return tq__fail(t, -ENOENT, "task %llu: finished and gone", (unsigned long long)id);
	return 0;
}

int tq_get(tq *t, uint64_t id, struct tq_info *info)
{
	struct tq_info in;
	struct tq__slot *s;
	uint64_t st = 0, st2;
	uint32_t idx, gen = (uint32_t)(id >> 32);
	int e, tries;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!info)
		return tq__fail(t, -EINVAL, "info is NULL");
	e = tq__slot_lookup(t, id, &idx);
	if (e < 0)
		return e;
	s = tq__slot(t, idx);
	for (tries = 0; tries < TRIES; tries++) {
		e = state_of(t, id, idx, &st);
		if (e < 0)
			return e;
		memset(&in, 0, sizeof(in));
		in.id = id;
		in.queue = tq__load_rlx(&s->queue);
		in.level = tq__load_rlx(&s->level);
		in.type = tq__load_rlx(&s->type);
		in.attempts = tq__load_rlx(&s->attempts);
		in.max_attempts = tq__load_rlx(&s->max_attempts);
		in.len = tq__load_rlx(&s->len);
		in.lease_ms = tq__load_rlx(&s->lease_ms);
		in.submitted_ns = tq__load_rlx(&s->submitted_ns);
		in.due_ns = tq__load_rlx(&s->due_ns);
		if (in.due_ns == TQ__NO_DUE)
			in.due_ns = 0;
		st2 = tq__load(&s->state);
		if (st2 == st && tq__load(&s->gen) == gen)
			break;
	}
	if (tries == TRIES)
		return tq__fail(t, -EAGAIN, "task %llu changed too often to read", (unsigned long long)id);
	switch (tq__st_kind(st)) {
	case TQ__K_READY:    in.state = TQ_STATE_PENDING; break;
	case TQ__K_DELAYED:  in.state = TQ_STATE_DELAYED; break;
	case TQ__K_LEASED:   in.state = TQ_STATE_LEASED; break;
	case TQ__K_DONE:     in.state = TQ_STATE_DONE; break;
	case TQ__K_DEAD:     in.state = TQ_STATE_DEAD; break;
	case TQ__K_RESERVED:
	case TQ__K_FREEING:
	case TQ__K_BUSY:     in.state = TQ_STATE_BUSY; break;
	case TQ__K_FREE:
		return tq__fail(t, -ENOENT, "task %llu: finished and gone", (unsigned long long)id);
	default:
		return tq__fail(t, -EPROTO, "task %llu: slot state 0x%llx", (unsigned long long)id,
				(unsigned long long)st);
	}
	if (in.state == TQ_STATE_LEASED || in.state == TQ_STATE_BUSY)
		in.owner_pid = tq__owner_pid(t, tq__st_arg(st));
	*info = in;
	return 0;
}

int tq_result(tq *t, uint64_t id, void *buf, size_t size)
{
	struct tq__slot *s;
	const void *p;
	uint32_t idx, len = 0;
	uint64_t st;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if ((size && !buf))
		return tq__fail(t, -EINVAL, "buf is NULL");
	e = tq__slot_lookup(t, id, &idx);
	if (e < 0)
		return e;
	s = tq__slot(t, idx);
	e = state_of(t, id, idx, &st);
	if (e < 0)
		return e;
	if (tq__st_kind(st) != TQ__K_DONE)
		return tq__fail(t, -EBUSY, "task %llu is not done", (unsigned long long)id);
	p = tq__payload_ptr(t, s, &len);
	if (!p)
		return tq__fail(t, -EPROTO, "task %llu: result reference out of range",
				(unsigned long long)id);
	if (size)
		memcpy(buf, p, len < size ? len : size);
	/* A forget may have freed it while we copied. */
	e = state_of(t, id, idx, &st);
	if (e < 0)
		return e;
	if (tq__st_kind(st) != TQ__K_DONE)
		return tq__fail(t, -ENOENT, "task %llu was forgotten meanwhile", (unsigned long long)id);
	return (int)len;
}

/* Take a slot this handle does not own from exactly state st to `kind`
 * (BUSY or FREEING) of ours, named on the held list first. Returns the held
 * index or -EAGAIN if the state moved. For FREEING, finish_free() then drops
 * the payload and frees it; recovery of a handle dying in between finds
 * FREEING(dead) and finishes. */
static int take_as(tq *t, uint32_t idx, uint64_t st, unsigned kind)
{
	int hi = tq__held_add(t, tq__held(TQ__H_SLOT, idx));

	if (hi < 0)
		return hi;
	if (!tq__cas64(&tq__slot(t, idx)->state, st, tq__st(kind, t->token))) {
		tq__held_del(t, hi);
		return -EAGAIN;
	}
	return hi;
}

static void finish_free(tq *t, uint32_t idx, int hi)
{
	tq__payload_drop(t, tq__slot(t, idx));
	tq__store(&tq__slot(t, idx)->state, tq__st(TQ__K_FREE, 0));
	tq__slot_release(t, idx);
	tq__slot_flush(t);
	tq__held_del(t, hi);
}

static int place(tq *t, uint32_t idx, uint32_t *q, uint32_t *lv)
{
	struct tq__slot *s = tq__slot(t, idx);

	*q = tq__load_rlx(&s->queue);
	*lv = tq__load_rlx(&s->level);
	if (*q >= t->lay.queues || *lv >= t->lay.levels)
		return tq__fail(t, -EPROTO, "slot %u names queue %u level %u", idx, *q, *lv);
	return 0;
}

/* A task this handle has taken for an action. */
struct grabbed {
	uint32_t idx, q, lv;
	uint64_t st;                   /* the state it was taken from */
	int hi;                        /* its held entry */
};

#define KIND(k) (1u << (k))

/* Look task id up and take its slot, from whatever state it is in if that
 * state's kind is in `kinds`, to FREEING(us) (freeing) or BUSY(us), named on
 * our held list; retried while the state moves. 0, or -ENOENT (gone),
 * -EBUSY (in another state: "task N is not <what>"), -EPROTO, -ENOBUFS,
 * -EAGAIN (changed too often). */
static int grab_task(tq *t, uint64_t id, unsigned kinds, bool freeing, const char *what,
		     struct grabbed *g)
{
	int e = tq__slot_lookup(t, id, &g->idx);

	for (int tries = 0; e == 0 && tries < TRIES; tries++) {
		e = state_of(t, id, g->idx, &g->st);
		if (e < 0)
			return e;
		if (!(kinds & KIND(tq__st_kind(g->st))))
			return tq__fail(t, -EBUSY, "task %llu is not %s", (unsigned long long)id, what);
		e = place(t, g->idx, &g->q, &g->lv);
		if (e < 0)
			return e;
		g->hi = take_as(t, g->idx, g->st, freeing ? TQ__K_FREEING : TQ__K_BUSY);
		if (g->hi == -EAGAIN)
			continue;
		return g->hi < 0 ? g->hi : 0;
	}
	return e ? e : tq__fail(t, -EAGAIN, "task %llu changed too often", (unsigned long long)id);
}

int tq_forget(tq *t, uint64_t id)
{
	struct grabbed g;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = grab_task(t, id, KIND(TQ__K_DONE) | KIND(TQ__K_DEAD), true, "done or dead", &g);
	if (e < 0)
		return e;
	finish_free(t, g.idx, g.hi);
	if (tq__jnl_on(t) && tq__st_kind(g.st) == TQ__K_DEAD)
		tq__jnl_end(t, id);
	/* A dead letter or a result with a TTL leaves a stale ring cell. */
	if (tq__st_kind(g.st) == TQ__K_DEAD || tq__st_arg(g.st))
		tq__ring_skip_stale(t, tq__st_ring(g.st), tq__st_kind(g.st), 64);
	return 0;
}

int tq_cancel(tq *t, uint64_t id)
{
	struct grabbed g;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = grab_task(t, id, KIND(TQ__K_READY) | KIND(TQ__K_DELAYED), true, "pending", &g);
	if (e < 0)
		return e;
	/* Its ring entry stays behind; consumers skip it. */
	finish_free(t, g.idx, g.hi);
	if (tq__jnl_on(t))
		tq__jnl_end(t, id);
	if (tq__st_kind(g.st) == TQ__K_READY) {
		tq__count(t, g.q, g.lv, TQ__C_DEQ, 1);
	} else {
		tq__add(&t->hdr->delayed, (uint64_t)-1);
		tq__count(t, g.q, g.lv, TQ__C_DELAY_OUT, 1);
	}
	tq__count(t, g.q, g.lv, TQ__C_CANCELLED, 1);
	tq__queue_leave(t, g.q);
	return 0;
}

int tq_set_level(tq *t, uint64_t id, unsigned level)
{
	struct tq__slot *s;
	struct grabbed g;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (level >= t->lay.levels)
		return tq__fail(t, -EINVAL, "level %u, the segment has %u", level, t->lay.levels);
	e = grab_task(t, id, KIND(TQ__K_READY) | KIND(TQ__K_DELAYED), false, "pending", &g);
	if (e < 0)
		return e;
	s = tq__slot(t, g.idx);
	uint32_t att = tq__load_rlx(&s->attempts);
	uint64_t due = tq__load_rlx(&s->due_ns);
	tq__store_rlx(&s->level, (uint8_t)level);
	if (tq__st_kind(g.st) == TQ__K_READY) {
		e = tq__publish_ready(t, g.idx, g.q, level);
		if (e < 0) {
			tq__store_rlx(&s->level, (uint8_t)g.lv);
			e = tq__publish_ready(t, g.idx, g.q, g.lv);
			if (e < 0)
				return e;       /* stays BUSY on our held list */
			tq__count(t, g.q, g.lv, TQ__C_DEQ, 1);
			tq__held_del(t, g.hi);
			return tq__fail(t, -EAGAIN, "no room to move task %llu", (unsigned long long)id);
		}
		tq__count(t, g.q, g.lv, TQ__C_DEQ, 1);
	} else {
		tq__add(&t->hdr->delayed, (uint64_t)-1);
		e = tq__delay_push(t, g.idx, tq__load_rlx(&s->due_ns));
		if (e == 1)
			e = tq__publish_ready(t, g.idx, g.q, level);
		else if (e == 0)
			tq__count(t, g.q, level, TQ__C_DELAY_IN, 1);
		if (e < 0)
			return e;               /* stays BUSY on our held list */
		tq__count(t, g.q, g.lv, TQ__C_DELAY_OUT, 1);
	}
	tq__count(t, g.q, level, TQ__C_MOVED, 1);
	tq__held_del(t, g.hi);
	if (tq__jnl_on(t)) {
		bool delayed = tq__st_kind(g.st) == TQ__K_DELAYED;

		tq__jnl_set(t, id, delayed ? TQ__JS_DELAYED : TQ__JS_READY, level, att,
			    delayed ? due : 0);
	}
	return 0;
}

int tq_requeue_dead(tq *t, uint64_t id)
{
	struct grabbed g;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = grab_task(t, id, KIND(TQ__K_DEAD), false, "a dead letter", &g);
	if (e < 0)
		return e;
	tq__store_rlx(&tq__slot(t, g.idx)->attempts, 0);
	e = tq__publish_ready(t, g.idx, g.q, g.lv);
	if (e < 0) {
		if (tq__ring_push(t, tq__ring_dead(&t->lay, g.q), g.idx, TQ__K_DEAD) == 0)
			tq__held_del(t, g.hi);
		return tq__fail(t, -EAGAIN, "no room to requeue task %llu", (unsigned long long)id);
	}
	if (tq__load_rlx(&tq__queue(t, g.q)->max_length))
		tq__add(&tq__queue(t, g.q)->count, 1);
	tq__count(t, g.q, g.lv, TQ__C_REQUEUED, 1);
	tq__held_del(t, g.hi);
	if (tq__jnl_on(t))
		tq__jnl_set(t, id, TQ__JS_READY, g.lv, 0, 0);
	tq__ring_skip_stale(t, tq__st_ring(g.st), TQ__K_DEAD, 64);
	return 0;
}

int tq_dead_list(tq *t, int q, uint64_t *ids, unsigned max, uint64_t *cursor)
{
	uint64_t from;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	if (!ids || !cursor || max < 1)
		return tq__fail(t, -EINVAL, "ids, cursor and max >= 1 are needed");
	from = *cursor;
	e = (int)tq__ring_list(t, tq__ring_dead(&t->lay, (uint32_t)q), TQ__K_DEAD, &from, ids,
			       max > 1u << 20 ? 1u << 20 : max);
	*cursor = from;
	return e;
}

/* Cursor of tq_list(): which ring (or process record) in the top 12 bits,
 * the position in it (or held index) in the low 52. */
#define CUR_RING(c)   ((uint32_t)((c) >> 52))
#define CUR_POS(c)    ((c) & ((1ull << 52) - 1))
#define CUR(r, p)     (((uint64_t)(r) << 52) | (p))

static bool wanted(tq *t, uint64_t id, uint32_t q, int level)
{
	struct tq__slot *s = tq__slot(t, (uint32_t)id);

	return tq__load_rlx(&s->queue) == q && (level < 0 || tq__load_rlx(&s->level) == (uint32_t)level);
}

/* Entries of one ring of kind `kind` from *pos, filtered to queue q and
 * level, into ids[n..max). */
static unsigned list_ring(tq *t, uint32_t r, unsigned kind, uint64_t *pos, uint32_t q, int level,
			  bool filter, uint64_t *ids, unsigned n, unsigned max)
{
	uint64_t buf[64];

	while (n < max) {
		uint64_t before = *pos;
		unsigned want = max - n < 64 ? max - n : 64, got;

		got = tq__ring_list(t, r, kind, pos, buf, want);
		for (unsigned k = 0; k < got; k++)
			if (!filter || wanted(t, buf[k], q, level))
				ids[n++] = buf[k];
		if (got < want || *pos == before)
			break;                 /* the end of this ring */
	}
	return n;
}

int tq_list(tq *t, int q, int level, unsigned state, uint64_t *ids, unsigned max,
	    uint64_t *cursor)
{
	uint32_t levels, ring, first, last;
	unsigned n = 0;
	uint64_t pos;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	levels = t->lay.levels;
	if (!ids || !cursor || max < 1)
		return tq__fail(t, -EINVAL, "ids, cursor and max >= 1 are needed");
	if (level >= (int)levels)
		return tq__fail(t, -EINVAL, "level %d, the segment has %u", level, levels);
	if (max > 1u << 20)
		max = 1u << 20;
	ring = CUR_RING(*cursor);
	pos = CUR_POS(*cursor);

	switch (state) {
	case TQ_STATE_PENDING:
		/* One ready ring per level: the cursor's ring is the level. */
		first = level < 0 ? 0 : (uint32_t)level;
		last = level < 0 ? levels - 1 : (uint32_t)level;
		if (ring < first) {
			ring = first;
			pos = 0;
		}
		while (ring <= last) {
			n = list_ring(t, tq__ring_ready(&t->lay, (uint32_t)q, ring), TQ__K_READY, &pos,
				      (uint32_t)q, level, false, ids, n, max);
			if (n >= max)
				break;          /* go on here next time */
			ring++;
			pos = 0;
		}
		break;
	case TQ_STATE_DELAYED:
		/* The wheel's buckets and the far ring, shared by all queues. */
		while (ring <= TQ__WHEEL) {
			n = list_ring(t, tq__ring_wheel(&t->lay, ring), TQ__K_DELAYED, &pos,
				      (uint32_t)q, level, true, ids, n, max);
			if (n >= max)
				break;
			ring++;
			pos = 0;
		}
		break;
	case TQ_STATE_DEAD:
		if (ring == 0)
			n = list_ring(t, tq__ring_dead(&t->lay, (uint32_t)q), TQ__K_DEAD, &pos,
				      (uint32_t)q, level, level >= 0, ids, n, max);
		ring = n < max ? 1 : 0;
		break;
	case TQ_STATE_LEASED:
		/* Every handle's held list: the cursor's ring is the record. */
		for (; ring < t->lay.procs && n < max; ring++, pos = 0) {
			struct tq__proc *rec = tq__proc_at(t, ring);
			uint64_t token = tq__load(&rec->owner) & TQ__TOKEN_MASK;

			if (!token)
				continue;
			for (; pos < TQ_HELD_MAX && n < max; pos++) {
				uint32_t h = tq__load(&rec->held[pos]), idx = h & 0x3fffffffu;
				struct tq__slot *s;
				uint64_t id;

				if (h >> 30 != TQ__H_SLOT || idx >= t->lay.capacity)
					continue;
				s = tq__slot(t, idx);
				id = ((uint64_t)tq__load(&s->gen) << 32) | idx;
				if (tq__load(&s->state) == tq__st(TQ__K_LEASED, token) &&
				    wanted(t, id, (uint32_t)q, level))
					ids[n++] = id;
			}
			if (pos < TQ_HELD_MAX)
				break;
		}
		break;
	default:
		return tq__fail(t, -EINVAL, "state %u cannot be listed", state);
	}
	/* Where the next call goes on (for a full page, where this one
	 * stopped; else the end). */
	if (state == TQ_STATE_DEAD)
		*cursor = n < max ? CUR(1, 0) : CUR(0, pos);
	else
		*cursor = CUR(ring, pos);
	return (int)n;
}

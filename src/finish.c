/* SPDX-License-Identifier: MIT */
/*
 * finish.c - what a worker does with a leased task: ack (with or without a
 * result), fail (retry or dead letter), release (untouched, no attempt
 * counted) and extend (heartbeat the lease).
 *
 * Each starts with one CAS of the slot's state from LEASED(this handle) to
 * BUSY(this handle): if the lease was taken back meanwhile (expired and
 * recovered by the supervisor) the CAS fails and the caller gets -ESTALE,
 * so a task's fate is decided exactly once. The slot stays on the handle's
 * held list until its new place (ring, dead letters, free pool) is
 * reached, so a worker dying half-way leaves a BUSY slot that recovery
 * finds (docs/protocols.md, "finish").
 */
#include "ring.h"

/* Why task id is not one this handle leases: -ENOENT or -ESTALE. */
static int __attribute__((noinline)) not_leased(tq *t, uint64_t id)
{
	uint32_t idx;
	int e;

	e = tq__slot_lookup(t, id, &idx);
	if (e < 0)
		return e;
	/* Not ours (any more): if we had leased it, the lease was taken back
	 * (expired); forget our record of it. */
	tq__held_forget_lost(t, idx);
	if (tq__st_kind(tq__load(&tq__slot(t, idx)->state)) == TQ__K_FREE)
		return tq__fail(t, -ENOENT, "task %llu: finished and gone", (unsigned long long)id);
	return tq__fail(t, -ESTALE, "task %llu is not leased by this handle (lease lost?)",
			(unsigned long long)id);
}

/* Find a task this handle leases; -ENOENT or -ESTALE otherwise. */
static inline int leased_slot(tq *t, uint64_t id, uint32_t *idx, int *hi, struct tq__slot **sp)
{
	uint32_t i = (uint32_t)id, gen = (uint32_t)(id >> 32), h;
	struct tq__slot *s;

	/* A slot whose state says we lease it has a generation from 1 to
	 * 0xfffffffe: no other generation can match. */
	if (__builtin_expect(i < t->lay.capacity, 1)) {
		s = tq__slot(t, i);
		if (__builtin_expect(tq__load(&s->gen) == gen && tq__load(&s->state) == t->st_leased,
				     1)) {
			/* Ours: the slot names our held entry (we wrote it
			 * when we leased it, and only the lessee writes it). */
			h = tq__load_rlx(&s->held);
			if (__builtin_expect(h < TQ_HELD_MAX && t->held_t0[h] &&
					     tq__load_rlx(&t->proc->held[h]) == tq__held_slot(i),
				     1)) {
				*idx = i;
				*hi = (int)h;
				*sp = s;
				return 0;
			}
		}
	}
	*idx = TQ__NIL;
	*hi = -1;
	*sp = NULL;
	return not_leased(t, id);
}

/* The same, when the caller looks the slot up itself. */
static inline int leased(tq *t, uint64_t id, uint32_t *idx, int *hi)
{
	struct tq__slot *s;

	return leased_slot(t, id, idx, hi, &s);
}

static int __attribute__((noinline)) bad_place(tq *t, uint32_t q, uint32_t lv)
{
	return tq__fail(t, -EPROTO, "slot names queue %u level %u, out of range", q, lv);
}

/* The (queue, level) a slot this handle owns says it belongs to. */
static inline int slot_place(tq *t, struct tq__slot *s, uint32_t *q, uint32_t *lv)
{
	*q = tq__load_rlx(&s->queue);
	*lv = tq__load_rlx(&s->level);
	if (__builtin_expect(*q >= t->lay.queues || *lv >= t->lay.levels, 0))
		return bad_place(t, *q, *lv);
	return 0;
}

static int __attribute__((noinline)) lease_lost(tq *t, uint64_t id)
{
	return tq__fail(t, -ESTALE, "task %llu: lease lost", (unsigned long long)id);
}

static bool grab(tq *t, uint32_t idx)
{
	return tq__cas64(&tq__slot(t, idx)->state, t->st_leased,
			 t->st_busy);
}

static void ungrab(tq *t, uint32_t idx)
{
	tq__store(&tq__slot(t, idx)->state, t->st_leased);
}

/* The lease of held entry hi is over; the handle's figures are the
 * caller's (acks_counted(), or done_with()). */
static inline void lease_over(tq *t, int hi)
{
	t->held_t0[hi] = 0;
	tq__held_del(t, hi);
}

/* The same, counted; the process record's figures are written by the
 * caller (leases_ended()). */
static inline void done_with(tq *t, int hi)
{
	lease_over(t, hi);
	if (t->leased_now)
		t->leased_now--;
}

/* n acks (ack_free()) ended their leases and attempts. */
static inline void acks_counted(tq *t, unsigned n)
{
	t->n_done += n;
	t->leased_now = t->leased_now > n ? t->leased_now - n : 0;
}

/* An attempt ended (ack or fail) at now: its run time. */
static inline void attempt_done(tq *t, uint32_t q, uint32_t lv, int hi, uint64_t now)
{
	if (now > t->held_t0[hi])
		tq__hist_add(t, q, lv, TQ_HIST_RUN, now - t->held_t0[hi]);
	t->n_done++;
}

/* The handle's figures in its process record (tq_procs()), once per call. */
static void leases_ended(tq *t)
{
	tq__store_rlx(&t->proc->n_done, t->n_done);
	tq__store_rlx(&t->proc->leased_now, t->leased_now);
}

/* A task leaves its queue for good (acked, dead-lettered, cancelled). */
void tq__queue_leave_counted(tq *t, uint32_t q, uint32_t n)
{
	tq__add(&tq__queue(t, q)->count, -(uint64_t)n);
	tq__wake_space(t);
}

int tq__publish_ready(tq *t, uint32_t idx, uint32_t q, uint32_t lv)
{
	int e;

	tq__store_rlx(&tq__slot(t, idx)->due_ns, TQ__NO_DUE);
	e = tq__ring_push(t, tq__ring_ready(&t->lay, q, lv), idx, TQ__K_READY);

	if (e < 0)
		return e;
	tq__count(t, q, lv, TQ__C_ENQ, 1);
	tq__wake_ready(t, q, 1);
	return 0;
}

/* The end of every ack, with or without a result, at time now; the
 * process record's figures are the caller's (leases_ended()). */
static inline __attribute__((always_inline)) void
acked(tq *t, uint64_t id, uint32_t q, uint32_t lv, int hi, uint64_t now)
{
	if (tq__jnl_on(t))
		tq__jnl_end(t, id);
	attempt_done(t, q, lv, hi, now);
	done_with(t, hi);
	tq__count(t, q, lv, TQ__C_ACKED, 1);
	tq__queue_leave(t, q);
}

/*
 * The tasks of one batch that left the same (queue, level) in a row: their
 * counter, queue count and run-time histogram are worked out once, the
 * counts added once (ack_group_end()).
 */
struct ack_group {
	uint32_t q, lv, n;
	struct tq__hist *run;
};

static inline void ack_group_end(tq *t, struct ack_group *g)
{
	tq__count(t, g->q, g->lv, TQ__C_ACKED, g->n);
	tq__queue_leave_n(t, g->q, g->n);
	g->n = 0;
}

/*
 * Ack task id, leased by this handle as held entry hi, without a result, at
 * time now, as one of group g: the per-task part of tq_ack() and
 * tq_ack_batch(), whose caller ends the group (ack_group_end()) and the
 * free pool's loop (tq__slot_release_end()). One CAS takes the slot from
 * leased to freeing; its bit stays set until released, so nobody reuses it
 * meanwhile.
 */
static inline __attribute__((always_inline)) int
ack_free(tq *t, struct ack_group *g, uint64_t id, struct tq__slot *s, uint32_t idx, int hi,
	 uint64_t now)
{
	uint32_t q, lv;
	int e;

	e = slot_place(t, s, &q, &lv);
	if (e < 0)
		return e;
	if (__builtin_expect(!tq__cas64(&s->state, t->st_leased, t->st_freeing), 0))
		return lease_lost(t, id);
	tq__payload_drop(t, s);
	tq__store(&s->state, tq__st(TQ__K_FREE, 0));
	tq__slot_release_many(t, idx);
	if (tq__jnl_on(t))
		tq__jnl_end(t, id);
	if (__builtin_expect(q != g->q || lv != g->lv, 0)) {
		if (g->n)
			ack_group_end(t, g);
		g->q = q;
		g->lv = lv;
		g->run = tq__hist(t, q, lv, TQ_HIST_RUN);
	}
	if (now > t->held_t0[hi])
		tq__hist_put(g->run, now - t->held_t0[hi]);
	lease_over(t, hi);
	g->n++;
	return 0;
}

/* The loop of tq_ack_batch(): how many of ids[0..n) it acked. Made twice,
 * with errs and without (a constant), so neither tests it per task. */
static inline __attribute__((always_inline)) unsigned
ack_each(tq *t, struct ack_group *g, const uint64_t *ids, unsigned n, int *errs, uint64_t now)
{
	unsigned acked = 0;

	for (unsigned i = 0; i < n; i++) {
		struct tq__slot *s;
		uint32_t idx;
		int hi, e;

		e = leased_slot(t, ids[i], &idx, &hi, &s);
		if (e == 0)
			e = ack_free(t, g, ids[i], s, idx, hi, now);
		if (errs)
			errs[i] = e;
		acked += e == 0;
	}
	return acked;
}

int tq_ack_batch(tq *t, const uint64_t *ids, unsigned n, int *errs)
{
	struct ack_group g = { .q = UINT32_MAX };
	unsigned acked;
	uint64_t now;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!ids || n < 1 || n > TQ_BATCH_MAX)
		return tq__fail(t, -EINVAL, "a batch holds 1..%u tasks, not %u", TQ_BATCH_MAX, n);
	now = tq__now_ns();
	acked = errs ? ack_each(t, &g, ids, n, errs, now) : ack_each(t, &g, ids, n, NULL, now);
	if (g.n)
		ack_group_end(t, &g);
	tq__slot_release_end(t);
	acks_counted(t, acked);
	leases_ended(t);
	return (int)acked;
}

int tq_ack(tq *t, uint64_t id, const void *result, size_t result_len)
{
	struct tq__slot *s;
	uint32_t idx, q, lv;
	uint64_t ttl;
	int hi, e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = leased(t, id, &idx, &hi);
	if (e < 0)
		return e;
	if (!result_len) {
		struct ack_group g = { .q = UINT32_MAX };

		e = ack_free(t, &g, id, tq__slot(t, idx), idx, hi, tq__now_ns());
		if (e < 0)
			return e;
		ack_group_end(t, &g);
		tq__slot_release_end(t);
		acks_counted(t, 1);
		leases_ended(t);
		return 0;
	}
	if (result_len > t->lay.max_payload)
		return tq__fail(t, -EMSGSIZE, "result of %zu bytes, max_payload is %u", result_len,
				t->lay.max_payload);
	if (!result)
		return tq__fail(t, -EINVAL, "result is NULL");
	s = tq__slot(t, idx);
	e = slot_place(t, s, &q, &lv);
	if (e < 0)
		return e;
	if (!grab(t, idx))
		return tq__fail(t, -ESTALE, "task %llu: lease lost", (unsigned long long)id);
	{
		e = tq__payload_replace(t, s, result, (uint32_t)result_len);
		if (e < 0) {
			ungrab(t, idx);
			return tq__fail(t, e, "no room for a result of %zu bytes", result_len);
		}
		ttl = tq__load_rlx(&tq__queue(t, q)->result_ttl_ms);
		tq__store_rlx(&s->due_ns, ttl ? tq_now_ns() + ttl * 1000000ull : TQ__NO_DUE);
		/* With a TTL the result waits in the queue's results ring,
		 * oldest first, for tq_tick() to forget it; without one (or
		 * without room there) it stays until forgotten. */
		if (!ttl || tq__ring_push(t, tq__ring_done(&t->lay, q), idx, TQ__K_DONE) < 0)
			tq__store(&s->state, tq__st(TQ__K_DONE, 0));
	}
	acked(t, id, q, lv, hi, tq__now_ns());
	leases_ended(t);
	return 0;
}

/* Retry delay after the n-th attempt failed: d = min(cap, base * f^(n-1)),
 * a random point of [d/2, d] ("equal jitter": spread out, never early by
 * more than half). 0 when the queue retries at once. */
static uint64_t backoff_ns(tq *t, struct tq__queue *qu, uint32_t n)
{
	uint64_t base = tq__load_rlx(&qu->retry_base_ms), cap = tq__load_rlx(&qu->retry_cap_ms);
	uint64_t f = tq__load_rlx(&qu->retry_factor), d = base * 1000000ull;

	if (!base)
		return 0;
	if (f < 100 || f > 1000)
		f = 200;
	for (uint32_t i = 1; i < n && d < cap * 1000000ull; i++)
		d = d * f / 100;
	if (d > cap * 1000000ull)
		d = cap * 1000000ull;
	/* xorshift64: per handle, seeded from its token and the clock. */
	if (!t->rng)
		t->rng = (t->token * 0x9e3779b97f4a7c15ull) ^ tq_now_ns() ^ 1;
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return d / 2 + (d / 2 ? t->rng % (d / 2 + 1) : 0);
}

int tq_fail(tq *t, uint64_t id)
{
	struct tq__slot *s;
	uint32_t idx, q, lv;
	uint64_t delay, jdue = 0;
	uint32_t att;
	bool dead;
	int hi, e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = leased(t, id, &idx, &hi);
	if (e < 0)
		return e;
	s = tq__slot(t, idx);
	e = slot_place(t, s, &q, &lv);
	if (e < 0)
		return e;
	if (!grab(t, idx))
		return tq__fail(t, -ESTALE, "task %llu: lease lost", (unsigned long long)id);
	att = tq__load_rlx(&s->attempts);
	dead = att >= tq__load_rlx(&s->max_attempts);
	delay = dead ? 0 : backoff_ns(t, tq__queue(t, q), tq__load_rlx(&s->attempts));
	if (dead) {
		e = tq__ring_push(t, tq__ring_dead(&t->lay, q), idx, TQ__K_DEAD);
	} else if (delay) {
		/* Wait in the delay wheel before it is ready again. */
		uint64_t due = tq_now_ns() + delay;

		jdue = due;
		tq__store_rlx(&s->due_ns, due);
		e = tq__delay_push(t, idx, due);
		if (e == 0)
			tq__count(t, q, lv, TQ__C_DELAY_IN, 1);
		else if (e == 1)
			e = tq__publish_ready(t, idx, q, lv);
	} else {
		e = tq__publish_ready(t, idx, q, lv);
	}
	if (e < 0) {
		ungrab(t, idx);
		return tq__fail(t, e, "no room to requeue task %llu; it stays leased",
				(unsigned long long)id);
	}
	if (tq__jnl_on(t))
		tq__jnl_set(t, id, dead ? TQ__JS_DEAD : jdue ? TQ__JS_DELAYED : TQ__JS_READY, lv,
			    att, jdue);
	attempt_done(t, q, lv, hi, tq__now_ns());
	done_with(t, hi);
	leases_ended(t);
	tq__count(t, q, lv, TQ__C_FAILED, 1);
	if (dead) {
		tq__count(t, q, lv, TQ__C_DEAD, 1);
		tq__queue_leave(t, q);
	}
	return dead ? 1 : 0;
}

int tq_release(tq *t, uint64_t id)
{
	struct tq__slot *s;
	uint32_t idx, q, lv, att;
	int hi, e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = leased(t, id, &idx, &hi);
	if (e < 0)
		return e;
	s = tq__slot(t, idx);
	e = slot_place(t, s, &q, &lv);
	if (e < 0)
		return e;
	if (!grab(t, idx))
		return tq__fail(t, -ESTALE, "task %llu: lease lost", (unsigned long long)id);
	att = tq__load_rlx(&s->attempts);
	if (att)
		tq__store_rlx(&s->attempts, (uint8_t)(att - 1));
	e = tq__publish_ready(t, idx, q, lv);
	if (e < 0) {
		tq__store_rlx(&s->attempts, (uint8_t)att);
		ungrab(t, idx);
		return tq__fail(t, e, "no room to requeue task %llu; it stays leased",
				(unsigned long long)id);
	}
	done_with(t, hi);
	leases_ended(t);
	tq__count(t, q, lv, TQ__C_RELEASED, 1);
	return 0;
}

int tq_extend(tq *t, uint64_t id, uint32_t ms)
{
	struct tq__slot *s;
	uint32_t idx;
	int hi, e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = leased(t, id, &idx, &hi);
	if (e < 0)
		return e;
	s = tq__slot(t, idx);
	if (!ms)
		ms = tq__load_rlx(&s->lease_ms);
	tq__store(&s->due_ns, tq_now_ns() + (uint64_t)ms * 1000000ull);
	tq__store_rlx(&t->proc->heartbeat_ns, tq_now_ns());
	/* The lease may have been taken back while we wrote. */
	if (tq__load(&s->state) != t->st_leased)
		return tq__fail(t, -ESTALE, "task %llu: lease lost", (unsigned long long)id);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * lease.c - taking tasks: choosing the (queue, level) to take from under the
 * strict or the weighted policy, claiming the task (the new owner is written
 * into the slot's state by the same CAS that takes it, see ring.c), and
 * waiting without polling when nothing is ready: a short spin (or as long
 * as the caller asks), then a futex sleep on the chosen queues' words.
 */
#include <string.h>

#include "ring.h"

#define SPIN_NS      20000       /* spin at most this long before sleeping */
#define POLL_NS      1000        /* while spinning, look this often */
#define NAP_NS       100000000   /* never sleep longer than this at once */
#define WEIGHT_MAX   (1u << 20)  /* as tq_queue_declare() allows */

struct lease_ctx {
	tq *t;
	const uint32_t *qs;
	uint32_t nq;
	uint32_t own[TQ_QUEUES_MAX];
	uint32_t policy;
	uint32_t lease_ms;
	uint64_t now;
};

/*
 * Stamp a task just claimed from ring (q, lv) as held entry hi: its lease
 * (attempt, deadline, lessee's entry) in the slot, its start in the
 * handle, what the caller sees in *o, and the wait of a first attempt.
 * lease_ms 0: the task's own lease time.
 */
static inline __attribute__((always_inline)) void
lease_stamp(tq *t, uint32_t idx, int hi, uint32_t q, uint32_t lv, uint64_t now,
	    uint32_t lease_ms, struct tq__hist *wait, struct tq_task *o)
{
	struct tq__slot *s = tq__slot(t, idx);
	uint32_t att;
	uint64_t due, sub;

	tq__store_rlx(&s->held, (uint16_t)hi);
	t->held_t0[hi] = now | 1;      /* also says: a lease (handle.h) */
	att = tq__load_rlx(&s->attempts) + 1u;
	if (att > 255)
		att = 255;
	tq__store_rlx(&s->attempts, (uint8_t)att);
	if (!lease_ms)
		lease_ms = tq__load_rlx(&s->lease_ms);
	due = now + (uint64_t)lease_ms * 1000000ull;
	tq__store_rlx(&s->due_ns, due);
	o->payload = tq__payload_ptr(t, s, &o->len);      /* NULL and 0 if corrupt */
	sub = tq__load_rlx(&s->submitted_ns);
	o->id = ((uint64_t)tq__load_rlx(&s->gen) << 32) | idx;
	o->queue = q;
	o->level = lv;
	o->type = tq__load_rlx(&s->type);
	o->attempts = att;
	o->max_attempts = tq__load_rlx(&s->max_attempts);
	o->submitted_ns = sub;
	o->deadline_ns = due;
	if (att == 1 && sub < now)
		tq__hist_put(wait, now - sub);
}

/*
 * Claim up to max tasks from ring (q, lv) into out[]: the number taken, or
 * an error if none was. Everything that is the same for the whole run (the
 * ring, its counter, its histogram, the lease time asked for) is worked out
 * once; the handle's process-record figures are written once per call
 * (lease_done()).
 */
static int take_from(struct lease_ctx *c, uint32_t q, uint32_t lv, struct tq_task *out,
		     unsigned max)
{
	tq *t = c->t;
	const uint32_t r = tq__ring_ready(&t->lay, q, lv), lease_ms = c->lease_ms;
	struct tq__hist *wait = tq__hist(t, q, lv, TQ_HIST_WAIT);
	const uint64_t now = c->now, st = t->st_leased;
	uint32_t run[TQ_BATCH_MAX];
	int run_hi[TQ_BATCH_MAX];
	unsigned n = 0;
	int e = 0;

	while (n < max) {
		unsigned nrun = 0;

		/* A run of the ring's cells in one go, else one the careful
		 * way (the end of a chunk, a stale entry, a race). */
		if (max - n > 1) {
			e = tq__ring_pop_many(t, r, TQ__K_READY, st, run, run_hi, max - n);
			if (e < 0)
				break;                      /* empty */
			nrun = (unsigned)e;
		}
		if (!nrun) {
			uint32_t idx;
			int hi = tq__held_reserve(t);

			if (hi < 0) {
				e = hi;
				break;
			}
			e = tq__ring_pop(t, r, TQ__K_READY, st, hi, &idx);
			if (e < 0) {
				tq__held_del(t, hi);
				break;
			}
			lease_stamp(t, idx, hi, q, lv, now, lease_ms, wait, &out[n]);
			nrun = 1;
		} else {
			for (unsigned k = 0; k < nrun; k++)
				lease_stamp(t, run[k], run_hi[k], q, lv, now, lease_ms, wait,
					    &out[n + k]);
		}
		n += nrun;
		tq__count(t, q, lv, TQ__C_LEASED, nrun);
	}
	return n ? (int)n : e;
}

/* The handle's figures in its process record (tq_procs()), once per call. */
static void lease_done(tq *t, const struct tq_task *out, int n)
{
	t->n_leased += (unsigned)n;
	t->leased_now += (unsigned)n;
	tq__store_rlx(&t->proc->current_task, out[n - 1].id);
	tq__store_rlx(&t->proc->n_leased, t->n_leased);
	tq__store_rlx(&t->proc->leased_now, t->leased_now);
}

static bool paused(tq *t, uint32_t q)
{
	return tq__load_rlx(&tq__queue(t, q)->paused) != 0;
}

static int take_strict(struct lease_ctx *c, struct tq_task *out, unsigned max)
{
	tq *t = c->t;
	const uint32_t levels = t->lay.levels, nq = c->nq, *qs = c->qs;
	unsigned n = 0;

	for (uint32_t lv = 0; lv < levels; lv++) {
		for (uint32_t k = 0; k < nq; k++) {
			uint32_t q = qs[k];
			int e;

			if (paused(t, q))
				continue;
			/* Straight to the ring: a pop of an empty ring costs
			 * what a look would. */
			e = take_from(c, q, lv, &out[n], max - n);
			if (e > 0) {
				n += (unsigned)e;
				if (n == max)
					return (int)n;
			} else if (e != -EAGAIN) {
				return n ? (int)n : e;
			}
		}
	}
	return (int)n;
}

/* Smooth weighted round robin (as in nginx) over the non-empty (queue,
 * level) pairs: each pick adds every candidate's weight to its credit and
 * takes the largest credit, which then pays the total. Under saturation
 * each pair gets weight/total of the picks and none starves. */
static int take_weighted(struct lease_ctx *c, struct tq_task *out, unsigned max)
{
	tq *t = c->t;
	unsigned n = 0;
	uint32_t levels = t->lay.levels;

	for (int rounds = 0; n < max && rounds < 4 * (int)max + 8; rounds++) {
		int64_t total = 0;
		int best = -1;
		uint32_t bq = 0, bl = 0;
		int e;

		for (uint32_t k = 0; k < c->nq; k++) {
			uint32_t q = c->qs[k];
			struct tq__queue *qu = tq__queue(t, q);
			uint32_t qw;

			if (paused(t, q))
				continue;
			/* Declare caps weights at 2^20; a segment saying more
			 * is corrupt, and must not overflow the credits. */
			qw = tq__load_rlx(&qu->weight);
			if (qw > WEIGHT_MAX)
				qw = WEIGHT_MAX;
			for (uint32_t lv = 0; lv < levels; lv++) {
				uint32_t lw = tq__load_rlx(&qu->level_weight[lv]);
				int64_t w = (int64_t)qw * (lw > WEIGHT_MAX ? WEIGHT_MAX : lw);
				int i = (int)(q * levels + lv);

				if (w <= 0 || !tq__ring_maybe_ready(t, tq__ring_ready(&t->lay, q, lv)))
					continue;
				t->wrr[i] += w;
				total += w;
				if (best < 0 || t->wrr[i] > t->wrr[best]) {
					best = i;
					bq = q;
					bl = lv;
				}
			}
		}
		if (best < 0)
			break;
		t->wrr[best] -= total;
		e = take_from(c, bq, bl, &out[n], 1);
		if (e > 0)
			n++;
		else if (e != -EAGAIN)
			return n ? (int)n : e;
	}
	return (int)n;
}

static int take(struct lease_ctx *c, struct tq_task *out, unsigned max)
{
	int n;

	if (c->policy == TQ_POLICY_WEIGHTED)
		n = take_weighted(c, out, max);
	else
		n = take_strict(c, out, max);
	if (n > 0)
		lease_done(c->t, out, n);
	return n;
}

static bool any_ready(struct lease_ctx *c)
{
	tq *t = c->t;

	for (uint32_t k = 0; k < c->nq; k++) {
		if (paused(t, c->qs[k]))
			continue;
		for (uint32_t lv = 0; lv < t->lay.levels; lv++)
			if (tq__ring_maybe_ready(t, tq__ring_ready(&t->lay, c->qs[k], lv)))
				return true;
	}
	return false;
}

/* The declared queues, rebuilt (all_queues()) when a queue was declared
 * since. */
static void all_queues_build(tq *t, uint64_t seen)
{
	t->nallq = 0;
	for (uint32_t q = 0; q < t->lay.queues; q++)
		if (tq__load(&tq__queue(t, q)->state) == TQ__Q_ACTIVE)
			t->allq[t->nallq++] = q;
	t->allq_seen = seen;
}

static inline void all_queues(tq *t)
{
	uint64_t seen = tq__load(&t->hdr->queues_declared);

	if (__builtin_expect(seen != t->allq_seen || !t->nallq, 0))
		all_queues_build(t, seen);
}

static int64_t min_deadline(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

int tq_lease(tq *t, const struct tq_lease_opts *opts, struct tq_task *out, unsigned max)
{
	static const struct tq_lease_opts defaults;
	struct lease_ctx c;
	int64_t deadline;
	uint64_t spin_until;
	bool slept = false;
	int n, e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!opts)
		opts = &defaults;
	if (!out || max < 1 || max > TQ_BATCH_MAX)
		return tq__fail(t, -EINVAL, "lease takes 1..%u tasks, not %u", TQ_BATCH_MAX, max);
	if (opts->policy != TQ_POLICY_STRICT && opts->policy != TQ_POLICY_WEIGHTED)
		return tq__fail(t, -EINVAL, "unknown policy %u", opts->policy);
	if (opts->nqueues > TQ_QUEUES_MAX || (opts->nqueues && !opts->queues))
		return tq__fail(t, -EINVAL, "bad queue list (%u queues)", opts->nqueues);
	if (opts->spin_us > TQ_SPIN_US_MAX)
		return tq__fail(t, -EINVAL, "spin_us %u exceeds %u", opts->spin_us, TQ_SPIN_US_MAX);
	c.t = t;
	c.policy = opts->policy;
	c.lease_ms = opts->lease_ms;
	if (opts->nqueues) {
		for (unsigned i = 0; i < opts->nqueues; i++) {
			e = tq__queue_check(t, opts->queues[i]);
			if (e < 0)
				return e;
			c.own[i] = (uint32_t)opts->queues[i];
		}
		c.qs = c.own;
		c.nq = opts->nqueues;
	} else {
		all_queues(t);
		c.qs = t->allq;
		c.nq = t->nallq;
	}
	if (!t->nheld_free)
		tq__held_forget_lost(t, TQ__NIL);   /* leases taken back meanwhile */
	if (!t->nheld_free)
		return tq__fail(t, -ENOBUFS, "this handle holds %u tasks already", TQ_HELD_MAX);
	if (max > t->nheld_free)
		max = t->nheld_free;
	c.now = tq__now_ns();
	tq__store_rlx(&t->proc->heartbeat_ns, c.now);
	if (t->jend_n)
		tq__jnl_end_due(t);
	deadline = opts->timeout_ms ? tq__deadline(opts->timeout_ms) : 0;
	spin_until = 0;

	for (;;) {
		uint32_t *words[TQ_QUEUES_MAX];
		uint32_t seqs[TQ_QUEUES_MAX];
		int64_t wake_at;

		if (tq__load_rlx(&t->hdr->delayed))
			tq__delay_promote(t);
		if (c.nq) {
			n = take(&c, out, max);
			if (n > 0) {
				/* Tasks were there when we looked, or came
				 * while we spun: spinning pays. */
				if (!slept)
					t->spin_ok = true;
				t->last_take_ns = c.now;
				return n;
			}
			if (n < 0)
				return n;
		}
		c.now = tq__now_ns();
		if (opts->timeout_ms == 0)
			return tq__fail(t, -EAGAIN, "no task is ready");
		if (deadline >= 0 && (uint64_t)deadline <= tq__mono_ns())
			return tq__fail(t, -ETIMEDOUT, "no task became ready in %d ms", opts->timeout_ms);

		/* Spin briefly, but only while tasks keep coming within a
		 * spin: otherwise a spin burns the CPU and keeps the core busy
		 * when the wake-up comes, so sleep at once. */
		if (!spin_until) {
			tq__slot_flush(t);
			if (t->jend_n)
				tq__jnl_end_flush(t);
			if (opts->spin_us) {
				/* Poll until spin_us after the last task taken:
				 * hot while tasks flow, asleep once they stop,
				 * however often the caller comes back. */
				uint64_t end = t->last_take_ns + opts->spin_us * 1000ull;

				spin_until = end > c.now ? tq__mono_ns() + (end - c.now) : 1;
			} else
				spin_until = t->spin_ok ? tq__mono_ns() + SPIN_NS : 1;
		}
		if (tq__mono_ns() < spin_until) {
			/* Look about once a microsecond, not continuously: every
			 * look pulls the producers' cache lines over, and their
			 * next publishing CAS then waits for them to come back.
			 * Looking less often lets a few tasks gather and go in
			 * one pass. */
			uint64_t now = tq__mono_ns(), next = now + POLL_NS;
			int64_t until = min_deadline((int64_t)spin_until, (int64_t)(now + NAP_NS));

			/* A long spin still promotes delayed tasks when due,
			 * ends at the deadline, and sees new queues. */
			until = min_deadline(until, deadline);
			if (tq__load_rlx(&t->hdr->delayed))
				until = min_deadline(until, tq__delay_next_ns(t));
			while (!any_ready(&c) && (int64_t)tq__mono_ns() < until) {
				while (tq__mono_ns() < next)
					for (int i = 0; i < 8; i++)
						tq__cpu_relax();
				next += POLL_NS;
			}
			if (!opts->nqueues) {
				all_queues(t);
				c.nq = t->nallq;
			}
			c.now = tq__now_ns();
			continue;
		}
		if (spin_until > 1 && !opts->spin_us)
			t->spin_ok = false;         /* the spin found nothing */
		spin_until = 0;

		/* Sleep: register on every queue's word, then look once more. */
		for (uint32_t k = 0; k < c.nq; k++) {
			struct tq__queue *qu = tq__queue(t, c.qs[k]);
			tq__store(&t->proc->sleeping[c.qs[k] / 64],
				  tq__load_rlx(&t->proc->sleeping[c.qs[k] / 64]) | 1ull << (c.qs[k] % 64));
			seqs[k] = tq__waitq_enter(&qu->ready);
			words[k] = &qu->ready.seq;
		}
		tq__fence();
		e = 0;
		n = c.nq ? take(&c, out, max) : 0;
		if (n == 0) {
			wake_at = (int64_t)(tq__mono_ns() + NAP_NS);
			if (tq__load_rlx(&t->hdr->delayed))
				wake_at = min_deadline(wake_at, tq__delay_next_ns(t));
			wake_at = min_deadline(wake_at, deadline);
			if (c.nq)
				e = tq__futex_waitv(words, seqs, c.nq, wake_at);
			else
				e = tq__futex_wait(&t->hdr->space.seq, tq__load(&t->hdr->space.seq), wake_at);
		}
		for (uint32_t k = 0; k < c.nq; k++) {
			tq__waitq_leave(&tq__queue(t, c.qs[k])->ready);
			tq__store(&t->proc->sleeping[c.qs[k] / 64],
				  tq__load_rlx(&t->proc->sleeping[c.qs[k] / 64]) & ~(1ull << (c.qs[k] % 64)));
		}
		slept = true;
		/* Stamp what comes next (lease deadlines, wait times) with
		 * the time after the sleep, not before it. */
		c.now = tq__now_ns();
		if (n > 0)
			t->last_take_ns = c.now;
		if (n != 0)
			return n;
		if (e == -EINTR)
			return tq__fail(t, -EINTR, "interrupted by a signal");
		if (!opts->nqueues) {
			/* Queues may have been declared meanwhile. */
			all_queues(t);
			c.nq = t->nallq;
		}
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * submit.c - accepting tasks: the handle's cache of reserved free slots,
 * tq_submit() and tq_submit_batch(), and waiting for room (backpressure).
 *
 * A producer takes free slots from the shared bitmap up to 32 at a time,
 * claims each one (state FREE -> RESERVED(token)) after naming it in its
 * held list, fills it, and publishes it with one CAS into the ready ring of
 * its (queue, level). A task is accepted once that CAS has happened; the
 * held entry is dropped after it, so a producer that dies in between leaves
 * a task that is both published and named, which recovery reads as
 * published (docs/protocols.md, "publish").
 */
#include <string.h>

#include "ring.h"

#define SPACE_NAP_MS 100

/*
 * Fill the empty cache with up to 32 reserved free slots of one bitmap
 * word. They are named in the process record (res_word, res_mask) before
 * any is claimed, as a held entry would name each (I2); a slot leaves the
 * mask once it has reached its next owner (tq__slot_unname()). The cache
 * is empty, so every slot named before has: the mask is 0 here.
 */
int tq__slot_refill(tq *t)
{
	struct tq__slot *const slots = t->slots;
	uint32_t got[TQ__CACHE_MAX];
	const unsigned want = TQ__CACHE_MAX;
	uint64_t mask = 0, lost = 0;
	unsigned n, nc;

	tq__slot_flush(t);             /* our own frees first */
	/* A submit may need held entries of its own: a ring chunk, a
	 * payload block. */
	if (t->nheld_free < 2)
		return -ENOBUFS;
	/* Take from a window of the first 16 Ki slots, next time from the
	 * next word: a slot comes back to the producer long after the worker
	 * that freed it touched it, when its cache lines have settled,
	 * instead of pulling them dirty from the other core on every task. */
	n = 0;
	if (t->window_skip) {
		t->window_skip--;
	} else {
		uint32_t win = TQ__SLOT_WINDOW * 64u;

		if (win > t->lay.capacity)
			win = t->lay.capacity;
		if (t->slot_cursor >= TQ__SLOT_WINDOW)
			t->slot_cursor = 0;
		n = tq__pool_take(tq__slot_bits(t), win, &t->slot_cursor, want, got);
		if (n && ++t->slot_cursor >= TQ__SLOT_WINDOW)
			t->slot_cursor = 0;
		/* Full (a deep queue holds it): look past it, and at it
		 * again only every 8th refill, or every refill would scan
		 * its 256 full words. */
		if (!n)
			t->window_skip = 8;
	}
	if (!n) {
		/* Past the window: where a worker last freed slots (their
		 * pages are mapped and their lines recently touched, where
		 * untouched slots would cost a page fault each 32), else on
		 * from where the last such take was. */
		uint64_t hint = tq__load_rlx(&t->hdr->free_hint);

		if (hint >= TQ__SLOT_WINDOW && hint < tq__bitmap_words(t->lay.capacity))
			t->slot_far = (uint32_t)hint;
		n = tq__pool_take(tq__slot_bits(t), t->lay.capacity, &t->slot_far, want, got);
		if (t->slot_far < TQ__SLOT_WINDOW)
			t->slot_far = TQ__SLOT_WINDOW;
	}
	if (!n)
		return -EAGAIN;
	if (__builtin_expect(t->res_mask != 0, 0))
		return tq__fail(t, -EPROTO, "refill with reserved slots still named");
	/* Behind a deep queue these slots were last written long ago: fetch
	 * them all before the claims, whose full barriers would otherwise
	 * wait for each miss in turn. */
	for (unsigned i = 0; i < n; i++) {
		tq__slot_prefetch(t, got[i]);
		mask |= tq__slot_bit(got[i]);
	}
	tq__store(&t->proc->res_word, got[0] / 64u);
	t->res_mask = mask;
	tq__store(&t->proc->res_mask, mask);
	nc = t->ncache;
	for (unsigned i = 0; i < n; i++) {
		struct tq__slot *s = slots + got[i];
		uint32_t gen;

		/* A clear bit on a slot that is not FREE is left set
		 * for the supervisor's sweep. */
		if (!tq__cas64(&s->state, 0, t->st_reserved)) {
			lost |= tq__slot_bit(got[i]);
			continue;
		}
		gen = tq__load_rlx(&s->gen) + 1;
		if (gen == 0xffffffffu) {
			/* Its IDs are used up: retire it, bit set forever,
			 * so that no ID is ever given twice. */
			tq__store(&s->state, tq__st(TQ__K_RETIRED, 0));
			lost |= tq__slot_bit(got[i]);
			continue;
		}
		tq__store(&s->gen, gen);
		/* No payload yet: recovery must not free a stale block. */
		tq__store_rlx(&s->len, 0);
		t->cache[nc++] = (uint64_t)gen << 32 | got[i];
	}
	t->ncache = nc;
	if (lost)
		tq__slot_unname(t, lost);
	return nc ? 0 : -EAGAIN;
}

/* Put a reserved slot that was not used back into the cache. */
static void slot_unget(tq *t, uint32_t idx)
{
	t->cache[t->ncache] = (uint64_t)tq__load_rlx(&tq__slot(t, idx)->gen) << 32 | idx;
	t->ncache++;
	tq__slot_gauge(t);
}

/* Clear the bits of the slots freed since the last flush (handle.h,
 * tq__slot_release()); a handle that dies here leaves them to the
 * supervisor's sweep (docs/protocols.md, "free pool"). */
void tq__slot_flush(tq *t)
{
	if (!t->free_mask)
		return;
	__atomic_fetch_and(&tq__slot_bits(t)[t->free_word], ~t->free_mask, __ATOMIC_SEQ_CST);
	if (t->free_word >= TQ__SLOT_WINDOW && tq__load_rlx(&t->hdr->free_hint) != t->free_word)
		tq__store_rlx(&t->hdr->free_hint, t->free_word);
	tq__store(&t->proc->free_mask, 0);
	t->free_mask = 0;
	t->free_count = 0;
	tq__store_rlx(&t->proc->cached, t->ncache);
	tq__wake_space(t);
}

/* Free a slot off the hot path (cancel, forget, detach): at once. */
void tq__slot_free(tq *t, uint32_t idx)
{
	tq__store(&tq__slot(t, idx)->state, tq__st(TQ__K_FREE, 0));
	tq__slot_release(t, idx);
	tq__slot_flush(t);
}

int tq__slot_lookup_fail(tq *t, uint64_t id)
{
	uint32_t i = (uint32_t)id, gen = (uint32_t)(id >> 32);

	if (i >= t->lay.capacity || gen == 0 || gen == 0xffffffffu)
		return tq__fail(t, -ENOENT, "task %llu: no such task ID", (unsigned long long)id);
	return tq__fail(t, -ENOENT, "task %llu: finished and gone, or never existed",
			(unsigned long long)id);
}

/* Sleep until room may have been freed or the deadline passes. The caller
 * has already registered as a sleeper and read seq, then retried. */
static int nap_for_space(tq *t, uint32_t seq, int64_t deadline)
{
	int64_t nap = (int64_t)tq__mono_ns() + SPACE_NAP_MS * 1000000ll;
	int e;

	/* Cap each sleep, so a waker lost with a dead process costs at most
	 * one nap, never a wedge. */
	if (deadline >= 0 && deadline < nap)
		nap = deadline;
	e = tq__futex_wait(&t->hdr->space.seq, seq, nap);
	if (e == -ETIMEDOUT && (deadline < 0 || (uint64_t)deadline > tq__mono_ns()))
		e = 0;
	return e;
}

struct submit_ctx {
	tq *t;
	uint32_t q;
	struct tq__queue *qu;
	struct tq__counters *ctr; /* queue q's counters at level 0, this handle's stripe */
	uint32_t max_length;
	uint32_t max_attempts;
	uint32_t lease_ms;
	uint64_t not_before;
	uint64_t now;
	uint64_t *announce;      /* if set, gets the ID before the task is published */
};

/* Give back what submit_fill() took: the slot, and the queue's count. */
static int submit_undo(struct submit_ctx *c, uint32_t idx, uint32_t len, int e)
{
	tq *t = c->t;

	if (idx != TQ__NIL)
		slot_unget(t, idx);
	if (c->max_length)
		tq__add(&c->qu->count, (uint64_t)-1);
	if (e == -EAGAIN)
		return tq__fail(t, -EAGAIN, "no free %s: the segment is full",
				len > TQ__INLINE_MAX ? "slot or payload block" : "slot");
	return e;
}

/*
 * The first half of accepting a task: a reserved slot from the cache,
 * filled, not yet published (*idx, still named), its type, queue, level
 * and attempts given as its meta word. -EAGAIN when there is
 * no room right now, with nothing taken. plain (a constant): the caller
 * knows the queue has no max_length, the task is ready now and nobody
 * wants its ID announced, and writes the cache gauge itself.
 */
static inline __attribute__((always_inline)) int
submit_fill(struct submit_ctx *c, const void *payload, uint32_t len, uint64_t meta, uint64_t *id,
	    uint32_t *idx, bool plain)
{
	tq *t = c->t;
	struct tq__slot *s;
	int e;

	if (!plain && __builtin_expect(c->max_length != 0, 0)) {
		if (tq__add(&c->qu->count, 1) > c->max_length) {
			tq__add(&c->qu->count, (uint64_t)-1);
			return tq__fail(t, -EAGAIN, "queue %u holds its max_length of %u tasks", c->q,
					c->max_length);
		}
	}
	/* The ID comes from the generation this handle reserved; once the
	 * task is published a worker may finish it and the slot may be
	 * reused before we return. */
	e = tq__slot_take(t, id, !plain);
	if (!plain)
		tq__slot_gauge(t);
	if (__builtin_expect(e < 0, 0))
		return submit_undo(c, TQ__NIL, len, e);
	*idx = (uint32_t)*id;
	s = tq__slot(t, *idx);
	if (len <= TQ__INLINE_MAX) {
		/* Inline, the common case, without the call. */
		tq__copy_inline(s->data, payload, len);
		tq__store_rlx(&s->block, 0);
		tq__store_rlx(&s->len, len);
	} else if ((e = tq__payload_store(t, s, payload, len)) < 0) {
		return submit_undo(c, *idx, len, e);
	}
	tq__store_rlx(&s->meta, meta);
	tq__store_rlx(&s->lease_ms, c->lease_ms);
	tq__store_rlx(&s->submitted_ns, c->now);
	tq__store_rlx(&s->due_ns, !plain && c->not_before > c->now ? c->not_before : TQ__NO_DUE);
	if (!plain && __builtin_expect(c->announce != NULL, 0))
		tq__store(c->announce, *id);
	return 0;
}

/* Accepted: the task belongs to its ring (or the delay wheel) now. */
static inline __attribute__((always_inline)) void
submit_accepted(struct submit_ctx *c, uint32_t idx, uint32_t level, bool delayed)
{
	tq__slot_unname(c->t, tq__slot_bit(idx));
	tq__add_rlx(&c->ctr[level * TQ__STRIPES].c[TQ__C_SUBMITTED], 1);
	c->t->n_submitted++;
	if (delayed)
		tq__add_rlx(&c->ctr[level * TQ__STRIPES].c[TQ__C_SUB_DELAYED], 1);
}

/* The second half: publish a filled slot. 0 ready, 1 in the delay wheel,
 * or an error with the slot given back. */
static inline __attribute__((always_inline)) int
submit_publish(struct submit_ctx *c, uint32_t idx, uint32_t level)
{
	tq *t = c->t;
	int e = 1;

	if (__builtin_expect(c->not_before > c->now, 0)) {
		e = tq__delay_push(t, idx, c->not_before);
		if (e == 1)                                  /* due already */
			tq__store_rlx(&tq__slot(t, idx)->due_ns, TQ__NO_DUE);
	}
	if (e == 1)
		e = tq__ring_push(t, tq__ring_ready(&t->lay, c->q, level), idx, TQ__K_READY);
	else if (e == 0)
		e = 1;
	if (__builtin_expect(e < 0, 0)) {
		tq__payload_drop(t, tq__slot(t, idx));
		return submit_undo(c, idx, 0, e);
	}
	submit_accepted(c, idx, level, e == 1);
	return e;
}

/*
 * Accept one task: 0 when it is ready, 1 when it went to the delay wheel,
 * -EAGAIN when there is no room right now. The caller writes the handle's
 * figures to its process record (submit_done()).
 */
static inline __attribute__((always_inline)) int
submit_one(struct submit_ctx *c, const void *payload, uint32_t len, uint32_t level, uint32_t type,
	   uint64_t *id)
{
	uint32_t idx = TQ__NIL;
	int e;

	e = submit_fill(c, payload, len, tq__slot_meta(type, c->q, level, c->max_attempts), id, &idx,
			false);
	if (e < 0)
		return e;
	return submit_publish(c, idx, level);
}

/*
 * Accept specs[0..n) of one level, ready now (no journal, no max_length):
 * filled first, then published as one run of the ring
 * (tq__ring_push_many()). A run takes the slots of the cache and stops
 * where the cache ends, so that no more slots are held at once than a
 * single submit holds. Returns how many were accepted, in order; *err gets
 * the error that stopped it short, or 0.
 */
static unsigned submit_run(struct submit_ctx *c, const struct tq_task_spec *specs, unsigned n,
			   uint64_t *ids, int *err)
{
	tq *t = c->t;
	uint32_t idx[TQ_BATCH_MAX], level = specs[0].level;
	uint64_t idbuf[TQ_BATCH_MAX], *id = ids ? ids : idbuf, placed = 0;
	const uint64_t meta = tq__slot_meta(0, c->q, level, c->max_attempts);
	unsigned k, m, p, i;
	int e;

	/* The first may refill the cache; the run ends where the cache does. */
	e = submit_fill(c, specs[0].payload, specs[0].len, meta | (uint16_t)specs[0].type, &id[0],
			&idx[0], true);
	if (e < 0) {
		tq__slot_gauge(t);
		*err = e;
		return 0;
	}
	m = n < t->ncache + 1 ? n : t->ncache + 1;
	for (k = 1; k < m; k++) {
		const struct tq_task_spec *sp = &specs[k];

		e = submit_fill(c, sp->payload, sp->len, meta | (uint16_t)sp->type, &id[k], &idx[k],
				true);
		if (e < 0)
			break;
	}
	tq__slot_gauge(t);
	p = tq__ring_push_many(t, tq__ring_ready(&t->lay, c->q, level), idx, k, TQ__K_READY);
	/* Accepted: counted here, the rest by submit_publish(). */
	tq__add_rlx(&c->ctr[level * TQ__STRIPES].c[TQ__C_SUBMITTED], p);
	t->n_submitted += p;
	/* The run's slots are placed: no longer ours to name. When the run
	 * emptied the cache, that is every slot the mask still names. */
	if (p == k && !t->ncache) {
		tq__slot_unname(t, t->res_mask);
	} else {
		for (i = 0; i < p; i++)
			placed |= tq__slot_bit(idx[i]);
		if (placed)
			tq__slot_unname(t, placed);
	}
	for (i = p; i < k; i++) {
		int pe = submit_publish(c, idx[i], level);

		if (pe < 0) {
			/* Not accepted, and neither is anything after it. */
			for (unsigned j = i + 1; j < k; j++) {
				tq__payload_drop(t, tq__slot(t, idx[j]));
				submit_undo(c, idx[j], 0, 0);
			}
			*err = pe;
			return i;
		}
	}
	*err = e;
	return k;
}

/*
 * The journal record of a submit call: reserved before its first task is
 * published and committed before the call returns or waits for room, so a
 * checkpoint never misses a task (docs/journal.md). One record holds as
 * many of the call's tasks as fit in a quarter of a file.
 */
struct jsub {
	uint8_t *rec;
	uint64_t lsn;
	uint32_t len, used, n, cap;
};

static uint32_t jtask_size(uint32_t len)
{
	return (uint32_t)sizeof(struct tq__jtask) + tq__jalign(len);
}

static int jsub_open(tq *t, struct jsub *j, const struct tq_task_spec *specs, unsigned from,
		     unsigned n)
{
	uint64_t len = TQ__JREC_MIN, limit = t->jfile_bytes / 4;
	unsigned k = from;

	for (; k < n; k++) {
		uint64_t more = jtask_size(specs[k].len);
		if (k > from && len + more > limit)
			break;
		len += more;
	}
	j->used = TQ__JREC_MIN;
	j->n = 0;
	j->cap = k - from;
	j->len = (uint32_t)len;
	return tq__jnl_reserve(t, j->len, &j->rec, &j->lsn);
}

static void jsub_add(struct jsub *j, const struct submit_ctx *c, uint64_t id, const void *payload,
		     uint32_t len, uint32_t level, uint32_t type)
{
	struct tq__jtask jt;

	memset(&jt, 0, sizeof(jt));
	jt.id = id;
	jt.submitted_ns = c->now;
	jt.where = c->not_before > c->now ? TQ__JS_DELAYED : TQ__JS_READY;
	jt.due_ns = jt.where == TQ__JS_DELAYED ? c->not_before : 0;
	jt.queue = (uint8_t)c->q;
	jt.level = (uint8_t)level;
	jt.max_attempts = (uint8_t)c->max_attempts;
	jt.type = (uint16_t)type;
	jt.lease_ms = c->lease_ms;
	jt.len = len;
	memcpy(j->rec + j->used, &jt, sizeof(jt));
	if (len)
		memcpy(j->rec + j->used + sizeof(jt), payload, len);
	j->used += jtask_size(len);
	j->n++;
}

static void jsub_close(tq *t, struct jsub *j)
{
	if (!j->rec)
		return;
	tq__jnl_commit(t, j->rec, j->lsn, j->len, j->n ? TQ__J_TASKS : TQ__J_PAD, j->n);
	j->rec = NULL;
}

/* The handle's figure in its process record (tq_procs()), once per call. */
static void submit_done(tq *t)
{
	tq__store_rlx(&t->proc->n_submitted, t->n_submitted);
}

static void ctx_init(struct submit_ctx *c, tq *t, uint32_t q, const struct tq_submit_opts *opts)
{
	c->t = t;
	c->q = q;
	c->qu = tq__queue(t, q);
	c->ctr = tq__ctr(t, q, 0, t->stripe);
	c->max_length = tq__load_rlx(&c->qu->max_length);
	c->max_attempts = opts->max_attempts ? opts->max_attempts : tq__load_rlx(&c->qu->max_attempts);
	if (c->max_attempts < 1 || c->max_attempts > TQ_ATTEMPTS_MAX)
		c->max_attempts = 1;
	c->lease_ms = opts->lease_ms ? opts->lease_ms : tq__load_rlx(&c->qu->lease_ms);
	c->now = tq__now_ns();
	c->not_before = opts->not_before_ns;
	c->announce = NULL;
}

/*
 * Submit one task as tq_submit() does, stamped submitted_ns (if not 0 and
 * not in the future), storing its ID in *announce after
 * the slot is filled and before the task is published (schedule.c: a
 * supervisor that dies in between leaves a reserved slot the next one
 * publishes). The caller validated everything.
 */
int tq__submit_announced(tq *t, uint32_t q, const void *payload, uint32_t len, uint32_t level,
			 uint32_t type, uint32_t max_attempts, uint64_t submitted_ns,
			 uint64_t *announce, uint64_t *id)
{
	struct tq_submit_opts opts;
	struct tq_task_spec spec;
	struct submit_ctx c;
	struct jsub j;
	int e;

	memset(&opts, 0, sizeof(opts));
	opts.max_attempts = max_attempts;
	ctx_init(&c, t, q, &opts);
	c.announce = announce;
	if (submitted_ns && submitted_ns < c.now)
		c.now = submitted_ns;   /* a schedule's task says which tick it is */
	spec.payload = payload;
	spec.len = len;
	spec.level = level;
	spec.type = type;
	j.rec = NULL;
	if (t->jon && (e = jsub_open(t, &j, &spec, 0, 1)) < 0)
		return e;
	e = submit_one(&c, payload, len, level, type, id);
	if (j.rec) {
		if (e >= 0)
			jsub_add(&j, &c, *id, payload, len, level, type);
		jsub_close(t, &j);
	}
	if (e < 0)
		return e;
	submit_done(t);
	if (e == 0)
		tq__wake_ready(t, q, 1);
	return 0;
}

static int check_opts(tq *t, const struct tq_submit_opts *opts)
{
	if (opts->flags)
		return tq__fail(t, -EINVAL, "flags 0x%x: no flags are defined", opts->flags);
	if (opts->max_attempts > TQ_ATTEMPTS_MAX)
		return tq__fail(t, -EINVAL, "max_attempts %u exceeds %u", opts->max_attempts,
				TQ_ATTEMPTS_MAX);
	return 0;
}

static int check_spec(tq *t, unsigned i, const void *payload, size_t len, uint32_t level,
		      uint32_t type)
{
	if (len > t->lay.max_payload)
		return tq__fail(t, -EMSGSIZE, "task %u: payload of %zu bytes, max_payload is %u", i,
				len, t->lay.max_payload);
	if (len && !payload)
		return tq__fail(t, -EINVAL, "task %u: payload is NULL", i);
	if (level >= t->lay.levels)
		return tq__fail(t, -EINVAL, "task %u: level %u, the segment has %u", i, level,
				t->lay.levels);
	if (type > TQ_TYPE_MAX)
		return tq__fail(t, -EINVAL, "task %u: type %u exceeds %u", i, type, TQ_TYPE_MAX);
	return 0;
}

int tq_submit_batch(tq *t, int q, const struct tq_task_spec *specs, unsigned n,
		    const struct tq_submit_opts *opts, uint64_t *ids)
{
	static const struct tq_submit_opts defaults;
	struct submit_ctx c;
	struct jsub j;
	unsigned accepted = 0, ready = 0;
	bool mixed = false;             /* of more than one level */
	int64_t deadline;
	int e = 0;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!opts)
		opts = &defaults;
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	if (!specs || n < 1 || n > TQ_BATCH_MAX)
		return tq__fail(t, -EINVAL, "a batch holds 1..%u tasks, not %u", TQ_BATCH_MAX, n);
	e = check_opts(t, opts);
	if (e < 0)
		return e;
	for (unsigned i = 0; i < n; i++) {
		const struct tq_task_spec *sp = &specs[i];

		if (__builtin_expect(sp->len > t->lay.max_payload || (sp->len && !sp->payload) ||
				     sp->level >= t->lay.levels || sp->type > TQ_TYPE_MAX, 0))
			return check_spec(t, i, sp->payload, sp->len, sp->level, sp->type);
		mixed |= sp->level != specs[0].level;
	}

	ctx_init(&c, t, (uint32_t)q, opts);
	deadline = opts->timeout_ms ? tq__deadline(opts->timeout_ms) : 0;
	j.rec = NULL;

	/* The common case, without a journal, a delay or a max_length: runs
	 * of one level, each filled, then published in one go. */
	while (!t->jon && !c.max_length && c.not_before <= c.now && accepted < n) {
		unsigned k = mixed ? 1 : n - accepted, got;

		while (accepted + k < n && specs[accepted + k].level == specs[accepted].level)
			k++;
		got = submit_run(&c, &specs[accepted], k, ids ? &ids[accepted] : NULL, &e);
		accepted += got;
		ready += got;
		if (e < 0)
			break;
	}
	while (accepted < n) {
		const struct tq_task_spec *sp = &specs[accepted];
		uint64_t id = 0;
		uint32_t seq;

		if (t->jon && !j.rec && (e = jsub_open(t, &j, specs, accepted, n)) < 0)
			break;
		e = submit_one(&c, sp->payload, sp->len, sp->level, sp->type, &id);
		if (e >= 0) {
			if (ids)
				ids[accepted] = id;
			accepted++;
			ready += e == 0;
			if (j.rec) {
				jsub_add(&j, &c, id, sp->payload, sp->len, sp->level, sp->type);
				if (j.n == j.cap)
					jsub_close(t, &j);
			}
			continue;
		}
		/* The record is committed before any wait. */
		jsub_close(t, &j);
		if (e != -EAGAIN || opts->timeout_ms == 0)
			break;
		/* Full: wake workers for what is already in, then wait. */
		if (ready) {
			tq__wake_ready(t, c.q, ready);
			ready = 0;
		}
		tq__store(&t->proc->space_sleeping, 1);
		seq = tq__waitq_enter(&t->hdr->space);
		e = 0;
		if (t->jon)
			e = jsub_open(t, &j, specs, accepted, n);
		if (e == 0)
			e = submit_one(&c, sp->payload, sp->len, sp->level, sp->type, &id);
		if (e == -EAGAIN) {
			jsub_close(t, &j);
			e = nap_for_space(t, seq, deadline);
		} else if (e >= 0) {
			if (ids)
				ids[accepted] = id;
			accepted++;
			ready += e == 0;
			e = 0;
			if (j.rec) {
				jsub_add(&j, &c, id, sp->payload, sp->len, sp->level, sp->type);
				if (j.n == j.cap)
					jsub_close(t, &j);
			}
		}
		tq__waitq_leave(&t->hdr->space);
		tq__store(&t->proc->space_sleeping, 0);
		if (e < 0) {
			if (e == -ETIMEDOUT)
				tq__fail(t, e, "still full after %d ms", opts->timeout_ms);
			break;
		}
	}
	jsub_close(t, &j);
	if (ready)
		tq__wake_ready(t, c.q, ready);
	if (!accepted)
		return e;
	submit_done(t);
	if (t->jsync && (e = tq__jnl_sync_wait(t)) < 0)
		return tq__fail(t, e, "%u tasks were queued but the journal flush failed: they "
				"may not survive a power cut", accepted);
	return (int)accepted;
}

int tq_submit(tq *t, int q, const void *payload, size_t len, const struct tq_submit_opts *opts,
	      uint64_t *id)
{
	static const struct tq_submit_opts defaults;
	struct tq_task_spec spec;
	struct submit_ctx c;
	uint64_t tmp;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!opts)
		opts = &defaults;
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	/* One test for all the arguments; the checks say what is wrong. */
	if (__builtin_expect(opts->flags || opts->max_attempts > TQ_ATTEMPTS_MAX ||
			     len > t->lay.max_payload || (len && !payload) ||
			     opts->level >= t->lay.levels || opts->type > TQ_TYPE_MAX, 0)) {
		e = check_opts(t, opts);
		return e < 0 ? e : check_spec(t, 0, payload, len, opts->level, opts->type);
	}
	spec.payload = payload;
	spec.len = (uint32_t)len;
	spec.level = opts->level;
	spec.type = opts->type;
	/* With a journal, as a batch of one: the batch records it, flushes
	 * it if durability asks, and waits for room if the caller does. */
	if (t->jon)
		goto batch;
	ctx_init(&c, t, (uint32_t)q, opts);
	e = submit_one(&c, payload, (uint32_t)len, opts->level, opts->type, &tmp);
	if (__builtin_expect(e < 0, 0)) {
		if (e == -EAGAIN && opts->timeout_ms != 0)
			goto batch;
		return e;
	}
	submit_done(t);
	if (e == 0)
		tq__wake_ready(t, (uint32_t)q, 1);
	if (id)
		*id = tmp;
	return 0;

batch:
	e = tq_submit_batch(t, q, &spec, 1, opts, &tmp);
	if (e < 0)
		return e;
	if (id)
		*id = tmp;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * journal-checkpoint.c - keeping the journal bounded by what is live. A
 * checkpoint appends, at the tail, the declaration of every queue, the
 * generation of every slot and an image of every unfinished task (pending,
 * delayed, leased, dead letters alike), then flushes; every file wholly
 * before the checkpoint's start is then deleted. Producers and workers go
 * on meanwhile.
 *
 * Why that is enough (docs/journal.md, "checkpoint"): every image is
 * reserved before its slot is read, and every other change appends its
 * record after its state transition, so a change the image misses has a
 * record after the image; a submit reserves its record before publishing,
 * and the checkpoint waits for every reservation below its start to be
 * committed, so no task published before the start escapes the scan.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "handle.h"

#define WRITER_WAIT_NS  2000000000ull  /* a live writer commits within this */
#define BATCH           64u

static bool live_kind(unsigned k)
{
	return k == TQ__K_READY || k == TQ__K_DELAYED || k == TQ__K_LEASED ||
	       k == TQ__K_BUSY || k == TQ__K_DEAD;
}

/* Wait until no live handle has uncommitted journal space below lsn. */
static int wait_writers(tq *t, uint64_t lsn)
{
	uint64_t until = tq__mono_ns() + WRITER_WAIT_NS;

	for (uint32_t p = 0; p < t->lay.procs; p++) {
		struct tq__proc *rec = tq__proc_at(t, p);

		if (rec == t->proc)
			continue;
		for (;;) {
			uint64_t r = tq__load(&rec->jres), ow;

			if (!r || (r & ~1ull) >= lsn)
				break;
			ow = tq__load(&rec->owner);
			if (!ow || !tq__token_alive(t, ow & TQ__TOKEN_MASK))
				break;          /* its space stays a hole: skipped */
			if (tq__mono_ns() > until)
				return tq__fail(t, -EBUSY, "process %d holds journal space for over "
						"2 s; checkpoint abandoned", (int)(ow >> TQ__TOKEN_BITS));
			usleep(20);
		}
	}
	return 0;
}

static int put_mark(tq *t, uint16_t type, uint64_t arg, uint64_t *lsn)
{
	uint32_t len = TQ__JREC_MIN + 8;
	uint8_t *rec;
	int e = tq__jnl_reserve(t, len, &rec, lsn);

	if (e < 0)
		return e;
	memcpy(rec + TQ__JREC_MIN, &arg, 8);
	tq__jnl_commit(t, rec, *lsn, len, type, 1);
	return 0;
}

static int put_gens(tq *t)
{
	for (uint32_t first = 0; first < t->lay.capacity; first += TQ__JGENS) {
		uint32_t n = t->lay.capacity - first < TQ__JGENS ? t->lay.capacity - first : TQ__JGENS;
		uint32_t len = TQ__JREC_MIN + (uint32_t)sizeof(struct tq__jgens) + tq__jalign(4ull * n);
		struct tq__jgens g = { .first = first };
		uint8_t *rec;
		uint64_t lsn;
		bool used = false;
		int e;

		/* Slots never used (generation 0) need no record. */
		for (uint32_t i = 0; i < n && !used; i++)
			used = tq__load_rlx(&tq__slot(t, first + i)->gen) != 0;
		if (!used)
			continue;
		e = tq__jnl_reserve(t, len, &rec, &lsn);
		if (e < 0)
			return e;
		memcpy(rec + TQ__JREC_MIN, &g, sizeof(g));
		for (uint32_t i = 0; i < n; i++) {
			uint32_t gen = tq__load_rlx(&tq__slot(t, first + i)->gen);
			memcpy(rec + TQ__JREC_MIN + sizeof(g) + 4ull * i, &gen, 4);
		}
		tq__jnl_commit(t, rec, lsn, len, TQ__J_GENS, n);
	}
	return 0;
}

/* Image one task into dst; false if it changed under us (then a record
 * after ours says what became of it). */
static bool image(tq *t, uint32_t idx, uint32_t want_len, uint8_t *dst)
{
	struct tq__slot *s = tq__slot(t, idx);
	struct tq__jtask jt;
	uint32_t gen = tq__load(&s->gen), len = 0;
	uint64_t st = tq__load(&s->state);
	const void *p;
	unsigned k = tq__st_kind(st);

	if (!live_kind(k))
		return false;
	memset(&jt, 0, sizeof(jt));
	jt.id = (uint64_t)gen << 32 | idx;
	jt.submitted_ns = tq__load_rlx(&s->submitted_ns);
	jt.where = k == TQ__K_DEAD ? TQ__JS_DEAD : k == TQ__K_DELAYED ? TQ__JS_DELAYED : TQ__JS_READY;
	jt.due_ns = k == TQ__K_DELAYED ? tq__load_rlx(&s->due_ns) : 0;
	jt.queue = tq__load_rlx(&s->queue);
	jt.level = tq__load_rlx(&s->level);
	jt.attempts = tq__load_rlx(&s->attempts);
	jt.max_attempts = tq__load_rlx(&s->max_attempts);
	jt.type = tq__load_rlx(&s->type);
	jt.lease_ms = tq__load_rlx(&s->lease_ms);
	p = tq__payload_ptr(t, s, &len);
	if (!p || len != want_len)
		return false;
	jt.len = len;
	memcpy(dst, &jt, sizeof(jt));
	memcpy(dst + sizeof(jt), p, len);
	/* Still the same task, still unfinished: the copy is good. */
	return tq__load(&s->gen) == gen && live_kind(tq__st_kind(tq__load(&s->state)));
}

/* One task's image, for a task published by someone other than its
 * submitter (schedule.c): reserve before publishing, fill after. */
int tq__jnl_image_begin(tq *t, uint32_t payload_len, struct tq__jpending *p)
{
	p->want = payload_len;
	p->len = TQ__JREC_MIN + (uint32_t)sizeof(struct tq__jtask) + tq__jalign(payload_len);
	return tq__jnl_reserve(t, p->len, &p->rec, &p->lsn);
}

void tq__jnl_image_end(tq *t, struct tq__jpending *p, uint32_t idx)
{
	bool ok = image(t, idx, p->want, p->rec + TQ__JREC_MIN);

	if (ok)
		memset(p->rec + TQ__JREC_MIN + sizeof(struct tq__jtask) + p->want, 0,
		       tq__jalign(p->want) - p->want);
	else
		memset(p->rec + TQ__JREC_MIN, 0, p->len - TQ__JREC_MIN);
	tq__jnl_commit(t, p->rec, p->lsn, p->len, ok ? TQ__J_TASKS : TQ__J_PAD, ok ? 1 : 0);
}

static int put_tasks(tq *t)
{
	uint64_t limit = t->jfile_bytes / 4;
	uint32_t idx = 0, cap = t->lay.capacity;

	while (idx < cap) {
		uint32_t cand[BATCH], lens[BATCH], n = 0, used, kept = 0, len = TQ__JREC_MIN;
		uint8_t *rec;
		uint64_t lsn;
		int e;

		/* Plan a batch from the slots' current lengths ... */
		for (; idx < cap && n < BATCH; idx++) {
			struct tq__slot *s = tq__slot(t, idx);
			uint32_t l;

			if (!live_kind(tq__st_kind(tq__load_rlx(&s->state))))
				continue;
			l = tq__load_rlx(&s->len);
			if (l > t->lay.max_payload)
				continue;
			if (n && len + sizeof(struct tq__jtask) + tq__jalign(l) > limit)
				break;
			cand[n] = idx;
			lens[n] = l;
			len += (uint32_t)sizeof(struct tq__jtask) + tq__jalign(l);
			n++;
		}
		if (!n)
			break;
		/* ... reserve, and only then read the tasks. */
		e = tq__jnl_reserve(t, len, &rec, &lsn);
		if (e < 0)
			return e;
		used = TQ__JREC_MIN;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t sz = (uint32_t)sizeof(struct tq__jtask) + tq__jalign(lens[i]);

			if (image(t, cand[i], lens[i], rec + used)) {
				memset(rec + used + sizeof(struct tq__jtask) + lens[i], 0,
				       tq__jalign(lens[i]) - lens[i]);
				used += sz;
				kept++;
			}
		}
		memset(rec + used, 0, len - used);
		tq__jnl_commit(t, rec, lsn, len, kept ? TQ__J_TASKS : TQ__J_PAD, kept);
	}
	return 0;
}

static unsigned delete_before(tq *t, uint64_t from, uint64_t to)
{
	char path[TQ_PATH_MAX + 32];
	unsigned n = 0;
	int dfd;

	for (uint64_t f = from; f < to; f++) {
		if (tq__jnl_path(t->jdir, f, path, sizeof(path)) < 0)
			break;
		if (unlink(path) == 0)
			n++;
	}
	/* The deletions reach the disk with the directory. */
	dfd = open(t->jdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return n;
}

int tq__jnl_checkpoint(tq *t)
{
	struct tq__jhdr *j = &t->hdr->jnl;
	uint64_t holder = tq__load(&j->ckpt_lock), begin, lsn, old_first, new_first;
	int e;

	if (holder && holder != t->token && tq__token_alive(t, holder))
		return tq__fail(t, -EBUSY, "another handle is checkpointing");
	if (holder != t->token && !tq__cas64(&j->ckpt_lock, holder, t->token))
		return tq__fail(t, -EBUSY, "another handle is checkpointing");
	e = put_mark(t, TQ__J_CKPT_BEGIN, 0, &begin);
	if (e == 0)
		e = wait_writers(t, begin);
	for (uint32_t q = 0; e == 0 && q < t->lay.queues; q++)
		if (tq__load(&tq__queue(t, q)->state) == TQ__Q_ACTIVE)
			tq__jnl_queue(t, q);
	for (uint32_t i = 0; e == 0 && i < TQ_SCHEDULES_MAX; i++)
		if (tq__load(&t->hdr->sched[i].state) == TQ__S_ACTIVE)
			tq__jnl_sched(t, i, false);
	if (e == 0)
		e = put_gens(t);
	if (e == 0)
		e = put_tasks(t);
	if (e == 0)
		e = put_mark(t, TQ__J_CKPT_END, begin, &lsn);
	if (e == 0)
		e = tq__jnl_sync_wait(t);
	if (e < 0) {
		tq__store(&j->ckpt_lock, 0);
		return e;
	}
	old_first = tq__load(&j->first_file);
	new_first = begin / t->jfile_bytes;
	tq__store(&j->head, begin);
	if (new_first > old_first)
		tq__store(&j->first_file, new_first);
	tq__add_rlx(&j->checkpoints, 1);
	tq__store(&j->last_ckpt_tail, tq__load(&j->tail));
	e = new_first > old_first ? (int)delete_before(t, old_first, new_first) : 0;
	tq__store(&j->ckpt_lock, 0);
	return e;
}

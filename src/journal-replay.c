/* SPDX-License-Identifier: MIT */
/*
 * journal-replay.c - reading a journal directory back: validating records
 * (length, own position, CRC32C), skipping what a dead writer left unwritten
 * or a power cut tore, and restoring every unfinished task, with its ID,
 * queue, level, attempts and payload, into a fresh segment before anyone
 * can attach to it (tq_create() calls it).
 *
 * Replay reads every record of every file in LSN order. The rules that make
 * that correct with checkpoints and concurrent writers are in
 * docs/journal.md; in short, per slot the highest generation wins (a slot is
 * only reused once its task is gone), a task image or state change replaces
 * what came before, and an END is final.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring.h"

/* ------------------------------------------------------------------------
 * Scanning one file.
 */
static bool valid_at(const uint8_t *p, size_t avail, uint64_t lsn)
{
	const struct tq__jrec *r = (const struct tq__jrec *)(const void *)p;
	uint32_t len = r->len, crc;

	if (len < TQ__JREC_MIN || len % TQ__JALIGN || len > avail || r->lsn != lsn)
		return false;
	crc = tq__crc32c(0, &len, sizeof(len));
	crc = tq__crc32c(crc, p + 8, len - 8);
	return crc == r->crc;
}

static bool zero64(const uint8_t *p)
{
	uint64_t v[8], acc = 0;

	memcpy(v, p, 64);
	for (int i = 0; i < 8; i++)
		acc |= v[i];
	return acc == 0;
}

static bool zero8(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v == 0;
}

/*
 * Call fn for every good record of the file image [file, file + size) whose
 * first byte has LSN base_lsn. Bytes that hold no good record are skipped
 * 8 at a time until the next good one: zeros are space nobody wrote (a
 * writer that died, the end of the log), anything else is damage, counted
 * in rep. Never reads outside the image. fn returning < 0 stops the scan.
 */
int tq__jnl_scan(const uint8_t *file, size_t size, uint64_t base_lsn, tq__jscan_fn fn, void *ctx,
		 struct tq__jscan_report *rep)
{
	size_t pos = TQ__JPAGE, bad_from = 0;
	bool in_bad = false, dirty = false;
	int e;

	if (size < TQ__JPAGE)
		return 0;
	size -= size % TQ__JALIGN;
	while (pos + TQ__JREC_MIN <= size) {
		const struct tq__jrec *r = (const struct tq__jrec *)(const void *)(file + pos);

		if (!zero8(file + pos) && valid_at(file + pos, size - pos, base_lsn + pos)) {
			if (in_bad && dirty) {
				rep->damaged++;
				rep->dropped += pos - bad_from;
				if (!rep->damage_lsn)
					rep->damage_lsn = base_lsn + bad_from;
			}
			in_bad = false;
			rep->records++;
			e = fn ? fn(ctx, r, file + pos + TQ__JREC_MIN) : 0;
			if (e < 0)
				return e;
			pos += r->len;
			rep->end_lsn = base_lsn + pos;
			continue;
		}
		if (!in_bad) {
			in_bad = true;
			dirty = false;
			bad_from = pos;
		}
		if (!zero8(file + pos)) {
			dirty = true;
			pos += TQ__JALIGN;
			continue;
		}
		/* Unwritten space: skip it a cache line at a time. */
		pos += TQ__JALIGN;
		while (pos % 64 == 0 && pos + 64 <= size && zero64(file + pos))
			pos += 64;
	}
	if (in_bad && dirty) {
		/* A torn tail: everything after the last good record. */
		rep->damaged++;
		rep->dropped += size - bad_from;
		if (!rep->damage_lsn)
			rep->damage_lsn = base_lsn + bad_from;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The files of a directory.
 */
struct jfiles {
	uint64_t *idx;
	size_t n;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The journal files of dir, by index. 0 and no files if dir is missing. */
static int list_files(const char *dir, struct jfiles *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;

	out->idx = NULL;
	out->n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		const char *s = de->d_name;
		char *end;
		unsigned long long v;

		if (strlen(s) != 20 || strcmp(s + 16, ".tqj") != 0)
			continue;
		v = strtoull(s, &end, 16);
		if (end != s + 16)
			continue;
		if (out->n == cap) {
			uint64_t *p = realloc(out->idx, (cap ? cap * 2 : 16) * sizeof(*p));
			if (!p) {
				closedir(d);
				free(out->idx);
				return -ENOMEM;
			}
			out->idx = p;
			cap = cap ? cap * 2 : 16;
		}
		out->idx[out->n++] = v;
	}
	closedir(d);
	if (out->n)
		qsort(out->idx, out->n, sizeof(*out->idx), cmp_u64);
	return 0;
}

/* The end of the last region of fd holding data, or size if the file
 * system cannot tell (then zeros are scanned). */
static uint64_t written_end(int fd, uint64_t size)
{
	off_t pos = 0, end = 0;

	for (;;) {
		off_t d = lseek(fd, pos, SEEK_DATA), h;

		if (d < 0)
			return errno == ENXIO ? (uint64_t)end : size;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return size;
		end = h;
		if ((uint64_t)h >= size)
			return size;
		pos = h;
	}
}

/* Read and check a file's header. */
static int read_header(const char *dir, uint64_t file, struct tq__jfile *h)
{
	char path[TQ_PATH_MAX + 32];
	int fd;
	ssize_t n;

	if (tq__jnl_path(dir, file, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, h, sizeof(*h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(*h) || h->magic != TQ__JMAGIC || h->version != TQ__JVERSION ||
	    h->hdr_size != sizeof(*h) || h->file != file ||
	    h->crc != tq__crc32c(0, h, offsetof(struct tq__jfile, crc)) ||
	    h->file_bytes < (1u << 20) || h->file_bytes > (1ull << 40) || h->file_bytes % TQ__JPAGE)
		return -EPROTO;
	return 0;
}

int tq__jnl_config(const char *dir, struct tq_config *cfg)
{
	struct jfiles fl;
	struct tq__jfile h;
	int e;

	e = list_files(dir, &fl);
	if (e < 0)
		return tq__fail(NULL, e, "journal directory %s: %s", dir, tq_strerror(e));
	e = 0;
	/* The newest file with a good header speaks for the journal. */
	for (size_t i = fl.n; i-- > 0;) {
		if (read_header(dir, fl.idx[i], &h) < 0)
			continue;
		cfg->queues = h.queues;
		cfg->levels = h.levels;
		cfg->capacity = h.capacity;
		cfg->max_payload = h.max_payload;
		cfg->procs = h.procs;
		cfg->mode = h.mode;
		cfg->group = h.group;
		cfg->arena_bytes = h.arena_bytes;
		cfg->journal_file_mb = (uint32_t)(h.file_bytes >> 20);
		e = 1;
		break;
	}
	/* Files, none with a good header: the caller's layout is used, and
	 * the records, which prove themselves, are read with it. */
	if (!e && fl.n)
		e = 1;
	free(fl.idx);
	return e;
}

/* ------------------------------------------------------------------------
 * Replay state: per slot, the newest task seen there.
 */
struct rtask {
	const uint8_t *payload;
	uint64_t submitted_ns;
	uint64_t due_ns;
	uint32_t gen;            /* highest generation seen at this slot */
	uint32_t len;
	uint32_t lease_ms;
	uint16_t type;
	uint8_t where, queue, level, attempts, max_attempts;
	uint8_t live;            /* an image of generation gen, not ended */
};

struct replay {
	tq *t;
	struct rtask *slots;
	uint32_t capacity;
	uint32_t *touched;       /* slots with an entry, each once */
	uint32_t ntouched, cap_touched;
	bool nomem;
	struct tq__jqueue queues[TQ_QUEUES_MAX];
	bool have_queue[TQ_QUEUES_MAX];
	struct tq__jsched sched[TQ_SCHEDULES_MAX];
	const uint8_t *sched_payload[TQ_SCHEDULES_MAX];
	bool have_sched[TQ_SCHEDULES_MAX];
	uint64_t malformed;
};

/* Note slot idx as having an entry (first time only: gen was 0). */
static void touch(struct replay *rp, uint32_t idx)
{
	if (rp->ntouched == rp->cap_touched) {
		uint32_t cap = rp->cap_touched ? rp->cap_touched * 2 : 4096;
		uint32_t *p = realloc(rp->touched, (size_t)cap * sizeof(*p));

		if (!p) {
			rp->nomem = true;
			return;
		}
		rp->touched = p;
		rp->cap_touched = cap;
	}
	rp->touched[rp->ntouched++] = idx;
}

/* The entry for id, newer generations replacing older; NULL if id is older
 * than what the slot has seen or out of range. */
static struct rtask *entry(struct replay *rp, uint64_t id, bool *fresh)
{
	uint32_t idx = (uint32_t)id, gen = (uint32_t)(id >> 32);
	struct rtask *e;

	*fresh = false;
	if (idx >= rp->capacity || !gen)
		return NULL;
	e = &rp->slots[idx];
	if (gen < e->gen)
		return NULL;
	if (gen > e->gen) {
		if (!e->gen)
			touch(rp, idx);
		memset(e, 0, sizeof(*e));
		e->gen = gen;
		*fresh = true;
	}
	return e;
}

static void apply_tasks(struct replay *rp, const struct tq__jrec *r, const uint8_t *body)
{
	size_t off = 0, room = r->len - TQ__JREC_MIN;

	for (uint32_t i = 0; i < r->n; i++) {
		struct tq__jtask jt;
		struct rtask *e;
		bool fresh;

		if (room - off < sizeof(jt)) {
			rp->malformed++;
			return;
		}
		memcpy(&jt, body + off, sizeof(jt));
		off += sizeof(jt);
		if (jt.len > room - off) {
			rp->malformed++;
			return;
		}
		e = entry(rp, jt.id, &fresh);
		if (e && e->where != 0xff) {
			e->payload = body + off;
			e->len = jt.len;
			e->submitted_ns = jt.submitted_ns;
			e->due_ns = jt.due_ns;
			e->lease_ms = jt.lease_ms;
			e->type = jt.type;
			e->where = jt.where;
			e->queue = jt.queue;
			e->level = jt.level;
			e->attempts = jt.attempts;
			e->max_attempts = jt.max_attempts;
			e->live = 1;
		}
		off += tq__jalign(jt.len);
		if (off > room)
			off = room;
	}
}

static void apply_set(struct replay *rp, const struct tq__jrec *r, const uint8_t *body)
{
	size_t room = r->len - TQ__JREC_MIN;

	for (uint32_t i = 0; i < r->n; i++) {
		struct tq__jset js;
		struct rtask *e;
		bool fresh;

		if ((size_t)(i + 1) * sizeof(js) > room) {
			rp->malformed++;
			return;
		}
		memcpy(&js, body + (size_t)i * sizeof(js), sizeof(js));
		e = entry(rp, js.id, &fresh);
		if (!e || !e->live)
			continue;       /* its image went with an old file, or it ended */
		e->where = js.where;
		e->level = js.level;
		e->attempts = js.attempts;
		e->due_ns = js.due_ns;
	}
}

static void apply_end(struct replay *rp, const struct tq__jrec *r, const uint8_t *body)
{
	size_t room = r->len - TQ__JREC_MIN;

	for (uint32_t i = 0; i < r->n; i++) {
		uint64_t id;
		struct rtask *e;
		bool fresh;

		if ((size_t)(i + 1) * 8 > room) {
			rp->malformed++;
			return;
		}
		memcpy(&id, body + (size_t)i * 8, 8);
		e = entry(rp, id, &fresh);
		if (e) {
			e->live = 0;
			e->where = 0xff;        /* ended: no later image brings it back */
		}
	}
}

static void apply_gens(struct replay *rp, const struct tq__jrec *r, const uint8_t *body)
{
	struct tq__jgens g;
	size_t room = r->len - TQ__JREC_MIN;

	if (room < sizeof(g) || (room - sizeof(g)) / 4 < r->n) {
		rp->malformed++;
		return;
	}
	memcpy(&g, body, sizeof(g));
	for (uint32_t i = 0; i < r->n; i++) {
		uint32_t gen, idx = g.first + i;

		if (idx < g.first || idx >= rp->capacity)
			break;
		memcpy(&gen, body + sizeof(g) + (size_t)i * 4, 4);
		if (gen && gen > rp->slots[idx].gen) {
			if (!rp->slots[idx].gen)
				touch(rp, idx);
			memset(&rp->slots[idx], 0, sizeof(rp->slots[idx]));
			rp->slots[idx].gen = gen;
		}
	}
}

/* The last record of each schedule name wins; a removal forgets it. */
static void apply_sched(struct replay *rp, const struct tq__jrec *r, const uint8_t *body)
{
	struct tq__jsched js;
	size_t room = r->len - TQ__JREC_MIN;
	int at = -1, free_at = -1;

	if (room < sizeof(js)) {
		rp->malformed++;
		return;
	}
	memcpy(&js, body, sizeof(js));
	js.name[TQ_QUEUE_NAME_MAX] = 0;
	js.spec[TQ_SCHEDULE_SPEC_MAX] = 0;
	if (js.len > TQ_SCHEDULE_PAYLOAD_MAX || js.len > room - sizeof(js)) {
		rp->malformed++;
		return;
	}
	for (int i = 0; i < TQ_SCHEDULES_MAX; i++) {
		if (rp->have_sched[i] && !strcmp(rp->sched[i].name, js.name))
			at = i;
		else if (!rp->have_sched[i] && free_at < 0)
			free_at = i;
	}
	if (js.removed) {
		if (at >= 0)
			rp->have_sched[at] = false;
		return;
	}
	if (at < 0)
		at = free_at;
	if (at < 0)
		return;
	rp->sched[at] = js;
	rp->sched_payload[at] = body + sizeof(js);
	rp->have_sched[at] = true;
}

static int apply(void *ctx, const struct tq__jrec *r, const uint8_t *body)
{
	struct replay *rp = ctx;

	switch (r->type) {
	case TQ__J_TASKS:
		apply_tasks(rp, r, body);
		break;
	case TQ__J_SET:
		apply_set(rp, r, body);
		break;
	case TQ__J_END:
		apply_end(rp, r, body);
		break;
	case TQ__J_GENS:
		apply_gens(rp, r, body);
		break;
	case TQ__J_SCHED:
		apply_sched(rp, r, body);
		break;
	case TQ__J_QUEUE:
		if (r->len - TQ__JREC_MIN >= sizeof(struct tq__jqueue)) {
			struct tq__jqueue jq;

			memcpy(&jq, body, sizeof(jq));
			jq.name[TQ_QUEUE_NAME_MAX] = 0;
			if (jq.index < TQ_QUEUES_MAX) {
				rp->queues[jq.index] = jq;
				rp->have_queue[jq.index] = true;
			}
		} else {
			rp->malformed++;
		}
		break;
	default:
		break;                  /* PAD, checkpoint marks, unknown: nothing to do */
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Restoring the tasks.
 */
static struct replay *sort_rp;

static int cmp_task(const void *a, const void *b)
{
	const struct rtask *x = &sort_rp->slots[*(const uint32_t *)a];
	const struct rtask *y = &sort_rp->slots[*(const uint32_t *)b];

	if (x->submitted_ns != y->submitted_ns)
		return x->submitted_ns < y->submitted_ns ? -1 : 1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static int restore_task(tq *t, uint32_t idx, const struct rtask *e)
{
	struct tq__slot *s = tq__slot(t, idx);
	struct tq__queue *qu = tq__queue(t, e->queue);
	uint64_t *bits = tq__slot_bits(t);
	int r;

	if (e->queue >= t->lay.queues || tq__load(&qu->state) != TQ__Q_ACTIVE ||
	    e->level >= t->lay.levels || e->len > t->lay.max_payload ||
	    e->where < TQ__JS_READY || e->where > TQ__JS_DEAD)
		return -EPROTO;
	tq__store_rlx(&s->gen, e->gen);
	r = tq__payload_store(t, s, e->payload, e->len);
	if (r < 0)
		return r;
	tq__store_rlx(&s->type, e->type);
	tq__store_rlx(&s->queue, e->queue);
	tq__store_rlx(&s->level, e->level);
	tq__store_rlx(&s->attempts, e->attempts);
	tq__store_rlx(&s->max_attempts, e->max_attempts ? e->max_attempts : 1);
	tq__store_rlx(&s->lease_ms, e->lease_ms ? e->lease_ms : 30000);
	tq__store_rlx(&s->submitted_ns, e->submitted_ns);
	tq__store(&s->state, t->st_reserved);
	__atomic_or_fetch(&bits[idx / 64], 1ull << (idx % 64), __ATOMIC_SEQ_CST);
	if (e->where == TQ__JS_DEAD)
		return tq__ring_push(t, tq__ring_dead(&t->lay, e->queue), idx, TQ__K_DEAD);
	if (tq__load_rlx(&qu->max_length))
		tq__add(&qu->count, 1);
	if (e->where == TQ__JS_DELAYED && e->due_ns) {
		tq__store_rlx(&s->due_ns, e->due_ns);
		r = tq__delay_push(t, idx, e->due_ns);
		if (r == 0) {
			tq__count(t, e->queue, e->level, TQ__C_DELAY_IN, 1);
			return 0;
		}
		if (r < 0)
			return r;
	}
	return tq__publish_ready(t, idx, e->queue, e->level);
}

/* Fault in, in one call each, the parts of the fresh segment restoring
 * will write (slots up to the highest named, ring cells): page faults one
 * by one cost several times more on virtual machines. */
static void populate(tq *t, struct replay *rp)
{
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
	uint32_t top = 0;
	uintptr_t page = 4096, a, b;

	for (uint32_t k = 0; k < rp->ntouched; k++)
		if (rp->touched[k] > top)
			top = rp->touched[k];
	if (!rp->ntouched)
		return;
	a = (uintptr_t)tq__slot(t, 0) & ~(page - 1);
	b = (uintptr_t)(tq__slot(t, top) + 1);
	madvise((void *)a, b - a, MADV_POPULATE_WRITE);
	a = (uintptr_t)(t->base + t->lay.off_cells) & ~(page - 1);
	b = (uintptr_t)(t->base + t->lay.off_cells) +
	    ((uint64_t)rp->ntouched / TQ__CHUNK_CELLS + 2 * t->lay.nrings) * TQ__CHUNK_CELLS * 8;
	if (b > (uintptr_t)(t->base + t->lay.off_slot_bits))
		b = (uintptr_t)(t->base + t->lay.off_slot_bits);
	madvise((void *)a, b - a, MADV_POPULATE_WRITE);
}

static int restore(tq *t, struct replay *rp, uint64_t *restored, uint64_t *lost)
{
	uint32_t *order, n = 0;
	int r;

	for (uint32_t q = 0; q < TQ_QUEUES_MAX && q < t->lay.queues; q++) {
		if (!rp->have_queue[q])
			continue;
		r = tq__queue_restore(t, q, rp->queues[q].name, &rp->queues[q].qc,
				      rp->queues[q].paused != 0);
		if (r < 0)
			return tq__fail(t, r, "restoring queue %u \"%s\": %s", q, rp->queues[q].name,
					tq_strerror(r));
	}
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX; i++) {
		/* A schedule whose queue or spec is no longer valid is
		 * dropped with the others lost (counted). */
		if (rp->have_sched[i] &&
		    tq__sched_restore(t, &rp->sched[i], rp->sched_payload[i]) < 0)
			(*lost)++;
	}
	if (rp->nomem)
		return tq__fail(t, -ENOMEM, "no memory to replay");
	order = malloc(((size_t)rp->ntouched + 1) * sizeof(*order));
	if (!order)
		return tq__fail(t, -ENOMEM, "no memory to order %u slots", rp->ntouched);
	populate(t, rp);
	for (uint32_t k = 0; k < rp->ntouched; k++) {
		uint32_t i = rp->touched[k];

		tq__store_rlx(&tq__slot(t, i)->gen, rp->slots[i].gen);
		/* A task whose queue's record was lost keeps its queue index,
		 * under a name that says so, with default settings: better
		 * found by an operator than lost. */
		if (rp->slots[i].live && rp->slots[i].queue < t->lay.queues &&
		    !rp->have_queue[rp->slots[i].queue]) {
			char name[32];
			uint32_t q = rp->slots[i].queue;

			snprintf(name, sizeof(name), "recovered-%u", q);
			if (tq__queue_restore(t, q, name, NULL, false) == 0) {
				rp->have_queue[q] = true;
				rp->malformed++;        /* reported as damage */
			}
		}
		if (rp->slots[i].live)
			order[n++] = i;
	}
	/* Journal order is mostly submit order: sort only if it is not. */
	sort_rp = rp;
	for (uint32_t k = 1; k < n; k++)
		if (cmp_task(&order[k - 1], &order[k]) > 0) {
			qsort(order, n, sizeof(*order), cmp_task);
			break;
		}
	for (uint32_t k = 0; k < n; k++) {
		r = restore_task(t, order[k], &rp->slots[order[k]]);
		if (r < 0) {
			struct tq__slot *s = tq__slot(t, order[k]);

			/* Not restorable (its queue was never recorded, or no
			 * room): counted, and the slot stays free. */
			if (tq__st_kind(tq__load(&s->state)) == TQ__K_RESERVED) {
				tq__payload_drop(t, s);
				tq__store(&s->state, tq__st(TQ__K_FREE, 0));
				tq__pool_give(tq__slot_bits(t), order[k]);
			}
			(*lost)++;
			continue;
		}
		(*restored)++;
	}
	free(order);
	return 0;
}

/*
 * Replay the segment's journal directory into this fresh segment. Files
 * stay as they are; new records go to a new file after the last one.
 */
int tq__jnl_replay(tq *t)
{
	struct tq__jhdr *j = &t->hdr->jnl;
	struct tq__jscan_report rep;
	struct replay *rp;
	struct jfiles fl;
	uint64_t t0 = tq__mono_ns(), restored = 0, lost = 0, id = 0, F = 0, last = 0;
	uint8_t **maps;
	size_t *sizes;
	int e;

	e = list_files(t->jdir, &fl);
	if (e < 0)
		return tq__fail(t, e, "listing %s: %s", t->jdir, tq_strerror(e));
	memset(&rep, 0, sizeof(rep));
	rp = calloc(1, sizeof(*rp));
	maps = calloc(fl.n ? fl.n : 1, sizeof(*maps));
	sizes = calloc(fl.n ? fl.n : 1, sizeof(*sizes));
	if (!rp || !maps || !sizes) {
		free(rp);
		free(maps);
		free(sizes);
		free(fl.idx);
		return tq__fail(t, -ENOMEM, "no memory to replay");
	}
	rp->t = t;
	rp->capacity = t->lay.capacity;
	rp->slots = calloc(rp->capacity, sizeof(*rp->slots));
	if (!rp->slots) {
		e = tq__fail(t, -ENOMEM, "no memory for %u slots", rp->capacity);
		goto out;
	}
	/* The newest good header names the journal; files of another one
	 * (left over from an older journal) are skipped. */
	for (size_t i = fl.n; i-- > 0;) {
		struct tq__jfile h;

		if (read_header(t->jdir, fl.idx[i], &h) == 0) {
			id = h.journal_id;
			F = h.file_bytes;
			break;
		}
	}
	if (!F)
		F = t->jfile_bytes;     /* no good header: as configured */
	for (size_t i = 0; i < fl.n; i++) {
		char path[TQ_PATH_MAX + 32];
		struct tq__jfile h;
		struct stat st;
		int fd;

		e = read_header(t->jdir, fl.idx[i], &h);
		if (e == 0 && (h.journal_id != id || h.file_bytes != F)) {
			/* Another journal's file, left in the directory. */
			rep.damaged++;
			if (!rep.damage_lsn)
				rep.damage_lsn = fl.idx[i] * F;
			continue;
		}
		if (e < 0) {
			/* A damaged header: its records still prove themselves
			 * (their own LSN, their CRC), so read them. */
			rep.damaged++;
			rep.dropped += TQ__JPAGE;
			if (!rep.damage_lsn)
				rep.damage_lsn = fl.idx[i] * F;
			h.hwm = 1;      /* no valid mark: read it all */
		}
		tq__jnl_path(t->jdir, fl.idx[i], path, sizeof(path));
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			if (fd >= 0)
				close(fd);
			rep.damaged++;
			continue;
		}
		/* A file cut short (a power cut while it was allocated) is
		 * read as far as it goes; space allocated but never written
		 * (a hole to SEEK_DATA) is zeros and not read at all. */
		if ((uint64_t)st.st_size > F)
			st.st_size = (off_t)F;
		st.st_size = (off_t)written_end(fd, (uint64_t)st.st_size);
		if (h.hwm == 0)         /* never written past its header */
			st.st_size = TQ__JPAGE;
		else if (tq__jhwm_mib(h.hwm) >= 0 &&
		    (uint64_t)tq__jhwm_mib(h.hwm) * TQ__JHWM < (uint64_t)st.st_size)
			st.st_size = (off_t)((uint64_t)tq__jhwm_mib(h.hwm) * TQ__JHWM);
		maps[i] = st.st_size >= (off_t)TQ__JPAGE ?
			  mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
		close(fd);
		if (maps[i] == MAP_FAILED) {
			maps[i] = NULL;
			rep.damaged++;
			continue;
		}
		sizes[i] = (size_t)st.st_size;
		madvise(maps[i], sizes[i], MADV_SEQUENTIAL);
		e = tq__jnl_scan(maps[i], (size_t)st.st_size, fl.idx[i] * F, apply, rp, &rep);
		if (e < 0)
			goto out;
		last = fl.idx[i];
	}
	/* What replay restores is in the journal already: write nothing. */
	t->jon = false;
	e = restore(t, rp, &restored, &lost);
	t->jon = true;
	if (e < 0)
		goto out;
	/* Carry on in the same journal, in a new file after the last. */
	if (fl.n) {
		if (id)
			j->journal_id = id;
		j->file_bytes = F;
		t->jfile_bytes = F;
		j->first_file = fl.idx[0];
		j->head = j->first_file * F + TQ__JPAGE;
		j->tail = (last + 1) * F + TQ__JPAGE;
		j->start_tail = j->tail;
		j->durable = j->tail;
		j->prepared = last;
	}
	j->replay[0] = rep.records;
	j->replay[1] = restored;
	j->replay[2] = tq__mono_ns() - t0;
	j->replay[3] = rep.damaged + rp->malformed;
	j->replay[4] = rep.dropped;
	j->replay[5] = rep.damage_lsn;
	j->replay[6] = lost;
	e = 0;
out:
	for (size_t i = 0; i < fl.n; i++)
		if (maps[i])
			munmap(maps[i], sizes[i]);
	free(maps);
	free(sizes);
	free(fl.idx);
	free(rp->slots);
	free(rp->touched);
	free(rp);
	return e;
}

/* SPDX-License-Identifier: MIT */
/*
 * journal.c - the journal's files and its write path: every process maps
 * the files it appends to, reserves space with one CAS on the shared tail,
 * writes its record in place and commits it by storing the record's first
 * word last. Flushing is group commit: one process at a time runs
 * fdatasync for everyone whose records were committed before it began, the
 * others sleep on a futex word until a flush that began after their commit
 * is done. Also tq_journal_info(), tq_journal_flush() and
 * tq_journal_maintain() (the supervisor's periodic part).
 *
 * Order (docs/journal.md): a submit reserves its record before it
 * publishes the task and commits it after; every other change makes its
 * state transition first and then appends its record. A checkpoint relies
 * on both.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "handle.h"

#define FLUSH_NAP_NS 10000000    /* waiters re-check at least this often */
#define PREPARE_AHEAD 2          /* supervisor keeps files this far ahead */
#define COMMIT_DELAY_NS 200000   /* a flush waits this long at most for writers */

static inline uint64_t file_of(tq *t, uint64_t lsn) { return lsn / t->jfile_bytes; }

int tq__jnl_path(const char *dir, uint64_t file, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%016llx.tqj", dir, (unsigned long long)file);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void jfile_header(tq *t, struct tq__jfile *f, uint64_t file)
{
	memset(f, 0, sizeof(*f));
	f->magic = TQ__JMAGIC;
	f->version = TQ__JVERSION;
	f->hdr_size = sizeof(*f);
	f->journal_id = tq__load_rlx(&t->hdr->jnl.journal_id);
	f->file = file;
	f->file_bytes = t->jfile_bytes;
	f->queues = t->lay.queues;
	f->levels = t->lay.levels;
	f->capacity = t->lay.capacity;
	f->max_payload = t->lay.max_payload;
	f->procs = t->lay.procs;
	f->mode = t->hdr->mode;
	f->group = t->hdr->group;
	f->arena_bytes = t->hdr->arena_bytes;
	f->crc = tq__crc32c(0, f, offsetof(struct tq__jfile, crc));
}

/*
 * Map journal file `file`, creating it (0600, allocated in full so a
 * full disk shows here as ENOSPC and never later as SIGBUS) when `create`.
 * Several processes may create the same file at once: each allocates and
 * writes the same header, which is harmless.
 */
int tq__jnl_map(tq *t, uint64_t file, bool create, uint8_t **base)
{
	char path[TQ_PATH_MAX + 32];
	struct tq__jfile hdr;
	struct tq__jmap *m;
	struct stat st;
	uint8_t *p;
	int fd, e;

	for (unsigned i = 0; i < TQ__JMAPS; i++)
		if (t->jmap[i].base && t->jmap[i].file == file) {
			*base = t->jmap[i].base;
			return 0;
		}
	if (file < tq__load(&t->hdr->jnl.first_file))
		return tq__fail(t, -ESTALE, "journal file %llu was checkpointed away",
				(unsigned long long)file);
	e = tq__jnl_path(t->jdir, file, path, sizeof(path));
	if (e < 0)
		return tq__fail(t, e, "journal path too long");
	fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return tq__fail(t, -errno, "journal %s: %s", path, tq_strerror(-errno));
	if (fstat(fd, &st) < 0) {
		e = -errno;
		goto fail;
	}
	if ((uint64_t)st.st_size < t->jfile_bytes) {
		if (!create) {
			e = -EPROTO;
			goto fail;
		}
		e = -posix_fallocate(fd, 0, (off_t)t->jfile_bytes);
		if (e < 0)
			goto fail;
	}
	p = mmap(NULL, t->jfile_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		e = -errno;
		goto fail;
	}
	jfile_header(t, &hdr, file);
	if (memcmp(p, &hdr, offsetof(struct tq__jfile, hwm)) != 0) {
		if (((struct tq__jfile *)(void *)p)->magic == TQ__JMAGIC &&
		    ((struct tq__jfile *)(void *)p)->journal_id != hdr.journal_id) {
			munmap(p, t->jfile_bytes);
			e = -EPROTO;
			goto fail;
		}
		memcpy(p, &hdr, offsetof(struct tq__jfile, hwm));
	}
	m = &t->jmap[t->jmap_next++ % TQ__JMAPS];
	if (m->base)
		munmap(m->base, t->jfile_bytes);
	if (m->fd >= 0)
		close(m->fd);
	m->file = file;
	m->base = p;
	m->fd = fd;
	m->hwm = 0;
	*base = p;
	return 0;
fail:
	close(fd);
	return tq__fail(t, e, "journal %s: %s", path, tq_strerror(e));
}

/* The handle's cache entry of a mapping tq__jnl_map() returned. */
static struct tq__jmap *map_of(tq *t, const uint8_t *base)
{
	for (unsigned i = 0; i < TQ__JMAPS; i++)
		if (t->jmap[i].base == base)
			return &t->jmap[i];
	return NULL;
}

static int map_fd(tq *t, uint64_t file)
{
	struct tq__jmap *m;
	uint8_t *base;

	if (tq__jnl_map(t, file, false, &base) < 0 || !(m = map_of(t, base)))
		return -1;
	return m->fd;
}

void tq__jnl_close(tq *t)
{
	free(t->jbuf);
	t->jbuf = NULL;
	t->jbuf_size = 0;
	for (unsigned i = 0; i < TQ__JMAPS; i++) {
		if (t->jmap[i].base)
			munmap(t->jmap[i].base, t->jfile_bytes);
		t->jmap[i].base = NULL;
		if (t->jmap[i].fd >= 0)
			close(t->jmap[i].fd);
		t->jmap[i].fd = -1;
	}
}

/* Make the file's high-water mark cover `end` before the record there is
 * committed; one shared write per TQ__JHWM bytes of the file. */
static void raise_hwm(tq *t, uint8_t *base, uint64_t end)
{
	struct tq__jfile *h = (struct tq__jfile *)(void *)base;
	struct tq__jmap *m = map_of(t, base);
	uint64_t cur, want;

	if (m && end <= m->hwm)
		return;
	want = (end + TQ__JHWM - 1) / TQ__JHWM;
	for (;;) {
		uint64_t w = tq__load(&h->hwm);
		int64_t mib = tq__jhwm_mib(w);

		cur = mib < 0 ? 0 : (uint64_t)mib;
		if ((w && mib < 0) || cur >= want ||
		    tq__cas64(&h->hwm, w, tq__jhwm_word((uint32_t)want)))
			break;
	}
	if (m)
		m->hwm = (cur > want ? cur : want) * TQ__JHWM;
}

/*
 * Reserve len bytes (a multiple of 8, at most a file's room) at the tail.
 * The process record says space is reserved (jres) before the CAS, so a
 * checkpoint that starts after sees it and waits for the commit. On
 * failure (no file, no space) the space stays zero: readers skip it.
 */
int tq__jnl_reserve(tq *t, uint32_t len, uint8_t **rec, uint64_t *lsn)
{
	struct tq__jhdr *j = &t->hdr->jnl;
	uint64_t cur, at, F = t->jfile_bytes;
	uint8_t *base;
	int e;

	if (len > F - TQ__JPAGE)
		return tq__fail(t, -EMSGSIZE, "journal record of %u bytes exceeds a file", len);
	__atomic_store_n(&t->proc->jres, tq__load(&j->tail) | 1, __ATOMIC_SEQ_CST);
	for (;;) {
		cur = tq__load(&j->tail);
		at = cur;
		if (cur % F < TQ__JPAGE)          /* a record ended a file exactly */
			at = cur - cur % F + TQ__JPAGE;
		else if (cur % F + len > F)
			at = (cur / F + 1) * F + TQ__JPAGE;
		if (tq__cas64(&j->tail, cur, at + len))
			break;
	}
	tq__store(&t->proc->jres, at);
	e = tq__jnl_map(t, at / F, true, &base);
	if (e == 0 && len > t->jbuf_size) {
		uint32_t size = len < 65536 ? 65536 : len;
		uint8_t *p = realloc(t->jbuf, size);

		if (p) {
			t->jbuf = p;
			t->jbuf_size = size;
		} else {
			e = tq__fail(t, -ENOMEM, "no memory for a journal record of %u bytes", len);
		}
	}
	if (e < 0) {
		tq__add_rlx(&j->errors, 1);
		tq__store(&t->proc->jres, 0);
		return e;
	}
	raise_hwm(t, base, at % F + len);
	t->jrec_fd = map_of(t, base)->fd;
	memset(t->jbuf, 0, len);
	*rec = t->jbuf;
	*lsn = at;
	return 0;
}

/*
 * Seal a reserved record (built in the handle's buffer) and write it to its
 * place with one pwrite: no page of the file is ever mapped for writing by
 * a writer, so processes do not each fault on every page of the journal. A
 * writer killed mid-write leaves a record that fails its CRC.
 */
void tq__jnl_commit(tq *t, uint8_t *rec, uint64_t lsn, uint32_t len, uint16_t type, uint32_t n)
{
	struct tq__jrec *r = (struct tq__jrec *)(void *)rec;
	uint64_t off = lsn % t->jfile_bytes;
	uint32_t crc, done = 0;

	r->lsn = lsn;
	r->type = type;
	r->pad = 0;
	r->n = n;
	r->len = len;
	crc = tq__crc32c(0, &len, sizeof(len));
	crc = tq__crc32c(crc, rec + 8, len - 8);
	r->crc = crc;
	while (done < len) {
		ssize_t w = pwrite(t->jrec_fd, rec + done, len - done, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			tq__add_rlx(&t->hdr->jnl.errors, 1);
			break;
		}
		done += (uint32_t)w;
	}
	tq__store(&t->proc->jres, 0);
	tq__add_rlx(&t->hdr->jnl.records, 1);
}

/* One flush for everyone committed before it began; the caller holds the
 * flush lock. */
/* Whether another handle is between reserving and committing a record. */
static bool writers_in_flight(tq *t)
{
	for (uint32_t p = 0; p < t->lay.procs; p++) {
		struct tq__proc *rec = tq__proc_at(t, p);

		if (rec != t->proc && tq__load_rlx(&rec->jres) && tq__load_rlx(&rec->owner))
			return true;
	}
	return false;
}

static int flush_locked(tq *t)
{
	struct tq__jhdr *j = &t->hdr->jnl;
	uint64_t s, tail;

	/* Group commit: records being written now will want this flush too;
	 * give them a moment to commit (at most COMMIT_DELAY_NS), as
	 * PostgreSQL's commit_delay does. One flush then serves them all. */
	for (uint64_t until = tq__mono_ns() + COMMIT_DELAY_NS;
	     writers_in_flight(t) && tq__mono_ns() < until;) {
		struct timespec nap = { 0, 20000 };

		nanosleep(&nap, NULL);
	}
	s = tq__add(&j->flush_started, 1);
	tail = tq__load(&j->tail);
	uint64_t from = file_of(t, tq__load(&j->durable)), to = file_of(t, tail), first;
	int e = 0;

	first = tq__load(&j->first_file);
	if (from < first)
		from = first;
	for (uint64_t f = from; f <= to; f++) {
		int fd = map_fd(t, f);

		if (fd < 0 || fdatasync(fd) < 0) {
			if (fd >= 0 || f >= first)
				e = -EIO;
		}
	}
	if (e < 0)
		tq__add_rlx(&j->errors, 1);
	else
		tq__store(&j->durable, tail);
	tq__add_rlx(&j->flushes, 1);
	tq__store_rlx(&j->last_flush_ns, tq_now_ns());
	tq__store(&j->flush_done, (uint32_t)s);
	tq__store(&j->flush_lock, 0);
	tq__fence();
	if (tq__load(&j->flush_waiters))
		tq__futex_wake(&j->flush_done, 1 << 30);
	return e;
}

/*
 * Return once a flush that began after this call began is complete:
 * everything this handle committed before the call is on disk. Concurrent
 * callers share flushes (group commit); the flusher's death is noticed by
 * its token, and every sleep is bounded.
 */
int tq__jnl_sync_wait(tq *t)
{
	struct tq__jhdr *j = &t->hdr->jnl;
	uint32_t want = (uint32_t)tq__load(&j->flush_started) + 1;
	int e = 0;

	for (;;) {
		uint32_t done = tq__load(&j->flush_done);
		uint64_t holder;

		if ((int32_t)(done - want) >= 0)
			return e;
		holder = tq__load(&j->flush_lock);
		if (!holder) {
			if (tq__cas64(&j->flush_lock, 0, t->token))
				e = flush_locked(t);
			continue;
		}
		if (!tq__token_alive(t, holder)) {
			tq__cas64(&j->flush_lock, holder, 0);
			continue;
		}
		tq__add(&j->flush_waiters, 1);
		if ((int32_t)(tq__load(&j->flush_done) - want) < 0)
			tq__futex_wait(&j->flush_done, done,
				       (int64_t)(tq__mono_ns() + FLUSH_NAP_NS));
		tq__add(&j->flush_waiters, (uint32_t)-1);
	}
}

static void put_set(uint8_t *body, uint64_t id, unsigned where, unsigned level,
		    unsigned attempts, uint64_t due_ns)
{
	struct tq__jset s;

	memset(&s, 0, sizeof(s));
	s.id = id;
	s.due_ns = due_ns;
	s.where = (uint8_t)where;
	s.level = (uint8_t)level;
	s.attempts = (uint8_t)attempts;
	memcpy(body, &s, sizeof(s));
}

/* A task's new place: appended after the transition that decided it. */
void tq__jnl_set(tq *t, uint64_t id, unsigned where, unsigned level, unsigned attempts,
		 uint64_t due_ns)
{
	uint32_t len = TQ__JREC_MIN + (uint32_t)sizeof(struct tq__jset);
	uint8_t *rec;
	uint64_t lsn;

	if (tq__jnl_reserve(t, len, &rec, &lsn) < 0)
		return;
	put_set(rec + TQ__JREC_MIN, id, where, level, attempts, due_ns);
	tq__jnl_commit(t, rec, lsn, len, TQ__J_SET, 1);
}

/* Write the handle's gathered END IDs as one record. */
void tq__jnl_end_flush(tq *t)
{
	uint32_t n = t->jend_n, len = TQ__JREC_MIN + 8 * n;
	uint8_t *rec;
	uint64_t lsn;

	if (!n)
		return;
	t->jend_n = 0;
	if (tq__jnl_reserve(t, len, &rec, &lsn) < 0)
		return;
	memcpy(rec + TQ__JREC_MIN, t->jend, 8ull * n);
	tq__jnl_commit(t, rec, lsn, len, TQ__J_END, n);
}

/*
 * A task finished for good (acked, cancelled, forgotten). A worker acks
 * one task at a time; its END records are gathered and written together
 * (TQ__JEND_MAX of them, before tq_lease() sleeps, after flush_ms, at
 * detach). An END that never reaches the disk only means the task runs
 * again after a power cut: tasks are delivered at least once.
 */
void tq__jnl_end(tq *t, uint64_t id)
{
	if (!t->jend_n)
		t->jend_t0 = tq__mono_ns();
	t->jend[t->jend_n++] = id;
	if (t->jend_n == TQ__JEND_MAX)
		tq__jnl_end_flush(t);
}

/* Called as the handle leases: ENDs older than flush_ms go out. */
void tq__jnl_end_due(tq *t)
{
	if (t->jend_n && tq__mono_ns() - t->jend_t0 >=
	    (uint64_t)tq__load_rlx(&t->hdr->jnl.flush_ms) * 1000000u)
		tq__jnl_end_flush(t);
}

void tq__jnl_queue(tq *t, uint32_t q)
{
	uint32_t len = TQ__JREC_MIN + tq__jalign(sizeof(struct tq__jqueue));
	struct tq__queue *qu = tq__queue(t, q);
	struct tq__jqueue jq;
	uint8_t *rec;
	uint64_t lsn;

	memset(&jq, 0, sizeof(jq));
	jq.index = q;
	jq.paused = tq__load(&qu->paused);
	memcpy(jq.name, qu->name, sizeof(jq.name) - 1);
	tq__queue_config_of(t, q, &jq.qc);
	if (tq__jnl_reserve(t, len, &rec, &lsn) < 0)
		return;
	memcpy(rec + TQ__JREC_MIN, &jq, sizeof(jq));
	tq__jnl_commit(t, rec, lsn, len, TQ__J_QUEUE, 1);
}

/* ------------------------------------------------------------------------
 * Setting up: at creation (fresh) the header words; at every attach the
 * handle's copy of them.
 */
static int mkdir_p(const char *dir)
{
	char buf[TQ_PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		buf[i] = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = dir[i];
	}
	return 0;
}

static uint64_t random_id(void)
{
	uint64_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			v = 0;
		close(fd);
	}
	return v ? v : tq_now_ns() ^ ((uint64_t)getpid() << 32);
}

int tq__jnl_setup(tq *t, const struct tq_config *cfg, bool fresh)
{
	struct tq__jhdr *j = &t->hdr->jnl;

	for (unsigned i = 0; i < TQ__JMAPS; i++) {
		t->jmap[i].fd = -1;
		t->jmap[i].base = NULL;
		t->jmap[i].file = UINT64_MAX;
	}
	if (fresh) {
		int e;

		if (!cfg->journal_dir[0] || cfg->durability == TQ_DURABILITY_NONE)
			return 0;
		e = mkdir_p(cfg->journal_dir);
		if (e < 0)
			return tq__fail(NULL, e, "journal directory %s: %s", cfg->journal_dir,
					tq_strerror(e));
		memcpy(j->dir, cfg->journal_dir, sizeof(j->dir));
		j->dir[sizeof(j->dir) - 1] = 0;
		j->durability = cfg->durability;
		j->flush_ms = cfg->flush_ms;
		j->file_bytes = (uint64_t)cfg->journal_file_mb << 20;
		j->journal_id = random_id();
		j->tail = TQ__JPAGE;
		j->start_tail = TQ__JPAGE;
	}
	if (!j->dir[0])
		return 0;
	if (j->durability > TQ_DURABILITY_SYNC || !memchr(j->dir, 0, sizeof(j->dir)) ||
	    !j->dir[0] || j->file_bytes < (1u << 20) || j->file_bytes > (1ull << 40) ||
	    j->file_bytes % TQ__JPAGE)
		return tq__fail(NULL, -EPROTO, "the segment's journal settings are invalid");
	memcpy(t->jdir, j->dir, sizeof(t->jdir));
	t->jfile_bytes = j->file_bytes;
	t->jsync = j->durability == TQ_DURABILITY_SYNC;
	t->jon = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * Public calls.
 */
int tq_journal_info(tq *t, struct tq_journal_info *ji)
{
	struct tq__jhdr *j;
	struct tq_journal_info in;
	uint64_t first, tail;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!ji)
		return tq__fail(t, -EINVAL, "ji is NULL");
	memset(&in, 0, sizeof(in));
	in.durability = TQ_DURABILITY_NONE;
	if (!t->jon) {
		*ji = in;
		return 0;
	}
	j = &t->hdr->jnl;
	in.durability = tq__load_rlx(&j->durability);
	in.flush_ms = tq__load_rlx(&j->flush_ms);
	in.file_bytes = t->jfile_bytes;
	first = tq__load_rlx(&j->first_file);
	tail = tq__load_rlx(&j->tail);
	in.first_file = first;
	in.files = file_of(t, tail) >= first ? file_of(t, tail) - first + 1 : 0;
	in.head_lsn = tq__load_rlx(&j->head);
	in.tail_lsn = tail;
	in.durable_lsn = tq__load_rlx(&j->durable);
	in.records = tq__load_rlx(&j->records);
	in.bytes = tail - tq__load_rlx(&j->start_tail);
	in.flushes = tq__load_rlx(&j->flushes);
	in.checkpoints = tq__load_rlx(&j->checkpoints);
	in.last_flush_ns = tq__load_rlx(&j->last_flush_ns);
	in.replay_records = tq__load_rlx(&j->replay[0]);
	in.replay_tasks = tq__load_rlx(&j->replay[1]);
	in.replay_ns = tq__load_rlx(&j->replay[2]);
	in.replay_damaged = tq__load_rlx(&j->replay[3]);
	in.replay_dropped = tq__load_rlx(&j->replay[4]);
	in.replay_damage_lsn = tq__load_rlx(&j->replay[5]);
	in.replay_lost = tq__load_rlx(&j->replay[6]);
	in.errors = tq__load_rlx(&j->errors);
	memcpy(in.dir, t->jdir, sizeof(in.dir));
	*ji = in;
	return 0;
}

int tq_journal_flush(tq *t)
{
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!t->jon)
		return tq__fail(t, -ENOTSUP, "the segment has no journal");
	tq__jnl_end_flush(t);
	e = tq__jnl_sync_wait(t);
	return e < 0 ? tq__fail(t, e, "journal flush failed") : 0;
}

/* The files' share of live data: checkpoint once the log since the last
 * checkpoint is both two files long and four times what is live. */
static bool checkpoint_due(tq *t)
{
	struct tq__jhdr *j = &t->hdr->jnl;
	uint64_t since = tq__load_rlx(&j->tail) - tq__load_rlx(&j->head);
	uint64_t live = tq__pool_used(tq__slot_bits(t), t->lay.capacity) * 192;

	for (uint32_t k = 0; k < t->lay.nclasses; k++)
		live += tq__pool_used(tq__class_bits(t, k), t->lay.class_count[k]) *
			(uint64_t)t->lay.class_size[k];
	return since >= 2 * t->jfile_bytes && since > 4 * live;
}

int tq_journal_maintain(tq *t)
{
	struct tq__jhdr *j;
	uint64_t now, tail, ahead;
	int did = 0, e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!t->jon)
		return 0;
	j = &t->hdr->jnl;
	now = tq_now_ns();
	if (tq__load_rlx(&j->durability) == TQ_DURABILITY_ASYNC &&
	    now - tq__load_rlx(&j->last_flush_ns) >= (uint64_t)tq__load_rlx(&j->flush_ms) * 1000000u &&
	    tq__load(&j->durable) != tq__load(&j->tail) &&
	    tq__cas64(&j->flush_lock, 0, t->token)) {
		e = flush_locked(t);
		if (e < 0)
			return tq__fail(t, e, "journal flush failed");
		did |= TQ_JM_FLUSHED;
	}
	/* Create the next files before producers need them. */
	tail = tq__load(&j->tail);
	for (ahead = file_of(t, tail) + 1; ahead <= file_of(t, tail) + PREPARE_AHEAD; ahead++) {
		uint8_t *base;

		if (ahead <= tq__load(&j->prepared))
			continue;
		if (tq__jnl_map(t, ahead, true, &base) == 0) {
			tq__store(&j->prepared, ahead);
			did |= TQ_JM_PREPARED;
		}
	}
	if (checkpoint_due(t)) {
		e = tq__jnl_checkpoint(t);
		if (e >= 0) {
			did |= TQ_JM_CHECKPOINT;
			if (e > 0)
				did |= TQ_JM_DELETED;
		}
	}
	return did;
}

int tq_journal_checkpoint(tq *t)
{
	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!t->jon)
		return tq__fail(t, -ENOTSUP, "the segment has no journal");
	return tq__jnl_checkpoint(t);
}

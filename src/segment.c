/* SPDX-License-Identifier: MIT */
/*
 * segment.c - the lifetime of a segment: name and configuration checks, the
 * layout computed from the configuration, tq_create(), tq_attach() with its
 * header validation, tq_detach() and tq_unlink().
 *
 * Attach trusts nothing in the header: it recomputes the whole layout from
 * the stored configuration and refuses (-EPROTO) unless every offset and the
 * file size agree, so the region bounds used afterwards are known good.
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

#define DEF_QUEUES      16u
#define DEF_LEVELS      8u
#define DEF_CAPACITY    (1u << 20)
#define DEF_MAX_PAYLOAD (1u << 20)
#define DEF_PROCS       256u
#define DEF_ARENA       (64ull << 20)
#define DEF_FLUSH_MS    10u
#define DEF_FILE_MB     64u
#define TQ__MAGIC_REPLAY 0x59414c5045525154ull  /* "TQREPLAY": being restored */
#define REPLAY_WAIT_MS  120000
#define PAGE            4096ull
#define TOTAL_MAX       (1ull << 46)

void tq_config_init(struct tq_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->queues = DEF_QUEUES;
	cfg->levels = DEF_LEVELS;
	cfg->capacity = DEF_CAPACITY;
	cfg->max_payload = DEF_MAX_PAYLOAD;
	cfg->procs = DEF_PROCS;
	cfg->mode = 0600;
	cfg->group = -1;
	cfg->arena_bytes = DEF_ARENA;
	cfg->durability = TQ_DURABILITY_ASYNC;
	cfg->flush_ms = DEF_FLUSH_MS;
	cfg->journal_file_mb = DEF_FILE_MB;
}

uint64_t tq_now_ns(void)
{
	return tq__now_ns();
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* Check a segment name; returns 0 or a negative errno, with words. */
static int check_name(const char *name, char *out)
{
	size_t len;

	if (!name || !*name)
		return tq__fail(NULL, -EINVAL, "segment name is empty");
	len = strlen(name);
	if (len > TQ_NAME_MAX)
		return tq__fail(NULL, -ENAMETOOLONG, "segment name is %zu bytes, the limit is %u",
				len, TQ_NAME_MAX);
	if (strchr(name + 1, '/'))
		return tq__fail(NULL, -EINVAL, "segment name \"%s\" has a '/' after its first byte", name);
	if (!strcmp(name, "/") || !strcmp(name, "/.") || !strcmp(name, "/..") ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return tq__fail(NULL, -EINVAL, "segment name \"%s\" names no object", name);
	snprintf(out, TQ_NAME_MAX + 2, "%s%s", name[0] == '/' ? "" : "/", name);
	return 0;
}

/* Fill in defaults for zero fields and check ranges. */
static int normalize(const struct tq_config *in, struct tq_config *cfg)
{
	tq_config_init(cfg);
	if (!in)
		return 0;
	if (in->queues)
		cfg->queues = in->queues;
	if (in->levels)
		cfg->levels = in->levels;
	if (in->capacity)
		cfg->capacity = in->capacity;
	if (in->max_payload)
		cfg->max_payload = in->max_payload;
	if (in->procs)
		cfg->procs = in->procs;
	if (in->mode)
		cfg->mode = in->mode;
	cfg->group = in->group;
	if (in->group == 0 && !(in->mode & 0070))
		cfg->group = -1;       /* a zeroed struct means "no group" */
	if (in->arena_bytes)
		cfg->arena_bytes = in->arena_bytes;
	if (cfg->group >= 0 && !in->mode)
		cfg->mode = 0660;
	if (!memchr(in->journal_dir, 0, sizeof(in->journal_dir)))
		return tq__fail(NULL, -ENAMETOOLONG, "journal_dir is not terminated within %u bytes",
				TQ_PATH_MAX);
	memcpy(cfg->journal_dir, in->journal_dir, sizeof(cfg->journal_dir));
	cfg->durability = in->durability;
	if (in->flush_ms)
		cfg->flush_ms = in->flush_ms;
	if (in->journal_file_mb)
		cfg->journal_file_mb = in->journal_file_mb;
	if (cfg->durability > TQ_DURABILITY_NONE)
		return tq__fail(NULL, -EINVAL, "durability %u is not one of enum tq_durability",
				cfg->durability);
	if (cfg->durability == TQ_DURABILITY_NONE)
		cfg->journal_dir[0] = 0;
	if (cfg->journal_dir[0] && cfg->journal_dir[0] != '/')
		return tq__fail(NULL, -EINVAL, "journal_dir \"%s\" must be an absolute path",
				cfg->journal_dir);
	if (cfg->flush_ms > 60000)
		return tq__fail(NULL, -EINVAL, "flush_ms %u exceeds a minute", cfg->flush_ms);
	if (cfg->journal_file_mb > (1u << 20))
		return tq__fail(NULL, -EINVAL, "journal_file_mb %u exceeds 1 TiB", cfg->journal_file_mb);
	return 0;
}

/* Files roll at journal_file_mb, but hold at least four of the largest
 * records (a batch of max_payload tasks does not fit: batches split). */
static void journal_sizing(struct tq_config *cfg)
{
	uint64_t need = ((uint64_t)cfg->max_payload * 4 + (1u << 20)) >> 20;

	if (cfg->journal_file_mb < need)
		cfg->journal_file_mb = (uint32_t)need;
	if (cfg->journal_file_mb < 1)
		cfg->journal_file_mb = 1;
}

int tq__layout_compute(const struct tq_config *cfg, struct tq__layout *l)
{
	uint64_t off, per_class;
	uint32_t n, size;

	memset(l, 0, sizeof(*l));
	if (cfg->queues < 1 || cfg->queues > TQ_QUEUES_MAX)
		return tq__fail(NULL, -EINVAL, "queues must be 1..%u, not %u", TQ_QUEUES_MAX, cfg->queues);
	if (cfg->levels < 1 || cfg->levels > TQ_LEVELS_MAX)
		return tq__fail(NULL, -EINVAL, "levels must be 1..%u, not %u", TQ_LEVELS_MAX, cfg->levels);
	if (cfg->capacity < 64 || cfg->capacity > TQ_CAPACITY_MAX)
		return tq__fail(NULL, -EINVAL, "capacity must be 64..%u, not %u", TQ_CAPACITY_MAX,
				cfg->capacity);
	if (cfg->max_payload > TQ_PAYLOAD_MAX)
		return tq__fail(NULL, -EINVAL, "max_payload must be at most %u, not %u", TQ_PAYLOAD_MAX,
				cfg->max_payload);
	if (cfg->procs < 8 || cfg->procs > 4096)
		return tq__fail(NULL, -EINVAL, "procs must be 8..4096, not %u", cfg->procs);
	if (cfg->mode & ~0777u)
		return tq__fail(NULL, -EINVAL, "mode %o has bits outside 0777", cfg->mode);
	if (cfg->arena_bytes > (1ull << 44))
		return tq__fail(NULL, -EINVAL, "arena_bytes too large");

	l->queues = cfg->queues;
	l->levels = cfg->levels;
	l->capacity = cfg->capacity;
	l->max_payload = cfg->max_payload;
	l->procs = cfg->procs;
	l->slot_size = TQ__SLOT_SIZE;
	l->chunk_cells = TQ__CHUNK_CELLS;
	l->stripes = TQ__STRIPES;
	l->wheel = TQ__WHEEL;
	l->nrings = cfg->queues * (cfg->levels + 2) + TQ__WHEEL + 1;
	l->nchunks = 2 * ((cfg->capacity + TQ__CHUNK_CELLS - 1) / TQ__CHUNK_CELLS) +
		     2 * l->nrings + 16;

	/* Size classes for payloads that do not fit in the slot: 256 B, 1 KiB,
	 * 4 KiB, ... up to the first class holding max_payload. */
	n = 0;
	if (cfg->max_payload > TQ__INLINE_MAX) {
		size = 1u << TQ__CLASS_MIN_SHIFT;
		for (;;) {
			l->class_size[n++] = size;
			if (size >= cfg->max_payload || n == TQ__CLASSES_MAX)
				break;
			size <<= 2;
		}
		if (l->class_size[n - 1] < cfg->max_payload)
			return tq__fail(NULL, -EINVAL, "max_payload %u needs too many size classes",
					cfg->max_payload);
		per_class = cfg->arena_bytes / n;
		for (uint32_t k = 0; k < n; k++) {
			uint64_t cnt = per_class / l->class_size[k];
			if (cnt < 4)
				cnt = 4;
			if (cnt > (1u << 28) - 1)
				cnt = (1u << 28) - 1;
			l->class_count[k] = (uint32_t)cnt;
		}
	}
	l->nclasses = n;

	off = align_up(sizeof(struct tq__hdr), PAGE);
	l->off_procs = off;
	off = align_up(off + (uint64_t)l->procs * sizeof(struct tq__proc), TQ__CACHELINE);
	l->off_queues = off;
	off = align_up(off + (uint64_t)l->queues * sizeof(struct tq__queue), TQ__CACHELINE);
	l->off_rings = off;
	off = align_up(off + (uint64_t)l->nrings * sizeof(struct tq__ring), TQ__CACHELINE);
	l->off_counters = off;
	off = align_up(off + (uint64_t)l->queues * l->levels * TQ__STRIPES *
			     sizeof(struct tq__counters), TQ__CACHELINE);
	l->off_hist = off;
	off = align_up(off + (uint64_t)l->queues * l->levels * 2 * sizeof(struct tq__hist),
		       TQ__CACHELINE);
	l->off_chunks = off;
	off = align_up(off + (uint64_t)l->nchunks * sizeof(struct tq__chunk), TQ__CACHELINE);
	l->off_chunk_bits = off;
	off = align_up(off + tq__bitmap_words(l->nchunks) * 8, PAGE);
	l->off_cells = off;
	off = align_up(off + (uint64_t)l->nchunks * TQ__CHUNK_CELLS * 8, PAGE);
	l->off_slot_bits = off;
	off = align_up(off + tq__bitmap_words(l->capacity) * 8, PAGE);
	l->off_slots = off;
	off = align_up(off + (uint64_t)l->capacity * TQ__SLOT_SIZE, PAGE);
	for (uint32_t k = 0; k < n; k++) {
		l->off_class_bits[k] = off;
		off = align_up(off + tq__bitmap_words(l->class_count[k]) * 8, PAGE);
		l->off_class[k] = off;
		off = align_up(off + (uint64_t)l->class_count[k] * l->class_size[k], PAGE);
	}
	l->total = off;
	if (l->total > TOTAL_MAX)
		return tq__fail(NULL, -EINVAL, "segment would be %llu bytes, too large",
				(unsigned long long)l->total);
	return 0;
}

/* Mark the bits past n in the last word of a bitmap as used forever. */
static void seal_tail(uint64_t *bits, uint32_t n)
{
	uint32_t w = n / 64, b = n % 64;

	if (b)
		bits[w] = ~0ull << b;
}

static int handle_new(tq **ret, uint8_t *base, uint64_t size, const struct tq__layout *lay)
{
	tq *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->base = base;
	t->size = size;
	t->hdr = (struct tq__hdr *)base;
	t->lay = *lay;
	t->slots = (struct tq__slot *)(base + lay->off_slots);
	t->rings = (struct tq__ring *)(base + lay->off_rings);
	t->chunks = (struct tq__chunk *)(base + lay->off_chunks);
	t->cells = (uint64_t *)(base + lay->off_cells);
	t->queues = (struct tq__queue *)(base + lay->off_queues);
	t->ctrs = (struct tq__counters *)(base + lay->off_counters);
	t->hists = (struct tq__hist *)(base + lay->off_hist);
	t->slot_bits = (uint64_t *)(base + lay->off_slot_bits);
	t->wrr = calloc((size_t)lay->queues * lay->levels, sizeof(int64_t));
	if (!t->wrr) {
		free(t);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < TQ__JMAPS; i++)
		t->jmap[i].fd = -1;
	for (uint32_t i = 0; i < TQ_HELD_MAX; i++)
		t->held_free[i] = (uint16_t)(TQ_HELD_MAX - 1 - i);
	t->nheld_free = TQ_HELD_MAX;
	t->spin_ok = true;
	*ret = t;
	return 0;
}

static void handle_free(tq *t)
{
	tq__jnl_close(t);
	if (t->base)
		munmap(t->base, t->size);
	free(t->wrr);
	free(t->sweep_prev);
	free(t);
}

int tq_create(const char *name, const struct tq_config *cfg_in, tq **ret)
{
	char path[TQ_NAME_MAX + 2];
	struct tq_config cfg;
	struct tq__layout lay;
	struct tq__hdr *h;
	uint8_t *base;
	int replay = 0;
	tq *t;
	int fd, r;

	tq__set_tls_error("%s", "");
	if (!ret)
		return tq__fail(NULL, -EINVAL, "ret is NULL");
	r = check_name(name, path);
	if (r < 0)
		return r;
	r = normalize(cfg_in, &cfg);
	if (r < 0)
		return r;
	/* A journal keeps the layout of the segment that wrote it. */
	if (cfg.journal_dir[0]) {
		replay = tq__jnl_config(cfg.journal_dir, &cfg);
		if (replay < 0)
			return replay;
		journal_sizing(&cfg);
	}
	r = tq__layout_compute(&cfg, &lay);
	if (r < 0)
		return r;

	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, cfg.mode);
	if (fd < 0)
		return tq__fail(NULL, -errno, "shm_open(%s): %s", path, tq_strerror(-errno));
	/* shm_open applies the umask; set exactly what was asked. */
	if (fchmod(fd, cfg.mode) < 0 ||
	    (cfg.group >= 0 && fchown(fd, (uid_t)-1, (gid_t)cfg.group) < 0) ||
	    ftruncate(fd, (off_t)lay.total) < 0) {
		r = -errno;
		close(fd);
		shm_unlink(path);
		return tq__fail(NULL, r, "setting up %s: %s", path, tq_strerror(r));
	}
	base = mmap(NULL, lay.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r = -errno;
	close(fd);
	if (base == MAP_FAILED) {
		shm_unlink(path);
		return tq__fail(NULL, r, "mmap %s: %s", path, tq_strerror(r));
	}

	h = (struct tq__hdr *)base;
	h->version = TQ__LAYOUT_VERSION;
	h->hdr_size = sizeof(*h);
	h->total_size = lay.total;
	h->mode = cfg.mode;
	h->arena_bytes = cfg.arena_bytes;
	h->group = cfg.group;
	h->lay = lay;
	h->wheel_ms = tq_now_ns() / 1000000u;
	seal_tail((uint64_t *)(base + lay.off_slot_bits), lay.capacity);
	seal_tail((uint64_t *)(base + lay.off_chunk_bits), lay.nchunks);
	for (uint32_t k = 0; k < lay.nclasses; k++)
		seal_tail((uint64_t *)(base + lay.off_class_bits[k]), lay.class_count[k]);

	r = handle_new(&t, base, lay.total, &lay);
	if (r < 0) {
		munmap(base, lay.total);
		shm_unlink(path);
		return tq__fail(NULL, r, "no memory for a handle");
	}
	r = tq__proc_claim(t);
	for (uint32_t b = 0; r >= 0 && b <= TQ__WHEEL; b++)
		r = tq__ring_init(t, tq__ring_wheel(&lay, b));
	if (r < 0) {
		handle_free(t);
		shm_unlink(path);
		return tq__fail(NULL, r, "initialising %s: %s", path, tq_strerror(r));
	}
	r = tq__jnl_setup(t, &cfg, true);
	if (r >= 0 && replay) {
		/* Attachers wait while the journal is read back. */
		tq__store(&h->magic, TQ__MAGIC_REPLAY);
		r = tq__jnl_replay(t);
	}
	if (r >= 0 && t->jon) {
		uint8_t *jbase;

		r = tq__jnl_map(t, h->jnl.tail / h->jnl.file_bytes, true, &jbase);
	}
	if (r < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", t->err[0] ? t->err : tq_last_error(NULL));
		handle_free(t);
		shm_unlink(path);
		return tq__fail(NULL, r, "journal of %s: %s", path, why);
	}
	/* The magic goes last: an attacher that sees it sees a whole segment. */
	tq__store(&h->magic, TQ__MAGIC);
	*ret = t;
	return 0;
}

static int validate(const struct tq__hdr *h, uint64_t file_size, struct tq__layout *lay)
{
	struct tq_config cfg;
	int r;

	if (h->magic != TQ__MAGIC)
		return tq__fail(NULL, -EPROTO, "wrong magic 0x%016llx: not a tq segment",
				(unsigned long long)h->magic);
	if (h->version != TQ__LAYOUT_VERSION)
		return tq__fail(NULL, -EPROTO, "layout version %u, this libtq reads version %u",
				h->version, TQ__LAYOUT_VERSION);
	if (h->hdr_size != sizeof(*h))
		return tq__fail(NULL, -EPROTO, "header size %u, expected %zu", h->hdr_size, sizeof(*h));
	if (h->total_size != file_size)
		return tq__fail(NULL, -EPROTO, "header says %llu bytes, the object has %llu",
				(unsigned long long)h->total_size, (unsigned long long)file_size);
	memset(&cfg, 0, sizeof(cfg));
	cfg.queues = h->lay.queues;
	cfg.levels = h->lay.levels;
	cfg.capacity = h->lay.capacity;
	cfg.max_payload = h->lay.max_payload;
	cfg.procs = h->lay.procs;
	cfg.mode = h->mode;
	cfg.group = h->group;
	cfg.arena_bytes = h->arena_bytes;
	r = tq__layout_compute(&cfg, lay);
	if (r < 0) {
		char why[200];

		/* tq__fail() writes the buffer tq_last_error() reads. */
		snprintf(why, sizeof(why), "%s", tq_last_error(NULL));
		return tq__fail(NULL, -EPROTO, "stored configuration is invalid: %s", why);
	}
	if (memcmp(lay, &h->lay, sizeof(*lay)) != 0)
		return tq__fail(NULL, -EPROTO, "stored layout disagrees with its configuration");
	if (lay->total != file_size)
		return tq__fail(NULL, -EPROTO, "layout needs %llu bytes, the object has %llu",
				(unsigned long long)lay->total, (unsigned long long)file_size);
	return 0;
}

int tq_attach(const char *name, tq **ret)
{
	char path[TQ_NAME_MAX + 2];
	struct tq__layout lay;
	struct tq__hdr hdr;
	struct stat st;
	uint8_t *base;
	tq *t;
	int fd, r;

	tq__set_tls_error("%s", "");
	if (!ret)
		return tq__fail(NULL, -EINVAL, "ret is NULL");
	r = check_name(name, path);
	if (r < 0)
		return r;
	fd = shm_open(path, O_RDWR, 0);
	if (fd < 0)
		return tq__fail(NULL, -errno, "shm_open(%s): %s", path, tq_strerror(-errno));

	/* A creator writes the magic last; give one that is mid-way a second. */
	for (int tries = 0;; tries++) {
		if (fstat(fd, &st) < 0) {
			r = -errno;
			close(fd);
			return tq__fail(NULL, r, "fstat(%s): %s", path, tq_strerror(r));
		}
		if ((uint64_t)st.st_size < sizeof(hdr)) {
			close(fd);
			return tq__fail(NULL, -EPROTO, "%s is %lld bytes, smaller than a header",
					path, (long long)st.st_size);
		}
		if (pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
			close(fd);
			return tq__fail(NULL, -EPROTO, "%s: cannot read the header", path);
		}
		if ((hdr.magic != 0 && hdr.magic != TQ__MAGIC_REPLAY) ||
		    (hdr.magic == 0 && tries >= 1000) || tries >= REPLAY_WAIT_MS)
			break;
		usleep(1000);
	}
	r = validate(&hdr, (uint64_t)st.st_size, &lay);
	if (r < 0) {
		close(fd);
		return r;
	}
	base = mmap(NULL, lay.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r = -errno;
	close(fd);
	if (base == MAP_FAILED)
		return tq__fail(NULL, r, "mmap %s: %s", path, tq_strerror(r));
	r = handle_new(&t, base, lay.total, &lay);
	if (r < 0) {
		munmap(base, lay.total);
		return tq__fail(NULL, r, "no memory for a handle");
	}
	r = tq__jnl_setup(t, NULL, false);
	if (r < 0) {
		handle_free(t);
		return r;
	}
	r = tq__proc_claim(t);
	if (r < 0) {
		handle_free(t);
		return tq__fail(NULL, r, "%s: every one of its %u process slots is taken", path,
				lay.procs);
	}
	*ret = t;
	return 0;
}

void tq_detach(tq *t)
{
	if (!t)
		return;
	if (t->jon && t->proc)
		tq__jnl_end_flush(t);
	if (t->proc)
		tq__proc_release(t);
	handle_free(t);
}

int tq_unlink(const char *name)
{
	char path[TQ_NAME_MAX + 2];
	int r = check_name(name, path);

	if (r < 0)
		return r;
	if (shm_unlink(path) < 0)
		return tq__fail(NULL, -errno, "shm_unlink(%s): %s", path, tq_strerror(-errno));
	return 0;
}

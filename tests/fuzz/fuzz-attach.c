/* SPDX-License-Identifier: MIT */
/*
 * fuzz-attach - libFuzzer target: attaching to a segment whose bytes come
 * from the fuzzer, then using it.
 *
 * The contract under test (include/tq/tq.h, docs/protocols.md "Bounds and
 * corruption"): whatever a segment holds, tq_attach() and every call on the
 * handle return a result in their documented range or a negative errno
 * (-EPROTO for corruption), never crash, never block, never write outside
 * the mapping.
 *
 * The first input byte chooses how the rest becomes a segment:
 *
 *   mode 0  raw: the rest is the whole object (most inputs die at the
 *           magic, layout or size checks of tq_attach; a zero magic is
 *           skipped: tq_attach waits a second for a creator to finish);
 *   mode 1  a real segment (the template below, holding tasks in every
 *           state and two records of handles that detached while holding
 *           leases), with the rest written over its first bytes (the
 *           header: magic, version, sizes, configuration, stored layout);
 *   mode 2  the template with patches: the rest is a list of
 *           { u8 region, u32 offset, u8 len, len bytes }, each written at
 *           region's start + offset % region's size, where the regions
 *           are the ones of docs/segment-layout.md (process records and
 *           their held lists, queues, rings, chunk headers, cells, slot
 *           bitmap, slots, payload blocks). This reaches the checks the
 *           engine makes on every index it reads after attaching;
 *   mode 3  as mode 1, and the object is truncated or extended to a size
 *           taken from the next 4 bytes.
 *
 * The second byte of modes 1-3 chooses which calls run after an attach
 * (bit 0: lease and finish, bit 1: recover and sweep, bit 2: submit,
 * bit 3: cancel/level/requeue/forget on listed IDs). Contract violations
 * abort(), which libFuzzer reports as a crash; tests/fuzz/replay.c runs the
 * committed corpus through this function in every ordinary build.
 *
 * White-box: reads the template's layout (src/layout.h) to find the
 * regions, and the handle's mapping (src/handle.h) to check that payload
 * pointers stay inside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tq/tq.h>

#include "handle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define PAGE 4096u
#define MAX_PAYLOAD 2048u

static uint8_t *tmpl;           /* bytes of the template segment */
static size_t tmpl_size;
static uint32_t *tmpl_pages;    /* indices of its pages that are not all zero */
static size_t tmpl_npages;
static uint64_t tmpl_ids[64];   /* task IDs it holds */
static unsigned tmpl_nids;
static unsigned seg_counter;
static int verbose;              /* FUZZ_ATTACH_VERBOSE=1 */
/* FUZZ_ATTACH_NO_WEIGHTED=1: lease with the strict policy only, to fuzz on
 * past a known bug of the weighted one (docs/models.md, "Fuzzing"). */
static int no_weighted;

#define REQUIRE(cond, ...)                                                   \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz-attach: %s:%d: %s: ", __FILE__, \
				__LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/* A result of a tq call: a negative errno, or within [lo, hi]. */
static long long range(long long r, long long lo, long long hi, const char *what)
{
	REQUIRE(r >= -4095, "%s returned %lld: not an errno", what, r);
	REQUIRE(r < 0 || (r >= lo && r <= hi), "%s returned %lld, outside [%lld, %lld]", what, r,
		lo, hi);
	if (r < 0)
		REQUIRE(tq_strerror((int)r)[0] != 0, "%s: no words for %lld", what, r);
	return r;
}
#define CALL(expr, lo, hi) range((long long)(expr), (lo), (hi), #expr)

static void seg_name(char *buf, size_t n)
{
	snprintf(buf, n, "/tq-fuzz-%d-%u", (int)getpid(), seg_counter++);
}

/* The template: a small segment with tasks ready at two levels of two
 * queues (inline and out-of-slot payloads), delayed, leased, done with a
 * result, dead-lettered, and leased by two handles that then detached
 * (records that tq_recover() treats as dead). */
static void make_template(void)
{
	char name[64];
	struct tq_config c;
	tq *t = NULL, *u = NULL;
	static uint8_t buf[MAX_PAYLOAD];
	struct tq_task tasks[8];
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	int qa, qb, n, fd;

	seg_name(name, sizeof name);
	tq_config_init(&c);
	c.queues = 2;
	c.levels = 2;
	c.capacity = 64;
	c.max_payload = MAX_PAYLOAD;
	c.procs = 8;
	c.arena_bytes = 512u << 10;
	REQUIRE(tq_create(name, &c, &t) == 0, "tq_create: %s", tq_last_error(NULL));
	qa = tq_queue_declare(t, "a", NULL);
	qb = tq_queue_declare(t, "b", &(struct tq_queue_config){ .max_attempts = 1 });
	REQUIRE(qa >= 0 && qb >= 0, "declare: %s", tq_last_error(t));
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	for (int i = 0; i < 24; i++) {
		struct tq_submit_opts o = { .level = (uint32_t)(i % 2), .type = (uint32_t)i };
		if (i % 6 == 5)
			o.not_before_ns = tq_now_ns() + (i % 12 == 5 ? 3600ull : 1ull) * 1000000000ull;
		REQUIRE(tq_submit(t, i % 3 ? qa : qb, buf, (size_t)(i * 97 % MAX_PAYLOAD), &o,
				  &tmpl_ids[tmpl_nids]) == 0,
			"submit: %s", tq_last_error(t));
		tmpl_nids++;
	}
	n = tq_lease(t, &lo, tasks, 8);
	REQUIRE(n == 8, "lease gave %d", n);
	REQUIRE(tq_ack(t, tasks[0].id, "result", 6) == 0, "ack: %s", tq_last_error(t));
	REQUIRE(tq_ack(t, tasks[1].id, buf, 300) == 0, "ack: %s", tq_last_error(t));
	REQUIRE(tq_ack(t, tasks[2].id, NULL, 0) == 0, "ack: %s", tq_last_error(t));
	REQUIRE(tq_fail(t, tasks[3].id) >= 0, "fail: %s", tq_last_error(t));
	REQUIRE(tq_release(t, tasks[4].id) == 0, "release: %s", tq_last_error(t));
	/* tasks[5..7] stay leased by t. */
	REQUIRE(tq_attach(name, &u) == 0, "attach: %s", tq_last_error(NULL));
	lo.queues = &qb;
	lo.nqueues = 1;
	n = tq_lease(u, &lo, tasks, 2);
	REQUIRE(n >= 1, "lease from b gave %d", n);
	for (int k = 0; k < n; k++)  /* max_attempts 1: failing dead-letters */
		if (k == 0)
			REQUIRE(tq_fail(u, tasks[k].id) == 1, "fail: %s", tq_last_error(u));
	n = tq_lease(u, &(struct tq_lease_opts){ .timeout_ms = 0 }, tasks, 2);
	REQUIRE(n >= 1, "lease gave %d", n);
	tq_detach(u);
	tq_detach(t);

	fd = shm_open(name, O_RDONLY, 0);
	REQUIRE(fd >= 0, "shm_open: %m");
	struct stat st;
	REQUIRE(fstat(fd, &st) == 0, "fstat: %m");
	tmpl_size = (size_t)st.st_size;
	tmpl = malloc(tmpl_size);
	REQUIRE(tmpl != NULL, "no memory");
	REQUIRE(pread(fd, tmpl, tmpl_size, 0) == (ssize_t)tmpl_size, "pread: %m");
	close(fd);
	tq_unlink(name);
	/* For making seeds: FUZZ_ATTACH_HEADER=FILE writes the template's
	 * header page there. */
	const char *dump = getenv("FUZZ_ATTACH_HEADER");
	if (dump && *dump) {
		FILE *f = fopen(dump, "wb");
		REQUIRE(f && fwrite(tmpl, 1, PAGE, f) == PAGE && fclose(f) == 0, "%s: %m", dump);
	}
	tmpl_pages = malloc((tmpl_size / PAGE + 1) * sizeof(*tmpl_pages));
	REQUIRE(tmpl_pages != NULL, "no memory");
	for (size_t p = 0; p * PAGE < tmpl_size; p++) {
		size_t len = tmpl_size - p * PAGE < PAGE ? tmpl_size - p * PAGE : PAGE;
		for (size_t k = 0; k < len; k++) {
			if (tmpl[p * PAGE + k]) {
				tmpl_pages[tmpl_npages++] = (uint32_t)p;
				break;
			}
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!tmpl)
		make_template();
	verbose = getenv("FUZZ_ATTACH_VERBOSE") != NULL;
	no_weighted = getenv("FUZZ_ATTACH_NO_WEIGHTED") != NULL;
	return 0;
}

/* Regions of the template for mode 2: [start, start + size). */
static void region(uint8_t sel, uint64_t *start, uint64_t *len)
{
	const struct tq__layout *l = &((const struct tq__hdr *)tmpl)->lay;
	uint64_t o[] = { 0, l->off_procs, l->off_queues, l->off_rings, l->off_counters,
			 l->off_chunks, l->off_chunk_bits, l->off_cells, l->off_slot_bits,
			 l->off_slots, l->off_class_bits[0], l->off_class[0], tmpl_size };
	unsigned n = (unsigned)(sizeof o / sizeof o[0]) - 1, k = sel % n;

	*start = o[k];
	*len = o[k + 1] > o[k] ? o[k + 1] - o[k] : 1;
	/* Rings and cells: mostly the first ones (the queues' own rings and
	 * the chunks they use), where the template's tasks are. */
	if ((k == 3 || k == 7) && (sel & 0x80) && *len > 16 * PAGE)
		*len = 16 * PAGE;
}

static int write_all(int fd, const void *p, size_t n, off_t off)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = pwrite(fd, b, n, off);
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int build_object(int fd, const uint8_t *data, size_t size, unsigned mode)
{
	if (mode == 0) {
		if (ftruncate(fd, (off_t)size) < 0 || write_all(fd, data, size, 0) < 0)
			return -1;
		return 0;
	}
	if (ftruncate(fd, (off_t)tmpl_size) < 0)
		return -1;
	for (size_t i = 0; i < tmpl_npages; i++) {
		size_t off = (size_t)tmpl_pages[i] * PAGE;
		size_t len = tmpl_size - off < PAGE ? tmpl_size - off : PAGE;
		if (write_all(fd, tmpl + off, len, (off_t)off) < 0)
			return -1;
	}
	if (mode == 1 || mode == 3) {
		uint64_t new_size = tmpl_size;

		if (mode == 3 && size >= 4) {
			uint32_t v;
			memcpy(&v, data, 4);
			new_size = v % (2 * tmpl_size + 1);
			data += 4;
			size -= 4;
		}
		if (size > PAGE)
			size = PAGE;
		if (write_all(fd, data, size, 0) < 0)
			return -1;
		if (new_size != tmpl_size && ftruncate(fd, (off_t)new_size) < 0)
			return -1;
		return 0;
	}
	/* mode 2: patches. */
	for (unsigned npatch = 0; size >= 6 && npatch < 64; npatch++) {
		uint64_t start, len;
		uint32_t off;
		size_t n;

		region(data[0], &start, &len);
		memcpy(&off, data + 1, 4);
		n = data[5];
		data += 6;
		size -= 6;
		if (n > size)
			n = size;
		uint64_t at = start + off % len;
		if (at >= tmpl_size)
			at = tmpl_size - 1;
		if (n > tmpl_size - at)
			n = (size_t)(tmpl_size - at);
		if (write_all(fd, data, n, (off_t)at) < 0)
			return -1;
		data += n;
		size -= n;
	}
	return 0;
}

/* Write the segment object for this input; 0, or -1 to skip the input:
 * an object whose magic is zero makes tq_attach() wait a second for its
 * creator to finish, which only slows the fuzzer down. */
static int build(int fd, const uint8_t *data, size_t size, unsigned mode)
{
	uint64_t magic = 0;

	if (build_object(fd, data, size, mode) < 0)
		return -1;
	if (pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic && magic == 0)
		return -1;
	return 0;
}

static const uint8_t *map_lo, *map_hi;

static void check_task(const struct tq_task *task)
{
	const uint8_t *p = task->payload;

	REQUIRE(task->len <= MAX_PAYLOAD || task->len <= (uint32_t)(map_hi - map_lo),
		"leased task has len %u", task->len);
	if (!task->len)
		return;
	REQUIRE(p != NULL, "leased task has len %u and no payload", task->len);
	REQUIRE(p >= map_lo && p + task->len <= map_hi && p + task->len >= p,
		"payload [%p, +%u) outside the mapping [%p, %p)", (const void *)p, task->len,
		(const void *)map_lo, (const void *)map_hi);
	volatile uint8_t sum = 0;
	for (uint32_t i = 0; i < task->len; i++)
		sum += p[i];
	(void)sum;
}

static void exercise(tq *t, unsigned flags)
{
	struct tq_segment_info si;
	struct tq_stats st;
	struct tq_info in;
	struct tq_recovery rep;
	uint64_t ids[96], cursor;
	unsigned nids = 0;
	static uint8_t rbuf[MAX_PAYLOAD + 64];

	CALL(tq_segment_info(t, &si), 0, 0);
	for (int q = -1; q < 3; q++) {
		char nb[TQ_QUEUE_NAME_MAX + 1];
		if (CALL(tq_queue_name(t, q, nb, sizeof nb), 0, INT32_MAX) >= 0)
			REQUIRE(memchr(nb, 0, sizeof nb) != NULL, "queue name not terminated");
		CALL(tq_queue_paused(t, q), 0, 1);
		for (int lv = -1; lv < 3; lv++)
			CALL(tq_stats(t, q, lv, &st), 0, 0);
		for (unsigned s = TQ_STATE_PENDING; s <= TQ_STATE_DEAD; s++) {
			cursor = 0;
			for (int pass = 0; pass < 4 && nids < 64; pass++) {
				int n = (int)CALL(tq_list(t, q, pass % 2 ? 0 : -1, s, ids + nids,
							  8, &cursor), 0, 8);
				if (n <= 0)
					break;
				nids += (unsigned)n;
			}
		}
		cursor = 0;
		if (nids < 88) {
			int n = (int)CALL(tq_dead_list(t, q, ids + nids, 8, &cursor), 0, 8);
			if (n > 0)
				nids += (unsigned)n;
		}
	}
	for (unsigned i = 0; i < tmpl_nids && nids < 96; i++)
		ids[nids++] = tmpl_ids[i];
	for (unsigned i = 0; i < nids; i++) {
		if (CALL(tq_get(t, ids[i], &in), 0, 0) == 0)
			REQUIRE(in.state >= TQ_STATE_PENDING && in.state <= TQ_STATE_BUSY,
				"tq_get gave state %u", in.state);
		size_t sz = (i * 131) % (MAX_PAYLOAD + 1);
		memset(rbuf + sz, 0xa5, 64);
		CALL(tq_result(t, ids[i], rbuf, sz), 0, TQ_PAYLOAD_MAX);
		for (int k = 0; k < 64; k++)
			REQUIRE(rbuf[sz + k] == 0xa5, "tq_result wrote past %zu bytes", sz);
	}
	if (flags & 2) {
		CALL(tq_recover(t, &rep), 0, INT32_MAX);
		CALL(tq_sweep(t, &rep), 0, INT32_MAX);
		CALL(tq_tick(t), 0, 0);
	}
	if (flags & 4) {
		static const uint8_t pl[300] = { 1, 2, 3 };
		uint64_t id;
		for (int i = 0; i < 3; i++) {
			struct tq_submit_opts o = { .level = (uint32_t)i % 2,
						    .not_before_ns = i == 2 ? tq_now_ns() + 1000000000ull : 0 };
			CALL(tq_submit(t, i % 2, pl, i ? 300 : 10, &o, &id), 0, 0);
		}
	}
	if (flags & 1) {
		struct tq_task tasks[8];
		for (int round = 0; round < 2; round++) {
			struct tq_lease_opts lo = { .timeout_ms = 0,
						    .policy = no_weighted ? 0 : (uint32_t)round };
			int n = (int)CALL(tq_lease(t, &lo, tasks, 8), 1, 8);
			for (int k = 0; k < n; k++) {
				check_task(&tasks[k]);
				switch ((k + round + flags) % 5) {
				case 0: CALL(tq_ack(t, tasks[k].id, NULL, 0), 0, 0); break;
				case 1: CALL(tq_ack(t, tasks[k].id, "res", 3), 0, 0); break;
				case 2: CALL(tq_fail(t, tasks[k].id), 0, 1); break;
				case 3: CALL(tq_release(t, tasks[k].id), 0, 0); break;
				default: CALL(tq_extend(t, tasks[k].id, 100), 0, 0); break;
				}
			}
		}
	}
	if (flags & 8) {
		for (unsigned i = 0; i < nids; i++) {
			switch ((i + flags) % 4) {
			case 0: CALL(tq_cancel(t, ids[i]), 0, 0); break;
			case 1: CALL(tq_set_level(t, ids[i], i % 3), 0, 0); break;
			case 2: CALL(tq_requeue_dead(t, ids[i]), 0, 0); break;
			default: CALL(tq_forget(t, ids[i]), 0, 0); break;
			}
		}
	}
	CALL(tq_segment_info(t, &si), 0, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[64];
	unsigned mode, flags = 0xf;
	tq *t = NULL;
	int fd, r;

	if (!tmpl)
		make_template();
	if (size < 1)
		return 0;
	mode = data[0] % 4;
	data++;
	size--;
	if (mode != 0 && size >= 1) {
		flags = data[0];
		data++;
		size--;
	}
	seg_name(name, sizeof name);
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	REQUIRE(fd >= 0, "shm_open(%s): %m", name);
	r = build(fd, data, size, mode);
	close(fd);
	if (r < 0) {
		shm_unlink(name);
		return 0;
	}
	r = tq_attach(name, &t);
	shm_unlink(name);   /* the mapping stays; nothing is left behind */
	if (verbose)
		fprintf(stderr, "fuzz-attach: mode %u flags %#x: tq_attach %d %s\n", mode, flags, r,
			r < 0 ? tq_last_error(NULL) : "");
	if (r < 0) {
		REQUIRE(r == -EPROTO || r == -EUSERS, "tq_attach gave %d (%s): %s", r,
			tq_strerror(r), tq_last_error(NULL));
		REQUIRE(tq_last_error(NULL)[0] != 0, "tq_attach failed without a reason");
		return 0;
	}
	REQUIRE(mode != 0 || size >= sizeof(struct tq__hdr), "attached to %zu bytes", size);
	map_lo = t->base;
	map_hi = t->base + t->size;
	exercise(t, flags);
	tq_detach(t);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * fuzz-journal - libFuzzer target: reading back a journal file whose bytes
 * come from the fuzzer (src/journal-replay.c).
 *
 * The contract under test: tq__jnl_scan() never reads outside the file
 * image and hands its callback only records that lie inside it; replay
 * (tq_create() on a directory holding the file) restores what the good
 * records say and skips the rest, returning 0 or a negative errno, never
 * crashing; the segment it makes is then usable.
 *
 * Input: byte 0 is a mode, the rest the journal file's records region
 * (what follows its 4 KiB header, which the target writes: a valid header
 * of a small segment's journal):
 *
 *   bit 0  0: the rest is the region as is (records must carry their own
 *             length, LSN and CRC32C, so most bytes are damage);
 *          1: the rest is a list of { u16 type, u16 body length, u32 n,
 *             body }, each made into a record with the right length, LSN
 *             and CRC32C, so that the bodies reach the record parsers;
 *   bit 1  also replay it: write it to a directory and tq_create() a
 *          segment from it, then lease, ack and look at what came back;
 *   bit 2  damage the header (the next 16 bytes go over its first 16).
 *
 * Contract violations abort(); tests/fuzz/replay.c replays the committed
 * corpus (tests/fuzz/corpus/journal/) in every build.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tq/tq.h>

#include "handle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FILE_BYTES (1u << 20)
#define MAX_IMAGE  (64u << 10)

static char jdir[128];
static unsigned counter;

#define REQUIRE(cond, ...)                                                    \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz-journal: %s:%d: %s: ", __FILE__, \
				__LINE__, #cond);                             \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
			abort();                                              \
		}                                                             \
	} while (0)

static void config(struct tq_config *c)
{
	tq_config_init(c);
	c->queues = 2;
	c->levels = 2;
	c->capacity = 64;
	c->max_payload = 2048;
	c->procs = 8;
	c->arena_bytes = 512u << 10;
	c->journal_file_mb = 1;
	c->durability = TQ_DURABILITY_ASYNC;  /* flushed by tqd only: no fsync here */
}

static void remove_files(void)
{
	DIR *d = opendir(jdir);
	struct dirent *e;
	char path[sizeof jdir + 300];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", jdir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

static void cleanup(void)
{
	if (jdir[0]) {
		remove_files();
		rmdir(jdir);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (jdir[0])
		return 0;
	snprintf(jdir, sizeof jdir, "/dev/shm/tq-fuzzj-%d-XXXXXX", (int)getpid());
	REQUIRE(mkdtemp(jdir) != NULL, "mkdtemp: %m");
	atexit(cleanup);
	return 0;
}

static void header(uint8_t *img)
{
	struct tq__jfile *h = (struct tq__jfile *)(void *)img;
	struct tq_config c;

	config(&c);
	memset(img, 0, TQ__JPAGE);
	h->magic = TQ__JMAGIC;
	h->version = TQ__JVERSION;
	h->hdr_size = sizeof(*h);
	h->journal_id = 0x1234567890abcdefull;
	h->file = 0;
	h->file_bytes = FILE_BYTES;
	h->queues = c.queues;
	h->levels = c.levels;
	h->capacity = c.capacity;
	h->max_payload = c.max_payload;
	h->procs = c.procs;
	h->mode = 0600;
	h->group = -1;
	h->arena_bytes = c.arena_bytes;
	h->crc = tq__crc32c(0, h, offsetof(struct tq__jfile, crc));
	h->hwm = tq__jhwm_word(1);
}

/* Structured mode: records with the right length, LSN and CRC. */
static size_t records(uint8_t *img, size_t cap, const uint8_t *data, size_t size)
{
	size_t pos = TQ__JPAGE;

	while (size >= 8 && pos + TQ__JREC_MIN <= cap) {
		struct tq__jrec r;
		uint16_t type, blen;
		uint32_t n, len, crc;

		memcpy(&type, data, 2);
		memcpy(&blen, data + 2, 2);
		memcpy(&n, data + 4, 4);
		data += 8;
		size -= 8;
		if (blen > size)
			blen = (uint16_t)size;
		len = tq__jalign(TQ__JREC_MIN + (uint64_t)blen);
		if (pos + len > cap)
			break;
		memset(&r, 0, sizeof r);
		r.len = len;
		r.lsn = pos;            /* file 0: LSN = offset */
		r.type = type;
		r.n = n;
		memcpy(img + pos, &r, sizeof r);
		memset(img + pos + TQ__JREC_MIN, 0, len - TQ__JREC_MIN);
		memcpy(img + pos + TQ__JREC_MIN, data, blen);
		crc = tq__crc32c(0, &len, sizeof(len));
		crc = tq__crc32c(crc, img + pos + 8, len - 8);
		memcpy(img + pos + 4, &crc, 4);
		data += blen;
		size -= blen;
		pos += len;
	}
	return pos;
}

struct scan_ctx {
	const uint8_t *lo, *hi;
	unsigned records;
};

static int on_record(void *ctx, const struct tq__jrec *r, const uint8_t *body)
{
	struct scan_ctx *c = ctx;
	const uint8_t *p = (const uint8_t *)r;
	volatile uint8_t sum = 0;

	REQUIRE(p >= c->lo && p + TQ__JREC_MIN <= c->hi, "record outside the image");
	REQUIRE(r->len >= TQ__JREC_MIN && r->len <= (size_t)(c->hi - p), "record of %u bytes",
		r->len);
	REQUIRE(body == p + TQ__JREC_MIN, "body not after the record header");
	for (uint32_t i = 0; i < r->len - TQ__JREC_MIN; i++)
		sum += body[i];
	(void)sum;
	c->records++;
	return 0;
}

static void use(tq *t)
{
	struct tq_stats st;
	struct tq_journal_info ji;
	struct tq_info in;
	struct tq_task tasks[8];
	uint64_t ids[32], cursor = 0;
	int n;

	REQUIRE(tq_journal_info(t, &ji) == 0, "tq_journal_info: %s", tq_last_error(t));
	for (int q = 0; q < 2; q++) {
		int r = tq_stats(t, q, -1, &st);
		REQUIRE(r == 0 || (r < 0 && r >= -4095), "tq_stats gave %d", r);
	}
	for (unsigned s = TQ_STATE_PENDING; s <= TQ_STATE_DEAD; s++) {
		cursor = 0;
		n = tq_list(t, 0, -1, s, ids, 32, &cursor);
		REQUIRE(n >= -4095 && n <= 32, "tq_list gave %d", n);
		for (int i = 0; i < n; i++) {
			int r = tq_get(t, ids[i], &in);
			REQUIRE(r == 0 || (r < 0 && r >= -4095), "tq_get gave %d", r);
		}
	}
	n = tq_lease(t, &(struct tq_lease_opts){ .timeout_ms = 0 }, tasks, 8);
	REQUIRE(n >= -4095 && n <= 8, "tq_lease gave %d", n);
	for (int i = 0; i < n; i++) {
		REQUIRE(tasks[i].len <= 2048, "leased task of %u bytes", tasks[i].len);
		if (tasks[i].len) {
			volatile uint8_t sum = 0;
			for (uint32_t k = 0; k < tasks[i].len; k++)
				sum += ((const uint8_t *)tasks[i].payload)[k];
			(void)sum;
		}
		int r = i % 2 ? tq_ack(t, tasks[i].id, NULL, 0) : tq_fail(t, tasks[i].id);
		REQUIRE(r >= -4095 && r <= 1, "finishing gave %d", r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t img[MAX_IMAGE];
	struct scan_ctx sc;
	struct tq__jscan_report rep;
	size_t len;
	unsigned mode;

	if (!jdir[0])
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	header(img);
	if ((mode & 4) && size >= 16) {
		memcpy(img, data, 16);
		data += 16;
		size -= 16;
	}
	if (mode & 1) {
		len = records(img, sizeof img, data, size);
	} else {
		if (size > sizeof img - TQ__JPAGE)
			size = sizeof img - TQ__JPAGE;
		memcpy(img + TQ__JPAGE, data, size);
		len = TQ__JPAGE + size;
	}

	/* The scan alone, on a heap copy of exactly len bytes (ASan sees a
	 * read past its end). */
	uint8_t *copy = malloc(len);
	REQUIRE(copy != NULL, "no memory");
	memcpy(copy, img, len);
	memset(&sc, 0, sizeof sc);
	memset(&rep, 0, sizeof rep);
	sc.lo = copy;
	sc.hi = copy + len;
	int r = tq__jnl_scan(copy, len, 0, on_record, &sc, &rep);
	REQUIRE(r == 0, "tq__jnl_scan gave %d", r);
	REQUIRE(rep.records == sc.records, "report says %llu records, %u seen",
		(unsigned long long)rep.records, sc.records);
	free(copy);

	if (!(mode & 2))
		return 0;
	/* Replay: the file in a directory, a segment created from it. */
	char path[sizeof jdir + 64], name[64];
	struct tq_config c;
	tq *t = NULL;
	int fd;

	remove_files();
	REQUIRE(tq__jnl_path(jdir, 0, path, sizeof path) == 0, "path");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0, "open %s: %m", path);
	REQUIRE(write(fd, img, len) == (ssize_t)len, "write: %m");
	close(fd);
	config(&c);
	snprintf(c.journal_dir, sizeof c.journal_dir, "%s", jdir);
	snprintf(name, sizeof name, "/tq-fuzzj-%d-%u", (int)getpid(), counter++);
	if (getenv("FUZZ_JOURNAL_VERBOSE")) {
		struct tq_config c2 = c;
		fprintf(stderr, "fuzz-journal: tq__jnl_config %d %s\n", tq__jnl_config(jdir, &c2),
			tq_last_error(NULL));
	}
	r = tq_create(name, &c, &t);
	if (getenv("FUZZ_JOURNAL_VERBOSE")) {
		struct tq_journal_info ji;
		memset(&ji, 0, sizeof ji);
		if (r == 0)
			tq_journal_info(t, &ji);
		fprintf(stderr, "fuzz-journal: mode %#x, %zu bytes, %u records scanned: tq_create %d %s;"
			" replay: %llu records, %llu tasks, %llu damaged\n", mode, len, sc.records, r,
			r < 0 ? tq_last_error(NULL) : "", (unsigned long long)ji.replay_records,
			(unsigned long long)ji.replay_tasks, (unsigned long long)ji.replay_damaged);
	}
	REQUIRE(r == 0 || (r < 0 && r >= -4095), "tq_create gave %d", r);
	if (r == 0) {
		tq_unlink(name);
		use(t);
		tq_detach(t);
	}
	remove_files();
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test-powercut - what a power cut can do to a journal: files cut short at
 * random offsets, random bytes flipped, pages never written (zeros). After
 * each, replay must not crash, and every task whose submit record is intact
 * must come back (with its level, type and payload length) unless its ack
 * record is intact too; nothing else may come back. Damage is reported.
 */
#include "tq-test.h"

enum { N = 2500, ACKED = 400, TRIALS = 40 };

struct rec {
	uint64_t id;
	uint64_t start, end;         /* its submit record [start, end) */
	uint64_t ack_start, ack_end; /* its ack record, 0 if not acked */
	uint32_t len, level, type;
};

static struct rec recs[N];
static uint64_t F;

struct file {
	char name[NAME_MAX + 1];
	uint8_t *data;
	size_t size;
};
static struct file files[64];
static unsigned nfiles;

static uint32_t rec_len(uint32_t payload)
{
	return 24 + 40 + ((payload + 7) & ~7u);
}

static void make_journal(const char *dir, const struct tq_config *c)
{
	char name[TQ_NAME_MAX + 1];
	tq *t = tqt_create(name, c);
	int q = CHECK_OK(tq_queue_declare(t, "pc", NULL));
	struct tq_journal_info ji;
	static uint8_t buf[1200];

	CHECK_RET(tq_journal_info(t, &ji), 0);
	F = ji.file_bytes;
	for (int i = 0; i < N; i++) {
		struct tq_submit_opts so;
		memset(&so, 0, sizeof so);
		recs[i].len = (uint32_t)((i * 37) % 1100);
		recs[i].level = (uint32_t)(i % 4);
		recs[i].type = (uint32_t)i;
		so.level = recs[i].level;
		so.type = recs[i].type;
		memset(buf, i & 0xff, recs[i].len);
		CHECK_RET(tq_submit(t, q, buf, recs[i].len, &so, &recs[i].id), 0);
		CHECK_RET(tq_journal_info(t, &ji), 0);
		recs[i].end = ji.tail_lsn;
		recs[i].start = ji.tail_lsn - rec_len(recs[i].len);
	}
	/* Ack ACKED tasks. A handle gathers its acks' END records and writes
	 * them together: whenever the tail moves, the acks not yet placed are
	 * in the record that just went to [before, after). */
	static int pending[ACKED];
	int npending = 0;
	uint64_t before;
	CHECK_RET(tq_journal_info(t, &ji), 0);
	before = ji.tail_lsn;
	for (int n = 0; n <= ACKED; n++) {
		if (n < ACKED) {
			struct tq_task task;
			CHECK_RET(tq_lease(t, NULL, &task, 1), 1);
			/* A lease writes gathered ENDs older than flush_ms. */
			CHECK_RET(tq_journal_info(t, &ji), 0);
			if (ji.tail_lsn != before) {
				CHECK_EQU(ji.tail_lsn - before, 24 + 8ull * (unsigned)npending);
				for (int k = 0; k < npending; k++) {
					recs[pending[k]].ack_start = before;
					recs[pending[k]].ack_end = ji.tail_lsn;
				}
				npending = 0;
				before = ji.tail_lsn;
			}
			CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
			for (int i = 0; i < N; i++)
				if (recs[i].id == task.id)
					pending[npending++] = i;
		} else {
			CHECK_RET(tq_journal_flush(t), 0);
		}
		CHECK_RET(tq_journal_info(t, &ji), 0);
		if (ji.tail_lsn != before) {
			CHECK_EQU(ji.tail_lsn - before, 24 + 8ull * (unsigned)npending);
			for (int k = 0; k < npending; k++) {
				recs[pending[k]].ack_start = before;
				recs[pending[k]].ack_end = ji.tail_lsn;
			}
			npending = 0;
			before = ji.tail_lsn;
		}
	}
	CHECK_EQ(npending, 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	/* Keep the pristine files. */
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strstr(e->d_name, ".tqj"))
			continue;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY);
		CHECK(fd >= 0);
		struct stat st;
		CHECK(fstat(fd, &st) == 0);
		struct file *f = &files[nfiles++];
		CHECK(nfiles < 64);
		snprintf(f->name, sizeof f->name, "%s", e->d_name);
		f->size = (size_t)st.st_size;
		f->data = malloc(f->size);
		CHECK(f->data != NULL);
		CHECK((size_t)pread(fd, f->data, f->size, 0) == f->size);
		close(fd);
	}
	closedir(d);
	CHECK_GE(nfiles, 2);
}

static uint64_t file_index(const struct file *f)
{
	return strtoull(f->name, NULL, 16);
}

/* Damage: [lo, hi) ranges of LSNs whose bytes changed (flips, zeroed
 * pages), and a cut: nothing at or after `cut` survives. */
struct damage {
	uint64_t lo[16], hi[16];
	unsigned n;
	uint64_t cut;
};

static bool touched(const struct damage *dm, uint64_t a, uint64_t b)
{
	if (b > dm->cut)
		return true;
	for (unsigned k = 0; k < dm->n; k++)
		if (dm->lo[k] < b && a < dm->hi[k])
			return true;
	return false;
}

/* Whether a damaged range (not the cut) touches [a, b). */
static bool damaged(const struct damage *dm, uint64_t a, uint64_t b)
{
	for (unsigned k = 0; k < dm->n; k++)
		if (dm->lo[k] < b && a < dm->hi[k])
			return true;
	return false;
}

static void write_trial(const char *dir, const struct damage *dm, unsigned seed)
{
	for (unsigned k = 0; k < nfiles; k++) {
		struct file *f = &files[k];
		uint64_t base = file_index(f) * F;
		char path[PATH_MAX];
		if (base >= dm->cut)
			continue;                   /* gone */
		size_t size = f->size;
		if (dm->cut - base < size)
			size = (size_t)(dm->cut - base);
		uint8_t *copy = malloc(f->size);
		CHECK(copy != NULL);
		memcpy(copy, f->data, f->size);
		for (unsigned d = 0; d < dm->n; d++)
			for (uint64_t l = dm->lo[d]; l < dm->hi[d]; l++)
				if (l >= base && l < base + f->size) {
					if (dm->hi[d] - dm->lo[d] == 1)
						copy[l - base] ^= (uint8_t)(1u << (seed % 8));
					else
						copy[l - base] = 0;
				}
		snprintf(path, sizeof path, "%s/%s", dir, f->name);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		CHECK(fd >= 0);
		CHECK((size_t)write(fd, copy, size) == size);
		close(fd);
		free(copy);
	}
}

static void trial(const struct tq_config *base_cfg, const struct damage *dm, unsigned seed,
		  const char *what)
{
	char dir[PATH_MAX / 16], name[TQ_NAME_MAX + 1];
	struct tq_config c = *base_cfg;
	tq *t = NULL;

	tqt_tmpdir(dir);
	snprintf(c.journal_dir, sizeof c.journal_dir, "%s", dir);
	write_trial(dir, dm, seed);
	tqt_segname(name);
	int r = tq_create(name, &c, &t);
	CHECKF(r == 0, "%s: replay failed: %s (%s)", what, tq_strerror(r), tq_last_error(NULL));
	struct tq_journal_info ji;
	CHECK_RET(tq_journal_info(t, &ji), 0);
	unsigned back = 0;
	bool hit = false;
	/* Replay tells damage from the log's unwritten end by a valid record
	 * after it: damage is reported when it lies before the last record
	 * left intact (zeros up to the cut look like a log that ends there). */
	uint64_t last_ok = 0;
	for (int i = 0; i < N; i++) {
		struct rec *x = &recs[i];
		if (!touched(dm, x->start, x->end) && x->start > last_ok)
			last_ok = x->start;
		if (x->ack_end && !touched(dm, x->ack_start, x->ack_end) && x->ack_start > last_ok)
			last_ok = x->ack_start;
	}
	for (int i = 0; i < N; i++) {
		struct rec *x = &recs[i];
		bool sub_ok = !touched(dm, x->start, x->end);
		bool ack_ok = x->ack_end && !touched(dm, x->ack_start, x->ack_end);
		bool want = sub_ok && !ack_ok;
		struct tq_info in;
		int g = tq_get(t, x->id, &in);
		if (damaged(dm, x->start, x->end) && x->end <= last_ok)
			hit = true;
		if (want) {
			CHECKF(g == 0, "%s: task %d (record [%llu, %llu)) lost", what, i,
			       (unsigned long long)x->start, (unsigned long long)x->end);
			CHECK_EQ(in.len, x->len);
			CHECK_EQ(in.level, x->level);
			CHECK_EQ(in.type, x->type);
			CHECK_EQ(in.state, TQ_STATE_PENDING);
			back++;
		} else {
			CHECKF(g == -ENOENT || sub_ok, "%s: task %d came back from a damaged record",
			       what, i);
		}
	}
	CHECK_EQU(ji.replay_tasks, back);
	if (hit)
		CHECKF(ji.replay_damaged > 0, "%s: damage not reported", what);
	/* Payloads are intact: spot-check by leasing a few. */
	for (int k = 0; k < 20; k++) {
		struct tq_task task;
		if (tq_lease(t, NULL, &task, 1) != 1)
			break;
		const uint8_t *p = task.payload;
		for (uint32_t b = 0; b < task.len; b++)
			CHECKF(p[b] == (uint8_t)(task.type & 0xff), "%s: payload of %llu differs", what,
			       (unsigned long long)task.id);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	tqt_segname_drop(name);
	tqt_rm_rf(dir);
}

int main(void)
{
	tqt_init("powercut");
	tqt_guard(280);
	char dir[PATH_MAX / 16];
	struct tq_config c = tqt_small_config();
	c.capacity = 8192;
	c.levels = 4;
	c.journal_file_mb = 1;
	c.max_payload = 4096;
	snprintf(c.journal_dir, sizeof c.journal_dir, "%s", tqt_tmpdir(dir));
	make_journal(dir, &c);
	uint64_t last = recs[N - 1].end;
	for (int i = 0; i < N; i++)
		if (recs[i].ack_end > last)
			last = recs[i].ack_end;
	unsigned seed = getenv("TQT_SEED") ? (unsigned)atoi(getenv("TQT_SEED")) : (unsigned)getpid();
	TQT_LOG("%u files, log up to LSN %llu, seed %u", nfiles, (unsigned long long)last, seed);

	for (int k = 0; k < TRIALS; k++) {
		struct damage dm;
		char what[64];
		memset(&dm, 0, sizeof dm);

		/* Cut at a random LSN of the written log. */
		dm.cut = (uint64_t)rand_r(&seed) % (last + 1);
		snprintf(what, sizeof what, "cut at %llu", (unsigned long long)dm.cut);
		trial(&c, &dm, seed, what);

		/* Flip 1..6 random bytes (headers included), no cut. */
		memset(&dm, 0, sizeof dm);
		dm.cut = UINT64_MAX;
		dm.n = 1 + (unsigned)rand_r(&seed) % 6;
		for (unsigned d = 0; d < dm.n; d++) {
			dm.lo[d] = (uint64_t)rand_r(&seed) % last;
			dm.hi[d] = dm.lo[d] + 1;
		}
		snprintf(what, sizeof what, "%u flips, first at %llu", dm.n,
			 (unsigned long long)dm.lo[0]);
		trial(&c, &dm, seed, what);

		/* A page that never reached the disk, and a cut after it. */
		memset(&dm, 0, sizeof dm);
		dm.n = 1;
		dm.lo[0] = ((uint64_t)rand_r(&seed) % last) & ~4095ull;
		dm.hi[0] = dm.lo[0] + 4096;
		dm.cut = dm.lo[0] + (uint64_t)rand_r(&seed) % (last - dm.lo[0] + 1);
		snprintf(what, sizeof what, "zero page at %llu, cut at %llu",
			 (unsigned long long)dm.lo[0], (unsigned long long)dm.cut);
		trial(&c, &dm, seed, what);
	}
	TQT_LOG("%d damaged journals replayed", 3 * TRIALS);
	for (unsigned k = 0; k < nfiles; k++)
		free(files[k].data);
	return 0;
}

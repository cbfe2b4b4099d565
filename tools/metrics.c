/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - the Prometheus text exposition (format 0.0.4) of a segment:
 * every tq_stats() counter and gauge and both latency histograms per
 * (queue, level), the segment's figures, the attached processes by state,
 * and the journal's figures. It reads the segment through the public API
 * only, like any other client, so it can never disturb the engine.
 *
 * Choices, also in docs/metrics.md:
 *  - Every sample carries segment="NAME", so that several tqd (one per
 *    segment) can share one node_exporter textfile directory or one
 *    Prometheus job without their series colliding.
 *  - Per-queue figures are exposed per (queue, level) only, never also as a
 *    level-less total in the same family: a total next to its parts would
 *    make sum() count everything twice. sum by (queue) gives the total.
 *  - Level 0 of every declared queue is always exposed, so that each queue
 *    has its series (at zero) from the moment it is declared and rate() and
 *    absent() work before its first task. Any other level is exposed once
 *    one of its counters or gauges is non-zero. Counters only grow, so a
 *    level that appeared stays; a segment with 64 levels that uses two of
 *    them exposes two, not 64.
 *  - The engine keeps 168 log-linear latency buckets (4 per power of two).
 *    The exposition uses the bucket edges at powers of two from 2^10 ns
 *    (~1 us) to 2^42 ns (~73 min): 33 buckets and +Inf. They are edges of
 *    the engine's own buckets, so each cumulative count is exact, and `le`
 *    is printed as the exact decimal of the edge in seconds.
 *  - Gauges that are differences of counters (pending, delayed, leased) are
 *    read without stopping anyone and may be off by the operations in
 *    flight, as tq_stats() says.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* ------------------------------------------------------------------------
 * The buffer
 */

void metrics_buf_reset(struct metrics_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data)
		b->data[0] = 0;
}

void metrics_buf_free(struct metrics_buf *b)
{
	if (!b)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool buf_reserve(struct metrics_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->failed)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	if (b->len + more + 1 > METRICS_BUF_MAX) {
		b->failed = true;
		return false;
	}
	cap = b->cap ? b->cap : 16384;
	while (cap < b->len + more + 1)
		cap *= 2;
	if (cap > METRICS_BUF_MAX)
		cap = METRICS_BUF_MAX;
	p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

static void buf_add(struct metrics_buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = 0;
}

static void buf_puts(struct metrics_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (b->data && (size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ------------------------------------------------------------------------
 * Text format pieces
 */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A label value: backslash, double quote and newline escaped as the format
 * says; bytes that are not UTF-8 (which the format requires) become '?'. */
static void buf_label_value(struct metrics_buf *b, const char *v)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n = strlen(v);

	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(s + i, n - i);

		if (l == 0) {
			buf_add(b, "?", 1);
			i++;
		} else if (s[i] == '\\') {
			buf_add(b, "\\\\", 2);
			i++;
		} else if (s[i] == '"') {
			buf_add(b, "\\\"", 2);
			i++;
		} else if (s[i] == '\n') {
			buf_add(b, "\\n", 2);
			i++;
		} else {
			buf_add(b, (const char *)s + i, l);
			i += l;
		}
	}
}

/* ns as exact decimal seconds: 1500000 -> "0.0015", 2000000000 -> "2". */
static void fmt_seconds(char *buf, size_t size, uint64_t ns)
{
	uint64_t frac = ns % 1000000000u;
	int n;

	if (!frac) {
		snprintf(buf, size, "%" PRIu64, ns / 1000000000u);
		return;
	}
	n = snprintf(buf, size, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, frac);
	while (n > 0 && (size_t)n < size && buf[n - 1] == '0')
		buf[--n] = 0;
}

static void family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
	metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name{labels} value, labels already rendered ("" for none). */
static void sample(struct metrics_buf *b, const char *name, const char *labels, const char *value)
{
	if (*labels)
		metrics_buf_printf(b, "%s{%s} %s\n", name, labels, value);
	else
		metrics_buf_printf(b, "%s %s\n", name, value);
}

static void sample_u64(struct metrics_buf *b, const char *name, const char *labels, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	sample(b, name, labels, num);
}

/* labels = base + ",key=\"value\"" (value escaped), into a buffer. */
static void labels_add(struct metrics_buf *l, const char *key, const char *value)
{
	if (l->len)
		buf_add(l, ",", 1);
	buf_puts(l, key);
	buf_add(l, "=\"", 2);
	buf_label_value(l, value);
	buf_add(l, "\"", 1);
}

static const char *labels_str(const struct metrics_buf *l)
{
	return l->data && !l->failed ? l->data : "";
}

/* ------------------------------------------------------------------------
 * The histogram boundaries
 */

#ifndef TQ_METRICS_NO_HISTOGRAM
#define HIST_MIN_LOG2 10   /* 1.024 us */
#define HIST_MAX_LOG2 42   /* 4398 s, about 73 min */

/* Fill bucket[] with the engine's bucket indexes whose upper edge is a
 * power of two (as 2^k or 2^k - 1, whichever the engine's edges are) in
 * [2^HIST_MIN_LOG2, 2^HIST_MAX_LOG2]; returns how many. */
static unsigned hist_bounds(unsigned *bucket, unsigned max)
{
	unsigned n = 0;
	int last_k = -1;

	for (unsigned b = 0; b + 1 < TQ_HIST_BUCKETS && n < max; b++) {
		uint64_t m = tq_hist_bucket_max_ns(b), p;
		int k;

		if (m == 0 || m == UINT64_MAX)
			continue;
		if ((m & (m - 1)) == 0)
			p = m;
		else if (((m + 1) & m) == 0)
			p = m + 1;
		else
			continue;
		k = __builtin_ctzll(p);
		if (k < HIST_MIN_LOG2 || k > HIST_MAX_LOG2 || k == last_k)
			continue;
		bucket[n++] = b;
		last_k = k;
	}
	if (n >= 4)
		return n;
	/* Not the layout the header describes: every 4th bucket in range. */
	n = 0;
	for (unsigned b = 0; b + 1 < TQ_HIST_BUCKETS && n < max; b += 4) {
		uint64_t m = tq_hist_bucket_max_ns(b);

		if (m >= (1ull << HIST_MIN_LOG2) && m <= (1ull << HIST_MAX_LOG2))
			bucket[n++] = b;
	}
	return n;
}
#endif

/* ------------------------------------------------------------------------
 * Rendering
 */

struct row {                     /* one exposed (queue, level) */
	int q;
	unsigned level;
	struct tq_stats st;
};

struct ctx {
	tq *t;
	struct metrics_buf *b;
	const char *segment;
	char qname[TQ_QUEUES_MAX][TQ_QUEUE_NAME_MAX + 1];
	struct row *rows;
	size_t nrows;
	struct metrics_buf lb;       /* scratch for label sets */
};

/* The label set of the segment alone, plus key="value" when key != NULL. */
static const char *seg_labels(struct ctx *c, const char *key, const char *value)
{
	metrics_buf_reset(&c->lb);
	if (c->segment)
		labels_add(&c->lb, "segment", c->segment);
	if (key)
		labels_add(&c->lb, key, value);
	return labels_str(&c->lb);
}

static const char *row_labels(struct ctx *c, const struct row *r)
{
	char lv[16];

	snprintf(lv, sizeof(lv), "%u", r->level);
	seg_labels(c, "queue", c->qname[r->q]);
	labels_add(&c->lb, "level", lv);
	return labels_str(&c->lb);
}

static void gauge_u64(struct ctx *c, const char *name, const char *help, uint64_t v)
{
	family(c->b, name, "gauge", help);
	sample_u64(c->b, name, seg_labels(c, NULL, NULL), v);
}

static void counter_u64(struct ctx *c, const char *name, const char *help, uint64_t v)
{
	family(c->b, name, "counter", help);
	sample_u64(c->b, name, seg_labels(c, NULL, NULL), v);
}

static __attribute__((unused)) void gauge_seconds(struct ctx *c, const char *name, const char *help, uint64_t ns)
{
	char num[40];

	fmt_seconds(num, sizeof(num), ns);
	family(c->b, name, "gauge", help);
	sample(c->b, name, seg_labels(c, NULL, NULL), num);
}

static int render_segment(struct ctx *c, struct tq_segment_info *si)
{
	int e = tq_segment_info(c->t, si);

	if (e < 0)
		return e;
	gauge_u64(c, "tq_segment_bytes", "Size of the shared-memory segment in bytes.",
		  si->segment_bytes);
	gauge_u64(c, "tq_tasks_held", "Task slots in use now, in every state (pending, "
		  "delayed, leased, done with a result, dead).", si->tasks_held);
	gauge_u64(c, "tq_tasks_capacity", "Tasks the segment can hold at once.",
		  si->config.capacity);
	gauge_u64(c, "tq_queues_declared", "Named queues declared.", si->queues_declared);
	gauge_u64(c, "tq_queues_max", "Named queues the segment has room for.",
		  si->config.queues);
	gauge_u64(c, "tq_levels", "Priority levels of every queue (0 is the most urgent).",
		  si->config.levels);
	gauge_u64(c, "tq_max_payload_bytes", "Largest payload or result in bytes.",
		  si->config.max_payload);
	gauge_u64(c, "tq_procs_max", "Handles that can be attached at once.", si->config.procs);
	gauge_u64(c, "tq_procs_attached", "Handles attached now.", si->procs_attached);
	counter_u64(c, "tq_repairs_total", "Half-done operations of dead processes repaired, "
		    "and expired leases taken back.", si->repairs);
	return 0;
}

#ifndef TQ_METRICS_NO_PROCS
static const char *const proc_states[] = { "idle", "waiting", "busy", "dead", "detached" };
#define NPROC_STATES (sizeof(proc_states) / sizeof(proc_states[0]))

static int render_procs(struct ctx *c)
{
	struct tq_proc_info pi[64];
	uint64_t by_state[NPROC_STATES] = { 0 }, leases = 0, oldest = 0, now = tq_now_ns();
	unsigned cursor = 0, supervisors = 0;
	int n;

	/* Bounded: every call moves the cursor on, and there are at most 4096
	 * records; the bound only guards against a cursor that never ends. */
	for (int rounds = 0; rounds < 4096; rounds++) {
		if ((n = tq_procs(c->t, pi, 64, &cursor)) < 0)
			return n;
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			if (pi[i].state < NPROC_STATES)
				by_state[pi[i].state]++;
			if (pi[i].state == TQ_PROC_DEAD || pi[i].state == TQ_PROC_DETACHED)
				continue;
			leases += pi[i].leased_now;
			if (pi[i].flags & TQ_PROC_SUPERVISOR)
				supervisors++;
			if (pi[i].heartbeat_ns && now > pi[i].heartbeat_ns &&
			    now - pi[i].heartbeat_ns > oldest)
				oldest = now - pi[i].heartbeat_ns;
		}
	}
	family(c->b, "tq_procs", "gauge", "Process records by state: idle, waiting (asleep in "
	       "tq_lease), busy (holding leases), dead (gone, not yet recovered), detached "
	       "(detached holding tasks).");
	for (unsigned s = 0; s < NPROC_STATES; s++)
		sample_u64(c->b, "tq_procs", seg_labels(c, "state", proc_states[s]), by_state[s]);
	gauge_u64(c, "tq_procs_leases_held", "Leases held now by live processes.", leases);
	gauge_u64(c, "tq_supervisor_active", "1 if a live process holds the supervisor role.",
		  supervisors ? 1 : 0);
	gauge_seconds(c, "tq_procs_heartbeat_age_max_seconds", "Time since the last sign of "
		      "life of the quietest live process (0 when none is attached).", oldest);
	return 0;
}
#endif

#ifndef TQ_METRICS_NO_JOURNAL
static const char *durability_name(uint32_t d)
{
	switch (d) {
	case TQ_DURABILITY_NONE: return "none";
	case TQ_DURABILITY_ASYNC: return "async";
	case TQ_DURABILITY_SYNC: return "sync";
	default: return "unknown";
	}
}

static int render_journal(struct ctx *c)
{
	struct tq_journal_info ji;
	bool on;
	int e;

	memset(&ji, 0, sizeof(ji));
	if ((e = tq_journal_info(c->t, &ji)) < 0)
		return e;
	ji.dir[sizeof(ji.dir) - 1] = 0;
	on = ji.dir[0] != 0;
	gauge_u64(c, "tq_journal_enabled", "1 if the segment keeps a journal on disk.", on);
	if (!on)
		return 0;
	family(c->b, "tq_journal_info", "gauge", "The journal's settings, as labels; always 1.");
	seg_labels(c, "durability", durability_name(ji.durability));
	labels_add(&c->lb, "dir", ji.dir);
	sample(c->b, "tq_journal_info", labels_str(&c->lb), "1");
	gauge_seconds(c, "tq_journal_flush_interval_seconds", "How often the journal is "
		      "flushed under async durability.", (uint64_t)ji.flush_ms * 1000000u);
	gauge_u64(c, "tq_journal_file_size_bytes", "Size at which journal files roll.",
		  ji.file_bytes);
	gauge_u64(c, "tq_journal_files", "Journal files still needed for replay.", ji.files);
	counter_u64(c, "tq_journal_records_total", "Records appended to the journal.", ji.records);
	counter_u64(c, "tq_journal_bytes_total", "Bytes appended to the journal.", ji.bytes);
	counter_u64(c, "tq_journal_flushes_total", "Flushes (fdatasync) of the journal.",
		    ji.flushes);
	counter_u64(c, "tq_journal_checkpoints_total", "Checkpoints written (live tasks "
		    "rewritten so old files can go).", ji.checkpoints);
	gauge_u64(c, "tq_journal_head_lsn", "Journal position where replay starts (the last "
		  "complete checkpoint).", ji.head_lsn);
	gauge_u64(c, "tq_journal_tail_lsn", "Journal position of the next record.", ji.tail_lsn);
	gauge_u64(c, "tq_journal_durable_lsn", "Every record that ended below this journal "
		  "position is on disk.", ji.durable_lsn);
	gauge_u64(c, "tq_journal_undurable_bytes", "Bytes appended but not yet known to be on "
		  "disk (tail minus durable position).",
		  ji.tail_lsn > ji.durable_lsn ? ji.tail_lsn - ji.durable_lsn : 0);
	if (ji.last_flush_ns) {
		char num[40];

		fmt_seconds(num, sizeof(num), ji.last_flush_ns);
		family(c->b, "tq_journal_last_flush_timestamp_seconds", "gauge",
		       "Unix time of the last flush.");
		sample(c->b, "tq_journal_last_flush_timestamp_seconds", seg_labels(c, NULL, NULL),
		       num);
	}
	gauge_u64(c, "tq_journal_replay_records", "Good records read when the segment was "
		  "created from the journal.", ji.replay_records);
	gauge_u64(c, "tq_journal_replay_tasks", "Unfinished tasks restored from the journal "
		  "when the segment was created.", ji.replay_tasks);
	gauge_seconds(c, "tq_journal_replay_duration_seconds", "Time the replay took when the "
		      "segment was created.", ji.replay_ns);
	gauge_u64(c, "tq_journal_replay_damaged_regions", "Damaged journal regions (torn or "
		  "corrupt) skipped by the replay.", ji.replay_damaged);
	gauge_u64(c, "tq_journal_replay_dropped_bytes", "Bytes in the damaged regions skipped "
		  "by the replay.", ji.replay_dropped);
	gauge_u64(c, "tq_journal_replay_damage_lsn", "Journal position of the first damaged "
		  "region the replay skipped, 0 if none.", ji.replay_damage_lsn);
	return 0;
}
#endif

/* The (queue, level) rows to expose, into c->rows. */
static int collect_rows(struct ctx *c, const struct metrics_opts *o,
			const struct tq_segment_info *si)
{
	int qs[TQ_QUEUES_MAX];
	bool seen[TQ_QUEUES_MAX] = { false };
	unsigned nq = 0;
	int e;

	if (o && o->queues && o->nqueues) {
		/* Each queue once: a duplicate series would break the format. */
		for (unsigned i = 0; i < o->nqueues && nq < TQ_QUEUES_MAX; i++) {
			int q = o->queues[i];

			if (q < 0 || q >= TQ_QUEUES_MAX)
				return -EINVAL;
			if (!seen[q])
				qs[nq++] = q;
			seen[q] = true;
		}
	} else {
		for (uint32_t q = 0; q < si->config.queues && q < TQ_QUEUES_MAX; q++)
			qs[nq++] = (int)q;
	}
	c->rows = calloc((size_t)nq * (si->config.levels ? si->config.levels : 1),
			 sizeof(*c->rows));
	if (!c->rows)
		return -ENOMEM;
	for (unsigned i = 0; i < nq; i++) {
		int q = qs[i];

		e = tq_queue_name(c->t, q, c->qname[q], sizeof(c->qname[q]));
		if (e == -ENOENT && !(o && o->nqueues))
			continue;        /* not declared */
		if (e < 0)
			return e;
		for (uint32_t l = 0; l < si->config.levels; l++) {
			struct row *r = &c->rows[c->nrows];

			if ((e = tq_stats(c->t, q, (int)l, &r->st)) < 0)
				return e;
			if (l > 0 && !(r->st.depth | r->st.delayed | r->st.leased_now |
				       r->st.submitted | r->st.leased | r->st.acked |
				       r->st.failed | r->st.released | r->st.dead |
				       r->st.cancelled | r->st.requeued | r->st.moved |
				       r->st.expired))
				continue;
			r->q = q;
			r->level = l;
			c->nrows++;
		}
	}
	return 0;
}

static int render_queues(struct ctx *c, const struct metrics_opts *o,
			 const struct tq_segment_info *si)
{
	int e = collect_rows(c, o, si);
	int last_q = -1;

	if (e < 0)
		return e;
	family(c->b, "tq_queue_paused", "gauge", "1 if leasing from the queue is paused.");
	for (size_t i = 0; i < c->nrows; i++) {
		int q = c->rows[i].q;

		if (q == last_q)
			continue;
		last_q = q;
		if ((e = tq_queue_paused(c->t, q)) < 0)
			return e;
		sample_u64(c->b, "tq_queue_paused", seg_labels(c, "queue", c->qname[q]),
			   (uint64_t)e);
	}

#define ROWS(name, type, help, field) do { \
		family(c->b, name, type, help); \
		for (size_t i = 0; i < c->nrows; i++) \
			sample_u64(c->b, name, row_labels(c, &c->rows[i]), c->rows[i].st.field); \
	} while (0)
	ROWS("tq_queue_pending_tasks", "gauge", "Tasks ready to be leased now.", depth);
	ROWS("tq_queue_delayed_tasks", "gauge", "Tasks waiting for their not-before time "
	     "(delays and retry backoff).", delayed);
	ROWS("tq_queue_leased_tasks", "gauge", "Tasks leased by workers now.", leased_now);
	ROWS("tq_tasks_submitted_total", "counter", "Tasks accepted by submit.", submitted);
	ROWS("tq_tasks_leased_total", "counter", "Leases given (attempts started).", leased);
	ROWS("tq_tasks_acked_total", "counter", "Tasks finished successfully.", acked);
	ROWS("tq_tasks_failed_total", "counter", "Attempts that failed.", failed);
	ROWS("tq_tasks_released_total", "counter", "Leased tasks given back untouched.", released);
	ROWS("tq_tasks_dead_lettered_total", "counter", "Tasks moved to the dead letters.", dead);
	ROWS("tq_tasks_cancelled_total", "counter", "Pending or delayed tasks cancelled.",
	     cancelled);
	ROWS("tq_tasks_requeued_total", "counter", "Dead letters put back to ready.", requeued);
	ROWS("tq_tasks_moved_total", "counter", "Changes of a task's priority level.", moved);
	ROWS("tq_leases_expired_total", "counter",
	     "Leases taken back from live workers at their deadline (tasks that may run twice).",
	     expired);
#undef ROWS

#ifndef TQ_METRICS_NO_HISTOGRAM
	static const struct {
		unsigned kind;
		const char *name, *help;
	} hists[] = {
		{ TQ_HIST_WAIT, "tq_task_wait_seconds",
		  "Time from submit (or from becoming ready again) to the task's first lease." },
		{ TQ_HIST_RUN, "tq_task_run_seconds",
		  "Time from lease to ack or fail, as the worker saw it." },
	};
	unsigned bounds[TQ_HIST_BUCKETS];
	unsigned nb = hist_bounds(bounds, TQ_HIST_BUCKETS);
	char le[40], num[40];

	for (size_t k = 0; k < sizeof(hists) / sizeof(hists[0]); k++) {
		char bname[64], sname[64], cname[64];

		snprintf(bname, sizeof(bname), "%s_bucket", hists[k].name);
		snprintf(sname, sizeof(sname), "%s_sum", hists[k].name);
		snprintf(cname, sizeof(cname), "%s_count", hists[k].name);
		family(c->b, hists[k].name, "histogram", hists[k].help);
		for (size_t i = 0; i < c->nrows; i++) {
			struct tq_histogram h;
			uint64_t cum = 0, total = 0;
			unsigned next = 0;

			if ((e = tq_histogram(c->t, c->rows[i].q, (int)c->rows[i].level,
					      hists[k].kind, &h)) < 0)
				return e;
			/* The buckets are read one by one while others add to
			 * them: count and +Inf come from the same reading, so
			 * that they agree as the format requires. */
			for (unsigned b = 0; b < TQ_HIST_BUCKETS; b++)
				total += h.buckets[b];
			for (unsigned b = 0; b < TQ_HIST_BUCKETS && next < nb; b++) {
				cum += h.buckets[b];
				if (b != bounds[next])
					continue;
				next++;
				fmt_seconds(le, sizeof(le), tq_hist_bucket_max_ns(b));
				row_labels(c, &c->rows[i]);
				labels_add(&c->lb, "le", le);
				sample_u64(c->b, bname, labels_str(&c->lb), cum);
			}
			row_labels(c, &c->rows[i]);
			labels_add(&c->lb, "le", "+Inf");
			sample_u64(c->b, bname, labels_str(&c->lb), total);
			fmt_seconds(num, sizeof(num), h.sum_ns);
			sample(c->b, sname, row_labels(c, &c->rows[i]), num);
			sample_u64(c->b, cname, row_labels(c, &c->rows[i]), total);
		}
	}
#endif
	return 0;
}

static int render(struct ctx *c, const struct metrics_opts *o)
{
	struct tq_segment_info si;
	int e;

	family(c->b, "tq_up", "gauge", "1 if the segment could be read.");
	sample(c->b, "tq_up", seg_labels(c, NULL, NULL), "1");
	family(c->b, "tq_build_info", "gauge", "The version of tq that renders these metrics; "
	       "always 1.");
	sample(c->b, "tq_build_info", seg_labels(c, "version", TQ_VERSION), "1");
	if ((e = render_segment(c, &si)) < 0)
		return e;
#ifndef TQ_METRICS_NO_PROCS
	if ((e = render_procs(c)) < 0)
		return e;
#endif
#ifndef TQ_METRICS_NO_JOURNAL
	if ((e = render_journal(c)) < 0)
		return e;
#endif
	return render_queues(c, o, &si);
}

int metrics_render(tq *t, const struct metrics_opts *o, struct metrics_buf *b)
{
	struct ctx *c;
	size_t start = b->len;
	int e;

	if (b->failed)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));      /* the queue names make it large */
	if (!c) {
		e = -ENOMEM;
	} else {
		c->t = t;
		c->b = b;
		c->segment = o ? o->segment : NULL;
		e = render(c, o);
		if (e == 0 && (b->failed || c->lb.failed))
			e = -ENOMEM;
		free(c->rows);
		metrics_buf_free(&c->lb);
		free(c);
	}
	if (e < 0) {
		/* Whatever was rendered goes: say only that the segment could
		 * not be read (tq_up 0). Small enough to fit even now. */
		b->len = start;
		b->failed = false;
		if (b->data)
			b->data[start] = 0;
		family(b, "tq_up", "gauge", "1 if the segment could be read.");
		if (o && o->segment) {
			buf_puts(b, "tq_up{segment=\"");
			buf_label_value(b, o->segment);
			buf_puts(b, "\"} 0\n");
		} else {
			buf_puts(b, "tq_up 0\n");
		}
	}
	return e;
}

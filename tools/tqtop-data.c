/* SPDX-License-Identifier: MIT */
/*
 * tqtop-data.c - tqtop's samples of a segment, and the queue table made
 * from two of them.
 *
 * A sample only reads: tq_segment_info, tq_stats and tq_histogram per
 * queue and level, tq_queue_paused, tq_dead_list, tq_procs and
 * tq_journal_info. Nothing in it leases, moves or changes a task, so
 * watching a segment does not disturb it. Rates are counter deltas between
 * the two newest samples divided by the time between them. Latency
 * percentiles come from the delta of the histograms between the two
 * samples, i.e. from the events of the last interval only, so that they
 * follow the load as it changes; when a row had no event in the interval,
 * the cumulative histogram (every event since the segment was created) is
 * used instead and the row says so (wait_all/run_all), rather than showing
 * nothing for a quiet queue.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tqtop.h"

uint64_t tqtop_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *const col_names[TQTOP_NCOLS] = {
	[TQTOP_COL_NAME] = "name", [TQTOP_COL_DEPTH] = "depth",
	[TQTOP_COL_DELAYED] = "delayed", [TQTOP_COL_LEASED] = "leased",
	[TQTOP_COL_SUBMIT] = "submit", [TQTOP_COL_ACK] = "ack",
	[TQTOP_COL_FAIL] = "fail", [TQTOP_COL_WAIT99] = "wait99",
	[TQTOP_COL_RUN99] = "run99", [TQTOP_COL_DEAD] = "dead",
};

const char *tqtop_col_name(int col)
{
	return col >= 0 && col < TQTOP_NCOLS ? col_names[col] : "?";
}

int tqtop_col_find(const char *name)
{
	for (int i = 0; i < TQTOP_NCOLS; i++)
		if (!strcmp(col_names[i], name))
			return i;
	return -1;
}

const char *tqtop_proc_state(uint32_t s)
{
	switch (s) {
	case TQ_PROC_IDLE: return "idle";
	case TQ_PROC_WAITING: return "waiting";
	case TQ_PROC_BUSY: return "busy";
	case TQ_PROC_DEAD: return "dead";
	case TQ_PROC_DETACHED: return "detached";
	default: return "?";
	}
}

static void snap_free(struct tqtop_snap *s)
{
	for (unsigned i = 0; s->q && i < s->nq; i++) {
		free(s->q[i].lv);
		free(s->q[i].lhist);
	}
	free(s->q);
	free(s->procs);
	memset(s, 0, sizeof(*s));
}

/* Size a snapshot for the segment's layout (fixed at creation). */
static int snap_alloc(struct tqtop_snap *s, unsigned nq, unsigned levels)
{
	s->nq = nq;
	s->levels = levels;
	s->q = calloc(nq, sizeof(*s->q));
	if (!s->q)
		return -ENOMEM;
	for (unsigned i = 0; i < nq; i++) {
		s->q[i].lv = calloc(levels, sizeof(*s->q[i].lv));
		s->q[i].lhist = calloc((size_t)levels * 2, sizeof(*s->q[i].lhist));
		if (!s->q[i].lv || !s->q[i].lhist)
			return -ENOMEM;
	}
	return 0;
}

int tqtop_open(struct tqtop *m, const char *segment)
{
	struct tq_segment_info si;
	unsigned nq, levels;
	int e;

	m->segment = segment;
	m->sel_q = -1;
	if ((e = tq_attach(segment, &m->t)) < 0) {
		m->t = NULL;
		return e;
	}
	if ((e = tq_segment_info(m->t, &si)) < 0)
		return e;
	nq = si.config.queues < TQ_QUEUES_MAX ? si.config.queues : TQ_QUEUES_MAX;
	levels = si.config.levels < TQ_LEVELS_MAX ? si.config.levels : TQ_LEVELS_MAX;
	if (levels == 0)
		levels = 1;
	for (int i = 0; i < 2; i++)
		if ((e = snap_alloc(&m->snap[i], nq, levels)) < 0)
			return e;
	return 0;
}

void tqtop_close(struct tqtop *m)
{
	snap_free(&m->snap[0]);
	snap_free(&m->snap[1]);
	free(m->rows);
	m->rows = NULL;
	tq_detach(m->t);
	m->t = NULL;
}

/* Count the dead letters of queue q (up to TQTOP_DEAD_CAP) and keep the
 * first IDs. Only read: tq_dead_list walks the list without changing it. */
static int sample_dead(tq *t, int q, struct tqtop_qsnap *qs)
{
	uint64_t ids[TQ_BATCH_MAX], cursor = 0;
	int r;

	qs->dead_now = 0;
	qs->dead_more = false;
	qs->ndead_ids = 0;
	while ((r = tq_dead_list(t, q, ids, TQ_BATCH_MAX, &cursor)) > 0) {
		for (int i = 0; i < r && qs->ndead_ids < TQTOP_DEAD_IDS; i++)
			qs->dead_ids[qs->ndead_ids++] = ids[i];
		qs->dead_now += (uint64_t)r;
		if (qs->dead_now >= TQTOP_DEAD_CAP) {
			qs->dead_more = true;
			break;
		}
	}
	return r < 0 ? r : 0;
}

static int sample_queue(tq *t, unsigned levels, int q, struct tqtop_qsnap *qs)
{
	int e = tq_queue_name(t, q, qs->name, sizeof(qs->name));

	if (e == -ENOENT) {
		qs->declared = false;
		return 0;
	}
	if (e < 0)
		return e;
	qs->declared = true;
	qs->paused = tq_queue_paused(t, q) == 1;
	if ((e = tq_stats(t, q, -1, &qs->total)) < 0)
		return e;
	for (unsigned k = 0; k < 2; k++)
		if ((e = tq_histogram(t, q, -1, k, &qs->hist[k])) < 0)
			return e;
	for (unsigned l = 0; l < levels; l++) {
		struct tq_stats *st = &qs->lv[l];

		if ((e = tq_stats(t, q, (int)l, st)) < 0)
			return e;
		for (unsigned k = 0; k < 2; k++) {
			struct tq_histogram *h = &qs->lhist[l * 2 + k];

			/* A level nothing ever went through has empty histograms. */
			if (!st->submitted && !st->leased && !st->moved && !st->requeued)
				memset(h, 0, sizeof(*h));
			else if ((e = tq_histogram(t, q, (int)l, k, h)) < 0)
				return e;
		}
	}
	/* "dead" counts letters ever made; none ever made, none to list. */
	if (qs->total.dead)
		return sample_dead(t, q, qs);
	qs->dead_now = 0;
	qs->dead_more = false;
	qs->ndead_ids = 0;
	return 0;
}

static int sample_procs(tq *t, struct tqtop_snap *s)
{
	unsigned cursor = 0;
	int r;

	s->nprocs = 0;
	for (;;) {
		if (s->procs_cap - s->nprocs < 64) {
			unsigned cap = s->procs_cap ? s->procs_cap * 2 : 128;
			struct tq_proc_info *p = realloc(s->procs, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			s->procs = p;
			s->procs_cap = cap;
		}
		r = tq_procs(t, s->procs + s->nprocs, 64, &cursor);
		if (r <= 0)
			break;
		s->nprocs += (unsigned)r;
		if (s->nprocs >= 65536)   /* far beyond any segment's procs */
			break;
	}
	return r < 0 ? r : 0;
}

int tqtop_sample(struct tqtop *m)
{
	int next = m->nsamples ? !m->cur : 0;
	struct tqtop_snap *s = &m->snap[next];
	int e;

	/* This process shows in the worker table too: keep its record alive. */
	tq_heartbeat(m->t);
	s->mono_ns = tqtop_mono_ns();
	s->real_ns = tq_now_ns();
	if ((e = tq_segment_info(m->t, &s->si)) < 0)
		return e;
	for (unsigned q = 0; q < s->nq; q++)
		if ((e = sample_queue(m->t, s->levels, (int)q, &s->q[q])) < 0)
			return e;
	if ((e = sample_procs(m->t, s)) < 0)
		return e;
	memset(&s->ji, 0, sizeof(s->ji));
	s->journal_rc = tq_journal_info(m->t, &s->ji);
	m->cur = next;
	m->have_prev = ++m->nsamples >= 2;
	return 0;
}

void tqtop_refresh_paused(struct tqtop *m, int q)
{
	struct tqtop_snap *s = &m->snap[m->cur];

	if (q >= 0 && (unsigned)q < s->nq && s->q[q].declared)
		s->q[q].paused = tq_queue_paused(m->t, q) == 1;
}

long tqtop_requeue_dead(struct tqtop *m, int q)
{
	uint64_t *ids = NULL, cursor = 0;
	size_t n = 0, cap = 0;
	long done = 0;
	int r;

	/* List first, then requeue: requeuing while walking the list would
	 * move the cursor's ground. */
	for (;;) {
		if (cap - n < TQ_BATCH_MAX) {
			uint64_t *p = realloc(ids, (cap ? cap * 2 : 256) * sizeof(*p));

			if (!p) {
				free(ids);
				return -ENOMEM;
			}
			ids = p;
			cap = cap ? cap * 2 : 256;
		}
		r = tq_dead_list(m->t, q, ids + n, TQ_BATCH_MAX, &cursor);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (r < 0) {
		free(ids);
		return r;
	}
	for (size_t i = 0; i < n; i++)
		if (tq_requeue_dead(m->t, ids[i]) == 0)
			done++;
	free(ids);
	return done;
}

/* ------------------------------------------------------------------------
 * Rows
 */

static uint64_t delta(uint64_t now, uint64_t before)
{
	return now > before ? now - before : 0;
}

/* p50 and p99 of the events between two histograms, else of all of them. */
static void percentiles(const struct tq_histogram *now, const struct tq_histogram *before,
			uint64_t *p50, uint64_t *p99, bool *all)
{
	struct tq_histogram d;

	if (before) {
		memset(&d, 0, sizeof(d));
		for (unsigned b = 0; b < TQ_HIST_BUCKETS; b++) {
			d.buckets[b] = delta(now->buckets[b], before->buckets[b]);
			d.count += d.buckets[b];
		}
		d.sum_ns = delta(now->sum_ns, before->sum_ns);
		if (d.count) {
			*p50 = tq_hist_percentile(&d, 50);
			*p99 = tq_hist_percentile(&d, 99);
			*all = false;
			return;
		}
	}
	*p50 = tq_hist_percentile(now, 50);
	*p99 = tq_hist_percentile(now, 99);
	*all = now->count != 0;
}

static void fill_row(struct tqtop_row *r, const struct tq_stats *st, const struct tq_stats *pst,
		     const struct tq_histogram *h, const struct tq_histogram *ph, double dt)
{
	r->depth = st->depth;
	r->delayed = st->delayed;
	r->leased = st->leased_now;
	r->submitted = st->submitted;
	r->acked = st->acked;
	r->failed = st->failed;
	if (pst && dt > 0) {
		r->submit_rate = (double)delta(st->submitted, pst->submitted) / dt;
		r->ack_rate = (double)delta(st->acked, pst->acked) / dt;
		r->fail_rate = (double)delta(st->failed, pst->failed) / dt;
	} else {
		r->submit_rate = r->ack_rate = r->fail_rate = 0;
	}
	percentiles(&h[TQ_HIST_WAIT], ph ? &ph[TQ_HIST_WAIT] : NULL, &r->wait_p50, &r->wait_p99,
		    &r->wait_all);
	percentiles(&h[TQ_HIST_RUN], ph ? &ph[TQ_HIST_RUN] : NULL, &r->run_p50, &r->run_p99,
		    &r->run_all);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_dbl(double a, double b)
{
	return a < b ? -1 : a > b;
}

static int sort_col_g;
static bool sort_rev_g;

/* Numbers sort largest first, names A to Z; `S` reverses either. Ties go
 * by name, then index, so the order is stable from frame to frame. */
static int cmp_rows(const void *pa, const void *pb)
{
	const struct tqtop_row *a = pa, *b = pb;
	int c = 0;

	switch (sort_col_g) {
	case TQTOP_COL_NAME: c = -strcmp(a->name, b->name); break;
	case TQTOP_COL_DEPTH: c = cmp_u64(a->depth, b->depth); break;
	case TQTOP_COL_DELAYED: c = cmp_u64(a->delayed, b->delayed); break;
	case TQTOP_COL_LEASED: c = cmp_u64(a->leased, b->leased); break;
	case TQTOP_COL_SUBMIT: c = cmp_dbl(a->submit_rate, b->submit_rate); break;
	case TQTOP_COL_ACK: c = cmp_dbl(a->ack_rate, b->ack_rate); break;
	case TQTOP_COL_FAIL: c = cmp_dbl(a->fail_rate, b->fail_rate); break;
	case TQTOP_COL_WAIT99: c = cmp_u64(a->wait_p99, b->wait_p99); break;
	case TQTOP_COL_RUN99: c = cmp_u64(a->run_p99, b->run_p99); break;
	case TQTOP_COL_DEAD: c = cmp_u64(a->dead, b->dead); break;
	default: break;
	}
	c = -c;                      /* natural order: descending */
	if (sort_rev_g)
		c = -c;
	if (!c)
		c = strcmp(a->name, b->name);
	if (!c)
		c = a->q - b->q;
	return c;
}

static int rows_room(struct tqtop *m, unsigned n)
{
	if (n <= m->rows_cap)
		return 0;
	struct tqtop_row *r = realloc(m->rows, n * sizeof(*r));

	if (!r)
		return -ENOMEM;
	m->rows = r;
	m->rows_cap = n;
	return 0;
}

int tqtop_rows(struct tqtop *m)
{
	const struct tqtop_snap *s = &m->snap[m->cur];
	const struct tqtop_snap *p = m->have_prev ? &m->snap[!m->cur] : NULL;
	double dt = p ? (double)(s->mono_ns - p->mono_ns) / 1e9 : 0;
	struct tqtop_row *queues;
	unsigned nq = 0, n = 0;
	bool sel_seen = false;

	if (rows_room(m, s->nq * (s->levels + 1) + 1) < 0)
		return -ENOMEM;
	queues = calloc(s->nq + 1, sizeof(*queues));
	if (!queues)
		return -ENOMEM;
	for (unsigned q = 0; q < s->nq; q++) {
		const struct tqtop_qsnap *qs = &s->q[q];
		const struct tqtop_qsnap *pq = p && p->q[q].declared ? &p->q[q] : NULL;
		struct tqtop_row *r = &queues[nq];

		if (!qs->declared || (m->filter[0] && !strstr(qs->name, m->filter)))
			continue;
		r->q = (int)q;
		r->level = -1;
		r->name = qs->name;
		r->paused = qs->paused;
		r->dead = qs->dead_now;
		r->dead_more = qs->dead_more;
		fill_row(r, &qs->total, pq ? &pq->total : NULL, qs->hist, pq ? pq->hist : NULL, dt);
		nq++;
	}
	sort_col_g = m->sort_col;
	sort_rev_g = m->sort_rev;
	qsort(queues, nq, sizeof(*queues), cmp_rows);
	for (unsigned i = 0; i < nq; i++) {
		const struct tqtop_qsnap *qs = &s->q[queues[i].q];
		const struct tqtop_qsnap *pq = p && p->q[queues[i].q].declared ?
					       &p->q[queues[i].q] : NULL;

		m->rows[n++] = queues[i];
		if (queues[i].q == m->sel_q)
			sel_seen = true;
		if (!m->show_levels)
			continue;
		for (unsigned l = 0; l < s->levels; l++) {
			const struct tq_stats *st = &qs->lv[l];
			struct tqtop_row *r = &m->rows[n];

			/* Levels that hold nothing and never did stay out of the way. */
			if (!st->depth && !st->delayed && !st->leased_now && !st->submitted &&
			    !st->leased)
				continue;
			memset(r, 0, sizeof(*r));
			r->q = queues[i].q;
			r->level = (int)l;
			r->name = qs->name;
			r->paused = qs->paused;
			fill_row(r, st, pq ? &pq->lv[l] : NULL, &qs->lhist[l * 2],
				 pq ? &pq->lhist[l * 2] : NULL, dt);
			n++;
		}
	}
	m->nrows = n;
	m->nqueues_shown = nq;
	/* The selection follows its queue; if it went (filtered), the top. */
	if (!sel_seen)
		m->sel_q = nq ? queues[0].q : -1;
	free(queues);
	return 0;
}

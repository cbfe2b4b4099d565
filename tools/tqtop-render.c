/* SPDX-License-Identifier: MIT */
/*
 * tqtop-render.c - tqtop's frame as lines of text, and as JSON.
 *
 * The live view and `tqtop --once` show the same lines, so what a script
 * reads is what a person sees. A frame has four panels: queues (a row per
 * queue, and under it a row per level that holds or ever held a task),
 * workers (the attached processes), dead letters and the journal, under a
 * header with the segment's figures. Given a height, the queue and worker
 * tables are cut to fit and the queue table scrolls to keep the selected
 * queue in view.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tqtop.h"

const char *const tqtop_help[] = {
	"tqtop keys",
	"",
	"  up/down, j/k    select a queue (PgUp/PgDn, Home/End)",
	"  s / S           next sort column / reverse the order",
	"  / or f          filter by queue name: type, Enter (empty clears, Esc cancels)",
	"  l               show or hide the per-level rows",
	"  p / r           pause / resume the selected queue",
	"  R               requeue every dead letter of the selected queue (asks first)",
	"  ?               this help (any key closes it)",
	"  q               quit",
	"",
	"Rates are per second over the last interval. Latency percentiles",
	"(WAIT: submit to first lease, RUN: lease to ack or fail) are of the",
	"events of the last interval; a value marked * is of every event since",
	"the segment was created, shown when none happened in the interval.",
	"tqtop only reads the segment, except for p, r and R.",
	NULL,
};

void tqtop_frame_free(struct tqtop_frame *f)
{
	free(f->lines);
	memset(f, 0, sizeof(*f));
}

static struct tqtop_line *add(struct tqtop_frame *f, int attr, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static struct tqtop_line *add(struct tqtop_frame *f, int attr, const char *fmt, ...)
{
	static struct tqtop_line spare;
	struct tqtop_line *l;
	va_list ap;

	if (f->n == f->cap) {
		unsigned cap = f->cap ? f->cap * 2 : 64;
		struct tqtop_line *p = realloc(f->lines, cap * sizeof(*p));

		if (!p)
			return &spare;   /* out of memory: the line is dropped */
		f->lines = p;
		f->cap = cap;
	}
	l = &f->lines[f->n++];
	l->attr = attr;
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
	return l;
}

static void append(struct tqtop_frame *dst, const struct tqtop_frame *src, unsigned from,
		   unsigned n)
{
	for (unsigned i = from; i < from + n && i < src->n; i++)
		*add(dst, src->lines[i].attr, "%s", "") = src->lines[i];
}

/* ------------------------------------------------------------------------
 * Numbers
 */

static const char *fmt_ns(char *b, size_t size, uint64_t ns, bool all)
{
	const char *mark = all ? "*" : "";

	if (ns == 0)
		snprintf(b, size, "-");
	else if (ns == UINT64_MAX)
		snprintf(b, size, ">1h%s", mark);
	else if (ns < 1000)
		snprintf(b, size, "%" PRIu64 "ns%s", ns, mark);
	else if (ns < 1000000)
		snprintf(b, size, "%.1fus%s", (double)ns / 1e3, mark);
	else if (ns < 1000000000)
		snprintf(b, size, "%.1fms%s", (double)ns / 1e6, mark);
	else if (ns < 60000000000ull)
		snprintf(b, size, "%.2fs%s", (double)ns / 1e9, mark);
	else
		snprintf(b, size, "%.1fm%s", (double)ns / 60e9, mark);
	return b;
}

static const char *fmt_rate(char *b, size_t size, double r)
{
	if (r < 100000)
		snprintf(b, size, "%.1f", r);
	else if (r < 1e8)
		snprintf(b, size, "%.1fk", r / 1e3);
	else
		snprintf(b, size, "%.1fM", r / 1e6);
	return b;
}

static const char *fmt_age(char *b, size_t size, uint64_t now, uint64_t then)
{
	uint64_t ms;

	if (!then) {
		snprintf(b, size, "-");
		return b;
	}
	ms = now > then ? (now - then) / 1000000u : 0;
	if (ms < 10000)
		snprintf(b, size, "%.1fs", (double)ms / 1e3);
	else if (ms < 600000)
		snprintf(b, size, "%" PRIu64 "s", ms / 1000);
	else if (ms < 86400000)
		snprintf(b, size, "%" PRIu64 "m", ms / 60000);
	else
		snprintf(b, size, "%" PRIu64 "d", ms / 86400000);
	return b;
}

static const char *fmt_bytes(char *b, size_t size, uint64_t n)
{
	if (n < 10240)
		snprintf(b, size, "%" PRIu64 " B", n);
	else if (n < 10485760)
		snprintf(b, size, "%.1f KiB", (double)n / 1024);
	else if (n < 10737418240ull)
		snprintf(b, size, "%.1f MiB", (double)n / 1048576);
	else
		snprintf(b, size, "%.1f GiB", (double)n / 1073741824);
	return b;
}

static const char *durability_name(uint32_t d)
{
	switch (d) {
	case TQ_DURABILITY_NONE: return "none";
	case TQ_DURABILITY_ASYNC: return "async";
	case TQ_DURABILITY_SYNC: return "sync";
	default: return "?";
	}
}

/* ------------------------------------------------------------------------
 * Panels
 */

static void panel_header(struct tqtop *m, struct tqtop_frame *f)
{
	const struct tqtop_snap *s = &m->snap[m->cur];
	const struct tq_segment_info *si = &s->si;
	time_t secs = (time_t)(s->real_ns / 1000000000u);
	char when[16], sup[32] = "none";
	struct tm tm;

	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	for (unsigned i = 0; i < s->nprocs; i++)
		if (s->procs[i].flags & TQ_PROC_SUPERVISOR)
			snprintf(sup, sizeof(sup), "pid %d", (int)s->procs[i].pid);
	add(f, TQTOP_A_TITLE, "tqtop  segment %s  %s  every %u ms", m->segment, when,
	    m->interval_ms);
	add(f, TQTOP_A_NORMAL,
	    "queues %u/%u  levels %u  tasks held %" PRIu64 "/%u  processes %u/%u  "
	    "supervisor %s  repairs %" PRIu64,
	    si->queues_declared, si->config.queues, si->config.levels, si->tasks_held,
	    si->config.capacity, si->procs_attached, si->config.procs, sup, si->repairs);
}

#define QROW_FMT "%-2s%-20.20s %-5s %-6s %9s %8s %7s %9s %9s %8s %9s %9s %9s %9s %7s"

static void panel_queues_head(struct tqtop *m, struct tqtop_frame *f, unsigned first,
			      unsigned shown)
{
	char range[64] = "";

	if (shown < m->nrows)
		snprintf(range, sizeof(range), "  rows %u-%u of %u", first + 1, first + shown,
			 m->nrows);
	add(f, TQTOP_A_TITLE, "queues: %u shown%s  sort: %s, %s%s%s%s", m->nqueues_shown, range,
	    tqtop_col_name(m->sort_col),
	    (m->sort_col == TQTOP_COL_NAME) != m->sort_rev ? "ascending" : "descending",
	    m->filter[0] ? "  filter: \"" : "", m->filter, m->filter[0] ? "\"" : "");
	add(f, TQTOP_A_HEAD, QROW_FMT, "", "QUEUE", "LEVEL", "STATE", "DEPTH", "DELAYED",
	    "LEASED", "SUBMIT/s", "ACK/s", "FAIL/s", "WAIT p50", "WAIT p99", "RUN p50",
	    "RUN p99", "DEAD");
}

static void panel_queue_rows(struct tqtop *m, struct tqtop_frame *f, unsigned *sel_line)
{
	*sel_line = UINT32_MAX;
	for (unsigned i = 0; i < m->nrows; i++) {
		const struct tqtop_row *r = &m->rows[i];
		char lv[16], d[16], dl[16], ls[16], sr[16], ar[16], fr[16];
		char w50[16], w99[16], r50[16], r99[16], dead[16];
		bool sel = m->interactive && r->level < 0 && r->q == m->sel_q;

		snprintf(d, sizeof(d), "%" PRIu64, r->depth);
		snprintf(dl, sizeof(dl), "%" PRIu64, r->delayed);
		snprintf(ls, sizeof(ls), "%" PRIu64, r->leased);
		if (r->level < 0) {
			snprintf(lv, sizeof(lv), "all");
			snprintf(dead, sizeof(dead), "%" PRIu64 "%s", r->dead, r->dead_more ? "+" : "");
		} else {
			snprintf(lv, sizeof(lv), "%d", r->level);
			dead[0] = 0;
		}
		if (sel)
			*sel_line = f->n;
		add(f, sel ? TQTOP_A_SEL : r->level < 0 ? TQTOP_A_NORMAL : TQTOP_A_DIM, QROW_FMT,
		    sel ? ">" : "", r->level < 0 ? r->name : "", lv,
		    r->level >= 0 ? "" : r->paused ? "paused" : "active", d, dl, ls,
		    fmt_rate(sr, sizeof(sr), r->submit_rate), fmt_rate(ar, sizeof(ar), r->ack_rate),
		    fmt_rate(fr, sizeof(fr), r->fail_rate),
		    fmt_ns(w50, sizeof(w50), r->wait_p50, r->wait_all),
		    fmt_ns(w99, sizeof(w99), r->wait_p99, r->wait_all),
		    fmt_ns(r50, sizeof(r50), r->run_p50, r->run_all),
		    fmt_ns(r99, sizeof(r99), r->run_p99, r->run_all), dead);
	}
	if (!m->nrows)
		add(f, TQTOP_A_DIM, "  %s", m->filter[0] ? "(no queue matches the filter)" :
		    "(no queue declared)");
}

/* Workers in a stable order: the supervisor first, then by PID. */
static int cmp_procs(const void *pa, const void *pb)
{
	const struct tq_proc_info *a = pa, *b = pb;
	int sa = !(a->flags & TQ_PROC_SUPERVISOR), sb = !(b->flags & TQ_PROC_SUPERVISOR);

	if (sa != sb)
		return sa - sb;
	return (a->pid > b->pid) - (a->pid < b->pid);
}

#define WROW_FMT "  %-9s %-9s %-22s %8s %10s %7s %10s %10s  %-10s %s"

static void panel_workers_head(struct tqtop *m, struct tqtop_frame *f)
{
	const struct tqtop_snap *s = &m->snap[m->cur];
	unsigned n[5] = { 0 };

	for (unsigned i = 0; i < s->nprocs; i++)
		if (s->procs[i].state < 5)
			n[s->procs[i].state]++;
	add(f, TQTOP_A_TITLE, "workers: %u attached  %u busy  %u waiting  %u idle%s", s->nprocs,
	    n[TQ_PROC_BUSY], n[TQ_PROC_WAITING], n[TQ_PROC_IDLE],
	    n[TQ_PROC_DEAD] + n[TQ_PROC_DETACHED] ? "  (some dead: tqd recovers them)" : "");
	add(f, TQTOP_A_HEAD, WROW_FMT, "PID", "STATE", "TASK", "HB AGE", "DONE", "LEASED",
	    "TOTAL", "SUBMITTED", "SUPERVISOR", "");
}

static void panel_worker_rows(struct tqtop *m, struct tqtop_frame *f)
{
	struct tqtop_snap *s = &m->snap[m->cur];
	pid_t self = getpid();

	qsort(s->procs, s->nprocs, sizeof(*s->procs), cmp_procs);
	for (unsigned i = 0; i < s->nprocs; i++) {
		const struct tq_proc_info *p = &s->procs[i];
		char pid[16], task[24], age[16], done[24], ln[16], tot[24], sub[24];
		int attr = p->state == TQ_PROC_DEAD || p->state == TQ_PROC_DETACHED ?
			   TQTOP_A_WARN : TQTOP_A_NORMAL;

		snprintf(pid, sizeof(pid), "%d", (int)p->pid);
		if (p->current_task)
			snprintf(task, sizeof(task), "%" PRIu64, p->current_task);
		else
			snprintf(task, sizeof(task), "-");
		snprintf(done, sizeof(done), "%" PRIu64, p->done);
		snprintf(ln, sizeof(ln), "%u", p->leased_now);
		snprintf(tot, sizeof(tot), "%" PRIu64, p->leased);
		snprintf(sub, sizeof(sub), "%" PRIu64, p->submitted);
		add(f, attr, WROW_FMT, pid, tqtop_proc_state(p->state), task,
		    fmt_age(age, sizeof(age), s->real_ns, p->heartbeat_ns), done, ln, tot, sub,
		    p->flags & TQ_PROC_SUPERVISOR ? "yes" : "", p->pid == self ? "(this tqtop)" : "");
	}
}

static void panel_dead(struct tqtop *m, struct tqtop_frame *f, unsigned max_rows)
{
	const struct tqtop_snap *s = &m->snap[m->cur];
	unsigned nq = 0, shown = 0;
	uint64_t total = 0;
	bool more = false;

	for (unsigned q = 0; q < s->nq; q++)
		if (s->q[q].declared && s->q[q].dead_now) {
			nq++;
			total += s->q[q].dead_now;
			more |= s->q[q].dead_more;
		}
	if (!nq) {
		add(f, TQTOP_A_TITLE, "dead letters: none");
		return;
	}
	add(f, TQTOP_A_TITLE, "dead letters: %" PRIu64 "%s in %u queue%s", total, more ? "+" : "",
	    nq, nq == 1 ? "" : "s");
	for (unsigned q = 0; q < s->nq; q++) {
		const struct tqtop_qsnap *qs = &s->q[q];
		char ids[TQTOP_DEAD_IDS * 22 + 8] = "";
		size_t len = 0;

		if (!qs->declared || !qs->dead_now)
			continue;
		if (max_rows && shown + 1 >= max_rows && nq - shown > 1) {
			add(f, TQTOP_A_DIM, "  ... and %u more queues", nq - shown);
			break;
		}
		for (unsigned i = 0; i < qs->ndead_ids && len < sizeof(ids); i++)
			len += (size_t)snprintf(ids + len, sizeof(ids) - len, " %" PRIu64,
						qs->dead_ids[i]);
		add(f, TQTOP_A_WARN, "  %-20s %7" PRIu64 "%s  oldest:%s%s", qs->name, qs->dead_now,
		    qs->dead_more ? "+" : " ", ids, qs->dead_now > qs->ndead_ids ? " ..." : "");
		shown++;
	}
}

static void panel_journal(struct tqtop *m, struct tqtop_frame *f)
{
	const struct tqtop_snap *s = &m->snap[m->cur];
	const struct tq_journal_info *j = &s->ji;
	char fb[32], by[32], lag[32], last[16], rt[16], dr[32], dmg[128];

	if (s->journal_rc < 0) {
		add(f, TQTOP_A_WARN, "journal: %s", tq_strerror(s->journal_rc));
		return;
	}
	if (!j->dir[0]) {
		add(f, TQTOP_A_TITLE, "journal: none");
		return;
	}
	add(f, TQTOP_A_TITLE, "journal: %s  durability %s, flush every %u ms  files %" PRIu64
	    " from #%" PRIu64 ", rolling at %s", j->dir, durability_name(j->durability),
	    j->flush_ms, j->files, j->first_file, fmt_bytes(fb, sizeof(fb), j->file_bytes));
	add(f, TQTOP_A_NORMAL, "  lsn head %" PRIu64 "  tail %" PRIu64 "  durable %" PRIu64
	    " (%s behind)  records %" PRIu64 "  %s  flushes %" PRIu64 " (last %s ago)"
	    "  checkpoints %" PRIu64, j->head_lsn, j->tail_lsn, j->durable_lsn,
	    fmt_bytes(lag, sizeof(lag), j->tail_lsn > j->durable_lsn ? j->tail_lsn - j->durable_lsn : 0),
	    j->records, fmt_bytes(by, sizeof(by), j->bytes), j->flushes,
	    fmt_age(last, sizeof(last), s->real_ns, j->last_flush_ns), j->checkpoints);
	if (!j->replay_records && !j->replay_tasks && !j->replay_damaged) {
		add(f, TQTOP_A_NORMAL, "  last replay: none (the directory held no journal)");
		return;
	}
	if (j->replay_damaged)
		snprintf(dmg, sizeof(dmg), "%" PRIu64 " damaged region%s (%s dropped, the first at "
			 "lsn %" PRIu64 ")", j->replay_damaged, j->replay_damaged == 1 ? "" : "s",
			 fmt_bytes(dr, sizeof(dr), j->replay_dropped), j->replay_damage_lsn);
	else
		snprintf(dmg, sizeof(dmg), "no damage");
	add(f, j->replay_damaged ? TQTOP_A_WARN : TQTOP_A_NORMAL,
	    "  last replay: %" PRIu64 " records, %" PRIu64 " tasks restored in %s, %s",
	    j->replay_records, j->replay_tasks,
	    fmt_ns(rt, sizeof(rt), j->replay_ns ? j->replay_ns : 1, false), dmg);
}

/* ------------------------------------------------------------------------
 * The frame
 */

int tqtop_render(struct tqtop *m, struct tqtop_frame *f, unsigned height)
{
	struct tqtop_frame head = { 0 }, qh = { 0 }, qr = { 0 }, wh = { 0 }, wr = { 0 };
	struct tqtop_frame dead = { 0 }, jr = { 0 };
	unsigned sel = UINT32_MAX, qshow, wshow, fixed, blanks = 4, avail;

	f->n = 0;
	panel_header(m, &head);
	panel_queue_rows(m, &qr, &sel);
	panel_workers_head(m, &wh);
	panel_worker_rows(m, &wr);
	panel_dead(m, &dead, height ? 4 : 0);
	panel_journal(m, &jr);
	qshow = qr.n;
	wshow = wr.n;
	m->scroll = 0;
	if (height) {
		fixed = head.n + 2 + wh.n + dead.n + jr.n;
		if (fixed + blanks + qr.n + wr.n > height)
			blanks = 0;
		avail = height > fixed + blanks ? height - fixed - blanks : 0;
		if (qr.n + wr.n > avail) {
			/* Workers get at least a third (or what they need), the
			 * queues the rest, and at least one row each. */
			unsigned wmin = wr.n < avail / 3 ? wr.n : avail / 3;

			qshow = avail > wmin ? avail - wmin : 0;
			if (qshow > qr.n)
				qshow = qr.n;
			if (!qshow && qr.n && avail)
				qshow = 1;
			wshow = avail > qshow ? avail - qshow : 0;
			if (wshow > wr.n)
				wshow = wr.n;
		}
		if (sel != UINT32_MAX && qshow && sel >= qshow)
			m->scroll = sel - qshow + 1;
	}
	panel_queues_head(m, &qh, m->scroll, qshow);
	append(f, &head, 0, head.n);
	if (blanks)
		add(f, TQTOP_A_NORMAL, "%s", "");
	append(f, &qh, 0, qh.n);
	append(f, &qr, m->scroll, qshow);
	if (blanks)
		add(f, TQTOP_A_NORMAL, "%s", "");
	append(f, &wh, 0, wh.n);
	if (wshow < wr.n && wshow) {
		append(f, &wr, 0, wshow - 1);
		add(f, TQTOP_A_DIM, "  ... and %u more", wr.n - wshow + 1);
	} else {
		append(f, &wr, 0, wshow);
	}
	if (blanks)
		add(f, TQTOP_A_NORMAL, "%s", "");
	append(f, &dead, 0, dead.n);
	if (blanks)
		add(f, TQTOP_A_NORMAL, "%s", "");
	append(f, &jr, 0, jr.n);
	tqtop_frame_free(&head);
	tqtop_frame_free(&qh);
	tqtop_frame_free(&qr);
	tqtop_frame_free(&wh);
	tqtop_frame_free(&wr);
	tqtop_frame_free(&dead);
	tqtop_frame_free(&jr);
	return 0;
}

/* ------------------------------------------------------------------------
 * JSON (--once --json)
 */

static void json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(o, "\\u%04x", ch);
		else
			fputc(ch, o);
	}
	fputc('"', o);
}

/* Which events a percentile is of: the interval's, all, or none at all. */
static const char *window(uint64_t p99, bool all)
{
	return !p99 ? "none" : all ? "all" : "interval";
}

static void json_row(FILE *o, const struct tqtop_row *r)
{
	fprintf(o, "\"depth\":%" PRIu64 ",\"delayed\":%" PRIu64 ",\"leased_now\":%" PRIu64
		",\"submitted\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"failed\":%" PRIu64
		",\"submit_per_s\":%.3f,\"ack_per_s\":%.3f,\"fail_per_s\":%.3f"
		",\"wait_p50_ns\":%" PRIu64 ",\"wait_p99_ns\":%" PRIu64 ",\"wait_window\":\"%s\""
		",\"run_p50_ns\":%" PRIu64 ",\"run_p99_ns\":%" PRIu64 ",\"run_window\":\"%s\"",
		r->depth, r->delayed, r->leased, r->submitted, r->acked, r->failed,
		r->submit_rate, r->ack_rate, r->fail_rate, r->wait_p50, r->wait_p99,
		window(r->wait_p99, r->wait_all), r->run_p50, r->run_p99,
		window(r->run_p99, r->run_all));
}

void tqtop_print_json(struct tqtop *m, FILE *o)
{
	const struct tqtop_snap *s = &m->snap[m->cur];
	const struct tq_segment_info *si = &s->si;
	const struct tq_journal_info *j = &s->ji;
	pid_t self = getpid();
	unsigned i = 0;

	fputs("{\"segment\":", o);
	json_str(o, m->segment);
	fprintf(o, ",\"time_ns\":%" PRIu64 ",\"interval_ms\":%u,\"queues_declared\":%u,"
		"\"queues_max\":%u,\"levels\":%u,\"capacity\":%u,\"tasks_held\":%" PRIu64
		",\"procs_attached\":%u,\"procs_max\":%u,\"segment_bytes\":%" PRIu64
		",\"repairs\":%" PRIu64 ",\"queues\":[", s->real_ns, m->interval_ms,
		si->queues_declared, si->config.queues, si->config.levels, si->config.capacity,
		si->tasks_held, si->procs_attached, si->config.procs, si->segment_bytes,
		si->repairs);
	while (i < m->nrows) {
		const struct tqtop_row *r = &m->rows[i];
		const struct tqtop_qsnap *qs = &s->q[r->q];

		fprintf(o, "%s{\"name\":", i ? "," : "");
		json_str(o, r->name);
		fprintf(o, ",\"index\":%d,\"paused\":%s,", r->q, r->paused ? "true" : "false");
		json_row(o, r);
		fprintf(o, ",\"dead_now\":%" PRIu64 ",\"dead_more\":%s,\"dead_oldest\":[", r->dead,
			r->dead_more ? "true" : "false");
		for (unsigned k = 0; k < qs->ndead_ids; k++)
			fprintf(o, "%s%" PRIu64, k ? "," : "", qs->dead_ids[k]);
		fputs("],\"levels\":[", o);
		for (i++; i < m->nrows && m->rows[i].level >= 0; i++) {
			fprintf(o, "%s{\"level\":%d,", m->rows[i - 1].level >= 0 ? "," : "",
				m->rows[i].level);
			json_row(o, &m->rows[i]);
			fputc('}', o);
		}
		fputs("]}", o);
	}
	fputs("],\"workers\":[", o);
	for (unsigned k = 0; k < s->nprocs; k++) {
		const struct tq_proc_info *p = &s->procs[k];

		fprintf(o, "%s{\"pid\":%d,\"state\":\"%s\",\"current_task\":%" PRIu64
			",\"heartbeat_age_ms\":%" PRIu64 ",\"done\":%" PRIu64 ",\"leased_now\":%u"
			",\"leased\":%" PRIu64 ",\"submitted\":%" PRIu64 ",\"supervisor\":%s"
			",\"self\":%s}", k ? "," : "", (int)p->pid, tqtop_proc_state(p->state),
			p->current_task,
			p->heartbeat_ns && s->real_ns > p->heartbeat_ns ?
			(s->real_ns - p->heartbeat_ns) / 1000000u : 0,
			p->done, p->leased_now, p->leased, p->submitted,
			p->flags & TQ_PROC_SUPERVISOR ? "true" : "false",
			p->pid == self ? "true" : "false");
	}
	fputs("],\"journal\":", o);
	if (s->journal_rc < 0 || !j->dir[0]) {
		fputs("null", o);
	} else {
		fputs("{\"dir\":", o);
		json_str(o, j->dir);
		fprintf(o, ",\"durability\":\"%s\",\"flush_ms\":%u,\"file_bytes\":%" PRIu64
			",\"first_file\":%" PRIu64 ",\"files\":%" PRIu64 ",\"head_lsn\":%" PRIu64
			",\"tail_lsn\":%" PRIu64 ",\"durable_lsn\":%" PRIu64 ",\"records\":%" PRIu64
			",\"bytes\":%" PRIu64 ",\"flushes\":%" PRIu64 ",\"checkpoints\":%" PRIu64
			",\"last_flush_ns\":%" PRIu64 ",\"replay_records\":%" PRIu64
			",\"replay_tasks\":%" PRIu64 ",\"replay_ns\":%" PRIu64
			",\"replay_damaged\":%" PRIu64 ",\"replay_dropped\":%" PRIu64
			",\"replay_damage_lsn\":%" PRIu64 "}",
			durability_name(j->durability), j->flush_ms, j->file_bytes, j->first_file,
			j->files, j->head_lsn, j->tail_lsn, j->durable_lsn, j->records, j->bytes,
			j->flushes, j->checkpoints, j->last_flush_ns, j->replay_records,
			j->replay_tasks, j->replay_ns, j->replay_damaged, j->replay_dropped,
			j->replay_damage_lsn);
	}
	fputs("}\n", o);
}

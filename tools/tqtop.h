/* SPDX-License-Identifier: MIT */
/*
 * tqtop.h - what the files of `tqtop` share (private to tools/, not API).
 *
 * tqtop is split by concern: tqtop-data.c takes samples of a segment and
 * turns two successive samples into table rows (rates from counter deltas,
 * percentiles from histogram deltas); tqtop-render.c lays a sample out as
 * lines of text (the same lines for the live view and for --once) and
 * writes --once --json; tqtop-ui.c is the ncurses loop and its keys;
 * tqtop.c parses the command line.
 */
#ifndef TQTOP_H
#define TQTOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <tq/tq.h>

#define TQTOP_DEFAULT_SEGMENT "/tq"
#define TQTOP_DEAD_IDS 4         /* dead letter IDs shown per queue */
#define TQTOP_DEAD_CAP 10000     /* dead letters counted per queue and frame */
#define TQTOP_LINE_MAX 512       /* bytes of one line of a frame */

/* One queue in one sample. Indexed by queue index; `declared` is 0 for an
 * index no queue has (yet). */
struct tqtop_qsnap {
	bool declared;
	bool paused;
	char name[TQ_QUEUE_NAME_MAX + 1];
	struct tq_stats total;               /* summed over levels */
	struct tq_histogram hist[2];         /* TQ_HIST_WAIT, TQ_HIST_RUN, merged */
	struct tq_stats *lv;                 /* [levels] */
	struct tq_histogram *lhist;          /* [levels * 2]; zero where not read */
	uint64_t dead_now;                   /* dead letters listed now (capped) */
	bool dead_more;                      /* more than TQTOP_DEAD_CAP */
	unsigned ndead_ids;
	uint64_t dead_ids[TQTOP_DEAD_IDS];   /* the oldest ones */
};

/* Everything read from the segment at one instant (as near as reads go). */
struct tqtop_snap {
	uint64_t mono_ns;                    /* CLOCK_MONOTONIC: rate denominators */
	uint64_t real_ns;                    /* tq_now_ns(): heartbeat ages */
	struct tq_segment_info si;
	int journal_rc;                      /* tq_journal_info() result */
	struct tq_journal_info ji;
	unsigned nq;                         /* queue index slots (config.queues) */
	unsigned levels;
	struct tqtop_qsnap *q;               /* [nq] */
	struct tq_proc_info *procs;
	unsigned nprocs, procs_cap;
};

/* Sort columns of the queue table, in the order `s` cycles through them. */
enum tqtop_col {
	TQTOP_COL_NAME, TQTOP_COL_DEPTH, TQTOP_COL_DELAYED, TQTOP_COL_LEASED,
	TQTOP_COL_SUBMIT, TQTOP_COL_ACK, TQTOP_COL_FAIL, TQTOP_COL_WAIT99,
	TQTOP_COL_RUN99, TQTOP_COL_DEAD, TQTOP_NCOLS,
};

/* One line of the queue table: a queue's total (level -1) or one level. */
struct tqtop_row {
	int q;                               /* queue index */
	int level;                           /* -1: all levels */
	const char *name;
	bool paused;
	uint64_t depth, delayed, leased;
	uint64_t submitted, acked, failed;   /* cumulative */
	double submit_rate, ack_rate, fail_rate; /* per second over the interval */
	uint64_t wait_p50, wait_p99, run_p50, run_p99; /* ns, 0 = no events */
	bool wait_all, run_all;              /* from the cumulative histogram */
	uint64_t dead;                       /* dead letters now (queue rows) */
	bool dead_more;
};

/* Display attributes of a line; tqtop-ui.c maps them to curses. */
enum tqtop_attr { TQTOP_A_NORMAL, TQTOP_A_TITLE, TQTOP_A_HEAD, TQTOP_A_SEL,
		  TQTOP_A_DIM, TQTOP_A_WARN };

struct tqtop_line {
	int attr;
	char text[TQTOP_LINE_MAX];
};

struct tqtop_frame {
	struct tqtop_line *lines;
	unsigned n, cap;
};

/* The whole state of one tqtop. */
struct tqtop {
	tq *t;
	const char *segment;
	unsigned interval_ms;
	struct tqtop_snap snap[2];
	int cur;                             /* snap[cur] is the newest */
	bool have_prev;                      /* snap[!cur] holds a sample */
	unsigned long nsamples;              /* samples taken */
	struct tqtop_row *rows;              /* ordered for display */
	unsigned nrows, rows_cap;
	unsigned nqueues_shown;              /* queue (level -1) rows in rows */
	int sort_col;                        /* enum tqtop_col */
	bool sort_rev;                       /* reverse of the column's natural order */
	bool show_levels;                    /* level rows under each queue */
	char filter[TQ_QUEUE_NAME_MAX + 1];  /* substring of queue names; "" all */
	int sel_q;                           /* selected queue index, -1 none */
	unsigned scroll;                     /* first queue-table row shown */
	bool interactive;                    /* selection marker, key legend */
	char status[256];                    /* message on the bottom line */
};

/* tqtop-data.c */
int tqtop_open(struct tqtop *m, const char *segment);
void tqtop_close(struct tqtop *m);
/* Take a sample into the newest slot (the older one becomes the previous). */
int tqtop_sample(struct tqtop *m);
/* Rebuild m->rows from the two newest samples, sorted and filtered. */
int tqtop_rows(struct tqtop *m);
/* Refresh the paused flag of queue q in the newest sample. */
void tqtop_refresh_paused(struct tqtop *m, int q);
/* Requeue every dead letter of queue q; returns how many, or -errno. */
long tqtop_requeue_dead(struct tqtop *m, int q);
const char *tqtop_col_name(int col);
int tqtop_col_find(const char *name);
const char *tqtop_proc_state(uint32_t s);
uint64_t tqtop_mono_ns(void);

/* tqtop-render.c */
/* Lay the state out: height 0 = every line (--once), else fit in height. */
int tqtop_render(struct tqtop *m, struct tqtop_frame *f, unsigned height);
void tqtop_frame_free(struct tqtop_frame *f);
void tqtop_print_json(struct tqtop *m, FILE *out);
/* The key legend, one entry per line, for the help overlay. */
extern const char *const tqtop_help[];

/* tqtop-ui.c */
int tqtop_ui_run(struct tqtop *m);

#endif /* TQTOP_H */

/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - the Prometheus text exposition (format 0.0.4) of a segment,
 * rendered from the public API only (private to tools/: tqd serves it,
 * `tq stats --prometheus` prints it). docs/metrics.md lists every metric.
 */
#ifndef TQ_METRICS_H
#define TQ_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include <tq/tq.h>

/* The media type of the text format, for a Content-Type header. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A growable text buffer. Zero it to start; metrics_buf_free() to end.
 * After an allocation failure (or METRICS_BUF_MAX) `failed` is set and
 * further appends are dropped. */
struct metrics_buf {
	char *data;                  /* NUL-terminated when not NULL */
	size_t len, cap;
	bool failed;
};

#define METRICS_BUF_MAX (256u << 20)

void metrics_buf_reset(struct metrics_buf *b);
void metrics_buf_free(struct metrics_buf *b);
void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* What to render. A zeroed struct renders every declared queue. */
struct metrics_opts {
	const char *segment;         /* value of the segment="..." label, NULL: none */
	const int *queues;           /* only these queues; NULL or nqueues 0: all */
	unsigned nqueues;
};

/*
 * Append the exposition of the segment t is attached to. Returns 0, or a
 * negative errno when a tq call failed (-ENOMEM when the buffer could not
 * grow): the buffer then holds a valid exposition saying `tq_up 0` and
 * nothing else, so a scrape still parses and alerts can fire.
 */
int metrics_render(tq *t, const struct metrics_opts *o, struct metrics_buf *b);

#endif /* TQ_METRICS_H */

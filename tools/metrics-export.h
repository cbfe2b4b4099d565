/* SPDX-License-Identifier: MIT */
/*
 * metrics-export.h - how tqd hands its metrics (metrics.h) to Prometheus
 * (private to tools/): over HTTP on a loopback address (GET /metrics), and
 * as a file for node_exporter's textfile collector, written atomically
 * every few seconds. Both run inside tqd's own loop: no thread, no call
 * that blocks, bounded memory per client, so a slow or stuck client never
 * delays the repair work.
 */
#ifndef TQ_METRICS_EXPORT_H
#define TQ_METRICS_EXPORT_H

#include <tq/tq.h>

struct metrics_export;

struct metrics_export_opts {
	const char *listen;          /* "ADDR:PORT" (loopback only) or NULL */
	const char *file;            /* textfile path or NULL */
	long file_interval_ms;       /* > 0 */
	const char *segment;         /* the segment="..." label */
	/* Where tqd's log lines go (listening address, failures). */
	void (*log)(const char *fmt, ...);
};

#define METRICS_FILE_INTERVAL_MS 5000   /* the default of --metrics-file-interval-ms */

/*
 * Check an --metrics-listen value: "127.0.0.1:9464", "[::1]:9464",
 * "localhost:9464"; port 0 picks a free one. Returns NULL when it is good,
 * else a sentence saying why not (not a loopback address, bad syntax).
 */
const char *metrics_listen_check(const char *addr);

/*
 * Start exporting: bind and listen (when o->listen), write the file once
 * (when o->file), and log where. Returns 0 with *ret set, or a negative
 * errno after logging why (the address is taken, the file's directory is
 * missing...).
 */
int metrics_export_open(struct metrics_export **ret, const struct metrics_export_opts *o, tq *t);

/* The port listened on (the chosen one when asked for port 0), or 0. */
int metrics_export_port(const struct metrics_export *x);

/*
 * Serve for about ms milliseconds, then return: accept connections, answer
 * complete requests, drop clients past their deadline, and write the file
 * when it is due. Returns at once (early) when a signal interrupts the
 * wait, so the caller sees its stop flag. It replaces the caller's sleep.
 */
void metrics_export_run(struct metrics_export *x, tq *t, long ms);

/* Close every connection and the listener, and remove the file (no stale
 * figures are left behind for node_exporter to export). NULL is a no-op. */
void metrics_export_close(struct metrics_export *x);

#endif /* TQ_METRICS_EXPORT_H */

/* SPDX-License-Identifier: MIT */
/*
 * tqd-pool.h - tqd's worker pools (private to tools/): per queue, between a
 * minimum and a maximum of worker processes running a shell command, grown
 * when tasks wait and shrunk when workers idle, crashed ones restarted.
 * tqd.c parses the options into it and calls it from its loop.
 */
#ifndef TQD_POOL_H
#define TQD_POOL_H

#include <stdbool.h>

#include <tq/tq.h>

/* The pool options, for tqd's option table (values of `which`). */
enum tqd_pool_opt {
	TQD_POOL_SPEC,        /* --pool QUEUE:MIN:MAX:COMMAND (repeatable) */
	TQD_POOL_INTERVAL,    /* --pool-interval-ms: one scaling decision per period */
	TQD_POOL_WAIT,        /* --pool-wait-ms: grow when the oldest task waited this long */
	TQD_POOL_BACKLOG,     /* --pool-backlog: grow when depth per worker reaches it */
	TQD_POOL_IDLE,        /* --pool-idle-ms: retire a worker idle this long */
	TQD_POOL_GRACE,       /* --pool-grace-ms: SIGTERM to SIGKILL at shutdown */
};

/* Apply one option; prints why not and returns -1 on a bad value. */
int tqd_pool_option(enum tqd_pool_opt which, const char *arg);

/* Whether any pool was configured. */
bool tqd_pool_any(void);

/* Log function of tqd: one line per call, printf-style. */
typedef void (*tqd_pool_log_fn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Start the pools (their minimum of workers) on the attached segment. */
void tqd_pool_start(tq *t, const char *segment, tqd_pool_log_fn say);

/* From tqd's loop, every pass: reap and restart workers; at most once per
 * --pool-interval-ms, one scaling decision per pool. */
void tqd_pool_tick(tq *t);

/* SIGTERM every worker, wait up to --pool-grace-ms, SIGKILL the rest, reap. */
void tqd_pool_stop(void);

/* Lines for tqd --help. */
extern const char tqd_pool_usage[];

#endif /* TQD_POOL_H */

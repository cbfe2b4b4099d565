/* SPDX-License-Identifier: MIT */
/*
 * tq-cli.h - what the files of the `tq` command-line program share
 * (private to tools/).
 */
#ifndef TQ_CLI_H
#define TQ_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <tq/tq.h>

#define TQ_CLI_DEFAULT_SEGMENT "/tq"
#define TQ_CLI_MAX_QUEUES 64

/* Everything any subcommand's options can set. */
struct cli {
	const char *cmd;             /* subcommand name, for messages */
	const char *segment;
	bool json;
	struct tq_config cfg;        /* create */
	const char *queues[TQ_CLI_MAX_QUEUES]; /* --queue, repeatable for worker */
	unsigned nqueues;
	long level;                  /* -1 = not given */
	unsigned long long delay_ms, attempts, type, lease_ms, count;
	long long timeout_ms;        /* -1 = not given */
	const char *data, *file;
	const char *state;
	unsigned long long limit, cursor;
	const char *exec;
	unsigned long long concurrency, max_tasks, idle_exit_ms, grace_ms;
	bool max_tasks_set, idle_set;
	char **args;                 /* positional arguments */
	int nargs;
};

/* Print "tq: <cmd>: <words>: <last error>" for a negative errno; returns 1. */
int cli_fail(const struct cli *c, tq *t, int e);
/* Attach to c->segment, or print why not; returns 0 or 1 (the exit code). */
int cli_attach(const struct cli *c, tq **t);
/* tq_queue_find with the "no queue named X" message; < 0 when printed. */
int cli_queue(const struct cli *c, tq *t, const char *name);

int cmd_worker(struct cli *c);
int cmd_schedule(struct cli *c);

#endif /* TQ_CLI_H */

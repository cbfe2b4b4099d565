/* SPDX-License-Identifier: MIT */
/*
 * pool-worker - a small worker program built on the worker runtime
 * (tq/worker.h), for test-pool: tqd runs it as a pool's command. It works
 * on $TQ_SEGMENT's queue $TQ_QUEUE with one thread; each task takes
 * --work-ms (default 100) and is acked with "ok". SIGTERM stops it with a
 * 2 s deadline; it then exits 0. Not a test by itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tq/worker.h>

static unsigned work_ms = 100;

static int handle(tq_job *job, const struct tq_task *task, void *arg)
{
	(void)task;
	(void)arg;
	if (tq_job_sleep(job, work_ms) < 0)
		return TQ_WORK_RELEASE;          /* discarded anyway */
	tq_job_set_result(job, "ok", 2);
	return TQ_WORK_OK;
}

int main(int argc, char **argv)
{
	const char *seg = getenv("TQ_SEGMENT"), *queue = getenv("TQ_QUEUE");
	struct tq_worker_config wc;
	tq_worker *w = NULL;
	int e;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--work-ms") && i + 1 < argc) {
			work_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: pool-worker [--work-ms N]\n");
			return 2;
		}
	}
	if (!seg || !*seg || !queue || !*queue) {
		fprintf(stderr, "pool-worker: TQ_SEGMENT and TQ_QUEUE must be set\n");
		return 2;
	}
	memset(&wc, 0, sizeof(wc));
	wc.threads = 1;
	wc.nqueues = 1;
	wc.queues = &queue;
	wc.poll_ms = 20;
	e = tq_worker_new(seg, &wc, &w);
	if (e == 0)
		e = tq_worker_handle(w, TQ_WORKER_ANY_TYPE, handle, NULL);
	if (e == 0)
		e = tq_worker_install_signals(w, 2000);
	if (e == 0)
		e = tq_worker_run(w);
	tq_worker_free(w);
	if (e < 0) {
		fprintf(stderr, "pool-worker: %s\n", tq_strerror(e));
		return 1;
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * hotpath.c - one process runs N rounds of submit -> lease -> ack (64-byte
 * payload, one queue) on its own segment, so that `valgrind --tool=callgrind`
 * can count the instructions of each call of the hot path. Instruction
 * counts are repeatable on a noisy machine where times are not; see
 * perf/callgrind.sh.
 *   tq-hotpath [ROUNDS] [BATCH]
 * With BATCH > 1 each round is one tq_submit_batch(), one tq_lease() and
 * one tq_ack_batch() of BATCH tasks: ROUNDS * BATCH tasks in all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tq/tq.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	int batch = argc > 2 ? atoi(argv[2]) : 1;
	struct tq_lease_opts lo = { 0 };
	struct tq_submit_opts so = { 0 };
	struct tq_task task, tasks[TQ_BATCH_MAX];
	struct tq_task_spec specs[TQ_BATCH_MAX];
	uint64_t ids[TQ_BATCH_MAX];
	char name[64], payload[64];
	tq *t;
	int q, e;

	snprintf(name, sizeof(name), "/tq-hotpath-%d", (int)getpid());
	e = tq_create(name, NULL, &t);
	if (e < 0) {
		fprintf(stderr, "hotpath: create: %s: %s\n", tq_strerror(e), tq_last_error(NULL));
		return 1;
	}
	tq_unlink(name);
	q = tq_queue_declare(t, "hot", NULL);
	memset(payload, 'x', sizeof(payload));
	if (batch < 1 || batch > (int)TQ_BATCH_MAX) {
		fprintf(stderr, "hotpath: batch %d: 1..%u\n", batch, TQ_BATCH_MAX);
		return 2;
	}
	for (int k = 0; k < batch; k++)
		specs[k] = (struct tq_task_spec){ .payload = payload, .len = sizeof(payload) };
	for (long i = 0; batch > 1 && i < n; i++) {
		if ((e = tq_submit_batch(t, q, specs, (unsigned)batch, &so, NULL)) != batch ||
		    (e = tq_lease(t, &lo, tasks, (unsigned)batch)) != batch) {
			fprintf(stderr, "hotpath: round %ld: %d: %s\n", i, e, tq_last_error(t));
			return 1;
		}
		for (int k = 0; k < batch; k++)
			ids[k] = tasks[k].id;
		if ((e = tq_ack_batch(t, ids, (unsigned)batch, NULL)) != batch) {
			fprintf(stderr, "hotpath: ack: %d: %s\n", e, tq_last_error(t));
			return 1;
		}
	}
	for (long i = 0; batch == 1 && i < n; i++) {
		memcpy(payload, &i, sizeof(i));
		if ((e = tq_submit(t, q, payload, sizeof(payload), &so, NULL)) < 0 ||
		    (e = tq_lease(t, &lo, &task, 1)) < 0 ||
		    (e = tq_ack(t, task.id, NULL, 0)) < 0) {
			fprintf(stderr, "hotpath: round %ld: %s: %s\n", i, tq_strerror(e),
				tq_last_error(t));
			return 1;
		}
	}
	tq_detach(t);
	return 0;
}

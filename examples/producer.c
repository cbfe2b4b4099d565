/* SPDX-License-Identifier: MIT */
/*
 * producer.c - submit tasks to a tq queue: the smallest complete producer.
 *
 * It attaches to the segment (creating it if it does not exist yet),
 * declares a queue, submits N tasks at three priority levels and prints
 * each task's ID. Build it against the installed library:
 *
 *     cc -o producer producer.c $(pkg-config --cflags --libs tq)
 *
 * and run it with a worker (worker.c) on the same segment:
 *
 *     ./worker -s /example -n 10 & ./producer -s /example -n 10; wait
 */
/* getopt() and sigaction() are POSIX, not ISO C. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tq/tq.h>

/* Every tq call returns >= 0 or a negative errno. tq_strerror() gives
 * words for the code, tq_last_error() the exact reason for this handle's
 * last call (pass NULL before a handle exists). */
static void die(const char *what, int err, const tq *t)
{
	const char *why = tq_last_error(t);

	fprintf(stderr, "producer: %s: %s%s%s\n", what, tq_strerror(err), *why ? ": " : "", why);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *segment = getenv("TQ_SEGMENT") ? getenv("TQ_SEGMENT") : "/tq";
	const char *queue = "example";
	long count = 10;
	tq *t;
	int c, e, q;

	while ((c = getopt(argc, argv, "s:q:n:h")) != -1) {
		switch (c) {
		case 's': segment = optarg; break;
		case 'q': queue = optarg; break;
		case 'n': count = strtol(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: producer [-s SEGMENT] [-q QUEUE] [-n COUNT]\n");
			return c == 'h' ? 0 : 2;
		}
	}

	/* Attach to the segment, or create it. Its layout (queues, levels,
	 * capacity, largest payload) is fixed at creation; the supervisor
	 * tqd usually creates it (tqd --create, or tqd@NAME.service). Two
	 * processes may race to create it: the loser gets -EEXIST and
	 * attaches. */
	e = tq_attach(segment, &t);
	if (e == -ENOENT) {
		struct tq_config cfg;

		tq_config_init(&cfg);
		cfg.levels = 3;          /* 0 is the most urgent */
		cfg.capacity = 4096;     /* tasks held at once */
		cfg.max_payload = 4096;  /* bytes */
		e = tq_create(segment, &cfg, &t);
		if (e == -EEXIST)
			e = tq_attach(segment, &t);
	}
	if (e < 0)
		die(segment, e, NULL);

	/* Declare the queue, or look it up if it exists. The index it returns
	 * is what the other calls take. NULL: the default settings (30 s
	 * leases, 3 attempts, no retry backoff). */
	q = tq_queue_declare(t, queue, NULL);
	if (q < 0)
		die(queue, q, t);

	for (long i = 0; i < count; i++) {
		char payload[64];
		uint64_t id;
		/* A zeroed tq_submit_opts is the default: level 0, no delay.
		 * timeout_ms says what to do when the queue is full: wait up
		 * to a second for a worker to make room (backpressure). */
		struct tq_submit_opts opts = {
			.level = (uint32_t)(i % 3),
			.timeout_ms = 1000,
		};
		int len = snprintf(payload, sizeof(payload), "task %ld of %ld", i + 1, count);

		e = tq_submit(t, q, payload, (size_t)len, &opts, &id);
		if (e < 0)
			die("submit", e, t);
		/* From here on the task is never lost, whoever dies. */
		printf("submitted %llu at level %u: %s\n", (unsigned long long)id, opts.level,
		       payload);
	}

	/* Detaching frees this process's record in the segment; the tasks
	 * stay there for the workers. */
	tq_detach(t);
	return 0;
}

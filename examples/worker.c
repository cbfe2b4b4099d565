/* SPDX-License-Identifier: MIT */
/*
 * worker.c - lease, process and acknowledge tq tasks: the smallest complete
 * worker.
 *
 * It attaches to the segment, then leases tasks from one queue in a loop,
 * "processes" each one (prints its payload) and acknowledges it. It exits
 * after N tasks (-n N), or when SIGTERM or SIGINT arrives. Build it against
 * the installed library:
 *
 *     cc -o worker worker.c $(pkg-config --cflags --libs tq)
 *
 * If the worker is killed while it holds tasks, nothing is lost: the
 * supervisor (tqd) gives them back to the queue, with the attempt counted.
 *
 * This is the loop at its plainest. For several tasks at a time, per-task
 * time limits and leases kept alive while long tasks run, use the worker
 * runtime of <tq/worker.h> instead (man 3 tq_worker_new).
 */
/* getopt() and sigaction() are POSIX, not ISO C. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tq/tq.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what, int err, const tq *t)
{
	const char *why = tq_last_error(t);

	fprintf(stderr, "worker: %s: %s%s%s\n", what, tq_strerror(err), *why ? ": " : "", why);
	exit(1);
}

/* The application's work. Return 0 on success; anything else fails the
 * attempt and the task is retried (then dead-lettered after its last
 * attempt). */
static int process(const struct tq_task *task)
{
	printf("processed %llu (level %u, attempt %u): %.*s\n", (unsigned long long)task->id,
	       task->level, task->attempts, (int)task->len, (const char *)task->payload);
	return 0;
}

int main(int argc, char **argv)
{
	const char *segment = getenv("TQ_SEGMENT") ? getenv("TQ_SEGMENT") : "/tq";
	const char *queue = "example";
	long max_tasks = 0, done = 0;   /* 0: until SIGTERM */
	struct sigaction sa;
	tq *t;
	int c, e, q;

	while ((c = getopt(argc, argv, "s:q:n:h")) != -1) {
		switch (c) {
		case 's': segment = optarg; break;
		case 'q': queue = optarg; break;
		case 'n': max_tasks = strtol(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: worker [-s SEGMENT] [-q QUEUE] [-n COUNT]\n");
			return c == 'h' ? 0 : 2;
		}
	}

	/* No SA_RESTART: a signal wakes tq_lease() with -EINTR, so that the
	 * loop sees `stop` at once instead of after the lease timeout. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	/* Wait for the segment if the producer (or tqd) has not created it. */
	while ((e = tq_attach(segment, &t)) == -ENOENT && !stop)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	if (stop) {
		if (e == 0)
			tq_detach(t);   /* the signal came while attaching */
		return 0;
	}
	if (e < 0)
		die(segment, e, NULL);
	q = tq_queue_declare(t, queue, NULL);
	if (q < 0)
		die(queue, q, t);

	/* Lease from this one queue; the most urgent level first. When
	 * nothing is ready, sleep (on a futex in the segment) for at most
	 * half a second, then look at `stop` again. */
	struct tq_lease_opts lo = {
		.queues = &q,
		.nqueues = 1,
		.policy = TQ_POLICY_STRICT,
		.timeout_ms = 500,
	};

	while (!stop && (max_tasks == 0 || done < max_tasks)) {
		struct tq_task task[8];
		unsigned want = 8;

		if (max_tasks && (unsigned long)(max_tasks - done) < want)
			want = (unsigned)(max_tasks - done);
		int n = tq_lease(t, &lo, task, want);

		if (n == -ETIMEDOUT || n == -EINTR)
			continue;        /* nothing ready, or a signal: look again */
		if (n < 0)
			die("lease", n, t);
		for (int i = 0; i < n; i++) {
			/* task[i].payload points into the segment and is valid
			 * until the task is acked, failed or released. */
			if (process(&task[i]) == 0)
				e = tq_ack(t, task[i].id, NULL, 0);  /* no result kept */
			else
				e = tq_fail(t, task[i].id);
			/* -ESTALE: our lease expired and the task went back to
			 * the queue; another worker runs it. */
			if (e < 0 && e != -ESTALE)
				die("ack", e, t);
			done++;
		}
		fflush(stdout);
	}
	printf("worker: %ld tasks done\n", done);
	tq_detach(t);
	return 0;
}

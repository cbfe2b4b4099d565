/* SPDX-License-Identifier: MIT */
/*
 * tq worker --exec CMD: process tasks with any program. Each worker process
 * (--concurrency of them, forked) has its own handle and runs one task at a
 * time: `/bin/sh -c CMD` with the payload on stdin and the task's fields in
 * the environment; stdin and stdout are served together through poll(), so
 * payloads and results larger than a pipe buffer cannot deadlock. Exit 0
 * acks with stdout as the result, anything else fails the attempt. While
 * CMD runs past half its lease, the lease is extended. SIGTERM/SIGINT stop
 * leasing; a running CMD gets --grace-ms to finish, then its process group
 * is killed and its task released.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tq-cli.h"

extern char **environ;

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct worker {
	struct cli *c;
	tq *t;
	int qs[TQ_CLI_MAX_QUEUES];
	unsigned nq;
	uint32_t max_payload;
	char *out;                   /* stdout of the command, max_payload bytes */
	uint64_t *taken;             /* tasks taken by all workers (shared) */
	uint64_t stop_at;            /* monotonic ms the grace period ends, once stopping */
};

/* The environment of CMD: ours without TQ_* task variables, plus the task's. */
static char **task_env(const struct worker *w, const struct tq_task *task, char vars[7][96])
{
	static const char *const names[] = { "TQ_TASK_ID=", "TQ_QUEUE=", "TQ_LEVEL=", "TQ_TYPE=",
					     "TQ_ATTEMPT=", "TQ_MAX_ATTEMPTS=", "TQ_SEGMENT=" };
	char qn[TQ_QUEUE_NAME_MAX + 1] = "";
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	env = calloc(n + 8, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool ours = false;

		for (unsigned j = 0; j < 6 && !ours; j++)
			ours = !strncmp(environ[i], names[j], strlen(names[j]));
		if (!ours)
			env[k++] = environ[i];
	}
	tq_queue_name(w->t, (int)task->queue, qn, sizeof(qn));
	snprintf(vars[0], 96, "TQ_TASK_ID=%" PRIu64, task->id);
	snprintf(vars[1], 96, "TQ_QUEUE=%s", qn);
	snprintf(vars[2], 96, "TQ_LEVEL=%u", task->level);
	snprintf(vars[3], 96, "TQ_TYPE=%u", task->type);
	snprintf(vars[4], 96, "TQ_ATTEMPT=%u", task->attempts);
	snprintf(vars[5], 96, "TQ_MAX_ATTEMPTS=%u", task->max_attempts);
	for (unsigned j = 0; j < 6; j++)
		env[k++] = vars[j];
	env[k++] = NULL;     /* TQ_SEGMENT is set in the process, once */
	return env;
}

static pid_t spawn(const struct worker *w, const struct tq_task *task, int *in_fd, int *out_fd)
{
	int in[2], out[2];
	char vars[7][96];
	char *argv[] = { "sh", "-c", (char *)w->c->exec, NULL };
	char **env = task_env(w, task, vars);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t def, none;
	pid_t pid = -1;
	int e;

	if (!env)
		return -1;
	if (pipe2(in, O_CLOEXEC) < 0) {
		free(env);
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		free(env);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	/* Its own process group: a terminal's ^C reaches the worker only, which
	 * lets CMD finish; killing the group takes CMD's children too. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				 POSIX_SPAWN_SETPGROUP);
	e = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(env);
	close(in[0]);
	close(out[1]);
	if (e != 0) {
		fprintf(stderr, "tq: worker: cannot run /bin/sh: %s\n", strerror(e));
		close(in[1]);
		close(out[0]);
		return -1;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	*in_fd = in[1];
	*out_fd = out[0];
	return pid;
}

enum outcome { RAN_OK, RAN_FAILED, RAN_KILLED, RAN_LOST };

/* Run CMD for one task; *outlen gets the bytes of stdout kept in w->out. */
static enum outcome run_task(struct worker *w, const struct tq_task *task, size_t *outlen)
{
	const unsigned char *payload = task->payload;
	size_t sent = 0, got = 0;
	uint64_t lease_ns = task->deadline_ns > tq_now_ns() ? task->deadline_ns - tq_now_ns() : 0;
	uint64_t deadline = task->deadline_ns;
	bool overflow = false, killed = false, lost = false;
	int in_fd, out_fd, status = 0;
	unsigned nap = 1;
	pid_t pid = spawn(w, task, &in_fd, &out_fd);

	if (pid < 0)
		return RAN_FAILED;
	if (task->len == 0) {
		close(in_fd);
		in_fd = -1;
	}
	for (;;) {
		struct pollfd pf[2];
		nfds_t n = 0;
		pid_t r;
		uint64_t now;

		if (in_fd >= 0)
			pf[n++] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
		if (out_fd >= 0)
			pf[n++] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
		if (n && poll(pf, n, 50) < 0 && errno != EINTR)
			break;
		if (!n) {
			struct timespec ts = { 0, (long)nap * 1000000L };

			nanosleep(&ts, NULL);
			if (nap < 50)
				nap *= 2;
		}
		if (in_fd >= 0) {
			ssize_t k = write(in_fd, payload + sent, task->len - sent);

			if (k > 0)
				sent += (size_t)k;
			if (sent == task->len || (k < 0 && errno != EAGAIN && errno != EINTR)) {
				close(in_fd);        /* done, or CMD does not read: EPIPE */
				in_fd = -1;
			}
		}
		while (out_fd >= 0) {
			char sink[4096];
			char *dst = overflow || got >= w->max_payload ? sink : w->out + got;
			size_t room = dst == sink ? sizeof(sink) : w->max_payload - got;
			ssize_t k = read(out_fd, dst, room);

			if (k > 0 && dst == sink) {
				overflow = true;      /* more than max_payload: fail it */
				close(out_fd);
				out_fd = -1;
			} else if (k > 0) {
				got += (size_t)k;
			} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(out_fd);
				out_fd = -1;
			} else {
				break;
			}
		}
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			pid = -1;
			/* What CMD wrote before it exited is in the pipe: take it, but
			 * do not wait for EOF (a background child may hold the pipe). */
			while (out_fd >= 0 && !overflow) {
				ssize_t k = got < w->max_payload ?
					read(out_fd, w->out + got, w->max_payload - got) : 0;
				char one;

				if (k > 0) {
					got += (size_t)k;
					continue;
				}
				if (got >= w->max_payload && read(out_fd, &one, 1) > 0)
					overflow = true;
				break;
			}
			break;
		}
		now = now_ms();
		if (stopping && !w->stop_at)
			w->stop_at = now + w->c->grace_ms;
		if (w->stop_at && now >= w->stop_at && !killed) {
			kill(-pid, SIGKILL);
			killed = true;
		}
		if (!lost && lease_ns && tq_now_ns() + lease_ns / 2 >= deadline) {
			int e = tq_extend(w->t, task->id, 0);

			if (e < 0) {
				fprintf(stderr, "tq: worker: task %" PRIu64 ": lease lost (%s): stopping its command\n",
					task->id, tq_strerror(e));
				kill(-pid, SIGKILL);
				lost = true;
			} else {
				deadline = tq_now_ns() + lease_ns;
			}
		}
	}
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (pid > 0) {              /* poll failed: do not leave it behind */
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		killed = true;
	}
	*outlen = got;
	if (lost)
		return RAN_LOST;
	if (killed)
		return RAN_KILLED;
	if (overflow) {
		fprintf(stderr, "tq: worker: task %" PRIu64 ": output over %u bytes: failing it\n",
			task->id, w->max_payload);
		return RAN_FAILED;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? RAN_OK : RAN_FAILED;
}

static int finish(struct worker *w, const struct tq_task *task, enum outcome o, size_t len)
{
	int e = 0;

	switch (o) {
	case RAN_OK:
		e = tq_ack(w->t, task->id, len ? w->out : NULL, len);
		if (e == -EAGAIN || e == -EMSGSIZE) {
			fprintf(stderr, "tq: worker: task %" PRIu64 ": no room for its result (%s): failing it\n",
				task->id, tq_strerror(e));
			e = tq_fail(w->t, task->id);
		}
		break;
	case RAN_FAILED: e = tq_fail(w->t, task->id); break;
	case RAN_KILLED: e = tq_release(w->t, task->id); break;
	case RAN_LOST: return 0;
	}
	if (e == -ESTALE || e == -ENOENT) {
		fprintf(stderr, "tq: worker: task %" PRIu64 ": %s (its lease ran out)\n", task->id,
			tq_strerror(e));
		return 0;
	}
	if (e < 0)
		return cli_fail(w->c, w->t, e);
	return 0;
}

/* One worker process: lease and run until told or done. Returns the exit code. */
static int work(struct worker *w)
{
	struct tq_lease_opts lo;
	uint64_t idle_since = now_ms();
	int rc = 0;

	memset(&lo, 0, sizeof(lo));
	lo.queues = w->nq ? w->qs : NULL;
	lo.nqueues = w->nq;
	lo.lease_ms = (uint32_t)w->c->lease_ms;
	while (!stopping && rc == 0) {
		struct tq_task task;
		size_t len = 0;
		int r;

		lo.timeout_ms = 100;
		if (w->c->idle_set) {
			uint64_t idle = now_ms() - idle_since;

			if (idle >= w->c->idle_exit_ms)
				break;
			if (w->c->idle_exit_ms - idle < 100)
				lo.timeout_ms = (int32_t)(w->c->idle_exit_ms - idle);
		}
		r = tq_lease(w->t, &lo, &task, 1);
		if (r == -EAGAIN || r == -ETIMEDOUT || r == -EINTR)
			continue;
		if (r < 0) {
			rc = cli_fail(w->c, w->t, r);
			break;
		}
		if (w->c->max_tasks_set &&
		    __atomic_fetch_add(w->taken, 1, __ATOMIC_SEQ_CST) >= w->c->max_tasks) {
			tq_release(w->t, task.id);
			break;
		}
		enum outcome o = run_task(w, &task, &len);

		rc = finish(w, &task, o, len);
		idle_since = now_ms();
		if (w->c->max_tasks_set &&
		    __atomic_load_n(w->taken, __ATOMIC_SEQ_CST) >= w->c->max_tasks)
			break;
	}
	return rc;
}

static int work_attached(struct worker *w)
{
	struct tq_segment_info si;
	int rc, e;

	if (cli_attach(w->c, &w->t))
		return 1;
	for (unsigned i = 0; i < w->c->nqueues; i++)
		if ((w->qs[w->nq++] = cli_queue(w->c, w->t, w->c->queues[i])) < 0) {
			tq_detach(w->t);
			return 1;
		}
	if ((e = tq_segment_info(w->t, &si)) < 0) {
		rc = cli_fail(w->c, w->t, e);
		tq_detach(w->t);
		return rc;
	}
	w->max_payload = si.config.max_payload;
	w->out = malloc(w->max_payload ? w->max_payload : 1);
	if (!w->out) {
		rc = cli_fail(w->c, w->t, -ENOMEM);
	} else {
		rc = work(w);
	}
	free(w->out);
	tq_detach(w->t);
	return rc;
}

int cmd_worker(struct cli *c)
{
	struct worker w;
	struct sigaction sa;
	pid_t pids[256];
	unsigned n = 0;
	int rc = 0;
	tq *t;

	if (!c->exec) {
		fprintf(stderr, "tq: worker: --exec CMD is required\n");
		return 2;
	}
	/* Without --queue, $TQ_QUEUE (set by tqd for its pools), else all. */
	if (!c->nqueues && getenv("TQ_QUEUE") && *getenv("TQ_QUEUE"))
		c->queues[c->nqueues++] = getenv("TQ_QUEUE");
	/* Check the segment and queues here, for a clear error and exit code. */
	if (cli_attach(c, &t))
		return 1;
	for (unsigned i = 0; i < c->nqueues; i++)
		if (cli_queue(c, t, c->queues[i]) < 0) {
			tq_detach(t);
			return 1;
		}
	tq_detach(t);
	if (setenv("TQ_SEGMENT", c->segment, 1) < 0) {
		fprintf(stderr, "tq: worker: setenv: %s\n", strerror(errno));
		return 1;
	}

	memset(&w, 0, sizeof(w));
	w.c = c;
	w.taken = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w.taken == MAP_FAILED) {
		fprintf(stderr, "tq: worker: mmap: %s\n", strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;     /* no SA_RESTART: a waiting lease returns -EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (c->concurrency == 1) {
		rc = work_attached(&w);
		munmap(w.taken, sizeof(uint64_t));
		return rc;
	}
	fflush(NULL);
	for (n = 0; n < c->concurrency; n++) {
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "tq: worker: fork: %s\n", strerror(errno));
			stopping = 1;
			rc = 1;
			break;
		}
		if (pid == 0)
			exit(work_attached(&w));
		pids[n] = pid;
	}
	/* Pass a stop on to every worker; reap them all. */
	for (unsigned left = n, told = 0; left;) {
		struct timespec nap = { 0, 10000000 };
		int st;
		pid_t p;

		if (stopping && !told) {
			for (unsigned i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
			told = 1;
		}
		p = waitpid(-1, &st, WNOHANG);
		if (p == 0 || (p < 0 && errno == EINTR)) {
			nanosleep(&nap, NULL);
			continue;
		}
		if (p < 0)
			break;
		for (unsigned i = 0; i < n; i++)
			if (pids[i] == p) {
				pids[i] = -1;
				left--;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
					rc = 1;
			}
	}
	munmap(w.taken, sizeof(uint64_t));
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * tq - the command line of a tq segment: create and destroy it, submit and
 * inspect tasks, control queues and dead letters, print counters, and run
 * any command as a worker (`tq worker --exec CMD`, in tq-worker.c).
 *
 * The segment is --segment NAME, else $TQ_SEGMENT, else /tq (as tqd).
 * Exit codes: 0 success, 1 a runtime error, 2 a usage error, 3 `wait` on a
 * task that went to the dead letters.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "tq-cli.h"

enum {
	O_QUEUES = 1000, O_LEVELS, O_CAPACITY, O_MAXPAYLOAD, O_PROCS, O_ARENA, O_MODE,
	O_DELAY, O_ATTEMPTS, O_TYPE, O_LEASE, O_TIMEOUT, O_STATE, O_LIMIT, O_CURSOR,
	O_MAXTASKS, O_IDLE, O_GRACE, O_PROMETHEUS,
};

static const struct option longopts[] = {
	{ "segment", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ "queues", required_argument, NULL, O_QUEUES },
	{ "levels", required_argument, NULL, O_LEVELS },
	{ "capacity", required_argument, NULL, O_CAPACITY },
	{ "max-payload", required_argument, NULL, O_MAXPAYLOAD },
	{ "procs", required_argument, NULL, O_PROCS },
	{ "arena-bytes", required_argument, NULL, O_ARENA },
	{ "mode", required_argument, NULL, O_MODE },
	{ "queue", required_argument, NULL, 'q' },
	{ "level", required_argument, NULL, 'l' },
	{ "delay-ms", required_argument, NULL, O_DELAY },
	{ "attempts", required_argument, NULL, O_ATTEMPTS },
	{ "type", required_argument, NULL, O_TYPE },
	{ "lease-ms", required_argument, NULL, O_LEASE },
	{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
	{ "data", required_argument, NULL, 'd' },
	{ "file", required_argument, NULL, 'f' },
	{ "count", required_argument, NULL, 'n' },
	{ "state", required_argument, NULL, O_STATE },
	{ "limit", required_argument, NULL, O_LIMIT },
	{ "cursor", required_argument, NULL, O_CURSOR },
	{ "exec", required_argument, NULL, 'e' },
	{ "concurrency", required_argument, NULL, 'c' },
	{ "max-tasks", required_argument, NULL, O_MAXTASKS },
	{ "idle-exit-ms", required_argument, NULL, O_IDLE },
	{ "grace-ms", required_argument, NULL, O_GRACE },
	{ "prometheus", no_argument, NULL, O_PROMETHEUS },
	{ NULL, 0, NULL, 0 },
};

struct command {
	const char *name;
	int (*run)(struct cli *c);
	int min_args, max_args;      /* positional arguments; max -1 = any */
	const int *allowed;          /* options beyond -s/-j/-h, 0-terminated */
	const char *usage;
};

/* ------------------------------------------------------------------------
 * Shared helpers
 */

int cli_fail(const struct cli *c, tq *t, int e)
{
	const char *last = tq_last_error(t);

	fprintf(stderr, "tq: %s: %s%s%s\n", c->cmd, tq_strerror(e), *last ? ": " : "", last);
	return 1;
}

int cli_attach(const struct cli *c, tq **t)
{
	int e = tq_attach(c->segment, t);

	if (e < 0) {
		fprintf(stderr, "tq: %s: %s: %s%s%s\n", c->cmd, c->segment, tq_strerror(e),
			*tq_last_error(NULL) ? ": " : "", tq_last_error(NULL));
		if (e == -ENOENT)
			fprintf(stderr, "tq: create it with 'tq create --segment %s'\n", c->segment);
		return 1;
	}
	return 0;
}

int cli_queue(const struct cli *c, tq *t, const char *name)
{
	int q = tq_queue_find(t, name);

	if (q == -ENOENT)
		fprintf(stderr, "tq: %s: no queue named %s\n", c->cmd, name);
	else if (q < 0)
		cli_fail(c, t, q);
	return q;
}

static int parse_num(const struct cli *c, const char *name, const char *v,
		     unsigned long long min, unsigned long long max,
		     unsigned long long *out, int base)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, base);
	if (errno || !*v || *end || n < min || n > max || v[0] == '-' || v[0] == '+' ||
	    v[0] == ' ') {
		fprintf(stderr, "tq: %s: %s: '%s' is not a number in %llu..%llu\n", c->cmd, name,
			v, min, max);
		return -1;
	}
	*out = n;
	return 0;
}

static int parse_id(const struct cli *c, const char *v, uint64_t *id)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || !*v || *end || v[0] < '0' || v[0] > '9' || n == 0) {
		fprintf(stderr, "tq: %s: '%s' is not a task ID\n", c->cmd, v);
		return -1;
	}
	*id = n;
	return 0;
}

static const char *state_name(uint32_t s)
{
	switch (s) {
	case TQ_STATE_PENDING: return "pending";
	case TQ_STATE_DELAYED: return "delayed";
	case TQ_STATE_LEASED: return "leased";
	case TQ_STATE_DONE: return "done";
	case TQ_STATE_DEAD: return "dead";
	case TQ_STATE_BUSY: return "busy";
	default: return "unknown";
	}
}

static void iso_time(char *buf, size_t size, uint64_t ns)
{
	time_t s = (time_t)(ns / 1000000000u);
	struct tm tm;
	char d[32];

	gmtime_r(&s, &tm);
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09uZ", d, (unsigned)(ns % 1000000000u));
}

static void json_str(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch == '\r')
			fputs("\\r", f);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void base64(FILE *f, const unsigned char *p, size_t len)
{
	static const char b[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	fputc('"', f);
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		fputc(b[(v >> 18) & 63], f);
		fputc(b[(v >> 12) & 63], f);
		fputc(i + 1 < len ? b[(v >> 6) & 63] : '=', f);
		fputc(i + 2 < len ? b[v & 63] : '=', f);
	}
	fputc('"', f);
}

/* A growing array of task IDs. */
struct idvec {
	uint64_t *v;
	size_t n, cap;
};

static int idvec_push(struct idvec *iv, uint64_t id)
{
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 256;
		uint64_t *v = realloc(iv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		iv->v = v;
		iv->cap = cap;
	}
	iv->v[iv->n++] = id;
	return 0;
}

/* The queues a command works on: --queue Q (all given), else every declared
 * queue. Returns how many went into qs, or -1 after printing why. */
static int queues_of(const struct cli *c, tq *t, int *qs)
{
	struct tq_segment_info si;
	char name[TQ_QUEUE_NAME_MAX + 1];
	int n = 0, e;

	if (c->nqueues) {
		for (unsigned i = 0; i < c->nqueues; i++)
			if ((qs[n++] = cli_queue(c, t, c->queues[i])) < 0)
				return -1;
		return n;
	}
	if ((e = tq_segment_info(t, &si)) < 0) {
		cli_fail(c, t, e);
		return -1;
	}
	for (uint32_t q = 0; q < si.config.queues && q < TQ_QUEUES_MAX; q++) {
		e = tq_queue_name(t, (int)q, name, sizeof(name));
		if (e == -ENOENT)
			continue;
		if (e < 0) {
			cli_fail(c, t, e);
			return -1;
		}
		qs[n++] = (int)q;
	}
	return n;
}

/* Every ID of queue q in one state (TQ_STATE_DEAD through tq_dead_list). */
static int collect(const struct cli *c, tq *t, int q, int level, unsigned state,
		   struct idvec *iv)
{
	uint64_t ids[TQ_BATCH_MAX], cursor = 0;
	int r;

	for (;;) {
		if (state == TQ_STATE_DEAD && level < 0)
			r = tq_dead_list(t, q, ids, TQ_BATCH_MAX, &cursor);
		else
			r = tq_list(t, q, level, state, ids, TQ_BATCH_MAX, &cursor);
		if (r < 0) {
			cli_fail(c, t, r);
			return -1;
		}
		if (r == 0)
			return 0;
		for (int i = 0; i < r; i++)
			if (idvec_push(iv, ids[i]) < 0) {
				cli_fail(c, t, -ENOMEM);
				return -1;
			}
	}
}

static void print_info(const struct cli *c, tq *t, const struct tq_info *in, FILE *f)
{
	char qn[TQ_QUEUE_NAME_MAX + 1] = "?", sub[64], due[64];

	tq_queue_name(t, (int)in->queue, qn, sizeof(qn));
	iso_time(sub, sizeof(sub), in->submitted_ns);
	iso_time(due, sizeof(due), in->due_ns);
	if (c->json) {
		fprintf(f, "{\"id\":%" PRIu64 ",\"state\":\"%s\",\"queue\":", in->id,
			state_name(in->state));
		json_str(f, qn, strlen(qn));
		fprintf(f, ",\"level\":%u,\"type\":%u,\"attempts\":%u,\"max_attempts\":%u,"
			"\"len\":%u,\"lease_ms\":%u,\"owner_pid\":%d,\"submitted_ns\":%" PRIu64
			",\"submitted\":\"%s\",\"due_ns\":%" PRIu64 ",\"due\":",
			in->level, in->type, in->attempts, in->max_attempts, in->len, in->lease_ms,
			(int)in->owner_pid, in->submitted_ns, sub, in->due_ns);
		if (in->due_ns)
			fprintf(f, "\"%s\"}", due);
		else
			fputs("null}", f);
		return;
	}
	fprintf(f, "id         %" PRIu64 "\nstate      %s\nqueue      %s\nlevel      %u\n"
		"type       %u\nattempts   %u/%u\nlength     %u\nlease_ms   %u\nowner_pid  %d\n"
		"submitted  %s (%" PRIu64 " ns)\n",
		in->id, state_name(in->state), qn, in->level, in->type, in->attempts,
		in->max_attempts, in->len, in->lease_ms, (int)in->owner_pid, sub, in->submitted_ns);
	if (in->due_ns)
		fprintf(f, "due        %s (%" PRIu64 " ns)\n", due, in->due_ns);
	else
		fprintf(f, "due        -\n");
}

/* ------------------------------------------------------------------------
 * Subcommands
 */

static int cmd_create(struct cli *c)
{
	tq *t;
	int e = tq_create(c->segment, &c->cfg, &t);

	if (e < 0) {
		fprintf(stderr, "tq: create: %s: %s%s%s\n", c->segment, tq_strerror(e),
			*tq_last_error(NULL) ? ": " : "", tq_last_error(NULL));
		return 1;
	}
	tq_detach(t);
	return 0;
}

static int cmd_destroy(struct cli *c)
{
	int e = tq_unlink(c->segment);

	if (e < 0) {
		fprintf(stderr, "tq: destroy: %s: %s\n", c->segment, tq_strerror(e));
		return 1;
	}
	return 0;
}

/* Read the whole of fd, up to max bytes (one more tells "too large"). */
static int read_all(int fd, char **buf, size_t *len, size_t max)
{
	size_t cap = 4096, n = 0;
	char *p = malloc(cap);

	if (!p)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *q;

			if (cap > max) {
				break;
			}
			cap *= 2;
			q = realloc(p, cap);
			if (!q) {
				free(p);
				return -ENOMEM;
			}
			p = q;
		}
		r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			free(p);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = p;
	*len = n;
	return 0;
}

static int cmd_submit(struct cli *c)
{
	struct tq_submit_opts so;
	struct tq_task_spec specs[TQ_BATCH_MAX];
	uint64_t ids[TQ_BATCH_MAX];
	const char *qname = c->nqueues ? c->queues[0] : "default";
	char *payload = NULL;
	size_t len = 0;
	unsigned long long done = 0;
	int q, e, rc = 0, err = -EAGAIN;
	tq *t;

	if (c->data && c->file) {
		fprintf(stderr, "tq: submit: give --data or --file, not both\n");
		return 2;
	}
	if (c->data) {
		len = strlen(c->data);
	} else {
		int fd = 0;

		if (c->file && strcmp(c->file, "-") != 0) {
			fd = open(c->file, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				fprintf(stderr, "tq: submit: %s: %s\n", c->file, strerror(errno));
				return 1;
			}
		}
		e = read_all(fd, &payload, &len, TQ_PAYLOAD_MAX);
		if (fd > 0)
			close(fd);
		if (e < 0) {
			fprintf(stderr, "tq: submit: reading %s: %s\n", fd ? c->file : "stdin",
				strerror(-e));
			return 1;
		}
	}
	if (cli_attach(c, &t)) {
		free(payload);
		return 1;
	}
	q = tq_queue_declare(t, qname, NULL);
	if (q < 0) {
		rc = cli_fail(c, t, q);
		goto out;
	}
	memset(&so, 0, sizeof(so));
	so.level = c->level < 0 ? 0 : (uint32_t)c->level;
	so.type = (uint32_t)c->type;
	so.max_attempts = (uint32_t)c->attempts;
	so.lease_ms = (uint32_t)c->lease_ms;
	so.timeout_ms = c->timeout_ms < 0 ? 0 : (int32_t)c->timeout_ms;
	if (c->delay_ms)
		so.not_before_ns = tq_now_ns() + c->delay_ms * 1000000ull;
	for (unsigned i = 0; i < TQ_BATCH_MAX; i++) {
		specs[i].payload = c->data ? c->data : payload;
		specs[i].len = (uint32_t)len;
		specs[i].level = so.level;
		specs[i].type = so.type;
	}
	if (len > UINT32_MAX) {
		rc = cli_fail(c, t, -EMSGSIZE);
		goto out;
	}
	if (c->json)
		fputc('[', stdout);
	while (done < c->count) {
		unsigned n = c->count - done > TQ_BATCH_MAX ? TQ_BATCH_MAX : (unsigned)(c->count - done);

		if (c->count == 1) {
			e = tq_submit(t, q, specs[0].payload, len, &so, ids);
			if (e == 0)
				e = 1;
		} else {
			e = tq_submit_batch(t, q, specs, n, &so, ids);
		}
		if (e < 0) {
			err = e;
			break;
		}
		for (int i = 0; i < e; i++) {
			if (c->json)
				printf("%s%" PRIu64, done + (unsigned)i ? "," : "", ids[i]);
			else
				printf("%" PRIu64 "\n", ids[i]);
		}
		done += (unsigned)e;
		if ((unsigned)e < n)
			break;
	}
	if (c->json)
		fputs("]\n", stdout);
	fflush(stdout);
	if (done < c->count && err != -EAGAIN && err != -ETIMEDOUT) {
		rc = cli_fail(c, t, err);
	} else if (done < c->count) {
		rc = 1;
		fprintf(stderr, "tq: submit: queue %s is full: %llu of %llu task%s submitted%s\n",
			qname, done, c->count, c->count == 1 ? "" : "s",
			c->timeout_ms <= 0 ? " (--timeout-ms N waits for room)" : "");
	}
out:
	free(payload);
	tq_detach(t);
	return rc;
}

static int cmd_get(struct cli *c)
{
	struct tq_info in;
	uint64_t id;
	tq *t;
	int e;

	if (parse_id(c, c->args[0], &id) < 0)
		return 2;
	if (cli_attach(c, &t))
		return 1;
	e = tq_get(t, id, &in);
	if (e < 0) {
		cli_fail(c, t, e);
		tq_detach(t);
		return 1;
	}
	print_info(c, t, &in, stdout);
	if (c->json)
		fputc('\n', stdout);
	tq_detach(t);
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int cmd_wait(struct cli *c)
{
	struct tq_info in;
	uint64_t id, end;
	struct timespec nap = { 0, 2000000 };
	tq *t;
	int e, rc = 1;

	if (parse_id(c, c->args[0], &id) < 0)
		return 2;
	if (cli_attach(c, &t))
		return 1;
	end = c->timeout_ms < 0 ? UINT64_MAX : mono_ms() + (uint64_t)c->timeout_ms;
	for (;;) {
		e = tq_get(t, id, &in);
		if (e == -ENOENT) {
			if (c->json)
				printf("{\"id\":%" PRIu64 ",\"state\":\"gone\"}\n", id);
			rc = 0;
			break;
		}
		if (e < 0) {
			cli_fail(c, t, e);
			break;
		}
		if (in.state == TQ_STATE_DEAD) {
			fprintf(stderr, "tq: wait: task %" PRIu64 " is dead after %u attempt%s\n", id,
				in.attempts, in.attempts == 1 ? "" : "s");
			if (c->json)
				printf("{\"id\":%" PRIu64 ",\"state\":\"dead\"}\n", id);
			rc = 3;
			break;
		}
		if (in.state == TQ_STATE_DONE) {
			unsigned char *buf = malloc(in.len ? in.len : 1);

			if (!buf) {
				cli_fail(c, t, -ENOMEM);
				break;
			}
			e = tq_result(t, id, buf, in.len);
			if (e == -ENOENT || e == -EBUSY) {    /* forgotten meanwhile */
				free(buf);
				continue;
			}
			if (e < 0) {
				free(buf);
				cli_fail(c, t, e);
				break;
			}
			if ((uint32_t)e > in.len)
				e = (int)in.len;
			if (c->json) {
				printf("{\"id\":%" PRIu64 ",\"state\":\"done\",\"len\":%d,\"result\":", id, e);
				json_str(stdout, (const char *)buf, (size_t)e);
				fputs(",\"result_base64\":", stdout);
				base64(stdout, buf, (size_t)e);
				fputs("}\n", stdout);
			} else {
				fwrite(buf, 1, (size_t)e, stdout);
			}
			free(buf);
			rc = 0;
			break;
		}
		if (mono_ms() >= end) {
			fprintf(stderr, "tq: wait: task %" PRIu64 " still %s after %lld ms\n", id,
				state_name(in.state), c->timeout_ms);
			break;
		}
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 50000000)
			nap.tv_nsec += 2000000;
	}
	tq_detach(t);
	return rc;
}

static int parse_state(const struct cli *c, unsigned *state)
{
	static const struct { const char *n; unsigned s; } st[] = {
		{ "pending", TQ_STATE_PENDING }, { "delayed", TQ_STATE_DELAYED },
		{ "leased", TQ_STATE_LEASED }, { "dead", TQ_STATE_DEAD },
	};

	if (!c->state) {
		*state = TQ_STATE_PENDING;
		return 0;
	}
	for (unsigned i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (!strcmp(c->state, st[i].n)) {
			*state = st[i].s;
			return 0;
		}
	fprintf(stderr, "tq: %s: --state: '%s' is not pending, delayed, leased or dead\n",
		c->cmd, c->state);
	return -1;
}

static int cmd_list(struct cli *c)
{
	uint64_t ids[TQ_BATCH_MAX], cursor = c->cursor;
	unsigned long long shown = 0;
	unsigned state;
	int q, r = 0, rc = 0;
	bool more = false;
	tq *t;

	if (parse_state(c, &state) < 0)
		return 2;
	if (!c->nqueues) {
		fprintf(stderr, "tq: list: --queue Q is required\n");
		return 2;
	}
	if (cli_attach(c, &t))
		return 1;
	if ((q = cli_queue(c, t, c->queues[0])) < 0) {
		tq_detach(t);
		return 1;
	}
	if (c->json)
		fputs("{\"tasks\":[", stdout);
	while (shown < c->limit) {
		unsigned n = c->limit - shown > TQ_BATCH_MAX ? TQ_BATCH_MAX : (unsigned)(c->limit - shown);

		r = tq_list(t, q, (int)c->level, state, ids, n, &cursor);
		if (r < 0) {
			rc = cli_fail(c, t, r);
			break;
		}
		if (r == 0)
			break;
		for (int i = 0; i < r; i++) {
			struct tq_info in;

			if (!c->json) {
				printf("%" PRIu64 "\n", ids[i]);
				continue;
			}
			if (shown + (unsigned)i)
				fputc(',', stdout);
			if (tq_get(t, ids[i], &in) == 0)
				print_info(c, t, &in, stdout);
			else
				printf("{\"id\":%" PRIu64 ",\"state\":\"gone\"}", ids[i]);
		}
		shown += (unsigned)r;
	}
	more = rc == 0 && shown == c->limit;
	if (c->json) {
		if (more)
			printf("],\"cursor\":%" PRIu64 "}\n", cursor);
		else
			fputs("],\"cursor\":null}\n", stdout);
	} else if (more) {
		fprintf(stderr, "next cursor: %" PRIu64 "\n", cursor);
	}
	tq_detach(t);
	return rc;
}

/* cancel ID / priority ID LEVEL */
static int cmd_task_op(struct cli *c)
{
	unsigned long long level = 0;
	uint64_t id;
	tq *t;
	int e;

	if (parse_id(c, c->args[0], &id) < 0)
		return 2;
	if (!strcmp(c->cmd, "priority") &&
	    parse_num(c, "LEVEL", c->args[1], 0, TQ_LEVELS_MAX - 1, &level, 10) < 0)
		return 2;
	if (cli_attach(c, &t))
		return 1;
	if (!strcmp(c->cmd, "cancel"))
		e = tq_cancel(t, id);
	else
		e = tq_set_level(t, id, (unsigned)level);
	if (e < 0)
		cli_fail(c, t, e);
	tq_detach(t);
	return e < 0;
}

/* pause Q / resume Q / purge Q */
static int cmd_queue_op(struct cli *c)
{
	const char *name = c->nargs ? c->args[0] : c->nqueues ? c->queues[0] : NULL;
	int q, e = 0;
	tq *t;

	if (!name) {
		fprintf(stderr, "tq: %s: which queue? (tq %s QUEUE)\n", c->cmd, c->cmd);
		return 2;
	}
	if (cli_attach(c, &t))
		return 1;
	if ((q = cli_queue(c, t, name)) < 0) {
		tq_detach(t);
		return 1;
	}
	if (!strcmp(c->cmd, "pause")) {
		e = tq_queue_pause(t, q);
	} else if (!strcmp(c->cmd, "resume")) {
		e = tq_queue_resume(t, q);
	} else {
		static const unsigned states[] = { TQ_STATE_PENDING, TQ_STATE_DELAYED };
		struct idvec iv = { 0 };
		unsigned long n = 0;

		for (unsigned s = 0; s < 2 && e == 0; s++)
			if (collect(c, t, q, s == 0 ? -1 : 0, states[s], &iv) < 0)
				e = 1;
		if (e == 0) {
			for (size_t i = 0; i < iv.n; i++)
				if (tq_cancel(t, iv.v[i]) == 0)
					n++;
			if (c->json)
				printf("{\"queue\":\"%s\",\"cancelled\":%lu}\n", name, n);
			else
				printf("cancelled %lu task%s\n", n, n == 1 ? "" : "s");
		}
		free(iv.v);
		tq_detach(t);
		return e;
	}
	if (e < 0)
		cli_fail(c, t, e);
	tq_detach(t);
	return e < 0;
}

static int cmd_dead(struct cli *c)
{
	const char *sub = c->args[0];
	struct idvec iv = { 0 };
	int qs[TQ_QUEUES_MAX], nq, rc = 0;
	unsigned long n = 0, bad = 0;
	tq *t;

	if (strcmp(sub, "list") && strcmp(sub, "requeue") && strcmp(sub, "purge")) {
		fprintf(stderr, "tq: dead: '%s' is not list, requeue or purge\n", sub);
		return 2;
	}
	if (!strcmp(sub, "list") && c->nargs > 1) {
		fprintf(stderr, "tq: dead list: unexpected argument '%s'\n", c->args[1]);
		return 2;
	}
	for (int i = 1; i < c->nargs; i++) {
		uint64_t id;

		if (parse_id(c, c->args[i], &id) < 0) {
			free(iv.v);
			return 2;
		}
		if (idvec_push(&iv, id) < 0) {
			free(iv.v);
			return 1;
		}
	}
	if (cli_attach(c, &t)) {
		free(iv.v);
		return 1;
	}
	if (c->nargs == 1) {
		if ((nq = queues_of(c, t, qs)) < 0)
			rc = 1;
		for (int i = 0; i < nq && rc == 0; i++)
			if (collect(c, t, qs[i], -1, TQ_STATE_DEAD, &iv) < 0)
				rc = 1;
	}
	if (rc)
		goto out;
	if (!strcmp(sub, "list")) {
		if (c->json)
			fputc('[', stdout);
		for (size_t i = 0; i < iv.n; i++) {
			struct tq_info in;

			if (!c->json) {
				printf("%" PRIu64 "\n", iv.v[i]);
				continue;
			}
			if (i)
				fputc(',', stdout);
			if (tq_get(t, iv.v[i], &in) == 0)
				print_info(c, t, &in, stdout);
			else
				printf("{\"id\":%" PRIu64 ",\"state\":\"gone\"}", iv.v[i]);
		}
		if (c->json)
			fputs("]\n", stdout);
		goto out;
	}
	for (size_t i = 0; i < iv.n; i++) {
		int e = !strcmp(sub, "requeue") ? tq_requeue_dead(t, iv.v[i]) : tq_forget(t, iv.v[i]);

		if (e == 0) {
			n++;
		} else {
			bad++;
			fprintf(stderr, "tq: dead %s: %" PRIu64 ": %s\n", sub, iv.v[i], tq_strerror(e));
		}
	}
	if (c->json)
		printf("{\"%s\":%lu,\"failed\":%lu}\n", !strcmp(sub, "requeue") ? "requeued" : "purged",
		       n, bad);
	else
		printf("%s %lu dead letter%s\n", !strcmp(sub, "requeue") ? "requeued" : "purged", n,
		       n == 1 ? "" : "s");
	rc = bad ? 1 : 0;
out:
	free(iv.v);
	tq_detach(t);
	return rc;
}

#define STAT_FIELDS(X) X(depth) X(delayed) X(leased_now) X(submitted) X(leased) X(acked) \
	X(failed) X(released) X(dead) X(cancelled) X(requeued) X(moved) X(expired)

static void print_stats_json(const struct tq_stats *s)
{
	const char *sep = "";

	fputc('{', stdout);
#define X(f) printf("%s\"" #f "\":%" PRIu64, sep, s->f); sep = ",";
	STAT_FIELDS(X)
#undef X
	fputc('}', stdout);
}

static void print_stats_row(const char *q, const char *level, const struct tq_stats *s)
{
	printf("%-16s %-5s", q, level);
#define X(f) printf(" %10" PRIu64, s->f);
	STAT_FIELDS(X)
#undef X
	fputc('\n', stdout);
}

/* tq stats --prometheus: the exposition tqd serves (tools/metrics.c). */
static bool stats_prometheus;

static int print_prometheus(struct cli *c)
{
	struct metrics_opts mo = { .segment = c->segment };
	struct metrics_buf b = { 0 };
	int qs[TQ_QUEUES_MAX], e;
	tq *t;

	if (c->json) {
		fprintf(stderr, "tq: stats: --json and --prometheus exclude each other\n");
		return 2;
	}
	if (cli_attach(c, &t))
		return 1;
	if (c->nqueues) {
		if ((e = queues_of(c, t, qs)) < 0) {
			tq_detach(t);
			return 1;
		}
		mo.queues = qs;
		mo.nqueues = (unsigned)e;
	}
	e = metrics_render(t, &mo, &b);
	if (e < 0)
		cli_fail(c, t, e);
	else
		fwrite(b.data, 1, b.len, stdout);
	metrics_buf_free(&b);
	tq_detach(t);
	return e < 0;
}

static int cmd_stats(struct cli *c)
{
	if (stats_prometheus)
		return print_prometheus(c);

	struct tq_segment_info si;
	struct tq_stats st;
	int qs[TQ_QUEUES_MAX], nq, e;
	tq *t;

	if (cli_attach(c, &t))
		return 1;
	if ((e = tq_segment_info(t, &si)) < 0) {
		cli_fail(c, t, e);
		tq_detach(t);
		return 1;
	}
	if ((nq = queues_of(c, t, qs)) < 0) {
		tq_detach(t);
		return 1;
	}
	if (c->json) {
		printf("{\"segment\":");
		json_str(stdout, c->segment, strlen(c->segment));
		printf(",\"queues_max\":%u,\"levels\":%u,\"capacity\":%u,\"max_payload\":%u,"
		       "\"procs\":%u,\"arena_bytes\":%" PRIu64 ",\"queues_declared\":%u,"
		       "\"procs_attached\":%u,\"tasks_held\":%" PRIu64 ",\"segment_bytes\":%" PRIu64
		       ",\"repairs\":%" PRIu64 ",\"queues\":[",
		       si.config.queues, si.config.levels, si.config.capacity, si.config.max_payload,
		       si.config.procs, si.config.arena_bytes, si.queues_declared, si.procs_attached,
		       si.tasks_held, si.segment_bytes, si.repairs);
	} else {
		printf("segment %s: %u/%u queues, %u levels, %" PRIu64 "/%u tasks held, "
		       "%u processes attached, %" PRIu64 " repairs\n",
		       c->segment, si.queues_declared, si.config.queues, si.config.levels,
		       si.tasks_held, si.config.capacity, si.procs_attached, si.repairs);
		printf("%-16s %-5s", "queue", "level");
#define X(f) printf(" %10.10s", #f);
		STAT_FIELDS(X)
#undef X
		fputc('\n', stdout);
	}
	for (int i = 0; i < nq; i++) {
		char name[TQ_QUEUE_NAME_MAX + 1] = "?";

		tq_queue_name(t, qs[i], name, sizeof(name));
		if ((e = tq_stats(t, qs[i], -1, &st)) < 0)
			break;
		if (c->json) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(stdout, name, strlen(name));
			printf(",\"index\":%d,\"paused\":%s,\"total\":", qs[i],
			       tq_queue_paused(t, qs[i]) == 1 ? "true" : "false");
			print_stats_json(&st);
			fputs(",\"levels\":[", stdout);
		} else {
			print_stats_row(name, tq_queue_paused(t, qs[i]) == 1 ? "all,p" : "all", &st);
		}
		for (uint32_t l = 0; l < si.config.levels; l++) {
			char lv[16];

			if ((e = tq_stats(t, qs[i], (int)l, &st)) < 0)
				break;
			if (c->json) {
				if (l)
					fputc(',', stdout);
				print_stats_json(&st);
			} else if (st.depth || st.delayed || st.leased_now || st.submitted) {
				snprintf(lv, sizeof(lv), "%u", l);
				print_stats_row("", lv, &st);
			}
		}
		if (e < 0)
			break;
		if (c->json)
			fputs("]}", stdout);
	}
	if (c->json)
		fputs("]}\n", stdout);
	if (e < 0)
		cli_fail(c, t, e);
	tq_detach(t);
	return e < 0;
}

/* ------------------------------------------------------------------------
 * The table of subcommands, and main
 */

static const int create_opts[] = { O_QUEUES, O_LEVELS, O_CAPACITY, O_MAXPAYLOAD, O_PROCS,
				   O_ARENA, O_MODE, 0 };
static const int submit_opts[] = { 'q', 'l', O_DELAY, O_ATTEMPTS, O_TYPE, O_LEASE, O_TIMEOUT,
				   'd', 'f', 'n', 0 };
static const int wait_opts[] = { O_TIMEOUT, 0 };
static const int list_opts[] = { 'q', 'l', O_STATE, O_LIMIT, O_CURSOR, 0 };
static const int queue_opts[] = { 'q', 0 };
static const int stats_opts[] = { 'q', O_PROMETHEUS, 0 };
static const int worker_opts[] = { 'e', 'q', 'c', O_MAXTASKS, O_IDLE, O_GRACE, O_LEASE, 0 };
static const int no_opts[] = { 0 };
static const int schedule_opts[] = { 'q', 'l', O_TYPE, O_ATTEMPTS, 'd', 'f', 0 };

static const struct command commands[] = {
	{ "create", cmd_create, 0, 0, create_opts,
	  "tq create [--queues N] [--levels N] [--capacity N] [--max-payload N] [--procs N]\n"
	  "          [--arena-bytes N] [--mode OCTAL]\n"
	  "  Create the segment (defaults: 16 queues, 8 levels, capacity 1048576,\n"
	  "  max payload 1048576, 256 procs, arena 67108864 bytes, mode 0600).\n" },
	{ "destroy", cmd_destroy, 0, 0, no_opts,
	  "tq destroy\n  Remove the segment's name; attached processes keep working.\n" },
	{ "submit", cmd_submit, 0, 0, submit_opts,
	  "tq submit [--queue Q] [--level N] [--delay-ms N] [--attempts N] [--type N]\n"
	  "          [--lease-ms N] [--timeout-ms N] [--count N] [--data STRING | --file PATH]\n"
	  "  Submit a task to queue Q (default \"default\", declared if needed). The payload\n"
	  "  is --data, or the contents of --file, or stdin (also with --file -).\n"
	  "  --count N submits N copies. --timeout-ms waits that long for room when\n"
	  "  the queue is full (default 0: fail at once). Prints the task ID(s).\n" },
	{ "get", cmd_get, 1, 1, no_opts,
	  "tq get ID\n  Print a task's state, queue, level, type, attempts, length, owner and times.\n" },
	{ "wait", cmd_wait, 1, 1, wait_opts,
	  "tq wait ID [--timeout-ms N]\n"
	  "  Wait until the task is finished; print its result (raw; base64 with --json).\n"
	  "  Exit 0 when done (nothing printed if it left no result), 3 when dead,\n"
	  "  1 on timeout.\n" },
	{ "list", cmd_list, 0, 0, list_opts,
	  "tq list --queue Q [--level L] [--state pending|delayed|leased|dead] [--limit N]\n"
	  "        [--cursor C]\n"
	  "  Print task IDs, one per line (default: pending, at most 100). When more\n"
	  "  may follow, the next cursor goes to stderr (\"cursor\" in --json).\n" },
	{ "cancel", cmd_task_op, 1, 1, no_opts, "tq cancel ID\n  Cancel a pending or delayed task.\n" },
	{ "priority", cmd_task_op, 2, 2, no_opts,
	  "tq priority ID LEVEL\n  Move a pending or delayed task to another level (0 = most urgent).\n" },
	{ "pause", cmd_queue_op, 0, 1, queue_opts, "tq pause QUEUE\n  Stop leasing from QUEUE.\n" },
	{ "resume", cmd_queue_op, 0, 1, queue_opts, "tq resume QUEUE\n  Leasing from QUEUE again.\n" },
	{ "purge", cmd_queue_op, 0, 1, queue_opts,
	  "tq purge QUEUE\n  Cancel every pending and delayed task of QUEUE.\n" },
	{ "dead", cmd_dead, 1, -1, queue_opts,
	  "tq dead list [--queue Q]\n"
	  "tq dead requeue [--queue Q] [ID...]\n"
	  "tq dead purge [--queue Q] [ID...]\n"
	  "  List, requeue (attempts reset) or forget dead letters: the IDs given, else\n"
	  "  all of queue Q, else all of every queue.\n" },
	{ "stats", cmd_stats, 0, 0, stats_opts,
	  "tq stats [--queue Q] [--prometheus]\n"
	  "  --prometheus: the Prometheus text format, as tqd serves it (docs/metrics.md).\n"
	  "  Counters of each queue (or Q), in total and per level, and segment figures.\n" },
	{ "schedule", cmd_schedule, 1, 3, schedule_opts,
	  "tq schedule add NAME SPEC [--queue Q] [--level N] [--type N] [--attempts N]\n"
	  "                 [--data STRING | --file PATH]\n"
	  "tq schedule list\n"
	  "tq schedule remove NAME\n"
	  "  Periodic tasks: the supervisor (tqd) submits one task to Q (default\n"
	  "  \"default\") per tick of SPEC, in UTC: cron ('0 3 * * mon-fri', with an\n"
	  "  optional leading seconds field), @hourly, @daily, @weekly, @monthly,\n"
	  "  @yearly, or '@every 10s'. Adding an existing NAME replaces it.\n" },
	{ "worker", cmd_worker, 0, 0, worker_opts,
	  "tq worker --exec CMD [--queue Q ...] [--concurrency N] [--max-tasks N]\n"
	  "          [--idle-exit-ms N] [--grace-ms N] [--lease-ms N]\n"
	  "  Run `/bin/sh -c CMD` once per leased task: the payload on stdin, and\n"
	  "  TQ_TASK_ID, TQ_QUEUE, TQ_LEVEL, TQ_TYPE, TQ_ATTEMPT, TQ_MAX_ATTEMPTS and\n"
	  "  TQ_SEGMENT in the environment. Exit 0 acks the task with stdout as its\n"
	  "  result (none if empty; more than the segment's max payload fails it); any\n"
	  "  other exit fails the attempt. Leases are extended while CMD runs.\n"
	  "  --concurrency N runs N worker processes (default 1); --queue (repeatable)\n"
	  "  picks queues (default $TQ_QUEUE, else all); --max-tasks N exits after N\n"
	  "  tasks in all;\n"
	  "  --idle-exit-ms N exits after N ms with nothing to do. SIGTERM/SIGINT stop\n"
	  "  leasing and let running commands finish for --grace-ms (default 10000),\n"
	  "  then kill them and give their tasks back.\n" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tq [--segment NAME] COMMAND [options] [arguments]\n"
		"  The segment is --segment NAME, else $TQ_SEGMENT, else %s.\n"
		"  Every command takes --help; commands that print data take --json.\n"
		"commands:\n",
		TQ_CLI_DEFAULT_SEGMENT);
	for (unsigned i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s", commands[i].usage);
	fprintf(f, "exit: 0 ok, 1 error, 2 bad usage, 3 (wait) the task is dead\n");
}

static bool allowed(const struct command *cmd, int opt)
{
	if (opt == 's' || opt == 'j' || opt == 'h')
		return true;
	for (const int *a = cmd->allowed; *a; a++)
		if (*a == opt)
			return true;
	return false;
}

static const char *opt_name(int opt)
{
	for (const struct option *o = longopts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static int apply(struct cli *c, int opt, const char *arg)
{
	unsigned long long n;
	char name[32];

	snprintf(name, sizeof(name), "--%s", opt_name(opt));
#define NUM(lo, hi, dst) do { if (parse_num(c, name, arg, lo, hi, &n, 10) < 0) return -1; \
	dst = n; } while (0)
	switch (opt) {
	case 's': c->segment = arg; return 0;
	case 'j': c->json = true; return 0;
	case O_QUEUES: NUM(1, TQ_QUEUES_MAX, c->cfg.queues); return 0;
	case O_LEVELS: NUM(1, TQ_LEVELS_MAX, c->cfg.levels); return 0;
	case O_CAPACITY: NUM(64, TQ_CAPACITY_MAX, c->cfg.capacity); return 0;
	case O_MAXPAYLOAD: NUM(1, TQ_PAYLOAD_MAX, c->cfg.max_payload); return 0;
	case O_PROCS: NUM(8, 4096, c->cfg.procs); return 0;
	case O_ARENA: NUM(0, 1ull << 44, c->cfg.arena_bytes); return 0;
	case O_MODE:
		if (parse_num(c, name, arg, 0, 0777, &n, 8) < 0)
			return -1;
		c->cfg.mode = (uint32_t)n;
		return 0;
	case 'q':
		if (c->nqueues == TQ_CLI_MAX_QUEUES) {
			fprintf(stderr, "tq: %s: too many --queue options\n", c->cmd);
			return -1;
		}
		c->queues[c->nqueues++] = arg;
		return 0;
	case 'l': NUM(0, TQ_LEVELS_MAX - 1, c->level); return 0;
	case O_DELAY: NUM(0, 10ull * 365 * 86400 * 1000, c->delay_ms); return 0;
	case O_ATTEMPTS: NUM(1, TQ_ATTEMPTS_MAX, c->attempts); return 0;
	case O_TYPE: NUM(0, TQ_TYPE_MAX, c->type); return 0;
	case O_LEASE: NUM(1, UINT32_MAX, c->lease_ms); return 0;
	case O_TIMEOUT: NUM(0, INT32_MAX, c->timeout_ms); return 0;
	case 'd': c->data = arg; return 0;
	case 'f': c->file = arg; return 0;
	case 'n': NUM(1, 100000000, c->count); return 0;
	case O_STATE: c->state = arg; return 0;
	case O_LIMIT: NUM(1, 100000000, c->limit); return 0;
	case O_CURSOR: NUM(0, UINT64_MAX, c->cursor); return 0;
	case 'e': c->exec = arg; return 0;
	case 'c': NUM(1, 256, c->concurrency); return 0;
	case O_MAXTASKS: NUM(1, UINT64_MAX, c->max_tasks); c->max_tasks_set = true; return 0;
	case O_IDLE: NUM(1, 86400000ull, c->idle_exit_ms); c->idle_set = true; return 0;
	case O_GRACE: NUM(0, 86400000ull, c->grace_ms); return 0;
	case O_PROMETHEUS: stats_prometheus = true; return 0;
	default: return -1;
	}
#undef NUM
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct cli c;
	const char *env = getenv("TQ_SEGMENT");
	int opt, r;

	memset(&c, 0, sizeof(c));
	tq_config_init(&c.cfg);
	c.cmd = "tq";
	c.segment = env && *env ? env : TQ_CLI_DEFAULT_SEGMENT;
	c.level = -1;
	c.timeout_ms = -1;
	c.count = 1;
	c.limit = 100;
	c.concurrency = 1;
	c.grace_ms = 10000;

	/* Options before the command: --segment, --json, --help. */
	while ((opt = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 's' || opt == 'j') {
			apply(&c, opt, optarg);
			continue;
		}
		if (opt != '?')
			fprintf(stderr, "tq: --%s goes after the command\n", opt_name(opt));
		usage(stderr);
		return 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "tq: no command given\n");
		usage(stderr);
		return 2;
	}
	for (unsigned i = 0; i < NCOMMANDS; i++)
		if (!strcmp(argv[optind], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "tq: unknown command '%s' (tq --help lists them)\n", argv[optind]);
		return 2;
	}
	c.cmd = cmd->name;
	argc -= optind;
	argv += optind;
	optind = 0;      /* re-initialise getopt for the command's own options */
	while ((opt = getopt_long(argc, argv, "s:jhq:l:d:f:n:e:c:", longopts, NULL)) != -1) {
		if (opt == 'h') {
			fputs("usage: ", stdout);
			fputs(cmd->usage, stdout);
			printf("  --segment NAME (default $TQ_SEGMENT, else %s), --json, --help\n",
			       TQ_CLI_DEFAULT_SEGMENT);
			return 0;
		}
		if (opt == '?') {
			fprintf(stderr, "usage: %s", cmd->usage);
			return 2;
		}
		if (!allowed(cmd, opt)) {
			fprintf(stderr, "tq: %s: --%s does not apply to this command\n", cmd->name,
				opt_name(opt));
			return 2;
		}
		if (apply(&c, opt, optarg) < 0)
			return 2;
	}
	c.args = argv + optind;
	c.nargs = argc - optind;
	if (c.nargs < cmd->min_args || (cmd->max_args >= 0 && c.nargs > cmd->max_args)) {
		if (c.nargs < cmd->min_args)
			fprintf(stderr, "tq: %s: missing argument\n", cmd->name);
		else
			fprintf(stderr, "tq: %s: unexpected argument '%s'\n", cmd->name,
				c.args[cmd->max_args]);
		fprintf(stderr, "usage: %s", cmd->usage);
		return 2;
	}
	r = cmd->run(&c);
	if (fflush(stdout) != 0 && r == 0) {
		fprintf(stderr, "tq: %s: writing output: %s\n", cmd->name, strerror(errno));
		r = 1;
	}
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * tq-schedule.c - `tq schedule add|list|remove`: periodic tasks, fired by
 * the segment's supervisor (tqd) once per tick.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tq-cli.h"

static void print_time(uint64_t ns)
{
	time_t s = (time_t)(ns / 1000000000ull);
	struct tm tm;
	char buf[32];

	if (!ns) {
		printf("%-20s", "-");
		return;
	}
	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%-20s", buf);
}

static int sched_add(struct cli *c, tq *t)
{
	struct tq_schedule s;
	static char payload[TQ_SCHEDULE_PAYLOAD_MAX + 1];
	int q, e;

	if (c->nargs != 3) {
		fprintf(stderr, "tq: schedule add: give NAME and SPEC (quote the spec)\n");
		return 2;
	}
	memset(&s, 0, sizeof(s));
	if (strlen(c->args[1]) > TQ_QUEUE_NAME_MAX || strlen(c->args[2]) > TQ_SCHEDULE_SPEC_MAX) {
		fprintf(stderr, "tq: schedule add: name (max %d bytes) or spec (max %d) too long\n",
			TQ_QUEUE_NAME_MAX, TQ_SCHEDULE_SPEC_MAX);
		return 2;
	}
	memcpy(s.name, c->args[1], strlen(c->args[1]));
	memcpy(s.spec, c->args[2], strlen(c->args[2]));
	q = tq_queue_declare(t, c->nqueues ? c->queues[0] : "default", NULL);
	if (q < 0)
		return cli_fail(c, t, q);
	s.queue = q;
	s.level = c->level >= 0 ? (uint32_t)c->level : 0;
	s.type = (uint32_t)c->type;
	s.max_attempts = (uint32_t)c->attempts;
	if (c->data) {
		s.len = (uint32_t)strlen(c->data);
		if (s.len > TQ_SCHEDULE_PAYLOAD_MAX) {
			fprintf(stderr, "tq: schedule add: payload over %d bytes\n",
				TQ_SCHEDULE_PAYLOAD_MAX);
			return 2;
		}
		s.payload = c->data;
	} else if (c->file) {
		int fd = strcmp(c->file, "-") ? open(c->file, O_RDONLY | O_CLOEXEC) : 0;
		ssize_t n;

		if (fd < 0) {
			fprintf(stderr, "tq: schedule add: %s: %s\n", c->file, strerror(errno));
			return 1;
		}
		n = read(fd, payload, sizeof(payload));
		if (fd)
			close(fd);
		if (n < 0 || n > TQ_SCHEDULE_PAYLOAD_MAX) {
			fprintf(stderr, "tq: schedule add: %s: %s\n", c->file,
				n < 0 ? strerror(errno) : "payload over 1024 bytes");
			return n < 0 ? 1 : 2;
		}
		s.payload = payload;
		s.len = (uint32_t)n;
	}
	e = tq_schedule_set(t, &s);
	if (e < 0)
		return cli_fail(c, t, e);
	return 0;
}

static int sched_list(struct cli *c, tq *t)
{
	struct tq_schedule_info info[TQ_SCHEDULES_MAX];
	char qname[TQ_QUEUE_NAME_MAX + 1];
	int n = tq_schedule_list(t, info, TQ_SCHEDULES_MAX);

	if (n < 0)
		return cli_fail(c, t, n);
	if (c->json)
		printf("[");
	else
		printf("%-24s %-24s %-16s %5s %-20s %-20s %8s\n", "name", "spec", "queue", "level",
		       "next", "last", "fired");
	for (int i = 0; i < n; i++) {
		if (tq_queue_name(t, (int)info[i].queue, qname, sizeof(qname)) < 0)
			snprintf(qname, sizeof(qname), "#%u", info[i].queue);
		if (c->json) {
			printf("%s{\"name\":\"%s\",\"spec\":\"%s\",\"queue\":\"%s\",\"level\":%u,"
			       "\"type\":%u,\"next_ns\":%" PRIu64 ",\"last_tick_ns\":%" PRIu64
			       ",\"last_task\":%" PRIu64 ",\"fired\":%" PRIu64 "}",
			       i ? "," : "", info[i].name, info[i].spec, qname, info[i].level,
			       info[i].type, info[i].next_ns, info[i].last_tick_ns, info[i].last_task,
			       info[i].fired);
			continue;
		}
		printf("%-24s %-24s %-16s %5u ", info[i].name, info[i].spec, qname, info[i].level);
		print_time(info[i].next_ns);
		printf(" ");
		print_time(info[i].last_tick_ns);
		printf(" %8" PRIu64 "\n", info[i].fired);
	}
	if (c->json)
		printf("]\n");
	return 0;
}

int cmd_schedule(struct cli *c)
{
	tq *t;
	int e;

	if (c->nargs < 1 || (strcmp(c->args[0], "add") && strcmp(c->args[0], "list") &&
			     strcmp(c->args[0], "remove"))) {
		fprintf(stderr, "tq: schedule: say add, list or remove\n");
		return 2;
	}
	if (!strcmp(c->args[0], "remove") && c->nargs != 2) {
		fprintf(stderr, "tq: schedule remove: give the NAME\n");
		return 2;
	}
	if (!strcmp(c->args[0], "list") && c->nargs != 1) {
		fprintf(stderr, "tq: schedule list: takes no arguments\n");
		return 2;
	}
	if (cli_attach(c, &t))
		return 1;
	if (!strcmp(c->args[0], "add"))
		e = sched_add(c, t);
	else if (!strcmp(c->args[0], "list"))
		e = sched_list(c, t);
	else {
		e = tq_schedule_remove(t, c->args[1]);
		e = e < 0 ? cli_fail(c, t, e) : 0;
	}
	tq_detach(t);
	return e;
}

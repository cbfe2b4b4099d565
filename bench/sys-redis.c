/* SPDX-License-Identifier: MIT */
/*
 * sys-redis.c - tq-bench's system "redis": the workload on a redis-server
 * the harness starts for each run (127.0.0.1, a port and a directory of
 * its own, no persistence: --save "" --appendonly no), driven through
 * hiredis, one connection per process, one command per task:
 *   one level:   LPUSH key payload / BRPOP key 0.1     (a list as a FIFO)
 *   --levels L:  ZADD key score payload / BZPOPMIN key 0.1, score =
 *                level * 1e12 + sequence: the most urgent level first,
 *                FIFO within a level (the priority form)
 * BRPOP/BZPOPMIN take tasks away for good: there is no lease, so this is
 * at-most-once delivery, cheaper than what tq does.
 *
 * Built only where hiredis is found; otherwise, or when redis-server is
 * not on $PATH, every row is "unsupported" with a note saying which.
 */
#include "bench.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef BENCH_HAVE_HIREDIS
#include <hiredis/hiredis.h>

#define REDIS_KEY "tq-bench"
#define REDIS_ZKEY "tq-bench-z"
#define REDIS_IO_TIMEOUT_S 30

struct redis_priv {
	struct bench_server srv;
	char path[256];
};

static void redis_version(char *buf, size_t size)
{
	static char v[96];
	char path[256], cmd[300];

	if (!v[0]) {
		if (bench_find_program("redis-server", path, sizeof(path)) == 0) {
			char out[200], *p;

			snprintf(cmd, sizeof(cmd), "%s --version 2>/dev/null", path);
			bench_program_output(cmd, out, sizeof(out));
			p = strstr(out, "v=");
			snprintf(v, sizeof(v), "redis %.*s, hiredis %d.%d.%d",
				 p ? (int)strcspn(p + 2, " ") : 1, p ? p + 2 : "?",
				 HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
		} else {
			snprintf(v, sizeof(v), "redis-server not found, hiredis %d.%d.%d",
				 HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
		}
	}
	snprintf(buf, size, "%s", v);
}

static redisContext *redis_connect(int port, char *err, size_t errsize)
{
	struct timeval tv = { REDIS_IO_TIMEOUT_S, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

	if (!c || c->err) {
		snprintf(err, errsize, "connect 127.0.0.1:%d: %s", port, c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

static inline double redis_score(const struct run *r, uint64_t seq)
{
	return (double)bench_level(r->levels, seq) * 1e12 + (double)(seq & ~BENCH_PREFILL);
}

static int redis_append(redisContext *c, const struct run *r, const unsigned char *buf, uint64_t seq)
{
	if (r->levels > 1)
		return redisAppendCommand(c, "ZADD " REDIS_ZKEY " %.0f %b", redis_score(r, seq), buf,
					  (size_t)r->payload);
	return redisAppendCommand(c, "LPUSH " REDIS_KEY " %b", buf, (size_t)r->payload);
}

static int redis_setup(struct run *r)
{
	struct redis_priv *p = calloc(1, sizeof(*p));
	char port[16], *argv[20];
	unsigned char *buf;
	redisContext *c;
	int rc, a = 0;

	if (!p)
		return -ENOMEM;
	r->priv = p;
	if (bench_find_program("redis-server", p->path, sizeof(p->path)) != 0) {
		snprintf(r->note, sizeof(r->note), "skipped: redis-server not found on $PATH");
		return BENCH_UNSUPPORTED;
	}
	if ((rc = bench_server_prepare(&p->srv)) < 0) {
		snprintf(r->note, sizeof(r->note), "server directory or port: %s", strerror(-rc));
		return rc;
	}
	snprintf(port, sizeof(port), "%d", p->srv.port);
	argv[a++] = p->path;
	argv[a++] = "--port"; argv[a++] = port;
	argv[a++] = "--bind"; argv[a++] = "127.0.0.1";
	argv[a++] = "--dir"; argv[a++] = p->srv.dir;
	argv[a++] = "--save"; argv[a++] = "";
	argv[a++] = "--appendonly"; argv[a++] = "no";
	argv[a++] = "--daemonize"; argv[a++] = "no";
	argv[a++] = "--protected-mode"; argv[a++] = "yes";
	argv[a++] = "--proto-max-bulk-len"; argv[a++] = "1gb";
	argv[a] = NULL;
	if ((rc = bench_server_spawn(r, &p->srv, argv)) < 0)
		return rc;
	r->server_pid = p->srv.pid;
	if (r->queues > 1)
		snprintf(r->note, sizeof(r->note), "one key (--queues ignored)");
	if (r->batch > 1) {
		size_t n = strlen(r->note);
		snprintf(r->note + n, sizeof(r->note) - n, "%sno batch calls", n ? "; " : "");
	}
	if (!r->prefill)
		return 0;
	if (!(c = redis_connect(p->srv.port, r->note, sizeof(r->note))))
		return -ECONNREFUSED;
	if (!(buf = malloc(r->payload))) {
		redisFree(c);
		return -ENOMEM;
	}
	rc = 0;
	for (uint64_t j = 0; j < r->prefill && !rc;) {
		uint64_t k, n = r->prefill - j < 1000 ? r->prefill - j : 1000;

		for (k = 0; k < n; k++) {
			bench_fill_prefill(r, buf, j + k);
			redis_append(c, r, buf, j + k);
		}
		for (k = 0; k < n; k++) {
			redisReply *rep = NULL;

			if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep ||
			    rep->type == REDIS_REPLY_ERROR) {
				snprintf(r->note, sizeof(r->note), "prefill: %s",
					 rep ? rep->str : c->errstr);
				rc = -EIO;
			}
			freeReplyObject(rep);
			if (rc)
				break;
		}
		j += n;
	}
	free(buf);
	redisFree(c);
	return rc;
}

static int redis_producer(struct run *r, unsigned idx)
{
	struct redis_priv *p = r->priv;
	char err[256];
	struct pctx c;
	redisContext *rc;
	int ex;

	if (!(rc = redis_connect(p->srv.port, err, sizeof(err))))
		return bench_fail(r, "%s", err);
	if ((ex = bench_producer_init(&c, r, idx)) != 0)
		goto out_free;
	if ((ex = bench_ready(r)) != 0)
		goto out;
	r->prod[idx].start_ns = bench_now();
	for (uint64_t i = 0; i < c.n; i++) {
		uint64_t seq = c.base + i;
		redisReply *rep;

		bench_fill(r, c.buf, seq);
		int smp = bench_sampled(&c);
		if (r->paced)
			bench_wait_until(r, bench_send_time(r, idx, i));
		bench_stamp(c.buf, smp);
		if (r->levels > 1)
			rep = redisCommand(rc, "ZADD " REDIS_ZKEY " %.0f %b", redis_score(r, seq), c.buf,
					   (size_t)r->payload);
		else
			rep = redisCommand(rc, "LPUSH " REDIS_KEY " %b", c.buf, (size_t)r->payload);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			ex = bench_fail(r, "redis %s: %s", r->levels > 1 ? "ZADD" : "LPUSH",
					rep ? rep->str : rc->errstr);
			freeReplyObject(rep);
			goto out;
		}
		freeReplyObject(rep);
		if ((i & 1023) == 1023 && (ex = bench_check(r)) != 0)
			goto out;
	}
	bench_producer_done(&c);
	ex = CHILD_OK;
out:
	free(c.buf);
out_free:
	redisFree(rc);
	return ex;
}

static int redis_worker(struct run *r, unsigned idx)
{
	struct redis_priv *p = r->priv;
	const int z = r->levels > 1;
	char err[256];
	struct wctx c;
	redisContext *rc;
	int ex;

	if (!(rc = redis_connect(p->srv.port, err, sizeof(err))))
		return bench_fail(r, "%s", err);
	bench_worker_init(&c, r, idx, bench_share(r->total, r->workers, idx));
	if ((ex = bench_ready(r)) != 0)
		goto out;
	while (c.done < c.quota) {
		redisReply *rep = z ? redisCommand(rc, "BZPOPMIN " REDIS_ZKEY " 0.1")
				    : redisCommand(rc, "BRPOP " REDIS_KEY " 0.1");

		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			ex = bench_fail(r, "redis %s: %s", z ? "BZPOPMIN" : "BRPOP",
					rep ? rep->str : rc->errstr);
			freeReplyObject(rep);
			goto out;
		}
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
		    rep->element[1]->type == REDIS_REPLY_STRING) {
			bench_leased(&c, 1);
			bench_handle(&c, rep->element[1]->str, (uint32_t)rep->element[1]->len);
		} else if ((ex = bench_check(r)) != 0) {
			freeReplyObject(rep);
			goto out;
		}
		freeReplyObject(rep);
	}
	bench_worker_done(&c);
	ex = CHILD_OK;
out:
	redisFree(rc);
	return ex;
}

static long redis_drain(struct run *r)
{
	struct redis_priv *p = r->priv;
	const int z = r->levels > 1;
	redisContext *c;
	long n = 0;

	if (!p || !(c = redis_connect(p->srv.port, r->note, sizeof(r->note))))
		return -ECONNREFUSED;
	for (;;) {
		redisReply *rep = z ? redisCommand(c, "ZPOPMIN " REDIS_ZKEY)
				    : redisCommand(c, "RPOP " REDIS_KEY);
		const redisReply *v = NULL;

		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			snprintf(r->note, sizeof(r->note), "drain: %s", rep ? rep->str : c->errstr);
			freeReplyObject(rep);
			redisFree(c);
			return -EIO;
		}
		if (rep->type == REDIS_REPLY_STRING)
			v = rep;
		else if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1)
			v = rep->element[0];
		if (!v || v->len < 8) {
			freeReplyObject(rep);
			break;
		}
		uint64_t seq;
		memcpy(&seq, v->str, sizeof(seq));
		if (r->seen && seq < r->total && r->seen[seq] < 255)
			r->seen[seq]++;
		n++;
		freeReplyObject(rep);
	}
	redisFree(c);
	return n;
}

static void redis_teardown(struct run *r)
{
	struct redis_priv *p = r->priv;

	if (!p)
		return;
	bench_server_stop(&p->srv);
	free(p);
	r->priv = NULL;
	r->server_pid = 0;
}

const struct bench_sys bench_sys_redis = {
	.name = "redis",
	.version = redis_version,
	.setup = redis_setup,
	.producer = redis_producer,
	.worker = redis_worker,
	.drain = redis_drain,
	.teardown = redis_teardown,
	.footprint = NULL,
};

#else /* !BENCH_HAVE_HIREDIS */

static void redis_version(char *buf, size_t size)
{
	snprintf(buf, size, "built without hiredis");
}

static int redis_setup(struct run *r)
{
	snprintf(r->note, sizeof(r->note),
		 "skipped: tq-bench was built without hiredis (install libhiredis-dev, reconfigure)");
	return BENCH_UNSUPPORTED;
}

static int redis_none(struct run *r, unsigned idx)
{
	(void)idx;
	return bench_fail(r, "redis: not built");
}

static void redis_teardown(struct run *r)
{
	(void)r;
}

const struct bench_sys bench_sys_redis = {
	.name = "redis",
	.version = redis_version,
	.setup = redis_setup,
	.producer = redis_none,
	.worker = redis_none,
	.drain = NULL,
	.teardown = redis_teardown,
	.footprint = NULL,
};
#endif

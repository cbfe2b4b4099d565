/* SPDX-License-Identifier: MIT */
/*
 * ops.c - tq-bench's "ops" scenario: the latency of each single operation
 * of tq's API (submit, lease, ack, fail, get by ID, change priority), timed
 * one call at a time in one process on a fresh segment, with no contention.
 * Each round: submit, get, set_level, lease, fail (requeued), lease again
 * (not timed), ack. One row per operation; tasks/s is 1 / mean.
 *
 * The other systems have no counterpart for most of these calls (get by ID,
 * change priority, fail with retry), so they give an "unsupported" row.
 */
#include "driver.h"

#include <stdlib.h>
#include <unistd.h>

#include <tq/tq.h>

enum { OP_SUBMIT, OP_GET, OP_SET_LEVEL, OP_LEASE, OP_FAIL, OP_ACK, OP_COUNT };
static const char *const op_name[OP_COUNT] = {
	"submit", "get", "set_level", "lease", "fail", "ack",
};

static void ops_row(const struct opts *o, const struct bench_sys *sys, struct result *res,
		    const char *status, const char *note)
{
	memset(res, 0, sizeof(*res));
	res->sys = sys;
	sys->version(res->version, sizeof(res->version));
	res->sc = SC_OPS;
	res->status = status;
	res->producers = res->workers = 1;
	res->payload = o->payload;
	res->batch = 1;
	res->queues = 1;
	res->levels = 2;
	add_note(res, note);
}

unsigned run_ops(const struct opts *o, const struct bench_sys *sys, struct result *res, unsigned max)
{
	struct tq_submit_opts so = { .timeout_ms = 0 };
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	struct tq_config cfg;
	struct tq_task task;
	struct tq_info info;
	struct hdr *h;
	unsigned char *buf;
	char name[96], err[256] = "";
	uint64_t n = o->ops_rounds ? o->ops_rounds : 1, t0, t1, id = 0;
	tq *t = NULL;
	int q, e = 0;

	if (max < OP_COUNT)
		return 0;
	if (sys != &bench_sys_tq) {
		ops_row(o, sys, &res[0], "unsupported",
			"ops times tq's own calls (get by ID, change priority, fail and retry have no counterpart here)");
		return 1;
	}
	h = calloc(OP_COUNT, sizeof(*h));
	buf = calloc(1, o->payload);
	if (!h || !buf) {
		free(h);
		free(buf);
		ops_row(o, sys, &res[0], "error", "out of memory");
		return 1;
	}
	memset(buf, 0x5a, o->payload);
	snprintf(name, sizeof(name), "/tq-bench-%d-ops", (int)getpid());
	tq_config_init(&cfg);
	cfg.levels = 2;
	if (o->payload > cfg.max_payload)
		cfg.max_payload = o->payload;
	if ((e = tq_create(name, &cfg, &t)) < 0) {
		snprintf(err, sizeof(err), "tq_create: %s (%s)", tq_strerror(e), tq_last_error(NULL));
		goto out;
	}
	tq_unlink(name);
	if ((q = tq_queue_declare(t, "ops", NULL)) < 0) {
		e = q;
		snprintf(err, sizeof(err), "tq_queue_declare: %s", tq_strerror(e));
		goto out;
	}
#define TIMED(op, call, what)                                                       \
	do {                                                                         \
		t0 = bench_now();                                                    \
		e = (call);                                                          \
		t1 = bench_now();                                                    \
		if (e < 0) {                                                         \
			snprintf(err, sizeof(err), "round %llu: %s: %s (%s)",         \
				 (unsigned long long)i, what, tq_strerror(e),          \
				 tq_last_error(t));                                    \
			goto out;                                                    \
		}                                                                    \
		hdr_record(&h[op], t1 - t0);                                         \
	} while (0)
	for (uint64_t i = 0; i < n && !g_stop; i++) {
		memcpy(buf, &i, sizeof(i));
		TIMED(OP_SUBMIT, tq_submit(t, q, buf, o->payload, &so, &id), "tq_submit");
		TIMED(OP_GET, tq_get(t, id, &info), "tq_get");
		TIMED(OP_SET_LEVEL, tq_set_level(t, id, 1), "tq_set_level");
		TIMED(OP_LEASE, tq_lease(t, &lo, &task, 1), "tq_lease");
		TIMED(OP_FAIL, tq_fail(t, task.id), "tq_fail");
		if ((e = tq_lease(t, &lo, &task, 1)) < 0) {
			snprintf(err, sizeof(err), "round %llu: second tq_lease: %s",
				 (unsigned long long)i, tq_strerror(e));
			goto out;
		}
		TIMED(OP_ACK, tq_ack(t, task.id, NULL, 0), "tq_ack");
	}
#undef TIMED
	e = 0;
out:
	tq_detach(t);
	if (e < 0 || g_stop) {
		ops_row(o, sys, &res[0], g_stop ? "interrupted" : "error", err);
		free(h);
		free(buf);
		return 1;
	}
	for (unsigned k = 0; k < OP_COUNT; k++) {
		struct result *x = &res[k];

		ops_row(o, sys, x, "ok", NULL);
		x->op = op_name[k];
		x->tasks = hdr_count(&h[k]);
		x->samples = hdr_count(&h[k]);
		x->p50 = (double)hdr_percentile(&h[k], 50) / 1e3;
		x->p90 = (double)hdr_percentile(&h[k], 90) / 1e3;
		x->p99 = (double)hdr_percentile(&h[k], 99) / 1e3;
		x->p999 = (double)hdr_percentile(&h[k], 99.9) / 1e3;
		x->max = (double)hdr_max(&h[k]) / 1e3;
		x->mean = hdr_mean(&h[k]) / 1e3;
		x->tasks_per_s = x->mean > 0 ? 1e6 / x->mean : 0;
	}
	free(h);
	free(buf);
	return OP_COUNT;
}

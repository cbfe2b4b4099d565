/* SPDX-License-Identifier: MIT */
/*
 * sys-tq.c - tq-bench's systems "tq" and "tq-spin": the workload on libtq
 * through its public API only. The parent creates the segment (tq_create)
 * and prefills it; every producer and worker process attaches by name
 * (tq_attach). One task per call unless --batch says otherwise.
 *
 * tq-spin is the same code with the workers' tq_lease_opts.spin_us set
 * (run.c picks the value: BENCH_TQ_SPIN_US, or --spin-us): a worker that
 * finds nothing polls that long before sleeping on the futex, so a task
 * that comes meanwhile starts without a wake-up.
 */
#include "bench.h"
#include "tqd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tq/tq.h>

/* How long one blocking call may wait before the loop looks at the abort
 * flag and the deadline again. */
#define TQ_WAIT_MS 100

struct tq_priv {
	tq *t;
	int q[TQ_QUEUES_MAX];
	/* Durable scenario: the temporary directory (journal/ and tqd.log in
	 * it) and the supervisor. */
	char dir[200];
	int sup_pid;
};

/* Supervisor interval, as tqd's default. */
#define TQ_SUP_MS 10

static void tq_version_str(char *buf, size_t size)
{
	snprintf(buf, size, "tq %s", TQ_VERSION);
}

static void tq_fill_config(const struct run *r, struct tq_config *cfg)
{
	uint64_t need, cap;

	tq_config_init(cfg);
	if (r->seg_levels)
		cfg->levels = r->seg_levels;
	if (r->payload > cfg->max_payload)
		cfg->max_payload = r->payload;
	if (r->capacity) {
		cfg->capacity = r->capacity;
	} else {
		/* Room for the prefill and a window of in-flight tasks. */
		need = r->prefill + 65536;
		for (cap = cfg->capacity; cap < need && cap < TQ_CAPACITY_MAX; cap <<= 1)
			;
		cfg->capacity = (uint32_t)cap;
	}
	if (cfg->procs < r->producers + r->workers + 8u)
		cfg->procs = r->producers + r->workers + 8u;
}

/* The durable scenario's supervisor when no tqd program is found: what
 * tqd's loop does (recover, tick, journal maintenance) every TQ_SUP_MS. */
static int tq_builtin_supervisor(struct run *r)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;
		tq *t = NULL;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_IGN);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (getppid() != parent || tq_attach(r->name, &t) < 0 ||
		    tq_supervisor_acquire(t, 1000) < 0)
			_exit(1);
		while (getppid() == parent) {
			struct timespec nap = { 0, TQ_SUP_MS * 1000000L };

			tq_recover(t, NULL);
			tq_tick(t);
			tq_journal_maintain(t);
			nanosleep(&nap, NULL);
		}
		_exit(0);
	}
	return pid;
}

/* Durable scenario: start the supervisor (tqd, else the built-in loop)
 * on the segment and wait until it holds the supervisor role. */
static int tq_start_supervisor(struct run *r, struct tq_priv *p, char *what, size_t size)
{
	char tqd[512], log[300], seg[120];

	snprintf(seg, sizeof(seg), "%s", r->name);
	snprintf(log, sizeof(log), "%s/tqd.log", p->dir);
	if (bench_tqd_find(r->tqd_opt, tqd, sizeof(tqd)) == 0) {
		char *argv[] = { tqd, "--segment", seg, "--interval-ms", "10", "--quiet",
				 "--sweep-s", "0", NULL };

		p->sup_pid = bench_tqd_spawn(argv, log);
		snprintf(what, size, "tqd every %d ms", TQ_SUP_MS);
	} else {
		p->sup_pid = tq_builtin_supervisor(r);
		snprintf(what, size, "tqd not found: built-in supervisor loop every %d ms", TQ_SUP_MS);
	}
	if (p->sup_pid < 0) {
		int e = p->sup_pid;

		p->sup_pid = 0;
		return e;
	}
	int e = bench_tqd_wait_active(p->t, p->sup_pid, 10000000000ull);
	if (e < 0) {
		if (e == -ESRCH)
			p->sup_pid = 0;
		snprintf(what, size, "the supervisor (log in %.200s) %s", p->dir,
			 e == -ESRCH ? "exited at start" : "did not take over within 10 s");
	}
	return e;
}

static int tq_queues(struct run *r, tq *t, int *q, int declare)
{
	char qn[32];

	for (unsigned i = 0; i < r->queues; i++) {
		snprintf(qn, sizeof(qn), "bench%u", i);
		q[i] = declare ? tq_queue_declare(t, qn, NULL) : tq_queue_find(t, qn);
		if (q[i] < 0) {
			snprintf(r->note, sizeof(r->note), "queue %s: %s", qn, tq_strerror(q[i]));
			return q[i];
		}
	}
	return 0;
}

/* Where task j (producer-local count) goes: spread over queues and levels. */
static inline void tq_route(const struct run *r, uint64_t j, unsigned *queue, unsigned *level)
{
	*level = bench_level(r->levels, j);
	*queue = r->queues > 1 ? (unsigned)((j / r->levels) % r->queues) : 0;
}

static int tq_prefill(struct run *r, tq *t, const int *q)
{
	struct tq_task_spec spec[TQ_BATCH_MAX];
	struct tq_submit_opts so = { .timeout_ms = 0 };
	unsigned char *buf = calloc(TQ_BATCH_MAX, r->payload);
	uint64_t done = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (done < r->prefill) {
		unsigned n = r->prefill - done < TQ_BATCH_MAX ? (unsigned)(r->prefill - done) : TQ_BATCH_MAX;
		unsigned queue, level, k;

		/* A batch goes to one queue: cut it where the route changes. */
		tq_route(r, done, &queue, &level);
		for (k = 0; k < n; k++) {
			unsigned qk, lk;
			unsigned char *b = buf + (size_t)k * r->payload;

			tq_route(r, done + k, &qk, &lk);
			if (qk != queue)
				break;
			bench_fill_prefill(r, b, done + k);
			spec[k] = (struct tq_task_spec){ .payload = b, .len = r->payload, .level = lk };
		}
		rc = tq_submit_batch(t, q[queue], spec, k, &so, NULL);
		if (rc <= 0) {
			snprintf(r->note, sizeof(r->note), "prefill: %s after %llu tasks (%s)",
				 tq_strerror(rc), (unsigned long long)done, tq_last_error(t));
			rc = rc < 0 ? rc : -EIO;
			break;
		}
		done += (unsigned)rc;
		rc = 0;
	}
	free(buf);
	return rc;
}

static int tq_setup(struct run *r)
{
	struct tq_priv *p = calloc(1, sizeof(*p));
	struct tq_config cfg;
	int rc;

	if (!p)
		return -ENOMEM;
	r->priv = p;
	if (r->queues > TQ_QUEUES_MAX || r->seg_levels > TQ_LEVELS_MAX) {
		snprintf(r->note, sizeof(r->note), "tq has at most %u queues and %u levels",
			 TQ_QUEUES_MAX, TQ_LEVELS_MAX);
		return BENCH_UNSUPPORTED;
	}
	tq_fill_config(r, &cfg);
	if (r->sc == SC_DURABLE) {
		const char *base = bench_journal_base(r->journal_base);

		if ((rc = bench_journal_mkdtemp(base, p->dir, sizeof(p->dir))) < 0) {
			snprintf(r->note, sizeof(r->note), "journal directory in %s: %s", base,
				 strerror(-rc));
			return rc;
		}
		if (r->durability != TQ_DURABILITY_NONE) {
			snprintf(cfg.journal_dir, sizeof(cfg.journal_dir), "%s/journal", p->dir);
			cfg.durability = r->durability;
			if (r->flush_ms)
				cfg.flush_ms = r->flush_ms;
		}
	}
	rc = tq_create(r->name, &cfg, &p->t);
	if (rc < 0) {
		snprintf(r->note, sizeof(r->note), "tq_create(%s): %s (%s)", r->name,
			 tq_strerror(rc), tq_last_error(NULL));
		return rc;
	}
	rc = tq_queues(r, p->t, p->q, 1);
	if (rc < 0)
		return rc;
	if (r->sc == SC_DURABLE) {
		char what[300], fs[32];

		if ((rc = tq_start_supervisor(r, p, what, sizeof(what))) < 0) {
			snprintf(r->note, sizeof(r->note), "%s", what);
			return rc;
		}
		bench_fs_type(p->dir, fs, sizeof(fs));
		if (r->durability == TQ_DURABILITY_NONE)
			snprintf(r->note, sizeof(r->note), "durability none (no journal); %s", what);
		else
			snprintf(r->note, sizeof(r->note), "durability %s, journal in %s (%s)%s; %s",
				 r->durability == TQ_DURABILITY_SYNC ? "sync" : "async",
				 bench_journal_base(r->journal_base), fs,
				 strcmp(fs, "tmpfs") ? "" : " (tmpfs: fsync costs nothing, not a disk figure)",
				 what);
	}
	return r->prefill ? tq_prefill(r, p->t, p->q) : 0;
}

static int tq_child_attach(struct run *r, tq **t, int *q)
{
	int rc = tq_attach(r->name, t);

	if (rc < 0)
		return bench_fail(r, "tq_attach(%s): %s (%s)", r->name, tq_strerror(rc),
				  tq_last_error(NULL));
	if (tq_queues(r, *t, q, 0) < 0)
		return bench_fail(r, "%s", r->note);
	return 0;
}

static int tq_producer(struct run *r, unsigned idx)
{
	struct tq_submit_opts so = { .timeout_ms = TQ_WAIT_MS };
	struct tq_task_spec spec[TQ_BATCH_MAX];
	int smp[TQ_BATCH_MAX];
	int q[TQ_QUEUES_MAX];
	struct pctx c;
	tq *t = NULL;
	int rc, ex;
	const int paced = r->paced;
	const int simple = r->queues == 1 && r->levels <= 1;
	struct hdr *ph = r->phist ? &r->phist[idx] : NULL;
	uint64_t t0 = 0;

	if ((ex = tq_child_attach(r, &t, q)) != 0)
		return ex;
	if ((ex = bench_producer_init(&c, r, idx)) != 0)
		return ex;
	if ((ex = bench_ready(r)) != 0)
		goto out;
	r->prod[idx].start_ns = bench_now();

	if (r->batch <= 1) {
		for (uint64_t i = 0; i < c.n; i++) {
			unsigned queue = 0, level = 0;

			if (!simple) {
				tq_route(r, c.base + i, &queue, &level);
				so.level = level;
			}
			bench_fill(r, c.buf, c.base + i);
			int s = bench_sampled(&c);
			if (paced)
				bench_wait_until(r, bench_send_time(r, idx, i));
			for (;;) {
				bench_stamp(c.buf, s);
				if (ph)
					t0 = bench_now();
				rc = tq_submit(t, q[queue], c.buf, r->payload, &so, NULL);
				if (rc == 0) {
					if (ph)
						hdr_record(ph, bench_now() - t0);
					break;
				}
				if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EINTR) {
					ex = bench_fail(r, "tq_submit: %s (%s)", tq_strerror(rc),
							tq_last_error(t));
					goto out;
				}
				if ((ex = bench_check(r)) != 0)
					goto out;
			}
		}
	} else {
		uint64_t i = 0;

		while (i < c.n) {
			unsigned n = 0, queue, level;

			tq_route(r, c.base + i, &queue, &level);
			while (n < r->batch && i + n < c.n) {
				unsigned qk, lk;

				tq_route(r, c.base + i + n, &qk, &lk);
				if (qk != queue)
					break;
				unsigned char *b = c.buf + (size_t)n * r->payload;
				bench_fill(r, b, c.base + i + n);
				smp[n] = bench_sampled(&c);
				spec[n] = (struct tq_task_spec){ .payload = b, .len = r->payload, .level = lk };
				n++;
			}
			if (paced)
				bench_wait_until(r, bench_send_time(r, idx, i));
			unsigned sent = 0;
			while (sent < n) {
				for (unsigned k = sent; k < n; k++)
					bench_stamp(c.buf + (size_t)k * r->payload, smp[k]);
				if (ph)
					t0 = bench_now();
				rc = tq_submit_batch(t, q[queue], spec + sent, n - sent, &so, NULL);
				if (rc > 0) {
					if (ph)
						hdr_record(ph, bench_now() - t0);
					sent += (unsigned)rc;
					continue;
				}
				if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EINTR) {
					ex = bench_fail(r, "tq_submit_batch: %s (%s)", tq_strerror(rc),
							tq_last_error(t));
					goto out;
				}
				if ((ex = bench_check(r)) != 0)
					goto out;
			}
			i += n;
		}
	}
	bench_producer_done(&c);
	ex = CHILD_OK;
out:
	free(c.buf);
	tq_detach(t);
	return ex;
}

static int tq_worker(struct run *r, unsigned idx)
{
	struct tq_task out[TQ_BATCH_MAX];
	struct tq_lease_opts lo = {
		.queues = NULL, .nqueues = 0, .policy = r->policy,
		.timeout_ms = TQ_WAIT_MS,
		/* libtq bounds the spin by timeout_ms: a longer spin_us still
		 * comes back every TQ_WAIT_MS to look at abort and deadline. */
		.spin_us = r->spin_us,
	};
	int q[TQ_QUEUES_MAX];
	struct wctx c;
	tq *t = NULL;
	int rc, ex;

	if ((ex = tq_child_attach(r, &t, q)) != 0)
		return ex;
	if (r->queues > 1) {
		lo.queues = q;
		lo.nqueues = r->queues;
	}
	bench_worker_init(&c, r, idx, bench_share(r->total, r->workers, idx));
	if ((ex = bench_ready(r)) != 0)
		goto out;

	while (c.done < c.quota) {
		uint64_t left = c.quota - c.done;
		unsigned max = r->batch <= 1 ? 1 : (left < r->batch ? (unsigned)left : r->batch);

		rc = tq_lease(t, &lo, out, max);
		if (rc > 1) {
			/* A batch: handled, then acked in one call. */
			uint64_t ids[TQ_BATCH_MAX];

			bench_leased(&c, (unsigned)rc);
			for (int k = 0; k < rc; k++) {
				bench_handle(&c, out[k].payload, out[k].len);
				ids[k] = out[k].id;
			}
			int a = tq_ack_batch(t, ids, (unsigned)rc, NULL);
			if (a != rc) {
				ex = bench_fail(r, "tq_ack_batch: %d of %d (%s)", a, rc,
						tq_last_error(t));
				goto out;
			}
			continue;
		}
		if (rc > 0) {
			bench_leased(&c, (unsigned)rc);
			for (int k = 0; k < rc; k++) {
				bench_handle(&c, out[k].payload, out[k].len);
				int a = tq_ack(t, out[k].id, NULL, 0);
				if (a != 0) {
					ex = bench_fail(r, "tq_ack(%llu): %s (%s)",
							(unsigned long long)out[k].id,
							tq_strerror(a), tq_last_error(t));
					goto out;
				}
			}
			continue;
		}
		if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EINTR) {
			ex = bench_fail(r, "tq_lease: %s (%s)", tq_strerror(rc), tq_last_error(t));
			goto out;
		}
		if ((ex = bench_check(r)) != 0)
			goto out;
	}
	bench_worker_done(&c);
	ex = CHILD_OK;
out:
	tq_detach(t);
	return ex;
}

static long tq_drain(struct run *r)
{
	struct tq_priv *p = r->priv;
	struct tq_task out[TQ_BATCH_MAX];
	struct tq_lease_opts lo = { .timeout_ms = 0, .policy = TQ_POLICY_STRICT };
	struct tq_stats st, sum = { 0 };
	long n = 0;
	int rc;

	if (!p || !p->t)
		return -EINVAL;
	while ((rc = tq_lease(p->t, &lo, out, TQ_BATCH_MAX)) > 0) {
		for (int k = 0; k < rc; k++) {
			uint64_t seq;

			memcpy(&seq, out[k].payload, sizeof(seq));
			if (r->seen && seq < r->total && r->seen[seq] < 255)
				r->seen[seq]++;
			tq_ack(p->t, out[k].id, NULL, 0);
		}
		n += rc;
	}
	if (rc != -EAGAIN) {
		snprintf(r->note, sizeof(r->note), "drain: tq_lease: %s", tq_strerror(rc));
		return rc;
	}
	/* The counters are exact now that everyone is quiet. */
	for (unsigned i = 0; i < r->queues; i++) {
		if ((rc = tq_stats(p->t, p->q[i], -1, &st)) < 0) {
			snprintf(r->note, sizeof(r->note), "tq_stats: %s", tq_strerror(rc));
			return rc;
		}
		sum.depth += st.depth;
		sum.leased_now += st.leased_now;
		sum.submitted += st.submitted;
		sum.acked += st.acked;
	}
	if (sum.depth || sum.leased_now || sum.submitted != r->total || sum.acked != r->total) {
		snprintf(r->note, sizeof(r->note),
			 "tq_stats after the race: depth %llu leased_now %llu submitted %llu acked %llu, expected 0 0 %llu %llu",
			 (unsigned long long)sum.depth, (unsigned long long)sum.leased_now,
			 (unsigned long long)sum.submitted, (unsigned long long)sum.acked,
			 (unsigned long long)r->total, (unsigned long long)r->total);
		return -EPROTO;
	}
	return n;
}

static void tq_teardown(struct run *r)
{
	struct tq_priv *p = r->priv;

	if (!p)
		return;
	if (p->t && r->sc == SC_DURABLE) {
		struct tq_journal_info ji;

		if (tq_journal_info(p->t, &ji) == 0 && ji.dir[0]) {
			r->jst.valid = 1;
			r->jst.records = ji.records;
			r->jst.bytes = ji.bytes;
			r->jst.flushes = ji.flushes;
			r->jst.checkpoints = ji.checkpoints;
			r->jst.files = ji.files;
			r->jst.errors = ji.errors;
		}
	}
	bench_tqd_stop(&p->sup_pid);
	tq_unlink(r->name);
	tq_detach(p->t);
	if (p->dir[0])
		bench_rm_tree(p->dir);
	free(p);
	r->priv = NULL;
}

static uint64_t shm_resident(const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
	if (stat(path, &st) != 0)
		return 0;
	return (uint64_t)st.st_blocks * 512u;
}

static int tq_footprint(struct run *r, uint64_t k, struct footprint *fp)
{
	char name[sizeof(r->name) + 8];
	struct tq_submit_opts so = { .timeout_ms = 0 };
	struct tq_segment_info si;
	struct tq_config cfg;
	unsigned char *buf;
	tq *t = NULL;
	uint64_t i;
	int q, rc;

	snprintf(name, sizeof(name), "%s-fp", r->name);
	tq_fill_config(r, &cfg);
	if (k > cfg.capacity)
		k = cfg.capacity;
	if (k > BENCH_FOOTPRINT_BYTES / r->payload)
		k = BENCH_FOOTPRINT_BYTES / r->payload;
	if ((rc = tq_create(name, &cfg, &t)) < 0)
		return rc;
	buf = calloc(1, r->payload);
	q = tq_queue_declare(t, "bench0", NULL);
	if (!buf || q < 0) {
		rc = buf ? q : -ENOMEM;
		goto out;
	}
	fp->empty = shm_resident(name);
	for (i = 0; i < k; i++) {
		memcpy(buf, &i, sizeof(i));
		if ((rc = tq_submit(t, q, buf, r->payload, &so, NULL)) < 0)
			break;
	}
	fp->k = i;
	fp->resident = shm_resident(name);
	if (tq_segment_info(t, &si) == 0)
		fp->size = si.segment_bytes;
	fp->valid = fp->k > 0 && fp->resident > 0;
	fp->method = "st_blocks of /dev/shm segment";
	rc = 0;
out:
	free(buf);
	tq_unlink(name);
	tq_detach(t);
	return rc;
}

const struct bench_sys bench_sys_tq = {
	.name = "tq",
	.version = tq_version_str,
	.setup = tq_setup,
	.producer = tq_producer,
	.worker = tq_worker,
	.drain = tq_drain,
	.teardown = tq_teardown,
	.footprint = tq_footprint,
};

/* Same functions: the only difference, the workers' spin_us, is in the
 * run (struct run.spin_us), so both rows measure the same code. */
const struct bench_sys bench_sys_tq_spin = {
	.name = "tq-spin",
	.version = tq_version_str,
	.setup = tq_setup,
	.producer = tq_producer,
	.worker = tq_worker,
	.drain = tq_drain,
	.teardown = tq_teardown,
	.footprint = tq_footprint,
};

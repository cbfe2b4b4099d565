/* SPDX-License-Identifier: MIT */
/*
 * durable.c - tq-bench's journal scenarios (issue 3) besides the durable
 * throughput runs themselves (those are ordinary runs of run.c, with the
 * journal set up by sys-tq.c):
 *
 *   recovery  N tasks pending (64 B, over 8 levels) in a journaled segment,
 *             flushed; the segment is removed (a "reboot"); then the time
 *             from starting `tqd --create --journal DIR` until tq_attach()
 *             succeeds and tq_stats() shows all N pending. Also with the
 *             journal's page cache dropped first (cold: fdatasync, then
 *             posix_fadvise DONTNEED, checked with mincore), and tq_create()
 *             called in this process instead of tqd (the replay alone).
 *   failover  tqd supervising a segment (its default 10 ms repair pass); a
 *             worker process leases a batch and is SIGKILLed (and reaped, as
 *             its parent would); the time from the kill until every task of
 *             the batch is PENDING again (tq_get polled every 50 us), over
 *             --kills repetitions, each at a random phase of tqd's interval.
 *
 * The durable scenario's summary (async/none, sync against the goal and
 * against beanstalkd with its binlog) is here too.
 */
#include "driver.h"
#include "tqd.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tq/tq.h>

#define REC_LEVELS 8
#define REC_QUEUE "recovery"
#define READY_BOUND_NS 120000000000ull   /* a replay that takes longer is a failure */

const char *durability_name(unsigned d)
{
	return d == TQ_DURABILITY_SYNC ? "sync" : d == TQ_DURABILITY_NONE ? "none" : "async";
}

static void row(const struct opts *o, const struct bench_sys *sys, struct result *res,
		enum scenario sc, const char *status, const char *note)
{
	memset(res, 0, sizeof(*res));
	res->sys = sys;
	sys->version(res->version, sizeof(res->version));
	res->sc = sc;
	res->status = status;
	res->producers = res->workers = 1;
	res->payload = o->payload;
	res->batch = 1;
	res->queues = 1;
	res->levels = sc == SC_RECOVERY ? REC_LEVELS : 1;
	add_note(res, note);
}

static void nap_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	nanosleep(&ts, NULL);
}

/* ---- durable: the summary line ----------------------------------------- */

static const struct result *dfind(const struct result *rs, size_t n, const char *sys, int dur)
{
	for (size_t i = 0; i < n; i++)
		if (rs[i].sc == SC_DURABLE && !strcmp(rs[i].sys->name, sys) &&
		    !strcmp(rs[i].status, "ok") && (dur < 0 || (int)rs[i].durability == dur))
			return &rs[i];
	return NULL;
}

void durable_summary(FILE *f, const struct result *rs, size_t n, int md)
{
	const struct result *no = dfind(rs, n, "tq", TQ_DURABILITY_NONE);
	const struct result *as = dfind(rs, n, "tq", TQ_DURABILITY_ASYNC);
	const struct result *sy = dfind(rs, n, "tq", TQ_DURABILITY_SYNC);
	const struct result *f0 = dfind(rs, n, "beanstalkd-f0", -1);
	const struct result *bl = dfind(rs, n, "beanstalkd-binlog", -1);
	const char *li = md ? "- " : "  ";

	if (no && as && no->tasks_per_s > 0)
		fprintf(f, "%sdurable, %u producer%s, batch %u: async %.0f tasks/s / none %.0f = %.2f "
			"(goal >= 0.6: %s)\n", li, as->producers, as->producers == 1 ? "" : "s", as->batch,
			as->tasks_per_s, no->tasks_per_s, as->tasks_per_s / no->tasks_per_s,
			as->tasks_per_s >= 0.6 * no->tasks_per_s ? "met" : "NOT met");
	if (sy) {
		fprintf(f, "%sdurable, sync, %u producer%s, batch %u: %.0f durable tasks/s (submitted), "
			"%.0f end-to-end, %" PRIu64 " flushes = %.0f tasks/flush",
			li, sy->producers, sy->producers == 1 ? "" : "s", sy->batch, sy->submit_per_s,
			sy->tasks_per_s, sy->jst.flushes,
			sy->jst.flushes ? (double)(sy->tasks + sy->warmup) / (double)sy->jst.flushes : 0);
		if (sy->batch == 64)
			fprintf(f, " (goal >= 100,000 with batches of 64: %s)",
				sy->submit_per_s >= 100000 ? "met" : "NOT met");
		fputc('\n', f);
	}
	if (sy && (f0 || bl)) {
		fprintf(f, "%stq sync (batch %u, %u producer%s, %.0f/s)", li, sy->batch, sy->producers,
			sy->producers == 1 ? "" : "s", sy->submit_per_s);
		if (f0 && f0->submit_per_s > 0)
			fprintf(f, " / beanstalkd-f0 (fsync after every put, %.0f/s) x%.1f", f0->submit_per_s,
				sy->submit_per_s / f0->submit_per_s);
		if (bl && bl->submit_per_s > 0)
			fprintf(f, "%s / beanstalkd-binlog (default fsync policy, %.0f/s) x%.1f",
				f0 ? ";" : "", bl->submit_per_s, sy->submit_per_s / bl->submit_per_s);
		fputc('\n', f);
	}
	fflush(f);
}

/* ---- recovery ------------------------------------------------------------ */

struct rec_ctx {
	const struct opts *o;
	char name[96];
	char dir[200];           /* the temporary directory */
	char jdir[220];          /* dir/journal */
	char tqd[400];
	int have_tqd;
	uint64_t n;
	struct tq_config cfg;
	uint64_t jbytes, jfiles;
	int tqd_pid;
	unsigned runs;
};

/* Fill the journaled segment with n tasks, flush, detach, remove it. */
static int rec_fill(struct rec_ctx *c, char *err, size_t errsize)
{
	struct tq_submit_opts so = { .timeout_ms = 0 };
	struct tq_task_spec spec[TQ_BATCH_MAX];
	struct tq_journal_info ji;
	uint32_t pl = c->o->payload;
	unsigned char *buf = calloc(TQ_BATCH_MAX, pl);
	tq *t = NULL;
	uint64_t done = 0;
	int q, e;

	if (!buf) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	if ((e = tq_create(c->name, &c->cfg, &t)) < 0) {
		snprintf(err, errsize, "tq_create(%s): %s (%s)", c->name, tq_strerror(e),
			 tq_last_error(NULL));
		free(buf);
		return e;
	}
	if ((q = tq_queue_declare(t, REC_QUEUE, NULL)) < 0) {
		e = q;
		snprintf(err, errsize, "tq_queue_declare: %s", tq_strerror(e));
		goto out;
	}
	while (done < c->n && !g_stop) {
		unsigned k = c->n - done < TQ_BATCH_MAX ? (unsigned)(c->n - done) : TQ_BATCH_MAX;

		for (unsigned i = 0; i < k; i++) {
			unsigned char *b = buf + (size_t)i * pl;
			uint64_t seq = done + i;

			memset(b, 0x5a, pl);
			memcpy(b, &seq, sizeof(seq));
			spec[i] = (struct tq_task_spec){ .payload = b, .len = pl,
							 .level = (unsigned)(seq % REC_LEVELS) };
		}
		e = tq_submit_batch(t, q, spec, k, &so, NULL);
		if (e <= 0) {
			snprintf(err, errsize, "fill: tq_submit_batch after %" PRIu64 " tasks: %s (%s)",
				 done, tq_strerror(e), tq_last_error(t));
			e = e < 0 ? e : -EIO;
			goto out;
		}
		done += (unsigned)e;
	}
	if ((e = tq_journal_flush(t)) < 0) {
		snprintf(err, errsize, "tq_journal_flush: %s (%s)", tq_strerror(e), tq_last_error(t));
		goto out;
	}
	if (tq_journal_info(t, &ji) == 0) {
		c->jbytes = ji.bytes;
		c->jfiles = ji.files;
	}
	e = g_stop ? -EINTR : 0;
out:
	tq_detach(t);
	tq_unlink(c->name);
	free(buf);
	return e;
}

/* Poll until the segment can be attached and shows all n tasks pending;
 * *t the handle. 0, or a negative errno with err. start: monotonic ns. */
static int rec_wait_ready(struct rec_ctx *c, uint64_t start, tq **tp, char *err, size_t errsize)
{
	uint64_t until = start + READY_BOUND_NS;
	struct tq_stats st = { 0 };
	tq *t = NULL;
	int e, q = -1;

	for (;;) {
		e = tq_attach(c->name, &t);
		if (e == 0)
			break;
		if (e != -ENOENT && e != -EPROTO && e != -EAGAIN && e != -EBUSY) {
			snprintf(err, errsize, "tq_attach: %s (%s)", tq_strerror(e), tq_last_error(NULL));
			return e;
		}
		if (c->tqd_pid > 0 && waitpid(c->tqd_pid, NULL, WNOHANG) == c->tqd_pid) {
			c->tqd_pid = 0;
			snprintf(err, errsize, "tqd exited before the segment was ready");
			return -ECHILD;
		}
		if (bench_now() > until || g_stop) {
			snprintf(err, errsize, "segment not attachable within %llu s (last: %s)",
				 READY_BOUND_NS / 1000000000ull, tq_strerror(e));
			return -ETIMEDOUT;
		}
		nap_ns(100000);
	}
	for (;;) {
		if (q < 0)
			q = tq_queue_find(t, REC_QUEUE);
		if (q >= 0 && tq_stats(t, q, -1, &st) == 0 && st.depth == c->n)
			break;
		if (bench_now() > until || g_stop) {
			snprintf(err, errsize, "%" PRIu64 " of %" PRIu64 " tasks pending after %llu s",
				 q >= 0 ? st.depth : 0, c->n, READY_BOUND_NS / 1000000000ull);
			tq_detach(t);
			return -ETIMEDOUT;
		}
		nap_ns(100000);
	}
	*tp = t;
	return 0;
}

/* "journal replayed: ... in X ms" from tqd's log; -1 if absent. */
static double tqd_logged_ms(const char *log)
{
	char line[512];
	double v = -1;
	FILE *f = fopen(log, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "journal replayed:"), *in;

		if (p && (in = strstr(p, " in ")))
			v = strtod(in + 4, NULL);
	}
	fclose(f);
	return v;
}

/* One measurement: via tqd or tq_create, warm or cold. */
static void rec_measure(struct rec_ctx *c, struct result *res, int via_tqd, int cold)
{
	char err[600] = "", note[900], log[400], seg[120], jdir[300];
	struct tq_journal_info ji;
	uint64_t total = 0, resident = 0, t0, t1;
	double logged = -1;
	tq *t = NULL;
	int e;

	row(c->o, &bench_sys_tq, res, SC_RECOVERY, "ok", NULL);
	res->op = via_tqd ? (cold ? "tqd, cold cache" : "tqd, warm cache")
			  : (cold ? "tq_create, cold cache" : "tq_create, warm cache");
	res->tasks = c->n;
	res->batch = TQ_BATCH_MAX;
	if (via_tqd && !c->have_tqd) {
		res->status = "unsupported";
		add_note(res, "tqd not found (--tqd PATH, $TQ_BENCH_TQD, ../tools/tqd, $PATH)");
		return;
	}
	if (cold)
		resident = bench_drop_cache(c->jdir, &total);
	snprintf(log, sizeof(log), "%s/tqd-%u.log", c->dir, c->runs++);
	snprintf(seg, sizeof(seg), "%s", c->name);
	snprintf(jdir, sizeof(jdir), "%s", c->jdir);
	t0 = bench_now();
	if (via_tqd) {
		char *argv[] = { c->tqd, "--segment", seg, "--create", "--journal", jdir,
				 "--quiet", "--sweep-s", "0", NULL };

		c->tqd_pid = bench_tqd_spawn(argv, log);
		if (c->tqd_pid < 0) {
			snprintf(err, sizeof(err), "starting %s: %s", c->tqd, strerror(-c->tqd_pid));
			c->tqd_pid = 0;
			e = -1;
		} else {
			e = rec_wait_ready(c, t0, &t, err, sizeof(err));
		}
	} else {
		struct tq_config cfg = c->cfg;
		struct tq_stats st = { 0 };
		int q;

		e = tq_create(c->name, &cfg, &t);
		if (e == 0 && ((q = tq_queue_find(t, REC_QUEUE)) < 0 || tq_stats(t, q, -1, &st) < 0 ||
			       st.depth != c->n)) {
			snprintf(err, sizeof(err), "after tq_create: queue %s has %" PRIu64 " of %" PRIu64
				 " tasks pending", REC_QUEUE, q >= 0 ? st.depth : 0, c->n);
			e = -EPROTO;
		} else if (e < 0) {
			snprintf(err, sizeof(err), "tq_create: %s (%s)", tq_strerror(e), tq_last_error(NULL));
		}
	}
	t1 = bench_now();
	if (e == 0 && tq_journal_info(t, &ji) < 0)
		memset(&ji, 0, sizeof(ji));
	if (via_tqd) {
		bench_tqd_stop(&c->tqd_pid);
		logged = tqd_logged_ms(log);
	}
	tq_detach(t);
	tq_unlink(c->name);
	if (e < 0) {
		res->status = g_stop ? "interrupted" : "error";
		add_note(res, err);
		return;
	}
	res->elapsed_s = (double)(t1 - t0) / 1e9;
	res->tasks_per_s = (double)c->n / res->elapsed_s;
	snprintf(note, sizeof(note), "ready in %.1f ms; libtq replay %.1f ms: %" PRIu64 " records, %"
		 PRIu64 " tasks restored%s", res->elapsed_s * 1e3, (double)ji.replay_ns / 1e6,
		 ji.replay_records, ji.replay_tasks, ji.replay_damaged ? ", DAMAGE reported" : "");
	add_note(res, note);
	if (logged >= 0) {
		snprintf(note, sizeof(note), "tqd logged %.1f ms", logged);
		add_note(res, note);
	}
	if (cold) {
		snprintf(note, sizeof(note), "page cache dropped: %.1f of %.1f MiB still resident",
			 (double)resident / 1048576.0, (double)total / 1048576.0);
		add_note(res, note);
	}
}

unsigned run_recovery(const struct opts *o, const struct bench_sys *sys, struct result *res, unsigned max)
{
	struct rec_ctx c;
	char err[512] = "", fs[32], note[600];
	const char *base = bench_journal_base(o->journal_dir);
	uint64_t cap, fill0;
	char capnote[64];
	unsigned nr = 0;
	int e;

	if (max < 4)
		return 0;
	if (sys != &bench_sys_tq) {
		row(o, sys, &res[0], SC_RECOVERY, "unsupported",
		    "recovery times tqd's journal replay (tq only)");
		return 1;
	}
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.n = o->tasks_set && o->tasks ? o->tasks : 1000000;
	c.have_tqd = bench_tqd_find(o->tqd, c.tqd, sizeof(c.tqd)) == 0;
	snprintf(c.name, sizeof(c.name), "/tq-bench-%d-rec", (int)getpid());
	if ((e = bench_journal_mkdtemp(base, c.dir, sizeof(c.dir))) < 0) {
		snprintf(err, sizeof(err), "journal directory in %s: %s", base, strerror(-e));
		row(o, sys, &res[0], SC_RECOVERY, "error", err);
		return 1;
	}
	snprintf(c.jdir, sizeof(c.jdir), "%s/journal", c.dir);
	tq_config_init(&c.cfg);
	c.cfg.levels = REC_LEVELS;
	if (o->payload > c.cfg.max_payload)
		c.cfg.max_payload = o->payload;
	/* The default capacity (1 Mi) when the tasks fit, as a user would run
	 * it; else just enough. */
	cap = c.n + 1024;
	if (cap > c.cfg.capacity)
		c.cfg.capacity = cap < TQ_CAPACITY_MAX ? (uint32_t)cap : TQ_CAPACITY_MAX;
	snprintf(c.cfg.journal_dir, sizeof(c.cfg.journal_dir), "%s", c.jdir);
	c.cfg.durability = TQ_DURABILITY_ASYNC;
	if (o->flush_ms)
		c.cfg.flush_ms = o->flush_ms;
	bench_fs_type(c.dir, fs, sizeof(fs));

	fill0 = bench_now();
	e = rec_fill(&c, err, sizeof(err));
	if (e < 0) {
		row(o, sys, &res[0], SC_RECOVERY, g_stop ? "interrupted" : "error", err);
		bench_rm_tree(c.dir);
		return 1;
	}
	snprintf(capnote, sizeof(capnote), "capacity %u", c.cfg.capacity);
	snprintf(note, sizeof(note), "%" PRIu64 " tasks of %u B over %u levels (%s) filled in %.2f s; journal "
		 "%.1f MiB in %" PRIu64 " file%s in %s (%s)", c.n, o->payload, REC_LEVELS, capnote,
		 (double)(bench_now() - fill0) / 1e9, (double)c.jbytes / 1048576.0, c.jfiles,
		 c.jfiles == 1 ? "" : "s", base, fs);
	/* tqd first (the figure), warm then cold; then the replay
	 * alone in this process. Each start leaves the journal as it was. */
	for (int via = 1; via >= 0 && !g_stop; via--)
		for (int cold = 0; cold <= 1 && !g_stop; cold++) {
			if (cold && o->no_cold)
				continue;
			rec_measure(&c, &res[nr], via, cold);
			add_note(&res[nr], note);
			if (!strcmp(res[nr].status, "ok") && via) {
				char g[64];

				snprintf(g, sizeof(g), "goal < 2 s for 1M: %s",
					 res[nr].elapsed_s < 2.0 ? "met" : "NOT met");
				if (c.n == 1000000)
					add_note(&res[nr], g);
			}
			nr++;
		}
	bench_tqd_stop(&c.tqd_pid);
	tq_unlink(c.name);
	bench_rm_tree(c.dir);
	return nr;
}

/* ---- failover ------------------------------------------------------------ */

struct fo_shared {
	_Atomic uint32_t ready;  /* futex word: 1 leased, 2 failed */
	uint32_t n;
	uint64_t ids[TQ_BATCH_MAX];
	char err[256];
};

static void fo_worker(const char *name, struct fo_shared *sh, unsigned b, pid_t parent)
{
	struct tq_task out[TQ_BATCH_MAX];
	struct tq_lease_opts lo = { .timeout_ms = 100 };
	uint64_t until = bench_now() + 5000000000ull;
	tq *t = NULL;
	int e;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if ((e = tq_attach(name, &t)) < 0) {
		snprintf(sh->err, sizeof(sh->err), "worker: tq_attach: %s", tq_strerror(e));
		goto fail;
	}
	while (sh->n < b) {
		e = tq_lease(t, &lo, out, b - sh->n);
		if (e > 0) {
			for (int k = 0; k < e; k++)
				sh->ids[sh->n++] = out[k].id;
			continue;
		}
		if ((e != -ETIMEDOUT && e != -EAGAIN && e != -EINTR) || bench_now() > until) {
			snprintf(sh->err, sizeof(sh->err), "worker: tq_lease: %s after %u of %u",
				 tq_strerror(e), sh->n, b);
			goto fail;
		}
	}
	atomic_store(&sh->ready, 1);
	bench_futex_wake(&sh->ready, 1);
	/* Hold the leases until killed (bounded: the parent kills within
	 * seconds, or dies and PR_SET_PDEATHSIG ends this). */
	for (int i = 0; i < 600; i++)
		nap_ns(100000000L);
	_exit(0);
fail:
	atomic_store(&sh->ready, 2);
	bench_futex_wake(&sh->ready, 1);
	_exit(1);
}

unsigned run_failover(const struct opts *o, const struct bench_sys *sys, struct result *res, unsigned max)
{
	struct tq_submit_opts so = { .timeout_ms = 0 };
	struct tq_task_spec spec[TQ_BATCH_MAX];
	struct tq_task back[TQ_BATCH_MAX];
	struct tq_lease_opts lo = { .timeout_ms = 100 };
	struct tq_config cfg;
	struct fo_shared *sh = MAP_FAILED;
	struct hdr *h = NULL;
	char err[512] = "", tqd[400], dir[200] = "", log[300], seg[96], name[96], note[600];
	unsigned b = o->batch > 1 ? o->batch : 16, reps = o->failover_reps, done = 0;
	unsigned durability = o->ndur ? o->dur_list[0] : TQ_DURABILITY_NONE;
	unsigned seed = (unsigned)getpid();
	unsigned char payload[64];
	int tqd_pid = 0, wpid = 0, q, e = 0;
	uint64_t polls = 0;
	tq *t = NULL;

	if (max < 1)
		return 0;
	if (sys != &bench_sys_tq) {
		row(o, sys, &res[0], SC_FAILOVER, "unsupported",
		    "failover times tqd giving back a killed worker's leases (tq only)");
		return 1;
	}
	row(o, sys, &res[0], SC_FAILOVER, "ok", NULL);
	res[0].batch = b;
	if (bench_tqd_find(o->tqd, tqd, sizeof(tqd)) != 0) {
		res[0].status = "unsupported";
		add_note(&res[0], "tqd not found (--tqd PATH, $TQ_BENCH_TQD, ../tools/tqd, $PATH)");
		return 1;
	}
	h = calloc(1, sizeof(*h));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!h || sh == MAP_FAILED) {
		snprintf(err, sizeof(err), "out of memory");
		e = -ENOMEM;
		goto out;
	}
	snprintf(name, sizeof(name), "/tq-bench-%d-fo", (int)getpid());
	snprintf(seg, sizeof(seg), "%s", name);
	if ((e = bench_journal_mkdtemp(bench_journal_base(o->journal_dir), dir, sizeof(dir))) < 0) {
		snprintf(err, sizeof(err), "temporary directory: %s", strerror(-e));
		goto out;
	}
	snprintf(log, sizeof(log), "%s/tqd.log", dir);
	tq_config_init(&cfg);
	cfg.capacity = 65536;
	if (durability != TQ_DURABILITY_NONE) {
		snprintf(cfg.journal_dir, sizeof(cfg.journal_dir), "%s/journal", dir);
		cfg.durability = durability;
	}
	if ((e = tq_create(name, &cfg, &t)) < 0) {
		snprintf(err, sizeof(err), "tq_create: %s (%s)", tq_strerror(e), tq_last_error(NULL));
		goto out;
	}
	if ((q = tq_queue_declare(t, "failover", NULL)) < 0) {
		e = q;
		snprintf(err, sizeof(err), "tq_queue_declare: %s", tq_strerror(e));
		goto out;
	}
	{
		char *argv[] = { tqd, "--segment", seg, "--interval-ms", "10", "--quiet",
				 "--sweep-s", "0", NULL };

		tqd_pid = bench_tqd_spawn(argv, log);
	}
	if (tqd_pid < 0 || (e = bench_tqd_wait_active(t, tqd_pid, 10000000000ull)) < 0) {
		snprintf(err, sizeof(err), "tqd did not become the supervisor (log %s)", log);
		if (tqd_pid < 0)
			tqd_pid = 0;
		e = -ECHILD;
		goto out;
	}
	memset(payload, 0x5a, sizeof(payload));
	for (unsigned k = 0; k < b; k++)
		spec[k] = (struct tq_task_spec){ .payload = payload, .len = sizeof(payload) };

	for (done = 0; done < reps && !g_stop; done++) {
		uint64_t t0, t1, until;
		unsigned pending;
		pid_t parent = getpid();

		if ((e = tq_submit_batch(t, q, spec, b, &so, NULL)) != (int)b) {
			snprintf(err, sizeof(err), "tq_submit_batch: %s", e < 0 ? tq_strerror(e) : "short");
			e = e < 0 ? e : -EIO;
			goto out;
		}
		memset(sh, 0, sizeof(*sh));
		fflush(stdout);
		fflush(stderr);
		wpid = fork();
		if (wpid < 0) {
			e = -errno;
			wpid = 0;
			snprintf(err, sizeof(err), "fork: %s", strerror(-e));
			goto out;
		}
		if (wpid == 0)
			fo_worker(name, sh, b, parent);
		until = bench_now() + 10000000000ull;
		while (atomic_load(&sh->ready) == 0 && bench_now() < until && !g_stop)
			bench_futex_wait(&sh->ready, 0, 10000000u);
		if (atomic_load(&sh->ready) != 1) {
			snprintf(err, sizeof(err), "rep %u: %s", done,
				 sh->err[0] ? sh->err : "the worker did not lease within 10 s");
			e = -EIO;
			goto out;
		}
		/* A random phase of tqd's 10 ms interval. */
		nap_ns((long)(rand_r(&seed) % 10000u) * 1000L);
		t0 = bench_now();
		kill(wpid, SIGKILL);
		waitpid(wpid, NULL, 0);   /* reaped, as its parent would */
		wpid = 0;
		until = t0 + 5000000000ull;
		for (;;) {
			pending = 0;
			for (unsigned k = 0; k < b; k++) {
				struct tq_info info;

				if (tq_get(t, sh->ids[k], &info) == 0 && info.state == TQ_STATE_PENDING)
					pending++;
			}
			polls++;
			if (pending == b)
				break;
			if (bench_now() > until || g_stop) {
				snprintf(err, sizeof(err), "rep %u: %u of %u tasks pending 5 s after the kill",
					 done, pending, b);
				e = -ETIMEDOUT;
				goto out;
			}
			nap_ns(50000);
		}
		t1 = bench_now();
		hdr_record(h, t1 - t0);
		/* Take them back and finish them: the next round starts empty. */
		for (unsigned got = 0; got < b;) {
			e = tq_lease(t, &lo, back, b - got);
			if (e <= 0) {
				snprintf(err, sizeof(err), "rep %u: leasing back: %s", done,
					 e < 0 ? tq_strerror(e) : "none");
				e = e < 0 ? e : -EIO;
				goto out;
			}
			for (int k = 0; k < e; k++)
				tq_ack(t, back[k].id, NULL, 0);
			got += (unsigned)e;
		}
		e = 0;
	}
out:
	if (wpid > 0) {
		kill(wpid, SIGKILL);
		waitpid(wpid, NULL, 0);
	}
	bench_tqd_stop(&tqd_pid);
	tq_detach(t);
	tq_unlink(name);
	if (dir[0])
		bench_rm_tree(dir);
	if (sh != MAP_FAILED)
		munmap(sh, sizeof(*sh));
	res[0].tasks = (uint64_t)done * b;
	if (e < 0 || g_stop) {
		res[0].status = g_stop ? "interrupted" : "error";
		add_note(&res[0], err);
	}
	if (h && hdr_count(h)) {
		res[0].samples = hdr_count(h);
		res[0].p50 = (double)hdr_percentile(h, 50) / 1e3;
		res[0].p90 = (double)hdr_percentile(h, 90) / 1e3;
		res[0].p99 = (double)hdr_percentile(h, 99) / 1e3;
		res[0].p999 = (double)hdr_percentile(h, 99.9) / 1e3;
		res[0].max = (double)hdr_max(h) / 1e3;
		res[0].mean = hdr_mean(h) / 1e3;
		snprintf(note, sizeof(note), "%u workers SIGKILLed holding %u leases each, tqd --interval-ms 10, "
			 "%s; kill -> all %u PENDING (tq_get every 50 us, %.1f polls per kill): p99 %.1f ms "
			 "(goal < 200 ms: %s)", done, b,
			 durability == TQ_DURABILITY_NONE ? "no journal" : durability_name(durability), b,
			 (double)polls / (double)(done ? done : 1), res[0].p99 / 1e3,
			 res[0].p99 < 200000 ? "met" : "NOT met");
		add_note(&res[0], note);
	}
	free(h);
	return 1;
}

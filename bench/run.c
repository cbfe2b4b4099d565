/* SPDX-License-Identifier: MIT */
/*
 * run.c - one run of tq-bench: one workload on one system. It builds a
 * `struct run`, maps a control block shared with the children, lets the
 * system create its named object, forks the workers and the producers,
 * starts them together once all are attached, and waits for them with a
 * bound. Workers count tasks/s from their first measured lease to their
 * last ack and keep a latency histogram each in the control block (and one
 * per level in the priority scenario); the parent merges them into one
 * result row. In the sustained scenario the parent samples the resident
 * memory of every child and of the system's server every 100 ms.
 */
#include "driver.h"

#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- one run ----------------------------------------------------------- */

static pid_t *g_pids;
static unsigned g_npids;
/* What the children of the current run used, summed as they are reaped. */
static struct rusage g_ru;

static void kill_children(int sig)
{
	for (unsigned i = 0; i < g_npids; i++)
		if (g_pids[i] > 0)
			kill(g_pids[i], sig);
}

/* Reap whoever exited; returns how many are still alive. Records the
 * worst exit: *bad gets the first non-zero status seen. */
static unsigned reap(int *bad, int block_ms)
{
	unsigned alive = 0;

	if (block_ms > 0) {
		sigset_t set;
		struct timespec ts = { block_ms / 1000, (long)(block_ms % 1000) * 1000000L };

		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		sigtimedwait(&set, NULL, &ts);   /* EINTR on SIGINT is fine */
	}
	for (unsigned i = 0; i < g_npids; i++) {
		int st;

		if (g_pids[i] <= 0)
			continue;
		struct rusage ru;
		pid_t p = wait4(g_pids[i], &st, WNOHANG, &ru);
		if (p == g_pids[i]) {
			g_pids[i] = 0;
			g_ru.ru_utime.tv_sec += ru.ru_utime.tv_sec;
			g_ru.ru_utime.tv_usec += ru.ru_utime.tv_usec;
			g_ru.ru_stime.tv_sec += ru.ru_stime.tv_sec;
			g_ru.ru_stime.tv_usec += ru.ru_stime.tv_usec;
			g_ru.ru_nvcsw += ru.ru_nvcsw;
			g_ru.ru_nivcsw += ru.ru_nivcsw;
			int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (code && !*bad)
				*bad = code;
		} else if (p < 0 && errno == ECHILD) {
			g_pids[i] = 0;
		} else {
			alive++;
		}
	}
	return alive;
}

/* Stop everybody: ask, wait a little, then kill. */
static void stop_children(struct run *r)
{
	int dummy = 0;
	uint64_t until = bench_now() + 3000000000ull;

	atomic_store(&r->ctl->abort, 1);
	bench_futex_wake(&r->ctl->go, INT32_MAX);
	while (reap(&dummy, 20) && bench_now() < until)
		;
	kill_children(SIGKILL);
	while (reap(&dummy, 20))
		;
}

static void child_main(struct run *r, int is_worker, unsigned idx, pid_t parent)
{
	sigset_t none;
	int code;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(CHILD_ABORTED);
	bench_pin(r, is_worker, idx);
	code = is_worker ? r->sys->worker(r, idx) : r->sys->producer(r, idx);
	_exit(code);
}

static void finish_result(struct run *r, struct result *res)
{
	struct hdr *all = calloc(1, sizeof(*all));
	uint64_t first = UINT64_MAX, last = 0, measured = 0;
	uint64_t pstart = UINT64_MAX, pend = 0, submitted = 0;

	for (unsigned w = 0; w < r->workers; w++) {
		struct work_stat *ws = &r->work[w];

		if (ws->measured) {
			measured += ws->measured;
			if (ws->first_ns && ws->first_ns < first)
				first = ws->first_ns;
		}
		if (ws->count && ws->last_ns > last)
			last = ws->last_ns;
		if (all && !r->phist)
			hdr_merge(all, &r->hist[w]);
	}
	/* Durable: the latency is the submit call's (the wait for the disk). */
	for (unsigned p = 0; all && r->phist && p < r->producers; p++)
		hdr_merge(all, &r->phist[p]);
	for (unsigned p = 0; p < r->producers; p++) {
		struct prod_stat *ps = &r->prod[p];

		submitted += ps->count;
		if (ps->start_ns && ps->start_ns < pstart)
			pstart = ps->start_ns;
		if (ps->end_ns > pend)
			pend = ps->end_ns;
	}
	if (measured && last > first) {
		res->elapsed_s = (double)(last - first) / 1e9;
		res->tasks_per_s = (double)measured / res->elapsed_s;
	}
	if (submitted && pend > pstart)
		res->submit_per_s = (double)submitted / ((double)(pend - pstart) / 1e9);
	if (pstart != UINT64_MAX && last > pstart)
		res->drain_s = (double)(last - pstart) / 1e9;
	if (r->lhist && all) {
		res->nlvl = r->levels < LVL_MAX ? r->levels : LVL_MAX;
		for (unsigned l = 0; l < res->nlvl; l++) {
			struct lvl_lat *ll = &res->lvl[l];

			hdr_reset(all);
			for (unsigned w = 0; w < r->workers; w++)
				hdr_merge(all, &r->lhist[(size_t)w * r->levels + l]);
			ll->samples = hdr_count(all);
			if (!ll->samples)
				continue;
			ll->p50 = (double)hdr_percentile(all, 50) / 1e3;
			ll->p90 = (double)hdr_percentile(all, 90) / 1e3;
			ll->p99 = (double)hdr_percentile(all, 99) / 1e3;
			ll->p999 = (double)hdr_percentile(all, 99.9) / 1e3;
			ll->max = (double)hdr_max(all) / 1e3;
		}
	}
	if (all && hdr_count(all)) {
		res->samples = hdr_count(all);
		res->p50 = (double)hdr_percentile(all, 50) / 1e3;
		res->p90 = (double)hdr_percentile(all, 90) / 1e3;
		res->p99 = (double)hdr_percentile(all, 99) / 1e3;
		res->p999 = (double)hdr_percentile(all, 99.9) / 1e3;
		res->max = (double)hdr_max(all) / 1e3;
		res->mean = hdr_mean(all) / 1e3;
	}
	free(all);
}

/* VmRSS of pid in KiB, 0 if gone. */
static uint64_t rss_kb(int pid)
{
	char path[64], line[256];
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			v = strtoull(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void sample_memory(const struct run *r, struct result *res)
{
	uint64_t total = 0, v;

	for (unsigned i = 0; i < g_npids; i++) {
		int is_worker = i < r->workers;

		if (g_pids[i] <= 0 || !(v = rss_kb(g_pids[i])))
			continue;
		total += v;
		if (is_worker && v > res->rss_worker_kb)
			res->rss_worker_kb = v;
		if (!is_worker && v > res->rss_producer_kb)
			res->rss_producer_kb = v;
	}
	if (r->server_pid > 0 && (v = rss_kb(r->server_pid))) {
		total += v;
		if (v > res->rss_server_kb)
			res->rss_server_kb = v;
	}
	if (total > res->rss_total_kb)
		res->rss_total_kb = total;
	res->mem_samples++;
	res->mem_valid = 1;
}

void run_one(const struct opts *o, const struct bench_sys *sys, enum scenario sc,
	     unsigned seq, struct result *res)
{
	struct run run, *r = &run;
	unsigned nchild, i;
	size_t off;
	int bad = 0, rc;
	pid_t parent = getpid();
	sigset_t chld, old;

	memset(r, 0, sizeof(*r));
	memset(res, 0, sizeof(*res));
	r->sys = sys;
	r->sc = sc;
	r->seq = seq;
	r->payload = o->payload;
	r->batch = o->batch;
	r->queues = o->queues;
	r->levels = o->levels;
	r->seg_levels = o->levels_set ? o->levels : 0;
	r->policy = o->policy;
	r->touch = o->touch;
	r->pin = o->pin;
	r->spin_pace = o->spin_pace;
	r->spin_ns = o->spin_ns;
	/* tq's workers: libtq's adaptive spin unless --spin-us; tq-spin's:
	 * BENCH_TQ_SPIN_US unless --spin-us. Other systems ignore it. */
	if (bench_is_tq(sys))
		r->spin_us = o->spin_us_set ? o->spin_us
			     : sys == &bench_sys_tq_spin ? BENCH_TQ_SPIN_US : 0;
	r->capacity = o->capacity;
	r->ring_slots = o->ring_slots;
	r->mq_maxmsg = o->mq_maxmsg;
	r->duration = o->duration;
	r->rate = o->rate;
	r->paced = sc == SC_LATENCY || sc == SC_SUSTAINED;
	r->durability = o->ndur ? o->dur_list[0] : 0;
	r->flush_ms = o->flush_ms;
	r->journal_base = o->journal_dir;
	r->tqd_opt = o->tqd;
	if (sc == SC_RACE) {
		r->producers = o->race_producers;
		r->workers = o->race_workers;
		r->tasks = o->race_tasks;
		r->warmup = 0;
		r->prefill = 0;
		r->sample = 0;
	} else {
		r->producers = o->producers;
		r->workers = o->workers;
		r->tasks = o->tasks ? o->tasks
			   : r->paced ? (uint64_t)(o->rate * 5) : 1000000u;
		if (r->tasks == 0)
			r->tasks = 1;
		r->prefill = o->prefill;
		if (o->warmup >= 0)
			r->warmup = (uint64_t)o->warmup;
		else if (r->paced)
			r->warmup = r->tasks / 20 < 1000 ? r->tasks / 20 : 1000;
		else
			r->warmup = r->tasks / 20 < 100000 ? r->tasks / 20 : 100000;
		r->sample = o->sample >= 0 ? (unsigned)o->sample : r->paced ? 1u : 64u;
	}
	r->total = r->tasks + r->warmup;
	snprintf(r->name, sizeof(r->name), "/tq-bench-%d-%u", (int)getpid(), seq);

	res->sys = sys;
	sys->version(res->version, sizeof(res->version));
	res->sc = sc;
	res->producers = r->producers;
	res->workers = r->workers;
	res->tasks = r->tasks;
	res->warmup = r->warmup;
	res->prefill = r->prefill;
	res->payload = r->payload;
	res->batch = r->batch;
	res->queues = r->queues;
	res->levels = r->levels;
	res->policy = r->policy;
	res->rate = r->paced ? r->rate : 0;
	res->race = sc == SC_RACE;
	res->status = "ok";
	res->spin_valid = bench_is_tq(sys);
	res->spin_us = r->spin_us;

	/* The control block. */
	off = (sizeof(struct ctl) + BENCH_LINE - 1) / BENCH_LINE * BENCH_LINE;
	size_t off_prod = off;
	off += sizeof(struct prod_stat) * r->producers;
	size_t off_work = off;
	off += sizeof(struct work_stat) * r->workers;
	size_t off_hist = off;
	off += sizeof(struct hdr) * r->workers;
	size_t off_seen = off;
	off += sc == SC_RACE ? r->total : 0;
	off = (off + BENCH_LINE - 1) / BENCH_LINE * BENCH_LINE;
	size_t off_lhist = off;
	if (sc == SC_PRIORITY && r->levels > 1)
		off += sizeof(struct hdr) * r->workers * r->levels;
	size_t off_phist = off, end_lhist = off;
	if (sc == SC_DURABLE)
		off += sizeof(struct hdr) * r->producers;
	r->ctl_size = off;
	r->ctl = mmap(NULL, r->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->ctl == MAP_FAILED) {
		res->status = "error";
		snprintf(res->note, sizeof(res->note), "mmap control block: %s", strerror(errno));
		return;
	}
	r->prod = (struct prod_stat *)((char *)r->ctl + off_prod);
	r->work = (struct work_stat *)((char *)r->ctl + off_work);
	r->hist = (struct hdr *)((char *)r->ctl + off_hist);
	r->seen = sc == SC_RACE ? (_Atomic uint8_t *)((char *)r->ctl + off_seen) : NULL;
	r->lhist = off_lhist < end_lhist ? (struct hdr *)((char *)r->ctl + off_lhist) : NULL;
	r->phist = sc == SC_DURABLE ? (struct hdr *)((char *)r->ctl + off_phist) : NULL;
	res->durable = sc == SC_DURABLE;
	res->durability = r->durability;

	rc = sys->setup(r);
	if (rc != 0 || g_stop) {
		res->status = g_stop ? "interrupted" : rc == BENCH_UNSUPPORTED ? "unsupported" : "error";
		add_note(res, r->note);
		if (rc < 0 && !r->note[0])
			add_note(res, strerror(-rc));
		goto out;
	}

	/* Children: workers first, so they wait when the producers start. */
	nchild = r->producers + r->workers;
	g_pids = calloc(nchild, sizeof(*g_pids));
	g_npids = 0;
	if (!g_pids) {
		res->status = "error";
		add_note(res, "out of memory");
		goto out;
	}
	memset(&g_ru, 0, sizeof(g_ru));
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	fflush(stdout);
	fflush(stderr);
	for (i = 0; i < nchild; i++) {
		int is_worker = i < r->workers;
		unsigned idx = is_worker ? i : i - r->workers;
		pid_t pid = fork();

		if (pid == 0)
			child_main(r, is_worker, idx, parent);
		if (pid < 0) {
			res->status = "error";
			snprintf(res->note, sizeof(res->note), "fork: %s", strerror(errno));
			stop_children(r);
			goto out_mask;
		}
		g_pids[g_npids++] = pid;
	}

	/* Start barrier: all attached, then go. */
	uint64_t give_up = bench_now() + 60000000000ull;
	while (atomic_load(&r->ctl->ready) < nchild) {
		if (g_stop || bad || bench_now() > give_up) {
			if (!bad)
				bad = g_stop ? 128 + g_stop : CHILD_TIMEOUT;
			break;
		}
		if (reap(&bad, 1) < nchild && !bad)
			bad = CHILD_ERROR;
	}
	if (bad) {
		stop_children(r);
		goto judge;
	}
	/* Latency schedule starts a little ahead, so every producer is awake. */
	r->ctl->t0_ns = bench_now() + (r->paced ? 2000000u : 0u);
	r->ctl->deadline_ns = r->ctl->t0_ns + (uint64_t)(r->duration * 1e9);
	atomic_store(&r->ctl->go, 1);
	bench_futex_wake(&r->ctl->go, INT32_MAX);

	/* Wait for them, bounded by the run's deadline (plus a grace). */
	for (;;) {
		unsigned alive = reap(&bad, 100);

		if (sc == SC_SUSTAINED && alive)
			sample_memory(r, res);
		if (!alive)
			break;
		if (g_stop || bad || bench_now() > r->ctl->deadline_ns + 5000000000ull) {
			if (!bad)
				bad = g_stop ? 128 + g_stop : CHILD_TIMEOUT;
			stop_children(r);
			break;
		}
	}
judge:
	if (bad) {
		if (g_stop)
			res->status = "interrupted";
		else if (bad == CHILD_TIMEOUT)
			res->status = "timeout";
		else
			res->status = "error";
		if (r->ctl->err_set)
			add_note(res, r->ctl->err);
		else if (bad == CHILD_TIMEOUT)
			add_note(res, "run did not finish within --duration");
		else if (bad > 128) {
			char b[64];

			snprintf(b, sizeof(b), "a child died of signal %d", bad - 128);
			add_note(res, b);
		}
	}
	add_note(res, r->note);
	r->note[0] = 0;
	finish_result(r, res);
	if (!bad && r->total) {
		double cpu = (double)(g_ru.ru_utime.tv_sec + g_ru.ru_stime.tv_sec) * 1e6 +
			     (double)(g_ru.ru_utime.tv_usec + g_ru.ru_stime.tv_usec);

		res->cpu_us_per_task = cpu / (double)r->total;
		res->csw_per_task = (double)(g_ru.ru_nvcsw + g_ru.ru_nivcsw) / (double)r->total;
	}

	if (!bad && sc == SC_RACE) {
		uint64_t corrupt = 0, bad_seq = 0;
		long n = sys->drain ? sys->drain(r) : 0;

		if (n < 0) {
			res->status = "failed";
			add_note(res, r->note[0] ? r->note : strerror((int)-n));
		} else {
			res->leftover = (uint64_t)n;
		}
		for (uint64_t k = 0; k < r->total; k++) {
			uint8_t s = r->seen[k];

			if (s == 0)
				res->losses++;
			else if (s > 1)
				res->dups += s - 1u;
		}
		for (unsigned w = 0; w < r->workers; w++) {
			corrupt += r->work[w].corrupt;
			bad_seq += r->work[w].bad_seq;
		}
		res->corrupt = corrupt + bad_seq;
		if (res->losses || res->dups || res->leftover || res->corrupt) {
			char b[200];

			res->status = "failed";
			snprintf(b, sizeof(b), "race: %" PRIu64 " duplicates, %" PRIu64 " lost, %" PRIu64
				 " left pending, %" PRIu64 " corrupt payloads", res->dups, res->losses,
				 res->leftover, res->corrupt);
			add_note(res, b);
		}
	}
out_mask:
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	sys->teardown(r);
	res->jst = r->jst;
	/* Say so in the row when a tq worker does not use the default spin:
	 * its latency and CPU figures are not the sleeping worker's. */
	if (res->spin_valid && (res->spin_us || sys != &bench_sys_tq)) {
		char b[96];

		if (res->spin_us)
			snprintf(b, sizeof(b), "worker polls %" PRIu32 " us before sleeping (spin_us)",
				 res->spin_us);
		else
			snprintf(b, sizeof(b), "spin_us 0: libtq's adaptive spin");
		add_note(res, b);
	}
	free(g_pids);
	g_pids = NULL;
	g_npids = 0;

	/* Memory per held task, on a fresh object of the same configuration. */
	int64_t k = o->bpt_tasks;
	if (k < 0)
		k = 1000000;
	if (!g_stop && sc != SC_RACE && k > 0 && sys->footprint &&
	    strcmp(res->status, "ok") == 0) {
		r->note[0] = 0;
		rc = sys->footprint(r, (uint64_t)k, &res->fp);
		if (rc < 0) {
			char b[128];

			snprintf(b, sizeof(b), "bytes/task: %s", strerror(-rc));
			add_note(res, b);
			res->fp.valid = 0;
		} else if (!res->fp.valid) {
			char b[256];

			snprintf(b, sizeof(b), "bytes/task not measurable with %" PRIu64 " tasks held (%s)",
				 res->fp.k, res->fp.method ? res->fp.method : "?");
			add_note(res, b);
		}
	}
	munmap(r->ctl, r->ctl_size);
}
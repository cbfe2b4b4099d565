/* SPDX-License-Identifier: MIT */
/*
 * report.c - `tq-bench report [--short|--long] [--out DIR] [--sections LIST]`: runs the
 * suite below (short: a few minutes; long: the figures the goals are read
 * from, sustained for 60 s) and writes DIR/PERFORMANCE.md (default DIR:
 * docs) with the machine, kernel, versions, the exact commands and one
 * table per command, and PNG plots made with gnuplot in DIR/plots: latency
 * percentiles per system (log scale), throughput against workers, and
 * per-level latency. Without gnuplot the report says so and has no plots.
 * The journal's commands (issue 3) get their own sections, "Durability"
 * and "Recovery"; --sections runs,durability,recovery runs only those.
 *
 * Two goals need more than one row each: latency is read for tq's default
 * sleeping worker and for tq-spin (the worker polls 1 ms before sleeping),
 * both against redis; the depth goal compares medians of repeated runs,
 * as single runs of tq vary by +-25% from one to the next on a small VM.
 */
#include "driver.h"

#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cmd {
	const char *what;
	const char *args_short, *args_long;
	int section;             /* SEC_*: where the report puts it */
	int depth_goal;          /* the depth goal's medians come from this command */
};
enum { SEC_RUNS, SEC_DURABILITY, SEC_RECOVERY };

/* Runs of each depth the depth goal takes the median of. --repeat runs the
 * whole sweep N times over, so the two depths alternate and a slow phase
 * of the machine hits both alike. Short mode: 10 runs of 500k tasks, about
 * 15 s; CI runs no report (meson test runs bench-smoke*), only people do. */
#define DEPTH_REPEAT "5"
#define DEPTH_RUNS_MAX 64

/* Same workload, same run: each line is one tq-bench invocation. */
static const struct cmd suite[] = {
	{ "End-to-end throughput, 1 producer, 1 worker, 64 B",
	  "--scenario throughput --system all --tasks 100k --bpt-tasks 100k",
	  "--scenario throughput --system all --tasks 1M --bpt-tasks 1M", SEC_RUNS, 0 },
	{ "Durable beanstalkd (binlog; -f0: fsync every write), same workload",
	  "--scenario throughput --system tq,durable --tasks 5k --bpt-tasks 0",
	  "--scenario throughput --system tq,durable --tasks 20k --bpt-tasks 0", SEC_RUNS, 0 },
	/* all includes tq-spin in this scenario: tq with spin_us 1000. */
	{ "Submit -> start latency at 10,000 tasks/s (tq: sleeping worker; tq-spin: the worker "
	  "polls 1 ms before sleeping)",
	  "--scenario latency --system all --rate 10000 --tasks 30k",
	  "--scenario latency --system all --rate 10000 --tasks 300k", SEC_RUNS, 0 },
	{ "Submission by payload size",
	  "--scenario submit --system all --tasks 20k",
	  "--scenario submit --system all", SEC_RUNS, 0 },
	{ "Throughput against workers",
	  "--scenario workers --system all --tasks 50k",
	  "--scenario workers --system all --tasks 500k", SEC_RUNS, 0 },
	{ "Latency of each operation (tq)",
	  "--scenario ops --system tq --ops-rounds 100k",
	  "--scenario ops --system tq --ops-rounds 1M", SEC_RUNS, 0 },
	{ "Depth: tasks already pending (tq and raw-ring)",
	  "--scenario depth --system tq,raw-ring --tasks 500k",
	  "--scenario depth --system tq,raw-ring --tasks 2M", SEC_RUNS, 0 },
	{ "Depth goal: tq with 100 and 1,000,000 pending, " DEPTH_REPEAT " runs of each, alternating",
	  "--scenario depth --system tq --depths 100,1M --tasks 500k --repeat " DEPTH_REPEAT,
	  "--scenario depth --system tq --depths 100,1M --tasks 2M --repeat " DEPTH_REPEAT,
	  SEC_RUNS, 1 },
	{ "Depth: the other systems",
	  "--scenario depth --system posix-mq,pipe,redis,beanstalkd --depths 100,1k,10k --tasks 20k",
	  "--scenario depth --system posix-mq,pipe,redis,beanstalkd --tasks 100k", SEC_RUNS, 0 },
	{ "Concurrent producers",
	  "--scenario clients --system all --tasks 30k",
	  "--scenario clients --system all --tasks 300k", SEC_RUNS, 0 },
	{ "Per-level latency, 8 levels loaded, strict and weighted",
	  "--scenario priority --system tq,posix-mq,redis,beanstalkd --tasks 30k --mq-maxmsg 10",
	  "--scenario priority --system tq,posix-mq,redis,beanstalkd --tasks 300k --mq-maxmsg 10", SEC_RUNS, 0 },
	{ "Burst of 10,000 tasks",
	  "--scenario burst --system all",
	  "--scenario burst --system all", SEC_RUNS, 0 },
	{ "Sustained 10,000 tasks/s, memory sampled",
	  "--scenario sustained --system all --rate 10000 --sustain 5",
	  "--scenario sustained --system all --rate 10000 --sustain 60", SEC_RUNS, 0 },
	{ "Race: 100 workers over 10,000 tasks",
	  "--scenario race --system all,durable",
	  "--scenario race --system all,durable --race-tasks 100k", SEC_RUNS, 0 },
	{ "Journal: none, async and sync, batches of 64, 8 producers sharing group commits",
	  "--scenario durable --durability all --batch 64 --producers 8 --tasks 200k",
	  "--scenario durable --durability all --batch 64 --producers 8", SEC_DURABILITY, 0 },
	{ "Journal: none, async and sync, batches of 64, 1 producer (one flush per call)",
	  "--scenario durable --durability all --batch 64 --tasks 50k",
	  "--scenario durable --durability all --batch 64 --tasks 300k", SEC_DURABILITY, 0 },
	{ "Journal: one task per call, 4 producers, against beanstalkd's binlog",
	  "--scenario durable --system tq,durable --durability all --producers 4 --tasks 2k",
	  "--scenario durable --system tq,durable --durability all --producers 4 --tasks 10k",
	  SEC_DURABILITY, 0 },
	{ "Recovery: tqd start -> every journaled task pending again",
	  "--scenario recovery --tasks 100k",
	  "--scenario recovery --tasks 1M", SEC_RECOVERY, 0 },
	{ "Failover: a SIGKILLed worker's leased tasks ready again",
	  "--scenario failover --kills 50",
	  "--scenario failover --kills 200", SEC_RECOVERY, 0 },
};
#define NCMD (sizeof(suite) / sizeof(suite[0]))

struct collect {
	struct result *r;
	size_t n, cap;
};

static void collect_cb(const struct opts *o, const struct result *res, void *arg)
{
	struct collect *c = arg;

	print_row(res);
	(void)o;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->r = realloc(c->r, c->cap * sizeof(*c->r));
		if (!c->r)
			die("out of memory");
	}
	c->r[c->n++] = *res;
}

static void us(FILE *f, double v, int valid)
{
	if (!valid)
		fputs(" - |", f);
	else if (v < 100)
		fprintf(f, " %.2f |", v);
	else
		fprintf(f, " %.0f |", v);
}

static void table(FILE *f, const struct result *rs, size_t n)
{
	fputs("| system | P | W | tasks | payload | pending | tasks/s | p50 us | p90 us | p99 us | p99.9 us | max us | B/task | note |\n"
	      "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &rs[i];
		int lat = r->samples > 0;

		fprintf(f, "| %s | %u | %u | %" PRIu64 " | %u | %" PRIu64 " |", r->sys->name, r->producers,
			r->workers, r->tasks, r->payload, r->prefill);
		if (r->tasks_per_s > 0)
			fprintf(f, " %.0f |", r->tasks_per_s);
		else
			fputs(" - |", f);
		us(f, r->p50, lat);
		us(f, r->p90, lat);
		us(f, r->p99, lat);
		us(f, r->p999, lat);
		us(f, r->max, lat);
		if (r->fp.valid)
			fprintf(f, " %.0f |", (double)r->fp.resident / (double)r->fp.k);
		else
			fputs(" - |", f);
		fputc(' ', f);
		if (r->op)
			fprintf(f, "%s%s; ", r->sc == SC_OPS ? "op " : "", r->op);
		if (r->sc == SC_PRIORITY)
			fprintf(f, "%u levels, %s; ", r->levels, policy_name(r->policy));
		if (r->sc == SC_SUBMIT && r->submit_per_s > 0)
			fprintf(f, "submit %.0f/s; ", r->submit_per_s);
		if (r->sc == SC_BURST && r->drain_s > 0)
			fprintf(f, "drained in %.2f ms; ", r->drain_s * 1e3);
		if (r->race)
			fprintf(f, "%" PRIu64 " duplicates, %" PRIu64 " lost; ", r->dups, r->losses);
		if (r->mem_valid)
			fprintf(f, "peak RSS KiB: producer %" PRIu64 ", worker %" PRIu64 ", server %" PRIu64
				", all %" PRIu64 "; ", r->rss_producer_kb, r->rss_worker_kb, r->rss_server_kb,
				r->rss_total_kb);
		if (r->durable) {
			char x[300];

			durable_extra(r, x, sizeof(x));
			fputs(x, f);
		}
		fputs(r->status, f);
		for (const char *s = r->note; *s; s++)
			if (s == r->note)
				fprintf(f, ": %c", *s == '|' ? '/' : *s);
			else
				fputc(*s == '|' ? '/' : *s, f);
		fputs(" |\n", f);
		for (unsigned l = 0; l < r->nlvl; l++) {
			const struct lvl_lat *ll = &r->lvl[l];
			int v = ll->samples > 0;

			fprintf(f, "| &nbsp; level %u | | | %" PRIu64 " samples | | | |", l, ll->samples);
			us(f, ll->p50, v);
			us(f, ll->p90, v);
			us(f, ll->p99, v);
			us(f, ll->p999, v);
			us(f, ll->max, v);
			fputs(" | |\n", f);
		}
	}
	fputc('\n', f);
}

static const struct result *find(const struct result *rs, size_t n, const char *sys, enum scenario sc,
				 uint32_t payload, uint64_t prefill)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rs[i].sys->name, sys) && rs[i].sc == sc && !strcmp(rs[i].status, "ok") &&
		    (!payload || rs[i].payload == payload) && (prefill == UINT64_MAX || rs[i].prefill == prefill))
			return &rs[i];
	return NULL;
}

static void ratio(FILE *f, const char *what, const struct result *a, const struct result *b, double goal)
{
	if (!a || !b || !(a->tasks_per_s > 0) || !(b->tasks_per_s > 0)) {
		fprintf(f, "- %s: not measured (a run failed or was skipped)\n", what);
		return;
	}
	double x = a->tasks_per_s / b->tasks_per_s;
	fprintf(f, "- %s: %.0f vs %.0f tasks/s = **x%.1f** (goal x%.0f: %s)\n", what, a->tasks_per_s,
		b->tasks_per_s, x, goal, x >= goal ? "met" : "NOT met");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* tasks/s of every ok run of sys in scenario sc with `prefill` pending,
 * sorted, in v[0..max-1]; returns how many. */
static unsigned rates(const struct result *rs, size_t n, const char *sys, enum scenario sc,
		      uint64_t prefill, double *v, unsigned max)
{
	unsigned k = 0;

	for (size_t i = 0; i < n && k < max; i++)
		if (!strcmp(rs[i].sys->name, sys) && rs[i].sc == sc && !strcmp(rs[i].status, "ok") &&
		    rs[i].prefill == prefill && rs[i].tasks_per_s > 0)
			v[k++] = rs[i].tasks_per_s;
	qsort(v, k, sizeof(*v), cmp_double);
	return k;
}

static double median(const double *v, unsigned k)
{
	return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

/* The latency goal: tq's p99 below redis's p50 in the same run. Said for
 * both ways a tq worker can wait: sleeping on the futex (tq, the default:
 * its p99 holds the cross-CPU wake-up of a halted vCPU) and polling
 * (tq-spin), with what polling costs in CPU. */
static void latency_goal(FILE *f, const struct result *rs, size_t n)
{
	const struct result *lt = find(rs, n, "tq", SC_LATENCY, 64, UINT64_MAX);
	const struct result *ls = find(rs, n, "tq-spin", SC_LATENCY, 64, UINT64_MAX);
	const struct result *lr = find(rs, n, "redis", SC_LATENCY, 64, UINT64_MAX);
	int t_ok, s_ok;

	if (!lr || !lr->samples || ((!lt || !lt->samples) && (!ls || !ls->samples))) {
		fputs("- latency at 10,000/s: not measured\n", f);
		return;
	}
	t_ok = lt && lt->samples && lt->p99 < lr->p50;
	s_ok = ls && ls->samples && ls->p99 < lr->p50;
	fprintf(f, "- tq p99 submit -> start at 10,000/s below redis p50 (%.2f us):", lr->p50);
	if (lt && lt->samples)
		fprintf(f, " sleeping worker (tq, spin_us %" PRIu32 "%s) p99 %.2f us: %s;", lt->spin_us,
			lt->spin_us ? "" : ": at most 20 us of spin, then the futex", lt->p99,
			t_ok ? "met" : "NOT met");
	else
		fputs(" sleeping worker (tq): not measured;", f);
	if (ls && ls->samples)
		fprintf(f, " polling worker (tq-spin, spin_us %" PRIu32 ") p99 %.2f us: %s.", ls->spin_us,
			ls->p99, s_ok ? "met" : "NOT met");
	else
		fputs(" polling worker (tq-spin): not measured.", f);
	if (lt && lt->samples && ls && ls->samples) {
		if (t_ok)
			fputs(" **Met with the default sleeping worker.**", f);
		else if (s_ok)
			fputs(" **Met only with a polling worker; not with the default sleeping one.**", f);
		else
			fputs(" **Not met, sleeping or polling.**", f);
		/* All the children's CPU (producer and worker) per task. */
		if (lt->cpu_us_per_task > 0 && ls->cpu_us_per_task > 0)
			fprintf(f, " Polling's price: %.1f us of CPU per task (producer + worker) against "
				"%.1f sleeping, x%.1f: the worker's core stays busy between tasks.",
				ls->cpu_us_per_task, lt->cpu_us_per_task,
				ls->cpu_us_per_task / lt->cpu_us_per_task);
	}
	fputc('\n', f);
}

/* The depth goal on the medians of the runs in rs (the depth goal's
 * command, repeated), as one run alone is noise on a small VM. */
static void depth_goal(FILE *f, const struct result *rs, size_t n)
{
	double a[DEPTH_RUNS_MAX], b[DEPTH_RUNS_MAX];
	unsigned na = rates(rs, n, "tq", SC_DEPTH, 1000000, a, DEPTH_RUNS_MAX);
	unsigned nb = rates(rs, n, "tq", SC_DEPTH, 100, b, DEPTH_RUNS_MAX);

	if (!na || !nb) {
		fputs("- depth: not measured\n", f);
		return;
	}
	double m1m = median(a, na), m100 = median(b, nb);

	fprintf(f, "- depth: tq with 1,000,000 pending %.0f tasks/s, with 100 pending %.0f (",
		m1m, m100);
	if (na == nb)
		fprintf(f, "median of %u runs each", na);
	else
		fprintf(f, "medians of %u and %u runs", na, nb);
	fprintf(f, "; 1,000,000 pending ranged %.0f..%.0f, 100 pending %.0f..%.0f): %+.1f%% "
		"(goal within 10%%: %s)\n", a[0], a[na - 1], b[0], b[nb - 1], 100 * (m1m / m100 - 1),
		m1m >= 0.9 * m100 ? "met" : "NOT met");
}

static void goals(FILE *f, const struct result *rs, size_t n, const struct result *drs, size_t dn)
{
	const struct result *tq = find(rs, n, "tq", SC_THROUGHPUT, 64, 0);
	const struct result *mq = NULL;

	fputs("## Goals (ratios from this run)\n\n", f);
	ratio(f, "tq / redis, end-to-end, 1 producer, 1 worker", tq, find(rs, n, "redis", SC_THROUGHPUT, 64, 0), 50);
	ratio(f, "tq / beanstalkd (no binlog), same", tq, find(rs, n, "beanstalkd", SC_THROUGHPUT, 64, 0), 100);
	latency_goal(f, rs, n);
	ratio(f, "tq / pipe, 100 KiB payloads (submit scenario, end-to-end)",
	      find(rs, n, "tq", SC_SUBMIT, 102400, UINT64_MAX), find(rs, n, "pipe", SC_SUBMIT, 102400, UINT64_MAX), 2);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rs[i].sys->name, "posix-mq") && rs[i].sc == SC_SUBMIT && rs[i].payload == 102400)
			mq = &rs[i];
	if (mq)
		fprintf(f, "- posix-mq, 100 KiB: %s%s%s\n", mq->status, mq->note[0] ? ": " : "", mq->note);
	depth_goal(f, drs, dn);
	durable_summary(f, rs, n, 1);
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		if (r->sc == SC_RECOVERY && r->op && !strcmp(r->op, "tqd, cold cache") &&
		    !strcmp(r->status, "ok"))
			fprintf(f, "- recovery of %" PRIu64 " journaled tasks, tqd start -> all pending, cold "
				"cache: %.0f ms%s\n", r->tasks, r->elapsed_s * 1e3, r->tasks == 1000000 ?
				(r->elapsed_s < 2 ? " (goal < 2 s for 1M: met)" : " (goal < 2 s for 1M: NOT met)")
				: " (the goal is read at 1M: --long)");
		if (r->sc == SC_RECOVERY && r->op && !strcmp(r->op, "tqd, warm cache") &&
		    !strcmp(r->status, "ok"))
			fprintf(f, "- recovery, same, warm cache: %.0f ms\n", r->elapsed_s * 1e3);
		if (r->sc == SC_FAILOVER && r->samples)
			fprintf(f, "- killed worker's tasks ready again: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
				"over %" PRIu64 " kills (goal p99 < 200 ms: %s)\n", r->p50 / 1e3, r->p99 / 1e3,
				r->max / 1e3, r->samples, r->p99 < 200000 ? "met" : "NOT met");
	}
	FILE *b = fopen("perf/baseline.txt", "r");
	if (b) {
		char line[256];

		fputs("- instructions per task (callgrind, perf/baseline.txt; goal at most 400; "
		      "b64-: batches of 64):", f);
		/* The separator goes before an item: entries may follow
		 * "total" (the batched b64-* ones). */
		for (int first = 1; fgets(line, sizeof(line), b);) {
			char k[32];
			unsigned long v;

			if (line[0] == '#' || sscanf(line, "%31s %lu", k, &v) != 2)
				continue;
			fprintf(f, "%s %s %lu%s", first ? "" : ",", k, v,
				strcmp(k, "total") && strcmp(k, "b64-total") ? "" :
				v <= 400 ? " (met)" : " (NOT met)");
			first = 0;
		}
		fputc('\n', f);
		fclose(b);
	}
	fputc('\n', f);
}

/* gnuplot data and script into a temporary directory, PNGs into plots. */
static int plots(const char *plotdir, const struct result *rs, size_t n, char *why, size_t whysize,
		 int *have)
{
	char tmp[] = "/tmp/tq-bench-report-XXXXXX", path[512], cmd[1200];
	const char *sysn[16];
	unsigned ns = 0;
	FILE *g, *d;
	int rc;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		snprintf(why, whysize, "gnuplot is not installed (apt-get install gnuplot-nox): no plots");
		return -1;
	}
	if (!mkdtemp(tmp)) {
		snprintf(why, whysize, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	mkdir(plotdir, 0755);
	snprintf(path, sizeof(path), "%s/plot.gp", tmp);
	g = fopen(path, "w");
	if (!g)
		return -1;
	fputs("set terminal pngcairo size 900,540 noenhanced\nset grid\nset key outside right\n", g);

	/* 1. latency percentiles per system, latency scenario. */
	snprintf(path, sizeof(path), "%s/lat.dat", tmp);
	d = fopen(path, "w");
	for (size_t i = 0; i < n && !ns; i++)
		if (rs[i].sc == SC_LATENCY && rs[i].samples)
			ns = 1;
	if (ns)
		fprintf(g, "set output '%s/latency-percentiles.png'\nset title 'submit -> start latency at 10,000 tasks/s'\n"
			"set logscale y\nset ylabel 'microseconds'\nset xtics ('p50' 0, 'p90' 1, 'p99' 2, 'p99.9' 3, 'max' 4)\nplot ", plotdir);
	*have = ns ? 1 : 0;
	ns = 0;
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		if (r->sc != SC_LATENCY || !r->samples)
			continue;
		fprintf(d, "# %s\n0 %g\n1 %g\n2 %g\n3 %g\n4 %g\n\n\n", r->sys->name, r->p50, r->p90, r->p99,
			r->p999, r->max);
		fprintf(g, "%s'%s/lat.dat' index %u with linespoints lw 2 title '%s'", ns ? ", " : "", tmp, ns,
			r->sys->name);
		ns++;
	}
	fputs(ns ? "\n" : "", g);
	fclose(d);

	/* 2. throughput against workers. */
	snprintf(path, sizeof(path), "%s/work.dat", tmp);
	d = fopen(path, "w");
	ns = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned k;

		if (rs[i].sc != SC_WORKERS)
			continue;
		for (k = 0; k < ns && strcmp(sysn[k], rs[i].sys->name); k++)
			;
		if (k == ns && ns < 16)
			sysn[ns++] = rs[i].sys->name;
	}
	if (ns) {
		*have |= 2;
		fprintf(g, "set output '%s/throughput-workers.png'\nset title 'end-to-end throughput, 1 producer, 64 B'\n"
			"set xlabel 'worker processes'\nset ylabel 'tasks/s'\nset logscale xy\nset xtics auto\nplot ", plotdir);
	}
	for (unsigned k = 0; k < ns; k++) {
		fprintf(d, "# %s\n", sysn[k]);
		for (size_t i = 0; i < n; i++)
			if (rs[i].sc == SC_WORKERS && !strcmp(rs[i].sys->name, sysn[k]) && rs[i].tasks_per_s > 0)
				fprintf(d, "%u %g\n", rs[i].workers, rs[i].tasks_per_s);
		fputs("\n\n", d);
		fprintf(g, "%s'%s/work.dat' index %u with linespoints lw 2 title '%s'", k ? ", " : "", tmp, k, sysn[k]);
	}
	fputs(ns ? "\n" : "", g);
	fclose(d);

	/* 3. per-level p99. */
	snprintf(path, sizeof(path), "%s/lvl.dat", tmp);
	d = fopen(path, "w");
	ns = 0;
	for (size_t i = 0; i < n && !ns; i++)
		if (rs[i].sc == SC_PRIORITY && rs[i].nlvl)
			ns = 1;
	if (ns) {
		*have |= 4;
		fprintf(g, "unset logscale\nset output '%s/priority-levels.png'\nset title 'p99 submit -> start latency by level, 8 levels loaded'\n"
			"set xlabel 'level (0 = most urgent)'\nset ylabel 'p99 microseconds'\nset logscale y\nplot ", plotdir);
	}
	ns = 0;
	for (size_t i = 0; i < n; i++) {
		const struct result *r = &rs[i];

		if (r->sc != SC_PRIORITY || !r->nlvl)
			continue;
		fprintf(d, "# %s %s\n", r->sys->name, policy_name(r->policy));
		for (unsigned l = 0; l < r->nlvl; l++)
			if (r->lvl[l].samples)
				fprintf(d, "%u %g\n", l, r->lvl[l].p99);
		fputs("\n\n", d);
		fprintf(g, "%s'%s/lvl.dat' index %u with linespoints lw 2 title '%s %s'", ns ? ", " : "", tmp, ns,
			r->sys->name, policy_name(r->policy));
		ns++;
	}
	fputs(ns ? "\n" : "", g);
	fclose(d);
	fclose(g);
	snprintf(cmd, sizeof(cmd), "gnuplot '%s/plot.gp' 2>'%s/err'", tmp, tmp);
	rc = system(cmd);
	if (rc != 0) {
		snprintf(cmd, sizeof(cmd), "head -c 300 '%s/err'", tmp);
		snprintf(why, whysize, "gnuplot failed (status %d)", rc);
		if (system(cmd) != 0)
			why[0] = why[0];
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "tq-bench report: could not remove %s\n", tmp);
	return rc == 0 ? 0 : -1;
}

int report_main(int argc, char **argv, const char *self)
{
	const char *out = "docs";
	int lng = 0, max = (int)NCMD, secmask = 7;
	struct collect c = { 0 };
	size_t start[NCMD + 1];
	char path[512], when[64], why[512] = "", versions[2048] = "";
	time_t now = time(NULL);
	uint64_t t0 = bench_now();
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--long"))
			lng = 1;
		else if (!strcmp(argv[i], "--short"))
			lng = 0;
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--first") && i + 1 < argc)
			max = atoi(argv[++i]);   /* run only the first N commands (testing) */
		else if (!strcmp(argv[i], "--sections") && i + 1 < argc) {
			const char *l = argv[++i];

			/* Only these sections' commands (runs, durability, recovery). */
			secmask = (strstr(l, "runs") ? 1 << SEC_RUNS : 0) |
				  (strstr(l, "durability") ? 1 << SEC_DURABILITY : 0) |
				  (strstr(l, "recovery") ? 1 << SEC_RECOVERY : 0);
			if (!secmask)
				die("--sections: runs, durability, recovery (comma-separated)");
		} else
			die("usage: tq-bench report [--short|--long] [--out DIR] [--sections LIST]");
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	for (size_t k = 0; k < NCMD && (int)k < max && !g_stop; k++) {
		char buf[512], *av[64], *save = NULL;
		int ac = 0;
		struct opts o;

		start[k] = start[k + 1] = c.n;
		if (!(secmask & (1 << suite[k].section)))
			continue;
		snprintf(buf, sizeof(buf), "%s", lng ? suite[k].args_long : suite[k].args_short);
		av[ac++] = (char *)self;
		for (char *t = strtok_r(buf, " ", &save); t && ac < 63; t = strtok_r(NULL, " ", &save))
			av[ac++] = t;
		av[ac] = NULL;
		parse_opts(ac, av, &o);
		printf("## %s\n", suite[k].what);
		print_header(&o);
		start[k] = c.n;
		run_suite(&o, collect_cb, &c);
		start[k + 1] = c.n;
	}
	if (g_stop)
		return 128 + g_stop;
	for (size_t i = 0; i < c.n; i++) {
		if (strstr(versions, c.r[i].sys->name) == NULL && strlen(versions) < sizeof(versions) - 200) {
			size_t l = strlen(versions);
			snprintf(versions + l, sizeof(versions) - l, "- %s: %s\n", c.r[i].sys->name, c.r[i].version);
		}
	}
	mkdir(out, 0755);
	snprintf(path, sizeof(path), "%s/plots", out);
	int which = 0;
	int have_plots = plots(path, c.r, c.n, why, sizeof(why), &which) == 0 && which;
	snprintf(path, sizeof(path), "%s/PERFORMANCE.md", out);
	if (!(f = fopen(path, "w")))
		die("%s: %s", path, strerror(errno));
	fprintf(f, "# tq performance\n\n"
		"Written by `tq-bench report%s` on %s, in %.0f s, on this machine:\n\n"
		"- CPU: %ld x %s\n- kernel: Linux %s\n- compiler: %s\n\n"
		"Versions:\n\n%s\n"
		"Every figure below is from that one run: read them as ratios between systems on one "
		"machine at one time, not as absolute numbers. Short mode: small task counts, so the "
		"fast systems' rates are noisy (a run of tq at 100k tasks lasts tens of milliseconds). "
		"Latency is submit -> start (the producer's clock before the submit call to the "
		"worker's clock after the lease returned), in microseconds, from HDR histograms. "
		"redis (BRPOP) delivers at most once, with no lease; beanstalkd has leases (TTR) like tq. "
		"tq-spin is tq with workers that poll for 1 ms (`tq_lease_opts.spin_us`) before sleeping "
		"on the futex, where tq's default spins at most 20 us: no wake-up in its latency, a busy "
		"CPU between tasks instead.\n\n",
		lng ? " --long" : " --short", when, (double)(bench_now() - t0) / 1e9, g_nproc,
		g_machine_model, g_kernel, compiler(), versions);
	/* The depth goal reads the repeated command's rows; without them
	 * (--first, --sections), whatever depth rows there are, N said. */
	const struct result *drs = c.r;
	size_t dn = c.n;

	for (size_t k = 0; k < NCMD && (int)k < max; k++)
		if (suite[k].depth_goal && (secmask & (1 << suite[k].section)) &&
		    start[k + 1] > start[k]) {
			drs = c.r + start[k];
			dn = start[k + 1] - start[k];
		}
	goals(f, c.r, c.n, drs, dn);
	if (have_plots) {
		fputs("## Plots\n\n", f);
		if (which & 1)
			fputs("![latency percentiles](plots/latency-percentiles.png)\n\n", f);
		if (which & 2)
			fputs("![throughput against workers](plots/throughput-workers.png)\n\n", f);
		if (which & 4)
			fputs("![per-level latency](plots/priority-levels.png)\n\n", f);
	} else {
		fprintf(f, "## Plots\n\nNone: %s.\n\n", why[0] ? why : "no data");
	}
	static const char *const sec_head[] = {
		"## Runs\n\n",
		"## Durability\n\n"
		"tq's journal (`tqd --journal DIR --durability none|async|sync`), end to end: producers "
		"submit in batches, one worker leases and acks, `tqd` supervises (flushes every 10 ms in "
		"async, prepares files, checkpoints). The journal is in a private directory made under "
		"`--journal-dir` (default `$TMPDIR`, else `/var/tmp`: the row says which and its file "
		"system; it must be a disk, not tmpfs). The latency columns are the submit call's: in sync "
		"mode, the wait for the group commit's fdatasync. tasks/s is end to end (acks); `submit` is "
		"the rate at which tasks became durable (sync) or accepted. beanstalkd runs with its binlog "
		"(`-b`, default fsync policy) and with `-f0` (fsync after every write), one put per call; "
		"its latency is the put's round trip.\n\n",
		"## Recovery\n\n"
		"Recovery: N tasks (64 B, over 8 levels) pending in a journaled segment, flushed; the "
		"segment is removed (a reboot); then the time from starting `tqd --create --journal DIR` "
		"until `tq_attach()` succeeds and `tq_stats()` shows all N pending. Cold: the journal's "
		"pages dropped from the page cache first (fdatasync, `posix_fadvise(DONTNEED)`, checked "
		"with mincore). `tq_create` rows: the same replay in the harness's own process, without "
		"starting a program. Failover: `tqd` (its default 10 ms repair pass) supervises a segment; "
		"a worker leases a batch and is SIGKILLed (and reaped, as its parent would); the time from "
		"the kill until every task of the batch is PENDING again (tq_get polled every 50 us), at "
		"a random phase of tqd's interval each time; latency columns in microseconds.\n\n",
	};
	for (int sec = SEC_RUNS; sec <= SEC_RECOVERY; sec++) {
		int any = 0;

		for (size_t k = 0; k < NCMD && (int)k < max; k++) {
			if (suite[k].section != sec || !(secmask & (1 << sec)))
				continue;
			if (!any++)
				fputs(sec_head[sec], f);
			fprintf(f, "### %s\n\n```sh\nbuild/bench/tq-bench %s\n```\n\n", suite[k].what,
				lng ? suite[k].args_long : suite[k].args_short);
			table(f, c.r + start[k], start[k + 1] - start[k]);
			if (sec == SEC_DURABILITY) {
				durable_summary(f, c.r + start[k], start[k + 1] - start[k], 1);
				fputc('\n', f);
			}
		}
	}
	fclose(f);
	printf("tq-bench report: wrote %s%s\n", path, have_plots ? " and plots" : "");
	free(c.r);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * output.c - tq-bench's output: one table row or one JSON line per result,
 * and the ratios of tq to every other system of the same group.
 */
#include "driver.h"

#include <inttypes.h>
#include <stdlib.h>

#ifndef BENCH_BUILDTYPE
#define BENCH_BUILDTYPE "unknown"
#endif
#ifndef BENCH_SANITIZE
#define BENCH_SANITIZE "none"
#endif

/* ---- output ------------------------------------------------------------ */

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v, int valid)
{
	if (valid && v == v)
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

/* Durable rows: what the row is, the submit rate, the journal's figures. */
void durable_extra(const struct result *res, char *b, size_t n)
{
	int k = snprintf(b, n, "%s, batch %u", bench_is_tq(res->sys) ?
			 durability_name(res->durability) : "binlog", res->batch);

	if (k > 0 && (size_t)k < n && res->submit_per_s > 0)
		k += snprintf(b + k, n - (size_t)k, "; submit %.0f/s", res->submit_per_s);
	if (k > 0 && (size_t)k < n && res->jst.valid)
		k += snprintf(b + k, n - (size_t)k, "; journal %" PRIu64 " flushes, %.1f MiB, %" PRIu64
			      " records, %" PRIu64 " checkpoints%s", res->jst.flushes,
			      (double)res->jst.bytes / 1048576.0, res->jst.records, res->jst.checkpoints,
			      res->jst.errors ? ", ERRORS" : "");
	if (k > 0 && (size_t)k < n)
		snprintf(b + k, n - (size_t)k, "; latency = submit call; ");
}

const char *policy_name(unsigned p)
{
	return p == 1 ? "weighted" : "strict";
}

void print_json(FILE *f, const struct opts *o, const struct result *res)
{
	int lat = res->samples > 0;

	fputs("{\"system\":", f);
	json_string(f, res->sys->name);
	fputs(",\"system_version\":", f);
	json_string(f, res->version);
	fputs(",\"scenario\":", f);
	json_string(f, scenario_name[res->sc]);
	if (res->op) {
		fputs(",\"op\":", f);
		json_string(f, res->op);
	}
	fputs(",\"status\":", f);
	json_string(f, res->status);
	fprintf(f, ",\"tasks\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"payload\":%u,\"producers\":%u,"
		"\"workers\":%u,\"prefill\":%" PRIu64 ",\"batch\":%u,\"queues\":%u,\"levels\":%u,"
		"\"policy\":\"%s\",\"pinned\":%s,\"rate\":",
		res->tasks, res->warmup, res->payload, res->producers, res->workers, res->prefill,
		res->batch, res->queues, res->levels, policy_name(res->policy),
		o->pin ? "true" : "false");
	json_num(f, res->rate, res->rate > 0);
	/* tq, tq-spin: the workers' lease spin_us (0 = adaptive); null for
	 * the other systems and for rows that lease no other way (ops). */
	fputs(",\"spin_us\":", f);
	json_num(f, res->spin_us, res->spin_valid);
	fputs(",\"tasks_per_s\":", f);
	json_num(f, res->tasks_per_s, res->tasks_per_s > 0);
	fputs(",\"submit_per_s\":", f);
	json_num(f, res->submit_per_s, res->submit_per_s > 0);
	fputs(",\"drain_s\":", f);
	json_num(f, res->drain_s, res->sc == SC_BURST && res->drain_s > 0);
	fputs(",\"elapsed_s\":", f);
	json_num(f, res->elapsed_s, res->elapsed_s > 0);
	fputs(",\"cpu_us_per_task\":", f);
	json_num(f, res->cpu_us_per_task, res->cpu_us_per_task > 0);
	fputs(",\"csw_per_task\":", f);
	json_num(f, res->csw_per_task, res->cpu_us_per_task > 0);
	fputs(",\"latency_us\":{\"samples\":", f);
	fprintf(f, "%" PRIu64, res->samples);
	fputs(",\"p50\":", f);
	json_num(f, res->p50, lat);
	fputs(",\"p90\":", f);
	json_num(f, res->p90, lat);
	fputs(",\"p99\":", f);
	json_num(f, res->p99, lat);
	fputs(",\"p999\":", f);
	json_num(f, res->p999, lat);
	fputs(",\"max\":", f);
	json_num(f, res->max, lat);
	fputs(",\"mean\":", f);
	json_num(f, res->mean, lat);
	fputs("},\"bytes_per_task\":", f);
	json_num(f, res->fp.valid ? (double)res->fp.resident / (double)res->fp.k : 0, res->fp.valid);
	fputs(",\"bytes_per_task_marginal\":", f);
	json_num(f, res->fp.valid ? ((double)res->fp.resident - (double)res->fp.empty) / (double)res->fp.k : 0,
		 res->fp.valid);
	fputs(",\"bytes_measure\":", f);
	if (res->fp.valid) {
		fprintf(f, "{\"tasks_held\":%" PRIu64 ",\"resident\":%" PRIu64 ",\"resident_empty\":%" PRIu64
			",\"object_size\":%" PRIu64 ",\"method\":",
			res->fp.k, res->fp.resident, res->fp.empty, res->fp.size);
		json_string(f, res->fp.method ? res->fp.method : "");
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	if (res->race)
		fprintf(f, ",\"duplicates\":%" PRIu64 ",\"losses\":%" PRIu64 ",\"left_pending\":%" PRIu64
			",\"corrupt\":%" PRIu64, res->dups, res->losses, res->leftover, res->corrupt);
	else
		fputs(",\"duplicates\":null,\"losses\":null", f);
	if (res->nlvl) {
		fputs(",\"levels_latency_us\":[", f);
		for (unsigned l = 0; l < res->nlvl; l++) {
			const struct lvl_lat *ll = &res->lvl[l];
			int v = ll->samples > 0;

			fprintf(f, "%s{\"level\":%u,\"samples\":%" PRIu64 ",\"p50\":", l ? "," : "", l,
				ll->samples);
			json_num(f, ll->p50, v);
			fputs(",\"p90\":", f);
			json_num(f, ll->p90, v);
			fputs(",\"p99\":", f);
			json_num(f, ll->p99, v);
			fputs(",\"p999\":", f);
			json_num(f, ll->p999, v);
			fputs(",\"max\":", f);
			json_num(f, ll->max, v);
			fputc('}', f);
		}
		fputc(']', f);
	}
	if (res->durable) {
		fprintf(f, ",\"durability\":\"%s\",\"submit_latency_us\":true", durability_name(res->durability));
		if (res->jst.valid)
			fprintf(f, ",\"journal\":{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"flushes\":%"
				PRIu64 ",\"checkpoints\":%" PRIu64 ",\"files\":%" PRIu64 ",\"errors\":%" PRIu64 "}",
				res->jst.records, res->jst.bytes, res->jst.flushes, res->jst.checkpoints,
				res->jst.files, res->jst.errors);
	}
	if (res->mem_valid)
		fprintf(f, ",\"memory_kb\":{\"samples\":%" PRIu64 ",\"producer_max\":%" PRIu64
			",\"worker_max\":%" PRIu64 ",\"server_max\":%" PRIu64 ",\"total_peak\":%" PRIu64 "}",
			res->mem_samples, res->rss_producer_kb, res->rss_worker_kb, res->rss_server_kb,
			res->rss_total_kb);
	fputs(",\"note\":", f);
	json_string(f, res->note);
	fprintf(f, ",\"machine\":{\"nproc\":%ld,\"model\":", g_nproc);
	json_string(f, g_machine_model);
	fputs(",\"kernel\":", f);
	json_string(f, g_kernel);
	fputs("},\"build\":{\"compiler\":", f);
	json_string(f, compiler());
	fputs(",\"buildtype\":", f);
	json_string(f, BENCH_BUILDTYPE);
	fputs(",\"sanitize\":", f);
	json_string(f, BENCH_SANITIZE);
	fputs("}}\n", f);
	fflush(f);
}

static void fmt_us(char *b, size_t n, double v, int valid)
{
	if (!valid)
		snprintf(b, n, "-");
	else if (v < 100)
		snprintf(b, n, "%.2f", v);
	else if (v < 10000)
		snprintf(b, n, "%.1f", v);
	else
		snprintf(b, n, "%.0f", v);
}

void print_header(const struct opts *o)
{
	printf("# tq-bench on %ld x %s, Linux %s; %s, %s, sanitize %s%s\n", g_nproc,
	       g_machine_model, g_kernel, compiler(), BENCH_BUILDTYPE, BENCH_SANITIZE,
	       o->pin ? "; pinned" : "");
	printf("%-19s %-10s %3s %3s %9s %7s %8s %12s %8s %8s %8s %8s %9s %7s %8s  %s\n", "system",
	       "scenario", "P", "W", "tasks", "payload", "prefill", "tasks/s", "p50 us", "p90 us",
	       "p99 us", "p99.9 us", "max us", "B/task", "cpu us/t", "status / note");
	fflush(stdout);
}

void print_row(const struct result *res)
{
	char p50[16], p90[16], p99[16], p999[16], mx[16], bpt[16], tps[24], cpu[24];
	int lat = res->samples > 0;

	fmt_us(p50, sizeof(p50), res->p50, lat);
	fmt_us(p90, sizeof(p90), res->p90, lat);
	fmt_us(p99, sizeof(p99), res->p99, lat);
	fmt_us(p999, sizeof(p999), res->p999, lat);
	fmt_us(mx, sizeof(mx), res->max, lat);
	if (res->fp.valid)
		snprintf(bpt, sizeof(bpt), "%.0f", (double)res->fp.resident / (double)res->fp.k);
	else
		snprintf(bpt, sizeof(bpt), "-");
	if (res->tasks_per_s > 0)
		snprintf(tps, sizeof(tps), "%.0f", res->tasks_per_s);
	else
		snprintf(tps, sizeof(tps), "-");
	if (res->cpu_us_per_task > 0)
		snprintf(cpu, sizeof(cpu), "%.3f", res->cpu_us_per_task);
	else
		snprintf(cpu, sizeof(cpu), "-");
	char extra[300] = "";
	if (res->durable)
		durable_extra(res, extra, sizeof(extra));
	else if (res->op)
		snprintf(extra, sizeof(extra), "op %s; ", res->op);
	else if (res->sc == SC_PRIORITY)
		snprintf(extra, sizeof(extra), "%u levels, %s; ", res->levels, policy_name(res->policy));
	else if (res->sc == SC_BURST && res->drain_s > 0)
		snprintf(extra, sizeof(extra), "drained in %.2f ms; ", res->drain_s * 1e3);
	else if (res->sc == SC_SUBMIT && res->submit_per_s > 0)
		snprintf(extra, sizeof(extra), "submit %.0f/s; ", res->submit_per_s);
	else if (res->sc == SC_SUSTAINED && res->mem_valid)
		snprintf(extra, sizeof(extra), "rate %.0f/s; RSS KiB max producer %" PRIu64 " worker %" PRIu64
			 " server %" PRIu64 " total %" PRIu64 "; ", res->rate, res->rss_producer_kb,
			 res->rss_worker_kb, res->rss_server_kb, res->rss_total_kb);
	printf("%-19s %-10s %3u %3u %9" PRIu64 " %7u %8" PRIu64 " %12s %8s %8s %8s %8s %9s %7s %8s  %s%s%s%s\n",
	       res->sys->name, scenario_name[res->sc], res->producers, res->workers, res->tasks,
	       res->payload, res->prefill, tps, p50, p90, p99, p999, mx, bpt, cpu, extra, res->status,
	       res->note[0] ? ": " : "", res->note);
	for (unsigned l = 0; l < res->nlvl; l++) {
		const struct lvl_lat *ll = &res->lvl[l];
		char a[16], b[16], c[16];

		fmt_us(a, sizeof(a), ll->p50, ll->samples > 0);
		fmt_us(b, sizeof(b), ll->p99, ll->samples > 0);
		fmt_us(c, sizeof(c), ll->max, ll->samples > 0);
		printf("    level %2u: %8" PRIu64 " samples  p50 %s us  p99 %s us  max %s us\n", l,
		       ll->samples, a, b, c);
	}
	fflush(stdout);
}

/* Ratios of tq to each baseline that ran in the same group. */
void print_ratios(const struct result *rs, unsigned n)
{
	const struct result *t = NULL;

	for (unsigned i = 0; i < n; i++)
		if (rs[i].sys == &bench_sys_tq && strcmp(rs[i].status, "ok") == 0)
			t = &rs[i];
	if (!t || n < 2)
		return;
	for (unsigned i = 0; i < n; i++) {
		const struct result *b = &rs[i];

		if (b == t || strcmp(b->status, "ok") != 0)
			continue;
		printf("  tq / %-9s", b->sys->name);
		if (t->tasks_per_s > 0 && b->tasks_per_s > 0)
			printf("  tasks/s x%.2f", t->tasks_per_s / b->tasks_per_s);
		if (t->samples && b->samples && b->p50 > 0)
			printf("  p50 x%.2f  p99 x%.2f", t->p50 / b->p50, b->p99 > 0 ? t->p99 / b->p99 : 0);
		if (t->fp.valid && b->fp.valid)
			printf("  B/task x%.2f", ((double)t->fp.resident / (double)t->fp.k) /
			       ((double)b->fp.resident / (double)b->fp.k));
		putchar('\n');
	}
	fflush(stdout);
}
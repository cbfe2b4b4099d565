/* SPDX-License-Identifier: MIT */
/*
 * driver.h - private to tq-bench's driver (tq-bench.c, run.c, output.c,
 * ops.c, report.c): options, one result row, and what they share. The
 * systems under test see only bench.h.
 */
#ifndef TQ_BENCH_DRIVER_H
#define TQ_BENCH_DRIVER_H

#include "bench.h"

#include <signal.h>
#include <stdio.h>

#define LIST_MAX 16

struct opts {
	unsigned scen_list[SC_COUNT * 2], nscen;
	unsigned sys_list[32], nsys;
	unsigned producers, workers;
	uint64_t tasks;           /* 0 = per-scenario default */
	uint32_t payload;
	uint64_t prefill;
	double rate;
	unsigned batch, queues, levels;
	int levels_set;
	unsigned policy;
	int64_t warmup, sample;   /* -1 = per-scenario default */
	int pin, json, touch, spin_pace;
	double duration;
	unsigned race_workers, race_producers;
	uint64_t race_tasks;
	int64_t bpt_tasks;        /* -1 = default */
	uint64_t spin_ns;
	uint32_t spin_us;         /* --spin-us: tq workers' lease spin_us */
	int spin_us_set;          /* given: tq-spin uses it, not BENCH_TQ_SPIN_US */
	int tq_spin_named;        /* tq-spin named in --system, not only through all */
	uint32_t capacity, ring_slots;
	long mq_maxmsg;
	unsigned repeat;
	/* Sweeps of the scenario families (0 entries = the family's default). */
	uint64_t payload_list[LIST_MAX]; unsigned npayload;
	uint64_t workers_list[LIST_MAX]; unsigned nworkers;
	uint64_t depth_list[LIST_MAX]; unsigned ndepth;
	uint64_t clients_list[LIST_MAX]; unsigned nclients;
	double sustain;           /* sustained: seconds (default 10) */
	uint64_t burst;           /* burst: tasks (default 10000) */
	uint64_t ops_rounds;      /* ops: rounds (default 20000) */
	/* durable, recovery, failover */
	unsigned dur_list[3], ndur; /* durable: enum tq_durability values (default all) */
	uint32_t flush_ms;        /* async flush period, 0 = libtq's default (10 ms) */
	const char *journal_dir;  /* where journals' temporary directories go */
	const char *tqd;          /* the tqd program */
	int no_cold;              /* recovery: skip the cold-cache runs */
	unsigned failover_reps;   /* failover: kills (default 200) */
	int tasks_set;
};

#define LVL_MAX 64
struct lvl_lat {
	uint64_t samples;
	double p50, p90, p99, p999, max;
};

struct result {
	const struct bench_sys *sys;
	char version[128];
	enum scenario sc;
	const char *status;      /* ok, error, timeout, unsupported, failed, interrupted */
	int spin_valid;          /* the row's workers leased with spin_us (tq, tq-spin) */
	uint32_t spin_us;        /* their tq_lease_opts.spin_us, 0 = adaptive */
	const char *op;          /* ops: the operation, else NULL */
	unsigned producers, workers, batch, queues, levels, policy;
	uint64_t tasks, warmup, prefill;
	uint32_t payload;
	double rate;
	double tasks_per_s, submit_per_s, elapsed_s;
	double drain_s;          /* burst: first submit to last ack */
	double cpu_us_per_task;  /* user + system time of all children / tasks handled */
	double csw_per_task;     /* their context switches / tasks handled */
	uint64_t samples;
	double p50, p90, p99, p999, max, mean;   /* microseconds */
	struct footprint fp;
	int race;
	uint64_t dups, losses, leftover, corrupt;
	unsigned nlvl;           /* priority: per-level latency */
	struct lvl_lat lvl[LVL_MAX];
	int mem_valid;           /* sustained: peak VmRSS in KiB */
	uint64_t mem_samples, rss_producer_kb, rss_worker_kb, rss_server_kb, rss_total_kb;
	/* durable: durability, submit calls' latency in p50..max, the journal */
	int durable;
	unsigned durability;
	struct bench_jstat jst;
	char note[1024];
};

extern volatile sig_atomic_t g_stop;
extern char g_machine_model[256];
extern char g_kernel[128];
extern long g_nproc;
extern const char *const scenario_name[SC_COUNT];
extern const struct bench_sys *const systems[];
extern const unsigned nsystems;

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
const char *compiler(void);
void add_note(struct result *res, const char *s);
void read_machine(void);

/* run.c */
void run_one(const struct opts *o, const struct bench_sys *sys, enum scenario sc,
	     unsigned seq, struct result *res);
/* ops.c: the ops scenario on sys; fills up to max rows, returns how many. */
unsigned run_ops(const struct opts *o, const struct bench_sys *sys, struct result *res, unsigned max);

/* durable.c: the recovery and failover scenarios on sys (one row per
 * variant, up to max); the durable scenario's summary line. */
unsigned run_recovery(const struct opts *o, const struct bench_sys *sys, struct result *res, unsigned max);
unsigned run_failover(const struct opts *o, const struct bench_sys *sys, struct result *res, unsigned max);
const char *durability_name(unsigned d);
void durable_summary(FILE *f, const struct result *rs, size_t n, int markdown);

/* output.c */
void print_json(FILE *f, const struct opts *o, const struct result *res);
void print_header(const struct opts *o);
void print_row(const struct result *res);
void print_ratios(const struct result *rs, unsigned n);
const char *policy_name(unsigned p);
void durable_extra(const struct result *res, char *b, size_t n);

/* tq-bench.c: every run of the scenarios in o, results appended by cb. */
typedef void (*result_cb)(const struct opts *o, const struct result *res, void *arg);
unsigned run_suite(const struct opts *o, result_cb cb, void *arg);
void parse_opts(int argc, char **argv, struct opts *o);

/* report.c */
int report_main(int argc, char **argv, const char *self);

#endif /* TQ_BENCH_DRIVER_H */

/* SPDX-License-Identifier: MIT */
/*
 * test-schedule - periodic tasks: tq_schedule_set/remove/list and their
 * errors; ticks fired by the supervisor's tq_tick() only; exactly one task
 * per tick while supervisors are SIGKILLed at random moments and replaced
 * (every tick's task is distinct, none is lost: the schedule's count equals
 * the tasks in the queue); schedules survive a reboot through the journal.
 */
#include "tq-test.h"

#define P_MS 20ull

static struct tq_schedule sched(const char *name, const char *spec, int q)
{
	struct tq_schedule s;
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "%s", name);
	snprintf(s.spec, sizeof s.spec, "%s", spec);
	s.queue = q;
	s.payload = "tick";
	s.len = 4;
	s.type = 9;
	return s;
}

static void test_api(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "s", NULL));
	struct tq_schedule s = sched("nightly", "0 3 * * *", q);
	struct tq_schedule_info info[TQ_SCHEDULES_MAX + 1];

	CHECK_RET(tq_schedule_list(t, info, TQ_SCHEDULES_MAX), 0);
	int i = CHECK_OK(tq_schedule_set(t, &s));
	CHECK_RET(tq_schedule_list(t, info, TQ_SCHEDULES_MAX), 1);
	CHECK(strcmp(info[0].name, "nightly") == 0);
	CHECK(strcmp(info[0].spec, "0 3 * * *") == 0);
	CHECK_GT(info[0].next_ns, tq_now_ns());
	CHECK_LE(info[0].next_ns, tq_now_ns() + 86400ull * 1000000000ull);
	CHECK_EQ(info[0].next_ns % (86400ull * 1000000000ull), 3 * 3600ull * 1000000000ull);
	CHECK_EQU(info[0].fired, 0);
	CHECK_EQ(info[0].len, 4);
	/* Replacing keeps one entry. */
	snprintf(s.spec, sizeof s.spec, "@every 1h");
	CHECK_GE(tq_schedule_set(t, &s), 0);
	CHECK_RET(tq_schedule_list(t, info, TQ_SCHEDULES_MAX), 1);
	CHECK(strcmp(info[0].spec, "@every 1h") == 0);
	(void)i;

	/* Errors. */
	struct tq_schedule bad = sched("x", "61 * * * *", q);
	CHECK_ERR(tq_schedule_set(t, &bad), -EINVAL);
	CHECK(strstr(tq_last_error(t), "61") != NULL);
	bad = sched("x", "0 0 31 2 *", q);       /* 31 February: never */
	CHECK_ERR(tq_schedule_set(t, &bad), -EINVAL);
	bad = sched("bad name", "@hourly", q);
	CHECK_ERR(tq_schedule_set(t, &bad), -EINVAL);
	bad = sched("", "@hourly", q);
	CHECK_ERR(tq_schedule_set(t, &bad), -EINVAL);
	bad = sched("x", "@hourly", 77);
	CHECK_ERR(tq_schedule_set(t, &bad), -ENOENT);
	bad = sched("x", "@hourly", q);
	bad.level = 99;
	CHECK_ERR(tq_schedule_set(t, &bad), -EINVAL);
	static char big[TQ_SCHEDULE_PAYLOAD_MAX + 1];
	bad = sched("x", "@hourly", q);
	bad.payload = big;
	bad.len = sizeof big;
	CHECK_ERR(tq_schedule_set(t, &bad), -EMSGSIZE);
	CHECK_ERR(tq_schedule_set(t, NULL), -EINVAL);
	CHECK_ERR(tq_schedule_remove(t, "nope"), -ENOENT);
	/* Full table. */
	for (int k = 1; k < TQ_SCHEDULES_MAX; k++) {
		char n[16];
		snprintf(n, sizeof n, "s%d", k);
		s = sched(n, "@daily", q);
		CHECK_GE(tq_schedule_set(t, &s), 0);
	}
	s = sched("one-more", "@daily", q);
	CHECK_ERR(tq_schedule_set(t, &s), -ENOSPC);
	CHECK_RET(tq_schedule_list(t, info, TQ_SCHEDULES_MAX + 1), TQ_SCHEDULES_MAX);
	CHECK_RET(tq_schedule_remove(t, "nightly"), 0);
	CHECK_RET(tq_schedule_list(t, info, TQ_SCHEDULES_MAX + 1), TQ_SCHEDULES_MAX - 1);
	/* Nothing fires without a supervisor, or before its tick. */
	CHECK_RET(tq_tick(t), 0);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.submitted, 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

/* A supervisor firing ticks every 20 ms, as tqd does. */
static TQT_NORETURN void supervisor(const char *name)
{
	tq *t = tqt_attach(name);
	if (tq_supervisor_acquire(t, 5000) < 0)
		_exit(4);
	for (;;) {
		tq_recover(t, NULL);
		tq_tick(t);
		usleep(500);
	}
}

static void test_takeover(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config c = tqt_small_config();
	c.capacity = 8192;
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "ticks", NULL));
	char spec[32];
	snprintf(spec, sizeof spec, "@every %llums", P_MS);
	struct tq_schedule s = sched("fast", spec, q);
	CHECK_GE(tq_schedule_set(t, &s), 0);

	unsigned seed = (unsigned)getpid(), kills = 0;
	uint64_t t0 = tq_now_ns();
	pid_t pid = tqt_fork();
	if (pid == 0)
		supervisor(name);
	while (kills < 60) {
		tqt_sleep_ms((unsigned)(rand_r(&seed) % 40));
		/* SIGKILL at a random moment, a new supervisor takes over. */
		kill(pid, SIGKILL);
		tqt_wait_pid(pid, 10000, NULL);
		kills++;
		pid = tqt_fork();
		if (pid == 0)
			supervisor(name);
	}
	tqt_sleep_ms(100);
	kill(pid, SIGKILL);
	tqt_wait_pid(pid, 10000, NULL);
	/* Settle what the last one left: become supervisor and tick until
	 * three more ticks have fired (bounded: ticks go on once a
	 * supervisor stays). */
	CHECK_RET(tq_recover(t, NULL) >= 0, 1);
	CHECK_RET(tq_supervisor_acquire(t, 5000), 0);
	struct tq_schedule_info info[1];
	CHECK_RET(tq_schedule_list(t, info, 1), 1);
	uint64_t before = info[0].fired;
	for (int k = 0; k < 1000 && info[0].fired < before + 3; k++) {
		tq_tick(t);
		tqt_sleep_ms(5);
		CHECK_RET(tq_schedule_list(t, info, 1), 1);
	}
	CHECKF(info[0].fired >= before + 3, "ticks stopped: %llu fired",
	       (unsigned long long)info[0].fired);
	uint64_t t1 = tq_now_ns();
	/* Every task: one per tick, none twice. */
	static uint64_t ticks[8192];
	unsigned n = 0;
	for (;;) {
		struct tq_task task;
		int r = tq_lease(t, NULL, &task, 1);
		if (r == -EAGAIN)
			break;
		CHECK_RET(r, 1);
		CHECK_EQ(task.type, 9);
		CHECK(task.len == 4 && memcmp(task.payload, "tick", 4) == 0);
		/* Its submit time is its tick: a multiple of the period. */
		CHECKF(task.submitted_ns % (P_MS * 1000000ull) == 0, "task %llu submitted at %llu, "
		       "not on a tick", (unsigned long long)task.id,
		       (unsigned long long)task.submitted_ns);
		ticks[n++] = task.submitted_ns / (P_MS * 1000000ull);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = a + 1; b < n; b++)
			CHECKF(ticks[a] != ticks[b], "tick %llu fired twice", (unsigned long long)ticks[a]);
	CHECKF(n == info[0].fired, "%u tasks for %llu ticks fired", n,
	       (unsigned long long)info[0].fired);
	/* How many of the ticks in the time fired depends on how long the
	 * supervisors took to start: reported, not asserted. */
	uint64_t span = (t1 - t0) / (P_MS * 1000000ull);
	TQT_LOG("%u kills: %u ticks fired of %llu in the time, none twice", kills, n,
		(unsigned long long)span);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_journal(void)
{
	char name[TQ_NAME_MAX + 1], dir[PATH_MAX / 16];
	struct tq_config c = tqt_small_config();
	snprintf(c.journal_dir, sizeof c.journal_dir, "%s", tqt_tmpdir(dir));
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "j", NULL));
	struct tq_schedule s = sched("hourly", "@hourly", q);
	s.level = 2;
	CHECK_GE(tq_schedule_set(t, &s), 0);
	s = sched("gone", "@daily", q);
	CHECK_GE(tq_schedule_set(t, &s), 0);
	CHECK_RET(tq_schedule_remove(t, "gone"), 0);
	struct tq_schedule_info a[4], b[4];
	CHECK_RET(tq_schedule_list(t, a, 4), 1);
	/* A checkpoint rewrites it; then a reboot. */
	CHECK_GE(tq_journal_checkpoint(t), 0);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	t = NULL;
	CHECK_RET(tq_create(name, &c, &t), 0);
	CHECK_RET(tq_schedule_list(t, b, 4), 1);
	CHECK(strcmp(b[0].name, "hourly") == 0);
	CHECK(strcmp(b[0].spec, "@hourly") == 0);
	CHECK_EQ(b[0].level, 2);
	CHECK_EQ(b[0].len, 4);
	CHECK_EQU(b[0].next_ns, a[0].next_ns);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("schedule");
	tqt_guard(170);
	test_api();
	test_takeover();
	test_journal();
	return 0;
}

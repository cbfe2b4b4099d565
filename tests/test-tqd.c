/* SPDX-License-Identifier: MIT */
/*
 * test-tqd - the supervisor program: option and config errors, one active
 * tqd per segment, a standby taking over from a killed one, the tasks of a
 * killed worker coming back while tqd runs, delayed tasks made ready with
 * no worker leasing, and a clean stop on SIGTERM. Run as: test-tqd PATH_TO_TQD
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tq-test.h"

static const char *tqd_path;

/* Run tqd with args; returns its pid (background) or waits for its exit
 * status (foreground). stderr goes to errfile if given. */
static pid_t tqd_spawn(const char *const *args, const char *errfile)
{
	const char *argv[32];
	int n = 0;
	pid_t pid;

	argv[n++] = tqd_path;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = tqt_fork();
	if (pid == 0) {
		int fd = open(errfile ? errfile : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execv(tqd_path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int tqd_run(const char *const *args, const char *errfile)
{
	int st = 0;
	pid_t pid = tqd_spawn(args, errfile);

	CHECK_RET(tqt_wait_pid(pid, 20000, &st), 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool file_has(const char *path, const char *needle)
{
	char buf[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

/* Wait (bounded) until cond() holds; false if it never did. */
static bool eventually(bool (*cond)(void *), void *arg, unsigned ms)
{
	for (unsigned i = 0; i < ms / 5; i++) {
		if (cond(arg))
			return true;
		tqt_sleep_ms(5);
	}
	return cond(arg);
}

static bool segment_exists(void *name)
{
	tq *t;

	if (tq_attach(name, &t) < 0)
		return false;
	tq_detach(t);
	return true;
}

struct task_state {
	tq *t;
	uint64_t id;
	uint32_t state;
};

static bool task_in_state(void *arg)
{
	struct task_state *ts = arg;
	struct tq_info in;

	return tq_get(ts->t, ts->id, &in) == 0 && in.state == ts->state;
}

static void test_usage(const char *tmp)
{
	char err[256], cfg[256], name[TQ_NAME_MAX + 1];
	FILE *f;

	snprintf(err, sizeof(err), "%s/err", tmp);
	CHECK_EQ(tqd_run((const char *[]){ "--help", NULL }, err), 0);
	CHECK(file_has(err, "--standby"));
	CHECK_EQ(tqd_run((const char *[]){ "--bogus", NULL }, err), 2);
	CHECK(file_has(err, "unrecognized option"));
	CHECK_EQ(tqd_run((const char *[]){ "--interval-ms", "0", NULL }, err), 2);
	CHECK_EQ(tqd_run((const char *[]){ "--capacity", "12x", NULL }, err), 2);
	CHECK(file_has(err, "not a number"));
	tqt_segname(name);
	CHECK_EQ(tqd_run((const char *[]){ "--segment", name, NULL }, err), 1);
	CHECK(file_has(err, "--create"));
	CHECK_EQ(tqd_run((const char *[]){ "--segment", "/a/b", "--create", NULL }, err), 1);
	CHECK(file_has(err, "invalid argument"));

	/* A config file: values, a flag, comments; then a bad one. */
	snprintf(cfg, sizeof(cfg), "%s/tqd.conf", tmp);
	f = fopen(cfg, "w");
	CHECK(f != NULL);
	fprintf(f, "# test\nsegment = %s\ncreate\ncapacity = 4096   # small\n\nonce\n", name);
	fclose(f);
	CHECK_EQ(tqd_run((const char *[]){ "--config", cfg, NULL }, err), 0);
	tq *t = tqt_attach(name);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.config.capacity, 4096);
	tq_detach(t);
	f = fopen(cfg, "w");
	CHECK(f != NULL);
	fprintf(f, "segment = %s\nwhatever = 3\n", name);
	fclose(f);
	CHECK_EQ(tqd_run((const char *[]){ "--config", cfg, NULL }, err), 2);
	CHECK(file_has(err, "unknown option 'whatever'"));
}

static void test_supervise(const char *tmp)
{
	char err[256], log[256], name[TQ_NAME_MAX + 1];
	int st;

	snprintf(err, sizeof(err), "%s/err2", tmp);
	snprintf(log, sizeof(log), "%s/standby.log", tmp);
	tqt_segname(name);
	char alog[256];
	snprintf(alog, sizeof(alog), "%s/active.log", tmp);
	pid_t active = tqd_spawn((const char *[]){ "--segment", name, "--create", "--capacity",
						 "4096", "--interval-ms", "5", "--log", alog, NULL }, NULL);
	CHECK(eventually(segment_exists, name, 10000));
	tq *t = tqt_attach(name);
	/* Wait for tqd to hold the role (it logs so), without taking it. */
	bool up = false;
	for (int i = 0; i < 2000 && !up; i++) {
		up = file_has(alog, "supervising");
		tqt_sleep_ms(5);
	}
	CHECK(up);
	CHECK_ERR(tq_supervisor_acquire(t, 0), -EBUSY);

	/* A second tqd refuses; a standby waits. */
	CHECK_EQ(tqd_run((const char *[]){ "--segment", name, NULL }, err), 1);
	CHECK(file_has(err, "another supervisor"));
	pid_t standby = tqd_spawn((const char *[]){ "--segment", name, "--standby", "--log", log,
						  "--interval-ms", "5", NULL }, NULL);

	/* A worker leases two tasks and is killed: they come back. */
	int q = CHECK_OK(tq_queue_declare(t, "work", NULL));
	uint64_t ids[2];
	for (int i = 0; i < 2; i++)
		CHECK_RET(tq_submit(t, q, "w", 1, NULL, &ids[i]), 0);
	int *ready = tqt_shared(sizeof(int));
	pid_t worker = tqt_lease_and_hang(name, q, 2, ready);
	kill(worker, SIGKILL);
	CHECK_RET(tqt_wait_pid(worker, 5000, &st), 0);
	for (int i = 0; i < 2; i++) {
		struct task_state ts = { t, ids[i], TQ_STATE_PENDING };
		CHECKF(eventually(task_in_state, &ts, 10000), "task %d not given back", i);
	}

	/* The active tqd is killed: the standby takes over. */
	kill(active, SIGKILL);
	CHECK_RET(tqt_wait_pid(active, 5000, &st), 0);
	bool taken = false;
	for (int i = 0; i < 2000 && !taken; i++) {
		taken = file_has(log, "supervising");
		tqt_sleep_ms(5);
	}
	CHECK(taken);
	CHECK_ERR(tq_supervisor_acquire(t, 0), -EBUSY);

	/* With no worker leasing, tqd makes a delayed task ready. */
	struct tq_submit_opts so = { .not_before_ns = tq_now_ns() + 30000000ull };
	uint64_t id;
	CHECK_RET(tq_submit(t, q, "d", 1, &so, &id), 0);
	struct tq_info in;
	CHECK_RET(tq_get(t, id, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DELAYED);
	struct task_state ts = { t, id, TQ_STATE_PENDING };
	CHECK(eventually(task_in_state, &ts, 10000));
	CHECK_GEU(tq_now_ns(), so.not_before_ns);

	/* SIGTERM: a clean stop, exit 0. */
	kill(standby, SIGTERM);
	CHECK_RET(tqt_wait_pid(standby, 10000, &st), 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(file_has(log, "stopping"));
	CHECK(file_has(log, "recovered 1 dead handle"));
	/* Nobody supervises now: we can take the role. */
	CHECK_RET(tq_supervisor_acquire(t, 0), 0);
	CHECK_RET(tq_supervisor_active(t), 1);
	tq_detach(t);
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/tq-test-tqd-XXXXXX";

	tqt_init("tqd");
	tqt_guard(170);
	if (argc < 2 || access(argv[1], X_OK) != 0)
		tqt_skip("no tqd binary given");
	tqd_path = argv[1];
	CHECK(mkdtemp(tmp) != NULL);
	test_usage(tmp);
	test_supervise(tmp);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	CHECK_EQ(system(cmd), 0);
	return 0;
}

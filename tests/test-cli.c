/* SPDX-License-Identifier: MIT */
/*
 * test-cli - the `tq` command line: usage errors and their exit codes, each
 * subcommand, and the round trip of the issue: create a segment, submit
 * 1,000 tasks, `tq worker --exec` processes them, `tq stats --json` shows
 * them all acked; a failing command leaves dead letters that `tq dead list`
 * shows and `tq dead requeue` brings back. Run as: test-cli PATH_TO_TQ
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tq-test.h"

static const char *tq_path;
static char tmpdir[] = "/tmp/tq-test-cli-XXXXXX";
static char out[1 << 20], err[1 << 16];
static char seg[TQ_NAME_MAX + 1];

static void slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	size_t n = 0;
	ssize_t r;

	buf[0] = 0;
	if (fd < 0)
		return;
	while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fd);
}

/* Start tq with the NULL-terminated args; stdin is `input` (NULL: empty),
 * stdout and stderr go to files read back by tq_finish(). */
static pid_t tq_start(const char *input, const char *const *args)
{
	char inpath[300], outpath[300], errpath[300];
	const char *argv[64];
	int n = 0;
	pid_t pid;

	snprintf(inpath, sizeof(inpath), "%s/in", tmpdir);
	snprintf(outpath, sizeof(outpath), "%s/out", tmpdir);
	snprintf(errpath, sizeof(errpath), "%s/err", tmpdir);
	FILE *f = fopen(inpath, "w");
	CHECK(f != NULL);
	if (input)
		fputs(input, f);
	fclose(f);
	argv[n++] = tq_path;
	for (int i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (getenv("TQT_VERBOSE")) {
		for (int i = 0; i < n; i++)
			fprintf(stderr, "%s ", argv[i]);
		fputc('\n', stderr);
	}
	pid = tqt_fork();
	if (pid == 0) {
		int in = open(inpath, O_RDONLY);
		int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (in < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(tq_path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int tq_finish(pid_t pid, unsigned timeout_ms)
{
	char path[300];
	int st = 0;

	if (tqt_wait_pid(pid, timeout_ms, &st) < 0) {
		kill(pid, SIGKILL);
		tqt_wait_pid(pid, 5000, &st);
		FAIL("tq still running after %u ms", timeout_ms);
	}
	snprintf(path, sizeof(path), "%s/out", tmpdir);
	slurp(path, out, sizeof(out));
	snprintf(path, sizeof(path), "%s/err", tmpdir);
	slurp(path, err, sizeof(err));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run tq and check its exit code; stdout in out, stderr in err. */
#define TQ(want, input, ...) do { \
	int tq_rc_ = tq_finish(tq_start(input, (const char *[]){ __VA_ARGS__, NULL }), 120000); \
	if (tq_rc_ != (want)) \
		FAIL("tq %s: exit %d, want %d; stdout: %.300s; stderr: %.500s", \
		     #__VA_ARGS__, tq_rc_, (want), out, err); \
	} while (0)

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static uint64_t first_id(const char *s)
{
	return strtoull(s, NULL, 10);
}

static void test_usage(void)
{
	TQ(0, NULL, "--help");
	CHECK(strstr(out, "worker --exec") != NULL);
	TQ(0, NULL, "submit", "--help");
	CHECK(strstr(out, "--delay-ms") != NULL);
	TQ(2, NULL, "bogus");
	CHECK(strstr(err, "unknown command 'bogus'") != NULL);
	TQ(2, NULL, "--segment", seg);
	CHECK(strstr(err, "no command") != NULL);
	TQ(2, NULL, "get", "abc");
	CHECK(strstr(err, "'abc' is not a task ID") != NULL);
	TQ(2, NULL, "get");
	CHECK(strstr(err, "missing argument") != NULL);
	TQ(2, NULL, "submit", "--count", "12x");
	CHECK(strstr(err, "not a number") != NULL);
	TQ(2, NULL, "create", "--levels", "65");
	TQ(2, NULL, "get", "--count", "3", "1");
	CHECK(strstr(err, "does not apply") != NULL);
	TQ(2, NULL, "list", "--queue", "q", "--state", "sleeping");
	TQ(2, NULL, "dead", "bury");
	TQ(2, NULL, "worker");
	CHECK(strstr(err, "--exec") != NULL);
	TQ(2, NULL, "submit", "--data", "x", "--file", "/nonexistent");
	/* No such segment yet: a runtime error. */
	TQ(1, NULL, "stats");
	CHECK(strstr(err, "tq: stats:") != NULL);
}

static void test_basics(void)
{
	char path[300], big[300], id[32], id2[32], nb[32];
	uint64_t a;

	TQ(0, NULL, "create", "--capacity", "4096", "--max-payload", "262144", "--levels", "4");
	TQ(1, NULL, "create");
	CHECK(strstr(err, "tq: create:") != NULL);

	/* Payload from --data, stdin and a file. */
	TQ(0, NULL, "submit", "--queue", "basic", "--data", "from-data", "--level", "2", "--type", "7");
	a = first_id(out);
	CHECK(a != 0);
	snprintf(id, sizeof(id), "%" PRIu64, a);
	TQ(0, "from-stdin", "submit", "--queue", "basic", "--attempts", "5");
	snprintf(id2, sizeof(id2), "%" PRIu64, first_id(out));
	snprintf(path, sizeof(path), "%s/payload", tmpdir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs("from-file", f);
	fclose(f);
	TQ(0, NULL, "--segment", seg, "submit", "--queue", "basic", "--file", path, "--json");
	CHECK(out[0] == '[');
	TQ(1, NULL, "submit", "--queue", "basic", "--file", "/nonexistent/x");

	/* get, text and JSON. */
	TQ(0, NULL, "get", id);
	CHECK(strstr(out, "state      pending") != NULL);
	CHECK(strstr(out, "queue      basic") != NULL);
	CHECK(strstr(out, "type       7") != NULL);
	TQ(0, NULL, "get", id2, "--json");
	CHECK(strstr(out, "\"attempts\":0,\"max_attempts\":5,\"len\":10") != NULL);
	TQ(1, NULL, "get", "999");
	CHECK(strstr(err, "tq: get:") != NULL);

	/* list: by level, paged. */
	TQ(0, NULL, "list", "--queue", "basic");
	CHECK_EQ(count_lines(out), 3);
	TQ(0, NULL, "list", "--queue", "basic", "--level", "2");
	CHECK_EQ(count_lines(out), 1);
	CHECK_EQU(first_id(out), a);
	TQ(0, NULL, "list", "--queue", "basic", "--limit", "2");
	CHECK_EQ(count_lines(out), 2);
	char *cur = strstr(err, "next cursor: ");
	CHECK(cur != NULL);
	snprintf(nb, sizeof(nb), "%llu", strtoull(cur + 13, NULL, 10));
	TQ(0, NULL, "list", "--queue", "basic", "--limit", "2", "--cursor", nb, "--json");
	CHECK(strstr(out, "\"tasks\":[{\"id\":") != NULL);
	CHECK(strstr(out, "\"cursor\":null") != NULL);
	TQ(1, NULL, "list", "--queue", "nope");
	CHECK(strstr(err, "no queue named nope") != NULL);

	/* priority, cancel. */
	TQ(0, NULL, "priority", id, "0");
	TQ(0, NULL, "get", id, "--json");
	CHECK(strstr(out, "\"level\":0") != NULL);
	TQ(1, NULL, "priority", id, "9");
	TQ(2, NULL, "priority", id, "x");
	TQ(0, NULL, "cancel", id);
	TQ(1, NULL, "cancel", id);

	/* Delayed tasks, then purge of what is left. */
	TQ(0, NULL, "submit", "--queue", "basic", "--data", "later", "--delay-ms", "600000");
	snprintf(id, sizeof(id), "%" PRIu64, first_id(out));
	TQ(0, NULL, "get", id, "--json");
	CHECK(strstr(out, "\"state\":\"delayed\"") != NULL);
	TQ(0, NULL, "list", "--queue", "basic", "--state", "delayed");
	CHECK_EQ(count_lines(out), 1);
	TQ(0, NULL, "purge", "basic");
	CHECK(strstr(out, "cancelled 3 tasks") != NULL);
	TQ(0, NULL, "stats", "--queue", "basic", "--json");
	CHECK(strstr(out, "\"total\":{\"depth\":0,\"delayed\":0,") != NULL);
	CHECK(strstr(out, "\"cancelled\":4") != NULL);
	TQ(1, NULL, "purge", "nope");

	/* pause and resume: a paused queue is not worked. */
	TQ(0, NULL, "submit", "--queue", "paused", "--data", "p");
	snprintf(id, sizeof(id), "%" PRIu64, first_id(out));
	TQ(0, NULL, "pause", "paused");
	TQ(0, NULL, "stats", "--queue", "paused", "--json");
	CHECK(strstr(out, "\"paused\":true") != NULL);
	TQ(0, NULL, "worker", "--queue", "paused", "--exec", "cat", "--idle-exit-ms", "200");
	TQ(0, NULL, "get", id, "--json");
	CHECK(strstr(out, "\"state\":\"pending\"") != NULL);
	TQ(0, NULL, "resume", "paused");
	/* The task's fields reach the command's environment. */
	TQ(0, NULL, "worker", "--queue", "paused", "--max-tasks", "1", "--exec",
	   "printf '%s:%s:%s:%s:' \"$TQ_TASK_ID\" \"$TQ_QUEUE\" \"$TQ_ATTEMPT\" \"$TQ_SEGMENT\"; cat");
	TQ(0, NULL, "wait", id, "--timeout-ms", "10000");
	char want[400];
	snprintf(want, sizeof(want), "%s:paused:1:%s:p", id, seg);
	CHECK_STREQ(out, want);
	TQ(0, NULL, "wait", id, "--json", "--timeout-ms", "30000");
	CHECK(strstr(out, "\"result_base64\":") != NULL);
	TQ(1, NULL, "pause", "nope");
	CHECK(strstr(err, "no queue named nope") != NULL);

	/* A payload and result larger than a pipe buffer go through. */
	snprintf(big, sizeof(big), "%s/big", tmpdir);
	f = fopen(big, "w");
	CHECK(f != NULL);
	for (int i = 0; i < 200000; i++)
		fputc('a' + i % 26, f);
	fclose(f);
	TQ(0, NULL, "submit", "--queue", "big", "--file", big);
	snprintf(id, sizeof(id), "%" PRIu64, first_id(out));
	TQ(0, NULL, "worker", "--queue", "big", "--max-tasks", "1", "--exec", "cat");
	TQ(0, NULL, "wait", id, "--timeout-ms", "30000");
	CHECK_EQ(strlen(out), 200000);
	CHECK(memcmp(out, "abcdefghijklmnopqrstuvwxyzabc", 29) == 0);
	/* Output over max_payload fails the attempt. */
	TQ(0, NULL, "submit", "--queue", "big", "--data", "x", "--attempts", "1");
	snprintf(id, sizeof(id), "%" PRIu64, first_id(out));
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "cat %s %s", big, big);
	TQ(0, NULL, "worker", "--queue", "big", "--max-tasks", "1", "--exec", cmd);
	CHECK(strstr(err, "output over 262144 bytes") != NULL);
	TQ(3, NULL, "wait", id, "--timeout-ms", "30000");
	CHECK(strstr(err, "is dead") != NULL);

	/* Backpressure: a full queue fails at once with a clear message. */
	TQ(1, NULL, "submit", "--queue", "full", "--count", "5000", "--data", "f");
	CHECK(strstr(err, "is full") != NULL);
	CHECK_GT(count_lines(out), 0);
	TQ(0, NULL, "purge", "full");
}

static void test_round_trip(void)
{
	char ids[5][32], *p;

	TQ(0, NULL, "submit", "--queue", "rt", "--count", "1000", "--data", "payload");
	CHECK_EQ(count_lines(out), 1000);
	char first[32];
	snprintf(first, sizeof(first), "%" PRIu64, first_id(out));
	TQ(0, NULL, "worker", "--queue", "rt", "--exec", "cat", "--concurrency", "2",
	   "--max-tasks", "1000", "--idle-exit-ms", "30000");
	TQ(0, NULL, "stats", "--json", "--queue", "rt");
	CHECKF(strstr(out, "\"total\":{\"depth\":0,\"delayed\":0,\"leased_now\":0,"
			   "\"submitted\":1000,\"leased\":1000,\"acked\":1000,") != NULL, "%s", out);
	TQ(0, NULL, "wait", first, "--timeout-ms", "30000");
	CHECK_STREQ(out, "payload");
	TQ(0, NULL, "stats");
	CHECK(strstr(out, "rt ") != NULL);

	/* A failing command: dead letters, listed, requeued, then purged. */
	TQ(0, NULL, "submit", "--queue", "bad", "--count", "5", "--attempts", "1", "--data", "b");
	p = out;
	for (int i = 0; i < 5; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%llu", strtoull(p, &p, 10));
		p++;
	}
	TQ(0, NULL, "worker", "--queue", "bad", "--exec", "exit 7", "--max-tasks", "5");
	TQ(0, NULL, "dead", "list", "--queue", "bad");
	CHECK_EQ(count_lines(out), 5);
	for (int i = 0; i < 5; i++)
		CHECKF(strstr(out, ids[i]) != NULL, "%s not in %s", ids[i], out);
	TQ(0, NULL, "dead", "list");          /* every queue: "big" has one too */
	CHECK_EQ(count_lines(out), 6);
	TQ(0, NULL, "dead", "list", "--json", "--queue", "bad");
	CHECK(strstr(out, "\"state\":\"dead\"") != NULL);
	TQ(3, NULL, "wait", ids[0], "--timeout-ms", "30000");
	TQ(0, NULL, "dead", "requeue", "--queue", "bad");
	CHECK(strstr(out, "requeued 5") != NULL);
	TQ(0, NULL, "dead", "list", "--queue", "bad");
	CHECK_EQ(count_lines(out), 0);
	TQ(0, NULL, "list", "--queue", "bad");
	CHECK_EQ(count_lines(out), 5);
	TQ(0, NULL, "stats", "--json", "--queue", "bad");
	CHECK(strstr(out, "\"depth\":5,") != NULL);
	CHECK(strstr(out, "\"requeued\":5,") != NULL);

	/* Fail them again; requeue one by ID, purge the rest. */
	TQ(0, NULL, "worker", "--queue", "bad", "--exec", "false", "--max-tasks", "5");
	TQ(0, NULL, "dead", "requeue", ids[1]);
	CHECK(strstr(out, "requeued 1") != NULL);
	TQ(2, NULL, "dead", "requeue", "x");
	TQ(0, NULL, "dead", "purge", "--queue", "bad", "--json");
	CHECK(strstr(out, "\"purged\":4") != NULL);
	TQ(0, NULL, "dead", "list", "--queue", "bad");
	CHECK_EQ(count_lines(out), 0);
	TQ(0, NULL, "worker", "--queue", "bad", "--exec", "true", "--max-tasks", "1");
	TQ(0, NULL, "wait", ids[1], "--timeout-ms", "30000");
	CHECK_STREQ(out, "");
}

/* SIGTERM while a command runs: after the grace period the command is
 * killed and its task given back, not counted as an attempt. */
static void test_worker_stop(void)
{
	char id[32];
	tq *t = tqt_attach(seg);
	struct tq_info in = { 0 };

	TQ(0, NULL, "submit", "--queue", "slow", "--data", "s");
	snprintf(id, sizeof(id), "%" PRIu64, first_id(out));
	pid_t w = tq_start(NULL, (const char *[]){ "worker", "--queue", "slow", "--exec",
						   "sleep 60", "--grace-ms", "100", NULL });
	for (int i = 0; i < 2000; i++) {
		if (tq_get(t, first_id(id), &in) == 0 && in.state == TQ_STATE_LEASED)
			break;
		tqt_sleep_ms(5);
	}
	CHECK_EQU(in.state, TQ_STATE_LEASED);
	kill(w, SIGTERM);
	CHECK_EQ(tq_finish(w, 20000), 0);
	CHECK_RET(tq_get(t, first_id(id), &in), 0);
	CHECK_EQU(in.state, TQ_STATE_PENDING);
	struct tq_stats st;
	int q = CHECK_OK(tq_queue_find(t, "slow"));
	CHECK_RET(tq_stats(t, q, -1, &st), 0);
	CHECK_EQU(st.released, 1);
	CHECK_EQU(st.failed, 0);

	/* A stop within the grace period lets the command finish: acked. */
	w = tq_start(NULL, (const char *[]){ "worker", "--queue", "slow", "--exec",
					     "sleep 0.3; echo done", NULL });
	for (int i = 0; i < 2000; i++) {
		if (tq_get(t, first_id(id), &in) == 0 && in.state == TQ_STATE_LEASED)
			break;
		tqt_sleep_ms(5);
	}
	kill(w, SIGTERM);
	CHECK_EQ(tq_finish(w, 20000), 0);
	TQ(0, NULL, "wait", id, "--timeout-ms", "5000");
	CHECK_STREQ(out, "done\n");
	TQ(0, NULL, "submit", "--queue", "idle", "--data", "i");
	snprintf(id, sizeof(id), "%" PRIu64, first_id(out));
	TQ(1, NULL, "wait", id, "--timeout-ms", "10");
	CHECK(strstr(err, "still pending") != NULL);
	tq_detach(t);
}

/* The temporary directory goes however the test ends (failures too). */
static void remove_tmpdir(void)
{
	char cmd[400];

	if (getpid() != tqt_main_pid || strstr(tmpdir, "XXXXXX"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test-cli: could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{

	tqt_init("cli");
	tqt_guard(170);
	if (argc < 2 || access(argv[1], X_OK) != 0)
		tqt_skip("no tq binary given");
	tq_path = argv[1];
	CHECK(mkdtemp(tmpdir) != NULL);
	atexit(remove_tmpdir);
	tqt_segname(seg);
	setenv("TQ_SEGMENT", seg, 1);
	test_usage();
	test_basics();
	test_round_trip();
	test_worker_stop();
	TQ(0, NULL, "destroy");
	TQ(1, NULL, "destroy");
	return 0;
}

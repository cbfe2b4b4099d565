/* SPDX-License-Identifier: MIT */
/*
 * test-tqtop - the `tqtop` inspector. Usage errors and their exit codes;
 * `tqtop --once` (text and JSON) on a segment with a known workload: the
 * queue names, depths, leased counts, rates, workers and dead letters it
 * must show; then the live curses view driven inside tmux: the frame shows
 * the queues, rates and workers, `p` on a queue pauses it (tq_queue_paused()
 * says 1 and the frame says so), `r` resumes it, `R` requeues its dead
 * letters, sort, help, a resize, and `q` quits with status 0.
 * Run as: test-tqtop PATH_TO_TQTOP. The tmux part needs tmux (else the test
 * skips after the --once part); the tmux server is killed and the segment
 * unlinked however the test ends.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tq-test.h"

static const char *tqtop_path;
static char tmpdir[] = "/tmp/tq-test-tqtop-XXXXXX";
static char sock[300];
static bool tmux_started;
static char out[1 << 18], err[1 << 16];
static char seg[TQ_NAME_MAX + 1];

struct shared {
	int stop;
	int hang_ready;
	uint64_t submitted;
	uint64_t acked;
};
static struct shared *sh;

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

/* Run argv (argv[0] is the program, looked up in PATH) with stdout and
 * stderr into `out` and `err`; returns its exit code, 128 + signal if
 * killed. Fails the test if it runs longer than timeout_ms. */
static int run(const char *const *argv, unsigned timeout_ms)
{
	char outpath[350], errpath[350];
	pid_t pid;
	int st = 0;

	snprintf(outpath, sizeof(outpath), "%s/out", tmpdir);
	snprintf(errpath, sizeof(errpath), "%s/err", tmpdir);
	if (getenv("TQT_VERBOSE")) {
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, "%s ", argv[i]);
		fputc('\n', stderr);
	}
	pid = tqt_fork();
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (in < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (tqt_wait_pid(pid, timeout_ms, &st) < 0) {
		kill(pid, SIGKILL);
		tqt_wait_pid(pid, 5000, &st);
		FAIL("%s still running after %u ms", argv[0], timeout_ms);
	}
	slurp(outpath, out, sizeof(out));
	slurp(errpath, err, sizeof(err));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define TQTOP(want, ...) do { \
	int rc_ = run((const char *[]){ tqtop_path, __VA_ARGS__, NULL }, 60000); \
	if (rc_ != (want)) \
		FAIL("tqtop %s: exit %d, want %d; stdout: %.2000s; stderr: %.1000s", \
		     #__VA_ARGS__, rc_, (want), out, err); \
	} while (0)

/* The line of `text` whose first words are w1 (and w2 if not NULL). */
static const char *find_line(const char *text, const char *w1, const char *w2, char *line,
			     size_t size)
{
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char a[64] = "", b[64] = "";

		snprintf(line, size, "%.*s", (int)len, p);
		if (line[0] == '>')      /* the live view's selected row */
			line[0] = ' ';
		if (sscanf(line, "%63s %63s", a, b) >= 1 && !strcmp(a, w1) &&
		    (!w2 || !strcmp(b, w2)))
			return line;
		p += len + (e ? 1 : 0);
	}
	return NULL;
}

/* A queue's total row: name all STATE DEPTH DELAYED LEASED SUBMIT/s ... */
struct qline {
	char state[16];
	unsigned long long depth, delayed, leased;
	double submit, ack, fail;
	char dead[32];
};

static bool queue_line(const char *text, const char *name, struct qline *ql)
{
	char line[1024], w50[32], w99[32], r50[32], r99[32];

	memset(ql, 0, sizeof(*ql));
	if (!find_line(text, name, "all", line, sizeof(line)))
		return false;
	return sscanf(line, " %*s %*s %15s %llu %llu %llu %lf %lf %lf %31s %31s %31s %31s %31s",
		      ql->state, &ql->depth, &ql->delayed, &ql->leased, &ql->submit, &ql->ack,
		      &ql->fail, w50, w99, r50, r99, ql->dead) == 12;
}

/* ------------------------------------------------------------------------
 * The workload: alpha holds 30 tasks at level 1, 2 of them leased by a
 * process that hangs; beta is worked all along by a producer and a
 * consumer; gamma has 3 dead letters.
 */
static int q_alpha, q_beta, q_gamma;
static pid_t hanger, producer, consumer;
static uint64_t dead_ids[3];

static void producer_main(void)
{
	tq *t = tqt_attach(seg);
	struct tq_submit_opts o = { .level = 2 };

	tqt_guard(110);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		if (tq_submit(t, q_beta, "b", 1, &o, NULL) == 0)
			__atomic_add_fetch(&sh->submitted, 1, __ATOMIC_RELAXED);
		tqt_sleep_ms(2);
	}
	tq_detach(t);
	_exit(0);
}

static void consumer_main(void)
{
	tq *t = tqt_attach(seg);
	struct tq_lease_opts lo = { .queues = &q_beta, .nqueues = 1, .timeout_ms = 50 };
	struct tq_task task;

	tqt_guard(110);
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		if (tq_lease(t, &lo, &task, 1) != 1)
			continue;
		tqt_sleep_ms(1);
		if (tq_ack(t, task.id, NULL, 0) == 0)
			__atomic_add_fetch(&sh->acked, 1, __ATOMIC_RELAXED);
	}
	tq_detach(t);
	_exit(0);
}

static void workload(tq *t)
{
	struct tq_submit_opts o = { .level = 1 };
	struct tq_submit_opts od = { .max_attempts = 1 };
	struct tq_lease_opts lo = { .queues = &q_gamma, .nqueues = 1, .timeout_ms = 1000 };
	struct tq_task task;

	q_alpha = CHECK_OK(tq_queue_declare(t, "alpha", NULL));
	q_beta = CHECK_OK(tq_queue_declare(t, "beta", NULL));
	q_gamma = CHECK_OK(tq_queue_declare(t, "gamma", NULL));
	for (int i = 0; i < 30; i++)
		CHECK_OK(tq_submit(t, q_alpha, "a", 1, &o, NULL));
	for (int i = 0; i < 3; i++)
		CHECK_OK(tq_submit(t, q_gamma, "g", 1, &od, &dead_ids[i]));
	for (int i = 0; i < 3; i++) {
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		CHECK_RET(tq_fail(t, task.id), 1);
	}
	hanger = tqt_lease_and_hang(seg, q_alpha, 2, &sh->hang_ready);
	if ((producer = tqt_fork()) == 0)
		producer_main();
	if ((consumer = tqt_fork()) == 0)
		consumer_main();
	/* Both are at work before anything looks. */
	for (int i = 0; i < 500 && __atomic_load_n(&sh->acked, __ATOMIC_RELAXED) < 5; i++)
		tqt_sleep_ms(10);
	CHECK_GE(__atomic_load_n(&sh->acked, __ATOMIC_RELAXED), 5);
}

static void stop_workload(void)
{
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	tqt_expect_child_ok(producer, 10000);
	tqt_expect_child_ok(consumer, 10000);
	kill(hanger, SIGKILL);
	tqt_wait_pid(hanger, 10000, NULL);
}

/* ------------------------------------------------------------------------
 * Command line and --once
 */
static void test_usage(void)
{
	char missing[TQ_NAME_MAX + 1];

	TQTOP(0, "--help");
	CHECK(strstr(out, "--once") != NULL);
	CHECK(strstr(out, "--interval-ms") != NULL);
	TQTOP(2, "--bogus");
	CHECK(strstr(err, "usage: tqtop") != NULL);
	TQTOP(2, "--interval-ms", "5");
	CHECK(strstr(err, "tqtop: --interval-ms: '5' is not a number") != NULL);
	TQTOP(2, "--interval-ms", "12x");
	TQTOP(2, "--json");
	CHECK(strstr(err, "--json goes with --once") != NULL);
	TQTOP(2, "--sort", "colour", "--once");
	CHECK(strstr(err, "unknown column 'colour'") != NULL);
	TQTOP(2, "--once", "extra");
	CHECK(strstr(err, "unexpected argument 'extra'") != NULL);
	/* A segment that does not exist: a runtime error, in tq's words. */
	tqt_segname(missing);
	TQTOP(1, "--once", "--segment", missing);
	CHECKF(strstr(err, tq_strerror(-ENOENT)) != NULL, "%s", err);
	CHECK(strstr(err, missing) != NULL);
}

static void test_once(void)
{
	char line[1024], want[64];
	struct qline ql;

	TQTOP(0, "--once", "--segment", seg, "--interval-ms", "300");
	CHECKF(queue_line(out, "alpha", &ql), "no alpha row in:\n%s", out);
	CHECK_STREQ(ql.state, "active");
	CHECK_EQ(ql.depth, 28);
	CHECK_EQ(ql.leased, 2);
	CHECK_EQ(ql.delayed, 0);
	CHECK_STREQ(ql.dead, "0");
	/* alpha's tasks are all at level 1: a level row with the same figures. */
	CHECKF(find_line(out, "1", "28", line, sizeof(line)) != NULL, "no level row in:\n%s", out);
	unsigned long long lv_delayed = 99, lv_leased = 99;
	CHECK(sscanf(line, " %*s %*s %llu %llu", &lv_delayed, &lv_leased) == 2);
	CHECK_EQ(lv_delayed, 0);
	CHECK_EQ(lv_leased, 2);
	CHECKF(queue_line(out, "beta", &ql), "no beta row in:\n%s", out);
	/* beta is worked all along, but a loaded machine may starve the
	 * producer or the consumer for one interval: a few tries. */
	for (int i = 0; i < 5 && !(ql.submit > 0 && ql.ack > 0); i++) {
		TQTOP(0, "--once", "--segment", seg, "--interval-ms", "500");
		CHECKF(queue_line(out, "beta", &ql), "no beta row in:\n%s", out);
	}
	CHECKF(ql.submit > 0 && ql.ack > 0, "beta not moving: %f %f\n%s", ql.submit, ql.ack, out);
	CHECKF(queue_line(out, "gamma", &ql), "no gamma row in:\n%s", out);
	CHECK_EQ(ql.depth, 0);
	CHECK_STREQ(ql.dead, "3");
	CHECKF(strstr(out, "dead letters: 3 in 1 queue") != NULL, "%s", out);
	snprintf(want, sizeof(want), "oldest: %" PRIu64 " %" PRIu64 " %" PRIu64, dead_ids[0],
		 dead_ids[1], dead_ids[2]);
	CHECKF(strstr(out, want) != NULL, "no '%s' in:\n%s", want, out);
	/* Workers: the hanging one holds 2 leases; the test, the producer,
	 * the consumer and tqtop itself are attached too. */
	CHECKF(strstr(out, "workers: 5 attached") != NULL, "%s", out);
	snprintf(want, sizeof(want), "%d", (int)hanger);
	CHECKF(find_line(out, want, "busy", line, sizeof(line)) != NULL, "no busy %s in:\n%s",
	       want, out);
	unsigned long long done = 99, leased_now = 99;
	CHECK(sscanf(line, " %*s %*s %*s %*s %llu %llu", &done, &leased_now) == 2);
	CHECK_EQ(leased_now, 2);
	CHECK_EQ(done, 0);
	snprintf(want, sizeof(want), "%d", (int)consumer);
	CHECKF(find_line(out, want, NULL, line, sizeof(line)) != NULL, "no consumer in:\n%s", out);
	CHECK(strstr(out, "(this tqtop)") != NULL);
	CHECK(strstr(out, "journal: ") != NULL);
	CHECK(strstr(out, "repairs 0") != NULL);

	/* The live view needs a terminal; here stdin is /dev/null. */
	TQTOP(1, "--segment", seg);
	CHECKF(strstr(err, "tqtop: not a terminal") != NULL, "%s", err);

	/* The environment names the segment when --segment does not. */
	setenv("TQ_SEGMENT", seg, 1);
	TQTOP(0, "--once", "--filter", "alp", "--no-levels");
	unsetenv("TQ_SEGMENT");
	CHECK(queue_line(out, "alpha", &ql));
	CHECK(!queue_line(out, "beta", &ql));
	CHECK(strstr(out, "filter: \"alp\"") != NULL);

	/* JSON: the same figures, and balanced. */
	TQTOP(0, "--once", "--json", "--segment", seg, "--sort", "name");
	snprintf(line, sizeof(line), "{\"name\":\"alpha\",\"index\":%d,\"paused\":false,"
		 "\"depth\":28,\"delayed\":0,\"leased_now\":2,\"submitted\":30,", q_alpha);
	CHECKF(strstr(out, line) != NULL, "no '%s' in:\n%s", line, out);
	CHECK(strstr(out, "\"levels\":[{\"level\":1,\"depth\":28,") != NULL);
	snprintf(want, sizeof(want), "\"dead_now\":3,\"dead_more\":false,\"dead_oldest\":[%" PRIu64,
		 dead_ids[0]);
	CHECKF(strstr(out, want) != NULL, "%s", out);
	snprintf(want, sizeof(want), "{\"pid\":%d,\"state\":\"busy\",", (int)hanger);
	CHECKF(strstr(out, want) != NULL, "%s", out);
	CHECK(strstr(out, "\"journal\":") != NULL);
	int depth = 0, ok = 1;
	for (const char *p = out; *p; p++) {
		depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
		ok &= depth >= 0;
	}
	CHECK(ok && depth == 0);
	/* Sorted by name: alpha, beta, gamma. */
	char *a = strstr(out, "\"alpha\""), *b = strstr(out, "\"beta\""), *g = strstr(out, "\"gamma\"");
	CHECK(a && b && g && a < b && b < g);
}

/* A segment with a journal: the journal panel shows its directory and
 * state; the main segment has none. */
static void test_journal(void)
{
	char name[TQ_NAME_MAX + 1], dir[TQ_PATH_MAX], want[600];
	struct tq_config cfg = tqt_small_config();
	tq *j;

	TQTOP(0, "--once", "--segment", seg, "--interval-ms", "20");
	CHECKF(strstr(out, "\njournal: none\n") != NULL, "%s", out);
	snprintf(dir, sizeof(dir), "%s/journal", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	memcpy(cfg.journal_dir, dir, sizeof(dir));
	cfg.durability = TQ_DURABILITY_SYNC;
	j = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(j, "journaled", NULL));
	for (int i = 0; i < 5; i++)
		CHECK_OK(tq_submit(j, q, "j", 1, NULL, NULL));
	TQTOP(0, "--once", "--segment", name, "--interval-ms", "20");
	snprintf(want, sizeof(want), "journal: %s  durability sync", dir);
	CHECKF(strstr(out, want) != NULL, "no '%s' in:\n%s", want, out);
	CHECK(strstr(out, "  lsn head ") != NULL);
	CHECK(strstr(out, "last replay: ") != NULL);
	TQTOP(0, "--once", "--json", "--segment", name, "--interval-ms", "20");
	snprintf(want, sizeof(want), "\"journal\":{\"dir\":\"%s\",\"durability\":\"sync\",", dir);
	CHECKF(strstr(out, want) != NULL, "no '%s' in:\n%s", want, out);
	tq_detach(j);
	tqt_segname_drop(name);
}

/* ------------------------------------------------------------------------
 * The live view, in tmux
 */
static int tmux(const char *const *args)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = "tmux";
	argv[n++] = "-S";
	argv[n++] = sock;
	argv[n++] = "-f";
	argv[n++] = "/dev/null";
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return run(argv, 20000);
}
#define TMUX(...) tmux((const char *[]){ __VA_ARGS__, NULL })

/* At exit, also after a failure: so it must not fail itself. (Should it not
 * get to run, e.g. after a SIGKILL, the test's supervisor process, which
 * the daemonised tmux server is reparented to, kills the server.) */
static void kill_tmux(void)
{
	pid_t pid;
	int st;

	if (!tmux_started || getpid() != tqt_main_pid)
		return;
	tmux_started = false;
	fflush(NULL);
	if ((pid = fork()) < 0)
		return;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("tmux", "tmux", "-S", sock, "kill-server", (char *)NULL);
		_exit(127);
	}
	if (tqt_wait_pid(pid, 10000, &st) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
}

static void capture(void)
{
	int rc = TMUX("capture-pane", "-p", "-t", "top");

	if (rc != 0)
		FAIL("tmux capture-pane: exit %d: %s", rc, err);
}

static void keys(const char *k)
{
	int rc = TMUX("send-keys", "-t", "top", k);

	if (rc != 0)
		FAIL("tmux send-keys %s: exit %d: %s", k, rc, err);
}

static void keys_literal(const char *k)
{
	int rc = TMUX("send-keys", "-t", "top", "-l", k);

	if (rc != 0)
		FAIL("tmux send-keys -l %s: exit %d: %s", k, rc, err);
}

/* Capture the pane until pred() holds, for at most ms. */
static bool wait_pane(bool (*pred)(const void *), const void *arg, unsigned ms)
{
	uint64_t end = tqt_mono_ms() + ms;

	for (;;) {
		capture();
		if (pred(arg))
			return true;
		if (tqt_mono_ms() >= end)
			return false;
		tqt_sleep_ms(50);
	}
}

static bool has_text(const void *s)
{
	return strstr(out, s) != NULL;
}

static bool lacks_text(const void *s)
{
	return strstr(out, s) == NULL;
}

static bool beta_moving(const void *unused)
{
	struct qline ql;

	(void)unused;
	return queue_line(out, "beta", &ql) && ql.submit > 0 && ql.ack > 0;
}

static bool alpha_state(const void *state)
{
	struct qline ql;

	return queue_line(out, "alpha", &ql) && !strcmp(ql.state, state);
}

static bool gamma_depth3(const void *unused)
{
	struct qline ql;

	(void)unused;
	return queue_line(out, "gamma", &ql) && ql.depth == 3 && !strcmp(ql.dead, "0");
}

static bool paused_is(tq *t, int q, int want, unsigned ms)
{
	uint64_t end = tqt_mono_ms() + ms;

	while (tq_queue_paused(t, q) != want) {
		if (tqt_mono_ms() >= end)
			return false;
		tqt_sleep_ms(20);
	}
	return true;
}

static unsigned widest_line(const char *s, unsigned *lines)
{
	unsigned w = 0, cur = 0;

	*lines = 0;
	for (; *s; s++) {
		if (*s == '\n') {
			++*lines;
			cur = 0;
			continue;
		}
		if (++cur > w)
			w = cur;
	}
	return w;
}

#define PANE(pred, arg, what) do { if (!wait_pane(pred, arg, 10000)) \
	FAIL("the pane never showed %s; it shows:\n%s", what, out); } while (0)

static void test_live(tq *t)
{
	char cmd[1200], pid[32];
	unsigned w, h;

	if (run((const char *[]){ "tmux", "-V", NULL }, 10000) != 0) {
		tqt_skip("tmux is not installed: the live view is not tested");
	}
	snprintf(sock, sizeof(sock), "%s/tmux.sock", tmpdir);
	/* The shell reports how tqtop ended, then keeps the pane open. */
	snprintf(cmd, sizeof(cmd), "'%s' --segment '%s' --interval-ms 100; "
		 "echo tqtop-exited-$?; sleep 60", tqtop_path, seg);
	tmux_started = true;
	if (TMUX("new-session", "-d", "-s", "top", "-x", "160", "-y", "50", cmd) != 0)
		FAIL("tmux new-session: %s", err);

	/* The frame: queues, rates, workers. */
	PANE(has_text, "queues: 3 shown", "the queue table");
	PANE(beta_moving, NULL, "beta's submit and ack rates");
	CHECKF(queue_line(out, "alpha", &(struct qline){ 0 }), "%s", out);
	CHECKF(queue_line(out, "gamma", &(struct qline){ 0 }), "%s", out);
	snprintf(pid, sizeof(pid), "%d", (int)hanger);
	PANE(has_text, "workers: 5 attached", "the workers");
	CHECKF(find_line(out, pid, "busy", cmd, sizeof(cmd)) != NULL, "no busy %s:\n%s", pid, out);
	CHECK(strstr(out, "q quit") != NULL);

	/* Filter down to alpha (selected as the only row), pause it, resume. */
	keys("/");
	PANE(has_text, "filter: _", "the filter prompt");
	keys_literal("alpha");
	keys("Enter");
	PANE(has_text, "queues: 1 shown", "the filtered table");
	CHECK(strstr(out, "filter: \"alpha\"") != NULL);
	CHECK(!queue_line(out, "beta", &(struct qline){ 0 }));
	CHECK(strstr(out, "> alpha") != NULL);
	keys("p");
	CHECKF(paused_is(t, q_alpha, 1, 5000), "p did not pause alpha");
	PANE(alpha_state, "paused", "alpha paused");
	CHECK(strstr(out, "paused alpha") != NULL);
	CHECK_EQ(tq_queue_paused(t, q_beta), 0);
	keys("r");
	CHECKF(paused_is(t, q_alpha, 0, 5000), "r did not resume alpha");
	PANE(alpha_state, "active", "alpha active again");

	/* R on gamma: asks, then requeues its 3 dead letters. */
	keys("/");
	PANE(has_text, "filter: alpha_", "the filter prompt with the old filter");
	keys("C-u");
	keys_literal("gam");
	keys("Enter");
	PANE(has_text, "filter: \"gam\"", "gamma alone");
	CHECK(strstr(out, "queues: 1 shown") != NULL);
	CHECK(strstr(out, "> gamma") != NULL);
	keys("R");
	PANE(has_text, "requeue 3 dead letters of gamma? (y/n)", "the requeue question");
	keys("y");
	PANE(gamma_depth3, NULL, "gamma's letters requeued");
	CHECK(strstr(out, "dead letters: none") != NULL);
	struct tq_stats st;
	CHECK_RET(tq_stats(t, q_gamma, -1, &st), 0);
	CHECK_EQU(st.depth, 3);
	CHECK_EQU(st.requeued, 3);

	/* An empty filter shows everything again; sort and reverse. */
	keys("f");
	keys("C-u");
	keys("Enter");
	PANE(has_text, "queues: 3 shown", "every queue again");
	CHECK(strstr(out, "sort: depth, descending") != NULL);
	keys("s");
	PANE(has_text, "sort: delayed, descending", "the next sort column");
	keys("S");
	PANE(has_text, "sort: delayed, ascending", "the reversed sort");

	/* Help, closed by any key. */
	keys("?");
	PANE(has_text, "tqtop keys", "the help");
	keys("x");
	PANE(lacks_text, "tqtop keys", "the frame without the help");
	CHECK(strstr(out, "queues: 3 shown") != NULL);

	/* A smaller terminal: the frame is cut to fit it, which only a
	 * redraw at the new size does: 9 queue and level rows and 5 workers
	 * do not fit in 16 lines, so the queue table says which rows it shows
	 * and the worker table how many it leaves out. */
	if (TMUX("resize-window", "-t", "top", "-x", "100", "-y", "16") != 0)
		FAIL("tmux resize-window: %s", err);
	PANE(has_text, "more", "the frame cut to the new size");
	w = widest_line(out, &h);
	CHECKF(w <= 100 && h <= 16, "%u columns, %u lines:\n%s", w, h, out);
	CHECKF(strstr(out, " rows 1-") != NULL, "%s", out);

	/* Quit: tqtop ends with status 0 (and, under ASan, no leak report). */
	keys("q");
	PANE(has_text, "tqtop-exited-", "tqtop's exit");
	CHECKF(strstr(out, "tqtop-exited-0") != NULL, "%s", out);
	kill_tmux();
}

/* Remove what is under dir (two levels: the journal has its own
 * directory), then dir. Only calls that a signal handler may make in
 * practice: no stdio, no malloc beyond opendir's. */
static void remove_tree(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[600];

	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0 && errno == EISDIR && depth > 0)
			remove_tree(path, depth - 1);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* The temporary directory goes however the test ends: at exit (failures
 * too), and on the signals tq-test.h catches, before its own handler
 * cleans up the rest. (The tmux server in it is killed by the test's
 * supervisor process then.) */
static void remove_tmpdir(void)
{
	if (getpid() != tqt_main_pid || strstr(tmpdir, "XXXXXX"))
		return;
	remove_tree(tmpdir, 2);
}

static void on_signal(int sig)
{
	remove_tmpdir();
	tqt_on_signal(sig);
}

int main(int argc, char **argv)
{
	struct tq_config cfg;
	tq *t;

	tqt_init("tqtop");
	tqt_guard(110);
	if (argc < 2 || access(argv[1], X_OK) != 0)
		tqt_skip("no tqtop binary given (tqtop is built only when ncurses is found)");
	tqtop_path = argv[1];
	CHECK(mkdtemp(tmpdir) != NULL);
	atexit(remove_tmpdir);
	atexit(kill_tmux);       /* runs before remove_tmpdir: the socket is in there */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sh = tqt_shared(sizeof(*sh));
	cfg = tqt_small_config();
	cfg.levels = 4;
	t = tqt_create(seg, &cfg);
	test_usage();
	workload(t);
	test_once();
	test_journal();
	test_live(t);
	stop_workload();
	tq_detach(t);
	return 0;
}

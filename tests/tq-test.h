/* SPDX-License-Identifier: MIT */
/*
 * tq-test.h - the small shared harness of the tq test binaries (private to
 * tests/, not API).
 *
 * Every test binary calls tqt_init() first. After that:
 *  - CHECK*() macros print file:line, the expression, and for tq results
 *    the errno name and tq_strerror() words, then fail: exit status 1 in the
 *    test's main process, _exit(1) in a forked child (a child never runs the
 *    parent's atexit handlers). tqt_skip() exits 77.
 *  - tqt_segname() makes a unique segment name /tq-t-<test>-<pid>-<counter>
 *    and remembers it; every remembered name is shm_unlink()ed when the main
 *    process exits, fails, or is sent SIGTERM/SIGINT/SIGHUP or its guard
 *    alarm (tqt_guard()) fires.
 *  - tqt_fork() forks a remembered child; when the main process fails, every
 *    remembered child is SIGKILLed and reaped before the segments go.
 *  - tqt_init() itself forks: the first process only supervises the test's
 *    main process, and when that one ends in any way (even by a crash or
 *    SIGKILL) it kills the children left behind and unlinks every
 *    /dev/shm/tq-t-<test>-<main pid>-* object, then exits with its status.
 *  - tqt_wait_pid()/tqt_wait_all() wait for children with a bound.
 *
 * Helpers are static (most unused ones are marked so) so that each binary
 * builds warning-free with -Wall -Wextra -Wmissing-prototypes.
 */
#ifndef TQ_TEST_H
#define TQ_TEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <ftw.h>
#include <time.h>
#include <unistd.h>

#include <tq/tq.h>

#define TQT_UNUSED __attribute__((unused))
#define TQT_NORETURN __attribute__((noreturn))
#define TQT_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define TQT_EXIT_PASS 0
#define TQT_EXIT_FAIL 1
#define TQT_EXIT_SKIP 77
/* Exit status of a child whose own guard alarm fired: it blocked. */
#define TQT_EXIT_BLOCKED 3

#define TQT_MAX_SEGS 256
#define TQT_MAX_CHILDREN 1024

static const char *tqt_test = "test";
static pid_t tqt_main_pid;
static char tqt_segs[TQT_MAX_SEGS][TQ_NAME_MAX + 1];
static volatile sig_atomic_t tqt_nsegs;
static unsigned tqt_seg_counter;
static pid_t tqt_children[TQT_MAX_CHILDREN];
static volatile sig_atomic_t tqt_nchildren;

static TQT_UNUSED uint64_t tqt_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static TQT_UNUSED void tqt_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------------
 * Cleanup: children first (so nobody recreates anything), then the names.
 * Only async-signal-safe calls, since the signal handlers use it too.
 */
static void tqt_kill_children(void)
{
	for (int i = 0; i < tqt_nchildren; i++)
		if (tqt_children[i] > 0)
			kill(tqt_children[i], SIGKILL);
	for (int i = 0; i < tqt_nchildren; i++)
		if (tqt_children[i] > 0) {
			while (waitpid(tqt_children[i], NULL, 0) < 0 && errno == EINTR)
				;
			tqt_children[i] = 0;
		}
	tqt_nchildren = 0;
}

static void tqt_unlink_all(void)
{
	for (int i = 0; i < tqt_nsegs; i++)
		if (tqt_segs[i][0])
			shm_unlink(tqt_segs[i]);
	tqt_nsegs = 0;
}

static void tqt_cleanup(void)
{
	if (getpid() != tqt_main_pid)
		return;
	tqt_kill_children();
	tqt_unlink_all();
}

static void tqt_write_str(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));
	(void)r;
}

static void tqt_on_signal(int sig)
{
	if (getpid() != tqt_main_pid) {
		if (sig == SIGALRM) {
			tqt_write_str("tq-test: child guard alarm fired: it blocked\n");
			_exit(TQT_EXIT_BLOCKED);
		}
		_exit(TQT_EXIT_FAIL);
	}
	if (sig == SIGALRM)
		tqt_write_str("tq-test: FAIL: the test's guard alarm fired (it hung)\n");
	else
		tqt_write_str("tq-test: killed by a signal, cleaning up\n");
	tqt_cleanup();
	_exit(TQT_EXIT_FAIL);
}

static volatile sig_atomic_t tqt_sup_signal;

static void tqt_sup_on_signal(int sig)
{
	tqt_sup_signal = sig;
}

static int tqt_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/** Remove a directory tree (tests' temporary directories). */
static void tqt_rm_rf(const char *path)
{
	nftw(path, tqt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The supervisor: the test's first process, which forks the real main
 * process and outlives it whatever happens to it (a crash, a sanitizer
 * abort, SIGKILL): then it SIGKILLs the children left behind (it is their
 * subreaper) and unlinks every segment the main process named. */
static TQT_NORETURN void tqt_supervise(pid_t main_pid)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tqt_sup_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	int st = 0;
	while (waitpid(main_pid, &st, 0) < 0 && errno == EINTR)
		;
	/* Orphans of the main process were handed to us: kill and reap. */
	for (int round = 0; round < 100; round++) {
		int found = 0;
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char path[300], buf[512];
			if (e->d_name[0] < '1' || e->d_name[0] > '9')
				continue;
			snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
			FILE *f = fopen(path, "r");
			if (!f)
				continue;
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			fclose(f);
			buf[n] = 0;
			const char *rp = strrchr(buf, ')');
			int ppid = 0;
			char state = 0;
			if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid()) {
				kill(atoi(e->d_name), SIGKILL);
				found++;
			}
		}
		if (d)
			closedir(d);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!found)
			break;
		tqt_sleep_ms(10);
	}
	/* Every name the main process made starts with this. */
	char prefix[TQ_NAME_MAX + 1];
	snprintf(prefix, sizeof prefix, "tq-t-%s-%d-", tqt_test, (int)main_pid);
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			char name[NAME_MAX + 2];
			snprintf(name, sizeof name, "/%s", e->d_name);
			shm_unlink(name);
		}
	}
	if (d)
		closedir(d);
	/* And every temporary directory (tqt_tmpdir()). */
	d = opendir("/tmp");
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			char path[NAME_MAX + 8];
			snprintf(path, sizeof path, "/tmp/%s", e->d_name);
			tqt_rm_rf(path);
		}
	}
	if (d)
		closedir(d);
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		fprintf(stderr, "tq-test: FAIL: the test process was killed by signal %d (%s)\n",
			WTERMSIG(st), strsignal(WTERMSIG(st)));
	_exit(TQT_EXIT_FAIL);
}

/** First call of every test binary. */
static TQT_UNUSED void tqt_init(const char *test)
{
	tqt_test = test;
	setvbuf(stdout, NULL, _IONBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "tq-test: fork: %s\n", strerror(errno));
		exit(TQT_EXIT_FAIL);
	}
	if (pid > 0)
		tqt_supervise(pid);
	tqt_main_pid = getpid();
	atexit(tqt_cleanup);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tqt_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/** Arm this process's guard: when it fires, a child exits with
 * TQT_EXIT_BLOCKED and the main process fails after cleaning up. */
static TQT_UNUSED void tqt_guard(unsigned seconds)
{
	alarm(seconds);
}

static TQT_UNUSED bool tqt_in_child(void)
{
	return getpid() != tqt_main_pid;
}

/* ------------------------------------------------------------------------
 * Failing
 */
static TQT_NORETURN void tqt_exit_fail(void)
{
	if (getpid() != tqt_main_pid)
		_exit(TQT_EXIT_FAIL);
	exit(TQT_EXIT_FAIL);
}

/* TQ_TEST_SOFT=1 in the environment (a debugging aid, never in CI): a
 * failed check in the main process is printed and counted, and the test
 * goes on, so that one run lists every failure; it still exits 1. */
static int tqt_soft = -1;
static int tqt_soft_failures;

static void tqt_soft_exit(void)
{
	if (getpid() == tqt_main_pid && tqt_soft_failures) {
		fprintf(stderr, "[%s] %d checks failed\n", tqt_test, tqt_soft_failures);
		tqt_cleanup();
		_exit(TQT_EXIT_FAIL);
	}
}

static TQT_UNUSED TQT_PRINTF(3, 4)
void tqt_fail_at(const char *file, int line, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s:%d: FAIL [%s pid %d%s]: %s\n", file, line, tqt_test,
		(int)getpid(), getpid() != tqt_main_pid ? " child" : "", buf);
	if (tqt_soft < 0) {
		const char *e = getenv("TQ_TEST_SOFT");
		tqt_soft = e && *e && *e != '0';
		if (tqt_soft)
			atexit(tqt_soft_exit);
	}
	if (tqt_soft && getpid() == tqt_main_pid) {
		tqt_soft_failures++;
		return;
	}
	tqt_exit_fail();
}

static TQT_UNUSED TQT_NORETURN TQT_PRINTF(1, 2) void tqt_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "SKIP [%s]: ", tqt_test);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (getpid() != tqt_main_pid)
		_exit(TQT_EXIT_SKIP);
	exit(TQT_EXIT_SKIP);
}

#define TQT_LOG(...) do { fprintf(stderr, "[%s] ", tqt_test); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } while (0)

/** The symbolic name of an errno value (positive or negative). */
static const char *tqt_errname(int e)
{
	if (e < 0)
		e = -e;
	switch (e) {
	case 0: return "0";
	case EINVAL: return "EINVAL";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case ENOMEM: return "ENOMEM";
	case ENOSPC: return "ENOSPC";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EUSERS: return "EUSERS";
	case EPROTO: return "EPROTO";
	case EMSGSIZE: return "EMSGSIZE";
	case EAGAIN: return "EAGAIN";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EINTR: return "EINTR";
	case ENOBUFS: return "ENOBUFS";
	case ESTALE: return "ESTALE";
	case EBUSY: return "EBUSY";
	case ERANGE: return "ERANGE";
	case EOVERFLOW: return "EOVERFLOW";
	case EFAULT: return "EFAULT";
	case ENOSYS: return "ENOSYS";
	case EBADF: return "EBADF";
	default: return "E?";
	}
}

static TQT_UNUSED void tqt_describe(char *buf, size_t size, long long r)
{
	if (r < 0 && r > -4096)
		snprintf(buf, size, "%lld (-%s: %s; last error: \"%s\")", r,
			 tqt_errname((int)r), tq_strerror((int)r), tq_last_error(NULL));
	else
		snprintf(buf, size, "%lld", r);
}

/* ------------------------------------------------------------------------
 * Assertions. CHECK_OK() and CHECK_ERR() evaluate to the result so that
 * `int q = CHECK_OK(tq_queue_declare(...));` works.
 */
#define CHECK(cond) do { if (!(cond)) \
	tqt_fail_at(__FILE__, __LINE__, "CHECK(%s) is false", #cond); } while (0)

static TQT_UNUSED TQT_PRINTF(4, 5)
void tqt_fail_cond(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	tqt_fail_at(file, line, "CHECK(%s) is false: %s", cond, buf);
}

#define CHECKF(cond, ...) do { if (!(cond)) \
	tqt_fail_cond(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

#define FAIL(...) tqt_fail_at(__FILE__, __LINE__, __VA_ARGS__)

static TQT_UNUSED int tqt_check_ok(long long r, const char *expr,
					 const char *file, int line)
{
	if (r < 0) {
		char d[512];
		tqt_describe(d, sizeof d, r);
		tqt_fail_at(file, line, "%s failed: %s", expr, d);
	}
	return (int)r;
}
#define CHECK_OK(expr) (tqt_check_ok((long long)(expr), #expr, __FILE__, __LINE__))

static TQT_UNUSED int tqt_check_err(long long r, int want, const char *expr,
					  const char *file, int line)
{
	if (r != want) {
		char d[512];
		tqt_describe(d, sizeof d, r);
		tqt_fail_at(file, line, "%s: want %d (-%s: %s), got %s", expr, want,
			    tqt_errname(want), tq_strerror(want), d);
	}
	return (int)r;
}
#define CHECK_ERR(expr, want) \
	(tqt_check_err((long long)(expr), (want), #expr, __FILE__, __LINE__))

/* The expression must return exactly `want` (a count, an index...). */
#define CHECK_RET(expr, want) do { long long tqt_r_ = (long long)(expr); \
	long long tqt_w_ = (long long)(want); if (tqt_r_ != tqt_w_) { \
	char tqt_d_[512]; tqt_describe(tqt_d_, sizeof tqt_d_, tqt_r_); \
	tqt_fail_at(__FILE__, __LINE__, "%s: want %lld, got %s", #expr, tqt_w_, tqt_d_); } \
	} while (0)

#define TQT_CMP_(a, op, b, T, fmt) do { T tqt_a_ = (T)(a); T tqt_b_ = (T)(b); \
	if (!(tqt_a_ op tqt_b_)) tqt_fail_at(__FILE__, __LINE__, \
	"%s " #op " %s is false: " fmt " vs " fmt, #a, #b, tqt_a_, tqt_b_); } while (0)
/* Signed comparisons. */
#define CHECK_EQ(a, b) TQT_CMP_(a, ==, b, long long, "%lld")
#define CHECK_NE(a, b) TQT_CMP_(a, !=, b, long long, "%lld")
#define CHECK_LT(a, b) TQT_CMP_(a, <, b, long long, "%lld")
#define CHECK_LE(a, b) TQT_CMP_(a, <=, b, long long, "%lld")
#define CHECK_GT(a, b) TQT_CMP_(a, >, b, long long, "%lld")
#define CHECK_GE(a, b) TQT_CMP_(a, >=, b, long long, "%lld")
/* Unsigned 64-bit comparisons (IDs, nanoseconds). */
#define CHECK_EQU(a, b) TQT_CMP_(a, ==, b, unsigned long long, "%llu")
#define CHECK_NEU(a, b) TQT_CMP_(a, !=, b, unsigned long long, "%llu")
#define CHECK_LEU(a, b) TQT_CMP_(a, <=, b, unsigned long long, "%llu")
#define CHECK_GEU(a, b) TQT_CMP_(a, >=, b, unsigned long long, "%llu")
#define CHECK_STREQ(a, b) do { const char *tqt_a_ = (a), *tqt_b_ = (b); \
	if (strcmp(tqt_a_, tqt_b_) != 0) tqt_fail_at(__FILE__, __LINE__, \
	"%s == %s is false: \"%s\" vs \"%s\"", #a, #b, tqt_a_, tqt_b_); } while (0)

/* ------------------------------------------------------------------------
 * Segment names
 */

/** Remember a name to shm_unlink at exit. Main process only. */
static TQT_UNUSED void tqt_remember_seg(const char *name)
{
	if (getpid() != tqt_main_pid)
		FAIL("segment names must be made in the main process");
	if (tqt_nsegs >= TQT_MAX_SEGS)
		FAIL("too many segment names remembered");
	snprintf(tqt_segs[tqt_nsegs], sizeof tqt_segs[0], "%s", name);
	tqt_nsegs = tqt_nsegs + 1;
}

/** A fresh unique name /tq-t-<test>-<pid>-<counter>, remembered for cleanup.
 * buf must hold TQ_NAME_MAX + 1 bytes. */
static TQT_UNUSED char *tqt_segname(char *buf)
{
	snprintf(buf, TQ_NAME_MAX + 1, "/tq-t-%s-%d-%u", tqt_test, (int)getpid(),
		 tqt_seg_counter++);
	tqt_remember_seg(buf);
	return buf;
}

/** Unlink a remembered name now and forget it (it may be absent already). */
static TQT_UNUSED void tqt_segname_drop(const char *name)
{
	shm_unlink(name);
	for (int i = 0; i < tqt_nsegs; i++)
		if (strcmp(tqt_segs[i], name) == 0) {
			int last = tqt_nsegs - 1;
			if (i != last)
				memcpy(tqt_segs[i], tqt_segs[last], sizeof tqt_segs[0]);
			tqt_segs[last][0] = 0;
			tqt_nsegs = last;
			return;
		}
}

/** A fresh empty directory /tmp/tq-t-<test>-<pid>-<counter> (absolute, so
 * it can be a journal directory), removed by the test's supervisor when the
 * test ends however it ends. buf must hold PATH_MAX / 16 bytes. */
static TQT_UNUSED char *tqt_tmpdir(char *buf)
{
	snprintf(buf, PATH_MAX / 16, "/tmp/tq-t-%s-%d-%u", tqt_test, (int)tqt_main_pid,
		 tqt_seg_counter++);
	if (mkdir(buf, 0700) < 0)
		FAIL("mkdir %s: %s", buf, strerror(errno));
	return buf;
}

/** The /dev/shm path of a segment name. */
static TQT_UNUSED void tqt_shm_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
}

/** Create a segment under a fresh name (written to name), or fail. */
static TQT_UNUSED tq *tqt_create(char *name, const struct tq_config *cfg)
{
	tq *t = NULL;
	tqt_segname(name);
	int r = tq_create(name, cfg, &t);
	if (r < 0) {
		char d[512];
		tqt_describe(d, sizeof d, r);
		FAIL("tq_create(%s) failed: %s", name, d);
	}
	if (!t)
		FAIL("tq_create(%s) returned %d but no handle", name, r);
	return t;
}

static TQT_UNUSED tq *tqt_attach(const char *name)
{
	tq *t = NULL;
	int r = tq_attach(name, &t);
	if (r < 0) {
		char d[512];
		tqt_describe(d, sizeof d, r);
		FAIL("tq_attach(%s) failed: %s", name, d);
	}
	if (!t)
		FAIL("tq_attach(%s) returned %d but no handle", name, r);
	return t;
}

/** A small configuration, so that unit tests stay light. */
static TQT_UNUSED struct tq_config tqt_small_config(void)
{
	struct tq_config c;
	tq_config_init(&c);
	c.capacity = 1024;
	c.max_payload = 64 << 10;
	c.procs = 64;
	c.arena_bytes = 8u << 20;
	return c;
}

/* ------------------------------------------------------------------------
 * Processes
 */

/** fork(), remembering the child. In the child, returns 0 with an empty
 * list of children; the child must leave with _exit() (or by failing). */
static TQT_UNUSED pid_t tqt_fork(void)
{
	if (getpid() != tqt_main_pid)
		FAIL("tqt_fork() is for the main process");
	if (tqt_nchildren >= TQT_MAX_CHILDREN)
		FAIL("too many children");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		tqt_nchildren = 0;
		alarm(0);
		return 0;
	}
	tqt_children[tqt_nchildren] = pid;
	tqt_nchildren = tqt_nchildren + 1;
	return pid;
}

static void tqt_forget_child(pid_t pid)
{
	for (int i = 0; i < tqt_nchildren; i++)
		if (tqt_children[i] == pid) {
			tqt_children[i] = tqt_children[tqt_nchildren - 1];
			tqt_nchildren = tqt_nchildren - 1;
			return;
		}
}

/** Wait for one child for at most timeout_ms. Returns 0 and *status when
 * it was reaped, -ETIMEDOUT when it still runs (it is left running). */
static TQT_UNUSED int tqt_wait_pid(pid_t pid, unsigned timeout_ms, int *status)
{
	uint64_t end = tqt_mono_ms() + timeout_ms;
	unsigned nap = 1;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			tqt_forget_child(pid);
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
		if (tqt_mono_ms() >= end)
			return -ETIMEDOUT;
		tqt_sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
}

static TQT_UNUSED void tqt_status_str(char *buf, size_t size, int st)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exit %d%s", WEXITSTATUS(st),
			 WEXITSTATUS(st) == TQT_EXIT_BLOCKED ? " (blocked: guard alarm)" : "");
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(buf, size, "status 0x%x", st);
}

/** Wait for one child and fail unless it exited 0. */
static TQT_UNUSED void tqt_expect_child_ok(pid_t pid, unsigned timeout_ms)
{
	int st = 0;
	if (tqt_wait_pid(pid, timeout_ms, &st) < 0)
		FAIL("child %d still running after %u ms", (int)pid, timeout_ms);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char s[128];
		tqt_status_str(s, sizeof s, st);
		FAIL("child %d failed: %s", (int)pid, s);
	}
}

/** Wait up to timeout_ms for every remembered child. Returns how many did
 * not exit 0; children still running at the deadline are killed, reaped
 * and counted as failures. When abort_flag is not NULL, it is set at the
 * first failure, so that children that watch it can stop early. */
static TQT_UNUSED int tqt_wait_all_abort(unsigned timeout_ms, atomic_int *abort_flag)
{
	uint64_t end = tqt_mono_ms() + timeout_ms;
	int bad = 0;
	unsigned nap = 1;
	while (tqt_nchildren > 0) {
		int st;
		pid_t r = waitpid(-1, &st, WNOHANG);
		if (r > 0) {
			tqt_forget_child(r);
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				char s[128];
				tqt_status_str(s, sizeof s, st);
				TQT_LOG("child %d failed: %s", (int)r, s);
				bad++;
				if (abort_flag)
					atomic_store(abort_flag, 1);
			}
			nap = 1;
			continue;
		}
		if (r < 0 && errno == ECHILD) {
			tqt_nchildren = 0;
			break;
		}
		if (tqt_mono_ms() >= end) {
			TQT_LOG("%d children still running after %u ms: killing them",
				(int)tqt_nchildren, timeout_ms);
			bad += tqt_nchildren;
			tqt_kill_children();
			break;
		}
		tqt_sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
	return bad;
}

static TQT_UNUSED int tqt_wait_all(unsigned timeout_ms)
{
	return tqt_wait_all_abort(timeout_ms, NULL);
}

/* ------------------------------------------------------------------------
 * Shared memory between the test's processes, and randomness
 */

/** Zeroed memory shared with children forked afterwards. */
static TQT_UNUSED void *tqt_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		FAIL("mmap(%zu): %s", size, strerror(errno));
	return p;
}

/** xorshift64* */
static TQT_UNUSED uint64_t tqt_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static TQT_UNUSED uint64_t tqt_seed(void)
{
	const char *e = getenv("TQ_TEST_SEED");
	if (e && *e)
		return strtoull(e, NULL, 0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}

/** Fill buf with bytes derived from (seed, i): checkable later. */
static TQT_UNUSED void tqt_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			s = tqt_rand(&s) | 1;
		p[i] = (uint8_t)(s >> (8 * (i & 7)));
	}
}

static TQT_UNUSED bool tqt_fill_check(const void *buf, size_t len, uint64_t seed)
{
	const uint8_t *p = buf;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			s = tqt_rand(&s) | 1;
		if (p[i] != (uint8_t)(s >> (8 * (i & 7))))
			return false;
	}
	return true;
}

/** true if pid names a live process (not a zombie we could reap). */
static TQT_UNUSED bool tqt_pid_alive(pid_t pid)
{
	if (pid <= 0)
		return false;
	if (kill(pid, 0) == 0) {
		char path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		FILE *f = fopen(path, "r");
		if (!f)
			return false;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		const char *rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
			return false;
		return true;
	}
	return errno == EPERM;
}

/* Scale factors: sanitizer builds run the same code over fewer processes. */
#if defined(TQ_TSAN)
#define TQT_SANITIZED 2
#elif defined(TQ_ASAN)
#define TQT_SANITIZED 1
#else
#define TQT_SANITIZED 0
#endif

#if defined(TQ_SLOW_TESTS)
#define TQT_SLOW 1
#else
#define TQT_SLOW 0
#endif

/* Fork a child that attaches to `name`, leases n tasks (from queue q, or
 * any queue with q < 0), says so through *ready, and then hangs holding
 * them, for a test to kill. Returns once it holds them. */
static TQT_UNUSED pid_t tqt_lease_and_hang(const char *name, int q, int n, int *ready)
{
	pid_t pid = tqt_fork();

	if (pid == 0) {
		tq *c = tqt_attach(name);
		struct tq_lease_opts lo = { .queues = q < 0 ? NULL : &q, .nqueues = q < 0 ? 0 : 1,
					    .timeout_ms = 2000 };
		struct tq_task task;
		for (int i = 0; i < n; i++)
			if (tq_lease(c, &lo, &task, 1) != 1)
				_exit(3);
		__atomic_store_n(ready, 1, __ATOMIC_SEQ_CST);
		for (;;)
			pause();
	}
	for (int i = 0; i < 5000 && !__atomic_load_n(ready, __ATOMIC_SEQ_CST); i++)
		tqt_sleep_ms(1);
	CHECK(__atomic_load_n(ready, __ATOMIC_SEQ_CST));
	return pid;
}

#endif /* TQ_TEST_H */

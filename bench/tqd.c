/* SPDX-License-Identifier: MIT */
/*
 * tqd.c - tqd as a child of tq-bench, and the journal's temporary
 * directory; see tqd.h.
 */
#include "tqd.h"
#include "bench.h"
#include "server.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tq/tq.h>

int bench_tqd_find(const char *opt, char *path, size_t size)
{
	const char *env = getenv("TQ_BENCH_TQD");
	char self[512], dir[512];
	ssize_t n;

	if (opt && *opt) {
		snprintf(path, size, "%s", opt);
		return access(path, X_OK) == 0 ? 0 : -1;
	}
	if (env && *env) {
		snprintf(path, size, "%s", env);
		return access(path, X_OK) == 0 ? 0 : -1;
	}
	/* build/bench/tq-bench -> build/tools/tqd */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		snprintf(path, size, "%s/../tools/tqd", dir);
		if (access(path, X_OK) == 0)
			return 0;
	}
	return bench_find_program("tqd", path, size);
}

int bench_tqd_spawn(char *const argv[], const char *log)
{
	pid_t parent = getpid(), pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_IGN);   /* the harness stops it */
		signal(SIGPIPE, SIG_DFL);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

int bench_tqd_wait_active(tq *t, int pid, uint64_t timeout_ns)
{
	struct tq_proc_info pi[64];
	uint64_t until = bench_now() + timeout_ns;

	while (bench_now() < until) {
		struct timespec ts = { 0, 500000 };
		unsigned cur = 0;
		int n;

		while ((n = tq_procs(t, pi, 64, &cur)) > 0)
			for (int i = 0; i < n; i++)
				if ((pi[i].flags & TQ_PROC_SUPERVISOR) && pi[i].pid == pid)
					return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -ESRCH;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

void bench_tqd_stop(int *pid)
{
	uint64_t until = bench_now() + 3000000000ull;
	int st;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	while (waitpid(*pid, &st, WNOHANG) == 0) {
		struct timespec ts = { 0, 2000000 };

		if (bench_now() > until) {
			kill(*pid, SIGKILL);
			waitpid(*pid, &st, 0);
			break;
		}
		nanosleep(&ts, NULL);
	}
	*pid = 0;
}

const char *bench_journal_base(const char *opt)
{
	const char *tmp = getenv("TMPDIR");

	if (opt && *opt)
		return opt;
	if (tmp && *tmp)
		return tmp;
	return "/var/tmp";
}

int bench_journal_mkdtemp(const char *base, char *dir, size_t size)
{
	int n = snprintf(dir, size, "%s/tq-bench-jnl-%d-XXXXXX", base, (int)getpid());

	if (n < 0 || (size_t)n >= size) {
		dir[0] = 0;
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(dir)) {
		int e = -errno;

		dir[0] = 0;
		return e;
	}
	return 0;
}

void bench_fs_type(const char *path, char *buf, size_t size)
{
	static const struct { unsigned long magic; const char *name; } fs[] = {
		{ 0xEF53, "ext4" }, { 0x01021994, "tmpfs" }, { 0x58465342, "xfs" },
		{ 0x9123683E, "btrfs" }, { 0x794c7630, "overlayfs" }, { 0x6969, "nfs" },
		{ 0x2fc12fc1, "zfs" }, { 0x65735546, "fuse" }, { 0xF2F52010, "f2fs" },
	};
	struct statfs st;

	if (statfs(path, &st) != 0) {
		snprintf(buf, size, "unknown fs");
		return;
	}
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		if ((unsigned long)st.f_type == fs[i].magic) {
			snprintf(buf, size, "%s", fs[i].name);
			return;
		}
	snprintf(buf, size, "fs 0x%lx", (unsigned long)st.f_type);
}

void bench_rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[600];

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			bench_rm_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

void bench_journal_sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[600];
		int pid;

		if (sscanf(e->d_name, "tq-bench-jnl-%d-", &pid) != 1 || pid <= 0 || pid == getpid())
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		bench_rm_tree(path);
	}
	closedir(d);
}

uint64_t bench_drop_cache(const char *dir, uint64_t *total)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t resident = 0;
	long page = sysconf(_SC_PAGESIZE);

	*total = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[600];
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_name[0] == '.' || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
			size_t len = (size_t)st.st_size, pages = (len + (size_t)page - 1) / (size_t)page;
			unsigned char *vec = malloc(pages);
			void *m;

			*total += len;
			if (fdatasync(fd) != 0)
				(void)0;   /* best effort: DONTNEED then keeps the dirty pages */
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
			if (m != MAP_FAILED && vec && mincore(m, len, vec) == 0)
				for (size_t k = 0; k < pages; k++)
					resident += (vec[k] & 1) ? (uint64_t)page : 0;
			if (m != MAP_FAILED)
				munmap(m, len);
			free(vec);
		}
		close(fd);
	}
	closedir(d);
	return resident;
}

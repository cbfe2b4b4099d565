/* SPDX-License-Identifier: MIT */
/*
 * server.c - start and stop the servers of the systems that have one; see
 * server.h.
 */
#include "server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int bench_find_program(const char *name, char *path, size_t size)
{
	const char *env = getenv("PATH");
	char dirs[4096], *save = NULL, *d;

	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin:/usr/bin", env ? env : "");
	for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (!*d)
			continue;
		snprintf(path, size, "%s/%s", d, name);
		if (access(path, X_OK) == 0)
			return 0;
	}
	return -1;
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

int bench_server_prepare(struct bench_server *s)
{
	const char *tmp = getenv("TMPDIR");

	memset(s, 0, sizeof(*s));
	s->port = free_port();
	if (s->port <= 0)
		return -EADDRNOTAVAIL;
	snprintf(s->dir, sizeof(s->dir), "%s/tq-bench-srv-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s->dir)) {
		s->dir[0] = 0;
		return -errno;
	}
	return 0;
}

int bench_tcp_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void log_tail(const struct bench_server *s, char *buf, size_t size)
{
	char path[200], line[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/log", s->dir);
	buf[0] = 0;
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n')
			snprintf(buf, size, "%s", line);
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

int bench_server_spawn(struct run *r, struct bench_server *s, char *const argv[])
{
	pid_t parent = getpid();
	uint64_t until;
	int st;

	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(r->note, sizeof(r->note), "fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		char path[200];
		sigset_t none;
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_IGN);   /* the harness stops it */
		signal(SIGPIPE, SIG_DFL);
		snprintf(path, sizeof(path), "%s/log", s->dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 0);
			close(fd);
		}
		if (chdir(s->dir) != 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	s->pid = pid;
	until = bench_now() + 10000000000ull;
	while (bench_now() < until) {
		int fd = bench_tcp_connect(s->port);
		struct timespec ts = { 0, 5000000 };

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char tail[256];

			s->pid = 0;
			log_tail(s, tail, sizeof(tail));
			snprintf(r->note, sizeof(r->note), "%s exited at start (status %d): %s", argv[0],
				 WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), tail);
			return -ECHILD;
		}
		nanosleep(&ts, NULL);
	}
	snprintf(r->note, sizeof(r->note), "%s did not listen on 127.0.0.1:%d within 10 s", argv[0],
		 s->port);
	bench_server_stop(s);
	return -ETIMEDOUT;
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[400];

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			rm_dir(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

void bench_server_stop(struct bench_server *s)
{
	if (s->pid > 0) {
		uint64_t until = bench_now() + 3000000000ull;
		int st;

		kill(s->pid, SIGTERM);
		while (waitpid(s->pid, &st, WNOHANG) == 0) {
			struct timespec ts = { 0, 5000000 };

			if (bench_now() > until) {
				kill(s->pid, SIGKILL);
				waitpid(s->pid, &st, 0);
				break;
			}
			nanosleep(&ts, NULL);
		}
		s->pid = 0;
	}
	if (s->dir[0]) {
		rm_dir(s->dir);
		s->dir[0] = 0;
	}
}

void bench_program_output(const char *cmd, char *buf, size_t size)
{
	FILE *f = popen(cmd, "r");

	buf[0] = 0;
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		buf[0] = 0;
	pclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

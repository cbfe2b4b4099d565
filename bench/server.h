/* SPDX-License-Identifier: MIT */
/*
 * server.h - servers tq-bench starts for the systems that have one (redis,
 * beanstalkd): on 127.0.0.1, on a port of their own, in a private
 * temporary directory, killed with the harness (PR_SET_PDEATHSIG) and
 * stopped by PID after each run.
 */
#ifndef TQ_BENCH_SERVER_H
#define TQ_BENCH_SERVER_H

#include "bench.h"

struct bench_server {
	int pid;
	int port;
	char dir[128];
};

/* Full path of program `name` on $PATH (or /usr/sbin, /sbin), or -1. */
int bench_find_program(const char *name, char *path, size_t size);
/* Pick a free port and make the directory. 0 or a negative errno. */
int bench_server_prepare(struct bench_server *s);
/* Start argv (argv[0] a full path) with output to DIR/log and wait, for at
 * most 10 s, until the port takes connections. 0, or a negative errno with
 * r->note saying why. */
int bench_server_spawn(struct run *r, struct bench_server *s, char *const argv[]);
/* SIGTERM, wait up to 3 s, SIGKILL; remove the directory. Idempotent. */
void bench_server_stop(struct bench_server *s);
/* A TCP connection to 127.0.0.1:port with TCP_NODELAY, or -1. */
int bench_tcp_connect(int port);
/* First line of `prog args` output, for versions. */
void bench_program_output(const char *cmd, char *buf, size_t size);

#endif /* TQ_BENCH_SERVER_H */

/* SPDX-License-Identifier: MIT */
/*
 * tqd.h - private to tq-bench: what the durable, recovery and failover
 * scenarios share: finding and running the supervisor `tqd` as a child
 * (log to a file, killed with the harness, stopped by PID), and the
 * journal's private temporary directory (made on a real disk, described,
 * removed, its page cache dropped for a cold start).
 */
#ifndef TQ_BENCH_TQD_H
#define TQ_BENCH_TQD_H

#include <stddef.h>
#include <stdint.h>

/* The tqd program: --tqd PATH, else $TQ_BENCH_TQD, else tools/tqd next to
 * this build's bench/ directory, else $PATH. 0 with path set, or -1. */
int bench_tqd_find(const char *opt, char *path, size_t size);

/* Start tqd with argv (argv[0] its full path), stdout and stderr to log
 * (appended), stdin /dev/null, PR_SET_PDEATHSIG. Returns the PID or a
 * negative errno. */
int bench_tqd_spawn(char *const argv[], const char *log);

/* Wait until the process pid holds the supervisor role of t's segment.
 * 0, -ESRCH when it died, -ETIMEDOUT. */
struct tq;
int bench_tqd_wait_active(struct tq *t, int pid, uint64_t timeout_ns);

/* SIGTERM, wait up to 3 s, SIGKILL; reaps. Idempotent on *pid (set to 0). */
void bench_tqd_stop(int *pid);

/* The directory journals go under: --journal-dir, else $TMPDIR, else
 * /var/tmp (on a disk on most systems, where /tmp may be tmpfs). */
const char *bench_journal_base(const char *opt);

/* Make BASE/tq-bench-jnl-<pid>-XXXXXX into dir. 0 or a negative errno. */
int bench_journal_mkdtemp(const char *base, char *dir, size_t size);

/* "ext4", "tmpfs", ... of the file system holding path (into buf). */
void bench_fs_type(const char *path, char *buf, size_t size);

/* Remove a directory tree (journal or server directories). */
void bench_rm_tree(const char *dir);

/* Remove journal directories of tq-bench processes that are gone. */
void bench_journal_sweep(const char *base);

/* fdatasync every file of dir, then drop its pages from the page cache
 * (posix_fadvise DONTNEED). Returns the bytes still resident afterwards
 * (mincore), and *total the files' bytes. */
uint64_t bench_drop_cache(const char *dir, uint64_t *total);

#endif /* TQ_BENCH_TQD_H */

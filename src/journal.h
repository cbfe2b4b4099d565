/* SPDX-License-Identifier: MIT */
/*
 * journal.h - PRIVATE: the journal's file format, the words it keeps in the
 * segment header and the interfaces between journal.c (files, appending,
 * flushing), journal-replay.c (reading a directory back into a fresh
 * segment) and journal-checkpoint.c (rewriting the live state so old files
 * can go). Not part of the API. docs/journal.md explains the protocol and
 * its invariants.
 *
 * Positions are LSNs: byte offsets in one endless log cut into files of
 * file_bytes each; file k holds [k * file_bytes, (k + 1) * file_bytes), its
 * first TQ__JPAGE bytes being the file header. A record never straddles
 * files. Little-endian, as the engine is.
 */
#ifndef TQ_JOURNAL_H
#define TQ_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tq/tq.h>

#define TQ__JMAGIC      0x314e52554f4a5154ull   /* "TQJOURN1" */
#define TQ__JVERSION    1u
#define TQ__JPAGE       4096u                   /* file header */
#define TQ__JALIGN      8u
#define TQ__JMAPS       4u                      /* files a handle keeps mapped */
#define TQ__JGENS       8192u                   /* slot generations per GENS record */

/* The file header, first page of every file. */
struct tq__jfile {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t journal_id;     /* the same in every file of one journal */
	uint64_t file;           /* its index */
	uint64_t file_bytes;
	/* The configuration of the segment that wrote it. */
	uint32_t queues, levels, capacity, max_payload, procs, mode;
	int64_t group;
	uint64_t arena_bytes;
	uint32_t crc;            /* crc32c of the bytes above */
	uint32_t pad;
	/* Written while the file fills, outside the CRC: records lie below
	 * this (rounded up to TQ__JHWM). Raised before any record beyond the
	 * old mark is committed, so a flush that makes a record durable makes
	 * the mark durable too, and replay reads no further. */
	uint64_t hwm;            /* tq__jhwm_word(MiB) */
};
#define TQ__JHWM (1u << 20)

/* The mark in MiB, with its complement as a check: a torn or flipped word
 * decodes to "unknown" (then the whole file is read), never to a lower
 * mark. CAS-able as one word, ordered as the mark. */
static inline uint64_t tq__jhwm_word(uint32_t mib) { return (uint64_t)~mib << 32 | mib; }
static inline int64_t tq__jhwm_mib(uint64_t w)
{
	return (uint32_t)(w >> 32) == (uint32_t)~(uint32_t)w ? (int64_t)(uint32_t)w : -1;
}

/*
 * A record. The first word, (crc << 32 | len), is stored last with release
 * order: a reader that sees it non-zero sees the whole record. crc covers
 * len and bytes [8, len). lsn is the record's own position, so a record
 * copied elsewhere (inside a payload, say) never passes for one.
 */
struct tq__jrec {
	uint32_t len;            /* whole record, multiple of 8 */
	uint32_t crc;
	uint64_t lsn;
	uint16_t type;           /* enum tq__jtype */
	uint16_t pad;
	uint32_t n;              /* entries that follow */
};
#define TQ__JREC_MIN ((uint32_t)sizeof(struct tq__jrec))

enum tq__jtype {
	TQ__J_PAD = 1,           /* nothing: space given up */
	TQ__J_TASKS = 2,         /* n task images (submit, checkpoint) */
	TQ__J_SET = 3,           /* n state changes (fail, requeue, level, recovery) */
	TQ__J_END = 4,           /* n task IDs finished for good (ack, cancel, forget) */
	TQ__J_QUEUE = 5,         /* one queue's declaration and pause state */
	TQ__J_GENS = 6,          /* n slot generations from slot `first` */
	TQ__J_CKPT_BEGIN = 7,    /* a checkpoint starts here */
	TQ__J_CKPT_END = 8,      /* ... and is complete: begin LSN follows */
	TQ__J_SCHED = 9,         /* one schedule, as set, after a tick, or removed */
};

/* Where a task is, in a record: READY, DELAYED (due = not before) or DEAD. */
enum { TQ__JS_READY = 1, TQ__JS_DELAYED = 2, TQ__JS_DEAD = 3 };

/* A task image: everything needed to bring the task back, payload after. */
struct tq__jtask {
	uint64_t id;
	uint64_t submitted_ns;
	uint64_t due_ns;         /* not-before while DELAYED, else 0 */
	uint8_t where;           /* TQ__JS_* */
	uint8_t queue;
	uint8_t level;
	uint8_t attempts;
	uint8_t max_attempts;
	uint8_t pad;
	uint16_t type;
	uint32_t lease_ms;
	uint32_t len;            /* payload bytes, padded to 8 after */
};

/* A state change: the task's new place, level and attempts. */
struct tq__jset {
	uint64_t id;
	uint64_t due_ns;
	uint8_t where;
	uint8_t level;
	uint8_t attempts;
	uint8_t pad[5];
};

struct tq__jqueue {
	uint32_t index;
	uint32_t paused;
	char name[TQ_QUEUE_NAME_MAX + 1];
	struct tq_queue_config qc;
};

struct tq__jsched {
	char name[TQ_QUEUE_NAME_MAX + 1];
	char spec[TQ_SCHEDULE_SPEC_MAX + 1];
	uint32_t queue, level, type, max_attempts, len, removed;
	uint64_t next_ns, tick_ns, last_task, fired;
	/* len payload bytes follow */
};

struct tq__jgens {
	uint32_t first;
	uint32_t pad;
	/* n uint32_t generations follow */
};

/* The journal's words in the segment header (struct tq__hdr). */
struct tq__jhdr {
	char dir[TQ_PATH_MAX];    /* "": no journal */
	uint32_t durability;     /* enum tq_durability */
	uint32_t flush_ms;
	uint64_t file_bytes;
	uint64_t journal_id;
	uint64_t head;           /* replay reads from here: a checkpoint's start */
	uint64_t first_file;     /* files below are gone or going */
	uint64_t prepared;       /* files up to this one exist */
	uint64_t checkpoints;
	uint64_t flushes;
	uint64_t errors;         /* records that could not be written (EIO, ENOSPC) */
	uint64_t last_flush_ns;
	uint64_t last_ckpt_tail; /* tail when the last checkpoint ended */
	uint64_t start_tail;     /* tail when the segment was created */
	uint64_t replay[7];      /* records, tasks, ns, damaged, dropped, damage lsn,
	                          * tasks found but not restorable */
	uint64_t ckpt_lock;      /* token of the handle checkpointing, 0 none */
	_Alignas(64) uint64_t tail;   /* the next record's LSN: producers CAS it */
	uint64_t records;
	_Alignas(64) uint64_t flush_lock; /* token of the flusher, 0 none */
	uint64_t flush_started;  /* flushes begun */
	uint64_t durable;        /* tail when the last complete flush began */
	uint32_t flush_done;     /* futex word: low bits of flushes completed */
	uint32_t flush_waiters;
};

/* A handle's mapping of one journal file. */
struct tq__jmap {
	uint64_t file;
	uint8_t *base;
	int fd;
	uint64_t hwm;            /* the file's high-water mark as last seen */
};

/* crc32c.c */
uint32_t tq__crc32c(uint32_t crc, const void *buf, size_t len);

/* journal.c */
int tq__jnl_setup(tq *t, const struct tq_config *cfg, bool fresh);
void tq__jnl_close(tq *t);
int tq__jnl_reserve(tq *t, uint32_t len, uint8_t **rec, uint64_t *lsn);
void tq__jnl_commit(tq *t, uint8_t *rec, uint64_t lsn, uint32_t len, uint16_t type, uint32_t n);
int tq__jnl_sync_wait(tq *t);
int tq__jnl_map(tq *t, uint64_t file, bool create, uint8_t **base);
void tq__jnl_set(tq *t, uint64_t id, unsigned where, unsigned level, unsigned attempts,
		 uint64_t due_ns);
void tq__jnl_end(tq *t, uint64_t id);
void tq__jnl_end_flush(tq *t);
void tq__jnl_end_due(tq *t);
#define TQ__JEND_MAX 64
void tq__jnl_queue(tq *t, uint32_t q);
int tq__jnl_path(const char *dir, uint64_t file, char *buf, size_t size);
static inline uint32_t tq__jalign(uint64_t n) { return (uint32_t)((n + 7u) & ~7ull); }

/* journal-replay.c */
struct tq__jscan_report {
	uint64_t records;        /* good records */
	uint64_t damaged;        /* damaged regions skipped */
	uint64_t dropped;        /* bytes in them */
	uint64_t damage_lsn;     /* first one's LSN, 0 none */
	uint64_t end_lsn;        /* just past the last good record */
};
typedef int (*tq__jscan_fn)(void *ctx, const struct tq__jrec *rec, const uint8_t *body);
int tq__jnl_scan(const uint8_t *file, size_t size, uint64_t base_lsn, tq__jscan_fn fn, void *ctx,
		 struct tq__jscan_report *rep);
int tq__jnl_config(const char *dir, struct tq_config *cfg);
int tq__jnl_replay(tq *t);

/* journal-checkpoint.c */
int tq__jnl_checkpoint(tq *t);
struct tq__jpending {
	uint8_t *rec;
	uint64_t lsn;
	uint32_t len, want;
};
int tq__jnl_image_begin(tq *t, uint32_t payload_len, struct tq__jpending *p);
void tq__jnl_image_end(tq *t, struct tq__jpending *p, uint32_t idx);

#endif /* TQ_JOURNAL_H */

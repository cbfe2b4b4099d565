/* SPDX-License-Identifier: MIT */
/*
 * proc.c - process records and held lists.
 *
 * Every handle owns one record in the segment. Before a handle takes
 * anything out of shared structures (a free slot, a chunk, a task from a
 * ring) it writes the thing's index into its record's held list; only then
 * does it claim it with a CAS on the thing's own state word. So after the
 * handle dies, a supervisor finds everything it may have held by reading
 * one fixed array (the idea of iceoryx's UsedChunkList), and the state
 * words say which of those it really held.
 *
 * The record also carries the PID and the process start time, so that a
 * supervisor is not fooled when the PID is reused.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handle.h"

/* Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
static uint64_t start_time_of(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long v = 0;
	ssize_t n;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* After ") " come fields 3..: the state, ..., the start time (22).
	 * A zombie has exited: it holds nothing any more, whether or not its
	 * parent reaps it, so it gets a start time nobody has. */
	if (p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return p[1] == ' ' ? UINT64_MAX : 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			  "%*d %*d %llu", &v) != 1)
		return 0;
	return v;
}

int tq__proc_claim(tq *t)
{
	/* Lowest free record first: the first handles get distinct counter
	 * stripes, so a producer and a worker never count on one line. */
	uint32_t n = t->lay.procs, start = 0;

	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = (start + k) % n;
		struct tq__proc *p = tq__proc_at(t, i);
		uint32_t epoch;
		uint64_t token;

		if (tq__load(&p->owner) != 0)
			continue;
		/* Bump the epoch first, so that no two claims of this record
		 * ever produce the same token, even if a claimer dies here. */
		epoch = tq__load(&p->epoch);
		if (!tq__cas32(&p->epoch, epoch, epoch + 1))
			continue;
		epoch++;
		if ((epoch & 0x03ffffffu) == 0)
			continue;
		token = tq__token(epoch, i);
		/* start_time is 0 in a free record (cleared when freed). */
		if (!tq__cas64(&p->owner, 0, tq__owner_word((uint32_t)getpid(), token)))
			continue;
		for (uint32_t h = 0; h < TQ_HELD_MAX; h++)
			tq__store_rlx(&p->held[h], 0);
		tq__store_rlx(&p->start_time, start_time_of(getpid()));
		tq__store_rlx(&p->heartbeat_ns, tq_now_ns());
		tq__store_rlx(&p->attached_ns, tq_now_ns());
		tq__store_rlx(&p->current_task, 0);
		tq__store_rlx(&p->n_leased, 0);
		tq__store_rlx(&p->n_done, 0);
		tq__store_rlx(&p->n_submitted, 0);
		tq__store_rlx(&p->leased_now, 0);
		tq__store_rlx(&p->jres, 0);
		for (uint32_t w = 0; w < TQ_QUEUES_MAX / 64; w++)
			tq__store_rlx(&p->sleeping[w], 0);
		tq__store_rlx(&p->space_sleeping, 0);
		tq__store_rlx(&p->free_mask, 0);
		tq__store_rlx(&p->res_mask, 0);
		tq__store_rlx(&p->recoverer, 0);
		tq__store_rlx(&p->cached, 0);
		tq__store(&p->pid, (int32_t)getpid());
		t->proc = p;
		t->proc_idx = i;
		t->token = token;
		t->st_reserved = tq__st(TQ__K_RESERVED, token);
		t->st_leased = tq__st(TQ__K_LEASED, token);
		t->st_busy = tq__st(TQ__K_BUSY, token);
		t->st_freeing = tq__st(TQ__K_FREEING, token);
		t->stripe = i % TQ__STRIPES;
		t->slot_far = TQ__SLOT_WINDOW;
		t->window_skip = 0;
		t->slot_cursor = (uint32_t)(((uint64_t)i * 2654435761u) %
					    tq__bitmap_words(t->lay.capacity));
		t->chunk_cursor = (uint32_t)(((uint64_t)i * 40503u) % tq__bitmap_words(t->lay.nchunks));
		return 0;
	}
	return -EUSERS;
}

void tq__proc_release(tq *t)
{
	struct tq__proc *p = t->proc;
	bool holds = false;

	tq__cas64(&t->hdr->supervisor, t->token, 0);

	/* Cached free slots go back to the pool. */
	tq__slot_flush(t);
	while (t->ncache) {
		t->ncache--;
		tq__slot_free(t, (uint32_t)t->cache[t->ncache]);
	}
	tq__slot_unname(t, t->res_mask);     /* all of them back in the pool */
	tq__slot_flush(t);
	tq__store_rlx(&p->cached, 0);
	for (uint32_t h = 0; h < TQ_HELD_MAX; h++)
		if (tq__load_rlx(&p->held[h]))
			holds = true;
	if (holds) {
		/* Leased tasks stay recorded here; a supervisor sees a record
		 * with no process (pid 0) and gives them back. */
		tq__store(&p->owner, t->token);
		tq__store(&p->pid, -1);
	} else {
		tq__store_rlx(&p->pid, 0);
		tq__store(&p->start_time, 0);
		tq__store(&p->owner, 0);
	}
	t->proc = NULL;
}

/* Drop the held entries of leases this handle lost (taken back at expiry)
 * on slot idx, or on every slot when idx is TQ__NIL: entries marked as
 * leases whose slot is no longer leased by this handle. Off the hot path:
 * a scan of TQ_HELD_MAX entries, when a finish finds its lease gone or the
 * held list full. */
void tq__held_forget_lost(tq *t, uint32_t idx)
{
	uint64_t mine = t->st_leased;

	for (uint32_t h = 0; h < TQ_HELD_MAX; h++) {
		uint32_t e = tq__load_rlx(&t->proc->held[h]), i = e & 0x3fffffffu;

		if (!t->held_t0[h] || e >> 30 != TQ__H_SLOT || i >= t->lay.capacity ||
		    (idx != TQ__NIL && i != idx) || tq__load(&tq__slot(t, i)->state) == mine)
			continue;
		t->held_t0[h] = 0;
		tq__held_del(t, (int)h);
		if (t->leased_now)
			tq__store_rlx(&t->proc->leased_now, --t->leased_now);
	}
}

int tq__owner_pid(tq *t, uint64_t token)
{
	uint32_t p = tq__token_proc(token);
	uint64_t ow;

	if (p >= t->lay.procs)
		return 0;
	ow = tq__load(&tq__proc_at(t, p)->owner);
	if ((ow & TQ__TOKEN_MASK) != token)
		return 0;
	return (int)(ow >> TQ__TOKEN_BITS);
}

/* Whether the handle holding `token` is alive: its record still carries
 * the token with a PID, that process exists, and its start time is the
 * recorded one (unless the handle has not recorded it yet). */
bool tq__token_alive(tq *t, uint64_t token)
{
	uint32_t p = tq__token_proc(token);
	struct tq__proc *rec;
	uint64_t ow, st;
	pid_t pid;

	if (p >= t->lay.procs)
		return false;
	rec = tq__proc_at(t, p);
	ow = tq__load(&rec->owner);
	if ((ow & TQ__TOKEN_MASK) != token)
		return false;
	pid = (pid_t)(ow >> TQ__TOKEN_BITS);
	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	st = tq__load(&rec->start_time);
	if (!st)
		return start_time_of(pid) != UINT64_MAX;
	return start_time_of(pid) == st;
}

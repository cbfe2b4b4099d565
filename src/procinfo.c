/* SPDX-License-Identifier: MIT */
/*
 * procinfo.c - what the segment records about attached processes, for
 * inspectors (tqtop, tq stats, metrics, tqd's worker pools): state, signs
 * of life and per-handle counts. Read-only and lock-free: records are read
 * relaxed while their owners work, so a row is a recent snapshot.
 */
#include <string.h>

#include "handle.h"

void tq_heartbeat(tq *t)
{
	if (t && t->proc)
		tq__store_rlx(&t->proc->heartbeat_ns, tq_now_ns());
}

static uint32_t proc_state(tq *t, struct tq__proc *rec, uint64_t ow)
{
	uint64_t token = ow & TQ__TOKEN_MASK;

	if (!(ow >> TQ__TOKEN_BITS))
		return TQ_PROC_DETACHED;
	if (!tq__token_alive(t, token))
		return TQ_PROC_DEAD;
	if (tq__load_rlx(&rec->leased_now))
		return TQ_PROC_BUSY;
	for (uint32_t w = 0; w < TQ_QUEUES_MAX / 64; w++)
		if (tq__load_rlx(&rec->sleeping[w]))
			return TQ_PROC_WAITING;
	return TQ_PROC_IDLE;
}

int tq_procs(tq *t, struct tq_proc_info *out, unsigned max, unsigned *cursor)
{
	uint64_t sup;
	unsigned n = 0, p;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!out || !cursor || !max)
		return tq__fail(t, -EINVAL, "out, max and cursor must be given");
	sup = tq__load_rlx(&t->hdr->supervisor);
	for (p = *cursor; p < t->lay.procs && n < max; p++) {
		struct tq__proc *rec = tq__proc_at(t, p);
		uint64_t ow = tq__load(&rec->owner);
		struct tq_proc_info *pi = &out[n];

		if (!ow)
			continue;
		memset(pi, 0, sizeof(*pi));
		pi->pid = (int32_t)(ow >> TQ__TOKEN_BITS);
		if (!pi->pid)
			pi->pid = tq__load_rlx(&rec->pid);
		pi->state = proc_state(t, rec, ow);
		if (sup && sup == (ow & TQ__TOKEN_MASK))
			pi->flags |= TQ_PROC_SUPERVISOR;
		pi->leased_now = tq__load_rlx(&rec->leased_now);
		pi->heartbeat_ns = tq__load_rlx(&rec->heartbeat_ns);
		pi->attached_ns = tq__load_rlx(&rec->attached_ns);
		pi->current_task = tq__load_rlx(&rec->current_task);
		pi->leased = tq__load_rlx(&rec->n_leased);
		pi->done = tq__load_rlx(&rec->n_done);
		pi->submitted = tq__load_rlx(&rec->n_submitted);
		/* A record freed while we read it is not shown. */
		if (tq__load(&rec->owner) != ow)
			continue;
		n++;
	}
	*cursor = p;
	return (int)n;
}

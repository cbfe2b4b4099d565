/* SPDX-License-Identifier: MIT */
/*
 * lease.pml - the lease and finish protocols (docs/protocols.md "Lease" and
 * "Finish"; lease.c take_from(), ring.c tq__ring_pop(), finish.c) with the
 * supervisor taking back dead workers' tasks and expired leases of live
 * ones (recover.c recover_slot() and expire_leases()); workers may die
 * after every step.
 *
 * One task (NSLOT, up to 2) is in one ready ring. Worker 1 leases up to
 * two tasks and worker 2 one (ROUNDS1, ROUNDS2), one at a time, and finish
 * each by ack (no result: LEASED -> FREEING -> FREE), ack with a result
 * (LEASED -> BUSY -> DONE), fail (requeued: the attempt limit is not
 * modelled) or release (requeued). The recoverer recovers dead workers'
 * records and may take back a live worker's lease once (MAXEXPIRE; its
 * deadline passing is a nondeterministic choice).
 *
 * With -DMUTANT_PUSH_STORE (tq__ring_push() before its fix, a plain store
 * of the state), spin finds a task run again after its ack (docs/models.md,
 * "A bug the lease model found"); as the code is now, every check passes.
 *
 * Checked: no task leased by two live workers at once except after its
 * lease was taken back (the expiry, the only case docs/protocols.md
 * allows); a task's fate is decided once (acked at most once, never leased
 * again after); claims in position order (FIFO); no loop spins on a dead
 * worker; and at the end no task lost or stranded (check_end()).
 *
 *   spin -a lease.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -m200000
 */
#ifndef NSLOT
#define NSLOT 1     /* tasks in the ring at the start (1 or 2) */
#endif
#define NPOS  (NSLOT + 6)
#define NPROC 4     /* 1, 2 workers; 3 the recoverer */
#define NHELD 1

#include "common.pml"

#define RECOVERER 3
#ifndef MAXEXPIRE
#define MAXEXPIRE 1
#endif
#ifndef ROUNDS1
#define ROUNDS1 2   /* leases worker 1 takes, one after the other */
#endif
#ifndef ROUNDS2
#define ROUNDS2 1
#endif

byte expiries;

proctype worker(byte me; byte rounds)
{
	bool candie = true;
	byte x, n, rp, w, v, st, tries, prev;
	bool ok, got;

	do
	:: n < rounds ->
		pop(me, 0, x, got);
		if
		:: !got -> STEP(UNHOLD(me, 0)); break
		:: else -> skip
		fi;
		if
		:: true ->       /* tq_ack(), no result */
			STEP(atomic {
				if
				:: S[x] == LEASED(me) ->
					S[x] = FREEING(me);
					acked[x]++;
					ok = true
				:: else -> ok = false   /* -ESTALE */
				fi;
				if :: believer[x] == me -> believer[x] = 0 :: else -> skip fi
			});
			if
			:: ok -> STEP(S[x] = FREE)   /* payload dropped first */
			:: else -> skip
			fi
		:: true ->       /* tq_ack() with a result, fail or release: grab() */
			STEP(atomic {
				if
				:: S[x] == LEASED(me) -> S[x] = BUSY(me); ok = true
				:: else -> ok = false   /* -ESTALE */
				fi;
				if :: believer[x] == me -> believer[x] = 0 :: else -> skip fi
			});
			if
			:: ok ->
				if
				:: true ->   /* ack: result written (abstracted), then DONE */
					STEP(atomic { S[x] = DONE; acked[x]++ })
				:: true ->   /* fail (attempts left) or release: requeue */
					push(me, x)
				fi
			:: else -> skip
			fi
		fi;
		STEP(UNHOLD(me, 0));    /* done_with() / forget_lost() */
		n++; x = 0; ok = false
	:: else -> break
	od;
	STEP(fin[me] = true);
	goto end;
died:
	dead[me] = true;
end:
	skip
}

/* expire_leases() for live worker wk: its lease of the slot its held entry
 * names is past its deadline (a nondeterministic choice): take it back by
 * the same CAS a finishing call makes, and requeue it (end_lease()). */
inline expire(me, wk)
{
	e = HELD(wk, 0);
	if
	:: e != 0 ->
		x = e - 1;
		st = S[x];
		if
		:: st == LEASED(wk) && expiries < MAXEXPIRE ->
			expiries++;
			STEP(HOLD(me, 0, x));
			STEP(atomic {
				if
				:: S[x] == LEASED(wk) ->
					S[x] = BUSY(me);
					expired[x] = true;
					ok = true
				:: else -> ok = false
				fi
			});
			if
			:: ok -> push(me, x)
			:: else -> skip
			fi;
			STEP(UNHOLD(me, 0))
		:: true -> skip         /* not expired (yet) */
		fi
	:: else -> skip
	fi;
	e = 0; x = 0; st = 0; ok = false
}

proctype recoverer(byte me)
{
	bool candie = false;
	byte p, k, e, x, st, w, v, tries, prev;
	bool res, ok;

	do
	:: (fin[1] || recovered[1]) && (fin[2] || recovered[2]) -> break
	:: (dead[1] && !recovered[1]) -> recover_proc(me, 1)
	:: (dead[2] && !recovered[2]) -> recover_proc(me, 2)
	:: expiries < MAXEXPIRE && !dead[1] && !fin[1] && HELD(1, 0) != 0 -> expire(me, 1)
	:: expiries < MAXEXPIRE && !dead[2] && !fin[2] && HELD(2, 0) != 0 -> expire(me, 2)
	od;
	fin[me] = true;
	goto end;
died:
	dead[me] = true;
end:
	skip
}

init
{
	byte p, v, x;
	bool inring[NSLOT];

	atomic {
		/* the tasks, published at positions 0, 1 */
		S[0] = READY(0); cell[0] = 1; accepted[0] = true;
#if NSLOT > 1
		S[1] = READY(1); cell[1] = 2; accepted[1] = true;
#endif
		wpos = NSLOT; lastcommit = NSLOT - 1;
		run worker(1, ROUNDS1);
		run worker(2, ROUNDS2);
		run recoverer(RECOVERER)
	};
	fin[RECOVERER];
	check_end()
}

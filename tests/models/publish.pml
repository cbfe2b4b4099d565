/* SPDX-License-Identifier: MIT */
/*
 * publish.pml - the publish protocol (docs/protocols.md "Publish", submit.c
 * submit_one() and ring.c tq__ring_push()) with concurrent consumers and
 * the recovery of dead producers (recover.c), every process but the
 * recoverer allowed to die after every step.
 *
 * Two producers submit one task each into one ready ring; a worker leases
 * up to two tasks and acks them; a recoverer (tqd's tq_recover()) recovers
 * the record of every process that died. At the end, check_end() asserts
 * that no accepted task was lost or is queued twice, nothing is stranded,
 * consumers never passed a live entry; during the run, assertions check
 * FIFO (commits and claims in position order), that a task is never leased
 * again once acked, and that no loop spins on a dead process (LOOPMAX).
 * Spin's own check of valid end states catches a survivor that blocks.
 *
 *   spin -a publish.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 */
#define NSLOT 2
#define NPOS  4
#define NPROC 5     /* 1, 2 producers; 3 the worker; 4 the recoverer */
#define NHELD 1
#ifndef MAXDEATHS
#define MAXDEATHS 3     /* both producers and the worker may die */
#endif

#include "common.pml"

#define WORKER    3
#define RECOVERER 4

proctype producer(byte me)
{
	bool candie = true;
	byte x = me - 1, w, v, tries, prev;
	bool ok;

	/* P1 (the bitmap bit) abstracted; P2: held first, then the claim */
	STEP(HOLD(me, 0, x));
	STEP(atomic { S[x] == FREE -> S[x] = RESERVED(me) });
	/* P3: fields and payload, complete before the state is written
	 * (abstracted) */
#ifdef MUTANT_UNHOLD_EARLY
	STEP(UNHOLD(me, 0));            /* mutant: drop held before the commit */
#endif
	push(me, x);                    /* P4 state, P5 commit, P6 wpos */
	STEP(UNHOLD(me, 0));            /* P7 */
	STEP(fin[me] = true);
	goto end;
died:
	dead[me] = true;
end:
	skip
}

proctype worker(byte me)
{
	bool candie = true;
	byte x, n, rp, v, st, tries;
	bool ok, got;

	do
	:: n < 2 ->
		/* take_from(): a held entry reserved, then the pop */
		pop(me, 0, x, got);
		if
		:: !got -> STEP(UNHOLD(me, 0)); break
		:: else -> skip
		fi;
		/* tq_ack() without a result: LEASED(me) -> FREEING(me), the
		 * commit; payload dropped; FREE */
		STEP(atomic {
			if
			:: S[x] == LEASED(me) ->
				S[x] = FREEING(me);
				acked[x]++;
				believer[x] = 0;
				ok = true
			:: else -> ok = false
			fi
		});
		if
		:: ok -> STEP(S[x] = FREE)
		:: else -> skip
		fi;
		STEP(UNHOLD(me, 0));
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

proctype recoverer(byte me)
{
	bool candie = false;
	byte p, k, e, x, st, w, v, tries, prev;
	bool res, ok;

	do
	:: (fin[1] || recovered[1]) && (fin[2] || recovered[2]) &&
	   (fin[WORKER] || recovered[WORKER]) -> break
	:: (dead[1] && !recovered[1]) || (dead[2] && !recovered[2]) ||
	   (dead[WORKER] && !recovered[WORKER]) ->
		p = 1;
		do
		:: p < RECOVERER ->
			if
			:: dead[p] && !recovered[p] -> recover_proc(me, p)
			:: else -> skip
			fi;
			p++
		:: else -> break
		od;
		p = 0
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
		run producer(1);
		run producer(2);
		run worker(WORKER);
		run recoverer(RECOVERER)
	};
	fin[RECOVERER];
	check_end()
}

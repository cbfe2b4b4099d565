/* SPDX-License-Identifier: MIT */
/*
 * recovery.pml - the recovery protocol itself (docs/protocols.md
 * "Recovery", recover.c tq_recover()): two recoverers, the first of which
 * may die after every step and is then taken over by the second, through
 * the record's recoverer word; every repair is a CAS from exactly the
 * state found, so a half-done repair is repeated safely.
 *
 * A producer submits one task; a worker leases it once and acks it (with
 * or without a result) or fails/releases it (requeued); both may die after
 * every step. Recoverer 1 (a tqd that may be killed) and recoverer 2 (its
 * standby, which lives) recover every dead record, including recoverer
 * 1's own: what it held BUSY while it moved a task is finished by
 * recoverer 2. A recoverer claims a dead record by CAS on its recoverer
 * word from 0 or from a dead recoverer's token, as tq_recover() does.
 *
 * Checked: the properties of check_end() (nothing lost, stranded or
 * queued twice; I5), FIFO claims, no double lease, no wedge, valid end
 * states.
 *
 *   spin -a recovery.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -m100000
 */
#define NSLOT 1
#define NPOS  6
#define NPROC 5     /* 1 producer, 2 worker, 3 and 4 the recoverers */
#define NHELD 1
#ifndef MAXDEATHS
#define MAXDEATHS 3     /* producer, worker and recoverer 1 may all die */
#endif

#include "common.pml"

#define PRODUCER 1
#define WORKER   2
#define REC1     3
#define REC2     4

proctype producer(byte me)
{
	bool candie = true;
	byte x = 0, w, v, tries, prev;
	bool ok;

	STEP(HOLD(me, 0, x));
	STEP(atomic { S[x] == FREE -> S[x] = RESERVED(me) });
	push(me, x);
	STEP(UNHOLD(me, 0));
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
	byte x, rp, w, v, st, tries, prev;
	bool ok, got;

	/* wait for the task (or for the producer's end) */
	(wpos > 0 || cell[0] != 0 || fin[PRODUCER] || dead[PRODUCER]);
	pop(me, 0, x, got);
	if
	:: !got -> STEP(UNHOLD(me, 0))
	:: got ->
		if
		:: true ->              /* tq_ack(), no result */
			STEP(atomic {
				if
				:: S[x] == LEASED(me) -> S[x] = FREEING(me); acked[x]++; ok = true
				:: else -> ok = false
				fi;
				if :: believer[x] == me -> believer[x] = 0 :: else -> skip fi
			});
			if
			:: ok -> STEP(S[x] = FREE)
			:: else -> skip
			fi
		:: true ->              /* ack with a result, fail, release */
			STEP(atomic {
				if
				:: S[x] == LEASED(me) -> S[x] = BUSY(me); ok = true
				:: else -> ok = false
				fi;
				if :: believer[x] == me -> believer[x] = 0 :: else -> skip fi
			});
			if
			:: ok ->
				if
				:: true -> STEP(atomic { S[x] = DONE; acked[x]++ })
				:: true -> push(me, x)
				fi
			:: else -> skip
			fi
		fi;
		STEP(UNHOLD(me, 0))
	fi;
	STEP(fin[me] = true);
	goto end;
died:
	dead[me] = true;
end:
	skip
}

/* The part of tq_recover() for one record p that looks dead: claim it by
 * CAS on its recoverer word (from 0, or from a dead recoverer), then
 * recover it. Locals: rcv, ok, plus recover_proc's. */
inline try_recover(me, p)
{
	rcv = recv[p];
	if
	:: rcv != 0 && (rcv == me || !dead[rcv]) -> skip   /* someone alive is on it */
	:: else ->
		STEP(atomic {
			if
			:: recv[p] == rcv -> recv[p] = me; ok = true
			:: else -> ok = false
			fi
		});
		if
		:: ok && !recovered[p] -> recover_proc(me, p)
		:: else -> skip
		fi
	fi;
	rcv = 0; ok = false
}

/* Records that may need a recoverer, for recoverer `me`. */
#ifndef MUTANT_NO_TAKEOVER
#define NEEDS(p, me) (p != me && dead[p] && !recovered[p] && \
		      (recv[p] == 0 || recv[p] == me || dead[recv[p]]))
#else
/* mutant: a record claimed by a recoverer that died is never taken over */
#define NEEDS(p, me) (p != me && dead[p] && !recovered[p] && recv[p] == 0)
#endif

proctype recoverer(byte me; bool mortal)
{
	bool candie = mortal;
	byte p, k, e, x, st, w, v, tries, prev, rcv;
	bool res, ok;

	do
	:: mortal && (fin[PRODUCER] || recovered[PRODUCER]) &&
	   (fin[WORKER] || recovered[WORKER]) -> break
	:: !mortal && (fin[PRODUCER] || recovered[PRODUCER]) &&
	   (fin[WORKER] || recovered[WORKER]) && (fin[REC1] || recovered[REC1]) -> break
	:: NEEDS(PRODUCER, me) -> try_recover(me, PRODUCER)
	:: NEEDS(WORKER, me) -> try_recover(me, WORKER)
	:: NEEDS(REC1, me) -> try_recover(me, REC1)
	od;
	STEP(fin[me] = true);
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
		run producer(PRODUCER);
		run worker(WORKER);
		run recoverer(REC1, true);
		run recoverer(REC2, false)
	};
	fin[REC2];
	check_end()
}

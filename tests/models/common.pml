/* SPDX-License-Identifier: MIT */
/*
 * common.pml - the pieces of tq's engine that the models share, written as
 * close to src/ as Promela allows (docs/models.md says what is abstracted).
 *
 * One Promela statement is one atomic step of the C code: a load, a store,
 * or a CAS (an `atomic` block that compares and writes). Every step that
 * writes shared memory is written STEP(stmt): the process either does it
 * or dies right there, for good (SIGKILL). Dying just before a write is
 * dying just after the step before it; dying after a step that only reads
 * is the same as dying before it, so this is "a death after every step".
 * `dead[me]` then tells the recoverers (what tq__token_alive() learns from
 * /proc) that its record may be recovered.
 *
 * The including model defines NSLOT (task slots), NPOS (ring positions),
 * NPROC (process records, token = index, 0 = nobody) and NHELD (held-list
 * entries per record) before including this file, and gives each
 * proctype a local `bool candie` and a `died:` label that sets dead[me].
 */

/* ---- the state word of a slot (layout.h, enum tq__kind) ---------------- */
#define K_FREE      0
#define K_RESERVED  1
#define K_READY     2
#define K_LEASED    4
#define K_BUSY      5
#define K_DONE      6
#define K_FREEING   9
#define ST(k, a)    ((k) * 16 + (a))
#define KIND(s)     ((s) / 16)
#define ARG(s)      ((s) % 16)
#define FREE        ST(K_FREE, 0)
#define DONE        ST(K_DONE, 0)
#define RESERVED(o) ST(K_RESERVED, o)
#define READY(p)    ST(K_READY, p)     /* READY @ (the ring, position p) */
#define LEASED(o)   ST(K_LEASED, o)
#define BUSY(o)     ST(K_BUSY, o)
#define FREEING(o)  ST(K_FREEING, o)
#define NOPOS       255
#define LOOPMAX     (2 * NPOS + 2)

byte S[NSLOT];              /* slot state words: the single truth (I1) */

/* ---- the ring (ring.c): one ready ring, positions 0..NPOS-1 ------------ */
byte cell[NPOS];            /* 0 empty, else slot index + 1 */
byte rpos, wpos;            /* only grow (I5) */

/* ---- process records (proc.c) ------------------------------------------ */
byte held[NPROC * NHELD];   /* slot index + 1, 0 empty */
#define HELD(p, k) held[(p) * NHELD + (k)]
bool dead[NPROC];           /* killed: its record is recoverable */
bool fin[NPROC];            /* returned normally */
bool recovered[NPROC];      /* its record was recovered and freed */
byte recv[NPROC];           /* the recoverer word: who recovers it, 0 none */
byte deaths;                /* deaths so far, at most MAXDEATHS */
#ifndef MAXDEATHS
#define MAXDEATHS 2
#endif

/* ---- ghosts: what the properties talk about ---------------------------- */
bool accepted[NSLOT];       /* its cell CAS happened (P5): must not be lost */
byte acked[NSLOT];          /* times a finishing call decided its fate */
byte believer[NSLOT];       /* the worker that thinks it leases it, 0 none */
bool expired[NSLOT];        /* its lease was taken back from a live worker */
byte lastcommit = NOPOS;    /* position of the last cell commit */
byte lastclaim = NOPOS;     /* position of the last claim by a consumer */

/* Do stmt, or die here. */
#define STEP(stmt) \
	if \
	:: candie && deaths < MAXDEATHS -> deaths++; goto died \
	:: stmt \
	fi

/* A CAS on a shared byte: one step. */
#define CAS(var, old, new) \
	atomic { if :: var == (old) -> var = (new) :: else -> skip fi }

/* tq__held_add / tq__held_del, with a fixed entry per purpose */
#define HOLD(p, k, x)   HELD(p, k) = (x) + 1
#define UNHOLD(p, k)    HELD(p, k) = 0

/*
 * tq__ring_push(t, r, idx, READY), without chunks: the pusher owns slot x.
 *   w = wpos; v = cell[w];
 *   empty: S(x) = READY @ w; CAS cell[w] empty -> x (commit); CAS wpos w -> w+1
 *   full:  CAS wpos w -> w+1 (help a pusher that died or is slow)
 * Every failed round sees wpos or a cell move on, so a survivor never spins
 * on a dead process: the loop ends within LOOPMAX rounds (the C code gives
 * up after 2^16 with -EAGAIN; here that would be a wedge).
 * Locals of the caller: w, v, ok, tries, prev.
 */
inline push(me, x)
{
	tries = 0;
	prev = S[x];                    /* RESERVED(me) or BUSY(me): ours */
	do
	:: tries++;
	   assert(tries <= LOOPMAX);   /* no wedge */
	   w = wpos;
	   assert(w < NPOS);           /* the model's ring is long enough */
	   v = cell[w];
	   if
	   :: v == 0 ->
#ifdef MUTANT_PUSH_STORE
		STEP(S[x] = READY(w));  /* the old ring.c: a plain store */
#else
		/* ring.c: CAS from the state this pusher last wrote; failing,
		 * a recoverer took the slot over and publishes it */
		STEP(atomic {
			if
			:: S[x] == prev -> S[x] = READY(w); ok = true
			:: else -> ok = false
			fi
		});
		if
		:: !ok -> break
		:: else -> prev = READY(w)
		fi;
#endif
		STEP(atomic {
			if
			:: cell[w] == 0 ->
				cell[w] = x + 1;
				ok = true;
				/* commits happen in position order: FIFO */
				assert(lastcommit == NOPOS || w > lastcommit);
				lastcommit = w;
				accepted[x] = true
			:: else -> ok = false
			fi
		});
		if
		:: ok ->
			STEP(CAS(wpos, w, w + 1));
			break
		:: else -> skip         /* another pusher took w: again */
		fi
	   :: else ->
#ifndef MUTANT_NO_HELP
		STEP(CAS(wpos, w, w + 1))
#else
		skip                    /* mutant: wait for the pusher of w */
#endif
	   fi
	od;
	tries = 0; w = 0; v = 0; ok = false; prev = 0
}

/*
 * tq__ring_pop(t, r, READY, LEASED(me), hi, &x): claim the slot the cell at
 * rpos names, by CAS of its state from exactly READY @ rpos (I3), the
 * slot named in held entry k first (I2); skip a cell whose slot is no
 * longer in that state. got = false: empty. Bounded like push.
 * Locals of the caller: rp, v, st, ok, tries.
 */
inline pop(me, k, x, got)
{
	got = false;
	tries = 0;
	do
	:: tries++;
	   assert(tries <= LOOPMAX);   /* no wedge */
	   rp = rpos;
	   if
	   :: rp >= NPOS -> break       /* past the model's end: empty */
	   :: else -> skip
	   fi;
	   v = cell[rp];
	   if
	   :: v == 0 -> break           /* nothing published at rpos */
	   :: else -> skip
	   fi;
	   x = v - 1;
	   st = S[x];
	   if
	   :: st == READY(rp) ->
#ifndef MUTANT_HOLD_AFTER_CLAIM
		STEP(HOLD(me, k, x));   /* I2: named before it is taken */
#endif
		STEP(atomic {
			if
			:: S[x] == READY(rp) ->
				S[x] = LEASED(me);
				ok = true;
				assert(lastclaim == NOPOS || rp > lastclaim);  /* FIFO */
				lastclaim = rp;
				/* nobody alive thinks it holds x, unless its lease
				 * was taken back (expiry) */
				assert(believer[x] == 0 || dead[believer[x]] || expired[x]);
				assert(acked[x] == 0);  /* never run again once acked */
				believer[x] = me;
				expired[x] = false
			:: else -> ok = false
			fi
		});
		if
		:: ok ->
#ifdef MUTANT_HOLD_AFTER_CLAIM
			STEP(HOLD(me, k, x));
#endif
			STEP(CAS(rpos, rp, rp + 1));
			got = true;
			break
		:: else -> skip
		fi
	   :: else ->
		/* claimed, cancelled or moved: skip it */
		STEP(CAS(rpos, rp, rp + 1))
	   fi
	od;
	tries = 0; rp = 0; v = 0; st = 0; ok = false
}

/*
 * ring_holds() of recover.c: whether cell pos holds slot x; "no" once rpos
 * has passed pos (the slot still says it is there, so it never was).
 */
inline ring_holds(pos, x, res)
{
	if
	:: pos < rpos -> res = false
	:: else -> res = (cell[pos] == x + 1)
	fi
#ifdef MUTANT_HOLDS_ALWAYS
	;
	res = true                      /* mutant: trust the state word */
#endif
}

/*
 * recover_slot() of recover.c, for slot x named in dead record `dead_tok`,
 * by recoverer `me` using its held entry k. Every step is a CAS from exactly
 * the state read, so it may be repeated by a later recoverer.
 * Locals of the caller: st, res, ok, w, v, tries, prev.
 */
inline recover_slot(me, k, dead_tok, x)
{
	st = S[x];
	res = false;                    /* true: leave it alone */
	if
	:: KIND(st) == K_RESERVED || KIND(st) == K_LEASED ||
	   KIND(st) == K_BUSY || KIND(st) == K_FREEING ->
		res = (ARG(st) != dead_tok)  /* another handle's now */
	:: KIND(st) == K_READY ->
		ring_holds(ARG(st), x, res)  /* published: nothing to do */
	:: else -> res = true           /* FREE (bit cleared), DONE */
	fi;
	if
	:: !res ->
		STEP(HOLD(me, k, x));
		STEP(atomic {
			if
			:: S[x] == st ->
				if
				:: KIND(st) == K_RESERVED || KIND(st) == K_FREEING ->
					S[x] = FREEING(me)
				:: else -> S[x] = BUSY(me)
				fi;
				ok = true
			:: else -> ok = false
			fi
		});
		if
		:: ok ->
			if
			:: KIND(st) == K_RESERVED || KIND(st) == K_FREEING ->
				/* free_slot(): payload dropped (abstracted) */
				STEP(S[x] = FREE)
			:: else ->
#ifndef MUTANT_NO_FINISH_MOVE
				/* end_lease / finish_move / publish it now */
				push(me, x)
#else
				skip            /* mutant: forget to put it back */
#endif
			fi
		:: else -> skip
		fi;
		STEP(UNHOLD(me, k))
	:: else -> skip
	fi;
	st = 0; res = false; ok = false
}

/* recover_proc() of recover.c: finish each held entry of dead record p,
 * then clear it; then free the record (owner word 0).
 * Locals: k, e, plus recover_slot's. */
inline recover_proc(me, p)
{
	k = 0;
	do
	:: k < NHELD ->
		e = HELD(p, k);
		if
		:: e != 0 -> recover_slot(me, 0, p, e - 1)
		:: else -> skip
		fi;
		STEP(UNHOLD(p, k));
		k++
	:: else -> break
	od;
	STEP(recovered[p] = true);
	k = 0; e = 0
}

/* The end: nobody runs any more. Check that no accepted task was lost
 * (each is acked, or a live entry of the ring reachable from rpos, which
 * a later consumer pops: consumers never pass a live entry, I5), that
 * nothing is stranded (every slot is FREE, DONE or live in the ring) and
 * that no acked task is still queued. Locals: p, v, x, inring[]. */
inline check_end()
{
	p = 0;
	do
	:: p < rpos && p < NPOS ->
		v = cell[p];
		assert(v == 0 || S[v - 1] != READY(p));   /* I5 */
		p++
	:: else -> break
	od;
	p = rpos;
	do
	:: p < NPOS && cell[p] != 0 ->
		v = cell[p];
		if
		:: S[v - 1] == READY(p) ->
			assert(!inring[v - 1]);           /* queued once */
			inring[v - 1] = true
		:: else -> skip
		fi;
		p++
	:: else -> break
	od;
	x = 0;
	do
	:: x < NSLOT ->
		assert(!accepted[x] || acked[x] == 1 || inring[x]);   /* not lost */
		assert(acked[x] <= 1 && !(acked[x] == 1 && inring[x]));
		assert(S[x] == FREE || S[x] == DONE || inring[x]);    /* not stranded */
		x++
	:: else -> break
	od
}

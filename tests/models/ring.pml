/* SPDX-License-Identifier: MIT */
/*
 * ring.pml - the chunked ring itself (ring.c: tq__ring_push with chunk
 * linking and tail helping, tq__ring_pop with head moves and chunk_free,
 * chunk_alloc from the chunk bitmap with the held list and the owner CAS)
 * and recover.c's recover_chunk(), with chunks of ONE cell so that every
 * push links a chunk and every pop frees one. The other models treat the
 * ring as a flat array; this one keeps the chunks, their generations (I4)
 * and the (gen, chunk) head and tail words.
 *
 * Two producers push a task each (their slots reserved beforehand), a
 * worker pops and acks up to two; all may die after every step; a
 * recoverer recovers their records (slots and chunks).
 *
 * Checked, besides check_end() (no task lost, stranded or queued twice,
 * I5), FIFO and the loop bound: a chunk is freed only as the incarnation
 * its freer unlinked or owns (no double free, no free of a chunk in use),
 * and taken from the pool only when its owner word says free.
 *
 * Limit: the default scale (two pushes, two pops) cannot reach the chunk
 * double free of docs/models.md (a linker killed before marking its chunk
 * linked, the chunk then consumed and passed by head while recovery looks
 * at it): that needs three pushes and three pops (-DP2COUNT=2 -DWROUNDS=3),
 * whose search did not finish in minutes. It was shown in C instead.
 *
 *   spin -a ring.pml && cc -O2 -DSAFETY -o pan pan.c && ./pan -m200000
 */
#ifndef P2COUNT
#define P2COUNT 1   /* tasks producer 2 pushes (producer 1 pushes one) */
#endif
#ifndef WROUNDS
#define WROUNDS 2   /* pops the worker tries */
#endif
#define NSLOT (1 + P2COUNT)
#define NPOS  (NSLOT + 2)
#define NPROC 5     /* 1, 2 producers, 3 worker, 4 recoverer */
#define NHELD 2     /* 0: a slot, 1: a chunk */
#define NCH   4     /* chunks in the pool */
#define NIL   15
#ifndef MAXDEATHS
#define MAXDEATHS 2
#endif

#define push push_flat              /* common.pml's flat ring, unused here */
#include "common.pml"
#undef push

#define PAIR(g, c)  ((g) * 16 + (c))
#define GEN(p)      ((p) / 16)
#define LOW(p)      ((p) % 16)
#define LINKED      200             /* owner word once linked into the ring */

byte genx[NCH];     /* gen_next: gen * 16 + next chunk (NIL: none) */
byte cbase[NCH];    /* position of the chunk's one cell */
byte cowner[NCH];   /* 0 free, a token, or LINKED */
bool cbit[NCH];     /* the chunk bitmap */
byte ccell[NCH];    /* the cell: gen * 16 + slot + 1 (0 in the low half: empty) */
byte head, tail;    /* (gen, chunk) pairs */
/* cell[] of common.pml mirrors what was ever committed at each position,
 * for check_end() and ring_holds() */

/* chunk_free(): by whoever unlinked it (head CAS) or owns it. The
 * assertions are the ghost check "no double free": the chunk is still the
 * incarnation its freer unlinked or owns, nobody else owns it, and its bit
 * is still set when cleared. */
inline chunk_free(me, c, g)
{
	assert(GEN(genx[c]) == g);
	assert(cbit[c]);
	STEP(genx[c] = PAIR(g + 1, NIL));
	STEP(atomic {
		assert(cowner[c] == LINKED || cowner[c] == me ||
		       (cowner[c] > 0 && cowner[c] < NPROC && dead[cowner[c]]));
		cowner[c] = 0
	});
	STEP(atomic { assert(cbit[c]); cbit[c] = false })
}

/* chunk_alloc(): take a free bit, name the chunk in held entry 1, claim
 * it by CAS on its owner word, set it up for position b. nc = NIL: none. */
inline chunk_alloc(me, b, nc)
{
	nc = NIL;
	i = 0;
	do
	:: i < NCH ->
		STEP(atomic {
			if
			:: !cbit[i] -> cbit[i] = true; nc = i
			:: else -> skip
			fi
		});
		if
		:: nc != NIL -> break
		:: else -> i++
		fi
	:: else -> break
	od;
	assert(nc != NIL);              /* the model's pool is big enough */
	STEP(HOLD(me, 1, nc));
	STEP(atomic {
		if
		:: cowner[nc] == 0 -> cowner[nc] = me; ok = true
		:: else -> ok = false
		fi
	});
	assert(ok);                     /* bitmap and owner agree here */
	g2 = GEN(genx[nc]);
	assert(g2 < 15);
	STEP(genx[nc] = PAIR(g2, NIL));
	STEP(cbase[nc] = b);
	STEP(ccell[nc] = PAIR(g2, 0));
	i = 0; g2 = 0
}

/* next_pair(): the pair of chunk nx that chunk c (gen g) links to, checked
 * against c still being that incarnation. */
inline next_pair(c, g, nx, pr, res)
{
	pr = PAIR(GEN(genx[nx]), nx);
	res = (GEN(genx[c]) == g)
}

/* tq__ring_push(t, r, x, READY). Locals: w, tl, c, g, gn, b, v, nc, pr,
 * ok, res, i, g2, tries. */
inline cpush(me, x)
{
	tries = 0;
	do
	:: tries++;
	   assert(tries <= 3 * LOOPMAX);
	   w = wpos;
	   tl = tail;
	   c = LOW(tl); g = GEN(tl);
	   gn = genx[c];
	   if
	   :: GEN(gn) != g ->
		/* the tail lagged behind a head that freed its chunk */
		STEP(CAS(tail, tl, head))
	   :: else ->
		b = cbase[c];
		if
		:: w < b -> skip
		:: w >= b + 1 && LOW(gn) == NIL ->
			if
			:: w == b + 1 ->
				chunk_alloc(me, b + 1, nc);
				pr = PAIR(GEN(genx[nc]), nc);
				STEP(atomic {
					if
					:: genx[c] == PAIR(g, NIL) -> genx[c] = PAIR(g, nc); ok = true
					:: else -> ok = false
					fi
				});
				if
				:: ok ->
					STEP(cowner[nc] = LINKED);
					STEP(UNHOLD(me, 1));
					STEP(CAS(tail, tl, pr))
				:: else ->
					chunk_free(me, nc, GEN(genx[nc]));
					STEP(UNHOLD(me, 1))
				fi
			:: else -> skip
			fi
		:: w >= b + 1 && LOW(gn) != NIL ->
			next_pair(c, g, LOW(gn), pr, res);
			if
			:: res -> STEP(CAS(tail, tl, pr))
			:: else -> skip
			fi
		:: w == b ->
			v = ccell[c];
			if
			:: v == PAIR(g, 0) ->
				STEP(S[x] = READY(w));
				STEP(atomic {
					if
					:: ccell[c] == PAIR(g, 0) ->
						ccell[c] = PAIR(g, x + 1);
						cell[w] = x + 1;
						ok = true;
						assert(lastcommit == NOPOS || w > lastcommit);
						lastcommit = w;
						accepted[x] = true
					:: else -> ok = false
					fi
				});
				if
				:: ok -> STEP(CAS(wpos, w, w + 1)); break
				:: else -> skip
				fi
			:: GEN(v) == g && v != PAIR(g, 0) -> STEP(CAS(wpos, w, w + 1))
			:: else -> skip
			fi
		fi
	   fi
	od;
	tries = 0; w = 0; tl = 0; c = 0; g = 0; gn = 0; b = 0; v = 0; nc = 0; pr = 0;
	ok = false; res = false
}

/* tq__ring_pop(t, r, READY, LEASED(me), 0, &x). Locals: rp, hd, c, g, gn,
 * b, v, st, pr, ok, res, tries. */
inline cpop(me, x, got)
{
	got = false;
	tries = 0;
	do
	:: tries++;
	   assert(tries <= 3 * LOOPMAX);
	   rp = rpos;
	   hd = head;
	   c = LOW(hd); g = GEN(hd);
	   gn = genx[c];
	   if
	   :: GEN(gn) != g -> skip      /* head moved on: again */
	   :: else ->
		b = cbase[c];
		if
		:: rp < b -> skip
		:: rp >= b + 1 ->
			if
			:: LOW(gn) == NIL -> break          /* empty */
			:: else ->
				next_pair(c, g, LOW(gn), pr, res);
				if
				:: res ->
					STEP(atomic {
						if
						:: head == hd -> head = pr; ok = true
						:: else -> ok = false
						fi
					});
					if
					:: ok -> chunk_free(me, c, g)
					:: else -> skip
					fi
				:: else -> skip
				fi
			fi
		:: rp == b ->
			v = ccell[c];
			if
			:: GEN(v) != g -> skip
			:: LOW(v) == 0 -> break              /* nothing at rpos */
			:: else ->
				x = LOW(v) - 1;
				st = S[x];
				if
				:: st == READY(rp) ->
					STEP(HOLD(me, 0, x));
					STEP(atomic {
						if
						:: S[x] == READY(rp) ->
							S[x] = LEASED(me);
							ok = true;
							assert(lastclaim == NOPOS || rp > lastclaim);
							lastclaim = rp;
							assert(acked[x] == 0)
						:: else -> ok = false
						fi
					});
					if
					:: ok -> STEP(CAS(rpos, rp, rp + 1)); got = true; break
					:: else -> skip
					fi
				:: else -> STEP(CAS(rpos, rp, rp + 1))
				fi
			fi
		fi
	   fi
	od;
	tries = 0; rp = 0; hd = 0; c = 0; g = 0; gn = 0; b = 0; v = 0; st = 0; pr = 0;
	ok = false; res = false
}

/* recover_chunk(): a chunk named in dead record `dtok`'s held list. */
inline recover_chunk(me, dtok, c)
{
	if
	:: cowner[c] == dtok ->
		/* chunk_reachable(): walk from head */
		res = false;
		hd = LOW(head);
		i = 0;
		do
		:: i < NCH && hd != NIL ->
			if
			:: hd == c -> res = true; break
			:: else -> hd = LOW(genx[hd]); i++
			fi
		:: else -> break
		od;
		if
		:: res -> STEP(CAS(cowner[c], dtok, LINKED))
		:: else ->
			STEP(atomic {
				if
				:: cowner[c] == dtok -> cowner[c] = me; ok = true
				:: else -> ok = false
				fi
			});
			if
			:: ok ->
				g = GEN(genx[c]);
				/* recover.c frees it as chunk_free() does */
				chunk_free(me, c, g)
			:: else -> skip
			fi
		fi
	:: else -> skip
	fi;
	res = false; hd = 0; i = 0; ok = false; g = 0
}

proctype producer(byte me)
{
	bool candie = true;
	byte x, w, tl, c, g, gn, b, v, nc, pr, i, g2, tries;
	bool ok, res;

	byte last = (me == 1 -> 0 : P2COUNT);

	x = me - 1;
	do
	:: x <= last ->
		STEP(HOLD(me, 0, x));
		STEP(S[x] = RESERVED(me));
		cpush(me, x);
		STEP(UNHOLD(me, 0));
		x++
	:: else -> break
	od;
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
	byte x, n, rp, hd, c, g, gn, b, v, st, pr, tries;
	bool ok, res, got;

	do
	:: n < WROUNDS ->
		cpop(me, x, got);
		if
		:: !got -> break
		:: else -> skip
		fi;
		STEP(atomic {
			if
			:: S[x] == LEASED(me) -> S[x] = FREEING(me); acked[x]++; ok = true
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

/* recover_slot's repairs that publish use the chunked push here. */
inline recover_slot_c(me, dtok, x)
{
	st = S[x];
	res = false;
	if
	:: KIND(st) == K_RESERVED || KIND(st) == K_LEASED ||
	   KIND(st) == K_BUSY || KIND(st) == K_FREEING -> res = (ARG(st) != dtok)
	:: KIND(st) == K_READY -> ring_holds(ARG(st), x, res)
	:: else -> res = true
	fi;
	if
	:: !res ->
		STEP(HOLD(me, 0, x));
		STEP(atomic {
			if
			:: S[x] == st ->
				if
				:: KIND(st) == K_RESERVED || KIND(st) == K_FREEING -> S[x] = FREEING(me)
				:: else -> S[x] = BUSY(me)
				fi;
				ok = true
			:: else -> ok = false
			fi
		});
		if
		:: ok && (KIND(st) == K_RESERVED || KIND(st) == K_FREEING) -> STEP(S[x] = FREE)
		:: ok && !(KIND(st) == K_RESERVED || KIND(st) == K_FREEING) -> cpush(me, x)
		:: else -> skip
		fi;
		STEP(UNHOLD(me, 0))
	:: else -> skip
	fi;
	st = 0; res = false; ok = false
}

proctype recoverer(byte me)
{
	bool candie = false;
	byte p, k, e, x, st, w, tl, c, g, gn, b, v, nc, pr, i, g2, hd, tries;
	bool ok, res;

	do
	:: (fin[1] || recovered[1]) && (fin[2] || recovered[2]) &&
	   (fin[3] || recovered[3]) -> break
	:: (dead[1] && !recovered[1]) || (dead[2] && !recovered[2]) ||
	   (dead[3] && !recovered[3]) ->
		p = 1;
		do
		:: p < 4 ->
			if
			:: dead[p] && !recovered[p] ->
				e = HELD(p, 0);
				if
				:: e != 0 -> recover_slot_c(me, p, e - 1)
				:: else -> skip
				fi;
				STEP(UNHOLD(p, 0));
				e = HELD(p, 1);
				if
				:: e != 0 -> recover_chunk(me, p, e - 1)
				:: else -> skip
				fi;
				STEP(UNHOLD(p, 1));
				STEP(recovered[p] = true);
				e = 0
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
	byte q;

	atomic {
		/* the ring: chunk 0 (gen 0) at position 0, linked */
		genx[0] = PAIR(0, NIL); cbase[0] = 0; cowner[0] = LINKED; cbit[0] = true;
		ccell[0] = PAIR(0, 0);
		q = 1;
		do
		:: q < NCH -> genx[q] = PAIR(0, NIL); q++
		:: else -> break
		od;
		head = PAIR(0, 0); tail = PAIR(0, 0);
		run producer(1);
		run producer(2);
		run worker(3);
		run recoverer(4)
	};
	fin[4];
	check_end()
}

/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the bitmap allocator behind slots, ring chunks and payload
 * blocks. A set bit means "in use". The bitmap is only a fast index: the
 * truth about a slot or chunk is its own state word, which the taker claims
 * with a CAS right after taking the bit (see proc.c for why that order is
 * crash-safe). Taking is one atomic OR on one word, giving back one atomic
 * AND, so a process dying between two instructions can at worst leave an
 * item whose bit and state disagree, which a supervisor's sweep repairs.
 */
#include "handle.h"

unsigned tq__pool_take(uint64_t *bits, uint32_t n, uint32_t *cursor, unsigned max, uint32_t *out)
{
	uint32_t nwords = (uint32_t)tq__bitmap_words(n);
	uint32_t w = *cursor < nwords ? *cursor : 0;

	for (uint32_t k = 0; k < nwords; k++, w = (w + 1 == nwords) ? 0 : w + 1) {
		uint64_t v = tq__load_rlx(&bits[w]), mask = 0, got, free_bits;
		unsigned cnt = 0;

		if (v == ~0ull)
			continue;
		free_bits = ~v;
		if (max >= 32) {
			/* Any 32 will do: the free bits of one half word, without
			 * a loop (the refill of a slot cache asks for 32). */
			mask = (uint32_t)free_bits ? free_bits & 0xffffffffull
						   : free_bits & ~0xffffffffull;
		} else {
			while (free_bits && cnt < max) {
				uint64_t low = free_bits & -free_bits;
				mask |= low;
				free_bits &= free_bits - 1;
				cnt++;
			}
		}
		got = mask & ~__atomic_fetch_or(&bits[w], mask, __ATOMIC_SEQ_CST);
		if (!got)
			continue;
		*cursor = w;
		cnt = 0;
		while (got) {
			out[cnt++] = w * 64u + (uint32_t)__builtin_ctzll(got);
			got &= got - 1;
		}
		return cnt;
	}
	return 0;
}

void tq__pool_give(uint64_t *bits, uint32_t idx)
{
	__atomic_fetch_and(&bits[idx / 64u], ~(1ull << (idx % 64u)), __ATOMIC_SEQ_CST);
}

uint64_t tq__pool_used(const uint64_t *bits, uint32_t n)
{
	uint64_t used = 0;
	uint32_t nwords = (uint32_t)tq__bitmap_words(n);

	for (uint32_t w = 0; w < nwords; w++)
		used += (uint64_t)__builtin_popcountll(tq__load_rlx(&bits[w]));
	return used - (uint64_t)(nwords * 64u - n);
}

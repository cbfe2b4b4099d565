/* SPDX-License-Identifier: MIT */
/*
 * test-sweep - tq_sweep() gives back free slots and chunks whose bitmap bit
 * a killed process left set, and nothing that is in use. White-box: it
 * makes the orphans itself through the engine's private layout, since the
 * windows that leave them are a few instructions wide.
 */
#include <string.h>

#include "handle.h"
#include "tq-test.h"

static void set_bit(uint64_t *bits, uint32_t i)
{
	__atomic_fetch_or(&bits[i / 64], 1ull << (i % 64), __ATOMIC_SEQ_CST);
}

static bool bit(const uint64_t *bits, uint32_t i)
{
	return __atomic_load_n(&bits[i / 64], __ATOMIC_SEQ_CST) & (1ull << (i % 64));
}

int main(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	struct tq_segment_info si;
	struct tq_recovery rep;
	struct tq_lease_opts lo = { 0 };
	struct tq_task task;

	tqt_init("sweep");
	tqt_guard(60);
	CHECK_ERR(tq_sweep(NULL, NULL), -EINVAL);
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "work", NULL));

	/* Nothing to sweep in a clean segment with tasks in it. */
	for (int i = 0; i < 10; i++)
		CHECK_RET(tq_submit(t, q, &i, sizeof i, NULL, NULL), 0);
	CHECK_RET(tq_sweep(t, &rep), 0);
	CHECK_EQU(rep.freed, 0);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 10);

	/* Orphans: the last slot and the last chunk, free but with bits set,
	 * as a process killed between taking bits and claiming leaves them. */
	uint32_t slot = t->lay.capacity - 1, chunk = t->lay.nchunks - 1;
	CHECK_EQU(tq__load(&tq__slot(t, slot)->state), 0);
	CHECK_EQU(tq__load(&tq__chunk(t, chunk)->owner), 0);
	set_bit(tq__slot_bits(t), slot);
	set_bit(tq__chunk_bits(t), chunk);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 11);
	/* The first sweep only notes them (a live allocator could be between
	 * taking the bits and claiming); the second gives them back. */
	CHECK_RET(tq_sweep(t, &rep), 0);
	CHECK(bit(tq__slot_bits(t), slot));
	CHECK_RET(tq_sweep(t, &rep), 2);
	CHECK_EQU(rep.freed, 2);
	CHECK(!bit(tq__slot_bits(t), slot));
	CHECK(!bit(tq__chunk_bits(t), chunk));
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 10);
	CHECK_GEU(si.repairs, 2);

	/* A chunk marked linked that no ring reaches (its linker died before
	 * the link CAS, or its consumer before freeing it): freed on the
	 * second sweep too; the rings' own chunks are left alone. */
	uint32_t lc = t->lay.nchunks - 2;
	CHECK_EQU(tq__load(&tq__chunk(t, lc)->owner), 0);
	set_bit(tq__chunk_bits(t), lc);
	tq__store(&tq__chunk(t, lc)->owner, TQ__CHUNK_LINKED | 0);
	CHECK_RET(tq_sweep(t, &rep), 0);
	CHECK(bit(tq__chunk_bits(t), lc));
	CHECK_RET(tq_sweep(t, &rep), 1);
	CHECK(!bit(tq__chunk_bits(t), lc));
	CHECK_EQU(tq__load(&tq__chunk(t, lc)->owner), 0);
	CHECK_RET(tq_sweep(t, &rep), 0);

	/* The tasks are untouched, and the segment fills to its capacity. */
	for (int i = 0; i < 10; i++) {
		CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
		CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	}
	int n = 0;
	while (tq_submit(t, q, "f", 1, NULL, NULL) == 0)
		n++;
	CHECK_EQ(n, (int)cfg.capacity);
	CHECK_RET(tq_sweep(t, &rep), 0);
	tq_detach(t);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test-dead - dead letters: listed oldest first and in pages, gone from the
 * list once forgotten or requeued, and never pinning storage: a dead-letter
 * ring stays short however many letters pass through it, also when an old
 * letter stays (tq_tick moves it so the stale cells behind it can go).
 * White-box for the ring's length, through the engine's private layout.
 */
#include <string.h>

#include "handle.h"
#include "tq-test.h"

static uint64_t kill_one(tq *t, int q, int v)
{
	struct tq_lease_opts lo = { .queues = &q, .nqueues = 1 };
	struct tq_submit_opts so = { .max_attempts = 1 };
	struct tq_task task;
	uint64_t id;

	CHECK_RET(tq_submit(t, q, &v, sizeof v, &so, &id), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, id);
	CHECK_RET(tq_fail(t, id), 1);
	return id;
}

static uint64_t dead_len(tq *t, int q)
{
	return tq__ring_len(t, tq__ring_dead(&t->lay, (uint32_t)q));
}

int main(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	uint64_t ids[5], got[8], cursor = 0;

	tqt_init("dead");
	tqt_guard(120);
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "work", NULL));
	CHECK_ERR(tq_dead_list(t, q, NULL, 1, &cursor), -EINVAL);
	CHECK_ERR(tq_dead_list(t, q, got, 0, &cursor), -EINVAL);
	CHECK_ERR(tq_dead_list(t, 99, got, 1, &cursor), -ENOENT);
	CHECK_RET(tq_dead_list(t, q, got, 8, &cursor), 0);

	for (int i = 0; i < 5; i++)
		ids[i] = kill_one(t, q, i);
	/* Pages of two, oldest first. */
	cursor = 0;
	for (int page = 0; page < 3; page++) {
		int n = tq_dead_list(t, q, got, 2, &cursor);
		CHECK_EQ(n, page < 2 ? 2 : 1);
		for (int k = 0; k < n; k++)
			CHECK_EQU(got[k], ids[page * 2 + k]);
	}
	CHECK_RET(tq_dead_list(t, q, got, 2, &cursor), 0);

	/* Forgotten and requeued letters leave the list. */
	CHECK_RET(tq_forget(t, ids[0]), 0);
	CHECK_RET(tq_requeue_dead(t, ids[2]), 0);
	cursor = 0;
	CHECK_RET(tq_dead_list(t, q, got, 8, &cursor), 3);
	CHECK_EQU(got[0], ids[1]);
	CHECK_EQU(got[1], ids[3]);
	CHECK_EQU(got[2], ids[4]);
	/* The requeued one runs again; purge the rest. */
	struct tq_lease_opts lo = { 0 };
	struct tq_task task;
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, ids[2]);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	for (int k = 0; k < 3; k++)
		CHECK_RET(tq_forget(t, got[k]), 0);
	cursor = 0;
	CHECK_RET(tq_dead_list(t, q, got, 8, &cursor), 0);
	CHECK_LEU(dead_len(t, q), 64);

	/* Many letters through the ring, forgotten oldest first: it stays
	 * short, its chunks go back. */
	for (int i = 0; i < 3000; i++)
		CHECK_RET(tq_forget(t, kill_one(t, q, i)), 0);
	CHECK_LEU(dead_len(t, q), 64);

	/* An old letter stays at the head; 3000 more pass. tq_tick moves the
	 * old one to the tail so the stale cells behind it can go. */
	uint64_t old = kill_one(t, q, -1);
	for (int i = 0; i < 3000; i++)
		CHECK_RET(tq_forget(t, kill_one(t, q, i)), 0);
	CHECK_GEU(dead_len(t, q), 3000);
	for (int i = 0; i < 100 && dead_len(t, q) > 2 * TQ__CHUNK_CELLS; i++)
		CHECK_RET(tq_tick(t), 0);
	CHECK_LEU(dead_len(t, q), 2 * TQ__CHUNK_CELLS);
	cursor = 0;
	CHECK_RET(tq_dead_list(t, q, got, 8, &cursor), 1);
	CHECK_EQU(got[0], old);
	struct tq_info in;
	CHECK_RET(tq_get(t, old, &in), 0);
	CHECK_EQU(in.state, TQ_STATE_DEAD);
	CHECK_RET(tq_requeue_dead(t, old), 0);
	CHECK_RET(tq_lease(t, &lo, &task, 1), 1);
	CHECK_EQU(task.id, old);
	CHECK_RET(tq_ack(t, task.id, NULL, 0), 0);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQU(si.tasks_held, 0);
	tq_detach(t);
	return 0;
}

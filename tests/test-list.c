/* SPDX-License-Identifier: MIT */
/*
 * test-list - tq_list(): tasks of a queue by state, level filter and
 * paging. Pending tasks come most urgent first and FIFO within a level;
 * delayed, leased (also by another process) and dead tasks are found;
 * pages of any size cover every task exactly once.
 */
#include <string.h>

#include "tq-test.h"

static int list_all(tq *t, int q, int level, unsigned state, unsigned page, uint64_t *out,
		    int cap)
{
	uint64_t cursor = 0, buf[64];
	int n = 0, r;

	for (int guard = 0; guard < 10000; guard++) {
		r = tq_list(t, q, level, state, buf, page, &cursor);
		CHECK_GE(r, 0);
		if (r == 0)
			return n;
		for (int k = 0; k < r; k++) {
			CHECK_LT(n, cap);
			out[n++] = buf[k];
		}
	}
	CHECK(!"tq_list never reached the end");
	return n;
}

int main(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config cfg = tqt_small_config();
	uint64_t ids[40], got[64], cursor = 0;
	struct tq_submit_opts so;

	tqt_init("list");
	tqt_guard(60);
	tq *t = tqt_create(name, &cfg);
	int q = CHECK_OK(tq_queue_declare(t, "a", NULL));
	int other = CHECK_OK(tq_queue_declare(t, "b", NULL));
	CHECK_ERR(tq_list(t, q, -1, TQ_STATE_PENDING, NULL, 1, &cursor), -EINVAL);
	CHECK_ERR(tq_list(t, q, 64, TQ_STATE_PENDING, got, 1, &cursor), -EINVAL);
	CHECK_ERR(tq_list(t, q, -1, TQ_STATE_DONE, got, 1, &cursor), -EINVAL);
	CHECK_ERR(tq_list(t, 77, -1, TQ_STATE_PENDING, got, 1, &cursor), -ENOENT);
	CHECK_RET(tq_list(t, q, -1, TQ_STATE_PENDING, got, 8, &cursor), 0);

	/* 30 pending tasks: levels 2, 0, 1 in turn; 5 in the other queue. */
	for (int i = 0; i < 30; i++) {
		memset(&so, 0, sizeof so);
		so.level = (unsigned)((i % 3 + 2) % 3);
		CHECK_RET(tq_submit(t, q, &i, sizeof i, &so, &ids[i]), 0);
	}
	for (int i = 0; i < 5; i++)
		CHECK_RET(tq_submit(t, other, &i, sizeof i, NULL, NULL), 0);
	for (unsigned page = 1; page <= 31; page += 5) {
		int n = list_all(t, q, -1, TQ_STATE_PENDING, page, got, 64);
		CHECK_EQ(n, 30);
		/* Most urgent first, FIFO within a level: ids of level 0 are
		 * i = 1, 4, 7, ...; level 1: 2, 5, ...; level 2: 0, 3, ... */
		int k = 0;
		for (int lv = 0; lv < 3; lv++)
			for (int i = 0; i < 30; i++)
				if ((i % 3 + 2) % 3 == lv)
					CHECK_EQU(got[k++], ids[i]);
	}
	CHECK_EQ(list_all(t, q, 1, TQ_STATE_PENDING, 4, got, 64), 10);
	CHECK_EQ(list_all(t, q, 7, TQ_STATE_PENDING, 4, got, 64), 0);
	CHECK_EQ(list_all(t, other, -1, TQ_STATE_PENDING, 4, got, 64), 5);

	/* A cancelled task leaves the list. */
	CHECK_RET(tq_cancel(t, ids[1]), 0);
	CHECK_EQ(list_all(t, q, 0, TQ_STATE_PENDING, 3, got, 64), 9);

	/* Delayed tasks, filtered to their queue and level. */
	memset(&so, 0, sizeof so);
	so.not_before_ns = tq_now_ns() + 60ull * 1000000000ull;
	uint64_t d0, d1;
	CHECK_RET(tq_submit(t, q, "d", 1, &so, &d0), 0);
	so.level = 2;
	CHECK_RET(tq_submit(t, q, "d", 1, &so, &d1), 0);
	CHECK_RET(tq_submit(t, other, "d", 1, &so, NULL), 0);
	CHECK_EQ(list_all(t, q, -1, TQ_STATE_DELAYED, 1, got, 64), 2);
	CHECK_EQ(list_all(t, q, 2, TQ_STATE_DELAYED, 1, got, 64), 1);
	CHECK_EQU(got[0], d1);

	/* Leased: ours and another process's. */
	struct tq_lease_opts lo = { .queues = &q, .nqueues = 1 };
	struct tq_task task[3];
	CHECK_RET(tq_lease(t, &lo, task, 3), 3);
	int *ready = tqt_shared(sizeof(int));
	pid_t pid = tqt_lease_and_hang(name, q, 2, ready);
	CHECK_EQ(list_all(t, q, -1, TQ_STATE_LEASED, 2, got, 64), 5);
	CHECK_EQ(list_all(t, q, -1, TQ_STATE_PENDING, 7, got, 64), 29 - 5);

	/* Dead. */
	struct tq_submit_opts once = { .max_attempts = 1 };
	uint64_t dead;
	int third = CHECK_OK(tq_queue_declare(t, "c", NULL));
	CHECK_RET(tq_submit(t, third, "x", 1, &once, &dead), 0);
	struct tq_lease_opts lob = { .queues = &third, .nqueues = 1 };
	CHECK_RET(tq_lease(t, &lob, task, 1), 1);
	CHECK_EQU(task[0].id, dead);
	CHECK_RET(tq_fail(t, dead), 1);
	CHECK_EQ(list_all(t, third, -1, TQ_STATE_DEAD, 1, got, 64), 1);
	CHECK_EQU(got[0], dead);
	CHECK_EQ(list_all(t, q, -1, TQ_STATE_DEAD, 1, got, 64), 0);

	kill(pid, SIGKILL);
	int st;
	CHECK_RET(tqt_wait_pid(pid, 5000, &st), 0);
	tq_detach(t);
	return 0;
}

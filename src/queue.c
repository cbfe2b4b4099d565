/* SPDX-License-Identifier: MIT */
/*
 * queue.c - named queues: declaring (or finding) a queue, its settings,
 * pausing and resuming it.
 *
 * A queue's entry goes FREE -> INIT(token) -> ACTIVE with single CASes.
 * Declarers of one name walk the same probe sequence (from a hash of the
 * name) and stop at the first FREE entry, so two processes declaring the
 * same name at once meet at one entry: the loser waits for the winner to
 * finish, or takes the entry over if the winner died (checked by PID and
 * start time), so nobody waits on a dead process for long.
 */
#include <string.h>
#include <unistd.h>

#include "handle.h"

#define DEF_LEASE_MS     30000u
#define DEF_MAX_ATTEMPTS 3u
#define INIT_WAIT_US     2000000u

static int check_qname(tq *t, const char *name)
{
	size_t len;

	if (!name || !*name)
		return tq__fail(t, -EINVAL, "queue name is empty");
	len = strlen(name);
	if (len > TQ_QUEUE_NAME_MAX)
		return tq__fail(t, -ENAMETOOLONG, "queue name is %zu bytes, the limit is %u", len,
				TQ_QUEUE_NAME_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-'))
			return tq__fail(t, -EINVAL, "queue name \"%s\": byte %zu is not [A-Za-z0-9_.:-]",
					name, i);
	}
	return 0;
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static bool name_is(const struct tq__queue *qu, const char *name)
{
	return strncmp(qu->name, name, sizeof(qu->name)) == 0;
}

static int queue_setup(tq *t, uint32_t q, const char *name, const struct tq_queue_config *qc)
{
	struct tq__queue *qu = tq__queue(t, q);
	uint32_t levels = t->lay.levels;
	int e;

	memset(qu->name, 0, sizeof(qu->name));
	memcpy(qu->name, name, strlen(name));
	qu->max_length = qc && qc->max_length ? qc->max_length : 0;
	qu->lease_ms = qc && qc->lease_ms ? qc->lease_ms : DEF_LEASE_MS;
	qu->max_attempts = qc && qc->max_attempts ? qc->max_attempts : DEF_MAX_ATTEMPTS;
	qu->weight = qc && qc->weight ? qc->weight : 1;
	qu->paused = 0;
	qu->retry_base_ms = qc ? qc->retry_base_ms : 0;
	qu->retry_cap_ms = qc && qc->retry_cap_ms ? qc->retry_cap_ms : 3600000u;
	qu->retry_factor = qc && qc->retry_factor ? qc->retry_factor : 200u;
	qu->result_ttl_ms = qc ? qc->result_ttl_ms : 0;
	tq__store(&qu->count, 0);
	for (uint32_t l = 0; l < TQ_LEVELS_MAX; l++) {
		uint32_t w = qc ? qc->level_weight[l] : 0;
		qu->level_weight[l] = w ? w : (l < levels ? 1u << (levels - 1 - l < 31 ? levels - 1 - l : 31) : 0);
	}
	for (uint32_t l = 0; l < levels; l++) {
		e = tq__ring_init(t, tq__ring_ready(&t->lay, q, l));
		if (e < 0)
			return e;
	}
	e = tq__ring_init(t, tq__ring_dead(&t->lay, q));
	return e < 0 ? e : tq__ring_init(t, tq__ring_done(&t->lay, q));
}

int tq_queue_declare(tq *t, const char *name, const struct tq_queue_config *qc)
{
	uint32_t n, start;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = check_qname(t, name);
	if (e < 0)
		return e;
	if (qc) {
		if (qc->max_length > t->lay.capacity)
			return tq__fail(t, -EINVAL, "max_length %u exceeds the capacity %u",
					qc->max_length, t->lay.capacity);
		if (qc->max_attempts > TQ_ATTEMPTS_MAX)
			return tq__fail(t, -EINVAL, "max_attempts %u exceeds %u", qc->max_attempts,
					TQ_ATTEMPTS_MAX);
		for (uint32_t l = 0; l < TQ_LEVELS_MAX; l++)
			if (qc->level_weight[l] > (1u << 20))
				return tq__fail(t, -EINVAL, "level_weight[%u] %u exceeds 2^20", l,
						qc->level_weight[l]);
		if (qc->weight > (1u << 20))
			return tq__fail(t, -EINVAL, "weight %u exceeds 2^20", qc->weight);
		if (qc->retry_factor && (qc->retry_factor < 100 || qc->retry_factor > 1000))
			return tq__fail(t, -EINVAL, "retry_factor %u%% is outside 100..1000",
					qc->retry_factor);
		if (qc->retry_base_ms > 86400000u || qc->retry_cap_ms > 86400000u)
			return tq__fail(t, -EINVAL, "retry_base_ms and retry_cap_ms are at most a day");
	}
	n = t->lay.queues;
	start = name_hash(name) % n;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t q = (start + k) % n;
		struct tq__queue *qu = tq__queue(t, q);
		uint32_t waited = 0;

		for (;;) {
			uint64_t st = tq__load(&qu->state);

			if (st == TQ__Q_ACTIVE) {
				if (name_is(qu, name))
					return (int)q;
				break;                  /* another queue: probe on */
			}
			if (st == TQ__Q_FREE) {
				if (!tq__cas64(&qu->state, TQ__Q_FREE, TQ__Q_INIT | t->token))
					continue;
				goto setup;
			}
			if ((st & ~TQ__ARG_MASK) != TQ__Q_INIT)
				return tq__fail(t, -EPROTO, "queue %u has state 0x%llx", q,
						(unsigned long long)st);
			/* Being declared: wait for it, or take it over if its
			 * declarer died. */
			if (!tq__token_alive(t, st & TQ__ARG_MASK) || waited >= INIT_WAIT_US) {
				if (tq__cas64(&qu->state, st, TQ__Q_INIT | t->token))
					goto setup;
				continue;
			}
			usleep(100);
			waited += 100;
		}
		continue;
setup:
		e = queue_setup(t, q, name, qc);
		if (e < 0) {
			tq__store(&qu->state, TQ__Q_FREE);
			return tq__fail(t, e == -EAGAIN ? -ENOSPC : e, "queue \"%s\": no room for its rings",
					name);
		}
		tq__store(&qu->state, TQ__Q_ACTIVE);
		tq__add(&t->hdr->queues_declared, 1);
		if (tq__jnl_on(t))
			tq__jnl_queue(t, q);
		return (int)q;
	}
	return tq__fail(t, -ENOSPC, "all %u queues are declared", n);
}

int tq_queue_find(tq *t, const char *name)
{
	uint32_t n, start;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = check_qname(t, name);
	if (e < 0)
		return e;
	n = t->lay.queues;
	start = name_hash(name) % n;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t q = (start + k) % n;
		struct tq__queue *qu = tq__queue(t, q);
		uint64_t st = tq__load(&qu->state);

		if (st == TQ__Q_FREE)
			break;
		if (st == TQ__Q_ACTIVE && name_is(qu, name))
			return (int)q;
	}
	return tq__fail(t, -ENOENT, "no queue named \"%s\"", name);
}

int tq__queue_check_fail(tq *t, int q)
{
	if (q < 0 || (uint32_t)q >= t->lay.queues)
		return tq__fail(t, -ENOENT, "queue %d out of range (0..%u)", q, t->lay.queues - 1);
	if (tq__load(&tq__queue(t, (uint32_t)q)->state) != TQ__Q_ACTIVE)
		return tq__fail(t, -ENOENT, "queue %d is not declared", q);
	return 0;
}

int tq_queue_name(tq *t, int q, char *buf, size_t size)
{
	struct tq__queue *qu;
	size_t len;
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!buf)
		return tq__fail(t, -EINVAL, "buf is NULL");
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	qu = tq__queue(t, (uint32_t)q);
	len = strnlen(qu->name, sizeof(qu->name) - 1);
	if (size <= len)
		return tq__fail(t, -ENOSPC, "buffer of %zu bytes for a %zu-byte name", size, len);
	memcpy(buf, qu->name, len);
	buf[len] = 0;
	return (int)len;
}

static int set_paused(tq *t, int q, uint32_t v)
{
	int e;

	if (!t)
		return -EINVAL;
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	tq__store(&tq__queue(t, (uint32_t)q)->paused, v);
	if (!v)
		tq__wake_ready(t, (uint32_t)q, ~0u);
	if (tq__jnl_on(t))
		tq__jnl_queue(t, (uint32_t)q);
	return 0;
}

void tq__queue_config_of(tq *t, uint32_t q, struct tq_queue_config *qc)
{
	struct tq__queue *qu = tq__queue(t, q);

	memset(qc, 0, sizeof(*qc));
	qc->max_length = tq__load_rlx(&qu->max_length);
	qc->lease_ms = tq__load_rlx(&qu->lease_ms);
	qc->max_attempts = tq__load_rlx(&qu->max_attempts);
	qc->weight = tq__load_rlx(&qu->weight);
	for (uint32_t l = 0; l < TQ_LEVELS_MAX; l++)
		qc->level_weight[l] = tq__load_rlx(&qu->level_weight[l]);
	qc->retry_base_ms = tq__load_rlx(&qu->retry_base_ms);
	qc->retry_cap_ms = tq__load_rlx(&qu->retry_cap_ms);
	qc->retry_factor = tq__load_rlx(&qu->retry_factor);
	qc->result_ttl_ms = tq__load_rlx(&qu->result_ttl_ms);
}

/* Replay: declare queue `name` at index q, as the journal recorded it. Only
 * before the segment is attachable, so nobody races. */
int tq__queue_restore(tq *t, uint32_t q, const char *name, const struct tq_queue_config *qc,
		      bool paused)
{
	struct tq__queue *qu = tq__queue(t, q);
	int e;

	if (q >= t->lay.queues || check_qname(t, name) < 0)
		return -EINVAL;
	if (tq__load(&qu->state) == TQ__Q_ACTIVE) {
		tq__store(&qu->paused, paused ? 1u : 0u);
		return 0;
	}
	e = queue_setup(t, q, name, qc);
	if (e < 0)
		return e;
	tq__store(&qu->paused, paused ? 1u : 0u);
	tq__store(&qu->state, TQ__Q_ACTIVE);
	tq__add(&t->hdr->queues_declared, 1);
	return 0;
}

int tq_queue_pause(tq *t, int q)
{
	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	return set_paused(t, q, 1);
}

int tq_queue_resume(tq *t, int q)
{
	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	return set_paused(t, q, 0);
}

int tq_queue_paused(tq *t, int q)
{
	int e;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	e = tq__queue_check(t, q);
	if (e < 0)
		return e;
	return tq__load(&tq__queue(t, (uint32_t)q)->paused) ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * payload.c - where a task's bytes live. Payloads (and results) of up to
 * TQ__INLINE_MAX bytes sit in the slot itself; larger ones take a block of
 * the smallest size class that holds them (256 B, 1 KiB, 4 KiB, ... up to
 * max_payload), falling back to larger classes when a class is exhausted.
 *
 * A block belongs to the slot whose `block` field names it. The block's bit
 * is taken before the slot names it, and the slot stops naming it before the
 * bit is given back: a process dying in between leaks the block until a
 * supervisor's sweep (blocks in use that no slot names), but never frees a
 * block twice.
 */
#include <string.h>

#include "handle.h"

int tq__class_for(const struct tq__layout *l, uint32_t len)
{
	for (uint32_t k = 0; k < l->nclasses; k++)
		if (l->class_size[k] >= len)
			return (int)k;
	return -EMSGSIZE;
}

int tq__payload_store(tq *t, struct tq__slot *s, const void *data, uint32_t len)
{
	uint32_t b;
	int k;

	if (len > t->lay.max_payload)
		return -EMSGSIZE;
	if (len <= TQ__INLINE_MAX) {
		if (len)
			memcpy(s->data, data, len);
		tq__store_rlx(&s->block, 0);
		tq__store_rlx(&s->len, len);
		return 0;
	}
	k = tq__class_for(&t->lay, len);
	if (k < 0)
		return k;
	for (; (uint32_t)k < t->lay.nclasses; k++) {
		if (tq__pool_take(tq__class_bits(t, (uint32_t)k), t->lay.class_count[k],
				  &t->class_cursor[k], 1, &b) == 1) {
			tq__store_rlx(&s->block, tq__blockref((uint32_t)k, b));
			memcpy(tq__block(t, (uint32_t)k, b), data, len);
			tq__store_rlx(&s->len, len);
			return 0;
		}
	}
	return -EAGAIN;
}

void tq__payload_drop_block(tq *t, struct tq__slot *s)
{
	uint32_t ref, cls, idx;

	tq__store_rlx(&s->len, 0);
	ref = tq__load_rlx(&s->block);
	tq__store(&s->block, 0);
	cls = tq__blockref_class(ref);
	idx = tq__blockref_index(ref);
	if (cls < t->lay.nclasses && idx < t->lay.class_count[cls])
		tq__pool_give(tq__class_bits(t, cls), idx);
}

const void *tq__payload_ptr_block(tq *t, const struct tq__slot *s, uint32_t *lenp)
{
	uint32_t len = tq__load_rlx(&s->len), ref, cls, idx;

	*lenp = 0;
	if (len > t->lay.max_payload)
		return NULL;
	if (len <= TQ__INLINE_MAX) {
		*lenp = len;
		return s->data;
	}
	ref = tq__load_rlx(&s->block);
	cls = tq__blockref_class(ref);
	idx = tq__blockref_index(ref);
	if (cls >= t->lay.nclasses || idx >= t->lay.class_count[cls] || t->lay.class_size[cls] < len)
		return NULL;
	*lenp = len;
	return tq__block(t, cls, idx);
}

/* Replace the slot's bytes with new ones (an ack's result). On -EAGAIN
 * (no block free) the old bytes are left as they were. */
int tq__payload_replace(tq *t, struct tq__slot *s, const void *data, uint32_t len)
{
	uint32_t b;
	int k;

	if (len > t->lay.max_payload)
		return -EMSGSIZE;
	if (len <= TQ__INLINE_MAX) {
		tq__payload_drop(t, s);
		return tq__payload_store(t, s, data, len);
	}
	k = tq__class_for(&t->lay, len);
	if (k < 0)
		return k;
	for (; (uint32_t)k < t->lay.nclasses; k++) {
		if (tq__pool_take(tq__class_bits(t, (uint32_t)k), t->lay.class_count[k],
				  &t->class_cursor[k], 1, &b) == 1) {
			memcpy(tq__block(t, (uint32_t)k, b), data, len);
			tq__payload_drop(t, s);
			tq__store_rlx(&s->block, tq__blockref((uint32_t)k, b));
			tq__store_rlx(&s->len, len);
			return 0;
		}
	}
	return -EAGAIN;
}

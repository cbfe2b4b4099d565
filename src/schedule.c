/* SPDX-License-Identifier: MIT */
/*
 * schedule.c - periodic tasks: the table of schedules in the segment
 * header, tq_schedule_set/remove/list, and firing due ticks exactly once
 * (tq__sched_run, from the active supervisor's tq_tick()).
 *
 * Firing tick T of schedule S: reserve and fill a slot, store its ID in
 * S.task (with S.tick = T) before publishing it, publish, then clear S.task
 * and move S.next past T. A supervisor that dies anywhere in between leaves
 * either no ID (the tick is fired again; the half-filled slot is freed by
 * recovery), or an ID whose slot is still reserved (recovery leaves it
 * alone, tq__sched_pending(); the next supervisor publishes it), or an ID
 * already published (the next supervisor only clears S.task). In every case
 * exactly one task exists for T. docs/schedules.md has the table.
 */
#include <string.h>
#include <unistd.h>

#include "cron.h"
#include "handle.h"

#define LOCK_TRIES 200
#define CATCHUP_STEPS 100000

static bool valid_name(const char *s)
{
	size_t n = strnlen(s, TQ_QUEUE_NAME_MAX + 1);

	if (!n || n > TQ_QUEUE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

/* The table lock, taken over from a dead holder; false if a live handle
 * keeps it for long (it never does: edits and fires take microseconds). */
static bool lock(tq *t)
{
	for (int i = 0; i < LOCK_TRIES; i++) {
		uint64_t h = tq__load(&t->hdr->sched_lock);

		if (!h && tq__cas64(&t->hdr->sched_lock, 0, t->token))
			return true;
		if (h && h != t->token && !tq__token_alive(t, h) &&
		    tq__cas64(&t->hdr->sched_lock, h, t->token))
			return true;
		if (h == t->token)
			return true;
		usleep(100);
	}
	return false;
}

static void unlock(tq *t)
{
	tq__cas64(&t->hdr->sched_lock, t->token, 0);
}

/* Under the lock: entries a dead editor left half-written are dropped. */
static void tidy(tq *t)
{
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX; i++)
		if (tq__load(&t->hdr->sched[i].state) == TQ__S_EDIT)
			tq__store(&t->hdr->sched[i].state, TQ__S_FREE);
}

static int find(tq *t, const char *name)
{
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX; i++) {
		struct tq__sched *s = &t->hdr->sched[i];

		if (tq__load(&s->state) == TQ__S_ACTIVE &&
		    strncmp(s->name, name, sizeof(s->name)) == 0)
			return (int)i;
	}
	return -ENOENT;
}

void tq__jnl_sched(tq *t, uint32_t i, bool removed)
{
	struct tq__sched *s = &t->hdr->sched[i];
	struct tq__jsched js;
	uint32_t plen = tq__load_rlx(&s->len), len;
	uint8_t *rec;
	uint64_t lsn;

	if (plen > TQ_SCHEDULE_PAYLOAD_MAX)
		return;
	memset(&js, 0, sizeof(js));
	memcpy(js.name, s->name, sizeof(js.name) - 1);
	memcpy(js.spec, s->spec, sizeof(js.spec) - 1);
	js.queue = s->queue;
	js.level = s->level;
	js.type = s->type;
	js.max_attempts = s->max_attempts;
	js.len = removed ? 0 : plen;
	js.removed = removed;
	js.next_ns = s->next_ns;
	js.tick_ns = s->tick_ns;
	js.last_task = s->last_task;
	js.fired = s->fired;            /* count << 16 | tag, as in the segment */
	len = TQ__JREC_MIN + tq__jalign(sizeof(js) + js.len);
	if (tq__jnl_reserve(t, len, &rec, &lsn) < 0)
		return;
	memcpy(rec + TQ__JREC_MIN, &js, sizeof(js));
	memcpy(rec + TQ__JREC_MIN + sizeof(js), s->payload, js.len);
	memset(rec + TQ__JREC_MIN + sizeof(js) + js.len, 0, len - TQ__JREC_MIN - sizeof(js) - js.len);
	tq__jnl_commit(t, rec, lsn, len, TQ__J_SCHED, 1);
}

int tq_schedule_set(tq *t, const struct tq_schedule *in)
{
	struct tq__cron cron;
	char why[128];
	int e, old, slot = -1;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!in)
		return tq__fail(t, -EINVAL, "schedule is NULL");
	if (!valid_name(in->name))
		return tq__fail(t, -EINVAL, "schedule name \"%.*s\" is not 1..%u of [A-Za-z0-9_.:-]",
				TQ_QUEUE_NAME_MAX, in->name, TQ_QUEUE_NAME_MAX);
	if (!memchr(in->spec, 0, sizeof(in->spec)))
		return tq__fail(t, -EINVAL, "spec is not terminated within %u bytes",
				TQ_SCHEDULE_SPEC_MAX);
	why[0] = 0;
	if (tq__cron_parse(in->spec, &cron, why, sizeof(why)) < 0)
		return tq__fail(t, -EINVAL, "schedule spec \"%s\": %s", in->spec, why);
	e = tq__queue_check(t, in->queue);
	if (e < 0)
		return e;
	if (in->level >= t->lay.levels)
		return tq__fail(t, -EINVAL, "level %u, the segment has %u", in->level, t->lay.levels);
	if (in->type > TQ_TYPE_MAX || in->max_attempts > TQ_ATTEMPTS_MAX)
		return tq__fail(t, -EINVAL, "type or max_attempts out of range");
	if (in->len > TQ_SCHEDULE_PAYLOAD_MAX || in->len > t->lay.max_payload)
		return tq__fail(t, -EMSGSIZE, "schedule payload of %u bytes, at most %u", in->len,
				TQ_SCHEDULE_PAYLOAD_MAX < t->lay.max_payload ?
				TQ_SCHEDULE_PAYLOAD_MAX : t->lay.max_payload);
	if (in->len && !in->payload)
		return tq__fail(t, -EINVAL, "payload is NULL");
	if (!tq__cron_next(&cron, tq_now_ns()))
		return tq__fail(t, -EINVAL, "schedule spec \"%s\" never fires", in->spec);
	if (!lock(t))
		return tq__fail(t, -EBUSY, "the schedule table is busy");
	tidy(t);
	old = find(t, in->name);
	/* A new entry is written whole, then swapped in for the old one. */
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX && slot < 0; i++)
		if (tq__load(&t->hdr->sched[i].state) == TQ__S_FREE)
			slot = (int)i;
	if (slot < 0) {
		unlock(t);
		return tq__fail(t, -ENOSPC, "all %u schedules are set", TQ_SCHEDULES_MAX);
	}
	struct tq__sched *s = &t->hdr->sched[slot];

	tq__store(&s->state, TQ__S_EDIT);
	memset(s->name, 0, sizeof(s->name));
	memcpy(s->name, in->name, strlen(in->name));
	memset(s->spec, 0, sizeof(s->spec));
	memcpy(s->spec, in->spec, strlen(in->spec));
	s->queue = (uint32_t)in->queue;
	s->level = in->level;
	s->type = in->type;
	s->max_attempts = in->max_attempts;
	s->len = in->len;
	if (in->len)
		memcpy(s->payload, in->payload, in->len);
	s->tick_ns = 0;
	s->task = 0;
	s->last_task = 0;
	s->fired = 0;
	s->next_ns = tq__cron_next(&cron, tq_now_ns());
	tq__store(&s->state, TQ__S_ACTIVE);
	if (old >= 0) {
		struct tq__sched *o = &t->hdr->sched[old];

		/* A tick of the old one being fired finishes as it was. */
		if (tq__load(&o->task)) {
			s->tick_ns = o->tick_ns;
			s->task = o->task;
		}
		tq__store(&o->state, TQ__S_FREE);
	}
	if (tq__jnl_on(t))
		tq__jnl_sched(t, (uint32_t)slot, false);
	unlock(t);
	return slot;
}

int tq_schedule_remove(tq *t, const char *name)
{
	int i;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!name)
		return tq__fail(t, -EINVAL, "name is NULL");
	if (!lock(t))
		return tq__fail(t, -EBUSY, "the schedule table is busy");
	tidy(t);
	i = find(t, name);
	if (i < 0) {
		unlock(t);
		return tq__fail(t, -ENOENT, "no schedule named \"%s\"", name);
	}
	if (tq__jnl_on(t))
		tq__jnl_sched(t, (uint32_t)i, true);
	tq__store(&t->hdr->sched[i].state, TQ__S_FREE);
	unlock(t);
	return 0;
}

int tq_schedule_list(tq *t, struct tq_schedule_info *out, unsigned max)
{
	unsigned n = 0;

	if (!t)
		return -EINVAL;
	t->err[0] = 0;
	if (!out && max)
		return tq__fail(t, -EINVAL, "out is NULL");
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX && n < max; i++) {
		struct tq__sched *s = &t->hdr->sched[i];
		struct tq_schedule_info *o = &out[n];

		if (tq__load(&s->state) != TQ__S_ACTIVE)
			continue;
		memset(o, 0, sizeof(*o));
		memcpy(o->name, s->name, sizeof(o->name) - 1);
		memcpy(o->spec, s->spec, sizeof(o->spec) - 1);
		o->queue = tq__load_rlx(&s->queue);
		o->level = tq__load_rlx(&s->level);
		o->type = tq__load_rlx(&s->type);
		o->len = tq__load_rlx(&s->len);
		o->next_ns = tq__load_rlx(&s->next_ns);
		o->last_tick_ns = tq__load_rlx(&s->fired) >> 16 ? tq__load_rlx(&s->tick_ns) : 0;
		o->last_task = tq__load_rlx(&s->last_task);
		o->fired = tq__load_rlx(&s->fired) >> 16;
		if (tq__load(&s->state) == TQ__S_ACTIVE)
			n++;
	}
	return (int)n;
}

/* Whether id is a schedule's tick being fired: recovery must leave its
 * reserved slot to the supervisor, which publishes it. */
bool tq__sched_pending(tq *t, uint64_t id)
{
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX; i++)
		if (tq__load(&t->hdr->sched[i].task) == id &&
		    tq__load(&t->hdr->sched[i].state) == TQ__S_ACTIVE)
			return true;
	return false;
}

/* The tick after T: the next one strictly after T (0: none). */
static uint64_t next_tick(const struct tq__sched *s, uint64_t after)
{
	struct tq__cron cron;

	if (tq__cron_parse(s->spec, &cron, NULL, 0) < 0)
		return 0;
	return tq__cron_next(&cron, after);
}

/* The count of fired ticks and a tag of the last tick counted share one
 * word, stored at once: a supervisor killed in tick_done() and the one
 * that finishes its tick never count it twice (a tag collision, 1 in 2^16,
 * would miss one count; the tasks themselves are exact). */
static uint16_t tick_tag(uint64_t tick)
{
	return (uint16_t)(tick ^ tick >> 16 ^ tick >> 32 ^ tick >> 48) | 1;
}

static void count_tick(struct tq__sched *s)
{
	uint64_t w = tq__load(&s->fired);
	uint16_t tag = tick_tag(s->tick_ns);

	if ((uint16_t)w != tag)
		tq__store(&s->fired, ((w >> 16) + 1) << 16 | tag);
}

/* Tick done: remember it, and move on past now. */
static void tick_done(tq *t, uint32_t i, uint64_t id, uint64_t now)
{
	struct tq__sched *s = &t->hdr->sched[i];

	s->last_task = id;
	count_tick(s);
	s->next_ns = next_tick(s, s->tick_ns > now ? s->tick_ns : now);
	tq__store(&s->task, 0);
	if (tq__jnl_on(t))
		tq__jnl_sched(t, i, false);
}

/* A tick whose supervisor died half-way: publish its task if that never
 * happened. 0 done, -EAGAIN not yet (its slot is still another live
 * handle's). */
static int resolve(tq *t, uint32_t i, uint64_t now)
{
	struct tq__sched *s = &t->hdr->sched[i];
	uint64_t id = tq__load(&s->task), st;
	uint32_t idx = (uint32_t)id;
	struct tq__slot *sl;
	struct tq__jpending jp;
	bool jp_ok = false;
	int e;

	if (idx >= t->lay.capacity) {
		tick_done(t, i, 0, now);
		return 0;
	}
	sl = tq__slot(t, idx);
	st = tq__load(&sl->state);
	if (tq__load(&sl->gen) != (uint32_t)(id >> 32) || tq__st_kind(st) != TQ__K_RESERVED) {
		tick_done(t, i, id, now);       /* it was published */
		return 0;
	}
	if (tq__st_arg(st) != t->token && tq__token_alive(t, tq__st_arg(st)))
		return -EAGAIN;
	/* Reserved by a dead supervisor, filled: publish it (journaled
	 * before, as any submit). */
	if (!tq__cas64(&sl->state, st, t->st_reserved))
		return -EAGAIN;
	if (tq__jnl_on(t))
		jp_ok = tq__jnl_image_begin(t, tq__load_rlx(&sl->len), &jp) == 0;
	e = tq__publish_ready(t, idx, tq__load_rlx(&sl->queue), tq__load_rlx(&sl->level));
	if (jp_ok)
		tq__jnl_image_end(t, &jp, idx);
	if (e < 0)
		return e;
	tq__count(t, tq__load_rlx(&sl->queue), tq__load_rlx(&sl->level), TQ__C_SUBMITTED, 1);
	tick_done(t, i, id, now);
	return 0;
}

/* Fire one due schedule: the latest tick at or before now. */
static int fire(tq *t, uint32_t i, uint64_t now)
{
	struct tq__sched *s = &t->hdr->sched[i];
	uint64_t tick = s->next_ns, id = 0, n;
	int e;

	/* Catch up: one task for the latest missed tick. */
	for (int k = 0; k < CATCHUP_STEPS && (n = next_tick(s, tick)) && n <= now; k++)
		tick = n;
	if (tq__queue_check(t, (int)s->queue) < 0) {
		/* Its queue is gone: nothing to fire into. */
		s->tick_ns = tick;
		s->next_ns = next_tick(s, now);
		return 0;
	}
	s->tick_ns = tick;
	/* The task's submit time is its tick: the handler knows which tick
	 * it runs for, however late the supervisor fired it. */
	e = tq__submit_announced(t, s->queue, s->payload, s->len, s->level, s->type,
				 s->max_attempts, tick, &s->task, &id);
	if (e < 0) {
		/* Full: the tick stays due, tried again on the next tq_tick(). */
		tq__store(&s->task, 0);
		return e;
	}
	tick_done(t, i, id, now);
	return 1;
}

int tq__sched_run(tq *t)
{
	uint64_t now = tq_now_ns();
	int fired = 0;

	if (!tq_supervisor_active(t))
		return 0;
	/* Cheap when nothing is due: no lock. */
	bool due = false;
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX && !due; i++) {
		struct tq__sched *s = &t->hdr->sched[i];

		due = tq__load(&s->state) == TQ__S_ACTIVE &&
		      (tq__load(&s->task) || (tq__load(&s->next_ns) && tq__load(&s->next_ns) <= now));
	}
	if (!due || !lock(t))
		return 0;
	tidy(t);
	for (uint32_t i = 0; i < TQ_SCHEDULES_MAX; i++) {
		struct tq__sched *s = &t->hdr->sched[i];

		if (tq__load(&s->state) != TQ__S_ACTIVE)
			continue;
		if (tq__load(&s->task) && resolve(t, i, now) < 0)
			continue;
		if (s->next_ns && s->next_ns <= now && fire(t, i, now) > 0)
			fired++;
	}
	unlock(t);
	return fired;
}

/* Replay: put a journaled schedule back. */
int tq__sched_restore(tq *t, const struct tq__jsched *js, const uint8_t *payload)
{
	struct tq_schedule sc;
	int i;

	memset(&sc, 0, sizeof(sc));
	memcpy(sc.name, js->name, sizeof(sc.name) - 1);
	memcpy(sc.spec, js->spec, sizeof(sc.spec) - 1);
	sc.queue = (int)js->queue;
	sc.level = js->level;
	sc.type = js->type;
	sc.max_attempts = js->max_attempts;
	sc.len = js->len;
	sc.payload = payload;
	i = tq_schedule_set(t, &sc);
	if (i < 0)
		return i;
	/* Its ticks go on from where they were. */
	t->hdr->sched[i].next_ns = js->next_ns ? js->next_ns : t->hdr->sched[i].next_ns;
	t->hdr->sched[i].tick_ns = js->tick_ns;
	t->hdr->sched[i].last_task = js->last_task;
	t->hdr->sched[i].fired = js->fired;
	return i;
}

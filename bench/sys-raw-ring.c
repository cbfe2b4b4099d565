/* SPDX-License-Identifier: MIT */
/*
 * sys-raw-ring.c - tq-bench's system "raw-ring": the bare building block,
 * to show what tq costs on top of it.
 *
 * One shared-memory region (shm_open by name, mapped by every process)
 * holds, for each producer p and worker w, a single-producer
 * single-consumer ck_ring p->w carrying slot indices and a return ring w->p
 * carrying them back. Each producer owns an array of payload slots: it
 * takes a free slot, copies the payload in, passes the index to a worker
 * (task j of producer p goes to worker (j + p) % W), and the worker hands
 * the index back when done. No ownership records, no priorities, no
 * recovery: the limit a queue built from these rings could reach.
 *
 * A worker with nothing to do spins for --spin-ns, then sleeps on a futex
 * word of its own in the region; a producer that has just published checks
 * (after a full fence) whether that worker sleeps and wakes it, once per
 * sleep: the first producer to clear the flag makes the call. A producer
 * out of free slots polls its return rings with short sleeps: it only runs
 * out when a whole window of tasks is queued, so nobody waits on it.
 *
 * The region is allocated (fallocate) and mapped (MAP_POPULATE) before the
 * start: page faults are a cost of the first use of memory, not of the
 * building block, and would swamp it with large payloads.
 */
#include "bench.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <ck_ring.h>

#define RAW_WAIT_NS   100000000u   /* one futex sleep, then look around */
#define RAW_POLL_NS   20000u       /* a producer out of slots sleeps this */
#define RAW_WINDOW_BYTES (UINT64_C(4) << 20)  /* payload bytes in flight per producer */

struct raw_wait {
	_Atomic uint32_t seq;        /* futex word */
	_Atomic uint32_t sleeping;   /* 1 while the worker may be in FUTEX_WAIT */
	char pad[BENCH_LINE - 2 * sizeof(uint32_t)];
};

struct raw_ringbox {
	ck_ring_t ring;
	char pad[(sizeof(ck_ring_t) + BENCH_LINE - 1) / BENCH_LINE * BENCH_LINE - sizeof(ck_ring_t)];
};

struct raw_head {
	uint64_t size;
	uint32_t producers, workers;
	uint32_t slots;              /* per producer */
	uint32_t ring_size;          /* entries per ring, a power of two */
	uint32_t slot_size;
	uint32_t pad;
	uint64_t off_wait, off_fwd, off_ret, off_fbuf, off_rbuf, off_slots;
};

/* A process's view of the region. */
struct raw_map {
	int fd;
	void *base;
	size_t size;
	struct raw_head *h;
	struct raw_wait *wait;
	struct raw_ringbox *fwd, *ret;
	ck_ring_buffer_t *fbuf, *rbuf;
	unsigned char *slots;
};

static void raw_version(char *buf, size_t size)
{
	snprintf(buf, size, "ck_ring spsc (ck %s)", BENCH_CK_VERSION);
}

static size_t align_up(size_t x, size_t a)
{
	return (x + a - 1) / a * a;
}

static void raw_view(struct raw_map *m)
{
	unsigned char *b = m->base;

	m->h = m->base;
	m->wait = (struct raw_wait *)(b + m->h->off_wait);
	m->fwd = (struct raw_ringbox *)(b + m->h->off_fwd);
	m->ret = (struct raw_ringbox *)(b + m->h->off_ret);
	m->fbuf = (ck_ring_buffer_t *)(b + m->h->off_fbuf);
	m->rbuf = (ck_ring_buffer_t *)(b + m->h->off_rbuf);
	m->slots = b + m->h->off_slots;
}

static inline ck_ring_t *fwd_ring(struct raw_map *m, unsigned p, unsigned w)
{
	return &m->fwd[p * m->h->workers + w].ring;
}
static inline ck_ring_t *ret_ring(struct raw_map *m, unsigned p, unsigned w)
{
	return &m->ret[p * m->h->workers + w].ring;
}
static inline ck_ring_buffer_t *fwd_buf(struct raw_map *m, unsigned p, unsigned w)
{
	return m->fbuf + (size_t)(p * m->h->workers + w) * m->h->ring_size;
}
static inline ck_ring_buffer_t *ret_buf(struct raw_map *m, unsigned p, unsigned w)
{
	return m->rbuf + (size_t)(p * m->h->workers + w) * m->h->ring_size;
}
static inline unsigned char *slot_at(struct raw_map *m, unsigned p, uint32_t i)
{
	return m->slots + ((size_t)p * m->h->slots + i) * m->h->slot_size;
}

/* Create the region `name` for P producers and W workers with `slots`
 * slots each; with `prefault`, allocate and map every page now. */
static int raw_create(const char *name, unsigned P, unsigned W, uint64_t slots,
		      uint32_t payload, int prefault, struct raw_map *m)
{
	struct raw_head h = { 0 };
	uint64_t rs = 2;
	size_t off;
	int rc;

	if (slots >= (1u << 30))
		return -E2BIG;
	while (rs < slots + 1)
		rs <<= 1;
	h.producers = P;
	h.workers = W;
	h.slots = (uint32_t)slots;
	h.ring_size = (uint32_t)rs;
	h.slot_size = (uint32_t)align_up(payload, BENCH_LINE);
	off = 4096;
	h.off_wait = off;
	off = align_up(off + sizeof(struct raw_wait) * W, BENCH_LINE);
	h.off_fwd = off;
	off = align_up(off + sizeof(struct raw_ringbox) * P * W, BENCH_LINE);
	h.off_ret = off;
	off = align_up(off + sizeof(struct raw_ringbox) * P * W, 4096);
	h.off_fbuf = off;
	off = align_up(off + sizeof(ck_ring_buffer_t) * rs * P * W, 4096);
	h.off_rbuf = off;
	off = align_up(off + sizeof(ck_ring_buffer_t) * rs * P * W, 4096);
	h.off_slots = off;
	off = align_up(off + (size_t)h.slot_size * slots * P, 4096);
	h.size = off;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	/* tmpfs hands out pages on first touch: a region larger than what
	 * /dev/shm has left would die of SIGBUS halfway, so refuse it now. */
	struct statvfs vfs;
	if (statvfs("/dev/shm", &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < h.size)
		return -ENOSPC;
	m->fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)h.size) != 0) {
		rc = -errno;
		goto fail;
	}
	if (prefault && (rc = posix_fallocate(m->fd, 0, (off_t)h.size)) != 0) {
		rc = -rc;
		goto fail;
	}
	m->size = h.size;
	m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | (prefault ? MAP_POPULATE : 0), m->fd, 0);
	if (m->base == MAP_FAILED) {
		rc = -errno;
		m->base = NULL;
		goto fail;
	}
	memcpy(m->base, &h, sizeof(h));
	raw_view(m);
	for (unsigned i = 0; i < P * W; i++) {
		ck_ring_init(&m->fwd[i].ring, h.ring_size);
		ck_ring_init(&m->ret[i].ring, h.ring_size);
	}
	return 0;
fail:
	close(m->fd);
	shm_unlink(name);
	m->fd = -1;
	return rc;
}

static void raw_close(struct raw_map *m);

static int raw_open(const char *name, struct raw_map *m)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	m->fd = shm_open(name, O_RDWR, 0);
	if (m->fd < 0)
		return -errno;
	if (fstat(m->fd, &st) != 0 || (size_t)st.st_size < sizeof(struct raw_head)) {
		close(m->fd);
		return -EPROTO;
	}
	m->size = (size_t)st.st_size;
	/* Every page was allocated by the parent; map them all before the
	 * start rather than fault them in during the measurement. */
	m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, m->fd, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		close(m->fd);
		return -errno;
	}
	raw_view(m);
	if (m->h->size != m->size) {
		raw_close(m);
		return -EPROTO;
	}
	return 0;
}

static void raw_close(struct raw_map *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->base = NULL;
	m->fd = -1;
}

static uint64_t prefill_of(const struct run *r, unsigned p)
{
	return bench_share(r->prefill, r->producers, p);
}

/* Number of j in [lo, hi) with (j + p) % W == w. */
static uint64_t routed(uint64_t lo, uint64_t hi, unsigned p, unsigned W, unsigned w)
{
	uint64_t a = lo + p, b = hi + p;
#define BELOW(n) ((n) > w ? ((n) - 1 - w) / W + 1 : 0)
	return BELOW(b) - BELOW(a);
#undef BELOW
}

static int raw_setup(struct run *r)
{
	struct raw_map *m = calloc(1, sizeof(*m));
	/* The window of slots in flight per producer: --ring-slots, no more
	 * than its tasks, and no more than RAW_WINDOW_BYTES of payload. */
	uint64_t window = bench_share(r->total, r->producers, 0);
	uint64_t by_bytes = RAW_WINDOW_BYTES / align_up(r->payload, BENCH_LINE);
	if (window > r->ring_slots)
		window = r->ring_slots;
	if (window > by_bytes)
		window = by_bytes > 8 ? by_bytes : 8;
	uint64_t slots = prefill_of(r, 0) + window;
	int rc;

	if (!m)
		return -ENOMEM;
	m->fd = -1;
	r->priv = m;
	if (r->queues > 1 || r->levels > 1)
		snprintf(r->note, sizeof(r->note), "no queues or levels: one FIFO per pair");
	rc = raw_create(r->name, r->producers, r->workers, slots, r->payload, 1, m);
	if (rc < 0) {
		snprintf(r->note, sizeof(r->note), "raw region %s: %s", r->name, strerror(-rc));
		return rc;
	}
	/* Prefill: the parent plays each producer before it exists. */
	for (unsigned p = 0; p < r->producers; p++) {
		uint64_t kp = prefill_of(r, p), base = bench_share_base(r->prefill, r->producers, p);

		for (uint64_t j = 0; j < kp; j++) {
			unsigned w = (unsigned)((j + p) % r->workers);
			bench_fill_prefill(r, slot_at(m, p, (uint32_t)j), base + j);
			if (!ck_ring_enqueue_spsc(fwd_ring(m, p, w), fwd_buf(m, p, w),
						  (void *)(uintptr_t)j))
				return -ENOBUFS;
		}
	}
	return 0;
}

static inline void raw_notify(struct raw_map *m, unsigned w)
{
	struct raw_wait *wt = &m->wait[w];

	/* Pairs with the worker's fence between raising `sleeping` and
	 * looking at its rings one last time. Whoever clears `sleeping`
	 * makes the one system call of this sleep; later producers see 0
	 * and make none while the woken worker waits for a CPU. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&wt->sleeping, memory_order_relaxed) &&
	    atomic_exchange(&wt->sleeping, 0)) {
		atomic_fetch_add(&wt->seq, 1);
		bench_futex_wake(&wt->seq, 1);
	}
}

static int raw_producer(struct run *r, unsigned idx)
{
	struct raw_map m;
	struct pctx c;
	uint32_t *stack = NULL, top = 0;
	uint64_t kp = prefill_of(r, idx), j;
	const unsigned W = r->workers;
	const int paced = r->paced;
	unsigned batch = r->batch ? r->batch : 1, nb = 0;
	int ex, rc;

	if ((rc = raw_open(r->name, &m)) < 0)
		return bench_fail(r, "raw-ring open %s: %s", r->name, strerror(-rc));
	if ((ex = bench_producer_init(&c, r, idx)) != 0)
		return ex;
	stack = malloc(sizeof(*stack) * m.h->slots);
	if (!stack)
		return bench_fail(r, "out of memory");
	/* Free slots: all but the prefilled ones, lowest index on top. */
	for (uint32_t s = m.h->slots; s > kp; s--)
		stack[top++] = s - 1;
	if ((ex = bench_ready(r)) != 0)
		goto out;
	r->prod[idx].start_ns = bench_now();

	j = kp;
	for (uint64_t i = 0; i < c.n; i++, j++) {
		unsigned w = (unsigned)((j + idx) % W);
		uint32_t s;

		if (top == 0) {
			uint64_t spin_end = 0;

			for (;;) {
				void *v;

				for (unsigned k = 0; k < W; k++)
					while (ck_ring_dequeue_spsc(ret_ring(&m, idx, k),
								    ret_buf(&m, idx, k), &v))
						stack[top++] = (uint32_t)(uintptr_t)v;
				if (top)
					break;
				uint64_t now = bench_now();
				if (!spin_end)
					spin_end = now + r->spin_ns;
				if (now < spin_end) {
					for (int k = 0; k < 32; k++)
						bench_relax();
					continue;
				}
				struct timespec ts = { 0, RAW_POLL_NS };
				nanosleep(&ts, NULL);
				if ((ex = bench_check(r)) != 0)
					goto out;
			}
		}
		s = stack[--top];
		if (s >= m.h->slots) {
			ex = bench_fail(r, "raw-ring: slot %u out of range", s);
			goto out;
		}
		bench_fill(r, c.buf, c.base + i);
		int smp = bench_sampled(&c);
		if (paced)
			bench_wait_until(r, bench_send_time(r, idx, i));
		bench_stamp(c.buf, smp);
		memcpy(slot_at(&m, idx, s), c.buf, r->payload);
		/* Never full: the ring has room for every slot of the producer. */
		ck_ring_enqueue_spsc(fwd_ring(&m, idx, w), fwd_buf(&m, idx, w), (void *)(uintptr_t)s);
		if (++nb >= batch || i + 1 == c.n) {
			/* With --batch K, wake once per K tasks: the last K
			 * went to at most K consecutive workers. */
			if (nb >= W) {
				for (unsigned k = 0; k < W; k++)
					raw_notify(&m, k);
			} else {
				for (unsigned k = 0; k < nb; k++)
					raw_notify(&m, (unsigned)((j - k + idx) % W));
			}
			nb = 0;
		}
	}
	bench_producer_done(&c);
	ex = CHILD_OK;
out:
	free(stack);
	free(c.buf);
	raw_close(&m);
	return ex;
}

static int raw_worker(struct run *r, unsigned idx)
{
	struct raw_map m;
	struct wctx c;
	struct raw_wait *wt;
	const unsigned P = r->producers, W = r->workers;
	unsigned batch = r->batch ? r->batch : 1, rr = 0;
	uint64_t quota = 0, spin_end = 0;
	void *v[64];
	int ex, rc;

	if (batch > 64)
		batch = 64;
	if ((rc = raw_open(r->name, &m)) < 0)
		return bench_fail(r, "raw-ring open %s: %s", r->name, strerror(-rc));
	wt = &m.wait[idx];
	for (unsigned p = 0; p < P; p++) {
		uint64_t kp = prefill_of(r, p);

		quota += routed(kp, kp + bench_share(r->total, P, p), p, W, idx);
	}
	bench_worker_init(&c, r, idx, quota);
	if ((ex = bench_ready(r)) != 0)
		goto out;

	while (c.done < c.quota) {
		unsigned n = 0, p = rr;
		uint64_t left = c.quota - c.done;
		unsigned max = left < batch ? (unsigned)left : batch;

		for (unsigned k = 0; k < P; k++) {
			p = rr;
			rr = rr + 1 == P ? 0 : rr + 1;
			while (n < max && ck_ring_dequeue_spsc(fwd_ring(&m, p, idx), fwd_buf(&m, p, idx), &v[n]))
				n++;
			if (n)
				break;
		}
		if (n) {
			spin_end = 0;
			bench_leased(&c, n);
			for (unsigned k = 0; k < n; k++) {
				uint32_t s = (uint32_t)(uintptr_t)v[k];

				if (s >= m.h->slots) {
					ex = bench_fail(r, "raw-ring: slot %u out of range", s);
					goto out;
				}
				bench_handle(&c, slot_at(&m, p, s), r->payload);
				ck_ring_enqueue_spsc(ret_ring(&m, p, idx), ret_buf(&m, p, idx), v[k]);
			}
			continue;
		}
		/* Nothing: spin a little, then sleep until a producer wakes us. */
		uint64_t now = bench_now();
		if (!spin_end)
			spin_end = now + r->spin_ns;
		if (now < spin_end) {
			for (int k = 0; k < 16; k++)
				bench_relax();
			continue;
		}
		uint32_t seq = atomic_load(&wt->seq);
		atomic_store(&wt->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		int empty = 1;
		for (unsigned p2 = 0; p2 < P && empty; p2++)
			empty = ck_ring_size(fwd_ring(&m, p2, idx)) == 0;
		if (empty)
			bench_futex_wait(&wt->seq, seq, RAW_WAIT_NS);
		atomic_store(&wt->sleeping, 0);
		spin_end = 0;
		if (empty && atomic_load(&wt->seq) == seq && (ex = bench_check(r)) != 0)
			goto out;
	}
	bench_worker_done(&c);
	ex = CHILD_OK;
out:
	raw_close(&m);
	return ex;
}

static long raw_drain(struct run *r)
{
	struct raw_map *m = r->priv;
	long n = 0;
	void *v;

	if (!m || !m->base)
		return -EINVAL;
	for (unsigned p = 0; p < r->producers; p++) {
		for (unsigned w = 0; w < r->workers; w++) {
			while (ck_ring_dequeue_spsc(fwd_ring(m, p, w), fwd_buf(m, p, w), &v)) {
				uint32_t s = (uint32_t)(uintptr_t)v;
				uint64_t seq;

				if (s >= m->h->slots)
					continue;
				memcpy(&seq, slot_at(m, p, s), sizeof(seq));
				if (r->seen && seq < r->total && r->seen[seq] < 255)
					r->seen[seq]++;
				n++;
			}
		}
	}
	return n;
}

static void raw_teardown(struct run *r)
{
	struct raw_map *m = r->priv;

	if (!m)
		return;
	shm_unlink(r->name);
	raw_close(m);
	free(m);
	r->priv = NULL;
}

static int raw_footprint(struct run *r, uint64_t k, struct footprint *fp)
{
	char name[sizeof(r->name) + 8];
	struct raw_map m;
	struct stat st;
	int rc;

	snprintf(name, sizeof(name), "%s-fp", r->name);
	if (k > BENCH_FOOTPRINT_BYTES / r->payload)
		k = BENCH_FOOTPRINT_BYTES / r->payload;
	if ((rc = raw_create(name, 1, 1, k, r->payload, 0, &m)) < 0)
		return rc;
	fp->empty = fstat(m.fd, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
	for (uint64_t j = 0; j < k; j++) {
		unsigned char *s = slot_at(&m, 0, (uint32_t)j);

		memset(s, 0x5a, r->payload);
		memcpy(s, &j, sizeof(j));
		ck_ring_enqueue_spsc(fwd_ring(&m, 0, 0), fwd_buf(&m, 0, 0), (void *)(uintptr_t)j);
	}
	fp->k = k;
	fp->resident = fstat(m.fd, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
	fp->size = m.size;
	fp->valid = k > 0 && fp->resident > 0;
	fp->method = "st_blocks of /dev/shm region";
	shm_unlink(name);
	raw_close(&m);
	return 0;
}

const struct bench_sys bench_sys_raw_ring = {
	.name = "raw-ring",
	.version = raw_version,
	.setup = raw_setup,
	.producer = raw_producer,
	.worker = raw_worker,
	.drain = raw_drain,
	.teardown = raw_teardown,
	.footprint = raw_footprint,
};

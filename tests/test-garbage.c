/* SPDX-License-Identifier: MIT */
/*
 * test-garbage - segments that are not what they should be.
 *
 * Each case runs in a child process, so that a crash shows up as the child
 * dying by a signal (a failure), a hang as its guard alarm firing (a
 * failure), and the parent can go on and list every bad case:
 *  - random bytes of many sizes (plain, behind a correct magic, behind a
 *    correct magic and layout version): tq_attach must fail with a
 *    negative errno;
 *  - a real header page over random bytes: attach may succeed, then the
 *    API must behave (below);
 *  - valid segments holding tasks in every state, with random bytes flipped
 *    and random words written at random offsets, either before tq_attach
 *    or under a handle that is already attached. Then a sequence of calls
 *    (declare, find, submit, batch submit, lease, ack, fail, release,
 *    extend, get, result, forget, cancel, set_level, requeue_dead, stats,
 *    segment_info, queue name and pause) must each return success in its
 *    documented range or a negative errno, never crash, never block.
 * Writes outside the mapping: PROT_NONE guard pages are put right before
 * and after the segment's mapping when the addresses are free, canary
 * buffers on the heap and in an anonymous mapping must stay intact, leased
 * payloads must point into the mapping, and the CI runs this under ASan.
 *
 * TQ_TEST_SEED changes the (otherwise fixed) seed; -Dslow_tests=true runs
 * ten times the cases.
 */
#include "tq-test.h"

#if TQT_SLOW
enum { RANDOM_CASES = 400, CORRUPT_CASES = 3000 };
#elif TQT_SANITIZED
enum { RANDOM_CASES = 60, CORRUPT_CASES = 200 };
#else
enum { RANDOM_CASES = 80, CORRUPT_CASES = 400 };
#endif

#define MAX_PAYLOAD 8192u
#define EXIT_ATTACHED 2     /* attached to random bytes */
#define EXIT_CANARY 4       /* memory outside the segment changed */

struct tally {
	atomic_uint attach_ok;
	atomic_uint attach_err;
	atomic_uint calls_ok;
	atomic_uint calls_err;
	atomic_uint guards;
};

static struct tally *tally;
static uint64_t base_seed;
static char segname[TQ_NAME_MAX + 1];
static uint8_t header_page[4096];     /* of a real segment, for the variants */
static off_t real_size;

/* The mapping of the segment in this process, once attached. */
static uintptr_t map_lo, map_hi;

static void find_mapping(const char *name)
{
	map_lo = map_hi = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return;
	char line[1024];
	const char *base = name[0] == '/' ? name + 1 : name;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char *path = strchr(line, '/');
		if (!path || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		path[strcspn(path, "\n")] = 0;
		const char *slash = strrchr(path, '/');
		if (strncmp(path, "/dev/shm/", 9) != 0 || strcmp(slash + 1, base) != 0)
			continue;
		if (!map_lo || lo < map_lo)
			map_lo = lo;
		if (hi > map_hi)
			map_hi = hi;
	}
	fclose(f);
}

/* PROT_NONE pages right before and after the segment's mapping, where free:
 * any access just outside it then faults. */
static void place_guards(void)
{
	if (!map_lo)
		return;
	size_t g = 64 << 10;
	void *after = mmap((void *)map_hi, g, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (after != MAP_FAILED && (uintptr_t)after != map_hi)
		munmap(after, g);
	else if (after != MAP_FAILED)
		atomic_fetch_add(&tally->guards, 1);
	if (map_lo > g) {
		void *before = mmap((void *)(map_lo - g), g, PROT_NONE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (before != MAP_FAILED && (uintptr_t)before != map_lo - g)
			munmap(before, g);
		else if (before != MAP_FAILED)
			atomic_fetch_add(&tally->guards, 1);
	}
}

/* Canaries: a heap block and an anonymous mapping full of a pattern. */
static uint8_t *canary_heap, *canary_map;
#define CANARY_HEAP (64u << 10)
#define CANARY_MAP (256u << 10)

static void canaries_set(void)
{
	canary_heap = malloc(CANARY_HEAP);
	CHECK(canary_heap);
	canary_map = mmap(NULL, CANARY_MAP, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(canary_map != MAP_FAILED);
	tqt_fill(canary_heap, CANARY_HEAP, 1);
	tqt_fill(canary_map, CANARY_MAP, 2);
}

static void canaries_check(void)
{
	if (!tqt_fill_check(canary_heap, CANARY_HEAP, 1) ||
	    !tqt_fill_check(canary_map, CANARY_MAP, 2)) {
		fprintf(stderr, "memory outside the segment was written\n");
		_exit(EXIT_CANARY);
	}
	free(canary_heap);
	munmap(canary_map, CANARY_MAP);
}

/* A result must be a negative errno or within [lo, hi]. */
static int expect_range(long long r, long long lo, long long hi, const char *what, int line)
{
	if (r < 0) {
		if (r < -4095)
			FAIL("line %d: %s returned %lld: not an errno", line, what, r);
		const char *s = tq_strerror((int)r);
		CHECK(s && s[0]);
		atomic_fetch_add(&tally->calls_err, 1);
	} else {
		if (r < lo || r > hi)
			FAIL("line %d: %s returned %lld, outside [%lld, %lld]", line, what, r, lo, hi);
		atomic_fetch_add(&tally->calls_ok, 1);
	}
	return (int)r;
}
#define CALL(expr, lo, hi) (expect_range((long long)(expr), (lo), (hi), #expr, __LINE__))

static void check_task(const struct tq_task *task)
{
	if (task->len > MAX_PAYLOAD)
		FAIL("leased task %llu has len %u > max_payload", (unsigned long long)task->id,
		     task->len);
	if (task->len && !task->payload)
		FAIL("leased task has len %u and no payload", task->len);
	if (!task->len)
		return;
	uintptr_t p = (uintptr_t)task->payload;
	if (map_lo && (p < map_lo || p + task->len > map_hi))
		FAIL("payload [%#lx, +%u) outside the segment's mapping [%#lx, %#lx)",
		     (unsigned long)p, task->len, (unsigned long)map_lo, (unsigned long)map_hi);
	/* Touch every byte. */
	volatile uint8_t sum = 0;
	for (uint32_t i = 0; i < task->len; i++)
		sum += ((const uint8_t *)task->payload)[i];
	(void)sum;
}

/* The API sequence on a handle whose segment may be garbage. */
static void exercise(tq *t, uint64_t *known, unsigned nknown, uint64_t *rs)
{
	struct tq_segment_info si;
	CALL(tq_segment_info(t, &si), 0, 0);
	char nb[TQ_QUEUE_NAME_MAX + 1];
	for (int q = 0; q < 6; q++) {
		memset(nb, 'x', sizeof nb);
		if (CALL(tq_queue_name(t, q, nb, sizeof nb), 0, INT32_MAX) >= 0)
			CHECKF(memchr(nb, 0, sizeof nb) != NULL, "queue name not terminated");
		CALL(tq_queue_paused(t, q), 0, 1);
		struct tq_stats st;
		for (int l = -1; l < 5; l++)
			CALL(tq_stats(t, q, l, &st), 0, 0);
	}
	int qa = CALL(tq_queue_find(t, "a"), 0, TQ_QUEUES_MAX - 1);
	int qc = CALL(tq_queue_declare(t, "c", NULL), 0, TQ_QUEUES_MAX - 1);
	if (qa < 0)
		qa = 0;
	static uint8_t buf[MAX_PAYLOAD + 16];
	tqt_fill(buf, sizeof buf, *rs);
	uint64_t ids[16];
	unsigned nids = 0;
	for (int i = 0; i < 10; i++) {
		uint32_t len = (uint32_t)(tqt_rand(rs) % 3000);
		struct tq_submit_opts o = { .level = (uint32_t)(tqt_rand(rs) % 4) };
		if (i == 3)
			o.not_before_ns = tq_now_ns() + 20000000ull;
		uint64_t id = 0;
		if (CALL(tq_submit(t, i % 3 ? qa : qc, buf, len, &o, &id), 0, 0) == 0 && nids < 16)
			ids[nids++] = id;
	}
	struct tq_task_spec sp[5];
	for (int i = 0; i < 5; i++)
		sp[i] = (struct tq_task_spec){ .payload = buf, .len = (uint32_t)(i * 500) };
	uint64_t bids[5];
	CALL(tq_submit_batch(t, qa, sp, 5, NULL, bids), 1, 5);

	for (int round = 0; round < 6; round++) {
		struct tq_task tasks[8];
		struct tq_lease_opts lo = { .timeout_ms = round == 5 ? 20 : 0,
					    .policy = (uint32_t)(round % 2) };
		int n = CALL(tq_lease(t, &lo, tasks, 8), 1, 8);
		for (int k = 0; k < n; k++) {
			check_task(&tasks[k]);
			switch (tqt_rand(rs) % 6) {
			case 0: CALL(tq_ack(t, tasks[k].id, NULL, 0), 0, 0); break;
			case 1: CALL(tq_ack(t, tasks[k].id, buf, tqt_rand(rs) % 2000), 0, 0); break;
			case 2: CALL(tq_fail(t, tasks[k].id), 0, 1); break;
			case 3: CALL(tq_release(t, tasks[k].id), 0, 0); break;
			case 4: CALL(tq_extend(t, tasks[k].id, 100), 0, 0); break;
			default: break; /* keep it */
			}
		}
	}
	/* Known IDs (from before the damage), new ones, and random ones. */
	uint64_t all[64];
	unsigned na = 0;
	for (unsigned i = 0; i < nknown && na < 40; i++)
		all[na++] = known[i];
	for (unsigned i = 0; i < nids && na < 56; i++)
		all[na++] = ids[i];
	while (na < 64)
		all[na++] = tqt_rand(rs) % 4 ? (tqt_rand(rs) & 0xffff00000000ull) | (tqt_rand(rs) % 300)
					     : tqt_rand(rs);
	static uint8_t rbuf[MAX_PAYLOAD + 64];
	for (unsigned i = 0; i < na; i++) {
		struct tq_info in;
		if (CALL(tq_get(t, all[i], &in), 0, 0) == 0)
			CHECKF(in.state >= TQ_STATE_PENDING && in.state <= TQ_STATE_BUSY,
			       "tq_get gave state %u", in.state);
		size_t size = (size_t)(tqt_rand(rs) % (MAX_PAYLOAD + 1));
		memset(rbuf + size, 0xa5, 64);
		CALL(tq_result(t, all[i], rbuf, size), 0, TQ_PAYLOAD_MAX);
		for (int k = 0; k < 64; k++)
			CHECKF(rbuf[size + k] == 0xa5, "tq_result wrote past size %zu", size);
		switch (tqt_rand(rs) % 5) {
		case 0: CALL(tq_cancel(t, all[i]), 0, 0); break;
		case 1: CALL(tq_set_level(t, all[i], (unsigned)(tqt_rand(rs) % 5)), 0, 0); break;
		case 2: CALL(tq_requeue_dead(t, all[i]), 0, 0); break;
		case 3: CALL(tq_forget(t, all[i]), 0, 0); break;
		default: CALL(tq_ack(t, all[i], NULL, 0), 0, 0); break;
		}
	}
	CALL(tq_queue_pause(t, qa), 0, 0);
	CALL(tq_queue_resume(t, qa), 0, 0);
	CALL(tq_segment_info(t, &si), 0, 0);
}

/* A segment with tasks in every state. Fills known[] with their IDs. */
static tq *populate(uint64_t *rs, uint64_t *known, unsigned *nknown)
{
	tq *t = NULL;
	struct tq_config c;
	tq_config_init(&c);
	c.queues = 4;
	c.levels = 4;
	c.capacity = 256;
	c.max_payload = MAX_PAYLOAD;
	c.procs = 16;
	c.arena_bytes = 4u << 20;
	CHECK_RET(tq_create(segname, &c, &t), 0);
	int a = CHECK_OK(tq_queue_declare(t, "a", NULL));
	int b = CHECK_OK(tq_queue_declare(t, "b", NULL));
	static uint8_t buf[4000];
	tqt_fill(buf, sizeof buf, 9);
	*nknown = 0;
	for (int i = 0; i < 60; i++) {
		struct tq_submit_opts o = { .level = (uint32_t)(tqt_rand(rs) % 4),
					    .max_attempts = i % 7 == 0 ? 1 : 3 };
		if (i % 10 == 5)
			o.not_before_ns = tq_now_ns() + (i % 20 == 5 ? 3600000000000ull : 5000000ull);
		uint64_t id;
		CHECK_RET(tq_submit(t, i % 4 ? a : b, buf, (size_t)(tqt_rand(rs) % 4000), &o, &id), 0);
		known[(*nknown)++] = id;
	}
	struct tq_task tasks[16];
	int n = CHECK_OK(tq_lease(t, &(struct tq_lease_opts){ .timeout_ms = 0 }, tasks, 16));
	for (int k = 0; k < n; k++) {
		switch (k % 5) {
		case 0: CHECK_RET(tq_ack(t, tasks[k].id, buf, 100 + k * 90), 0); break;
		case 1: CHECK_OK(tq_fail(t, tasks[k].id)); break;
		case 2: CHECK_RET(tq_release(t, tasks[k].id), 0); break;
		case 3: CHECK_RET(tq_ack(t, tasks[k].id, NULL, 0), 0); break;
		default: break;
		}
	}
	CHECK_RET(tq_queue_pause(t, b), 0);
	return t;
}

static void corrupt(uint64_t *rs)
{
	int fd = shm_open(segname, O_RDWR, 0);
	CHECK(fd >= 0);
	struct stat st;
	CHECK_RET(fstat(fd, &st), 0);
	size_t size = (size_t)st.st_size;
	uint8_t *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	close(fd);
	unsigned k = 1 + (unsigned)(tqt_rand(rs) % (tqt_rand(rs) % 4 ? 16 : 256));
	static const uint64_t special[] = { 0, 1, 2, 0x7f, 0xff, 0xffff, 0x7fffffff, 0x80000000,
					    0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
					    0x8000000000000000ull, 0xffffffffffffffffull };
	for (unsigned i = 0; i < k; i++) {
		size_t span;
		switch (tqt_rand(rs) % 3) {
		case 0: span = 4096; break;                                /* header */
		case 1: span = size < (512u << 10) ? size : (512u << 10); break; /* tables */
		default: span = size; break;
		}
		size_t off = (size_t)(tqt_rand(rs) % span);
		uint64_t v = tqt_rand(rs) % 3 ? special[tqt_rand(rs) % 13] : tqt_rand(rs);
		switch (tqt_rand(rs) % 4) {
		case 0:
		case 1:
			m[off] ^= (uint8_t)(1 + tqt_rand(rs) % 255);
			break;
		case 2:
			off &= ~(size_t)3;
			if (off + 4 <= size) {
				uint32_t w = (uint32_t)v;
				memcpy(m + off, &w, 4);
			}
			break;
		default:
			off &= ~(size_t)7;
			if (off + 8 <= size)
				memcpy(m + off, &v, 8);
			break;
		}
	}
	munmap(m, size);
}

static void corrupt_case(unsigned i)
{
	uint64_t rs = base_seed + 1000003ull * i;
	tqt_rand(&rs);
	tqt_guard(30);
	uint64_t known[64];
	unsigned nknown;
	tq *t = populate(&rs, known, &nknown);
	bool live = i % 2 == 1;      /* damage under an attached handle */
	if (!live) {
		tq_detach(t);
		t = NULL;
	}
	corrupt(&rs);
	canaries_set();
	if (!live) {
		int r = tq_attach(segname, &t);
		if (r < 0) {
			CHECKF(r > -4096, "tq_attach returned %d", r);
			CHECK(tq_last_error(NULL) != NULL);
			atomic_fetch_add(&tally->attach_err, 1);
			canaries_check();
			_exit(0);
		}
		CHECK(t != NULL);
		atomic_fetch_add(&tally->attach_ok, 1);
	}
	find_mapping(segname);
	place_guards();
	exercise(t, known, nknown, &rs);
	tq_detach(t);
	if (live) {
		/* And a fresh attach to the damaged segment. */
		tq *u = NULL;
		int r = tq_attach(segname, &u);
		CHECKF(r == 0 || (r < 0 && r > -4096), "tq_attach returned %d", r);
		if (r == 0) {
			find_mapping(segname);
			place_guards();
			exercise(u, known, nknown, &rs);
			tq_detach(u);
		}
	}
	canaries_check();
	_exit(0);
}

static void random_case(unsigned i)
{
	uint64_t rs = base_seed ^ (0x9e3779b97f4a7c15ull * (i + 1));
	tqt_rand(&rs);
	tqt_guard(30);
	static const size_t sizes[] = { 0, 1, 8, 12, 16, 64, 100, 4095, 4096, 8192, 65536,
					1u << 20 };
	unsigned variant = i % 4;
	size_t size = i % 5 == 4 ? (size_t)(tqt_rand(&rs) % (4u << 20))
				 : sizes[tqt_rand(&rs) % (sizeof sizes / sizeof sizes[0])];
	if (variant == 3)
		size = tqt_rand(&rs) % 2 ? (size_t)real_size : 4096 + (size_t)(tqt_rand(&rs) % (8u << 20));
	int fd = shm_open(segname, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_RET(ftruncate(fd, (off_t)size), 0);
	uint8_t *m = size ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : NULL;
	CHECK(m != MAP_FAILED);
	close(fd);
	for (size_t k = 0; k < size; k += 8) {
		uint64_t v = tqt_rand(&rs);
		memcpy(m + k, &v, size - k < 8 ? size - k : 8);
	}
	if (variant >= 1 && size >= 8)
		memcpy(m, "TQSEGMNT", 8);
	if (variant >= 2 && size >= 12)
		memcpy(m + 8, header_page + 8, 4);
	if (variant == 3)
		memcpy(m, header_page, size < 4096 ? size : 4096);
	if (m)
		munmap(m, size);

	canaries_set();
	tq *t = NULL;
	int r = tq_attach(segname, &t);
	if (r < 0) {
		CHECKF(r > -4096, "tq_attach returned %d", r);
		CHECKF(r == -EPROTO || variant == 3, "random bytes: tq_attach gave %d (%s), want -EPROTO",
		       r, tq_strerror(r));
		CHECK(tq_last_error(NULL)[0] != 0);
		atomic_fetch_add(&tally->attach_err, 1);
		canaries_check();
		_exit(0);
	}
	atomic_fetch_add(&tally->attach_ok, 1);
	if (variant != 3) {
		fprintf(stderr, "tq_attach accepted %zu random bytes (variant %u)\n", size, variant);
		_exit(EXIT_ATTACHED);
	}
	find_mapping(segname);
	place_guards();
	exercise(t, NULL, 0, &rs);
	tq_detach(t);
	canaries_check();
	_exit(0);
}

static int run_case(bool random, unsigned i)
{
	tqt_segname(segname);
	pid_t pid = tqt_fork();
	if (pid == 0) {
		if (random)
			random_case(i);
		corrupt_case(i);
	}
	int st = 0;
	int bad = 0;
	uint64_t t0 = tqt_mono_ms();
	if (tqt_wait_pid(pid, 60000, &st) < 0) {
		kill(pid, SIGKILL);
		tqt_wait_pid(pid, 60000, &st);
		TQT_LOG("%s case %u: still running after 60 s", random ? "random" : "corrupt", i);
		bad = 1;
	} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char s[128];
		tqt_status_str(s, sizeof s, st);
		if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_CANARY)
			snprintf(s, sizeof s, "memory outside the segment changed");
		if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_ATTACHED)
			snprintf(s, sizeof s, "attached to random bytes");
		TQT_LOG("FAIL: %s case %u (TQ_TEST_SEED=%llu): %s", random ? "random" : "corrupt",
			i, (unsigned long long)base_seed, s);
		bad = 1;
	}
	/* Not a failure (no timing assertions), but worth a look: a case this
	 * slow spent seconds inside calls on a damaged segment. */
	if (tqt_mono_ms() - t0 > 2000)
		TQT_LOG("note: %s case %u (TQ_TEST_SEED=%llu) took %llu ms",
			random ? "random" : "corrupt", i, (unsigned long long)base_seed,
			(unsigned long long)(tqt_mono_ms() - t0));
	tqt_segname_drop(segname);
	return bad;
}

int main(int argc, char **argv)
{
	tqt_init("garbage");
	tqt_guard(TQT_SLOW ? 1700 : 280);
	const char *e = getenv("TQ_TEST_SEED");
	base_seed = e && *e ? strtoull(e, NULL, 0) : 20261122ull;
	tally = tqt_shared(sizeof *tally);
	/* Run one case only: test-garbage random|corrupt N */
	int only_kind = -1;
	unsigned only = 0;
	if (argc == 3) {
		only_kind = strcmp(argv[1], "random") == 0;
		only = (unsigned)strtoul(argv[2], NULL, 0);
	}

	/* A real header, for the variants that keep one. */
	struct tq_config c;
	tq_config_init(&c);
	c.queues = 4;
	c.levels = 4;
	c.capacity = 256;
	c.max_payload = MAX_PAYLOAD;
	c.procs = 16;
	c.arena_bytes = 4u << 20;
	char name[TQ_NAME_MAX + 1];
	tq *t = tqt_create(name, &c);
	tq_detach(t);
	int fd = shm_open(name, O_RDONLY, 0);
	CHECK(fd >= 0);
	CHECK_RET(pread(fd, header_page, sizeof header_page, 0), (ssize_t)sizeof header_page);
	struct stat st;
	CHECK_RET(fstat(fd, &st), 0);
	real_size = st.st_size;
	close(fd);
	CHECK_RET(tq_unlink(name), 0);
	tqt_segname_drop(name);

	int bad = 0;
	uint64_t t0 = tqt_mono_ms();
	if (only_kind >= 0) {
		bad += run_case(only_kind == 1, only);
	} else {
		for (unsigned i = 0; i < RANDOM_CASES; i++)
			bad += run_case(true, i);
		for (unsigned i = 0; i < CORRUPT_CASES; i++)
			bad += run_case(false, i);
	}
	TQT_LOG("seed %llu: %u random + %u corrupted cases in %llu ms; attach refused %u, "
		"accepted %u; %u calls succeeded, %u failed cleanly; %u guard areas placed",
		(unsigned long long)base_seed, RANDOM_CASES, CORRUPT_CASES,
		(unsigned long long)(tqt_mono_ms() - t0), atomic_load(&tally->attach_err),
		atomic_load(&tally->attach_ok), atomic_load(&tally->calls_ok),
		atomic_load(&tally->calls_err), atomic_load(&tally->guards));
	CHECKF(bad == 0, "%d cases failed", bad);
	return 0;
}

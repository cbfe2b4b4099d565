/* SPDX-License-Identifier: MIT */
/*
 * test-segment - segment lifetime: tq_config_init, tq_create, tq_attach,
 * tq_detach, tq_unlink, tq_segment_info, tq_last_error(NULL), tq_now_ns.
 * Name validation, configuration validation, -EEXIST, -ENOENT, -EUSERS,
 * -EPROTO on a changed magic, layout version or size, and the permission
 * bits of the /dev/shm object.
 */
#include <grp.h>
#include <sys/resource.h>

#include "tq-test.h"

#define MAGIC "TQSEGMNT"
#define MAGIC_LEN 8
#define VERSION_OFF 8

static void test_config_init(void)
{
	struct tq_config c;
	memset(&c, 0x5a, sizeof c);
	tq_config_init(&c);
	CHECK_EQ(c.queues, 16);
	CHECK_EQ(c.levels, 8);
	CHECK_EQ(c.capacity, 1u << 20);
	CHECK_EQ(c.max_payload, 1u << 20);
	CHECK_EQ(c.procs, 256);
	CHECK_EQ(c.mode, 0600);
	CHECK_EQ(c.group, -1);
	CHECK_EQU(c.arena_bytes, 64ull << 20);
}

static void test_now(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_REALTIME, &a);
	uint64_t n = tq_now_ns();
	clock_gettime(CLOCK_REALTIME, &b);
	uint64_t lo = (uint64_t)a.tv_sec * 1000000000ull + (uint64_t)a.tv_nsec;
	uint64_t hi = (uint64_t)b.tv_sec * 1000000000ull + (uint64_t)b.tv_nsec;
	CHECK_GEU(n, lo);
	CHECK_LEU(n, hi);
}

static off_t shm_size(const char *name)
{
	char path[TQ_NAME_MAX + 16];
	struct stat st;
	tqt_shm_path(path, sizeof path, name);
	if (stat(path, &st) < 0)
		FAIL("stat %s: %s", path, strerror(errno));
	return st.st_size;
}

static bool shm_exists(const char *name)
{
	char path[TQ_NAME_MAX + 16];
	struct stat st;
	tqt_shm_path(path, sizeof path, name);
	return stat(path, &st) == 0;
}

static void check_config_eq(const struct tq_config *a, const struct tq_config *b)
{
	CHECK_EQ(a->queues, b->queues);
	CHECK_EQ(a->levels, b->levels);
	CHECK_EQ(a->capacity, b->capacity);
	CHECK_EQ(a->max_payload, b->max_payload);
	CHECK_EQ(a->procs, b->procs);
	CHECK_EQ(a->mode, b->mode);
	CHECK_EQ(a->group, b->group);
	CHECK_EQU(a->arena_bytes, b->arena_bytes);
}

/* Defaults, both from NULL and from a zeroed struct; info matches the file. */
static void test_create_defaults(void)
{
	char name[TQ_NAME_MAX + 1];
	struct tq_config def;
	tq_config_init(&def);

	tq *t = tqt_create(name, NULL);
	struct tq_segment_info si;
	memset(&si, 0, sizeof si);
	CHECK_RET(tq_segment_info(t, &si), 0);
	check_config_eq(&si.config, &def);
	CHECK_EQ(si.queues_declared, 0);
	CHECK_EQ(si.procs_attached, 1);
	CHECK_EQU(si.tasks_held, 0);
	CHECK_EQU(si.repairs, 0);
	CHECK_EQU(si.segment_bytes, (uint64_t)shm_size(name));
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	CHECK(!shm_exists(name));

	struct tq_config zero;
	memset(&zero, 0, sizeof zero);
	zero.group = -1;
	t = tqt_create(name, &zero);
	CHECK_RET(tq_segment_info(t, &si), 0);
	check_config_eq(&si.config, &def);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	/* A zeroed struct with one field changed: that field, defaults else. */
	memset(&zero, 0, sizeof zero);
	zero.levels = 3;
	zero.capacity = 64;
	zero.group = -1;
	t = tqt_create(name, &zero);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.config.levels, 3);
	CHECK_EQ(si.config.capacity, 64);
	CHECK_EQ(si.config.queues, def.queues);
	CHECK_EQ(si.config.procs, def.procs);
	CHECK_EQ(si.config.max_payload, def.max_payload);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

static void test_mode(void)
{
	char name[TQ_NAME_MAX + 1], path[TQ_NAME_MAX + 16];
	struct stat st;
	mode_t old = umask(0);

	tq *t = tqt_create(name, NULL);
	tqt_shm_path(path, sizeof path, name);
	CHECK_RET(stat(path, &st), 0);
	CHECKF((st.st_mode & 07777) == 0600, "mode %o", (unsigned)(st.st_mode & 07777));
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	struct tq_config c = tqt_small_config();
	c.mode = 0640;
	t = tqt_create(name, &c);
	tqt_shm_path(path, sizeof path, name);
	CHECK_RET(stat(path, &st), 0);
	CHECKF((st.st_mode & 07777) == 0640, "mode %o", (unsigned)(st.st_mode & 07777));
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	/* A group: the default mode becomes 0660, owned by that group. Group 0
	 * is what a zeroed struct holds, so use another one: any group as
	 * root, else one of ours. */
	gid_t gid = 0;
	gid_t groups[64];
	int ng = getgroups(64, groups);
	for (int i = 0; i < ng && !gid; i++)
		gid = groups[i];
	if (!gid && getgid())
		gid = getgid();
	if (!gid && geteuid() == 0)
		gid = 1;
	if (!gid) {
		TQT_LOG("no group other than 0 to try: group case not run");
		umask(old);
		return;
	}
	c = tqt_small_config();
	c.mode = 0;
	c.group = (int64_t)gid;
	t = tqt_create(name, &c);
	tqt_shm_path(path, sizeof path, name);
	CHECK_RET(stat(path, &st), 0);
	CHECKF((st.st_mode & 07777) == 0660, "mode %o", (unsigned)(st.st_mode & 07777));
	CHECK_EQ(st.st_gid, gid);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.config.group, (int64_t)gid);
	CHECK_EQ(si.config.mode, 0660);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
	umask(old);
}

static void expect_create_err(const char *name, const struct tq_config *cfg, int err,
			      const char *what)
{
	tq *sentinel = (tq *)(uintptr_t)0x1234;
	tq *t = sentinel;
	int r = tq_create(name, cfg, &t);
	if (r != err) {
		if (r >= 0)
			tq_detach(t);
		FAIL("%s: tq_create(\"%.40s...\") gave %d (%s), want %d (-%s)", what,
		     name ? name : "(null)", r, tq_strerror(r), err, tqt_errname(err));
	}
	CHECKF(t == sentinel, "%s: output parameter changed on failure", what);
}

static void test_bad_config(void)
{
	char name[TQ_NAME_MAX + 1];
	tqt_segname(name);
	struct tq_config c;
	static const struct {
		const char *what;
		int field;
		uint64_t value;
	} bad[] = {
		{ "levels 65", 1, 65 },
		{ "levels huge", 1, 0xffffffffu },
		{ "queues 257", 0, TQ_QUEUES_MAX + 1 },
		{ "capacity 63", 2, 63 },
		{ "capacity 1", 2, 1 },
		{ "capacity over TQ_CAPACITY_MAX", 2, (uint64_t)TQ_CAPACITY_MAX + 1 },
		{ "max_payload over TQ_PAYLOAD_MAX", 3, (uint64_t)TQ_PAYLOAD_MAX + 1 },
		{ "procs 7", 4, 7 },
		{ "procs 4097", 4, 4097 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c = tqt_small_config();
		switch (bad[i].field) {
		case 0: c.queues = (uint32_t)bad[i].value; break;
		case 1: c.levels = (uint32_t)bad[i].value; break;
		case 2: c.capacity = (uint32_t)bad[i].value; break;
		case 3: c.max_payload = (uint32_t)bad[i].value; break;
		case 4: c.procs = (uint32_t)bad[i].value; break;
		}
		expect_create_err(name, &c, -EINVAL, bad[i].what);
		CHECKF(!shm_exists(name), "%s: a failed create left %s behind", bad[i].what, name);
		CHECKF(tq_last_error(NULL)[0] != 0, "%s: tq_last_error(NULL) is empty", bad[i].what);
	}
	/* The limits themselves are fine. */
	c = tqt_small_config();
	c.levels = TQ_LEVELS_MAX;
	c.queues = TQ_QUEUES_MAX;
	c.capacity = 64;
	c.procs = 8;
	tq *t = NULL;
	CHECK_RET(tq_create(name, &c, &t), 0);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.config.levels, TQ_LEVELS_MAX);
	CHECK_EQ(si.config.queues, TQ_QUEUES_MAX);
	CHECK_EQ(si.config.capacity, 64);
	CHECK_EQ(si.config.procs, 8);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	c = tqt_small_config();
	CHECK_ERR(tq_create(name, &c, NULL), -EINVAL);
	CHECK(!shm_exists(name));
}

static void test_names(void)
{
	struct tq_config c = tqt_small_config();
	char longname[TQ_NAME_MAX + 8];

	expect_create_err(NULL, &c, -EINVAL, "NULL name");
	expect_create_err("", &c, -EINVAL, "empty name");
	expect_create_err("/", &c, -EINVAL, "only a slash");
	expect_create_err("//tq-t-x", &c, -EINVAL, "two leading slashes");
	expect_create_err("/tq-t/x", &c, -EINVAL, "embedded slash");
	expect_create_err("tq-t/x", &c, -EINVAL, "embedded slash, no leading one");
	expect_create_err("/tq-t-x/", &c, -EINVAL, "trailing slash");

	/* TQ_NAME_MAX bytes (leading '/' included) is fine, one more is not. */
	char base[TQ_NAME_MAX + 1];
	snprintf(base, sizeof base, "/tq-t-segment-%d-long-", (int)getpid());
	memset(longname, 'x', sizeof longname);
	memcpy(longname, base, strlen(base));
	longname[TQ_NAME_MAX + 1] = 0;
	expect_create_err(longname, &c, -ENAMETOOLONG, "TQ_NAME_MAX + 1 bytes");
	CHECK_ERR(tq_attach(longname, &(tq *){ NULL }), -ENAMETOOLONG);
	CHECK_ERR(tq_unlink(longname), -ENAMETOOLONG);
	longname[TQ_NAME_MAX] = 0;
	tqt_remember_seg(longname);
	tq *t = NULL;
	CHECK_RET(tq_create(longname, &c, &t), 0);
	tq_detach(t);
	t = tqt_attach(longname);
	tq_detach(t);
	CHECK_RET(tq_unlink(longname), 0);

	/* Bad names are refused by attach and unlink too. */
	CHECK_ERR(tq_attach("/tq-t/x", &(tq *){ NULL }), -EINVAL);
	CHECK_ERR(tq_attach("", &(tq *){ NULL }), -EINVAL);
	CHECK_ERR(tq_attach(NULL, &(tq *){ NULL }), -EINVAL);
	CHECK_ERR(tq_unlink("//x"), -EINVAL);
	CHECK_ERR(tq_unlink(""), -EINVAL);

	/* The leading '/' is optional: both spellings name one segment. */
	char name[TQ_NAME_MAX + 1];
	tqt_segname(name);
	t = NULL;
	CHECK_RET(tq_create(name + 1, &c, &t), 0);
	int qi = CHECK_OK(tq_queue_declare(t, "via-no-slash", NULL));
	tq *u = tqt_attach(name);
	CHECK_RET(tq_queue_find(u, "via-no-slash"), qi);
	tq_detach(u);
	tq_detach(t);
	CHECK_RET(tq_unlink(name + 1), 0);
	CHECK(!shm_exists(name));
}

static void test_exist_noent_unlink(void)
{
	struct tq_config c = tqt_small_config();
	char name[TQ_NAME_MAX + 1];
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "keep", NULL));
	uint64_t id = 0;
	CHECK_RET(tq_submit(t, q, "abc", 3, NULL, &id), 0);

	/* -EEXIST, and the existing segment is left alone. */
	expect_create_err(name, &c, -EEXIST, "existing name");
	expect_create_err(name, NULL, -EEXIST, "existing name, default config");
	tq *u = tqt_attach(name);
	CHECK_RET(tq_queue_find(u, "keep"), q);
	struct tq_info info;
	CHECK_RET(tq_get(u, id, &info), 0);
	CHECK_EQ(info.state, TQ_STATE_PENDING);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(u, &si), 0);
	CHECK_EQ(si.procs_attached, 2);
	tq_detach(u);
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.procs_attached, 1);

	/* Unlinked: the name is gone, mapped handles keep working. */
	CHECK_RET(tq_unlink(name), 0);
	CHECK(!shm_exists(name));
	CHECK_ERR(tq_unlink(name), -ENOENT);
	tq *sentinel = (tq *)(uintptr_t)0x5678, *v = sentinel;
	CHECK_ERR(tq_attach(name, &v), -ENOENT);
	CHECK(v == sentinel);
	uint64_t id2 = 0;
	CHECK_RET(tq_submit(t, q, "def", 3, NULL, &id2), 0);
	struct tq_task task[2];
	struct tq_lease_opts lo = { .timeout_ms = 0 };
	CHECK_RET(tq_lease(t, &lo, task, 2), 2);
	CHECK_EQU(task[0].id, id);
	CHECK_EQU(task[1].id, id2);
	CHECK_RET(tq_ack(t, id, NULL, 0), 0);
	CHECK_RET(tq_ack(t, id2, NULL, 0), 0);

	/* The name can be created again: a new, empty segment. */
	tq *w = NULL;
	CHECK_RET(tq_create(name, &c, &w), 0);
	CHECK_ERR(tq_queue_find(w, "keep"), -ENOENT);
	tq_detach(w);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);

	/* Destructors accept NULL. */
	tq_detach(NULL);
}

static void test_users(void)
{
	struct tq_config c = tqt_small_config();
	c.procs = 8;
	char name[TQ_NAME_MAX + 1];
	tq *h[8];
	h[0] = tqt_create(name, &c);
	for (int i = 1; i < 8; i++)
		h[i] = tqt_attach(name);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(h[3], &si), 0);
	CHECK_EQ(si.procs_attached, 8);
	tq *x = (tq *)(uintptr_t)0x9abc;
	CHECK_ERR(tq_attach(name, &x), -EUSERS);
	CHECK(x == (tq *)(uintptr_t)0x9abc);

	/* Another process finds no slot either. */
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *y = NULL;
		int r = tq_attach(name, &y);
		_exit(r == -EUSERS ? 0 : 10);
	}
	tqt_expect_child_ok(pid, 30000);

	/* A slot given back is usable again. */
	tq_detach(h[5]);
	h[5] = tqt_attach(name);
	CHECK_RET(tq_segment_info(h[0], &si), 0);
	CHECK_EQ(si.procs_attached, 8);
	for (int i = 0; i < 8; i++)
		tq_detach(h[i]);
	CHECK_RET(tq_unlink(name), 0);
}

/* No room to map the segment: -ENOMEM (or -ENOSPC), nothing left behind.
 * The address space is limited in a child; sanitizers need theirs. */
static void test_no_room(void)
{
#if TQT_SANITIZED
	TQT_LOG("sanitizer build: the RLIMIT_AS case is not run");
#else
	char name[TQ_NAME_MAX + 1];
	tqt_segname(name);
	pid_t pid = tqt_fork();
	if (pid == 0) {
		struct rlimit rl = { 512u << 20, 512u << 20 };
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(20);
		struct tq_config c;
		tq_config_init(&c);
		c.capacity = 1u << 24;       /* 2 GiB of slots alone */
		c.arena_bytes = 1ull << 32;
		tq *t = (tq *)(uintptr_t)1;
		int r = tq_create(name, &c, &t);
		CHECKF(r == -ENOMEM || r == -ENOSPC, "tq_create without address space: %d (%s)", r,
		       tq_strerror(r));
		CHECK(t == (tq *)(uintptr_t)1);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	CHECKF(!shm_exists(name), "a create that failed for lack of room left %s behind", name);
#endif
}

/* Permissions, seen by another user: needs root to become one. */
static void test_access(void)
{
	if (geteuid() != 0) {
		TQT_LOG("not root: the -EACCES/-EPERM cases need another user; not run");
		return;
	}
	const gid_t group = 54321, other_group = 54322;
	const uid_t nobody = 65534;
	struct tq_config c = tqt_small_config();
	char priv[TQ_NAME_MAX + 1], shared[TQ_NAME_MAX + 1], theirs[TQ_NAME_MAX + 1];
	tq *p = tqt_create(priv, &c);                  /* 0600, root's */
	c.group = group;
	c.mode = 0;
	tq *g = tqt_create(shared, &c);                /* 0660, group 54321 */
	int q = CHECK_OK(tq_queue_declare(g, "g", NULL));
	tqt_segname(theirs);

	/* A member of the group can use the group's segment, not root's. */
	pid_t pid = tqt_fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(group) < 0 || setuid(nobody) < 0)
			_exit(20);
		tq *t = NULL;
		CHECK_ERR(tq_attach(priv, &t), -EACCES);
		CHECK_RET(tq_attach(shared, &t), 0);
		CHECK_RET(tq_submit(t, q, "m", 1, NULL, NULL), 0);
		tq_detach(t);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	struct tq_stats st;
	CHECK_RET(tq_stats(g, q, -1, &st), 0);
	CHECK_EQU(st.submitted, 1);

	/* Someone else can use neither, cannot unlink them, and cannot give
	 * a segment to a group it is not in (nothing is left behind). */
	pid = tqt_fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(other_group) < 0 || setuid(nobody) < 0)
			_exit(20);
		tq *t = NULL;
		CHECK_ERR(tq_attach(priv, &t), -EACCES);
		CHECK_ERR(tq_attach(shared, &t), -EACCES);
		int r = tq_unlink(shared);
		CHECKF(r == -EACCES || r == -EPERM, "unlink of another user's segment: %d", r);
		struct tq_config cc = tqt_small_config();
		cc.group = group;
		r = tq_create(theirs, &cc, &t);
		CHECKF(r == -EPERM || r == -EACCES, "create for a group we are not in: %d (%s)", r,
		       tq_strerror(r));
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	CHECKF(!shm_exists(theirs), "a create that failed with -EPERM left %s behind", theirs);
	CHECK(shm_exists(shared));
	tq_detach(p);
	tq_detach(g);
	CHECK_RET(tq_unlink(priv), 0);
	CHECK_RET(tq_unlink(shared), 0);
}

static int shm_rw(const char *name)
{
	int fd = shm_open(name, O_RDWR, 0);
	if (fd < 0)
		FAIL("shm_open(%s): %s", name, strerror(errno));
	return fd;
}

static bool has_word(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcasestr(s, *words))
			return true;
	return false;
}

static void expect_proto(const char *name, const char *what, const char *const *words,
			 char *msg_out, size_t msg_size)
{
	tq *t = (tq *)(uintptr_t)0x1111;
	int r = tq_attach(name, &t);
	if (r != -EPROTO) {
		if (r >= 0)
			tq_detach(t);
		FAIL("%s: tq_attach gave %d (%s), want -EPROTO", what, r, tq_strerror(r));
	}
	CHECK(t == (tq *)(uintptr_t)0x1111);
	const char *m = tq_last_error(NULL);
	CHECK(m != NULL);
	CHECKF(m[0] != 0, "%s: tq_last_error(NULL) is empty after -EPROTO", what);
	if (words)
		CHECKF(has_word(m, words), "%s: tq_last_error(NULL) = \"%s\" does not say which",
		       what, m);
	if (msg_out)
		snprintf(msg_out, msg_size, "%s", m);
}

static void test_proto(void)
{
	struct tq_config c = tqt_small_config();
	char name[TQ_NAME_MAX + 1];
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "q", NULL));
	tq_detach(t);

	int fd = shm_rw(name);
	struct stat st;
	CHECK_RET(fstat(fd, &st), 0);
	off_t size = st.st_size;
	CHECK_GT(size, 16);
	unsigned char hdr[16];
	CHECK_RET(pread(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
	CHECKF(memcmp(hdr, MAGIC, MAGIC_LEN) == 0, "magic is \"%.8s\"", (const char *)hdr);
	uint32_t ver = (uint32_t)hdr[8] | (uint32_t)hdr[9] << 8 | (uint32_t)hdr[10] << 16 |
		       (uint32_t)hdr[11] << 24;
	CHECK_NE(ver, 0);

	char m_magic[512], m_version[512], m_size[512];
	static const char *const w_magic[] = { "magic", NULL };
	static const char *const w_version[] = { "version", NULL };
	static const char *const w_size[] = { "size", "short", "truncat", "small", "length",
					      "bytes", NULL };

	/* Every byte of the magic matters. */
	for (int i = 0; i < MAGIC_LEN; i++) {
		unsigned char b = hdr[i] ^ 0x20;
		CHECK_RET(pwrite(fd, &b, 1, i), 1);
		expect_proto(name, "magic byte changed", w_magic, m_magic, sizeof m_magic);
		CHECK_RET(pwrite(fd, &hdr[i], 1, i), 1);
	}
	/* A good header attaches again. */
	t = tqt_attach(name);
	CHECK_STREQ(tq_last_error(NULL), "");
	CHECK_RET(tq_queue_find(t, "q"), q);
	tq_detach(t);

	/* Layout version: one more, one less, and all bits flipped. */
	uint32_t vers[3] = { ver + 1, ver - 1, ~ver };
	for (int i = 0; i < 3; i++) {
		unsigned char v[4] = { (unsigned char)vers[i], (unsigned char)(vers[i] >> 8),
				       (unsigned char)(vers[i] >> 16),
				       (unsigned char)(vers[i] >> 24) };
		CHECK_RET(pwrite(fd, v, 4, VERSION_OFF), 4);
		expect_proto(name, "layout version changed", w_version, m_version,
			     sizeof m_version);
	}
	CHECK_RET(pwrite(fd, hdr + VERSION_OFF, 4, VERSION_OFF), 4);
	t = tqt_attach(name);
	tq_detach(t);

	/* Shorter than the header says: half, one page less, a page, a few
	 * bytes, nothing at all. */
	off_t sizes[] = { size / 2, size - 4096, 4096, 12, 0 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		CHECK_RET(ftruncate(fd, sizes[i]), 0);
		expect_proto(name, "segment truncated", sizes[i] >= 16 ? w_size : NULL,
			     sizes[i] >= 16 ? m_size : NULL, sizeof m_size);
	}
	close(fd);
	CHECKF(strcmp(m_magic, m_version) && strcmp(m_magic, m_size) &&
		       strcmp(m_version, m_size),
	       "the three -EPROTO causes give the same text: \"%s\" / \"%s\" / \"%s\"",
	       m_magic, m_version, m_size);
	CHECK_RET(tq_unlink(name), 0);

	/* An empty shm object that tq never wrote. */
	tqt_segname(name);
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	expect_proto(name, "empty shm object", NULL, NULL, 0);
	CHECK_RET(tq_unlink(name), 0);
}

/* A child process attaches, sees the parent's queue and task, and its
 * attach and detach are counted. */
static void test_cross_process(void)
{
	struct tq_config c = tqt_small_config();
	char name[TQ_NAME_MAX + 1];
	tq *t = tqt_create(name, &c);
	int q = CHECK_OK(tq_queue_declare(t, "xp", NULL));
	uint64_t id;
	CHECK_RET(tq_submit(t, q, "hello", 5, NULL, &id), 0);
	pid_t pid = tqt_fork();
	if (pid == 0) {
		tq *u = tqt_attach(name);
		CHECK_RET(tq_queue_find(u, "xp"), q);
		struct tq_task task;
		struct tq_lease_opts lo = { .timeout_ms = 0 };
		CHECK_RET(tq_lease(u, &lo, &task, 1), 1);
		CHECK_EQU(task.id, id);
		CHECK_EQ(task.len, 5);
		CHECK(memcmp(task.payload, "hello", 5) == 0);
		CHECK_RET(tq_ack(u, id, "world", 5), 0);
		tq_detach(u);
		_exit(0);
	}
	tqt_expect_child_ok(pid, 30000);
	char buf[16];
	CHECK_RET(tq_result(t, id, buf, sizeof buf), 5);
	CHECK(memcmp(buf, "world", 5) == 0);
	struct tq_segment_info si;
	CHECK_RET(tq_segment_info(t, &si), 0);
	CHECK_EQ(si.procs_attached, 1);
	tq_detach(t);
	CHECK_RET(tq_unlink(name), 0);
}

int main(void)
{
	tqt_init("segment");
	tqt_guard(120);
	test_config_init();
	test_now();
	test_create_defaults();
	test_mode();
	test_bad_config();
	test_names();
	test_exist_noent_unlink();
	test_users();
	test_access();
	test_no_room();
	test_proto();
	test_cross_process();
	return 0;
}

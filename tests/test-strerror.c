/* SPDX-License-Identifier: MIT */
/*
 * test-strerror - tq_strerror: every errno the API returns has its own
 * words (not the text given for an unknown value), any int gives a
 * non-empty string, and tq_last_error() is never NULL.
 */
#include <limits.h>

#include "tq-test.h"

int main(void)
{
	tqt_init("strerror");
	tqt_guard(25);
	static const int used[] = {
		EINVAL, ENAMETOOLONG, EEXIST, ENOMEM, ENOSPC, EACCES, EPERM, EUSERS, ENOENT,
		EPROTO, EMSGSIZE, EAGAIN, ETIMEDOUT, EINTR, ENOBUFS, ESTALE, EBUSY,
	};
	enum { N = sizeof used / sizeof used[0] };
	const char *unknown = tq_strerror(-123456);
	CHECK(unknown != NULL);
	CHECK(unknown[0] != 0);
	const char *words[N];
	for (int i = 0; i < N; i++) {
		words[i] = tq_strerror(-used[i]);
		CHECKF(words[i] != NULL, "-%s gives NULL", tqt_errname(used[i]));
		CHECKF(strlen(words[i]) >= 4, "-%s gives \"%s\"", tqt_errname(used[i]), words[i]);
		CHECKF(strcmp(words[i], unknown) != 0, "-%s gives the unknown-value text \"%s\"",
		       tqt_errname(used[i]), words[i]);
		/* Stable: the same pointer contents on a second call. */
		CHECK_STREQ(tq_strerror(-used[i]), words[i]);
		for (int j = 0; j < i; j++)
			CHECKF(strcmp(words[i], words[j]) != 0, "-%s and -%s both give \"%s\"",
			       tqt_errname(used[i]), tqt_errname(used[j]), words[i]);
		TQT_LOG("-%s: %s", tqt_errname(used[i]), words[i]);
	}
	/* EWOULDBLOCK is EAGAIN on Linux. */
	CHECK_STREQ(tq_strerror(-EWOULDBLOCK), tq_strerror(-EAGAIN));

	/* Any value gives some text. */
	static const int odd[] = { 0, 1, 5, EINVAL, -1, -4095, -4096, -99999, INT_MIN, INT_MAX,
				   -EHWPOISON, -ENOTRECOVERABLE, -ELOOP, -EIO };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		const char *s = tq_strerror(odd[i]);
		CHECKF(s != NULL, "tq_strerror(%d) is NULL", odd[i]);
		CHECKF(s[0] != 0, "tq_strerror(%d) is empty", odd[i]);
	}
	/* Success is not described as an error of the API. */
	for (int i = 0; i < N; i++)
		CHECK(strcmp(tq_strerror(0), words[i]) != 0);

	/* tq_last_error: never NULL, "" before anything failed in a thread. */
	CHECK(tq_last_error(NULL) != NULL);
	CHECK_STREQ(tq_last_error(NULL), "");
	tq *t = (tq *)(uintptr_t)1;
	CHECK_ERR(tq_attach("/tq-t-strerror-no-such-segment", &t), -ENOENT);
	CHECK(t == (tq *)(uintptr_t)1);
	CHECK(tq_last_error(NULL) != NULL);
	CHECK(tq_last_error(NULL)[0] != 0);
	return 0;
}

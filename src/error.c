/* SPDX-License-Identifier: MIT */
/*
 * error.c - words for errors: tq_strerror() for a result code, and the
 * per-handle (or per-thread, before a handle exists) sentence that says
 * exactly what failed, read with tq_last_error().
 */
#include <stdio.h>
#include <string.h>

#include "handle.h"

static _Thread_local char tls_err[256];

const char *tq_strerror(int err)
{
	/* -(long long) so that INT_MIN does not overflow. */
	switch (err < 0 ? -(long long)err : (long long)err) {
	case 0:            return "success";
	case EINVAL:       return "invalid argument";
	case ENAMETOOLONG: return "segment or queue name too long";
	case EEXIST:       return "segment already exists";
	case ENOENT:       return "no such segment, queue or task";
	case EPROTO:       return "segment or journal is corrupt or of another layout version";
	case EIO:          return "journal write or flush failed (I/O error)";
	case ENOTSUP:      return "not supported: the segment has no journal";
	case EAGAIN:       return "full, or nothing ready: try again";
	case ETIMEDOUT:    return "timed out";
	case EMSGSIZE:     return "payload or result larger than the segment's max_payload";
	case ESTALE:       return "lease lost: the task is not held by this handle";
	case EBUSY:        return "task is not in a state that allows this";
	case ENOSPC:       return "no room left (every queue declared, or no free storage)";
	case ENOBUFS:      return "handle holds too many tasks at once (TQ_HELD_MAX)";
	case EUSERS:       return "too many handles attached to the segment";
	case ENOMEM:       return "out of memory";
	case EACCES:       return "permission denied";
	case EPERM:        return "operation not permitted";
	case EINTR:        return "interrupted by a signal";
	case EOVERFLOW:    return "value out of range";
	default:           return "unknown error";
	}
}

void tq__set_tls_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tls_err, sizeof(tls_err), fmt, ap);
	va_end(ap);
}

int tq__fail(tq *t, int err, const char *fmt, ...)
{
	va_list ap;
	char *buf = t ? t->err : tls_err;
	size_t size = t ? sizeof(t->err) : sizeof(tls_err);

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return err;
}

const char *tq_last_error(const tq *t)
{
	return t ? t->err : tls_err;
}

#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const error_names[PL_ERR__COUNT] = {
	[PL_OK] = "success",
	[PL_ERR_NOMEM] = "out of memory",
	[PL_ERR_INVALID] = "invalid value",
	[PL_ERR_RANGE] = "value out of range",
	[PL_ERR_PARSE] = "malformed input",
	[PL_ERR_IO] = "input/output error",
	[PL_ERR_NOT_FOUND] = "not found",
	[PL_ERR_EXISTS] = "already exists",
	[PL_ERR_STATE] = "not allowed in the current state",
	[PL_ERR_LIMIT] = "limit exceeded",
	[PL_ERR_THROTTLED] = "throttled",
	[PL_ERR_DENIED] = "not authorized",
	[PL_ERR_TLS] = "TLS failure",
	[PL_ERR_NETWORK] = "network failure",
	[PL_ERR_PROTOCOL] = "protocol violation",
	[PL_ERR_TIMEOUT] = "timed out",
	[PL_ERR_INTERRUPTED] = "interrupted",
	[PL_ERR_CHILD] = "child process failed",
	[PL_ERR_UNSUPPORTED] = "not supported",
	[PL_ERR_INTERNAL] = "internal error",
};

const char *pl_strerror(pl_err code)
{
	if ((unsigned)code >= PL_ERR__COUNT)
		return "unknown error";
	return error_names[code];
}

pl_err pl_errmsg_set(pl_errmsg *e, pl_err code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

void pl_errmsg_prefix(pl_errmsg *e, const char *fmt, ...)
{
	char prefix[PL_ERRMSG_MAX];
	char old[PL_ERRMSG_MAX];
	va_list ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	if (old[0] == '\0')
		snprintf(e->msg, sizeof(e->msg), "%s", prefix);
	else
		snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
}

void pl_errmsg_clear(pl_errmsg *e)
{
	if (e != NULL)
		e->msg[0] = '\0';
}

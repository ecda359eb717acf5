/*
 * Project-wide error codes and caller-owned error messages.
 *
 * Every fallible function returns a pl_err. Functions that can say more than
 * the code take a pl_errmsg *, owned by the caller, and fill it with
 * "what: why" (profile errors with "file:line:column: ..."). Passing NULL for
 * the message is allowed and discards it.
 */
#ifndef PL_ERROR_H
#define PL_ERROR_H

#include <stddef.h>

typedef enum pl_err {
	PL_OK = 0,
	PL_ERR_NOMEM,       /* allocation failed */
	PL_ERR_INVALID,     /* invalid argument or input value */
	PL_ERR_RANGE,       /* value outside the accepted range or overflow */
	PL_ERR_PARSE,       /* malformed document (JSON, YAML, CSV, PEM) */
	PL_ERR_IO,          /* file or socket read/write failed */
	PL_ERR_NOT_FOUND,   /* named resource does not exist */
	PL_ERR_EXISTS,      /* named resource already exists */
	PL_ERR_STATE,       /* operation not allowed in the current state */
	PL_ERR_LIMIT,       /* a configured or documented limit was reached */
	PL_ERR_THROTTLED,   /* rejected by a rate limit */
	PL_ERR_DENIED,      /* rejected by authorization */
	PL_ERR_TLS,         /* TLS setup or handshake failed */
	PL_ERR_NETWORK,     /* connection refused, reset or unreachable */
	PL_ERR_PROTOCOL,    /* peer sent something the protocol does not allow */
	PL_ERR_TIMEOUT,     /* deadline passed */
	PL_ERR_INTERRUPTED, /* stopped by a signal or a cancel request */
	PL_ERR_CHILD,       /* a child process failed or exited early */
	PL_ERR_UNSUPPORTED, /* feature not available in this build or target */
	PL_ERR_INTERNAL,    /* bug: a broken invariant reported instead of asserted */
	PL_ERR__COUNT
} pl_err;

/* Returns a static, lowercase description of code; never NULL. */
const char *pl_strerror(pl_err code);

#define PL_ERRMSG_MAX 512

/* Caller-owned error context. msg is always NUL-terminated. */
typedef struct pl_errmsg {
	char msg[PL_ERRMSG_MAX];
} pl_errmsg;

/*
 * Formats a message into e (no-op when e is NULL) and returns code, so that
 * callers can write `return pl_errmsg_set(e, PL_ERR_INVALID, "...", ...)`.
 */
pl_err pl_errmsg_set(pl_errmsg *e, pl_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Prepends "prefix: " to the message already in e, for adding context while
 * an error travels up. No-op when e is NULL.
 */
void pl_errmsg_prefix(pl_errmsg *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Clears e (no-op when e is NULL). */
void pl_errmsg_clear(pl_errmsg *e);

#endif

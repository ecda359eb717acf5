/*
 * The project's logger: one line per message on stderr,
 * "2026-12-04T21:30:00.123Z info  [component] message".
 *
 * The level is checked before the arguments are formatted, so a disabled
 * debug line costs one load and one compare. Thread-safe: each line is
 * written with a single write(2). Never pass secrets or key material.
 */
#ifndef PL_LOG_H
#define PL_LOG_H

#include "common/error.h"

typedef enum pl_log_level {
	PL_LOG_ERROR = 0,
	PL_LOG_WARN,
	PL_LOG_INFO,
	PL_LOG_DEBUG,
} pl_log_level;

/* Current threshold; messages above it are dropped. Default PL_LOG_INFO. */
extern volatile int pl_log_threshold;

void pl_log_set_level(pl_log_level level);

/* Parses "error", "warn", "info" or "debug" (case-sensitive). */
pl_err pl_log_level_parse(const char *text, pl_log_level *out, pl_errmsg *e);

const char *pl_log_level_name(pl_log_level level);

/*
 * Redirects output to fd (default 2). The caller keeps ownership of fd.
 * Not thread-safe against concurrent logging: call at start-up.
 */
void pl_log_set_fd(int fd);

/* Formats and writes one line. Use the macros below instead. */
void pl_log_write(pl_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define pl_log(level, component, ...)                                      \
	do {                                                               \
		if ((int)(level) <= pl_log_threshold)                      \
			pl_log_write((level), (component), __VA_ARGS__);   \
	} while (0)

#define PL_ERROR(component, ...) pl_log(PL_LOG_ERROR, component, __VA_ARGS__)
#define PL_WARN(component, ...)  pl_log(PL_LOG_WARN, component, __VA_ARGS__)
#define PL_INFO(component, ...)  pl_log(PL_LOG_INFO, component, __VA_ARGS__)
#define PL_DEBUG(component, ...) pl_log(PL_LOG_DEBUG, component, __VA_ARGS__)

#endif

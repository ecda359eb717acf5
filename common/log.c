#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int pl_log_threshold = PL_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void pl_log_set_level(pl_log_level level)
{
	pl_log_threshold = (int)level;
}

const char *pl_log_level_name(pl_log_level level)
{
	if ((unsigned)level > PL_LOG_DEBUG)
		return "unknown";
	return level_names[level];
}

pl_err pl_log_level_parse(const char *text, pl_log_level *out, pl_errmsg *e)
{
	for (int i = 0; i <= PL_LOG_DEBUG; i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*out = (pl_log_level)i;
			return PL_OK;
		}
	}
	return pl_errmsg_set(e, PL_ERR_INVALID,
			     "invalid log level '%s': expected error, warn, info or debug", text);
}

void pl_log_set_fd(int fd)
{
	log_fd = fd;
}

void pl_log_write(pl_log_level level, const char *component, const char *fmt, ...)
{
	char line[2048];
	struct timespec now;
	struct tm tm;
	size_t used;
	int n;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, now.tv_nsec / 1000000L, pl_log_level_name(level), component);
	used = n < 0 ? 0 : (size_t)n;
	if (used >= sizeof(line))
		used = sizeof(line) - 1;

	va_start(ap, fmt);
	n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	va_end(ap);
	if (n > 0)
		used += (size_t)n;
	/* A truncated message keeps its prefix and ends in "..." and a newline. */
	if (used >= sizeof(line) - 1) {
		used = sizeof(line) - 1;
		memcpy(line + used - 4, "...", 3);
		used--;
	}
	line[used++] = '\n';
	if (write(log_fd, line, used) < 0) {
		/* Nowhere left to report a failed log write. */
	}
}

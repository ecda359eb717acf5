#include "common/clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

static int64_t read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * PL_NS_PER_S + ts.tv_nsec;
}

int64_t pl_mono_ns(void)
{
	return read_clock(CLOCK_MONOTONIC);
}

int64_t pl_wall_ns(void)
{
	return read_clock(CLOCK_REALTIME);
}

void pl_sleep_ns(int64_t ns)
{
	struct timespec req;

	if (ns <= 0)
		return;
	req.tv_sec = (time_t)(ns / PL_NS_PER_S);
	req.tv_nsec = (long)(ns % PL_NS_PER_S);
	while (nanosleep(&req, &req) != 0 && errno == EINTR) {
	}
}

void pl_wall_format(int64_t wall_ns, char *buf, size_t len)
{
	time_t secs = (time_t)(wall_ns / PL_NS_PER_S);
	long ms = (long)((wall_ns % PL_NS_PER_S) / PL_NS_PER_MS);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int64_t pl_mono_to_wall(int64_t mono_ns, int64_t anchor_mono_ns, int64_t anchor_wall_ns)
{
	return anchor_wall_ns + (mono_ns - anchor_mono_ns);
}

#include "harness/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNDIR_PATH_MAX 4096

/* The header of samples.csv; docs/run-directory.md describes each column. */
static const char samples_header[] =
	"device,client_id,group,strategy,direction,swap_index,cert_id,worker,"
	"t_swap_start_ns,t_swap_ns,t_effect_ns,latency_ns,censored,"
	"attempts,connects,connect_failures,throttled,errors,"
	"truth_effect_ns,truth_error_ns,swap,t_connect_ns,t_censor_ns,censor_reason,excluded\n";

struct rundir {
	char path[RUNDIR_PATH_MAX];
	pthread_mutex_t lock; /* guards both FILEs and the counters */
	FILE *samples;
	FILE *events;
	uint64_t nsamples;
	uint64_t nevents;
	int64_t anchor_ns;
};

void rundir_set_anchor(rundir *rd, int64_t anchor_mono_ns)
{
	rd->anchor_ns = anchor_mono_ns;
}

int64_t rundir_relative(const rundir *rd, int64_t t)
{
	return t == RUNDIR_TIME_UNKNOWN ? t : t - rd->anchor_ns;
}

/* Creates every missing directory of path, like mkdir -p. */
static pl_err make_dirs(const char *path, pl_errmsg *e)
{
	char buf[RUNDIR_PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return pl_errmsg_set(e, PL_ERR_RANGE, "run directory '%s': invalid path length",
				     path);
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];

		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return pl_errmsg_set(e, PL_ERR_IO, "cannot create directory '%s': %s", buf,
					     strerror(errno));
		buf[i] = saved;
	}
	return PL_OK;
}

pl_err rundir_file(const rundir *rd, const char *name, char *buf, size_t len, pl_errmsg *e)
{
	int n = snprintf(buf, len, "%s/%s", rd->path, name);

	if (n < 0 || (size_t)n >= len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "path too long: %s/%s", rd->path, name);
	return PL_OK;
}

static pl_err open_in_dir(rundir *rd, const char *name, const char *mode, FILE **out,
			  pl_errmsg *e)
{
	char file[RUNDIR_PATH_MAX];
	pl_err err = rundir_file(rd, name, file, sizeof(file), e);

	if (err != PL_OK)
		return err;
	*out = fopen(file, mode);
	if (*out == NULL)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot open '%s': %s", file, strerror(errno));
	return PL_OK;
}

/* Rejects a directory that already contains samples of another run. */
static pl_err check_no_samples(rundir *rd, pl_errmsg *e)
{
	char file[RUNDIR_PATH_MAX];
	struct stat st;
	pl_err err = rundir_file(rd, "samples.csv", file, sizeof(file), e);

	if (err != PL_OK)
		return err;
	if (stat(file, &st) == 0 && st.st_size > (off_t)(sizeof(samples_header) - 1))
		return pl_errmsg_set(e, PL_ERR_EXISTS,
				     "'%s' already holds samples of another run; choose another --out",
				     file);
	return PL_OK;
}

pl_err rundir_create(rundir **out, const char *dir, pl_errmsg *e)
{
	rundir *rd = calloc(1, sizeof(*rd));
	pl_err err;

	if (rd == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "run directory: out of memory");
	if (strlen(dir) >= sizeof(rd->path)) {
		err = pl_errmsg_set(e, PL_ERR_RANGE, "run directory path too long: %s", dir);
		goto free_rd;
	}
	memcpy(rd->path, dir, strlen(dir) + 1);
	pthread_mutex_init(&rd->lock, NULL);
	err = make_dirs(dir, e);
	if (err == PL_OK)
		err = check_no_samples(rd, e);
	if (err == PL_OK)
		err = open_in_dir(rd, "samples.csv", "w", &rd->samples, e);
	if (err == PL_OK)
		err = open_in_dir(rd, "events.jsonl", "w", &rd->events, e);
	if (err != PL_OK)
		goto close_files;
	if (fputs(samples_header, rd->samples) == EOF || fflush(rd->samples) != 0) {
		err = pl_errmsg_set(e, PL_ERR_IO, "cannot write %s/samples.csv: %s", dir,
				    strerror(errno));
		goto close_files;
	}
	*out = rd;
	return PL_OK;

close_files:
	if (rd->samples != NULL)
		fclose(rd->samples);
	if (rd->events != NULL)
		fclose(rd->events);
	pthread_mutex_destroy(&rd->lock);
free_rd:
	free(rd);
	return err;
}

void rundir_free(rundir *rd)
{
	if (rd == NULL)
		return;
	fclose(rd->samples);
	fclose(rd->events);
	pthread_mutex_destroy(&rd->lock);
	free(rd);
}

const char *rundir_path(const rundir *rd)
{
	return rd->path;
}

/* Writes a CSV field, quoting it when it contains a comma, quote or line break. */
static void put_csv_text(FILE *f, const char *s)
{
	if (s == NULL)
		s = "";
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void put_csv_time(FILE *f, int64_t t)
{
	if (t != RUNDIR_TIME_UNKNOWN)
		fprintf(f, "%" PRId64, t);
}

static void write_sample_row(const rundir *rd, FILE *f, const rundir_sample *s)
{
	const char *texts[] = { s->device, s->client_id, s->group, s->strategy, s->direction };
	const int64_t times[] = { rundir_relative(rd, s->t_swap_start_ns),
				  rundir_relative(rd, s->t_swap_ns),
				  s->censored ? RUNDIR_TIME_UNKNOWN : rundir_relative(rd, s->t_effect_ns),
				  s->latency_ns };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		put_csv_text(f, texts[i]);
		fputc(',', f);
	}
	fprintf(f, "%d,", s->swap_index);
	put_csv_text(f, s->cert_id);
	fprintf(f, ",%d,", s->worker);
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		put_csv_time(f, times[i]);
		fputc(',', f);
	}
	fprintf(f, "%d,%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",",
		s->censored ? 1 : 0, s->attempts, s->connects, s->connect_failures, s->throttled,
		s->errors);
	put_csv_time(f, rundir_relative(rd, s->truth_effect_ns));
	fputc(',', f);
	put_csv_time(f, s->truth_error_ns);
	fputc(',', f);
	put_csv_text(f, s->swap);
	fputc(',', f);
	put_csv_time(f, rundir_relative(rd, s->t_connect_ns));
	fputc(',', f);
	put_csv_time(f, s->censored ? rundir_relative(rd, s->t_censor_ns) : RUNDIR_TIME_UNKNOWN);
	fputc(',', f);
	put_csv_text(f, s->censored ? s->censor_reason : NULL);
	fputc(',', f);
	put_csv_text(f, s->excluded);
	fputc('\n', f);
}

pl_err rundir_append_sample(rundir *rd, const rundir_sample *s, pl_errmsg *e)
{
	pl_err err = PL_OK;

	pthread_mutex_lock(&rd->lock);
	write_sample_row(rd, rd->samples, s);
	if (fflush(rd->samples) != 0 || ferror(rd->samples))
		err = pl_errmsg_set(e, PL_ERR_IO, "cannot write %s/samples.csv: %s", rd->path,
				    strerror(errno));
	else
		rd->nsamples++;
	pthread_mutex_unlock(&rd->lock);
	return err;
}

void rundir_json_string(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	if (len < 3) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		int n;

		if (c == '"' || c == '\\')
			n = snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c < 0x20)
			n = snprintf(esc, sizeof(esc), "\\u%04x", c);
		else
			n = snprintf(esc, sizeof(esc), "%c", c);
		if (o + (size_t)n + 2 > len)
			break;
		memcpy(buf + o, esc, (size_t)n);
		o += (size_t)n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

pl_err rundir_append_event(rundir *rd, int64_t t_ns, const char *type, const char *device,
			   const char *fields_json, pl_errmsg *e)
{
	char type_json[64];
	char device_json[256];
	pl_err err = PL_OK;

	rundir_json_string(type_json, sizeof(type_json), type);
	pthread_mutex_lock(&rd->lock);
	fprintf(rd->events, "{\"t_ns\":%" PRId64 ",\"type\":%s", rundir_relative(rd, t_ns),
		type_json);
	if (device != NULL) {
		rundir_json_string(device_json, sizeof(device_json), device);
		fprintf(rd->events, ",\"device\":%s", device_json);
	}
	if (fields_json != NULL && fields_json[0] != '\0')
		fprintf(rd->events, ",%s", fields_json);
	fputs("}\n", rd->events);
	if (fflush(rd->events) != 0 || ferror(rd->events))
		err = pl_errmsg_set(e, PL_ERR_IO, "cannot write %s/events.jsonl: %s", rd->path,
				    strerror(errno));
	else
		rd->nevents++;
	pthread_mutex_unlock(&rd->lock);
	return err;
}

static pl_err write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, text, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return PL_ERR_IO;
		text += n;
		len -= (size_t)n;
	}
	return PL_OK;
}

pl_err rundir_write_atomic(const rundir *rd, const char *name, const char *text, size_t len,
			   unsigned mode, pl_errmsg *e)
{
	char final_path[RUNDIR_PATH_MAX];
	char tmp_path[RUNDIR_PATH_MAX + 16];
	pl_err err = rundir_file(rd, name, final_path, sizeof(final_path), e);
	int fd;

	if (err != PL_OK)
		return err;
	snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", final_path);
	fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create '%s': %s", tmp_path,
				     strerror(errno));
	err = write_all(fd, text, len);
	if (err == PL_OK && fsync(fd) != 0)
		err = PL_ERR_IO;
	if (close(fd) != 0)
		err = PL_ERR_IO;
	if (err == PL_OK && rename(tmp_path, final_path) != 0)
		err = PL_ERR_IO;
	if (err != PL_OK) {
		pl_errmsg_set(e, err, "cannot write '%s': %s", final_path, strerror(errno));
		unlink(tmp_path);
	}
	return err;
}

uint64_t rundir_samples_written(rundir *rd)
{
	uint64_t n;

	pthread_mutex_lock(&rd->lock);
	n = rd->nsamples;
	pthread_mutex_unlock(&rd->lock);
	return n;
}

uint64_t rundir_events_written(rundir *rd)
{
	uint64_t n;

	pthread_mutex_lock(&rd->lock);
	n = rd->nevents;
	pthread_mutex_unlock(&rd->lock);
	return n;
}

/*
 * Run directory reader and writer. samples.csv follows RFC 4180 (quoted
 * fields may contain commas, doubled quotes and line breaks).
 */
#include "results/run.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "profiles/profile.h"

const char *const run_samples_columns[] = {
	"device", "client_id", "group", "strategy", "direction", "swap_index", "cert_id",
	"worker", "t_swap_start_ns", "t_swap_ns", "t_effect_ns", "latency_ns", "censored",
	"attempts", "connects", "connect_failures", "throttled", "errors", "truth_effect_ns",
	"truth_error_ns", "excluded", NULL
};

enum {
	COL_DEVICE, COL_CLIENT_ID, COL_GROUP, COL_STRATEGY, COL_DIRECTION, COL_SWAP_INDEX,
	COL_CERT_ID, COL_WORKER, COL_T_SWAP_START, COL_T_SWAP, COL_T_EFFECT, COL_LATENCY,
	COL_CENSORED, COL_ATTEMPTS, COL_CONNECTS, COL_CONNECT_FAILURES, COL_THROTTLED,
	COL_ERRORS, COL_TRUTH_EFFECT, COL_TRUTH_ERROR,
	NREQUIRED,                 /* the columns before this one must be present */
	COL_EXCLUDED = NREQUIRED,  /* optional: files written before it existed lack it */
	NCOLUMNS
};

pl_err run_path(char *buf, size_t len, const char *dir, const char *name, pl_errmsg *e)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "path too long: %s/%s", dir, name);
	return PL_OK;
}

/* ---- samples: storage ---- */

/* Row strings live in chunks that are never moved, so pointers stay valid. */
#define RUN_CHUNK_SIZE (1024 * 1024)

struct run_chunk {
	struct run_chunk *next;
	size_t used, cap;
	char data[];
};


pl_err run_samples_create(run_samples **out, pl_errmsg *e)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "samples: out of memory");
	return PL_OK;
}

void run_samples_free(run_samples *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->ngroups; i++) {
		free(rs->groups[i].name);
		free(rs->groups[i].strategy);
	}
	free(rs->groups);
	free(rs->rows);
	while (rs->strings != NULL) {
		struct run_chunk *next = rs->strings->next;
		free(rs->strings);
		rs->strings = next;
	}
	free(rs);
}

static const char *strings_add(run_samples *rs, const char *text, pl_errmsg *e)
{
	size_t len = strlen(text) + 1;
	struct run_chunk *c = rs->strings;

	if (c == NULL || c->cap - c->used < len) {
		size_t cap = len > RUN_CHUNK_SIZE ? len : RUN_CHUNK_SIZE;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL) {
			pl_errmsg_set(e, PL_ERR_NOMEM, "samples: out of memory");
			return NULL;
		}
		c->next = rs->strings;
		c->used = 0;
		c->cap = cap;
		rs->strings = c;
	}
	char *dst = c->data + c->used;
	memcpy(dst, text, len);
	c->used += len;
	return dst;
}

static pl_err group_index(run_samples *rs, const char *group, const char *strategy,
			  size_t *out, pl_errmsg *e)
{
	for (size_t i = 0; i < rs->ngroups; i++) {
		if (strcmp(rs->groups[i].name, group) == 0) {
			*out = i;
			return PL_OK;
		}
	}
	run_group *grown = realloc(rs->groups, (rs->ngroups + 1) * sizeof(*grown));
	if (grown == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "samples: out of memory");
	rs->groups = grown;
	grown[rs->ngroups].name = strdup(group);
	grown[rs->ngroups].strategy = strdup(strategy);
	if (grown[rs->ngroups].name == NULL || grown[rs->ngroups].strategy == NULL) {
		free(grown[rs->ngroups].name);
		free(grown[rs->ngroups].strategy);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "samples: out of memory");
	}
	*out = rs->ngroups++;
	return PL_OK;
}

pl_err run_samples_append(run_samples *rs, const run_sample *row, const char *group,
			  const char *strategy, pl_errmsg *e)
{
	size_t g = 0;
	const char *text[4] = { row->device, row->client_id, row->cert_id, row->excluded };
	const char *copy[4];
	pl_err err = group_index(rs, group, strategy, &g, e);

	if (err != PL_OK)
		return err;
	for (size_t f = 0; f < 4; f++) {
		copy[f] = strings_add(rs, text[f] ? text[f] : "", e);
		if (copy[f] == NULL)
			return PL_ERR_NOMEM;
	}
	if (rs->nrows == rs->row_cap) {
		size_t cap = rs->row_cap ? rs->row_cap * 2 : 1024;
		run_sample *grown = realloc(rs->rows, cap * sizeof(*grown));
		if (grown == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "samples: out of memory for %zu rows", cap);
		rs->rows = grown;
		rs->row_cap = cap;
	}
	run_sample *dst = &rs->rows[rs->nrows++];
	*dst = *row;
	dst->group = g;
	dst->device = copy[0];
	dst->client_id = copy[1];
	dst->cert_id = copy[2];
	dst->excluded = copy[3];
	return PL_OK;
}

/* ---- samples: CSV ---- */

/* Reads RFC 4180 records one at a time, counting physical lines. */
typedef struct csv_reader {
	FILE *f;
	const char *name;
	char *line;     /* getline buffer */
	size_t line_cap;
	char *rec;      /* the current record, unquoted in place into fields */
	size_t rec_cap;
	long line_no;   /* line where the current record starts */
	long next_line;
	char *fields[64];
	size_t nfields;
} csv_reader;

static pl_err csv_append(csv_reader *r, size_t *len, const char *text, size_t n, pl_errmsg *e)
{
	if (*len + n + 1 > RUN_RECORD_MAX)
		return pl_errmsg_set(e, PL_ERR_LIMIT, "%s:%ld: record longer than %d bytes",
				     r->name, r->line_no, RUN_RECORD_MAX);
	if (*len + n + 1 > r->rec_cap) {
		size_t cap = r->rec_cap ? r->rec_cap : 256;
		while (cap < *len + n + 1)
			cap *= 2;
		char *grown = realloc(r->rec, cap);
		if (grown == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", r->name);
		r->rec = grown;
		r->rec_cap = cap;
	}
	memcpy(r->rec + *len, text, n);
	*len += n;
	r->rec[*len] = '\0';
	return PL_OK;
}

/* Splits r->rec into fields, removing quotes. Returns PL_ERR_PARSE on bad quoting. */
static pl_err csv_split(csv_reader *r, pl_errmsg *e)
{
	char *in = r->rec, *out = r->rec;

	r->nfields = 0;
	for (;;) {
		if (r->nfields == sizeof(r->fields) / sizeof(r->fields[0]))
			return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%ld: more than %zu fields",
					     r->name, r->line_no, r->nfields);
		r->fields[r->nfields++] = out;
		if (*in == '"') {
			for (in++;; in++) {
				if (*in == '\0')
					return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%ld: unterminated quoted field",
							     r->name, r->line_no);
				if (*in == '"' && in[1] == '"')
					in++;
				else if (*in == '"')
					break;
				*out++ = *in;
			}
			in++;
			if (*in != ',' && *in != '\0')
				return pl_errmsg_set(e, PL_ERR_PARSE,
						     "%s:%ld: field %zu: text after the closing quote",
						     r->name, r->line_no, r->nfields);
		} else {
			while (*in != ',' && *in != '\0') {
				if (*in == '"')
					return pl_errmsg_set(e, PL_ERR_PARSE,
							     "%s:%ld: field %zu: quote inside an unquoted field",
							     r->name, r->line_no, r->nfields);
				*out++ = *in++;
			}
		}
		int last = *in == '\0';
		*out++ = '\0';
		if (last)
			return PL_OK;
		in++;
	}
}

static int quotes_open(const char *text, size_t len, int open)
{
	for (size_t i = 0; i < len; i++)
		if (text[i] == '"')
			open = !open;
	return open;
}

/*
 * Reads the physical lines of one record into r->rec (a quoted field may
 * span lines). *len is 0 for a blank line; *eof is set at the end of the file.
 */
static pl_err csv_read_record(csv_reader *r, size_t *len, int *eof, pl_errmsg *e)
{
	int open = 0;

	*len = 0;
	*eof = 0;
	r->line_no = r->next_line;
	for (;;) {
		ssize_t n = getline(&r->line, &r->line_cap, r->f);
		if (n < 0) {
			if (ferror(r->f))
				return pl_errmsg_set(e, PL_ERR_IO, "%s:%ld: read failed: %s", r->name,
						     r->next_line, strerror(errno));
			if (*len == 0 && !open) {
				*eof = 1;
				return PL_OK;
			}
			return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%ld: unterminated quoted field",
					     r->name, r->line_no);
		}
		r->next_line++;
		open = quotes_open(r->line, (size_t)n, open);
		if (!open) {
			/* Strip the record's line break (LF or CRLF). */
			while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r'))
				n--;
		}
		pl_err err = csv_append(r, len, r->line, (size_t)n, e);
		if (err != PL_OK || !open)
			return err;
	}
}

/* Reads the next non-blank record and splits it into fields; *eof is set at the end. */
static pl_err csv_next(csv_reader *r, int *eof, pl_errmsg *e)
{
	size_t len = 0;
	pl_err err;

	do {
		err = csv_read_record(r, &len, eof, e);
	} while (err == PL_OK && !*eof && len == 0);
	if (err != PL_OK || *eof)
		return err;
	return csv_split(r, e);
}

typedef struct column_map {
	size_t index[NCOLUMNS];
	size_t nheader; /* fields in the header row; every record has as many */
} column_map;

#define UTF8_BOM "\xEF\xBB\xBF"

/* A repeated column name would make one of the two columns unread. */
static pl_err check_header_unique(const csv_reader *r, pl_errmsg *e)
{
	for (size_t f = 0; f < r->nfields; f++)
		for (size_t g = 0; g < f; g++)
			if (strcmp(r->fields[f], r->fields[g]) == 0)
				return pl_errmsg_set(e, PL_ERR_PARSE,
						     "%s:%ld: header repeats column '%s' (fields %zu and %zu)",
						     r->name, r->line_no, r->fields[f], g + 1, f + 1);
	return PL_OK;
}

static pl_err read_header(csv_reader *r, column_map *map, pl_errmsg *e)
{
	int eof;
	pl_err err = csv_next(r, &eof, e);

	if (err != PL_OK)
		return err;
	if (eof)
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s: empty file, expected a header row", r->name);
	/* Spreadsheet programs write a UTF-8 byte order mark before the first column name. */
	if (r->nfields > 0 && strncmp(r->fields[0], UTF8_BOM, strlen(UTF8_BOM)) == 0)
		r->fields[0] += strlen(UTF8_BOM);
	err = check_header_unique(r, e);
	if (err != PL_OK)
		return err;
	map->nheader = r->nfields;
	for (size_t c = 0; c < NCOLUMNS; c++) {
		map->index[c] = SIZE_MAX;
		for (size_t f = 0; f < r->nfields; f++)
			if (strcmp(r->fields[f], run_samples_columns[c]) == 0)
				map->index[c] = f;
		if (c < NREQUIRED && map->index[c] == SIZE_MAX)
			return pl_errmsg_set(e, PL_ERR_PARSE, "%s:1: header has no column %s",
					     r->name, run_samples_columns[c]);
	}
	return PL_OK;
}

static pl_err field_int(csv_reader *r, const column_map *map, size_t col, int64_t min,
			int64_t *out, pl_errmsg *e)
{
	const char *text = r->fields[map->index[col]];
	pl_err err;

	if (*text == '\0') {
		*out = RUN_UNKNOWN;
		return PL_OK;
	}
	err = pl_parse_int64(text, min, INT64_MAX, out, e);
	if (err != PL_OK)
		pl_errmsg_prefix(e, "%s:%ld: field %s", r->name, r->line_no, run_samples_columns[col]);
	return err;
}

/* Accepts an empty field or an AWS disconnectReason token such as CONNECTION_LOST. */
static int reason_token_valid(const char *text)
{
	for (const char *p = text; *p != '\0'; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

static pl_err parse_row(csv_reader *r, const column_map *map, run_sample *row, pl_errmsg *e)
{
	static const size_t int_cols[] = { COL_SWAP_INDEX, COL_WORKER, COL_T_SWAP_START,
					   COL_T_SWAP, COL_T_EFFECT, COL_LATENCY, COL_ATTEMPTS,
					   COL_CONNECTS, COL_CONNECT_FAILURES, COL_THROTTLED,
					   COL_ERRORS, COL_TRUTH_EFFECT, COL_TRUTH_ERROR };
	int64_t *int_dst[] = { &row->swap_index, &row->worker, &row->t_swap_start_ns,
			       &row->t_swap_ns, &row->t_effect_ns, &row->latency_ns,
			       &row->attempts, &row->connects, &row->connect_failures,
			       &row->throttled, &row->errors, &row->truth_effect_ns,
			       &row->truth_error_ns };
	const char *dir = r->fields[map->index[COL_DIRECTION]];
	const char *cens = r->fields[map->index[COL_CENSORED]];

	for (size_t i = 0; i < sizeof(int_cols) / sizeof(int_cols[0]); i++) {
		/*
		 * Relative times and the ground-truth error may be negative, and so may
		 * a latency: a change can reach a device before the last control-plane
		 * call's response reaches the harness.
		 */
		pl_err err = field_int(r, map, int_cols[i], INT64_MIN + 1, int_dst[i], e);
		if (err != PL_OK)
			return err;
	}
	if (strcmp(dir, "grant") == 0)
		row->direction = RUN_GRANT;
	else if (strcmp(dir, "revoke") == 0)
		row->direction = RUN_REVOKE;
	else
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s:%ld: field direction: invalid value '%s', expected grant or revoke",
				     r->name, r->line_no, dir);
	if (strcmp(cens, "0") != 0 && strcmp(cens, "1") != 0)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s:%ld: field censored: invalid value '%s', expected 0 or 1",
				     r->name, r->line_no, cens);
	row->censored = cens[0] == '1';
	row->device = r->fields[map->index[COL_DEVICE]];
	row->client_id = r->fields[map->index[COL_CLIENT_ID]];
	row->cert_id = r->fields[map->index[COL_CERT_ID]];
	row->excluded = map->index[COL_EXCLUDED] != SIZE_MAX ? r->fields[map->index[COL_EXCLUDED]]
							      : "";
	if (!reason_token_valid(row->excluded))
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s:%ld: field excluded: invalid value '%s', expected empty or a "
				     "disconnect reason such as SERVER_INITIATED_DISCONNECT (A-Z, 0-9 "
				     "and _)",
				     r->name, r->line_no, row->excluded);
	return PL_OK;
}

/* Group names follow the profile's rule for names, and "all" is the whole fleet in summaries. */
static pl_err check_group(const csv_reader *r, const char *group, pl_errmsg *e)
{
	if (profile_check_name(group, e) != PL_OK) {
		pl_errmsg_prefix(e, "%s:%ld: field group", r->name, r->line_no);
		return PL_ERR_PARSE;
	}
	if (strcmp(group, "all") == 0)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s:%ld: field group: the name 'all' is reserved for the whole fleet",
				     r->name, r->line_no);
	return PL_OK;
}

/* Record start lines of the rows read so far, for messages about a row. */
typedef struct row_lines {
	long *line;
	size_t cap;
} row_lines;

static pl_err row_lines_set(row_lines *lines, size_t row, long line_no, pl_errmsg *e)
{
	if (row == lines->cap) {
		size_t cap = lines->cap ? lines->cap * 2 : 1024;
		long *grown = realloc(lines->line, cap * sizeof(*grown));

		if (grown == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "samples: out of memory for %zu rows", cap);
		lines->line = grown;
		lines->cap = cap;
	}
	lines->line[row] = line_no;
	return PL_OK;
}

static pl_err read_rows(csv_reader *r, const column_map *map, run_samples *rs, row_lines *lines,
			pl_errmsg *e)
{
	for (;;) {
		const char *group;
		run_sample row;
		int eof;
		pl_err err = csv_next(r, &eof, e);

		if (err != PL_OK || eof)
			return err;
		if (r->nfields != map->nheader)
			return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%ld: %zu fields, expected %zu as in the header",
					     r->name, r->line_no, r->nfields, map->nheader);
		memset(&row, 0, sizeof(row));
		group = r->fields[map->index[COL_GROUP]];
		err = parse_row(r, map, &row, e);
		if (err == PL_OK)
			err = check_group(r, group, e);
		if (err == PL_OK)
			err = row_lines_set(lines, rs->nrows, r->line_no, e);
		if (err == PL_OK)
			err = run_samples_append(rs, &row, group, r->fields[map->index[COL_STRATEGY]], e);
		if (err != PL_OK)
			return err;
	}
}

/* A row's (device, swap_index) key and the line where its record starts. */
typedef struct row_key {
	const char *device;
	int64_t swap_index;
	long line_no;
} row_key;

static int row_key_order(const void *a, const void *b)
{
	const row_key *x = a, *y = b;
	int c = strcmp(x->device, y->device);

	if (c != 0)
		return c;
	if (x->swap_index != y->swap_index)
		return x->swap_index < y->swap_index ? -1 : 1;
	return (x->line_no > y->line_no) - (x->line_no < y->line_no);
}

/*
 * Rejects a second row for one (device, swap_index), which would count the
 * device twice in the statistics. The message names the first repeat in
 * file order and the line it repeats.
 */
static pl_err check_unique_rows(const char *name, const run_samples *rs, const row_lines *lines,
				pl_errmsg *e)
{
	row_key *keys = malloc((rs->nrows ? rs->nrows : 1) * sizeof(*keys));
	const row_key *repeat = NULL, *first = NULL;
	size_t start = 0;

	if (keys == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "samples: out of memory for %zu rows", rs->nrows);
	for (size_t i = 0; i < rs->nrows; i++)
		keys[i] = (row_key){ rs->rows[i].device, rs->rows[i].swap_index, lines->line[i] };
	qsort(keys, rs->nrows, sizeof(*keys), row_key_order);
	for (size_t i = 1; i < rs->nrows; i++) {
		if (strcmp(keys[i].device, keys[start].device) != 0 ||
		    keys[i].swap_index != keys[start].swap_index) {
			start = i;
			continue;
		}
		/* Equal keys are sorted by line, so keys[start] is the key's first row. */
		if (repeat == NULL || keys[i].line_no < repeat->line_no) {
			repeat = &keys[i];
			first = &keys[start];
		}
	}
	if (repeat != NULL) {
		pl_errmsg_set(e, PL_ERR_PARSE,
			      "%s:%ld: device '%s' has a second row for swap_index %" PRId64
			      " (the first is on line %ld); a device has one row per swap",
			      name, repeat->line_no, repeat->device, repeat->swap_index,
			      first->line_no);
	}
	free(keys);
	return repeat != NULL ? PL_ERR_PARSE : PL_OK;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

pl_err run_samples_read(run_samples **out, const char *path, pl_errmsg *e)
{
	csv_reader r = { .name = base_name(path), .next_line = 1 };
	column_map map = { .nheader = 0 };
	row_lines lines = { NULL, 0 };
	run_samples *rs = NULL;
	pl_err err;

	r.f = fopen(path, "r");
	if (r.f == NULL)
		return pl_errmsg_set(e, errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO,
				     "cannot open %s: %s", path, strerror(errno));
	err = run_samples_create(&rs, e);
	if (err != PL_OK)
		goto close_file;
	err = read_header(&r, &map, e);
	if (err == PL_OK)
		err = read_rows(&r, &map, rs, &lines, e);
	if (err == PL_OK)
		err = check_unique_rows(r.name, rs, &lines, e);
	if (err != PL_OK) {
		run_samples_free(rs);
		rs = NULL;
	}
close_file:
	fclose(r.f);
	free(lines.line);
	free(r.line);
	free(r.rec);
	*out = rs;
	return err;
}

/* Writes one field, quoted when it contains a comma, a quote or a line break. */
static void csv_put(FILE *f, const char *text)
{
	if (strpbrk(text, ",\"\r\n") == NULL) {
		fputs(text, f);
		return;
	}
	fputc('"', f);
	for (; *text; text++) {
		if (*text == '"')
			fputc('"', f);
		fputc(*text, f);
	}
	fputc('"', f);
}

static void csv_put_int(FILE *f, int64_t v)
{
	if (v != RUN_UNKNOWN)
		fprintf(f, "%" PRId64, v);
}

static void write_row(FILE *f, const run_samples *rs, const run_sample *row)
{
	const int64_t tail[] = { row->attempts, row->connects, row->connect_failures,
				 row->throttled, row->errors, row->truth_effect_ns,
				 row->truth_error_ns };
	const int64_t times[] = { row->t_swap_start_ns, row->t_swap_ns, row->t_effect_ns,
				  row->latency_ns };

	csv_put(f, row->device);
	fputc(',', f);
	csv_put(f, row->client_id);
	fputc(',', f);
	csv_put(f, rs->groups[row->group].name);
	fputc(',', f);
	csv_put(f, rs->groups[row->group].strategy);
	fprintf(f, ",%s,", row->direction == RUN_REVOKE ? "revoke" : "grant");
	csv_put_int(f, row->swap_index);
	fputc(',', f);
	csv_put(f, row->cert_id);
	fputc(',', f);
	csv_put_int(f, row->worker);
	for (size_t i = 0; i < 4; i++) {
		fputc(',', f);
		csv_put_int(f, times[i]);
	}
	fprintf(f, ",%d", row->censored ? 1 : 0);
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++) {
		fputc(',', f);
		csv_put_int(f, tail[i]);
	}
	fputc(',', f);
	csv_put(f, row->excluded != NULL ? row->excluded : "");
	fputc('\n', f);
}

pl_err run_samples_write(const run_samples *rs, const char *path, pl_errmsg *e)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	for (size_t c = 0; run_samples_columns[c] != NULL; c++)
		fprintf(f, "%s%s", c ? "," : "", run_samples_columns[c]);
	fputc('\n', f);
	for (size_t i = 0; i < rs->nrows; i++)
		write_row(f, rs, &rs->rows[i]);
	if (ferror(f) | (fclose(f) != 0))
		return pl_errmsg_set(e, PL_ERR_IO, "writing %s failed: %s", path, strerror(errno));
	return PL_OK;
}

/* ---- events.jsonl ---- */

static const char *const event_type_names[RUN_EVENT__COUNT] = {
	"connect", "disconnect", "throttle", "swap", "error", "other"
};

const char *run_event_type_name(run_event_type type)
{
	return type < RUN_EVENT__COUNT ? event_type_names[type] : "other";
}

static run_event_type event_type_parse(const char *name)
{
	for (int t = 0; t < RUN_EVENT_OTHER; t++)
		if (strcmp(name, event_type_names[t]) == 0)
			return (run_event_type)t;
	return RUN_EVENT_OTHER;
}

static run_throttle_op throttle_op_parse(const char *name)
{
	if (name == NULL)
		return RUN_OP_NONE;
	if (strcmp(name, "connect") == 0)
		return RUN_OP_CONNECT;
	if (strcmp(name, "subscribe") == 0)
		return RUN_OP_SUBSCRIBE;
	if (strcmp(name, "publish") == 0)
		return RUN_OP_PUBLISH;
	if (strcmp(name, "control") == 0)
		return RUN_OP_CONTROL;
	return RUN_OP_OTHER;
}

static pl_err event_parse(const char *name, long line_no, const char *line, run_event *ev,
			  pl_errmsg *e)
{
	json_error_t jerr;
	json_t *obj = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	pl_err err = PL_OK;

	if (obj == NULL)
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%ld:%d: invalid JSON: %s", name, line_no,
				     jerr.column, jerr.text);
	json_t *t = json_object_get(obj, "t_ns");
	json_t *type = json_object_get(obj, "type");
	if (!json_is_object(obj) || !json_is_integer(t) || !json_is_string(type)) {
		err = pl_errmsg_set(e, PL_ERR_PARSE,
				    "%s:%ld: expected an object with integer \"t_ns\" and string \"type\"",
				    name, line_no);
		goto free_json;
	}
	ev->t_ns = json_integer_value(t);
	ev->type = event_type_parse(json_string_value(type));
	ev->op = ev->type == RUN_EVENT_THROTTLE
			 ? throttle_op_parse(json_string_value(json_object_get(obj, "op")))
			 : RUN_OP_NONE;
free_json:
	json_decref(obj);
	return err;
}

static pl_err events_push(run_events *ev, const run_event *item, pl_errmsg *e)
{
	if (ev->count == ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 1024;
		run_event *grown = realloc(ev->items, cap * sizeof(*grown));
		if (grown == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "events: out of memory for %zu events", cap);
		ev->items = grown;
		ev->cap = cap;
	}
	ev->items[ev->count++] = *item;
	return PL_OK;
}

static pl_err events_read_lines(FILE *f, const char *name, run_events *ev, pl_errmsg *e)
{
	char *line = NULL;
	size_t cap = 0;
	long line_no = 0;
	ssize_t n;
	pl_err err = PL_OK;

	while ((n = getline(&line, &cap, f)) >= 0) {
		run_event item;

		line_no++;
		if (n > RUN_RECORD_MAX) {
			err = pl_errmsg_set(e, PL_ERR_LIMIT, "%s:%ld: line longer than %d bytes",
					    name, line_no, RUN_RECORD_MAX);
			break;
		}
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		err = event_parse(name, line_no, line, &item, e);
		if (err == PL_OK)
			err = events_push(ev, &item, e);
		if (err != PL_OK)
			break;
	}
	if (err == PL_OK && ferror(f))
		err = pl_errmsg_set(e, PL_ERR_IO, "%s:%ld: read failed", name, line_no + 1);
	free(line);
	return err;
}

pl_err run_events_read(run_events **out, const char *path, pl_errmsg *e)
{
	run_events *ev;
	FILE *f;
	pl_err err;

	*out = NULL;
	f = fopen(path, "r");
	if (f == NULL)
		return pl_errmsg_set(e, errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO,
				     "cannot open %s: %s", path, strerror(errno));
	ev = calloc(1, sizeof(*ev));
	if (ev == NULL) {
		err = pl_errmsg_set(e, PL_ERR_NOMEM, "events: out of memory");
		goto close_file;
	}
	err = events_read_lines(f, base_name(path), ev, e);
	if (err != PL_OK)
		run_events_free(ev);
	else
		*out = ev;
close_file:
	fclose(f);
	return err;
}

void run_events_free(run_events *ev)
{
	if (ev == NULL)
		return;
	free(ev->items);
	free(ev);
}

/* ---- run.json ---- */

static pl_err info_string(json_t *root, const char *key, int required, char **out,
			  const char *name, pl_errmsg *e)
{
	json_t *v = json_object_get(root, key);

	if ((v == NULL || json_is_null(v)) && !required)
		v = json_string(""); /* optional strings may be absent or null */
	else if (!json_is_string(v))
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s: \"%s\" is %s, expected a string", name,
				     key, v == NULL ? "missing" : "not a string");
	else
		json_incref(v);
	*out = strdup(json_string_value(v));
	json_decref(v);
	if (*out == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
	return PL_OK;
}

/* Reads an optional integer key; an absent key or null reads as 0. */
static pl_err info_integer(json_t *root, const char *key, int64_t *out, const char *name,
			   pl_errmsg *e)
{
	json_t *v = json_object_get(root, key);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return PL_OK;
	if (!json_is_integer(v))
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s: \"%s\" is not an integer, expected nanoseconds as a "
				     "whole number",
				     name, key);
	*out = json_integer_value(v);
	return PL_OK;
}

void run_observer_gap_text(char *buf, size_t len, int64_t outages, int64_t outage_ns)
{
	snprintf(buf, len,
		 "the lifecycle observer was disconnected after the swap (%" PRId64
		 " outage%s, %.1f s in all), so excluded counts may be incomplete",
		 outages, outages == 1 ? "" : "s", (double)outage_ns / 1e9);
}

/* The observer's outages, which make the excluded counts possibly incomplete. */
static pl_err info_observer(run_info *ri, const char *name, pl_errmsg *e)
{
	json_t *obs = json_object_get(ri->json, "observer");
	json_t *after;
	pl_err err;

	if (obs == NULL || json_is_null(obs))
		return PL_OK;
	if (!json_is_object(obs))
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s: \"observer\" is not an object", name);
	err = info_integer(obs, "outages", &ri->observer_outages, name, e);
	if (err == PL_OK)
		err = info_integer(obs, "outage_ns", &ri->observer_outage_ns, name, e);
	if (err != PL_OK)
		return err;
	after = json_object_get(obs, "outage_after_swap");
	if (after != NULL && !json_is_boolean(after))
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s: \"observer.outage_after_swap\" is not true or false", name);
	ri->observer_outage_after_swap = json_is_true(after);
	return PL_OK;
}

static pl_err info_shard(run_info *ri, const char *name, pl_errmsg *e)
{
	const char *shard = json_string_value(json_object_get(ri->json, "shard"));
	char tail;

	ri->shard_index = ri->shard_count = 1;
	if (shard == NULL)
		return PL_OK;
	if (sscanf(shard, "%" SCNd64 "/%" SCNd64 "%c", &ri->shard_index, &ri->shard_count,
		   &tail) != 2 || ri->shard_index < 1 || ri->shard_count < 1 ||
	    ri->shard_index > ri->shard_count)
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s: \"shard\" is '%s', expected I/N with 1 <= I <= N", name,
				     shard);
	return PL_OK;
}

static pl_err info_expectations(run_info *ri, const char *name, pl_errmsg *e)
{
	json_t *list = json_object_get(ri->json, "expectations");
	size_t i;
	json_t *item;

	if (list == NULL)
		return PL_OK;
	if (!json_is_array(list))
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s: \"expectations\" is not an array", name);
	ri->expectations = calloc(json_array_size(list) + 1, sizeof(char *));
	if (ri->expectations == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
	json_array_foreach(list, i, item) {
		if (!json_is_string(item))
			return pl_errmsg_set(e, PL_ERR_PARSE, "%s: expectations[%zu] is not a string",
					     name, i);
		ri->expectations[i] = strdup(json_string_value(item));
		if (ri->expectations[i] == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "%s: out of memory", name);
		ri->nexpectations++;
	}
	return PL_OK;
}

static pl_err info_fields(run_info *ri, const char *name, pl_errmsg *e)
{
	static const char *const required[] = { "tool_version", "profile_name", "profile_hash",
						"run_id", "target", "start_wall", "status" };
	char **req_dst[] = { &ri->tool_version, &ri->profile_name, &ri->profile_hash,
			     &ri->run_id, &ri->target, &ri->start_wall, &ri->status };
	pl_err err = PL_OK;

	for (size_t i = 0; i < 7 && err == PL_OK; i++)
		err = info_string(ri->json, required[i], 1, req_dst[i], name, e);
	if (err == PL_OK)
		err = info_string(ri->json, "end_wall", 0, &ri->end_wall, name, e);
	if (err == PL_OK)
		err = info_string(ri->json, "reason", 0, &ri->reason, name, e);
	if (err != PL_OK)
		return err;
	err = info_integer(ri->json, "anchor_mono_ns", &ri->anchor_mono_ns, name, e);
	if (err == PL_OK)
		err = info_integer(ri->json, "anchor_wall_ns", &ri->anchor_wall_ns, name, e);
	if (err == PL_OK)
		err = info_observer(ri, name, e);
	if (err == PL_OK)
		err = info_shard(ri, name, e);
	if (err == PL_OK)
		err = info_expectations(ri, name, e);
	return err;
}

pl_err run_info_read(run_info **out, const char *path, pl_errmsg *e)
{
	json_error_t jerr;
	run_info *ri;
	pl_err err;

	*out = NULL;
	ri = calloc(1, sizeof(*ri));
	if (ri == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "run.json: out of memory");
	ri->json = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (ri->json == NULL) {
		free(ri);
		if (jerr.line < 0)
			return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "cannot read %s: %s", path, jerr.text);
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				     jerr.text);
	}
	if (!json_is_object((json_t *)ri->json))
		err = pl_errmsg_set(e, PL_ERR_PARSE, "%s: expected a JSON object", path);
	else
		err = info_fields(ri, path, e);
	if (err != PL_OK) {
		run_info_free(ri);
		return err;
	}
	*out = ri;
	return PL_OK;
}

void run_info_free(run_info *ri)
{
	if (ri == NULL)
		return;
	char *strings[] = { ri->tool_version, ri->profile_name, ri->profile_hash, ri->run_id,
			    ri->target, ri->start_wall, ri->end_wall, ri->status, ri->reason };
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		free(strings[i]);
	for (size_t i = 0; i < ri->nexpectations; i++)
		free(ri->expectations[i]);
	free(ri->expectations);
	json_decref(ri->json);
	free(ri);
}

pl_err run_json_write(const void *json, const char *path, pl_errmsg *e)
{
	if (json_dump_file(json, path, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)) != 0)
		return pl_errmsg_set(e, PL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	return PL_OK;
}

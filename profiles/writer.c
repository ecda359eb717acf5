/*
 * The resolved-profile writer and the profile hash. Both walk the same key
 * tables as the loader, so every key is written with its value, and the
 * output loads back into the same profile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "profiles/internal.h"

typedef struct writer {
	FILE *out;
	const profile *p;
	int for_hash;  /* leave out what does not change the experiment (paths, description) */
} writer;

void profile_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;

	out[0] = '\0';
	if (!EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL))
		return;
	for (unsigned int i = 0; i < digest_len && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* Writes s as a double-quoted YAML scalar. */
static void put_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static void put_string(writer *w, const field *f, const void *slot)
{
	const char *value = *(char *const *)slot;
	const char *template_text = profile_secret_template(w->p, slot);

	if (template_text != NULL)
		value = template_text;
	else if (value == NULL)
		value = "";
	else if (f->type == FIELD_PATH && w->for_hash)
		value = basename_of(value);
	put_quoted(w->out, value);
}

void profile_propagation_text(const profile_propagation *prop, char *buf, size_t len)
{
	char low[32];
	char high[32];

	schema_format_duration(prop->min_ns, low, sizeof(low));
	schema_format_duration(prop->max_ns, high, sizeof(high));
	if (prop->kind == PROFILE_PROPAGATION_IMMEDIATE)
		snprintf(buf, len, "immediate");
	else if (prop->kind == PROFILE_PROPAGATION_TTL)
		snprintf(buf, len, "ttl:%s", low);
	else
		snprintf(buf, len, "uniform:%s-%s", low, high);
}

static void put_propagation(FILE *out, const profile_propagation *p)
{
	char text[80];

	profile_propagation_text(p, text, sizeof(text));
	put_quoted(out, text);
}

static void put_value(writer *w, const field *f, const void *slot)
{
	char text[64];

	switch (f->type) {
	case FIELD_STRING:
	case FIELD_NAME:
	case FIELD_SECRET:
	case FIELD_PATH:
		put_string(w, f, slot);
		return;
	case FIELD_BOOL:
		fputs(*(const int *)slot ? "true" : "false", w->out);
		return;
	case FIELD_INT:
		fprintf(w->out, "%lld", (long long)*(const int64_t *)slot);
		return;
	case FIELD_INT32:
		fprintf(w->out, "%d", *(const int *)slot);
		return;
	case FIELD_SEED:
		fprintf(w->out, "%llu", (unsigned long long)*(const uint64_t *)slot);
		return;
	case FIELD_DURATION:
		schema_format_duration(*(const int64_t *)slot, text, sizeof(text));
		break;
	case FIELD_RATE:
		schema_format_rate(*(const double *)slot, text, sizeof(text));
		break;
	case FIELD_ENUM:
		fputs(schema_enum_name(f, *(const int *)slot), w->out);
		return;
	case FIELD_PROPAGATION:
		put_propagation(w->out, slot);
		return;
	case FIELD_SECTION:
	case FIELD_CUSTOM:
		return;
	}
	fputs(text, w->out);
}

static int group_key_applies(const profile_group *g, const char *key)
{
	int reconnect = g->strategy == PROFILE_STRATEGY_RECONNECT_PER_ATTEMPT;

	if (strncmp(key, "attempt_", 8) == 0 || strcmp(key, "client_id_scheme") == 0)
		return reconnect;
	if (strncmp(key, "backoff_", 8) == 0)
		return !reconnect;
	return 1;
}

static void put_custom(writer *w, const char *key, const void *base, int indent);

/* Writes the keys of s (at base) indented by indent spaces; first_prefix replaces the first indent. */
static void put_section(writer *w, const section *s, const void *base, int indent,
			const char *first_prefix)
{
	for (size_t i = 0; i < s->count; i++) {
		const field *f = &s->fields[i];
		const char *slot = (const char *)base + f->offset;

		if (w->for_hash && s == &schema_root && strcmp(f->key, "description") == 0)
			continue;
		if (s == &schema_group && !group_key_applies(base, f->key))
			continue;
		if (i == 0 && first_prefix != NULL)
			fputs(first_prefix, w->out);
		else
			fprintf(w->out, "%*s", indent, "");
		if (f->type == FIELD_CUSTOM) {
			put_custom(w, f->key, base, indent);
			continue;
		}
		fprintf(w->out, "%s:", f->key);
		if (f->type == FIELD_SECTION) {
			fputc('\n', w->out);
			put_section(w, f->section, slot, indent + 2, NULL);
			continue;
		}
		fputc(' ', w->out);
		put_value(w, f, slot);
		fputc('\n', w->out);
	}
}

static void put_policies(writer *w, const char *key, const profile_policy *policies,
			 size_t count, int indent)
{
	fprintf(w->out, "%s:%s\n", key, count ? "" : " []");
	for (size_t i = 0; i < count; i++) {
		fprintf(w->out, "%*s- name: ", indent + 2, "");
		put_quoted(w->out, policies[i].name);
		if (!w->for_hash) {
			fprintf(w->out, "\n%*sfile: ", indent + 4, "");
			put_quoted(w->out, policies[i].path ? policies[i].path : "");
		}
		if (policies[i].document != NULL) {
			fprintf(w->out, "\n%*ssha256: ", indent + 4, "");
			put_quoted(w->out, policies[i].sha256);
		}
		fputc('\n', w->out);
	}
}

static void put_groups(writer *w, int indent)
{
	const profile *p = w->p;
	char prefix[16];

	fputs("groups:\n", w->out);
	snprintf(prefix, sizeof(prefix), "%*s- ", indent + 2, "");
	for (size_t i = 0; i < p->group_count; i++)
		put_section(w, &schema_group, &p->groups[i], indent + 4, prefix);
}

static void put_expectations(writer *w, int indent)
{
	const profile *p = w->p;

	fprintf(w->out, "expect:%s\n", p->expect_count ? "" : " []");
	for (size_t i = 0; i < p->expect_count; i++) {
		fprintf(w->out, "%*s- ", indent + 2, "");
		put_quoted(w->out, p->expect[i].text ? p->expect[i].text : "");
		fputc('\n', w->out);
	}
}

/* Writes a CUSTOM key of the section at base; the indent is already written. */
static void put_custom(writer *w, const char *key, const void *base, int indent)
{
	const profile *p = w->p;

	if (strcmp(key, "groups") == 0)
		put_groups(w, indent);
	else if (strcmp(key, "share") == 0)
		fprintf(w->out, "share: %lld\n", (long long)((const profile_group *)base)->devices);
	else if (strcmp(key, "before") == 0)
		put_policies(w, key, p->before, p->before_count, indent);
	else if (strcmp(key, "after") == 0)
		put_policies(w, key, p->after, p->after_count, indent);
	else if (strcmp(key, "expect") == 0)
		put_expectations(w, indent);
}

static pl_err format(const profile *p, int for_hash, char **out, size_t *len, pl_errmsg *e)
{
	writer w = { NULL, p, for_hash };

	*out = NULL;
	*len = 0;
	w.out = open_memstream(out, len);
	if (w.out == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "writing the resolved profile: out of memory");
	if (!for_hash)
		fputs("# Resolved profile written by policylag: every key with its value, defaults\n"
		      "# included and secrets left as ${env:NAME}.\n",
		      w.out);
	put_section(&w, &schema_root, p, 0, NULL);
	if (fclose(w.out) != 0 || *out == NULL) {
		free(*out);
		*out = NULL;
		return pl_errmsg_set(e, PL_ERR_NOMEM, "writing the resolved profile: out of memory");
	}
	return PL_OK;
}

pl_err profile_format(const profile *p, char **out, size_t *len, pl_errmsg *e)
{
	return format(p, 0, out, len, e);
}

void profile_hash(const profile *p, char out[65])
{
	char *text = NULL;
	size_t len = 0;

	out[0] = '\0';
	if (format(p, 1, &text, &len, NULL) != PL_OK)
		return;
	profile_sha256_hex(text, len, out);
	free(text);
}

static pl_err write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return PL_ERR_IO;
		data += n;
		len -= (size_t)n;
	}
	return PL_OK;
}

pl_err profile_write_file(const profile *p, const char *path, pl_errmsg *e)
{
	char tmp[4096];
	char *text = NULL;
	size_t len = 0;
	int fd;
	pl_err rc = profile_format(p, &text, &len, e);

	if (rc != PL_OK)
		return rc;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		rc = pl_errmsg_set(e, PL_ERR_RANGE, "cannot write '%s': path too long", path);
		goto free_text;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = pl_errmsg_set(e, PL_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
		goto free_text;
	}
	rc = write_all(fd, text, len);
	if (rc == PL_OK && fsync(fd) != 0)
		rc = PL_ERR_IO;
	if (close(fd) != 0 && rc == PL_OK)
		rc = PL_ERR_IO;
	if (rc == PL_OK && rename(tmp, path) != 0)
		rc = PL_ERR_IO;
	if (rc != PL_OK) {
		pl_errmsg_set(e, rc, "cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
	}
free_text:
	free(text);
	return rc;
}

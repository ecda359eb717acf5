#include "harness/credentials.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN (CREDENTIALS_TOKEN_MAX + 256)

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

/* Nonzero when the "[...]" header in line names profile. */
static int section_matches(char *line, const char *profile, int config_style)
{
	char *close = strchr(line, ']');
	char *name;

	if (close == NULL)
		return -1;
	*close = '\0';
	name = trim(line + 1);
	if (config_style && strcmp(profile, "default") != 0) {
		if (strncmp(name, "profile", 7) != 0 || (name[7] != ' ' && name[7] != '\t'))
			return 0;
		name = trim(name + 7);
	}
	return strcmp(name, profile) == 0;
}

static pl_err store_value(aws_credentials *out, const char *key, const char *value,
			  const char *path, int line_no, pl_errmsg *e)
{
	struct {
		const char *key;
		char *field;
		size_t size;
	} fields[] = {
		{ "aws_access_key_id", out->access_key_id, sizeof(out->access_key_id) },
		{ "aws_secret_access_key", out->secret_access_key, sizeof(out->secret_access_key) },
		{ "aws_session_token", out->session_token, sizeof(out->session_token) },
		{ "region", out->region, sizeof(out->region) },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(key, fields[i].key) != 0)
			continue;
		if (strlen(value) >= fields[i].size)
			return pl_errmsg_set(e, PL_ERR_RANGE, "%s:%d: value of %s is longer than %zu bytes",
					     path, line_no, key, fields[i].size - 1);
		memcpy(fields[i].field, value, strlen(value) + 1);
	}
	return PL_OK;
}

/* Parses "key = value" inside the selected section. */
static pl_err parse_assignment(aws_credentials *out, char *line, const char *path, int line_no,
			       pl_errmsg *e)
{
	char *eq = strchr(line, '=');

	if (eq == NULL)
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%d: expected \"key = value\"", path,
				     line_no);
	*eq = '\0';
	return store_value(out, trim(line), trim(eq + 1), path, line_no, e);
}

static pl_err read_lines(FILE *f, aws_credentials *out, const char *path, const char *profile,
			 int config_style, int *found, pl_errmsg *e)
{
	char buf[LINE_MAX_LEN];
	int line_no = 0, in_section = 0;
	pl_err err = PL_OK;

	while (err == PL_OK && fgets(buf, sizeof(buf), f) != NULL) {
		char *line = trim(buf);

		line_no++;
		if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
			continue;
		if (line[0] == '[') {
			in_section = section_matches(line, profile, config_style);
			if (in_section < 0)
				err = pl_errmsg_set(e, PL_ERR_PARSE, "%s:%d: section header without ']'",
						    path, line_no);
			*found |= in_section > 0;
			continue;
		}
		if (in_section > 0)
			err = parse_assignment(out, line, path, line_no, e);
	}
	explicit_bzero(buf, sizeof(buf));
	return err;
}

pl_err credentials_read_file(aws_credentials *out, const char *path, const char *profile,
			     int config_style, pl_errmsg *e)
{
	FILE *f = fopen(path, "r");
	int found = 0;
	pl_err err;

	if (f == NULL) {
		if (errno == ENOENT)
			return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "%s: no such file", path);
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	}
	err = read_lines(f, out, path, profile, config_style, &found, e);
	fclose(f);
	if (err == PL_OK && !found)
		err = pl_errmsg_set(e, PL_ERR_NOT_FOUND, "%s: no profile [%s]", path, profile);
	return err;
}

static pl_err copy_env(char *field, size_t size, const char *name, pl_errmsg *e)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		return PL_OK;
	if (strlen(v) >= size)
		return pl_errmsg_set(e, PL_ERR_RANGE, "%s is longer than %zu bytes", name, size - 1);
	memcpy(field, v, strlen(v) + 1);
	return PL_OK;
}

static pl_err keys_from_env(aws_credentials *out, pl_errmsg *e)
{
	pl_err err = copy_env(out->access_key_id, sizeof(out->access_key_id), "AWS_ACCESS_KEY_ID", e);

	if (err == PL_OK)
		err = copy_env(out->secret_access_key, sizeof(out->secret_access_key),
			       "AWS_SECRET_ACCESS_KEY", e);
	if (err == PL_OK)
		err = copy_env(out->session_token, sizeof(out->session_token), "AWS_SESSION_TOKEN", e);
	if (err == PL_OK && out->access_key_id[0] != '\0' && out->secret_access_key[0] != '\0')
		snprintf(out->source, sizeof(out->source), "environment");
	else {
		out->access_key_id[0] = '\0';
		out->secret_access_key[0] = '\0';
		out->session_token[0] = '\0';
	}
	return err;
}

/* Path of a file from env_name, else ~/.aws/<leaf>. */
static pl_err file_path(const char *env_name, const char *leaf, char *buf, size_t len,
			pl_errmsg *e)
{
	const char *v = getenv(env_name);
	const char *home = getenv("HOME");
	int n;

	if (v != NULL && v[0] != '\0')
		n = snprintf(buf, len, "%s", v);
	else if (home != NULL && home[0] != '\0')
		n = snprintf(buf, len, "%s/.aws/%s", home, leaf);
	else
		n = snprintf(buf, len, "/nonexistent/.aws/%s", leaf);
	if (n < 0 || (size_t)n >= len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "path of the AWS %s file is too long", leaf);
	return PL_OK;
}

/* Reads one profile from one file into a scratch copy and merges what it set. */
static pl_err merge_file(aws_credentials *out, const char *path, const char *profile,
			 int config_style, pl_errmsg *e)
{
	aws_credentials *tmp = calloc(1, sizeof(*tmp));
	pl_err err;

	if (tmp == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "out of memory");
	err = credentials_read_file(tmp, path, profile, config_style, e);
	if (err == PL_OK && out->access_key_id[0] == '\0' && tmp->access_key_id[0] != '\0' &&
	    tmp->secret_access_key[0] != '\0') {
		memcpy(out->access_key_id, tmp->access_key_id, sizeof(out->access_key_id));
		memcpy(out->secret_access_key, tmp->secret_access_key,
		       sizeof(out->secret_access_key));
		memcpy(out->session_token, tmp->session_token, sizeof(out->session_token));
		snprintf(out->source, sizeof(out->source), "%s [%s]", path, profile);
	}
	if (err == PL_OK && out->region[0] == '\0')
		memcpy(out->region, tmp->region, sizeof(out->region));
	credentials_clear(tmp);
	free(tmp);
	return err == PL_ERR_NOT_FOUND ? PL_OK : err;
}

static pl_err region_from_env(aws_credentials *out, pl_errmsg *e)
{
	pl_err err = copy_env(out->region, sizeof(out->region), "AWS_DEFAULT_REGION", e);

	/* AWS_REGION wins over AWS_DEFAULT_REGION, as in the SDKs. */
	if (err == PL_OK)
		err = copy_env(out->region, sizeof(out->region), "AWS_REGION", e);
	return err;
}

pl_err credentials_resolve(aws_credentials *out, const char *profile, pl_errmsg *e)
{
	char path[1024];
	const char *env_profile = getenv("AWS_PROFILE");
	int named = profile != NULL && profile[0] != '\0';
	pl_err err = PL_OK;

	memset(out, 0, sizeof(*out));
	if (!named)
		profile = env_profile != NULL && env_profile[0] != '\0' ? env_profile : "default";
	/* As in the AWS CLI: the environment's keys win over AWS_PROFILE, but not over
	 * a profile named on the command line or in the profile file. */
	if (!named)
		err = keys_from_env(out, e);
	if (err == PL_OK)
		err = region_from_env(out, e);
	if (err == PL_OK)
		err = file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", path, sizeof(path), e);
	if (err == PL_OK)
		err = merge_file(out, path, profile, 0, e);
	if (err == PL_OK)
		err = file_path("AWS_CONFIG_FILE", "config", path, sizeof(path), e);
	if (err == PL_OK)
		err = merge_file(out, path, profile, 1, e);
	if (err == PL_OK && out->access_key_id[0] == '\0')
		err = pl_errmsg_set(e, PL_ERR_NOT_FOUND,
				    "no AWS credentials: set AWS_ACCESS_KEY_ID and "
				    "AWS_SECRET_ACCESS_KEY, or add profile [%s] to the shared "
				    "credentials file",
				    profile);
	if (err != PL_OK)
		credentials_clear(out);
	return err;
}

void credentials_clear(aws_credentials *c)
{
	if (c == NULL)
		return;
	explicit_bzero(c->secret_access_key, sizeof(c->secret_access_key));
	explicit_bzero(c->session_token, sizeof(c->session_token));
	explicit_bzero(c->access_key_id, sizeof(c->access_key_id));
}

void credentials_mask(const char *secret, char *buf, size_t len)
{
	size_t n = secret ? strlen(secret) : 0;

	if (n < 12)
		snprintf(buf, len, "****");
	else
		snprintf(buf, len, "%.4s****%s", secret, secret + n - 4);
}

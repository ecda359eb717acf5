/*
 * AWS credentials, resolved the way the AWS CLI and SDKs do it:
 *
 *   1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN
 *      when set) from the environment, unless the caller names a profile;
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials), profile from the caller, else AWS_PROFILE, else
 *      "default";
 *   3. the config file (AWS_CONFIG_FILE, default ~/.aws/config), section
 *      "[profile NAME]" or "[default]", for keys and for the region.
 *
 * Secrets never appear in messages or logs: credentials_mask() gives the form
 * that may be shown ("AKIA****MPLE").
 */
#ifndef PL_CREDENTIALS_H
#define PL_CREDENTIALS_H

#include <stddef.h>

#include "common/error.h"

#define CREDENTIALS_KEY_MAX 128    /* access key ids are 16-128 characters */
#define CREDENTIALS_TOKEN_MAX 4096 /* STS session tokens run to about 2 KiB */
#define CREDENTIALS_REGION_MAX 64
#define CREDENTIALS_PROFILE_MAX 128

typedef struct aws_credentials {
	char access_key_id[CREDENTIALS_KEY_MAX + 1];
	char secret_access_key[CREDENTIALS_KEY_MAX + 1];
	char session_token[CREDENTIALS_TOKEN_MAX + 1]; /* "" when none */
	char region[CREDENTIALS_REGION_MAX + 1];       /* "" when none was found */
	char source[160]; /* where the keys came from, e.g. "environment", "/x/credentials [p]" */
} aws_credentials;

/*
 * Resolves credentials and region as described above. profile may be NULL,
 * which means AWS_PROFILE, then "default". A profile given here makes the
 * files win over the environment keys, as "--profile" does in the AWS CLI. The
 * region comes from AWS_REGION, then AWS_DEFAULT_REGION, then the profile's
 * "region" setting. Returns PL_ERR_NOT_FOUND when no keys exist,
 * PL_ERR_PARSE for a malformed file (message "file:line: ..."), PL_ERR_RANGE
 * for a value too long for the buffers.
 */
pl_err credentials_resolve(aws_credentials *out, const char *profile, pl_errmsg *e);

/*
 * Reads one profile from one shared-credentials-format file (INI with
 * "[name]" sections, or "[profile name]" when config_style is nonzero).
 * Fills only the fields the section sets; returns PL_ERR_NOT_FOUND when the
 * file or the section does not exist.
 */
pl_err credentials_read_file(aws_credentials *out, const char *path, const char *profile,
			     int config_style, pl_errmsg *e);

/* Zeroes the secret fields (with explicit_bzero, so the compiler keeps it). */
void credentials_clear(aws_credentials *c);

/*
 * Writes a form of secret that may be logged: the first 4 and last 4
 * characters with "****" between them, or only "****" for short values.
 */
void credentials_mask(const char *secret, char *buf, size_t len);

#endif

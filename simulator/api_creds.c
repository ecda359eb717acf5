/*
 * The simulator's access key: generated once, kept in an AWS
 * shared-credentials file (profile [policylag-sim], mode 0600) so that the
 * harness, the AWS CLI and boto3 can sign requests with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simulator/api_creds.h"

#define PROFILE "[policylag-sim]"

/* Fills out[0..len) with random characters from alphabet. */
static pl_err random_text(char *out, size_t len, const char *alphabet, pl_errmsg *e)
{
	unsigned char bytes[64];
	size_t n = strlen(alphabet);

	if (len > sizeof(bytes) || RAND_bytes(bytes, (int)len) != 1)
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "credentials: random generator failed");
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[bytes[i] % n];
	out[len] = '\0';
	return PL_OK;
}

/* Reads "name = value" from the profile section of text into dst. */
static int find_value(const char *text, const char *name, char *dst, size_t len)
{
	const char *section = strstr(text, PROFILE);
	const char *p;

	if (section == NULL)
		return 0;
	for (p = section; (p = strstr(p, name)) != NULL; p += strlen(name)) {
		const char *v = p + strlen(name);
		size_t n;
		if (p[-1] != '\n')
			continue;
		v += strspn(v, " \t");
		if (*v != '=')
			continue;
		v++;
		v += strspn(v, " \t");
		n = strcspn(v, " \t\r\n");
		if (n == 0 || n >= len)
			return 0;
		memcpy(dst, v, n);
		dst[n] = '\0';
		return 1;
	}
	return 0;
}

static pl_err read_existing(const char *path, sim_api_creds *out, pl_errmsg *e)
{
	char text[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return errno == ENOENT ? PL_ERR_NOT_FOUND
				       : pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	if (!find_value(text, "aws_access_key_id", out->access_key_id,
			sizeof(out->access_key_id)) ||
	    !find_value(text, "aws_secret_access_key", out->secret, sizeof(out->secret)))
		return pl_errmsg_set(e, PL_ERR_PARSE,
				     "%s: no %s profile with aws_access_key_id and "
				     "aws_secret_access_key; delete the file to generate new keys",
				     path, PROFILE);
	return PL_OK;
}

static pl_err write_new(const char *path, const sim_api_creds *c, pl_errmsg *e)
{
	char tmp[4096];
	int fd, written;
	char text[512];
	pl_err err = PL_OK;

	written = snprintf(text, sizeof(text),
			   PROFILE "\naws_access_key_id = %s\naws_secret_access_key = %s\n",
			   c->access_key_id, c->secret);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return pl_errmsg_set(e, PL_ERR_IO, "%s: %s", tmp, strerror(errno));
	if (write(fd, text, (size_t)written) != written || fsync(fd) != 0)
		err = pl_errmsg_set(e, PL_ERR_IO, "%s: %s", tmp, strerror(errno));
	close(fd);
	if (err == PL_OK && rename(tmp, path) != 0)
		err = pl_errmsg_set(e, PL_ERR_IO, "%s: %s", path, strerror(errno));
	if (err != PL_OK)
		unlink(tmp);
	return err;
}

pl_err sim_api_creds_load(const char *path, sim_api_creds *out, pl_errmsg *e)
{
	pl_err err = read_existing(path, out, e);

	if (err != PL_ERR_NOT_FOUND)
		return err;
	/* The AKIA prefix and lengths make SDKs that check key shape accept them. */
	memcpy(out->access_key_id, "AKIA", 4);
	err = random_text(out->access_key_id + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", e);
	if (err == PL_OK)
		err = random_text(out->secret, 40,
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
				  e);
	if (err == PL_OK)
		err = write_new(path, out, e);
	return err;
}

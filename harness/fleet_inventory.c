/*
 * The fleet inventory: inventory.json, rewritten atomically, and
 * inventory.journal, the lines appended since the last rewrite.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/clock.h"
#include "harness/fleet_internal.h"
#include "simulator/certs.h"

#define DEVICES_MAX INT64_C(1000000)

static const char *provisioning_name(fleet_provisioning p)
{
	return p == FLEET_PROVISION_KEYS_AND_CERTIFICATE ? "create-keys-and-certificate" : "csr";
}

pl_err fleet_path(char *buf, size_t len, const char *dir, const char *leaf, pl_errmsg *e)
{
	int n = snprintf(buf, len, "%s/%s", dir, leaf);

	if (n < 0 || (size_t)n >= len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "fleet: path %s/%s is longer than %zu bytes", dir,
				     leaf, len - 1);
	return PL_OK;
}

pl_err fleet_client_id(const char *prefix, int64_t index, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%06lld", prefix, (long long)index);

	return n < 0 || (size_t)n >= len ? PL_ERR_RANGE : PL_OK;
}

/* ---- in memory ---- */

pl_err fleet_inventory_new(fleet_inventory **out, const fleet_settings *s, pl_errmsg *e)
{
	fleet_inventory *inv = calloc(1, sizeof(*inv));

	*out = NULL;
	if (inv == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
	if (strlen(s->target_id) >= sizeof(inv->target) ||
	    strlen(s->client_id_prefix) + 20 >= sizeof(inv->prefix)) {
		free(inv);
		return pl_errmsg_set(e, PL_ERR_RANGE, "fleet: target id or client id prefix too long");
	}
	snprintf(inv->target, sizeof(inv->target), "%s", s->target_id);
	snprintf(inv->prefix, sizeof(inv->prefix), "%s", s->client_id_prefix);
	inv->shared = s->shared_certificate;
	inv->provisioning = s->provisioning;
	inv->created_ns = pl_wall_ns();
	*out = inv;
	return PL_OK;
}

void fleet_inventory_free(fleet_inventory *inv)
{
	if (inv == NULL)
		return;
	free(inv->devices);
	free(inv);
}

pl_err fleet_inventory_append(fleet_inventory *inv, const fleet_device *d)
{
	if (inv->count == inv->capacity) {
		size_t cap = inv->capacity ? inv->capacity * 2 : 64;
		fleet_device *p = realloc(inv->devices, cap * sizeof(*p));

		if (p == NULL)
			return PL_ERR_NOMEM;
		inv->devices = p;
		inv->capacity = cap;
	}
	inv->devices[inv->count++] = *d;
	return PL_OK;
}

pl_err fleet_inventory_put(fleet_inventory *inv, const fleet_device *d)
{
	/* A linear search: only journal replay uses this, over the lines of about one
	 * save interval. */
	for (size_t i = 0; i < inv->count; i++) {
		if (inv->devices[i].index == d->index) {
			inv->devices[i] = *d;
			return PL_OK;
		}
	}
	return fleet_inventory_append(inv, d);
}

size_t fleet_inventory_drop_certificate(fleet_inventory *inv, const char *certificate_id)
{
	size_t kept = 0, dropped;

	for (size_t i = 0; i < inv->count; i++)
		if (strcmp(inv->devices[i].certificate_id, certificate_id) != 0)
			inv->devices[kept++] = inv->devices[i];
	dropped = inv->count - kept;
	inv->count = kept;
	return dropped;
}

static int by_index(const void *a, const void *b)
{
	const fleet_device *x = a, *y = b;

	return (x->index > y->index) - (x->index < y->index);
}

/* qsort must not see the NULL array of an empty inventory. */
static void sort_devices(fleet_inventory *inv)
{
	if (inv->count > 1)
		qsort(inv->devices, inv->count, sizeof(*inv->devices), by_index);
}

size_t fleet_inventory_count(const fleet_inventory *inv)
{
	return inv->count;
}

const fleet_device *fleet_inventory_device(const fleet_inventory *inv, size_t i)
{
	return i < inv->count ? &inv->devices[i] : NULL;
}

const char *fleet_inventory_target(const fleet_inventory *inv)
{
	return inv->target;
}

const char *fleet_inventory_prefix(const fleet_inventory *inv)
{
	return inv->prefix;
}

int fleet_inventory_shared(const fleet_inventory *inv)
{
	return inv->shared;
}

fleet_provisioning fleet_inventory_provisioning(const fleet_inventory *inv)
{
	return inv->provisioning;
}

int64_t fleet_inventory_created_ns(const fleet_inventory *inv)
{
	return inv->created_ns;
}

/* ---- JSON ---- */

static json_t *device_to_json(const fleet_device *d)
{
	char when[32];

	pl_wall_format(d->created_ns, when, sizeof(when));
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "index", (json_int_t)d->index,
			 "client_id", d->client_id, "certificate_id", d->certificate_id,
			 "certificate_arn", d->certificate_arn, "key", d->key_path, "cert",
			 d->cert_path, "created", when, "created_ns", (json_int_t)d->created_ns);
}

static pl_err copy_member(json_t *obj, const char *key, char *buf, size_t len)
{
	const char *v = json_string_value(json_object_get(obj, key));

	if (v == NULL || strlen(v) >= len)
		return PL_ERR_PARSE;
	memcpy(buf, v, strlen(v) + 1);
	return PL_OK;
}

static pl_err device_from_json(json_t *obj, fleet_device *d)
{
	json_t *index = json_object_get(obj, "index");
	pl_err err = PL_OK;

	memset(d, 0, sizeof(*d));
	if (!json_is_integer(index) || json_integer_value(index) < 0 ||
	    json_integer_value(index) >= DEVICES_MAX)
		return PL_ERR_PARSE;
	d->index = json_integer_value(index);
	d->created_ns = json_integer_value(json_object_get(obj, "created_ns"));
	err = copy_member(obj, "client_id", d->client_id, sizeof(d->client_id));
	if (err == PL_OK)
		err = copy_member(obj, "certificate_id", d->certificate_id, sizeof(d->certificate_id));
	if (err == PL_OK)
		err = copy_member(obj, "certificate_arn", d->certificate_arn,
				  sizeof(d->certificate_arn));
	if (err == PL_OK)
		err = copy_member(obj, "key", d->key_path, sizeof(d->key_path));
	if (err == PL_OK)
		err = copy_member(obj, "cert", d->cert_path, sizeof(d->cert_path));
	return err;
}

static json_t *inventory_to_json(fleet_inventory *inv)
{
	json_t *devices = json_array();
	json_t *root;
	char when[32];

	if (devices == NULL)
		return NULL;
	sort_devices(inv);
	for (size_t i = 0; i < inv->count; i++) {
		if (json_array_append_new(devices, device_to_json(&inv->devices[i])) != 0) {
			json_decref(devices);
			return NULL;
		}
	}
	pl_wall_format(inv->created_ns, when, sizeof(when));
	root = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "format", FLEET_FORMAT,
			 "target", inv->target, "client_id_prefix", inv->prefix, "provisioning",
			 provisioning_name(inv->provisioning), "certificates",
			 inv->shared ? "shared" : "per-device", "created", when, "created_ns",
			 (json_int_t)inv->created_ns, "devices", devices);
	return root;
}

static pl_err header_from_json(fleet_inventory *inv, json_t *root)
{
	const char *prov = json_string_value(json_object_get(root, "provisioning"));
	const char *certs = json_string_value(json_object_get(root, "certificates"));

	if (json_integer_value(json_object_get(root, "format")) != FLEET_FORMAT || prov == NULL ||
	    certs == NULL)
		return PL_ERR_PARSE;
	if (copy_member(root, "target", inv->target, sizeof(inv->target)) != PL_OK ||
	    copy_member(root, "client_id_prefix", inv->prefix, sizeof(inv->prefix)) != PL_OK)
		return PL_ERR_PARSE;
	inv->provisioning = strcmp(prov, "csr") == 0 ? FLEET_PROVISION_CSR
						     : FLEET_PROVISION_KEYS_AND_CERTIFICATE;
	inv->shared = strcmp(certs, "shared") == 0;
	inv->created_ns = json_integer_value(json_object_get(root, "created_ns"));
	return PL_OK;
}

static pl_err inventory_from_json(fleet_inventory *inv, json_t *root)
{
	json_t *devices = json_object_get(root, "devices");
	json_t *item;
	size_t i;

	if (header_from_json(inv, root) != PL_OK || !json_is_array(devices))
		return PL_ERR_PARSE;
	json_array_foreach(devices, i, item) {
		fleet_device d;

		if (device_from_json(item, &d) != PL_OK)
			return PL_ERR_PARSE;
		if (fleet_inventory_append(inv, &d) != PL_OK)
			return PL_ERR_NOMEM;
	}
	return PL_OK;
}

/* ---- files ---- */

pl_err fleet_inventory_save(fleet_inventory *inv, const char *dir, pl_errmsg *e)
{
	char path[FLEET_PATH_MAX], journal[FLEET_PATH_MAX];
	json_t *root = inventory_to_json(inv);
	char *text = root ? json_dumps(root, JSON_INDENT(1)) : NULL;
	pl_err err;

	json_decref(root);
	if (text == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory writing the inventory");
	err = fleet_path(path, sizeof(path), dir, FLEET_INVENTORY_FILE, e);
	if (err == PL_OK)
		err = fleet_path(journal, sizeof(journal), dir, FLEET_JOURNAL_FILE, e);
	if (err == PL_OK)
		err = sim_certs_write_file(path, text, 0644, e);
	free(text);
	/* Everything journaled is in the new file now; a crash before this truncate only
	 * replays lines that are already there. */
	if (err == PL_OK && truncate(journal, 0) != 0 && errno != ENOENT)
		err = pl_errmsg_set(e, PL_ERR_IO, "fleet: cannot empty %s: %s", journal,
				    strerror(errno));
	return err;
}

pl_err fleet_journal_open(const char *dir, int *fd, pl_errmsg *e)
{
	char path[FLEET_PATH_MAX];
	pl_err err = fleet_path(path, sizeof(path), dir, FLEET_JOURNAL_FILE, e);

	if (err != PL_OK)
		return err;
	*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (*fd < 0)
		return pl_errmsg_set(e, PL_ERR_IO, "fleet: cannot open %s: %s", path, strerror(errno));
	return PL_OK;
}

static pl_err journal_append(int fd, json_t *line, pl_errmsg *e)
{
	char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	size_t len;
	ssize_t n;

	json_decref(line);
	if (text == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory writing the journal");
	len = strlen(text);
	text[len] = '\n'; /* replaces the NUL; the line is written with its length */
	n = write(fd, text, len + 1);
	free(text);
	if (n != (ssize_t)(len + 1) || fdatasync(fd) != 0)
		return pl_errmsg_set(e, PL_ERR_IO, "fleet: cannot write the journal: %s",
				     strerror(errno));
	return PL_OK;
}

pl_err fleet_journal_device(int fd, const fleet_device *d, pl_errmsg *e)
{
	return journal_append(fd, json_pack("{s:o}", "device", device_to_json(d)), e);
}

pl_err fleet_journal_deleted(int fd, const char *certificate_id, pl_errmsg *e)
{
	return journal_append(fd, json_pack("{s:s}", "deleted", certificate_id), e);
}

/* Applies one journal line; a line that does not parse is reported to the caller. */
static pl_err replay_line(fleet_inventory *inv, const char *line, size_t len)
{
	json_t *root = json_loadb(line, len, 0, NULL);
	json_t *device = json_object_get(root, "device");
	const char *deleted = json_string_value(json_object_get(root, "deleted"));
	fleet_device d;
	pl_err err = PL_OK;

	if (device != NULL) {
		err = device_from_json(device, &d);
		if (err == PL_OK)
			err = fleet_inventory_put(inv, &d);
	} else if (deleted != NULL) {
		fleet_inventory_drop_certificate(inv, deleted);
	} else {
		err = PL_ERR_PARSE;
	}
	json_decref(root);
	return err;
}

/* Replays the journal; a last line without its newline was torn by a crash and is skipped. */
static pl_err replay_journal(fleet_inventory *inv, const char *path, pl_errmsg *e)
{
	char *text = NULL, *line;
	int line_no = 0;
	pl_err err = sim_certs_read_file(path, &text, NULL);

	if (err != PL_OK)
		return PL_OK; /* no journal: nothing happened since the last rewrite */
	line = text;
	for (char *nl; err == PL_OK && (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		line_no++;
		if (nl == line)
			continue;
		err = replay_line(inv, line, (size_t)(nl - line));
		if (err == PL_ERR_PARSE)
			err = pl_errmsg_set(e, PL_ERR_PARSE, "%s:%d: not a journal line", path,
					    line_no);
	}
	free(text);
	return err;
}

static pl_err load_json(fleet_inventory *inv, const char *path, pl_errmsg *e)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	pl_err err;

	if (root == NULL) {
		if (access(path, F_OK) != 0)
			return pl_errmsg_set(e, PL_ERR_NOT_FOUND, "fleet: no inventory at %s", path);
		return pl_errmsg_set(e, PL_ERR_PARSE, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				     jerr.text);
	}
	err = inventory_from_json(inv, root);
	json_decref(root);
	if (err == PL_ERR_PARSE)
		return pl_errmsg_set(e, err, "%s: not a policylag fleet inventory (format %d)", path,
				     FLEET_FORMAT);
	if (err != PL_OK)
		return pl_errmsg_set(e, err, "fleet: out of memory loading %s", path);
	return PL_OK;
}

pl_err fleet_inventory_load(fleet_inventory **out, const char *dir, pl_errmsg *e)
{
	char path[FLEET_PATH_MAX], journal[FLEET_PATH_MAX];
	fleet_inventory *inv = calloc(1, sizeof(*inv));
	pl_err err;

	*out = NULL;
	if (inv == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
	err = fleet_path(path, sizeof(path), dir, FLEET_INVENTORY_FILE, e);
	if (err == PL_OK)
		err = fleet_path(journal, sizeof(journal), dir, FLEET_JOURNAL_FILE, e);
	if (err == PL_OK)
		err = load_json(inv, path, e);
	if (err == PL_OK)
		err = replay_journal(inv, journal, e);
	if (err != PL_OK) {
		fleet_inventory_free(inv);
		return err;
	}
	sort_devices(inv);
	*out = inv;
	return PL_OK;
}

/*
 * Fleet provisioning: device identities (key pair and certificate) created
 * through the AWS IoT API, recorded in an inventory, reused across runs and
 * deleted again.
 *
 * A fleet directory contains:
 *   inventory.json      the devices (index, client id, certificate id and
 *                       ARN, key and certificate paths, creation time) and
 *                       the target they belong to; rewritten atomically
 *   inventory.journal   one JSON line per device created or certificate
 *                       deleted since the last rewrite, appended and
 *                       flushed to disk before the next call, so that an
 *                       interrupted create or delete loses nothing
 *   keys/               <client id>.key (EC P-256 or RSA, mode 0600) and
 *                       <client id>.pem (certificate, mode 0644)
 *
 * fleet_create creates what the inventory lacks; fleet_delete detaches every
 * policy from each certificate, sets it INACTIVE and deletes it, then
 * removes the files. Both run their calls on an awsapi pool, so they keep
 * under the context's per-operation rates and retry throttled calls.
 */
#ifndef PL_FLEET_H
#define PL_FLEET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "harness/awsapi.h"

#define FLEET_CLIENT_ID_MAX 128
#define FLEET_PATH_MAX 1024

typedef enum fleet_provisioning {
	FLEET_PROVISION_CSR = 0,             /* CreateCertificateFromCsr; EC P-256 key made here */
	FLEET_PROVISION_KEYS_AND_CERTIFICATE, /* CreateKeysAndCertificate; AWS makes an RSA key */
} fleet_provisioning;

typedef struct fleet_device {
	int64_t index;
	char client_id[FLEET_CLIENT_ID_MAX];
	char certificate_id[65];
	char certificate_arn[256];
	char key_path[FLEET_PATH_MAX];
	char cert_path[FLEET_PATH_MAX];
	int64_t created_ns; /* wall-clock time (CLOCK_REALTIME) of the certificate's creation */
} fleet_device;

/* Called after each device is recorded (create) or certificate deleted (delete). */
typedef void (*fleet_progress_fn)(void *arg, size_t done, size_t total);

typedef struct fleet_settings {
	const char *dir;              /* fleet directory, created (0700) when missing */
	const char *target_id;        /* target_info.id: the inventory must match it */
	const char *client_id_prefix; /* device i is "<prefix><i, at least 6 digits>" */
	int64_t devices;              /* 1 .. 1,000,000 */
	int shared_certificate;       /* one certificate for every device */
	fleet_provisioning provisioning;
	unsigned threads;             /* concurrent API calls (4) */
	int64_t save_interval_ns;     /* inventory.json rewrite period while working (1 s) */
	int64_t progress_interval_ns; /* progress log period (5 s); 0 disables the log lines */
	int progress_tty;             /* rewrite one progress line on stderr instead */
	volatile sig_atomic_t *stop;  /* when set to nonzero, finish the calls in flight and return */
	fleet_progress_fn progress;   /* optional, runs on a pool thread under the fleet's lock */
	void *progress_arg;
} fleet_settings;

/* Fills the defaults named above (dir, target_id, prefix and devices stay unset). */
void fleet_settings_init(fleet_settings *s);

/* What a create or delete did. */
typedef struct fleet_result {
	size_t devices;     /* devices in the inventory afterwards */
	size_t reused;      /* create: devices already in the inventory */
	size_t created;     /* create: certificates created by this call */
	size_t deleted;     /* delete: certificates deleted */
	size_t failed;      /* devices or certificates whose calls failed */
	uint64_t throttled; /* throttled responses seen, over every operation */
} fleet_result;

/*
 * Creates the devices the inventory in s->dir lacks (or all of them), and
 * writes the inventory. An inventory for another target, client id prefix,
 * provisioning or certificate sharing is PL_ERR_STATE. Returns
 * PL_ERR_INTERRUPTED when *s->stop was set (the inventory then contains every
 * device created so far), or the first call's error when some devices
 * failed (the others are kept).
 */
pl_err fleet_create(const fleet_settings *s, awsapi_ctx *api, fleet_result *out, pl_errmsg *e);

/*
 * Deletes every certificate in the inventory of s->dir (detach all policies,
 * UpdateCertificate INACTIVE, DeleteCertificate; a certificate already gone
 * counts as deleted), then its files. Certificates that failed stay in the
 * inventory for the next attempt. PL_ERR_NOT_FOUND when there is no
 * inventory; PL_ERR_STATE when it belongs to another target.
 */
pl_err fleet_delete(const fleet_settings *s, awsapi_ctx *api, fleet_result *out, pl_errmsg *e);

/*
 * Detaches every policy from d's certificate (certificate_arn), sets it
 * INACTIVE and deletes it (certificate_id); a certificate that no longer
 * exists counts as deleted.
 */
pl_err fleet_delete_certificate(awsapi_client *c, const fleet_device *d, pl_errmsg *e);

/* A loaded inventory: read-only after loading, safe to share between threads. */
typedef struct fleet_inventory fleet_inventory;

/*
 * Loads inventory.json of dir and replays inventory.journal over it.
 * PL_ERR_NOT_FOUND when neither exists; PL_ERR_PARSE for a corrupt file
 * (a torn last journal line is ignored).
 */
pl_err fleet_inventory_load(fleet_inventory **out, const char *dir, pl_errmsg *e);
void fleet_inventory_free(fleet_inventory *inv);

/* Devices sorted by index. */
size_t fleet_inventory_count(const fleet_inventory *inv);
const fleet_device *fleet_inventory_device(const fleet_inventory *inv, size_t i);
const char *fleet_inventory_target(const fleet_inventory *inv);
const char *fleet_inventory_prefix(const fleet_inventory *inv);
int fleet_inventory_shared(const fleet_inventory *inv);
fleet_provisioning fleet_inventory_provisioning(const fleet_inventory *inv);
int64_t fleet_inventory_created_ns(const fleet_inventory *inv); /* wall time of the first create */

/* "<prefix><index zero-padded to 6 digits>" into buf; PL_ERR_RANGE when it does not fit. */
pl_err fleet_client_id(const char *prefix, int64_t index, char *buf, size_t len);

#endif

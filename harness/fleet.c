/*
 * Fleet create and delete: one pool job per certificate, results recorded in
 * the inventory journal under the run's lock as they arrive.
 *
 * Lock order: run->lock, then the pool's own lock (never held across calls).
 */
#include "harness/fleet.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/fleet_internal.h"
#include "simulator/certs.h"

#define LOG_TAG "fleet"
#define DEVICES_MAX INT64_C(1000000)

/* State shared by the jobs of one create or delete. */
typedef struct fleet_run {
	const fleet_settings *s;
	fleet_inventory *inv;
	pthread_mutex_t lock;
	int journal_fd;
	char keys_dir[FLEET_PATH_MAX];
	const char *verb;     /* "created" or "deleted", for progress lines */
	size_t done;          /* certificates handled by this run */
	size_t total;         /* certificates this run has to handle */
	size_t failed;
	pl_err first_err;
	pl_errmsg first_msg;
	int64_t start_ns;
	int64_t last_save_ns;
	int64_t last_progress_ns;
	awsapi_ctx *api;
	uint64_t throttled_before;
} fleet_run;

void fleet_settings_init(fleet_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->client_id_prefix = "policylag-";
	s->threads = 4;
	s->save_interval_ns = PL_NS_PER_S;
	s->progress_interval_ns = 5 * PL_NS_PER_S;
}

/* ---- progress and bookkeeping (run->lock held) ---- */

static uint64_t throttled_total(awsapi_ctx *api)
{
	uint64_t total = 0;

	for (int op = 0; op < AWSAPI_OP__COUNT; op++) {
		awsapi_op_stats st;

		awsapi_ctx_stats(api, (awsapi_op)op, &st);
		total += st.throttled;
	}
	return total;
}

static void show_progress(fleet_run *run, int64_t now, int final)
{
	const fleet_settings *s = run->s;
	double secs = (double)(now - run->start_ns) / (double)PL_NS_PER_S;
	double rate = secs > 0 ? (double)run->done / secs : 0;
	uint64_t throttled = throttled_total(run->api) - run->throttled_before;

	if (s->progress_tty) {
		fprintf(stderr, "\rfleet: %s %zu/%zu certificates (%.1f/s, %llu throttled, %zu failed)%s",
			run->verb, run->done, run->total, rate, (unsigned long long)throttled,
			run->failed, final ? "\n" : "");
		fflush(stderr);
	} else if (s->progress_interval_ns > 0 || final) {
		PL_INFO(LOG_TAG, "%s %zu/%zu certificates (%.1f/s, %llu throttled, %zu failed)",
			run->verb, run->done, run->total, rate, (unsigned long long)throttled,
			run->failed);
	}
	run->last_progress_ns = now;
}

/* After each finished job: periodic save and progress. */
static void after_job(fleet_run *run)
{
	int64_t now = pl_mono_ns();
	int64_t progress_every = run->s->progress_tty ? PL_NS_PER_S / 4 : run->s->progress_interval_ns;
	pl_errmsg e;

	if (now - run->last_save_ns >= run->s->save_interval_ns) {
		if (fleet_inventory_save(run->inv, run->s->dir, &e) != PL_OK)
			PL_WARN(LOG_TAG, "%s (the journal keeps the devices)", e.msg);
		run->last_save_ns = now;
	}
	if (progress_every > 0 && now - run->last_progress_ns >= progress_every)
		show_progress(run, now, 0);
	if (run->s->progress != NULL)
		run->s->progress(run->s->progress_arg, run->done, run->total);
}

static void record_failure(fleet_run *run, pl_err err, const pl_errmsg *e)
{
	pthread_mutex_lock(&run->lock);
	run->failed++;
	if (run->first_err == PL_OK) {
		run->first_err = err;
		run->first_msg = *e;
	}
	pthread_mutex_unlock(&run->lock);
	PL_WARN(LOG_TAG, "%s", e->msg);
}

/* The flag is set by a signal handler or by another thread, so it is read atomically. */
static int stop_requested(const fleet_run *run)
{
	return run->s->stop != NULL && __atomic_load_n(run->s->stop, __ATOMIC_RELAXED) != 0;
}

/* ---- create ---- */

typedef struct create_job {
	fleet_run *run;
	int64_t index;      /* the device, or -1 for the shared certificate */
} create_job;

static pl_err identity_paths(const fleet_run *run, const char *name, fleet_device *d,
			     pl_errmsg *e)
{
	char leaf[FLEET_CLIENT_ID_MAX + 8];
	pl_err err;

	snprintf(leaf, sizeof(leaf), "%s.key", name);
	err = fleet_path(d->key_path, sizeof(d->key_path), run->keys_dir, leaf, e);
	snprintf(leaf, sizeof(leaf), "%s.pem", name);
	if (err == PL_OK)
		err = fleet_path(d->cert_path, sizeof(d->cert_path), run->keys_dir, leaf, e);
	return err;
}

/*
 * CSR provisioning: the key is written before the call, so a certificate
 * created by AWS always has its key on disk.
 * NOTE: a crash after AWS responds and before the journal line is written
 * leaves one ACTIVE certificate that the inventory does not list.
 */
static pl_err create_from_csr(awsapi_client *c, const fleet_device *d, awsapi_certificate *cert,
			      pl_errmsg *e)
{
	char *key = NULL, *csr = NULL;
	pl_err err = sim_certs_create_ec_csr(d->client_id, &key, &csr, e);

	if (err == PL_OK)
		err = sim_certs_write_file(d->key_path, key, 0600, e);
	if (err == PL_OK)
		err = awsapi_create_certificate_from_csr(c, csr, 1, cert, NULL, e);
	if (key != NULL)
		explicit_bzero(key, strlen(key));
	free(key);
	free(csr);
	return err;
}

/*
 * CreateKeysAndCertificate: AWS returns the private key once.
 * NOTE: a crash between the response and the key file's write leaves an
 * ACTIVE certificate in AWS that the inventory does not know.
 */
static pl_err create_keys_and_cert(awsapi_client *c, const fleet_device *d,
				   awsapi_certificate *cert, pl_errmsg *e)
{
	pl_err err = awsapi_create_keys_and_certificate(c, 1, cert, NULL, e);

	if (err == PL_OK)
		err = sim_certs_write_file(d->key_path, cert->private_key_pem, 0600, e);
	return err;
}

static pl_err create_identity(awsapi_client *c, fleet_run *run, fleet_device *d, pl_errmsg *e)
{
	awsapi_certificate cert;
	pl_err err = identity_paths(run, d->client_id, d, e);

	memset(&cert, 0, sizeof(cert));
	if (err == PL_OK && run->s->provisioning == FLEET_PROVISION_CSR)
		err = create_from_csr(c, d, &cert, e);
	else if (err == PL_OK)
		err = create_keys_and_cert(c, d, &cert, e);
	if (err == PL_OK)
		err = sim_certs_write_file(d->cert_path, cert.pem, 0644, e);
	if (err == PL_OK) {
		memcpy(d->certificate_id, cert.id, sizeof(d->certificate_id));
		memcpy(d->certificate_arn, cert.arn, sizeof(d->certificate_arn));
		d->created_ns = pl_wall_ns();
	}
	awsapi_certificate_clear(&cert);
	return err;
}

/* Journals and adds the device (or, for the shared certificate, every device). */
static pl_err record_created(fleet_run *run, fleet_device *d, pl_errmsg *e)
{
	int shared = run->s->shared_certificate;
	int64_t first = shared ? 0 : d->index;
	int64_t last = shared ? run->s->devices - 1 : d->index;
	pl_err err = PL_OK;

	pthread_mutex_lock(&run->lock);
	for (int64_t i = first; err == PL_OK && i <= last; i++) {
		d->index = i;
		if (run->s->shared_certificate)
			fleet_client_id(run->s->client_id_prefix, i, d->client_id,
					sizeof(d->client_id));
		err = fleet_journal_device(run->journal_fd, d, e);
		if (err == PL_OK && fleet_inventory_append(run->inv, d) != PL_OK)
			err = pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
	}
	run->done++;
	after_job(run);
	pthread_mutex_unlock(&run->lock);
	return err;
}

static void create_job_run(awsapi_client *c, void *arg)
{
	create_job *job = arg;
	fleet_run *run = job->run;
	fleet_device d;
	pl_errmsg e = { "" };
	pl_err err;

	if (c == NULL || stop_requested(run))
		goto done; /* cancelled or stopped before it started */
	memset(&d, 0, sizeof(d));
	d.index = job->index;
	if (job->index < 0)
		snprintf(d.client_id, sizeof(d.client_id), "%sshared", run->s->client_id_prefix);
	else
		fleet_client_id(run->s->client_id_prefix, job->index, d.client_id,
				sizeof(d.client_id));
	err = create_identity(c, run, &d, &e);
	if (err == PL_OK)
		err = record_created(run, &d, &e);
	if (err != PL_OK) {
		pl_errmsg_prefix(&e, "device %s", d.client_id);
		record_failure(run, err, &e);
	}
done:
	free(job);
}

/* ---- setting up a run ---- */

static pl_err make_dir(const char *path, pl_errmsg *e)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return pl_errmsg_set(e, PL_ERR_IO, "fleet: cannot create %s: %s", path,
				     strerror(errno));
	return PL_OK;
}

static pl_err check_settings(const fleet_settings *s, pl_errmsg *e)
{
	if (s->dir == NULL || s->dir[0] == '\0' || s->target_id == NULL ||
	    s->client_id_prefix == NULL)
		return pl_errmsg_set(e, PL_ERR_INVALID, "fleet: directory, target or prefix missing");
	if (s->devices < 1 || s->devices > DEVICES_MAX)
		return pl_errmsg_set(e, PL_ERR_INVALID, "fleet: %lld devices is outside 1..%lld",
				     (long long)s->devices, (long long)DEVICES_MAX);
	if (s->threads < 1 || s->threads > 64)
		return pl_errmsg_set(e, PL_ERR_INVALID, "fleet: %u threads is outside 1..64",
				     s->threads);
	return PL_OK;
}

/* An existing inventory must describe the same fleet on the same target. */
static pl_err check_inventory_matches(const fleet_inventory *inv, const fleet_settings *s,
				      pl_errmsg *e)
{
	if (strcmp(inv->target, s->target_id) != 0)
		return pl_errmsg_set(e, PL_ERR_STATE,
				     "fleet: the inventory in %s belongs to target %s, not %s; "
				     "delete that fleet or use another directory",
				     s->dir, inv->target, s->target_id);
	if (strcmp(inv->prefix, s->client_id_prefix) != 0 ||
	    inv->shared != (s->shared_certificate != 0) || inv->provisioning != s->provisioning)
		return pl_errmsg_set(e, PL_ERR_STATE,
				     "fleet: the inventory in %s was made with client id prefix '%s', "
				     "%s certificates and %s provisioning; delete it to change them",
				     s->dir, inv->prefix, inv->shared ? "shared" : "per-device",
				     inv->provisioning == FLEET_PROVISION_CSR
					     ? "CSR"
					     : "CreateKeysAndCertificate");
	return PL_OK;
}

/* Reused devices must still have their files. */
static pl_err check_device_files(const fleet_inventory *inv, pl_errmsg *e)
{
	for (size_t i = 0; i < inv->count; i++) {
		const fleet_device *d = &inv->devices[i];

		if (access(d->key_path, R_OK) != 0 || access(d->cert_path, R_OK) != 0)
			return pl_errmsg_set(e, PL_ERR_STATE,
					     "fleet: device %s lost its key or certificate file (%s); "
					     "delete the fleet and create it again",
					     d->client_id, d->key_path);
	}
	return PL_OK;
}

/* Loads the inventory of s->dir, or starts one and writes it before any call. */
static pl_err open_inventory(fleet_run *run, pl_errmsg *e)
{
	pl_err err = make_dir(run->s->dir, e);

	if (err == PL_OK)
		err = fleet_path(run->keys_dir, sizeof(run->keys_dir), run->s->dir, FLEET_KEYS_DIR, e);
	if (err == PL_OK)
		err = make_dir(run->keys_dir, e);
	if (err == PL_OK)
		err = fleet_inventory_load(&run->inv, run->s->dir, e);
	if (err == PL_ERR_NOT_FOUND) {
		err = fleet_inventory_new(&run->inv, run->s, e);
		if (err == PL_OK)
			err = fleet_inventory_save(run->inv, run->s->dir, e);
		return err;
	}
	if (err == PL_OK)
		err = check_inventory_matches(run->inv, run->s, e);
	if (err == PL_OK)
		err = check_device_files(run->inv, e);
	return err;
}

static pl_err run_init(fleet_run *run, const fleet_settings *s, awsapi_ctx *api,
		       const char *verb)
{
	memset(run, 0, sizeof(*run));
	run->s = s;
	run->api = api;
	run->verb = verb;
	run->journal_fd = -1;
	run->start_ns = pl_mono_ns();
	run->last_save_ns = run->start_ns;
	run->last_progress_ns = run->start_ns;
	run->throttled_before = throttled_total(api);
	pthread_mutex_init(&run->lock, NULL);
	return PL_OK;
}

static void run_release(fleet_run *run)
{
	if (run->journal_fd >= 0)
		close(run->journal_fd);
	fleet_inventory_free(run->inv);
	pthread_mutex_destroy(&run->lock);
}

/* ---- create: driving the pool ---- */

/* Marks which device indexes already exist; *missing receives the number of the rest. */
static unsigned char *present_devices(const fleet_run *run, size_t *missing)
{
	int64_t n = run->s->devices;
	unsigned char *present = calloc((size_t)n, 1);
	size_t have = 0;

	if (present == NULL)
		return NULL;
	for (size_t i = 0; i < run->inv->count; i++) {
		int64_t index = run->inv->devices[i].index;

		if (index < n && !present[index]) {
			present[index] = 1;
			have++;
		}
	}
	*missing = (size_t)n - have;
	if (run->s->shared_certificate && have > 0)
		*missing = 0; /* the shared certificate exists; every device uses it */
	return present;
}

static pl_err submit_create(awsapi_pool *pool, fleet_run *run, int64_t index, pl_errmsg *e)
{
	create_job *job = malloc(sizeof(*job));
	pl_err err;

	if (job == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
	job->run = run;
	job->index = index;
	err = awsapi_pool_submit_fn(pool, create_job_run, job, e);
	if (err != PL_OK)
		free(job);
	return err;
}

/* Queues a create job for each missing device; arg is present_devices()'s array. */
static pl_err submit_creates(awsapi_pool *pool, fleet_run *run, const void *arg, pl_errmsg *e)
{
	const unsigned char *present = arg;
	pl_err err = PL_OK;

	if (run->s->shared_certificate)
		return run->total > 0 ? submit_create(pool, run, -1, e) : PL_OK;
	for (int64_t i = 0; err == PL_OK && i < run->s->devices; i++) {
		if (present[i])
			continue;
		if (stop_requested(run))
			break;
		err = submit_create(pool, run, i, e);
	}
	return err;
}

static pl_err drive_pool(fleet_run *run, pl_err (*submit_all)(awsapi_pool *, fleet_run *,
							     const void *, pl_errmsg *),
			 const void *arg, pl_errmsg *e)
{
	awsapi_pool *pool = NULL;
	pl_err err = awsapi_pool_create(&pool, run->api, run->s->threads, 2 * run->s->threads, e);

	if (err != PL_OK)
		return err;
	err = submit_all(pool, run, arg, e);
	awsapi_pool_wait(pool);
	awsapi_pool_free(pool);
	return err;
}

/* The outcome of a finished run: the first failure, a stop, or success. */
static pl_err run_outcome(fleet_run *run, pl_err err, pl_errmsg *e)
{
	pl_errmsg save_msg;

	pthread_mutex_lock(&run->lock);
	show_progress(run, pl_mono_ns(), 1);
	if (run->inv != NULL && fleet_inventory_save(run->inv, run->s->dir, &save_msg) != PL_OK &&
	    err == PL_OK) {
		err = PL_ERR_IO;
		*e = save_msg;
	}
	if (err == PL_OK && run->first_err != PL_OK) {
		err = run->first_err;
		pl_errmsg_set(e, err, "%zu of %zu failed; first: %s", run->failed, run->total,
			      run->first_msg.msg);
	}
	if (err == PL_OK && stop_requested(run) && run->done < run->total)
		err = pl_errmsg_set(e, PL_ERR_INTERRUPTED,
				    "fleet: stopped after %zu of %zu certificates; run the "
				    "command again to continue", run->done, run->total);
	pthread_mutex_unlock(&run->lock);
	return err;
}

static void fill_result(const fleet_run *run, fleet_result *out, size_t reused)
{
	memset(out, 0, sizeof(*out));
	out->devices = run->inv ? run->inv->count : 0;
	out->reused = reused;
	out->failed = run->failed;
	out->throttled = throttled_total(run->api) - run->throttled_before;
}

/* A shared-certificate fleet that grew: the new devices use the existing certificate. */
static pl_err extend_shared(fleet_run *run, const unsigned char *present, pl_errmsg *e)
{
	fleet_device d;
	pl_err err = PL_OK;

	if (!run->s->shared_certificate || run->inv->count == 0)
		return PL_OK;
	d = run->inv->devices[0];
	for (int64_t i = 0; err == PL_OK && i < run->s->devices; i++) {
		if (present[i])
			continue;
		d.index = i;
		fleet_client_id(run->s->client_id_prefix, i, d.client_id, sizeof(d.client_id));
		err = fleet_journal_device(run->journal_fd, &d, e);
		if (err == PL_OK && fleet_inventory_append(run->inv, &d) != PL_OK)
			err = pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
	}
	return err;
}

pl_err fleet_create(const fleet_settings *s, awsapi_ctx *api, fleet_result *out, pl_errmsg *e)
{
	fleet_run run;
	unsigned char *present = NULL;
	size_t reused = 0;
	pl_err err = check_settings(s, e);

	if (err != PL_OK)
		return err;
	run_init(&run, s, api, "created");
	err = open_inventory(&run, e);
	if (err == PL_OK)
		reused = run.inv->count;
	if (err == PL_OK && (present = present_devices(&run, &run.total)) == NULL)
		err = pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
	if (err == PL_OK && s->shared_certificate)
		run.total = run.total > 0 ? 1 : 0;
	if (err == PL_OK)
		err = fleet_journal_open(s->dir, &run.journal_fd, e);
	if (err == PL_OK)
		err = extend_shared(&run, present, e);
	if (err == PL_OK) {
		PL_INFO(LOG_TAG, "%s: %zu devices in the inventory, creating %zu certificates",
			s->dir, reused, run.total);
		err = drive_pool(&run, submit_creates, present, e);
		err = run_outcome(&run, err, e);
	}
	free(present);
	if (out != NULL) {
		fill_result(&run, out, reused);
		out->created = run.done;
	}
	run_release(&run);
	return err;
}

/* ---- delete ---- */

typedef struct delete_job {
	fleet_run *run;
	fleet_device device; /* one device that uses the certificate, for its ids and files */
} delete_job;

static int gone(pl_err err)
{
	return err == PL_ERR_NOT_FOUND;
}

/* Detaches every policy from the certificate; PL_ERR_NOT_FOUND when the certificate is gone. */
static pl_err detach_all(awsapi_client *c, const fleet_device *d, pl_errmsg *e)
{
	awsapi_strlist policies = { NULL, 0 };
	pl_err err = awsapi_list_attached_policies(c, d->certificate_arn, &policies, NULL, e);

	for (size_t i = 0; err == PL_OK && i < policies.count; i++) {
		err = awsapi_detach_policy(c, policies.items[i], d->certificate_arn, NULL, e);
		if (gone(err))
			err = PL_OK; /* detached meanwhile */
	}
	awsapi_strlist_clear(&policies);
	return err;
}

/* Detach, deactivate, delete; a certificate that no longer exists counts as deleted. */
pl_err fleet_delete_certificate(awsapi_client *c, const fleet_device *d, pl_errmsg *e)
{
	pl_err err = detach_all(c, d, e);

	if (err == PL_OK)
		err = awsapi_update_certificate(c, d->certificate_id, "INACTIVE", NULL, e);
	if (err == PL_OK)
		err = awsapi_delete_certificate(c, d->certificate_id, 0, NULL, e);
	return gone(err) ? PL_OK : err;
}

static void remove_file(const char *path)
{
	if (unlink(path) != 0 && errno != ENOENT)
		PL_WARN(LOG_TAG, "cannot remove %s: %s", path, strerror(errno));
}

static pl_err record_deleted(fleet_run *run, const fleet_device *d, pl_errmsg *e)
{
	pl_err err;

	pthread_mutex_lock(&run->lock);
	err = fleet_journal_deleted(run->journal_fd, d->certificate_id, e);
	fleet_inventory_drop_certificate(run->inv, d->certificate_id);
	remove_file(d->key_path);
	remove_file(d->cert_path);
	run->done++;
	after_job(run);
	pthread_mutex_unlock(&run->lock);
	return err;
}

static void delete_job_run(awsapi_client *c, void *arg)
{
	delete_job *job = arg;
	pl_errmsg e = { "" };
	pl_err err;

	if (c == NULL || stop_requested(job->run))
		goto done;
	err = fleet_delete_certificate(c, &job->device, &e);
	if (err == PL_OK)
		err = record_deleted(job->run, &job->device, &e);
	if (err != PL_OK) {
		pl_errmsg_prefix(&e, "certificate of %s", job->device.client_id);
		record_failure(job->run, err, &e);
	}
done:
	free(job);
}

static int by_certificate(const void *a, const void *b)
{
	const fleet_device *x = *(const fleet_device *const *)a;
	const fleet_device *y = *(const fleet_device *const *)b;

	return strcmp(x->certificate_id, y->certificate_id);
}

/* One device per distinct certificate, copied so that the inventory may change meanwhile. */
static fleet_device *distinct_certificates(const fleet_inventory *inv, size_t *count)
{
	const fleet_device **sorted = malloc((inv->count + 1) * sizeof(*sorted));
	fleet_device *out = malloc((inv->count + 1) * sizeof(*out));
	size_t n = 0;

	if (sorted == NULL || out == NULL) {
		free(sorted);
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < inv->count; i++)
		sorted[i] = &inv->devices[i];
	qsort(sorted, inv->count, sizeof(*sorted), by_certificate);
	for (size_t i = 0; i < inv->count; i++)
		if (n == 0 || strcmp(out[n - 1].certificate_id, sorted[i]->certificate_id) != 0)
			out[n++] = *sorted[i];
	free(sorted);
	*count = n;
	return out;
}

static pl_err submit_deletes(awsapi_pool *pool, fleet_run *run, const void *arg, pl_errmsg *e)
{
	const fleet_device *certs = arg;
	pl_err err = PL_OK;

	for (size_t i = 0; err == PL_OK && i < run->total && !stop_requested(run); i++) {
		delete_job *job = malloc(sizeof(*job));

		if (job == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
		job->run = run;
		job->device = certs[i];
		err = awsapi_pool_submit_fn(pool, delete_job_run, job, e);
		if (err != PL_OK)
			free(job);
	}
	return err;
}

/* Removes the fleet's files once its inventory is empty. */
static void remove_fleet_files(fleet_run *run)
{
	char path[FLEET_PATH_MAX];

	if (fleet_path(path, sizeof(path), run->s->dir, FLEET_INVENTORY_FILE, NULL) == PL_OK)
		remove_file(path);
	if (fleet_path(path, sizeof(path), run->s->dir, FLEET_JOURNAL_FILE, NULL) == PL_OK)
		remove_file(path);
	if (rmdir(run->keys_dir) != 0 && errno != ENOENT)
		PL_WARN(LOG_TAG, "%s is not empty; it holds files this fleet did not create",
			run->keys_dir);
	rmdir(run->s->dir); /* only when empty; a directory with other files stays */
}

static pl_err load_for_delete(fleet_run *run, pl_errmsg *e)
{
	pl_err err = fleet_inventory_load(&run->inv, run->s->dir, e);

	if (err == PL_OK && strcmp(run->inv->target, run->s->target_id) != 0)
		err = pl_errmsg_set(e, PL_ERR_STATE,
				    "fleet: the inventory in %s belongs to target %s, not %s",
				    run->s->dir, run->inv->target, run->s->target_id);
	if (err == PL_OK)
		err = fleet_path(run->keys_dir, sizeof(run->keys_dir), run->s->dir, FLEET_KEYS_DIR,
				 e);
	return err;
}

pl_err fleet_delete(const fleet_settings *s, awsapi_ctx *api, fleet_result *out, pl_errmsg *e)
{
	fleet_run run;
	fleet_device *certs = NULL;
	pl_err err = PL_OK;

	if (s->dir == NULL || s->target_id == NULL || s->threads < 1 || s->threads > 64)
		return pl_errmsg_set(e, PL_ERR_INVALID, "fleet: directory, target or threads invalid");
	run_init(&run, s, api, "deleted");
	err = load_for_delete(&run, e);
	if (err == PL_OK && (certs = distinct_certificates(run.inv, &run.total)) == NULL)
		err = pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory");
	if (err == PL_OK)
		err = fleet_journal_open(s->dir, &run.journal_fd, e);
	if (err == PL_OK) {
		PL_INFO(LOG_TAG, "%s: deleting %zu certificates of %zu devices", s->dir, run.total,
			run.inv->count);
		err = drive_pool(&run, submit_deletes, certs, e);
		err = run_outcome(&run, err, e);
	}
	if (err == PL_OK && run.inv->count == 0)
		remove_fleet_files(&run);
	free(certs);
	if (out != NULL) {
		fill_result(&run, out, 0);
		out->deleted = run.done;
	}
	run_release(&run);
	return err;
}

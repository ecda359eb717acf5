#include "harness/run_fleet.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi.h"
#include "simulator/certs.h"

#define COMPONENT "fleet"

/* AWS IoT keeps at most this many versions of a policy. */
#define POLICY_VERSIONS_MAX 5

/* Pool threads for deleting certificates, as many as the run's pool has. The
 * context's rate limiters, not the thread count, keep the calls within AWS's quotas. */
#define CLEANUP_THREADS 8

/* One certificate to create; filled by a pool thread. */
typedef struct fleet_job {
	coordinator *c;
	coord_identity *identity;
	const char *dir;        /* where the certificate and key files go */
	int reuse;              /* the certificate exists: reset its policies */
	char name[WP_ID_MAX];
	pl_err err;
	pl_errmsg msg;
} fleet_job;

/* Whether the swap needs the "after" policies to exist before it starts. */
static int needs_after_policies(const profile *p)
{
	return p->swap.kind != PROFILE_SWAP_POLICY_VERSION;
}

/* Whether two policy documents are equal as JSON, whatever their spacing and member order. */
static int same_document(const char *a, const char *b)
{
	json_t *ja = json_loads(a, 0, NULL);
	json_t *jb = json_loads(b, 0, NULL);
	int same = ja != NULL && jb != NULL && json_equal(ja, jb);

	json_decref(ja);
	json_decref(jb);
	return same;
}

/* Whether version a was created before version b (AWS numbers versions upwards). */
static int older(const awsapi_policy_version *a, const awsapi_policy_version *b)
{
	if (a->create_date != b->create_date)
		return a->create_date < b->create_date;
	return strtol(a->version_id, NULL, 10) < strtol(b->version_id, NULL, 10);
}

/* Deletes the oldest non-default versions of a policy until room more versions fit. */
static pl_err make_room(awsapi_client *client, const char *name, size_t room, pl_errmsg *e)
{
	awsapi_policy_version *versions = NULL;
	size_t count = 0;
	pl_err err = awsapi_list_policy_versions(client, name, &versions, &count, NULL, e);

	while (err == PL_OK && count + room > POLICY_VERSIONS_MAX) {
		size_t oldest = count;

		for (size_t i = 0; i < count; i++)
			if (!versions[i].is_default &&
			    (oldest == count || older(&versions[i], &versions[oldest])))
				oldest = i;
		if (oldest == count)
			break; /* only the default version is left */
		err = awsapi_delete_policy_version(client, name, versions[oldest].version_id, NULL,
						   e);
		if (err != PL_OK)
			break;
		PL_WARN(COMPONENT, "policy %s: deleted its oldest version %s, because AWS IoT keeps at most %d versions",
			name, versions[oldest].version_id, POLICY_VERSIONS_MAX);
		versions[oldest] = versions[--count];
	}
	free(versions);
	return err;
}

/*
 * Makes an existing policy's default version the profile's document: when
 * GetPolicy returns another document, the profile's becomes a new default
 * version. A nonzero swap_versions leaves room for the version the swap adds.
 */
static pl_err reuse_policy(awsapi_client *client, const profile_policy *pol, int swap_versions,
			   pl_errmsg *e)
{
	awsapi_policy current;
	char version[16];
	int same;
	pl_err err;

	memset(&current, 0, sizeof(current));
	err = awsapi_get_policy(client, pol->name, &current, NULL, e);
	if (err != PL_OK)
		return err;
	same = current.document != NULL && same_document(current.document, pol->document);
	if (!same || swap_versions)
		err = make_room(client, pol->name, (size_t)(!same + swap_versions), e);
	if (err == PL_OK && !same)
		err = awsapi_create_policy_version(client, pol->name, pol->document, 1, version,
						   sizeof(version), NULL, e);
	if (err == PL_OK && !same)
		PL_WARN(COMPONENT, "policy %s already existed with another document in its default version %s; "
			"the profile's document is now its default version %s",
			pol->name, current.version_id, version);
	else if (err == PL_OK)
		PL_INFO(COMPONENT, "policy %s already exists with the profile's document; using it",
			pol->name);
	awsapi_policy_clear(&current);
	return err;
}

/* Creates a policy, or makes an existing one's default document the profile's. */
static pl_err create_policy(awsapi_client *client, const profile_policy *pol, int swap_versions,
			    pl_errmsg *e)
{
	awsapi_policy out;
	pl_err err;

	memset(&out, 0, sizeof(out));
	err = awsapi_create_policy(client, pol->name, pol->document, &out, NULL, e);
	awsapi_policy_clear(&out);
	if (err == PL_ERR_EXISTS) {
		pl_errmsg_clear(e);
		err = reuse_policy(client, pol, swap_versions, e);
	}
	return err;
}

static pl_err create_policies(coordinator *c, pl_errmsg *e)
{
	const profile *p = c->prof;
	int version_swap = p->swap.kind == PROFILE_SWAP_POLICY_VERSION;
	awsapi_client *client = NULL;
	pl_err err = awsapi_client_create(&client, c->api, e);

	/* A policy-version swap adds a version to the first "before" policy. */
	for (size_t i = 0; err == PL_OK && i < p->before_count; i++)
		err = create_policy(client, &p->before[i], version_swap && i == 0, e);
	for (size_t i = 0; err == PL_OK && needs_after_policies(p) && i < p->after_count; i++)
		err = create_policy(client, &p->after[i], 0, e);
	awsapi_client_free(client);
	return err;
}

/* Writes the certificate and key files of one identity. */
static pl_err write_identity(fleet_job *j, const char *dir, const char *cert_pem,
			     const char *key_pem, pl_errmsg *e)
{
	coord_identity *id = j->identity;
	int n1 = snprintf(id->cert_path, sizeof(id->cert_path), "%s/%s.crt", dir, j->name);
	int n2 = snprintf(id->key_path, sizeof(id->key_path), "%s/%s.key", dir, j->name);
	pl_err err;

	if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(id->cert_path) ||
	    (size_t)n2 >= sizeof(id->key_path))
		return pl_errmsg_set(e, PL_ERR_RANGE, "fleet directory path too long: %s", dir);
	err = sim_certs_write_file(id->cert_path, cert_pem, 0644, e);
	if (err == PL_OK)
		err = sim_certs_write_file(id->key_path, key_pem, 0600, e);
	return err;
}

/* Creates the certificate of one identity, by CSR or CreateKeysAndCertificate. */
static pl_err create_certificate(awsapi_client *client, fleet_job *j, pl_errmsg *e)
{
	const profile *p = j->c->prof;
	awsapi_certificate cert;
	char *key_pem = NULL;
	char *csr_pem = NULL;
	pl_err err;

	memset(&cert, 0, sizeof(cert));
	if (p->fleet.provisioning == PROFILE_PROVISIONING_CSR) {
		err = sim_certs_create_ec_csr(j->name, &key_pem, &csr_pem, e);
		if (err == PL_OK)
			err = awsapi_create_certificate_from_csr(client, csr_pem, 1, &cert, NULL, e);
	} else {
		err = awsapi_create_keys_and_certificate(client, 1, &cert, NULL, e);
	}
	if (err == PL_OK && cert.pem == NULL)
		err = pl_errmsg_set(e, PL_ERR_PROTOCOL, "certificate %s: no PEM in the answer",
				    cert.id);
	if (err == PL_OK)
		err = write_identity(j, j->dir, cert.pem,
				     key_pem != NULL ? key_pem : cert.private_key_pem, e);
	if (err == PL_OK) {
		snprintf(j->identity->cert_id, sizeof(j->identity->cert_id), "%s", cert.id);
		snprintf(j->identity->cert_arn, sizeof(j->identity->cert_arn), "%s", cert.arn);
	}
	if (key_pem != NULL) {
		explicit_bzero(key_pem, strlen(key_pem));
		free(key_pem);
	}
	free(csr_pem);
	awsapi_certificate_clear(&cert);
	return err;
}

static int is_before_policy(const profile *p, const char *name)
{
	for (size_t i = 0; i < p->before_count; i++)
		if (strcmp(p->before[i].name, name) == 0)
			return 1;
	return 0;
}

/* Detaches from a reused certificate every policy that is not a "before" one. */
static pl_err detach_others(awsapi_client *client, fleet_job *j, pl_errmsg *e)
{
	awsapi_strlist attached = { NULL, 0 };
	pl_err err = awsapi_list_attached_policies(client, j->identity->cert_arn, &attached,
						   NULL, e);

	for (size_t i = 0; err == PL_OK && i < attached.count; i++)
		if (!is_before_policy(j->c->prof, attached.items[i]))
			err = awsapi_detach_policy(client, attached.items[i],
						   j->identity->cert_arn, NULL, e);
	awsapi_strlist_clear(&attached);
	return err;
}

static void identity_job(awsapi_client *client, void *arg)
{
	fleet_job *j = arg;
	const profile *p = j->c->prof;

	if (client == NULL) {
		j->err = pl_errmsg_set(&j->msg, PL_ERR_INTERRUPTED, "fleet preparation cancelled");
		return;
	}
	j->err = j->reuse ? detach_others(client, j, &j->msg)
			  : create_certificate(client, j, &j->msg);
	for (size_t i = 0; j->err == PL_OK && i < p->before_count; i++)
		j->err = awsapi_attach_policy(client, p->before[i].name, j->identity->cert_arn,
					      NULL, &j->msg);
	if (j->err != PL_OK)
		pl_errmsg_prefix(&j->msg, "device %s", j->name);
}

/* Fills pol from a document that snprintf wrote into doc (n bytes of doc_len). */
static pl_err fill_policy(profile_policy *pol, char *name, char *doc, int n,
			  size_t doc_len, const char *what, pl_errmsg *e)
{
	if (n < 0 || (size_t)n >= doc_len)
		return pl_errmsg_set(e, PL_ERR_RANGE, "%s policy too long", what);
	memset(pol, 0, sizeof(*pol));
	pol->name = name;
	pol->document = doc;
	pol->document_len = (size_t)n;
	return PL_OK;
}

/*
 * The prober's policy: connect as "<prefix>prober-<worker>" and publish to
 * every device's probe topic (template variables become the '*' wildcard).
 */
static pl_err prober_policy(const profile *p, profile_policy *pol, char *name, size_t name_len,
			    char *doc, size_t doc_len, pl_errmsg *e)
{
	char topic[WP_TOPIC_MAX];
	int n;

	if (profile_expand_topic(p->probe.topic, "*", "*", topic, sizeof(topic)) != PL_OK)
		return pl_errmsg_set(e, PL_ERR_RANGE, "probe.topic too long");
	snprintf(name, name_len, "%sprober", p->fleet.client_id_prefix);
	n = snprintf(doc, doc_len,
		     "{\"Version\":\"2012-10-17\",\"Statement\":["
		     "{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\","
		     "\"Resource\":\"arn:aws:iot:*:*:client/%sprober-*\"},"
		     "{\"Effect\":\"Allow\",\"Action\":\"iot:Publish\","
		     "\"Resource\":\"arn:aws:iot:*:*:topic/%s\"}]}",
		     p->fleet.client_id_prefix, topic);
	return fill_policy(pol, name, doc, n, doc_len, "prober", e);
}

/*
 * Creates policy pol, a certificate with its files in dir, and attaches
 * the policy: the identity of a helper connection (prober, observer).
 */
static pl_err create_helper_identity(coordinator *c, const char *dir, const profile_policy *pol,
				     coord_identity *identity, const char *what, pl_errmsg *e)
{
	fleet_job job;
	awsapi_client *client = NULL;
	pl_err err = awsapi_client_create(&client, c->api, e);

	if (err == PL_OK)
		err = create_policy(client, pol, 0, e);
	memset(&job, 0, sizeof(job));
	job.c = c;
	job.identity = identity;
	job.dir = dir;
	snprintf(job.name, sizeof(job.name), "%s", pol->name);
	if (err == PL_OK)
		err = create_certificate(client, &job, e);
	if (err == PL_OK)
		err = awsapi_attach_policy(client, pol->name, identity->cert_arn, NULL, e);
	awsapi_client_free(client);
	if (err != PL_OK)
		pl_errmsg_prefix(e, "%s identity", what);
	return err;
}

/* Creates the prober's policy and certificate when the probe kind needs them. */
static pl_err prepare_prober(coordinator *c, const char *dir, pl_errmsg *e)
{
	const profile *p = c->prof;
	char name[WP_ID_MAX];
	char doc[1024];
	profile_policy pol;
	pl_err err;

	if (p->probe.kind != PROFILE_PROBE_PROBER || p->probe.via != PROFILE_PROBE_VIA_MQTT)
		return PL_OK;
	err = prober_policy(p, &pol, name, sizeof(name), doc, sizeof(doc), e);
	if (err == PL_OK)
		err = create_helper_identity(c, dir, &pol, &c->prober, "prober", e);
	if (err == PL_OK)
		c->have_prober = 1;
	return err;
}

/*
 * The observer's policy: connect as "<prefix>observer-<shard>", subscribe
 * to and receive the lifecycle disconnected events of every client.
 */
static pl_err observer_policy(const profile *p, profile_policy *pol, char *name,
			      size_t name_len, char *doc, size_t doc_len, pl_errmsg *e)
{
	int n;

	snprintf(name, name_len, "%sobserver", p->fleet.client_id_prefix);
	n = snprintf(doc, doc_len,
		     "{\"Version\":\"2012-10-17\",\"Statement\":["
		     "{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\","
		     "\"Resource\":\"arn:aws:iot:*:*:client/%sobserver-*\"},"
		     "{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\","
		     "\"Resource\":\"arn:aws:iot:*:*:topicfilter/$aws/events/presence/disconnected/*\"},"
		     "{\"Effect\":\"Allow\",\"Action\":\"iot:Receive\","
		     "\"Resource\":\"arn:aws:iot:*:*:topic/$aws/events/presence/disconnected/*\"}]}",
		     p->fleet.client_id_prefix);
	return fill_policy(pol, name, doc, n, doc_len, "observer", e);
}

/* Creates the observer's policy and certificate unless the profile names its own. */
static pl_err prepare_observer(coordinator *c, const char *dir, pl_errmsg *e)
{
	const profile *p = c->prof;
	char name[WP_ID_MAX];
	char doc[1024];
	profile_policy pol;
	pl_err err;

	if (!p->observer.enabled || p->observer.certificate[0] != '\0')
		return PL_OK;
	err = observer_policy(p, &pol, name, sizeof(name), doc, sizeof(doc), e);
	if (err == PL_OK)
		err = create_helper_identity(c, dir, &pol, &c->observer_id, "observer", e);
	if (err == PL_OK)
		c->have_observer_id = 1;
	return err;
}

static pl_err run_jobs(coordinator *c, fleet_job *jobs, size_t n, pl_errmsg *e)
{
	pl_err err = PL_OK;
	size_t submitted = 0;

	while (submitted < n && err == PL_OK && coord_signal_count == 0) {
		err = awsapi_pool_submit_fn(c->pool, identity_job, &jobs[submitted], e);
		if (err == PL_OK)
			submitted++;
	}
	if (err != PL_OK || coord_signal_count > 0)
		awsapi_pool_cancel(c->pool); /* queued jobs end at once, without calls */
	awsapi_pool_wait(c->pool);
	if (err == PL_OK && coord_signal_count > 0)
		err = pl_errmsg_set(e, PL_ERR_INTERRUPTED, "interrupted while preparing the fleet");
	for (size_t i = 0; err == PL_OK && i < submitted; i++) {
		if (jobs[i].err != PL_OK) {
			*e = jobs[i].msg;
			err = jobs[i].err;
		}
	}
	return err;
}

static void name_job(coordinator *c, fleet_job *j, size_t i, int shared, const char *dir)
{
	j->c = c;
	j->identity = &c->identities[i];
	j->dir = dir;
	if (shared)
		snprintf(j->name, sizeof(j->name), "%sshared", c->prof->fleet.client_id_prefix);
	else
		snprintf(j->name, sizeof(j->name), "%s", c->devices[i].name);
}

/* The inventory's device named name, or NULL. Indexes usually match positions. */
static const fleet_device *inventory_find(const fleet_inventory *inv, uint32_t index,
					  const char *name)
{
	size_t count = fleet_inventory_count(inv);
	const fleet_device *d = index < count ? fleet_inventory_device(inv, index) : NULL;

	if (d != NULL && strcmp(d->client_id, name) == 0)
		return d;
	for (size_t i = 0; i < count; i++) {
		d = fleet_inventory_device(inv, i);
		if (strcmp(d->client_id, name) == 0)
			return d;
	}
	return NULL;
}

/* Fills job i's identity from the inventory; the job then only resets policies. */
static pl_err reuse_identity(coordinator *c, fleet_job *j, const fleet_inventory *inv,
			     uint32_t device, pl_errmsg *e)
{
	const coord_device *d = &c->devices[device];
	const fleet_device *fd = inventory_find(inv, d->index, d->name);
	coord_identity *id = j->identity;

	if (fd == NULL)
		return pl_errmsg_set(e, PL_ERR_STATE,
				     "fleet.inventory has no device %s; run `policylag fleet create` with this profile",
				     d->name);
	snprintf(id->cert_path, sizeof(id->cert_path), "%s", fd->cert_path);
	snprintf(id->key_path, sizeof(id->key_path), "%s", fd->key_path);
	snprintf(id->cert_id, sizeof(id->cert_id), "%s", fd->certificate_id);
	snprintf(id->cert_arn, sizeof(id->cert_arn), "%s", fd->certificate_arn);
	j->reuse = 1;
	return PL_OK;
}

pl_err run_fleet_prepare(coordinator *c, const char *dir, const fleet_inventory *inv,
			 pl_errmsg *e)
{
	int shared = c->prof->fleet.certificates == PROFILE_CERTIFICATES_SHARED;
	size_t n = shared ? 1 : c->ndevices;
	fleet_job *jobs = NULL;
	int64_t t0 = pl_mono_ns();
	pl_err err = create_policies(c, e);

	if (err == PL_OK)
		err = prepare_prober(c, dir, e);
	if (err == PL_OK)
		err = prepare_observer(c, dir, e);
	if (err != PL_OK)
		return err;
	c->identities = calloc(n, sizeof(*c->identities));
	jobs = calloc(n, sizeof(*jobs));
	if (c->identities == NULL || jobs == NULL) {
		free(jobs);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "fleet: out of memory for %zu identities", n);
	}
	c->nidentities = n;
	for (size_t i = 0; i < n; i++) {
		name_job(c, &jobs[i], i, shared, dir);
		if (inv != NULL && err == PL_OK)
			err = reuse_identity(c, &jobs[i], inv, (uint32_t)i, e);
	}
	c->fleet_reused = inv != NULL;
	if (err == PL_OK)
		err = run_jobs(c, jobs, n, e);
	free(jobs);
	if (err != PL_OK)
		return err;
	for (uint32_t i = 0; i < c->ndevices; i++)
		c->devices[i].identity = &c->identities[shared ? 0 : i];
	PL_INFO(COMPONENT, "%zu certificate%s %s in %.1f s", n, n == 1 ? "" : "s",
		inv != NULL ? "reused from fleet.inventory" : "ready",
		(double)(pl_mono_ns() - t0) / (double)PL_NS_PER_S);
	return PL_OK;
}

/* One certificate to delete at the end of the run; filled by a pool thread. */
typedef struct delete_job {
	const coord_identity *identity;
	pl_err err;
	pl_errmsg msg;
} delete_job;

static void delete_job_run(awsapi_client *client, void *arg)
{
	delete_job *j = arg;
	fleet_device d;

	if (client == NULL) {
		j->err = pl_errmsg_set(&j->msg, PL_ERR_INTERRUPTED, "cancelled before it started");
		return;
	}
	memset(&d, 0, sizeof(d));
	snprintf(d.certificate_id, sizeof(d.certificate_id), "%s", j->identity->cert_id);
	snprintf(d.certificate_arn, sizeof(d.certificate_arn), "%s", j->identity->cert_arn);
	j->err = fleet_delete_certificate(client, &d, &j->msg);
}

/* The certificates to delete: those the run created and must not leave behind. */
static size_t plan_deletes(const coordinator *c, delete_job *jobs)
{
	size_t n = 0;

	for (size_t i = 0; c->delete_identities && i < c->nidentities; i++)
		if (c->identities[i].cert_id[0] != '\0')
			jobs[n++].identity = &c->identities[i];
	if (c->delete_prober && c->have_prober && c->prober.cert_id[0] != '\0')
		jobs[n++].identity = &c->prober;
	if (c->delete_observer && c->have_observer_id && c->observer_id.cert_id[0] != '\0')
		jobs[n++].identity = &c->observer_id;
	return n;
}

/*
 * Runs the deletes on a pool of their own (the run's pool is cancelled at
 * the drain), so that they overlap within the control-plane rate limits.
 */
static void run_deletes(coordinator *c, delete_job *jobs, size_t n)
{
	awsapi_pool *pool = NULL;
	pl_errmsg e = { "" };
	size_t submitted = 0;
	unsigned threads = n < CLEANUP_THREADS ? (unsigned)n : CLEANUP_THREADS;

	if (awsapi_pool_create(&pool, c->api, threads, n, &e) != PL_OK) {
		for (size_t i = 0; i < n; i++)
			jobs[i].err = pl_errmsg_set(&jobs[i].msg, PL_ERR_NOMEM, "%s", e.msg);
		return;
	}
	for (; submitted < n; submitted++)
		if (awsapi_pool_submit_fn(pool, delete_job_run, &jobs[submitted], &e) != PL_OK)
			break;
	for (size_t i = submitted; i < n; i++)
		jobs[i].err = pl_errmsg_set(&jobs[i].msg, PL_ERR_INTERRUPTED, "%s", e.msg);
	awsapi_pool_wait(pool);
	awsapi_pool_free(pool);
}

void run_fleet_cleanup(coordinator *c)
{
	delete_job *jobs = calloc(c->nidentities + 2, sizeof(*jobs)); /* + prober, observer */
	size_t n, left = 0;

	if (jobs == NULL) {
		PL_WARN(COMPONENT, "cannot delete the run's certificates: out of memory");
		return;
	}
	n = plan_deletes(c, jobs);
	if (n > 0)
		run_deletes(c, jobs, n);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].err == PL_OK)
			continue;
		PL_WARN(COMPONENT, "certificate %s was not deleted: %s", jobs[i].identity->cert_id,
			jobs[i].msg.msg);
		left++;
	}
	free(jobs);
	if (left > 0)
		PL_WARN(COMPONENT, "%zu certificate%s of this run could not be deleted; see the messages above",
			left, left == 1 ? "" : "s");
	else if (n > 0)
		PL_INFO(COMPONENT, "deleted the %zu certificate%s this run created", n,
			n == 1 ? "" : "s");
}

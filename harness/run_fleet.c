#include "harness/run_fleet.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi.h"
#include "simulator/certs.h"

#define COMPONENT "fleet"

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

static pl_err create_policy(awsapi_client *client, const profile_policy *pol, pl_errmsg *e)
{
	awsapi_policy out;
	pl_err err;

	memset(&out, 0, sizeof(out));
	err = awsapi_create_policy(client, pol->name, pol->document, &out, NULL, e);
	awsapi_policy_clear(&out);
	if (err == PL_ERR_EXISTS) {
		/* NOTE: an existing policy is used as it is; its document is not compared. */
		PL_WARN(COMPONENT, "policy %s already exists; using it", pol->name);
		pl_errmsg_clear(e);
		return PL_OK;
	}
	return err;
}

static pl_err create_policies(coordinator *c, pl_errmsg *e)
{
	const profile *p = c->prof;
	awsapi_client *client = NULL;
	pl_err err = awsapi_client_create(&client, c->api, e);

	for (size_t i = 0; err == PL_OK && i < p->before_count; i++)
		err = create_policy(client, &p->before[i], e);
	for (size_t i = 0; err == PL_OK && needs_after_policies(p) && i < p->after_count; i++)
		err = create_policy(client, &p->after[i], e);
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
		err = create_policy(client, pol, e);
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

/* Deletes one certificate, counting it in *done or, when it stays, in *left. */
static void delete_identity(awsapi_client *client, const coord_identity *id, size_t *done,
			    size_t *left)
{
	fleet_device d;
	pl_errmsg e = { "" };

	if (id->cert_id[0] == '\0')
		return; /* never created */
	memset(&d, 0, sizeof(d));
	snprintf(d.certificate_id, sizeof(d.certificate_id), "%s", id->cert_id);
	snprintf(d.certificate_arn, sizeof(d.certificate_arn), "%s", id->cert_arn);
	if (fleet_delete_certificate(client, &d, &e) == PL_OK) {
		(*done)++;
		return;
	}
	PL_WARN(COMPONENT, "certificate %s was not deleted: %s", id->cert_id, e.msg);
	(*left)++;
}

/*
 * NOTE: the deletes run one after another on one connection, three or four
 * calls per certificate, so a fleet of thousands takes minutes (an estimate).
 */
void run_fleet_cleanup(coordinator *c)
{
	awsapi_client *client = NULL;
	pl_errmsg e = { "" };
	size_t left = 0, done = 0;

	if ((!c->delete_identities || c->nidentities == 0) && !(c->delete_prober && c->have_prober) &&
	    !(c->delete_observer && c->have_observer_id))
		return;
	if (awsapi_client_create(&client, c->api, &e) != PL_OK) {
		PL_WARN(COMPONENT, "cannot delete the run's certificates: %s", e.msg);
		return;
	}
	for (size_t i = 0; c->delete_identities && i < c->nidentities; i++)
		delete_identity(client, &c->identities[i], &done, &left);
	if (c->delete_prober && c->have_prober)
		delete_identity(client, &c->prober, &done, &left);
	if (c->delete_observer && c->have_observer_id)
		delete_identity(client, &c->observer_id, &done, &left);
	awsapi_client_free(client);
	if (left > 0)
		PL_WARN(COMPONENT, "%zu certificate%s of this run could not be deleted; see the messages above",
			left, left == 1 ? "" : "s");
	else
		PL_INFO(COMPONENT, "deleted the %zu certificate%s this run created", done,
			done == 1 ? "" : "s");
}

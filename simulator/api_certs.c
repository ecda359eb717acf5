/* Certificate operations of the control plane, and DescribeEndpoint. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "simulator/api_internal.h"
#include "simulator/certs.h"
#include "simulator/state.h"

/* Device certificates the simulator CA issues are valid this long. */
#define CERT_DAYS 3650

static sim_cert *find_cert(sim_api *api, api_response *res, const char *id)
{
	sim_cert *c = sim_state_cert_find(api->state, id);

	if (c == NULL)
		api_error(res, 404, "ResourceNotFoundException",
			  "The certificate %s does not exist", id);
	return c;
}

static int have_ca(sim_api *api, api_response *res)
{
	if (api->ca != NULL)
		return 1;
	api_error(res, 500, "InternalFailureException",
		  "The simulator has no CA configured (api_ca_cert, api_ca_key)");
	return 0;
}

/*
 * Adds pem to the store and saves it. Returns the new record, or NULL with
 * the error set (409 for a certificate already registered). Lock held.
 */
static sim_cert *add_cert(sim_api *api, api_response *res, const char *pem, int active,
			  const char *ca_id)
{
	char id[SIM_CERTS_ID_LEN + 1];
	sim_cert *c;
	pl_errmsg e;
	pl_err err;

	pl_errmsg_clear(&e);
	if (sim_certs_id_from_pem(pem, id, &e) != PL_OK) {
		api_error(res, 400, "CertificateValidationException",
			  "The certificate is not a valid PEM X.509 certificate");
		return NULL;
	}
	c = sim_state_cert_find(api->state, id);
	if (c != NULL) {
		api_error_exists(res, "The certificate is already provisioned or registered", id,
				 c->arn);
		return NULL;
	}
	err = sim_state_cert_add(api->state, pem, active ? SIM_CERT_ACTIVE : SIM_CERT_INACTIVE,
				 ca_id, &c, &e);
	if (err != PL_OK) {
		api_store_error(res, err, &e, "ResourceAlreadyExistsException");
		return NULL;
	}
	return api_save(api, res) ? c : NULL;
}

void api_create_keys_and_certificate(sim_api *api, const api_request *req, api_response *res)
{
	char *pem = NULL, *priv = NULL, *pub = NULL, ca_id[SIM_CERTS_ID_LEN + 1];
	int active;
	sim_cert *c;
	pl_errmsg e;

	if (!api_query_bool(req, res, "setAsActive", 0, &active) || !have_ca(api, res))
		return;
	pl_errmsg_clear(&e);
	if (sim_certs_create_keys_and_cert(api->ca, "AWS IoT Certificate", CERT_DAYS, &pem, &priv,
					   &pub, &e) != PL_OK) {
		PL_ERROR("api", "CreateKeysAndCertificate: %s", e.msg);
		api_error(res, 500, "InternalFailureException", "Key generation failed");
		return;
	}
	sim_ca_id(api->ca, ca_id);
	sim_state_lock(api->state);
	c = add_cert(api, res, pem, active, ca_id);
	if (c != NULL)
		api_json(res, json_pack("{s:s,s:s,s:s,s:{s:s,s:s}}", "certificateArn", c->arn,
					"certificateId", c->id, "certificatePem", c->pem,
					"keyPair", "PublicKey", pub != NULL ? pub : "",
					"PrivateKey", priv));
	sim_state_unlock(api->state);
	if (priv != NULL)
		OPENSSL_cleanse(priv, strlen(priv));
	free(priv);
	free(pub);
	free(pem);
}

void api_create_certificate_from_csr(sim_api *api, const api_request *req, api_response *res)
{
	const char *csr;
	char *pem = NULL, ca_id[SIM_CERTS_ID_LEN + 1];
	int active;
	json_t *body;
	sim_cert *c;
	pl_errmsg e;

	if (!api_query_bool(req, res, "setAsActive", 0, &active) || !have_ca(api, res) ||
	    !api_body_object(req, res, &body))
		return;
	if (!api_member_string(body, res, "certificateSigningRequest", 1, &csr))
		goto out;
	pl_errmsg_clear(&e);
	if (sim_certs_sign_csr(api->ca, csr, CERT_DAYS, &pem, &e) != PL_OK) {
		api_error(res, 400, "InvalidRequestException",
			  "The certificate signing request is not valid: %s", e.msg);
		goto out;
	}
	sim_ca_id(api->ca, ca_id);
	sim_state_lock(api->state);
	c = add_cert(api, res, pem, active, ca_id);
	if (c != NULL)
		api_json(res, json_pack("{s:s,s:s,s:s}", "certificateArn", c->arn,
					"certificateId", c->id, "certificatePem", c->pem));
	sim_state_unlock(api->state);
out:
	free(pem);
	json_decref(body);
}

/*
 * Writes pem into the trust directory under OpenSSL's subject-hash name
 * (<hash>.<n>, first free n), so that mosquitto's capath lookup finds it on
 * the next handshake.
 */
static void trust_certificate(sim_api *api, const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned long hash = x != NULL ? X509_subject_name_hash(x) : 0;
	char path[4096];
	int fd = -1;

	for (int n = 0; x != NULL && n < 100 && fd < 0; n++) {
		snprintf(path, sizeof(path), "%s/%08lx.%d", api->cfg.trust_dir, hash, n);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd >= 0) {
		size_t len = strlen(pem);
		if (write(fd, pem, len) != (ssize_t)len || fsync(fd) != 0)
			PL_WARN("api", "writing %s failed: %s", path, strerror(errno));
		close(fd);
	} else {
		PL_WARN("api", "cannot add a certificate to %s: %s", api->cfg.trust_dir,
			strerror(errno));
	}
	X509_free(x);
	BIO_free(bio);
}

void api_register_certificate_without_ca(sim_api *api, const api_request *req,
					 api_response *res)
{
	const char *pem, *status = NULL;
	sim_cert_status st = SIM_CERT_ACTIVE;
	json_t *body;
	sim_cert *c;

	if (!api_body_object(req, res, &body))
		return;
	if (!api_member_string(body, res, "certificatePem", 1, &pem) ||
	    !api_member_string(body, res, "status", 0, &status))
		goto out;
	if (status != NULL && (sim_cert_status_parse(status, &st, NULL) != PL_OK ||
			       (st != SIM_CERT_ACTIVE && st != SIM_CERT_INACTIVE))) {
		api_error_validation(res, "status", status,
				     "Member must satisfy enum value set: [ACTIVE, INACTIVE]");
		goto out;
	}
	sim_state_lock(api->state);
	c = add_cert(api, res, pem, st == SIM_CERT_ACTIVE, NULL);
	if (c != NULL) {
		if (api->cfg.trust_dir != NULL)
			trust_certificate(api, pem);
		api_json(res, json_pack("{s:s,s:s}", "certificateArn", c->arn, "certificateId",
					c->id));
	}
	sim_state_unlock(api->state);
out:
	json_decref(body);
}

/* notBefore and notAfter of a PEM certificate, as AWS timestamps. */
static json_t *validity_json(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	struct tm nb, na;
	json_t *out = json_object();

	if (x != NULL && ASN1_TIME_to_tm(X509_get0_notBefore(x), &nb) == 1 &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &na) == 1) {
		json_object_set_new(out, "notBefore", api_time((int64_t)timegm(&nb) * 1000));
		json_object_set_new(out, "notAfter", api_time((int64_t)timegm(&na) * 1000));
	}
	X509_free(x);
	BIO_free(bio);
	return out;
}

void api_describe_certificate(sim_api *api, const api_request *req, api_response *res)
{
	const char *id = req->segments[1];
	sim_cert *c;
	json_t *d;

	if (!api_check_cert_id(res, id))
		return;
	sim_state_lock(api->state);
	c = find_cert(api, res, id);
	if (c != NULL) {
		d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:i,s:s,s:o,s:s}", "certificateArn",
			      c->arn, "certificateId", c->id, "status",
			      sim_cert_status_name(c->status), "certificatePem", c->pem, "ownedBy",
			      api->cfg.account, "creationDate", api_time(c->create_ms),
			      "lastModifiedDate", api_time(c->modify_ms), "customerVersion", 1,
			      "generationId", c->id, "validity", validity_json(c->pem),
			      "certificateMode", c->ca_id != NULL ? "DEFAULT" : "SNI_ONLY");
		if (c->ca_id != NULL)
			json_object_set_new(d, "caCertificateId", json_string(c->ca_id));
		api_json(res, json_pack("{s:o}", "certificateDescription", d));
	}
	sim_state_unlock(api->state);
}

/* Queues the drop of every connection using cert_id after the configured delay. */
static void queue_cert_disconnect(sim_api *api, api_response *res, const char *cert_id)
{
	sim_broker_action a;

	memset(&a, 0, sizeof(a));
	a.kind = SIM_BROKER_DISCONNECT_CERT;
	a.cert_id = strdup(cert_id);
	a.delay_ns = api->cfg.cert_disconnect_delay_ns;
	if (a.cert_id == NULL)
		api_error(res, 500, "InternalFailureException", "Out of memory");
	else
		api_queue(api, res, &a);
}

static int new_status(const api_request *req, api_response *res, sim_cert_status *out)
{
	const char *text = api_query(req, "newStatus");

	if (text == NULL) {
		api_error_validation(res, "newStatus", "null", "Member must not be null");
		return 0;
	}
	if (sim_cert_status_parse(text, out, NULL) != PL_OK) {
		api_error_validation(res, "newStatus", text,
				     "Member must satisfy enum value set: [ACTIVE, INACTIVE, "
				     "REVOKED, PENDING_TRANSFER, REGISTER_INACTIVE, "
				     "PENDING_ACTIVATION]");
		return 0;
	}
	if (*out != SIM_CERT_ACTIVE && *out != SIM_CERT_INACTIVE && *out != SIM_CERT_REVOKED) {
		api_error(res, 400, "InvalidRequestException",
			  "A certificate cannot be set to %s through UpdateCertificate", text);
		return 0;
	}
	return 1;
}

void api_update_certificate(sim_api *api, const api_request *req, api_response *res)
{
	const char *id = req->segments[1];
	sim_cert_status st;
	sim_cert *c;
	pl_errmsg e;
	pl_err err;

	if (!api_check_cert_id(res, id) || !new_status(req, res, &st))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	c = find_cert(api, res, id);
	if (c == NULL)
		goto out;
	if (c->status == SIM_CERT_REVOKED && st != SIM_CERT_REVOKED) {
		api_error(res, 406, "CertificateStateException",
			  "The certificate is revoked and cannot change status");
		goto out;
	}
	err = sim_state_cert_set_status(api->state, id, st, &e);
	if (err != PL_OK) {
		api_store_error(res, err, &e, "CertificateStateException");
		goto out;
	}
	if (!api_save(api, res))
		goto out;
	api_json(res, NULL);
	if (st != SIM_CERT_ACTIVE)
		queue_cert_disconnect(api, res, id);
out:
	sim_state_unlock(api->state);
}

/* Detaches every policy from the certificate (DeleteCertificate forceDelete=true). */
static pl_err detach_all(sim_api *api, sim_cert *c, pl_errmsg *e)
{
	char *names[SIM_MAX_POLICIES_PER_TARGET];
	size_t n = c->policies.count;
	char arn[512];
	pl_err err = PL_OK;

	snprintf(arn, sizeof(arn), "%s", c->arn);
	for (size_t i = 0; i < n; i++)
		names[i] = strdup(c->policies.names[i]);
	for (size_t i = 0; i < n; i++) {
		if (err == PL_OK)
			err = names[i] != NULL ? sim_state_detach(api->state, names[i], arn, e)
					       : PL_ERR_NOMEM;
		free(names[i]);
	}
	return err;
}

void api_delete_certificate(sim_api *api, const api_request *req, api_response *res)
{
	const char *id = req->segments[1];
	int force;
	sim_cert *c;
	pl_errmsg e;
	pl_err err = PL_OK;

	if (!api_check_cert_id(res, id) || !api_query_bool(req, res, "forceDelete", 0, &force))
		return;
	pl_errmsg_clear(&e);
	sim_state_lock(api->state);
	c = find_cert(api, res, id);
	if (c == NULL)
		goto out;
	if (c->status == SIM_CERT_ACTIVE) {
		api_error(res, 406, "CertificateStateException",
			  "Certificate must be deactivated before deletion");
		goto out;
	}
	if (force)
		err = detach_all(api, c, &e);
	/* NOTE: a file this certificate left in the trust directory stays; the
	 * plugin rejects the deleted certificate at CONNECT. */
	if (err == PL_OK)
		err = sim_state_cert_delete(api->state, id, &e);
	if (err != PL_OK)
		api_store_error(res, err, &e, "DeleteConflictException");
	else if (api_save(api, res))
		api_json(res, NULL);
out:
	sim_state_unlock(api->state);
}

void api_describe_endpoint(sim_api *api, const api_request *req, api_response *res)
{
	static const char *const types[] = {"iot:Data", "iot:Data-ATS", "iot:CredentialProvider",
					    "iot:Jobs"};
	const char *type = api_query(req, "endpointType");
	int known = type == NULL;

	for (size_t i = 0; !known && i < sizeof(types) / sizeof(types[0]); i++)
		known = strcmp(type, types[i]) == 0;
	if (!known) {
		api_error(res, 400, "InvalidRequestException", "Invalid endpoint type '%.100s'",
			  type);
		return;
	}
	api_json(res, json_pack("{s:s}", "endpointAddress", api->cfg.endpoint));
}

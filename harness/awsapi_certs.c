/*
 * AWS IoT certificate and endpoint operations, and the data-plane Publish
 * and DeleteConnection.
 */
#include <stdlib.h>
#include <string.h>

#include "harness/awsapi.h"
#include "harness/awsapi_internal.h"

void awsapi_certificate_clear(awsapi_certificate *cert)
{
	if (cert == NULL)
		return;
	free(cert->pem);
	if (cert->private_key_pem != NULL) {
		explicit_bzero(cert->private_key_pem, strlen(cert->private_key_pem));
		free(cert->private_key_pem);
	}
	memset(cert, 0, sizeof(*cert));
}

/* Fills id, ARN and PEM from a CreateCertificate* response. */
static pl_err fill_certificate(json_t *response, awsapi_certificate *out, awsapi_op op,
			       pl_errmsg *e)
{
	pl_err err;

	memset(out, 0, sizeof(*out));
	err = awsapi_json_copy(response, "certificateId", out->id, sizeof(out->id), op, e);
	if (err == PL_OK)
		err = awsapi_json_copy(response, "certificateArn", out->arn, sizeof(out->arn), op, e);
	if (err == PL_OK) {
		out->pem = awsapi_json_strdup(response, "certificatePem");
		if (out->pem == NULL)
			err = pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: response has no certificatePem",
					    awsapi_op_name(op));
	}
	return err;
}

/* Runs a CreateCertificate* or DescribeCertificate request and fills *out from desc_key. */
static pl_err certificate_call(awsapi_client *c, const awsapi_request *r, const char *desc_key,
			       awsapi_certificate *out, json_t **response, awsapi_call *call,
			       pl_errmsg *e)
{
	json_t *desc;
	pl_err err = awsapi_run(c, r, response, call, e);

	if (err != PL_OK || out == NULL)
		return err;
	desc = desc_key != NULL ? json_object_get(*response, desc_key) : *response;
	err = fill_certificate(desc, out, r->op, e);
	if (err == PL_OK && desc_key != NULL)
		err = awsapi_json_copy(desc, "status", out->status, sizeof(out->status), r->op, e);
	return err;
}

pl_err awsapi_create_certificate_from_csr(awsapi_client *c, const char *csr_pem,
					  int set_as_active, awsapi_certificate *out,
					  awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_CREATE_CERTIFICATE_FROM_CSR, .csr_pem = csr_pem,
				   .flag = set_as_active };
	json_t *response = NULL;
	pl_err err = certificate_call(c, &r, NULL, out, &response, call, e);

	if (err != PL_OK && out != NULL)
		awsapi_certificate_clear(out);
	json_decref(response);
	return err;
}

static pl_err fill_key_pair(json_t *response, awsapi_certificate *out, pl_errmsg *e)
{
	json_t *pair = json_object_get(response, "keyPair");

	out->private_key_pem = awsapi_json_strdup(pair, "PrivateKey");
	if (out->private_key_pem == NULL)
		return pl_errmsg_set(e, PL_ERR_PROTOCOL, "%s: response has no keyPair.PrivateKey",
				     awsapi_op_name(AWSAPI_CREATE_KEYS_AND_CERTIFICATE));
	return PL_OK;
}

pl_err awsapi_create_keys_and_certificate(awsapi_client *c, int set_as_active,
					  awsapi_certificate *out, awsapi_call *call,
					  pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_CREATE_KEYS_AND_CERTIFICATE,
				   .flag = set_as_active };
	json_t *response = NULL;
	pl_err err = certificate_call(c, &r, NULL, out, &response, call, e);

	if (err == PL_OK && out != NULL)
		err = fill_key_pair(response, out, e);
	if (err != PL_OK && out != NULL)
		awsapi_certificate_clear(out);
	awsapi_client_wipe_response(c);
	/* NOTE: jansson frees its copy of the private key without zeroing it, and
	 * libcurl's receive buffers are not wiped either. */
	json_decref(response);
	return err;
}

pl_err awsapi_describe_certificate(awsapi_client *c, const char *certificate_id,
				   awsapi_certificate *out, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_DESCRIBE_CERTIFICATE,
				   .certificate_id = certificate_id };
	json_t *response = NULL;
	pl_err err = certificate_call(c, &r, "certificateDescription", out, &response, call, e);

	if (err != PL_OK && out != NULL)
		awsapi_certificate_clear(out);
	json_decref(response);
	return err;
}

pl_err awsapi_update_certificate(awsapi_client *c, const char *certificate_id,
				 const char *new_status, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_UPDATE_CERTIFICATE,
				   .certificate_id = certificate_id, .status = new_status };

	return awsapi_run(c, &r, NULL, call, e);
}

pl_err awsapi_delete_certificate(awsapi_client *c, const char *certificate_id, int force,
				 awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_DELETE_CERTIFICATE,
				   .certificate_id = certificate_id, .flag = force };

	return awsapi_run(c, &r, NULL, call, e);
}

pl_err awsapi_describe_endpoint(awsapi_client *c, const char *endpoint_type, char *address,
				size_t address_len, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_DESCRIBE_ENDPOINT,
				   .endpoint_type = endpoint_type ? endpoint_type : "iot:Data-ATS" };
	json_t *response = NULL;
	pl_err err = awsapi_run(c, &r, &response, call, e);

	if (err == PL_OK)
		err = awsapi_json_copy(response, "endpointAddress", address, address_len, r.op, e);
	json_decref(response);
	return err;
}

/* ---- data plane ---- */

pl_err awsapi_publish(awsapi_client *c, const char *topic, const void *payload, size_t len,
		      int qos, int retain, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_PUBLISH, .topic = topic, .payload = payload,
				   .payload_len = len, .qos = qos, .flag = retain };

	return awsapi_run(c, &r, NULL, call, e);
}

pl_err awsapi_delete_connection(awsapi_client *c, const char *client_id, int clean_session,
				int prevent_will_message, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_request r = { .op = AWSAPI_DELETE_CONNECTION, .client_id = client_id,
				   .flag = clean_session,
				   .prevent_will_message = prevent_will_message };

	return awsapi_run(c, &r, NULL, call, e);
}

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

pl_err awsapi_create_certificate_from_csr(awsapi_client *c, const char *csr_pem,
					  int set_as_active, awsapi_certificate *out,
					  awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_CREATE_CERTIFICATE_FROM_CSR;
	awsapi_http req;
	json_t *response = NULL;
	pl_err err;

	if (csr_pem == NULL || csr_pem[0] == '\0')
		return pl_errmsg_set(e, PL_ERR_INVALID, "%s: CSR missing", awsapi_op_name(op));
	err = awsapi_http_init(&req, op, "POST", e, "/certificates");
	if (err == PL_OK)
		err = awsapi_http_query(&req, "setAsActive", awsapi_bool_text(set_as_active), e);
	if (err != PL_OK)
		return err;
	err = awsapi_execute_json(c, &req, json_pack("{s:s}", "certificateSigningRequest", csr_pem),
				  &response, call, e);
	if (err == PL_OK && out != NULL)
		err = fill_certificate(response, out, op, e);
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
	const awsapi_op op = AWSAPI_CREATE_KEYS_AND_CERTIFICATE;
	awsapi_http req;
	json_t *response = NULL;
	pl_err err = awsapi_http_init(&req, op, "POST", e, "/keys-and-certificate");

	if (err == PL_OK)
		err = awsapi_http_query(&req, "setAsActive", awsapi_bool_text(set_as_active), e);
	if (err != PL_OK)
		return err;
	err = awsapi_execute(c, &req, &response, call, e);
	if (err == PL_OK && out != NULL) {
		err = fill_certificate(response, out, op, e);
		if (err == PL_OK)
			err = fill_key_pair(response, out, e);
		if (err != PL_OK)
			awsapi_certificate_clear(out);
	}
	awsapi_client_wipe_response(c);
	/* NOTE: jansson frees its copy of the private key without zeroing it, and
	 * libcurl's receive buffers are not wiped either. */
	json_decref(response);
	return err;
}

pl_err awsapi_describe_certificate(awsapi_client *c, const char *certificate_id,
				   awsapi_certificate *out, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_DESCRIBE_CERTIFICATE;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	json_t *response = NULL, *desc;
	pl_err err = awsapi_encode_segment(op, "certificate id", certificate_id, seg, sizeof(seg), e);

	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "GET", e, "/certificates/%s", seg);
	if (err != PL_OK)
		return err;
	req.subject = certificate_id;
	err = awsapi_execute(c, &req, &response, call, e);
	desc = json_object_get(response, "certificateDescription");
	if (err == PL_OK && out != NULL) {
		err = fill_certificate(desc, out, op, e);
		if (err == PL_OK)
			err = awsapi_json_copy(desc, "status", out->status, sizeof(out->status), op, e);
		if (err != PL_OK)
			awsapi_certificate_clear(out);
	}
	json_decref(response);
	return err;
}

pl_err awsapi_update_certificate(awsapi_client *c, const char *certificate_id,
				 const char *new_status, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_UPDATE_CERTIFICATE;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	pl_err err = awsapi_encode_segment(op, "certificate id", certificate_id, seg, sizeof(seg), e);

	if (err == PL_OK && (new_status == NULL || new_status[0] == '\0'))
		err = pl_errmsg_set(e, PL_ERR_INVALID, "%s: new status missing", awsapi_op_name(op));
	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "PUT", e, "/certificates/%s", seg);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "newStatus", new_status, e);
	if (err != PL_OK)
		return err;
	req.subject = certificate_id;
	return awsapi_execute(c, &req, NULL, call, e);
}

pl_err awsapi_delete_certificate(awsapi_client *c, const char *certificate_id, int force,
				 awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_DELETE_CERTIFICATE;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	pl_err err = awsapi_encode_segment(op, "certificate id", certificate_id, seg, sizeof(seg), e);

	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "DELETE", e, "/certificates/%s", seg);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "forceDelete", awsapi_bool_text(force), e);
	if (err != PL_OK)
		return err;
	req.subject = certificate_id;
	return awsapi_execute(c, &req, NULL, call, e);
}

pl_err awsapi_describe_endpoint(awsapi_client *c, const char *endpoint_type, char *address,
				size_t address_len, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_DESCRIBE_ENDPOINT;
	awsapi_http req;
	json_t *response = NULL;
	pl_err err = awsapi_http_init(&req, op, "GET", e, "/endpoint");

	if (err == PL_OK)
		err = awsapi_http_query(&req, "endpointType",
					endpoint_type ? endpoint_type : "iot:Data-ATS", e);
	if (err != PL_OK)
		return err;
	err = awsapi_execute(c, &req, &response, call, e);
	if (err == PL_OK)
		err = awsapi_json_copy(response, "endpointAddress", address, address_len, op, e);
	json_decref(response);
	return err;
}

/* ---- data plane ---- */

pl_err awsapi_publish(awsapi_client *c, const char *topic, const void *payload, size_t len,
		      int qos, int retain, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_PUBLISH;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	pl_err err = awsapi_encode_segment(op, "topic", topic, seg, sizeof(seg), e);

	if (err == PL_OK && qos != 0 && qos != 1)
		err = pl_errmsg_set(e, PL_ERR_INVALID, "%s: QoS %d is not 0 or 1", awsapi_op_name(op),
				    qos);
	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "POST", e, "/topics/%s", seg);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "qos", qos ? "1" : "0", e);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "retain", awsapi_bool_text(retain), e);
	if (err != PL_OK)
		return err;
	req.subject = topic;
	req.body = payload ? (const char *)payload : "";
	req.body_len = payload ? len : 0;
	req.content_type = "application/octet-stream";
	return awsapi_execute(c, &req, NULL, call, e);
}

pl_err awsapi_delete_connection(awsapi_client *c, const char *client_id, int clean_session,
				int prevent_will_message, awsapi_call *call, pl_errmsg *e)
{
	const awsapi_op op = AWSAPI_DELETE_CONNECTION;
	char seg[AWSAPI_SEGMENT_MAX];
	awsapi_http req;
	pl_err err = awsapi_encode_segment(op, "client id", client_id, seg, sizeof(seg), e);

	if (err == PL_OK && client_id[0] == '$')
		err = pl_errmsg_set(e, PL_ERR_INVALID, "%s: client id %s starts with '$'",
				    awsapi_op_name(op), client_id);
	if (err == PL_OK)
		err = awsapi_http_init(&req, op, "DELETE", e, "/connections/%s", seg);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "cleanSession", awsapi_bool_text(clean_session), e);
	if (err == PL_OK)
		err = awsapi_http_query(&req, "preventWillMessage",
					awsapi_bool_text(prevent_will_message), e);
	if (err != PL_OK)
		return err;
	req.subject = client_id;
	return awsapi_execute(c, &req, NULL, call, e);
}

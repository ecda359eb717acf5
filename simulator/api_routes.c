/* The API's route table: AWS's method and path for each operation, and its default TPS. */
#include <string.h>

#include "simulator/api_routes.h"

/*
 * Paths are matched segment by segment; "*" matches one segment. A final
 * "**" matches the rest of the path (data-plane topics may arrive with raw
 * slashes). Default TPS values are AWS's documented control-plane quotas.
 */
static const api_route routes[] = {
	{"POST", {"policies", "*"}, 2, API_OP_CREATE_POLICY, API_SERVICE_CONTROL, 10,
	 api_create_policy},
	{"GET", {"policies", "*"}, 2, API_OP_GET_POLICY, API_SERVICE_CONTROL, 10, api_get_policy},
	{"GET", {"policies"}, 1, API_OP_LIST_POLICIES, API_SERVICE_CONTROL, 10, api_list_policies},
	{"DELETE", {"policies", "*"}, 2, API_OP_DELETE_POLICY, API_SERVICE_CONTROL, 10,
	 api_delete_policy},
	{"POST", {"policies", "*", "version"}, 3, API_OP_CREATE_POLICY_VERSION,
	 API_SERVICE_CONTROL, 10, api_create_policy_version},
	{"PATCH", {"policies", "*", "version", "*"}, 4, API_OP_SET_DEFAULT_POLICY_VERSION,
	 API_SERVICE_CONTROL, 10, api_set_default_policy_version},
	{"GET", {"policies", "*", "version"}, 3, API_OP_LIST_POLICY_VERSIONS, API_SERVICE_CONTROL,
	 10, api_list_policy_versions},
	{"GET", {"policies", "*", "version", "*"}, 4, API_OP_GET_POLICY_VERSION,
	 API_SERVICE_CONTROL, 15, api_get_policy_version},
	{"DELETE", {"policies", "*", "version", "*"}, 4, API_OP_DELETE_POLICY_VERSION,
	 API_SERVICE_CONTROL, 10, api_delete_policy_version},
	{"PUT", {"target-policies", "*"}, 2, API_OP_ATTACH_POLICY, API_SERVICE_CONTROL, 15,
	 api_attach_policy},
	{"POST", {"target-policies", "*"}, 2, API_OP_DETACH_POLICY, API_SERVICE_CONTROL, 15,
	 api_detach_policy},
	{"POST", {"attached-policies", "**"}, 2, API_OP_LIST_ATTACHED_POLICIES, API_SERVICE_CONTROL,
	 15, api_list_attached_policies},
	{"POST", {"policy-targets", "*"}, 2, API_OP_LIST_TARGETS_FOR_POLICY, API_SERVICE_CONTROL,
	 10, api_list_targets_for_policy},
	{"POST", {"keys-and-certificate"}, 1, API_OP_CREATE_KEYS_AND_CERTIFICATE,
	 API_SERVICE_CONTROL, 10, api_create_keys_and_certificate},
	{"POST", {"certificates"}, 1, API_OP_CREATE_CERTIFICATE_FROM_CSR, API_SERVICE_CONTROL, 15,
	 api_create_certificate_from_csr},
	{"POST", {"certificate", "register-no-ca"}, 2, API_OP_REGISTER_CERTIFICATE_WITHOUT_CA,
	 API_SERVICE_CONTROL, 10, api_register_certificate_without_ca},
	{"GET", {"certificates", "*"}, 2, API_OP_DESCRIBE_CERTIFICATE, API_SERVICE_CONTROL, 10,
	 api_describe_certificate},
	{"PUT", {"certificates", "*"}, 2, API_OP_UPDATE_CERTIFICATE, API_SERVICE_CONTROL, 10,
	 api_update_certificate},
	{"DELETE", {"certificates", "*"}, 2, API_OP_DELETE_CERTIFICATE, API_SERVICE_CONTROL, 10,
	 api_delete_certificate},
	{"GET", {"endpoint"}, 1, API_OP_DESCRIBE_ENDPOINT, API_SERVICE_CONTROL, 10,
	 api_describe_endpoint},
	{"POST", {"things", "*"}, 2, API_OP_CREATE_THING, API_SERVICE_CONTROL, 100,
	 api_create_thing},
	{"GET", {"things", "*"}, 2, API_OP_DESCRIBE_THING, API_SERVICE_CONTROL, 0,
	 api_describe_thing},
	{"DELETE", {"things", "*"}, 2, API_OP_DELETE_THING, API_SERVICE_CONTROL, 100,
	 api_delete_thing},
	{"PUT", {"things", "*", "principals"}, 3, API_OP_ATTACH_THING_PRINCIPAL,
	 API_SERVICE_CONTROL, 100, api_attach_thing_principal},
	{"DELETE", {"things", "*", "principals"}, 3, API_OP_DETACH_THING_PRINCIPAL,
	 API_SERVICE_CONTROL, 100, api_detach_thing_principal},
	{"GET", {"things", "*", "principals"}, 3, API_OP_LIST_THING_PRINCIPALS,
	 API_SERVICE_CONTROL, 0, api_list_thing_principals},
	{"POST", {"thing-groups", "*"}, 2, API_OP_CREATE_THING_GROUP, API_SERVICE_CONTROL, 0,
	 api_create_thing_group},
	{"PUT", {"thing-groups", "addThingToThingGroup"}, 2, API_OP_ADD_THING_TO_THING_GROUP,
	 API_SERVICE_CONTROL, 0, api_add_thing_to_thing_group},
	{"POST", {"topics", "**"}, 2, API_OP_PUBLISH, API_SERVICE_DATA, 0, api_publish},
	{"DELETE", {"connections", "*"}, 2, API_OP_DELETE_CONNECTION, API_SERVICE_DATA, 0,
	 api_delete_connection},
	{"GET", {"_sim", "ground-truth"}, 2, API_OP_SIM_GROUND_TRUTH, API_SERVICE_SIM, 0,
	 api_sim_ground_truth},
	{"PUT", {"_sim", "propagation"}, 2, API_OP_SIM_PROPAGATION, API_SERVICE_SIM, 0,
	 api_sim_propagation},
	{"POST", {"_sim", "disconnect"}, 2, API_OP_SIM_DISCONNECT, API_SERVICE_SIM, 0,
	 api_sim_disconnect},
};

static const char *const op_names[API_OP__COUNT] = {
	[API_OP_CREATE_POLICY] = "CreatePolicy",
	[API_OP_GET_POLICY] = "GetPolicy",
	[API_OP_LIST_POLICIES] = "ListPolicies",
	[API_OP_DELETE_POLICY] = "DeletePolicy",
	[API_OP_CREATE_POLICY_VERSION] = "CreatePolicyVersion",
	[API_OP_SET_DEFAULT_POLICY_VERSION] = "SetDefaultPolicyVersion",
	[API_OP_LIST_POLICY_VERSIONS] = "ListPolicyVersions",
	[API_OP_GET_POLICY_VERSION] = "GetPolicyVersion",
	[API_OP_DELETE_POLICY_VERSION] = "DeletePolicyVersion",
	[API_OP_ATTACH_POLICY] = "AttachPolicy",
	[API_OP_DETACH_POLICY] = "DetachPolicy",
	[API_OP_LIST_ATTACHED_POLICIES] = "ListAttachedPolicies",
	[API_OP_LIST_TARGETS_FOR_POLICY] = "ListTargetsForPolicy",
	[API_OP_CREATE_KEYS_AND_CERTIFICATE] = "CreateKeysAndCertificate",
	[API_OP_CREATE_CERTIFICATE_FROM_CSR] = "CreateCertificateFromCsr",
	[API_OP_REGISTER_CERTIFICATE_WITHOUT_CA] = "RegisterCertificateWithoutCA",
	[API_OP_DESCRIBE_CERTIFICATE] = "DescribeCertificate",
	[API_OP_UPDATE_CERTIFICATE] = "UpdateCertificate",
	[API_OP_DELETE_CERTIFICATE] = "DeleteCertificate",
	[API_OP_DESCRIBE_ENDPOINT] = "DescribeEndpoint",
	[API_OP_CREATE_THING] = "CreateThing",
	[API_OP_DESCRIBE_THING] = "DescribeThing",
	[API_OP_DELETE_THING] = "DeleteThing",
	[API_OP_ATTACH_THING_PRINCIPAL] = "AttachThingPrincipal",
	[API_OP_DETACH_THING_PRINCIPAL] = "DetachThingPrincipal",
	[API_OP_LIST_THING_PRINCIPALS] = "ListThingPrincipals",
	[API_OP_CREATE_THING_GROUP] = "CreateThingGroup",
	[API_OP_ADD_THING_TO_THING_GROUP] = "AddThingToThingGroup",
	[API_OP_PUBLISH] = "Publish",
	[API_OP_DELETE_CONNECTION] = "DeleteConnection",
	[API_OP_SIM_GROUND_TRUTH] = "SimGroundTruth",
	[API_OP_SIM_PROPAGATION] = "SimPropagation",
	[API_OP_SIM_DISCONNECT] = "SimDisconnect",
};

const char *api_op_name(api_op op)
{
	return (unsigned)op < API_OP__COUNT ? op_names[op] : "Unknown";
}

double api_op_default_tps(api_op op)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].op == op)
			return routes[i].default_tps;
	return 0;
}

static int segments_match(const api_route *r, const api_request *req)
{
	for (size_t i = 0; i < r->segment_count; i++) {
		if (strcmp(r->segments[i], "**") == 0)
			return req->segment_count >= i + 1;
		if (i >= req->segment_count)
			return 0;
		if (strcmp(r->segments[i], "*") != 0 && strcmp(r->segments[i], req->segments[i]) != 0)
			return 0;
	}
	return req->segment_count == r->segment_count;
}

const api_route *api_route_find(const api_request *req, int *path_known)
{
	*path_known = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!segments_match(&routes[i], req))
			continue;
		*path_known = 1;
		if (strcmp(routes[i].method, req->method) == 0)
			return &routes[i];
	}
	return NULL;
}

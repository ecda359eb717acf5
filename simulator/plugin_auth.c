/*
 * Identity and authorization: the CONNECT check (basic-auth event) and the
 * publish, subscribe and delivery checks (ACL event), with AWS IoT Core's
 * reactions to a denial produced through mosquitto 2.0.11's return codes:
 *
 *   basic auth  MOSQ_ERR_AUTH       CONNACK "not authorized" (MQTT 5: 0x87)
 *               other error         connection closed without CONNACK
 *   ACL write   MOSQ_ERR_ACL_DENIED QoS 0 dropped; QoS 1 PUBACK 0x87 (MQTT 5),
 *                                   plain PUBACK (MQTT 3.1.1)
 *               other error         connection closed
 *   ACL sub     MOSQ_ERR_ACL_DENIED SUBACK 0x87 (MQTT 5) or 0x80 (3.1.1)
 *               other error         connection closed
 *   ACL read    MOSQ_ERR_ACL_DENIED delivery skipped, connection kept
 *
 * (Read from mosquitto 2.0.11: src/handle_connect.c, handle_publish.c,
 * handle_subscribe.c, subs.c, read_handle.c.) MOSQ_ERR_AUTH closes an
 * MQTT 5 connection without a DISCONNECT packet, as read_handle.c sends one
 * only for protocol, malformed, QoS, retain, alias, unknown and no-memory
 * errors.
 */
#include <string.h>

#include <openssl/x509.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/certs.h"
#include "simulator/plugin_internal.h"

/* mosquitto_client_protocol_version() reports 5 for MQTT 5. */
#define MQTT5 5

static void auth_context(plugin *p, const plugin_conn *c, const struct mosquitto *client,
			 sim_auth_context *ctx, sim_thing_attribute *attrs, size_t max_attrs)
{
	const sim_snapshot *snap = c->snapshot;
	size_t n = snap->thing_attribute_count < max_attrs ? snap->thing_attribute_count : max_attrs;

	memset(ctx, 0, sizeof(*ctx));
	ctx->region = p->cfg.region;
	ctx->account = p->cfg.account;
	ctx->client_id = c->client_id;
	ctx->cert = c->cert_fields;
	ctx->source_ip = mosquitto_client_address(client);
	ctx->thing_attached = snap->thing_attached;
	if (!snap->thing_attached)
		return;
	ctx->thing_name = snap->thing_name;
	ctx->thing_type = snap->thing_type;
	for (size_t i = 0; i < n; i++) {
		attrs[i].name = snap->thing_attributes[i].name;
		attrs[i].value = snap->thing_attributes[i].value;
	}
	ctx->thing_attributes = attrs;
	ctx->thing_attribute_count = n;
}

#define MAX_CONTEXT_ATTRIBUTES 64

static uint64_t decision_hash(sim_action action, const char *name)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)action;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return h ? h : 1;
}

/* Remembers an Allow; a slot in use is overwritten. */
static void decision_store(plugin_conn *c, uint64_t hash, sim_action action, const char *name)
{
	plugin_decision *slot = &c->decisions[hash % PLUGIN_DECISION_SLOTS];
	char *copy = strdup(name);

	if (!copy)
		return;
	free(slot->name);
	slot->name = copy;
	slot->hash = hash;
	slot->action = action;
}

/*
 * Evaluates one action against the connection's snapshot and logs a
 * denial. Returns 1 when allowed. Allows are remembered per connection,
 * because probes repeat the same few topics at high rates.
 */
static int authorize(plugin *p, plugin_conn *c, const struct mosquitto *client,
		     const char *event_type, sim_action action, const char *name)
{
	sim_thing_attribute attrs[MAX_CONTEXT_ATTRIBUTES];
	sim_policy_explanation why;
	sim_auth_context ctx;
	sim_decision d;
	uint64_t hash = decision_hash(action, name);
	const plugin_decision *known = &c->decisions[hash % PLUGIN_DECISION_SLOTS];

	if (known->hash == hash && known->action == action && strcmp(known->name, name) == 0)
		return 1;
	auth_context(p, c, client, &ctx, attrs, MAX_CONTEXT_ATTRIBUTES);
	d = sim_policy_evaluate(c->set, c->snapshot->entry_count, action, name, &ctx);
	if (d == SIM_DECISION_ALLOW) {
		decision_store(c, hash, action, name);
		return 1;
	}
	sim_policy_explain(c->set, c->snapshot->entry_count, action, name, &ctx, &why);
	plugin_log_denial(p, c, client, event_type, action, name, "AUTHORIZATION_FAILURE", &why);
	return 0;
}

/* Reads the client certificate's id and subject/issuer fields. */
static int conn_identify(plugin_conn *c, struct mosquitto *client)
{
	X509 *cert = mosquitto_client_certificate(client);
	unsigned char *der = NULL;
	int len;

	if (!cert)
		return -1;
	len = i2d_X509(cert, &der);
	if (len > 0) {
		sim_certs_id_from_der(der, (size_t)len, c->cert_id);
		OPENSSL_free(der);
	}
	if (len <= 0 || sim_cert_fields_from_x509(cert, &c->cert_fields, NULL) != PL_OK) {
		X509_free(cert);
		return -1;
	}
	X509_free(cert);
	return 0;
}

/* The CONNECT-time quotas; returns the reason for a rejection or NULL. */
static const char *connect_quota(plugin *p, const char *client_id, int64_t now)
{
	if (p->cfg.client_id_max > 0 && (int64_t)strlen(client_id) > p->cfg.client_id_max)
		return "CLIENT_ID_TOO_LONG";
	if (!sim_quota_take(&p->account_connect_bucket, now))
		return "THROTTLED_ACCOUNT_CONNECT_RATE";
	if (p->client_connect_table && !sim_quota_table_take(p->client_connect_table, client_id, now))
		return "THROTTLED_CLIENT_CONNECT_RATE";
	return NULL;
}

/* Checks certificate, quotas and iot:Connect; returns a mosquitto code. */
static int connect_check(plugin *p, plugin_conn *c, struct mosquitto *client)
{
	const char *quota;
	int v5 = c->protocol_version == MQTT5;

	if (conn_identify(c, client) != 0 || plugin_conn_snapshot(p, c, "connect") != PL_OK)
		return MOSQ_ERR_UNKNOWN;
	/* NOTE: AWS fails unknown and non-ACTIVE certificates in the TLS
	 * handshake. mosquitto has finished the handshake before this event,
	 * so the nearest reaction is a close without CONNACK. */
	if (!c->snapshot->cert_found || c->snapshot->cert_status != SIM_CERT_ACTIVE) {
		if (c->snapshot->cert_found)
			p->counters.inactive_cert++;
		else
			p->counters.unknown_cert++;
		plugin_log_denial(p, c, client, "Connect", SIM_ACTION_CONNECT, c->client_id,
				  c->snapshot->cert_found ? "CERTIFICATE_NOT_ACTIVE"
							  : "CERTIFICATE_UNKNOWN", NULL);
		return MOSQ_ERR_UNKNOWN;
	}
	quota = connect_quota(p, c->client_id, c->connect_mono_ns);
	if (quota) {
		p->counters.throttled_connect++;
		plugin_log_denial(p, c, client, "Connect", SIM_ACTION_CONNECT, c->client_id, quota,
				  NULL);
		return MOSQ_ERR_UNKNOWN;
	}
	if (!authorize(p, c, client, "Connect", SIM_ACTION_CONNECT, c->client_id)) {
		p->counters.connect_denied++;
		plugin_event_connect_failed(p, c, client);
		return v5 ? MOSQ_ERR_AUTH : MOSQ_ERR_UNKNOWN;
	}
	return MOSQ_ERR_SUCCESS;
}

int plugin_on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ev = event_data;
	plugin *p = userdata;
	plugin_conn *c = plugin_conn_find(p, ev->client);
	const char *client_id = mosquitto_client_id(ev->client);
	int rc;

	(void)event;
	p->counters.connects++;
	/* A second CONNECT on one network connection is a protocol error that
	 * mosquitto rejects before this event, so an entry for this client
	 * pointer is a closed connection whose memory mosquitto reused. */
	if (c)
		plugin_conn_discard(p, c);
	if (plugin_conn_add(p, ev->client, &c) != PL_OK)
		return MOSQ_ERR_NOMEM;
	c->client_id = strdup(client_id ? client_id : "");
	c->protocol_version = mosquitto_client_protocol_version(ev->client);
	if (!c->client_id)
		return MOSQ_ERR_NOMEM;
	rc = connect_check(p, c, ev->client);
	c->authorized = rc == MOSQ_ERR_SUCCESS;
	if (c->authorized)
		plugin_event_connected(p, c, ev->client);
	return rc;
}

/* Topic length and depth limits; returns 1 when the topic is within them. */
static int topic_within_limits(const plugin *p, const char *topic)
{
	int64_t slashes = 0;
	size_t len = strlen(topic);

	if (p->cfg.topic_max_bytes > 0 && (int64_t)len > p->cfg.topic_max_bytes)
		return 0;
	if (p->cfg.topic_max_slashes < 0)
		return 1;
	for (const char *s = topic; *s; s++)
		slashes += *s == '/';
	return slashes <= p->cfg.topic_max_slashes;
}

static int check_write(plugin *p, plugin_conn *c, struct mosquitto_evt_acl_check *ev,
		       int64_t now)
{
	int v5 = c->protocol_version == MQTT5;
	int deny_rc = v5 && (ev->qos > 0 || p->cfg.mqtt5_publish_qos0_denied == QOS0_DENY_DROP)
			      ? MOSQ_ERR_ACL_DENIED
			      : MOSQ_ERR_AUTH;

	if (!topic_within_limits(p, ev->topic) ||
	    (p->cfg.payload_max > 0 && ev->payloadlen > p->cfg.payload_max)) {
		/* AWS closes the connection (lifecycle reason CLIENT_ERROR). */
		p->counters.size_rejected++;
		c->close_reason = PLUGIN_CLIENT_ERROR;
		plugin_log_denial(p, c, ev->client, "Publish-In", SIM_ACTION_PUBLISH, ev->topic,
				  "CLIENT_ERROR", NULL);
		return MOSQ_ERR_AUTH;
	}
	if (!sim_quota_take(&c->publish_bucket, now)) {
		/* AWS discards publishes over the per-connection rate. NOTE: a
		 * QoS 1 publish on MQTT 5 gets PUBACK 0x87, where AWS may use 0x97. */
		p->counters.throttled_publish++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if (!authorize(p, c, ev->client, "Publish-In", SIM_ACTION_PUBLISH, ev->topic) ||
	    (ev->retain &&
	     !authorize(p, c, ev->client, "Publish-In", SIM_ACTION_RETAIN_PUBLISH, ev->topic))) {
		p->counters.publish_denied++;
		if (deny_rc == MOSQ_ERR_AUTH)
			c->close_reason = PLUGIN_AUTH_ERROR;
		return deny_rc;
	}
	return MOSQ_ERR_SUCCESS;
}

static int check_subscribe(plugin *p, plugin_conn *c, struct mosquitto_evt_acl_check *ev)
{
	int v5 = c->protocol_version == MQTT5;
	int deny_rc = v5 || p->cfg.mqtt311_subscribe_denied == SUB_DENY_SUBACK_FAILURE
			      ? MOSQ_ERR_ACL_DENIED
			      : MOSQ_ERR_AUTH;

	/* Filters of one SUBSCRIBE are checked within one broker-loop pass.
	 * NOTE: two SUBSCRIBE packets read in the same pass count together. */
	if (c->sub_burst_tick != p->tick_number) {
		c->sub_burst_tick = p->tick_number;
		c->sub_burst_count = 0;
	}
	c->sub_burst_count++;
	if ((p->cfg.subscriptions_per_request > 0 &&
	     c->sub_burst_count > p->cfg.subscriptions_per_request) ||
	    (p->cfg.subscriptions_per_connection > 0 &&
	     mosquitto_client_sub_count(ev->client) >= p->cfg.subscriptions_per_connection)) {
		p->counters.throttled_subscribe++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if (!topic_within_limits(p, ev->topic)) {
		p->counters.size_rejected++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if (!authorize(p, c, ev->client, "Subscribe", SIM_ACTION_SUBSCRIBE, ev->topic)) {
		p->counters.subscribe_denied++;
		if (deny_rc == MOSQ_ERR_AUTH)
			c->close_reason = PLUGIN_AUTH_ERROR;
		return deny_rc;
	}
	return MOSQ_ERR_SUCCESS;
}

static int check_read(plugin *p, plugin_conn *c, struct mosquitto_evt_acl_check *ev,
		      int64_t now)
{
	if (!sim_quota_take(&c->publish_bucket, now)) {
		p->counters.throttled_publish++;
		return MOSQ_ERR_ACL_DENIED;
	}
	if (!authorize(p, c, ev->client, "Publish-Out", SIM_ACTION_RECEIVE, ev->topic)) {
		p->counters.receive_denied++;
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_SUCCESS;
}

/* The will of a closed connection needs iot:Publish (and iot:RetainPublish). */
static int check_will(plugin *p, plugin_conn *c, struct mosquitto_evt_acl_check *ev)
{
	/* mosquitto sends the will only when the client did not send DISCONNECT. */
	c->will_checked = 1;
	if (!authorize(p, c, ev->client, "Publish-In", SIM_ACTION_PUBLISH, ev->topic) ||
	    (ev->retain &&
	     !authorize(p, c, ev->client, "Publish-In", SIM_ACTION_RETAIN_PUBLISH, ev->topic))) {
		p->counters.publish_denied++;
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_SUCCESS;
}

int plugin_on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = event_data;
	plugin *p = userdata;
	plugin_conn *c = plugin_conn_find(p, ev->client);
	int64_t now = pl_mono_ns();

	(void)event;
	/* NOTE: messages for a disconnected persistent session have no
	 * connection entry and are denied, so they are not queued. */
	if (!c || !c->authorized || !c->snapshot)
		return MOSQ_ERR_ACL_DENIED;
	/* After the disconnect event only the will is published. NOTE: a will
	 * with a delay interval is checked after the entry is gone and denied. */
	if (c->closed)
		return ev->access == MOSQ_ACL_WRITE ? check_will(p, c, ev) : MOSQ_ERR_ACL_DENIED;
	plugin_conn_maybe_refresh(p, c, now);
	switch (ev->access) {
	case MOSQ_ACL_WRITE:
		return check_write(p, c, ev, now);
	case MOSQ_ACL_SUBSCRIBE:
		return check_subscribe(p, c, ev);
	case MOSQ_ACL_READ:
		return check_read(p, c, ev, now);
	default:
		/* Unsubscribing needs no permission in AWS IoT. */
		return MOSQ_ERR_SUCCESS;
	}
}

int plugin_on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ev = event_data;
	plugin *p = userdata;
	plugin_conn *c = plugin_conn_find(p, ev->client);

	(void)event;
	if (c) {
		plugin_event_disconnect(p, c, ev->reason);
		plugin_conn_close(p, c);
	}
	return MOSQ_ERR_SUCCESS;
}

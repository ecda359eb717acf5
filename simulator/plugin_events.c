/*
 * AWS IoT Core lifecycle events: the broker publishes JSON to
 *
 *   $aws/events/presence/connected/<client id>       a connection was accepted
 *   $aws/events/presence/disconnected/<client id>    that connection ended
 *   $aws/events/presence/connect_failed/<client id>  iot:Connect was denied
 *
 * with clientId, timestamp (ms since the epoch), eventType,
 * sessionIdentifier (one per connection), principalIdentifier (the
 * certificate id), ipAddress (connected and connect_failed), versionNumber
 * (shared by the connect and disconnect of one connection, growing per
 * client id), and on disconnect clientInitiatedDisconnect and
 * disconnectReason. Client ids containing '#' or '+' get no events.
 *
 * Events go through mosquitto_broker_publish, so each subscriber's
 * iot:Subscribe and iot:Receive are checked as for any other message.
 *
 * disconnectReason: the plugin records the reason of every close it causes
 * (close_reason). For other closes mosquitto 2.0.11 gives no reason, because
 * it runs the disconnect event with reason -1 whatever the cause
 * (src/context.c, context__disconnect). The plugin then waits for the next
 * tick: when mosquitto sent the connection's will after the close, the
 * client did not send DISCONNECT (CONNECTION_LOST); otherwise the close
 * counts as CLIENT_INITIATED_DISCONNECT. A broker that passes a reason code
 * (>= 0) is mapped directly.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/log.h"
#include "simulator/plugin_internal.h"
#include "simulator/propagation.h"

const char PLUGIN_AUTH_ERROR[] = "AUTH_ERROR";
const char PLUGIN_CLIENT_ERROR[] = "CLIENT_ERROR";
const char PLUGIN_DUPLICATE_CLIENTID[] = "DUPLICATE_CLIENTID";
const char PLUGIN_API_INITIATED_DISCONNECT[] = "API_INITIATED_DISCONNECT";

static const char CLIENT_INITIATED[] = "CLIENT_INITIATED_DISCONNECT";
static const char CONNECTION_LOST[] = "CONNECTION_LOST";

static int publishes_events(const plugin *p, const char *client_id)
{
	return p->cfg.lifecycle_events && strpbrk(client_id, "#+") == NULL;
}

static void session_id_new(plugin *p, char out[33])
{
	uint64_t hi = sim_rng_next(&p->session_rng);
	uint64_t lo = sim_rng_next(&p->session_rng);

	snprintf(out, 33, "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
}

/* The fields every event has. */
static json_t *event_new(const plugin_conn *c, const char *event_type)
{
	return json_pack("{s:s,s:I,s:s,s:s,s:s}", "clientId", c->client_id, "timestamp",
			 (json_int_t)(pl_wall_ns() / 1000000), "eventType", event_type,
			 "sessionIdentifier", c->session_id, "principalIdentifier", c->cert_id);
}

/* Publishes obj (reference stolen) to $aws/events/presence/<kind>/<client id>. */
static void event_publish(const plugin_conn *c, const char *kind, json_t *obj)
{
	size_t topic_len = strlen("$aws/events/presence//") + strlen(kind) + strlen(c->client_id) + 1;
	char *topic = malloc(topic_len);
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

	if (topic && text) {
		snprintf(topic, topic_len, "$aws/events/presence/%s/%s", kind, c->client_id);
		if (mosquitto_broker_publish_copy(NULL, topic, (int)strlen(text), text, 0, false,
						  NULL) != MOSQ_ERR_SUCCESS)
			PL_WARN("sim", "lifecycle event %s of client %s not published", kind,
				c->client_id);
	} else {
		PL_WARN("sim", "lifecycle event %s of client %s not published: out of memory",
			kind, c->client_id);
	}
	free(text);
	free(topic);
	json_decref(obj);
}

static void object_set(json_t *obj, const char *key, json_t *value)
{
	if (obj)
		json_object_set_new(obj, key, value);
	else
		json_decref(value);
}

static void publish_disconnected(plugin_conn *c, const char *reason)
{
	json_t *obj = event_new(c, "disconnected");

	object_set(obj, "clientInitiatedDisconnect", json_boolean(reason == CLIENT_INITIATED));
	object_set(obj, "disconnectReason", json_string(reason));
	object_set(obj, "versionNumber", json_integer((json_int_t)c->version));
	event_publish(c, "disconnected", obj);
	c->announced = 0;
	c->disconnect_pending = 0;
}

/*
 * Marks the other open connections of c's client id as taken over
 * (DUPLICATE_CLIENTID) and publishes their disconnected events now, before
 * c's connected event, so that the client id's last event shows it connected.
 */
static void mark_taken_over(plugin *p, const plugin_conn *c)
{
	for (plugin_conn *o = p->conns; o; o = o->next) {
		if (o == c || !o->authorized || o->closed || o->close_reason ||
		    strcmp(o->client_id, c->client_id) != 0)
			continue;
		o->close_reason = PLUGIN_DUPLICATE_CLIENTID;
		if (o->announced)
			publish_disconnected(o, PLUGIN_DUPLICATE_CLIENTID);
	}
}

void plugin_event_connected(plugin *p, plugin_conn *c, const struct mosquitto *client)
{
	const char *address = mosquitto_client_address(client);
	int64_t others = 0;
	json_t *obj;

	if (sim_presence_connect(p->presence, c->client_id, &c->version, &others) == PL_OK)
		c->present = 1;
	/* mosquitto closes the older connection right after this event returns. */
	if (others > 0)
		mark_taken_over(p, c);
	if (!publishes_events(p, c->client_id))
		return;
	session_id_new(p, c->session_id);
	obj = event_new(c, "connected");
	object_set(obj, "ipAddress", json_string(address ? address : ""));
	object_set(obj, "versionNumber", json_integer((json_int_t)c->version));
	event_publish(c, "connected", obj);
	c->announced = 1;
}

void plugin_event_connect_failed(plugin *p, plugin_conn *c, const struct mosquitto *client)
{
	const char *address = mosquitto_client_address(client);
	json_t *obj;

	if (!publishes_events(p, c->client_id))
		return;
	session_id_new(p, c->session_id);
	obj = event_new(c, "connect_failed");
	object_set(obj, "connectFailureReason", json_string("AUTHORIZATION_FAILED"));
	object_set(obj, "ipAddress", json_string(address ? address : ""));
	event_publish(c, "connect_failed", obj);
}

/* AWS's disconnectReason for a mosquitto MOSQ_ERR_* close reason; NULL when unknown (< 0). */
static const char *reason_from_mosquitto(int reason)
{
	switch (reason) {
	case MOSQ_ERR_SUCCESS:
		return CLIENT_INITIATED;
	case MOSQ_ERR_CONN_LOST:
	case MOSQ_ERR_ERRNO:
	case MOSQ_ERR_TLS:
		return CONNECTION_LOST;
	case MOSQ_ERR_KEEPALIVE:
		return "MQTT_KEEP_ALIVE_TIMEOUT";
	case MOSQ_ERR_AUTH:
	case MOSQ_ERR_ACL_DENIED:
		return PLUGIN_AUTH_ERROR;
	case MOSQ_ERR_PROTOCOL:
	case MOSQ_ERR_MALFORMED_PACKET:
	case MOSQ_ERR_MALFORMED_UTF8:
	case MOSQ_ERR_DUPLICATE_PROPERTY:
	case MOSQ_ERR_OVERSIZE_PACKET:
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_NOT_SUPPORTED:
	case MOSQ_ERR_QOS_NOT_SUPPORTED:
	case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
	case MOSQ_ERR_TOPIC_ALIAS_INVALID:
		return PLUGIN_CLIENT_ERROR;
	case MOSQ_ERR_ADMINISTRATIVE_ACTION:
		return "SERVER_INITIATED_DISCONNECT";
	default:
		return reason < 0 ? NULL : "SERVER_ERROR";
	}
}

void plugin_event_disconnect(plugin *p, plugin_conn *c, int mosquitto_reason)
{
	const char *reason;

	if (c->present) {
		sim_presence_disconnect(p->presence, c->client_id);
		c->present = 0;
	}
	if (!c->announced || c->closed)
		return;
	reason = c->close_reason ? c->close_reason : reason_from_mosquitto(mosquitto_reason);
	if (reason)
		publish_disconnected(c, reason);
	else
		c->disconnect_pending = 1; /* decided by plugin_event_closed_flush */
}

void plugin_event_closed_flush(plugin_conn *c)
{
	/* NOTE: a will with a delay interval is not sent at the close, and an
	 * MQTT 5 DISCONNECT with reason 0x04 requests the will, so those two
	 * cases get the other reason. Under mosquitto 2.0.11 a keep-alive timeout
	 * looks like a lost connection, and a lost connection without a will
	 * looks like a DISCONNECT. */
	if (c->disconnect_pending)
		publish_disconnected(c, c->will_checked ? CONNECTION_LOST : CLIENT_INITIATED);
}

plugin_conn *plugin_conn_find_client_id(plugin *p, const char *client_id)
{
	for (plugin_conn *c = p->conns; c; c = c->next)
		if (c->authorized && !c->closed && strcmp(c->client_id, client_id) == 0)
			return c;
	return NULL;
}

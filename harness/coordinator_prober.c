/* The data-plane prober: probes published with the Publish API (probe.via http). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi.h"
#include "harness/coordinator.h"

#define COMPONENT "prober"

/* The device index a shared-topic probe names: every device (the workers' MQ_SHARED_PROBE). */
#define SHARED_PROBE_DEVICE UINT32_MAX

static void publish_probe(coordinator *c, awsapi_client *client, const char *topic,
			  uint32_t device, uint64_t seq)
{
	char payload[64];
	pl_errmsg e = { "" };
	int64_t t_send = pl_mono_ns();
	int n = snprintf(payload, sizeof(payload), "pl1 %" PRIu32 " %" PRIu64 " %" PRId64, device,
			 seq, t_send);

	if (awsapi_publish(client, topic, payload, (size_t)n, c->prof->probe.qos, 0, NULL, &e) ==
	    PL_OK) {
		c->http_probes_sent++;
		return;
	}
	if (c->http_probe_failures++ == 0)
		PL_WARN(COMPONENT, "data-plane Publish to %s failed: %s (later failures are counted "
			"in run.json)", topic, e.msg);
}

/*
 * Publishes one round: every device's topic once, or the shared topic once.
 * Every probe of a round has the round's sequence number, so a worker can
 * date a device's next probe one interval after the last it received.
 */
static void probe_round(coordinator *c, awsapi_client *client, uint64_t seq, int64_t round_ns)
{
	const profile *p = c->prof;
	int64_t start = pl_mono_ns();

	if (p->probe.shared_topic) {
		publish_probe(c, client, p->probe.topic, SHARED_PROBE_DEVICE, seq);
		return;
	}
	for (uint32_t i = 0; i < c->ndevices && !c->http_prober_stop; i++) {
		/* Spread the round over the interval instead of sending bursts. */
		int64_t due = start + round_ns * i / c->ndevices;

		pl_sleep_ns(due - pl_mono_ns());
		publish_probe(c, client, c->devices[i].probe_topic, c->devices[i].index, seq);
	}
}

static void *prober_main(void *arg)
{
	coordinator *c = arg;
	int64_t interval = c->prof->probe.interval_ns;
	awsapi_client *client = NULL;
	pl_errmsg e = { "" };
	uint64_t seq = 1;

	if (awsapi_client_create(&client, c->api, &e) != PL_OK) {
		PL_ERROR(COMPONENT, "cannot start the data-plane prober: %s", e.msg);
		return NULL;
	}
	while (!c->http_prober_stop) {
		int64_t next = pl_mono_ns() + interval;

		probe_round(c, client, seq++, interval);
		pl_sleep_ns(next - pl_mono_ns());
	}
	awsapi_client_free(client);
	return NULL;
}

pl_err coord_http_prober_start(coordinator *c, pl_errmsg *e)
{
	const profile *p = c->prof;

	if (p->probe.kind != PROFILE_PROBE_PROBER || p->probe.via != PROFILE_PROBE_VIA_HTTP ||
	    c->http_prober_running)
		return PL_OK;
	c->http_prober_stop = 0;
	if (pthread_create(&c->http_prober, NULL, prober_main, c) != 0)
		return pl_errmsg_set(e, PL_ERR_INTERNAL, "cannot start the prober thread");
	c->http_prober_running = 1;
	COORD_LOG(c, PL_LOG_INFO, "publishing probes through the data-plane Publish API every %lld ms",
		(long long)(p->probe.interval_ns / PL_NS_PER_MS));
	return PL_OK;
}

void coord_http_prober_stop(coordinator *c)
{
	if (!c->http_prober_running)
		return;
	c->http_prober_stop = 1;
	pthread_join(c->http_prober, NULL);
	c->http_prober_running = 0;
	COORD_LOG(c, PL_LOG_INFO, "data-plane prober stopped: %llu probes sent, %llu failed",
		(unsigned long long)c->http_probes_sent,
		(unsigned long long)c->http_probe_failures);
}

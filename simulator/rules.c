/*
 * The optional topic rule: attach/detach policies for the publishing
 * certificate and publish a response, on the broker thread.
 */
#include "simulator/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"
#include "simulator/state.h"

#define RULE_MAX_POLICIES 10
#define RULE_MAX_FIRED 65536

struct sim_rules {
	char *topic;
	char *attach[RULE_MAX_POLICIES];
	size_t attach_count;
	char *detach[RULE_MAX_POLICIES];
	size_t detach_count;
	char *response_topic;
	char *response_payload;
	int response_qos;
	int once;
	char **fired; /* certificate ids the rule already ran for (rule_once) */
	size_t fired_count;
};

pl_err sim_rules_create(sim_rules **out)
{
	sim_rules *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return PL_ERR_NOMEM;
	r->once = 1;
	r->response_payload = strdup("{\"swapped\":true}");
	if (r->response_payload == NULL) {
		free(r);
		return PL_ERR_NOMEM;
	}
	*out = r;
	return PL_OK;
}

static void free_list(char **list, size_t *count)
{
	for (size_t i = 0; i < *count; i++)
		free(list[i]);
	*count = 0;
}

void sim_rules_free(sim_rules *r)
{
	if (r == NULL)
		return;
	free(r->topic);
	free_list(r->attach, &r->attach_count);
	free_list(r->detach, &r->detach_count);
	free(r->response_topic);
	free(r->response_payload);
	free_list(r->fired, &r->fired_count);
	free(r->fired);
	free(r);
}

/* Splits "a,b,c" into list; empty names and more than the limit are errors. */
static pl_err set_list(char **list, size_t *count, const char *key, const char *value,
		       pl_errmsg *e)
{
	const char *p = value;

	free_list(list, count);
	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		if (len == 0 || *count == RULE_MAX_POLICIES) {
			free_list(list, count);
			return pl_errmsg_set(e, PL_ERR_INVALID,
					     "%s: expected 1 to %d comma-separated policy names",
					     key, RULE_MAX_POLICIES);
		}
		list[*count] = strndup(p, len);
		if (list[*count] == NULL)
			return PL_ERR_NOMEM;
		(*count)++;
		p += len;
		if (*p == ',')
			p++;
	}
	return PL_OK;
}

static pl_err set_string(char **dst, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return PL_ERR_NOMEM;
	free(*dst);
	*dst = copy;
	return PL_OK;
}

pl_err sim_rules_option(sim_rules *r, const char *key, const char *value, pl_errmsg *e)
{
	int64_t qos;

	if (strcmp(key, "rule_topic") == 0)
		return set_string(&r->topic, value);
	if (strcmp(key, "rule_attach") == 0)
		return set_list(r->attach, &r->attach_count, key, value, e);
	if (strcmp(key, "rule_detach") == 0)
		return set_list(r->detach, &r->detach_count, key, value, e);
	if (strcmp(key, "rule_response_topic") == 0)
		return set_string(&r->response_topic, value);
	if (strcmp(key, "rule_response_payload") == 0)
		return set_string(&r->response_payload, value);
	if (strcmp(key, "rule_response_qos") == 0) {
		if (pl_parse_int64(value, 0, 1, &qos, e) != PL_OK) {
			pl_errmsg_prefix(e, "%s", key);
			return PL_ERR_INVALID;
		}
		r->response_qos = (int)qos;
		return PL_OK;
	}
	if (strcmp(key, "rule_once") == 0) {
		if (pl_parse_bool(value, &r->once, e) != PL_OK) {
			pl_errmsg_prefix(e, "%s", key);
			return PL_ERR_INVALID;
		}
		return PL_OK;
	}
	return pl_errmsg_set(e, PL_ERR_INVALID, "unknown option '%s'", key);
}

int sim_rules_enabled(const sim_rules *r)
{
	return r != NULL && r->topic != NULL;
}

/* MQTT topic filter matching: '+' one level, '#' the rest (including the parent). */
static int topic_matches(const char *filter, const char *topic)
{
	while (*filter != '\0') {
		if (*filter == '#')
			return 1;
		if (*filter == '+') {
			topic += strcspn(topic, "/");
			filter++;
		} else {
			if (*topic != *filter)
				return 0;
			topic++;
			filter++;
		}
		if (*topic == '\0' && strcmp(filter, "/#") == 0)
			return 1;
	}
	return *topic == '\0';
}

static int already_fired(const sim_rules *r, const char *cert_id)
{
	for (size_t i = 0; i < r->fired_count; i++)
		if (strcmp(r->fired[i], cert_id) == 0)
			return 1;
	return 0;
}

static void remember(sim_rules *r, const char *cert_id)
{
	char **grown;
	char *copy;

	/* Bounded: past the limit, further certificates get their policies set again on
	 * every trigger, which attach and detach tolerate. */
	if (r->fired_count == RULE_MAX_FIRED)
		return;
	grown = realloc(r->fired, (r->fired_count + 1) * sizeof(*r->fired));
	copy = strdup(cert_id);
	if (grown == NULL || copy == NULL) {
		free(copy);
		if (grown != NULL)
			r->fired = grown;
		return;
	}
	r->fired = grown;
	r->fired[r->fired_count++] = copy;
}

/* Applies the attach and detach lists to the certificate and saves. 0 on failure. */
static int swap_policies(sim_rules *r, sim_state *st, const char *cert_id)
{
	char arn[512];
	pl_errmsg e;
	pl_err err = PL_OK;

	pl_errmsg_clear(&e);
	sim_state_arn(st, "cert", cert_id, arn, sizeof(arn));
	sim_state_lock(st);
	for (size_t i = 0; err == PL_OK && i < r->attach_count; i++)
		err = sim_state_attach(st, r->attach[i], arn, &e);
	for (size_t i = 0; err == PL_OK && i < r->detach_count; i++) {
		/* Repeated triggers detach again: a policy already detached is not an error. */
		err = sim_state_detach(st, r->detach[i], arn, &e);
		if (err == PL_ERR_NOT_FOUND && sim_state_policy_find(st, r->detach[i]) != NULL)
			err = PL_OK;
	}
	if (err == PL_OK)
		err = sim_state_save(st, &e);
	sim_state_unlock(st);
	if (err != PL_OK)
		PL_WARN("rules", "rule on %s for certificate %.12s failed: %s", r->topic, cert_id,
			e.msg);
	return err == PL_OK;
}

/* Replaces "${clientid}" in the response topic with the publisher's client id. */
static void response_topic(const sim_rules *r, const char *client_id, char *buf, size_t len)
{
	const char *mark = strstr(r->response_topic, "${clientid}");

	if (mark == NULL) {
		snprintf(buf, len, "%s", r->response_topic);
		return;
	}
	snprintf(buf, len, "%.*s%s%s", (int)(mark - r->response_topic), r->response_topic,
		 client_id != NULL ? client_id : "", mark + strlen("${clientid}"));
}

int sim_rules_on_publish(sim_rules *r, sim_state *st, const char *topic, const char *cert_id,
			 const char *client_id,
			 void (*publish)(void *ctx, const char *topic, const void *payload,
					 size_t len, int qos),
			 void *ctx)
{
	char out_topic[512];

	if (!sim_rules_enabled(r) || cert_id == NULL || !topic_matches(r->topic, topic))
		return 0;
	if (!r->once || !already_fired(r, cert_id)) {
		if (!swap_policies(r, st, cert_id))
			return -1;
		if (r->once)
			remember(r, cert_id);
	}
	if (r->response_topic != NULL && publish != NULL) {
		response_topic(r, client_id, out_topic, sizeof(out_topic));
		publish(ctx, out_topic, r->response_payload, strlen(r->response_payload),
			r->response_qos);
	}
	return 1;
}

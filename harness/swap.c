#include "harness/swap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "harness/awsapi.h"
#include "harness/swap_trigger.h"

#define COMPONENT "swap"

/* One sequence of calls: one certificate, or the one shared policy. */
typedef struct swap_job {
	coordinator *c;
	uint32_t device; /* index into c->devices, or UINT32_MAX for every device */
	const char *target; /* certificate ARN (attach-detach) */
} swap_job;

unsigned swap_calls_per_job(const profile *p)
{
	switch (p->swap.kind) {
	case PROFILE_SWAP_ATTACH_DETACH:
		return (unsigned)(p->after_count + p->before_count);
	case PROFILE_SWAP_POLICY_VERSION:
		return 2;
	default:
		return 1; /* one trigger publish */
	}
}

/* Writes one swap_call event with what the call took. */
static void call_event(coordinator *c, const swap_job *j, const awsapi_call *call,
		       const char *policy, pl_err err, const pl_errmsg *e)
{
	char fields[PL_ERRMSG_MAX + 384];
	char policy_json[160];
	char error_json[PL_ERRMSG_MAX + 16];
	const char *device = j->device == UINT32_MAX ? NULL : c->devices[j->device].name;

	rundir_json_string(policy_json, sizeof(policy_json), policy);
	rundir_json_string(error_json, sizeof(error_json), err == PL_OK ? "" : e->msg);
	snprintf(fields, sizeof(fields),
		 "\"op\":\"%s\",\"policy\":%s,\"t_sent_ns\":%lld,\"t_done_ns\":%lld,"
		 "\"attempts\":%d,\"throttled\":%d,\"http_status\":%ld,\"ok\":%s,\"error\":%s",
		 awsapi_op_name(call->op), policy_json,
		 (long long)rundir_relative(c->rd, call->t_first_sent_ns),
		 (long long)rundir_relative(c->rd, call->t_done_ns), call->attempts, call->throttled, call->http_status,
		 err == PL_OK ? "true" : "false", error_json);
	coord_event(c, call->t_first_sent_ns, "swap_call", device, fields);
	if (call->throttled > 0) {
		char throttle[128];

		snprintf(throttle, sizeof(throttle), "\"op\":\"control\",\"operation\":\"%s\",\"count\":%d",
			 awsapi_op_name(call->op), call->throttled);
		coord_event(c, call->t_done_ns, "throttle", device, throttle);
	}
}

static void push(coordinator *c, const swap_job *j, int kind, int64_t t_ns, int64_t t_change)
{
	coord_swap_note n = { j->device, kind, t_ns, t_change, 0 };

	coord_push_note(c, &n);
}

/* Reports a failed call: logs it and ends the job's swap as failed. */
static void fail(coordinator *c, const swap_job *j, const pl_errmsg *e)
{
	const char *device = j->device == UINT32_MAX ? "all devices" : c->devices[j->device].name;

	PL_ERROR(COMPONENT, "swap for %s failed: %s", device, e->msg);
	push(c, j, -1, pl_mono_ns(), RUNDIR_TIME_UNKNOWN);
}

/*
 * Tracks a job's calls: the first sent time is t_swap_start (reported at
 * once so detection can start), the change time is the first call that
 * changes access for the swap's direction.
 */
typedef struct job_clock {
	int started;
	int64_t t_change;
	int64_t t_last_done;
} job_clock;

static void note_call(coordinator *c, const swap_job *j, job_clock *clk,
		      const awsapi_call *call, int changes_access)
{
	if (!clk->started) {
		clk->started = 1;
		push(c, j, WP_SWAP_STARTED, call->t_first_sent_ns,
		     changes_access ? call->t_first_sent_ns : RUNDIR_TIME_UNKNOWN);
	}
	if (changes_access && clk->t_change == RUNDIR_TIME_UNKNOWN)
		clk->t_change = call->t_first_sent_ns;
	clk->t_last_done = call->t_done_ns;
}

static void attach_detach_job(awsapi_client *client, void *arg)
{
	swap_job *j = arg;
	coordinator *c = j->c;
	const profile *p = c->prof;
	int grant = p->swap.direction == PROFILE_SWAP_GRANT;
	job_clock clk = { 0, RUNDIR_TIME_UNKNOWN, 0 };
	pl_errmsg e = { "" };
	awsapi_call call;
	pl_err err;

	if (client == NULL) {
		pl_errmsg_set(&e, PL_ERR_INTERRUPTED, "the swap was cancelled");
		fail(c, j, &e);
		return;
	}
	for (size_t i = 0; i < p->after_count; i++) {
		memset(&call, 0, sizeof(call));
		err = awsapi_attach_policy(client, p->after[i].name, j->target, &call, &e);
		call_event(c, j, &call, p->after[i].name, err, &e);
		if (err != PL_OK)
			goto failed;
		note_call(c, j, &clk, &call, grant);
	}
	for (size_t i = 0; i < p->before_count; i++) {
		memset(&call, 0, sizeof(call));
		err = awsapi_detach_policy(client, p->before[i].name, j->target, &call, &e);
		call_event(c, j, &call, p->before[i].name, err, &e);
		if (err != PL_OK)
			goto failed;
		note_call(c, j, &clk, &call, !grant);
	}
	push(c, j, WP_SWAP_DONE, clk.t_last_done, clk.t_change);
	return;
failed:
	fail(c, j, &e);
}

static void policy_version_job(awsapi_client *client, void *arg)
{
	swap_job *j = arg;
	coordinator *c = j->c;
	const profile *p = c->prof;
	job_clock clk = { 0, RUNDIR_TIME_UNKNOWN, 0 };
	char version[16] = "";
	pl_errmsg e = { "" };
	awsapi_call call;
	pl_err err;

	if (client == NULL) {
		pl_errmsg_set(&e, PL_ERR_INTERRUPTED, "the swap was cancelled");
		fail(c, j, &e);
		return;
	}
	memset(&call, 0, sizeof(call));
	err = awsapi_create_policy_version(client, p->before[0].name, p->after[0].document, 0,
					   version, sizeof(version), &call, &e);
	call_event(c, j, &call, p->before[0].name, err, &e);
	if (err != PL_OK)
		goto failed;
	note_call(c, j, &clk, &call, 0);
	memset(&call, 0, sizeof(call));
	err = awsapi_set_default_policy_version(client, p->before[0].name, version, &call, &e);
	call_event(c, j, &call, p->before[0].name, err, &e);
	if (err != PL_OK)
		goto failed;
	note_call(c, j, &clk, &call, 1);
	push(c, j, WP_SWAP_DONE, clk.t_last_done, clk.t_change);
	return;
failed:
	fail(c, j, &e);
}

/* Builds the jobs: one per device certificate, or one for the whole fleet. */
static pl_err make_jobs(coordinator *c, swap_job **out, uint32_t *count, pl_errmsg *e)
{
	const profile *p = c->prof;
	int per_device = p->swap.kind != PROFILE_SWAP_POLICY_VERSION &&
			 p->fleet.certificates == PROFILE_CERTIFICATES_PER_DEVICE;
	uint32_t n = per_device ? c->ndevices : 1;
	swap_job *jobs = calloc(n, sizeof(*jobs));

	if (jobs == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "swap jobs: out of memory");
	for (uint32_t i = 0; i < n; i++) {
		jobs[i].c = c;
		jobs[i].device = per_device ? i : UINT32_MAX;
		jobs[i].target = per_device ? c->devices[i].identity->cert_arn
					    : c->identities[0].cert_arn;
	}
	*out = jobs;
	*count = n;
	return PL_OK;
}

/* Hands one job over: to the API pool, or as a TRIGGER to the device's worker. */
typedef pl_err (*submit_fn)(coordinator *c, swap_job *j, pl_errmsg *e);

static pl_err submit_attach_detach(coordinator *c, swap_job *j, pl_errmsg *e)
{
	return awsapi_pool_submit_fn(c->pool, attach_detach_job, j, e);
}

static pl_err submit_policy_version(coordinator *c, swap_job *j, pl_errmsg *e)
{
	return awsapi_pool_submit_fn(c->pool, policy_version_job, j, e);
}

static pl_err submit_trigger(coordinator *c, swap_job *j, pl_errmsg *e)
{
	(void)e;
	swap_trigger_send(c, j->device);
	return PL_OK;
}

/* Submits jobs at the pace the rate allows, pumping worker messages meanwhile. */
static pl_err submit_paced(coordinator *c, swap_job *jobs, uint32_t n, submit_fn submit,
			   pl_errmsg *e)
{
	const profile *p = c->prof;
	double calls = (double)swap_calls_per_job(p);
	int64_t gap = p->swap.rate > 0 ? (int64_t)((double)PL_NS_PER_S * calls / p->swap.rate) : 0;
	int64_t next = pl_mono_ns();

	for (uint32_t i = 0; i < n; i++) {
		int64_t now;

		while ((now = pl_mono_ns()) < next && !c->interrupted)
			coord_pump(c, next - now < 100 * PL_NS_PER_MS ? next - now
								   : 100 * PL_NS_PER_MS);
		if (c->interrupted)
			return pl_errmsg_set(e, PL_ERR_INTERRUPTED, "swap interrupted after %u of %u",
					     i, n);
		pl_err err = submit(c, &jobs[i], e);

		if (err != PL_OK)
			return err;
		next += gap;
	}
	return PL_OK;
}

pl_err swap_start(coordinator *c, pl_errmsg *e)
{
	const profile *p = c->prof;
	swap_job *jobs = NULL;
	uint32_t n = 0;
	pl_err err;

	if (p->swap.kind == PROFILE_SWAP_POLICY_VERSION && (p->before_count < 1 || p->after_count < 1))
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "policy-version swap needs one before and one after policy");
	err = make_jobs(c, &jobs, &n, e);
	if (err != PL_OK)
		return err;
	coord_event(c, pl_mono_ns(), "swap", NULL,
		    p->swap.direction == PROFILE_SWAP_GRANT
			    ? "\"swap_index\":0,\"direction\":\"grant\""
			    : "\"swap_index\":0,\"direction\":\"revoke\"");
	c->swap_jobs = n;
	c->swap_job_array = jobs; /* pool threads use the jobs until the pool is freed */
	COORD_LOG(c, PL_LOG_INFO, "%s swap: %u call sequences at %.1f calls/s",
		profile_swap_kind_name(p->swap.kind), n, p->swap.rate);
	switch (p->swap.kind) {
	case PROFILE_SWAP_TRIGGER_TOPIC:
		return submit_paced(c, jobs, n, submit_trigger, e);
	case PROFILE_SWAP_POLICY_VERSION:
		return submit_paced(c, jobs, n, submit_policy_version, e);
	default:
		return submit_paced(c, jobs, n, submit_attach_detach, e);
	}
}

/*
 * A fixed set of worker threads, each with its own awsapi_client, taking
 * requests from one bounded FIFO queue.
 *
 * Lock order: the pool's lock only; callbacks and API calls run without it.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "harness/awsapi.h"
#include "harness/awsapi_internal.h"

#define LOG_TAG "awsapi"
#define POOL_THREADS_MAX 256

/* A queued item: an operation request (owning copies of its strings) or a work function. */
typedef struct job {
	awsapi_request req;
	char *strings;      /* one allocation backing every string and the payload in req */
	awsapi_done_fn done;
	awsapi_work_fn work;
	void *arg;
} job;

struct awsapi_pool {
	awsapi_ctx *ctx;
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	pthread_cond_t idle;
	job *queue; /* ring buffer of capacity entries */
	size_t capacity;
	size_t head;
	size_t count;
	unsigned running;   /* jobs taken by workers and not yet finished */
	int stopping;       /* workers exit when the queue is empty */
	int cancelled;      /* queued jobs complete with PL_ERR_INTERRUPTED */
	unsigned nthreads;
	unsigned nthreads_started;
	pthread_t *threads;
	awsapi_client **clients;
};

static int op_runs_in_pool(awsapi_op op)
{
	switch (op) {
	case AWSAPI_CREATE_POLICY:
	case AWSAPI_DELETE_POLICY:
	case AWSAPI_CREATE_POLICY_VERSION:
	case AWSAPI_SET_DEFAULT_POLICY_VERSION:
	case AWSAPI_DELETE_POLICY_VERSION:
	case AWSAPI_ATTACH_POLICY:
	case AWSAPI_DETACH_POLICY:
	case AWSAPI_CREATE_CERTIFICATE_FROM_CSR:
	case AWSAPI_UPDATE_CERTIFICATE:
	case AWSAPI_DELETE_CERTIFICATE:
	case AWSAPI_PUBLISH:
	case AWSAPI_DELETE_CONNECTION:
		return 1;
	default:
		return 0;
	}
}

/* ---- copying a request ---- */

/* The strings of an awsapi_request, which submit copies. */
static const size_t string_members[] = {
	offsetof(awsapi_request, policy_name),    offsetof(awsapi_request, document),
	offsetof(awsapi_request, target),         offsetof(awsapi_request, version_id),
	offsetof(awsapi_request, certificate_id), offsetof(awsapi_request, status),
	offsetof(awsapi_request, csr_pem),        offsetof(awsapi_request, topic),
	offsetof(awsapi_request, client_id),      offsetof(awsapi_request, endpoint_type),
	offsetof(awsapi_request, marker),
};

static const char **string_member(awsapi_request *r, size_t i)
{
	return (const char **)(void *)((char *)r + string_members[i]);
}

static pl_err copy_request(job *j, const awsapi_request *req)
{
	size_t total = req->payload_len + 1;
	char *cursor;

	j->req = *req;
	for (size_t i = 0; i < sizeof(string_members) / sizeof(string_members[0]); i++) {
		const char *s = *string_member(&j->req, i);

		total += s != NULL ? strlen(s) + 1 : 0;
	}
	j->strings = malloc(total);
	if (j->strings == NULL)
		return PL_ERR_NOMEM;
	cursor = j->strings;
	for (size_t i = 0; i < sizeof(string_members) / sizeof(string_members[0]); i++) {
		const char **s = string_member(&j->req, i);

		if (*s == NULL)
			continue;
		memcpy(cursor, *s, strlen(*s) + 1);
		*s = cursor;
		cursor += strlen(cursor) + 1;
	}
	if (req->payload != NULL && req->payload_len > 0)
		memcpy(cursor, req->payload, req->payload_len);
	j->req.payload = req->payload ? cursor : NULL;
	return PL_OK;
}

/* ---- running a request ---- */

/* Copies what a result carries from the response: the new version or certificate. */
static pl_err fill_result(awsapi_op op, json_t *response, awsapi_result *res)
{
	pl_err err = PL_OK;

	if (op == AWSAPI_CREATE_POLICY || op == AWSAPI_CREATE_POLICY_VERSION)
		err = awsapi_json_copy(response, "policyVersionId", res->version_id,
				       sizeof(res->version_id), op, &res->msg);
	if (op == AWSAPI_CREATE_CERTIFICATE_FROM_CSR) {
		err = awsapi_json_copy(response, "certificateId", res->certificate_id,
				       sizeof(res->certificate_id), op, &res->msg);
		if (err == PL_OK)
			err = awsapi_json_copy(response, "certificateArn", res->certificate_arn,
					       sizeof(res->certificate_arn), op, &res->msg);
	}
	return err;
}

static pl_err run_request(awsapi_client *c, const awsapi_request *r, awsapi_result *res)
{
	json_t *response = NULL;
	pl_err err = awsapi_run(c, r, &response, &res->call, &res->msg);

	if (err == PL_OK)
		err = fill_result(r->op, response, res);
	json_decref(response);
	return err;
}

/* Runs one job; client is NULL when the pool was cancelled before the job started. */
static void run_job(job *j, awsapi_client *client)
{
	awsapi_result *res;

	if (j->work != NULL) {
		j->work(client, j->arg);
		return;
	}
	res = calloc(1, sizeof(*res));
	if (res == NULL) {
		PL_ERROR(LOG_TAG, "pool: out of memory for the result of %s; its callback is skipped",
			 awsapi_op_name(j->req.op));
		return;
	}
	res->call.op = j->req.op;
	if (client == NULL)
		res->err = pl_errmsg_set(&res->msg, PL_ERR_INTERRUPTED, "%s: cancelled before it was sent",
					 awsapi_op_name(j->req.op));
	else
		res->err = run_request(client, &j->req, res);
	if (j->done != NULL)
		j->done(j->arg, &j->req, res);
	free(res);
}

static void *worker_main(void *arg)
{
	awsapi_pool *p = ((void **)arg)[0];
	awsapi_client *client = ((void **)arg)[1];

	free(arg);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		job j;
		int cancelled;

		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->not_empty, &p->lock);
		if (p->count == 0)
			break;
		j = p->queue[p->head];
		p->head = (p->head + 1) % p->capacity;
		p->count--;
		p->running++;
		cancelled = p->cancelled;
		pthread_cond_signal(&p->not_full);
		pthread_mutex_unlock(&p->lock);
		run_job(&j, cancelled ? NULL : client);
		free(j.strings);
		pthread_mutex_lock(&p->lock);
		p->running--;
		if (p->count == 0 && p->running == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- lifecycle ---- */

static pl_err start_workers(awsapi_pool *p, pl_errmsg *e)
{
	for (unsigned i = 0; i < p->nthreads; i++) {
		void **arg;
		pl_err err = awsapi_client_create(&p->clients[i], p->ctx, e);

		if (err != PL_OK)
			return err;
		arg = malloc(2 * sizeof(*arg));
		if (arg == NULL)
			return pl_errmsg_set(e, PL_ERR_NOMEM, "pool: out of memory");
		arg[0] = p;
		arg[1] = p->clients[i];
		if (pthread_create(&p->threads[i], NULL, worker_main, arg) != 0) {
			free(arg);
			return pl_errmsg_set(e, PL_ERR_INTERNAL, "pool: cannot start thread %u", i);
		}
		p->nthreads_started++;
	}
	return PL_OK;
}

pl_err awsapi_pool_create(awsapi_pool **out, awsapi_ctx *ctx, unsigned threads,
			  size_t queue_capacity, pl_errmsg *e)
{
	awsapi_pool *p;
	pl_err err;

	*out = NULL;
	if (threads < 1 || threads > POOL_THREADS_MAX || queue_capacity < 1)
		return pl_errmsg_set(e, PL_ERR_INVALID,
				     "pool: %u threads and a queue of %zu are outside 1..%d and >= 1",
				     threads, queue_capacity, POOL_THREADS_MAX);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "pool: out of memory");
	p->ctx = ctx;
	p->capacity = queue_capacity;
	p->nthreads = threads;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->not_empty, NULL);
	pthread_cond_init(&p->not_full, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->queue = calloc(queue_capacity, sizeof(*p->queue));
	p->threads = calloc(threads, sizeof(*p->threads));
	p->clients = calloc(threads, sizeof(*p->clients));
	if (p->queue == NULL || p->threads == NULL || p->clients == NULL)
		err = pl_errmsg_set(e, PL_ERR_NOMEM, "pool: out of memory");
	else
		err = start_workers(p, e);
	if (err != PL_OK) {
		awsapi_pool_free(p);
		return err;
	}
	*out = p;
	return PL_OK;
}

/* Queues j, waiting for room when wait is set. Takes ownership of j->strings on success. */
static pl_err enqueue(awsapi_pool *p, job *j, int wait, pl_errmsg *e)
{
	pl_err err = PL_OK;

	pthread_mutex_lock(&p->lock);
	while (wait && p->count == p->capacity && !p->cancelled && !p->stopping)
		pthread_cond_wait(&p->not_full, &p->lock);
	if (p->cancelled || p->stopping)
		err = pl_errmsg_set(e, PL_ERR_INTERRUPTED, "pool: no longer accepting requests");
	else if (p->count == p->capacity)
		err = pl_errmsg_set(e, PL_ERR_LIMIT, "pool: queue full (%zu entries)", p->capacity);
	else {
		p->queue[(p->head + p->count) % p->capacity] = *j;
		p->count++;
		pthread_cond_signal(&p->not_empty);
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

static pl_err submit(awsapi_pool *p, const awsapi_request *req, awsapi_done_fn done, void *arg,
		     int wait, pl_errmsg *e)
{
	job j;
	pl_err err;

	if (!op_runs_in_pool(req->op))
		return pl_errmsg_set(e, PL_ERR_INVALID, "pool: %s is not run by the pool; "
				     "use awsapi_pool_submit_fn", awsapi_op_name(req->op));
	memset(&j, 0, sizeof(j));
	if (copy_request(&j, req) != PL_OK)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "pool: out of memory");
	j.done = done;
	j.arg = arg;
	err = enqueue(p, &j, wait, e);
	if (err != PL_OK)
		free(j.strings);
	return err;
}

pl_err awsapi_pool_submit(awsapi_pool *p, const awsapi_request *req, awsapi_done_fn done,
			  void *arg, pl_errmsg *e)
{
	return submit(p, req, done, arg, 1, e);
}

pl_err awsapi_pool_try_submit(awsapi_pool *p, const awsapi_request *req, awsapi_done_fn done,
			      void *arg, pl_errmsg *e)
{
	return submit(p, req, done, arg, 0, e);
}

pl_err awsapi_pool_submit_fn(awsapi_pool *p, awsapi_work_fn fn, void *arg, pl_errmsg *e)
{
	job j;

	memset(&j, 0, sizeof(j));
	j.work = fn;
	j.arg = arg;
	return enqueue(p, &j, 1, e);
}

void awsapi_pool_wait(awsapi_pool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->count > 0 || p->running > 0)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void awsapi_pool_cancel(awsapi_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->cancelled = 1;
	pthread_cond_broadcast(&p->not_full);
	pthread_mutex_unlock(&p->lock);
}

void awsapi_pool_free(awsapi_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->not_empty);
	pthread_cond_broadcast(&p->not_full);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads_started; i++)
		pthread_join(p->threads[i], NULL);
	for (unsigned i = 0; p->clients != NULL && i < p->nthreads; i++)
		awsapi_client_free(p->clients[i]);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->not_full);
	pthread_cond_destroy(&p->not_empty);
	pthread_mutex_destroy(&p->lock);
	free(p->clients);
	free(p->threads);
	free(p->queue);
	free(p);
}

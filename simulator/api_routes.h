/* The API's route table (internal to simulator/api*.c). */
#ifndef SIM_API_ROUTES_H
#define SIM_API_ROUTES_H

#include "simulator/api_internal.h"

/* Which signing names a route accepts. */
typedef enum api_service {
	API_SERVICE_CONTROL, /* "iot" */
	API_SERVICE_DATA,    /* "iotdata" or "iotdevicegateway" */
	API_SERVICE_SIM,     /* any of the above */
} api_service;

typedef struct api_route {
	const char *method;
	const char *segments[4];
	size_t segment_count;
	api_op op;
	api_service service;
	double default_tps; /* 0: no bucket by default */
	api_handler handler;
} api_route;

/*
 * The route for req's method and path, or NULL. *path_known is set when some
 * route has the path, so that a wrong method can be told from an unknown path.
 */
const api_route *api_route_find(const api_request *req, int *path_known);

#endif

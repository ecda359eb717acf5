/*
 * The plugin's entry to its options: the api_ and rule_ groups go to the HTTP
 * API and the topic rule, every other key to the parser in options.c.
 */
#include <string.h>

#include "simulator/plugin_internal.h"

pl_err plugin_config_option(plugin *p, const char *key, const char *value, pl_errmsg *e)
{
	pl_err rc;

	/* Options of the HTTP API and the topic rule are parsed by those modules. */
	if (strncmp(key, "api_", 4) == 0 || strncmp(key, "rule_", 5) == 0)
		return PL_OK;
	rc = plugin_config_set(&p->cfg, key, value, e);
	if (rc != PL_OK)
		pl_errmsg_prefix(e, "plugin_opt_%s %s", key, value);
	return rc;
}

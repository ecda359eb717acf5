/* Private to harness/fleet*.c: the inventory's representation, files and journal. */
#ifndef PL_FLEET_INTERNAL_H
#define PL_FLEET_INTERNAL_H

#include "harness/fleet.h"

#define FLEET_INVENTORY_FILE "inventory.json"
#define FLEET_JOURNAL_FILE "inventory.journal"
#define FLEET_KEYS_DIR "keys"
#define FLEET_FORMAT 1

struct fleet_inventory {
	char target[FLEET_PATH_MAX];
	char prefix[FLEET_CLIENT_ID_MAX];
	int shared;
	fleet_provisioning provisioning;
	int64_t created_ns;
	fleet_device *devices; /* sorted by index after load and before save */
	size_t count;
	size_t capacity;
};

/* An empty inventory with the settings' identity fields. */
pl_err fleet_inventory_new(fleet_inventory **out, const fleet_settings *s, pl_errmsg *e);

/* Adds d; the caller knows that its index is not in the inventory yet. */
pl_err fleet_inventory_append(fleet_inventory *inv, const fleet_device *d);

/* Adds d, replacing a device with the same index. */
pl_err fleet_inventory_put(fleet_inventory *inv, const fleet_device *d);

/* Removes every device that uses certificate_id; returns how many. */
size_t fleet_inventory_drop_certificate(fleet_inventory *inv, const char *certificate_id);

/* Writes inventory.json of dir atomically, then empties the journal. */
pl_err fleet_inventory_save(fleet_inventory *inv, const char *dir, pl_errmsg *e);

/* Opens dir's journal for appending (created 0600); returns the descriptor. */
pl_err fleet_journal_open(const char *dir, int *fd, pl_errmsg *e);

/* Appends one line and flushes it to disk. */
pl_err fleet_journal_device(int fd, const fleet_device *d, pl_errmsg *e);
pl_err fleet_journal_deleted(int fd, const char *certificate_id, pl_errmsg *e);

/* Joins dir and leaf into buf; PL_ERR_RANGE when it does not fit. */
pl_err fleet_path(char *buf, size_t len, const char *dir, const char *leaf, pl_errmsg *e);

#endif

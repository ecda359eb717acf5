/*
 * Fleet preparation for a run: the "before" (and "after") policies, one
 * certificate per device or one shared certificate, key files for the
 * workers, and the "before" policies attached to every certificate. An
 * existing policy whose default document differs from the profile's (as
 * JSON) gets the profile's document as a new default version.
 *
 * Certificates are created from a CSR (the private key never leaves this
 * host) or with CreateKeysAndCertificate, as fleet.provisioning selects. Keys are
 * written with mode 0600 into dir, which the caller removes after the run.
 */
#ifndef PL_RUN_FLEET_H
#define PL_RUN_FLEET_H

#include "common/error.h"
#include "harness/coordinator.h"
#include "harness/fleet.h"

/*
 * Creates the policies and identities and fills c->identities and each
 * device's identity. Uses c->pool for the per-certificate calls and blocks
 * until they finish. Returns the first failure.
 *
 * With inv (a fleet made by `policylag fleet create` for the same target),
 * the certificates and keys of the inventory are used instead: each
 * certificate's policies are reset to the "before" ones (detaching what a
 * previous run's swap attached). A device missing from the inventory is
 * PL_ERR_STATE.
 */
pl_err run_fleet_prepare(coordinator *c, const char *dir, const fleet_inventory *inv,
			 pl_errmsg *e);

/*
 * Deletes the certificates the run created and must not leave behind
 * (c->delete_identities, c->delete_prober): detach, INACTIVE, delete, on a
 * pool of its own so that the certificates overlap within c->api's rate
 * limits. Logs what could not be deleted.
 */
void run_fleet_cleanup(coordinator *c);

#endif

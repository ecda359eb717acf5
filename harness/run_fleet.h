/*
 * Fleet preparation for a run: the "before" (and "after") policies, one
 * certificate per device or one shared certificate, key files for the
 * workers, and the "before" policies attached to every certificate.
 *
 * Certificates are created from a CSR (the private key never leaves this
 * host) or with CreateKeysAndCertificate, as fleet.provisioning selects. Keys are
 * written with mode 0600 into dir, which the caller removes after the run.
 */
#ifndef PL_RUN_FLEET_H
#define PL_RUN_FLEET_H

#include "common/error.h"
#include "harness/coordinator.h"

/*
 * Creates the policies and identities and fills c->identities and each
 * device's identity. Uses c->pool for the per-certificate calls and blocks
 * until they finish. Returns the first failure.
 */
pl_err run_fleet_prepare(coordinator *c, const char *dir, pl_errmsg *e);

#endif

/*
 * X.509 helpers for the simulator and the harness, on OpenSSL's API (never
 * the openssl command): the simulator CA, the loopback server certificate,
 * CSR signing (CreateCertificateFromCsr), key and certificate creation
 * (CreateKeysAndCertificate), EC P-256 keys and CSRs (fleet provisioning),
 * and AWS's certificate id (lowercase hex SHA-256 of the DER).
 *
 * All PEM strings returned through char ** are heap-allocated (free()).
 * Private keys are written with mode 0600 and never logged. Thread-safe:
 * no function keeps global state.
 */
#ifndef SIM_CERTS_H
#define SIM_CERTS_H

#include <stddef.h>

#include "common/error.h"

#define SIM_CERTS_ID_LEN 64

/* A loaded CA certificate and its private key. */
typedef struct sim_ca sim_ca;

/*
 * Creates a self-signed CA (RSA-2048, SHA-256, valid for days) and writes
 * cert_path (0644) and key_path (0600).
 */
pl_err sim_certs_create_ca(const char *cert_path, const char *key_path, const char *common_name,
			   int days, pl_errmsg *e);

pl_err sim_ca_load(sim_ca **out, const char *cert_path, const char *key_path, pl_errmsg *e);
void sim_ca_free(sim_ca *ca);

/* The CA's certificate id. */
void sim_ca_id(const sim_ca *ca, char out[SIM_CERTS_ID_LEN + 1]);

/*
 * Issues a server certificate for loopback use (SAN 127.0.0.1, ::1,
 * localhost; EC P-256 key) and writes cert_path and key_path (0600).
 */
pl_err sim_certs_create_server(const sim_ca *ca, const char *cert_path, const char *key_path,
			       int days, pl_errmsg *e);

/*
 * Signs a PEM CSR as a client certificate (CreateCertificateFromCsr). The
 * subject is taken from the CSR.
 */
pl_err sim_certs_sign_csr(const sim_ca *ca, const char *csr_pem, int days, char **cert_pem,
			  pl_errmsg *e);

/*
 * Creates an RSA-2048 key pair and a client certificate signed by the CA
 * (CreateKeysAndCertificate). public_key_pem may be NULL.
 */
pl_err sim_certs_create_keys_and_cert(const sim_ca *ca, const char *common_name, int days,
				      char **cert_pem, char **private_key_pem,
				      char **public_key_pem, pl_errmsg *e);

/* Generates an EC P-256 key and a CSR with subject CN=common_name. */
pl_err sim_certs_create_ec_csr(const char *common_name, char **private_key_pem, char **csr_pem,
			       pl_errmsg *e);

/* AWS's certificate id of a PEM certificate. */
pl_err sim_certs_id_from_pem(const char *pem, char out[SIM_CERTS_ID_LEN + 1], pl_errmsg *e);

/* AWS's certificate id from DER bytes. */
void sim_certs_id_from_der(const unsigned char *der, size_t len,
			   char out[SIM_CERTS_ID_LEN + 1]);

/* Writes text to path atomically with the given mode (0600 for keys):
 * temporary file, fsync, rename, fsync of the directory. */
pl_err sim_certs_write_file(const char *path, const char *text, unsigned mode, pl_errmsg *e);

/* Reads a whole file into a NUL-terminated heap string. */
pl_err sim_certs_read_file(const char *path, char **out, pl_errmsg *e);

#endif

/*
 * Certificate subject and issuer fields for the ${iot:Certificate.*}
 * policy variables, read from an X509 with OpenSSL.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "simulator/policy_internal.h"

typedef struct cert_values {
	char **values;
	size_t count;
} cert_values;

struct sim_cert_fields {
	cert_values names[2][SIM_CERT_FIELD__COUNT]; /* [0] subject, [1] issuer */
};

/* AWS's variable names for the name attributes, with their OpenSSL NIDs. */
static const struct {
	const char *name;
	int nid;
} cert_field_table[SIM_CERT_FIELD__COUNT] = {
	[SIM_CERT_COUNTRY] = { "Country", NID_countryName },
	[SIM_CERT_ORGANIZATION] = { "Organization", NID_organizationName },
	[SIM_CERT_ORGANIZATIONAL_UNIT] = { "OrganizationalUnit", NID_organizationalUnitName },
	[SIM_CERT_DN_QUALIFIER] = { "DistinguishedNameQualifier", NID_dnQualifier },
	[SIM_CERT_STATE] = { "State", NID_stateOrProvinceName },
	[SIM_CERT_COMMON_NAME] = { "CommonName", NID_commonName },
	[SIM_CERT_SERIAL_NUMBER] = { "SerialNumber", NID_serialNumber },
	[SIM_CERT_TITLE] = { "Title", NID_title },
	[SIM_CERT_SURNAME] = { "Surname", NID_surname },
	[SIM_CERT_GIVEN_NAME] = { "GivenName", NID_givenName },
	[SIM_CERT_INITIALS] = { "Initials", NID_initials },
	[SIM_CERT_PSEUDONYM] = { "Pseudonym", NID_pseudonym },
	[SIM_CERT_GENERATION_QUALIFIER] = { "GenerationQualifier", NID_generationQualifier },
};

int sim_cert_field_lookup(const char *name, size_t len)
{
	for (int i = 0; i < SIM_CERT_FIELD__COUNT; i++) {
		const char *candidate = cert_field_table[i].name;
		if (strlen(candidate) == len && strncasecmp(candidate, name, len) == 0)
			return i;
	}
	return -1;
}

size_t sim_cert_field_values(const sim_cert_fields *fields, int issuer, sim_cert_field field,
			     const char *const **values)
{
	if (!fields)
		return 0;
	const cert_values *v = &fields->names[issuer ? 1 : 0][field];
	*values = (const char *const *)v->values;
	return v->count;
}

/* Appends the UTF-8 text of one name entry to v. */
static pl_err cert_values_append(cert_values *v, X509_NAME_ENTRY *entry, pl_errmsg *e)
{
	unsigned char *utf8 = NULL;
	int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
	if (len < 0)
		return pl_errmsg_set(e, PL_ERR_PARSE, "certificate name entry is not valid text");
	if (memchr(utf8, '\0', (size_t)len)) {
		OPENSSL_free(utf8);
		return pl_errmsg_set(e, PL_ERR_PARSE, "certificate name entry contains a NUL byte");
	}

	char **grown = realloc(v->values, (v->count + 1) * sizeof(*grown));
	char *copy = strdup((const char *)utf8);
	OPENSSL_free(utf8);
	if (grown)
		v->values = grown;
	if (!grown || !copy) {
		free(copy);
		return pl_errmsg_set(e, PL_ERR_NOMEM, "certificate fields: out of memory");
	}
	v->values[v->count++] = copy;
	return PL_OK;
}

static pl_err read_name(const X509_NAME *name, cert_values *out, pl_errmsg *e)
{
	if (!name)
		return PL_OK;
	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
		for (int f = 0; f < SIM_CERT_FIELD__COUNT; f++) {
			if (cert_field_table[f].nid != nid)
				continue;
			pl_err err = cert_values_append(&out[f], entry, e);
			if (err != PL_OK)
				return err;
		}
	}
	return PL_OK;
}

pl_err sim_cert_fields_from_x509(X509 *cert, sim_cert_fields **out, pl_errmsg *e)
{
	sim_cert_fields *fields = calloc(1, sizeof(*fields));
	if (!fields)
		return pl_errmsg_set(e, PL_ERR_NOMEM, "certificate fields: out of memory");

	pl_err err = read_name(X509_get_subject_name(cert), fields->names[0], e);
	if (err == PL_OK)
		err = read_name(X509_get_issuer_name(cert), fields->names[1], e);
	if (err != PL_OK) {
		sim_cert_fields_free(fields);
		return err;
	}
	*out = fields;
	return PL_OK;
}

void sim_cert_fields_free(sim_cert_fields *fields)
{
	if (!fields)
		return;
	for (int n = 0; n < 2; n++) {
		for (int f = 0; f < SIM_CERT_FIELD__COUNT; f++) {
			cert_values *v = &fields->names[n][f];
			for (size_t i = 0; i < v->count; i++)
				free(v->values[i]);
			free(v->values);
		}
	}
	free(fields);
}

/*
 * SigV4 verification against AWS's published Signature Version 4 test suite
 * values (credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1, service
 * "service"), plus the error types the API returns.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "simulator/sigv4.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
/* 2015-08-30T12:36:00Z as Unix nanoseconds. */
#define VANILLA_NOW_NS (INT64_C(1440938160) * INT64_C(1000000000))
#define MINUTE_NS (INT64_C(60) * INT64_C(1000000000))

typedef struct header_set {
	const char *names[8];
	const char *values[8];
} header_set;

static const char *lookup(void *ctx, const char *lower_name)
{
	header_set *h = ctx;

	for (int i = 0; i < 8 && h->names[i] != NULL; i++)
		if (strcasecmp(h->names[i], lower_name) == 0)
			return h->values[i];
	return NULL;
}

static const char *const services[] = {"service", NULL};
static const sim_sigv4_key vanilla_key = {"AKIDEXAMPLE", SECRET, "us-east-1", services,
					  15 * MINUTE_NS};

/* The get-vanilla request: GET / with Host and X-Amz-Date signed. */
static header_set vanilla_headers(const char *authorization)
{
	header_set h = {{"host", "x-amz-date", "authorization", NULL},
			{"example.amazonaws.com", "20150830T123600Z", authorization, NULL}};
	return h;
}

#define VANILLA_AUTH                                                                   \
	"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " \
	"SignedHeaders=host;x-amz-date, "                                                   \
	"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static sim_sigv4_result verify_vanilla(const char *auth, const char *query, int64_t now_ns)
{
	header_set h = vanilla_headers(auth);
	sim_sigv4_request req = {"GET", "/", query, lookup, &h, NULL, 0};

	return sim_sigv4_verify(&req, &vanilla_key, now_ns, NULL, 0, NULL, 0);
}

START_TEST(test_sigv4_vanilla_canonical_request)
{
	header_set h = vanilla_headers(VANILLA_AUTH);
	sim_sigv4_request req = {"GET", "/", NULL, lookup, &h, NULL, 0};
	char *creq = NULL;

	ck_assert_int_eq(sim_sigv4_canonical_request(&req, "/", "host;x-amz-date", &creq), PL_OK);
	ck_assert_str_eq(creq, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
			       "\nhost;x-amz-date\n"
			       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	free(creq);
}
END_TEST

START_TEST(test_sigv4_vanilla_signature)
{
	unsigned char key[32];
	char sig[65];

	sim_sigv4_signing_key(SECRET, "20150830", "us-east-1", "service", key);
	sim_sigv4_sign(key,
		       "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
		       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
		       sig);
	ck_assert_str_eq(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}
END_TEST

START_TEST(test_sigv4_vanilla_verifies)
{
	ck_assert_int_eq(verify_vanilla(VANILLA_AUTH, NULL, VANILLA_NOW_NS), SIM_SIGV4_OK);
}
END_TEST

START_TEST(test_sigv4_missing_header)
{
	ck_assert_int_eq(verify_vanilla(NULL, NULL, VANILLA_NOW_NS), SIM_SIGV4_MISSING);
	ck_assert_str_eq(sim_sigv4_error_type(SIM_SIGV4_MISSING),
			 "MissingAuthenticationTokenException");
	ck_assert_int_eq(sim_sigv4_http_status(SIM_SIGV4_MISSING), 403);
}
END_TEST

START_TEST(test_sigv4_unknown_key)
{
	const char *auth =
		"AWS4-HMAC-SHA256 Credential=AKIDOTHER/20150830/us-east-1/service/aws4_request, "
		"SignedHeaders=host;x-amz-date, "
		"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

	ck_assert_int_eq(verify_vanilla(auth, NULL, VANILLA_NOW_NS), SIM_SIGV4_UNKNOWN_KEY);
	ck_assert_str_eq(sim_sigv4_error_type(SIM_SIGV4_UNKNOWN_KEY), "UnrecognizedClientException");
}
END_TEST

START_TEST(test_sigv4_wrong_signature)
{
	const char *auth =
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		"SignedHeaders=host;x-amz-date, "
		"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30";

	ck_assert_int_eq(verify_vanilla(auth, NULL, VANILLA_NOW_NS), SIM_SIGV4_BAD_SIGNATURE);
	ck_assert_str_eq(sim_sigv4_error_type(SIM_SIGV4_BAD_SIGNATURE), "InvalidSignatureException");
}
END_TEST

START_TEST(test_sigv4_changed_query_fails)
{
	/* The signature covers the query: adding one must break it. */
	ck_assert_int_eq(verify_vanilla(VANILLA_AUTH, "a=b", VANILLA_NOW_NS),
			 SIM_SIGV4_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_sigv4_skew_limit)
{
	ck_assert_int_eq(verify_vanilla(VANILLA_AUTH, NULL, VANILLA_NOW_NS + 14 * MINUTE_NS),
			 SIM_SIGV4_OK);
	ck_assert_int_eq(verify_vanilla(VANILLA_AUTH, NULL, VANILLA_NOW_NS + 16 * MINUTE_NS),
			 SIM_SIGV4_EXPIRED);
	ck_assert_int_eq(verify_vanilla(VANILLA_AUTH, NULL, VANILLA_NOW_NS - 16 * MINUTE_NS),
			 SIM_SIGV4_EXPIRED);
}
END_TEST

START_TEST(test_sigv4_wrong_service)
{
	static const char *const iot_only[] = {"iot", NULL};
	sim_sigv4_key key = vanilla_key;
	header_set h = vanilla_headers(VANILLA_AUTH);
	sim_sigv4_request req = {"GET", "/", NULL, lookup, &h, NULL, 0};

	key.services = iot_only;
	ck_assert_int_eq(sim_sigv4_verify(&req, &key, VANILLA_NOW_NS, NULL, 0, NULL, 0),
			 SIM_SIGV4_BAD_SCOPE);
}
END_TEST

START_TEST(test_sigv4_malformed_header)
{
	ck_assert_int_eq(verify_vanilla("Bearer abc", NULL, VANILLA_NOW_NS), SIM_SIGV4_MALFORMED);
	ck_assert_int_eq(verify_vanilla("AWS4-HMAC-SHA256 Credential=x", NULL, VANILLA_NOW_NS),
			 SIM_SIGV4_MALFORMED);
}
END_TEST

START_TEST(test_sigv4_uri_encode)
{
	char *out = NULL;

	ck_assert_int_eq(sim_sigv4_uri_encode("a b/c+~", 7, 1, &out), PL_OK);
	ck_assert_str_eq(out, "a%20b/c%2B~");
	free(out);
	ck_assert_int_eq(sim_sigv4_uri_encode("a/b", 3, 0, &out), PL_OK);
	ck_assert_str_eq(out, "a%2Fb");
	free(out);
}
END_TEST

START_TEST(test_sigv4_uri_decode_rejects_bad_escape)
{
	char *out = NULL;

	ck_assert_int_eq(sim_sigv4_uri_decode("%zz", 3, &out), PL_ERR_PARSE);
	ck_assert_int_eq(sim_sigv4_uri_decode("%00", 3, &out), PL_ERR_PARSE);
	ck_assert_int_eq(sim_sigv4_uri_decode("%4", 2, &out), PL_ERR_PARSE);
}
END_TEST

/* --- a request signed by libcurl, captured off the wire --------------------- */

typedef struct capture {
	int listener;
	char raw[8192];
	size_t len;
} capture;

/* Accepts one connection, keeps the request bytes and replies 200. */
static void *serve_once(void *arg)
{
	capture *c = arg;
	int fd = accept(c->listener, NULL, NULL);
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	ssize_t n;

	while (fd >= 0 && c->len < sizeof(c->raw) - 1 &&
	       (n = read(fd, c->raw + c->len, sizeof(c->raw) - 1 - c->len)) > 0) {
		const char *end;
		c->len += (size_t)n;
		c->raw[c->len] = '\0';
		end = strstr(c->raw, "\r\n\r\n");
		if (end != NULL && strstr(c->raw, "Content-Length: 9") != NULL &&
		    c->len >= (size_t)(end - c->raw) + 4 + 9)
			break;
	}
	if (fd >= 0) {
		if (write(fd, ok, strlen(ok)) < 0)
			c->len = 0;
		close(fd);
	}
	return NULL;
}

static uint16_t listen_loopback(capture *c)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->listener = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->listener, 0);
	ck_assert_int_eq(bind(c->listener, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(c->listener, 1), 0);
	ck_assert_int_eq(getsockname(c->listener, (struct sockaddr *)&a, &alen), 0);
	return ntohs(a.sin_port);
}

/* Splits the captured request into method, path, query, headers and body (in place). */
static void parse_capture(capture *c, sim_sigv4_request *req, header_set *h)
{
	char *line = c->raw, *next, *target, *q;
	int n = 0;

	memset(h, 0, sizeof(*h));
	next = strstr(line, "\r\n");
	*next = '\0';
	/* "PUT /path?query HTTP/1.1" */
	req->method = line;
	target = strchr(line, ' ');
	*target++ = '\0';
	*strchr(target, ' ') = '\0';
	q = strchr(target, '?');
	if (q != NULL)
		*q++ = '\0';
	req->raw_path = target;
	req->raw_query = q;
	for (line = next + 2; strncmp(line, "\r\n", 2) != 0 && n < 8; line = next + 2) {
		char *colon = strchr(line, ':');
		next = strstr(line, "\r\n");
		*next = '\0';
		*colon = '\0';
		h->names[n] = line;
		h->values[n++] = colon + 2;
	}
	req->header = lookup;
	req->header_ctx = h;
	req->body = line + 2;
	req->body_len = strlen(line + 2);
}

START_TEST(test_sigv4_libcurl_signed_request)
{
	static const char *const iot[] = {"iot", NULL};
	sim_sigv4_key key = {"AKIDEXAMPLE", SECRET, "us-east-1", iot, 15 * MINUTE_NS};
	capture c;
	pthread_t t;
	char url[256];
	CURL *curl = curl_easy_init();
	sim_sigv4_request req;
	header_set h;

	memset(&c, 0, sizeof(c));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/target-policies/my%%2Bpolicy?b=2&a=1",
		 listen_loopback(&c));
	ck_assert_int_eq(pthread_create(&t, NULL, serve_once, &c), 0);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{\"a\":\"b\"}");
	curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:iot");
	curl_easy_setopt(curl, CURLOPT_USERPWD, "AKIDEXAMPLE:" SECRET);
	ck_assert_int_eq(curl_easy_perform(curl), CURLE_OK);
	curl_easy_cleanup(curl);
	pthread_join(t, NULL);
	close(c.listener);
	parse_capture(&c, &req, &h);
	ck_assert_str_eq(req.method, "PUT");
	ck_assert_int_eq(sim_sigv4_verify(&req, &key, pl_wall_ns(), NULL, 0, NULL, 0),
			 SIM_SIGV4_OK);
	/* The body is signed: changing one byte breaks the signature. */
	((char *)req.body)[2] = 'x';
	ck_assert_int_eq(sim_sigv4_verify(&req, &key, pl_wall_ns(), NULL, 0, NULL, 0),
			 SIM_SIGV4_BAD_SIGNATURE);
}
END_TEST

static Suite *sigv4_suite(void)
{
	Suite *s = suite_create("sigv4");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_sigv4_vanilla_canonical_request);
	tcase_add_test(tc, test_sigv4_vanilla_signature);
	tcase_add_test(tc, test_sigv4_vanilla_verifies);
	tcase_add_test(tc, test_sigv4_missing_header);
	tcase_add_test(tc, test_sigv4_unknown_key);
	tcase_add_test(tc, test_sigv4_wrong_signature);
	tcase_add_test(tc, test_sigv4_changed_query_fails);
	tcase_add_test(tc, test_sigv4_skew_limit);
	tcase_add_test(tc, test_sigv4_wrong_service);
	tcase_add_test(tc, test_sigv4_malformed_header);
	tcase_add_test(tc, test_sigv4_uri_encode);
	tcase_add_test(tc, test_sigv4_uri_decode_rejects_bad_escape);
	tcase_add_test(tc, test_sigv4_libcurl_signed_request);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sigv4_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Unit tests for workers/protocol.c: frame encoding round trips, malformed
 * frames, and the channel over a real socketpair.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "workers/protocol.h"

static uint8_t frame[WP_FRAME_MAX + 4];

static wp_msg round_trip(const wp_msg *in)
{
	wp_msg out;
	size_t len = 0;

	ck_assert_int_eq(wp_encode(in, frame, sizeof(frame), &len, NULL), PL_OK);
	ck_assert_int_eq(wp_decode(frame + 4, len - 4, &out, NULL), PL_OK);
	return out;
}

START_TEST(test_worker_protocol_hello_round_trip)
{
	wp_msg in = { .type = WP_MSG_HELLO };
	wp_msg out;

	in.u.hello.version = WP_VERSION;
	in.u.hello.worker_index = 3;
	snprintf(in.u.hello.host, sizeof(in.u.hello.host), "localhost");
	in.u.hello.port = 8883;
	snprintf(in.u.hello.ca_path, sizeof(in.u.hello.ca_path), "/tmp/ca.pem");
	in.u.hello.dest_count = 2;
	snprintf(in.u.hello.dest[1], sizeof(in.u.hello.dest[1]), "127.0.0.2:8883");
	in.u.hello.prober_rate_max = 20;
	in.u.hello.max_devices = 500;
	out = round_trip(&in);
	ck_assert_uint_eq(out.type, WP_MSG_HELLO);
	ck_assert_uint_eq(out.u.hello.worker_index, 3);
	ck_assert_str_eq(out.u.hello.host, "localhost");
	ck_assert_uint_eq(out.u.hello.port, 8883);
	ck_assert_str_eq(out.u.hello.ca_path, "/tmp/ca.pem");
	ck_assert_uint_eq(out.u.hello.dest_count, 2);
	ck_assert_str_eq(out.u.hello.dest[0], "");
	ck_assert_str_eq(out.u.hello.dest[1], "127.0.0.2:8883");
	ck_assert_uint_eq(out.u.hello.prober_rate_max, 20);
	ck_assert_uint_eq(out.u.hello.max_devices, 500);
}
END_TEST

START_TEST(test_worker_protocol_record_round_trip)
{
	wp_msg in = { .type = WP_MSG_RECORD };
	wp_msg out;

	in.u.record.device = 42;
	snprintf(in.u.record.client_id, sizeof(in.u.record.client_id), "dev-42");
	in.u.record.t_swap_start_ns = INT64_C(123456789012345);
	in.u.record.latency_ns = -5;
	in.u.record.censored = 1;
	in.u.record.errors = 7;
	out = round_trip(&in);
	ck_assert_uint_eq(out.u.record.device, 42);
	ck_assert_str_eq(out.u.record.client_id, "dev-42");
	ck_assert_int_eq(out.u.record.t_swap_start_ns, INT64_C(123456789012345));
	ck_assert_int_eq(out.u.record.latency_ns, -5);
	ck_assert_uint_eq(out.u.record.censored, 1);
	ck_assert_uint_eq(out.u.record.errors, 7);
}
END_TEST

START_TEST(test_worker_protocol_rate_round_trip)
{
	wp_msg in = { .type = WP_MSG_RATE };
	wp_msg out;

	in.u.rate.connect_rate_milli = 12500;
	in.u.rate.t_ns = INT64_C(987654321);
	out = round_trip(&in);
	ck_assert_uint_eq(out.type, WP_MSG_RATE);
	ck_assert_uint_eq(out.u.rate.connect_rate_milli, 12500);
	ck_assert_int_eq(out.u.rate.t_ns, INT64_C(987654321));
	ck_assert_str_eq(wp_type_name(WP_MSG_RATE), "RATE");
}
END_TEST

START_TEST(test_worker_protocol_trigger_round_trip)
{
	wp_msg in = { .type = WP_MSG_TRIGGER };
	wp_msg out;

	in.u.trigger.device = 7;
	in.u.trigger.swap_index = 2;
	in.u.trigger.qos = 1;
	snprintf(in.u.trigger.topic, sizeof(in.u.trigger.topic), "hoge/req/dev-7");
	snprintf(in.u.trigger.payload, sizeof(in.u.trigger.payload), "{\"trigger\":true}");
	out = round_trip(&in);
	ck_assert_uint_eq(out.type, WP_MSG_TRIGGER);
	ck_assert_uint_eq(out.u.trigger.device, 7);
	ck_assert_uint_eq(out.u.trigger.swap_index, 2);
	ck_assert_uint_eq(out.u.trigger.qos, 1);
	ck_assert_str_eq(out.u.trigger.topic, "hoge/req/dev-7");
	ck_assert_str_eq(out.u.trigger.payload, "{\"trigger\":true}");
	ck_assert_str_eq(wp_type_name(WP_MSG_TRIGGER), "TRIGGER");
}
END_TEST

START_TEST(test_worker_protocol_triggered_round_trip)
{
	wp_msg in = { .type = WP_MSG_TRIGGERED };
	wp_msg out;

	in.u.triggered.device = 7;
	in.u.triggered.swap_index = 2;
	in.u.triggered.outcome = WP_TRIGGER_REJECTED;
	in.u.triggered.t_sent_ns = INT64_C(123456789012345);
	in.u.triggered.t_done_ns = INT64_C(123456799012345);
	in.u.triggered.attempt = 3;
	in.u.triggered.code = 0x87;
	snprintf(in.u.triggered.client_id, sizeof(in.u.triggered.client_id), "dev-7-a3");
	snprintf(in.u.triggered.text, sizeof(in.u.triggered.text), "not authorized");
	out = round_trip(&in);
	ck_assert_uint_eq(out.type, WP_MSG_TRIGGERED);
	ck_assert_uint_eq(out.u.triggered.device, 7);
	ck_assert_uint_eq(out.u.triggered.swap_index, 2);
	ck_assert_uint_eq(out.u.triggered.outcome, WP_TRIGGER_REJECTED);
	ck_assert_int_eq(out.u.triggered.t_sent_ns, INT64_C(123456789012345));
	ck_assert_int_eq(out.u.triggered.t_done_ns, INT64_C(123456799012345));
	ck_assert_uint_eq(out.u.triggered.attempt, 3);
	ck_assert_int_eq(out.u.triggered.code, 0x87);
	ck_assert_str_eq(out.u.triggered.client_id, "dev-7-a3");
	ck_assert_str_eq(out.u.triggered.text, "not authorized");
	ck_assert_str_eq(wp_type_name(WP_MSG_TRIGGERED), "TRIGGERED");
}
END_TEST

/* A topic one byte longer than AWS allows does not fit the TRIGGER's field. */
START_TEST(test_worker_protocol_trigger_overlong_topic)
{
	wp_msg in = { .type = WP_MSG_TRIGGER };
	size_t len = 0;

	memset(in.u.trigger.topic, 'a', sizeof(in.u.trigger.topic));
	ck_assert_int_eq(wp_encode(&in, frame, sizeof(frame), &len, NULL), PL_ERR_RANGE);
}
END_TEST

START_TEST(test_worker_protocol_event_connect_ns)
{
	wp_msg in = { .type = WP_MSG_EVENT };
	wp_msg out;

	in.u.event.kind = WP_EV_CONNECT_FAILED;
	in.u.event.code = -1;
	in.u.event.connect_ns = INT64_C(10000000123);
	snprintf(in.u.event.text, sizeof(in.u.event.text), "failure");
	out = round_trip(&in);
	ck_assert_int_eq(out.u.event.connect_ns, INT64_C(10000000123));
	ck_assert_int_eq(out.u.event.code, -1);
	ck_assert_str_eq(out.u.event.text, "failure");
}
END_TEST

START_TEST(test_worker_protocol_negative_code)
{
	wp_msg in = { .type = WP_MSG_EVENT };
	wp_msg out;

	in.u.event.code = -1;
	in.u.event.kind = WP_EV_DISCONNECTED;
	out = round_trip(&in);
	ck_assert_int_eq(out.u.event.code, -1);
	ck_assert_uint_eq(out.u.event.kind, WP_EV_DISCONNECTED);
}
END_TEST

START_TEST(test_worker_protocol_truncated_rejected)
{
	wp_msg in = { .type = WP_MSG_SWAP };
	wp_msg out;
	size_t len = 0;

	ck_assert_int_eq(wp_encode(&in, frame, sizeof(frame), &len, NULL), PL_OK);
	ck_assert_int_eq(wp_decode(frame + 4, len - 5, &out, NULL), PL_ERR_PARSE);
}
END_TEST

START_TEST(test_worker_protocol_trailing_rejected)
{
	wp_msg in = { .type = WP_MSG_PING };
	wp_msg out;
	size_t len = 0;

	ck_assert_int_eq(wp_encode(&in, frame, sizeof(frame) - 1, &len, NULL), PL_OK);
	frame[len] = 0;
	ck_assert_int_eq(wp_decode(frame + 4, len - 3, &out, NULL), PL_ERR_PARSE);
}
END_TEST

START_TEST(test_worker_protocol_unknown_type_rejected)
{
	uint8_t body[2] = { 0x39, 0x30 };
	wp_msg out;
	wp_msg in = { .type = 999 };
	size_t len;

	ck_assert_int_eq(wp_decode(body, sizeof(body), &out, NULL), PL_ERR_PARSE);
	ck_assert_int_eq(wp_encode(&in, frame, sizeof(frame), &len, NULL), PL_ERR_INVALID);
}
END_TEST

/* A string length that exceeds the receiving field is malformed. */
START_TEST(test_worker_protocol_overlong_string_rejected)
{
	wp_msg in = { .type = WP_MSG_EVENT };
	wp_msg out;
	size_t len = 0;
	size_t text_at = 4 + 2 + 4 + 1 + 4 + 8 + 4 + 8; /* after connect_ns */

	ck_assert_int_eq(wp_encode(&in, frame, sizeof(frame), &len, NULL), PL_OK);
	frame[text_at] = WP_TEXT_MAX & 0xff;
	frame[text_at + 1] = WP_TEXT_MAX >> 8;
	ck_assert_int_eq(wp_decode(frame + 4, len - 4, &out, NULL), PL_ERR_PARSE);
}
END_TEST

START_TEST(test_worker_protocol_channel_pair)
{
	int sv[2];
	wp_chan *a = NULL;
	wp_chan *b = NULL;
	wp_msg msg = { .type = WP_MSG_EFFECT };
	wp_msg got;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(wp_chan_create(&a, sv[0], 1 << 16, NULL), PL_OK);
	ck_assert_int_eq(wp_chan_create(&b, sv[1], 1 << 16, NULL), PL_OK);
	for (uint32_t i = 0; i < 1000; i++) {
		msg.u.effect.device = i;
		ck_assert_int_eq(wp_chan_send_wait(a, &msg, PL_NS_PER_S, NULL), PL_OK);
		ck_assert_int_eq(wp_chan_recv_wait(b, &got, PL_NS_PER_S, NULL), PL_OK);
		ck_assert_uint_eq(got.u.effect.device, i);
	}
	close(sv[0]);
	ck_assert_int_eq(wp_chan_recv_wait(b, &got, PL_NS_PER_S, NULL), PL_ERR_NOT_FOUND);
	wp_chan_free(a);
	wp_chan_free(b);
	close(sv[1]);
}
END_TEST

/* With no reader, the bounded output fills and send reports it. */
START_TEST(test_worker_protocol_channel_full)
{
	int sv[2];
	wp_chan *a = NULL;
	wp_msg msg = { .type = WP_MSG_HEARTBEAT };
	pl_err rc = PL_OK;
	int sent = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(wp_chan_create(&a, sv[0], 1 << 16, NULL), PL_OK);
	while (sent < 1000000 && (rc = wp_chan_send(a, &msg, NULL)) == PL_OK)
		sent++;
	ck_assert_int_eq(rc, PL_ERR_LIMIT);
	ck_assert_uint_gt(wp_chan_pending(a), 0);
	wp_chan_free(a);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("worker_protocol");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_worker_protocol_hello_round_trip);
	tcase_add_test(tc, test_worker_protocol_record_round_trip);
	tcase_add_test(tc, test_worker_protocol_rate_round_trip);
	tcase_add_test(tc, test_worker_protocol_trigger_round_trip);
	tcase_add_test(tc, test_worker_protocol_triggered_round_trip);
	tcase_add_test(tc, test_worker_protocol_trigger_overlong_topic);
	tcase_add_test(tc, test_worker_protocol_event_connect_ns);
	tcase_add_test(tc, test_worker_protocol_negative_code);
	tcase_add_test(tc, test_worker_protocol_truncated_rejected);
	tcase_add_test(tc, test_worker_protocol_trailing_rejected);
	tcase_add_test(tc, test_worker_protocol_unknown_type_rejected);
	tcase_add_test(tc, test_worker_protocol_overlong_string_rejected);
	tcase_add_test(tc, test_worker_protocol_channel_pair);
	tcase_add_test(tc, test_worker_protocol_channel_full);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

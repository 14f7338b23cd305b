/* The vici client (user/lib/vici.c) against its documented wire format, and against a
 * stand-in charon on the other end of a socketpair that answers as told: well, with
 * truncated, oversized or malformed packets, or not at all. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>
#include "lib/vici.h"

/* ---- the codec ---- */

static void a_message_survives_encoding_and_decoding(void **state)
{
	json_t *msg = json_pack("{s:s, s:{s:[s, s], s:{s:s}}, s:[], s:s}", "version", "2",
				"conn", "local_addrs", "192.0.2.1", "2001:db8::1", "children",
				"rekey_time", "3600s", "empty", "data", "a\nb\"c");
	struct vici_buf buf = { 0 };
	json_t *back;

	assert_int_equal(vici_encode(msg, &buf), 0);
	assert_int_equal(vici_decode(buf.data, buf.len, &back), 0);
	assert_true(json_equal(msg, back));
	json_decref(back);
	vici_buf_wipe(&buf);
	json_decref(msg);
}

static void the_encoding_is_the_documented_one(void **state)
{
	json_t *msg = json_pack("{s:s, s:{s:[s]}}", "k", "v", "s", "l", "i");
	const uint8_t expected[] = {
		VICI_KEY_VALUE, 1, 'k', 0, 1, 'v',
		VICI_SECTION_START, 1, 's',
		VICI_LIST_START, 1, 'l', VICI_LIST_ITEM, 0, 1, 'i', VICI_LIST_END,
		VICI_SECTION_END,
	};
	struct vici_buf buf = { 0 };

	assert_int_equal(vici_encode(msg, &buf), 0);
	assert_int_equal(buf.len, sizeof(expected));
	assert_memory_equal(buf.data, expected, sizeof(expected));
	vici_buf_wipe(&buf);
	json_decref(msg);
}

static void what_vici_cannot_carry_is_refused(void **state)
{
	char name[300], *value = malloc(70000);
	struct vici_buf buf = { 0 };
	json_t *msg;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	memset(value, 'v', 69999);
	value[69999] = '\0';
	msg = json_pack("{s:s}", name, "v");
	assert_int_equal(vici_encode(msg, &buf), -EINVAL); /* a name over 255 bytes */
	json_decref(msg);
	vici_buf_wipe(&buf);
	msg = json_pack("{s:s}", "k", value);
	assert_int_equal(vici_encode(msg, &buf), -EINVAL); /* a value over 65535 */
	json_decref(msg);
	vici_buf_wipe(&buf);
	msg = json_pack("{s:i}", "k", 1);
	assert_int_equal(vici_encode(msg, &buf), -EINVAL); /* a number */
	json_decref(msg);
	vici_buf_wipe(&buf);
	msg = json_pack("{s:[i]}", "k", 1);
	assert_int_equal(vici_encode(msg, &buf), -EINVAL); /* a list of non-strings */
	json_decref(msg);
	vici_buf_wipe(&buf);
	free(value);
}

static void malformed_messages_are_refused(void **state)
{
	static const struct { const char *what; uint8_t bytes[16]; size_t len; } cases[] = {
		{ "value longer than the message", { VICI_KEY_VALUE, 1, 'k', 0, 9, 'v' }, 6 },
		{ "name longer than the message", { VICI_KEY_VALUE, 9, 'k' }, 3 },
		{ "empty name", { VICI_KEY_VALUE, 0, 0, 1, 'v' }, 5 },
		{ "NUL in a name", { VICI_KEY_VALUE, 2, 'k', 0, 0, 1, 'v' }, 7 },
		{ "section end at the top", { VICI_SECTION_END }, 1 },
		{ "section never closed", { VICI_SECTION_START, 1, 's' }, 3 },
		{ "list never closed", { VICI_LIST_START, 1, 'l', VICI_LIST_ITEM, 0, 0 }, 6 },
		{ "key/value inside a list", { VICI_LIST_START, 1, 'l', VICI_KEY_VALUE, 1, 'k',
					       0, 0, VICI_LIST_END }, 9 },
		{ "unknown element", { 9, 1, 'k' }, 3 },
		{ "duplicate name", { VICI_KEY_VALUE, 1, 'k', 0, 0, VICI_KEY_VALUE, 1, 'k', 0, 0 },
		  10 },
	};
	json_t *msg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		int rc = vici_decode(cases[i].bytes, cases[i].len, &msg);

		if (rc != -EBADMSG)
			fail_msg("%s: %d", cases[i].what, rc);
		assert_null(msg);
	}
}

static void nesting_deeper_than_the_bound_is_refused(void **state)
{
	uint8_t bytes[4 * 40];
	size_t n = 0;
	json_t *msg;

	for (int i = 0; i < 40; i++) {
		bytes[n++] = VICI_SECTION_START;
		bytes[n++] = 1;
		bytes[n++] = 's';
	}
	for (int i = 0; i < 40; i++)
		bytes[n++] = VICI_SECTION_END;
	assert_int_equal(vici_decode(bytes, n, &msg), -EBADMSG);
}

/* ---- the stand-in charon ---- */

/* What the stand-in sends after reading each packet from the client. */
struct script {
	const uint8_t *replies[8];
	size_t lens[8];
	size_t n;
	bool close_after; /* ends the connection after the last reply */
	int fd;
	size_t requests;  /* packets read */
};

static bool read_packet(int fd)
{
	uint8_t be[4], body[VICI_PACKET_MAX];
	size_t len, got = 0;

	if (recv(fd, be, 4, MSG_WAITALL) != 4)
		return false;
	len = (size_t)be[0] << 24 | (size_t)be[1] << 16 | (size_t)be[2] << 8 | be[3];
	while (got < len) {
		ssize_t n = recv(fd, body + got, len - got, 0);

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static void *stand_in(void *arg)
{
	struct script *s = arg;

	for (size_t i = 0; i < s->n; i++) {
		if (!read_packet(s->fd))
			break;
		s->requests++;
		if (s->replies[i])
			send(s->fd, s->replies[i], s->lens[i], MSG_NOSIGNAL);
	}
	if (s->close_after)
		shutdown(s->fd, SHUT_RDWR);
	return NULL;
}

struct session {
	struct vici v;
	struct script script;
	pthread_t thread;
};

static void session_start(struct session *s)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s->v.fd = sv[0];
	s->v.timeout_ms = 300;
	s->script.fd = sv[1];
	assert_int_equal(pthread_create(&s->thread, NULL, stand_in, &s->script), 0);
}

static void session_end(struct session *s)
{
	shutdown(s->v.fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	vici_close(&s->v);
	close(s->script.fd);
}

static const uint8_t success_yes[] = { 0, 0, 0, 15, VICI_CMD_RESPONSE,
	VICI_KEY_VALUE, 7, 's', 'u', 'c', 'c', 'e', 's', 's', 0, 3, 'y', 'e', 's' };
static const uint8_t cmd_unknown[] = { 0, 0, 0, 1, VICI_CMD_UNKNOWN };
static const uint8_t event_confirm[] = { 0, 0, 0, 1, VICI_EVENT_CONFIRM };
static const uint8_t event_unknown[] = { 0, 0, 0, 1, VICI_EVENT_UNKNOWN };
/* An event "list-sa" { gw = { state = ESTABLISHED } }. */
static const uint8_t list_sa_event[] = { 0, 0, 0, 27, VICI_EVENT, 7, 'l', 'i', 's', 't', '-',
	's', 'a', VICI_SECTION_START, 2, 'g', 'w', VICI_KEY_VALUE, 5, 's', 't', 'a', 't', 'e',
	0, 4, 'U', 'P', 'U', 'P', VICI_SECTION_END };
static const uint8_t empty_response[] = { 0, 0, 0, 1, VICI_CMD_RESPONSE };

static int request(struct session *s, json_t **reply)
{
	json_t *args = json_pack("{s:s}", "name", "x");
	int rc = vici_request(&s->v, "unload-conn", args, reply);

	json_decref(args);
	return rc;
}

static void a_request_gets_its_response(void **state)
{
	struct session s = { .script = { { success_yes }, { sizeof(success_yes) }, 1 } };
	json_t *reply;
	const char *why;

	session_start(&s);
	assert_int_equal(request(&s, &reply), 0);
	assert_int_equal(vici_success(reply, &why), 0);
	json_decref(reply);
	session_end(&s);
	assert_int_equal(s.script.requests, 1);
}

static void an_unknown_command_is_said(void **state)
{
	struct session s = { .script = { { cmd_unknown }, { sizeof(cmd_unknown) }, 1 } };
	json_t *reply;

	session_start(&s);
	assert_int_equal(request(&s, &reply), -EOPNOTSUPP);
	assert_null(reply);
	session_end(&s);
}

static void a_reply_over_charons_limit_is_refused_unread(void **state)
{
	static const uint8_t huge[] = { 0x7f, 0xff, 0xff, 0xff, VICI_CMD_RESPONSE };
	struct session s = { .script = { { huge }, { sizeof(huge) }, 1 } };
	json_t *reply;

	session_start(&s);
	assert_int_equal(request(&s, &reply), -EMSGSIZE);
	session_end(&s);
}

static void a_truncated_reply_ends_the_request(void **state)
{
	/* 15 bytes announced, 5 sent, then the connection closes. */
	struct session s = { .script = { { success_yes }, { 9 }, 1, true } };
	json_t *reply;

	session_start(&s);
	assert_int_equal(request(&s, &reply), -ECONNRESET);
	session_end(&s);
}

static void a_silent_charon_times_out(void **state)
{
	struct session s = { .script = { { NULL }, { 0 }, 1 } };
	json_t *reply;

	session_start(&s);
	assert_int_equal(request(&s, &reply), -ETIMEDOUT);
	session_end(&s);
}

static void malformed_replies_are_refused(void **state)
{
	static const uint8_t empty[] = { 0, 0, 0, 0 };
	static const uint8_t bad_type[] = { 0, 0, 0, 1, 42 };
	static const uint8_t bad_body[] = { 0, 0, 0, 4, VICI_CMD_RESPONSE, VICI_KEY_VALUE, 9, 'k' };
	static const uint8_t unnamed_event[] = { 0, 0, 0, 1, VICI_EVENT };
	static const uint8_t *const replies[] = { empty, bad_type, bad_body, unnamed_event };
	static const size_t lens[] = { sizeof(empty), sizeof(bad_type), sizeof(bad_body),
				       sizeof(unnamed_event) };

	for (size_t i = 0; i < 4; i++) {
		struct session s = { .script = { { replies[i] }, { lens[i] }, 1 } };
		json_t *reply;

		session_start(&s);
		assert_int_equal(request(&s, &reply), -EBADMSG);
		session_end(&s);
	}
}

static void a_reply_without_success_is_no_success(void **state)
{
	json_t *no = json_pack("{s:s, s:s}", "success", "no", "errmsg", "bad proposal");
	json_t *none = json_object();
	const char *why;

	assert_int_equal(vici_success(no, &why), -EIO);
	assert_string_equal(why, "bad proposal");
	assert_int_equal(vici_success(none, &why), -EIO);
	assert_non_null(why);
	json_decref(no);
	json_decref(none);
}

static int count_events(json_t *msg, void *data)
{
	const char *state = json_string_value(json_object_get(json_object_get(msg, "gw"), "state"));

	assert_string_equal(state, "UPUP");
	++*(int *)data;
	return 0;
}

static void streamed_events_arrive_before_the_response(void **state)
{
	static uint8_t events_then_response[3 * sizeof(list_sa_event) + sizeof(empty_response)];
	/* register -> confirm; command -> 3 events, response; unregister -> confirm. */
	struct session s = { .script = {
		{ event_confirm, events_then_response, event_confirm },
		{ sizeof(event_confirm), sizeof(events_then_response), sizeof(event_confirm) },
		3 } };
	json_t *reply;
	int events = 0;

	for (int i = 0; i < 3; i++)
		memcpy(events_then_response + i * sizeof(list_sa_event), list_sa_event,
		       sizeof(list_sa_event));
	memcpy(events_then_response + 3 * sizeof(list_sa_event), empty_response,
	       sizeof(empty_response));
	session_start(&s);
	assert_int_equal(vici_request_stream(&s.v, "list-sas", NULL, "list-sa", count_events,
					     &events, &reply), 0);
	assert_int_equal(events, 3);
	assert_non_null(reply);
	json_decref(reply);
	session_end(&s);
	assert_int_equal(s.script.requests, 3);
}

static void an_unknown_event_is_said(void **state)
{
	struct session s = { .script = { { event_unknown }, { sizeof(event_unknown) }, 1 } };
	json_t *reply;

	session_start(&s);
	assert_int_equal(vici_request_stream(&s.v, "list-sas", NULL, "list-sa", count_events,
					     NULL, &reply), -EOPNOTSUPP);
	session_end(&s);
}

static void the_socket_comes_from_the_environment_or_the_default(void **state)
{
	unsetenv("VNET_XDP_VICI");
	assert_string_equal(vici_socket_path(), VICI_DEFAULT_SOCKET);
	setenv("VNET_XDP_VICI", "unix:///run/x/charon.vici", 1);
	assert_string_equal(vici_socket_path(), "/run/x/charon.vici");
	setenv("VNET_XDP_VICI", "/tmp/c.vici", 1);
	assert_string_equal(vici_socket_path(), "/tmp/c.vici");
	unsetenv("VNET_XDP_VICI");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_message_survives_encoding_and_decoding),
		cmocka_unit_test(the_encoding_is_the_documented_one),
		cmocka_unit_test(what_vici_cannot_carry_is_refused),
		cmocka_unit_test(malformed_messages_are_refused),
		cmocka_unit_test(nesting_deeper_than_the_bound_is_refused),
		cmocka_unit_test(a_request_gets_its_response),
		cmocka_unit_test(an_unknown_command_is_said),
		cmocka_unit_test(a_reply_over_charons_limit_is_refused_unread),
		cmocka_unit_test(a_truncated_reply_ends_the_request),
		cmocka_unit_test(a_silent_charon_times_out),
		cmocka_unit_test(malformed_replies_are_refused),
		cmocka_unit_test(a_reply_without_success_is_no_success),
		cmocka_unit_test(streamed_events_arrive_before_the_response),
		cmocka_unit_test(an_unknown_event_is_said),
		cmocka_unit_test(the_socket_comes_from_the_environment_or_the_default),
	};

	return cmocka_run_group_tests_name("vici", tests, NULL, NULL);
}

/* serve's re-initiation of down tunnels, without charon: when a connection seen in each
 * state is initiated again (the backoff), and that connecting starts it over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "datapath/tunnel_redial.h"

/* The times (ms) at which a connection down from 0 on is initiated, looked at every
 * second for `seconds`. */
static size_t initiations(struct redial_connection *c, uint64_t from, unsigned seconds,
			  uint64_t *at, size_t max)
{
	size_t n = 0;

	for (uint64_t t = from; t <= from + seconds * 1000ull; t += 1000)
		if (redial_due(c, TUNNEL_IKE_DOWN, t) && n < max)
			at[n++] = t;
	return n;
}

static void a_down_tunnel_is_initiated_after_1_2_4_s_doubling_to_60(void **state)
{
	struct redial_connection c = { .name = "vnetxdp-gw.a" };
	static const uint64_t want[] = { 1000, 3000, 7000, 15000, 31000, 63000, 123000, 183000 };
	uint64_t at[16];
	size_t n = initiations(&c, 0, 200, at, 16);

	assert_int_equal(n, sizeof(want) / sizeof(*want));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(at[i], want[i]);
	assert_int_equal(c.attempts, n);
	assert_int_equal(c.delay_ms, REDIAL_MAX_DELAY_MS);
}

static void connecting_keeps_the_backoff_and_connected_starts_it_over(void **state)
{
	struct redial_connection c = { .name = "vnetxdp-gw.a" };
	uint64_t at[16];

	assert_int_equal(initiations(&c, 0, 7, at, 16), 3); /* at 1, 3 and 7 s */
	/* charon at work (retransmitting) or not answering: no initiation, however long. */
	assert_false(redial_due(&c, TUNNEL_IKE_CONNECTING, 60000));
	assert_false(redial_due(&c, TUNNEL_IKE_UNKNOWN, 61000));
	/* Down again: the next step of the backoff (8 s after the third), not the first. */
	assert_true(redial_due(&c, TUNNEL_IKE_DOWN, 62000));
	assert_int_equal(c.delay_ms, 16000);
	assert_false(redial_due(&c, TUNNEL_IKE_CONNECTED, 63000));
	assert_int_equal(c.attempts, 0);
	/* A later loss waits REDIAL_FIRST_DELAY_MS again, then initiates. */
	assert_false(redial_due(&c, TUNNEL_IKE_DOWN, 100000));
	assert_false(redial_due(&c, TUNNEL_IKE_DOWN, 100500));
	assert_true(redial_due(&c, TUNNEL_IKE_DOWN, 101000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_down_tunnel_is_initiated_after_1_2_4_s_doubling_to_60),
		cmocka_unit_test(connecting_keeps_the_backoff_and_connected_starts_it_over),
	};

	return cmocka_run_group_tests_name("tunnel_redial", tests, NULL, NULL);
}

/* Differential test: thousands of random NSG rule sets on a subnet of each side and on a
 * NIC, random packets through the attached program (BPF_PROG_TEST_RUN), each verdict and
 * each stage's deciding rule compared with the linear reference model of
 * tests/nsg_reference.h. Zero mismatches. Packets are also mutated: IPv4 options and
 * IPv6 extension headers must not change the verdict, a frame cut short must be dropped
 * as malformed (never judged), and an allowed frame must leave well-formed. NSG_SEED replays a run; NSG_RULE_SETS and
 * NSG_PACKETS size it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <cmocka.h>
#include "packet/nsg_harness.h"
#include "nsg_reference.h"
#include "nsg_random.h"
#include "config/config.h"
#include "compile/nsg.h"

#define WEB "randweb"
#define SUBNET "randsubnet"
#define NIC NSG_RANDOM_NIC

static int write_random_config(void)
{
	static char resources[65536];
	size_t at = 0;

	at += random_nsg(WEB, resources + at, sizeof(resources) - at);
	at += snprintf(resources + at, sizeof(resources) - at, ",\n");
	at += random_nsg(SUBNET, resources + at, sizeof(resources) - at);
	at += snprintf(resources + at, sizeof(resources) - at, ",\n");
	at += random_nsg(NIC, resources + at, sizeof(resources) - at);
	snprintf(resources + at, sizeof(resources) - at, ",\n" NSG_RANDOM_NICS);
	/* A small flow table: every packet clears it, and a walk costs its bucket count. */
	return nsg_write_config(WEB, "", SUBNET, resources, "\"flowTableSize\": 1024");
}

static int setup(void **state)
{
	const char *seed = getenv("NSG_SEED");

	rng_state = seed ? strtoull(seed, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	if (!rng_state)
		rng_state = 1;
	print_message("nsg differential seed %llu (replay with NSG_SEED)\n",
		      (unsigned long long)rng_state);
	if (!nsg_init("vxnsgd", "nsgd"))
		return 0;
	if (write_random_config())
		return -1;
	return nsg_up();
}

static int teardown(void **state)
{
	nsg_down();
	return 0;
}

/* ---- packets ---- */

struct case_packet {
	int iface;
	struct flow fl;
	uint8_t proto;  /* the IP protocol actually sent (ESP and GRE ride on a UDP frame) */
};

static struct case_packet random_packet(void)
{
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDP,
					  IPPROTO_ICMP, IPPROTO_ESP, 47 };
	struct case_packet c = { 0 };
	bool v6 = below(10) < 3, from_hub = below(10) < 6, to_hub = below(10) < (from_hub ? 3 : 7);
	const char *const *src_pool = from_hub ? (v6 ? hub6 : hub4) : (v6 ? spoke6 : spoke4);
	const char *const *dst_pool = to_hub ? (v6 ? hub6 : hub4) : (v6 ? spoke6 : spoke4);
	size_t src_n = from_hub ? (v6 ? 4 : 8) : (v6 ? 4 : 6);
	size_t dst_n = to_hub ? (v6 ? 4 : 8) : (v6 ? 4 : 6);

	c.iface = from_hub ? HUB : SPOKE1;
	do {
		c.fl.src = src_pool[below(src_n)];
		c.fl.dst = dst_pool[below(dst_n)];
	} while (!strcmp(c.fl.src, c.fl.dst));
	c.fl.family = v6 ? AF_INET6 : AF_INET;
	c.proto = protos[below(sizeof(protos))];
	c.fl.proto = c.proto == IPPROTO_ICMP && v6 ? IPPROTO_ICMPV6 : c.proto;
	if (c.proto == IPPROTO_ESP || c.proto == 47)
		c.fl.proto = IPPROTO_UDP;
	c.fl.sport = random_port();
	c.fl.dport = random_port();
	c.fl.ip_id = below(65536);
	c.fl.payload = 8;
	if (c.proto == IPPROTO_ICMP)
		c.proto = c.fl.proto;
	return c;
}

enum mutation {
	MUTATION_NONE,
	MUTATION_HEADER_OPTIONS, /* IPv4 options or an IPv6 destination options header */
	MUTATION_CUT_SHORT,      /* the frame ends before the IP packet does */
	MUTATIONS,
};

static void frame_insert_after_ip_header(struct frame *f, size_t ip, size_t header_len,
					 const uint8_t *bytes, size_t n)
{
	size_t at = ip + header_len;

	memmove(f->data + at + n, f->data + at, f->len - at);
	memcpy(f->data + at, bytes, n);
	f->len += n;
}

static void add_header_options(struct frame *f, size_t ip, int family)
{
	uint8_t *h = f->data + ip;

	if (family == AF_INET) {
		uint8_t nops[40];
		size_t n = 4 * (1 + below(10));

		memset(nops, 1, n);
		frame_insert_after_ip_header(f, ip, 20, nops, n);
		h[0] = 0x40 | (uint8_t)((20 + n) / 4);
		put16(h + 2, ((h[2] << 8) | h[3]) + n);
		ipv4_header_checksum(h);
	} else {
		uint8_t dstopts[8] = { h[6], 0, 1 /* PadN */, 4, 0, 0, 0, 0 };

		frame_insert_after_ip_header(f, ip, 40, dstopts, sizeof(dstopts));
		h[6] = 60;
		put16(h + 4, ((h[4] << 8) | h[5]) + sizeof(dstopts));
	}
}

static struct harness_result send_case(const struct case_packet *c, enum mutation m)
{
	struct frame in;
	size_t ip = frame_build(&in, c->iface == HUB ? HUB_GW_MAC : SPOKE1_GW_MAC,
				c->iface == HUB ? HUB_VM_MAC : SPOKE1_VM_MAC, &c->fl);

	if (c->proto != c->fl.proto) { /* ESP or GRE: the UDP bytes are its payload */
		if (c->fl.family == AF_INET) {
			in.data[ip + 9] = c->proto;
			ipv4_header_checksum(in.data + ip);
		} else {
			in.data[ip + 6] = c->proto;
		}
	}
	if (m == MUTATION_HEADER_OPTIONS)
		add_header_options(&in, ip, c->fl.family);
	else if (m == MUTATION_CUT_SHORT)
		in.len = ip + (c->fl.family == AF_INET ? 20 : 40) + below(8);
	return harness_run(&gw, c->iface, &in);
}

static bool dropped_as_malformed(const struct harness_result *r)
{
	return r->verdict == XDP_DROP && (r->trace.drop_reason == DROP_MALFORMED_IPV4 ||
					  r->trace.drop_reason == DROP_MALFORMED_IPV6 ||
					  r->trace.drop_reason == DROP_MALFORMED_L4);
}

/* An allowed frame leaves as a router sends it: IPv4 header checksum valid, TTL or hop
 * limit one lower than it came in. */
static bool left_well_formed(const struct case_packet *c, const struct harness_result *r)
{
	const uint8_t *ip = r->out.data + 14;

	if (r->verdict != XDP_REDIRECT)
		return true;
	if (c->fl.family == AF_INET6)
		return r->out.len >= 54 && (ip[0] >> 4) == 6 && ip[7] == 63;
	return r->out.len >= 34 && (ip[0] >> 4) == 4 && ip[8] == 63 &&
	       checksum_fold(checksum_add(0, ip, (ip[0] & 0xf) * 4)) == 0;
}

/* ---- the reference's view of the same config ---- */

static struct reference_packet reference_packet_of(const struct case_packet *c)
{
	struct reference_packet p = { .family = c->fl.family, .proto = c->proto };

	inet_pton(c->fl.family, c->fl.src, p.src);
	inet_pton(c->fl.family, c->fl.dst, p.dst);
	p.has_ports = c->proto == IPPROTO_TCP || c->proto == IPPROTO_UDP;
	p.sport = c->fl.sport;
	p.dport = c->fl.dport;
	return p;
}

/* The verdict on p, with each stage's NSG in stages_out (may be NULL). */
static struct reference_verdict reference_judge(const struct nsg_world *w,
						const struct reference_packet *p,
						struct reference_nsg *stages_out)
{
	struct reference_nsg stages[REFERENCE_STAGES];

	nsg_world_stages(w, p, stages);
	if (stages_out)
		memcpy(stages_out, stages, sizeof(stages));
	return reference_evaluate(stages, p);
}

static struct reference_verdict reference_of(const struct nsg_world *w, const struct case_packet *c)
{
	struct reference_packet p = reference_packet_of(c);

	return reference_judge(w, &p, NULL);
}

/* Returns true when the datapath agrees with the reference on this packet. */
static bool compare(const struct case_packet *c, const struct harness_result *r,
		    const struct reference_verdict *v, char *why, size_t size)
{
	bool nsg_drop = r->verdict == XDP_DROP && (r->trace.drop_reason == DROP_NSG_DENIED_INBOUND ||
						   r->trace.drop_reason == DROP_NSG_DENIED_OUTBOUND);

	if (r->verdict == XDP_DROP && !nsg_drop) {
		snprintf(why, size, "dropped for reason %u, not by an NSG", r->trace.drop_reason);
		return false;
	}
	if (nsg_drop == v->allowed) {
		snprintf(why, size, "datapath %s, reference %s (stage %d)", nsg_drop ? "denies" : "allows",
			 v->allowed ? "allows" : "denies", v->deciding_stage);
		return false;
	}
	if (!v->allowed && r->trace.drop_reason != (v->deciding_stage < REFERENCE_DESTINATION_SUBNET ?
						    DROP_NSG_DENIED_OUTBOUND : DROP_NSG_DENIED_INBOUND)) {
		snprintf(why, size, "denied in the wrong direction");
		return false;
	}
	for (int s = 0; s < REFERENCE_STAGES; s++) {
		const struct nsg_decision *d = &r->trace.nsg[s];

		if (!v->rules[s] && d->nsg_id != NSG_NONE) {
			snprintf(why, size, "stage %d ran in the datapath only (priority %u)", s, d->priority);
			return false;
		}
		if (v->rules[s] && (d->nsg_id == NSG_NONE || d->priority != v->rules[s]->priority ||
				    d->access != (v->rules[s]->access == NSG_DENY))) {
			snprintf(why, size, "stage %d: datapath priority %u access %u, reference %s %d",
				 s, d->priority, d->access, v->rules[s]->name, v->rules[s]->priority);
			return false;
		}
	}
	return true;
}

/* ---- ICMP errors about the flow a first packet opened ---- */

/* 0 for the hub, 1 for spoke1: the VNet of every address the pools hold. */
static int vnet_of(const char *addr)
{
	return strncmp(addr, "10.10.", 6) && strncmp(addr, "fd00:10:", 8);
}

static const char *random_address_in(int vnet, int family)
{
	const char *const *pool = vnet ? (family == AF_INET6 ? spoke6 : spoke4)
				       : (family == AF_INET6 ? hub6 : hub4);
	size_t n = vnet ? (family == AF_INET6 ? 4 : 6) : (family == AF_INET6 ? 4 : 8);

	return pool[below(n)];
}

enum error_kind {
	ERROR_ABOUT_THE_FIRST_PACKET, /* to the opener, from the responder's side */
	ERROR_ABOUT_THE_ANSWER,       /* to the responder, about its answer */
	ERROR_REVERSED,               /* the first packet quoted, sent to the responder */
	ERROR_OTHER_PORT,             /* a quote of no flow */
	ERROR_KINDS,
};

struct error_case {
	int iface, family;
	const char *from, *to;
	uint8_t type, code;
	struct flow quoted;
};

static struct error_case random_error(const struct case_packet *opener)
{
	struct error_case e = { .family = opener->fl.family, .quoted = opener->fl };
	enum error_kind kind = below(ERROR_KINDS);
	static const uint8_t types4[] = { 3, 11, 12 }, types6[] = { 1, 2, 3 };
	int toward_opener = kind == ERROR_ABOUT_THE_FIRST_PACKET || kind == ERROR_OTHER_PORT;
	int from_vnet;

	if (kind == ERROR_ABOUT_THE_ANSWER) {
		e.quoted.src = opener->fl.dst;
		e.quoted.dst = opener->fl.src;
		e.quoted.sport = opener->fl.dport;
		e.quoted.dport = opener->fl.sport;
	}
	if (kind == ERROR_OTHER_PORT)
		e.quoted.dport++;
	e.to = toward_opener ? opener->fl.src : opener->fl.dst;
	from_vnet = vnet_of(toward_opener ? opener->fl.dst : opener->fl.src);
	do /* the quote's other end, or a router beside it */
		e.from = below(2) ? (toward_opener ? opener->fl.dst : opener->fl.src)
				  : random_address_in(from_vnet, e.family);
	while (!strcmp(e.from, e.to));
	e.iface = from_vnet ? SPOKE1 : HUB;
	e.type = e.family == AF_INET ? types4[below(3)] : types6[below(3)];
	e.code = e.type == 3 && e.family == AF_INET ? 4 : 0;
	return e;
}

static struct harness_result send_error_case(const struct error_case *e, size_t *quote_len)
{
	struct frame quoted, in;

	frame_build(&quoted, HUB_GW_MAC, HUB_VM_MAC, &e->quoted);
	*quote_len = below(2) ? quoted.len - 14 : (e->family == AF_INET ? 28 : 48);
	frame_icmp_error(&in, e->iface == HUB ? HUB_GW_MAC : SPOKE1_GW_MAC,
			 e->iface == HUB ? HUB_VM_MAC : SPOKE1_VM_MAC, e->family, e->from, e->to,
			 e->type, e->code, 1280, quoted.data + 14, *quote_len);
	return harness_run(&gw, e->iface, &in);
}

/* An error the reference says belongs to the flow passes with the flow's rules, the ones
 * that allowed its first packet (stages). */
static bool compare_related(const struct harness_result *r, const struct reference_verdict *opened,
			    const struct reference_nsg *stages, char *why, size_t size)
{
	if (r->verdict == XDP_DROP || r->trace.flow != NSG_FLOW_RELATED) {
		snprintf(why, size, "error of the flow: verdict %d reason %u outcome %u", r->verdict,
			 r->trace.drop_reason, r->trace.flow);
		return false;
	}
	for (int s = 0; s < REFERENCE_STAGES; s++) {
		const struct nsg_decision *d = &r->trace.nsg[s];
		int64_t id;

		if (!opened->rules[s]) {
			if (d->nsg_id == NSG_NONE)
				continue;
			snprintf(why, size, "error of the flow: stage %d in the datapath only", s);
			return false;
		}
		id = nsg_rule_id(stages[s].nsg->name, s < REFERENCE_DESTINATION_SUBNET ? "Outbound" : "Inbound",
				 opened->rules[s]->name);
		if (d->rule_id != id) {
			snprintf(why, size, "error of the flow: stage %d rule %u, the flow's %s is %lld", s,
				 d->rule_id, opened->rules[s]->name, (long long)id);
			return false;
		}
	}
	return true;
}

/* After opener (allowed by the datapath and the reference), an ICMP error about it or not;
 * true when the datapath agrees with the reference. *related counts errors of the flow. */
static bool error_agrees(const struct nsg_world *w, const struct case_packet *opener,
			 const struct reference_verdict *opened, long *related, char *why, size_t size)
{
	struct error_case e = random_error(opener);
	struct reference_packet first = reference_packet_of(opener), error = { .family = e.family },
				quote = { .family = e.family, .proto = opener->proto, .has_ports = true };
	struct reference_flow flow = { .family = e.family, .proto = opener->proto };
	struct reference_nsg stages[REFERENCE_STAGES];
	struct reference_verdict v;
	struct harness_result r;
	size_t quote_len;

	memcpy(flow.a.addr, first.src, 16);
	memcpy(flow.b.addr, first.dst, 16);
	flow.a.port = first.sport;
	flow.b.port = first.dport;
	flow.a.vnet = vnet_of(opener->fl.src);
	flow.b.vnet = vnet_of(opener->fl.dst);
	error.proto = e.family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	inet_pton(e.family, e.from, error.src);
	inet_pton(e.family, e.to, error.dst);
	inet_pton(e.family, e.quoted.src, quote.src);
	inet_pton(e.family, e.quoted.dst, quote.dst);
	quote.sport = e.quoted.sport;
	quote.dport = e.quoted.dport;
	reference_judge(w, &first, stages);
	r = send_error_case(&e, &quote_len);
	snprintf(why, size, "ICMP error %u from %s to %s about %s:%u -> %s:%u (%zu bytes): ", e.type,
		 e.from, e.to, e.quoted.src, e.quoted.sport, e.quoted.dst, e.quoted.dport, quote_len);
	if (reference_error_belongs(&flow, &error, vnet_of(e.from), vnet_of(e.to), &quote)) {
		++*related;
		return compare_related(&r, opened, stages, why + strlen(why), size - strlen(why));
	}
	v = reference_judge(w, &error, NULL);
	{
		struct case_packet as_icmp = { .iface = e.iface, .proto = error.proto,
					       .fl = { .family = e.family, .src = e.from, .dst = e.to } };

		return compare(&as_icmp, &r, &v, why + strlen(why), size - strlen(why));
	}
}

static void nsg_random_rule_sets_match_the_reference(void **state)
{
	long sets = getenv("NSG_RULE_SETS") ? strtol(getenv("NSG_RULE_SETS"), NULL, 10) : 2000;
	long packets = getenv("NSG_PACKETS") ? strtol(getenv("NSG_PACKETS"), NULL, 10) : 40;
	long compared = 0, mismatches = 0, denied = 0, mutated = 0, errors = 0, related = 0;
	struct nsg_world w;

	require_gateway();
	nsg_world_init(&w);
	for (long set = 0; set < sets; set++) {
		if (set && write_random_config())
			fail_msg("cannot write the config");
		assert_int_equal(config_load(gw.config_path, stderr, &w.cfg), 0);
		w.web = nsg_named(w.cfg, WEB);
		w.subnet = nsg_named(w.cfg, SUBNET);
		w.nic = nsg_named(w.cfg, NIC);
		assert_non_null(w.web);
		assert_int_equal(nsg_apply(w.cfg, 1), 0);
		for (long i = 0; i < packets; i++) {
			struct case_packet c = random_packet();
			struct reference_verdict v = reference_of(&w, &c);
			enum mutation m = below(4) ? MUTATION_NONE : 1 + below(MUTATIONS - 1);
			struct harness_result r;
			char why[256] = "";
			bool agrees;

			nsg_clear_flows(); /* every packet is a first packet */
			r = send_case(&c, m);
			compared++;
			mutated += m != MUTATION_NONE;
			denied += !v.allowed;
			if (m == MUTATION_CUT_SHORT) {
				agrees = dropped_as_malformed(&r);
				snprintf(why, sizeof(why), "cut short: verdict %d reason %u", r.verdict,
					 r.trace.drop_reason);
			} else {
				agrees = compare(&c, &r, &v, why, sizeof(why));
				if (agrees && !left_well_formed(&c, &r)) {
					agrees = false;
					snprintf(why, sizeof(why), "left malformed (mutation %d)", m);
				}
				/* now and then an ICMP error after a TCP or UDP flow's first packet */
				if (agrees && v.allowed && m == MUTATION_NONE && !below(3) &&
				    (c.proto == IPPROTO_TCP || c.proto == IPPROTO_UDP)) {
					errors++;
					agrees = error_agrees(&w, &c, &v, &related, why, sizeof(why));
				}
			}
			if (!agrees) {
				if (mismatches < 10)
					print_message("mismatch: set %ld %s %s -> %s proto %u ports %u -> %u: %s\n",
						      set, c.iface == HUB ? "to-hub" : "to-spoke1", c.fl.src,
						      c.fl.dst, c.proto, c.fl.sport, c.fl.dport, why);
				if (mismatches < 3)
					harness_shell("cat %s >> /tmp/vnet-xdp-nsgd-mismatch.json", gw.config_path);
				mismatches++;
			}
		}
		config_free(w.cfg);
	}
	print_message("%ld rule sets, %ld packets (%ld denied, %ld mutated), %ld ICMP errors "
		      "(%ld of their flow): %ld mismatches\n", sets, compared, denied, mutated, errors,
		      related, mismatches);
	assert_int_equal(mismatches, 0);
	assert_true(related > errors / 8 && related < errors);
	assert_true(denied > compared / 20 && denied < compared - compared / 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nsg_random_rule_sets_match_the_reference),
	};

	return cmocka_run_group_tests_name("nsg differential", tests, setup, teardown);
}

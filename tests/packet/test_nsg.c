/* Packet tests of network security groups: frames run through the attached program with
 * BPF_PROG_TEST_RUN on a gateway whose subnets and NIC carry NSGs. Each test checks the
 * verdict, the drop reason and which NSG stage decided with which rule (priority, access)
 * as the program's decision trace reports them, and the flow table for stateful cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "packet/nsg_harness.h"

#define WEB_NSG "hub-web"
#define SUBNET_NSG "spoke1-subnet"
#define NIC_NSG "vm1-nic-nsg"

static char *rule(const char *name, int priority, const char *direction, const char *access,
		  const char *protocol, const char *src, const char *sport, const char *dst,
		  const char *dport)
{
	return nsg_rule_json(name, priority, direction, access, protocol, src, sport, dst, dport);
}

/* Whether vm1-nic's IPv4 configuration joins web-asg (web2-nic always does). */
static bool vm1_in_web_asg = true;

/* rules[from, to) joined by ", ". */
static void join_rules(char *out, size_t size, char *const *rules, int from, int to)
{
	size_t at = 0;

	out[0] = '\0';
	for (int i = from; i < to && at < size; i++)
		at += (size_t)snprintf(out + at, size - at, "%s%s", i > from ? ", " : "", rules[i]);
}

/* ssh_access: the access of AllowSsh (200); flush: spoke1-subnet's flushConnection. */
static int write_config(const char *ssh_access, bool flush)
{
	char *r[20], resources[24000], subnet_rules[12000], nic_rules[2000], web_rules[1000];
	int n = 0, err;

	r[n++] = rule("DenySshFromWeb", 100, "Inbound", "Deny", "Tcp", "10.10.1.0/24", "*", "*", "22");
	r[n++] = rule("DenySshFromWeb6", 110, "Inbound", "Deny", "Tcp", "fd00:10:0:1::/64", "*", "*", "22");
	r[n++] = rule("DenyFromInternet", 150, "Inbound", "Deny", "*", "Internet", "*", "*", "*");
	r[n++] = rule("DenyVnetTelnet", 160, "Inbound", "Deny", "Tcp", "VirtualNetwork", "*", "*", "23");
	r[n++] = rule("DenyLoadBalancer", 170, "Inbound", "Deny", "*", "AzureLoadBalancer", "*", "*", "24");
	r[n++] = rule("AllowSsh", 200, "Inbound", ssh_access, "Tcp", "*", "*", "*", "22");
	r[n++] = rule("DenyPlural", 300, "Inbound", "Deny", "*", "[\"10.10.2.0/24\", \"10.10.3.7\"]",
		      "*", "*", "[\"1000-2000\", \"3000\"]");
	r[n++] = rule("AllowWeb", 400, "Inbound", "Allow", "Tcp", "*", "*", "*", "[\"80\", \"8443\"]");
	r[n++] = rule("DenySubnet5001", 300, "Outbound", "Deny", "Tcp", "*", "*", "*", "5001");
	r[n++] = rule("DenySmtpToInternet", 200, "Outbound", "Deny", "Tcp", "*", "*", "Internet", "25");
	r[n++] = rule("AllowHttpsToInternet", 210, "Outbound", "Allow", "Tcp", "*", "*", "Internet", "443");
	r[n++] = rule("DenyAllOut", 4000, "Outbound", "Deny", "*", "*", "*", "*", "*");
	r[n++] = rule("DenyAltHttpToWebAsg", 120, "Inbound", "Deny", "Tcp", "*", "*", "@web-asg", "8081");
	r[n++] = rule("DenySqlTag", 130, "Inbound", "Deny", "Udp", "Sql.WestEurope", "*", "*", "8082");
	r[n++] = rule("DenyWebAsgToStorage", 220, "Outbound", "Deny", "Tcp", "@web-asg", "*", "Storage", "*");
	r[n++] = rule("DenyIcmpTo7", 140, "Inbound", "Deny", "Icmp", "*", "*",
		      "[\"10.11.1.7\", \"fd00:11:0:1::7\"]", "*");
	r[n++] = rule("DenyNic8443", 100, "Inbound", "Deny", "Tcp", "*", "*", "*", "8443");
	r[n++] = rule("DenyNic5000", 100, "Outbound", "Deny", "Tcp", "*", "*", "*", "5000");
	r[n++] = rule("DenyWeb9000", 100, "Inbound", "Deny", "Tcp", "10.10.1.0/24", "*", "*", "9000");
	r[n++] = rule("DenyIcmpToWeb", 150, "Inbound", "Deny", "Icmp", "*", "*", "*", "*");
	join_rules(subnet_rules, sizeof(subnet_rules), r, 0, 16);
	join_rules(nic_rules, sizeof(nic_rules), r, 16, 18);
	join_rules(web_rules, sizeof(web_rules), r, 18, 20);
	snprintf(resources, sizeof(resources),
		 "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"" SUBNET_NSG "\","
		 " \"properties\": {\"flushConnection\": %s, \"securityRules\": [%s]}},\n"
		 "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"" NIC_NSG "\","
		 " \"properties\": {\"securityRules\": [%s]}},\n"
		 "{\"type\": \"Microsoft.Network/networkSecurityGroups\", \"name\": \"" WEB_NSG "\","
		 " \"properties\": {\"securityRules\": [%s]}},\n"
		 "{\"type\": \"Microsoft.Network/applicationSecurityGroups\", \"name\": \"web-asg\"},\n"
		 "{\"type\": \"Microsoft.Network/networkInterfaces\", \"name\": \"vm1-nic\", \"properties\": {"
		 " \"networkSecurityGroup\": {\"id\": \"" NIC_NSG "\"}, \"ipConfigurations\": ["
		 "  {\"name\": \"ipconfig1\", \"properties\": {\"privateIPAddress\": \"10.11.1.4\"%s,"
		 "   \"subnet\": {\"id\": \"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/spoke1/subnets/default\"}}},"
		 "  {\"name\": \"ipconfig2\", \"properties\": {\"privateIPAddress\": \"fd00:11:0:1::4\","
		 "   \"subnet\": {\"id\": \"/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/spoke1/subnets/default\"}}}]}},\n"
		 "{\"type\": \"Microsoft.Network/networkInterfaces\", \"name\": \"web2-nic\", \"properties\": {"
		 " \"ipConfigurations\": [{\"name\": \"ipconfig1\", \"properties\": {\"privateIPAddress\": \"10.11.1.6\","
		 "  \"applicationSecurityGroups\": [{\"id\": \"web-asg\"}], \"subnet\": {\"id\": \"spoke1/default\"}}}]}}",
		 flush ? "true" : "false", subnet_rules, nic_rules, web_rules,
		 vm1_in_web_asg ? ", \"applicationSecurityGroups\": [{\"id\": \"web-asg\"}]" : "");
	err = nsg_write_config(WEB_NSG, "", SUBNET_NSG, resources,
				   "\"udpIdleTimeoutSeconds\": 60, \"tcpIdleTimeoutSeconds\": 60, "
				   "\"flowTableSize\": 1024");
	for (int i = 0; i < n; i++)
		free(r[i]);
	return err;
}

static int setup(void **state)
{
	if (!nsg_init("vxnsgp", "nsgp"))
		return 0;
	if (write_config("Allow", false))
		return -1;
	return nsg_up();
}

static int teardown(void **state)
{
	nsg_down();
	return 0;
}

static struct flow tcp4(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	return (struct flow){ .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_TCP,
			      .sport = sport, .dport = dport, .ip_id = 0x4242 };
}

static struct flow udp4(const char *src, uint16_t sport, const char *dst, uint16_t dport)
{
	struct flow fl = tcp4(src, sport, dst, dport);

	fl.proto = IPPROTO_UDP;
	fl.payload = 16;
	return fl;
}

/* From the VNet side `iface` faces; tcp_flags 0 keeps the builder's SYN. */
static struct harness_result send_flags(int iface, struct flow fl, uint8_t tcp_flags)
{
	static const char *gw_macs[] = { HUB_GW_MAC, SPOKE1_GW_MAC, "02:00:00:00:12:01" };
	static const char *vm_macs[] = { HUB_VM_MAC, SPOKE1_VM_MAC, "02:00:00:00:12:04" };
	struct frame in;
	size_t ip;

	ip = frame_build(&in, gw_macs[iface], vm_macs[iface], &fl);
	if (tcp_flags && fl.proto == IPPROTO_TCP)
		in.data[ip + (fl.family == AF_INET ? 20 : 40) + 13] = tcp_flags;
	return harness_run(&gw, iface, &in);
}

static struct harness_result send_packet(int iface, struct flow fl)
{
	return send_flags(iface, fl, 0);
}

static void assert_denied(struct harness_result r, enum drop_reason reason, int stage, int priority)
{
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, reason);
	assert_int_equal(r.trace.nsg[stage].priority, priority);
	assert_int_equal(r.trace.nsg[stage].access, 1);
	assert_int_equal(r.trace.flow, NSG_FLOW_DENIED);
}

static void assert_allowed(struct harness_result r)
{
	assert_int_not_equal(r.verdict, -1);
	assert_int_equal(r.trace.drop_reason, DROP_NONE); /* first: a failure names the reason */
	assert_int_not_equal(r.verdict, XDP_DROP);
}

static void assert_stage(struct harness_result r, int stage, int priority, int access)
{
	assert_int_not_equal(r.trace.nsg[stage].nsg_id, NSG_NONE);
	assert_int_equal(r.trace.nsg[stage].priority, priority);
	assert_int_equal(r.trace.nsg[stage].access, access);
}

static void nsg_priority_first_match(void **state)
{
	int64_t deny_id;
	uint64_t before;
	struct harness_result r;

	require_gateway();
	deny_id = nsg_rule_id(SUBNET_NSG, "Inbound", "DenySshFromWeb");
	assert_true(deny_id >= 0);
	before = nsg_rule_hits((uint32_t)deny_id);
	/* 100 denies ssh from web before 200 allows ssh from anywhere */
	r = send_packet(HUB, tcp4("10.10.1.5", 40000, "10.11.1.4", 22));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 100);
	assert_int_equal(r.trace.nsg[NSG_STAGE_DESTINATION_SUBNET].rule_id, deny_id);
	assert_int_equal(nsg_rule_hits((uint32_t)deny_id), before + 1);
	/* from elsewhere only 200 matches */
	r = send_packet(HUB, tcp4("10.10.2.5", 40000, "10.11.1.4", 22));
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 200, 0);
	assert_stage(r, NSG_STAGE_DESTINATION_NIC, 65000, 0);
	assert_int_equal(r.trace.nsg[NSG_STAGE_SOURCE_SUBNET].nsg_id, NSG_NONE);
	assert_int_equal(r.trace.flow, NSG_FLOW_NEW);
}

static void nsg_default_rules_in_force(void **state)
{
	struct harness_result r;
	int64_t vnet_in = nsg_rule_id(SUBNET_NSG, "Inbound", "AllowVnetInBound");

	require_gateway();
	assert_true(vnet_in >= 0);
	assert_true(nsg_rule_id(SUBNET_NSG, "Outbound", "DenyAllOutBound") >= 0);
	r = send_packet(HUB, tcp4("10.10.3.9", 41000, "10.11.1.4", 8080));
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 65000, 0);
	assert_int_equal(r.trace.nsg[NSG_STAGE_DESTINATION_SUBNET].rule_id, vnet_in);
	/* hub/web's NSG applies outbound to its sources: AllowVnetOutBound */
	r = send_packet(HUB, tcp4("10.10.1.7", 41000, "10.11.1.4", 8080));
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_SOURCE_SUBNET, 65000, 0);
}

static void nsg_service_tags(void **state)
{
	struct harness_result r;

	require_gateway();
	/* VirtualNetwork holds the peered hub: 160 matches */
	r = send_packet(HUB, tcp4("10.10.3.9", 42000, "10.11.1.4", 23));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 160);
	/* neither Internet (150) nor AzureLoadBalancer (170) holds a VNet source */
	r = send_packet(HUB, udp4("10.10.3.9", 42000, "10.11.1.4", 24));
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 65000, 0);
	/* IPv6 of the peered VNet is VirtualNetwork too */
	r = send_packet(HUB, (struct flow){ .family = AF_INET6, .src = "fd00:10:0:3::9", .dst = "fd00:11:0:1::4",
				      .proto = IPPROTO_TCP, .sport = 42000, .dport = 23 });
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 160);
}

/* An application security group is its NICs' addresses: a rule naming web-asg holds
 * vm1-nic's IPv4 address and web2-nic's, not their neighbours in the subnet. */
static void nsg_application_security_group_is_its_nics(void **state)
{
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	r = send_packet(HUB, tcp4("10.10.3.9", 42000, "10.11.1.4", 8081));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 120);
	r = send_packet(HUB, tcp4("10.10.3.9", 42001, "10.11.1.6", 8081));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 120);
	/* 10.11.1.5 is in no NIC of the group: the default AllowVnetInBound decides */
	r = send_packet(HUB, tcp4("10.10.3.9", 42002, "10.11.1.5", 8081));
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 65000, 0);
	/* vm1-nic's IPv6 configuration does not join the group */
	r = send_packet(HUB, (struct flow){ .family = AF_INET6, .src = "fd00:10:0:3::9",
					    .dst = "fd00:11:0:1::4", .proto = IPPROTO_TCP,
					    .sport = 42003, .dport = 8081 });
	assert_allowed(r);
	/* as a source, outbound: web-asg to the Storage tag (10.10.2.0/24 in the tag file) */
	r = send_packet(SPOKE1, tcp4("10.11.1.6", 42004, "10.10.2.9", 443));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 220);
	r = send_packet(SPOKE1, tcp4("10.11.1.5", 42005, "10.10.2.9", 443));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	nsg_clear_flows();
}

/* A tag of gateway.serviceTagsFile is the file's prefixes: Sql.WestEurope holds the upper
 * half of the hub's plain subnet (10.10.3.128/25), not its lower half. */
static void nsg_service_tag_from_the_tag_file(void **state)
{
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	r = send_packet(HUB, udp4("10.10.3.200", 42000, "10.11.1.4", 8082));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 130);
	r = send_packet(HUB, udp4("10.10.3.9", 42000, "10.11.1.4", 8082));
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 65000, 0);
	nsg_clear_flows();
}

/* Membership is read with the config: a NIC that leaves the group on reload is no longer
 * held by the group's rules, and one that joins is. */
static void nsg_application_security_group_membership_follows_reload(void **state)
{
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	vm1_in_web_asg = false;
	assert_int_equal(write_config("Allow", false), 0);
	assert_int_equal(harness_reload(&gw), 0);
	r = send_packet(HUB, tcp4("10.10.3.9", 43000, "10.11.1.4", 8081));
	assert_allowed(r);
	r = send_packet(HUB, tcp4("10.10.3.9", 43001, "10.11.1.6", 8081));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 120);

	vm1_in_web_asg = true;
	nsg_clear_flows();
	assert_int_equal(write_config("Allow", false), 0);
	assert_int_equal(harness_reload(&gw), 0);
	r = send_packet(HUB, tcp4("10.10.3.9", 43002, "10.11.1.4", 8081));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 120);
	nsg_clear_flows();
}

/* Internet is everything outside VirtualNetwork: the Internet route's destinations. */
static void nsg_internet_tag_outbound(void **state)
{
	struct harness_result r;

	require_gateway();
	r = send_packet(SPOKE1, tcp4("10.11.1.5", 43100, "198.51.100.2", 25));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 200);
	assert_int_equal(r.trace.route_type, ROUTE_INTERNET);
	r = send_packet(SPOKE1, tcp4("10.11.1.5", 43100, "198.51.100.2", 443));
	assert_int_not_equal(r.trace.drop_reason, DROP_NSG_DENIED_OUTBOUND);
	assert_stage(r, NSG_STAGE_SOURCE_SUBNET, 210, 0);
	/* the same port toward the peered hub is not Internet: DenyAllOut (4000) decides */
	r = send_packet(SPOKE1, tcp4("10.11.1.5", 43100, "10.10.3.9", 25));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
}

static void nsg_plural_prefixes_and_ports(void **state)
{
	require_gateway();
	assert_denied(send_packet(HUB, udp4("10.10.2.9", 43000, "10.11.1.4", 1500)),
		      DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 300);
	assert_denied(send_packet(HUB, udp4("10.10.2.9", 43000, "10.11.1.4", 1000)),
		      DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 300);
	assert_denied(send_packet(HUB, udp4("10.10.3.7", 43000, "10.11.1.4", 3000)),
		      DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 300);
	assert_allowed(send_packet(HUB, udp4("10.10.3.8", 43000, "10.11.1.4", 3000)));
	assert_allowed(send_packet(HUB, udp4("10.10.2.9", 43000, "10.11.1.4", 2500)));
	assert_allowed(send_packet(HUB, udp4("10.10.2.9", 43000, "10.11.1.4", 2001)));
	assert_allowed(send_packet(HUB, udp4("10.10.3.7", 43000, "10.11.1.4", 2999)));
}

static void nsg_inbound_subnet_then_nic(void **state)
{
	struct harness_result r;

	require_gateway();
	/* the subnet allows 8443 (400), the NIC denies it (100) */
	r = send_packet(HUB, tcp4("10.10.3.9", 44000, "10.11.1.4", 8443));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_NIC, 100);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 400, 0);
	/* another VM of the subnet has no NIC NSG */
	r = send_packet(HUB, tcp4("10.10.3.9", 44000, "10.11.1.5", 8443));
	assert_allowed(r);
	assert_int_equal(r.trace.nsg[NSG_STAGE_DESTINATION_NIC].nsg_id, NSG_NONE);
	/* the subnet denies first: the NIC is not consulted */
	r = send_packet(HUB, tcp4("10.10.1.5", 44000, "10.11.1.4", 22));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 100);
	assert_int_equal(r.trace.nsg[NSG_STAGE_DESTINATION_NIC].nsg_id, NSG_NONE);
}

static void nsg_outbound_nic_then_subnet(void **state)
{
	struct harness_result r;

	require_gateway();
	r = send_packet(SPOKE1, tcp4("10.11.1.4", 45000, "10.10.3.9", 5000));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_NIC, 100);
	assert_int_equal(r.trace.nsg[NSG_STAGE_SOURCE_SUBNET].nsg_id, NSG_NONE);
	r = send_packet(SPOKE1, tcp4("10.11.1.4", 45000, "10.10.3.9", 5001));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 300);
	assert_stage(r, NSG_STAGE_SOURCE_NIC, 65000, 0);
	/* a VM without NIC NSG meets the subnet's rules only */
	r = send_packet(SPOKE1, tcp4("10.11.1.5", 45000, "10.10.3.9", 5000));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	assert_int_equal(r.trace.nsg[NSG_STAGE_SOURCE_NIC].nsg_id, NSG_NONE);
}

static void nsg_intra_subnet(void **state)
{
	struct harness_result r;

	require_gateway();
	r = send_packet(HUB, tcp4("10.10.1.5", 46000, "10.10.1.6", 9000));
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 100);
	assert_stage(r, NSG_STAGE_SOURCE_SUBNET, 65000, 0);
	r = send_packet(HUB, tcp4("10.10.1.5", 46000, "10.10.1.6", 9001));
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 65000, 0);
	/* a subnet without NSG, inside the same VNet: nothing to judge */
	r = send_packet(HUB, tcp4("10.10.3.5", 46000, "10.10.3.6", 9000));
	assert_allowed(r);
	for (int i = 0; i < NSG_STAGES; i++)
		assert_int_equal(r.trace.nsg[i].nsg_id, NSG_NONE);
}

static void nsg_stateful_return_traffic(void **state)
{
	struct harness_result r;

	require_gateway();
	r = send_packet(HUB, tcp4("10.10.3.9", 47000, "10.11.1.4", 80));
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_NEW);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 400, 0);
	/* the answer passes spoke1's outbound DenyAllOut (4000) on the flow */
	r = send_flags(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 47000), 0x12);
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	r = send_flags(HUB, tcp4("10.10.3.9", 47000, "10.11.1.4", 80), 0x10);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	/* the same ports, not an answer: a new flow out of spoke1, denied */
	r = send_packet(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 47001));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
}

static void nsg_ipv6(void **state)
{
	struct flow fl = { .family = AF_INET6, .src = "fd00:10:0:1::5", .dst = "fd00:11:0:1::4",
			   .proto = IPPROTO_TCP, .sport = 48000, .dport = 22 };
	struct flow back = { .family = AF_INET6, .src = "fd00:11:0:1::4", .dst = "fd00:10:0:1::5",
			     .proto = IPPROTO_TCP, .sport = 80, .dport = 48000 };
	struct harness_result r;

	require_gateway();
	/* 100 is IPv4 only; 110 holds the web subnet's IPv6 prefix */
	assert_denied(send_packet(HUB, fl), DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 110);
	fl.dport = 80;
	r = send_packet(HUB, fl);
	assert_allowed(r);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 400, 0);
	r = send_flags(SPOKE1, back, 0x12);
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	back.dport = 48001;
	assert_denied(send_packet(SPOKE1, back), DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
}

/* ICMP echo: the identifier keys the flow both ways. */
static struct flow echo(const char *src, const char *dst, uint16_t id)
{
	return (struct flow){ .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_ICMP,
			      .sport = id, .payload = 8 };
}

static struct harness_result send_echo_reply(int iface, struct flow fl)
{
	static const char *gw_macs[] = { HUB_GW_MAC, SPOKE1_GW_MAC };
	static const char *vm_macs[] = { HUB_VM_MAC, SPOKE1_VM_MAC };
	struct frame in;
	size_t ip = frame_build(&in, gw_macs[iface], vm_macs[iface], &fl);

	in.data[ip + 20] = 0; /* echo reply */
	return harness_run(&gw, iface, &in);
}

static void nsg_idle_expiry(void **state)
{
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	/* UDP: limits.udpIdleTimeoutSeconds is 60 in this config */
	assert_allowed(send_packet(HUB, udp4("10.10.3.9", 5353, "10.11.1.4", 8080)));
	assert_int_equal(nsg_age_flows(50), 1);
	r = send_packet(SPOKE1, udp4("10.11.1.4", 8080, "10.10.3.9", 5353));
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	assert_int_equal(nsg_age_flows(61), 1);
	r = send_packet(SPOKE1, udp4("10.11.1.4", 8080, "10.10.3.9", 5353));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);

	/* ICMP echo: 30 s */
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, echo("10.10.3.9", "10.11.1.4", 77)));
	r = send_echo_reply(SPOKE1, echo("10.11.1.4", "10.10.3.9", 77));
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	nsg_age_flows(31);
	r = send_echo_reply(SPOKE1, echo("10.11.1.4", "10.10.3.9", 77));
	assert_int_equal(r.verdict, XDP_DROP);
	assert_int_equal(r.trace.drop_reason, DROP_NSG_DENIED_OUTBOUND);

	/* TCP: established lives tcpIdleTimeoutSeconds (60 here); after RST, the transitory 30 s */
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, tcp4("10.10.3.9", 49000, "10.11.1.4", 80)));
	assert_allowed(send_flags(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 49000), 0x12));
	nsg_age_flows(50);
	r = send_flags(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 49000), 0x10);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	r = send_flags(HUB, tcp4("10.10.3.9", 49000, "10.11.1.4", 80), 0x04); /* RST */
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	nsg_age_flows(31);
	r = send_flags(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 49000), 0x10);
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);

	/* FIN both ways closes too */
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, tcp4("10.10.3.9", 49001, "10.11.1.4", 80)));
	assert_allowed(send_flags(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 49001), 0x12));
	assert_allowed(send_flags(HUB, tcp4("10.10.3.9", 49001, "10.11.1.4", 80), 0x11));
	assert_allowed(send_flags(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 49001), 0x11));
	nsg_age_flows(31);
	r = send_flags(SPOKE1, tcp4("10.11.1.4", 80, "10.10.3.9", 49001), 0x10);
	assert_int_equal(r.verdict, XDP_DROP);
}

/* Stamps every flow's last activity `ahead` ns later than the datapath's clock. */
static void flows_stamped_ahead(uint64_t ahead)
{
	struct flow_key key, next, *prev = NULL;
	struct flow_entry entry;

	for (int t = 0; t < 2; t++) {
		int fd = nsg_maps.flow_tables_fd[t];

		prev = NULL;
		while (!bpf_map_get_next_key(fd, prev, &next)) {
			if (!bpf_map_lookup_elem(fd, &next, &entry)) {
				entry.last_seen_ns = datapath_clock_ns() + ahead;
				assert_int_equal(bpf_map_update_elem(fd, &next, &entry, BPF_EXIST), 0);
			}
			key = next;
			prev = &key;
		}
	}
}

/* A flow last seen "later" than now is fresh within the clocks' skew; one stamped an hour
 * ahead holds no open door forever: it is judged anew, like an expired one. */
static void nsg_flow_stamped_ahead_is_judged_anew(void **state)
{
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, udp4("10.10.3.9", 5353, "10.11.1.4", 8080)));
	flows_stamped_ahead(CLOCK_SKEW_NS / 4);
	r = send_packet(SPOKE1, udp4("10.11.1.4", 8080, "10.10.3.9", 5353));
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	flows_stamped_ahead(3600 * NS_PER_SECOND);
	r = send_packet(SPOKE1, udp4("10.11.1.4", 8080, "10.10.3.9", 5353));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
}

static uint64_t flow_counter(uint32_t counter)
{
	int cpus = libbpf_num_possible_cpus();
	uint64_t values[cpus], sum = 0;

	assert_int_equal(bpf_map_lookup_elem(nsg_maps.flow_counters_fd, &counter, values), 0);
	for (int c = 0; c < cpus; c++)
		sum += values[c];
	return sum;
}

static long flow_entries(void)
{
	struct flow_key key, *prev = NULL;
	long n = 0;

	for (int t = 0; t < 2; t++) {
		prev = NULL;
		while (!bpf_map_get_next_key(nsg_maps.flow_tables_fd[t], prev, &key)) {
			n++;
			prev = &key;
		}
	}
	return n;
}

/* limits.flowTableSize 1024: a full table pushes out the least recently used flow; the
 * evicted count says so, and the evicted flow's answer is judged as a new flow. */
static void nsg_full_flow_table_evicts_least_recent(void **state)
{
	uint64_t created, gone;
	long active;
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	created = flow_counter(FLOW_CREATED);
	gone = flow_counter(FLOW_EXPIRED) + flow_counter(FLOW_DELETED) + flow_counter(FLOW_GC_REMOVED);
	for (int i = 0; i < 3000; i++)
		assert_allowed(send_packet(HUB, udp4("10.10.3.9", (uint16_t)(10000 + i), "10.11.1.4", 8080)));
	active = flow_entries();
	assert_true(active <= 1024);
	assert_int_equal(flow_counter(FLOW_CREATED) - created, 3000);
	/* evicted = created - expired - deleted - gc_removed - active, as stats computes it */
	assert_true(3000 - (flow_counter(FLOW_EXPIRED) + flow_counter(FLOW_DELETED) +
			    flow_counter(FLOW_GC_REMOVED) - gone) - active >= 3000 - 1024);
	assert_int_equal(flow_counter(FLOW_INSERT_FAILED), 0);
	r = send_packet(SPOKE1, udp4("10.11.1.4", 8080, "10.10.3.9", 12999));
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	r = send_packet(SPOKE1, udp4("10.11.1.4", 8080, "10.10.3.9", 10000));
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	nsg_clear_flows();
}

/* One VM floods new flows (3000, limits.flowTableSize 1024): they push out flows nobody
 * answered, never an answered one. Another VM's answered TCP connection still gets its
 * packets both ways, and it opens new connections meanwhile. */
static void nsg_flood_of_new_flows_keeps_answered_flows(void **state)
{
	struct flow victim = tcp4("10.10.3.9", 40000, "10.11.1.4", 80);
	struct flow answer = tcp4("10.11.1.4", 80, "10.10.3.9", 40000);
	uint64_t promoted;
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	promoted = flow_counter(FLOW_PROMOTED);
	assert_allowed(send_flags(HUB, victim, 0x02));
	assert_allowed(send_flags(SPOKE1, answer, 0x12));
	assert_int_equal(flow_counter(FLOW_PROMOTED), promoted + 1);
	/* Each flow of the flood sends twice: the LRU's second chance for entries looked up
	 * again does not save the answered flow then. */
	for (int i = 0; i < 3000; i++) {
		struct flow flood = udp4("10.10.3.8", (uint16_t)(10000 + i), "10.11.1.4", 8080);

		assert_allowed(send_packet(HUB, flood));
		assert_allowed(send_packet(HUB, flood));
	}
	r = send_flags(SPOKE1, answer, 0x10);
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	assert_allowed(send_flags(HUB, victim, 0x10));
	/* A new connection of the victim amid the flood: its answer finds it. */
	victim.sport = answer.dport = 40001;
	assert_allowed(send_flags(HUB, victim, 0x02));
	r = send_flags(SPOKE1, answer, 0x12);
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	nsg_clear_flows();
}

/* A rule change reaches existing flows only through NSGs with flushConnection. */
static void nsg_flush_connection(void **state)
{
	struct flow ssh = tcp4("10.10.3.9", 50000, "10.11.1.4", 22);
	struct flow answer = tcp4("10.11.1.4", 22, "10.10.3.9", 50000);
	struct harness_result r;

	require_gateway();
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, ssh));
	assert_allowed(send_flags(SPOKE1, answer, 0x12));

	/* AllowSsh becomes Deny, no flushConnection: the flow goes on, new ones are denied */
	assert_int_equal(write_config("Deny", false), 0);
	assert_int_equal(harness_reload(&gw), 0);
	r = send_flags(SPOKE1, answer, 0x10);
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);
	ssh.sport = 50001;
	assert_denied(send_packet(HUB, ssh), DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 200);

	/* back to Allow with flushConnection: re-evaluated, still allowed */
	assert_int_equal(write_config("Allow", true), 0);
	assert_int_equal(harness_reload(&gw), 0);
	r = send_flags(SPOKE1, answer, 0x10);
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_REVALIDATED);
	r = send_flags(SPOKE1, answer, 0x10);
	assert_int_equal(r.trace.flow, NSG_FLOW_HIT);

	/* Deny with flushConnection: the flow is judged again, as opened, and ends */
	assert_int_equal(write_config("Deny", true), 0);
	assert_int_equal(harness_reload(&gw), 0);
	r = send_flags(SPOKE1, answer, 0x10);
	assert_denied(r, DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 200);
	ssh.sport = 50000;
	r = send_flags(HUB, ssh, 0x10);
	assert_int_equal(r.verdict, XDP_DROP);

	assert_int_equal(write_config("Allow", false), 0);
	assert_int_equal(harness_reload(&gw), 0);
}

/* ---- ICMP errors, judged by the flow they quote ----
 * spoke1's subnet denies everything outbound (4000) and ICMP in to 10.11.1.7 and
 * fd00:11:0:1::7 (140); hub/web's denies ICMP in (150). Only the flow an error is about
 * lets it through. */

static struct frame quoted_packet(struct flow fl, uint8_t tcp_flags)
{
	struct frame q;

	frame_build(&q, HUB_GW_MAC, HUB_VM_MAC, &fl);
	if (tcp_flags && fl.proto == IPPROTO_TCP)
		q.data[14 + (fl.family == AF_INET ? 20 : 40) + 13] = tcp_flags;
	return q;
}

/* The IP packet of a frame quoted_packet built, and its length. */
static const uint8_t *ip_packet(const struct frame *q) { return q->data + 14; }
static size_t ip_length(const struct frame *q) { return q->len - 14; }

static const char *const gw_macs[] = { HUB_GW_MAC, SPOKE1_GW_MAC, SPOKE2_GW_MAC };
static const char *const vm_macs[] = { HUB_VM_MAC, SPOKE1_VM_MAC, SPOKE2_VM_MAC };

/* An error from `from` to `to` arriving on iface, quoting quote_len bytes of `quoted`. */
static struct harness_result send_error(int iface, int family, const char *from, const char *to,
					uint8_t type, uint8_t code, const uint8_t *quoted,
					size_t quote_len)
{
	struct frame in;

	frame_icmp_error(&in, gw_macs[iface], vm_macs[iface], family, from, to, type, code,
			 type == 3 && code == 4 ? 1400 : type == 2 ? 1280 : 0, quoted, quote_len);
	return harness_run(&gw, iface, &in);
}

static void assert_related(struct harness_result r, int64_t rule_id, int stage)
{
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_RELATED);
	assert_int_equal(r.trace.nsg[stage].rule_id, rule_id);
}

/* Destination unreachable (fragmentation needed, port unreachable), time exceeded and
 * parameter problem about a flow hub/web opened into spoke1 pass, both ways, whatever
 * the rules say of ICMP there, and open no flow of their own. */
static void icmp_errors_about_an_allowed_flow_pass_with_it(void **state)
{
	struct flow syn = tcp4("10.10.1.20", 47100, "10.11.1.7", 80);
	struct flow synack = tcp4("10.11.1.7", 80, "10.10.1.20", 47100);
	struct flow udp = udp4("10.10.1.20", 5300, "10.11.1.7", 5301);
	int64_t web = nsg_rule_id(SUBNET_NSG, "Inbound", "AllowWeb");
	int64_t vnet_in = nsg_rule_id(SUBNET_NSG, "Inbound", "AllowVnetInBound");
	struct frame q;
	uint64_t related;
	long flows;

	require_gateway();
	nsg_clear_flows();
	assert_true(web >= 0 && vnet_in >= 0);
	related = flow_counter(FLOW_ICMP_ERROR_RELATED);
	assert_allowed(send_packet(HUB, syn));
	assert_allowed(send_packet(HUB, udp));
	flows = flow_entries();
	q = quoted_packet(syn, 0);
	/* fragmentation needed from the server, quoting the IP header and 8 bytes (RFC 792) */
	assert_related(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 4, ip_packet(&q), 28),
		       web, NSG_STAGE_DESTINATION_SUBNET);
	/* time exceeded and parameter problem from a router in spoke1, quoting it whole */
	assert_related(send_error(SPOKE1, AF_INET, "10.11.1.1", "10.10.1.20", 11, 0, ip_packet(&q),
				  ip_length(&q)), web, NSG_STAGE_DESTINATION_SUBNET);
	assert_related(send_error(SPOKE1, AF_INET, "10.11.1.1", "10.10.1.20", 12, 0, ip_packet(&q),
				  ip_length(&q)), web, NSG_STAGE_DESTINATION_SUBNET);
	/* toward the server, about its answer: past DenyIcmpTo7 */
	q = quoted_packet(synack, 0x12);
	assert_related(send_error(HUB, AF_INET, "10.10.1.1", "10.11.1.7", 11, 0, ip_packet(&q), 28),
		       web, NSG_STAGE_DESTINATION_SUBNET);
	/* port unreachable about the UDP flow */
	q = quoted_packet(udp, 0);
	assert_related(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 3, ip_packet(&q),
				  ip_length(&q)), vnet_in, NSG_STAGE_DESTINATION_SUBNET);
	assert_int_equal(flow_entries(), flows);
	assert_int_equal(flow_counter(FLOW_ICMP_ERROR_RELATED), related + 5);
	nsg_clear_flows();
}

/* An error whose quote names no flow, the flow the other way round (the quote's sender
 * is not where the error goes) or a flow of another VNet is ICMP of its own: the rules
 * judge it. */
static void icmp_errors_about_no_flow_are_judged_as_icmp(void **state)
{
	struct flow syn = tcp4("10.10.1.20", 47110, "10.11.1.7", 80);
	struct flow other = tcp4("10.10.1.20", 47110, "10.11.1.7", 81);
	struct flow synack = tcp4("10.11.1.7", 80, "10.10.1.20", 47110);
	struct harness_result r;
	struct frame q;
	long flows;

	require_gateway();
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, syn));
	q = quoted_packet(other, 0);
	assert_denied(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 4, ip_packet(&q), 28),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	assert_denied(send_error(HUB, AF_INET, "10.10.1.1", "10.11.1.7", 11, 0, ip_packet(&q), 28),
		      DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 140);
	/* reversed: the server's answer quoted in an error that goes to the client */
	q = quoted_packet(synack, 0x12);
	assert_denied(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 4, ip_packet(&q), 28),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	/* from spoke2, about the flow between hub/web and spoke1 */
	q = quoted_packet(syn, 0);
	assert_denied(send_error(SPOKE2, AF_INET, "10.12.1.9", "10.10.1.20", 3, 4, ip_packet(&q), 28),
		      DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 150);
	/* one the rules allow passes by them alone, and leaves no flow behind */
	flows = flow_entries();
	r = send_error(HUB, AF_INET, "10.10.3.1", "10.11.1.5", 3, 4, ip_packet(&q), 28);
	assert_allowed(r);
	assert_int_equal(r.trace.flow, NSG_FLOW_UNTRACKED);
	assert_stage(r, NSG_STAGE_DESTINATION_SUBNET, 65000, 0);
	assert_int_equal(flow_entries(), flows);
	/* an expired flow has nothing an error could belong to */
	nsg_age_flows(61);
	assert_denied(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 4, ip_packet(&q), 28),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	nsg_clear_flows();
}

/* A quote shorter than its IP header and 8 bytes, or not an IPv4 header, names nothing
 * that could be checked: dropped as icmp_quote_malformed, never judged blind. A quote of
 * a later fragment (no ports) is well formed and judged as ICMP. */
static void icmp_errors_with_a_malformed_quote_are_dropped(void **state)
{
	struct flow syn = tcp4("10.10.1.20", 47120, "10.11.1.7", 80);
	struct frame q;
	uint8_t bad[28];

	require_gateway();
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, syn));
	q = quoted_packet(syn, 0);
	for (size_t cut = 0; cut < 28; cut += 6) {
		struct harness_result r = send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 4,
						     ip_packet(&q), cut);

		assert_int_equal(r.verdict, XDP_DROP);
		assert_int_equal(r.trace.drop_reason, DROP_ICMP_QUOTE_MALFORMED);
	}
	memcpy(bad, ip_packet(&q), sizeof(bad));
	bad[0] = 0x44; /* a header length below 20 bytes */
	assert_int_equal(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 4, bad, 28).trace.drop_reason,
			 DROP_ICMP_QUOTE_MALFORMED);
	bad[0] = 0x65; /* IPv6 in an ICMPv4 error */
	assert_int_equal(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 3, 4, bad, 28).trace.drop_reason,
			 DROP_ICMP_QUOTE_MALFORMED);
	memcpy(bad, ip_packet(&q), sizeof(bad));
	put16(bad + 6, 0x0010); /* a later fragment */
	assert_denied(send_error(SPOKE1, AF_INET, "10.11.1.7", "10.10.1.20", 11, 1, bad, 28),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	nsg_clear_flows();
}

/* traceroute with ping: the quote is an echo request, matched on its identifier. */
static void icmp_error_about_an_echo_matches_its_identifier(void **state)
{
	struct flow ping = echo("10.10.1.20", "10.11.1.8", 0x3131);
	struct flow other = echo("10.10.1.20", "10.11.1.8", 0x3132);
	struct frame q;

	require_gateway();
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, ping));
	q = quoted_packet(ping, 0);
	assert_related(send_error(SPOKE1, AF_INET, "10.11.1.1", "10.10.1.20", 11, 0, ip_packet(&q),
				  ip_length(&q)),
		       nsg_rule_id(SUBNET_NSG, "Inbound", "AllowVnetInBound"),
		       NSG_STAGE_DESTINATION_SUBNET);
	q = quoted_packet(other, 0);
	assert_denied(send_error(SPOKE1, AF_INET, "10.11.1.1", "10.10.1.20", 11, 0, ip_packet(&q),
				 ip_length(&q)),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	nsg_clear_flows();
}

/* The quoted IPv6 packet with an extension header of `len` bytes (type `type`) after its
 * fixed header, `count` times. */
static struct frame quoted_with_extensions(struct flow fl, uint8_t type, size_t len, int count,
					   uint16_t frag_off)
{
	struct frame q = quoted_packet(fl, 0);
	uint8_t *ip6 = q.data + 14;

	for (int i = 0; i < count; i++) {
		uint8_t ext[16] = { ip6[6], (uint8_t)(len / 8 - 1), 1 /* PadN */, (uint8_t)(len - 4) };

		if (type == IPPROTO_FRAGMENT) {
			memset(ext + 1, 0, 7);
			put16(ext + 2, frag_off);
		}
		memmove(ip6 + 40 + len, ip6 + 40, q.len - 14 - 40);
		memcpy(ip6 + 40, ext, len);
		ip6[6] = type;
		put16(ip6 + 4, ((ip6[4] << 8) | ip6[5]) + len);
		q.len += len;
	}
	return q;
}

/* ICMPv6: destination unreachable, packet too big and time exceeded about a flow pass
 * with it, both ways, a quote's destination options passed over; no flow, the other
 * way round, cut short, or behind a longer extension chain than followed: not. */
static void icmpv6_errors_about_an_allowed_flow_pass_with_it(void **state)
{
	struct flow syn = { .family = AF_INET6, .src = "fd00:10:0:1::20", .dst = "fd00:11:0:1::7",
			    .proto = IPPROTO_TCP, .sport = 47200, .dport = 80 };
	struct flow synack = { .family = AF_INET6, .src = "fd00:11:0:1::7", .dst = "fd00:10:0:1::20",
			       .proto = IPPROTO_TCP, .sport = 80, .dport = 47200 };
	struct flow other = syn;
	int64_t web = nsg_rule_id(SUBNET_NSG, "Inbound", "AllowWeb");
	const char *server = "fd00:11:0:1::7", *client = "fd00:10:0:1::20";
	struct frame q;
	long flows;

	require_gateway();
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, syn));
	flows = flow_entries();
	q = quoted_packet(syn, 0);
	assert_related(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), ip_length(&q)),
		       web, NSG_STAGE_DESTINATION_SUBNET);
	assert_related(send_error(SPOKE1, AF_INET6, server, client, 1, 4, ip_packet(&q), 48),
		       web, NSG_STAGE_DESTINATION_SUBNET);
	assert_related(send_error(SPOKE1, AF_INET6, "fd00:11:0:1::1", client, 3, 0, ip_packet(&q),
				  ip_length(&q)), web, NSG_STAGE_DESTINATION_SUBNET);
	q = quoted_with_extensions(syn, IPPROTO_DSTOPTS, 8, 2, 0);
	assert_related(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), ip_length(&q)),
		       web, NSG_STAGE_DESTINATION_SUBNET);
	q = quoted_with_extensions(syn, IPPROTO_FRAGMENT, 8, 1, 0x0001); /* a first fragment */
	assert_related(send_error(SPOKE1, AF_INET6, server, client, 3, 1, ip_packet(&q), ip_length(&q)),
		       web, NSG_STAGE_DESTINATION_SUBNET);
	q = quoted_packet(synack, 0x12);
	assert_related(send_error(HUB, AF_INET6, "fd00:10:0:1::1", server, 3, 0, ip_packet(&q), 48),
		       web, NSG_STAGE_DESTINATION_SUBNET);
	assert_int_equal(flow_entries(), flows);

	/* the answer's quote going to the client: the other way round */
	assert_denied(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), ip_length(&q)),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	other.dport = 81;
	q = quoted_packet(other, 0);
	assert_denied(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), ip_length(&q)),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	assert_denied(send_error(HUB, AF_INET6, "fd00:10:0:1::1", server, 1, 0, ip_packet(&q), 48),
		      DROP_NSG_DENIED_INBOUND, NSG_STAGE_DESTINATION_SUBNET, 140);
	q = quoted_with_extensions(syn, IPPROTO_FRAGMENT, 8, 1, 0x0100); /* a later fragment */
	assert_denied(send_error(SPOKE1, AF_INET6, server, client, 3, 1, ip_packet(&q), ip_length(&q)),
		      DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);

	/* cut inside the transport header, inside an extension header, a chain of five */
	q = quoted_packet(syn, 0);
	assert_int_equal(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), 44).trace.drop_reason,
			 DROP_ICMP_QUOTE_MALFORMED);
	q = quoted_with_extensions(syn, IPPROTO_DSTOPTS, 16, 1, 0);
	assert_int_equal(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), 50).trace.drop_reason,
			 DROP_ICMP_QUOTE_MALFORMED);
	q = quoted_with_extensions(syn, IPPROTO_DSTOPTS, 8, 5, 0);
	assert_int_equal(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), ip_length(&q)).trace.drop_reason,
			 DROP_ICMP_QUOTE_MALFORMED);
	q = quoted_packet(tcp4("10.10.1.20", 47200, "10.11.1.7", 80), 0); /* IPv4 in ICMPv6 */
	assert_int_equal(send_error(SPOKE1, AF_INET6, server, client, 2, 0, ip_packet(&q), ip_length(&q)).trace.drop_reason,
			 DROP_ICMP_QUOTE_MALFORMED);
	nsg_clear_flows();
}

/* An echo flow's lease (identifier 0) covers the replies, not an error whose bytes 4-5
 * read 0 too: the error takes the whole pipeline and is judged by what it quotes. */
static void icmp_error_is_not_served_under_an_echo_lease(void **state)
{
	struct flow ping = echo("10.10.1.4", "10.11.1.4", 0);
	struct flow stray = udp4("10.10.1.4", 999, "10.11.1.4", 999);
	struct harness_result r;
	struct frame q;

	require_gateway();
	nsg_clear_flows();
	assert_allowed(send_packet(HUB, ping));
	for (int i = 0; i < 3; i++)
		r = send_echo_reply(SPOKE1, echo("10.11.1.4", "10.10.1.4", 0));
	assert_int_equal(r.verdict, XDP_REDIRECT);
	assert_int_equal(r.trace.fast_path, FAST_PATH_LEASED);
	q = quoted_packet(stray, 0);
	r = send_error(SPOKE1, AF_INET, "10.11.1.4", "10.10.1.4", 11, 0, ip_packet(&q), 28);
	assert_int_equal(r.trace.fast_path, FAST_PATH_NONE);
	assert_denied(r, DROP_NSG_DENIED_OUTBOUND, NSG_STAGE_SOURCE_SUBNET, 4000);
	nsg_clear_flows();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nsg_priority_first_match),
		cmocka_unit_test(nsg_default_rules_in_force),
		cmocka_unit_test(nsg_service_tags),
		cmocka_unit_test(nsg_internet_tag_outbound),
		cmocka_unit_test(nsg_application_security_group_is_its_nics),
		cmocka_unit_test(nsg_service_tag_from_the_tag_file),
		cmocka_unit_test(nsg_application_security_group_membership_follows_reload),
		cmocka_unit_test(nsg_plural_prefixes_and_ports),
		cmocka_unit_test(nsg_inbound_subnet_then_nic),
		cmocka_unit_test(nsg_outbound_nic_then_subnet),
		cmocka_unit_test(nsg_intra_subnet),
		cmocka_unit_test(nsg_stateful_return_traffic),
		cmocka_unit_test(nsg_ipv6),
		cmocka_unit_test(nsg_idle_expiry),
		cmocka_unit_test(nsg_flow_stamped_ahead_is_judged_anew),
		cmocka_unit_test(nsg_full_flow_table_evicts_least_recent),
		cmocka_unit_test(nsg_flood_of_new_flows_keeps_answered_flows),
		cmocka_unit_test(nsg_flush_connection),
		cmocka_unit_test(icmp_errors_about_an_allowed_flow_pass_with_it),
		cmocka_unit_test(icmp_errors_about_no_flow_are_judged_as_icmp),
		cmocka_unit_test(icmp_errors_with_a_malformed_quote_are_dropped),
		cmocka_unit_test(icmp_error_about_an_echo_matches_its_identifier),
		cmocka_unit_test(icmpv6_errors_about_an_allowed_flow_pass_with_it),
		cmocka_unit_test(icmp_error_is_not_served_under_an_echo_lease),
	};

	return cmocka_run_group_tests_name("nsg", tests, setup, teardown);
}

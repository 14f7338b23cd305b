/* Packet tests of the tunnel stage: ESP, ESP-in-UDP and IKE arriving on the uplink, and
 * decrypted packets on a connection's interface, run through the gateway's programs with
 * BPF_PROG_TEST_RUN. The host kernel has no ESP and no xfrm interfaces, so the tunnel
 * maps are filled here as `up` fills them for a connection, and a veth stands in for the
 * xfrm interface (tc sees a decapsulated packet behind the room of the outer Ethernet
 * header, as BPF_PROG_TEST_RUN gives it). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include "vnet_xdp.h"
#include "lib/bpf_map.h"
#include "packet/gateway_harness.h"


#define LOCAL_ENDPOINT "198.51.100.1"
#define PEER "198.51.100.2"
#define STRANGER "198.51.100.3"
#define TUNNEL 3
#define HUB_VNET 0
#define ONPREM_VM "192.168.50.10"
#define SPI 0xc0ffee01u
/* A gateway's point-to-site clients: their tunnel, pool and two of its addresses. */
#define P2S_TUNNEL 4
#define P2S_POOL "172.16.201.0"
#define CLIENT "172.16.201.2"
#define OTHER_CLIENT "172.16.201.3"

/* ARM security rules, one line each (jq text). */
#define NSG_RULE(name, priority, direction, access, source, destination, port)               \
	"{\"name\": \"" name "\", \"properties\": {\"priority\": " #priority ", "              \
	"\"direction\": \"" direction "\", \"access\": \"" access "\", \"protocol\": \"*\", "   \
	"\"sourceAddressPrefix\": \"" source "\", \"sourcePortRange\": \"*\", "                \
	"\"destinationAddressPrefix\": \"" destination "\", \"destinationPortRange\": \"" port "\"}}"

/* The same for protocol Icmp, any port. */
#define ICMP_RULE(name, priority, direction, access, source)                                   \
	"{\"name\": \"" name "\", \"properties\": {\"priority\": " #priority ", "              \
	"\"direction\": \"" direction "\", \"access\": \"" access "\", \"protocol\": \"Icmp\", " \
	"\"sourceAddressPrefix\": \"" source "\", \"sourcePortRange\": \"*\", "                \
	"\"destinationAddressPrefix\": \"*\", \"destinationPortRange\": \"*\"}}"

/* The topology's config with an NSG on the hub's subnet: ICMP from the on-premises router
 * 192.168.50.1 denied inbound, port 2222 from on-premises and from the point-to-site pool
 * denied inbound, port 2323 toward on-premises denied outbound, the rest to and from
 * on-premises and from the pool allowed (the connection is filled in by hand below, so Azure's VirtualNetwork
 * tag does not hold the on-premises space here). */
static const char tunnel_nsg_config[] =
	"topology_config $GATEWAY | jq '.resources += [{\"type\": "
	"\"Microsoft.Network/networkSecurityGroups\", \"name\": \"hub-nsg\", \"properties\": "
	"{\"securityRules\": ["
	NSG_RULE("DenyOnpremInbound2222", 100, "Inbound", "Deny", "192.168.50.0/24", "*", "2222") ", "
	ICMP_RULE("DenyOnpremRouterIcmp", 150, "Inbound", "Deny", "192.168.50.1") ", "
	NSG_RULE("AllowOnpremInbound", 200, "Inbound", "Allow", "192.168.50.0/24", "*", "*") ", "
	NSG_RULE("DenyClientsInbound2222", 110, "Inbound", "Deny", "172.16.201.0/24", "*", "2222") ", "
	NSG_RULE("AllowClientsInbound", 210, "Inbound", "Allow", "172.16.201.0/24", "*", "*") ", "
	NSG_RULE("DenyOnpremOutbound2323", 100, "Outbound", "Deny", "*", "192.168.50.0/24", "2323") ", "
	NSG_RULE("AllowOnpremOutbound", 200, "Outbound", "Allow", "*", "192.168.50.0/24", "*")
	"]}}] | (.resources[] | select(.name == \"hub\") | .properties.subnets[0].properties"
	".networkSecurityGroup) = {\"id\": \"hub-nsg\"}'";

static struct gateway_harness harness = { .prefix = "vxtun", .gateway = "pkttun",
					  .config_command = tunnel_nsg_config };

static struct {
	uint32_t hub, uplink, tunnel_if, p2s_if;
	int xdp_uplink, xdp_hub, tc_in, tc_out;
	int drops_fd, datapath_fd, tunnel_fd, spi_fd, clients_fd;
	struct bpf_object *obj;
} gw;

static void address_key_of(struct address_key *key, const char *text)
{
	memset(key, 0, sizeof(*key));
	key->family = strchr(text, ':') ? AF_INET6 : AF_INET;
	inet_pton(key->family, text, key->addr);
}

static void lpm_key_of(struct lpm_key *key, uint32_t scope, const char *addr, int len)
{
	memset(key, 0, sizeof(*key));
	key->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	key->scope = scope;
	key->prefixlen = LPM_SCOPE_BITS + len;
	inet_pton(key->family, addr, key->addr);
}

/* What `up` writes for one IPsec connection from the hub's gateway to 198.51.100.2
 * whose on-premises space is 192.168.50.0/24, with its xfrm interface at tunnel_if. */
static int connection_fill(void)
{
	struct address_key peer_key, local_key;
	struct tunnel_peer peer = { .tunnel = TUNNEL };
	struct tunnel_interface ti = { .tunnel = TUNNEL, .vnet = HUB_VNET,
				       .tcp_mss = DEFAULT_TUNNEL_TCP_MSS };
	struct route_info to_onprem = { .type = ROUTE_TUNNEL, .peering = TUNNEL }; /* as plan.c: the tunnel id */
	struct route_info to_hub = { .type = ROUTE_VNET_LOCAL, .dst_vnet = HUB_VNET };
	struct lpm_key key;
	uint32_t one = 1, vnet = HUB_VNET;
	int peers = harness_map(&harness, "tunnel_peers");
	int endpoints = harness_map(&harness, "tunnel_endpoints");
	int ifaces = harness_map(&harness, "tunnel_interfaces");
	int routes = harness_map(&harness, "routes");
	int sources = harness_map(&harness, "source_prefixes"), err = 0;

	if (peers < 0 || endpoints < 0 || ifaces < 0 || routes < 0 || sources < 0)
		return -1;
	address_key_of(&peer_key, PEER);
	address_key_of(&local_key, LOCAL_ENDPOINT);
	peer.xfrm_ifindex = gw.tunnel_if;
	peer.local = local_key;
	to_onprem.egress_ifindex = gw.tunnel_if;
	to_hub.egress_ifindex = gw.hub;
	err |= bpf_map_update_elem(peers, &peer_key, &peer, BPF_ANY);
	err |= bpf_map_update_elem(endpoints, &local_key, &one, BPF_ANY);
	err |= bpf_map_update_elem(ifaces, &gw.tunnel_if, &ti, BPF_ANY);
	/* The hub's route to on-premises, more specific than Azure's None for 192.168/16. */
	lpm_key_of(&key, HUB_VNET, "192.168.50.0", 24);
	err |= bpf_map_update_elem(routes, &key, &to_onprem, BPF_ANY);
	/* The tunnel's own table: the hub only. */
	lpm_key_of(&key, TUNNEL_ROUTE_SCOPE | TUNNEL, "10.10.0.0", 16);
	err |= bpf_map_update_elem(routes, &key, &to_hub, BPF_ANY);
	/* Decrypted sources must be in the connection's remote address space. */
	lpm_key_of(&key, gw.tunnel_if, "192.168.50.0", 24);
	err |= bpf_map_update_elem(sources, &key, &vnet, BPF_ANY);
	close(peers);
	close(endpoints);
	close(ifaces);
	close(routes);
	close(sources);
	return err ? -1 : 0;
}

/* What `up` writes for the hub gateway's point-to-site clients, pool 172.16.201.0/24,
 * their xfrm interface at p2s_if (the uplink's ESP side is the connection's, above). */
static int point_to_site_fill(void)
{
	struct tunnel_interface ti = { .tunnel = P2S_TUNNEL, .vnet = HUB_VNET,
				       .tcp_mss = DEFAULT_TUNNEL_TCP_MSS,
				       .flags = TUNNEL_FLAG_POINT_TO_SITE };
	struct route_info to_hub = { .type = ROUTE_VNET_LOCAL, .dst_vnet = HUB_VNET,
				     .egress_ifindex = gw.hub };
	struct source_info pool = { .vnet = HUB_VNET };
	struct lpm_key key;
	int ifaces = harness_map(&harness, "tunnel_interfaces");
	int routes = harness_map(&harness, "routes");
	int sources = harness_map(&harness, "source_prefixes"), err = 0;

	if (ifaces < 0 || routes < 0 || sources < 0)
		return -1;
	err |= bpf_map_update_elem(ifaces, &gw.p2s_if, &ti, BPF_ANY);
	lpm_key_of(&key, TUNNEL_ROUTE_SCOPE | P2S_TUNNEL, "10.10.0.0", 16);
	err |= bpf_map_update_elem(routes, &key, &to_hub, BPF_ANY);
	lpm_key_of(&key, gw.p2s_if, P2S_POOL, 24);
	err |= bpf_map_update_elem(sources, &key, &pool, BPF_ANY);
	close(ifaces);
	close(routes);
	close(sources);
	return err ? -1 : 0;
}

static int program_fd(const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(gw.obj, name);

	return prog ? bpf_program__fd(prog) : -1;
}

/* The tunnel's part of the setup failed: no test runs, and the reason says why. */
static int setup_failed(const char *why)
{
	harness.ready = false;
	harness.why_not = why;
	return -1;
}

static int setup_gateway(void **state)
{
	char path[256];

	if (harness_up(&harness))
		return -1;
	if (!harness.ready) /* skipped, with the reason */
		return 0;
	/* A veth in the gateway's namespace stands in for the connection's xfrm interface. */
	if (harness_shell("ip link add tuntest0 type veth peer name tuntest1 && "
			  "ip link set tuntest0 up && ip link set tuntest1 up && "
			  "ip link add tuntest2 type veth peer name tuntest3 && "
			  "ip link set tuntest2 up && ip link set tuntest3 up"))
		return setup_failed("cannot create the stand-ins for the xfrm interfaces");
	gw.hub = harness.ifaces[HUB].ifindex;
	gw.uplink = harness.ifaces[UPLINK].ifindex;
	gw.tunnel_if = if_nametoindex("tuntest0");
	gw.p2s_if = if_nametoindex("tuntest2");
	gw.xdp_uplink = harness.ifaces[UPLINK].prog_fd;
	gw.xdp_hub = harness.ifaces[HUB].prog_fd;
	/* The tc programs of the same object, sharing the gateway's pinned maps. */
	snprintf(path, sizeof(path), "%s/vnet_xdp.bpf.o", harness_build_dir());
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = harness.pin_dir);
	gw.obj = bpf_object__open_file(path, &opts);
	if (!gw.obj || bpf_object__load(gw.obj))
		return setup_failed("cannot load the BPF object");
	gw.tc_in = program_fd("tc_tunnel_ingress");
	gw.tc_out = program_fd("tc_tunnel_egress");
	gw.drops_fd = harness.drops_fd;
	gw.datapath_fd = harness.datapath_fd;
	gw.tunnel_fd = harness_map(&harness, "tunnel_counters");
	gw.spi_fd = harness_map(&harness, "tunnel_spi_counters");
	gw.clients_fd = harness_map(&harness, "tunnel_client_counters");
	if (gw.tc_in < 0 || gw.tc_out < 0 || gw.tunnel_fd < 0 || gw.spi_fd < 0 ||
	    gw.clients_fd < 0)
		return setup_failed("the tunnel programs or maps are not there");
	if (connection_fill() || point_to_site_fill())
		return setup_failed("cannot fill the tunnel maps");
	return 0;
}

static int teardown_gateway(void **state)
{
	if (gw.obj)
		bpf_object__close(gw.obj);
	harness_down(&harness);
	return 0;
}

static void require_gateway(void) { harness_require(&harness); }

static int run_xdp(int prog_fd, uint32_t ifindex, const struct frame *in)
{
	struct xdp_md ctx = { .data_end = in->len, .ingress_ifindex = ifindex };
	uint8_t out[FRAME_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->data, .data_size_in = in->len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &opts), 0);
	/* What the kernel gets is what came in. */
	if (opts.retval == XDP_PASS) {
		assert_int_equal(opts.data_size_out, in->len);
		assert_memory_equal(out, in->data, in->len);
	}
	return opts.retval;
}

static int run_tc(int prog_fd, uint32_t ifindex, const struct frame *in)
{
	struct __sk_buff ctx = { .ifindex = ifindex };
	uint8_t out[FRAME_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->data, .data_size_in = in->len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &opts), 0);
	return opts.retval;
}

/* The same, with the packet as the program left it in *out. */
static int run_tc_out(int prog_fd, uint32_t ifindex, const struct frame *in, struct frame *out)
{
	struct __sk_buff ctx = { .ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in->data, .data_size_in = in->len,
		    .data_out = out->data, .data_size_out = sizeof(out->data), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &opts), 0);
	out->len = opts.data_size_out;
	return opts.retval;
}

static struct packet_counter counter_of(int fd, const void *key)
{
	int cpus = libbpf_num_possible_cpus();
	struct packet_counter values[cpus], sum = { 0 };

	if (bpf_map_lookup_elem(fd, key, values))
		return sum;
	for (int c = 0; c < cpus; c++) {
		sum.packets += values[c].packets;
		sum.bytes += values[c].bytes;
	}
	return sum;
}

static struct packet_counter tunnel_counter_of(uint32_t tunnel, uint32_t counter)
{
	uint32_t index = tunnel * TUNNEL_COUNTER_MAX + counter;

	return counter_of(gw.tunnel_fd, &index);
}

static struct packet_counter tunnel_counter(uint32_t counter)
{
	return tunnel_counter_of(TUNNEL, counter);
}

static struct packet_counter spi_counter(const char *peer, uint32_t spi)
{
	struct tunnel_spi_key key = { .spi = spi };

	address_key_of(&key.peer, peer);
	return counter_of(gw.spi_fd, &key);
}

static uint64_t packets_of(int fd, uint32_t index)
{
	return counter_of(fd, &index).packets;
}

/* An IPv4 ESP packet: SPI, sequence number and `payload` bytes of ciphertext. */
static void frame_esp(struct frame *f, const char *src, const char *dst, uint32_t spi,
		      size_t payload)
{
	struct flow fl = { .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_UDP,
			   .sport = 1, .dport = 1, .ip_id = 7, .payload = payload };
	uint8_t *ip;

	frame_build(f, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	ip = f->data + 14;
	ip[9] = 50; /* ESP: the bytes after the header are SPI, sequence, ciphertext */
	put16(ip + 20, spi >> 16);
	put16(ip + 22, spi & 0xffff);
	put16(ip + 24, 0);
	put16(ip + 26, 1);
	ipv4_header_checksum(ip);
}

/* UDP from port 4500 to 4500 whose payload starts with `first_word` (an SPI, or zero for
 * IKE's non-ESP marker); payload of one byte: the NAT keepalive 0xff. */
static void frame_udp_encap(struct frame *f, const char *src, const char *dst, uint16_t dport,
			    uint32_t first_word, size_t payload)
{
	struct flow fl = { .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_UDP,
			   .sport = 4500, .dport = dport, .ip_id = 9, .payload = payload };
	uint8_t *udp;

	frame_build(f, UPLINK_GW_MAC, UPLINK_PEER_MAC, &fl);
	udp = f->data + 14 + 20;
	if (payload == 1) {
		udp[8] = 0xff;
	} else {
		put16(udp + 8, first_word >> 16);
		put16(udp + 10, first_word & 0xffff);
	}
	put16(udp + 6, 0); /* no UDP checksum: allowed over IPv4 */
}

/* ---- the uplink ---- */

static void esp_from_the_peer_is_counted_by_spi_and_passed(void **state)
{
	struct packet_counter esp, spi, esp_after, spi_after;
	uint64_t passed = packets_of(gw.datapath_fd, COUNT_PASS_ESP);
	struct frame in;

	require_gateway();
	frame_esp(&in, PEER, LOCAL_ENDPOINT, SPI, 100);
	esp = tunnel_counter(TUNNEL_ESP_IN);
	spi = spi_counter(PEER, SPI);
	for (int i = 0; i < 3; i++)
		assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_PASS);
	esp_after = tunnel_counter(TUNNEL_ESP_IN);
	spi_after = spi_counter(PEER, SPI);
	assert_int_equal(esp_after.packets, esp.packets + 3);
	assert_int_equal(esp_after.bytes, esp.bytes + 3 * (in.len - 14));
	assert_int_equal(spi_after.packets, spi.packets + 3);
	assert_int_equal(spi_after.bytes, spi.bytes + 3 * (in.len - 14));
	assert_int_equal(packets_of(gw.datapath_fd, COUNT_PASS_ESP), passed + 3);
	/* Another SPI (after a rekey) has its own counter. */
	frame_esp(&in, PEER, LOCAL_ENDPOINT, SPI + 1, 64);
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_PASS);
	assert_int_equal(spi_counter(PEER, SPI + 1).packets, 1);
	assert_int_equal(spi_counter(PEER, SPI).packets, spi_after.packets);
}

static void esp_in_udp_from_the_peer_is_counted_and_passed(void **state)
{
	struct packet_counter before = spi_counter(PEER, SPI + 2);
	uint64_t esp = tunnel_counter(TUNNEL_ESP_IN).packets;
	struct frame in;

	require_gateway();
	frame_udp_encap(&in, PEER, LOCAL_ENDPOINT, 4500, SPI + 2, 120);
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_PASS);
	assert_int_equal(spi_counter(PEER, SPI + 2).packets, before.packets + 1);
	assert_int_equal(spi_counter(PEER, SPI + 2).bytes, before.bytes + in.len - 14);
	assert_int_equal(tunnel_counter(TUNNEL_ESP_IN).packets, esp + 1);
}

static void ike_goes_to_the_kernel_uncounted(void **state)
{
	uint64_t ike = packets_of(gw.datapath_fd, COUNT_PASS_IKE);
	uint64_t esp = tunnel_counter(TUNNEL_ESP_IN).packets;
	struct frame in;

	require_gateway();
	frame_udp_encap(&in, PEER, LOCAL_ENDPOINT, 500, 0x12345678, 200); /* IKE_SA_INIT */
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_PASS);
	frame_udp_encap(&in, PEER, LOCAL_ENDPOINT, 4500, 0, 200); /* non-ESP marker */
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_PASS);
	frame_udp_encap(&in, PEER, LOCAL_ENDPOINT, 4500, 0, 1); /* NAT keepalive */
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_PASS);
	/* IKE from anyone reaches charon: it is charon that authenticates peers. */
	frame_udp_encap(&in, STRANGER, LOCAL_ENDPOINT, 500, 0x12345678, 200);
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_PASS);
	assert_int_equal(packets_of(gw.datapath_fd, COUNT_PASS_IKE), ike + 4);
	assert_int_equal(tunnel_counter(TUNNEL_ESP_IN).packets, esp);
	assert_int_equal(spi_counter(PEER, 0).packets, 0);
}

static void esp_from_an_unknown_peer_is_dropped(void **state)
{
	uint64_t drops = packets_of(gw.drops_fd, DROP_TUNNEL_UNKNOWN_PEER);
	uint64_t esp = tunnel_counter(TUNNEL_ESP_IN).packets;
	struct frame in;

	require_gateway();
	frame_esp(&in, STRANGER, LOCAL_ENDPOINT, SPI, 100);
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_DROP);
	frame_udp_encap(&in, STRANGER, LOCAL_ENDPOINT, 4500, SPI, 100);
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_DROP);
	/* ESP too short to hold an SPI. */
	frame_esp(&in, PEER, LOCAL_ENDPOINT, SPI, 0);
	in.len = 14 + 20 + 2;
	in.data[14 + 3] = 22;
	ipv4_header_checksum(in.data + 14);
	assert_int_equal(run_xdp(gw.xdp_uplink, gw.uplink, &in), XDP_DROP);
	assert_int_equal(packets_of(gw.drops_fd, DROP_TUNNEL_UNKNOWN_PEER), drops + 3);
	assert_int_equal(tunnel_counter(TUNNEL_ESP_IN).packets, esp);
	assert_int_equal(spi_counter(STRANGER, SPI).packets, 0);
}

static void esp_between_vms_is_forwarded_like_any_traffic(void **state)
{
	struct frame in;
	struct flow fl = { .family = AF_INET, .src = "10.10.1.4", .dst = "10.11.1.4",
			   .proto = IPPROTO_UDP, .sport = 1, .dport = 1, .payload = 40 };
	uint64_t esp = tunnel_counter(TUNNEL_ESP_IN).packets;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	in.data[14 + 9] = 50;
	ipv4_header_checksum(in.data + 14);
	/* A VM's own IPsec is not the gateway's: it follows the VNet's routes (here a peering
	 * whose neighbour the kernel resolves first). */
	assert_int_not_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_DROP);
	assert_int_equal(tunnel_counter(TUNNEL_ESP_IN).packets, esp);
}

static void vnet_traffic_to_onprem_goes_to_the_kernel_for_xfrm(void **state)
{
	struct flow fl = { .family = AF_INET, .src = "10.10.1.4", .dst = ONPREM_VM,
			   .proto = IPPROTO_TCP, .sport = 40000, .dport = 22 };
	uint64_t tunnel = packets_of(gw.datapath_fd, COUNT_PASS_TUNNEL);
	struct frame in;

	require_gateway();
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_PASS);
	assert_int_equal(packets_of(gw.datapath_fd, COUNT_PASS_TUNNEL), tunnel + 1);
	/* The rest of 192.168/16 keeps Azure's None route. */
	fl.dst = "192.168.51.10";
	frame_build(&in, HUB_GW_MAC, HUB_VM_MAC, &fl);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_DROP);
}

/* ---- the connection's interface ---- */

static void frame_inner(struct frame *f, const char *src, const char *dst, size_t payload)
{
	struct flow fl = { .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_ICMP,
			   .sport = 77, .ip_id = 5, .payload = payload };

	frame_build(f, "00:00:00:00:00:00", "00:00:00:00:00:00", &fl);
}

static void decrypted_packet_is_counted_and_forwarded_into_the_vnet(void **state)
{
	struct packet_counter before = tunnel_counter(TUNNEL_INGRESS), after;
	struct frame in;

	require_gateway();
	frame_inner(&in, ONPREM_VM, "10.10.1.4", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	after = tunnel_counter(TUNNEL_INGRESS);
	assert_int_equal(after.packets, before.packets + 1);
	assert_int_equal(after.bytes, before.bytes + in.len - 14);
}

/* The same programs run on an ExpressRoute link's VLAN device (Ethernet): ARP there is
 * the kernel's, neither judged nor counted. */
static void arp_on_a_link_goes_to_the_kernel_uncounted(void **state)
{
	static const uint8_t arp[42] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0x77, 0x01, 0x08, 0x06,
		0, 1, 0x08, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0x77, 0x01, 192, 168, 15, 17,
		0, 0, 0, 0, 0, 0, 192, 168, 15, 18 };
	struct packet_counter before = tunnel_counter(TUNNEL_DROP_INGRESS_MALFORMED);
	struct packet_counter ingress = tunnel_counter(TUNNEL_INGRESS);
	struct frame in = { .len = sizeof(arp) };

	require_gateway();
	memcpy(in.data, arp, sizeof(arp));
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_OK);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_INGRESS_MALFORMED).packets, before.packets);
	assert_int_equal(tunnel_counter(TUNNEL_INGRESS).packets, ingress.packets);
	assert_int_equal(run_tc(gw.tc_out, gw.tunnel_if, &in), TC_ACT_OK);
}

/* A short packet off Ethernet carries padding to 60 bytes after its IP packet: it is
 * parsed by its IP length, not dropped as malformed. */
static void padded_short_frame_is_parsed_by_its_ip_length(void **state)
{
	struct packet_counter before = tunnel_counter(TUNNEL_INGRESS);
	struct frame in;

	require_gateway();
	frame_inner(&in, ONPREM_VM, "10.10.1.4", 0);
	assert_true(in.len < 60);
	memset(in.data + in.len, 0, 60 - in.len);
	in.len = 60;
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	assert_int_equal(tunnel_counter(TUNNEL_INGRESS).packets, before.packets + 1);
}

static void decrypted_packet_with_a_foreign_source_is_dropped(void **state)
{
	uint64_t drops = packets_of(gw.drops_fd, DROP_TUNNEL_SPOOFED_INNER);
	uint64_t spoofed = tunnel_counter(TUNNEL_DROP_INGRESS_SPOOFED).packets;
	uint64_t ingress = tunnel_counter(TUNNEL_INGRESS).packets;
	struct frame in;

	require_gateway();
	frame_inner(&in, "192.168.60.10", "10.10.1.4", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	frame_inner(&in, "10.11.1.4", "10.10.1.4", 56); /* a VNet's address from outside */
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_TUNNEL_SPOOFED_INNER), drops + 2);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_INGRESS_SPOOFED).packets, spoofed + 2);
	assert_int_equal(tunnel_counter(TUNNEL_INGRESS).packets, ingress);
}

static void decrypted_packet_outside_the_tunnel_routes_is_dropped(void **state)
{
	uint64_t drops = packets_of(gw.drops_fd, DROP_TUNNEL_NO_ROUTE);
	uint64_t no_route = tunnel_counter(TUNNEL_DROP_INGRESS_NO_ROUTE).packets;
	struct frame in;

	require_gateway();
	/* spoke1 is peered with the hub, but without gateway transit on-premises does not
	 * reach it. */
	frame_inner(&in, ONPREM_VM, "10.11.1.4", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	frame_inner(&in, ONPREM_VM, "203.0.113.99", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_TUNNEL_NO_ROUTE), drops + 2);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_INGRESS_NO_ROUTE).packets, no_route + 2);
}

/* TCP from on-premises (decrypted) to the hub's VM, or the other way into the tunnel. */
static void frame_tcp(struct frame *f, const char *src, uint16_t sport, const char *dst,
		      uint16_t dport, uint8_t flags, bool decrypted)
{
	struct flow fl = { .family = AF_INET, .src = src, .dst = dst, .proto = IPPROTO_TCP,
			   .sport = sport, .dport = dport, .ip_id = 11, .payload = 20 };
	uint8_t *ip, *tcp;
	uint32_t sum;

	if (decrypted)
		frame_build(f, "00:00:00:00:00:00", "00:00:00:00:00:00", &fl);
	else
		frame_build(f, HUB_GW_MAC, HUB_VM_MAC, &fl);
	ip = f->data + 14;
	tcp = ip + 20;
	tcp[13] = flags;
	tcp[16] = tcp[17] = 0;
	sum = checksum_add(0, ip + 12, 8);
	sum += IPPROTO_TCP + (f->len - 14 - 20);
	sum = checksum_add(sum, tcp, f->len - 14 - 20);
	memcpy(tcp + 16, &(uint16_t){ checksum_fold(sum) }, 2);
}

static void decrypted_packet_denied_by_an_inbound_nsg_is_an_ingress_drop(void **state)
{
	uint64_t drops = packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND);
	uint64_t nsg = tunnel_counter(TUNNEL_DROP_INGRESS_NSG).packets;
	struct packet_counter ingress = tunnel_counter(TUNNEL_INGRESS);
	struct frame in;

	require_gateway();
	frame_tcp(&in, ONPREM_VM, 40001, "10.10.1.4", 2222, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND), drops + 1);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_INGRESS_NSG).packets, nsg + 1);
	assert_int_equal(tunnel_counter(TUNNEL_INGRESS).packets, ingress.packets);
	/* The next port is allowed, and forwarded into the VNet. */
	frame_tcp(&in, ONPREM_VM, 40001, "10.10.1.4", 2223, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	assert_int_equal(tunnel_counter(TUNNEL_INGRESS).packets, ingress.packets + 1);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_INGRESS_NSG).packets, nsg + 1);
}

/* The drops by interface and VNet (bpf/counters.h) of a key, summed over the CPUs. */
static uint64_t drop_detail_packets(uint32_t ifindex, uint16_t vnet, uint16_t reason)
{
	struct drop_detail_key key = { .ifindex = ifindex, .vnet = vnet, .reason = reason };
	int fd = harness_map(&harness, "drop_details");
	uint64_t packets;

	assert_true(fd >= 0);
	packets = counter_of(fd, &key).packets;
	close(fd);
	return packets;
}

static void decrypted_drops_count_by_the_xfrm_interface_and_the_destination_vnet(void **state)
{
	uint64_t denied, spoofed;
	struct frame in;

	require_gateway();
	denied = drop_detail_packets(gw.tunnel_if, HUB_VNET, DROP_NSG_DENIED_INBOUND);
	spoofed = drop_detail_packets(gw.tunnel_if, NSG_VNET_NONE, DROP_TUNNEL_SPOOFED_INNER);
	frame_tcp(&in, ONPREM_VM, 40011, "10.10.1.4", 2222, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	/* Dropped before a route named its VNet: counted as outside every VNet. */
	frame_inner(&in, "192.168.60.10", "10.10.1.4", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(drop_detail_packets(gw.tunnel_if, HUB_VNET, DROP_NSG_DENIED_INBOUND),
			 denied + 1);
	assert_int_equal(drop_detail_packets(gw.tunnel_if, NSG_VNET_NONE,
					     DROP_TUNNEL_SPOOFED_INNER), spoofed + 1);
}

/* A VNet whose share of the table is taken (here "none", the slot after every VNet's):
 * its drops at a new key are counted by reason and as its overflow, and take no key. */
static void drops_past_a_vnets_share_of_the_table_count_as_its_overflow(void **state)
{
	struct drop_detail_key key = { .vnet = NSG_VNET_NONE, .reason = DROP_MALFORMED_L4 };
	int details = harness_map(&harness, "drop_details");
	int keys = harness_map(&harness, "drop_detail_keys");
	int overflow = harness_map(&harness, "drop_detail_overflow");
	uint64_t full = DROP_DETAILS_PER_VNET, held, reason_drops;
	uint32_t slot = MAX_VNETS;
	struct packet_counter before;
	struct flow fl = { .family = AF_INET, .src = ONPREM_VM, .dst = "10.10.1.4",
			   .proto = IPPROTO_UDP, .sport = 40012, .dport = 2223, .ip_id = 3,
			   .payload = 32 };
	struct frame in;

	require_gateway();
	assert_true(details >= 0 && keys >= 0 && overflow >= 0);
	key.ifindex = gw.tunnel_if;
	bpf_map_delete_elem(details, &key); /* a new key, whatever ran before */
	assert_int_equal(bpf_map_lookup_elem(keys, &slot, &held), 0);
	assert_int_equal(bpf_map_update_elem(keys, &slot, &full, BPF_ANY), 0);
	before = counter_of(overflow, &slot);
	reason_drops = packets_of(gw.drops_fd, DROP_MALFORMED_L4);
	frame_build(&in, "00:00:00:00:00:00", "00:00:00:00:00:00", &fl);
	put16(in.data + 14 + 20 + 4, 8 + 32 + 1); /* a UDP length past the packet */
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_MALFORMED_L4), reason_drops + 1);
	assert_int_equal(counter_of(overflow, &slot).packets, before.packets + 1);
	assert_int_not_equal(bpf_map_lookup_elem(details, &key, (struct packet_counter[256]){ 0 }), 0);
	/* With room again, the key is added and counts. */
	assert_int_equal(bpf_map_update_elem(keys, &slot, &held, BPF_ANY), 0);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(drop_detail_packets(gw.tunnel_if, NSG_VNET_NONE, DROP_MALFORMED_L4), 1);
	assert_int_equal(counter_of(overflow, &slot).packets, before.packets + 1);
	close(details);
	close(keys);
	close(overflow);
}

static int monitor_event_copy(void *ctx, void *data, size_t size)
{
	if (size == sizeof(struct monitor_event))
		memcpy(ctx, data, size);
	return 0;
}

/* The monitor's deadline: listening for the next minute, or not (0). */
static void monitor_listen(bool on)
{
	struct monitor_control c = { 0 };
	struct timespec now;
	int fd = harness_map(&harness, "monitor_control");
	uint32_t zero = 0;

	assert_true(fd >= 0);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (on)
		c.listening_until_ns = (uint64_t)(now.tv_sec + 60) * 1000000000ull;
	assert_int_equal(bpf_map_update_elem(fd, &zero, &c, BPF_ANY), 0);
	close(fd);
}

static void decrypted_drop_is_a_monitor_event_with_the_tunnel_interface_and_its_rule(void **state)
{
	static const uint8_t onprem_vm[4] = { 192, 168, 50, 10 }, hub_vm[4] = { 10, 10, 1, 4 };
	struct monitor_event e = { 0 };
	struct ring_buffer *ring;
	struct frame in;
	int fd;

	require_gateway();
	fd = harness_map(&harness, "monitor_events");
	assert_true(fd >= 0);
	ring = ring_buffer__new(fd, monitor_event_copy, &e, NULL);
	assert_non_null(ring);
	ring_buffer__consume(ring); /* whatever earlier cases left */
	memset(&e, 0, sizeof(e));
	monitor_listen(true);
	frame_tcp(&in, ONPREM_VM, 40021, "10.10.1.4", 2222, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	monitor_listen(false);
	assert_true(ring_buffer__consume(ring) >= 1);
	assert_int_equal(e.type, MONITOR_DROP);
	assert_int_equal(e.drop_reason, DROP_NSG_DENIED_INBOUND);
	assert_int_equal(e.ifindex, gw.tunnel_if);
	assert_int_equal(e.src_vnet, NSG_VNET_NONE);
	assert_int_equal(e.dst_vnet, HUB_VNET);
	assert_int_equal(e.family, AF_INET);
	assert_int_equal(e.proto, IPPROTO_TCP);
	assert_int_equal(e.sport, 40021);
	assert_int_equal(e.dport, 2222);
	assert_memory_equal(e.src, onprem_vm, 4);
	assert_memory_equal(e.dst, hub_vm, 4);
	assert_int_not_equal(e.nsg_id, NSG_NONE); /* hub-nsg's DenyOnpremInbound2222 */
	assert_int_not_equal(e.rule_id, NSG_NONE);
	/* Nobody listens: nothing is written. */
	frame_tcp(&in, ONPREM_VM, 40022, "10.10.1.4", 2222, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(ring_buffer__consume(ring), 0);
	ring_buffer__free(ring);
	close(fd);
}

static void reply_to_a_connection_the_vm_opened_passes_the_inbound_nsg(void **state)
{
	uint64_t denied = packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND);
	struct frame in;

	require_gateway();
	/* From the VM's port 2222 toward on-premises: XDP's outbound NSG allows it and
	 * remembers the flow; the kernel routes it into the tunnel. */
	frame_tcp(&in, "10.10.1.4", 2222, ONPREM_VM, 40002, 0x02, false);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_PASS);
	/* The answer comes back decrypted to port 2222, which no rule admits from
	 * on-premises: the flow does. */
	frame_tcp(&in, ONPREM_VM, 40002, "10.10.1.4", 2222, 0x12, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND), denied);
	/* A new connection to that port from on-premises is still denied. */
	frame_tcp(&in, ONPREM_VM, 40003, "10.10.1.4", 2222, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND), denied + 1);
}

/* An on-premises router's fragmentation needed about the VM's connection comes out of the
 * tunnel past the rule that denies the router's ICMP; one about no connection does not,
 * and one whose quote is cut short is dropped as icmp_quote_malformed. */
static void decrypted_icmp_error_about_the_vms_connection_passes_the_inbound_nsg(void **state)
{
	uint64_t denied = packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND);
	uint64_t malformed = packets_of(gw.drops_fd, DROP_ICMP_QUOTE_MALFORMED);
	struct frame syn, other, in;

	require_gateway();
	frame_tcp(&syn, "10.10.1.4", 2224, ONPREM_VM, 443, 0x02, false);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &syn), XDP_PASS);
	frame_icmp_error(&in, "00:00:00:00:00:00", "00:00:00:00:00:00", AF_INET, "192.168.50.1",
			 "10.10.1.4", 3, 4, 1300, syn.data + 14, 28);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	frame_tcp(&other, "10.10.1.4", 2225, ONPREM_VM, 443, 0x02, false);
	frame_icmp_error(&in, "00:00:00:00:00:00", "00:00:00:00:00:00", AF_INET, "192.168.50.1",
			 "10.10.1.4", 3, 4, 1300, other.data + 14, 28);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND), denied + 1);
	frame_icmp_error(&in, "00:00:00:00:00:00", "00:00:00:00:00:00", AF_INET, "192.168.50.1",
			 "10.10.1.4", 3, 4, 1300, syn.data + 14, 24);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_ICMP_QUOTE_MALFORMED), malformed + 1);
}

static void connection_from_onprem_lets_the_vms_replies_into_the_tunnel(void **state)
{
	uint64_t denied = packets_of(gw.drops_fd, DROP_NSG_DENIED_OUTBOUND);
	uint64_t egress_drops = tunnel_counter(TUNNEL_DROP_EGRESS_NSG).packets;
	struct frame in;

	require_gateway();
	/* On-premises opens a connection from its port 2323 (allowed inbound); the VM's
	 * answer goes to port 2323, which the outbound rule denies for new connections. */
	frame_tcp(&in, ONPREM_VM, 2323, "10.10.1.4", 8080, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	frame_tcp(&in, "10.10.1.4", 8080, ONPREM_VM, 2323, 0x12, false);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_PASS);
	assert_int_equal(packets_of(gw.drops_fd, DROP_NSG_DENIED_OUTBOUND), denied);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_EGRESS_NSG).packets, egress_drops);
}

static void traffic_into_the_tunnel_denied_outbound_is_an_egress_drop(void **state)
{
	uint64_t denied = packets_of(gw.drops_fd, DROP_NSG_DENIED_OUTBOUND);
	struct packet_counter before = tunnel_counter(TUNNEL_DROP_EGRESS_NSG), after;
	uint64_t passed = packets_of(gw.datapath_fd, COUNT_PASS_TUNNEL);
	struct frame in;

	require_gateway();
	frame_tcp(&in, "10.10.1.4", 40004, ONPREM_VM, 2323, 0x02, false);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_DROP);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_DROP);
	after = tunnel_counter(TUNNEL_DROP_EGRESS_NSG);
	assert_int_equal(after.packets, before.packets + 2);
	assert_int_equal(after.bytes, before.bytes + 2 * (in.len - 14));
	assert_int_equal(packets_of(gw.drops_fd, DROP_NSG_DENIED_OUTBOUND), denied + 2);
	assert_int_equal(packets_of(gw.datapath_fd, COUNT_PASS_TUNNEL), passed);
	/* Traffic denied toward a VNet, not the tunnel, is no tunnel's drop. */
	frame_tcp(&in, "10.10.1.4", 40004, "10.11.1.4", 2323, 0x02, false);
	run_xdp(gw.xdp_hub, gw.hub, &in);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_EGRESS_NSG).packets, after.packets);
}

/* ---- fragments out of the tunnel (bpf/frag.h) ---- */

/* A decrypted UDP datagram from on-premises to the hub's VM, in three fragments of 512,
 * 512 and the rest bytes of IP payload; every datagram its own IP id. */
static void decrypted_udp_fragments(struct frame frags[3], uint16_t dport)
{
	static uint32_t next_id = 0x2000;
	struct flow fl = { .family = AF_INET, .src = ONPREM_VM, .dst = "10.10.1.4",
			   .proto = IPPROTO_UDP, .sport = 40010, .dport = dport,
			   .ip_id = next_id++, .payload = 1200 };
	struct frame whole;
	size_t total;

	frame_build(&whole, "00:00:00:00:00:00", "00:00:00:00:00:00", &fl);
	total = whole.len - 14 - 20;
	frame_fragment(&frags[0], &whole, 0, 512, 1, fl.ip_id);
	frame_fragment(&frags[1], &whole, 512, 512, 1, fl.ip_id);
	frame_fragment(&frags[2], &whole, 1024, total - 1024, 0, fl.ip_id);
}

/* Port 2222 from on-premises is denied, the rest allowed: judged without the ports its
 * first fragment carried, a later fragment of a denied datagram would be allowed. */
static void decrypted_fragments_follow_their_first_fragments_verdict(void **state)
{
	uint64_t denied = packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND);
	uint64_t nsg = tunnel_counter(TUNNEL_DROP_INGRESS_NSG).packets;
	uint64_t ingress = tunnel_counter(TUNNEL_INGRESS).packets;
	struct frame frags[3];

	require_gateway();
	decrypted_udp_fragments(frags, 2222);
	for (int f = 0; f < 3; f++)
		assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &frags[f]), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_NSG_DENIED_INBOUND), denied + 3);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_INGRESS_NSG).packets, nsg + 3);
	assert_int_equal(tunnel_counter(TUNNEL_INGRESS).packets, ingress);
	/* Every fragment of an allowed datagram goes into the VNet. */
	decrypted_udp_fragments(frags, 2223);
	for (int f = 0; f < 3; f++)
		assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &frags[f]), TC_ACT_REDIRECT);
	assert_int_equal(tunnel_counter(TUNNEL_INGRESS).packets, ingress + 3);
}

static void decrypted_later_fragment_without_its_first_is_dropped_and_counted(void **state)
{
	uint64_t unseen = packets_of(gw.drops_fd, DROP_FRAGMENT_UNSEEN);
	uint64_t malformed = tunnel_counter(TUNNEL_DROP_INGRESS_MALFORMED).packets;
	struct frame frags[3];

	require_gateway();
	decrypted_udp_fragments(frags, 2223);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &frags[1]), TC_ACT_SHOT);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &frags[2]), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_FRAGMENT_UNSEEN), unseen + 2);
	assert_int_equal(tunnel_counter(TUNNEL_DROP_INGRESS_MALFORMED).packets, malformed + 2);
}

/* UDP whose own length claims more than the decrypted IP packet holds. */
static void decrypted_udp_longer_than_its_ip_packet_is_dropped(void **state)
{
	uint64_t malformed = packets_of(gw.drops_fd, DROP_MALFORMED_L4);
	struct flow fl = { .family = AF_INET, .src = ONPREM_VM, .dst = "10.10.1.4",
			   .proto = IPPROTO_UDP, .sport = 40011, .dport = 2223, .ip_id = 3,
			   .payload = 32 };
	struct frame in;

	require_gateway();
	frame_build(&in, "00:00:00:00:00:00", "00:00:00:00:00:00", &fl);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	put16(in.data + 14 + 20 + 4, 8 + 32 + 1);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	put16(in.data + 14 + 20 + 4, 7);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_SHOT);
	assert_int_equal(packets_of(gw.drops_fd, DROP_MALFORMED_L4), malformed + 2);
}

/* ---- TCP MSS ---- */

/* The length of the frame's IP header: IPv4's (no options) or IPv6's. */
static size_t ip_header_len(const struct frame *f)
{
	return (f->data[14] >> 4) == 6 ? 40 : 20;
}

/* The TCP pseudo-header's sum of the frame: the addresses, the protocol, the length. */
static uint32_t pseudo_header_sum(const struct frame *f)
{
	const uint8_t *ip = f->data + 14;
	size_t hlen = ip_header_len(f);

	return checksum_add(0, ip + (hlen == 40 ? 8 : 12), hlen == 40 ? 32 : 8) + IPPROTO_TCP +
	       (uint32_t)(f->len - 14 - hlen);
}

/* A TCP segment with `flags` whose options are NOP, NOP, MSS `mss`, NOP, NOP, with a
 * correct checksum (IPv4 or IPv6 by the addresses, behind the room of an Ethernet header). */
static void frame_tcp_mss(struct frame *f, const char *src, uint16_t sport, const char *dst,
			  uint16_t dport, uint8_t flags, uint16_t mss)
{
	struct flow fl = { .family = strchr(src, ':') ? AF_INET6 : AF_INET, .src = src,
			   .dst = dst, .proto = IPPROTO_TCP, .sport = sport, .dport = dport,
			   .ip_id = 13, .payload = 8 };
	uint8_t *tcp;

	frame_build(f, "00:00:00:00:00:00", "00:00:00:00:00:00", &fl);
	tcp = f->data + 14 + ip_header_len(f);
	tcp[12] = 7 << 4; /* 20 bytes and 8 of options */
	tcp[13] = flags;
	memcpy(tcp + 20, (uint8_t[]){ 1, 1, 2, 4, mss >> 8, mss & 0xff, 1, 1 }, 8);
	tcp[16] = tcp[17] = 0;
	memcpy(tcp + 16, &(uint16_t){ checksum_fold(checksum_add(pseudo_header_sum(f), tcp,
								  f->len - 14 - ip_header_len(f))) }, 2);
}

static uint16_t mss_of(const struct frame *f)
{
	const uint8_t *opt = f->data + 14 + ip_header_len(f) + 20 + 2;

	return (uint16_t)(opt[2] << 8 | opt[3]);
}

/* Whether the TCP checksum of the frame verifies: the whole segment with the
 * pseudo-header sums to all ones. */
static bool tcp_checksum_holds(const struct frame *f)
{
	size_t hlen = ip_header_len(f);

	return checksum_fold(checksum_add(pseudo_header_sum(f), f->data + 14 + hlen,
					  f->len - 14 - hlen)) == 0;
}

static void syn_into_the_tunnel_leaves_with_the_clamped_mss_and_a_valid_checksum(void **state)
{
	struct frame in, out;

	require_gateway();
	frame_tcp_mss(&in, "10.10.1.4", 40101, ONPREM_VM, 443, 0x02, 1460);
	assert_true(tcp_checksum_holds(&in));
	assert_int_equal(run_tc_out(gw.tc_out, gw.tunnel_if, &in, &out), TC_ACT_OK);
	assert_int_equal(out.len, in.len);
	assert_int_equal(mss_of(&out), DEFAULT_TUNNEL_TCP_MSS);
	assert_true(tcp_checksum_holds(&out));
	/* Only the MSS and the checksum changed. */
	assert_memory_equal(out.data, in.data, 14 + 20 + 16);
	assert_memory_equal(out.data + 14 + 40, in.data + 14 + 40, 4);
}

static void syn_ack_out_of_the_tunnel_reaches_the_vm_with_the_clamped_mss(void **state)
{
	struct frame in, out;

	require_gateway();
	/* The VM's SYN opens the flow (XDP's outbound NSG), so the answer is let in. */
	frame_tcp(&in, "10.10.1.4", 40100, ONPREM_VM, 443, 0x02, false);
	assert_int_equal(run_xdp(gw.xdp_hub, gw.hub, &in), XDP_PASS);
	frame_tcp_mss(&in, ONPREM_VM, 443, "10.10.1.4", 40100, 0x12, 1460);
	assert_true(tcp_checksum_holds(&in));
	assert_int_equal(run_tc_out(gw.tc_in, gw.tunnel_if, &in, &out), TC_ACT_REDIRECT);
	assert_int_equal(mss_of(&out), DEFAULT_TUNNEL_TCP_MSS);
	assert_true(tcp_checksum_holds(&out));
}

/* An IPv6 header is 20 bytes longer than IPv4's: a full segment of the IPv6 SYN's MSS
 * makes a packet no larger than one of IPv4's (1350 + 40 = 1330 + 60 = 1390 bytes), so
 * it fits the same tunnel MTU. */
static void ipv6_syn_into_the_tunnel_gets_an_mss_20_below_ipv4s(void **state)
{
	struct frame in, out;

	require_gateway();
	frame_tcp_mss(&in, "fd00:10::4", 40103, "fd00:50::10", 443, 0x02, 1440);
	assert_true(tcp_checksum_holds(&in));
	assert_int_equal(run_tc_out(gw.tc_out, gw.tunnel_if, &in, &out), TC_ACT_OK);
	assert_int_equal(out.len, in.len);
	assert_int_equal(mss_of(&out), DEFAULT_TUNNEL_TCP_MSS - 20);
	assert_true(tcp_checksum_holds(&out));
	/* Already below IPv6's clamp: left alone. */
	frame_tcp_mss(&in, "fd00:10::4", 40104, "fd00:50::10", 443, 0x02, 1320);
	assert_int_equal(run_tc_out(gw.tc_out, gw.tunnel_if, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.data, in.data, in.len);
}

static void mss_below_the_clamp_and_segments_without_syn_are_left_alone(void **state)
{
	struct frame in, out;

	require_gateway();
	frame_tcp_mss(&in, "10.10.1.4", 40102, ONPREM_VM, 443, 0x02, 1200);
	assert_int_equal(run_tc_out(gw.tc_out, gw.tunnel_if, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.data, in.data, in.len);
	/* An ACK whose options look like an MSS: only SYNs carry one. */
	frame_tcp_mss(&in, "10.10.1.4", 40102, ONPREM_VM, 443, 0x10, 1460);
	assert_int_equal(run_tc_out(gw.tc_out, gw.tunnel_if, &in, &out), TC_ACT_OK);
	assert_memory_equal(out.data, in.data, in.len);
}

static void packets_into_the_tunnel_are_counted(void **state)
{
	struct packet_counter before = tunnel_counter(TUNNEL_EGRESS), after;
	struct frame in;

	require_gateway();
	frame_inner(&in, "10.10.1.4", ONPREM_VM, 1000);
	assert_int_equal(run_tc(gw.tc_out, gw.tunnel_if, &in), TC_ACT_OK);
	assert_int_equal(run_tc(gw.tc_out, gw.tunnel_if, &in), TC_ACT_OK);
	after = tunnel_counter(TUNNEL_EGRESS);
	assert_int_equal(after.packets, before.packets + 2);
	assert_int_equal(after.bytes, before.bytes + 2 * (in.len - 14));
	/* Other interfaces are not tunnels: nothing counted. */
	assert_int_equal(run_tc(gw.tc_out, gw.hub, &in), TC_ACT_OK);
	assert_int_equal(tunnel_counter(TUNNEL_EGRESS).packets, after.packets);
}

/* ---- point-to-site clients ---- */

/* A client's entry, summed over the CPUs; found says whether there is one. */
static struct tunnel_client_counter client_counter(uint32_t tunnel, const char *client,
						   bool *found)
{
	struct tunnel_client_counter sum = { 0 };
	struct tunnel_client_key key = { .tunnel = tunnel };

	address_key_of(&key.client, client);
	*found = percpu_sum(gw.clients_fd, &key, &sum, sizeof(sum)) == 0;
	return sum;
}

static struct packet_counter p2s_counter(uint32_t counter)
{
	return tunnel_counter_of(P2S_TUNNEL, counter);
}

static void decrypted_packet_from_a_client_counts_into_its_entry(void **state)
{
	struct packet_counter tunnel = p2s_counter(TUNNEL_INGRESS);
	struct tunnel_client_counter c;
	struct frame in;
	bool found;

	require_gateway();
	frame_inner(&in, CLIENT, "10.10.1.4", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.p2s_if, &in), TC_ACT_REDIRECT);
	c = client_counter(P2S_TUNNEL, CLIENT, &found);
	assert_true(found);
	assert_int_equal(c.ingress_packets, 1);
	assert_int_equal(c.ingress_bytes, in.len - 14);
	assert_int_equal(c.egress_packets, 0);
	/* The next packet adds to the same entry, as it does to the tunnel's ingress. */
	assert_int_equal(run_tc(gw.tc_in, gw.p2s_if, &in), TC_ACT_REDIRECT);
	c = client_counter(P2S_TUNNEL, CLIENT, &found);
	assert_int_equal(c.ingress_packets, 2);
	assert_int_equal(c.ingress_bytes, 2 * (in.len - 14));
	assert_int_equal(p2s_counter(TUNNEL_INGRESS).bytes - tunnel.bytes, c.ingress_bytes);
}

static void decrypted_packet_from_a_client_that_is_denied_is_not_counted_as_its(void **state)
{
	uint64_t nsg = p2s_counter(TUNNEL_DROP_INGRESS_NSG).packets;
	struct frame in;
	bool found;

	require_gateway();
	frame_tcp(&in, OTHER_CLIENT, 40001, "10.10.1.4", 2222, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.p2s_if, &in), TC_ACT_SHOT);
	assert_int_equal(p2s_counter(TUNNEL_DROP_INGRESS_NSG).packets, nsg + 1);
	client_counter(P2S_TUNNEL, OTHER_CLIENT, &found);
	assert_false(found);
	/* A source outside the pool is no client's: dropped, and no entry made for it. */
	frame_inner(&in, "172.16.202.9", "10.10.1.4", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.p2s_if, &in), TC_ACT_SHOT);
	client_counter(P2S_TUNNEL, "172.16.202.9", &found);
	assert_false(found);
	/* The port the NSG allows is counted as the client's. */
	frame_tcp(&in, OTHER_CLIENT, 40001, "10.10.1.4", 2223, 0x02, true);
	assert_int_equal(run_tc(gw.tc_in, gw.p2s_if, &in), TC_ACT_REDIRECT);
	assert_int_equal(client_counter(P2S_TUNNEL, OTHER_CLIENT, &found).ingress_packets, 1);
}

static void packets_to_a_client_count_into_its_entry(void **state)
{
	struct tunnel_client_counter before, after;
	struct frame in;
	bool found;

	require_gateway();
	before = client_counter(P2S_TUNNEL, CLIENT, &found);
	frame_inner(&in, "10.10.1.4", CLIENT, 1000);
	assert_int_equal(run_tc(gw.tc_out, gw.p2s_if, &in), TC_ACT_OK);
	after = client_counter(P2S_TUNNEL, CLIENT, &found);
	assert_true(found);
	assert_int_equal(after.egress_packets, before.egress_packets + 1);
	assert_int_equal(after.egress_bytes, before.egress_bytes + in.len - 14);
	assert_int_equal(after.ingress_packets, before.ingress_packets);
}

static void a_connections_traffic_counts_into_no_client_entry(void **state)
{
	struct frame in;
	bool found;

	require_gateway();
	frame_inner(&in, ONPREM_VM, "10.10.1.4", 56);
	assert_int_equal(run_tc(gw.tc_in, gw.tunnel_if, &in), TC_ACT_REDIRECT);
	frame_inner(&in, "10.10.1.4", ONPREM_VM, 56);
	assert_int_equal(run_tc(gw.tc_out, gw.tunnel_if, &in), TC_ACT_OK);
	client_counter(TUNNEL, ONPREM_VM, &found);
	assert_false(found);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(esp_from_the_peer_is_counted_by_spi_and_passed),
		cmocka_unit_test(esp_in_udp_from_the_peer_is_counted_and_passed),
		cmocka_unit_test(ike_goes_to_the_kernel_uncounted),
		cmocka_unit_test(esp_from_an_unknown_peer_is_dropped),
		cmocka_unit_test(esp_between_vms_is_forwarded_like_any_traffic),
		cmocka_unit_test(vnet_traffic_to_onprem_goes_to_the_kernel_for_xfrm),
		cmocka_unit_test(decrypted_packet_is_counted_and_forwarded_into_the_vnet),
		cmocka_unit_test(decrypted_packet_with_a_foreign_source_is_dropped),
		cmocka_unit_test(decrypted_packet_outside_the_tunnel_routes_is_dropped),
		cmocka_unit_test(packets_into_the_tunnel_are_counted),
		cmocka_unit_test(decrypted_packet_denied_by_an_inbound_nsg_is_an_ingress_drop),
		cmocka_unit_test(decrypted_drops_count_by_the_xfrm_interface_and_the_destination_vnet),
		cmocka_unit_test(drops_past_a_vnets_share_of_the_table_count_as_its_overflow),
		cmocka_unit_test(decrypted_drop_is_a_monitor_event_with_the_tunnel_interface_and_its_rule),
		cmocka_unit_test(reply_to_a_connection_the_vm_opened_passes_the_inbound_nsg),
		cmocka_unit_test(decrypted_icmp_error_about_the_vms_connection_passes_the_inbound_nsg),
		cmocka_unit_test(connection_from_onprem_lets_the_vms_replies_into_the_tunnel),
		cmocka_unit_test(traffic_into_the_tunnel_denied_outbound_is_an_egress_drop),
		cmocka_unit_test(syn_into_the_tunnel_leaves_with_the_clamped_mss_and_a_valid_checksum),
		cmocka_unit_test(syn_ack_out_of_the_tunnel_reaches_the_vm_with_the_clamped_mss),
		cmocka_unit_test(mss_below_the_clamp_and_segments_without_syn_are_left_alone),
		cmocka_unit_test(ipv6_syn_into_the_tunnel_gets_an_mss_20_below_ipv4s),
		cmocka_unit_test(decrypted_fragments_follow_their_first_fragments_verdict),
		cmocka_unit_test(decrypted_later_fragment_without_its_first_is_dropped_and_counted),
		cmocka_unit_test(decrypted_udp_longer_than_its_ip_packet_is_dropped),
		cmocka_unit_test(decrypted_packet_from_a_client_counts_into_its_entry),
		cmocka_unit_test(decrypted_packet_from_a_client_that_is_denied_is_not_counted_as_its),
		cmocka_unit_test(packets_to_a_client_count_into_its_entry),
		cmocka_unit_test(a_connections_traffic_counts_into_no_client_entry),
		cmocka_unit_test(arp_on_a_link_goes_to_the_kernel_uncounted),
		cmocka_unit_test(padded_short_frame_is_parsed_by_its_ip_length),
	};

	return cmocka_run_group_tests_name("tunnel", tests, setup_gateway, teardown_gateway);
}

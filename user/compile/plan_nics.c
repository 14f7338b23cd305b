/* Per-NIC anti-spoofing in the plan: which NICs sit behind each VNet interface, known by
 * their macAddress, with their addresses (nic_sources), and which NIC's NSGs judge what an
 * appliance forwards when its MAC is not known. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "compile/plan.h"

/* Whether the NIC sits behind the interface: in its VNet, and in its subnet when the
 * interface faces one subnet. */
static bool nic_behind(const struct config_nic *nic, const struct config_gateway_iface *iface)
{
	return iface->role == IFACE_VNET && nic->vnet == iface->vnet &&
	       (iface->subnet == CONFIG_NONE || nic->subnet == iface->subnet);
}

static int nic_source_push(struct plan *plan, const struct plan_nic_source *entry)
{
	void *bigger = realloc(plan->nic_sources, (plan->n_nic_sources + 1) * sizeof(*entry));

	if (!bigger)
		return -ENOMEM;
	plan->nic_sources = bigger;
	plan->nic_sources[plan->n_nic_sources++] = *entry;
	return 0;
}

/* The NIC's info: its forwarding flag and its first address, whose NSG binding judges
 * what it sends. */
static struct nic_info nic_info_of(const struct config_nic *nic)
{
	struct nic_info info = { .flags = nic->enable_ip_forwarding ? NIC_FLAG_IP_FORWARDING : 0 };

	if (nic->n_addresses) {
		info.family = nic->addresses[0].family;
		memcpy(info.address, nic->addresses[0].addr, 16);
	}
	return info;
}

/* One NIC behind one interface: the NIC's own entry, then one per address. */
static int nic_sources_of(struct plan *plan, uint32_t ifindex, const struct config_nic *nic)
{
	struct plan_nic_source entry = { .key = { .ifindex = ifindex }, .info = nic_info_of(nic) };
	int err;

	memcpy(entry.key.mac, nic->mac, 6);
	err = nic_source_push(plan, &entry);
	for (size_t a = 0; !err && a < nic->n_addresses; a++) {
		entry.key.family = nic->addresses[a].family;
		memcpy(entry.key.addr, nic->addresses[a].addr, 16);
		err = nic_source_push(plan, &entry);
	}
	return err;
}

int plan_nic_sources(struct plan *plan, const struct config *cfg, const uint32_t *ifindexes)
{
	int err = 0;

	for (size_t i = 0; !err && i < cfg->n_ifaces; i++)
		for (size_t n = 0; !err && n < cfg->n_nics; n++)
			if (cfg->nics[n].has_mac && nic_behind(&cfg->nics[n], &cfg->ifaces[i]))
				err = nic_sources_of(plan, ifindexes[i], &cfg->nics[n]);
	return err;
}

uint32_t plan_interface_flags(const struct config *cfg, const struct config_gateway_iface *iface)
{
	size_t behind = 0;

	for (size_t n = 0; n < cfg->n_nics; n++) {
		if (!nic_behind(&cfg->nics[n], iface))
			continue;
		if (!cfg->nics[n].has_mac)
			return 0;
		behind++;
	}
	return behind ? INTERFACE_FLAG_NICS_BY_MAC : 0;
}

bool plan_sole_forwarder(const struct config *cfg, const struct config_gateway_iface *iface,
			 uint8_t family, uint8_t addr[16])
{
	const struct config_nic *found = NULL;

	for (size_t n = 0; n < cfg->n_nics; n++) {
		const struct config_nic *nic = &cfg->nics[n];

		if (!nic->enable_ip_forwarding || !nic_behind(nic, iface))
			continue;
		if (found)
			return false;
		found = nic;
	}
	for (size_t a = 0; found && a < found->n_addresses; a++)
		if (found->addresses[a].family == family) {
			memcpy(addr, found->addresses[a].addr, 16);
			return true;
		}
	return false;
}

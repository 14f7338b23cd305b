#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "datapath.h"
#include "gateway_name.h"
#include "log.h"
#include "private_file.h"
#include "swanctl.h"

extern char **environ;

struct name_map {
	const char *azure, *strongswan; /* strongswan NULL: no equivalent */
};

static const char *lookup(const struct name_map *map, size_t n, const char *azure)
{
	for (size_t i = 0; i < n; i++)
		if (azure && !strcmp(map[i].azure, azure))
			return map[i].strongswan;
	return NULL;
}
#define LOOKUP(map, key) lookup(map, sizeof(map) / sizeof(*map), key)

static const struct name_map ike_encryptions[] = {
	{ "DES", "des" }, { "DES3", "3des" }, { "AES128", "aes128" }, { "AES192", "aes192" },
	{ "AES256", "aes256" }, { "GCMAES128", "aes128gcm16" }, { "GCMAES256", "aes256gcm16" },
};
static const struct name_map ike_integrities[] = {
	{ "MD5", "md5" }, { "SHA1", "sha1" }, { "SHA256", "sha256" }, { "SHA384", "sha384" },
	/* AEAD has its integrity built in; IKE still needs a PRF. */
	{ "GCMAES128", "prfsha256" }, { "GCMAES256", "prfsha384" },
};
static const struct name_map dh_groups[] = {
	{ "None", "" }, { "DHGroup1", "modp768" }, { "DHGroup2", "modp1024" },
	{ "DHGroup14", "modp2048" }, { "DHGroup2048", "modp2048" }, { "DHGroup24", "modp2048s256" },
	{ "ECP256", "ecp256" }, { "ECP384", "ecp384" },
};
static const struct name_map ipsec_encryptions[] = {
	{ "None", "null" }, { "DES", "des" }, { "DES3", "3des" }, { "AES128", "aes128" },
	{ "AES192", "aes192" }, { "AES256", "aes256" }, { "GCMAES128", "aes128gcm16" },
	{ "GCMAES192", "aes192gcm16" }, { "GCMAES256", "aes256gcm16" },
};
static const struct name_map ipsec_integrities[] = {
	{ "MD5", "md5" }, { "SHA1", "sha1" }, { "SHA256", "sha256" },
	{ "GCMAES128", "" }, { "GCMAES192", "" }, { "GCMAES256", "" },
};
static const struct name_map pfs_groups[] = {
	{ "None", "" }, { "PFS1", "modp768" }, { "PFS2", "modp1024" }, { "PFS14", "modp2048" },
	{ "PFS2048", "modp2048" }, { "PFS24", "modp2048s256" }, { "ECP256", "ecp256" },
	{ "ECP384", "ecp384" }, { "PFSMM", NULL },
};

static bool is_gcm(const char *azure)
{
	return azure && !strncmp(azure, "GCMAES", 6);
}

/* Joins the non-empty parts with '-'. */
static int join(char *buf, size_t size, const char *const *parts, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int len;

		if (!parts[i][0])
			continue;
		len = snprintf(buf + used, size - used, "%s%s", used ? "-" : "", parts[i]);
		if (len < 0 || (size_t)len >= size - used)
			return -ENOSPC;
		used += len;
	}
	return 0;
}

int swanctl_ike_proposal(const struct config_ipsec_policy *p, char *buf, size_t size,
			 const char **why)
{
	const char *enc = LOOKUP(ike_encryptions, p->ike_encryption);
	const char *integ = LOOKUP(ike_integrities, p->ike_integrity);
	const char *dh = LOOKUP(dh_groups, p->dh_group);

	if (!enc || !integ || !dh) {
		*why = !enc ? "ikeEncryption" : !integ ? "ikeIntegrity" : "dhGroup";
		return -EINVAL;
	}
	/* Azure pairs GCM encryption with the same GCM integrity, and CBC with a hash. */
	if (is_gcm(p->ike_encryption) != is_gcm(p->ike_integrity)) {
		*why = "ikeIntegrity (GCM encryption needs the same GCM integrity, and only with it)";
		return -EINVAL;
	}
	if (!dh[0]) {
		*why = "dhGroup (IKEv2 needs a Diffie-Hellman group)";
		return -EINVAL;
	}
	return join(buf, size, (const char *[]){ enc, integ, dh }, 3);
}

int swanctl_esp_proposal(const struct config_ipsec_policy *p, char *buf, size_t size,
			 const char **why)
{
	const char *enc = LOOKUP(ipsec_encryptions, p->ipsec_encryption);
	const char *integ = LOOKUP(ipsec_integrities, p->ipsec_integrity);
	const char *pfs = LOOKUP(pfs_groups, p->pfs_group);

	if (!enc || !integ || !pfs) {
		*why = !enc ? "ipsecEncryption" : !integ ? "ipsecIntegrity"
						   : "pfsGroup (PFSMM has no strongSwan equivalent)";
		return -EINVAL;
	}
	if (is_gcm(p->ipsec_encryption) ? strcmp(p->ipsec_encryption, p->ipsec_integrity)
					: is_gcm(p->ipsec_integrity)) {
		*why = "ipsecIntegrity (GCM encryption needs the same GCM integrity, and only with it)";
		return -EINVAL;
	}
	if (!strcmp(enc, "null") && !integ[0]) {
		*why = "ipsecIntegrity (no encryption needs an integrity algorithm)";
		return -EINVAL;
	}
	return join(buf, size, (const char *[]){ enc, integ, pfs }, 3);
}

void swanctl_connection_name(const char *gateway, const struct tunnel *t, char *buf, size_t size)
{
	snprintf(buf, size, "%s-%s", gateway, t->name);
}

static void address_text(const struct ip_address *a, char *buf, size_t size)
{
	if (!inet_ntop(a->family, a->addr, buf, size))
		snprintf(buf, size, "%%any");
}

static void prefixes_text(FILE *out, const struct ip_prefix *prefixes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char addr[INET6_ADDRSTRLEN];

		inet_ntop(prefixes[i].family, prefixes[i].addr, addr, sizeof(addr));
		fprintf(out, "%s%s/%u", i ? "," : "", addr, prefixes[i].len);
	}
}

/* A secret may hold anything but a newline; swanctl.conf strings escape " and \. */
static int quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '\n' || *s == '\r')
			return -EINVAL;
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
	return 0;
}

static int render_connection(FILE *out, const struct config *cfg, const struct tunnel *t)
{
	const struct config_connection *c = t->connection;
	const struct config_vnet *vnet = &cfg->vnets[t->vnet];
	char name[160], local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN], ike[256], esp[256];
	int lifetime = AZURE_DEFAULT_SA_LIFETIME_SECONDS;
	long long kilobytes = AZURE_DEFAULT_SA_DATA_KILOBYTES;
	const char *why = NULL;

	swanctl_connection_name(cfg->gateway_name, t, name, sizeof(name));
	address_text(&t->local, local, sizeof(local));
	address_text(&t->peer, peer, sizeof(peer));
	if (c->n_ipsec_policies) {
		const struct config_ipsec_policy *p = &c->ipsec_policies[0];

		if (swanctl_ike_proposal(p, ike, sizeof(ike), &why) ||
		    swanctl_esp_proposal(p, esp, sizeof(esp), &why)) {
			log_error("connection %s: ipsecPolicies[0].%s cannot be expressed for "
				  "strongSwan", t->name, why);
			return -EINVAL;
		}
		lifetime = p->sa_lifetime_seconds;
		kilobytes = p->sa_data_size_kilobytes;
	} else {
		snprintf(ike, sizeof(ike), "%s", AZURE_DEFAULT_IKE_PROPOSALS);
		snprintf(esp, sizeof(esp), "%s", AZURE_DEFAULT_ESP_PROPOSALS);
	}

	fprintf(out, "  %s {\n", name);
	fprintf(out, "    version = 2\n");
	fprintf(out, "    local_addrs = %s\n    remote_addrs = %s\n", local, peer);
	fprintf(out, "    proposals = %s\n", ike);
	fprintf(out, "    rekey_time = %ds\n", AZURE_IKE_SA_LIFETIME_SECONDS);
	/* Azure's dpdTimeoutSeconds: DPD probes every third of it, IKEv2's retransmissions
	 * declare the peer dead. */
	fprintf(out, "    dpd_delay = %ds\n", c->dpd_timeout_seconds / 3 ? c->dpd_timeout_seconds / 3 : 1);
	fprintf(out, "    if_id_in = %u\n    if_id_out = %u\n", t->if_id, t->if_id);
	fprintf(out, "    local {\n      auth = psk\n      id = %s\n    }\n", local);
	fprintf(out, "    remote {\n      auth = psk\n      id = %s\n    }\n", peer);
	fprintf(out, "    children {\n      %s {\n", name);
	if (c->use_policy_based_traffic_selectors) {
		fprintf(out, "        local_ts = ");
		prefixes_text(out, vnet->prefixes, vnet->n_prefixes);
		fprintf(out, "\n        remote_ts = ");
		prefixes_text(out, t->remote_prefixes, t->n_remote_prefixes);
		fprintf(out, "\n");
	} else {
		/* Route-based: the routes into the xfrm interface choose what enters. */
		fprintf(out, "        local_ts = 0.0.0.0/0,::/0\n        remote_ts = 0.0.0.0/0,::/0\n");
	}
	fprintf(out, "        esp_proposals = %s\n", esp);
	fprintf(out, "        rekey_time = %ds\n", lifetime);
	fprintf(out, "        rekey_bytes = %lld\n", kilobytes * 1024);
	fprintf(out, "        start_action = start\n        dpd_action = restart\n");
	fprintf(out, "        close_action = start\n");
	fprintf(out, "      }\n    }\n  }\n");
	return 0;
}

int swanctl_render(FILE *out, const struct config *cfg, const struct tunnel *tunnels,
		   size_t count)
{
	int err = 0;

	fprintf(out, "# Written by vnet-xdp for gateway %s; holds secrets.\nconnections {\n",
		cfg->gateway_name);
	for (size_t i = 0; !err && i < count; i++)
		err = render_connection(out, cfg, &tunnels[i]);
	fprintf(out, "}\nsecrets {\n");
	for (size_t i = 0; !err && i < count; i++) {
		char local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];

		if (!tunnels[i].connection->shared_key)
			continue;
		address_text(&tunnels[i].local, local, sizeof(local));
		address_text(&tunnels[i].peer, peer, sizeof(peer));
		fprintf(out, "  ike-%u {\n    id-local = %s\n    id-remote = %s\n    secret = ",
			tunnels[i].id, local, peer);
		if (quoted(out, tunnels[i].connection->shared_key)) {
			log_error("connection %s: the sharedKey holds a line break; allowed: one line",
				  tunnels[i].name);
			err = -EINVAL;
		}
		fprintf(out, "\n  }\n");
	}
	fprintf(out, "}\n");
	return err ? err : ferror(out) ? -EIO : 0;
}

const char *swanctl_uri(void)
{
	const char *uri = getenv("VNET_XDP_VICI");

	return uri && *uri ? uri : NULL;
}

/* Runs swanctl with args; its output goes to our stderr only with -v (it names
 * connections and secrets by name, never a secret's value). */
static int swanctl_run(const char *const *args)
{
	const char *argv[16];
	posix_spawn_file_actions_t actions;
	size_t n = 0;
	pid_t pid;
	int status, err;

	argv[n++] = "swanctl";
	for (; *args && n < 12; args++)
		argv[n++] = *args;
	if (swanctl_uri()) {
		argv[n++] = "--uri";
		argv[n++] = swanctl_uri();
	}
	argv[n] = NULL;
	posix_spawn_file_actions_init(&actions);
	if (!log_verbose) {
		posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
	}
	err = posix_spawnp(&pid, "swanctl", &actions, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (err)
		return -err;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void swanctl_file(const char *gateway, char *buf, size_t size)
{
	gateway_path(STATE_ROOT, gateway, ".swanctl.conf", buf, size);
}

struct rendering {
	const struct config *cfg;
	const struct tunnel *tunnels;
	size_t count;
};

static int fill_rendering(FILE *out, void *arg)
{
	const struct rendering *r = arg;

	return swanctl_render(out, r->cfg, r->tunnels, r->count);
}

static int fill_nothing(FILE *out, void *arg)
{
	return fputs("connections {\n}\nsecrets {\n}\n", out) < 0 ? -EIO : 0;
}

/* The file holds the secrets: private, and removed once swanctl has read it (charon
 * keeps them in memory; a copy at rest would be one more to protect). */
static int write_swanctl_file(const char *path, int (*fill)(FILE *out, void *arg), void *arg)
{
	int err = private_dir_ensure(STATE_ROOT);

	if (!err)
		err = private_file_write(path, fill, arg);
	if (err && err != -EINVAL) /* -EINVAL: a connection that cannot be written, said */
		log_error("cannot write %s: %s", path, strerror(-err));
	return err;
}

int swanctl_load(const char *gateway, const struct config *cfg, const struct tunnel *tunnels,
		 size_t count)
{
	struct rendering r = { cfg, tunnels, count };
	char path[300];
	int err;

	swanctl_file(gateway, path, sizeof(path));
	err = write_swanctl_file(path, fill_rendering, &r);
	if (err)
		return err;
	err = swanctl_run((const char *[]){ "--load-all", "--file", path, NULL });
	unlink(path);
	if (err)
		log_error("swanctl --load-all --file %s%s%s failed (%s): is charon running and "
			  "its vici socket there? (set VNET_XDP_VICI to its URI; -v shows swanctl's "
			  "output)", path, swanctl_uri() ? " --uri " : "", swanctl_uri() ?: "",
			  err == -EIO ? "it reported an error" : strerror(-err));
	return err;
}

void swanctl_terminate(const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		swanctl_run((const char *[]){ "--terminate", "--ike", names[i], "--force",
					      "--timeout", "5", NULL });
}

int swanctl_unload(const char *gateway, const char *const *names, size_t count)
{
	char path[300];
	int err;

	/* Loading a file without our connections makes swanctl unload them. */
	swanctl_file(gateway, path, sizeof(path));
	err = write_swanctl_file(path, fill_nothing, NULL);
	if (!err) {
		err = swanctl_run((const char *[]){ "--load-all", "--file", path, NULL });
		unlink(path);
	}
	swanctl_terminate(names, count);
	if (err)
		log_warn("swanctl could not unload the connections of %s (is charon running?)",
			 gateway);
	return err;
}

/* bgpd's life cycle for ExpressRoute links (see bgp.h). The conf is compile/frr.c's;
 * here are the files, the processes, the provider interface's address and what vtysh
 * says of the sessions. bgpd runs without zebra (-Z): nothing it learns reaches a kernel
 * table or the datapath (config/unenforced.c says so). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "compile/frr.h"
#include "datapath/bgp.h"
#include "lib/log.h"

#define LINK_FILE "link.json"
#define START_WAIT_MS 5000

static void link_dir(const char *gateway, size_t index, char *buf, size_t size)
{
	snprintf(buf, size, BGP_RUN_ROOT "/%s/link%zu", gateway, index);
}

/* Runs argv; its output into *out when out (the caller frees), else to /dev/null.
 * Returns its exit status, or -errno when it could not run. */
static int run(char *const argv[], char **out)
{
	int fds[2] = { -1, -1 }, status;
	pid_t pid;

	if (out && pipe(fds))
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		if (out) {
			close(fds[0]);
			close(fds[1]);
		}
		return err;
	}
	if (!pid) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(out ? fds[1] : null, 1);
		dup2(null, 2);
		if (out)
			close(fds[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	if (out) {
		size_t len = 0, cap = 4096;
		char *text = malloc(cap);
		ssize_t n;

		close(fds[1]);
		while (text && (n = read(fds[0], text + len, cap - len - 1)) > 0) {
			len += (size_t)n;
			if (cap - len < 2) {
				char *grown = realloc(text, cap * 2);

				if (!grown) {
					free(text);
					text = NULL;
					break;
				}
				text = grown;
				cap *= 2;
			}
		}
		close(fds[0]);
		if (text)
			text[len] = '\0';
		*out = text;
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -ECHILD;
}

static json_t *run_json(char *const argv[])
{
	char *text = NULL;
	json_t *doc = NULL;

	if (run(argv, &text) == 0 && text)
		doc = json_loads(text, 0, NULL);
	free(text);
	return doc;
}

/* The VLAN id of an 802.1Q device, 0 when it is not one, -ENODEV when it is absent. */
static int vlan_id_of(const char *interface)
{
	char *argv[] = { "/usr/sbin/ip", "-d", "-j", "link", "show", "dev", (char *)interface,
			 NULL };
	json_t *doc = run_json(argv), *info, *data;
	int id = 0;

	if (!doc)
		return -ENODEV;
	info = json_object_get(json_array_get(doc, 0), "linkinfo");
	data = json_object_get(info, "info_data");
	if (json_is_string(json_object_get(info, "info_kind")) &&
	    !strcmp(json_string_value(json_object_get(info, "info_kind")), "vlan") &&
	    (!json_object_get(data, "protocol") ||
	     !strcmp(json_string_value(json_object_get(data, "protocol")) ?: "", "802.1Q")))
		id = (int)json_integer_value(json_object_get(data, "id"));
	json_decref(doc);
	return id;
}

/* Whether interface already carries address/len. */
static bool address_present(const char *interface, const char *address, int len)
{
	char *argv[] = { "/usr/sbin/ip", "-j", "-4", "addr", "show", "dev", (char *)interface,
			 NULL };
	json_t *doc = run_json(argv), *a;
	bool found = false;
	size_t i;

	json_array_foreach(json_object_get(json_array_get(doc, 0), "addr_info"), i, a)
		found |= !strcmp(json_string_value(json_object_get(a, "local")) ?: "", address) &&
			 json_integer_value(json_object_get(a, "prefixlen")) == len;
	json_decref(doc);
	return found;
}

static int address_change(const char *verb, const char *interface, const char *address,
			  int len)
{
	char cidr[INET_ADDRSTRLEN + 4];
	char *argv[] = { "/usr/sbin/ip", "addr", (char *)verb, cidr, "dev", (char *)interface,
			 NULL };

	snprintf(cidr, sizeof(cidr), "%s/%d", address, len);
	return run(argv, NULL) == 0 ? 0 : -EIO;
}

/* A file of `text`, 0600, owned by uid/gid. */
static int write_private(const char *path, const char *text, uid_t uid, gid_t gid)
{
	char tmp[512];
	size_t len = strlen(text);
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fchown(fd, uid, gid) || fsync(fd))
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t size = 0;

	if (!f)
		return NULL;
	if (getdelim(&text, &size, '\0', f) < 0) {
		free(text);
		text = NULL;
	}
	fclose(f);
	return text;
}

static pid_t pid_of(const char *dir)
{
	char path[512], *text;
	long pid;

	snprintf(path, sizeof(path), "%s/bgpd.pid", dir);
	text = read_text(path);
	pid = text ? strtol(text, NULL, 10) : 0;
	free(text);
	return pid > 1 && !kill((pid_t)pid, 0) ? (pid_t)pid : 0;
}

static void stop_bgpd(const char *dir)
{
	pid_t pid = pid_of(dir);

	if (!pid)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && !kill(pid, 0); i++) {
		struct timespec ts = { 0, 20 * 1000000L };

		waitpid(pid, NULL, WNOHANG); /* not our child once daemonized; harmless */
		nanosleep(&ts, NULL);
	}
	if (!kill(pid, 0))
		kill(pid, SIGKILL);
}

/* One link stopped: bgpd, the address it put on the interface, its directory. */
static void link_remove(const char *dir)
{
	char path[512], *text;
	json_t *link;
	DIR *d;
	struct dirent *e;

	stop_bgpd(dir);
	snprintf(path, sizeof(path), "%s/" LINK_FILE, dir);
	text = read_text(path);
	link = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (json_is_true(json_object_get(link, "addressAdded")))
		address_change("del", json_string_value(json_object_get(link, "interface")),
			       json_string_value(json_object_get(link, "local")),
			       (int)json_integer_value(json_object_get(link, "prefixLength")));
	json_decref(link);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static int frr_user(uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam("frr");

	if (!pw || access(BGPD_PATH, X_OK))
		return -ENOENT;
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int wait_for_vty(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/bgpd.vty", dir);
	for (int waited = 0; waited < START_WAIT_MS; waited += 50) {
		struct timespec ts = { 0, 50 * 1000000L };

		if (!access(path, F_OK) && pid_of(dir))
			return 0;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int link_start(const char *gateway, size_t index, const struct bgp_link *link,
		      const char *conf)
{
	char dir[256], path[512], local[INET_ADDRSTRLEN], peer[INET_ADDRSTRLEN], pidfile[512],
	     logopt[560];
	uid_t uid;
	gid_t gid;
	bool added = false;
	json_t *record;
	char *text;
	int vlan, err;

	inet_ntop(AF_INET, link->local, local, sizeof(local));
	inet_ntop(AF_INET, link->peer, peer, sizeof(peer));
	if (frr_user(&uid, &gid)) {
		log_error("ExpressRoute connection %s: FRR's bgpd (%s) or its user frr is missing "
			  "(install the frr package)", link->connection, BGPD_PATH);
		return -ENOENT;
	}
	vlan = vlan_id_of(link->interface);
	if (vlan < 0) {
		log_error("ExpressRoute connection %s: interface %s does not exist here",
			  link->connection, link->interface);
		return -ENODEV;
	}
	if (vlan != link->vlan_id) {
		log_error("ExpressRoute connection %s: interface %s %s; the circuit's private "
			  "peering has vlanId %u", link->connection, link->interface,
			  vlan ? "has another VLAN id" : "is not an 802.1Q VLAN device",
			  link->vlan_id);
		if (vlan)
			log_error("  (%s has VLAN id %d)", link->interface, vlan);
		return -EINVAL;
	}
	link_dir(gateway, index, dir, sizeof(dir));
	link_remove(dir); /* what a crashed run left */
	snprintf(path, sizeof(path), BGP_RUN_ROOT "/%s", gateway);
	/* 0700 all the way, owned by frr: bgpd, which drops to frr, must reach its files */
	if ((mkdir(BGP_RUN_ROOT, 0700) && errno != EEXIST) || chown(BGP_RUN_ROOT, uid, gid) ||
	    (mkdir(path, 0700) && errno != EEXIST) || chown(path, uid, gid) ||
	    mkdir(dir, 0700) || chown(dir, uid, gid)) {
		err = -errno;
		log_error("cannot create %s: %s", dir, strerror(-err));
		return err;
	}
	if (!address_present(link->interface, local, link->prefix_len)) {
		err = address_change("add", link->interface, local, link->prefix_len);
		if (err) {
			log_error("ExpressRoute connection %s: cannot put %s/%u on %s",
				  link->connection, local, link->prefix_len, link->interface);
			rmdir(dir);
			return err;
		}
		added = true;
	}
	record = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:b}", "connection",
			   link->connection, "interface", link->interface, "link",
			   express_route_link_name(link->link), "local", local, "peer", peer,
			   "prefixLength", link->prefix_len, "asn", (json_int_t)link->local_asn,
			   "peerAsn", (json_int_t)link->peer_asn, "addressAdded", added);
	text = record ? json_dumps(record, JSON_COMPACT) : NULL;
	json_decref(record);
	snprintf(path, sizeof(path), "%s/" LINK_FILE, dir);
	err = text ? write_private(path, text, 0, 0) : -ENOMEM;
	free(text);
	snprintf(path, sizeof(path), "%s/frr.conf", dir);
	if (!err)
		err = write_private(path, conf, uid, gid);
	if (err) {
		log_error("cannot write under %s: %s", dir, strerror(-err));
		link_remove(dir);
		return err;
	}
	snprintf(pidfile, sizeof(pidfile), "%s/bgpd.pid", dir);
	snprintf(logopt, sizeof(logopt), "--log=file:%s/bgpd.log", dir);
	{
		char *argv[] = { BGPD_PATH, "-d", "-Z", "-f", path, "-i", pidfile, "--vty_socket",
				 dir, "-u", "frr", "-g", "frr", "-l", local, "-P", "0", logopt,
				 NULL };
		int rc = run(argv, NULL);

		err = rc ? (rc < 0 ? rc : -EIO) : wait_for_vty(dir);
	}
	if (err) {
		log_error("ExpressRoute connection %s: bgpd did not start (see %s/bgpd.log before "
			  "retrying; it is removed now)", link->connection, dir);
		link_remove(dir);
		return err;
	}
	log_info("ExpressRoute connection %s: bgpd peers with %s (AS %u) from %s on %s",
		 link->connection, peer, link->peer_asn, local, link->interface);
	return 0;
}

static int links_start(const struct config *cfg, bool keep_unchanged)
{
	int err = 0;

	for (size_t i = 0; !err && i < cfg->n_express_route_bindings; i++) {
		struct bgp_link link;
		char dir[256], path[512], *conf, *old;

		err = bgp_link_of(cfg, i, &link);
		if (err)
			break;
		conf = frr_conf_build(&link);
		if (!conf) {
			bgp_link_release(&link);
			err = -ENOMEM;
			break;
		}
		link_dir(cfg->gateway_name, i, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/frr.conf", dir);
		old = keep_unchanged ? read_text(path) : NULL;
		if (!old || strcmp(old, conf) || !pid_of(dir))
			err = link_start(cfg->gateway_name, i, &link, conf);
		else
			log_info("ExpressRoute connection %s: unchanged, bgpd kept", link.connection);
		free(old);
		free(conf);
		bgp_link_release(&link);
	}
	return err;
}

/* Links from `first` on: gone from the config. */
static void links_remove_from(const char *gateway, size_t first)
{
	for (size_t i = first;; i++) {
		char dir[256];

		link_dir(gateway, i, dir, sizeof(dir));
		if (access(dir, F_OK))
			break;
		link_remove(dir);
	}
}

int bgp_start(const struct config *cfg)
{
	int err = links_start(cfg, false);

	if (err)
		bgp_stop(cfg->gateway_name);
	return err;
}

int bgp_reload(const struct config *cfg)
{
	links_remove_from(cfg->gateway_name, cfg->n_express_route_bindings);
	return links_start(cfg, true);
}

void bgp_stop(const char *gateway)
{
	char path[256];

	links_remove_from(gateway, 0);
	snprintf(path, sizeof(path), BGP_RUN_ROOT "/%s", gateway);
	rmdir(path);
}

/* ---- what the sessions say -------------------------------------------------------------- */

static json_t *link_record(const char *dir)
{
	char path[512], *text;
	json_t *link;

	snprintf(path, sizeof(path), "%s/" LINK_FILE, dir);
	text = read_text(path);
	link = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return link;
}

static json_t *vtysh(const char *dir, const char *command)
{
	char *argv[] = { VTYSH_PATH, "--vty_socket", (char *)dir, "-d", "bgpd", "-c",
			 (char *)command, NULL };

	return run_json(argv);
}

/* Azure's BgpPeerStatus of an FRR state. */
static const char *peer_status(const char *state)
{
	if (!state)
		return "Unknown";
	return !strcmp(state, "Established") ? "Connected" : "Connecting";
}

json_t *bgp_peers(const char *gateway)
{
	json_t *list = json_array();

	for (size_t i = 0; list; i++) {
		char dir[256];
		json_t *link, *summary, *peers, *p, *o;
		const char *peer;

		link_dir(gateway, i, dir, sizeof(dir));
		link = link_record(dir);
		if (!link)
			break;
		peer = json_string_value(json_object_get(link, "peer"));
		summary = pid_of(dir) ? vtysh(dir, "show bgp ipv4 unicast summary json") : NULL;
		peers = json_object_get(json_object_get(summary, "ipv4Unicast") ?: summary, "peers");
		p = peer ? json_object_get(peers, peer) : NULL;
		o = json_pack("{s:O, s:O, s:O, s:O, s:O, s:s, s:b, s:I, s:I, s:I}",
			      "connection", json_object_get(link, "connection"),
			      "link", json_object_get(link, "link"),
			      "interface", json_object_get(link, "interface"),
			      "peer", json_object_get(link, "peer"),
			      "asn", json_object_get(link, "peerAsn"),
			      "state", peer_status(p ? json_string_value(json_object_get(p, "state"))
						     : NULL),
			      "up", p && !strcmp(json_string_value(json_object_get(p, "state")) ?: "",
						 "Established"),
			      "routesAdvertised", json_integer_value(json_object_get(p, "pfxSnt")),
			      "routesLearned", json_integer_value(json_object_get(p, "pfxRcd")),
			      "uptime", p && !strcmp(json_string_value(json_object_get(p, "state")) ?: "",
						    "Established") ?
				      json_integer_value(json_object_get(p, "peerUptimeMsec")) / 1000 : 0);
		if (o && p && json_object_get(p, "state"))
			json_object_set(o, "sessionState", json_object_get(p, "state"));
		json_array_append_new(list, o);
		json_decref(summary);
		json_decref(link);
	}
	return list;
}

json_t *bgp_learned_routes(const char *gateway)
{
	json_t *list = json_array();

	for (size_t i = 0; list; i++) {
		char dir[256];
		json_t *link, *table, *paths;
		const char *peer, *prefix;

		link_dir(gateway, i, dir, sizeof(dir));
		link = link_record(dir);
		if (!link)
			break;
		peer = json_string_value(json_object_get(link, "peer")) ?: "";
		table = pid_of(dir) ? vtysh(dir, "show bgp ipv4 unicast json") : NULL;
		json_object_foreach(json_object_get(table, "routes"), prefix, paths) {
			json_t *path;
			size_t k;

			json_array_foreach(paths, k, path) {
				const char *from = json_string_value(json_object_get(path, "peerId"));

				if (!from || strcmp(from, peer) || !json_is_true(json_object_get(path, "valid")))
					continue;
				json_array_append_new(list, json_pack("{s:O, s:s, s:s, s:s, s:b}",
					"connection", json_object_get(link, "connection"),
					"prefix", prefix, "nextHop", peer,
					"asPath", json_string_value(json_object_get(path, "path")) ?: "",
					"best", json_is_true(json_object_get(path, "bestpath"))));
			}
		}
		json_decref(table);
		json_decref(link);
	}
	return list;
}

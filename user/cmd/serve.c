/* `vnet-xdp serve`: brings the gateway up, then exports its counters over HTTP (and,
 * optionally, into a textfile collector's directory) and keeps its tunnels dialled
 * (user/datapath/tunnel_redial.c) until SIGINT or SIGTERM; SIGHUP reloads the config. The
 * datapath and its pinned counters outlive the exporter: exiting only stops the export,
 * unless --down-on-stop asks for the gateway to go down too. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>
#include "cmd/options.h"
#include "lib/cli.h"
#include "config/config.h"
#include "datapath/gateway.h"
#include "lib/gateway_name.h"
#include "lib/lock.h"
#include "lib/log.h"
#include "observe/metrics.h"
#include "cmd/serve.h"
#include "lib/service.h"
#include "datapath/datapath.h"
#include "datapath/snat.h"
#include "observe/flow_log.h"
#include "observe/flows.h"
#include "datapath/state.h"
#include "observe/stats.h"
#include "datapath/express_route.h"
#include "datapath/tunnel_redial.h"

#define SERVE_DEFAULT_LISTEN "127.0.0.1:9469"
/* A connection is only a socket in MHD's epoll set until its request is complete, so slow
 * clients cost a slot each and block no thread; the limits keep them from taking every
 * slot: SERVE_PER_IP_LIMIT per source address, SERVE_CONNECTION_LIMIT in all (well below
 * the usual 1024 open files). A Prometheus server scrapes over one or two connections;
 * a per-address share of 16 leaves room for a few scrapes at once. */
#define SERVE_THREADS 2                 /* epoll threads, each answering its connections */
#define SERVE_CONNECTION_TIMEOUT 5      /* seconds a connection may stay silent */
#define SERVE_CONNECTION_LIMIT 512
#define SERVE_PER_IP_LIMIT 16
#define SERVE_LISTEN_BACKLOG 128
#define TEXTFILE_INTERVAL_SECONDS 5
/* The figures that cost a table walk are counted this often (the HELP of the metrics
 * they feed says so); a scrape takes the last count. */
#define SLOW_STATS_INTERVAL_SECONDS 10

#define EXIT_FAILED 1
#define EXIT_USAGE 2

struct serve_options {
	const char *config;
	const char *name;
	const char *listen;
	const char *textfile;
	bool strict, down_on_stop;
};

struct exporter {
	char gateway[128];
	pthread_mutex_t lock;
	pthread_cond_t stop_requested;
	bool stopping;
	json_t *slow; /* stats_collect_slow's last count, under lock */
	pthread_t collector;
	pthread_t redial; /* its own thread: a slow count or GC never delays a redial */
	bool redialing;
	struct redialer redialer;
	struct express_route_poller express_route; /* the redial thread's too */
	struct flow_log *flow_log; /* gateway.flowLogs; swapped under lock */
};

static const char index_page[] =
	"<html><head><title>vnet-xdp</title></head><body><h1>vnet-xdp exporter</h1>"
	"<p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

static int parse_serve_options(int argc, char **argv, struct serve_options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "listen", required_argument, NULL, 'l' },
		{ "textfile", required_argument, NULL, 't' },
		{ "strict", no_argument, NULL, 'S' },
		{ "down-on-stop", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'n': o->name = optarg; break;
		case 'l': o->listen = optarg; break;
		case 't': o->textfile = optarg; break;
		case 'S': o->strict = true; break;
		case 'D': o->down_on_stop = true; break;
		default:
			cli_option_error("serve", c, argv);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vnet-xdp serve: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* ADDR:PORT, [IPV6]:PORT or :PORT (every IPv4 address). */
static int parse_listen(const char *text, struct sockaddr_storage *addr)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	size_t host_len;
	char *end;
	long port;

	if (!colon)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end || port < 1 || port > 65535)
		return -EINVAL;
	host_len = colon - text;
	if (host_len >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	memset(addr, 0, sizeof(*addr));
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;

		host[host_len - 1] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1 ? 0 : -EINVAL;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)addr;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		if (host_len == 0) {
			in->sin_addr.s_addr = htonl(INADDR_ANY);
			return 0;
		}
		return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -EINVAL;
	}
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned int status,
			       const char *content_type, char *body, size_t length,
			       enum MHD_ResponseMemoryMode memory)
{
	struct MHD_Response *response = MHD_create_response_from_buffer(length, body, memory);
	enum MHD_Result result;

	if (!response) {
		if (memory == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result respond_static(struct MHD_Connection *connection, unsigned int status,
				      const char *content_type, const char *body)
{
	return respond(connection, status, content_type, (char *)body, strlen(body),
		       MHD_RESPMEM_PERSISTENT);
}

/* The figures that cost a walk of the flow or SNAT tables, counted in the background
 * every SLOW_STATS_INTERVAL_SECONDS, so that no scrape waits for a walk. */
static void slow_stats_refresh(struct exporter *exporter)
{
	json_t *slow = stats_collect_slow(exporter->gateway), *old;

	pthread_mutex_lock(&exporter->lock);
	old = exporter->slow;
	exporter->slow = slow;
	pthread_mutex_unlock(&exporter->lock);
	json_decref(old);
}

static void *slow_stats_collector(void *arg)
{
	struct exporter *exporter = arg;
	struct timespec next;

	pthread_mutex_lock(&exporter->lock);
	while (!exporter->stopping) {
		clock_gettime(CLOCK_REALTIME, &next);
		next.tv_sec += SLOW_STATS_INTERVAL_SECONDS;
		pthread_cond_timedwait(&exporter->stop_requested, &exporter->lock, &next);
		if (exporter->stopping)
			break;
		pthread_mutex_unlock(&exporter->lock);
		slow_stats_refresh(exporter);
		pthread_mutex_lock(&exporter->lock);
	}
	pthread_mutex_unlock(&exporter->lock);
	return NULL;
}

/* The first count is taken before serving, so that every scrape has one. */
static int slow_stats_start(struct exporter *exporter)
{
	int err;

	pthread_mutex_init(&exporter->lock, NULL);
	pthread_cond_init(&exporter->stop_requested, NULL);
	slow_stats_refresh(exporter);
	err = pthread_create(&exporter->collector, NULL, slow_stats_collector, exporter);
	if (err)
		log_error("cannot start the stats collector: %s", strerror(err));
	return -err;
}

static uint64_t monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Every REDIAL_INTERVAL_MS: the gateway's tunnels that are down are initiated again, and
 * the ExpressRoute links' routes follow what bgpd learned and withdrew. */
static void *redial_run(void *arg)
{
	struct exporter *exporter = arg;
	struct timespec next;

	pthread_mutex_lock(&exporter->lock);
	while (!exporter->stopping) {
		clock_gettime(CLOCK_REALTIME, &next);
		next.tv_nsec += (REDIAL_INTERVAL_MS % 1000) * 1000000L;
		next.tv_sec += REDIAL_INTERVAL_MS / 1000 + next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&exporter->stop_requested, &exporter->lock, &next);
		if (exporter->stopping)
			break;
		pthread_mutex_unlock(&exporter->lock);
		redialer_tick(&exporter->redialer, monotonic_ms());
		express_route_poll(&exporter->express_route);
		pthread_mutex_lock(&exporter->lock);
	}
	pthread_mutex_unlock(&exporter->lock);
	express_route_poller_free(&exporter->express_route);
	return NULL;
}

/* After slow_stats_start (which readies the lock). A redialer that cannot start is
 * said and the export goes on: charon still retries silent peers by itself. */
static void redial_start(struct exporter *exporter)
{
	int err;

	snprintf(exporter->redialer.gateway, sizeof(exporter->redialer.gateway), "%s",
		 exporter->gateway);
	snprintf(exporter->express_route.gateway, sizeof(exporter->express_route.gateway), "%s",
		 exporter->gateway);
	err = pthread_create(&exporter->redial, NULL, redial_run, exporter);
	if (err)
		log_error("cannot start re-initiating down tunnels: %s", strerror(err));
	exporter->redialing = !err;
}

static void slow_stats_stop(struct exporter *exporter)
{
	pthread_mutex_lock(&exporter->lock);
	exporter->stopping = true;
	pthread_cond_broadcast(&exporter->stop_requested);
	pthread_mutex_unlock(&exporter->lock);
	pthread_join(exporter->collector, NULL);
	if (exporter->redialing)
		pthread_join(exporter->redial, NULL);
	redialer_free(&exporter->redialer);
	json_decref(exporter->slow);
}

/* The stats document now, with the collector's last count of the slow figures. */
static json_t *exporter_stats(struct exporter *exporter)
{
	json_t *slow, *stats;

	pthread_mutex_lock(&exporter->lock);
	slow = json_incref(exporter->slow); /* never changed once counted; atomic references */
	pthread_mutex_unlock(&exporter->lock);
	stats = stats_collect_with(exporter->gateway, slow); /* none yet (not up): counted now */
	json_decref(slow);
	pthread_mutex_lock(&exporter->lock);
	if (stats && exporter->flow_log)
		flow_log_stats(exporter->flow_log, stats);
	pthread_mutex_unlock(&exporter->lock);
	return stats;
}

/* One scrape: collect from the pinned maps now, render, send. Runs on MHD's threads. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *connection, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **request)
{
	struct exporter *exporter = cls;
	char *text, message[256];
	size_t length;
	json_t *stats;

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_static(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
				      "only GET and HEAD\n");
	if (!strcmp(url, "/"))
		return respond_static(connection, MHD_HTTP_OK, "text/html", index_page);
	if (strcmp(url, "/metrics"))
		return respond_static(connection, MHD_HTTP_NOT_FOUND, "text/plain",
				      "not found; try /metrics\n");
	stats = exporter_stats(exporter);
	if (!stats) {
		snprintf(message, sizeof(message), "gateway %s: cannot read its counters: %s\n",
			 exporter->gateway, errno == ENOENT ? "it is not up" : strerror(errno));
		text = strdup(message);
		if (!text)
			return MHD_NO;
		return respond(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", text,
			       strlen(text), MHD_RESPMEM_MUST_FREE);
	}
	text = metrics_render_text(stats, &length);
	json_decref(stats);
	if (!text)
		return respond_static(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
				      "out of memory\n");
	return respond(connection, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text, length,
		       MHD_RESPMEM_MUST_FREE);
}

static void http_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	log_debug("http: %s", line);
}

/* The listening socket comes first so that a taken port fails before the datapath is
 * touched; scrapes that arrive while `up` runs wait in its backlog. */
static int http_listen(const char *address)
{
	struct sockaddr_storage addr;
	int fd, one = 1, err;

	if (parse_listen(address, &addr)) {
		log_error("listen address %s: expected ADDR:PORT, [IPV6]:PORT or :PORT", address);
		return -EINVAL;
	}
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		log_error("cannot listen on %s: %s", address, strerror(-err));
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, addr.ss_family == AF_INET6 ?
		 sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) ||
	    listen(fd, SERVE_LISTEN_BACKLOG)) {
		err = -errno;
		log_error("cannot listen on %s: %s", address, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

static struct MHD_Daemon *http_start(int listen_fd, struct exporter *exporter)
{
	struct MHD_Daemon *daemon;

	errno = 0;
	daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG,
				  0, NULL, NULL, answer, exporter,
				  MHD_OPTION_LISTEN_SOCKET, listen_fd,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)SERVE_THREADS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVE_CONNECTION_TIMEOUT,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)SERVE_CONNECTION_LIMIT,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)SERVE_PER_IP_LIMIT,
				  MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL,
				  MHD_OPTION_END);
	if (!daemon)
		log_error("cannot start the HTTP server: %s",
			  errno ? strerror(errno) : "the HTTP library refused");
	return daemon;
}

/* Writes the textfile; says so once when it starts failing and once when it recovers. */
static int textfile_update(const char *dir, struct exporter *exporter, bool *failing)
{
	json_t *stats = exporter_stats(exporter);
	int err;

	if (!stats) {
		err = -errno;
	} else {
		err = metrics_write_textfile(dir, stats);
		json_decref(stats);
	}
	if (err && !*failing)
		log_warn("cannot write %s/%s: %s", dir, METRICS_TEXTFILE_NAME,
			 err == -ENOENT && !stats ? "the gateway is not up" : strerror(-err));
	else if (!err && *failing)
		log_info("writing %s/%s again", dir, METRICS_TEXTFILE_NAME);
	*failing = err != 0;
	return err;
}

/* Picks the gateway and listen address: from the config when there is one, else from
 * the state `up` left. Brings the gateway up when a config is given. */
static int gateway_prepare(const struct serve_options *o, struct exporter *exporter,
			   char *listen, size_t listen_size, struct config **cfg)
{
	const char *from_config = NULL;
	json_t *state;
	int rc;

	if (o->config) {
		if (cli_load_config(o->config, o->strict, cfg))
			return EXIT_FAILED;
		if (o->name && strcmp(o->name, (*cfg)->gateway_name)) {
			fprintf(stderr, "vnet-xdp serve: -n %s, but %s configures gateway %s\n",
				o->name, o->config, (*cfg)->gateway_name);
			return EXIT_USAGE;
		}
		snprintf(exporter->gateway, sizeof(exporter->gateway), "%s", (*cfg)->gateway_name);
		from_config = (*cfg)->metrics_listen;
	} else {
		rc = gateway_resolve_name(o->name, exporter->gateway, sizeof(exporter->gateway));
		if (rc) {
			log_error(rc == -EEXIST ? "several gateways are up; name one with -n"
						: "no gateway is up; give its config with -c FILE");
			return EXIT_FAILED;
		}
	}
	state = o->config ? NULL : state_load(exporter->gateway);
	if (state && json_string_length(json_object_get(state, "metricsListen")))
		from_config = json_string_value(json_object_get(state, "metricsListen"));
	snprintf(listen, listen_size, "%s",
		 o->listen ? o->listen
			   : from_config && *from_config ? from_config : SERVE_DEFAULT_LISTEN);
	json_decref(state);
	return 0;
}

/* Up; or, for a gateway already up (a service restarted: the datapath outlived the
 * last serve), an atomic reload, so that a config edited in between takes effect. */
static int gateway_start(const struct config *cfg)
{
	json_t *state = state_load(cfg->gateway_name);
	bool up = state && gateway_pins_exist(cfg->gateway_name);

	json_decref(state);
	if (!up)
		return gateway_up(cfg, XDP_MODE_UNSPEC);
	log_info("gateway %s is up already: reloading it from its config", cfg->gateway_name);
	return gateway_reload(cfg);
}

/* One GC pass, skipped while the previous ones took more than half the time (a table
 * of a million entries takes seconds to read); a failure is logged once until a pass
 * succeeds again. */
static void snat_gc_tick(const char *gateway)
{
	static bool failing;
	static uint64_t next_ns;
	struct snat_gc_result r;
	uint64_t start = datapath_clock_ns();
	int err;

	if (start < next_ns)
		return;
	err = snat_gc(gateway, start, &r);
	next_ns = start + 2 * (datapath_clock_ns() - start);

	if (err && !failing)
		log_warn("gateway %s: SNAT GC failed: %s", gateway, strerror(-err));
	else if (!err && (r.mappings_expired || r.reverse_freed))
		log_debug("gateway %s: SNAT GC: %zu mappings expired, %zu ports freed", gateway,
			  r.mappings_expired, r.reverse_freed);
	failing = err != 0;
}

/* The periodic collectors, under the gateway's lock: a reload or down that holds it
 * makes them skip this turn rather than delete from maps being replaced. */
static void collectors_run(const char *gateway, struct flow_log *flow_log)
{
	int lock = gateway_lock(gateway, 0);

	if (lock < 0) {
		log_debug("gateway %s: collectors skip a turn: %s", gateway, strerror(-lock));
		return;
	}
	/* idle flows out, before LRU must evict; each told to the flow log first (its End) */
	flows_gc(gateway, flow_log ? flow_log_flow_removed : NULL, flow_log);
	snat_gc_tick(gateway); /* expired SNAT mappings, ports back */
	gateway_unlock(lock);
}

/* The config a SIGHUP reloads: the one serve was given, else the one the gateway came
 * up with (its state says which). */
static char *reload_config_path(const struct serve_options *o, const char *gateway)
{
	json_t *state;
	char *path = NULL;

	if (o->config)
		return strdup(o->config);
	state = state_load(gateway);
	if (state && json_string_length(json_object_get(state, "config")))
		path = strdup(json_string_value(json_object_get(state, "config")));
	json_decref(state);
	return path;
}

/* SIGHUP: the same atomic reload as `vnet-xdp reload`; a config that fails leaves the
 * running one in place. Returns 0 or -errno. */
static int serve_reload(const struct serve_options *o, const char *gateway)
{
	struct config *cfg = NULL;
	char *path = reload_config_path(o, gateway);
	int err = -EINVAL;

	if (!path) {
		log_error("gateway %s: SIGHUP: no config to reload (its state names none)", gateway);
		return -ENOENT;
	}
	log_info("gateway %s: SIGHUP: reloading from %s", gateway, path);
	if (cli_load_config(path, o->strict, &cfg))
		goto out;
	if (strcmp(cfg->gateway_name, gateway)) {
		log_error("%s configures gateway %s, not %s; nothing was changed", path,
			  cfg->gateway_name, gateway);
		goto out;
	}
	err = gateway_reload(cfg); /* it says what it did */
out:
	if (err)
		log_error("gateway %s: reload from %s failed; the running config stays", gateway,
			  path);
	if (cfg)
		config_free(cfg);
	free(path);
	return err;
}

/* gateway.flowLogs of the running config, from the state `up` and `reload` write. */
static bool flow_log_settings_of_state(const char *gateway, struct config_flow_logs *s)
{
	json_t *state = state_load(gateway), *fl = json_object_get(state, "flowLogs");
	const char *dir = json_string_value(json_object_get(fl, "directory"));

	*s = (struct config_flow_logs){ .enabled = dir != NULL, .directory = dir ? strdup(dir) : NULL,
		.interval_seconds = (uint32_t)json_integer_value(json_object_get(fl, "intervalSeconds")),
		.max_megabytes = (uint32_t)json_integer_value(json_object_get(fl, "maxMegabytes")),
		.denied_per_second = (uint32_t)json_integer_value(json_object_get(fl, "deniedPerSecond")) };
	json_decref(state);
	if (s->enabled && (!s->directory || !s->interval_seconds || !s->max_megabytes)) {
		free(s->directory);
		s->enabled = false;
	}
	return s->enabled;
}

/* Starts, restarts (settings changed by a reload) or stops the flow log writer to match
 * the running config. A directory that cannot be used is said and, at start, fails serve;
 * after a reload the writer already running stays. Returns 0 or -errno. */
static int flow_log_apply(struct exporter *exporter)
{
	struct config_flow_logs s;
	struct flow_log *old = exporter->flow_log, *fresh = NULL;
	bool enabled = flow_log_settings_of_state(exporter->gateway, &s);
	int err = 0;

	if (enabled && flow_log_settings_equal(old, &s)) {
		free(s.directory);
		return 0;
	}
	if (enabled) {
		err = flow_log_directory_prepare(s.directory);
		fresh = err ? NULL : flow_log_start(exporter->gateway, &s);
		free(s.directory);
		if (!fresh)
			return err ? err : -ENOMEM;
	}
	/* The old writer stops first: one reader of the drop events at a time. */
	pthread_mutex_lock(&exporter->lock);
	exporter->flow_log = NULL;
	pthread_mutex_unlock(&exporter->lock);
	flow_log_stop(old);
	pthread_mutex_lock(&exporter->lock);
	exporter->flow_log = fresh;
	pthread_mutex_unlock(&exporter->lock);
	return 0;
}

static void serve_ready(const char *gateway, const char *listen, const char *event)
{
	char status[512];

	snprintf(status, sizeof(status), "gateway %s %s; serving /metrics on http://%s",
		 gateway, event, listen);
	service_ready(status);
}

int serve_main(int argc, char **argv)
{
	struct serve_options o = { 0 };
	struct exporter exporter = { 0 };
	struct config *cfg = NULL;
	struct MHD_Daemon *daemon;
	char listen[256];
	sigset_t signals;
	bool textfile_failing = false;
	struct stat st;
	int rc, err, listen_fd;

	if (parse_serve_options(argc, argv, &o)) {
		cli_usage_hint("serve");
		return EXIT_USAGE;
	}
	if (gateway_name_check("serve", o.name))
		return EXIT_USAGE;
	if (o.listen && parse_listen(o.listen, &(struct sockaddr_storage){ 0 })) {
		fprintf(stderr, "vnet-xdp serve: --listen %s: expected ADDR:PORT, [IPV6]:PORT or :PORT\n",
			o.listen);
		return EXIT_USAGE;
	}
	if (o.textfile && (stat(o.textfile, &st) || !S_ISDIR(st.st_mode))) {
		log_error("--textfile %s: not a directory", o.textfile);
		return EXIT_FAILED;
	}
	rc = gateway_prepare(&o, &exporter, listen, sizeof(listen), &cfg);
	if (rc) {
		if (rc == EXIT_USAGE)
			cli_usage_hint("serve");
		if (cfg)
			config_free(cfg);
		return rc;
	}

	/* Signals are taken synchronously by this thread; MHD's threads inherit the mask. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	listen_fd = http_listen(listen);
	if (listen_fd < 0) {
		if (cfg)
			config_free(cfg);
		return EXIT_FAILED;
	}
	/* A flow log directory that cannot be used fails serve before the gateway changes. */
	if (cfg && cfg->flow_logs.enabled && flow_log_directory_prepare(cfg->flow_logs.directory)) {
		config_free(cfg);
		close(listen_fd);
		return EXIT_FAILED;
	}
	if (cfg) {
		err = gateway_start(cfg);
		config_free(cfg);
		if (err) {
			close(listen_fd);
			return EXIT_FAILED;
		}
	}
	if (slow_stats_start(&exporter)) {
		close(listen_fd);
		return EXIT_FAILED;
	}
	redial_start(&exporter);
	if (flow_log_apply(&exporter)) {
		slow_stats_stop(&exporter);
		close(listen_fd);
		return EXIT_FAILED;
	}
	daemon = http_start(listen_fd, &exporter);
	if (!daemon) {
		flow_log_stop(exporter.flow_log);
		slow_stats_stop(&exporter);
		close(listen_fd);
		return EXIT_FAILED;
	}
	if (o.textfile)
		textfile_update(o.textfile, &exporter, &textfile_failing);
	log_info("gateway %s: serving /metrics on http://%s%s%s", exporter.gateway, listen,
		 o.textfile ? ", textfile in " : "", o.textfile ? o.textfile : "");
	serve_ready(exporter.gateway, listen, "up");

	for (;;) {
		struct timespec interval = { .tv_sec = TEXTFILE_INTERVAL_SECONDS };
		int sig = sigtimedwait(&signals, NULL, &interval);

		if (sig < 0) {
			if (errno == EAGAIN && o.textfile)
				textfile_update(o.textfile, &exporter, &textfile_failing);
			if (errno == EAGAIN)
				collectors_run(exporter.gateway, exporter.flow_log);
			continue;
		}
		if (sig == SIGHUP) {
			service_reloading();
			err = serve_reload(&o, exporter.gateway);
			if (!err && flow_log_apply(&exporter))
				log_error("gateway %s: the flow log settings of the reloaded config "
					  "cannot be used; flow logs stay as they were", exporter.gateway);
			serve_ready(exporter.gateway, listen,
				    err ? "kept its config (reload failed)" : "reloaded");
			continue;
		}
		if (o.down_on_stop)
			log_info("%s: stopping the exporter and taking gateway %s down",
				 strsignal(sig), exporter.gateway);
		else
			log_info("%s: stopping the exporter; gateway %s keeps forwarding",
				 strsignal(sig), exporter.gateway);
		break;
	}
	service_stopping();
	MHD_stop_daemon(daemon);
	flow_log_stop(exporter.flow_log); /* its last interval written */
	exporter.flow_log = NULL;
	slow_stats_stop(&exporter);
	if (o.down_on_stop && gateway_down(exporter.gateway))
		return EXIT_FAILED;
	return 0;
}

// SPDX-License-Identifier: MIT
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "netaddr.h"
#include "registry.h"

#define VERSION "0.1.0"

/* One table drives the environment, the flags and --help. */
enum kind { K_STR, K_URL, K_PREFIX, K_UINT, K_LISTEN, K_STUN, K_LEVEL, K_BOOL, K_LISTEN_OPT };

struct setting {
	const char *env, *flag, *def, *help;
	enum kind kind;
	unsigned min, max;
	size_t off; /* K_UINT (unsigned), K_BOOL (bool), K_STR (char array of max + 1),
		     * K_LISTEN_OPT (struct sockaddr_in) */
	unsigned scale; /* K_UINT: stored value = given value * scale */
};

#define AT(field) .off = offsetof(struct config, field)

static const struct setting settings[] = {
	{ "GIST_URL", "gist-url", "", "URL of the peer list (a JSON array of node.json URLs; required unless P2PWG_REGISTRY)", K_URL, 0, 0, 0, 0 },
	{ "P2PWG_OVERLAY", "overlay", "10.88.0.0/24", "overlay prefix", K_PREFIX, 0, 0, 0, 0 },
	{ "P2PWG_BASE_OFFSET", "base-offset", "10", "address of list position i: prefix + offset + i", K_UINT, 1, 65535, AT(base_offset), .scale = 1 },
	{ "P2PWG_LISTEN", "listen", "0.0.0.0:8080", "public HTTP address for /node.json and /healthz", K_LISTEN, 0, 0, 0, 0 },
	{ "P2PWG_AGENT_SOCKET", "agent-socket", "/run/p2pwg/agent.sock", "wgagent's control socket", K_STR, 1, 107, AT(agent_socket) },
	{ "P2PWG_STUN_SERVERS", "stun-servers", "stun.l.google.com:19302,stun.cloudflare.com:3478", "STUN servers, comma separated host:port (at least two to tell the NAT kind)", K_STUN, 0, 0, 0, 0 },
	{ "P2PWG_POLL_INTERVAL", "poll-interval", "15", "seconds between peer list polls", K_UINT, 1, 3600, AT(poll_interval_s), .scale = 1 },
	{ "P2PWG_TEST_INTERVAL", "test-interval", "10", "seconds between /test probes of the peers", K_UINT, 1, 3600, AT(test_interval_s), .scale = 1 },
	{ "P2PWG_STUN_INTERVAL", "stun-interval", "60", "seconds between STUN probes", K_UINT, 5, 86400, AT(stun_interval_s), .scale = 1 },
	{ "P2PWG_HTTP_TIMEOUT", "http-timeout", "5", "seconds allowed for each HTTPS fetch", K_UINT, 1, 120, AT(http_timeout_ms), .scale = 1000 },
	{ "P2PWG_CA_BUNDLE", "ca-bundle", "", "CA certificates for HTTPS (default: the system's)", K_STR, 0, 1023, AT(ca_bundle) },
	{ "P2PWG_LOG_LEVEL", "log-level", "info", "error, warn, info or debug", K_LEVEL, 0, 0, 0, 0 },
	{ "P2PWG_ALLOW_HTTP", "allow-http", "0", "accept http:// URLs (tests only)", K_BOOL, 0, 0, AT(allow_http) },
	{ "P2PWG_ALLOW_ROOT", "allow-root", "0", "run even as root (not recommended)", K_BOOL, 0, 0, AT(allow_root) },
	{ "P2PWG_SELF_URL", "self-url", "", "this node's own URL in the list (optional; found by key otherwise)", K_STR, 0, 2047, AT(self_url) },
	{ "P2PWG_STATUS_LISTEN", "status-listen", "127.0.0.1:8081", "HTTP address for /status and /metrics (keep it private; off to disable)", K_LISTEN_OPT, 0, 0, AT(status_listen) },
	{ "P2PWG_RELAY", "relay", "1", "relay WireGuard through the peers' HTTPS URLs when no direct path works", K_BOOL, 0, 0, AT(relay) },
	{ "P2PWG_RELAY_AFTER", "relay-after", "10", "seconds without a handshake with a peer's published endpoint before relaying", K_UINT, 1, 3600, AT(relay_after_s), .scale = 1 },
	{ "P2PWG_RELAY_KEEPALIVE", "relay-keepalive", "25", "seconds between keepalives on a relay stream (the gateway cuts idle ones)", K_UINT, 1, 3600, AT(relay_keepalive_s), .scale = 1 },
	{ "P2PWG_RELAY_MAX", "relay-max", "32", "relayed peers at most", K_UINT, 1, 245, AT(relay_max), .scale = 1 },
	{ "P2PWG_RELAY_RATE", "relay-rate", "12500", "kB/s at most per relay stream and direction", K_UINT, 10, 4000000, AT(relay_rate), .scale = 1000 },
	{ "P2PWG_LEAVE_AFTER", "leave-after", "3", "full list polls in a row without this node's key before it leaves the mesh", K_UINT, 1, 1000, AT(leave_after), .scale = 1 },
	{ "P2PWG_REGISTRY", "registry", "", "the peer list from a contract instead: 0x<address>@<JSON-RPC URL>", K_STR, 0, 2099, AT(registry) },
	{ "P2PWG_DSTACK_SOCKET", "dstack-socket", "/var/run/dstack.sock", "dstack guest agent's socket (quote published in node.json when it answers)", K_STR, 0, 107, AT(dstack_socket) },
	{ "P2PWG_VERIFIER_URL", "verifier-url", "", "dstack-verifier's /verify URL: configure only peers whose quote it accepts", K_STR, 0, 2047, AT(verifier_url) },
	{ "P2PWG_ALLOW_APP_IDS", "allow-app-ids", "", "app ids (hex, comma separated) admitted with P2PWG_VERIFIER_URL", K_STR, 0, 2047, AT(allow_app_ids) },
	{ "P2PWG_ALLOW_COMPOSE_HASHES", "allow-compose-hashes", "", "compose hashes (hex, comma separated) admitted with P2PWG_VERIFIER_URL", K_STR, 0, 2047, AT(allow_compose_hashes) },
	{ "P2PWG_ATTEST_MAX_AGE", "attest-max-age", "3600", "seconds a peer's quote stays fresh (this node re-quotes every third of it)", K_UINT, 30, 86400, AT(attest_max_age_s), .scale = 1 },
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: controld [options]\n"
		   "The unprivileged half of p2pwg: polls the peer list, fetches every peer's\n"
		   "node.json, discovers this node's public endpoint with STUN, serves /node.json,\n"
		   "and tells wgagent which peers to configure.\n\n"
		   "Each option can also be set by the environment variable shown.\n");
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		fprintf(f, "  --%-14s %-20s %s", s->flag, s->env, s->help);
		if (s->def && *s->def)
			fprintf(f, " (default %s)", s->def);
		else if (!s->def)
			fprintf(f, " (required)");
		fprintf(f, "\n");
	}
	fprintf(f, "  --help, --version\n");
}

static const struct setting *setting_named(const char *env)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (!strcmp(settings[i].env, env))
			return &settings[i];
	return NULL;
}

static int bad(FILE *err, const struct setting *s, const char *v, const char *why)
{
	fprintf(err, "controld: invalid %s (--%s) '%s': %s\n", s->env, s->flag, v, why);
	return -EINVAL;
}

static bool valid_url(const char *v, bool allow_http)
{
	if (strncmp(v, "https://", 8) && !(allow_http && !strncmp(v, "http://", 7)))
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return strlen(v) > 8;
}

/* A comma separated list of hex ids (an optional 0x each), or "". */
static bool hex_list(const char *v)
{
	for (const char *p = v; *p;) {
		size_t n;

		p += strspn(p, ", ");
		if (!*p)
			break;
		if (!strncmp(p, "0x", 2) || !strncmp(p, "0X", 2))
			p += 2;
		n = strspn(p, "0123456789abcdefABCDEF");
		if (!n || (p[n] && p[n] != ',' && p[n] != ' '))
			return false;
		p += n;
	}
	return true;
}

static int parse_hostport(const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (!colon || colon == v || strlen(v) >= 256)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	return *end || port < 1 || port > 65535 ? -EINVAL : 0;
}

static int apply(struct config *c, const struct setting *s, const char *v, FILE *err)
{
	char *end;
	unsigned long u;
	int lvl;

	switch (s->kind) {
	case K_URL:
		if (strlen(v) >= sizeof(c->gist_url))
			return bad(err, s, v, "too long");
		/* allow_http may come later on the command line: checked at the end. */
		snprintf(c->gist_url, sizeof(c->gist_url), "%s", v);
		return 0;
	case K_PREFIX:
		if (netaddr_parse_prefix4(v, &c->overlay_net, &c->overlay_len) || c->overlay_len < 8 ||
		    c->overlay_len > 30 || (c->overlay_net.s_addr & ~netaddr_mask4(c->overlay_len)))
			return bad(err, s, v, "an IPv4 network a.b.c.d/len, len 8..30, host bits zero");
		return 0;
	case K_UINT:
		errno = 0;
		u = strtoul(v, &end, 10);
		if (errno || !*v || *end || *v == '-' || u < s->min || u > s->max) {
			char why[64];

			snprintf(why, sizeof(why), "a whole number from %u to %u", s->min, s->max);
			return bad(err, s, v, why);
		}
		*(unsigned *)((char *)c + s->off) = (unsigned)u * s->scale;
		return 0;
	case K_LISTEN:
		if (netaddr_parse_endpoint4(v, &c->listen))
			return bad(err, s, v, "an IPv4 address and port, e.g. 0.0.0.0:8080");
		return 0;
	case K_LISTEN_OPT: {
		struct sockaddr_in *a = (struct sockaddr_in *)((char *)c + s->off);

		memset(a, 0, sizeof(*a));
		if (!*v || !strcmp(v, "off"))
			return 0;
		if (netaddr_parse_endpoint4(v, a) || !a->sin_port)
			return bad(err, s, v, "an IPv4 address and port, e.g. 127.0.0.1:8081, or off");
		return 0;
	}
	case K_STUN: {
		char buf[1100], *save = NULL, *tok;

		if (strlen(v) >= sizeof(buf))
			return bad(err, s, v, "too long");
		snprintf(buf, sizeof(buf), "%s", v);
		c->n_stun = 0;
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (c->n_stun == CONFIG_MAX_STUN)
				return bad(err, s, v, "at most 4 servers");
			if (parse_hostport(tok))
				return bad(err, s, v, "each server as host:port");
			snprintf(c->stun_servers[c->n_stun++], sizeof(c->stun_servers[0]), "%s", tok);
		}
		if (!c->n_stun)
			return bad(err, s, v, "at least one server");
		return 0;
	}
	case K_LEVEL:
		lvl = log_level_parse(v);
		if (lvl < 0)
			return bad(err, s, v, "error, warn, info or debug");
		c->log_level = lvl;
		return 0;
	case K_BOOL:
		if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
			u = 1;
		else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !*v)
			u = 0;
		else
			return bad(err, s, v, "1/true/yes or 0/false/no");
		*(bool *)((char *)c + s->off) = u;
		return 0;
	case K_STR:
		if (strlen(v) > s->max || strlen(v) < s->min)
			return bad(err, s, v, strlen(v) < s->min ? "must not be empty" : "too long");
		snprintf((char *)c + s->off, s->max + 1, "%s", v);
		return 0;
	}
	return -EINVAL;
}

static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

int config_parse(struct config *c, int argc, char **argv, char **envp, FILE *out, FILE *err)
{
	struct option longopts[N_SETTINGS + 3];
	int opt, idx, ret;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		const char *v = env_get(envp, s->env);

		if (!v)
			v = s->def;
		if (v && (ret = apply(c, s, v, err)))
			return ret;
		longopts[i] = (struct option){ s->flag, s->kind == K_BOOL ? optional_argument : required_argument, NULL, (int)i };
	}
	longopts[N_SETTINGS] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[N_SETTINGS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[N_SETTINGS + 2] = (struct option){ 0 };
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", longopts, &idx)) != -1) {
		if (opt == 'h') {
			usage(out);
			return 1;
		}
		if (opt == 'V') {
			fprintf(out, "controld %s\n", VERSION);
			return 1;
		}
		if (opt == '?' || opt < 0 || (size_t)opt >= N_SETTINGS) {
			fprintf(err, "controld: unknown or incomplete option '%s' (see --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
		ret = apply(c, &settings[opt], optarg ? optarg : "1", err);
		if (ret)
			return ret;
	}
	if (optind < argc) {
		fprintf(err, "controld: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (c->registry[0]) {
		char addr[43], url[2048], why[128];

		if (c->gist_url[0]) {
			fprintf(err, "controld: GIST_URL and P2PWG_REGISTRY are both set: one list source only\n");
			return -EINVAL;
		}
		if (registry_spec_parse(c->registry, c->allow_http, addr, url, sizeof(url), why, sizeof(why)))
			return bad(err, setting_named("P2PWG_REGISTRY"), c->registry, why);
	} else if (!c->gist_url[0]) {
		fprintf(err, "controld: GIST_URL (--gist-url) or P2PWG_REGISTRY is required: where the peer list is\n");
		return -EINVAL;
	} else if (!valid_url(c->gist_url, c->allow_http))
		return bad(err, &settings[0], c->gist_url,
			   c->allow_http ? "an http(s):// URL without spaces" : "an https:// URL without spaces");
	if (c->self_url[0] && !valid_url(c->self_url, c->allow_http))
		return bad(err, setting_named("P2PWG_SELF_URL"), c->self_url, "an https:// URL");
	if (c->verifier_url[0] &&
	    (strncmp(c->verifier_url, "https://", 8) && strncmp(c->verifier_url, "http://", 7)))
		return bad(err, setting_named("P2PWG_VERIFIER_URL"), c->verifier_url, "an http(s):// URL");
	if (!hex_list(c->allow_app_ids))
		return bad(err, setting_named("P2PWG_ALLOW_APP_IDS"), c->allow_app_ids, "hex ids, comma separated");
	if (!hex_list(c->allow_compose_hashes))
		return bad(err, setting_named("P2PWG_ALLOW_COMPOSE_HASHES"), c->allow_compose_hashes,
			   "hex hashes, comma separated");
	if (c->verifier_url[0] && !c->allow_app_ids[0] && !c->allow_compose_hashes[0])
		return bad(err, setting_named("P2PWG_VERIFIER_URL"), c->verifier_url,
			   "needs P2PWG_ALLOW_APP_IDS or P2PWG_ALLOW_COMPOSE_HASHES (else any dstack app is a peer)");
	if (!c->verifier_url[0] && (c->allow_app_ids[0] || c->allow_compose_hashes[0]))
		return bad(err, setting_named(c->allow_app_ids[0] ? "P2PWG_ALLOW_APP_IDS" : "P2PWG_ALLOW_COMPOSE_HASHES"),
			   c->allow_app_ids[0] ? c->allow_app_ids : c->allow_compose_hashes,
			   "needs P2PWG_VERIFIER_URL to be checked");
	if ((uint64_t)c->base_offset >= ((uint64_t)1 << (32 - c->overlay_len)) - 1) {
		char v[16];

		snprintf(v, sizeof(v), "%u", c->base_offset);
		return bad(err, &settings[2], v, "leaves no address inside the overlay prefix");
	}
	return 0;
}

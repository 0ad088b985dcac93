// SPDX-License-Identifier: MIT
#include "status.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "b64.h"
#include "relay.h"

char *status_nodejson(struct node *n)
{
	struct nodeinfo_self s = { .self_index = -1, .wg_listen_port = n->listen_port };
	struct timeval tv;

	gettimeofday(&tv, NULL);
	s.updated_at = tv.tv_sec;
	if (n->have_key)
		memcpy(s.wg_pubkey, n->pubkey, 32);
	if (n->applied_valid && n->applied.found_self) {
		s.has_overlay = true;
		s.overlay_ip = n->applied.self_addr;
		s.self_index = (long)n->applied.self_index;
		if (n->applied.self_index < n->n)
			s.self_url = n->e[n->applied.self_index].url;
	}
	if (n->stun_have) {
		s.has_public = true;
		s.public_ip = n->stun_sum.public_ep.sin_addr;
		s.public_port = ntohs(n->stun_sum.public_ep.sin_port);
		s.nat = n->stun_sum.nat;
		s.mapping = n->stun_sum.mapping;
	}
	s.local = n->local;
	s.n_local = n->n_local;
	if (!n->have_key)
		return NULL; /* nothing to publish before the agent told us our key */
	return attest_publish(n->att, nodeinfo_format(&s));
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* The path to a configured peer: "relay" while WireGuard sends through the
 * relay; "lan" or "direct" when a check answered there; "direct" too while the
 * tunnel lives without one (WireGuard punched through on the published
 * endpoint); "none" when nothing works. */
static const char *peer_path(struct node *n, const struct node_entry *e, time_t now)
{
	struct sockaddr_in ep;
	enum pathcheck_kind k;

	if (relay_endpoint(n->relay, e->info.wg_pubkey, &ep))
		return "relay";
	k = pathcheck_choose(&n->pc, e->info.wg_pubkey, &ep);

	if (k == PATHCHECK_NONE && e->handshake && now - e->handshake <= PEERSET_STALE_S)
		k = PATHCHECK_DIRECT;
	return pathcheck_kind_name(k);
}

char *status_document(struct node *n)
{
	json_t *root = json_object(), *self = json_object(), *peers = json_array(), *list = json_object();
	char k[B64_KEY_LEN + 1], ip[INET_ADDRSTRLEN], ep[64], when[40];
	const struct mesh_peer **at;
	time_t now = time(NULL);
	char *out;

	json_object_set_new(self, "wg_pubkey", n->have_key ? json_string(b64_key_encode(n->pubkey, k)) : json_null());
	json_object_set_new(self, "agent", json_string(agentlink_is_up(n->agent) ? "connected" : "disconnected"));
	json_object_set_new(self, "backend", str_or_null(n->backend));
	json_object_set_new(self, "interface", str_or_null(n->ifname));
	json_object_set_new(self, "wg_listen_port", json_integer(n->listen_port));
	if (n->applied_valid && n->applied.found_self) {
		snprintf(ep, sizeof(ep), "%s/32", inet_ntoa(n->applied.self_addr));
		json_object_set_new(self, "overlay_ip", json_string(ep));
		json_object_set_new(self, "position", json_integer((json_int_t)n->applied.self_index));
	} else {
		json_object_set_new(self, "overlay_ip", json_null());
		json_object_set_new(self, "position", json_null());
	}
	if (n->stun_have) {
		snprintf(ep, sizeof(ep), "%s:%u", inet_ntoa(n->stun_sum.public_ep.sin_addr),
			 ntohs(n->stun_sum.public_ep.sin_port));
		json_object_set_new(self, "public_endpoint", json_string(ep));
		json_object_set_new(self, "nat", str_or_null(n->stun_sum.nat));
		json_object_set_new(self, "mapping", str_or_null(n->stun_sum.mapping));
		json_object_set_new(self, "stun_age_s", json_integer(now - n->stun_at));
	} else {
		json_object_set_new(self, "public_endpoint", json_null());
	}
	json_object_set_new(root, "node", self);
	json_object_set_new(list, "url", json_string(n->reg ? n->c->registry : n->c->gist_url));
	if (n->reg)
		json_object_set_new(list, "block", json_integer((json_int_t)registry_block(n->reg)));
	json_object_set_new(list, "entries", json_integer((json_int_t)n->n));
	json_object_set_new(list, "etag", str_or_null(n->etag));
	json_object_set_new(list, "error", str_or_null(n->list_error));
	json_object_set_new(list, "age_s", n->list_at ? json_integer(now - n->list_at) : json_null());
	json_object_set_new(root, "list", list);
	json_object_set_new(root, "attestation", attest_status(n->att));
	/* Each list position's applied peer, found once (not a search per entry). */
	at = calloc(n->n + 1, sizeof(*at));
	for (size_t j = 0; at && n->applied_valid && j < n->applied.n_peers; j++)
		if (n->applied.peers[j].index < n->n)
			at[n->applied.peers[j].index] = &n->applied.peers[j];
	for (size_t i = 0; i < n->n; i++) {
		struct node_entry *e = &n->e[i];
		json_t *p = json_object();
		const struct mesh_peer *mp = NULL;
		const char *state;
		bool relayed;

		if (at)
			mp = at[i];
		else /* out of memory: searched */
			for (size_t j = 0; n->applied_valid && j < n->applied.n_peers; j++)
				if (n->applied.peers[j].index == i)
					mp = &n->applied.peers[j];
		json_object_set_new(p, "position", json_integer((json_int_t)i));
		json_object_set_new(p, "url", str_or_null(e->url));
		json_object_set_new(p, "self", json_boolean(n->applied_valid && n->applied.found_self &&
							    n->applied.self_index == i));
		json_object_set_new(p, "wg_pubkey", e->known ? json_string(b64_key_encode(e->info.wg_pubkey, k)) : json_null());
		if (mp) {
			inet_ntop(AF_INET, &mp->overlay, ip, sizeof(ip));
			snprintf(ep, sizeof(ep), "%s/32", ip);
		}
		json_object_set_new(p, "overlay_ip", mp ? json_string(ep) : json_null());
		if (e->known && e->info.has_public)
			snprintf(ep, sizeof(ep), "%s:%u", inet_ntoa(e->info.public_ip), e->info.public_port);
		json_object_set_new(p, "published_endpoint", e->known && e->info.has_public ? json_string(ep) : json_null());
		json_object_set_new(p, "endpoint", mp && e->endpoint[0] ? json_string(e->endpoint) : json_null());
		json_object_set_new(p, "last_handshake", mp && e->handshake ? json_integer(e->handshake) : json_null());
		json_object_set_new(p, "handshake_age_s", mp && e->handshake ? json_integer(now - e->handshake) : json_null());
		json_object_set_new(p, "rx_bytes", json_integer(mp ? (json_int_t)e->rx : 0));
		json_object_set_new(p, "tx_bytes", json_integer(mp ? (json_int_t)e->tx : 0));
		json_object_set_new(p, "nat", e->known ? str_or_null(e->info.nat) : json_null());
		json_object_set_new(p, "fetch_error", str_or_null(e->error));
		json_object_set_new(p, "refused", str_or_null(e->url ? e->dropped : n->list->why[i]));
		if (e->test_at) {
			json_t *t = json_object();

			nodeinfo_time(e->test_at, 0, when, sizeof(when));
			json_object_set_new(t, "ok", json_boolean(e->test_ok));
			json_object_set_new(t, "at", json_string(when));
			json_object_set_new(t, "result", json_string(e->test_result));
			nodeinfo_time((long long)(e->test_since_us / 1000000),
				      (long)(e->test_since_us % 1000000), when, sizeof(when));
			json_object_set_new(t, "since", json_string(when));
			json_object_set_new(p, "test", t);
		} else {
			json_object_set_new(p, "test", json_null());
		}
		relayed = mp && e->known &&
			  relay_status_peer(n->relay, e->info.wg_pubkey, e->endpoint, p);
		if (!mp)
			state = n->applied_valid && n->applied.self_index == i && n->applied.found_self ? "self" : "not configured";
		else if (e->handshake && now - e->handshake <= PEERSET_STALE_S)
			state = relayed ? "relay" : "direct";
		else
			state = "down";
		json_object_set_new(p, "state", json_string(state));
		json_object_set_new(p, "path", mp ? json_string(peer_path(n, e, now)) : json_null());
		json_object_set_new(p, "local_endpoints",
				    json_integer(e->known ? (json_int_t)e->info.n_local : 0));
		json_array_append_new(peers, p);
	}
	free(at);
	json_object_set_new(root, "peers", peers);
	out = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	return out;
}

char *status_metrics(struct node *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	time_t now = time(NULL);
	size_t direct = 0, path[4] = { 0 };

	if (!f)
		return NULL;
	for (size_t i = 0; n->applied_valid && i < n->applied.n_peers; i++) {
		struct node_entry *e = node_entry_by_key(n, n->applied.peers[i].key);

		if (e && e->handshake && now - e->handshake <= PEERSET_STALE_S)
			direct++;
		if (e) {
			const char *k = peer_path(n, e, now);

			path[!strcmp(k, "relay") ? 3 : !strcmp(k, "lan") ? 2 : !strcmp(k, "direct") ? 1 : 0]++;
		}
	}
#define M(name, type, help, fmt, ...)                                                      \
	fprintf(f, "# HELP p2pwg_" name " " help "\n# TYPE p2pwg_" name " " type "\n"      \
		   "p2pwg_" name " " fmt "\n", __VA_ARGS__)
	M("up", "gauge", "1 while controld runs", "%d", 1);
	M("agent_connected", "gauge", "1 while wgagent answers", "%d", agentlink_is_up(n->agent) ? 1 : 0);
	M("list_entries", "gauge", "entries in the last good peer list", "%zu", n->n);
	M("peers_configured", "gauge", "peers handed to wgagent", "%zu", n->applied_valid ? n->applied.n_peers : 0);
	M("peers_direct", "gauge", "peers with a handshake in the last 180 s", "%zu", direct);
	M("self_found", "gauge", "1 once this node found itself in the list", "%d", n->applied_valid && n->applied.found_self ? 1 : 0);
	fprintf(f, "# HELP p2pwg_list_fetches_total peer list fetches by result\n"
		   "# TYPE p2pwg_list_fetches_total counter\n"
		   "p2pwg_list_fetches_total{result=\"ok\"} %llu\n"
		   "p2pwg_list_fetches_total{result=\"not_modified\"} %llu\n"
		   "p2pwg_list_fetches_total{result=\"failed\"} %llu\n",
		(unsigned long long)n->m_list_ok, (unsigned long long)n->m_list_304,
		(unsigned long long)n->m_list_fail);
	fprintf(f, "# HELP p2pwg_nodejson_fetches_total peer node.json fetches by result\n"
		   "# TYPE p2pwg_nodejson_fetches_total counter\n"
		   "p2pwg_nodejson_fetches_total{result=\"ok\"} %llu\n"
		   "p2pwg_nodejson_fetches_total{result=\"failed\"} %llu\n",
		(unsigned long long)n->m_node_ok, (unsigned long long)n->m_node_fail);
	M("connections_opened_total", "counter", "connections opened for fetches (HTTPS and /test); a kept one is reused",
	  "%lu", loop_connections_opened(n->l));
	M("setpeers_total", "counter", "peer sets applied by wgagent", "%llu", (unsigned long long)n->m_setpeers);
	M("setpeers_failed_total", "counter", "peer sets refused or failed", "%llu", (unsigned long long)n->m_setpeers_fail);
	M("stun_probes_total", "counter", "STUN probes", "%llu", (unsigned long long)n->m_stun);
	M("stun_probes_failed_total", "counter", "STUN probes without any answer", "%llu", (unsigned long long)n->m_stun_fail);
	M("tests_total", "counter", "/test probes over the overlay that answered", "%llu", (unsigned long long)n->m_test_ok);
	M("tests_failed_total", "counter", "/test probes over the overlay that failed", "%llu", (unsigned long long)n->m_test_fail);
	fprintf(f, "# HELP p2pwg_peers_path configured peers by the path they use\n"
		   "# TYPE p2pwg_peers_path gauge\n"
		   "p2pwg_peers_path{path=\"lan\"} %zu\n"
		   "p2pwg_peers_path{path=\"direct\"} %zu\n"
		   "p2pwg_peers_path{path=\"relay\"} %zu\n"
		   "p2pwg_peers_path{path=\"none\"} %zu\n",
		path[2], path[1], path[3], path[0]);
	fprintf(f, "# HELP p2pwg_path_checks_total connectivity checks of candidate paths by result\n"
		   "# TYPE p2pwg_path_checks_total counter\n"
		   "p2pwg_path_checks_total{result=\"answered\"} %llu\n"
		   "p2pwg_path_checks_total{result=\"unanswered\"} %llu\n",
		(unsigned long long)n->pc.m_answered, (unsigned long long)n->pc.m_unanswered);
	M("local_endpoints", "gauge", "local candidates this node publishes", "%zu", n->n_local);
	M("rx_bytes", "gauge", "bytes received over WireGuard, all peers", "%llu", (unsigned long long)n->rx_total);
	M("tx_bytes", "gauge", "bytes sent over WireGuard, all peers", "%llu", (unsigned long long)n->tx_total);
	fprintf(f, "# HELP p2pwg_peer_handshake_age_seconds seconds since the last handshake, per peer\n"
		   "# TYPE p2pwg_peer_handshake_age_seconds gauge\n");
	for (size_t i = 0; n->applied_valid && i < n->applied.n_peers; i++) {
		const struct mesh_peer *p = &n->applied.peers[i];
		struct node_entry *e = node_entry_by_key(n, p->key);

		if (e && e->handshake)
			fprintf(f, "p2pwg_peer_handshake_age_seconds{position=\"%zu\",overlay_ip=\"%s\"} %lld\n",
				p->index, inet_ntoa(p->overlay), (long long)(now - e->handshake));
	}
#undef M
	attest_metrics(n->att, f);
	relay_metrics(n->relay, f);
	fclose(f);
	return buf;
}

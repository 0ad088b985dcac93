// SPDX-License-Identifier: MIT
#include "stunprobe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stun.h"

#define STUN_TRIES 3
#define STUN_RTO_MS 500

/* How many answers report a's address (and, if with_port, its port too). */
static int votes(const struct stunprobe_server *s, int n, const struct sockaddr_in *a,
		 bool with_port)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		if (s[i].ok && s[i].mapped.sin_addr.s_addr == a->sin_addr.s_addr &&
		    (!with_port || s[i].mapped.sin_port == a->sin_port))
			v++;
	return v;
}

void stunprobe_classify(const struct stunprobe_server *s, int n, uint16_t listen_port,
			bool (*is_local)(const struct in_addr *), struct stunprobe_summary *out)
{
	const struct sockaddr_in *addr = NULL, *ep = NULL;
	int addr_votes = 0, ep_votes = 0;

	memset(out, 0, sizeof(*out));
	out->n_servers = n;
	for (int i = 0; i < n; i++)
		out->n_ok += s[i].ok;
	if (!out->n_ok)
		return;
	/* Even a symmetric NAT maps to one public address: a server that reports
	 * another one is wrong, and without a majority nobody can tell which. */
	for (int i = 0; i < n && !addr; i++)
		if (s[i].ok && 2 * votes(s, n, &s[i].mapped, false) > out->n_ok) {
			addr = &s[i].mapped;
			addr_votes = votes(s, n, addr, false);
		}
	if (!addr) {
		out->disagree = true;
		return;
	}
	/* Ports may legitimately differ (a new one per destination); an endpoint
	 * that most agree on is the mapping, the odd one out is outvoted. */
	for (int i = 0; i < n && !ep; i++)
		if (s[i].ok && s[i].mapped.sin_addr.s_addr == addr->sin_addr.s_addr &&
		    2 * votes(s, n, &s[i].mapped, true) > addr_votes) {
			ep = &s[i].mapped;
			ep_votes = votes(s, n, ep, true);
		}
	out->has_public = true;
	if (!ep) {
		out->public_ep = *addr;
		out->n_agree = addr_votes;
		out->mapping = "endpoint-dependent";
		out->nat = "symmetric";
		return;
	}
	out->public_ep = *ep;
	out->n_agree = ep_votes;
	if (addr_votes >= 2)
		out->mapping = "endpoint-independent";
	if (is_local && is_local(&ep->sin_addr) && ntohs(ep->sin_port) == listen_port)
		out->nat = "open";
	else if (ntohs(ep->sin_port) == listen_port)
		out->nat = "port-preserving";
	else
		out->nat = "port-remapping";
}

static bool local_address(const struct in_addr *a)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa) < 0)
		return false;
	for (i = ifa; i && !found; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a->s_addr)
			found = true;
	freeifaddrs(ifa);
	return found;
}

void stunprobe_init(struct stunprobe *p, struct loop *l, struct agentlink *agent,
		    const struct config *c, stunprobe_done done, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->l = l;
	p->agent = agent;
	p->done = done;
	p->arg = arg;
	p->n = c->n_stun;
	for (int i = 0; i < c->n_stun; i++) {
		struct stunprobe_server *s = &p->s[i];
		const char *colon = strrchr(c->stun_servers[i], ':'); /* config checked host:port */

		snprintf(s->name, sizeof(s->name), "%s", c->stun_servers[i]);
		snprintf(s->host, sizeof(s->host), "%.*s", (int)(colon - c->stun_servers[i]),
			 c->stun_servers[i]);
		s->owner = p;
		s->addr.sin_family = AF_INET;
		s->addr.sin_port = htons((uint16_t)atoi(colon + 1));
		s->numeric = s->resolved = inet_pton(AF_INET, s->host, &s->addr.sin_addr) == 1;
	}
}

/* Name the servers that disagree, once until what they say changes. */
static void report_disagreement(struct stunprobe *p, const struct stunprobe_summary *sum)
{
	char msg[sizeof(p->said)];
	size_t off = 0;

	msg[0] = '\0';
	for (int i = 0; i < p->n && off < sizeof(msg); i++) {
		const struct stunprobe_server *s = &p->s[i];
		bool agrees;

		if (!s->ok)
			continue;
		agrees = sum->has_public &&
			 s->mapped.sin_addr.s_addr == sum->public_ep.sin_addr.s_addr &&
			 (sum->disagree || !strcmp(sum->nat, "symmetric") ||
			  s->mapped.sin_port == sum->public_ep.sin_port);
		if (sum->disagree || !agrees)
			off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s says %s:%u",
						off ? ", " : "", s->name, inet_ntoa(s->mapped.sin_addr),
						ntohs(s->mapped.sin_port));
	}
	if (!msg[0] || !strcmp(msg, p->said)) {
		if (msg[0])
			log_debug("stun", "still: %s", msg);
		else
			p->said[0] = '\0';
		return;
	}
	snprintf(p->said, sizeof(p->said), "%s", msg);
	if (sum->disagree)
		log_warn("stun", "servers disagree on this node's public address (%s), which no NAT "
				 "explains; publishing none of them, keeping the last agreed endpoint",
			 msg);
	else
		log_warn("stun", "outvoted, ignored: %s (%d of %d answers agree on %s:%u)", msg,
			 sum->n_agree, sum->n_ok, inet_ntoa(sum->public_ep.sin_addr),
			 ntohs(sum->public_ep.sin_port));
}

static void finish_one(struct stunprobe *p)
{
	struct stunprobe_summary sum;

	if (--p->outstanding > 0)
		return;
	p->running = false;
	stunprobe_classify(p->s, p->n, p->listen_port, local_address, &sum);
	report_disagreement(p, &sum);
	p->done(p->arg, &sum);
}

static int send_attempt(struct stunprobe *p, struct stunprobe_server *s);

static void on_reply(void *arg, const P2pwg__Response *r, const char *error)
{
	struct stunprobe_server *s = arg;
	struct stunprobe *p = s->owner;
	struct sockaddr_storage mapped;
	int ret;

	if (r && r->status == P2PWG__STATUS__TIMEOUT && s->attempt + 1 < STUN_TRIES) {
		s->attempt++;
		if (send_attempt(p, s) == 0)
			return;
	}
	if (!r) {
		snprintf(s->error, sizeof(s->error), "%s", error);
	} else if (r->status != P2PWG__STATUS__OK || r->msg_case != P2PWG__RESPONSE__MSG_STUN) {
		snprintf(s->error, sizeof(s->error), "%s", r->status == P2PWG__STATUS__TIMEOUT ?
			 "no answer after 3 tries" : r->error);
	} else {
		ret = stun_parse_response(r->stun->response.data, r->stun->response.len, s->txid,
					  &mapped);
		if (ret == 0 && mapped.ss_family == AF_INET) {
			memcpy(&s->mapped, &mapped, sizeof(s->mapped));
			s->ok = true;
		} else {
			snprintf(s->error, sizeof(s->error), "bad response: %s",
				 ret ? strerror(-ret) : "IPv6 mapping");
		}
	}
	if (!s->ok)
		log_debug("stun", "%s: %s", s->name, s->error);
	s->done = true;
	finish_one(p);
}

static int send_attempt(struct stunprobe *p, struct stunprobe_server *s)
{
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__StunExchange se = P2PWG__STUN_EXCHANGE__INIT;
	P2pwg__Endpoint ep = P2PWG__ENDPOINT__INIT;
	uint32_t rto = STUN_RTO_MS << s->attempt;
	int ret;

	ep.addr.data = (uint8_t *)&s->addr.sin_addr;
	ep.addr.len = 4;
	ep.port = ntohs(s->addr.sin_port);
	se.server = &ep;
	se.request.data = s->req; /* a retransmission keeps its transaction id */
	se.request.len = sizeof(s->req);
	se.timeout_ms = rto;
	req.msg_case = P2PWG__REQUEST__MSG_STUN_EXCHANGE;
	req.stun_exchange = &se;
	ret = agentlink_call(p->agent, &req, rto + 2000, on_reply, s);
	if (ret)
		snprintf(s->error, sizeof(s->error), "agent: %s", strerror(-ret));
	return ret;
}

static void on_resolved(void *arg, const struct in_addr *a, const char *error)
{
	struct stunprobe_server *s = arg;
	struct stunprobe *p = s->owner;

	s->lookup_pending = false;
	if (a) {
		if (!s->resolved || s->addr.sin_addr.s_addr != a->s_addr)
			log_info("stun", "%s %sresolves to %s", s->name, s->resolved ? "now " : "",
				 inet_ntoa(*a));
		s->addr.sin_addr = *a;
		s->resolved = true;
		s->resolve_failed = false;
	} else if (!s->resolve_failed) {
		s->resolve_failed = true;
		if (s->resolved)
			log_warn("stun", "cannot resolve %s (%s); keeping %s", s->name, error,
				 inet_ntoa(s->addr.sin_addr));
		else
			log_warn("stun", "cannot resolve %s: %s", s->name, error);
	}
	if (!s->waiting)
		return;
	s->waiting = false;
	if (!s->resolved) {
		snprintf(s->error, sizeof(s->error), "cannot resolve: %s", error);
		s->done = true;
		finish_one(p);
	} else if (send_attempt(p, s)) {
		s->done = true;
		finish_one(p);
	}
}

/* Look s's name up again; true if this probe's request to s now waits for it
 * (first lookup), false if it goes to the address known already. */
static bool lookup(struct stunprobe *p, struct stunprobe_server *s)
{
	bool wait = !s->resolved;
	int ret;

	if (!p->res && (ret = resolver_new(p->l, &p->res)) < 0) {
		snprintf(s->error, sizeof(s->error), "no resolver: %s", strerror(-ret));
		return false;
	}
	s->lookup_pending = true;
	s->waiting = wait;
	if (wait)
		p->outstanding++;
	ret = resolver_lookup(p->res, s->host, on_resolved, s);
	if (ret) {
		snprintf(s->error, sizeof(s->error), "cannot resolve: %s", strerror(-ret));
		s->lookup_pending = false;
		if (wait)
			p->outstanding--;
		s->waiting = false;
		return false;
	}
	return wait; /* even if on_resolved already ran: it sent or gave up */
}

int stunprobe_start(struct stunprobe *p, uint16_t listen_port)
{
	if (p->running)
		return -EBUSY;
	if (!agentlink_is_up(p->agent))
		return -ENOTCONN;
	p->listen_port = listen_port;
	p->running = true;
	p->outstanding = 1; /* held until every send is issued */
	for (int i = 0; i < p->n; i++) {
		struct stunprobe_server *s = &p->s[i];

		s->attempt = 0;
		s->done = s->ok = false;
		s->error[0] = '\0';
		if (stun_build_request(s->req, sizeof(s->req), s->txid) < 0) {
			s->done = true;
			continue;
		}
		if (!s->numeric && !s->lookup_pending && lookup(p, s))
			continue; /* on_resolved sends */
		if (!s->resolved) {
			s->done = true;
			if (!s->error[0])
				snprintf(s->error, sizeof(s->error), "not resolved yet");
			log_debug("stun", "%s: %s", s->name, s->error);
			continue;
		}
		p->outstanding++;
		if (send_attempt(p, s)) {
			s->done = true;
			p->outstanding--;
		}
	}
	finish_one(p);
	return 0;
}

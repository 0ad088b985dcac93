// SPDX-License-Identifier: MIT
/*
 * p2pwg-agentctl: talk to a wgagent by hand or from tests. It is an ordinary
 * client of the agent protocol; the agent trusts nothing it sends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentclient.h"
#include "b64.h"
#include "netaddr.h"
#include "stun.h"

/* -T: how long the agent took to answer a set, for the benchmarks. */
static int show_time;

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: p2pwg-agentctl [-s SOCKET] [-t MS] COMMAND [ARGS]\n"
		"  hello                         protocol hello; prints the agent's public key\n"
		"  get                           print the interface and its peers\n"
		"  set [--address A/LEN] [--port N] [--peer SPEC]...\n"
		"                                send the whole desired state; SPEC is\n"
		"                                KEY[,endpoint=IP:PORT][,allowed=P[+P...]][,keepalive=N]\n"
		"  stun HOST:PORT                STUN Binding from the WireGuard port; prints the mapping\n"
		"  raw HEX                       send raw bytes as one packet, print the answer\n"
		"  garbage N                     send N random bytes as one packet, print the answer\n"
		"  stall N                       pipeline N GetDevice requests, never read the answers,\n"
		"                                wait (up to -t) for the agent to hang up\n"
		"  time CMD [ARGS]               run CMD (no agent needed), print its wall time (stderr);\n"
		"                                for benchmarks where no date +%%N is at hand (the VM)\n"
		"Options: -s socket (default %s), -t timeout in ms (default 5000),\n"
		"         -T print how long a set took the agent to answer (stderr)\n",
		AGENT_DEFAULT_SOCKET);
}

static void print_prefix(const P2pwg__Prefix *p)
{
	char ip[INET6_ADDRSTRLEN];

	if (p->addr.len == 4 || p->addr.len == 16)
		inet_ntop(p->addr.len == 4 ? AF_INET : AF_INET6, p->addr.data, ip, sizeof(ip));
	else
		snprintf(ip, sizeof(ip), "?");
	printf("%s/%u", ip, p->prefix_len);
}

static void print_device(const P2pwg__Device *d)
{
	char key[B64_KEY_LEN + 1] = "?", ip[INET6_ADDRSTRLEN];

	if (d->public_key.len == 32)
		b64_key_encode(d->public_key.data, key);
	printf("interface %s backend %s public_key %s listen_port %u address ", d->ifname, d->backend,
	       key, d->listen_port);
	if (d->address)
		print_prefix(d->address);
	else
		printf("none");
	printf("\n");
	for (size_t i = 0; i < d->n_peers; i++) {
		const P2pwg__Peer *p = d->peers[i];

		if (p->public_key.len == 32)
			b64_key_encode(p->public_key.data, key);
		printf("peer %s endpoint ", key);
		if (p->endpoint && (p->endpoint->addr.len == 4 || p->endpoint->addr.len == 16)) {
			inet_ntop(p->endpoint->addr.len == 4 ? AF_INET : AF_INET6, p->endpoint->addr.data,
				  ip, sizeof(ip));
			printf(p->endpoint->addr.len == 4 ? "%s:%u" : "[%s]:%u", ip, p->endpoint->port);
		} else {
			printf("none");
		}
		printf(" allowed ");
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			if (j)
				printf(",");
			print_prefix(p->allowed_ips[j]);
		}
		if (!p->n_allowed_ips)
			printf("none");
		printf(" handshake %lld rx %llu tx %llu keepalive %u\n",
		       (long long)p->last_handshake_sec, (unsigned long long)p->rx_bytes,
		       (unsigned long long)p->tx_bytes, p->keepalive);
	}
}

static int check(P2pwg__Response *r)
{
	if (r->status == P2PWG__STATUS__OK)
		return 0;
	printf("error: %s: %s\n", agentclient_status_name(r->status), r->error);
	return 1;
}

/* Storage for one --peer, kept alive until the request is packed. */
struct peer_spec {
	P2pwg__Peer peer;
	P2pwg__Endpoint ep;
	struct sockaddr_in sin;
	uint8_t key[32];
	P2pwg__Prefix aips[16];
	P2pwg__Prefix *aip_ptrs[16];
	struct in_addr aip_addr[16];
};

static int parse_peer(char *spec, struct peer_spec *ps)
{
	char *save = NULL, *tok = strtok_r(spec, ",", &save);

	p2pwg__peer__init(&ps->peer);
	if (!tok || b64_key_decode(tok, ps->key)) {
		fprintf(stderr, "p2pwg-agentctl: bad peer key in '%s'\n", spec);
		return -EINVAL;
	}
	ps->peer.public_key.data = ps->key;
	ps->peer.public_key.len = 32;
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (!strncmp(tok, "endpoint=", 9)) {
			if (netaddr_parse_endpoint4(tok + 9, &ps->sin)) {
				fprintf(stderr, "p2pwg-agentctl: bad endpoint '%s'\n", tok + 9);
				return -EINVAL;
			}
			p2pwg__endpoint__init(&ps->ep);
			ps->ep.addr.data = (uint8_t *)&ps->sin.sin_addr;
			ps->ep.addr.len = 4;
			ps->ep.port = ntohs(ps->sin.sin_port);
			ps->peer.endpoint = &ps->ep;
		} else if (!strncmp(tok, "allowed=", 8)) {
			char *s2 = NULL, *a;

			for (a = strtok_r(tok + 8, "+", &s2); a; a = strtok_r(NULL, "+", &s2)) {
				size_t n = ps->peer.n_allowed_ips;
				uint8_t len;

				if (n == 16 || netaddr_parse_prefix4(a, &ps->aip_addr[n], &len)) {
					fprintf(stderr, "p2pwg-agentctl: bad allowed IP '%s'\n", a);
					return -EINVAL;
				}
				p2pwg__prefix__init(&ps->aips[n]);
				ps->aips[n].addr.data = (uint8_t *)&ps->aip_addr[n];
				ps->aips[n].addr.len = 4;
				ps->aips[n].prefix_len = len;
				ps->aip_ptrs[n] = &ps->aips[n];
				ps->peer.n_allowed_ips++;
			}
			ps->peer.allowed_ips = ps->aip_ptrs;
		} else if (!strncmp(tok, "keepalive=", 10)) {
			ps->peer.keepalive = (uint32_t)strtoul(tok + 10, NULL, 10);
		} else {
			fprintf(stderr, "p2pwg-agentctl: unknown peer field '%s'\n", tok);
			return -EINVAL;
		}
	}
	return 0;
}

static int cmd_set(int fd, int argc, char **argv, int timeout, P2pwg__Request *req)
{
	static const struct option longopts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "peer", required_argument, NULL, 'P' },
		{ 0 },
	};
	P2pwg__SetPeers sp = P2PWG__SET_PEERS__INIT;
	P2pwg__Prefix addr = P2PWG__PREFIX__INIT;
	struct in_addr a;
	uint8_t len;
	struct peer_spec *specs = calloc((size_t)argc + 1, sizeof(*specs));
	P2pwg__Peer **ptrs = calloc((size_t)argc + 1, sizeof(*ptrs));
	P2pwg__Response *resp = NULL;
	double t0;
	int c, ret = 2;

	if (!specs || !ptrs)
		goto out;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (netaddr_parse_prefix4(optarg, &a, &len)) {
				fprintf(stderr, "p2pwg-agentctl: bad address '%s'\n", optarg);
				goto out;
			}
			addr.addr.data = (uint8_t *)&a;
			addr.addr.len = 4;
			addr.prefix_len = len;
			sp.address = &addr;
			break;
		case 'p':
			sp.listen_port = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'P':
			if (parse_peer(optarg, &specs[sp.n_peers]))
				goto out;
			ptrs[sp.n_peers] = &specs[sp.n_peers].peer;
			sp.n_peers++;
			break;
		default:
			goto out;
		}
	}
	sp.peers = ptrs;
	req->msg_case = P2PWG__REQUEST__MSG_SET_PEERS;
	req->set_peers = &sp;
	t0 = mono_ms();
	ret = agentclient_call(fd, req, timeout, &resp);
	if (show_time)
		fprintf(stderr, "set answered in %.3f ms\n", mono_ms() - t0);
	if (ret) {
		fprintf(stderr, "p2pwg-agentctl: %s\n", strerror(-ret));
		ret = 1;
		goto out;
	}
	ret = check(resp);
	if (!ret) {
		printf("changed %s\n", resp->changed ? "yes" : "no");
		if (resp->msg_case == P2PWG__RESPONSE__MSG_DEVICE)
			print_device(resp->device);
	}
out:
	agentclient_response_free(resp);
	free(specs);
	free(ptrs);
	return ret;
}

static int cmd_stun(int fd, const char *server, int timeout, P2pwg__Request *req)
{
	P2pwg__StunExchange se = P2PWG__STUN_EXCHANGE__INIT;
	P2pwg__Endpoint ep = P2PWG__ENDPOINT__INIT;
	struct sockaddr_in sin;
	struct sockaddr_storage mapped;
	uint8_t msg[STUN_HEADER_LEN], txid[STUN_TXID_LEN];
	char ip[INET6_ADDRSTRLEN];
	P2pwg__Response *resp = NULL;
	int ret;

	if (netaddr_parse_endpoint4(server, &sin)) {
		fprintf(stderr, "p2pwg-agentctl: bad server '%s' (want IP:PORT)\n", server);
		return 2;
	}
	if (stun_build_request(msg, sizeof(msg), txid) < 0)
		return 1;
	ep.addr.data = (uint8_t *)&sin.sin_addr;
	ep.addr.len = 4;
	ep.port = ntohs(sin.sin_port);
	se.server = &ep;
	se.request.data = msg;
	se.request.len = sizeof(msg);
	se.timeout_ms = (uint32_t)(timeout > 5000 ? 5000 : timeout);
	req->msg_case = P2PWG__REQUEST__MSG_STUN_EXCHANGE;
	req->stun_exchange = &se;
	ret = agentclient_call(fd, req, timeout + 1000, &resp);
	if (ret) {
		fprintf(stderr, "p2pwg-agentctl: %s\n", strerror(-ret));
		return 1;
	}
	ret = check(resp);
	if (!ret) {
		ret = resp->msg_case == P2PWG__RESPONSE__MSG_STUN
			      ? stun_parse_response(resp->stun->response.data, resp->stun->response.len,
						    txid, &mapped)
			      : -EBADMSG;
		if (ret) {
			printf("error: bad STUN response: %s\n", strerror(-ret));
			ret = 1;
		} else if (mapped.ss_family == AF_INET) {
			struct sockaddr_in *m = (struct sockaddr_in *)&mapped;

			inet_ntop(AF_INET, &m->sin_addr, ip, sizeof(ip));
			printf("mapped %s:%u\n", ip, ntohs(m->sin_port));
		} else {
			struct sockaddr_in6 *m = (struct sockaddr_in6 *)&mapped;

			inet_ntop(AF_INET6, &m->sin6_addr, ip, sizeof(ip));
			printf("mapped [%s]:%u\n", ip, ntohs(m->sin6_port));
		}
	}
	agentclient_response_free(resp);
	return ret;
}

static int cmd_raw(int fd, const uint8_t *buf, size_t len, int timeout)
{
	P2pwg__Response *resp = NULL;
	int big = (int)len * 2 + 65536, ret;

	/* Past the default socket buffer, root may force a larger one. */
	if (len > 100000)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	ret = agentclient_send_raw(fd, buf, len);

	if (ret) {
		printf("send: %s\n", strerror(-ret));
		return 1;
	}
	ret = agentclient_recv(fd, timeout, &resp);
	if (ret) {
		printf("no answer: %s\n", strerror(-ret));
		return 1;
	}
	printf("status %s id %llu error %s\n", agentclient_status_name(resp->status),
	       (unsigned long long)resp->id, resp->error);
	agentclient_response_free(resp);
	return 0;
}

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A client that never reads: the agent must drop it rather than wait for it. */
static int cmd_stall(int fd, unsigned long n, int timeout, P2pwg__Request *req)
{
	P2pwg__GetDevice get = P2PWG__GET_DEVICE__INIT;
	int64_t start = ms_now(), left;
	unsigned long sent = 0;
	uint8_t buf[64];
	size_t len;

	req->msg_case = P2PWG__REQUEST__MSG_GET_DEVICE;
	req->get_device = &get;
	len = p2pwg__request__pack(req, buf);
	while ((left = start + timeout - ms_now()) > 0) {
		struct pollfd pfd = { .fd = fd, .events = sent < n ? POLLOUT : POLLRDHUP };

		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		if (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR))
			break;
		if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno != EAGAIN)
				break;
			continue;
		}
		sent++;
	}
	if (left <= 0) {
		printf("sent %lu requests; still connected after %d ms\n", sent, timeout);
		return 1;
	}
	printf("sent %lu requests; the agent hung up after %lld ms\n", sent,
	       (long long)(ms_now() - start));
	return 0;
}

/* Run argv, wait for it; its exit status, and its wall time on stderr. */
static int cmd_time(char **argv)
{
	double t0 = mono_ms();
	pid_t pid = fork();
	int st;

	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0) {
		perror("waitpid");
		return 1;
	}
	fprintf(stderr, "%s ran in %.3f ms\n", argv[0], mono_ms() - t0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
	const char *sock = AGENT_DEFAULT_SOCKET;
	P2pwg__Request req = P2PWG__REQUEST__INIT;
	P2pwg__Hello hello = P2PWG__HELLO__INIT;
	P2pwg__GetDevice get = P2PWG__GET_DEVICE__INIT;
	P2pwg__Response *resp = NULL;
	int timeout = 5000, fd, c, ret;
	const char *cmd;

	while ((c = getopt(argc, argv, "+s:t:Th")) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'T':
			show_time = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (!strcmp(cmd, "time") && optind + 1 < argc)
		return cmd_time(argv + optind + 1);
	ret = agentclient_connect(sock, &fd);
	if (ret) {
		fprintf(stderr, "p2pwg-agentctl: cannot connect to %s: %s\n", sock, strerror(-ret));
		return 1;
	}
	req.id = (uint64_t)getpid();
	if (!strcmp(cmd, "hello") || !strcmp(cmd, "get")) {
		if (!strcmp(cmd, "hello")) {
			hello.version = P2PWG__PROTOCOL_VERSION__PROTOCOL_CURRENT;
			req.msg_case = P2PWG__REQUEST__MSG_HELLO;
			req.hello = &hello;
		} else {
			req.msg_case = P2PWG__REQUEST__MSG_GET_DEVICE;
			req.get_device = &get;
		}
		ret = agentclient_call(fd, &req, timeout, &resp);
		if (ret) {
			fprintf(stderr, "p2pwg-agentctl: %s\n", strerror(-ret));
			return 1;
		}
		ret = check(resp);
		if (!ret && resp->msg_case == P2PWG__RESPONSE__MSG_HELLO) {
			char key[B64_KEY_LEN + 1];

			printf("version %u public_key %s\n", resp->hello->version,
			       resp->hello->public_key.len == 32
				       ? b64_key_encode(resp->hello->public_key.data, key)
				       : "?");
			print_device(resp->hello->device);
		} else if (!ret) {
			print_device(resp->device);
		}
		agentclient_response_free(resp);
	} else if (!strcmp(cmd, "set")) {
		ret = cmd_set(fd, argc - optind, argv + optind, timeout, &req);
	} else if (!strcmp(cmd, "stun") && optind + 1 < argc) {
		ret = cmd_stun(fd, argv[optind + 1], timeout, &req);
	} else if (!strcmp(cmd, "raw") && optind + 1 < argc) {
		const char *hex = argv[optind + 1];
		size_t n = strlen(hex) / 2;
		uint8_t *buf = malloc(n + 1);

		for (size_t i = 0; i < n; i++) {
			unsigned v;

			sscanf(hex + 2 * i, "%2x", &v);
			buf[i] = (uint8_t)v;
		}
		ret = cmd_raw(fd, buf, n, timeout);
		free(buf);
	} else if (!strcmp(cmd, "garbage") && optind + 1 < argc) {
		size_t n = strtoul(argv[optind + 1], NULL, 10);
		uint8_t *buf = malloc(n + 1);

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(rand() & 0xff);
		ret = cmd_raw(fd, buf, n, timeout);
		free(buf);
	} else if (!strcmp(cmd, "stall") && optind + 1 < argc) {
		ret = cmd_stall(fd, strtoul(argv[optind + 1], NULL, 10), timeout, &req);
	} else {
		usage(stderr);
		ret = 2;
	}
	close(fd);
	return ret;
}

// SPDX-License-Identifier: MIT
#include "wguapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char sock_dir[108] = WGUAPI_DEFAULT_DIR;

void wguapi_set_dir(const char *dir)
{
	snprintf(sock_dir, sizeof(sock_dir), "%s", dir);
}

const char *wguapi_get_dir(void)
{
	return sock_dir;
}

int wguapi_sock_path(const char *ifname, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.sock", sock_dir, ifname);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static void put_hex(FILE *f, const char *key, const uint8_t *b, size_t n)
{
	fprintf(f, "%s=", key);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
	fputc('\n', f);
}

static void put_aip(FILE *f, const struct wg_allowedip *a)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(a->family, a->family == AF_INET ? (const void *)&a->ip4 : (const void *)&a->ip6,
		  ip, sizeof(ip));
	fprintf(f, "allowed_ip=%s/%u\n", ip, a->cidr);
}

/* "private_key=<hex>\n" into buf (at least 77 bytes); its length. */
static size_t key_line(char *buf, const uint8_t key[WG_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	memcpy(buf, "private_key=", 12);
	n = 12;
	for (int i = 0; i < WG_KEY_LEN; i++) {
		buf[n++] = hex[key[i] >> 4];
		buf[n++] = hex[key[i] & 15];
	}
	buf[n++] = '\n';
	return n;
}

int wguapi_encode_set(const struct wg_device *dev, char **out, size_t *len)
{
	char ep[INET6_ADDRSTRLEN + 10], key[80];
	char *body = NULL;
	size_t blen = 0, klen = 0;
	FILE *f = open_memstream(&body, &blen);

	if (!f)
		return -errno;
	/* The key never goes through the stream: its reallocations would leave
	 * copies in freed memory. It is placed into the exact-size result. */
	if (dev->flags & WGDEV_HAS_LISTEN_PORT)
		fprintf(f, "listen_port=%u\n", dev->listen_port);
	if (dev->flags & WGDEV_REPLACE_PEERS)
		fputs("replace_peers=true\n", f);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		put_hex(f, "public_key", p->public_key, WG_KEY_LEN);
		if (p->flags & WGPEER_REMOVE_ME) {
			fputs("remove=true\n", f);
			continue;
		}
		if (p->flags & WGPEER_UPDATE_ONLY)
			fputs("update_only=true\n", f);
		if (p->endpoint.sa.sa_family == AF_INET || p->endpoint.sa.sa_family == AF_INET6)
			fprintf(f, "endpoint=%s\n", wg_endpoint_str(&p->endpoint, ep, sizeof(ep)));
		if (p->flags & WGPEER_HAS_KEEPALIVE)
			fprintf(f, "persistent_keepalive_interval=%u\n", p->keepalive);
		if (p->flags & WGPEER_REPLACE_ALLOWEDIPS)
			fputs("replace_allowed_ips=true\n", f);
		for (size_t j = 0; j < p->n_allowedips; j++)
			put_aip(f, &p->allowedips[j]);
	}
	fputc('\n', f);
	if (fclose(f))
		return -ENOMEM;
	if (dev->flags & WGDEV_HAS_PRIVATE_KEY)
		klen = key_line(key, dev->private_key);
	*len = 6 + klen + blen;
	*out = malloc(*len + 1);
	if (*out) {
		memcpy(*out, "set=1\n", 6);
		memcpy(*out + 6, key, klen);
		memcpy(*out + 6 + klen, body, blen + 1);
	}
	explicit_bzero(key, sizeof(key));
	free(body);
	return *out ? 0 : -ENOMEM;
}

/* One lowercase hex digit (what wireguard-go writes), or -1. */
static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* By hand, not sscanf: a read of 245 peers holds ~500 keys, and sscanf per
 * byte was the largest part of the agent's time for it. */
static int parse_hex_key(const char *s, uint8_t key[WG_KEY_LEN])
{
	if (strlen(s) != 2 * WG_KEY_LEN)
		return -EBADMSG;
	for (int i = 0; i < WG_KEY_LEN; i++) {
		int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EBADMSG;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EBADMSG;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end || *out > max ? -EBADMSG : 0;
}

static int parse_endpoint(const char *s, union wg_endpoint *ep)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t hl;

	memset(ep, 0, sizeof(*ep));
	if (!colon || parse_u64(colon + 1, 65535, &port))
		return -EBADMSG;
	hl = colon - s;
	if (hl >= sizeof(host))
		return -EBADMSG;
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
		if (inet_pton(AF_INET6, host, &ep->sin6.sin6_addr) != 1)
			return -EBADMSG;
		ep->sin6.sin6_family = AF_INET6;
		ep->sin6.sin6_port = htons((uint16_t)port);
		return 0;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &ep->sin.sin_addr) != 1)
		return -EBADMSG;
	ep->sin.sin_family = AF_INET;
	ep->sin.sin_port = htons((uint16_t)port);
	return 0;
}

static int parse_aip(const char *s, struct wg_allowedip *a)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	uint64_t cidr;

	memset(a, 0, sizeof(*a));
	if (!slash || (size_t)(slash - s) >= sizeof(host))
		return -EBADMSG;
	memcpy(host, s, slash - s);
	host[slash - s] = '\0';
	if (inet_pton(AF_INET, host, &a->ip4) == 1) {
		a->family = AF_INET;
		if (parse_u64(slash + 1, 32, &cidr))
			return -EBADMSG;
	} else if (inet_pton(AF_INET6, host, &a->ip6) == 1) {
		a->family = AF_INET6;
		if (parse_u64(slash + 1, 128, &cidr))
			return -EBADMSG;
	} else {
		return -EBADMSG;
	}
	a->cidr = (uint8_t)cidr;
	return 0;
}

/* One "key=value" line of a get reply; peer is the peer being read, if any. */
static int parse_line(struct wg_device *dev, struct wg_peer **peer, char *key, char *val)
{
	struct wg_peer *p = *peer;
	struct wg_allowedip aip;
	uint64_t v;

	if (!strcmp(key, "private_key")) {
		dev->flags |= WGDEV_HAS_PRIVATE_KEY;
		return parse_hex_key(val, dev->private_key);
	}
	if (!strcmp(key, "listen_port")) {
		dev->flags |= WGDEV_HAS_LISTEN_PORT;
		if (parse_u64(val, 65535, &v))
			return -EBADMSG;
		dev->listen_port = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "public_key")) {
		p = wg_device_add_peer(dev);
		if (!p)
			return -ENOMEM;
		*peer = p;
		return parse_hex_key(val, p->public_key);
	}
	if (!p) /* fwmark and future device keys */
		return 0;
	if (!strcmp(key, "endpoint"))
		return parse_endpoint(val, &p->endpoint);
	if (!strcmp(key, "allowed_ip"))
		return parse_aip(val, &aip) ?: wg_peer_add_allowedip(p, &aip);
	if (!strcmp(key, "persistent_keepalive_interval")) {
		if (parse_u64(val, 65535, &v))
			return -EBADMSG;
		p->keepalive = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "last_handshake_time_sec")) {
		if (parse_u64(val, INT64_MAX, &v))
			return -EBADMSG;
		p->last_handshake.tv_sec = (time_t)v;
		return 0;
	}
	if (!strcmp(key, "last_handshake_time_nsec")) {
		if (parse_u64(val, 999999999, &v))
			return -EBADMSG;
		p->last_handshake.tv_nsec = (long)v;
		return 0;
	}
	if (!strcmp(key, "rx_bytes"))
		return parse_u64(val, UINT64_MAX, &p->rx_bytes);
	if (!strcmp(key, "tx_bytes"))
		return parse_u64(val, UINT64_MAX, &p->tx_bytes);
	return 0; /* preshared_key, protocol_version, ... */
}

int wguapi_parse_get(const char *text, size_t len, const char *ifname, struct wg_device **out)
{
	struct wg_device *dev = wg_device_new(ifname);
	struct wg_peer *peer = NULL;
	char *copy = NULL, *line, *save = NULL;
	int ret = -EBADMSG;
	bool seen_errno = false;

	if (!dev)
		return -ENOMEM;
	/* Not strndup: a NUL inside would make the copy shorter than the len
	 * bytes wiped at the end. */
	copy = malloc(len + 1);
	if (copy) {
		memcpy(copy, text, len);
		copy[len] = '\0';
	}
	if (!copy || strlen(copy) != len) {
		ret = copy ? -EBADMSG : -ENOMEM;
		goto out;
	}
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		uint64_t e;

		if (!eq || seen_errno) {
			ret = -EBADMSG;
			goto out;
		}
		*eq = '\0';
		if (!strcmp(line, "errno")) {
			if (parse_u64(eq + 1, 4095, &e))
				goto out;
			if (e) {
				ret = -(int)e;
				goto out;
			}
			seen_errno = true;
			continue;
		}
		ret = parse_line(dev, &peer, line, eq + 1);
		if (ret)
			goto out;
		ret = -EBADMSG;
	}
	if (!seen_errno)
		goto out;
	*out = dev;
	dev = NULL;
	ret = 0;
out:
	if (copy) {
		explicit_bzero(copy, len);
		free(copy);
	}
	wg_device_free(dev);
	return ret;
}

int wguapi_parse_errno(const char *text, size_t len)
{
	uint64_t e;
	char buf[32];

	if (len < 7 || len >= sizeof(buf) || strncmp(text, "errno=", 6))
		return -EBADMSG;
	memcpy(buf, text + 6, len - 6);
	buf[len - 6] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (parse_u64(buf, 4095, &e))
		return -EBADMSG;
	return -(int)e;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Send req, read until the blank line that ends a reply. *reply malloc'd. */
static int exchange(const char *ifname, const char *req, size_t req_len, char **reply,
		    size_t *reply_len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = WGUAPI_TIMEOUT_MS / 1000,
			      .tv_usec = WGUAPI_TIMEOUT_MS % 1000 * 1000 };
	uint64_t deadline = now_ms() + WGUAPI_TIMEOUT_MS;
	size_t cap = 4096, n = 0;
	char *buf = NULL;
	int fd, ret;

	if (wguapi_sock_path(ifname, sun.sun_path, sizeof(sun.sun_path)))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A stuck wireguard-go must not stall the agent: connect (a full backlog)
	 * and send are bounded by the socket timeouts, reads by poll. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		ret = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = errno == ENOENT || errno == ECONNREFUSED ? -ENODEV
		      : errno == EAGAIN			      ? -ETIMEDOUT
							      : -errno;
		goto out;
	}
	for (size_t off = 0; off < req_len;) {
		ssize_t w = send(fd, req + off, req_len - off, MSG_NOSIGNAL);

		if (w < 0) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		off += (size_t)w;
	}
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now;
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb;

			if (cap >= WGUAPI_MAX_REPLY) {
				ret = -EMSGSIZE;
				goto out;
			}
			/* Not realloc: the old block may hold the private key. */
			nb = malloc(cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			memcpy(nb, buf, n);
			explicit_bzero(buf, cap);
			free(buf);
			buf = nb;
			cap *= 2;
		}
		now = now_ms();
		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0) {
			ret = -ETIMEDOUT;
			goto out;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0) {
			ret = -errno;
			goto out;
		}
		n += (size_t)r;
		buf[n] = '\0';
		if (r == 0 || (n >= 2 && !strcmp(buf + n - 2, "\n\n")))
			break;
	}
	if (n < 2 || strcmp(buf + n - 2, "\n\n")) {
		ret = -EBADMSG;
		goto out;
	}
	*reply = buf;
	*reply_len = n - 1; /* keep one '\n', drop the terminating blank line */
	buf[n - 1] = '\0';
	buf = NULL;
	ret = 0;
out:
	if (buf) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	close(fd);
	return ret;
}

int wguapi_get_device(const char *ifname, struct wg_device **out)
{
	char *reply;
	size_t len;
	int ret = exchange(ifname, "get=1\n\n", 7, &reply, &len);

	if (ret)
		return ret;
	ret = wguapi_parse_get(reply, len, ifname, out);
	explicit_bzero(reply, len);
	free(reply);
	return ret;
}

int wguapi_set_device(const struct wg_device *dev)
{
	char *req = NULL, *reply = NULL;
	size_t req_len = 0, len = 0;
	int ret = wguapi_encode_set(dev, &req, &req_len);

	if (ret)
		return ret;
	ret = exchange(dev->name, req, req_len, &reply, &len);
	explicit_bzero(req, req_len);
	free(req);
	if (ret)
		return ret;
	ret = wguapi_parse_errno(reply, len);
	explicit_bzero(reply, len);
	free(reply);
	return ret;
}

static int be_get(struct wg_backend *be, const char *ifname, struct wg_device **out)
{
	return wguapi_get_device(ifname, out);
}

static int be_set(struct wg_backend *be, const struct wg_device *change)
{
	return wguapi_set_device(change);
}

struct wg_backend wguapi_backend = { .name = "userspace", .get = be_get, .set = be_set };

/* SPDX-License-Identifier: MIT */
/*
 * wgdev: the agent's in-memory model of one WireGuard interface.
 *
 * The same structure describes what a backend read (GET) and what a backend
 * should change (SET). For SET, flags say which fields are meant; peers are
 * a change list, exactly as WireGuard's netlink and UAPI understand them.
 */
#ifndef P2PWG_WGDEV_H
#define P2PWG_WGDEV_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define WG_KEY_LEN 32

struct wg_allowedip {
	uint16_t family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr ip4;
		struct in6_addr ip6;
	};
	uint8_t cidr;
};

enum {
	WGPEER_REMOVE_ME = 1U << 0,          /* SET: remove this peer */
	WGPEER_REPLACE_ALLOWEDIPS = 1U << 1, /* SET: allowed IPs replace the current ones */
	WGPEER_HAS_KEEPALIVE = 1U << 2,      /* SET: keepalive field is meant */
	WGPEER_UPDATE_ONLY = 1U << 3,        /* SET: do not create the peer */
};

union wg_endpoint {
	struct sockaddr sa; /* sa_family == 0 (AF_UNSPEC): no endpoint */
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct wg_peer {
	uint8_t public_key[WG_KEY_LEN];
	unsigned flags;
	union wg_endpoint endpoint;
	uint16_t keepalive;              /* seconds, 0 = off */
	struct timespec last_handshake;  /* GET only; 0 = never */
	uint64_t rx_bytes, tx_bytes;     /* GET only */
	struct wg_allowedip *allowedips; /* owned by the peer */
	size_t n_allowedips;
};

enum {
	WGDEV_HAS_PRIVATE_KEY = 1U << 0,
	WGDEV_HAS_PUBLIC_KEY = 1U << 1,
	WGDEV_HAS_LISTEN_PORT = 1U << 2,
	WGDEV_REPLACE_PEERS = 1U << 3, /* SET: peers replace all current peers */
};

struct wg_device {
	char name[IFNAMSIZ];
	uint32_t ifindex;
	unsigned flags;
	uint8_t private_key[WG_KEY_LEN];
	uint8_t public_key[WG_KEY_LEN];
	uint16_t listen_port;
	struct wg_peer *peers; /* owned by the device */
	size_t n_peers;
};

/* Allocate an empty device named ifname (truncated to IFNAMSIZ-1). NULL on ENOMEM. */
struct wg_device *wg_device_new(const char *ifname);

/* Append a zeroed peer to dev; returns it, or NULL on ENOMEM. Pointers to
 * earlier peers may move. */
struct wg_peer *wg_device_add_peer(struct wg_device *dev);

/* Append an allowed IP to peer. 0 or -ENOMEM. */
int wg_peer_add_allowedip(struct wg_peer *peer, const struct wg_allowedip *aip);

/* Find a peer by public key, or NULL. */
struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t key[WG_KEY_LEN]);

/* A deep copy of dev (its peers and their allowed IPs) in *out, freed by
 * wg_device_free. 0 or -ENOMEM. */
int wg_device_dup(const struct wg_device *dev, struct wg_device **out);

/* Free dev and everything it owns; wipes key material. Accepts NULL. */
void wg_device_free(struct wg_device *dev);

/* True if two endpoints are equal (family, address, port). */
bool wg_endpoint_equal(const union wg_endpoint *a, const union wg_endpoint *b);

/* Format an endpoint as "ip:port" or "[ip6]:port"; "(none)" when unset. */
const char *wg_endpoint_str(const union wg_endpoint *ep, char *buf, size_t len);

/*
 * A WireGuard backend: kernel generic netlink or wireguard-go's UAPI.
 * get() reads the whole device; set() applies a change list.
 * Both return 0 or a negative errno. known(), optional, tells a wrapper what
 * the caller knows the device holds after its last set() (dev is borrowed),
 * so it need not read it back.
 */
struct wg_backend {
	const char *name; /* "kernel" or "userspace" */
	int (*get)(struct wg_backend *be, const char *ifname, struct wg_device **out);
	int (*set)(struct wg_backend *be, const struct wg_device *change);
	void (*known)(struct wg_backend *be, const struct wg_device *dev);
	void *ctx;
};

#endif

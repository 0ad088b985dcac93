/* SPDX-License-Identifier: MIT */
/*
 * localep: this node's local candidates, the IPv4 addresses of its own
 * interfaces with the WireGuard port, published in node.json as
 * local_endpoints so that peers behind the same NAT can reach it over their
 * LAN. Read with SIOCGIFCONF on an AF_INET socket, which needs no privilege
 * and no netlink socket (the systemd unit allows AF_UNIX and AF_INET only).
 */
#ifndef P2PWG_LOCALEP_H
#define P2PWG_LOCALEP_H

#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh.h"

/* One IPv4 address of an interface. */
struct localep_if {
	char name[IFNAMSIZ];
	unsigned flags; /* IFF_* */
	struct in_addr addr;
};

/* Pick from ifs[0..n) at most max endpoints into out, in order: addresses of
 * interfaces that are up, not loopback, not skip_if (the WireGuard
 * interface), not inside the overlay and not 0/8, link-local, multicast or
 * reserved, each with port; a repeated address once. Returns the count. */
size_t localep_pick(const struct localep_if *ifs, size_t n, const char *skip_if,
		    const struct mesh_params *p, uint16_t port, struct sockaddr_in *out,
		    size_t max);

/* localep_pick over the system's interfaces now. 0 or -errno. */
int localep_list(const char *skip_if, const struct mesh_params *p, uint16_t port,
		 struct sockaddr_in *out, size_t max, size_t *n);

#endif

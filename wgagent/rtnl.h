/* SPDX-License-Identifier: MIT */
/*
 * rtnl: links and addresses through rtnetlink (libmnl). All calls act in the
 * caller's network namespace and return 0 or a negative errno.
 */
#ifndef P2PWG_RTNL_H
#define P2PWG_RTNL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Interface index of ifname in *index; -ENODEV if it does not exist. */
int rtnl_link_index(const char *ifname, uint32_t *index);

/* Link kind (IFLA_INFO_KIND, e.g. "wireguard", "tun") of ifname into kind;
 * "" if the link has none. -ENODEV if it does not exist. */
int rtnl_link_kind(const char *ifname, char *kind, size_t len);

/* Create a kernel WireGuard link. -EOPNOTSUPP (or the kernel's errno) when the
 * kernel has no WireGuard; -EEXIST if the name is taken. */
int rtnl_link_add_wireguard(const char *ifname);

/* Delete a link by name. */
int rtnl_link_del(const char *ifname);

/* Set MTU (0 = leave) and bring the link up. No change if already so. */
int rtnl_link_up(uint32_t ifindex, unsigned mtu);

/* The first IPv4 address on ifindex into *addr and *prefix; -ENOENT if none. */
int rtnl_addr_get4(uint32_t ifindex, struct in_addr *addr, uint8_t *prefix);

/* Make addr/prefix the only IPv4 address of ifindex: other IPv4 addresses are
 * removed, the wanted one added if missing (an existing one is not touched). */
int rtnl_addr_set4(uint32_t ifindex, const struct in_addr *addr, uint8_t prefix);

/* Remove every IPv4 address of ifindex. */
int rtnl_addr_flush4(uint32_t ifindex);

#endif

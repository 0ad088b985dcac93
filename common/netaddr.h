/* SPDX-License-Identifier: MIT */
/* netaddr: small IPv4 helpers shared by the daemons and tools. */
#ifndef P2PWG_NETADDR_H
#define P2PWG_NETADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* Parse "a.b.c.d/len" (len 0..32). 0 or -EINVAL. */
int netaddr_parse_prefix4(const char *s, struct in_addr *addr, uint8_t *len);

/* Parse "a.b.c.d:port" (port 1..65535) into sin. 0 or -EINVAL. */
int netaddr_parse_endpoint4(const char *s, struct sockaddr_in *sin);

/* True if addr/len lies entirely inside net/net_len. */
bool netaddr_prefix4_inside(struct in_addr addr, uint8_t len, struct in_addr net, uint8_t net_len);

/* Network mask for a prefix length, in network byte order. */
uint32_t netaddr_mask4(uint8_t len);

#endif

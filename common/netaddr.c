// SPDX-License-Identifier: MIT
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || *end || *out > max)
		return -EINVAL;
	return 0;
}

int netaddr_parse_prefix4(const char *s, struct in_addr *addr, uint8_t *len)
{
	char buf[INET_ADDRSTRLEN + 4];
	const char *slash = strchr(s, '/');
	unsigned long l;

	if (!slash || (size_t)(slash - s) >= INET_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, slash - s);
	buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1 || parse_uint(slash + 1, 32, &l))
		return -EINVAL;
	*len = (uint8_t)l;
	return 0;
}

int netaddr_parse_endpoint4(const char *s, struct sockaddr_in *sin)
{
	char buf[INET_ADDRSTRLEN + 8];
	const char *colon = strrchr(s, ':');
	unsigned long port;

	if (!colon || (size_t)(colon - s) >= INET_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, colon - s);
	buf[colon - s] = '\0';
	memset(sin, 0, sizeof(*sin));
	if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1 || parse_uint(colon + 1, 65535, &port) ||
	    port == 0)
		return -EINVAL;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	return 0;
}

uint32_t netaddr_mask4(uint8_t len)
{
	return len == 0 ? 0 : htonl(~0U << (32 - len));
}

bool netaddr_prefix4_inside(struct in_addr addr, uint8_t len, struct in_addr net, uint8_t net_len)
{
	if (len > 32 || net_len > 32 || len < net_len)
		return false;
	return (addr.s_addr & netaddr_mask4(net_len)) == (net.s_addr & netaddr_mask4(net_len));
}

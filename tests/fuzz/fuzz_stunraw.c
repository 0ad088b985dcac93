// SPDX-License-Identifier: MIT
/* The raw-socket packet reader: IPv4 header (with options) and UDP header. */
#include <stdint.h>

#include "stunraw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *payload;
	struct sockaddr_in from;
	size_t len;

	if (stunraw_parse_ipv4(data, size, 51820, &payload, &len, &from) == 0 &&
	    (payload < data || payload + len > data + size))
		__builtin_trap();
	return 0;
}

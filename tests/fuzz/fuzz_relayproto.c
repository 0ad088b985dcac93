// SPDX-License-Identifier: MIT
/* Every parser of relay input, on bytes any client of the public port (or a
 * gateway, or whoever answers a dial) may send: the upgrade answer, then
 * frames one after another as relay.c reads them, HELLO payloads included. */
#include <stdint.h>
#include <string.h>

#include "relayproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relayproto_frame f;
	struct relayproto_hello h;
	size_t used = 0;
	int status;

	if (relayproto_upgrade_response(data, size, &used, &status) == 1) {
		data += used;
		size -= used;
	}
	while (relayproto_parse(data, size, &f, &used) == 1) {
		if (used > size || f.payload + f.len != data + used)
			__builtin_trap();
		if (f.type == RELAYPROTO_HELLO)
			relayproto_hello_parse(&f, &h);
		data += used;
		size -= used;
	}
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The guest agent's answers (/Info, /GetQuote; /GetKey for p2pwg-dstack-key)
 * as they are parsed. The first byte picks the parser. What is accepted must
 * hold what the caps say.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guestagent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guestagent_info gi;
	struct guestagent_quote q;
	char why[256];
	uint8_t key[32];

	if (size < 1)
		return 0;
	if (data[0] & 2) {
		guestagent_parse_key((const char *)data + 1, size - 1, key, why, sizeof(why));
		return 0;
	}
	if (data[0] & 1) {
		if (!guestagent_parse_info((const char *)data + 1, size - 1, &gi, why,
					   sizeof(why)) &&
		    (!gi.app_id[0] || strlen(gi.app_id) > GUESTAGENT_ID_MAX))
			__builtin_trap();
		return 0;
	}
	if (guestagent_parse_quote((const char *)data + 1, size - 1, &q, why, sizeof(why)))
		return 0;
	if (!q.quote || strlen(q.quote) > GUESTAGENT_QUOTE_MAX || strlen(q.quote) % 2 ||
	    strlen(q.event_log) > GUESTAGENT_EVENTLOG_MAX ||
	    strlen(q.vm_config) > GUESTAGENT_VMCONFIG_MAX)
		__builtin_trap();
	guestagent_quote_free(&q);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * The "attestation" field of a peer's node.json. An accepted one must make a
 * /verify request that carries its quote, event log and VM config unchanged.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_doc d;
	char why[PEERSET_WHY], *req;
	json_t *o;

	if (attest_parse_doc((const char *)data, size, &d, why, sizeof(why)))
		return 0;
	req = attest_verify_request(&d);
	o = req ? json_loads(req, 0, NULL) : NULL;
	if (!o || strcmp(json_string_value(json_object_get(o, "quote")), d.quote) ||
	    strcmp(json_string_value(json_object_get(o, "event_log")), d.event_log) ||
	    strcmp(json_string_value(json_object_get(o, "vm_config")), d.vm_config))
		__builtin_trap();
	json_decref(o);
	free(req);
	attest_doc_free(&d);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * attest's parsers of outside input; the first byte picks one.
 *  - even: the "attestation" field of a peer's node.json. An accepted one must
 *    make a /verify request carrying its quote, event log and VM config
 *    unchanged.
 *  - odd: dstack-verifier's /verify answer. An accepted verdict then goes
 *    through the admission policy, which must not misbehave either.
 * (One harness for both keeps CI's fuzzing time.)
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"

static void doc(const char *data, size_t size)
{
	struct attest_doc d;
	char why[PEERSET_WHY], *req;
	json_t *o;

	if (attest_parse_doc(data, size, &d, why, sizeof(why)))
		return;
	req = attest_verify_request(&d);
	o = req ? json_loads(req, 0, NULL) : NULL;
	if (!o || strcmp(json_string_value(json_object_get(o, "quote")), d.quote) ||
	    strcmp(json_string_value(json_object_get(o, "event_log")), d.event_log) ||
	    strcmp(json_string_value(json_object_get(o, "vm_config")), d.vm_config))
		__builtin_trap();
	json_decref(o);
	free(req);
	attest_doc_free(&d);
}

static void verdict(const char *data, size_t size)
{
	struct attest_verdict v;
	struct attest_doc d = {.updated_at = "2026-11-28T18:00:00Z", .at = 1795888800};
	struct attest_rules r = {.max_age_s = 600, .app_ids = "a1,b2", .compose_hashes = "c3"};
	uint8_t key[32] = {1};
	char why[PEERSET_WHY];

	if (attest_parse_verdict(data, size, &v, why, sizeof(why)))
		return;
	if (strlen(v.reason) >= sizeof(v.reason) || strlen(v.app_id) > GUESTAGENT_ID_MAX)
		__builtin_trap();
	attest_check(&r, key, &d, &v, 1795888900, why, sizeof(why));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		verdict((const char *)data + 1, size - 1);
	else
		doc((const char *)data + 1, size - 1);
	return 0;
}

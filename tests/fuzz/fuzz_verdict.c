// SPDX-License-Identifier: MIT
/*
 * dstack-verifier's /verify answer as controld parses it; an accepted verdict
 * then goes through the admission policy, which must not misbehave either.
 */
#include <stdint.h>
#include <string.h>

#include "attest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_verdict v;
	struct attest_doc d = {.updated_at = "2026-11-28T18:00:00Z", .at = 1795888800};
	struct attest_rules r = {.max_age_s = 600, .app_ids = "a1,b2", .compose_hashes = "c3"};
	uint8_t key[32] = {1};
	char why[PEERSET_WHY];

	if (attest_parse_verdict((const char *)data, size, &v, why, sizeof(why)))
		return 0;
	if (strlen(v.reason) >= sizeof(v.reason) || strlen(v.app_id) > GUESTAGENT_ID_MAX)
		__builtin_trap();
	attest_check(&r, key, &d, &v, 1795888900, why, sizeof(why));
	return 0;
}

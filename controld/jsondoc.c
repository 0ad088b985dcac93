// SPDX-License-Identifier: MIT
#include "jsondoc.h"

#include "reason.h"

json_t *jsondoc_load(const char *buf, size_t len, size_t max, char *why, size_t whylen)
{
	json_error_t err;
	json_t *root;

	if (len > max) {
		reason_set(why, whylen, "%zu bytes, at most %zu", len, max);
		return NULL;
	}
	if (len == 0) {
		reason_set(why, whylen, "not JSON: empty document");
		return NULL;
	}
	root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
	if (!root)
		reason_set(why, whylen, "not JSON: %s at line %d column %d", err.text, err.line,
			   err.column);
	return root;
}

// SPDX-License-Identifier: MIT
/* The /test request matcher, on bytes any overlay peer may send. */
#include <stdint.h>
#include <string.h>

#include "testsrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[TESTSRV_MAX_REQUEST];
	char out[512];
	struct in_addr ip = { 0 };
	struct timeval now = { 0 };

	if (size > sizeof(buf))
		size = sizeof(buf);
	memcpy(buf, data, size);
	enum testsrv_verdict v = testsrv_classify(buf, size);
	if (v != TESTSRV_NEED_MORE)
		testsrv_response(v, &ip, &now, testsrv_keep_alive(buf, size), out, sizeof(out));
	return 0;
}

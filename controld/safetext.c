// SPDX-License-Identifier: MIT
#include "safetext.h"

#include <string.h>

char *safetext_copy(char *dst, size_t cap, const char *src, size_t len)
{
	size_t n = 0;

	if (!cap)
		return dst;
	for (; n + 1 < cap && n < len && src[n]; n++)
		dst[n] = (src[n] >= 0x20 && src[n] <= 0x7e) ? src[n] : '?';
	dst[n] = '\0';
	if (n < len && src[n] && cap >= 4)
		memcpy(dst + cap - 4, "...", 4);
	return dst;
}

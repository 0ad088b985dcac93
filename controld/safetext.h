/* SPDX-License-Identifier: MIT */
/*
 * safetext: make a string some peer or server chose safe to log or publish.
 * Terminal escape sequences, control characters and bytes outside printable
 * ASCII never reach a log line or /status.
 */
#ifndef P2PWG_SAFETEXT_H
#define P2PWG_SAFETEXT_H

#include <stddef.h>

#define SAFETEXT_MAX 160 /* what one peer may put in one log line */

/* Copy at most len bytes of src (up to a NUL) into dst of cap bytes (cap >= 1),
 * each byte outside 0x20..0x7e as '?', cut at cap - 1 (with "..." when cut).
 * dst may be src (cleans in place). Returns dst. */
char *safetext_copy(char *dst, size_t cap, const char *src, size_t len);

#endif

/* SPDX-License-Identifier: MIT */
/* reason: one-line refusal reasons for parsers of outside input. */
#ifndef P2PWG_REASON_H
#define P2PWG_REASON_H

#include <stddef.h>

/* Format a reason into why (if given); control characters become '?', so
 * text quoted from a peer cannot forge log lines. Always returns -EINVAL. */
int reason_set(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

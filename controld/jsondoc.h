/* SPDX-License-Identifier: MIT */
/* jsondoc: load one JSON document that came from the network, size-capped. */
#ifndef P2PWG_JSONDOC_H
#define P2PWG_JSONDOC_H

#include <jansson.h>
#include <stddef.h>

/* Parse len bytes of buf (duplicate keys refused). NULL, with a one-line
 * reason in why, if it is empty, larger than max bytes, or not JSON. The
 * caller json_decref()s the result. */
json_t *jsondoc_load(const char *buf, size_t len, size_t max, char *why, size_t whylen);

#endif

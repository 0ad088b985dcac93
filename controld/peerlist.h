/* SPDX-License-Identifier: MIT */
/*
 * peerlist: the peer list document (the "Gist"): a JSON array of node.json
 * URLs, or an object {"peers": [...]}. Parsed with jansson; anything doubtful
 * is refused as a whole, so the caller keeps its last good list.
 */
#ifndef P2PWG_PEERLIST_H
#define P2PWG_PEERLIST_H

#include <stdbool.h>
#include <stddef.h>

#define PEERLIST_MAX_PEERS 245
#define PEERLIST_MAX_BYTES (256 * 1024)
#define PEERLIST_MAX_URL 2048

struct peerlist {
	char **urls; /* owned; in list order (order gives overlay addresses) */
	size_t n;
};

/*
 * Parse len bytes of buf. Refused (-EINVAL, with a one-line reason in why):
 * not JSON; neither an array nor an object with a "peers" array; an entry that
 * is not a string; an empty or over-long URL, one with spaces or control
 * characters; a URL that is not https:// (http:// too when allow_http); the
 * same URL twice; more than PEERLIST_MAX_PEERS entries; more than
 * PEERLIST_MAX_BYTES. An empty list is valid. 0, -EINVAL or -ENOMEM.
 * Details: reasons number entries from 0, as list positions ("entry 3 is not a
 * string"); the scheme is matched in lower case and must be followed by a host;
 * other keys beside "peers" are ignored; duplicate object keys are refused.
 * On refusal *out is NULL; why may be NULL.
 */
int peerlist_parse(const char *buf, size_t len, bool allow_http, struct peerlist **out,
		   char *why, size_t whylen);

/* True if both lists hold the same URLs in the same order. */
bool peerlist_equal(const struct peerlist *a, const struct peerlist *b);

/* Free a list; accepts NULL. */
void peerlist_free(struct peerlist *l);

#endif

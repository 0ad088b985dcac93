/* SPDX-License-Identifier: MIT */
/*
 * peerlist: the peer list document (the "Gist"): a JSON array of node.json
 * URLs, or an object {"peers": [...]}. Parsed with jansson. A document that is
 * not such a list is refused whole (the caller keeps its last good list); one
 * bad entry is skipped alone and keeps its position, as the prototype does, so
 * every node gives every URL the same address.
 */
#ifndef P2PWG_PEERLIST_H
#define P2PWG_PEERLIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PEERLIST_MAX_PEERS 245
#define PEERLIST_MAX_BYTES (256 * 1024)
#define PEERLIST_MAX_URL 2048

struct peerlist {
	char **urls; /* owned; in list order (order gives overlay addresses); NULL: skipped */
	char **why;  /* owned; why[i] says why urls[i] is NULL, else NULL */
	size_t n;
};

/*
 * Parse len bytes of buf. Refused whole (-EINVAL, with a one-line reason in
 * why): not JSON; neither an array nor an object with a "peers" array; more
 * than PEERLIST_MAX_PEERS entries; more than PEERLIST_MAX_BYTES. Skipped alone
 * (urls[i] NULL, why[i] says why, e.g. "not a string"): an entry that is not
 * a string; an empty or over-long URL, one with spaces, control characters or
 * bytes outside ASCII; a URL that is not https:// (http:// too when
 * allow_http); a URL seen at an earlier position. An empty list is valid.
 * 0, -EINVAL or -ENOMEM. Details: the scheme is matched in lower case and must
 * be followed by a host; other keys beside "peers" are ignored; duplicate
 * object keys are refused. On refusal *out is NULL; why may be NULL.
 */
int peerlist_parse(const char *buf, size_t len, bool allow_http, struct peerlist **out,
		   char *why, size_t whylen);

/* The same rules for a list another source read (the registry): arr, a JSON
 * array of entries, is checked as the "peers" array of a document would be. */
int peerlist_from_array(const json_t *arr, bool allow_http, struct peerlist **out, char *why,
			size_t whylen);

/* True if both lists hold the same URLs (and skipped slots) in the same order. */
bool peerlist_equal(const struct peerlist *a, const struct peerlist *b);

/* Free a list; accepts NULL. */
void peerlist_free(struct peerlist *l);

#endif

// SPDX-License-Identifier: MIT
#include "peerlist.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsondoc.h"
#include "reason.h"


/* Check one URL; a reason for entry i on refusal. */
static int check_url(const char *s, size_t len, size_t i, bool allow_http, char *why,
		     size_t whylen)
{
	size_t scheme;

	if (len == 0)
		return reason_set(why, whylen, "entry %zu: empty URL", i);
	if (len > PEERLIST_MAX_URL)
		return reason_set(why, whylen, "entry %zu: URL of %zu bytes, at most %d", i, len,
			      PEERLIST_MAX_URL);
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] <= 0x20 || s[k] == 0x7f)
			return reason_set(why, whylen,
				      "entry %zu: URL contains a space or control character", i);
	if (!strncmp(s, "https://", 8))
		scheme = 8;
	else if (allow_http && !strncmp(s, "http://", 7))
		scheme = 7;
	else
		return reason_set(why, whylen, "entry %zu: URL must start with %s", i,
			      allow_http ? "https:// or http://" : "https://");
	if (len == scheme || s[scheme] == '/')
		return reason_set(why, whylen, "entry %zu: URL has no host", i);
	return 0;
}

int peerlist_parse(const char *buf, size_t len, bool allow_http, struct peerlist **out,
		   char *why, size_t whylen)
{
	struct peerlist *l = NULL;
	json_t *root, *arr;
	size_t n;
	int ret = -EINVAL;

	*out = NULL;
	root = jsondoc_load(buf, len, PEERLIST_MAX_BYTES, why, whylen);
	if (!root)
		return -EINVAL;
	if (json_is_array(root)) {
		arr = root;
	} else if (json_is_object(root)) {
		arr = json_object_get(root, "peers");
		if (!arr) {
			reason_set(why, whylen, "object has no \"peers\" key");
			goto out;
		}
		if (!json_is_array(arr)) {
			reason_set(why, whylen, "\"peers\" is not an array");
			goto out;
		}
	} else {
		reason_set(why, whylen, "not an array nor an object with a \"peers\" array");
		goto out;
	}

	n = json_array_size(arr);
	if (n > PEERLIST_MAX_PEERS) {
		reason_set(why, whylen, "%zu entries, at most %d", n, PEERLIST_MAX_PEERS);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);

		if (!json_is_string(e)) {
			reason_set(why, whylen, "entry %zu is not a string", i);
			goto out;
		}
		if (check_url(json_string_value(e), json_string_length(e), i, allow_http, why,
			      whylen))
			goto out;
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_array_get(arr, j), e)) {
				reason_set(why, whylen, "duplicate URL at entries %zu and %zu", j, i);
				goto out;
			}
	}

	ret = -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto out;
	l->urls = calloc(n ? n : 1, sizeof(*l->urls));
	if (!l->urls)
		goto out;
	for (size_t i = 0; i < n; i++) {
		l->urls[i] = strdup(json_string_value(json_array_get(arr, i)));
		if (!l->urls[i])
			goto out;
		l->n = i + 1;
	}
	*out = l;
	l = NULL;
	ret = 0;
out:
	if (ret == -ENOMEM)
		reason_set(why, whylen, "out of memory");
	peerlist_free(l);
	json_decref(root);
	return ret;
}

bool peerlist_equal(const struct peerlist *a, const struct peerlist *b)
{
	if (!a || !b)
		return a == b;
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->urls[i], b->urls[i]))
			return false;
	return true;
}

void peerlist_free(struct peerlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->urls[i]);
	free(l->urls);
	free(l);
}

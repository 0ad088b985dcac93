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


/* Check one entry; a reason on refusal. */
static int check_entry(const json_t *arr, size_t i, bool allow_http, char *why, size_t whylen)
{
	const json_t *e = json_array_get(arr, i);
	const char *s = json_string_value(e);
	size_t len = json_string_length(e), scheme;

	if (!json_is_string(e))
		return reason_set(why, whylen, "not a string");
	if (len == 0)
		return reason_set(why, whylen, "empty URL");
	if (len > PEERLIST_MAX_URL)
		return reason_set(why, whylen, "URL of %zu bytes, at most %d", len,
				  PEERLIST_MAX_URL);
	/* Printable ASCII only: URLs go to logs and /status as they are. */
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] <= 0x20 || (unsigned char)s[k] >= 0x7f)
			return reason_set(why, whylen,
					  "URL contains a space, control character or non-ASCII byte");
	if (!strncmp(s, "https://", 8))
		scheme = 8;
	else if (allow_http && !strncmp(s, "http://", 7))
		scheme = 7;
	else
		return reason_set(why, whylen, "URL must start with %s",
				  allow_http ? "https:// or http://" : "https://");
	if (len == scheme || s[scheme] == '/')
		return reason_set(why, whylen, "URL has no host");
	for (size_t j = 0; j < i; j++)
		if (json_equal(json_array_get(arr, j), e))
			return reason_set(why, whylen, "same URL as entry %zu", j);
	return 0;
}

int peerlist_from_array(const json_t *arr, bool allow_http, struct peerlist **out, char *why,
			size_t whylen)
{
	struct peerlist *l = NULL;
	size_t n = json_array_size(arr);
	int ret = -EINVAL;

	*out = NULL;
	if (!json_is_array(arr)) {
		reason_set(why, whylen, "not an array");
		goto out;
	}
	if (n > PEERLIST_MAX_PEERS) {
		reason_set(why, whylen, "%zu entries, at most %d", n, PEERLIST_MAX_PEERS);
		goto out;
	}
	ret = -ENOMEM;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto out;
	l->urls = calloc(n ? n : 1, sizeof(*l->urls));
	l->why = calloc(n ? n : 1, sizeof(*l->why));
	if (!l->urls || !l->why)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char bad[128];

		l->n = i + 1;
		if (check_entry(arr, i, allow_http, bad, sizeof(bad)))
			l->why[i] = strdup(bad);
		else
			l->urls[i] = strdup(json_string_value(json_array_get(arr, i)));
		if (!l->urls[i] && !l->why[i])
			goto out;
	}
	*out = l;
	l = NULL;
	ret = 0;
out:
	if (ret == -ENOMEM)
		reason_set(why, whylen, "out of memory");
	peerlist_free(l);
	return ret;
}

int peerlist_parse(const char *buf, size_t len, bool allow_http, struct peerlist **out,
		   char *why, size_t whylen)
{
	json_t *root, *arr;
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
	ret = peerlist_from_array(arr, allow_http, out, why, whylen);
out:
	json_decref(root);
	return ret;
}

bool peerlist_equal(const struct peerlist *a, const struct peerlist *b)
{
	if (!a || !b)
		return a == b;
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (!a->urls[i] != !b->urls[i])
			return false;
		if (a->urls[i] && strcmp(a->urls[i], b->urls[i]))
			return false;
		if (a->why[i] && strcmp(a->why[i], b->why[i]))
			return false;
	}
	return true;
}

void peerlist_free(struct peerlist *l)
{
	if (!l)
		return;
	for (size_t i = 0; l->urls && i < l->n; i++)
		free(l->urls[i]);
	for (size_t i = 0; l->why && i < l->n; i++)
		free(l->why[i]);
	free(l->urls);
	free(l->why);
	free(l);
}

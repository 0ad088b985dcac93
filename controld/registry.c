// SPDX-License-Identifier: MIT
#include "registry.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "hex.h"
#include "jsondoc.h"
#include "log.h"
#include "reason.h"

struct registry {
	struct loop *l;
	char addr[43];
	char url[2048];
	struct fetch_opts o;
	registry_cb cb;
	void *arg;
	void *fetch;
	uint64_t id;	   /* of the request in flight */
	uint64_t block;	   /* of the last good read */
	uint64_t at_block; /* the eth_call in flight reads this block */
	bool have;
	unsigned behind; /* polls in a row that saw a block lower than block */
	bool allow_http; /* for list entries; the RPC URL has its own rule */
};

int registry_spec_parse(const char *spec, bool allow_http, char *addr, char *url, size_t urllen,
			char *why, size_t whylen)
{
	const char *at = strchr(spec, '@'), *u;
	size_t ulen;

	if (strncmp(spec, "0x", 2) || !at || at - spec != 42)
		return reason_set(why, whylen, "expected 0x<40 hex digits>@<JSON-RPC URL>");
	for (int i = 2; i < 42; i++)
		if (hex_digit(spec[i]) < 0)
			return reason_set(why, whylen, "the address is not 40 hex digits");
	u = at + 1;
	ulen = strlen(u);
	/* A node on this host (a sidecar) is commonly plain HTTP; anything
	 * farther needs TLS, as the Gist does. */
	if (!strncmp(u, "http://127.", 11) || !strncmp(u, "http://localhost:", 17) ||
	    !strncmp(u, "http://localhost/", 17))
		allow_http = true;
	if (strncmp(u, "https://", 8) && !(allow_http && !strncmp(u, "http://", 7)))
		return reason_set(why, whylen, "the JSON-RPC URL must start with %s",
				  allow_http ? "https:// or http://"
					     : "https:// (or http://127.x, http://localhost)");
	for (size_t i = 0; i < ulen; i++)
		if ((unsigned char)u[i] <= ' ' || (unsigned char)u[i] >= 0x7f)
			return reason_set(why, whylen,
					  "the JSON-RPC URL has a space or control character");
	if (ulen >= urllen || ulen <= 8)
		return reason_set(why, whylen, "the JSON-RPC URL is too long or has no host");
	for (int i = 0; i < 42; i++)
		addr[i] =
		    (char)(i >= 2 && spec[i] >= 'A' && spec[i] <= 'F' ? spec[i] + 32 : spec[i]);
	addr[42] = '\0';
	memcpy(url, u, ulen + 1);
	return 0;
}

/* The "result" of a JSON-RPC 2.0 answer to id, which must be a string; the
 * caller decrefs *root. An "error" member (a revert, an unknown method) is
 * a refusal, with its message. */
static const char *answer_result(const char *body, size_t len, uint64_t id, json_t **root,
				 char *why, size_t whylen)
{
	json_t *r, *err, *res, *jid;

	*root = r = jsondoc_load(body, len, REGISTRY_MAX_BYTES, why, whylen);
	if (!r)
		return NULL;
	if (!json_is_object(r)) {
		reason_set(why, whylen, "not a JSON-RPC answer (not an object)");
		return NULL;
	}
	jid = json_object_get(r, "id");
	if (!json_is_string(json_object_get(r, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") ||
	    !json_is_integer(jid) || (uint64_t)json_integer_value(jid) != id ||
	    json_integer_value(jid) < 0) {
		reason_set(why, whylen, "not a JSON-RPC 2.0 answer to request %llu",
			   (unsigned long long)id);
		return NULL;
	}
	err = json_object_get(r, "error");
	if (err && !json_is_null(err)) { /* some servers send "error": null on success */
		const char *m = json_string_value(json_object_get(err, "message"));

		reason_set(why, whylen, "JSON-RPC error %lld: %.120s",
			   (long long)json_integer_value(json_object_get(err, "code")),
			   m ? m : "(no message)");
		return NULL;
	}
	res = json_object_get(r, "result");
	if (!json_is_string(res)) {
		reason_set(why, whylen, "the answer's result is not a string");
		return NULL;
	}
	if (strncmp(json_string_value(res), "0x", 2) ||
	    strlen(json_string_value(res)) != json_string_length(res)) {
		reason_set(why, whylen, "the answer's result does not start with 0x");
		return NULL;
	}
	return json_string_value(res) + 2;
}

int registry_parse_block(const char *body, size_t len, uint64_t id, uint64_t *block, char *why,
			 size_t whylen)
{
	json_t *root;
	const char *h = answer_result(body, len, id, &root, why, whylen);
	size_t n;
	int ret = -EINVAL;

	if (!h)
		goto out;
	n = strlen(h);
	while (n > 1 && *h == '0')
		h++, n--;
	if (n == 0 || n > 16) {
		reason_set(why, whylen, "block number is not a 64-bit hex quantity");
		goto out;
	}
	*block = 0;
	for (size_t i = 0; i < n; i++) {
		if (hex_digit(h[i]) < 0) {
			reason_set(why, whylen, "block number is not hex");
			goto out;
		}
		*block = *block << 4 | (uint64_t)hex_digit(h[i]);
	}
	ret = 0;
out:
	json_decref(root);
	return ret;
}

int registry_parse_call(const char *body, size_t len, uint64_t id, uint8_t **data, size_t *n,
			char *why, size_t whylen)
{
	json_t *root;
	const char *h = answer_result(body, len, id, &root, why, whylen);
	size_t hl;
	int ret = -EINVAL;

	*data = NULL;
	*n = 0;
	if (!h)
		goto out;
	hl = strlen(h);
	if (hl % 2) {
		reason_set(why, whylen, "return data has an odd number of hex digits");
		goto out;
	}
	ret = -ENOMEM;
	*data = malloc(hl / 2 + 1);
	if (!*data)
		goto out;
	ret = -EINVAL;
	if (!hex_decode(h, *data, hl / 2)) {
		reason_set(why, whylen, "return data is not hex");
		goto out;
	}
	*n = hl / 2;
	ret = 0;
out:
	if (ret) {
		if (ret == -ENOMEM)
			reason_set(why, whylen, "out of memory");
		free(*data);
		*data = NULL;
	}
	json_decref(root);
	return ret;
}

int registry_parse_list(const uint8_t *data, size_t n, bool allow_http, struct peerlist **out,
			char *why, size_t whylen)
{
	struct abi_str *s = NULL;
	json_t *arr = NULL;
	char *buf = NULL;
	size_t k = 0;
	int ret;

	*out = NULL;
	ret = abi_decode_strings(data, n, PEERLIST_MAX_PEERS, REGISTRY_MAX_STRING, &s, &k, why,
				 whylen);
	if (ret)
		goto out;
	ret = -ENOMEM;
	arr = json_array();
	buf = malloc(REGISTRY_MAX_STRING + 1);
	if (!arr || !buf)
		goto out;
	for (size_t i = 0; i < k; i++) {
		/* A byte past ASCII becomes DEL: JSON needs valid UTF-8, and the
		 * Gist's rules skip the entry alone for either, saying why. */
		for (size_t j = 0; j < s[i].len; j++)
			buf[j] = s[i].p[j] >= 0x80 ? 0x7f : (char)s[i].p[j];
		if (json_array_append_new(arr, json_stringn(buf, s[i].len)))
			goto out;
	}
	ret = peerlist_from_array(arr, allow_http, out, why, whylen);
out:
	if (ret == -ENOMEM)
		reason_set(why, whylen, "out of memory");
	free(buf);
	free(s);
	json_decref(arr);
	return ret;
}

/* ==== polling ==== */

bool registry_should_read(bool have, uint64_t last, uint64_t block, unsigned *behind)
{
	if (!have || block > last) {
		*behind = 0;
		return true;
	}
	if (block == last) {
		*behind = 0;
		return false;
	}
	if (++*behind < REGISTRY_BEHIND_POLLS)
		return false;
	*behind = 0;
	return true;
}

static void on_call(void *arg, const struct fetch_result *res);

static int post(struct registry *r, const char *body, fetch_cb cb)
{
	struct fetch_opts o = r->o;

	o.post_json = body;
	r->fetch = fetch_start(r->l, r->url, &o, cb, r);
	return r->fetch ? 0 : -ENOMEM;
}

/* Transport and HTTP failures, in the Gist's words. */
static bool transport_failed(const struct fetch_result *res, char *why, size_t whylen)
{
	if (res->code != CURLE_OK)
		snprintf(why, whylen, "%s", res->error);
	else if (res->status != 200)
		snprintf(why, whylen, "HTTP %ld", res->status);
	else if (res->truncated)
		snprintf(why, whylen, "larger than %d bytes", REGISTRY_MAX_BYTES);
	else
		return false;
	return true;
}

static void on_block(void *arg, const struct fetch_result *res)
{
	struct registry *r = arg;
	char why[256] = "", body[320];
	uint64_t block;

	r->fetch = NULL;
	if (transport_failed(res, why, sizeof(why)) ||
	    registry_parse_block(res->body, res->len, r->id, &block, why, sizeof(why))) {
		r->cb(r->arg, NULL, why);
		return;
	}
	if (!registry_should_read(r->have, r->block, block, &r->behind)) {
		r->cb(r->arg, NULL, "");
		return;
	}
	/* Read at that block, not "latest": the list and the block it was read
	 * at go together, even if another block lands meanwhile. */
	r->at_block = block;
	snprintf(body, sizeof(body),
		 "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"eth_call\",\"params\":"
		 "[{\"to\":\"%s\",\"data\":\"0x" REGISTRY_SELECTOR "\"},\"0x%llx\"]}",
		 (unsigned long long)++r->id, r->addr, (unsigned long long)block);
	if (post(r, body, on_call))
		r->cb(r->arg, NULL, "cannot start the eth_call");
}

static void on_call(void *arg, const struct fetch_result *res)
{
	struct registry *r = arg;
	struct peerlist *list = NULL;
	uint8_t *data = NULL;
	char why[256] = "";
	size_t n;

	r->fetch = NULL;
	if (!transport_failed(res, why, sizeof(why)) &&
	    !registry_parse_call(res->body, res->len, r->id, &data, &n, why, sizeof(why)) &&
	    !registry_parse_list(data, n, r->allow_http, &list, why, sizeof(why))) {
		r->have = true;
		r->block = r->at_block;
		log_debug("peer", "registry %s read at block %llu: %zu entries", r->addr,
			  (unsigned long long)r->block, list->n);
	}
	free(data);
	r->cb(r->arg, list, list ? "" : why);
}

int registry_poll(struct registry *r)
{
	char body[128];

	if (r->fetch)
		return -EBUSY;
	snprintf(body, sizeof(body),
		 "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"eth_blockNumber\",\"params\":[]}",
		 (unsigned long long)++r->id);
	return post(r, body, on_block);
}

uint64_t registry_block(const struct registry *r)
{
	return r && r->have ? r->block : 0;
}

struct registry *registry_new(struct loop *l, const char *spec, const struct fetch_opts *o,
			      registry_cb cb, void *arg)
{
	struct registry *r = calloc(1, sizeof(*r));
	char why[128];

	if (!r)
		return NULL;
	if (registry_spec_parse(spec, o->allow_http, r->addr, r->url, sizeof(r->url), why,
				sizeof(why))) {
		log_err("peer", "P2PWG_REGISTRY: %s", why);
		free(r);
		return NULL;
	}
	r->l = l;
	r->o = *o;
	r->allow_http = o->allow_http;
	r->o.allow_http = !strncmp(r->url, "http://", 7); /* the spec allowed it */
	r->o.max_bytes = REGISTRY_MAX_BYTES;
	r->o.if_none_match = NULL;
	/* A redirect would turn the POST into a GET somewhere else. */
	r->o.follow_https_redirects = false;
	r->cb = cb;
	r->arg = arg;
	return r;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	if (r->fetch)
		fetch_cancel(r->l, r->fetch);
	free(r);
}

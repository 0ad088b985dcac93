// SPDX-License-Identifier: MIT
#include "guestagent.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "jsondoc.h"
#include "reason.h"

/* The agent's timeout: a quote is made by the TDX module through the host's
 * quoting enclave, usually well under a second. */
#define GUESTAGENT_TIMEOUT_MS 10000

void guestagent_hex(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

bool guestagent_hex_norm(const char *s, char *out, size_t cap)
{
	size_t n;

	if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2))
		s += 2;
	n = strlen(s);
	if (n >= cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[n] = '\0';
	return true;
}

/* A hex id field: absent or null is "" unless required. */
static int get_id(const json_t *root, const char *name, bool required, char *out, char *why,
		  size_t whylen)
{
	const json_t *v = json_object_get(root, name);

	out[0] = '\0';
	if (!v || json_is_null(v))
		return required ? reason_set(why, whylen, "%s: missing", name) : 0;
	if (!json_is_string(v) || json_string_length(v) != strlen(json_string_value(v)))
		return reason_set(why, whylen, "%s: not a string", name);
	if (!guestagent_hex_norm(json_string_value(v), out, GUESTAGENT_ID_MAX + 1))
		return reason_set(why, whylen, "%s: not hex of at most %d digits", name,
				  GUESTAGENT_ID_MAX);
	if (required && !out[0])
		return reason_set(why, whylen, "%s: empty", name);
	return 0;
}

int guestagent_parse_info(const char *buf, size_t len, struct guestagent_info *out, char *why,
			  size_t whylen)
{
	struct guestagent_info gi;
	json_t *root = jsondoc_load(buf, len, GUESTAGENT_MAX_BYTES, why, whylen);
	int ret;

	if (!root)
		return -EINVAL;
	if (!json_is_object(root))
		ret = reason_set(why, whylen, "not a JSON object");
	else if (!(ret = get_id(root, "app_id", true, gi.app_id, why, whylen)) &&
		 !(ret = get_id(root, "instance_id", false, gi.instance_id, why, whylen)))
		ret = get_id(root, "compose_hash", false, gi.compose_hash, why, whylen);
	json_decref(root);
	if (!ret)
		*out = gi;
	return ret;
}

/* A string field of at most max bytes, without NUL; copied. */
static int get_str(const json_t *root, const char *name, bool required, size_t max, char **out,
		   char *why, size_t whylen)
{
	const json_t *v = json_object_get(root, name);
	size_t n;

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return reason_set(why, whylen, "%s: missing", name);
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	if (!json_is_string(v))
		return reason_set(why, whylen, "%s: not a string", name);
	n = json_string_length(v);
	if (n != strlen(json_string_value(v)))
		return reason_set(why, whylen, "%s: holds a NUL", name);
	if (n > max)
		return reason_set(why, whylen, "%s: longer than %zu bytes", name, max);
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

int guestagent_parse_quote(const char *buf, size_t len, struct guestagent_quote *out, char *why,
			   size_t whylen)
{
	struct guestagent_quote q = {0};
	char *rd = NULL;
	json_t *root = jsondoc_load(buf, len, GUESTAGENT_MAX_BYTES, why, whylen);
	size_t n;
	int ret;

	if (!root)
		return -EINVAL;
	if (!json_is_object(root)) {
		ret = reason_set(why, whylen, "not a JSON object");
		goto out;
	}
	ret = get_str(root, "quote", true, GUESTAGENT_QUOTE_MAX, &q.quote, why, whylen);
	if (!ret && (!q.quote[0] || strlen(q.quote) % 2 || !hex_valid(q.quote, strlen(q.quote))))
		ret = reason_set(why, whylen, "quote: not hex bytes");
	if (!ret)
		ret = get_str(root, "event_log", true, GUESTAGENT_EVENTLOG_MAX, &q.event_log, why,
			      whylen);
	if (!ret)
		ret = get_str(root, "vm_config", false, GUESTAGENT_VMCONFIG_MAX, &q.vm_config, why,
			      whylen);
	if (!ret)
		ret = get_str(root, "report_data", true, 130, &rd, why, whylen);
	if (ret)
		goto out;
	n = strlen(rd);
	if (!strncmp(rd, "0x", 2)) {
		memmove(rd, rd + 2, n - 1);
		n -= 2;
	}
	if (n % 2 || n > 128 || !hex_decode(rd, q.report_data, n / 2)) {
		ret = reason_set(why, whylen, "report_data: not hex of at most 64 bytes");
		goto out;
	}
	*out = q;
	memset(&q, 0, sizeof(q));
out:
	guestagent_quote_free(&q);
	free(rd);
	json_decref(root);
	return ret;
}

void guestagent_quote_free(struct guestagent_quote *q)
{
	if (!q)
		return;
	free(q->quote);
	free(q->event_log);
	free(q->vm_config);
	memset(q, 0, sizeof(*q));
}

char *guestagent_quote_request(const uint8_t report_data[64])
{
	char hex[129], *doc;
	json_t *o = json_object();

	if (!o)
		return NULL;
	guestagent_hex(report_data, 64, hex);
	doc = json_object_set_new(o, "report_data", json_string(hex)) ? NULL
								      : json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return doc;
}

int guestagent_parse_key(const char *buf, size_t len, uint8_t key[32], char *why, size_t whylen)
{
	json_t *root = jsondoc_load(buf, len, GUESTAGENT_MAX_BYTES, why, whylen);
	const json_t *v;
	const char *s;
	uint8_t k[32];
	int ret = 0;

	if (!root)
		return -EINVAL;
	v = json_is_object(root) ? json_object_get(root, "key") : NULL;
	s = json_string_value(v);
	if (!json_is_object(root))
		ret = reason_set(why, whylen, "not a JSON object");
	else if (!s)
		ret = reason_set(why, whylen, "key: missing or not a string");
	else if (!strncmp(s, "0x", 2))
		s += 2;
	if (!ret && (strlen(s) != 64 || !hex_decode(s, k, 32)))
		ret = reason_set(why, whylen, "key: not hex of 32 bytes");
	if (!ret)
		memcpy(key, k, 32);
	explicit_bzero(k, sizeof(k));
	json_decref(root);
	return ret;
}

char *guestagent_key_request(const char *path, const char *purpose)
{
	json_t *o = json_pack("{s:s, s:s}", "path", path, "purpose", purpose);
	char *doc = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return doc;
}

static void *start(struct loop *l, const char *socket, const char *path, const char *body,
		   fetch_cb cb, void *arg)
{
	/* The host name is not used on a UNIX socket; dstack's SDKs say "dstack". */
	char url[64];
	struct fetch_opts o = {.timeout_ms = GUESTAGENT_TIMEOUT_MS,
			       .max_bytes = GUESTAGENT_MAX_BYTES,
			       .allow_http = true,
			       .post_json = body,
			       .unix_socket = socket};

	snprintf(url, sizeof(url), "http://dstack%s", path);
	return fetch_start(l, url, &o, cb, arg);
}

void *guestagent_info_start(struct loop *l, const char *socket, fetch_cb cb, void *arg)
{
	return start(l, socket, "/Info", NULL, cb, arg);
}

void *guestagent_quote_start(struct loop *l, const char *socket, const uint8_t report_data[64],
			     fetch_cb cb, void *arg)
{
	char *body = guestagent_quote_request(report_data);
	void *h;

	if (!body)
		return NULL;
	h = start(l, socket, "/GetQuote", body, cb, arg);
	free(body);
	return h;
}

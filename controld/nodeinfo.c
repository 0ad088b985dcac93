// SPDX-License-Identifier: MIT
#include "nodeinfo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64.h"

#include "jsondoc.h"
#include "reason.h"


/* A JSON string holding a dotted IPv4 address, exactly as inet_pton takes it. */
static bool ipv4_of(const json_t *v, const char *suffix, struct in_addr *out)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v), slen = strlen(suffix);
	char buf[INET_ADDRSTRLEN];

	if (len != strlen(s) || len < slen || len - slen >= sizeof(buf) ||
	    strcmp(s + len - slen, suffix))
		return false;
	memcpy(buf, s, len - slen);
	buf[len - slen] = '\0';
	return inet_pton(AF_INET, buf, out) == 1;
}

/* An integer field in lo..hi; absent or null leaves *out unchanged when nullable. */
static int get_int(const json_t *root, const char *name, bool nullable, json_int_t lo,
		   json_int_t hi, json_int_t *out, bool *present, char *why, size_t whylen)
{
	const json_t *v = json_object_get(root, name);

	*present = false;
	if (!v || (nullable && json_is_null(v)))
		return 0;
	if (!json_is_integer(v))
		return reason_set(why, whylen, "%s: not an integer", name);
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return reason_set(why, whylen, "%s: %lld not in %lld..%lld", name,
			      (long long)json_integer_value(v), (long long)lo, (long long)hi);
	*out = json_integer_value(v);
	*present = true;
	return 0;
}

/* An informational string (nat, updated_at): string, null or absent. Copied
 * truncated at a UTF-8 boundary, control characters replaced by '?'. */
static int get_text(const json_t *root, const char *name, char *dst, size_t cap, char *why,
		    size_t whylen)
{
	const json_t *v = json_object_get(root, name);
	const char *s;
	size_t n;

	dst[0] = '\0';
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return reason_set(why, whylen, "%s: not a string", name);
	s = json_string_value(v);
	n = strlen(s);
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	dst[n] = '\0';
	return 0;
}

int nodeinfo_parse_endpoint(const char *s, struct sockaddr_in *out)
{
	char ip[INET_ADDRSTRLEN];
	const char *colon = strchr(s, ':');
	unsigned long port = 0;
	size_t iplen;
	uint32_t a;

	if (!colon)
		return -EINVAL;
	iplen = (size_t)(colon - s);
	if (iplen == 0 || iplen >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, iplen);
	ip[iplen] = '\0';
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &out->sin_addr) != 1)
		return -EINVAL;
	/* Decimal digits only, no leading zero, at most 5: strtoul would take
	 * signs, spaces and hex prefixes. */
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - colon > 5 || (p == colon + 1 && *p == '0'))
			return -EINVAL;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port < 1 || port > 65535)
		return -EINVAL;
	a = ntohl(out->sin_addr.s_addr);
	/* As peerset_public_ok: 0/8, loopback, link-local, multicast, reserved. */
	if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 16) == 0xa9fe || (a >> 28) >= 0xe)
		return -EINVAL;
	out->sin_port = htons((uint16_t)port);
	return 0;
}

#define LOCAL_MAX_ITEMS 64

/* local_endpoints: bad items are skipped alone, so a newer writer's extra
 * forms never cost the peer its node.json. */
static int get_local(const json_t *root, struct nodeinfo *ni, char *why, size_t whylen)
{
	const json_t *v = json_object_get(root, "local_endpoints"), *item;
	size_t i;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return reason_set(why, whylen, "local_endpoints: not an array");
	if (json_array_size(v) > LOCAL_MAX_ITEMS)
		return reason_set(why, whylen, "local_endpoints: more than %d items",
				  LOCAL_MAX_ITEMS);
	json_array_foreach(v, i, item) {
		const char *s = json_string_value(item);

		if (ni->n_local < NODEINFO_MAX_LOCAL && s &&
		    json_string_length(item) == strlen(s) &&
		    nodeinfo_parse_endpoint(s, &ni->local[ni->n_local]) == 0)
			ni->n_local++;
		else
			ni->n_local_skipped++;
	}
	return 0;
}

static int parse_obj(const json_t *root, struct nodeinfo *ni, char *why, size_t whylen)
{
	const char *opt_strings[] = { "self_url", "mapping" };
	const json_t *v, *ip;
	json_int_t x = 0;
	bool present;

	v = json_object_get(root, "wg_pubkey");
	if (!v)
		return reason_set(why, whylen, "wg_pubkey: missing");
	if (!json_is_string(v))
		return reason_set(why, whylen, "wg_pubkey: not a string");
	if (json_string_length(v) != strlen(json_string_value(v)) ||
	    b64_key_decode(json_string_value(v), ni->wg_pubkey))
		return reason_set(why, whylen, "wg_pubkey: not base64 of 32 bytes");

	v = json_object_get(root, "overlay_ip");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return reason_set(why, whylen, "overlay_ip: not a string");
		if (json_string_length(v) > 0) {
			if (!ipv4_of(v, "/32", &ni->overlay_ip))
				return reason_set(why, whylen, "overlay_ip: not \"\" nor a.b.c.d/32");
			ni->has_overlay = true;
		}
	}

	ni->wg_listen_port = 51820;
	if (get_int(root, "wg_listen_port", false, 1, 65535, &x, &present, why, whylen))
		return -EINVAL;
	if (present)
		ni->wg_listen_port = (uint16_t)x;

	ip = json_object_get(root, "public_ip");
	if (ip && !json_is_null(ip)) {
		if (!json_is_string(ip))
			return reason_set(why, whylen, "public_ip: not a string");
		if (!ipv4_of(ip, "", &ni->public_ip))
			return reason_set(why, whylen, "public_ip: not a dotted IPv4 address");
	}
	if (get_int(root, "public_port", true, 1, 65535, &x, &present, why, whylen))
		return -EINVAL;
	if (present && ip && !json_is_null(ip)) {
		ni->has_public = true;
		ni->public_port = (uint16_t)x;
	} else {
		memset(&ni->public_ip, 0, sizeof(ni->public_ip));
	}

	if (get_text(root, "nat", ni->nat, sizeof(ni->nat), why, whylen) ||
	    get_text(root, "updated_at", ni->updated_at, sizeof(ni->updated_at), why, whylen))
		return -EINVAL;

	ni->self_index = -1;
	if (get_int(root, "self_index", true, 0, LONG_MAX, &x, &present, why, whylen))
		return -EINVAL;
	if (present)
		ni->self_index = (long)x;

	if (get_int(root, "version", false, 0, INT_MAX, &x, &present, why, whylen))
		return -EINVAL;
	ni->version = present ? (int)x : 0;

	for (size_t i = 0; i < sizeof(opt_strings) / sizeof(opt_strings[0]); i++) {
		v = json_object_get(root, opt_strings[i]);
		if (v && !json_is_null(v) && !json_is_string(v))
			return reason_set(why, whylen, "%s: not a string", opt_strings[i]);
	}
	return get_local(root, ni, why, whylen);
}

int nodeinfo_parse(const char *buf, size_t len, struct nodeinfo *out, char *why, size_t whylen)
{
	struct nodeinfo ni = { 0 };
	json_t *root;
	int ret;

	root = jsondoc_load(buf, len, NODEINFO_MAX_BYTES, why, whylen);
	if (!root)
		return -EINVAL;
	if (!json_is_object(root))
		ret = reason_set(why, whylen, "not a JSON object");
	else
		ret = parse_obj(root, &ni, why, whylen);
	json_decref(root);
	if (!ret)
		*out = ni;
	explicit_bzero(&ni, sizeof(ni));
	return ret;
}

/* Set key to value (consumed); false if value is NULL or setting failed. */
static bool put(json_t *obj, const char *key, json_t *value)
{
	return value && !json_object_set_new(obj, key, value);
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *nodeinfo_format(const struct nodeinfo_self *self)
{
	char key[B64_KEY_LEN + 1], overlay[INET_ADDRSTRLEN + 3] = "", pub[INET_ADDRSTRLEN];
	char when[40], ep[INET_ADDRSTRLEN + 8];
	json_t *o = json_object(), *local = json_array();
	char *doc = NULL;
	bool ok;

	if (!o || !local) {
		json_decref(o);
		json_decref(local);
		return NULL;
	}
	for (size_t i = 0; i < self->n_local && i < NODEINFO_MAX_LOCAL; i++) {
		inet_ntop(AF_INET, &self->local[i].sin_addr, pub, sizeof(pub));
		snprintf(ep, sizeof(ep), "%s:%u", pub, ntohs(self->local[i].sin_port));
		if (json_array_append_new(local, json_string(ep))) {
			json_decref(o);
			json_decref(local);
			return NULL;
		}
	}
	b64_key_encode(self->wg_pubkey, key);
	if (self->has_overlay) {
		inet_ntop(AF_INET, &self->overlay_ip, overlay, INET_ADDRSTRLEN);
		strcat(overlay, "/32");
	}
	inet_ntop(AF_INET, &self->public_ip, pub, sizeof(pub));
	nodeinfo_time(self->updated_at, 0, when, sizeof(when));

	ok = put(o, "wg_pubkey", json_string(key)) && put(o, "overlay_ip", json_string(overlay)) &&
	     put(o, "wg_listen_port", json_integer(self->wg_listen_port)) &&
	     put(o, "public_ip", self->has_public ? json_string(pub) : json_null()) &&
	     put(o, "public_port", self->has_public ? json_integer(self->public_port) : json_null()) &&
	     put(o, "nat", string_or_null(self->nat)) &&
	     put(o, "updated_at", json_string(when)) &&
	     put(o, "self_url", string_or_null(self->self_url)) &&
	     put(o, "self_index", self->self_index >= 0 ? json_integer(self->self_index)
							  : json_null()) &&
	     put(o, "version", json_integer(NODEINFO_VERSION)) &&
	     put(o, "mapping", string_or_null(self->mapping));
	if (ok)
		ok = put(o, "local_endpoints", local);
	else
		json_decref(local);
	/* Python's json.dumps default: ", " and ": " separators, ASCII only. */
	if (ok)
		doc = json_dumps(o, JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return doc;
}

void nodeinfo_time(long long sec, long usec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char date[32];

	if (!len)
		return;
	buf[0] = '\0';
	if (usec < 0 || usec > 999999)
		usec = 0;
	if ((long long)t != sec || !gmtime_r(&t, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		return;
	snprintf(buf, len, "%s.%06ld+00:00", date, usec);
}

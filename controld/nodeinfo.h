/* SPDX-License-Identifier: MIT */
/*
 * nodeinfo: a node's /node.json, as the Python prototype published it plus a
 * format version:
 *   {"wg_pubkey": base64, "overlay_ip": "10.88.0.N/32" or "", "wg_listen_port": 51820,
 *    "public_ip": "a.b.c.d" or null, "public_port": n or null, "nat": string or null,
 *    "updated_at": ISO 8601, "self_url": string or null, "self_index": n or null,
 *    "version": 1, "mapping": "endpoint-independent" | "endpoint-dependent" | null,
 *    "local_endpoints": ["a.b.c.d:port", ...]}
 * local_endpoints is p2pwg's: the node's own interface addresses with its
 * WireGuard port, candidates for peers behind the same NAT (see pathcheck.h).
 */
#ifndef P2PWG_NODEINFO_H
#define P2PWG_NODEINFO_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODEINFO_MAX_BYTES (192 * 1024) /* room for an attestation (attest.h) */
#define NODEINFO_VERSION 1
#define NODEINFO_MAX_LOCAL 8 /* local_endpoints kept, and published */

struct nodeinfo {
	uint8_t wg_pubkey[32];
	bool has_overlay;
	struct in_addr overlay_ip; /* the /32 address, when has_overlay */
	uint16_t wg_listen_port;
	bool has_public; /* public_ip and public_port both present and valid */
	struct in_addr public_ip;
	uint16_t public_port;
	char nat[32];        /* "" when null or absent */
	char updated_at[40]; /* "" when absent */
	long self_index;     /* -1 when null or absent */
	int version;         /* 0 for the prototype, which sends none */
	size_t n_local;      /* usable local_endpoints, in the order given */
	struct sockaddr_in local[NODEINFO_MAX_LOCAL];
	size_t n_local_skipped; /* items that were not "a.b.c.d:port", or beyond the cap */
};

/*
 * Parse a peer's node.json. Refused (-EINVAL, reason in why): not a JSON
 * object; wg_pubkey missing or not base64 of exactly 32 bytes; overlay_ip not
 * "" nor a dotted IPv4 with "/32"; wg_listen_port not 1..65535 (absent means
 * 51820); public_ip not a dotted IPv4 or public_port not 1..65535 (both null
 * is fine; one without the other counts as no public endpoint); more than
 * NODEINFO_MAX_BYTES. Unknown keys are ignored. 0, -EINVAL or -ENOMEM.
 * Details: booleans and reals are not integers; overlay_ip absent or null is
 * like ""; self_index must be null or an integer >= 0, version an integer >= 0;
 * nat, updated_at, self_url and mapping must be strings or null. nat and
 * updated_at are informational: truncated to fit (at a UTF-8 boundary) and
 * control characters replaced by '?'. Duplicate keys are refused. The reason
 * starts with the field's name ("wg_pubkey: not base64 of 32 bytes"). On
 * refusal *out is untouched. local_endpoints must be an array or null
 * (absent: none); each item that is not a string "a.b.c.d:port" (dotted IPv4,
 * port 1..65535 in decimal without sign or leading zero) naming a unicast
 * address outside 0/8, loopback, link-local, multicast and reserved space is
 * skipped alone, and so is every item after the first NODEINFO_MAX_LOCAL
 * usable ones; an array of more than 64 items is refused.
 */
int nodeinfo_parse(const char *buf, size_t len, struct nodeinfo *out, char *why, size_t whylen);

/* This node's own node.json. */
struct nodeinfo_self {
	uint8_t wg_pubkey[32];
	bool has_overlay;
	struct in_addr overlay_ip;
	uint16_t wg_listen_port;
	bool has_public;
	struct in_addr public_ip;
	uint16_t public_port;
	const char *nat;       /* NULL: null */
	const char *mapping;   /* NULL: null */
	const char *self_url;  /* NULL: null */
	long self_index;       /* -1: null */
	long long updated_at;  /* unix seconds */
	const struct sockaddr_in *local; /* n_local (at most NODEINFO_MAX_LOCAL) */
	size_t n_local;
};

/* Format self as a JSON document (malloc'd, NUL-terminated), with every key
 * above in that order (local_endpoints last, always an array), in Python json.dumps's default style; or NULL on ENOMEM
 * or when nat, mapping or self_url is not valid UTF-8. */
char *nodeinfo_format(const struct nodeinfo_self *self);

/* Parse "a.b.c.d:port" as local_endpoints items are written. 0 or -EINVAL. */
int nodeinfo_parse_endpoint(const char *s, struct sockaddr_in *out);

/* ISO 8601 UTC with microseconds and "+00:00", as Python's isoformat() writes
 * ("2025-08-24T21:10:01.999712+00:00"); unlike Python, ".000000" is written
 * when usec is 0. Truncated to len; "" if the time cannot be represented. */
void nodeinfo_time(long long sec, long usec, char *buf, size_t len);

#endif

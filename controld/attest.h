/* SPDX-License-Identifier: MIT */
/*
 * attest: attested membership. This node: a TDX quote from the dstack guest
 * agent whose report_data binds its WireGuard key and the time, published in
 * node.json under "attestation" (new fields only: the prototype ignores
 * them). Its peers, with a verifier configured: each peer's quote goes to
 * dstack-verifier (POST /verify); a peer is configured only if the quote is
 * valid, binds that peer's key and updated_at, is fresh, and names an allowed
 * app_id and compose_hash. Verdicts are cached per key until the quote
 * changes; with the verifier down, peers verified before stay and none new
 * are admitted (fail-static).
 */
#ifndef P2PWG_ATTEST_H
#define P2PWG_ATTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "guestagent.h"
#include "loop.h"
#include "peerset.h"
#include "safetext.h"

#define ATTEST_LABEL "p2pwg-attest-v1"
#define ATTEST_VERDICT_MAX_BYTES (256 * 1024)
#define ATTEST_MAX_INFLIGHT 4 /* verifications at once */
#define ATTEST_MAX_PEERS 1024 /* keys remembered */
#define ATTEST_FUTURE_S 300   /* clock skew tolerated on a peer's updated_at */

/* A peer's published attestation (node.json "attestation"). */
struct attest_doc {
	char *quote;			    /* hex */
	char *event_log;		    /* as the guest agent gave it */
	char *vm_config;		    /* "" when absent */
	char updated_at[40];		    /* as published; bound into report_data */
	time_t at;			    /* updated_at as a time */
	char app_id[GUESTAGENT_ID_MAX + 1]; /* claimed, informational ("" if absent) */
	uint8_t digest[32];		    /* sha256 of the quote: the cache key */
};

/* What the verifier said about one quote (ids lower-case hex, "" if absent). */
struct attest_verdict {
	bool is_valid;
	char reason[SAFETEXT_MAX];
	bool has_report_data;
	uint8_t report_data[64];
	bool has_app_info;
	char app_id[GUESTAGENT_ID_MAX + 1];
	char compose_hash[GUESTAGENT_ID_MAX + 1];
	char instance_id[GUESTAGENT_ID_MAX + 1];
};

/* The admission rules: allow-lists are comma separated lower-case hex, "" = any. */
struct attest_rules {
	unsigned max_age_s;
	char app_ids[2048];
	char compose_hashes[2048];
};

/* report_data for key and updated_at: sha256(ATTEST_LABEL || key || updated_at),
 * then 32 zero bytes (the guest agent takes 64 bytes, unhashed). */
void attest_binding(const uint8_t key[32], const char *updated_at, uint8_t out[64]);

/* Read "attestation" from a node.json body. -ENOENT if absent or null;
 * -EINVAL (reason in why) if malformed: quote not hex bytes within
 * GUESTAGENT_QUOTE_MAX, event_log or vm_config not strings within their caps,
 * updated_at not ISO 8601 UTC; -ENOMEM. On success free out with attest_doc_free. */
int attest_parse_doc(const char *buf, size_t len, struct attest_doc *out, char *why, size_t whylen);
void attest_doc_free(struct attest_doc *d);

/* The /verify request for d (malloc'd JSON), or NULL on ENOMEM. */
char *attest_verify_request(const struct attest_doc *d);

/* Parse a /verify answer: is_valid (boolean) and details (object) required;
 * details.report_data hex of 64 bytes or null; details.app_info an object or
 * null. 0 or -EINVAL (reason in why). */
int attest_parse_verdict(const char *buf, size_t len, struct attest_verdict *out, char *why,
			 size_t whylen);

/* Fill r from c: allow-lists normalised (an optional "0x" dropped, lower case).
 * -EINVAL if an entry is not hex. */
int attest_rules_init(struct attest_rules *r, const struct config *c);

/* Whether a peer with key, publishing d, of which the verifier said v, is
 * admitted at now: 0, or -EACCES with the reason in why. */
int attest_check(const struct attest_rules *r, const uint8_t key[32], const struct attest_doc *d,
		 const struct attest_verdict *v, time_t now, char *why, size_t whylen);

struct attest;

/* Start (quoting only if the guest agent's socket exists; admitting only with
 * c->verifier_url). changed(arg) is called when a verdict arrives. NULL on ENOMEM. */
struct attest *attest_new(const struct config *c, struct loop *l, void (*changed)(void *arg),
			  void *arg);
void attest_free(struct attest *a);

/* This node's key is known (or changed): quote for it soon. */
void attest_set_key(struct attest *a, const uint8_t key[32]);

/* Add this node's attestation to the node.json document doc (consumed);
 * returns the new document, doc itself when there is none, NULL on ENOMEM. */
char *attest_publish(struct attest *a, char *doc);

/* A peer's node.json body was read with key: remember its attestation. */
void attest_note(struct attest *a, const uint8_t key[32], const char *body, size_t len);

/* With a verifier configured, set in[i].refused (pointing into why[i]) for
 * every read entry but this node's whose peer is not admitted; start the
 * verifications that are due. Without one, does nothing. */
void attest_vet(struct attest *a, struct peerset_entry *in, size_t n, const uint8_t self[32],
		char (*why)[PEERSET_WHY]);

/* Append the attestation figures to a /metrics document (Prometheus text). */
void attest_metrics(struct attest *a, FILE *f);

/* The "attestation" object of /status (new reference). */
json_t *attest_status(struct attest *a);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * guestagent: the dstack guest agent, HTTP over its UNIX socket
 * (/var/run/dstack.sock). GET /Info names the app and instance; POST
 * /GetQuote {"report_data": hex} returns a TDX quote over those 64 bytes, with
 * the event log and VM configuration a verifier needs. Requests run in
 * controld's loop (libcurl), answers are size-capped and parsed here.
 */
#ifndef P2PWG_GUESTAGENT_H
#define P2PWG_GUESTAGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

#define GUESTAGENT_MAX_BYTES (256 * 1024) /* /Info carries tcb_info, an event log */
#define GUESTAGENT_ID_MAX 128		  /* hex digits of app_id, instance_id, compose_hash */
#define GUESTAGENT_QUOTE_MAX (24 * 1024)  /* hex digits; a TDX quote is ~5 KB */
#define GUESTAGENT_EVENTLOG_MAX (64 * 1024)
#define GUESTAGENT_VMCONFIG_MAX (4 * 1024)

/* What /Info says about this instance (lower-case hex, "" when absent). */
struct guestagent_info {
	char app_id[GUESTAGENT_ID_MAX + 1];
	char instance_id[GUESTAGENT_ID_MAX + 1];
	char compose_hash[GUESTAGENT_ID_MAX + 1];
};

/* A /GetQuote answer; strings malloc'd, owned by the struct. */
struct guestagent_quote {
	char *quote;	 /* hex */
	char *event_log; /* a JSON text, kept as the agent wrote it */
	char *vm_config; /* a JSON text, "" when absent */
	uint8_t report_data[64];
};

/* Parse an /Info answer. app_id is required; every id must be hex of at most
 * GUESTAGENT_ID_MAX digits (an optional "0x" is dropped). 0 or -EINVAL with a
 * one-line reason in why. */
int guestagent_parse_info(const char *buf, size_t len, struct guestagent_info *out, char *why,
			  size_t whylen);

/* Parse a /GetQuote answer: quote (hex), event_log (string), report_data (hex
 * of 64 bytes, or fewer, zero-padded), vm_config (string, optional), each
 * within the caps above. 0, -EINVAL (reason in why) or -ENOMEM; on success the
 * caller frees out with guestagent_quote_free. */
int guestagent_parse_quote(const char *buf, size_t len, struct guestagent_quote *out, char *why,
			   size_t whylen);

/* Parse a /GetKey answer {"key": hex, "signature_chain": [...]}: key must
 * be hex of exactly 32 bytes. 0 or -EINVAL (reason in why). */
int guestagent_parse_key(const char *buf, size_t len, uint8_t key[32], char *why, size_t whylen);

/* The /GetKey request body for path and purpose (malloc'd), or NULL. */
char *guestagent_key_request(const char *path, const char *purpose);

/* Free what q owns (q itself is the caller's); accepts NULL. */
void guestagent_quote_free(struct guestagent_quote *q);

/* The /GetQuote request body for report_data (malloc'd), or NULL on ENOMEM. */
char *guestagent_quote_request(const uint8_t report_data[64]);

/* Start GET /Info or POST /GetQuote on socket; cb gets the raw answer (see
 * fetch_start). Returns the handle for fetch_cancel, or NULL. */
void *guestagent_info_start(struct loop *l, const char *socket, fetch_cb cb, void *arg);
void *guestagent_quote_start(struct loop *l, const char *socket, const uint8_t report_data[64],
			     fetch_cb cb, void *arg);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void guestagent_hex(const uint8_t *in, size_t n, char *out);

/* Copy s (hex, optional "0x") lower-cased into out (cap bytes); false if s is
 * not hex or does not fit. */
bool guestagent_hex_norm(const char *s, char *out, size_t cap);

#endif

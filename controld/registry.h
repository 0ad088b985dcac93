/* SPDX-License-Identifier: MIT */
/*
 * registry: the peer list read from a smart contract instead of a Gist.
 * P2PWG_REGISTRY is "0x<contract address>@<JSON-RPC URL>"; the contract has
 * a view function nodes() returns (string[]) (deploy/contracts/). Each poll
 * asks eth_blockNumber and, only when a newer block arrived since the last
 * good read, eth_call nodes() at that block; the answer is ABI-decoded (abi.c) and
 * checked by the same rules as the Gist (peerlist_from_array). Any failure
 * (no answer, an RPC error, a reverted call, malformed data) is reported and
 * the caller keeps its last good list.
 */
#ifndef P2PWG_REGISTRY_H
#define P2PWG_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "peerlist.h"

#define REGISTRY_SELECTOR "5db82fa0"	     /* bytes4(keccak256("nodes()")) */
#define REGISTRY_MAX_STRING 4096	     /* longer: the answer is refused whole */
#define REGISTRY_MAX_BYTES (2 * 1024 * 1024) /* an answer; 245 x 4 KiB in hex fits */

/*
 * Split spec "0x<40 hex digits>@<URL>" into the address (lower case, with
 * 0x, addr of 43 bytes) and the RPC URL (https://; http:// to 127.x or
 * localhost, or anywhere when allow_http). 0 or -EINVAL with a reason in why.
 */
int registry_spec_parse(const char *spec, bool allow_http, char *addr, char *url, size_t urllen,
			char *why, size_t whylen);

/* The JSON-RPC answer to request id for eth_blockNumber. 0 or -EINVAL (why). */
int registry_parse_block(const char *body, size_t len, uint64_t id, uint64_t *block, char *why,
			 size_t whylen);

/* The JSON-RPC answer to request id for eth_call: the returned bytes in *data
 * (malloc'd, free() it) and *n. An RPC error (a revert) is -EINVAL too. */
int registry_parse_call(const char *body, size_t len, uint64_t id, uint8_t **data, size_t *n,
			char *why, size_t whylen);

/* nodes()'s return data as a peer list, by the Gist's rules. 0, -EINVAL, -ENOMEM. */
int registry_parse_list(const uint8_t *data, size_t n, bool allow_http, struct peerlist **out,
			char *why, size_t whylen);

#define REGISTRY_BEHIND_POLLS 10 /* polls with a lower block before it counts as a new chain */

/*
 * Whether a poll that saw block should call nodes() again; last is the block
 * of the last good read (have: there was one). Only a newer block is read: a
 * load-balanced endpoint whose backends lag answers older blocks now and then,
 * and reading those would flap the list back. A lower block seen for
 * REGISTRY_BEHIND_POLLS polls in a row (a chain reset) is read. *behind
 * counts those polls (the caller keeps it, starting at 0).
 */
bool registry_should_read(bool have, uint64_t last, uint64_t block, unsigned *behind);

/*
 * A poll ended: list is a new list (the callee owns it), or NULL with why ""
 * when the block did not move (nothing to re-read), or NULL with why saying
 * what failed.
 */
typedef void (*registry_cb)(void *arg, struct peerlist *list, const char *why);

struct registry;

/* A reader of the contract in spec (checked by registry_spec_parse); fetches
 * go through l with o (its post_json and redirects are set here). NULL on
 * error. */
struct registry *registry_new(struct loop *l, const char *spec, const struct fetch_opts *o,
			      registry_cb cb, void *arg);

/* Start a poll; cb is called once when it ends. -EBUSY if one is running. */
int registry_poll(struct registry *r);

/* The block of the last good read (0: none yet). */
uint64_t registry_block(const struct registry *r);

/* Cancel what runs and free r; accepts NULL. */
void registry_free(struct registry *r);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * stun: an RFC 8489 Binding client codec. Requests carry the magic cookie and
 * a random transaction id; responses are checked against both and read for
 * XOR-MAPPED-ADDRESS, with MAPPED-ADDRESS (RFC 3489 servers) as fallback.
 */
#ifndef P2PWG_STUN_H
#define P2PWG_STUN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442U
#define STUN_TXID_LEN 12

/* Build a Binding Request with a fresh random transaction id (copied to txid)
 * into out (at least STUN_HEADER_LEN bytes). Returns its length, or -errno. */
int stun_build_request(uint8_t *out, size_t cap, uint8_t txid[STUN_TXID_LEN]);

/* Parse a Binding success response to the request with txid; the mapped
 * address (IPv4 or IPv6, port in network order) goes to *mapped.
 * -EBADMSG malformed, -ENOMSG not our transaction or not a success response,
 * -ENOENT no mapped address attribute. */
int stun_parse_response(const uint8_t *msg, size_t len, const uint8_t txid[STUN_TXID_LEN],
			struct sockaddr_storage *mapped);

#endif

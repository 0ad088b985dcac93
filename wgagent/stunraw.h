/* SPDX-License-Identifier: MIT */
/*
 * stunraw: STUN on the WireGuard port without taking the port from WireGuard.
 * A raw IPPROTO_UDP socket, opened while the agent still has CAP_NET_RAW,
 * receives a copy of every UDP packet; a locked classic BPF filter keeps only
 * those to the WireGuard port that carry the STUN magic cookie. WireGuard
 * drops the same packets as malformed, so both live side by side.
 */
#ifndef P2PWG_STUNRAW_H
#define P2PWG_STUNRAW_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* Open the filtered raw socket for port (non-blocking). 0 or -errno. */
int stunraw_open(uint16_t port, int *fd);

/* Send msg as a UDP datagram from port to `to`. 0 or -errno. */
int stunraw_send(int fd, uint16_t port, const struct sockaddr_in *to, const uint8_t *msg,
		 size_t len);

/* Receive one packet; on success the UDP payload is copied to buf (*len bytes)
 * and its source to *from. -EAGAIN when nothing is queued, -EBADMSG for a
 * packet that is not IPv4/UDP to port (the filter should have kept it out). */
int stunraw_recv(int fd, uint16_t port, uint8_t *buf, size_t cap, size_t *len,
		 struct sockaddr_in *from);

/* Packets read per wake-up: a flood must not starve the control socket. */
#define STUNRAW_DRAIN_MAX 64

typedef void (*stunraw_input_fn)(void *ctx, const uint8_t *msg, size_t len,
				 const struct sockaddr_in *from);

/* Read at most max packets (valid or not) and hand each STUN payload to fn.
 * Returns the number of packets read, or -errno on a socket error. */
int stunraw_drain(int fd, uint16_t port, unsigned max, stunraw_input_fn fn, void *ctx);

/* Extract the UDP payload of an IPv4 packet (header length read from the
 * packet, not assumed). Exposed for unit tests and the fuzzer. 0 or -EBADMSG. */
int stunraw_parse_ipv4(const uint8_t *pkt, size_t n, uint16_t port, const uint8_t **payload,
		       size_t *len, struct sockaddr_in *from);

#endif

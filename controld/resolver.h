/* SPDX-License-Identifier: MIT */
/*
 * resolver: asynchronous name lookups (c-ares) driven by controld's event
 * loop, so a DNS server that never answers stalls nothing but the lookup.
 * Reads the system's resolv.conf and hosts file, as getaddrinfo would.
 */
#ifndef P2PWG_RESOLVER_H
#define P2PWG_RESOLVER_H

#include <netinet/in.h>

#include "loop.h"

struct resolver;

/* addr is the first IPv4 address of the name, or NULL with error saying why. */
typedef void (*resolver_cb)(void *arg, const struct in_addr *addr, const char *error);

/* Create a resolver on l. 0 or -errno. */
int resolver_new(struct loop *l, struct resolver **out);

/* Cancel every lookup (their callbacks are not called) and free r; NULL is fine. */
void resolver_free(struct resolver *r);

/* Ask these nameservers ("ip:port,...") instead of resolv.conf's (tests). 0 or -EINVAL. */
int resolver_set_servers(struct resolver *r, const char *csv);

/* Look up host's IPv4 address; cb runs exactly once, possibly before this
 * returns (hosts file, numeric names). 0, or -errno and cb is not called. */
int resolver_lookup(struct resolver *r, const char *host, resolver_cb cb, void *arg);

#endif

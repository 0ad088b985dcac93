/* SPDX-License-Identifier: MIT */
/*
 * fdbudget: how many descriptors controld may hold at once (libcurl's
 * connections, each also dup'd for h2o; the HTTP listeners' connections; a
 * fixed allowance for the rest), and the RLIMIT_NOFILE that covers it.
 */
#ifndef P2PWG_FDBUDGET_H
#define P2PWG_FDBUDGET_H

#include <sys/resource.h>

/* Descriptors beyond the connections: stdio, epoll, the listeners, the
 * agent socket, signalfd, the CA bundle being read, curl's resolver. */
#define FDBUDGET_SPARE 64

/* The descriptors controld needs with every cap reached. */
unsigned fdbudget_need(void);

/* Raise the soft RLIMIT_NOFILE to need (never lower it; at most the hard
 * limit). *soft gets the limit now in force. 0 if it covers need, -ERANGE if
 * the hard limit is lower, or -errno from getrlimit/setrlimit. */
int fdbudget_apply(unsigned need, rlim_t *soft);

#endif

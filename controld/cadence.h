/* SPDX-License-Identifier: MIT */
/*
 * cadence: when controld's periodic work runs. Nodes started together must not
 * stay in step (every node's checks at the same instant overload a small
 * machine), and one node's /test checks are spread over the interval instead
 * of all leaving at once.
 */
#ifndef P2PWG_CADENCE_H
#define P2PWG_CADENCE_H

#include <stddef.h>
#include <stdint.h>

/* How much earlier than its nominal value a jittered period may end, in percent. */
#define CADENCE_JITTER_PCT 10

/* ms shortened by up to CADENCE_JITTER_PCT percent, never lengthened (a list
 * change is still read within one poll interval); rnd is a random 32-bit
 * number (arc4random() in the daemon, fixed values in tests). */
uint64_t cadence_jitter(uint64_t ms, uint32_t rnd);

/* The gap between two /test checks when n peers share interval_ms: each
 * peer is checked once per interval. At least 1 ms; interval_ms when n is 0. */
uint64_t cadence_step(uint64_t interval_ms, size_t n);

#endif

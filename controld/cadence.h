/* SPDX-License-Identifier: MIT */
/*
 * cadence: when controld's periodic work runs. Nodes started together must not
 * stay in step (every node's checks at the same instant overload a small
 * machine), while one node's /test checks of an interval leave together, in
 * groups of up to CADENCE_GROUP_MAX peers: one wake-up of controld and of the
 * WireGuard that carries them per group, not one per peer.
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

/* The most peers one tick of /test checks takes. On an idle 20-node mesh,
 * each node's 19 checks at one tick per interval, not one every 0.5 s, cost
 * controld 0.029% of a core against 0.076%, and its wireguard-go 0.176%
 * against 0.488% (bench/mesh.sh ... 20 --idle 120, alternated). A mesh past
 * this (up to 245 peers) makes that many fresh connections through the
 * tunnel per tick, so its checks are split over a few ticks. */
#define CADENCE_GROUP_MAX 64

/* The ticks of /test checks per interval for n peers: one up to
 * CADENCE_GROUP_MAX, else as few as hold them all (245: 4); 0 when n is 0. */
size_t cadence_ticks(size_t n);

/* How many of n peers each of those ticks takes: groups as even as fit
 * (245: 62). */
size_t cadence_group(size_t n);

/* The first prompt /test checks of peers just configured (or whose handshake
 * just turned fresh) leave this far apart at most, so a node's new checks are
 * spread over a moment instead of leaving in one burst. */
#define CADENCE_PROMPT_GAP_MS 25
/* A failed prompt check is made again after this, doubling per failure. */
#define CADENCE_RETRY_MS 1000

/* The delay of the k-th (from 0) of n prompt checks that became due together:
 * k gaps of min(CADENCE_PROMPT_GAP_MS, cadence_step(interval_ms, n)), each
 * gap shortened at random (rnd) by up to half, so every check of a burst
 * leaves within about n gaps instead of at its slot of the interval. */
uint64_t cadence_prompt(size_t k, size_t n, uint64_t interval_ms, uint32_t rnd);

/* The wait before checking again a peer whose prompt check failed `fails`
 * times in a row (1 for the first failure): CADENCE_RETRY_MS doubled per
 * earlier failure, jittered (rnd); 0 once that reaches interval_ms, where the
 * interval's ticks take the peer back. */
uint64_t cadence_retry(unsigned fails, uint64_t interval_ms, uint32_t rnd);

#endif

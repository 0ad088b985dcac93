/* SPDX-License-Identifier: MIT */
/*
 * keymap: WireGuard public keys (32 bytes) to pointers, for the lookups that
 * run per peer per peer (the relay's tick, /status, /metrics): at 245 peers a
 * linear search each time was ~60000 key comparisons a second. Open
 * addressing over a power-of-two table at most half full; the hash is seeded
 * per map, and keys a list member chose that collide cost a longer probe, no
 * worse than the linear search it replaces. Keys are not copied: a key must
 * stay where it is while it is in the map. There is no removal: a map whose
 * keys went away is cleared and filled again.
 */
#ifndef P2PWG_KEYMAP_H
#define P2PWG_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

struct keymap_slot {
	const uint8_t *key; /* NULL: empty */
	void *val;
};

struct keymap {
	struct keymap_slot *slot;
	size_t cap, n; /* cap: 0 or a power of two */
	uint64_t seed;
};

/* Add key -> val unless key is there already (the first one stays: a list's
 * first position wins). 0, or -ENOMEM (the map is unchanged). */
int keymap_put(struct keymap *m, const uint8_t key[32], void *val);

/* The value for key, or NULL. */
void *keymap_get(const struct keymap *m, const uint8_t key[32]);

/* Empty it, keeping its table. */
void keymap_clear(struct keymap *m);

/* Free its table (it can be used again, empty). */
void keymap_free(struct keymap *m);

#endif

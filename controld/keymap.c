// SPDX-License-Identifier: MIT
#include "keymap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t slot_of(const struct keymap *m, const uint8_t *key)
{
	uint64_t h = m->seed ^ 0xcbf29ce484222325ULL; /* FNV-1a, seeded */

	for (size_t i = 0; i < 32; i++)
		h = (h ^ key[i]) * 0x100000001b3ULL;
	h ^= h >> 32;
	return (size_t)h & (m->cap - 1);
}

static struct keymap_slot *find(const struct keymap *m, const uint8_t *key)
{
	size_t i = slot_of(m, key);

	while (m->slot[i].key && memcmp(m->slot[i].key, key, 32))
		i = (i + 1) & (m->cap - 1);
	return &m->slot[i];
}

static int grow(struct keymap *m)
{
	struct keymap old = *m;

	m->cap = old.cap ? old.cap * 2 : 16;
	m->slot = calloc(m->cap, sizeof(*m->slot));
	if (!m->slot) {
		*m = old;
		return -ENOMEM;
	}
	if (!old.cap)
		m->seed = ((uint64_t)arc4random() << 32) | arc4random();
	m->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slot[i].key) {
			*find(m, old.slot[i].key) = old.slot[i];
			m->n++;
		}
	free(old.slot);
	return 0;
}

int keymap_put(struct keymap *m, const uint8_t key[32], void *val)
{
	struct keymap_slot *s;

	if ((m->n + 1) * 2 > m->cap && grow(m))
		return -ENOMEM;
	s = find(m, key);
	if (!s->key) {
		s->key = key;
		s->val = val;
		m->n++;
	}
	return 0;
}

void *keymap_get(const struct keymap *m, const uint8_t key[32])
{
	return m->cap ? find(m, key)->val : NULL;
}

void keymap_clear(struct keymap *m)
{
	if (m->cap)
		memset(m->slot, 0, m->cap * sizeof(*m->slot));
	m->n = 0;
}

void keymap_free(struct keymap *m)
{
	free(m->slot);
	m->slot = NULL;
	m->cap = m->n = 0;
}

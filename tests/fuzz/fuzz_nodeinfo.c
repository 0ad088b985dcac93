// SPDX-License-Identifier: MIT
/*
 * The node.json parser, on whatever a listed URL serves. Anything it accepts
 * must survive our own format -> parse round trip unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nodeinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nodeinfo a, b;
	struct nodeinfo_self s = { 0 };
	char why[256], *doc;

	if (nodeinfo_parse((const char *)data, size, &a, why, sizeof(why)))
		return 0;
	memcpy(s.wg_pubkey, a.wg_pubkey, 32);
	s.has_overlay = a.has_overlay;
	s.overlay_ip = a.overlay_ip;
	s.wg_listen_port = a.wg_listen_port;
	s.has_public = a.has_public;
	s.public_ip = a.public_ip;
	s.public_port = a.public_port;
	s.nat = a.nat[0] ? a.nat : NULL;
	s.self_url = a.updated_at[0] ? a.updated_at : NULL;
	s.self_index = a.self_index;
	s.updated_at = 1756069801;
	doc = nodeinfo_format(&s);
	if (!doc || nodeinfo_parse(doc, strlen(doc), &b, why, sizeof(why)))
		__builtin_trap();
	if (memcmp(a.wg_pubkey, b.wg_pubkey, 32) || a.has_overlay != b.has_overlay ||
	    (a.has_overlay && a.overlay_ip.s_addr != b.overlay_ip.s_addr) ||
	    a.wg_listen_port != b.wg_listen_port || a.has_public != b.has_public ||
	    (a.has_public &&
	     (a.public_ip.s_addr != b.public_ip.s_addr || a.public_port != b.public_port)) ||
	    strcmp(a.nat, b.nat) || a.self_index != b.self_index || b.version != NODEINFO_VERSION)
		__builtin_trap();
	free(doc);
	return 0;
}

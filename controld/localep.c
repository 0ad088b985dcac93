// SPDX-License-Identifier: MIT
#include "localep.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"

#define LOCALEP_MAX_IFS 64

size_t localep_pick(const struct localep_if *ifs, size_t n_ifs, const char *skip_if,
		    const struct mesh_params *p, uint16_t port, struct sockaddr_in *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < n_ifs && n < max; i++) {
		const struct localep_if *f = &ifs[i];
		uint32_t a = ntohl(f->addr.s_addr);
		size_t j;

		if (!(f->flags & IFF_UP) || (f->flags & IFF_LOOPBACK) ||
		    (skip_if && !strncmp(f->name, skip_if, IFNAMSIZ)))
			continue;
		/* Overlay addresses would route into the tunnel itself; the rest
		 * are no peer's way here (nodeinfo skips them too). */
		if (netaddr_prefix4_inside(f->addr, 32, p->overlay_net, p->overlay_len) ||
		    (a >> 24) == 0 || (a >> 24) == 127 || (a >> 16) == 0xa9fe || (a >> 28) >= 0xe)
			continue;
		for (j = 0; j < n && out[j].sin_addr.s_addr != f->addr.s_addr; j++)
			;
		if (j < n)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].sin_family = AF_INET;
		out[n].sin_addr = f->addr;
		out[n].sin_port = htons(port);
		n++;
	}
	return n;
}

int localep_list(const char *skip_if, const struct mesh_params *p, uint16_t port,
		 struct sockaddr_in *out, size_t max, size_t *n)
{
	struct ifreq *req = calloc(LOCALEP_MAX_IFS, sizeof(*req));
	struct localep_if *ifs = calloc(LOCALEP_MAX_IFS, sizeof(*ifs));
	struct ifconf ifc = {.ifc_len = LOCALEP_MAX_IFS * (int)sizeof(*req), .ifc_req = req};
	size_t k = 0;
	int s = -1, ret = 0;

	if (!req || !ifs) {
		ret = -ENOMEM;
		goto out;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFCONF, &ifc) < 0) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < (size_t)ifc.ifc_len / sizeof(*req); i++) {
		struct ifreq fl = req[i];

		if (req[i].ifr_addr.sa_family != AF_INET || ioctl(s, SIOCGIFFLAGS, &fl) < 0)
			continue;
		memcpy(ifs[k].name, req[i].ifr_name, IFNAMSIZ);
		ifs[k].name[IFNAMSIZ - 1] = '\0';
		ifs[k].flags = (unsigned)(unsigned short)fl.ifr_flags;
		ifs[k].addr = ((struct sockaddr_in *)&req[i].ifr_addr)->sin_addr;
		k++;
	}
	*n = localep_pick(ifs, k, skip_if, p, port, out, max);
out:
	if (s >= 0)
		close(s);
	free(req);
	free(ifs);
	return ret;
}

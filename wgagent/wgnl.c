// SPDX-License-Identifier: MIT
#include "wgnl.h"
#include "nlcb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>

/* The kernel sizes dump messages after our receive buffer, up to 32k. */
#define WGNL_RECV_SIZE 32768
#define WGNL_REQ_SIZE 256

struct wgnl {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	uint16_t family;
	char *rbuf;
};

/* Send nlh and run cb over the replies until its ACK or NLMSG_DONE. */
static int wgnl_talk(struct wgnl *w, const struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = nlcb_error,
		[NLMSG_DONE] = nlcb_done,
	};
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(w->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(w->nl, w->rbuf, WGNL_RECV_SIZE);
		if (n < 0)
			return -errno;
		errno = 0;
		ret = mnl_cb_run2(w->rbuf, n, nlh->nlmsg_seq, w->portid, cb, data,
				  ctl, MNL_ARRAY_SIZE(ctl));
	} while (ret > MNL_CB_STOP);
	if (ret < 0)
		return errno ? -errno : -EPROTO;
	return 0;
}

static struct nlmsghdr *put_genl_header(void *buf, uint16_t type, uint8_t cmd, uint8_t version,
					uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

static int family_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
	    !mnl_attr_validate(attr, MNL_TYPE_U16))
		*(uint16_t *)data = mnl_attr_get_u16(attr);
	return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, GENL_HDRLEN, family_attr_cb, data);
}

static void wgnl_close(struct wgnl *w)
{
	if (w->rbuf) {
		explicit_bzero(w->rbuf, WGNL_RECV_SIZE);
		free(w->rbuf);
	}
	if (w->nl)
		mnl_socket_close(w->nl);
	memset(w, 0, sizeof(*w));
}

/* Open a generic netlink socket and resolve the "wireguard" family. */
static int wgnl_open(struct wgnl *w)
{
	char buf[WGNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nlh;
	int one = 1, ret;

	memset(w, 0, sizeof(*w));
	w->rbuf = malloc(WGNL_RECV_SIZE);
	if (!w->rbuf) {
		ret = -ENOMEM;
		goto out;
	}
	w->nl = mnl_socket_open(NETLINK_GENERIC);
	if (!w->nl || mnl_socket_bind(w->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	/* Errors then do not echo our request back, which may not fit rbuf. */
	mnl_socket_setsockopt(w->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	w->portid = mnl_socket_get_portid(w->nl);
	w->seq = time(NULL);

	nlh = put_genl_header(buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1,
			      NLM_F_REQUEST | NLM_F_ACK, ++w->seq);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	ret = wgnl_talk(w, nlh, family_cb, &w->family);
	if (ret == -ENOENT || (!ret && !w->family))
		ret = -EPROTONOSUPPORT;
out:
	return ret;
}

bool wgnl_available(void)
{
	struct wgnl w;
	bool ok = !wgnl_open(&w);

	wgnl_close(&w);
	return ok;
}

/* ---- WG_CMD_SET_DEVICE ---- */

static int check_device(const struct wg_device *dev)
{
	if (!memchr(dev->name, '\0', sizeof(dev->name)))
		return -EINVAL;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];
		sa_family_t af = p->endpoint.sa.sa_family;

		if (af != AF_UNSPEC && af != AF_INET && af != AF_INET6)
			return -EAFNOSUPPORT;
		for (size_t j = 0; j < p->n_allowedips; j++) {
			const struct wg_allowedip *a = &p->allowedips[j];

			if (!(a->family == AF_INET && a->cidr <= 32) &&
			    !(a->family == AF_INET6 && a->cidr <= 128))
				return -EINVAL;
		}
	}
	return 0;
}

static int put_device(struct nlmsghdr *nlh, size_t len, const struct wg_device *dev, bool first)
{
	uint32_t flags = first && (dev->flags & WGDEV_REPLACE_PEERS) ? WGDEVICE_F_REPLACE_PEERS : 0;

	if (!mnl_attr_put_strz_check(nlh, len, WGDEVICE_A_IFNAME, dev->name) ||
	    !mnl_attr_put_u32_check(nlh, len, WGDEVICE_A_FLAGS, flags))
		return -EMSGSIZE;
	if (!first)
		return 0;
	if ((dev->flags & WGDEV_HAS_PRIVATE_KEY) &&
	    !mnl_attr_put_check(nlh, len, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, dev->private_key))
		return -EMSGSIZE;
	if ((dev->flags & WGDEV_HAS_LISTEN_PORT) &&
	    !mnl_attr_put_u16_check(nlh, len, WGDEVICE_A_LISTEN_PORT, dev->listen_port))
		return -EMSGSIZE;
	return 0;
}

/* A continuation carries only the key, the flags and more allowed IPs. */
static bool put_peer_header(struct nlmsghdr *nlh, size_t len, const struct wg_peer *p, bool cont)
{
	uint32_t flags = 0;

	/* Kept on continuations: without them a later part would create the peer. */
	if (p->flags & WGPEER_REMOVE_ME)
		flags |= WGPEER_F_REMOVE_ME;
	if (p->flags & WGPEER_UPDATE_ONLY)
		flags |= WGPEER_F_UPDATE_ONLY;
	/* Not on continuations: it would drop the allowed IPs sent before. */
	if (!cont && (p->flags & WGPEER_REPLACE_ALLOWEDIPS))
		flags |= WGPEER_F_REPLACE_ALLOWEDIPS;

	if (!mnl_attr_put_check(nlh, len, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->public_key) ||
	    !mnl_attr_put_u32_check(nlh, len, WGPEER_A_FLAGS, flags))
		return false;
	if (cont)
		return true;
	if (p->endpoint.sa.sa_family != AF_UNSPEC &&
	    !mnl_attr_put_check(nlh, len, WGPEER_A_ENDPOINT,
				p->endpoint.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								     : sizeof(struct sockaddr_in),
				&p->endpoint))
		return false;
	if ((p->flags & WGPEER_HAS_KEEPALIVE) &&
	    !mnl_attr_put_u16_check(nlh, len, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->keepalive))
		return false;
	return true;
}

static bool put_allowedip(struct nlmsghdr *nlh, size_t len, const struct wg_allowedip *a)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, len, 0);
	size_t alen = a->family == AF_INET6 ? sizeof(a->ip6) : sizeof(a->ip4);

	if (!nest)
		return false;
	if (!mnl_attr_put_u16_check(nlh, len, WGALLOWEDIP_A_FAMILY, a->family) ||
	    !mnl_attr_put_check(nlh, len, WGALLOWEDIP_A_IPADDR, alen, &a->ip6) ||
	    !mnl_attr_put_u8_check(nlh, len, WGALLOWEDIP_A_CIDR_MASK, a->cidr)) {
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	mnl_attr_nest_end(nlh, nest);
	return true;
}

enum { PEER_NONE, PEER_PARTIAL, PEER_DONE };

/*
 * Put peer p from its allowed IP *ai on. PEER_DONE if the rest of it fit;
 * PEER_PARTIAL if the message is full after some allowed IPs and the peer
 * continues at the new *ai; PEER_NONE (nothing added) otherwise.
 */
static int put_peer(struct nlmsghdr *nlh, size_t len, const struct wg_peer *p, size_t *ai)
{
	size_t start = *ai;
	struct nlattr *pn, *an;

	pn = mnl_attr_nest_start_check(nlh, len, 0);
	if (!pn)
		return PEER_NONE;
	if (!put_peer_header(nlh, len, p, start > 0))
		goto none;
	if (*ai < p->n_allowedips) {
		an = mnl_attr_nest_start_check(nlh, len, WGPEER_A_ALLOWEDIPS);
		while (an && *ai < p->n_allowedips && put_allowedip(nlh, len, &p->allowedips[*ai]))
			(*ai)++;
		if (an && *ai == start)
			mnl_attr_nest_cancel(nlh, an);
		else if (an)
			mnl_attr_nest_end(nlh, an);
	}
	if (*ai == p->n_allowedips) {
		mnl_attr_nest_end(nlh, pn);
		return PEER_DONE;
	}
	if (*ai > start) {
		mnl_attr_nest_end(nlh, pn);
		return PEER_PARTIAL;
	}
none:
	mnl_attr_nest_cancel(nlh, pn);
	return PEER_NONE;
}

int wgnl_build_set(const struct wg_device *dev, uint16_t family, uint32_t seq, size_t bufsize,
		   int (*emit)(void *ctx, const struct nlmsghdr *nlh), void *ctx)
{
	size_t pi = 0, ai = 0; /* next peer, and next allowed IP of it */
	bool first = true;
	char *buf = NULL;
	int ret;

	ret = check_device(dev);
	if (ret)
		goto out;
	if (bufsize < MNL_NLMSG_HDRLEN + GENL_HDRLEN) {
		ret = -EMSGSIZE;
		goto out;
	}
	buf = malloc(bufsize);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	do {
		struct nlmsghdr *nlh;
		struct nlattr *peers;
		size_t n = 0;

		nlh = put_genl_header(buf, family, WG_CMD_SET_DEVICE, WG_GENL_VERSION,
				      NLM_F_REQUEST | NLM_F_ACK, seq++);
		ret = put_device(nlh, bufsize, dev, first);
		if (ret)
			goto out;
		if (pi < dev->n_peers) {
			peers = mnl_attr_nest_start_check(nlh, bufsize, WGDEVICE_A_PEERS);
			while (peers && pi < dev->n_peers) {
				int r = put_peer(nlh, bufsize, &dev->peers[pi], &ai);

				if (r == PEER_NONE)
					break;
				n++;
				if (r == PEER_PARTIAL)
					break;
				pi++;
				ai = 0;
			}
			if (!n) {
				ret = -EMSGSIZE;
				goto out;
			}
			mnl_attr_nest_end(nlh, peers);
		}
		ret = emit(ctx, nlh);
		if (ret)
			goto out;
		first = false;
	} while (pi < dev->n_peers);
out:
	if (buf) {
		explicit_bzero(buf, bufsize);
		free(buf);
	}
	return ret;
}

static int send_cb(void *ctx, const struct nlmsghdr *nlh)
{
	return wgnl_talk(ctx, nlh, NULL, NULL);
}

int wgnl_set_device(const struct wg_device *dev)
{
	struct wgnl w;
	int ret;

	ret = wgnl_open(&w);
	if (ret)
		goto out;
	ret = wgnl_build_set(dev, w.family, w.seq + 1, MNL_SOCKET_BUFFER_SIZE, send_cb, &w);
out:
	wgnl_close(&w);
	return ret;
}

/* ---- WG_CMD_GET_DEVICE ---- */

struct aip_parse {
	struct wg_allowedip aip;
	size_t addr_len;
	bool has_cidr;
};

static int aip_attr_cb(const struct nlattr *attr, void *data)
{
	struct aip_parse *ap = data;
	size_t len = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGALLOWEDIP_A_FAMILY:
		if (!mnl_attr_validate(attr, MNL_TYPE_U16))
			ap->aip.family = mnl_attr_get_u16(attr);
		break;
	case WGALLOWEDIP_A_IPADDR:
		if (len == sizeof(struct in_addr) || len == sizeof(struct in6_addr)) {
			memcpy(&ap->aip.ip6, mnl_attr_get_payload(attr), len);
			ap->addr_len = len;
		}
		break;
	case WGALLOWEDIP_A_CIDR_MASK:
		if (!mnl_attr_validate(attr, MNL_TYPE_U8)) {
			ap->aip.cidr = mnl_attr_get_u8(attr);
			ap->has_cidr = true;
		}
		break;
	}
	return MNL_CB_OK;
}

static int aips_cb(const struct nlattr *attr, void *data)
{
	struct aip_parse ap = { 0 };

	if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0 ||
	    mnl_attr_parse_nested(attr, aip_attr_cb, &ap) < 0 || !ap.has_cidr)
		return MNL_CB_OK;
	if (!(ap.aip.family == AF_INET && ap.addr_len == 4 && ap.aip.cidr <= 32) &&
	    !(ap.aip.family == AF_INET6 && ap.addr_len == 16 && ap.aip.cidr <= 128))
		return MNL_CB_OK;
	if (wg_peer_add_allowedip(data, &ap.aip) < 0) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

struct peer_parse {
	struct wg_peer peer;
	bool has_key;
};

static int peer_attr_cb(const struct nlattr *attr, void *data)
{
	struct peer_parse *pp = data;
	struct wg_peer *p = &pp->peer;
	size_t len = mnl_attr_get_payload_len(attr);
	union wg_endpoint ep = { 0 };
	struct __kernel_timespec ts;

	switch (mnl_attr_get_type(attr)) {
	case WGPEER_A_PUBLIC_KEY:
		if (!mnl_attr_validate2(attr, MNL_TYPE_BINARY, WG_KEY_LEN)) {
			memcpy(p->public_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
			pp->has_key = true;
		}
		break;
	case WGPEER_A_ENDPOINT:
		if (len != sizeof(ep.sin) && len != sizeof(ep.sin6))
			break;
		memcpy(&ep, mnl_attr_get_payload(attr), len);
		if ((ep.sa.sa_family == AF_INET && len == sizeof(ep.sin)) ||
		    (ep.sa.sa_family == AF_INET6 && len == sizeof(ep.sin6)))
			p->endpoint = ep;
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		if (!mnl_attr_validate(attr, MNL_TYPE_U16))
			p->keepalive = mnl_attr_get_u16(attr);
		break;
	case WGPEER_A_LAST_HANDSHAKE_TIME:
		if (!mnl_attr_validate2(attr, MNL_TYPE_BINARY, sizeof(ts))) {
			memcpy(&ts, mnl_attr_get_payload(attr), sizeof(ts));
			p->last_handshake.tv_sec = ts.tv_sec;
			p->last_handshake.tv_nsec = ts.tv_nsec;
		}
		break;
	case WGPEER_A_RX_BYTES:
		if (!mnl_attr_validate(attr, MNL_TYPE_U64))
			p->rx_bytes = mnl_attr_get_u64(attr);
		break;
	case WGPEER_A_TX_BYTES:
		if (!mnl_attr_validate(attr, MNL_TYPE_U64))
			p->tx_bytes = mnl_attr_get_u64(attr);
		break;
	case WGPEER_A_ALLOWEDIPS:
		if (!mnl_attr_validate(attr, MNL_TYPE_NESTED) &&
		    mnl_attr_parse_nested(attr, aips_cb, p) < 0)
			return MNL_CB_ERROR;
		break;
	}
	return MNL_CB_OK;
}

static int peers_cb(const struct nlattr *attr, void *data)
{
	struct wg_device *dev = data;
	struct peer_parse pp = { 0 };
	struct wg_peer *p;
	int ret = MNL_CB_OK;

	if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0)
		goto out;
	if (mnl_attr_parse_nested(attr, peer_attr_cb, &pp) < 0) {
		ret = MNL_CB_ERROR;
		goto out;
	}
	if (!pp.has_key) /* nothing to tie it to */
		goto out;
	/* The kernel repeats a peer in the next message for more allowed IPs. */
	p = dev->n_peers ? &dev->peers[dev->n_peers - 1] : NULL;
	if (!p || memcmp(p->public_key, pp.peer.public_key, WG_KEY_LEN))
		p = wg_device_find_peer(dev, pp.peer.public_key);
	if (p) {
		size_t n = p->n_allowedips + pp.peer.n_allowedips;
		struct wg_allowedip *a;

		if (!pp.peer.n_allowedips)
			goto out;
		a = realloc(p->allowedips, n * sizeof(*a));
		if (!a) {
			errno = ENOMEM;
			ret = MNL_CB_ERROR;
			goto out;
		}
		memcpy(a + p->n_allowedips, pp.peer.allowedips,
		       pp.peer.n_allowedips * sizeof(*a));
		p->allowedips = a;
		p->n_allowedips = n;
		goto out;
	}
	p = wg_device_add_peer(dev);
	if (!p) {
		errno = ENOMEM;
		ret = MNL_CB_ERROR;
		goto out;
	}
	*p = pp.peer;
	pp.peer.allowedips = NULL;
out:
	free(pp.peer.allowedips);
	return ret;
}

static int device_attr_cb(const struct nlattr *attr, void *data)
{
	struct wg_device *dev = data;

	switch (mnl_attr_get_type(attr)) {
	case WGDEVICE_A_IFINDEX:
		if (!mnl_attr_validate(attr, MNL_TYPE_U32))
			dev->ifindex = mnl_attr_get_u32(attr);
		break;
	case WGDEVICE_A_IFNAME:
		if (!mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) &&
		    mnl_attr_get_payload_len(attr) <= sizeof(dev->name))
			strcpy(dev->name, mnl_attr_get_str(attr));
		break;
	case WGDEVICE_A_PRIVATE_KEY:
		if (!mnl_attr_validate2(attr, MNL_TYPE_BINARY, WG_KEY_LEN)) {
			memcpy(dev->private_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
			dev->flags |= WGDEV_HAS_PRIVATE_KEY;
		}
		break;
	case WGDEVICE_A_PUBLIC_KEY:
		if (!mnl_attr_validate2(attr, MNL_TYPE_BINARY, WG_KEY_LEN)) {
			memcpy(dev->public_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
			dev->flags |= WGDEV_HAS_PUBLIC_KEY;
		}
		break;
	case WGDEVICE_A_LISTEN_PORT:
		if (!mnl_attr_validate(attr, MNL_TYPE_U16)) {
			dev->listen_port = mnl_attr_get_u16(attr);
			dev->flags |= WGDEV_HAS_LISTEN_PORT;
		}
		break;
	case WGDEVICE_A_PEERS:
		if (!mnl_attr_validate(attr, MNL_TYPE_NESTED) &&
		    mnl_attr_parse_nested(attr, peers_cb, dev) < 0)
			return MNL_CB_ERROR;
		break;
	}
	return MNL_CB_OK;
}

int wgnl_parse_get(const struct nlmsghdr *nlh, struct wg_device **acc)
{
	const struct genlmsghdr *genl = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + GENL_HDRLEN || genl->cmd != WG_CMD_GET_DEVICE)
		return -EBADMSG;
	if (!*acc)
		*acc = wg_device_new(NULL);
	if (!*acc)
		return -ENOMEM;
	if (mnl_attr_parse(nlh, GENL_HDRLEN, device_attr_cb, *acc) < 0)
		return -ENOMEM;
	return 0;
}

static int get_cb(const struct nlmsghdr *nlh, void *data)
{
	int ret = wgnl_parse_get(nlh, data);

	if (ret) {
		errno = -ret;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int get_once(const char *ifname, struct wg_device **out)
{
	char buf[WGNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct wg_device *dev = NULL;
	struct nlmsghdr *nlh;
	struct wgnl w;
	int ret;

	ret = wgnl_open(&w);
	if (ret)
		goto out;
	nlh = put_genl_header(buf, w.family, WG_CMD_GET_DEVICE, WG_GENL_VERSION,
			      NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, ++w.seq);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	ret = wgnl_talk(&w, nlh, get_cb, &dev);
	if (!ret && !dev)
		ret = -ENODEV;
	if (!ret) {
		*out = dev;
		dev = NULL;
	}
out:
	wg_device_free(dev);
	wgnl_close(&w);
	return ret;
}

int wgnl_get_device(const char *ifname, struct wg_device **out)
{
	int ret, tries = 0;

	*out = NULL;
	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ)
		return -ENODEV;
	/* A dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried. */
	do
		ret = get_once(ifname, out);
	while (ret == -EINTR && ++tries < 3);
	return ret;
}

static int backend_get(struct wg_backend *be, const char *ifname, struct wg_device **out)
{
	return wgnl_get_device(ifname, out);
}

static int backend_set(struct wg_backend *be, const struct wg_device *change)
{
	return wgnl_set_device(change);
}

struct wg_backend wgnl_backend = {
	.name = "kernel",
	.get = backend_get,
	.set = backend_set,
};

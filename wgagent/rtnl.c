// SPDX-License-Identifier: MIT
#include "rtnl.h"
#include "nlcb.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#define RTNL_RECV_SIZE 32768
#define RTNL_REQ_SIZE 512

/* Send one request (with NLM_F_ACK) on a fresh socket and run cb over the
 * replies until the ACK or NLMSG_DONE. */
static int rtnl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = nlcb_error,
		[NLMSG_DONE] = nlcb_done,
	};
	struct mnl_socket *nl = NULL;
	char *buf = NULL;
	uint32_t portid;
	ssize_t n;
	int ret;

	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = time(NULL);
	buf = malloc(RTNL_RECV_SIZE);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	do {
		n = mnl_socket_recvfrom(nl, buf, RTNL_RECV_SIZE);
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		errno = 0;
		ret = mnl_cb_run2(buf, n, nlh->nlmsg_seq, portid, cb, data,
				  ctl, MNL_ARRAY_SIZE(ctl));
	} while (ret > MNL_CB_STOP);
	if (ret < 0)
		ret = errno ? -errno : -EPROTO;
out:
	free(buf);
	if (nl)
		mnl_socket_close(nl);
	return ret;
}

static bool ifname_ok(const char *ifname)
{
	return ifname && *ifname && strlen(ifname) < IFNAMSIZ;
}

/* ---- links ---- */

static struct nlmsghdr *put_link_msg(void *buf, uint16_t type, uint16_t flags, uint32_t ifindex,
				     struct ifinfomsg **ifmp)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	if (ifmp)
		*ifmp = ifm;
	return nlh;
}

struct link_info {
	bool found;
	unsigned flags;
	uint32_t mtu;
	char kind[64];
};

static int linkinfo_cb(const struct nlattr *attr, void *data)
{
	struct link_info *li = data;

	if (mnl_attr_get_type(attr) == IFLA_INFO_KIND && !mnl_attr_validate(attr, MNL_TYPE_STRING))
		snprintf(li->kind, sizeof(li->kind), "%.*s", (int)mnl_attr_get_payload_len(attr),
			 mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_info *li = data;

	switch (mnl_attr_get_type(attr)) {
	case IFLA_MTU:
		if (!mnl_attr_validate(attr, MNL_TYPE_U32))
			li->mtu = mnl_attr_get_u32(attr);
		break;
	case IFLA_LINKINFO:
		if (!mnl_attr_validate(attr, MNL_TYPE_NESTED))
			mnl_attr_parse_nested(attr, linkinfo_cb, li);
		break;
	}
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct link_info *li = data;

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifm))
		return MNL_CB_OK;
	li->found = true;
	li->flags = ifm->ifi_flags;
	mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, li);
	return MNL_CB_OK;
}

/* RTM_GETLINK by name (ifname) or by index. */
static int link_get(const char *ifname, uint32_t ifindex, struct link_info *li)
{
	char buf[RTNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nlh = put_link_msg(buf, RTM_GETLINK, 0, ifindex, NULL);
	int ret;

	memset(li, 0, sizeof(*li));
	if (ifname)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	ret = rtnl_talk(nlh, link_cb, li);
	if (!ret && !li->found)
		ret = -ENODEV;
	return ret;
}

int rtnl_link_index(const char *ifname, uint32_t *index)
{
	unsigned idx;

	if (!ifname_ok(ifname))
		return -ENODEV;
	idx = if_nametoindex(ifname);
	if (!idx)
		return -(errno ? errno : ENODEV);
	*index = idx;
	return 0;
}

int rtnl_link_kind(const char *ifname, char *kind, size_t len)
{
	struct link_info li;
	int ret;

	if (!kind || !len)
		return -EINVAL;
	*kind = '\0';
	if (!ifname_ok(ifname))
		return -ENODEV;
	ret = link_get(ifname, 0, &li);
	if (ret)
		goto out;
	if (strlen(li.kind) >= len) {
		ret = -ERANGE;
		goto out;
	}
	strcpy(kind, li.kind);
out:
	return ret;
}

int rtnl_link_add_wireguard(const char *ifname)
{
	char buf[RTNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nlh;
	struct nlattr *info;

	if (!ifname_ok(ifname))
		return -EINVAL;
	nlh = put_link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, NULL);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, info);
	return rtnl_talk(nlh, NULL, NULL);
}

int rtnl_link_del(const char *ifname)
{
	char buf[RTNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nlh;

	if (!ifname_ok(ifname))
		return -ENODEV;
	nlh = put_link_msg(buf, RTM_DELLINK, 0, 0, NULL);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	return rtnl_talk(nlh, NULL, NULL);
}

int rtnl_link_up(uint32_t ifindex, unsigned mtu)
{
	char buf[RTNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct ifinfomsg *ifm;
	struct nlmsghdr *nlh;
	struct link_info li;
	int ret;

	if (!ifindex)
		return -ENODEV;
	ret = link_get(NULL, ifindex, &li);
	if (ret || ((li.flags & IFF_UP) && (!mtu || li.mtu == mtu)))
		goto out;
	nlh = put_link_msg(buf, RTM_NEWLINK, 0, ifindex, &ifm);
	ifm->ifi_change = IFF_UP;
	ifm->ifi_flags = IFF_UP;
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	ret = rtnl_talk(nlh, NULL, NULL);
out:
	return ret;
}

/* ---- IPv4 addresses ---- */

struct addr4 {
	struct in_addr local, address; /* they differ on point-to-point links */
	uint8_t prefix;
};

struct addr_list {
	uint32_t ifindex;
	struct addr4 *a;
	size_t n;
};

struct addr_parse {
	struct addr4 a;
	bool has_local, has_address;
};

static int addr_attr_cb(const struct nlattr *attr, void *data)
{
	struct addr_parse *ap = data;

	if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, sizeof(struct in_addr)) < 0)
		return MNL_CB_OK;
	switch (mnl_attr_get_type(attr)) {
	case IFA_LOCAL:
		memcpy(&ap->a.local, mnl_attr_get_payload(attr), sizeof(ap->a.local));
		ap->has_local = true;
		break;
	case IFA_ADDRESS:
		memcpy(&ap->a.address, mnl_attr_get_payload(attr), sizeof(ap->a.address));
		ap->has_address = true;
		break;
	}
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_list *l = data;
	struct addr_parse ap = { 0 };
	struct addr4 *a;

	/* Without strict checking the kernel dumps every interface's addresses. */
	if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa) ||
	    ifa->ifa_family != AF_INET || ifa->ifa_index != l->ifindex)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, &ap);
	if (!ap.has_local && !ap.has_address)
		return MNL_CB_OK;
	if (!ap.has_local)
		ap.a.local = ap.a.address;
	if (!ap.has_address)
		ap.a.address = ap.a.local;
	ap.a.prefix = ifa->ifa_prefixlen;

	a = realloc(l->a, (l->n + 1) * sizeof(*a));
	if (!a) {
		errno = ENOMEM;
		return MNL_CB_ERROR;
	}
	l->a = a;
	l->a[l->n++] = ap.a;
	return MNL_CB_OK;
}

/* The IPv4 addresses of ifindex into l (caller frees l->a). */
static int addr_list4(uint32_t ifindex, struct addr_list *l)
{
	char buf[RTNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;

	memset(l, 0, sizeof(*l));
	l->ifindex = ifindex;
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_index = ifindex;
	return rtnl_talk(nlh, addr_cb, l);
}

static int addr_request(uint16_t type, uint16_t flags, uint32_t ifindex, const struct addr4 *a)
{
	char buf[RTNL_REQ_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = a->prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(a->local), &a->local);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(a->address), &a->address);
	return rtnl_talk(nlh, NULL, NULL);
}

/* Deleting a primary address may take its secondaries along (no
 * promote_secondaries), so those may be gone already. */
static int addr_del(uint32_t ifindex, const struct addr4 *a)
{
	int ret = addr_request(RTM_DELADDR, 0, ifindex, a);

	return ret == -EADDRNOTAVAIL ? 0 : ret;
}

int rtnl_addr_get4(uint32_t ifindex, struct in_addr *addr, uint8_t *prefix)
{
	struct addr_list l;
	int ret;

	ret = addr_list4(ifindex, &l);
	if (ret)
		goto out;
	if (!l.n) {
		ret = -ENOENT;
		goto out;
	}
	*addr = l.a[0].local;
	*prefix = l.a[0].prefix;
out:
	free(l.a);
	return ret;
}

int rtnl_addr_set4(uint32_t ifindex, const struct in_addr *addr, uint8_t prefix)
{
	struct addr4 want = { .local = *addr, .address = *addr, .prefix = prefix };
	bool found = false, deleted = false;
	struct addr_list l = { 0 };
	int ret;

	if (prefix > 32)
		return -EINVAL;
	ret = addr_list4(ifindex, &l);
	if (ret)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		if (l.a[i].local.s_addr == addr->s_addr && l.a[i].prefix == prefix &&
		    l.a[i].address.s_addr == addr->s_addr) {
			found = true;
			continue;
		}
		ret = addr_del(ifindex, &l.a[i]);
		if (ret)
			goto out;
		deleted = true;
	}
	/* A deletion may have taken the wanted one along; EEXIST means it stayed. */
	if (!found || deleted) {
		ret = addr_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, &want);
		if (ret == -EEXIST)
			ret = 0;
	}
out:
	free(l.a);
	return ret;
}

int rtnl_addr_flush4(uint32_t ifindex)
{
	struct addr_list l;
	int ret;

	ret = addr_list4(ifindex, &l);
	for (size_t i = 0; !ret && i < l.n; i++)
		ret = addr_del(ifindex, &l.a[i]);
	free(l.a);
	return ret;
}

// SPDX-License-Identifier: MIT
/*
 * Runs in a private network namespace (unshare(CLONE_NEWNET) at start), so
 * nothing touches the host; it vanishes when the process exits. Needs root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "rtnl.h"

#define VETH0 "p2ptest0"
#define VETH1 "p2ptest1"

static bool in_netns;

/* The test's own netlink requests, independent of rtnl.c. */
static int nl_request(struct nlmsghdr *nlh)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	char buf[8192] __attribute__((aligned(4)));
	int ret = -1;
	ssize_t n;

	assert_non_null(nl);
	assert_int_equal(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 42;
	assert_true(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) > 0);
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n > 0)
		ret = mnl_cb_run(buf, n, 42, mnl_socket_get_portid(nl), NULL, NULL);
	mnl_socket_close(nl);
	return ret;
}

static void add_veth(const char *name, const char *peer)
{
	char buf[1024] __attribute__((aligned(4)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlattr *info, *data, *p;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_nest_end(nlh, p);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	assert_int_equal(nl_request(nlh), 0);
}

static void add_addr(uint32_t ifindex, const char *ip, uint8_t prefix)
{
	char buf[256] __attribute__((aligned(4)));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
	nlh->nlmsg_type = RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(a), &a);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(a), &a);
	assert_int_equal(nl_request(nlh), 0);
}

/* IPv4 addresses of ifname as seen by getifaddrs(), into out[] as "a.b.c.d/p". */
static int list_addrs(const char *ifname, char out[][32], int max)
{
	struct ifaddrs *ifap, *i;
	int n = 0;

	assert_int_equal(getifaddrs(&ifap), 0);
	for (i = ifap; i; i = i->ifa_next) {
		const struct sockaddr_in *sin = (const void *)i->ifa_addr;
		const struct sockaddr_in *mask = (const void *)i->ifa_netmask;
		char ip[INET_ADDRSTRLEN];

		if (!sin || sin->sin_family != AF_INET || strcmp(i->ifa_name, ifname))
			continue;
		assert_true(n < max);
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(out[n++], 32, "%s/%d", ip, __builtin_popcount(mask->sin_addr.s_addr));
	}
	freeifaddrs(ifap);
	return n;
}

static void link_state(const char *ifname, unsigned *flags, int *mtu)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	assert_int_equal(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
	*flags = (unsigned short)ifr.ifr_flags;
	assert_int_equal(ioctl(fd, SIOCGIFMTU, &ifr), 0);
	*mtu = ifr.ifr_mtu;
	close(fd);
}

static void need_netns(void)
{
	if (!in_netns)
		skip();
}

static void test_link_index(void **state)
{
	uint32_t idx = 0;
	char kind[32];

	need_netns();
	assert_int_equal(rtnl_link_index("lo", &idx), 0);
	assert_int_equal(idx, 1);
	assert_int_equal(rtnl_link_index("p2p-missing", &idx), -ENODEV);
	assert_int_equal(rtnl_link_index("a-name-much-too-long", &idx), -ENODEV);
	assert_int_equal(rtnl_link_kind("lo", kind, sizeof(kind)), 0);
	assert_string_equal(kind, "");
	assert_int_equal(rtnl_link_kind("p2p-missing", kind, sizeof(kind)), -ENODEV);
	assert_int_equal(rtnl_link_del("p2p-missing"), -ENODEV);
	assert_int_equal(rtnl_link_up(0, 0), -ENODEV);
	assert_int_equal(rtnl_link_up(99999, 1400), -ENODEV);
}

static void test_add_wireguard(void **state)
{
	char kind[32];
	uint32_t idx;
	int ret;

	need_netns();
	ret = rtnl_link_add_wireguard("wgtest0");
	if (ret == 0) { /* a kernel with WireGuard after all */
		assert_int_equal(rtnl_link_kind("wgtest0", kind, sizeof(kind)), 0);
		assert_string_equal(kind, "wireguard");
		assert_int_equal(rtnl_link_add_wireguard("wgtest0"), -EEXIST);
		assert_int_equal(rtnl_link_del("wgtest0"), 0);
		return;
	}
	assert_true(ret < 0);
	assert_int_equal(rtnl_link_index("wgtest0", &idx), -ENODEV);
	assert_int_equal(rtnl_link_add_wireguard("lo"), -EEXIST);
}

static void test_veth(void **state)
{
	char kind[32], addrs[8][32], ip[INET_ADDRSTRLEN];
	uint32_t idx = 0, idx1 = 0;
	struct in_addr a;
	uint8_t prefix = 0;
	unsigned flags;
	int mtu;

	need_netns();
	add_veth(VETH0, VETH1);
	assert_int_equal(rtnl_link_index(VETH0, &idx), 0);
	assert_int_equal(rtnl_link_index(VETH1, &idx1), 0);
	assert_int_equal(rtnl_link_kind(VETH0, kind, sizeof(kind)), 0);
	assert_string_equal(kind, "veth");
	assert_int_equal(rtnl_link_kind(VETH0, kind, 4), -ERANGE);

	link_state(VETH0, &flags, &mtu);
	assert_false(flags & IFF_UP);
	assert_int_equal(rtnl_link_up(idx, 1400), 0);
	link_state(VETH0, &flags, &mtu);
	assert_true(flags & IFF_UP);
	assert_int_equal(mtu, 1400);
	assert_int_equal(rtnl_link_up(idx, 1400), 0); /* already so */
	assert_int_equal(rtnl_link_up(idx, 0), 0);    /* MTU left alone */
	link_state(VETH0, &flags, &mtu);
	assert_int_equal(mtu, 1400);
	assert_int_equal(rtnl_link_up(idx, 1300), 0);
	link_state(VETH0, &flags, &mtu);
	assert_true(flags & IFF_UP);
	assert_int_equal(mtu, 1300);

	assert_int_equal(rtnl_addr_get4(idx, &a, &prefix), -ENOENT);
	inet_pton(AF_INET, "10.88.0.10", &a);
	assert_int_equal(rtnl_addr_set4(idx, &a, 24), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(rtnl_addr_get4(idx, &a, &prefix), 0);
	assert_string_equal(inet_ntop(AF_INET, &a, ip, sizeof(ip)), "10.88.0.10");
	assert_int_equal(prefix, 24);
	assert_int_equal(rtnl_addr_set4(idx, &a, 24), 0); /* no change */
	assert_int_equal(list_addrs(VETH0, addrs, 8), 1);
	assert_string_equal(addrs[0], "10.88.0.10/24");
	assert_int_equal(rtnl_addr_get4(idx1, &a, &prefix), -ENOENT); /* other link untouched */

	/* a secondary in the same subnet and another subnet: all go */
	add_addr(idx, "10.88.0.12", 24);
	add_addr(idx, "10.99.0.1", 16);
	assert_int_equal(list_addrs(VETH0, addrs, 8), 3);
	inet_pton(AF_INET, "10.88.0.11", &a);
	assert_int_equal(rtnl_addr_set4(idx, &a, 24), 0);
	assert_int_equal(list_addrs(VETH0, addrs, 8), 1);
	assert_string_equal(addrs[0], "10.88.0.11/24");
	assert_int_equal(rtnl_addr_get4(idx, &a, &prefix), 0);
	assert_string_equal(inet_ntop(AF_INET, &a, ip, sizeof(ip)), "10.88.0.11");
	assert_int_equal(prefix, 24);

	/* same address, other prefix: replaced */
	assert_int_equal(rtnl_addr_set4(idx, &a, 16), 0);
	assert_int_equal(list_addrs(VETH0, addrs, 8), 1);
	assert_string_equal(addrs[0], "10.88.0.11/16");
	assert_int_equal(rtnl_addr_set4(idx, &a, 33), -EINVAL);

	add_addr(idx, "10.77.0.1", 8);
	assert_int_equal(rtnl_addr_flush4(idx), 0);
	assert_int_equal(rtnl_addr_get4(idx, &a, &prefix), -ENOENT);
	assert_int_equal(list_addrs(VETH0, addrs, 8), 0);
	assert_int_equal(rtnl_addr_flush4(idx), 0); /* nothing to do */

	assert_int_equal(rtnl_link_del(VETH0), 0);
	assert_int_equal(rtnl_link_index(VETH0, &idx), -ENODEV);
	assert_int_equal(rtnl_link_index(VETH1, &idx1), -ENODEV); /* the peer went too */
	assert_int_equal(rtnl_link_del(VETH0), -ENODEV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_index),
		cmocka_unit_test(test_add_wireguard),
		cmocka_unit_test(test_veth),
	};

	/* Without root (or without namespaces) every test is skipped. */
	in_netns = geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
#include "stunraw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUN_MAGIC 0x2112A442U

int stunraw_open(uint16_t port, int *fd)
{
	/* Offsets: IPv4 header from byte 0; X = its length from the IHL field. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9), /* protocol */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 10),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6), /* flags + fragment offset */
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 8, 0),
		BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0), /* X = 4 * IHL */
		BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),  /* UDP destination port */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_IND, 12), /* STUN magic cookie */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, STUN_MAGIC, 0, 3),
		BPF_STMT(BPF_LD | BPF_B | BPF_IND, 8), /* STUN type: top two bits zero */
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0xc0, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	int one = 1, s, ret;

	s = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (s < 0)
		return -errno;
	if (setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) < 0) {
		ret = -errno;
		close(s);
		return ret;
	}
	/* Packets queued between socket() and the filter may be anything. */
	for (uint8_t junk[64]; recv(s, junk, sizeof(junk), MSG_DONTWAIT) >= 0;)
		;
	*fd = s;
	return 0;
}

int stunraw_send(int fd, uint16_t port, const struct sockaddr_in *to, const uint8_t *msg,
		 size_t len)
{
	uint8_t pkt[sizeof(struct udphdr) + 1500];
	struct udphdr *uh = (struct udphdr *)pkt;
	struct sockaddr_in dst = *to;

	if (len > sizeof(pkt) - sizeof(*uh))
		return -EMSGSIZE;
	uh->source = htons(port);
	uh->dest = to->sin_port;
	uh->len = htons((uint16_t)(sizeof(*uh) + len));
	uh->check = 0; /* optional over IPv4 (RFC 768); the kernel builds the IP header */
	memcpy(pkt + sizeof(*uh), msg, len);
	dst.sin_port = 0; /* raw(7): must be 0 */
	if (sendto(fd, pkt, sizeof(*uh) + len, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
		return -errno;
	return 0;
}

int stunraw_parse_ipv4(const uint8_t *pkt, size_t n, uint16_t port, const uint8_t **payload,
		       size_t *len, struct sockaddr_in *from)
{
	const struct iphdr *ip = (const struct iphdr *)pkt;
	struct udphdr uh;
	size_t ihl, ulen;

	if (n < sizeof(struct iphdr) || ip->version != 4 || ip->protocol != IPPROTO_UDP)
		return -EBADMSG;
	ihl = (size_t)ip->ihl * 4;
	if (ihl < sizeof(struct iphdr) || n < ihl + sizeof(uh))
		return -EBADMSG;
	memcpy(&uh, pkt + ihl, sizeof(uh));
	ulen = ntohs(uh.len);
	if (ntohs(uh.dest) != port || ulen < sizeof(uh) || ihl + ulen > n)
		return -EBADMSG;
	memset(from, 0, sizeof(*from));
	from->sin_family = AF_INET;
	from->sin_addr.s_addr = ip->saddr;
	from->sin_port = uh.source;
	*payload = pkt + ihl + sizeof(uh);
	*len = ulen - sizeof(uh);
	return 0;
}

int stunraw_recv(int fd, uint16_t port, uint8_t *buf, size_t cap, size_t *len,
		 struct sockaddr_in *from)
{
	uint8_t pkt[2048];
	const uint8_t *payload;
	ssize_t n = recv(fd, pkt, sizeof(pkt), 0);
	int ret;

	if (n < 0)
		return -errno;
	ret = stunraw_parse_ipv4(pkt, (size_t)n, port, &payload, len, from);
	if (ret)
		return ret;
	if (*len > cap)
		return -EMSGSIZE;
	memcpy(buf, payload, *len);
	return 0;
}

int stunraw_drain(int fd, uint16_t port, unsigned max, stunraw_input_fn fn, void *ctx)
{
	uint8_t msg[1500];
	struct sockaddr_in from;
	unsigned n;
	size_t len;
	int ret;

	for (n = 0; n < max; n++) {
		ret = stunraw_recv(fd, port, msg, sizeof(msg), &len, &from);
		if (ret == -EAGAIN)
			break;
		if (ret == 0)
			fn(ctx, msg, len, &from);
		else if (ret != -EBADMSG && ret != -EMSGSIZE)
			return ret;
	}
	return (int)n;
}

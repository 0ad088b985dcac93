// SPDX-License-Identifier: MIT
#include "agentclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int agentclient_connect(const char *path, int *fd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int s;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int err = -errno;

		close(s);
		return err;
	}
	*fd = s;
	return 0;
}

int agentclient_send_raw(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

int agentclient_recv(int fd, int timeout_ms, P2pwg__Response **out)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t *buf;
	ssize_t n;
	int ret;

	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return -ETIMEDOUT;
	buf = malloc(AGENT_MSG_MAX);
	if (!buf)
		return -ENOMEM;
	n = recv(fd, buf, AGENT_MSG_MAX, MSG_TRUNC);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	if (n == 0) {
		ret = -EPIPE;
		goto out;
	}
	if (n > AGENT_MSG_MAX) {
		ret = -EMSGSIZE;
		goto out;
	}
	*out = p2pwg__response__unpack(NULL, (size_t)n, buf);
	ret = *out ? 0 : -EBADMSG;
out:
	free(buf);
	return ret;
}

int agentclient_call(int fd, const P2pwg__Request *req, int timeout_ms, P2pwg__Response **out)
{
	size_t len = p2pwg__request__get_packed_size(req);
	uint8_t *buf;
	int ret;

	if (len > AGENT_MSG_MAX)
		return -EMSGSIZE;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	p2pwg__request__pack(req, buf);
	ret = agentclient_send_raw(fd, buf, len);
	free(buf);
	if (ret)
		return ret;
	for (;;) {
		ret = agentclient_recv(fd, timeout_ms, out);
		if (ret)
			return ret;
		if ((*out)->id == req->id)
			return 0;
		/* A late answer to an earlier, timed-out request: drop it. */
		agentclient_response_free(*out);
		*out = NULL;
	}
}

void agentclient_response_free(P2pwg__Response *resp)
{
	if (resp)
		p2pwg__response__free_unpacked(resp, NULL);
}

const char *agentclient_status_name(P2pwg__Status status)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&p2pwg__status__descriptor, status);

	return v ? v->name : "UNKNOWN";
}

// SPDX-License-Identifier: MIT
/*
 * controld: the unprivileged half of p2pwg. It talks to the outside world
 * (the peer list, the peers' node.json, STUN servers through wgagent), serves
 * this node's /node.json, and tells wgagent which peers to configure.
 */
#include <arpa/inet.h>
#include <cap-ng.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "fdbudget.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "node.h"

extern char **environ;

static struct loop *the_loop;

static void on_signal(h2o_socket_t *sock, const char *err)
{
	struct signalfd_siginfo si;
	int fd = h2o_socket_get_fd(sock);

	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("agent", "signal %u: exiting; wgagent keeps the tunnels up", si.ssi_signo);
		loop_stop(the_loop);
	}
}

/* Whatever capabilities we were started with, we need none. */
static int drop_privileges(void)
{
	capng_get_caps_process();
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE) {
		capng_clear(CAPNG_SELECT_BOTH);
		if (capng_apply(CAPNG_SELECT_CAPS))
			return -EPERM;
		log_info("agent", "dropped the capabilities controld was started with");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/* 245 peers need more descriptors than the usual soft limit of 1024. */
static void raise_nofile(void)
{
	unsigned need = fdbudget_need();
	rlim_t soft = 0;
	int ret = fdbudget_apply(need, &soft);

	log_info("http",
		 "descriptors: budget %u (%u client connections x%u, %u+%u served, %u other); "
		 "limit %llu",
		 need, LOOP_MAX_CONNECTIONS, LOOP_FDS_PER_CONNECTION, HTTPD_MAX_CONNECTIONS,
		 HTTPD_MAX_STATUS_CONNECTIONS, FDBUDGET_SPARE, (unsigned long long)soft);
	if (ret)
		log_warn("http", "cannot raise the descriptor limit to %u (%s): with many peers "
				 "fetches may fail for want of descriptors; raise the hard limit (ulimit -Hn)",
			 need, ret == -ERANGE ? "hard limit lower" : strerror(-ret));
}

int main(int argc, char **argv)
{
	static struct config c;
	struct node *n;
	sigset_t mask;
	h2o_socket_t *sig;
	int ret, sfd;

	ret = config_parse(&c, argc, argv, environ, stdout, stderr);
	if (ret)
		return ret > 0 ? 0 : 2;
	log_set_level(c.log_level);
	if (geteuid() == 0 && !c.allow_root) {
		fprintf(stderr, "controld: refusing to run as root: it parses what the network sends. "
				"Run it as an unprivileged user (or set P2PWG_ALLOW_ROOT=1 / --allow-root)\n");
		return 2;
	}
	if (drop_privileges()) {
		log_err("agent", "cannot drop capabilities");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (loop_global_init()) {
		log_err("peer", "libcurl or OpenSSL failed to initialise");
		return 1;
	}
	the_loop = loop_new();
	if (!the_loop)
		return 1;
	n = node_new(&c, the_loop);
	if (!n)
		return 1;
	ret = httpd_start(the_loop, n, &c.listen, &c.status_listen);
	if (ret) {
		log_err("http", "cannot listen on port %u or %u: %s", ntohs(c.listen.sin_port),
			ntohs(c.status_listen.sin_port), strerror(-ret));
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	sig = h2o_evloop_socket_create(loop_h2o(the_loop), sfd, H2O_SOCKET_FLAG_DONT_READ);
	h2o_socket_read_start(sig, on_signal);
	log_info("peer", "peer list %s, every %u s; overlay %s/%u from offset %u", c.registry[0] ? c.registry : c.gist_url,
		 c.poll_interval_s, inet_ntoa(c.overlay_net), c.overlay_len, c.base_offset);
	loop_run(the_loop);
	loop_free(the_loop);
	curl_global_cleanup();
	return 0;
}

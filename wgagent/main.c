// SPDX-License-Identifier: MIT
/*
 * wgagent: the privileged half of p2pwg. It owns the WireGuard interface and
 * its private key, obeys protobuf requests from controld on a UNIX socket,
 * sends STUN from the WireGuard port, and serves /test on the overlay.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agentclient.h"
#include "b64.h"
#include "backend.h"
#include "caps.h"
#include "ctlsrv.h"
#include "keyfile.h"
#include "log.h"
#include "netaddr.h"
#include "rtnl.h"
#include "stunraw.h"
#include "testsrv.h"
#include "wguapi.h"

#define MAX_ALLOW_UIDS CTLSRV_MAX_ALLOW
#define VERSION "0.1.0"

struct options {
	struct agent_config agent;
	struct backend_opts backend;
	const char *socket_path;
	mode_t socket_mode;
	uid_t socket_uid;
	gid_t socket_gid;
	uid_t allow[MAX_ALLOW_UIDS];
	int n_allow;
	const char *state_dir;
	char run_dir[256];
	bool stun;
};

struct state {
	struct options *o;
	struct agent agent;
	uint32_t ifindex;
	int stun_fd;
	struct ctlsrv ctl;
	struct testsrv test;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wgagent [options]\n"
		"The privileged half of p2pwg: owns the WireGuard interface and its key, obeys\n"
		"controld over a UNIX socket, and serves /test on the overlay address.\n"
		"Starts as root (or with CAP_NET_ADMIN and CAP_NET_RAW) and keeps only CAP_NET_ADMIN.\n"
		"\n"
		"  -i, --ifname NAME        WireGuard interface (default wg0)\n"
		"  -p, --listen-port PORT   WireGuard UDP port (default 51820)\n"
		"  -o, --overlay PREFIX     overlay prefix; addresses and allowed IPs must lie\n"
		"                           inside it (default 10.88.0.0/24)\n"
		"  -m, --mtu MTU            interface MTU (default 1420)\n"
		"  -s, --socket PATH        control socket (default %s)\n"
		"      --socket-mode MODE   its mode, octal (default 0660)\n"
		"      --socket-owner USER  its owner, name or uid (default: root)\n"
		"      --socket-group GROUP its group, name or gid (default: root)\n"
		"  -u, --allow-uid USER     serve this uid as well as root (repeatable)\n"
		"  -d, --state-dir DIR      where the private key is kept (default /var/lib/p2pwg)\n"
		"  -b, --backend MODE       auto, kernel or userspace (default auto)\n"
		"      --wireguard-go PROG  userspace implementation (default wireguard-go)\n"
		"      --uapi-dir DIR       its UAPI sockets (default %s)\n"
		"      --no-stun            do not open the STUN socket (no CAP_NET_RAW needed)\n"
		"  -l, --log-level LEVEL    error, warn, info or debug (default info)\n"
		"  -h, --help               this text\n"
		"  -V, --version            print the version\n",
		AGENT_DEFAULT_SOCKET, WGUAPI_DEFAULT_DIR);
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, int base,
		      unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, base);
	return errno || !*s || *end || *s == '-' || *out < min || *out > max ? -EINVAL : 0;
}

static int parse_user(const char *s, uid_t *uid)
{
	struct passwd *pw = getpwnam(s);
	unsigned long v;

	if (pw) {
		*uid = pw->pw_uid;
		return 0;
	}
	if (parse_uint(s, 0, 0x7fffffff, 10, &v))
		return -EINVAL;
	*uid = (uid_t)v;
	return 0;
}

static int parse_group(const char *s, gid_t *gid)
{
	struct group *gr = getgrnam(s);
	unsigned long v;

	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (parse_uint(s, 0, 0x7fffffff, 10, &v))
		return -EINVAL;
	*gid = (gid_t)v;
	return 0;
}

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "wgagent: invalid %s '%s': %s\n", opt, val, why);
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { O_SOCK_MODE = 256, O_SOCK_OWNER, O_SOCK_GROUP, O_WGGO, O_UAPI, O_NO_STUN };
	static const struct option longopts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "listen-port", required_argument, NULL, 'p' },
		{ "overlay", required_argument, NULL, 'o' },
		{ "mtu", required_argument, NULL, 'm' },
		{ "socket", required_argument, NULL, 's' },
		{ "socket-mode", required_argument, NULL, O_SOCK_MODE },
		{ "socket-owner", required_argument, NULL, O_SOCK_OWNER },
		{ "socket-group", required_argument, NULL, O_SOCK_GROUP },
		{ "allow-uid", required_argument, NULL, 'u' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "backend", required_argument, NULL, 'b' },
		{ "wireguard-go", required_argument, NULL, O_WGGO },
		{ "uapi-dir", required_argument, NULL, O_UAPI },
		{ "no-stun", no_argument, NULL, O_NO_STUN },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	unsigned long v;
	char *slash;
	int c, lvl;

	memset(o, 0, sizeof(*o));
	snprintf(o->agent.ifname, sizeof(o->agent.ifname), "wg0");
	o->agent.listen_port = 51820;
	netaddr_parse_prefix4("10.88.0.0/24", &o->agent.overlay_net, &o->agent.overlay_len);
	o->backend.mtu = 1420;
	o->backend.mode = BACKEND_AUTO;
	o->backend.wireguard_go = "wireguard-go";
	o->socket_path = AGENT_DEFAULT_SOCKET;
	o->socket_mode = 0660;
	o->state_dir = "/var/lib/p2pwg";
	o->stun = true;

	while ((c = getopt_long(argc, argv, "i:p:o:m:s:u:d:b:l:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (!*optarg || strlen(optarg) >= IFNAMSIZ || strchr(optarg, '/') ||
			    strchr(optarg, ' '))
				return bad("--ifname", optarg, "1 to 15 characters, no '/' or space");
			snprintf(o->agent.ifname, sizeof(o->agent.ifname), "%s", optarg);
			break;
		case 'p':
			if (parse_uint(optarg, 1, 65535, 10, &v))
				return bad("--listen-port", optarg, "must be 1..65535");
			o->agent.listen_port = (uint16_t)v;
			break;
		case 'o':
			if (netaddr_parse_prefix4(optarg, &o->agent.overlay_net, &o->agent.overlay_len) ||
			    o->agent.overlay_len < 8 || o->agent.overlay_len > 30 ||
			    (o->agent.overlay_net.s_addr & ~netaddr_mask4(o->agent.overlay_len)))
				return bad("--overlay", optarg,
					   "an IPv4 network a.b.c.d/len, len 8..30, host bits zero");
			break;
		case 'm':
			if (parse_uint(optarg, 1280, 9000, 10, &v))
				return bad("--mtu", optarg, "must be 1280..9000");
			o->backend.mtu = (unsigned)v;
			break;
		case 's':
			if (strlen(optarg) >= sizeof(((struct sockaddr_un *)0)->sun_path))
				return bad("--socket", optarg, "path too long");
			o->socket_path = optarg;
			break;
		case O_SOCK_MODE:
			if (parse_uint(optarg, 0, 0777, 8, &v))
				return bad("--socket-mode", optarg, "an octal mode such as 0660");
			o->socket_mode = (mode_t)v;
			break;
		case O_SOCK_OWNER:
			if (parse_user(optarg, &o->socket_uid))
				return bad("--socket-owner", optarg, "no such user");
			break;
		case O_SOCK_GROUP:
			if (parse_group(optarg, &o->socket_gid))
				return bad("--socket-group", optarg, "no such group");
			break;
		case 'u':
			if (o->n_allow == MAX_ALLOW_UIDS)
				return bad("--allow-uid", optarg, "too many");
			if (parse_user(optarg, &o->allow[o->n_allow++]))
				return bad("--allow-uid", optarg, "no such user");
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'b':
			if (backend_mode_parse(optarg) < 0)
				return bad("--backend", optarg, "auto, kernel or userspace");
			o->backend.mode = backend_mode_parse(optarg);
			break;
		case O_WGGO:
			o->backend.wireguard_go = optarg;
			break;
		case O_UAPI:
			if (strlen(optarg) > 80)
				return bad("--uapi-dir", optarg, "path too long");
			wguapi_set_dir(optarg);
			break;
		case O_NO_STUN:
			o->stun = false;
			break;
		case 'l':
			lvl = log_level_parse(optarg);
			if (lvl < 0)
				return bad("--log-level", optarg, "error, warn, info or debug");
			log_set_level(lvl);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("wgagent %s\n", VERSION);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wgagent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	snprintf(o->run_dir, sizeof(o->run_dir), "%s", o->socket_path);
	slash = strrchr(o->run_dir, '/');
	if (slash && slash != o->run_dir)
		*slash = '\0';
	else
		snprintf(o->run_dir, sizeof(o->run_dir), ".");
	o->backend.ifname = o->agent.ifname;
	o->backend.listen_port = o->agent.listen_port;
	o->backend.run_dir = o->run_dir;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ==== agent operations: the real system ==== */

static int op_addr_get(void *ctx, struct in_addr *addr, uint8_t *len)
{
	struct state *st = ctx;

	return rtnl_addr_get4(st->ifindex, addr, len);
}

static int op_addr_set(void *ctx, const struct in_addr *addr, uint8_t len)
{
	struct state *st = ctx;
	int ret = addr ? rtnl_addr_set4(st->ifindex, addr, len) : rtnl_addr_flush4(st->ifindex);

	if (!ret)
		testsrv_bind(&st->test, addr); /* a failure is logged and retried */
	return ret;
}

static int op_stun_send(void *ctx, const struct sockaddr_in *to, const uint8_t *msg, size_t len)
{
	struct state *st = ctx;

	if (st->stun_fd < 0)
		return -ENOTSUP;
	return stunraw_send(st->stun_fd, st->o->agent.listen_port, to, msg, len);
}

static int op_reply(void *ctx, int client, const uint8_t *buf, size_t len)
{
	struct state *st = ctx;

	return ctlsrv_reply(&st->ctl, client, buf, len);
}

static void on_request(void *ctx, int client, const uint8_t *buf, size_t len, size_t full_len)
{
	struct state *st = ctx;

	agent_handle(&st->agent, client, buf, len, full_len, now_ms());
}

static void on_client_gone(void *ctx, int client)
{
	struct state *st = ctx;

	agent_client_gone(&st->agent, client);
}

/* ==== the control socket ==== */

static int open_control_socket(const struct options *o, int *fd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat sb;
	int s, ret;

	if (mkdir(o->run_dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	strcpy(sun.sun_path, o->socket_path);
	/* A stale socket from an earlier run; never remove anything else. */
	if (lstat(o->socket_path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode))
			return -EEXIST;
		unlink(o->socket_path);
	}
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (bind(s, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(o->socket_path, o->socket_mode) < 0 ||
	    chown(o->socket_path, o->socket_uid, o->socket_gid) < 0 || listen(s, 8) < 0) {
		ret = -errno;
		close(s);
		return ret;
	}
	*fd = s;
	return 0;
}

static void stun_input_one(void *ctx, const uint8_t *msg, size_t len,
			   const struct sockaddr_in *from)
{
	agent_stun_input(ctx, msg, len, from);
}

static int run(struct state *st, int lfd, int sfd)
{
	enum { P_SIG, P_LISTEN, P_STUN, P_TEST, P_CLIENTS,
	       P_CONNS = P_CLIENTS + CTLSRV_MAX_CLIENTS };
	struct pollfd pfd[P_CONNS + TESTSRV_MAX_CONNS];

	for (;;) {
		uint64_t now = now_ms();
		int t1 = agent_tick(&st->agent, now), t2 = testsrv_tick(&st->test, now);
		int timeout = t1 < 0 ? t2 : t2 < 0 ? t1 : (t1 < t2 ? t1 : t2);

		pfd[P_SIG] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[P_LISTEN] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		pfd[P_STUN] = (struct pollfd){ .fd = st->stun_fd, .events = POLLIN };
		pfd[P_TEST] = (struct pollfd){ .fd = st->test.listen_fd, .events = POLLIN };
		ctlsrv_pollfds(&st->ctl, pfd + P_CLIENTS);
		for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
			pfd[P_CONNS + i] = (struct pollfd){ .fd = st->test.conns[i].fd, .events = POLLIN };
		if (poll(pfd, sizeof(pfd) / sizeof(pfd[0]), timeout) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[P_SIG].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				log_info("agent", "signal %u: exiting, interface %s kept", si.ssi_signo,
					 st->o->agent.ifname);
				return 0;
			}
		}
		if (pfd[P_LISTEN].revents & POLLIN)
			ctlsrv_accept(&st->ctl);
		if (pfd[P_STUN].revents & POLLIN)
			stunraw_drain(st->stun_fd, st->o->agent.listen_port, STUNRAW_DRAIN_MAX,
				      stun_input_one, &st->agent);
		if (pfd[P_TEST].revents & POLLIN)
			testsrv_accept(&st->test, now_ms());
		ctlsrv_events(&st->ctl, pfd + P_CLIENTS);
		for (int i = 0; i < TESTSRV_MAX_CONNS; i++)
			if (st->test.conns[i].fd >= 0 && pfd[P_CONNS + i].fd == st->test.conns[i].fd &&
			    pfd[P_CONNS + i].revents)
				testsrv_input(&st->test, i, now_ms());
	}
}

int main(int argc, char **argv)
{
	static struct options o;
	static struct state st;
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char pubstr[B64_KEY_LEN + 1];
	struct agent_ops ops = { .addr_get = op_addr_get, .addr_set = op_addr_set,
				 .stun_send = op_stun_send, .reply = op_reply, .ctx = &st };
	struct wg_backend *be;
	struct in_addr addr;
	uint8_t addr_len;
	sigset_t mask;
	bool created, adopted;
	int lfd = -1, sfd, ret;

	if (parse_args(argc, argv, &o))
		return 2;
	st.o = &o;
	st.stun_fd = -1;
	testsrv_init(&st.test, o.agent.ifname);
	signal(SIGPIPE, SIG_IGN);

	if (!caps_have(CAP_NET_ADMIN)) {
		log_err("agent", "needs CAP_NET_ADMIN (run as root, or with CAP_NET_ADMIN and CAP_NET_RAW)");
		return 1;
	}
	ret = keyfile_load_or_create(o.state_dir, priv, pub, &created);
	if (ret) {
		log_err("agent", "key in %s/%s: %s%s", o.state_dir, KEYFILE_NAME, strerror(-ret),
			ret == -EPERM ? " (the file must be mode 0600)" : "");
		return 1;
	}
	log_info("agent", "%s key pair, public key %s", created ? "generated a new" : "loaded the",
		 b64_key_encode(pub, pubstr));

	ret = backend_setup(&o.backend, priv, &be, &st.ifindex, &adopted);
	if (ret) {
		explicit_bzero(priv, sizeof(priv));
		return 1;
	}
	ops.wg = be;
	agent_init(&st.agent, &o.agent, &ops, priv, pub);
	explicit_bzero(priv, sizeof(priv));

	if (o.stun) {
		ret = stunraw_open(o.agent.listen_port, &st.stun_fd);
		if (ret) {
			log_err("stun", "cannot open the raw STUN socket: %s (needs CAP_NET_RAW; "
					"--no-stun runs without it)", strerror(-ret));
			return 1;
		}
	}
	ret = open_control_socket(&o, &lfd);
	if (ret) {
		log_err("agent", "cannot listen on %s: %s", o.socket_path, strerror(-ret));
		return 1;
	}
	ret = ctlsrv_init(&st.ctl, lfd, o.allow, o.n_allow, AGENT_REQUEST_MAX, on_request,
			  on_client_gone, &st);
	if (ret) {
		log_err("agent", "control socket: %s", strerror(-ret));
		return 1;
	}
	ret = caps_drop_to_net_admin();
	if (ret) {
		log_err("agent", "cannot drop capabilities: %s", strerror(-ret));
		return 1;
	}
	if (rtnl_addr_get4(st.ifindex, &addr, &addr_len) == 0)
		testsrv_bind(&st.test, &addr); /* a failure is logged and retried */

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	log_info("agent", "listening on %s (pid %d, capabilities: CAP_NET_ADMIN only)", o.socket_path,
		 (int)getpid());
	ret = run(&st, lfd, sfd);
	agent_cleanup(&st.agent);
	testsrv_close(&st.test);
	ctlsrv_close(&st.ctl);
	close(lfd);
	unlink(o.socket_path);
	return ret ? 1 : 0;
}

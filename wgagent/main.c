// SPDX-License-Identifier: MIT
/*
 * wgagent: the privileged half of p2pwg. It owns the WireGuard interface and
 * its private key, obeys protobuf requests from controld on a UNIX socket,
 * sends STUN from the WireGuard port, and serves /test on the overlay.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
#include "ifwatch.h"
#include "keyfile.h"
#include "log.h"
#include "netaddr.h"
#include "rtnl.h"
#include "safedir.h"
#include "sandbox.h"
#include "stunraw.h"
#include "testsrv.h"
#include "wguapi.h"
#include "wgspawn.h"

#define MAX_ALLOW_UIDS CTLSRV_MAX_ALLOW
#define VERSION "0.1.0"
#define DEFAULT_USER "p2pwg-agent"
#define SOCKET_NEW ".new" /* bound under this suffix, renamed when the agent is ready */
#define DEFAULT_WIREGUARD_GO "/usr/bin/wireguard-go"

struct options {
	struct agent_config agent;
	struct backend_opts backend;
	const char *socket_path;
	mode_t socket_mode;
	uid_t socket_uid;
	gid_t socket_gid;
	bool socket_uid_set;
	const char *user; /* NAME|UID[:GROUP|GID] the agent runs as */
	uid_t uid;
	gid_t gid;
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
	struct ifwatch watch;
	struct wgspawn spawn;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wgagent [options]\n"
		"The privileged half of p2pwg: owns the WireGuard interface and its key, obeys\n"
		"controld over a UNIX socket, and serves /test on the overlay address.\n"
		"Starts as root (or with CAP_NET_ADMIN and CAP_NET_RAW), prepares its directories\n"
		"and sockets, then runs as --user with only CAP_NET_ADMIN, under seccomp.\n"
		"\n"
		"  -U, --user USER[:GROUP]  run as this user (name or uid; group: name or gid,\n"
		"                           default the user's group, or gid = uid)\n"
		"                           (default %s)\n"
		"  -i, --ifname NAME        WireGuard interface (default wg0)\n"
		"  -p, --listen-port PORT   WireGuard UDP port (default 51820)\n"
		"  -o, --overlay PREFIX     overlay prefix; addresses and allowed IPs must lie\n"
		"                           inside it (default 10.88.0.0/24)\n"
		"  -m, --mtu MTU            interface MTU (default 1420)\n"
		"  -s, --socket PATH        control socket (default %s)\n"
		"      --socket-mode MODE   its mode, octal (default 0660)\n"
		"      --socket-owner USER  its owner, name or uid (default: the agent's user)\n"
		"      --socket-group GROUP its group, name or gid (default: root)\n"
		"  -u, --allow-uid USER     serve this uid as well as root (repeatable)\n"
		"  -d, --state-dir DIR      where the private key is kept (default /var/lib/p2pwg)\n"
		"  -b, --backend MODE       auto, kernel or userspace (default auto)\n"
		"      --wireguard-go PATH  userspace implementation, absolute path\n"
		"                           (default %s)\n"
		"      --uapi-dir DIR       its UAPI sockets (default %s)\n"
		"      --no-stun            do not open the STUN socket (no CAP_NET_RAW needed)\n"
		"  -l, --log-level LEVEL    error, warn, info or debug (default info)\n"
		"  -h, --help               this text\n"
		"  -V, --version            print the version\n",
		DEFAULT_USER, AGENT_DEFAULT_SOCKET, DEFAULT_WIREGUARD_GO, WGUAPI_DEFAULT_DIR);
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

/* NAME|UID[:GROUP|GID]: a numeric uid needs no passwd entry (gid = uid then). */
static int parse_user_spec(const char *spec, uid_t *uid, gid_t *gid)
{
	char name[256];
	const char *colon = strchr(spec, ':');
	struct passwd *pw;
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);

	if (n == 0 || n >= sizeof(name))
		return -EINVAL;
	memcpy(name, spec, n);
	name[n] = '\0';
	if (parse_user(name, uid))
		return -EINVAL;
	pw = getpwuid(*uid);
	*gid = pw ? pw->pw_gid : (gid_t)*uid;
	if (colon && parse_group(colon + 1, gid))
		return -EINVAL;
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
		{ "user", required_argument, NULL, 'U' },
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
	o->backend.wireguard_go = DEFAULT_WIREGUARD_GO;
	o->user = DEFAULT_USER;
	o->socket_path = AGENT_DEFAULT_SOCKET;
	o->socket_mode = 0660;
	o->state_dir = "/var/lib/p2pwg";
	o->stun = true;

	while ((c = getopt_long(argc, argv, "i:p:o:m:s:u:U:d:b:l:hV", longopts, NULL)) != -1) {
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
			if (strlen(optarg) + strlen(SOCKET_NEW) >=
			    sizeof(((struct sockaddr_un *)0)->sun_path))
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
			o->socket_uid_set = true;
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
		case 'U':
			o->user = optarg;
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
			if (optarg[0] != '/')
				return bad("--wireguard-go", optarg, "must be an absolute path");
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
	if (parse_user_spec(o->user, &o->uid, &o->gid)) {
		fprintf(stderr, "wgagent: no user '%s' (create it, or give --user UID[:GID])\n",
			o->user);
		return -EINVAL;
	}
	if (!o->socket_uid_set)
		o->socket_uid = o->uid;
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

	if (!ret) {
		testsrv_bind(&st->test, addr); /* a failure is logged and retried */
		ifwatch_note_addr(&st->watch, addr, len);
	}
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

/* Give the bound socket its owner without following the path: it is opened
 * O_PATH|O_NOFOLLOW and must be the socket we just made. (fchmod/fchown on the
 * socket descriptor itself would change sockfs' inode, not the file.) */
static int own_socket_file(const struct options *o, const char *path)
{
	struct stat sb;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0)
		ret = -errno;
	else if (!S_ISSOCK(sb.st_mode) || sb.st_uid != geteuid())
		ret = -EEXIST;
	else if (fchownat(fd, "", o->socket_uid, o->socket_gid, AT_EMPTY_PATH) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* A stale socket from an earlier run may go; never remove anything else. */
static int remove_stale(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		return 0;
	if (!S_ISSOCK(sb.st_mode))
		return -EEXIST;
	unlink(path);
	return 0;
}

/* Bound (as root, to give it its owner) under <path>.new: clients see the
 * path only once publish_control_socket() says the agent is ready. */
static int open_control_socket(const struct options *o, int *fd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int s, ret;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s%s", o->socket_path, SOCKET_NEW);
	ret = remove_stale(o->socket_path) ?: remove_stale(sun.sun_path);
	if (ret)
		return ret;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	/* The file gets its mode at creation: no chmod on a path afterwards. */
	old = umask(~o->socket_mode & 0777);
	ret = bind(s, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old);
	if (!ret)
		ret = own_socket_file(o, sun.sun_path);
	if (!ret && listen(s, 8) < 0)
		ret = -errno;
	if (ret) {
		close(s);
		return ret;
	}
	*fd = s;
	return 0;
}

static int publish_control_socket(const struct options *o)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(tmp, sizeof(tmp), "%s%s", o->socket_path, SOCKET_NEW);
	return rename(tmp, o->socket_path) < 0 ? -errno : 0;
}

static void stun_input_one(void *ctx, const uint8_t *msg, size_t len,
			   const struct sockaddr_in *from)
{
	agent_stun_input(ctx, msg, len, from);
}

/* The interface was rebuilt: a new index, and /test listens afresh. */
static void rebuilt(struct state *st)
{
	st->ifindex = st->watch.ifindex;
	agent_forget_device(&st->agent); /* restored by the watcher, read by the next SetPeers */
	testsrv_bind(&st->test, NULL);
	if (st->watch.have_addr)
		testsrv_bind(&st->test, &st->watch.addr); /* a failure is logged and retried */
}

static int run(struct state *st, int lfd, int sfd)
{
	enum { P_SIG, P_LISTEN, P_STUN, P_TEST, P_CLIENTS,
	       P_CONNS = P_CLIENTS + CTLSRV_MAX_CLIENTS };
	struct pollfd pfd[P_CONNS + TESTSRV_MAX_CONNS];

	for (;;) {
		uint64_t now = now_ms();
		int t1 = agent_tick(&st->agent, now), t2 = testsrv_tick(&st->test, now), t3;
		int timeout = t1 < 0 ? t2 : t2 < 0 ? t1 : (t1 < t2 ? t1 : t2);

		if (ifwatch_tick(&st->watch, now, &t3) == 1)
			rebuilt(st);
		timeout = timeout < 0 || t3 < timeout ? t3 : timeout;
		t3 = agent_check_device(&st->agent, now);
		timeout = timeout < 0 || (t3 >= 0 && t3 < timeout) ? t3 : timeout;

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

/* The private key must never reach a core file or another process of our uid. */
static void protect_memory(void)
{
	struct rlimit none = { 0, 0 };

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &none);
}

/* As root, before the drop: the directories the agent's user writes to. */
static int prepare_dirs(const struct options *o)
{
	struct {
		const char *path;
		mode_t mode;
		bool take_roots; /* a system default that a root wireguard-go may have made */
	} dirs[] = {
		{ o->run_dir, 0755, false },
		{ o->state_dir, 0700, false },
		/* 0755 as wireguard-go makes it: the sockets in it are 0700, and
		 * root's tools and other wireguard-go users keep working. */
		{ wguapi_get_dir(), 0755, true },
	};
	int n = o->backend.mode == BACKEND_KERNEL ? 2 : 3;

	for (int i = 0; i < n; i++) {
		const char *why;
		int ret = safedir_prepare(dirs[i].path, dirs[i].mode, o->uid, o->gid,
					  dirs[i].take_roots, &why);

		if (ret) {
			log_err("agent", "refusing directory %s: %s (it must be owned by uid %u and "
					 "not writable by group or other)", dirs[i].path, why,
				(unsigned)o->uid);
			return ret;
		}
	}
	return 0;
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
	bool created, adopted, locked;
	int lfd = -1, sfd, ret;

	umask(077);
	protect_memory();
	if (parse_args(argc, argv, &o))
		return 2;
	st.o = &o;
	st.stun_fd = -1;
	st.spawn.fd = -1;
	testsrv_init(&st.test, o.agent.ifname);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN); /* a closed terminal must not take the mesh down */

	if (!caps_have(CAP_NET_ADMIN)) {
		log_err("agent", "needs CAP_NET_ADMIN (run as root, or with CAP_NET_ADMIN and CAP_NET_RAW)");
		return 1;
	}
	if (prepare_dirs(&o))
		return 1;
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
	ret = caps_become(o.uid, o.gid, &locked);
	if (ret) {
		log_err("agent", "cannot become uid %u gid %u with CAP_NET_ADMIN only: %s",
			(unsigned)o.uid, (unsigned)o.gid, strerror(-ret));
		return 1;
	}
	if (o.uid == 0)
		log_warn("agent", "running as uid 0 (--user); give it a user of its own");
	if (!locked)
		log_warn("agent", "securebits not locked (no CAP_SETPCAP at start)");
	if (o.backend.mode != BACKEND_KERNEL) {
		ret = wgspawn_start(&st.spawn, o.backend.wireguard_go, o.run_dir);
		if (ret) {
			log_err("wg", "cannot fork the wireguard-go launcher: %s", strerror(-ret));
			return 1;
		}
		o.backend.spawn = &st.spawn;
	}

	ret = keyfile_load_or_create(o.state_dir, priv, pub, &created);
	if (ret) {
		log_err("agent", "key in %s/%s: %s%s", o.state_dir, KEYFILE_NAME, strerror(-ret),
			ret == -EPERM || ret == -EACCES
				? " (the file must be owned by the agent's user, mode 0600)"
				: "");
		return 1;
	}
	log_info("agent", "%s key pair, public key %s", created ? "generated a new" : "loaded the",
		 b64_key_encode(pub, pubstr));

	ret = backend_setup(&o.backend, priv, &be, &st.ifindex, &adopted);
	if (ret) {
		explicit_bzero(priv, sizeof(priv));
		return 1;
	}
	ifwatch_init(&st.watch, &o.backend, be, st.ifindex, st.agent.private_key);
	ops.wg = &st.watch.wrap;
	agent_init(&st.agent, &o.agent, &ops, priv, pub);
	explicit_bzero(priv, sizeof(priv));

	if (rtnl_addr_get4(st.ifindex, &addr, &addr_len) == 0) {
		ifwatch_note_addr(&st.watch, &addr, addr_len);
		testsrv_bind(&st.test, &addr); /* a failure is logged and retried */
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ret = publish_control_socket(&o);
	if (ret) {
		log_err("agent", "cannot rename the control socket into %s: %s", o.socket_path,
			strerror(-ret));
		return 1;
	}
	tzset(); /* the first gmtime_r would open /etc/localtime under seccomp */
	if (sandbox_enter())
		return 1;
	log_info("agent", "listening on %s (pid %d, uid %u, capabilities: CAP_NET_ADMIN only, "
			  "seccomp on)", o.socket_path, (int)getpid(), (unsigned)o.uid);
	ret = run(&st, lfd, sfd);
	agent_cleanup(&st.agent);
	ifwatch_cleanup(&st.watch);
	wgspawn_stop(&st.spawn);
	testsrv_close(&st.test);
	ctlsrv_close(&st.ctl);
	close(lfd);
	unlink(o.socket_path);
	return ret ? 1 : 0;
}

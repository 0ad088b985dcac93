// SPDX-License-Identifier: MIT
#include "wgspawn.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "log.h"

/* Runs in the grandchild: never returns. */
static void exec_wireguard_go(const char *prog, const char *ifname, int logfd)
{
	char level[32] = "LOG_LEVEL=error";
	const char *lv = getenv("LOG_LEVEL");
	char *argv[] = { (char *)prog, "-f", (char *)ifname, NULL };
	char *envp[] = { "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", level, NULL };
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (lv && (!strcmp(lv, "verbose") || !strcmp(lv, "debug") || !strcmp(lv, "silent")))
		snprintf(level, sizeof(level), "LOG_LEVEL=%s", lv);
	if (null < 0 || dup2(null, 0) < 0 || dup2(logfd >= 0 ? logfd : null, 1) < 0 ||
	    dup2(logfd >= 0 ? logfd : null, 2) < 0)
		_exit(126);
	close_range(3, ~0U, 0);
	if (chdir("/") < 0 || caps_raise_ambient() < 0)
		_exit(126);
	execve(prog, argv, envp);
	_exit(127);
}

/* Start one wireguard-go, in its own session and not our child. */
static pid_t spawn(const char *prog, const char *run_dir, const char *ifname)
{
	char path[512];
	pid_t child, wg = -1;
	int pfd[2], logfd, pidfd, status;

	snprintf(path, sizeof(path), "%s/wireguard-go.%s.log", run_dir, ifname);
	logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (logfd < 0)
		log_warn("wg", "cannot open %s: %s", path, strerror(errno));
	if (pipe2(pfd, O_CLOEXEC) < 0)
		goto out;
	child = fork();
	if (child == 0) {
		setsid();
		wg = fork();
		if (wg == 0)
			exec_wireguard_go(prog, ifname, logfd);
		_exit(write(pfd[1], &wg, sizeof(wg)) == sizeof(wg) ? 0 : 1);
	}
	close(pfd[1]);
	if (child > 0) {
		waitpid(child, &status, 0);
		if (read(pfd[0], &wg, sizeof(wg)) != sizeof(wg))
			wg = -1;
	}
	close(pfd[0]);
	snprintf(path, sizeof(path), "%s/wireguard-go.%s.pid", run_dir, ifname);
	pidfd = wg > 0 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)
		       : -1;
	if (pidfd >= 0) {
		dprintf(pidfd, "%d\n", (int)wg);
		close(pidfd);
	}
out:
	if (logfd >= 0)
		close(logfd);
	return wg;
}

static void launcher(int fd, const char *prog, const char *run_dir)
{
	char ifname[IFNAMSIZ];
	ssize_t n;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	while ((n = recv(fd, ifname, sizeof(ifname), 0)) > 0) {
		pid_t wg;

		if (n == sizeof(ifname) || memchr(ifname, '/', (size_t)n))
			break;
		ifname[n] = '\0';
		wg = spawn(prog, run_dir, ifname);
		if (send(fd, &wg, sizeof(wg), MSG_NOSIGNAL) != sizeof(wg))
			break;
	}
	_exit(0);
}

int wgspawn_start(struct wgspawn *sp, const char *prog, const char *run_dir)
{
	int sv[2];

	sp->fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	sp->pid = fork();
	if (sp->pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (sp->pid == 0) {
		/* Keep stderr for the log, drop every other descriptor of the agent. */
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		close_range(4, ~0U, 0);
		launcher(3, prog, run_dir);
	}
	close(sv[1]);
	sp->fd = sv[0];
	return 0;
}

int wgspawn_run(struct wgspawn *sp, const char *ifname, pid_t *pid)
{
	struct pollfd pfd = { .fd = sp->fd, .events = POLLIN };

	if (sp->fd < 0)
		return -ENOTCONN;
	if (send(sp->fd, ifname, strlen(ifname), MSG_NOSIGNAL) < 0)
		return -errno;
	if (poll(&pfd, 1, 5000) <= 0)
		return -ETIMEDOUT;
	if (recv(sp->fd, pid, sizeof(*pid), 0) != sizeof(*pid))
		return -EPIPE;
	return *pid > 0 ? 0 : -ECHILD;
}

void wgspawn_stop(struct wgspawn *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
}

// SPDX-License-Identifier: MIT
#include "sandbox.h"

#include <errno.h>
#include <linux/sockios.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* What the loop needs, from strace of a running agent (both backends, /test,
 * STUN, clients, interface rebuild, exit). */
static const char *const allowed[] = {
	/* memory, time, exit */
	"brk", "mmap", "munmap", "mremap", "madvise", "clock_gettime", "clock_nanosleep",
	"nanosleep", "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask",
	"getpid", "gettid", "kill", "futex", "getrandom",
	"restart_syscall", /* poll resumed after SIGSTOP/SIGCONT or a debugger */
	/* descriptors */
	"read", "write", "writev", "close", "fstat", "newfstatat", "fcntl",
	"poll", "ppoll", "unlink",
	/* sockets: control, STUN, /test, netlink, UAPI, the launcher */
	"socket", "bind", "listen", "accept4", "connect", "getsockname",
	"setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "shutdown",
};

/* Async-signal-safe: no stdio, no malloc. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[96] = "wgagent: seccomp: system call ";
	char num[12];
	size_t len = strlen(msg);
	int n = si->si_syscall, i = 0;

	do
		num[i++] = (char)('0' + n % 10);
	while ((n /= 10) && i < (int)sizeof(num));
	while (i)
		msg[len++] = num[--i];
	memcpy(msg + len, " is not allowed; exiting\n", 26);
	if (write(2, msg, strlen(msg)) < 0)
		_exit(159);
	_exit(159);
}

int sandbox_enter(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	scmp_filter_ctx ctx;
	sigset_t sys;
	int ret = 0;

	/* TRAP, not KILL: the handler names the call in the log. */
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);

		if (nr == __NR_SCMP_ERROR)
			continue;
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (ret)
			goto out;
	}
	/* if_nametoindex(): the only ioctl the agent makes. */
	ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
			       (struct scmp_arg_cmp){ .arg = 1, .op = SCMP_CMP_EQ,
						      .datum_a = SIOCGIFINDEX, .datum_b = 0 });
	if (ret)
		goto out;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || sigprocmask(SIG_UNBLOCK, &sys, NULL) < 0) {
		ret = -errno;
		goto out;
	}
	ret = seccomp_load(ctx);
	if (ret)
		log_err("agent", "cannot load the seccomp filter: %s", strerror(-ret));
out:
	seccomp_release(ctx);
	return ret;
}

// SPDX-License-Identifier: MIT
#include "caps.h"

#include <cap-ng.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <unistd.h>

bool caps_have(int cap)
{
	capng_get_caps_process();
	return capng_have_capability(CAPNG_EFFECTIVE, (unsigned)cap) != 0;
}

/* Lock the securebits while CAP_SETPCAP is still ours: uid 0 never means
 * capabilities again (NOROOT), a uid change never touches them
 * (NO_SETUID_FIXUP, so no keep-caps dance), and keep-caps stays off. */
static int lock_securebits(void)
{
	unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
			     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED;

	return prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0 ? -errno : 0;
}

int caps_become(uid_t uid, gid_t gid, bool *locked)
{
	bool switching = getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid;
	bool setpcap;
	int ret;

	*locked = false;
	capng_get_caps_process();
	setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	if (switching && (!capng_have_capability(CAPNG_EFFECTIVE, CAP_SETUID) ||
			  !capng_have_capability(CAPNG_EFFECTIVE, CAP_SETGID) || !setpcap))
		return -EPERM;
	if (setpcap) {
		ret = lock_securebits();
		if (ret)
			return ret;
		*locked = true;
	}
	capng_clear(CAPNG_SELECT_BOTH);
	/* Inheritable too: the wireguard-go launcher raises it as ambient. */
	if (capng_update(CAPNG_ADD,
			 CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE | CAPNG_BOUNDING_SET,
			 CAP_NET_ADMIN))
		return -EPERM;
	/* The bounding set can only shrink while we still hold CAP_SETPCAP. */
	if (setpcap && capng_apply(CAPNG_SELECT_BOUNDS))
		return -EPERM;
	if (switching && (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
			  setresuid(uid, uid, uid) < 0))
		return -errno;
	if (capng_apply(CAPNG_SELECT_CAPS))
		return -EPERM;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

int caps_raise_ambient(void)
{
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0 ? -errno : 0;
}

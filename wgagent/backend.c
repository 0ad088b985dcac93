// SPDX-License-Identifier: MIT
#include "backend.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rtnl.h"
#include "wgnl.h"
#include "wguapi.h"
#include "wgspawn.h"

int backend_mode_parse(const char *s)
{
	if (!strcmp(s, "auto"))
		return BACKEND_AUTO;
	if (!strcmp(s, "kernel"))
		return BACKEND_KERNEL;
	if (!strcmp(s, "userspace"))
		return BACKEND_USERSPACE;
	return -1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Have the launcher start wireguard-go, then wait until its UAPI socket answers. */
static int start_wireguard_go(const struct backend_opts *o)
{
	struct wg_device *dev = NULL;
	pid_t wg;
	int ret = wgspawn_run(o->spawn, o->ifname, &wg);

	if (ret) {
		log_err("wg", "cannot start %s: %s", o->wireguard_go, strerror(-ret));
		return ret;
	}
	for (int i = 0; i < 200; i++) {
		if (wguapi_get_device(o->ifname, &dev) == 0) {
			wg_device_free(dev);
			log_info("wg", "started %s for %s (pid %d, log %s/wireguard-go.%s.log)",
				 o->wireguard_go, o->ifname, (int)wg, o->run_dir, o->ifname);
			return 0;
		}
		if (kill(wg, 0) < 0 && errno == ESRCH)
			break;
		sleep_ms(25);
	}
	log_err("wg", "%s did not bring up %s; see %s/wireguard-go.%s.log", o->wireguard_go,
		o->ifname, o->run_dir, o->ifname);
	kill(wg, SIGTERM);
	return -EIO;
}

static int adopt(const struct backend_opts *o, struct wg_backend **be)
{
	char kind[32];
	struct wg_device *dev = NULL;
	int ret = rtnl_link_kind(o->ifname, kind, sizeof(kind));

	if (ret)
		return ret;
	if (!strcmp(kind, "wireguard") && o->mode != BACKEND_USERSPACE) {
		*be = &wgnl_backend;
		return 0;
	}
	if (o->mode != BACKEND_KERNEL && wguapi_get_device(o->ifname, &dev) == 0) {
		wg_device_free(dev);
		*be = &wguapi_backend;
		return 0;
	}
	log_err("wg", "interface %s exists but is not a WireGuard interface this agent can drive "
		      "(kind \"%s\", mode %s)", o->ifname, kind,
		o->mode == BACKEND_AUTO ? "auto" : o->mode == BACKEND_KERNEL ? "kernel" : "userspace");
	return -EEXIST;
}

int backend_setup(const struct backend_opts *o, const uint8_t private_key[WG_KEY_LEN],
		  struct wg_backend **be, uint32_t *ifindex, bool *adopted)
{
	struct wg_device *cur = NULL, *change = NULL;
	int ret;

	*adopted = false;
	ret = adopt(o, be);
	if (ret == 0) {
		*adopted = true;
	} else if (ret != -ENODEV) {
		return ret;
	} else {
		ret = o->mode == BACKEND_USERSPACE ? -EOPNOTSUPP : rtnl_link_add_wireguard(o->ifname);
		if (ret == 0) {
			*be = &wgnl_backend;
		} else if (o->mode == BACKEND_KERNEL) {
			log_err("wg", "cannot create kernel WireGuard interface %s: %s", o->ifname,
				strerror(-ret));
			return ret;
		} else {
			if (o->mode == BACKEND_AUTO)
				log_info("wg", "kernel has no WireGuard (%s); using %s", strerror(-ret),
					 o->wireguard_go);
			ret = start_wireguard_go(o);
			if (ret)
				return ret;
			*be = &wguapi_backend;
		}
	}
	ret = (*be)->get(*be, o->ifname, &cur);
	if (ret) {
		log_err("wg", "cannot read %s: %s", o->ifname, strerror(-ret));
		return ret;
	}
	change = wg_device_new(o->ifname);
	if (!change) {
		ret = -ENOMEM;
		goto out;
	}
	if (!(cur->flags & WGDEV_HAS_PRIVATE_KEY) ||
	    memcmp(cur->private_key, private_key, WG_KEY_LEN)) {
		if (*adopted)
			log_warn("wg", "%s had another key; setting this node's key (sessions reset)",
				 o->ifname);
		change->flags |= WGDEV_HAS_PRIVATE_KEY;
		memcpy(change->private_key, private_key, WG_KEY_LEN);
	}
	if (cur->listen_port != o->listen_port) {
		change->flags |= WGDEV_HAS_LISTEN_PORT;
		change->listen_port = o->listen_port;
	}
	if (change->flags) {
		ret = (*be)->set(*be, change);
		if (ret) {
			log_err("wg", "cannot configure %s: %s", o->ifname, strerror(-ret));
			goto out;
		}
	}
	ret = rtnl_link_index(o->ifname, ifindex);
	if (!ret)
		ret = rtnl_link_up(*ifindex, o->mtu);
	if (ret) {
		log_err("wg", "cannot bring up %s: %s", o->ifname, strerror(-ret));
		goto out;
	}
	log_info("wg", "backend %s, interface %s %s with %zu peers, port %u", (*be)->name, o->ifname,
		 *adopted ? "adopted" : "created", cur->n_peers, o->listen_port);
out:
	wg_device_free(cur);
	wg_device_free(change);
	return ret;
}

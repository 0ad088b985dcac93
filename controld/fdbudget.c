// SPDX-License-Identifier: MIT
#include "fdbudget.h"

#include <errno.h>

#include "httpd.h"
#include "loop.h"

unsigned fdbudget_need(void)
{
	return LOOP_MAX_CONNECTIONS * LOOP_FDS_PER_CONNECTION + HTTPD_MAX_CONNECTIONS +
	       HTTPD_MAX_STATUS_CONNECTIONS + FDBUDGET_SPARE;
}

int fdbudget_apply(unsigned need, rlim_t *soft)
{
	struct rlimit r;
	int ret = 0;

	if (getrlimit(RLIMIT_NOFILE, &r) < 0)
		return -errno;
	if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < need) {
		rlim_t want = r.rlim_max != RLIM_INFINITY && r.rlim_max < need ? r.rlim_max : need;

		if (want > r.rlim_cur) {
			struct rlimit n = {.rlim_cur = want, .rlim_max = r.rlim_max};

			if (setrlimit(RLIMIT_NOFILE, &n) < 0) {
				ret = -errno;
				goto out;
			}
			r.rlim_cur = want;
		}
		if (r.rlim_cur < need)
			ret = -ERANGE;
	}
out:
	*soft = r.rlim_cur;
	return ret;
}

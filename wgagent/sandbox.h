/* SPDX-License-Identifier: MIT */
/*
 * sandbox: the agent's seccomp allowlist (libseccomp). Only the system calls
 * its event loop and an interface rebuild make are allowed; anything else
 * logs the call's number and kills the agent (the supervisor restarts it and
 * it adopts the interface), rather than return an error a compromised agent
 * could probe around.
 */
#ifndef P2PWG_SANDBOX_H
#define P2PWG_SANDBOX_H

/* Install the filter for this process (no_new_privs must be set). 0 or -errno. */
int sandbox_enter(void);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * config: controld's settings, from environment variables (as a container
 * user sets them) and command-line flags (which win). Every value is checked
 * at start; a bad one is refused with a message naming it.
 */
#ifndef P2PWG_CONFIG_H
#define P2PWG_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_STUN 4

struct config {
	char gist_url[2048];
	struct in_addr overlay_net;
	uint8_t overlay_len;
	unsigned base_offset;
	struct sockaddr_in listen; /* HTTP server for /node.json etc. */
	char agent_socket[108];
	char stun_servers[CONFIG_MAX_STUN][256]; /* "host:port" */
	int n_stun;
	unsigned poll_interval_s;
	unsigned test_interval_s;
	unsigned stun_interval_s;
	unsigned http_timeout_ms;
	char ca_bundle[1024]; /* "" = system default */
	int log_level;
	bool allow_http;
	bool allow_root;
	char self_url[2048]; /* optional: this node's own URL in the list */
	struct sockaddr_in status_listen; /* /status and /metrics; sin_port 0: off */
	unsigned leave_after; /* full polls without this node before it leaves the mesh */
	char registry[2100]; /* "0x<address>@<JSON-RPC URL>": the list from a contract */
	/* attested membership (attest.h) */
	char dstack_socket[108];          /* the dstack guest agent's socket */
	char verifier_url[2048];          /* "" = no admission policy */
	char allow_app_ids[2048];         /* comma separated hex, "" = any */
	char allow_compose_hashes[2048];  /* comma separated hex, "" = any */
	unsigned attest_max_age_s;        /* a quote older than this is stale */
	bool relay;                 /* relay through peers' URLs when direct fails */
	unsigned relay_after_s;     /* no handshake this long: relay */
	unsigned relay_keepalive_s; /* keepalive on relay streams */
	unsigned relay_max;         /* relayed peers at most */
	unsigned relay_rate;        /* bytes/s per stream and direction */
};

/*
 * Fill c from envp (NULL-terminated "NAME=value" strings, e.g. environ) and
 * then argv. Returns 0 to run, 1 if --help or --version was printed (to out),
 * or -EINVAL after writing one line naming the bad setting to err.
 */
int config_parse(struct config *c, int argc, char **argv, char **envp, FILE *out, FILE *err);

#endif

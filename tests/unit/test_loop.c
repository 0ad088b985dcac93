// SPDX-License-Identifier: MIT
/* loop: what libcurl keeps per peer once node.json fetches are over. Peers
 * are 127.0.0.x (distinct hosts, distinct connections, as node.json URLs
 * are); the server, h2o over TLS offering HTTP/2 as a peer's nginx does,
 * runs in a child process so that only the client's memory is counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "loop.h"

#define PEERS 40
#define BIG_CYCLE 240 /* a cycle of a mesh near its size limit */

#if defined(__SANITIZE_ADDRESS__)
#define COUNTS_HEAP 0 /* ASan's allocator: mallinfo2 says nothing */
#else
#define COUNTS_HEAP 1
#endif

static char dir[] = "/tmp/p2pwg-test-loop.XXXXXX";
static char ca[sizeof(dir) + 16];

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	static const char doc[] = "{\"wg_pubkey\": \"x\"}";

	req->res.status = 200;
	req->res.reason = "OK";
	h2o_send_inline(req, doc, sizeof(doc) - 1);
	return 0;
}

static h2o_accept_ctx_t accept_ctx;

static void on_accept(h2o_socket_t *listener, const char *err)
{
	h2o_socket_t *sock;

	while (!err && (sock = h2o_evloop_socket_accept(listener)))
		h2o_accept(&accept_ctx, sock);
}

/* The server's child: h2o with TLS, h2 and http/1.1 by ALPN, on fd. */
static void serve(int fd)
{
	static h2o_globalconf_t conf;
	static h2o_context_t ctx;
	h2o_hostconf_t *host;
	h2o_handler_t *h;
	SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
	char path[sizeof(dir) + 16];

	h2o_config_init(&conf);
	host = h2o_config_register_host(&conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	h = h2o_create_handler(h2o_config_register_path(host, "/", 0), sizeof(*h));
	h->on_req = on_req;
	h2o_context_init(&ctx, h2o_evloop_create(), &conf);
	snprintf(path, sizeof(path), "%s/srv.pem", dir);
	if (!ssl || SSL_CTX_use_certificate_chain_file(ssl, path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ssl, path, SSL_FILETYPE_PEM) != 1)
		_exit(1);
	h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols);
	accept_ctx = (h2o_accept_ctx_t){.ctx = &ctx, .hosts = conf.hosts, .ssl_ctx = ssl};
	h2o_socket_read_start(h2o_evloop_socket_create(ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ),
			      on_accept);
	for (;;)
		h2o_evloop_run(ctx.loop, INT32_MAX);
}

/* A key and a certificate for 127.0.0.1 .. 127.0.0.(PEERS + 1), by the
 * openssl tool as the benchmarks make theirs. */
static void make_cert(void)
{
	char cmd[2048], *p = cmd;

	assert_non_null(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/srv.pem", dir);
	p += sprintf(p,
		     "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		     "-nodes -days 1 -subj /CN=test -keyout k.pem -out c.pem -addext "
		     "subjectAltName=IP:127.0.0.1",
		     dir);
	for (int i = 2; i <= PEERS + 1; i++)
		p += sprintf(p, ",IP:127.0.0.%d", i);
	sprintf(p, " 2>/dev/null && cat c.pem k.pem >srv.pem");
	assert_int_equal(system(cmd), 0);
}

struct round {
	struct loop *l;
	int left, ok;
	size_t peak; /* heap in use, the most seen as transfers ended */
};

static void on_done(void *arg, const struct fetch_result *r)
{
	struct round *rd = arg;
	size_t inuse = mallinfo2().uordblks;

	if (inuse > rd->peak)
		rd->peak = inuse;
	if (r->code == CURLE_OK && r->status == 200)
		rd->ok++;
	else
		fprintf(stderr, "fetch: %s (HTTP %ld)\n", r->error, r->status);
	if (--rd->left == 0)
		loop_stop(rd->l);
}

static size_t peak;

static bool keep; /* fetch_round's fetches keep their connections */

/* Fetch from peers first .. first+n-1 at once (past 127.0.0.PEERS+1, which
 * the certificate names, the addresses come round again); returns how many
 * answered. */
static int fetch_round(struct loop *l, uint16_t port, int first, int n)
{
	struct fetch_opts o = {.timeout_ms = 5000, .max_bytes = 4096, .ca_bundle = ca,
			       .keep_alive = keep};
	struct round rd = {.l = l, .left = n};
	char url[64];

	for (int i = first; i < first + n; i++) {
		snprintf(url, sizeof(url), "https://127.0.0.%d:%u/node.json", 1 + (i - 1) % (PEERS + 1),
			 port);
		assert_non_null(fetch_start(l, url, &o, on_done, &rd));
	}
	loop_run(l);
	peak = rd.peak;
	return rd.ok;
}

static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

/* Resident memory, what ps shows. */
static size_t rss(void)
{
	unsigned long size = 0, pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu %lu", &size, &pages), 2);
	fclose(f);
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* loop_free leaves the evloop to process exit; a test tears it down. */
static void loop_teardown(struct loop *l)
{
	h2o_evloop_t *ev = loop_h2o(l);

	loop_free(l);
	h2o_evloop_destroy(ev);
}

/* A child serving (run, which never returns) a port of its own; returns its
 * pid, *port set. */
static pid_t start_child(uint16_t *port, void (*run)(int fd))
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t child;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 256), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* also when an assertion ends the test */
		run(fd);
	}
	close(fd);
	*port = ntohs(a.sin_port);
	return child;
}

/* The server's child (h2o over TLS) on a port of its own. */
static pid_t start_server(uint16_t *port)
{
	return start_child(port, serve);
}

/* The start of a test: a new certificate and the server's child on *port. */
static pid_t test_begin(uint16_t *port)
{
	strcpy(dir, "/tmp/p2pwg-test-loop.XXXXXX"); /* mkdtemp used the last one */
	make_cert();
	return start_server(port);
}

/* The end of a test: the loop torn down, the server's child gone, the
 * certificates removed. */
static void test_end(struct loop *l, pid_t child)
{
	int status;

	loop_teardown(l);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	snprintf(ca, sizeof(ca), "rm -rf %s", dir);
	assert_int_equal(system(ca), 0);
}

/* What stays allocated per peer after a cycle of fetches to PEERS peers
 * (idle connections included) is what controld's memory grows by per peer. */
static void test_per_peer_memory_after_fetches(void **state)
{
	struct loop *l = loop_new();
	size_t before, after, after2, rss0, rss2;
	uint16_t port;
	pid_t child;

	make_cert();
	child = start_server(&port);
	assert_non_null(l);

	/* The first peer pays for what every later one shares (TLS library
	 * state, the CA store). */
	assert_int_equal(fetch_round(l, port, 1, 1), 1);
	before = heap_in_use();
	rss0 = rss();
	assert_int_equal(fetch_round(l, port, 2, PEERS), PEERS);
	after = heap_in_use();
	/* Twice: a second cycle reuses what the first left, it must not grow. */
	assert_int_equal(fetch_round(l, port, 2, PEERS), PEERS);
	after2 = heap_in_use();
	rss2 = rss();
	print_message("per peer: heap %zd bytes after a cycle, %zd after a second, %zd during; "
		      "resident %zd after both\n",
		      (ssize_t)(after - before) / PEERS, (ssize_t)(after2 - before) / PEERS,
		      (ssize_t)(peak - before) / PEERS, ((ssize_t)rss2 - (ssize_t)rss0) / PEERS);
	if (COUNTS_HEAP) {
		assert_true(after - before < (size_t)PEERS * 16 * 1024);
		assert_true(after2 - before < (size_t)PEERS * 16 * 1024);
		/* The memory a cycle used while it ran (~80 KiB per peer) goes back
		 * to the system, but for pages that what outlives it pins. */
		assert_true(rss2 < rss0 + (size_t)PEERS * 48 * 1024);
	}

	/* Every HTTPS fetch of the cycles shared one read of the bundle. */
	assert_int_equal(loop_ca_loads(l), 1);

	test_end(l, child);
}

/* A cycle of n fetches from a trimmed heap: its peak stays within what the
 * LOOP_TLS_STARTING in flight allow (~80 KiB a TLS connection). */
static void check_cycle_peak(struct loop *l, uint16_t port, int n)
{
	size_t before;

	malloc_trim(0);
	before = heap_in_use();
	assert_int_equal(fetch_round(l, port, 2, n), n);
	print_message("peak heap during a cycle of %d: %zu KiB\n", n, (peak - before) / 1024);
	if (COUNTS_HEAP)
		assert_true(peak - before < (size_t)LOOP_TLS_STARTING * 100 * 1024);
}

/* A cycle's memory while it runs: https fetches start LOOP_TLS_STARTING at a
 * time, not every peer at once. */
static void test_cycle_peak_memory_bounded(void **state)
{
	struct loop *l = loop_new();
	uint16_t port;
	pid_t child;

	child = test_begin(&port);
	assert_non_null(l);
	assert_int_equal(fetch_round(l, port, 1, 1), 1);
	check_cycle_peak(l, port, PEERS);
	/* A cycle of 240 (6 fetches from each address): the fetches waiting
	 * for a starting slot hold their request, not a libcurl handle (2.4 MiB
	 * at its peak when each waiting one held its handle; ~1.25 MiB now). */
	check_cycle_peak(l, port, BIG_CYCLE);

	test_end(l, child);
}

static int stall_socket(bool black_hole, uint16_t *port, int *filler);

static void on_never(void *arg, const struct fetch_result *r)
{
	(void)arg;
	fail_msg("the held probe ended: %s", r->error);
}

/* A cycle's memory goes back to the system when its https fetches are over,
 * though plain http /test probes are still in flight: at a few hundred peers
 * some always are (a peer that is down holds one for its whole timeout), and
 * the heap stayed at every cycle's peak (~1.5 MiB more resident at 244
 * peers). */
static void test_cycle_memory_returned_with_probe_in_flight(void **state)
{
	struct fetch_opts po = {.timeout_ms = 60000, .max_bytes = 4096, .allow_http = true};
	struct loop *l = loop_new();
	size_t rss0, rss1;
	uint16_t port, sport;
	char url[64];
	int filler, sfd;
	void *probe;
	pid_t child;

	child = test_begin(&port);
	assert_non_null(l);
	assert_int_equal(fetch_round(l, port, 1, 1), 1);
	/* A /test probe to a peer that takes the connection and never answers. */
	sfd = stall_socket(false, &sport, &filler);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/test", sport);
	probe = fetch_start(l, url, &po, on_never, NULL);
	assert_non_null(probe);
	malloc_trim(0);
	rss0 = rss();
	assert_int_equal(fetch_round(l, port, 2, BIG_CYCLE), BIG_CYCLE);
	rss1 = rss();
	print_message("resident after a cycle of %d, a probe in flight: %+zd KiB (peak heap %zu KiB)\n",
		      BIG_CYCLE, ((ssize_t)rss1 - (ssize_t)rss0) / 1024, peak / 1024);
	if (COUNTS_HEAP)
		assert_true(rss1 < rss0 + 400 * 1024);
	fetch_cancel(l, probe);
	close(sfd);
	test_end(l, child);
}

struct timed {
	struct loop *l;
	int left, ok;
	uint64_t t0, first_ok, last_ok;
};

static void on_timed(void *arg, const struct fetch_result *r)
{
	struct timed *td = arg;

	if (r->code == CURLE_OK && r->status == 200) {
		td->last_ok = loop_now(td->l) - td->t0;
		if (!td->ok++)
			td->first_ok = td->last_ok;
	}
	if (--td->left == 0)
		loop_stop(td->l);
}

/* A listening socket (127.0.1.x: a host per peer, as node.json URLs are)
 * that never accepts; *port set. With
 * black_hole, its queue is filled first, so that later connects go
 * unanswered (a peer that drops every packet); else the kernel completes
 * each connection and the ClientHello is never answered. */
static int stall_socket(bool black_hole, uint16_t *port, int *filler)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, black_hole ? 0 : 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	*filler = -1;
	if (black_hole) {
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*filler = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(*filler, (struct sockaddr *)&a, sizeof(a)), 0);
	}
	return fd;
}

#define STALL_TIMEOUT_MS 4000
#define STALLED (LOOP_TLS_STARTING + 8) /* more than there are starting slots */

/* STALLED peers that never answer (more than there are starting slots),
 * then PEERS live ones: how long until every live one was read, and until
 * the cycle was over. */
static void stall_cycle(bool black_hole, bool named, uint64_t *first, uint64_t *live, uint64_t *end)
{
	enum { TIMEOUT_MS = STALL_TIMEOUT_MS };
	struct fetch_opts o = {.timeout_ms = TIMEOUT_MS, .max_bytes = 4096};
	struct loop *l = loop_new();
	struct timed td = {.l = l, .left = STALLED + PEERS};
	uint16_t port, hport;
	int hole, filler;
	char url[64];
	pid_t child;

	child = test_begin(&port);
	o.ca_bundle = ca;
	hole = stall_socket(black_hole, &hport, &filler);
	td.t0 = loop_now(l);
	for (int i = 0; i < STALLED; i++) {
		if (named)
			snprintf(url, sizeof(url), "https://stall%d.test:%u/node.json", i + 1, hport);
		else
			snprintf(url, sizeof(url), "https://127.0.1.%d:%u/node.json", i + 1, hport);
		assert_non_null(fetch_start(l, url, &o, on_timed, &td));
	}
	for (int i = 2; i < PEERS + 2; i++) {
		snprintf(url, sizeof(url), "https://127.0.0.%d:%u/node.json", i, port);
		assert_non_null(fetch_start(l, url, &o, on_timed, &td));
	}
	loop_run(l);
	*end = loop_now(l) - td.t0;
	*first = td.first_ok;
	*live = td.last_ok;
	print_message("%s%s: first live peer read after %" PRIu64 " ms, all after %" PRIu64
		      " ms; cycle over after %" PRIu64 " ms\n", black_hole ? "black-holed" : "silent TLS",
		      named ? " (by name)" : "", *first, *live, *end);
	assert_int_equal(td.ok, PEERS);
	/* One timeout for the whole cycle: a fetch that waited for its turn has
	 * what is left of its timeout (at least half), so the stalled ones that
	 * started last end with the first (not LOOP_TLS_HANDSHAKE_MS later). */
	assert_true(*end < TIMEOUT_MS + 700);

	if (filler >= 0)
		close(filler);
	close(hole);
	test_end(l, child);
}

/* Black-holed peers (no answer to the connect) hold a starting slot for
 * LOOP_TLS_SLOW_MS only: live peers queued behind more of them than there
 * are slots are read long before the black-holed ones time out (not after:
 * the bound leaves room for a slow, sanitized build). */
static void test_black_holed_peers_do_not_hold_live_ones(void **state)
{
	uint64_t first, live, end;

	stall_cycle(true, false, &first, &live, &end);
	assert_true(live < STALL_TIMEOUT_MS);
}

/* This process alone sees a hosts file naming the stalled peers
 * stall<i>.test (127.0.1.<i>), as a real list names its nodes: false
 * without the rights to (not root). */
static bool private_hosts(void)
{
	char path[] = "/tmp/p2pwg-test-hosts.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	bool ok = false;

	if (!f)
		return false;
	for (int i = 1; i <= STALLED; i++)
		fprintf(f, "127.0.1.%d stall%d.test\n", i, i);
	if (!fclose(f) && geteuid() == 0 && !unshare(CLONE_NEWNS) &&
	    !mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) &&
	    !mount(path, "/etc/hosts", NULL, MS_BIND, NULL))
		ok = true;
	unlink(path);
	return ok;
}

/* The same with peers named, as every real list names them: libcurl first
 * waits to read its resolver's socket pair, which is no connection, and a
 * black-holed peer still holds its slot for LOOP_TLS_SLOW_MS, not
 * LOOP_TLS_HANDSHAKE_MS (it did: live ones read after the first 16 had held
 * theirs for a second, and a 245-peer discovery took twice as long). */
static void test_black_holed_named_peers_do_not_hold_live_ones(void **state)
{
	uint64_t first, live, end;

	if (!private_hosts())
		skip();
	stall_cycle(true, true, &first, &live, &end);
	/* The first live one, not the last: how long the last takes after the
	 * slots came free is the machine's load (a loaded sanitized build read
	 * them in 800 ms), the slots' release is what is tested. */
	assert_true(first < LOOP_TLS_HANDSHAKE_MS);
}

/* A server that takes the connection and never answers the handshake holds
 * a slot for LOOP_TLS_HANDSHAKE_MS, then the live ones get theirs. */
static void test_silent_tls_peers_hold_slots_briefly(void **state)
{
	uint64_t first, live, end;

	stall_cycle(false, false, &first, &live, &end);
	assert_true(live < STALL_TIMEOUT_MS);
}

/* keep_alive: the next cycle to the same peers reuses every connection (no
 * TLS handshake, ~3 ms of CPU each); without it every read connects anew. */
static void test_keep_alive_reuses_connections(void **state)
{
	struct loop *l = loop_new();
	unsigned long opened;
	uint16_t port;
	pid_t child;

	child = test_begin(&port);
	assert_non_null(l);

	keep = false;
	assert_int_equal(fetch_round(l, port, 2, PEERS), PEERS);
	opened = loop_connections_opened(l);
	assert_int_equal(fetch_round(l, port, 2, PEERS), PEERS);
	assert_int_equal(loop_connections_opened(l) - opened, PEERS);

	keep = true;
	assert_int_equal(fetch_round(l, port, 2, PEERS), PEERS);
	opened = loop_connections_opened(l);
	assert_int_equal(fetch_round(l, port, 2, PEERS), PEERS);
	assert_int_equal(fetch_round(l, port, 2, PEERS), PEERS);
	print_message("kept: %lu new connections for two more cycles of %d\n",
		      loop_connections_opened(l) - opened, PEERS);
	assert_int_equal(loop_connections_opened(l) - opened, 0);
	keep = false;

	test_end(l, child);
}

static void on_verdict(void *arg, const struct fetch_result *r)
{
	struct round *rd = arg;

	rd->ok = r->code == CURLE_OK && r->status == 200;
	if (!rd->ok)
		print_message("fetch: %s (HTTP %ld)\n", r->error, r->status);
	loop_stop(rd->l);
}

/* The shared store still decides: a bundle that did not sign the server's
 * certificate fails the fetch, and does not leak into the right one's. */
static void test_ca_store_verifies(void **state)
{
	struct loop *l = loop_new();
	uint16_t port;
	int status;
	char other[sizeof(dir) + 16], cmd[512], url[64];
	struct fetch_opts o = {.timeout_ms = 5000, .max_bytes = 4096};
	struct round rd = {.l = l};
	pid_t child;

	strcpy(dir, "/tmp/p2pwg-test-loop.XXXXXX"); /* the first test used the template */
	make_cert();
	snprintf(other, sizeof(other), "%s/other.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
		 "-nodes -days 1 -subj /CN=test -keyout ok.pem -out other.pem "
		 "-addext subjectAltName=IP:127.0.0.1 2>/dev/null",
		 dir);
	assert_int_equal(system(cmd), 0);
	child = start_server(&port);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/node.json", port);

	for (int i = 0; i < 2; i++) {
		o.ca_bundle = other;
		assert_non_null(fetch_start(l, url, &o, on_verdict, &rd));
		loop_run(l);
		assert_false(rd.ok);
		o.ca_bundle = ca;
		assert_non_null(fetch_start(l, url, &o, on_verdict, &rd));
		loop_run(l);
		assert_true(rd.ok);
	}
	assert_int_equal(loop_ca_loads(l), 2);

	loop_teardown(l);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static char tls_error[CURL_ERROR_SIZE];

/* A plain HTTP server's answer to whatever comes first (a TLS hello). */
static void answer_plain_http(int fd)
{
	static const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
	char buf[1024];
	int c = accept(fd, NULL, NULL);

	if (c >= 0 && read(c, buf, sizeof(buf)) > 0 &&
	    write(c, answer, sizeof(answer) - 1) == (ssize_t)(sizeof(answer) - 1))
		sleep(5);
	_exit(0);
}

static void on_tls_error(void *arg, const struct fetch_result *r)
{
	struct round *rd = arg;

	rd->ok = r->code == CURLE_OK;
	snprintf(tls_error, sizeof(tls_error), "%s", r->error);
	loop_stop(rd->l);
}

/* loop_global_init (as controld starts): a TLS failure still explains
 * itself in the log, while the texts of OpenSSL's other libraries, which
 * libcurl's own initialisation loads (~0.2 MiB of controld's memory), are
 * not. Here an https URL whose server speaks plain HTTP, a common slip in
 * a list. */
static void test_tls_errors_still_read(void **state)
{
	struct loop *l = loop_new();
	struct round rd = {.l = l};
	struct fetch_opts o = {.timeout_ms = 5000, .max_bytes = 4096};
	char url[64];
	uint16_t port;
	int status;
	pid_t child = start_child(&port, answer_plain_http);

	snprintf(url, sizeof(url), "https://127.0.0.1:%u/node.json", port);
	assert_non_null(fetch_start(l, url, &o, on_tls_error, &rd));
	loop_run(l);
	print_message("https to a plain http server: %s\n", tls_error);
	assert_false(rd.ok);
	assert_non_null(strstr(tls_error, "wrong version number"));
	assert_non_null(ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER)));
	assert_null(ERR_reason_error_string(ERR_PACK(ERR_LIB_X509, 0, X509_R_NO_CERTIFICATE_OR_CRL_FOUND)));

	loop_teardown(l);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
}

struct stamp {
	struct loop *l;
	uint64_t t0, at;
	bool stop;
};

static void on_stamp(void *arg)
{
	struct stamp *s = arg;

	s->at = loop_now(s->l) - s->t0;
	if (s->stop)
		loop_stop(s->l);
}

/* A timer with slack waits for company: it fires with the next wake-up
 * after its time (here another timer's), and alone at its time plus its
 * slack, never before its time. */
static void test_slack_timer_shares_a_wake_up(void **state)
{
	struct loop *l = loop_new();
	struct stamp a = {.l = l, .stop = true}, b = {.l = l};
	struct loop_timer ta = {.cb = on_stamp, .arg = &a}, tb = {.cb = on_stamp, .arg = &b};

	a.t0 = b.t0 = loop_now(l);
	loop_timer_arm_slack(l, &ta, 50, 1000);
	loop_timer_arm(l, &tb, 300);
	loop_run(l);
	print_message("slack: due at 50 ms, fired at %" PRIu64 " ms with a timer of 300 ms (%" PRIu64
		      ")\n", a.at, b.at);
	assert_true(a.at >= 300 && a.at == b.at);

	a = (struct stamp){.l = l, .t0 = loop_now(l), .stop = true};
	loop_timer_arm_slack(l, &ta, 50, 250);
	loop_run(l);
	print_message("slack: due at 50 ms, alone, fired at %" PRIu64 " ms\n", a.at);
	assert_true(a.at >= 300 && a.at < 1000);

	loop_timer_remove(l, &ta);
	loop_timer_remove(l, &tb);
	loop_teardown(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls_errors_still_read),
	    cmocka_unit_test(test_slack_timer_shares_a_wake_up),
	    cmocka_unit_test(test_per_peer_memory_after_fetches),
	    cmocka_unit_test(test_ca_store_verifies),
	    cmocka_unit_test(test_cycle_peak_memory_bounded),
	    cmocka_unit_test(test_cycle_memory_returned_with_probe_in_flight),
	    cmocka_unit_test(test_keep_alive_reuses_connections),
	    cmocka_unit_test(test_black_holed_peers_do_not_hold_live_ones),
	    cmocka_unit_test(test_silent_tls_peers_hold_slots_briefly),
	    /* last: it leaves this process in a mount namespace of its own */
	    cmocka_unit_test(test_black_holed_named_peers_do_not_hold_live_ones),
	};

	if (loop_global_init()) /* as controld starts */
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

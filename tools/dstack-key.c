// SPDX-License-Identifier: MIT
/*
 * p2pwg-dstack-key: derive this node's WireGuard key from the dstack app's
 * KMS identity (guest agent /GetKey, path "p2pwg/wireguard/<instance id>") and
 * write it where wgagent reads it (<dir>/private.key: `wg genkey` format, mode
 * 0600, owned by the user running this, replaced atomically). Run once before
 * wgagent, as wgagent's user. Without a guest agent it changes nothing and
 * exits 0, so the same init step works off dstack. The key is never printed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "guestagent.h"

#define KEY_NAME "private.key"

struct buf {
	char *p;
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	char *p;

	if (b->len + len > GUESTAGENT_MAX_BYTES)
		return 0;
	p = realloc(b->p, b->len + len + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, data, len);
	b->p = p;
	b->len += len;
	p[b->len] = '\0';
	return len;
}

/* One request to the guest agent; body NULL: GET. 0 or -EIO (message printed). */
static int call(const char *socket, const char *path, const char *body, struct buf *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[64], err[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;

	if (!c)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://dstack%s", path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (body) {
		h = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK || status != 200 || !out->p) {
		fprintf(stderr, "p2pwg-dstack-key: %s: %s\n", path,
			rc != CURLE_OK ? (err[0] ? err : curl_easy_strerror(rc))
				       : "unexpected answer");
		return -EIO;
	}
	return 0;
}

/* Write the key as `wg genkey` does, atomically, into dirfd. 0 or -errno. */
static int write_key(int dirfd, const uint8_t key[32])
{
	char tmp[64], line[B64_KEY_LEN + 2];
	int fd, ret = 0;
	size_t n;

	snprintf(tmp, sizeof(tmp), ".%s.%d", KEY_NAME, (int)getpid());
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	b64_key_encode(key, line);
	strcat(line, "\n");
	n = strlen(line);
	if (write(fd, line, n) != (ssize_t)n || fchmod(fd, 0600) || fsync(fd))
		ret = -errno ? -errno : -EIO;
	explicit_bzero(line, sizeof(line));
	close(fd);
	if (!ret && renameat(dirfd, tmp, dirfd, KEY_NAME))
		ret = -errno;
	if (ret)
		unlinkat(dirfd, tmp, 0);
	else
		fsync(dirfd);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: p2pwg-dstack-key [--socket /var/run/dstack.sock] [--dir /var/lib/p2pwg]\n"
		"Derives this node's WireGuard key from the dstack guest agent (/GetKey, path\n"
		"p2pwg/wireguard/<instance id>) and writes <dir>/private.key for wgagent.\n"
		"Run as wgagent's user. Without a guest agent: changes nothing, exits 0.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
					     {"dir", required_argument, NULL, 'd'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *socket = "/var/run/dstack.sock", *dir = "/var/lib/p2pwg";
	struct guestagent_info info;
	struct buf b = {0};
	char why[200], path[GUESTAGENT_ID_MAX + 32], *req = NULL;
	uint8_t key[32];
	struct stat st;
	int opt, dirfd = -1, ret = 1;

	while ((opt = getopt_long(argc, argv, "s:d:h", opts, NULL)) != -1) {
		if (opt == 's')
			socket = optarg;
		else if (opt == 'd')
			dir = optarg;
		else {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (stat(socket, &st) || !S_ISSOCK(st.st_mode)) {
		printf(
		    "p2pwg-dstack-key: no dstack guest agent at %s; leaving the key to wgagent\n",
		    socket);
		return 0;
	}
	umask(077);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "p2pwg-dstack-key: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0 || fstat(dirfd, &st) || st.st_uid != geteuid() || (st.st_mode & 022)) {
		fprintf(stderr,
			"p2pwg-dstack-key: %s must be a directory of this user, not writable by "
			"others\n",
			dir);
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (call(socket, "/Info", NULL, &b))
		goto out;
	if (guestagent_parse_info(b.p, b.len, &info, why, sizeof(why)) || !info.instance_id[0]) {
		fprintf(stderr, "p2pwg-dstack-key: /Info: %s\n", why[0] ? why : "no instance_id");
		goto out;
	}
	/* Every instance of an app gets the same key for the same path: the
	 * instance id makes it this node's own. */
	snprintf(path, sizeof(path), "p2pwg/wireguard/%s", info.instance_id);
	req = guestagent_key_request(path, "wireguard");
	free(b.p);
	b = (struct buf){0};
	if (!req || call(socket, "/GetKey", req, &b))
		goto out;
	if (guestagent_parse_key(b.p, b.len, key, why, sizeof(why))) {
		fprintf(stderr, "p2pwg-dstack-key: /GetKey: %s\n", why);
		goto out;
	}
	/* X25519 clamping, as `wg genkey` writes keys. */
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
	ret = write_key(dirfd, key);
	explicit_bzero(key, sizeof(key));
	if (ret) {
		fprintf(stderr, "p2pwg-dstack-key: writing %s/%s: %s\n", dir, KEY_NAME,
			strerror(-ret));
		ret = 1;
		goto out;
	}
	printf("p2pwg-dstack-key: %s/%s derived from the app's KMS key (path %s)\n", dir, KEY_NAME,
	       path);
out:
	if (b.p)
		explicit_bzero(b.p, b.len);
	free(b.p);
	free(req);
	if (dirfd >= 0)
		close(dirfd);
	return ret;
}

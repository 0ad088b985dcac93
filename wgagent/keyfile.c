// SPDX-License-Identifier: MIT
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"

int keyfile_public(const uint8_t priv[32], uint8_t pub[32])
{
	EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	size_t len = 32;
	int ret = 0;

	if (!pkey)
		return -EINVAL;
	if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 || len != 32)
		ret = -EINVAL;
	EVP_PKEY_free(pkey);
	return ret;
}

int keyfile_generate(uint8_t priv[32])
{
	if (getrandom(priv, 32, 0) != 32)
		return errno ? -errno : -EIO;
	/* RFC 7748 clamping, as `wg genkey` stores it. */
	priv[0] &= 248;
	priv[31] = (priv[31] & 127) | 64;
	return 0;
}

static int load(int dirfd, uint8_t priv[32])
{
	char buf[B64_KEY_LEN + 3];
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = openat(dirfd, KEYFILE_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	/* Ours alone: a key planted by another user is not this node's. */
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid()) {
		ret = -EPERM;
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	ret = b64_key_decode(buf, priv);
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return ret;
}

static int store(int dirfd, const uint8_t priv[32])
{
	char buf[B64_KEY_LEN + 2];
	const char *tmp = KEYFILE_NAME ".new";
	int fd, ret = 0;

	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	b64_key_encode(priv, buf);
	buf[B64_KEY_LEN] = '\n';
	if (write(fd, buf, B64_KEY_LEN + 1) != B64_KEY_LEN + 1 || fsync(fd) < 0)
		ret = errno ? -errno : -EIO;
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	/* Rename last, so a crash never leaves a half-written key behind. */
	if (!ret && renameat(dirfd, tmp, dirfd, KEYFILE_NAME) < 0)
		ret = -errno;
	if (ret)
		unlinkat(dirfd, tmp, 0);
	else
		fsync(dirfd);
	return ret;
}

int keyfile_load_or_create(const char *dir, uint8_t priv[32], uint8_t pub[32], bool *created)
{
	int dirfd, ret;

	*created = false;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	ret = load(dirfd, priv);
	if (ret == -ENOENT) {
		ret = keyfile_generate(priv);
		if (!ret)
			ret = store(dirfd, priv);
		*created = !ret;
	}
	if (!ret)
		ret = keyfile_public(priv, pub);
	if (ret)
		explicit_bzero(priv, 32);
	close(dirfd);
	return ret;
}

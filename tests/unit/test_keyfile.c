// SPDX-License-Identifier: MIT
/* keyfile: the node's key pair on disk, in a fresh mkdtemp directory per test. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "b64.h"
#include "keyfile.h"

/* RFC 7748 section 6.1: Alice's key pair. */
static const uint8_t alice_priv[32] = {
	0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
	0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
};
static const uint8_t alice_pub[32] = {
	0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
	0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a,
};
#define ALICE_B64 "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo"

struct tmp {
	char root[64];
	char dir[128];       /* root/state, not created yet */
	char file[192];      /* dir/private.key */
};

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->root, sizeof(t->root), "/tmp/p2pwg-keyfile-XXXXXX");
	if (!mkdtemp(t->root))
		return -1;
	snprintf(t->dir, sizeof(t->dir), "%s/state", t->root);
	snprintf(t->file, sizeof(t->file), "%s/" KEYFILE_NAME, t->dir);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmp *t = *state;
	char path[256];

	unlink(t->file);
	snprintf(path, sizeof(path), "%s.new", t->file);
	unlink(path);
	rmdir(t->dir);
	rmdir(t->root);
	free(t);
	return 0;
}

static void write_key_file(const struct tmp *t, const char *content, mode_t mode)
{
	int fd;

	assert_true(mkdir(t->dir, 0700) == 0 || errno == EEXIST);
	fd = open(t->file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_create_then_load(void **state)
{
	struct tmp *t = *state;
	uint8_t priv[32], pub[32], priv2[32], pub2[32], dec[32];
	char buf[128];
	bool created = false;
	struct stat st;
	ssize_t n;
	int fd;

	assert_int_equal(keyfile_load_or_create(t->dir, priv, pub, &created), 0);
	assert_true(created);
	assert_int_equal(stat(t->dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(t->file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	/* As `wg genkey` writes it: 44 base64 characters and a newline. */
	fd = open(t->file, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_int_equal(n, 45);
	buf[n] = '\0';
	assert_int_equal(buf[44], '\n');
	buf[44] = '\0';
	assert_int_equal(b64_key_decode(buf, dec), 0);
	assert_memory_equal(dec, priv, 32);
	/* Clamped (RFC 7748). */
	assert_int_equal(priv[0] & 7, 0);
	assert_int_equal(priv[31] & 0xc0, 0x40);
	/* Second start: the same key. */
	assert_int_equal(keyfile_load_or_create(t->dir, priv2, pub2, &created), 0);
	assert_false(created);
	assert_memory_equal(priv2, priv, 32);
	assert_memory_equal(pub2, pub, 32);
	assert_int_equal(keyfile_public(priv, pub2), 0);
	assert_memory_equal(pub2, pub, 32);
}

static void test_existing_dir(void **state)
{
	struct tmp *t = *state;
	uint8_t priv[32], pub[32];
	bool created = false;

	/* A key written by `wg genkey` is accepted as it is. */
	write_key_file(t, ALICE_B64 "=\n", 0600);
	assert_int_equal(keyfile_load_or_create(t->dir, priv, pub, &created), 0);
	assert_false(created);
	assert_memory_equal(priv, alice_priv, 32);
	assert_memory_equal(pub, alice_pub, 32);
}

static void test_rfc7748_vector(void **state)
{
	uint8_t pub[32];

	assert_int_equal(keyfile_public(alice_priv, pub), 0);
	assert_memory_equal(pub, alice_pub, 32);
}

static void test_world_readable_refused(void **state)
{
	struct tmp *t = *state;
	uint8_t priv[32], pub[32];
	bool created = true;
	char k[B64_KEY_LEN + 2];

	assert_int_equal(keyfile_generate(priv), 0);
	b64_key_encode(priv, k);
	strcat(k, "\n");
	write_key_file(t, k, 0644);
	assert_int_equal(keyfile_load_or_create(t->dir, priv, pub, &created), -EPERM);
	assert_false(created);
	write_key_file(t, k, 0640);
	assert_int_equal(keyfile_load_or_create(t->dir, priv, pub, &created), -EPERM);
	write_key_file(t, k, 0400);
	assert_int_equal(keyfile_load_or_create(t->dir, priv, pub, &created), 0);
}

static void test_garbage_refused(void **state)
{
	static const char *bad[] = {
		"hello\n",
		"",
		ALICE_B64 "\n",           /* 43 characters */
		ALICE_B64 "==\n",         /* 45 characters */
		"!" ALICE_B64 "\n",       /* not base64 */
		ALICE_B64 "=garbage\n",
		"                                            \n",
	};
	struct tmp *t = *state;
	uint8_t priv[32], pub[32];
	bool created = true;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_key_file(t, bad[i], 0600);
		assert_int_equal(keyfile_load_or_create(t->dir, priv, pub, &created), -EINVAL);
		assert_false(created);
	}
}

static void test_generate_clamped(void **state)
{
	uint8_t a[32], b[32];

	for (int i = 0; i < 64; i++) {
		assert_int_equal(keyfile_generate(a), 0);
		assert_int_equal(a[0] & 7, 0);
		assert_int_equal(a[31] & 0x80, 0);
		assert_int_equal(a[31] & 0x40, 0x40);
	}
	assert_int_equal(keyfile_generate(b), 0);
	assert_memory_not_equal(a, b, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_then_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_dir, setup, teardown),
		cmocka_unit_test(test_rfc7748_vector),
		cmocka_unit_test_setup_teardown(test_world_readable_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_refused, setup, teardown),
		cmocka_unit_test(test_generate_clamped),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

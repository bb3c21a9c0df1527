/* auth.c - job tokens and HMAC proofs (libsodium). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <spoke/client.h>
#include <spoke/errors.h>

#include "auth.h"
#include "errmsg.h"
#include "file.h"
#include "log.h"

int spk_auth_init(void)
{
	if (sodium_init() < 0) {
		spk_err("libsodium failed to initialise");
		return SPOKE_EAUTH;
	}
	return 0;
}

void spk_random(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

int spk_token_generate(char *out, size_t cap)
{
	uint8_t raw[32];

	if (cap < sizeof(raw) * 2 + 1)
		return SPOKE_ENOSPC;
	spk_random(raw, sizeof(raw));
	sodium_bin2hex(out, cap, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	return 0;
}

/* Reads the token from path; `what` names where path came from in the
 * messages ("SPOKE_TOKEN_FILE=" or "token file "). */
static int read_file(const char *what, const char *path, char *out, size_t cap)
{
	struct stat st;
	ssize_t n;
	int fd, rc;

	if (cap < 2)
		return spk_fail(SPOKE_ENOSPC, "no room for a token");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		return spk_fail(rc, "%s%s: cannot open it: %s", what, path, strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		rc = spk_fail(-errno, "%s%s: %s", what, path, strerror(errno));
		goto out_close;
	}
	if (st.st_mode & 077) {
		rc = spk_fail(SPOKE_EAUTH,
			      "%s%s: readable or writable by group or others (mode %o): chmod 600 it",
			      what, path, (unsigned)(st.st_mode & 0777));
		goto out_close;
	}
	n = read(fd, out, cap - 1);
	if (n < 0) {
		rc = spk_fail(-errno, "%s%s: cannot read it: %s", what, path, strerror(errno));
		goto out_close;
	}
	out[n] = '\0';
	if ((size_t)n == cap - 1 && !strpbrk(out, "\r\n")) {
		rc = spk_fail(SPOKE_ENOSPC, "%s%s: token longer than %zu bytes", what, path,
			      cap - 2);
		goto out_close;
	}
	out[strcspn(out, "\r\n")] = '\0';
	if (out[0] == '\0') {
		rc = spk_fail(SPOKE_EAUTH, "%s%s: the file is empty (no token in its first line)",
			      what, path);
		goto out_close;
	}
	rc = 0;
out_close:
	if (rc < 0)
		sodium_memzero(out, cap);
	close(fd);
	return rc;
}

/* The processes (hub, agent) that call these have no caller to tell: they
 * log the reason too. */
static int logged(int rc)
{
	if (rc < 0)
		spk_err("%s", spoke_errmsg());
	return rc;
}

int spk_token_read_file(const char *path, char *out, size_t cap)
{
	return logged(read_file("token file ", path, out, cap));
}

int spk_token_find(const char *explicit_token, char *out, size_t cap)
{
	const char *env;

	if (!explicit_token)
		explicit_token = getenv("SPOKE_TOKEN");
	if (explicit_token && *explicit_token) {
		if (strlen(explicit_token) >= cap)
			return spk_fail(SPOKE_ENOSPC, "the job token is longer than %zu bytes",
					cap - 1);
		strcpy(out, explicit_token);
		return 0;
	}
	env = getenv("SPOKE_TOKEN_FILE");
	if (env && *env)
		return read_file("SPOKE_TOKEN_FILE=", env, out, cap);
	return spk_fail(SPOKE_EAUTH, "no job token: set SPOKE_TOKEN or SPOKE_TOKEN_FILE");
}

int spk_token_load(const char *explicit_token, char *out, size_t cap)
{
	return logged(spk_token_find(explicit_token, out, cap));
}

int spk_token_write_file(const char *path, const char *token)
{
	char line[SPK_TOKEN_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", token), rc = SPOKE_ENOSPC;

	if (n >= 0 && (size_t)n < sizeof(line))
		rc = spk_file_replace(path, line, (size_t)n, 0600);
	sodium_memzero(line, sizeof(line));
	return rc;
}

void spk_auth_mac(uint8_t mac[SPK_MAC_SIZE], const char *token, const char *label,
		  const uint8_t nonce[SPK_NONCE_SIZE])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)token, strlen(token));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, strlen(label));
	crypto_auth_hmacsha256_update(&st, nonce, SPK_NONCE_SIZE);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

bool spk_auth_verify(const uint8_t mac[SPK_MAC_SIZE], const char *token, const char *label,
		     const uint8_t nonce[SPK_NONCE_SIZE])
{
	uint8_t want[SPK_MAC_SIZE];
	bool ok;

	spk_auth_mac(want, token, label, nonce);
	ok = sodium_memcmp(want, mac, SPK_MAC_SIZE) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

/* auth.c - job tokens and HMAC proofs (libsodium). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <spoke/actor.h>
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

/* ---- the handshake ---- */

#define PROOF_LABEL "spoke-handshake-2"

void spk_ident_actor(char out[SPK_IDENT_MAX], const char *name, uint64_t incarnation)
{
	snprintf(out, SPK_IDENT_MAX, "actor:%.*s:%llu", SPOKE_ACTOR_NAME_MAX - 1, name,
		 (unsigned long long)incarnation);
}

/* One length-prefixed field of a proof. */
static void proof_field(crypto_auth_hmacsha256_state *st, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);
	uint8_t len[4] = { (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };

	crypto_auth_hmacsha256_update(st, len, sizeof(len));
	crypto_auth_hmacsha256_update(st, (const unsigned char *)s, n);
}

void spk_auth_proof(uint8_t mac[SPK_MAC_SIZE], const char *token, enum spk_role role,
		    const char *ident, const uint8_t nonce_s[SPK_NONCE_SIZE],
		    const uint8_t nonce_c[SPK_NONCE_SIZE])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)token, strlen(token));
	proof_field(&st, PROOF_LABEL);
	proof_field(&st, role == SPK_ROLE_CLIENT ? "client" : "server");
	proof_field(&st, ident);
	crypto_auth_hmacsha256_update(&st, nonce_s, SPK_NONCE_SIZE);
	crypto_auth_hmacsha256_update(&st, nonce_c, SPK_NONCE_SIZE);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

bool spk_auth_proof_ok(const uint8_t mac[SPK_MAC_SIZE], const char *token, enum spk_role role,
		       const char *ident, const uint8_t nonce_s[SPK_NONCE_SIZE],
		       const uint8_t nonce_c[SPK_NONCE_SIZE])
{
	uint8_t want[SPK_MAC_SIZE];
	bool ok;

	spk_auth_proof(want, token, role, ident, nonce_s, nonce_c);
	ok = sodium_memcmp(want, mac, SPK_MAC_SIZE) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

/* An identity from a peer: no space, control character or NUL (the rule of
 * actor names: proto.c), not empty unless may_be_empty, and the whole
 * payload consumed. */
static int get_ident(spoke_view *v, char ident[SPK_IDENT_MAX], bool may_be_empty)
{
	const char *s;
	size_t n;

	ident[0] = '\0';
	if (spoke_view_get_str(v, &s, &n) < 0 || n >= SPK_IDENT_MAX || (!n && !may_be_empty) ||
	    spoke_view_remaining(v))
		return SPOKE_EPROTO;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
			return SPOKE_EPROTO;
	memcpy(ident, s, n);
	ident[n] = '\0';
	return 0;
}

static int get_raw(spoke_view *v, uint8_t *dst, size_t n)
{
	const void *p;

	if (spoke_view_get_raw(v, &p, n) < 0)
		return SPOKE_EPROTO;
	memcpy(dst, p, n);
	return 0;
}

int spk_auth_pack(spoke_buf *b, const struct spk_auth_msg *m)
{
	spoke_buf_put_raw(b, m->mac, SPK_MAC_SIZE);
	spoke_buf_put_raw(b, m->nonce, SPK_NONCE_SIZE);
	return spoke_buf_put_str(b, m->ident);
}

int spk_auth_unpack(spoke_view *v, struct spk_auth_msg *m)
{
	if (get_raw(v, m->mac, SPK_MAC_SIZE) < 0 || get_raw(v, m->nonce, SPK_NONCE_SIZE) < 0)
		return SPOKE_EPROTO;
	return get_ident(v, m->ident, false);
}

int spk_auth_ok_pack(spoke_buf *b, const struct spk_auth_msg *m)
{
	spoke_buf_put_raw(b, m->mac, SPK_MAC_SIZE);
	return spoke_buf_put_str(b, m->ident);
}

int spk_auth_ok_unpack(spoke_view *v, struct spk_auth_msg *m)
{
	memset(m->nonce, 0, sizeof(m->nonce));
	if (get_raw(v, m->mac, SPK_MAC_SIZE) < 0)
		return SPOKE_EPROTO;
	return get_ident(v, m->ident, true);
}

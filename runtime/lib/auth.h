/* auth.h - the job token and the handshake that proves it.
 *
 * Every connection starts (frame.h has the layouts):
 *   server -> HELLO(nonce_s)
 *   client -> AUTH(proof_c, nonce_c, ident)
 *   server -> AUTH_OK(status, proof_s, its own ident)
 * ident names the server the client means to reach: "hub", or
 * "actor:NAME:INCARNATION" for a worker (the incarnation is the hub's id of
 * that start, never reused in a job).  Each proof is an HMAC-SHA256 under
 * the token over both nonces, the prover's role and that identity, in an
 * encoding where every variable field carries its length
 * (spk_auth_proof).  The server refuses a client whose ident is not its
 * own, so a proof made for one server is worth nothing at another: a
 * process that relays a client's handshake to a different server (a
 * squatter on a dead worker's port forwarding to the hub) gets refused.
 * The token itself never crosses the wire.  HMAC-SHA256 and the random
 * bytes come from libsodium. */
#ifndef SPOKE_AUTH_H
#define SPOKE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spoke/serializer.h>

#define SPK_TOKEN_MAX 256
#define SPK_NONCE_SIZE 32
#define SPK_MAC_SIZE 32

int spk_auth_init(void);
void spk_random(void *buf, size_t n);
/* A fresh token: 64 hex characters. */
int spk_token_generate(char *out, size_t cap);
/* The token: `explicit` if not NULL, else $SPOKE_TOKEN, else the contents
 * of the file $SPOKE_TOKEN_FILE (which must not be open to group or
 * others).  On failure spoke_errmsg() says which source was tried and what
 * is wrong with it (missing, unreadable, open to others, empty, too long):
 * SPOKE_EAUTH for no token, -errno for a file that cannot be read,
 * SPOKE_ENOSPC for one too long.  spk_token_find is the client's (quiet);
 * spk_token_load and spk_token_read_file (the hub's and agent's) also log
 * the reason. */
int spk_token_find(const char *explicit_token, char *out, size_t cap);
int spk_token_load(const char *explicit_token, char *out, size_t cap);
int spk_token_read_file(const char *path, char *out, size_t cap);
/* Writes the token to path, mode 0600, replacing it atomically. */
int spk_token_write_file(const char *path, const char *token);
/* mac = HMAC-SHA256(token, label || nonce): a transport's cookie proofs,
 * each with labels of its own (rdma.h). */
void spk_auth_mac(uint8_t mac[SPK_MAC_SIZE], const char *token, const char *label,
		  const uint8_t nonce[SPK_NONCE_SIZE]);
bool spk_auth_verify(const uint8_t mac[SPK_MAC_SIZE], const char *token, const char *label,
		     const uint8_t nonce[SPK_NONCE_SIZE]);

/* ---- the handshake ---- */

#define SPK_IDENT_MAX 160 /* "actor:" + a name (127 bytes) + ":" + 20 digits + NUL */
#define SPK_IDENT_HUB "hub"
/* The largest AUTH payload, all a peer may send before it is trusted. */
#define SPK_AUTH_MAX (SPK_MAC_SIZE + SPK_NONCE_SIZE + 4 + SPK_IDENT_MAX)
#define SPK_AUTH_OK_MAX (SPK_MAC_SIZE + 4 + SPK_IDENT_MAX)

enum spk_role { SPK_ROLE_CLIENT, SPK_ROLE_SERVER };

/* "actor:NAME:INCARNATION" into out[SPK_IDENT_MAX]. */
void spk_ident_actor(char out[SPK_IDENT_MAX], const char *name, uint64_t incarnation);

/* A proof: HMAC-SHA256 under the token of
 *   u32 len, "spoke-handshake-2"; u32 len, "client" or "server";
 *   u32 len, ident; nonce_s[32]; nonce_c[32]
 * (lengths little-endian). */
void spk_auth_proof(uint8_t mac[SPK_MAC_SIZE], const char *token, enum spk_role role,
		    const char *ident, const uint8_t nonce_s[SPK_NONCE_SIZE],
		    const uint8_t nonce_c[SPK_NONCE_SIZE]);
bool spk_auth_proof_ok(const uint8_t mac[SPK_MAC_SIZE], const char *token, enum spk_role role,
		       const char *ident, const uint8_t nonce_s[SPK_NONCE_SIZE],
		       const uint8_t nonce_c[SPK_NONCE_SIZE]);

/* AUTH's payload: mac[32] nonce[32] str ident.  AUTH_OK's: mac[32] str
 * ident (the server's own; on a refusal, status in the header's aux, the
 * mac is zeros and ident empty unless the client proved the token).  The
 * unpacks take a whole payload and refuse anything else: SPOKE_EPROTO for a
 * short or long one, an identity that is empty, too long or has a control
 * character (it is logged). */
struct spk_auth_msg {
	uint8_t mac[SPK_MAC_SIZE];
	uint8_t nonce[SPK_NONCE_SIZE]; /* AUTH only */
	char ident[SPK_IDENT_MAX];
};
int spk_auth_pack(spoke_buf *b, const struct spk_auth_msg *m);
int spk_auth_unpack(spoke_view *v, struct spk_auth_msg *m);
int spk_auth_ok_pack(spoke_buf *b, const struct spk_auth_msg *m);
int spk_auth_ok_unpack(spoke_view *v, struct spk_auth_msg *m);

#endif

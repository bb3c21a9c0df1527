/* auth.h - the job token and the handshake that proves it.
 *
 * Every connection starts: server -> HELLO(nonce_s); client ->
 * AUTH(HMAC(token, "spoke-client" || nonce_s), nonce_c); server ->
 * AUTH_OK(HMAC(token, "spoke-server" || nonce_c)).  The token itself never
 * crosses the wire, and each side proves it to the other.  HMAC-SHA256 and
 * the random bytes come from libsodium. */
#ifndef SPOKE_AUTH_H
#define SPOKE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* mac = HMAC-SHA256(token, label || nonce). */
void spk_auth_mac(uint8_t mac[SPK_MAC_SIZE], const char *token, const char *label,
		  const uint8_t nonce[SPK_NONCE_SIZE]);
bool spk_auth_verify(const uint8_t mac[SPK_MAC_SIZE], const char *token, const char *label,
		     const uint8_t nonce[SPK_NONCE_SIZE]);

#define SPK_LABEL_CLIENT "spoke-client"
#define SPK_LABEL_SERVER "spoke-server"
#define SPK_LABEL_RDMA_CLIENT "spoke-rdma-client" /* rdma.h: proving a cookie */
#define SPK_LABEL_RDMA_SERVER "spoke-rdma-server"

#endif

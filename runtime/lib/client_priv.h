/* client_priv.h - what call.c needs of the client: its settings and a lookup. */
#ifndef SPOKE_CLIENT_INTERNAL_H
#define SPOKE_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <spoke/client.h>

#include "auth.h"
#include "sync_conn.h"

/* A client lives until spoke_client_close() and every actor handle opened
 * from it are closed: handles hold a reference (spk_client_hold/drop), so a
 * handle whose client was closed goes on calling its worker; only what
 * needs the hub (a lookup) fails, with SPOKE_ECLOSED. */
struct spoke_client {
	atomic_int refs;
	atomic_bool closed;   /* spoke_client_close() was called */
	pthread_mutex_t lock; /* guards hub, next_id and the tickets */
	struct spk_sync_conn hub;
	uint64_t next_id;
	spoke_ticket **tickets; /* those handed out and not yet released */
	size_t n_tickets, cap_tickets;
	char token[SPK_TOKEN_MAX];
	int timeout_ms;
	int poll_us;
};

void spk_client_hold(spoke_client *c);
void spk_client_drop(spoke_client *c);

/* timeout_ms, or the client's default when it is 0, as a deadline. */
int64_t spk_client_deadline(const spoke_client *c, int timeout_ms);

struct spk_endpoint;
int spk_client_lookup(spoke_client *c, const char *name, struct spk_endpoint *ep, int timeout_ms);

struct spk_status;
/* The hub's STATUS answer (spoke-status): decoded into *out from *raw, a
 * copy of its bytes (both malloc'd: spk_status_free(*out), then free(*raw)).
 * 0 or a negative code, why in spoke_errmsg(). */
int spk_client_status(spoke_client *c, struct spk_status **out, uint8_t **raw, int timeout_ms);

#endif

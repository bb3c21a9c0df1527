/* client_priv.h - what call.c needs of the client: its settings and a locked
 * request to the hub. */
#ifndef SPOKE_CLIENT_INTERNAL_H
#define SPOKE_CLIENT_INTERNAL_H

#include <pthread.h>

#include <spoke/client.h>

#include "auth.h"
#include "chan.h"

struct spoke_client {
	pthread_mutex_t lock; /* guards hub and next_id */
	struct spk_chan hub;
	uint64_t next_id;
	char token[SPK_TOKEN_MAX];
	int timeout_ms;
	int poll_us;
};

/* timeout_ms, or the client's default when it is 0, as a deadline. */
int64_t spk_client_deadline(const spoke_client *c, int timeout_ms);

/* A request to the hub: hub_begin locks and hands a buffer to pack into;
 * hub_roundtrip sends it and receives the REPLY (its payload in *v, valid
 * until hub_end); hub_end unlocks. A negative status of the hub's comes
 * back as the return value, its message in spoke_errmsg(). */
void spk_hub_begin(spoke_client *c, spoke_buf *b);
int spk_hub_roundtrip(spoke_client *c, spoke_buf *b, uint8_t type, int64_t deadline,
		      spoke_view *v);
void spk_hub_end(spoke_client *c);

struct spk_endpoint;
int spk_client_lookup(spoke_client *c, const char *name, struct spk_endpoint *ep, int timeout_ms);

#endif

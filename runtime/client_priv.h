/* client_priv.h - what call.c needs of the client: its settings and a lookup. */
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

struct spk_endpoint;
int spk_client_lookup(spoke_client *c, const char *name, struct spk_endpoint *ep, int timeout_ms);

#endif

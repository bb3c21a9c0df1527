/* spoke/errors.h - error codes.
 *
 * Every Spoke function that can fail returns 0 (or a non-negative count) on
 * success and a negative code on failure: either -errno (for example
 * -ECONNREFUSED) or one of the SPOKE_E* codes below, which lie outside the
 * errno range.  spoke_strerror() names both.
 *
 * Every function returning a status resets the calling thread's
 * spoke_errmsg() (client.h) when it starts; when it fails, the message says
 * why (never empty, never left from an earlier call); when it succeeds, the
 * message is "". */
#ifndef SPOKE_ERRORS_H
#define SPOKE_ERRORS_H

#include <spoke/export.h>

#ifdef __cplusplus
extern "C" {
#endif

enum spoke_error {
	SPOKE_OK = 0,
	SPOKE_EPROTO = -1001,    /* malformed or unexpected frame */
	SPOKE_EVERSION = -1002,  /* peer speaks another protocol version */
	SPOKE_EAUTH = -1003,     /* handshake failed: wrong or missing token */
	SPOKE_ETOOBIG = -1004,   /* message larger than the allowed maximum */
	SPOKE_ENOACTOR = -1005,  /* no actor of that name */
	SPOKE_ENOMETHOD = -1006, /* the actor has no such method */
	SPOKE_EDEAD = -1007,     /* the actor or its connection died */
	SPOKE_ENOTYPE = -1008,   /* no actor type of that name */
	SPOKE_ENORES = -1009,    /* not enough free nodes or GPUs */
	SPOKE_ETIMEDOUT = -1010, /* the timeout passed before an answer */
	SPOKE_ENOTICKET = -1011, /* no gang ticket of that id */
	SPOKE_EEXIST = -1012,    /* an actor of that name exists already */
	SPOKE_ESHORT = -1013,    /* unpack ran past the end of a message */
	SPOKE_ENOSPC = -1014,    /* the caller's buffer is too small */
	SPOKE_ESPAWN = -1015,    /* the worker failed to start or to init */
	SPOKE_EINVAL = -1016,    /* invalid argument */
	SPOKE_EMETHOD = -1017,   /* the method itself returned an error */
	SPOKE_ENOHUB = -1018,    /* no hub address given ($SPOKE_HUB unset) */
	SPOKE_ERDMA = -1019,     /* RDMA unavailable, or its connection failed */
	SPOKE_ECLOSED = -1020,   /* the handle (or its client) was closed first */
	SPOKE_EHUB = -1021,      /* the hub cannot be reached, or the connection to it was lost */
	SPOKE_ESELF = -1022,     /* an actor called itself: it would wait for itself */
	SPOKE_ETRANSPORT = -1023, /* the transport asked for cannot reach the actor */
	SPOKE_ECANCELED = -1024,  /* the call was cancelled */
	SPOKE_EAGAIN = -1025,     /* no room now: try again later */
	SPOKE_EOF = -1026,        /* the stream ended: every chunk was read */
};

/* A static, human-readable description of code (negative), never NULL. */
SPOKE_API const char *spoke_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif

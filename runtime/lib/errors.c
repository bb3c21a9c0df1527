/* errors.c - spoke_strerror(). */
#include <string.h>

#include <spoke/errors.h>

const char *spoke_strerror(int code)
{
	switch (code) {
	case SPOKE_OK: return "success";
	case SPOKE_EPROTO: return "malformed or unexpected message";
	case SPOKE_EVERSION: return "peer speaks another protocol version";
	case SPOKE_EAUTH: return "authentication failed (wrong or missing job token)";
	case SPOKE_ETOOBIG: return "message larger than the allowed maximum";
	case SPOKE_ENOACTOR: return "no actor of that name";
	case SPOKE_ENOMETHOD: return "the actor has no such method";
	case SPOKE_EDEAD: return "the actor or its connection is dead";
	case SPOKE_ENOTYPE: return "no actor type of that name";
	case SPOKE_ENORES: return "not enough free nodes or GPUs";
	case SPOKE_ETIMEDOUT: return "timed out";
	case SPOKE_ENOTICKET: return "no gang ticket of that id";
	case SPOKE_EEXIST: return "an actor of that name exists already";
	case SPOKE_ESHORT: return "message shorter than its contents claim";
	case SPOKE_ENOSPC: return "buffer too small";
	case SPOKE_ESPAWN: return "the worker failed to start";
	case SPOKE_EINVAL: return "invalid argument";
	case SPOKE_EMETHOD: return "the method failed";
	case SPOKE_ENOHUB: return "no hub address (set SPOKE_HUB or spoke_client_opts.hub)";
	case SPOKE_ERDMA: return "RDMA unavailable or its connection failed";
	case SPOKE_ECLOSED: return "closed before it completed";
	case SPOKE_EHUB: return "the hub cannot be reached or the connection to it was lost";
	case SPOKE_ESELF: return "an actor cannot call itself synchronously";
	case SPOKE_ETRANSPORT: return "the transport asked for cannot reach the actor";
	case SPOKE_ECANCELED: return "the call was cancelled";
	case SPOKE_EAGAIN: return "no room now; try again";
	case SPOKE_EOF: return "end of stream";
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

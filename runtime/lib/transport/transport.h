/* transport.h - the one interface every transport implements.
 *
 * Mercury's NA plugins and UCX's uct are the models: a transport is a
 * table of operations (struct spk_transport), and everything above it (the
 * actor handle in call.c, its connection pool, the transport choice, the
 * public API) is written once, with no transport's name in it.  A
 * transport lives in its own folder below this one (tcp/, rdma/, shm/) and
 * owns its hello messages, its frame flags and its wire codecs; a build
 * without one simply has no entry for it in the table (transport.c).
 *
 * Client side.  A connection (struct spk_conn, embedded first in the
 * transport's own struct) reaches one worker, authenticated for one
 * identity (auth.h): every connection starts with the worker's
 * authenticated TCP handshake, and a transport other than TCP asks for
 * itself over it with its hello frame (SPK_RDMA, SPK_SHM) before it moves
 * to its own path.  A connection is used by one thread at a time for
 * synchronous calls (call, call_obj, call_mr: the handle gives each caller
 * a connection of its own from its pool); call_async, future_wait and
 * in_flight are thread-safe (the handle pipelines asynchronous calls on one
 * connection, and the transport locks it no later than the deadline).
 *
 * A connection that breaks is made again by the transport itself on the
 * next call, but only after args->check said that the worker still runs
 * (call.c asks the hub): a worker that died is SPOKE_EDEAD, never a blind
 * reconnect to an address someone else may have taken.
 *
 * Errors: every operation returns 0 or a negative SPOKE_* code with its
 * message in spoke_errmsg() (errmsg.h).  Closing a connection completes
 * every future in flight on it with SPOKE_ECLOSED.
 *
 * Server side (struct spk_server_ops).  The worker serves calls on its
 * libev loop: TCP connections come through its listening socket (the
 * control path every transport starts from); each other transport is
 * started once per worker, answers its hello frame on such a connection,
 * and then serves its own connections, running methods through the
 * worker's spk_method_fn.  A spinning worker calls poll() between looks at
 * its sockets and poll(arm = true) before it sleeps. */
#ifndef SPOKE_TRANSPORT_H
#define SPOKE_TRANSPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spoke/client.h>
#include <spoke/serializer.h>

struct ev_loop;
struct spk_loop_conn;
struct spk_hdr;
struct spk_transport;

/* The base of every transport's connection. */
struct spk_conn {
	const struct spk_transport *t;
};

/* What a connection is made to, and how. */
struct spk_conn_args {
	const char *name;  /* the actor's name, for messages */
	const char *addr;  /* its worker's TCP host:port */
	const char *token; /* the job token */
	const char *ident; /* the worker's identity in handshakes (spk_ident_actor) */
	uint32_t pid;      /* the worker's pid, as the hub knows it */
	int poll_us;       /* spin budget of waits (spoke_actor_set_poll) */
	int timeout_ms;    /* the client's default timeout: a reply begun is
			      received within it, whatever its waiter's deadline */
	/* Before a connection that broke is made again: 0 if the worker still
	 * runs, else the error that fails the call instead (never NULL). */
	int (*check)(void *arg, int64_t deadline);
	void *check_arg;
};

/* The start of every transport's object behind a spoke_mr (mr_): the
 * transport that made it, whose mr_deregister undoes it. */
struct spk_mr_base {
	const struct spk_transport *t;
};

/* A kept call's answer (struct spk_call_origin's answer). */
struct spk_answer {
	uint64_t id;      /* the call's */
	int status;       /* 0, or a negative status as spk_method_fn gives it */
	int code;         /* SPOKE_EMETHOD: the method's own code */
	const char *msg;  /* status < 0: the message, for spk_reply_error_pack */
	const void *data; /* status 0: the reply's bytes */
	size_t len;
};

/* Where a call came from: what the worker needs to answer it later, when
 * its method kept it (spoke_call_defer; an actor with max_concurrency
 * above 1 keeps every call and runs it on a thread of its own).  The
 * transport fills it for every call it hands to spk_method_fn. */
struct spk_call_origin {
	void *conn;  /* the transport's connection, as `answer` and env.gone take it */
	uint64_t id; /* the call's id */
	bool stream; /* its CALL had SPK_CF_STREAM: the caller reads chunks */
	uint32_t ttl_ms; /* its CALL's: the caller's deadline, ms from now (0: none) */
	/* Sends a kept call's REPLY, on the loop's thread and never from inside
	 * a method: 0 once sent (or dropped: the connection is gone), or
	 * SPOKE_EAGAIN when there is no room for it now (the worker tries again
	 * a millisecond later).  Once it is sent the connection's next calls are
	 * served again.  NULL: this connection cannot keep calls (the method
	 * answers at once; spoke_call_defer() returns NULL). */
	int (*answer)(void *conn, const struct spk_answer *a);
	/* Sends one CHUNK of a kept stream call (spoke_stream_emit), on the
	 * loop's thread like answer, always before its REPLY: 0 once sent,
	 * SPOKE_EAGAIN when the client has not taken enough of the earlier
	 * ones (the worker tries again a millisecond later: this is what
	 * throttles a producer whose consumer is slow, so keep the room a
	 * connection may fill small: a few hundred KiB).  NULL: no streams
	 * here (spoke_stream_emit says so). */
	int (*chunk)(void *conn, uint64_t id, const void *data, size_t len);
	/* After a batch of chunks: sends what chunk queued, wakes the client
	 * (NULL: chunk did). */
	void (*flush)(void *conn);
};

/* What spk_method_fn returns when the method kept its call: no REPLY now.
 * The transport then serves no further call of that connection until the
 * call is answered (replies on one connection go in the order of their
 * calls); the request's bytes need not outlive the method (the worker
 * copied what it keeps). */
#define SPK_KEPT 1

/* Runs one method of the worker's actor: reads req, packs into reply;
 * returns 0, SPK_KEPT, or a negative status with its message in msg (and,
 * for SPOKE_EMETHOD, the method's own code in *code), for
 * spk_reply_error_pack. */
typedef int (*spk_method_fn)(const struct spk_call_origin *from, uint32_t method,
			     spoke_view *req, spoke_buf *reply, int *code, char *msg,
			     size_t msg_cap);

/* What the worker gives each transport's server. */
struct spk_server_env {
	struct ev_loop *loop;
	const char *host;  /* the address the worker listens on */
	const char *token; /* the job token */
	const char *ident; /* the worker's identity (spk_ident_actor) */
	bool spin;         /* the worker spins: poll, and arm only before sleeping */
	spk_method_fn run;
	/* A connection that had a kept call in it (SPK_KEPT) is closing: its
	 * kept calls are cancelled and never answered. */
	void (*gone)(void *conn);
	/* A CANCEL came on conn: the call id, if kept, is cancelled (its
	 * answer still goes).  A transport looks ahead for CANCEL frames while
	 * a kept call holds its connection; NULL: none is taken. */
	void (*cancel)(void *conn, uint64_t id);
	uint64_t *frames; /* counts every frame served (the spin loop watches it) */
};

struct spk_server_ops {
	/* The frame type by which a client asks for this transport on an
	 * authenticated TCP connection of the worker's. */
	uint8_t hello_type;
	/* Starts serving; never fails the worker: where the transport cannot
	 * work here, it serves no connection and answers every hello with the
	 * reason.  -ENOMEM alone is an error. */
	int (*start)(void **out, const struct spk_server_env *env);
	void (*stop)(void *srv);
	/* Answers a hello frame h (payload p) that came on connection c. */
	void (*hello)(void *srv, struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *p);
	/* Serves whatever is ready without sleeping; with arm, first asks to be
	 * woken by the loop on the next message.  Returns how many connections
	 * it looked at (0: none).  NULL when the loop's watchers serve it. */
	unsigned (*poll)(void *srv, bool arm);
};

struct spk_transport {
	const char *name; /* "shm", "rdma", "tcp": SPOKE_TRANSPORT, spoke_actor_transport() */
	/* What a handle that asked for this transport by name gets when it
	 * cannot come up (SPOKE_ERDMA; 0: SPOKE_ETRANSPORT). */
	int unavailable;
	/* 0 if the worker may be reachable this way from here at all (this
	 * node has a device; the worker is on this node), else an error and
	 * why: auto mode then skips the transport without trying it. */
	int (*usable)(const struct spk_conn_args *args);
	int (*connect)(struct spk_conn **out, const struct spk_conn_args *args,
		       int64_t deadline);
	void (*close)(struct spk_conn *c);
	/* What the connection runs on, for the handle's log line ("rxe0"). */
	void (*describe)(const struct spk_conn *c, char *buf, size_t cap);
	void (*set_poll)(struct spk_conn *c, int poll_us);

	int (*call)(struct spk_conn *c, uint32_t method, const void *req, size_t req_len,
		    void *reply, size_t cap, size_t *reply_len, int64_t deadline);
	int (*call_obj)(struct spk_conn *c, uint32_t method, const spoke_serializer *req_ser,
			const void *req, const spoke_serializer *rep_ser, void *rep,
			int64_t deadline);
	/* Memory of spoke_mr_register, used in place (NULL: calls copy it). */
	int (*call_mr)(struct spk_conn *c, uint32_t method, const spoke_mr *req, size_t req_off,
		       size_t req_len, spoke_mr *rep, size_t rep_off, size_t cap,
		       size_t *reply_len, int64_t deadline);
	int (*call_async)(struct spk_conn *c, uint32_t method, const void *req, size_t req_len,
			  void *reply, size_t cap, spoke_future *f, int64_t deadline);
	/* A stream call (SPK_CF_STREAM): stream_start sends it; stream_next
	 * receives its next CHUNK into buf (0, *len its size; SPOKE_ENOSPC with
	 * *len the size, the chunk kept for a next call with more room), or its
	 * REPLY (SPOKE_EOF for success, whose body, if any, comes first as a
	 * last chunk; else its failure).  A wait that times out leaves the
	 * stream as it was.  The connection belongs to the stream until
	 * stream_next returned SPOKE_EOF or a failure (then it is ready for
	 * calls again); a stream given up before is abandoned (the worker
	 * sees its caller go: the call is cancelled).  NULL: this
	 * transport has no streams (SPOKE_ETRANSPORT). */
	int (*stream_start)(struct spk_conn *c, uint32_t method, const void *req, size_t req_len,
			    int64_t deadline);
	int (*stream_next)(struct spk_conn *c, void *buf, size_t cap, size_t *len,
			   int64_t deadline);
	/* Gives up what runs on c (a stream) at once: its link to the worker
	 * is dropped (the worker sees its caller go) and made anew on its next
	 * use, without asking the hub (nothing broke). */
	void (*abandon)(struct spk_conn *c);
	/* Gives f up now, if it is in flight on c: it completes with
	 * SPOKE_ECANCELED, its reply is dropped when it comes, and the worker
	 * is told (a CANCEL: the actor sees its call cancelled).  Returns 0.
	 * NULL: the transport cannot tell the worker (f is given up all the
	 * same, by future_wait with a deadline already past). */
	int (*future_cancel)(struct spk_conn *c, spoke_future *f, int64_t deadline);
	/* Waits for f; a wait that times out gives f up (completes it with
	 * SPOKE_ETIMEDOUT; the call keeps its place and its reply is dropped). */
	int (*future_wait)(struct spk_conn *c, spoke_future *f, int64_t deadline);
	/* Whether f is in flight on c (compares pointers only: f may be
	 * uninitialised memory). */
	bool (*in_flight)(struct spk_conn *c, const spoke_future *f);

	/* Makes mr (addr and len set) usable in place by this transport's
	 * calls (NULL: nothing to do); undone by mr_deregister. */
	int (*mr_register)(struct spk_conn *c, spoke_mr *mr);
	/* spoke_mr_alloc: len bytes of memory that this transport's calls use
	 * in place, in *mr (addr, len, mr_), zeroed; mr_deregister frees it.
	 * NULL: call.c allocates plain memory and calls mr_register.  (Shared
	 * memory needs it: only memory both processes can map is in place.) */
	int (*mr_alloc)(struct spk_conn *c, size_t len, spoke_mr *mr);
	void (*mr_deregister)(spoke_mr *mr);

	const struct spk_server_ops *server; /* NULL: the worker's own TCP path */
};

/* ---- the table (transport.c) ---- */

/* The transports of this build, in the order auto mode tries them (same
 * node first, then RDMA, then TCP, which is always last and always there). */
extern const struct spk_transport *const spk_transports[];

/* The transport called name, or NULL (not one, or not in this build). */
const struct spk_transport *spk_transport_find(const char *name);
/* The code of t's failure to come up for a handle that asked for it. */
int spk_transport_unavailable(const struct spk_transport *t);
#define SPK_TRANSPORTS_MAX 8

/* What $SPOKE_TRANSPORT asks for: the transports to try, in order.  Unset
 * or "auto": every transport of this build (spk_transports' order); one
 * name ("rdma"): that one, insisted on; a list ("rdma,tcp"): those, tried
 * in turn like auto's. */
struct spk_transport_choice {
	const struct spk_transport *t[SPK_TRANSPORTS_MAX];
	unsigned n;
	bool insist;
};

/* Reads $SPOKE_TRANSPORT into *out.  A name Spoke does not know is
 * SPOKE_EINVAL naming the value and the choices; one this build lacks is,
 * alone, its unavailable code (SPOKE_ERDMA for rdma: "this Spoke was built
 * without it") and, in a list, skipped (a list of nothing this build has:
 * the first one's code). */
int spk_transport_from_env(struct spk_transport_choice *out);
/* Whether c lets transport t be used (a worker whose setting leaves t out
 * serves no hello of t's, and says why). */
bool spk_transport_allowed(const struct spk_transport_choice *c, const struct spk_transport *t);

/* ---- helpers every transport shares (transport.c) ---- */

/* A serializer failed: keeps its code rc and says what failed (`what`:
 * "packing the request" or "unpacking the reply") for which actor (`who`),
 * with the reason it left in spoke_errmsg(), if any. */
int spk_ser_failed(int rc, const char *what, const char *who);
/* SPOKE_ENOSPC, saying so: a reply of len bytes for a buffer of cap. */
int spk_no_room(size_t len, size_t cap);
/* Takes a connection's lock, waiting no later than deadline: 0, or
 * SPOKE_ETIMEDOUT saying that another thread's call on this `what` handle
 * ("RDMA", "shared-memory") held it. */
int spk_transport_lock(pthread_mutex_t *lock, int64_t deadline, const char *what);
/* Completes f with status: a failure's message (this thread's
 * spoke_errmsg() now) goes with it, into its reply buffer (client.h), but
 * for SPOKE_ENOSPC, whose reply_len is the size of the reply that did not
 * fit. */
void spk_future_complete(spoke_future *f, int status);

#endif

/* spoke/client.h - talking to the hub and calling actors.
 *
 * A client connects to the job's hub (placement, actor names) and, for
 * calls, straight to each actor's worker: the hub and the agents are never
 * on the call path.  Handles are safe to use from many threads at once: a
 * synchronous call takes a connection of its own from the actor handle's
 * pool (lock-free), sends and receives on the caller's thread, and puts the
 * connection back; no thread is started and nothing is allocated on that
 * path once the pool has grown to the number of concurrent callers.
 *
 * Every blocking function takes a timeout in milliseconds (0: the client's
 * default, see spoke_client_opts) and returns 0 or a negative code (see
 * spoke/errors.h); spoke_errmsg() then says more, per thread.  A NULL
 * handle, out-pointer or buffer behind a nonzero length is SPOKE_EINVAL,
 * naming the argument ("spoke_call: req is NULL"), never a crash. */
#ifndef SPOKE_CLIENT_H
#define SPOKE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <spoke/actor.h>
#include <spoke/export.h>
#include <spoke/serializer.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPOKE_MAX_SLOT_GPUS 16
#define SPOKE_NODE_NAME_MAX 64

typedef struct spoke_client spoke_client;
typedef struct spoke_actor spoke_actor;

/* The client's settings.  Each one is checked where it is read, from the
 * options or, where they leave it to the environment, from the variable: a
 * bad value fails spoke_client_open() with SPOKE_EINVAL and a message naming
 * it and the value ("SPOKE_TIMEOUT_MS=abc: expected a positive number of
 * milliseconds").  spoke_client_open() also checks $SPOKE_LOG
 * (error|warn|info|debug) and $SPOKE_MAX_MSG (a size from 4k to 1g), which
 * the library reads later. */
typedef struct spoke_client_opts {
	const char *hub;   /* "host:port"; NULL: $SPOKE_HUB */
	const char *token; /* NULL: $SPOKE_TOKEN, else the file $SPOKE_TOKEN_FILE
	                      (mode 0600 or stricter, the token on its first line) */
	int timeout_ms;    /* default timeout, > 0; 0: $SPOKE_TIMEOUT_MS (> 0) or 10000 */
	int poll_us;       /* spin this long on a reply before sleeping, >= 0;
	                      -1 (or opts NULL): $SPOKE_POLL_US (>= 0), else 0 (block) */
} spoke_client_opts;

typedef struct spoke_resources {
	uint32_t gpus; /* GPUs per actor */
	uint32_t cpus; /* CPUs per actor (bookkeeping only) */
} spoke_resources;

typedef struct spoke_spawn_opts {
	const char *module;    /* actor module (.so) with the type; NULL: the agent's */
	const char *program;   /* or a user program that links the type; NULL: stock worker */
	spoke_resources res;   /* for spoke_spawn; a gang slot brings its own */
	int poll_us;           /* the worker's spin budget, >= 0; -1: $SPOKE_POLL_US or 0 */
	int timeout_ms;        /* until the spawn is acknowledged, > 0; 0: client default */
	/* Restarts (0: none).  When the worker dies without being stopped, its
	 * agent starts it again on the same GPUs under the same name, after
	 * restart_backoff_ms (at most 600000), up to max_restarts times (at most
	 * 65535).  Calls in flight then fail with SPOKE_EDEAD; a handle's next
	 * call asks the hub and reaches the new worker (waiting, within its
	 * timeout, while the actor restarts); lookups meanwhile wait too.  Past
	 * max_restarts the actor is dead and its GPUs free.  A first start that
	 * fails is not retried: the spawn fails. */
	uint32_t max_restarts;
	uint32_t restart_backoff_ms;
} spoke_spawn_opts;

#define SPOKE_MAX_RESTARTS 65535
#define SPOKE_MAX_RESTART_BACKOFF_MS 600000

#define SPOKE_SPAWN_OPTS_INIT { NULL, NULL, { 0, 0 }, -1, 0, 0, 0 }

typedef struct spoke_slot {
	uint32_t rank;       /* global rank in the gang, 0..n_slots-1 */
	uint32_t node_rank;  /* the gang node it belongs to: rank / per_node */
	uint32_t local_rank; /* its index in that gang node: rank % per_node */
	char node[SPOKE_NODE_NAME_MAX]; /* where it is placed */
	uint32_t n_gpus;
	int32_t gpus[SPOKE_MAX_SLOT_GPUS];
} spoke_slot;

typedef struct spoke_ticket {
	uint64_t id;
	uint32_t n_slots;
	spoke_slot slots[];
} spoke_ticket;

typedef struct spoke_node_info {
	char name[SPOKE_NODE_NAME_MAX];
	uint32_t n_gpus;    /* GPUs the node's agent offers */
	uint32_t free_gpus; /* not reserved by a spawn or a gang ticket */
} spoke_node_info;

/* One asynchronous call (spoke_call_async).  The caller owns the struct;
 * it needs no initialisation.  It is "in flight" from a successful
 * spoke_call_async until it completes: when a wait receives its reply,
 * when a wait on it times out (SPOKE_ETIMEDOUT: the call is given up and
 * its reply, when it comes, is dropped), when the connection breaks, or
 * when its handle is closed (SPOKE_ECLOSED).  A complete future may be
 * reused for another call, or simply go out of scope; one in flight must
 * not (spoke_call_async refuses it with SPOKE_EINVAL). */
typedef struct spoke_future {
	int status;       /* after spoke_future_wait: 0 or a negative code */
	size_t reply_len; /* bytes of the reply (may exceed the capacity: ENOSPC) */
	/* private */
	void *reply_;
	size_t cap_;
	uint64_t id_;
	int method_status_; /* spoke_method_status() of a SPOKE_EMETHOD */
	int done_;
	spoke_actor *actor_;
} spoke_future;

/* Why the calling thread's last call failed: every function that returns
 * a status resets it when it starts and, when it fails, leaves a message
 * here (never empty); after a success it is "". */
SPOKE_API const char *spoke_errmsg(void);
/* After a call failed with SPOKE_EMETHOD (the method itself failed): the
 * method's own return code, per thread; 0 after any other result. */
SPOKE_API int spoke_method_status(void);

/* Connects to the hub (opts may be NULL: all from the environment).  *out
 * is NULL after a failure: SPOKE_EINVAL for a bad setting (above),
 * SPOKE_ENOHUB for none, SPOKE_EAUTH for no token, a wrong one, or a token
 * file that is empty or open to others (-errno if it cannot be read; the
 * message names the file and what is wrong), SPOKE_EHUB if the hub cannot
 * be reached (a name that does not resolve, nothing listening, no answer
 * in time: the message says which).
 *
 * Functions below that need the hub fail with SPOKE_EHUB once the
 * connection to it is lost (the hub died, say): it is never reported as a
 * dead actor.  A NULL client, name or out-pointer they cannot work without
 * is SPOKE_EINVAL naming the argument.  Every one resets spoke_errmsg() on
 * entry: "" after a success, a message after a failure. */
SPOKE_API int spoke_client_open(spoke_client **out, const spoke_client_opts *opts);
/* Closes the client: the connection to the hub goes at once, and with it
 * the gang tickets it holds (the hub releases them, stopping their
 * actors; the spoke_ticket structs are freed).  Actor handles opened from
 * it stay valid and go on calling their actors; the client's memory is
 * freed when the last of them is closed.  Until then, what needs the hub
 * (spoke_actor_open, spoke_spawn, spoke_nodes...) on the closed client
 * fails with SPOKE_ECLOSED; once no handle is left, c must not be used. */
SPOKE_API void spoke_client_close(spoke_client *c);

/* The live nodes (registered agents): up to cap of them into out (which
 * may be NULL when cap is 0); returns how many there are (which may exceed
 * cap). */
SPOKE_API int spoke_nodes(spoke_client *c, spoke_node_info *out, size_t cap, int timeout_ms);

/* Starts actor `name` of `type` on a node with room for opts->res, and
 * returns once its init has returned and it listens for calls.  Names
 * (actor and type) are 1 to SPOKE_ACTOR_NAME_MAX - 1 (SPOKE_TYPE_NAME_MAX
 * - 1) bytes with no control character, space or '/', and not "." or "..":
 * else SPOKE_EINVAL.  A name a live actor has is SPOKE_EEXIST.  A refused
 * spawn or launch starts nothing and reserves nothing. */
SPOKE_API int spoke_spawn(spoke_client *c, const char *type, const char *name,
			  const void *args, size_t args_len, const spoke_spawn_opts *opts);
/* Stops an actor started by spoke_spawn or spoke_gang_launch. */
SPOKE_API int spoke_kill(spoke_client *c, const char *name, int timeout_ms);

/* Phase one of a gang: reserves, all or nothing, `nodes` gang nodes with
 * `per_node` slots of `res` each.  Slot r belongs to gang node
 * r / per_node (its node_rank) as local rank r % per_node; its `node` says
 * where it really is.  strict_pack puts each gang node on a node of its
 * own, all its slots there.  Without it the same is tried first; if it does
 * not fit, the gang fits when the nodes have room for all its slots: the
 * gang nodes spread over distinct nodes while there are enough with room
 * (else several share one), and a gang node's share that does not fit on
 * its node spills onto other nodes with room.
 *
 * Each client connection may hold at most 256 tickets and 4096 slots in
 * all, 0-GPU slots included (the hub's --max-tickets, --max-slots):
 * beyond, SPOKE_ENORES saying so.
 *
 * The ticket *out belongs to the client (NULL after a failure): do not
 * free it.  spoke_gang_release() frees it once the hub has released it, or
 * spoke_client_close() does. */
SPOKE_API int spoke_gang_allocate(spoke_client *c, uint32_t nodes, uint32_t per_node,
				  const spoke_resources *res, int strict_pack,
				  spoke_ticket **out, int timeout_ms);
/* Phase two: starts an actor in slot `rank`, pinned to the slot's GPUs.
 * SPOKE_ENOTICKET if c holds no such ticket (released already). */
SPOKE_API int spoke_gang_launch(spoke_client *c, const spoke_ticket *t, uint32_t rank,
				const char *type, const char *name, const void *args,
				size_t args_len, const spoke_spawn_opts *opts);
/* Stops the ticket's actors, frees its slots, and frees t.  A ticket c
 * does not hold (released already, or never from spoke_gang_allocate) is
 * SPOKE_ENOTICKET, and t is not touched: releasing twice is safe.  t is
 * freed once the hub answered: it released the ticket (0), or knows no
 * such ticket (SPOKE_ENOTICKET).  After a timeout or a lost hub
 * (SPOKE_ETIMEDOUT, SPOKE_EHUB) t stays held and valid: release it again,
 * or spoke_client_close() frees it. */
SPOKE_API int spoke_gang_release(spoke_client *c, spoke_ticket *t, int timeout_ms);

/* A handle for calling actor `name`; SPOKE_ENOACTOR if there is none,
 * SPOKE_ECLOSED if c was closed, SPOKE_ESELF (at once) if the calling
 * actor names itself: a worker runs one method at a time, so its call to
 * itself would only wait out its timeout.
 * The handle is bound to the worker the hub names now (this incarnation
 * of the actor): its handshakes name it, and a server that answers as
 * anything else is refused (SPOKE_EAUTH).  Once one of its connections
 * broke, the handle asks the hub before it connects again: if the actor
 * died, or was restarted under the same name, calls fail with SPOKE_EDEAD
 * from then on (open a new handle for the new one); if the hub cannot be
 * asked, with the hub's error (SPOKE_EHUB, SPOKE_ECLOSED after
 * spoke_client_close). */
SPOKE_API int spoke_actor_open(spoke_client *c, const char *name, spoke_actor **out,
			       int timeout_ms);
/* Closes the handle: every future still in flight on it completes with
 * SPOKE_ECLOSED first (a later spoke_future_wait returns that, reading only
 * the future), then its connections and memory go.  No other call on the
 * handle may be running or start; NULL is ignored. */
SPOKE_API void spoke_actor_close(spoke_actor *a);
/* This handle's spin budget on replies, in microseconds (0: block). */
SPOKE_API void spoke_actor_set_poll(spoke_actor *a, int poll_us);

/* Calls method; copies the reply into reply[0..cap) and its size into
 * *reply_len (SPOKE_ENOSPC, with *reply_len set, if it does not fit). */
SPOKE_API int spoke_call(spoke_actor *a, uint32_t method, const void *req, size_t req_len,
			 void *reply, size_t cap, size_t *reply_len, int timeout_ms);
/* Zero-copy form: req_ser->pack writes the request straight into the send
 * buffer, rep_ser->unpack reads the reply in place from the receive buffer.
 * Either serializer may be NULL (empty request, ignored reply).  A failing
 * pack or unpack keeps its own code (its return value, else the buffer's
 * or view's error: SPOKE_ETOOBIG, SPOKE_ESHORT) and spoke_errmsg() says
 * whether packing the request or unpacking the reply failed; a request
 * that failed to pack was not sent. */
SPOKE_API int spoke_call_obj(spoke_actor *a, uint32_t method,
			     const spoke_serializer *req_ser, const void *req,
			     const spoke_serializer *rep_ser, void *rep, int timeout_ms);
/* Asynchronous call on the handle's pipelined connection: many may be in
 * flight; each completes, in order, into its own reply buffer (reply must
 * stay valid until f completes; req is not needed once this returns).  A
 * call made while none is in flight is sent at once; small ones made
 * behind others are gathered (up to 8 KiB over TCP, 16 calls over shared
 * memory) and sent together, one send for many calls: by a wait on any of the handle's futures before it would
 * sleep, by a larger call, or when 8 KiB are gathered.  Flow control is
 * real: a call that finds the connection full receives the replies due
 * meanwhile into their futures, so a window of any size completes (over
 * RDMA, a call waits for one of its 32 credits the same way); the handle
 * remembers each call in flight (16 bytes each, in memory it keeps).
 * Returns 0, or an error that also completes f with it; SPOKE_EINVAL
 * without touching f or the handle if f is still in flight.  Like a wait,
 * it may first wait for another thread's wait on the handle to end its
 * turn (no longer than that wait's timeout). */
SPOKE_API int spoke_call_async(spoke_actor *a, uint32_t method, const void *req,
			       size_t req_len, void *reply, size_t cap, spoke_future *f);
/* Waits for f and returns f->status (a complete future's at once, its
 * message in spoke_errmsg() again).  A failed call's message is kept in
 * its reply buffer where it fits (NUL-terminated, f->reply_len its
 * length; else the wait names the code and says it did not fit),
 * whichever wait received it; for SPOKE_ENOSPC, reply_len is the reply's
 * size.  When the method failed (SPOKE_EMETHOD), spoke_method_status() is
 * its code.  A wait that times out completes f with SPOKE_ETIMEDOUT and
 * gives the call up: its reply is dropped when it comes, and f may be
 * reused or dropped.  A wait may first wait for another thread's call on
 * the same connection to end its turn (no longer than that call's own
 * timeout). */
SPOKE_API int spoke_future_wait(spoke_future *f, int timeout_ms);

/* Cancels an asynchronous call: f completes at once with SPOKE_ECANCELED
 * (a later spoke_future_wait returns it; f may then be reused or
 * dropped), its reply is dropped when it comes, and the actor is told:
 * spoke_call_cancelled() of its kept call turns non-zero and its cancel
 * callback runs (actor.h).  A complete future stays as it is.  Returns 0,
 * or SPOKE_EINVAL for NULL or a future never started. */
SPOKE_API int spoke_future_cancel(spoke_future *f);

/* ---- Streams: a reply in chunks ----
 *
 * A method that produces its reply bit by bit (tokens, as an engine
 * generates them) streams it: the caller reads each chunk as it comes.
 *
 *     spoke_stream *s;
 *     char tok[256];
 *     size_t n;
 *     int rc = spoke_call_stream(a, GENERATE, prompt, len, &s, 0);
 *
 *     while (rc == 0 && (rc = spoke_stream_next(s, tok, sizeof(tok), &n, 0)) == 0)
 *             consume(tok, n);
 *     spoke_stream_close(s);  // rc is SPOKE_EOF when all came, else why not
 *
 * The actor's side is spoke_stream_emit (actor.h).  A stream holds one
 * connection of its handle until it ends, so streams and calls from other
 * threads go on beside it.  Flow control is the transport's: a reader
 * that falls behind leaves the chunks in its connection (a few hundred
 * KiB), and then the actor's emit waits or says SPOKE_EAGAIN; a slow reader
 * never grows the worker's memory. */
typedef struct spoke_stream spoke_stream;

/* Starts a stream call of method with req: *out (allocated; free it with
 * spoke_stream_close) once the request went out.  timeout_ms bounds the
 * start (0: the client's default). */
SPOKE_API int spoke_call_stream(spoke_actor *a, uint32_t method, const void *req,
				size_t req_len, spoke_stream **out, int timeout_ms);
/* The next chunk, in order, into buf: 0 and *len its size; SPOKE_EOF once
 * every chunk was read (the method finished with success); the method's
 * failure (SPOKE_EMETHOD...) or the runtime's as spoke_call would return
 * them; SPOKE_ENOSPC when the chunk is larger than cap (*len says how
 * large: call again with room for it, it is kept); SPOKE_ETIMEDOUT when no
 * chunk came within timeout_ms (the stream goes on: call again);
 * SPOKE_ECANCELED after spoke_stream_cancel.  After SPOKE_EOF or a
 * failure it returns the same again. */
SPOKE_API int spoke_stream_next(spoke_stream *s, void *buf, size_t cap, size_t *len,
				int timeout_ms);
/* Gives the stream up at once: its connection closes, the actor sees its
 * call cancelled (spoke_call_cancelled, the callback of
 * spoke_call_on_cancel, spoke_stream_emit's SPOKE_ECANCELED), and
 * spoke_stream_next returns SPOKE_ECANCELED.  From another thread while a
 * spoke_stream_next runs, it returns at once and that read ends the
 * stream when it returns (with its chunk, or at its timeout), answering
 * SPOKE_ECANCELED.  0, or SPOKE_EINVAL for NULL; a stream that ended
 * already stays ended.  spoke_stream_close must not race a read. */
SPOKE_API int spoke_stream_cancel(spoke_stream *s);
/* Cancels the stream if it has not ended, and frees it (NULL: nothing). */
SPOKE_API void spoke_stream_close(spoke_stream *s);

/* ---- Transport: shared memory, RDMA or TCP ----
 *
 * spoke_actor_open() picks the handle's transport from $SPOKE_TRANSPORT:
 * auto (the default) tries, in this order, shared memory ("shm", when the
 * worker runs on this node), RDMA ("rdma", when both ends have an RDMA
 * device and reach each other over it) and TCP; shm, rdma or tcp insists
 * on that one (the open fails with SPOKE_ETRANSPORT, SPOKE_ERDMA for rdma,
 * and the reason); a comma-separated list ("rdma,tcp") tries those in its
 * order.  $SPOKE_RDMA_DEVICE names the verbs device to use
 * (rxe0, mlx5_0): a route through another device counts as no RDMA.  The
 * choice is logged once per handle, with why the others were not taken (at
 * info level; a fallback from a transport that should have worked, at warn
 * level).
 *
 * Over RDMA a request is packed straight into registered memory and the
 * actor's method reads it and writes its reply in registered memory; larger
 * payloads move by RDMA READ and WRITE with no bounce buffer.  Over shared
 * memory a request is packed into memory both processes map and the method
 * reads it in place.  spoke_call() and spoke_call_async() copy the caller's
 * request in and the reply out, as their signatures ask (over TCP the
 * kernel copies); spoke_call_obj() and spoke_call_mr() copy nothing.  On
 * every transport a synchronous call takes a connection of its own from
 * the handle's pool (connected the first time that many calls run at
 * once), and asynchronous calls pipeline on one. */

/* "shm", "rdma" or "tcp" ("none" for NULL). */
SPOKE_API const char *spoke_actor_transport(const spoke_actor *a);
/* Moves the handle to transport `name` ("shm", "rdma" or "tcp") now,
 * whatever $SPOKE_TRANSPORT says: 0 if it is on it already or moved;
 * SPOKE_ETRANSPORT (SPOKE_ERDMA for rdma) and why if it cannot, the handle
 * unchanged.  Call it before other threads use the handle: asynchronous
 * calls still in flight complete with SPOKE_ECLOSED, and memory registered
 * for the old transport is only remembered (register it again). */
SPOKE_API int spoke_actor_use_transport(spoke_actor *a, const char *name, int timeout_ms);
/* spoke_actor_use_transport(a, "rdma", timeout_ms), under its old name. */
SPOKE_API int spoke_actor_init_rdma(spoke_actor *a, int timeout_ms);

/* Memory of the caller's (a KV-cache block, say) that calls use in place. */
typedef struct spoke_mr {
	void *addr;
	size_t len;
	/* private */
	void *mr_;
	uint32_t lkey_, rkey_;
} spoke_mr;

/* Registers [addr, addr+len) for calls on a's transport.  Over RDMA each
 * of a's connections registers (pins) it the first time a call there uses
 * it, in that connection's own protection domain and with the access of
 * its role in the call only (the actor may only read a request, only write
 * a reply), and keeps that until spoke_mr_deregister: later calls register
 * nothing, and an error to register comes back from that first call.  Over
 * TCP it is only remembered.  Register after choosing the transport. */
SPOKE_API int spoke_mr_register(spoke_actor *a, void *addr, size_t len, spoke_mr *mr);
SPOKE_API void spoke_mr_deregister(spoke_mr *mr);
/* Allocates len bytes (zeroed, page-aligned, at mr->addr) that calls on
 * a's transport use in place, whatever it is: over shared memory a sealed
 * memfd that each of the handle's connections hands the worker once, so
 * that spoke_call_mr() moves no payload byte at all (the method reads its
 * request where it lies and packs its reply straight into the reply's
 * memory); over RDMA and TCP plain memory, registered as by
 * spoke_mr_register().  Memory the caller allocated itself is not in place
 * over shared memory (calls copy it): allocate with this for zero copy.
 * Allocate after choosing the transport; on another transport the memory
 * still works, copied.  Free it with spoke_mr_free() (once no call uses
 * it), never with spoke_mr_deregister(). */
SPOKE_API int spoke_mr_alloc(spoke_actor *a, size_t len, spoke_mr *mr);
/* Frees memory of spoke_mr_alloc() (NULL or a zeroed mr: nothing); the
 * workers that mapped it let it go. */
SPOKE_API void spoke_mr_free(spoke_mr *mr);
/* Calls method with the request req->addr[req_off, req_off+req_len) and
 * the reply written into rep->addr[rep_off, rep_off+cap); over RDMA the
 * actor reads the one and writes the other directly (RDMA READ and WRITE). */
SPOKE_API int spoke_call_mr(spoke_actor *a, uint32_t method, const spoke_mr *req, size_t req_off,
			    size_t req_len, spoke_mr *rep, size_t rep_off, size_t cap,
			    size_t *reply_len, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif

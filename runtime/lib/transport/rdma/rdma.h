/* rdma.h - the RDMA transport: calls over reliable-connected queue pairs
 * (librdmacm for addresses and connections, libibverbs for the data path).
 *
 * How a connection comes up.  The client asks the worker, over its already
 * authenticated TCP channel, for RDMA (an SPK_RDMA frame).  The worker
 * answers with its rdma_cm port, a one-time 32-byte cookie (and the index
 * of its slot), its limits and the node's IPv4 addresses that an RDMA
 * device serves (the one the client reached first, if it is one of them: a
 * node's TCP address is often on another network than its InfiniBand or
 * RoCE ports).  The client connects with rdma_cm to the first address that
 * works, with private data {u32 index, HMAC(token, "spoke-rdma-client" ||
 * cookie)}; the worker accepts only a live cookie (issued in the last 10 s,
 * used once) with that MAC, and accepts with HMAC(token, "spoke-rdma-server"
 * || cookie), which the client checks before it sends anything (the offer
 * and the private data: rdma_wire.h).  So the token never crosses
 * rdma_cm, a cookie read off the wire is worth nothing without it, and
 * neither side talks to a queue pair that did not prove it.
 *
 * Messages.  Every message is a frame of frame.h, sent with a two-sided
 * SEND from a registered slot of SPK_RDMA_SLOT bytes into one of the peer's
 * posted receive slots.  The header's flags say where a payload that does
 * not fit a slot is:
 *
 *   CALL  + SPK_RF_REGION  16 bytes follow the header: {addr u64, rkey u32,
 *                          cap u32}, a registered area of the client's into
 *                          which a large reply may be written
 *   CALL  + SPK_RF_RDV     16 bytes follow (after REGION's): {addr u64,
 *                          rkey u32, len u32}; the worker reads the request
 *                          from there (RDMA READ) into its registered memory
 *   REPLY + SPK_RF_WRITTEN the reply's len bytes were written (RDMA WRITE,
 *                          ordered before this SEND) into the CALL's region
 *   REPLY + SPK_RF_PULL    {addr, rkey, len} follow: the reply waits in the
 *                          worker's registered memory; the client reads it
 *                          and answers SPK_DONE, until which the worker
 *                          serves no other call of this connection
 *
 * Otherwise the payload follows the header inside the slot ("eager").
 *
 * Flow control.  The client keeps at most SPK_RDMA_CREDITS calls in flight;
 * the worker posts twice as many receive slots and reposts a call's slot
 * before it replies, so a call never finds no receive posted.  The other
 * half covers DONE messages, which take no credit: one is sent only after
 * a PULL reply, and at most SPK_RDMA_CREDITS of them can be unseen by the
 * worker at once (each answers a reply of a call that was in flight).
 *
 * Registered memory.  Slots are registered once per connection; payloads
 * beyond a slot go through "areas", registered buffers that grow (by powers
 * of two, up to the message maximum) on first need and are kept: a call
 * registers memory only the first time it needs more than any call before
 * it, never in the steady state.  A user's own registered memory
 * (spoke_mr) is read or written in place.
 *
 * Protection.  Every queue pair has a protection domain of its own (both
 * ends), and a connection registers all its memory there: an rkey is
 * worthless on any other queue pair, whoever learns it.  Each registration
 * grants the peer only what its role needs:
 *
 *   client tx area, a spoke_mr as request   remote read (the worker's READ)
 *   client rx area, a spoke_mr as reply     remote write (the worker's WRITE)
 *   client pull area, slots                 none
 *   worker rx and tx areas, slots           none
 *   a worker's PULL reply                   remote read, of the reply's bytes
 *                                           only, from the REPLY until DONE
 *
 * The PULL reply is the one thing a worker exposes, and only while it moves:
 * it is registered (ibv_reg_mr of exactly those bytes) when the REPLY goes
 * out and deregistered when DONE comes, so a READ after DONE, or from
 * another connection, fails with a remote access error (the reader's queue
 * pair goes to error).  A memory window would avoid that registration, but
 * not every device binds type-2 windows, and PULL is the rarer path (a
 * reply with no region offered, or larger than it).  A spoke_mr is
 * registered on a connection the first time a call there uses it, once per
 * role, and kept until spoke_mr_deregister or the connection's end (a
 * reconnect starts with a new, empty domain). */
#ifndef SPOKE_RDMA_H
#define SPOKE_RDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spoke/client.h>

#include "chan.h"

#define SPK_RDMA_SLOT (8u << 10)  /* bytes per send or receive slot */
#define SPK_RDMA_CREDITS 32u      /* calls in flight per connection */
#define SPK_RDMA_EXT 16u          /* one {addr, rkey, len} descriptor */
#define SPK_RDMA_COOKIE 32u      /* = SPK_NONCE_SIZE: MACed with the token */
#define SPK_RDMA_ADDRS 8u         /* a worker's addresses offered for RDMA */

#define SPK_RF_REGION 0x1u
#define SPK_RF_RDV 0x2u
#define SPK_RF_WRITTEN 0x4u
#define SPK_RF_PULL 0x8u
#define SPK_RF_ALL 0xfu

enum spk_transport { SPK_TRANSPORT_AUTO, SPK_TRANSPORT_TCP, SPK_TRANSPORT_RDMA };

/* $SPOKE_TRANSPORT (auto, tcp or rdma; unset: auto), or SPOKE_EINVAL with a
 * message for anything else. */
int spk_transport_from_env(void);

/* A serializer failed (call.c, shared by both transports): keeps its code
 * rc and says what failed (`what`: "packing the request" or "unpacking the
 * reply") for which actor (`who`: its name, or its address), with the
 * reason it left in spoke_errmsg(), if any. */
int spk_ser_failed(int rc, const char *what, const char *who);
/* SPOKE_ENOSPC, saying so: a reply of len bytes for a buffer of cap. */
int spk_no_room(size_t len, size_t cap);

/* ---- client side (rdma_client.c) ---- */

struct spk_rconn;

/* 0 when this node has an RDMA device (the one $SPOKE_RDMA_DEVICE names,
 * if set), else SPOKE_ERDMA and why. */
int spk_rdma_local_check(void);

/* Asks the worker at addr (its TCP host:port) for RDMA over a channel
 * authenticated with token to the server ident (spk_chan_open), and
 * connects to it there.  SPOKE_ERDMA with the reason in spoke_errmsg() when
 * RDMA cannot be used. */
int spk_rdma_connect(struct spk_rconn **out, const char *addr, const char *token,
		     const char *ident, int poll_us, int64_t deadline);
void spk_rdma_close(struct spk_rconn *rc);
/* The verbs device the connection runs on ("rxe0"). */
const char *spk_rdma_device(const struct spk_rconn *rc);
void spk_rdma_set_poll(struct spk_rconn *rc, int poll_us);
/* Before rc reconnects a broken connection, check(arg, deadline) must
 * return 0 (call.c: the hub says the worker still runs); its error fails
 * the call instead, with no reconnect. */
void spk_rdma_set_reconnect_check(struct spk_rconn *rc, int (*check)(void *, int64_t),
				  void *arg);

/* The calls of call.c, over RDMA; all are thread-safe (one lock per
 * connection, taken no later than the deadline: call.c gives each
 * synchronous caller a connection of its own from the handle's pool). */
int spk_rdma_call(struct spk_rconn *rc, uint32_t method, const void *req, size_t req_len,
		  void *reply, size_t cap, size_t *reply_len, int64_t deadline);
int spk_rdma_call_obj(struct spk_rconn *rc, uint32_t method, const spoke_serializer *req_ser,
		      const void *req, const spoke_serializer *rep_ser, void *rep,
		      int64_t deadline);
int spk_rdma_call_mr(struct spk_rconn *rc, uint32_t method, const spoke_mr *req_mr,
		     size_t req_off, size_t req_len, spoke_mr *rep_mr, size_t rep_off, size_t cap,
		     size_t *reply_len, int64_t deadline);
int spk_rdma_call_async(struct spk_rconn *rc, uint32_t method, const void *req, size_t req_len,
			void *reply, size_t cap, spoke_future *f, int64_t deadline);
/* Waits for f; a wait that times out gives f up (completes it with
 * SPOKE_ETIMEDOUT; the call keeps its place and its reply is dropped).
 * Closing the connection completes every future in flight with
 * SPOKE_ECLOSED. */
int spk_rdma_future_wait(struct spk_rconn *rc, spoke_future *f, int64_t deadline);
/* Whether future f is in flight on rc (compares pointers only). */
bool spk_rdma_in_flight(struct spk_rconn *rc, const spoke_future *f);
/* Remembers [addr, addr+len) for calls (*mr; *lkey and *rkey are 0): each
 * connection registers it in its own protection domain the first time a
 * call there uses it, as a request (remote read) or a reply (remote
 * write), and keeps that until spk_rdma_mr_deregister or its end. */
int spk_rdma_mr_register(struct spk_rconn *rc, void *addr, size_t len, void **mr,
			 uint32_t *lkey, uint32_t *rkey);
void spk_rdma_mr_deregister(void *mr);

/* ---- worker side (rdma_server.c) ---- */

struct ev_loop;
struct spk_evconn;
struct spk_hdr;
struct spk_rsrv;

/* Runs one method: reads req, packs into reply; returns 0 or a negative
 * status with its message in msg (and, for SPOKE_EMETHOD, the method's own
 * code in *code), for spk_reply_error_pack. */
typedef int (*spk_rsrv_method_fn)(uint32_t method, spoke_view *req, spoke_buf *reply, int *code,
				  char *msg, size_t msg_cap);

/* Listens for RDMA connections on host's device (port chosen by rdma_cm).
 * Never fails the worker: when RDMA cannot work here, *out serves no
 * connection and answers every SPK_RDMA request with the reason.  A
 * spinning worker (spin) polls with spk_rsrv_poll and arms the queues'
 * wake-ups only before it sleeps; otherwise every completion wakes the loop. */
int spk_rsrv_start(struct spk_rsrv **out, struct ev_loop *loop, const char *host,
		   const char *token, bool spin, spk_rsrv_method_fn fn, uint64_t *frames);
void spk_rsrv_stop(struct spk_rsrv *s);
/* Answers an SPK_RDMA request that came on authenticated connection c. */
void spk_rsrv_hello(struct spk_rsrv *s, struct spk_evconn *c, const struct spk_hdr *h);
/* Serves whatever completed, without sleeping (for a spinning loop); with
 * arm, first asks for a wake-up on the next completion (before sleeping).
 * Returns how many queues it looked at (0: no connection). */
unsigned spk_rsrv_poll(struct spk_rsrv *s, bool arm);

#endif

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
 * the worker posts four times as many receive slots (and two) and reposts a
 * call's slot before it replies, so a call never finds no receive posted.
 * The rest covers the messages that take no credit: DONE, sent only after a
 * PULL (at most SPK_RDMA_CREDITS unseen at once: each answers a reply of a
 * call that was in flight); CANCEL (frame.h: the client gave a call up),
 * one per call in flight, which the worker takes at once, also while calls
 * wait behind a kept one, so that at most two per credit can be unseen
 * (one of a call answered meanwhile, one of the call now in its place);
 * and CREDIT (below), at most two unseen.
 *
 * Streams.  A stream's CHUNKs (frame.h) go like eager replies, or, larger
 * than a slot, as PULLs (held until the client's DONE).  Besides its
 * SPK_RDMA_CREDITS receive slots for replies, the client posts
 * SPK_RDMA_CHUNKS for chunks: the worker sends a chunk only while fewer
 * than SPK_RDMA_CHUNKS it sent are unacknowledged (else spoke_stream_emit
 * is throttled), and the client acknowledges every SPK_RDMA_CHUNKS / 2
 * chunks it took with a CREDIT frame (aux: how many).
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

#include "sync_conn.h"
#include "transport/transport.h"

#define SPK_RDMA_SLOT (8u << 10)  /* bytes per send or receive slot */
#define SPK_RDMA_CREDITS 32u      /* calls in flight per connection */
#define SPK_RDMA_EXT 16u          /* one {addr, rkey, len} descriptor */
#define SPK_RDMA_COOKIE 32u      /* = SPK_NONCE_SIZE: MACed with the token */
#define SPK_RDMA_ADDRS 8u         /* a worker's addresses offered for RDMA */
#define SPK_RDMA_CHUNKS 16u       /* a stream's chunks unacknowledged, at most */

/* Labels of the cookie proofs (auth.h's spk_auth_mac). */
#define SPK_LABEL_RDMA_CLIENT "spoke-rdma-client"
#define SPK_LABEL_RDMA_SERVER "spoke-rdma-server"

/* The transport's own frame types (frame.h leaves 19-24 to transports). */
#define SPK_RDMA 19 /* client -> worker over TCP: RDMA, please (reply: the offer) */
#define SPK_DONE 20 /* client -> worker over RDMA: a PULL reply was read */
#define SPK_CREDIT 22 /* client -> worker over RDMA: aux stream chunks were taken */

/* Frame flags, on RDMA messages only. */
#define SPK_RF_REGION 0x1u
#define SPK_RF_RDV 0x2u
#define SPK_RF_WRITTEN 0x4u
#define SPK_RF_PULL 0x8u
#define SPK_RF_ALL 0xfu

/* The transport (rdma_client.c) and its server (rdma_server.c). */
extern const struct spk_transport spk_rdma_transport;
extern const struct spk_server_ops spk_rdma_server;

#endif

/* shm.h - the shared-memory transport: calls to a worker on the same node
 * through rings in memory both processes map (Linux only).
 *
 * How a connection comes up.  The client asks the worker, over its already
 * authenticated TCP channel, for shared memory (an SPK_SHM frame).  The
 * worker answers with an offer (shm_wire.h): the name of its abstract Unix
 * socket, a one-time 32-byte cookie (and the index of its slot), the ring
 * size and its largest message.  The client then
 *   1. creates the region (memfd_create, MFD_CLOEXEC | MFD_ALLOW_SEALING),
 *      sizes it (SPK_SHM_REGION bytes) and seals it (F_SEAL_SHRINK |
 *      F_SEAL_GROW | F_SEAL_SEAL), so that the worker can trust its size: it
 *      can never shrink under a mapping (no SIGBUS);
 *   2. connects to the socket and checks the worker's SO_PEERCRED: the uid
 *      is its own and the pid the one the hub gave for the actor, else
 *      SPOKE_EAUTH (an abstract name is open to any process of the network
 *      namespace: the credentials say who answered);
 *   3. sends the connect message (cookie, ring size) with the memfd
 *      (SCM_RIGHTS);
 * and the worker, for a peer of its own uid with a live cookie (issued in
 * the last 10 s, used once) and a memfd of exactly the region's size whose
 * seals include SHRINK and GROW, maps it and answers {status 0} with an
 * eventfd of its own (SCM_RIGHTS) by which the client wakes its loop.
 * Every refusal is one answer {status < 0, why} then the socket's end, but
 * for a peer of another uid, closed at once.  A connection that sends no
 * connect message within SPK_SHM_SETUP_S is closed, and past
 * SPK_SHM_SETUPS_MAX set-ups at once a new one is refused
 * (SPOKE_ETRANSPORT): a process that only connects holds no descriptor of
 * the worker's for long.  The worker's refusals of the SPK_SHM frame itself
 * (no shared memory here, too many offers live) are SPOKE_ETRANSPORT too.  The
 * region never has a name another user can open; the socket stays open for
 * the connection's life: its end (POLLHUP, EOF) is how either side learns
 * that the other died.
 *
 * The region (SPK_SHM_REGION bytes):
 *
 *   offset            size            what
 *        0            SPK_SHM_CTL     struct spk_shm_ctl: the counters and
 *                                     wake-up words, each written by one
 *                                     side only, on its own cache line
 *   SPK_SHM_CTL       SPK_SHM_RING    the request ring (client -> worker)
 *   + SPK_SHM_RING    SPK_SHM_RING    the reply ring (worker -> client)
 *
 * Rings.  A ring is single-producer single-consumer: head and tail are
 * byte counts (u64, never wrapping; the position is count mod the ring's
 * size, a power of two), the producer writes head only, the consumer tail
 * only, and each side keeps its own count privately: what it reads of the
 * other's is a claim, checked before use (shm_ring.h): a peer that writes
 * garbage anywhere in the region is refused with SPOKE_EPROTO and its
 * connection dropped, never read out of bounds.  A frame is frame.h's
 * 24-byte header then its payload, contiguous, starting on a 64-byte line
 * (SPK_SHM_ALIGN); where a frame does not fit before the ring's end, the
 * producer writes a wrap marker (the u32 SPK_SHM_WRAP) there and the frame
 * at the ring's start.  Requests are CALL frames, replies REPLY frames; the
 * worker serves one connection's calls in order, so replies come in order.
 *
 * Large messages.  A message that does not fit where it is packed goes to
 * a "bulk area" of its direction: another sealed memfd (the client's for
 * requests, the worker's for replies), its size a power of two from
 * SPK_SHM_BULK_MIN up to the largest message, made on first need and sent
 * once over the socket (struct spk_shm_area_msg with SCM_RIGHTS), kept
 * mapped by both, replaced by a larger one (the next generation) only when
 * a larger message comes: never in the steady state.  The frame then has
 * SPK_SF_BULK in its flags and, after the header, the u32 generation of the
 * area holding its len bytes at offset 0.  An area holds one message at a
 * time: its producer reuses it only once the consumer has moved its tail
 * past that message's frame.  An area message is sent before the frame that
 * first names its generation, so the consumer finds it on the socket when
 * it needs it (and checks its size and seals like the region's).
 *
 * Flow control.  The client keeps at most SPK_SHM_CREDITS calls in flight.
 * The worker serves a call only when the reply ring has SPK_SHM_MIN_ROOM
 * contiguous bytes free and its reply area is not still held; else it
 * leaves the call there, sets ctl->worker_space and waits for the client
 * to move the reply ring's tail (which kicks its eventfd).  A client that
 * needs room (the request ring, its own area) waits for the replies of its
 * calls in flight: the worker releases a request before it publishes that
 * call's reply.  So no wait of either side depends on the other's waiting.
 *
 * Waking up.  The client spins for its poll_us on the reply ring, then
 * sets ctl->client_sleeping and sleeps on a futex on ctl->client_seq (a
 * shared futex: no FUTEX_PRIVATE_FLAG), in slices of SPK_SHM_SLICE_US
 * between which it looks at the socket, as it does every SPK_SHM_SLICE_US
 * of its spin (a dead worker fails the calls in flight with SPOKE_EDEAD
 * within milliseconds, whatever poll_us), never past the deadline.
 * The worker bumps client_seq and FUTEX_WAKEs only when client_sleeping is
 * set.  The worker sleeps in its libev loop, watching its eventfd; it sets
 * ctl->worker_sleeping while it may sleep, and the client writes the
 * eventfd after publishing a request only then (a spinning worker polls). */
#ifndef SPOKE_SHM_H
#define SPOKE_SHM_H

#include <stdint.h>

#ifndef SPK_SHM
#define SPK_SHM 21 /* frame type: client -> worker, "shared memory, please" */
#endif

#define SPK_SHM_ALIGN 64u               /* frames start on a cache line */
#define SPK_SHM_CTL 4096u               /* bytes of the control block */
#define SPK_SHM_RING (1u << 20)         /* bytes of each ring (a power of two) */
#define SPK_SHM_REGION (SPK_SHM_CTL + 2 * SPK_SHM_RING)
#define SPK_SHM_CREDITS 64u             /* calls in flight per connection */
#define SPK_SHM_COOKIE 32u              /* one-time, issued with the offer */
#define SPK_SHM_NAME_MAX 64             /* an abstract socket name, with its NUL */
#define SPK_SHM_NAME_PREFIX "spoke-shm-"
#define SPK_SHM_BULK_MIN (1u << 20)     /* the smallest bulk area */
#define SPK_SHM_BULK_DESC 8u            /* after a BULK frame's header: u32 gen, u32 0 */
#define SPK_SHM_MIN_ROOM 1024u          /* a reply's room: header + an error's text */
#define SPK_SHM_SLICE_US 2000           /* a sleeping client looks at the socket this often */
#define SPK_SHM_SETUP_S 2.0             /* a connect message comes within this of the connect */
#define SPK_SHM_SETUPS_MAX 64           /* connections not past their connect message, at once */
#define SPK_SHM_WRAP 0x57504b53u        /* "SKPW": the rest of the ring is skipped */
#define SPK_SHM_REGION_MAGIC 0x4d48534bu /* "KSHM" */
#define SPK_SHM_VERSION 1u

#define SPK_SF_BULK 0x1u /* the payload lies in the direction's bulk area */
#define SPK_SF_MR 0x2u   /* the payload lies in spoke_mr memory (below) */
#define SPK_SHM_MRS_MAX 4096u /* spoke_mr memories a worker maps per connection */

#define SPK_SHM_LINE 64
struct spk_shm_ctl {
	/* written by the client when it creates the region; read by nobody
	 * after the worker checked them */
	uint32_t magic, version, ring_size, pad0_;
	uint8_t pad0[SPK_SHM_LINE - 16];
	uint64_t req_head; /* client */
	uint8_t pad1[SPK_SHM_LINE - 8];
	uint64_t req_tail; /* worker */
	uint8_t pad2[SPK_SHM_LINE - 8];
	uint64_t rep_head; /* worker */
	uint8_t pad3[SPK_SHM_LINE - 8];
	uint64_t rep_tail; /* client */
	uint8_t pad4[SPK_SHM_LINE - 8];
	uint32_t client_seq;      /* worker bumps it (the client's futex) */
	uint32_t client_sleeping; /* client: sleeping on client_seq */
	uint8_t pad5[SPK_SHM_LINE - 8];
	uint32_t worker_sleeping; /* worker: kick my eventfd after a request */
	uint32_t worker_space;    /* worker: kick it after freeing reply room */
	uint8_t pad6[SPK_SHM_LINE - 8];
};

_Static_assert(sizeof(struct spk_shm_ctl) <= SPK_SHM_CTL, "control block");
_Static_assert((SPK_SHM_RING & (SPK_SHM_RING - 1)) == 0, "ring size: a power of two");

/* Over the Unix socket, with SCM_RIGHTS: a bulk area of the sender's. */
#define SPK_SHM_AREA_MSG 0x41455241u /* "AREA" */
struct spk_shm_area_msg {
	uint32_t type; /* SPK_SHM_AREA_MSG */
	uint32_t gen;  /* 1, 2, ...: one more than the last */
	uint64_t size; /* bytes (a power of two), as the memfd's size */
};

/* spoke_mr memory.  spoke_mr_alloc over shared memory makes a sealed
 * memfd (its id unique in the client's process); the first call of a
 * connection that names it sends it over the socket (struct spk_shm_mr_msg
 * of type SPK_SHM_MR_MSG, with SCM_RIGHTS), and the worker maps it,
 * writable, for the connection's life or until spoke_mr_free sends
 * SPK_SHM_MR_FREE (no descriptor).  A spoke_call_mr is then a CALL frame
 * with SPK_SF_MR whose len is the request's and whose body is struct
 * spk_shm_mr_desc: the method reads its request in the client's memory and
 * packs its reply straight into the reply's, bounds-checked against the
 * mapping; the REPLY has SPK_SF_MR (its body the descriptor, zeroed) and
 * len the reply's bytes, already where the caller wants them.  A reply that
 * outgrows cap goes the usual way (ring or area), and the caller's call
 * fails with SPOKE_ENOSPC as over any transport; a failure's message too. */
#define SPK_SHM_MR_MSG 0x47455252u  /* "RREG" */
#define SPK_SHM_MR_FREE 0x45455246u /* "FREE" */
struct spk_shm_mr_msg {
	uint32_t type; /* SPK_SHM_MR_MSG or SPK_SHM_MR_FREE */
	uint32_t id;   /* not 0 */
	uint64_t size; /* MR_MSG: bytes, as the memfd's size (a page multiple) */
};

#define SPK_SHM_MR_DESC 32u
struct spk_shm_mr_desc {
	uint32_t req_id, rep_id; /* 0: none (no request bytes; a reply the usual way) */
	uint64_t req_off, rep_off, rep_cap;
};
_Static_assert(sizeof(struct spk_shm_mr_desc) == SPK_SHM_MR_DESC, "MR descriptor");

struct spk_transport;
struct spk_server_ops;
extern const struct spk_transport spk_shm_transport; /* shm_client.c */
extern const struct spk_server_ops spk_shm_server;   /* shm_server.c */

#endif

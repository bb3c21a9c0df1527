/* frame.h - the wire frame: a fixed 32-byte header, then the payload.
 *
 *   offset size field
 *        0    4 magic   "SPK1" (0x314b5053, little-endian)
 *        4    1 version SPOKE_PROTOCOL_VERSION
 *        5    1 type    enum spk_type
 *        6    2 flags   0, but for a transport's own bits on its own path
 *                       (rdma.h's SPK_RF_*) and, in a CALL, the call's own
 *                       (SPK_CF_*)
 *        8    8 id      request id; a reply carries its request's id
 *       16    4 aux     method id (CALL) or status (REPLY, AUTH_OK, READY)
 *       20    4 len     payload bytes that follow
 *       24    4 ttl_ms  CALL: the milliseconds its caller still waits (its
 *                       deadline, which the worker keeps; 0: none); else 0
 *       28    4 0       (reserved)
 *
 * All fields little-endian.  The same layout serves every transport. */
#ifndef SPOKE_FRAME_H
#define SPOKE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SPK_MAGIC 0x314b5053u
#define SPK_HDR_SIZE 32u
#define SPK_MAX_PAYLOAD_DEFAULT (64u << 20) /* 64 MiB */
#define SPK_MAX_PAYLOAD_LIMIT (1u << 30)    /* what $SPOKE_MAX_MSG may raise it to */
#define SPK_MAX_PAYLOAD_MIN (4u << 10)      /* and lower it to */

enum spk_type {
	SPK_HELLO = 1,   /* server -> client: nonce_s[32] */
	SPK_AUTH,        /* client -> server: proof[32] nonce_c[32] str ident (auth.h) */
	SPK_AUTH_OK,     /* server -> client: aux status, proof[32] str ident */
	SPK_REPLY,       /* answer to any request: aux status, body or error text */
	SPK_CALL,        /* client -> worker: aux method id, request */
	SPK_REGISTER,    /* agent -> hub: a node */
	SPK_SPAWN,       /* client -> hub: start an actor */
	SPK_ALLOC,       /* client -> hub: reserve a gang */
	SPK_LAUNCH,      /* client -> hub: start an actor in a gang slot */
	SPK_RELEASE,     /* client -> hub: give a ticket back */
	SPK_LOOKUP,      /* client -> hub: where is an actor (endpoint, incarnation) */
	SPK_KILL,        /* client -> hub: stop an actor */
	SPK_START,       /* hub -> agent: fork a worker */
	SPK_STOP,        /* hub -> agent: stop a worker */
	SPK_EXITED,      /* agent -> hub: a worker ended */
	SPK_SPAWN_INFO,  /* agent -> worker: str token, str host, str modules,
			    u64 incarnation, spawn spec: what to be */
	SPK_READY,       /* worker -> agent: aux status, port or error text */
	SPK_NODES,       /* client -> hub: list the live nodes */
	/* 19-24: the transports' own messages, defined by each (a hello that
	 * asks for the transport on a worker's TCP connection, and what it
	 * sends on its own path): rdma.h's SPK_RDMA 19, SPK_DONE 20 and
	 * SPK_CREDIT 22, shm.h's SPK_SHM 21. */
	SPK_TRANSPORT_FIRST_ = 19,
	SPK_CHUNK = 25,  /* worker -> client: one chunk of a stream's reply (its
			    CALL had SPK_CF_STREAM), before its REPLY */
	SPK_CANCEL = 26, /* client -> worker: the caller gave call `id` up */
	SPK_STATS = 27,  /* worker -> agent, agent -> hub (id: the START's): the
			    worker's call figures (proto.h spk_stats) */
	SPK_STATUS = 28, /* client -> hub: the job at a glance (spoke-status) */
	SPK_RESTARTED = 29, /* agent -> hub (id: the START's, aux: the restart's
			       number): a restarted worker is ready, its endpoint */
	SPK_TYPE_MAX_ = 29,
};

/* A CALL's own flags, on every transport. */
#define SPK_CF_STREAM 0x4000u /* the caller reads a stream: CHUNKs, then the REPLY */
#define SPK_CF_MASK 0x4000u

struct spk_hdr {
	uint8_t type;
	uint16_t flags;
	uint64_t id;
	int32_t aux;
	uint32_t len;
	uint32_t ttl_ms;
};

void spk_hdr_encode(uint8_t out[SPK_HDR_SIZE], uint8_t type, uint64_t id, int32_t aux,
		    uint32_t len);
/* Sets the flags of an encoded header (a transport's, a CALL's). */
void spk_hdr_set_flags(uint8_t out[SPK_HDR_SIZE], uint16_t flags);
/* Sets the ttl_ms of an encoded CALL header. */
void spk_hdr_set_ttl(uint8_t out[SPK_HDR_SIZE], uint32_t ttl_ms);
/* The ttl_ms of a CALL whose caller waits until deadline (spk_now_us()
 * microseconds): what is left, rounded up, at least 1; 0 (no deadline) for
 * a deadline <= 0. */
uint32_t spk_ttl_of(int64_t deadline);
/* Checks and decodes a header: SPOKE_EPROTO for a wrong magic, an unknown
 * type, nonzero flags (but a CALL's SPK_CF_* ones) or reserved bytes, SPOKE_EVERSION for another version, SPOKE_ETOOBIG
 * for len > max_payload. */
int spk_hdr_decode(const uint8_t in[SPK_HDR_SIZE], uint32_t max_payload, struct spk_hdr *h);
/* The same, allowing the flag bits in `allowed` (the RDMA transport's). */
int spk_hdr_decode_flags(const uint8_t in[SPK_HDR_SIZE], uint32_t max_payload, uint16_t allowed,
			 struct spk_hdr *h);
/* Looks at the start of a byte stream: returns the whole frame's size if a
 * complete frame is there (header in *h), 0 if more bytes are needed, or a
 * negative code from spk_hdr_decode. */
long spk_frame_parse(const uint8_t *buf, size_t len, uint32_t max_payload, struct spk_hdr *h);
/* The largest payload accepted: $SPOKE_MAX_MSG (bytes, with an optional
 * K/M/G suffix) from SPK_MAX_PAYLOAD_MIN to SPK_MAX_PAYLOAD_LIMIT, else the
 * default: SPOKE_EINVAL naming the value if it is anything else (env.h). */
int spk_max_payload_env(uint32_t *out);
/* The same where nobody can be told: a bad value is logged once and the
 * default used. */
uint32_t spk_max_payload(void);
const char *spk_type_name(uint8_t type);

#endif

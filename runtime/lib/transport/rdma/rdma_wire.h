/* rdma_wire.h - the RDMA transport's own messages (rdma.h says how a
 * connection comes up), one struct and one pack/unpack pair each, as plain
 * functions (no verbs call, no socket: tests/unit/test_rdma_wire.c and
 * tests/fuzz/fuzz_rdma_wire.c reach them without a device).  They belong to
 * the transport, not to proto.c, and are built only with it.
 *
 *   offer    worker -> client, the answer (over TCP) to an SPK_RDMA frame:
 *            port u16, index u32, cookie (SPK_RDMA_COOKIE bytes), slot u32,
 *            credits u32, max_msg u32, n u32, then n addresses (strings:
 *            u32 length, the bytes)
 *   connect  client -> worker, the private data of the rdma_cm connection
 *            request: index u32, MAC (SPK_MAC_SIZE bytes)
 *
 * Integers little-endian (the serializer's codec).  An unpack reads the
 * whole of its view: it returns 0, or SPOKE_ESHORT for a truncated message,
 * SPOKE_EPROTO for trailing bytes or a count out of range, SPOKE_EINVAL for
 * an address that is not one; why in spoke_errmsg() (except for
 * SPOKE_ESHORT).  A pack returns the buffer's sticky error (SPOKE_EINVAL for
 * a count out of range, which it does not pack). */
#ifndef SPOKE_RDMA_WIRE_H
#define SPOKE_RDMA_WIRE_H

#include <stdint.h>

#include <spoke/serializer.h>

#include "auth.h"
#include "rdma.h"

/* An offered address: a numeric IPv4 or IPv6 address, with its NUL. */
#define SPK_RDMA_ADDR_MAX 46 /* INET6_ADDRSTRLEN */

struct spk_rdma_offer {
	uint16_t port;    /* the worker's rdma_cm port */
	uint32_t index;   /* of the cookie's slot at the worker */
	uint8_t cookie[SPK_RDMA_COOKIE];
	uint32_t slot;    /* bytes per slot: SPK_RDMA_SLOT (the client checks) */
	uint32_t credits; /* calls in flight: SPK_RDMA_CREDITS (the client checks) */
	uint32_t max_msg; /* the largest message the worker takes */
	uint32_t n_addrs; /* 1 to SPK_RDMA_ADDRS, the likeliest first */
	char addrs[SPK_RDMA_ADDRS][SPK_RDMA_ADDR_MAX];
};
int spk_rdma_offer_pack(spoke_buf *b, const struct spk_rdma_offer *o);
/* Each address is a name (proto.h: not empty, shorter than
 * SPK_RDMA_ADDR_MAX, no control character, space or '/') and a numeric IP
 * address (what the client's rdma_cm resolves without a lookup). */
int spk_rdma_offer_unpack(spoke_view *v, struct spk_rdma_offer *o);

#define SPK_RDMA_CONNECT_SIZE (4 + SPK_MAC_SIZE)
struct spk_rdma_connect {
	uint32_t index;              /* the offer's */
	uint8_t mac[SPK_MAC_SIZE];   /* HMAC(token, SPK_LABEL_RDMA_CLIENT || cookie) */
};
/* Exactly SPK_RDMA_CONNECT_SIZE bytes. */
int spk_rdma_connect_pack(spoke_buf *b, const struct spk_rdma_connect *c);
/* The passive side gets the request's private data padded by the
 * transport (InfiniBand and RoCE: the CM message's whole private data
 * field, zero after what the client sent): bytes after the message are
 * refused unless they are all zero. */
int spk_rdma_connect_unpack(spoke_view *v, struct spk_rdma_connect *c);

#endif

/* shm_wire.h - the shared-memory transport's own messages (shm.h says how
 * a connection comes up), one struct and one pack/unpack pair each, as
 * plain functions (no socket: tests/unit/test_shm_ring.c reaches them).
 *
 *   offer    worker -> client, the answer (over TCP) to an SPK_SHM frame:
 *            index u32, cookie (SPK_SHM_COOKIE bytes), name (string: u32
 *            length, the bytes), ring u32, credits u32, max_msg u32
 *   connect  client -> worker, over the Unix socket (with the memfd):
 *            version u32, index u32, cookie, ring u32
 *   answer   worker -> client, over the Unix socket (with the eventfd when
 *            status is 0): status i32, text (string; "" for 0)
 *
 * Integers little-endian (the serializer's codec).  An unpack reads the
 * whole of its view: 0, or SPOKE_ESHORT for a truncated message,
 * SPOKE_EPROTO for trailing bytes or a value out of range, SPOKE_EINVAL for
 * a bad name or text; why in spoke_errmsg() (except for SPOKE_ESHORT).  A
 * pack returns the buffer's sticky error. */
#ifndef SPOKE_SHM_WIRE_H
#define SPOKE_SHM_WIRE_H

#include <stdint.h>

#include <spoke/serializer.h>

#include "shm.h"

struct spk_shm_offer {
	uint32_t index; /* of the cookie's slot at the worker */
	uint8_t cookie[SPK_SHM_COOKIE];
	char name[SPK_SHM_NAME_MAX]; /* abstract socket: SPK_SHM_NAME_PREFIX, then hex digits */
	uint32_t ring;    /* bytes per ring: SPK_SHM_RING (the client checks) */
	uint32_t credits; /* SPK_SHM_CREDITS (the client checks) */
	uint32_t max_msg; /* the largest message the worker takes */
};
int spk_shm_offer_pack(spoke_buf *b, const struct spk_shm_offer *o);
int spk_shm_offer_unpack(spoke_view *v, struct spk_shm_offer *o);
/* 0 if s[0..n) is a socket name this transport makes (above), else
 * SPOKE_EINVAL and why. */
int spk_shm_name_check(const char *s, size_t n);

#define SPK_SHM_CONNECT_SIZE (12 + SPK_SHM_COOKIE)
struct spk_shm_connect {
	uint32_t version; /* SPK_SHM_VERSION */
	uint32_t index;
	uint8_t cookie[SPK_SHM_COOKIE];
	uint32_t ring;
};
int spk_shm_connect_pack(spoke_buf *b, const struct spk_shm_connect *c);
/* Exactly SPK_SHM_CONNECT_SIZE bytes; any version (the worker checks). */
int spk_shm_connect_unpack(spoke_view *v, struct spk_shm_connect *c);

#define SPK_SHM_TEXT_MAX 256
#define SPK_SHM_ANSWER_MAX (8 + SPK_SHM_TEXT_MAX)
struct spk_shm_answer {
	int32_t status; /* 0 or a negative SPOKE_* code */
	char text[SPK_SHM_TEXT_MAX]; /* why, for a refusal: no control character */
};
int spk_shm_answer_pack(spoke_buf *b, const struct spk_shm_answer *a);
/* A status of 0 or a negative code; a text that fits, with no NUL or
 * control character. */
int spk_shm_answer_unpack(spoke_view *v, struct spk_shm_answer *a);

#endif

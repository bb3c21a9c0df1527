/* shm_ring.h - one direction of a shared-memory connection: a single-
 * producer single-consumer ring of frames (layout in shm.h), its checks,
 * and the futex and eventfd wake-ups.  No socket, no allocation: the rings
 * live in memory the caller mapped, and tests/unit/test_shm_ring.c drives
 * both ends in one process.
 *
 * Each end keeps its own count privately (pos) and only reads the peer's
 * from the shared block, as a claim: a head ahead of the tail by more than
 * the ring, behind it, or off a frame line, a frame header that frame.h
 * refuses, a length past what was published or past the ring's end, a
 * wrap marker where none can be: all are SPOKE_EPROTO (why in
 * spoke_errmsg()), after which the connection is dropped.  A header is
 * copied out of shared memory before it is checked, so the peer cannot
 * change it between the check and the use. */
#ifndef SPOKE_SHM_RING_H
#define SPOKE_SHM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "shm.h"

struct spk_shm_ring {
	uint8_t *base;     /* the ring's bytes */
	uint32_t size;     /* a power of two, a multiple of SPK_SHM_ALIGN */
	uint64_t *head;    /* in the shared block: the producer's count */
	uint64_t *tail;    /* the consumer's */
	uint64_t pos;      /* our own count: head (producer) or tail (consumer) */
	uint64_t peer;     /* the peer's count, last seen and checked */
	uint32_t cur;      /* consumer: bytes of the frame peeked, with any wrap before it */
	uint32_t max_payload; /* frame.h's check */
	uint8_t type;      /* the frame type this ring carries */
	uint8_t also;      /* and this one (0: none): CANCEL beside CALL, CHUNK beside REPLY */
};

/* Sets r over base[0..size) with the shared counters head and tail, which
 * the caller zeroed (a new region) or trusts to be 0. */
void spk_shm_ring_init(struct spk_shm_ring *r, void *base, uint32_t size, uint64_t *head,
		       uint64_t *tail, uint8_t type, uint32_t max_payload);

/* Producer: room for a frame of at least min bytes (header included),
 * contiguous, at *at: returns 0 with *room its bytes (all that is free
 * there, at least min), 1 if there is not that much room now, or
 * SPOKE_EPROTO for a tail that lies.  Where the room before the ring's
 * end is too small and the start has it, a wrap marker is written (it is
 * published with the frame). */
int spk_shm_ring_room(struct spk_shm_ring *r, size_t min, uint8_t **at, size_t *room);
/* The largest min that spk_shm_ring_room could ever grant (an empty ring). */
size_t spk_shm_ring_max_frame(const struct spk_shm_ring *r);
/* Publishes the frame of len bytes written at `at` (from spk_shm_ring_room). */
void spk_shm_ring_publish(struct spk_shm_ring *r, const uint8_t *at, size_t len);
/* The same in two steps, so that many frames go out with one store: write
 * counts the frame as ours (the next room comes after it), flush shows the
 * consumer every frame written. */
void spk_shm_ring_write(struct spk_shm_ring *r, const uint8_t *at, size_t len);
void spk_shm_ring_flush(struct spk_shm_ring *r);

/* Consumer: the next frame, checked: 0 with its header in *h and the
 * frame's bytes at *frame (header first; *frame + SPK_HDR_SIZE is the
 * payload, or the bulk descriptor with SPK_SF_BULK), 1 if the ring is
 * empty, SPOKE_EPROTO for anything the producer could not have written. */
int spk_shm_ring_peek(struct spk_shm_ring *r, struct spk_hdr *h, const uint8_t **frame);
/* Looks at the frame that starts at count *at (a frame boundary at or
 * past the consumer's own count) without consuming anything: 0 with its
 * header in *h, its bytes at *frame and *at moved past it; 1 if nothing is
 * published there yet; SPOKE_EPROTO as spk_shm_ring_peek.  The worker looks
 * ahead this way for CANCEL frames while a call holds its ring. */
int spk_shm_ring_scan(struct spk_shm_ring *r, uint64_t *at, struct spk_hdr *h,
		      const uint8_t **frame);
/* Frees the frame peeked (the producer may write there again). */
void spk_shm_ring_release(struct spk_shm_ring *r);
/* Whether the producer published anything not consumed (no check). */
bool spk_shm_ring_pending(const struct spk_shm_ring *r);

/* An MR frame's descriptor (shm.h, "spoke_mr memory"), copied out of the
 * ring (get) or into it (put). */
void spk_shm_mr_desc_get(const uint8_t *frame, struct spk_shm_mr_desc *d);
void spk_shm_mr_desc_put(uint8_t *frame, const struct spk_shm_mr_desc *d);

/* The generation named by a BULK frame's descriptor. */
uint32_t spk_shm_bulk_gen(const uint8_t *frame);
void spk_shm_bulk_put(uint8_t *frame, uint32_t gen);

/* ---- waking up (shm.h: "Waking up") ---- */

/* A full barrier: what one side stored before it is seen before what it
 * loads after it (each side stores its own word, then looks at the
 * other's).  ThreadSanitizer does not model fences (gcc refuses them under
 * -fsanitize=thread); there a sequentially consistent read-modify-write
 * gives the hardware the same order. */
static inline void spk_shm_fence(void)
{
#if defined(__SANITIZE_THREAD__)
	static uint32_t word;

	__atomic_fetch_add(&word, 0, __ATOMIC_SEQ_CST);
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/* Waits until ready(arg) is true: spins for poll_us, then sleeps on the
 * shared futex word *seq with *sleeping set, in slices of slice_us, calling
 * alive(arg) between them and every slice_us of the spin (its error ends
 * the wait), never past deadline.
 * 0, SPOKE_ETIMEDOUT, or alive's error. */
int spk_shm_wait(uint32_t *seq, uint32_t *sleeping, bool (*ready)(void *), int (*alive)(void *),
		 void *arg, int poll_us, int slice_us, int64_t deadline);
/* After publishing: wakes a waiter sleeping on *seq, if any. */
void spk_shm_wake(uint32_t *seq, const uint32_t *sleeping);
/* After publishing: writes the eventfd efd if *flag says the peer sleeps. */
void spk_shm_kick(int efd, const uint32_t *flag);

#endif

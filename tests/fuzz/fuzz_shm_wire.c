/* fuzz_shm_wire.c - the shared-memory transport's decoders: its messages
 * (runtime/lib/transport/shm/shm_wire.c: the worker's offer, read off the
 * TCP channel; the client's connect message and the worker's answer, read
 * off the Unix socket before anything is mapped) and the ring's consumer
 * (shm_ring.c), which reads what a peer wrote into shared memory.
 *
 * Input: a selector byte, then the payload.  Properties: a message that
 * decodes reads its whole payload, holds only what its checks allow (a
 * socket name the transport makes, a status of 0 or a negative code, a
 * text with no control character), and packs again to the same bytes, which
 * decode to the same message.  The ring: whatever head and bytes a peer
 * shows, a peek either refuses it (SPOKE_EPROTO, SPOKE_ETOOBIG), finds
 * nothing, or hands out a frame whose bytes lie inside the ring and within
 * what was published. */
#include <stdio.h>
#include <string.h>

#include <spoke/errors.h>

#include "fuzz.h"
#include "transport/shm/shm_ring.h"
#include "transport/shm/shm_wire.h"

enum { SEL_OFFER, SEL_CONNECT, SEL_ANSWER, SEL_RING, SEL_COUNT_ };

#define RING 4096u
#define MAXP 2048u

static uint8_t repacked[1 << 12];

static void offer(const uint8_t *p, size_t n)
{
	struct spk_shm_offer o, again;
	spoke_view v, v2;
	spoke_buf b;

	memset(&o, 0, sizeof(o));
	memset(&again, 0, sizeof(again));
	spoke_view_init(&v, p, n);
	if (spk_shm_offer_unpack(&v, &o) < 0)
		return;
	FZ_CHECK(spoke_view_remaining(&v) == 0);
	FZ_CHECK(memchr(o.name, '\0', sizeof(o.name)) &&
		 spk_shm_name_check(o.name, strlen(o.name)) == 0);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_shm_offer_pack(&b, &o) == 0);
	FZ_CHECK(b.len == n && memcmp(repacked, p, n) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_shm_offer_unpack(&v2, &again) == 0);
	FZ_CHECK(memcmp(&o, &again, sizeof(o)) == 0);
}

static void connect_msg(const uint8_t *p, size_t n)
{
	struct spk_shm_connect c, again;
	spoke_view v, v2;
	spoke_buf b;

	memset(&c, 0, sizeof(c));
	memset(&again, 0, sizeof(again));
	spoke_view_init(&v, p, n);
	if (spk_shm_connect_unpack(&v, &c) < 0)
		return;
	FZ_CHECK(spoke_view_remaining(&v) == 0 && n == SPK_SHM_CONNECT_SIZE);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_shm_connect_pack(&b, &c) == 0);
	FZ_CHECK(b.len == n && memcmp(repacked, p, n) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_shm_connect_unpack(&v2, &again) == 0);
	FZ_CHECK(memcmp(&c, &again, sizeof(c)) == 0);
}

static void answer(const uint8_t *p, size_t n)
{
	struct spk_shm_answer a, again;
	spoke_view v, v2;
	spoke_buf b;

	memset(&a, 0, sizeof(a));
	memset(&again, 0, sizeof(again));
	spoke_view_init(&v, p, n);
	if (spk_shm_answer_unpack(&v, &a) < 0)
		return;
	FZ_CHECK(spoke_view_remaining(&v) == 0 && a.status <= 0);
	FZ_CHECK(memchr(a.text, '\0', sizeof(a.text)));
	for (const char *t = a.text; *t; t++)
		FZ_CHECK((unsigned char)*t >= 0x20 && *t != 0x7f);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_shm_answer_pack(&b, &a) == 0);
	FZ_CHECK(b.len == n && memcmp(repacked, p, n) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_shm_answer_unpack(&v2, &again) == 0);
	FZ_CHECK(memcmp(&a, &again, sizeof(a)) == 0);
}

/* The payload: u64 the consumer's position, u64 the head a peer shows,
 * then the ring's bytes (the rest zero).  Up to 8 frames are taken. */
static void ring(const uint8_t *p, size_t n)
{
	static uint8_t mem[RING] __attribute__((aligned(64)));
	uint64_t head, tail = 0, pos;
	struct spk_shm_ring r;
	struct spk_hdr h;
	const uint8_t *f;

	if (n < 16)
		return;
	memcpy(&pos, p, 8);
	memcpy(&head, p + 8, 8);
	memset(mem, 0, sizeof(mem));
	memcpy(mem, p + 16, n - 16 < RING ? n - 16 : RING);
	pos = pos % (4 * RING) / SPK_SHM_ALIGN * SPK_SHM_ALIGN;
	spk_shm_ring_init(&r, mem, RING, &head, &tail, SPK_CALL, MAXP);
	r.also = SPK_CANCEL; /* the worker's request ring */
	r.pos = r.peer = pos;
	/* Looking ahead (the worker, for CANCELs) hands out the same frames. */
	for (uint64_t at = pos; at <= head;) {
		int rc = spk_shm_ring_scan(&r, &at, &h, &f);

		FZ_CHECK(rc == 0 || rc == 1 || rc == SPOKE_EPROTO || rc == SPOKE_ETOOBIG);
		if (rc != 0)
			break;
		FZ_CHECK(f >= mem && f + SPK_HDR_SIZE <= mem + RING && at <= head);
		FZ_CHECK((h.type == SPK_CALL || (h.type == SPK_CANCEL && !h.len)) && h.len <= MAXP);
		FZ_CHECK(r.pos == pos);
	}
	r.peer = pos;
	for (int k = 0; k < 8; k++) {
		int rc = spk_shm_ring_peek(&r, &h, &f);

		FZ_CHECK(rc == 0 || rc == 1 || rc == SPOKE_EPROTO || rc == SPOKE_ETOOBIG);
		if (rc != 0)
			return;
		FZ_CHECK(f >= mem && f + SPK_HDR_SIZE <= mem + RING);
		FZ_CHECK((h.type == SPK_CALL || (h.type == SPK_CANCEL && !h.len)) && h.len <= MAXP);
		if (!(h.flags & (SPK_SF_BULK | SPK_SF_MR)))
			FZ_CHECK(f + SPK_HDR_SIZE + h.len <= mem + RING);
		spk_shm_ring_release(&r);
		FZ_CHECK(r.pos <= head);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % SEL_COUNT_) {
	case SEL_OFFER: offer(data + 1, size - 1); break;
	case SEL_CONNECT: connect_msg(data + 1, size - 1); break;
	case SEL_ANSWER: answer(data + 1, size - 1); break;
	case SEL_RING: ring(data + 1, size - 1); break;
	}
	return 0;
}

static void seeds(void)
{
	struct spk_shm_offer o = { .index = 3, .ring = SPK_SHM_RING, .credits = SPK_SHM_CREDITS,
				   .max_msg = 64u << 20 };
	struct spk_shm_connect c = { .version = SPK_SHM_VERSION, .index = 3, .ring = SPK_SHM_RING };
	struct spk_shm_answer a = { .status = SPOKE_ETRANSPORT };
	uint8_t frames[16 + 256];
	uint64_t head = 192;
	spoke_buf b;

	for (unsigned i = 0; i < SPK_SHM_COOKIE; i++)
		o.cookie[i] = c.cookie[i] = (uint8_t)(i * 7);
	memcpy(o.name, SPK_SHM_NAME_PREFIX "0123456789abcdef", sizeof(SPK_SHM_NAME_PREFIX) + 16);
	snprintf(a.text, sizeof(a.text), "64 set-ups at once; try again");
	fz_buf(&b);
	spk_shm_offer_pack(&b, &o);
	fz_seed_sel("offer", SEL_OFFER, &b);
	fz_buf(&b);
	spk_shm_connect_pack(&b, &c);
	fz_seed_sel("connect", SEL_CONNECT, &b);
	fz_buf(&b);
	spk_shm_answer_pack(&b, &a);
	fz_seed_sel("answer", SEL_ANSWER, &b);
	/* Three frames published at the ring's start: 40 bytes, then 0, then
	 * a CANCEL of the first. */
	memset(frames, 0, sizeof(frames));
	memcpy(frames + 8, &head, 8);
	spk_hdr_encode(frames + 16, SPK_CALL, 1, 7, 40);
	spk_hdr_encode(frames + 16 + 64, SPK_CALL, 2, 7, 0);
	spk_hdr_encode(frames + 16 + 128, SPK_CANCEL, 1, 0, 0);
	fz_buf(&b);
	spoke_buf_put_raw(&b, frames, sizeof(frames));
	fz_seed_sel("ring", SEL_RING, &b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-shm-wire", seeds);
	return 0;
}

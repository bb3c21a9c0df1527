/* fuzz_rdma_wire.c - the RDMA transport's decoders (runtime/lib/transport/rdma/rdma_wire.c):
 * the worker's offer (what a client reads off the TCP channel) and the
 * connection request's private data (what a worker reads off rdma_cm,
 * before any proof).  Built only with RDMA; no device, no verbs call.
 *
 * Input: a selector byte, then the payload.  Properties: whatever decodes
 * reads its whole payload, holds 1 to SPK_RDMA_ADDRS addresses, each a
 * string shorter than its array, and packs again to the same bytes (the
 * private data: to its first SPK_RDMA_CONNECT_SIZE bytes, the rest being
 * the transport's zeros), which decode to the same message. */
#include <stdio.h>
#include <string.h>

#include <spoke/errors.h>

#include "fuzz.h"
#include "transport/rdma/rdma_wire.h"

enum { SEL_OFFER, SEL_CONNECT, SEL_COUNT_ };

static uint8_t repacked[1 << 13];

static void offer(const uint8_t *p, size_t n)
{
	struct spk_rdma_offer o, again;
	spoke_view v, v2;
	spoke_buf b;

	spoke_view_init(&v, p, n);
	if (spk_rdma_offer_unpack(&v, &o) < 0)
		return;
	FZ_CHECK(spoke_view_remaining(&v) == 0);
	FZ_CHECK(o.n_addrs >= 1 && o.n_addrs <= SPK_RDMA_ADDRS);
	for (uint32_t i = 0; i < o.n_addrs; i++)
		FZ_CHECK(o.addrs[i][0] && memchr(o.addrs[i], '\0', sizeof(o.addrs[i])));
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_rdma_offer_pack(&b, &o) == 0);
	FZ_CHECK(b.len == n && memcmp(repacked, p, n) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_rdma_offer_unpack(&v2, &again) == 0);
	FZ_CHECK(memcmp(&o, &again, sizeof(o)) == 0);
}

static void connect_req(const uint8_t *p, size_t n)
{
	struct spk_rdma_connect c, again;
	spoke_view v, v2;
	spoke_buf b;

	spoke_view_init(&v, p, n);
	if (spk_rdma_connect_unpack(&v, &c) < 0)
		return;
	FZ_CHECK(spoke_view_remaining(&v) == 0 && n >= SPK_RDMA_CONNECT_SIZE);
	for (size_t i = SPK_RDMA_CONNECT_SIZE; i < n; i++)
		FZ_CHECK(p[i] == 0);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_rdma_connect_pack(&b, &c) == 0);
	FZ_CHECK(b.len == SPK_RDMA_CONNECT_SIZE && memcmp(repacked, p, b.len) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_rdma_connect_unpack(&v2, &again) == 0);
	FZ_CHECK(memcmp(&c, &again, sizeof(c)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % SEL_COUNT_) {
	case SEL_OFFER: offer(data + 1, size - 1); break;
	case SEL_CONNECT: connect_req(data + 1, size - 1); break;
	}
	return 0;
}

static void seeds(void)
{
	struct spk_rdma_offer o = { .port = 18515, .index = 3, .slot = SPK_RDMA_SLOT,
				    .credits = SPK_RDMA_CREDITS, .max_msg = 64u << 20,
				    .n_addrs = 1, .addrs = { "192.168.7.2" } };
	struct spk_rdma_connect c = { .index = 3 };
	static const uint8_t pad[20];
	spoke_buf b;

	for (unsigned i = 0; i < SPK_RDMA_COOKIE; i++)
		o.cookie[i] = (uint8_t)(i * 7);
	for (unsigned i = 0; i < SPK_MAC_SIZE; i++)
		c.mac[i] = (uint8_t)(i * 5 + 1);
	fz_buf(&b);
	spk_rdma_offer_pack(&b, &o);
	fz_seed_sel("offer", SEL_OFFER, &b);
	o.n_addrs = 3;
	snprintf(o.addrs[0], sizeof(o.addrs[0]), "10.0.0.1");
	snprintf(o.addrs[1], sizeof(o.addrs[1]), "fe80::1");
	snprintf(o.addrs[2], sizeof(o.addrs[2]), "172.16.0.9");
	fz_buf(&b);
	spk_rdma_offer_pack(&b, &o);
	fz_seed_sel("offer-3", SEL_OFFER, &b);
	fz_buf(&b);
	spk_rdma_connect_pack(&b, &c);
	fz_seed_sel("connect", SEL_CONNECT, &b);
	/* As a worker gets it over InfiniBand or RoCE (56 bytes, zero-padded). */
	spoke_buf_put_raw(&b, pad, sizeof(pad));
	fz_seed_sel("connect-padded", SEL_CONNECT, &b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-rdma-wire", seeds);
	return 0;
}

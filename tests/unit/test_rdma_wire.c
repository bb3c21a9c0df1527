/* test_rdma_wire.c - unit tests of the RDMA transport's messages
 * (runtime/lib/transport/rdma/rdma_wire.c: the worker's offer, the connection request's
 * private data).  No device, no verbs call: pack then unpack gives the
 * message back, in the bytes the transport always sent (laid out here by
 * hand, field by field); every truncation is refused, so are trailing
 * bytes, a count of addresses that lies or is out of range, and an address
 * that is not one. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "transport/rdma/rdma_wire.h"
#include "testutil.h"

#define WIRE_CAP 4096

static void sample_offer(struct spk_rdma_offer *o, uint32_t n)
{
	static const char *const addrs[SPK_RDMA_ADDRS] = {
		"192.168.7.2", "10.0.0.1", "fe80::1", "255.255.255.255",
		"2001:db8:85a3::8a2e:370:7334", "172.16.0.9", "::1",
		"0000:0000:0000:0000:0000:ffff:255.255.255.255" /* the longest */
	};

	memset(o, 0, sizeof(*o));
	o->port = 18515;
	o->index = 13;
	for (unsigned i = 0; i < SPK_RDMA_COOKIE; i++)
		o->cookie[i] = (uint8_t)(0xa0 + i);
	o->slot = SPK_RDMA_SLOT;
	o->credits = SPK_RDMA_CREDITS;
	o->max_msg = 64u << 20;
	o->n_addrs = n;
	for (uint32_t i = 0; i < n; i++)
		snprintf(o->addrs[i], sizeof(o->addrs[i]), "%s", addrs[i]);
}

/* The offer as rdma_server.c packed it, field by field, before rdma_wire.c;
 * count is the count written, addresses the ones that follow it. */
static size_t offer_by_hand(uint8_t *wire, const struct spk_rdma_offer *o, uint32_t count,
			    uint32_t addresses)
{
	spoke_buf b;

	spoke_buf_init(&b, wire, WIRE_CAP);
	spoke_buf_put_u16(&b, o->port);
	spoke_buf_put_u32(&b, o->index);
	spoke_buf_put_raw(&b, o->cookie, SPK_RDMA_COOKIE);
	spoke_buf_put_u32(&b, o->slot);
	spoke_buf_put_u32(&b, o->credits);
	spoke_buf_put_u32(&b, o->max_msg);
	spoke_buf_put_u32(&b, count);
	for (uint32_t i = 0; i < addresses; i++)
		spoke_buf_put_str(&b, o->addrs[i]);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	return b.len;
}

/* Decodes exactly n bytes of p (an exact heap copy: ASan sees a read past
 * the end). */
static int offer_decode(const uint8_t *p, size_t n, struct spk_rdma_offer *o)
{
	uint8_t *copy = dup_exact(p, n);
	spoke_view v;
	int rc;

	spoke_view_init(&v, copy, n);
	rc = spk_rdma_offer_unpack(&v, o);
	ck_assert(rc < 0 || spoke_view_remaining(&v) == 0);
	free(copy);
	return rc;
}

static int connect_decode(const uint8_t *p, size_t n, struct spk_rdma_connect *c)
{
	uint8_t *copy = dup_exact(p, n);
	spoke_view v;
	int rc;

	spoke_view_init(&v, copy, n);
	rc = spk_rdma_connect_unpack(&v, c);
	free(copy);
	return rc;
}

static void same_offer(const struct spk_rdma_offer *a, const struct spk_rdma_offer *b)
{
	ck_assert_uint_eq(a->port, b->port);
	ck_assert_uint_eq(a->index, b->index);
	ck_assert(memcmp(a->cookie, b->cookie, SPK_RDMA_COOKIE) == 0);
	ck_assert_uint_eq(a->slot, b->slot);
	ck_assert_uint_eq(a->credits, b->credits);
	ck_assert_uint_eq(a->max_msg, b->max_msg);
	ck_assert_uint_eq(a->n_addrs, b->n_addrs);
	for (uint32_t i = 0; i < a->n_addrs; i++)
		ck_assert_str_eq(a->addrs[i], b->addrs[i]);
}

/* 1 to SPK_RDMA_ADDRS addresses: the loop's index plus one. */
START_TEST(test_offer_round_trip)
{
	static uint8_t wire[WIRE_CAP], hand[WIRE_CAP], again[WIRE_CAP];
	struct spk_rdma_offer o, got;
	uint32_t n = (uint32_t)_i + 1;
	spoke_buf b;
	size_t len;

	sample_offer(&o, n);
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_rdma_offer_pack(&b, &o), 0);
	len = offer_by_hand(hand, &o, n, n);
	ck_assert_msg(b.len == len && memcmp(wire, hand, len) == 0,
		      "%u addresses: other bytes than the transport's", n);
	ck_assert_msg(offer_decode(wire, len, &got) == 0, "unpack: %s", spoke_errmsg());
	same_offer(&o, &got);
	spoke_buf_init(&b, again, sizeof(again));
	ck_assert_int_eq(spk_rdma_offer_pack(&b, &got), 0);
	ck_assert(b.len == len && memcmp(again, wire, len) == 0);
}
END_TEST

START_TEST(test_offer_truncated)
{
	static uint8_t wire[WIRE_CAP];
	struct spk_rdma_offer o, got;
	uint32_t n = (uint32_t)_i + 1;
	size_t len;

	sample_offer(&o, n);
	len = offer_by_hand(wire, &o, n, n);
	for (size_t k = 0; k < len; k++)
		ck_assert_msg(offer_decode(wire, k, &got) == SPOKE_ESHORT,
			      "%u addresses: %zu of %zu bytes decoded", n, k, len);
}
END_TEST

START_TEST(test_offer_trailing)
{
	static uint8_t wire[WIRE_CAP];
	struct spk_rdma_offer o, got;
	size_t len;

	sample_offer(&o, 2);
	len = offer_by_hand(wire, &o, 2, 2);
	wire[len] = 0;
	ck_assert_int_eq(offer_decode(wire, len + 1, &got), SPOKE_EPROTO);
	/* The count says one address, two follow. */
	len = offer_by_hand(wire, &o, 1, 2);
	ck_assert_int_eq(offer_decode(wire, len, &got), SPOKE_EPROTO);
}
END_TEST

START_TEST(test_offer_count)
{
	static uint8_t wire[WIRE_CAP];
	static const uint32_t counts[] = { 0, SPK_RDMA_ADDRS + 1, 1000, UINT32_MAX };
	struct spk_rdma_offer o, got;
	size_t len;
	spoke_buf b;

	/* More than the addresses that follow. */
	sample_offer(&o, SPK_RDMA_ADDRS);
	for (uint32_t n = 0; n < SPK_RDMA_ADDRS; n++) {
		len = offer_by_hand(wire, &o, n + 1, n);
		ck_assert_int_eq(offer_decode(wire, len, &got), SPOKE_ESHORT);
	}
	/* Out of range, whatever follows; refused before any address is read. */
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		len = offer_by_hand(wire, &o, counts[k], SPK_RDMA_ADDRS);
		ck_assert_msg(offer_decode(wire, len, &got) == SPOKE_EPROTO, "count %u decoded",
			      counts[k]);
		len = offer_by_hand(wire, &o, counts[k], 0);
		ck_assert_int_eq(offer_decode(wire, len, &got), SPOKE_EPROTO);
	}
	/* As many real addresses as the count says, one too many. */
	len = offer_by_hand(wire, &o, SPK_RDMA_ADDRS + 1, SPK_RDMA_ADDRS);
	spoke_buf_init(&b, wire + len, sizeof(wire) - len);
	spoke_buf_put_str(&b, "10.9.9.9");
	ck_assert_int_eq(offer_decode(wire, len + b.len, &got), SPOKE_EPROTO);
	/* And the packer packs no such offer. */
	for (size_t k = 0; k < 2; k++) {
		o.n_addrs = counts[k];
		spoke_buf_init(&b, wire, sizeof(wire));
		ck_assert_int_eq(spk_rdma_offer_pack(&b, &o), SPOKE_EINVAL);
		ck_assert_int_eq(spoke_buf_error(&b), SPOKE_EINVAL);
		ck_assert_uint_eq(b.len, 0);
	}
}
END_TEST

/* An offer whose second address is the n bytes at a. */
static size_t offer_with(uint8_t *wire, const char *a, size_t n)
{
	struct spk_rdma_offer o;
	size_t len;
	spoke_buf b;

	sample_offer(&o, 1);
	len = offer_by_hand(wire, &o, 2, 1);
	spoke_buf_init(&b, wire + len, WIRE_CAP - len);
	spoke_buf_put_strn(&b, a, n);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	return len + b.len;
}

START_TEST(test_offer_bad_address)
{
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		{ "", 0 }, { "10.0.0.1\n", 9 }, { "10.0.0\0001", 8 }, { "10.0.0.1 ", 9 },
		{ "node7.cluster", 13 }, { "10.0.0.256", 10 }, { "..", 2 }, { "10.0.0.1/24", 11 },
		{ "\x1b[2J", 4 }, { "1:2:3:4:5:6:7:8:9", 17 }, { "\x7f", 1 },
	};
	static const char longest[] = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
	static uint8_t wire[WIRE_CAP];
	char too_long[SPK_RDMA_ADDR_MAX];
	struct spk_rdma_offer got;
	size_t len;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		len = offer_with(wire, bad[k].s, bad[k].n);
		ck_assert_msg(offer_decode(wire, len, &got) == SPOKE_EINVAL, "bad address %zu decoded",
			      k);
	}
	/* Too long by one byte (SPK_RDMA_ADDR_MAX - 1 fit with the NUL). */
	memset(too_long, '1', sizeof(too_long));
	len = offer_with(wire, too_long, sizeof(too_long));
	ck_assert_int_eq(offer_decode(wire, len, &got), SPOKE_EINVAL);
	/* The longest an address prints: accepted. */
	ck_assert_uint_eq(strlen(longest), SPK_RDMA_ADDR_MAX - 1);
	len = offer_with(wire, longest, strlen(longest));
	ck_assert_msg(offer_decode(wire, len, &got) == 0, "%s", spoke_errmsg());
	ck_assert_str_eq(got.addrs[1], longest);
}
END_TEST

static void sample_connect(struct spk_rdma_connect *c)
{
	c->index = 0x01020304;
	for (unsigned i = 0; i < SPK_MAC_SIZE; i++)
		c->mac[i] = (uint8_t)(0x55 ^ i);
}

START_TEST(test_connect_round_trip)
{
	uint8_t wire[SPK_RDMA_CONNECT_SIZE], again[SPK_RDMA_CONNECT_SIZE], hand[64] = { 0 };
	struct spk_rdma_connect c, got;
	spoke_buf b;

	sample_connect(&c);
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_rdma_connect_pack(&b, &c), 0);
	ck_assert_uint_eq(b.len, SPK_RDMA_CONNECT_SIZE);
	/* The transport's bytes: the index little-endian, then the MAC. */
	hand[0] = 0x04;
	hand[1] = 0x03;
	hand[2] = 0x02;
	hand[3] = 0x01;
	memcpy(hand + 4, c.mac, SPK_MAC_SIZE);
	ck_assert(memcmp(wire, hand, SPK_RDMA_CONNECT_SIZE) == 0);
	ck_assert_int_eq(connect_decode(wire, sizeof(wire), &got), 0);
	ck_assert_uint_eq(got.index, c.index);
	ck_assert(memcmp(got.mac, c.mac, SPK_MAC_SIZE) == 0);
	spoke_buf_init(&b, again, sizeof(again));
	ck_assert_int_eq(spk_rdma_connect_pack(&b, &got), 0);
	ck_assert(memcmp(again, wire, sizeof(wire)) == 0);
	/* As the worker gets it over InfiniBand or RoCE: padded with zeros. */
	ck_assert_int_eq(connect_decode(hand, 56, &got), 0);
	ck_assert_uint_eq(got.index, c.index);
	ck_assert(memcmp(got.mac, c.mac, SPK_MAC_SIZE) == 0);
}
END_TEST

START_TEST(test_connect_refused)
{
	uint8_t wire[64] = { 0 };
	struct spk_rdma_connect c, got;
	spoke_buf b;

	sample_connect(&c);
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_rdma_connect_pack(&b, &c), 0);
	for (size_t k = 0; k < SPK_RDMA_CONNECT_SIZE; k++)
		ck_assert_msg(connect_decode(wire, k, &got) == SPOKE_ESHORT, "%zu bytes decoded", k);
	/* Trailing bytes that are not the transport's zeros. */
	for (size_t k = SPK_RDMA_CONNECT_SIZE; k < sizeof(wire); k++) {
		wire[k] = 1;
		ck_assert_msg(connect_decode(wire, sizeof(wire), &got) == SPOKE_EPROTO,
			      "a non-zero byte at %zu accepted", k);
		wire[k] = 0;
	}
}
END_TEST

static Suite *rdma_wire_suite(void)
{
	Suite *s = suite_create("rdma_wire");
	TCase *tc = tcase_create("offer");

	tcase_add_loop_test(tc, test_offer_round_trip, 0, SPK_RDMA_ADDRS);
	tcase_add_loop_test(tc, test_offer_truncated, 0, SPK_RDMA_ADDRS);
	tcase_add_test(tc, test_offer_trailing);
	tcase_add_test(tc, test_offer_count);
	tcase_add_test(tc, test_offer_bad_address);
	suite_add_tcase(s, tc);
	tc = tcase_create("connect");
	tcase_add_test(tc, test_connect_round_trip);
	tcase_add_test(tc, test_connect_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rdma_wire_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

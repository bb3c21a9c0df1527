/* test_frame.c - unit tests of the wire frame codec (runtime/lib/frame.c) and
 * of the job token and HMAC helpers (runtime/lib/auth.c).
 *
 * Frames are parsed from heap copies of exactly their own size, so that a
 * read one byte too far is an AddressSanitizer error, not a silent pass. */
#include <check.h>
#include <sodium.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spoke/actor.h>
#include <spoke/client.h>
#include <spoke/errors.h>
#include <spoke/version.h>

#include "auth.h"
#include "frame.h"
#include "proto.h"
#include "testutil.h"

/* ---- helpers ---- */

/* spk_frame_parse on an exact heap copy of the first n bytes of buf. */
static long parse_exact(const uint8_t *buf, size_t n, uint32_t max, struct spk_hdr *h)
{
	uint8_t *copy = dup_exact(buf, n);
	long rc = spk_frame_parse(copy, n, max, h);

	free(copy);
	return rc;
}

/* A whole frame, header and payload (bytes 0, 1, 2...), in a malloc'd
 * buffer of exactly its size. */
static uint8_t *make_frame(uint8_t type, uint64_t id, int32_t aux, uint32_t len, size_t *size)
{
	uint8_t *f = malloc(SPK_HDR_SIZE + len);

	ck_assert_ptr_nonnull(f);
	spk_hdr_encode(f, type, id, aux, len);
	for (uint32_t i = 0; i < len; i++)
		f[SPK_HDR_SIZE + i] = (uint8_t)i;
	*size = SPK_HDR_SIZE + len;
	return f;
}

/* A valid header with one byte changed. */
static void bad_header(uint8_t out[SPK_HDR_SIZE], size_t off, uint8_t value)
{
	spk_hdr_encode(out, SPK_CALL, 7, 3, 0);
	out[off] = value;
}

/* xorshift64: a fixed, portable sequence for the fuzz loops. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static int is_parse_error(long rc)
{
	return rc == SPOKE_EPROTO || rc == SPOKE_EVERSION || rc == SPOKE_ETOOBIG;
}

/* ---- header layout ---- */

START_TEST(test_encode_layout)
{
	static const uint8_t want[SPK_HDR_SIZE] = {
		'S', 'P', 'K', '1',                             /* magic */
		SPOKE_PROTOCOL_VERSION,                         /* version */
		SPK_CALL,                                       /* type */
		0x00, 0x00,                                     /* flags */
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* id */
		0xfe, 0xff, 0xff, 0xff,                         /* aux = -2 */
		0xef, 0xbe, 0xad, 0xde,                         /* len */
	};
	uint8_t out[SPK_HDR_SIZE];

	memset(out, 0xaa, sizeof(out));
	spk_hdr_encode(out, SPK_CALL, UINT64_C(0x0123456789abcdef), -2, 0xdeadbeefu);
	ck_assert_mem_eq(out, want, SPK_HDR_SIZE);
}
END_TEST

START_TEST(test_encode_layout_extremes)
{
	static const uint8_t want[SPK_HDR_SIZE] = {
		0x53, 0x50, 0x4b, 0x31,
		SPOKE_PROTOCOL_VERSION,
		SPK_READY,
		0x00, 0x00,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* id = UINT64_MAX */
		0x00, 0x00, 0x00, 0x80,                         /* aux = INT32_MIN */
		0x00, 0x00, 0x00, 0x00,                         /* len = 0 */
	};
	uint8_t out[SPK_HDR_SIZE];

	memset(out, 0xaa, sizeof(out));
	spk_hdr_encode(out, SPK_READY, UINT64_MAX, INT32_MIN, 0);
	ck_assert_mem_eq(out, want, SPK_HDR_SIZE);
}
END_TEST

/* Every valid type survives encode + decode, with ids and aux values that
 * use the high bits of each field. */
START_TEST(test_decode_round_trip)
{
	static const int32_t auxes[] = { 0, 1, -1, INT32_MIN, INT32_MAX, -1004 };
	static const uint64_t ids[] = { 0, 1, UINT64_C(0x8000000000000001), UINT64_MAX };
	uint8_t type = (uint8_t)_i;

	for (size_t a = 0; a < sizeof(auxes) / sizeof(auxes[0]); a++) {
		for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
			uint32_t len = (uint32_t)(a * 1000 + k);
			uint8_t buf[SPK_HDR_SIZE];
			struct spk_hdr h;

			memset(&h, 0x55, sizeof(h));
			spk_hdr_encode(buf, type, ids[k], auxes[a], len);
			ck_assert_int_eq(spk_hdr_decode(buf, len, &h), 0);
			ck_assert_uint_eq(h.type, type);
			ck_assert_uint_eq(h.flags, 0);
			ck_assert_uint_eq(h.id, ids[k]);
			ck_assert_int_eq(h.aux, auxes[a]);
			ck_assert_uint_eq(h.len, len);
		}
	}
}
END_TEST

START_TEST(test_type_names)
{
	ck_assert_str_eq(spk_type_name(SPK_HELLO), "HELLO");
	ck_assert_str_eq(spk_type_name(SPK_CALL), "CALL");
	ck_assert_str_eq(spk_type_name(SPK_READY), "READY");
	ck_assert_str_eq(spk_type_name(0), "?");
	ck_assert_str_eq(spk_type_name(SPK_TYPE_MAX_ + 1), "?");
	ck_assert_str_eq(spk_type_name(255), "?");
	/* Every valid type has its own name. */
	for (unsigned t = SPK_HELLO; t <= SPK_TYPE_MAX_; t++) {
		ck_assert_str_ne(spk_type_name((uint8_t)t), "?");
		for (unsigned u = SPK_HELLO; u < t; u++)
			ck_assert_str_ne(spk_type_name((uint8_t)t), spk_type_name((uint8_t)u));
	}
}
END_TEST

/* ---- spk_frame_parse ---- */

START_TEST(test_parse_complete)
{
	static const uint32_t lens[] = { 0, 1, 23, 24, 25, 1000 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct spk_hdr h;
		size_t size;
		uint8_t *f = make_frame(SPK_REPLY, 42 + i, -7, lens[i], &size);

		memset(&h, 0, sizeof(h));
		ck_assert_int_eq(spk_frame_parse(f, size, 4096, &h), (long)size);
		ck_assert_uint_eq(h.type, SPK_REPLY);
		ck_assert_uint_eq(h.id, 42 + i);
		ck_assert_int_eq(h.aux, -7);
		ck_assert_uint_eq(h.len, lens[i]);
		free(f);
	}
}
END_TEST

/* Every strict prefix of a valid frame, empty included, asks for more. */
START_TEST(test_parse_truncated)
{
	static const uint32_t lens[] = { 0, 1, 40 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t size;
		uint8_t *f = make_frame(SPK_SPAWN, 9, 1, lens[i], &size);

		for (size_t n = 0; n < size; n++) {
			struct spk_hdr h;

			ck_assert_msg(parse_exact(f, n, 4096, &h) == 0,
				      "prefix of %zu of %zu bytes: want 0", n, size);
		}
		free(f);
	}
}
END_TEST

/* A prefix is refused as soon as its bytes contradict the magic, and not
 * before. */
START_TEST(test_parse_prefix_bad_magic)
{
	for (size_t pos = 0; pos < 4; pos++) {
		uint8_t buf[SPK_HDR_SIZE];

		spk_hdr_encode(buf, SPK_HELLO, 1, 0, 0);
		buf[pos] ^= 0x20;
		for (size_t n = 0; n <= SPK_HDR_SIZE; n++) {
			struct spk_hdr h;
			long want = n <= pos ? 0 : SPOKE_EPROTO;

			ck_assert_msg(parse_exact(buf, n, 4096, &h) == want,
				      "magic byte %zu wrong, prefix %zu: want %ld", pos, n, want);
		}
	}
}
END_TEST

START_TEST(test_parse_garbage)
{
	static const char *const inputs[] = {
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"SPK2\x01\x05\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
		"1KPS\x01\x05\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", /* big-endian magic */
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		size_t n = strlen(inputs[i]);
		struct spk_hdr h;

		if (n < SPK_HDR_SIZE)
			n = SPK_HDR_SIZE; /* the NULs that strlen stopped at */
		ck_assert_int_eq(parse_exact((const uint8_t *)inputs[i], n, 4096, &h), SPOKE_EPROTO);
	}
	{
		uint8_t zeros[SPK_HDR_SIZE] = { 0 };
		struct spk_hdr h;

		ck_assert_int_eq(parse_exact(zeros, sizeof(zeros), 4096, &h), SPOKE_EPROTO);
		ck_assert_int_eq(spk_hdr_decode(zeros, 4096, &h), SPOKE_EPROTO);
	}
}
END_TEST

START_TEST(test_parse_wrong_version)
{
	static const uint8_t versions[] = {
		0, SPOKE_PROTOCOL_VERSION + 1, SPOKE_PROTOCOL_VERSION ^ 0x80, 255,
	};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		uint8_t buf[SPK_HDR_SIZE];
		struct spk_hdr h;

		bad_header(buf, 4, versions[i]);
		ck_assert_int_eq(parse_exact(buf, sizeof(buf), 4096, &h), SPOKE_EVERSION);
		ck_assert_int_eq(spk_hdr_decode(buf, 4096, &h), SPOKE_EVERSION);
		/* A peer of another version may use types we do not know: the
		 * version is what to report. */
		buf[5] = 200;
		ck_assert_int_eq(parse_exact(buf, sizeof(buf), 4096, &h), SPOKE_EVERSION);
	}
}
END_TEST

START_TEST(test_parse_unknown_type)
{
	static const uint8_t types[] = { 0, SPK_TYPE_MAX_ + 1, 255 };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		uint8_t buf[SPK_HDR_SIZE];
		struct spk_hdr h;

		bad_header(buf, 5, types[i]);
		ck_assert_int_eq(parse_exact(buf, sizeof(buf), 4096, &h), SPOKE_EPROTO);
		ck_assert_int_eq(spk_hdr_decode(buf, 4096, &h), SPOKE_EPROTO);
	}
}
END_TEST

START_TEST(test_parse_nonzero_flags)
{
	for (size_t off = 6; off <= 7; off++) {
		static const uint8_t values[] = { 0x01, 0x80, 0xff };

		for (size_t i = 0; i < sizeof(values); i++) {
			uint8_t buf[SPK_HDR_SIZE];
			struct spk_hdr h;

			bad_header(buf, off, values[i]);
			ck_assert_int_eq(parse_exact(buf, sizeof(buf), 4096, &h), SPOKE_EPROTO);
			ck_assert_int_eq(spk_hdr_decode(buf, 4096, &h), SPOKE_EPROTO);
		}
	}
}
END_TEST

/* The RDMA transport's flags: allowed bits come back, others refuse. */
START_TEST(test_decode_allowed_flags)
{
	uint8_t buf[SPK_HDR_SIZE];
	struct spk_hdr h;

	spk_hdr_encode(buf, SPK_CALL, 7, 3, 100);
	spk_hdr_set_flags(buf, 0x0003);
	ck_assert_int_eq(spk_hdr_decode(buf, 4096, &h), SPOKE_EPROTO);
	ck_assert_int_eq(spk_hdr_decode_flags(buf, 4096, 0x000f, &h), 0);
	ck_assert_uint_eq(h.flags, 0x0003);
	ck_assert_uint_eq(h.id, 7);
	ck_assert_uint_eq(h.len, 100);
	ck_assert_int_eq(spk_hdr_decode_flags(buf, 4096, 0x0001, &h), SPOKE_EPROTO);
	spk_hdr_set_flags(buf, 0x8000);
	ck_assert_int_eq(spk_hdr_decode_flags(buf, 4096, 0x000f, &h), SPOKE_EPROTO);
	ck_assert_int_eq(spk_hdr_decode_flags(buf, 99, 0x8000, &h), SPOKE_ETOOBIG);
	/* A CALL's own flags pass everywhere; on anything else they refuse. */
	spk_hdr_set_flags(buf, SPK_CF_STREAM);
	ck_assert_int_eq(spk_hdr_decode(buf, 4096, &h), 0);
	ck_assert_uint_eq(h.flags, SPK_CF_STREAM);
	spk_hdr_encode(buf, SPK_REPLY, 7, 0, 100);
	spk_hdr_set_flags(buf, SPK_CF_STREAM);
	ck_assert_int_eq(spk_hdr_decode(buf, 4096, &h), SPOKE_EPROTO);
}
END_TEST

START_TEST(test_parse_too_big)
{
	const uint32_t max = 100;
	struct spk_hdr h;
	size_t size;
	uint8_t *f;

	/* len == max: accepted, and needs the whole payload. */
	f = make_frame(SPK_CALL, 1, 2, max, &size);
	ck_assert_int_eq(parse_exact(f, size, max, &h), (long)(SPK_HDR_SIZE + max));
	ck_assert_uint_eq(h.len, max);
	ck_assert_int_eq(parse_exact(f, size - 1, max, &h), 0);
	free(f);

	/* len == max + 1: refused from the header alone, without waiting for
	 * a payload that may never fit in memory. */
	f = make_frame(SPK_CALL, 1, 2, max + 1, &size);
	ck_assert_int_eq(parse_exact(f, SPK_HDR_SIZE, max, &h), SPOKE_ETOOBIG);
	ck_assert_int_eq(parse_exact(f, size, max, &h), SPOKE_ETOOBIG);
	ck_assert_int_eq(spk_hdr_decode(f, max, &h), SPOKE_ETOOBIG);
	free(f);

	/* The largest lengths a header can carry. */
	{
		uint8_t buf[SPK_HDR_SIZE];

		spk_hdr_encode(buf, SPK_CALL, 1, 2, UINT32_MAX);
		ck_assert_int_eq(parse_exact(buf, sizeof(buf), SPK_MAX_PAYLOAD_LIMIT, &h),
				 SPOKE_ETOOBIG);
		spk_hdr_encode(buf, SPK_CALL, 1, 2, SPK_MAX_PAYLOAD_LIMIT);
		ck_assert_int_eq(parse_exact(buf, sizeof(buf), SPK_MAX_PAYLOAD_LIMIT, &h), 0);
		ck_assert_int_eq(spk_hdr_decode(buf, SPK_MAX_PAYLOAD_LIMIT, &h), 0);
		ck_assert_int_eq(spk_hdr_decode(buf, SPK_MAX_PAYLOAD_LIMIT - 1, &h), SPOKE_ETOOBIG);
	}

	/* A max of 0 still lets empty frames through. */
	f = make_frame(SPK_HELLO, 1, 0, 0, &size);
	ck_assert_int_eq(parse_exact(f, size, 0, &h), (long)SPK_HDR_SIZE);
	free(f);
}
END_TEST

/* Two frames in one buffer: the first parse sees only the first frame; the
 * second parse, from where the first ended, sees the second. */
START_TEST(test_parse_back_to_back)
{
	size_t size1, size2, total;
	uint8_t *f1 = make_frame(SPK_CALL, 100, 5, 10, &size1);
	uint8_t *f2 = make_frame(SPK_REPLY, 101, -3, 3, &size2);
	uint8_t *both;
	struct spk_hdr h;
	long rc;

	total = size1 + size2;
	both = malloc(total);
	ck_assert_ptr_nonnull(both);
	memcpy(both, f1, size1);
	memcpy(both + size1, f2, size2);

	rc = spk_frame_parse(both, total, 4096, &h);
	ck_assert_int_eq(rc, (long)size1);
	ck_assert_uint_eq(h.type, SPK_CALL);
	ck_assert_uint_eq(h.id, 100);
	ck_assert_int_eq(h.aux, 5);
	ck_assert_uint_eq(h.len, 10);
	ck_assert_mem_eq(both + SPK_HDR_SIZE, f1 + SPK_HDR_SIZE, 10);

	rc = spk_frame_parse(both + size1, total - size1, 4096, &h);
	ck_assert_int_eq(rc, (long)size2);
	ck_assert_uint_eq(h.type, SPK_REPLY);
	ck_assert_uint_eq(h.id, 101);
	ck_assert_int_eq(h.aux, -3);
	ck_assert_uint_eq(h.len, 3);

	/* The first frame plus part of the second: still only the first. */
	ck_assert_int_eq(spk_frame_parse(both, size1 + 5, 4096, &h), (long)size1);
	ck_assert_int_eq(parse_exact(both + size1, 5, 4096, &h), 0);

	free(both);
	free(f2);
	free(f1);
}
END_TEST

/* ---- spk_max_payload ---- */

static uint32_t max_payload_with(const char *value)
{
	if (value)
		ck_assert_int_eq(setenv("SPOKE_MAX_MSG", value, 1), 0);
	else
		ck_assert_int_eq(unsetenv("SPOKE_MAX_MSG"), 0);
	return spk_max_payload();
}

START_TEST(test_max_payload_env)
{
	ck_assert_uint_eq(max_payload_with(NULL), SPK_MAX_PAYLOAD_DEFAULT);
	ck_assert_uint_eq(max_payload_with(""), SPK_MAX_PAYLOAD_DEFAULT);
	ck_assert_uint_eq(max_payload_with("12345"), 12345);
	ck_assert_uint_eq(max_payload_with("1M"), 1u << 20);
	ck_assert_uint_eq(max_payload_with("3m"), 3u << 20);
	ck_assert_uint_eq(max_payload_with("512k"), 512u << 10);
	ck_assert_uint_eq(max_payload_with("512K"), 512u << 10);
	ck_assert_uint_eq(max_payload_with("1G"), SPK_MAX_PAYLOAD_LIMIT);
	ck_assert_uint_eq(max_payload_with("1073741823"), SPK_MAX_PAYLOAD_LIMIT - 1);
	ck_assert_uint_eq(max_payload_with("4k"), SPK_MAX_PAYLOAD_MIN);
}
END_TEST

START_TEST(test_max_payload_garbage)
{
	/* Garbage, and sizes outside 4k..1g, are refused, naming the value;
	 * where nobody can be told, the default is used. */
	static const char *const bad[] = { "abc", "M", "12x", "1MB", "1 M", "0", "0k", "1.5M",
					   " 5M", "-1", "4095", "2G", "2g", "1025M",
					   "4294967296", "18446744073709551617" };
	uint32_t v = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[64];

		ck_assert_msg(max_payload_with(bad[i]) == SPK_MAX_PAYLOAD_DEFAULT,
			      "SPOKE_MAX_MSG=\"%s\": want the default", bad[i]);
		ck_assert_int_eq(spk_max_payload_env(&v), SPOKE_EINVAL);
		snprintf(want, sizeof(want), "SPOKE_MAX_MSG=%s: expected a size", bad[i]);
		ck_assert_msg(strstr(spoke_errmsg(), want), "message: %s", spoke_errmsg());
		ck_assert_msg(strstr(spoke_errmsg(), "from 4k to 1g"), "message: %s", spoke_errmsg());
	}
	ck_assert_int_eq(unsetenv("SPOKE_MAX_MSG"), 0);
}
END_TEST

/* ---- fuzz ---- */

/* Checks one parse result against the input it came from. */
static void check_parse_result(const uint8_t *buf, size_t n, uint32_t max, long rc,
			       const struct spk_hdr *h)
{
	ck_assert_msg(rc >= 0 || is_parse_error(rc), "unexpected result %ld", rc);
	if (rc > 0) {
		ck_assert_uint_ge(n, SPK_HDR_SIZE);
		ck_assert_int_eq(rc, (long)(SPK_HDR_SIZE + h->len));
		ck_assert_uint_le((size_t)rc, n);
		ck_assert_uint_le(h->len, max);
		ck_assert_uint_ge(h->type, SPK_HELLO);
		ck_assert_uint_le(h->type, SPK_TYPE_MAX_);
		ck_assert_uint_eq(h->flags, 0);
	}
	if (n >= SPK_HDR_SIZE) {
		/* A whole header: the parse agrees with the decoder. */
		struct spk_hdr d;
		int drc = spk_hdr_decode(buf, max, &d);

		if (drc < 0)
			ck_assert_int_eq(rc, drc);
		else
			ck_assert_int_eq(rc, n - SPK_HDR_SIZE >= d.len ? (long)(SPK_HDR_SIZE + d.len) : 0);
	} else if (rc < 0) {
		/* A short prefix is refused only for a wrong magic. */
		ck_assert_int_eq(rc, SPOKE_EPROTO);
	}
}

START_TEST(test_fuzz_random_bytes)
{
	uint8_t buf[96];

	rng_state = UINT64_C(0x9e3779b97f4a7c15);
	for (int iter = 0; iter < 100000; iter++) {
		size_t n = rng() % (sizeof(buf) + 1);
		uint32_t max = (uint32_t)(rng() % 128);
		struct spk_hdr h;
		uint8_t *copy;
		long rc;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rng();
		/* Often start with a good magic, version and flags (and a
		 * random type), and often a small length, so that the later
		 * checks and complete frames are reached too. */
		if (rng() % 2) {
			uint8_t hdr[SPK_HDR_SIZE];

			spk_hdr_encode(hdr, (uint8_t)rng(), 0, 0, 0);
			memcpy(buf, hdr, n < 8 ? n : 8);
			if (rng() % 2)
				memset(buf + 21, 0, 3);
		}
		copy = dup_exact(buf, n);
		rc = spk_frame_parse(copy, n, max, &h);
		check_parse_result(copy, n, max, rc, &h);
		free(copy);
	}
}
END_TEST

/* Valid frames with a few bytes changed and a random cut. */
START_TEST(test_fuzz_mutated_frames)
{
	rng_state = UINT64_C(0x0123456789abcdef);
	for (int iter = 0; iter < 100000; iter++) {
		uint32_t len = (uint32_t)(rng() % 64);
		uint32_t max = (uint32_t)(rng() % 80);
		size_t size, n;
		struct spk_hdr h;
		uint8_t *f = make_frame((uint8_t)(1 + rng() % SPK_TYPE_MAX_), rng(), (int32_t)rng(),
					len, &size);
		uint8_t *copy;
		int flips = (int)(rng() % 4);
		long rc;

		for (int k = 0; k < flips; k++)
			f[rng() % size] ^= (uint8_t)(1u << (rng() % 8));
		n = rng() % 4 ? size : rng() % (size + 1);
		copy = dup_exact(f, n);
		rc = spk_frame_parse(copy, n, max, &h);
		check_parse_result(copy, n, max, rc, &h);
		free(copy);
		free(f);
	}
}
END_TEST

/* ---- auth: HMAC ---- */

static void fill_nonce(uint8_t nonce[SPK_NONCE_SIZE], uint8_t seed)
{
	for (size_t i = 0; i < SPK_NONCE_SIZE; i++)
		nonce[i] = (uint8_t)(seed + 7 * i);
}

START_TEST(test_mac_known_answer)
{
	/* RFC 4231 test case 3: key = 20 x 0xaa, data = 50 x 0xdd, split here
	 * as an 18-byte label and the 32-byte nonce. */
	static const uint8_t want[SPK_MAC_SIZE] = {
		0x77, 0x3e, 0xa9, 0x1e, 0x36, 0x80, 0x0e, 0x46, 0x85, 0x4d, 0xb8,
		0xeb, 0xd0, 0x91, 0x81, 0xa7, 0x29, 0x59, 0x09, 0x8b, 0x3e, 0xf8,
		0xc1, 0x22, 0xd9, 0x63, 0x55, 0x14, 0xce, 0xd5, 0x65, 0xfe,
	};
	char key[21], label[19];
	uint8_t nonce[SPK_NONCE_SIZE], mac[SPK_MAC_SIZE];

	ck_assert_int_eq(spk_auth_init(), 0);
	memset(key, 0xaa, 20);
	key[20] = '\0';
	memset(label, 0xdd, 18);
	label[18] = '\0';
	memset(nonce, 0xdd, sizeof(nonce));
	spk_auth_mac(mac, key, label, nonce);
	ck_assert_mem_eq(mac, want, SPK_MAC_SIZE);
	ck_assert(spk_auth_verify(want, key, label, nonce));
}
END_TEST

START_TEST(test_mac_round_trip)
{
	const char *token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	uint8_t nonce[SPK_NONCE_SIZE], other[SPK_NONCE_SIZE], mac[SPK_MAC_SIZE], mac2[SPK_MAC_SIZE];

	ck_assert_int_eq(spk_auth_init(), 0);
	fill_nonce(nonce, 1);
	spk_auth_mac(mac, token, "spoke-test-label", nonce);
	ck_assert(spk_auth_verify(mac, token, "spoke-test-label", nonce));

	/* Deterministic... */
	spk_auth_mac(mac2, token, "spoke-test-label", nonce);
	ck_assert_mem_eq(mac, mac2, SPK_MAC_SIZE);
	/* ...and bound to every input. */
	ck_assert(!spk_auth_verify(mac, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdee",
				   "spoke-test-label", nonce));
	ck_assert(!spk_auth_verify(mac, "", "spoke-test-label", nonce));
	ck_assert(!spk_auth_verify(mac, token, "spoke-other-label", nonce));
	fill_nonce(other, 1);
	other[SPK_NONCE_SIZE - 1] ^= 1;
	ck_assert(!spk_auth_verify(mac, token, "spoke-test-label", other));
	for (size_t i = 0; i < SPK_MAC_SIZE; i += 7) {
		memcpy(mac2, mac, SPK_MAC_SIZE);
		mac2[i] ^= 0x01;
		ck_assert(!spk_auth_verify(mac2, token, "spoke-test-label", nonce));
	}
	/* The server's proof differs from the client's for the same nonce. */
	spk_auth_mac(mac2, token, "spoke-other-label", nonce);
	ck_assert_mem_ne(mac, mac2, SPK_MAC_SIZE);
	ck_assert(spk_auth_verify(mac2, token, "spoke-other-label", nonce));
}
END_TEST

/* ---- auth: the handshake's proofs and messages ---- */

static const char *tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* The proof, computed here from its documented layout (auth.h) in one
 * piece, matches the runtime's field by field construction. */
START_TEST(test_proof_layout)
{
	static const char *fields[3] = { "spoke-handshake-2", "client", "actor:a:7" };
	uint8_t ns[SPK_NONCE_SIZE], nc[SPK_NONCE_SIZE], msg[256], want[SPK_MAC_SIZE];
	uint8_t mac[SPK_MAC_SIZE];
	crypto_auth_hmacsha256_state st;
	size_t n = 0;

	ck_assert_int_eq(spk_auth_init(), 0);
	fill_nonce(ns, 1);
	fill_nonce(nc, 2);
	for (int i = 0; i < 3; i++) {
		uint32_t len = (uint32_t)strlen(fields[i]);

		msg[n++] = (uint8_t)len;
		msg[n++] = 0;
		msg[n++] = 0;
		msg[n++] = 0;
		memcpy(msg + n, fields[i], len);
		n += len;
	}
	memcpy(msg + n, ns, SPK_NONCE_SIZE);
	memcpy(msg + n + SPK_NONCE_SIZE, nc, SPK_NONCE_SIZE);
	n += 2 * SPK_NONCE_SIZE;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)tok, strlen(tok));
	crypto_auth_hmacsha256_update(&st, msg, n);
	crypto_auth_hmacsha256_final(&st, want);
	spk_auth_proof(mac, tok, SPK_ROLE_CLIENT, "actor:a:7", ns, nc);
	ck_assert_mem_eq(mac, want, SPK_MAC_SIZE);
	ck_assert(spk_auth_proof_ok(want, tok, SPK_ROLE_CLIENT, "actor:a:7", ns, nc));
}
END_TEST

/* A proof is bound to the token, the role, the identity and both nonces
 * (each in its own place): change any one and it no longer verifies. */
START_TEST(test_proof_binding)
{
	uint8_t ns[SPK_NONCE_SIZE], nc[SPK_NONCE_SIZE], other[SPK_NONCE_SIZE];
	uint8_t mac[SPK_MAC_SIZE], mac2[SPK_MAC_SIZE];

	ck_assert_int_eq(spk_auth_init(), 0);
	fill_nonce(ns, 1);
	fill_nonce(nc, 2);
	spk_auth_proof(mac, tok, SPK_ROLE_CLIENT, SPK_IDENT_HUB, ns, nc);
	spk_auth_proof(mac2, tok, SPK_ROLE_CLIENT, SPK_IDENT_HUB, ns, nc);
	ck_assert_mem_eq(mac, mac2, SPK_MAC_SIZE);
	ck_assert(spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, SPK_IDENT_HUB, ns, nc));
	ck_assert(!spk_auth_proof_ok(mac, "another token", SPK_ROLE_CLIENT, SPK_IDENT_HUB, ns, nc));
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_SERVER, SPK_IDENT_HUB, ns, nc));
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, "actor:hub:1", ns, nc));
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, "hu", ns, nc));
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, SPK_IDENT_HUB, nc, ns));
	memcpy(other, ns, sizeof(other));
	other[SPK_NONCE_SIZE - 1] ^= 1;
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, SPK_IDENT_HUB, other, nc));
	memcpy(other, nc, sizeof(other));
	other[0] ^= 0x80;
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, SPK_IDENT_HUB, ns, other));
	for (size_t i = 0; i < SPK_MAC_SIZE; i += 5) {
		memcpy(mac2, mac, SPK_MAC_SIZE);
		mac2[i] ^= 0x01;
		ck_assert(!spk_auth_proof_ok(mac2, tok, SPK_ROLE_CLIENT, SPK_IDENT_HUB, ns, nc));
	}
	/* The server's proof is not the client's: one cannot be reflected. */
	spk_auth_proof(mac2, tok, SPK_ROLE_SERVER, SPK_IDENT_HUB, ns, nc);
	ck_assert_mem_ne(mac, mac2, SPK_MAC_SIZE);
	/* Incarnations of one name are different servers. */
	spk_auth_proof(mac, tok, SPK_ROLE_CLIENT, "actor:w:1", ns, nc);
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, "actor:w:11", ns, nc));
	ck_assert(!spk_auth_proof_ok(mac, tok, SPK_ROLE_CLIENT, "actor:w:2", ns, nc));
}
END_TEST

START_TEST(test_ident_actor)
{
	char name[SPOKE_ACTOR_NAME_MAX], ident[SPK_IDENT_MAX], want[SPK_IDENT_MAX + 8];

	spk_ident_actor(ident, "w1", 42);
	ck_assert_str_eq(ident, "actor:w1:42");
	/* The longest name and incarnation fit whole. */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	spk_ident_actor(ident, name, UINT64_MAX);
	snprintf(want, sizeof(want), "actor:%s:18446744073709551615", name);
	ck_assert_str_eq(ident, want);
}
END_TEST

/* Packs m as AUTH (auth) or AUTH_OK into buf; returns the length. */
static size_t pack_auth(uint8_t *buf, size_t cap, const struct spk_auth_msg *m, bool auth)
{
	spoke_buf b;

	spoke_buf_init(&b, buf, cap);
	ck_assert_int_eq(auth ? spk_auth_pack(&b, m) : spk_auth_ok_pack(&b, m), 0);
	return b.len;
}

static int unpack_auth(const uint8_t *buf, size_t len, struct spk_auth_msg *m, bool auth)
{
	spoke_view v;

	spoke_view_init(&v, buf, len);
	return auth ? spk_auth_unpack(&v, m) : spk_auth_ok_unpack(&v, m);
}

START_TEST(test_auth_msg_round_trip)
{
	struct spk_auth_msg m = { .ident = "actor:w:3" }, got;
	uint8_t buf[512];
	size_t n;

	fill_nonce(m.mac, 3);
	fill_nonce(m.nonce, 4);
	n = pack_auth(buf, sizeof(buf), &m, true);
	ck_assert_uint_eq(n, SPK_MAC_SIZE + SPK_NONCE_SIZE + 4 + strlen(m.ident));
	ck_assert_int_eq(unpack_auth(buf, n, &got, true), 0);
	ck_assert_mem_eq(got.mac, m.mac, SPK_MAC_SIZE);
	ck_assert_mem_eq(got.nonce, m.nonce, SPK_NONCE_SIZE);
	ck_assert_str_eq(got.ident, m.ident);
	/* Every truncation, and a byte too many, is refused. */
	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(unpack_auth(buf, k, &got, true), SPOKE_EPROTO);
	ck_assert_int_eq(unpack_auth(buf, n + 1, &got, true), SPOKE_EPROTO);

	n = pack_auth(buf, sizeof(buf), &m, false);
	ck_assert_uint_eq(n, SPK_MAC_SIZE + 4 + strlen(m.ident));
	ck_assert_int_eq(unpack_auth(buf, n, &got, false), 0);
	ck_assert_mem_eq(got.mac, m.mac, SPK_MAC_SIZE);
	ck_assert_str_eq(got.ident, m.ident);
	for (size_t k = 0; k < n; k++)
		ck_assert_int_eq(unpack_auth(buf, k, &got, false), SPOKE_EPROTO);
	/* A refusal may name nobody; an AUTH must name the server. */
	m.ident[0] = '\0';
	n = pack_auth(buf, sizeof(buf), &m, false);
	ck_assert_int_eq(unpack_auth(buf, n, &got, false), 0);
	ck_assert_str_eq(got.ident, "");
	n = pack_auth(buf, sizeof(buf), &m, true);
	ck_assert_int_eq(unpack_auth(buf, n, &got, true), SPOKE_EPROTO);
	/* The largest AUTH fits the pre-handshake limit exactly. */
	memset(m.ident, 'i', SPK_IDENT_MAX - 1);
	m.ident[SPK_IDENT_MAX - 1] = '\0';
	n = pack_auth(buf, sizeof(buf), &m, true);
	ck_assert_uint_eq(n, SPK_AUTH_MAX - 1);
	ck_assert_int_eq(unpack_auth(buf, n, &got, true), 0);
}
END_TEST

/* Identities that could forge a log line or hide a part are refused. */
START_TEST(test_auth_msg_bad_ident)
{
	static const char *bad[] = { "hub\nspoke-hub[x:1]: forged", "a b", "a\tb", "x\x7f",
				     "hub\x1b[2J" };
	struct spk_auth_msg got;
	uint8_t buf[SPK_AUTH_MAX + 64];
	size_t base = SPK_MAC_SIZE + SPK_NONCE_SIZE, len;

	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = strlen(bad[i]);
		buf[base] = (uint8_t)len;
		memcpy(buf + base + 4, bad[i], len);
		ck_assert_int_eq(unpack_auth(buf, base + 4 + len, &got, true), SPOKE_EPROTO);
	}
	/* A NUL inside: "hub\0junk" must not pass as "hub". */
	memcpy(buf + base + 4, "hub\0junk", 8);
	buf[base] = 8;
	ck_assert_int_eq(unpack_auth(buf, base + 12, &got, true), SPOKE_EPROTO);
	/* Too long, and a length beyond the payload. */
	buf[base] = SPK_IDENT_MAX;
	memset(buf + base + 4, 'a', SPK_IDENT_MAX);
	ck_assert_int_eq(unpack_auth(buf, base + 4 + SPK_IDENT_MAX, &got, true), SPOKE_EPROTO);
	buf[base] = 0xff;
	buf[base + 3] = 0xff;
	ck_assert_int_eq(unpack_auth(buf, base + 4 + 10, &got, true), SPOKE_EPROTO);
}
END_TEST

/* LOOKUP's answer carries the incarnation, whole, and nothing is read
 * from a truncated one. */
START_TEST(test_endpoint_incarnation)
{
	struct spk_endpoint e = { .addr = "10.0.0.1:4000", .node = "n1", .pid = 77,
				  .incarnation = UINT64_MAX - 1 }, got;
	uint8_t buf[512];
	spoke_buf b;
	spoke_view v;

	spoke_buf_init(&b, buf, sizeof(buf));
	ck_assert_int_eq(spk_endpoint_pack(&b, &e), 0);
	spoke_view_init(&v, buf, b.len);
	ck_assert_int_eq(spk_endpoint_unpack(&v, &got), 0);
	ck_assert_str_eq(got.addr, e.addr);
	ck_assert_str_eq(got.node, e.node);
	ck_assert_uint_eq(got.pid, 77);
	ck_assert(got.incarnation == e.incarnation);
	spoke_view_init(&v, buf, b.len - 1);
	ck_assert_int_lt(spk_endpoint_unpack(&v, &got), 0);
}
END_TEST

/* ---- auth: tokens and token files ---- */

static char tmpdir[PATH_MAX];

static void tmpdir_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/spoke-test-frame-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(spk_auth_init(), 0);
}

static void tmpdir_teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(tmpdir);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
	ck_assert_int_lt(snprintf(out, cap, "%s/%s", tmpdir, name), (int)cap);
}

/* Creates path with the given mode (umask aside) and contents. */
static void write_raw(const char *path, mode_t mode, const char *contents)
{
	size_t len = strlen(contents);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, contents, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

static int count_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

START_TEST(test_token_generate)
{
	char a[SPK_TOKEN_MAX], b[SPK_TOKEN_MAX], small[64];

	ck_assert_int_eq(spk_auth_init(), 0);
	ck_assert_int_eq(spk_token_generate(a, sizeof(a)), 0);
	ck_assert_int_eq(spk_token_generate(b, sizeof(b)), 0);
	ck_assert_uint_eq(strlen(a), 64);
	ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
	ck_assert_str_ne(a, b);
	/* 64 characters and the NUL need 65 bytes. */
	ck_assert_int_eq(spk_token_generate(small, sizeof(small)), SPOKE_ENOSPC);
}
END_TEST

START_TEST(test_token_file_round_trip)
{
	char token[SPK_TOKEN_MAX], back[SPK_TOKEN_MAX], path[PATH_MAX + 32];
	struct stat st;

	tmp_path(path, sizeof(path), "token");
	ck_assert_int_eq(spk_token_generate(token, sizeof(token)), 0);
	ck_assert_int_eq(spk_token_write_file(path, token), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(S_ISREG(st.st_mode), "not a regular file");
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), 0);
	ck_assert_str_eq(back, token);
	/* No temporary file is left behind. */
	ck_assert_int_eq(count_dir_entries(tmpdir), 1);
}
END_TEST

/* Writing replaces an existing file, open permissions and all. */
START_TEST(test_token_file_replace)
{
	char back[SPK_TOKEN_MAX], path[PATH_MAX + 32];
	struct stat st;

	tmp_path(path, sizeof(path), "token");
	write_raw(path, 0644, "old-token\n");
	ck_assert_int_eq(spk_token_write_file(path, "new-token"), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), 0);
	ck_assert_str_eq(back, "new-token");
	ck_assert_int_eq(count_dir_entries(tmpdir), 1);
}
END_TEST

START_TEST(test_token_file_open_mode_refused)
{
	static const mode_t modes[] = { 0640, 0604, 0620, 0644, 0660 };
	char back[SPK_TOKEN_MAX], path[PATH_MAX + 32];

	tmp_path(path, sizeof(path), "token");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_raw(path, modes[i], "secret\n");
		ck_assert_msg(spk_token_read_file(path, back, sizeof(back)) == SPOKE_EAUTH,
			      "mode %o accepted", (unsigned)modes[i]);
	}
	/* The same file, made private, is read. */
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), 0);
	ck_assert_str_eq(back, "secret");
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), 0);
}
END_TEST

START_TEST(test_token_file_empty_refused)
{
	char back[SPK_TOKEN_MAX], path[PATH_MAX + 32];

	tmp_path(path, sizeof(path), "empty");
	write_raw(path, 0600, "");
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), SPOKE_EAUTH);
	tmp_path(path, sizeof(path), "newline");
	write_raw(path, 0600, "\n");
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), SPOKE_EAUTH);
	/* A CRLF line ending is not part of the token. */
	tmp_path(path, sizeof(path), "crlf");
	write_raw(path, 0600, "abc\r\n");
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), 0);
	ck_assert_str_eq(back, "abc");
}
END_TEST

START_TEST(test_token_file_missing)
{
	char back[SPK_TOKEN_MAX], path[PATH_MAX + 32];

	tmp_path(path, sizeof(path), "does-not-exist");
	ck_assert_int_eq(spk_token_read_file(path, back, sizeof(back)), -ENOENT);
}
END_TEST

START_TEST(test_token_load)
{
	char out[SPK_TOKEN_MAX], small[4], path[PATH_MAX + 32];

	ck_assert_int_eq(unsetenv("SPOKE_TOKEN"), 0);
	ck_assert_int_eq(unsetenv("SPOKE_TOKEN_FILE"), 0);
	ck_assert_int_eq(spk_token_load(NULL, out, sizeof(out)), SPOKE_EAUTH);

	tmp_path(path, sizeof(path), "token");
	ck_assert_int_eq(spk_token_write_file(path, "from-file"), 0);
	ck_assert_int_eq(setenv("SPOKE_TOKEN_FILE", path, 1), 0);
	ck_assert_int_eq(spk_token_load(NULL, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "from-file");

	/* $SPOKE_TOKEN wins over the file, an explicit token over both. */
	ck_assert_int_eq(setenv("SPOKE_TOKEN", "from-env", 1), 0);
	ck_assert_int_eq(spk_token_load(NULL, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "from-env");
	ck_assert_int_eq(spk_token_load("explicit", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "explicit");
	ck_assert_int_eq(spk_token_load("explicit", small, sizeof(small)), SPOKE_ENOSPC);

	ck_assert_int_eq(unsetenv("SPOKE_TOKEN"), 0);
	ck_assert_int_eq(unsetenv("SPOKE_TOKEN_FILE"), 0);
}
END_TEST

/* ---- suites ---- */

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc;

	tc = tcase_create("layout");
	tcase_add_test(tc, test_encode_layout);
	tcase_add_test(tc, test_encode_layout_extremes);
	tcase_add_loop_test(tc, test_decode_round_trip, SPK_HELLO, SPK_TYPE_MAX_ + 1);
	tcase_add_test(tc, test_type_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_complete);
	tcase_add_test(tc, test_parse_truncated);
	tcase_add_test(tc, test_parse_prefix_bad_magic);
	tcase_add_test(tc, test_parse_garbage);
	tcase_add_test(tc, test_parse_wrong_version);
	tcase_add_test(tc, test_parse_unknown_type);
	tcase_add_test(tc, test_parse_nonzero_flags);
	tcase_add_test(tc, test_decode_allowed_flags);
	tcase_add_test(tc, test_parse_too_big);
	tcase_add_test(tc, test_parse_back_to_back);
	suite_add_tcase(s, tc);

	tc = tcase_create("max_payload");
	tcase_add_test(tc, test_max_payload_env);
	tcase_add_test(tc, test_max_payload_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fuzz_random_bytes);
	tcase_add_test(tc, test_fuzz_mutated_frames);
	suite_add_tcase(s, tc);

	return s;
}

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc;

	tc = tcase_create("mac");
	tcase_add_test(tc, test_mac_known_answer);
	tcase_add_test(tc, test_mac_round_trip);
	tcase_add_test(tc, test_proof_layout);
	tcase_add_test(tc, test_proof_binding);
	tcase_add_test(tc, test_ident_actor);
	tcase_add_test(tc, test_auth_msg_round_trip);
	tcase_add_test(tc, test_auth_msg_bad_ident);
	tcase_add_test(tc, test_endpoint_incarnation);
	suite_add_tcase(s, tc);

	tc = tcase_create("token");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_token_generate);
	tcase_add_test(tc, test_token_file_round_trip);
	tcase_add_test(tc, test_token_file_replace);
	tcase_add_test(tc, test_token_file_open_mode_refused);
	tcase_add_test(tc, test_token_file_empty_refused);
	tcase_add_test(tc, test_token_file_missing);
	tcase_add_test(tc, test_token_load);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_add_suite(sr, auth_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* test_buf.c - unit tests of the message serializer (runtime/lib/buf.c).
 *
 * Truncated and garbage messages are decoded from heap copies of exactly
 * their own size, so that a read one byte too far is an AddressSanitizer
 * error, not a silent pass. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/client.h>
#include <spoke/errors.h>
#include <spoke/serializer.h>

#include "errmsg.h"
#include "testutil.h"

/* ---- helpers ---- */

static uint32_t f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static uint64_t f64_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static float bits_f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static double bits_f64(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
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

static void check_bytes(const spoke_buf *b, const uint8_t *want, size_t n)
{
	ck_assert_int_eq(spoke_buf_error(b), 0);
	ck_assert_uint_eq(b->len, n);
	ck_assert_mem_eq(b->data, want, n);
}

/* ---- round trips ---- */

START_TEST(test_round_trip_ints)
{
	uint8_t mem[256];
	spoke_buf b;
	spoke_view v;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	int64_t i64;
	bool bo;

	spoke_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(spoke_buf_put_u8(&b, 0), 0);
	ck_assert_int_eq(spoke_buf_put_u8(&b, UINT8_MAX), 0);
	ck_assert_int_eq(spoke_buf_put_bool(&b, false), 0);
	ck_assert_int_eq(spoke_buf_put_bool(&b, true), 0);
	ck_assert_int_eq(spoke_buf_put_u16(&b, 0), 0);
	ck_assert_int_eq(spoke_buf_put_u16(&b, UINT16_MAX), 0);
	ck_assert_int_eq(spoke_buf_put_u32(&b, 0), 0);
	ck_assert_int_eq(spoke_buf_put_u32(&b, UINT32_MAX), 0);
	ck_assert_int_eq(spoke_buf_put_u64(&b, 0), 0);
	ck_assert_int_eq(spoke_buf_put_u64(&b, UINT64_MAX), 0);
	ck_assert_int_eq(spoke_buf_put_i32(&b, INT32_MIN), 0);
	ck_assert_int_eq(spoke_buf_put_i32(&b, -1), 0);
	ck_assert_int_eq(spoke_buf_put_i32(&b, 0), 0);
	ck_assert_int_eq(spoke_buf_put_i32(&b, INT32_MAX), 0);
	ck_assert_int_eq(spoke_buf_put_i64(&b, INT64_MIN), 0);
	ck_assert_int_eq(spoke_buf_put_i64(&b, -1), 0);
	ck_assert_int_eq(spoke_buf_put_i64(&b, 0), 0);
	ck_assert_int_eq(spoke_buf_put_i64(&b, INT64_MAX), 0);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	ck_assert_uint_eq(b.len, 2 + 2 + 4 + 8 + 16 + 16 + 32);

	spoke_view_init(&v, mem, b.len);
	ck_assert_int_eq(spoke_view_get_u8(&v, &u8), 0);
	ck_assert_uint_eq(u8, 0);
	ck_assert_int_eq(spoke_view_get_u8(&v, &u8), 0);
	ck_assert_uint_eq(u8, UINT8_MAX);
	ck_assert_int_eq(spoke_view_get_bool(&v, &bo), 0);
	ck_assert(!bo);
	ck_assert_int_eq(spoke_view_get_bool(&v, &bo), 0);
	ck_assert(bo);
	ck_assert_int_eq(spoke_view_get_u16(&v, &u16), 0);
	ck_assert_uint_eq(u16, 0);
	ck_assert_int_eq(spoke_view_get_u16(&v, &u16), 0);
	ck_assert_uint_eq(u16, UINT16_MAX);
	ck_assert_int_eq(spoke_view_get_u32(&v, &u32), 0);
	ck_assert_uint_eq(u32, 0);
	ck_assert_int_eq(spoke_view_get_u32(&v, &u32), 0);
	ck_assert_uint_eq(u32, UINT32_MAX);
	ck_assert_int_eq(spoke_view_get_u64(&v, &u64), 0);
	ck_assert_uint_eq(u64, 0);
	ck_assert_int_eq(spoke_view_get_u64(&v, &u64), 0);
	ck_assert_uint_eq(u64, UINT64_MAX);
	ck_assert_int_eq(spoke_view_get_i32(&v, &i32), 0);
	ck_assert_int_eq(i32, INT32_MIN);
	ck_assert_int_eq(spoke_view_get_i32(&v, &i32), 0);
	ck_assert_int_eq(i32, -1);
	ck_assert_int_eq(spoke_view_get_i32(&v, &i32), 0);
	ck_assert_int_eq(i32, 0);
	ck_assert_int_eq(spoke_view_get_i32(&v, &i32), 0);
	ck_assert_int_eq(i32, INT32_MAX);
	ck_assert_int_eq(spoke_view_get_i64(&v, &i64), 0);
	ck_assert_int_eq(i64, INT64_MIN);
	ck_assert_int_eq(spoke_view_get_i64(&v, &i64), 0);
	ck_assert_int_eq(i64, -1);
	ck_assert_int_eq(spoke_view_get_i64(&v, &i64), 0);
	ck_assert_int_eq(i64, 0);
	ck_assert_int_eq(spoke_view_get_i64(&v, &i64), 0);
	ck_assert_int_eq(i64, INT64_MAX);
	ck_assert_int_eq(spoke_view_error(&v), 0);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
}
END_TEST

START_TEST(test_round_trip_floats)
{
	static const float fs[] = {0.0f, -0.0f, 1.5f, -2.25f, FLT_MAX, -FLT_MAX,
				   FLT_MIN, FLT_TRUE_MIN, INFINITY, -INFINITY};
	static const double ds[] = {0.0, -0.0, 1.5, -2.25, DBL_MAX, -DBL_MAX,
				    DBL_MIN, DBL_TRUE_MIN, INFINITY, -INFINITY};
	const uint32_t nan32 = 0x7fc12345u; /* a quiet NaN with a payload */
	const uint64_t nan64 = 0x7ff8000000abcdefull;
	uint8_t mem[256];
	spoke_buf b;
	spoke_view v;
	size_t i;
	float f;
	double d;

	spoke_buf_init(&b, mem, sizeof(mem));
	for (i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		ck_assert_int_eq(spoke_buf_put_f32(&b, fs[i]), 0);
	ck_assert_int_eq(spoke_buf_put_f32(&b, bits_f32(nan32)), 0);
	for (i = 0; i < sizeof(ds) / sizeof(ds[0]); i++)
		ck_assert_int_eq(spoke_buf_put_f64(&b, ds[i]), 0);
	ck_assert_int_eq(spoke_buf_put_f64(&b, bits_f64(nan64)), 0);

	spoke_view_init(&v, mem, b.len);
	for (i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		ck_assert_int_eq(spoke_view_get_f32(&v, &f), 0);
		/* bit for bit: tells -0.0 from 0.0 */
		ck_assert_uint_eq(f32_bits(f), f32_bits(fs[i]));
	}
	ck_assert_int_eq(spoke_view_get_f32(&v, &f), 0);
	ck_assert(isnan(f));
	ck_assert_uint_eq(f32_bits(f), nan32);
	for (i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
		ck_assert_int_eq(spoke_view_get_f64(&v, &d), 0);
		ck_assert_uint_eq(f64_bits(d), f64_bits(ds[i]));
	}
	ck_assert_int_eq(spoke_view_get_f64(&v, &d), 0);
	ck_assert(isnan(d));
	ck_assert_uint_eq(f64_bits(d), nan64);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	ck_assert_int_eq(spoke_view_error(&v), 0);
}
END_TEST

START_TEST(test_round_trip_strings)
{
	static const char nul_str[] = "a\0b\0"; /* 5 bytes with the final NUL */
	uint8_t mem[1024], all[256], *msg;
	char copy[16];
	spoke_buf b;
	spoke_view v;
	const char *s;
	const void *p;
	size_t n, i, len;

	for (i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)i;
	spoke_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(spoke_buf_put_str(&b, ""), 0);
	ck_assert_int_eq(spoke_buf_put_str(&b, NULL), 0);
	ck_assert_int_eq(spoke_buf_put_str(&b, "hello"), 0);
	ck_assert_int_eq(spoke_buf_put_strn(&b, nul_str, sizeof(nul_str)), 0);
	ck_assert_int_eq(spoke_buf_put_strn(&b, "xyz", 0), 0);
	ck_assert_int_eq(spoke_buf_put_strn(&b, NULL, 0), 0);
	ck_assert_int_eq(spoke_buf_put_bytes(&b, all, sizeof(all)), 0);
	ck_assert_int_eq(spoke_buf_put_bytes(&b, NULL, 0), 0);
	ck_assert_int_eq(spoke_buf_put_str(&b, "hello"), 0);
	ck_assert_int_eq(spoke_buf_put_strn(&b, nul_str, sizeof(nul_str)), 0);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	len = b.len;
	ck_assert_uint_eq(len, 10 * 4 + 5 + 5 + 256 + 5 + 5);

	msg = dup_exact(mem, len);
	spoke_view_init(&v, msg, len);
	ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_mem_eq(s, "hello", 5);
	/* in place: the pointer is into the message, past the length */
	ck_assert_ptr_eq(s, (const char *)msg + 12);
	ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
	ck_assert_uint_eq(n, sizeof(nul_str));
	ck_assert_mem_eq(s, nul_str, sizeof(nul_str));
	ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(spoke_view_get_bytes(&v, &p, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(spoke_view_get_bytes(&v, &p, &n), 0);
	ck_assert_uint_eq(n, sizeof(all));
	ck_assert_mem_eq(p, all, sizeof(all));
	ck_assert_int_eq(spoke_view_get_bytes(&v, &p, &n), 0);
	ck_assert_uint_eq(n, 0);
	memset(copy, 'X', sizeof(copy));
	ck_assert_int_eq(spoke_view_get_str_copy(&v, copy, sizeof(copy)), 0);
	ck_assert_str_eq(copy, "hello");
	memset(copy, 'X', sizeof(copy));
	ck_assert_int_eq(spoke_view_get_str_copy(&v, copy, sizeof(nul_str) + 1), 0);
	ck_assert_mem_eq(copy, nul_str, sizeof(nul_str));
	ck_assert_int_eq(copy[sizeof(nul_str)], '\0');
	ck_assert_int_eq(copy[sizeof(nul_str) + 1], 'X');
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	ck_assert_int_eq(spoke_view_error(&v), 0);
	free(msg);
}
END_TEST

START_TEST(test_round_trip_f32_array)
{
	const float in[] = {0.0f, -0.0f, 1.0f, -3.5f, FLT_MAX, FLT_TRUE_MIN,
			    INFINITY, -INFINITY, NAN};
	const size_t n_in = sizeof(in) / sizeof(in[0]);
	uint8_t mem[256];
	float out[16];
	spoke_buf b;
	spoke_view v;
	const void *p;
	uint8_t u8;
	size_t n, i;

	/* one byte first so that the floats sit unaligned in the message */
	spoke_buf_init(&b, mem + 1, sizeof(mem) - 1);
	ck_assert_int_eq(spoke_buf_put_u8(&b, 9), 0);
	ck_assert_int_eq(spoke_buf_put_f32_array(&b, NULL, 0), 0);
	ck_assert_int_eq(spoke_buf_put_f32_array(&b, in, n_in), 0);
	ck_assert_int_eq(spoke_buf_put_f32_array(&b, in, 1), 0);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	ck_assert_uint_eq(b.len, 1 + 4 + 4 + 4 * n_in + 4 + 4);

	spoke_view_init(&v, mem + 1, b.len);
	ck_assert_int_eq(spoke_view_get_u8(&v, &u8), 0);
	ck_assert_int_eq(spoke_view_get_f32_array(&v, NULL, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	memset(out, 0x55, sizeof(out));
	ck_assert_int_eq(spoke_view_get_f32_array(&v, out, 16, &n), 0);
	ck_assert_uint_eq(n, n_in);
	for (i = 0; i < n_in; i++)
		ck_assert_uint_eq(f32_bits(out[i]), f32_bits(in[i]));
	ck_assert_uint_eq(f32_bits(out[n_in]), 0x55555555u); /* untouched */
	ck_assert_int_eq(spoke_view_get_f32_array(&v, out, 1, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(f32_bits(out[0]), f32_bits(in[0]));
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	/* zero bytes of raw at the end is fine, and still in place */
	ck_assert_int_eq(spoke_view_get_raw(&v, &p, 0), 0);
	ck_assert_int_eq(spoke_view_error(&v), 0);
}
END_TEST

START_TEST(test_raw_and_reserve)
{
	uint8_t mem[16];
	spoke_buf b;
	spoke_view v;
	const void *p;
	uint8_t *w;

	memset(mem, 0xEE, sizeof(mem));
	spoke_buf_init(&b, mem, sizeof(mem));
	ck_assert_ptr_eq(b.grow, NULL);
	w = spoke_buf_reserve(&b, 3);
	ck_assert_ptr_eq(w, mem);
	ck_assert_uint_eq(b.len, 3);
	w[0] = 1;
	w[1] = 2;
	w[2] = 3;
	w = spoke_buf_reserve(&b, 0);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_int_eq(spoke_buf_put_raw(&b, "abcd", 4), 0);
	ck_assert_int_eq(spoke_buf_put_raw(&b, NULL, 0), 0);
	ck_assert_uint_eq(b.len, 7);
	w = spoke_buf_reserve(&b, 9);
	ck_assert_ptr_eq(w, mem + 7);
	ck_assert_uint_eq(b.len, 16);
	ck_assert_ptr_null(spoke_buf_reserve(&b, 1));
	ck_assert_int_eq(spoke_buf_error(&b), SPOKE_ENOSPC);
	ck_assert_uint_eq(b.len, 16);

	spoke_view_init(&v, mem, 7);
	ck_assert_int_eq(spoke_view_get_raw(&v, &p, 3), 0);
	ck_assert_ptr_eq(p, mem);
	ck_assert_int_eq(spoke_view_get_raw(&v, &p, 4), 0);
	ck_assert_ptr_eq(p, mem + 3);
	ck_assert_mem_eq(p, "abcd", 4);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	ck_assert_int_eq(spoke_view_get_raw(&v, &p, 1), SPOKE_ESHORT);

	/* a buffer with no memory at all has room for nothing */
	spoke_buf_init(&b, NULL, 0);
	ck_assert_ptr_nonnull(spoke_buf_reserve(&b, 0));
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	ck_assert_int_eq(spoke_buf_put_u8(&b, 1), SPOKE_ENOSPC);
	spoke_view_init(&v, NULL, 0);
	ck_assert_int_eq(spoke_view_get_raw(&v, &p, 0), 0);
	ck_assert_int_eq(spoke_view_get_u8(&v, mem), SPOKE_ESHORT);
}
END_TEST

/* ---- exact byte layout ---- */

START_TEST(test_le_layout)
{
	static const float one = 1.0f;
	uint8_t mem[64];
	spoke_buf b;
	size_t mark;

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_u16(&b, 0x1234);
	check_bytes(&b, (const uint8_t[]){0x34, 0x12}, 2);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_u32(&b, 0x01020304u);
	check_bytes(&b, (const uint8_t[]){4, 3, 2, 1}, 4);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_u64(&b, 0x0102030405060708ull);
	check_bytes(&b, (const uint8_t[]){8, 7, 6, 5, 4, 3, 2, 1}, 8);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_i32(&b, -2);
	check_bytes(&b, (const uint8_t[]){0xfe, 0xff, 0xff, 0xff}, 4);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_i64(&b, INT64_MIN);
	check_bytes(&b, (const uint8_t[]){0, 0, 0, 0, 0, 0, 0, 0x80}, 8);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_f32(&b, 1.0f);
	check_bytes(&b, (const uint8_t[]){0, 0, 0x80, 0x3f}, 4);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_f64(&b, -2.0);
	check_bytes(&b, (const uint8_t[]){0, 0, 0, 0, 0, 0, 0, 0xc0}, 8);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_bool(&b, true);
	spoke_buf_put_bool(&b, false);
	spoke_buf_put_u8(&b, 0xab);
	check_bytes(&b, (const uint8_t[]){1, 0, 0xab}, 3);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_str(&b, "ab");
	spoke_buf_put_str(&b, "");
	check_bytes(&b, (const uint8_t[]){2, 0, 0, 0, 'a', 'b', 0, 0, 0, 0}, 10);

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_f32_array(&b, &one, 1);
	check_bytes(&b, (const uint8_t[]){1, 0, 0, 0, 0, 0, 0x80, 0x3f}, 8);

	/* record: u32 length of what follows, then the fields; nested too */
	spoke_buf_init(&b, mem, sizeof(mem));
	mark = spoke_buf_record_begin(&b);
	ck_assert_uint_eq(mark, 0);
	spoke_buf_put_u8(&b, 7);
	ck_assert_uint_eq(spoke_buf_record_begin(&b), 5);
	spoke_buf_put_u16(&b, 0x0102);
	ck_assert_int_eq(spoke_buf_record_end(&b, 5), 0);
	ck_assert_int_eq(spoke_buf_record_end(&b, mark), 0);
	check_bytes(&b, (const uint8_t[]){7, 0, 0, 0, 7, 2, 0, 0, 0, 2, 1}, 11);

	spoke_buf_init(&b, mem, sizeof(mem));
	mark = spoke_buf_record_begin(&b);
	ck_assert_int_eq(spoke_buf_record_end(&b, mark), 0);
	check_bytes(&b, (const uint8_t[]){0, 0, 0, 0}, 4);
}
END_TEST

START_TEST(test_le_decode)
{
	static const uint8_t msg[] = {
		0x34, 0x12,                                     /* u16 */
		4, 3, 2, 1,                                     /* u32 */
		8, 7, 6, 5, 4, 3, 2, 1,                         /* u64 */
		0xfe, 0xff, 0xff, 0xff,                         /* i32 -2 */
		0, 0, 0x80, 0x3f,                               /* f32 1.0 */
		0, 0, 0, 0, 0, 0, 0, 0xc0,                      /* f64 -2.0 */
		3, 0, 0, 0, 'x', 'y', 'z',                      /* str */
		2, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xbf, /* f32[] */
	};
	uint8_t *m = dup_exact(msg, sizeof(msg));
	spoke_view v;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	float f, fa[2];
	double d;
	const char *s;
	size_t n;

	spoke_view_init(&v, m, sizeof(msg));
	ck_assert_int_eq(spoke_view_get_u16(&v, &u16), 0);
	ck_assert_uint_eq(u16, 0x1234);
	ck_assert_int_eq(spoke_view_get_u32(&v, &u32), 0);
	ck_assert_uint_eq(u32, 0x01020304u);
	ck_assert_int_eq(spoke_view_get_u64(&v, &u64), 0);
	ck_assert_uint_eq(u64, 0x0102030405060708ull);
	ck_assert_int_eq(spoke_view_get_i32(&v, &i32), 0);
	ck_assert_int_eq(i32, -2);
	ck_assert_int_eq(spoke_view_get_f32(&v, &f), 0);
	ck_assert(f == 1.0f);
	ck_assert_int_eq(spoke_view_get_f64(&v, &d), 0);
	ck_assert(d == -2.0);
	ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(s, "xyz", 3);
	ck_assert_int_eq(spoke_view_get_f32_array(&v, fa, 2, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(fa[0] == 1.0f && fa[1] == -1.0f);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	free(m);
}
END_TEST

/* ---- a nested record: ComplexTask inside an outer message ---- */

#define TASK_NAME_MAX 32
#define TASK_VEC_MAX 8

struct complex_task {
	int32_t id;
	char name[TASK_NAME_MAX];
	float vec[TASK_VEC_MAX];
	size_t n_vec;
};

static int task_pack(spoke_buf *out, const void *obj)
{
	const struct complex_task *t = obj;
	size_t mark = spoke_buf_record_begin(out);

	spoke_buf_put_i32(out, t->id);
	spoke_buf_put_str(out, t->name);
	spoke_buf_put_f32_array(out, t->vec, t->n_vec);
	return spoke_buf_record_end(out, mark);
}

static int task_unpack(spoke_view *in, void *obj)
{
	struct complex_task *t = obj;
	spoke_view rec;

	spoke_view_get_record(in, &rec);
	spoke_view_get_i32(&rec, &t->id);
	spoke_view_get_str_copy(&rec, t->name, sizeof(t->name));
	spoke_view_get_f32_array(&rec, t->vec, TASK_VEC_MAX, &t->n_vec);
	/* the record must be used up exactly */
	if (spoke_view_error(&rec) == 0 && spoke_view_remaining(&rec) != 0)
		return SPOKE_EPROTO;
	return spoke_view_error(&rec) ? spoke_view_error(&rec) : spoke_view_error(in);
}

static const spoke_serializer task_ser = {task_pack, task_unpack};

static const struct complex_task task_a = {
	.id = -42,
	.name = "tokenize",
	.vec = {0.5f, -1.25f, 3.0e38f, -0.0f},
	.n_vec = 4,
};

static const struct complex_task task_b = {
	.id = INT32_MAX,
	.name = "",
	.n_vec = 0,
};

/* outer: u32 version, record { u64 request, task_a, task_b }, u16 trailer */
static size_t pack_outer(spoke_buf *b)
{
	size_t mark;

	spoke_buf_put_u32(b, 3);
	mark = spoke_buf_record_begin(b);
	spoke_buf_put_u64(b, 0xdeadbeefcafef00dull);
	task_ser.pack(b, &task_a);
	task_ser.pack(b, &task_b);
	spoke_buf_record_end(b, mark);
	spoke_buf_put_u16(b, 0xbeef);
	return b->len;
}

static int unpack_outer(spoke_view *v, struct complex_task *a, struct complex_task *bt,
			uint16_t *trailer)
{
	spoke_view outer;
	uint32_t version;
	uint64_t req;
	int rc;

	spoke_view_get_u32(v, &version);
	spoke_view_get_record(v, &outer);
	spoke_view_get_u64(&outer, &req);
	rc = task_ser.unpack(&outer, a);
	if (rc == 0)
		rc = task_ser.unpack(&outer, bt);
	spoke_view_get_u16(v, trailer);
	if (rc)
		return rc;
	if (spoke_view_error(v))
		return spoke_view_error(v);
	if (version != 3 || req != 0xdeadbeefcafef00dull || spoke_view_remaining(&outer))
		return SPOKE_EPROTO;
	return 0;
}

static void assert_task_eq(const struct complex_task *got, const struct complex_task *want)
{
	size_t i;

	ck_assert_int_eq(got->id, want->id);
	ck_assert_str_eq(got->name, want->name);
	ck_assert_uint_eq(got->n_vec, want->n_vec);
	for (i = 0; i < want->n_vec; i++)
		ck_assert_uint_eq(f32_bits(got->vec[i]), f32_bits(want->vec[i]));
}

START_TEST(test_complex_task_nested)
{
	uint8_t mem[512], *msg;
	struct complex_task a, bt;
	uint16_t trailer;
	spoke_buf b;
	spoke_view v;
	uint32_t outer_len;
	size_t len;

	spoke_buf_init(&b, mem, sizeof(mem));
	len = pack_outer(&b);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	/* 4 version + 4 outer len + 8 req
	 * + task_a: 4 len + 4 id + 4+8 name + 4+16 vec
	 * + task_b: 4 len + 4 id + 4 name + 4 vec + 2 trailer */
	ck_assert_uint_eq(len, 4 + 4 + 8 + (4 + 4 + 12 + 20) + (4 + 4 + 4 + 4) + 2);
	outer_len = (uint32_t)mem[4] | (uint32_t)mem[5] << 8 | (uint32_t)mem[6] << 16 |
		    (uint32_t)mem[7] << 24;
	ck_assert_uint_eq(outer_len, len - 4 - 4 - 2);

	msg = dup_exact(mem, len);
	memset(&a, 0x11, sizeof(a));
	memset(&bt, 0x22, sizeof(bt));
	spoke_view_init(&v, msg, len);
	ck_assert_int_eq(unpack_outer(&v, &a, &bt, &trailer), 0);
	assert_task_eq(&a, &task_a);
	assert_task_eq(&bt, &task_b);
	ck_assert_uint_eq(trailer, 0xbeef);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	free(msg);
}
END_TEST

/* A reader that knows fewer fields skips the rest of the record. */
START_TEST(test_record_skip_unknown_fields)
{
	uint8_t mem[128];
	spoke_buf b;
	spoke_view v, rec;
	int32_t id;
	uint16_t trailer;

	spoke_buf_init(&b, mem, sizeof(mem));
	task_ser.pack(&b, &task_a);
	spoke_buf_put_u16(&b, 0x4242);
	ck_assert_int_eq(spoke_buf_error(&b), 0);

	spoke_view_init(&v, mem, b.len);
	ck_assert_int_eq(spoke_view_get_record(&v, &rec), 0);
	ck_assert_ptr_eq(rec.data, mem + 4);
	ck_assert_uint_eq(rec.len, b.len - 4 - 2);
	ck_assert_int_eq(spoke_view_get_i32(&rec, &id), 0);
	ck_assert_int_eq(id, task_a.id);
	ck_assert_int_eq(spoke_view_get_u16(&v, &trailer), 0);
	ck_assert_uint_eq(trailer, 0x4242);
	/* the sub-view stops at its own end */
	ck_assert_int_eq(spoke_view_get_raw(&rec, &(const void *){NULL}, rec.len), SPOKE_ESHORT);
}
END_TEST

/* ---- truncated and corrupt messages ---- */

enum getter {
	G_RAW,
	G_U8,
	G_BOOL,
	G_U16,
	G_U32,
	G_U64,
	G_I32,
	G_I64,
	G_F32,
	G_F64,
	G_STR,
	G_STR_COPY,
	G_BYTES,
	G_F32_ARRAY,
	G_RECORD,
	G_COUNT
};

/* Encodes one typical value for getter g. */
static void put_one(spoke_buf *b, int g)
{
	static const float fv[] = {1.0f, 2.0f, 3.0f};
	size_t mark;

	switch (g) {
	case G_RAW: spoke_buf_put_raw(b, "raw", 3); break;
	case G_U8: spoke_buf_put_u8(b, 0x81); break;
	case G_BOOL: spoke_buf_put_bool(b, true); break;
	case G_U16: spoke_buf_put_u16(b, 0x8182); break;
	case G_U32: spoke_buf_put_u32(b, 0x81828384u); break;
	case G_U64: spoke_buf_put_u64(b, 0x8182838485868788ull); break;
	case G_I32: spoke_buf_put_i32(b, -5); break;
	case G_I64: spoke_buf_put_i64(b, -5); break;
	case G_F32: spoke_buf_put_f32(b, 2.5f); break;
	case G_F64: spoke_buf_put_f64(b, 2.5); break;
	case G_STR:
	case G_STR_COPY: spoke_buf_put_str(b, "string"); break;
	case G_BYTES: spoke_buf_put_bytes(b, "\x00\x01\x02", 3); break;
	case G_F32_ARRAY: spoke_buf_put_f32_array(b, fv, 3); break;
	case G_RECORD:
		mark = spoke_buf_record_begin(b);
		spoke_buf_put_u32(b, 7);
		spoke_buf_record_end(b, mark);
		break;
	}
}

/* Runs getter g once; checks that a failure leaves empty outputs. */
static int get_one(spoke_view *v, int g)
{
	union {
		uint8_t u8;
		bool bo;
		uint16_t u16;
		uint32_t u32;
		uint64_t u64;
		int32_t i32;
		int64_t i64;
		float f;
		double d;
	} o;
	char copy[16];
	float fa[4];
	const void *p;
	const char *s;
	spoke_view rec;
	size_t n;
	int rc = 0;

	memset(&o, 0x5a, sizeof(o));
	n = 99;
	switch (g) {
	case G_RAW:
		rc = spoke_view_get_raw(v, &p, 3);
		ck_assert_ptr_nonnull(p);
		break;
	case G_U8:
		rc = spoke_view_get_u8(v, &o.u8);
		ck_assert(rc == 0 || o.u8 == 0);
		break;
	case G_BOOL:
		rc = spoke_view_get_bool(v, &o.bo);
		ck_assert(rc == 0 || !o.bo);
		break;
	case G_U16:
		rc = spoke_view_get_u16(v, &o.u16);
		ck_assert(rc == 0 || o.u16 == 0);
		break;
	case G_U32:
		rc = spoke_view_get_u32(v, &o.u32);
		ck_assert(rc == 0 || o.u32 == 0);
		break;
	case G_U64:
		rc = spoke_view_get_u64(v, &o.u64);
		ck_assert(rc == 0 || o.u64 == 0);
		break;
	case G_I32:
		rc = spoke_view_get_i32(v, &o.i32);
		ck_assert(rc == 0 || o.i32 == 0);
		break;
	case G_I64:
		rc = spoke_view_get_i64(v, &o.i64);
		ck_assert(rc == 0 || o.i64 == 0);
		break;
	case G_F32:
		rc = spoke_view_get_f32(v, &o.f);
		ck_assert(rc == 0 || o.f == 0.0f);
		break;
	case G_F64:
		rc = spoke_view_get_f64(v, &o.d);
		ck_assert(rc == 0 || o.d == 0.0);
		break;
	case G_STR:
		rc = spoke_view_get_str(v, &s, &n);
		ck_assert_ptr_nonnull(s);
		ck_assert(rc == 0 || n == 0);
		break;
	case G_STR_COPY:
		memset(copy, 'X', sizeof(copy));
		rc = spoke_view_get_str_copy(v, copy, sizeof(copy));
		ck_assert(rc == 0 || copy[0] == '\0');
		ck_assert_ptr_nonnull(memchr(copy, '\0', sizeof(copy)));
		break;
	case G_BYTES:
		rc = spoke_view_get_bytes(v, &p, &n);
		ck_assert_ptr_nonnull(p);
		ck_assert(rc == 0 || n == 0);
		break;
	case G_F32_ARRAY:
		rc = spoke_view_get_f32_array(v, fa, 4, &n);
		ck_assert(rc == 0 ? n <= 4 : n == 0);
		break;
	case G_RECORD:
		rc = spoke_view_get_record(v, &rec);
		if (rc) {
			/* an empty view that carries the error on */
			ck_assert_uint_eq(spoke_view_remaining(&rec), 0);
			ck_assert_int_eq(spoke_view_error(&rec), rc);
		} else {
			ck_assert_int_eq(spoke_view_error(&rec), 0);
			ck_assert(rec.data >= v->data && rec.data + rec.len <= v->data + v->pos);
		}
		break;
	}
	ck_assert_int_eq(rc, spoke_view_error(v));
	return rc;
}

START_TEST(test_truncated_each_getter)
{
	int g = _i;
	uint8_t mem[64], *msg;
	spoke_buf b;
	spoke_view v;
	size_t full, cut;

	spoke_buf_init(&b, mem, sizeof(mem));
	put_one(&b, g);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	full = b.len;
	ck_assert_uint_gt(full, 0);

	for (cut = 0; cut < full; cut++) {
		msg = dup_exact(mem, cut);
		spoke_view_init(&v, msg, cut);
		ck_assert_int_eq(get_one(&v, g), SPOKE_ESHORT);
		ck_assert_uint_eq(v.pos, 0);
		ck_assert_int_eq(spoke_view_error(&v), SPOKE_ESHORT);
		/* and it stays */
		ck_assert_int_eq(get_one(&v, g), SPOKE_ESHORT);
		free(msg);
	}
	msg = dup_exact(mem, full);
	spoke_view_init(&v, msg, full);
	ck_assert_int_eq(get_one(&v, g), 0);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	free(msg);
}
END_TEST

START_TEST(test_truncated_complex_message)
{
	uint8_t mem[512], *msg;
	struct complex_task a, bt;
	uint16_t trailer;
	spoke_buf b;
	spoke_view v;
	size_t full, cut;
	int rc;

	spoke_buf_init(&b, mem, sizeof(mem));
	full = pack_outer(&b);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	for (cut = 0; cut < full; cut++) {
		msg = dup_exact(mem, cut);
		spoke_view_init(&v, msg, cut);
		rc = unpack_outer(&v, &a, &bt, &trailer);
		ck_assert_msg(rc == SPOKE_ESHORT, "cut %zu: rc %d", cut, rc);
		ck_assert_int_eq(spoke_view_error(&v), SPOKE_ESHORT);
		ck_assert_uint_le(v.pos, cut);
		free(msg);
	}
}
END_TEST

/* Every getter, one after another, over a message cut anywhere. */
START_TEST(test_truncated_sequence)
{
	uint8_t mem[256], *msg;
	spoke_buf b;
	spoke_view v;
	size_t full, cut, ends[G_COUNT];
	int g, rc;

	spoke_buf_init(&b, mem, sizeof(mem));
	for (g = 0; g < G_COUNT; g++) {
		put_one(&b, g);
		ends[g] = b.len;
	}
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	full = b.len;

	for (cut = 0; cut <= full; cut++) {
		msg = dup_exact(mem, cut);
		spoke_view_init(&v, msg, cut);
		for (g = 0; g < G_COUNT; g++) {
			rc = get_one(&v, g);
			/* exactly the values wholly inside the cut succeed */
			ck_assert_int_eq(rc, ends[g] <= cut ? 0 : SPOKE_ESHORT);
		}
		free(msg);
	}
}
END_TEST

START_TEST(test_corrupt_length)
{
	static const uint32_t lens[] = {0xffffffffu, 0xfffffffcu, 0x80000000u, 0x40000000u,
					0x40000001u, 5};
	uint8_t raw[8], *msg;
	spoke_view v;
	size_t i;
	int g;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* a length, then 4 bytes: too few for any of these lengths
		 * (0x40000000 * 4 wraps to 0 in 32 bits) */
		raw[0] = (uint8_t)lens[i];
		raw[1] = (uint8_t)(lens[i] >> 8);
		raw[2] = (uint8_t)(lens[i] >> 16);
		raw[3] = (uint8_t)(lens[i] >> 24);
		memset(raw + 4, 0, 4);
		for (g = G_STR; g <= G_RECORD; g++) {
			if (g == G_F32_ARRAY && lens[i] == 5)
				continue; /* 5 floats is short too, but cap says ENOSPC */
			msg = dup_exact(raw, sizeof(raw));
			spoke_view_init(&v, msg, sizeof(raw));
			ck_assert_msg(get_one(&v, g) == SPOKE_ESHORT, "len %#x getter %d", lens[i], g);
			ck_assert_uint_eq(v.pos, 0);
			free(msg);
		}
	}

	/* length exactly what remains is fine, one more is short
	 * (for the float array the count is of 4-byte floats) */
	raw[1] = raw[2] = raw[3] = 0;
	for (g = G_STR; g <= G_RECORD; g++) {
		raw[0] = g == G_F32_ARRAY ? 1 : 4;
		spoke_view_init(&v, raw, sizeof(raw));
		ck_assert_int_eq(get_one(&v, g), 0);
		ck_assert_uint_eq(spoke_view_remaining(&v), 0);
		raw[0]++;
		spoke_view_init(&v, raw, sizeof(raw));
		ck_assert_int_eq(get_one(&v, g), SPOKE_ESHORT);
		ck_assert_uint_eq(v.pos, 0);
	}
	/* a bool byte other than 0 or 1 is corrupt */
	raw[0] = 2;
	spoke_view_init(&v, raw, 1);
	ck_assert_int_eq(get_one(&v, G_BOOL), SPOKE_ESHORT);
	ck_assert_uint_eq(v.pos, 0);
}
END_TEST

/* ---- sticky errors and full buffers ---- */

START_TEST(test_sticky_view)
{
	static const uint8_t msg[] = {1, 2, 0, 0, 0, 'a', 'b'};
	spoke_view v;
	uint8_t u8 = 7;
	uint32_t u32;
	char copy[2];

	spoke_view_init(&v, msg, 2);
	ck_assert_int_eq(spoke_view_get_u32(&v, &u32), SPOKE_ESHORT);
	ck_assert_uint_eq(v.pos, 0);
	/* would succeed, but the error stays and nothing moves */
	ck_assert_int_eq(spoke_view_get_u8(&v, &u8), SPOKE_ESHORT);
	ck_assert_uint_eq(u8, 0);
	ck_assert_uint_eq(v.pos, 0);
	ck_assert_int_eq(spoke_view_error(&v), SPOKE_ESHORT);

	/* the first error is the one kept */
	spoke_view_init(&v, msg, sizeof(msg));
	ck_assert_int_eq(spoke_view_get_u8(&v, &u8), 0);
	ck_assert_int_eq(spoke_view_get_str_copy(&v, copy, sizeof(copy)), SPOKE_ENOSPC);
	ck_assert_uint_eq(v.pos, 1);
	ck_assert_int_eq(spoke_view_get_u64(&v, &(uint64_t){0}), SPOKE_ENOSPC);
	ck_assert_int_eq(spoke_view_get_u8(&v, &u8), SPOKE_ENOSPC);
	ck_assert_uint_eq(v.pos, 1);
	ck_assert_int_eq(spoke_view_error(&v), SPOKE_ENOSPC);
}
END_TEST

START_TEST(test_sticky_buf)
{
	uint8_t mem[6];
	spoke_buf b;

	memset(mem, 0xcc, sizeof(mem));
	spoke_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(spoke_buf_put_u32(&b, 1), 0);
	ck_assert_int_eq(spoke_buf_put_u32(&b, 2), SPOKE_ENOSPC);
	ck_assert_uint_eq(b.len, 4);
	/* a u8 would fit, but the error stays */
	ck_assert_int_eq(spoke_buf_put_u8(&b, 3), SPOKE_ENOSPC);
	ck_assert_int_eq(spoke_buf_put_raw(&b, "", 0), SPOKE_ENOSPC);
	ck_assert_ptr_null(spoke_buf_reserve(&b, 0));
	ck_assert_uint_eq(spoke_buf_record_begin(&b), (size_t)-1);
	ck_assert_int_eq(spoke_buf_record_end(&b, 0), SPOKE_ENOSPC);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_uint_eq(mem[4], 0xcc);
	ck_assert_int_eq(spoke_buf_error(&b), SPOKE_ENOSPC);

	/* misuse is sticky too */
	spoke_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(spoke_buf_put_bytes(&b, NULL, 3), SPOKE_EINVAL);
	ck_assert_int_eq(spoke_buf_put_u8(&b, 1), SPOKE_EINVAL);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_enospc_no_partial_write)
{
	static const float fv[] = {1.0f, 2.0f};
	uint8_t mem[16];
	spoke_buf b;
	size_t mark;
	int i;

	/* each compound put whose length prefix would fit but whose body
	 * would not changes nothing */
	for (i = 0; i < 6; i++) {
		memset(mem, 0xcc, sizeof(mem));
		spoke_buf_init(&b, mem, 10);
		ck_assert_int_eq(spoke_buf_put_u8(&b, 1), 0);
		switch (i) {
		case 0: ck_assert_int_eq(spoke_buf_put_str(&b, "abcdef"), SPOKE_ENOSPC); break;
		case 1: ck_assert_int_eq(spoke_buf_put_bytes(&b, "abcdef", 6), SPOKE_ENOSPC); break;
		case 2: ck_assert_int_eq(spoke_buf_put_f32_array(&b, fv, 2), SPOKE_ENOSPC); break;
		case 3: ck_assert_int_eq(spoke_buf_put_u64(&b, 1), 0);
			ck_assert_int_eq(spoke_buf_put_u16(&b, 1), SPOKE_ENOSPC);
			ck_assert_uint_eq(b.len, 9);
			continue;
		case 4: ck_assert_int_eq(spoke_buf_put_raw(&b, "0123456789", 10), SPOKE_ENOSPC); break;
		case 5: ck_assert_int_eq(spoke_buf_put_f64(&b, 1.0), 0);
			ck_assert_uint_eq(spoke_buf_record_begin(&b), (size_t)-1);
			ck_assert_uint_eq(b.len, 9);
			continue;
		}
		ck_assert_uint_eq(b.len, 1);
		ck_assert_uint_eq(mem[1], 0xcc);
		ck_assert_int_eq(spoke_buf_error(&b), SPOKE_ENOSPC);
	}

	/* a record that stops fitting halfway: its end reports the error */
	spoke_buf_init(&b, mem, 8);
	mark = spoke_buf_record_begin(&b);
	ck_assert_uint_eq(mark, 0);
	spoke_buf_put_u32(&b, 1);
	spoke_buf_put_u32(&b, 2);
	ck_assert_int_eq(spoke_buf_record_end(&b, mark), SPOKE_ENOSPC);
	ck_assert_uint_eq(b.len, 8);

	/* an exact fit is not an error */
	spoke_buf_init(&b, mem, 4);
	ck_assert_int_eq(spoke_buf_put_str(&b, ""), 0);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_int_eq(spoke_buf_put_raw(&b, NULL, 0), 0);
}
END_TEST

/* ---- the grow hook ---- */

struct grower {
	uint8_t big[256];
	size_t limit; /* most it will grow to */
	int calls;
	size_t last_need;
	int fail_with; /* returned instead of growing, if nonzero */
	bool lie;      /* return 0 without growing */
};

static int grow_hook(spoke_buf *b, size_t need)
{
	struct grower *g = b->owner;

	g->calls++;
	g->last_need = need;
	if (g->fail_with)
		return g->fail_with;
	if (g->lie || need > g->limit)
		return g->lie ? 0 : SPOKE_ETOOBIG;
	if (b->data != g->big && b->len > 0)
		memcpy(g->big, b->data, b->len);
	b->data = g->big;
	b->cap = g->limit;
	return 0;
}

START_TEST(test_grow_hook)
{
	static struct grower g;
	uint8_t small[8];
	spoke_buf b;
	spoke_view v;
	uint64_t u64;
	const char *s;
	size_t n;

	memset(&g, 0, sizeof(g));
	g.limit = 64;
	spoke_buf_init(&b, small, sizeof(small));
	b.grow = grow_hook;
	b.owner = &g;
	ck_assert_int_eq(spoke_buf_put_u64(&b, 0x1122334455667788ull), 0);
	ck_assert_int_eq(g.calls, 0); /* it fit: not called */
	ck_assert_ptr_eq(b.data, small);
	ck_assert_int_eq(spoke_buf_put_str(&b, "grown"), 0);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_uint_eq(g.last_need, 8 + 4 + 5);
	ck_assert_ptr_eq(b.data, g.big);
	ck_assert_uint_eq(b.cap, 64);
	ck_assert_uint_eq(b.len, 17);

	spoke_view_init(&v, b.data, b.len);
	ck_assert_int_eq(spoke_view_get_u64(&v, &u64), 0);
	ck_assert_uint_eq(u64, 0x1122334455667788ull);
	ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_mem_eq(s, "grown", 5);

	/* past what it will grow to: its code, sticky, nothing written */
	ck_assert_int_eq(spoke_buf_put_raw(&b, g.big, 48), SPOKE_ETOOBIG);
	ck_assert_int_eq(g.calls, 2);
	ck_assert_uint_eq(g.last_need, 17 + 48);
	ck_assert_uint_eq(b.len, 17);
	ck_assert_int_eq(spoke_buf_put_u8(&b, 1), SPOKE_ETOOBIG);
	ck_assert_int_eq(g.calls, 2);

	/* a hook that fails with errno-style code */
	memset(&g, 0, sizeof(g));
	g.fail_with = -12;
	spoke_buf_init(&b, small, 2);
	b.grow = grow_hook;
	b.owner = &g;
	ck_assert_int_eq(spoke_buf_put_u32(&b, 1), -12);
	ck_assert_int_eq(spoke_buf_error(&b), -12);
	ck_assert_uint_eq(b.len, 0);

	/* a hook that says yes but gives too little: ENOSPC */
	memset(&g, 0, sizeof(g));
	g.lie = true;
	spoke_buf_init(&b, small, 2);
	b.grow = grow_hook;
	b.owner = &g;
	ck_assert_int_eq(spoke_buf_put_u32(&b, 1), SPOKE_ENOSPC);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_uint_eq(b.len, 0);

	/* need that would overflow size_t is refused before the hook */
	memset(&g, 0, sizeof(g));
	g.limit = 64;
	spoke_buf_init(&b, small, sizeof(small));
	b.grow = grow_hook;
	b.owner = &g;
	spoke_buf_put_u8(&b, 1);
	ck_assert_ptr_null(spoke_buf_reserve(&b, SIZE_MAX));
	ck_assert_int_eq(spoke_buf_error(&b), SPOKE_ENOSPC);
	ck_assert_int_eq(g.calls, 0);

	/* a buffer that starts with no memory at all */
	memset(&g, 0, sizeof(g));
	g.limit = 64;
	spoke_buf_init(&b, NULL, 0);
	b.grow = grow_hook;
	b.owner = &g;
	ck_assert_int_eq(spoke_buf_put_u16(&b, 0x0102), 0);
	ck_assert_ptr_eq(b.data, g.big);
	ck_assert_uint_eq(g.last_need, 2);
	ck_assert_uint_eq(g.big[0], 2);
}
END_TEST

/* ---- caller's destination too small ---- */

START_TEST(test_str_copy_enospc)
{
	uint8_t mem[32];
	char dst[8];
	spoke_buf b;
	spoke_view v;

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_str(&b, "hello");
	spoke_buf_put_str(&b, "");

	spoke_view_init(&v, mem, b.len);
	memset(dst, 'X', sizeof(dst));
	ck_assert_int_eq(spoke_view_get_str_copy(&v, dst, 5), SPOKE_ENOSPC); /* no room for NUL */
	ck_assert_int_eq(dst[0], '\0');
	ck_assert_int_eq(dst[1], 'X'); /* nothing else written */
	ck_assert_uint_eq(v.pos, 0);
	ck_assert_int_eq(spoke_view_error(&v), SPOKE_ENOSPC);
	ck_assert_int_eq(spoke_view_get_str_copy(&v, dst, 6), SPOKE_ENOSPC); /* sticky */

	spoke_view_init(&v, mem, b.len);
	ck_assert_int_eq(spoke_view_get_str_copy(&v, dst, 6), 0);
	ck_assert_str_eq(dst, "hello");
	/* an empty string still needs a byte for the NUL */
	ck_assert_int_eq(spoke_view_get_str_copy(&v, NULL, 0), SPOKE_ENOSPC);

	spoke_view_init(&v, mem + 9, 4);
	ck_assert_int_eq(spoke_view_get_str_copy(&v, dst, 1), 0);
	ck_assert_str_eq(dst, "");
}
END_TEST

START_TEST(test_f32_array_cap_too_small)
{
	static const float fv[] = {1.0f, 2.0f, 3.0f};
	uint8_t mem[32];
	float out[4] = {9.0f, 9.0f, 9.0f, 9.0f};
	spoke_buf b;
	spoke_view v;
	size_t n = 77;

	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_f32_array(&b, fv, 3);

	spoke_view_init(&v, mem, b.len);
	ck_assert_int_eq(spoke_view_get_f32_array(&v, out, 2, &n), SPOKE_ENOSPC);
	ck_assert_uint_eq(n, 0);
	ck_assert(out[0] == 9.0f && out[1] == 9.0f && out[2] == 9.0f);
	ck_assert_uint_eq(v.pos, 0);
	ck_assert_int_eq(spoke_view_error(&v), SPOKE_ENOSPC);

	spoke_view_init(&v, mem, b.len);
	ck_assert_int_eq(spoke_view_get_f32_array(&v, NULL, 0, &n), SPOKE_ENOSPC);

	spoke_view_init(&v, mem, b.len);
	ck_assert_int_eq(spoke_view_get_f32_array(&v, out, 3, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert(out[0] == 1.0f && out[1] == 2.0f && out[2] == 3.0f && out[3] == 9.0f);
}
END_TEST

START_TEST(test_record_end_bad_mark)
{
	static const size_t bad[] = {(size_t)-1, 100, 9, 7, 6, 5, SIZE_MAX - 2};
	uint8_t mem[32];
	spoke_buf b;
	size_t i, mark;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		spoke_buf_init(&b, mem, sizeof(mem));
		mark = spoke_buf_record_begin(&b);
		ck_assert_uint_eq(mark, 0);
		spoke_buf_put_u32(&b, 1); /* len 8 */
		ck_assert_msg(spoke_buf_record_end(&b, bad[i]) == SPOKE_EINVAL, "mark %zu", bad[i]);
		ck_assert_int_eq(spoke_buf_error(&b), SPOKE_EINVAL);
		/* sticky: the good mark now fails too, and nothing is written */
		ck_assert_int_eq(spoke_buf_record_end(&b, mark), SPOKE_EINVAL);
		ck_assert_int_eq(spoke_buf_put_u8(&b, 1), SPOKE_EINVAL);
		ck_assert_uint_eq(b.len, 8);
		ck_assert_uint_eq(mem[0] | mem[1] | mem[2] | mem[3], 0);
	}

	/* a mark exactly 4 bytes from the end is an empty record */
	spoke_buf_init(&b, mem, sizeof(mem));
	spoke_buf_put_u32(&b, 0xffffffffu);
	ck_assert_int_eq(spoke_buf_record_end(&b, 0), 0);
	ck_assert_uint_eq(mem[0] | mem[1] | mem[2] | mem[3], 0);
}
END_TEST

START_TEST(test_init_misuse)
{
	spoke_buf b;
	spoke_view v;

	spoke_buf_init(&b, NULL, 16);
	ck_assert_int_eq(spoke_buf_error(&b), SPOKE_EINVAL);
	ck_assert_int_eq(spoke_buf_put_u8(&b, 1), SPOKE_EINVAL);
	spoke_view_init(&v, NULL, 16);
	ck_assert_int_eq(spoke_view_error(&v), SPOKE_EINVAL);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	ck_assert_int_eq(spoke_view_get_u8(&v, &(uint8_t){0}), SPOKE_EINVAL);
}
END_TEST

/* ---- fuzzing ---- */

/* Garbage in, any getter in any order: no crash, no overread, the view's
 * invariants hold and an error never goes away. */
static void fuzz_view(spoke_view *v, int depth)
{
	int ops = (int)(rng() % 12), i, g, err;
	size_t pos;
	spoke_view rec;

	for (i = 0; i < ops; i++) {
		g = (int)(rng() % G_COUNT);
		pos = v->pos;
		err = v->err;
		if (g == G_RECORD && depth < 3) {
			if (spoke_view_get_record(v, &rec) == 0) {
				ck_assert(rec.data >= v->data);
				ck_assert(rec.data + rec.len == v->data + v->pos);
				fuzz_view(&rec, depth + 1);
			}
		} else {
			get_one(v, g);
		}
		ck_assert_uint_le(v->pos, v->len);
		ck_assert_uint_ge(v->pos, pos);
		ck_assert(v->err == 0 || v->err == SPOKE_ESHORT || v->err == SPOKE_ENOSPC);
		if (err) {
			ck_assert_int_eq(v->err, err);
			ck_assert_uint_eq(v->pos, pos);
		}
		if (v->err)
			ck_assert_uint_eq(v->pos, pos);
	}
}

START_TEST(test_fuzz_garbage)
{
	uint8_t raw[96], *msg;
	spoke_view v;
	size_t len, i;
	int iter;

	rng_state = 0x9e3779b97f4a7c15ull;
	for (iter = 0; iter < 20000; iter++) {
		len = (size_t)(rng() % sizeof(raw));
		for (i = 0; i < len; i++) {
			uint64_t r = rng();

			/* mostly small bytes, so lengths are often plausible */
			raw[i] = (uint8_t)((r & 3) ? (r >> 8) % 12 : r >> 8);
		}
		msg = dup_exact(raw, len);
		spoke_view_init(&v, msg, len);
		fuzz_view(&v, 0);
		free(msg);
	}
}
END_TEST

/* Random sequences of values round-trip through buffers of random size. */
START_TEST(test_fuzz_round_trip)
{
	uint8_t mem[128], *msg;
	uint64_t vals[16];
	int types[16];
	spoke_buf b;
	spoke_view v;
	size_t cap, ok_len;
	int iter, k, count, n_ok;

	rng_state = 0x0123456789abcdefull;
	for (iter = 0; iter < 5000; iter++) {
		cap = (size_t)(rng() % sizeof(mem));
		memset(mem, 0xcc, sizeof(mem));
		spoke_buf_init(&b, mem, cap);
		count = 1 + (int)(rng() % 16);
		n_ok = 0;
		ok_len = 0;
		for (k = 0; k < count; k++) {
			types[k] = (int)(rng() % 5);
			vals[k] = rng();
			switch (types[k]) {
			case 0: spoke_buf_put_u8(&b, (uint8_t)vals[k]); break;
			case 1: spoke_buf_put_u16(&b, (uint16_t)vals[k]); break;
			case 2: spoke_buf_put_u32(&b, (uint32_t)vals[k]); break;
			case 3: spoke_buf_put_u64(&b, vals[k]); break;
			case 4: spoke_buf_put_strn(&b, (const char *)&vals[k], vals[k] % 9); break;
			}
			if (spoke_buf_error(&b) == 0) {
				n_ok = k + 1;
				ok_len = b.len;
			}
		}
		ck_assert_uint_le(b.len, cap);
		ck_assert_uint_eq(b.len, ok_len);
		ck_assert_int_eq(spoke_buf_error(&b), n_ok == count ? 0 : SPOKE_ENOSPC);
		if (cap < sizeof(mem))
			ck_assert_uint_eq(mem[cap], 0xcc);

		msg = dup_exact(mem, b.len);
		spoke_view_init(&v, msg, b.len);
		for (k = 0; k < n_ok; k++) {
			uint64_t got = 0;
			uint8_t u8;
			uint16_t u16;
			uint32_t u32;
			const char *s;
			size_t n;

			switch (types[k]) {
			case 0: spoke_view_get_u8(&v, &u8); got = u8; break;
			case 1: spoke_view_get_u16(&v, &u16); got = u16; break;
			case 2: spoke_view_get_u32(&v, &u32); got = u32; break;
			case 3: spoke_view_get_u64(&v, &got); break;
			case 4:
				ck_assert_int_eq(spoke_view_get_str(&v, &s, &n), 0);
				ck_assert_uint_eq(n, vals[k] % 9);
				ck_assert_mem_eq(s, &vals[k], n);
				continue;
			}
			ck_assert_int_eq(spoke_view_error(&v), 0);
			ck_assert_uint_eq(got, types[k] == 3 ? vals[k]
					  : vals[k] & ((1ull << (8 << types[k])) - 1));
		}
		ck_assert_uint_eq(spoke_view_remaining(&v), 0);
		free(msg);
	}
}
END_TEST

/* The error payload of a REPLY (errmsg.h): a method's failure carries its
 * code then its text, the runtime's only text; a malformed one is refused. */
START_TEST(test_reply_error_codec)
{
	uint8_t mem[64], bad[4] = { 5, 0, 0, 0 };
	spoke_buf b;

	spoke_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(spk_reply_error_pack(&b, SPOKE_EMETHOD, -22, "boom"), 0);
	ck_assert_uint_eq(b.len, 8);
	ck_assert(memcmp(mem, "\xea\xff\xff\xff" "boom", 8) == 0);
	ck_assert_int_eq(spk_reply_error_unpack(SPOKE_EMETHOD, mem, b.len), SPOKE_EMETHOD);
	ck_assert_str_eq(spoke_errmsg(), "boom");
	ck_assert_int_eq(spoke_method_status(), -22);

	spoke_buf_init(&b, mem, sizeof(mem));
	ck_assert_int_eq(spk_reply_error_pack(&b, SPOKE_ENOMETHOD, -22, "no method 9"), 0);
	ck_assert_uint_eq(b.len, 11);
	ck_assert_int_eq(spk_reply_error_unpack(SPOKE_ENOMETHOD, mem, b.len), SPOKE_ENOMETHOD);
	ck_assert_str_eq(spoke_errmsg(), "no method 9");
	ck_assert_int_eq(spoke_method_status(), 0);

	ck_assert_int_eq(spk_reply_error_unpack(SPOKE_EMETHOD, bad, 2), SPOKE_EPROTO);
	ck_assert_int_eq(spoke_method_status(), 0);
	ck_assert_int_eq(spk_reply_error_unpack(SPOKE_EMETHOD, bad, 4), SPOKE_EPROTO);
	ck_assert_str_eq(spoke_errmsg(), "malformed method error from the actor");
}
END_TEST

static Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc;

	tc = tcase_create("round_trip");
	tcase_add_test(tc, test_round_trip_ints);
	tcase_add_test(tc, test_round_trip_floats);
	tcase_add_test(tc, test_round_trip_strings);
	tcase_add_test(tc, test_round_trip_f32_array);
	tcase_add_test(tc, test_raw_and_reserve);
	suite_add_tcase(s, tc);

	tc = tcase_create("layout");
	tcase_add_test(tc, test_le_layout);
	tcase_add_test(tc, test_le_decode);
	suite_add_tcase(s, tc);

	tc = tcase_create("record");
	tcase_add_test(tc, test_complex_task_nested);
	tcase_add_test(tc, test_record_skip_unknown_fields);
	tcase_add_test(tc, test_record_end_bad_mark);
	suite_add_tcase(s, tc);

	tc = tcase_create("short");
	tcase_add_loop_test(tc, test_truncated_each_getter, 0, G_COUNT);
	tcase_add_test(tc, test_truncated_complex_message);
	tcase_add_test(tc, test_truncated_sequence);
	tcase_add_test(tc, test_corrupt_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_sticky_view);
	tcase_add_test(tc, test_sticky_buf);
	tcase_add_test(tc, test_enospc_no_partial_write);
	tcase_add_test(tc, test_grow_hook);
	tcase_add_test(tc, test_str_copy_enospc);
	tcase_add_test(tc, test_f32_array_cap_too_small);
	tcase_add_test(tc, test_init_misuse);
	tcase_add_test(tc, test_reply_error_codec);
	suite_add_tcase(s, tc);

	tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fuzz_garbage);
	tcase_add_test(tc, test_fuzz_round_trip);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(buf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

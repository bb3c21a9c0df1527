/* fuzz_view.c - the serializer's unpack functions (runtime/lib/buf.c:
 * spoke_view_get_*), driven by the input itself.
 *
 * Input: a count k, k operation bytes, then the message.  Each operation
 * byte picks a getter (low 4 bits) and, for the ones that copy, a capacity
 * (high 4 bits); a nested record becomes the view the next operations read
 * from.  Properties: the read position never passes the end, everything
 * handed out lies inside the message, an error is sticky, a getter fails
 * exactly when it should leave the position unmoved, and a copy never
 * writes past its capacity (heap buffers of exactly that size: ASan). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "fuzz.h"

enum { OP_U8, OP_BOOL, OP_U16, OP_U32, OP_U64, OP_I32, OP_I64, OP_F32, OP_F64, OP_RAW, OP_STR,
       OP_STR_COPY, OP_BYTES, OP_F32_ARRAY, OP_RECORD, OP_POP, OP_COUNT_ };

#define DEPTH 8

static const uint8_t *msg_lo, *msg_hi;

static void check_inside(const void *p, size_t n)
{
	const uint8_t *b = p;

	if (n == 0)
		return;
	FZ_CHECK(b >= msg_lo && b <= msg_hi && n <= (size_t)(msg_hi - b));
}

static void run_op(spoke_view *v, uint8_t op, spoke_view *rec)
{
	unsigned arg = op >> 4;
	union {
		uint8_t u8;
		bool b;
		uint16_t u16;
		uint32_t u32;
		uint64_t u64;
		int32_t i32;
		int64_t i64;
		float f32;
		double f64;
	} out;
	const void *p;
	const char *s;
	char *dst;
	float *fdst;
	size_t n;

	switch ((op & 15) % OP_COUNT_) {
	case OP_U8: spoke_view_get_u8(v, &out.u8); break;
	case OP_BOOL: spoke_view_get_bool(v, &out.b); break;
	case OP_U16: spoke_view_get_u16(v, &out.u16); break;
	case OP_U32: spoke_view_get_u32(v, &out.u32); break;
	case OP_U64: spoke_view_get_u64(v, &out.u64); break;
	case OP_I32: spoke_view_get_i32(v, &out.i32); break;
	case OP_I64: spoke_view_get_i64(v, &out.i64); break;
	case OP_F32: spoke_view_get_f32(v, &out.f32); break;
	case OP_F64: spoke_view_get_f64(v, &out.f64); break;
	case OP_RAW:
		if (spoke_view_get_raw(v, &p, arg) == 0)
			check_inside(p, arg);
		break;
	case OP_STR:
		if (spoke_view_get_str(v, &s, &n) == 0)
			check_inside(s, n);
		break;
	case OP_STR_COPY:
		dst = malloc(arg ? arg : 1);
		FZ_CHECK(dst);
		if (spoke_view_get_str_copy(v, dst, arg) == 0)
			FZ_CHECK(strlen(dst) < arg);
		free(dst);
		break;
	case OP_BYTES:
		if (spoke_view_get_bytes(v, &p, &n) == 0)
			check_inside(p, n);
		break;
	case OP_F32_ARRAY:
		fdst = malloc((arg ? arg : 1) * sizeof(float));
		FZ_CHECK(fdst);
		if (spoke_view_get_f32_array(v, fdst, arg, &n) == 0)
			FZ_CHECK(n <= arg);
		free(fdst);
		break;
	case OP_RECORD:
		if (spoke_view_get_record(v, rec) == 0) {
			check_inside(rec->data, rec->len);
			FZ_CHECK(rec->pos == 0 && rec->err == 0);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	spoke_view stack[DEPTH + 1], *v; /* the last: a record read at the deepest level */
	size_t k, depth = 0;

	if (size < 1)
		return 0;
	k = data[0] % 33;
	if (size < 1 + k)
		return 0;
	msg_lo = data + 1 + k;
	msg_hi = data + size;
	spoke_view_init(&stack[0], msg_lo, (size_t)(msg_hi - msg_lo));
	for (size_t i = 0; i < k; i++) {
		uint8_t op = data[1 + i];
		size_t pos_before, left_before;
		int err_before;

		v = &stack[depth];
		if ((op & 15) == OP_POP) {
			if (depth > 0)
				depth--;
			continue;
		}
		pos_before = v->pos;
		left_before = spoke_view_remaining(v);
		err_before = spoke_view_error(v);
		run_op(v, op, &stack[depth + 1]);
		FZ_CHECK(v->pos <= v->len);
		FZ_CHECK(spoke_view_remaining(v) == v->len - v->pos);
		FZ_CHECK(spoke_view_remaining(v) <= left_before);
		if (err_before)
			FZ_CHECK(spoke_view_error(v) == err_before && v->pos == pos_before);
		if (spoke_view_error(v))
			FZ_CHECK(v->pos == pos_before);
		if ((op & 15) == OP_RECORD && depth + 1 < DEPTH && !spoke_view_error(v))
			depth++;
	}
	return 0;
}

static void seed_ops(const char *name, const uint8_t *ops, size_t k, const spoke_buf *b)
{
	uint8_t out[1024];

	out[0] = (uint8_t)k;
	memcpy(out + 1, ops, k);
	memcpy(out + 1 + k, b->data, b->len);
	fz_seed(name, out, 1 + k + b->len);
}

static void seeds(void)
{
	static const float fl[3] = { 1.5f, -2.0f, 3.25f };
	const uint8_t scalars[] = { OP_U8, OP_BOOL, OP_U16, OP_U32, OP_U64, OP_I32, OP_I64, OP_F32,
				    OP_F64 };
	const uint8_t strings[] = { OP_STR, OP_STR_COPY | 0xf0, OP_BYTES, OP_F32_ARRAY | 0x40,
				    OP_RAW | 0x20 };
	const uint8_t nested[] = { OP_RECORD, OP_U32, OP_STR, OP_POP, OP_U8 };
	spoke_buf b;
	size_t mark;

	fz_buf(&b);
	spoke_buf_put_u8(&b, 7);
	spoke_buf_put_bool(&b, true);
	spoke_buf_put_u16(&b, 0xbeef);
	spoke_buf_put_u32(&b, 123456);
	spoke_buf_put_u64(&b, 1ull << 50);
	spoke_buf_put_i32(&b, -5);
	spoke_buf_put_i64(&b, -(1ll << 40));
	spoke_buf_put_f32(&b, 0.5f);
	spoke_buf_put_f64(&b, 3.14);
	seed_ops("scalars", scalars, sizeof(scalars), &b);

	fz_buf(&b);
	spoke_buf_put_str(&b, "hello");
	spoke_buf_put_str(&b, "copy me");
	spoke_buf_put_bytes(&b, "\x00\x01\x02", 3);
	spoke_buf_put_f32_array(&b, fl, 3);
	spoke_buf_put_raw(&b, "ab", 2);
	seed_ops("strings", strings, sizeof(strings), &b);

	fz_buf(&b);
	mark = spoke_buf_record_begin(&b);
	spoke_buf_put_u32(&b, 99);
	spoke_buf_put_str(&b, "inner");
	spoke_buf_record_end(&b, mark);
	spoke_buf_put_u8(&b, 1);
	seed_ops("nested", nested, sizeof(nested), &b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-view", seeds);
	return 0;
}

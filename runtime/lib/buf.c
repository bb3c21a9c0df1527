/* buf.c - packing into and unpacking from message buffers.
 *
 * Everything is little-endian on the wire whatever the host, written and read
 * a byte at a time through the helpers below, so neither side ever needs an
 * aligned pointer.  Lengths are checked against what is left before anything
 * moves, in a form that cannot overflow, and a compound value (a length and
 * its bytes) is reserved or checked as a whole: a failed call changes
 * nothing but the sticky error.
 *
 * A failed get also sets its outputs to an empty value (0, false, an empty
 * string, an empty view carrying the error) so that code which unpacks a
 * whole struct and checks spoke_view_error() once at the end never uses an
 * uninitialised length or pointer on the way. */
#include <limits.h>
#include <string.h>

#include <spoke/errors.h>
#include <spoke/serializer.h>

/* Where zero bytes live when there is no memory at all (data == NULL). */
static uint8_t no_room[1];
static const uint8_t no_bytes[1];

static void store_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void store_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void store_le64(uint8_t *p, uint64_t v)
{
	store_le32(p, (uint32_t)v);
	store_le32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t load_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static float bits_f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* ---- spoke_buf ---- */

static int buf_fail(spoke_buf *b, int err)
{
	if (b->err == 0)
		b->err = err;
	return b->err;
}

static size_t buf_room(const spoke_buf *b)
{
	return b->cap >= b->len ? b->cap - b->len : 0;
}

void spoke_buf_init(spoke_buf *b, void *mem, size_t cap)
{
	b->data = mem;
	b->len = 0;
	b->cap = cap;
	b->err = 0;
	b->grow = NULL;
	b->owner = NULL;
	if (mem == NULL && cap > 0) {
		b->cap = 0;
		b->err = SPOKE_EINVAL;
	}
}

void *spoke_buf_reserve(spoke_buf *b, size_t n)
{
	uint8_t *p;
	int rc;

	if (b->err)
		return NULL;
	if (n > buf_room(b)) {
		if (b->grow == NULL || n > SIZE_MAX - b->len) {
			buf_fail(b, SPOKE_ENOSPC);
			return NULL;
		}
		rc = b->grow(b, b->len + n);
		if (rc < 0) {
			buf_fail(b, rc);
			return NULL;
		}
		if (n > buf_room(b)) {
			buf_fail(b, SPOKE_ENOSPC);
			return NULL;
		}
	}
	if (b->data == NULL) { /* room for nothing, or a broken grow hook */
		if (n > 0) {
			buf_fail(b, SPOKE_EINVAL);
			return NULL;
		}
		return no_room;
	}
	p = b->data + b->len;
	b->len += n;
	return p;
}

int spoke_buf_put_raw(spoke_buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (b->err)
		return b->err;
	if (p == NULL && n > 0)
		return buf_fail(b, SPOKE_EINVAL);
	dst = spoke_buf_reserve(b, n);
	if (dst == NULL)
		return b->err;
	if (n > 0)
		memcpy(dst, p, n);
	return 0;
}

int spoke_buf_put_u8(spoke_buf *b, uint8_t v)
{
	uint8_t *dst = spoke_buf_reserve(b, 1);

	if (dst == NULL)
		return b->err;
	dst[0] = v;
	return 0;
}

int spoke_buf_put_bool(spoke_buf *b, bool v)
{
	return spoke_buf_put_u8(b, v ? 1 : 0);
}

int spoke_buf_put_u16(spoke_buf *b, uint16_t v)
{
	uint8_t *dst = spoke_buf_reserve(b, 2);

	if (dst == NULL)
		return b->err;
	store_le16(dst, v);
	return 0;
}

int spoke_buf_put_u32(spoke_buf *b, uint32_t v)
{
	uint8_t *dst = spoke_buf_reserve(b, 4);

	if (dst == NULL)
		return b->err;
	store_le32(dst, v);
	return 0;
}

int spoke_buf_put_u64(spoke_buf *b, uint64_t v)
{
	uint8_t *dst = spoke_buf_reserve(b, 8);

	if (dst == NULL)
		return b->err;
	store_le64(dst, v);
	return 0;
}

int spoke_buf_put_i32(spoke_buf *b, int32_t v)
{
	return spoke_buf_put_u32(b, (uint32_t)v);
}

int spoke_buf_put_i64(spoke_buf *b, int64_t v)
{
	return spoke_buf_put_u64(b, (uint64_t)v);
}

int spoke_buf_put_f32(spoke_buf *b, float v)
{
	return spoke_buf_put_u32(b, f32_bits(v));
}

int spoke_buf_put_f64(spoke_buf *b, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return spoke_buf_put_u64(b, u);
}

int spoke_buf_put_str(spoke_buf *b, const char *s)
{
	if (s == NULL)
		s = "";
	return spoke_buf_put_strn(b, s, strlen(s));
}

int spoke_buf_put_strn(spoke_buf *b, const char *s, size_t n)
{
	return spoke_buf_put_bytes(b, s, n);
}

int spoke_buf_put_bytes(spoke_buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (b->err)
		return b->err;
	if (p == NULL && n > 0)
		return buf_fail(b, SPOKE_EINVAL);
	if (n > UINT32_MAX || n > SIZE_MAX - 4)
		return buf_fail(b, SPOKE_ETOOBIG);
	dst = spoke_buf_reserve(b, 4 + n);
	if (dst == NULL)
		return b->err;
	store_le32(dst, (uint32_t)n);
	if (n > 0)
		memcpy(dst + 4, p, n);
	return 0;
}

int spoke_buf_put_f32_array(spoke_buf *b, const float *v, size_t n)
{
	uint8_t *dst;
	size_t i;

	if (b->err)
		return b->err;
	if (v == NULL && n > 0)
		return buf_fail(b, SPOKE_EINVAL);
	if (n > UINT32_MAX || n > (SIZE_MAX - 4) / 4)
		return buf_fail(b, SPOKE_ETOOBIG);
	dst = spoke_buf_reserve(b, 4 + n * 4);
	if (dst == NULL)
		return b->err;
	store_le32(dst, (uint32_t)n);
	for (i = 0; i < n; i++)
		store_le32(dst + 4 + i * 4, f32_bits(v[i]));
	return 0;
}

size_t spoke_buf_record_begin(spoke_buf *b)
{
	size_t mark = b->len;
	uint8_t *dst = spoke_buf_reserve(b, 4);

	if (dst == NULL)
		return (size_t)-1;
	store_le32(dst, 0);
	return mark;
}

int spoke_buf_record_end(spoke_buf *b, size_t mark)
{
	size_t n;

	if (b->err)
		return b->err;
	if (b->len > b->cap || mark > b->len || b->len - mark < 4)
		return buf_fail(b, SPOKE_EINVAL);
	n = b->len - mark - 4;
	if (n > UINT32_MAX)
		return buf_fail(b, SPOKE_ETOOBIG);
	store_le32(b->data + mark, (uint32_t)n);
	return 0;
}

int spoke_buf_error(const spoke_buf *b)
{
	return b->err;
}

/* ---- spoke_view ---- */

static int view_fail(spoke_view *v, int err)
{
	if (v->err == 0)
		v->err = err;
	return v->err;
}

/* The bytes at the read position (never NULL, even for an empty view). */
static const uint8_t *view_here(const spoke_view *v)
{
	return v->data ? v->data + v->pos : no_bytes;
}

/* n bytes at the read position, consumed; NULL (error set) if short. */
static const uint8_t *view_take(spoke_view *v, size_t n)
{
	const uint8_t *p;

	if (v->err)
		return NULL;
	if (n > spoke_view_remaining(v)) {
		view_fail(v, SPOKE_ESHORT);
		return NULL;
	}
	p = view_here(v);
	v->pos += n;
	return p;
}

/* Reads a u32 length prefix without consuming it and checks that unit * *n
 * more bytes follow it; on success the caller consumes 4 + unit * *n. */
static int view_peek_len(spoke_view *v, size_t unit, uint32_t *n)
{
	size_t left = spoke_view_remaining(v);

	if (v->err)
		return v->err;
	if (left < 4)
		return view_fail(v, SPOKE_ESHORT);
	*n = load_le32(view_here(v));
	if (*n > (left - 4) / unit)
		return view_fail(v, SPOKE_ESHORT);
	return 0;
}

void spoke_view_init(spoke_view *v, const void *data, size_t len)
{
	v->data = data;
	v->len = len;
	v->pos = 0;
	v->err = 0;
	if (data == NULL && len > 0) {
		v->len = 0;
		v->err = SPOKE_EINVAL;
	}
}

size_t spoke_view_remaining(const spoke_view *v)
{
	return v->len >= v->pos ? v->len - v->pos : 0;
}

int spoke_view_error(const spoke_view *v)
{
	return v->err;
}

int spoke_view_get_raw(spoke_view *v, const void **p, size_t n)
{
	const uint8_t *src = view_take(v, n);

	*p = src ? src : no_bytes;
	return v->err;
}

int spoke_view_get_u8(spoke_view *v, uint8_t *out)
{
	const uint8_t *src = view_take(v, 1);

	*out = src ? src[0] : 0;
	return v->err;
}

/* A bool is one byte, 0 or 1; any other value is a corrupt message. */
int spoke_view_get_bool(spoke_view *v, bool *out)
{
	*out = false;
	if (v->err)
		return v->err;
	if (spoke_view_remaining(v) < 1)
		return view_fail(v, SPOKE_ESHORT);
	if (view_here(v)[0] > 1)
		return view_fail(v, SPOKE_ESHORT);
	*out = view_take(v, 1)[0] == 1;
	return 0;
}

int spoke_view_get_u16(spoke_view *v, uint16_t *out)
{
	const uint8_t *src = view_take(v, 2);

	*out = src ? load_le16(src) : 0;
	return v->err;
}

int spoke_view_get_u32(spoke_view *v, uint32_t *out)
{
	const uint8_t *src = view_take(v, 4);

	*out = src ? load_le32(src) : 0;
	return v->err;
}

int spoke_view_get_u64(spoke_view *v, uint64_t *out)
{
	const uint8_t *src = view_take(v, 8);

	*out = src ? load_le64(src) : 0;
	return v->err;
}

int spoke_view_get_i32(spoke_view *v, int32_t *out)
{
	uint32_t u;
	int rc = spoke_view_get_u32(v, &u);

	*out = (int32_t)u;
	return rc;
}

int spoke_view_get_i64(spoke_view *v, int64_t *out)
{
	uint64_t u;
	int rc = spoke_view_get_u64(v, &u);

	*out = (int64_t)u;
	return rc;
}

int spoke_view_get_f32(spoke_view *v, float *out)
{
	uint32_t u;
	int rc = spoke_view_get_u32(v, &u);

	*out = rc ? 0.0f : bits_f32(u);
	return rc;
}

int spoke_view_get_f64(spoke_view *v, double *out)
{
	uint64_t u;
	int rc = spoke_view_get_u64(v, &u);

	if (rc) {
		*out = 0.0;
		return rc;
	}
	memcpy(out, &u, sizeof(*out));
	return 0;
}

int spoke_view_get_str(spoke_view *v, const char **s, size_t *n)
{
	const void *p;
	int rc = spoke_view_get_bytes(v, &p, n);

	*s = p;
	return rc;
}

int spoke_view_get_str_copy(spoke_view *v, char *dst, size_t cap)
{
	uint32_t n;
	int rc;

	if (cap > 0)
		dst[0] = '\0';
	rc = view_peek_len(v, 1, &n);
	if (rc)
		return rc;
	if (n >= cap)
		return view_fail(v, SPOKE_ENOSPC);
	memcpy(dst, view_take(v, 4 + (size_t)n) + 4, n);
	dst[n] = '\0';
	return 0;
}

int spoke_view_get_bytes(spoke_view *v, const void **p, size_t *n)
{
	uint32_t len;
	int rc;

	*p = no_bytes;
	*n = 0;
	rc = view_peek_len(v, 1, &len);
	if (rc)
		return rc;
	*p = view_take(v, 4 + (size_t)len) + 4;
	*n = len;
	return 0;
}

int spoke_view_get_f32_array(spoke_view *v, float *dst, size_t cap, size_t *n)
{
	const uint8_t *src;
	uint32_t count;
	size_t i;
	int rc;

	*n = 0;
	rc = view_peek_len(v, 4, &count);
	if (rc)
		return rc;
	if (count > cap)
		return view_fail(v, SPOKE_ENOSPC);
	src = view_take(v, 4 + (size_t)count * 4) + 4;
	for (i = 0; i < count; i++)
		dst[i] = bits_f32(load_le32(src + i * 4));
	*n = count;
	return 0;
}

int spoke_view_get_record(spoke_view *v, spoke_view *rec)
{
	uint32_t len;
	int rc;

	spoke_view_init(rec, NULL, 0);
	rc = view_peek_len(v, 1, &len);
	if (rc) {
		rec->err = rc;
		return rc;
	}
	spoke_view_init(rec, view_take(v, 4 + (size_t)len) + 4, len);
	return 0;
}

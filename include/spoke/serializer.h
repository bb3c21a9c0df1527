/* spoke/serializer.h - packing into and unpacking from message buffers.
 *
 * A spoke_buf writes little-endian values straight into memory it does not
 * own: the transport's send buffer for a request, the reply buffer the
 * runtime hands a method.  A spoke_view reads from a received message in
 * place.  Both keep the first error they meet (sticky): after a failure every
 * later call fails too, so a sequence of puts or gets can be checked once at
 * the end with spoke_buf_error() / spoke_view_error().  A short or corrupt
 * message is SPOKE_ESHORT, never a read past the end.
 *
 * Encoding: integers and floats little-endian at their natural size;
 * strings and byte arrays as a u32 length then the bytes (no NUL); a float
 * array as a u32 count then the floats; a nested record as a u32 length then
 * the record's own encoding. */
#ifndef SPOKE_SERIALIZER_H
#define SPOKE_SERIALIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spoke/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spoke_buf {
	uint8_t *data; /* start of the memory written into */
	size_t len;    /* bytes written so far */
	size_t cap;    /* bytes available at data */
	int err;       /* first error met, 0 if none */
	/* private: lets a runtime-owned buffer grow (up to the message maximum) */
	int (*grow)(struct spoke_buf *b, size_t need);
	void *owner;
} spoke_buf;

typedef struct spoke_view {
	const uint8_t *data;
	size_t len;
	size_t pos;
	int err;
} spoke_view;

/* A type's pack/unpack pair (the C form of PackTo/UnpackFrom). */
typedef struct spoke_serializer {
	int (*pack)(spoke_buf *out, const void *obj);
	int (*unpack)(spoke_view *in, void *obj);
} spoke_serializer;

SPOKE_API void spoke_buf_init(spoke_buf *b, void *mem, size_t cap);
/* Room for n more bytes at the end: returns where to write them and counts
 * them as written, or NULL (and sets the error) if they do not fit. */
SPOKE_API void *spoke_buf_reserve(spoke_buf *b, size_t n);
SPOKE_API int spoke_buf_put_raw(spoke_buf *b, const void *p, size_t n);
SPOKE_API int spoke_buf_put_u8(spoke_buf *b, uint8_t v);
SPOKE_API int spoke_buf_put_bool(spoke_buf *b, bool v);
SPOKE_API int spoke_buf_put_u16(spoke_buf *b, uint16_t v);
SPOKE_API int spoke_buf_put_u32(spoke_buf *b, uint32_t v);
SPOKE_API int spoke_buf_put_u64(spoke_buf *b, uint64_t v);
SPOKE_API int spoke_buf_put_i32(spoke_buf *b, int32_t v);
SPOKE_API int spoke_buf_put_i64(spoke_buf *b, int64_t v);
SPOKE_API int spoke_buf_put_f32(spoke_buf *b, float v);
SPOKE_API int spoke_buf_put_f64(spoke_buf *b, double v);
/* A NUL-terminated string (NULL packs as ""). */
SPOKE_API int spoke_buf_put_str(spoke_buf *b, const char *s);
SPOKE_API int spoke_buf_put_strn(spoke_buf *b, const char *s, size_t n);
SPOKE_API int spoke_buf_put_bytes(spoke_buf *b, const void *p, size_t n);
SPOKE_API int spoke_buf_put_f32_array(spoke_buf *b, const float *v, size_t n);
/* Nested record: mark = spoke_buf_record_begin(b); pack the fields;
 * spoke_buf_record_end(b, mark) writes the record's length before it. */
SPOKE_API size_t spoke_buf_record_begin(spoke_buf *b);
SPOKE_API int spoke_buf_record_end(spoke_buf *b, size_t mark);
SPOKE_API int spoke_buf_error(const spoke_buf *b);

SPOKE_API void spoke_view_init(spoke_view *v, const void *data, size_t len);
SPOKE_API size_t spoke_view_remaining(const spoke_view *v);
SPOKE_API int spoke_view_error(const spoke_view *v);
/* n bytes in place, with no length prefix. */
SPOKE_API int spoke_view_get_raw(spoke_view *v, const void **p, size_t n);
SPOKE_API int spoke_view_get_u8(spoke_view *v, uint8_t *out);
SPOKE_API int spoke_view_get_bool(spoke_view *v, bool *out);
SPOKE_API int spoke_view_get_u16(spoke_view *v, uint16_t *out);
SPOKE_API int spoke_view_get_u32(spoke_view *v, uint32_t *out);
SPOKE_API int spoke_view_get_u64(spoke_view *v, uint64_t *out);
SPOKE_API int spoke_view_get_i32(spoke_view *v, int32_t *out);
SPOKE_API int spoke_view_get_i64(spoke_view *v, int64_t *out);
SPOKE_API int spoke_view_get_f32(spoke_view *v, float *out);
SPOKE_API int spoke_view_get_f64(spoke_view *v, double *out);
/* A string in place: *s points into the message, is not NUL-terminated. */
SPOKE_API int spoke_view_get_str(spoke_view *v, const char **s, size_t *n);
/* A string copied to dst with a NUL; SPOKE_ENOSPC if it does not fit in cap. */
SPOKE_API int spoke_view_get_str_copy(spoke_view *v, char *dst, size_t cap);
SPOKE_API int spoke_view_get_bytes(spoke_view *v, const void **p, size_t *n);
/* Up to cap floats copied to dst (the message may be unaligned);
 * SPOKE_ENOSPC if the array holds more than cap. */
SPOKE_API int spoke_view_get_f32_array(spoke_view *v, float *dst, size_t cap, size_t *n);
/* A nested record as a view of its own. */
SPOKE_API int spoke_view_get_record(spoke_view *v, spoke_view *rec);

#ifdef __cplusplus
}
#endif
#endif

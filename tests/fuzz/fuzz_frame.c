/* fuzz_frame.c - the frame header decoder (runtime/lib/frame.c): a byte stream
 * parsed frame after frame as a connection would, and one header decoded
 * with the RDMA transport's flag bits allowed.
 *
 * Input: u16 allowed flags, then the stream.  Properties: a parsed frame
 * lies inside the input, its length is within the maximum, and encoding
 * the decoded header gives back the same 32 bytes. */
#include <string.h>

#include <spoke/errors.h>

#include "frame.h"
#include "fuzz.h"

static void check_round_trip(const uint8_t *in, const struct spk_hdr *h)
{
	uint8_t again[SPK_HDR_SIZE];

	spk_hdr_encode(again, h->type, h->id, h->aux, h->len);
	spk_hdr_set_flags(again, h->flags);
	spk_hdr_set_ttl(again, h->ttl_ms);
	FZ_CHECK(memcmp(again, in, SPK_HDR_SIZE) == 0);
	FZ_CHECK(strcmp(spk_type_name(h->type), "?") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint32_t max = 1u << 16;
	struct spk_hdr h;
	uint16_t allowed;
	size_t pos;
	long r;
	int rc;

	if (size < 2)
		return 0;
	allowed = (uint16_t)(data[0] | data[1] << 8);
	data += 2;
	size -= 2;
	if (size >= SPK_HDR_SIZE) {
		rc = spk_hdr_decode_flags(data, max, allowed, &h);
		FZ_CHECK(rc == 0 || rc == SPOKE_EPROTO || rc == SPOKE_EVERSION || rc == SPOKE_ETOOBIG);
		if (rc == 0) {
			FZ_CHECK(h.len <= max &&
				 (h.flags & ~allowed & ~(h.type == SPK_CALL ? SPK_CF_MASK : 0u)) == 0);
			check_round_trip(data, &h);
		}
	}
	for (pos = 0; pos < size; pos += (size_t)r) {
		r = spk_frame_parse(data + pos, size - pos, max, &h);
		if (r <= 0) {
			FZ_CHECK(r == 0 || r == SPOKE_EPROTO || r == SPOKE_EVERSION ||
				 r == SPOKE_ETOOBIG);
			break;
		}
		FZ_CHECK((size_t)r <= size - pos && (size_t)r == SPK_HDR_SIZE + h.len);
		FZ_CHECK(h.len <= max && (h.flags & ~(h.type == SPK_CALL ? SPK_CF_MASK : 0u)) == 0);
		check_round_trip(data + pos, &h);
	}
	return 0;
}

static void seed(const char *name, uint16_t allowed, const uint8_t *stream, size_t n)
{
	uint8_t out[512];

	out[0] = (uint8_t)allowed;
	out[1] = (uint8_t)(allowed >> 8);
	memcpy(out + 2, stream, n);
	fz_seed(name, out, n + 2);
}

static void seeds(void)
{
	uint8_t s[256];
	size_t n = 0;

	/* A HELLO, an AUTH and a CALL with its payload, back to back. */
	spk_hdr_encode(s, SPK_HELLO, 0, 0, 32);
	memset(s + SPK_HDR_SIZE, 0xab, 32);
	n = SPK_HDR_SIZE + 32;
	spk_hdr_encode(s + n, SPK_CALL, 7, 3, 5);
	memcpy(s + n + SPK_HDR_SIZE, "hello", 5);
	n += SPK_HDR_SIZE + 5;
	spk_hdr_encode(s + n, SPK_REPLY, 7, -5, 0);
	n += SPK_HDR_SIZE;
	seed("stream", 0, s, n);
	/* An RDMA header with flags. */
	spk_hdr_encode(s, SPK_TRANSPORT_FIRST_ + 1, 1ull << 40, 0, 0); /* RDMA's DONE */
	spk_hdr_set_flags(s, 0x3);
	seed("rdma-flags", 0xffff, s, SPK_HDR_SIZE);
	/* A frame cut short, and one over the maximum. */
	spk_hdr_encode(s, SPK_SPAWN, 2, 0, 100);
	seed("partial", 0, s, SPK_HDR_SIZE + 10);
	spk_hdr_encode(s, SPK_NODES, 3, 0, 1u << 20);
	seed("oversize", 0, s, SPK_HDR_SIZE);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-frame", seeds);
	return 0;
}

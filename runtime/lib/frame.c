/* frame.c - encoding and checking frame headers. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <spoke/client.h>
#include <spoke/errors.h>
#include <spoke/version.h>

#include "clock.h"
#include "env.h"
#include "errmsg.h"
#include "frame.h"
#include "log.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void spk_hdr_encode(uint8_t out[SPK_HDR_SIZE], uint8_t type, uint64_t id, int32_t aux,
		    uint32_t len)
{
	put32(out, SPK_MAGIC);
	out[4] = SPOKE_PROTOCOL_VERSION;
	out[5] = type;
	out[6] = 0;
	out[7] = 0;
	put32(out + 8, (uint32_t)id);
	put32(out + 12, (uint32_t)(id >> 32));
	put32(out + 16, (uint32_t)aux);
	put32(out + 20, len);
	put32(out + 24, 0);
	put32(out + 28, 0);
}

void spk_hdr_set_ttl(uint8_t out[SPK_HDR_SIZE], uint32_t ttl_ms)
{
	put32(out + 24, ttl_ms);
}

uint32_t spk_ttl_of(int64_t deadline)
{
	int64_t left;

	if (deadline <= 0)
		return 0;
	left = (deadline - spk_now_us() + 999) / 1000;
	return left < 1 ? 1 : left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

void spk_hdr_set_flags(uint8_t out[SPK_HDR_SIZE], uint16_t flags)
{
	out[6] = (uint8_t)flags;
	out[7] = (uint8_t)(flags >> 8);
}

int spk_hdr_decode(const uint8_t in[SPK_HDR_SIZE], uint32_t max_payload, struct spk_hdr *h)
{
	return spk_hdr_decode_flags(in, max_payload, 0, h);
}

int spk_hdr_decode_flags(const uint8_t in[SPK_HDR_SIZE], uint32_t max_payload, uint16_t allowed,
			 struct spk_hdr *h)
{
	if (get32(in) != SPK_MAGIC)
		return SPOKE_EPROTO;
	if (in[4] != SPOKE_PROTOCOL_VERSION)
		return SPOKE_EVERSION;
	h->type = in[5];
	h->flags = (uint16_t)(in[6] | in[7] << 8);
	h->id = (uint64_t)get32(in + 8) | (uint64_t)get32(in + 12) << 32;
	h->aux = (int32_t)get32(in + 16);
	h->len = get32(in + 20);
	h->ttl_ms = get32(in + 24);
	if (get32(in + 28) != 0 || (h->ttl_ms && h->type != SPK_CALL))
		return SPOKE_EPROTO;
	if (h->type == SPK_CALL)
		allowed |= SPK_CF_MASK;
	if (h->type < SPK_HELLO || h->type > SPK_TYPE_MAX_ || (h->flags & ~allowed))
		return SPOKE_EPROTO;
	if (h->len > max_payload)
		return SPOKE_ETOOBIG;
	return 0;
}

long spk_frame_parse(const uint8_t *buf, size_t len, uint32_t max_payload, struct spk_hdr *h)
{
	int rc;

	if (len == 0)
		return 0;
	if (len < SPK_HDR_SIZE) {
		/* Refuse garbage as soon as the magic is visibly wrong. */
		uint8_t magic[4];

		put32(magic, SPK_MAGIC);
		if (memcmp(buf, magic, len < 4 ? len : 4) != 0)
			return SPOKE_EPROTO;
		return 0;
	}
	rc = spk_hdr_decode(buf, max_payload, h);
	if (rc < 0)
		return rc;
	if (len - SPK_HDR_SIZE < h->len)
		return 0;
	return (long)(SPK_HDR_SIZE + h->len);
}

int spk_max_payload_env(uint32_t *out)
{
	uint64_t v;
	int rc = spk_env_size("SPOKE_MAX_MSG", SPK_MAX_PAYLOAD_MIN, SPK_MAX_PAYLOAD_LIMIT,
			      SPK_MAX_PAYLOAD_DEFAULT, &v);

	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}

uint32_t spk_max_payload(void)
{
	static atomic_flag told = ATOMIC_FLAG_INIT;
	uint32_t v = SPK_MAX_PAYLOAD_DEFAULT;
	char saved[512];

	snprintf(saved, sizeof(saved), "%s", spoke_errmsg());
	if (spk_max_payload_env(&v) < 0) {
		/* No caller to tell here (every connection asks): say it once,
		 * and leave the caller's own message as it was. */
		if (!atomic_flag_test_and_set(&told))
			spk_err("%s; using the default, %u bytes", spoke_errmsg(),
				SPK_MAX_PAYLOAD_DEFAULT);
		spk_errmsg_setn(saved, strlen(saved));
	}
	return v;
}

const char *spk_type_name(uint8_t type)
{
	static const char *const names[] = {
		"?", "HELLO", "AUTH", "AUTH_OK", "REPLY", "CALL", "REGISTER", "SPAWN",
		"ALLOC", "LAUNCH", "RELEASE", "LOOKUP", "KILL", "START", "STOP",
		"EXITED", "SPAWN_INFO", "READY", "NODES",
		/* the transports' own messages (frame.h) */
		"TRANSPORT_19", "TRANSPORT_20", "TRANSPORT_21", "TRANSPORT_22", "TRANSPORT_23",
		"TRANSPORT_24", "CHUNK", "CANCEL", "STATS", "STATUS", "RESTARTED",
	};

	return type <= SPK_TYPE_MAX_ ? names[type] : "?";
}

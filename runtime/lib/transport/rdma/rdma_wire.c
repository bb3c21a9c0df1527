/* rdma_wire.c - the RDMA transport's messages: the worker's offer and the
 * connection request's private data (rdma_wire.h). */
#include <arpa/inet.h>
#include <string.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "proto.h"
#include "rdma_wire.h"

int spk_rdma_offer_pack(spoke_buf *b, const struct spk_rdma_offer *o)
{
	if (o->n_addrs == 0 || o->n_addrs > SPK_RDMA_ADDRS) {
		if (!b->err)
			b->err = SPOKE_EINVAL;
		return spk_fail(b->err, "an RDMA offer of %u addresses (1 to %u)", o->n_addrs,
				SPK_RDMA_ADDRS);
	}
	spoke_buf_put_u16(b, o->port);
	spoke_buf_put_u32(b, o->index);
	spoke_buf_put_raw(b, o->cookie, SPK_RDMA_COOKIE);
	spoke_buf_put_u32(b, o->slot);
	spoke_buf_put_u32(b, o->credits);
	spoke_buf_put_u32(b, o->max_msg);
	spoke_buf_put_u32(b, o->n_addrs);
	for (uint32_t i = 0; i < o->n_addrs; i++)
		spoke_buf_put_str(b, o->addrs[i]);
	return spoke_buf_error(b);
}

/* The view's error: trailing bytes after a whole message. */
static int no_trailing(spoke_view *v, const char *what)
{
	size_t left = spoke_view_remaining(v);

	if (spoke_view_error(v) || left == 0)
		return spoke_view_error(v);
	v->err = SPOKE_EPROTO;
	return spk_fail(SPOKE_EPROTO, "%zu bytes after the %s", left, what);
}

int spk_rdma_offer_unpack(spoke_view *v, struct spk_rdma_offer *o)
{
	const void *cookie = NULL;
	uint8_t ip[sizeof(struct in6_addr)];

	memset(o, 0, sizeof(*o));
	spoke_view_get_u16(v, &o->port);
	spoke_view_get_u32(v, &o->index);
	if (spoke_view_get_raw(v, &cookie, SPK_RDMA_COOKIE) == 0)
		memcpy(o->cookie, cookie, SPK_RDMA_COOKIE);
	spoke_view_get_u32(v, &o->slot);
	spoke_view_get_u32(v, &o->credits);
	spoke_view_get_u32(v, &o->max_msg);
	if (spoke_view_get_u32(v, &o->n_addrs) < 0)
		return spoke_view_error(v);
	if (o->n_addrs == 0 || o->n_addrs > SPK_RDMA_ADDRS) {
		v->err = SPOKE_EPROTO;
		return spk_fail(SPOKE_EPROTO, "an RDMA offer of %u addresses (1 to %u)", o->n_addrs,
				SPK_RDMA_ADDRS);
	}
	for (uint32_t i = 0; i < o->n_addrs; i++) {
		if (spk_view_get_name(v, "RDMA address", o->addrs[i], sizeof(o->addrs[i])) < 0)
			return spoke_view_error(v);
		if (inet_pton(AF_INET, o->addrs[i], ip) != 1 &&
		    inet_pton(AF_INET6, o->addrs[i], ip) != 1) {
			v->err = SPOKE_EINVAL;
			/* A name: no control character to escape. */
			return spk_fail(SPOKE_EINVAL, "RDMA address '%s' is not a numeric IP address",
					o->addrs[i]);
		}
	}
	return no_trailing(v, "RDMA offer");
}

int spk_rdma_connect_pack(spoke_buf *b, const struct spk_rdma_connect *c)
{
	spoke_buf_put_u32(b, c->index);
	spoke_buf_put_raw(b, c->mac, SPK_MAC_SIZE);
	return spoke_buf_error(b);
}

int spk_rdma_connect_unpack(spoke_view *v, struct spk_rdma_connect *c)
{
	const void *mac = NULL;
	const uint8_t *pad = NULL;
	size_t left;

	memset(c, 0, sizeof(*c));
	spoke_view_get_u32(v, &c->index);
	if (spoke_view_get_raw(v, &mac, SPK_MAC_SIZE) < 0)
		return spoke_view_error(v);
	memcpy(c->mac, mac, SPK_MAC_SIZE);
	/* The transport's padding. */
	left = spoke_view_remaining(v);
	if (left && spoke_view_get_raw(v, (const void **)&pad, left) == 0)
		for (size_t i = 0; i < left; i++)
			if (pad[i]) {
				v->err = SPOKE_EPROTO;
				return spk_fail(SPOKE_EPROTO, "%zu bytes after the RDMA connection "
						"request's private data, not all zero", left);
			}
	return spoke_view_error(v);
}

/* fuzz_handshake_server.c - the server's side of a connection
 * (runtime/evconn.c, as the hub, agents and workers run it): the handshake
 * (HELLO out, AUTH in) and then the frames of an authenticated peer, over a
 * socketpair on a libev loop, in process.
 *
 * Input: a mode byte, then the bytes the peer sends.  Mode bit 0 clear: the
 * bytes are all the peer says (a stranger: garbage, a wrong proof, frames
 * before the handshake).  Set: the peer first proves the token properly
 * (its AUTH made from the HELLO it read), then sends the bytes as frames
 * to an authenticated connection, which hands each to a handler that
 * decodes its payload as the hub would (proto.c) and answers it.  The peer
 * then closes its side.  Properties: the connection ends (closed by the
 * server, or when the peer's end reaches it) within a bounded number of
 * loop turns, frees what it holds (ASan's leak check), and a stranger's
 * bytes never reach the frame handler. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <spoke/errors.h>

#include "auth.h"
#include "evconn.h"
#include "fuzz.h"
#include "net.h"
#include "proto.h"

#define TOKEN "fuzz-token-0123456789abcdef"

static struct ev_loop *loop;

struct peer {
	bool closed;
	bool authed_by_us; /* the peer proved the token */
	unsigned frames;
};

static void on_frame(struct spk_evconn *c, const struct spk_hdr *h, spoke_view *v)
{
	struct peer *p = c->data;
	struct spk_spawn_spec spec;
	struct spk_register reg;
	spoke_buf b;
	uint64_t id;
	uint32_t rank;
	int rc;

	FZ_CHECK(p->authed_by_us);
	p->frames++;
	switch (h->type) {
	case SPK_SPAWN: rc = spk_spawn_spec_unpack(v, &spec); break;
	case SPK_LAUNCH:
		spoke_view_get_u64(v, &id);
		spoke_view_get_u32(v, &rank);
		rc = spk_spawn_spec_unpack(v, &spec);
		break;
	case SPK_REGISTER: rc = spk_register_unpack(v, &reg); break;
	case SPK_REPLY: return;
	default: rc = 0;
	}
	if (rc < 0) {
		spk_evconn_reply_error(c, h->id, SPOKE_EPROTO, "malformed %s", spk_type_name(h->type));
		return;
	}
	spk_evconn_begin(c, &b);
	spoke_buf_put_raw(&b, v->data, v->len); /* an echo: the output path too */
	spk_evconn_finish(c, &b, SPK_REPLY, h->id, 0);
}

static void on_close(struct spk_evconn *c, int reason)
{
	struct peer *p = c->data;

	(void)reason;
	p->closed = true;
}

/* Reads exactly n bytes from fd (blocking; they are already sent). */
static int read_exact(int fd, uint8_t *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, buf, n);

		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Reads and sends what it can without blocking, then turns the loop once. */
static void turn(int fd, const uint8_t **data, size_t *size)
{
	uint8_t sink[4096];
	ssize_t n;

	while (read(fd, sink, sizeof(sink)) > 0)
		;
	if (*size) {
		n = send(fd, *data, *size, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			*data += n;
			*size -= (size_t)n;
			if (*size == 0)
				shutdown(fd, SHUT_WR);
		}
	}
	ev_run(loop, EVRUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hello[SPK_HDR_SIZE + SPK_NONCE_SIZE], auth[SPK_HDR_SIZE + SPK_MAC_SIZE + SPK_NONCE_SIZE];
	struct spk_evconn c;
	struct peer p = { 0 };
	int sv[2], turns;
	bool prove;

	if (size < 1)
		return 0;
	prove = data[0] & 1;
	data++;
	size--;
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FZ_CHECK(spk_evconn_start(&c, loop, sv[0], TOKEN, "fuzz-peer", on_frame, on_close, &p) == 0);
	if (prove) {
		FZ_CHECK(read_exact(sv[1], hello, sizeof(hello)) == 0);
		spk_hdr_encode(auth, SPK_AUTH, 0, 0, SPK_MAC_SIZE + SPK_NONCE_SIZE);
		spk_auth_mac(auth + SPK_HDR_SIZE, TOKEN, SPK_LABEL_CLIENT, hello + SPK_HDR_SIZE);
		memset(auth + SPK_HDR_SIZE + SPK_MAC_SIZE, 0x5a, SPK_NONCE_SIZE);
		FZ_CHECK(write(sv[1], auth, sizeof(auth)) == (ssize_t)sizeof(auth));
		p.authed_by_us = true;
	}
	if (size == 0)
		shutdown(sv[1], SHUT_WR);
	/* The server reads as the data comes: at most 1000 turns of the loop. */
	spk_set_nonblock(sv[1], 1);
	for (turns = 0; turns < 1000 && !p.closed; turns++)
		turn(sv[1], &data, &size);
	FZ_CHECK(p.closed);
	close(sv[1]);
	return 0;
}

static void seeds(void)
{
	static const char token_wrong[] = "not-the-token";
	uint8_t out[1024], nonce[SPK_NONCE_SIZE] = { 0 };
	struct spk_spawn_spec sp = { .type = "Hello", .name = "h", .res = { 1, 0 }, .poll_us = -1 };
	spoke_buf b;
	size_t n;

	/* A stranger: an AUTH with a proof made from the wrong token and nonce. */
	out[0] = 0;
	spk_hdr_encode(out + 1, SPK_AUTH, 0, 0, SPK_MAC_SIZE + SPK_NONCE_SIZE);
	spk_auth_mac(out + 1 + SPK_HDR_SIZE, token_wrong, SPK_LABEL_CLIENT, nonce);
	memset(out + 1 + SPK_HDR_SIZE + SPK_MAC_SIZE, 1, SPK_NONCE_SIZE);
	fz_seed("stranger-auth", out, 1 + SPK_HDR_SIZE + SPK_MAC_SIZE + SPK_NONCE_SIZE);
	/* A stranger sending a request first. */
	spk_hdr_encode(out + 1, SPK_NODES, 1, 0, 0);
	fz_seed("stranger-request", out, 1 + SPK_HDR_SIZE);
	/* An authenticated peer: a SPAWN, a NODES, then a frame over the
	 * maximum (64 KiB here) with its first bytes. */
	out[0] = 1;
	spoke_buf_init(&b, out + 1 + SPK_HDR_SIZE, sizeof(out) - 1 - SPK_HDR_SIZE);
	spk_spawn_spec_pack(&b, &sp);
	spk_hdr_encode(out + 1, SPK_SPAWN, 1, 0, (uint32_t)b.len);
	n = 1 + SPK_HDR_SIZE + b.len;
	spk_hdr_encode(out + n, SPK_NODES, 2, 0, 0);
	n += SPK_HDR_SIZE;
	spk_hdr_encode(out + n, SPK_CALL, 3, 0, 1u << 17);
	memset(out + n + SPK_HDR_SIZE, 7, 16);
	n += SPK_HDR_SIZE + 16;
	fz_seed("peer-requests", out, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* A small maximum, so that inputs of a few KiB reach the oversize path. */
	setenv("SPOKE_MAX_MSG", "64K", 1);
	fz_init("fuzz-handshake-server", seeds);
	FZ_CHECK(spk_auth_init() == 0);
	loop = ev_loop_new(EVFLAG_AUTO);
	FZ_CHECK(loop);
	return 0;
}

/* fuzz_handshake_server.c - the server's side of a connection
 * (runtime/lib/loop_conn.c, as the hub, agents and workers run it): the handshake
 * (HELLO out, AUTH in) and then the frames of an authenticated peer, over a
 * socketpair on a libev loop, in process.
 *
 * The server is IDENT (the hub).  Input: a mode byte, then the bytes the
 * peer sends.  Mode bit 0 clear: the bytes are all the peer says (a
 * stranger: garbage, a wrong proof, frames before the handshake).  Set: the
 * peer first sends an AUTH made from the HELLO it read, then sends the
 * bytes as frames, which an authenticated connection hands to a handler
 * that decodes each payload as the hub would (proto.c) and answers it.
 * That AUTH proves the token for IDENT, or with bit 1 for OTHER (a worker
 * of the same job: a client's proof relayed here); it names IDENT, or with
 * bit 2 OTHER.  The peer then closes its side.  Properties: the connection
 * ends (closed by the server, or when the peer's end reaches it) within a
 * bounded number of loop turns and frees what it holds (ASan's leak
 * check); bytes reach the frame handler only from a peer that proved the
 * token as IDENT and named it (a stranger, or a peer that proved it for
 * another server, is refused); an AUTH_OK that comes back is right (a
 * true peer's carries the server's proof and IDENT, a refusal names IDENT
 * only to a peer that proved the token). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <spoke/errors.h>

#include "auth.h"
#include "loop_conn.h"
#include "fuzz.h"
#include "net.h"
#include "proto.h"

#define TOKEN "fuzz-token-0123456789abcdef"
#define IDENT SPK_IDENT_HUB

static struct ev_loop *loop;
static char OTHER[SPK_IDENT_MAX]; /* actor:fuzz:7 */

enum {
	MODE_PROVE = 1,       /* the peer sends an AUTH made from the HELLO */
	MODE_PROOF_OTHER = 2, /* ... proving the token as OTHER */
	MODE_NAME_OTHER = 4,  /* ... naming OTHER */
};

struct peer {
	bool closed;
	bool authed_by_us; /* the peer proved the token as IDENT */
	unsigned frames;
	uint8_t got[SPK_HDR_SIZE + SPK_AUTH_OK_MAX]; /* the first bytes after HELLO */
	size_t got_len;
};

static void on_frame(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *v)
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
		spk_loop_reply_error(c, h->id, SPOKE_EPROTO, "malformed %s", spk_type_name(h->type));
		return;
	}
	spk_loop_begin(c, &b);
	spoke_buf_put_raw(&b, v->data, v->len); /* an echo: the output path too */
	spk_loop_finish(c, &b, SPK_REPLY, h->id, 0);
}

static void on_close(struct spk_loop_conn *c, int reason)
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
static void turn(struct peer *p, int fd, const uint8_t **data, size_t *size)
{
	uint8_t sink[4096];
	ssize_t n;

	while ((n = read(fd, sink, sizeof(sink))) > 0) {
		size_t keep = sizeof(p->got) - p->got_len;

		if (keep > (size_t)n)
			keep = (size_t)n;
		memcpy(p->got + p->got_len, sink, keep);
		p->got_len += keep;
	}
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

/* The AUTH the peer sends in mode `mode`, from the HELLO it read. */
static size_t make_auth(uint8_t out[SPK_HDR_SIZE + SPK_AUTH_MAX], unsigned mode,
			const uint8_t nonce_s[SPK_NONCE_SIZE], struct spk_auth_msg *m)
{
	spoke_buf b;

	memset(m->nonce, 0x5a, SPK_NONCE_SIZE);
	spk_auth_proof(m->mac, TOKEN, SPK_ROLE_CLIENT, mode & MODE_PROOF_OTHER ? OTHER : IDENT,
		       nonce_s, m->nonce);
	snprintf(m->ident, sizeof(m->ident), "%s", mode & MODE_NAME_OTHER ? OTHER : IDENT);
	spoke_buf_init(&b, out + SPK_HDR_SIZE, SPK_AUTH_MAX);
	FZ_CHECK(spk_auth_pack(&b, m) == 0);
	spk_hdr_encode(out, SPK_AUTH, 0, 0, (uint32_t)b.len);
	return SPK_HDR_SIZE + b.len;
}

/* The server's answer to our AUTH, if it came whole (a true peer's frames
 * may close the connection before it goes out). */
static void check_auth_ok(const struct peer *p, unsigned mode,
			  const uint8_t nonce_s[SPK_NONCE_SIZE], const struct spk_auth_msg *sent)
{
	static const uint8_t zeros[SPK_MAC_SIZE];
	struct spk_auth_msg m;
	struct spk_hdr h;
	spoke_view v;

	if (p->got_len < SPK_HDR_SIZE)
		return;
	FZ_CHECK(spk_hdr_decode(p->got, SPK_AUTH_OK_MAX, &h) == 0 && h.type == SPK_AUTH_OK);
	if (p->got_len < SPK_HDR_SIZE + h.len)
		return;
	spoke_view_init(&v, p->got + SPK_HDR_SIZE, h.len);
	FZ_CHECK(spk_auth_ok_unpack(&v, &m) == 0);
	if (p->authed_by_us) {
		FZ_CHECK(h.aux == 0 && strcmp(m.ident, IDENT) == 0);
		FZ_CHECK(spk_auth_proof_ok(m.mac, TOKEN, SPK_ROLE_SERVER, IDENT, nonce_s,
					   sent->nonce));
		return;
	}
	FZ_CHECK(h.aux == SPOKE_EAUTH && memcmp(m.mac, zeros, SPK_MAC_SIZE) == 0);
	/* Only a peer whose proof holds for what it named learns who we are. */
	if ((mode & MODE_PROOF_OTHER) && (mode & MODE_NAME_OTHER))
		FZ_CHECK(strcmp(m.ident, IDENT) == 0);
	else
		FZ_CHECK(m.ident[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hello[SPK_HDR_SIZE + SPK_NONCE_SIZE], auth[SPK_HDR_SIZE + SPK_AUTH_MAX];
	struct spk_auth_msg sent;
	struct spk_loop_conn c;
	struct peer p = { 0 };
	int sv[2], turns;
	unsigned mode;
	size_t n;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FZ_CHECK(spk_loop_start(&c, loop, sv[0], TOKEN, IDENT, "fuzz-peer", on_frame, on_close,
				  &p) == 0);
	if (mode & MODE_PROVE) {
		FZ_CHECK(read_exact(sv[1], hello, sizeof(hello)) == 0);
		n = make_auth(auth, mode, hello + SPK_HDR_SIZE, &sent);
		FZ_CHECK(write(sv[1], auth, n) == (ssize_t)n);
		p.authed_by_us = !(mode & (MODE_PROOF_OTHER | MODE_NAME_OTHER));
	}
	if (size == 0)
		shutdown(sv[1], SHUT_WR);
	/* The server reads as the data comes: at most 1000 turns of the loop. */
	spk_set_nonblock(sv[1], 1);
	for (turns = 0; turns < 1000 && !p.closed; turns++)
		turn(&p, sv[1], &data, &size);
	FZ_CHECK(p.closed);
	if (mode & MODE_PROVE)
		check_auth_ok(&p, mode, hello + SPK_HDR_SIZE, &sent);
	close(sv[1]);
	return 0;
}

static void seeds(void)
{
	static const char token_wrong[] = "not-the-token";
	uint8_t out[1024], nonce[SPK_NONCE_SIZE] = { 0 };
	struct spk_spawn_spec sp = { .type = "Hello", .name = "h", .res = { 1, 0 }, .poll_us = -1 };
	struct spk_auth_msg m = { .ident = IDENT };
	spoke_buf b;
	size_t n;

	/* A stranger: an AUTH with a proof made from the wrong token and nonce. */
	out[0] = 0;
	memset(m.nonce, 1, SPK_NONCE_SIZE);
	spk_auth_proof(m.mac, token_wrong, SPK_ROLE_CLIENT, IDENT, nonce, m.nonce);
	spoke_buf_init(&b, out + 1 + SPK_HDR_SIZE, sizeof(out) - 1 - SPK_HDR_SIZE);
	spk_auth_pack(&b, &m);
	spk_hdr_encode(out + 1, SPK_AUTH, 0, 0, (uint32_t)b.len);
	fz_seed("stranger-auth", out, 1 + SPK_HDR_SIZE + b.len);
	/* A stranger sending a request first. */
	spk_hdr_encode(out + 1, SPK_NODES, 1, 0, 0);
	fz_seed("stranger-request", out, 1 + SPK_HDR_SIZE);
	/* An authenticated peer: a SPAWN, a NODES, then a frame over the
	 * maximum (64 KiB here) with its first bytes. */
	out[0] = MODE_PROVE;
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
	/* The same requests from a peer that proves the token for another
	 * server (relayed), names another, or both: all refused. */
	out[0] = MODE_PROVE | MODE_PROOF_OTHER;
	fz_seed("relay", out, n);
	out[0] = MODE_PROVE | MODE_NAME_OTHER;
	fz_seed("misnamed", out, n);
	out[0] = MODE_PROVE | MODE_PROOF_OTHER | MODE_NAME_OTHER;
	fz_seed("other-server", out, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* A small maximum, so that inputs of a few KiB reach the oversize path. */
	setenv("SPOKE_MAX_MSG", "64K", 1);
	spk_ident_actor(OTHER, "fuzz", 7);
	FZ_CHECK(spk_auth_init() == 0);
	fz_init("fuzz-handshake-server", seeds);
	loop = ev_loop_new(EVFLAG_AUTO);
	FZ_CHECK(loop);
	return 0;
}

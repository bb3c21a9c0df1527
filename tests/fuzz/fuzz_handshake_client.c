/* fuzz_handshake_client.c - the client's side of the handshake
 * (runtime/lib/sync_conn.c: spk_sync_open, as spoke_client_open and every actor
 * handle run it: HELLO in, AUTH out, AUTH_OK in), then the frames a peer
 * sends after it, received as the client receives replies.
 *
 * A server thread of this program, on a loopback port, plays the peer; the
 * client means to reach IDENT (a worker's identity).  Input: a mode byte,
 * then what the peer sends.  Mode bit 0 clear: the bytes are all the peer
 * says (a squatter or a stranger: any HELLO, any answer to our AUTH).  Set:
 * the peer greets with a HELLO (nonce: the input's first 32 bytes), reads
 * our AUTH (checking that it proves the token as the client, for IDENT and
 * both nonces) and answers with an AUTH_OK, then sends the rest as frames.
 * That AUTH_OK's proof is for IDENT, or with bit 1 for OTHER (a server of
 * the same job, but not the one meant: a relay to the hub); it names IDENT,
 * or with bit 2 OTHER, or with bit 3 nobody.  The peer then closes its
 * side.  Properties: spk_sync_open succeeds only when the peer proved the
 * token as IDENT and named no other server, and then always; every failure
 * comes back (no hang: the peer's end is seen); nothing leaks. */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "auth.h"
#include "sync_conn.h"
#include "clock.h"
#include "fuzz.h"
#include "net.h"

#define TOKEN "fuzz-token-0123456789abcdef"
#define OTHER SPK_IDENT_HUB

static int listen_fd = -1;
static char hub_addr[SPK_ADDR_MAX];
static char IDENT[SPK_IDENT_MAX]; /* actor:fuzz:7 */

enum {
	MODE_PROVE = 1,       /* the peer takes part in the handshake */
	MODE_PROOF_OTHER = 2, /* ... proving the token as OTHER */
	MODE_NAME_OTHER = 4,  /* ... its AUTH_OK naming OTHER */
	MODE_NAME_NONE = 8,   /* ... naming nobody (when not OTHER) */
};

struct job {
	const uint8_t *data;
	size_t size;
	unsigned mode;
	bool answered; /* an AUTH_OK went out */
	int stop;      /* readable: the client is done */
};

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_exact(int fd, uint8_t *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, buf, n, 0);

		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The peer's side of the handshake; 0 once AUTH_OK went out. */
static int prove(int fd, struct job *j)
{
	uint8_t hello[SPK_HDR_SIZE + SPK_NONCE_SIZE] = { 0 };
	uint8_t auth[SPK_HDR_SIZE + SPK_AUTH_MAX], ok[SPK_HDR_SIZE + SPK_AUTH_OK_MAX];
	const uint8_t *nonce_s = hello + SPK_HDR_SIZE;
	size_t n = j->size < SPK_NONCE_SIZE ? j->size : SPK_NONCE_SIZE;
	struct spk_auth_msg m;
	struct spk_hdr h;
	spoke_view v;
	spoke_buf b;

	spk_hdr_encode(hello, SPK_HELLO, 0, 0, SPK_NONCE_SIZE);
	memcpy(hello + SPK_HDR_SIZE, j->data, n);
	j->data += n;
	j->size -= n;
	if (write_all(fd, hello, sizeof(hello)) < 0 || read_exact(fd, auth, SPK_HDR_SIZE) < 0)
		return -1;
	/* The client's AUTH: its proof as the client, for IDENT, over both nonces. */
	FZ_CHECK(spk_hdr_decode(auth, SPK_AUTH_MAX, &h) == 0 && h.type == SPK_AUTH);
	if (read_exact(fd, auth + SPK_HDR_SIZE, h.len) < 0)
		return -1;
	spoke_view_init(&v, auth + SPK_HDR_SIZE, h.len);
	FZ_CHECK(spk_auth_unpack(&v, &m) == 0);
	FZ_CHECK(strcmp(m.ident, IDENT) == 0);
	FZ_CHECK(spk_auth_proof_ok(m.mac, TOKEN, SPK_ROLE_CLIENT, IDENT, nonce_s, m.nonce));
	FZ_CHECK(!spk_auth_proof_ok(m.mac, TOKEN, SPK_ROLE_CLIENT, OTHER, nonce_s, m.nonce));
	spk_auth_proof(m.mac, TOKEN, SPK_ROLE_SERVER, j->mode & MODE_PROOF_OTHER ? OTHER : IDENT,
		       nonce_s, m.nonce);
	snprintf(m.ident, sizeof(m.ident), "%s",
		 j->mode & MODE_NAME_OTHER ? OTHER : j->mode & MODE_NAME_NONE ? "" : IDENT);
	spoke_buf_init(&b, ok + SPK_HDR_SIZE, sizeof(ok) - SPK_HDR_SIZE);
	FZ_CHECK(spk_auth_ok_pack(&b, &m) == 0);
	spk_hdr_encode(ok, SPK_AUTH_OK, 0, 0, (uint32_t)b.len);
	if (write_all(fd, ok, SPK_HDR_SIZE + b.len) < 0)
		return -1;
	j->answered = true;
	return 0;
}

/* Plays the peer on every connection the client makes (it tries again
 * when a handshake is cut), each time the same, until it is done. */
static void *serve(void *arg)
{
	struct job *j = arg;
	uint8_t sink[4096];

	for (;;) {
		struct pollfd pfd[2] = { { .fd = listen_fd, .events = POLLIN },
					 { .fd = j->stop, .events = POLLIN } };
		struct job one = *j;
		int fd;

		if (poll(pfd, 2, 5000) < 1 || pfd[1].revents)
			return NULL;
		fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			return NULL;
		if (!(one.mode & MODE_PROVE) || prove(fd, &one) == 0)
			write_all(fd, one.data, one.size);
		j->answered |= one.answered;
		shutdown(fd, SHUT_WR);
		while (recv(fd, sink, sizeof(sink), 0) > 0) /* until the client closes */
			;
		close(fd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spk_sync_conn ch;
	struct job j;
	const uint8_t *p;
	struct spk_hdr h;
	pthread_t t;
	int64_t deadline;
	bool true_peer;
	int done[2], rc;

	if (size < 1)
		return 0;
	FZ_CHECK(pipe(done) == 0);
	j = (struct job){ .data = data + 1, .size = size - 1, .mode = data[0], .stop = done[0] };
	FZ_CHECK(pthread_create(&t, NULL, serve, &j) == 0);
	/* Every wait ends at the peer's end long before this. */
	deadline = spk_now_us() + 10 * 1000000;
	rc = spk_sync_open(&ch, hub_addr, TOKEN, IDENT, 0, deadline);
	if (rc == 0) {
		/* Frames after the handshake, as replies are received. */
		while (spk_sync_recv_hdr(&ch, &h, deadline) == 0 &&
		       spk_sync_recv_view(&ch, h.len, &p, deadline) == 0)
			;
		FZ_CHECK(ch.broken != 0);
		spk_sync_close(&ch);
	}
	FZ_CHECK(write(done[1], "", 1) == 1);
	pthread_join(t, NULL);
	close(done[0]);
	close(done[1]);
	/* It proved the token as the server we meant, and named no other. */
	true_peer = j.answered && !(j.mode & (MODE_PROOF_OTHER | MODE_NAME_OTHER));
	FZ_CHECK(rc < 0 || true_peer);
	FZ_CHECK(rc == 0 || !true_peer);
	FZ_CHECK(spk_now_us() < deadline);
	return 0;
}

static void seeds(void)
{
	struct spk_auth_msg m = { .ident = "" };
	uint8_t out[512];
	spoke_buf b;
	size_t n;

	/* A stranger's HELLO, then an AUTH_OK with a wrong proof, naming IDENT. */
	out[0] = 0;
	spk_hdr_encode(out + 1, SPK_HELLO, 0, 0, SPK_NONCE_SIZE);
	memset(out + 1 + SPK_HDR_SIZE, 3, SPK_NONCE_SIZE);
	n = 1 + SPK_HDR_SIZE + SPK_NONCE_SIZE;
	memset(m.mac, 4, SPK_MAC_SIZE);
	snprintf(m.ident, sizeof(m.ident), "%s", IDENT);
	spoke_buf_init(&b, out + n + SPK_HDR_SIZE, sizeof(out) - n - SPK_HDR_SIZE);
	spk_auth_ok_pack(&b, &m);
	spk_hdr_encode(out + n, SPK_AUTH_OK, 0, 0, (uint32_t)b.len);
	fz_seed("stranger", out, n + SPK_HDR_SIZE + b.len);
	/* A refusal: AUTH_OK with SPOKE_EAUTH, no proof, naming nobody. */
	memset(m.mac, 0, SPK_MAC_SIZE);
	m.ident[0] = '\0';
	spoke_buf_init(&b, out + n + SPK_HDR_SIZE, sizeof(out) - n - SPK_HDR_SIZE);
	spk_auth_ok_pack(&b, &m);
	spk_hdr_encode(out + n, SPK_AUTH_OK, 0, SPOKE_EAUTH, (uint32_t)b.len);
	fz_seed("refused", out, n + SPK_HDR_SIZE + b.len);
	/* A true peer, then two replies. */
	out[0] = MODE_PROVE;
	memset(out + 1, 9, SPK_NONCE_SIZE);
	n = 1 + SPK_NONCE_SIZE;
	spk_hdr_encode(out + n, SPK_REPLY, 1, 0, 4);
	memcpy(out + n + SPK_HDR_SIZE, "pong", 4);
	n += SPK_HDR_SIZE + 4;
	spk_hdr_encode(out + n, SPK_REPLY, 2, SPOKE_EINVAL, 3);
	memcpy(out + n + SPK_HDR_SIZE, "bad", 3);
	n += SPK_HDR_SIZE + 3;
	fz_seed("peer-replies", out, n);
	/* The same peer naming nobody in its AUTH_OK (still a true one). */
	out[0] = MODE_PROVE | MODE_NAME_NONE;
	fz_seed("peer-unnamed", out, n);
	/* A server of the job, but not the one meant: it proves the token as
	 * OTHER (a relay to the hub), naming IDENT or OTHER. */
	out[0] = MODE_PROVE | MODE_PROOF_OTHER;
	fz_seed("relay", out, n);
	out[0] = MODE_PROVE | MODE_PROOF_OTHER | MODE_NAME_OTHER;
	fz_seed("relay-named", out, n);
	/* The right proof, but an AUTH_OK naming OTHER. */
	out[0] = MODE_PROVE | MODE_NAME_OTHER;
	fz_seed("misnamed", out, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("SPOKE_MAX_MSG", "64K", 1);
	spk_ident_actor(IDENT, "fuzz", 7);
	fz_init("fuzz-handshake-client", seeds);
	listen_fd = spk_listen("127.0.0.1", 0, hub_addr, sizeof(hub_addr));
	FZ_CHECK(listen_fd >= 0);
	/* Blocking accept after poll(). */
	spk_set_nonblock(listen_fd, 0);
	return 0;
}

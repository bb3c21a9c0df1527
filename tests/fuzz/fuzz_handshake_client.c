/* fuzz_handshake_client.c - the client's side of the handshake
 * (runtime/chan.c: spk_chan_open, as spoke_client_open and every actor
 * handle run it: HELLO in, AUTH out, AUTH_OK in), then the frames a peer
 * sends after it, received as the client receives replies.
 *
 * A server thread of this program, on a loopback port, plays the peer.
 * Input: a mode byte, then what the peer sends.  Mode bit 0 clear: the
 * bytes are all the peer says (a squatter or a stranger: any HELLO, any
 * answer to our AUTH).  Set: the peer greets with a HELLO (nonce: the
 * input's first 32 bytes), reads our AUTH and answers with a correct
 * AUTH_OK, then sends the rest as frames.  The peer then closes its side.
 * Properties: spk_chan_open succeeds only when the peer proved the token;
 * every failure comes back (no hang: the peer's end is seen); nothing
 * leaks. */
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
#include "chan.h"
#include "clock.h"
#include "fuzz.h"
#include "net.h"

#define TOKEN "fuzz-token-0123456789abcdef"

static int listen_fd = -1;
static char hub_addr[SPK_ADDR_MAX];

struct job {
	const uint8_t *data;
	size_t size;
	bool prove;
	bool proved; /* a correct AUTH_OK was sent */
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

/* The peer's side of a proper handshake; 0 once AUTH_OK went out. */
static int prove(int fd, struct job *j)
{
	uint8_t hello[SPK_HDR_SIZE + SPK_NONCE_SIZE] = { 0 };
	uint8_t auth[SPK_HDR_SIZE + SPK_MAC_SIZE + SPK_NONCE_SIZE];
	uint8_t ok[SPK_HDR_SIZE + SPK_MAC_SIZE];
	size_t n = j->size < SPK_NONCE_SIZE ? j->size : SPK_NONCE_SIZE;

	spk_hdr_encode(hello, SPK_HELLO, 0, 0, SPK_NONCE_SIZE);
	memcpy(hello + SPK_HDR_SIZE, j->data, n);
	j->data += n;
	j->size -= n;
	if (write_all(fd, hello, sizeof(hello)) < 0 || read_exact(fd, auth, sizeof(auth)) < 0)
		return -1;
	FZ_CHECK(spk_auth_verify(auth + SPK_HDR_SIZE, TOKEN, SPK_LABEL_CLIENT,
				 hello + SPK_HDR_SIZE));
	spk_hdr_encode(ok, SPK_AUTH_OK, 0, 0, SPK_MAC_SIZE);
	spk_auth_mac(ok + SPK_HDR_SIZE, TOKEN, SPK_LABEL_SERVER,
		     auth + SPK_HDR_SIZE + SPK_MAC_SIZE);
	if (write_all(fd, ok, sizeof(ok)) < 0)
		return -1;
	j->proved = true;
	return 0;
}

static void *serve(void *arg)
{
	struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
	struct job *j = arg;
	uint8_t sink[4096];
	int fd;

	if (poll(&pfd, 1, 5000) != 1)
		return NULL;
	fd = accept(listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (!j->prove || prove(fd, j) == 0)
		write_all(fd, j->data, j->size);
	shutdown(fd, SHUT_WR);
	while (recv(fd, sink, sizeof(sink), 0) > 0) /* until the client closes */
		;
	close(fd);
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spk_chan ch;
	struct job j;
	const uint8_t *p;
	struct spk_hdr h;
	pthread_t t;
	int64_t deadline;
	int rc;

	if (size < 1)
		return 0;
	j = (struct job){ .data = data + 1, .size = size - 1, .prove = data[0] & 1 };
	FZ_CHECK(pthread_create(&t, NULL, serve, &j) == 0);
	/* Every wait ends at the peer's end long before this. */
	deadline = spk_now_us() + 10 * 1000000;
	rc = spk_chan_open(&ch, hub_addr, TOKEN, 0, deadline);
	if (rc == 0) {
		/* Frames after the handshake, as replies are received. */
		while (spk_chan_recv_hdr(&ch, &h, deadline) == 0 &&
		       spk_chan_recv_view(&ch, h.len, &p, deadline) == 0)
			;
		FZ_CHECK(ch.broken != 0);
		spk_chan_close(&ch);
	}
	pthread_join(t, NULL);
	FZ_CHECK(rc < 0 || j.proved);
	FZ_CHECK(spk_now_us() < deadline);
	return 0;
}

static void seeds(void)
{
	uint8_t out[512];
	size_t n;

	/* A stranger's HELLO, then an AUTH_OK with a wrong proof. */
	out[0] = 0;
	spk_hdr_encode(out + 1, SPK_HELLO, 0, 0, SPK_NONCE_SIZE);
	memset(out + 1 + SPK_HDR_SIZE, 3, SPK_NONCE_SIZE);
	n = 1 + SPK_HDR_SIZE + SPK_NONCE_SIZE;
	spk_hdr_encode(out + n, SPK_AUTH_OK, 0, 0, SPK_MAC_SIZE);
	memset(out + n + SPK_HDR_SIZE, 4, SPK_MAC_SIZE);
	fz_seed("stranger", out, n + SPK_HDR_SIZE + SPK_MAC_SIZE);
	/* A refusal: AUTH_OK with SPOKE_EAUTH. */
	spk_hdr_encode(out + n, SPK_AUTH_OK, 0, SPOKE_EAUTH, 0);
	fz_seed("refused", out, n + SPK_HDR_SIZE);
	/* A true peer, then two replies. */
	out[0] = 1;
	memset(out + 1, 9, SPK_NONCE_SIZE);
	n = 1 + SPK_NONCE_SIZE;
	spk_hdr_encode(out + n, SPK_REPLY, 1, 0, 4);
	memcpy(out + n + SPK_HDR_SIZE, "pong", 4);
	n += SPK_HDR_SIZE + 4;
	spk_hdr_encode(out + n, SPK_REPLY, 2, SPOKE_EINVAL, 3);
	memcpy(out + n + SPK_HDR_SIZE, "bad", 3);
	n += SPK_HDR_SIZE + 3;
	fz_seed("peer-replies", out, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("SPOKE_MAX_MSG", "64K", 1);
	fz_init("fuzz-handshake-client", seeds);
	listen_fd = spk_listen("127.0.0.1", 0, hub_addr, sizeof(hub_addr));
	FZ_CHECK(listen_fd >= 0);
	/* Blocking accept after poll(). */
	spk_set_nonblock(listen_fd, 0);
	return 0;
}

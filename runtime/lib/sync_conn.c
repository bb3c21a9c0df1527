/* sync_conn.c - blocking authenticated frame channel (client side). */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "auth.h"
#include "sync_conn.h"
#include "clock.h"
#include "errmsg.h"

#define RBUF_INITIAL (64u << 10)
#define WBUF_INITIAL (64u << 10)

static int broken(struct spk_sync_conn *ch, int rc)
{
	if (!ch->broken)
		ch->broken = rc;
	return rc;
}

static int wait_fd(struct spk_sync_conn *ch, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = ch->fd, .events = events };
	int rc;

	for (;;) {
		rc = poll(&pfd, 1, spk_ms_left(deadline));
		if (rc > 0)
			return 0;
		if (rc == 0) /* not fatal by itself: see spk_sync_recv_hdr */
			return spk_fail(SPOKE_ETIMEDOUT, "no answer from %s in time", ch->peer);
		if (errno != EINTR)
			return broken(ch, -errno);
	}
}

/* Receives into buf[0..cap) until at least need bytes came (*got says how
 * many did, also on error): spins on the socket for poll_us, then sleeps in
 * poll() until deadline.  A timeout breaks nothing; a closed or failed
 * connection breaks the channel. */
static int recv_into(struct spk_sync_conn *ch, uint8_t *buf, size_t cap, size_t need,
		     int64_t deadline, size_t *got)
{
	int64_t spin_end = ch->poll_us > 0 ? spk_now_us() + ch->poll_us : 0;
	ssize_t n;
	int rc;

	*got = 0;
	while (*got < need) {
		n = recv(ch->fd, buf + *got, cap - *got, MSG_DONTWAIT);
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n == 0)
			return broken(ch, spk_fail(SPOKE_EDEAD, "%s closed the connection", ch->peer));
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return broken(ch, spk_fail(SPOKE_EDEAD, "connection to %s: %s", ch->peer,
						strerror(errno)));
		if (spin_end && spk_now_us() < spin_end)
			continue;
		rc = wait_fd(ch, POLLIN, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Makes sure n unconsumed bytes are in rbuf. */
static int fill(struct spk_sync_conn *ch, size_t n, int64_t deadline)
{
	size_t got;
	int rc;

	if (ch->broken)
		return ch->broken;
	if (ch->rlen - ch->rpos >= n)
		return 0;
	if (ch->rcap - ch->rpos < n) {
		/* Compact, then grow if the frame still does not fit. */
		memmove(ch->rbuf, ch->rbuf + ch->rpos, ch->rlen - ch->rpos);
		ch->rlen -= ch->rpos;
		ch->rpos = 0;
		if (ch->rcap < n) {
			uint8_t *nb = realloc(ch->rbuf, n);

			if (!nb)
				return broken(ch, -ENOMEM);
			ch->rbuf = nb;
			ch->rcap = n;
		}
	}
	rc = recv_into(ch, ch->rbuf + ch->rlen, ch->rcap - ch->rlen, n - (ch->rlen - ch->rpos),
		       deadline, &got);
	ch->rlen += got;
	return rc;
}

/* Waits until ch can send again; meanwhile, with a drain hook, receives the
 * replies that come in (see sync_conn.h). */
static int wait_send(struct spk_sync_conn *ch, int64_t deadline)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLOUT | POLLIN };
	int rc;

	if (!ch->drain)
		return wait_fd(ch, POLLOUT, deadline);
	for (;;) {
		/* A reply already begun in rbuf shows no more in poll(). */
		if (ch->rlen > ch->rpos) {
			rc = ch->drain(ch->drain_arg, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = poll(&pfd, 1, spk_ms_left(deadline));
		if (rc == 0)
			return spk_fail(SPOKE_ETIMEDOUT, "no room to send to %s in time", ch->peer);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return broken(ch, -errno);
		if (pfd.revents & ~POLLIN) /* room, or an error that sendmsg reports */
			return 0;
		rc = ch->drain(ch->drain_arg, deadline);
		if (rc < 0)
			return rc;
	}
}

static int send_iov(struct spk_sync_conn *ch, struct iovec *iov, int cnt, int64_t deadline)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
	ssize_t n;
	int rc;

	if (ch->broken)
		return ch->broken;
	while (mh.msg_iovlen > 0) {
		n = sendmsg(ch->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return broken(ch, spk_fail(SPOKE_EDEAD, "connection to %s: %s", ch->peer,
							strerror(errno)));
			rc = wait_send(ch, deadline);
			if (rc < 0) /* part of a frame may have gone */
				return broken(ch, rc);
			continue;
		}
		while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov->iov_len) {
			n -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int grow_wbuf(spoke_buf *b, size_t need)
{
	struct spk_sync_conn *ch = b->owner;
	size_t cap = ch->wcap;
	uint8_t *nb;

	if (need > ch->max_payload)
		return SPOKE_ETOOBIG;
	while (cap - SPK_HDR_SIZE < need)
		cap *= 2;
	nb = realloc(ch->wbuf, cap);
	if (!nb)
		return -ENOMEM;
	ch->wbuf = nb;
	ch->wcap = cap;
	b->data = nb + SPK_HDR_SIZE;
	b->cap = cap - SPK_HDR_SIZE;
	return 0;
}

void spk_sync_begin(struct spk_sync_conn *ch, spoke_buf *b)
{
	spoke_buf_init(b, ch->wbuf + SPK_HDR_SIZE, ch->wcap - SPK_HDR_SIZE);
	b->grow = grow_wbuf;
	b->owner = ch;
}

int spk_sync_send_buf(struct spk_sync_conn *ch, spoke_buf *b, uint8_t type, uint64_t id, int32_t aux,
		      int64_t deadline)
{
	struct iovec iov;

	if (b->err)
		return b->err;
	if (b->len > ch->max_payload) /* packed into room a larger frame grew */
		return spk_fail(SPOKE_ETOOBIG, "request of %zu bytes exceeds the maximum of %u",
				b->len, ch->max_payload);
	spk_hdr_encode(ch->wbuf, type, id, aux, (uint32_t)b->len);
	if (type == SPK_CALL)
		spk_hdr_set_ttl(ch->wbuf, ch->call_ttl_ms);
	iov = (struct iovec){ ch->wbuf, SPK_HDR_SIZE + b->len };
	return send_iov(ch, &iov, 1, deadline);
}

int spk_sync_send(struct spk_sync_conn *ch, uint8_t type, uint64_t id, int32_t aux, const void *p,
		  size_t n, int64_t deadline)
{
	return spk_sync_send_flags(ch, type, 0, id, aux, p, n, deadline);
}

int spk_sync_send_flags(struct spk_sync_conn *ch, uint8_t type, uint16_t flags, uint64_t id,
			int32_t aux, const void *p, size_t n, int64_t deadline)
{
	uint8_t hdr[SPK_HDR_SIZE];
	struct iovec iov[2] = { { hdr, SPK_HDR_SIZE }, { (void *)p, n } };

	if (n > ch->max_payload)
		return spk_fail(SPOKE_ETOOBIG, "request of %zu bytes exceeds the maximum of %u",
				n, ch->max_payload);
	spk_hdr_encode(hdr, type, id, aux, (uint32_t)n);
	if (type == SPK_CALL)
		spk_hdr_set_ttl(hdr, ch->call_ttl_ms);
	spk_hdr_set_flags(hdr, flags);
	return send_iov(ch, iov, n ? 2 : 1, deadline);
}

int spk_sync_queue(struct spk_sync_conn *ch, size_t *queued, uint8_t type, uint64_t id, int32_t aux,
		   const void *p, size_t n)
{
	size_t need = *queued + SPK_HDR_SIZE + n;

	if (ch->broken)
		return ch->broken;
	if (need > ch->wcap) {
		size_t cap = ch->wcap;
		uint8_t *nb;

		while (cap < need)
			cap *= 2;
		nb = realloc(ch->wbuf, cap);
		if (!nb)
			return -ENOMEM;
		ch->wbuf = nb;
		ch->wcap = cap;
	}
	spk_hdr_encode(ch->wbuf + *queued, type, id, aux, (uint32_t)n);
	if (type == SPK_CALL)
		spk_hdr_set_ttl(ch->wbuf + *queued, ch->call_ttl_ms);
	if (n)
		memcpy(ch->wbuf + *queued + SPK_HDR_SIZE, p, n);
	*queued = need;
	return 0;
}

int spk_sync_flush(struct spk_sync_conn *ch, size_t *queued, int64_t deadline)
{
	struct iovec iov = { ch->wbuf, *queued };
	int rc;

	if (*queued == 0)
		return 0;
	rc = send_iov(ch, &iov, 1, deadline);
	*queued = 0;
	return rc < 0 ? broken(ch, rc) : 0;
}

int spk_sync_recv_hdr(struct spk_sync_conn *ch, struct spk_hdr *h, int64_t deadline)
{
	int rc = fill(ch, SPK_HDR_SIZE, deadline);

	if (rc < 0)
		return rc;
	rc = spk_hdr_decode(ch->rbuf + ch->rpos, ch->max_payload, h);
	if (rc < 0)
		return broken(ch, spk_fail(rc, "bad frame from %s: %s", ch->peer, spoke_strerror(rc)));
	ch->rpos += SPK_HDR_SIZE;
	return 0;
}

int spk_sync_recv_view(struct spk_sync_conn *ch, size_t n, const uint8_t **p, int64_t deadline)
{
	int rc = fill(ch, n, deadline);

	if (rc < 0)
		return broken(ch, rc); /* the stream is now mid-frame */
	*p = ch->rbuf + ch->rpos;
	ch->rpos += n;
	return 0;
}

int spk_sync_recv_copy(struct spk_sync_conn *ch, void *dst, size_t n, int64_t deadline)
{
	size_t have = ch->rlen - ch->rpos, got;
	int rc;

	if (ch->broken)
		return ch->broken;
	if (have >= n || n <= RBUF_INITIAL) {
		const uint8_t *p;

		rc = spk_sync_recv_view(ch, n, &p, deadline);
		if (rc == 0 && n)
			memcpy(dst, p, n);
		return rc;
	}
	/* A large payload goes straight from the socket into dst. */
	memcpy(dst, ch->rbuf + ch->rpos, have);
	ch->rpos = ch->rlen = 0;
	rc = recv_into(ch, (uint8_t *)dst + have, n - have, n - have, deadline, &got);
	return rc < 0 ? broken(ch, rc) : 0;
}

int spk_sync_skip(struct spk_sync_conn *ch, size_t n, int64_t deadline)
{
	while (n > 0) {
		size_t step = n < RBUF_INITIAL ? n : RBUF_INITIAL;
		const uint8_t *p;
		int rc = spk_sync_recv_view(ch, step, &p, deadline);

		if (rc < 0)
			return rc;
		n -= step;
	}
	return 0;
}

/* The server's AUTH_OK: its status, and its proof over what we sent. */
static int check_auth_ok(struct spk_sync_conn *ch, const char *token, const char *ident,
			 const uint8_t nonce_s[SPK_NONCE_SIZE], const uint8_t nonce_c[SPK_NONCE_SIZE],
			 int64_t deadline)
{
	struct spk_auth_msg m;
	const uint8_t *p;
	struct spk_hdr h;
	spoke_view v;
	int rc;

	rc = spk_sync_recv_hdr(ch, &h, deadline);
	if (rc < 0)
		return rc;
	if (h.type != SPK_AUTH_OK)
		return broken(ch, spk_fail(SPOKE_EPROTO, "%s answered AUTH with %s", ch->peer,
					spk_type_name(h.type)));
	if (h.len > SPK_AUTH_OK_MAX)
		return broken(ch, spk_fail(SPOKE_EPROTO, "%s sent a malformed AUTH_OK", ch->peer));
	rc = spk_sync_recv_view(ch, h.len, &p, deadline);
	if (rc < 0)
		return rc;
	spoke_view_init(&v, p, h.len);
	if (spk_auth_ok_unpack(&v, &m) < 0)
		return broken(ch, spk_fail(SPOKE_EPROTO, "%s sent a malformed AUTH_OK", ch->peer));
	if (m.ident[0] && strcmp(m.ident, ident) != 0)
		return broken(ch, spk_fail(SPOKE_EAUTH, "%s answered as %s, expected %s", ch->peer,
					m.ident, ident));
	if (h.aux != 0)
		return broken(ch, spk_fail(SPOKE_EAUTH, "%s refused our job token", ch->peer));
	if (!spk_auth_proof_ok(m.mac, token, SPK_ROLE_SERVER, ident, nonce_s, nonce_c))
		return broken(ch, spk_fail(SPOKE_EAUTH, "%s does not prove the job token as %s",
					ch->peer, ident));
	return 0;
}

static int handshake(struct spk_sync_conn *ch, const char *token, const char *ident,
		     int64_t deadline)
{
	uint8_t nonce_s[SPK_NONCE_SIZE];
	struct spk_auth_msg m;
	const uint8_t *p;
	struct spk_hdr h;
	spoke_buf b;
	int rc;

	if (strlen(ident) >= SPK_IDENT_MAX)
		return spk_fail(SPOKE_EINVAL, "server identity %.40s... is too long", ident);
	rc = spk_sync_recv_hdr(ch, &h, deadline);
	if (rc < 0)
		return rc;
	if (h.type != SPK_HELLO || h.len != SPK_NONCE_SIZE)
		return broken(ch, spk_fail(SPOKE_EPROTO, "%s did not greet with HELLO", ch->peer));
	rc = spk_sync_recv_view(ch, SPK_NONCE_SIZE, &p, deadline);
	if (rc < 0)
		return rc;
	memcpy(nonce_s, p, sizeof(nonce_s));
	spk_random(m.nonce, sizeof(m.nonce));
	snprintf(m.ident, sizeof(m.ident), "%s", ident);
	spk_auth_proof(m.mac, token, SPK_ROLE_CLIENT, ident, nonce_s, m.nonce);
	spk_sync_begin(ch, &b);
	spk_auth_pack(&b, &m);
	rc = spk_sync_send_buf(ch, &b, SPK_AUTH, 0, 0, deadline);
	if (rc < 0)
		return rc;
	return check_auth_ok(ch, token, ident, nonce_s, m.nonce, deadline);
}

int spk_sync_break(struct spk_sync_conn *ch, int rc)
{
	return broken(ch, rc);
}

int spk_sync_attach(struct spk_sync_conn *ch, int fd, const char *peer, int poll_us)
{
	memset(ch, 0, sizeof(*ch));
	ch->fd = fd;
	snprintf(ch->peer, sizeof(ch->peer), "%s", peer);
	ch->max_payload = spk_max_payload();
	ch->poll_us = poll_us;
	ch->rbuf = malloc(RBUF_INITIAL);
	ch->wbuf = malloc(WBUF_INITIAL);
	if (!ch->rbuf || !ch->wbuf) {
		free(ch->rbuf);
		free(ch->wbuf);
		ch->rbuf = ch->wbuf = NULL;
		return -ENOMEM;
	}
	ch->rcap = RBUF_INITIAL;
	ch->wcap = WBUF_INITIAL;
	return 0;
}

/* One connect and handshake; *cut says the handshake failed after the
 * connect. */
static int open_once(struct spk_sync_conn *ch, const char *hostport, const char *token,
		     const char *ident, int poll_us, int64_t deadline, bool *cut)
{
	int rc;

	*cut = false;
	rc = spk_sync_attach(ch, -1, hostport, poll_us);
	if (rc < 0)
		return rc;
	rc = spk_connect(hostport, spk_ms_left(deadline)); /* which says why it failed */
	if (rc < 0)
		goto out_free;
	ch->fd = rc;
	rc = handshake(ch, token, ident, deadline);
	if (rc < 0)
		goto out_close;
	return 0;
out_close:
	*cut = true;
	close(ch->fd);
	ch->fd = -1;
out_free:
	free(ch->rbuf);
	free(ch->wbuf);
	ch->rbuf = ch->wbuf = NULL;
	return rc;
}

/* A live server may still close a connection before its handshake ends: a
 * burst from one address past its cap of waiting handshakes closes the
 * oldest waiting one (loop_conn.h), which is what 64 threads of one client
 * opening their connections at once on a loaded node meet.  A handshake cut
 * that way (SPOKE_EDEAD) is tried again on a new connection, a few times
 * within the deadline; a refused connect or a failed proof is not. */
#define OPEN_TRIES 4
#define OPEN_BACKOFF_US 2000

int spk_sync_open(struct spk_sync_conn *ch, const char *hostport, const char *token,
		  const char *ident, int poll_us, int64_t deadline)
{
	int64_t pause;
	uint8_t jitter;
	bool cut;
	int rc;

	rc = spk_auth_init();
	for (int tries = 1; rc == 0; tries++) {
		rc = open_once(ch, hostport, token, ident, poll_us, deadline, &cut);
		if (rc != SPOKE_EDEAD || !cut || tries >= OPEN_TRIES)
			break;
		spk_random(&jitter, 1);
		pause = (int64_t)OPEN_BACKOFF_US * tries + jitter * 8;
		if (spk_now_us() + pause >= deadline)
			break;
		usleep((useconds_t)pause);
		rc = 0;
	}
	return rc;
}

void spk_sync_close(struct spk_sync_conn *ch)
{
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
	free(ch->rbuf);
	free(ch->wbuf);
	ch->rbuf = ch->wbuf = NULL;
}

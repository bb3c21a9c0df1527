/* loop_conn.c - framed, authenticated connections on a libev loop. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "loop_conn.h"
#include "log.h"

#define IN_INITIAL (64u << 10)
#define OUT_INITIAL (64u << 10)
#define PREAUTH_BUF 256u /* each buffer of a connection before its handshake */
#define OUT_HIGH_WATER (8u << 20) /* stop reading while this much waits to be sent */

static uint64_t next_serial = 1;

/* The connections waiting for their handshake, oldest first. */
static struct {
	struct spk_loop_conn *head, *tail;
	unsigned n;
} waiting;

static void wait_unlink(struct spk_loop_conn *c)
{
	if (!c->wait_prev && waiting.head != c)
		return; /* not in the list */
	if (c->wait_prev)
		c->wait_prev->wait_next = c->wait_next;
	else
		waiting.head = c->wait_next;
	if (c->wait_next)
		c->wait_next->wait_prev = c->wait_prev;
	else
		waiting.tail = c->wait_prev;
	c->wait_prev = c->wait_next = NULL;
	waiting.n--;
}

static unsigned waiting_max(void)
{
	long lim = spk_fd_limit();

	if (lim > 0 && lim / 4 < SPK_PREAUTH_MAX)
		return lim / 4 > 0 ? (unsigned)(lim / 4) : 1;
	return SPK_PREAUTH_MAX;
}

/* Makes room for c among the connections that wait for their handshake
 * (closing the oldest of its address, or the oldest of all), then adds it. */
static void wait_admit(struct spk_loop_conn *c)
{
	struct spk_loop_conn *oldest_same = NULL;
	unsigned same = 0;

	for (struct spk_loop_conn *w = waiting.head; w; w = w->wait_next)
		if (w->peer_host_len == c->peer_host_len &&
		    !memcmp(w->peer, c->peer, c->peer_host_len) && !same++)
			oldest_same = w;
	if (same >= SPK_PREAUTH_PER_HOST) {
		spk_warn("closed connection from %s: no handshake yet, and %u from its address "
			 "wait for theirs", oldest_same->peer, same);
		spk_loop_close(oldest_same, -ECONNABORTED);
	} else if (waiting.n >= waiting_max()) {
		spk_warn("closed connection from %s: no handshake yet, and %u connections wait "
			 "for theirs", waiting.head->peer, waiting.n);
		spk_loop_close(waiting.head, -ECONNABORTED);
	}
	c->wait_prev = waiting.tail;
	if (waiting.tail)
		waiting.tail->wait_next = c;
	else
		waiting.head = c;
	waiting.tail = c;
	waiting.n++;
}

/* The handshake is done: full-size buffers (a failed grow leaves the small
 * ones, which grow as needed). */
static void wait_done(struct spk_loop_conn *c)
{
	uint8_t *nb;

	wait_unlink(c);
	if (c->out_cap < OUT_INITIAL && (nb = realloc(c->out, OUT_INITIAL))) {
		c->out = nb;
		c->out_cap = OUT_INITIAL;
	}
}

static void finalize(struct spk_loop_conn *c)
{
	int reason = c->closing == 1 ? 0 : c->closing;

	if (c->finalized)
		return;
	c->finalized = true;
	ev_io_stop(c->loop, &c->rio);
	ev_io_stop(c->loop, &c->wio);
	ev_timer_stop(c->loop, &c->auth_w);
	wait_unlink(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->in_cap = c->in_len = c->out_cap = c->out_len = c->out_sent = 0;
	if (c->on_close)
		c->on_close(c, reason);
}

/* An error the owner did not ask for: close from the loop, never from under
 * the owner's feet in the middle of one of its calls. */
static void defer_close(struct spk_loop_conn *c, int reason)
{
	if (c->closing)
		return;
	c->closing = reason;
	if (c->dispatching)
		return;
	if (!ev_is_active(&c->rio))
		ev_io_start(c->loop, &c->rio);
	ev_feed_event(c->loop, &c->rio, EV_READ);
}

void spk_loop_close(struct spk_loop_conn *c, int reason)
{
	if (c->finalized)
		return;
	if (!c->closing)
		c->closing = reason ? reason : 1;
	if (!c->dispatching)
		finalize(c); /* also when a deferred close was pending */
}

static int grow_out(spoke_buf *b, size_t need)
{
	struct spk_loop_conn *c = b->owner;
	size_t want = c->out_len + SPK_HDR_SIZE + need, cap = c->out_cap;
	uint8_t *nb;

	if (need > c->max_payload)
		return SPOKE_ETOOBIG;
	while (cap < want)
		cap *= 2;
	nb = realloc(c->out, cap);
	if (!nb)
		return -ENOMEM;
	c->out = nb;
	c->out_cap = cap;
	b->data = nb + c->out_len + SPK_HDR_SIZE;
	b->cap = cap - c->out_len - SPK_HDR_SIZE;
	return 0;
}

void spk_loop_begin(struct spk_loop_conn *c, spoke_buf *b)
{
	if (!c->out) { /* closed */
		spoke_buf_init(b, NULL, 0);
		b->err = SPOKE_EDEAD;
		return;
	}
	if (c->out_sent == c->out_len)
		c->out_sent = c->out_len = 0;
	if (c->out_cap - c->out_len < SPK_HDR_SIZE) {
		spoke_buf_init(b, NULL, 0);
		b->owner = c;
		b->grow = grow_out;
		if (grow_out(b, 0) < 0)
			b->err = -ENOMEM;
		return;
	}
	spoke_buf_init(b, c->out + c->out_len + SPK_HDR_SIZE, c->out_cap - c->out_len - SPK_HDR_SIZE);
	b->grow = grow_out;
	b->owner = c;
}

int spk_loop_finish(struct spk_loop_conn *c, spoke_buf *b, uint8_t type, uint64_t id, int32_t aux)
{
	if (!c->out)
		return SPOKE_EDEAD;
	if (c->closing && c->closing != 1)
		return c->closing;
	if (b->err) {
		if (type == SPK_REPLY)
			return spk_loop_reply_error(c, id, b->err, "reply could not be packed: %s",
						      spoke_strerror(b->err));
		return b->err;
	}
	spk_hdr_encode(c->out + c->out_len, type, id, aux, (uint32_t)b->len);
	c->out_len += SPK_HDR_SIZE + b->len;
	if (!c->dispatching)
		spk_loop_flush(c);
	return 0;
}

int spk_loop_send(struct spk_loop_conn *c, uint8_t type, uint64_t id, int32_t aux, const void *p,
		    size_t n)
{
	spoke_buf b;

	spk_loop_begin(c, &b);
	spoke_buf_put_raw(&b, p, n);
	return spk_loop_finish(c, &b, type, id, aux);
}

int spk_loop_reply_error(struct spk_loop_conn *c, uint64_t id, int status, const char *fmt, ...)
{
	char msg[SPK_REPLY_ERROR_MAX];
	spoke_buf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spk_loop_begin(c, &b);
	spk_reply_error_pack(&b, status, 0, msg);
	return spk_loop_finish(c, &b, SPK_REPLY, id, status);
}

static bool frame_waiting(const struct spk_loop_conn *c);

void spk_loop_flush(struct spk_loop_conn *c)
{
	ssize_t n;

	while (c->out_sent < c->out_len) {
		n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		spk_debug("connection %s: send: %s", c->peer, strerror(errno));
		defer_close(c, SPOKE_EDEAD);
		return;
	}
	if (c->out_sent == c->out_len) {
		c->out_sent = c->out_len = 0;
		ev_io_stop(c->loop, &c->wio);
		if (!ev_is_active(&c->rio) && !c->closing)
			ev_io_start(c->loop, &c->rio);
	} else {
		ev_io_start(c->loop, &c->wio);
		if (c->out_len - c->out_sent > OUT_HIGH_WATER) {
			ev_io_stop(c->loop, &c->rio); /* backpressure: the peer must read first */
			return;
		}
	}
	/* Requests read but left waiting (dispatch): on with them. */
	if (ev_is_active(&c->rio) && !c->held && frame_waiting(c))
		ev_feed_event(c->loop, &c->rio, EV_READ);
}

void spk_loop_hold(struct spk_loop_conn *c)
{
	c->held = true;
}

void spk_loop_release(struct spk_loop_conn *c)
{
	if (!c->held)
		return;
	c->held = false;
	if (c->closing || c->finalized)
		return;
	if (!ev_is_active(&c->rio))
		ev_io_start(c->loop, &c->rio);
	if (frame_waiting(c))
		ev_feed_event(c->loop, &c->rio, EV_READ);
}

/* Answers AUTH with a refusal (naming this server only to a peer that
 * proved the token) and closes. */
static void refuse_auth(struct spk_loop_conn *c, const char *ident)
{
	struct spk_auth_msg m = { .ident = "" };
	spoke_buf b;

	if (ident)
		snprintf(m.ident, sizeof(m.ident), "%s", ident);
	spk_loop_begin(c, &b);
	spk_auth_ok_pack(&b, &m);
	spk_loop_finish(c, &b, SPK_AUTH_OK, 0, SPOKE_EAUTH);
	spk_loop_flush(c);
	spk_loop_close(c, SPOKE_EAUTH);
}

static void handle_auth(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *v)
{
	struct spk_auth_msg m;
	spoke_buf b;

	if (h->type != SPK_AUTH || spk_auth_unpack(v, &m) < 0) {
		spk_warn("refused connection from %s: %s %s before the handshake", c->peer,
			 h->type == SPK_AUTH ? "malformed" : "a", spk_type_name(h->type));
		spk_loop_close(c, SPOKE_EPROTO);
		return;
	}
	if (!spk_auth_proof_ok(m.mac, c->token, SPK_ROLE_CLIENT, m.ident, c->nonce, m.nonce)) {
		spk_warn("refused connection from %s: wrong job token", c->peer);
		refuse_auth(c, NULL);
		return;
	}
	/* The proof is good, but for the server it names: a proof relayed
	 * from a client that meant another server is refused here. */
	if (strcmp(m.ident, c->ident) != 0) {
		spk_warn("refused connection from %s: it means to reach %s, this is %s", c->peer,
			 m.ident, c->ident);
		refuse_auth(c, c->ident);
		return;
	}
	snprintf(m.ident, sizeof(m.ident), "%s", c->ident);
	spk_auth_proof(m.mac, c->token, SPK_ROLE_SERVER, c->ident, c->nonce, m.nonce);
	spk_loop_begin(c, &b);
	spk_auth_ok_pack(&b, &m);
	spk_loop_finish(c, &b, SPK_AUTH_OK, 0, 0);
	c->authed = true;
	ev_timer_stop(c->loop, &c->auth_w);
}

/* The largest frame a peer may send: only the AUTH frame before the handshake. */
static uint32_t frame_max(const struct spk_loop_conn *c)
{
	return c->authed ? c->max_payload : SPK_AUTH_MAX;
}

/* Whether a whole frame (or a bad one) waits in the input buffer. */
static bool frame_waiting(const struct spk_loop_conn *c)
{
	struct spk_hdr h;

	return c->in_len && !c->skip && spk_frame_parse(c->in, c->in_len, frame_max(c), &h) != 0;
}

static void auth_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct spk_loop_conn *c = t->data;

	(void)loop;
	(void)revents;
	spk_warn("closed connection from %s: no handshake within %.0f s", c->peer,
		 SPK_AUTH_TIMEOUT_S);
	spk_loop_close(c, SPOKE_ETIMEDOUT);
}

/* Answers a frame whose payload is over the maximum (its header is valid),
 * and drops the payload as it comes; 0, or -1 if it cannot be answered. */
static int refuse_oversize(struct spk_loop_conn *c, const struct spk_hdr *h)
{
	if (!c->authed || h->type == SPK_REPLY)
		return -1;
	spk_info("refused a %s of %u bytes from %s: over the maximum of %u", spk_type_name(h->type),
		 h->len, c->peer, c->max_payload);
	spk_loop_reply_error(c, h->id, SPOKE_ETOOBIG, SPK_OVERSIZE_FMT, h->len,
			       c->role ? c->role : "process", c->max_payload);
	c->skip = h->len;
	return 0;
}

/* Handles every complete frame in the input buffer; returns the bytes used. */
static size_t dispatch(struct spk_loop_conn *c)
{
	size_t pos = 0, k;
	struct spk_hdr h;
	spoke_view v;
	long r;

	while (!c->closing && !c->held) {
		if (c->skip) {
			k = c->in_len - pos < c->skip ? c->in_len - pos : c->skip;
			pos += k;
			c->skip -= k;
			if (c->skip)
				break;
		}
		r = spk_frame_parse(c->in + pos, c->in_len - pos, frame_max(c), &h);
		if (r == 0)
			break;
		if (r == SPOKE_ETOOBIG && refuse_oversize(c, &h) == 0) {
			pos += SPK_HDR_SIZE;
			continue;
		}
		if (r < 0) {
			if (r == SPOKE_EVERSION)
				spk_warn("closed connection from %s: it speaks protocol version %u",
					 c->peer, c->in[pos + 4]);
			else
				spk_warn("closed connection from %s: %s", c->peer,
					 spoke_strerror((int)r));
			spk_loop_close(c, (int)r);
			break;
		}
		spoke_view_init(&v, c->in + pos + SPK_HDR_SIZE, h.len);
		pos += (size_t)r;
		if (!c->authed) {
			handle_auth(c, &h, &v);
			if (c->authed)
				wait_done(c);
		} else
			c->on_frame(c, &h, &v);
		/* A peer that does not read its answers: the rest of its
		 * requests wait, read, until they have gone out. */
		if (c->out_len - c->out_sent > OUT_HIGH_WATER)
			break;
	}
	return pos;
}

/* Room for the frame that starts the input buffer (its header says how big). */
static int make_room(struct spk_loop_conn *c)
{
	size_t want = c->in_cap;
	struct spk_hdr h;
	uint8_t *nb;

	if (c->in_len >= SPK_HDR_SIZE && spk_hdr_decode(c->in, frame_max(c), &h) == 0)
		want = SPK_HDR_SIZE + (size_t)h.len;
	if (c->authed && want < IN_INITIAL)
		want = IN_INITIAL; /* the buffer of the handshake was a small one */
	if (want <= c->in_cap && c->in_len < c->in_cap)
		return 0;
	if (want <= c->in_cap)
		want = c->in_cap * 2;
	nb = realloc(c->in, want);
	if (!nb)
		return -ENOMEM;
	c->in = nb;
	c->in_cap = want;
	return 0;
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spk_loop_conn *c = w->data;
	size_t used;
	ssize_t n;

	(void)loop;
	(void)revents;
	if (c->closing) {
		finalize(c);
		return;
	}
	if (c->held && c->in_len == c->in_cap) {
		/* Held (spk_loop_hold): no more reading until released. */
		ev_io_stop(c->loop, &c->rio);
		return;
	}
	if (!c->held && make_room(c) < 0) {
		spk_err("connection %s: out of memory", c->peer);
		spk_loop_close(c, -ENOMEM);
		return;
	}
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n == 0) {
		spk_loop_close(c, SPOKE_EDEAD);
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			spk_debug("connection %s: recv: %s", c->peer, strerror(errno));
			spk_loop_close(c, SPOKE_EDEAD);
			return;
		}
		if (c->in_len == 0)
			return;
		n = 0; /* preloaded bytes (spk_loop_preload) may hold frames */
	}
	c->in_len += (size_t)n;
	c->dispatching = true;
	used = dispatch(c);
	c->dispatching = false;
	if (c->closing) {
		finalize(c);
		return;
	}
	if (used) {
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
	}
	spk_loop_flush(c);
}

int spk_loop_preload(struct spk_loop_conn *c, const void *p, size_t n)
{
	uint8_t *nb;

	if (n == 0)
		return 0;
	if (c->in_cap - c->in_len < n) {
		nb = realloc(c->in, c->in_len + n);
		if (!nb)
			return -ENOMEM;
		c->in = nb;
		c->in_cap = c->in_len + n;
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len += n;
	ev_feed_event(c->loop, &c->rio, EV_READ);
	return 0;
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spk_loop_conn *c = w->data;

	(void)loop;
	(void)revents;
	spk_loop_flush(c);
	if (c->closing)
		finalize(c);
}

static void accept_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct spk_acceptor *a = t->data;

	(void)revents;
	ev_io_start(loop, &a->io);
}

static void accept_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct spk_acceptor *a = w->data;
	char peer[SPK_ADDR_MAX];
	int fd;

	(void)revents;
	fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			spk_warn("cannot accept connections: %s; pausing for %.0f s",
				 strerror(errno), SPK_ACCEPT_PAUSE_S);
			ev_io_stop(loop, &a->io);
			/* A timer that fired once keeps its expiry: set it again. */
			ev_timer_set(&a->pause, SPK_ACCEPT_PAUSE_S, 0.);
			ev_timer_start(loop, &a->pause);
		}
		return;
	}
	spk_set_nodelay(fd);
	spk_peer_name(fd, peer, sizeof(peer));
	a->on_accept(a, fd, peer);
}

void spk_acceptor_start(struct spk_acceptor *a, struct ev_loop *loop, int listen_fd,
			spk_accept_cb on_accept, void *data)
{
	a->loop = loop;
	a->on_accept = on_accept;
	a->data = data;
	ev_io_init(&a->io, accept_ready, listen_fd, EV_READ);
	ev_timer_init(&a->pause, accept_resume, SPK_ACCEPT_PAUSE_S, 0.);
	a->io.data = a->pause.data = a;
	ev_io_start(loop, &a->io);
}

void spk_acceptor_stop(struct spk_acceptor *a)
{
	ev_io_stop(a->loop, &a->io);
	ev_timer_stop(a->loop, &a->pause);
}

int spk_loop_start(struct spk_loop_conn *c, struct ev_loop *loop, int fd, const char *token,
		     const char *ident, const char *peer, spk_frame_cb on_frame,
		     spk_close_cb on_close, void *data)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->fd = fd;
	c->token = token;
	c->ident = ident ? ident : "";
	c->authed = token == NULL;
	c->max_payload = spk_max_payload();
	c->on_frame = on_frame;
	c->on_close = on_close;
	c->data = data;
	c->serial = next_serial++;
	snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "?");
	c->peer_host_len = strrchr(c->peer, ':') ? (size_t)(strrchr(c->peer, ':') - c->peer)
						  : strlen(c->peer);
	c->in_cap = token ? PREAUTH_BUF : IN_INITIAL;
	c->out_cap = token ? PREAUTH_BUF : OUT_INITIAL;
	c->in = malloc(c->in_cap);
	c->out = malloc(c->out_cap);
	if (!c->in || !c->out) {
		free(c->in);
		free(c->out);
		return -ENOMEM;
	}
	spk_set_nonblock(fd, 1);
	ev_io_init(&c->rio, read_cb, fd, EV_READ);
	ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
	c->rio.data = c->wio.data = c;
	ev_io_start(loop, &c->rio);
	ev_timer_init(&c->auth_w, auth_timeout, SPK_AUTH_TIMEOUT_S, 0.);
	c->auth_w.data = c;
	if (token) {
		wait_admit(c);
		ev_timer_start(loop, &c->auth_w);
		spk_random(c->nonce, sizeof(c->nonce));
		spk_loop_send(c, SPK_HELLO, 0, 0, c->nonce, sizeof(c->nonce));
	}
	return 0;
}

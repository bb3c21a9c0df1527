/* rdma_server.c - the worker's end of RDMA connections.
 *
 * An rdma_cm listener on every device of the node, watched by the worker's
 * libev loop like its TCP sockets.  A client first asks over authenticated
 * TCP (server_hello) and gets the node's RDMA addresses and a one-time
 * cookie; a connection request that does not prove a live cookie with the
 * token is rejected (rdma.h).  Each connection has its own queue pair
 * (rdma_qp.c); its receive completions wake the loop through the queue's
 * completion channel, and calls are served in order, one at a time,
 * as the TCP ones are: the method reads its request where it arrived (the
 * receive slot, or the "rx" area an RDMA READ filled) and packs its reply
 * into a send slot, growing into the "tx" area, from which it is written
 * into the client's region or pulled by the client (see rdma.h).
 *
 * Protection: each connection's memory lives in its queue pair's own
 * protection domain, and neither area is open to the peer: the one remote
 * access a worker ever grants is a PULL reply's bytes, registered for
 * remote read alone while that reply waits and deregistered when the
 * client's DONE comes (or the connection ends).
 *
 * Kept calls.  A method may keep its call (SPK_KEPT, transport.h): its
 * send slot goes back, where its reply would have gone is remembered (the
 * client's region), and the calls behind it wait as they wait behind a
 * PULL, until the worker answers (rdma_answer, on the loop's thread, which
 * sends the reply as serve() does: send_reply).  A connection that ends
 * with its call still kept tells the worker at once (env.gone).
 *
 * Streams and cancels.  A kept stream call's CHUNKs go at once (rdma_chunk:
 * eager from a send slot, or a PULL from the tx area), while the client
 * has room for them (rdma.h: SPK_RDMA_CHUNKS, given back by CREDIT
 * frames); else SPOKE_EAGAIN throttles the producer.  A CANCEL goes to
 * env.cancel as soon as it comes, also while calls wait behind a kept one:
 * the others keep their order.
 *
 * A client that dies.  Its rdma_cm disconnect does not always come (rxe
 * drops the DREQ of a process killed while connected), and a connection
 * whose call is kept sends nothing that could fail.  So each connection
 * also watches the authenticated TCP connection that asked for it (a
 * descriptor of its own, taken with the cookie), which the client keeps
 * open for the RDMA connection's life: its end ends the RDMA connection
 * (and cancels its kept call) at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <sodium.h>

#include <spoke/errors.h>

#include "auth.h"
#include "clock.h"
#include "errmsg.h"
#include "loop_conn.h"
#include "frame.h"
#include "log.h"
#include "rdma_qp.h"
#include "rdma_wire.h"

#define COOKIES 256 /* connections being set up at once */
#define COOKIE_TTL_US (10 * 1000000LL)
#define SERVE_TIMEOUT_US (10 * 1000000LL) /* a READ or a slot, at the most */
#define N_RECV (4 * SPK_RDMA_CREDITS + 2) /* rdma.h, "Flow control" */

/* Where a large reply goes: RDMA WRITE into the client's region (a CALL
 * with SPK_RF_REGION), else the client PULLs it. */
struct reply_to {
	bool region;
	uint64_t raddr;
	uint32_t rkey, rcap;
};

struct rsconn {
	struct rdma_server *srv;
	struct spk_rqp q;
	struct spk_rarea rx, tx;
	ev_io w;
	bool held; /* a PULL reply waits for the client's DONE */
	uint64_t held_id;
	struct ibv_mr *exposed; /* that reply's bytes, remotely readable until DONE */
	struct { unsigned slot, len; } deferred[N_RECV]; /* calls behind a PULL or a kept call */
	unsigned n_def;
	/* A call its method kept (SPK_KEPT): the calls behind it wait until
	 * rdma_answer sends its reply (to kept_to, as serve() would have). */
	bool kept;
	uint64_t kept_id;
	struct reply_to kept_to;
	unsigned chunk_room; /* chunks the client has room for (rdma.h, "Streams") */
	int ctl_fd;  /* the client's TCP connection that asked for this one, or -1 */
	ev_io ctl_w; /* its end is the client's */
	bool dead;
	char peer[INET6_ADDRSTRLEN + 8];
	struct rsconn *next;
};

struct rdma_server {
	struct ev_loop *loop;
	spk_method_fn fn;
	void (*gone)(void *conn); /* env.gone */
	void (*cancel)(void *conn, uint64_t id); /* env.cancel */
	uint64_t *frames;
	char token[SPK_TOKEN_MAX];
	bool spin; /* the worker polls: completions wake it only when it sleeps */
	uint32_t max_msg;
	struct rdma_event_channel *ec;
	struct rdma_cm_id *listen;
	ev_io cm_w;
	uint16_t port;
	char device[64]; /* of the first address */
	char addrs[SPK_RDMA_ADDRS][INET_ADDRSTRLEN]; /* where clients may connect */
	unsigned n_addrs;
	char why[256]; /* why RDMA is off here; "" when on */
	struct {
		uint8_t v[SPK_RDMA_COOKIE];
		int64_t expires;
		int fd1; /* a descriptor of the TCP connection that asked, + 1 (0: none) */
	} cookies[COOKIES];
	unsigned next_cookie;
	struct rsconn *conns;
};

static int end_conn(struct rsconn *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int rdma_answer(void *conn, const struct spk_answer *a);
static int rdma_chunk(void *conn, uint64_t id, const void *data, size_t len);

/* c ends with its call kept: the worker cancels it and never answers it
 * (once; c stays allocated until conn_free). */
static void tell_gone(struct rsconn *c)
{
	if (!c->kept)
		return;
	c->kept = false;
	if (c->srv->gone)
		c->srv->gone(c);
}

/* Ends connection c, saying why at level: its rdma_cm DISCONNECTED event
 * frees it (conn_free), so nothing here frees what a caller still uses.
 * A connection whose first call came before the client's RTU is not
 * established yet, and rdma_cm refuses its disconnect: cm_cb sends it when
 * ESTABLISHED comes.  Returns -1, for `return end_conn(...)`. */
static int end_conn(struct rsconn *c, int level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (c->dead)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spk_log(level, "RDMA connection from %s: %s; closing it", c->peer, msg);
	c->dead = true;
	ev_io_stop(c->srv->loop, &c->w);
	rdma_disconnect(c->q.id);
	tell_gone(c);
	return -1;
}

/* Ends the remote access to a PULL reply's bytes. */
static void unexpose(struct rsconn *c)
{
	if (c->exposed)
		ibv_dereg_mr(c->exposed);
	c->exposed = NULL;
}

static void conn_free(struct rsconn *c)
{
	struct rdma_cm_id *id = c->q.id;

	tell_gone(c);
	for (struct rsconn **pp = &c->srv->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ev_io_stop(c->srv->loop, &c->w);
	if (c->ctl_fd >= 0) {
		ev_io_stop(c->srv->loop, &c->ctl_w);
		close(c->ctl_fd);
	}
	unexpose(c);
	spk_rarea_free(&c->rx);
	spk_rarea_free(&c->tx);
	spk_rqp_destroy(&c->q); /* and the protection domain, now empty */
	rdma_destroy_id(id);
	free(c);
}

/* spoke_buf grow hook: the reply outgrew its slot; it moves to the tx area
 * once the last reply written from there has left. */
static int grow_reply(spoke_buf *b, size_t need)
{
	struct rsconn *c = b->owner;
	int rc;

	if (need > c->srv->max_msg)
		return SPOKE_ETOOBIG;
	if (b->data != c->tx.p) { /* an earlier reply's WRITE may still read it */
		rc = spk_rqp_wait_sq(&c->q, 0, spk_now_us() + SERVE_TIMEOUT_US);
		if (rc < 0)
			return rc;
	}
	return spk_rarea_take_buf(c->q.pd, &c->tx, b, need, c->srv->max_msg, 0);
}

/* The request of the CALL in receive slot i, in place; 0 or a failure
 * that ends the connection. */
static int request_view(struct rsconn *c, const uint8_t *s, unsigned byte_len,
			const struct spk_hdr *h, spoke_view *req, int64_t deadline)
{
	uint64_t raddr, seq;
	uint32_t rkey, len;
	int rc;

	if (!(h->flags & SPK_RF_RDV)) {
		if (byte_len < SPK_RDMA_CALL_DATA || h->len > byte_len - SPK_RDMA_CALL_DATA)
			return spk_fail(SPOKE_EPROTO, "truncated call");
		spoke_view_init(req, s + SPK_RDMA_CALL_DATA, h->len);
		return 0;
	}
	spk_rdma_get_ext(s + SPK_HDR_SIZE + SPK_RDMA_EXT, &raddr, &rkey, &len);
	if (len != h->len || len <= SPK_RDMA_CALL_INLINE || byte_len < SPK_RDMA_CALL_DATA)
		return spk_fail(SPOKE_EPROTO, "malformed call descriptor");
	rc = spk_rarea_reserve(c->q.pd, &c->rx, len, c->srv->max_msg, 0, 0);
	if (rc == 0)
		rc = spk_rqp_post_rdma(&c->q, IBV_WR_RDMA_READ, c->rx.p, c->rx.mr->lkey, len, raddr,
				       rkey, &seq, deadline);
	if (rc == 0)
		rc = spk_rqp_wait_sq(&c->q, seq, deadline);
	if (rc < 0)
		return rc;
	spoke_view_init(req, c->rx.p, len);
	return 0;
}

/* Sends the REPLY to call id with status from send slot k (at out): its
 * body b is packed in the slot (an error's text always is) or in the tx
 * area, from which it is written into the client's region `to` or, where
 * it has none or one too small, pulled by the client.  0, or a failure
 * that should end the connection. */
static int send_reply(struct rsconn *c, unsigned k, uint8_t *out, uint64_t id, int status,
		      const spoke_buf *b, const struct reply_to *to, int64_t deadline)
{
	uint16_t flags;
	int rc;

	spk_hdr_encode(out, SPK_REPLY, id, status, (uint32_t)b->len);
	if (b->data == out + SPK_RDMA_REPLY_DATA)
		return spk_rqp_post_send(&c->q, k, SPK_RDMA_REPLY_DATA + b->len, deadline);
	if (to->region && b->len <= to->rcap) {
		flags = SPK_RF_WRITTEN;
		rc = spk_rqp_post_rdma(&c->q, IBV_WR_RDMA_WRITE, c->tx.p, c->tx.mr->lkey, b->len,
				       to->raddr, to->rkey, NULL, deadline);
	} else { /* the client reads exactly these bytes, until its DONE */
		flags = SPK_RF_PULL;
		rc = spk_rdma_reg(c->q.pd, c->tx.p, b->len, IBV_ACCESS_REMOTE_READ, &c->exposed);
		if (rc == 0) {
			spk_rdma_put_ext(out + SPK_HDR_SIZE, (uintptr_t)c->tx.p, c->exposed->rkey,
					 (uint32_t)b->len);
			c->held = true;
			c->held_id = id;
		}
	}
	spk_hdr_set_flags(out, flags);
	if (rc == 0) /* ordered after the WRITE on the same queue pair */
		rc = spk_rqp_post_send(&c->q, k, SPK_RDMA_REPLY_DATA, deadline);
	return rc;
}

/* Runs the CALL in receive slot i and sends its reply (none yet if its
 * method kept it); -1 if that ended the connection. */
static int serve(struct rsconn *c, unsigned i, unsigned byte_len)
{
	int64_t deadline = spk_now_us() + SERVE_TIMEOUT_US;
	uint8_t *s = spk_rqp_recv_slot(&c->q, i), *out;
	struct reply_to to = { 0 };
	char msg[SPK_REPLY_ERROR_MAX]; /* written only for a failure: not zeroed per call */
	bool oversize;
	struct spk_hdr h;
	spoke_view req;
	spoke_buf b;
	unsigned k;
	int rc, status, code = 0;

	spk_hdr_decode_flags(s, UINT32_MAX, SPK_RF_REGION | SPK_RF_RDV, &h); /* checked before */
	to.region = h.flags & SPK_RF_REGION;
	if (to.region)
		spk_rdma_get_ext(s + SPK_HDR_SIZE, &to.raddr, &to.rkey, &to.rcap);
	/* A request over the maximum is refused unread (no RDMA READ). */
	oversize = h.len > c->srv->max_msg;
	rc = oversize ? 0 : request_view(c, s, byte_len, &h, &req, deadline);
	if (rc == 0)
		rc = spk_rqp_send_slot(&c->q, &k, &out, deadline);
	if (rc < 0)
		return end_conn(c, SPK_LOG_WARN, "%s",
				spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc));
	spoke_buf_init(&b, out + SPK_RDMA_REPLY_DATA, SPK_RDMA_REPLY_INLINE);
	b.grow = grow_reply;
	b.owner = c;
	if (oversize) {
		status = SPOKE_ETOOBIG;
		snprintf(msg, sizeof(msg), SPK_OVERSIZE_FMT, h.len, "actor", c->srv->max_msg);
		spk_info("RDMA connection from %s: %s", c->peer, msg);
	} else {
		msg[0] = '\0';
		status = c->srv->fn(&(struct spk_call_origin){ .conn = c, .id = h.id,
							      .stream = (h.flags & SPK_CF_STREAM) != 0,
							      .ttl_ms = h.ttl_ms,
							      .answer = rdma_answer,
							      .chunk = rdma_chunk },
				    (uint32_t)h.aux, &req, &b, &code, msg, sizeof(msg));
	}
	(*c->srv->frames)++;
	if (status == SPK_KEPT) { /* no reply now: the slot goes back, the region is kept */
		spk_rqp_unget_slot(&c->q, k);
		c->kept = true;
		c->kept_id = h.id;
		c->kept_to = to;
	}
	rc = spk_rqp_post_recv(&c->q, i); /* the request is dead: its slot is free */
	if (rc < 0)
		return end_conn(c, SPK_LOG_WARN, "%s", spoke_errmsg());
	if (status == SPK_KEPT)
		return 0;
	if (status < 0) { /* what the method packed is dropped */
		spoke_buf_init(&b, out + SPK_RDMA_REPLY_DATA, SPK_RDMA_REPLY_INLINE);
		spk_reply_error_pack(&b, status, code, msg);
	}
	rc = send_reply(c, k, out, h.id, status, &b, &to, deadline);
	if (rc < 0)
		return end_conn(c, SPK_LOG_WARN, "cannot reply: %s", spoke_errmsg());
	return 0;
}

/* Serves the calls that waited behind a PULL or a kept call, in order, as
 * long as nothing holds them again. */
static void serve_deferred(struct rsconn *c)
{
	while (c->n_def && !c->held && !c->kept && !c->dead) {
		unsigned slot = c->deferred[0].slot, len = c->deferred[0].len;

		memmove(c->deferred, c->deferred + 1, --c->n_def * sizeof(c->deferred[0]));
		serve(c, slot, len);
	}
}

/* transport.h's answer: the REPLY of c's kept call, on the loop's thread,
 * never waiting: no send slot free yet, or a tx area that an earlier
 * reply's WRITE may still read, is SPOKE_EAGAIN (the worker tries again).
 * The calls that waited behind it are served from the loop (c->w), not
 * from inside this function, whose caller is in the middle of its answer. */
static int rdma_answer(void *conn, const struct spk_answer *a)
{
	struct rsconn *c = conn;
	int64_t deadline = spk_now_us() + SERVE_TIMEOUT_US;
	char msg[SPK_REPLY_ERROR_MAX];
	int status = a->status, rc;
	uint8_t *out;
	spoke_buf b;
	unsigned k;

	if (c->dead || !c->kept || a->id != c->kept_id) {
		if (!c->dead)
			spk_warn("RDMA connection from %s: an answer to call %llu, not the one kept "
				 "(%s %llu); dropped", c->peer, (unsigned long long)a->id,
				 c->kept ? "call" : "none, last", (unsigned long long)c->kept_id);
		return 0;
	}
	rc = 0;
	if (status == 0 && a->len > SPK_RDMA_REPLY_INLINE) { /* the tx area: free now? */
		if (c->held) /* a PULL's bytes there, until the client's DONE */
			return SPOKE_EAGAIN;
		rc = spk_rqp_wait_sq(&c->q, 0, 0);
	}
	if (rc == 0)
		rc = spk_rqp_send_slot(&c->q, &k, &out, 0);
	if (rc == SPOKE_ETIMEDOUT)
		return SPOKE_EAGAIN;
	c->kept = false; /* answered from here on, or dropped with c */
	if (rc < 0) {
		end_conn(c, SPK_LOG_WARN, "%s", spoke_errmsg());
		return 0; /* dropped: the connection is gone */
	}
	spoke_buf_init(&b, out + SPK_RDMA_REPLY_DATA, SPK_RDMA_REPLY_INLINE);
	b.grow = grow_reply;
	b.owner = c;
	if (status == 0) {
		spoke_buf_put_raw(&b, a->data, a->len);
		if (b.err) { /* too big, or no memory for the area: the call fails so */
			status = b.err;
			snprintf(msg, sizeof(msg), "the kept reply of %zu bytes could not be sent: %s",
				 a->len, spoke_strerror(b.err));
		}
	} else {
		snprintf(msg, sizeof(msg), "%s", a->msg ? a->msg : "");
	}
	if (status < 0) {
		spoke_buf_init(&b, out + SPK_RDMA_REPLY_DATA, SPK_RDMA_REPLY_INLINE);
		spk_reply_error_pack(&b, status, a->code, msg);
	}
	rc = send_reply(c, k, out, a->id, status, &b, &c->kept_to, deadline);
	if (rc < 0) {
		end_conn(c, SPK_LOG_WARN, "cannot reply: %s", spoke_errmsg());
		return 0;
	}
	if (c->n_def) /* the calls behind it: cq_cb serves them (drain) */
		ev_feed_event(c->srv->loop, &c->w, EV_READ);
	return 0;
}

/* transport.h's chunk: one CHUNK of c's kept stream call, sent at once
 * (eager, or as a PULL the client reads from the tx area), never waiting:
 * SPOKE_EAGAIN when the client has no room for it (SPK_RDMA_CHUNKS
 * unacknowledged), no send slot is free, or the tx area is still in use. */
static int rdma_chunk(void *conn, uint64_t id, const void *data, size_t len)
{
	struct rsconn *c = conn;
	int64_t deadline = spk_now_us() + SERVE_TIMEOUT_US;
	uint8_t *out;
	unsigned k;
	int rc = 0;

	if (c->dead)
		return 0; /* dropped: the connection is gone */
	if (!c->chunk_room)
		return SPOKE_EAGAIN;
	if (len > SPK_RDMA_REPLY_INLINE) { /* the tx area: free now? */
		if (c->held)
			return SPOKE_EAGAIN;
		rc = spk_rqp_wait_sq(&c->q, 0, 0);
	}
	if (rc == 0)
		rc = spk_rqp_send_slot(&c->q, &k, &out, 0);
	if (rc == SPOKE_ETIMEDOUT)
		return SPOKE_EAGAIN;
	if (rc < 0) {
		end_conn(c, SPK_LOG_WARN, "%s", spoke_errmsg());
		return 0;
	}
	spk_hdr_encode(out, SPK_CHUNK, id, 0, (uint32_t)len);
	if (len <= SPK_RDMA_REPLY_INLINE) {
		if (len)
			memcpy(out + SPK_RDMA_REPLY_DATA, data, len);
		rc = spk_rqp_post_send(&c->q, k, SPK_RDMA_REPLY_DATA + len, deadline);
	} else {
		rc = spk_rarea_reserve(c->q.pd, &c->tx, len, c->srv->max_msg, 0, 0);
		if (rc == 0) {
			memcpy(c->tx.p, data, len);
			rc = spk_rdma_reg(c->q.pd, c->tx.p, len, IBV_ACCESS_REMOTE_READ, &c->exposed);
		}
		if (rc < 0) {
			spk_rqp_unget_slot(&c->q, k);
			end_conn(c, SPK_LOG_WARN, "a chunk of %zu bytes: %s", len, spoke_errmsg());
			return 0;
		}
		spk_rdma_put_ext(out + SPK_HDR_SIZE, (uintptr_t)c->tx.p, c->exposed->rkey,
				 (uint32_t)len);
		spk_hdr_set_flags(out, SPK_RF_PULL);
		c->held = true; /* until the client's DONE */
		c->held_id = id;
		rc = spk_rqp_post_send(&c->q, k, SPK_RDMA_REPLY_DATA, deadline);
	}
	if (rc < 0) {
		end_conn(c, SPK_LOG_WARN, "cannot send a chunk: %s", spoke_errmsg());
		return 0;
	}
	c->chunk_room--;
	return 0;
}

/* A receive completed: a CALL (served now, or later behind a PULL), the
 * DONE that ends a PULL, a CANCEL or a CREDIT (taken at once, whatever
 * waits); -1 if it ended the connection. */
static int on_recv(struct rsconn *c, const struct ibv_wc *wc)
{
	unsigned i = (unsigned)wc->wr_id;
	struct spk_hdr h;

	if (wc->status == IBV_WC_WR_FLUSH_ERR) /* closing (the client left): no news */
		return end_conn(c, SPK_LOG_DEBUG, "receives flushed");
	if (wc->status != IBV_WC_SUCCESS)
		return end_conn(c, SPK_LOG_WARN, "receive failed: %s", ibv_wc_status_str(wc->status));
	if (wc->byte_len < SPK_HDR_SIZE ||
	    spk_hdr_decode_flags(spk_rqp_recv_slot(&c->q, i), UINT32_MAX,
				 SPK_RF_REGION | SPK_RF_RDV, &h) < 0)
		return end_conn(c, SPK_LOG_WARN, "malformed message of %u bytes", wc->byte_len);
	if (h.type == SPK_DONE) {
		if (!c->held || h.id != c->held_id)
			return end_conn(c, SPK_LOG_WARN, "unexpected DONE");
		c->held = false;
		unexpose(c); /* the client read it (or gave up): no more reads */
		if (spk_rqp_post_recv(&c->q, i) < 0)
			return end_conn(c, SPK_LOG_WARN, "%s", spoke_errmsg());
		serve_deferred(c);
		return 0;
	}
	if (h.type == SPK_CANCEL || h.type == SPK_CREDIT) {
		if (h.type == SPK_CREDIT &&
		    (h.aux <= 0 || (unsigned)h.aux > SPK_RDMA_CHUNKS - c->chunk_room))
			return end_conn(c, SPK_LOG_WARN, "a CREDIT of %d chunks, %u unacknowledged",
					h.aux, SPK_RDMA_CHUNKS - c->chunk_room);
		if (spk_rqp_post_recv(&c->q, i) < 0)
			return end_conn(c, SPK_LOG_WARN, "%s", spoke_errmsg());
		(*c->srv->frames)++;
		if (h.type == SPK_CREDIT)
			c->chunk_room += (unsigned)h.aux;
		else if (c->srv->cancel)
			c->srv->cancel(c, h.id);
		return 0;
	}
	if (h.type != SPK_CALL)
		return end_conn(c, SPK_LOG_WARN, "unexpected %s", spk_type_name(h.type));
	if (c->held || c->kept || c->n_def) {
		if (c->n_def == N_RECV)
			return end_conn(c, SPK_LOG_WARN, "too many calls behind a %s (credits ignored)",
					c->kept ? "kept call" : "PULL");
		c->deferred[c->n_def].slot = i;
		c->deferred[c->n_def++].len = wc->byte_len;
		return 0;
	}
	return serve(c, i, wc->byte_len);
}

static void drain(struct rsconn *c)
{
	struct ibv_wc wc[16];
	int n;

	serve_deferred(c); /* first: what comes now goes behind them */
	while (!c->dead && (n = ibv_poll_cq(c->q.rcq, 16, wc)) > 0)
		for (int j = 0; j < n && !c->dead; j++)
			on_recv(c, &wc[j]);
}

static void cq_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rsconn *c = w->data;
	struct ibv_cq *cq;
	void *ctx;

	(void)loop;
	(void)revents;
	if (ibv_get_cq_event(c->q.rcc, &cq, &ctx) == 0) {
		ibv_ack_cq_events(cq, 1);
		if (!c->srv->spin)
			ibv_req_notify_cq(c->q.rcq, 0);
	}
	drain(c);
}

static unsigned server_poll(struct rdma_server *s, bool arm)
{
	unsigned n = 0;

	if (!s)
		return 0;
	for (struct rsconn *c = s->conns; c; c = c->next, n++) {
		if (arm && !c->dead)
			ibv_req_notify_cq(c->q.rcq, 0);
		drain(c);
	}
	return n;
}

/* The client's TCP connection (a descriptor of our own on it): readable
 * for the loop_conn's bytes (a later hello; left to it), or at its end,
 * which is the client's. */
static void ctl_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rsconn *c = w->data;
	char b;
	ssize_t n = recv(c->ctl_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	(void)revents;
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	/* Closed now, not with c: a description left open under the
	 * loop_conn's closed descriptor would keep it in the loop's epoll set. */
	ev_io_stop(loop, w);
	close(c->ctl_fd);
	c->ctl_fd = -1;
	end_conn(c, SPK_LOG_INFO, "its client's TCP connection ended (the client is gone)");
}

/* The cookie a connection request proves (private data {u32 index, MAC});
 * it is used up.  NULL if there is no such live cookie or the MAC is wrong. */
static const uint8_t *take_cookie(struct rdma_server *s, const uint8_t *priv, uint8_t len,
				  int *ctl_fd)
{
	struct spk_rdma_connect req;
	spoke_view v;
	uint32_t i;

	if (!priv)
		return NULL;
	spoke_view_init(&v, priv, len);
	if (spk_rdma_connect_unpack(&v, &req) < 0)
		return NULL;
	i = req.index;
	if (i >= COOKIES || s->cookies[i].expires <= spk_now_us() ||
	    !spk_auth_verify(req.mac, s->token, SPK_LABEL_RDMA_CLIENT, s->cookies[i].v))
		return NULL;
	s->cookies[i].expires = 0; /* once */
	*ctl_fd = s->cookies[i].fd1 - 1;
	s->cookies[i].fd1 = 0;
	return s->cookies[i].v;
}

static void peer_name(struct rdma_cm_id *id, char *out, size_t cap)
{
	struct sockaddr *sa = rdma_get_peer_addr(id);
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
	snprintf(out, cap, "%s:%u", host, ntohs(rdma_get_dst_port(id)));
}

/* A connection request: accepted with a live cookie, else rejected. */
static void on_connect_request(struct rdma_server *s, struct rdma_cm_event *ev)
{
	const char *want = getenv("SPOKE_RDMA_DEVICE");
	uint8_t mac[SPK_MAC_SIZE];
	struct rdma_conn_param param;
	const uint8_t *cookie;
	struct rsconn *c;
	char peer[sizeof(c->peer)];
	int ctl_fd = -1;

	peer_name(ev->id, peer, sizeof(peer));
	if (want && strcmp(want, ibv_get_device_name(ev->id->verbs->device)) != 0) {
		spk_warn("RDMA connection from %s refused: it came through %s, not "
			 "SPOKE_RDMA_DEVICE=%s", peer, ibv_get_device_name(ev->id->verbs->device),
			 want);
		goto out_reject;
	}
	cookie = take_cookie(s, ev->param.conn.private_data, ev->param.conn.private_data_len,
			     &ctl_fd);
	if (!cookie) {
		spk_warn("RDMA connection from %s refused: no live cookie with the token's MAC",
			 peer);
		goto out_reject;
	}
	spk_auth_mac(mac, s->token, SPK_LABEL_RDMA_SERVER, cookie);
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out_reject;
	c->srv = s;
	c->chunk_room = SPK_RDMA_CHUNKS;
	c->ctl_fd = -1;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	if (spk_rqp_create(&c->q, ev->id, SPK_RDMA_CREDITS, N_RECV, 0) < 0) {
		spk_warn("RDMA connection from %s refused: %s", peer, spoke_errmsg());
		goto out_free;
	}
	spk_rqp_conn_param(&c->q, &param, mac, SPK_MAC_SIZE);
	if (rdma_accept(ev->id, &param) < 0) {
		spk_warn("RDMA connection from %s: rdma_accept: %s", peer, strerror(errno));
		goto out_destroy;
	}
	ev->id->context = c;
	ev_io_init(&c->w, cq_cb, c->q.rcc->fd, EV_READ);
	c->w.data = c;
	ev_io_start(s->loop, &c->w);
	if (ctl_fd >= 0) {
		c->ctl_fd = ctl_fd;
		ev_io_init(&c->ctl_w, ctl_cb, ctl_fd, EV_READ);
		c->ctl_w.data = c;
		ev_io_start(s->loop, &c->ctl_w);
	}
	c->next = s->conns;
	s->conns = c;
	spk_info("RDMA connection from %s on %s", peer,
		 ibv_get_device_name(ev->id->verbs->device));
	return;
out_destroy:
	spk_rqp_destroy(&c->q);
out_free:
	free(c);
out_reject:
	if (ctl_fd >= 0)
		close(ctl_fd);
	rdma_reject(ev->id, NULL, 0);
	ev->id->context = NULL;
}

static void cm_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rdma_server *s = w->data;
	struct rdma_cm_event *ev;

	(void)loop;
	(void)revents;
	while (rdma_get_cm_event(s->ec, &ev) == 0) {
		struct rdma_cm_id *id = ev->id;
		struct rsconn *c = id->context;
		enum rdma_cm_event_type t = ev->event;
		bool drop_id = false;

		switch (t) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			on_connect_request(s, ev);
			drop_id = id->context == NULL;
			c = NULL;
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			/* Ended by a call that came before the client's RTU: the
			 * rdma_disconnect then was refused (not established yet),
			 * so the client would never hear of it.  Now it can. */
			if (c && c->dead)
				rdma_disconnect(id);
			c = NULL;
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_UNREACHABLE:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			if (id == s->listen) {
				snprintf(s->why, sizeof(s->why), "the RDMA device went away (%s)",
					 rdma_event_str(t));
				c = NULL;
			}
			break;
		default:
			c = NULL;
			break;
		}
		rdma_ack_cm_event(ev);
		if (drop_id)
			rdma_destroy_id(id);
		if (c) {
			spk_info("RDMA connection from %s ended (%s)", c->peer, rdma_event_str(t));
			conn_free(c);
		}
	}
}

/* The device serving IPv4 address sa ("" if none), by binding a
 * throw-away rdma_cm id to it. */
static void device_of(struct rdma_event_channel *ec, struct sockaddr *sa, char *dev, size_t cap)
{
	struct rdma_cm_id *id;

	dev[0] = '\0';
	if (rdma_create_id(ec, &id, NULL, RDMA_PS_TCP) < 0)
		return;
	if (rdma_bind_addr(id, sa) == 0 && id->verbs)
		snprintf(dev, cap, "%s", ibv_get_device_name(id->verbs->device));
	rdma_destroy_id(id);
}

/* Collects the node's IPv4 addresses served by an RDMA device (the one
 * $SPOKE_RDMA_DEVICE names, if set), host's first: clients connect to one of
 * them, so RDMA works even where the TCP address is on another network. */
static void find_addrs(struct rdma_server *s, const char *host, const char *want)
{
	struct ifaddrs *ifs, *i;
	char a[INET_ADDRSTRLEN], dev[64];
	bool host_first = true;

	if (getifaddrs(&ifs) < 0)
		return;
	for (int pass = 0; pass < 2; pass++)
		for (i = ifs; i && s->n_addrs < SPK_RDMA_ADDRS; i = i->ifa_next) {
			struct sockaddr_in *sin = (struct sockaddr_in *)i->ifa_addr;

			if (!sin || sin->sin_family != AF_INET ||
			    sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
				continue;
			inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
			host_first = strcmp(a, host) == 0;
			if (host_first != (pass == 0))
				continue;
			device_of(s->ec, i->ifa_addr, dev, sizeof(dev));
			if (!dev[0] || (want && strcmp(want, dev) != 0))
				continue;
			snprintf(s->addrs[s->n_addrs++], sizeof(s->addrs[0]), "%s", a);
			if (!s->device[0])
				snprintf(s->device, sizeof(s->device), "%s", dev);
		}
	freeifaddrs(ifs);
}

static int server_start(struct rdma_server **out, struct ev_loop *loop, const char *host,
		   const char *token, bool spin, spk_method_fn fn, void (*gone)(void *conn),
		   void (*cancel)(void *conn, uint64_t id), uint64_t *frames)
{
	const char *want = getenv("SPOKE_RDMA_DEVICE");
	struct sockaddr_in any = { .sin_family = AF_INET };
	struct spk_transport_choice mode;
	struct ibv_device **devs;
	struct rdma_server *s;
	int n = 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	snprintf(s->token, sizeof(s->token), "%s", token);
	s->spin = spin;
	s->fn = fn;
	s->gone = gone;
	s->cancel = cancel;
	s->frames = frames;
	s->max_msg = spk_max_payload();
	*out = s;
	if (spk_transport_from_env(&mode) == 0 && !spk_transport_allowed(&mode,
									     &spk_rdma_transport)) {
		snprintf(s->why, sizeof(s->why), "SPOKE_TRANSPORT=%s on the actor's node",
			 getenv("SPOKE_TRANSPORT"));
		goto out_off;
	}
	devs = ibv_get_device_list(&n);
	if (devs)
		ibv_free_device_list(devs);
	if (n == 0) {
		snprintf(s->why, sizeof(s->why), "no RDMA device on the actor's node");
		goto out_off;
	}
	s->ec = rdma_create_event_channel();
	if (!s->ec) {
		snprintf(s->why, sizeof(s->why), "rdma_create_event_channel: %s", strerror(errno));
		goto out_off;
	}
	find_addrs(s, host, want);
	if (s->n_addrs == 0) {
		snprintf(s->why, sizeof(s->why), "no IPv4 address of the actor's node is on %s%s",
			 want ? "RDMA device " : "an RDMA device", want ? want : "");
		goto out_off;
	}
	/* Listen on every device; a connection through an unwanted one is
	 * refused when it asks (on_connect_request). */
	if (rdma_create_id(s->ec, &s->listen, NULL, RDMA_PS_TCP) < 0 ||
	    rdma_bind_addr(s->listen, (struct sockaddr *)&any) < 0 ||
	    rdma_listen(s->listen, 64) < 0) {
		snprintf(s->why, sizeof(s->why), "cannot listen for RDMA connections: %s",
			 strerror(errno));
		goto out_off;
	}
	s->port = ntohs(rdma_get_src_port(s->listen));
	fcntl(s->ec->fd, F_SETFL, fcntl(s->ec->fd, F_GETFL) | O_NONBLOCK);
	ev_io_init(&s->cm_w, cm_cb, s->ec->fd, EV_READ);
	s->cm_w.data = s;
	ev_io_start(loop, &s->cm_w);
	spk_debug("RDMA on port %u of %s (%s)%s", s->port, s->addrs[0], s->device,
		  s->n_addrs > 1 ? " and more addresses" : "");
	return 0;
out_off:
	spk_debug("RDMA off: %s", s->why);
	if (s->listen)
		rdma_destroy_id(s->listen);
	if (s->ec)
		rdma_destroy_event_channel(s->ec);
	s->listen = NULL;
	s->ec = NULL;
	return 0;
}

static void server_stop(struct rdma_server *s)
{
	if (!s)
		return;
	while (s->conns) {
		rdma_disconnect(s->conns->q.id);
		conn_free(s->conns);
	}
	if (s->listen) {
		ev_io_stop(s->loop, &s->cm_w);
		rdma_destroy_id(s->listen);
	}
	if (s->ec)
		rdma_destroy_event_channel(s->ec);
	for (unsigned i = 0; i < COOKIES; i++)
		if (s->cookies[i].fd1)
			close(s->cookies[i].fd1 - 1);
	free(s);
}

/* Which offered address the client reached this worker at (0 if none):
 * the likeliest to reach it over RDMA too. */
static unsigned local_index(const struct rdma_server *s, int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char a[INET_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0 || sin.sin_family != AF_INET)
		return 0;
	inet_ntop(AF_INET, &sin.sin_addr, a, sizeof(a));
	for (unsigned k = 0; k < s->n_addrs; k++)
		if (strcmp(a, s->addrs[k]) == 0)
			return k;
	return 0;
}

static void server_hello(struct rdma_server *s, struct spk_loop_conn *c, const struct spk_hdr *h)
{
	int64_t now = spk_now_us();
	struct spk_rdma_offer o = { .port = s->port, .slot = SPK_RDMA_SLOT,
				    .credits = SPK_RDMA_CREDITS, .max_msg = s->max_msg,
				    .n_addrs = s->n_addrs };
	unsigned i, n, first;
	spoke_buf b;

	if (s->why[0]) {
		spk_loop_reply_error(c, h->id, SPOKE_ERDMA, "%s", s->why);
		return;
	}
	/* A free slot: never one whose cookie is still live. */
	for (n = 0, i = s->next_cookie; n < COOKIES && s->cookies[i].expires > now; n++)
		i = (i + 1) % COOKIES;
	if (n == COOKIES) {
		spk_loop_reply_error(c, h->id, SPOKE_ERDMA,
				       "%d RDMA connections being set up at once; try again",
				       COOKIES);
		return;
	}
	s->next_cookie = (i + 1) % COOKIES;
	randombytes_buf(s->cookies[i].v, SPK_RDMA_COOKIE);
	s->cookies[i].expires = now + COOKIE_TTL_US;
	if (s->cookies[i].fd1) /* an expired cookie's */
		close(s->cookies[i].fd1 - 1);
	s->cookies[i].fd1 = fcntl(c->fd, F_DUPFD_CLOEXEC, 0) + 1; /* 0: none (EMFILE) */
	first = local_index(s, c->fd);
	o.index = i;
	memcpy(o.cookie, s->cookies[i].v, SPK_RDMA_COOKIE);
	snprintf(o.addrs[0], sizeof(o.addrs[0]), "%s", s->addrs[first]);
	for (unsigned k = 0, j = 1; k < s->n_addrs; k++)
		if (k != first)
			snprintf(o.addrs[j++], sizeof(o.addrs[0]), "%s", s->addrs[k]);
	spk_loop_begin(c, &b);
	spk_rdma_offer_pack(&b, &o);
	spk_loop_finish(c, &b, SPK_REPLY, h->id, 0);
}

/* ---- the server's entry (transport.h) ---- */

static int rdma_server_start(void **out, const struct spk_server_env *env)
{
	struct rdma_server *s = NULL;
	int rc = server_start(&s, env->loop, env->host, env->token, env->spin, env->run,
			      env->gone, env->cancel, env->frames);

	*out = s;
	return rc;
}

static void rdma_server_stop(void *srv)
{
	server_stop(srv);
}

static void rdma_server_hello(void *srv, struct spk_loop_conn *c, const struct spk_hdr *h,
			      spoke_view *p)
{
	(void)p; /* the request carries nothing */
	server_hello(srv, c, h);
}

static unsigned rdma_server_poll(void *srv, bool arm)
{
	return server_poll(srv, arm);
}

const struct spk_server_ops spk_rdma_server = {
	.hello_type = SPK_RDMA,
	.start = rdma_server_start,
	.stop = rdma_server_stop,
	.hello = rdma_server_hello,
	.poll = rdma_server_poll,
};

/* tcp.c - the TCP transport: calls over an authenticated frame channel
 * (sync_conn.c) to the worker's listening socket.  The worker's side is the
 * worker's own TCP path (worker.c), which every transport starts from.
 *
 * A synchronous call sends its CALL and receives its REPLY on the caller's
 * thread.  Asynchronous calls pipeline on one connection: the worker
 * answers in order, so the calls in flight wait in a FIFO (a ring the
 * connection owns, its capacity a power of two) and complete in turn.  A
 * sender that finds the socket full receives the replies that are due
 * meanwhile (sync_conn.h's drain), so a worker that stops reading until its
 * replies are read never deadlocks a window.  A wait that times out gives
 * its future up: the ring keeps the call's place with no future, and its
 * reply is dropped when it comes.
 *
 * A stream call holds its connection: its CHUNKs and then its REPLY come
 * in order on the channel, each read by one stream_next.  Giving a stream
 * up drops the channel (the worker sees its caller go), and the next call
 * makes a new one.
 *
 * A channel that broke is made again on the next call, after args.check
 * (transport.h) said that the worker still runs. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "sync_conn.h"
#include "clock.h"
#include "errmsg.h"
#include "frame.h"
#include "transport/transport.h"

/* Small asynchronous requests behind others in flight are queued and go out
 * together, one send for many calls (see async_send). */
#define ASYNC_SMALL (4u << 10) /* larger requests are sent at once, in place */
#define ASYNC_FLUSH (8u << 10) /* queued bytes that go out without waiting */

/* An asynchronous call in flight: its id, and the future it completes, or
 * NULL once a wait gave the future up (its reply is dropped). */
struct inflight {
	uint64_t id;
	spoke_future *f;
};

extern const struct spk_transport spk_tcp_transport;

struct tcp_conn {
	struct spk_conn base;
	struct spk_conn_args args; /* its strings are the handle's */
	struct spk_sync_conn *ch;       /* NULL once it broke, until made again */
	atomic_int poll_us;
	uint64_t next_id;
	pthread_mutex_t lock; /* asynchronous calls: guards everything below */
	struct inflight *ring; /* calls in flight, oldest first */
	size_t ring_cap, ring_head, ring_count;
	uint64_t async_id; /* the last call's: ids in the ring are consecutive */
	size_t async_queued; /* bytes of small requests not sent yet */
	/* The stream being read (its caller's thread only). */
	uint64_t stream_id;
	uint32_t chunk_len; /* of the frame whose header was read, if chunk_read */
	bool chunk_read;    /* a frame's header is read, its payload not */
	bool last_chunk;    /* that frame is the final REPLY's body */
	bool eof_next;      /* the REPLY's body was read: SPOKE_EOF next */
	bool abandoned;     /* dropped on purpose: the next channel needs no check */
};

static struct tcp_conn *tcp_of(struct spk_conn *c)
{
	return (struct tcp_conn *)c;
}

static int open_chan(struct tcp_conn *c, int64_t deadline)
{
	struct spk_sync_conn *ch = malloc(sizeof(*ch));
	int rc;

	if (!ch)
		return -ENOMEM;
	rc = spk_sync_open(ch, c->args.addr, c->args.token, c->args.ident,
			   atomic_load(&c->poll_us), deadline);
	if (rc < 0) {
		free(ch);
		if (rc == -ECONNREFUSED || rc == -ECONNRESET)
			return spk_fail(SPOKE_EDEAD, "actor %s at %s does not answer (%s)",
					c->args.name, c->args.addr, strerror(-rc));
		return rc;
	}
	c->ch = ch;
	return 0;
}

static void drop_chan(struct tcp_conn *c)
{
	if (c->ch) {
		spk_sync_close(c->ch);
		free(c->ch);
		c->ch = NULL;
	}
}

/* The channel, made again if it broke, once the worker is known to run. */
static int usable_chan(struct tcp_conn *c, int64_t deadline)
{
	int rc;

	if (c->ch && !c->ch->broken) {
		c->ch->poll_us = atomic_load_explicit(&c->poll_us, memory_order_relaxed);
		return 0;
	}
	drop_chan(c);
	rc = c->abandoned ? 0 : c->args.check(c->args.check_arg, deadline);
	c->abandoned = false;
	return rc < 0 ? rc : open_chan(c, deadline);
}

static int tcp_usable(const struct spk_conn_args *args)
{
	(void)args;
	return 0;
}

static int tcp_connect(struct spk_conn **out, const struct spk_conn_args *args,
		       int64_t deadline)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->args = *args;
	atomic_init(&c->poll_us, args->poll_us);
	pthread_mutex_init(&c->lock, NULL);
	rc = open_chan(c, deadline);
	if (rc < 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return rc;
	}
	c->base.t = &spk_tcp_transport;
	*out = &c->base;
	return 0;
}

static void tcp_describe(const struct spk_conn *c, char *buf, size_t cap)
{
	(void)c;
	snprintf(buf, cap, "socket");
}

static void tcp_set_poll(struct spk_conn *c, int poll_us)
{
	atomic_store(&tcp_of(c)->poll_us, poll_us);
}

/* Reads a REPLY header for request id, waiting no later than deadline; a
 * failed status leaves its message in spoke_errmsg() (and a method's own
 * code in spoke_method_status()) and consumes the payload. */
static int recv_reply(struct tcp_conn *c, uint64_t id, struct spk_hdr *h, int64_t deadline)
{
	const uint8_t *p;
	int rc = spk_sync_recv_hdr(c->ch, h, deadline);

	if (rc < 0) {
		if (rc == SPOKE_EDEAD)
			spk_fail(rc, "actor %s at %s: connection lost (did the actor die?)",
				 c->args.name, c->args.addr);
		return rc;
	}
	if (h->type != SPK_REPLY || h->id != id)
		return spk_sync_break(c->ch, spk_fail(SPOKE_EPROTO, "actor %s answered out of turn",
						      c->args.name));
	if (h->aux >= 0) {
		spk_errmsg_clear(); /* and spoke_method_status() */
		return 0;
	}
	rc = spk_sync_recv_view(c->ch, h->len, &p, deadline);
	if (rc < 0)
		return rc;
	return spk_reply_error_unpack(h->aux, p, h->len);
}

static int tcp_call(struct spk_conn *conn, uint32_t method, const void *req, size_t req_len,
		    void *reply, size_t cap, size_t *reply_len, int64_t deadline)
{
	struct tcp_conn *c = tcp_of(conn);
	struct spk_hdr h;
	uint64_t id;
	int rc = usable_chan(c, deadline);

	if (rc < 0)
		return rc;
	id = ++c->next_id;
	c->ch->call_ttl_ms = spk_ttl_of(deadline); /* the worker keeps the deadline */
	rc = spk_sync_send(c->ch, SPK_CALL, id, (int32_t)method, req, req_len, deadline);
	if (rc == 0)
		rc = recv_reply(c, id, &h, deadline);
	if (rc == 0) {
		if (reply_len)
			*reply_len = h.len;
		if (h.len > cap) {
			rc = spk_sync_skip(c->ch, h.len, deadline);
			if (rc == 0)
				rc = spk_no_room(h.len, cap);
		} else {
			rc = spk_sync_recv_copy(c->ch, reply, h.len, deadline);
		}
	}
	if (rc == SPOKE_ETIMEDOUT)
		spk_sync_break(c->ch, rc); /* its answer may still come: start afresh */
	return rc;
}

static int tcp_call_obj(struct spk_conn *conn, uint32_t method, const spoke_serializer *req_ser,
			const void *req, const spoke_serializer *rep_ser, void *rep,
			int64_t deadline)
{
	struct tcp_conn *c = tcp_of(conn);
	const uint8_t *p;
	struct spk_hdr h;
	spoke_view v;
	spoke_buf b;
	uint64_t id;
	int rc = usable_chan(c, deadline);

	if (rc < 0)
		return rc;
	id = ++c->next_id;
	spk_sync_begin(c->ch, &b);
	rc = req_ser ? req_ser->pack(&b, req) : 0;
	if (rc >= 0)
		rc = b.err;
	if (rc < 0) /* nothing sent: the channel is as it was */
		return spk_ser_failed(rc, "packing the request", c->args.name);
	c->ch->call_ttl_ms = spk_ttl_of(deadline);
	rc = spk_sync_send_buf(c->ch, &b, SPK_CALL, id, (int32_t)method, deadline);
	if (rc == 0)
		rc = recv_reply(c, id, &h, deadline);
	if (rc == 0)
		rc = spk_sync_recv_view(c->ch, h.len, &p, deadline);
	if (rc == 0 && rep_ser) {
		spoke_view_init(&v, p, h.len);
		rc = rep_ser->unpack(&v, rep);
		if (rc >= 0)
			rc = spoke_view_error(&v);
		if (rc < 0)
			rc = spk_ser_failed(rc, "unpacking the reply", c->args.name);
	}
	if (rc == SPOKE_ETIMEDOUT)
		spk_sync_break(c->ch, rc);
	return rc;
}

/* ---- streams ---- */

static int tcp_stream_start(struct spk_conn *conn, uint32_t method, const void *req,
			    size_t req_len, int64_t deadline)
{
	struct tcp_conn *c = tcp_of(conn);
	int rc = usable_chan(c, deadline);

	if (rc < 0)
		return rc;
	c->stream_id = ++c->next_id;
	c->chunk_read = c->last_chunk = c->eof_next = false;
	c->ch->call_ttl_ms = 0; /* a stream's reader waits read by read */
	rc = spk_sync_send_flags(c->ch, SPK_CALL, SPK_CF_STREAM, c->stream_id, (int32_t)method, req,
				 req_len, deadline);
	if (rc == SPOKE_ETIMEDOUT)
		spk_sync_break(c->ch, rc);
	return rc;
}

/* Reads the header of the stream's next frame (a timeout with nothing read
 * leaves the stream as it was): 0 for a chunk to read (chunk_len), or the
 * stream's end (SPOKE_EOF, or its failure). */
static int stream_header(struct tcp_conn *c, int64_t deadline)
{
	struct spk_hdr h;
	const uint8_t *p;
	int rc;

	if (!c->ch || c->ch->broken)
		return spk_fail(SPOKE_EDEAD, "actor %s at %s: the stream's connection broke",
				c->args.name, c->args.addr);
	rc = spk_sync_recv_hdr(c->ch, &h, deadline);
	if (rc == SPOKE_EDEAD)
		return spk_fail(rc, "actor %s at %s: connection lost mid-stream (did the actor "
				"die?)", c->args.name, c->args.addr);
	if (rc < 0)
		return rc;
	if ((h.type != SPK_CHUNK && h.type != SPK_REPLY) || h.id != c->stream_id)
		return spk_sync_break(c->ch, spk_fail(SPOKE_EPROTO, "actor %s answered a stream "
						      "out of turn (%s)", c->args.name,
						      spk_type_name(h.type)));
	if (h.type == SPK_REPLY && h.aux < 0) {
		rc = spk_sync_recv_view(c->ch, h.len, &p, deadline);
		return rc < 0 ? rc : spk_reply_error_unpack(h.aux, p, h.len);
	}
	if (h.type == SPK_REPLY && h.len == 0)
		return SPOKE_EOF;
	c->chunk_read = true;
	c->chunk_len = h.len;
	c->last_chunk = h.type == SPK_REPLY;
	return 0;
}

static int tcp_stream_next(struct spk_conn *conn, void *buf, size_t cap, size_t *len,
			   int64_t deadline)
{
	struct tcp_conn *c = tcp_of(conn);
	int rc;

	if (c->eof_next) {
		c->eof_next = false;
		return SPOKE_EOF;
	}
	if (!c->chunk_read) {
		rc = stream_header(c, deadline);
		if (rc < 0)
			return rc;
	}
	*len = c->chunk_len;
	if (c->chunk_len > cap)
		return spk_no_room(c->chunk_len, cap); /* kept for a call with room */
	/* A chunk begun is received within the client's default timeout,
	 * whatever the reader's (a short one polls): cut mid-frame, the
	 * channel could not go on. */
	if (spk_ms_left(deadline) < c->args.timeout_ms)
		deadline = spk_now_us() + (int64_t)c->args.timeout_ms * 1000;
	rc = spk_sync_recv_copy(c->ch, buf, c->chunk_len, deadline);
	if (rc < 0)
		return rc;
	c->chunk_read = false;
	c->eof_next = c->last_chunk;
	return 0;
}

static void tcp_abandon(struct spk_conn *conn)
{
	struct tcp_conn *c = tcp_of(conn);

	drop_chan(c);
	c->abandoned = true;
}

/* ---- asynchronous calls ---- */

static struct inflight *ring_at(struct tcp_conn *c, size_t i)
{
	return &c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
}

static void ring_pop(struct tcp_conn *c)
{
	c->ring_head = (c->ring_head + 1) & (c->ring_cap - 1);
	c->ring_count--;
}

/* Room for one more call in flight: the ring doubles when a window outgrows
 * every one before it, and is kept. */
static int ring_reserve(struct tcp_conn *c)
{
	size_t cap = c->ring_cap ? 2 * c->ring_cap : 64;
	struct inflight *r;

	if (c->ring_count < c->ring_cap)
		return 0;
	r = malloc(cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < c->ring_count; i++)
		r[i] = *ring_at(c, i);
	free(c->ring);
	c->ring = r;
	c->ring_cap = cap;
	c->ring_head = 0;
	return 0;
}

/* The entry of f, a future of this connection started and not complete. */
static struct inflight *ring_find(struct tcp_conn *c, const spoke_future *f)
{
	uint64_t i = c->ring_count ? f->id_ - ring_at(c, 0)->id : 0;

	return i < c->ring_count && ring_at(c, i)->f == f ? ring_at(c, i) : NULL;
}

/* Completes every call in flight with rc (the channel broke, or the
 * connection closes). */
static void fail_all(struct tcp_conn *c, int rc)
{
	for (; c->ring_count; ring_pop(c))
		if (ring_at(c, 0)->f)
			spk_future_complete(ring_at(c, 0)->f, rc);
}

/* Receives the reply of the oldest call in flight into its future, or drops
 * it (a future given up).  SPOKE_ETIMEDOUT with nothing consumed leaves the
 * call in flight; a broken channel fails every call in flight. */
static int complete_head(struct tcp_conn *c, int64_t deadline)
{
	struct spk_sync_conn *ch = c->ch;
	struct inflight e;
	struct spk_hdr h;
	int rc;

	if (!c->ring_count) { /* bytes no call asked for: the end, or garbage */
		rc = spk_sync_recv_hdr(ch, &h, deadline);
		return rc < 0 ? rc : spk_sync_break(ch, spk_fail(SPOKE_EPROTO,
						    "actor %s answered no call", c->args.name));
	}
	e = *ring_at(c, 0);
	rc = recv_reply(c, e.id, &h, deadline);
	if (rc == SPOKE_ETIMEDOUT && !ch->broken)
		return rc;
	/* A reply begun is received whole, whatever the waiter's own deadline:
	 * stopping mid-frame would break the channel and every call on it. */
	deadline = spk_now_us() + c->args.timeout_ms * 1000LL;
	if (rc == 0 && (!e.f || h.len > e.f->cap_)) {
		rc = spk_sync_skip(ch, h.len, deadline);
		if (rc == 0 && e.f)
			rc = spk_no_room(h.len, e.f->cap_);
	} else if (rc == 0) {
		rc = spk_sync_recv_copy(ch, e.f->reply_, h.len, deadline);
	}
	if (ch->broken) {
		fail_all(c, ch->broken);
		return ch->broken;
	}
	ring_pop(c);
	if (e.f) {
		e.f->reply_len = rc == 0 || rc == SPOKE_ENOSPC ? h.len : 0;
		spk_future_complete(e.f, rc);
	}
	return 0;
}

/* sync_conn.h's drain: a send that waits for room receives a reply meanwhile. */
static int drain(void *arg, int64_t deadline)
{
	return complete_head(arg, deadline);
}

/* Sends request f, or queues it when other calls are in flight: a queued
 * request goes out with the next large one, once ASYNC_FLUSH bytes are
 * queued, or when a wait on any future of the connection has no reply left
 * in its receive buffer.  The first call into an idle pipe goes at once. */
static int async_send(struct tcp_conn *c, spoke_future *f, uint32_t method, const void *req,
		      size_t req_len, int64_t deadline)
{
	struct spk_sync_conn *ch = c->ch;
	int rc;

	ch->call_ttl_ms = spk_ttl_of(deadline);
	if (req_len > ASYNC_SMALL) {
		rc = spk_sync_flush(ch, &c->async_queued, deadline);
		if (rc == 0)
			rc = spk_sync_send(ch, SPK_CALL, f->id_, (int32_t)method, req, req_len,
					   deadline);
	} else {
		rc = spk_sync_queue(ch, &c->async_queued, SPK_CALL, f->id_, (int32_t)method, req,
				    req_len);
		if (rc < 0 || (c->ring_count && c->async_queued < ASYNC_FLUSH))
			return rc;
		rc = spk_sync_flush(ch, &c->async_queued, deadline);
	}
	return rc;
}

static int tcp_call_async(struct spk_conn *conn, uint32_t method, const void *req,
			  size_t req_len, void *reply, size_t cap, spoke_future *f,
			  int64_t deadline)
{
	struct tcp_conn *c = tcp_of(conn);
	int rc = 0;

	(void)reply, (void)cap; /* f has them */
	pthread_mutex_lock(&c->lock);
	if (c->ch && c->ch->broken) {
		fail_all(c, c->ch->broken);
		c->async_queued = 0;
	}
	if (!c->ch || c->ch->broken)
		rc = usable_chan(c, deadline);
	if (rc == 0) {
		c->ch->drain = drain; /* the pipelined connection's alone */
		c->ch->drain_arg = c;
		rc = ring_reserve(c);
	}
	if (rc < 0)
		goto out_unlock;
	/* In the ring before it is sent: its reply may come while it is being
	 * sent (a refusal of its size, say), and the send's drain takes it. */
	c->ch->poll_us = atomic_load(&c->poll_us);
	f->id_ = ++c->async_id;
	*ring_at(c, c->ring_count++) = (struct inflight){ f->id_, f };
	rc = async_send(c, f, method, req, req_len, deadline);
	if (rc < 0 && c->ch->broken) {
		fail_all(c, rc);
	} else if (rc < 0) { /* nothing of it went out: it was never in flight */
		c->ring_count--;
		c->async_id--;
	}
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static bool tcp_in_flight(struct spk_conn *conn, const spoke_future *f)
{
	struct tcp_conn *c = tcp_of(conn);
	bool found = false;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->ring_count && !found; i++)
		found = ring_at(c, i)->f == f;
	pthread_mutex_unlock(&c->lock);
	return found;
}

static int tcp_future_wait(struct spk_conn *conn, spoke_future *f, int64_t deadline)
{
	struct tcp_conn *c = tcp_of(conn);
	struct inflight *e;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	while (!f->done_ && rc == 0) {
		/* Never sleep on a reply with requests still queued: send them
		 * before the receive buffer runs dry. */
		struct spk_sync_conn *ch = c->ch;

		if (!ch)
			break;
		if (c->async_queued && ch->rlen - ch->rpos < SPK_HDR_SIZE) {
			rc = spk_sync_flush(ch, &c->async_queued, deadline);
			if (rc < 0)
				fail_all(c, rc);
			continue;
		}
		rc = complete_head(c, deadline);
	}
	if (!f->done_ && rc == SPOKE_ETIMEDOUT && (e = ring_find(c, f))) {
		e->f = NULL; /* the call keeps its place; its reply will be dropped */
		spk_future_complete(f, spk_fail(rc, "actor %s: no reply in time; the call was "
						"given up", c->args.name));
	}
	pthread_mutex_unlock(&c->lock);
	return f->done_ ? f->status : rc;
}

/* Gives f up at once (SPOKE_ECANCELED; its call keeps its place in the
 * ring, and its reply is dropped) and tells the worker with a CANCEL,
 * which goes behind the CALL even if that is still queued here. */
static int tcp_future_cancel(struct spk_conn *conn, spoke_future *f, int64_t deadline)
{
	struct tcp_conn *c = tcp_of(conn);
	struct inflight *e;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	e = f->done_ ? NULL : ring_find(c, f);
	if (e) {
		e->f = NULL;
		spk_future_complete(f, spk_fail(SPOKE_ECANCELED, "actor %s: the call was cancelled",
						c->args.name));
		if (c->ch && !c->ch->broken) {
			rc = spk_sync_queue(c->ch, &c->async_queued, SPK_CANCEL, f->id_, 0, NULL, 0);
			if (rc == 0)
				rc = spk_sync_flush(c->ch, &c->async_queued, deadline);
			if (rc < 0) /* the worker will see the channel go instead */
				fail_all(c, rc);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void tcp_close(struct spk_conn *conn)
{
	struct tcp_conn *c = tcp_of(conn);

	pthread_mutex_lock(&c->lock);
	if (c->ring_count) {
		spk_fail(SPOKE_ECLOSED, "actor %s: the handle was closed with the call in flight",
			 c->args.name);
		fail_all(c, SPOKE_ECLOSED);
	}
	pthread_mutex_unlock(&c->lock);
	drop_chan(c);
	free(c->ring);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const struct spk_transport spk_tcp_transport = {
	.name = "tcp",
	.usable = tcp_usable,
	.connect = tcp_connect,
	.close = tcp_close,
	.describe = tcp_describe,
	.set_poll = tcp_set_poll,
	.call = tcp_call,
	.call_obj = tcp_call_obj,
	.call_async = tcp_call_async,
	.future_wait = tcp_future_wait,
	.in_flight = tcp_in_flight,
	.future_cancel = tcp_future_cancel,
	.stream_start = tcp_stream_start,
	.stream_next = tcp_stream_next,
	.abandon = tcp_abandon,
};

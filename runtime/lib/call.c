/* call.c - actor handles and remote calls, straight from client to worker.
 *
 * A handle keeps a pool of authenticated channels to the actor's worker.  A
 * synchronous call claims a free channel with one compare-and-swap (no
 * lock), sends and receives on the caller's thread and gives the channel
 * back; a pool slot is connected (and allocated) the first time that many
 * calls run at once.  Asynchronous calls share one pipelined channel: the
 * worker answers in order, so the calls in flight wait in a FIFO (a ring
 * the handle owns) and complete in turn.  A sender that finds the socket
 * full receives the replies that are due meanwhile (chan.h's drain), so a
 * worker that stops reading until its replies are read never deadlocks a
 * window.  A wait that times out gives its future up: the ring keeps the
 * call's place with no future, and its reply is dropped when it comes.
 *
 * The handle was opened on one incarnation of its actor (the hub's id of
 * that start): every handshake names it (auth.h), so only that worker can
 * answer.  A channel (or an RDMA queue pair) that broke is not simply
 * reconnected: the hub is asked
 * first whether that incarnation still runs (check_alive); if it died, or
 * another incarnation took the name, the call fails with SPOKE_EDEAD, and
 * so does every later reconnect of the handle.
 *
 * Over RDMA (chosen when the handle opens, see client.h) the pool's slots
 * hold queue pairs instead (rdma_client.c), connected the same way, on
 * first need; asynchronous calls pipeline on slot 0's, a->rdma. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <spoke/actor.h>
#include <spoke/errors.h>

#include "clock.h"
#include "client_priv.h"
#include "errmsg.h"
#include "log.h"
#include "proto.h"
#include "transport/rdma/rdma.h"

#define POOL_MAX 64

struct pool_slot {
	atomic_int busy;
	struct spk_chan *ch;   /* over TCP */
	struct spk_rconn *rc;  /* over RDMA: a queue pair of its own */
	uint64_t next_id;
};

/* An asynchronous call in flight over TCP: its id, and the future it
 * completes, or NULL once a wait gave the future up (its reply is dropped). */
struct inflight {
	uint64_t id;
	spoke_future *f;
};

struct spoke_actor {
	spoke_client *client;
	char name[SPOKE_ACTOR_NAME_MAX];
	struct spk_endpoint ep;
	char ident[SPK_IDENT_MAX]; /* its worker's, in handshakes */
	atomic_int broke;          /* a channel broke: connects ask the hub first */
	atomic_int dead;           /* the hub said that incarnation is gone */
	atomic_int poll_us;
	struct pool_slot pool[POOL_MAX];
	pthread_mutex_t async_lock; /* guards everything below */
	struct spk_chan *async_ch;
	struct inflight *ring; /* calls in flight, oldest first, ring_cap long (a
				  power of two: positions wrap with a mask) */
	size_t ring_cap, ring_head, ring_count;
	uint64_t async_id; /* the last call's: ids in the ring are consecutive */
	size_t async_queued; /* bytes of small requests not sent yet */
	struct spk_rconn *rdma; /* the RDMA connection, when calls go over RDMA */
};

/* Auto mode gives RDMA this long to come up before it settles for TCP. */
#define AUTO_RDMA_MS 3000

/* Small asynchronous requests behind others in flight are queued and go out
 * together, one send for many calls (see async_send). */
#define ASYNC_SMALL (4u << 10) /* larger requests are sent at once, in place */
#define ASYNC_FLUSH (8u << 10) /* queued bytes that go out without waiting */

static __thread unsigned slot_hint;

static int connect_chan(spoke_actor *a, struct spk_chan **out, int64_t deadline)
{
	struct spk_chan *ch = malloc(sizeof(*ch));
	int rc;

	if (!ch)
		return -ENOMEM;
	rc = spk_chan_open(ch, a->ep.addr, a->client->token, a->ident, atomic_load(&a->poll_us),
			   deadline);
	if (rc < 0) {
		free(ch);
		if (rc == -ECONNREFUSED || rc == -ECONNRESET)
			return spk_fail(SPOKE_EDEAD, "actor %s at %s does not answer (%s)", a->name,
					a->ep.addr, strerror(-rc));
		return rc;
	}
	*out = ch;
	return 0;
}

static void drop_chan(struct spk_chan **ch)
{
	if (*ch) {
		spk_chan_close(*ch);
		free(*ch);
		*ch = NULL;
	}
}

/* Before a broken connection is replaced: asks the hub whether the
 * incarnation this handle was opened on still runs.  0 if it does; else
 * SPOKE_EDEAD (remembered: it never comes back), or the error that kept
 * the hub from answering (SPOKE_EHUB, SPOKE_ECLOSED...), never a blind
 * reconnect to the old address. */
static int check_alive(spoke_actor *a, int64_t deadline)
{
	struct spk_endpoint ep;
	char why[256];
	int rc;

	if (atomic_load(&a->dead))
		return spk_fail(SPOKE_EDEAD, "actor %s: the worker this handle was opened on "
				"(incarnation %llu) is gone; open a new handle", a->name,
				(unsigned long long)a->ep.incarnation);
	rc = spk_client_lookup(a->client, a->name, &ep, spk_ms_left(deadline));
	if (rc == 0 && ep.incarnation == a->ep.incarnation)
		return 0;
	if (rc < 0 && rc != SPOKE_EDEAD && rc != SPOKE_ENOACTOR)
		return rc;
	atomic_store(&a->dead, 1);
	if (rc == 0)
		return spk_fail(SPOKE_EDEAD, "actor %s was restarted (incarnation %llu, this handle's "
				"was %llu): open a new handle", a->name,
				(unsigned long long)ep.incarnation,
				(unsigned long long)a->ep.incarnation);
	snprintf(why, sizeof(why), "%s", spoke_errmsg());
	return spk_fail(SPOKE_EDEAD, "%s (the hub's answer before reconnecting)", why);
}

/* Connects *ch if it is missing or broke; once any channel of the handle
 * broke, only after the hub said that its worker still runs. */
static int reconnect_chan(spoke_actor *a, struct spk_chan **ch, int64_t deadline)
{
	int rc = 0;

	if (*ch && (*ch)->broken) {
		drop_chan(ch);
		atomic_store(&a->broke, 1);
	}
	if (*ch)
		return 0;
	if (atomic_load(&a->broke))
		rc = check_alive(a, deadline);
	return rc < 0 ? rc : connect_chan(a, ch, deadline);
}

/* rdma.h's reconnect check: a queue pair of the handle broke. */
static int rdma_check_alive(void *arg, int64_t deadline)
{
	spoke_actor *a = arg;

	atomic_store(&a->broke, 1);
	return check_alive(a, deadline);
}

/* Connects a queue pair, like reconnect_chan a channel: once any connection
 * of the handle broke, only after the hub said that its worker still runs. */
static int connect_rdma(spoke_actor *a, struct spk_rconn **out, int64_t deadline)
{
	struct spk_rconn *rc = NULL;
	int err = atomic_load(&a->broke) ? check_alive(a, deadline) : 0;

	if (err < 0)
		return err;
	err = spk_rdma_connect(&rc, a->ep.addr, a->client->token, a->ident,
			       atomic_load(&a->poll_us), deadline);
	if (err == 0)
		spk_rdma_set_reconnect_check(rc, rdma_check_alive, a);
	__atomic_store_n(out, err < 0 ? NULL : rc, __ATOMIC_RELEASE); /* set_poll reads it */
	if (err == -ECONNREFUSED || err == -ECONNRESET)
		return spk_fail(SPOKE_EDEAD, "actor %s at %s does not answer (%s)", a->name,
				a->ep.addr, strerror(-err));
	return err;
}

static int acquire(spoke_actor *a, struct pool_slot **out, int64_t deadline)
{
	for (unsigned i = 0; i < POOL_MAX; i++) {
		unsigned idx = (slot_hint + i) % POOL_MAX;
		struct pool_slot *s = &a->pool[idx];
		int expected = 0;
		int rc;

		if (!atomic_compare_exchange_strong(&s->busy, &expected, 1))
			continue;
		slot_hint = idx;
		if (a->rdma) {
			rc = s->rc ? 0 : connect_rdma(a, &s->rc, deadline);
			if (rc < 0) {
				atomic_store(&s->busy, 0);
				return rc;
			}
			*out = s;
			return 0;
		}
		rc = reconnect_chan(a, &s->ch, deadline);
		if (rc < 0) {
			atomic_store(&s->busy, 0);
			return rc;
		}
		s->ch->poll_us = atomic_load_explicit(&a->poll_us, memory_order_relaxed);
		*out = s;
		return 0;
	}
	return spk_fail(-EAGAIN, "more than %d calls at once on one handle of actor %s", POOL_MAX,
			a->name);
}

static void release(struct pool_slot *s)
{
	atomic_store_explicit(&s->busy, 0, memory_order_release);
}

/* Reads a REPLY header for request id, waiting no later than deadline; a
 * failed status leaves its message in spoke_errmsg() (and a method's own
 * code in spoke_method_status()) and consumes the payload. */
static int recv_reply(spoke_actor *a, struct spk_chan *ch, uint64_t id, struct spk_hdr *h,
		      int64_t deadline)
{
	const uint8_t *p;
	int rc = spk_chan_recv_hdr(ch, h, deadline);

	if (rc < 0) {
		if (rc == SPOKE_EDEAD)
			spk_fail(rc, "actor %s at %s: connection lost (did the actor die?)", a->name,
				 a->ep.addr);
		return rc;
	}
	if (h->type != SPK_REPLY || h->id != id)
		return spk_chan_break(ch, spk_fail(SPOKE_EPROTO, "actor %s answered out of turn",
						   a->name));
	if (h->aux >= 0) {
		spk_errmsg_clear(); /* and spoke_method_status() */
		return 0;
	}
	rc = spk_chan_recv_view(ch, h->len, &p, deadline);
	if (rc < 0)
		return rc;
	return spk_reply_error_unpack(h->aux, p, h->len);
}

int spk_transport_from_env(void)
{
	const char *s = getenv("SPOKE_TRANSPORT");

	if (!s || !*s || strcmp(s, "auto") == 0)
		return SPK_TRANSPORT_AUTO;
	if (strcmp(s, "tcp") == 0)
		return SPK_TRANSPORT_TCP;
	if (strcmp(s, "rdma") == 0)
		return SPK_TRANSPORT_RDMA;
	return spk_fail(SPOKE_EINVAL, "SPOKE_TRANSPORT=%s: expected auto, tcp or rdma", s);
}

/* Picks the handle's transport ($SPOKE_TRANSPORT) and says which, once. */
static int choose_transport(spoke_actor *a, int64_t deadline)
{
	int64_t auto_deadline = spk_now_us() + AUTO_RDMA_MS * 1000LL;
	int mode = spk_transport_from_env();
	char why[512];
	int rc;

	if (mode < 0)
		return mode;
	if (mode == SPK_TRANSPORT_TCP) {
		spk_info("actor %s at %s: transport tcp (SPOKE_TRANSPORT=tcp)", a->name, a->ep.addr);
		return 0;
	}
	rc = connect_rdma(a, &a->rdma,
			  mode == SPK_TRANSPORT_AUTO && auto_deadline < deadline ? auto_deadline
										 : deadline);
	a->pool[0].rc = a->rdma;
	if (rc == 0) {
		spk_info("actor %s at %s: transport rdma (%s)", a->name, a->ep.addr,
			 spk_rdma_device(a->rdma));
		return 0;
	}
	snprintf(why, sizeof(why), "%s", spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc));
	if (mode == SPK_TRANSPORT_RDMA)
		return spk_fail(SPOKE_ERDMA, "actor %s at %s: SPOKE_TRANSPORT=rdma, but %s", a->name,
				a->ep.addr, why);
	/* A node without a device falling back is routine; one with a device is not. */
	spk_log(spk_rdma_local_check() == 0 ? SPK_LOG_WARN : SPK_LOG_INFO,
		"actor %s at %s: transport tcp (RDMA: %s)", a->name, a->ep.addr, why);
	spk_errmsg_clear();
	return 0;
}

int spoke_actor_open(spoke_client *c, const char *name, spoke_actor **out, int timeout_ms)
{
	const char *self = spoke_self_name();
	int64_t deadline;
	spoke_actor *a;
	int rc;

	spk_api_enter();
	if (!c || !name || !out)
		return spk_api_ret(spk_api_null(__func__, !c ? "c" : !name ? "name" : "out"));
	*out = NULL;
	if (!*name || strlen(name) >= SPOKE_ACTOR_NAME_MAX)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "actor name empty or longer than %d bytes",
					    SPOKE_ACTOR_NAME_MAX - 1));
	deadline = spk_client_deadline(c, timeout_ms);
	a = calloc(1, sizeof(*a));
	if (!a)
		return spk_api_ret(-ENOMEM);
	spk_client_hold(c); /* from here on, c outlives a spoke_client_close */
	a->client = c;
	snprintf(a->name, sizeof(a->name), "%s", name);
	atomic_init(&a->poll_us, c->poll_us);
	rc = spk_client_lookup(c, name, &a->ep, spk_ms_left(deadline));
	if (rc < 0)
		goto out_free;
	spk_ident_actor(a->ident, name, a->ep.incarnation);
	/* An actor's call to itself would wait for the method making it. */
	if (self && strcmp(self, name) == 0 && a->ep.pid == (uint32_t)getpid()) {
		rc = spk_fail(SPOKE_ESELF, "actor %s cannot call itself: its worker runs one method "
			      "at a time, so the call would wait for the method that makes it", name);
		goto out_free;
	}
	/* Connect the first channel now: errors show here, not at the first call. */
	rc = connect_chan(a, &a->pool[0].ch, deadline);
	if (rc < 0)
		goto out_free;
	rc = choose_transport(a, deadline);
	if (rc < 0)
		goto out_close;
	pthread_mutex_init(&a->async_lock, NULL);
	*out = a;
	return spk_api_ret(0);
out_close:
	drop_chan(&a->pool[0].ch);
out_free:
	spk_client_drop(c);
	free(a);
	return spk_api_ret(rc);
}

const char *spoke_actor_transport(const spoke_actor *a)
{
	return !a ? "none" : a->rdma ? "rdma" : "tcp";
}

int spoke_actor_init_rdma(spoke_actor *a, int timeout_ms)
{
	int64_t deadline;
	int rc = 0;

	spk_api_enter();
	if (!a)
		return spk_api_ret(spk_api_null(__func__, "a"));
	deadline = spk_client_deadline(a->client, timeout_ms);
	pthread_mutex_lock(&a->async_lock);
	if (a->ring_count)
		rc = spk_fail(SPOKE_EINVAL, "actor %s: asynchronous calls in flight over TCP", a->name);
	else if (!a->rdma)
		rc = connect_rdma(a, &a->rdma, deadline);
	a->pool[0].rc = a->rdma;
	pthread_mutex_unlock(&a->async_lock);
	if (rc < 0 && rc != SPOKE_EINVAL)
		return spk_api_ret(spk_fail(SPOKE_ERDMA, "actor %s at %s: %s", a->name, a->ep.addr,
					    spoke_errmsg()));
	if (rc == 0)
		spk_info("actor %s at %s: transport rdma (%s)", a->name, a->ep.addr,
			 spk_rdma_device(a->rdma));
	return spk_api_ret(rc);
}

int spoke_mr_register(spoke_actor *a, void *addr, size_t len, spoke_mr *mr)
{
	spk_api_enter();
	if (!a || !addr || !mr)
		return spk_api_ret(spk_api_null(__func__, !a ? "a" : !addr ? "addr" : "mr"));
	memset(mr, 0, sizeof(*mr));
	if (!len)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "%s: len is 0", __func__));
	mr->addr = addr;
	mr->len = len;
	if (!a->rdma)
		return spk_api_ret(0);
	return spk_api_ret(spk_rdma_mr_register(a->rdma, addr, len, &mr->mr_, &mr->lkey_,
						&mr->rkey_));
}

void spoke_mr_deregister(spoke_mr *mr)
{
	if (mr && mr->mr_)
		spk_rdma_mr_deregister(mr->mr_);
	if (mr)
		memset(mr, 0, sizeof(*mr));
}

int spk_no_room(size_t len, size_t cap)
{
	return spk_fail(SPOKE_ENOSPC, "reply of %zu bytes, buffer of %zu", len, cap);
}

/* The arguments of a call: a handle, and memory behind each length given. */
static int check_call(const char *func, const spoke_actor *a, const void *req, size_t req_len,
		      const void *reply, size_t cap)
{
	if (!a)
		return spk_api_null(func, "a");
	if (!req && req_len)
		return spk_api_null(func, "req");
	if (!reply && cap)
		return spk_api_null(func, "reply");
	return 0;
}

int spoke_call_mr(spoke_actor *a, uint32_t method, const spoke_mr *req, size_t req_off,
		  size_t req_len, spoke_mr *rep, size_t rep_off, size_t cap, size_t *reply_len,
		  int timeout_ms)
{
	spk_api_enter();
	if (!a)
		return spk_api_ret(spk_api_null(__func__, "a"));
	if ((req && (req_off > req->len || req_len > req->len - req_off)) ||
	    (!req && req_len) || (rep && (rep_off > rep->len || cap > rep->len - rep_off)) ||
	    (!rep && cap))
		return spk_api_ret(spk_fail(SPOKE_EINVAL,
					    "spoke_call_mr: range outside the registered memory"));
	/* Memory registered while the handle was on TCP is only remembered. */
	if (a->rdma && (!req || req->mr_) && (!rep || rep->mr_)) {
		int64_t deadline = spk_client_deadline(a->client, timeout_ms);
		struct pool_slot *s;
		int rc = acquire(a, &s, deadline);

		if (rc < 0)
			return spk_api_ret(rc);
		rc = spk_rdma_call_mr(s->rc, method, req, req_off, req_len, rep, rep_off, cap,
				      reply_len, deadline);
		release(s);
		return spk_api_ret(rc);
	}
	return spoke_call(a, method, req ? (const uint8_t *)req->addr + req_off : NULL, req_len,
			  rep ? (uint8_t *)rep->addr + rep_off : NULL, cap, reply_len, timeout_ms);
}

void spoke_actor_set_poll(spoke_actor *a, int poll_us)
{
	if (!a)
		return;
	atomic_store(&a->poll_us, poll_us < 0 ? 0 : poll_us);
	for (int i = 0; i < POOL_MAX; i++) {
		struct spk_rconn *rc = __atomic_load_n(&a->pool[i].rc, __ATOMIC_ACQUIRE);

		if (rc)
			spk_rdma_set_poll(rc, poll_us < 0 ? 0 : poll_us);
	}
}

int spoke_call(spoke_actor *a, uint32_t method, const void *req, size_t req_len, void *reply,
	       size_t cap, size_t *reply_len, int timeout_ms)
{
	int64_t deadline;
	struct pool_slot *s;
	struct spk_hdr h;
	uint64_t id;
	int rc;

	spk_api_enter();
	rc = check_call(__func__, a, req, req_len, reply, cap);
	if (rc < 0)
		return spk_api_ret(rc);
	deadline = spk_client_deadline(a->client, timeout_ms);
	rc = acquire(a, &s, deadline);
	if (rc < 0)
		return spk_api_ret(rc);
	if (s->rc) {
		rc = spk_rdma_call(s->rc, method, req, req_len, reply, cap, reply_len, deadline);
		release(s);
		return spk_api_ret(rc);
	}
	id = ++s->next_id;
	rc = spk_chan_send(s->ch, SPK_CALL, id, (int32_t)method, req, req_len, deadline);
	if (rc == 0)
		rc = recv_reply(a, s->ch, id, &h, deadline);
	if (rc == 0) {
		if (reply_len)
			*reply_len = h.len;
		if (h.len > cap) {
			rc = spk_chan_skip(s->ch, h.len, deadline);
			if (rc == 0)
				rc = spk_no_room(h.len, cap);
		} else {
			rc = spk_chan_recv_copy(s->ch, reply, h.len, deadline);
		}
	}
	if (rc == SPOKE_ETIMEDOUT)
		spk_chan_break(s->ch, rc); /* its answer may still come: start afresh */
	release(s);
	return spk_api_ret(rc);
}

int spk_ser_failed(int rc, const char *what, const char *who)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc));
	return spk_fail(rc, "actor %s: %s failed: %s", who, what, why);
}

int spoke_call_obj(spoke_actor *a, uint32_t method, const spoke_serializer *req_ser,
		   const void *req, const spoke_serializer *rep_ser, void *rep, int timeout_ms)
{
	int64_t deadline;
	struct pool_slot *s;
	const uint8_t *p;
	struct spk_hdr h;
	spoke_view v;
	spoke_buf b;
	uint64_t id;
	int rc;

	spk_api_enter();
	if (!a)
		return spk_api_ret(spk_api_null(__func__, "a"));
	if (req_ser && !req_ser->pack)
		return spk_api_ret(spk_api_null(__func__, "req_ser->pack"));
	if (rep_ser && !rep_ser->unpack)
		return spk_api_ret(spk_api_null(__func__, "rep_ser->unpack"));
	deadline = spk_client_deadline(a->client, timeout_ms);
	rc = acquire(a, &s, deadline);
	if (rc < 0)
		return spk_api_ret(rc);
	if (s->rc) {
		rc = spk_rdma_call_obj(s->rc, method, req_ser, req, rep_ser, rep, deadline);
		release(s);
		return spk_api_ret(rc);
	}
	id = ++s->next_id;
	spk_chan_begin(s->ch, &b);
	rc = req_ser ? req_ser->pack(&b, req) : 0;
	if (rc >= 0)
		rc = b.err;
	if (rc < 0) { /* nothing sent: the channel is as it was */
		release(s);
		return spk_api_ret(spk_ser_failed(rc, "packing the request", a->name));
	}
	rc = spk_chan_send_buf(s->ch, &b, SPK_CALL, id, (int32_t)method, deadline);
	if (rc == 0)
		rc = recv_reply(a, s->ch, id, &h, deadline);
	if (rc == 0)
		rc = spk_chan_recv_view(s->ch, h.len, &p, deadline);
	if (rc == 0 && rep_ser) {
		spoke_view_init(&v, p, h.len);
		rc = rep_ser->unpack(&v, rep);
		if (rc >= 0)
			rc = spoke_view_error(&v);
		if (rc < 0)
			rc = spk_ser_failed(rc, "unpacking the reply", a->name);
	}
	if (rc == SPOKE_ETIMEDOUT)
		spk_chan_break(s->ch, rc);
	release(s);
	return spk_api_ret(rc);
}

/* ---- asynchronous calls over TCP ---- */

static struct inflight *ring_at(spoke_actor *a, size_t i)
{
	return &a->ring[(a->ring_head + i) & (a->ring_cap - 1)];
}

static void ring_pop(spoke_actor *a)
{
	a->ring_head = (a->ring_head + 1) & (a->ring_cap - 1);
	a->ring_count--;
}

/* Room for one more call in flight: the ring doubles when a window outgrows
 * every one before it, and is kept. */
static int ring_reserve(spoke_actor *a)
{
	size_t cap = a->ring_cap ? 2 * a->ring_cap : 64;
	struct inflight *r;

	if (a->ring_count < a->ring_cap)
		return 0;
	r = malloc(cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < a->ring_count; i++)
		r[i] = *ring_at(a, i);
	free(a->ring);
	a->ring = r;
	a->ring_cap = cap;
	a->ring_head = 0;
	return 0;
}

/* The entry of f, a future of this handle started and not complete. */
static struct inflight *ring_find(spoke_actor *a, const spoke_future *f)
{
	uint64_t i = a->ring_count ? f->id_ - ring_at(a, 0)->id : 0;

	return i < a->ring_count && ring_at(a, i)->f == f ? ring_at(a, i) : NULL;
}

/* Completes f with status: a failure's message (this thread's now) goes
 * with it, into its reply buffer (client.h), but for SPOKE_ENOSPC, whose
 * reply_len is the size of the reply that did not fit. */
static void complete(spoke_future *f, int status)
{
	f->status = status;
	if (status < 0 && status != SPOKE_ENOSPC)
		f->reply_len = spk_errmsg_keep(&f->method_status_, f->reply_, f->cap_);
	__atomic_store_n(&f->done_, 1, __ATOMIC_RELEASE);
}

/* Completes every call in flight with rc (the channel broke, or the handle
 * closes). */
static void fail_all(spoke_actor *a, int rc)
{
	for (; a->ring_count; ring_pop(a))
		if (ring_at(a, 0)->f)
			complete(ring_at(a, 0)->f, rc);
}

/* Receives the reply of the oldest call in flight into its future, or drops
 * it (a future given up).  SPOKE_ETIMEDOUT with nothing consumed leaves the
 * call in flight; a broken channel fails every call in flight. */
static int complete_head(spoke_actor *a, int64_t deadline)
{
	struct spk_chan *ch = a->async_ch;
	struct inflight e;
	struct spk_hdr h;
	int rc;

	if (!a->ring_count) { /* bytes no call asked for: the end, or garbage */
		rc = spk_chan_recv_hdr(ch, &h, deadline);
		return rc < 0 ? rc : spk_chan_break(ch, spk_fail(SPOKE_EPROTO,
						    "actor %s answered no call", a->name));
	}
	e = *ring_at(a, 0);
	rc = recv_reply(a, ch, e.id, &h, deadline);
	if (rc == SPOKE_ETIMEDOUT && !ch->broken)
		return rc;
	/* A reply begun is received whole, whatever the waiter's own deadline:
	 * stopping mid-frame would break the channel and every call on it. */
	deadline = spk_client_deadline(a->client, 0);
	if (rc == 0 && (!e.f || h.len > e.f->cap_)) {
		rc = spk_chan_skip(ch, h.len, deadline);
		if (rc == 0 && e.f)
			rc = spk_no_room(h.len, e.f->cap_);
	} else if (rc == 0) {
		rc = spk_chan_recv_copy(ch, e.f->reply_, h.len, deadline);
	}
	if (ch->broken) {
		fail_all(a, ch->broken);
		return ch->broken;
	}
	ring_pop(a);
	if (e.f) {
		e.f->reply_len = rc == 0 || rc == SPOKE_ENOSPC ? h.len : 0;
		complete(e.f, rc);
	}
	return 0;
}

/* chan.h's drain: a send that waits for room receives a reply meanwhile. */
static int drain(void *arg, int64_t deadline)
{
	return complete_head(arg, deadline);
}

/* Sends request f, or queues it when other calls are in flight: a queued
 * request goes out with the next large one, once ASYNC_FLUSH bytes are
 * queued, or when a wait on any future of the handle has no reply left in
 * its receive buffer.  The first call into an idle pipe goes at once. */
static int async_send(spoke_actor *a, spoke_future *f, uint32_t method, const void *req,
		      size_t req_len, int64_t deadline)
{
	struct spk_chan *ch = a->async_ch;
	int rc;

	if (req_len > ASYNC_SMALL) {
		rc = spk_chan_flush(ch, &a->async_queued, deadline);
		if (rc == 0)
			rc = spk_chan_send(ch, SPK_CALL, f->id_, (int32_t)method, req, req_len,
					   deadline);
	} else {
		rc = spk_chan_queue(ch, &a->async_queued, SPK_CALL, f->id_, (int32_t)method, req,
				    req_len);
		if (rc < 0 || (a->ring_count && a->async_queued < ASYNC_FLUSH))
			return rc;
		rc = spk_chan_flush(ch, &a->async_queued, deadline);
	}
	return rc;
}

static int tcp_call_async(spoke_actor *a, uint32_t method, const void *req, size_t req_len,
			  spoke_future *f, int64_t deadline)
{
	int rc = 0;

	pthread_mutex_lock(&a->async_lock);
	if (a->async_ch && a->async_ch->broken) {
		fail_all(a, a->async_ch->broken);
		a->async_queued = 0;
	}
	if (!a->async_ch || a->async_ch->broken) {
		rc = reconnect_chan(a, &a->async_ch, deadline);
		if (rc == 0) {
			a->async_ch->drain = drain;
			a->async_ch->drain_arg = a;
		}
	}
	if (rc == 0)
		rc = ring_reserve(a);
	if (rc < 0)
		goto out_unlock;
	/* In the ring before it is sent: its reply may come while it is being
	 * sent (a refusal of its size, say), and the send's drain takes it. */
	a->async_ch->poll_us = atomic_load(&a->poll_us);
	f->id_ = ++a->async_id;
	*ring_at(a, a->ring_count++) = (struct inflight){ f->id_, f };
	rc = async_send(a, f, method, req, req_len, deadline);
	if (rc < 0 && a->async_ch->broken) {
		fail_all(a, rc);
	} else if (rc < 0) { /* nothing of it went out: it was never in flight */
		a->ring_count--;
		a->async_id--;
	}
out_unlock:
	pthread_mutex_unlock(&a->async_lock);
	return rc;
}

/* Whether f is in flight on a: compares pointers only, since a future
 * about to be started may be uninitialised memory. */
static bool in_flight(spoke_actor *a, const spoke_future *f)
{
	bool found = false;

	if (a->rdma)
		return spk_rdma_in_flight(a->rdma, f);
	pthread_mutex_lock(&a->async_lock);
	for (size_t i = 0; i < a->ring_count && !found; i++)
		found = ring_at(a, i)->f == f;
	pthread_mutex_unlock(&a->async_lock);
	return found;
}

int spoke_call_async(spoke_actor *a, uint32_t method, const void *req, size_t req_len,
		     void *reply, size_t cap, spoke_future *f)
{
	int64_t deadline;
	int rc;

	spk_api_enter();
	if (!f)
		return spk_api_ret(spk_api_null(__func__, "f"));
	if (a && in_flight(a, f)) /* f is left as it is */
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "actor %s: this future is still in "
					    "flight; wait for it before starting another call on it",
					    a->name));
	memset(f, 0, sizeof(*f));
	f->reply_ = reply;
	f->cap_ = cap;
	f->actor_ = a;
	rc = check_call(__func__, a, req, req_len, reply, cap);
	if (rc == 0) {
		deadline = spk_client_deadline(a->client, 0);
		rc = a->rdma ? spk_rdma_call_async(a->rdma, method, req, req_len, reply, cap, f,
						   deadline)
			     : tcp_call_async(a, method, req, req_len, f, deadline);
	}
	if (rc < 0 && !f->done_) /* else a broken connection completed it */
		complete(f, rc);
	return spk_api_ret(rc);
}

static int tcp_future_wait(spoke_actor *a, spoke_future *f, int64_t deadline)
{
	struct inflight *e;
	int rc = 0;

	pthread_mutex_lock(&a->async_lock);
	while (!f->done_ && rc == 0) {
		/* Never sleep on a reply with requests still queued: send them
		 * before the receive buffer runs dry. */
		struct spk_chan *ch = a->async_ch;

		if (a->async_queued && ch->rlen - ch->rpos < SPK_HDR_SIZE) {
			rc = spk_chan_flush(ch, &a->async_queued, deadline);
			if (rc < 0)
				fail_all(a, rc);
			continue;
		}
		rc = complete_head(a, deadline);
	}
	if (!f->done_ && rc == SPOKE_ETIMEDOUT && (e = ring_find(a, f))) {
		e->f = NULL; /* the call keeps its place; its reply will be dropped */
		complete(f, spk_fail(rc, "actor %s: no reply in time; the call was given up",
				     a->name));
	}
	pthread_mutex_unlock(&a->async_lock);
	return f->done_ ? f->status : rc;
}

/* The outcome of f, complete before this wait began (another wait received
 * its reply, or the handle was closed): a failure's message comes back from
 * its reply buffer, or, where it did not fit there, says what it can. */
static int outcome(const spoke_future *f)
{
	char text[160];
	int n;

	switch (f->status) {
	case 0:
		return 0;
	case SPOKE_ENOSPC:
		return spk_no_room(f->reply_len, f->cap_);
	}
	if (f->reply_len)
		return spk_errmsg_restore(f->status, f->method_status_, f->reply_, f->reply_len);
	if (f->status == SPOKE_EMETHOD)
		n = snprintf(text, sizeof(text), "the method failed: %s (code %d)",
			     spoke_strerror(f->method_status_), f->method_status_);
	else
		n = snprintf(text, sizeof(text), "%s", spoke_strerror(f->status));
	n += snprintf(text + n, sizeof(text) - (size_t)n,
		      " (its message did not fit the reply buffer of %zu bytes)", f->cap_);
	return spk_errmsg_restore(f->status, f->method_status_, text, strlen(text));
}

int spoke_future_wait(spoke_future *f, int timeout_ms)
{
	spoke_actor *a;
	int64_t deadline;

	spk_api_enter();
	if (!f)
		return spk_api_ret(spk_api_null(__func__, "f"));
	/* A complete future's handle may be gone: only f is read. */
	if (__atomic_load_n(&f->done_, __ATOMIC_ACQUIRE))
		return spk_api_ret(outcome(f));
	a = f->actor_;
	if (!a)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "the future was never started"));
	deadline = spk_client_deadline(a->client, timeout_ms);
	if (a->rdma)
		return spk_api_ret(spk_rdma_future_wait(a->rdma, f, deadline));
	return spk_api_ret(tcp_future_wait(a, f, deadline));
}

void spoke_actor_close(spoke_actor *a)
{
	if (!a)
		return;
	/* Calls running on other threads end first, each within its timeout. */
	for (int i = 0; i < POOL_MAX; i++)
		while (atomic_load(&a->pool[i].busy))
			usleep(1000);
	pthread_mutex_lock(&a->async_lock);
	spk_fail(SPOKE_ECLOSED, "actor %s: the handle was closed with the call in flight", a->name);
	fail_all(a, SPOKE_ECLOSED); /* the RDMA ring's: spk_rdma_close */
	pthread_mutex_unlock(&a->async_lock);
	for (int i = 0; i < POOL_MAX; i++) {
		drop_chan(&a->pool[i].ch);
		spk_rdma_close(a->pool[i].rc); /* slot 0's is a->rdma */
	}
	drop_chan(&a->async_ch);
	free(a->ring);
	pthread_mutex_destroy(&a->async_lock);
	spk_client_drop(a->client);
	free(a);
}

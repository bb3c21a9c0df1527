/* rdma_client.c - the client's end of an RDMA connection to a worker.
 *
 * One queue pair per actor handle, guarded by one lock.  Every call, sync
 * or async, takes a credit and an entry in a ring of calls in flight; the
 * worker answers in order, so the reply at the head of the receive queue is
 * always the ring's head's (complete_head).  A request is packed or copied
 * into a send slot, or, when larger, lies in a registered area (the "tx"
 * area, or the caller's spoke_mr) from which the worker reads it.  A large
 * reply is written by the worker into the area the call offered (the "rx"
 * area, or the caller's spoke_mr), or, where none was offered or it was too
 * small, read from the worker (into the "pull" area) and acknowledged with
 * DONE.  Any failure of the connection fails every call in flight with the
 * same code; the next call connects afresh.
 *
 * Protection: the queue pair has a protection domain of its own, and all
 * the memory a connection registers is in it, so its keys are worthless on
 * any other queue pair; a reconnect starts with a new domain (and areas).
 * The tx area is open to the worker for remote reads only, the rx area for
 * remote writes only, the pull area not at all.  A user's spoke_mr is
 * registered lazily, on each connection where a call uses it, once per role:
 * as a request for remote reads, as a reply for remote writes (struct
 * ureg); the registrations are kept until spoke_mr_deregister or the
 * connection's end, so the steady state registers nothing.
 *
 * Every CALL carries its caller's deadline (ttl_ms).  A stream call
 * (SPK_CF_STREAM) takes its place in the ring and holds the connection:
 * stream_next takes its CHUNKs (eager, or PULLed and DONE) and then its
 * REPLY, one receive at a time; a chunk too large for the reader's buffer
 * stays in its receive slot (a PULL's bytes stay at the worker) for the
 * next read; every SPK_RDMA_CHUNKS / 2 chunks taken are acknowledged with a
 * CREDIT (rdma.h, "Streams").  Giving a stream up (abandon) disconnects at
 * once (the worker sees its caller go); the next call connects anew
 * without asking the hub.  future_cancel gives a future up and sends a
 * CANCEL of its call. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "auth.h"
#include "clock.h"
#include "errmsg.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "rdma_qp.h"
#include "rdma_wire.h"

enum pend_kind { K_COPY, K_OBJ, K_MR, K_STREAM };

/* One call in flight, and where its outcome goes. */
struct pend {
	uint64_t id;
	enum pend_kind kind;
	void *dst; /* K_COPY: the caller's reply buffer; K_MR: in the caller's region */
	size_t cap;
	struct spk_umr *umr; /* K_MR: the region's registered memory */
	uint32_t lkey, rkey; /* K_MR: its keys on this connection */
	const spoke_serializer *ser; /* K_OBJ */
	void *obj;
	int *status; /* status, len, done: NULL once the caller gave up (a timed-out future) */
	size_t *len;
	int *done;
	int *method; /* an async call's: its future keeps a failure (call.c's complete()) */
	bool region; /* offered a region for the reply */
	bool tx;     /* the request lies in the tx area until the reply */
};

/* Where a request's payload comes from. */
struct req_src {
	const void *p; /* bytes to copy, or inside the caller's registered memory */
	size_t len;
	struct spk_umr *umr; /* set: p is in it, the worker reads it in place */
	const spoke_serializer *ser;
	const void *obj;
	bool stream; /* a stream call: SPK_CF_STREAM, and no ttl */
};

/* A user's registered memory (spoke_mr.mr_): only remembered until a call
 * uses it on a connection. */
struct spk_umr {
	struct spk_mr_base base; /* first: spoke_mr_deregister finds the transport */
	uint8_t *addr;
	size_t len;
	struct ureg *regs; /* its registrations, one per connection and role */
};

/* u registered on conn's connection with access (one role). */
struct ureg {
	struct spk_umr *u;
	struct spk_rconn *conn;
	int access;
	struct ibv_mr *mr;
	struct ureg *next_u, *next_c; /* in u's list, in conn's list */
};

/* Guards every ureg list: spoke_mr_deregister runs on any thread, without
 * any connection's lock.  Taken after a connection's lock, never before. */
static pthread_mutex_t ureg_lock = PTHREAD_MUTEX_INITIALIZER;

struct spk_rconn {
	struct spk_conn base; /* first: transport.h's connection */
	pthread_mutex_t lock;
	char addr[SPK_ADDR_MAX]; /* the worker's TCP host:port */
	char token[SPK_TOKEN_MAX];
	char ident[SPK_IDENT_MAX]; /* the worker's, in the handshake */
	int (*check)(void *, int64_t); /* before a reconnect (rdma.h) */
	void *check_arg;
	struct spk_sync_conn ch; /* authenticated; asks for RDMA */
	bool ch_open;
	uint64_t hello_id;
	struct rdma_event_channel *ec;
	struct rdma_cm_id *id;
	struct spk_rqp q; /* q.pd: areas and users' memory are registered there */
	struct ureg *regs; /* users' memory registered on this connection */
	struct pend ring[SPK_RDMA_CREDITS];
	unsigned head, count;
	uint64_t next_id;
	struct spk_rarea tx, rx, pull;
	uint64_t tx_owner, rx_owner; /* the call using the area, 0: none */
	uint32_t peer_max, max_msg;
	int poll_us;
	int broken;
	bool abandoned;     /* dropped on purpose (abandon): no check before the next link */
	bool stream_eof;    /* the stream's REPLY body was read as a last chunk: SPOKE_EOF next */
	bool frame_kept;    /* a stream frame received and not taken (SPOKE_ENOSPC) */
	struct ibv_wc kept_wc; /* its completion */
	unsigned unacked;   /* chunks taken, not yet acknowledged (CREDIT) */
	char device[64];
};

static int local_check(void)
{
	const char *want = getenv("SPOKE_RDMA_DEVICE");
	struct ibv_device **devs;
	char have[256] = "";
	int n = 0, found = 0;

	devs = ibv_get_device_list(&n);
	if (!devs || n == 0) {
		if (devs)
			ibv_free_device_list(devs);
		return spk_fail(SPOKE_ERDMA, "no RDMA device on this node");
	}
	for (int i = 0; i < n; i++) {
		const char *name = ibv_get_device_name(devs[i]);
		size_t l = strlen(have);

		if (!want || strcmp(want, name) == 0)
			found = 1;
		snprintf(have + l, sizeof(have) - l, "%s%s", l ? ", " : "", name);
	}
	ibv_free_device_list(devs);
	if (!found)
		return spk_fail(SPOKE_ERDMA, "no RDMA device named %s here (SPOKE_RDMA_DEVICE; have %s)",
				want, have);
	return 0;
}

/* Waits for rdma_cm event `want` on conn's channel; copies its private data
 * (the accepting side's, for ESTABLISHED) into priv[0..n) if priv is set. */
static int wait_cm(struct spk_rconn *conn, enum rdma_cm_event_type want, int64_t deadline,
		   uint8_t *priv, size_t n)
{
	struct pollfd pfd = { .fd = conn->ec->fd, .events = POLLIN };
	struct rdma_cm_event *ev;
	enum rdma_cm_event_type got;
	int status;

	for (;;) {
		if (rdma_get_cm_event(conn->ec, &ev) == 0)
			break;
		if (errno != EAGAIN)
			return spk_fail(SPOKE_ERDMA, "rdma_get_cm_event: %s", strerror(errno));
		if (spk_now_us() >= deadline)
			return spk_fail(SPOKE_ETIMEDOUT, "RDMA connection to %s: timed out waiting for %s",
					conn->addr, rdma_event_str(want));
		if (poll(&pfd, 1, spk_ms_left(deadline)) < 0 && errno != EINTR)
			return -errno;
	}
	got = ev->event;
	status = ev->status;
	if (priv) {
		memset(priv, 0, n);
		if (ev->param.conn.private_data)
			memcpy(priv, ev->param.conn.private_data,
			       ev->param.conn.private_data_len < n ? ev->param.conn.private_data_len : n);
	}
	rdma_ack_cm_event(ev);
	if (got == want)
		return 0;
	return spk_fail(SPOKE_ERDMA, "RDMA connection to %s: %s (status %d) instead of %s", conn->addr,
			rdma_event_str(got), status, rdma_event_str(want));
}

/* Asks the worker for RDMA over the (authenticated) TCP channel. */
static int ask_worker(struct spk_rconn *conn, struct spk_rdma_offer *o, int64_t deadline)
{
	const uint8_t *p;
	struct spk_hdr h;
	spoke_view v;
	int rc;

	if (conn->ch_open && conn->ch.broken) {
		spk_sync_close(&conn->ch);
		conn->ch_open = false;
	}
	if (!conn->ch_open) {
		rc = spk_sync_open(&conn->ch, conn->addr, conn->token, conn->ident, 0, deadline);
		if (rc < 0)
			return rc;
		conn->ch_open = true;
	}
	rc = spk_sync_send(&conn->ch, SPK_RDMA, ++conn->hello_id, 0, NULL, 0, deadline);
	if (rc == 0)
		rc = spk_sync_recv_hdr(&conn->ch, &h, deadline);
	if (rc == 0 && (h.type != SPK_REPLY || h.id != conn->hello_id))
		rc = SPOKE_EPROTO;
	if (rc == 0)
		rc = spk_sync_recv_view(&conn->ch, h.len, &p, deadline);
	if (rc < 0) /* an answer may still come: the next try starts afresh */
		return spk_sync_break(&conn->ch, rc);
	if (h.aux < 0)
		return spk_fail(SPOKE_ERDMA, "the actor's side: %.*s", (int)h.len, (const char *)p);
	spoke_view_init(&v, p, h.len);
	rc = spk_rdma_offer_unpack(&v, o);
	if (rc < 0)
		return spk_fail(SPOKE_EPROTO, "actor at %s sent an RDMA offer this client cannot "
				"read: %s", conn->addr, rc == SPOKE_ESHORT ? "truncated" : spoke_errmsg());
	if (o->slot != SPK_RDMA_SLOT || o->credits != SPK_RDMA_CREDITS)
		return spk_fail(SPOKE_EPROTO, "actor at %s offers RDMA in a form this client does "
				"not know (%u slots of %u B)", conn->addr, o->credits, o->slot);
	conn->peer_max = o->max_msg;
	return 0;
}

/* Unlinks r from both its lists and deregisters it (ureg_lock held). */
static void ureg_drop(struct ureg *r)
{
	struct ureg **pp;

	for (pp = &r->u->regs; *pp != r; pp = &(*pp)->next_u)
		;
	*pp = r->next_u;
	for (pp = &r->conn->regs; *pp != r; pp = &(*pp)->next_c)
		;
	*pp = r->next_c;
	ibv_dereg_mr(r->mr);
	free(r);
}

/* u's memory registered on conn's connection with access: the one made the
 * first time, or a new one (conn's lock held). */
static int ureg_get(struct spk_rconn *conn, struct spk_umr *u, int access, struct ibv_mr **out)
{
	struct ureg *r;
	int rc = 0;

	pthread_mutex_lock(&ureg_lock);
	for (r = conn->regs; r && !(r->u == u && r->access == access); r = r->next_c)
		;
	if (!r) {
		r = calloc(1, sizeof(*r));
		rc = r ? spk_rdma_reg(conn->q.pd, u->addr, u->len, access, &r->mr) : -ENOMEM;
		if (rc < 0) {
			free(r);
			goto out;
		}
		r->u = u;
		r->conn = conn;
		r->access = access;
		r->next_u = u->regs;
		u->regs = r;
		r->next_c = conn->regs;
		conn->regs = r;
		spk_debug("RDMA connection to %s: %zu B at %p registered for remote %s (rkey %#x)",
			  conn->addr, u->len, (void *)u->addr,
			  access & IBV_ACCESS_REMOTE_WRITE ? "write" : "read", r->mr->rkey);
	}
	*out = r->mr;
out:
	pthread_mutex_unlock(&ureg_lock);
	return rc;
}

/* Frees what the connection registered, then the connection: a reconnect
 * starts with a protection domain of its own, with nothing in it. */
static void teardown(struct spk_rconn *conn)
{
	pthread_mutex_lock(&ureg_lock);
	while (conn->regs)
		ureg_drop(conn->regs);
	pthread_mutex_unlock(&ureg_lock);
	spk_rarea_free(&conn->tx);
	spk_rarea_free(&conn->rx);
	spk_rarea_free(&conn->pull);
	spk_rqp_destroy(&conn->q);
	if (conn->id)
		rdma_destroy_id(conn->id);
	if (conn->ec)
		rdma_destroy_event_channel(conn->ec);
	conn->id = NULL;
	conn->ec = NULL;
}

/* Connects to the worker at host:port with the cookie: resolves, creates
 * the queue pair, connects.  On failure the caller tears down. */
static int connect_to(struct spk_rconn *conn, const char *host, const struct spk_rdma_offer *o,
		      int64_t deadline)
{
	const char *want = getenv("SPOKE_RDMA_DEVICE");
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST };
	uint8_t priv[SPK_RDMA_CONNECT_SIZE], mac[SPK_MAC_SIZE];
	struct spk_rdma_connect req = { .index = o->index };
	struct rdma_conn_param param;
	spoke_buf b;
	struct addrinfo *ai = NULL;
	char port_s[8];
	int rc;

	snprintf(port_s, sizeof(port_s), "%u", o->port);
	rc = getaddrinfo(host, port_s, &hints, &ai);
	if (rc)
		return spk_fail(SPOKE_ERDMA, "%s: %s", host, gai_strerror(rc));
	conn->ec = rdma_create_event_channel();
	if (!conn->ec || rdma_create_id(conn->ec, &conn->id, conn, RDMA_PS_TCP) < 0) {
		rc = spk_fail(SPOKE_ERDMA, "rdma_create_id: %s", strerror(errno));
		goto out;
	}
	fcntl(conn->ec->fd, F_SETFL, fcntl(conn->ec->fd, F_GETFL) | O_NONBLOCK);
	if (rdma_resolve_addr(conn->id, NULL, ai->ai_addr, spk_ms_left(deadline)) < 0) {
		rc = spk_fail(SPOKE_ERDMA, "rdma_resolve_addr %s: %s", host, strerror(errno));
		goto out;
	}
	rc = wait_cm(conn, RDMA_CM_EVENT_ADDR_RESOLVED, deadline, NULL, 0);
	if (rc == 0 && rdma_resolve_route(conn->id, spk_ms_left(deadline)) < 0)
		rc = spk_fail(SPOKE_ERDMA, "rdma_resolve_route %s: %s", host, strerror(errno));
	if (rc == 0)
		rc = wait_cm(conn, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline, NULL, 0);
	if (rc < 0)
		goto out;
	snprintf(conn->device, sizeof(conn->device), "%s", ibv_get_device_name(conn->id->verbs->device));
	if (want && strcmp(want, conn->device) != 0) {
		rc = spk_fail(SPOKE_ERDMA, "the route to %s goes through %s, not SPOKE_RDMA_DEVICE=%s",
			       host, conn->device, want);
		goto out;
	}
	rc = spk_rqp_create(&conn->q, conn->id, SPK_RDMA_CREDITS,
			    SPK_RDMA_CREDITS + SPK_RDMA_CHUNKS, conn->poll_us);
	if (rc < 0)
		goto out;
	/* Prove the cookie with the token; the worker proves it back. */
	spk_auth_mac(req.mac, conn->token, SPK_LABEL_RDMA_CLIENT, o->cookie);
	spoke_buf_init(&b, priv, sizeof(priv));
	spk_rdma_connect_pack(&b, &req);
	spk_rqp_conn_param(&conn->q, &param, priv, b.len);
	if (rdma_connect(conn->id, &param) < 0) {
		rc = spk_fail(SPOKE_ERDMA, "rdma_connect %s: %s", host, strerror(errno));
		goto out;
	}
	rc = wait_cm(conn, RDMA_CM_EVENT_ESTABLISHED, deadline, mac, sizeof(mac));
	if (rc == 0 && !spk_auth_verify(mac, conn->token, SPK_LABEL_RDMA_SERVER, o->cookie))
		rc = spk_fail(SPOKE_EAUTH, "the RDMA peer at %s did not prove the job token", host);
out:
	freeaddrinfo(ai);
	return rc;
}

/* Asks the worker and connects to the first of its addresses that works;
 * conn->broken is 0 after. */
static int establish(struct spk_rconn *conn, int64_t deadline)
{
	char why[256] = "";
	struct spk_rdma_offer o;
	int rc;

	rc = local_check();
	if (rc < 0)
		return rc;
	rc = ask_worker(conn, &o, deadline);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < o.n_addrs; i++) {
		/* An address that does not answer gets its share of the time. */
		int64_t now = spk_now_us();

		rc = connect_to(conn, o.addrs[i], &o, now + (deadline - now) / (o.n_addrs - i));
		if (rc == 0)
			break;
		snprintf(why, sizeof(why), "%s", spoke_errmsg());
		teardown(conn);
		if (rc == SPOKE_EAUTH || spk_now_us() >= deadline)
			break;
	}
	if (rc < 0)
		return spk_fail(rc == SPOKE_ETIMEDOUT ? rc : SPOKE_ERDMA,
				"no RDMA connection to the actor's %u address%s (%s%s): %s", o.n_addrs,
				o.n_addrs == 1 ? "" : "es", o.addrs[0], o.n_addrs > 1 ? ", ..." : "",
				why);
	conn->q.ec = conn->ec; /* from now on, a disconnect ends every wait */
	conn->broken = 0;
	conn->head = conn->count = 0;
	conn->tx_owner = conn->rx_owner = 0;
	conn->frame_kept = conn->stream_eof = false;
	conn->unacked = 0;
	return 0;
}

static void rconn_close(struct spk_rconn *conn);

static int rconn_open(struct spk_rconn **out, const char *addr, const char *token,
		     const char *ident, int poll_us, int64_t deadline)
{
	struct spk_rconn *conn = calloc(1, sizeof(*conn));
	int rc;

	if (!conn)
		return -ENOMEM;
	pthread_mutex_init(&conn->lock, NULL);
	snprintf(conn->addr, sizeof(conn->addr), "%s", addr);
	snprintf(conn->token, sizeof(conn->token), "%s", token);
	snprintf(conn->ident, sizeof(conn->ident), "%s", ident);
	conn->poll_us = poll_us;
	conn->max_msg = spk_max_payload();
	rc = establish(conn, deadline);
	if (rc < 0) {
		rconn_close(conn);
		return rc == SPOKE_EPROTO ? spk_fail(SPOKE_ERDMA, "%s", spoke_errmsg()) : rc;
	}
	*out = conn;
	return 0;
}

static int break_all(struct spk_rconn *conn, int code);

static void rconn_close(struct spk_rconn *conn)
{
	if (!conn)
		return;
	if (conn->count) /* the futures in flight learn it before conn goes */
		break_all(conn, spk_fail(SPOKE_ECLOSED, "actor at %s: the handle was closed with the "
				       "call in flight", conn->addr));
	if (conn->id && !conn->broken)
		rdma_disconnect(conn->id);
	teardown(conn);
	if (conn->ch_open)
		spk_sync_close(&conn->ch);
	pthread_mutex_destroy(&conn->lock);
	free(conn);
}

static void rconn_set_check(struct spk_rconn *conn, int (*check)(void *, int64_t),
				  void *arg)
{
	conn->check = check;
	conn->check_arg = arg;
}

static const char *rconn_device(const struct spk_rconn *conn)
{
	return conn->device;
}

static void rconn_set_poll(struct spk_rconn *conn, int poll_us)
{
	pthread_mutex_lock(&conn->lock); /* a setting: waits its turn, however long */
	conn->poll_us = poll_us;
	conn->q.poll_us = poll_us;
	pthread_mutex_unlock(&conn->lock);
}

static void finish(struct pend *p, int status, size_t len)
{
	if (!p->done) /* given up */
		return;
	if (p->len)
		*p->len = len;
	if (status < 0 && status != SPOKE_ENOSPC && p->method) /* as call.c's complete() */
		*p->len = spk_errmsg_keep(p->method, p->dst, p->cap);
	*p->status = status;
	__atomic_store_n(p->done, 1, __ATOMIC_RELEASE);
}

/* The connection failed: every call in flight fails with code. */
static int break_all(struct spk_rconn *conn, int code)
{
	while (conn->count) {
		finish(&conn->ring[conn->head], code, 0);
		conn->head = (conn->head + 1) % SPK_RDMA_CREDITS;
		conn->count--;
	}
	conn->tx_owner = conn->rx_owner = 0;
	if (!conn->broken && conn->id)
		rdma_disconnect(conn->id);
	conn->broken = code;
	return code;
}

/* A message of a header alone (DONE, CANCEL, CREDIT), which takes no credit. */
static int send_hdr(struct spk_rconn *conn, uint8_t type, uint64_t id, int32_t aux,
		    int64_t deadline)
{
	uint8_t *s;
	unsigned k;
	int rc = spk_rqp_send_slot(&conn->q, &k, &s, deadline);

	if (rc < 0)
		return rc;
	spk_hdr_encode(s, type, id, aux, 0);
	return spk_rqp_post_send(&conn->q, k, SPK_HDR_SIZE, deadline);
}

static int send_done(struct spk_rconn *conn, uint64_t id, int64_t deadline)
{
	return send_hdr(conn, SPK_DONE, id, 0, deadline);
}

/* A stream's chunk was taken: its receive slot again, and a CREDIT for
 * every SPK_RDMA_CHUNKS / 2 of them. */
static int chunk_taken(struct spk_rconn *conn, unsigned slot, int64_t deadline)
{
	int rc = spk_rqp_post_recv(&conn->q, slot);

	if (rc == 0 && ++conn->unacked >= SPK_RDMA_CHUNKS / 2) {
		rc = send_hdr(conn, SPK_CREDIT, 0, (int32_t)conn->unacked, deadline);
		conn->unacked = 0;
	}
	return rc;
}

/* Reads a PULL reply of len bytes from the worker into the call's memory. */
static int pull(struct spk_rconn *conn, struct pend *p, const uint8_t *ext, uint32_t len,
		const uint8_t **data, int64_t deadline)
{
	uint64_t raddr, seq;
	uint32_t rkey, rlen, lkey;
	void *dst;
	int rc;

	spk_rdma_get_ext(ext, &raddr, &rkey, &rlen);
	if (rlen != len || len <= SPK_RDMA_REPLY_INLINE) /* would have been eager */
		return SPOKE_EPROTO;
	if ((p->kind != K_OBJ && len > p->cap) || len > conn->max_msg)
		return 1; /* does not fit: the caller reports it, nothing is read */
	if (p->kind == K_MR) {
		dst = p->dst;
		lkey = p->lkey;
	} else {
		rc = spk_rarea_reserve(conn->q.pd, &conn->pull, len, conn->max_msg, 0, 0);
		if (rc < 0)
			return rc;
		dst = conn->pull.p;
		lkey = conn->pull.mr->lkey;
	}
	rc = spk_rqp_post_rdma(&conn->q, IBV_WR_RDMA_READ, dst, lkey, len, raddr, rkey, &seq,
				deadline);
	if (rc == 0)
		rc = spk_rqp_wait_sq(&conn->q, seq, deadline);
	*data = dst;
	return rc;
}

/* Hands a reply of len bytes at data to the call; returns its status. */
static int consume(struct spk_rconn *conn, struct pend *p, const uint8_t *data, uint32_t len)
{
	spoke_view v;
	int rc;

	if (!p->done) /* given up: the reply is dropped */
		return 0;
	if (p->kind == K_OBJ) {
		if (!p->ser)
			return 0;
		spoke_view_init(&v, data, len);
		rc = p->ser->unpack(&v, p->obj);
		if (rc >= 0)
			rc = spoke_view_error(&v);
		return rc < 0 ? spk_ser_failed(rc, "unpacking the reply", conn->addr) : 0;
	}
	if (len > p->cap)
		return spk_no_room(len, p->cap);
	if (data != p->dst && len)
		memcpy(p->dst, data, len);
	return 0;
}

/* Receives the reply of the ring's head and completes it.  SPOKE_ETIMEDOUT
 * with nothing consumed leaves it pending; any other failure breaks the
 * connection. */
static int complete_head(struct spk_rconn *conn, int64_t deadline)
{
	struct pend *p = &conn->ring[conn->head];
	const uint8_t *data = NULL;
	struct ibv_wc wc;
	struct spk_hdr h;
	uint8_t *s;
	int rc, status = 0;

	if (!conn->count) /* a future of another handle, say */
		return spk_fail(SPOKE_EINVAL, "no call in flight on this RDMA connection");
again:
	if (conn->frame_kept) { /* a stream's, nobody reads it any more */
		wc = conn->kept_wc;
		conn->frame_kept = false;
	} else {
		rc = spk_rqp_wait_recv(&conn->q, &wc, deadline);
		if (rc == SPOKE_ETIMEDOUT)
			return rc;
		if (rc < 0)
			return break_all(conn, rc);
	}
	s = spk_rqp_recv_slot(&conn->q, (unsigned)wc.wr_id);
	if (wc.byte_len >= SPK_RDMA_REPLY_DATA &&
	    spk_hdr_decode_flags(s, UINT32_MAX, SPK_RF_PULL, &h) == 0 && h.type == SPK_CHUNK &&
	    h.id == p->id && p->kind == K_STREAM) { /* dropped (a PULL's is done with) */
		rc = (h.flags & SPK_RF_PULL) ? send_done(conn, h.id, deadline) : 0;
		if (rc == 0)
			rc = chunk_taken(conn, (unsigned)wc.wr_id, deadline);
		if (rc < 0)
			return break_all(conn, rc);
		goto again;
	}
	if (wc.byte_len < SPK_RDMA_REPLY_DATA ||
	    spk_hdr_decode_flags(s, UINT32_MAX, SPK_RF_WRITTEN | SPK_RF_PULL, &h) < 0 ||
	    h.type != SPK_REPLY || h.id != p->id)
		return break_all(conn, spk_fail(SPOKE_EPROTO, "actor at %s sent a malformed reply",
					      conn->addr));
	if (h.aux < 0) {
		status = spk_reply_error_unpack(h.aux, s + SPK_RDMA_REPLY_DATA,
						h.len < wc.byte_len - SPK_RDMA_REPLY_DATA
							? h.len
							: wc.byte_len - SPK_RDMA_REPLY_DATA);
	} else if (h.flags & SPK_RF_PULL) {
		rc = pull(conn, p, s + SPK_HDR_SIZE, h.len, &data, deadline);
		if (rc < 0)
			return break_all(conn, rc == SPOKE_EPROTO ? spk_fail(rc, "bad PULL reply") : rc);
		if (rc == 0)
			status = consume(conn, p, data, h.len);
		else if (p->done) /* else given up: not read, dropped */
			status = spk_fail(h.len > conn->max_msg ? SPOKE_ETOOBIG : SPOKE_ENOSPC,
					  "reply of %u bytes, room for %zu", h.len,
					  p->kind == K_OBJ ? (size_t)conn->max_msg : p->cap);
		rc = send_done(conn, h.id, deadline);
		if (rc < 0)
			return break_all(conn, rc);
	} else if (h.flags & SPK_RF_WRITTEN) {
		if (!p->region || (p->kind == K_MR && h.len > p->cap) ||
		    (p->kind != K_MR && h.len > conn->rx.cap))
			return break_all(conn, spk_fail(SPOKE_EPROTO, "actor wrote outside the region"));
		status = consume(conn, p, p->kind == K_MR ? p->dst : conn->rx.p, h.len);
	} else {
		if (h.len > wc.byte_len - SPK_RDMA_REPLY_DATA)
			return break_all(conn, spk_fail(SPOKE_EPROTO, "truncated reply"));
		status = consume(conn, p, s + SPK_RDMA_REPLY_DATA, h.len);
	}
	rc = spk_rqp_post_recv(&conn->q, (unsigned)wc.wr_id);
	if (rc < 0)
		return break_all(conn, rc);
	if (p->tx)
		conn->tx_owner = 0;
	if (p->region && p->kind != K_MR)
		conn->rx_owner = 0;
	conn->head = (conn->head + 1) % SPK_RDMA_CREDITS;
	conn->count--;
	finish(p, status, h.aux < 0 ? 0 : h.len); /* an error's text is no reply */
	return 0;
}

/* Completes calls in flight until the one with id `owner` is done. */
static int drain_until(struct spk_rconn *conn, const uint64_t *owner, int64_t deadline)
{
	int rc = 0;

	while (*owner && rc == 0)
		rc = complete_head(conn, deadline);
	return rc;
}

struct tx_grow {
	struct spk_rconn *conn;
	int64_t deadline;
};

/* spoke_buf grow hook: a request outgrew its slot, move it to the tx area. */
static int grow_tx(spoke_buf *b, size_t need)
{
	struct tx_grow *g = b->owner;
	struct spk_rconn *conn = g->conn;
	int rc;

	if (need > conn->peer_max)
		return spk_fail(SPOKE_ETOOBIG, "request over the actor's maximum of %u bytes",
				conn->peer_max);
	if (b->data != conn->tx.p) { /* the worker may still read an earlier request */
		rc = drain_until(conn, &conn->tx_owner, g->deadline);
		if (rc < 0)
			return rc;
	}
	return spk_rarea_take_buf(conn->q.pd, &conn->tx, b, need, conn->peer_max,
				  IBV_ACCESS_REMOTE_READ);
}

/* Sends a CALL for p with payload src; p joins the ring. */
static int start_call(struct spk_rconn *conn, struct pend *p, uint32_t method,
		      const struct req_src *src, int64_t deadline)
{
	struct tx_grow g = { conn, deadline };
	struct ibv_mr *mr;
	uint32_t req_rkey = 0;
	uint16_t flags = 0;
	spoke_buf b;
	uint8_t *s;
	unsigned k;
	int rc;

	if (conn->broken) {
		rc = conn->check && !conn->abandoned ? conn->check(conn->check_arg, deadline) : 0;
		if (rc < 0) /* never a blind reconnect: the worker is gone */
			return rc;
		conn->abandoned = false;
		teardown(conn);
		rc = establish(conn, deadline);
		if (rc < 0)
			return conn->broken = rc;
	}
	while (conn->count == SPK_RDMA_CREDITS) { /* no credit: wait for the oldest call */
		rc = complete_head(conn, deadline);
		if (rc < 0)
			return rc;
	}
	/* The caller's own memory, registered here for its role (once). */
	if (src->umr && src->len > SPK_RDMA_CALL_INLINE && src->len <= conn->peer_max) {
		rc = ureg_get(conn, src->umr, IBV_ACCESS_REMOTE_READ, &mr);
		if (rc < 0)
			return rc;
		req_rkey = mr->rkey;
	}
	if (p->kind == K_MR && p->cap > SPK_RDMA_REPLY_INLINE) {
		rc = ureg_get(conn, p->umr, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, &mr);
		if (rc < 0)
			return rc;
		p->lkey = mr->lkey;
		p->rkey = mr->rkey;
	}
	rc = spk_rqp_send_slot(&conn->q, &k, &s, deadline);
	if (rc < 0)
		return break_all(conn, rc);
	p->id = ++conn->next_id;
	spoke_buf_init(&b, s + SPK_RDMA_CALL_DATA, SPK_RDMA_CALL_INLINE);
	if (src->ser) {
		b.grow = grow_tx;
		b.owner = &g;
		rc = src->ser->pack(&b, src->obj);
		if (rc >= 0)
			rc = b.err;
		if (rc < 0) {
			spk_rqp_unget_slot(&conn->q, k);
			return spk_ser_failed(rc, "packing the request", conn->addr);
		}
	} else if (src->len > conn->peer_max) {
		spk_rqp_unget_slot(&conn->q, k);
		return spk_fail(SPOKE_ETOOBIG, "request of %zu bytes over the actor's maximum of %u",
				src->len, conn->peer_max);
	} else if (req_rkey) {
		flags |= SPK_RF_RDV;
		spk_rdma_put_ext(s + SPK_HDR_SIZE + SPK_RDMA_EXT, (uintptr_t)src->p, req_rkey,
				 (uint32_t)src->len);
		b.len = 0;
	} else if (src->len > SPK_RDMA_CALL_INLINE) {
		b.grow = grow_tx;
		b.owner = &g;
		spoke_buf_put_raw(&b, src->p, src->len);
		if (b.err) {
			spk_rqp_unget_slot(&conn->q, k);
			return b.err;
		}
	} else {
		spoke_buf_put_raw(&b, src->p, src->len);
	}
	if (b.data == conn->tx.p && conn->tx.p) {
		flags |= SPK_RF_RDV;
		spk_rdma_put_ext(s + SPK_HDR_SIZE + SPK_RDMA_EXT, (uintptr_t)conn->tx.p,
				 conn->tx.mr->rkey, (uint32_t)b.len);
		conn->tx_owner = p->id;
		p->tx = true;
	}
	/* Offer a region for a large reply where one is free. */
	if (p->kind == K_MR && p->cap > SPK_RDMA_REPLY_INLINE) {
		spk_rdma_put_ext(s + SPK_HDR_SIZE, (uintptr_t)p->dst, p->rkey, (uint32_t)p->cap);
		p->region = true;
	} else if (p->kind != K_MR && !conn->rx_owner &&
		   ((p->kind == K_COPY && p->cap > SPK_RDMA_REPLY_INLINE) ||
		    (p->kind == K_OBJ && conn->rx.cap))) {
		size_t want = p->kind == K_COPY ? p->cap : conn->rx.cap;

		if (want > conn->max_msg)
			want = conn->max_msg;
		if (spk_rarea_reserve(conn->q.pd, &conn->rx, want, conn->max_msg, 0,
				      IBV_ACCESS_REMOTE_WRITE) == 0) {
			spk_rdma_put_ext(s + SPK_HDR_SIZE, (uintptr_t)conn->rx.p, conn->rx.mr->rkey,
					 (uint32_t)conn->rx.cap);
			conn->rx_owner = p->id;
			p->region = true;
		}
	}
	if (p->region)
		flags |= SPK_RF_REGION;
	if (src->stream)
		flags |= SPK_CF_STREAM;
	spk_hdr_encode(s, SPK_CALL, p->id, (int32_t)method,
		       flags & SPK_RF_RDV ? (uint32_t)(p->tx ? b.len : src->len) : (uint32_t)b.len);
	spk_hdr_set_flags(s, flags);
	/* The worker keeps the caller's deadline; a stream's reader waits read by read. */
	spk_hdr_set_ttl(s, src->stream ? 0 : spk_ttl_of(deadline));
	rc = spk_rqp_post_send(&conn->q, k,
				SPK_RDMA_CALL_DATA + (flags & SPK_RF_RDV ? 0 : b.len), deadline);
	if (rc < 0) {
		if (p->tx)
			conn->tx_owner = 0;
		if (p->region && p->kind != K_MR)
			conn->rx_owner = 0;
		return break_all(conn, rc);
	}
	conn->ring[(conn->head + conn->count) % SPK_RDMA_CREDITS] = *p;
	conn->count++;
	return 0;
}

/* Takes the connection's lock, waiting no later than deadline. */
static int lock(struct spk_rconn *conn, int64_t deadline)
{
	return spk_transport_lock(&conn->lock, deadline, "RDMA");
}

/* Runs one call to its end (the calls in flight before it complete first). */
static int run_sync(struct spk_rconn *conn, struct pend *p, uint32_t method,
		    const struct req_src *src, int64_t deadline)
{
	int status = 0, done = 0, rc;

	p->status = &status;
	p->done = &done;
	rc = lock(conn, deadline);
	if (rc < 0)
		return rc;
	rc = start_call(conn, p, method, src, deadline);
	if (rc < 0) { /* not sent: nothing to undo */
		pthread_mutex_unlock(&conn->lock);
		return rc;
	}
	while (rc == 0 && !done)
		rc = complete_head(conn, deadline);
	if (rc == SPOKE_ETIMEDOUT && !done) /* its reply may still come: start afresh */
		break_all(conn, rc);
	pthread_mutex_unlock(&conn->lock);
	return done ? status : rc;
}

static int rconn_call(struct spk_rconn *conn, uint32_t method, const void *req, size_t req_len,
		  void *reply, size_t cap, size_t *reply_len, int64_t deadline)
{
	struct req_src src = { .p = req, .len = req_len };
	size_t len = 0;
	struct pend p = { .kind = K_COPY, .dst = reply, .cap = cap, .len = &len };
	int rc = run_sync(conn, &p, method, &src, deadline);

	if (reply_len && (rc == 0 || rc == SPOKE_ENOSPC))
		*reply_len = len;
	return rc;
}

static int rconn_call_obj(struct spk_rconn *conn, uint32_t method, const spoke_serializer *req_ser,
		      const void *req, const spoke_serializer *rep_ser, void *rep,
		      int64_t deadline)
{
	struct req_src src = { .ser = req_ser, .obj = req };
	struct pend p = { .kind = K_OBJ, .ser = rep_ser, .obj = rep };

	return run_sync(conn, &p, method, &src, deadline);
}

static int rconn_call_mr(struct spk_rconn *conn, uint32_t method, const spoke_mr *req_mr,
		     size_t req_off, size_t req_len, spoke_mr *rep_mr, size_t rep_off, size_t cap,
		     size_t *reply_len, int64_t deadline)
{
	struct req_src src = {
		.p = req_mr ? (const uint8_t *)req_mr->addr + req_off : NULL,
		.len = req_mr ? req_len : 0,
		.umr = req_mr ? req_mr->mr_ : NULL,
	};
	size_t len = 0;
	struct pend p = {
		.kind = K_MR,
		.dst = rep_mr ? (uint8_t *)rep_mr->addr + rep_off : NULL,
		.cap = rep_mr ? cap : 0,
		.umr = rep_mr ? rep_mr->mr_ : NULL,
		.len = &len,
	};
	int rc = run_sync(conn, &p, method, &src, deadline);

	if (reply_len && (rc == 0 || rc == SPOKE_ENOSPC))
		*reply_len = len;
	return rc;
}

static int rconn_call_async(struct spk_rconn *conn, uint32_t method, const void *req, size_t req_len,
			void *reply, size_t cap, spoke_future *f, int64_t deadline)
{
	struct req_src src = { .p = req, .len = req_len };
	struct pend p = {
		.kind = K_COPY,
		.dst = reply,
		.cap = cap,
		.status = &f->status,
		.len = &f->reply_len,
		.done = &f->done_,
		.method = &f->method_status_,
	};
	int rc = lock(conn, deadline);

	if (rc < 0)
		return rc;
	rc = start_call(conn, &p, method, &src, deadline);
	pthread_mutex_unlock(&conn->lock);
	return rc;
}

/* f's call in the ring, or NULL. */
static struct pend *find(struct spk_rconn *conn, const spoke_future *f)
{
	for (unsigned i = 0; i < conn->count; i++) {
		struct pend *p = &conn->ring[(conn->head + i) % SPK_RDMA_CREDITS];

		if (p->done == &f->done_)
			return p;
	}
	return NULL;
}

/* The call keeps its credit and its place; its reply is dropped. */
static void give_up(struct pend *p)
{
	p->status = NULL;
	p->len = NULL;
	p->done = NULL;
	p->method = NULL;
	p->dst = NULL;
	p->cap = 0;
}

/* Gives f up at once (SPOKE_ECANCELED; its call keeps its place in the
 * ring, and its reply is dropped) and tells the worker with a CANCEL. */
static int rconn_future_cancel(struct spk_rconn *conn, spoke_future *f, int64_t deadline)
{
	struct pend *p;

	pthread_mutex_lock(&conn->lock);
	p = f->done_ ? NULL : find(conn, f);
	if (p) {
		uint64_t id = p->id;

		give_up(p);
		spk_future_complete(f, spk_fail(SPOKE_ECANCELED, "actor at %s: the call was "
						"cancelled", conn->addr));
		/* A failure: the worker learns it from the connection's end. */
		int rc = conn->broken ? 0 : send_hdr(conn, SPK_CANCEL, id, 0, deadline);

		if (rc < 0)
			break_all(conn, rc);
	}
	pthread_mutex_unlock(&conn->lock);
	return 0;
}

/* ---- streams ---- */

static int rconn_stream_start(struct spk_rconn *conn, uint32_t method, const void *req,
			      size_t req_len, int64_t deadline)
{
	struct req_src src = { .p = req, .len = req_len, .stream = true };
	struct pend p = { .kind = K_STREAM }; /* no future: break_all leaves it be */
	int rc = lock(conn, deadline);

	if (rc < 0)
		return rc;
	conn->stream_eof = false;
	rc = start_call(conn, &p, method, &src, deadline);
	pthread_mutex_unlock(&conn->lock);
	return rc;
}

/* The ring's head call (a stream's) is answered: off the ring. */
static void pop_stream(struct spk_rconn *conn)
{
	if (conn->ring[conn->head].tx)
		conn->tx_owner = 0;
	conn->head = (conn->head + 1) % SPK_RDMA_CREDITS;
	conn->count--;
}

/* The stream's next CHUNK into buf, or its REPLY (transport.h); what is
 * received but does not fit stays for the next read. */
static int stream_take(struct spk_rconn *conn, void *buf, size_t cap, size_t *len,
		       int64_t deadline)
{
	struct pend *p = &conn->ring[conn->head];
	const uint8_t *data;
	struct spk_hdr h;
	uint64_t raddr, seq;
	uint32_t rkey, rlen;
	uint8_t *s;
	int rc;

	if (!conn->frame_kept) {
		rc = spk_rqp_wait_recv(&conn->q, &conn->kept_wc, deadline);
		if (rc == SPOKE_ETIMEDOUT) /* nothing read: the stream is as it was */
			return rc;
		if (rc < 0)
			return break_all(conn, rc == SPOKE_EDEAD
				? spk_fail(rc, "actor at %s: connection lost mid-stream (did the "
					   "actor die?)", conn->addr) : rc);
		conn->frame_kept = true;
	}
	s = spk_rqp_recv_slot(&conn->q, (unsigned)conn->kept_wc.wr_id);
	if (conn->kept_wc.byte_len < SPK_RDMA_REPLY_DATA ||
	    spk_hdr_decode_flags(s, UINT32_MAX, SPK_RF_PULL, &h) < 0 ||
	    (h.type != SPK_CHUNK && h.type != SPK_REPLY) || h.id != p->id ||
	    (!(h.flags & SPK_RF_PULL) && h.len > conn->kept_wc.byte_len - SPK_RDMA_REPLY_DATA)) {
		conn->frame_kept = false;
		return break_all(conn, spk_fail(SPOKE_EPROTO, "actor at %s answered a stream with "
						"a malformed message", conn->addr));
	}
	if (h.type == SPK_REPLY && h.aux < 0) {
		rc = spk_reply_error_unpack(h.aux, s + SPK_RDMA_REPLY_DATA,
					    h.len < conn->kept_wc.byte_len - SPK_RDMA_REPLY_DATA
						    ? h.len
						    : conn->kept_wc.byte_len - SPK_RDMA_REPLY_DATA);
		conn->frame_kept = false;
		if (spk_rqp_post_recv(&conn->q, (unsigned)conn->kept_wc.wr_id) < 0)
			break_all(conn, SPOKE_EDEAD);
		else
			pop_stream(conn);
		return rc;
	}
	*len = h.len;
	if (h.len > cap) /* kept (a PULL's bytes wait at the worker) for a read with room */
		return spk_no_room(h.len, cap);
	data = s + SPK_RDMA_REPLY_DATA;
	if (h.flags & SPK_RF_PULL) {
		spk_rdma_get_ext(s + SPK_HDR_SIZE, &raddr, &rkey, &rlen);
		if (rlen != h.len || h.len <= SPK_RDMA_REPLY_INLINE || h.len > conn->max_msg) {
			conn->frame_kept = false;
			return break_all(conn, spk_fail(SPOKE_EPROTO, "actor at %s: a bad PULL in a "
							"stream", conn->addr));
		}
		rc = spk_rarea_reserve(conn->q.pd, &conn->pull, h.len, conn->max_msg, 0, 0);
		if (rc == 0)
			rc = spk_rqp_post_rdma(&conn->q, IBV_WR_RDMA_READ, conn->pull.p,
					       conn->pull.mr->lkey, h.len, raddr, rkey, &seq, deadline);
		if (rc == 0)
			rc = spk_rqp_wait_sq(&conn->q, seq, deadline);
		if (rc == 0)
			rc = send_done(conn, h.id, deadline);
		if (rc < 0) {
			conn->frame_kept = false;
			return break_all(conn, rc);
		}
		data = conn->pull.p;
	}
	if (h.len)
		memcpy(buf, data, h.len);
	conn->frame_kept = false;
	if (h.type == SPK_CHUNK)
		rc = chunk_taken(conn, (unsigned)conn->kept_wc.wr_id, deadline);
	else
		rc = spk_rqp_post_recv(&conn->q, (unsigned)conn->kept_wc.wr_id);
	if (rc < 0)
		return break_all(conn, rc);
	if (h.type == SPK_CHUNK)
		return 0;
	pop_stream(conn);
	if (h.len == 0)
		return SPOKE_EOF;
	conn->stream_eof = true; /* its body was a last chunk */
	return 0;
}

static int rconn_stream_next(struct spk_rconn *conn, void *buf, size_t cap, size_t *len,
			     int64_t deadline)
{
	int rc = lock(conn, deadline);

	if (rc < 0)
		return rc;
	if (conn->stream_eof) {
		conn->stream_eof = false;
		rc = SPOKE_EOF;
		goto out;
	}
	/* Calls given up before it (none, as the handle uses a stream's
	 * connection) are answered first. */
	while (rc == 0 && conn->count && conn->ring[conn->head].kind != K_STREAM)
		rc = complete_head(conn, deadline);
	if (rc < 0)
		goto out;
	if (!conn->count)
		rc = spk_fail(conn->broken && conn->broken != SPOKE_ECANCELED ? conn->broken
									: SPOKE_EDEAD,
			      "actor at %s: the stream's connection broke", conn->addr);
	else
		rc = stream_take(conn, buf, cap, len, deadline);
out:
	pthread_mutex_unlock(&conn->lock);
	return rc;
}

/* Gives up what runs on conn at once: it disconnects (the worker sees its
 * caller go); the next call connects anew without asking the hub. */
static void rconn_abandon(struct spk_rconn *conn)
{
	pthread_mutex_lock(&conn->lock);
	break_all(conn, SPOKE_ECANCELED); /* (a stream has no future to tell) */
	teardown(conn);
	conn->abandoned = true;
	conn->stream_eof = conn->frame_kept = false;
	pthread_mutex_unlock(&conn->lock);
}

static int rconn_future_wait(struct spk_rconn *conn, spoke_future *f, int64_t deadline)
{
	int rc = lock(conn, deadline);
	struct pend *p;

	/* Giving f up needs the lock, which another thread's call holds no
	 * longer than its own deadline. */
	if (rc < 0)
		pthread_mutex_lock(&conn->lock);
	while (!f->done_ && rc == 0)
		rc = complete_head(conn, deadline);
	if (!f->done_ && rc == SPOKE_ETIMEDOUT && (p = find(conn, f))) {
		give_up(p);
		f->status = spk_fail(rc, "actor at %s: no reply in time; the call was given up",
				     conn->addr);
		__atomic_store_n(&f->done_, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&conn->lock);
	return f->done_ ? f->status : rc;
}

static bool rconn_in_flight(struct spk_rconn *conn, const spoke_future *f)
{
	bool found;

	pthread_mutex_lock(&conn->lock); /* held no longer than another call's deadline */
	found = find(conn, f) != NULL;
	pthread_mutex_unlock(&conn->lock);
	return found;
}

static int umr_register(void *addr, size_t len, void **mr, uint32_t *lkey, uint32_t *rkey)
{
	struct spk_umr *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->base.t = &spk_rdma_transport;
	u->addr = addr;
	u->len = len;
	*mr = u;
	*lkey = 0; /* a key belongs to one connection and role: none here */
	*rkey = 0;
	return 0;
}

static void umr_deregister(void *mr)
{
	struct spk_umr *u = mr;

	pthread_mutex_lock(&ureg_lock);
	while (u->regs)
		ureg_drop(u->regs);
	pthread_mutex_unlock(&ureg_lock);
	free(u);
}

/* ---- the transport's entry (transport.h) ---- */

static struct spk_rconn *rdma_of(struct spk_conn *c)
{
	return (struct spk_rconn *)c;
}

static int op_usable(const struct spk_conn_args *args)
{
	(void)args;
	return local_check();
}

static int op_connect(struct spk_conn **out, const struct spk_conn_args *args,
			int64_t deadline)
{
	struct spk_rconn *conn = NULL;
	int err = rconn_open(&conn, args->addr, args->token, args->ident, args->poll_us, deadline);

	if (err < 0)
		return err;
	conn->base.t = &spk_rdma_transport;
	rconn_set_check(conn, args->check, args->check_arg);
	*out = &conn->base;
	return 0;
}

static void op_close(struct spk_conn *c)
{
	rconn_close(rdma_of(c));
}

static void op_describe(const struct spk_conn *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", rconn_device((const struct spk_rconn *)c));
}

static void op_set_poll(struct spk_conn *c, int poll_us)
{
	rconn_set_poll(rdma_of(c), poll_us);
}

static int op_call(struct spk_conn *c, uint32_t method, const void *req, size_t req_len,
		     void *reply, size_t cap, size_t *reply_len, int64_t deadline)
{
	return rconn_call(rdma_of(c), method, req, req_len, reply, cap, reply_len, deadline);
}

static int op_call_obj(struct spk_conn *c, uint32_t method, const spoke_serializer *req_ser,
			 const void *req, const spoke_serializer *rep_ser, void *rep,
			 int64_t deadline)
{
	return rconn_call_obj(rdma_of(c), method, req_ser, req, rep_ser, rep, deadline);
}

static int op_call_mr(struct spk_conn *c, uint32_t method, const spoke_mr *req,
			size_t req_off, size_t req_len, spoke_mr *rep, size_t rep_off, size_t cap,
			size_t *reply_len, int64_t deadline)
{
	return rconn_call_mr(rdma_of(c), method, req, req_off, req_len, rep, rep_off, cap,
			     reply_len, deadline);
}

static int op_call_async(struct spk_conn *c, uint32_t method, const void *req,
			   size_t req_len, void *reply, size_t cap, spoke_future *f,
			   int64_t deadline)
{
	return rconn_call_async(rdma_of(c), method, req, req_len, reply, cap, f, deadline);
}

static int op_future_cancel(struct spk_conn *c, spoke_future *f, int64_t deadline)
{
	return rconn_future_cancel(rdma_of(c), f, deadline);
}

static int op_stream_start(struct spk_conn *c, uint32_t method, const void *req,
			   size_t req_len, int64_t deadline)
{
	return rconn_stream_start(rdma_of(c), method, req, req_len, deadline);
}

static int op_stream_next(struct spk_conn *c, void *buf, size_t cap, size_t *len,
			  int64_t deadline)
{
	return rconn_stream_next(rdma_of(c), buf, cap, len, deadline);
}

static void op_abandon(struct spk_conn *c)
{
	rconn_abandon(rdma_of(c));
}

static int op_future_wait(struct spk_conn *c, spoke_future *f, int64_t deadline)
{
	return rconn_future_wait(rdma_of(c), f, deadline);
}

static bool op_in_flight(struct spk_conn *c, const spoke_future *f)
{
	return rconn_in_flight(rdma_of(c), f);
}

static int op_mr_register(struct spk_conn *c, spoke_mr *mr)
{
	(void)c; /* each connection registers it when a call there first uses it */
	return umr_register(mr->addr, mr->len, &mr->mr_, &mr->lkey_, &mr->rkey_);
}

static void op_mr_deregister(spoke_mr *mr)
{
	umr_deregister(mr->mr_);
}

const struct spk_transport spk_rdma_transport = {
	.name = "rdma",
	.unavailable = SPOKE_ERDMA,
	.usable = op_usable,
	.connect = op_connect,
	.close = op_close,
	.describe = op_describe,
	.set_poll = op_set_poll,
	.call = op_call,
	.call_obj = op_call_obj,
	.call_mr = op_call_mr,
	.call_async = op_call_async,
	.future_wait = op_future_wait,
	.in_flight = op_in_flight,
	.future_cancel = op_future_cancel,
	.stream_start = op_stream_start,
	.stream_next = op_stream_next,
	.abandon = op_abandon,
	.mr_register = op_mr_register,
	.mr_deregister = op_mr_deregister,
	.server = &spk_rdma_server,
};

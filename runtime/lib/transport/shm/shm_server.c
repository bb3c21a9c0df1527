/* shm_server.c - the worker's end of shared-memory connections.
 *
 * An abstract Unix socket (SOCK_SEQPACKET) with a random name, watched by
 * the worker's libev loop.  A client first asks over authenticated TCP
 * (hello) and gets the name and a one-time cookie; then it connects, and
 * a peer of another uid, without a live cookie, or with a region that is
 * not a memfd of the right size sealed against shrinking and growing, is
 * refused and closed (shm.h).  Each connection's request ring is served in
 * order, one call at a time, as TCP's are: the method reads its request in
 * place (in the ring, or in the client's bulk area) and packs its reply
 * straight into the reply ring's free space, moving to the worker's own
 * bulk area when it outgrows it (grow_reply).  The client's eventfd writes
 * wake the loop; a spinning worker polls the rings instead.
 *
 * A method may keep its call (SPK_KEPT, transport.h): no reply goes out
 * then, the request is released as usual, and the connection's next calls
 * wait in its ring until the worker answers (shm_answer, on the loop's
 * thread: the reply goes out as a method's would, through publish()); a
 * connection that ends with its call still kept tells the worker (env.gone).
 * A kept stream call's CHUNKs go into the reply ring (or, large, the reply
 * area) through shm_chunk, shown and woken once per batch (shm_flush);
 * shm_chunk says SPOKE_EAGAIN once STREAM_ROOM bytes wait for the client.
 * A CANCEL frame (the client gave a call up) goes to env.cancel: in the
 * ring's order, or, while a kept call holds the ring, by looking ahead
 * (look_ahead; the frames stay where they are, and each CANCEL counts
 * once).
 *
 * A connection whose peer breaks the rules (a ring that lies, an area it
 * never sent) is dropped alone, with a rate-limited line naming its pid;
 * its socket's end tells the client.  A client that dies closes its socket:
 * the loop sees it and frees the connection. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>
#include <sodium.h>

#include <spoke/errors.h>

#include "auth.h"
#include "clock.h"
#include "errmsg.h"
#include "loop_conn.h"
#include "frame.h"
#include "log.h"
#include "shm.h"
#include "shm_mem.h"
#include "shm_ring.h"
#include "shm_wire.h"
#include "transport/transport.h"

#define COOKIES 256 /* connections being set up at once */
/* A stream's chunks wait for their reader in the reply ring up to this
 * much (then spoke_stream_emit is throttled: shm_chunk says SPOKE_EAGAIN). */
#define STREAM_ROOM (256u << 10)
#define COOKIE_TTL_US (10 * 1000000LL)

struct sconn {
	struct shm_srv *srv;
	int sock, efd;
	ev_io sock_w, efd_w;
	ev_timer setup_w; /* until the connect message: SPK_SHM_SETUP_S */
	bool up; /* past the connect message */
	/* A call kept by its method (SPK_KEPT): none of this connection's
	 * calls is served until shm_answer sends its reply. */
	bool kept;
	uint64_t kept_id;
	struct spk_shm_mr_desc kept_mr; /* its spoke_mr descriptor (rep_id 0: none) */
	uint64_t look; /* the request ring is looked through for CANCELs up to here */
	uint8_t *region;
	struct spk_shm_ctl *ctl;
	struct spk_shm_ring req, rep;
	struct spk_shm_area rx, tx; /* the client's request area, our reply area */
	uint64_t tx_hold; /* the reply ring's tail frees tx when it reaches this */
	struct wmr *mrs;  /* the client's spoke_mr memories, mapped (shm.h) */
	unsigned n_mrs, cap_mrs;
	char peer[32];
	struct sconn *next;
};

/* A client's spoke_mr memory, mapped here. */
struct wmr {
	uint32_t id;
	uint8_t *p;
	size_t size;
};

struct shm_srv {
	struct spk_server_env env;
	uint32_t max_msg;
	size_t area_max;
	int lfd;
	struct spk_acceptor acceptor;
	char name[SPK_SHM_NAME_MAX];
	char why[256]; /* why shared memory is off here; "" when on */
	struct {
		uint8_t v[SPK_SHM_COOKIE];
		int64_t expires;
	} cookies[COOKIES];
	unsigned next_cookie;
	unsigned setups; /* connections not up yet (SPK_SHM_SETUPS_MAX) */
	struct sconn *conns;
};

static void conn_free(struct sconn *c)
{
	struct shm_srv *s = c->srv;

	if (c->kept) { /* the worker cancels it, and never answers it */
		c->kept = false;
		if (s->env.gone)
			s->env.gone(c);
	}
	for (struct sconn **pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ev_io_stop(s->env.loop, &c->sock_w);
	if (!c->up) {
		ev_timer_stop(s->env.loop, &c->setup_w);
		s->setups--;
	}
	if (c->efd >= 0) {
		ev_io_stop(s->env.loop, &c->efd_w);
		close(c->efd);
	}
	close(c->sock);
	if (c->region)
		munmap(c->region, SPK_SHM_REGION);
	spk_shm_area_free(&c->rx);
	spk_shm_area_free(&c->tx);
	for (unsigned i = 0; i < c->n_mrs; i++)
		munmap(c->mrs[i].p, c->mrs[i].size);
	free(c->mrs);
	free(c);
}

static int drop(struct sconn *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int shm_answer(void *conn, const struct spk_answer *a);
static int shm_chunk(void *conn, uint64_t id, const void *data, size_t len);
static void shm_flush(void *conn);

/* Ends connection c, saying why at level; returns -1 for `return drop()`. */
static int drop(struct sconn *c, int level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spk_log_limited(level, "shared-memory connection of %s: %s; closing it", c->peer, msg);
	conn_free(c);
	return -1;
}

static struct wmr *find_mr(struct sconn *c, uint32_t id)
{
	for (unsigned i = 0; i < c->n_mrs; i++)
		if (c->mrs[i].id == id)
			return &c->mrs[i];
	return NULL;
}

/* One message of the client's socket (m, n bytes, with descriptor fd):
 * its next request area, a spoke_mr memory, or the end of one.  0, or
 * SPOKE_EPROTO (why in spoke_errmsg()). */
static int take_msg(struct sconn *c, const uint8_t *m, size_t n, int fd)
{
	struct spk_shm_area_msg am;
	struct spk_shm_mr_msg mm;
	struct wmr *w;
	uint32_t type;
	size_t size;
	void *p;
	int rc;

	if (n < sizeof(type))
		return spk_fail(SPOKE_EPROTO, "a message of %zu bytes on the socket", n);
	memcpy(&type, m, sizeof(type));
	if (type == SPK_SHM_AREA_MSG && n == sizeof(am) && fd >= 0) {
		memcpy(&am, m, sizeof(am));
		if (am.gen != c->rx.gen + 1 || am.size < SPK_SHM_BULK_MIN ||
		    am.size > c->srv->area_max || (am.size & (am.size - 1)))
			return spk_fail(SPOKE_EPROTO, "a bulk area %u of %llu bytes after area %u",
					am.gen, (unsigned long long)am.size, c->rx.gen);
		rc = spk_shm_map_peer(fd, (size_t)am.size, 0, 0, &p, &size);
		if (rc < 0)
			return rc;
		spk_shm_area_free(&c->rx); /* the client sends one only once it is free */
		c->rx.p = p;
		c->rx.size = size;
		c->rx.gen = am.gen;
		return 0;
	}
	if ((type != SPK_SHM_MR_MSG && type != SPK_SHM_MR_FREE) || n != sizeof(mm) ||
	    (fd >= 0) != (type == SPK_SHM_MR_MSG))
		return spk_fail(SPOKE_EPROTO, "an unexpected message of %zu bytes on the socket", n);
	memcpy(&mm, m, sizeof(mm));
	w = find_mr(c, mm.id);
	if (type == SPK_SHM_MR_FREE) { /* (an id never sent: nothing to free) */
		if (w) {
			munmap(w->p, w->size);
			*w = c->mrs[--c->n_mrs];
		}
		return 0;
	}
	if (mm.id == 0 || w || mm.size == 0 || mm.size % (uint64_t)sysconf(_SC_PAGESIZE))
		return spk_fail(SPOKE_EPROTO, "spoke_mr memory %u of %llu bytes (sent twice, or no "
				"size)", mm.id, (unsigned long long)mm.size);
	if (c->n_mrs == SPK_SHM_MRS_MAX)
		return spk_fail(SPOKE_EPROTO, "more than %u spoke_mr memories on one connection",
				SPK_SHM_MRS_MAX);
	if (c->n_mrs == c->cap_mrs) { /* once per new memory, never per call */
		unsigned cap = c->cap_mrs ? 2 * c->cap_mrs : 8;
		struct wmr *a = realloc(c->mrs, cap * sizeof(*a));

		if (!a)
			return spk_fail(SPOKE_EPROTO, "no memory for spoke_mr memory %u", mm.id);
		c->mrs = a;
		c->cap_mrs = cap;
	}
	rc = spk_shm_map_peer(fd, (size_t)mm.size, 0, 0, &p, &size);
	if (rc < 0)
		return rc;
	c->mrs[c->n_mrs++] = (struct wmr){ .id = mm.id, .p = p, .size = size };
	return 0;
}

/* Takes every message waiting on c's socket; -1 if c was dropped (a bad
 * message, or the client's end). */
static int take_msgs(struct sconn *c)
{
	uint8_t m[64];
	ssize_t n;
	int fd, rc;

	for (;;) {
		n = spk_shm_recv(c->sock, m, sizeof(m), &fd, MSG_DONTWAIT);
		if (n == -EAGAIN || n == -EINTR)
			return 0;
		if (n == 0 || n == -ECONNRESET)
			return drop(c, SPK_LOG_INFO, "the client left");
		if (n < 0)
			return drop(c, SPK_LOG_WARN, "the socket: %s", strerror((int)-n));
		rc = take_msg(c, m, (size_t)n, fd);
		if (fd >= 0)
			close(fd); /* a mapping keeps the memory */
		if (rc < 0)
			return drop(c, SPK_LOG_WARN, "%s", spoke_errmsg());
	}
}

/* The request and reply memory of an MR frame f of len request bytes:
 * bounds-checked against the client's mappings.  0, or -1 (dropped). */
static int mr_frame(struct sconn *c, const uint8_t *f, uint32_t len, spoke_view *req,
		    uint8_t **rep, size_t *cap)
{
	struct spk_shm_mr_desc d;
	struct wmr *q = NULL, *r = NULL;

	spk_shm_mr_desc_get(f, &d);
	if ((d.req_id && !(q = find_mr(c, d.req_id))) || (d.rep_id && !(r = find_mr(c, d.rep_id)))) {
		if (take_msgs(c) < 0) /* sent before the frame: on the socket now */
			return -1;
		q = d.req_id ? find_mr(c, d.req_id) : NULL;
		r = d.rep_id ? find_mr(c, d.rep_id) : NULL;
		if ((d.req_id && !q) || (d.rep_id && !r))
			return drop(c, SPK_LOG_WARN, "a call in spoke_mr memory never sent");
	}
	if ((q ? d.req_off > q->size || len > q->size - d.req_off : len != 0) ||
	    (r ? d.rep_off > r->size || d.rep_cap > r->size - d.rep_off : d.rep_cap != 0))
		return drop(c, SPK_LOG_WARN, "a call outside its spoke_mr memory (request %u bytes "
			    "at %llu, reply %llu at %llu)", len, (unsigned long long)d.req_off,
			    (unsigned long long)d.rep_cap, (unsigned long long)d.rep_off);
	spoke_view_init(req, q ? q->p + d.req_off : NULL, len);
	*rep = r ? r->p + d.rep_off : NULL;
	*cap = r ? (size_t)d.rep_cap : 0;
	return 0;
}

/* spoke_buf grow hook: the reply outgrew the ring's free space (or the
 * area): it moves to a bulk area large enough, free since serve() began. */
static int grow_reply(spoke_buf *b, size_t need)
{
	struct sconn *c = b->owner;
	struct spk_shm_area *a = &c->tx;

	if (need > c->srv->max_msg)
		return SPOKE_ETOOBIG;
	if (b->data == a->p && need <= a->size) {
		b->cap = a->size;
		return 0;
	}
	if (need > a->size) {
		int rc = spk_shm_area_grow(a, c->sock, need, b->data == a->p ? b->len : 0,
					   c->srv->area_max);

		if (rc < 0) {
			spk_warn("shared-memory connection of %s: %s", c->peer, spoke_errmsg());
			return rc == SPOKE_ETOOBIG ? rc : -ENOMEM;
		}
	}
	if (b->data != a->p)
		memcpy(a->p, b->data, b->len);
	b->data = a->p;
	b->cap = a->size;
	return 0;
}

/* Whether the call at the head can be served now: room for its reply, and
 * the reply area free.  1 if so, 0 if not, -1 if the ring lies (dropped). */
static int can_reply(struct sconn *c, uint8_t **at, size_t *room)
{
	uint64_t tail = __atomic_load_n(c->rep.tail, __ATOMIC_ACQUIRE);
	int rc;

	if (c->tx_hold && tail < c->tx_hold) /* (a tail that lies: spk_shm_ring_room) */
		return 0;
	c->tx_hold = 0;
	rc = spk_shm_ring_room(&c->rep, SPK_SHM_MIN_ROOM, at, room);
	if (rc < 0)
		return drop(c, SPK_LOG_WARN, "%s", spoke_errmsg());
	return rc == 0;
}

/* Publishes the REPLY to call id with status, its header at `at` (room
 * from can_reply): the body is b's, packed after the header, in the
 * bulk area (tx, then held until the client is past this frame) or in the
 * caller's spoke_mr memory mrep. */
static void publish(struct sconn *c, uint8_t *at, uint64_t id, int status, const spoke_buf *b,
		    const uint8_t *mrep)
{
	spk_hdr_encode(at, SPK_REPLY, id, status, (uint32_t)b->len);
	if (b->data == at + SPK_HDR_SIZE) {
		spk_shm_ring_publish(&c->rep, at, SPK_HDR_SIZE + b->len);
	} else if (mrep && b->data == mrep) {
		static const struct spk_shm_mr_desc none;

		spk_hdr_set_flags(at, SPK_SF_MR);
		spk_shm_mr_desc_put(at, &none);
		spk_shm_ring_publish(&c->rep, at, SPK_HDR_SIZE + SPK_SHM_MR_DESC);
	} else {
		spk_hdr_set_flags(at, SPK_SF_BULK);
		spk_shm_bulk_put(at, c->tx.gen);
		spk_shm_ring_publish(&c->rep, at, SPK_HDR_SIZE + SPK_SHM_BULK_DESC);
		c->tx_hold = c->rep.pos;
	}
}

/* While a kept call holds c's request ring: the CANCEL frames published
 * behind it go to env.cancel now, once each (serve_batch skips them when
 * it reaches them); every other frame waits its turn.  0, or -1 if c was
 * dropped. */
static int look_ahead(struct sconn *c)
{
	struct shm_srv *s = c->srv;
	const uint8_t *f;
	struct spk_hdr h;
	uint64_t at = c->look;
	int rc;

	while ((rc = spk_shm_ring_scan(&c->req, &at, &h, &f)) == 0) {
		c->look = at;
		if (h.type == SPK_CANCEL && s->env.cancel) {
			(*s->env.frames)++;
			s->env.cancel(c, h.id);
		}
	}
	return rc < 0 ? drop(c, SPK_LOG_WARN, "%s", spoke_errmsg()) : 0;
}

/* Whether frames came into c's request ring that look_ahead has not seen. */
static bool unseen(const struct sconn *c)
{
	uint64_t head = __atomic_load_n(c->req.head, __ATOMIC_ACQUIRE);

	return head != (c->look > c->req.pos ? c->look : c->req.pos);
}

/* Serves the calls waiting in c's request ring, as long as replies have
 * room and no call is kept, counting the replies published in *replies;
 * -1 if c was dropped (freed). */
static int serve_batch(struct sconn *c, unsigned *replies)
{
	struct shm_srv *s = c->srv;

	for (;;) {
		char msg[SPK_REPLY_ERROR_MAX]; /* written only for a failure: not zeroed per call */
		const uint8_t *f;
		struct spk_hdr h;
		spoke_view req;
		spoke_buf b;
		uint8_t *at, *mrep;
		size_t room, mcap = 0;
		int rc, status, code = 0;

		if (c->kept)
			return look_ahead(c);
		rc = spk_shm_ring_peek(&c->req, &h, &f);
		if (rc < 0)
			return drop(c, SPK_LOG_WARN, "%s", spoke_errmsg());
		if (rc == 1)
			return 0;
		if (h.type == SPK_CANCEL) { /* no reply; one seen ahead already counted */
			bool seen = c->req.pos < c->look;

			spk_shm_ring_release(&c->req);
			(*s->env.frames)++;
			if (!seen && s->env.cancel)
				s->env.cancel(c, h.id);
			continue;
		}
		rc = can_reply(c, &at, &room);
		if (rc < 0)
			return rc;
		if (rc == 0) { /* the client's next look at its replies kicks us */
			__atomic_store_n(&c->ctl->worker_space, 1, __ATOMIC_RELAXED);
			spk_shm_fence();
			rc = can_reply(c, &at, &room);
			if (rc <= 0)
				return rc;
		}
		if (__atomic_load_n(&c->ctl->worker_space, __ATOMIC_RELAXED))
			__atomic_store_n(&c->ctl->worker_space, 0, __ATOMIC_RELAXED);
		mrep = NULL;
		if (h.flags & SPK_SF_BULK) {
			uint32_t gen = spk_shm_bulk_gen(f);

			if (gen != c->rx.gen && take_msgs(c) < 0) /* sent before the frame */
				return -1;
			if (gen != c->rx.gen)
				return drop(c, SPK_LOG_WARN, "a frame in bulk area %u, never sent", gen);
			if (h.len > c->rx.size)
				return drop(c, SPK_LOG_WARN, "a request of %u bytes in an area of %zu",
					    h.len, c->rx.size);
			spoke_view_init(&req, c->rx.p, h.len);
		} else if (h.flags & SPK_SF_MR) {
			if (mr_frame(c, f, h.len, &req, &mrep, &mcap) < 0)
				return -1;
		} else {
			spoke_view_init(&req, f + SPK_HDR_SIZE, h.len);
		}
		if (mrep) /* packed straight into the caller's reply memory */
			spoke_buf_init(&b, mrep, mcap);
		else
			spoke_buf_init(&b, at + SPK_HDR_SIZE, room - SPK_HDR_SIZE);
		b.grow = grow_reply;
		b.owner = c;
		msg[0] = '\0';
		status = s->env.run(&(struct spk_call_origin){ .conn = c, .id = h.id,
							       .stream = (h.flags & SPK_CF_STREAM) != 0,
							       .ttl_ms = h.ttl_ms,
							       .answer = shm_answer,
							       .chunk = shm_chunk,
							       .flush = shm_flush },
				    (uint32_t)h.aux, &req, &b, &code, msg, sizeof(msg));
		(*s->env.frames)++;
		if (status == SPK_KEPT) { /* no reply now; the calls behind it wait */
			c->kept = true;
			c->kept_id = h.id;
			c->kept_mr = (struct spk_shm_mr_desc){ 0 };
			if (h.flags & SPK_SF_MR) /* checked again when answered */
				spk_shm_mr_desc_get(f, &c->kept_mr);
		}
		spk_shm_ring_release(&c->req); /* the request is dead */
		if (c->kept)
			break;
		if (status < 0) { /* what the method packed is dropped */
			spoke_buf_init(&b, at + SPK_HDR_SIZE, room - SPK_HDR_SIZE);
			spk_reply_error_pack(&b, status, code, msg);
		}
		publish(c, at, h.id, status, &b, mrep);
		(*replies)++;
	}
	return 0;
}

/* serve_batch, then one wake-up for a sleeping client, whatever the batch's
 * size (a spinning client sees each reply as it is published). */
static int serve(struct sconn *c)
{
	unsigned replies = 0;
	int rc = serve_batch(c, &replies);

	if (rc >= 0 && replies)
		spk_shm_wake(&c->ctl->client_seq, &c->ctl->client_sleeping);
	return rc;
}

/* Serves c, then (blocking mode) says it may sleep, and serves what came
 * in between. */
static void serve_and_arm(struct sconn *c, bool arm)
{
	do {
		/* Written only when it changes: the client reads this line on
		 * every call, and a store would take it away each time. */
		if (__atomic_load_n(&c->ctl->worker_sleeping, __ATOMIC_RELAXED))
			__atomic_store_n(&c->ctl->worker_sleeping, 0, __ATOMIC_RELAXED);
		if (serve(c) < 0)
			return;
		if (!arm)
			return;
		__atomic_store_n(&c->ctl->worker_sleeping, 1, __ATOMIC_RELAXED);
		spk_shm_fence();
	} while (c->kept ? unseen(c)
			 : spk_shm_ring_pending(&c->req) && !c->ctl->worker_space);
}

static void efd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sconn *c = w->data;
	uint64_t v;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(c->efd, &v, sizeof(v));
	(void)n;
	serve_and_arm(c, !c->srv->env.spin);
}

/* The client's spoke_mr memory that kept call's reply may go to (its
 * descriptor checked again: the client may have freed it since), or NULL. */
static uint8_t *kept_mr_reply(struct sconn *c, size_t len)
{
	const struct spk_shm_mr_desc *d = &c->kept_mr;
	struct wmr *r = d->rep_id ? find_mr(c, d->rep_id) : NULL;

	if (!r || d->rep_off > r->size || d->rep_cap > r->size - d->rep_off || len > d->rep_cap)
		return NULL;
	return r->p + d->rep_off;
}

/* transport.h's answer: the REPLY of c's kept call, on the loop's thread.
 * Where there is no room for it now (the reply ring full, the bulk area
 * still held), SPOKE_EAGAIN: the worker tries again.  Once it is out, the
 * calls that waited behind it are served from the loop (efd_w), not from
 * inside this function, whose caller is in the middle of its answer. */
static int shm_answer(void *conn, const struct spk_answer *a)
{
	struct sconn *c = conn;
	char msg[SPK_REPLY_ERROR_MAX];
	uint8_t *at, *mrep = NULL;
	int status = a->status;
	size_t room;
	spoke_buf b;
	int rc;

	if (!c->kept || a->id != c->kept_id) {
		spk_warn("shared-memory connection of %s: an answer to call %llu, not the one kept "
			 "(%s %llu); dropped", c->peer, (unsigned long long)a->id,
			 c->kept ? "call" : "none, last", (unsigned long long)c->kept_id);
		return 0;
	}
	/* Answered from here on, also when a ring that lies drops c below:
	 * conn_free must not cancel a call the worker has answered. */
	c->kept = false;
	rc = can_reply(c, &at, &room);
	if (rc < 0)
		return 0; /* c is gone (freed) */
	if (rc == 0) {
		c->kept = true;
		return SPOKE_EAGAIN;
	}
	spoke_buf_init(&b, at + SPK_HDR_SIZE, room - SPK_HDR_SIZE);
	b.grow = grow_reply; /* the reply area is free: can_reply said so */
	b.owner = c;
	if (status == 0) {
		mrep = kept_mr_reply(c, a->len);
		if (mrep) /* where the caller wants it, as the method would have */
			spoke_buf_init(&b, mrep, a->len);
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
		spoke_buf_init(&b, at + SPK_HDR_SIZE, room - SPK_HDR_SIZE);
		spk_reply_error_pack(&b, status, a->code, msg);
	}
	publish(c, at, a->id, status, &b, mrep);
	spk_shm_wake(&c->ctl->client_seq, &c->ctl->client_sleeping);
	if (spk_shm_ring_pending(&c->req)) /* the calls behind it, from the loop */
		ev_feed_event(c->srv->env.loop, &c->efd_w, EV_READ);
	return 0;
}

/* transport.h's chunk: one CHUNK of c's kept stream call, written into the
 * reply ring (or, past a quarter of it, the reply area), shown by
 * shm_flush.  SPOKE_EAGAIN while STREAM_ROOM bytes wait for the client, or
 * there is no room for it now. */
static int shm_chunk(void *conn, uint64_t id, const void *data, size_t len)
{
	struct sconn *c = conn;
	bool bulk = SPK_HDR_SIZE + len > SPK_SHM_RING / 4;
	uint64_t tail;
	uint8_t *at;
	size_t room;
	int rc;

	rc = spk_shm_ring_room(&c->rep, bulk ? SPK_HDR_SIZE + SPK_SHM_BULK_DESC
					     : SPK_HDR_SIZE + len, &at, &room);
	if (rc < 0) {
		drop(c, SPK_LOG_WARN, "%s", spoke_errmsg());
		return 0; /* c is gone (freed): the worker learnt it (env.gone) */
	}
	tail = __atomic_load_n(c->rep.tail, __ATOMIC_ACQUIRE);
	if (rc == 1 || c->rep.pos - tail > STREAM_ROOM)
		return SPOKE_EAGAIN;
	if (bulk) {
		if (c->tx_hold && tail < c->tx_hold) /* the area holds an earlier message */
			return SPOKE_EAGAIN;
		c->tx_hold = 0;
		if (len > c->tx.size) {
			rc = spk_shm_area_grow(&c->tx, c->sock, len, 0, c->srv->area_max);
			if (rc < 0) { /* the stream ends with its REPLY; this chunk is lost */
				spk_warn("shared-memory connection of %s: a chunk of %zu bytes of call "
					 "%llu dropped: %s", c->peer, len, (unsigned long long)id,
					 spoke_errmsg());
				return 0;
			}
		}
		memcpy(c->tx.p, data, len);
		spk_hdr_encode(at, SPK_CHUNK, id, 0, (uint32_t)len);
		spk_hdr_set_flags(at, SPK_SF_BULK);
		spk_shm_bulk_put(at, c->tx.gen);
		spk_shm_ring_write(&c->rep, at, SPK_HDR_SIZE + SPK_SHM_BULK_DESC);
		c->tx_hold = c->rep.pos;
		return 0;
	}
	spk_hdr_encode(at, SPK_CHUNK, id, 0, (uint32_t)len);
	if (len)
		memcpy(at + SPK_HDR_SIZE, data, len);
	spk_shm_ring_write(&c->rep, at, SPK_HDR_SIZE + len);
	return 0;
}

/* transport.h's flush: shows the client the chunks written, and wakes it. */
static void shm_flush(void *conn)
{
	struct sconn *c = conn;

	spk_shm_ring_flush(&c->rep);
	spk_shm_wake(&c->ctl->client_seq, &c->ctl->client_sleeping);
}

static bool take_cookie(struct shm_srv *s, const struct spk_shm_connect *m)
{
	uint32_t i = m->index;

	if (i >= COOKIES || s->cookies[i].expires <= spk_now_us() ||
	    sodium_memcmp(m->cookie, s->cookies[i].v, SPK_SHM_COOKIE) != 0)
		return false;
	s->cookies[i].expires = 0; /* once */
	return true;
}

/* The one answer of a refusal (the socket's end follows). */
static void send_refusal(int fd, int status, const char *why)
{
	struct spk_shm_answer a = { .status = status };
	uint8_t out[SPK_SHM_ANSWER_MAX];
	spoke_buf b;

	snprintf(a.text, sizeof(a.text), "%s", why);
	spoke_buf_init(&b, out, sizeof(out));
	if (spk_shm_answer_pack(&b, &a) == 0)
		spk_shm_send(fd, out, b.len, -1);
}

static void refuse(struct sconn *c, int status, const char *why)
{
	send_refusal(c->sock, status, why);
	drop(c, SPK_LOG_WARN, "refused: %s", why);
}

/* The connect message: checks it and the region, maps it, answers. */
static void on_connect_msg(struct sconn *c, const uint8_t *p, size_t n, int fd)
{
	struct shm_srv *s = c->srv;
	struct spk_shm_answer a = { .status = 0 };
	uint8_t out[SPK_SHM_ANSWER_MAX];
	struct spk_shm_connect m;
	spoke_view v;
	spoke_buf b;
	void *region;

	spoke_view_init(&v, p, n);
	if (fd < 0 || spk_shm_connect_unpack(&v, &m) < 0)
		return refuse(c, SPOKE_EPROTO, "a malformed connect message");
	if (m.version != SPK_SHM_VERSION || m.ring != SPK_SHM_RING)
		return refuse(c, SPOKE_EPROTO, "another version or ring size");
	if (!take_cookie(s, &m))
		return refuse(c, SPOKE_EAUTH, "no live cookie (each is good once, for 10 s)");
	if (spk_shm_map_peer(fd, SPK_SHM_REGION, 0, 0, &region, NULL) < 0)
		return refuse(c, SPOKE_EPROTO, spoke_errmsg());
	c->region = region;
	c->ctl = region;
	spk_shm_ring_init(&c->req, c->region + SPK_SHM_CTL, SPK_SHM_RING, &c->ctl->req_head,
			  &c->ctl->req_tail, SPK_CALL, s->max_msg);
	c->req.also = SPK_CANCEL;
	spk_shm_ring_init(&c->rep, c->region + SPK_SHM_CTL + SPK_SHM_RING, SPK_SHM_RING,
			  &c->ctl->rep_head, &c->ctl->rep_tail, SPK_REPLY, s->max_msg);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0)
		return refuse(c, -errno, "eventfd failed");
	__atomic_store_n(&c->ctl->worker_sleeping, s->env.spin ? 0 : 1, __ATOMIC_RELAXED);
	spoke_buf_init(&b, out, sizeof(out));
	spk_shm_answer_pack(&b, &a);
	if (spk_shm_send(c->sock, out, b.len, c->efd) < 0)
		return (void)drop(c, SPK_LOG_INFO, "the client left before the answer");
	ev_timer_stop(s->env.loop, &c->setup_w);
	s->setups--;
	c->up = true;
	ev_io_init(&c->efd_w, efd_cb, c->efd, EV_READ);
	c->efd_w.data = c;
	ev_io_start(s->env.loop, &c->efd_w);
	spk_info("shared-memory connection of %s", c->peer);
	serve_and_arm(c, !s->env.spin); /* calls may be there already */
}

/* The socket: the connect message first, then area messages; its end is
 * the client's. */
static void sock_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sconn *c = w->data;
	uint8_t buf[SPK_SHM_CONNECT_SIZE + 1];
	ssize_t n;
	int fd;

	(void)loop;
	(void)revents;
	if (c->up) { /* areas and memories, or the end */
		take_msgs(c);
		return;
	}
	n = spk_shm_recv(c->sock, buf, sizeof(buf), &fd, MSG_DONTWAIT);
	if (n == -EAGAIN)
		return;
	if (n <= 0)
		return (void)drop(c, SPK_LOG_INFO, "left before its connect message");
	on_connect_msg(c, buf, (size_t)n, fd);
	if (fd >= 0)
		close(fd);
}

/* A set-up that did not send its connect message in time: it held a
 * descriptor and a place among the set-ups for nothing. */
static void setup_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	drop(w->data, SPK_LOG_WARN, "no connect message within %.0f s", SPK_SHM_SETUP_S);
}

/* A connection on the abstract socket (loop_conn.h's acceptor: one per call,
 * and a pause, not a spin, when descriptors run out). */
static void on_accept(struct spk_acceptor *a, int fd, const char *peer_addr)
{
	struct shm_srv *s = a->data;
	struct sconn *c;
	pid_t pid;
	uid_t uid;

	(void)peer_addr; /* an abstract socket's peer has no address: its credentials say who */
	/* Another user learns nothing, not even why. */
	if (spk_shm_peer(fd, &pid, &uid) < 0 || uid != getuid()) {
		spk_warn("shared-memory connection of uid %u (pid %d) refused: not ours",
			 (unsigned)uid, (int)pid);
		close(fd);
		return;
	}
	if (s->setups >= SPK_SHM_SETUPS_MAX) {
		spk_warn("shared-memory connection of pid %d refused: %u set-ups at once", (int)pid,
			 s->setups);
		send_refusal(fd, SPOKE_ETRANSPORT, "too many shared-memory connections being set "
			     "up at once; try again");
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = s;
	c->sock = fd;
	c->efd = -1;
	snprintf(c->peer, sizeof(c->peer), "pid %d", (int)pid);
	ev_io_init(&c->sock_w, sock_cb, fd, EV_READ);
	c->sock_w.data = c;
	ev_io_start(s->env.loop, &c->sock_w);
	ev_timer_init(&c->setup_w, setup_timeout, SPK_SHM_SETUP_S, 0.);
	c->setup_w.data = c;
	ev_timer_start(s->env.loop, &c->setup_w);
	s->setups++;
	c->next = s->conns;
	s->conns = c;
}

static int shm_start(void **out, const struct spk_server_env *env)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct spk_transport_choice mode;
	struct shm_srv *s = calloc(1, sizeof(*s));
	uint8_t rnd[8];
	socklen_t len;
	int tries;

	if (!s)
		return -ENOMEM;
	s->env = *env;
	s->max_msg = spk_max_payload();
	for (s->area_max = SPK_SHM_BULK_MIN; s->area_max < s->max_msg; s->area_max <<= 1)
		;
	*out = s;
	s->lfd = -1;
	/* As RDMA's server does: the worker's SPOKE_TRANSPORT naming another
	 * transport turns this one off (clients that insist are told why). */
	if (spk_transport_from_env(&mode) == 0 && !spk_transport_allowed(&mode,
									     &spk_shm_transport)) {
		snprintf(s->why, sizeof(s->why), "SPOKE_TRANSPORT=%s on the actor's node",
			 getenv("SPOKE_TRANSPORT"));
		goto out_off;
	}
	s->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		snprintf(s->why, sizeof(s->why), "socket(AF_UNIX): %s", strerror(errno));
		goto out_off;
	}
	for (tries = 0; tries < 16; tries++) { /* a random name, never a path */
		randombytes_buf(rnd, sizeof(rnd));
		snprintf(s->name, sizeof(s->name), SPK_SHM_NAME_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
			 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		memcpy(sa.sun_path + 1, s->name, strlen(s->name));
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(s->name));
		if (bind(s->lfd, (struct sockaddr *)&sa, len) == 0)
			break;
		if (errno != EADDRINUSE)
			tries = 16;
	}
	if (tries >= 16 || listen(s->lfd, 64) < 0) {
		snprintf(s->why, sizeof(s->why), "cannot listen on an abstract Unix socket: %s",
			 strerror(errno));
		goto out_off;
	}
	spk_acceptor_start(&s->acceptor, env->loop, s->lfd, on_accept, s);
	spk_debug("shared memory on @%s", s->name);
	return 0;
out_off:
	spk_debug("shared memory off: %s", s->why);
	if (s->lfd >= 0)
		close(s->lfd);
	s->lfd = -1;
	return 0;
}

static void shm_stop(void *srv)
{
	struct shm_srv *s = srv;

	if (!s)
		return;
	while (s->conns)
		conn_free(s->conns);
	if (s->lfd >= 0) {
		spk_acceptor_stop(&s->acceptor);
		close(s->lfd);
	}
	free(s);
}

static void shm_hello(void *srv, struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *p)
{
	struct shm_srv *s = srv;
	int64_t now = spk_now_us();
	struct spk_shm_offer o = { .ring = SPK_SHM_RING, .credits = SPK_SHM_CREDITS,
				   .max_msg = s->max_msg };
	unsigned i, n;
	spoke_buf b;

	(void)p;
	if (s->why[0]) {
		spk_loop_reply_error(c, h->id, SPOKE_ETRANSPORT, "no shared memory here: %s",
				       s->why);
		return;
	}
	/* A free slot: never one whose cookie is still live. */
	for (n = 0, i = s->next_cookie; n < COOKIES && s->cookies[i].expires > now; n++)
		i = (i + 1) % COOKIES;
	if (n == COOKIES) {
		spk_loop_reply_error(c, h->id, SPOKE_ETRANSPORT, "%d shared-memory connections "
				       "being set up at once; try again", COOKIES);
		return;
	}
	s->next_cookie = (i + 1) % COOKIES;
	randombytes_buf(s->cookies[i].v, SPK_SHM_COOKIE);
	s->cookies[i].expires = now + COOKIE_TTL_US;
	o.index = i;
	memcpy(o.cookie, s->cookies[i].v, SPK_SHM_COOKIE);
	snprintf(o.name, sizeof(o.name), "%s", s->name);
	spk_loop_begin(c, &b);
	spk_shm_offer_pack(&b, &o);
	spk_loop_finish(c, &b, SPK_REPLY, h->id, 0);
}

static unsigned shm_poll(void *srv, bool arm)
{
	struct shm_srv *s = srv;
	struct sconn *c, *next;
	unsigned n = 0;

	if (!s)
		return 0;
	for (c = s->conns; c; c = next, n++) {
		next = c->next;
		if (c->up)
			serve_and_arm(c, arm);
	}
	return n;
}

const struct spk_server_ops spk_shm_server = {
	.hello_type = SPK_SHM,
	.start = shm_start,
	.stop = shm_stop,
	.hello = shm_hello,
	.poll = shm_poll,
};

/* shm_client.c - the client's end of a shared-memory connection to a worker
 * on this node, and the transport's entry (spk_shm_transport).
 *
 * One region per connection (shm.h), guarded by one lock.  Every call,
 * sync or async, takes a credit and an entry in a ring of calls in flight;
 * the worker answers in order, so the reply at the reply ring's tail is
 * always the ring's head's (complete_head).  A request is packed or copied
 * straight into the request ring's free space, or, when it outgrows it,
 * into the client's bulk area (grow_tx), where the worker reads it in
 * place; a reply is read in place from the reply ring or the worker's bulk
 * area and copied or unpacked into the caller's memory.  Any failure of
 * the connection (a ring that lies, the worker's socket closing: SPOKE_EDEAD
 * within SPK_SHM_SLICE_US) fails every call in flight with the same code;
 * the next call connects afresh, after args->check.
 *
 * Every CALL carries its caller's deadline (ttl_ms).  A stream call
 * (SPK_CF_STREAM) takes its place in the ring like any call and holds the
 * connection: stream_next reads its CHUNKs from the reply ring one by one
 * (one too large for the reader's buffer stays there), then its REPLY.
 * Giving a stream up (abandon) drops the region and the socket at once:
 * the worker sees its caller go; the next call makes a new link without
 * asking the hub.  future_cancel gives a future up and writes a CANCEL
 * frame behind its CALL, which the worker takes even while a kept call
 * holds the ring. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "auth.h"
#include "sync_conn.h"
#include "clock.h"
#include "errmsg.h"
#include "loop_conn.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "shm.h"
#include "shm_mem.h"
#include "shm_ring.h"
#include "shm_wire.h"
#include "transport/transport.h"

#define FLUSH_CALLS 16 /* calls written before they are shown together, at most */

enum pend_kind { K_COPY, K_OBJ, K_STREAM };

/* One call in flight, and where its outcome goes. */
struct pend {
	uint64_t id;
	enum pend_kind kind;
	void *dst; /* K_COPY: the caller's reply buffer */
	size_t cap;
	const spoke_serializer *ser; /* K_OBJ */
	void *obj;
	int *status; /* status, len, done: NULL once the caller gave up (a timed-out future) */
	size_t *len;
	int *done;
	int *method; /* an async call's: its future keeps a failure */
	bool tx;     /* the request lies in the bulk area until the reply */
	bool mr;     /* K_COPY into spoke_mr memory: a reply may already be there */
};

/* Where a request's payload comes from. */
struct req_src {
	const void *p;
	size_t len;
	const spoke_serializer *ser;
	const void *obj;
	/* spoke_call_mr: the memories (NULL: none) and the frame's descriptor */
	struct shm_umr *req_mr, *rep_mr;
	struct spk_shm_mr_desc mr;
	bool stream; /* a stream call: SPK_CF_STREAM, and no ttl */
};

/* spoke_mr_alloc's memory (spoke_mr.mr_): a sealed memfd, mapped here and
 * sent to each connection that names it, once (shm.h, "spoke_mr memory"). */
struct shm_umr {
	struct spk_mr_base base; /* first: spoke_mr_free finds the transport */
	uint32_t id;
	int fd;
	uint8_t *p;
	size_t size;
	struct usent *sent; /* the connections that have it */
};

/* u sent on connection c: in u's list and in c's. */
struct usent {
	struct shm_umr *u;
	struct shm_conn *c;
	struct usent *next_u, *next_c;
};

/* Guards every usent list: spoke_mr_free runs on any thread, without any
 * connection's lock.  Taken after a connection's lock, never before. */
static pthread_mutex_t umr_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t umr_next_id;

struct shm_conn {
	struct spk_conn base;
	pthread_mutex_t lock;
	char addr[SPK_ADDR_MAX]; /* the worker's TCP host:port */
	char token[SPK_TOKEN_MAX];
	char ident[SPK_IDENT_MAX];
	uint32_t pid; /* the worker's, as the hub knows it */
	int (*check)(void *, int64_t);
	void *check_arg;
	struct spk_sync_conn ch; /* authenticated; asks for shared memory */
	bool ch_open;
	uint64_t hello_id;
	int sock, efd;
	uint8_t *region;
	struct spk_shm_ctl *ctl;
	struct spk_shm_ring req, rep;
	struct spk_shm_area tx, rx; /* ours for requests, the worker's for replies */
	uint64_t tx_owner;          /* the call whose request is in tx, 0: none */
	struct pend ring[SPK_SHM_CREDITS];
	unsigned head, count;
	unsigned unflushed; /* calls written into the request ring, not yet shown */
	uint64_t next_id;
	uint32_t peer_max, max_msg;
	size_t area_max;
	int poll_us;
	int broken;
	bool abandoned;  /* dropped on purpose (abandon): no check before the next link */
	bool stream_eof; /* the stream's REPLY body was read as a last chunk: SPOKE_EOF next */
	struct usent *sent; /* spoke_mr memories this connection's worker maps */
};

static size_t pow2_at_least(size_t n)
{
	size_t p = SPK_SHM_BULK_MIN;

	while (p < n)
		p <<= 1;
	return p;
}

/* Unlinks e from its memory's list (umr_lock held). */
static void usent_unlink_u(struct usent *e)
{
	for (struct usent **pp = &e->u->sent; *pp; pp = &(*pp)->next_u)
		if (*pp == e) {
			*pp = e->next_u;
			return;
		}
}

/* Unmaps and closes everything of the connection but its TCP channel. */
static void teardown(struct shm_conn *c)
{
	pthread_mutex_lock(&umr_lock); /* the worker's end forgets the memories */
	while (c->sent) {
		struct usent *e = c->sent;

		c->sent = e->next_c;
		usent_unlink_u(e);
		free(e);
	}
	pthread_mutex_unlock(&umr_lock);
	if (c->region)
		munmap(c->region, SPK_SHM_REGION);
	if (c->sock >= 0)
		close(c->sock);
	if (c->efd >= 0)
		close(c->efd);
	spk_shm_area_free(&c->tx);
	spk_shm_area_free(&c->rx);
	c->tx.gen = c->rx.gen = 0;
	c->region = NULL;
	c->ctl = NULL;
	c->sock = c->efd = -1;
}

/* Asks the worker for shared memory over the (authenticated) TCP channel. */
static int ask_worker(struct shm_conn *c, struct spk_shm_offer *o, int64_t deadline)
{
	const uint8_t *p;
	struct spk_hdr h;
	spoke_view v;
	int rc;

	if (c->ch_open && c->ch.broken) {
		spk_sync_close(&c->ch);
		c->ch_open = false;
	}
	if (!c->ch_open) {
		rc = spk_sync_open(&c->ch, c->addr, c->token, c->ident, 0, deadline);
		if (rc < 0)
			return rc;
		c->ch_open = true;
	}
	rc = spk_sync_send(&c->ch, SPK_SHM, ++c->hello_id, 0, NULL, 0, deadline);
	if (rc == 0)
		rc = spk_sync_recv_hdr(&c->ch, &h, deadline);
	if (rc == 0 && (h.type != SPK_REPLY || h.id != c->hello_id))
		rc = SPOKE_EPROTO;
	if (rc == 0)
		rc = spk_sync_recv_view(&c->ch, h.len, &p, deadline);
	if (rc < 0)
		return spk_sync_break(&c->ch, rc);
	if (h.aux < 0) /* the worker's refusal: its code (SPOKE_ETRANSPORT) and why */
		return spk_fail(h.aux, "the actor's side: %.*s", (int)h.len, (const char *)p);
	spoke_view_init(&v, p, h.len);
	rc = spk_shm_offer_unpack(&v, o);
	if (rc < 0)
		return spk_fail(SPOKE_EPROTO, "actor at %s sent a shared-memory offer this client "
				"cannot read: %s", c->addr,
				rc == SPOKE_ESHORT ? "truncated" : spoke_errmsg());
	if (o->ring != SPK_SHM_RING || o->credits != SPK_SHM_CREDITS)
		return spk_fail(SPOKE_EPROTO, "actor at %s offers shared memory in a form this client "
				"does not know (rings of %u B, %u credits)", c->addr, o->ring,
				o->credits);
	c->peer_max = o->max_msg < c->max_msg ? o->max_msg : c->max_msg;
	c->area_max = pow2_at_least(o->max_msg > c->max_msg ? o->max_msg : c->max_msg);
	return 0;
}

/* Connects to the worker's socket: it must be the actor's own process. */
static int connect_sock(struct shm_conn *c, const char *name, int64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	int64_t left = deadline - spk_now_us();
	struct timeval tv = { .tv_sec = left / 1000000, .tv_usec = left % 1000000 };
	pid_t pid;
	uid_t uid;

	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0)
		return spk_fail(-errno, "socket(AF_UNIX): %s", strerror(errno));
	memcpy(sa.sun_path + 1, name, strlen(name));
	/* A full backlog (a worker busy in a long method) blocks a connect
	 * until SO_SNDTIMEO: never past the deadline. */
	if (left <= 0)
		return spk_fail(SPOKE_ETIMEDOUT, "actor at %s: no time left to connect", c->addr);
	setsockopt(c->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->sock, (struct sockaddr *)&sa, len) < 0) {
		if (errno == EAGAIN)
			return spk_fail(SPOKE_ETIMEDOUT, "actor at %s: its shared-memory socket did "
					"not take the connection in time", c->addr);
		/* The name it offered a moment ago has no listener: it died. */
		if (errno == ECONNREFUSED)
			return spk_fail(SPOKE_EDEAD, "actor at %s: nothing listens on its "
					"shared-memory socket any more (did the actor die?)", c->addr);
		return spk_fail(SPOKE_EPROTO, "connecting to @%s: %s", name, strerror(errno));
	}
	tv = (struct timeval){ 0 }; /* the sends after: as before */
	setsockopt(c->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (spk_shm_peer(c->sock, &pid, &uid) < 0)
		return spk_fail(SPOKE_EAUTH, "no credentials on @%s", name);
	if (uid != getuid() || (c->pid && (uint32_t)pid != c->pid))
		return spk_fail(SPOKE_EAUTH, "the shared-memory socket @%s of actor at %s is held by "
				"pid %d of uid %u, not the actor's pid %u of uid %u", name, c->addr,
				(int)pid, (unsigned)uid, c->pid, (unsigned)getuid());
	return 0;
}

/* Sends the connect message with the region, and takes the answer (and the
 * worker's eventfd). */
static int handshake(struct shm_conn *c, const struct spk_shm_offer *o, int memfd,
		     int64_t deadline)
{
	struct spk_shm_connect m = { .version = SPK_SHM_VERSION, .index = o->index,
				     .ring = SPK_SHM_RING };
	uint8_t buf[SPK_SHM_ANSWER_MAX];
	struct pollfd pfd = { .fd = c->sock, .events = POLLIN };
	struct spk_shm_answer a;
	spoke_buf b;
	spoke_view v;
	ssize_t n;
	int rc, fd;

	memcpy(m.cookie, o->cookie, SPK_SHM_COOKIE);
	spoke_buf_init(&b, buf, sizeof(buf));
	spk_shm_connect_pack(&b, &m);
	/* A worker that refuses at once (too many set-ups) may have answered
	 * and closed before this goes: its answer is read all the same. */
	rc = spk_shm_send(c->sock, buf, b.len, memfd);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		return spk_fail(SPOKE_EPROTO, "sending the region: %s", strerror(-rc));
	rc = poll(&pfd, 1, spk_ms_left(deadline));
	if (rc == 0)
		return spk_fail(SPOKE_ETIMEDOUT, "actor at %s: no answer on its shared-memory socket",
				c->addr);
	n = spk_shm_recv(c->sock, buf, sizeof(buf), &fd, MSG_DONTWAIT);
	/* A worker that closed without reading our message (it refused at
	 * once) leaves ECONNRESET, which Linux reports before the answer it
	 * queued: once, then the answer comes. */
	if (n == -ECONNRESET)
		n = spk_shm_recv(c->sock, buf, sizeof(buf), &fd, MSG_DONTWAIT);
	if (n <= 0) /* a worker that refuses answers why: this one is gone */
		return spk_fail(SPOKE_EDEAD, "actor at %s closed its shared-memory socket (did the "
				"actor die?)", c->addr);
	spoke_view_init(&v, buf, (size_t)n);
	rc = spk_shm_answer_unpack(&v, &a);
	if (rc == 0 && a.status < 0)
		rc = spk_fail(a.status, "actor at %s refused shared memory: %s", c->addr, a.text);
	else if (rc == 0 && fd < 0)
		rc = spk_fail(SPOKE_EPROTO, "actor at %s sent no eventfd", c->addr);
	else if (rc < 0)
		rc = spk_fail(SPOKE_EPROTO, "a malformed answer from actor at %s", c->addr);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	c->efd = fd;
	return 0;
}

/* Asks, makes the region, connects; c->broken is 0 after.  *cut says the
 * worker closed the set-up without an answer, or refused it as one too
 * many at once. */
static int establish_once(struct shm_conn *c, int64_t deadline, bool *cut)
{
	struct spk_shm_offer o;
	void *region;
	int rc, memfd = -1;

	*cut = false;

	rc = ask_worker(c, &o, deadline);
	if (rc < 0)
		return rc;
	rc = spk_shm_create("spoke-shm", SPK_SHM_REGION, &memfd, &region);
	if (rc < 0)
		return rc;
	c->region = region;
	c->ctl = region;
	c->ctl->magic = SPK_SHM_REGION_MAGIC;
	c->ctl->version = SPK_SHM_VERSION;
	c->ctl->ring_size = SPK_SHM_RING;
	rc = connect_sock(c, o.name, deadline);
	if (rc == 0) {
		rc = handshake(c, &o, memfd, deadline);
		*cut = rc == SPOKE_EDEAD || rc == SPOKE_ETRANSPORT;
	}
	close(memfd);
	if (rc < 0) {
		teardown(c);
		return rc;
	}
	spk_shm_ring_init(&c->req, c->region + SPK_SHM_CTL, SPK_SHM_RING, &c->ctl->req_head,
			  &c->ctl->req_tail, SPK_CALL, c->peer_max);
	spk_shm_ring_init(&c->rep, c->region + SPK_SHM_CTL + SPK_SHM_RING, SPK_SHM_RING,
			  &c->ctl->rep_head, &c->ctl->rep_tail, SPK_REPLY, c->max_msg);
	c->rep.also = SPK_CHUNK;
	c->broken = 0;
	c->head = c->count = c->unflushed = 0;
	c->tx_owner = 0;
	return 0;
}

/* A live worker may close a set-up, or refuse it, when many come at once
 * (64 threads of a client making their connections on a loaded node): such
 * a set-up is tried again, from a new offer, a few times within the
 * deadline.  A worker that is gone fails the offer's request instead. */
#define SETUP_TRIES 4
#define SETUP_BACKOFF_US 2000

static int establish(struct shm_conn *c, int64_t deadline)
{
	int64_t pause;
	uint8_t jitter;
	bool cut;
	int rc;

	for (int tries = 1;; tries++) {
		rc = establish_once(c, deadline, &cut);
		if (rc == 0 || !cut || tries >= SETUP_TRIES)
			return rc;
		spk_random(&jitter, 1);
		pause = (int64_t)SETUP_BACKOFF_US * tries + jitter * 8;
		if (spk_now_us() + pause >= deadline)
			return rc;
		usleep((useconds_t)pause);
	}
}

static void finish(struct pend *p, int status, size_t len)
{
	if (!p->done) /* given up */
		return;
	if (p->len)
		*p->len = len;
	if (status < 0 && status != SPOKE_ENOSPC && p->method)
		*p->len = spk_errmsg_keep(p->method, p->dst, p->cap);
	*p->status = status;
	__atomic_store_n(p->done, 1, __ATOMIC_RELEASE);
}

/* The connection failed: every call in flight fails with code. */
static int break_all(struct shm_conn *c, int code)
{
	while (c->count) {
		finish(&c->ring[c->head], code, 0);
		c->head = (c->head + 1) % SPK_SHM_CREDITS;
		c->count--;
	}
	c->tx_owner = 0;
	c->broken = code;
	return code;
}

static bool reply_ready(void *arg)
{
	struct shm_conn *c = arg;

	return spk_shm_ring_pending(&c->rep);
}

/* Between sleeps: the worker's socket closing is its death. */
static int worker_alive(void *arg)
{
	struct shm_conn *c = arg;
	struct pollfd pfd = { .fd = c->sock, .events = POLLIN };
	char b;

	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if ((pfd.revents & (POLLHUP | POLLERR)) ||
	    ((pfd.revents & POLLIN) && recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0))
		return spk_fail(SPOKE_EDEAD, "actor at %s died (its shared-memory socket closed)",
				c->addr);
	return 0;
}

/* Hands a reply of len bytes at data to the call; returns its status. */
static int consume(struct shm_conn *c, struct pend *p, const uint8_t *data, uint32_t len)
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
		return rc < 0 ? spk_ser_failed(rc, "unpacking the reply", c->addr) : 0;
	}
	if (len > p->cap)
		return spk_no_room(len, p->cap);
	if (len)
		memcpy(p->dst, data, len);
	return 0;
}

/* Shows the worker every call written (one store for them all) and wakes
 * it if it sleeps.  Small calls behind others wait for this: until
 * FLUSH_CALLS are written, or until a wait finds no reply ready, so that a
 * window of calls costs the worker one look and the client one fence. */
static void flush_calls(struct shm_conn *c)
{
	if (!c->unflushed)
		return;
	spk_shm_ring_flush(&c->req);
	c->unflushed = 0;
	spk_shm_kick(c->efd, &c->ctl->worker_sleeping);
}

/* The frame at the reply ring's tail, which must be the ring's head call's
 * (p): 0 with its header, its bytes in *data (the ring's, or the worker's
 * bulk area's); else the connection broke (every call failed). */
static int next_frame(struct shm_conn *c, const struct pend *p, struct spk_hdr *h,
		      const uint8_t **data, const uint8_t **frame, int64_t deadline)
{
	const uint8_t *f;
	int rc;

	if (c->unflushed && !reply_ready(c)) /* never wait with calls unshown */
		flush_calls(c);
	rc = spk_shm_wait(&c->ctl->client_seq, &c->ctl->client_sleeping, reply_ready,
			  worker_alive, c, c->poll_us, SPK_SHM_SLICE_US, deadline);
	if (rc == SPOKE_ETIMEDOUT)
		return rc;
	if (rc < 0)
		return break_all(c, rc);
	rc = spk_shm_ring_peek(&c->rep, h, &f);
	if (rc == 0 && h->id != p->id)
		rc = spk_fail(SPOKE_EPROTO, "a %s to call %llu, expected %llu",
			      spk_type_name(h->type), (unsigned long long)h->id,
			      (unsigned long long)p->id);
	if (rc == 0 && h->type == SPK_CHUNK && (p->kind != K_STREAM || (h->flags & SPK_SF_MR)))
		rc = spk_fail(SPOKE_EPROTO, "a CHUNK to call %llu, which is no stream",
			      (unsigned long long)h->id);
	if (rc == SPOKE_ETOOBIG) /* as over TCP: the call fails so, the connection is remade */
		return break_all(c, spk_fail(rc, "actor at %s: reply: %s", c->addr, spoke_errmsg()));
	if (rc != 0)
		return break_all(c, spk_fail(SPOKE_EPROTO, "actor at %s broke its shared memory: %s",
					     c->addr, rc == 1 ? "no reply" : spoke_errmsg()));
	*frame = f;
	*data = f + SPK_HDR_SIZE;
	if (h->flags & SPK_SF_BULK) {
		rc = spk_shm_area_recv(&c->rx, c->sock, spk_shm_bulk_gen(f), c->area_max);
		if (rc == 0 && h->len > c->rx.size)
			rc = spk_fail(SPOKE_EPROTO, "a reply of %u bytes in an area of %zu", h->len,
				      c->rx.size);
		if (rc < 0)
			return break_all(c, rc);
		*data = c->rx.p;
	}
	return 0;
}

/* Frees the frame read (the worker may reply there again), and wakes the
 * worker if it waits for room. */
static void release_frame(struct shm_conn *c)
{
	spk_shm_ring_release(&c->rep);
	spk_shm_kick(c->efd, &c->ctl->worker_space);
}

/* The ring's head call is answered: off the ring. */
static struct pend *pop_head(struct shm_conn *c)
{
	struct pend *p = &c->ring[c->head];

	if (p->tx)
		c->tx_owner = 0;
	c->head = (c->head + 1) % SPK_SHM_CREDITS;
	c->count--;
	return p;
}

/* Receives the reply of the ring's head and completes it (the chunks of a
 * stream nobody reads any more are dropped).  SPOKE_ETIMEDOUT with nothing
 * consumed leaves it pending; any other failure breaks the connection. */
static int complete_head(struct shm_conn *c, int64_t deadline)
{
	struct pend *p = &c->ring[c->head];
	const uint8_t *f, *data;
	struct spk_hdr h;
	int rc, status;

	if (!c->count)
		return spk_fail(SPOKE_EINVAL, "no call in flight on this shared-memory connection");
	while ((rc = next_frame(c, p, &h, &data, &f, deadline)) == 0 && h.type == SPK_CHUNK)
		release_frame(c);
	if (rc < 0)
		return rc;
	if ((h.flags & SPK_SF_MR) && (h.aux < 0 || !p->mr || (p->done && h.len > p->cap)))
		return break_all(c, spk_fail(SPOKE_EPROTO, "actor at %s sent a reply in spoke_mr "
					     "memory that the call did not offer", c->addr));
	if (h.aux < 0)
		status = spk_reply_error_unpack(h.aux, data, h.len);
	else if (h.flags & SPK_SF_MR) /* the method packed it where the caller wants it */
		status = 0;
	else
		status = consume(c, p, data, h.len);
	release_frame(c);
	finish(pop_head(c), status, h.aux < 0 ? 0 : h.len);
	return 0;
}

/* Completes calls in flight until the one with id `owner` is done. */
static int drain_until(struct shm_conn *c, const uint64_t *owner, int64_t deadline)
{
	int rc = 0;

	while (*owner && rc == 0)
		rc = complete_head(c, deadline);
	return rc;
}

struct tx_grow {
	struct shm_conn *c;
	int64_t deadline;
};

/* spoke_buf grow hook: a request outgrew the ring's room: into the bulk
 * area, once the worker is done with the request before it there. */
static int grow_tx(spoke_buf *b, size_t need)
{
	struct tx_grow *g = b->owner;
	struct shm_conn *c = g->c;
	struct spk_shm_area *a = &c->tx;
	int rc;

	if (need > c->peer_max)
		return spk_fail(SPOKE_ETOOBIG, "request over the actor's maximum of %u bytes",
				c->peer_max);
	if (b->data != a->p) {
		rc = drain_until(c, &c->tx_owner, g->deadline);
		if (rc < 0)
			return rc;
	}
	if (need > a->size) {
		rc = spk_shm_area_grow(a, c->sock, need, b->data == a->p ? b->len : 0, c->area_max);
		if (rc == SPOKE_EDEAD)
			return break_all(c, spk_fail(SPOKE_EDEAD, "actor at %s died: %s", c->addr,
						     spoke_errmsg()));
		if (rc < 0)
			return rc;
	}
	if (b->data != a->p && b->len)
		memcpy(a->p, b->data, b->len);
	b->data = a->p;
	b->cap = a->size;
	return 0;
}

/* Room in the request ring for a frame of min bytes, waiting for replies
 * (which free requests) while there is none. */
static int req_room(struct shm_conn *c, size_t min, uint8_t **at, size_t *room,
		    int64_t deadline)
{
	int rc;

	while ((rc = spk_shm_ring_room(&c->req, min, at, room)) == 1) {
		if (!c->count)
			return break_all(c, spk_fail(SPOKE_EPROTO, "actor at %s holds its request ring "
						     "with no call in flight", c->addr));
		rc = complete_head(c, deadline);
		if (rc < 0)
			return rc;
	}
	if (rc < 0)
		return break_all(c, spk_fail(SPOKE_EPROTO, "actor at %s broke its shared memory: %s",
					     c->addr, spoke_errmsg()));
	return 0;
}

/* Sends the memories of src that c's worker does not have yet (once per
 * connection: shm.h, "spoke_mr memory"). */
static int send_mrs(struct shm_conn *c, const struct req_src *src)
{
	struct shm_umr *us[2] = { src->req_mr, src->rep_mr };
	int rc = 0;

	pthread_mutex_lock(&umr_lock);
	for (int i = 0; i < 2 && rc == 0; i++) {
		struct spk_shm_mr_msg m = { .type = SPK_SHM_MR_MSG };
		struct usent *e;

		if (!us[i] || (i == 1 && us[1] == us[0]))
			continue;
		for (e = c->sent; e && e->u != us[i]; e = e->next_c)
			;
		if (e)
			continue;
		e = calloc(1, sizeof(*e)); /* once per memory and connection */
		if (!e) {
			rc = -ENOMEM;
			break;
		}
		m.id = us[i]->id;
		m.size = us[i]->size;
		rc = spk_shm_send(c->sock, &m, sizeof(m), us[i]->fd);
		if (rc < 0) {
			free(e);
			rc = break_all(c, spk_fail(SPOKE_EDEAD, "actor at %s: sending spoke_mr memory: "
						   "%s", c->addr, strerror(-rc)));
			break;
		}
		*e = (struct usent){ .u = us[i], .c = c, .next_u = us[i]->sent, .next_c = c->sent };
		us[i]->sent = e;
		c->sent = e;
	}
	pthread_mutex_unlock(&umr_lock);
	return rc;
}

/* Writes a CALL for p with payload src into the request ring (shown to the
 * worker at once, or with the next flush_calls); p joins the ring. */
static int start_call(struct shm_conn *c, struct pend *p, uint32_t method,
		      const struct req_src *src, int64_t deadline)
{
	struct tx_grow g = { c, deadline };
	uint16_t cf = src->stream ? SPK_CF_STREAM : 0;
	size_t min, room;
	uint32_t ttl;
	spoke_buf b;
	uint8_t *at;
	int rc;

	if (c->broken) {
		rc = c->check && !c->abandoned ? c->check(c->check_arg, deadline) : 0;
		if (rc < 0) /* never a blind reconnect: the worker is gone */
			return rc;
		c->abandoned = false;
		teardown(c);
		rc = establish(c, deadline);
		if (rc < 0)
			return c->broken = rc;
	}
	if (src->req_mr || src->rep_mr) {
		rc = send_mrs(c, src);
		if (rc < 0)
			return rc;
	}
	if (!src->ser && src->len > c->peer_max) /* the words of TCP's refusal */
		return spk_fail(SPOKE_ETOOBIG, SPK_OVERSIZE_FMT, (unsigned)src->len, "actor",
				c->peer_max);
	while (c->count == SPK_SHM_CREDITS) { /* no credit: wait for the oldest call */
		rc = complete_head(c, deadline);
		if (rc < 0)
			return rc;
	}
	/* A request up to a quarter of the ring goes in it; more, to the area. */
	if (src->req_mr || src->rep_mr)
		min = SPK_HDR_SIZE + SPK_SHM_MR_DESC;
	else if (src->ser)
		min = SPK_SHM_MIN_ROOM;
	else if (SPK_HDR_SIZE + src->len <= SPK_SHM_RING / 4)
		min = SPK_HDR_SIZE + src->len;
	else
		min = SPK_SHM_ALIGN;
	rc = req_room(c, min, &at, &room, deadline);
	if (rc < 0)
		return rc;
	p->id = ++c->next_id;
	ttl = src->stream ? 0 : spk_ttl_of(deadline); /* a stream's reader waits read by read */
	if (src->req_mr || src->rep_mr) { /* no byte of the payload moves */
		spk_hdr_encode(at, SPK_CALL, p->id, (int32_t)method, (uint32_t)src->len);
		spk_hdr_set_flags(at, SPK_SF_MR | cf);
		spk_hdr_set_ttl(at, ttl);
		spk_shm_mr_desc_put(at, &src->mr);
		spk_shm_ring_write(&c->req, at, SPK_HDR_SIZE + SPK_SHM_MR_DESC);
		goto published;
	}
	spoke_buf_init(&b, at + SPK_HDR_SIZE, min == SPK_SHM_ALIGN ? 0 : room - SPK_HDR_SIZE);
	b.grow = grow_tx;
	b.owner = &g;
	if (src->ser) {
		rc = src->ser->pack(&b, src->obj);
		if (rc >= 0)
			rc = b.err;
		if (rc < 0)
			return spk_ser_failed(rc, "packing the request", c->addr);
	} else {
		spoke_buf_put_raw(&b, src->p, src->len);
		if (b.err)
			return b.err;
	}
	if (c->broken) /* a wait for room failed the calls in flight */
		return c->broken;
	spk_hdr_encode(at, SPK_CALL, p->id, (int32_t)method, (uint32_t)b.len);
	spk_hdr_set_flags(at, cf);
	spk_hdr_set_ttl(at, ttl);
	if (b.data == at + SPK_HDR_SIZE) {
		spk_shm_ring_write(&c->req, at, SPK_HDR_SIZE + b.len);
	} else {
		spk_hdr_set_flags(at, SPK_SF_BULK | cf);
		spk_shm_bulk_put(at, c->tx.gen);
		spk_shm_ring_write(&c->req, at, SPK_HDR_SIZE + SPK_SHM_BULK_DESC);
		c->tx_owner = p->id;
		p->tx = true;
	}
published:
	c->ring[(c->head + c->count) % SPK_SHM_CREDITS] = *p;
	c->unflushed++;
	/* The first call into an idle pipe goes at once; calls behind others
	 * go out together (see flush_calls). */
	if (c->count++ == 0 || c->unflushed >= FLUSH_CALLS)
		flush_calls(c);
	return 0;
}

/* Takes the connection's lock, waiting no later than deadline. */
static int lock(struct shm_conn *c, int64_t deadline)
{
	return spk_transport_lock(&c->lock, deadline, "shared-memory");
}

/* Runs one call to its end (the calls in flight before it complete first). */
static int run_sync(struct shm_conn *c, struct pend *p, uint32_t method,
		    const struct req_src *src, int64_t deadline)
{
	int status = 0, done = 0, rc;

	p->status = &status;
	p->done = &done;
	rc = lock(c, deadline);
	if (rc < 0)
		return rc;
	rc = start_call(c, p, method, src, deadline);
	if (rc < 0) {
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	while (rc == 0 && !done)
		rc = complete_head(c, deadline);
	if (rc == SPOKE_ETIMEDOUT && !done) { /* its reply may still come: start afresh */
		break_all(c, rc);
		teardown(c);
	}
	pthread_mutex_unlock(&c->lock);
	return done ? status : rc;
}

static int shm_call(struct spk_conn *base, uint32_t method, const void *req, size_t req_len,
		    void *reply, size_t cap, size_t *reply_len, int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
	struct req_src src = { .p = req, .len = req_len };
	size_t len = 0;
	struct pend p = { .kind = K_COPY, .dst = reply, .cap = cap, .len = &len };
	int rc = run_sync(c, &p, method, &src, deadline);

	if (reply_len && (rc == 0 || rc == SPOKE_ENOSPC))
		*reply_len = len;
	return rc;
}

static int shm_call_obj(struct spk_conn *base, uint32_t method, const spoke_serializer *req_ser,
			const void *req, const spoke_serializer *rep_ser, void *rep,
			int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
	struct req_src src = { .ser = req_ser, .obj = req };
	struct pend p = { .kind = K_OBJ, .ser = rep_ser, .obj = rep };

	return run_sync(c, &p, method, &src, deadline);
}

static struct shm_umr *umr_of(const spoke_mr *mr)
{
	return mr ? (struct shm_umr *)mr->mr_ : NULL;
}

/* call.c passes memory of this transport's (spoke_mr_alloc) or NULL. */
static int shm_call_mr(struct spk_conn *base, uint32_t method, const spoke_mr *req,
		       size_t req_off, size_t req_len, spoke_mr *rep, size_t rep_off, size_t cap,
		       size_t *reply_len, int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
	struct req_src src = {
		.len = req_len,
		.req_mr = umr_of(req),
		.rep_mr = umr_of(rep),
		.mr = { .req_off = req_off, .rep_off = rep_off, .rep_cap = cap },
	};
	size_t len = 0;
	struct pend p = { .kind = K_COPY, .dst = rep ? (uint8_t *)rep->addr + rep_off : NULL,
			  .cap = cap, .len = &len, .mr = rep != NULL };
	int rc;

	src.mr.req_id = src.req_mr ? src.req_mr->id : 0;
	src.mr.rep_id = src.rep_mr ? src.rep_mr->id : 0;
	if (req_len > c->peer_max) /* the words of TCP's refusal */
		rc = spk_fail(SPOKE_ETOOBIG, SPK_OVERSIZE_FMT, (unsigned)req_len, "actor",
			      c->peer_max);
	else
		rc = run_sync(c, &p, method, &src, deadline);
	if (reply_len && (rc == 0 || rc == SPOKE_ENOSPC))
		*reply_len = len;
	return rc;
}

static int shm_mr_alloc(struct spk_conn *base, size_t len, spoke_mr *mr)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), size = (len + page - 1) / page * page;
	struct shm_umr *u = calloc(1, sizeof(*u));
	void *p;
	int rc;

	(void)base;
	if (!u)
		return -ENOMEM;
	rc = spk_shm_create("spoke-mr", size, &u->fd, &p);
	if (rc < 0) {
		free(u);
		return rc;
	}
	u->base.t = &spk_shm_transport;
	u->id = __atomic_add_fetch(&umr_next_id, 1, __ATOMIC_RELAXED);
	if (u->id == 0) /* 0 is "none" on the wire */
		u->id = __atomic_add_fetch(&umr_next_id, 1, __ATOMIC_RELAXED);
	u->p = p;
	u->size = size;
	mr->addr = p;
	mr->len = len;
	mr->mr_ = u;
	return 0;
}

/* Frees spoke_mr_alloc's memory: each worker that maps it is told to let
 * it go (without waiting: one that cannot be told now keeps it until the
 * connection ends). */
static void shm_mr_free(spoke_mr *mr)
{
	struct shm_umr *u = mr->mr_;

	pthread_mutex_lock(&umr_lock);
	while (u->sent) {
		struct usent *e = u->sent;
		struct spk_shm_mr_msg m = { .type = SPK_SHM_MR_FREE, .id = u->id };
		struct usent **pp;
		ssize_t n;

		/* One SEQPACKET message: whole, whatever thread sends on c. */
		n = send(e->c->sock, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n;
		for (pp = &e->c->sent; *pp != e; pp = &(*pp)->next_c)
			;
		*pp = e->next_c;
		u->sent = e->next_u;
		free(e);
	}
	pthread_mutex_unlock(&umr_lock);
	munmap(u->p, u->size);
	close(u->fd);
	free(u);
}

static int shm_call_async(struct spk_conn *base, uint32_t method, const void *req,
			  size_t req_len, void *reply, size_t cap, spoke_future *f,
			  int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
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
	int rc;

	if (req_len > c->peer_max) { /* as over TCP: the call is made, and fails */
		spk_fail(SPOKE_ETOOBIG, SPK_OVERSIZE_FMT, (unsigned)req_len, "actor", c->peer_max);
		spk_future_complete(f, SPOKE_ETOOBIG);
		return 0;
	}
	rc = lock(c, deadline);
	if (rc < 0)
		return rc;
	rc = start_call(c, &p, method, &src, deadline);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* f's call in the ring, or NULL. */
static struct pend *find(struct shm_conn *c, const spoke_future *f)
{
	for (unsigned i = 0; i < c->count; i++) {
		struct pend *p = &c->ring[(c->head + i) % SPK_SHM_CREDITS];

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

/* Writes a CANCEL of call id behind it, and shows it to the worker (room
 * in the request ring is waited for no later than deadline: a failure
 * leaves the worker to learn it from the connection's end). */
static void send_cancel(struct shm_conn *c, uint64_t id, int64_t deadline)
{
	uint8_t *at;
	size_t room;
	int rc = spk_shm_ring_room(&c->req, SPK_HDR_SIZE, &at, &room);

	if (rc == 1)
		rc = req_room(c, SPK_HDR_SIZE, &at, &room, deadline);
	if (rc != 0 || c->broken)
		return;
	spk_hdr_encode(at, SPK_CANCEL, id, 0, 0);
	spk_shm_ring_write(&c->req, at, SPK_HDR_SIZE);
	c->unflushed++;
	flush_calls(c);
}

/* Gives f up at once (SPOKE_ECANCELED; its call keeps its place in the
 * ring, and its reply is dropped) and tells the worker with a CANCEL. */
static int shm_future_cancel(struct spk_conn *base, spoke_future *f, int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
	struct pend *p;

	pthread_mutex_lock(&c->lock);
	p = f->done_ ? NULL : find(c, f);
	if (p) {
		uint64_t id = p->id;

		give_up(p);
		spk_future_complete(f, spk_fail(SPOKE_ECANCELED, "actor at %s: the call was "
						"cancelled", c->addr));
		if (!c->broken)
			send_cancel(c, id, deadline);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ---- streams ---- */

static int shm_stream_start(struct spk_conn *base, uint32_t method, const void *req,
			    size_t req_len, int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
	struct req_src src = { .p = req, .len = req_len, .stream = true };
	struct pend p = { .kind = K_STREAM }; /* no future: break_all leaves it be */
	int rc;

	if (req_len > c->peer_max) /* the words of TCP's refusal */
		return spk_fail(SPOKE_ETOOBIG, SPK_OVERSIZE_FMT, (unsigned)req_len, "actor",
				c->peer_max);
	rc = lock(c, deadline);
	if (rc < 0)
		return rc;
	c->stream_eof = false;
	rc = start_call(c, &p, method, &src, deadline);
	if (rc == 0)
		flush_calls(c);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* The stream's next CHUNK into buf, or its REPLY (transport.h). */
static int shm_stream_next(struct spk_conn *base, void *buf, size_t cap, size_t *len,
			   int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
	const uint8_t *f, *data;
	struct spk_hdr h;
	int rc;

	rc = lock(c, deadline);
	if (rc < 0)
		return rc;
	if (c->stream_eof) {
		c->stream_eof = false;
		rc = SPOKE_EOF;
		goto out;
	}
	/* Calls given up before it (none, as the handle uses a stream's
	 * connection) are answered first. */
	while (rc == 0 && c->count && c->ring[c->head].kind != K_STREAM)
		rc = complete_head(c, deadline);
	if (rc < 0)
		goto out;
	if (!c->count) {
		rc = spk_fail(c->broken == SPOKE_EDEAD || !c->broken ? SPOKE_EDEAD : c->broken,
			      "actor at %s: the stream's connection broke", c->addr);
		goto out;
	}
	rc = next_frame(c, &c->ring[c->head], &h, &data, &f, deadline);
	if (rc < 0) /* a timeout leaves the stream as it was */
		goto out;
	if (h.type == SPK_REPLY && h.aux < 0) {
		rc = spk_reply_error_unpack(h.aux, data, h.len);
		release_frame(c);
		pop_head(c);
		goto out;
	}
	if (h.flags & SPK_SF_MR) {
		rc = break_all(c, spk_fail(SPOKE_EPROTO, "actor at %s answered a stream in "
					   "spoke_mr memory", c->addr));
		goto out;
	}
	*len = h.len;
	if (h.len > cap) { /* the frame stays: a next read with room takes it */
		rc = spk_no_room(h.len, cap);
		goto out;
	}
	if (h.len)
		memcpy(buf, data, h.len);
	release_frame(c);
	if (h.type == SPK_REPLY) {
		pop_head(c);
		if (h.len == 0)
			rc = SPOKE_EOF;
		else
			c->stream_eof = true; /* its body was a last chunk */
	}
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Gives up what runs on c at once: the region and the socket go (the
 * worker sees its caller go); the next call links anew, without asking the
 * hub (nothing broke). */
static void shm_abandon(struct spk_conn *base)
{
	struct shm_conn *c = (struct shm_conn *)base;

	pthread_mutex_lock(&c->lock);
	break_all(c, SPOKE_ECANCELED); /* (a stream has no future to tell) */
	teardown(c);
	c->abandoned = true;
	c->stream_eof = false;
	pthread_mutex_unlock(&c->lock);
}

static int shm_future_wait(struct spk_conn *base, spoke_future *f, int64_t deadline)
{
	struct shm_conn *c = (struct shm_conn *)base;
	int rc = lock(c, deadline);
	struct pend *p;

	if (rc < 0) /* giving f up needs the lock: held no longer than another call's deadline */
		pthread_mutex_lock(&c->lock);
	while (!f->done_ && rc == 0)
		rc = complete_head(c, deadline);
	if (!f->done_ && rc == SPOKE_ETIMEDOUT && (p = find(c, f))) {
		give_up(p);
		f->status = spk_fail(rc, "actor at %s: no reply in time; the call was given up",
				     c->addr);
		__atomic_store_n(&f->done_, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&c->lock);
	return f->done_ ? f->status : rc;
}

static bool shm_in_flight(struct spk_conn *base, const spoke_future *f)
{
	struct shm_conn *c = (struct shm_conn *)base;
	bool found;

	pthread_mutex_lock(&c->lock);
	found = find(c, f) != NULL;
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void shm_close(struct spk_conn *base)
{
	struct shm_conn *c = (struct shm_conn *)base;

	if (!c)
		return;
	if (c->count) /* the futures in flight learn it before c goes */
		break_all(c, spk_fail(SPOKE_ECLOSED, "actor at %s: the handle was closed with the "
				      "call in flight", c->addr));
	teardown(c);
	if (c->ch_open)
		spk_sync_close(&c->ch);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int shm_usable(const struct spk_conn_args *args);

static int shm_connect(struct spk_conn **out, const struct spk_conn_args *args,
		       int64_t deadline)
{
	struct shm_conn *c;
	int rc = shm_usable(args); /* SPOKE_TRANSPORT=shm to another node: say so */

	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->base.t = &spk_shm_transport;
	pthread_mutex_init(&c->lock, NULL);
	snprintf(c->addr, sizeof(c->addr), "%s", args->addr);
	snprintf(c->token, sizeof(c->token), "%s", args->token);
	snprintf(c->ident, sizeof(c->ident), "%s", args->ident);
	c->pid = args->pid;
	c->check = args->check;
	c->check_arg = args->check_arg;
	c->poll_us = args->poll_us;
	c->max_msg = spk_max_payload();
	c->sock = c->efd = -1;
	rc = establish(c, deadline);
	if (rc < 0) {
		shm_close(&c->base);
		return rc;
	}
	*out = &c->base;
	return 0;
}

static void shm_describe(const struct spk_conn *base, char *buf, size_t cap)
{
	(void)base;
	snprintf(buf, cap, "memfd");
}

static void shm_set_poll(struct spk_conn *base, int poll_us)
{
	struct shm_conn *c = (struct shm_conn *)base;

	pthread_mutex_lock(&c->lock); /* a setting: waits its turn, however long */
	c->poll_us = poll_us;
	pthread_mutex_unlock(&c->lock);
}

/* The worker is on this node when its address is one of ours (loopback,
 * or any address a socket can be bound to here); the socket's credentials
 * prove the rest when connecting. */
static int shm_usable(const struct spk_conn_args *args)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	char host[SPK_ADDR_MAX];
	uint16_t port;
	bool local = false;
	int rc;

	if (spk_parse_hostport(args->addr, host, sizeof(host), &port) < 0)
		return spk_fail(SPOKE_EINVAL, "actor address '%s' is not host:port", args->addr);
	rc = getaddrinfo(host, NULL, &hints, &ai);
	if (rc)
		return spk_fail(SPOKE_ETRANSPORT, "actor at %s: %s: %s (is it on this node?)",
				args->addr, host, gai_strerror(rc));
	for (struct addrinfo *i = ai; i && !local; i = i->ai_next) {
		int fd = socket(i->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		local = bind(fd, i->ai_addr, i->ai_addrlen) == 0; /* port 0 from getaddrinfo */
		close(fd);
	}
	freeaddrinfo(ai);
	if (!local)
		return spk_fail(SPOKE_ETRANSPORT, "actor at %s is not on this node", args->addr);
	return 0;
}

const struct spk_transport spk_shm_transport = {
	.name = "shm",
	.usable = shm_usable,
	.connect = shm_connect,
	.close = shm_close,
	.describe = shm_describe,
	.set_poll = shm_set_poll,
	.call = shm_call,
	.call_obj = shm_call_obj,
	.call_mr = shm_call_mr,
	.call_async = shm_call_async,
	.future_wait = shm_future_wait,
	.in_flight = shm_in_flight,
	.future_cancel = shm_future_cancel,
	.stream_start = shm_stream_start,
	.stream_next = shm_stream_next,
	.abandon = shm_abandon,
	.mr_register = NULL, /* the caller's own memory: calls copy it */
	.mr_alloc = shm_mr_alloc,
	.mr_deregister = shm_mr_free,
	.server = &spk_shm_server,
};

/* call.c - actor handles: the transport choice, the connection pool, and
 * the public call API, written once above the transports (transport.h).
 *
 * A handle keeps a pool of connections to the actor's worker, all of one
 * transport.  A synchronous call claims a free pool slot with one
 * compare-and-swap (no lock), calls on the caller's thread and gives the
 * slot back; a slot is connected (and allocated) the first time that many
 * calls run at once.  Asynchronous calls pipeline on one connection of
 * their own, which the transport keeps in order and locks.
 *
 * The handle calls one incarnation of its actor at a time (struct target:
 * its endpoint and the hub's id of that worker): every handshake names it
 * (auth.h), so only that worker can answer.  A connection that broke is not
 * simply made again: the hub is asked first whether that incarnation still
 * runs (check_alive, which every transport calls through its connection's
 * args.check).  If its agent restarted it (spoke_spawn_opts.max_restarts:
 * the same start, a later restart), the handle adopts the new worker and
 * the call is made again on a connection to it (MOVED); if it died, or
 * another actor took the name, the call fails with SPOKE_EDEAD, and so does
 * every later connect of the handle. */
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
#include "transport/transport.h"

#define POOL_MAX 64

/* Auto mode gives a transport other than TCP this long to come up before
 * it tries the next one. */
#define AUTO_TRY_MS 3000

/* What check_alive returns for a connection made for an incarnation the
 * actor has since restarted from: the call is made again (once) on a
 * connection to the new one.  Never returned to a caller. */
#define MOVED (-ESTALE)

/* A connection broke but the hub says its worker runs: ask again this
 * often, this many times, before connecting anew (its death may not have
 * reached the hub yet). */
#define SETTLE_MS 10
#define SETTLE_TRIES 20

/* One incarnation of the actor: where its worker listens, and who it is in
 * handshakes.  A restart adds one; all stay until the handle closes (the
 * connections made for one point into it). */
struct target {
	spoke_actor *a;
	struct spk_endpoint ep;
	char ident[SPK_IDENT_MAX];
	atomic_int suspect; /* a call to it failed SPOKE_EDEAD: ask the hub first */
	struct spk_conn *async_left; /* the pipelined connection it had, closed
					with the handle (a wait may still be in it) */
	struct target *older;
};

struct pool_slot {
	atomic_int busy; /* 0 free, 1 a call runs, 2 a stream holds it between reads */
	struct spk_conn *conn; /* set by the thread that claimed the slot */
	struct target *made_for; /* the incarnation conn reaches */
};

struct spoke_actor {
	spoke_client *client;
	char name[SPOKE_ACTOR_NAME_MAX];
	struct target first;           /* the incarnation it was opened on */
	struct target *_Atomic cur;    /* the one calls go to now */
	pthread_mutex_t move_lock;     /* guards adopting another */
	const struct spk_transport *t;
	atomic_int broke; /* a connection broke: connects ask the hub first */
	atomic_int dead;  /* the hub said that incarnation is gone */
	atomic_int poll_us;
	struct pool_slot pool[POOL_MAX];
	pthread_mutex_t async_lock; /* guards async's making */
	struct spk_conn *async;     /* asynchronous calls pipeline here */
	struct target *async_for;   /* the incarnation it reaches */
	pthread_mutex_t stream_lock; /* guards streams and their slots' busy 1 <-> 2 */
	struct spoke_stream *streams; /* those that hold a connection */
};

static __thread unsigned slot_hint;

/* The incarnation calls go to now. */
static struct target *current(spoke_actor *a)
{
	return atomic_load_explicit(&a->cur, memory_order_acquire);
}

/* The hub says that the actor t is an incarnation of restarted (same
 * start, a later restart: ep): calls go there from now on.  MOVED, or
 * -ENOMEM. */
static int adopt(spoke_actor *a, struct target *t, const struct spk_endpoint *ep)
{
	struct target *n;

	pthread_mutex_lock(&a->move_lock);
	if (current(a) == t) {
		n = calloc(1, sizeof(*n)); /* once per restart */
		if (!n) {
			pthread_mutex_unlock(&a->move_lock);
			return spk_fail(-ENOMEM, "actor %s: out of memory", a->name);
		}
		n->a = a;
		n->ep = *ep;
		spk_ident_actor(n->ident, a->name, ep->incarnation);
		n->older = t;
		atomic_store_explicit(&a->cur, n, memory_order_release);
		spk_info("actor %s was restarted (restart %u): now at %s, pid %u", a->name,
			 (unsigned)(ep->incarnation >> 48), ep->addr, ep->pid);
	}
	pthread_mutex_unlock(&a->move_lock);
	return MOVED;
}

/* Before a broken connection to incarnation t is replaced: asks the hub
 * whether t still runs.  0 if it does; MOVED if the actor was restarted
 * (adopted: the caller calls again on a connection to the new worker);
 * else SPOKE_EDEAD (remembered: it never comes back), or the error that
 * kept the hub from answering (SPOKE_EHUB, SPOKE_ECLOSED, SPOKE_ETIMEDOUT
 * while it restarts...), never a blind reconnect to the old address. */
static int check_alive(spoke_actor *a, struct target *t, bool settle, int64_t deadline)
{
	struct spk_endpoint ep;
	char why[256];
	int rc;

	if (atomic_load(&a->dead))
		return spk_fail(SPOKE_EDEAD, "actor %s: the worker this handle was opened on "
				"(incarnation %llu) is gone; open a new handle", a->name,
				(unsigned long long)t->ep.incarnation);
	if (current(a) != t)
		return MOVED;
	/* A connection to it just broke (settle): when its worker died, its
	 * agent tells the hub within milliseconds, and we may ask before. */
	for (int i = 0;; i++) {
		if (spk_ms_left(deadline) <= 0)
			return spk_fail(SPOKE_ETIMEDOUT, "actor %s: the timeout expired before the "
					"hub said whether it runs", a->name);
		rc = spk_client_lookup(a->client, a->name, &ep, spk_ms_left(deadline));
		if (!settle || rc < 0 || ep.incarnation != t->ep.incarnation ||
		    i == SETTLE_TRIES || spk_ms_left(deadline) <= SETTLE_MS)
			break;
		usleep(SETTLE_MS * 1000);
	}
	if (rc == 0 && ep.incarnation == t->ep.incarnation)
		return 0;
	if (rc == 0 && (ep.incarnation & SPK_INCARNATION_START_MASK) ==
			       (t->ep.incarnation & SPK_INCARNATION_START_MASK) &&
	    ep.incarnation > t->ep.incarnation)
		return adopt(a, t, &ep);
	if (rc < 0 && rc != SPOKE_EDEAD && rc != SPOKE_ENOACTOR)
		return rc;
	atomic_store(&a->dead, 1);
	if (rc == 0)
		return spk_fail(SPOKE_EDEAD, "actor %s was started anew (incarnation %llu, this "
				"handle's was %llu): open a new handle", a->name,
				(unsigned long long)ep.incarnation,
				(unsigned long long)t->ep.incarnation);
	snprintf(why, sizeof(why), "%s", spoke_errmsg());
	return spk_fail(SPOKE_EDEAD, "%s (the hub's answer before reconnecting)", why);
}

/* transport.h's args.check: a connection to incarnation arg broke. */
static int conn_check(void *arg, int64_t deadline)
{
	struct target *t = arg;

	atomic_store(&t->a->broke, 1);
	return check_alive(t->a, t, true, deadline);
}

/* Before a call on a connection made for incarnation t: 0 if calls go
 * there still; MOVED if the actor was restarted from it (the connection is
 * to be closed); or the hub's word that it is gone (SPOKE_EDEAD).  The hub
 * is asked only once a call to t failed SPOKE_EDEAD (t->suspect): the
 * failure found the worker gone, and the handle's other connections to it
 * do not know yet. */
static int still_current(spoke_actor *a, struct target *t, int64_t deadline)
{
	int rc;

	if (t != current(a))
		return MOVED;
	if (!atomic_load_explicit(&t->suspect, memory_order_relaxed))
		return 0;
	rc = check_alive(a, t, true, deadline);
	if (rc == 0)
		atomic_store(&t->suspect, 0);
	return rc;
}

/* A call on a connection made for t ended with rc: SPOKE_EDEAD makes t
 * suspect (still_current); rc is returned. */
static int note(struct target *t, int rc)
{
	if (rc == SPOKE_EDEAD && t)
		atomic_store(&t->suspect, 1);
	return rc;
}

/* A call's rc: MOVED the first time means call again (true); a second time
 * (restarted twice within one call), SPOKE_EDEAD. */
static bool again(spoke_actor *a, int *rc, int *tries)
{
	if (*rc != MOVED)
		return false;
	if ((*tries)++ == 0)
		return true;
	*rc = spk_fail(SPOKE_EDEAD, "actor %s was restarted again during the call", a->name);
	return false;
}

/* Connects over t; once any connection of the handle broke, only after the
 * hub said that its worker still runs. */
static int connect_to(spoke_actor *a, struct target *tg, const struct spk_transport *t,
		      struct spk_conn **out, int64_t deadline)
{
	struct spk_conn_args args = {
		.name = a->name,
		.addr = tg->ep.addr,
		.token = a->client->token,
		.ident = tg->ident,
		.pid = tg->ep.pid,
		.poll_us = atomic_load(&a->poll_us),
		.timeout_ms = a->client->timeout_ms,
		.check = conn_check,
		.check_arg = tg,
	};
	int rc = atomic_load(&a->broke) ? check_alive(a, tg, false, deadline) : 0;

	if (rc == 0)
		rc = t->connect(out, &args, deadline);
	if (rc == -ECONNREFUSED || rc == -ECONNRESET)
		return spk_fail(SPOKE_EDEAD, "actor %s at %s does not answer (%s)", a->name,
				tg->ep.addr, strerror(-rc));
	return rc;
}

/* A connection over t to the incarnation calls go to now (*made_for); a
 * restart found on the way (MOVED) is followed once. */
static int connect_conn(spoke_actor *a, const struct spk_transport *t, struct spk_conn **out,
			struct target **made_for, int64_t deadline)
{
	int rc, tries = 0;

	do {
		*made_for = current(a);
		rc = connect_to(a, *made_for, t, out, deadline);
	} while (again(a, &rc, &tries));
	return rc;
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
		rc = s->conn ? still_current(a, s->made_for, deadline) : 0;
		if (rc == MOVED) {
			/* Made for an incarnation the actor restarted from (the
			 * lock keeps spoke_actor_set_poll off it). */
			struct spk_conn *old = s->conn;

			pthread_mutex_lock(&a->move_lock);
			__atomic_store_n(&s->conn, NULL, __ATOMIC_RELEASE);
			pthread_mutex_unlock(&a->move_lock);
			a->t->close(old);
		} else if (rc < 0) {
			atomic_store(&s->busy, 0);
			return rc;
		}
		if (!s->conn) {
			struct spk_conn *c = NULL;

			rc = connect_conn(a, a->t, &c, &s->made_for, deadline);
			if (rc < 0) {
				atomic_store(&s->busy, 0);
				return rc;
			}
			__atomic_store_n(&s->conn, c, __ATOMIC_RELEASE); /* set_poll reads it */
		}
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

/* Closes every connection of the handle (no call may be running). */
static void close_conns(spoke_actor *a)
{
	for (int i = 0; i < POOL_MAX; i++)
		if (a->pool[i].conn) {
			a->t->close(a->pool[i].conn);
			a->pool[i].conn = NULL;
		}
	if (a->async) {
		a->t->close(a->async);
		a->async = NULL;
	}
}

/* "actor NAME at ADDR: transport T (what it runs on; why not the others)" */
static void log_choice(spoke_actor *a, struct spk_conn *c, int level, const char *why)
{
	char what[128];

	a->t->describe(c, what, sizeof(what));
	spk_log(level, "actor %s at %s: transport %s (%s%s%s)", a->name, current(a)->ep.addr,
		a->t->name,
		what, why[0] ? "; " : "", why);
}

/* Picks the handle's transport ($SPOKE_TRANSPORT: one insisted on, or
 * each of a list in turn), connects pool slot 0 over it, and says which,
 * once. */
static int choose_transport(spoke_actor *a, int64_t deadline)
{
	struct target *tg = current(a);
	struct spk_conn_args probe = { .name = a->name, .addr = tg->ep.addr, .pid = tg->ep.pid };
	struct spk_transport_choice want;
	int level = SPK_LOG_INFO, rc;
	char why[768] = "", one[256];
	size_t n = 0;

	rc = spk_transport_from_env(&want);
	if (rc < 0)
		return rc;
	if (want.insist) {
		a->t = want.t[0];
		rc = connect_conn(a, a->t, &a->pool[0].conn, &a->pool[0].made_for, deadline);
		if (rc == 0) {
			log_choice(a, a->pool[0].conn, SPK_LOG_INFO, "");
			return 0;
		}
		if (rc == SPOKE_EDEAD || rc == SPOKE_EAUTH || !a->t->server)
			return rc;
		snprintf(one, sizeof(one), "%s",
			 spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc));
		return spk_fail(spk_transport_unavailable(a->t),
				"actor %s at %s: SPOKE_TRANSPORT=%s, but %s", a->name, tg->ep.addr,
				a->t->name, one);
	}
	for (unsigned i = 0; i < want.n; i++) {
		int64_t try_until = spk_now_us() + AUTO_TRY_MS * 1000LL;
		bool last = i + 1 == want.n;

		a->t = want.t[i];
		rc = a->t->usable(&probe);
		if (rc == 0) {
			rc = connect_conn(a, a->t, &a->pool[0].conn, &a->pool[0].made_for,
					  !last && try_until < deadline ? try_until : deadline);
			if (rc == 0 || rc == SPOKE_EDEAD || rc == SPOKE_EAUTH)
				break;
			level = SPK_LOG_WARN; /* a transport that should have worked did not */
		}
		snprintf(one, sizeof(one), "%s", spoke_errmsg()[0] ? spoke_errmsg() : "unusable");
		n += (size_t)snprintf(why + n, n < sizeof(why) ? sizeof(why) - n : 0, "%s%s: %s",
				      n ? "; " : "", a->t->name, one);
		if (n >= sizeof(why))
			n = sizeof(why) - 1;
	}
	if (rc == SPOKE_EDEAD || rc == SPOKE_EAUTH)
		return rc;
	if (rc < 0) /* the last of the list did not come up either */
		return spk_fail(spk_transport_unavailable(a->t), "actor %s at %s: no transport of "
				"SPOKE_TRANSPORT came up (%s)", a->name, tg->ep.addr, why);
	spk_errmsg_clear();
	log_choice(a, a->pool[0].conn, level, why);
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
	a->first.a = a;
	atomic_init(&a->cur, &a->first);
	rc = spk_client_lookup(c, name, &a->first.ep, spk_ms_left(deadline));
	if (rc < 0)
		goto out_free;
	spk_ident_actor(a->first.ident, name, a->first.ep.incarnation);
	/* An actor's call to itself would wait for the method making it. */
	if (self && strcmp(self, name) == 0 && a->first.ep.pid == (uint32_t)getpid()) {
		rc = spk_fail(SPOKE_ESELF, "actor %s cannot call itself: its worker runs one method "
			      "at a time, so the call would wait for the method that makes it", name);
		goto out_free;
	}
	/* Connect the first connection now: errors show here, not at the first call. */
	rc = choose_transport(a, deadline);
	if (rc < 0)
		goto out_free;
	pthread_mutex_init(&a->async_lock, NULL);
	pthread_mutex_init(&a->stream_lock, NULL);
	pthread_mutex_init(&a->move_lock, NULL);
	*out = a;
	return spk_api_ret(0);
out_free:
	spk_client_drop(c);
	free(a);
	return spk_api_ret(rc);
}

const char *spoke_actor_transport(const spoke_actor *a)
{
	return a ? a->t->name : "none";
}

int spoke_actor_use_transport(spoke_actor *a, const char *name, int timeout_ms)
{
	const struct spk_transport *t;
	struct spk_conn *c = NULL;
	struct target *made_for;
	int64_t deadline;
	char why[512];
	int rc;

	spk_api_enter();
	if (!a || !name)
		return spk_api_ret(spk_api_null(__func__, !a ? "a" : "name"));
	t = spk_transport_find(name);
	if (!t)
		return spk_api_ret(spk_fail(SPOKE_ETRANSPORT, "actor %s: this Spoke was built "
					    "without a transport '%s'", a->name, name));
	if (t == a->t)
		return spk_api_ret(0);
	deadline = spk_client_deadline(a->client, timeout_ms);
	rc = connect_conn(a, t, &c, &made_for, deadline);
	if (rc < 0) {
		if (rc == SPOKE_EDEAD || rc == SPOKE_EAUTH)
			return spk_api_ret(rc);
		snprintf(why, sizeof(why), "%s",
			 spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc));
		return spk_api_ret(spk_fail(spk_transport_unavailable(t), "actor %s at %s: %s",
					    a->name, made_for->ep.addr, why));
	}
	/* The asynchronous calls in flight end with SPOKE_ECLOSED. */
	pthread_mutex_lock(&a->async_lock);
	close_conns(a);
	a->t = t;
	a->pool[0].conn = c;
	a->pool[0].made_for = made_for;
	pthread_mutex_unlock(&a->async_lock);
	log_choice(a, c, SPK_LOG_INFO, "");
	return spk_api_ret(0);
}

int spoke_actor_init_rdma(spoke_actor *a, int timeout_ms)
{
	int rc = spoke_actor_use_transport(a, "rdma", timeout_ms);

	/* A build without RDMA: the old name's code says "no RDMA" too. */
	return rc == SPOKE_ETRANSPORT && !spk_transport_find("rdma") ? SPOKE_ERDMA : rc;
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
	if (!a->t->mr_register)
		return spk_api_ret(0);
	return spk_api_ret(a->t->mr_register(a->pool[0].conn, mr));
}

void spoke_mr_deregister(spoke_mr *mr)
{
	if (mr && mr->mr_)
		(*(const struct spk_transport **)mr->mr_)->mr_deregister(mr);
	if (mr)
		memset(mr, 0, sizeof(*mr));
}

int spoke_mr_alloc(spoke_actor *a, size_t len, spoke_mr *mr)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p;
	int rc;

	spk_api_enter();
	if (!a || !mr)
		return spk_api_ret(spk_api_null(__func__, !a ? "a" : "mr"));
	memset(mr, 0, sizeof(*mr));
	if (!len || len > SIZE_MAX - page)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "%s: len is %zu", __func__, len));
	if (a->t->mr_alloc) {
		rc = a->t->mr_alloc(a->pool[0].conn, len, mr);
		if (rc < 0)
			memset(mr, 0, sizeof(*mr));
		return spk_api_ret(rc);
	}
	p = aligned_alloc(page, (len + page - 1) / page * page);
	if (!p)
		return spk_api_ret(spk_fail(-ENOMEM, "%s: %zu bytes", __func__, len));
	memset(p, 0, len);
	mr->addr = p;
	mr->len = len;
	rc = a->t->mr_register ? a->t->mr_register(a->pool[0].conn, mr) : 0;
	if (rc < 0) {
		free(p);
		memset(mr, 0, sizeof(*mr));
	}
	return spk_api_ret(rc);
}

void spoke_mr_free(spoke_mr *mr)
{
	const struct spk_transport *t;
	void *p;

	if (!mr || !mr->addr)
		return;
	/* The transport's own memory goes with its registration; plain memory
	 * (call.c's, above) after it. */
	t = mr->mr_ ? ((const struct spk_mr_base *)mr->mr_)->t : NULL;
	p = t && t->mr_alloc ? NULL : mr->addr;
	spoke_mr_deregister(mr);
	free(p);
}

/* Whether mr (or NULL) is memory the handle's transport uses in place. */
static bool mr_of(const spoke_actor *a, const spoke_mr *mr)
{
	return !mr || (mr->mr_ && ((const struct spk_mr_base *)mr->mr_)->t == a->t);
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
	/* Memory registered on another transport is only remembered. */
	if (a->t->call_mr && mr_of(a, req) && mr_of(a, rep)) {
		int64_t deadline = spk_client_deadline(a->client, timeout_ms);
		struct pool_slot *s;
		int rc, tries = 0;

		do {
			rc = acquire(a, &s, deadline);
			if (rc < 0)
				break;
			rc = note(s->made_for,
				  a->t->call_mr(s->conn, method, req, req_off, req_len, rep,
						rep_off, cap, reply_len, deadline));
			release(s);
		} while (again(a, &rc, &tries));
		return spk_api_ret(rc);
	}
	return spoke_call(a, method, req ? (const uint8_t *)req->addr + req_off : NULL, req_len,
			  rep ? (uint8_t *)rep->addr + rep_off : NULL, cap, reply_len, timeout_ms);
}

void spoke_actor_set_poll(spoke_actor *a, int poll_us)
{
	struct spk_conn *c;

	if (!a)
		return;
	poll_us = poll_us < 0 ? 0 : poll_us;
	atomic_store(&a->poll_us, poll_us);
	pthread_mutex_lock(&a->move_lock);
	for (int i = 0; i < POOL_MAX; i++)
		if ((c = __atomic_load_n(&a->pool[i].conn, __ATOMIC_ACQUIRE)))
			a->t->set_poll(c, poll_us);
	pthread_mutex_unlock(&a->move_lock);
	pthread_mutex_lock(&a->async_lock);
	if (a->async)
		a->t->set_poll(a->async, poll_us);
	pthread_mutex_unlock(&a->async_lock);
}

int spoke_call(spoke_actor *a, uint32_t method, const void *req, size_t req_len, void *reply,
	       size_t cap, size_t *reply_len, int timeout_ms)
{
	int64_t deadline;
	struct pool_slot *s;
	int rc, tries = 0;

	spk_api_enter();
	rc = check_call(__func__, a, req, req_len, reply, cap);
	if (rc < 0)
		return spk_api_ret(rc);
	deadline = spk_client_deadline(a->client, timeout_ms);
	do {
		rc = acquire(a, &s, deadline);
		if (rc < 0)
			break;
		rc = note(s->made_for, a->t->call(s->conn, method, req, req_len, reply, cap,
						  reply_len, deadline));
		release(s);
	} while (again(a, &rc, &tries));
	return spk_api_ret(rc);
}

int spoke_call_obj(spoke_actor *a, uint32_t method, const spoke_serializer *req_ser,
		   const void *req, const spoke_serializer *rep_ser, void *rep, int timeout_ms)
{
	int64_t deadline;
	struct pool_slot *s;
	int rc, tries = 0;

	spk_api_enter();
	if (!a)
		return spk_api_ret(spk_api_null(__func__, "a"));
	if (req_ser && !req_ser->pack)
		return spk_api_ret(spk_api_null(__func__, "req_ser->pack"));
	if (rep_ser && !rep_ser->unpack)
		return spk_api_ret(spk_api_null(__func__, "rep_ser->unpack"));
	deadline = spk_client_deadline(a->client, timeout_ms);
	do {
		rc = acquire(a, &s, deadline);
		if (rc < 0)
			break;
		rc = note(s->made_for,
			  a->t->call_obj(s->conn, method, req_ser, req, rep_ser, rep, deadline));
		release(s);
	} while (again(a, &rc, &tries));
	return spk_api_ret(rc);
}

/* ---- asynchronous calls ---- */

/* The handle's pipelined connection, made on first need. */
static int async_conn(spoke_actor *a, struct spk_conn **out, int64_t deadline)
{
	int rc = 0;

	/* Made once per incarnation: no lock after. */
	*out = __atomic_load_n(&a->async, __ATOMIC_ACQUIRE);
	if (*out) {
		rc = still_current(a, __atomic_load_n(&a->async_for, __ATOMIC_ACQUIRE), deadline);
		if (rc != MOVED)
			return rc;
		rc = 0;
	}
	pthread_mutex_lock(&a->async_lock);
	if (a->async && a->async_for != current(a)) {
		/* Made for an incarnation the actor restarted from: it broke,
		 * which completed its futures; another thread's wait may still
		 * be leaving it, so it is closed with the handle. */
		__atomic_store_n(&a->async_for->async_left, a->async, __ATOMIC_RELEASE);
		__atomic_store_n(&a->async, NULL, __ATOMIC_RELEASE);
	}
	if (!a->async) {
		struct spk_conn *c = NULL;
		struct target *made_for;

		rc = connect_conn(a, a->t, &c, &made_for, deadline);
		__atomic_store_n(&a->async_for, made_for, __ATOMIC_RELEASE);
		__atomic_store_n(&a->async, c, __ATOMIC_RELEASE);
	}
	*out = a->async;
	pthread_mutex_unlock(&a->async_lock);
	return rc;
}

/* The pipelined connection f went out on (*made_for: its incarnation):
 * the handle's, or one a restart left behind (kept until the handle closes,
 * so that a future sent before the restart is waited for where it is);
 * NULL if the handle never made one. */
static struct spk_conn *async_of(spoke_actor *a, const spoke_future *f, struct target **made_for)
{
	struct spk_conn *c = __atomic_load_n(&a->async, __ATOMIC_ACQUIRE);

	/* Only connections a restart left are searched: none without one. */
	*made_for = __atomic_load_n(&a->async_for, __ATOMIC_ACQUIRE);
	for (struct target *t = current(a); t; t = t->older) {
		struct spk_conn *old = __atomic_load_n(&t->async_left, __ATOMIC_ACQUIRE);

		if (old && old->t->in_flight(old, f)) {
			*made_for = t;
			return old;
		}
	}
	return c;
}

int spoke_call_async(spoke_actor *a, uint32_t method, const void *req, size_t req_len,
		     void *reply, size_t cap, spoke_future *f)
{
	struct spk_conn *c = NULL;
	struct target *made_for;
	int64_t deadline;
	int rc, tries = 0;

	spk_api_enter();
	if (!f)
		return spk_api_ret(spk_api_null(__func__, "f"));
	/* f is left as it is when it is still in flight. */
	if (a && (c = async_of(a, f, &made_for)) && c->t->in_flight(c, f))
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "actor %s: this future is still in "
					    "flight; wait for it before starting another call on it",
					    a->name));
	rc = check_call(__func__, a, req, req_len, reply, cap);
	deadline = rc == 0 ? spk_client_deadline(a->client, 0) : 0;
	do {
		memset(f, 0, sizeof(*f));
		f->reply_ = reply;
		f->cap_ = cap;
		f->actor_ = a;
		if (rc == 0 || rc == MOVED)
			rc = async_conn(a, &c, deadline);
		if (rc == 0)
			rc = a->t->call_async(c, method, req, req_len, reply, cap, f, deadline);
	} while (again(a, &rc, &tries));
	if (rc < 0 && !f->done_) /* else a broken connection completed it */
		spk_future_complete(f, rc);
	return spk_api_ret(rc);
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
	struct target *made_for;
	struct spk_conn *c;
	spoke_actor *a;
	int64_t deadline;

	spk_api_enter();
	if (!f)
		return spk_api_ret(spk_api_null(__func__, "f"));
	/* A complete future's handle may be gone: only f is read. */
	if (__atomic_load_n(&f->done_, __ATOMIC_ACQUIRE))
		return spk_api_ret(outcome(f));
	a = f->actor_;
	c = a ? async_of(a, f, &made_for) : NULL;
	if (!c)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "the future was never started"));
	deadline = spk_client_deadline(a->client, timeout_ms);
	return spk_api_ret(note(made_for, c->t->future_wait(c, f, deadline)));
}

/* ---- streams ----
 *
 * A stream holds a connection of its handle's pool from its start to its
 * end: its slot is busy 1 while a read runs, 2 between reads.  Closing the
 * handle waits for running reads (each within its timeout), then ends the
 * streams left with SPOKE_ECLOSED; a stream object stays valid (for its
 * own spoke_stream_close) and never looks at its handle again. */

struct spoke_stream {
	spoke_actor *a;         /* NULL once the handle was closed */
	struct pool_slot *slot; /* the connection it holds; NULL once it ended */
	struct spoke_stream *next;
	bool cancel;            /* cancelled while a read ran: it ends the stream */
	int end;                /* once ended: what spoke_stream_next returns */
	int method_status;      /* the end's spoke_method_status() */
	char msg[256];          /* and its message */
	size_t msg_len;
};

/* s ended with rc (a->stream_lock held): its connection goes back to the
 * handle (abandoned if the stream did not run to its end), and rc and its
 * message are kept for later reads. */
static int stream_end(spoke_stream *s, int rc, bool abandon)
{
	spoke_actor *a = s->a;

	for (spoke_stream **pp = &a->streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	if (abandon)
		a->t->abandon(s->slot->conn);
	release(s->slot);
	s->slot = NULL;
	s->end = rc;
	s->msg_len = spk_errmsg_keep(&s->method_status, s->msg, sizeof(s->msg));
	return rc;
}

int spoke_call_stream(spoke_actor *a, uint32_t method, const void *req, size_t req_len,
		      spoke_stream **out, int timeout_ms)
{
	spoke_stream *s;
	int64_t deadline;
	int rc, tries = 0;

	spk_api_enter();
	if (!out)
		return spk_api_ret(spk_api_null(__func__, "out"));
	*out = NULL;
	rc = check_call(__func__, a, req, req_len, NULL, 0);
	if (rc < 0)
		return spk_api_ret(rc);
	if (!a->t->stream_start)
		return spk_api_ret(spk_fail(SPOKE_ETRANSPORT, "actor %s: the %s transport has no "
					    "streams yet", a->name, a->t->name));
	s = calloc(1, sizeof(*s)); /* once per stream */
	if (!s)
		return spk_api_ret(spk_fail(-ENOMEM, "%s: out of memory", __func__));
	s->a = a;
	deadline = spk_client_deadline(a->client, timeout_ms);
	do {
		rc = acquire(a, &s->slot, deadline);
		if (rc == 0) {
			rc = a->t->stream_start(s->slot->conn, method, req, req_len, deadline);
			if (rc < 0)
				release(s->slot);
		}
	} while (again(a, &rc, &tries));
	if (rc < 0) {
		free(s);
		return spk_api_ret(rc);
	}
	pthread_mutex_lock(&a->stream_lock);
	atomic_store(&s->slot->busy, 2);
	s->next = a->streams;
	a->streams = s;
	pthread_mutex_unlock(&a->stream_lock);
	*out = s;
	return spk_api_ret(0);
}

int spoke_stream_next(spoke_stream *s, void *buf, size_t cap, size_t *len, int timeout_ms)
{
	spoke_actor *a;
	size_t n = 0;
	int rc;

	spk_api_enter();
	if (!s)
		return spk_api_ret(spk_api_null(__func__, "s"));
	if (!len)
		return spk_api_ret(spk_api_null(__func__, "len"));
	if (!buf && cap)
		return spk_api_ret(spk_api_null(__func__, "buf"));
	*len = 0;
	a = s->a;
	if (a)
		pthread_mutex_lock(&a->stream_lock);
	if (!s->slot) {
		if (a)
			pthread_mutex_unlock(&a->stream_lock);
		return spk_api_ret(spk_errmsg_restore(s->end, s->method_status, s->msg,
						      s->msg_len));
	}
	atomic_store(&s->slot->busy, 1); /* a close of the handle waits for this read */
	pthread_mutex_unlock(&a->stream_lock);
	rc = note(s->slot->made_for, a->t->stream_next(s->slot->conn, buf, cap, &n,
						       spk_client_deadline(a->client, timeout_ms)));
	*len = n;
	pthread_mutex_lock(&a->stream_lock);
	if (s->cancel) { /* spoke_stream_cancel came during the read */
		*len = 0;
		rc = spk_fail(SPOKE_ECANCELED, "actor %s: the stream was cancelled", a->name);
		stream_end(s, rc, true);
	} else if (rc == 0 || rc == SPOKE_ENOSPC || rc == SPOKE_ETIMEDOUT) {
		atomic_store(&s->slot->busy, 2); /* the stream goes on */
	} else {
		/* SPOKE_EOF or the method's failure: the connection is ready
		 * for calls again (a broken one is made again by its next). */
		if (rc == SPOKE_EOF)
			spk_fail(SPOKE_EOF, "actor %s: end of stream", a->name);
		stream_end(s, rc, false);
	}
	pthread_mutex_unlock(&a->stream_lock);
	return spk_api_ret(rc);
}

int spoke_stream_cancel(spoke_stream *s)
{
	spk_api_enter();
	if (!s)
		return spk_api_ret(spk_api_null(__func__, "s"));
	if (!s->a)
		return spk_api_ret(0);
	pthread_mutex_lock(&s->a->stream_lock);
	if (s->slot && atomic_load(&s->slot->busy) == 1) {
		s->cancel = true; /* a read runs on another thread: it ends the stream */
	} else if (s->slot) {
		spk_fail(SPOKE_ECANCELED, "actor %s: the stream was cancelled", s->a->name);
		stream_end(s, SPOKE_ECANCELED, true);
	}
	pthread_mutex_unlock(&s->a->stream_lock);
	return spk_api_ret(0);
}

void spoke_stream_close(spoke_stream *s)
{
	if (!s)
		return;
	spoke_stream_cancel(s);
	free(s);
}

/* Ends the handle's streams that no read runs on (SPOKE_ECLOSED); whether
 * any is left (a read runs on it: wait). */
static bool close_streams(spoke_actor *a)
{
	spoke_stream *s, *next;
	bool left = false;

	pthread_mutex_lock(&a->stream_lock);
	for (s = a->streams; s; s = next) {
		next = s->next;
		if (atomic_load(&s->slot->busy) == 1) {
			left = true;
			continue;
		}
		spk_fail(SPOKE_ECLOSED, "actor %s: the handle was closed under the stream", a->name);
		stream_end(s, SPOKE_ECLOSED, true);
		s->a = NULL;
	}
	pthread_mutex_unlock(&a->stream_lock);
	return left;
}

int spoke_future_cancel(spoke_future *f)
{
	struct target *made_for;
	struct spk_conn *c;
	spoke_actor *a;
	int64_t deadline;
	int rc;

	spk_api_enter();
	if (!f)
		return spk_api_ret(spk_api_null(__func__, "f"));
	if (__atomic_load_n(&f->done_, __ATOMIC_ACQUIRE))
		return spk_api_ret(0); /* complete: it stays as it is */
	a = f->actor_;
	c = a ? async_of(a, f, &made_for) : NULL;
	if (!c)
		return spk_api_ret(spk_fail(SPOKE_EINVAL, "the future was never started"));
	deadline = spk_client_deadline(a->client, 0);
	if (c->t->future_cancel)
		return spk_api_ret(c->t->future_cancel(c, f, deadline));
	rc = c->t->future_wait(c, f, spk_now_us()); /* gives it up at once */
	if (rc == SPOKE_ETIMEDOUT && f->status == SPOKE_ETIMEDOUT)
		f->status = SPOKE_ECANCELED;
	return spk_api_ret(0);
}

void spoke_actor_close(spoke_actor *a)
{
	if (!a)
		return;
	/* Calls and stream reads running on other threads end first, each
	 * within its timeout; streams left open end with SPOKE_ECLOSED. */
	while (close_streams(a))
		usleep(1000);
	for (int i = 0; i < POOL_MAX; i++)
		while (atomic_load(&a->pool[i].busy))
			usleep(1000);
	pthread_mutex_lock(&a->async_lock);
	close_conns(a); /* futures in flight complete with SPOKE_ECLOSED */
	pthread_mutex_unlock(&a->async_lock);
	pthread_mutex_destroy(&a->async_lock);
	pthread_mutex_destroy(&a->stream_lock);
	pthread_mutex_destroy(&a->move_lock);
	for (struct target *t = current(a), *older; t; t = older) {
		older = t->older;
		if (t->async_left)
			t->async_left->t->close(t->async_left);
		if (t != &a->first)
			free(t);
	}
	spk_client_drop(a->client);
	free(a);
}

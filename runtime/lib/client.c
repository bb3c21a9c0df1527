/* client.c - the client's side of the hub: spawn, gangs, lookup, kill. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "clock.h"
#include "client_priv.h"
#include "env.h"
#include "errmsg.h"
#include "log.h"
#include "proto.h"

#define DEFAULT_TIMEOUT_MS 10000

int64_t spk_client_deadline(const spoke_client *c, int timeout_ms)
{
	return spk_now_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : c->timeout_ms) * 1000;
}

/* The client's settings into c, from opts where it gives them, else from
 * the environment, each checked before anything connects; *hub is the
 * hub's address. */
static int settings(spoke_client *c, const spoke_client_opts *o, const char **hub)
{
	char host[SPK_ADDR_MAX];
	uint32_t max_msg;
	uint16_t port;
	int rc, level;

	if (o->timeout_ms < 0)
		return spk_fail(SPOKE_EINVAL, "spoke_client_opts.timeout_ms=%d: expected 0 (the "
				"default) or a positive number of milliseconds", o->timeout_ms);
	if (o->poll_us < -1)
		return spk_fail(SPOKE_EINVAL, "spoke_client_opts.poll_us=%d: expected -1 (the "
				"default) or a number of microseconds, 0 or more", o->poll_us);
	*hub = o->hub ? o->hub : getenv("SPOKE_HUB");
	if (!*hub || !**hub)
		return spk_fail(SPOKE_ENOHUB, "no hub address: set SPOKE_HUB=host:port");
	if (spk_parse_hostport(*hub, host, sizeof(host), &port) < 0)
		return spk_fail(SPOKE_EINVAL, "%s=%s: expected host:port",
				o->hub ? "spoke_client_opts.hub" : "SPOKE_HUB", *hub);
	c->timeout_ms = o->timeout_ms;
	rc = o->timeout_ms ? 0 : spk_env_int("SPOKE_TIMEOUT_MS", 1, INT_MAX, DEFAULT_TIMEOUT_MS,
					     "milliseconds", &c->timeout_ms);
	c->poll_us = o->poll_us;
	if (rc == 0 && o->poll_us < 0)
		rc = spk_env_int("SPOKE_POLL_US", 0, INT_MAX, 0, "microseconds", &c->poll_us);
	/* Read later, by the log and by every connection: refused now. */
	if (rc == 0)
		rc = spk_log_level_env(SPK_LOG_WARN, &level);
	if (rc == 0)
		rc = spk_max_payload_env(&max_msg);
	return rc;
}

/* A failure to reach the hub, or of the connection to it, is SPOKE_EHUB
 * saying what happened; what the hub itself answered (SPOKE_EAUTH,
 * SPOKE_EPROTO...) and a timeout that left the connection usable keep
 * their code. */
static int hub_failure(spoke_client *c, int rc, const char *what)
{
	bool io = rc == SPOKE_EDEAD || (rc > SPOKE_EPROTO && rc != -ENOMEM);

	if (!io && !(rc == SPOKE_ETIMEDOUT && c->hub.broken))
		return rc;
	return spk_fail(SPOKE_EHUB, "%s %s: %s", what, c->hub.peer,
			spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc));
}

int spoke_client_open(spoke_client **out, const spoke_client_opts *opts)
{
	spoke_client_opts o = { NULL, NULL, 0, -1 };
	const char *hub = NULL;
	spoke_client *c;
	int rc;

	spk_api_enter();
	if (!out)
		return spk_api_null(__func__, "out");
	*out = NULL;
	if (opts)
		o = *opts;
	c = calloc(1, sizeof(*c));
	if (!c)
		return spk_api_ret(-ENOMEM);
	rc = settings(c, &o, &hub);
	if (rc < 0)
		goto out_free;
	rc = spk_token_find(o.token, c->token, sizeof(c->token));
	if (rc < 0)
		goto out_free;
	rc = spk_sync_open(&c->hub, hub, c->token, SPK_IDENT_HUB, 0, spk_client_deadline(c, 0));
	if (rc < 0) {
		snprintf(c->hub.peer, sizeof(c->hub.peer), "%s", hub);
		c->hub.broken = rc; /* a connection that never was counts as lost */
		rc = hub_failure(c, rc, "cannot reach the hub at");
		goto out_free;
	}
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->refs, 1);
	*out = c;
	return spk_api_ret(0);
out_free:
	free(c);
	return spk_api_ret(rc);
}

void spk_client_hold(spoke_client *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void spk_client_drop(spoke_client *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	spk_sync_close(&c->hub);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void spoke_client_close(spoke_client *c)
{
	if (!c || atomic_exchange(&c->closed, true))
		return;
	/* The hub connection goes now (the hub releases the tickets still
	 * held, and so do we); open actor handles keep the rest. */
	pthread_mutex_lock(&c->lock);
	spk_sync_break(&c->hub, SPOKE_ECLOSED);
	shutdown(c->hub.fd, SHUT_RDWR);
	for (size_t i = 0; i < c->n_tickets; i++)
		free(c->tickets[i]);
	free(c->tickets);
	c->tickets = NULL;
	c->n_tickets = c->cap_tickets = 0;
	pthread_mutex_unlock(&c->lock);
	spk_client_drop(c);
}

/* A request to the hub: hub_begin takes the lock (waiting no later than
 * deadline) and hands a buffer to pack into; hub_roundtrip sends it and
 * receives the REPLY (its payload in *v, valid until hub_end); hub_end
 * unlocks.  A negative status of the hub's comes back as the return value,
 * its message in spoke_errmsg(). */
static int hub_begin(spoke_client *c, spoke_buf *b, int64_t deadline)
{
	struct timespec ts = { .tv_sec = deadline / 1000000, .tv_nsec = deadline % 1000000 * 1000 };
	int rc = pthread_mutex_clocklock(&c->lock, CLOCK_MONOTONIC, &ts);

	if (rc != 0)
		return spk_fail(rc == ETIMEDOUT ? SPOKE_ETIMEDOUT : -rc,
				"timed out behind another thread's request to the hub");
	if (atomic_load(&c->closed)) {
		pthread_mutex_unlock(&c->lock);
		return spk_fail(SPOKE_ECLOSED, "the client was closed (spoke_client_close)");
	}
	spk_sync_begin(&c->hub, b);
	return 0;
}

static void hub_end(spoke_client *c)
{
	pthread_mutex_unlock(&c->lock);
}

static int hub_roundtrip(spoke_client *c, spoke_buf *b, uint8_t type, int64_t deadline,
			 spoke_view *v)
{
	uint64_t id = ++c->next_id;
	const uint8_t *p;
	struct spk_hdr h;
	int rc;

	if (c->hub.broken)
		return spk_fail(SPOKE_EHUB, "the connection to the hub at %s was lost (%s)",
				c->hub.peer, c->hub.broken == SPOKE_EDEAD
						     ? "the hub closed it, or it was reset"
						     : spoke_strerror(c->hub.broken));
	rc = spk_sync_send_buf(&c->hub, b, type, id, 0, deadline);
	for (;;) {
		/* A header timeout consumes nothing: the channel stays usable,
		 * and the late answer is skipped by the next request. */
		if (rc == 0)
			rc = spk_sync_recv_hdr(&c->hub, &h, deadline);
		if (rc < 0)
			return hub_failure(c, rc, "lost the connection to the hub at");
		if (h.type != SPK_REPLY || h.id > id)
			return spk_sync_break(&c->hub, spk_fail(SPOKE_EPROTO,
								"the hub answered out of turn"));
		if (h.id == id)
			break;
		rc = spk_sync_skip(&c->hub, h.len, deadline);
	}
	rc = spk_sync_recv_view(&c->hub, h.len, &p, deadline);
	if (rc < 0)
		return hub_failure(c, rc, "lost the connection to the hub at");
	spoke_view_init(v, p, h.len);
	if (h.aux < 0)
		spk_errmsg_setn((const char *)p, h.len);
	return h.aux;
}

/* How often a lookup asks again while its actor restarts. */
#define RESTART_POLL_MS 10

/* An actor's or type's name, as the hub takes it. */
static int check_name(const char *what, const char *s, size_t max)
{
	if (strlen(s) >= max)
		return spk_fail(SPOKE_EINVAL, "%s '%.32s...' is longer than %zu bytes", what, s,
				max - 1);
	return 0;
}

static int check_opts(const spoke_spawn_opts *o)
{
	if (o && o->timeout_ms < 0)
		return spk_fail(SPOKE_EINVAL, "spoke_spawn_opts.timeout_ms=%d: expected 0 (the "
				"client's default) or a positive number of milliseconds",
				o->timeout_ms);
	if (o && o->poll_us < -1)
		return spk_fail(SPOKE_EINVAL, "spoke_spawn_opts.poll_us=%d: expected -1 (the "
				"worker's default) or a number of microseconds, 0 or more",
				o->poll_us);
	if (o && o->max_restarts > SPOKE_MAX_RESTARTS)
		return spk_fail(SPOKE_EINVAL, "spoke_spawn_opts.max_restarts=%u: at most %u",
				o->max_restarts, SPOKE_MAX_RESTARTS);
	if (o && o->restart_backoff_ms > SPOKE_MAX_RESTART_BACKOFF_MS)
		return spk_fail(SPOKE_EINVAL, "spoke_spawn_opts.restart_backoff_ms=%u: at most %u",
				o->restart_backoff_ms, SPOKE_MAX_RESTART_BACKOFF_MS);
	return 0;
}

/* The spawn request of spoke_spawn and spoke_gang_launch (for which
 * start() puts in the slot's GPUs), checked. */
static int spec_from(const char *func, bool gang, spoke_client *c, struct spk_spawn_spec *s,
		     const char *type, const char *name, const void *args, size_t args_len,
		     const spoke_spawn_opts *o)
{
	int rc;

	if (!type)
		return spk_api_null(func, "type");
	if (!name)
		return spk_api_null(func, "name");
	if (!args && args_len)
		return spk_fail(SPOKE_EINVAL, "%s: args is NULL with args_len %zu", func, args_len);
	if (args_len > UINT32_MAX)
		return spk_fail(SPOKE_ETOOBIG, "args of %zu bytes: at most %u", args_len,
				UINT32_MAX);
	rc = check_name("actor type", type, SPOKE_TYPE_NAME_MAX);
	if (rc == 0)
		rc = check_name("actor name", name, SPOKE_ACTOR_NAME_MAX);
	if (rc == 0 && o && o->module)
		rc = check_name("module", o->module, SPK_PATH_MAX);
	if (rc == 0 && o && o->program)
		rc = check_name("program", o->program, SPK_PATH_MAX);
	if (rc == 0)
		rc = check_opts(o);
	if (rc < 0)
		return rc;
	memset(s, 0, sizeof(*s));
	snprintf(s->type, sizeof(s->type), "%s", type);
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->module, sizeof(s->module), "%s", o && o->module ? o->module : "");
	snprintf(s->program, sizeof(s->program), "%s", o && o->program ? o->program : "");
	s->args = args;
	s->args_len = (uint32_t)args_len;
	s->poll_us = o ? o->poll_us : -1;
	if (o && !gang)
		s->res = o->res; /* a gang slot brings its own */
	s->timeout_ms = (uint32_t)(o && o->timeout_ms > 0 ? o->timeout_ms : c->timeout_ms);
	s->max_restarts = o ? o->max_restarts : 0;
	s->restart_backoff_ms = o ? o->restart_backoff_ms : 0;
	return spk_spawn_spec_check(s);
}

/* Where t is in the client's list of tickets, or -1 (under the lock; t is
 * not dereferenced). */
static ssize_t ticket_index(const spoke_client *c, const spoke_ticket *t)
{
	for (size_t i = 0; i < c->n_tickets; i++)
		if (c->tickets[i] == t)
			return (ssize_t)i;
	return -1;
}

static int not_held(void)
{
	return spk_fail(SPOKE_ENOTICKET, "this client holds no such ticket (released already, "
			"or not from spoke_gang_allocate)");
}

/* SPAWN of l->spec, or LAUNCH of it in slot l->rank of ticket t: waits for
 * the acknowledged start. */
static int start(spoke_client *c, const spoke_ticket *t, struct spk_launch *l)
{
	/* The hub and agent get the spawn's own timeout; we wait a second
	 * more for their answer, which says what happened. */
	int64_t deadline = spk_client_deadline(c, (int)l->spec.timeout_ms) + 1000000;
	uint32_t rank = l->rank;
	struct spk_endpoint ep;
	spoke_view v;
	spoke_buf b;
	int rc;

	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return rc;
	if (t) {
		if (ticket_index(c, t) < 0) {
			rc = not_held();
			goto out_unlock;
		}
		if (rank >= t->n_slots) {
			rc = spk_fail(SPOKE_EINVAL, "rank %u is outside the ticket (%u slots)", rank,
				      t->n_slots);
			goto out_unlock;
		}
		l->spec.res.gpus = t->slots[rank].n_gpus;
		l->ticket = t->id;
		spk_launch_pack(&b, l);
	} else {
		spk_spawn_spec_pack(&b, &l->spec);
	}
	rc = hub_roundtrip(c, &b, t ? SPK_LAUNCH : SPK_SPAWN, deadline, &v);
	if (rc == 0 && spk_endpoint_unpack(&v, &ep) < 0)
		rc = spk_fail(SPOKE_EPROTO, "malformed answer from the hub");
out_unlock:
	hub_end(c);
	return rc < 0 ? rc : 0;
}

int spoke_spawn(spoke_client *c, const char *type, const char *name, const void *args,
		size_t args_len, const spoke_spawn_opts *opts)
{
	struct spk_launch l = { 0 };
	int rc;

	spk_api_enter();
	if (!c)
		return spk_api_null(__func__, "c");
	rc = spec_from(__func__, false, c, &l.spec, type, name, args, args_len, opts);
	if (rc == 0)
		rc = start(c, NULL, &l);
	return spk_api_ret(rc);
}

int spoke_gang_launch(spoke_client *c, const spoke_ticket *t, uint32_t rank, const char *type,
		      const char *name, const void *args, size_t args_len,
		      const spoke_spawn_opts *opts)
{
	struct spk_launch l = { 0 };
	int rc;

	spk_api_enter();
	if (!c)
		return spk_api_null(__func__, "c");
	if (!t)
		return spk_api_null(__func__, "t");
	l.rank = rank;
	rc = spec_from(__func__, true, c, &l.spec, type, name, args, args_len, opts);
	if (rc == 0)
		rc = start(c, t, &l);
	return spk_api_ret(rc);
}

/* Asks the hub to release ticket `id` (under the lock). */
static int release_id(spoke_client *c, uint64_t id, int64_t deadline)
{
	struct spk_release r = { .ticket = id };
	spoke_view v;
	spoke_buf b;

	spk_sync_begin(&c->hub, &b);
	spk_release_pack(&b, &r);
	return hub_roundtrip(c, &b, SPK_RELEASE, deadline, &v);
}

int spoke_gang_allocate(spoke_client *c, uint32_t nodes, uint32_t per_node,
			const spoke_resources *res, int strict_pack, spoke_ticket **out,
			int timeout_ms)
{
	struct spk_alloc a = { .nodes = nodes, .per_node = per_node,
			       .res = res ? *res : (spoke_resources){ 0, 0 },
			       .strict_pack = strict_pack != 0 };
	int64_t deadline;
	spoke_view v, head;
	spoke_ticket *t;
	uint64_t id;
	spoke_buf b;
	int rc;

	spk_api_enter();
	if (!c)
		return spk_api_null(__func__, "c");
	if (!out)
		return spk_api_null(__func__, "out");
	*out = NULL;
	deadline = spk_client_deadline(c, timeout_ms);
	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return spk_api_ret(rc);
	/* Room in the list first: a ticket the hub reserved is never lost. */
	if (c->n_tickets == c->cap_tickets) {
		size_t cap = c->cap_tickets ? 2 * c->cap_tickets : 4;
		spoke_ticket **nt = realloc(c->tickets, cap * sizeof(*nt));

		if (!nt) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		c->tickets = nt;
		c->cap_tickets = cap;
	}
	spk_alloc_pack(&b, &a);
	rc = hub_roundtrip(c, &b, SPK_ALLOC, deadline, &v);
	if (rc < 0)
		goto out_unlock;
	head = v;
	rc = spk_alloc_answer_decode(&v, &t);
	if (rc < 0) {
		/* The hub reserved what we cannot hold: give it back. */
		if (spoke_view_get_u64(&head, &id) == 0) {
			char why[512];

			snprintf(why, sizeof(why), "%s", spoke_errmsg());
			release_id(c, id, deadline);
			spk_fail(rc, "%s", why);
		}
		goto out_unlock;
	}
	c->tickets[c->n_tickets++] = t;
	*out = t;
	rc = 0;
out_unlock:
	hub_end(c);
	return spk_api_ret(rc);
}

int spoke_gang_release(spoke_client *c, spoke_ticket *t, int timeout_ms)
{
	int64_t deadline;
	spoke_buf b;
	ssize_t i;
	int rc;

	spk_api_enter();
	if (!c)
		return spk_api_null(__func__, "c");
	if (!t)
		return spk_api_null(__func__, "t");
	deadline = spk_client_deadline(c, timeout_ms);
	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return spk_api_ret(rc);
	i = ticket_index(c, t);
	if (i < 0) {
		rc = not_held();
		goto out_unlock;
	}
	rc = release_id(c, t->id, deadline);
	/* Once the hub released it, or answered that it knows no such
	 * ticket, it goes; otherwise (a timeout, a lost hub) it stays held,
	 * for a retry. */
	if (rc >= 0 || rc == SPOKE_ENOTICKET) {
		c->tickets[i] = c->tickets[--c->n_tickets];
		free(t);
	}
out_unlock:
	hub_end(c);
	return spk_api_ret(rc < 0 ? rc : 0);
}

/* KILL or LOOKUP: a request naming an actor; LOOKUP's answer into *ep. */
static int named_request(spoke_client *c, uint8_t type, const char *name,
			 struct spk_endpoint *ep, int timeout_ms)
{
	int64_t deadline = spk_client_deadline(c, timeout_ms);
	struct spk_actor_ref ref;
	spoke_view v;
	spoke_buf b;
	int rc;

	rc = check_name("actor name", name, SPOKE_ACTOR_NAME_MAX);
	if (rc < 0)
		return rc;
	snprintf(ref.name, sizeof(ref.name), "%s", name);
	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return rc;
	spk_actor_ref_pack(&b, &ref);
	rc = hub_roundtrip(c, &b, type, deadline, &v);
	if (rc == 0 && ep && spk_endpoint_unpack(&v, ep) < 0)
		rc = spk_fail(SPOKE_EPROTO, "malformed answer to %s", spk_type_name(type));
	hub_end(c);
	return rc < 0 ? rc : 0;
}

int spoke_kill(spoke_client *c, const char *name, int timeout_ms)
{
	spk_api_enter();
	if (!c)
		return spk_api_null(__func__, "c");
	if (!name)
		return spk_api_null(__func__, "name");
	return spk_api_ret(named_request(c, SPK_KILL, name, NULL, timeout_ms));
}

int spoke_nodes(spoke_client *c, spoke_node_info *out, size_t cap, int timeout_ms)
{
	int64_t deadline;
	spoke_view v;
	spoke_buf b;
	int rc;

	spk_api_enter();
	if (!c)
		return spk_api_null(__func__, "c");
	if (!out && cap > 0)
		return spk_fail(SPOKE_EINVAL, "%s: out is NULL with cap %zu", __func__, cap);
	deadline = spk_client_deadline(c, timeout_ms);
	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return spk_api_ret(rc);
	rc = hub_roundtrip(c, &b, SPK_NODES, deadline, &v);
	if (rc >= 0)
		rc = spk_nodes_answer_decode(&v, out, cap);
	hub_end(c);
	return spk_api_ret(rc);
}

/* Asks the hub where actor `name` listens (used by spoke_actor_open and a
 * handle whose connection broke); while the actor restarts, asks again
 * every RESTART_POLL_MS until the timeout. */
int spk_client_lookup(spoke_client *c, const char *name, struct spk_endpoint *ep,
		      int timeout_ms)
{
	int64_t deadline = spk_client_deadline(c, timeout_ms);
	char why[256];
	int rc;

	for (;;) {
		rc = named_request(c, SPK_LOOKUP, name, ep, timeout_ms);
		if (rc != SPOKE_EAGAIN)
			return rc;
		timeout_ms = spk_ms_left(deadline) - RESTART_POLL_MS;
		if (timeout_ms <= 0)
			break;
		usleep(RESTART_POLL_MS * 1000);
	}
	snprintf(why, sizeof(why), "%s", spoke_errmsg());
	return spk_fail(SPOKE_ETIMEDOUT, "%s, still when the timeout expired", why);
}

/* STATUS (spoke-status): the hub's answer, copied into *raw (malloc'd) and
 * decoded from it into *out; free *out (spk_status_free), then *raw. */
int spk_client_status(spoke_client *c, struct spk_status **out, uint8_t **raw, int timeout_ms)
{
	int64_t deadline = spk_client_deadline(c, timeout_ms);
	spoke_view v;
	spoke_buf b;
	int rc;

	*out = NULL;
	*raw = NULL;
	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return rc;
	rc = hub_roundtrip(c, &b, SPK_STATUS, deadline, &v);
	if (rc >= 0) {
		*raw = malloc(v.len ? v.len : 1);
		rc = *raw ? 0 : spk_fail(-ENOMEM, "out of memory for the hub's STATUS answer");
	}
	if (rc == 0) {
		memcpy(*raw, v.data, v.len);
		spoke_view_init(&v, *raw, v.len);
		rc = spk_status_answer_decode(&v, out);
	}
	hub_end(c);
	if (rc < 0) {
		free(*raw);
		*raw = NULL;
	}
	return rc;
}

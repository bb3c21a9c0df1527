/* client.c - the client's side of the hub: spawn, gangs, lookup, kill. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "clock.h"
#include "client_priv.h"
#include "errmsg.h"
#include "proto.h"

#define DEFAULT_TIMEOUT_MS 10000

int64_t spk_client_deadline(const spoke_client *c, int timeout_ms)
{
	return spk_now_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : c->timeout_ms) * 1000;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

int spoke_client_open(spoke_client **out, const spoke_client_opts *opts)
{
	spoke_client_opts o = { NULL, NULL, 0, -1 };
	spoke_client *c;
	int rc;

	if (opts)
		o = *opts;
	if (!o.hub)
		o.hub = getenv("SPOKE_HUB");
	if (!o.hub || !*o.hub)
		return spk_fail(SPOKE_ENOHUB, "no hub address: set SPOKE_HUB=host:port");
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : env_int("SPOKE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS);
	c->poll_us = o.poll_us >= 0 ? o.poll_us : env_int("SPOKE_POLL_US", 0);
	rc = spk_token_load(o.token, c->token, sizeof(c->token));
	if (rc < 0) {
		spk_fail(rc, "no job token: set SPOKE_TOKEN or SPOKE_TOKEN_FILE");
		goto out_free;
	}
	rc = spk_chan_open(&c->hub, o.hub, c->token, 0, spk_client_deadline(c, 0));
	if (rc < 0)
		goto out_free;
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->refs, 1);
	*out = c;
	return 0;
out_free:
	free(c);
	return rc;
}

void spk_client_hold(spoke_client *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void spk_client_drop(spoke_client *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	spk_chan_close(&c->hub);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void spoke_client_close(spoke_client *c)
{
	if (!c || atomic_exchange(&c->closed, true))
		return;
	/* The hub connection goes now; open actor handles keep the rest. */
	pthread_mutex_lock(&c->lock);
	spk_chan_break(&c->hub, SPOKE_ECLOSED);
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
	spk_chan_begin(&c->hub, b);
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

	if (atomic_load(&c->closed))
		return spk_fail(SPOKE_ECLOSED, "the client was closed (spoke_client_close)");
	if (c->hub.broken)
		return spk_fail(SPOKE_EDEAD, "the connection to the hub is lost (%s)",
				spoke_strerror(c->hub.broken));
	rc = spk_chan_send_buf(&c->hub, b, type, id, 0, deadline);
	for (;;) {
		/* A header timeout consumes nothing: the channel stays usable,
		 * and the late answer is skipped by the next request. */
		if (rc == 0)
			rc = spk_chan_recv_hdr(&c->hub, &h, deadline);
		if (rc < 0)
			return rc;
		if (h.type != SPK_REPLY || h.id > id)
			return spk_chan_break(&c->hub, spk_fail(SPOKE_EPROTO,
								"the hub answered out of turn"));
		if (h.id == id)
			break;
		rc = spk_chan_skip(&c->hub, h.len, deadline);
	}
	rc = spk_chan_recv_view(&c->hub, h.len, &p, deadline);
	if (rc < 0)
		return rc;
	spoke_view_init(v, p, h.len);
	if (h.aux < 0) {
		spk_errmsg_setn((const char *)p, h.len);
		return h.aux;
	}
	return h.aux;
}

static void spec_from(struct spk_spawn_spec *s, const char *type, const char *name,
		      const void *args, size_t args_len, const spoke_spawn_opts *o)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->type, sizeof(s->type), "%s", type ? type : "");
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
	snprintf(s->module, sizeof(s->module), "%s", o && o->module ? o->module : "");
	snprintf(s->program, sizeof(s->program), "%s", o && o->program ? o->program : "");
	s->args = args;
	s->args_len = (uint32_t)args_len;
	s->poll_us = o ? o->poll_us : -1;
	if (o)
		s->res = o->res;
	s->timeout_ms = (uint32_t)(o && o->timeout_ms > 0 ? o->timeout_ms : 0);
}

static int check_spec(const struct spk_spawn_spec *s, const char *type, const char *name)
{
	if (!type || strlen(type) >= SPOKE_TYPE_NAME_MAX)
		return spk_fail(SPOKE_EINVAL, "actor type missing or longer than %d bytes",
				SPOKE_TYPE_NAME_MAX - 1);
	if (!name || strlen(name) >= SPOKE_ACTOR_NAME_MAX)
		return spk_fail(SPOKE_EINVAL, "actor name missing or longer than %d bytes",
				SPOKE_ACTOR_NAME_MAX - 1);
	return spk_spawn_spec_check(s);
}

/* SPAWN or LAUNCH: waits for the acknowledged start. */
static int start(spoke_client *c, uint8_t type, const spoke_ticket *t, uint32_t rank,
		 const struct spk_spawn_spec *s, const spoke_spawn_opts *o)
{
	/* The agent gets the spawn's own timeout; we wait a second more for
	 * its answer, which says what happened. */
	int64_t deadline = spk_client_deadline(c, (int)s->timeout_ms) + 1000000;
	struct spk_endpoint ep;
	spoke_view v;
	spoke_buf b;
	int rc;

	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return rc;
	if (t) {
		spoke_buf_put_u64(&b, t->id);
		spoke_buf_put_u32(&b, rank);
	}
	spk_spawn_spec_pack(&b, s);
	/* The hub and agent get the spawn's own timeout; we allow a little more. */
	rc = hub_roundtrip(c, &b, type, deadline, &v);
	if (rc == 0 && spk_endpoint_unpack(&v, &ep) < 0)
		rc = spk_fail(SPOKE_EPROTO, "malformed answer from the hub");
	hub_end(c);
	return rc < 0 ? rc : 0;
}

int spoke_spawn(spoke_client *c, const char *type, const char *name, const void *args,
		size_t args_len, const spoke_spawn_opts *opts)
{
	struct spk_spawn_spec s;
	int rc;

	spec_from(&s, type, name, args, args_len, opts);
	if (!s.timeout_ms)
		s.timeout_ms = (uint32_t)c->timeout_ms;
	rc = check_spec(&s, type, name);
	return rc < 0 ? rc : start(c, SPK_SPAWN, NULL, 0, &s, opts);
}

int spoke_gang_launch(spoke_client *c, const spoke_ticket *t, uint32_t rank, const char *type,
		      const char *name, const void *args, size_t args_len,
		      const spoke_spawn_opts *opts)
{
	struct spk_spawn_spec s;
	int rc;

	if (!t || rank >= t->n_slots)
		return spk_fail(SPOKE_EINVAL, "rank %u is outside the ticket", rank);
	spec_from(&s, type, name, args, args_len, opts);
	if (!s.timeout_ms)
		s.timeout_ms = (uint32_t)c->timeout_ms;
	s.res.gpus = t->slots[rank].n_gpus;
	rc = check_spec(&s, type, name);
	return rc < 0 ? rc : start(c, SPK_LAUNCH, t, rank, &s, opts);
}

int spoke_gang_allocate(spoke_client *c, uint32_t nodes, uint32_t per_node,
			const spoke_resources *res, int strict_pack, spoke_ticket **out,
			int timeout_ms)
{
	int64_t deadline = spk_client_deadline(c, timeout_ms);
	spoke_resources r = res ? *res : (spoke_resources){ 0, 0 };
	spoke_ticket *t = NULL;
	uint32_t n = 0;
	uint64_t id = 0;
	spoke_view v;
	spoke_buf b;
	int rc;

	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return rc;
	spoke_buf_put_u32(&b, nodes);
	spoke_buf_put_u32(&b, per_node);
	spoke_buf_put_u32(&b, r.gpus);
	spoke_buf_put_u32(&b, r.cpus);
	spoke_buf_put_u8(&b, strict_pack ? 1 : 0);
	rc = hub_roundtrip(c, &b, SPK_ALLOC, deadline, &v);
	if (rc < 0)
		goto out_unlock;
	spoke_view_get_u64(&v, &id);
	spoke_view_get_u32(&v, &n);
	if (spoke_view_error(&v) || n > spoke_view_remaining(&v)) {
		rc = spk_fail(SPOKE_EPROTO, "malformed ALLOC answer");
		goto out_unlock;
	}
	t = calloc(1, sizeof(*t) + n * sizeof(t->slots[0]));
	if (!t) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	t->id = id;
	t->n_slots = n;
	for (uint32_t i = 0; i < n; i++)
		spk_slot_unpack(&v, &t->slots[i]);
	if (spoke_view_error(&v)) {
		rc = spk_fail(SPOKE_EPROTO, "malformed ALLOC answer");
		free(t);
		goto out_unlock;
	}
	*out = t;
	rc = 0;
out_unlock:
	hub_end(c);
	return rc;
}

int spoke_gang_release(spoke_client *c, spoke_ticket *t, int timeout_ms)
{
	int64_t deadline = spk_client_deadline(c, timeout_ms);
	spoke_view v;
	spoke_buf b;
	int rc;

	if (!t)
		return 0;
	rc = hub_begin(c, &b, deadline);
	if (rc < 0) {
		free(t);
		return rc;
	}
	spoke_buf_put_u64(&b, t->id);
	rc = hub_roundtrip(c, &b, SPK_RELEASE, deadline, &v);
	hub_end(c);
	free(t);
	return rc < 0 ? rc : 0;
}

/* KILL or LOOKUP: a request naming an actor; LOOKUP's answer into *ep. */
static int named_request(spoke_client *c, uint8_t type, const char *name,
			 struct spk_endpoint *ep, int timeout_ms)
{
	int64_t deadline = spk_client_deadline(c, timeout_ms);
	spoke_view v;
	spoke_buf b;
	int rc;

	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return rc;
	spoke_buf_put_str(&b, name);
	rc = hub_roundtrip(c, &b, type, deadline, &v);
	if (rc == 0 && ep && spk_endpoint_unpack(&v, ep) < 0)
		rc = spk_fail(SPOKE_EPROTO, "malformed answer to %s", spk_type_name(type));
	hub_end(c);
	return rc < 0 ? rc : 0;
}

int spoke_kill(spoke_client *c, const char *name, int timeout_ms)
{
	return named_request(c, SPK_KILL, name, NULL, timeout_ms);
}

int spoke_nodes(spoke_client *c, spoke_node_info *out, size_t cap, int timeout_ms)
{
	int64_t deadline = spk_client_deadline(c, timeout_ms);
	uint32_t n = 0;
	spoke_view v;
	spoke_buf b;
	int rc;

	rc = hub_begin(c, &b, deadline);
	if (rc < 0)
		return rc;
	rc = hub_roundtrip(c, &b, SPK_NODES, deadline, &v);
	if (rc == 0)
		spoke_view_get_u32(&v, &n);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		spoke_node_info info;

		spoke_view_get_str_copy(&v, info.name, sizeof(info.name));
		spoke_view_get_u32(&v, &info.n_gpus);
		spoke_view_get_u32(&v, &info.free_gpus);
		if (i < cap)
			out[i] = info;
	}
	if (rc == 0 && spoke_view_error(&v))
		rc = spk_fail(SPOKE_EPROTO, "malformed NODES answer");
	hub_end(c);
	return rc < 0 ? rc : (int)n;
}

/* Asks the hub where actor `name` listens (used by spoke_actor_open). */
int spk_client_lookup(spoke_client *c, const char *name, struct spk_endpoint *ep,
		      int timeout_ms)
{
	return named_request(c, SPK_LOOKUP, name, ep, timeout_ms);
}

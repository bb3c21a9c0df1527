/* hub.c - the hub process: nodes, actors, tickets and placement.
 *
 * Agents connect and REGISTER their node; clients connect to SPAWN,
 * ALLOC/LAUNCH/RELEASE gangs, LOOKUP and KILL actors.  A spawn becomes a
 * START to the chosen node's agent; the agent's answer (after the worker's
 * init returned and it listens) completes the client's request, or the
 * spawn's own timeout fails it.
 *
 * The hub keeps a record only of live actors (starting or running): a dead
 * actor's record is freed at once and its name is free again.  The last
 * HUB_DEATHS deaths are remembered (name, node, why) so that a lookup of a
 * dead actor still says what became of it.
 *
 * At thousands of nodes and tens of thousands of actors no request walks
 * them all: actors are found by name and by start id through hash indexes,
 * each agent keeps the list of its node's actors (an agent that goes away
 * kills just those), a gang slot points at the actor launched into it, and
 * a START in flight points at the client that asked (cleared when that
 * client goes).  tests/bench/hub-sim.c measures it. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <spoke/errors.h>
#include <spoke/version.h>

#include "auth.h"
#include "errmsg.h"
#include "loop_conn.h"
#include "file.h"
#include "book.h"
#include "log.h"
#include "net.h"
#include "proto.h"

#define HUB_DEATHS 64
#define HUB_BACKLOG 65535 /* the kernel caps it at net.core.somaxconn */
#define HUB_PREAUTH_MAX 16384 /* connections waiting for their handshake */
#define HUB_BUF_INITIAL 1024   /* bytes of each buffer of a connection, at first */
#define START_GRACE_MS 500    /* past the spawn's timeout, for the agent's own answer */
#define START_DEFAULT_MS 30000 /* a spawn that names no timeout */

/* STARTING until its first READY; RESTARTING from a death its agent will
 * restart it after (EXITED with a restart's number) to that restart's READY
 * (RESTARTED): its GPUs stay reserved, lookups say it restarts. */
enum actor_state { ACTOR_STARTING, ACTOR_RUNNING, ACTOR_RESTARTING };

struct hub_peer;

struct hub_actor {
	char name[SPOKE_ACTOR_NAME_MAX];
	char type[SPOKE_TYPE_NAME_MAX];
	enum actor_state state;
	uint32_t node;
	struct spk_endpoint ep;
	struct spk_ticket *gang;  /* gang ticket it was launched in, or NULL */
	uint64_t start_id;        /* the START that made it (restarts keep it) */
	uint32_t restarts;        /* how often its agent restarted it */
	uint32_t max_restarts;    /* at most (its spawn's) */
	uint32_t rank;            /* its slot in the gang ticket */
	struct spk_ticket *own;   /* its own reservation (spoke_spawn), or NULL */
	struct hub_peer *agent;   /* its node's agent */
	struct hub_actor *prev, *next;           /* all live actors */
	struct hub_actor *node_prev, *node_next; /* its agent's */
	struct hub_actor *name_next, *id_next;   /* hash chains */
	uint8_t *stats;        /* its worker's last STATS payload (checked), or NULL */
	uint32_t stats_len;
	ev_tstamp stats_at;    /* when it came */
};

/* A recent death, for error messages. */
struct hub_death {
	char name[SPOKE_ACTOR_NAME_MAX];
	char node[SPOKE_NODE_NAME_MAX];
	char why[160];
};

struct hub_peer {
	struct spk_loop_conn conn;
	struct hub *hub;
	int node; /* node index for an agent, -1 for a client */
	struct hub_actor *actors; /* an agent's: its node's actors */
	struct hub_peer *next, **pprev;
};

/* A START waiting for its agent's answer; its id is the actor's start_id. */
struct hub_op {
	uint64_t id;
	struct hub_peer *client; /* the client that asked; NULL once it went */
	uint64_t req;     /* the client's request id */
	uint32_t node;    /* where it was sent */
	uint32_t timeout_ms;
	char name[SPOKE_ACTOR_NAME_MAX];
	ev_timer timer;   /* the spawn's timeout */
	struct hub *hub;
	struct hub_op *next;
};

struct hub {
	struct ev_loop *loop;
	struct spk_acceptor acceptor;
	ev_signal sigint_w, sigterm_w, sigusr1_w;
	int listen_fd;
	char token[SPK_TOKEN_MAX];
	struct spk_book book; /* each node's data: its agent's hub_peer */
	struct hub_peer *peers;
	char **allowed; /* --allow-nodes: the only nodes that may register; NULL: any */
	uint32_t n_allowed;
	struct hub_actor *actors; /* live ones only */
	struct hub_actor **by_name, **by_id; /* n_buckets each, a power of two */
	size_t n_buckets, n_actors;
	struct hub_death deaths[HUB_DEATHS]; /* a ring: the newest at (n_deaths - 1) % HUB_DEATHS */
	uint64_t n_deaths;
	struct hub_op *ops;
	uint64_t next_op;
	ev_tstamp started; /* for the uptime (STATUS) */
};

static struct hub_peer *agent_of(struct hub *hub, uint32_t node)
{
	return hub->book.nodes[node].data;
}

/* ---- the actors' indexes ---- */

static size_t name_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211ull;
	return (size_t)h;
}

static size_t id_hash(uint64_t id)
{
	return (size_t)(id * 0x9e3779b97f4a7c15ull >> 16);
}

static struct hub_actor *find_actor(struct hub *hub, const char *name)
{
	if (!hub->n_buckets)
		return NULL;
	for (struct hub_actor *a = hub->by_name[name_hash(name) & (hub->n_buckets - 1)]; a;
	     a = a->name_next)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

static struct hub_actor *find_started(struct hub *hub, uint64_t start_id)
{
	if (!hub->n_buckets)
		return NULL;
	for (struct hub_actor *a = hub->by_id[id_hash(start_id) & (hub->n_buckets - 1)]; a;
	     a = a->id_next)
		if (a->start_id == start_id)
			return a;
	return NULL;
}

static void index_insert(struct hub *hub, struct hub_actor *a)
{
	struct hub_actor **bn = &hub->by_name[name_hash(a->name) & (hub->n_buckets - 1)];
	struct hub_actor **bi = &hub->by_id[id_hash(a->start_id) & (hub->n_buckets - 1)];

	a->name_next = *bn;
	*bn = a;
	a->id_next = *bi;
	*bi = a;
}

/* Buckets for one more actor (as many buckets as actors, doubled as they
 * grow); 0 or -ENOMEM (the indexes as they were). */
static int index_fit(struct hub *hub)
{
	size_t n = hub->n_buckets ? hub->n_buckets : 256;
	struct hub_actor **by_name, **by_id;

	while (n < hub->n_actors + 1)
		n *= 2;
	if (n == hub->n_buckets)
		return 0;
	by_name = calloc(n, sizeof(*by_name));
	by_id = calloc(n, sizeof(*by_id));
	if (!by_name || !by_id) {
		free(by_name);
		free(by_id);
		return -ENOMEM;
	}
	free(hub->by_name);
	free(hub->by_id);
	hub->by_name = by_name;
	hub->by_id = by_id;
	hub->n_buckets = n;
	for (struct hub_actor *a = hub->actors; a; a = a->next)
		index_insert(hub, a);
	return 0;
}

/* A new actor into every list and index (index_fit made room). */
static void actor_link(struct hub *hub, struct hub_actor *a)
{
	a->prev = NULL;
	a->next = hub->actors;
	if (a->next)
		a->next->prev = a;
	hub->actors = a;
	a->node_prev = NULL;
	a->node_next = a->agent->actors;
	if (a->node_next)
		a->node_next->node_prev = a;
	a->agent->actors = a;
	index_insert(hub, a);
	hub->n_actors++;
	if (a->gang)
		a->gang->grants[a->rank].data = a;
}

static void actor_unlink(struct hub *hub, struct hub_actor *a)
{
	struct hub_actor **pp;

	if (a->prev)
		a->prev->next = a->next;
	else
		hub->actors = a->next;
	if (a->next)
		a->next->prev = a->prev;
	if (a->node_prev)
		a->node_prev->node_next = a->node_next;
	else
		a->agent->actors = a->node_next;
	if (a->node_next)
		a->node_next->node_prev = a->node_prev;
	for (pp = &hub->by_name[name_hash(a->name) & (hub->n_buckets - 1)]; *pp != a;
	     pp = &(*pp)->name_next)
		;
	*pp = a->name_next;
	for (pp = &hub->by_id[id_hash(a->start_id) & (hub->n_buckets - 1)]; *pp != a;
	     pp = &(*pp)->id_next)
		;
	*pp = a->id_next;
	hub->n_actors--;
	if (a->gang)
		a->gang->grants[a->rank].data = NULL;
}

/* The newest remembered death of an actor of that name, or NULL. */
static const struct hub_death *find_death(const struct hub *hub, const char *name)
{
	uint64_t n = hub->n_deaths < HUB_DEATHS ? hub->n_deaths : HUB_DEATHS;

	for (uint64_t k = 1; k <= n; k++) {
		const struct hub_death *d = &hub->deaths[(hub->n_deaths - k) % HUB_DEATHS];

		if (!strcmp(d->name, name))
			return d;
	}
	return NULL;
}

static void reply_endpoint(struct spk_loop_conn *c, uint64_t id, const struct spk_endpoint *ep)
{
	spoke_buf b;

	spk_loop_begin(c, &b);
	spk_endpoint_pack(&b, ep);
	spk_loop_finish(c, &b, SPK_REPLY, id, 0);
}

/* The actor is gone: frees its own reservation and its record (a is
 * invalid afterwards) and remembers why, among the last HUB_DEATHS deaths. */
static void actor_dead(struct hub *hub, struct hub_actor *a, const char *why)
{
	struct hub_death *d = &hub->deaths[hub->n_deaths++ % HUB_DEATHS];
	const char *node = hub->book.nodes[a->node].name;
	char esc[SPK_ESC_CAP(sizeof(d->why))];

	spk_info("actor %s on %s: %s", a->name, node, spk_log_escape(esc, sizeof(esc), why,
									 strlen(why)));
	memcpy(d->name, a->name, sizeof(d->name));
	memcpy(d->node, node, sizeof(d->node)); /* both SPOKE_NODE_NAME_MAX */
	snprintf(d->why, sizeof(d->why), "%s", why);
	actor_unlink(hub, a);
	if (a->own)
		spk_book_release(&hub->book, a->own);
	free(a->stats);
	free(a);
}

static void stop_actor(struct hub *hub, struct hub_actor *a, const char *why)
{
	struct hub_peer *agent = agent_of(hub, a->node);
	struct spk_actor_ref r;
	spoke_buf b;

	if (agent) {
		memcpy(r.name, a->name, sizeof(r.name));
		spk_loop_begin(&agent->conn, &b);
		spk_actor_ref_pack(&b, &r);
		spk_loop_finish(&agent->conn, &b, SPK_STOP, a->start_id, 0);
	}
	actor_dead(hub, a, why);
}

static void __attribute__((format(printf, 4, 5)))
fail_op(struct hub *hub, struct hub_op *op, int status, const char *fmt, ...)
{
	struct hub_peer *client = op->client;
	char msg[512];
	va_list ap;

	if (!client)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spk_loop_reply_error(&client->conn, op->req, status, "%s", msg);
}

static void free_op(struct hub *hub, struct hub_op *op)
{
	ev_timer_stop(hub->loop, &op->timer);
	free(op);
}

static struct hub_op *take_op(struct hub *hub, uint64_t id)
{
	for (struct hub_op **pp = &hub->ops; *pp; pp = &(*pp)->next) {
		struct hub_op *op = *pp;

		if (op->id == id) {
			*pp = op->next;
			return op;
		}
	}
	return NULL;
}

/* A START its agent did not answer within the spawn's timeout: the client
 * hears so, and the actor is stopped (the agent kills it should it start
 * after all), which frees its reservation. */
static void op_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct hub_op *op = w->data;
	struct hub *hub = op->hub;
	struct hub_actor *a = find_started(hub, op->id);
	const char *node = hub->book.nodes[op->node].name;

	(void)loop;
	(void)revents;
	op = take_op(hub, op->id);
	spk_warn("actor %s: the agent of node %s did not answer its start within %u ms", op->name,
		 node, op->timeout_ms);
	fail_op(hub, op, SPOKE_ETIMEDOUT,
		"actor '%s': the agent of node %s did not answer its start within %u ms",
		op->name, node, op->timeout_ms);
	if (a)
		stop_actor(hub, a, "did not start in time");
	free_op(hub, op);
}

/* Sends START for actor spec->name, placed on `node` with the grant's GPUs:
 * 0 (the agent's answer, or the spawn's timeout, answers the client), or a
 * refusal (own is released). */
static int start_actor(struct hub *hub, struct hub_peer *client, uint64_t req,
		       struct spk_spawn_spec *spec, uint32_t node, const struct spk_grant *g,
		       struct spk_ticket *gang, struct spk_ticket *own)
{
	struct hub_peer *agent = agent_of(hub, node);
	struct hub_actor *a = NULL;
	struct hub_op *op = NULL;
	spoke_buf b;
	int rc;

	if (!agent) {
		rc = spk_fail(SPOKE_EDEAD, "node %s has no agent", hub->book.nodes[node].name);
		goto out_free;
	}
	op = calloc(1, sizeof(*op));
	a = calloc(1, sizeof(*a));
	if (!op || !a || index_fit(hub) < 0) {
		rc = spk_fail(-ENOMEM, "hub out of memory");
		goto out_free;
	}
	snprintf(a->name, sizeof(a->name), "%s", spec->name);
	snprintf(a->type, sizeof(a->type), "%s", spec->type);
	a->state = ACTOR_STARTING;
	a->max_restarts = spec->max_restarts;
	a->node = node;
	a->gang = gang;
	a->rank = g->rank;
	a->own = own;
	a->agent = agent;
	op->id = a->start_id = ++hub->next_op;
	actor_link(hub, a);
	op->node = node;
	op->client = client;
	op->req = req;
	op->timeout_ms = spec->timeout_ms ? spec->timeout_ms : START_DEFAULT_MS;
	snprintf(op->name, sizeof(op->name), "%s", spec->name);
	op->hub = hub;
	ev_timer_init(&op->timer, op_timeout, (op->timeout_ms + START_GRACE_MS) / 1000.0, 0.);
	op->timer.data = op;
	ev_timer_start(hub->loop, &op->timer);
	op->next = hub->ops;
	hub->ops = op;
	spec->n_gpus = g->n_gpus;
	memcpy(spec->gpus, g->gpus, sizeof(spec->gpus));
	spk_loop_begin(&agent->conn, &b);
	spk_spawn_spec_pack(&b, spec);
	/* Should it not go out, the agent's connection is closing: its
	 * close fails the op, which answers the client. */
	spk_loop_finish(&agent->conn, &b, SPK_START, op->id, 0);
	return 0;
out_free:
	free(op);
	free(a);
	if (own)
		spk_book_release(&hub->book, own);
	return rc;
}

/* 0 if spec may start: its names are good and no live actor has its name. */
static int check_new_name(struct hub *hub, const struct spk_spawn_spec *spec)
{
	struct hub_actor *a;
	int rc = spk_spawn_spec_check(spec);

	if (rc < 0)
		return rc;
	a = find_actor(hub, spec->name);
	if (a)
		return spk_fail(SPOKE_EEXIST, "an actor named '%s' exists already (on %s)",
				spec->name, hub->book.nodes[a->node].name);
	return 0;
}

/* The request handlers below take the decoded message and return 0 when
 * they answered it (or when a START went out: the agent's answer or the
 * spawn's timeout answers it), else the refusal's status with why in
 * spoke_errmsg(): on_frame sends that one answer.  A refused request
 * leaves nothing behind. */

static int on_spawn(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		    struct spk_spawn_spec *spec)
{
	struct spk_ticket *own;
	char why[512];
	int rc;

	rc = check_new_name(hub, spec);
	if (rc < 0)
		return rc;
	rc = spk_book_allocate(&hub->book, 0, 1, 1, &spec->res, false, &own, why, sizeof(why));
	if (rc < 0)
		return spk_fail(rc, "cannot place actor '%s': %s", spec->name, why);
	return start_actor(hub, p, h->id, spec, own->grants[0].node, &own->grants[0], NULL, own);
}

static int on_alloc(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		    const struct spk_alloc *req)
{
	struct spk_ticket *t;
	spoke_ticket *answer;
	char why[512];
	spoke_buf b;
	int rc;

	rc = spk_book_allocate(&hub->book, p->conn.serial, req->nodes, req->per_node, &req->res,
			       req->strict_pack, &t, why, sizeof(why));
	if (rc < 0)
		return spk_fail(rc, "cannot allocate the gang: %s", why);
	answer = calloc(1, sizeof(*answer) + t->n * sizeof(answer->slots[0]));
	if (!answer) {
		spk_book_release(&hub->book, t);
		return spk_fail(-ENOMEM, "hub out of memory");
	}
	spk_info("ticket %llu: %u nodes x %u slots x %u GPUs", (unsigned long long)t->id,
		 req->nodes, req->per_node, req->res.gpus);
	answer->id = t->id;
	answer->n_slots = t->n;
	for (uint32_t i = 0; i < t->n; i++) {
		const struct spk_grant *g = &t->grants[i];
		spoke_slot *s = &answer->slots[i];

		*s = (spoke_slot){ .rank = g->rank, .node_rank = g->node_rank,
				   .local_rank = g->local_rank, .n_gpus = g->n_gpus };
		snprintf(s->node, sizeof(s->node), "%s", hub->book.nodes[g->node].name);
		memcpy(s->gpus, g->gpus, sizeof(s->gpus));
	}
	spk_loop_begin(&p->conn, &b);
	spk_alloc_answer_pack(&b, answer);
	spk_loop_finish(&p->conn, &b, SPK_REPLY, h->id, 0);
	free(answer);
	return 0;
}

/* Ticket id into *t if this client holds it; else the refusal. */
static int owned_ticket(struct hub *hub, struct hub_peer *p, uint64_t id, struct spk_ticket **t)
{
	*t = spk_book_find(&hub->book, id);
	if (*t && (*t)->owner == p->conn.serial)
		return 0;
	return spk_fail(SPOKE_ENOTICKET, "no ticket %llu held by this client",
			(unsigned long long)id);
}

static int on_launch(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		     struct spk_launch *l)
{
	struct spk_ticket *t;
	struct hub_actor *o;
	int rc = owned_ticket(hub, p, l->ticket, &t);

	if (rc < 0)
		return rc;
	if (l->rank >= t->n)
		return spk_fail(SPOKE_EINVAL, "rank %u is outside ticket %llu (%u slots)", l->rank,
				(unsigned long long)l->ticket, t->n);
	o = t->grants[l->rank].data;
	if (o)
		return spk_fail(SPOKE_EEXIST, "slot %u of ticket %llu already runs actor '%s'",
				l->rank, (unsigned long long)l->ticket, o->name);
	rc = check_new_name(hub, &l->spec);
	if (rc < 0)
		return rc;
	return start_actor(hub, p, h->id, &l->spec, t->grants[l->rank].node, &t->grants[l->rank],
			   t, NULL);
}

static void release_ticket(struct hub *hub, struct spk_ticket *t)
{
	for (uint32_t r = 0; r < t->n; r++)
		if (t->grants[r].data)
			stop_actor(hub, t->grants[r].data, "stopped: its gang ticket was released");
	spk_book_release(&hub->book, t);
}

static int on_release(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		      const struct spk_release *r)
{
	struct spk_ticket *t;
	int rc = owned_ticket(hub, p, r->ticket, &t);

	if (rc < 0)
		return rc;
	release_ticket(hub, t);
	spk_loop_send(&p->conn, SPK_REPLY, h->id, 0, NULL, 0);
	return 0;
}

/* LOOKUP and KILL both name an actor: the running one into *out, else the
 * refusal (dead, starting or unknown). */
static int named_actor(struct hub *hub, const struct spk_actor_ref *r, struct hub_actor **out)
{
	struct hub_actor *a = find_actor(hub, r->name);
	const struct hub_death *d;

	*out = a;
	if (a && a->state == ACTOR_RUNNING)
		return 0;
	if (a && a->state == ACTOR_RESTARTING)
		return spk_fail(SPOKE_EAGAIN, "actor '%s' on %s is restarting (restart %u of %u)",
				r->name, hub->book.nodes[a->node].name, a->restarts,
				a->max_restarts);
	d = a ? NULL : find_death(hub, r->name);
	if (d)
		return spk_fail(SPOKE_EDEAD, "actor '%s' on %s %s", r->name, d->node, d->why);
	return spk_fail(SPOKE_ENOACTOR, "no actor named '%s'%s", r->name,
			a ? " yet (it is starting)" : "");
}

static int on_lookup(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		     const struct spk_actor_ref *r)
{
	struct hub_actor *a;
	int rc = named_actor(hub, r, &a);

	if (rc < 0)
		return rc;
	reply_endpoint(&p->conn, h->id, &a->ep);
	return 0;
}

static int on_kill(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		   const struct spk_actor_ref *r)
{
	struct hub_actor *a;
	int rc = named_actor(hub, r, &a);

	if (rc < 0 && !(a && a->state == ACTOR_RESTARTING))
		return rc;
	stop_actor(hub, a, "was killed by a client");
	spk_loop_send(&p->conn, SPK_REPLY, h->id, 0, NULL, 0);
	return 0;
}

static int on_nodes(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h)
{
	spoke_node_info *live = calloc(hub->book.n_nodes + 1, sizeof(*live));
	uint32_t n = 0;
	spoke_buf b;

	if (!live)
		return spk_fail(-ENOMEM, "hub out of memory");
	for (uint32_t i = 0; i < hub->book.n_nodes; i++) {
		const struct spk_node *nd = &hub->book.nodes[i];

		if (!nd->alive)
			continue;
		snprintf(live[n].name, sizeof(live[n].name), "%s", nd->name);
		live[n].n_gpus = nd->n_gpus;
		live[n++].free_gpus = nd->n_gpus - (uint32_t)__builtin_popcountll(nd->gpu_used);
	}
	spk_loop_begin(&p->conn, &b);
	spk_nodes_answer_pack(&b, live, n);
	spk_loop_finish(&p->conn, &b, SPK_REPLY, h->id, 0);
	free(live);
	return 0;
}

/* Whether node may register: any without --allow-nodes. */
static bool node_allowed(const struct hub *hub, const char *node)
{
	if (!hub->allowed)
		return true;
	for (uint32_t i = 0; i < hub->n_allowed; i++)
		if (!strcmp(hub->allowed[i], node))
			return true;
	return false;
}

/* REGISTER: the peer becomes the agent of node r->node.  Refused (one
 * answer, logged): a second REGISTER, a client that holds tickets, a bad
 * name or host (at decode), a node outside --allow-nodes, a live node of
 * that name. */
static int on_register(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		       const struct spk_register *r)
{
	char gpus[SPK_GPU_LIST_MAX];
	int idx;

	for (struct spk_ticket *t = hub->book.tickets; t; t = t->next)
		if (t->owner == p->conn.serial)
			return spk_fail(SPOKE_EPROTO,
					"a client holding tickets cannot register as a node");
	if (p->node >= 0)
		return spk_fail(SPOKE_EPROTO, "this connection is registered already");
	if (!node_allowed(hub, r->node)) {
		spk_warn("refused node %s from %s: not a node of this job (--allow-nodes)", r->node,
			 p->conn.peer);
		return spk_fail(-EPERM, "hub refused node %s: not a node of this job's allocation",
				r->node);
	}
	idx = spk_book_add_node(&hub->book, r->node, r->gpus, r->n_gpus, r->cpus);
	if (idx == SPOKE_ENOSPC) {
		spk_warn("refused node %s: the node table is full (--max-nodes %u)", r->node,
			 hub->book.max_nodes);
		return spk_fail(idx, "hub refused node %s: its node table is full (--max-nodes %u)",
				r->node, hub->book.max_nodes);
	}
	if (idx < 0) {
		spk_warn("refused node %s: %s", r->node, spoke_strerror(idx));
		return spk_fail(idx, "hub refused node %s: %s", r->node,
				idx == SPOKE_EEXIST   ? "a live node of that name is registered"
				: idx == SPOKE_EINVAL ? "want at most 64 distinct GPU ids"
						      : spoke_strerror(idx));
	}
	p->node = idx;
	hub->book.nodes[idx].data = p;
	spk_gpu_list_format(gpus, sizeof(gpus), r->gpus, r->n_gpus);
	spk_info("node %s registered: agent pid %u at %s, %u GPUs [%s], %u CPUs", r->node, r->pid,
		 r->host, r->n_gpus, gpus, r->cpus);
	spk_loop_send(&p->conn, SPK_REPLY, h->id, idx, NULL, 0);
	return 0;
}

/* The agent's answer to a START: an endpoint, or (aux < 0) why not. */
static void on_agent_reply(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
			   spoke_view *v)
{
	const char *node = hub->book.nodes[p->node].name;
	struct hub_peer *client;
	struct hub_op *op;
	struct hub_actor *a;
	char msg[512];

	for (op = hub->ops; op && op->id != h->id; op = op->next)
		;
	if (op && op->node != (uint32_t)p->node) {
		spk_warn("refused an answer from node %s to start %llu, which was sent to node %s",
			 node, (unsigned long long)h->id, hub->book.nodes[op->node].name);
		return;
	}
	if (!op) {
		spk_info("node %s answered request %llu, which timed out or was cancelled", node,
			 (unsigned long long)h->id);
		return;
	}
	take_op(hub, op->id);
	a = find_started(hub, op->id);
	client = op->client;
	if (!a) {
		/* Stopped while it started (its gang released, say). */
		fail_op(hub, op, SPOKE_EDEAD, "actor '%s' was stopped before it was ready",
			op->name);
	} else if (h->aux < 0) {
		spk_error_text_unpack(v, msg, sizeof(msg));
		actor_dead(hub, a, "failed to start");
		fail_op(hub, op, h->aux, "%s", msg);
	} else if (spk_endpoint_unpack(v, &a->ep) < 0) {
		stop_actor(hub, a, "failed to start (malformed answer)");
		fail_op(hub, op, SPOKE_EPROTO, "malformed answer from the agent");
	} else {
		/* Where the actor is, the hub knows: not the agent's to say. */
		snprintf(a->ep.node, sizeof(a->ep.node), "%s", node);
		a->ep.incarnation = a->start_id; /* the hub's, whatever the agent said */
		a->state = ACTOR_RUNNING;
		spk_info("actor %s (%s) running on %s at %s, pid %u", a->name, a->type, a->ep.node,
			 a->ep.addr, a->ep.pid);
		if (client)
			reply_endpoint(&client->conn, op->req, &a->ep);
		else
			stop_actor(hub, a, "stopped: the client that spawned it went away");
	}
	free_op(hub, op);
}

static void on_exited(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		      spoke_view *v)
{
	const char *node = hub->book.nodes[p->node].name;
	struct spk_exited e;
	struct hub_actor *a;

	if (spk_exited_unpack(v, &e) < 0) {
		spk_warn("node %s sent a malformed EXITED", node);
		return;
	}
	a = find_started(hub, h->id);
	if (a && a->node != (uint32_t)p->node) {
		spk_warn("refused node %s's report that actor %s of node %s exited", node, e.name,
			 hub->book.nodes[a->node].name);
		return;
	}
	if (!a || strcmp(a->name, e.name) != 0)
		return;
	/* A death its agent restarts it after: restart h->aux of its maximum. */
	if (h->aux > 0 && (uint32_t)h->aux <= a->max_restarts &&
	    (uint32_t)h->aux == a->restarts + 1 &&
	    (a->state == ACTOR_RUNNING || a->state == ACTOR_RESTARTING)) {
		a->restarts = (uint32_t)h->aux;
		a->state = ACTOR_RESTARTING;
		free(a->stats); /* the dead worker's figures: the new one counts anew */
		a->stats = NULL;
		a->stats_len = 0;
		spk_warn("actor %s on %s %s: restart %u of %u", a->name, node, e.why, a->restarts,
			 a->max_restarts);
		return;
	}
	actor_dead(hub, a, e.why);
}

/* RESTARTED from an agent: restart h->aux of the actor its START h->id
 * made is ready at the endpoint sent; lookups find it there from now on. */
static void on_restarted(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
			 spoke_view *v)
{
	const char *node = hub->book.nodes[p->node].name;
	struct hub_actor *a = find_started(hub, h->id);
	struct spk_endpoint ep;

	if (!a || a->node != (uint32_t)p->node || a->state != ACTOR_RESTARTING ||
	    h->aux != (int32_t)a->restarts || spk_endpoint_unpack(v, &ep) < 0) {
		spk_warn("refused node %s's RESTARTED for start %llu", node,
			 (unsigned long long)h->id);
		return;
	}
	a->ep = ep;
	snprintf(a->ep.node, sizeof(a->ep.node), "%s", node);
	a->ep.incarnation = spk_incarnation(a->start_id, a->restarts);
	a->state = ACTOR_RUNNING;
	spk_info("actor %s (%s) restarted (%u of %u) on %s at %s, pid %u", a->name, a->type,
		 a->restarts, a->max_restarts, node, a->ep.addr, a->ep.pid);
}

/* ---- the job at a glance: call figures (STATS) and STATUS ---- */

/* STATS from an agent: the call figures of its node's actor started by
 * START h->id, checked and kept (the last ones only) for STATUS. */
static void on_stats(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
		     spoke_view *v)
{
	static struct spk_stats s; /* the loop's thread only */
	const char *node = hub->book.nodes[p->node].name;
	spoke_view check = *v;
	struct hub_actor *a = find_started(hub, h->id);
	size_t n = spoke_view_remaining(v);
	uint8_t *copy;

	if (!a)
		return; /* it died since: nothing to keep */
	if (a->node != (uint32_t)p->node) {
		spk_warn("refused node %s's figures for actor %s of node %s", node, a->name,
			 hub->book.nodes[a->node].name);
		return;
	}
	if (spk_stats_unpack(&check, &s) < 0 || spoke_view_remaining(&check)) {
		spk_warn("node %s sent malformed STATS for actor %s", node, a->name);
		return;
	}
	copy = n == a->stats_len ? a->stats : realloc(a->stats, n ? n : 1);
	if (!copy)
		return; /* the older figures stay */
	memcpy(copy, v->data + v->pos, n);
	a->stats = copy;
	a->stats_len = (uint32_t)n;
	a->stats_at = ev_now(hub->loop);
}

static void status_actor(struct hub *hub, const struct hub_actor *a, struct spk_status_actor *o)
{
	const struct spk_grant *g = a->gang ? &a->gang->grants[a->rank]
					    : a->own ? &a->own->grants[0] : NULL;

	memset(o, 0, sizeof(*o));
	memcpy(o->name, a->name, sizeof(o->name));
	memcpy(o->type, a->type, sizeof(o->type));
	snprintf(o->node, sizeof(o->node), "%s", hub->book.nodes[a->node].name);
	o->state = a->state == ACTOR_RUNNING ? SPK_ACTOR_RUNNING
		   : a->state == ACTOR_RESTARTING ? SPK_ACTOR_RESTARTING : SPK_ACTOR_STARTING;
	if (a->state == ACTOR_RUNNING) {
		snprintf(o->addr, sizeof(o->addr), "%s", a->ep.addr);
		o->pid = a->ep.pid;
	}
	o->incarnation = a->start_id;
	o->restarts = a->restarts;
	if (g) {
		o->n_gpus = g->n_gpus;
		memcpy(o->gpus, g->gpus, sizeof(o->gpus));
	}
	o->stats_age_ms = -1;
	if (a->stats) {
		double age = (ev_now(hub->loop) - a->stats_at) * 1000.0;

		o->stats_age_ms = age > 0 ? (int64_t)age : 0;
		o->stats = a->stats;
		o->stats_len = a->stats_len;
	}
}

/* STATUS: the live nodes, the live actors with their figures, the gang
 * tickets, the hub's uptime; all from what the hub holds, at once (the
 * figures are what each worker last reported). */
static int on_status(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h)
{
	struct spk_status_actor sa;
	uint32_t n = 0;
	spoke_buf b;

	spk_loop_begin(&p->conn, &b);
	spk_status_begin_pack(&b, (uint64_t)((ev_now(hub->loop) - hub->started) * 1000.0));
	for (uint32_t i = 0; i < hub->book.n_nodes; i++)
		n += hub->book.nodes[i].alive;
	spk_status_count_pack(&b, n);
	for (uint32_t i = 0; i < hub->book.n_nodes; i++) {
		const struct spk_node *nd = &hub->book.nodes[i];
		struct spk_status_node sn = { .n_gpus = nd->n_gpus };

		if (!nd->alive)
			continue;
		memcpy(sn.name, nd->name, sizeof(sn.name));
		sn.free_gpus = nd->n_gpus - (uint32_t)__builtin_popcountll(nd->gpu_used);
		spk_status_node_pack(&b, &sn);
	}
	spk_status_count_pack(&b, (uint32_t)hub->n_actors);
	for (const struct hub_actor *a = hub->actors; a; a = a->next) {
		status_actor(hub, a, &sa);
		spk_status_actor_pack(&b, &sa);
	}
	n = 0;
	for (const struct spk_ticket *t = hub->book.tickets; t; t = t->next)
		n += t->owner != 0; /* 0: a single spawn's own reservation */
	spk_status_count_pack(&b, n);
	for (const struct spk_ticket *t = hub->book.tickets; t; t = t->next) {
		struct spk_status_ticket st = { .id = t->id, .slots = t->n };

		if (!t->owner)
			continue;
		for (uint32_t k = 0; k < t->n; k++) {
			st.launched += t->grants[k].data != NULL;
			st.gpus += t->grants[k].n_gpus;
		}
		spk_status_ticket_pack(&b, &st);
	}
	spk_loop_finish(&p->conn, &b, SPK_REPLY, h->id, 0);
	return 0;
}

/* A request's payload, decoded. */
union hub_request {
	struct spk_register reg;
	struct spk_spawn_spec spawn;
	struct spk_alloc alloc;
	struct spk_launch launch;
	struct spk_release release;
	struct spk_actor_ref ref;
};

/* 0, or the refusal: SPOKE_EINVAL for a bad name (why in spoke_errmsg()),
 * SPOKE_EPROTO for a malformed payload. */
static int decode_request(uint8_t type, spoke_view *v, union hub_request *m)
{
	int rc = 0;

	switch (type) {
	case SPK_REGISTER: rc = spk_register_unpack(v, &m->reg); break;
	case SPK_SPAWN: rc = spk_spawn_spec_unpack(v, &m->spawn); break;
	case SPK_ALLOC: rc = spk_alloc_unpack(v, &m->alloc); break;
	case SPK_LAUNCH: rc = spk_launch_unpack(v, &m->launch); break;
	case SPK_RELEASE: rc = spk_release_unpack(v, &m->release); break;
	case SPK_LOOKUP:
	case SPK_KILL: rc = spk_actor_ref_unpack(v, &m->ref); break;
	}
	if (rc < 0 && rc != SPOKE_EINVAL)
		rc = spk_fail(SPOKE_EPROTO, "malformed %s", spk_type_name(type));
	return rc;
}

static int handle_request(struct hub *hub, struct hub_peer *p, const struct spk_hdr *h,
			  union hub_request *m)
{
	switch (h->type) {
	case SPK_REGISTER: return on_register(hub, p, h, &m->reg);
	case SPK_SPAWN: return on_spawn(hub, p, h, &m->spawn);
	case SPK_ALLOC: return on_alloc(hub, p, h, &m->alloc);
	case SPK_LAUNCH: return on_launch(hub, p, h, &m->launch);
	case SPK_RELEASE: return on_release(hub, p, h, &m->release);
	case SPK_LOOKUP: return on_lookup(hub, p, h, &m->ref);
	case SPK_KILL: return on_kill(hub, p, h, &m->ref);
	case SPK_NODES: return on_nodes(hub, p, h);
	case SPK_STATUS: return on_status(hub, p, h);
	}
	return spk_fail(SPOKE_EPROTO, "unexpected %s", spk_type_name(h->type));
}

static bool is_request(uint8_t type)
{
	switch (type) {
	case SPK_REGISTER:
	case SPK_SPAWN:
	case SPK_ALLOC:
	case SPK_LAUNCH:
	case SPK_RELEASE:
	case SPK_LOOKUP:
	case SPK_KILL:
	case SPK_NODES:
	case SPK_STATUS: return true;
	}
	return false;
}

static void on_frame(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *v)
{
	struct hub_peer *p = c->data;
	struct hub *hub = p->hub;
	bool agent = p->node >= 0;
	union hub_request m;
	int rc;

	if (is_request(h->type)) {
		rc = decode_request(h->type, v, &m);
		if (rc < 0 && h->type == SPK_REGISTER)
			spk_warn("refused a node from %s: %s", c->peer, spoke_errmsg());
		if (rc == 0)
			rc = handle_request(hub, p, h, &m);
		/* The one answer to a refused request. */
		if (rc < 0)
			spk_loop_reply_error(c, h->id, rc, "%s", spoke_errmsg());
		return;
	}
	if (agent && h->type == SPK_REPLY) {
		on_agent_reply(hub, p, h, v);
		return;
	}
	if (agent && h->type == SPK_EXITED) {
		on_exited(hub, p, h, v);
		return;
	}
	if (agent && h->type == SPK_RESTARTED) {
		on_restarted(hub, p, h, v);
		return;
	}
	if (agent && h->type == SPK_STATS) {
		on_stats(hub, p, h, v);
		return;
	}
	spk_warn("closed connection from %s: unexpected %s", c->peer, spk_type_name(h->type));
	spk_loop_close(c, SPOKE_EPROTO);
}

static void agent_gone(struct hub *hub, struct hub_peer *p)
{
	uint32_t node = (uint32_t)p->node;
	struct hub_actor *a, *next;
	char why[160];

	snprintf(why, sizeof(why), "died with the agent of node %s", hub->book.nodes[node].name);
	spk_warn("node %s: agent went away; its actors are dead", hub->book.nodes[node].name);
	hub->book.nodes[node].data = NULL;
	spk_book_node_down(&hub->book, node);
	for (a = p->actors; a; a = next) {
		next = a->node_next;
		actor_dead(hub, a, why);
	}
	for (struct hub_op **pp = &hub->ops; *pp;) {
		struct hub_op *op = *pp;

		if (op->node == node) {
			*pp = op->next;
			fail_op(hub, op, SPOKE_EDEAD, "actor '%s' %s", op->name, why);
			free_op(hub, op);
		} else {
			pp = &op->next;
		}
	}
}

static void client_gone(struct hub *hub, struct hub_peer *p)
{
	struct spk_ticket *t, *next;

	for (t = hub->book.tickets; t; t = next) {
		next = t->next;
		if (t->owner == p->conn.serial) {
			spk_info("ticket %llu released: its client went away",
				 (unsigned long long)t->id);
			release_ticket(hub, t);
		}
	}
}

static void on_close(struct spk_loop_conn *c, int reason)
{
	struct hub_peer *p = c->data;
	struct hub *hub = p->hub;

	(void)reason;
	if (p->node >= 0)
		agent_gone(hub, p);
	else
		client_gone(hub, p);
	/* Its STARTs in flight complete with nobody to answer. */
	for (struct hub_op *op = hub->ops; op; op = op->next)
		if (op->client == p)
			op->client = NULL;
	*p->pprev = p->next;
	if (p->next)
		p->next->pprev = p->pprev;
	free(p);
}

static void on_accept(struct spk_acceptor *acc, int fd, const char *peer)
{
	struct hub *hub = acc->data;
	struct hub_peer *p = calloc(1, sizeof(*p));

	if (!p) {
		close(fd);
		return;
	}
	p->hub = hub;
	p->node = -1;
	if (spk_loop_start(&p->conn, hub->loop, fd, hub->token, SPK_IDENT_HUB, peer, on_frame,
			     on_close, p) < 0) {
		close(fd);
		free(p);
		return;
	}
	p->next = hub->peers;
	if (p->next)
		p->next->pprev = &p->next;
	p->pprev = &hub->peers;
	hub->peers = p;
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	spk_info("signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/* SIGUSR1: one line with the size of every book the hub keeps. */
static void status_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct hub *hub = w->data;
	uint32_t live = 0, actors = 0, starting = 0, tickets = 0, peers = 0, ops = 0;

	(void)loop;
	(void)revents;
	for (uint32_t i = 0; i < hub->book.n_nodes; i++)
		live += hub->book.nodes[i].alive;
	for (struct hub_actor *a = hub->actors; a; a = a->next) {
		actors++;
		starting += a->state == ACTOR_STARTING;
	}
	for (struct spk_ticket *t = hub->book.tickets; t; t = t->next)
		tickets++;
	for (struct hub_peer *p = hub->peers; p; p = p->next)
		peers++;
	for (struct hub_op *op = hub->ops; op; op = op->next)
		ops++;
	spk_info("status: %u nodes (%u live), %u actors (%u starting), %llu deaths (last %u kept), "
		 "%u tickets, %u connections, %u starts pending",
		 hub->book.n_nodes, live, actors, starting, (unsigned long long)hub->n_deaths,
		 hub->n_deaths < HUB_DEATHS ? (unsigned)hub->n_deaths : HUB_DEATHS, tickets, peers,
		 ops);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: spoke-hub [OPTION]...\n"
		"The hub of a Spoke job: registry of nodes and actors, gang placement.\n"
		"\n"
		"  -l, --listen HOST:PORT   address to listen on (default 0.0.0.0:0, any free port)\n"
		"  -a, --address-file FILE  write the address clients should use, \"host:port\",\n"
		"                           to FILE once listening\n"
		"  -A, --advertise HOST     host name or address to write there (default: the\n"
		"                           listen host, or this machine's name)\n"
		"  -t, --token-file FILE    the job token; created (mode 0600) if missing.\n"
		"                           Default: $SPOKE_TOKEN, else $SPOKE_TOKEN_FILE\n"
		"  -N, --allow-nodes LIST   only these nodes (comma-separated names) may\n"
		"                           register (spoke-launch passes a Slurm job's nodes);\n"
		"                           default: any node that holds the token\n"
		"      --max-tickets N      gang tickets one client may hold (default 256)\n"
		"      --max-nodes N        nodes the hub's table may hold, live and dead ones\n"
		"                           still held by a ticket (default 65536)\n"
		"      --max-slots N        gang slots one client may hold in all, 0-GPU slots\n"
		"                           included (default 4096)\n"
		"  -h, --help               this help\n"
		"  -V, --version            the version\n"
		"\n"
		"Environment: SPOKE_LOG=error|warn|info|debug (default info), SPOKE_MAX_MSG.\n"
		"SIGUSR1 logs one status line: nodes, actors, deaths, tickets, connections.\n"
		"Exit status: 0 after SIGINT/SIGTERM, 1 on a start-up error, 2 on bad usage.\n");
}

static int write_address(const char *file, const char *host, const char *bound)
{
	char addr[SPK_ADDR_MAX + 16];
	uint16_t port;
	char bhost[SPK_ADDR_MAX];
	int n, rc;

	if (spk_parse_hostport(bound, bhost, sizeof(bhost), &port) < 0)
		return spk_fail(-EINVAL, "bound to '%s', no host:port", bound);
	n = snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%u\n" : "%s:%u\n", host, port);
	spk_info("listening on %s (clients use %.*s)", bound, n - 1, addr);
	if (!file)
		return 0;
	/* A new file renamed over the old: never written through a link. */
	rc = spk_dir_check_private_of(file, "the --address-file directory");
	if (rc == 0 && (rc = spk_file_replace(file, addr, (size_t)n, 0644)) < 0)
		spk_fail(rc, "%s", strerror(-rc));
	return rc;
}

/* --allow-nodes: a comma-separated list of node names; 0, or SPOKE_EINVAL
 * (or -ENOMEM) with why in spoke_errmsg(). */
static int parse_allowed(struct hub *hub, const char *list)
{
	char *copy = strdup(list), *save = NULL, *name;
	uint32_t n = 1;
	int rc = 0;

	if (!copy)
		return spk_fail(-ENOMEM, "out of memory");
	for (const char *c = list; *c; c++)
		n += *c == ',';
	hub->allowed = calloc(n, sizeof(*hub->allowed));
	if (!hub->allowed) {
		rc = spk_fail(-ENOMEM, "out of memory");
		goto out_free;
	}
	for (name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		rc = spk_name_check("node name", name, strlen(name), SPOKE_NODE_NAME_MAX);
		if (rc < 0)
			goto out_free;
		hub->allowed[hub->n_allowed] = strdup(name);
		if (!hub->allowed[hub->n_allowed++]) {
			rc = spk_fail(-ENOMEM, "out of memory");
			goto out_free;
		}
	}
	if (!hub->n_allowed)
		rc = spk_fail(SPOKE_EINVAL, "want one or more node names, comma-separated");
out_free:
	free(copy);
	return rc;
}

static void free_allowed(struct hub *hub)
{
	for (uint32_t i = 0; i < hub->n_allowed; i++)
		free(hub->allowed[i]);
	free(hub->allowed);
	hub->allowed = NULL;
	hub->n_allowed = 0;
}

static int load_token(struct hub *hub, const char *file)
{
	int rc;

	if (!file)
		return spk_token_load(NULL, hub->token, sizeof(hub->token));
	if (access(file, F_OK) == 0)
		return spk_token_read_file(file, hub->token, sizeof(hub->token));
	rc = spk_token_generate(hub->token, sizeof(hub->token));
	if (rc == 0)
		rc = spk_token_write_file(file, hub->token);
	if (rc < 0)
		spk_err("cannot write token file %s: %s", file, spoke_strerror(rc));
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "address-file", required_argument, NULL, 'a' },
		{ "advertise", required_argument, NULL, 'A' },
		{ "token-file", required_argument, NULL, 't' },
		{ "allow-nodes", required_argument, NULL, 'N' },
		{ "max-tickets", required_argument, NULL, 'K' },
		{ "max-slots", required_argument, NULL, 'S' },
		{ "max-nodes", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_addr = "0.0.0.0:0", *addr_file = NULL, *advertise = NULL;
	const char *token_file = NULL;
	char host[SPK_ADDR_MAX], bound[SPK_ADDR_MAX], myname[SPK_ADDR_MAX];
	static struct hub hub;
	long max_tickets = SPK_BOOK_OWNER_TICKETS, max_slots = SPK_BOOK_OWNER_SLOTS;
	long max_nodes = SPK_BOOK_MAX_NODES;
	uint16_t port;
	int opt, rc = 1;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":l:a:A:t:N:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (spk_parse_addr(optarg, true) < 0)
				return spk_usage_error("--listen", optarg);
			listen_addr = optarg;
			break;
		case 'a': addr_file = optarg; break;
		case 'A': advertise = optarg; break;
		case 't': token_file = optarg; break;
		case 'N':
			free_allowed(&hub);
			if (parse_allowed(&hub, optarg) < 0) {
				free_allowed(&hub);
				return spk_usage_error("--allow-nodes", optarg);
			}
			break;
		case 'K':
			if (spk_parse_num(optarg, 1, 1 << 20, &max_tickets) < 0)
				return spk_usage_error("--max-tickets", optarg);
			break;
		case 'S':
			if (spk_parse_num(optarg, 1, 1 << 24, &max_slots) < 0)
				return spk_usage_error("--max-slots", optarg);
			break;
		case 'M':
			if (spk_parse_num(optarg, 1, 1 << 24, &max_nodes) < 0)
				return spk_usage_error("--max-nodes", optarg);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("spoke-hub %s\n", SPOKE_VERSION_STRING); return 0;
		default: return spk_bad_option(argv, opt);
		}
	}
	if (optind < argc) {
		spk_fail(SPOKE_EINVAL, "unexpected (see --help)");
		return spk_usage_error("argument", argv[optind]);
	}
	if (advertise && (!*advertise || strlen(advertise) >= SPK_ADDR_MAX)) {
		spk_fail(SPOKE_EINVAL, "want a host name or address of 1 to %d bytes",
			 SPK_ADDR_MAX - 1);
		return spk_usage_error("--advertise", advertise);
	}
	if ((addr_file && !*addr_file) || (token_file && !*token_file)) {
		spk_fail(SPOKE_EINVAL, "want a file name");
		return spk_usage_error(addr_file && !*addr_file ? "--address-file" : "--token-file",
				       "");
	}
	spk_log_init("hub", SPK_LOG_INFO);
	spk_raise_fd_limit(); /* every connection is a descriptor */
	spk_parse_hostport(listen_addr, host, sizeof(host), &port);
	if (spk_auth_init() < 0 || load_token(&hub, token_file) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	hub.loop = EV_DEFAULT;
	hub.started = ev_now(hub.loop);
	spk_book_init(&hub.book);
	hub.book.max_tickets = (uint32_t)max_tickets;
	hub.book.max_slots = (uint32_t)max_slots;
	hub.book.max_nodes = (uint32_t)max_nodes;
	hub.listen_fd = spk_listen(host, port, bound, sizeof(bound));
	if (hub.listen_fd < 0) {
		spk_err("cannot listen on %s: %s", listen_addr, spoke_strerror(hub.listen_fd));
		goto out_gang;
	}
	/* Every node's agent connects at once when a job starts: a queue of
	 * pending connections as long as the kernel allows (somaxconn),
	 * not spk_listen's, so that none of thousands waits for a SYN
	 * to be sent again (a second or more). */
	if (listen(hub.listen_fd, HUB_BACKLOG) < 0)
		spk_warn("cannot raise the listen backlog to %d: %s", HUB_BACKLOG, strerror(errno));
	/* And as many of them may wait for their handshake (a quarter of
	 * the descriptors at most: loop_conn.h). */
	spk_loop_set_preauth_max(HUB_PREAUTH_MAX);
	/* An agent's or client's frames are small, but for gang answers,
	 * which grow their buffers as they need. */
	spk_loop_set_buf_initial(HUB_BUF_INITIAL);
	if (!advertise) {
		advertise = host;
		if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::")) {
			gethostname(myname, sizeof(myname));
			myname[sizeof(myname) - 1] = '\0';
			advertise = myname;
		}
	}
	if (write_address(addr_file, advertise, bound) < 0) {
		spk_err("cannot write %s: %s", addr_file, spoke_errmsg());
		goto out_close;
	}
	spk_acceptor_start(&hub.acceptor, hub.loop, hub.listen_fd, on_accept, &hub);
	ev_signal_init(&hub.sigint_w, signal_cb, SIGINT);
	ev_signal_init(&hub.sigterm_w, signal_cb, SIGTERM);
	ev_signal_start(hub.loop, &hub.sigint_w);
	ev_signal_start(hub.loop, &hub.sigterm_w);
	ev_signal_init(&hub.sigusr1_w, status_cb, SIGUSR1);
	hub.sigusr1_w.data = &hub;
	ev_signal_start(hub.loop, &hub.sigusr1_w);
	ev_run(hub.loop, 0);
	rc = 0;
	while (hub.peers)
		spk_loop_close(&hub.peers->conn, 0);
	while (hub.actors) {
		struct hub_actor *a = hub.actors;

		hub.actors = a->next;
		free(a);
	}
	free(hub.by_name);
	free(hub.by_id);
	while (hub.ops) {
		struct hub_op *op = hub.ops;

		hub.ops = op->next;
		free_op(&hub, op);
	}
out_close:
	close(hub.listen_fd);
out_gang:
	spk_book_fini(&hub.book);
	free_allowed(&hub);
	return rc;
}

/* gang.c - the hub's book of nodes, GPUs and gang tickets (placement).
 *
 * Placement runs in two steps: a plan (which nodes, how many slots on each)
 * computed from the book without changing it, then, once the ticket is
 * allocated, the commit that hands out GPU ids and marks them used.  A plan
 * that does not fit changes nothing, so allocation is all or nothing. */
#include "gang.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

/* The most slots one gang may have: every GPU of a full book, one each. */
#define SPK_GANG_MAX_SLOTS ((uint64_t)SPK_MAX_NODES * SPK_MAX_NODE_GPUS)

#define GANG_STR_(x) #x
#define GANG_STR(x) GANG_STR_(x)

/* Which nodes a gang uses, in order of first use, and how many slots each. */
struct gang_plan {
	uint32_t n_used;
	uint32_t node[SPK_MAX_NODES];
	uint32_t count[SPK_MAX_NODES];
};

static uint64_t gpu_mask(uint32_t n_gpus)
{
	return n_gpus >= 64 ? ~0ULL : (1ULL << n_gpus) - 1;
}

static uint32_t free_gpus(const struct spk_node *nd)
{
	return nd->n_gpus - (uint32_t)__builtin_popcountll(nd->gpu_used & gpu_mask(nd->n_gpus));
}

/* How many slots of res fit on nd now. */
static uint32_t node_room(const struct spk_node *nd, const spoke_resources *res)
{
	uint32_t room = UINT32_MAX;

	if (!nd->alive)
		return 0;
	if (res->gpus)
		room = free_gpus(nd) / res->gpus;
	if (nd->cpus && res->cpus) {
		uint32_t free_cpus = nd->cpus > nd->cpus_used ? nd->cpus - nd->cpus_used : 0;

		if (free_cpus / res->cpus < room)
			room = free_cpus / res->cpus;
	}
	return room;
}

/* `nodes` distinct nodes with room for per_node slots each; best fit: the
 * fewest free GPUs first, then the lowest index. */
static bool plan_strict(const struct spk_gang *g, uint32_t nodes, uint32_t per_node,
			const spoke_resources *res, struct gang_plan *p)
{
	uint32_t cand[SPK_MAX_NODES];
	uint32_t n_cand = 0;
	uint32_t i, j;

	if (nodes > g->n_nodes)
		return false;
	for (i = 0; i < g->n_nodes; i++) {
		if (node_room(&g->nodes[i], res) >= per_node)
			cand[n_cand++] = i;
	}
	if (n_cand < nodes)
		return false;

	/* Insertion sort by free GPUs; stable, so ties stay in index order. */
	for (i = 1; i < n_cand; i++) {
		uint32_t c = cand[i];
		uint32_t f = free_gpus(&g->nodes[c]);

		for (j = i; j > 0 && free_gpus(&g->nodes[cand[j - 1]]) > f; j--)
			cand[j] = cand[j - 1];
		cand[j] = c;
	}

	p->n_used = nodes;
	for (i = 0; i < nodes; i++) {
		p->node[i] = cand[i];
		p->count[i] = per_node;
	}
	return true;
}

/* n slots, one by one, to the first live node with room, in index order. */
static bool plan_spread(const struct spk_gang *g, uint32_t n, const spoke_resources *res,
			struct gang_plan *p)
{
	uint32_t left = n;
	uint32_t i;

	p->n_used = 0;
	for (i = 0; i < g->n_nodes && left; i++) {
		uint32_t room = node_room(&g->nodes[i], res);

		if (!room)
			continue;
		if (room > left)
			room = left;
		p->node[p->n_used] = i;
		p->count[p->n_used] = room;
		p->n_used++;
		left -= room;
	}
	return left == 0;
}

/* Hands out the plan's GPUs and CPUs into t->grants and marks them used. */
static void commit_plan(struct spk_gang *g, const struct gang_plan *p,
			const spoke_resources *res, struct spk_ticket *t)
{
	uint32_t rank = 0;
	uint32_t k, l, i;

	for (k = 0; k < p->n_used; k++) {
		struct spk_node *nd = &g->nodes[p->node[k]];

		for (l = 0; l < p->count[k]; l++) {
			struct spk_grant *gr = &t->grants[rank];

			gr->node = p->node[k];
			gr->rank = rank;
			gr->node_rank = k;
			gr->local_rank = l;
			gr->n_gpus = 0;
			for (i = 0; i < nd->n_gpus && gr->n_gpus < res->gpus; i++) {
				if (nd->gpu_used & (1ULL << i))
					continue;
				nd->gpu_used |= 1ULL << i;
				gr->gpus[gr->n_gpus++] = nd->gpus[i];
			}
			gr->cpus = res->cpus;
			if (nd->cpus)
				nd->cpus_used += res->cpus;
			rank++;
		}
	}
}

static void free_grants(struct spk_gang *g, const struct spk_ticket *t)
{
	uint32_t k, j, i;

	for (k = 0; k < t->n; k++) {
		const struct spk_grant *gr = &t->grants[k];
		struct spk_node *nd;

		if (gr->node >= g->n_nodes)
			continue;
		nd = &g->nodes[gr->node];
		for (j = 0; j < gr->n_gpus; j++) {
			for (i = 0; i < nd->n_gpus; i++) {
				if (nd->gpus[i] == gr->gpus[j]) {
					nd->gpu_used &= ~(1ULL << i);
					break;
				}
			}
		}
		if (nd->cpus)
			nd->cpus_used -= gr->cpus < nd->cpus_used ? gr->cpus : nd->cpus_used;
	}
}

/* Appends to why, truncating safely; *len tracks what was written. */
static void __attribute__((format(printf, 4, 5)))
why_add(char *why, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (!why || *len + 1 >= cap)
		return;
	va_start(ap, fmt);
	r = vsnprintf(why + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	*len += (size_t)r;
	if (*len >= cap)
		*len = cap - 1;
}

static const char *plural(uint32_t n)
{
	return n == 1 ? "" : "s";
}

static void why_asked(char *why, size_t cap, size_t *len, uint32_t nodes, uint32_t per_node,
		      const spoke_resources *res, bool strict_pack)
{
	why_add(why, cap, len, "asked for %u node%s x %u slot%s", nodes, plural(nodes),
		per_node, plural(per_node));
	if (res) {
		why_add(why, cap, len, " x %u GPU%s", res->gpus, plural(res->gpus));
		if (res->cpus)
			why_add(why, cap, len, " + %u CPU%s", res->cpus, plural(res->cpus));
	}
	if (strict_pack)
		why_add(why, cap, len, " (strict pack)");
}

static void why_free(char *why, size_t cap, size_t *len, const struct spk_gang *g,
		     const spoke_resources *res)
{
	bool first = true;
	uint32_t i;

	why_add(why, cap, len, "; free:");
	for (i = 0; i < g->n_nodes; i++) {
		const struct spk_node *nd = &g->nodes[i];

		if (!nd->alive)
			continue;
		why_add(why, cap, len, "%s %s %u/%u GPU%s", first ? "" : ",", nd->name,
			free_gpus(nd), nd->n_gpus, plural(nd->n_gpus));
		if (nd->cpus && res->cpus)
			why_add(why, cap, len, " %u/%u CPU%s",
				nd->cpus > nd->cpus_used ? nd->cpus - nd->cpus_used : 0,
				nd->cpus, plural(nd->cpus));
		first = false;
	}
	if (first)
		why_add(why, cap, len, " no live nodes");
}

/* A name fits in spk_node.name and prints on one line. */
static bool name_ok(const char *name)
{
	size_t len, i;

	if (!name)
		return false;
	len = strnlen(name, SPOKE_NODE_NAME_MAX);
	if (len == 0 || len >= SPOKE_NODE_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

void spk_gang_init(struct spk_gang *g)
{
	memset(g, 0, sizeof(*g));
	g->next_id = 1;
}

void spk_gang_fini(struct spk_gang *g)
{
	struct spk_ticket *t, *next;

	for (t = g->tickets; t; t = next) {
		next = t->next;
		free(t);
	}
	g->tickets = NULL;
}

int spk_gang_add_node(struct spk_gang *g, const char *name, const int32_t *gpus,
		      uint32_t n_gpus, uint32_t cpus)
{
	struct spk_node *nd;
	uint32_t i, j;

	if (!name_ok(name))
		return SPOKE_EINVAL;
	if (n_gpus > SPK_MAX_NODE_GPUS || (n_gpus && !gpus))
		return SPOKE_EINVAL;
	for (i = 0; i < n_gpus; i++) {
		for (j = 0; j < i; j++) {
			if (gpus[i] == gpus[j])
				return SPOKE_EINVAL;
		}
	}
	for (i = 0; i < g->n_nodes; i++) {
		if (g->nodes[i].alive && !strcmp(g->nodes[i].name, name))
			return SPOKE_EEXIST;
	}
	if (g->n_nodes >= SPK_MAX_NODES)
		return SPOKE_ENOSPC;

	nd = &g->nodes[g->n_nodes];
	memset(nd, 0, sizeof(*nd));
	nd->alive = true;
	strcpy(nd->name, name);
	nd->n_gpus = n_gpus;
	if (n_gpus)
		memcpy(nd->gpus, gpus, n_gpus * sizeof(gpus[0]));
	nd->cpus = cpus;
	return (int)g->n_nodes++;
}

void spk_gang_node_down(struct spk_gang *g, uint32_t node)
{
	if (node < g->n_nodes)
		g->nodes[node].alive = false;
}

int spk_gang_allocate(struct spk_gang *g, uint64_t owner, uint32_t nodes, uint32_t per_node,
		      const spoke_resources *res, bool strict_pack, struct spk_ticket **out,
		      char *why, size_t why_cap)
{
	struct gang_plan plan;
	struct spk_ticket *t;
	const char *bad = NULL;
	size_t len = 0;
	uint64_t n = (uint64_t)nodes * per_node;
	int ret;

	if (why && why_cap)
		why[0] = '\0';

	if (!res)
		bad = "no resources given";
	else if (!nodes)
		bad = "zero nodes";
	else if (!per_node)
		bad = "zero slots per node";
	else if (res->gpus > SPOKE_MAX_SLOT_GPUS)
		bad = "more than " GANG_STR(SPOKE_MAX_SLOT_GPUS) " GPUs per slot";
	else if (n > SPK_GANG_MAX_SLOTS)
		bad = "more slots than a gang may have";
	if (bad || !out) {
		why_asked(why, why_cap, &len, nodes, per_node, res, strict_pack);
		why_add(why, why_cap, &len, ": invalid, %s", bad ? bad : "no ticket pointer");
		return SPOKE_EINVAL;
	}

	if (!plan_strict(g, nodes, per_node, res, &plan) &&
	    (strict_pack || !plan_spread(g, (uint32_t)n, res, &plan))) {
		ret = SPOKE_ENORES;
		goto out_why;
	}

	t = calloc(1, sizeof(*t) + n * sizeof(t->grants[0]));
	if (!t) {
		ret = -ENOMEM;
		goto out_why;
	}
	t->id = g->next_id++;
	t->owner = owner;
	t->n = (uint32_t)n;
	commit_plan(g, &plan, res, t);
	t->next = g->tickets;
	g->tickets = t;
	*out = t;
	return 0;

out_why:
	why_asked(why, why_cap, &len, nodes, per_node, res, strict_pack);
	if (ret == SPOKE_ENORES)
		why_free(why, why_cap, &len, g, res);
	else
		why_add(why, why_cap, &len, ": out of memory");
	return ret;
}

struct spk_ticket *spk_gang_find(struct spk_gang *g, uint64_t id)
{
	struct spk_ticket *t;

	for (t = g->tickets; t; t = t->next) {
		if (t->id == id)
			return t;
	}
	return NULL;
}

void spk_gang_release(struct spk_gang *g, struct spk_ticket *t)
{
	struct spk_ticket **pp;

	if (!t)
		return;
	for (pp = &g->tickets; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			free_grants(g, t);
			free(t);
			return;
		}
	}
}

int spk_gang_release_owner(struct spk_gang *g, uint64_t owner)
{
	struct spk_ticket **pp = &g->tickets;
	int n = 0;

	while (*pp) {
		struct spk_ticket *t = *pp;

		if (t->owner != owner) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		free_grants(g, t);
		free(t);
		n++;
	}
	return n;
}

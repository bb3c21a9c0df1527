/* book.c - the hub's book of nodes, GPUs and gang tickets (placement).
 *
 * Placement runs in two steps: a check that the gang fits, computed from the
 * book without changing it, then, once the ticket is allocated, the slots'
 * nodes and the commit that hands out GPU ids and marks them used.  A gang
 * that does not fit changes nothing, so allocation is all or nothing. */
#include "book.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "proto.h"

#define GANG_STR_(x) #x
#define GANG_STR(x) GANG_STR_(x)

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

/* Live nodes with room for at least `min_room` slots, into cand; returns
 * how many. */
static uint32_t nodes_with_room(const struct spk_book *g, const spoke_resources *res,
				uint32_t min_room, uint32_t *cand)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < g->n_nodes; i++) {
		if (node_room(&g->nodes[i], res) >= min_room)
			cand[n++] = i;
	}
	return n;
}

/* Whether node a goes before node b: by key, ties in index order. */
static bool goes_before(uint32_t a, uint32_t b, const uint32_t *key, bool descending)
{
	if (key[a] != key[b])
		return descending ? key[a] > key[b] : key[a] < key[b];
	return a < b;
}

/* Sorts cand (node indexes, ascending) by key[node], ascending or
 * descending, ties in index order (stable).  Keys up to
 * SPK_MAX_NODE_GPUS (free GPUs) are counted, O(n); others merge sorted,
 * O(n log n).  tmp: room for n. */
static void sort_nodes(uint32_t *cand, uint32_t n, const uint32_t *key, bool descending,
		       uint32_t *tmp)
{
	uint32_t count[SPK_MAX_NODE_GPUS + 2] = { 0 }, i, w;
	bool small = true;

	for (i = 0; i < n && small; i++)
		small = key[cand[i]] <= SPK_MAX_NODE_GPUS;
	if (small) {
		for (i = 0; i < n; i++) {
			uint32_t k = key[cand[i]];

			count[(descending ? SPK_MAX_NODE_GPUS - k : k) + 1]++;
		}
		for (i = 1; i < SPK_MAX_NODE_GPUS + 2; i++)
			count[i] += count[i - 1];
		for (i = 0; i < n; i++) {
			uint32_t k = key[cand[i]];

			tmp[count[descending ? SPK_MAX_NODE_GPUS - k : k]++] = cand[i];
		}
		memcpy(cand, tmp, n * sizeof(cand[0]));
		return;
	}
	/* Bottom-up merge sort, runs of width w from cand into tmp and back. */
	for (w = 1; w < n; w *= 2) {
		for (i = 0; i < n; i += 2 * w) {
			uint32_t l = i, mid = i + w < n ? i + w : n, r = mid;
			uint32_t end = i + 2 * w < n ? i + 2 * w : n, o = i;

			while (l < mid && r < end)
				tmp[o++] = goes_before(cand[r], cand[l], key, descending) ? cand[r++]
											  : cand[l++];
			while (l < mid)
				tmp[o++] = cand[l++];
			while (r < end)
				tmp[o++] = cand[r++];
		}
		memcpy(cand, tmp, n * sizeof(cand[0]));
	}
}

/* `nodes` distinct nodes with room for per_node slots each, into home;
 * best fit: the fewest free GPUs first, then the lowest index.  cand and
 * key: room for g->n_nodes each. */
static bool plan_strict(const struct spk_book *g, uint32_t nodes, uint32_t per_node,
			const spoke_resources *res, uint32_t *home, uint32_t *cand, uint32_t *key,
			uint32_t *tmp)
{
	uint32_t n_cand, i;

	if (nodes > g->n_nodes)
		return false;
	n_cand = nodes_with_room(g, res, per_node, cand);
	if (n_cand < nodes)
		return false;
	for (i = 0; i < g->n_nodes; i++)
		key[i] = free_gpus(&g->nodes[i]);
	sort_nodes(cand, n_cand, key, false, tmp);
	memcpy(home, cand, nodes * sizeof(home[0]));
	return true;
}

/* Whether the live nodes have room for n slots in all. */
static bool room_for(const struct spk_book *g, const spoke_resources *res, uint64_t n)
{
	uint64_t room = 0;

	for (uint32_t i = 0; i < g->n_nodes && room < n; i++)
		room += node_room(&g->nodes[i], res);
	return room >= n;
}

/* Strict placement: slot l of gang node k on home[k]. */
static void place_strict(struct spk_ticket *t, uint32_t nodes, uint32_t per_node,
			 const uint32_t *home)
{
	for (uint32_t k = 0; k < nodes; k++)
		for (uint32_t l = 0; l < per_node; l++)
			t->grants[k * per_node + l].node = home[k];
}

/* Non-strict placement of t->n slots (room_for said they fit).  Gang node k
 * gets a home node: distinct nodes while there are enough with room (most
 * room first), then shared round robin.  First every gang node puts what
 * fits of its share on its home; then what is left of each share spills, in
 * rank order, onto the nodes that still have room, in the same order.
 * cand and room: room for g->n_nodes each. */
static void place_spread(const struct spk_book *g, struct spk_ticket *t, uint32_t per_node,
			 const spoke_resources *res, uint32_t *cand, uint32_t *room, uint32_t *tmp)
{
	uint32_t n_cand, next = 0;

	for (uint32_t i = 0; i < g->n_nodes; i++)
		room[i] = node_room(&g->nodes[i], res);
	n_cand = nodes_with_room(g, res, 1, cand);
	sort_nodes(cand, n_cand, room, true, tmp);
	for (uint32_t r = 0; r < t->n; r++) {
		uint32_t home = cand[(r / per_node) % n_cand];

		t->grants[r].node = room[home] ? home : UINT32_MAX;
		if (room[home])
			room[home]--;
	}
	for (uint32_t r = 0; r < t->n; r++) {
		if (t->grants[r].node != UINT32_MAX)
			continue;
		while (!room[cand[next]])
			next++;
		t->grants[r].node = cand[next];
		room[cand[next]]--;
	}
}

/* Numbers the placed slots (rank = node_rank * per_node + local_rank) and
 * hands out their GPUs and CPUs, marking them used. */
static void commit_grants(struct spk_book *g, struct spk_ticket *t, uint32_t per_node,
			  const spoke_resources *res)
{
	for (uint32_t r = 0; r < t->n; r++) {
		struct spk_grant *gr = &t->grants[r];
		struct spk_node *nd = &g->nodes[gr->node];

		gr->rank = r;
		gr->node_rank = r / per_node;
		gr->local_rank = r % per_node;
		gr->n_gpus = 0;
		for (uint32_t i = 0; i < nd->n_gpus && gr->n_gpus < res->gpus; i++) {
			if (nd->gpu_used & (1ULL << i))
				continue;
			nd->gpu_used |= 1ULL << i;
			gr->gpus[gr->n_gpus++] = nd->gpus[i];
		}
		gr->cpus = res->cpus;
		if (nd->cpus)
			nd->cpus_used += res->cpus;
		nd->held++;
	}
}

static void free_grants(struct spk_book *g, const struct spk_ticket *t)
{
	uint32_t k, j, i;

	for (k = 0; k < t->n; k++) {
		const struct spk_grant *gr = &t->grants[k];
		struct spk_node *nd;

		if (gr->node >= g->n_nodes)
			continue;
		nd = &g->nodes[gr->node];
		if (--nd->held == 0 && !nd->alive)
			g->n_reusable++;
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

static void why_free(char *why, size_t cap, size_t *len, const struct spk_book *g,
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

void spk_book_init(struct spk_book *g)
{
	memset(g, 0, sizeof(*g));
	g->next_id = 1;
	g->max_nodes = SPK_BOOK_MAX_NODES;
	g->max_tickets = SPK_BOOK_OWNER_TICKETS;
	g->max_slots = SPK_BOOK_OWNER_SLOTS;
}

void spk_book_fini(struct spk_book *g)
{
	struct spk_ticket *t, *next;

	for (t = g->tickets; t; t = next) {
		next = t->next;
		free(t);
	}
	g->tickets = NULL;
	free(g->nodes);
	g->nodes = NULL;
	g->n_nodes = g->cap_nodes = g->n_reusable = 0;
	free(g->names);
	g->names = NULL;
	g->n_names = 0;
}

/* ---- the index of live node names: chained through spk_node.name_next ---- */

static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

static uint32_t *name_bucket(const struct spk_book *g, const char *name)
{
	return &g->names[name_hash(name) & (g->n_names - 1)];
}

static int name_find(const struct spk_book *g, const char *name)
{
	if (!g->n_names)
		return -1;
	for (uint32_t i = *name_bucket(g, name); i; i = g->nodes[i - 1].name_next)
		if (!strcmp(g->nodes[i - 1].name, name))
			return (int)(i - 1);
	return -1;
}

static void name_insert(struct spk_book *g, uint32_t node)
{
	uint32_t *b = name_bucket(g, g->nodes[node].name);

	g->nodes[node].name_next = *b;
	*b = node + 1;
}

static void name_remove(struct spk_book *g, uint32_t node)
{
	uint32_t *pp = name_bucket(g, g->nodes[node].name);

	while (*pp && *pp != node + 1)
		pp = &g->nodes[*pp - 1].name_next;
	if (*pp)
		*pp = g->nodes[node].name_next;
}

/* At least as many buckets as table entries (rehashing the live nodes);
 * 0 or -ENOMEM (the index as it was). */
static int names_fit(struct spk_book *g, uint32_t entries)
{
	uint32_t n = g->n_names ? g->n_names : 16, *names;

	while (n < entries)
		n *= 2;
	if (n == g->n_names)
		return 0;
	names = calloc(n, sizeof(*names));
	if (!names)
		return -ENOMEM;
	free(g->names);
	g->names = names;
	g->n_names = n;
	for (uint32_t i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].alive)
			name_insert(g, i);
	return 0;
}

/* The entry for a new node: a dead one that no ticket holds, else a new
 * one at the end (the table grows); NULL at max_nodes or out of memory. */
static struct spk_node *free_entry(struct spk_book *g, int *err)
{
	struct spk_node *nodes;
	uint32_t i, cap;

	for (i = 0; g->n_reusable && i < g->n_nodes; i++)
		if (!g->nodes[i].alive && !g->nodes[i].held) {
			g->n_reusable--;
			return &g->nodes[i];
		}
	*err = SPOKE_ENOSPC;
	if (g->n_nodes >= g->max_nodes)
		return NULL;
	if (g->n_nodes == g->cap_nodes) {
		cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
		if (cap > g->max_nodes)
			cap = g->max_nodes;
		nodes = realloc(g->nodes, cap * sizeof(nodes[0]));
		*err = -ENOMEM;
		if (!nodes)
			return NULL;
		g->nodes = nodes;
		g->cap_nodes = cap;
	}
	return &g->nodes[g->n_nodes++];
}

int spk_book_add_node(struct spk_book *g, const char *name, const int32_t *gpus,
		      uint32_t n_gpus, uint32_t cpus)
{
	struct spk_node *nd;
	uint32_t i, j;
	int err = 0;

	if (!name || spk_name_check("node name", name, strlen(name), SPOKE_NODE_NAME_MAX) < 0)
		return SPOKE_EINVAL;
	if (n_gpus > SPK_MAX_NODE_GPUS || (n_gpus && !gpus))
		return SPOKE_EINVAL;
	for (i = 0; i < n_gpus; i++) {
		for (j = 0; j < i; j++) {
			if (gpus[i] == gpus[j])
				return SPOKE_EINVAL;
		}
	}
	if (name_find(g, name) >= 0)
		return SPOKE_EEXIST;
	if (names_fit(g, g->n_nodes + 1) < 0)
		return -ENOMEM;
	nd = free_entry(g, &err);
	if (!nd)
		return err;
	memset(nd, 0, sizeof(*nd));
	nd->alive = true;
	strcpy(nd->name, name);
	nd->n_gpus = n_gpus;
	if (n_gpus)
		memcpy(nd->gpus, gpus, n_gpus * sizeof(gpus[0]));
	nd->cpus = cpus;
	name_insert(g, (uint32_t)(nd - g->nodes));
	return (int)(nd - g->nodes);
}

void spk_book_node_down(struct spk_book *g, uint32_t node)
{
	if (node >= g->n_nodes || !g->nodes[node].alive)
		return;
	name_remove(g, node);
	g->nodes[node].alive = false;
	if (!g->nodes[node].held)
		g->n_reusable++;
}

/* Whether a ticket of n more slots keeps owner within its quota; if not,
 * why says so. */
static bool within_quota(const struct spk_book *g, uint64_t owner, uint64_t n, char *why,
			 size_t cap, size_t *len)
{
	uint64_t slots = 0;
	uint32_t tickets = 0;

	if (!owner)
		return true;
	for (const struct spk_ticket *t = g->tickets; t; t = t->next)
		if (t->owner == owner) {
			tickets++;
			slots += t->n;
		}
	if (tickets < g->max_tickets && slots + n <= g->max_slots)
		return true;
	why_add(why, cap, len, ": over this client's quota of %u %s (it holds %llu slot%s in %u "
		"ticket%s)", tickets < g->max_tickets ? g->max_slots : g->max_tickets,
		tickets < g->max_tickets ? "slots" : "tickets", (unsigned long long)slots,
		slots == 1 ? "" : "s", tickets, plural(tickets));
	return false;
}

int spk_book_allocate(struct spk_book *g, uint64_t owner, uint32_t nodes, uint32_t per_node,
		      const spoke_resources *res, bool strict_pack, struct spk_ticket **out,
		      char *why, size_t why_cap)
{
	uint32_t *home = NULL, *cand, *key, *tmp;
	struct spk_ticket *t;
	bool strict;
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
	else if (n > SPK_BOOK_MAX_SLOTS)
		bad = "more than " GANG_STR(SPK_BOOK_MAX_SLOTS) " slots";
	if (bad || !out) {
		why_asked(why, why_cap, &len, nodes, per_node, res, strict_pack);
		why_add(why, why_cap, &len, ": invalid, %s", bad ? bad : "no ticket pointer");
		return SPOKE_EINVAL;
	}
	why_asked(why, why_cap, &len, nodes, per_node, res, strict_pack);
	if (!within_quota(g, owner, n, why, why_cap, &len))
		return SPOKE_ENORES;

	/* Scratch for the placement: home, cand, key and tmp, a node each. */
	home = malloc(4 * ((size_t)g->n_nodes + 1) * sizeof(*home));
	if (!home) {
		ret = -ENOMEM;
		goto out_why;
	}
	cand = home + g->n_nodes + 1;
	key = cand + g->n_nodes + 1;
	tmp = key + g->n_nodes + 1;
	strict = plan_strict(g, nodes, per_node, res, home, cand, key, tmp);
	if (!strict && (strict_pack || !room_for(g, res, n))) {
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
	if (strict)
		place_strict(t, nodes, per_node, home);
	else
		place_spread(g, t, per_node, res, cand, key, tmp);
	commit_grants(g, t, per_node, res);
	t->next = g->tickets;
	if (t->next)
		t->next->pprev = &t->next;
	t->pprev = &g->tickets;
	g->tickets = t;
	*out = t;
	free(home);
	return 0;

out_why:
	free(home);
	if (ret == SPOKE_ENORES)
		why_free(why, why_cap, &len, g, res);
	else
		why_add(why, why_cap, &len, ": out of memory");
	return ret;
}

struct spk_ticket *spk_book_find(struct spk_book *g, uint64_t id)
{
	struct spk_ticket *t;

	for (t = g->tickets; t; t = t->next) {
		if (t->id == id)
			return t;
	}
	return NULL;
}

/* Takes t out of the list (O(1)), frees its resources and it. */
static void ticket_free(struct spk_book *g, struct spk_ticket *t)
{
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	free_grants(g, t);
	free(t);
}

void spk_book_release(struct spk_book *g, struct spk_ticket *t)
{
	if (t)
		ticket_free(g, t);
}

int spk_book_release_owner(struct spk_book *g, uint64_t owner)
{
	struct spk_ticket *t, *next;
	int n = 0;

	for (t = g->tickets; t; t = next) {
		next = t->next;
		if (t->owner == owner) {
			ticket_free(g, t);
			n++;
		}
	}
	return n;
}

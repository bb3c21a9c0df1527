/* book.h - the hub's placement book: its nodes, their GPUs and CPUs, and
 * the tickets that hold them (gangs and single spawns alike).
 *
 * Pure bookkeeping, no I/O: the hub calls it from its event loop, the unit
 * tests call it directly.  A node is a registered agent with its GPU ids and
 * CPU count.  Placement is all or nothing: on failure nothing changes and
 * `why` says what was asked and what is free.
 *
 * The node table grows as nodes register (up to max_nodes); the slot of a
 * dead node is given to the next node that registers once no ticket holds
 * a slot on it, so nodes that come and go never fill it.  Nothing is
 * sized for a number of nodes at init, and no step is quadratic in them:
 * live names are found through a hash index, a registration scans for a
 * reusable entry only when there is one, and a placement sorts its
 * candidates by counting (free GPUs, 0 to 64) or by merge sort.  Each owner (a
 * client connection; 0 is the hub's own spawns, which have no quota) holds
 * at most max_tickets tickets and max_slots slots in all: a slot counts
 * whatever it holds, 0 GPUs included. */
#ifndef SPOKE_BOOK_H
#define SPOKE_BOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spoke/client.h>

#define SPK_MAX_NODE_GPUS 64
#define SPK_BOOK_MAX_NODES 65536    /* default max_nodes */
#define SPK_BOOK_MAX_SLOTS 65536    /* the most slots one gang may have */
#define SPK_BOOK_OWNER_TICKETS 256  /* default max_tickets */
#define SPK_BOOK_OWNER_SLOTS 4096   /* default max_slots */

struct spk_node {
	bool alive;
	uint32_t name_next; /* the next live node in its name bucket + 1, 0: none */
	uint32_t held; /* slots of tickets placed here: the entry stays while any */
	void *data;    /* the hub's (its agent's connection) */
	char name[SPOKE_NODE_NAME_MAX];
	uint32_t n_gpus;
	int32_t gpus[SPK_MAX_NODE_GPUS];
	uint64_t gpu_used; /* bit i: gpus[i] is taken */
	uint32_t cpus;     /* 0: not counted */
	uint32_t cpus_used;
};

/* One placed slot. */
struct spk_grant {
	uint32_t node;       /* index into spk_book.nodes */
	uint32_t rank;       /* 0..n-1 in the gang */
	uint32_t node_rank;  /* the gang node it belongs to, 0..nodes-1 */
	uint32_t local_rank; /* index among that gang node's slots, 0..per_node-1 */
	uint32_t n_gpus;
	int32_t gpus[SPOKE_MAX_SLOT_GPUS]; /* GPU ids (not indexes) */
	uint32_t cpus;
	void *data; /* the hub's (the actor launched into the slot), NULL */
};

struct spk_ticket {
	uint64_t id;
	uint64_t owner; /* the client connection that holds it */
	uint32_t n;
	struct spk_ticket *next, **pprev; /* in spk_book.tickets */
	struct spk_grant grants[]; /* n of them */
};

struct spk_book {
	struct spk_node *nodes; /* n_nodes entries, live and dead, of cap_nodes */
	uint32_t n_nodes, cap_nodes;
	uint32_t n_reusable; /* dead entries that no ticket holds */
	uint32_t *names;     /* hash buckets of live node names: index + 1, 0: none */
	uint32_t n_names;    /* buckets, a power of two (0 before the first node) */
	struct spk_ticket *tickets;
	uint64_t next_id; /* ids start at 1 */
	uint32_t max_nodes;   /* table entries, SPK_BOOK_MAX_NODES after init */
	uint32_t max_tickets; /* per owner (not 0), SPK_BOOK_OWNER_TICKETS after init */
	uint32_t max_slots;   /* per owner (not 0), SPK_BOOK_OWNER_SLOTS after init */
};

void spk_book_init(struct spk_book *g);
/* Frees every ticket and the node table. */
void spk_book_fini(struct spk_book *g);

/* Adds a node, in the entry of a dead node that no ticket holds where there
 * is one, else a new entry; returns its index or a negative code
 * (SPOKE_EINVAL for a bad name, more than SPK_MAX_NODE_GPUS GPUs or a
 * duplicate GPU id, SPOKE_ENOSPC past max_nodes entries, -ENOMEM,
 * SPOKE_EEXIST for a live node of the same name). */
int spk_book_add_node(struct spk_book *g, const char *name, const int32_t *gpus,
		      uint32_t n_gpus, uint32_t cpus);
/* Marks a node dead: nothing is placed on it again.  Tickets that hold
 * slots on it keep them until released. */
void spk_book_node_down(struct spk_book *g, uint32_t node);

/* Places nodes x per_node slots of res->gpus GPUs and res->cpus CPUs each;
 * slot rank r belongs to gang node r / per_node (its node_rank) as its
 * local rank r % per_node.  strict_pack: `nodes` distinct live nodes, each
 * holding its gang node's `per_node` slots (best fit: among nodes that fit,
 * those with the fewest free GPUs first, then by index).  Otherwise the
 * strict placement is tried first and, if it fails, the gang fits when the
 * live nodes have room for all its slots: each gang node gets a home node,
 * distinct ones while enough nodes have room (the most room first), and
 * keeps its slots there as far as they fit; the rest spill onto nodes with
 * room left.  A grant's `node` is where the slot really is.
 * On success *out is a new ticket (owned by g, listed in g->tickets) and the
 * resources are marked used; on failure returns SPOKE_ENORES (or
 * SPOKE_EINVAL for zero nodes, zero per_node, more than SPOKE_MAX_SLOT_GPUS
 * GPUs per slot, more than SPK_BOOK_MAX_SLOTS slots) and writes one line into
 * why: what was asked, and each live node's free GPUs, e.g. "asked for 2
 * nodes x 4 slots x 1 GPU; free: n1 2/4 GPUs, n2 4/4 GPUs", or the owner's
 * quota: "...: over this client's quota of 4096 slots (it holds 4000 in 3
 * tickets)". */
int spk_book_allocate(struct spk_book *g, uint64_t owner, uint32_t nodes, uint32_t per_node,
		      const spoke_resources *res, bool strict_pack, struct spk_ticket **out,
		      char *why, size_t why_cap);
struct spk_ticket *spk_book_find(struct spk_book *g, uint64_t id);
/* Frees the ticket's resources and the ticket (one of g's, not released
 * already; NULL: nothing), in O(its slots). */
void spk_book_release(struct spk_book *g, struct spk_ticket *t);
/* Releases every ticket held by owner (a client that went away); returns
 * how many. */
int spk_book_release_owner(struct spk_book *g, uint64_t owner);

#endif

/* gangspec.h - the one parser of a gang's shape, NODESxGPUS[:GPUS_PER_ACTOR]
 * ("2x8", "2x8:2"), shared by the SPANK plugin (--spoke-gang), the job file
 * (gang:) and spoke-launch (--salloc).  Plain C with no libspoke in it: the
 * plugin is built without it.  Each caller words its own messages from the
 * status and the numbers as written. */
#ifndef SPOKE_COMMON_GANGSPEC_H
#define SPOKE_COMMON_GANGSPEC_H

#include <stddef.h>

#define GANG_MAX_NODES 100000
#define GANG_MAX_GPUS_PER_NODE 1024

struct gangspec {
	unsigned nodes;          /* N */
	unsigned gpus_per_node;  /* G */
	unsigned gpus_per_actor; /* k: G is a multiple of it */
};

/* What is wrong with a gang: gangspec_scan returns 0 or every problem
 * found, as bits, so that each caller reports them in its own order. */
enum gangspec_problem {
	GANGSPEC_SYNTAX = 1 << 0,               /* not NODESxGPUS[:GPUS_PER_ACTOR]
						 * (then no other bit is set) */
	GANGSPEC_NO_NODES = 1 << 1,             /* N is 0 */
	GANGSPEC_TOO_MANY_NODES = 1 << 2,       /* N > GANG_MAX_NODES */
	GANGSPEC_NO_GPUS = 1 << 3,              /* G is 0 */
	GANGSPEC_TOO_MANY_GPUS = 1 << 4,        /* G > GANG_MAX_GPUS_PER_NODE */
	GANGSPEC_NO_ACTOR_GPUS = 1 << 5,        /* k is 0 */
	GANGSPEC_TOO_MANY_ACTOR_GPUS = 1 << 6,  /* k > GANG_MAX_GPUS_PER_NODE */
	GANGSPEC_UNEVEN = 1 << 7,               /* k (not 0) does not divide G */
};

/* The numbers as written (each saturates at about 10^13), for messages. */
struct gangspec_numbers {
	unsigned long long nodes, gpus_per_node, gpus_per_actor;
};

/* Parses the len bytes at s (s may be NULL): decimal digits only, 'x' or
 * 'X' between N and G, k defaults to default_k (1 if 0).  Returns 0 and
 * fills *g, or the gangspec_problem bits found (*g untouched).  written
 * (may be NULL) gets the numbers read, also on failure. */
unsigned gangspec_scan(const char *s, size_t len, unsigned default_k, struct gangspec *g,
		       struct gangspec_numbers *written);

/* "2x8:2" ("2x8" when k is 1). */
void gangspec_format(const struct gangspec *g, char *out, size_t cap);

#endif

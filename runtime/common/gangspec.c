/* gangspec.c - the one NODESxGPUS[:GPUS_PER_ACTOR] parser (gangspec.h). */
#include <stdio.h>

#include "gangspec.h"

#define SATURATE 1000000000000ULL

/* Decimal digits at *p (before end) into *v, saturating; how many there were. */
static size_t digits(const char **p, const char *end, unsigned long long *v)
{
	const char *s = *p;
	size_t n;

	*v = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++)
		if (*v < SATURATE)
			*v = *v * 10 + (unsigned)(*s - '0');
	n = (size_t)(s - *p);
	*p = s;
	return n;
}

unsigned gangspec_scan(const char *s, size_t len, unsigned default_k, struct gangspec *g,
		       struct gangspec_numbers *written)
{
	struct gangspec_numbers num = { 0, 0, default_k ? default_k : 1 };
	const char *p = s, *end = s ? s + len : s;
	unsigned bad = GANGSPEC_SYNTAX;

	if (!s)
		goto out;
	if (!digits(&p, end, &num.nodes) || p == end || (*p != 'x' && *p != 'X'))
		goto out;
	p++;
	if (!digits(&p, end, &num.gpus_per_node))
		goto out;
	if (p < end && *p == ':') {
		p++;
		if (!digits(&p, end, &num.gpus_per_actor))
			goto out;
	}
	if (p != end)
		goto out;
	bad = 0;
	if (num.nodes == 0)
		bad |= GANGSPEC_NO_NODES;
	if (num.nodes > GANG_MAX_NODES)
		bad |= GANGSPEC_TOO_MANY_NODES;
	if (num.gpus_per_node == 0)
		bad |= GANGSPEC_NO_GPUS;
	if (num.gpus_per_node > GANG_MAX_GPUS_PER_NODE)
		bad |= GANGSPEC_TOO_MANY_GPUS;
	if (num.gpus_per_actor == 0)
		bad |= GANGSPEC_NO_ACTOR_GPUS;
	else if (num.gpus_per_node % num.gpus_per_actor)
		bad |= GANGSPEC_UNEVEN;
	if (num.gpus_per_actor > GANG_MAX_GPUS_PER_NODE)
		bad |= GANGSPEC_TOO_MANY_ACTOR_GPUS;
	if (!bad) {
		g->nodes = (unsigned)num.nodes;
		g->gpus_per_node = (unsigned)num.gpus_per_node;
		g->gpus_per_actor = (unsigned)num.gpus_per_actor;
	}
out:
	if (written)
		*written = num;
	return bad;
}

void gangspec_format(const struct gangspec *g, char *out, size_t cap)
{
	if (g->gpus_per_actor == 1)
		snprintf(out, cap, "%ux%u", g->nodes, g->gpus_per_node);
	else
		snprintf(out, cap, "%ux%u:%u", g->nodes, g->gpus_per_node, g->gpus_per_actor);
}

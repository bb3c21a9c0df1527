/* tokens.h - the "TokenGen" example actor's methods and its tokens
 * (tokens_actor.c; its driver: tokens.c, job: tokens.yaml). */
#ifndef EXAMPLES_TOKENS_H
#define EXAMPLES_TOKENS_H

#include <stdint.h>

/* u32 prompt, u32 length -> a stream of `length` tokens, one chunk each
 * (struct token), generated one per engine step; read plainly (spoke_call)
 * it answers all of them at once. */
#define TOKENS_GENERATE 1
/* -> struct token_stats */
#define TOKENS_STATS 2

struct token {
	uint32_t prompt, index, value;
};

struct token_stats {
	uint32_t steps;     /* engine steps that had work */
	uint32_t peak;      /* the most requests one step served */
	uint32_t finished;  /* requests that got every token */
	uint32_t cancelled; /* requests whose caller went away */
};

/* The token a prompt has at index: a stand-in for a model. */
static inline uint32_t token_value(uint32_t prompt, uint32_t index)
{
	uint32_t x = prompt * 2654435761u ^ (index + 1) * 2246822519u;

	return x ^ (x >> 15);
}

#endif

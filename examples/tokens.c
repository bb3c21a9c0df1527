/* tokens.c - the driver of examples/tokens.yaml: 64 callers stream tokens
 * from one TokenGen actor at once, each on a thread of its own; every
 * eighth gives its stream up midway.  Every other stream must come
 * complete and in order, and the actor must have seen each cancel.
 *
 *     tokens [ACTOR] [STREAMS]      (defaults: gen-0, 64) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "tokens.h"

#define STREAMS_MAX 64
#define CANCEL_AFTER 8 /* tokens a cancelling caller reads first */
/* What a cancelling caller asks for: 4 s of tokens at the engine's 1 ms a
 * step, so that its cancel comes while the engine still generates, even
 * for a thread the scheduler leaves waiting a while. */
#define CANCEL_LENGTH 4000

struct caller {
	spoke_actor *a;
	uint32_t prompt, length;
	int cancels;   /* gives its stream up after CANCEL_AFTER tokens */
	uint32_t got;  /* tokens read, each checked */
	int rc;        /* the stream's end: SPOKE_EOF when complete */
	char why[256];
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	uint32_t req[2] = { c->prompt, c->length };
	spoke_stream *s;
	struct token t;
	size_t n;

	c->rc = spoke_call_stream(c->a, TOKENS_GENERATE, req, sizeof(req), &s, 0);
	while (c->rc == 0 && (c->rc = spoke_stream_next(s, &t, sizeof(t), &n, 10000)) == 0) {
		if (n != sizeof(t) || t.prompt != c->prompt || t.index != c->got ||
		    t.value != token_value(c->prompt, c->got)) {
			snprintf(c->why, sizeof(c->why), "token %u of prompt %u is wrong", c->got,
				 c->prompt);
			break;
		}
		if (++c->got == CANCEL_AFTER && c->cancels) {
			c->rc = spoke_stream_cancel(s);
			break;
		}
	}
	if (!c->why[0] && c->rc < 0 && c->rc != SPOKE_EOF)
		snprintf(c->why, sizeof(c->why), "%s", spoke_errmsg());
	if (c->rc == 0 && !c->cancels) /* a stream ends with SPOKE_EOF */
		snprintf(c->why, sizeof(c->why), "the stream did not end");
	spoke_stream_close(s);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "gen-0";
	int streams = argc > 2 ? atoi(argv[2]) : STREAMS_MAX, bad = 0, cancelled = 0;
	static struct caller callers[STREAMS_MAX];
	pthread_t threads[STREAMS_MAX];
	struct token_stats st = { 0 };
	spoke_client *client = NULL;
	spoke_actor *a = NULL;
	uint64_t tokens = 0;
	double t0;
	size_t n;

	if (streams < 1 || streams > STREAMS_MAX) {
		fprintf(stderr, "tokens: STREAMS must be 1-%d, not %s\n", STREAMS_MAX, argv[2]);
		return 2;
	}
	if (spoke_client_open(&client, NULL) != 0 || spoke_actor_open(client, name, &a, 0) != 0) {
		fprintf(stderr, "tokens: %s\n", spoke_errmsg());
		return 1;
	}
	t0 = now_s();
	for (int i = 0; i < streams; i++) {
		callers[i] = (struct caller){ .a = a, .prompt = 1000 + (uint32_t)i,
					      .length = i % 8 == 7 ? CANCEL_LENGTH : 32 + (uint32_t)i % 32,
					      .cancels = i % 8 == 7 };
		if (pthread_create(&threads[i], NULL, caller_main, &callers[i]) != 0) {
			fprintf(stderr, "tokens: cannot start caller %d\n", i);
			return 1;
		}
	}
	for (int i = 0; i < streams; i++) {
		struct caller *c = &callers[i];

		pthread_join(threads[i], NULL);
		tokens += c->got;
		if (c->cancels && !c->why[0] && c->got == CANCEL_AFTER) {
			cancelled++;
		} else if (c->why[0] || c->rc != SPOKE_EOF || c->got != c->length) {
			fprintf(stderr, "tokens: stream %d: %u of %u tokens: %s\n", i, c->got,
				c->length, c->why[0] ? c->why : spoke_strerror(c->rc));
			bad++;
		}
	}
	printf("tokens: %d streams complete and in order, %d cancelled midway; %llu tokens in "
	       "%.0f ms\n", streams - cancelled - bad, cancelled, (unsigned long long)tokens,
	       (now_s() - t0) * 1e3);
	/* The actor sees a cancel at its next step. */
	for (int k = 0; k < 200; k++) {
		if (spoke_call(a, TOKENS_STATS, NULL, 0, &st, sizeof(st), &n, 0) != 0) {
			fprintf(stderr, "tokens: stats: %s\n", spoke_errmsg());
			return 1;
		}
		if (st.cancelled >= (uint32_t)cancelled)
			break;
		usleep(10000);
	}
	printf("tokens: the engine ran %u steps, up to %u requests in one; it finished %u and "
	       "saw %u cancels\n", st.steps, st.peak, st.finished, st.cancelled);
	if (st.cancelled != (uint32_t)cancelled || st.finished != (uint32_t)(streams - cancelled))
		bad++;
	spoke_actor_close(a);
	spoke_client_close(client);
	return bad ? 1 : 0;
}

/* tokens_actor.c - "TokenGen": a token generator that batches its callers
 * the way an inference engine does (continuous batching), built as an
 * actor module the stock spoke-worker loads.
 *
 * A GENERATE call is kept (spoke_call_defer) and admitted to the engine's
 * batch.  The engine steps on the worker's own loop (spoke_worker_timer,
 * every STEP_US): each step gives every request in the batch its next
 * token, streamed to its caller (spoke_stream_emit), admits the requests
 * that came meanwhile, and finishes those that reached their length
 * (spoke_call_finish).  A caller that goes away (spoke_stream_cancel, or
 * its death) is seen as a cancel and its slot freed at the next step; a
 * reader that falls behind keeps its token for the next step (its emit
 * says SPOKE_EAGAIN), so a slow reader never holds up the others. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/spoke.h>

#include "tokens.h"

#define STEP_US 1000 /* a real engine's step: one forward pass */
#define BATCH_MAX 256
#define LENGTH_MAX 4096

struct request {
	spoke_call_ctx *ctx;
	uint32_t prompt, length, next;
	struct token *all; /* a plain (not streamed) call's tokens, answered at the end */
};

struct engine {
	struct request batch[BATCH_MAX];
	unsigned n;
	spoke_worker_hook *timer;
	struct token_stats stats;
};

static void finish(struct engine *e, struct request *r, int status)
{
	if (status == 0 && r->all)
		spoke_call_finish(r->ctx, 0, r->all, r->length * sizeof(struct token));
	else
		spoke_call_finish(r->ctx, status, NULL, 0);
	free(r->all);
	*r = e->batch[--e->n]; /* the last one takes its place */
}

static void step(void *arg)
{
	struct engine *e = arg;

	if (!e->n)
		return;
	e->stats.steps++;
	if (e->n > e->stats.peak)
		e->stats.peak = e->n;
	for (unsigned i = 0; i < e->n;) {
		struct request *r = &e->batch[i];
		struct token t = { r->prompt, r->next, token_value(r->prompt, r->next) };

		if (spoke_call_cancelled(r->ctx)) {
			e->stats.cancelled++;
			finish(e, r, -ECANCELED);
			continue;
		}
		if (r->all)
			r->all[r->next++] = t;
		else if (spoke_stream_emit(r->ctx, &t, sizeof(t), 0) == 0)
			r->next++;
		/* else the reader is behind: this token again next step */
		if (r->next == r->length) {
			e->stats.finished++;
			finish(e, r, 0);
			continue;
		}
		i++;
	}
}

static int tokens_init(void *state, spoke_view *args)
{
	struct engine *e = state;

	(void)args;
	e->timer = spoke_worker_timer(STEP_US, step, e);
	return e->timer ? 0 : -EIO;
}

static int generate(void *state, spoke_view *req, spoke_buf *reply)
{
	struct engine *e = state;
	struct request r = { 0 };

	if (spoke_view_get_u32(req, &r.prompt) < 0 || spoke_view_get_u32(req, &r.length) < 0 ||
	    r.length == 0 || r.length > LENGTH_MAX)
		return spoke_method_fail(reply, -EINVAL, "want u32 prompt, u32 length (1-%d)",
					 LENGTH_MAX);
	if (e->n == BATCH_MAX)
		return spoke_method_fail(reply, -EBUSY, "the batch is full (%d requests)", BATCH_MAX);
	r.ctx = spoke_call_defer(reply);
	if (!r.ctx)
		return spoke_method_fail(reply, -ENOMEM, "%s", spoke_errmsg());
	if (!spoke_call_is_stream(r.ctx)) {
		r.all = calloc(r.length, sizeof(struct token));
		if (!r.all) {
			spoke_call_finish(r.ctx, -ENOMEM, NULL, 0);
			return 0;
		}
	}
	e->batch[e->n++] = r; /* its first token comes with the next step */
	return 0;
}

static int stats(void *state, spoke_view *req, spoke_buf *reply)
{
	const struct engine *e = state;

	(void)req;
	return spoke_buf_put_raw(reply, &e->stats, sizeof(e->stats));
}

static void tokens_fini(void *state)
{
	struct engine *e = state;

	spoke_worker_hook_stop(e->timer);
	while (e->n)
		finish(e, &e->batch[0], -ECANCELED);
}

static const spoke_method tokens_methods[] = {
	{ TOKENS_GENERATE, "generate", generate },
	{ TOKENS_STATS, "stats", stats },
};

static const spoke_actor_type tokens_type = {
	.name = "TokenGen",
	.state_size = sizeof(struct engine),
	.init = tokens_init,
	.fini = tokens_fini,
	.methods = tokens_methods,
	.n_methods = sizeof(tokens_methods) / sizeof(tokens_methods[0]),
};

SPOKE_REGISTER_ACTOR(tokens_type)

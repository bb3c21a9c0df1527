/* kept.c - calls answered after their method returned: deferred replies
 * (spoke_call_defer, spoke_call_finish) and the threads of an actor whose
 * type allows more than one call at a time (max_concurrency).
 *
 * A kept call has a context (struct spoke_call_ctx) with its own copy of
 * the request and, once finished, of its reply.  Contexts are made once
 * and reused, oldest free first, so that a finish after a finish finds its
 * context still free (refused) for as long as possible; none is freed
 * before the process ends.  A context is in one state at a time:
 *
 *   FREE -> KEPT (spoke_call_defer) or RUNNING (on a thread) -> KEPT
 *        -> DONE (spoke_call_finish, or a thread's method returned)
 *        -> FREE (answered by the loop, or dropped: cancelled)
 *
 * Any thread may finish a call; only the loop's thread answers it (through
 * its transport's answer op, outside any method) and gives its context
 * back, so that the loop can look at a context without fearing its reuse.
 * Finished calls wait in a queue that an ev_async drains; an answer without
 * room now (SPOKE_EAGAIN) is tried again each millisecond.  A connection
 * that goes (env.gone) cancels its calls: the flag, then the callback on
 * the loop's thread; their answers are dropped.  A CANCEL (the caller gave
 * one call up) does the same, but its answer still goes, with what it has
 * (the caller drops it): the connection's calls stay in order.
 *
 * A stream's chunks (spoke_stream_emit) wait in their context's queue, at
 * most SPOKE_STREAM_QUEUE bytes of them, until the loop hands them to the
 * transport (its chunk op), which takes them while its connection has
 * room: a reader that falls behind fills its connection, then the queue,
 * and then emit waits (off the loop's thread) or says SPOKE_EAGAIN.  A
 * finished stream's REPLY goes once its queue is empty. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include <spoke/errors.h>

#include "clock.h"
#include "errmsg.h"
#include "log.h"
#include "loop_conn.h"
#include "worker.h"

#define RETRY_S 0.001
#define EXPIRY_S 0.005 /* how often kept calls are held to their deadlines */
#define THREADS_MAX 1024

enum { K_FREE, K_RUNNING, K_KEPT, K_FINISHING, K_DONE };

struct spoke_call_ctx {
	struct spk_call_origin from;
	const spoke_method *m;
	_Atomic int state;
	atomic_int cancelled;
	bool gone; /* its connection went (K.lock): nothing is sent to it */
	bool expired; /* its deadline passed: the runtime answered it */
	int64_t deadline; /* spk_now_us() its caller waits until, 0: none */
	void (*on_cancel)(spoke_call_ctx *ctx, void *arg);
	void *cancel_arg;
	bool cancel_ran; /* the loop's thread only */
	int64_t t0; /* spk_now_us() it came or was kept, 0: not counted (stats.c) */
	uint8_t *req, *rep;
	size_t req_len, req_cap, rep_cap;
	uint8_t *q; /* a stream's chunks to send: u32 length, then the bytes */
	size_t q_head, q_len, q_cap;
	bool streaming; /* in K.streams */
	spoke_call_ctx *snext;
	struct spk_answer ans;
	char msg[SPK_REPLY_ERROR_MAX];
	spoke_call_ctx *next; /* in the free list, the done queue or the threads' queue */
	spoke_call_ctx *all;  /* every context made */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work; /* the threads' queue has a call, or they stop */
	pthread_cond_t room; /* a stream's queue was emptied, or its call cancelled */
	struct ev_loop *loop;
	ev_async wake;
	ev_timer retry;
	ev_timer expiry; /* looks for kept calls past their deadline */
	spoke_call_ctx *all;
	spoke_call_ctx *free_head, *free_tail;
	spoke_call_ctx *done_head, *done_tail;
	spoke_call_ctx *work_head, *work_tail;
	spoke_call_ctx *again; /* answers without room: the loop's thread only */
	spoke_call_ctx *streams; /* contexts with chunks queued */
	pthread_t *threads;
	unsigned n_threads, running;
	bool stopping;
	bool started;
} K = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
	.room = PTHREAD_COND_INITIALIZER };

static void push(spoke_call_ctx **head, spoke_call_ctx **tail, spoke_call_ctx *c)
{
	c->next = NULL;
	if (*tail)
		(*tail)->next = c;
	else
		*head = c;
	*tail = c;
}

static spoke_call_ctx *pop(spoke_call_ctx **head, spoke_call_ctx **tail)
{
	spoke_call_ctx *c = *head;

	if (c) {
		*head = c->next;
		if (!*head)
			*tail = NULL;
		c->next = NULL;
	}
	return c;
}

/* Room for n bytes at *p (capacity *cap, grown by doubling: a stream's
 * queue takes many small chunks). */
static int reserve(uint8_t **p, size_t *cap, size_t n)
{
	size_t want = *cap ? *cap : 64;
	uint8_t *np;

	if (n <= *cap)
		return 0;
	while (want < n)
		want *= 2;
	np = realloc(*p, want);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = want;
	return 0;
}

/* A free context for a call of m from `from` (NULL on a thread's), with a
 * copy of the whole of req; NULL if out of memory. */
static spoke_call_ctx *take(const spoke_method *m, const struct spk_call_origin *from,
			    const spoke_view *req, int64_t deadline)
{
	spoke_call_ctx *c;

	pthread_mutex_lock(&K.lock);
	c = pop(&K.free_head, &K.free_tail);
	pthread_mutex_unlock(&K.lock);
	if (!c) {
		c = calloc(1, sizeof(*c)); /* once per context: they are reused */
		if (!c)
			return NULL;
		pthread_mutex_lock(&K.lock);
		c->all = K.all;
		K.all = c;
		pthread_mutex_unlock(&K.lock);
	}
	if (reserve(&c->req, &c->req_cap, req->len ? req->len : 1) < 0) {
		pthread_mutex_lock(&K.lock);
		push(&K.free_head, &K.free_tail, c);
		pthread_mutex_unlock(&K.lock);
		return NULL;
	}
	if (req->len)
		memcpy(c->req, req->data, req->len);
	c->req_len = req->len;
	c->from = *from;
	c->m = m;
	atomic_store(&c->cancelled, 0);
	c->gone = false;
	c->expired = false;
	c->deadline = deadline;
	c->t0 = spk_running ? spk_running->t0 : spk_stats_on() ? spk_now_us() : 0;
	if (deadline && !ev_is_active(&K.expiry)) /* take() runs on the loop's thread */
		ev_timer_start(K.loop, &K.expiry);
	c->on_cancel = NULL;
	c->cancel_arg = NULL;
	c->cancel_ran = false;
	c->q_head = c->q_len = 0;
	return c;
}

/* Gives c back (the loop's thread). */
static void give_back(spoke_call_ctx *c)
{
	pthread_mutex_lock(&K.lock);
	atomic_store(&c->state, K_FREE);
	push(&K.free_head, &K.free_tail, c);
	pthread_mutex_unlock(&K.lock);
}

/* Has the loop look at the queues: from another thread, through its
 * eventfd; from its own thread, by feeding the event (no system call). */
static void wake_loop(void)
{
	if (spk_worker_on_loop())
		ev_feed_event(K.loop, &K.wake, EV_ASYNC);
	else
		ev_async_send(K.loop, &K.wake);
}

/* c's answer is set: on to the loop's thread. */
static void done(spoke_call_ctx *c)
{
	pthread_mutex_lock(&K.lock);
	atomic_store(&c->state, K_DONE);
	push(&K.done_head, &K.done_tail, c);
	pthread_mutex_unlock(&K.lock);
	wake_loop();
}

/* Sets c's answer from what its method did: status as spk_method_fn gives
 * it, the reply's len bytes in c->rep. */
static void set_answer(spoke_call_ctx *c, int status, int code, const char *msg, size_t len)
{
	c->ans = (struct spk_answer){ .id = c->from.id, .status = status, .code = code };
	if (status < 0) {
		snprintf(c->msg, sizeof(c->msg), "%s", msg);
		c->ans.msg = c->msg;
	} else {
		c->ans.data = c->rep;
		c->ans.len = len;
	}
}

/* Hands c's queued chunks to its transport (K.lock held): 0 once none
 * waits (those of a cancelled call are dropped), 1 if the rest must wait
 * for room. */
static int send_chunks(spoke_call_ctx *c)
{
	bool sent = false;

	while (c->q_head < c->q_len && !atomic_load(&c->cancelled)) {
		uint32_t n;

		memcpy(&n, c->q + c->q_head, 4);
		if (c->from.chunk(c->from.conn, c->from.id, c->q + c->q_head + 4, n) ==
		    SPOKE_EAGAIN)
			break;
		c->q_head += 4 + (size_t)n;
		sent = true;
		spk_worker_served();
	}
	if (sent && c->from.flush)
		c->from.flush(c->from.conn);
	if (c->q_head < c->q_len && !atomic_load(&c->cancelled))
		return 1;
	c->q_head = c->q_len = 0;
	pthread_cond_broadcast(&K.room);
	return 0;
}

/* The streams with chunks queued: theirs go out, as far as there is room. */
static void send_all_chunks(void)
{
	spoke_call_ctx *list, *c;

	pthread_mutex_lock(&K.lock);
	list = K.streams;
	K.streams = NULL;
	while ((c = list)) {
		list = c->snext;
		c->streaming = false;
		if (send_chunks(c)) {
			c->streaming = true;
			c->snext = K.streams;
			K.streams = c;
		}
	}
	pthread_mutex_unlock(&K.lock);
}

/* Answers c, or queues it to try again; 1 if it waits for room. */
static int answer(spoke_call_ctx *c)
{
	bool gone;
	int rc;

	pthread_mutex_lock(&K.lock);
	gone = c->gone;
	rc = gone ? 0 : send_chunks(c); /* the REPLY goes after every chunk */
	pthread_mutex_unlock(&K.lock);
	if (gone) {
		spk_stats_count(c->m, SPOKE_ECANCELED, c->req_len, 0, c->t0);
		give_back(c);
		return 0;
	}
	if (rc)
		return 1;
	rc = c->from.answer(c->from.conn, &c->ans);
	if (rc == SPOKE_EAGAIN)
		return 1;
	spk_stats_count(c->m, c->ans.status, c->req_len, c->ans.status < 0 ? 0 : c->ans.len,
			c->t0);
	spk_worker_served();
	give_back(c);
	return 0;
}

/* The calls that were finished: answered, in the order of their finish. */
static void answer_all(void)
{
	spoke_call_ctx *list, *c, **tail;
	bool waiting;

	send_all_chunks();
	/* Those that had no room go first: a connection's answers keep their order. */
	list = K.again;
	K.again = NULL;
	for (tail = &list; *tail; tail = &(*tail)->next)
		;
	pthread_mutex_lock(&K.lock);
	*tail = K.done_head;
	K.done_head = K.done_tail = NULL;
	pthread_mutex_unlock(&K.lock);
	tail = &K.again;
	while ((c = list)) {
		list = c->next;
		c->next = NULL;
		if (answer(c)) {
			*tail = c;
			tail = &c->next;
		}
	}
	pthread_mutex_lock(&K.lock);
	waiting = K.again || K.streams;
	pthread_mutex_unlock(&K.lock);
	if (waiting && !ev_is_active(&K.retry))
		ev_timer_start(K.loop, &K.retry);
	else if (!waiting && ev_is_active(&K.retry))
		ev_timer_stop(K.loop, &K.retry);
}

void spk_kept_answer_now(void)
{
	if (K.started)
		answer_all();
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	answer_all();
}

/* Kept calls past their deadline are answered SPOKE_ETIMEDOUT, once, and
 * cancelled (the flag, the callback); their finish says so. */
static void expiry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	int64_t now = spk_now_us();
	spoke_call_ctx *fire[64];
	unsigned n = 0, timed = 0;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&K.lock);
	for (spoke_call_ctx *c = K.all; c; c = c->all) {
		char msg[SPK_REPLY_ERROR_MAX];
		int expect = K_KEPT, st = atomic_load(&c->state);

		if (c->deadline && (st == K_KEPT || st == K_RUNNING))
			timed++;
		if (!c->deadline || now < c->deadline || st != K_KEPT ||
		    !atomic_compare_exchange_strong(&c->state, &expect, K_FINISHING))
			continue;
		c->expired = true;
		atomic_store(&c->cancelled, 1);
		snprintf(msg, sizeof(msg), "call %s of actor %s passed its deadline, kept unanswered",
			 c->m->name, spk_worker_name());
		set_answer(c, SPOKE_ETIMEDOUT, 0, msg, 0);
		c->q_head = c->q_len = 0; /* its stream's chunks are dropped */
		atomic_store(&c->state, K_DONE);
		push(&K.done_head, &K.done_tail, c);
		if (c->on_cancel && !c->cancel_ran && n < 64) {
			c->cancel_ran = true;
			fire[n++] = c;
		}
	}
	pthread_cond_broadcast(&K.room);
	pthread_mutex_unlock(&K.lock);
	if (!timed) /* an idle worker does not wake for nothing */
		ev_timer_stop(K.loop, w);
	for (unsigned i = 0; i < n; i++)
		fire[i]->on_cancel(fire[i], fire[i]->cancel_arg);
	answer_all();
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	answer_all();
}

/* ---- the public side ---- */

spoke_call_ctx *spoke_call_defer(spoke_buf *reply)
{
	struct spk_running *r = spk_running;
	spoke_call_ctx *c;
	int expect = K_RUNNING;

	spk_errmsg_clear();
	if (!r || !reply || r->reply != reply) {
		spk_fail(SPOKE_EINVAL, "spoke_call_defer: not in a method, or not its reply buffer");
		return NULL;
	}
	if (r->kept)
		return r->ctx;
	if (r->ctx) { /* a thread's call: its context is there */
		atomic_compare_exchange_strong(&r->ctx->state, &expect, K_KEPT);
		r->kept = true;
		return r->ctx;
	}
	if (!r->from || !r->from->answer) {
		spk_fail(SPOKE_EINVAL, "spoke_call_defer: this call's connection cannot keep calls");
		return NULL;
	}
	c = take(r->m, r->from, &r->req, r->deadline);
	if (!c) {
		spk_fail(-ENOMEM, "spoke_call_defer: out of memory for the call's context");
		return NULL;
	}
	atomic_store(&c->state, K_KEPT);
	r->ctx = c;
	r->kept = true;
	return c;
}

spoke_view spoke_call_request(const spoke_call_ctx *ctx)
{
	spoke_view v;

	spoke_view_init(&v, ctx ? ctx->req : NULL, ctx ? ctx->req_len : 0);
	return v;
}

int64_t spoke_call_deadline(const spoke_call_ctx *ctx)
{
	if (ctx)
		return ctx->deadline;
	return spk_running ? spk_running->deadline : 0;
}

uint32_t spoke_call_method(const spoke_call_ctx *ctx)
{
	return ctx ? ctx->m->id : 0;
}

int spoke_call_is_stream(const spoke_call_ctx *ctx)
{
	return ctx ? ctx->from.stream : 0;
}

int spoke_call_cancelled(const spoke_call_ctx *ctx)
{
	return ctx ? atomic_load(&((spoke_call_ctx *)ctx)->cancelled) : 0;
}

void spoke_call_on_cancel(spoke_call_ctx *ctx, void (*fn)(spoke_call_ctx *ctx, void *arg),
			  void *arg)
{
	bool now;

	if (!ctx)
		return;
	pthread_mutex_lock(&K.lock);
	ctx->on_cancel = fn;
	ctx->cancel_arg = arg;
	now = fn && atomic_load(&ctx->cancelled) && !ctx->cancel_ran;
	if (now)
		ctx->cancel_ran = true;
	pthread_mutex_unlock(&K.lock);
	if (now)
		fn(ctx, arg);
}

int spoke_call_finish(spoke_call_ctx *ctx, int status, const void *data, size_t len)
{
	int expect = K_KEPT, rc = 0;
	char msg[SPK_REPLY_ERROR_MAX], own[SPK_FAIL_MSG_MAX];

	/* Before the thread's message is cleared: it may be what data says. */
	snprintf(own, sizeof(own), "%.*s",
		 status < 0 && data ? (int)(len < sizeof(own) ? len : sizeof(own) - 1) : 0,
		 status < 0 && data ? (const char *)data : "");
	spk_errmsg_clear();
	if (!ctx)
		return spk_fail(SPOKE_EINVAL, "spoke_call_finish: NULL context");
	if (!atomic_compare_exchange_strong(&ctx->state, &expect, K_FINISHING)) {
		if (ctx->expired)
			return spk_fail(SPOKE_ETIMEDOUT, "spoke_call_finish: the deadline of call %s "
					"of actor %s passed; the runtime answered it", ctx->m->name,
					spk_worker_name());
		return spk_fail(SPOKE_EINVAL, "spoke_call_finish: the call is not kept (finished "
				"already?)");
	}
	if (atomic_load(&ctx->cancelled)) {
		rc = spk_fail(SPOKE_ECANCELED, "spoke_call_finish: call %s of actor %s was "
			      "cancelled: its client went away", ctx->m->name, spk_worker_name());
		set_answer(ctx, SPOKE_ECANCELED, 0, "cancelled", 0);
	} else if (status < 0) {
		spk_worker_fail_msg(ctx->m, status, own, msg, sizeof(msg));
		set_answer(ctx, SPOKE_EMETHOD, status, msg, 0);
	} else if (len > spk_worker_max_msg()) {
		snprintf(msg, sizeof(msg), "the reply of method %s of actor %s is over this actor's "
			 "maximum of %u bytes (SPOKE_MAX_MSG)", ctx->m->name, spk_worker_name(),
			 spk_worker_max_msg());
		rc = spk_fail(SPOKE_ETOOBIG, "spoke_call_finish: %s", msg);
		set_answer(ctx, SPOKE_ETOOBIG, 0, msg, 0);
	} else if (reserve(&ctx->rep, &ctx->rep_cap, len ? len : 1) < 0) {
		snprintf(msg, sizeof(msg), "the reply of method %s of actor %s could not be kept: "
			 "out of memory", ctx->m->name, spk_worker_name());
		rc = spk_fail(-ENOMEM, "spoke_call_finish: %s", msg);
		set_answer(ctx, -ENOMEM, 0, msg, 0);
	} else {
		if (len)
			memcpy(ctx->rep, data, len);
		set_answer(ctx, 0, 0, NULL, len);
	}
	done(ctx);
	return rc;
}

/* Whether the queue of c has no room for len more bytes (K.lock held). */
static bool queue_full(const spoke_call_ctx *c, size_t len)
{
	size_t pending = c->q_len - c->q_head;

	return pending && pending + 4 + len > SPOKE_STREAM_QUEUE;
}

/* Why emit cannot queue on c now (K.lock held), or 0. */
static int emit_refused(spoke_call_ctx *c)
{
	if (atomic_load(&c->cancelled))
		return spk_fail(SPOKE_ECANCELED, "spoke_stream_emit: call %s of actor %s was "
				"cancelled: its reader went away", c->m->name, spk_worker_name());
	if (atomic_load(&c->state) != K_KEPT)
		return spk_fail(SPOKE_EINVAL, "spoke_stream_emit: the call is not kept (finished "
				"already?)");
	if (!c->from.stream)
		return spk_fail(SPOKE_EINVAL, "spoke_stream_emit: call %s of actor %s is not a "
				"stream (its caller used spoke_call, not spoke_call_stream): answer "
				"it with spoke_call_finish", c->m->name, spk_worker_name());
	if (!c->from.chunk)
		return spk_fail(SPOKE_ETRANSPORT, "spoke_stream_emit: the transport of call %s "
				"has no streams", c->m->name);
	return 0;
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int spoke_stream_emit(spoke_call_ctx *ctx, const void *data, size_t len, int timeout_ms)
{
	bool wait = timeout_ms > 0 && !spk_worker_on_loop();
	struct timespec until;
	int rc;

	spk_errmsg_clear();
	if (!ctx)
		return spk_fail(SPOKE_EINVAL, "spoke_stream_emit: NULL context");
	if (!data && len)
		return spk_fail(SPOKE_EINVAL, "spoke_stream_emit: NULL data of %zu bytes", len);
	if (len > spk_worker_max_msg())
		return spk_fail(SPOKE_ETOOBIG, "spoke_stream_emit: a chunk of %zu bytes, over this "
				"actor's maximum of %u (SPOKE_MAX_MSG)", len, spk_worker_max_msg());
	if (wait)
		deadline_in(&until, timeout_ms);
	pthread_mutex_lock(&K.lock);
	while ((rc = emit_refused(ctx)) == 0 && queue_full(ctx, len)) {
		if (wait && pthread_cond_timedwait(&K.room, &K.lock, &until) == 0)
			continue;
		rc = emit_refused(ctx);
		if (rc == 0 && queue_full(ctx, len))
			rc = spk_fail(SPOKE_EAGAIN, "spoke_stream_emit: the reader of call %s is "
				      "behind (%zu bytes wait)", ctx->m->name, ctx->q_len - ctx->q_head);
		break;
	}
	if (rc == 0 && reserve(&ctx->q, &ctx->q_cap, ctx->q_len + 4 + len) < 0)
		rc = spk_fail(-ENOMEM, "spoke_stream_emit: out of memory for a chunk of %zu bytes",
			      len);
	if (rc == 0) {
		uint32_t n = (uint32_t)len;

		memcpy(ctx->q + ctx->q_len, &n, 4);
		if (len)
			memcpy(ctx->q + ctx->q_len + 4, data, len);
		ctx->q_len += 4 + len;
		if (!ctx->streaming) {
			ctx->streaming = true;
			ctx->snext = K.streams;
			K.streams = ctx;
		}
	}
	pthread_mutex_unlock(&K.lock);
	if (rc == 0)
		wake_loop();
	return rc;
}

/* ---- the threads of max_concurrency ---- */

static int grow_rep(spoke_buf *b, size_t need)
{
	spoke_call_ctx *c = b->owner;
	size_t want = c->rep_cap ? c->rep_cap : 4096;

	if (need > spk_worker_max_msg() + (size_t)1)
		return SPOKE_ETOOBIG;
	while (want < need)
		want *= 2;
	if (reserve(&c->rep, &c->rep_cap, want) < 0)
		return -ENOMEM;
	b->data = c->rep;
	b->cap = c->rep_cap;
	return 0;
}

static void run_on_thread(spoke_call_ctx *c)
{
	char msg[SPK_REPLY_ERROR_MAX];
	struct spk_running r = { .m = c->m, .ctx = c };
	spoke_buf b;
	int status, code = 0;

	spoke_view_init(&r.req, c->req, c->req_len);
	spoke_buf_init(&b, c->rep, c->rep_cap);
	b.grow = grow_rep;
	b.owner = c;
	r.reply = &b;
	msg[0] = '\0';
	status = spk_worker_invoke(&r, &code, msg, sizeof(msg));
	if (r.kept) /* the method answers it itself, now or later */
		return;
	atomic_store(&c->state, K_FINISHING);
	set_answer(c, status, code, msg, b.len);
	done(c);
}

static void *thread_main(void *arg)
{
	spoke_call_ctx *c;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&K.lock);
		while (!K.work_head && !K.stopping)
			pthread_cond_wait(&K.work, &K.lock);
		if (K.stopping) {
			pthread_mutex_unlock(&K.lock);
			return NULL;
		}
		c = pop(&K.work_head, &K.work_tail);
		K.running++;
		pthread_mutex_unlock(&K.lock);
		run_on_thread(c);
		pthread_mutex_lock(&K.lock);
		K.running--;
		pthread_mutex_unlock(&K.lock);
	}
}

int spk_kept_submit(const struct spk_call_origin *from, const spoke_method *m, spoke_view *req,
		    char *msg, size_t cap)
{
	spoke_call_ctx *c = take(m, from, req,
				 from->ttl_ms ? spk_now_us() + (int64_t)from->ttl_ms * 1000 : 0);

	if (!c) {
		snprintf(msg, cap, "actor %s: out of memory for a call of method %s",
			 spk_worker_name(), m->name);
		return -ENOMEM;
	}
	atomic_store(&c->state, K_RUNNING);
	pthread_mutex_lock(&K.lock);
	push(&K.work_head, &K.work_tail, c);
	pthread_cond_signal(&K.work);
	pthread_mutex_unlock(&K.lock);
	return SPK_KEPT;
}

/* ---- the loop's side ---- */

/* Cancels the calls kept on conn (all, or the one of id): the flag, then
 * each callback, on the loop's thread. */
static unsigned cancel_where(void *conn, bool all, uint64_t id)
{
	spoke_call_ctx *fire[64];
	unsigned n, matched = 0;

	do { /* callbacks run unlocked, at most 64 a round */
		n = 0;
		pthread_mutex_lock(&K.lock);
		for (spoke_call_ctx *c = K.all; c; c = c->all) {
			int st = atomic_load(&c->state);

			if (st == K_FREE || c->from.conn != conn || (!all && c->from.id != id))
				continue;
			atomic_store(&c->cancelled, 1);
			c->gone = c->gone || all;
			matched++;
			if (c->on_cancel && !c->cancel_ran && (st == K_KEPT || st == K_RUNNING) &&
			    n < 64) {
				c->cancel_ran = true;
				fire[n++] = c;
			}
		}
		pthread_cond_broadcast(&K.room); /* emitters waiting for room */
		pthread_mutex_unlock(&K.lock);
		for (unsigned i = 0; i < n; i++)
			fire[i]->on_cancel(fire[i], fire[i]->cancel_arg);
	} while (n == 64);
	return matched;
}

/* CANCELs that named no call kept: calls still waiting behind a kept one
 * on their connection (or answered already: ids only grow, so those never
 * match).  The loop's thread only; the oldest is forgotten first. */
#define PRECANCEL_MAX 64
static struct precancel {
	void *conn;
	uint64_t id;
} pre[PRECANCEL_MAX];
static unsigned n_pre, next_pre;

void spk_kept_gone(void *conn)
{
	/* No answer reaches the connection now, finished already or not:
	 * answer() drops cancelled calls. */
	cancel_where(conn, true, 0);
	for (unsigned i = 0; i < n_pre; i++)
		if (pre[i].conn == conn)
			pre[i].conn = NULL;
}

void spk_kept_cancel(void *conn, uint64_t id)
{
	if (cancel_where(conn, false, id))
		return;
	pre[next_pre] = (struct precancel){ conn, id };
	next_pre = (next_pre + 1) % PRECANCEL_MAX;
	if (n_pre < PRECANCEL_MAX)
		n_pre++;
}

bool spk_kept_precancelled(void *conn, uint64_t id)
{
	for (unsigned i = 0; i < n_pre; i++)
		if (pre[i].conn == conn && pre[i].id == id) {
			pre[i].conn = NULL;
			return true;
		}
	return false;
}

int spk_kept_start(struct ev_loop *loop, unsigned threads)
{
	int rc;

	K.loop = loop;
	ev_async_init(&K.wake, wake_cb);
	ev_async_start(loop, &K.wake);
	ev_timer_init(&K.retry, retry_cb, RETRY_S, RETRY_S);
	ev_timer_init(&K.expiry, expiry_cb, EXPIRY_S, EXPIRY_S); /* while a kept call has a deadline */
	K.started = true;
	if (threads <= 1)
		return 0;
	if (threads > THREADS_MAX)
		threads = THREADS_MAX;
	K.threads = calloc(threads, sizeof(*K.threads));
	if (!K.threads)
		return -ENOMEM;
	for (K.n_threads = 0; K.n_threads < threads; K.n_threads++) {
		rc = pthread_create(&K.threads[K.n_threads], NULL, thread_main, NULL);
		if (rc != 0)
			return spk_fail(-rc, "cannot start thread %u of %u: %s", K.n_threads + 1,
					threads, strerror(rc));
	}
	return 0;
}

void spk_kept_stop(int wait_ms)
{
	struct timespec ts;

	if (!K.started)
		return;
	pthread_mutex_lock(&K.lock);
	K.stopping = true;
	pthread_cond_broadcast(&K.work);
	pthread_mutex_unlock(&K.lock);
	deadline_in(&ts, wait_ms);
	for (unsigned i = 0; i < K.n_threads; i++)
		if (pthread_timedjoin_np(K.threads[i], NULL, &ts) != 0)
			spk_warn("actor %s: a method still runs on thread %u; exiting without it",
				 spk_worker_name(), i + 1);
	ev_async_stop(K.loop, &K.wake);
	ev_timer_stop(K.loop, &K.retry);
	ev_timer_stop(K.loop, &K.expiry);
	K.started = false;
}

/* worker.h - what the parts of a worker process share (worker.c serves the
 * actor; kept.c keeps the calls answered later and runs the threads of an
 * actor with max_concurrency; hooks.c gives an engine the loop's timers and
 * descriptors).  Internal: nothing here is part of the public API. */
#ifndef SPK_WORKER_H
#define SPK_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <spoke/actor.h>

#include "transport/transport.h"

struct ev_loop;

#define SPK_FAIL_MSG_MAX 384 /* a method's own message (spoke_method_fail) */

/* The call a thread runs now (the loop's, or one of kept.c's threads). */
struct spk_running {
	const spoke_method *m;
	spoke_buf *reply;                   /* the method's reply buffer */
	const struct spk_call_origin *from; /* NULL on a thread of kept.c's */
	spoke_view req;                     /* the whole request, as the method got it */
	spoke_call_ctx *ctx;                /* its context: a thread's, or spoke_call_defer's */
	bool kept;                          /* the method called spoke_call_defer */
	int64_t deadline;                   /* spk_now_us() the caller waits until, 0: none */
	int64_t t0;                         /* spk_now_us() it came (stats.c), 0: not counted */
	char fail_msg[SPK_FAIL_MSG_MAX];    /* spoke_method_fail's, if it gave one */
};

/* This thread's running call, or NULL. */
extern __thread struct spk_running *spk_running;

/* worker.c */
struct ev_loop *spk_worker_loop(void);
bool spk_worker_on_loop(void); /* whether this thread runs the loop */
const char *spk_worker_name(void);
uint32_t spk_worker_max_msg(void);
void spk_worker_served(void); /* a reply went out (the spin loop's idle clock) */
/* Runs r->m on r->req into r->reply as the running call of this thread;
 * returns the REPLY's status as spk_method_fn does (never SPK_KEPT: the
 * caller looks at r->kept). */
int spk_worker_invoke(struct spk_running *r, int *code, char *msg, size_t cap);
/* The message of a method that failed with code, as the caller reads it. */
void spk_worker_fail_msg(const spoke_method *m, int code, const char *own, char *msg, size_t cap);

/* kept.c */
/* Starts the loop's side (and `threads` threads, where more than 1). */
int spk_kept_start(struct ev_loop *loop, unsigned threads);
/* Stops the threads, waiting for a running method up to wait_ms. */
void spk_kept_stop(int wait_ms);
/* Hands a call to the threads: SPK_KEPT, or a negative status with its
 * message in msg. */
int spk_kept_submit(const struct spk_call_origin *from, const spoke_method *m, spoke_view *req,
		    char *msg, size_t cap);
/* Sends what finished calls and streams have ready now, instead of at the
 * loop's next turn: on the loop's thread, outside any method and any
 * transport's serving (the TCP path, right after a method kept its call:
 * a stream's first chunk goes out at once). */
void spk_kept_answer_now(void);
/* env.gone: the calls kept on conn are cancelled. */
void spk_kept_gone(void *conn);
/* A CANCEL came on conn: its call id, if kept, is cancelled; if it is not
 * there yet (it waits behind a kept call), it is remembered... */
void spk_kept_cancel(void *conn, uint64_t id);
/* ...and this says so when it comes (once): it is answered SPOKE_ECANCELED
 * and its method never runs. */
bool spk_kept_precancelled(void *conn, uint64_t id);

/* stats.c */
/* Reads $SPOKE_STATS_MS: 0, or SPOKE_EINVAL with why in spoke_errmsg(). */
int spk_stats_settings(void);
/* Whether calls are counted (then the caller reads the clock for t0). */
bool spk_stats_on(void);
/* Counts one call of m (a method of the actor's type; NULL: not counted)
 * as its answer goes: its REPLY's status, request and reply bytes, and
 * t0, spk_now_us() when it came.  The loop's thread only. */
void spk_stats_count(const spoke_method *m, int status, size_t in, size_t out, int64_t t0);
/* Starts reporting to the agent on agent_fd, every $SPOKE_STATS_MS. */
int spk_stats_start(struct ev_loop *loop, const spoke_actor_type *type, int agent_fd);
void spk_stats_stop(struct ev_loop *loop);

#endif

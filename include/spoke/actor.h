/* spoke/actor.h - defining actor types and running workers.
 *
 * An actor type is a name, the size of its per-instance state, init and fini
 * hooks, and a table of methods.  A method reads its request in place (a
 * view of the receive buffer) and writes its reply straight into the reply
 * buffer that the runtime hands it; it returns 0 or a negative code.
 *
 * A method's failure never looks like the runtime's: whatever negative code
 * it returns (-1, -EINVAL, even SPOKE_EDEAD), the caller's spoke_call()
 * returns SPOKE_EMETHOD, its spoke_errmsg() says "method NAME of actor X
 * failed: MESSAGE" and spoke_method_status() gives the method's own code.
 * MESSAGE is spoke_strerror(code), or the method's own text given with
 * spoke_method_fail().  The runtime's failures keep their own codes: no
 * such method is SPOKE_ENOMETHOD; a reply that cannot be packed (over
 * $SPOKE_MAX_MSG: SPOKE_ETOOBIG, or out of memory) fails with that code,
 * whatever the method returned, and a message naming the method; a request
 * over this worker's $SPOKE_MAX_MSG is SPOKE_ETOOBIG before any method runs.
 *
 *     static int hello(void *state, spoke_view *req, spoke_buf *reply)
 *     {
 *             return spoke_buf_put_str(reply, "Hello from Spoke!");
 *     }
 *     static const spoke_method my_methods[] = { { 1, "hello", hello } };
 *     static const spoke_actor_type my_actor = {
 *             .name = "MyActor", .methods = my_methods, .n_methods = 1,
 *     };
 *     SPOKE_REGISTER_ACTOR(my_actor);
 *
 * Actor code lives either in an actor module (a shared object that the
 * stock `spoke-worker` loads) or in the user's own program, which calls
 * spoke_worker_maybe_run() first thing in main(). */
#ifndef SPOKE_ACTOR_H
#define SPOKE_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include <spoke/export.h>
#include <spoke/serializer.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPOKE_TYPE_NAME_MAX 64   /* bytes, with the NUL */
#define SPOKE_ACTOR_NAME_MAX 128 /* bytes, with the NUL */
#define SPOKE_MAX_TYPES 64       /* actor types one process can register */

typedef int (*spoke_method_fn)(void *state, spoke_view *req, spoke_buf *reply);

typedef struct spoke_method {
	uint32_t id;
	const char *name;
	spoke_method_fn fn;
} spoke_method;

typedef struct spoke_actor_type {
	const char *name;
	size_t state_size; /* zeroed bytes handed to init, methods and fini */
	/* Called once in the worker before the spawn is acknowledged; a
	 * negative return fails the spawn with that code. May be NULL. */
	int (*init)(void *state, spoke_view *args);
	void (*fini)(void *state); /* may be NULL */
	const spoke_method *methods;
	size_t n_methods;
	/* How many of its calls may run at once, each on a thread of the
	 * worker's own (started after init): for methods that block on a GPU
	 * or a lock.  0 or 1: one at a time, on the worker's loop (the
	 * default).  With more, the actor's state is shared by the threads:
	 * locking it is the actor's business, and a method's request and reply
	 * are copied once more (to and from the thread).  Calls on one client
	 * connection are still answered in order: a handle's calls run at once
	 * when they come from different threads (each has a connection of its
	 * own) or different handles. */
	unsigned max_concurrency;
} spoke_actor_type;

/* Registers a type (normally through SPOKE_REGISTER_ACTOR at load time).
 * SPOKE_EEXIST if a type of that name is registered, SPOKE_ENOSPC past
 * SPOKE_MAX_TYPES. The type must outlive the process. */
SPOKE_API int spoke_actor_type_register(const spoke_actor_type *type);
SPOKE_API const spoke_actor_type *spoke_actor_type_find(const char *name);
/* Writes the registered type names, comma-separated, into buf. */
SPOKE_API void spoke_actor_type_list(char *buf, size_t cap);

#define SPOKE_REGISTER_ACTOR(type_var)                                         \
	__attribute__((constructor)) static void spoke_register_##type_var(void) \
	{                                                                        \
		spoke_actor_type_register(&(type_var));                          \
	}

/* In a method: fails the call with code (negative) and a message of the
 * method's own, which the caller reads in spoke_errmsg() after "method NAME
 * of actor X failed: ".  Returns code, for
 *
 *     if (n > max)
 *             return spoke_method_fail(reply, -EINVAL,
 *                                      "prompt of %u tokens is over %u", n, max);
 *
 * reply is the method's own reply buffer (what was packed into it is
 * dropped).  In a type's init, with reply NULL, the message is the spawn's
 * ("init of NAME (TYPE) failed: MESSAGE").  With a code >= 0, or outside a
 * method or init, it only returns code. */
SPOKE_API int spoke_method_fail(spoke_buf *reply, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- calls answered later: deferred replies ----
 *
 * A method that cannot answer at once (an engine that batches requests
 * from many callers into one step) keeps its call and answers it later,
 * from any thread:
 *
 *     static int generate(void *state, spoke_view *req, spoke_buf *reply)
 *     {
 *             spoke_call_ctx *ctx = spoke_call_defer(reply);
 *
 *             if (!ctx)
 *                     return spoke_method_fail(reply, -ENOMEM, "%s", "cannot defer");
 *             engine_admit(state, ctx);  // answered by a later step
 *             return 0;
 *     }
 *     ...
 *     spoke_call_finish(ctx, 0, tokens, n);  // any thread, exactly once
 *
 * The worker goes on serving other connections meanwhile.  Calls on one
 * client connection are answered in order, so the next call of the same
 * connection waits for this one (a handle gives each calling thread a
 * connection of its own).  A client that disconnects or dies cancels its
 * kept calls: spoke_call_cancelled() turns non-zero, the callback of
 * spoke_call_on_cancel() runs, and spoke_call_finish() still must be called
 * (it returns SPOKE_ECANCELED) to give the context back. */
typedef struct spoke_call_ctx spoke_call_ctx;

/* In a method: keeps the running call (reply is the method's own reply
 * buffer).  The method then returns 0 and what it packed is not sent.  The
 * request view the method got is valid only until it returns; the kept
 * call has its own copy: spoke_call_request().  NULL, with the reason in
 * spoke_errmsg(), outside a method, with another buffer, or where the call
 * cannot be kept (out of memory): the method then answers as usual.
 * Calling it again in the same method returns the same context. */
SPOKE_API spoke_call_ctx *spoke_call_defer(spoke_buf *reply);
/* The kept call's request (a copy, valid until spoke_call_finish) and its
 * method id. */
SPOKE_API spoke_view spoke_call_request(const spoke_call_ctx *ctx);
SPOKE_API uint32_t spoke_call_method(const spoke_call_ctx *ctx);
/* Answers a kept call, from any thread, exactly once: status 0 sends the
 * len bytes at data (copied before it returns) as the reply; a negative
 * status fails the call as a method returning it would (the caller gets
 * SPOKE_EMETHOD and spoke_method_status() == status), with data, if not
 * NULL, as the method's own message (len bytes of text).  Returns 0;
 * SPOKE_ECANCELED when the call was cancelled (nothing is sent; the
 * context is given back all the same); SPOKE_ETOOBIG when len is over the
 * actor's $SPOKE_MAX_MSG (the caller gets SPOKE_ETOOBIG); SPOKE_EINVAL for
 * NULL or a context that is not kept (finished already: ctx must not be
 * used after its finish, and a second finish is refused until the worker
 * reuses the context for another call). */
SPOKE_API int spoke_call_finish(spoke_call_ctx *ctx, int status, const void *data, size_t len);
/* The call's deadline: the CLOCK_MONOTONIC time, in microseconds, until
 * which its caller waits (its timeout), 0 if it has none; ctx NULL: the
 * call whose method runs on this thread.  A kept call still unanswered at
 * its deadline is answered SPOKE_ETIMEDOUT by the runtime, once, and
 * cancelled (spoke_call_cancelled, the cancel callback); its finish then
 * returns SPOKE_ETIMEDOUT and sends nothing. */
SPOKE_API int64_t spoke_call_deadline(const spoke_call_ctx *ctx);
/* Non-zero once the call was cancelled (its client went away, gave it up,
 * or its deadline passed). */
SPOKE_API int spoke_call_cancelled(const spoke_call_ctx *ctx);
/* fn(ctx, arg) runs once, on the worker's loop thread, when the call is
 * cancelled (at once if it is already); it may call spoke_call_finish(). */
SPOKE_API void spoke_call_on_cancel(spoke_call_ctx *ctx, void (*fn)(spoke_call_ctx *ctx, void *arg),
				    void *arg);

/* Streams (client.h: spoke_call_stream): a kept call whose caller reads a
 * stream sends chunks before its finish, from any thread:
 *
 *     spoke_stream_emit(ctx, token, n, 1000);  // any number of times
 *     spoke_call_finish(ctx, 0, NULL, 0);      // then the end (SPOKE_EOF)
 *
 * Returns 0 once the chunk (len bytes, copied) is queued to go out in
 * order; SPOKE_EAGAIN when the reader is behind and no room came within
 * timeout_ms (0: no wait; on the worker's loop thread it never waits: keep
 * the chunk for a later step); SPOKE_ECANCELED when the caller went away;
 * SPOKE_EINVAL when ctx is NULL, finished, or its caller did not ask for a
 * stream (a plain spoke_call: answer it with spoke_call_finish alone);
 * SPOKE_ETOOBIG over $SPOKE_MAX_MSG; SPOKE_ETRANSPORT where the call came
 * over a transport without streams.  At most SPOKE_STREAM_QUEUE bytes of
 * chunks wait in the worker per stream. */
#define SPOKE_STREAM_QUEUE (256u << 10)
/* Non-zero when the kept call's caller reads a stream (spoke_call_stream). */
SPOKE_API int spoke_call_is_stream(const spoke_call_ctx *ctx);
SPOKE_API int spoke_stream_emit(spoke_call_ctx *ctx, const void *data, size_t len, int timeout_ms);

/* ---- an engine's own loop work: timers and descriptors ----
 *
 * A step-driven engine runs on the worker's loop beside the calls it
 * serves, with no thread of its own: from init or a method (the loop's
 * thread), ask for a periodic step or to watch a descriptor.  Callbacks
 * run on the loop's thread, between calls, never inside a method. */
typedef struct spoke_worker_hook spoke_worker_hook;
#define SPOKE_READ 1
#define SPOKE_WRITE 2
/* fn(arg) every period_us microseconds (> 0), the first one period_us
 * from now.  NULL, with the reason in spoke_errmsg(), off the loop's
 * thread or out of memory. */
SPOKE_API spoke_worker_hook *spoke_worker_timer(unsigned period_us, void (*fn)(void *arg),
						void *arg);
/* fn(arg, revents) whenever fd is ready for events (SPOKE_READ,
 * SPOKE_WRITE or both). */
SPOKE_API spoke_worker_hook *spoke_worker_watch(int fd, int events,
						void (*fn)(void *arg, int revents), void *arg);
/* Stops and frees a hook (NULL: nothing); from the loop's thread, also
 * inside its own callback. */
SPOKE_API void spoke_worker_hook_stop(spoke_worker_hook *h);

/* In the worker: this actor's name, its GPUs ("0,1" or ""), NULL elsewhere. */
SPOKE_API const char *spoke_self_name(void);
SPOKE_API const char *spoke_self_gpus(void);

/* In a program that links its own actor types: call first thing in main().
 * If the agent started this process as a worker, it serves the actor and
 * exits (never returns); otherwise it returns 0 at once. */
SPOKE_API int spoke_worker_maybe_run(int argc, char **argv);

/* A worker program whose actor types come from elsewhere than shared
 * objects (spoke-worker-python imports Python modules) sets, before
 * spoke_worker_main(), the loader of the spawn's module string: load() gets
 * it whole (spoke_spawn_opts.module, else the agent's --module list; the
 * program's own syntax, not split at ':') before the type is looked up, and
 * registers the types it finds (spoke_actor_type_register).  A negative
 * return fails the spawn (SPOKE_ESPAWN) with the message it wrote into
 * msg (cap bytes).  NULL: shared objects, dlopen()ed (the default). */
typedef int (*spoke_module_loader)(const char *modules, char *msg, size_t cap);
SPOKE_API void spoke_worker_set_loader(spoke_module_loader load);

/* The body of the stock `spoke-worker` program. */
SPOKE_API int spoke_worker_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif

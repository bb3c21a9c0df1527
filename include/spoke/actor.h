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
 * dropped).  With a code >= 0, or outside a method, it only returns code. */
SPOKE_API int spoke_method_fail(spoke_buf *reply, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* In the worker: this actor's name, its GPUs ("0,1" or ""), NULL elsewhere. */
SPOKE_API const char *spoke_self_name(void);
SPOKE_API const char *spoke_self_gpus(void);

/* In a program that links its own actor types: call first thing in main().
 * If the agent started this process as a worker, it serves the actor and
 * exits (never returns); otherwise it returns 0 at once. */
SPOKE_API int spoke_worker_maybe_run(int argc, char **argv);

/* The body of the stock `spoke-worker` program. */
SPOKE_API int spoke_worker_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif

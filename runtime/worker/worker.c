/* worker.c - a worker process: one actor, serving calls.
 *
 * Started by the agent (spawn.c) with a socketpair on fd 3: it reads its
 * SPAWN_INFO there, loads the actor modules, runs the type's init, listens,
 * and only then answers READY with its port.  It then serves calls on a
 * libev loop: each CALL's method reads the request in place and packs its
 * reply straight into the connection's output buffer.  With a spin budget
 * (poll_us) the loop polls without sleeping for that long after the last
 * event, trading a core for the kernel's wake-up latency.  The TCP
 * connections are the control path: every other transport of the build
 * (transport.h) is started here too, answers its hello on them, and then
 * serves its own connections with the same methods (run_method). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include <spoke/actor.h>
#include <spoke/errors.h>

#include "sync_conn.h"
#include "clock.h"
#include "env.h"
#include "errmsg.h"
#include "loop_conn.h"
#include "log.h"
#include "proto.h"
#include "transport/transport.h"
#include "spawn.h"
#include "worker.h"

#define INFO_TIMEOUT_MS 10000
#define POLLS_PER_LOOP 64u /* transport polls per look at the sockets */
#define SERVERS_MAX 4
#define POLL_US_MAX 1000000     /* $SPOKE_POLL_US: a second of spinning at most */
/* A stream's chunks wait for their reader in the connection's output
 * buffer up to this much (then spoke_stream_emit is throttled). */
#define STREAM_ROOM (256u << 10)
#define SPK_STR_(x) #x
#define SPK_STR(x) SPK_STR_(x)

struct wconn {
	struct spk_loop_conn conn;
	struct wconn *next;
};

static struct worker_state {
	const spoke_actor_type *type;
	void *state;
	char name[SPOKE_ACTOR_NAME_MAX];
	char ident[SPK_IDENT_MAX]; /* "actor:NAME:INCARNATION", in handshakes */
	char gpus[SPK_GPU_LIST_MAX];
	char token[SPK_TOKEN_MAX];
	char host[SPK_ADDR_MAX];
	struct ev_loop *loop;
	int listen_fd;
	int agent_fd;
	int poll_us;
	struct spk_acceptor acceptor;
	ev_io agent_w;
	ev_signal sigterm_w, sigint_w;
	struct wconn *conns;
	struct server {
		const struct spk_server_ops *ops;
		void *srv;
	} servers[SERVERS_MAX]; /* the transports' other than TCP */
	unsigned n_servers;
	uint64_t frames;
	uint32_t max_msg;
	pthread_t loop_thread;
	bool running;
	spoke_module_loader loader; /* spoke_worker_set_loader's, NULL: dlopen */
	char init_msg[SPK_FAIL_MSG_MAX]; /* init's own message (spoke_method_fail) */
	bool in_init;
} W = { .listen_fd = -1, .agent_fd = -1 };

__thread struct spk_running *spk_running;

struct ev_loop *spk_worker_loop(void)
{
	return W.loop;
}

bool spk_worker_on_loop(void)
{
	return W.loop && pthread_equal(pthread_self(), W.loop_thread);
}

const char *spk_worker_name(void)
{
	return W.name;
}

uint32_t spk_worker_max_msg(void)
{
	return W.max_msg;
}

void spk_worker_served(void)
{
	W.frames++;
}

const char *spoke_self_name(void)
{
	return W.name[0] ? W.name : NULL;
}

const char *spoke_self_gpus(void)
{
	return W.name[0] ? W.gpus : NULL;
}

static const spoke_method *find_method(uint32_t id)
{
	for (size_t i = 0; i < W.type->n_methods; i++)
		if (W.type->methods[i].id == id)
			return &W.type->methods[i];
	return NULL;
}

void spk_worker_fail_msg(const spoke_method *m, int code, const char *own, char *msg, size_t cap)
{
	snprintf(msg, cap, "method %s of actor %s failed: %s", m->name, W.name,
		 own && own[0] ? own : spoke_strerror(code));
}

int spk_worker_invoke(struct spk_running *r, int *code, char *msg, size_t cap)
{
	const spoke_method *m = r->m;
	spoke_buf *reply = r->reply;
	int rc;

	*code = 0;
	r->fail_msg[0] = '\0';
	spk_running = r;
	rc = m->fn(W.state, &(spoke_view){ .data = r->req.data, .len = r->req.len }, reply);
	spk_running = NULL;
	if (r->kept)
		return 0;
	if (!reply->err && reply->len > W.max_msg) /* packed into room grown before */
		reply->err = SPOKE_ETOOBIG;
	if (reply->err == SPOKE_ETOOBIG) {
		snprintf(msg, cap, "the reply of method %s of actor %s is over this actor's "
			 "maximum of %u bytes (SPOKE_MAX_MSG)", m->name, W.name, W.max_msg);
		return SPOKE_ETOOBIG;
	}
	if (reply->err) {
		snprintf(msg, cap, "the reply of method %s of actor %s could not be packed: %s",
			 m->name, W.name, spoke_strerror(reply->err));
		return reply->err;
	}
	if (rc >= 0)
		return 0;
	*code = rc;
	spk_worker_fail_msg(m, rc, r->fail_msg, msg, cap);
	return SPOKE_EMETHOD;
}

/* Runs method id on req into reply, for every transport (spk_method_fn).
 * Returns 0, SPK_KEPT (the method kept the call, or a thread of an actor
 * with max_concurrency runs it), or the REPLY's negative status with its
 * message in msg: SPOKE_EMETHOD with the method's own code in *code when
 * the method failed, the runtime's own code (no such method, a reply that
 * could not be packed) otherwise. */
static int run_method(const struct spk_call_origin *from, uint32_t id, spoke_view *req,
		      spoke_buf *reply, int *code, char *msg, size_t cap)
{
	const spoke_method *m = find_method(id);
	struct spk_running r = { .m = m, .reply = reply, .from = from };
	int rc;

	*code = 0;
	if (!m) {
		snprintf(msg, cap, "actor %s (%s) has no method %u", W.name, W.type->name, id);
		return SPOKE_ENOMETHOD;
	}
	r.t0 = spk_stats_on() ? spk_now_us() : 0;
	if (spk_kept_precancelled(from->conn, from->id)) {
		snprintf(msg, cap, "call of method %s of actor %s was cancelled before it ran",
			 m->name, W.name);
		spk_stats_count(m, SPOKE_ECANCELED, req->len, 0, r.t0);
		return SPOKE_ECANCELED;
	}
	if (W.type->max_concurrency > 1 && from->answer)
		return spk_kept_submit(from, m, req, msg, cap); /* counted as answered */
	r.req = *req;
	r.req.pos = 0;
	r.deadline = from->ttl_ms ? spk_now_us() + (int64_t)from->ttl_ms * 1000 : 0;
	rc = spk_worker_invoke(&r, code, msg, cap);
	if (r.kept)
		return SPK_KEPT; /* counted as answered (kept.c) */
	spk_stats_count(m, rc, req->len, rc < 0 ? 0 : reply->len, r.t0);
	return rc;
}

int spoke_method_fail(spoke_buf *reply, int code, const char *fmt, ...)
{
	struct spk_running *r = spk_running;
	va_list ap;

	if (code < 0 && !reply && fmt && W.in_init && spk_worker_on_loop()) {
		va_start(ap, fmt); /* init's failure: the spawn's message */
		vsnprintf(W.init_msg, sizeof(W.init_msg), fmt, ap);
		va_end(ap);
		return code;
	}
	if (code >= 0 || !reply || !r || reply != r->reply || !fmt)
		return code;
	va_start(ap, fmt);
	vsnprintf(r->fail_msg, sizeof(r->fail_msg), fmt, ap);
	va_end(ap);
	return code;
}

void spoke_worker_set_loader(spoke_module_loader load)
{
	W.loader = load;
}

/* The TCP path's answer to a kept call (struct spk_call_origin). */
static int tcp_answer(void *conn, const struct spk_answer *a)
{
	struct spk_loop_conn *c = conn;
	spoke_buf reply;

	spk_loop_begin(c, &reply);
	if (a->status < 0)
		spk_reply_error_pack(&reply, a->status, a->code, a->msg);
	else
		spoke_buf_put_raw(&reply, a->data, a->len);
	spk_loop_finish(c, &reply, SPK_REPLY, a->id, a->status < 0 ? a->status : 0);
	spk_loop_flush(c);
	spk_loop_release(c);
	return 0;
}

/* The TCP path's CHUNK of a kept stream call (struct spk_call_origin). */
static int tcp_chunk(void *conn, uint64_t id, const void *data, size_t len)
{
	struct spk_loop_conn *c = conn;

	if (c->out_len - c->out_sent > STREAM_ROOM) {
		spk_loop_flush(c);
		if (c->out_len - c->out_sent > STREAM_ROOM)
			return SPOKE_EAGAIN;
	}
	spk_loop_queue(c, SPK_CHUNK, id, 0, data, len); /* a connection gone drops it */
	return 0;
}

static void tcp_flush(void *conn)
{
	spk_loop_flush(conn);
}

static void on_call(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *req)
{
	spoke_buf reply;
	char msg[SPK_REPLY_ERROR_MAX];
	int rc, code;

	W.frames++;
	for (unsigned i = 0; i < W.n_servers; i++)
		if (h->type == W.servers[i].ops->hello_type) {
			W.servers[i].ops->hello(W.servers[i].srv, c, h, req);
			return;
		}
	if (h->type == SPK_CANCEL) { /* out of line while c is held (loop_conn.h) */
		spk_kept_cancel(c, h->id);
		return;
	}
	if (h->type != SPK_CALL) {
		spk_warn("closed connection from %s: unexpected %s", c->peer, spk_type_name(h->type));
		spk_loop_close(c, SPOKE_EPROTO);
		return;
	}
	spk_loop_begin(c, &reply);
	rc = run_method(&(struct spk_call_origin){ .conn = c, .id = h->id,
						   .stream = (h->flags & SPK_CF_STREAM) != 0,
						   .ttl_ms = h->ttl_ms,
						   .answer = tcp_answer, .chunk = tcp_chunk,
						   .flush = tcp_flush },
			(uint32_t)h->aux, req, &reply, &code, msg, sizeof(msg));
	if (rc == SPK_KEPT) { /* what the method packed is not sent; the next calls wait */
		spk_loop_hold(c);
		spk_kept_answer_now();
		return;
	}
	if (rc < 0) {
		spk_loop_begin(c, &reply); /* what the method packed is dropped */
		spk_reply_error_pack(&reply, rc, code, msg);
		spk_loop_finish(c, &reply, SPK_REPLY, h->id, rc);
		return;
	}
	spk_loop_finish(c, &reply, SPK_REPLY, h->id, 0);
}

static void conn_closed(struct spk_loop_conn *c, int reason)
{
	struct wconn *wc = c->data;

	(void)reason;
	spk_kept_gone(c);
	for (struct wconn **pp = &W.conns; *pp; pp = &(*pp)->next)
		if (*pp == wc) {
			*pp = wc->next;
			break;
		}
	free(wc);
}

static void on_accept(struct spk_acceptor *acc, int fd, const char *peer)
{
	struct wconn *wc = calloc(1, sizeof(*wc));

	(void)acc;
	if (!wc) {
		close(fd);
		return;
	}
	if (spk_loop_start(&wc->conn, W.loop, fd, W.token, W.ident, peer, on_call, conn_closed,
			     wc) < 0) {
		close(fd);
		free(wc);
		return;
	}
	wc->conn.role = "actor";
	wc->conn.urgent = SPK_CANCEL;
	wc->next = W.conns;
	W.conns = wc;
}

static void stop_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	(void)revents;
	spk_debug("signal %d: stopping actor %s", s->signum, W.name);
	W.running = false;
	ev_break(loop, EVBREAK_ALL);
}

/* The agent's end of fd 3 closed: the agent is gone, so are we. */
static void agent_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	char junk[256];
	ssize_t n = recv(w->fd, junk, sizeof(junk), MSG_DONTWAIT);

	(void)revents;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		spk_warn("actor %s: the agent went away; exiting", W.name);
		W.running = false;
		ev_break(loop, EVBREAK_ALL);
	}
}

static int ready(struct spk_sync_conn *ch, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Answers the agent that the actor could not start, and why. */
static int ready(struct spk_sync_conn *ch, int status, const char *fmt, ...)
{
	int64_t deadline = spk_now_us() + INFO_TIMEOUT_MS * 1000LL;
	char msg[512];
	spoke_buf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	spk_err("%s", msg);
	spk_sync_begin(ch, &b);
	spk_error_text_pack(&b, msg);
	spk_sync_send_buf(ch, &b, SPK_READY, 0, status, deadline);
	return status;
}

static int load_modules(struct spk_sync_conn *ch, const char *modules)
{
	char list[SPK_PATH_MAX * 4], *save = NULL, *m;

	if (W.loader) { /* the program's own syntax, whole (spoke-worker-python) */
		char msg[SPK_REPLY_ERROR_MAX] = "";

		if (W.loader(modules, msg, sizeof(msg)) < 0)
			return ready(ch, SPOKE_ESPAWN, "%s", msg[0] ? msg : "the module loader failed");
		return 0;
	}
	snprintf(list, sizeof(list), "%s", modules);
	for (m = strtok_r(list, ":", &save); m; m = strtok_r(NULL, ":", &save))
		if (!dlopen(m, RTLD_NOW | RTLD_LOCAL))
			return ready(ch, SPOKE_ESPAWN, "cannot load actor module %s", dlerror());
	return 0;
}

/* The worker's settings from its environment (a spawn's own spin budget,
 * poll_us >= 0, wins over $SPOKE_POLL_US); a bad value fails the spawn with
 * a message naming the variable and the value. */
static int read_settings(struct spk_sync_conn *ch, int poll_us)
{
	const char *v;

	W.max_msg = spk_max_payload();
	W.poll_us = poll_us >= 0 ? poll_us : 0;
	if (poll_us < 0 &&
	    spk_env_int("SPOKE_POLL_US", 0, POLL_US_MAX, 0, "microseconds to spin", &W.poll_us) < 0)
		return ready(ch, SPOKE_EINVAL, "%s", spoke_errmsg());
	/* A transport this build lacks is the clients' business, not ours. */
	if (spk_transport_from_env(&(struct spk_transport_choice){ .n = 0 }) == SPOKE_EINVAL)
		return ready(ch, SPOKE_EINVAL, "%s", spoke_errmsg());
	if (spk_stats_settings() < 0)
		return ready(ch, SPOKE_EINVAL, "%s", spoke_errmsg());
	v = getenv("SPOKE_RDMA_DEVICE");
	if (v && !*v)
		return ready(ch, SPOKE_EINVAL,
			     "SPOKE_RDMA_DEVICE is empty: name a device (mlx5_0, rxe0) or unset it");
	return 0;
}

/* Reads SPAWN_INFO, becomes the actor, answers READY. */
static int become_actor(struct spk_sync_conn *ch)
{
	int64_t deadline = spk_now_us() + INFO_TIMEOUT_MS * 1000LL;
	char bound[SPK_ADDR_MAX], host[SPK_ADDR_MAX], types[512];
	struct spk_spawn_info info;
	struct spk_spawn_spec *spec = &info.spec;
	struct spk_ready r;
	const uint8_t *p;
	struct spk_hdr h;
	spoke_view v, args;
	spoke_buf b;
	int rc;

	rc = spk_sync_recv_hdr(ch, &h, deadline);
	if (rc == 0 && h.type != SPK_SPAWN_INFO)
		rc = SPOKE_EPROTO;
	if (rc == 0)
		rc = spk_sync_recv_view(ch, h.len, &p, deadline);
	if (rc < 0) {
		spk_err("no spawn information from the agent: %s", spoke_strerror(rc));
		return rc;
	}
	spoke_view_init(&v, p, h.len);
	if (spk_spawn_info_unpack(&v, &info) < 0)
		return ready(ch, SPOKE_EPROTO, "malformed spawn information");
	memcpy(W.token, info.token, sizeof(W.token));
	memcpy(W.host, info.host, sizeof(W.host));
	snprintf(W.name, sizeof(W.name), "%s", spec->name);
	spk_ident_actor(W.ident, W.name, info.incarnation);
	spk_gpu_list_format(W.gpus, sizeof(W.gpus), spec->gpus, spec->n_gpus);
	rc = read_settings(ch, spec->poll_us);
	if (rc == 0)
		rc = load_modules(ch, info.modules);
	if (rc < 0)
		return rc;
	W.type = spoke_actor_type_find(spec->type);
	if (!W.type) {
		spoke_actor_type_list(types, sizeof(types));
		return ready(ch, SPOKE_ENOTYPE, "unknown actor type '%s' (known here: %s)", spec->type,
			     types[0] ? types : "none; name a module that defines it");
	}
	W.state = calloc(1, W.type->state_size ? W.type->state_size : 1);
	if (!W.state)
		return ready(ch, -ENOMEM, "out of memory for the actor's state");
	W.listen_fd = spk_listen(W.host, 0, bound, sizeof(bound));
	if (W.listen_fd < 0)
		return ready(ch, W.listen_fd, "cannot listen on %s: %s", W.host,
			     spoke_strerror(W.listen_fd));
	/* The loop comes first: init may ask it for timers (spoke_worker_timer). */
	W.loop = EV_DEFAULT;
	W.loop_thread = pthread_self();
	if (W.type->init) {
		spoke_view_init(&args, spec->args, spec->args_len);
		W.in_init = true;
		rc = W.type->init(W.state, &args);
		W.in_init = false;
		if (rc < 0)
			return ready(ch, rc, "init of %s (%s) failed: %s", W.name, W.type->name,
				     W.init_msg[0] ? W.init_msg : spoke_strerror(rc));
	}
	rc = spk_kept_start(W.loop, W.type->max_concurrency);
	if (rc < 0)
		return ready(ch, rc, "actor %s (%s): %s", W.name, W.type->name, spoke_errmsg());
	spk_parse_hostport(bound, host, sizeof(host), &r.port);
	spk_debug("actor %s (%s) listening on %s", W.name, W.type->name, bound);
	/* Init returned and the socket listens: now the spawn may be acknowledged. */
	spk_sync_begin(ch, &b);
	spk_ready_pack(&b, &r);
	return spk_sync_send_buf(ch, &b, SPK_READY, 0, 0, deadline);
}

/* Serves what the transports have ready without sleeping (arm: and asks
 * each to wake the loop on its next message); how many connections they
 * looked at. */
static unsigned poll_servers(bool arm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < W.n_servers; i++)
		if (W.servers[i].ops->poll)
			n += W.servers[i].ops->poll(W.servers[i].srv, arm);
	return n;
}

/* Starts the server of every transport that has one; a transport that
 * cannot work here still answers its hellos with why. */
static void start_servers(void)
{
	struct spk_server_env env = {
		.loop = W.loop,
		.host = W.host,
		.token = W.token,
		.ident = W.ident,
		.spin = W.poll_us > 0,
		.run = run_method,
		.gone = spk_kept_gone,
		.cancel = spk_kept_cancel,
		.frames = &W.frames,
	};

	for (const struct spk_transport *const *t = spk_transports; *t; t++) {
		struct server *s = &W.servers[W.n_servers];

		if (!(*t)->server || W.n_servers == SERVERS_MAX)
			continue;
		s->ops = (*t)->server;
		if (s->ops->start(&s->srv, &env) < 0) {
			spk_warn("actor %s: %s not started: out of memory", W.name, (*t)->name);
			continue;
		}
		W.n_servers++;
	}
}

static void stop_servers(void)
{
	while (W.n_servers--)
		W.servers[W.n_servers].ops->stop(W.servers[W.n_servers].srv);
}

static void serve(void)
{
	int64_t idle_since = 0; /* when the loop last found nothing to do, 0: busy */
	uint64_t seen = W.frames;

	W.running = true;
	if (W.poll_us <= 0) {
		ev_run(W.loop, 0);
		return;
	}
	while (W.running) {
		ev_run(W.loop, EVRUN_NOWAIT);
		/* RDMA queues and shared rings are polled in user space: look at
		 * them many times per look at the sockets (a system call), and go
		 * on looking while they bring calls: a pipelined client's next
		 * call is usually there by the time this one is answered. */
		for (unsigned n = 0, k = 1; n < POLLS_PER_LOOP && k; n += k)
			k = poll_servers(false);
		/* The clock is read only while idle: a busy loop never asks it. */
		if (W.frames != seen) {
			seen = W.frames;
			idle_since = 0;
		} else if (!idle_since) {
			idle_since = spk_now_us();
		} else if (spk_now_us() - idle_since > W.poll_us) {
			poll_servers(true); /* their messages wake us now */
			if (W.frames == seen)
				ev_run(W.loop, EVRUN_ONCE);
			idle_since = 0;
		}
	}
}

static int run_worker(void)
{
	const char *fd_env;
	struct spk_sync_conn ch;
	int rc;

	spk_log_init("worker", SPK_LOG_WARN);
	spk_raise_fd_limit(); /* every connection is a descriptor */
	signal(SIGPIPE, SIG_IGN);
	/* spoke-agent sets it to SPK_WORKER_FD_NUM, its end of our socketpair. */
	fd_env = getenv(SPK_WORKER_FD_ENV);
	if (strcmp(fd_env, SPK_STR(SPK_WORKER_FD_NUM)) != 0 ||
	    fcntl(SPK_WORKER_FD_NUM, F_GETFD) < 0) {
		spk_err(SPK_WORKER_FD_ENV "=%s: %s; only spoke-agent starts workers (unset it to "
			"run this program by hand)", fd_env,
			strcmp(fd_env, SPK_STR(SPK_WORKER_FD_NUM)) != 0
				? "expected " SPK_STR(SPK_WORKER_FD_NUM)
				: "descriptor " SPK_STR(SPK_WORKER_FD_NUM) " is not open");
		return 1;
	}
	rc = spk_auth_init();
	if (rc < 0)
		return 1;
	rc = spk_sync_attach(&ch, SPK_WORKER_FD_NUM, "agent", 0);
	if (rc < 0)
		return 1;
	W.agent_fd = SPK_WORKER_FD_NUM;
	/* What the actor itself starts is not a worker of ours. */
	unsetenv(SPK_WORKER_FD_ENV);
	fcntl(SPK_WORKER_FD_NUM, F_SETFD, FD_CLOEXEC);
	rc = become_actor(&ch);
	ch.fd = -1; /* fd 3 stays open: its closing tells us the agent died */
	spk_sync_close(&ch);
	if (rc < 0)
		goto out;
	ev_io_init(&W.agent_w, agent_cb, W.agent_fd, EV_READ);
	ev_signal_init(&W.sigterm_w, stop_cb, SIGTERM);
	ev_signal_init(&W.sigint_w, stop_cb, SIGINT);
	spk_acceptor_start(&W.acceptor, W.loop, W.listen_fd, on_accept, NULL);
	ev_io_start(W.loop, &W.agent_w);
	ev_signal_start(W.loop, &W.sigterm_w);
	ev_signal_start(W.loop, &W.sigint_w);
	start_servers();
	if (spk_stats_start(W.loop, W.type, W.agent_fd) < 0)
		spk_warn("actor %s: out of memory: its calls are not counted", W.name);
	serve();
	while (W.conns)
		spk_loop_close(&W.conns->conn, 0);
	stop_servers();
	spk_stats_stop(W.loop);
	spk_kept_stop(2000);
	if (W.type->fini)
		W.type->fini(W.state);
out:
	if (W.listen_fd >= 0)
		close(W.listen_fd);
	free(W.state);
	return rc < 0 ? 1 : 0;
}

int spoke_worker_maybe_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (!getenv(SPK_WORKER_FD_ENV))
		return 0;
	exit(run_worker());
}

int spoke_worker_main(int argc, char **argv)
{
	if (!getenv(SPK_WORKER_FD_ENV)) {
		fprintf(stderr,
			"Usage: %s\n"
			"The stock Spoke worker. spoke-agent starts it, one per actor, with the\n"
			"actor modules to load; it is not meant to be run by hand.\n",
			argc > 0 ? argv[0] : "spoke-worker");
		return 2;
	}
	return run_worker();
}

/* agent.c - the agent process: node registration and worker supervision.
 *
 * A START from the hub forks a worker (spawn.c) with the actor's GPUs in
 * CUDA_VISIBLE_DEVICES and a socketpair on fd 3.  The agent sends it
 * SPAWN_INFO over that pair; the worker answers READY once its init has
 * returned and it listens; only then does the agent answer the hub.  When a
 * worker ends, EXITED names it by its START id, so that a late report can
 * never be taken for a newer actor of the same name.
 *
 * A START that allows restarts (spawn spec max_restarts) is kept: when its
 * worker dies, not stopped, the agent tells the hub (EXITED with the
 * restart's number: the GPUs stay reserved), waits the backoff, and starts
 * it again from the same START under the same name on the same GPUs, a new
 * incarnation (spk_incarnation); its READY goes to the hub as RESTARTED.
 * Past the maximum, or when a restart cannot start, EXITED with 0 ends it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include <spoke/errors.h>
#include <spoke/version.h>

#include "sync_conn.h"
#include "clock.h"
#include "errmsg.h"
#include "loop_conn.h"
#include "gpus.h"
#include "log.h"
#include "proto.h"
#include "spawn.h"

#define SPAWN_TIMEOUT_MS 30000
#define STOP_GRACE_S 2.0
#define SHUTDOWN_GRACE_S 1.0

extern char **environ;

struct worker {
	struct agent *ag;
	char name[SPOKE_ACTOR_NAME_MAX];
	pid_t pid;
	uint64_t op;       /* the hub's START id, 0 once answered */
	uint64_t start_id; /* the same, kept: it names this incarnation to the hub */
	bool failed;       /* its start failed, and the hub was told */
	bool stopping;     /* SIGTERM sent: the timer is the SIGKILL's */
	uint8_t *start;    /* the START's payload, kept for restarts, or NULL */
	uint32_t start_len;
	uint32_t restarts; /* done so far: this incarnation's number */
	uint32_t max_restarts, backoff_ms;
	bool waiting;      /* dead, its restart after the backoff (pid 0) */
	bool ready;        /* this incarnation sent its READY */
	struct spk_loop_conn link;
	bool link_open;
	ev_timer timer;
	uint32_t timeout_ms;
	struct worker *next;
};

struct agent {
	struct ev_loop *loop;
	struct spk_loop_conn hub;
	ev_child child_w;
	ev_signal sigint_w, sigterm_w;
	ev_timer shutdown_w;
	char token[SPK_TOKEN_MAX];
	char node[SPOKE_NODE_NAME_MAX];
	char host[SPK_ADDR_MAX];
	char worker_path[PATH_MAX];
	const char *modules;
	struct spk_register reg;
	struct worker *workers;
	bool shutting_down;
	int exit_code;
};

static void reply_hub_error(struct agent *ag, uint64_t op, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void reply_hub_error(struct agent *ag, uint64_t op, int status, const char *fmt, ...)
{
	char msg[512], esc[SPK_ESC_CAP(sizeof(msg))];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* It may quote a worker's own text (its init's error). */
	spk_warn("%s", spk_log_escape(esc, sizeof(esc), msg, strlen(msg)));
	spk_loop_reply_error(&ag->hub, op, status, "%s", msg);
}

static struct worker *find_worker_pid(struct agent *ag, pid_t pid)
{
	for (struct worker *w = ag->workers; w; w = w->next)
		if (w->pid == pid)
			return w;
	return NULL;
}

static void link_closed(struct spk_loop_conn *c, int reason)
{
	struct worker *w = c->data;

	(void)reason;
	w->link_open = false;
}

/* A running worker's call figures (STATS): checked, then on to the hub,
 * named by the worker's START id. */
static void forward_stats(struct worker *w, spoke_view *v)
{
	static struct spk_stats s; /* the loop's thread only */
	spoke_view check = *v;

	if (spk_stats_unpack(&check, &s) < 0 || spoke_view_remaining(&check)) {
		spk_warn("worker %s (pid %d) sent malformed STATS", w->name, (int)w->pid);
		return;
	}
	spk_loop_send(&w->ag->hub, SPK_STATS, w->start_id, 0, v->data + v->pos,
		      v->len - v->pos);
}

static void worker_frame(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *v)
{
	struct worker *w = c->data;
	struct agent *ag = w->ag;
	struct spk_endpoint ep = { .pid = (uint32_t)w->pid, .incarnation = w->start_id };
	struct spk_ready r;
	char text[512], esc[SPK_ESC_CAP(sizeof(text))];
	spoke_buf b;

	if (h->type == SPK_STATS && w->ready && !w->failed) {
		forward_stats(w, v);
		return;
	}
	if (h->type != SPK_READY || w->ready || w->failed || w->waiting) {
		spk_warn("worker %s (pid %d) sent an unexpected %s", w->name, (int)w->pid,
			 spk_type_name(h->type));
		return;
	}
	w->ready = true;
	/* A READY that crossed our STOP leaves the SIGKILL timer running. */
	if (!w->stopping)
		ev_timer_stop(ag->loop, &w->timer);
	if (h->aux < 0 && !w->op) {
		/* A restart's init failed: its exit is one more death. */
		spk_error_text_unpack(v, text, sizeof(text));
		spk_warn("actor %s: restart %u failed: %s", w->name, w->restarts,
			 spk_log_escape(esc, sizeof(esc), text, strlen(text)));
		return;
	}
	if (h->aux < 0) {
		spk_error_text_unpack(v, text, sizeof(text));
		reply_hub_error(ag, w->op, h->aux, "actor %s on %s: %s", w->name, ag->node, text);
		w->op = 0;
		w->failed = true;
		return;
	}
	if (spk_ready_unpack(v, &r) < 0) {
		if (w->op)
			reply_hub_error(ag, w->op, SPOKE_EPROTO, "actor %s on %s: malformed READY",
					w->name, ag->node);
		w->op = 0;
		kill(w->pid, SIGKILL);
		return;
	}
	snprintf(ep.addr, sizeof(ep.addr), strchr(ag->host, ':') ? "[%s]:%u" : "%s:%u", ag->host,
		 r.port);
	snprintf(ep.node, sizeof(ep.node), "%s", ag->node);
	ep.incarnation = spk_incarnation(w->start_id, w->restarts);
	spk_info("actor %s ready: pid %d at %s%s", w->name, (int)w->pid, ep.addr,
		 w->op ? "" : " (restarted)");
	spk_loop_begin(&ag->hub, &b);
	spk_endpoint_pack(&b, &ep);
	if (w->op)
		spk_loop_finish(&ag->hub, &b, SPK_REPLY, w->op, 0);
	else
		spk_loop_finish(&ag->hub, &b, SPK_RESTARTED, w->start_id, (int32_t)w->restarts);
	w->op = 0;
}

static void restart_worker(struct worker *w);

static void worker_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct worker *w = t->data;

	(void)loop;
	(void)revents;
	if (w->waiting) {
		restart_worker(w);
		return;
	}
	if (w->op) {
		reply_hub_error(w->ag, w->op, SPOKE_ETIMEDOUT,
				"actor %s on %s did not finish its init within %u ms", w->name,
				w->ag->node, w->timeout_ms);
		w->op = 0;
		w->failed = true;
	} else if (!w->ready && !w->stopping) {
		spk_warn("actor %s: restart %u did not finish its init within %u ms; killing it",
			 w->name, w->restarts, w->timeout_ms);
	} else {
		spk_warn("actor %s (pid %d) ignored SIGTERM; killing it", w->name, (int)w->pid);
	}
	kill(w->pid, SIGKILL);
}

static void describe_status(char *out, size_t cap, int status)
{
	if (WIFEXITED(status))
		snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, cap, "ended with wait status %#x", status);
}

static void free_worker(struct agent *ag, struct worker *w)
{
	for (struct worker **pp = &ag->workers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	ev_timer_stop(ag->loop, &w->timer);
	if (w->link_open)
		spk_loop_close(&w->link, 0);
	free(w->start);
	free(w);
}

/* Tells the hub that w's actor died (why), h->aux the number of the restart
 * that follows, 0 if none does. */
static void send_exited(struct worker *w, const char *why, uint32_t restart)
{
	struct spk_exited e;
	spoke_buf b;

	memcpy(e.name, w->name, sizeof(e.name));
	if (!restart && w->restarts)
		snprintf(e.why, sizeof(e.why), "%.80s (after %u restarts)", why, w->restarts);
	else
		snprintf(e.why, sizeof(e.why), "%s", why);
	spk_loop_begin(&w->ag->hub, &b);
	spk_exited_pack(&b, &e);
	spk_loop_finish(&w->ag->hub, &b, SPK_EXITED, w->start_id, (int32_t)restart);
}

/* w's actor died (why), not stopped: restarted after its backoff while it
 * has restarts left (the hub keeps its GPUs), else gone for good. */
static void worker_died(struct worker *w, const char *why)
{
	struct agent *ag = w->ag;

	if (w->restarts >= w->max_restarts) {
		if (w->max_restarts)
			spk_warn("actor %s %s: no restarts left (%u done)", w->name, why,
				 w->restarts);
		else
			spk_info("actor %s (pid %d) %s", w->name, (int)w->pid, why);
		send_exited(w, why, 0);
		free_worker(ag, w);
		return;
	}
	w->restarts++;
	spk_warn("actor %s (pid %d) %s: restart %u of %u in %u ms", w->name, (int)w->pid, why,
		 w->restarts, w->max_restarts, w->backoff_ms);
	send_exited(w, why, w->restarts);
	if (w->link_open)
		spk_loop_close(&w->link, 0);
	w->pid = 0;
	w->ready = false;
	w->waiting = true;
	ev_timer_stop(ag->loop, &w->timer);
	ev_timer_set(&w->timer, w->backoff_ms / 1000.0, 0.);
	ev_timer_start(ag->loop, &w->timer);
}

static void child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
	struct agent *ag = c->data;
	struct worker *w = find_worker_pid(ag, c->rpid);
	char why[128];

	(void)revents;
	if (!w || c->rpid <= 0)
		return;
	describe_status(why, sizeof(why), c->rstatus);
	if (w->op)
		reply_hub_error(ag, w->op, SPOKE_ESPAWN, "worker of actor %s on %s %s before it was ready",
				w->name, ag->node, why);
	else if (!ag->shutting_down && !w->failed && !w->stopping) {
		worker_died(w, why);
		goto out;
	} else if (!ag->shutting_down && !w->failed) {
		spk_info("actor %s (pid %d) %s", w->name, (int)w->pid, why);
		send_exited(w, why, 0);
	}
	free_worker(ag, w);
out:
	if (ag->shutting_down && !ag->workers)
		ev_break(loop, EVBREAK_ALL);
}

/* The worker's environment: ours, without the variables that `own` (four
 * "NAME=value" strings: its GPUs and identity) replace.  Ours says how to
 * reach the job (SPOKE_HUB, SPOKE_TOKEN or SPOKE_TOKEN_FILE: main() sets
 * them as we got them), so that the actor can open a client to it. */
static char **worker_env(char *own[4])
{
	size_t n = 0, i = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 5, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t k = 0; k < n; k++) {
		bool replaced = false;

		for (int d = 0; d < 4; d++)
			if (!strncmp(environ[k], own[d], (size_t)(strchr(own[d], '=') - own[d] + 1)))
				replaced = true;
		if (!replaced)
			env[i++] = environ[k];
	}
	for (int d = 0; d < 4; d++)
		env[i++] = own[d];
	return env;
}

/* Forks w's worker for spec (the START's, or a restart's copy) and sends it
 * SPAWN_INFO: 0, or why not (spoke_errmsg()). */
static int fork_worker(struct agent *ag, struct worker *w, struct spk_spawn_info *info)
{
	struct spk_spawn_spec *spec = &info->spec;
	const char *program, *modules;
	char e_gpus[32 + SPK_GPU_LIST_MAX], e_fd[32], e_actor[32 + SPOKE_ACTOR_NAME_MAX];
	char e_node[32 + SPOKE_NODE_NAME_MAX], gpus[SPK_GPU_LIST_MAX];
	char *own[4] = { e_gpus, e_fd, e_actor, e_node };
	char *argv[2];
	char **env;
	spoke_buf b;
	int sv[2], rc;

	program = spec->program[0] ? spec->program : ag->worker_path;
	modules = spec->module[0] ? spec->module : ag->modules ? ag->modules : "";
	if (strlen(modules) >= sizeof(info->modules))
		return spk_fail(SPOKE_ESPAWN, "cannot start actor %s on %s: its module list is "
				"longer than %zu bytes", spec->name, ag->node,
				sizeof(info->modules) - 1);
	if (access(program, X_OK) != 0)
		return spk_fail(SPOKE_ESPAWN, "cannot start actor %s on %s: %s: %s", spec->name,
				ag->node, program, strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return spk_fail(-errno, "socketpair: %s", strerror(errno));
	spk_gpu_list_format(gpus, sizeof(gpus), spec->gpus, spec->n_gpus);
	snprintf(e_gpus, sizeof(e_gpus), "CUDA_VISIBLE_DEVICES=%s", gpus);
	snprintf(e_fd, sizeof(e_fd), SPK_WORKER_FD_ENV "=%d", SPK_WORKER_FD_NUM);
	snprintf(e_actor, sizeof(e_actor), "SPOKE_ACTOR=%s", spec->name);
	snprintf(e_node, sizeof(e_node), "SPOKE_NODE=%s", ag->node);
	env = worker_env(own);
	argv[0] = (char *)program;
	argv[1] = NULL;
	w->pid = env ? spk_spawn_process(program, argv, env, sv[1]) : -ENOMEM;
	free(env);
	close(sv[1]);
	if (w->pid < 0) {
		rc = spk_fail(SPOKE_ESPAWN, "cannot fork a worker: %s", strerror((int)-w->pid));
		w->pid = 0;
		close(sv[0]);
		return rc;
	}
	if (spk_loop_start(&w->link, ag->loop, sv[0], NULL, NULL, w->name, worker_frame,
			   link_closed, w) < 0) {
		kill(w->pid, SIGKILL); /* reaped by child_cb, which finds no worker */
		w->pid = 0;
		close(sv[0]);
		return spk_fail(-ENOMEM, "agent on %s out of memory", ag->node);
	}
	w->link_open = true;
	ev_timer_init(&w->timer, worker_timer, w->timeout_ms / 1000.0, 0.);
	w->timer.data = w;
	ev_timer_start(ag->loop, &w->timer);
	spk_loop_begin(&w->link, &b);
	memcpy(info->token, ag->token, sizeof(info->token));
	memcpy(info->host, ag->host, sizeof(info->host));
	snprintf(info->modules, sizeof(info->modules), "%s", modules);
	/* who it is in handshakes */
	info->incarnation = spk_incarnation(w->start_id, w->restarts);
	spk_spawn_info_pack(&b, info);
	spk_loop_finish(&w->link, &b, SPK_SPAWN_INFO, 0, 0);
	spk_debug("forked worker %d for actor %s (%s)", (int)w->pid, spec->name, spec->type);
	return 0;
}

static void on_start(struct agent *ag, const struct spk_hdr *h, spoke_view *v)
{
	struct spk_spawn_info info; /* what the worker is told */
	struct spk_spawn_spec *spec = &info.spec;
	const uint8_t *payload = v->data + v->pos;
	uint32_t len = (uint32_t)(v->len - v->pos);
	struct worker *w;
	int rc;

	if (spk_spawn_spec_unpack(v, spec) < 0) {
		reply_hub_error(ag, h->id, SPOKE_EPROTO, "malformed START");
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w || (spec->max_restarts && !(w->start = malloc(len)))) {
		free(w);
		reply_hub_error(ag, h->id, -ENOMEM, "agent on %s out of memory", ag->node);
		return;
	}
	w->ag = ag;
	w->op = w->start_id = h->id;
	w->timeout_ms = spec->timeout_ms ? spec->timeout_ms : SPAWN_TIMEOUT_MS;
	w->max_restarts = spec->max_restarts;
	w->backoff_ms = spec->restart_backoff_ms;
	if (w->start) {
		memcpy(w->start, payload, len);
		w->start_len = len;
	}
	snprintf(w->name, sizeof(w->name), "%s", spec->name);
	rc = fork_worker(ag, w, &info);
	if (rc < 0) {
		reply_hub_error(ag, h->id, rc, "%s", spoke_errmsg());
		free(w->start);
		free(w);
		return;
	}
	w->next = ag->workers;
	ag->workers = w;
}

/* The backoff is over: w's actor starts again from its START. */
static void restart_worker(struct worker *w)
{
	struct spk_spawn_info info;
	spoke_view v;
	char why[160];

	w->waiting = false;
	spoke_view_init(&v, w->start, w->start_len);
	if (spk_spawn_spec_unpack(&v, &info.spec) == 0 && fork_worker(w->ag, w, &info) == 0) {
		spk_info("actor %s: restart %u started (pid %d)", w->name, w->restarts,
			 (int)w->pid);
		return;
	}
	snprintf(why, sizeof(why), "could not restart: %s", spoke_errmsg());
	worker_died(w, why);
}

static void on_stop(struct agent *ag, const struct spk_hdr *h, spoke_view *v)
{
	struct spk_actor_ref r;
	struct worker *w, *next;

	if (spk_actor_ref_unpack(v, &r) < 0) {
		spk_warn("malformed STOP from the hub");
		return;
	}
	for (w = ag->workers; w; w = next) {
		next = w->next;
		if (w->start_id != h->id || strcmp(w->name, r.name) != 0)
			continue;
		if (w->waiting) {
			spk_info("stopping actor %s before its restart %u", w->name, w->restarts + 1);
			free_worker(ag, w);
			continue;
		}
		spk_info("stopping actor %s (pid %d)", w->name, (int)w->pid);
		kill(w->pid, SIGTERM);
		w->stopping = true;
		ev_timer_stop(ag->loop, &w->timer);
		ev_timer_set(&w->timer, STOP_GRACE_S, 0.);
		ev_timer_start(ag->loop, &w->timer);
	}
}

static void hub_frame(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *v)
{
	struct agent *ag = c->data;

	switch (h->type) {
	case SPK_START: on_start(ag, h, v); return;
	case SPK_STOP: on_stop(ag, h, v); return;
	}
	spk_warn("unexpected %s from the hub", spk_type_name(h->type));
}

static void shutdown_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct agent *ag = t->data;

	(void)revents;
	for (struct worker *w = ag->workers; w; w = w->next)
		if (w->pid > 0)
			kill(w->pid, SIGKILL);
	ev_break(loop, EVBREAK_ALL);
}

static void shut_down(struct agent *ag)
{
	if (ag->shutting_down)
		return;
	ag->shutting_down = true;
	for (struct worker *w = ag->workers, *next; w; w = next) {
		next = w->next;
		if (w->waiting)
			free_worker(ag, w); /* its restart will not come */
		else
			kill(w->pid, SIGTERM);
	}
	if (!ag->workers) {
		ev_break(ag->loop, EVBREAK_ALL);
		return;
	}
	ev_timer_init(&ag->shutdown_w, shutdown_timer, SHUTDOWN_GRACE_S, 0.);
	ag->shutdown_w.data = ag;
	ev_timer_start(ag->loop, &ag->shutdown_w);
}

static void hub_closed(struct spk_loop_conn *c, int reason)
{
	struct agent *ag = c->data;

	(void)reason;
	if (!ag->shutting_down) {
		spk_warn("lost the hub; stopping this node's actors");
		ag->exit_code = 3;
	}
	shut_down(ag);
}

static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	struct agent *ag = s->data;

	(void)loop;
	(void)revents;
	spk_info("signal %d: stopping", s->signum);
	shut_down(ag);
}

/* The GPU ids from --gpus, $CUDA_VISIBLE_DEVICES or /dev; 0, or 2 after a
 * usage error. */
static int find_gpus(struct agent *ag, const char *opt)
{
	const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
	uint32_t cap = sizeof(ag->reg.gpus) / sizeof(ag->reg.gpus[0]);

	if (opt || cvd) {
		const char *src = opt ? opt : cvd;

		if (spk_gpu_list_parse(src, ag->reg.gpus, cap, &ag->reg.n_gpus) < 0)
			return spk_usage_error(opt ? "--gpus" : "CUDA_VISIBLE_DEVICES", src);
		return 0;
	}
	ag->reg.n_gpus = spk_gpu_scan(ag->reg.gpus, cap);
	return 0;
}

/* An explicit worker program must be there: 0, or 2 after a usage error. */
static int set_worker_path(struct agent *ag, const char *what, const char *path)
{
	if (strlen(path) >= sizeof(ag->worker_path))
		spk_fail(SPOKE_EINVAL, "longer than %zu bytes", sizeof(ag->worker_path) - 1);
	else if (access(path, X_OK) != 0)
		spk_fail(SPOKE_EINVAL, "not an executable program: %s", strerror(errno));
	else
		return snprintf(ag->worker_path, sizeof(ag->worker_path), "%s", path) < 0;
	return spk_usage_error(what, path);
}

static int default_worker_path(struct agent *ag)
{
	const char *env = getenv("SPOKE_WORKER");
	char self[PATH_MAX - 16];
	ssize_t n;
	char *slash;

	if (env && *env)
		return set_worker_path(ag, "SPOKE_WORKER", env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		snprintf(ag->worker_path, sizeof(ag->worker_path), "spoke-worker");
		return 0;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(ag->worker_path, sizeof(ag->worker_path), "%s/spoke-worker", self);
	return 0;
}

/* This node's name, from --node or the first of $SPOKE_NODE and
 * $SLURMD_NODENAME that is set: a name as the hub takes it (proto.h: 1 to
 * SPOKE_NODE_NAME_MAX - 1 bytes, no control character, space or '/', not
 * "." or "..").  0, or 2 after a usage error. */
static int check_node_name(const char *opt)
{
	const char *what = "--node", *name = opt;

	if (!name) {
		what = "SPOKE_NODE";
		name = getenv(what);
		if (!name || !*name) {
			what = "SLURMD_NODENAME";
			name = getenv(what);
		}
		if (!name || !*name)
			return 0; /* the host name */
	}
	if (spk_name_check("node name", name, strlen(name), SPOKE_NODE_NAME_MAX) < 0)
		return spk_usage_error(what, name);
	return 0;
}

/* The token and the hub, as the workers' clients will find them. */
static int export_job(const char *hub, const char *token_file)
{
	char path[PATH_MAX];

	if (setenv("SPOKE_HUB", hub, 1) != 0)
		return -errno;
	if (!token_file)
		return 0; /* $SPOKE_TOKEN or $SPOKE_TOKEN_FILE, inherited */
	if (!realpath(token_file, path))
		return -errno;
	unsetenv("SPOKE_TOKEN");
	return setenv("SPOKE_TOKEN_FILE", path, 1) != 0 ? -errno : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: spoke-agent --hub HOST:PORT [OPTION]...\n"
		"The agent of one node of a Spoke job: starts and supervises its actors.\n"
		"\n"
		"  -H, --hub HOST:PORT      the hub (default $SPOKE_HUB)\n"
		"  -n, --node NAME          this node's name (default $SPOKE_NODE, $SLURMD_NODENAME\n"
		"                           or the host name)\n"
		"  -g, --gpus LIST          GPU ids, e.g. 0-3 or 0,2 (default $CUDA_VISIBLE_DEVICES,\n"
		"                           else the /dev/nvidiaN devices present)\n"
		"  -c, --cpus N             CPUs to offer (default: the CPUs online)\n"
		"  -A, --advertise HOST     address clients use to reach this node's workers\n"
		"                           (default: the local address towards the hub)\n"
		"  -w, --worker PATH        the worker program (default $SPOKE_WORKER, else\n"
		"                           spoke-worker beside this program)\n"
		"  -m, --module LIST        actor modules (.so) the worker loads, ':'-separated\n"
		"  -t, --token-file FILE    the job token (default $SPOKE_TOKEN, $SPOKE_TOKEN_FILE)\n"
		"  -T, --timeout MS         how long to try to reach the hub (default 10000)\n"
		"  -r, --ready-file FILE    create FILE once registered with the hub\n"
		"  -h, --help               this help\n"
		"  -V, --version            the version\n"
		"\n"
		"Exit status: 0 after SIGINT/SIGTERM, 1 on a start-up error, 2 on bad usage,\n"
		"3 when the hub went away.\n");
}

static int connect_hub(struct agent *ag, const char *hub, int timeout_ms)
{
	int64_t deadline = spk_now_us() + (int64_t)timeout_ms * 1000;
	const uint8_t *unused;
	struct spk_sync_conn ch;
	struct spk_hdr h = { 0 };
	spoke_buf b;
	int rc, fd;

	rc = spk_sync_open(&ch, hub, ag->token, SPK_IDENT_HUB, 0, deadline);
	if (rc < 0) {
		spk_err("cannot reach the hub: %s", spoke_errmsg());
		return rc;
	}
	if (!ag->host[0])
		spk_local_host(ch.fd, ag->host, sizeof(ag->host));
	snprintf(ag->reg.node, sizeof(ag->reg.node), "%s", ag->node);
	snprintf(ag->reg.host, sizeof(ag->reg.host), "%s", ag->host);
	ag->reg.pid = (uint32_t)getpid();
	spk_sync_begin(&ch, &b);
	spk_register_pack(&b, &ag->reg);
	rc = spk_sync_send_buf(&ch, &b, SPK_REGISTER, 1, 0, deadline);
	if (rc == 0)
		rc = spk_sync_recv_hdr(&ch, &h, deadline);
	if (rc == 0 && (h.type != SPK_REPLY || h.id != 1))
		rc = SPOKE_EPROTO;
	if (rc == 0 && h.aux < 0) {
		rc = spk_sync_recv_view(&ch, h.len, &unused, deadline);
		spk_err("%.*s", (int)h.len, rc == 0 ? (const char *)unused : "");
		rc = h.aux;
	} else if (rc == 0) {
		rc = spk_sync_skip(&ch, h.len, deadline);
	}
	if (rc < 0) {
		if (!h.aux)
			spk_err("registering with the hub failed: %s", spoke_strerror(rc));
		spk_sync_close(&ch);
		return rc;
	}
	fd = ch.fd;
	ch.fd = -1;
	rc = spk_loop_start(&ag->hub, ag->loop, fd, NULL, NULL, "hub", hub_frame, hub_closed,
			      ag);
	/* The hub may send a START right behind its answer: the channel may
	 * have read it already. */
	if (rc == 0)
		rc = spk_loop_preload(&ag->hub, ch.rbuf + ch.rpos, ch.rlen - ch.rpos);
	spk_sync_close(&ch);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "hub", required_argument, NULL, 'H' },
		{ "node", required_argument, NULL, 'n' },
		{ "gpus", required_argument, NULL, 'g' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "advertise", required_argument, NULL, 'A' },
		{ "worker", required_argument, NULL, 'w' },
		{ "module", required_argument, NULL, 'm' },
		{ "token-file", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *hub = NULL, *gpus = NULL, *token_file = NULL, *node = NULL;
	const char *ready_file = NULL;
	static struct agent ag;
	char list[SPK_GPU_LIST_MAX];
	int opt, rc;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN), timeout_ms = 10000;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":H:n:g:c:A:w:m:t:T:r:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H': hub = optarg; break;
		case 'n': node = optarg; break;
		case 'g': gpus = optarg; break;
		case 'c':
			if (spk_parse_num(optarg, 0, 1 << 20, &cpus) < 0)
				return spk_usage_error("--cpus", optarg);
			break;
		case 'A':
			if (!*optarg || strlen(optarg) >= sizeof(ag.host)) {
				spk_fail(SPOKE_EINVAL, "want a host name or address of 1 to %zu bytes",
					 sizeof(ag.host) - 1);
				return spk_usage_error("--advertise", optarg);
			}
			snprintf(ag.host, sizeof(ag.host), "%s", optarg);
			break;
		case 'w':
			if (set_worker_path(&ag, "--worker", optarg) != 0)
				return 2;
			break;
		case 'm': ag.modules = optarg; break;
		case 't': token_file = optarg; break;
		case 'T':
			if (spk_parse_num(optarg, 1, 24 * 3600 * 1000, &timeout_ms) < 0)
				return spk_usage_error("--timeout", optarg);
			break;
		case 'r': ready_file = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("spoke-agent %s\n", SPOKE_VERSION_STRING); return 0;
		default: return spk_bad_option(argv, opt);
		}
	}
	if (optind < argc) {
		spk_fail(SPOKE_EINVAL, "unexpected (see --help)");
		return spk_usage_error("argument", argv[optind]);
	}
	if (!hub) {
		hub = getenv("SPOKE_HUB");
		if (!hub || !*hub) {
			fprintf(stderr, "spoke-agent: --hub HOST:PORT (or $SPOKE_HUB) is required\n");
			return 2;
		}
		if (spk_parse_addr(hub, false) < 0)
			return spk_usage_error("SPOKE_HUB", hub);
	} else if (spk_parse_addr(hub, false) < 0) {
		return spk_usage_error("--hub", hub);
	}
	if (check_node_name(node) != 0 || (!ag.worker_path[0] && default_worker_path(&ag) != 0))
		return 2;
	rc = find_gpus(&ag, gpus);
	if (rc != 0)
		return rc;
	if (node)
		setenv("SPOKE_NODE", node, 1);
	spk_log_init("agent", SPK_LOG_INFO);
	spk_raise_fd_limit(); /* a worker link is a descriptor; workers inherit the limit */
	snprintf(ag.node, sizeof(ag.node), "%s", spk_log_node());
	if (token_file ? spk_token_read_file(token_file, ag.token, sizeof(ag.token))
		       : spk_token_load(NULL, ag.token, sizeof(ag.token)))
		return 1;
	rc = export_job(hub, token_file);
	if (rc < 0) {
		spk_err("cannot pass the hub and token on to workers: %s", spoke_strerror(rc));
		return 1;
	}
	ag.reg.cpus = (uint32_t)cpus;
	signal(SIGPIPE, SIG_IGN);
	ag.loop = EV_DEFAULT;
	if (connect_hub(&ag, hub, (int)timeout_ms) < 0)
		return 1;
	spk_gpu_list_format(list, sizeof(list), ag.reg.gpus, ag.reg.n_gpus);
	spk_info("registered with the hub at %s: %u GPUs [%s], workers listen on %s", hub,
		 ag.reg.n_gpus, list, ag.host);
	if (ready_file) {
		FILE *f = fopen(ready_file, "w");

		if (!f || fclose(f) != 0)
			spk_warn("cannot create %s: %s", ready_file, strerror(errno));
	}
	ev_child_init(&ag.child_w, child_cb, 0, 0);
	ag.child_w.data = &ag;
	ev_child_start(ag.loop, &ag.child_w);
	ev_signal_init(&ag.sigint_w, signal_cb, SIGINT);
	ev_signal_init(&ag.sigterm_w, signal_cb, SIGTERM);
	ag.sigint_w.data = ag.sigterm_w.data = &ag;
	ev_signal_start(ag.loop, &ag.sigint_w);
	ev_signal_start(ag.loop, &ag.sigterm_w);
	ev_run(ag.loop, 0);
	while (ag.workers)
		free_worker(&ag, ag.workers);
	if (!ag.hub.closing && ag.hub.fd >= 0)
		spk_loop_close(&ag.hub, 0);
	return ag.exit_code;
}

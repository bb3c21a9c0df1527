/* hub-sim.c - the hub at thousands of nodes, measured by simulation.
 *
 * Plays N agents from this one process against a real spoke-hub started
 * from the build tree (as tests/harness/cluster.c does): each simulated
 * agent is a real TCP connection from its own loopback address
 * (127.1.x.y, as agents come from distinct hosts), which proves the job
 * token with the agent's handshake (auth.h, frame.h), registers 8 GPUs with
 * the agent's REGISTER (proto.c) and answers every START at once with an
 * endpoint, as the agent does once its worker is READY (agent.c); it starts
 * no process.  All N live on one libev loop in a thread of their own; the
 * measuring client (the public API, and the client's own lookup) runs on
 * the main thread.
 *
 * For each N (--nodes, default 1024 and 4096) it prints: the time for all
 * to register; the latency of a 512x8 and an Nx8 strict-pack gang
 * allocation of 1 GPU per slot (median and p99 over repeated
 * allocate + release); spawns per second (N x 8 gang launches, one client,
 * one at a time); the hub's RSS (VmRSS, VmHWM) with those N x 8 actors; and
 * the time from 10 % of the agents closing their connections to every
 * lookup of their actors failing (SPOKE_EDEAD or SPOKE_ENOACTOR) and the
 * node list no longer showing them; then that the GPUs of the rest are
 * free (a gang over exactly the live nodes fits, one node more does not).
 * Each figure is printed with the target and whether it is met (a
 * miss is a figure, not a failure).
 *
 * --check (make check, tests/integration/test_scale.sh): 1,024 agents,
 * fewer repetitions and spawns, and every count asserted (a slot and a
 * name run one actor, a kill and a released gang stop their actors on
 * their agents); then 20 agents against a hub of --max-nodes 16, 4 of
 * them refused.  Exit 0, 1 with the reason, or 77 when this machine
 * cannot hold the descriptors.
 * Every wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include <spoke/spoke.h>

#include "auth.h"
#include "client_priv.h"
#include "clock.h"
#include "frame.h"
#include "loop_conn.h"
#include "net.h"
#include "proto.h"

#define SIM_GPUS 8
#define SIM_HS_BUF 512 /* a handshake frame: HELLO or AUTH_OK */
#define SIM_KILL_EVERY 10 /* every 10th agent vanishes */
#define SIM_CONNECT_BATCH 32 /* agents that connect per turn of the loop */

#if defined(__SANITIZE_ADDRESS__)
#define SIM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_SANITIZED 1
#endif
#endif
#ifndef SIM_SANITIZED
#define SIM_SANITIZED 0
#endif

enum sim_state { S_CONNECT, S_HELLO, S_AUTH_OK, S_REGISTER, S_LIVE, S_DEAD };

struct sim;

struct sim_agent {
	struct sim *sim;
	uint32_t idx;
	int fd;
	enum sim_state state;
	bool killed; /* closed by us */
	ev_io io;    /* the handshake's; then conn's own */
	uint8_t in[SIM_HS_BUF];
	size_t in_len;
	uint8_t nonce_s[SPK_NONCE_SIZE], nonce_c[SPK_NONCE_SIZE];
	struct spk_loop_conn conn;
	char node[32];
};

struct sim {
	struct ev_loop *loop;
	ev_async wake;
	ev_prepare connector;
	uint32_t next_connect;
	pthread_t thread;
	char token[SPK_TOKEN_MAX];
	struct sockaddr_in hub_sa;
	uint32_t n;
	struct sim_agent *agents;
	atomic_uint registered, failed, starts, stops, killed;
	atomic_uint refused_nospc; /* REGISTERs refused with SPOKE_ENOSPC */
	atomic_int cmd; /* CMD_* for the loop */
	char first_error[256];
};

enum { CMD_NONE, CMD_KILL, CMD_QUIT };

struct opts {
	bool check;
	uint32_t nodes[8];
	unsigned n_nodes;
	unsigned reps;
	long spawns; /* -1: all N x 8 */
};

static void sim_fail(struct sim_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sim_fail(struct sim_agent *a, const char *fmt, ...)
{
	struct sim *s = a->sim;
	va_list ap;

	if (a->state == S_DEAD)
		return;
	if (atomic_fetch_add(&s->failed, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(s->first_error, sizeof(s->first_error), fmt, ap);
		va_end(ap);
	}
	if (a->state >= S_REGISTER) {
		a->state = S_DEAD;
		spk_loop_close(&a->conn, 0);
		return;
	}
	ev_io_stop(s->loop, &a->io);
	close(a->fd);
	a->fd = -1;
	a->state = S_DEAD;
}

/* The hub's frames once the handshake is done: the answer to REGISTER,
 * STARTs (answered at once), STOPs (counted). */
static void agent_frame(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *v)
{
	struct sim_agent *a = c->data;
	struct sim *s = a->sim;
	struct spk_spawn_spec spec;
	struct spk_endpoint ep = { .pid = (uint32_t)getpid() };
	spoke_buf b;

	if (h->type == SPK_REPLY && a->state == S_REGISTER && h->id == 1) {
		if (h->aux < 0) {
			char msg[200];

			spk_error_text_unpack(v, msg, sizeof(msg));
			if (h->aux == SPOKE_ENOSPC)
				atomic_fetch_add(&s->refused_nospc, 1);
			sim_fail(a, "node %s: the hub refused its REGISTER (%d): %s", a->node, h->aux,
				 msg);
			return;
		}
		a->state = S_LIVE;
		atomic_fetch_add(&s->registered, 1);
		return;
	}
	if (h->type == SPK_START && a->state == S_LIVE) {
		if (spk_spawn_spec_unpack(v, &spec) < 0) {
			spk_loop_reply_error(c, h->id, SPOKE_EPROTO, "malformed START");
			return;
		}
		/* What agent.c answers once the worker is READY. */
		snprintf(ep.addr, sizeof(ep.addr), "127.0.0.1:%u", 1024 + (unsigned)(h->id % 60000));
		snprintf(ep.node, sizeof(ep.node), "%s", a->node);
		ep.incarnation = h->id;
		spk_loop_begin(c, &b);
		spk_endpoint_pack(&b, &ep);
		spk_loop_finish(c, &b, SPK_REPLY, h->id, 0);
		atomic_fetch_add(&s->starts, 1);
		return;
	}
	if (h->type == SPK_STOP) {
		atomic_fetch_add(&s->stops, 1);
		return;
	}
	sim_fail(a, "node %s: unexpected %s from the hub", a->node, spk_type_name(h->type));
}

static void agent_closed(struct spk_loop_conn *c, int reason)
{
	struct sim_agent *a = c->data;

	if (!a->killed && a->state != S_DEAD) {
		if (atomic_fetch_add(&a->sim->failed, 1) == 0)
			snprintf(a->sim->first_error, sizeof(a->sim->first_error),
				 "node %s: the hub closed its connection (%s)", a->node,
				 spoke_strerror(reason));
	}
	a->state = S_DEAD;
}

/* One frame of the handshake, complete in a->in: 1 if there is one (in *h,
 * its payload at a->in + SPK_HDR_SIZE), 0 if more bytes are needed, -1 on
 * an error (the agent failed). */
static int hs_frame(struct sim_agent *a, struct spk_hdr *h)
{
	ssize_t n = recv(a->fd, a->in + a->in_len, sizeof(a->in) - a->in_len, MSG_DONTWAIT);
	long r;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		sim_fail(a, "node %s: connection to the hub %s during the handshake", a->node,
			 n == 0 ? "closed" : strerror(errno));
		return -1;
	}
	if (n > 0)
		a->in_len += (size_t)n;
	r = spk_frame_parse(a->in, a->in_len, SIM_HS_BUF - SPK_HDR_SIZE, h);
	if (r < 0) {
		sim_fail(a, "node %s: bad frame in the handshake: %s", a->node,
			 spoke_strerror((int)r));
		return -1;
	}
	return r > 0;
}

static void hs_consume(struct sim_agent *a, const struct spk_hdr *h)
{
	size_t used = SPK_HDR_SIZE + h->len;

	memmove(a->in, a->in + used, a->in_len - used);
	a->in_len -= used;
}

/* HELLO -> AUTH (the client's proof for "hub"). */
static int hs_hello(struct sim_agent *a, const struct spk_hdr *h)
{
	uint8_t out[SPK_HDR_SIZE + SPK_AUTH_MAX];
	struct spk_auth_msg m;
	spoke_buf b;

	if (h->type != SPK_HELLO || h->len != SPK_NONCE_SIZE) {
		sim_fail(a, "node %s: the hub did not greet with HELLO", a->node);
		return -1;
	}
	memcpy(a->nonce_s, a->in + SPK_HDR_SIZE, SPK_NONCE_SIZE);
	hs_consume(a, h);
	spk_random(a->nonce_c, sizeof(a->nonce_c));
	memcpy(m.nonce, a->nonce_c, sizeof(m.nonce));
	snprintf(m.ident, sizeof(m.ident), "%s", SPK_IDENT_HUB);
	spk_auth_proof(m.mac, a->sim->token, SPK_ROLE_CLIENT, SPK_IDENT_HUB, a->nonce_s, a->nonce_c);
	spoke_buf_init(&b, out + SPK_HDR_SIZE, sizeof(out) - SPK_HDR_SIZE);
	spk_auth_pack(&b, &m);
	spk_hdr_encode(out, SPK_AUTH, 0, 0, (uint32_t)b.len);
	/* A fresh socket takes a few hundred bytes at once. */
	if (b.err || send(a->fd, out, SPK_HDR_SIZE + b.len, MSG_NOSIGNAL) !=
			     (ssize_t)(SPK_HDR_SIZE + b.len)) {
		sim_fail(a, "node %s: cannot send AUTH: %s", a->node, strerror(errno));
		return -1;
	}
	a->state = S_AUTH_OK;
	return 0;
}

/* AUTH_OK (the hub's proof checked) -> a loop_conn, and REGISTER. */
static int hs_auth_ok(struct sim_agent *a, const struct spk_hdr *h)
{
	struct sim *s = a->sim;
	struct spk_register reg = { .cpus = 64, .n_gpus = SIM_GPUS, .pid = (uint32_t)getpid() };
	struct spk_auth_msg m;
	spoke_view v;
	spoke_buf b;
	int fd = a->fd;

	spoke_view_init(&v, a->in + SPK_HDR_SIZE, h->len);
	if (h->type != SPK_AUTH_OK || h->aux != 0 || spk_auth_ok_unpack(&v, &m) < 0 ||
	    strcmp(m.ident, SPK_IDENT_HUB) ||
	    !spk_auth_proof_ok(m.mac, s->token, SPK_ROLE_SERVER, SPK_IDENT_HUB, a->nonce_s,
			       a->nonce_c)) {
		sim_fail(a, "node %s: the hub refused the handshake or did not prove the token "
			 "(%s, status %d)", a->node, spk_type_name(h->type), h->aux);
		return -1;
	}
	hs_consume(a, h);
	ev_io_stop(s->loop, &a->io);
	if (spk_loop_start(&a->conn, s->loop, fd, NULL, NULL, "hub", agent_frame, agent_closed,
			   a) < 0) {
		sim_fail(a, "node %s: out of memory", a->node);
		return -1;
	}
	a->state = S_REGISTER;
	if (a->in_len)
		spk_loop_preload(&a->conn, a->in, a->in_len);
	snprintf(reg.node, sizeof(reg.node), "%s", a->node);
	snprintf(reg.host, sizeof(reg.host), "127.0.0.1");
	for (uint32_t g = 0; g < SIM_GPUS; g++)
		reg.gpus[g] = (int32_t)g;
	spk_loop_begin(&a->conn, &b);
	spk_register_pack(&b, &reg);
	if (spk_loop_finish(&a->conn, &b, SPK_REGISTER, 1, 0) < 0) {
		sim_fail(a, "node %s: cannot send REGISTER", a->node);
		return -1;
	}
	return 0;
}

static void hs_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sim_agent *a = w->data;
	struct spk_hdr h;
	int rc;

	(void)loop;
	(void)revents;
	if (a->state == S_CONNECT)
		a->state = S_HELLO;
	while (a->state == S_HELLO || a->state == S_AUTH_OK) {
		rc = hs_frame(a, &h);
		if (rc <= 0)
			return;
		rc = a->state == S_HELLO ? hs_hello(a, &h) : hs_auth_ok(a, &h);
		if (rc < 0 || a->state == S_REGISTER)
			return;
	}
}

/* A non-blocking connection from 127.1.X.Y to the hub. */
static void agent_connect(struct sim *s, struct sim_agent *a)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	int one = 1;

	a->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		sim_fail(a, "node %s: socket: %s", a->node, strerror(errno));
		return;
	}
	setsockopt(a->fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof(one));
	if (s->hub_sa.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
		src.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | ((a->idx / 250) << 8) |
					    (a->idx % 250 + 1));
		if (bind(a->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			sim_fail(a, "node %s: bind to 127.1.%u.%u: %s", a->node, a->idx / 250,
				 a->idx % 250 + 1, strerror(errno));
			return;
		}
	}
	if (connect(a->fd, (struct sockaddr *)&s->hub_sa, sizeof(s->hub_sa)) < 0 &&
	    errno != EINPROGRESS) {
		sim_fail(a, "node %s: connect: %s", a->node, strerror(errno));
		return;
	}
	ev_io_init(&a->io, hs_cb, a->fd, EV_READ);
	a->io.data = a;
	ev_io_start(s->loop, &a->io);
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct sim *s = w->data;
	int cmd = atomic_exchange(&s->cmd, CMD_NONE);

	(void)revents;
	for (uint32_t i = 0; i < s->n && cmd != CMD_NONE; i++) {
		struct sim_agent *a = &s->agents[i];

		if (cmd == CMD_KILL && i % SIM_KILL_EVERY != 0)
			continue;
		a->killed = true;
		if (a->state >= S_REGISTER && a->state != S_DEAD) {
			spk_loop_close(&a->conn, 0);
		} else if (a->fd >= 0 && a->state != S_DEAD) {
			ev_io_stop(loop, &a->io);
			close(a->fd);
			a->fd = -1;
		}
		a->state = S_DEAD;
		atomic_fetch_add(&s->killed, 1);
	}
	if (cmd == CMD_QUIT)
		ev_break(loop, EVBREAK_ALL);
}

/* Before each poll of the loop, SIM_CONNECT_BATCH more agents connect: they
 * start all at once, but the ones connected answer their HELLO meanwhile,
 * as agents that are processes of their own would. */
static void connect_more(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct sim *s = w->data;

	(void)revents;
	for (unsigned k = 0; k < SIM_CONNECT_BATCH && s->next_connect < s->n; k++)
		agent_connect(s, &s->agents[s->next_connect++]);
	if (s->next_connect == s->n)
		ev_prepare_stop(loop, w);
}

static void *sim_thread(void *arg)
{
	struct sim *s = arg;

	ev_prepare_init(&s->connector, connect_more);
	s->connector.data = s;
	ev_prepare_start(s->loop, &s->connector);
	ev_run(s->loop, 0);
	return NULL;
}

static void sim_command(struct sim *s, int cmd)
{
	atomic_store(&s->cmd, cmd);
	ev_async_send(s->loop, &s->wake);
}

/* ---- the hub process ---- */

struct hub_proc {
	char dir[64];
	char addr[128];
	char token_file[128];
	char log[128];
	pid_t pid;
};

static int wait_file(const char *path, int ms)
{
	int64_t deadline = spk_now_us() + (int64_t)ms * 1000;

	while (access(path, F_OK) != 0) {
		if (spk_now_us() > deadline)
			return -1;
		usleep(2000);
	}
	return 0;
}

/* max_nodes: the hub's --max-nodes, 0 for its default. */
static int hub_start(struct hub_proc *hp, uint32_t n, uint32_t max_nodes)
{
	const char *bd = getenv("SPOKE_BUILDDIR");
	char prog[512], addr_file[160], slots[32], nodes[32];
	FILE *f;

	snprintf(hp->dir, sizeof(hp->dir), "/tmp/spoke-hubsim-XXXXXX");
	if (!mkdtemp(hp->dir)) {
		fprintf(stderr, "hub-sim: mkdtemp %s: %s\n", hp->dir, strerror(errno));
		return -1;
	}
	snprintf(prog, sizeof(prog), "%s/spoke-hub", bd && *bd ? bd : ".");
	if (access(prog, X_OK) != 0) {
		fprintf(stderr, "hub-sim: no hub program at %s (SPOKE_BUILDDIR=%s)\n", prog,
			bd ? bd : "(unset)");
		return -1;
	}
	snprintf(hp->token_file, sizeof(hp->token_file), "%s/token", hp->dir);
	snprintf(addr_file, sizeof(addr_file), "%s/hub.addr", hp->dir);
	snprintf(hp->log, sizeof(hp->log), "%s/hub.log", hp->dir);
	snprintf(slots, sizeof(slots), "%u", n * SIM_GPUS * 2);
	snprintf(nodes, sizeof(nodes), "%u", max_nodes);
	hp->pid = fork();
	if (hp->pid < 0)
		return -1;
	if (hp->pid == 0) {
		char *argv[] = { prog, "--listen", "127.0.0.1:0", "--address-file", addr_file,
				 "--token-file", hp->token_file, "--max-slots", slots,
				 max_nodes ? "--max-nodes" : NULL, nodes, NULL };
		int fd = open(hp->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		execv(prog, argv);
		_exit(127);
	}
	if (wait_file(addr_file, 10000) < 0) {
		fprintf(stderr, "hub-sim: the hub wrote no address within 10 s; see %s\n", hp->log);
		return -1;
	}
	f = fopen(addr_file, "r");
	if (!f || !fgets(hp->addr, sizeof(hp->addr), f)) {
		fprintf(stderr, "hub-sim: cannot read %s\n", addr_file);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	hp->addr[strcspn(hp->addr, "\n")] = '\0';
	return 0;
}

static void hub_stop(struct hub_proc *hp, bool keep_dir)
{
	char cmd[160];

	if (hp->pid > 0) {
		kill(hp->pid, SIGTERM);
		for (int i = 0; i < 500 && waitpid(hp->pid, NULL, WNOHANG) == 0; i++)
			usleep(10000);
		if (kill(hp->pid, 0) == 0) {
			kill(hp->pid, SIGKILL);
			waitpid(hp->pid, NULL, 0);
		}
		hp->pid = 0;
	}
	if (hp->dir[0] && !keep_dir) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", hp->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "hub-sim: could not remove %s\n", hp->dir);
	}
}

static long proc_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* ---- figures ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v; median and p99 (nearest rank) in µs. */
static void stats(int64_t *v, unsigned n, double *med, double *p99)
{
	unsigned k;

	qsort(v, n, sizeof(v[0]), cmp_i64);
	*med = n % 2 ? (double)v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
	k = (unsigned)((99ull * n + 99) / 100);
	*p99 = (double)v[k ? k - 1 : 0];
}

static const char *verdict(bool met)
{
	return met ? "met" : "MISSED";
}

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "hub-sim: FAIL: " __VA_ARGS__);                             \
			fprintf(stderr, "\n");                                                     \
			failures++;                                                                \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

/* Waits until cond_fn says done or ms pass; returns the µs it took, -1 on
 * timeout. */
static int64_t wait_until(bool (*done)(struct sim *), struct sim *s, int ms)
{
	int64_t t0 = spk_now_us(), deadline = t0 + (int64_t)ms * 1000;

	while (!done(s)) {
		if (spk_now_us() > deadline)
			return -1;
		usleep(500);
	}
	return spk_now_us() - t0;
}

static bool all_answered(struct sim *s)
{
	return atomic_load(&s->registered) + atomic_load(&s->failed) >= s->n;
}

/* Repeated allocate + release of a nodes x 8 strict gang: latency of the
 * allocation, median and p99. */
static int measure_alloc(spoke_client *c, uint32_t nodes, unsigned reps, const struct opts *o,
			 uint32_t n_total)
{
	spoke_resources res = { .gpus = 1 };
	int64_t *lat = calloc(reps, sizeof(*lat));
	double med, p99;
	int rc = 0;

	if (!lat)
		return -ENOMEM;
	for (unsigned r = 0; r < reps; r++) {
		spoke_ticket *t = NULL;
		int64_t t0 = spk_now_us();

		rc = spoke_gang_allocate(c, nodes, SIM_GPUS, &res, 1, &t, 30000);
		lat[r] = spk_now_us() - t0;
		if (rc < 0) {
			fprintf(stderr, "hub-sim: FAIL: %ux%u strict allocation: %s: %s\n", nodes,
				SIM_GPUS, spoke_strerror(rc), spoke_errmsg());
			break;
		}
		if (t->n_slots != nodes * SIM_GPUS) {
			fprintf(stderr, "hub-sim: FAIL: %ux%u allocation gave %u slots\n", nodes,
				SIM_GPUS, t->n_slots);
			rc = -EPROTO;
			break;
		}
		rc = spoke_gang_release(c, t, 30000);
		if (rc < 0) {
			fprintf(stderr, "hub-sim: FAIL: release: %s\n", spoke_errmsg());
			break;
		}
	}
	if (rc == 0) {
		stats(lat, reps, &med, &p99);
		if (nodes == 512 && n_total == 4096)
			printf("  %4ux%u strict allocation: median %.0f us, p99 %.0f us (%u reps; "
			       "target < 1 ms at 4,096 nodes: %s)\n",
			       nodes, SIM_GPUS, med, p99, reps, verdict(med < 1000));
		else
			printf("  %4ux%u strict allocation: median %.0f us, p99 %.0f us (%u reps)\n",
			       nodes, SIM_GPUS, med, p99, reps);
	}
	(void)o;
	free(lat);
	return rc;
}

/* The names of the actors placed on a vanished agent's node (every
 * SIM_KILL_EVERY-th), among the first `spawned` slots of t. */
static bool on_killed_node(const spoke_slot *sl)
{
	unsigned idx;

	return sscanf(sl->node, "sim%u", &idx) == 1 && idx % SIM_KILL_EVERY == 0;
}

/* n agents against a hub (whose table holds max_nodes, 0: its default):
 * the figures, or with max_nodes only that the nodes past it are refused. */
static int run_one(uint32_t n, const struct opts *o, uint32_t max_nodes)
{
	struct sim s = { .n = n };
	struct hub_proc hp = { 0 };
	spoke_client *c = NULL;
	spoke_ticket *big = NULL, *rest = NULL;
	spoke_resources res = { .gpus = 1 };
	spoke_spawn_opts so = SPOKE_SPAWN_OPTS_INIT;
	spoke_node_info *info = NULL;
	struct spk_endpoint ep;
	uint32_t *pending = NULL, n_pending = 0, n_dead_nodes = 0, n_spawned = 0, n_killed = 0;
	uint16_t port;
	char host[SPK_ADDR_MAX], name[64];
	int64_t t0, took;
	long spawns = o->spawns < 0 ? (long)n * SIM_GPUS : o->spawns;
	bool thread_on = false;
	int rc, fails_before = failures;

	if (spawns > (long)n * SIM_GPUS)
		spawns = (long)n * SIM_GPUS;
	printf("N = %u nodes x %u GPUs%s\n", n, SIM_GPUS,
	       SIM_SANITIZED ? " (sanitizer build: slower, RSS inflated)" : "");
	fflush(stdout);
	CHECK(hub_start(&hp, n, max_nodes) == 0, "the hub did not start");
	CHECK(spk_token_read_file(hp.token_file, s.token, sizeof(s.token)) == 0,
	      "cannot read the token file %s", hp.token_file);
	CHECK(spk_parse_hostport(hp.addr, host, sizeof(host), &port) == 0 &&
		      inet_pton(AF_INET, host, &s.hub_sa.sin_addr) == 1,
	      "the hub's address '%s' is not IPv4 host:port", hp.addr);
	s.hub_sa.sin_family = AF_INET;
	s.hub_sa.sin_port = htons(port);
	s.agents = calloc(n, sizeof(*s.agents));
	info = calloc(n + 1, sizeof(*info));
	pending = calloc((size_t)n * SIM_GPUS, sizeof(*pending));
	CHECK(s.agents && info && pending, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		s.agents[i] = (struct sim_agent){ .sim = &s, .idx = i, .fd = -1 };
		snprintf(s.agents[i].node, sizeof(s.agents[i].node), "sim%05u", i);
	}
	s.loop = ev_loop_new(EVFLAG_AUTO);
	CHECK(s.loop, "no libev loop");
	ev_async_init(&s.wake, wake_cb);
	s.wake.data = &s;
	ev_async_start(s.loop, &s.wake);

	/* 1. All agents at once. */
	t0 = spk_now_us();
	CHECK(pthread_create(&s.thread, NULL, sim_thread, &s) == 0, "pthread_create");
	thread_on = true;
	took = wait_until(all_answered, &s, 60000);
	CHECK(took >= 0, "%u of %u agents registered within 60 s (%u failed: %s); see %s",
	      atomic_load(&s.registered), n, atomic_load(&s.failed), s.first_error, hp.log);
	took = spk_now_us() - t0;
	if (max_nodes && max_nodes < n) {
		CHECK(atomic_load(&s.registered) == max_nodes &&
			      atomic_load(&s.refused_nospc) == n - max_nodes &&
			      atomic_load(&s.failed) == n - max_nodes &&
			      strstr(s.first_error, "node table is full (--max-nodes"),
		      "--max-nodes %u, %u agents: %u registered, %u refused with SPOKE_ENOSPC, %u "
		      "failed (first: %s)", max_nodes, n, atomic_load(&s.registered),
		      atomic_load(&s.refused_nospc), atomic_load(&s.failed), s.first_error);
		printf("  --max-nodes %u: %u registered, %u refused (%s)\n", max_nodes, max_nodes,
		       n - max_nodes, s.first_error);
		goto out;
	}
	CHECK(atomic_load(&s.failed) == 0, "%u of %u agents failed to register; first: %s; see %s",
	      atomic_load(&s.failed), n, s.first_error, hp.log);
	if (n == 4096)
		printf("  registration of %u agents: %.3f s (target < 2 s: %s)\n", n, took / 1e6,
		       verdict(took < 2000000));
	else
		printf("  registration of %u agents: %.3f s\n", n, took / 1e6);
	printf("  hub RSS with %u agents, no actor: %.1f MiB\n", n,
	       proc_kib(hp.pid, "VmRSS") / 1024.0);
	fflush(stdout);

	spoke_client_opts co = { .hub = hp.addr, .token = s.token, .timeout_ms = 30000, .poll_us = 0 };
	rc = spoke_client_open(&c, &co);
	CHECK(rc == 0, "spoke_client_open %s: %s", hp.addr, spoke_errmsg());
	rc = spoke_nodes(c, info, n + 1, 30000);
	CHECK(rc == (int)n, "the hub lists %d nodes, want %u (%s)", rc, n, spoke_errmsg());
	for (uint32_t i = 0; i < n; i++)
		CHECK(info[i].n_gpus == SIM_GPUS && info[i].free_gpus == SIM_GPUS,
		      "node %s: %u of %u GPUs free, want 8 of 8", info[i].name, info[i].free_gpus,
		      info[i].n_gpus);

	/* 2. Gang allocation latency. */
	CHECK(measure_alloc(c, 1, o->reps, o, n) == 0, "1x8 allocations");
	CHECK(measure_alloc(c, n < 512 ? n : 512, o->reps, o, n) == 0, "512x8 allocations");
	CHECK(measure_alloc(c, n, o->reps, o, n) == 0, "%ux8 allocations", n);
	fflush(stdout);

	/* 3. Spawns: an N x 8 gang, `spawns` of its slots launched. */
	rc = spoke_gang_allocate(c, n, SIM_GPUS, &res, 1, &big, 30000);
	CHECK(rc == 0, "%ux8 allocation: %s", n, spoke_errmsg());
	so.timeout_ms = 30000;
	t0 = spk_now_us();
	for (long r = 0; r < spawns; r++) {
		snprintf(name, sizeof(name), "a%ld", r);
		rc = spoke_gang_launch(c, big, (uint32_t)r, "Sim", name, NULL, 0, &so);
		CHECK(rc == 0, "launch of %s in slot %ld: %s", name, r, spoke_errmsg());
		n_spawned++;
	}
	took = spk_now_us() - t0;
	CHECK(atomic_load(&s.starts) == n_spawned, "the agents answered %u STARTs, want %u",
	      atomic_load(&s.starts), n_spawned);
	printf("  spawns: %u in %.3f s, %.0f spawns/s (one client, one at a time)\n", n_spawned,
	       took / 1e6, took > 0 ? n_spawned * 1e6 / took : 0.0);
	{
		long rss = proc_kib(hp.pid, "VmRSS"), hwm = proc_kib(hp.pid, "VmHWM");

		if (n_spawned == 32768)
			printf("  hub RSS with %u actors: %.1f MiB (peak %.1f MiB; target < 64 MiB: "
			       "%s)\n", n_spawned, rss / 1024.0, hwm / 1024.0,
			       verdict(rss >= 0 && rss < 64 * 1024));
		else
			printf("  hub RSS with %u actors: %.1f MiB (peak %.1f MiB)\n", n_spawned,
			       rss / 1024.0, hwm / 1024.0);
	}
	fflush(stdout);

	/* The hub's rules, through its indexes: a slot runs one actor, a name
	 * one actor; a killed actor is stopped on its agent and is dead. */
	if (n_spawned >= 2) {
		unsigned stops = atomic_load(&s.stops);

		rc = spoke_gang_launch(c, big, 0, "Sim", "another", NULL, 0, &so);
		CHECK(rc == SPOKE_EEXIST, "a second launch into slot 0: %s, want SPOKE_EEXIST",
		      spoke_strerror(rc));
		if (n_spawned < big->n_slots) {
			rc = spoke_gang_launch(c, big, n_spawned, "Sim", "a0", NULL, 0, &so);
			CHECK(rc == SPOKE_EEXIST, "a launch named a0 again: %s, want SPOKE_EEXIST",
			      spoke_strerror(rc));
		}
		rc = spoke_kill(c, "a1", 30000);
		CHECK(rc == 0, "kill a1: %s", spoke_errmsg());
		rc = spk_client_lookup(c, "a1", &ep, 30000);
		CHECK(rc == SPOKE_EDEAD, "lookup of killed a1: %s, want SPOKE_EDEAD",
		      spoke_strerror(rc));
		for (int i = 0; i < 5000 && atomic_load(&s.stops) == stops; i++)
			usleep(1000);
		CHECK(atomic_load(&s.stops) == stops + 1, "a1's agent got %u STOPs, want 1",
		      atomic_load(&s.stops) - stops);
		n_killed = 1;
	}

	/* 4. 10 % of the agents vanish. */
	for (uint32_t r = 0; r < n_spawned; r++)
		if (on_killed_node(&big->slots[r]))
			pending[n_pending++] = r;
	for (uint32_t i = 0; i < n; i += SIM_KILL_EVERY)
		n_dead_nodes++;
	t0 = spk_now_us();
	sim_command(&s, CMD_KILL);
	/* The hub kills a node's actors as it drops the node: once the list
	 * has lost them all, every lookup of their actors must fail. */
	for (;;) {
		rc = spoke_nodes(c, info, n + 1, 30000);
		CHECK(rc >= 0, "spoke_nodes: %s", spoke_errmsg());
		if ((uint32_t)rc == n - n_dead_nodes)
			break;
		CHECK(spk_now_us() - t0 < 30000000, "the hub lists %d nodes 30 s after %u of %u "
		      "vanished", rc, n_dead_nodes, n);
		usleep(200);
	}
	took = spk_now_us() - t0;
	for (uint32_t k = 0; k < n_pending; k++) {
		int lrc;

		snprintf(name, sizeof(name), "a%u", pending[k]);
		lrc = spk_client_lookup(c, name, &ep, 30000);
		CHECK(lrc == SPOKE_EDEAD || lrc == SPOKE_ENOACTOR,
		      "lookup of %s, on a vanished node: %s (%s), want SPOKE_EDEAD or "
		      "SPOKE_ENOACTOR", name, spoke_strerror(lrc), spoke_errmsg());
	}
	printf("  failure detection (%u of %u agents gone, %u actors): %.3f s "
	       "(target < 2 s: %s); then %u lookups of their actors all failed\n",
	       n_dead_nodes, n, n_pending, took / 1e6, verdict(took < 2000000), n_pending);
	for (int i = 0; i < rc; i++) {
		unsigned idx;

		CHECK(sscanf(info[i].name, "sim%u", &idx) == 1 && idx % SIM_KILL_EVERY != 0,
		      "vanished node %s still listed", info[i].name);
	}
	/* The live actors are still there. */
	for (uint32_t r = 0; r < n_spawned; r += 97) {
		if (on_killed_node(&big->slots[r]))
			continue;
		snprintf(name, sizeof(name), "a%u", r);
		rc = spk_client_lookup(c, name, &ep, 30000);
		CHECK(rc == 0, "lookup of live actor %s: %s", name, spoke_errmsg());
	}

	/* 5. The GPUs: once the big ticket is released (which stops its
	 * actors on the live nodes), exactly the live nodes' are free. */
	{
		unsigned stops = atomic_load(&s.stops);
		unsigned want = n_spawned - n_pending - (n_killed && !on_killed_node(&big->slots[1]));

		rc = spoke_gang_release(c, big, 30000);
		big = NULL;
		CHECK(rc == 0, "release of the %ux8 ticket: %s", n, spoke_errmsg());
		for (int i = 0; i < 10000 && atomic_load(&s.stops) - stops < want; i++)
			usleep(1000);
		CHECK(atomic_load(&s.stops) - stops == want,
		      "the release stopped %u actors on live nodes, want %u",
		      atomic_load(&s.stops) - stops, want);
	}
	rc = spoke_gang_allocate(c, n - n_dead_nodes + 1, SIM_GPUS, &res, 1, &rest, 30000);
	CHECK(rc == SPOKE_ENORES, "a %ux8 gang over %u live nodes: %s, want SPOKE_ENORES",
	      n - n_dead_nodes + 1, n - n_dead_nodes, spoke_strerror(rc));
	rest = NULL;
	rc = spoke_gang_allocate(c, n - n_dead_nodes, SIM_GPUS, &res, 1, &rest, 30000);
	CHECK(rc == 0, "a %ux8 gang over the live nodes: %s", n - n_dead_nodes, spoke_errmsg());
	printf("  after: a %ux8 gang over the live nodes fits, one node more does not\n",
	       n - n_dead_nodes);
	CHECK(atomic_load(&s.failed) == 0, "agents failed: %s", s.first_error);
out:
	if (c)
		spoke_client_close(c); /* frees its tickets */
	if (thread_on) {
		sim_command(&s, CMD_QUIT);
		pthread_join(s.thread, NULL);
	}
	if (s.loop) {
		for (uint32_t i = 0; i < n; i++) {
			struct sim_agent *a = &s.agents[i];

			if (a->state >= S_REGISTER && a->state != S_DEAD)
				spk_loop_close(&a->conn, 0);
			else if (a->fd >= 0)
				close(a->fd);
		}
		ev_loop_destroy(s.loop);
	}
	hub_stop(&hp, failures != fails_before);
	if (failures != fails_before && hp.dir[0])
		fprintf(stderr, "hub-sim: the hub's log is kept: %s\n", hp.log);
	free(s.agents);
	free(info);
	free(pending);
	fflush(stdout);
	return failures != fails_before ? -1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: hub-sim [--check] [--nodes N[,N...]] [--reps R] [--spawns M]\n"
		   "Plays N agents of 8 GPUs against a real spoke-hub ($SPOKE_BUILDDIR/spoke-hub)\n"
		   "and prints registration time, gang allocation latency, spawns/s, the hub's\n"
		   "RSS and failure detection (default --nodes 1024,4096 --reps 100).\n"
		   "--check: 1024 nodes, 10 reps, 2048 spawns, every count asserted.\n");
}

static int parse_nodes(const char *arg, struct opts *o)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	long v;

	o->n_nodes = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->n_nodes == 8 || spk_parse_num(tok, 1, 60000, &v) < 0) {
			free(copy);
			return -1;
		}
		o->nodes[o->n_nodes++] = (uint32_t)v;
	}
	free(copy);
	return o->n_nodes ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check", no_argument, NULL, 'c' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "spawns", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .nodes = { 1024, 4096 }, .n_nodes = 2, .reps = 100, .spawns = -1 };
	bool nodes_given = false, reps_given = false, spawns_given = false;
	uint32_t most = 0;
	long v, lim;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":cn:r:s:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o.check = true; break;
		case 'n':
			if (parse_nodes(optarg, &o) < 0)
				return spk_usage_error("--nodes", optarg);
			nodes_given = true;
			break;
		case 'r':
			if (spk_parse_num(optarg, 1, 100000, &v) < 0)
				return spk_usage_error("--reps", optarg);
			o.reps = (unsigned)v;
			reps_given = true;
			break;
		case 's':
			if (spk_parse_num(optarg, 0, 1 << 20, &v) < 0)
				return spk_usage_error("--spawns", optarg);
			o.spawns = v;
			spawns_given = true;
			break;
		case 'h': usage(stdout); return 0;
		default: return spk_bad_option(argv, opt);
		}
	}
	if (o.check) {
		if (!nodes_given) {
			o.nodes[0] = 1024;
			o.n_nodes = 1;
		}
		if (!reps_given)
			o.reps = 10;
		if (!spawns_given)
			o.spawns = 2048;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Thousands of connections with small frames, as in the hub. */
	spk_loop_set_buf_initial(4096);
	if (spk_auth_init() < 0) {
		fprintf(stderr, "hub-sim: libsodium did not initialise\n");
		return 1;
	}
	for (unsigned i = 0; i < o.n_nodes; i++)
		most = o.nodes[i] > most ? o.nodes[i] : most;
	/* Every agent is a descriptor here and one in the hub. */
	lim = spk_raise_fd_limit();
	if (lim >= 0 && lim < (long)most + 64) {
		printf("hub-sim: SKIP: %u agents need %u descriptors, the limit is %ld "
		       "(ulimit -Hn)\n", most, most + 64, lim);
		return o.check ? 77 : 0; /* make bench goes on */
	}
	for (unsigned i = 0; i < o.n_nodes; i++)
		run_one(o.nodes[i], &o, 0);
	if (o.check) /* the node table's limit, --max-nodes */
		run_one(20, &o, 16);
	if (failures)
		fprintf(stderr, "hub-sim: %d failure%s\n", failures, failures == 1 ? "" : "s");
	return failures ? 1 : 0;
}

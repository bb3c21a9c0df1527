/* test_hubrules.c - the hub's rules for clients and agents, tried as a
 * buggy or hostile token holder would, with raw frames (runtime/lib/sync_conn.h)
 * beside the public API on a real loopback cluster (fixture.c):
 *
 * - a refused spawn or launch (a bad name, a taken one) gets exactly one
 *   answer and starts and reserves nothing;
 * - names are checked as they are decoded, and what a peer sent cannot
 *   forge a line of the hub's log;
 * - an agent answers only the STARTs sent to it and reports only its own
 *   node's actors; with --allow-nodes only those nodes may register; nodes
 *   that come and go never fill the hub's table;
 * - a client's tickets and slots have a quota, and a client that does not
 *   read its answers cannot make the hub buffer without bound. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "auth.h"
#include "sync_conn.h"
#include "clock.h"
#include "../harness/fixture.h"
#include "frame.h"
#include "log.h"
#include "../harness/probe.h"
#include "client_priv.h"
#include "proto.h"

/* ---- raw frames ------------------------------------------------------- */

static int64_t in_ms(int ms)
{
	return spk_now_us() + (int64_t)ms * 1000;
}

/* An authenticated connection to the hub, as any token holder has. */
static void raw_open(struct spk_sync_conn *ch)
{
	char token[SPK_TOKEN_MAX];
	int rc;

	ck_assert_int_eq(spk_token_read_file(cl.token_file, token, sizeof(token)), 0);
	rc = spk_sync_open(ch, cl.hub_addr, token, "hub", 0, in_ms(5000));
	ck_assert_msg(rc == 0, "raw connection: %s", spoke_strerror(rc));
}

static void raw_send(struct spk_sync_conn *ch, spoke_buf *b, uint8_t type, uint64_t id)
{
	ck_assert_int_eq(spoke_buf_error(b), 0);
	ck_assert_int_eq(spk_sync_send_buf(ch, b, type, id, 0, in_ms(5000)), 0);
}

/* The next frame: its header, its payload copied into p[cap] with a NUL
 * after it (cut to fit); returns the payload's length. */
static size_t raw_recv(struct spk_sync_conn *ch, struct spk_hdr *h, void *p, size_t cap)
{
	const uint8_t *v = NULL;
	size_t n;

	ck_assert_int_eq(spk_sync_recv_hdr(ch, h, in_ms(10000)), 0);
	ck_assert_int_eq(spk_sync_recv_view(ch, h->len, &v, in_ms(5000)), 0);
	n = h->len < cap - 1 ? h->len : cap - 1;
	if (n)
		memcpy(p, v, n);
	((char *)p)[n] = '\0';
	return h->len;
}

/* Whether nothing more arrives within ms. */
static int raw_quiet(struct spk_sync_conn *ch, int ms)
{
	struct spk_hdr h;

	return spk_sync_recv_hdr(ch, &h, in_ms(ms)) == SPOKE_ETIMEDOUT;
}

/* A spawn spec whose name is name[0..n) (a NUL inside included). */
static void pack_spec(spoke_buf *b, const char *name, size_t n, uint32_t gpus)
{
	spoke_buf_put_str(b, "Probe");
	spoke_buf_put_strn(b, name, n);
	spoke_buf_put_str(b, "");
	spoke_buf_put_str(b, "");
	spoke_buf_put_bytes(b, NULL, 0);
	spoke_buf_put_u32(b, gpus);
	spoke_buf_put_u32(b, 0);
	spoke_buf_put_i32(b, -1);
	spoke_buf_put_u32(b, 5000);
	spoke_buf_put_u32(b, 0); /* no restarts */
	spoke_buf_put_u32(b, 0);
	spoke_buf_put_u32(b, 0); /* no GPUs chosen */
}

static void pack_alloc(spoke_buf *b, uint32_t per_node, uint32_t gpus)
{
	spoke_buf_put_u32(b, 1);
	spoke_buf_put_u32(b, per_node);
	spoke_buf_put_u32(b, gpus);
	spoke_buf_put_u32(b, 0);
	spoke_buf_put_u8(b, 0);
}

/* Sends the packed request (id 1), then NODES (id 2): the request must get
 * exactly one answer, before NODES' and with nothing after it.  Returns
 * its status, its text in msg. */
static int one_reply(struct spk_sync_conn *ch, spoke_buf *b, uint8_t type, char *msg, size_t cap)
{
	struct spk_hdr h;
	spoke_buf nb;
	char junk[256];
	int status;

	raw_send(ch, b, type, 1);
	spk_sync_begin(ch, &nb);
	raw_send(ch, &nb, SPK_NODES, 2);
	raw_recv(ch, &h, msg, cap);
	ck_assert_msg(h.type == SPK_REPLY && h.id == 1, "%s: first frame %s id %llu",
		      spk_type_name(type), spk_type_name(h.type), (unsigned long long)h.id);
	status = h.aux;
	raw_recv(ch, &h, junk, sizeof(junk));
	ck_assert_msg(h.type == SPK_REPLY && h.id == 2, "%s '%s': a second answer (%s id %llu)",
		      spk_type_name(type), msg, spk_type_name(h.type), (unsigned long long)h.id);
	ck_assert_msg(raw_quiet(ch, 300), "%s '%s': more answers", spk_type_name(type), msg);
	return status;
}

/* A ticket of one 1-GPU slot on connection ch: its id. */
static uint64_t raw_alloc(struct spk_sync_conn *ch, uint64_t req)
{
	char r[512];
	struct spk_hdr h;
	spoke_view v;
	uint64_t id = 0;
	spoke_buf b;

	spk_sync_begin(ch, &b);
	pack_alloc(&b, 1, 1);
	raw_send(ch, &b, SPK_ALLOC, req);
	raw_recv(ch, &h, r, sizeof(r));
	ck_assert_msg(h.id == req && h.aux == 0, "ALLOC: %s", r);
	spoke_view_init(&v, r, h.len);
	ck_assert_int_eq(spoke_view_get_u64(&v, &id), 0);
	return id;
}

/* REGISTER of node[0..n) (at host, with GPUs first..first+gpus-1): the
 * hub's status (its node index, 0 or more, when accepted), its text in msg. */
static int raw_register(struct spk_sync_conn *ch, const char *node, size_t n, const char *host,
			uint32_t gpus, int32_t first, char *msg, size_t cap)
{
	struct spk_hdr h;
	spoke_buf b;

	spk_sync_begin(ch, &b);
	spoke_buf_put_strn(&b, node, n);
	spoke_buf_put_str(&b, host);
	spoke_buf_put_u32(&b, (uint32_t)getpid());
	spoke_buf_put_u32(&b, 0);
	spoke_buf_put_u32(&b, gpus);
	for (uint32_t i = 0; i < gpus; i++)
		spoke_buf_put_i32(&b, first + (int32_t)i);
	raw_send(ch, &b, SPK_REGISTER, 77);
	raw_recv(ch, &h, msg, cap);
	ck_assert_msg(h.type == SPK_REPLY && h.id == 77, "REGISTER answered by %s",
		      spk_type_name(h.type));
	return h.aux;
}

/* Sends NODES on ch and waits for its answer: what ch sent before has been
 * handled. */
static void raw_barrier(struct spk_sync_conn *ch)
{
	struct spk_hdr h;
	char r[1024];
	spoke_buf b;

	spk_sync_begin(ch, &b);
	raw_send(ch, &b, SPK_NODES, 99);
	raw_recv(ch, &h, r, sizeof(r));
	ck_assert_msg(h.type == SPK_REPLY && h.id == 99, "barrier: %s id %llu",
		      spk_type_name(h.type), (unsigned long long)h.id);
}

/* ---- the cluster's state ------------------------------------------------ */

/* The hub's log, whole (at most cap - 1 bytes). */
static void hub_log(char *out, size_t cap)
{
	char path[128];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/hub.log", cl.dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

/* Waits (up to 3 s) for text in the hub's log. */
static int log_has(const char *text)
{
	static char log[1 << 20];

	for (int i = 0; i < 300; i++) {
		hub_log(log, sizeof(log));
		if (strstr(log, text))
			return 1;
		usleep(10000);
	}
	return 0;
}

/* ---- a refused spawn or launch starts nothing ----------------------------- */

static const struct {
	const char *s;
	size_t n;
} bad_names[] = {
	{ "", 0 }, { "a/b", 3 }, { "../x", 4 }, { "a\nb", 3 }, { ".", 1 },
	{ "..", 2 }, { "ab\0cd", 5 }, { "a b", 3 }, { "tab\t", 4 },
};
#define N_BAD (sizeof(bad_names) / sizeof(bad_names[0]))

START_TEST(refused_names_start_nothing)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_resources one = { .gpus = 1 };
	spoke_ticket *t;
	struct spk_sync_conn ch;
	uint64_t raw_t;
	char msg[512];
	spoke_buf b;
	int rc;

	o.res.gpus = 1;
	raw_open(&ch);
	raw_t = raw_alloc(&ch, 10);
	ck_assert_int_eq(spoke_gang_allocate(client, 1, 1, &one, 0, &t, 0), 0);
	for (size_t i = 0; i < N_BAD; i++) {
		const char *name = bad_names[i].s;
		size_t n = bad_names[i].n;

		if (strlen(name) == n) { /* one a C string can say */
			rc = spoke_spawn(client, "Probe", name, NULL, 0, &o);
			ck_assert_msg(rc == SPOKE_EINVAL, "spawn '%s': %s", name, spoke_strerror(rc));
			rc = spoke_gang_launch(client, t, 0, "Probe", name, NULL, 0, NULL);
			ck_assert_msg(rc == SPOKE_EINVAL, "launch '%s': %s", name,
				      spoke_strerror(rc));
		}
		spk_sync_begin(&ch, &b);
		pack_spec(&b, name, n, 1);
		rc = one_reply(&ch, &b, SPK_SPAWN, msg, sizeof(msg));
		ck_assert_msg(rc == SPOKE_EINVAL, "raw spawn #%zu: %s (%s)", i, spoke_strerror(rc),
			      msg);
		ck_assert_msg(strstr(msg, "actor name"), "raw spawn #%zu: %s", i, msg);
		ck_assert_msg(!strchr(msg, '\n'), "a newline in: %s", msg);
		spk_sync_begin(&ch, &b);
		spoke_buf_put_u64(&b, raw_t);
		spoke_buf_put_u32(&b, 0);
		pack_spec(&b, name, n, 1);
		rc = one_reply(&ch, &b, SPK_LAUNCH, msg, sizeof(msg));
		ck_assert_msg(rc == SPOKE_EINVAL, "raw launch #%zu: %s (%s)", i,
			      spoke_strerror(rc), msg);
	}
	/* Nothing started, nothing reserved but the two tickets' slots. */
	ck_assert_int_eq(cluster_workers(&cl), 0);
	ck_assert_uint_eq(free_gpus(NULL, 0), 6);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), 0);
	spk_sync_close(&ch);
}
END_TEST

/* A live actor's name, asked for again by spawn and by a launch into a free
 * slot: SPOKE_EEXIST, once; the first actor keeps running, managed, and
 * nothing else starts or stays reserved. */
START_TEST(taken_name_starts_nothing)
{
	spoke_resources one = { .gpus = 1 };
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_actor *a;
	spoke_ticket *t;
	struct spk_sync_conn ch;
	struct spk_hdr h;
	uint64_t raw_t;
	uint32_t pid;
	char msg[512];
	spoke_buf b;
	int rc;

	o.res.gpus = 1;
	a = spawn_open("taken", &o);
	pid = actor_pid(a);
	raw_open(&ch);
	raw_t = raw_alloc(&ch, 10);
	ck_assert_int_eq(spoke_gang_allocate(client, 1, 1, &one, 0, &t, 0), 0);

	ck_assert_int_eq(spoke_spawn(client, "Probe", "taken", NULL, 0, &o), SPOKE_EEXIST);
	ck_assert_int_eq(spoke_gang_launch(client, t, 0, "Probe", "taken", NULL, 0, NULL),
			 SPOKE_EEXIST);
	spk_sync_begin(&ch, &b);
	pack_spec(&b, "taken", 5, 1);
	ck_assert_int_eq(one_reply(&ch, &b, SPK_SPAWN, msg, sizeof(msg)), SPOKE_EEXIST);
	spk_sync_begin(&ch, &b);
	spoke_buf_put_u64(&b, raw_t);
	spoke_buf_put_u32(&b, 0);
	pack_spec(&b, "taken", 5, 1);
	rc = one_reply(&ch, &b, SPK_LAUNCH, msg, sizeof(msg));
	ck_assert_msg(rc == SPOKE_EEXIST, "%s (%s)", spoke_strerror(rc), msg);

	ck_assert_int_eq(cluster_workers(&cl), 1);
	ck_assert_uint_eq(free_gpus(NULL, 0), 5);
	ck_assert_uint_eq(actor_pid(a), pid);
	/* The slots were left free: launches with new names go in. */
	ck_assert_int_eq(spoke_gang_launch(client, t, 0, "Probe", "fresh", NULL, 0, NULL), 0);
	spk_sync_begin(&ch, &b);
	spoke_buf_put_u64(&b, raw_t);
	spoke_buf_put_u32(&b, 0);
	pack_spec(&b, "fresh2", 6, 1);
	raw_send(&ch, &b, SPK_LAUNCH, 3);
	raw_recv(&ch, &h, msg, sizeof(msg));
	ck_assert_msg(h.id == 3 && h.aux == 0, "launch fresh2: %d %s", h.aux, msg);
	ck_assert_int_eq(cluster_workers(&cl), 3);
	ck_assert_uint_eq(free_gpus(NULL, 0), 5);

	/* Killing "taken" stops the one worker that has that name. */
	ck_assert_int_eq(spoke_kill(client, "taken", 0), 0);
	for (int i = 0; i < 300 && cluster_workers(&cl) > 2; i++)
		usleep(10000);
	ck_assert_int_eq(cluster_workers(&cl), 2);
	ck_assert_uint_eq(free_gpus(NULL, 0), 6);
	spoke_actor_close(a);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), 0);
	spk_sync_close(&ch);
	for (int i = 0; i < 300 && cluster_workers(&cl) > 0; i++)
		usleep(10000);
	ck_assert_int_eq(cluster_workers(&cl), 0);
	ck_assert_uint_eq(free_gpus(NULL, 0), 8);
}
END_TEST

/* ---- agents answer for their own node only -------------------------------- */

/* A token holder registers as node "fake" (no GPUs) and reports that
 * another node's actor exited: refused; the actor keeps its GPU and runs. */
START_TEST(forged_exited_refused)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	struct spk_sync_conn fake;
	char msg[512];
	spoke_actor *a, *again;
	spoke_buf b;
	uint32_t pid;

	o.res.gpus = 1;
	a = spawn_open("victim", &o);
	pid = actor_pid(a);
	raw_open(&fake);
	ck_assert_int_ge(raw_register(&fake, "fake", 4, "127.0.0.1", 0, 0, msg, sizeof(msg)), 0);
	for (uint64_t id = 1; id <= 64; id++) {
		spk_sync_begin(&fake, &b);
		spoke_buf_put_str(&b, "victim");
		spoke_buf_put_str(&b, "was killed by signal 9 (forged)");
		raw_send(&fake, &b, SPK_EXITED, id);
	}
	raw_barrier(&fake);
	ck_assert_msg(log_has("refused node fake's report that actor victim of node n"),
		      "no refusal logged");
	ck_assert_uint_eq(free_gpus(NULL, 0), 7);
	ck_assert_int_eq(spoke_actor_open(client, "victim", &again, 0), 0);
	ck_assert_uint_eq(actor_pid(again), pid);
	spoke_actor_close(again);
	ck_assert_int_eq(spoke_spawn(client, "Probe", "victim", NULL, 0, &o), SPOKE_EEXIST);
	spoke_actor_close(a);
	spk_sync_close(&fake);
}
END_TEST

/* Restarts are the actor's own node's to report: the fake node's EXITED
 * "restarting" and RESTARTED (pointing the name at an address of its
 * choice) for another node's actor are refused and logged; the real
 * restart goes on, and the name leads to the real new worker. */
START_TEST(forged_restart_refused)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	struct spk_endpoint ep = { .addr = "127.0.0.1:1", .node = "fake", .pid = 1 };
	struct spk_exited ex = { .name = "phoenix", .why = "forged" };
	struct spk_sync_conn fake;
	spoke_actor *a, *again;
	char msg[512];
	spoke_buf b;
	uint32_t pid;

	o.res.gpus = 1;
	o.max_restarts = 2;
	o.restart_backoff_ms = 1000;
	a = spawn_open("phoenix", &o);
	pid = actor_pid(a);
	raw_open(&fake);
	ck_assert_int_ge(raw_register(&fake, "fake", 4, "127.0.0.1", 0, 0, msg, sizeof(msg)), 0);
	for (uint64_t id = 1; id <= 64; id++) {
		spk_sync_begin(&fake, &b);
		spk_exited_pack(&b, &ex);
		ck_assert_int_eq(spk_sync_send_buf(&fake, &b, SPK_EXITED, id, 1, in_ms(5000)), 0);
	}
	raw_barrier(&fake);
	ck_assert(log_has("refused node fake's report that actor phoenix of node n"));
	ck_assert_int_eq(spoke_actor_open(client, "phoenix", &again, 100), 0);
	ck_assert_uint_eq(actor_pid(again), pid);
	spoke_actor_close(again);
	/* The real worker dies: during its backoff the fake node claims the
	 * restart, with its own address. */
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	ck_assert(log_has("restart 1 of 2"));
	for (uint64_t id = 1; id <= 64; id++) {
		spk_sync_begin(&fake, &b);
		spk_endpoint_pack(&b, &ep);
		ck_assert_int_eq(spk_sync_send_buf(&fake, &b, SPK_RESTARTED, id, 1, in_ms(5000)), 0);
	}
	raw_barrier(&fake);
	ck_assert(log_has("refused node fake's RESTARTED"));
	ck_assert_int_eq(spoke_actor_open(client, "phoenix", &again, 5000), 0);
	ck_assert_uint_ne(actor_pid(again), pid);
	ck_assert_uint_ne(actor_pid(again), 1);
	spoke_actor_close(again);
	ck_assert_uint_eq(free_gpus(NULL, 0), 7);
	spoke_actor_close(a);
	ck_assert_int_eq(spoke_kill(client, "phoenix", 0), 0);
	spk_sync_close(&fake);
}
END_TEST

/* The fake node sends call figures for another node's actor, claiming 999
 * calls: refused, logged; STATUS shows the worker's own count. */
START_TEST(forged_stats_refused)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	static struct spk_stats st, got;
	struct spk_status *s = NULL;
	struct spk_sync_conn fake;
	uint8_t *raw = NULL, rep[16];
	uint64_t calls = 0;
	char msg[512];
	spoke_actor *a;
	spoke_buf b;
	size_t n;

	o.res.gpus = 1;
	a = spawn_open("counted", &o);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "abc", 3, rep, sizeof(rep), &n, 0), 0);
	raw_open(&fake);
	ck_assert_int_ge(raw_register(&fake, "fake", 4, "127.0.0.1", 0, 0, msg, sizeof(msg)), 0);
	st.n = 1;
	snprintf(st.m[0].name, sizeof(st.m[0].name), "echo");
	st.m[0].id = PROBE_ECHO;
	st.m[0].calls = st.m[0].lat[3] = 999;
	for (uint64_t id = 1; id <= 64; id++) {
		spk_sync_begin(&fake, &b);
		spk_stats_pack(&b, &st);
		raw_send(&fake, &b, SPK_STATS, id);
	}
	raw_barrier(&fake);
	ck_assert_msg(log_has("refused node fake's figures for actor counted of node n"),
		      "no refusal logged");
	/* The worker's own report comes within its period (1 s). */
	for (int i = 0; i < 50 && calls != 3; i++) {
		ck_assert_int_eq(spk_client_status(client, &s, &raw, 0), 0);
		for (uint32_t k = 0; k < s->n_actors; k++) {
			spoke_view v;

			if (strcmp(s->actors[k].name, "counted") || !s->actors[k].stats_len)
				continue;
			spoke_view_init(&v, s->actors[k].stats, s->actors[k].stats_len);
			ck_assert_int_eq(spk_stats_unpack(&v, &got), 0);
			for (uint32_t m = 0; m < got.n; m++)
				if (got.m[m].id == PROBE_ECHO)
					calls = got.m[m].calls;
		}
		spk_status_free(s);
		free(raw);
		if (calls != 3)
			usleep(100000);
	}
	ck_assert_uint_eq(calls, 3);
	spoke_actor_close(a);
	ck_assert_int_eq(spoke_kill(client, "counted", 0), 0);
	spk_sync_close(&fake);
}
END_TEST

/* While the real agents sleep, the fake one answers every START id with
 * an endpoint of its choice: refused; the client gets the real answer. */
START_TEST(forged_start_answer_refused)
{
	struct spk_sync_conn fake, ch;
	struct spk_endpoint ep = { .addr = "127.0.0.1:1", .node = "fake", .pid = 1 };
	struct spk_hdr h;
	char msg[512];
	spoke_view v;
	spoke_buf b;
	size_t n;

	raw_open(&fake);
	ck_assert_int_ge(raw_register(&fake, "fake", 4, "127.0.0.1", 0, 0, msg, sizeof(msg)), 0);
	raw_open(&ch);
	for (int i = 0; i < cl.n_agents; i++)
		ck_assert_int_eq(kill(cl.agents[i], SIGSTOP), 0);
	spk_sync_begin(&ch, &b);
	pack_spec(&b, "late", 4, 1);
	raw_send(&ch, &b, SPK_SPAWN, 5);
	raw_barrier(&ch); /* the START is out */
	for (uint64_t id = 1; id <= 64; id++) {
		spk_sync_begin(&fake, &b);
		spk_endpoint_pack(&b, &ep);
		raw_send(&fake, &b, SPK_REPLY, id);
	}
	raw_barrier(&fake);
	for (int i = 0; i < cl.n_agents; i++)
		ck_assert_int_eq(kill(cl.agents[i], SIGCONT), 0);
	n = raw_recv(&ch, &h, msg, sizeof(msg));
	ck_assert_msg(h.id == 5 && h.aux == 0, "spawn: %d %s", h.aux, msg);
	spoke_view_init(&v, msg, n);
	ck_assert_int_eq(spk_endpoint_unpack(&v, &ep), 0);
	ck_assert_msg(strcmp(ep.addr, "127.0.0.1:1") && strcmp(ep.node, "fake"),
		      "the forged answer was taken: %s on %s", ep.addr, ep.node);
	ck_assert_msg(log_has("refused an answer from node fake to start"), "no refusal logged");
	ck_assert_int_eq(cluster_workers(&cl), 1);
	ck_assert_int_eq(spoke_kill(client, "late", 0), 0);
	spk_sync_close(&ch);
	spk_sync_close(&fake);
}
END_TEST

/* ---- names and logs ------------------------------------------------------ */

#define FORGED "spoke-hub[n9:1]: FORGED"

/* No line of the hub's log starts with the forged text. */
static void assert_no_forged_line(void)
{
	static char log[1 << 20];

	hub_log(log, sizeof(log));
	ck_assert_msg(strncmp(log, FORGED, strlen(FORGED)) && !strstr(log, "\n" FORGED),
		      "a forged log line:\n%s", log);
}

START_TEST(peer_text_cannot_forge_log_lines)
{
	struct spk_sync_conn fake, ch;
	struct spk_endpoint ep = { .addr = "127.0.0.1:9", .node = "fake", .pid = 1 };
	const char *bad_node = "evil\n" FORGED;
	struct spk_hdr h;
	uint64_t start;
	char msg[512];
	spoke_buf b;
	int rc;

	/* A name or host with a newline (or a NUL inside) is refused as it
	 * is decoded; the refusal is logged escaped. */
	raw_open(&fake);
	rc = raw_register(&fake, bad_node, strlen(bad_node), "127.0.0.1", 0, 0, msg, sizeof(msg));
	ck_assert_msg(rc == SPOKE_EINVAL, "%s (%s)", spoke_strerror(rc), msg);
	ck_assert_msg(strstr(msg, "evil\\nspoke-hub"), "%s", msg);
	rc = raw_register(&fake, "fa\0ke", 5, "127.0.0.1", 0, 0, msg, sizeof(msg));
	ck_assert_msg(rc == SPOKE_EINVAL, "%s (%s)", spoke_strerror(rc), msg);
	rc = raw_register(&fake, "fake", 4, "h\n" FORGED, 0, 0, msg, sizeof(msg));
	ck_assert_msg(rc == SPOKE_EINVAL, "%s (%s)", spoke_strerror(rc), msg);
	ck_assert(log_has("evil\\nspoke-hub"));
	assert_no_forged_line();

	/* An agent's own actor, reported exited with a reason that has a
	 * newline: the reason is logged escaped. */
	rc = raw_register(&fake, "fake", 4, "127.0.0.1", 1, 99, msg, sizeof(msg));
	ck_assert_msg(rc >= 0, "%s (%s)", spoke_strerror(rc), msg);
	raw_open(&ch);
	spk_sync_begin(&ch, &b);
	pack_spec(&b, "mine", 4, 1); /* best fit: the fake node, 1 GPU */
	raw_send(&ch, &b, SPK_SPAWN, 6);
	raw_recv(&fake, &h, msg, sizeof(msg));
	ck_assert_int_eq(h.type, SPK_START);
	start = h.id;
	spk_sync_begin(&fake, &b);
	spk_endpoint_pack(&b, &ep);
	raw_send(&fake, &b, SPK_REPLY, start);
	raw_recv(&ch, &h, msg, sizeof(msg));
	ck_assert_msg(h.id == 6 && h.aux == 0, "spawn: %d %s", h.aux, msg);
	spk_sync_begin(&fake, &b);
	spoke_buf_put_str(&b, "mine");
	spoke_buf_put_str(&b, "died\n" FORGED);
	raw_send(&fake, &b, SPK_EXITED, start);
	raw_barrier(&fake);
	ck_assert_msg(log_has("actor mine on fake: died\\nspoke-hub"), "no escaped reason");
	assert_no_forged_line();
	spk_sync_close(&ch);
	spk_sync_close(&fake);
}
END_TEST

/* ---- nodes that come and go ------------------------------------------------ */

START_TEST(node_churn_never_fills_table)
{
	char name[32], msg[256];
	struct spk_sync_conn fake;

	for (int i = 0; i < 300; i++) {
		int rc;

		raw_open(&fake);
		snprintf(name, sizeof(name), "churn%d", i);
		rc = raw_register(&fake, name, strlen(name), "127.0.0.1", 1, 0, msg, sizeof(msg));
		ck_assert_msg(rc >= 0, "cycle %d: %s (%s)", i, spoke_strerror(rc), msg);
		/* Its entry: n1's, n2's, or one of the few that the last
		 * disconnections (handled as they come) may still hold. */
		ck_assert_msg(rc < 8, "cycle %d: node entry %d", i, rc);
		spk_sync_close(&fake);
	}
	ck_assert_int_eq(cluster_add_agent(&cl, "n3", "8-11"), 0);
	ck_assert_uint_eq(free_gpus(NULL, 0), 12);
}
END_TEST

/* ---- a hub of our own (options) ---------------------------------------------- */

/* A hub started with extra options (and env, "NAME=value" or NULL), into cl. */
static void own_hub(const char *const *extra, const char *env)
{
	char hub[512], addr_file[160], log[160], listen[] = "127.0.0.1:0";
	const char *argv[16] = { cluster_path(hub, sizeof(hub), "spoke-hub"), "--listen", listen,
				 "--address-file", addr_file, "--token-file", cl.token_file };
	int n = 7, i;
	FILE *f;

	memset(&cl, 0, sizeof(cl));
	snprintf(cl.dir, sizeof(cl.dir), "/tmp/spoke-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(cl.dir));
	snprintf(cl.token_file, sizeof(cl.token_file), "%s/token", cl.dir);
	snprintf(addr_file, sizeof(addr_file), "%s/hub.addr", cl.dir);
	snprintf(log, sizeof(log), "%s/hub.log", cl.dir);
	for (; *extra && n < 15; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	cl.hub = fork();
	ck_assert_int_ge(cl.hub, 0);
	if (cl.hub == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 2);
		if (env)
			putenv((char *)env);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	for (i = 0; i < 500 && !(f = fopen(addr_file, "r")); i++)
		usleep(10000);
	ck_assert_msg(i < 500, "the hub did not start");
	ck_assert_ptr_nonnull(fgets(cl.hub_addr, sizeof(cl.hub_addr), f));
	fclose(f);
	cl.hub_addr[strcspn(cl.hub_addr, "\n")] = '\0';
	setenv("SPOKE_HUB", cl.hub_addr, 1);
	setenv("SPOKE_TOKEN_FILE", cl.token_file, 1);
}

static void own_teardown(void)
{
	if (client)
		spoke_client_close(client);
	client = NULL;
	cluster_stop(&cl);
}

START_TEST(only_allowed_nodes_register)
{
	const char *extra[] = { "--allow-nodes", "n1,n2", NULL };
	struct spk_sync_conn fake;
	char msg[256];
	int rc;

	own_hub(extra, NULL);
	raw_open(&fake);
	rc = raw_register(&fake, "n9", 2, "127.0.0.1", 1, 0, msg, sizeof(msg));
	ck_assert_msg(rc == -EPERM, "%s (%s)", spoke_strerror(rc), msg);
	ck_assert_msg(strstr(msg, "not a node of this job"), "%s", msg);
	ck_assert(log_has("refused node n9 from"));
	/* The same connection (or a real agent) for an allowed node: in. */
	rc = raw_register(&fake, "n2", 2, "127.0.0.1", 1, 0, msg, sizeof(msg));
	ck_assert_msg(rc >= 0, "%s (%s)", spoke_strerror(rc), msg);
	ck_assert_int_eq(cluster_add_agent(&cl, "n1", "0-3"), 0);
	spk_sync_close(&fake);
}
END_TEST

/* The flood: ALLOC of 1 x 16384 0-GPU slots, again and again,
 * without reading the answers: refused past the quota, the hub's memory
 * flat.  Then ALLOC/RELEASE pairs of 4096 slots (90 kB answers each) that
 * are never read while they are sent: the hub stops taking requests from
 * this client once its unsent answers are over the bound, every request
 * still gets its one answer once the client reads. */
#define FLOOD_ALLOCS 64
#define FLOOD_PAIRS 1000

struct flood {
	int fd;
	uint8_t *req;
	size_t len;
	int rc;
};

static void *flood_send(void *arg)
{
	struct flood *f = arg;
	size_t sent = 0;

	while (sent < f->len) {
		struct pollfd p = { .fd = f->fd, .events = POLLOUT };
		ssize_t n = send(f->fd, f->req + sent, f->len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			sent += (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			f->rc = -errno;
			return NULL;
		} else if (poll(&p, 1, 20000) <= 0) {
			f->rc = -ETIMEDOUT;
			return NULL;
		}
	}
	return NULL;
}

static size_t put_frame(uint8_t *out, uint8_t type, uint64_t id, spoke_buf *b)
{
	spk_hdr_encode(out, type, id, 0, (uint32_t)b->len);
	memcpy(out + SPK_HDR_SIZE, b->data, b->len);
	return SPK_HDR_SIZE + b->len;
}

START_TEST(flood_is_bounded)
{
	/* ASan's quarantine would keep the freed tickets' memory. */
	const char *extra[] = { NULL };
	struct flood f = { 0 };
	struct spk_sync_conn fake, ch;
	struct spk_hdr h;
	static char msg[1 << 20];
	uint8_t pay[64];
	long rss0, rss;
	uint64_t first;
	pthread_t th;
	spoke_buf b;

	own_hub(extra, "ASAN_OPTIONS=quarantine_size_mb=8:detect_leaks=1");
	raw_open(&fake);
	ck_assert_int_ge(raw_register(&fake, "n1", 2, "127.0.0.1", 0, 0, msg, sizeof(msg)), 0);
	raw_open(&ch);
	raw_barrier(&ch);
	rss0 = cluster_proc_kib(cl.hub, "VmRSS");

	for (uint64_t i = 0; i < FLOOD_ALLOCS; i++) {
		spk_sync_begin(&ch, &b);
		pack_alloc(&b, 16384, 0);
		raw_send(&ch, &b, SPK_ALLOC, 100 + i);
	}
	usleep(500000);
	rss = cluster_proc_kib(cl.hub, "VmRSS");
	for (uint64_t i = 0; i < FLOOD_ALLOCS; i++) {
		raw_recv(&ch, &h, msg, sizeof(msg));
		ck_assert_uint_eq(h.id, 100 + i);
		ck_assert_msg(h.aux == SPOKE_ENORES && strstr(msg, "quota of 4096 slots"),
			      "ALLOC 1x16384 #%llu: %d %.200s", (unsigned long long)i, h.aux, msg);
	}
	fprintf(stderr, "flood of %d ALLOC 1x16384: hub VmRSS %ld -> %ld KiB\n", FLOOD_ALLOCS,
		rss0, rss);
	ck_assert_msg(rss - rss0 < 16384, "hub VmRSS grew from %ld to %ld KiB", rss0, rss);

	/* The first ticket's id; the flood's follow one by one. */
	spk_sync_begin(&ch, &b);
	pack_alloc(&b, 4096, 0);
	raw_send(&ch, &b, SPK_ALLOC, 1);
	raw_recv(&ch, &h, msg, sizeof(msg));
	ck_assert_int_eq(h.aux, 0);
	memcpy(&first, msg, 8); /* little-endian, as this machine */
	f.req = malloc(FLOOD_PAIRS * 2 * (SPK_HDR_SIZE + sizeof(pay)));
	ck_assert_ptr_nonnull(f.req);
	for (uint64_t i = 0; i < FLOOD_PAIRS; i++) {
		spoke_buf_init(&b, pay, sizeof(pay));
		spoke_buf_put_u64(&b, first + i);
		f.len += put_frame(f.req + f.len, SPK_RELEASE, 2 * i + 2, &b);
		spoke_buf_init(&b, pay, sizeof(pay));
		pack_alloc(&b, 4096, 0);
		f.len += put_frame(f.req + f.len, SPK_ALLOC, 2 * i + 3, &b);
	}
	f.fd = ch.fd;
	rss0 = cluster_proc_kib(cl.hub, "VmRSS");
	ck_assert_int_eq(pthread_create(&th, NULL, flood_send, &f), 0);
	usleep(1500000);
	rss = cluster_proc_kib(cl.hub, "VmRSS");
	for (uint64_t id = 2; id < 2 + 2 * FLOOD_PAIRS; id++) {
		raw_recv(&ch, &h, msg, sizeof(msg));
		ck_assert_msg(h.type == SPK_REPLY && h.id == id && h.aux == 0,
			      "answer %llu: %s id %llu status %d %.200s", (unsigned long long)id,
			      spk_type_name(h.type), (unsigned long long)h.id, h.aux, msg);
	}
	pthread_join(th, NULL);
	ck_assert_int_eq(f.rc, 0);
	ck_assert_msg(raw_quiet(&ch, 200), "more answers than requests");
	fprintf(stderr, "%d unread ALLOC/RELEASE pairs: hub VmRSS %ld -> %ld KiB\n", FLOOD_PAIRS,
		rss0, rss);
	ck_assert_msg(rss - rss0 < 40 * 1024, "hub VmRSS grew from %ld to %ld KiB", rss0, rss);
	free(f.req);
	spk_sync_close(&ch);
	spk_sync_close(&fake);
}
END_TEST

/* ---- the decoders and the escaping, alone ------------------------------- */

START_TEST(names_checked_at_decode)
{
	static const struct {
		const char *s;
		size_t n;
		int ok;
	} cases[] = {
		{ "n1", 2, 1 }, { "a.b-c_d:9", 9, 1 }, { "...", 3, 1 }, { "\xc3\xa9t\xc3\xa9", 5, 1 },
		{ "", 0, 0 }, { ".", 1, 0 }, { "..", 2, 0 }, { "a/b", 3, 0 }, { "a b", 3, 0 },
		{ "a\nb", 3, 0 }, { "a\0b", 3, 0 }, { "\x7f", 1, 0 },
		{ "0123456789012345678901234567890123456789012345678901234567890123", 64, 0 },
	};
	uint8_t raw[256];
	char out[SPOKE_NODE_NAME_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		spoke_buf b;
		spoke_view v;
		int rc;

		spoke_buf_init(&b, raw, sizeof(raw));
		spoke_buf_put_strn(&b, cases[i].s, cases[i].n);
		spoke_buf_put_u32(&b, 7);
		spoke_view_init(&v, raw, b.len);
		rc = spk_view_get_name(&v, "node name", out, sizeof(out));
		if (cases[i].ok) {
			uint32_t after = 0;

			ck_assert_msg(rc == 0, "#%zu: %s", i, spoke_errmsg());
			ck_assert_uint_eq(strlen(out), cases[i].n);
			ck_assert_int_eq(spoke_view_get_u32(&v, &after), 0);
			ck_assert_uint_eq(after, 7);
		} else {
			ck_assert_msg(rc == SPOKE_EINVAL, "#%zu: %d", i, rc);
			ck_assert_int_eq(spoke_view_error(&v), SPOKE_EINVAL);
			ck_assert_msg(strstr(spoke_errmsg(), "node name"), "%s", spoke_errmsg());
			ck_assert_msg(!strchr(spoke_errmsg(), '\n'), "%s", spoke_errmsg());
			ck_assert_str_eq(out, "");
		}
	}
	/* Paths may have '/' and spaces, not control characters. */
	ck_assert_int_eq(spk_path_check("module", "/a b/c.so", 9, 64), 0);
	ck_assert_int_eq(spk_path_check("module", "", 0, 64), 0);
	ck_assert_int_eq(spk_path_check("module", "/a\nb", 4, 64), SPOKE_EINVAL);
}
END_TEST

START_TEST(escape_for_logs)
{
	char out[64];

	ck_assert_str_eq(spk_log_escape(out, sizeof(out), "plain", 5), "plain");
	ck_assert_str_eq(spk_log_escape(out, sizeof(out), "a\nb\r\t\\\x1b[0m\x7f", 11),
			 "a\\nb\\r\\t\\\\\\x1b[0m\\x7f");
	ck_assert_str_eq(spk_log_escape(out, sizeof(out), "a\0b", 3), "a\\x00b");
	ck_assert_str_eq(spk_log_escape(out, sizeof(out), "", 0), "");
	/* Cut to fit, with "...", never past cap. */
	for (size_t cap = 4; cap < 20; cap++) {
		memset(out, '#', sizeof(out));
		spk_log_escape(out, cap, "0123456789\n\n", 12);
		ck_assert_uint_lt(strlen(out), cap);
		ck_assert_int_eq(out[cap], '#');
		if (cap < 15)
			ck_assert_msg(strstr(out, "..."), "cap %zu: %s", cap, out);
		else
			ck_assert_str_eq(out, "0123456789\\n\\n");
	}
	ck_assert_str_eq(spk_log_escape(out, 4, "ab", 2), "ab");
	ck_assert_str_eq(spk_log_escape(out, 4, "abcd", 4), "...");
}
END_TEST

static Suite *rules_suite(void)
{
	Suite *s = suite_create("hubrules");
	TCase *tc = tcase_create("cluster");
	TCase *own = tcase_create("own_hub");
	TCase *alone = tcase_create("decode");

	tcase_add_test(alone, names_checked_at_decode);
	tcase_add_test(alone, escape_for_logs);
	suite_add_tcase(s, alone);

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, refused_names_start_nothing);
	tcase_add_test(tc, taken_name_starts_nothing);
	tcase_add_test(tc, forged_exited_refused);
	tcase_add_test(tc, forged_stats_refused);
	tcase_add_test(tc, forged_restart_refused);
	tcase_add_test(tc, forged_start_answer_refused);
	tcase_add_test(tc, peer_text_cannot_forge_log_lines);
	tcase_add_test(tc, node_churn_never_fills_table);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(own, NULL, own_teardown);
	tcase_set_timeout(own, 60);
	tcase_add_test(own, only_allowed_nodes_register);
	tcase_add_test(own, flood_is_bounded);
	suite_add_tcase(s, own);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rules_suite());
	int failed;

	setenv("SPOKE_LOG", "info", 1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

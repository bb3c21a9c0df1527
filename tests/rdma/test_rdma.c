/* test_rdma.c - what belongs to the RDMA transport alone, with real verbs:
 * a hub, two agents and real workers on the address of a real RDMA device
 * (rxe under `make check-rxe`, or whatever device the machine has): the
 * fallback to TCP where a side has no device, a worker reached through its
 * node's RDMA address, cookies and lying headers on a queue pair, and what
 * a connection's keys reach.  The semantics of calls, the same on every
 * transport, are tests/calls/test_calls.c's (rdma.sh runs them over RDMA).
 * Exits 77 where there is no device. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <rdma/rdma_cma.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"
#include "../harness/rdmadev.h"
#include "auth.h"
#include "sync_conn.h"
#include "client_priv.h"
#include "clock.h"
#include "frame.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "transport/rdma/rdma_qp.h"

#define MiB (1u << 20)

/* A handle over RDMA (auto would take shared memory: the test's client and
 * workers share a node). */
static spoke_actor *spawn_open_rdma(const char *name)
{
	spoke_actor *a;

	setenv("SPOKE_TRANSPORT", "rdma", 1);
	a = spawn_open(name, NULL);
	unsetenv("SPOKE_TRANSPORT");
	ck_assert_str_eq(spoke_actor_transport(a), "rdma");
	return a;
}

static uint8_t *pattern(size_t n, uint8_t seed)
{
	uint8_t *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = probe_byte(seed, i);
	return p;
}

static void check_pattern(const uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != probe_byte(seed, i))
			ck_abort_msg("byte %zu of %zu is %u, not %u", i, n, p[i], probe_byte(seed, i));
}

START_TEST(auto_falls_back_when_a_side_has_no_device)
{
	spoke_actor *a;
	uint8_t rep[8];
	size_t got;
	int rc;

	ck_assert_int_eq(spoke_spawn(client, "Probe", "fb", NULL, 0, NULL), 0);
	/* The client's side: no device of that name.  On one node auto takes
	 * shared memory first; RDMA's own fallback shows with the list that
	 * leaves shared memory out. */
	setenv("SPOKE_RDMA_DEVICE", "nosuchdev0", 1);
	ck_assert_int_eq(spoke_actor_open(client, "fb", &a, 0), 0);
	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	spoke_actor_close(a);
	setenv("SPOKE_TRANSPORT", "rdma,tcp", 1);
	ck_assert_int_eq(spoke_actor_open(client, "fb", &a, 0), 0);
	ck_assert_str_eq(spoke_actor_transport(a), "tcp");
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "tcp", 3, rep, sizeof(rep), &got, 0), 0);
	ck_assert_int_eq(spoke_actor_init_rdma(a, 0), SPOKE_ERDMA);
	ck_assert_ptr_nonnull(strstr(spoke_errmsg(), "nosuchdev0"));
	spoke_actor_close(a);
	setenv("SPOKE_TRANSPORT", "rdma", 1);
	rc = spoke_actor_open(client, "fb", &a, 0);
	ck_assert_int_eq(rc, SPOKE_ERDMA);
	ck_assert_msg(strstr(spoke_errmsg(), "SPOKE_TRANSPORT=rdma") &&
			      strstr(spoke_errmsg(), "nosuchdev0"),
		      "%s", spoke_errmsg());
	unsetenv("SPOKE_RDMA_DEVICE");
	unsetenv("SPOKE_TRANSPORT");
	/* The actor's side: an agent (and its workers) told to use TCP only. */
	setenv("SPOKE_TRANSPORT", "tcp", 1);
	ck_assert_int_eq(cluster_add_agent(&cl, "n3", "8-15"), 0);
	unsetenv("SPOKE_TRANSPORT");
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	o.res.gpus = 5; /* only n3 has that many */
	ck_assert_int_eq(spoke_spawn(client, "Probe", "tcponly", NULL, 0, &o), 0);
	ck_assert_int_eq(spoke_actor_open(client, "tcponly", &a, 0), 0); /* auto */
	ck_assert_str_eq(spoke_actor_transport(a), "tcp");
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "tcp", 3, rep, sizeof(rep), &got, 0), 0);
	spoke_actor_close(a);
	setenv("SPOKE_TRANSPORT", "rdma", 1);
	ck_assert_int_eq(spoke_actor_open(client, "tcponly", &a, 0), SPOKE_ERDMA);
	ck_assert_msg(strstr(spoke_errmsg(), "the actor's side") &&
			      strstr(spoke_errmsg(), "SPOKE_TRANSPORT=tcp"),
		      "%s", spoke_errmsg());
	unsetenv("SPOKE_TRANSPORT");
	/* The actor's side: no device of the name its node was told to use. */
	setenv("SPOKE_RDMA_DEVICE", "nosuchdev1", 1);
	ck_assert_int_eq(cluster_add_agent(&cl, "n4", "16-27"), 0);
	unsetenv("SPOKE_RDMA_DEVICE");
	o.res.gpus = 10; /* only n4 has that many */
	ck_assert_int_eq(spoke_spawn(client, "Probe", "nodev", NULL, 0, &o), 0);
	setenv("SPOKE_TRANSPORT", "rdma,tcp", 1);
	ck_assert_int_eq(spoke_actor_open(client, "nodev", &a, 0), 0);
	unsetenv("SPOKE_TRANSPORT");
	ck_assert_str_eq(spoke_actor_transport(a), "tcp");
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "tcp", 3, rep, sizeof(rep), &got, 0), 0);
	ck_assert_int_eq(spoke_actor_init_rdma(a, 0), SPOKE_ERDMA);
	ck_assert_msg(strstr(spoke_errmsg(), "nosuchdev1"), "%s", spoke_errmsg());
	spoke_actor_close(a);
}
END_TEST

/* A worker whose TCP address no RDMA device serves still gets RDMA: it
 * offers its node's RDMA addresses, and the client connects to one. */
START_TEST(rdma_through_another_address)
{
	char plain[64], gpus[16];
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	struct spk_endpoint ep;
	spoke_actor *a;
	uint8_t rep[8];
	size_t got;

	if (!harness_rdma_find_addr(false, plain, sizeof(plain))) {
		printf("# no address without RDMA here: nothing to check\n");
		return;
	}
	setenv("SPOKE_TEST_ADVERTISE", plain, 1);
	ck_assert_int_eq(cluster_add_agent(&cl, "n3", "8-15"), 0);
	unsetenv("SPOKE_TEST_ADVERTISE");
	o.res.gpus = 5; /* only n3 has that many */
	ck_assert_int_eq(spoke_spawn(client, "Probe", "elsewhere", NULL, 0, &o), 0);
	ck_assert_int_eq(spk_client_lookup(client, "elsewhere", &ep, 5000), 0);
	ck_assert_msg(strncmp(ep.addr, plain, strlen(plain)) == 0, "%s", ep.addr);
	setenv("SPOKE_TRANSPORT", "rdma", 1);
	ck_assert_msg(spoke_actor_open(client, "elsewhere", &a, 0) == 0, "%s", spoke_errmsg());
	ck_assert_str_eq(spoke_actor_transport(a), "rdma");
	ck_assert_int_eq(spoke_call(a, PROBE_GPUS, NULL, 0, gpus, sizeof(gpus) - 1, &got, 0), 0);
	gpus[got] = '\0';
	ck_assert_msg(strncmp(gpus, "8,", 2) == 0, "on n3's GPUs, not %s", gpus);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "far", 3, rep, sizeof(rep), &got, 0), 0);
	ck_assert_uint_eq(got, 3);
	printf("# worker at %s (TCP), reached over RDMA\n", ep.addr);
	spoke_actor_close(a);
}
END_TEST

/* A raw rdma_cm connection attempt, as rdma_client.c makes it, but with
 * the proof chosen by the test. */
struct raw {
	struct rdma_event_channel *ec;
	struct rdma_cm_id *id;
	struct spk_rqp q;
	uint32_t index; /* the cookie, as the worker issued it */
	uint8_t cookie[SPK_RDMA_COOKIE];
	uint8_t accept_mac[SPK_MAC_SIZE]; /* the worker's proof, on ESTABLISHED */
	/* The TCP connection that asked for the cookie, held while the RDMA
	 * one lives: the worker ends an RDMA connection when the TCP
	 * connection that asked for it closes. */
	struct spk_sync_conn ch;
	bool asked;
};

enum proof { PROOF_RIGHT, PROOF_FORGED_COOKIE, PROOF_WRONG_TOKEN, PROOF_REPLAY };

/* Connects to actor name's worker at ep: asks it for a cookie (except for a
 * replay of r's last one) and proves it as told; returns the event that
 * ends the attempt.  The caller destroys r with raw_close. */
static enum rdma_cm_event_type raw_connect(const char *name, const struct spk_endpoint *ep,
					   enum proof proof, struct raw *r)
{
	int64_t deadline = spk_now_us() + 5000000;
	char host[64], token[SPK_TOKEN_MAX], ident[SPK_IDENT_MAX];
	const char *addr = ep->addr;
	uint8_t priv[4 + SPK_MAC_SIZE], cookie[SPK_RDMA_COOKIE];
	struct rdma_conn_param param;
	struct rdma_cm_event *ev;
	enum rdma_cm_event_type t;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	const uint8_t *p;
	struct spk_sync_conn *ch = &r->ch;
	struct spk_hdr h;
	uint16_t port, tcp_port;
	spoke_view v;

	ck_assert_int_eq(spk_token_load(NULL, token, sizeof(token)), 0);
	spk_ident_actor(ident, name, ep->incarnation);
	ck_assert_int_eq(spk_sync_open(ch, addr, token, ident, 0, deadline), 0);
	r->asked = true;
	ck_assert_int_eq(spk_sync_send(ch, SPK_RDMA, 1, 0, NULL, 0, deadline), 0);
	ck_assert_int_eq(spk_sync_recv_hdr(ch, &h, deadline), 0);
	ck_assert_int_eq(spk_sync_recv_view(ch, h.len, &p, deadline), 0);
	ck_assert_int_eq(h.aux, 0);
	spoke_view_init(&v, p, h.len);
	spoke_view_get_u16(&v, &port);
	if (proof != PROOF_REPLAY) {
		spoke_view_get_u32(&v, &r->index);
		memcpy(r->cookie, p + v.pos, SPK_RDMA_COOKIE);
	}
	memcpy(cookie, r->cookie, SPK_RDMA_COOKIE);
	if (proof == PROOF_FORGED_COOKIE)
		memset(cookie, 0x5a, sizeof(cookie));
	if (proof == PROOF_WRONG_TOKEN)
		token[0] ^= 1;
	memcpy(priv, &r->index, 4); /* little-endian here */
	spk_auth_mac(priv + 4, token, SPK_LABEL_RDMA_CLIENT, cookie);

	spk_parse_hostport(addr, host, sizeof(host), &tcp_port);
	inet_pton(AF_INET, host, &sin.sin_addr);
	sin.sin_port = htons(port);
	r->ec = rdma_create_event_channel();
	ck_assert_int_eq(rdma_create_id(r->ec, &r->id, NULL, RDMA_PS_TCP), 0);
	ck_assert_int_eq(rdma_resolve_addr(r->id, NULL, (struct sockaddr *)&sin, 2000), 0);
	ck_assert_int_eq(rdma_get_cm_event(r->ec, &ev), 0);
	ck_assert_int_eq(ev->event, RDMA_CM_EVENT_ADDR_RESOLVED);
	rdma_ack_cm_event(ev);
	ck_assert_int_eq(rdma_resolve_route(r->id, 2000), 0);
	ck_assert_int_eq(rdma_get_cm_event(r->ec, &ev), 0);
	rdma_ack_cm_event(ev);
	ck_assert_int_eq(spk_rqp_create(&r->q, r->id, 4, 4, 0), 0);
	spk_rqp_conn_param(&r->q, &param, priv, sizeof(priv));
	ck_assert_int_eq(rdma_connect(r->id, &param), 0);
	ck_assert_int_eq(rdma_get_cm_event(r->ec, &ev), 0);
	t = ev->event;
	if (t == RDMA_CM_EVENT_ESTABLISHED)
		memcpy(r->accept_mac, ev->param.conn.private_data, SPK_MAC_SIZE);
	rdma_ack_cm_event(ev);
	return t;
}

static void raw_close(struct raw *r)
{
	spk_rqp_destroy(&r->q);
	rdma_destroy_id(r->id);
	rdma_destroy_event_channel(r->ec);
	if (r->asked)
		spk_sync_close(&r->ch);
	r->asked = false;
}

START_TEST(bad_cookie_and_garbage_refused)
{
	spoke_actor *a = spawn_open_rdma("guard");
	char token[SPK_TOKEN_MAX];
	struct rdma_cm_event *ev;
	struct spk_endpoint ep;
	uint8_t rep[8], *s;
	struct raw r;
	size_t got;
	unsigned k;

	/* The worker's TCP address, from the hub. */
	ck_assert_int_eq(spk_client_lookup(client, "guard", &ep, 5000), 0);
	ck_assert_int_eq(spk_token_load(NULL, token, sizeof(token)), 0);
	/* A cookie the worker never issued, a real one proved without the token
	 * (read off the wire, say), and one used twice: all rejected. */
	ck_assert_int_eq(raw_connect("guard", &ep, PROOF_FORGED_COOKIE, &r), RDMA_CM_EVENT_REJECTED);
	raw_close(&r);
	ck_assert_int_eq(raw_connect("guard", &ep, PROOF_WRONG_TOKEN, &r), RDMA_CM_EVENT_REJECTED);
	raw_close(&r);
	ck_assert_int_eq(raw_connect("guard", &ep, PROOF_RIGHT, &r), RDMA_CM_EVENT_ESTABLISHED);
	ck_assert(spk_auth_verify(r.accept_mac, token, SPK_LABEL_RDMA_SERVER, r.cookie));
	raw_close(&r);
	ck_assert_int_eq(raw_connect("guard", &ep, PROOF_REPLAY, &r), RDMA_CM_EVENT_REJECTED);
	raw_close(&r);
	/* A proper cookie, then garbage instead of a frame, or well-formed
	 * headers that lie (a descriptor for 0 bytes, a payload longer than
	 * the message): the worker drops that connection (we see it
	 * disconnect) and serves everyone else. */
	for (int lie = 0; lie < 3; lie++) {
		size_t len = lie == 0 ? 40 : SPK_RDMA_CALL_DATA;
		struct pollfd pfd = { .events = POLLIN };

		ck_assert_int_eq(raw_connect("guard", &ep, PROOF_RIGHT, &r), RDMA_CM_EVENT_ESTABLISHED);
		pfd.fd = r.ec->fd;
		ck_assert_int_eq(spk_rqp_send_slot(&r.q, &k, &s, spk_now_us() + 1000000), 0);
		memset(s, lie == 0 ? 0xab : 0, len);
		if (lie > 0)
			spk_hdr_encode(s, SPK_CALL, 1, PROBE_ECHO, lie == 1 ? 0 : 5000);
		if (lie == 1)
			spk_hdr_set_flags(s, SPK_RF_RDV);
		ck_assert_int_eq(spk_rqp_post_send(&r.q, k, len, spk_now_us() + 1000000), 0);
		ck_assert_msg(poll(&pfd, 1, 15000) == 1, "lie %d: the worker kept the connection",
			      lie);
		ck_assert_int_eq(rdma_get_cm_event(r.ec, &ev), 0);
		ck_assert_int_eq(ev->event, RDMA_CM_EVENT_DISCONNECTED);
		rdma_ack_cm_event(ev);
		raw_close(&r);
	}
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "fine", 4, rep, sizeof(rep), &got, 0), 0);
	ck_assert_uint_eq(got, 4);
	spoke_actor_close(a);
}
END_TEST

/* ---- memory protection: what a connection's keys reach ---- */

#define RAW_WAIT_US 5000000

/* Sends a message on r: a header of type, then len bytes of payload where
 * a CALL's payload goes (after the two descriptors, left zero). */
static void raw_send(struct raw *r, uint8_t type, uint64_t id, int32_t aux, const void *payload,
		     size_t len)
{
	size_t n = type == SPK_CALL ? SPK_RDMA_CALL_DATA + len : SPK_HDR_SIZE;
	uint8_t *s;
	unsigned k;

	ck_assert_int_eq(spk_rqp_send_slot(&r->q, &k, &s, spk_now_us() + RAW_WAIT_US), 0);
	memset(s, 0, SPK_RDMA_CALL_DATA);
	spk_hdr_encode(s, type, id, aux, (uint32_t)len);
	if (len)
		memcpy(s + SPK_RDMA_CALL_DATA, payload, len);
	ck_assert_int_eq(spk_rqp_post_send(&r->q, k, n, spk_now_us() + RAW_WAIT_US), 0);
}

/* A reply's descriptor (PULL): where its bytes wait at the worker. */
struct ext {
	uint64_t addr;
	uint32_t rkey, len;
};

/* The next reply on r (its receive slot reposted): its header, its
 * descriptor in *x, its first cap bytes (eager) in data. */
static void raw_reply(struct raw *r, struct spk_hdr *h, struct ext *x, void *data, size_t cap)
{
	struct ibv_wc wc;
	uint8_t *s;

	ck_assert_int_eq(spk_rqp_wait_recv(&r->q, &wc, spk_now_us() + RAW_WAIT_US), 0);
	s = spk_rqp_recv_slot(&r->q, (unsigned)wc.wr_id);
	ck_assert_int_eq(spk_hdr_decode_flags(s, UINT32_MAX, SPK_RF_PULL | SPK_RF_WRITTEN, h), 0);
	ck_assert_int_eq(h->type, SPK_REPLY);
	spk_rdma_get_ext(s + SPK_HDR_SIZE, &x->addr, &x->rkey, &x->len);
	if (data)
		memcpy(data, s + SPK_RDMA_REPLY_DATA, cap);
	ck_assert_int_eq(spk_rqp_post_recv(&r->q, (unsigned)wc.wr_id), 0);
}

/* An RDMA READ or WRITE on r between a->p[0..len) and the peer's raddr
 * with rkey; the status of its completion (SPOKE_EDEAD: it failed). */
static int raw_rdma(struct raw *r, enum ibv_wr_opcode op, struct spk_rarea *a, uint64_t raddr,
		    uint32_t rkey, size_t len)
{
	uint64_t seq;
	int rc = spk_rqp_post_rdma(&r->q, op, a->p, a->mr->lkey, len, raddr, rkey, &seq,
				   spk_now_us() + RAW_WAIT_US);

	if (rc == 0)
		rc = spk_rqp_wait_sq(&r->q, seq, spk_now_us() + RAW_WAIT_US);
	printf("# RDMA %s of %zu B at %#llx with rkey %#x: %s\n",
	       op == IBV_WR_RDMA_READ ? "READ" : "WRITE", len, (unsigned long long)raddr, rkey,
	       rc == 0 ? "done" : spoke_errmsg());
	fflush(stdout);
	return rc;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A worker's PULL reply (larger than a slot, no region offered) is
 * readable by the connection it answers, and by nobody else: another
 * connection of the same job that learned its address and rkey (off the
 * wire, say) gets a remote access error, and so does the connection
 * itself once its DONE went.  Meanwhile the victim's calls go on. */
START_TEST(pull_reply_closed_to_others_and_after_done)
{
	uint8_t fill[5] = { 0, 0, 0x10, 0, 6 }, echo[5], rep[8]; /* 1 MiB of seed 6 */
	spoke_actor *a = spawn_open_rdma("vault");
	struct spk_rarea mine = { 0 }, loot = { 0 };
	struct spk_endpoint ep;
	struct raw victim, thief;
	struct ext pull, none;
	struct spk_hdr h;
	size_t got;

	ck_assert_int_eq(spk_client_lookup(client, "vault", &ep, 5000), 0);
	ck_assert_int_eq(raw_connect("vault", &ep, PROOF_RIGHT, &victim), RDMA_CM_EVENT_ESTABLISHED);
	raw_send(&victim, SPK_CALL, 1, PROBE_FILL, fill, sizeof(fill));
	raw_reply(&victim, &h, &pull, NULL, 0);
	ck_assert_uint_eq(h.flags, SPK_RF_PULL);
	ck_assert_uint_eq(h.len, MiB);
	ck_assert_uint_eq(pull.len, MiB);
	/* Another connection, with the reply's address and key: refused, and
	 * nothing read. */
	ck_assert_int_eq(raw_connect("vault", &ep, PROOF_RIGHT, &thief), RDMA_CM_EVENT_ESTABLISHED);
	ck_assert_int_eq(spk_rarea_reserve(thief.q.pd, &loot, MiB, MiB, 0, 0), 0);
	memset(loot.p, 0, MiB);
	ck_assert_int_eq(raw_rdma(&thief, IBV_WR_RDMA_READ, &loot, pull.addr, pull.rkey, MiB),
			 SPOKE_EDEAD);
	ck_assert(all_zero(loot.p, MiB));
	/* The connection it answers reads it, then says DONE (a call after it
	 * makes sure the worker took the DONE: one connection is served in
	 * order). */
	ck_assert_int_eq(spk_rarea_reserve(victim.q.pd, &mine, MiB, MiB, 0, 0), 0);
	ck_assert_int_eq(raw_rdma(&victim, IBV_WR_RDMA_READ, &mine, pull.addr, pull.rkey, MiB), 0);
	check_pattern(mine.p, MiB, 6);
	raw_send(&victim, SPK_DONE, 1, 0, NULL, 0);
	raw_send(&victim, SPK_CALL, 2, PROBE_ECHO, "after", 5);
	raw_reply(&victim, &h, &none, echo, sizeof(echo));
	ck_assert_uint_eq(h.len, 5);
	ck_assert(memcmp(echo, "after", 5) == 0);
	/* After DONE, not even that connection reads it any more. */
	memset(mine.p, 0, MiB);
	ck_assert_int_eq(raw_rdma(&victim, IBV_WR_RDMA_READ, &mine, pull.addr, pull.rkey, 4096),
			 SPOKE_EDEAD);
	ck_assert(all_zero(mine.p, 4096));
	/* The worker's other clients are served throughout. */
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "fine", 4, rep, sizeof(rep), &got, 0), 0);
	ck_assert_uint_eq(got, 4);
	spk_rarea_free(&loot);
	raw_close(&thief);
	spk_rarea_free(&mine);
	raw_close(&victim);
	spoke_actor_close(a);
}
END_TEST

/* Another connection of this process, made as the library makes its own
 * (spk_rqp_create): queue pair `in`, accepted here from `out`, whose end
 * the test plays as a rogue worker plays the far end of a client's
 * connection to it. */
struct pair {
	struct rdma_event_channel *ec;
	struct rdma_cm_id *listen, *in_id;
	struct spk_rqp in;
	struct raw out;
};

/* The next rdma_cm event on ec (within 5 s); the caller acks it. */
static enum rdma_cm_event_type cm_next(struct rdma_event_channel *ec, struct rdma_cm_event **ev)
{
	struct pollfd pfd = { .fd = ec->fd, .events = POLLIN };

	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert_int_eq(rdma_get_cm_event(ec, ev), 0);
	return (*ev)->event;
}

static void pair_open(struct pair *p, const char *host)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct rdma_conn_param param;
	struct rdma_cm_event *ev;

	memset(p, 0, sizeof(*p));
	inet_pton(AF_INET, host, &sin.sin_addr);
	p->ec = rdma_create_event_channel();
	ck_assert_ptr_nonnull(p->ec);
	ck_assert_int_eq(rdma_create_id(p->ec, &p->listen, NULL, RDMA_PS_TCP), 0);
	ck_assert_int_eq(rdma_bind_addr(p->listen, (struct sockaddr *)&sin), 0);
	ck_assert_int_eq(rdma_listen(p->listen, 1), 0);
	sin.sin_port = rdma_get_src_port(p->listen);
	p->out.asked = false; /* no cookie: the test plays the worker */
	p->out.ec = rdma_create_event_channel();
	ck_assert_ptr_nonnull(p->out.ec);
	ck_assert_int_eq(rdma_create_id(p->out.ec, &p->out.id, NULL, RDMA_PS_TCP), 0);
	ck_assert_int_eq(rdma_resolve_addr(p->out.id, NULL, (struct sockaddr *)&sin, 2000), 0);
	ck_assert_int_eq(cm_next(p->out.ec, &ev), RDMA_CM_EVENT_ADDR_RESOLVED);
	rdma_ack_cm_event(ev);
	ck_assert_int_eq(rdma_resolve_route(p->out.id, 2000), 0);
	ck_assert_int_eq(cm_next(p->out.ec, &ev), RDMA_CM_EVENT_ROUTE_RESOLVED);
	rdma_ack_cm_event(ev);
	ck_assert_int_eq(spk_rqp_create(&p->out.q, p->out.id, 4, 4, 0), 0);
	spk_rqp_conn_param(&p->out.q, &param, NULL, 0);
	ck_assert_int_eq(rdma_connect(p->out.id, &param), 0);
	ck_assert_int_eq(cm_next(p->ec, &ev), RDMA_CM_EVENT_CONNECT_REQUEST);
	p->in_id = ev->id;
	rdma_ack_cm_event(ev);
	ck_assert_int_eq(spk_rqp_create(&p->in, p->in_id, 4, 4, 0), 0);
	spk_rqp_conn_param(&p->in, &param, NULL, 0);
	ck_assert_int_eq(rdma_accept(p->in_id, &param), 0);
	ck_assert_int_eq(cm_next(p->out.ec, &ev), RDMA_CM_EVENT_ESTABLISHED);
	rdma_ack_cm_event(ev);
	ck_assert_int_eq(cm_next(p->ec, &ev), RDMA_CM_EVENT_ESTABLISHED);
	rdma_ack_cm_event(ev);
}

static void pair_close(struct pair *p)
{
	raw_close(&p->out);
	spk_rqp_destroy(&p->in);
	rdma_destroy_id(p->in_id);
	rdma_destroy_id(p->listen);
	rdma_destroy_event_channel(p->ec);
}

/* From the other connection of pair p: op (READ or WRITE) of 4 KiB at addr
 * with rkey, the test's bytes being `fill`; the completion's status. */
static int attack(const char *host, enum ibv_wr_opcode op, void *addr, uint32_t rkey,
		  uint8_t fill)
{
	struct spk_rarea mine = { 0 };
	struct pair p;
	int rc;

	pair_open(&p, host);
	ck_assert_int_eq(spk_rarea_reserve(p.out.q.pd, &mine, 4096, 4096, 0, 0), 0);
	memset(mine.p, fill, 4096);
	rc = raw_rdma(&p.out, op, &mine, (uintptr_t)addr, rkey, 4096);
	if (op == IBV_WR_RDMA_READ)
		ck_assert_msg(rc == 0 || all_zero(mine.p, 4096), "read failed, yet bytes came");
	spk_rarea_free(&mine);
	pair_close(&p);
	return rc;
}

/* A client's own memory (spoke_mr) is registered on the connection that
 * uses it, once per role, with the access of that role only; another
 * connection of the same process (say to a rogue worker) that learned an
 * address and rkey can neither write into a request buffer nor read a
 * reply buffer, and the victim's calls go on. */
START_TEST(user_memory_closed_to_other_connections)
{
	enum { N = 64 << 10, CALLS = 20 };
	const char *host = getenv("SPOKE_TEST_ADDR");
	char path[] = "/tmp/spoke-rdma-log.XXXXXX", line[512], role[16];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), regs = 0;
	spoke_actor *a = spawn_open_rdma("kvguard");
	uint8_t *block = pattern(N, 8), *out = calloc(1, N);
	uint32_t rkey_req = 0, rkey_rep = 0;
	spoke_mr req, rep;
	unsigned key;
	size_t got;
	void *at;
	FILE *f;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(spoke_mr_register(a, block, N, &req), 0);
	ck_assert_int_eq(spoke_mr_register(a, out, N, &rep), 0);
	/* Calls whose request the worker reads and whose reply it writes, with
	 * the client's registrations logged (debug). */
	setenv("SPOKE_LOG", "debug", 1);
	spk_log_init("client", SPK_LOG_WARN);
	dup2(fd, STDERR_FILENO);
	for (int i = 0; i < CALLS; i++) {
		memset(out, 0, N);
		ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 0, N, &rep, 0, N, &got, 0), 0);
		ck_assert_uint_eq(got, N);
		check_pattern(out, N, 8);
	}
	dup2(saved, STDERR_FILENO);
	setenv("SPOKE_LOG", "info", 1);
	spk_log_init("client", SPK_LOG_WARN);
	f = fdopen(fd, "r");
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, " B at ");

		if (!p || !strstr(line, "registered for remote"))
			continue;
		ck_assert_msg(sscanf(p, " B at %p registered for remote %15s (rkey %x)", &at, role,
				     &key) == 3,
			      "%s", line);
		printf("# %s", strstr(line, "RDMA"));
		regs++;
		if (at == block && strcmp(role, "read") == 0)
			rkey_req = key;
		else if (at == out && strcmp(role, "write") == 0)
			rkey_rep = key;
		else
			ck_abort_msg("unexpected registration: %s", line);
	}
	fclose(f);
	unlink(path);
	/* One registration per role in CALLS calls: none in the steady state. */
	ck_assert_int_eq(regs, 2);
	/* Another connection with those keys: a remote access error, nothing
	 * written, nothing read. */
	ck_assert_int_eq(attack(host, IBV_WR_RDMA_WRITE, block, rkey_req, 0xee), SPOKE_EDEAD);
	check_pattern(block, N, 8);
	ck_assert_int_eq(attack(host, IBV_WR_RDMA_READ, out, rkey_rep, 0), SPOKE_EDEAD);
	/* The victim's calls go on, on the memory registered before. */
	memset(out, 0, N);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 0, N, &rep, 0, N, &got, 0), 0);
	check_pattern(out, N, 8);
	spoke_mr_deregister(&req);
	spoke_mr_deregister(&rep);
	free(block);
	free(out);
	spoke_actor_close(a);
}
END_TEST

int main(void)
{
	char addr[64];
	int rc, failed;

	rc = harness_rdma_probe(addr, sizeof(addr));
	if (rc)
		return rc;
	setenv("SPOKE_TEST_ADDR", addr, 1);
	setenv("SPOKE_LOG", "info", 0);
	printf("RDMA tests on %s\n", addr);
	fflush(stdout);

	Suite *s = suite_create("rdma");
	TCase *tc = tcase_create("verbs");
	SRunner *sr;

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, auto_falls_back_when_a_side_has_no_device);
	tcase_add_test(tc, bad_cookie_and_garbage_refused);
	tcase_add_test(tc, rdma_through_another_address);
	suite_add_tcase(s, tc);
	tc = tcase_create("protection");
	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, pull_reply_closed_to_others_and_after_done);
	tcase_add_test(tc, user_memory_closed_to_other_connections);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* test_trust.c - the handshake against an attacker on the same node, on a
 * real loopback cluster (fixture.c): a "squatter" process without the job
 * token binds a dead worker's port and relays a client's handshake to the
 * real hub; a squatter that forges its own proof; a real worker reached
 * under another actor's name or incarnation.  Every squatter is a forked
 * process that reports what it got through a pipe, so that what it obtained
 * is checked, not only what the client saw. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"
#include "auth.h"
#include "sync_conn.h"
#include "client_priv.h"
#include "clock.h"
#include "frame.h"
#include "net.h"
#include "proto.h"

/* What a squatter obtained, one bit each. */
enum {
	SQ_CONNECTED = 1,      /* a client connected to it */
	SQ_HUB_ACCEPTED = 2,   /* the hub took the relayed AUTH (AUTH_OK, status 0) */
	SQ_HUB_SESSION = 4,    /* the hub then answered its own request (NODES) */
	SQ_CLIENT_TRUSTED = 8, /* the client sent a request after the handshake */
};

enum squat_mode { SQUAT_RELAY, SQUAT_FORGE };

struct squatter {
	pid_t pid;
	int result_fd; /* reads the result byte */
	char addr[SPK_ADDR_MAX];
};

#define SQUAT_WAIT_MS 8000 /* for a client to come */
#define SQUAT_IO_MS 3000   /* for each frame */

/* Reads exactly n bytes within SQUAT_IO_MS; -1 on a timeout, an end or an error. */
static int read_full(int fd, void *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t k;

	while (got < n) {
		if (poll(&pfd, 1, SQUAT_IO_MS) <= 0)
			return -1;
		k = read(fd, (uint8_t *)p + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
	return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* One frame into buf (header, then payload): its total size, or -1. */
static long read_frame(int fd, uint8_t *buf, size_t cap, struct spk_hdr *h)
{
	if (read_full(fd, buf, SPK_HDR_SIZE) < 0 ||
	    spk_hdr_decode(buf, (uint32_t)(cap - SPK_HDR_SIZE), h) < 0 ||
	    read_full(fd, buf + SPK_HDR_SIZE, h->len) < 0)
		return -1;
	return SPK_HDR_SIZE + (long)h->len;
}

/* The relay: a connection to the real hub, whose HELLO goes to the client,
 * the client's AUTH to the hub and the hub's answer back; with a session,
 * it asks the hub for the nodes, and answers the client's first request
 * with a forged reply. */
static int relay(int cfd, const char *hub_addr)
{
	uint8_t buf[4096], forged[4] = { 0x41, 0x41, 0x41, 0x41 };
	struct spk_hdr h;
	int res = 0, hfd;
	long n;

	hfd = spk_connect(hub_addr, SQUAT_IO_MS);
	if (hfd < 0)
		return res;
	if ((n = read_frame(hfd, buf, sizeof(buf), &h)) < 0 || write_full(cfd, buf, (size_t)n) < 0)
		goto out;
	if ((n = read_frame(cfd, buf, sizeof(buf), &h)) < 0 || write_full(hfd, buf, (size_t)n) < 0)
		goto out;
	if ((n = read_frame(hfd, buf, sizeof(buf), &h)) < 0)
		goto out;
	write_full(cfd, buf, (size_t)n);
	if (h.type == SPK_AUTH_OK && h.aux == 0) {
		res |= SQ_HUB_ACCEPTED;
		spk_hdr_encode(buf, SPK_NODES, 9, 0, 0);
		if (write_full(hfd, buf, SPK_HDR_SIZE) == 0 &&
		    read_frame(hfd, buf, sizeof(buf), &h) > 0 && h.type == SPK_REPLY && h.aux >= 0)
			res |= SQ_HUB_SESSION;
	}
	if (read_frame(cfd, buf, sizeof(buf), &h) > 0 && h.type != SPK_AUTH) {
		res |= SQ_CLIENT_TRUSTED;
		spk_hdr_encode(buf, SPK_REPLY, h.id, 0, sizeof(forged));
		memcpy(buf + SPK_HDR_SIZE, forged, sizeof(forged));
		write_full(cfd, buf, SPK_HDR_SIZE + sizeof(forged));
	}
out:
	close(hfd);
	return res;
}

/* The squatter's own greeting, then a proof of garbage under the identity
 * the client asked for; it counts the client as trusting it if anything
 * but the end follows. */
static int forge(int cfd)
{
	struct spk_auth_msg m;
	uint8_t buf[4096];
	struct spk_hdr h;
	spoke_view v;
	spoke_buf b;

	spoke_buf_init(&b, buf + SPK_HDR_SIZE, sizeof(buf) - SPK_HDR_SIZE);
	spk_random(spoke_buf_reserve(&b, SPK_NONCE_SIZE), SPK_NONCE_SIZE);
	spk_hdr_encode(buf, SPK_HELLO, 0, 0, (uint32_t)b.len);
	if (write_full(cfd, buf, SPK_HDR_SIZE + b.len) < 0 ||
	    read_frame(cfd, buf, sizeof(buf), &h) < 0)
		return 0;
	spoke_view_init(&v, buf + SPK_HDR_SIZE, h.len);
	if (spk_auth_unpack(&v, &m) < 0)
		return 0;
	spk_random(m.mac, sizeof(m.mac));
	spoke_buf_init(&b, buf + SPK_HDR_SIZE, sizeof(buf) - SPK_HDR_SIZE);
	spk_auth_ok_pack(&b, &m);
	spk_hdr_encode(buf, SPK_AUTH_OK, 0, 0, (uint32_t)b.len);
	if (write_full(cfd, buf, SPK_HDR_SIZE + b.len) < 0)
		return 0;
	return read_frame(cfd, buf, sizeof(buf), &h) > 0 ? SQ_CLIENT_TRUSTED : 0;
}

/* A process of another user, as far as Spoke can tell: it knows no token. */
static void squat_main(int lfd, int out, enum squat_mode mode, const char *hub_addr)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	uint8_t res = 0;
	int cfd;

	if (poll(&pfd, 1, SQUAT_WAIT_MS) == 1 && (cfd = accept(lfd, NULL, NULL)) >= 0) {
		res = SQ_CONNECTED;
		res |= (uint8_t)(mode == SQUAT_RELAY ? relay(cfd, hub_addr) : forge(cfd));
		close(cfd);
	}
	if (write(out, &res, 1) != 1)
		_exit(2);
	_exit(0);
}

/* Binds host:port (port 0: any) as a squatter would: SO_REUSEADDR lets it
 * take a port whose connections linger in TIME_WAIT. */
static void squat_start(struct squatter *sq, const char *host, uint16_t port,
			enum squat_mode mode)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t len = sizeof(sa);
	int lfd, one = 1, p[2];

	ck_assert_int_eq(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	ck_assert_msg(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s:%u: %s", host,
		      port, strerror(errno));
	ck_assert_int_eq(listen(lfd, 8), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	ck_assert_int_lt(snprintf(sq->addr, sizeof(sq->addr), "%.64s:%u", host, ntohs(sa.sin_port)),
			 (int)sizeof(sq->addr));
	ck_assert_int_eq(pipe(p), 0);
	sq->pid = fork();
	ck_assert_int_ge(sq->pid, 0);
	if (sq->pid == 0) {
		close(p[0]);
		squat_main(lfd, p[1], mode, cl.hub_addr);
	}
	close(p[1]);
	close(lfd);
	sq->result_fd = p[0];
}

/* What the squatter obtained (it ends by itself within its timeouts). */
static int squat_result(struct squatter *sq)
{
	struct pollfd pfd = { .fd = sq->result_fd, .events = POLLIN };
	uint8_t res = 0xff;
	int status;

	ck_assert_msg(poll(&pfd, 1, SQUAT_WAIT_MS + 4 * SQUAT_IO_MS) == 1, "squatter hangs");
	ck_assert_int_eq(read(sq->result_fd, &res, 1), 1);
	close(sq->result_fd);
	ck_assert_int_eq(waitpid(sq->pid, &status, 0), sq->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "squatter status %#x", status);
	return res;
}

/* Waits until the hub has heard of the actor's death. */
static void wait_hub_knows_dead(const char *name)
{
	struct spk_endpoint ep;
	int rc = 0;

	for (int i = 0; i < 500; i++) {
		rc = spk_client_lookup(client, name, &ep, 0);
		if (rc == SPOKE_EDEAD)
			return;
		usleep(10000);
	}
	ck_abort_msg("the hub still answers %d for dead actor %s", rc, name);
}

/* Whether the log of `who` ("hub", "agent-n1") has a line with `what`. */
static int log_has(const char *who, const char *what)
{
	char path[256], line[1024];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.log", cl.dir, who);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

/* Waits up to a second for a line with `what` in the log of `who`. */
static void wait_log(const char *who, const char *what)
{
	for (int i = 0; i < 100 && !log_has(who, what); i++)
		usleep(10000);
	ck_assert_msg(log_has(who, what), "no \"%s\" in %s.log", what, who);
}

/* spk_sync_open to addr as the server ident, with the job's token. */
static int open_as(const char *addr, const char *ident)
{
	char token[SPK_TOKEN_MAX];
	struct spk_sync_conn ch;
	int rc;

	ck_assert_int_eq(spk_token_find(NULL, token, sizeof(token)), 0);
	rc = spk_sync_open(&ch, addr, token, ident, 0, spk_now_us() + 5000000);
	if (rc == 0)
		spk_sync_close(&ch);
	return rc;
}

/* ---- the relay through a dead worker's squatted port ---------------------- */

/* A handle whose worker died reconnects: to the squatter that took the
 * port, which relays the handshake to the hub.  The hub must refuse, and
 * the client must never take a forged reply for an answer. */
START_TEST(relay_through_squatted_port)
{
	spoke_actor *a = spawn_open("victim", NULL);
	uint32_t pid = actor_pid(a);
	struct spk_endpoint ep;
	struct squatter sq;
	char host[SPK_ADDR_MAX];
	uint16_t port;
	uint8_t r[4];
	size_t n;
	int rc = 0, res;

	ck_assert_int_eq(spk_client_lookup(client, "victim", &ep, 0), 0);
	ck_assert_int_eq(spk_parse_hostport(ep.addr, host, sizeof(host), &port), 0);
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	wait_hub_knows_dead("victim");
	squat_start(&sq, host, port, SQUAT_RELAY);
	/* The first call finds the old connection gone; the next reconnect. */
	for (int i = 0; i < 3; i++) {
		rc = spoke_call(a, PROBE_PID, NULL, 0, r, sizeof(r), &n, 3000);
		ck_assert_msg(rc != 0, "call %d succeeded through the squatter (reply %02x%02x%02x%02x)",
			      i, r[0], r[1], r[2], r[3]);
		ck_assert_msg(rc == SPOKE_EDEAD || rc == SPOKE_EAUTH, "call %d: %s (%s)", i,
			      spoke_strerror(rc), spoke_errmsg());
	}
	res = squat_result(&sq);
	ck_assert_msg(!(res & SQ_HUB_ACCEPTED), "the hub accepted the relayed handshake");
	ck_assert_msg(!(res & SQ_HUB_SESSION), "the relay listed the hub's nodes");
	ck_assert_msg(!(res & SQ_CLIENT_TRUSTED), "the client sent a call to the squatter");
	/* The handle asked the hub, which knows the actor is dead: it never
	 * connected to the squatter at all. */
	ck_assert_int_eq(rc, SPOKE_EDEAD);
	ck_assert_msg(!(res & SQ_CONNECTED), "the handle reconnected to the dead worker's port");
	spoke_actor_close(a);
}
END_TEST

/* The relay itself, at the handshake: a client that means a worker is
 * relayed to the hub.  The hub refuses (the proof names the worker, not
 * "hub") and says so in its log; the client hears who answered. */
START_TEST(relay_refused_by_hub)
{
	struct squatter sq;
	int rc, res;

	squat_start(&sq, "127.0.0.1", 0, SQUAT_RELAY);
	rc = open_as(sq.addr, "actor:victim:1");
	ck_assert_msg(rc == SPOKE_EAUTH, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), "answered as hub, expected actor:victim:1"), "%s",
		      spoke_errmsg());
	res = squat_result(&sq);
	ck_assert_int_eq(res, SQ_CONNECTED);
	wait_log("hub", "it means to reach actor:victim:1, this is hub");
}
END_TEST

/* A squatter with its own nonce and a proof of garbage (under the very
 * identity the client asked for) is refused by the client, which sends it
 * nothing more. */
START_TEST(forged_proof_refused)
{
	struct squatter sq;
	int rc;

	squat_start(&sq, "127.0.0.1", 0, SQUAT_FORGE);
	rc = open_as(sq.addr, "actor:victim:1");
	ck_assert_msg(rc == SPOKE_EAUTH, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), "does not prove the job token as actor:victim:1"),
		      "%s", spoke_errmsg());
	ck_assert_int_eq(squat_result(&sq), SQ_CONNECTED);
}
END_TEST

/* Real servers reached under the wrong identity: a worker under another
 * actor's name, another incarnation, or "hub"; the hub as a worker.  Each
 * is refused on both sides; the right identity still gets in. */
START_TEST(wrong_identity_refused)
{
	struct spk_endpoint e1, e2;
	char id1[SPK_IDENT_MAX], id2[SPK_IDENT_MAX], other[SPK_IDENT_MAX], want[2 * SPK_IDENT_MAX + 64];
	spoke_actor *a1 = spawn_open("w1", NULL), *a2 = spawn_open("w2", NULL);
	int rc;

	ck_assert_int_eq(spk_client_lookup(client, "w1", &e1, 0), 0);
	ck_assert_int_eq(spk_client_lookup(client, "w2", &e2, 0), 0);
	ck_assert_uint_ne(e1.incarnation, 0);
	ck_assert_uint_ne(e1.incarnation, e2.incarnation);
	spk_ident_actor(id1, "w1", e1.incarnation);
	spk_ident_actor(id2, "w2", e2.incarnation);
	ck_assert_int_eq(open_as(e1.addr, id1), 0);
	ck_assert_int_eq(open_as(cl.hub_addr, SPK_IDENT_HUB), 0);

	rc = open_as(e1.addr, id2);
	ck_assert_int_eq(rc, SPOKE_EAUTH);
	snprintf(want, sizeof(want), "answered as %s, expected %s", id1, id2);
	ck_assert_msg(strstr(spoke_errmsg(), want), "%s", spoke_errmsg());
	snprintf(want, sizeof(want), "it means to reach %s, this is %s", id2, id1);
	snprintf(other, sizeof(other), "agent-%s", e1.node); /* the worker logs there */
	wait_log(other, want);

	spk_ident_actor(other, "w1", e1.incarnation + 1000);
	ck_assert_int_eq(open_as(e1.addr, other), SPOKE_EAUTH);
	ck_assert_int_eq(open_as(e1.addr, SPK_IDENT_HUB), SPOKE_EAUTH);
	rc = open_as(cl.hub_addr, id1);
	ck_assert_int_eq(rc, SPOKE_EAUTH);
	ck_assert_msg(strstr(spoke_errmsg(), "answered as hub"), "%s", spoke_errmsg());
	/* The refused connections left the workers serving. */
	ck_assert_uint_gt(actor_pid(a1), 0);
	ck_assert_uint_gt(actor_pid(a2), 0);
	spoke_actor_close(a1);
	spoke_actor_close(a2);
}
END_TEST

/* A handle reaches only the incarnation it was opened on: after a restart
 * under the same name, its calls fail with SPOKE_EDEAD (the hub said so)
 * and the new worker serves only new handles. */
START_TEST(restarted_actor_is_dead_to_old_handle)
{
	spoke_actor *a = spawn_open("phoenix", NULL), *b;
	struct spk_endpoint e1, e2;
	uint8_t r[4];
	size_t n;
	int rc = 0;

	ck_assert_int_eq(spk_client_lookup(client, "phoenix", &e1, 0), 0);
	ck_assert_int_eq(spoke_kill(client, "phoenix", 0), 0);
	b = spawn_open("phoenix", NULL);
	ck_assert_int_eq(spk_client_lookup(client, "phoenix", &e2, 0), 0);
	ck_assert_uint_gt(e2.incarnation, e1.incarnation);
	for (int i = 0; i < 3; i++) {
		rc = spoke_call(a, PROBE_PID, NULL, 0, r, sizeof(r), &n, 3000);
		ck_assert_int_eq(rc, SPOKE_EDEAD);
	}
	ck_assert_msg(strstr(spoke_errmsg(), "is gone; open a new handle"), "%s", spoke_errmsg());
	ck_assert_uint_eq(actor_pid(b), e2.pid);
	spoke_actor_close(a);
	spoke_actor_close(b);
}
END_TEST

static Suite *trust_suite(void)
{
	Suite *s = suite_create("trust");
	TCase *tc = tcase_create("cluster");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, relay_through_squatted_port);
	tcase_add_test(tc, relay_refused_by_hub);
	tcase_add_test(tc, forged_proof_refused);
	tcase_add_test(tc, wrong_identity_refused);
	tcase_add_test(tc, restarted_actor_is_dead_to_old_handle);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(trust_suite());
	int failed;

	/* The squatter listens on TCP; RDMA would not reconnect through it. */
	setenv("SPOKE_TRANSPORT", "tcp", 1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

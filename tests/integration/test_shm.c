/* test_shm.c - the shared-memory transport on a real loopback cluster
 * (fixture.c): a worker killed mid-call, a client killed mid-call, a peer
 * that writes garbage into its ring, refused set-ups (cookies, memfds,
 * another uid), stalled set-ups, calls of 16 and 64 MiB in every form, spin
 * and blocking modes, moving a handle between transports, and spoke_mr
 * memory that no byte of a call is copied out of.
 *
 * The peers that break the rules are raw connections made here by hand:
 * the SPK_SHM hello over an authenticated spk_sync_conn, then the worker's
 * abstract socket and a memfd, as shm.h describes; what the worker kept is
 * read from its /proc/PID/fd and /proc/PID/maps. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"
#include "auth.h"
#include "sync_conn.h"
#include "client_priv.h"
#include "clock.h"
#include "frame.h"
#include "proto.h"
#include "transport/shm/shm.h"
#include "transport/shm/shm_mem.h"
#include "transport/shm/shm_wire.h"
#include "transport/transport.h"

#define MiB (1u << 20)
#define WAIT_MS 3000 /* for what the worker frees in the background */

/* ---- what a worker holds ---- */

static struct spk_endpoint lookup(const char *name)
{
	struct spk_endpoint ep;

	ck_assert_int_eq(spk_client_lookup(client, name, &ep, 0), 0);
	return ep;
}

/* Lines of /proc/PID/maps that name `what` ("memfd:spoke-shm"). */
static int count_maps(uint32_t pid, const char *what)
{
	char path[64], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

/* Whether [addr, addr+len) lies in one mapping of pid whose line names `what`. */
static int mapped_in(uint32_t pid, uint64_t addr, uint64_t len, const char *what)
{
	char path[64], line[512];
	unsigned long lo, hi;
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr + len <= hi &&
			strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static int count_fds(uint32_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%u/fd", pid);
	d = opendir(path);
	ck_assert_msg(d != NULL, "%s: %s", path, strerror(errno));
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Waits up to WAIT_MS for the worker's fds and shared-memory mappings to
 * be back to fds and maps (fds at most: a connection of the baseline's,
 * the hello's socket say, may have ended meanwhile). */
static void wait_back_to(uint32_t pid, int fds, int maps)
{
	int f = -1, m = -1;

	for (int i = 0; i < WAIT_MS / 10; i++) {
		f = count_fds(pid);
		m = count_maps(pid, "memfd:spoke-");
		if (f <= fds && m == maps)
			return;
		usleep(10000);
	}
	ck_abort_msg("worker %u holds %d fds (%d before) and %d shared mappings (%d before)", pid,
		     f, fds, m, maps);
}

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

/* Waits up to a second for a line with `what` in the log of actor `name`'s
 * worker (its agent's log). */
static void wait_worker_log(const char *name, const char *what)
{
	struct spk_endpoint ep = lookup(name);
	char who[96];

	snprintf(who, sizeof(who), "agent-%s", ep.node);
	for (int i = 0; i < 100 && !log_has(who, what); i++)
		usleep(10000);
	ck_assert_msg(log_has(who, what), "no \"%s\" in %s.log", what, who);
}

static void echo_ok(spoke_actor *a)
{
	uint8_t r[8];
	size_t n = 0;
	int rc = spoke_call(a, PROBE_ECHO, "ping", 4, r, sizeof(r), &n, 10000);

	ck_assert_msg(rc == 0, "echo: %s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(memcmp(r, "ping", 4), 0);
}

static void fill_pattern(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = probe_byte(seed, i);
}

/* The first byte where p is not the pattern, or n. */
static size_t pattern_diff(const uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != probe_byte(seed, i))
			return i;
	return n;
}

static void fill_req(uint8_t req[5], uint32_t n, uint8_t seed)
{
	req[0] = (uint8_t)n;
	req[1] = (uint8_t)(n >> 8);
	req[2] = (uint8_t)(n >> 16);
	req[3] = (uint8_t)(n >> 24);
	req[4] = seed;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- raw shared-memory connections, made by hand ---- */

/* Asks actor `name`'s worker for shared memory over an authenticated
 * channel (left open in *ch): its offer. */
static void raw_offer(const char *name, struct spk_sync_conn *ch, struct spk_shm_offer *o)
{
	struct spk_endpoint ep = lookup(name);
	char token[SPK_TOKEN_MAX], ident[SPK_IDENT_MAX];
	int64_t deadline = spk_now_us() + 5000000;
	const uint8_t *p;
	struct spk_hdr h;
	spoke_view v;

	ck_assert_int_eq(spk_token_find(NULL, token, sizeof(token)), 0);
	spk_ident_actor(ident, name, ep.incarnation);
	ck_assert_int_eq(spk_sync_open(ch, ep.addr, token, ident, 0, deadline), 0);
	ck_assert_int_eq(spk_sync_send(ch, SPK_SHM, 1, 0, NULL, 0, deadline), 0);
	ck_assert_int_eq(spk_sync_recv_hdr(ch, &h, deadline), 0);
	ck_assert_int_eq(h.type, SPK_REPLY);
	ck_assert_int_eq(spk_sync_recv_view(ch, h.len, &p, deadline), 0);
	ck_assert_msg(h.aux == 0, "the offer: %d %.*s", h.aux, (int)h.len, (const char *)p);
	spoke_view_init(&v, p, h.len);
	ck_assert_int_eq(spk_shm_offer_unpack(&v, o), 0);
}

/* A socket connected to the worker's abstract name. */
static int raw_sock(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	memcpy(sa.sun_path + 1, name, strlen(name));
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, len) == 0, "connect @%s: %s", name,
		      strerror(errno));
	return fd;
}

/* A memfd of size bytes with seals (0: none), or -1. */
static int raw_memfd(size_t size, int seals)
{
	int fd = memfd_create("spoke-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends a connect message for offer o (len bytes of it: less cuts it
 * short) with memfd (-1: none). */
static void raw_send_connect(int sock, const struct spk_shm_offer *o, size_t len, int memfd)
{
	struct spk_shm_connect m = { .version = SPK_SHM_VERSION, .index = o->index,
				     .ring = SPK_SHM_RING };
	uint8_t buf[SPK_SHM_CONNECT_SIZE];
	spoke_buf b;

	memcpy(m.cookie, o->cookie, SPK_SHM_COOKIE);
	spoke_buf_init(&b, buf, sizeof(buf));
	ck_assert_int_eq(spk_shm_connect_pack(&b, &m), 0);
	ck_assert_int_eq(spk_shm_send(sock, buf, len < b.len ? len : b.len, memfd), 0);
}

/* What came back on sock within ms: 1 and the answer in *a (its
 * descriptor in *fd), 0 for the socket's end, -1 for nothing. */
static int raw_answer(int sock, struct spk_shm_answer *a, int *fd, int ms)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	uint8_t buf[SPK_SHM_ANSWER_MAX];
	spoke_view v;
	ssize_t n;

	*fd = -1;
	if (poll(&pfd, 1, ms) != 1)
		return -1;
	n = spk_shm_recv(sock, buf, sizeof(buf), fd, MSG_DONTWAIT);
	if (n == 0 || n == -ECONNRESET)
		return 0;
	ck_assert_int_gt(n, 0);
	spoke_view_init(&v, buf, (size_t)n);
	ck_assert_int_eq(spk_shm_answer_unpack(&v, a), 0);
	return 1;
}

/* A connection as a client makes it: region mapped at *region, the
 * worker's eventfd in *efd; returns the socket. */
static int raw_connect(const struct spk_shm_offer *o, uint8_t **region, int *efd)
{
	int sock = raw_sock(o->name), memfd;
	struct spk_shm_answer a;
	struct spk_shm_ctl *ctl;
	void *p;

	ck_assert_int_eq(spk_shm_create("spoke-test", SPK_SHM_REGION, &memfd, &p), 0);
	ctl = p;
	ctl->magic = SPK_SHM_REGION_MAGIC;
	ctl->version = SPK_SHM_VERSION;
	ctl->ring_size = SPK_SHM_RING;
	raw_send_connect(sock, o, SIZE_MAX, memfd);
	close(memfd);
	ck_assert_int_eq(raw_answer(sock, &a, efd, 3000), 1);
	ck_assert_msg(a.status == 0, "refused: %d %s", a.status, a.text);
	ck_assert_int_ge(*efd, 0);
	*region = p;
	return sock;
}

/* Whether the worker closed sock within ms (nothing else on it before). */
static int closed_within(int sock, int ms)
{
	struct spk_shm_answer a;
	int fd;

	return raw_answer(sock, &a, &fd, ms) == 0;
}

/* ---- a worker that dies mid-call ---- */

struct killer {
	pid_t pid;
	int after_ms;
	double at; /* now_ms() of the kill */
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	usleep((useconds_t)k->after_ms * 1000);
	k->at = now_ms();
	kill(k->pid, SIGKILL);
	return NULL;
}

/* A worker killed (SIGKILL) in the middle of a long method fails the
 * synchronous call, and every asynchronous call in flight, with
 * SPOKE_EDEAD within 100 ms: _i 0 blocking, 1 polling with a spin budget
 * far longer than that (the spin too must look at the socket). */
START_TEST(worker_killed_mid_call)
{
	const int poll_us = _i ? 1000000 : 0;
	spoke_actor *a = spawn_open("victim", NULL), *b = spawn_open("victim2", NULL);
	struct killer k = { .after_ms = 100 };
	uint8_t nap[4] = { 0x10, 0x27, 0, 0 }, r[16]; /* 10 s */
	spoke_future f[8];
	char rep[8][64];
	pthread_t t;
	size_t n;
	double end;
	int rc;

	spoke_actor_set_poll(a, poll_us);
	spoke_actor_set_poll(b, poll_us);
	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	k.pid = (pid_t)actor_pid(a);
	ck_assert_int_eq(pthread_create(&t, NULL, killer_main, &k), 0);
	rc = spoke_call(a, PROBE_NAP, nap, sizeof(nap), r, sizeof(r), &n, 20000);
	end = now_ms();
	pthread_join(t, NULL);
	ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(end - k.at < 100, "the call failed %.1f ms after the kill", end - k.at);

	/* Asynchronous calls in flight behind a long one. */
	k.pid = (pid_t)actor_pid(b);
	ck_assert_int_eq(spoke_call_async(b, PROBE_NAP, nap, sizeof(nap), rep[0], sizeof(rep[0]),
					  &f[0]), 0);
	for (int i = 1; i < 8; i++)
		ck_assert_int_eq(spoke_call_async(b, PROBE_ECHO, "x", 1, rep[i], sizeof(rep[i]), &f[i]),
				 0);
	ck_assert_int_eq(pthread_create(&t, NULL, killer_main, &k), 0);
	for (int i = 0; i < 8; i++) {
		rc = spoke_future_wait(&f[i], 20000);
		ck_assert_msg(rc == SPOKE_EDEAD, "future %d: %s (%s)", i, spoke_strerror(rc),
			      spoke_errmsg());
	}
	end = now_ms();
	pthread_join(t, NULL);
	ck_assert_msg(end - k.at < 100, "the futures failed %.1f ms after the kill", end - k.at);
	spoke_actor_close(a);
	spoke_actor_close(b);
}
END_TEST

/* A worker killed between calls: the next call, one too large for the
 * request ring (its bulk area goes over the worker's closed socket first:
 * EPIPE), fails SPOKE_EDEAD, never a raw errno (CI saw -EPIPE from
 * test_faults), and so does the one after it. */
START_TEST(worker_dead_before_bulk_call)
{
	spoke_actor *a = spawn_open("gone", NULL);
	uint8_t *big = calloc(1, 2 * MiB), r[16];
	pid_t pid;
	size_t n;
	int rc;

	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "x", 1, r, sizeof(r), &n, 5000), 0);
	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	pid = (pid_t)actor_pid(a);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	for (int i = 0; i < 500 && kill(pid, 0) == 0; i++) /* until its agent reaped it */
		usleep(10000);
	ck_assert_msg(kill(pid, 0) < 0, "worker %d still there after 5 s", (int)pid);
	for (int i = 0; i < 2; i++) {
		rc = spoke_call(a, PROBE_ECHO, big, 2 * MiB, r, sizeof(r), &n, 5000);
		ck_assert_msg(rc == SPOKE_EDEAD, "call %d: %s (%s)", i, spoke_strerror(rc),
			      spoke_errmsg());
	}
	spoke_actor_close(a);
	free(big);
}
END_TEST

/* ---- a client that dies mid-call ---- */

/* The child: its own client and handle, a 4 MiB call (bulk areas both
 * ways), says so on `ready`, then a call of a second that it never sees
 * the end of. */
static void dying_client(int ready)
{
	uint8_t nap[4] = { 0xe8, 0x03, 0, 0 }, r[16], *big = malloc(4 * MiB);
	spoke_client *c = NULL;
	spoke_actor *a = NULL;
	size_t n;

	if (!big || spoke_client_open(&c, NULL) != 0 || spoke_actor_open(c, "srv", &a, 0) != 0 ||
	    strcmp(spoke_actor_transport(a), "shm") != 0 ||
	    spoke_call(a, PROBE_ECHO, big, 4 * MiB, big, 4 * MiB, &n, 0) != 0)
		_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	spoke_call(a, PROBE_NAP, nap, sizeof(nap), r, sizeof(r), &n, 0);
	_exit(2); /* killed before */
}

/* A client killed (SIGKILL) during a call: the worker ends the method,
 * frees that connection (its socket, its eventfd, the region and both bulk
 * areas) and goes on serving the others. */
START_TEST(client_killed_mid_call)
{
	spoke_actor *a = spawn_open("srv", NULL);
	uint32_t pid = actor_pid(a);
	struct pollfd pfd;
	int fds, maps, p[2], status;
	pid_t child;
	char c;

	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	fds = count_fds(pid);
	maps = count_maps(pid, "memfd:spoke-");
	ck_assert_int_ge(maps, 1); /* our own connection's region */
	ck_assert_int_eq(pipe(p), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		close(p[0]);
		dying_client(p[1]);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	ck_assert_msg(poll(&pfd, 1, 10000) == 1 && read(p[0], &c, 1) == 1, "the child never got "
		      "going");
	close(p[0]);
	/* Its region and the two bulk areas (4 MiB each way) are mapped. */
	ck_assert_int_ge(count_maps(pid, "memfd:spoke-"), maps + 3);
	usleep(100000); /* into its one-second call */
	ck_assert_int_eq(kill(child, SIGKILL), 0);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFSIGNALED(status));
	echo_ok(a); /* served once the method ends */
	wait_back_to(pid, fds, maps);
	echo_ok(a);
	spoke_actor_close(a);
}
END_TEST

/* ---- garbage in the ring ---- */

enum garbage {
	G_HEAD_UNALIGNED,  /* req_head off a frame line */
	G_HEAD_TOO_FAR,    /* more than the ring ahead of the tail */
	G_HEAD_BEHIND,     /* behind what the worker consumed (after a good call) */
	G_BAD_MAGIC,       /* a header frame.h refuses */
	G_LEN_PAST_HEAD,   /* a frame longer than what was published */
	G_WRAP_AT_START,   /* a wrap marker where none can be */
	G_REPLY_TYPE,      /* a REPLY frame in the request ring */
	G_BULK_NEVER_SENT, /* a frame in a bulk area never sent */
	G_TAIL_LIES,       /* the reply ring's tail ahead of its head */
	G_COUNT
};

static const char *const garbage_names[G_COUNT] = {
	"unaligned head", "head too far", "head behind", "bad magic", "length past head",
	"wrap at start", "reply type", "bulk never sent", "reply tail lies",
};

/* Scribbles the request ring of a raw connection as g says and kicks the
 * worker. */
static void scribble(uint8_t *region, int efd, int sock, enum garbage g)
{
	struct spk_shm_ctl *ctl = (struct spk_shm_ctl *)region;
	uint8_t *ring = region + SPK_SHM_CTL;
	uint32_t wrap = SPK_SHM_WRAP;
	uint64_t one = 1, head = 0;

	spk_hdr_encode(ring, SPK_CALL, 1, PROBE_ECHO, 4);
	memcpy(ring + SPK_HDR_SIZE, "ping", 4);
	switch (g) {
	case G_HEAD_UNALIGNED:
		head = 24;
		break;
	case G_HEAD_TOO_FAR:
		head = 2 * SPK_SHM_RING;
		break;
	case G_HEAD_BEHIND:
		/* One good call first, served (the tail moves to 64), then a
		 * head behind what the worker consumed. */
		__atomic_store_n(&ctl->req_head, SPK_SHM_ALIGN, __ATOMIC_RELEASE);
		ck_assert_int_eq(write(efd, &one, sizeof(one)), sizeof(one));
		for (int i = 0; i < 300 && !__atomic_load_n(&ctl->rep_head, __ATOMIC_ACQUIRE); i++)
			usleep(10000);
		ck_assert_uint_eq(__atomic_load_n(&ctl->req_tail, __ATOMIC_ACQUIRE), SPK_SHM_ALIGN);
		ck_assert_int_eq(closed_within(sock, 0), 0); /* still connected */
		head = 0;
		break;
	case G_BAD_MAGIC:
		memset(ring, 0xee, 4);
		head = SPK_SHM_ALIGN;
		break;
	case G_LEN_PAST_HEAD:
		spk_hdr_encode(ring, SPK_CALL, 1, PROBE_ECHO, 4000);
		head = SPK_SHM_ALIGN;
		break;
	case G_WRAP_AT_START:
		memcpy(ring, &wrap, sizeof(wrap));
		head = SPK_SHM_ALIGN;
		break;
	case G_REPLY_TYPE:
		spk_hdr_encode(ring, SPK_REPLY, 1, 0, 4);
		head = SPK_SHM_ALIGN;
		break;
	case G_BULK_NEVER_SENT:
		spk_hdr_encode(ring, SPK_CALL, 1, PROBE_ECHO, 4);
		spk_hdr_set_flags(ring, SPK_SF_BULK);
		memset(ring + SPK_HDR_SIZE, 0, SPK_SHM_BULK_DESC);
		ring[SPK_HDR_SIZE] = 1; /* generation 1 */
		head = SPK_SHM_ALIGN;
		break;
	case G_TAIL_LIES:
		__atomic_store_n(&ctl->rep_tail, 5 * SPK_SHM_ALIGN, __ATOMIC_RELEASE);
		head = SPK_SHM_ALIGN;
		break;
	case G_COUNT:
		break;
	}
	__atomic_store_n(&ctl->req_head, head, __ATOMIC_RELEASE);
	ck_assert_int_eq(write(efd, &one, sizeof(one)), sizeof(one));
}

/* A peer that writes a lying head, a frame it could not have written, or a
 * tail that lies is dropped (its socket closed, its mappings gone, a line
 * in the log), and the worker's other clients go on. */
START_TEST(garbage_in_ring)
{
	spoke_actor *a = spawn_open("g", NULL);
	uint32_t pid = actor_pid(a);
	int fds = count_fds(pid), maps = count_maps(pid, "memfd:spoke-");

	for (int g = 0; g < G_COUNT; g++) {
		struct spk_shm_offer o;
		struct spk_sync_conn ch;
		uint8_t *region;
		int sock, efd;

		raw_offer("g", &ch, &o);
		sock = raw_connect(&o, &region, &efd);
		scribble(region, efd, sock, (enum garbage)g);
		ck_assert_msg(closed_within(sock, 2000), "%s: the worker kept the connection",
			      garbage_names[g]);
		close(sock);
		close(efd);
		munmap(region, SPK_SHM_REGION);
		spk_sync_close(&ch);
		echo_ok(a);
	}
	wait_worker_log("g", "; closing it");
	wait_back_to(pid, fds, maps);
	echo_ok(a);
	spoke_actor_close(a);
}
END_TEST

/* ---- refused set-ups ---- */

/* One refusal: a connect message cut to len bytes (SIZE_MAX: whole) with
 * memfd, for offer o: exactly one answer, a failure whose text has
 * `why`, then the socket's end. */
static void expect_refused(const struct spk_shm_offer *o, size_t len, int memfd, int status,
			   const char *why, const char *what)
{
	int sock = raw_sock(o->name), fd;
	struct spk_shm_answer a;

	raw_send_connect(sock, o, len, memfd);
	ck_assert_msg(raw_answer(sock, &a, &fd, 3000) == 1, "%s: no answer", what);
	ck_assert_msg(fd < 0, "%s: a descriptor came with the refusal", what);
	ck_assert_msg(a.status == status, "%s: status %d (%s), expected %d", what, a.status,
		      a.text, status);
	ck_assert_msg(strstr(a.text, why), "%s: \"%s\"", what, a.text);
	ck_assert_msg(closed_within(sock, 2000), "%s: more than one answer, or no end", what);
	close(sock);
}

/* A connect message without a cookie, with a wrong or a replayed one, a
 * region of the wrong size, unsealed or sealed against shrinking only, or
 * no region at all: each refused with one answer saying why, nothing
 * mapped, and the worker serves the others. */
START_TEST(setup_refusals)
{
	spoke_actor *a = spawn_open("h", NULL);
	uint32_t pid = actor_pid(a);
	int fds = count_fds(pid), maps = count_maps(pid, "memfd:spoke-");
	const int sealed = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	struct spk_shm_offer o, wrong;
	struct spk_sync_conn ch;
	uint8_t *region;
	int fd, sock, efd;

	raw_offer("h", &ch, &o);
	fd = raw_memfd(SPK_SHM_REGION, sealed);
	ck_assert_int_ge(fd, 0);
	expect_refused(&o, 8, fd, SPOKE_EPROTO, "malformed connect message", "no cookie");
	expect_refused(&o, SIZE_MAX, -1, SPOKE_EPROTO, "malformed connect message", "no memfd");
	wrong = o;
	wrong.cookie[5] ^= 1;
	expect_refused(&wrong, SIZE_MAX, fd, SPOKE_EAUTH, "no live cookie", "wrong cookie");
	wrong = o;
	wrong.index = (o.index + 1) % 256;
	expect_refused(&wrong, SIZE_MAX, fd, SPOKE_EAUTH, "no live cookie", "another slot");
	close(fd);
	/* Each failure above left the cookie good: the region checks come
	 * after it, and a cookie is spent only by a connection that is taken. */
	fd = raw_memfd(SPK_SHM_REGION - 4096, sealed);
	expect_refused(&o, SIZE_MAX, fd, SPOKE_EPROTO, "bytes, not", "small memfd");
	close(fd);
	spk_sync_close(&ch);
	raw_offer("h", &ch, &o); /* a refused region spends the cookie: a new one */
	fd = raw_memfd(SPK_SHM_REGION, 0);
	expect_refused(&o, SIZE_MAX, fd, SPOKE_EPROTO, "not a memfd sealed", "unsealed memfd");
	close(fd);
	spk_sync_close(&ch);
	raw_offer("h", &ch, &o);
	fd = raw_memfd(SPK_SHM_REGION, F_SEAL_SHRINK);
	expect_refused(&o, SIZE_MAX, fd, SPOKE_EPROTO, "not a memfd sealed", "growable memfd");
	close(fd);
	/* A good one, then the same cookie again. */
	spk_sync_close(&ch);
	raw_offer("h", &ch, &o);
	sock = raw_connect(&o, &region, &efd);
	fd = raw_memfd(SPK_SHM_REGION, sealed);
	expect_refused(&o, SIZE_MAX, fd, SPOKE_EAUTH, "no live cookie", "replayed cookie");
	close(fd);
	close(sock);
	close(efd);
	munmap(region, SPK_SHM_REGION);
	spk_sync_close(&ch);
	echo_ok(a);
	wait_back_to(pid, fds, maps);
	spoke_actor_close(a);
}
END_TEST

/* Another uid (root only: the test becomes nobody in a child) that stole a
 * live cookie is refused by the worker's SO_PEERCRED check before it reads
 * a byte; the cookie stays good for its owner. */
START_TEST(other_uid_refused)
{
	spoke_actor *a;
	struct spk_shm_offer o;
	struct spk_sync_conn ch;
	uint8_t *region, res = 0;
	int p[2], status, sock, efd;
	pid_t child;

	if (getuid() != 0) {
		fprintf(stderr, "other_uid_refused: skipped: not root, cannot run a peer of another "
			"uid\n");
		return;
	}
	a = spawn_open("u", NULL);
	raw_offer("u", &ch, &o);
	ck_assert_int_eq(pipe(p), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		struct spk_shm_connect m = { .version = SPK_SHM_VERSION, .index = o.index,
					     .ring = SPK_SHM_RING };
		uint8_t buf[SPK_SHM_ANSWER_MAX];
		int fd, memfd, s;
		spoke_buf b;
		ssize_t n;

		close(p[0]);
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		s = raw_sock(o.name);
		memfd = raw_memfd(SPK_SHM_REGION, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		memcpy(m.cookie, o.cookie, SPK_SHM_COOKIE);
		spoke_buf_init(&b, buf, sizeof(buf));
		spk_shm_connect_pack(&b, &m);
		/* The worker may close before the message goes: that is a refusal too. */
		n = spk_shm_send(s, buf, b.len, memfd);
		if (n == 0) {
			struct pollfd pfd = { .fd = s, .events = POLLIN };

			n = poll(&pfd, 1, 3000) == 1 ? spk_shm_recv(s, buf, sizeof(buf), &fd, 0) : -1;
		}
		res = n == 0 || n == -EPIPE || n == -ECONNRESET ? 1 : n > 0 ? 2 : 4;
		if (write(p[1], &res, 1) != 1)
			_exit(4);
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &res, 1), 1);
	close(p[0]);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %#x", status);
	ck_assert_msg(res == 1, "uid 65534 got %s", res == 2 ? "an answer" : "no end");
	wait_worker_log("u", "uid 65534");
	sock = raw_connect(&o, &region, &efd); /* the cookie was never spent */
	close(sock);
	close(efd);
	munmap(region, SPK_SHM_REGION);
	spk_sync_close(&ch);
	echo_ok(a);
	spoke_actor_close(a);
}
END_TEST

/* ---- large calls ---- */

struct blob {
	uint8_t *p;
	size_t len;
	uint8_t seed;
	size_t bad; /* unpack: the first byte off the pattern */
};

static int blob_pack(spoke_buf *b, const void *obj)
{
	const struct blob *x = obj;
	uint8_t *p = spoke_buf_reserve(b, x->len);

	if (!p)
		return spoke_buf_error(b);
	fill_pattern(p, x->len, x->seed); /* straight into the ring or area */
	return 0;
}

static int blob_unpack(spoke_view *v, void *obj)
{
	struct blob *x = obj;
	size_t n = spoke_view_remaining(v);
	const void *p;

	if (spoke_view_get_raw(v, &p, n) < 0)
		return spoke_view_error(v);
	x->len = n;
	x->bad = pattern_diff(p, n, x->seed); /* read in place */
	return 0;
}

static const spoke_serializer blob_ser = { blob_pack, blob_unpack };

/* 16 and 64 MiB (the largest message) with spoke_call, spoke_call_obj
 * and spoke_call_async, both ways, byte for byte. */
static void big_calls(spoke_actor *a)
{
	static const size_t sizes[] = { 16 * MiB, 64 * MiB };
	uint8_t *buf = malloc(64 * MiB), req[5], r[8];
	spoke_future f[2];
	size_t n;

	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < 2; i++) {
		size_t len = sizes[i];
		struct blob in = { .len = len, .seed = (uint8_t)(3 + i) }, out = { .seed = 9 };
		uint8_t sum[8];

		fill_pattern(buf, len, (uint8_t)i);
		ck_assert_int_eq(spoke_call(a, PROBE_SUM, buf, len, r, sizeof(r), &n, 0), 0);
		ck_assert_uint_eq(get_u64(r), probe_sum(buf, len));
		fill_req(req, (uint32_t)len, (uint8_t)(7 + i));
		memset(buf, 0, len);
		ck_assert_int_eq(spoke_call(a, PROBE_FILL, req, sizeof(req), buf, len, &n, 0), 0);
		ck_assert_uint_eq(n, len);
		ck_assert_uint_eq(pattern_diff(buf, len, (uint8_t)(7 + i)), len);

		ck_assert_int_eq(spoke_call_obj(a, PROBE_ECHO, &blob_ser, &in, &blob_ser, &out, 0), 0);
		ck_assert_uint_eq(out.len, len);
		out.seed = in.seed;
		ck_assert_int_eq(spoke_call_obj(a, PROBE_ECHO, &blob_ser, &in, &blob_ser, &out, 0), 0);
		ck_assert_uint_eq(out.bad, len);

		fill_pattern(buf, len, (uint8_t)(11 + i));
		ck_assert_int_eq(spoke_call_async(a, PROBE_SUM, buf, len, sum, sizeof(sum), &f[0]),
				 0);
		ck_assert_int_eq(spoke_future_wait(&f[0], 0), 0);
		ck_assert_uint_eq(get_u64(sum), probe_sum(buf, len));
		fill_req(req, (uint32_t)len, (uint8_t)(13 + i));
		memset(buf, 0, len);
		ck_assert_int_eq(spoke_call_async(a, PROBE_FILL, req, sizeof(req), buf, len, &f[1]),
				 0);
		ck_assert_int_eq(spoke_future_wait(&f[1], 0), 0);
		ck_assert_uint_eq(f[1].reply_len, len);
		ck_assert_uint_eq(pattern_diff(buf, len, (uint8_t)(13 + i)), len);
	}
	free(buf);
}

/* Pipelined replies larger than the ring's free space (200 KiB: five fill
 * the 1 MiB ring) and than the ring (2 MiB: the bulk area, one at a time),
 * each checked. */
static void pipelined_large(spoke_actor *a)
{
	static const size_t sizes[] = { 200 << 10, 2 * MiB };
	enum { N = 24 };
	uint8_t *bufs = malloc(N * 2 * MiB), req[N][5];
	spoke_future f[N];

	ck_assert_ptr_nonnull(bufs);
	for (int s = 0; s < 2; s++) {
		size_t len = sizes[s];

		for (int i = 0; i < N; i++) {
			fill_req(req[i], (uint32_t)len, (uint8_t)(i + s));
			ck_assert_int_eq(spoke_call_async(a, PROBE_FILL, req[i], 5, bufs + i * len,
							  len, &f[i]), 0);
		}
		for (int i = 0; i < N; i++) {
			ck_assert_int_eq(spoke_future_wait(&f[i], 0), 0);
			ck_assert_uint_eq(f[i].reply_len, len);
			ck_assert_uint_eq(pattern_diff(bufs + i * len, len, (uint8_t)(i + s)), len);
		}
	}
	free(bufs);
}

/* Echoes of sizes around the ring's quarter and its end, then the big
 * calls: _i 0 a blocking worker and client, 1 both spinning. */
START_TEST(large_calls)
{
	spoke_spawn_opts opts = { .poll_us = _i ? 200 : 0 };
	static const size_t sizes[] = { 0, 1, 63, 64, 4096, 262120, 262144, 700000, MiB - 64, MiB,
					MiB + 1, 3 * MiB };
	spoke_actor *a;
	uint8_t *in = malloc(3 * MiB + 1), *out = malloc(3 * MiB + 1);
	size_t n;

	spoke_spawn(client, "Probe", "big", NULL, 0, &opts);
	ck_assert_int_eq(spoke_actor_open(client, "big", &a, 0), 0);
	spoke_actor_set_poll(a, _i ? 1000 : 0);
	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	for (int rep = 0; rep < 3; rep++) /* the ring wraps */
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			fill_pattern(in, sizes[i], (uint8_t)(i + rep));
			ck_assert_int_eq(spoke_call(a, PROBE_ECHO, in, sizes[i], out, 3 * MiB + 1, &n,
						    0), 0);
			ck_assert_uint_eq(n, sizes[i]);
			ck_assert_int_eq(memcmp(in, out, n), 0);
		}
	free(in);
	free(out);
	big_calls(a);
	pipelined_large(a);
	spoke_actor_close(a);
}
END_TEST

/* ---- the transport of a handle ---- */

/* One handle moves to TCP and back to shared memory, and says so; usable
 * says that a worker whose address is not on this node cannot be reached
 * over shared memory (SPOKE_ETRANSPORT).  (SPOKE_TRANSPORT=shm to a worker
 * on another node cannot be made here: every agent of the loopback cluster
 * runs on this machine.) */
START_TEST(switch_transport)
{
	spoke_actor *a = spawn_open("sw", NULL);
	struct spk_conn_args far = { .name = "far", .addr = "192.0.2.1:4000" };
	struct spk_conn_args near = { .name = "near", .addr = "127.0.0.1:4000" };

	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	ck_assert_int_eq(spoke_actor_use_transport(a, "tcp", 0), 0);
	ck_assert_str_eq(spoke_actor_transport(a), "tcp");
	echo_ok(a);
	ck_assert_int_eq(spoke_actor_use_transport(a, "shm", 0), 0);
	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	echo_ok(a);
	ck_assert_int_eq(spk_shm_transport.usable(&near), 0);
	ck_assert_int_eq(spk_shm_transport.usable(&far), SPOKE_ETRANSPORT);
	ck_assert_msg(strstr(spoke_errmsg(), "192.0.2.1:4000 is not on this node"), "%s",
		      spoke_errmsg());
	spoke_actor_close(a);
}
END_TEST

/* ---- set-ups that never finish ---- */

/* A process that connects to the worker's socket and sends nothing is
 * closed after the set-up deadline (2 s); past the cap of set-ups at once,
 * a connection is refused at once, with an answer; once the stalled ones
 * are gone, a handle connects again. */
START_TEST(stalled_setups)
{
	spoke_actor *a = spawn_open("st", NULL);
	uint32_t pid = actor_pid(a);
	int socks[64], extra, fd, fds, maps;
	struct spk_shm_offer o;
	struct spk_shm_answer ans;
	struct spk_sync_conn ch;
	double t0, t;

	ck_assert_int_eq(spoke_actor_use_transport(a, "tcp", 0), 0);
	echo_ok(a);
	/* The handle's shared-memory connection goes in the background. */
	maps = 0;
	fds = -1;
	for (int i = 0; i < WAIT_MS / 100; i++) {
		int f = count_fds(pid);

		if (f == fds && count_maps(pid, "memfd:spoke-") == maps)
			break;
		fds = f;
		usleep(100000);
	}
	raw_offer("st", &ch, &o);
	spk_sync_close(&ch);
	t0 = now_ms();
	for (int i = 0; i < 64; i++)
		socks[i] = raw_sock(o.name);
	usleep(100000); /* all accepted */
	extra = raw_sock(o.name);
	ck_assert_int_eq(raw_answer(extra, &ans, &fd, 1000), 1);
	ck_assert_int_eq(ans.status, SPOKE_ETRANSPORT);
	ck_assert_msg(strstr(ans.text, "being set up at once"), "%s", ans.text);
	ck_assert(closed_within(extra, 1000));
	close(extra);
	/* A handle's new connection meanwhile is refused the same way. */
	fd = spoke_actor_use_transport(a, "shm", 0);
	ck_assert_msg(fd == SPOKE_ETRANSPORT, "%s (%s)", spoke_strerror(fd), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), "being set up at once"), "%s", spoke_errmsg());
	for (int i = 0; i < 64; i++) {
		ck_assert_msg(closed_within(socks[i], 3000), "stalled set-up %d still open", i);
		t = now_ms() - t0;
		ck_assert_msg(t > 1500 && t < 3500, "closed after %.0f ms", t);
		close(socks[i]);
	}
	wait_worker_log("st", "no connect message within");
	ck_assert_int_eq(spoke_actor_use_transport(a, "shm", 0), 0);
	echo_ok(a);
	ck_assert_int_eq(spoke_actor_use_transport(a, "tcp", 0), 0);
	wait_back_to(pid, fds, maps);
	spoke_actor_close(a);
}
END_TEST

/* ---- spoke_mr memory: no byte copied ---- */

/* spoke_mr_alloc memory over shared memory: the method's request view and
 * the place it packs its reply both lie in the client's memfd as the
 * worker maps it (its /proc/PID/maps says so), and the reply is read from
 * the caller's memory, where the method put it; 16 and 64 MiB byte for
 * byte both ways; a reply over cap is SPOKE_ENOSPC with its size, a
 * failure's message comes back; spoke_mr_free unmaps it at the worker;
 * over TCP the same calls work on plain memory. */
START_TEST(mr_zero_copy)
{
	spoke_actor *a = spawn_open("z", NULL);
	uint32_t pid = actor_pid(a);
	static const size_t sizes[] = { 16 * MiB, 64 * MiB };
	spoke_mr rq, rp;
	uint8_t r[8];
	size_t n;
	int rc;

	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	ck_assert_int_eq(spoke_mr_alloc(a, 64 * MiB, &rq), 0);
	ck_assert_int_eq(spoke_mr_alloc(a, 64 * MiB + 100, &rp), 0);
	ck_assert_uint_eq(rp.len, 64 * MiB + 100);
	ck_assert_uint_eq((uintptr_t)rq.addr % 4096, 0);

	/* Where the method read and wrote. */
	fill_pattern(rq.addr, 16 * MiB, 5);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_WHERE, &rq, 4096, 16 * MiB - 4096, &rp, 100, 24,
				       &n, 0), 0);
	ck_assert_uint_eq(n, 24);
	{
		const uint8_t *w = (const uint8_t *)rp.addr + 100;

		ck_assert_msg(mapped_in(pid, get_u64(w), 16 * MiB - 4096, "memfd:spoke-mr"),
			      "the request was read at %#llx, not in the client's memory",
			      (unsigned long long)get_u64(w));
		ck_assert_msg(mapped_in(pid, get_u64(w + 8), 24, "memfd:spoke-mr"),
			      "the reply was packed at %#llx, not in the client's memory",
			      (unsigned long long)get_u64(w + 8));
		ck_assert_uint_eq(get_u64(w + 16),
				  probe_sum((const uint8_t *)rq.addr + 4096, 16 * MiB - 4096));
	}
	/* The same memory as request and reply. */
	ck_assert_int_eq(spoke_call_mr(a, PROBE_WHERE, &rq, 0, 4096, &rq, 8192, 24, &n, 0), 0);
	ck_assert_uint_eq(get_u64((uint8_t *)rq.addr + 8192 + 16), probe_sum(rq.addr, 4096));

	for (int i = 0; i < 2; i++) {
		size_t len = sizes[i];

		fill_pattern(rq.addr, len, (uint8_t)(20 + i));
		ck_assert_int_eq(spoke_call_mr(a, PROBE_SUM, &rq, 0, len, &rp, 0, 8, &n, 0), 0);
		ck_assert_uint_eq(get_u64(rp.addr), probe_sum(rq.addr, len));
		fill_req(rq.addr, (uint32_t)len, (uint8_t)(30 + i));
		ck_assert_int_eq(spoke_call_mr(a, PROBE_FILL, &rq, 0, 5, &rp, 100, len, &n, 0), 0);
		ck_assert_uint_eq(n, len);
		ck_assert_uint_eq(pattern_diff((uint8_t *)rp.addr + 100, len, (uint8_t)(30 + i)), len);
	}
	/* Over cap, a failure, a request in the caller's memory. */
	fill_req(rq.addr, 100, 1);
	rc = spoke_call_mr(a, PROBE_FILL, &rq, 0, 5, &rp, 0, 50, &n, 0);
	ck_assert_msg(rc == SPOKE_ENOSPC, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_uint_eq(n, 100);
	rc = spoke_call_mr(a, PROBE_FAIL, &rq, 0, 5, &rp, 0, 50, &n, 0);
	ck_assert_int_eq(rc, spoke_call(a, PROBE_FAIL, NULL, 0, r, sizeof(r), &n, 0));
	ck_assert_int_lt(rc, 0);
	fill_req(rq.addr, 77, 2);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_FILL, &rq, 0, 5, NULL, 0, 0, &n, 0), SPOKE_ENOSPC);
	ck_assert_uint_eq(n, 77);

	ck_assert_int_eq(count_maps(pid, "memfd:spoke-mr"), 2);
	spoke_mr_free(&rq);
	spoke_mr_free(&rp);
	ck_assert_ptr_null(rq.addr);
	for (int i = 0; i < 300 && count_maps(pid, "memfd:spoke-mr"); i++)
		usleep(10000);
	ck_assert_int_eq(count_maps(pid, "memfd:spoke-mr"), 0);
	echo_ok(a);

	/* TCP: plain memory, the same calls. */
	ck_assert_int_eq(spoke_actor_use_transport(a, "tcp", 0), 0);
	ck_assert_int_eq(spoke_mr_alloc(a, MiB, &rq), 0);
	ck_assert_int_eq(spoke_mr_alloc(a, MiB, &rp), 0);
	fill_req(rq.addr, MiB, 9);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_FILL, &rq, 0, 5, &rp, 0, MiB, &n, 0), 0);
	ck_assert_uint_eq(pattern_diff(rp.addr, MiB, 9), MiB);
	spoke_mr_free(&rq);
	spoke_mr_free(&rp);
	spoke_actor_close(a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("cluster");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, worker_killed_mid_call, 0, 2);
	tcase_add_test(tc, worker_dead_before_bulk_call);
	tcase_add_test(tc, client_killed_mid_call);
	tcase_add_test(tc, garbage_in_ring);
	tcase_add_test(tc, setup_refusals);
	tcase_add_test(tc, other_uid_refused);
	tcase_add_loop_test(tc, large_calls, 0, 2);
	tcase_add_test(tc, switch_transport);
	tcase_add_test(tc, stalled_setups);
	tcase_add_test(tc, mr_zero_copy);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	setenv("SPOKE_TRANSPORT", "shm", 1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

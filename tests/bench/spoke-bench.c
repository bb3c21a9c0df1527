/* spoke-bench.c - Spoke's performance figures, each next to a plain TCP
 * baseline measured in the same run, on loopback.
 *
 * The bench starts its own hub and agent (fork + exec), spawns its actors
 * from this very program (the actor type is linked in, so main() hands
 * control to the runtime when the agent starts it as a worker), and forks a
 * raw TCP server process for each baseline, so that both sides of every
 * comparison have the same process layout: one client process, one server
 * process, one TCP connection with TCP_NODELAY.
 *
 * Measured:
 *   - round-trip time of a 64-byte call, blocking and polling (spinning)
 *     modes, against a TCP ping-pong of 64 bytes in the same mode;
 *   - pipelined throughput of 64-byte asynchronous calls from one client,
 *     against a pipelined TCP echo with the same window;
 *   - call time and bandwidth for requests of 64 B to 16 MiB to a sink
 *     method, against sending as many bytes over TCP and reading a 1-byte ack;
 *   - time from starting a hub and an agent to the first completed call,
 *     and from a spawn request to the acknowledged spawn;
 *   - stripped size of libspoke.so, resident memory of the hub and the agent;
 *   - the cost of the workers' call figures (runtime/worker/stats.c): the
 *     pipelined 64-byte call rate, blocking and polling, of workers that
 *     count every call against those of a cluster alike but started with
 *     SPOKE_STATS_MS=0 (nothing counted), in alternating rounds.
 *
 * Spoke and TCP samples are taken in alternating rounds (with a pause that
 * lets spinning peers fall asleep in polling mode), so that drift in the
 * machine's load hits both alike.  Unless --no-pin is given, the client (this
 * process) runs on one CPU and every server (Spoke's workers, the TCP
 * servers) on another: where the scheduler puts two processes that wake each
 * other decides a blocking round trip more than anything else, and left to
 * it, the two sides of a comparison may well be placed differently.  Targets
 * are reported as PASS or MISS; the exit status is 0 unless something broke
 * (1, with a message). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#define BENCH_TYPE "SpokeBench"
#define M_ECHO 1 /* returns the request */
#define M_SINK 2 /* returns the request's length as a u64 */

#define SMALL 64                 /* bytes of the small messages */
#define SPIN_US 50000            /* polling mode: spin 50 ms after the last event */
#define WINDOW 128               /* pipelined calls in flight */
#define IO_TIMEOUT_MS 10000      /* every wait on a peer ends */
#define START_TIMEOUT_MS 10000   /* hub address file, agent registration */
#define STOP_GRACE_MS 3000       /* SIGTERM, then SIGKILL */
#define MAX_PAYLOAD (16u << 20)  /* the largest request */
#define MAX_KIDS 32
#define DIR_MAX (PATH_MAX / 2)   /* leaves room for file names after it */

/* ---- the actor, linked into this program ---------------------------------- */

static int m_echo(void *state, spoke_view *req, spoke_buf *reply)
{
	size_t n = spoke_view_remaining(req);
	const void *p;

	(void)state;
	if (spoke_view_get_raw(req, &p, n) < 0)
		return SPOKE_ESHORT;
	return spoke_buf_put_raw(reply, p, n);
}

static int m_sink(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	return spoke_buf_put_u64(reply, (uint64_t)spoke_view_remaining(req));
}

static const spoke_method bench_methods[] = {
	{ M_ECHO, "echo", m_echo },
	{ M_SINK, "sink", m_sink },
};

static const spoke_actor_type bench_actor = {
	.name = BENCH_TYPE,
	.methods = bench_methods,
	.n_methods = sizeof(bench_methods) / sizeof(bench_methods[0]),
};

SPOKE_REGISTER_ACTOR(bench_actor);

/* ---- settings and results ------------------------------------------------- */

struct config {
	size_t rtt_iters;     /* timed round trips per side and mode */
	size_t rtt_warmup;    /* untimed round trips per side and mode */
	int rounds;           /* alternations of the two sides */
	int pipe_calls;       /* timed pipelined calls per side and mode */
	int pipe_warmup;
	size_t payload_budget; /* bytes per side and payload size */
	size_t payload_max_iters;
	size_t payload_min_iters;
	int starts;           /* cold starts of a hub and an agent */
	int spawns;           /* spawns on a running cluster */
};

static const struct config full_config = {
	.rtt_iters = 20000, .rtt_warmup = 1000, .rounds = 4,
	.pipe_calls = 200000, .pipe_warmup = 2000,
	.payload_budget = 1u << 30, .payload_max_iters = 2000, .payload_min_iters = 8,
	.starts = 5, .spawns = 10,
};

static const struct config quick_config = {
	.rtt_iters = 3000, .rtt_warmup = 200, .rounds = 2,
	.pipe_calls = 30000, .pipe_warmup = 500,
	.payload_budget = 48u << 20, .payload_max_iters = 300, .payload_min_iters = 3,
	.starts = 3, .spawns = 5,
};

struct bench {
	struct config cfg;
	char self[PATH_MAX];   /* this program: the actors' worker */
	char bindir[DIR_MAX]; /* spoke-hub and spoke-agent; "" for $PATH */
	char tmpdir[DIR_MAX];
	int cpu_client, cpu_server; /* where the two ends run; -1: not pinned */
	int targets, met;
};

struct stats {
	double median_us, p99_us, min_us, max_us;
};

/* ---- small helpers ---------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints why the bench cannot go on; returns -1. */
static int fail(int rc, const char *fmt, ...)
{
	const char *more = spoke_errmsg();
	va_list ap;

	fprintf(stderr, "spoke-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (rc < 0)
		fprintf(stderr, ": %s", spoke_strerror(rc));
	if (rc <= -1000 && more && *more)
		fprintf(stderr, " (%s)", more);
	fputc('\n', stderr);
	return -1;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Sorts ns[0..n) and summarizes it. */
static void stats_of(int64_t *ns, size_t n, struct stats *s)
{
	size_t p99 = (n * 99 + 99) / 100;

	qsort(ns, n, sizeof(*ns), cmp_i64);
	s->median_us = (n % 2 ? (double)ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2.0) / 1e3;
	s->p99_us = (double)ns[p99 > 0 ? p99 - 1 : 0] / 1e3;
	s->min_us = (double)ns[0] / 1e3;
	s->max_us = (double)ns[n - 1] / 1e3;
}

static void verdict(struct bench *b, bool ok)
{
	b->targets++;
	b->met += ok;
	printf(" %s\n", ok ? "PASS" : "MISS");
}

static void size_name(char *out, size_t cap, size_t n)
{
	if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(out, cap, "%zu MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(out, cap, "%zu KiB", n >> 10);
	else
		snprintf(out, cap, "%zu B", n);
}

/* ---- child processes -------------------------------------------------------- */

static pid_t kids[MAX_KIDS];

static void kids_add(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (!kids[i]) {
			kids[i] = pid;
			return;
		}
}

static void kids_forget(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == pid)
			kids[i] = 0;
}

/* Every child still running: killed and reaped (the end, or an error). */
static void kids_kill_all(void)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i]) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
}

static void on_fatal_signal(int sig)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i])
			kill(kids[i], SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* In a child just forked: dies with the bench. */
static void child_setup(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
}

/* Starts argv[0] (a path, or a name looked up in $PATH). */
static pid_t start_process(char *const argv[])
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		child_setup(parent);
		execvp(argv[0], argv);
		fprintf(stderr, "spoke-bench: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	kids_add(pid);
	return pid;
}

/* 1 while pid runs; 0 once it ended (reaped, *status set). */
static int child_running(pid_t pid, int *status)
{
	if (waitpid(pid, status, WNOHANG) != pid)
		return 1;
	kids_forget(pid);
	return 0;
}

static void describe_exit(char *out, size_t cap, int status)
{
	if (WIFEXITED(status))
		snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, cap, "ended (wait status %#x)", status);
}

/* Waits up to timeout_ms for pid to end; SIGKILL after that.  Returns its
 * wait status. */
static int reap(pid_t pid, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;
	int status = 0;

	while (child_running(pid, &status)) {
		if (now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			kids_forget(pid);
			break;
		}
		sleep_us(500);
	}
	return status;
}

static void stop_process(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	reap(*pid, STOP_GRACE_MS);
	*pid = 0;
}

/* ---- CPU placement ----------------------------------------------------------- */

/* Pins process pid (0: this one) to one CPU; cpu < 0 leaves it alone. */
static void pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(pid, sizeof(set), &set) != 0)
		fprintf(stderr, "spoke-bench: cannot pin pid %d to CPU %d: %s\n", (int)pid, cpu,
			strerror(errno));
}

/* The first two CPUs this process may use, for the client's end and the
 * server's end of every comparison; none with fewer than two. */
static void pick_cpus(struct bench *b)
{
	cpu_set_t set;
	int found = 0;

	b->cpu_client = b->cpu_server = -1;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++)
		if (CPU_ISSET(cpu, &set)) {
			if (found++ == 0)
				b->cpu_client = cpu;
			else
				b->cpu_server = cpu;
		}
	if (found < 2)
		b->cpu_client = b->cpu_server = -1;
}

/* Whether process pid's environment holds the string var ("NAME=value"). */
static bool environ_has(pid_t pid, const char *var)
{
	char path[64], env[8192];
	size_t n, len = strlen(var);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(env, 1, sizeof(env) - 1, f);
	fclose(f);
	env[n] = '\0';
	for (size_t at = 0; at < n; at += strlen(env + at) + 1)
		if (!strncmp(env + at, var, len) && env[at + len] == '\0')
			return true;
	return false;
}

/* A number from /proc/PID/status ("PPid", "VmRSS" in kB), -1 if absent. */
static long proc_status(pid_t pid, const char *key)
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

static pid_t parent_of(pid_t pid)
{
	return (pid_t)proc_status(pid, "PPid");
}

/* The worker of actor `name`: the agent's child with SPOKE_ACTOR=name. */
static pid_t find_worker(pid_t agent, const char *name)
{
	char var[SPOKE_ACTOR_NAME_MAX + 16];
	struct dirent *de;
	pid_t found = -1, pid;
	DIR *d;

	snprintf(var, sizeof(var), "SPOKE_ACTOR=%s", name);
	d = opendir("/proc");
	if (!d)
		return -1;
	while (found < 0 && (de = readdir(d))) {
		pid = (pid_t)atoi(de->d_name);
		if (pid > 0 && parent_of(pid) == agent && environ_has(pid, var))
			found = pid;
	}
	closedir(d);
	return found;
}

/* ---- plain TCP baselines ---------------------------------------------------- */

enum tcp_mode {
	TCP_PINGPONG, /* receive size bytes, send them back */
	TCP_STREAM,   /* receive size bytes, send a 1-byte ack */
	TCP_ECHO,     /* send back whatever arrives (pipelined echo) */
};

struct tcp_peer {
	pid_t pid;
	int fd;
};

static void tcp_tune(int fd)
{
	struct timeval tv = { IO_TIMEOUT_MS / 1000, 0 };
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Receives 1..cap bytes (0 at end of stream).  spin_us > 0: spins on
 * non-blocking receives that long before it sleeps in poll(); else a plain
 * blocking recv() (the socket times out after IO_TIMEOUT_MS). */
static ssize_t recv_some(int fd, void *buf, size_t cap, int spin_us)
{
	int64_t spin_end = spin_us > 0 ? now_ns() + (int64_t)spin_us * 1000 : 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int rc;

	for (;;) {
		n = recv(fd, buf, cap, spin_us > 0 ? MSG_DONTWAIT : 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (spin_us <= 0)
			return -ETIMEDOUT; /* SO_RCVTIMEO */
		if (now_ns() < spin_end)
			continue;
		rc = poll(&pfd, 1, IO_TIMEOUT_MS);
		if (rc == 0)
			return -ETIMEDOUT;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* Receives exactly n bytes: n, or 0 at a clean end of stream (nothing
 * received), or a negative errno. */
static ssize_t recv_full(int fd, void *buf, size_t n, int spin_us)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = recv_some(fd, (uint8_t *)buf + got, n - got, spin_us);
		if (r < 0)
			return r;
		if (r == 0)
			return got ? -EPIPE : 0;
		got += (size_t)r;
	}
	return (ssize_t)n;
}

static int send_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	ssize_t r;

	while (n > 0) {
		r = send(fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The server's side of one connection, until the client closes it. */
static int tcp_serve(int fd, enum tcp_mode mode, size_t size, int spin_us)
{
	size_t cap = mode == TCP_ECHO ? 64u << 10 : size;
	uint8_t *buf = malloc(cap ? cap : 1), ack = 1;
	ssize_t n;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (mode == TCP_ECHO)
			n = recv_some(fd, buf, cap, spin_us);
		else
			n = recv_full(fd, buf, size, spin_us);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		rc = mode == TCP_STREAM ? send_full(fd, &ack, 1) : send_full(fd, buf, (size_t)n);
		if (rc < 0)
			break;
	}
	free(buf);
	return rc;
}

/* In the forked server: takes one connection and serves it. */
static void tcp_server_main(int lfd, enum tcp_mode mode, size_t size, int spin_us, int cpu)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int fd;

	pin(0, cpu);
	if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1)
		_exit(1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		_exit(1);
	close(lfd);
	tcp_tune(fd);
	_exit(tcp_serve(fd, mode, size, spin_us) < 0 ? 1 : 0);
}

/* Forks a server process (on CPU cpu, if >= 0) on a fresh loopback port and
 * connects to it. */
static int tcp_start(struct tcp_peer *p, enum tcp_mode mode, size_t size, int spin_us, int cpu)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	pid_t parent = getpid();
	int lfd, rc;

	p->pid = 0;
	p->fd = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return fail(-errno, "TCP baseline: socket");
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
		rc = fail(-errno, "TCP baseline: listen on loopback");
		goto out_close;
	}
	p->pid = fork();
	if (p->pid < 0) {
		rc = fail(-errno, "TCP baseline: fork");
		goto out_close;
	}
	if (p->pid == 0) {
		child_setup(parent);
		tcp_server_main(lfd, mode, size, spin_us, cpu);
	}
	kids_add(p->pid);
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = fail(-errno, "TCP baseline: connect to 127.0.0.1:%u", ntohs(sa.sin_port));
		goto out_kill;
	}
	tcp_tune(p->fd);
	close(lfd);
	return 0;
out_kill:
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	kill(p->pid, SIGKILL);
	reap(p->pid, STOP_GRACE_MS);
	p->pid = 0;
out_close:
	close(lfd);
	return rc;
}

/* Closes the connection; the server then ends by itself. */
static void tcp_stop(struct tcp_peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (p->pid > 0)
		reap(p->pid, STOP_GRACE_MS);
	p->pid = 0;
}

/* ---- one operation, timed many times ----------------------------------------- */

struct side {
	const char *what;
	int (*once)(void *ctx);
	void *ctx;
	int64_t *ns; /* one sample per timed operation */
};

struct spoke_op {
	spoke_actor *actor;
	uint32_t method;
	const void *req;
	size_t req_len;
	void *rep;
	size_t rep_cap, rep_expect;
};

static int spoke_once(void *ctx)
{
	struct spoke_op *op = ctx;
	size_t len = 0;
	int rc;

	rc = spoke_call(op->actor, op->method, op->req, op->req_len, op->rep, op->rep_cap, &len,
			IO_TIMEOUT_MS);
	if (rc == 0 && len != op->rep_expect)
		rc = SPOKE_EPROTO;
	return rc;
}

struct tcp_op {
	int fd;
	const void *req;
	size_t req_len;
	void *rep;
	size_t rep_len;
	int spin_us;
};

static int tcp_once(void *ctx)
{
	struct tcp_op *op = ctx;
	ssize_t n;
	int rc;

	rc = send_full(op->fd, op->req, op->req_len);
	if (rc < 0)
		return rc;
	n = recv_full(op->fd, op->rep, op->rep_len, op->spin_us);
	return n < 0 ? (int)n : n == 0 ? -EPIPE : 0;
}

static int run_chunk(struct side *s, size_t from, size_t count, size_t warmup)
{
	int64_t t0;
	int rc;

	for (size_t i = 0; i < warmup; i++) {
		rc = s->once(s->ctx);
		if (rc < 0)
			return fail(rc, "%s (warm-up)", s->what);
	}
	for (size_t i = 0; i < count; i++) {
		t0 = now_ns();
		rc = s->once(s->ctx);
		s->ns[from + i] = now_ns() - t0;
		if (rc < 0)
			return fail(rc, "%s", s->what);
	}
	return 0;
}

/* iters timed operations of each side, in `rounds` alternations (the order
 * flips every round), each chunk after a pause of settle_us and a warm-up. */
static int run_interleaved(struct side sides[2], size_t iters, size_t warmup, int rounds,
			   long settle_us)
{
	size_t done = 0, count;

	for (int r = 0; r < rounds; r++) {
		count = r == rounds - 1 ? iters - done : iters / (size_t)rounds;
		for (int k = 0; k < 2; k++) {
			struct side *s = &sides[r % 2 ? 1 - k : k];

			if (settle_us > 0)
				sleep_us(settle_us);
			if (run_chunk(s, done, count, warmup) < 0)
				return -1;
		}
		done += count;
	}
	return 0;
}

/* ---- the cluster: hub, agent, client -------------------------------------- */

struct cluster {
	pid_t hub, agent;
	char token_path[PATH_MAX], addr_path[PATH_MAX];
	char addr[256], token[256];
	spoke_client *client;
};

static void program_path(const struct bench *b, const char *name, char *out, size_t cap)
{
	if (b->bindir[0])
		snprintf(out, cap, "%s/%s", b->bindir, name);
	else
		snprintf(out, cap, "%s", name);
}

/* The first line of a small file, without trailing white space. */
static int read_line(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = '\0';
	return out[0] ? 0 : -ENODATA;
}

/* Waits for the hub's address file (written atomically once it listens). */
static int wait_hub(struct cluster *cl)
{
	int64_t end = now_ns() + (int64_t)START_TIMEOUT_MS * 1000000;
	char why[64];
	int status;

	while (access(cl->addr_path, F_OK) != 0) {
		if (!child_running(cl->hub, &status)) {
			cl->hub = 0;
			describe_exit(why, sizeof(why), status);
			return fail(0, "spoke-hub %s before it listened", why);
		}
		if (now_ns() > end)
			return fail(-ETIMEDOUT, "spoke-hub wrote no address to %s", cl->addr_path);
		sleep_us(100);
	}
	if (read_line(cl->addr_path, cl->addr, sizeof(cl->addr)) < 0)
		return fail(-errno, "cannot read the hub's address from %s", cl->addr_path);
	if (read_line(cl->token_path, cl->token, sizeof(cl->token)) < 0)
		return fail(-errno, "cannot read the job token from %s", cl->token_path);
	return 0;
}

static void cluster_stop(struct cluster *cl)
{
	spoke_client_close(cl->client);
	cl->client = NULL;
	stop_process(&cl->agent); /* its workers end with it */
	stop_process(&cl->hub);
	unlink(cl->addr_path);
	unlink(cl->token_path);
}

/* Starts a hub and an agent (fork + exec) and connects a client; the k-th
 * cluster of the run gets files of its own. */
static int cluster_start(struct bench *b, struct cluster *cl, int k)
{
	char hub_path[PATH_MAX], agent_path[PATH_MAX];
	char *hub_argv[] = { hub_path, "--listen", "127.0.0.1:0", "--address-file",
			     cl->addr_path, "--token-file", cl->token_path, NULL };
	char *agent_argv[] = { agent_path, "--hub", cl->addr, "--token-file", cl->token_path,
			       "--node", "bench", "--gpus", "0-7", NULL };
	spoke_client_opts o = { .timeout_ms = IO_TIMEOUT_MS, .poll_us = 0 };
	int rc;

	memset(cl, 0, sizeof(*cl));
	snprintf(cl->token_path, sizeof(cl->token_path), "%s/token-%d", b->tmpdir, k);
	snprintf(cl->addr_path, sizeof(cl->addr_path), "%s/hub-%d", b->tmpdir, k);
	program_path(b, "spoke-hub", hub_path, sizeof(hub_path));
	program_path(b, "spoke-agent", agent_path, sizeof(agent_path));
	cl->hub = start_process(hub_argv);
	if (cl->hub < 0) {
		rc = fail(cl->hub, "cannot start %s", hub_path);
		cl->hub = 0;
		goto out_stop;
	}
	rc = wait_hub(cl);
	if (rc < 0)
		goto out_stop;
	cl->agent = start_process(agent_argv);
	if (cl->agent < 0) {
		rc = fail(cl->agent, "cannot start %s", agent_path);
		cl->agent = 0;
		goto out_stop;
	}
	o.hub = cl->addr;
	o.token = cl->token;
	rc = spoke_client_open(&cl->client, &o);
	if (rc < 0) {
		rc = fail(rc, "cannot connect to the hub at %s", cl->addr);
		goto out_stop;
	}
	return 0;
out_stop:
	cluster_stop(cl);
	return rc;
}

/* Spawns actor `name` of the bench's type, run by this program; waits for
 * the agent to register first (the hub answers ENORES until then). */
static int spawn_actor(const struct bench *b, struct cluster *cl, const char *name, int poll_us)
{
	int64_t end = now_ns() + (int64_t)START_TIMEOUT_MS * 1000000;
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	char why[64];
	int rc, status;

	o.program = b->self;
	o.poll_us = poll_us;
	for (;;) {
		rc = spoke_spawn(cl->client, BENCH_TYPE, name, NULL, 0, &o);
		if (rc != SPOKE_ENORES)
			break;
		if (!child_running(cl->agent, &status)) {
			cl->agent = 0;
			describe_exit(why, sizeof(why), status);
			return fail(0, "spoke-agent %s before it registered", why);
		}
		if (now_ns() > end)
			break;
		sleep_us(200);
	}
	return rc < 0 ? fail(rc, "cannot spawn actor %s", name) : 0;
}

static int open_actor(struct cluster *cl, const char *name, int poll_us, spoke_actor **out)
{
	int rc = spoke_actor_open(cl->client, name, out, IO_TIMEOUT_MS);

	if (rc < 0)
		return fail(rc, "cannot open actor %s", name);
	spoke_actor_set_poll(*out, poll_us);
	return 0;
}

/* ---- start-up and spawn ------------------------------------------------------ */

/* Starts cluster k, spawns an actor and completes one call on it. */
static int cold_start(struct bench *b, struct cluster *cl, int k, int64_t *ns)
{
	int64_t t0 = now_ns();
	uint8_t req[SMALL] = { 0 }, rep[SMALL];
	struct spoke_op op = { NULL, M_ECHO, req, SMALL, rep, SMALL, SMALL };
	char name[32];
	int rc;

	rc = cluster_start(b, cl, k);
	if (rc < 0)
		return rc;
	snprintf(name, sizeof(name), "first-%d", k);
	rc = spawn_actor(b, cl, name, 0);
	if (rc < 0)
		goto out_stop;
	rc = open_actor(cl, name, 0, &op.actor);
	if (rc < 0)
		goto out_stop;
	rc = spoke_once(&op);
	*ns = now_ns() - t0;
	spoke_actor_close(op.actor);
	if (rc < 0) {
		rc = fail(rc, "first call to actor %s", name);
		goto out_stop;
	}
	return 0;
out_stop:
	cluster_stop(cl);
	return rc;
}

/* Cold starts, all but the last stopped again: *cl is left running. */
static int bench_start(struct bench *b, struct cluster *cl)
{
	int n = b->cfg.starts;
	int64_t ns[16];
	struct stats s;

	for (int k = 0; k < n; k++) {
		if (cold_start(b, cl, k, &ns[k]) < 0)
			return -1;
		if (k < n - 1)
			cluster_stop(cl);
	}
	stats_of(ns, (size_t)n, &s);
	printf("%-24s median %6.1f ms (min %.1f, max %.1f, n=%d)            (target < 20 ms)",
	       "start hub+agent -> call", s.median_us / 1e3, s.min_us / 1e3, s.max_us / 1e3, n);
	verdict(b, s.median_us < 20e3);
	return 0;
}

static int bench_spawn(struct bench *b, struct cluster *cl)
{
	int n = b->cfg.spawns, done = 0, rc = 0;
	int64_t ns[32], t0;
	struct stats s;
	char name[32];

	for (; done < n; done++) {
		snprintf(name, sizeof(name), "spawn-%d", done);
		t0 = now_ns();
		rc = spawn_actor(b, cl, name, 0);
		ns[done] = now_ns() - t0;
		if (rc < 0)
			break;
	}
	for (int i = 0; i < done; i++) {
		snprintf(name, sizeof(name), "spawn-%d", i);
		spoke_kill(cl->client, name, IO_TIMEOUT_MS);
	}
	if (rc < 0)
		return rc;
	stats_of(ns, (size_t)n, &s);
	printf("%-24s median %6.2f ms (min %.2f, max %.2f, n=%d)         (target < 5 ms)",
	       "spawn -> acknowledged", s.median_us / 1e3, s.min_us / 1e3, s.max_us / 1e3, n);
	verdict(b, s.median_us < 5e3);
	return 0;
}

/* ---- round-trip time ----------------------------------------------------------- */

static int bench_rtt(struct bench *b, spoke_actor *a, const char *mode, int spin_us,
		     double target)
{
	size_t iters = b->cfg.rtt_iters;
	uint8_t req[SMALL], srep[SMALL], trep[SMALL];
	struct spoke_op sop = { a, M_ECHO, req, SMALL, srep, SMALL, SMALL };
	struct tcp_op top = { -1, req, SMALL, trep, SMALL, spin_us };
	struct side sides[2] = {
		{ "TCP ping-pong", tcp_once, &top, NULL },
		{ "Spoke call", spoke_once, &sop, NULL },
	};
	struct stats ts, ss;
	struct tcp_peer peer;
	char label[64];
	int rc = -1;

	memset(req, 0xa5, sizeof(req));
	sides[0].ns = calloc(iters, sizeof(int64_t));
	sides[1].ns = calloc(iters, sizeof(int64_t));
	if (!sides[0].ns || !sides[1].ns) {
		fail(-ENOMEM, "round-trip samples");
		goto out_free;
	}
	if (tcp_start(&peer, TCP_PINGPONG, SMALL, spin_us, b->cpu_server) < 0)
		goto out_free;
	top.fd = peer.fd;
	/* A spinning peer goes to sleep SPIN_US after its last message. */
	rc = run_interleaved(sides, iters, b->cfg.rtt_warmup / (size_t)b->cfg.rounds,
			     b->cfg.rounds, spin_us > 0 ? spin_us + 20000 : 0);
	tcp_stop(&peer);
	if (rc < 0)
		goto out_free;
	stats_of(sides[0].ns, iters, &ts);
	stats_of(sides[1].ns, iters, &ss);
	snprintf(label, sizeof(label), "rtt 64B %s", mode);
	printf("%-24s spoke median %7.1f us p99 %7.1f us | tcp median %7.1f us p99 %7.1f us"
	       " | ratio %.2f (target <= %.2f)",
	       label, ss.median_us, ss.p99_us, ts.median_us, ts.p99_us,
	       ss.median_us / ts.median_us, target);
	verdict(b, ss.median_us / ts.median_us <= target);
out_free:
	free(sides[0].ns);
	free(sides[1].ns);
	return rc;
}

/* ---- pipelined throughput -------------------------------------------------- */

/* Futures outlive any failed run: the handle may still point at them. */
static spoke_future pipe_futures[WINDOW];
static uint8_t pipe_replies[WINDOW][SMALL];

/* n echo calls, at most WINDOW in flight, completed in order. */
static int spoke_pipeline(spoke_actor *a, const uint8_t *req, int n)
{
	int rc;

	for (int i = 0; i < n + WINDOW; i++) {
		int slot = i % WINDOW;

		if (i >= WINDOW) {
			rc = spoke_future_wait(&pipe_futures[slot], IO_TIMEOUT_MS);
			if (rc < 0)
				return fail(rc, "pipelined call %d", i - WINDOW);
			if (pipe_futures[slot].reply_len != SMALL)
				return fail(SPOKE_EPROTO, "pipelined call %d: reply of %zu bytes",
					    i - WINDOW, pipe_futures[slot].reply_len);
		}
		if (i < n) {
			rc = spoke_call_async(a, M_ECHO, req, SMALL, pipe_replies[slot], SMALL,
					      &pipe_futures[slot]);
			if (rc < 0)
				return fail(rc, "pipelined call %d", i);
		}
	}
	return 0;
}

/* The same over raw TCP: one send() per message, replies read as they come. */
static int tcp_pipeline(int fd, const uint8_t *req, int n, int spin_us)
{
	static uint8_t rbuf[64u << 10];
	uint64_t got = 0, need;
	ssize_t r;
	int rc;

	for (int i = 0; i < n + WINDOW; i++) {
		if (i >= WINDOW) {
			need = (uint64_t)(i - WINDOW + 1) * SMALL;
			while (got < need) {
				r = recv_some(fd, rbuf, sizeof(rbuf), spin_us);
				if (r <= 0)
					return fail(r < 0 ? (int)r : -EPIPE, "TCP pipelined echo");
				got += (uint64_t)r;
			}
		}
		if (i < n) {
			rc = send_full(fd, req, SMALL);
			if (rc < 0)
				return fail(rc, "TCP pipelined echo");
		}
	}
	return 0;
}

static int bench_pipeline(struct bench *b, spoke_actor *a, const char *mode, int spin_us)
{
	int n = b->cfg.pipe_calls, rounds = b->cfg.rounds;
	int64_t spoke_ns = 0, tcp_ns = 0, t0;
	uint8_t req[SMALL];
	struct tcp_peer peer;
	double srate, trate;
	char label[64];
	int rc;

	memset(req, 0x5a, sizeof(req));
	if (tcp_start(&peer, TCP_ECHO, 0, spin_us, b->cpu_server) < 0)
		return -1;
	rc = tcp_pipeline(peer.fd, req, b->cfg.pipe_warmup, spin_us);
	if (rc == 0)
		rc = spoke_pipeline(a, req, b->cfg.pipe_warmup);
	for (int r = 0; r < rounds && rc == 0; r++) {
		if (spin_us > 0)
			sleep_us(spin_us + 20000);
		t0 = now_ns();
		rc = tcp_pipeline(peer.fd, req, n / rounds, spin_us);
		tcp_ns += now_ns() - t0;
		if (rc < 0)
			break;
		if (spin_us > 0)
			sleep_us(spin_us + 20000);
		t0 = now_ns();
		rc = spoke_pipeline(a, req, n / rounds);
		spoke_ns += now_ns() - t0;
	}
	tcp_stop(&peer);
	if (rc < 0)
		return rc;
	n = n / rounds * rounds;
	srate = n / (spoke_ns / 1e9);
	trate = n / (tcp_ns / 1e9);
	snprintf(label, sizeof(label), "pipelined 64B %s", mode);
	printf("%-24s spoke %9.0f calls/s (window %d) | tcp echo, a send per message, %9.0f"
	       " msgs/s | ratio %.2f (target >= 250000 calls/s)",
	       label, srate, WINDOW, trate, srate / trate);
	verdict(b, srate >= 250000);
	return 0;
}

/* ---- the cost of counting calls ------------------------------------------ */

/* The pipelined 64 B rate of `on` (a worker that counts its calls) and of
 * `off` (one that does not), in alternating rounds. */
static int stats_rates(struct bench *b, spoke_actor *on, spoke_actor *off, const char *mode,
		       int spin_us)
{
	/* More, shorter rounds than the other figures: the difference is small. */
	int n = b->cfg.pipe_calls, rounds = b->cfg.rounds * 4;
	int64_t ns[2] = { 0, 0 }, t0;
	spoke_actor *a[2] = { on, off };
	uint8_t req[SMALL];
	char label[64];
	int rc;

	memset(req, 0x3c, sizeof(req));
	rc = spoke_pipeline(on, req, b->cfg.pipe_warmup);
	if (rc == 0)
		rc = spoke_pipeline(off, req, b->cfg.pipe_warmup);
	for (int r = 0; r < rounds && rc == 0; r++)
		for (int k = 0; k < 2 && rc == 0; k++) {
			int i = r % 2 ? 1 - k : k;

			if (spin_us > 0)
				sleep_us(spin_us + 20000);
			t0 = now_ns();
			rc = spoke_pipeline(a[i], req, n / rounds);
			ns[i] += now_ns() - t0;
		}
	if (rc < 0)
		return rc;
	n = n / rounds * rounds;
	snprintf(label, sizeof(label), "figures 64B %s", mode);
	printf("%-24s counting %9.0f calls/s | not counting (SPOKE_STATS_MS=0) %9.0f calls/s"
	       " | ratio %.3f\n", label, n / (ns[0] / 1e9), n / (ns[1] / 1e9),
	       (double)ns[1] / (double)ns[0]);
	return 0;
}

/* Starts cluster k with $SPOKE_STATS_MS at `stats_ms` for its agent, and so
 * its workers, and opens its actors `prefix`-block and `prefix`-poll (its
 * workers on the servers' CPU). */
static int stats_cluster(struct bench *b, struct cluster *cl, int k, const char *stats_ms,
			 const char *prefix, spoke_actor **block, spoke_actor **poll)
{
	char nb[32], np[32];
	int rc;

	snprintf(nb, sizeof(nb), "%s-block", prefix);
	snprintf(np, sizeof(np), "%s-poll", prefix);
	setenv("SPOKE_STATS_MS", stats_ms, 1);
	rc = cluster_start(b, cl, k);
	unsetenv("SPOKE_STATS_MS");
	if (rc < 0)
		return rc;
	rc = spawn_actor(b, cl, nb, 0);
	if (rc == 0)
		rc = spawn_actor(b, cl, np, SPIN_US);
	if (rc == 0)
		rc = open_actor(cl, nb, 0, block);
	if (rc == 0)
		rc = open_actor(cl, np, SPIN_US, poll);
	if (rc == 0 && b->cpu_server >= 0) {
		pid_t pb = find_worker(cl->agent, nb), pp = find_worker(cl->agent, np);

		if (pb > 0)
			pin(pb, b->cpu_server);
		if (pp > 0)
			pin(pp, b->cpu_server);
	}
	return rc;
}

/* Two new clusters alike but for SPOKE_STATS_MS: the default (counting),
 * and 0 (nothing counted). */
static int bench_stats_cost(struct bench *b)
{
	spoke_actor *on_block = NULL, *on_poll = NULL, *off_block = NULL, *off_poll = NULL;
	struct cluster on, off;
	int rc;

	memset(&off, 0, sizeof(off));
	rc = stats_cluster(b, &on, 98, "1000", "fig", &on_block, &on_poll);
	if (rc == 0)
		rc = stats_cluster(b, &off, 99, "0", "nofig", &off_block, &off_poll);
	if (rc == 0)
		rc = stats_rates(b, on_block, off_block, "blocking", 0);
	if (rc == 0)
		rc = stats_rates(b, on_poll, off_poll, "polling", SPIN_US);
	spoke_actor_close(on_block);
	spoke_actor_close(on_poll);
	spoke_actor_close(off_block);
	spoke_actor_close(off_poll);
	cluster_stop(&on);
	if (off.hub)
		cluster_stop(&off);
	return rc;
}

/* ---- payload sizes and bandwidth ------------------------------------------ */

static int bench_payload(struct bench *b, spoke_actor *a, const uint8_t *data, size_t size)
{
	size_t iters = b->cfg.payload_budget / size;
	uint8_t srep[8], ack;
	struct spoke_op sop = { a, M_SINK, data, size, srep, sizeof(srep), sizeof(srep) };
	struct tcp_op top = { -1, data, size, &ack, 1, 0 };
	struct side sides[2] = {
		{ "TCP stream", tcp_once, &top, NULL },
		{ "Spoke sink call", spoke_once, &sop, NULL },
	};
	double sbw, tbw;
	struct stats ts, ss;
	struct tcp_peer peer;
	char label[64], name[32];
	int rc = -1;

	if (iters > b->cfg.payload_max_iters)
		iters = b->cfg.payload_max_iters;
	if (iters < b->cfg.payload_min_iters)
		iters = b->cfg.payload_min_iters;
	sides[0].ns = calloc(iters, sizeof(int64_t));
	sides[1].ns = calloc(iters, sizeof(int64_t));
	if (!sides[0].ns || !sides[1].ns) {
		fail(-ENOMEM, "payload samples");
		goto out_free;
	}
	if (tcp_start(&peer, TCP_STREAM, size, 0, b->cpu_server) < 0)
		goto out_free;
	top.fd = peer.fd;
	rc = run_interleaved(sides, iters, iters < 20 ? 1 : 5, 2, 0);
	tcp_stop(&peer);
	if (rc < 0)
		goto out_free;
	stats_of(sides[0].ns, iters, &ts);
	stats_of(sides[1].ns, iters, &ss);
	sbw = (double)size / ss.median_us; /* bytes per us = MB/s */
	tbw = (double)size / ts.median_us;
	size_name(name, sizeof(name), size);
	snprintf(label, sizeof(label), "call %s", name);
	printf("%-24s spoke median %9.1f us %7.0f MB/s | tcp median %9.1f us %7.0f MB/s"
	       " | ratio %.2f",
	       label, ss.median_us, sbw, ts.median_us, tbw, sbw / tbw);
	if (size >= (1u << 20)) {
		printf(" (target >= 0.80)");
		verdict(b, sbw / tbw >= 0.8);
	} else {
		printf(" (no target)\n");
	}
out_free:
	free(sides[0].ns);
	free(sides[1].ns);
	return rc;
}

static int bench_payloads(struct bench *b, spoke_actor *a)
{
	static const size_t sizes[] = { 64, 1u << 10, 64u << 10, 1u << 20, 4u << 20, 16u << 20 };
	uint8_t *data = malloc(MAX_PAYLOAD);
	int rc = 0;

	if (!data)
		return fail(-ENOMEM, "payload buffer");
	for (size_t i = 0; i < MAX_PAYLOAD; i++)
		data[i] = (uint8_t)(i * 131 + 7);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && rc == 0; i++)
		rc = bench_payload(b, a, data, sizes[i]);
	free(data);
	return rc;
}

/* ---- footprint ---------------------------------------------------------------- */

/* The shared library itself, not one of its symlinks. */
static int find_lib(const struct bench *b, char *out, size_t cap)
{
	char pattern[PATH_MAX];
	struct stat st;
	glob_t g;
	int found = -ENOENT;

	snprintf(pattern, sizeof(pattern), "%s/.libs/libspoke.so*", b->bindir[0] ? b->bindir : ".");
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			if (lstat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode)) {
				snprintf(out, cap, "%s", g.gl_pathv[i]);
				found = 0;
			}
		globfree(&g);
	}
	if (found < 0) {
		snprintf(out, cap, "%s/libspoke.so", b->bindir[0] ? b->bindir : ".");
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
			found = 0;
	}
	return found;
}

static int copy_file(const char *from, const char *to)
{
	char buf[64u << 10];
	int in, out, rc = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = -errno;
		goto out_in;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	if (n < 0)
		rc = -errno;
	close(out);
out_in:
	close(in);
	return rc;
}

static int bench_lib_size(struct bench *b)
{
	char lib[PATH_MAX], copy[PATH_MAX];
	char *argv[] = { "strip", copy, NULL };
	bool stripped = false;
	struct stat st;
	pid_t pid;
	int rc;

	if (find_lib(b, lib, sizeof(lib)) < 0) {
		printf("%-24s not found under %s (skipped)\n", "libspoke.so stripped",
		       b->bindir[0] ? b->bindir : "the current directory");
		return 0;
	}
	snprintf(copy, sizeof(copy), "%s/libspoke.so", b->tmpdir);
	rc = copy_file(lib, copy);
	if (rc < 0)
		return fail(rc, "cannot copy %s to %s", lib, copy);
	pid = start_process(argv);
	if (pid > 0) {
		rc = reap(pid, IO_TIMEOUT_MS);
		stripped = WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
	}
	rc = stat(copy, &st);
	unlink(copy);
	if (rc != 0)
		return fail(-errno, "stat %s", copy);
	printf("%-24s %9lld bytes (%.2f MB)%s                                          (target < 1 MB)",
	       stripped ? "libspoke.so stripped" : "libspoke.so UNSTRIPPED", (long long)st.st_size,
	       st.st_size / 1e6, stripped ? "" : " [strip failed]");
	verdict(b, st.st_size < 1000000);
	return 0;
}

static int bench_rss(struct bench *b, const char *label, pid_t pid)
{
	long kib = proc_status(pid, "VmRSS");

	if (kib < 0)
		return fail(0, "cannot read VmRSS of %s (pid %d)", label, (int)pid);
	printf("%-24s %9.2f MiB (VmRSS, pid %d)                                      (target < 8 MiB)",
	       label, kib / 1024.0, (int)pid);
	verdict(b, kib < 8 * 1024);
	return 0;
}

/* ---- the whole run -------------------------------------------------------- */

static void print_header(const struct bench *b, bool quick)
{
	struct utsname u;

	uname(&u);
	printf("spoke-bench %s: loopback TCP, %ld CPUs, %s %s%s\n", spoke_version(),
	       sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, quick ? ", quick mode" : "");
	printf("binaries from %s; each figure next to a plain TCP baseline of this run\n\n",
	       b->bindir[0] ? b->bindir : "$PATH");
}

/* The client (this process) on one CPU; the servers (the two workers, and
 * each TCP baseline's server) on another: every comparison has the same
 * placement, run after run. */
static void pin_ends(struct bench *b, struct cluster *cl)
{
	static const char *const names[] = { "bench-block", "bench-poll" };
	pid_t pids[2];

	if (b->cpu_client < 0) {
		printf("not pinned: client and servers run where the scheduler puts them\n");
		return;
	}
	for (int i = 0; i < 2; i++) {
		pids[i] = find_worker(cl->agent, names[i]);
		if (pids[i] < 0) {
			printf("not pinned: the worker of actor %s is not among the agent's"
			       " children\n", names[i]);
			b->cpu_client = b->cpu_server = -1;
			return;
		}
	}
	for (int i = 0; i < 2; i++)
		pin(pids[i], b->cpu_server);
	pin(0, b->cpu_client);
	printf("pinned: client on CPU %d, servers (Spoke workers, TCP baselines) on CPU %d\n",
	       b->cpu_client, b->cpu_server);
}

static int bench_calls(struct bench *b, struct cluster *cl)
{
	spoke_actor *blocking = NULL, *polling = NULL;
	int rc;

	rc = spawn_actor(b, cl, "bench-block", 0);
	if (rc == 0)
		rc = spawn_actor(b, cl, "bench-poll", SPIN_US);
	if (rc == 0)
		rc = open_actor(cl, "bench-block", 0, &blocking);
	if (rc == 0)
		rc = open_actor(cl, "bench-poll", SPIN_US, &polling);
	if (rc < 0)
		goto out_close;
	pin_ends(b, cl);
	printf("\n");
	rc = bench_rtt(b, blocking, "blocking", 0, 1.15);
	if (rc == 0)
		rc = bench_rtt(b, polling, "polling", SPIN_US, 1.25);
	if (rc == 0)
		printf("\n");
	if (rc == 0)
		rc = bench_pipeline(b, blocking, "blocking", 0);
	if (rc == 0)
		rc = bench_pipeline(b, polling, "polling", SPIN_US);
	if (rc == 0)
		printf("\n");
	if (rc == 0)
		rc = bench_stats_cost(b);
	if (rc == 0)
		printf("\n");
	if (rc == 0)
		rc = bench_payloads(b, blocking);
out_close:
	spoke_actor_close(polling);
	spoke_actor_close(blocking);
	return rc;
}

static int run(struct bench *b, bool quick)
{
	struct cluster cl;
	int rc;

	print_header(b, quick);
	rc = bench_start(b, &cl);
	if (rc < 0)
		return rc;
	rc = bench_spawn(b, &cl);
	if (rc == 0)
		rc = bench_calls(b, &cl);
	if (rc == 0) {
		printf("\n");
		rc = bench_lib_size(b);
	}
	if (rc == 0)
		rc = bench_rss(b, "hub resident memory", cl.hub);
	if (rc == 0)
		rc = bench_rss(b, "agent resident memory", cl.agent);
	cluster_stop(&cl);
	if (rc == 0)
		printf("\ntargets met: %d of %d\n", b->met, b->targets);
	return rc;
}

/* ---- set-up ------------------------------------------------------------------- */

/* spoke-hub and spoke-agent: $SPOKE_BUILDDIR, else two levels above this
 * program (tests/bench/ in the build tree), else $PATH. */
static int find_programs(struct bench *b)
{
	const char *env = getenv("SPOKE_BUILDDIR");
	char path[PATH_MAX + 32], dir[PATH_MAX], *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", b->self, sizeof(b->self) - 1);
	if (n <= 0)
		return fail(-errno, "cannot find this program (/proc/self/exe)");
	b->self[n] = '\0';
	if (env && *env) {
		snprintf(b->bindir, sizeof(b->bindir), "%s", env);
		snprintf(path, sizeof(path), "%s/spoke-hub", b->bindir);
		if (access(path, X_OK) != 0)
			return fail(-errno, "SPOKE_BUILDDIR=%s has no spoke-hub", env);
		return 0;
	}
	memcpy(dir, b->self, sizeof(dir));
	for (int up = 0; up < 3; up++) {
		slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	snprintf(path, sizeof(path), "%s/spoke-hub", dir);
	if (dir[0] && strlen(dir) < sizeof(b->bindir) && access(path, X_OK) == 0)
		memcpy(b->bindir, dir, strlen(dir) + 1);
	else
		b->bindir[0] = '\0'; /* $PATH */
	return 0;
}

static int make_tmpdir(struct bench *b)
{
	const char *base = getenv("TMPDIR");

	snprintf(b->tmpdir, sizeof(b->tmpdir), "%s/spoke-bench.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(b->tmpdir))
		return fail(-errno, "cannot make a temporary directory in %s",
			    base && *base ? base : "/tmp");
	return 0;
}

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"Usage: %s [--quick] [--no-pin]\n"
		"Spoke's latency, throughput, start-up and footprint on loopback TCP, each\n"
		"next to a plain TCP baseline measured in the same run, with the targets\n"
		"(PASS or MISS).  Starts its own hub and agent from $SPOKE_BUILDDIR (else\n"
		"the build tree this program lives in, else $PATH).\n"
		"\n"
		"  -q, --quick   fewer iterations (a few seconds)\n"
		"      --no-pin  leave CPU placement to the scheduler (by default this\n"
		"                client runs on the first CPU it may use, and every server,\n"
		"                Spoke's workers and the TCP baselines' alike, on the second)\n"
		"  -h, --help    this help\n"
		"\n"
		"Exit status: 0 when the run completed (whatever the figures), 1 when\n"
		"something broke, 2 on bad usage.\n",
		argv0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "no-pin", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench b;
	bool quick = false, no_pin = false;
	int opt, rc;

	spoke_worker_maybe_run(argc, argv); /* returns only when not a worker */
	while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q': quick = true; break;
		case 'P': no_pin = true; break;
		case 'h': usage(stdout, argv[0]); return 0;
		default: usage(stderr, argv[0]); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "spoke-bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr, argv[0]);
		return 2;
	}
	b.cfg = quick ? quick_config : full_config;
	b.cpu_client = b.cpu_server = -1;
	if (!no_pin)
		pick_cpus(&b);
	setvbuf(stdout, NULL, _IOLBF, 0);
	setenv("SPOKE_LOG", "error", 0); /* hub, agent and workers: quiet */
	/* Its figures are TCP's (the same node would take shared memory:
	 * shm-bench has those); SPOKE_TRANSPORT set by the caller wins. */
	setenv("SPOKE_TRANSPORT", "tcp", 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_fatal_signal);
	signal(SIGTERM, on_fatal_signal);
	rc = find_programs(&b);
	if (rc < 0)
		return 1;
	rc = make_tmpdir(&b);
	if (rc < 0)
		return 1;
	rc = run(&b, quick);
	kids_kill_all();
	if (rmdir(b.tmpdir) != 0)
		fprintf(stderr, "spoke-bench: cannot remove %s: %s\n", b.tmpdir, strerror(errno));
	return rc < 0 ? 1 : 0;
}

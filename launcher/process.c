/* process.c - spoke-launch's processes: starting the hub, the agents (a
 * local one here; srun's in slurm.c) and the driver, each tied to us
 * (PR_SET_PDEATHSIG, runtime/common/spawn.c); the janitor that cleans up
 * if we are killed outright; and the teardown that stops them all, with
 * what the driver left behind (we are a child subreaper). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "gpus.h"
#include "launch.h"
#include "spawn.h"

/* fork + exec; stdout/stderr to log (if given); its own process group, so
 * that a terminal's Ctrl-C reaches us, not it; dies with us. */
pid_t spk_start(char *const argv[], char *const envp[], const char *log)
{
	struct spk_spawn s = {
		.argv = argv, .envp = envp, .search_path = true, .death_signal = SIGTERM,
		.own_group = true, .out_fd = -1, .keep_fd = -1,
		.exec_failed = "spoke-launch: cannot run ",
	};
	pid_t pid;

	if (log) {
		s.out_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (s.out_fd < 0) {
			spk_say("cannot open %s: %s", log, strerror(errno));
			return -1;
		}
	}
	pid = spk_spawn(&s);
	if (s.out_fd >= 0)
		close(s.out_fd);
	if (pid < 0) {
		spk_say("cannot fork: %s", strerror((int)-pid));
		return -1;
	}
	return pid;
}

static int read_small_file(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return -1;
	ok = fgets(out, (int)cap, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

/* Whether child *pid runs; one that has ended is reaped and *pid cleared,
 * so that nothing signals its number again. */
int spk_child_alive(pid_t *pid)
{
	if (*pid <= 0)
		return 0;
	if (waitpid(*pid, NULL, WNOHANG) == 0)
		return 1;
	*pid = 0;
	return 0;
}

int spk_start_hub(struct launch *L)
{
	char hub[PATH_MAX], listen_at[64], log[PATH_MAX];
	static char allowed[1 << 16];
	int64_t deadline = spk_now_us() + HUB_START_MS * 1000LL;

	snprintf(hub, sizeof(hub), "%s/spoke-hub", L->bindir);
	snprintf(listen_at, sizeof(listen_at), "%s:%u", L->local ? "127.0.0.1" : "0.0.0.0",
		 L->job->hub_port);
	snprintf(log, sizeof(log), "%s/hub.log", L->logdir);
	unlink(L->addr_file);
	char *argv[] = { hub, "--listen", listen_at, "--address-file", L->addr_file, "--token-file",
			 L->token_file, NULL, NULL, NULL };

	if (spk_allowed_nodes(L, allowed, sizeof(allowed)) < 0)
		return -1;
	if (allowed[0]) { /* only the allocation's nodes may register */
		argv[7] = "--allow-nodes";
		argv[8] = allowed;
	}
	L->hub = spk_start(argv, environ, log);
	if (L->hub < 0)
		return -1;
	while (read_small_file(L->addr_file, L->hub_addr, sizeof(L->hub_addr)) < 0) {
		if (spk_got_signal)
			return -1;
		if (!spk_child_alive(&L->hub) || spk_now_us() > deadline) {
			spk_say("the hub did not start; see %s", log);
			return -1;
		}
		usleep(2000);
	}
	setenv("SPOKE_HUB", L->hub_addr, 1);
	spk_say("hub at %s (%.0f ms)", L->hub_addr, spk_ms_since(L));
	return 0;
}

/* The GPUs of the local agent: --gpus, else $CUDA_VISIBLE_DEVICES, else
 * the machine's, else (so that the gang's examples run anywhere)
 * placeholder ids for the gang. */
static void local_gpus(struct launch *L, char *out, size_t cap)
{
	int32_t ids[64];
	uint32_t n;

	if (L->gpus || getenv("CUDA_VISIBLE_DEVICES")) {
		snprintf(out, cap, "%s", L->gpus ? L->gpus : getenv("CUDA_VISIBLE_DEVICES"));
		return;
	}
	n = spk_gpu_scan(ids, 64);
	if (n == 0 && L->job->has_gang) {
		for (n = 0; n < L->job->gang_gpus && n < 64; n++)
			ids[n] = (int32_t)n;
		spk_say("no GPUs on this machine: the local agent offers %u placeholder GPU ids", n);
	}
	spk_gpu_list_format(out, cap, ids, n);
}

/* Every module of the job, ':'-separated, for the agents' --module: those
 * of modules: and of the actor groups, so a driver can spawn those types. */
static void all_modules(const struct launch *L, char *out, size_t cap)
{
	char path[2 * PATH_MAX];
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < L->job->n_modules + L->job->n_groups; i++) {
		const char *m = i < L->job->n_modules ? L->job->modules[i]
						       : L->job->groups[i - L->job->n_modules].module;

		if (m[0] && len < cap)
			len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ":" : "",
						spk_job_path(L, m, path, sizeof(path)));
	}
}

int spk_start_agents(struct launch *L)
{
	static char modules[JOB_MAX_MODULES * JOB_STR_MAX];
	char agent[PATH_MAX], log[PATH_MAX], gpus[SPK_GPU_LIST_MAX];

	snprintf(agent, sizeof(agent), "%s/spoke-agent", L->bindir);
	if (L->local) {
		local_gpus(L, gpus, sizeof(gpus));
		snprintf(log, sizeof(log), "%s/agent-local.log", L->logdir);
		all_modules(L, modules, sizeof(modules));
		char *argv[] = { agent, "--hub", L->hub_addr, "--node", "local", "--gpus", gpus,
				 "--module", modules, NULL };
		L->n_agents = 1;
		L->agents = spk_start(argv, environ, log);
		return L->agents < 0 ? -1 : 0;
	}
	all_modules(L, modules, sizeof(modules));
	return spk_srun_agents(L, agent, modules);
}

int spk_start_driver(struct launch *L)
{
	char *argv[JOB_MAX_ARGV + 1], prog[2 * PATH_MAX];
	const char *shell = getenv("SHELL");
	pid_t pid;

	if (L->shell || L->job->driver_argc == 0) {
		argv[0] = (char *)(shell && *shell ? shell : "/bin/sh");
		argv[1] = NULL;
		spk_say("no driver: starting %s; clients reach the job through SPOKE_HUB=%s; exit the shell to end the job",
			argv[0], L->hub_addr);
	} else {
		for (size_t i = 0; i < L->job->driver_argc; i++)
			argv[i] = L->job->driver_argv[i];
		argv[L->job->driver_argc] = NULL;
		/* ./driver is the job file's; a bare name is looked up in PATH. */
		if (strchr(argv[0], '/'))
			argv[0] = (char *)spk_job_path(L, argv[0], prog, sizeof(prog));
	}
	/* From now on Ctrl-C belongs to the shell (start-up could still be
	 * interrupted). */
	if (L->shell || L->job->driver_argc == 0)
		signal(SIGINT, SIG_IGN);
	pid = spk_spawn(&(struct spk_spawn){
		.argv = argv, .envp = environ, .search_path = true, .death_signal = SIGTERM,
		.out_fd = -1, .keep_fd = -1, .exec_failed = "spoke-launch: cannot run the driver ",
	});
	if (pid < 0) {
		spk_say("cannot fork the driver: %s", strerror((int)-pid));
		return -1;
	}
	L->driver = pid;
	return 0;
}

/* Reaps every child that has ended, clearing the pid we keep of it. */
static void reap(struct launch *L)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
		if (pid == L->driver)
			L->driver = 0;
		else if (pid == L->agents)
			L->agents = 0;
		else if (pid == L->hub)
			L->hub = 0;
		else if (pid == L->janitor)
			L->janitor = 0;
	}
}

/* Signals (sig 0: only counts) every process in /proc that pick(pid, arg)
 * chooses; returns how many it chose. */
static int signal_procs(bool (*pick)(pid_t pid, const void *arg), const void *arg, int sig)
{
	struct dirent *e;
	int n = 0;
	pid_t pid;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)atoi(e->d_name);
		if (!pick(pid, arg))
			continue;
		if (sig)
			kill(pid, sig);
		n++;
	}
	closedir(d);
	return n;
}

/* A child of ours that we did not start ourselves. */
static bool is_stray(pid_t pid, const void *arg)
{
	const struct launch *L = arg;
	char path[64], line[512], *p;
	int ppid;
	FILE *f;

	if (pid == L->driver || pid == L->agents || pid == L->hub || pid == L->janitor)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
	fclose(f);
	/* "pid (comm) S ppid ...": comm may hold blanks and parentheses */
	return p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == getpid();
}

/* Signals our children other than the driver, the agents and the hub:
 * what the driver left behind, reparented to us (a child subreaper).
 * Returns how many there are (sig 0 only counts them). */
static int signal_strays(struct launch *L, int sig)
{
	reap(L);
	return signal_procs(is_stray, L, sig);
}

/* A process started with the job's token in its environment: the hub,
 * agents, actors and driver of this job, and what they started. */
static bool has_token(pid_t pid, const void *arg)
{
	const char *want = arg; /* "\0SPOKE_TOKEN=...\0" */
	size_t want_len = strlen(want + 1) + 2, len = 1, size = 0;
	char path[64], *buf = NULL, *bigger;
	bool found = false;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	for (;;) {
		if (len == size) {
			size = size ? 2 * size : 16384;
			if (size > (1 << 22) || !(bigger = realloc(buf, size)))
				goto out;
			buf = bigger;
			buf[0] = '\0'; /* so that the first entry is "\0NAME=" too */
		}
		n = read(fd, buf + len, size - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	found = buf && memmem(buf, len, want, want_len) != NULL;
out:
	free(buf);
	close(fd);
	return found;
}

/* Removes the job's token and hub address files, and what a process
 * killed while it replaced one left (file.c writes PATH.XXXXXX, then
 * renames it), so that only the logs stay. */
static void remove_job_files(const struct launch *L)
{
	const char *files[] = { L->token_file, L->addr_file };
	char pattern[sizeof(L->addr_file) + 8];
	glob_t g;

	for (size_t i = 0; i < 2; i++) {
		unlink(files[i]);
		snprintf(pattern, sizeof(pattern), "%s.??????", files[i]);
		if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc; k++)
			unlink(g.gl_pathv[k]);
		globfree(&g);
	}
}

/* The janitor: forked before anything of the job starts, it waits for us.
 * If we die without our teardown (SIGKILL), it stops every process that
 * has the job's token in its environment (SIGTERM, SIGKILL after the
 * shutdown timeout: the hub, agents and driver have had a SIGTERM from
 * the kernel already, PR_SET_PDEATHSIG) and removes the token file and
 * the hub's address file, so that only the logs remain. */
static void janitor(const struct launch *L, int fd, pid_t launcher)
{
	char want[SPK_TOKEN_MAX + 16];
	int64_t deadline;
	int n, left;
	ssize_t got;
	char c;

	setpgid(0, 0); /* a terminal's Ctrl-C is for the launcher, not us */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	n = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (n >= 0) {
		dup2(n, STDIN_FILENO);
		dup2(n, STDOUT_FILENO);
		close(n);
	}
	while ((got = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	if (got == 1)
		_exit(0); /* the teardown ran */
	snprintf(want, sizeof(want), "%cSPOKE_TOKEN=%s", '\0', L->token);
	n = signal_procs(has_token, want, SIGTERM);
	deadline = spk_now_us() + (int64_t)L->job->timeout_shutdown_ms * 1000;
	while ((left = signal_procs(has_token, want, 0)) > 0 && spk_now_us() < deadline)
		usleep(20000);
	if (left)
		signal_procs(has_token, want, SIGKILL);
	remove_job_files(L);
	spk_say("the launcher (pid %d) died before its teardown: stopped %d process%s of job %s%s, removed its token file",
		(int)launcher, n, n == 1 ? "" : "es", L->job->name, left ? " (some with SIGKILL)" : "");
	_exit(0);
}

int spk_start_janitor(struct launch *L)
{
	pid_t launcher = getpid();
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0) {
		spk_say("cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	L->janitor = fork();
	if (L->janitor == 0) {
		close(fds[1]);
		janitor(L, fds[0], launcher);
	}
	close(fds[0]);
	if (L->janitor < 0) {
		spk_say("cannot fork: %s", strerror(errno));
		close(fds[1]);
		return -1;
	}
	L->janitor_fd = fds[1];
	return 0;
}

/* Waits until child *pid has ended (reaping any other on the way), at most
 * until deadline. */
static void wait_child(struct launch *L, pid_t *pid, int64_t deadline)
{
	while (*pid > 0 && spk_now_us() < deadline) {
		reap(L);
		if (*pid > 0)
			usleep(2000);
	}
}

/* Tells the janitor that the teardown ran, and waits for it to go. */
void spk_stop_janitor(struct launch *L)
{
	if (L->janitor <= 0)
		return;
	if (write(L->janitor_fd, "", 1) != 1)
		spk_say("cannot tell the janitor (pid %d) to go: %s", (int)L->janitor, strerror(errno));
	close(L->janitor_fd);
	wait_child(L, &L->janitor, spk_now_us() + 1000000);
}

void spk_teardown(struct launch *L)
{
	int64_t grace = (int64_t)L->job->timeout_shutdown_ms * 1000, deadline;

	/* The driver first: it may still be using the actors. */
	if (L->driver > 0) {
		/* An interactive shell ignores SIGTERM; it ends on SIGHUP. */
		kill(L->driver, L->shell || !L->job->driver_argc ? SIGHUP : SIGTERM);
		wait_child(L, &L->driver, spk_now_us() + grace);
	}
	/* The actors, through the hub: our connection holds their gang
	 * tickets. */
	spoke_client_close(L->client);
	L->client = NULL;
	/* What the driver left behind, and the agents (which stop their
	 * actors), before the hub, so that they see an orderly end rather than
	 * the hub going away. */
	deadline = spk_now_us() + grace;
	signal_strays(L, SIGTERM);
	if (L->agents > 0) {
		/* An agent stops on SIGTERM or SIGINT; srun --disable-status
		 * hands SIGINT on, but SIGKILLs the agents on SIGTERM. */
		kill(L->agents, L->local ? SIGTERM : SIGINT);
		wait_child(L, &L->agents, deadline);
		if (L->agents > 0 && !L->local) {
			kill(L->agents, SIGTERM);
			wait_child(L, &L->agents, spk_now_us() + 1000000);
		}
	}
	while (signal_strays(L, 0) > 0 && spk_now_us() < deadline)
		usleep(20000);
	if (L->hub > 0) {
		kill(L->hub, SIGTERM);
		wait_child(L, &L->hub, spk_now_us() + grace);
	}
	/* Whatever did not stop in time. */
	deadline = spk_now_us() + 1000000;
	for (;;) {
		pid_t *kids[] = { &L->driver, &L->agents, &L->hub };
		int left = signal_strays(L, SIGKILL);

		for (size_t i = 0; i < 3; i++)
			if (*kids[i] > 0) {
				kill(*kids[i], SIGKILL);
				left++;
			}
		if (!left || spk_now_us() > deadline)
			break;
		usleep(2000);
	}
	remove_job_files(L); /* only the logs stay */
}

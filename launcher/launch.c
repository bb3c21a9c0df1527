/* launch.c - spoke-launch: runs a Spoke job described by a job file.
 *
 * Inside a Slurm allocation it starts the hub here and one agent per node
 * with srun; with --local (or outside Slurm) the hub and one agent run here
 * as plain processes.  It waits for every agent to register, launches the
 * actor groups (gang groups in two phases: allocate, then launch per slot),
 * runs the driver (or a shell) with SPOKE_HUB and the job token in its
 * environment, and tears everything down when the driver ends, on SIGINT,
 * SIGTERM or SIGHUP, or when the hub or an agent dies, saying why.  Its
 * exit status is the driver's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "auth.h"
#include "clock.h"
#include "jobfile.h"
#include "proto.h"

#define EXIT_LAUNCH 1 /* the launcher failed: nothing of the driver ran */
#define EXIT_USAGE 2  /* bad options or job file */
#define HUB_START_MS 10000

extern char **environ;

struct launch {
	struct job *job;
	bool local, shell;
	const char *gpus;     /* --gpus for the local agent */
	char bindir[PATH_MAX - 32];
	char jobdir[PATH_MAX];       /* paths in the job file are relative to it */
	char logdir[PATH_MAX - 64];
	char token_file[PATH_MAX];
	char token[SPK_TOKEN_MAX];
	char hub_addr[SPK_ADDR_MAX];
	unsigned n_agents; /* agents expected */
	pid_t hub, agents, driver;
	spoke_client *client;
	int64_t t0;
	const char *why; /* why the job stopped */
	int exit_code;
};

static volatile sig_atomic_t got_signal;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fprintf(stderr, "spoke-launch: %.*s", n, line);
}

static void on_signal(int sig)
{
	got_signal = sig;
}

static double ms_since(const struct launch *L)
{
	return (double)(spk_now_us() - L->t0) / 1000.0;
}

/* fork + exec; stdout/stderr to log (if given); its own process group, so
 * that a terminal's Ctrl-C reaches us, not it; dies with us. */
static pid_t start(char *const argv[], char *const envp[], const char *log)
{
	pid_t parent = getpid(), pid;
	int fd = -1;

	if (log) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0) {
			say("cannot open %s: %s", log, strerror(errno));
			return -1;
		}
	}
	pid = fork();
	if (pid != 0) {
		if (fd >= 0)
			close(fd);
		if (pid < 0)
			say("cannot fork: %s", strerror(errno));
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	setpgid(0, 0);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	execvpe(argv[0], argv, envp);
	fprintf(stderr, "spoke-launch: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static const char *job_path(const struct launch *L, const char *path, char *out, size_t cap);

/* Where spoke-hub and spoke-agent are: $SPOKE_BINDIR, else beside us. */
static void find_bindir(struct launch *L)
{
	const char *env = getenv("SPOKE_BINDIR");
	char self[PATH_MAX - 32];
	ssize_t n;

	if (env && *env) {
		snprintf(L->bindir, sizeof(L->bindir), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		snprintf(L->bindir, sizeof(L->bindir), ".");
		return;
	}
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(L->bindir, sizeof(L->bindir), "%s", self);
}

static int make_logdir(struct launch *L, const char *opt)
{
	const char *jobid = getenv("SLURM_JOB_ID");
	char base[PATH_MAX - 128];

	if (opt)
		snprintf(base, sizeof(base), "%s", opt);
	else if (jobid && !L->local)
		snprintf(base, sizeof(base), "spoke-logs/%s-%s", L->job->name, jobid);
	else
		snprintf(base, sizeof(base), "spoke-logs/%s-%d", L->job->name, (int)getpid());
	/* mkdir -p */
	for (char *p = base + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(base, 0755) != 0 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(base, 0700) != 0 && errno != EEXIST)
		goto fail;
	if (!realpath(base, L->logdir))
		goto fail;
	return 0;
fail:
	say("cannot create the log directory %s: %s", base, strerror(errno));
	return -1;
}

/* The job's environment for hub, agents, actors and driver. */
static int job_env(const struct launch *L)
{
	char buf[32];

	for (size_t i = 0; i < L->job->n_env; i++)
		setenv(L->job->env[i].name, L->job->env[i].value, 1);
	setenv("SPOKE_TOKEN_FILE", L->token_file, 1);
	setenv("SPOKE_JOB", L->job->name, 1);
	setenv("SPOKE_LOG_DIR", L->logdir, 1);
	snprintf(buf, sizeof(buf), "%lld", (long long)L->t0);
	setenv("SPOKE_LAUNCH_T0_US", buf, 1); /* monotonic µs, for timing the start */
	return 0;
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

static int child_alive(pid_t pid)
{
	return pid > 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

static int start_hub(struct launch *L)
{
	char hub[PATH_MAX], listen_at[64], addr_file[PATH_MAX], log[PATH_MAX];
	int64_t deadline = spk_now_us() + HUB_START_MS * 1000LL;

	snprintf(hub, sizeof(hub), "%s/spoke-hub", L->bindir);
	snprintf(listen_at, sizeof(listen_at), "%s:%u", L->local ? "127.0.0.1" : "0.0.0.0",
		 L->job->hub_port);
	snprintf(addr_file, sizeof(addr_file), "%s/hub.addr", L->logdir);
	snprintf(log, sizeof(log), "%s/hub.log", L->logdir);
	unlink(addr_file);
	char *argv[] = { hub, "--listen", listen_at, "--address-file", addr_file, "--token-file",
			 L->token_file, NULL };
	L->hub = start(argv, environ, log);
	if (L->hub < 0)
		return -1;
	while (read_small_file(addr_file, L->hub_addr, sizeof(L->hub_addr)) < 0) {
		if (!child_alive(L->hub) || spk_now_us() > deadline) {
			say("the hub did not start; see %s", log);
			return -1;
		}
		usleep(2000);
	}
	setenv("SPOKE_HUB", L->hub_addr, 1);
	say("hub at %s (%.0f ms)", L->hub_addr, ms_since(L));
	return 0;
}

/* The GPUs of the local agent: --gpus, else the machine's, else (so that
 * the gang's examples run anywhere) placeholder ids for the gang. */
static void local_gpus(struct launch *L, char *out, size_t cap)
{
	int32_t ids[64];
	uint32_t n = 0;
	char path[32];

	if (L->gpus) {
		snprintf(out, cap, "%s", L->gpus);
		return;
	}
	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/dev/nvidia%d", i);
		if (access(path, F_OK) == 0)
			ids[n++] = i;
	}
	if (n == 0 && L->job->has_gang) {
		for (n = 0; n < L->job->gang_gpus && n < 64; n++)
			ids[n] = (int32_t)n;
		say("no GPUs on this machine: the local agent offers %u placeholder GPU ids", n);
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
						job_path(L, m, path, sizeof(path)));
	}
}

static int start_agents(struct launch *L)
{
	static char modules[JOB_MAX_MODULES * JOB_STR_MAX];
	char agent[PATH_MAX], log[PATH_MAX], gpus[SPK_GPU_LIST_MAX], nodes[16], ntasks[16], gpn[24];

	snprintf(agent, sizeof(agent), "%s/spoke-agent", L->bindir);
	if (L->local) {
		local_gpus(L, gpus, sizeof(gpus));
		snprintf(log, sizeof(log), "%s/agent-local.log", L->logdir);
		all_modules(L, modules, sizeof(modules));
		char *argv[] = { agent, "--hub", L->hub_addr, "--node", "local", "--gpus", gpus,
				 "--module", modules, NULL };
		L->n_agents = 1;
		L->agents = start(argv, environ, log);
		return L->agents < 0 ? -1 : 0;
	}
	/* One agent per node, one srun step: each task is an agent and keeps
	 * its node's whole GPU list. */
	L->n_agents = L->job->has_gang ? L->job->gang_nodes
				       : (unsigned)atoi(getenv("SLURM_JOB_NUM_NODES") ?: "1");
	snprintf(nodes, sizeof(nodes), "--nodes=%u", L->n_agents);
	snprintf(ntasks, sizeof(ntasks), "--ntasks=%u", L->n_agents);
	snprintf(log, sizeof(log), "--output=%s/agent-%%N.log", L->logdir);
	snprintf(gpn, sizeof(gpn), "--gpus-per-node=%u", L->job->gang_gpus);
	/* --ntasks too: an inner srun takes the job's task count otherwise. */
	char *argv[14] = { "srun", nodes, ntasks, "--ntasks-per-node=1", "--overlap",
			   "--kill-on-bad-exit=1", log };
	int n = 7;

	if (L->job->has_gang)
		argv[n++] = gpn;
	argv[n++] = agent;
	argv[n++] = "--hub";
	argv[n++] = L->hub_addr;
	all_modules(L, modules, sizeof(modules));
	argv[n++] = "--module";
	argv[n++] = modules;
	argv[n] = NULL;
	L->agents = start(argv, environ, NULL);
	return L->agents < 0 ? -1 : 0;
}

/* The node names Slurm gave the job, for saying which agents are missing. */
static void expected_nodes(char *out, size_t cap)
{
	const char *list = getenv("SLURM_JOB_NODELIST");
	char cmd[512];
	FILE *p;
	size_t len = 0;

	out[0] = '\0';
	if (!list)
		return;
	snprintf(cmd, sizeof(cmd), "scontrol show hostnames '%s' 2>/dev/null", list);
	p = popen(cmd, "r");
	if (!p)
		return;
	while (len + 2 < cap && fgets(out + len, (int)(cap - len), p))
		len = strlen(out);
	pclose(p);
}

static int wait_agents(struct launch *L)
{
	int64_t deadline = spk_now_us() + (int64_t)L->job->timeout_agents_ms * 1000;
	spoke_node_info nodes[64];
	int n = 0, shown = -1;

	for (;;) {
		n = spoke_nodes(L->client, nodes, 64, 2000);
		if (n < 0) {
			say("cannot ask the hub for its nodes: %s", spoke_errmsg());
			return -1;
		}
		if (n != shown) {
			say("agents %d/%u registered (%.0f ms)", n, L->n_agents, ms_since(L));
			shown = n;
		}
		if ((unsigned)n >= L->n_agents)
			return 0;
		if (!child_alive(L->agents)) {
			say("the agents' %s ended before all registered; see %s/agent-*.log",
			    L->local ? "process" : "srun step", L->logdir);
			return -1;
		}
		if (got_signal || spk_now_us() > deadline)
			break;
		usleep(5000);
	}
	if (!got_signal) {
		char want[4096], missing[4096] = "";
		size_t len = 0;

		expected_nodes(want, sizeof(want));
		for (char *save = NULL, *w = strtok_r(want, "\n", &save); w;
		     w = strtok_r(NULL, "\n", &save)) {
			bool seen = false;

			for (int i = 0; i < n && i < 64; i++)
				seen |= !strcmp(nodes[i].name, w);
			if (!seen && len < sizeof(missing))
				len += (size_t)snprintf(missing + len, sizeof(missing) - len, " %s", w);
		}
		say("only %d of %u agents registered within %u ms;%s%s", n, L->n_agents,
		    L->job->timeout_agents_ms, missing[0] ? " missing:" : " see the agent logs in ",
		    missing[0] ? missing : L->logdir);
	}
	return -1;
}

/* A path of the job file: as is if absolute, else relative to the file. */
static const char *job_path(const struct launch *L, const char *path, char *out, size_t cap)
{
	if (!path[0] || path[0] == '/')
		return path;
	snprintf(out, cap, "%s/%s", L->jobdir, path);
	return out;
}

static int launch_group(struct launch *L, const struct job_group *g)
{
	char module[2 * PATH_MAX], program[2 * PATH_MAX];
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_resources res = { .gpus = g->gpus };
	char args[JOB_STR_MAX + 8], name[SPOKE_ACTOR_NAME_MAX];
	int64_t t = spk_now_us();
	spoke_ticket *ticket = NULL;
	unsigned n;
	spoke_buf b;
	int rc;

	o.module = g->module[0] ? job_path(L, g->module, module, sizeof(module)) : NULL;
	o.program = g->program[0] ? job_path(L, g->program, program, sizeof(program)) : NULL;
	o.res = res;
	o.timeout_ms = (int)L->job->timeout_spawn_ms;
	spoke_buf_init(&b, args, sizeof(args));
	if (g->has_args)
		spoke_buf_put_str(&b, g->args);
	if (g->per_node) {
		rc = spoke_gang_allocate(L->client, L->job->gang_nodes, g->per_node, &res, 1, &ticket,
					 0);
		if (rc < 0) {
			say("%s:%d:%d: actor group %s: %s", L->job->file, g->line, g->column, g->name,
			    spoke_errmsg());
			return -1;
		}
		n = ticket->n_slots;
		for (unsigned i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s-%u", g->name, i);
			rc = spoke_gang_launch(L->client, ticket, i, g->type, name, args, b.len, &o);
			if (rc < 0)
				goto fail;
		}
		free(ticket); /* held by our connection to the hub until we go */
	} else {
		n = g->count;
		for (unsigned i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s-%u", g->name, i);
			rc = spoke_spawn(L->client, g->type, name, args, b.len, &o);
			if (rc < 0)
				goto fail;
		}
	}
	say("actors %s-0..%u (%s) started (%.1f ms)", g->name, n - 1, g->type,
	    (double)(spk_now_us() - t) / 1000.0);
	return 0;
fail:
	free(ticket);
	say("%s:%d:%d: actor %s: %s", L->job->file, g->line, g->column, name, spoke_errmsg());
	return -1;
}

static int start_driver(struct launch *L)
{
	char *argv[JOB_MAX_ARGV + 1], prog[2 * PATH_MAX];
	const char *shell = getenv("SHELL");
	pid_t pid;

	if (L->shell || L->job->driver_argc == 0) {
		argv[0] = (char *)(shell && *shell ? shell : "/bin/sh");
		argv[1] = NULL;
		say("no driver: starting %s; clients reach the job through SPOKE_HUB=%s; exit the shell to end the job",
		    argv[0], L->hub_addr);
	} else {
		for (size_t i = 0; i < L->job->driver_argc; i++)
			argv[i] = L->job->driver_argv[i];
		argv[L->job->driver_argc] = NULL;
		/* ./driver is the job file's; a bare name is looked up in PATH. */
		if (strchr(argv[0], '/'))
			argv[0] = (char *)job_path(L, argv[0], prog, sizeof(prog));
	}
	pid = fork();
	if (pid < 0) {
		say("cannot fork the driver: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "spoke-launch: cannot run the driver %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	L->driver = pid;
	return 0;
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_LAUNCH;
}

/* Runs until the driver ends or something else stops the job. */
static void supervise(struct launch *L)
{
	static char why[PATH_MAX + 256];
	int status;
	pid_t pid;

	for (;;) {
		if (got_signal) {
			snprintf(why, sizeof(why), "interrupted by signal %d (%s)", (int)got_signal,
				 strsignal(got_signal));
			L->why = why;
			L->exit_code = 128 + got_signal;
			return;
		}
		pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			L->why = "no process of the job is left";
			return;
		}
		if (pid == L->driver) {
			L->driver = 0;
			L->exit_code = status_code(status);
			snprintf(why, sizeof(why), "the %s %s with status %d",
				 L->shell || !L->job->driver_argc ? "shell" : "driver",
				 WIFSIGNALED(status) ? "was killed, exit" : "exited", L->exit_code);
			L->why = why;
			return;
		}
		if (pid == L->hub || pid == L->agents) {
			bool hub = pid == L->hub;

			*(hub ? &L->hub : &L->agents) = 0;
			snprintf(why, sizeof(why), "the %s died (%s %d); see %s",
				 hub ? "hub" : L->local ? "agent" : "agents' srun step",
				 WIFSIGNALED(status) ? "signal" : "status",
				 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
				 L->logdir);
			L->why = why;
			L->exit_code = EXIT_LAUNCH;
			return;
		}
	}
}

/* Sends sig to each live child, then waits for them until deadline. */
static void stop_children(struct launch *L, int sig, int64_t deadline)
{
	pid_t *kids[] = { &L->driver, &L->agents, &L->hub };

	for (size_t i = 0; i < 3; i++)
		if (*kids[i] > 0)
			kill(*kids[i], sig);
	for (size_t i = 0; i < 3; i++) {
		while (*kids[i] > 0) {
			pid_t r = waitpid(*kids[i], NULL, WNOHANG);

			if (r == *kids[i] || (r < 0 && errno == ECHILD)) {
				*kids[i] = 0;
				break;
			}
			if (spk_now_us() > deadline)
				break;
			usleep(2000);
		}
	}
}

static void teardown(struct launch *L)
{
	int64_t grace = (int64_t)L->job->timeout_shutdown_ms * 1000;

	/* The driver first, then the actors (through the hub), then the
	 * agents and the hub. */
	if (L->driver > 0) {
		kill(L->driver, SIGTERM);
		stop_children(L, 0, spk_now_us() + grace);
	}
	spoke_client_close(L->client);
	L->client = NULL;
	stop_children(L, SIGTERM, spk_now_us() + grace);
	stop_children(L, SIGKILL, spk_now_us() + 1000000);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: spoke-launch [OPTION]... JOB.yaml\n"
		"Runs a Spoke job: a hub, one agent per node, the job's actors, then its driver.\n"
		"\n"
		"Inside a Slurm allocation (SLURM_JOB_ID set) agents start with srun, one per node;\n"
		"elsewhere, or with --local, the hub and one agent run on this machine.\n"
		"\n"
		"  -l, --local            run on this machine, without Slurm\n"
		"  -s, --salloc           ask Slurm for the job's gang first (salloc --spoke-gang=...)\n"
		"  -S, --shell            run an interactive shell instead of the driver\n"
		"  -g, --gpus LIST        (--local) GPU ids for the local agent\n"
		"  -L, --log-dir DIR      logs of the hub, agents and actors (default\n"
		"                         spoke-logs/NAME-JOBID)\n"
		"  -c, --check            only check the job file\n"
		"  -h, --help             this help\n"
		"  -V, --version          the version\n"
		"\n"
		"The job file's schema: spoke-launch(1).  Exit status: the driver's (128+N if\n"
		"a signal N stopped the job), 1 if the job could not start or the hub or an agent\n"
		"died, 2 for bad options or a bad job file.\n");
}

/* --salloc: run ourselves again inside an allocation of the job's gang. */
static int run_salloc(struct launch *L, int argc, char **argv)
{
	char gang[64], **args;
	int n = 0;

	if (!L->job->has_gang) {
		say("%s: --salloc needs a gang in the job file", L->job->file);
		return EXIT_USAGE;
	}
	if (L->job->gang_k == 1)
		snprintf(gang, sizeof(gang), "--spoke-gang=%ux%u", L->job->gang_nodes,
			 L->job->gang_gpus);
	else
		snprintf(gang, sizeof(gang), "--spoke-gang=%ux%u:%u", L->job->gang_nodes,
			 L->job->gang_gpus, L->job->gang_k);
	args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args)
		return EXIT_LAUNCH;
	static char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	self[len > 0 ? len : 0] = '\0';
	args[n++] = "salloc";
	args[n++] = gang;
	args[n++] = len > 0 ? self : argv[0];
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--salloc") && strcmp(argv[i], "-s"))
			args[n++] = argv[i];
	args[n] = NULL;
	say("asking Slurm for %s", gang + 2);
	execvp("salloc", args);
	say("cannot run salloc: %s", strerror(errno));
	free(args);
	return EXIT_LAUNCH;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "local", no_argument, NULL, 'l' },   { "salloc", no_argument, NULL, 's' },
		{ "shell", no_argument, NULL, 'S' },   { "gpus", required_argument, NULL, 'g' },
		{ "log-dir", required_argument, NULL, 'L' },
		{ "check", no_argument, NULL, 'c' },   { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 },
	};
	static struct job job;
	struct launch L = { .job = &job, .exit_code = EXIT_LAUNCH };
	bool check = false, salloc = false;
	const char *logdir = NULL;
	spoke_client_opts copts = { NULL, NULL, 0, -1 };
	struct sigaction sa = { .sa_handler = on_signal };
	char err[1024];
	int opt;

	L.t0 = spk_now_us();
	while ((opt = getopt_long(argc, argv, "lsSg:L:chV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l': L.local = true; break;
		case 's': salloc = true; break;
		case 'S': L.shell = true; break;
		case 'g': L.gpus = optarg; break;
		case 'L': logdir = optarg; break;
		case 'c': check = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("spoke-launch %s\n", spoke_version()); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "spoke-launch: %s\n",
			optind < argc ? "one job file only" : "which job file?");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (job_load(argv[optind], &job, err, sizeof(err)) < 0) {
		fprintf(stderr, "spoke-launch: %s\n", err);
		return EXIT_USAGE;
	}
	if (check) {
		printf("%s: ok\n", argv[optind]);
		return 0;
	}
	if (salloc && !getenv("SLURM_JOB_ID"))
		return run_salloc(&L, argc, argv);
	if (!getenv("SLURM_JOB_ID"))
		L.local = true;
	find_bindir(&L);
	{
		char file[PATH_MAX];

		if (!realpath(argv[optind], file)) {
			say("%s: %s", argv[optind], strerror(errno));
			return EXIT_USAGE;
		}
		*strrchr(file, '/') = '\0';
		snprintf(L.jobdir, sizeof(L.jobdir), "%s", file[0] ? file : "/");
	}
	if (make_logdir(&L, logdir) < 0 || spk_auth_init() < 0)
		return EXIT_LAUNCH;
	snprintf(L.token_file, sizeof(L.token_file), "%s/token", L.logdir);
	if (spk_token_generate(L.token, sizeof(L.token)) < 0 ||
	    spk_token_write_file(L.token_file, L.token) < 0) {
		say("cannot write the job token to %s", L.token_file);
		return EXIT_LAUNCH;
	}
	job_env(&L);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (L.shell || job.driver_argc == 0)
		signal(SIGINT, SIG_IGN); /* Ctrl-C belongs to the shell */
	say("job %s: %s, logs in %s", job.name,
	    L.local ? "on this machine" : "in Slurm allocation", L.logdir);
	copts.token = L.token;
	if (start_hub(&L) < 0 || start_agents(&L) < 0)
		goto out_stop;
	copts.hub = L.hub_addr;
	if (spoke_client_open(&L.client, &copts) < 0) {
		say("cannot connect to the hub: %s", spoke_errmsg());
		goto out_stop;
	}
	if (wait_agents(&L) < 0)
		goto out_stop;
	for (size_t i = 0; i < job.n_groups && !got_signal; i++)
		if (launch_group(&L, &job.groups[i]) < 0)
			goto out_stop;
	if (!got_signal && start_driver(&L) == 0) {
		say("running %s (%.0f ms after start)",
		    L.shell || !job.driver_argc ? "a shell" : job.driver_argv[0], ms_since(&L));
		supervise(&L);
	}
out_stop:
	if (got_signal && !L.why) {
		static char why[64];

		snprintf(why, sizeof(why), "interrupted by signal %d", (int)got_signal);
		L.why = why;
		L.exit_code = 128 + got_signal;
	}
	teardown(&L);
	say("stopped: %s", L.why ? L.why : "the job could not start");
	return L.exit_code;
}

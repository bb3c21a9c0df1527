/* launch.c - spoke-launch: runs a Spoke job described by a job file.
 *
 * Inside a Slurm allocation it starts the hub here and one agent per node
 * with srun; with --local (or outside Slurm) the hub and one agent run here
 * as plain processes.  It waits for every agent to register, launches the
 * actor groups (gang groups in two phases: allocate, then launch per slot),
 * runs the driver (or a shell) with SPOKE_HUB and the job token in its
 * environment, and tears everything down when the driver ends, on SIGINT,
 * SIGTERM or SIGHUP, or when the hub or an agent dies, saying why.  Its
 * exit status is the driver's.
 *
 * Nothing of a job may outlive it: the launcher is a child subreaper, so
 * what the driver leaves behind (a background process, the children of a
 * crashed driver) is reparented to it and stopped at teardown with the
 * rest; its children die with it (PR_SET_PDEATHSIG).
 *
 * A signal ends the job within moments in every phase: while actors start,
 * the handler stops the agents at once, which fails the spawn in progress
 * (an init may load a model for minutes).  When the job ends only the logs
 * stay: the token file and the hub's address file go.  If we are killed
 * outright (SIGKILL, no teardown), a janitor process forked at the start
 * sees our end, stops what is left of the job (every process with its token
 * in the environment) and removes those files. */
#include <ctype.h>
#include <dirent.h>
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
#include "file.h"
#include "gangspec.h"
#include "gpus.h"
#include "jobfile.h"
#include "proto.h"
#include "spawn.h"

#define EXIT_LAUNCH 1 /* the launcher failed: nothing of the driver ran */
#define EXIT_USAGE 2  /* bad options or job file */
#define HUB_START_MS 10000
#define LAUNCH_MAX_NODES 256 /* the hub's own limit */
#define AGENT_POLL_MS 250 /* how often to ask the hub whether all agents are there */
#define AGENT_LOST_MS 1000 /* after an agent left the hub, how long to wait for
			    * the srun step to end and say how it died */

extern char **environ;

struct launch {
	struct job *job;
	bool local, shell;
	const char *gpus;     /* --gpus for the local agent */
	char bindir[PATH_MAX - 32];
	char jobdir[PATH_MAX];       /* paths in the job file are relative to it */
	char logdir[PATH_MAX - 64];
	char token_file[PATH_MAX];
	char addr_file[PATH_MAX]; /* where the hub writes its address */
	char token[SPK_TOKEN_MAX];
	char hub_addr[SPK_ADDR_MAX];
	unsigned n_agents; /* agents expected */
	spoke_node_info nodes[LAUNCH_MAX_NODES]; /* the nodes whose agents registered */
	int n_nodes;
	pid_t hub, agents, driver;
	pid_t janitor;  /* cleans up if we die without teardown() */
	int janitor_fd; /* its pipe: a byte says "done", EOF that we died */
	spoke_client *client;
	int64_t t0;
	const char *why; /* why the job stopped */
	int exit_code;
};

static volatile sig_atomic_t got_signal;
/* While the actors start, the process that a signal stops at once (the
 * agents, or their srun) and how: a spawn in progress then fails within
 * milliseconds, instead of waiting for an init that may load a model for
 * minutes.  0 outside the start-up. */
static volatile sig_atomic_t abort_pid, abort_sig;

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
	int saved = errno;

	got_signal = sig;
	if (abort_pid > 0)
		kill((pid_t)abort_pid, abort_sig);
	errno = saved;
}

/* From now until stop_aborting(), a signal stops the agents at once. */
static void abort_on_signal(const struct launch *L)
{
	abort_sig = L->local ? SIGTERM : SIGINT; /* as teardown() does */
	abort_pid = L->agents;
	if (got_signal) /* it came before */
		kill(L->agents, abort_sig);
}

static void stop_aborting(void)
{
	abort_pid = 0;
}

static double ms_since(const struct launch *L)
{
	return (double)(spk_now_us() - L->t0) / 1000.0;
}

/* fork + exec; stdout/stderr to log (if given); its own process group, so
 * that a terminal's Ctrl-C reaches us, not it; dies with us. */
static pid_t start(char *const argv[], char *const envp[], const char *log)
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
			say("cannot open %s: %s", log, strerror(errno));
			return -1;
		}
	}
	pid = spk_spawn(&s);
	if (s.out_fd >= 0)
		close(s.out_fd);
	if (pid < 0) {
		say("cannot fork: %s", strerror((int)-pid));
		return -1;
	}
	return pid;
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
	char base[PATH_MAX - 128], *real;

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
	/* The default name is this launch's own: a second launch in the same
	 * allocation gets NAME-JOBID.2, and so on. */
	for (int i = 2; mkdir(base, 0700) != 0; i++) {
		size_t len = strlen(base);

		if (errno != EEXIST)
			goto fail;
		if (opt)
			break;
		if (i > 2)
			base[strrchr(base, '.') - base] = '\0';
		len = strlen(base);
		snprintf(base + len, sizeof(base) - len, ".%d", i);
	}
	real = realpath(base, NULL);
	if (!real)
		goto fail;
	if (strlen(real) >= sizeof(L->logdir)) {
		free(real);
		errno = ENAMETOOLONG;
		goto fail;
	}
	strcpy(L->logdir, real);
	free(real);
	/* The token and the hub's address go there too: only we may write it. */
	if (spk_dir_check_private(L->logdir, "log directory") < 0) {
		say("%s", spoke_errmsg());
		return -1;
	}
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
	/* The job's own token, also over one a user set for another job. */
	setenv("SPOKE_TOKEN", L->token, 1);
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

/* Whether child *pid runs; one that has ended is reaped and *pid cleared,
 * so that nothing signals its number again. */
static int child_alive(pid_t *pid)
{
	if (*pid <= 0)
		return 0;
	if (waitpid(*pid, NULL, WNOHANG) == 0)
		return 1;
	*pid = 0;
	return 0;
}

static int allowed_nodes(const struct launch *L, char *out, size_t cap);

static int start_hub(struct launch *L)
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

	if (allowed_nodes(L, allowed, sizeof(allowed)) < 0)
		return -1;
	if (allowed[0]) { /* only the allocation's nodes may register */
		argv[7] = "--allow-nodes";
		argv[8] = allowed;
	}
	L->hub = start(argv, environ, log);
	if (L->hub < 0)
		return -1;
	while (read_small_file(L->addr_file, L->hub_addr, sizeof(L->hub_addr)) < 0) {
		if (got_signal)
			return -1;
		if (!child_alive(&L->hub) || spk_now_us() > deadline) {
			say("the hub did not start; see %s", log);
			return -1;
		}
		usleep(2000);
	}
	setenv("SPOKE_HUB", L->hub_addr, 1);
	say("hub at %s (%.0f ms)", L->hub_addr, ms_since(L));
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

/* Each agent of a Slurm job runs under this shell, on its node: $1 is the
 * log directory, the rest the agent's command line.  The log is named
 * after the Slurm node (srun's %N is the host name, the same for several
 * slurmd on one host); the agent's exit status is written beside it, so
 * that when the srun step ends the launcher can say which node's agent
 * died.  The shell waits out SIGTERM and SIGINT (the step's signals reach
 * the agent too), so that it is there to write the status. */
static const char agent_wrapper[] =
	"trap : TERM INT HUP; f=$1/agent-${SLURMD_NODENAME:-$(hostname -s)}; shift; "
	"\"$@\" >>\"$f.log\" 2>&1; rc=$?; echo $rc >\"$f.exit\"; exit $rc";

/* Removes the agent-*.exit files an earlier job left in the log directory. */
static void clear_agent_status(const struct launch *L)
{
	char path[PATH_MAX + 256];
	struct dirent *e;
	DIR *d = opendir(L->logdir);
	size_t n;

	if (!d)
		return;
	while ((e = readdir(d))) {
		n = strlen(e->d_name);
		if (!strncmp(e->d_name, "agent-", 6) && n > 5 && !strcmp(e->d_name + n - 5, ".exit")) {
			snprintf(path, sizeof(path), "%s/%s", L->logdir, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

/* Which agents of a Slurm job died, from the agent-NODE.exit files their
 * shells wrote: "the agent on n2 died (signal 9); see LOG" into out.
 * Returns how many did (out is left alone when none). */
static int dead_agents(const struct launch *L, char *out, size_t cap)
{
	char path[PATH_MAX + 256], list[1024] = "", node[256] = "", how[32] = "";
	size_t len = 0, n;
	struct dirent *e;
	DIR *d = opendir(L->logdir);
	int dead = 0, rc;
	FILE *f;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		n = strlen(e->d_name);
		if (strncmp(e->d_name, "agent-", 6) || n <= 11 || strcmp(e->d_name + n - 5, ".exit"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", L->logdir, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%d", &rc) != 1)
			rc = 0;
		fclose(f);
		if (rc == 0)
			continue;
		/* agent-NODE.exit; a shell's status above 128 is a signal's */
		snprintf(node, sizeof(node), "%.*s", (int)(n - 11), e->d_name + 6);
		snprintf(how, sizeof(how), "%s %d", rc > 128 ? "signal" : "status",
			 rc > 128 ? rc - 128 : rc);
		if (len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s (%s)",
						dead ? ", " : "", node, how);
		dead++;
	}
	closedir(d);
	if (dead == 1)
		snprintf(out, cap, "the agent on %s died (%s); see %s/agent-%s.log", node, how,
			 L->logdir, node);
	else if (dead > 1)
		snprintf(out, cap, "the agents on %s died; see %s/agent-*.log", list, L->logdir);
	return dead;
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
	snprintf(gpn, sizeof(gpn), "--gpus-per-node=%u", L->job->gang_gpus);
	clear_agent_status(L);
	/* --ntasks too: an inner srun takes the job's task count otherwise.
	 * --input=none: srun would read our stdin, a terminal under salloc
	 * (and stop, a background process group reading it).
	 * --disable-status: srun hands a SIGINT on to the agents, our way of
	 * stopping them in order (on SIGTERM srun SIGKILLs them).  Each
	 * agent's output goes to its own log (agent_wrapper); srun's errors to
	 * ours (--quiet: not its chatter). */
	/* --export=ALL: the agents need the job's token and env: even where
	 * the site or the user exports nothing by default. */
	char *argv[26] = { "srun", nodes, ntasks, "--ntasks-per-node=1", "--overlap",
			   "--kill-on-bad-exit=1", "--input=none", "--disable-status", "--quiet",
			   "--export=ALL" };
	int n = 10;

	if (L->job->has_gang)
		argv[n++] = gpn;
	argv[n++] = "/bin/sh";
	argv[n++] = "-c";
	argv[n++] = (char *)agent_wrapper;
	argv[n++] = "spoke-agent";
	argv[n++] = L->logdir;
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

/* The node names Slurm gave the job, one a line: for saying which agents
 * are missing, and for the hub, which lets only them register. */
static void expected_nodes(char *out, size_t cap)
{
	FILE *p;
	size_t len = 0;

	out[0] = '\0';
	if (!getenv("SLURM_JOB_NODELIST"))
		return;
	/* Without an argument it reads $SLURM_JOB_NODELIST itself. */
	p = popen("scontrol show hostnames 2>/dev/null", "r");
	if (!p)
		return;
	while (len + 2 < cap && fgets(out + len, (int)(cap - len), p))
		len = strlen(out);
	pclose(p);
}

/* --allow-nodes for the hub inside an allocation: its nodes, comma-separated
 * (into out, "" if there is no allocation); -1 if they cannot be listed. */
static int allowed_nodes(const struct launch *L, char *out, size_t cap)
{
	size_t len;

	out[0] = '\0';
	if (L->local || !getenv("SLURM_JOB_NODELIST"))
		return 0;
	expected_nodes(out, cap);
	len = strlen(out);
	if (!len || len + 2 >= cap) {
		say("cannot list the allocation's nodes (scontrol show hostnames)%s",
		    len ? ": too many" : "");
		return -1;
	}
	if (out[len - 1] == '\n')
		out[len - 1] = '\0';
	for (char *c = out; *c; c++)
		if (*c == '\n')
			*c = ',';
	return 0;
}

static int wait_agents(struct launch *L)
{
	int64_t deadline = spk_now_us() + (int64_t)L->job->timeout_agents_ms * 1000;
	static spoke_node_info nodes[LAUNCH_MAX_NODES];
	int n = 0, shown = -1;

	for (;;) {
		n = spoke_nodes(L->client, nodes, LAUNCH_MAX_NODES, 2000);
		if (n < 0) {
			say("cannot ask the hub for its nodes: %s", spoke_errmsg());
			return -1;
		}
		if (n != shown) {
			say("agents %d/%u registered (%.0f ms)", n, L->n_agents, ms_since(L));
			shown = n;
		}
		if ((unsigned)n >= L->n_agents) {
			L->n_nodes = n < LAUNCH_MAX_NODES ? n : LAUNCH_MAX_NODES;
			memcpy(L->nodes, nodes, (size_t)L->n_nodes * sizeof(nodes[0]));
			return 0;
		}
		if (got_signal)
			return -1;
		stop_aborting(); /* the pid is about to be reaped */
		if (!child_alive(&L->agents)) {
			char why[2 * PATH_MAX + 1024];

			if (!L->local && dead_agents(L, why, sizeof(why)))
				say("%s", why);
			else
				say("the agents' %s ended before all registered; see %s/agent-*.log",
				    L->local ? "process" : "srun step", L->logdir);
			return -1;
		}
		abort_on_signal(L);
		if (spk_now_us() > deadline)
			break;
		usleep(5000);
	}
	{
		char want[4096], missing[4096] = "";
		size_t len = 0;

		expected_nodes(want, sizeof(want));
		for (char *save = NULL, *w = strtok_r(want, "\n", &save); w;
		     w = strtok_r(NULL, "\n", &save)) {
			bool seen = false;

			for (int i = 0; i < n && i < LAUNCH_MAX_NODES; i++)
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
	if (o.module && strchr(o.module, ':')) {
		say("%s:%d:%d: actor group %s: module path %s has a ':', which separates modules",
		    L->job->file, g->line, g->column, g->name, o.module);
		return -1;
	}
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
			if (!got_signal)
				say("%s:%d:%d: actor group %s: %s", L->job->file, g->line,
				    g->column, g->name, spoke_errmsg());
			return -1;
		}
		n = ticket->n_slots;
		for (unsigned i = 0; i < n; i++) {
			if (got_signal)
				goto out_signal;
			snprintf(name, sizeof(name), "%s-%u", g->name, i);
			rc = spoke_gang_launch(L->client, ticket, i, g->type, name, args, b.len, &o);
			if (rc < 0)
				goto fail;
		}
		/* The ticket stays held by our client until it closes. */
	} else {
		n = g->count;
		for (unsigned i = 0; i < n; i++) {
			if (got_signal)
				goto out_signal;
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
	/* After a signal the spawn failed because the agents stopped. */
	if (!got_signal)
		say("%s:%d:%d: actor %s: %s", L->job->file, g->line, g->column, name,
		    spoke_errmsg());
out_signal:
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
	/* From now on Ctrl-C belongs to the shell (start-up could still be
	 * interrupted). */
	if (L->shell || L->job->driver_argc == 0)
		signal(SIGINT, SIG_IGN);
	pid = spk_spawn(&(struct spk_spawn){
		.argv = argv, .envp = environ, .search_path = true, .death_signal = SIGTERM,
		.out_fd = -1, .keep_fd = -1, .exec_failed = "spoke-launch: cannot run the driver ",
	});
	if (pid < 0) {
		say("cannot fork the driver: %s", strerror((int)-pid));
		return -1;
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

/* Whether a node whose agent registered is gone from the hub: its name
 * into out (the first one). */
static bool lost_agent(struct launch *L, char *out, size_t cap)
{
	static spoke_node_info now[LAUNCH_MAX_NODES];
	int n = spoke_nodes(L->client, now, LAUNCH_MAX_NODES, 1000);

	if (n < 0 || n >= L->n_nodes)
		return false;
	for (int i = 0; i < L->n_nodes; i++) {
		bool seen = false;

		for (int j = 0; j < n && j < LAUNCH_MAX_NODES; j++)
			seen |= !strcmp(now[j].name, L->nodes[i].name);
		if (!seen) {
			snprintf(out, cap, "%s", L->nodes[i].name);
			return true;
		}
	}
	return false;
}

/* "signal 9" or "status 3": how a child ended. */
static const char *ended(int status, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s %d", WIFSIGNALED(status) ? "signal" : "status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return buf;
}

/* Runs until the driver ends or something else stops the job. */
static void supervise(struct launch *L)
{
	static char why[2 * PATH_MAX + 1024];
	/* Wakes on SIGCHLD; the tick only bounds the wait for a signal whose
	 * handler ran between the check of got_signal and the wait. */
	const struct timespec tick = { 0, 100 * 1000000 };
	const char *what = L->shell || !L->job->driver_argc ? "shell" : "driver";
	int64_t next_poll = 0, lost_at = 0;
	char lost[512] = "", how[32];
	sigset_t chld, old;
	int status;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	for (;;) {
		if (got_signal) {
			snprintf(why, sizeof(why), "interrupted by signal %d (%s)", (int)got_signal,
				 strsignal(got_signal));
			L->why = why;
			L->exit_code = 128 + got_signal;
			break;
		}
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno != EINTR) {
			L->why = "no process of the job is left";
			break;
		}
		if (pid <= 0 && lost_at && spk_now_us() > lost_at + AGENT_LOST_MS * 1000) {
			snprintf(why, sizeof(why), "the agent on %s left the hub; see %s/agent-%s.log",
				 lost, L->logdir, lost);
			L->why = why;
			L->exit_code = EXIT_LAUNCH;
			break;
		}
		if (pid <= 0 && !L->local && !lost_at && spk_now_us() >= next_poll) {
			/* An agent that dies makes the srun step end (and our
			 * message name it), but one that only loses the hub, or
			 * exits 0, does not: ask the hub. */
			next_poll = spk_now_us() + AGENT_POLL_MS * 1000;
			if (lost_agent(L, lost, sizeof(lost)))
				lost_at = spk_now_us();
			continue;
		}
		if (pid <= 0) {
			sigtimedwait(&chld, NULL, &tick);
			continue;
		}
		if (pid == L->driver) {
			L->driver = 0;
			L->exit_code = status_code(status);
			if (WIFSIGNALED(status))
				snprintf(why, sizeof(why), "the %s was killed by signal %d (%s)", what,
					 WTERMSIG(status), strsignal(WTERMSIG(status)));
			else
				snprintf(why, sizeof(why), "the %s exited with status %d", what,
					 L->exit_code);
			L->why = why;
			break;
		}
		if (pid == L->hub) {
			L->hub = 0;
			snprintf(why, sizeof(why), "the hub died (%s); see %s/hub.log",
				 ended(status, how, sizeof(how)), L->logdir);
			L->why = why;
			L->exit_code = EXIT_LAUNCH;
			break;
		}
		if (pid == L->agents) {
			L->agents = 0;
			if (L->local)
				snprintf(why, sizeof(why), "the agent died (%s); see %s/agent-local.log",
					 ended(status, how, sizeof(how)), L->logdir);
			else if (dead_agents(L, why, sizeof(why)))
				;
			else if (lost[0])
				snprintf(why, sizeof(why), "the agent on %s left the hub; see %s/agent-%s.log",
					 lost, L->logdir, lost);
			else
				snprintf(why, sizeof(why), "the agents' srun step ended (%s); see %s/agent-*.log",
					 ended(status, how, sizeof(how)), L->logdir);
			L->why = why;
			L->exit_code = EXIT_LAUNCH;
			break;
		}
		/* Else something the driver left behind, reparented to us. */
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
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
	unlink(L->token_file);
	unlink(L->addr_file);
	say("the launcher (pid %d) died before its teardown: stopped %d process%s of job %s%s, removed its token file",
	    (int)launcher, n, n == 1 ? "" : "es", L->job->name, left ? " (some with SIGKILL)" : "");
	_exit(0);
}

static int start_janitor(struct launch *L)
{
	pid_t launcher = getpid();
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0) {
		say("cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	L->janitor = fork();
	if (L->janitor == 0) {
		close(fds[1]);
		janitor(L, fds[0], launcher);
	}
	close(fds[0]);
	if (L->janitor < 0) {
		say("cannot fork: %s", strerror(errno));
		close(fds[1]);
		return -1;
	}
	L->janitor_fd = fds[1];
	return 0;
}

static void wait_child(struct launch *L, pid_t *pid, int64_t deadline);

/* Tells the janitor that the teardown ran, and waits for it to go. */
static void stop_janitor(struct launch *L)
{
	if (L->janitor <= 0)
		return;
	if (write(L->janitor_fd, "", 1) != 1)
		say("cannot tell the janitor (pid %d) to go: %s", (int)L->janitor, strerror(errno));
	close(L->janitor_fd);
	wait_child(L, &L->janitor, spk_now_us() + 1000000);
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

static void teardown(struct launch *L)
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
	/* Only the logs stay. */
	unlink(L->addr_file);
	unlink(L->token_file);
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

/* --salloc: run ourselves again inside an allocation of the job's gang,
 * with the same options (but --salloc) and job file. */
static int run_salloc(struct launch *L, const char *file, const char *logdir)
{
	static char self[PATH_MAX];
	char spec[48], gang[64], name[128], *args[12];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int n = 0;

	if (!L->job->has_gang) {
		say("%s: --salloc needs a gang in the job file", L->job->file);
		return EXIT_USAGE;
	}
	gangspec_format(&(struct gangspec){ L->job->gang_nodes, L->job->gang_gpus, L->job->gang_k },
			spec, sizeof(spec));
	snprintf(gang, sizeof(gang), "--spoke-gang=%s", spec);
	snprintf(name, sizeof(name), "--job-name=%s", L->job->name);
	self[len > 0 ? len : 0] = '\0';
	args[n++] = "salloc";
	args[n++] = gang;
	args[n++] = name;
	args[n++] = len > 0 ? self : "spoke-launch";
	if (L->shell)
		args[n++] = "--shell";
	if (logdir) {
		args[n++] = "--log-dir";
		args[n++] = (char *)logdir;
	}
	args[n++] = "--";
	args[n++] = (char *)file;
	args[n] = NULL;
	say("asking Slurm for %s", gang + 2);
	execvp("salloc", args);
	say("cannot run salloc: %s", strerror(errno));
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
	static char err[65536];
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
		/* One line per mistake. */
		for (char *save = NULL, *line = strtok_r(err, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			fprintf(stderr, "spoke-launch: %s\n", line);
		return EXIT_USAGE;
	}
	if (check) {
		printf("%s: ok\n", argv[optind]);
		return 0;
	}
	if (salloc && L.local) {
		fprintf(stderr, "spoke-launch: --salloc and --local exclude each other\n");
		return EXIT_USAGE;
	}
	if (salloc && !getenv("SLURM_JOB_ID"))
		return run_salloc(&L, argv[optind], logdir);
	if (salloc)
		say("already in Slurm allocation %s: --salloc ignored", getenv("SLURM_JOB_ID"));
	if (!getenv("SLURM_JOB_ID"))
		L.local = true;
	if (!L.local && job.has_gang) {
		const char *nn = getenv("SLURM_JOB_NUM_NODES");

		if (nn && atoi(nn) > 0 && (unsigned)atoi(nn) < job.gang_nodes) {
			say("%s: the gang %ux%u needs %u nodes; Slurm allocation %s has %s (sbatch/salloc --spoke-gang=%ux%u asks for them)",
			    job.file, job.gang_nodes, job.gang_gpus, job.gang_nodes,
			    getenv("SLURM_JOB_ID"), nn, job.gang_nodes, job.gang_gpus);
			return EXIT_LAUNCH;
		}
	}
	/* From here on a signal is a request to stop: nothing is left of a
	 * job that it interrupts, at any point. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
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
	snprintf(L.addr_file, sizeof(L.addr_file), "%s/hub.addr", L.logdir);
	if (spk_token_generate(L.token, sizeof(L.token)) < 0 ||
	    spk_token_write_file(L.token_file, L.token) < 0) {
		say("cannot write the job token to %s", L.token_file);
		return EXIT_LAUNCH;
	}
	if (start_janitor(&L) < 0) {
		unlink(L.token_file);
		return EXIT_LAUNCH;
	}
	job_env(&L);
	/* What the driver leaves behind is reparented to us, not to init, so
	 * that the teardown finds it; and children's exits must reach us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	say("job %s: %s, logs in %s", job.name,
	    L.local ? "on this machine" : "in Slurm allocation", L.logdir);
	copts.token = L.token;
	if (got_signal || start_hub(&L) < 0 || start_agents(&L) < 0)
		goto out_stop;
	abort_on_signal(&L);
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
	stop_aborting();
	if (!got_signal && start_driver(&L) == 0) {
		say("running %s (%.0f ms after start)",
		    L.shell || !job.driver_argc ? "a shell" : job.driver_argv[0], ms_since(&L));
		supervise(&L);
	}
out_stop:
	stop_aborting();
	if (got_signal && !L.why) {
		static char why[64];

		snprintf(why, sizeof(why), "interrupted by signal %d", (int)got_signal);
		L.why = why;
		L.exit_code = 128 + got_signal;
	}
	teardown(&L);
	stop_janitor(&L);
	say("stopped: %s", L.why ? L.why : "the job could not start");
	return L.exit_code;
}

/* launch.c - spoke-launch: runs a Spoke job described by a job file.
 * This file: the options, the job's set-up (log directory, token,
 * environment), the actor groups and main(); the other files: launch.h.
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
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "file.h"
#include "gangspec.h"
#include "launch.h"

void spk_say(const char *fmt, ...)
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

double spk_ms_since(const struct launch *L)
{
	return (double)(spk_now_us() - L->t0) / 1000.0;
}

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

/* Where our programs are, and the job file's directory. */
static int find_dirs(struct launch *L, const char *jobfile)
{
	char file[PATH_MAX];

	find_bindir(L);
	if (!realpath(jobfile, file)) {
		spk_say("%s: %s", jobfile, strerror(errno));
		return -1;
	}
	*strrchr(file, '/') = '\0';
	snprintf(L->jobdir, sizeof(L->jobdir), "%s", file[0] ? file : "/");
	return 0;
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
		spk_say("%s", spoke_errmsg());
		return -1;
	}
	return 0;
fail:
	spk_say("cannot create the log directory %s: %s", base, strerror(errno));
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
	if (spk_job_has_python(L)) {
		/* Python actors' modules, found from the job file's directory. */
		char worker[PATH_MAX];

		if (spk_python_path(L) < 0)
			return -1;
		setenv("SPOKE_WORKER_PYTHON", spk_python_worker(L, worker, sizeof(worker)), 0);
	}
	snprintf(buf, sizeof(buf), "%lld", (long long)L->t0);
	setenv("SPOKE_LAUNCH_T0_US", buf, 1); /* monotonic µs, for timing the start */
	return 0;
}

/* A path of the job file: as is if absolute, else relative to the file. */
const char *spk_job_path(const struct launch *L, const char *path, char *out, size_t cap)
{
	if (!path[0] || path[0] == '/')
		return path;
	snprintf(out, cap, "%s/%s", L->jobdir, path);
	return out;
}

static int launch_group(struct launch *L, const struct job_group *g)
{
	char module[2 * PATH_MAX], program[2 * PATH_MAX], worker[PATH_MAX];
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_resources res = { .gpus = g->gpus };
	char args[JOB_STR_MAX + 8], name[SPOKE_ACTOR_NAME_MAX];
	int64_t t = spk_now_us();
	spoke_ticket *ticket = NULL;
	unsigned n;
	spoke_buf b;
	int rc;

	o.module = g->module[0] ? spk_job_path(L, g->module, module, sizeof(module)) : NULL;
	if (o.module && strchr(o.module, ':')) {
		spk_say("%s:%d:%d: actor group %s: module path %s has a ':', which separates modules",
			L->job->file, g->line, g->column, g->name, o.module);
		return -1;
	}
	o.program = g->program[0] ? spk_job_path(L, g->program, program, sizeof(program)) : NULL;
	if (g->python[0]) { /* the class travels in the module field (python.c) */
		o.module = g->python;
		o.program = spk_python_worker(L, worker, sizeof(worker));
	}
	o.res = res;
	o.timeout_ms = (int)L->job->timeout_spawn_ms;
	o.max_restarts = g->max_restarts;
	o.restart_backoff_ms = g->restart_backoff_ms;
	spoke_buf_init(&b, args, sizeof(args));
	if (g->has_args)
		spoke_buf_put_str(&b, g->args);
	if (g->per_node) {
		rc = spoke_gang_allocate(L->client, L->job->gang_nodes, g->per_node, &res, 1, &ticket,
					 0);
		if (rc < 0) {
			if (!spk_got_signal)
				spk_say("%s:%d:%d: actor group %s: %s", L->job->file, g->line,
					g->column, g->name, spoke_errmsg());
			return -1;
		}
		n = ticket->n_slots;
		for (unsigned i = 0; i < n; i++) {
			if (spk_got_signal)
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
			if (spk_got_signal)
				goto out_signal;
			snprintf(name, sizeof(name), "%s-%u", g->name, i);
			rc = spoke_spawn(L->client, g->type, name, args, b.len, &o);
			if (rc < 0)
				goto fail;
		}
	}
	spk_say("actors %s-0..%u (%s) started (%.1f ms)", g->name, n - 1, g->type,
		(double)(spk_now_us() - t) / 1000.0);
	return 0;
fail:
	/* After a signal the spawn failed because the agents stopped. */
	if (!spk_got_signal)
		spk_say("%s:%d:%d: actor %s: %s", L->job->file, g->line, g->column, name,
			spoke_errmsg());
out_signal:
	return -1;
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
		spk_say("%s: --salloc needs a gang in the job file", L->job->file);
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
	spk_say("asking Slurm for %s", gang + 2);
	execvp("salloc", args);
	spk_say("cannot run salloc: %s", strerror(errno));
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
	if (check) { /* python: groups' classes too (python.c) */
		if (find_dirs(&L, argv[optind]) < 0 || spk_python_types(&L) < 0)
			return EXIT_USAGE;
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
		spk_say("already in Slurm allocation %s: --salloc ignored", getenv("SLURM_JOB_ID"));
	if (!getenv("SLURM_JOB_ID"))
		L.local = true;
	if (!L.local && job.has_gang) {
		const char *nn = getenv("SLURM_JOB_NUM_NODES");

		if (nn && atoi(nn) > 0 && (unsigned)atoi(nn) < job.gang_nodes) {
			spk_say("%s: the gang %ux%u needs %u nodes; Slurm allocation %s has %s (sbatch/salloc --spoke-gang=%ux%u asks for them)",
				job.file, job.gang_nodes, job.gang_gpus, job.gang_nodes,
				getenv("SLURM_JOB_ID"), nn, job.gang_nodes, job.gang_gpus);
			return EXIT_LAUNCH;
		}
	}
	/* From here on a signal is a request to stop: nothing is left of a
	 * job that it interrupts, at any point. */
	spk_catch_signals();
	if (find_dirs(&L, argv[optind]) < 0 || spk_python_types(&L) < 0)
		return EXIT_USAGE;
	if (make_logdir(&L, logdir) < 0 || spk_auth_init() < 0)
		return EXIT_LAUNCH;
	snprintf(L.token_file, sizeof(L.token_file), "%s/token", L.logdir);
	snprintf(L.addr_file, sizeof(L.addr_file), "%s/hub.addr", L.logdir);
	if (spk_token_generate(L.token, sizeof(L.token)) < 0 ||
	    spk_token_write_file(L.token_file, L.token) < 0) {
		spk_say("cannot write the job token to %s", L.token_file);
		return EXIT_LAUNCH;
	}
	if (spk_start_janitor(&L) < 0) {
		unlink(L.token_file);
		return EXIT_LAUNCH;
	}
	job_env(&L);
	/* What the driver leaves behind is reparented to us, not to init, so
	 * that the teardown finds it; and children's exits must reach us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	spk_say("job %s: %s, logs in %s", job.name,
		L.local ? "on this machine" : "in Slurm allocation", L.logdir);
	copts.token = L.token;
	if (spk_got_signal || spk_start_hub(&L) < 0 || spk_start_agents(&L) < 0)
		goto out_stop;
	spk_abort_on_signal(&L);
	copts.hub = L.hub_addr;
	if (spoke_client_open(&L.client, &copts) < 0) {
		spk_say("cannot connect to the hub: %s", spoke_errmsg());
		goto out_stop;
	}
	if (spk_wait_agents(&L) < 0)
		goto out_stop;
	for (size_t i = 0; i < job.n_groups && !spk_got_signal; i++)
		if (launch_group(&L, &job.groups[i]) < 0)
			goto out_stop;
	spk_stop_aborting();
	if (!spk_got_signal && spk_start_driver(&L) == 0) {
		spk_say("running %s (%.0f ms after start)",
			L.shell || !job.driver_argc ? "a shell" : job.driver_argv[0], spk_ms_since(&L));
		spk_supervise(&L);
	}
out_stop:
	spk_stop_aborting();
	if (spk_got_signal && !L.why) {
		static char why[64];

		snprintf(why, sizeof(why), "interrupted by signal %d", (int)spk_got_signal);
		L.why = why;
		L.exit_code = 128 + spk_got_signal;
	}
	spk_teardown(&L);
	spk_stop_janitor(&L);
	spk_say("stopped: %s", L.why ? L.why : "the job could not start");
	return L.exit_code;
}

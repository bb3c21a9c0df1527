/* supervise.c - spoke-launch's supervision: the signals that stop a job
 * (in every phase: while actors start, one stops the agents at once),
 * waiting for the agents to register, and the loop that runs until the
 * driver ends or the hub or an agent dies, saying why. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client_priv.h"
#include "clock.h"
#include "launch.h"

volatile sig_atomic_t spk_got_signal;
/* While the actors start, the process that a signal stops at once (the
 * agents, or their srun) and how: a spawn in progress then fails within
 * milliseconds, instead of waiting for an init that may load a model for
 * minutes.  0 outside the start-up. */
static volatile sig_atomic_t abort_pid, abort_sig;

static void on_signal(int sig)
{
	int saved = errno;

	spk_got_signal = sig;
	if (abort_pid > 0)
		kill((pid_t)abort_pid, abort_sig);
	errno = saved;
}

/* From here on SIGINT, SIGTERM and SIGHUP set spk_got_signal. */
void spk_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* From now until spk_stop_aborting(), a signal stops the agents at once. */
void spk_abort_on_signal(const struct launch *L)
{
	abort_sig = L->local ? SIGTERM : SIGINT; /* as spk_teardown() does */
	abort_pid = L->agents;
	if (spk_got_signal) /* it came before */
		kill(L->agents, abort_sig);
}

void spk_stop_aborting(void)
{
	abort_pid = 0;
}

int spk_wait_agents(struct launch *L)
{
	int64_t deadline = spk_now_us() + (int64_t)L->job->timeout_agents_ms * 1000;
	static spoke_node_info nodes[LAUNCH_MAX_NODES];
	int n = 0, shown = -1;

	for (;;) {
		n = spoke_nodes(L->client, nodes, LAUNCH_MAX_NODES, 2000);
		if (n < 0) {
			spk_say("cannot ask the hub for its nodes: %s", spoke_errmsg());
			return -1;
		}
		if (n != shown) {
			spk_say("agents %d/%u registered (%.0f ms)", n, L->n_agents, spk_ms_since(L));
			shown = n;
		}
		if ((unsigned)n >= L->n_agents) {
			L->n_nodes = n < LAUNCH_MAX_NODES ? n : LAUNCH_MAX_NODES;
			memcpy(L->nodes, nodes, (size_t)L->n_nodes * sizeof(nodes[0]));
			return 0;
		}
		if (spk_got_signal)
			return -1;
		spk_stop_aborting(); /* the pid is about to be reaped */
		if (!spk_child_alive(&L->agents)) {
			char why[2 * PATH_MAX + 1024];

			if (!L->local && spk_dead_agents(L, why, sizeof(why)))
				spk_say("%s", why);
			else
				spk_say("the agents' %s ended before all registered; see %s/agent-*.log",
					L->local ? "process" : "srun step", L->logdir);
			return -1;
		}
		spk_abort_on_signal(L);
		if (spk_now_us() > deadline)
			break;
		usleep(5000);
	}
	{
		char want[4096], missing[4096] = "";
		size_t len = 0;

		spk_expected_nodes(want, sizeof(want));
		for (char *save = NULL, *w = strtok_r(want, "\n", &save); w;
		     w = strtok_r(NULL, "\n", &save)) {
			bool seen = false;

			for (int i = 0; i < n && i < LAUNCH_MAX_NODES; i++)
				seen |= !strcmp(nodes[i].name, w);
			if (!seen && len < sizeof(missing))
				len += (size_t)snprintf(missing + len, sizeof(missing) - len, " %s", w);
		}
		spk_say("only %d of %u agents registered within %u ms;%s%s", n, L->n_agents,
			L->job->timeout_agents_ms, missing[0] ? " missing:" : " see the agent logs in ",
			missing[0] ? missing : L->logdir);
	}
	return -1;
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

/* How many actors group g launched (NAME-0 .. NAME-(n-1)). */
static unsigned group_size(const struct job *job, const struct job_group *g)
{
	return g->per_node ? job->gang_nodes * g->per_node : g->count;
}

/* The end_job group whose actor `name` is, or -1. */
static int end_job_group(const struct job *job, const char *name)
{
	for (size_t i = 0; i < job->n_groups; i++) {
		const struct job_group *g = &job->groups[i];
		size_t len = strlen(g->name);
		char *end;
		unsigned long k;

		if (!g->restart_end_job || strncmp(name, g->name, len) != 0 || name[len] != '-' ||
		    !isdigit((unsigned char)name[len + 1]))
			continue;
		k = strtoul(name + len + 1, &end, 10);
		/* exactly as launch.c names them: "w-01" is another actor's */
		if (!*end && k < group_size(job, g) &&
		    (name[len + 1] != '0' || end == name + len + 2))
			return (int)i;
	}
	return -1;
}

/* Whether an actor of a group with restart: end_job: true is gone from
 * the hub (dead past its restarts): its name and group into out.  Its
 * actors are counted in one pass over the hub's list; only a group that
 * lacks one is searched for which. */
static bool lost_actor(struct launch *L, char *out, size_t cap)
{
	const struct job *job = L->job;
	unsigned seen[JOB_MAX_GROUPS] = { 0 };
	char name[SPOKE_ACTOR_NAME_MAX];
	struct spk_status *st;
	uint8_t *raw;
	bool lost = false;

	if (spk_client_status(L->client, &st, &raw, 1000) < 0)
		return false; /* the hub's own death says more */
	for (uint32_t j = 0; j < st->n_actors; j++) {
		int g = end_job_group(job, st->actors[j].name);

		if (g >= 0)
			seen[g]++;
	}
	for (size_t i = 0; i < job->n_groups && !lost; i++) {
		const struct job_group *g = &job->groups[i];
		unsigned n = group_size(job, g);

		for (unsigned k = 0; g->restart_end_job && seen[i] < n && k < n && !lost; k++) {
			uint32_t j = 0;

			snprintf(name, sizeof(name), "%s-%u", g->name, k);
			while (j < st->n_actors && strcmp(st->actors[j].name, name) != 0)
				j++;
			if (j == st->n_actors) {
				snprintf(out, cap, "actor %s (group %s, restart: max %u, end_job: true)",
					 name, g->name, g->max_restarts);
				lost = true;
			}
		}
	}
	spk_status_free(st);
	free(raw);
	return lost;
}

/* Whether the job has a group whose actors' deaths end it. */
static bool watches_actors(const struct job *job)
{
	for (size_t i = 0; i < job->n_groups; i++)
		if (job->groups[i].restart_end_job)
			return true;
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
void spk_supervise(struct launch *L)
{
	static char why[2 * PATH_MAX + 1024];
	/* Wakes on SIGCHLD; the tick only bounds the wait for a signal whose
	 * handler ran between the check of spk_got_signal and the wait. */
	const struct timespec tick = { 0, 100 * 1000000 };
	const char *what = L->shell || !L->job->driver_argc ? "shell" : "driver";
	int64_t next_poll = 0, lost_at = 0, next_look = 0;
	bool watch = watches_actors(L->job);
	char lost[512] = "", dead[512], how[32];
	sigset_t chld, old;
	int status;
	pid_t pid;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	for (;;) {
		if (spk_got_signal) {
			snprintf(why, sizeof(why), "interrupted by signal %d (%s)", (int)spk_got_signal,
				 strsignal(spk_got_signal));
			L->why = why;
			L->exit_code = 128 + spk_got_signal;
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
		/* An agent lost takes its actors: that is what to say then. */
		if (pid <= 0 && watch && !lost_at && spk_now_us() >= next_look) {
			next_look = spk_now_us() + ACTOR_POLL_MS * 1000;
			if (lost_actor(L, dead, sizeof(dead))) {
				snprintf(why, sizeof(why), "%s died for good; see %s/hub.log", dead,
					 L->logdir);
				L->why = why;
				L->exit_code = EXIT_LAUNCH;
				break;
			}
			continue;
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
			else if (spk_dead_agents(L, why, sizeof(why)))
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

/* slurm.c - spoke-launch inside a Slurm allocation: the agents' srun step
 * (one agent per node, each under a shell that writes its exit status
 * beside its log), which agents of it died, and the allocation's nodes
 * (scontrol show hostnames) for the hub's --allow-nodes and for saying
 * which agents are missing. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launch.h"

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
int spk_dead_agents(const struct launch *L, char *out, size_t cap)
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

int spk_srun_agents(struct launch *L, const char *agent, const char *modules)
{
	char nodes[16], ntasks[16], gpn[24];

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
	argv[n++] = (char *)agent;
	argv[n++] = "--hub";
	argv[n++] = L->hub_addr;
	argv[n++] = "--module";
	argv[n++] = (char *)modules;
	argv[n] = NULL;
	L->agents = spk_start(argv, environ, NULL);
	return L->agents < 0 ? -1 : 0;
}

/* The node names Slurm gave the job, one a line: for saying which agents
 * are missing, and for the hub, which lets only them register. */
void spk_expected_nodes(char *out, size_t cap)
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
int spk_allowed_nodes(const struct launch *L, char *out, size_t cap)
{
	size_t len;

	out[0] = '\0';
	if (L->local || !getenv("SLURM_JOB_NODELIST"))
		return 0;
	spk_expected_nodes(out, cap);
	len = strlen(out);
	if (!len || len + 2 >= cap) {
		spk_say("cannot list the allocation's nodes (scontrol show hostnames)%s",
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

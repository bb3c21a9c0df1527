/* cluster.h - a real Spoke cluster on loopback for the integration tests:
 * a spoke-hub and spoke-agents started from the build tree, each with its
 * own fake GPU ids, logging into a temporary directory. */
#ifndef TESTS_CLUSTER_H
#define TESTS_CLUSTER_H

#include <sys/types.h>

#include <spoke/spoke.h>

#define CLUSTER_MAX_AGENTS 4

struct cluster {
	char dir[64];
	char hub_addr[128];
	char token_file[128];
	pid_t hub;
	int n_agents;
	pid_t agents[CLUSTER_MAX_AGENTS];
	char nodes[CLUSTER_MAX_AGENTS][32];
};

/* $SPOKE_BUILDDIR/rel (the build tree), in a static buffer per call site. */
const char *cluster_path(char *out, size_t cap, const char *rel);
int cluster_start(struct cluster *cl);
/* Starts an agent for node `node` with GPU list `gpus` and waits until it
 * has registered. */
int cluster_add_agent(struct cluster *cl, const char *node, const char *gpus);
int cluster_client(struct cluster *cl, spoke_client **c);
/* Kills everything (SIGKILL), reaps it, removes the directory. */
void cluster_stop(struct cluster *cl);
/* A number of kB from /proc/PID/status (key "VmRSS", "VmHWM"; pid 0:
 * this process), -1 if there is none. */
long cluster_proc_kib(pid_t pid, const char *key);
/* How many live (not zombie) processes have `parent` as their parent. */
int cluster_children(pid_t parent);
/* How many workers (live children of its agents) the cluster runs. */
int cluster_workers(const struct cluster *cl);
/* Whether process pid exists (and is not a zombie we could reap). */
int cluster_alive(pid_t pid);

#endif

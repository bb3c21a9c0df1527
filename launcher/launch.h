/* launch.h - what the files of spoke-launch share (internal):
 *   launch.c     options and the job's set-up (log directory, token,
 *                environment), the actor groups, main()
 *   process.c    the processes: hub, agents, driver, the janitor, and the
 *                teardown that stops them all
 *   slurm.c      the Slurm step: the agents' srun, their exit files, the
 *                allocation's nodes
 *   supervise.c  signals, waiting for the agents, the supervision loop
 *   python.c     actor groups written in Python (python:) */
#ifndef SPOKE_LAUNCH_H
#define SPOKE_LAUNCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <spoke/spoke.h>

#include "auth.h"
#include "jobfile.h"
#include "proto.h"

#define EXIT_LAUNCH 1 /* the launcher failed: nothing of the driver ran */
#define EXIT_USAGE 2  /* bad options or job file */
#define HUB_START_MS 10000
#define LAUNCH_MAX_NODES 256 /* the hub's own limit */
#define AGENT_POLL_MS 250 /* how often to ask the hub whether all agents are there */
#define ACTOR_POLL_MS 250 /* and whether the actors whose deaths end the job live */
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
	pid_t janitor;  /* cleans up if we die without spk_teardown() */
	int janitor_fd; /* its pipe: a byte says "done", EOF that we died */
	spoke_client *client;
	int64_t t0;
	const char *why; /* why the job stopped */
	int exit_code;
};

/* launch.c */
/* One line "spoke-launch: ..." on stderr. */
void spk_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double spk_ms_since(const struct launch *L);
/* A path of the job file: as is if absolute, else relative to the file. */
const char *spk_job_path(const struct launch *L, const char *path, char *out, size_t cap);

/* process.c */
pid_t spk_start(char *const argv[], char *const envp[], const char *log);
int spk_child_alive(pid_t *pid);
int spk_start_hub(struct launch *L);
int spk_start_agents(struct launch *L);
int spk_start_driver(struct launch *L);
int spk_start_janitor(struct launch *L);
void spk_stop_janitor(struct launch *L);
void spk_teardown(struct launch *L);

/* slurm.c */
int spk_srun_agents(struct launch *L, const char *agent, const char *modules);
int spk_dead_agents(const struct launch *L, char *out, size_t cap);
void spk_expected_nodes(char *out, size_t cap);
int spk_allowed_nodes(const struct launch *L, char *out, size_t cap);

/* python.c */
bool spk_job_has_python(const struct launch *L);
/* The path of spoke-worker-python (beside us) in out. */
const char *spk_python_worker(const struct launch *L, char *out, size_t cap);
/* Puts the job file's directory first on $PYTHONPATH: 0, or -errno. */
int spk_python_path(const struct launch *L);
/* Fills in the type of each python: group without one, from its class's
 * decorator, and checks those given: 0, or -1 after saying what is wrong
 * (file:line:column). */
int spk_python_types(const struct launch *L);

/* supervise.c */
/* The signal that asked us to stop (SIGINT, SIGTERM, SIGHUP), 0 if none. */
extern volatile sig_atomic_t spk_got_signal;
void spk_catch_signals(void);
void spk_abort_on_signal(const struct launch *L);
void spk_stop_aborting(void);
int spk_wait_agents(struct launch *L);
void spk_supervise(struct launch *L);

#endif

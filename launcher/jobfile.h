/* jobfile.h - the job file of spoke-launch (YAML, read with libyaml).
 *
 *   name: demo                      # job name (default: the file's base name)
 *   gang: 2x8                       # NxG[:k]: nodes x GPUs per node (:GPUs per actor)
 *   hub:
 *     port: 0                       # 0: any free port
 *   timeouts:                       # seconds (a number) or "500ms", "30s", "2m"
 *     agents: 30                    # for every agent to register
 *     spawn: 30                     # for each actor's init
 *     shutdown: 5                   # from SIGTERM to SIGKILL at teardown
 *   env:                            # added to the driver's, agents' and actors' environment
 *     HF_HOME: /scratch/hf
 *   actors:                         # actor groups, launched in this order
 *     - name: worker                # actors are named worker-0, worker-1, ...
 *       type: Hello                 # the actor type
 *       module: ./hello.so          # the module that defines it, or:
 *       program: ./my_server        # a program that links it (spoke_worker_maybe_run), or:
 *       python: pkg.mod:Class       # an actor class in Python (spoke-worker-python); its
 *                                   # type: comes from @spoke.actor unless given
 *       per_node: 8                 # actors on each gang node (a gang launch), or:
 *       count: 2                    # actors placed wherever they fit
 *       gpus: 1                     # GPUs each (default: the gang's k, else 0)
 *       args: "Hello"               # a string handed to the actor's init (packed)
 *   modules: [./hello.so]           # modules every agent offers, for actors the
 *                                   # driver spawns itself by type
 *   driver: ./driver --steps 10     # a command line, or a list [./driver, --steps, "10"];
 *                                   # without it: an interactive shell
 *
 * Every mistake is reported, one line each, naming the file, line and
 * column and what was expected; on error nothing is started.  (A YAML
 * syntax error ends the reading: it is reported alone.) */
#ifndef SPOKE_JOBFILE_H
#define SPOKE_JOBFILE_H

#include <stdbool.h>
#include <stddef.h>

#define JOB_MAX_GROUPS 32
#define JOB_MAX_ENV 64
#define JOB_MAX_ARGV 64
#define JOB_MAX_MODULES 16
#define JOB_STR_MAX 1024

struct job_group {
	char name[64];
	char type[64];
	char module[JOB_STR_MAX];
	char program[JOB_STR_MAX];
	char python[JOB_STR_MAX]; /* "package.module:Class" */
	int python_line, python_column; /* where its value is */
	unsigned per_node; /* 0 when count is used */
	unsigned count;    /* 0 when per_node is used */
	unsigned gpus;
	bool gpus_set;
	char args[JOB_STR_MAX];
	bool has_args;
	unsigned max_restarts;       /* restart: max (0: none) */
	unsigned restart_backoff_ms; /* restart: backoff_ms */
	bool restart_end_job;        /* restart: end_job: the job ends when one dies for good */
	int line; /* where the group starts, for later errors */
	int column;
};

struct job_env {
	char name[128];
	char value[JOB_STR_MAX];
};

struct job {
	char file[JOB_STR_MAX];
	char name[64];
	bool has_gang;
	unsigned gang_nodes, gang_gpus, gang_k; /* gang_k defaults to 1 */
	unsigned hub_port;
	unsigned timeout_agents_ms, timeout_spawn_ms, timeout_shutdown_ms;
	size_t n_env;
	struct job_env env[JOB_MAX_ENV];
	size_t n_groups;
	struct job_group groups[JOB_MAX_GROUPS];
	size_t n_modules;
	char modules[JOB_MAX_MODULES][JOB_STR_MAX];
	size_t driver_argc; /* 0: no driver, a shell */
	char driver_argv[JOB_MAX_ARGV][JOB_STR_MAX];
};

/* Reads and checks path into *job.  On error returns -1 and writes one
 * line per mistake, "FILE:LINE:COLUMN: what is wrong (what was expected)",
 * '\n' between them, into err: the first one cut to fit cap, each later
 * one only if it fits whole. */
int job_load(const char *path, struct job *job, char *err, size_t cap);
/* The same from a string in memory (name stands for the file in errors). */
int job_parse(const char *text, size_t len, const char *name, struct job *job, char *err,
	      size_t cap);

#endif

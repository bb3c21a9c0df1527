/* spoke_spank.c - the Slurm SPANK plugin: --spoke-gang=NxG[:k].
 *
 * In sbatch, salloc and srun the option is checked as soon as it is parsed
 * (a bad value stops the command before anything is allocated); inside an
 * allocation srun also checks that the allocation can hold the gang.  The
 * allocation itself is shaped by contrib/cli_filter.lua (Slurm reads the
 * option's value there and sets --nodes, --gpus-per-node and
 * --ntasks-per-node); see spoke_spank(8).  In each task (slurmstepd,
 * task_init) the plugin checks the step against the gang, narrows
 * CUDA_VISIBLE_DEVICES to the task's own GPUs (one task per node, an agent,
 * keeps the node's whole list) and sets SPOKE_GANG, SPOKE_NODE_RANK,
 * SPOKE_LOCAL_RANK, SPOKE_RANK and SPOKE_GPUS.
 *
 * Only the SPANK symbols are exported (spoke_spank.map): a global named
 * like one of Slurm's would otherwise bind to Slurm's own. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "plugin_logic.h"

SPANK_PLUGIN(spoke_spank, 1);

#define GPU_LIST_MAX 4096

static struct spank_conf conf = { 1, true };
static struct gangspec gang;
static int have_gang;

static int on_gang(int val, const char *optarg, int remote)
{
	struct gangspec g;
	char err[256];

	(void)val;
	(void)remote;
	/* "none": not a gang step, although the job is a gang (a helper step
	 * inside an sbatch --spoke-gang job, which inherits the option). */
	if (optarg && !strcmp(optarg, "none")) {
		have_gang = 0;
		return 0;
	}
	if (gangspec_parse(optarg, conf.gpus_per_actor, &g, err, sizeof(err)) < 0) {
		slurm_error("spoke: %s", err);
		return -1;
	}
	/* sbatch passes the option on to the job's inner sruns, which may
	 * repeat it: the latest value stands. */
	gang = g;
	have_gang = 1;
	return 0;
}

static struct spank_option gang_option = {
	"spoke-gang", "NxG[:k]",
	"Spoke gang: N nodes with G GPUs each, k GPUs per actor (default 1); "
	"each task sees only its own GPUs (none: not a gang step)",
	1, 0, on_gang,
};

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	char err[256];

	if (spank_conf_parse(ac, av, &conf, err, sizeof(err)) < 0) {
		slurm_error("spoke: %s", err);
		return -1;
	}
	if (spank_option_register(sp, &gang_option) != ESPANK_SUCCESS) {
		slurm_error("spoke: cannot register --spoke-gang");
		return -1;
	}
	return 0;
}

/* Reports a mismatch between the gang and what Slurm gave: an error, or a
 * warning if plugstack.conf says mismatch=warn. */
static int mismatch(const char *msg)
{
	if (conf.mismatch_is_error) {
		slurm_error("spoke: %s", msg);
		return -1;
	}
	slurm_info("spoke: warning: %s", msg);
	/* In a task (slurmstepd) slurm_info reaches only slurmd's log: the
	 * task's own stderr, which srun shows, is the user's. */
	if (spank_context() == S_CTX_REMOTE) {
		fprintf(stderr, "spoke: warning: %s\n", msg);
		fflush(stderr);
	}
	return 0;
}

/* srun inside an allocation: the allocation must hold the gang. */
static int check_allocation(void)
{
	const char *nodes = getenv("SLURM_JOB_NUM_NODES");
	const char *gpn = getenv("SLURM_GPUS_PER_NODE");
	char spec[64], msg[256];

	if (!nodes)
		return 0; /* srun makes its own allocation; cli_filter shapes it */
	gangspec_format(&gang, spec, sizeof(spec));
	if ((unsigned)atoi(nodes) < gang.nodes) {
		snprintf(msg, sizeof(msg), "--spoke-gang=%s asks for %u nodes; the allocation has %s",
			 spec, gang.nodes, nodes);
		return mismatch(msg);
	}
	/* "4", or "a100:4" for typed GPUs: the count follows the last ':'. */
	if (gpn && strrchr(gpn, ':'))
		gpn = strrchr(gpn, ':') + 1;
	if (gpn && (unsigned)atoi(gpn) < gang.gpus_per_node) {
		snprintf(msg, sizeof(msg),
			 "--spoke-gang=%s asks for %u GPUs per node; the allocation has %s", spec,
			 gang.gpus_per_node, gpn);
		return mismatch(msg);
	}
	return 0;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	if (have_gang && spank_context() == S_CTX_LOCAL)
		return check_allocation();
	return 0;
}

static int set_env(spank_t sp, const char *name, const char *value)
{
	if (spank_setenv(sp, name, value, 1) != ESPANK_SUCCESS) {
		slurm_error("spoke: cannot set %s", name);
		return -1;
	}
	return 0;
}

static int set_env_u(spank_t sp, const char *name, unsigned value)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u", value);
	return set_env(sp, name, buf);
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	char node_gpus[GPU_LIST_MAX], mine[GPU_LIST_MAX], spec[64], err[512];
	uint32_t nnodes = 0, nodeid = 0, ntasks = 0, global = 0, stepid = 0;
	int local = 0;

	(void)ac;
	(void)av;
	if (!have_gang)
		return 0;
	/* sbatch's options reach the batch script's own step too (and salloc's
	 * an interactive step): that is the job's shell, not a gang step, and it
	 * keeps the job's whole GPU list.  Only the sruns inside are checked. */
	if (spank_get_item(sp, S_JOB_STEPID, &stepid) == ESPANK_SUCCESS &&
	    (stepid == SLURM_BATCH_SCRIPT || stepid == SLURM_EXTERN_CONT ||
	     stepid == SLURM_INTERACTIVE_STEP))
		return 0;
	if (spank_get_item(sp, S_JOB_NNODES, &nnodes) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_NODEID, &nodeid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &ntasks) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_ID, &local) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_TASK_GLOBAL_ID, &global) != ESPANK_SUCCESS) {
		slurm_error("spoke: cannot read the step's layout");
		return -1;
	}
	/* The GPUs Slurm gave this step on this node, in the numbering the
	 * task will see them in. */
	if (spank_getenv(sp, "CUDA_VISIBLE_DEVICES", node_gpus, sizeof(node_gpus)) !=
	    ESPANK_SUCCESS)
		node_gpus[0] = '\0';
	if (gangspec_check_step(&gang, nnodes, gpulist_count(node_gpus), ntasks, err,
				sizeof(err)) < 0 &&
	    mismatch(err) < 0)
		return -1;
	if (gpulist_for_task(node_gpus, (unsigned)local, ntasks, gang.gpus_per_actor, mine,
			     sizeof(mine), err, sizeof(err)) < 0) {
		if (mismatch(err) < 0)
			return -1;
		snprintf(mine, sizeof(mine), "%s", node_gpus);
	}
	gangspec_format(&gang, spec, sizeof(spec));
	if (set_env(sp, "CUDA_VISIBLE_DEVICES", mine) < 0 || set_env(sp, "SPOKE_GPUS", mine) < 0 ||
	    set_env(sp, "SPOKE_GANG", spec) < 0 || set_env_u(sp, "SPOKE_NODE_RANK", nodeid) < 0 ||
	    set_env_u(sp, "SPOKE_LOCAL_RANK", (unsigned)local) < 0 ||
	    set_env_u(sp, "SPOKE_RANK", global) < 0)
		return -1;
	return 0;
}

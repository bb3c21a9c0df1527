/* plugin_logic.h - the pure logic of the SPANK plugin, with no Slurm in it:
 * the messages for --spoke-gang=NxG[:k] (parsed by the common gangspec.c),
 * the plugstack arguments, checking a step against the gang, and giving
 * each task its GPUs.  Every function writes one line saying what was
 * asked and what was found into err. */
#ifndef SPOKE_PLUGIN_LOGIC_H
#define SPOKE_PLUGIN_LOGIC_H

#include <stdbool.h>
#include <stddef.h>

#include "gangspec.h" /* runtime/common: the parser itself */

/* Site defaults from plugstack.conf: "gpus_per_actor=K", "mismatch=error|warn". */
struct spank_conf {
	unsigned gpus_per_actor;
	bool mismatch_is_error;
};

/* --spoke-gang's value, "2x8" or "2x8:2" (k defaults to default_k).
 * Returns 0 or -1 with err. */
int gangspec_parse(const char *s, unsigned default_k, struct gangspec *g, char *err, size_t cap);
/* Parses the plugin's arguments; -1 with err for an unknown key or value. */
int spank_conf_parse(int ac, char **av, struct spank_conf *conf, char *err, size_t cap);

/* Whether a step of step_nodes nodes, with node_gpus GPUs on this node for
 * local_tasks tasks, can hold the gang.  Returns 0 or -1 with err. */
int gangspec_check_step(const struct gangspec *g, unsigned step_nodes, unsigned node_gpus,
			unsigned local_tasks, char *err, size_t cap);

/* Counts the entries of a comma-separated GPU list ("" has none). */
unsigned gpulist_count(const char *list);
/* The GPUs of local task `task` of `tasks` on a node whose step GPUs are
 * `node_gpus` (a comma-separated list: indexes or UUIDs, as Slurm gave
 * them).  One task per node (an agent) gets the whole list; otherwise task
 * i gets entries [i*k, i*k+k).  Returns 0 or -1 with err when the list is
 * too short. */
int gpulist_for_task(const char *node_gpus, unsigned task, unsigned tasks, unsigned k, char *out,
		     size_t cap, char *err, size_t errcap);

#endif

/* plugin_logic.c - the SPANK plugin's messages, plugstack arguments, step
 * check and GPU mapping (plugin_logic.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_logic.h"

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (cap) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A decimal number without sign or spaces, into *v; end at the first other char. */
static int number(const char *s, const char **end, unsigned max, unsigned *v)
{
	unsigned long n;
	char *e;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoul(s, &e, 10);
	if (errno || n > max)
		return -1;
	*v = (unsigned)n;
	*end = e;
	return 0;
}

int gangspec_parse(const char *s, unsigned default_k, struct gangspec *g, char *err, size_t cap)
{
	struct gangspec_numbers n;
	unsigned bad = gangspec_scan(s, s ? strlen(s) : 0, default_k, g, &n);

	/* A number above its limit is the syntax's fault here. */
	if (bad & (GANGSPEC_SYNTAX | GANGSPEC_TOO_MANY_NODES | GANGSPEC_TOO_MANY_GPUS |
		   GANGSPEC_TOO_MANY_ACTOR_GPUS))
		return fail(err, cap,
			    "invalid --spoke-gang=%s: want NODESxGPUS[:GPUS_PER_ACTOR], e.g. 2x8 or 2x8:2",
			    s ? s : "");
	if (bad & GANGSPEC_NO_NODES)
		return fail(err, cap, "invalid --spoke-gang=%s: a gang needs at least 1 node", s);
	if (bad & GANGSPEC_NO_GPUS)
		return fail(err, cap, "invalid --spoke-gang=%s: a gang needs at least 1 GPU per node", s);
	if (bad & GANGSPEC_NO_ACTOR_GPUS)
		return fail(err, cap, "invalid --spoke-gang=%s: an actor needs at least 1 GPU", s);
	if (bad & GANGSPEC_UNEVEN)
		return fail(err, cap,
			    "invalid --spoke-gang=%s: %llu GPUs per node do not divide into actors of %llu GPUs",
			    s, n.gpus_per_node, n.gpus_per_actor);
	return 0;
}

int spank_conf_parse(int ac, char **av, struct spank_conf *conf, char *err, size_t cap)
{
	struct spank_conf out = { 1, true };

	for (int i = 0; i < ac; i++) {
		const char *a = av[i], *end;

		if (!strncmp(a, "gpus_per_actor=", 15)) {
			if (number(a + 15, &end, GANG_MAX_GPUS_PER_NODE, &out.gpus_per_actor) < 0 ||
			    *end || out.gpus_per_actor == 0)
				return fail(err, cap, "plugstack.conf: %s: want gpus_per_actor=K, K >= 1", a);
		} else if (!strcmp(a, "mismatch=error")) {
			out.mismatch_is_error = true;
		} else if (!strcmp(a, "mismatch=warn")) {
			out.mismatch_is_error = false;
		} else {
			return fail(err, cap,
				    "plugstack.conf: unknown argument '%s' (known: gpus_per_actor=K, mismatch=error|warn)",
				    a);
		}
	}
	*conf = out;
	return 0;
}

int gangspec_check_step(const struct gangspec *g, unsigned step_nodes, unsigned node_gpus,
			unsigned local_tasks, char *err, size_t cap)
{
	char spec[64];

	gangspec_format(g, spec, sizeof(spec));
	if (step_nodes < g->nodes)
		return fail(err, cap, "--spoke-gang=%s asks for %u nodes; this step has %u", spec,
			    g->nodes, step_nodes);
	if (node_gpus < g->gpus_per_node)
		return fail(err, cap,
			    "--spoke-gang=%s asks for %u GPUs per node; this step has %u on this node",
			    spec, g->gpus_per_node, node_gpus);
	if (local_tasks > 1 && (unsigned long)local_tasks * g->gpus_per_actor > node_gpus)
		return fail(err, cap,
			    "--spoke-gang=%s: %u tasks of %u GPUs each do not fit the %u GPUs of this node",
			    spec, local_tasks, g->gpus_per_actor, node_gpus);
	return 0;
}

unsigned gpulist_count(const char *list)
{
	unsigned n = 0;

	if (!list || !*list)
		return 0;
	for (n = 1; *list; list++)
		n += *list == ',';
	return n;
}

int gpulist_for_task(const char *node_gpus, unsigned task, unsigned tasks, unsigned k, char *out,
		     size_t cap, char *err, size_t errcap)
{
	unsigned have = gpulist_count(node_gpus), first = task * k, i = 0;
	const char *p = node_gpus, *start = NULL, *end = NULL;

	if (tasks <= 1) {
		if (strlen(node_gpus) >= cap)
			return fail(err, errcap, "GPU list too long: %s", node_gpus);
		strcpy(out, node_gpus);
		return 0;
	}
	if (k == 0 || task >= tasks || (unsigned long)first + k > have)
		return fail(err, errcap,
			    "task %u of %u needs GPUs %u-%u but the step has %u on this node (%s)", task,
			    tasks, first, first + k - 1, have, *node_gpus ? node_gpus : "none");
	/* Find entries first .. first+k-1 and copy them as one span. */
	for (;; p++) {
		if (i == first && !start)
			start = p;
		if (*p == ',' || *p == '\0') {
			if (i == first + k - 1) {
				end = p;
				break;
			}
			i++;
			if (*p == '\0')
				break;
		}
	}
	if (!start || !end || (size_t)(end - start) >= cap)
		return fail(err, errcap, "GPU list too long: %s", node_gpus);
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return 0;
}

/* fuzz_gangspec.c - the SPANK plugin's parsers (spank/plugin_logic.c and
 * the common runtime/common/gangspec.c): --spoke-gang=NxG[:k], the
 * plugstack arguments, the step check and the per-task GPU lists.
 *
 * Input: a selector byte, three parameter bytes, then the text.
 * Properties: what parses formats back to a spec that parses the same; a
 * task's GPUs are entries of the node's list; nothing is written past a
 * buffer's capacity (heap buffers of exactly that size) and every error
 * message fits its buffer. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "plugin_logic.h"

enum { SEL_GANG, SEL_CONF, SEL_TASK };

static char *cstr(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	FZ_CHECK(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void gang(const char *s, unsigned default_k, unsigned step_nodes, unsigned gpus)
{
	struct gangspec g, again;
	char err[128], out[64];

	if (gangspec_parse(s, default_k, &g, err, sizeof(err)) < 0) {
		FZ_CHECK(strlen(err) < sizeof(err));
		return;
	}
	FZ_CHECK(g.nodes >= 1 && g.nodes <= GANG_MAX_NODES);
	FZ_CHECK(g.gpus_per_actor >= 1 && g.gpus_per_node % g.gpus_per_actor == 0);
	gangspec_format(&g, out, sizeof(out));
	FZ_CHECK(gangspec_parse(out, 1, &again, err, sizeof(err)) == 0);
	FZ_CHECK(again.nodes == g.nodes && again.gpus_per_node == g.gpus_per_node &&
		 again.gpus_per_actor == g.gpus_per_actor);
	gangspec_check_step(&g, step_nodes, gpus, g.gpus_per_node / g.gpus_per_actor, err,
			    sizeof(err));
}

/* The plugstack arguments: the text split at spaces. */
static void conf(char *s)
{
	char *av[16], *save = NULL, err[96];
	struct spank_conf c;
	int ac = 0;

	for (char *w = strtok_r(s, " ", &save); w && ac < 16; w = strtok_r(NULL, " ", &save))
		av[ac++] = w;
	if (spank_conf_parse(ac, av, &c, err, sizeof(err)) < 0)
		FZ_CHECK(strlen(err) < sizeof(err));
}

static void task(const char *list, unsigned task_no, unsigned tasks, unsigned k, size_t cap)
{
	char *out = malloc(cap ? cap : 1), err[100];

	FZ_CHECK(out);
	if (gpulist_for_task(list, task_no, tasks, k, out, cap, err, sizeof(err)) == 0) {
		FZ_CHECK(strlen(out) < cap);
		FZ_CHECK(gpulist_count(out) <= gpulist_count(list));
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 4)
		return 0;
	s = cstr(data + 4, size - 4);
	switch (data[0] & 3) { /* bits 2-7: the capacity of a task's list */
	case SEL_GANG: gang(s, data[1] % 9, data[2], data[3]); break;
	case SEL_CONF: conf(s); break;
	case SEL_TASK: task(s, data[1] % 16, data[2] % 16, data[3] % 16, data[0] >> 2); break;
	}
	free(s);
	return 0;
}

static void seed(const char *name, uint8_t sel, uint8_t a, uint8_t b, uint8_t c,
		 const char *text)
{
	uint8_t out[256];
	size_t n = strlen(text);

	out[0] = sel;
	out[1] = a;
	out[2] = b;
	out[3] = c;
	memcpy(out + 4, text, n);
	fz_seed(name, out, n + 4);
}

static void seeds(void)
{
	seed("gang", SEL_GANG, 1, 2, 8, "2x8");
	seed("gang-k", SEL_GANG, 1, 2, 8, "2x8:2");
	seed("conf", SEL_CONF, 0, 0, 0, "gpus_per_actor=2 mismatch=warn");
	seed("task", SEL_TASK | 40 << 2, 1, 4, 2, "0,1,2,3,4,5,6,7");
	seed("task-uuid", SEL_TASK | 40 << 2, 0, 1, 1, "GPU-1234,GPU-5678");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-gangspec", seeds);
	return 0;
}

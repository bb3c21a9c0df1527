/* log.c - the runtime's log lines. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

static char component[32] = "client";
static char node[64];
static int level = SPK_LOG_WARN;
static int ready;

static int parse_level(const char *s, int dflt)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	if (!s || !*s)
		return dflt;
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	return dflt;
}

static void init_node(void)
{
	const char *env = getenv("SPOKE_NODE");

	/* Inside a Slurm step, the node's Slurm name (several slurmd may
	 * share one host). */
	if (!env || !*env)
		env = getenv("SLURMD_NODENAME");
	if (env && *env) {
		snprintf(node, sizeof(node), "%s", env);
		return;
	}
	if (gethostname(node, sizeof(node)) != 0)
		snprintf(node, sizeof(node), "?");
	node[sizeof(node) - 1] = '\0';
	node[strcspn(node, ".")] = '\0';
}

void spk_log_init(const char *comp, int default_level)
{
	snprintf(component, sizeof(component), "%s", comp);
	level = parse_level(getenv("SPOKE_LOG"), default_level);
	init_node();
	ready = 1;
}

static void ensure_ready(void)
{
	if (ready)
		return;
	level = parse_level(getenv("SPOKE_LOG"), SPK_LOG_WARN);
	init_node();
	ready = 1;
}

void spk_log_set_node(const char *name)
{
	ensure_ready();
	snprintf(node, sizeof(node), "%s", name);
}

const char *spk_log_node(void)
{
	ensure_ready();
	return node;
}

int spk_log_enabled(int lvl)
{
	ensure_ready();
	return lvl <= level;
}

void spk_log(int lvl, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (!spk_log_enabled(lvl))
		return;
	n = snprintf(line, sizeof(line), "spoke-%s[%s:%d]: ", component, node, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per line, so lines of several processes do not interleave. */
	n = (int)strlen(line);
	if ((size_t)n < sizeof(line) - 1)
		line[n++] = '\n';
	else
		line[sizeof(line) - 2] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

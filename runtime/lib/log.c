/* log.c - the runtime's log lines. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <spoke/client.h>

#include "clock.h"

#include "env.h"
#include "errmsg.h"
#include "log.h"

static char component[32] = "client";
static char node[64];
static int level = SPK_LOG_WARN;
static int ready;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int spk_log_level_env(int dflt, int *out)
{
	return spk_env_choice("SPOKE_LOG", level_names, 4, dflt, out);
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

/* The level from $SPOKE_LOG, else dflt.  No caller can be told of a bad
 * value here (the first line of a process, or of a client's library): it
 * is logged, and the calling thread's spoke_errmsg() is left as it was. */
static void init(int dflt)
{
	char saved[512];

	snprintf(saved, sizeof(saved), "%s", spoke_errmsg());
	init_node();
	level = dflt;
	ready = 1;
	if (spk_log_level_env(dflt, &level) < 0) {
		spk_warn("%s; logging at %s", spoke_errmsg(), level_names[dflt]);
		spk_errmsg_setn(saved, strlen(saved));
	}
}

void spk_log_init(const char *comp, int default_level)
{
	snprintf(component, sizeof(component), "%s", comp);
	init(default_level);
}

static void ensure_ready(void)
{
	if (!ready)
		init(SPK_LOG_WARN);
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

/* Writes one line: the prefix, the message, and a count of suppressed
 * lines if there were any. */
static void vlog(unsigned suppressed, const char *fmt, va_list ap)
{
	char line[1024];
	size_t len;
	int n;

	n = snprintf(line, sizeof(line), "spoke-%s[%s:%d]: ", component, node, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	len = strlen(line);
	if (suppressed)
		snprintf(line + len, sizeof(line) - len, " (%u line%s like this suppressed)",
			 suppressed, suppressed == 1 ? "" : "s");
	/* One write per line, so lines of several processes do not interleave. */
	len = strlen(line);
	if (len < sizeof(line) - 1)
		line[len++] = '\n';
	else
		line[sizeof(line) - 2] = '\n';
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

/* How one byte is written in a log line: into e, returns its length. */
static size_t escape_byte(unsigned char c, char e[4])
{
	static const char hex[] = "0123456789abcdef";

	if (c == '\n' || c == '\r' || c == '\t' || c == '\\') {
		e[0] = '\\';
		e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
		return 2;
	}
	if (c < 0x20 || c == 0x7f) {
		e[0] = '\\';
		e[1] = 'x';
		e[2] = hex[c >> 4];
		e[3] = hex[c & 15];
		return 4;
	}
	e[0] = (char)c;
	return 1;
}

const char *spk_log_escape(char *out, size_t cap, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t len = 0, whole = 0;
	char e[4];

	if (cap < 4) {
		if (cap)
			out[0] = '\0';
		return out;
	}
	for (size_t i = 0; i < n; i++)
		whole += escape_byte(p[i], e);
	for (size_t i = 0; i < n; i++) {
		size_t k = escape_byte(p[i], e);

		/* Cut short: room for "..." and the NUL after what is written. */
		if (whole + 1 > cap && len + k + 4 > cap) {
			memcpy(out + len, "...", 4);
			return out;
		}
		memcpy(out + len, e, k);
		len += k;
	}
	out[len] = '\0';
	return out;
}

void spk_log(int lvl, const char *fmt, ...)
{
	va_list ap;

	if (!spk_log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
}

/* Lock-free, for the client's threads: a new second resets the count once
 * (whoever wins the exchange), and every line past the limit adds to the
 * suppressed count, which the next line written takes. */
void spk_log_at(struct spk_log_site *s, int lvl, const char *fmt, ...)
{
	int64_t now, sec;
	unsigned suppressed = 0;
	va_list ap;

	if (!spk_log_enabled(lvl))
		return;
	now = spk_now_us() / 1000000;
	sec = __atomic_load_n(&s->sec, __ATOMIC_RELAXED);
	if (sec != now && __atomic_compare_exchange_n(&s->sec, &sec, now, false, __ATOMIC_RELAXED,
						      __ATOMIC_RELAXED))
		__atomic_store_n(&s->n, 0, __ATOMIC_RELAXED);
	if (__atomic_add_fetch(&s->n, 1, __ATOMIC_RELAXED) > SPK_LOG_PER_SITE) {
		__atomic_add_fetch(&s->suppressed, 1, __ATOMIC_RELAXED);
		return;
	}
	suppressed = __atomic_exchange_n(&s->suppressed, 0, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vlog(suppressed, fmt, ap);
	va_end(ap);
}

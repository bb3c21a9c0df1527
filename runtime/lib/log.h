/* log.h - one line per event: "spoke-<component>[node:pid]: message".
 * The level comes from $SPOKE_LOG (error|warn|info|debug). */
#ifndef SPOKE_LOG_H
#define SPOKE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum spk_log_level { SPK_LOG_ERROR, SPK_LOG_WARN, SPK_LOG_INFO, SPK_LOG_DEBUG };

/* Names the process ("hub", "agent", "worker"...), reads $SPOKE_LOG (else
 * default_level) and the node name ($SPOKE_NODE, else $SLURMD_NODENAME,
 * else the short host name). */
void spk_log_init(const char *component, int default_level);
/* Changes the node name shown in later lines. */
void spk_log_set_node(const char *node);
const char *spk_log_node(void);
/* The level $SPOKE_LOG asks for, else dflt; SPOKE_EINVAL naming a bad
 * value (env.h).  For the client, which refuses to open with one. */
int spk_log_level_env(int dflt, int *out);
int spk_log_enabled(int level);
void spk_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text a peer sent (a node, host or actor name, a reason), made safe for a
 * log line: s[0..n) with each control byte, DEL and backslash written as
 * \n, \r, \t, \\ or \xNN, so that it can neither end the line nor forge
 * another; cut with "..." where out (cap >= 4) is too small.  SPK_ESC_CAP(n)
 * always suffices.  Returns out. */
#define SPK_ESC_CAP(n) (4 * (n) + 1)
const char *spk_log_escape(char *out, size_t cap, const void *s, size_t n);

/* Rate limiting: each call site of spk_err/warn/info/debug writes at most
 * SPK_LOG_PER_SITE lines per second (of the monotonic clock); the lines
 * past that are counted, and the site's next line written in a later
 * second ends with "(K lines like this suppressed)".  A peer that makes us
 * log once per connection or per frame cannot fill the disk. */
#define SPK_LOG_PER_SITE 20

struct spk_log_site {
	int64_t sec;         /* the second the count is for */
	unsigned n;          /* lines of that second */
	unsigned suppressed; /* lines not written since the last one written */
};

void spk_log_at(struct spk_log_site *site, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define spk_log_limited(level, ...)                                  \
	do {                                                         \
		static struct spk_log_site spk_log_site_;            \
		spk_log_at(&spk_log_site_, (level), __VA_ARGS__);    \
	} while (0)

#define spk_err(...) spk_log_limited(SPK_LOG_ERROR, __VA_ARGS__)
#define spk_warn(...) spk_log_limited(SPK_LOG_WARN, __VA_ARGS__)
#define spk_info(...) spk_log_limited(SPK_LOG_INFO, __VA_ARGS__)
#define spk_debug(...) spk_log_limited(SPK_LOG_DEBUG, __VA_ARGS__)

#endif

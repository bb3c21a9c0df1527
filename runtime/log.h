/* log.h - one line per event: "spoke-<component>[node:pid]: message".
 * The level comes from $SPOKE_LOG (error|warn|info|debug). */
#ifndef SPOKE_LOG_H
#define SPOKE_LOG_H

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

#define spk_err(...) spk_log(SPK_LOG_ERROR, __VA_ARGS__)
#define spk_warn(...) spk_log(SPK_LOG_WARN, __VA_ARGS__)
#define spk_info(...) spk_log(SPK_LOG_INFO, __VA_ARGS__)
#define spk_debug(...) spk_log(SPK_LOG_DEBUG, __VA_ARGS__)

#endif

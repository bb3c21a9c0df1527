/* spawn.h - fork + exec of a child tied to us (PR_SET_PDEATHSIG): the
 * agent's workers, spoke-launch's hub, agents and driver. */
#ifndef SPOKE_SPAWN_H
#define SPOKE_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

struct spk_spawn {
	const char *path;    /* the program; NULL: argv[0] */
	char *const *argv;
	char *const *envp;
	bool search_path;    /* execvpe (a program without '/' looked up in PATH), else execve */
	int death_signal;    /* the child gets it when this process dies */
	bool own_group;      /* setpgid(0, 0): a terminal's Ctrl-C does not reach it */
	int out_fd;          /* >= 0: becomes the child's stdout and stderr */
	int keep_fd;         /* >= 0: moved to SPK_WORKER_FD_NUM, every descriptor
			      * above it closed */
	bool reset_all_signals; /* every handler back to SIG_DFL; else only
				 * SIGINT, SIGTERM, SIGHUP and SIGPIPE */
	const char *exec_failed; /* if set, a failed exec prints
				  * "<exec_failed><program>: <why>" to stderr */
};

/* Forks and execs as *s says; no signal handler runs in the child, whose
 * signal mask is ours again at exec.  The child dies (status 127) if we
 * died before it set its death signal, or if exec fails.  Returns the pid
 * or -errno (fork). */
pid_t spk_spawn(const struct spk_spawn *s);

/* The agent's workers: `program` (argv as given, env as given) with fd
 * `keep` moved to SPK_WORKER_FD_NUM and every other descriptor but 0-2
 * closed; the child gets SIGKILL when this process dies, its own process
 * group and every signal's default action.  Everything is prepared before
 * fork: the child only calls async-signal-safe functions.  Returns the pid
 * or -errno; a failed exec shows as exit status 127. */
pid_t spk_spawn_process(const char *program, char *const argv[], char *const envp[], int keep);

#define SPK_WORKER_FD_NUM 3
#define SPK_WORKER_FD_ENV "SPOKE_WORKER_FD"

#endif

/* spawn.h - starting a worker process: fork + exec, pinned and tied to us. */
#ifndef SPOKE_SPAWN_H
#define SPOKE_SPAWN_H

#include <sys/types.h>

/* Starts `program` (argv as given, env as given) with fd `keep` moved to
 * SPK_WORKER_FD_NUM and every other descriptor but 0-2 closed; the child
 * gets SIGKILL when this process dies (PR_SET_PDEATHSIG, set before exec)
 * and its own process group.  Everything is prepared before fork: the child
 * only calls async-signal-safe functions.  Returns the pid or -errno; a
 * failed exec shows as exit status 127. */
pid_t spk_spawn_process(const char *program, char *const argv[], char *const envp[], int keep);

#define SPK_WORKER_FD_NUM 3
#define SPK_WORKER_FD_ENV "SPOKE_WORKER_FD"

#endif

/* spawn.c - fork + exec of workers with PR_SET_PDEATHSIG. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spawn.h"

pid_t spk_spawn_process(const char *program, char *const argv[], char *const envp[], int keep)
{
	pid_t parent = getpid(), pid;
	sigset_t all, old;

	/* No signal handler may run in the child between fork and exec. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid != 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return pid < 0 ? -errno : pid;
	}
	/* Child: async-signal-safe calls only. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	setpgid(0, 0);
	if (keep != SPK_WORKER_FD_NUM) {
		if (dup2(keep, SPK_WORKER_FD_NUM) < 0)
			_exit(127);
	} else {
		fcntl(keep, F_SETFD, 0);
	}
	syscall(SYS_close_range, SPK_WORKER_FD_NUM + 1, ~0U, 0);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	execve(program, argv, envp);
	_exit(127);
}

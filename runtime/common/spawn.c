/* spawn.c - fork + exec with PR_SET_PDEATHSIG (spawn.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spawn.h"

pid_t spk_spawn(const struct spk_spawn *s)
{
	static const int usual[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	const char *path = s->path ? s->path : s->argv[0];
	pid_t parent = getpid(), pid;
	sigset_t all, old;

	/* No signal handler may run in the child between fork and exec. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid != 0) {
		int e = errno;

		sigprocmask(SIG_SETMASK, &old, NULL);
		return pid < 0 ? -e : pid;
	}
	/* Child: async-signal-safe calls only (but the message of a failed
	 * exec, which our single-threaded callers may print). */
	if (prctl(PR_SET_PDEATHSIG, s->death_signal) != 0 || getppid() != parent)
		_exit(127);
	if (s->own_group)
		setpgid(0, 0);
	if (s->out_fd >= 0) {
		dup2(s->out_fd, STDOUT_FILENO);
		dup2(s->out_fd, STDERR_FILENO);
	}
	if (s->keep_fd >= 0) {
		if (s->keep_fd != SPK_WORKER_FD_NUM) {
			if (dup2(s->keep_fd, SPK_WORKER_FD_NUM) < 0)
				_exit(127);
		} else {
			fcntl(s->keep_fd, F_SETFD, 0);
		}
		syscall(SYS_close_range, SPK_WORKER_FD_NUM + 1, ~0U, 0);
	}
	if (s->reset_all_signals)
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
	else
		for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++)
			signal(usual[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (s->search_path)
		execvpe(path, s->argv, s->envp);
	else
		execve(path, s->argv, s->envp);
	if (s->exec_failed)
		fprintf(stderr, "%s%s: %s\n", s->exec_failed, path, strerror(errno));
	_exit(127);
}

pid_t spk_spawn_process(const char *program, char *const argv[], char *const envp[], int keep)
{
	struct spk_spawn s = {
		.path = program, .argv = argv, .envp = envp, .death_signal = SIGKILL, .own_group = true,
		.out_fd = -1, .keep_fd = keep, .reset_all_signals = true,
	};

	return spk_spawn(&s);
}

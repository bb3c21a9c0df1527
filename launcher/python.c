/* python.c - actor groups written in Python (a job file's `python:`).
 *
 * Such a group is spawned with program = spoke-worker-python (beside
 * spoke-launch, like the hub and agent) and module = its
 * "package.module:Class": the spawn's module field carries the class to the
 * worker, which imports it.  The modules are found from the job file's
 * directory, put first on $PYTHONPATH for the agents (so their workers) and
 * the driver.  A group without type: takes the one its class's
 * @spoke.actor("Type") names: `spoke-worker-python --type SPEC` reads it
 * from the module's source, without importing it (no model loaded, no GPU
 * touched), before anything of the job starts; a type: given must match it. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "launch.h"

#define TYPE_TIMEOUT_MS 30000
#define WORKER_NAME "spoke-worker-python"

bool spk_job_has_python(const struct launch *L)
{
	for (size_t i = 0; i < L->job->n_groups; i++)
		if (L->job->groups[i].python[0])
			return true;
	return false;
}

const char *spk_python_worker(const struct launch *L, char *out, size_t cap)
{
	snprintf(out, cap, "%s/" WORKER_NAME, L->bindir);
	return out;
}

/* $PYTHONPATH with the job file's directory first (the job's env: applied). */
int spk_python_path(const struct launch *L)
{
	const char *old = getenv("PYTHONPATH");
	size_t n = strlen(L->jobdir) + (old ? strlen(old) : 0) + 2;
	char *v = malloc(n);
	int rc;

	if (!v)
		return -ENOMEM;
	snprintf(v, n, "%s%s%s", L->jobdir, old && *old ? ":" : "", old && *old ? old : "");
	rc = setenv("PYTHONPATH", v, 1);
	free(v);
	return rc;
}

/* Runs `worker --type spec` with $PYTHONPATH as the workers will have it;
 * its output (the type, or why not) in out; its exit status, or -1. */
static int ask_type(const struct launch *L, const char *worker, const char *spec, char *out,
		    size_t cap)
{
	int64_t deadline = spk_now_us() + TYPE_TIMEOUT_MS * 1000LL;
	size_t len = 0;
	int fds[2], status = -1;
	pid_t pid;

	out[0] = '\0';
	if (pipe(fds) != 0) {
		snprintf(out, cap, "pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(out, cap, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		for (size_t i = 0; i < L->job->n_env; i++) /* as the workers will have it */
			setenv(L->job->env[i].name, L->job->env[i].value, 1);
		if (spk_python_path(L) == 0)
			execl(worker, worker, "--type", spec, (char *)NULL);
		fprintf(stderr, "cannot run %s: %s", worker, strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		int64_t left = (deadline - spk_now_us()) / 1000;
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			snprintf(out, cap, "%s --type did not answer within %d s", worker,
				 TYPE_TIMEOUT_MS / 1000);
			len = strlen(out);
			break;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			break;
		if (!p.revents)
			continue;
		n = read(fds[0], out + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	out[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
		out[--len] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int spk_python_types(const struct launch *L)
{
	char worker[PATH_MAX], said[PATH_MAX + 512];
	int bad = 0;

	if (!spk_job_has_python(L))
		return 0;
	spk_python_worker(L, worker, sizeof(worker));
	for (size_t i = 0; i < L->job->n_groups; i++) {
		struct job_group *g = &L->job->groups[i];
		const char *msg = said;
		int rc;

		if (!g->python[0])
			continue;
		if (access(worker, X_OK) != 0) {
			spk_say("%s:%d:%d: actor group %s: python: needs %s, which is not there (%s: "
				"Spoke built without Python 3?)", L->job->file, g->python_line,
				g->python_column, g->name, worker, strerror(errno));
			return -1;
		}
		rc = ask_type(L, worker, g->python, said, sizeof(said));
		if (!strncmp(msg, WORKER_NAME ": ", strlen(WORKER_NAME ": ")))
			msg += strlen(WORKER_NAME ": ");
		if (rc == 0 && g->type[0] && strcmp(g->type, said) != 0) {
			spk_say("%s:%d:%d: actor group %s: type: %s, but %s is @spoke.actor(\"%s\")",
				L->job->file, g->python_line, g->python_column, g->name, g->type,
				g->python, said);
			bad++;
		} else if (rc == 0 && (!said[0] || strlen(said) >= sizeof(g->type))) {
			spk_say("%s:%d:%d: actor group %s: %s --type %s said '%.64s', not a type name",
				L->job->file, g->python_line, g->python_column, g->name, worker,
				g->python, said);
			bad++;
		} else if (rc == 0) {
			snprintf(g->type, sizeof(g->type), "%s", said);
		} else if (!g->type[0]) {
			/* The type is needed; with one given, the worker checks it. */
			spk_say("%s:%d:%d: actor group %s: %s", L->job->file, g->python_line,
				g->python_column, g->name, msg[0] ? msg : "spoke-worker-python failed");
			bad++;
		}
	}
	return bad ? -1 : 0;
}

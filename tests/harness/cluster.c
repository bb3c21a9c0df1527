/* cluster.c - starting and stopping a loopback Spoke cluster for tests. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"

const char *cluster_path(char *out, size_t cap, const char *rel)
{
	const char *build = getenv("SPOKE_BUILDDIR");

	snprintf(out, cap, "%s/%s", build ? build : ".", rel);
	return out;
}

/* fork + exec with stderr into log; dies with us. */
static pid_t start(char *const argv[], const char *log)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	execv(argv[0], argv);
	_exit(127);
}

static int wait_file(const char *path, int ms)
{
	struct stat st;

	for (int i = 0; i < ms / 10; i++) {
		if (stat(path, &st) == 0 && st.st_size >= 0)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

int cluster_start(struct cluster *cl)
{
	char hub[512], addr_file[128], log[128];
	FILE *f;

	memset(cl, 0, sizeof(*cl));
	snprintf(cl->dir, sizeof(cl->dir), "/tmp/spoke-test.XXXXXX");
	if (!mkdtemp(cl->dir))
		return -errno;
	snprintf(cl->token_file, sizeof(cl->token_file), "%s/token", cl->dir);
	snprintf(addr_file, sizeof(addr_file), "%s/hub.addr", cl->dir);
	snprintf(log, sizeof(log), "%s/hub.log", cl->dir);
	/* $SPOKE_TEST_ADDR puts the cluster on another address (the RDMA tests
	 * use the rxe device's); agents and workers follow the hub's. */
	const char *addr = getenv("SPOKE_TEST_ADDR");
	char listen[80];

	snprintf(listen, sizeof(listen), "%s:0", addr && *addr ? addr : "127.0.0.1");
	char *argv[] = { (char *)cluster_path(hub, sizeof(hub), "spoke-hub"), "--listen", listen,
			 "--address-file", addr_file, "--token-file", cl->token_file, NULL };
	cl->hub = start(argv, log);
	if (cl->hub < 0 || wait_file(addr_file, 5000) < 0) {
		fprintf(stderr, "cluster: the hub did not start; see %s\n", log);
		return -ETIMEDOUT;
	}
	f = fopen(addr_file, "r");
	if (!f || !fgets(cl->hub_addr, sizeof(cl->hub_addr), f)) {
		if (f)
			fclose(f);
		return -EIO;
	}
	fclose(f);
	cl->hub_addr[strcspn(cl->hub_addr, "\n")] = '\0';
	setenv("SPOKE_HUB", cl->hub_addr, 1);
	setenv("SPOKE_TOKEN_FILE", cl->token_file, 1);
	return 0;
}

int cluster_add_agent(struct cluster *cl, const char *node, const char *gpus)
{
	char agent[512], modules[1200], m1[512], m2[512], ready[128], log[128];
	int i = cl->n_agents;

	if (i == CLUSTER_MAX_AGENTS)
		return -ENOSPC;
	snprintf(modules, sizeof(modules), "%s:%s",
		 cluster_path(m1, sizeof(m1), "tests/harness/.libs/testactor.so"),
		 cluster_path(m2, sizeof(m2), "examples/.libs/hello.so"));
	snprintf(ready, sizeof(ready), "%s/%s.ready", cl->dir, node);
	snprintf(log, sizeof(log), "%s/agent-%s.log", cl->dir, node);
	/* $SPOKE_TEST_ADVERTISE: the address the agent gives for its workers. */
	const char *adv = getenv("SPOKE_TEST_ADVERTISE");
	char *argv[] = { (char *)cluster_path(agent, sizeof(agent), "spoke-agent"), "--hub",
			 cl->hub_addr, "--token-file", cl->token_file, "--node", (char *)node,
			 "--gpus", (char *)gpus, "--module", modules, "--ready-file", ready,
			 adv ? "--advertise" : NULL, (char *)adv, NULL };
	cl->agents[i] = start(argv, log);
	if (cl->agents[i] < 0 || wait_file(ready, 5000) < 0) {
		fprintf(stderr, "cluster: agent %s did not register; see %s\n", node, log);
		return -ETIMEDOUT;
	}
	snprintf(cl->nodes[i], sizeof(cl->nodes[i]), "%s", node);
	cl->n_agents++;
	return 0;
}

int cluster_client(struct cluster *cl, spoke_client **c)
{
	spoke_client_opts o = { .hub = cl->hub_addr, .timeout_ms = 5000, .poll_us = -1 };

	return spoke_client_open(c, &o);
}

long cluster_proc_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long kib = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			kib = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

int cluster_children(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], state;
		int ppid;
		FILE *f;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%*d (%*[^)]) %c %d", &state, &ppid) == 2 && ppid == parent &&
		    state != 'Z')
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

int cluster_workers(const struct cluster *cl)
{
	int n = 0;

	for (int i = 0; i < cl->n_agents; i++)
		n += cluster_children(cl->agents[i]);
	return n;
}

int cluster_alive(pid_t pid)
{
	char path[64], state = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%*d %*s %c", &state) != 1)
		state = '?';
	fclose(f);
	return state != 'Z' && state != 'X';
}

static void remove_dir(const char *dir)
{
	char cmd[128];

	if (getenv("SPOKE_TEST_KEEP")) {
		fprintf(stderr, "cluster: logs kept in %s\n", dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cluster: could not remove %s\n", dir);
}

void cluster_stop(struct cluster *cl)
{
	for (int i = 0; i < cl->n_agents; i++)
		if (cl->agents[i] > 0) {
			kill(cl->agents[i], SIGTERM);
			waitpid(cl->agents[i], NULL, 0);
		}
	if (cl->hub > 0) {
		kill(cl->hub, SIGTERM);
		waitpid(cl->hub, NULL, 0);
	}
	if (cl->dir[0])
		remove_dir(cl->dir);
}

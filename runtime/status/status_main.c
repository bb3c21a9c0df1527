/* status_main.c - spoke-status: a running job at a glance.
 *
 * Asks the job's hub for STATUS (nodes, actors with their call figures,
 * tickets, uptime) and prints it as text, JSON or Prometheus' text format,
 * once or every few seconds (--watch).  The hub is found the way a
 * driver finds it ($SPOKE_HUB and $SPOKE_TOKEN or $SPOKE_TOKEN_FILE: inside
 * the job, `spoke-launch --shell`), or from the job's log directory
 * (--log-dir: its hub.addr and token files, which spoke-launch writes and
 * which only the job's user can read), or from a Slurm job id (--job: the
 * log directory spoke-logs/NAME-JOBID under the current directory or the
 * job's working directory).  Only a holder of the job's token gets an
 * answer: the hub refuses everyone else at the handshake.
 *
 * Exit status: 0, 1 when the hub cannot be reached or refused, 2 on bad
 * usage. */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "client_priv.h"
#include "errmsg.h"
#include "file.h"
#include "log.h"
#include "proto.h"
#include "status.h"

enum format { TEXT, JSON, PROMETHEUS };

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: spoke-status [OPTION]...\n"
		"Shows a running Spoke job: its nodes (GPUs used and free), its actors (type,\n"
		"node, GPUs, state, incarnation, restarts, calls, errors, p50/p99 latency per\n"
		"method), its gang tickets and its hub's uptime.\n"
		"\n"
		"Which job (the first that applies):\n"
		"  -d, --log-dir DIR      the job's log directory (spoke-logs/NAME-JOBID): its\n"
		"                         hub.addr and token files\n"
		"  -j, --job JOBID        a Slurm job's: spoke-logs/*-JOBID under the current\n"
		"                         directory or the job's working directory\n"
		"      (neither)          $SPOKE_HUB and $SPOKE_TOKEN or $SPOKE_TOKEN_FILE, as\n"
		"                         inside the job (its driver, spoke-launch --shell)\n"
		"\n"
		"Output:\n"
		"      --json             one JSON object\n"
		"      --prometheus       Prometheus' text exposition format\n"
		"  -w, --watch[=SECONDS]  again every SECONDS (default 2) until SIGINT or SIGTERM\n"
		"  -o, --output FILE      replace FILE with each output (a new file renamed over\n"
		"                         it, mode 0644: for node_exporter's textfile collector)\n"
		"  -t, --timeout MS       wait this long for the hub (default 10000; 1000 with\n"
		"                         --watch)\n"
		"  -h, --help             this help\n"
		"  -V, --version          the version\n"
		"\n"
		"Exit status: 0; 1 if the hub could not be reached, refused or did not answer;\n"
		"2 on bad usage.  See spoke-status(1).\n");
}

/* The first line of a small file into out. */
static int read_line(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	int rc = 0;

	if (!f)
		return spk_fail(-errno, "%s: %s", path, strerror(errno));
	if (!fgets(out, (int)cap, f))
		rc = spk_fail(SPOKE_EINVAL, "%s: empty", path);
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return rc;
}

/* The job's hub from its log directory: *hub (hub.addr) and
 * $SPOKE_TOKEN_FILE (its token file, read by the client). */
static int from_log_dir(const char *dir, char *hub, size_t cap)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/hub.addr", dir);
	if (access(dir, X_OK) != 0)
		return spk_fail(-errno, "log directory %s: %s", dir, strerror(errno));
	if (read_line(path, hub, cap) < 0) {
		spk_fail(SPOKE_ENOHUB, "log directory %s has no hub address (%s): is the job "
			 "running?", dir, spoke_errmsg());
		return SPOKE_ENOHUB;
	}
	snprintf(path, sizeof(path), "%s/token", dir);
	unsetenv("SPOKE_TOKEN");
	setenv("SPOKE_TOKEN_FILE", path, 1);
	return 0;
}

/* The directory spoke-logs/NAME-JOBID under base, into dir: 1 if found. */
static int find_in(const char *base, const char *job, char *dir, size_t cap)
{
	char pattern[PATH_MAX];
	glob_t g;
	int found = 0;

	snprintf(pattern, sizeof(pattern), "%s/spoke-logs/*-%s", base, job);
	if (glob(pattern, GLOB_ONLYDIR, NULL, &g) == 0) {
		snprintf(dir, cap, "%s", g.gl_pathv[g.gl_pathc - 1]);
		found = 1;
	}
	globfree(&g);
	return found;
}

/* The Slurm job's working directory (scontrol), into out; 1 if known. */
static int job_workdir(const char *job, char *out, size_t cap)
{
	char cmd[128], line[8192], *p;
	FILE *f;
	int found = 0;

	snprintf(cmd, sizeof(cmd), "scontrol -o show job %s 2>/dev/null", job);
	f = popen(cmd, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, " WorkDir="))) {
			p += strlen(" WorkDir=");
			p[strcspn(p, " \n")] = '\0';
			snprintf(out, cap, "%s", p);
			found = 1;
		}
	pclose(f);
	return found;
}

static int from_job(const char *job, char *hub, size_t cap)
{
	char dir[PATH_MAX], work[PATH_MAX];

	if (!*job || strspn(job, "0123456789_") != strlen(job))
		return spk_fail(SPOKE_EINVAL, "--job '%s': want a Slurm job id (digits)", job);
	if (!find_in(".", job, dir, sizeof(dir)) &&
	    !(job_workdir(job, work, sizeof(work)) && find_in(work, job, dir, sizeof(dir))))
		return spk_fail(SPOKE_ENOHUB, "no log directory spoke-logs/*-%s here or in the "
				"job's working directory: name it with --log-dir", job);
	return from_log_dir(dir, hub, cap);
}

static int print(FILE *f, enum format fmt, const struct spk_status *s)
{
	switch (fmt) {
	case JSON: return spk_status_print_json(f, s);
	case PROMETHEUS: return spk_status_print_prometheus(f, s);
	default: return spk_status_print_text(f, s);
	}
}

/* One round: ask, print (to stdout, or into a new file renamed over
 * output).  0, or a negative code with why in spoke_errmsg(). */
static int round_once(spoke_client *c, enum format fmt, const char *output, int timeout_ms,
		      bool clear)
{
	struct spk_status *s = NULL;
	uint8_t *raw = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *mem;
	int rc = spk_client_status(c, &s, &raw, timeout_ms);

	if (rc < 0)
		return rc;
	mem = open_memstream(&text, &len);
	if (!mem) {
		rc = spk_fail(-ENOMEM, "out of memory");
		goto out;
	}
	rc = print(mem, fmt, s);
	if (fclose(mem) != 0 && rc == 0)
		rc = spk_fail(-ENOMEM, "out of memory");
	if (rc < 0)
		goto out;
	if (output) {
		rc = spk_file_replace(output, text, len, 0644);
		if (rc < 0)
			spk_fail(rc, "cannot write %s: %s", output, strerror(-rc));
	} else {
		if (clear)
			fputs("\033[H\033[2J", stdout);
		fwrite(text, 1, len, stdout);
		fflush(stdout);
	}
out:
	free(text);
	spk_status_free(s);
	free(raw);
	return rc;
}

/* Sleeps up to seconds, waking at once for a signal (within 100 ms). */
static void nap(double seconds)
{
	struct timespec slice = { 0, 100 * 1000 * 1000 };

	for (double left = seconds; left > 0 && !stop_signal; left -= 0.1)
		nanosleep(&slice, NULL);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log-dir", required_argument, NULL, 'd' },
		{ "job", required_argument, NULL, 'j' },
		{ "json", no_argument, NULL, 'J' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "output", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *log_dir = NULL, *job = NULL, *output = NULL;
	char hub[SPK_ADDR_MAX + 8] = "";
	spoke_client_opts copts = { NULL, NULL, 0, -1 };
	enum format fmt = TEXT;
	double every = 0;
	long timeout_ms = 0, v;
	spoke_client *c = NULL;
	struct sigaction sa;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":d:j:w::o:t:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': log_dir = optarg; break;
		case 'j': job = optarg; break;
		case 'J': fmt = JSON; break;
		case 'P': fmt = PROMETHEUS; break;
		case 'w':
			every = 2;
			if (optarg && spk_parse_num(optarg, 1, 86400, &v) < 0)
				return spk_usage_error("--watch", optarg);
			if (optarg)
				every = (double)v;
			break;
		case 'o': output = optarg; break;
		case 't':
			if (spk_parse_num(optarg, 1, INT_MAX, &timeout_ms) < 0)
				return spk_usage_error("--timeout", optarg);
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("spoke-status %s\n", spoke_version()); return 0;
		default: return spk_bad_option(argv, opt);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "spoke-status: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	spk_log_init("status", SPK_LOG_ERROR);
	rc = log_dir ? from_log_dir(log_dir, hub, sizeof(hub))
		     : job ? from_job(job, hub, sizeof(hub)) : 0;
	if (rc == SPOKE_EINVAL) {
		fprintf(stderr, "spoke-status: %s\n", spoke_errmsg());
		return 2;
	}
	if (rc < 0)
		goto fail;
	if (hub[0])
		copts.hub = hub;
	copts.timeout_ms = (int)(timeout_ms ? timeout_ms : every > 0 ? 1000 : 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a nap ends at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = spoke_client_open(&c, &copts);
	if (rc < 0)
		goto fail;
	do {
		rc = round_once(c, fmt, output, 0, every > 0 && !output && isatty(1) && fmt == TEXT);
		if (rc == SPOKE_ETIMEDOUT && every > 0 && !stop_signal) {
			fprintf(stderr, "spoke-status: %s\n", spoke_errmsg());
			rc = 0;
		}
		if (rc < 0)
			break;
		if (every > 0)
			nap(every);
	} while (every > 0 && !stop_signal);
	spoke_client_close(c);
	if (rc == 0 || stop_signal)
		return 0;
fail:
	fprintf(stderr, "spoke-status: %s%s\n",
		spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc),
		rc == SPOKE_ENOHUB && !log_dir && !job
			? " (not inside a job: name one with --log-dir DIR or --job JOBID)" : "");
	return 1;
}

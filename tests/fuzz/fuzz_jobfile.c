/* fuzz_jobfile.c - spoke-launch's job file parser (launcher/jobfile.c:
 * job_parse, from memory).
 *
 * Input: the YAML text.  Properties: the parser returns 0 or -1, and -1
 * with at least one message; every field it filled is within its limits
 * and NUL-terminated (a read past one is an ASan error). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jobfile.h"

static struct job job; /* large: not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	int rc;

	err[0] = '\0';
	rc = job_parse((const char *)data, size, "fuzz.yaml", &job, err, sizeof(err));
	FZ_CHECK(rc == 0 || rc == -1);
	FZ_CHECK(strlen(err) < sizeof(err));
	if (rc < 0) {
		FZ_CHECK(err[0] != '\0');
		return 0;
	}
	FZ_CHECK(job.n_env <= JOB_MAX_ENV && job.n_groups <= JOB_MAX_GROUPS);
	FZ_CHECK(job.n_modules <= JOB_MAX_MODULES && job.driver_argc <= JOB_MAX_ARGV);
	FZ_CHECK(job.gang_k >= 1);
	FZ_CHECK(strlen(job.name) < sizeof(job.name));
	for (size_t i = 0; i < job.n_groups; i++)
		FZ_CHECK(strlen(job.groups[i].name) < sizeof(job.groups[i].name));
	for (size_t i = 0; i < job.driver_argc; i++)
		FZ_CHECK(strlen(job.driver_argv[i]) < JOB_STR_MAX);
	return 0;
}

static void seeds(void)
{
	static const char *const files[][2] = {
		{ "local", "name: demo\n"
			   "timeouts:\n  agents: 30\n  spawn: 500ms\n  shutdown: 2m\n"
			   "env:\n  HF_HOME: /scratch/hf\n"
			   "actors:\n  - name: hello\n    type: Hello\n    module: ./hello.so\n"
			   "    count: 2\n    args: \"Hello\"\n"
			   "modules: [./hello.so]\n"
			   "driver: ./driver --steps 10\n" },
		{ "gang", "gang: 2x8:2\nhub:\n  port: 0\n"
			  "actors:\n  - name: worker\n    type: Llm\n    program: ./server\n"
			  "    per_node: 4\n    gpus: 2\n"
			  "driver: [./driver, --steps, \"10\"]\n" },
		{ "shell", "name: x\nactors: []\n" },
		{ "python", "actors:\n  - name: dec\n    python: llm.decoder:Decoder\n"
			    "    count: 2\n  - {name: t, type: T, python: \"m:C\"}\n"
			    "driver: ./driver.py\n" },
		{ "mistakes", "gang: 0x8\nactors:\n  - name: a/b\n    count: -1\n    bogus: 1\n" },
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		fz_seed(files[i][0], files[i][1], strlen(files[i][1]));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-jobfile", seeds);
	return 0;
}

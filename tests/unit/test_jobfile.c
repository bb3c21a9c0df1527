/* test_jobfile.c - the job file of spoke-launch (launcher/jobfile.c).
 *
 * Every refused file is checked for the exact FILE:LINE:COLUMN of the
 * error and for the words that say what is wrong.  Truncated and mutated
 * files are parsed from heap copies of exactly their own size, so that a
 * read past the end is an AddressSanitizer error, not a silent pass. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../launcher/jobfile.h"

/* Under UBSan, make undefined behaviour fail the test, not just print. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

static struct job job; /* large: not on the stack */
static char err[2048];

/* A job with every key.  Lines are numbered for the tests below. */
static const char full[] = "# every key of a job file\n"        /* 1 */
			   "name: demo\n"                        /* 2 */
			   "gang: 2x8:2\n"                       /* 3 */
			   "hub:\n"                              /* 4 */
			   "  port: 7000\n"                      /* 5 */
			   "timeouts:\n"                         /* 6 */
			   "  agents: 45\n"                      /* 7 */
			   "  spawn: \"1500ms\"\n"               /* 8 */
			   "  shutdown: 2m\n"                    /* 9 */
			   "env:\n"                              /* 10 */
			   "  HF_HOME: /scratch/hf\n"            /* 11 */
			   "  EMPTY: \"\"\n"                     /* 12 */
			   "actors:\n"                           /* 13 */
			   "  - name: worker\n"                  /* 14 */
			   "    type: Hello\n"                   /* 15 */
			   "    module: ./hello.so\n"            /* 16 */
			   "    per_node: 2\n"                   /* 17 */
			   "    gpus: 2\n"                       /* 18 */
			   "    args: \"Hello\"\n"               /* 19 */
			   "  - name: big.one\n"                 /* 20 */
			   "    type: Big\n"                     /* 21 */
			   "    program: ./server\n"             /* 22 */
			   "    per_node: 1\n"                   /* 23 */
			   "    args: ''\n"                      /* 24 */
			   "  - name: task_1\n"                  /* 25 */
			   "    type: TaskActor\n"               /* 26 */
			   "    module: ./task.so\n"             /* 27 */
			   "    count: 3\n"                      /* 28 */
			   "    gpus: 0\n"                       /* 29 */
			   "driver: ./driver --steps 10 'a b'\n"; /* 30 */

/* One good actor group; a test appends keys to it (they start on line 5). */
#define GROUP                                                                        \
	"actors:\n"                                                                  \
	"  - name: w\n"                                                              \
	"    type: W\n"                                                              \
	"    module: ./w.so\n"

static int parse_as(const char *name, const char *text)
{
	strcpy(err, "(no error written)");
	return job_parse(text, strlen(text), name, &job, err, sizeof(err));
}

static int parse(const char *text)
{
	return parse_as("job.yaml", text);
}

static void accepted_at(int line, const char *text)
{
	ck_assert_msg(parse(text) == 0, "line %d: refused: %s\n--- for:\n%s", line, err, text);
}

/* text is refused with an error that starts with at ("job.yaml:L:C: ")
 * and holds says, on one line. */
static void refused_at(int line, const char *text, const char *at, const char *says)
{
	ck_assert_msg(parse(text) == -1, "line %d: accepted:\n%s", line, text);
	ck_assert_msg(!strncmp(err, at, strlen(at)), "line %d: want '%s...', got '%s'", line, at,
		      err);
	ck_assert_msg(strstr(err, says), "line %d: want '%s' in '%s'", line, says, err);
	ck_assert_msg(!strchr(err, '\n'), "line %d: not one line: '%s'", line, err);
}

#define ACCEPTED(text) accepted_at(__LINE__, text)
#define REFUSED(text, at, says) refused_at(__LINE__, text, at, says)

/* A heap copy of exactly n bytes (one for n == 0, never read). */
static char *dup_exact(const char *src, size_t n)
{
	char *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, src, n);
	return p;
}

/* err is one line or more, each "job.yaml:LINE:COLUMN: message" with LINE
 * in 1..max_line. */
static void check_error_form(const char *e, int max_line, const char *input)
{
	char one[sizeof(err)];

	for (const char *end; *e; e = *end ? end + 1 : end) {
		int line = 0, column = 0, used = 0;

		end = e + strcspn(e, "\n");
		snprintf(one, sizeof(one), "%.*s", (int)(end - e), e);
		ck_assert_msg(sscanf(one, "job.yaml:%d:%d: %n", &line, &column, &used) == 2 &&
				      used > 0,
			      "bad error form '%s' for:\n%s", one, input);
		ck_assert_msg(line >= 1 && line <= max_line && column >= 1,
			      "position out of range: '%s'", one);
		ck_assert_msg(one[used] != '\0', "empty message: '%s'", one);
	}
}

static int count_lines(const char *s, size_t n)
{
	int lines = 1;

	for (size_t i = 0; i < n; i++)
		lines += s[i] == '\n';
	return lines;
}

/* ---- good files ---- */

START_TEST(full_job_with_every_key)
{
	ck_assert_msg(parse(full) == 0, "%s", err);
	ck_assert_str_eq(job.file, "job.yaml");
	ck_assert_str_eq(job.name, "demo");
	ck_assert(job.has_gang);
	ck_assert_uint_eq(job.gang_nodes, 2);
	ck_assert_uint_eq(job.gang_gpus, 8);
	ck_assert_uint_eq(job.gang_k, 2);
	ck_assert_uint_eq(job.hub_port, 7000);
	ck_assert_uint_eq(job.timeout_agents_ms, 45000);
	ck_assert_uint_eq(job.timeout_spawn_ms, 1500);
	ck_assert_uint_eq(job.timeout_shutdown_ms, 120000);

	ck_assert_uint_eq(job.n_env, 2);
	ck_assert_str_eq(job.env[0].name, "HF_HOME");
	ck_assert_str_eq(job.env[0].value, "/scratch/hf");
	ck_assert_str_eq(job.env[1].name, "EMPTY");
	ck_assert_str_eq(job.env[1].value, "");

	ck_assert_uint_eq(job.n_groups, 3);
	ck_assert_str_eq(job.groups[0].name, "worker");
	ck_assert_str_eq(job.groups[0].type, "Hello");
	ck_assert_str_eq(job.groups[0].module, "./hello.so");
	ck_assert_str_eq(job.groups[0].program, "");
	ck_assert_uint_eq(job.groups[0].per_node, 2);
	ck_assert_uint_eq(job.groups[0].count, 0);
	ck_assert_uint_eq(job.groups[0].gpus, 2);
	ck_assert(job.groups[0].gpus_set);
	ck_assert(job.groups[0].has_args);
	ck_assert_str_eq(job.groups[0].args, "Hello");
	ck_assert_int_eq(job.groups[0].line, 14);
	ck_assert_int_eq(job.groups[0].column, 5);

	ck_assert_str_eq(job.groups[1].name, "big.one");
	ck_assert_str_eq(job.groups[1].module, "");
	ck_assert_str_eq(job.groups[1].program, "./server");
	ck_assert_uint_eq(job.groups[1].per_node, 1);
	ck_assert_uint_eq(job.groups[1].gpus, 2); /* the gang's k */
	ck_assert(!job.groups[1].gpus_set);
	ck_assert(job.groups[1].has_args);
	ck_assert_str_eq(job.groups[1].args, "");
	ck_assert_int_eq(job.groups[1].line, 20);

	ck_assert_str_eq(job.groups[2].name, "task_1");
	ck_assert_str_eq(job.groups[2].type, "TaskActor");
	ck_assert_uint_eq(job.groups[2].per_node, 0);
	ck_assert_uint_eq(job.groups[2].count, 3);
	ck_assert_uint_eq(job.groups[2].gpus, 0);
	ck_assert(job.groups[2].gpus_set);
	ck_assert(!job.groups[2].has_args);
	ck_assert_int_eq(job.groups[2].line, 25);

	ck_assert_uint_eq(job.driver_argc, 4);
	ck_assert_str_eq(job.driver_argv[0], "./driver");
	ck_assert_str_eq(job.driver_argv[1], "--steps");
	ck_assert_str_eq(job.driver_argv[2], "10");
	ck_assert_str_eq(job.driver_argv[3], "a b");
}
END_TEST

START_TEST(defaults)
{
	ck_assert_msg(parse_as("jobs/my-job.v2.yaml", "actors:\n  - {name: a, type: A, module: ./a.so}\n") == 0,
		      "%s", err);
	ck_assert_str_eq(job.file, "jobs/my-job.v2.yaml");
	ck_assert_str_eq(job.name, "my-job.v2");
	ck_assert(!job.has_gang);
	ck_assert_uint_eq(job.gang_k, 1);
	ck_assert_uint_eq(job.hub_port, 0);
	ck_assert_uint_eq(job.timeout_agents_ms, 30000);
	ck_assert_uint_eq(job.timeout_spawn_ms, 30000);
	ck_assert_uint_eq(job.timeout_shutdown_ms, 5000);
	ck_assert_uint_eq(job.n_env, 0);
	ck_assert_uint_eq(job.driver_argc, 0);
	ck_assert_uint_eq(job.n_groups, 1);
	ck_assert_uint_eq(job.groups[0].count, 1); /* neither per_node nor count */
	ck_assert_uint_eq(job.groups[0].per_node, 0);
	ck_assert_uint_eq(job.groups[0].gpus, 0); /* no gang */
	ck_assert(!job.groups[0].gpus_set);
	ck_assert(!job.groups[0].has_args);
	ck_assert_int_eq(job.groups[0].line, 2);
	ck_assert_int_eq(job.groups[0].column, 5);

	/* An empty mapping and empty sections are a job with no actors. */
	ck_assert_msg(parse_as("run.yml", "{}") == 0, "%s", err);
	ck_assert_str_eq(job.name, "run");
	ck_assert_uint_eq(job.n_groups, 0);
	ck_assert_msg(parse("hub:\ntimeouts:\nenv:\nactors:\n") == 0, "%s", err);
	ck_assert_str_eq(job.name, "job");
	ck_assert_uint_eq(job.timeout_spawn_ms, 30000);

	/* The default name is made a valid job name; no extension keeps it all. */
	ck_assert_int_eq(parse_as("/x/bad name!.yaml", "{}"), 0);
	ck_assert_str_eq(job.name, "bad_name_");
	ck_assert_int_eq(parse_as("plain", "{}"), 0);
	ck_assert_str_eq(job.name, "plain");

	/* gpus defaults to the gang's k for per_node and count groups alike. */
	ck_assert_msg(parse("gang: 1x8:4\n"
			    "actors:\n"
			    "  - {name: a, type: A, module: ./a.so, per_node: 1}\n"
			    "  - {name: b, type: B, program: ./b}\n") == 0,
		      "%s", err);
	ck_assert_uint_eq(job.groups[0].gpus, 4);
	ck_assert_uint_eq(job.groups[1].gpus, 4);
	ck_assert_uint_eq(job.groups[1].count, 1);
	ck_assert_uint_eq(job.gang_nodes, 1);
	ck_assert_uint_eq(job.gang_k, 4);
}
END_TEST

START_TEST(load_from_file)
{
	char path[] = "/tmp/spoke-jobXXXXXX.yaml", want[256];
	const char *base, *body = strstr(full, "gang:"); /* no name: the file's */
	FILE *f;
	int fd = mkstemps(path, 5);

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(body, 1, strlen(body), f), strlen(body));
	fclose(f);
	base = strrchr(path, '/') + 1;
	snprintf(want, sizeof(want), "%.*s", (int)(strlen(base) - 5), base);
	ck_assert_msg(job_load(path, &job, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(job.file, path);
	ck_assert_str_eq(job.name, want);
	ck_assert_uint_eq(job.n_groups, 3);
	ck_assert_uint_eq(job.driver_argc, 4);
	unlink(path);

	snprintf(want, sizeof(want), "%s: cannot read: %s", path, strerror(ENOENT));
	ck_assert_int_eq(job_load(path, &job, err, sizeof(err)), -1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(job_load("/tmp", &job, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");
}
END_TEST

/* ---- errors ---- */

START_TEST(modules_list)
{
	static const char *text = "modules: [./a.so, /abs/b.so]\n";
	static const char *bad = "modules: {x: 1}\n";

	ck_assert_msg(job_parse(text, strlen(text), "job.yaml", &job, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_uint_eq(job.n_modules, 2);
	ck_assert_str_eq(job.modules[0], "./a.so");
	ck_assert_str_eq(job.modules[1], "/abs/b.so");
	ck_assert_int_eq(job_parse(bad, strlen(bad), "job.yaml", &job, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "job.yaml:1:10: modules must be a list of paths"), "%s", err);
}
END_TEST

START_TEST(unknown_keys)
{
	REFUSED("name: x\n"
		"gang: 1x8\n"
		"actors:\n"
		"    - name: worker\n"
		"      type: Hello\n"
		"      module: ./m.so\n"
		"      gpu: 1\n",
		"job.yaml:7:7: ",
		"unknown key 'gpu' in an actor group (expected one of: name, type, module, program, python, per_node, count, gpus, args, restart)");
	REFUSED("name: x\ngpus: 8\n", "job.yaml:2:1: ",
		"unknown key 'gpus' at the top level (expected one of: name, gang, hub, timeouts, env, actors, modules, driver)");
	REFUSED("hub:\n  prot: 1\n", "job.yaml:2:3: ",
		"unknown key 'prot' in hub (expected one of: port)");
	REFUSED("timeouts:\n  init: 5\n", "job.yaml:2:3: ",
		"unknown key 'init' in timeouts (expected one of: agents, spawn, shutdown)");
	REFUSED("hub:\n  [1]: 2\n", "job.yaml:2:3: ",
		"a key in hub must be a string, got a list (expected one of: port)");
	REFUSED("<<: {name: a}\n", "job.yaml:1:1: ", "unknown key '<<' at the top level");
}
END_TEST

START_TEST(duplicate_keys)
{
	REFUSED("name: a\ngang: 1x8\nname: b\n", "job.yaml:3:1: ",
		"duplicate key 'name' at the top level (first at line 1, column 1");
	REFUSED(GROUP "    type: X\n", "job.yaml:5:5: ",
		"duplicate key 'type' in an actor group (first at line 3, column 5");
	REFUSED("env:\n  A: 1\n  B: 2\n  A: 3\n", "job.yaml:4:3: ",
		"duplicate key 'A' in env (first at line 2, column 3");
	REFUSED("timeouts: {spawn: 1, spawn: 2}\n", "job.yaml:1:22: ",
		"duplicate key 'spawn' in timeouts");
}
END_TEST

START_TEST(wrong_types)
{
	REFUSED("actors: {a: 1}\n", "job.yaml:1:9: ",
		"actors must be a list of actor groups ('- name: ...'), got a mapping");
	REFUSED("actors:\n  - worker\n", "job.yaml:2:5: ",
		"an actor group must be a mapping (name:, type:, module: or program:, ...), got 'worker'");
	REFUSED("actors: &a [*a]\n", "job.yaml:1:9: ", "an actor group must be a mapping");
	REFUSED("env: [A]\n", "job.yaml:1:6: ", "env must be a mapping of NAME: value, got a list");
	REFUSED("env:\n  A: [1]\n", "job.yaml:2:6: ", "an env value must be a string");
	REFUSED("env:\n  A:\n", "job.yaml:2:5: ", "an env value has no value");
	REFUSED("env:\n  1A: x\n", "job.yaml:2:3: ", "env name '1A' is not a variable name");
	REFUSED("env:\n  'A B': x\n", "job.yaml:2:3: ", "env name 'A B' is not a variable name");
	REFUSED("hub: 5\n", "job.yaml:1:6: ", "hub must be a mapping like 'port: 0', got '5'");
	REFUSED("timeouts: [1]\n", "job.yaml:1:11: ", "timeouts must be a mapping");
	REFUSED("name: [a]\n", "job.yaml:1:7: ", "name must be a job name like demo, got a list");
	REFUSED("name:\n", "job.yaml:1:6: ", "name has no value");
	REFUSED("name: 'a b'\n", "job.yaml:1:7: ",
		"job name 'a b' must be letters, digits, '-', '_' or '.'");
	REFUSED("driver: {a: 1}\n", "job.yaml:1:9: ",
		"driver must be a command line or a list of words, got a mapping");
	REFUSED("driver: [./d, [x]]\n", "job.yaml:1:15: ", "a word of driver must be a string");
	REFUSED(GROUP "    args: {a: 1}\n", "job.yaml:5:11: ", "args must be a string");
	REFUSED("actors:\n  - name: w\n    type: [T]\n    module: ./m.so\n", "job.yaml:3:11: ",
		"type must be an actor type like Hello, got a list");
	REFUSED("actors:\n  - name: w\n    type: ''\n    module: ./m.so\n", "job.yaml:3:11: ",
		"type has no value");
	REFUSED(GROUP "    type2: x\n", "job.yaml:5:5: ", "unknown key 'type2'");
	REFUSED("actors:\n  - name: w\n    type: \"a\\0b\"\n    module: ./m.so\n", "job.yaml:3:11: ",
		"type contains a NUL character");
}
END_TEST

START_TEST(numbers)
{
	static const struct {
		const char *value, *says;
	} bad[] = {
		{ "-1", "count must be a non-negative integer, got '-1'" },
		{ "1.5", "count must be a non-negative integer, got '1.5'" },
		{ "0x10", "count must be a non-negative integer, got '0x10'" },
		{ "abc", "count must be a non-negative integer, got 'abc'" },
		{ "''", "count must be a non-negative integer, got ''" },
		{ "", "count must be a non-negative integer, got no value" },
		{ "[1]", "count must be a non-negative integer, got a list" },
		{ "0", "count must be at least 1, got 0" },
		{ "100001", "count must be at most 100000, got '100001'" },
		{ "99999999999999999999999", "count must be at most 100000" },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), GROUP "    count: %s\n", bad[i].value);
		REFUSED(text, bad[i].value[0] ? "job.yaml:5:12: " : "job.yaml:5:11: ", bad[i].says);
	}
	ACCEPTED(GROUP "    count: 100000\n");
	ck_assert_uint_eq(job.groups[0].count, 100000);
	ACCEPTED(GROUP "    count: \"7\"\n");
	ck_assert_uint_eq(job.groups[0].count, 7);

	REFUSED("gang: 1x8\n" GROUP "    per_node: 0\n", "job.yaml:6:15: ",
		"per_node must be at least 1, got 0");
	REFUSED(GROUP "    gpus: 1025\n", "job.yaml:5:11: ", "gpus must be at most 1024, got '1025'");
	REFUSED(GROUP "    gpus: -0\n", "job.yaml:5:11: ", "gpus must be a non-negative integer");
	ACCEPTED(GROUP "    gpus: 0\n");
	ck_assert(job.groups[0].gpus_set);

	REFUSED("hub:\n  port: 65536\n", "job.yaml:2:9: ", "hub port must be at most 65535, got '65536'");
	REFUSED("hub:\n  port: http\n", "job.yaml:2:9: ",
		"hub port must be a non-negative integer, got 'http'");
	ACCEPTED("hub:\n  port: 65535\n");
	ck_assert_uint_eq(job.hub_port, 65535);
	ACCEPTED("hub: {port: 0}\n");
	ck_assert_uint_eq(job.hub_port, 0);
}
END_TEST

START_TEST(timeouts)
{
	static const struct {
		const char *value;
		unsigned ms;
	} ok[] = {
		{ "45", 45000 },   { "\"45\"", 45000 }, { "30s", 30000 },   { "500ms", 500 },
		{ "2m", 120000 },  { "1ms", 1 },        { "86400", 86400000 }, { "1440m", 86400000 },
	};
	static const struct {
		const char *value, *says;
	} bad[] = {
		{ "0", "timeouts.spawn must be more than 0, got '0'" },
		{ "0ms", "timeouts.spawn must be more than 0, got '0ms'" },
		{ "86401", "timeouts.spawn must be at most a day (86400 s), got '86401'" },
		{ "1441m", "at most a day" },
		{ "5h", "timeouts.spawn must be seconds like 30, or a duration like 500ms, 30s or 2m, got '5h'" },
		{ "-1", "got '-1'" },
		{ "1.5", "got '1.5'" },
		{ "30 s", "got '30 s'" },
		{ "s", "got 's'" },
		{ "30sec", "got '30sec'" },
		{ "[30]", "got a list" },
		{ "''", "got ''" },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "timeouts:\n  spawn: %s\n", ok[i].value);
		ACCEPTED(text);
		ck_assert_uint_eq(job.timeout_spawn_ms, ok[i].ms);
		ck_assert_uint_eq(job.timeout_agents_ms, 30000);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "timeouts:\n  spawn: %s\n", bad[i].value);
		REFUSED(text, "job.yaml:2:10: ", bad[i].says);
	}
	REFUSED("timeouts:\n  shutdown: 0s\n", "job.yaml:2:13: ", "timeouts.shutdown must be more than 0");
	REFUSED("timeouts:\n  agents:\n", "job.yaml:2:10: ", "timeouts.agents must be seconds");
}
END_TEST

START_TEST(restarts)
{
	ACCEPTED(GROUP);
	ck_assert_uint_eq(job.groups[0].max_restarts, 0);
	ck_assert(!job.groups[0].restart_end_job);
	ACCEPTED(GROUP "    restart: {max: 3, backoff_ms: 100}\n");
	ck_assert_uint_eq(job.groups[0].max_restarts, 3);
	ck_assert_uint_eq(job.groups[0].restart_backoff_ms, 100);
	ck_assert(!job.groups[0].restart_end_job);
	ACCEPTED(GROUP "    restart:\n      max: 65535\n      backoff_ms: 600000\n"
		       "      end_job: true\n");
	ck_assert_uint_eq(job.groups[0].max_restarts, 65535);
	ck_assert_uint_eq(job.groups[0].restart_backoff_ms, 600000);
	ck_assert(job.groups[0].restart_end_job);
	REFUSED(GROUP "    restart: 3\n", "job.yaml:5:14: ",
		"restart must be a mapping like '{max: 3, backoff_ms: 100}', got '3'");
	REFUSED(GROUP "    restart: {max: 65536}\n", "job.yaml:5:20: ",
		"restart.max must be at most 65535, got '65536'");
	REFUSED(GROUP "    restart: {max: -1}\n", "job.yaml:5:20: ",
		"restart.max must be a non-negative integer, got '-1'");
	REFUSED(GROUP "    restart: {backoff_ms: 600001}\n", "job.yaml:5:27: ",
		"restart.backoff_ms must be at most 600000");
	REFUSED(GROUP "    restart: {max: 1, end_job: yes}\n", "job.yaml:5:32: ",
		"restart.end_job must be true or false, got 'yes'");
	REFUSED(GROUP "    restart: {maxx: 1}\n", "job.yaml:5:15: ",
		"unknown key 'maxx' in restart");
	REFUSED(GROUP "    restart: {max: 1, max: 2}\n", "job.yaml:5:23: ", "duplicate key 'max'");
}
END_TEST

START_TEST(gangs)
{
	static const struct {
		const char *value;
		unsigned n, g, k;
	} ok[] = {
		{ "2x8", 2, 8, 1 }, { "1X1", 1, 1, 1 }, { "3x2:2", 3, 2, 2 },
		{ "16x8:4", 16, 8, 4 }, { "\"2x8\"", 2, 8, 1 }, { "100000x1024:1024", 100000, 1024, 1024 },
	};
	static const struct {
		const char *value, *says;
	} bad[] = {
		{ "2y8", "gang must be NODESxGPUS[:GPUS_PER_ACTOR] like 2x8 or 2x8:2, got '2y8'" },
		{ "0x8", "gang '0x8': a gang needs at least 1 node" },
		{ "1x0", "gang '1x0': a gang needs at least 1 GPU per node" },
		{ "2x8:0", "gang '2x8:0': an actor needs at least 1 GPU" },
		{ "2x8:3", "gang '2x8:3': 8 GPUs per node do not divide into actors of 3 GPUs" },
		{ "100001x8", "at most 100000 nodes" },
		{ "1x1025", "at most 1024 GPUs per node" },
		{ "99999999999999999999999x8", "at most 100000 nodes" },
		{ "'2x8:'", "got '2x8:'" },
		{ "2x", "got '2x'" },
		{ "x8", "got 'x8'" },
		{ "2x8x", "got '2x8x'" },
		{ "-1x8", "got '-1x8'" },
		{ "'2 x8'", "got '2 x8'" },
		{ "8", "got '8'" },
		{ "''", "got ''" },
		{ "", "got no value" },
		{ "[2, 8]", "got a list" },
	};
	char text[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "name: x\ngang: %s\n", ok[i].value);
		ACCEPTED(text);
		ck_assert(job.has_gang);
		ck_assert_uint_eq(job.gang_nodes, ok[i].n);
		ck_assert_uint_eq(job.gang_gpus, ok[i].g);
		ck_assert_uint_eq(job.gang_k, ok[i].k);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "name: x\ngang: %s\n", bad[i].value);
		REFUSED(text, bad[i].value[0] ? "job.yaml:2:7: " : "job.yaml:2:6: ", bad[i].says);
	}
}
END_TEST

START_TEST(group_rules)
{
	char text[512], name[64];

	REFUSED("name: x\n"
		"gang: 1x8\n"
		"actors:\n"
		"  - name: a\n"
		"    type: A\n"
		"    module: ./a.so\n"
		"    per_node: 1\n"
		"  # the second group\n"
		"  - name: worker\n"
		"    module: ./w.so\n",
		"job.yaml:9:5: ", "actor group 'worker' has no type");
	REFUSED("actors:\n  - type: T\n    module: ./m.so\n", "job.yaml:2:5: ",
		"actor group 1 has no name (expected name:");
	REFUSED("actors:\n  - name: w\n    type: T\n", "job.yaml:2:5: ",
		"actor group 'w' has none of module, program and python (expected one of them");
	REFUSED(GROUP "    program: ./p\n", "job.yaml:5:5: ",
		"actor group 'w' has more than one of module, program and python (expected one of them");
	REFUSED("actors:\n  - program: ./p\n    module: ./m.so\n    name: w\n    type: T\n",
		"job.yaml:3:5: ",
		"actor group 1 has more than one of module, program and python");
	/* python: a class in Python; its type may come from its decorator. */
	REFUSED(GROUP "    python: pkg.mod:C\n", "job.yaml:5:5: ",
		"actor group 'w' has more than one of module, program and python");
	ACCEPTED("actors:\n  - name: w\n    python: pkg.mod:Decoder\n");
	ck_assert_str_eq(job.groups[0].python, "pkg.mod:Decoder");
	ck_assert_str_eq(job.groups[0].type, "");
	ck_assert_int_eq(job.groups[0].python_line, 3);
	ck_assert_int_eq(job.groups[0].python_column, 13);
	ACCEPTED("actors:\n  - {name: w, type: T, python: _a.b_2.c}\n");
	ck_assert_str_eq(job.groups[0].type, "T");
	for (unsigned k = 0; k < 7; k++) {
		static const char *const bad[] = { "pkg mod", "pkg.:C", ".pkg", "pkg:C:D", "pkg:",
						   "2pkg:C", "pkg/mod.py" };

		snprintf(text, sizeof(text), "actors:\n  - name: w\n    python: '%s'\n", bad[k]);
		REFUSED(text, "job.yaml:3:13: ",
			"python must be package.module:Class, a module found from the job file's "
			"directory or $PYTHONPATH and its @spoke.actor class, got");
	}
	REFUSED("actors:\n  - name: w\n    python: ''\n", "job.yaml:3:13: ",
		"python has no value (expected package.module:Class");
	REFUSED("gang: 1x8\n" GROUP "    per_node: 1\n    count: 2\n", "job.yaml:7:5: ",
		"actor group 'w' has both per_node and count (expected one of them");
	REFUSED(GROUP "    per_node: 2\n", "job.yaml:5:5: ",
		"actor group 'w' has per_node but the job has no gang (expected gang: NxG[:k], or count:");
	/* The gang may come after the actors. */
	ACCEPTED(GROUP "    per_node: 2\ngang: 1x2\n");
	ck_assert_uint_eq(job.groups[0].per_node, 2);
	ck_assert_uint_eq(job.groups[0].count, 0);
	ck_assert_uint_eq(job.groups[0].gpus, 1);

	/* Names: the character set, 40 characters, unique. */
	REFUSED("actors:\n  - name: a/b\n    type: T\n    module: ./m.so\n", "job.yaml:2:11: ",
		"actor group name 'a/b' must be letters, digits, '-', '_' or '.', at most 40 characters");
	memset(name, 'n', 40);
	name[40] = '\0';
	snprintf(text, sizeof(text), "actors:\n  - {name: %s, type: T, module: ./m.so}\n", name);
	ACCEPTED(text);
	ck_assert_str_eq(job.groups[0].name, name);
	snprintf(text, sizeof(text), "actors:\n  - {name: %sn, type: T, module: ./m.so}\n", name);
	REFUSED(text, "job.yaml:2:12: ", "at most 40 characters");
	REFUSED("actors:\n"
		"  - {name: w, type: T, module: ./m.so}\n"
		"  - {name: v, type: T, module: ./m.so}\n"
		"  - {name: w, type: U, module: ./m.so}\n",
		"job.yaml:4:12: ", "actor group name 'w' is used twice (first at line 2");
}
END_TEST

START_TEST(gpus_per_node_overflow)
{
	const char *two = "name: x\n"
			  "gang: 1x8\n"
			  "actors:\n"
			  "  - name: worker\n"
			  "    type: W\n"
			  "    module: ./w.so\n"
			  "    per_node: 8\n"
			  "  - name: big\n"
			  "    type: B\n"
			  "    module: ./b.so\n"
			  "    per_node: 1\n"
			  "    gpus: %u\n";
	char text[512];

	snprintf(text, sizeof(text), two, 2u);
	ck_assert_int_eq(parse(text), -1);
	ck_assert_str_eq(err, "job.yaml:8:5: actor groups need 10 GPUs per node, the gang gives 8 "
			      "(worker: 8 x 1 GPU, big: 1 x 2 GPUs)");
	snprintf(text, sizeof(text), two, 0u);
	ACCEPTED(text); /* exactly 8 */
	ck_assert_uint_eq(job.groups[1].gpus, 0);

	/* count groups take no per-node share; the third group overflows. */
	REFUSED("gang: 2x8\n"
		"actors:\n"
		"  - {name: a, type: A, module: ./a.so, per_node: 4}\n"
		"  - {name: c, type: C, module: ./c.so, count: 5, gpus: 8}\n"
		"  - {name: z, type: Z, module: ./z.so, per_node: 8, gpus: 0}\n"
		"  - {name: b, type: B, module: ./b.so, per_node: 3, gpus: 2}\n"
		"  - {name: d, type: D, module: ./d.so, per_node: 1}\n",
		"job.yaml:6:5: ",
		"actor groups need 10 GPUs per node, the gang gives 8 (a: 4 x 1 GPU, z: 8 x 0 GPUs, b: 3 x 2 GPUs)");
	/* With k = 2 the default share is 2 GPUs per actor. */
	REFUSED("gang: 1x4:2\n"
		"actors:\n"
		"  - {name: a, type: A, module: ./a.so, per_node: 3}\n",
		"job.yaml:3:5: ", "need 6 GPUs per node, the gang gives 4 (a: 3 x 2 GPUs)");
}
END_TEST

START_TEST(limits)
{
	static char text[300000];
	char word[JOB_STR_MAX + 1];
	size_t used;

	/* 32 groups, 64 env entries, 64 driver words, strings of 1023 bytes. */
	used = (size_t)snprintf(text, sizeof(text), "actors:\n");
	for (int i = 0; i < JOB_MAX_GROUPS; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
					 "  - {name: g%d, type: T, module: ./m.so}\n", i);
	ACCEPTED(text);
	ck_assert_uint_eq(job.n_groups, JOB_MAX_GROUPS);
	snprintf(text + used, sizeof(text) - used, "  - {name: extra, type: T, module: ./m.so}\n");
	REFUSED(text, "job.yaml:34:5: ", "too many actor groups (at most 32)");

	used = (size_t)snprintf(text, sizeof(text), "env:\n");
	for (int i = 0; i < JOB_MAX_ENV; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, "  V%d: x\n", i);
	ACCEPTED(text);
	ck_assert_uint_eq(job.n_env, JOB_MAX_ENV);
	snprintf(text + used, sizeof(text) - used, "  EXTRA: y\n");
	REFUSED(text, "job.yaml:66:3: ", "too many env entries (at most 64)");

	used = (size_t)snprintf(text, sizeof(text), "driver: ./d");
	for (int i = 1; i < JOB_MAX_ARGV; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, " w%d", i);
	ACCEPTED(text);
	ck_assert_uint_eq(job.driver_argc, JOB_MAX_ARGV);
	ck_assert_str_eq(job.driver_argv[JOB_MAX_ARGV - 1], "w63");
	snprintf(text + used, sizeof(text) - used, " extra");
	REFUSED(text, "job.yaml:1:9: ", "driver has too many words (at most 64)");
	used = (size_t)snprintf(text, sizeof(text), "driver:\n");
	for (int i = 0; i <= JOB_MAX_ARGV; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, "  - w%d\n", i);
	REFUSED(text, "job.yaml:66:5: ", "driver has too many words (at most 64)");

	memset(word, 'm', JOB_STR_MAX - 1);
	word[JOB_STR_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "actors:\n  - {name: w, type: T, module: %s}\n", word);
	ACCEPTED(text);
	ck_assert_str_eq(job.groups[0].module, word);
	snprintf(text, sizeof(text), "actors:\n  - {name: w, type: T, module: %sm}\n", word);
	REFUSED(text, "job.yaml:2:32: ", "module is too long (1024 bytes, at most 1023)");
	snprintf(text, sizeof(text), "actors:\n  - {name: w, type: T, program: p, args: %sm}\n",
		 word);
	REFUSED(text, "job.yaml:2:42: ", "args is too long (1024 bytes, at most 1023)");
	snprintf(text, sizeof(text), "env:\n  A: %sm\n", word);
	REFUSED(text, "job.yaml:2:6: ", "an env value is too long (1024 bytes, at most 1023)");
	snprintf(text, sizeof(text), "driver: ./d %sm\n", word);
	REFUSED(text, "job.yaml:1:9: ", "a word of driver is too long (1024 bytes, at most 1023)");
	snprintf(text, sizeof(text), "driver: [./d, %sm]\n", word);
	REFUSED(text, "job.yaml:1:15: ", "a word of driver is too long (1024 bytes, at most 1023)");
	snprintf(text, sizeof(text), "driver: ./d %s\n", word);
	ACCEPTED(text);
	ck_assert_str_eq(job.driver_argv[1], word);

	word[64] = '\0';
	snprintf(text, sizeof(text), "actors:\n  - {name: w, type: %s, module: m}\n", word);
	REFUSED(text, "job.yaml:2:21: ", "type is too long (64 bytes, at most 63)");
	word[63] = '\0';
	snprintf(text, sizeof(text), "actors:\n  - {name: w, type: %s, module: m}\n", word);
	ACCEPTED(text);
	ck_assert_str_eq(job.groups[0].type, word);
	memset(word, 'E', 128);
	word[128] = '\0';
	snprintf(text, sizeof(text), "env:\n  %s: x\n", word);
	REFUSED(text, "job.yaml:2:3: ", "an env name is too long (128 bytes, at most 127)");
	memset(word, 'j', 64);
	word[64] = '\0';
	snprintf(text, sizeof(text), "name: %s\n", word);
	REFUSED(text, "job.yaml:1:7: ", "name is too long (64 bytes, at most 63)");
}
END_TEST

START_TEST(driver_words)
{
	/* The YAML value is: ./drv --msg 'hello world' "a \"q\" b" c\ d '' x"y z"w
	 *                    "back\\slash" "keep\n" 'it'\''s'  */
	ACCEPTED("driver: ./drv --msg 'hello world' \"a \\\"q\\\" b\" c\\ d '' x\"y z\"w "
		 "\"back\\\\slash\" \"keep\\n\" 'it'\\''s'\n");
	ck_assert_uint_eq(job.driver_argc, 10);
	ck_assert_str_eq(job.driver_argv[0], "./drv");
	ck_assert_str_eq(job.driver_argv[1], "--msg");
	ck_assert_str_eq(job.driver_argv[2], "hello world");
	ck_assert_str_eq(job.driver_argv[3], "a \"q\" b");
	ck_assert_str_eq(job.driver_argv[4], "c d");
	ck_assert_str_eq(job.driver_argv[5], "");
	ck_assert_str_eq(job.driver_argv[6], "xy zw");
	ck_assert_str_eq(job.driver_argv[7], "back\\slash");
	ck_assert_str_eq(job.driver_argv[8], "keep\\n");
	ck_assert_str_eq(job.driver_argv[9], "it's");

	/* Blanks of any kind and number separate; a YAML block works too. */
	ACCEPTED("driver: |\n  ./drv\t--a   b\n  c\n");
	ck_assert_uint_eq(job.driver_argc, 4);
	ck_assert_str_eq(job.driver_argv[3], "c");

	/* A list is taken word for word, quotes and all. */
	ACCEPTED("driver: [./driver, --steps, \"10\", \"'a b'\", \"\"]\n");
	ck_assert_uint_eq(job.driver_argc, 5);
	ck_assert_str_eq(job.driver_argv[2], "10");
	ck_assert_str_eq(job.driver_argv[3], "'a b'");
	ck_assert_str_eq(job.driver_argv[4], "");
	ACCEPTED("driver:\n  - ./driver\n  - --x\n");
	ck_assert_uint_eq(job.driver_argc, 2);

	REFUSED("name: x\ndriver: ./drv 'oops\n", "job.yaml:2:9: ",
		"driver has an unterminated ' quote (opened at character 7 of the command line");
	REFUSED("driver: './drv \"oops'\n", "job.yaml:1:9: ", "driver has an unterminated \" quote");
	REFUSED("driver: ./drv \\\n", "job.yaml:1:9: ", "driver ends with a lone backslash");
	REFUSED("driver: \"  \"\n", "job.yaml:1:9: ", "driver is empty (expected a command line");
	REFUSED("driver:\n", "job.yaml:1:8: ", "driver is empty");
	REFUSED("driver: []\n", "job.yaml:1:9: ", "driver is empty");
	REFUSED("driver: \"'' x\"\n", "job.yaml:1:9: ", "driver's program (its first word) is empty");
	REFUSED("driver: [./d, ~]\n", "job.yaml:1:15: ", "a word of driver has no value");
}
END_TEST

/* Every mistake is reported, each on its own line, in the file's order
 * (whole-file checks last); one does not hide the next. */
START_TEST(every_mistake)
{
	static const char text[] = "name: 'a b'\n"          /* 1 */
				   "gang: 2x8:3\n"          /* 2 */
				   "hub:\n"                 /* 3 */
				   "  prot: 1\n"            /* 4 */
				   "timeouts:\n"            /* 5 */
				   "  spawn: soon\n"        /* 6 */
				   "  agents: 0\n"          /* 7 */
				   "env:\n"                 /* 8 */
				   "  1X: a\n"              /* 9 */
				   "actors:\n"              /* 10 */
				   "  - name: w\n"          /* 11 */
				   "    type: W\n"          /* 12 */
				   "    modul: ./w.so\n"    /* 13 */
				   "    count: -1\n"        /* 14 */
				   "  - name: v\n"          /* 15 */
				   "driver: [./d, [x]]\n";  /* 16 */
	static const char *const want[] = {
		"job.yaml:1:7: job name 'a b' must be letters",
		"job.yaml:2:7: gang '2x8:3': 8 GPUs per node do not divide into actors of 3 GPUs",
		"job.yaml:4:3: unknown key 'prot' in hub",
		"job.yaml:6:10: timeouts.spawn must be seconds like 30",
		"job.yaml:7:11: timeouts.agents must be more than 0",
		"job.yaml:9:3: env name '1X' is not a variable name",
		"job.yaml:13:5: unknown key 'modul' in an actor group",
		"job.yaml:14:12: count must be a non-negative integer, got '-1'",
		"job.yaml:11:5: actor group 'w' has none of module, program and python",
		"job.yaml:15:5: actor group 'v' has no type",
		"job.yaml:15:5: actor group 'v' has none of module, program and python",
		"job.yaml:16:15: a word of driver must be a string",
	};
	const char *line = err;
	size_t n = sizeof(want) / sizeof(want[0]);

	ck_assert_int_eq(parse(text), -1);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(line, "mistake %zu of %zu missing in:\n%s", i + 1, n, err);
		ck_assert_msg(!strncmp(line, want[i], strlen(want[i])),
			      "mistake %zu: want '%s...' in:\n%s", i + 1, want[i], err);
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	ck_assert_msg(!line, "more than %zu mistakes:\n%s", n, err);
	check_error_form(err, 16, text);

	/* A mistake in the gang hides no actor group's, and makes none up
	 * (per_node needs a gang: the gang is there, only wrong). */
	REFUSED("gang: 0x8\n" GROUP "    per_node: 2\n", "job.yaml:1:7: ",
		"a gang needs at least 1 node");
	/* What does not fit err is left out whole: the lines that are there
	 * are whole lines. */
	{
		char small[240];

		ck_assert_int_eq(job_parse(text, strlen(text), "job.yaml", &job, small,
					   sizeof(small)), -1);
		ck_assert_msg(!strncmp(small, want[0], strlen(want[0])), "%s", small);
		ck_assert_msg(strchr(small, '\n') && !strncmp(strchr(small, '\n') + 1, want[1],
							      strlen(want[1])), "%s", small);
		ck_assert_msg(!strstr(small, "hub"), "%s", small);
	}
}
END_TEST

START_TEST(yaml_syntax_errors)
{
	REFUSED("name: a\nactors:\n\t- name: x\n", "job.yaml:3:1: ",
		"found character that cannot start any token (expected spaces: YAML indents with spaces, not tabs)");
	REFUSED("name: a\nactors: [x, y\ndriver: ./d\n", "job.yaml:3:7: ",
		"did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 9)");
	REFUSED("name: a\ndriver: \"./d\n", "job.yaml:3:1: ", "found unexpected end of stream");
	REFUSED("name: a\n  gang: 1x8\n", "job.yaml:2:7: ", "mapping values are not allowed");
	REFUSED("name: \xff\n", "job.yaml:1:7: ", "invalid leading UTF-8 octet (byte 0xFF");
	REFUSED("name: a\n---\nname: b\n", "job.yaml:3:1: ",
		"a second YAML document (expected one document per job file)");
	ACCEPTED("---\nname: a\n...\n");
	ck_assert_str_eq(job.name, "a");
	/* A syntax error in a second document is still an error. */
	REFUSED("name: a\n---\n[\n", "job.yaml:4:1: ", "did not find expected node content");
}
END_TEST

START_TEST(empty_and_not_a_mapping)
{
	REFUSED("", "job.yaml:1:1: ",
		"the job file is empty (expected a mapping with keys such as gang:, actors:, driver:)");
	REFUSED("# nothing here\n\n", "job.yaml:1:1: ", "the job file is empty");
	REFUSED("---\n", "job.yaml:1:1: ", "the job file is empty");
	REFUSED("~\n", "job.yaml:1:1: ", "the job file is empty");
	REFUSED("- a\n- b\n", "job.yaml:1:1: ",
		"the job file must be a mapping of keys (name:, gang:, actors:, ...), got a list");
	REFUSED("\n\nhello\n", "job.yaml:3:1: ", "must be a mapping of keys (name:, gang:, actors:, ...), got 'hello'");

	/* No text at all, and a name that stands for no file. */
	ck_assert_int_eq(job_parse(NULL, 0, NULL, &job, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "<memory>:1:1: the job file is empty (expected a mapping with keys "
			      "such as gang:, actors:, driver:)");
}
END_TEST

START_TEST(error_buffer_limits)
{
	char *small = malloc(12);

	/* Cut to fit, still NUL-terminated; a read or write past is an ASan error. */
	ck_assert_ptr_nonnull(small);
	ck_assert_int_eq(job_parse("gpus: 1", 7, "job.yaml", &job, small, 12), -1);
	ck_assert_str_eq(small, "job.yaml:1:");
	free(small);
	ck_assert_int_eq(job_parse("gpus: 1", 7, "job.yaml", &job, NULL, 0), -1);
	/* Control characters from the file never break the line. */
	REFUSED("\"a\\nb\": 1\n", "job.yaml:1:1: ", "unknown key 'a?b'");
	/* Long values are cut short in the message. */
	REFUSED("gang: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		"job.yaml:1:7: ", "xxxxxxx...'");
}
END_TEST

/* Every prefix of the full job parses to success or to one error line at
 * a position inside the prefix; nothing crashes or reads past the end. */
START_TEST(truncations)
{
	size_t n = strlen(full), ok = 0;

	for (size_t len = 0; len <= n; len++) {
		char *copy = dup_exact(full, len);
		int rc;

		strcpy(err, "(no error written)");
		rc = job_parse(copy, len, "job.yaml", &job, err, sizeof(err));
		if (rc == 0)
			ok++;
		else
			check_error_form(err, count_lines(full, len) + 1, full);
		free(copy);
	}
	ck_assert_uint_gt(ok, 0);   /* some prefixes are whole jobs... */
	ck_assert_uint_lt(ok, n);   /* ...and many are not */
	ck_assert_int_eq(job_parse(full, n, "job.yaml", &job, err, sizeof(err)), 0);
}
END_TEST

/* Each byte of the full job replaced by characters that matter to YAML. */
START_TEST(mutations)
{
	static const char swaps[] = { ':', '-', ' ', '\t', '\n', '"', '\'', '[', '{', '#', '&',
				      '*', '0', 'x', '\\', '\0', (char)0xff };
	size_t n = strlen(full), refused = 0;

	for (size_t at = 0; at < n; at++) {
		for (size_t s = 0; s < sizeof(swaps); s++) {
			char *copy = dup_exact(full, n);

			copy[at] = swaps[s];
			strcpy(err, "(no error written)");
			if (job_parse(copy, n, "job.yaml", &job, err, sizeof(err)) < 0) {
				check_error_form(err, count_lines(full, n) + 1, full);
				refused++;
			}
			free(copy);
		}
	}
	ck_assert_uint_gt(refused, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jobfile");
	TCase *tc = tcase_create("jobfile");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, full_job_with_every_key);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, load_from_file);
	tcase_add_test(tc, unknown_keys);
	tcase_add_test(tc, modules_list);
	tcase_add_test(tc, duplicate_keys);
	tcase_add_test(tc, wrong_types);
	tcase_add_test(tc, numbers);
	tcase_add_test(tc, timeouts);
	tcase_add_test(tc, restarts);
	tcase_add_test(tc, gangs);
	tcase_add_test(tc, group_rules);
	tcase_add_test(tc, gpus_per_node_overflow);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, driver_words);
	tcase_add_test(tc, every_mistake);
	tcase_add_test(tc, yaml_syntax_errors);
	tcase_add_test(tc, empty_and_not_a_mapping);
	tcase_add_test(tc, error_buffer_limits);
	tcase_add_test(tc, truncations);
	tcase_add_test(tc, mutations);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* jobfile.c - reads and checks the job file of spoke-launch (libyaml).
 *
 * The file is loaded with libyaml's document API, then walked by hand:
 * every node keeps its start mark, so each error names the line and the
 * column of the value (or key) at fault.  A mistake does not stop the walk:
 * the value at fault is left out and the walk goes on with the next key or
 * item, so that every mistake is reported, one line each.  Checks that need
 * the whole file (per_node without a gang, GPUs per node) run after the
 * walk, on what was read without a mistake. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include <spoke/client.h>

#include "gangspec.h"
#include "jobfile.h"

#define FILE_MAX (1024 * 1024)    /* bytes; a job file is a page or two */
#define GROUP_NAME_MAX 40         /* actors are named NAME-RANK */
#define MAX_NODES GANG_MAX_NODES  /* a gang's limits: gangspec.h, as the SPANK plugin */
#define MAX_GPUS GANG_MAX_GPUS_PER_NODE
#define MAX_COUNT 100000          /* actors of one group */
#define TIMEOUT_MAX_MS 86400000u  /* one day */
#define SHOW_MAX 60               /* bytes of a value quoted in an error */
#define DURATION_HINT "seconds like 30, or a duration like 500ms, 30s or 2m"

struct pos {
	int line, column; /* 1-based; line 0: not set */
};

/* Where an actor group's keys are (line 0: absent); name is set only by a
 * good name, as earlier names are compared with it. */
struct group_marks {
	struct pos name, name_key, type_key, per_node, count, module, program, python;
};

struct ctx {
	const char *file;
	char *err;
	size_t cap;
	yaml_document_t *doc;
	struct job *job;
	struct group_marks marks[JOB_MAX_GROUPS];
	int mistakes;      /* reported so far */
	size_t used;       /* bytes of err written */
	bool bad_gang;     /* gang: was there, with a mistake */
	char show[SHOW_MAX + 8];   /* quote()'s result */
	char label[sizeof(((struct job_group *)0)->name) + 32]; /* group_label()'s result */
};

static const char *const top_keys[] = { "name", "gang", "hub", "timeouts", "env", "actors",
					"modules", "driver", NULL };
enum { TOP_NAME, TOP_GANG, TOP_HUB, TOP_TIMEOUTS, TOP_ENV, TOP_ACTORS, TOP_MODULES, TOP_DRIVER };

static const char *const hub_keys[] = { "port", NULL };

static const char *const timeout_keys[] = { "agents", "spawn", "shutdown", NULL };

static const char *const group_keys[] = { "name", "type", "module", "program", "python",
					  "per_node", "count", "gpus", "args", "restart", NULL };
enum { G_NAME, G_TYPE, G_MODULE, G_PROGRAM, G_PYTHON, G_PER_NODE, G_COUNT, G_GPUS, G_ARGS,
       G_RESTART };

static const char *const restart_keys[] = { "max", "backoff_ms", "end_job", NULL };
enum { R_MAX, R_BACKOFF_MS, R_END_JOB };
#define CODE_KEYS "module: for an actor module, program: for a program that links the actor, python: for a Python class"
#define PYTHON_HINT "package.module:Class, a module found from the job file's directory or $PYTHONPATH and its @spoke.actor class"

/* ---- errors ---- */

static int say(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(struct ctx *c, struct pos p, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes one line into err: control characters (from the file's text or
 * name) become '?'.  Returns -1. */
static int say(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (!err || !cap)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

/* Adds a mistake to err: the first one cut to fit, each later one on a
 * line of its own if it fits whole.  Returns -1. */
static int vfail_at(struct ctx *c, struct pos p, const char *fmt, va_list ap)
{
	char msg[2048], line[2048 + JOB_STR_MAX + 32];
	size_t len;

	c->mistakes++;
	if (!c->err || !c->cap)
		return -1;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	say(line, sizeof(line), "%s:%d:%d: %s", c->file, p.line, p.column, msg);
	len = strlen(line);
	if (c->mistakes == 1) {
		snprintf(c->err, c->cap, "%s", line);
		c->used = strlen(c->err);
	} else if (c->used + 1 + len < c->cap) {
		c->err[c->used++] = '\n';
		memcpy(c->err + c->used, line, len + 1);
		c->used += len;
	}
	return -1;
}

static int fail_at(struct ctx *c, struct pos p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, p, fmt, ap);
	va_end(ap);
	return -1;
}

static struct pos pos_of(const yaml_node_t *n)
{
	return (struct pos){ (int)n->start_mark.line + 1, (int)n->start_mark.column + 1 };
}

static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, pos_of(n), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- nodes ---- */

static yaml_node_t *node(struct ctx *c, int index)
{
	return yaml_document_get_node(c->doc, index);
}

static const char *text(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static size_t length(const yaml_node_t *n)
{
	return n->data.scalar.length;
}

static bool is_scalar(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE;
}

/* An unquoted empty value, ~ or null. */
static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (!is_scalar(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (length(n) == strlen(nulls[i]) && !memcmp(text(n), nulls[i], length(n)))
			return true;
	return false;
}

static bool text_is(const yaml_node_t *n, const char *s)
{
	return length(n) == strlen(s) && !memcmp(text(n), s, length(n));
}

/* The node for an error message: 'its text' (cut short) or its kind. */
static const char *quote(struct ctx *c, const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (!is_scalar(n))
		return "nothing";
	if (is_null(n))
		return "no value";
	if (length(n) > SHOW_MAX)
		snprintf(c->show, sizeof(c->show), "'%.*s...'", SHOW_MAX, text(n));
	else
		snprintf(c->show, sizeof(c->show), "'%.*s'", (int)length(n), text(n));
	return c->show;
}

/* "one of: a, b, c" */
static void key_list(const char *const keys[], char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; keys[i] && used < cap; i++)
		used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? ", " : "", keys[i]);
}

/* Checks the key of a mapping's pair: a string, not seen before in the
 * mapping and, with a table, one of keys[] (its index into *which). */
static int check_key(struct ctx *c, const yaml_node_t *map, const yaml_node_pair_t *pair,
		     const char *where, const char *const keys[], int *which)
{
	const yaml_node_t *key = node(c, pair->key);
	char expected[256] = "";

	if (keys)
		key_list(keys, expected, sizeof(expected));
	if (!is_scalar(key)) {
		if (keys)
			return fail(c, key, "a key %s must be a string, got %s (expected one of: %s)",
				    where, quote(c, key), expected);
		return fail(c, key, "a key %s must be a string, got %s", where, quote(c, key));
	}
	for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
		const yaml_node_t *seen = node(c, p->key);

		if (is_scalar(seen) && length(seen) == length(key) &&
		    !memcmp(text(seen), text(key), length(key)))
			return fail(c, key,
				    "duplicate key %s %s (first at line %d, column %d; expected each key once)",
				    quote(c, key), where, pos_of(seen).line, pos_of(seen).column);
	}
	if (!keys)
		return 0;
	for (int i = 0; keys[i]; i++) {
		if (text_is(key, keys[i])) {
			*which = i;
			return 0;
		}
	}
	return fail(c, key, "unknown key %s %s (expected one of: %s)", quote(c, key), where,
		    expected);
}

/* A scalar into out (cap bytes with its NUL).  Empty is refused when
 * nonempty; what names the value, expect describes a good one. */
static int get_string(struct ctx *c, const yaml_node_t *n, const char *what, const char *expect,
		      bool nonempty, char *out, size_t cap)
{
	if (!is_scalar(n))
		return fail(c, n, "%s must be %s, got %s", what, expect, quote(c, n));
	if (is_null(n) || (nonempty && length(n) == 0))
		return fail(c, n, "%s has no value (expected %s)", what, expect);
	if (memchr(text(n), '\0', length(n)))
		return fail(c, n, "%s contains a NUL character (expected %s)", what, expect);
	if (length(n) >= cap)
		return fail(c, n, "%s is too long (%zu bytes, at most %zu)", what, length(n), cap - 1);
	memcpy(out, text(n), length(n));
	out[length(n)] = '\0';
	return 0;
}

/* Leading decimal digits of s[0..len) into *v (capped far above any
 * limit); the count of digits, 0 when there are none. */
static size_t digits(const char *s, size_t len, unsigned long long *v)
{
	size_t i = 0;

	*v = 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		if (*v < 1000000000000ULL)
			*v = *v * 10 + (unsigned)(s[i] - '0');
	return i;
}

static int get_uint(struct ctx *c, const yaml_node_t *n, const char *what, unsigned min,
		    unsigned max, unsigned *out)
{
	unsigned long long v;

	if (!is_scalar(n) || is_null(n) || length(n) == 0 ||
	    digits(text(n), length(n), &v) != length(n))
		return fail(c, n, "%s must be a non-negative integer, got %s", what, quote(c, n));
	if (v < min)
		return fail(c, n, "%s must be at least %u, got %llu", what, min, v);
	if (v > max)
		return fail(c, n, "%s must be at most %u, got %s", what, max, quote(c, n));
	*out = (unsigned)v;
	return 0;
}

/* 30 (seconds), "500ms", "30s" or "2m" into milliseconds. */
static int get_timeout(struct ctx *c, const yaml_node_t *n, const char *what, unsigned *ms)
{
	unsigned long long v, scale;
	size_t nd, ul;
	const char *unit;

	if (!is_scalar(n) || is_null(n))
		return fail(c, n, "%s must be " DURATION_HINT ", got %s", what, quote(c, n));
	nd = digits(text(n), length(n), &v);
	unit = text(n) + nd;
	if (nd == 0)
		return fail(c, n, "%s must be " DURATION_HINT ", got %s", what, quote(c, n));
	ul = length(n) - nd;
	if (ul == 0 || (ul == 1 && *unit == 's'))
		scale = 1000;
	else if (ul == 2 && !memcmp(unit, "ms", 2))
		scale = 1;
	else if (ul == 1 && *unit == 'm')
		scale = 60000;
	else
		return fail(c, n, "%s must be " DURATION_HINT ", got %s", what, quote(c, n));
	if (v == 0)
		return fail(c, n, "%s must be more than 0, got %s", what, quote(c, n));
	if (v * scale > TIMEOUT_MAX_MS)
		return fail(c, n, "%s must be at most a day (86400 s), got %s", what, quote(c, n));
	*ms = (unsigned)(v * scale);
	return 0;
}

/* ---- sections ---- */

static int parse_gang(struct ctx *c, const yaml_node_t *n)
{
	struct job *job = c->job;
	struct gangspec_numbers num;
	struct gangspec g;
	unsigned problems;

	if (!is_scalar(n) || is_null(n))
		goto bad;
	problems = gangspec_scan(text(n), length(n), 1, &g, &num);
	if (problems & GANGSPEC_SYNTAX)
		goto bad;
	if (problems & GANGSPEC_NO_NODES)
		return fail(c, n, "gang %s: a gang needs at least 1 node", quote(c, n));
	if (problems & GANGSPEC_TOO_MANY_NODES)
		return fail(c, n, "gang %s: a gang has at most %u nodes", quote(c, n), MAX_NODES);
	if (problems & GANGSPEC_NO_GPUS)
		return fail(c, n, "gang %s: a gang needs at least 1 GPU per node", quote(c, n));
	if (problems & GANGSPEC_TOO_MANY_GPUS)
		return fail(c, n, "gang %s: a gang has at most %u GPUs per node", quote(c, n),
			    MAX_GPUS);
	if (problems & GANGSPEC_NO_ACTOR_GPUS)
		return fail(c, n, "gang %s: an actor needs at least 1 GPU", quote(c, n));
	/* k above the limit is above G too: it does not divide it. */
	if (problems & (GANGSPEC_UNEVEN | GANGSPEC_TOO_MANY_ACTOR_GPUS))
		return fail(c, n,
			    "gang %s: %llu GPUs per node do not divide into actors of %llu GPUs (expected GPUS_PER_ACTOR to divide GPUS)",
			    quote(c, n), num.gpus_per_node, num.gpus_per_actor);
	job->has_gang = true;
	job->gang_nodes = g.nodes;
	job->gang_gpus = g.gpus_per_node;
	job->gang_k = g.gpus_per_actor;
	return 0;
bad:
	return fail(c, n, "gang must be NODESxGPUS[:GPUS_PER_ACTOR] like 2x8 or 2x8:2, got %s",
		    quote(c, n));
}

static bool name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.';
}

/* Letters, digits, '-', '_' and '.', 1 to max bytes. */
static bool good_name(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (; *s; s++)
		if (!name_char(*s))
			return false;
	return true;
}

/* A NAME for the environment: letters, digits and '_', no leading digit. */
static bool good_env_name(const yaml_node_t *n)
{
	const char *s = text(n);

	if (length(n) == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < length(n); i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static int parse_hub(struct ctx *c, const yaml_node_t *n)
{
	int which;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "hub must be a mapping like 'port: 0', got %s", quote(c, n));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
		if (check_key(c, n, p, "in hub", hub_keys, &which) == 0)
			get_uint(c, node(c, p->value), "hub port", 0, 65535, &c->job->hub_port);
	return 0;
}

static int parse_timeouts(struct ctx *c, const yaml_node_t *n)
{
	static const char *const what[] = { "timeouts.agents", "timeouts.spawn",
					    "timeouts.shutdown" };
	struct job *job = c->job;
	unsigned *field[] = { &job->timeout_agents_ms, &job->timeout_spawn_ms,
			      &job->timeout_shutdown_ms };
	int which;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "timeouts must be a mapping like 'spawn: 30s', got %s",
			    quote(c, n));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++)
		if (check_key(c, n, p, "in timeouts", timeout_keys, &which) == 0)
			get_timeout(c, node(c, p->value), what[which], field[which]);
	return 0;
}

static int parse_env(struct ctx *c, const yaml_node_t *n)
{
	struct job *job = c->job;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "env must be a mapping of NAME: value, got %s", quote(c, n));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *key = node(c, p->key);
		struct job_env *e = &job->env[job->n_env];

		if (job->n_env == JOB_MAX_ENV)
			return fail(c, key, "too many env entries (at most %d)", JOB_MAX_ENV);
		if (check_key(c, n, p, "in env", NULL, NULL) < 0)
			continue;
		if (!good_env_name(key)) {
			fail(c, key,
			     "env name %s is not a variable name (expected letters, digits and '_', not starting with a digit)",
			     quote(c, key));
			continue;
		}
		if (get_string(c, key, "an env name", "a variable name", true, e->name,
			       sizeof(e->name)) == 0 &&
		    get_string(c, node(c, p->value), "an env value", "a string (\"\" for an empty one)",
			       false, e->value, sizeof(e->value)) == 0)
			job->n_env++;
	}
	return 0;
}

/* "actor group 'worker'", or "actor group 3" before its name is known. */
static const char *group_label(struct ctx *c, size_t i)
{
	const struct job_group *g = &c->job->groups[i];

	if (g->name[0])
		snprintf(c->label, sizeof(c->label), "actor group '%s'", g->name);
	else
		snprintf(c->label, sizeof(c->label), "actor group %zu", i + 1);
	return c->label;
}

static int group_name(struct ctx *c, const yaml_node_t *n, size_t i)
{
	struct job_group *g = &c->job->groups[i];

	if (get_string(c, n, "an actor group's name", "a name like worker", true, g->name,
		       sizeof(g->name)) < 0)
		return -1;
	if (!good_name(g->name, GROUP_NAME_MAX)) {
		g->name[0] = '\0';
		return fail(c, n,
			    "actor group name %s must be letters, digits, '-', '_' or '.', at most %d characters",
			    quote(c, n), GROUP_NAME_MAX);
	}
	for (size_t j = 0; j < i; j++)
		if (!strcmp(c->job->groups[j].name, g->name))
			return fail(c, n,
				    "actor group name '%s' is used twice (first at line %d; expected unique names)",
				    g->name, c->marks[j].name.line);
	c->marks[i].name = pos_of(n);
	return 0;
}

static bool ident_char(char ch, bool first)
{
	return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (!first && ch >= '0' && ch <= '9');
}

/* "package.module:Class" or "package.module": dotted identifiers. */
static bool python_spec_ok(const char *s)
{
	bool first = true, in_class = false;

	for (; *s; s++) {
		if (ident_char(*s, first)) {
			first = false;
		} else if (first) {
			return false;
		} else if (*s == '.' && !in_class) {
			first = true;
		} else if (*s == ':' && !in_class) {
			first = in_class = true;
		} else {
			return false;
		}
	}
	return !first;
}

/* restart: {max: N, backoff_ms: M, end_job: true|false} */
static int parse_restart(struct ctx *c, const yaml_node_t *n, struct job_group *g)
{
	int which;

	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n, "restart must be a mapping like '{max: 3, backoff_ms: 100}', got %s",
			    quote(c, n));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *v = node(c, p->value);

		if (check_key(c, n, p, "in restart", restart_keys, &which) < 0)
			continue;
		switch (which) {
		case R_MAX:
			get_uint(c, v, "restart.max", 0, SPOKE_MAX_RESTARTS, &g->max_restarts);
			break;
		case R_BACKOFF_MS:
			get_uint(c, v, "restart.backoff_ms", 0, SPOKE_MAX_RESTART_BACKOFF_MS,
				 &g->restart_backoff_ms);
			break;
		case R_END_JOB:
			if (text_is(v, "true"))
				g->restart_end_job = true;
			else if (!text_is(v, "false"))
				fail(c, v, "restart.end_job must be true or false, got %s",
				     quote(c, v));
			break;
		}
	}
	return 0;
}

static int parse_group(struct ctx *c, const yaml_node_t *n, size_t i)
{
	struct job_group *g = &c->job->groups[i];
	struct group_marks *m = &c->marks[i];
	int which;

	if (n->type != YAML_MAPPING_NODE)
		return fail(c, n,
			    "an actor group must be a mapping (name:, type:, module: or program:, ...), got %s",
			    quote(c, n));
	g->line = pos_of(n).line;
	g->column = pos_of(n).column;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *key = node(c, p->key), *v = node(c, p->value);

		if (check_key(c, n, p, "in an actor group", group_keys, &which) < 0)
			continue;
		switch (which) {
		case G_NAME:
			m->name_key = pos_of(key);
			group_name(c, v, i);
			break;
		case G_TYPE:
			m->type_key = pos_of(key);
			get_string(c, v, "type", "an actor type like Hello", true, g->type,
				   sizeof(g->type));
			break;
		case G_MODULE:
		case G_PROGRAM:
		case G_PYTHON:
			if (m->module.line || m->program.line || m->python.line) {
				fail(c, key, "%s has more than one of module, program and python "
				     "(expected one of them: " CODE_KEYS ")", group_label(c, i));
			} else if (which == G_PYTHON) {
				m->python = pos_of(key);
				g->python_line = pos_of(v).line;
				g->python_column = pos_of(v).column;
				if (get_string(c, v, "python", PYTHON_HINT, true, g->python,
					       sizeof(g->python)) == 0 &&
				    !python_spec_ok(g->python))
					fail(c, v, "python must be " PYTHON_HINT ", got %s", quote(c, v));
			} else if (which == G_MODULE) {
				m->module = pos_of(key);
				get_string(c, v, "module", "a path like ./hello.so", true, g->module,
					   sizeof(g->module));
			} else {
				m->program = pos_of(key);
				get_string(c, v, "program", "a path like ./server", true, g->program,
					   sizeof(g->program));
			}
			break;
		case G_PER_NODE:
		case G_COUNT:
			if (m->per_node.line || m->count.line) {
				fail(c, key,
				     "%s has both per_node and count (expected one of them: per_node: for actors on each gang node, count: for actors placed wherever they fit)",
				     group_label(c, i));
			} else if (which == G_PER_NODE) {
				m->per_node = pos_of(key);
				get_uint(c, v, "per_node", 1, MAX_GPUS, &g->per_node);
			} else {
				m->count = pos_of(key);
				get_uint(c, v, "count", 1, MAX_COUNT, &g->count);
			}
			break;
		case G_GPUS:
			g->gpus_set = get_uint(c, v, "gpus", 0, MAX_GPUS, &g->gpus) == 0;
			break;
		case G_ARGS:
			get_string(c, v, "args", "a string (\"\" for an empty one)", false, g->args,
				   sizeof(g->args));
			g->has_args = true;
			break;
		case G_RESTART:
			parse_restart(c, v, g);
			break;
		}
	}
	if (!m->name_key.line)
		fail(c, n, "%s has no name (expected name: like worker)", group_label(c, i));
	if (!m->type_key.line && !m->python.line)
		fail(c, n, "%s has no type (expected type: the actor type, like Hello)",
		     group_label(c, i));
	if (!m->module.line && !m->program.line && !m->python.line)
		fail(c, n,
		     "%s has none of module, program and python (expected one of them: module: ./hello.so, program: ./server or python: package.module:Class)",
		     group_label(c, i));
	if (!m->per_node.line && !m->count.line)
		g->count = 1;
	return 0;
}

static int parse_actors(struct ctx *c, const yaml_node_t *n)
{
	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "actors must be a list of actor groups ('- name: ...'), got %s",
			    quote(c, n));
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		if (c->job->n_groups == JOB_MAX_GROUPS)
			return fail(c, node(c, *it), "too many actor groups (at most %d)",
				    JOB_MAX_GROUPS);
		parse_group(c, node(c, *it), c->job->n_groups);
		c->job->n_groups++;
	}
	return 0;
}

/* Appends word[0..len) to the driver's argv. */
static int add_arg(struct ctx *c, const yaml_node_t *n, const char *word, size_t len)
{
	struct job *job = c->job;

	if (job->driver_argc == JOB_MAX_ARGV)
		return fail(c, n, "driver has too many words (at most %d)", JOB_MAX_ARGV);
	if (len >= JOB_STR_MAX)
		return fail(c, n, "a word of driver is too long (%zu bytes, at most %d)", len,
			    JOB_STR_MAX - 1);
	memcpy(job->driver_argv[job->driver_argc], word, len);
	job->driver_argv[job->driver_argc][len] = '\0';
	job->driver_argc++;
	return 0;
}

/* Splits a command line as sh would, without expansions: blanks separate
 * words, '...' keeps everything, "..." keeps everything but \" \\ \$ \`,
 * and outside quotes a backslash keeps the next character. */
static int split_driver(struct ctx *c, const yaml_node_t *n)
{
	const char *s = text(n);
	size_t len = length(n), wl = 0, quote_at = 0;
	char word[JOB_STR_MAX + 1], q = 0;
	bool in_word = false;

	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (q == '\'') {
			if (ch == '\'')
				q = 0;
			else if (wl < JOB_STR_MAX)
				word[wl++] = ch;
			continue;
		}
		if (q == '"') {
			if (ch == '"') {
				q = 0;
				continue;
			}
			if (ch == '\\' && i + 1 < len && strchr("\"\\$`", s[i + 1]))
				ch = s[++i];
			if (wl < JOB_STR_MAX)
				word[wl++] = ch;
			continue;
		}
		if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
			if (in_word && add_arg(c, n, word, wl) < 0)
				return -1;
			in_word = false;
			wl = 0;
			continue;
		}
		in_word = true;
		if (ch == '\'' || ch == '"') {
			q = ch;
			quote_at = i;
			continue;
		}
		if (ch == '\\') {
			if (i + 1 == len)
				return fail(c, n,
					    "driver ends with a lone backslash (expected a character after it)");
			ch = s[++i];
		}
		if (wl < JOB_STR_MAX)
			word[wl++] = ch;
	}
	if (q)
		return fail(c, n,
			    "driver has an unterminated %c quote (opened at character %zu of the command line; expected a closing %c)",
			    q, quote_at + 1, q);
	if (in_word && add_arg(c, n, word, wl) < 0)
		return -1;
	return 0;
}

static int parse_driver(struct ctx *c, const yaml_node_t *n)
{
	struct job *job = c->job;
	int mistakes = c->mistakes;

	if (is_scalar(n) && !is_null(n)) {
		if (memchr(text(n), '\0', length(n)))
			return fail(c, n, "driver contains a NUL character");
		if (split_driver(c, n) < 0)
			return -1;
	} else if (n->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			const yaml_node_t *v = node(c, *it);

			if (job->driver_argc == JOB_MAX_ARGV)
				return fail(c, v, "driver has too many words (at most %d)",
					    JOB_MAX_ARGV);
			if (get_string(c, v, "a word of driver", "a string", false,
				       job->driver_argv[job->driver_argc], JOB_STR_MAX) == 0)
				job->driver_argc++;
		}
	} else if (!is_null(n)) {
		return fail(c, n,
			    "driver must be a command line or a list of words, got %s (leave driver out for a shell)",
			    quote(c, n));
	}
	if (c->mistakes > mistakes)
		return -1;
	if (job->driver_argc == 0)
		return fail(c, n,
			    "driver is empty (expected a command line like ./driver --steps 10, or a list; leave driver out for a shell)");
	if (job->driver_argv[0][0] == '\0')
		return fail(c, n, "driver's program (its first word) is empty");
	return 0;
}

/* modules: a list of actor modules (or one) every agent offers. */
static int parse_modules(struct ctx *c, const yaml_node_t *n)
{
	struct job *job = c->job;

	if (is_scalar(n) && !is_null(n))
		return get_string(c, n, "modules", "a path or a list of paths", false,
				  job->modules[job->n_modules++], JOB_STR_MAX);
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(c, n, "modules must be a list of paths like [./hello.so], got %s",
			    quote(c, n));
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		const yaml_node_t *v = node(c, *it);

		if (job->n_modules == JOB_MAX_MODULES)
			return fail(c, v, "too many modules (at most %d)", JOB_MAX_MODULES);
		if (get_string(c, v, "a module", "a path like ./hello.so", false,
			       job->modules[job->n_modules], JOB_STR_MAX) == 0)
			job->n_modules++;
	}
	return 0;
}

static int parse_top(struct ctx *c, const yaml_node_t *root)
{
	struct job *job = c->job;
	int which;

	if (!root || is_null(root))
		return fail_at(c, (struct pos){ 1, 1 },
			       "the job file is empty (expected a mapping with keys such as gang:, actors:, driver:)");
	if (root->type != YAML_MAPPING_NODE)
		return fail(c, root,
			    "the job file must be a mapping of keys (name:, gang:, actors:, ...), got %s",
			    quote(c, root));
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		const yaml_node_t *v = node(c, p->value);

		if (check_key(c, root, p, "at the top level", top_keys, &which) < 0)
			continue;
		switch (which) {
		case TOP_NAME:
			if (get_string(c, v, "name", "a job name like demo", true, job->name,
				       sizeof(job->name)) == 0 &&
			    !good_name(job->name, sizeof(job->name) - 1))
				fail(c, v,
				     "job name %s must be letters, digits, '-', '_' or '.', at most %zu characters",
				     quote(c, v), sizeof(job->name) - 1);
			break;
		case TOP_GANG:
			c->bad_gang = parse_gang(c, v) < 0;
			break;
		case TOP_HUB:
			parse_hub(c, v);
			break;
		case TOP_TIMEOUTS:
			parse_timeouts(c, v);
			break;
		case TOP_ENV:
			parse_env(c, v);
			break;
		case TOP_ACTORS:
			parse_actors(c, v);
			break;
		case TOP_MODULES:
			parse_modules(c, v);
			break;
		default: /* TOP_DRIVER */
			parse_driver(c, v);
			break;
		}
	}
	return 0;
}

/* Checks that need the whole file: per_node needs a gang, default GPUs,
 * and the per_node groups must fit the gang's GPUs per node. */
static int check_groups(struct ctx *c)
{
	struct job *job = c->job;
	unsigned long total = 0;

	for (size_t i = 0; i < job->n_groups; i++) {
		struct job_group *g = &job->groups[i];

		if (g->per_node && !job->has_gang && !c->bad_gang)
			fail_at(c, c->marks[i].per_node,
				"%s has per_node but the job has no gang (expected gang: NxG[:k], or count: instead of per_node)",
				group_label(c, i));
		if (!g->gpus_set)
			g->gpus = job->has_gang ? job->gang_k : 0;
	}
	if (!job->has_gang)
		return 0;
	for (size_t i = 0; i < job->n_groups; i++) {
		char list[1024];
		size_t used = 0;

		if (!job->groups[i].per_node)
			continue;
		total += (unsigned long)job->groups[i].per_node * job->groups[i].gpus;
		if (total <= job->gang_gpus)
			continue;
		list[0] = '\0';
		for (size_t j = 0; j <= i && used < sizeof(list); j++) {
			const struct job_group *g = &job->groups[j];

			if (g->per_node)
				used += (size_t)snprintf(list + used, sizeof(list) - used,
							 "%s%s: %u x %u GPU%s", used ? ", " : "",
							 g->name, g->per_node, g->gpus,
							 g->gpus == 1 ? "" : "s");
		}
		return fail_at(c, (struct pos){ job->groups[i].line, job->groups[i].column },
			       "actor groups need %lu GPUs per node, the gang gives %u (%s)", total,
			       job->gang_gpus, list);
	}
	return 0;
}

/* ---- YAML ---- */

/* libyaml's own error, at its mark (a reader error has only an offset). */
static int yaml_fail(struct ctx *c, const yaml_parser_t *parser, const char *input, size_t len)
{
	const char *problem = parser->problem ? parser->problem : "invalid YAML";
	struct pos at = { (int)parser->problem_mark.line + 1, (int)parser->problem_mark.column + 1 };

	if (parser->error == YAML_MEMORY_ERROR)
		return fail_at(c, (struct pos){ 1, 1 }, "out of memory reading YAML");
	if (parser->error == YAML_READER_ERROR) {
		at = (struct pos){ 1, 1 };
		for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
			if (input[i] == '\n')
				at = (struct pos){ at.line + 1, 1 };
			else
				at.column++;
		}
		if (parser->problem_value != -1)
			return fail_at(c, at, "%s (byte 0x%02X; expected UTF-8 text)", problem,
				       (unsigned)parser->problem_value & 0xff);
		return fail_at(c, at, "%s (expected UTF-8 text)", problem);
	}
	if (parser->problem_mark.index < len && input[parser->problem_mark.index] == '\t')
		return fail_at(c, at, "%s (expected spaces: YAML indents with spaces, not tabs)",
			       problem);
	if (parser->context && (parser->context_mark.line != parser->problem_mark.line ||
				parser->context_mark.column != parser->problem_mark.column))
		return fail_at(c, at, "%s (%s at line %d, column %d)", problem, parser->context,
			       (int)parser->context_mark.line + 1,
			       (int)parser->context_mark.column + 1);
	if (parser->context)
		return fail_at(c, at, "%s (%s)", problem, parser->context);
	return fail_at(c, at, "%s", problem);
}

/* The file's base name without its extension, made a valid job name. */
static void default_name(struct job *job, const char *file)
{
	const char *base = strrchr(file, '/'), *dot;
	size_t len;

	base = base ? base + 1 : file;
	dot = strrchr(base, '.');
	len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	if (len > sizeof(job->name) - 1)
		len = sizeof(job->name) - 1;
	for (size_t i = 0; i < len; i++)
		job->name[i] = name_char(base[i]) ? base[i] : '_';
	job->name[len] = '\0';
	if (!len)
		strcpy(job->name, "job");
}

int job_parse(const char *text, size_t len, const char *name, struct job *job, char *err,
	      size_t cap)
{
	struct ctx c = { .file = name ? name : "<memory>", .err = err, .cap = cap, .job = job };
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root;
	int rc = -1;

	if (!text) {
		text = "";
		len = 0;
	}
	memset(job, 0, sizeof(*job));
	if (strlen(c.file) >= sizeof(job->file))
		return say(err, cap, "%.100s...: the file name is too long (at most %zu bytes)",
			   c.file, sizeof(job->file) - 1);
	strcpy(job->file, c.file);
	default_name(job, c.file);
	job->gang_k = 1;
	job->timeout_agents_ms = 30000;
	job->timeout_spawn_ms = 30000;
	job->timeout_shutdown_ms = 5000;
	if (!yaml_parser_initialize(&parser))
		return say(err, cap, "%s: out of memory", c.file);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_fail(&c, &parser, text, len);
		goto out_parser;
	}
	c.doc = &doc;
	/* The whole stream is read before any check, so that a syntax error
	 * anywhere comes first; a job file holds one document. */
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_fail(&c, &parser, text, len);
		goto out_doc;
	}
	root = yaml_document_get_root_node(&extra);
	if (root && !is_null(root))
		fail(&c, root, "a second YAML document (expected one document per job file)");
	else if (parse_top(&c, yaml_document_get_root_node(&doc)) == 0)
		check_groups(&c);
	rc = c.mistakes ? -1 : 0;
	yaml_document_delete(&extra);
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	return rc;
}

int job_load(const char *path, struct job *job, char *err, size_t cap)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *bigger;
	size_t len = 0, size = 0, n;
	int rc = -1;

	if (!f)
		return say(err, cap, "%s: cannot read: %s", path, strerror(errno));
	for (;;) {
		if (len == size) {
			size = size ? 2 * size : 4096;
			if (!(bigger = realloc(buf, size))) {
				say(err, cap, "%s: cannot read: %s", path, strerror(ENOMEM));
				goto out_buf;
			}
			buf = bigger;
		}
		n = fread(buf + len, 1, size - len, f);
		len += n;
		if (len > FILE_MAX) {
			say(err, cap, "%s: too large for a job file (more than %d bytes)", path,
			    FILE_MAX);
			goto out_buf;
		}
		if (n == 0) {
			if (ferror(f)) {
				say(err, cap, "%s: cannot read: %s", path, strerror(errno));
				goto out_buf;
			}
			break;
		}
	}
	rc = job_parse(buf, len, path, job, err, cap);
out_buf:
	free(buf);
	fclose(f);
	return rc;
}

/* proto.h - the payloads of the control messages (hub, agent, worker).
 *
 * One spawn spec serves SPAWN (client -> hub), LAUNCH (after a ticket id and
 * rank), START (hub -> agent, with the GPUs chosen) and SPAWN_INFO (agent ->
 * worker, with the token, modules and bind address).  Strings are copied
 * out on unpack; args stay a view of the received frame. */
#ifndef SPOKE_PROTO_H
#define SPOKE_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include <spoke/actor.h>
#include <spoke/client.h>
#include <spoke/serializer.h>

#include "auth.h"
#include "net.h"

#define SPK_PATH_MAX 1024
#define SPK_GPU_LIST_MAX (SPOKE_MAX_SLOT_GPUS * 12)

struct spk_spawn_spec {
	char type[SPOKE_TYPE_NAME_MAX];
	char name[SPOKE_ACTOR_NAME_MAX];
	char module[SPK_PATH_MAX];
	char program[SPK_PATH_MAX];
	const void *args;
	uint32_t args_len;
	spoke_resources res;
	int32_t poll_us;
	uint32_t timeout_ms;
	uint32_t n_gpus; /* the GPUs chosen (START, SPAWN_INFO) */
	int32_t gpus[SPOKE_MAX_SLOT_GPUS];
};

/* Names a peer sends (actor, type, node and host names): 1 to cap - 1
 * bytes, none of them NUL, a control character, a space or '/', and not
 * "." or "..".  Paths (module, program): up to cap - 1 bytes, none of them
 * NUL or a control character.  The decoders below check every name and
 * path as they copy it out, so a NUL inside can never cut one short, nor a
 * newline reach a log line.  0, or SPOKE_EINVAL with why in spoke_errmsg()
 * (what: "actor name", say; the value escaped). */
int spk_name_check(const char *what, const void *s, size_t n, size_t cap);
int spk_path_check(const char *what, const void *s, size_t n, size_t cap);
/* Decode one into dst[cap]; a bad one is the view's error (SPOKE_EINVAL,
 * why in spoke_errmsg()), a short view SPOKE_ESHORT. */
int spk_view_get_name(spoke_view *v, const char *what, char *dst, size_t cap);
int spk_view_get_path(spoke_view *v, const char *what, char *dst, size_t cap);

int spk_spawn_spec_pack(spoke_buf *b, const struct spk_spawn_spec *s);
/* SPOKE_EINVAL (why in spoke_errmsg()) for a bad name or path, another
 * negative code for a malformed payload. */
int spk_spawn_spec_unpack(spoke_view *v, struct spk_spawn_spec *s);
/* Checks names and sizes; writes why into spoke_errmsg(). */
int spk_spawn_spec_check(const struct spk_spawn_spec *s);

/* "0,1,2" from a GPU list ("" for none). */
void spk_gpu_list_format(char *out, size_t cap, const int32_t *gpus, uint32_t n);
/* Parses "0,1,2", "0-3" or "0-3,6" ("" is no GPU); SPOKE_EINVAL, with why
 * in spoke_errmsg(), on anything else: a negative or non-numeric id, an id
 * listed twice, more than cap ids. */
int spk_gpu_list_parse(const char *s, int32_t *gpus, uint32_t cap, uint32_t *n);

/* Values of spoke-hub's and spoke-agent's options and variables: 0, or
 * SPOKE_EINVAL with why in spoke_errmsg().  A whole number in [min, max]: */
int spk_parse_num(const char *s, long min, long max, long *out);
/* HOST:PORT, the port from 1 (from 0 with any_port) to 65535: */
int spk_parse_addr(const char *s, bool any_port);
/* Prints "PROGRAM: WHAT 'VALUE': <spoke_errmsg()>" on one line to stderr and
 * returns 2, the exit status of a usage error. */
int spk_usage_error(const char *what, const char *value);
/* After getopt_long (optstring starting with ':', opterr 0) returned '?' or
 * ':' as opt: prints the unknown option or the one missing its value on one
 * line and returns 2. */
int spk_bad_option(char *const argv[], int opt);

/* REGISTER: agent -> hub. */
struct spk_register {
	char node[SPOKE_NODE_NAME_MAX];
	char host[SPK_ADDR_MAX]; /* where its workers listen */
	uint32_t pid;
	uint32_t cpus;
	uint32_t n_gpus;
	int32_t gpus[64];
};
int spk_register_pack(spoke_buf *b, const struct spk_register *r);
/* Node and host are names (above). */
int spk_register_unpack(spoke_view *v, struct spk_register *r);

/* The successful answer to SPAWN, LAUNCH, START and LOOKUP. */
struct spk_endpoint {
	char addr[SPK_ADDR_MAX]; /* "host:port" of the worker */
	char node[SPOKE_NODE_NAME_MAX];
	uint32_t pid;
	/* The hub's id of the start that made this worker (its START's id):
	 * never reused in a job, it names the worker in the handshake
	 * (spk_ident_actor) so that a handle reaches only the incarnation it
	 * was opened on. */
	uint64_t incarnation;
};
int spk_endpoint_pack(spoke_buf *b, const struct spk_endpoint *e);
/* Address and node are names (above). */
int spk_endpoint_unpack(spoke_view *v, struct spk_endpoint *e);

/* A gang slot inside an ALLOC answer. */
int spk_slot_pack(spoke_buf *b, const spoke_slot *s);
int spk_slot_unpack(spoke_view *v, spoke_slot *s);

#endif

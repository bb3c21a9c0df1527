/* proto.h - the payloads of the control messages (hub, agent, worker).
 *
 * The wire protocol in one place: every control message has one struct and
 * one pack/unpack pair here, and nowhere else is a control message's
 * payload written or read field by field.  An unpack is a plain function
 * of a view (no socket, no event loop: tests/fuzz/fuzz_proto.c reaches each
 * one); it validates every name as it copies it out, and returns 0, or
 * SPOKE_EINVAL (a bad name, why in spoke_errmsg()) or another negative code
 * (SPOKE_ESHORT, SPOKE_EPROTO) for a malformed payload.  A pack returns the
 * buffer's sticky error.  All integers little-endian (the serializer's
 * codec, spoke/serializer.h).
 *
 *   message     from -> to       payload (struct)
 *   REGISTER    agent -> hub     spk_register; answer: aux = node index
 *   SPAWN       client -> hub    spk_spawn_spec; answer: spk_endpoint
 *   ALLOC       client -> hub    spk_alloc; answer: spk_alloc_answer_pack
 *   LAUNCH      client -> hub    spk_launch; answer: spk_endpoint
 *   RELEASE     client -> hub    spk_release; answer: empty
 *   LOOKUP      client -> hub    spk_actor_ref; answer: spk_endpoint
 *   KILL        client -> hub    spk_actor_ref; answer: empty
 *   NODES       client -> hub    empty; answer: spk_nodes_answer_pack
 *   START       hub -> agent     spk_spawn_spec (GPUs chosen); answer:
 *                                spk_endpoint, or aux < 0 and an error text
 *   STOP        hub -> agent     spk_actor_ref (id: the START's)
 *   EXITED      agent -> hub     spk_exited (id: the START's)
 *   SPAWN_INFO  agent -> worker  spk_spawn_info
 *   READY       worker -> agent  spk_ready, or aux < 0 and an error text
 *   STATS       worker -> agent, spk_stats (id: the START's, from the agent)
 *               agent -> hub
 *   STATUS      client -> hub    empty; answer: spk_status_answer_decode
 *
 * Strings are copied out on unpack; a spawn spec's args stay a view of the
 * received frame. */
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
	uint32_t max_restarts; /* its agent restarts it that often at most */
	uint32_t restart_backoff_ms; /* after waiting that long */
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
	/* Which worker: the hub's id of the start that made the actor (its
	 * START's id, never reused in a job) in the low 48 bits, and how often
	 * its agent restarted it in the high 16 (spk_incarnation).  It names
	 * the worker in the handshake (spk_ident_actor), so that a connection
	 * reaches only that one. */
	uint64_t incarnation;
};

#define SPK_INCARNATION_START_MASK ((1ULL << 48) - 1)

static inline uint64_t spk_incarnation(uint64_t start_id, uint32_t restarts)
{
	return (start_id & SPK_INCARNATION_START_MASK) | (uint64_t)(restarts & 0xffff) << 48;
}
int spk_endpoint_pack(spoke_buf *b, const struct spk_endpoint *e);
/* Address and node are names (above). */
int spk_endpoint_unpack(spoke_view *v, struct spk_endpoint *e);

/* A gang slot inside an ALLOC answer. */
int spk_slot_pack(spoke_buf *b, const spoke_slot *s);
int spk_slot_unpack(spoke_view *v, spoke_slot *s);

/* ALLOC: client -> hub, reserve a gang of nodes x per_node slots. */
struct spk_alloc {
	uint32_t nodes;
	uint32_t per_node;
	spoke_resources res; /* each slot's */
	bool strict_pack;
};
int spk_alloc_pack(spoke_buf *b, const struct spk_alloc *a);
/* strict_pack is a byte, 0 or 1: anything else is SPOKE_EPROTO. */
int spk_alloc_unpack(spoke_view *v, struct spk_alloc *a);

/* The ALLOC answer: the ticket's id, its slot count, the slots.  Decode
 * checks the count against the bytes left (a slot takes
 * SPK_SLOT_WIRE_MIN bytes at least) before it allocates the ticket
 * (malloc'd into *out); SPOKE_EPROTO, with why in spoke_errmsg(), for a
 * malformed answer, and then *out is NULL. */
#define SPK_SLOT_WIRE_MIN 21 /* 3 ranks, a name of 1 byte at least, a GPU count */
int spk_alloc_answer_pack(spoke_buf *b, const spoke_ticket *t);
int spk_alloc_answer_decode(spoke_view *v, spoke_ticket **out);

/* The NODES answer: a count, then each live node (name, GPUs, free GPUs).
 * Decode fills out[0..cap) and returns the count (which may exceed cap),
 * checked against the bytes left (SPK_NODE_WIRE_MIN per node) before it
 * loops; SPOKE_EPROTO, with why in spoke_errmsg(), for a malformed one. */
#define SPK_NODE_WIRE_MIN 12
int spk_nodes_answer_pack(spoke_buf *b, const spoke_node_info *nodes, uint32_t n);
int spk_nodes_answer_decode(spoke_view *v, spoke_node_info *out, size_t cap);

/* LAUNCH: client -> hub, start an actor in slot `rank` of a ticket. */
struct spk_launch {
	uint64_t ticket;
	uint32_t rank;
	struct spk_spawn_spec spec;
};
int spk_launch_pack(spoke_buf *b, const struct spk_launch *l);
int spk_launch_unpack(spoke_view *v, struct spk_launch *l);

/* RELEASE: client -> hub, give a ticket back. */
struct spk_release {
	uint64_t ticket;
};
int spk_release_pack(spoke_buf *b, const struct spk_release *r);
int spk_release_unpack(spoke_view *v, struct spk_release *r);

/* LOOKUP and KILL (client -> hub) and STOP (hub -> agent): an actor's
 * name (a name, above). */
struct spk_actor_ref {
	char name[SPOKE_ACTOR_NAME_MAX];
};
int spk_actor_ref_pack(spoke_buf *b, const struct spk_actor_ref *r);
int spk_actor_ref_unpack(spoke_view *v, struct spk_actor_ref *r);

/* EXITED: agent -> hub, a worker ended (the frame's id: its START's).  why
 * is free text (a control character is allowed: whoever logs it escapes
 * it), up to its size - 1 bytes. */
struct spk_exited {
	char name[SPOKE_ACTOR_NAME_MAX];
	char why[128];
};
int spk_exited_pack(spoke_buf *b, const struct spk_exited *e);
int spk_exited_unpack(spoke_view *v, struct spk_exited *e);

/* SPAWN_INFO: agent -> worker, what to be.  host is a name (above); the
 * modules a path (a ':'-separated list of them, "" for none). */
#define SPK_MODULES_MAX (SPK_PATH_MAX * 4)
struct spk_spawn_info {
	char token[SPK_TOKEN_MAX];
	char host[SPK_ADDR_MAX]; /* where to listen */
	char modules[SPK_MODULES_MAX];
	uint64_t incarnation; /* the hub's START id (spk_endpoint) */
	struct spk_spawn_spec spec;
};
int spk_spawn_info_pack(spoke_buf *b, const struct spk_spawn_info *s);
int spk_spawn_info_unpack(spoke_view *v, struct spk_spawn_info *s);

/* READY (aux 0): worker -> agent, the actor listens on port (1 to 65535;
 * a u32 on the wire, anything else is SPOKE_EPROTO). */
struct spk_ready {
	uint16_t port;
};
int spk_ready_pack(spoke_buf *b, const struct spk_ready *r);
int spk_ready_unpack(spoke_view *v, struct spk_ready *r);

/* The payload of a failed READY or of an agent's failed answer to START
 * (aux < 0): the text of the failure, the rest of the payload.  Unpack
 * copies at most cap - 1 bytes of it, up to a NUL, into dst (free text:
 * escape it before logging it); it never fails. */
int spk_error_text_pack(spoke_buf *b, const char *text);
int spk_error_text_unpack(spoke_view *v, char *dst, size_t cap);

/* ---- call figures (STATS) and the job at a glance (STATUS) ---- */

#define SPK_LAT_BUCKETS 24      /* a latency histogram's buckets */
#define SPK_STATS_METHODS 64    /* methods of one actor that are counted */
#define SPK_METHOD_NAME_MAX 64  /* bytes of a method's name, with the NUL */

/* Bucket k of a latency histogram counts the calls that took at most 2^k
 * microseconds (and more than 2^(k-1)); the last bucket counts every call
 * over 2^(SPK_LAT_BUCKETS - 2) us (4.2 s). */
static inline unsigned spk_lat_bucket(uint64_t us)
{
	unsigned k = us <= 1 ? 0 : 64 - (unsigned)__builtin_clzll(us - 1);

	return k < SPK_LAT_BUCKETS - 1 ? k : SPK_LAT_BUCKETS - 1;
}

/* One method's figures since its worker started.  A call counts once,
 * when its REPLY goes (or is dropped: its caller went), in one latency
 * bucket: calls == the sum of lat[]; errors: the calls answered with a
 * negative status (the method failed, was cancelled or timed out, its reply
 * could not be packed) or never answered.  Bytes: the request's and the
 * reply's payloads. */
struct spk_method_stats {
	char name[SPK_METHOD_NAME_MAX]; /* a path (no control character), "" allowed */
	uint32_t id;
	uint64_t calls, errors, bytes_in, bytes_out, lat_sum_us;
	uint64_t lat[SPK_LAT_BUCKETS];
};

/* STATS: a worker's figures, one entry per method of its type (at most
 * SPK_STATS_METHODS).  Unpack checks the counts: more methods than that, a
 * histogram of another size, buckets that do not add up to calls or more
 * errors than calls are SPOKE_EPROTO. */
struct spk_stats {
	uint32_t n;
	struct spk_method_stats m[SPK_STATS_METHODS];
};
int spk_stats_pack(spoke_buf *b, const struct spk_stats *s);
int spk_stats_unpack(spoke_view *v, struct spk_stats *s);

/* The STATUS answer: the hub's uptime, then a count and the entries of
 * each of: live nodes, live actors, gang tickets.  The hub packs it piece
 * by piece (spk_status_count_pack before each list); a client decodes it
 * whole. */
enum { SPK_ACTOR_STARTING = 0, SPK_ACTOR_RUNNING = 1, SPK_ACTOR_RESTARTING = 2 };

struct spk_status_node {
	char name[SPOKE_NODE_NAME_MAX];
	uint32_t n_gpus, free_gpus;
};

struct spk_status_actor {
	char name[SPOKE_ACTOR_NAME_MAX];
	char type[SPOKE_TYPE_NAME_MAX];
	char node[SPOKE_NODE_NAME_MAX];
	char addr[SPK_ADDR_MAX]; /* "" while it starts */
	uint8_t state;           /* SPK_ACTOR_* */
	uint32_t pid;            /* 0 while it starts */
	uint64_t incarnation;    /* the hub's START id */
	uint32_t restarts;
	uint32_t n_gpus;
	int32_t gpus[SPOKE_MAX_SLOT_GPUS];
	int64_t stats_age_ms;    /* how old its figures are; -1: none came yet */
	const void *stats;       /* a STATS payload (spk_stats_unpack), "" if none */
	uint32_t stats_len;
};

struct spk_status_ticket {
	uint64_t id;
	uint32_t slots;    /* its gang's slots */
	uint32_t launched; /* those with an actor */
	uint32_t gpus;     /* GPUs its slots hold */
};

struct spk_status {
	uint64_t uptime_ms;
	uint32_t n_nodes, n_actors, n_tickets;
	struct spk_status_node *nodes;
	struct spk_status_actor *actors;
	struct spk_status_ticket *tickets;
};

int spk_status_begin_pack(spoke_buf *b, uint64_t uptime_ms);
int spk_status_count_pack(spoke_buf *b, uint32_t n);
int spk_status_node_pack(spoke_buf *b, const struct spk_status_node *n);
int spk_status_actor_pack(spoke_buf *b, const struct spk_status_actor *a);
int spk_status_ticket_pack(spoke_buf *b, const struct spk_status_ticket *t);

/* Decodes a whole STATUS answer into *out (malloc'd: spk_status_free), each
 * count checked against the bytes left before anything is allocated, every
 * name checked, every actor's figures unpacked once (they stay a view of
 * v: keep its bytes while *out is used).  SPOKE_EPROTO, with why in
 * spoke_errmsg(), for a malformed one, and then *out is NULL. */
#define SPK_STATUS_NODE_WIRE_MIN 13
#define SPK_STATUS_ACTOR_WIRE_MIN 52
#define SPK_STATUS_TICKET_WIRE_MIN 20
int spk_status_answer_decode(spoke_view *v, struct spk_status **out);
void spk_status_free(struct spk_status *s);

#endif

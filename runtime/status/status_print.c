/* status_print.c - spoke-status's three outputs of a STATUS answer.
 *
 * Latency quantiles come from the workers' histograms (proto.h
 * spk_lat_bucket): p50 and p99 are the upper bound of the bucket that
 * holds them, "<=64us"; in the last bucket, only its lower bound is known
 * (">4.2s").  Names are the hub's, checked at decode (no control
 * character); JSON and Prometheus escape '"' and '\' all the same. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* Upper bound of bucket k in microseconds (the last one has none: 0). */
static uint64_t bucket_le_us(unsigned k)
{
	return k < SPK_LAT_BUCKETS - 1 ? (uint64_t)1 << k : 0;
}

/* The bucket that holds quantile q of m's calls (m->calls > 0). */
static unsigned quantile_bucket(const struct spk_method_stats *m, double q)
{
	uint64_t want = (uint64_t)(q * (double)m->calls + 0.999999), seen = 0;

	if (want < 1)
		want = 1;
	for (unsigned k = 0; k < SPK_LAT_BUCKETS; k++) {
		seen += m->lat[k];
		if (seen >= want)
			return k;
	}
	return SPK_LAT_BUCKETS - 1;
}

static void fmt_us(char *out, size_t cap, uint64_t us)
{
	if (us < 1000)
		snprintf(out, cap, "%" PRIu64 "us", us);
	else if (us < 1000000)
		snprintf(out, cap, "%.3gms", (double)us / 1e3);
	else
		snprintf(out, cap, "%.3gs", (double)us / 1e6);
}

static void fmt_quantile(char *out, size_t cap, const struct spk_method_stats *m, double q)
{
	char t[24];
	unsigned k;

	if (!m->calls) {
		snprintf(out, cap, "-");
		return;
	}
	k = quantile_bucket(m, q);
	if (k == SPK_LAT_BUCKETS - 1) {
		fmt_us(t, sizeof(t), bucket_le_us(k - 1));
		snprintf(out, cap, ">%s", t);
	} else {
		fmt_us(t, sizeof(t), bucket_le_us(k));
		snprintf(out, cap, "<=%s", t);
	}
}

static void fmt_uptime(char *out, size_t cap, uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(out, cap, "%.1fs", (double)ms / 1000.0);
	else if (s < 3600)
		snprintf(out, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(out, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
}

/* The actor's figures, decoded into st (its n is 0 if it has none). */
static void actor_stats(const struct spk_status_actor *a, struct spk_stats *st)
{
	spoke_view v;

	st->n = 0;
	spoke_view_init(&v, a->stats, a->stats_len);
	if (a->stats_len && spk_stats_unpack(&v, st) < 0)
		st->n = 0; /* checked at decode: cannot happen */
}

static void totals(const struct spk_stats *st, uint64_t *calls, uint64_t *errors)
{
	*calls = *errors = 0;
	for (uint32_t i = 0; i < st->n; i++) {
		*calls += st->m[i].calls;
		*errors += st->m[i].errors;
	}
}

static const char *state_name(uint8_t state)
{
	return state == SPK_ACTOR_RUNNING ? "running"
	       : state == SPK_ACTOR_RESTARTING ? "restarting" : "starting";
}

int spk_status_print_text(FILE *f, const struct spk_status *s)
{
	struct spk_stats *st = malloc(sizeof(*st));
	char up[32], gpus[SPK_GPU_LIST_MAX], p50[32], p99[32], age[32];

	if (!st)
		return -ENOMEM;
	fmt_uptime(up, sizeof(up), s->uptime_ms);
	fprintf(f, "hub: up %s; %u node%s, %u actor%s, %u ticket%s\n", up, s->n_nodes,
		s->n_nodes == 1 ? "" : "s", s->n_actors, s->n_actors == 1 ? "" : "s", s->n_tickets,
		s->n_tickets == 1 ? "" : "s");
	fprintf(f, "\n%-24s %5s %5s %5s\n", "NODE", "GPUS", "USED", "FREE");
	for (uint32_t i = 0; i < s->n_nodes; i++)
		fprintf(f, "%-24s %5u %5u %5u\n", s->nodes[i].name, s->nodes[i].n_gpus,
			s->nodes[i].n_gpus - s->nodes[i].free_gpus, s->nodes[i].free_gpus);
	fprintf(f, "\n%-20s %-14s %-14s %-8s %-9s %5s %8s %10s %8s %s\n", "ACTOR", "TYPE", "NODE",
		"GPUS", "STATE", "INC", "RESTARTS", "CALLS", "ERRORS", "FIGURES");
	for (uint32_t i = 0; i < s->n_actors; i++) {
		const struct spk_status_actor *a = &s->actors[i];
		uint64_t calls, errors;

		actor_stats(a, st);
		totals(st, &calls, &errors);
		spk_gpu_list_format(gpus, sizeof(gpus), a->gpus, a->n_gpus);
		if (a->stats_age_ms < 0)
			snprintf(age, sizeof(age), "none yet");
		else
			snprintf(age, sizeof(age), "%.1fs old", (double)a->stats_age_ms / 1000.0);
		fprintf(f, "%-20s %-14s %-14s %-8s %-9s %5" PRIu64 " %8u %10" PRIu64 " %8" PRIu64
			" %s\n", a->name, a->type, a->node, gpus[0] ? gpus : "-",
			state_name(a->state), a->incarnation, a->restarts, calls, errors, age);
		for (uint32_t k = 0; k < st->n; k++) {
			const struct spk_method_stats *m = &st->m[k];

			fmt_quantile(p50, sizeof(p50), m, 0.5);
			fmt_quantile(p99, sizeof(p99), m, 0.99);
			fprintf(f, "  %-18s calls %-10" PRIu64 " errors %-8" PRIu64 " in %-12" PRIu64
				" out %-12" PRIu64 " p50 %-10s p99 %s\n", m->name[0] ? m->name : "?",
				m->calls, m->errors, m->bytes_in, m->bytes_out, p50, p99);
		}
	}
	fprintf(f, "\n%-10s %8s %8s %8s\n", "TICKET", "SLOTS", "LAUNCHED", "GPUS");
	for (uint32_t i = 0; i < s->n_tickets; i++)
		fprintf(f, "%-10" PRIu64 " %8u %8u %8u\n", s->tickets[i].id, s->tickets[i].slots,
			s->tickets[i].launched, s->tickets[i].gpus);
	free(st);
	return 0;
}

/* A JSON string (or a Prometheus label value: the same escapes). */
static void put_str(FILE *f, const char *s, bool json)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 && json)
			fprintf(f, "\\u%04x", c);
		else if (c >= 0x80 && json)
			fprintf(f, "\\u%04x", c); /* no promise of UTF-8 in a name */
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_quantile(FILE *f, const char *key, const struct spk_method_stats *m, double q)
{
	unsigned k = m->calls ? quantile_bucket(m, q) : SPK_LAT_BUCKETS - 1;

	if (!m->calls || k == SPK_LAT_BUCKETS - 1)
		fprintf(f, ", \"%s\": null", key);
	else
		fprintf(f, ", \"%s\": %" PRIu64, key, bucket_le_us(k));
}

static void json_method(FILE *f, const struct spk_method_stats *m)
{
	fputs("{\"name\": ", f);
	put_str(f, m->name, true);
	fprintf(f, ", \"id\": %u, \"calls\": %" PRIu64 ", \"errors\": %" PRIu64
		", \"bytes_in\": %" PRIu64 ", \"bytes_out\": %" PRIu64
		", \"latency_sum_us\": %" PRIu64, m->id, m->calls, m->errors, m->bytes_in,
		m->bytes_out, m->lat_sum_us);
	json_quantile(f, "p50_le_us", m, 0.5);
	json_quantile(f, "p99_le_us", m, 0.99);
	fputs(", \"latency_buckets\": [", f);
	for (unsigned k = 0; k < SPK_LAT_BUCKETS; k++)
		fprintf(f, "%s%" PRIu64, k ? ", " : "", m->lat[k]);
	fputs("]}", f);
}

static void json_actor(FILE *f, const struct spk_status_actor *a, struct spk_stats *st)
{
	uint64_t calls, errors;

	actor_stats(a, st);
	totals(st, &calls, &errors);
	fputs("{\"name\": ", f);
	put_str(f, a->name, true);
	fputs(", \"type\": ", f);
	put_str(f, a->type, true);
	fputs(", \"node\": ", f);
	put_str(f, a->node, true);
	fputs(", \"address\": ", f);
	put_str(f, a->addr, true);
	fprintf(f, ", \"pid\": %u, \"state\": \"%s\", \"incarnation\": %" PRIu64
		", \"restarts\": %u, \"gpus\": [", a->pid, state_name(a->state), a->incarnation,
		a->restarts);
	for (uint32_t k = 0; k < a->n_gpus; k++)
		fprintf(f, "%s%d", k ? ", " : "", a->gpus[k]);
	fprintf(f, "], \"calls\": %" PRIu64 ", \"errors\": %" PRIu64, calls, errors);
	if (a->stats_age_ms < 0)
		fputs(", \"figures_age_ms\": null", f);
	else
		fprintf(f, ", \"figures_age_ms\": %" PRId64, a->stats_age_ms);
	fputs(", \"methods\": [", f);
	for (uint32_t k = 0; k < st->n; k++) {
		fputs(k ? ", " : "", f);
		json_method(f, &st->m[k]);
	}
	fputs("]}", f);
}

int spk_status_print_json(FILE *f, const struct spk_status *s)
{
	struct spk_stats *st = malloc(sizeof(*st));

	if (!st)
		return -ENOMEM;
	fprintf(f, "{\"uptime_ms\": %" PRIu64 ", \"latency_bucket_le_us\": [", s->uptime_ms);
	for (unsigned k = 0; k < SPK_LAT_BUCKETS; k++)
		if (k < SPK_LAT_BUCKETS - 1)
			fprintf(f, "%s%" PRIu64, k ? ", " : "", bucket_le_us(k));
		else
			fputs(", null", f);
	fputs("],\n \"nodes\": [", f);
	for (uint32_t i = 0; i < s->n_nodes; i++) {
		fputs(i ? ",\n   {\"name\": " : "\n   {\"name\": ", f);
		put_str(f, s->nodes[i].name, true);
		fprintf(f, ", \"gpus\": %u, \"gpus_used\": %u, \"gpus_free\": %u}",
			s->nodes[i].n_gpus, s->nodes[i].n_gpus - s->nodes[i].free_gpus,
			s->nodes[i].free_gpus);
	}
	fputs("],\n \"actors\": [", f);
	for (uint32_t i = 0; i < s->n_actors; i++) {
		fputs(i ? ",\n   " : "\n   ", f);
		json_actor(f, &s->actors[i], st);
	}
	fputs("],\n \"tickets\": [", f);
	for (uint32_t i = 0; i < s->n_tickets; i++)
		fprintf(f, "%s{\"id\": %" PRIu64 ", \"slots\": %u, \"launched\": %u, \"gpus\": %u}",
			i ? ",\n   " : "\n   ", s->tickets[i].id, s->tickets[i].slots,
			s->tickets[i].launched, s->tickets[i].gpus);
	fputs("]}\n", f);
	free(st);
	return 0;
}

/* ---- Prometheus ---- */

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void actor_labels(FILE *f, const struct spk_status_actor *a, const char *method)
{
	fputs("{actor=", f);
	put_str(f, a->name, false);
	if (method) {
		fputs(",method=", f);
		put_str(f, method, false);
	}
}

/* One sample per method of every actor: field's value. */
static void method_samples(FILE *f, const struct spk_status *s, struct spk_stats *st,
			   const char *name, size_t field)
{
	for (uint32_t i = 0; i < s->n_actors; i++) {
		actor_stats(&s->actors[i], st);
		for (uint32_t k = 0; k < st->n; k++) {
			fputs(name, f);
			actor_labels(f, &s->actors[i], st->m[k].name);
			fprintf(f, "} %" PRIu64 "\n",
				*(const uint64_t *)((const char *)&st->m[k] + field));
		}
	}
}

int spk_status_print_prometheus(FILE *f, const struct spk_status *s)
{
	struct spk_stats *st = malloc(sizeof(*st));

	if (!st)
		return -ENOMEM;
	family(f, "spoke_hub_uptime_seconds", "gauge", "Seconds since the job's hub started.");
	fprintf(f, "spoke_hub_uptime_seconds %.3f\n", (double)s->uptime_ms / 1000.0);
	family(f, "spoke_nodes", "gauge", "Live nodes of the job.");
	fprintf(f, "spoke_nodes %u\n", s->n_nodes);
	family(f, "spoke_node_gpus", "gauge", "GPUs of a live node.");
	for (uint32_t i = 0; i < s->n_nodes; i++) {
		fputs("spoke_node_gpus{node=", f);
		put_str(f, s->nodes[i].name, false);
		fprintf(f, "} %u\n", s->nodes[i].n_gpus);
	}
	family(f, "spoke_node_gpus_free", "gauge", "GPUs of a live node that no actor or ticket holds.");
	for (uint32_t i = 0; i < s->n_nodes; i++) {
		fputs("spoke_node_gpus_free{node=", f);
		put_str(f, s->nodes[i].name, false);
		fprintf(f, "} %u\n", s->nodes[i].free_gpus);
	}
	family(f, "spoke_tickets", "gauge", "Gang tickets held.");
	fprintf(f, "spoke_tickets %u\n", s->n_tickets);
	family(f, "spoke_actors", "gauge", "Live actors (starting or running).");
	fprintf(f, "spoke_actors %u\n", s->n_actors);
	family(f, "spoke_actor_info", "gauge", "A live actor: its type, node and state (value 1).");
	for (uint32_t i = 0; i < s->n_actors; i++) {
		const struct spk_status_actor *a = &s->actors[i];

		fputs("spoke_actor_info", f);
		actor_labels(f, a, NULL);
		fputs(",type=", f);
		put_str(f, a->type, false);
		fputs(",node=", f);
		put_str(f, a->node, false);
		fprintf(f, ",state=\"%s\",incarnation=\"%" PRIu64 "\"} 1\n", state_name(a->state),
			a->incarnation);
	}
	family(f, "spoke_actor_restarts_total", "counter", "Restarts of an actor.");
	for (uint32_t i = 0; i < s->n_actors; i++) {
		fputs("spoke_actor_restarts_total", f);
		actor_labels(f, &s->actors[i], NULL);
		fprintf(f, "} %u\n", s->actors[i].restarts);
	}
	family(f, "spoke_method_calls_total", "counter", "Calls of a method answered.");
	method_samples(f, s, st, "spoke_method_calls_total",
		       offsetof(struct spk_method_stats, calls));
	family(f, "spoke_method_errors_total", "counter",
	       "Calls of a method answered with an error, or never answered.");
	method_samples(f, s, st, "spoke_method_errors_total",
		       offsetof(struct spk_method_stats, errors));
	family(f, "spoke_method_request_bytes_total", "counter", "Request payload bytes of a method.");
	method_samples(f, s, st, "spoke_method_request_bytes_total",
		       offsetof(struct spk_method_stats, bytes_in));
	family(f, "spoke_method_reply_bytes_total", "counter", "Reply payload bytes of a method.");
	method_samples(f, s, st, "spoke_method_reply_bytes_total",
		       offsetof(struct spk_method_stats, bytes_out));
	family(f, "spoke_method_latency_seconds", "histogram",
	       "Time from a call's arrival in its worker to its answer.");
	for (uint32_t i = 0; i < s->n_actors; i++) {
		actor_stats(&s->actors[i], st);
		for (uint32_t k = 0; k < st->n; k++) {
			const struct spk_method_stats *m = &st->m[k];
			uint64_t cum = 0;

			for (unsigned b = 0; b < SPK_LAT_BUCKETS; b++) {
				cum += m->lat[b];
				fputs("spoke_method_latency_seconds_bucket", f);
				actor_labels(f, &s->actors[i], m->name);
				if (b < SPK_LAT_BUCKETS - 1)
					fprintf(f, ",le=\"%g\"} %" PRIu64 "\n",
						(double)bucket_le_us(b) / 1e6, cum);
				else
					fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
			}
			fputs("spoke_method_latency_seconds_sum", f);
			actor_labels(f, &s->actors[i], m->name);
			fprintf(f, "} %.6f\n", (double)m->lat_sum_us / 1e6);
			fputs("spoke_method_latency_seconds_count", f);
			actor_labels(f, &s->actors[i], m->name);
			fprintf(f, "} %" PRIu64 "\n", m->calls);
		}
	}
	free(st);
	return 0;
}

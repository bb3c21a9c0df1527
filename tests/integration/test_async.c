/* test_async.c - the API around calls on a real loopback cluster
 * (fixture.h): a handle outlives its client's close, NULL arguments are
 * refused by name, and an actor calling itself fails at once.  The
 * semantics of calls (windows, futures given up, closing under calls,
 * errors' messages) are tests/calls/test_calls.c's, run per transport.
 * Every wait is bounded: a hang shows as a failure, not a stall. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"

/* ---- 1. a handle outlives its client ---- */

START_TEST(client_close_keeps_handles)
{
	spoke_actor *a = spawn_open("k1", NULL), *b = NULL;
	uint32_t v = 42, got = 0;
	spoke_future f;
	size_t n;

	spoke_client_close(client);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, &v, 4, &got, 4, &n, 0), 0);
	ck_assert_uint_eq(got, 42);
	v = 43;
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &v, 4, &got, 4, &f), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 0), 0);
	ck_assert_uint_eq(got, 43);
	/* What needs the hub is refused. */
	ck_assert_int_eq(spoke_actor_open(client, "k1", &b, 0), SPOKE_ECLOSED);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(spoke_errmsg(), "closed"), "message: %s", spoke_errmsg());
	spoke_actor_close(a); /* the last reference: frees the client */
	client = NULL;
}
END_TEST

/* ---- 2. NULL arguments ---- */

static spoke_actor *h; /* a live handle for the table */
static uint8_t buf[16];
static size_t len;
static spoke_future fut;

static int n_open_c(void) { spoke_actor *x; return spoke_actor_open(NULL, "n1", &x, 0); }
static int n_open_name(void) { spoke_actor *x; return spoke_actor_open(client, NULL, &x, 0); }
static int n_open_out(void) { return spoke_actor_open(client, "n1", NULL, 0); }
static int n_call_a(void) { return spoke_call(NULL, PROBE_ECHO, "x", 1, buf, 16, &len, 0); }
static int n_call_req(void) { return spoke_call(h, PROBE_ECHO, NULL, 5, buf, 16, &len, 0); }
static int n_call_reply(void) { return spoke_call(h, PROBE_ECHO, "x", 1, NULL, 16, &len, 0); }
static int n_obj_a(void) { return spoke_call_obj(NULL, PROBE_ECHO, NULL, NULL, NULL, NULL, 0); }
static int n_async_a(void) { return spoke_call_async(NULL, PROBE_ECHO, "x", 1, buf, 16, &fut); }
static int n_async_f(void) { return spoke_call_async(h, PROBE_ECHO, "x", 1, buf, 16, NULL); }
static int n_async_req(void) { return spoke_call_async(h, PROBE_ECHO, NULL, 5, buf, 16, &fut); }
static int n_async_reply(void) { return spoke_call_async(h, PROBE_ECHO, "x", 1, NULL, 16, &fut); }
static int n_wait_f(void) { return spoke_future_wait(NULL, 0); }
static int n_mr_a(void) { spoke_mr m; return spoke_mr_register(NULL, buf, 16, &m); }
static int n_mr_mr(void) { return spoke_mr_register(h, buf, 16, NULL); }
static int n_mr_addr(void) { spoke_mr m; return spoke_mr_register(h, NULL, 16, &m); }
static int n_callmr_a(void)
{
	return spoke_call_mr(NULL, PROBE_ECHO, NULL, 0, 0, NULL, 0, 0, &len, 0);
}
static int n_rdma_a(void) { return spoke_actor_init_rdma(NULL, 0); }
static const spoke_serializer no_fns = { NULL, NULL };
static int n_obj_pack(void) { return spoke_call_obj(h, PROBE_ECHO, &no_fns, buf, NULL, NULL, 0); }
static int n_obj_unpack(void) { return spoke_call_obj(h, PROBE_ECHO, NULL, NULL, &no_fns, buf, 0); }

START_TEST(null_arguments_refused_by_name)
{
	static const struct {
		const char *what, *arg;
		int (*fn)(void);
	} cases[] = {
		{ "spoke_actor_open(NULL client)", "c", n_open_c },
		{ "spoke_actor_open(NULL name)", "name", n_open_name },
		{ "spoke_actor_open(NULL out)", "out", n_open_out },
		{ "spoke_call(NULL handle)", "a", n_call_a },
		{ "spoke_call(NULL request of 5 B)", "req", n_call_req },
		{ "spoke_call(NULL reply, capacity 16)", "reply", n_call_reply },
		{ "spoke_call_obj(NULL handle)", "a", n_obj_a },
		{ "spoke_call_async(NULL handle)", "a", n_async_a },
		{ "spoke_call_async(NULL future)", "f", n_async_f },
		{ "spoke_call_async(NULL request of 5 B)", "req", n_async_req },
		{ "spoke_call_async(NULL reply, capacity 16)", "reply", n_async_reply },
		{ "spoke_future_wait(NULL)", "f", n_wait_f },
		{ "spoke_mr_register(NULL handle)", "a", n_mr_a },
		{ "spoke_mr_register(NULL mr)", "mr", n_mr_mr },
		{ "spoke_mr_register(NULL addr)", "addr", n_mr_addr },
		{ "spoke_call_mr(NULL handle)", "a", n_callmr_a },
		{ "spoke_actor_init_rdma(NULL)", "a", n_rdma_a },
		{ "spoke_call_obj(serializer without pack)", "req_ser->pack", n_obj_pack },
		{ "spoke_call_obj(serializer without unpack)", "rep_ser->unpack", n_obj_unpack },
	};
	uint32_t v = 11, got = 0;
	char want[64];
	size_t n;

	h = spawn_open("n1", NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = cases[i].fn();

		snprintf(want, sizeof(want), " %s is NULL", cases[i].arg);
		ck_assert_msg(rc == SPOKE_EINVAL, "%s: %s (%s)", cases[i].what, spoke_strerror(rc),
			      spoke_errmsg());
		ck_assert_msg(strstr(spoke_errmsg(), want), "%s: message '%s' does not say '%s'",
			      cases[i].what, spoke_errmsg(), want);
	}
	/* A future refused for a bad argument is complete with that error. */
	ck_assert_int_eq(spoke_future_wait(&fut, 0), SPOKE_EINVAL);
	/* The functions that return nothing take NULL quietly. */
	spoke_actor_close(NULL);
	spoke_actor_set_poll(NULL, 10);
	spoke_mr_deregister(NULL);
	ck_assert_ptr_nonnull(spoke_actor_transport(NULL));
	/* Nothing was sent: the handle is in step, on both paths. */
	ck_assert_int_eq(spoke_call(h, PROBE_ECHO, &v, 4, &got, 4, &n, 0), 0);
	ck_assert_uint_eq(got, 11);
	v = 12;
	ck_assert_int_eq(spoke_call_async(h, PROBE_ECHO, &v, 4, &got, 4, &fut), 0);
	ck_assert_int_eq(spoke_future_wait(&fut, 0), 0);
	ck_assert_uint_eq(got, 12);
	ck_assert_str_eq(spoke_errmsg(), "");
	spoke_actor_close(h);
}
END_TEST

/* ---- 3. an actor calling itself ---- */

START_TEST(self_call_fails_at_once)
{
	spoke_actor *a = spawn_open("selfish", NULL);
	char token[128] = "", req[512], rep[512];
	FILE *tf = fopen(cl.token_file, "r");
	int32_t rc = 0;
	uint32_t ms = 0;
	spoke_view v;
	const char *msg;
	size_t n = 0, mlen = 0;

	ck_assert_ptr_nonnull(tf);
	ck_assert_ptr_nonnull(fgets(token, sizeof(token), tf));
	fclose(tf);
	token[strcspn(token, "\n")] = '\0';
	n = (size_t)snprintf(req, sizeof(req), "%s", cl.hub_addr) + 1;
	n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", token) + 1;
	ck_assert_int_eq(spoke_call(a, PROBE_SELF, req, n, rep, sizeof(rep), &n, 10000), 0);
	spoke_view_init(&v, rep, n);
	spoke_view_get_i32(&v, &rc);
	spoke_view_get_u32(&v, &ms);
	spoke_view_get_str(&v, &msg, &mlen);
	ck_assert_int_eq(spoke_view_error(&v), 0);
	ck_assert_msg(rc == SPOKE_ESELF, "self open: %s (%.*s) after %u ms", spoke_strerror(rc),
		      (int)mlen, msg, ms);
	ck_assert_msg(ms < 1000, "failing took %u ms", ms);
	ck_assert_msg(memmem(msg, mlen, "selfish", 7), "message: %.*s", (int)mlen, msg);
	/* The actor goes on serving. */
	ck_assert(cluster_alive((pid_t)actor_pid(a)));
	spoke_actor_close(a);
}
END_TEST

static Suite *async_suite(void)
{
	Suite *s = suite_create("async");
	TCase *tc = tcase_create("loopback");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, client_close_keeps_handles);
	tcase_add_test(tc, null_arguments_refused_by_name);
	tcase_add_test(tc, self_call_fails_at_once);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(async_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* test_gangspec.c - the SPANK plugin's option parser and GPU mapping. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../spank/plugin_logic.h"

static char err[256];

START_TEST(parses_good_values)
{
	static const struct {
		const char *s;
		unsigned n, g, k;
	} ok[] = {
		{ "1x8", 1, 8, 1 }, { "2x4", 2, 4, 1 }, { "3x2:2", 3, 2, 2 },
		{ "2x8:2", 2, 8, 2 }, { "16X8:4", 16, 8, 4 }, { "1x1", 1, 1, 1 },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct gangspec g = { 0, 0, 0 };

		ck_assert_msg(gangspec_parse(ok[i].s, 1, &g, err, sizeof(err)) == 0, "%s: %s",
			      ok[i].s, err);
		ck_assert_uint_eq(g.nodes, ok[i].n);
		ck_assert_uint_eq(g.gpus_per_node, ok[i].g);
		ck_assert_uint_eq(g.gpus_per_actor, ok[i].k);
	}
}
END_TEST

START_TEST(refuses_bad_values_with_reason)
{
	static const struct {
		const char *s, *says;
	} bad[] = {
		{ "0x8", "at least 1 node" },
		{ "1x0", "at least 1 GPU per node" },
		{ "abc", "want NODESxGPUS" },
		{ "2x8:3", "8 GPUs per node do not divide into actors of 3 GPUs" },
		{ "2x8:0", "at least 1 GPU" },
		{ "", "want NODESxGPUS" },
		{ "2x", "want NODESxGPUS" },
		{ "x8", "want NODESxGPUS" },
		{ "2x8:", "want NODESxGPUS" },
		{ "-1x8", "want NODESxGPUS" },
		{ "2 x8", "want NODESxGPUS" },
		{ "2x8x", "want NODESxGPUS" },
		{ "99999999999x8", "want NODESxGPUS" },
		{ "2x100000", "want NODESxGPUS" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gangspec g = { 7, 7, 7 };

		err[0] = '\0';
		ck_assert_msg(gangspec_parse(bad[i].s, 1, &g, err, sizeof(err)) == -1, "%s accepted",
			      bad[i].s);
		ck_assert_msg(strstr(err, bad[i].says), "%s: '%s'", bad[i].s, err);
		ck_assert_msg(strstr(err, "--spoke-gang="), "%s: '%s'", bad[i].s, err);
		ck_assert_msg(!strchr(err, '\n'), "one line");
		ck_assert_uint_eq(g.nodes, 7); /* untouched on failure */
	}
	ck_assert_int_eq(gangspec_parse(NULL, 1, &(struct gangspec){ 0 }, err, sizeof(err)), -1);
}
END_TEST

START_TEST(site_default_gpus_per_actor)
{
	struct gangspec g;
	char out[32];

	ck_assert_int_eq(gangspec_parse("2x8", 4, &g, err, sizeof(err)), 0);
	ck_assert_uint_eq(g.gpus_per_actor, 4);
	gangspec_format(&g, out, sizeof(out));
	ck_assert_str_eq(out, "2x8:4");
	/* An explicit :k wins; a default that does not divide G is refused. */
	ck_assert_int_eq(gangspec_parse("2x8:1", 4, &g, err, sizeof(err)), 0);
	gangspec_format(&g, out, sizeof(out));
	ck_assert_str_eq(out, "2x8");
	ck_assert_int_eq(gangspec_parse("2x6", 4, &g, err, sizeof(err)), -1);
}
END_TEST

START_TEST(plugstack_arguments)
{
	struct spank_conf c = { 0, false };
	char *good[] = { "gpus_per_actor=2", "mismatch=warn" };
	char *unknown[] = { "gpus_per_actr=2" };
	char *badval[] = { "gpus_per_actor=0" };
	char *badmode[] = { "mismatch=maybe" };

	ck_assert_int_eq(spank_conf_parse(0, NULL, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.gpus_per_actor, 1);
	ck_assert(c.mismatch_is_error);
	ck_assert_int_eq(spank_conf_parse(2, good, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.gpus_per_actor, 2);
	ck_assert(!c.mismatch_is_error);
	ck_assert_int_eq(spank_conf_parse(1, unknown, &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "unknown argument 'gpus_per_actr=2'"), "%s", err);
	ck_assert_int_eq(spank_conf_parse(1, badval, &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "gpus_per_actor=0"), "%s", err);
	ck_assert_int_eq(spank_conf_parse(1, badmode, &c, err, sizeof(err)), -1);
	ck_assert_uint_eq(c.gpus_per_actor, 2); /* untouched on failure */
}
END_TEST

START_TEST(step_checks)
{
	struct gangspec g;

	gangspec_parse("2x4", 1, &g, err, sizeof(err));
	ck_assert_int_eq(gangspec_check_step(&g, 2, 4, 4, err, sizeof(err)), 0);
	ck_assert_int_eq(gangspec_check_step(&g, 3, 8, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(gangspec_check_step(&g, 1, 4, 4, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "asks for 2 nodes; this step has 1"), "%s", err);
	ck_assert_int_eq(gangspec_check_step(&g, 2, 2, 2, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "asks for 4 GPUs per node; this step has 2"), "%s", err);
	ck_assert_int_eq(gangspec_check_step(&g, 2, 4, 5, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "5 tasks of 1 GPUs each"), "%s", err);
}
END_TEST

START_TEST(gpus_per_task_are_disjoint)
{
	static const char *node = "3,5,6,7,10,11,12,13";
	char out[64], all[256] = "";

	/* 8 tasks x 1 GPU: each its own entry, together the whole list. */
	for (unsigned t = 0; t < 8; t++) {
		ck_assert_int_eq(gpulist_for_task(node, t, 8, 1, out, sizeof(out), err, sizeof(err)), 0);
		ck_assert_uint_eq(gpulist_count(out), 1);
		strcat(all, t ? "," : "");
		strcat(all, out);
	}
	ck_assert_str_eq(all, node);
	/* 4 tasks x 2 GPUs. */
	ck_assert_int_eq(gpulist_for_task(node, 0, 4, 2, out, sizeof(out), err, sizeof(err)), 0);
	ck_assert_str_eq(out, "3,5");
	ck_assert_int_eq(gpulist_for_task(node, 3, 4, 2, out, sizeof(out), err, sizeof(err)), 0);
	ck_assert_str_eq(out, "12,13");
	/* One task per node (an agent) keeps the whole list. */
	ck_assert_int_eq(gpulist_for_task(node, 0, 1, 2, out, sizeof(out), err, sizeof(err)), 0);
	ck_assert_str_eq(out, node);
	/* UUIDs are entries like any other. */
	ck_assert_int_eq(gpulist_for_task("GPU-a,GPU-b", 1, 2, 1, out, sizeof(out), err,
					  sizeof(err)), 0);
	ck_assert_str_eq(out, "GPU-b");
}
END_TEST

START_TEST(too_few_gpus_for_tasks)
{
	char out[64];

	ck_assert_int_eq(gpulist_for_task("0,1,2", 3, 4, 1, out, sizeof(out), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "task 3 of 4 needs GPUs 3-3 but the step has 3"), "%s", err);
	ck_assert_int_eq(gpulist_for_task("", 0, 2, 1, out, sizeof(out), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "none"), "%s", err);
	ck_assert_int_eq(gpulist_for_task("0,1", 1, 2, 2, out, sizeof(out), err, sizeof(err)), -1);
	/* An output buffer too small is an error, not a truncation. */
	ck_assert_int_eq(gpulist_for_task("10,11", 0, 2, 1, out, 2, err, sizeof(err)), -1);
	ck_assert_uint_eq(gpulist_count(""), 0);
	ck_assert_uint_eq(gpulist_count("0"), 1);
	ck_assert_uint_eq(gpulist_count("0,1,2"), 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gangspec");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, parses_good_values);
	tcase_add_test(tc, refuses_bad_values_with_reason);
	tcase_add_test(tc, site_default_gpus_per_actor);
	tcase_add_test(tc, plugstack_arguments);
	tcase_add_test(tc, step_checks);
	tcase_add_test(tc, gpus_per_task_are_disjoint);
	tcase_add_test(tc, too_few_gpus_for_tasks);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* test_syncjournal.c - the commit journal (core/syncjournal): a plan reads
 * back as written, "done" lines mark steps, a line cut by a crash is
 * ignored, and anything else malformed is refused with its line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/syncjournal.h"

static char *plan(size_t *len)
{
    sync_journal j = {0};
    fvm_error err;
    assert_int_equal(sync_journal_add(&j, SYNC_STEP_MKDIR, "\\??\\C:\\d", NULL, &err), FVM_OK);
    assert_int_equal(sync_journal_add(&j, SYNC_STEP_LAND, "\\??\\C:\\d\\f.txt", NULL, &err), FVM_OK);
    assert_int_equal(sync_journal_add(&j, SYNC_STEP_LAND_AS, "\\??\\C:\\a", "\\??\\C:\\a (box)", &err), FVM_OK);
    assert_int_equal(sync_journal_add(&j, SYNC_STEP_REG_VALUE, "\\REGISTRY\\MACHINE\\X", "", &err), FVM_OK);
    assert_int_equal(sync_journal_add(&j, SYNC_STEP_DELETE, "\\??\\C:\\x\ty", NULL, &err), FVM_E_INVALID);
    assert_int_equal(sync_journal_add(&j, SYNC_STEP_LAND, "\\??\\C:\\x", "y", &err), FVM_E_INVALID);
    assert_int_equal(sync_journal_add(&j, (sync_step_kind)'?', "\\??\\C:\\x", NULL, &err), FVM_E_INVALID);
    char *text;
    assert_int_equal(sync_journal_format(&j, &text, len, &err), FVM_OK);
    sync_journal_free(&j);
    return text;
}

static void test_round_trip_and_done(void **state)
{
    size_t len;
    char *text = plan(&len);
    char buf[1024];
    assert_true(len + 40 < sizeof buf);
    memcpy(buf, text, len);
    memcpy(buf + len, "done 0\ndone 2\ndone 1", 20);   /* the last one cut short */
    sync_journal j;
    fvm_error err;
    assert_int_equal(sync_journal_parse(buf, len + 20, &j, &err), FVM_OK);
    assert_int_equal(j.count, 4);
    assert_int_equal(j.done_count, 2);
    assert_true(j.steps[0].done && !j.steps[1].done && j.steps[2].done && !j.steps[3].done);
    assert_int_equal(j.steps[2].kind, SYNC_STEP_LAND_AS);
    assert_string_equal(j.steps[2].path2, "\\??\\C:\\a (box)");
    assert_string_equal(j.steps[3].path2, "");
    assert_null(j.steps[1].path2);
    sync_journal_free(&j);
    free(text);
}

static void expect_refused(const char *text, const char *what)
{
    sync_journal j;
    fvm_error err;
    assert_int_equal(sync_journal_parse(text, strlen(text), &j, &err), FVM_E_INVALID);
    if (!strstr(err.message, what))
        fail_msg("'%s' not in '%s'", what, err.message);
    assert_null(j.steps);
}

static void test_malformed_is_refused(void **state)
{
    expect_refused("", "incomplete plan");
    expect_refused("FVM-COMMIT-JOURNAL 2\nend 0\n", "line 1");
    expect_refused("FVM-COMMIT-JOURNAL 1\nstep\tL\t\\??\\C:\\a\n", "incomplete plan");
    expect_refused("FVM-COMMIT-JOURNAL 1\nstep\tL\t\\??\\C:\\a\nend 2\n", "end says 2");
    expect_refused("FVM-COMMIT-JOURNAL 1\nstep\tZ\t\\??\\C:\\a\nend 1\n", "line 2: unknown step kind");
    expect_refused("FVM-COMMIT-JOURNAL 1\nstep\tK\t\\??\\C:\\a\nend 1\n", "needs a second path");
    expect_refused("FVM-COMMIT-JOURNAL 1\nend 0\ndone 0\n", "line 3");
    expect_refused("FVM-COMMIT-JOURNAL 1\nend 0\nstep\tL\tx\n", "line 3");
    expect_refused("FVM-COMMIT-JOURNAL 1\nend 00000000001\n", "line 2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_done),
        cmocka_unit_test(test_malformed_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

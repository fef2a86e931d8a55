/* test_merge3.c - three-way merge of text (core/merge3): changes on either
 * side kept, the same change taken once, overlapping changes as conflicts
 * with markers, binary refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/merge3.h"

static merge3_result run(const char *base, const char *ours, const char *theirs, fvm_status want)
{
    merge3_result r;
    fvm_error err;
    assert_int_equal(merge3(base, strlen(base), ours, strlen(ours), theirs, strlen(theirs), "box", "host", &r, &err),
                     want);
    return r;
}

static void test_changes_on_both_sides_kept(void **state)
{
    merge3_result r = run("a\nb\nc\nd\ne\n", "a\nB\nc\nd\ne\n", "a\nb\nc\nD\ne\nf\n", FVM_OK);
    assert_string_equal(r.text, "a\nB\nc\nD\ne\nf\n");
    assert_int_equal(r.conflicts, 0);
    merge3_free(&r);
    r = run("x\n", "x\n", "y\n", FVM_OK);                 /* one side only */
    assert_string_equal(r.text, "y\n");
    merge3_free(&r);
    r = run("a\nb\n", "a\nc\n", "a\nc\n", FVM_OK);        /* the same change */
    assert_string_equal(r.text, "a\nc\n");
    assert_int_equal(r.conflicts, 0);
    merge3_free(&r);
    r = run("", "new\n", "", FVM_OK);
    assert_string_equal(r.text, "new\n");
    merge3_free(&r);
    r = run("a\nb\nc\n", "a\nc\n", "a\nb\nc\nd", FVM_OK); /* a delete, an append without a final newline */
    assert_string_equal(r.text, "a\nc\nd");
    merge3_free(&r);
}

static void test_overlap_is_a_conflict(void **state)
{
    merge3_result r = run("a\nb\nc\n", "a\nmine\nc\n", "a\ntheirs\nc\n", FVM_OK);
    assert_string_equal(r.text, "a\n<<<<<<< box\nmine\n=======\ntheirs\n>>>>>>> host\nc\n");
    assert_int_equal(r.conflicts, 1);
    merge3_free(&r);
    r = run("a", "b", "c", FVM_OK);
    assert_string_equal(r.text, "<<<<<<< box\nb\n=======\nc\n>>>>>>> host\n");
    merge3_free(&r);
}

static void test_binary_is_refused(void **state)
{
    merge3_result r;
    fvm_error err;
    assert_int_equal(merge3("a\0b", 3, "a", 1, "b", 1, "box", "host", &r, &err), FVM_E_UNSUPPORTED);
    assert_null(r.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes_on_both_sides_kept),
        cmocka_unit_test(test_overlap_is_a_conflict),
        cmocka_unit_test(test_binary_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_boxname.c - box name validation: what is accepted, and that every
 * refusal names the problem. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/boxname.h"

static void accepts(const char *name)
{
    fvm_error err = {0};
    assert_int_equal(fvm_box_name_validate(name, &err), FVM_OK);
}

static void refuses(const char *name, const char *expect_in_message)
{
    fvm_error err = {0};
    assert_int_equal(fvm_box_name_validate(name, &err), FVM_E_INVALID);
    if (!strstr(err.message, expect_in_message))
        fail_msg("message for '%s' was '%s', expected to contain '%s'", name, err.message, expect_in_message);
}

static void test_accepts_ordinary_names(void **state)
{
    accepts("default");
    accepts("a");
    accepts("Box-1_test.v2");
    accepts("9lives");
    accepts("console");       /* only the exact device stem is reserved */
    accepts("com10");
    accepts("12345678901234567890123456789012");
}

static void test_refuses_relative_and_separators(void **state)
{
    refuses("", "empty");
    refuses(NULL, "empty");
    refuses(".", "relative");
    refuses("..", "relative");
    refuses("a\\b", "separator");
    refuses("a/b", "separator");
    refuses("c:x", "separator");
    refuses("..\\x", "separator");
    refuses(".hidden", "start with a letter");
    refuses("-x", "start with a letter");
    refuses("box.", "end with '.'");
}

static void test_refuses_bad_characters(void **state)
{
    refuses("a b", "position 2");
    refuses("a*b", "position 2");
    refuses("x\"", "position 2");
    refuses("caf\xc3\xa9", "position 4");
    refuses("a\tb", "not allowed");
}

static void test_refuses_device_names(void **state)
{
    refuses("CON", "device");
    refuses("nul", "device");
    refuses("Aux", "device");
    refuses("prn.txt", "device");
    refuses("com1", "device");
    refuses("LPT9", "device");
    refuses("lpt0.box", "device");
}

static void test_refuses_too_long(void **state)
{
    refuses("123456789012345678901234567890123", "too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_ordinary_names),
        cmocka_unit_test(test_refuses_relative_and_separators),
        cmocka_unit_test(test_refuses_bad_characters),
        cmocka_unit_test(test_refuses_device_names),
        cmocka_unit_test(test_refuses_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

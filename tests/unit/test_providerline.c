/* test_providerline.c - the relay sets the box field of a provider's
 * question: the rest is untouched, and lines without the field, box names
 * that are not one field, and small buffers are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/providerline.h"

static void test_the_box_field_is_replaced(void **state)
{
    const char *line = "FVMASK/1\tother-box\t42\tapp.exe\tfile\topen\t\\??\\C:\\x\n";
    char out[128];
    size_t n = 0;
    fvm_error err;
    assert_int_equal(provider_line_set_box(line, strlen(line), "mine", out, sizeof out, &n, &err), FVM_OK);
    out[n] = 0;
    assert_string_equal(out, "FVMASK/1\tmine\t42\tapp.exe\tfile\topen\t\\??\\C:\\x\n");
}

static void test_an_empty_box_field_is_filled(void **state)
{
    const char *line = "FVMASK/1\t\t42\n";
    char out[64];
    size_t n = 0;
    assert_int_equal(provider_line_set_box(line, strlen(line), "b", out, sizeof out, &n, NULL), FVM_OK);
    assert_int_equal(n, strlen("FVMASK/1\tb\t42\n"));
    assert_memory_equal(out, "FVMASK/1\tb\t42\n", n);
}

static void test_refusals(void **state)
{
    char out[16];
    size_t n = 0;
    fvm_error err;
    assert_int_equal(provider_line_set_box("FVMASK/1 no tabs\n", 17, "b", out, sizeof out, &n, &err), FVM_E_INVALID);
    assert_int_equal(provider_line_set_box("FVMASK/1\tonly one\n", 18, "b", out, sizeof out, &n, &err), FVM_E_INVALID);
    assert_int_equal(provider_line_set_box("a\tb\tc\n", 6, "x\ty", out, sizeof out, &n, &err), FVM_E_INVALID);
    assert_int_equal(provider_line_set_box("a\tb\tc\n", 6, "", out, sizeof out, &n, &err), FVM_E_INVALID);
    assert_int_equal(provider_line_set_box("a\tb\tc\n", 6, "a-long-box-name", out, 8, &n, &err), FVM_E_RANGE);
    /* A tab past the length given is not seen. */
    assert_int_equal(provider_line_set_box("a\tb\tc\n", 3, "x", out, sizeof out, &n, &err), FVM_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_box_field_is_replaced),
        cmocka_unit_test(test_an_empty_box_field_is_filled),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

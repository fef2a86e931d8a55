/* test_limits.c - the box resource limits' text: what fvm create / fvm set
 * accept, what they refuse and with which message, and the printed form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/limits.h"

static uint64_t accepts(limit_key key, const char *text)
{
    fvm_error err = {0};
    uint64_t v = 12345;
    if (limit_value_parse(key, text, &v, &err) != FVM_OK)
        fail_msg("'%s' refused: %s", text, err.message);
    return v;
}

static void refuses(limit_key key, const char *text, const char *expect_in_message)
{
    fvm_error err = {0};
    uint64_t v = 777;
    assert_int_equal(limit_value_parse(key, text, &v, &err), FVM_E_INVALID);
    assert_int_equal(v, 777);
    if (!strstr(err.message, expect_in_message))
        fail_msg("message for '%s' was '%s', expected to contain '%s'", text, err.message, expect_in_message);
}

static void test_cpu(void **state)
{
    assert_int_equal(accepts(LIMIT_CPU, "25%"), 25);
    assert_int_equal(accepts(LIMIT_CPU, "25"), 25);
    assert_int_equal(accepts(LIMIT_CPU, "100%"), 100);
    assert_int_equal(accepts(LIMIT_CPU, "1%"), 1);
    assert_int_equal(accepts(LIMIT_CPU, "none"), 0);
    refuses(LIMIT_CPU, "0", "0% would never");
    refuses(LIMIT_CPU, "0%", "0% would never");
    refuses(LIMIT_CPU, "150%", "more than 100%");
    refuses(LIMIT_CPU, "101", "more than 100%");
    refuses(LIMIT_CPU, "25%%", "unexpected text");
    refuses(LIMIT_CPU, "-5%", "not a number");
    refuses(LIMIT_CPU, " 5", "not a number");
    refuses(LIMIT_CPU, "", "empty");
    refuses(LIMIT_CPU, "99999999999999999999999", "not a number");
    refuses(LIMIT_CPU, "2.5%", "unexpected text");
}

static void test_memory(void **state)
{
    assert_int_equal(accepts(LIMIT_MEMORY, "512M"), 512ull << 20);
    assert_int_equal(accepts(LIMIT_MEMORY, "512MB"), 512ull << 20);
    assert_int_equal(accepts(LIMIT_MEMORY, "512MiB"), 512ull << 20);
    assert_int_equal(accepts(LIMIT_MEMORY, "2g"), 2ull << 30);
    assert_int_equal(accepts(LIMIT_PROCESS_MEMORY, "4194304"), 4ull << 20);
    refuses(LIMIT_MEMORY, "12XB", "unknown unit");
    refuses(LIMIT_MEMORY, "12MX", "unknown unit");
    refuses(LIMIT_MEMORY, "0", "0 is not a limit");
    refuses(LIMIT_MEMORY, "1M", "too small");
    refuses(LIMIT_MEMORY, "20000000T", "not a size");   /* overflows 64 bits */
    refuses(LIMIT_MEMORY, "2000T", "too large");
    refuses(LIMIT_MEMORY, "M", "not a size");
}

static void test_io(void **state)
{
    assert_int_equal(accepts(LIMIT_IO_BANDWIDTH, "20MB/s"), 20ull << 20);
    assert_int_equal(accepts(LIMIT_IO_BANDWIDTH, "20M"), 20ull << 20);
    assert_int_equal(accepts(LIMIT_IO_OPS, "500"), 500);
    assert_int_equal(accepts(LIMIT_IO_OPS, "500/s"), 500);
    refuses(LIMIT_IO_BANDWIDTH, "20MB/h", "unknown unit");
    refuses(LIMIT_IO_BANDWIDTH, "1K/s", "too small");
    refuses(LIMIT_IO_OPS, "0", "0 is not a limit");
    refuses(LIMIT_IO_OPS, "5x", "unexpected text");
    assert_int_equal(accepts(LIMIT_PROCS, "20"), 20);
    refuses(LIMIT_PROCS, "20/s", "unexpected text");
    refuses(LIMIT_PROCS, "100001", "too large");
}

static void test_keys_and_assignments(void **state)
{
    limit_key key;
    uint64_t v;
    fvm_error err = {0};
    assert_int_equal(limit_assignment_parse("io-bandwidth=1M/s", &key, &v, &err), FVM_OK);
    assert_int_equal(key, LIMIT_IO_BANDWIDTH);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(limit_assignment_parse("process_memory=none", &key, &v, &err), FVM_OK);
    assert_int_equal(key, LIMIT_PROCESS_MEMORY);
    assert_int_equal(v, 0);
    assert_int_equal(limit_assignment_parse("gpu=5", &key, &v, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "unknown limit 'gpu'"));
    assert_int_equal(limit_assignment_parse("cpu", &key, &v, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "key=value"));
    assert_int_equal(limit_assignment_parse("cpu=150%", &key, &v, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "bad cpu '150%'"));
    assert_string_equal(limit_ini_key(LIMIT_IO_OPS), "io_ops");
    assert_string_equal(limit_name(LIMIT_IO_OPS), "io-ops");
}

static void test_format_round_trips(void **state)
{
    char text[32];
    limit_format(LIMIT_MEMORY, 512ull << 20, text, sizeof text);
    assert_string_equal(text, "512M");
    limit_format(LIMIT_MEMORY, 3ull << 30, text, sizeof text);
    assert_string_equal(text, "3G");
    limit_format(LIMIT_IO_BANDWIDTH, 20ull << 20, text, sizeof text);
    assert_string_equal(text, "20M/s");
    limit_format(LIMIT_CPU, 25, text, sizeof text);
    assert_string_equal(text, "25%");
    limit_format(LIMIT_IO_OPS, 0, text, sizeof text);
    assert_string_equal(text, "none");
    limit_format(LIMIT_PROCESS_MEMORY, 4194305, text, sizeof text);
    assert_string_equal(text, "4194305");
    for (int k = 0; k < LIMIT_KEY_COUNT; k++) {
        uint64_t samples[] = {0, 1, 7, 25, 100, 4ull << 20, 5000000, 20ull << 20};
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
            uint64_t back;
            limit_format((limit_key)k, samples[i], text, sizeof text);
            if (limit_value_parse((limit_key)k, text, &back, NULL) == FVM_OK)
                assert_int_equal(back, samples[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_keys_and_assignments),
        cmocka_unit_test(test_format_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_runrequest.c - the command sent to a box's init: round trip, the
 * limits, and every truncation and corruption refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/runrequest.h"

static char *const sample_argv[] = {"/usr/lib/wine/wine64", "/opt/fvm/fvm.exe", "run", "--box", "b", "cmd", NULL};
static char *const sample_envp[] = {"WINEPREFIX=/p", "FVM_OWN_SERVER=1", "EMPTY=", NULL};

static size_t sample(char *buf, size_t cap, run_request_header *h)
{
    fvm_error err;
    assert_int_equal(run_request_encode("/home/u/dir", sample_argv, sample_envp, buf, cap, h, &err), FVM_OK);
    return h->bytes;
}

static void test_round_trip(void **state)
{
    char buf[512];
    run_request_header h;
    sample(buf, sizeof buf, &h);
    assert_int_equal(h.magic, RUN_REQUEST_MAGIC);
    assert_int_equal(h.argc, 6);
    assert_int_equal(h.envc, 3);
    char *cwd, *argv[8], *envp[8];
    fvm_error err;
    assert_int_equal(run_request_decode(&h, buf, &cwd, argv, 8, envp, 8, &err), FVM_OK);
    assert_string_equal(cwd, "/home/u/dir");
    for (int i = 0; i < 6; i++)
        assert_string_equal(argv[i], sample_argv[i]);
    assert_null(argv[6]);
    for (int i = 0; i < 3; i++)
        assert_string_equal(envp[i], sample_envp[i]);
    assert_null(envp[3]);
}

static void test_every_truncation_is_refused(void **state)
{
    char buf[512], copy[512];
    run_request_header h;
    size_t n = sample(buf, sizeof buf, &h);
    for (size_t cut = 0; cut < n; cut++) {
        run_request_header t = h;
        t.bytes = (uint32_t)cut;
        memcpy(copy, buf, cut);
        char *cwd, *argv[8], *envp[8];
        fvm_error err;
        assert_int_equal(run_request_decode(&t, copy, &cwd, argv, 8, envp, 8, &err), FVM_E_INVALID);
        assert_non_null(strstr(err.message, "run request"));
    }
}

static void test_wrong_counts_are_refused(void **state)
{
    char buf[512];
    run_request_header h;
    sample(buf, sizeof buf, &h);
    char *cwd, *argv[8], *envp[8];
    fvm_error err;
    run_request_header t = h;
    t.envc--;   /* one string left over */
    assert_int_equal(run_request_decode(&t, buf, &cwd, argv, 8, envp, 8, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "left over"));
    t = h;
    t.envc++;   /* one string missing */
    assert_int_equal(run_request_decode(&t, buf, &cwd, argv, 8, envp, 8, &err), FVM_E_INVALID);
    t = h;
    t.argc = 0;
    assert_int_equal(run_request_decode(&t, buf, &cwd, argv, 8, envp, 8, &err), FVM_E_INVALID);
    t = h;
    t.magic ^= 1;
    assert_int_equal(run_request_decode(&t, buf, &cwd, argv, 8, envp, 8, &err), FVM_E_INVALID);
    t = h;
    t.bytes = RUN_REQUEST_BYTES_MAX + 1;
    assert_int_equal(run_request_decode(&t, buf, &cwd, argv, 8, envp, 8, &err), FVM_E_INVALID);
    /* Arrays too small for the counts: refused, nothing written past them. */
    char *small[6];
    assert_int_equal(run_request_decode(&h, buf, &cwd, small, 6, envp, 8, &err), FVM_E_RANGE);
    assert_int_equal(run_request_decode(&h, buf, &cwd, argv, 8, envp, 3, &err), FVM_E_RANGE);
}

static void test_empty_program_is_refused(void **state)
{
    char buf[64];
    run_request_header h;
    fvm_error err;
    char *const none[] = {NULL};
    char *const empty[] = {"", NULL};
    assert_int_equal(run_request_encode("/", none, NULL, buf, sizeof buf, &h, &err), FVM_E_INVALID);
    assert_int_equal(run_request_encode("/", empty, NULL, buf, sizeof buf, &h, &err), FVM_E_INVALID);
    /* Forged on the wire: cwd, then an empty program. */
    memcpy(buf, "/\0\0", 3);
    run_request_header t = {RUN_REQUEST_MAGIC, 1, 0, 3};
    char *cwd, *argv[2], *envp[1];
    assert_int_equal(run_request_decode(&t, buf, &cwd, argv, 2, envp, 1, &err), FVM_E_INVALID);
}

static void test_encode_limits(void **state)
{
    char small[16];
    run_request_header h;
    fvm_error err;
    assert_int_equal(run_request_encode("/home/u/dir", sample_argv, sample_envp, small, sizeof small, &h, &err),
                     FVM_E_RANGE);
    static char *many[RUN_REQUEST_ARGS_MAX + 2];
    for (size_t i = 0; i < RUN_REQUEST_ARGS_MAX + 1; i++)
        many[i] = "a";
    char *big = malloc(RUN_REQUEST_BYTES_MAX);
    assert_non_null(big);
    assert_int_equal(run_request_encode("/", many, NULL, big, RUN_REQUEST_BYTES_MAX, &h, &err), FVM_E_RANGE);
    assert_non_null(strstr(err.message, "arguments"));
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_wrong_counts_are_refused),
        cmocka_unit_test(test_empty_program_is_refused),
        cmocka_unit_test(test_encode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

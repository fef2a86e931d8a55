/* test_brokermsg.c - the audit message between runtime and broker: round
 * trip, and every truncation and corruption refused with its offset. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/brokermsg.h"

static brokermsg_text t(const char *s)
{
    brokermsg_text x = {s, strlen(s)};
    return x;
}

static size_t sample(uint8_t *buf, size_t cap)
{
    brokermsg_audit m = {0, 1234, t("create"), t("deny"), t("box.ini:7"), t("C:\\app.exe"),
                         t("\\??\\C:\\Data\\caf\xc3\xa9.txt")};
    return brokermsg_audit_encode(&m, buf, cap);
}

static void test_round_trip(void **state)
{
    uint8_t buf[512];
    size_t n = sample(buf, sizeof buf);
    assert_true(n > BROKERMSG_AUDIT_HEADER);
    brokermsg_audit m;
    fvm_error err;
    assert_int_equal(brokermsg_audit_decode(buf, n, &m, &err), FVM_OK);
    assert_int_equal(m.pid, 1234);
    assert_int_equal(m.op.len, 6);
    assert_memory_equal(m.op.text, "create", 6);
    assert_memory_equal(m.rule.text, "box.ini:7", 9);
    assert_int_equal(m.name.len, strlen("\\??\\C:\\Data\\caf\xc3\xa9.txt"));
}

static void test_every_truncation_is_refused(void **state)
{
    uint8_t buf[512];
    size_t n = sample(buf, sizeof buf);
    for (size_t cut = 0; cut < n; cut++) {
        brokermsg_audit m;
        fvm_error err = {0};
        assert_int_equal(brokermsg_audit_decode(buf, cut, &m, &err), FVM_E_INVALID);
        assert_true(err.message[0] != 0);
    }
}

static void test_lengths_that_lie_are_refused(void **state)
{
    uint8_t buf[512];
    size_t n = sample(buf, sizeof buf);
    brokermsg_audit m;
    fvm_error err;
    buf[24] = 0xff;   /* name length far past the end */
    assert_int_equal(brokermsg_audit_decode(buf, n, &m, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "runs past the end"));
    n = sample(buf, sizeof buf);
    buf[0] = 'X';
    assert_int_equal(brokermsg_audit_decode(buf, n, &m, &err), FVM_E_INVALID);
    n = sample(buf, sizeof buf);
    assert_int_equal(brokermsg_audit_decode(buf, n + 1, &m, &err), FVM_E_INVALID);   /* trailing byte */
}

static void test_encode_refuses_what_does_not_fit(void **state)
{
    uint8_t buf[40];
    assert_int_equal(sample(buf, sizeof buf), 0);
}

static void test_quota_messages(void **state)
{
    uint8_t buf[32];
    brokermsg_quota q = {BROKERMSG_RESERVE, 65536, 1234}, back;
    fvm_error err;
    size_t n = brokermsg_quota_encode(&q, buf, sizeof buf);
    assert_int_equal(n, BROKERMSG_RESERVE_SIZE);
    assert_true(brokermsg_is_quota(buf, n));
    assert_int_equal(brokermsg_quota_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.kind, BROKERMSG_RESERVE);
    assert_int_equal(back.bytes, 65536);
    assert_int_equal(back.leftover, 1234);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(brokermsg_quota_decode(buf, cut, &back, &err), FVM_E_INVALID);
    q.bytes = (uint64_t)1 << 63;   /* a negative size on the sender's side */
    n = brokermsg_quota_encode(&q, buf, sizeof buf);
    assert_int_equal(brokermsg_quota_decode(buf, n, &back, &err), FVM_E_INVALID);
    brokermsg_quota f = {BROKERMSG_FREED, 77, 0};
    n = brokermsg_quota_encode(&f, buf, sizeof buf);
    assert_int_equal(n, BROKERMSG_FREED_SIZE);
    assert_int_equal(brokermsg_quota_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.kind, BROKERMSG_FREED);
    assert_int_equal(back.bytes, 77);
    assert_int_equal(brokermsg_quota_decode(buf, n + 8, &back, &err), FVM_E_INVALID);
    assert_int_equal(brokermsg_quota_encode(&f, buf, 8), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_quota_messages),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_lengths_that_lie_are_refused),
        cmocka_unit_test(test_encode_refuses_what_does_not_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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

/* A record with a target (issue 17.7: what the broker decides again). */
static void test_target_round_trip_and_refusals(void **state)
{
    uint8_t buf[512];
    brokermsg_audit m = {4, 99, t("connect"), t("open"), t("policy.ini:3"), t("C:\\a.exe"), t("out:tcp:10.1.2.3:80"),
                         t("out:tcp:10.1.2.3:80|example.com")};
    size_t n = brokermsg_audit_encode(&m, buf, sizeof buf);
    assert_int_equal(n, BROKERMSG_AUDIT2_HEADER + 7 + 4 + 12 + 8 + 19 + 31);
    assert_memory_equal(buf, BROKERMSG_AUDIT2_MAGIC, 8);
    assert_true(brokermsg_is_audit(buf, n));
    brokermsg_audit back;
    fvm_error err;
    assert_int_equal(brokermsg_audit_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.target.len, 31);
    assert_memory_equal(back.target.text, "out:tcp:10.1.2.3:80|example.com", 31);
    assert_int_equal(back.name.len, 19);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(brokermsg_audit_decode(buf, cut, &back, &err), FVM_E_INVALID);
    buf[30] = 1;   /* reserved */
    assert_int_equal(brokermsg_audit_decode(buf, n, &back, &err), FVM_E_INVALID);
    buf[30] = 0;
    /* FVMAUD02 with an empty target: not the one encoding of that message */
    uint8_t empty[64];
    brokermsg_audit e = {4, 1, t("x"), t("deny"), t(""), t(""), t("")};
    size_t k = brokermsg_audit_encode(&e, empty, sizeof empty);
    assert_int_equal(k, BROKERMSG_AUDIT_HEADER + 5);
    assert_memory_equal(empty, BROKERMSG_AUDIT_MAGIC, 8);
    uint8_t forged[64];
    memcpy(forged, BROKERMSG_AUDIT2_MAGIC, 8);
    memcpy(forged + 8, empty + 8, 20);
    memset(forged + 28, 0, 4);
    memcpy(forged + 32, empty + 28, 5);
    assert_int_equal(brokermsg_audit_decode(forged, 37, &back, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "target"));
    /* a target over BROKERMSG_TARGET_MAX is not encoded */
    static char long_target[BROKERMSG_TARGET_MAX + 1];
    memset(long_target, 'a', sizeof long_target);
    m.target.text = long_target;
    m.target.len = sizeof long_target;
    static uint8_t big[4096];
    assert_int_equal(brokermsg_audit_encode(&m, big, sizeof big), 0);
}

/* Box index writes (the broker is the index's only writer). */
static void test_index_messages(void **state)
{
    static const uint16_t key[] = u"\\??\\C:\\DIR\\FILE.TXT", path[] = u"\\??\\C:\\Dir\\file.txt";
    static const uint16_t to[] = u"\\??\\C:\\DIR\\NEW.TXT";
    _Alignas(8) uint8_t buf[512];
    brokermsg_index m = {BROKERMSG_INDEX_RENAME, 1, 77, -5, {1, 2, 3}, key, path, 19, to, NULL, 18};
    size_t n = brokermsg_index_encode(&m, buf, sizeof buf);
    assert_int_equal(n, BROKERMSG_INDEX_HEADER + (19 * 2 + 18) * 2);
    assert_true(brokermsg_is_index(buf, n));
    brokermsg_index back;
    fvm_error err;
    assert_int_equal(brokermsg_index_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.op, BROKERMSG_INDEX_RENAME);
    assert_int_equal(back.len, 19);
    assert_int_equal(back.to_len, 18);
    assert_int_equal(back.base_mtime, -5);
    assert_memory_equal(back.key, key, 19 * 2);
    assert_memory_equal(back.path, path, 19 * 2);
    assert_memory_equal(back.to_key, to, 18 * 2);
    assert_null(back.to_path);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(brokermsg_index_decode(buf, cut, &back, &err), FVM_E_INVALID);
    assert_int_equal(brokermsg_index_decode(buf, n + 2, &back, &err), FVM_E_INVALID);
    /* a rename without a target, a target on a create, an unknown op, stray path bits */
    m.to_len = 0;
    assert_int_equal(brokermsg_index_encode(&m, buf, sizeof buf), 0);
    m.op = BROKERMSG_INDEX_CREATE;
    m.to_len = 18;
    assert_int_equal(brokermsg_index_encode(&m, buf, sizeof buf), 0);
    m.to_len = 0;
    m.op = 99;
    assert_int_equal(brokermsg_index_encode(&m, buf, sizeof buf), 0);
    m.op = BROKERMSG_INDEX_CREATE;
    n = brokermsg_index_encode(&m, buf, sizeof buf);
    assert_int_equal(brokermsg_index_decode(buf, n, &back, &err), FVM_OK);
    buf[68] = 4;
    assert_int_equal(brokermsg_index_decode(buf, n, &back, &err), FVM_E_INVALID);
    buf[68] = 1;
    buf[8] = 6;   /* op past UPDATE */
    assert_int_equal(brokermsg_index_decode(buf, n, &back, &err), FVM_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_quota_messages),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_lengths_that_lie_are_refused),
        cmocka_unit_test(test_encode_refuses_what_does_not_fit),
        cmocka_unit_test(test_target_round_trip_and_refusals),
        cmocka_unit_test(test_index_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_portmap.c - a box's loopback port map (core/portmap.c): claims,
 * conflicts, an owner that ended, lookups both ways, publishing, the
 * publish parser's errors with their column, and the pipe request. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/portmap.h"

static portmap g_map;

static int only_pid_7_alive(uint32_t pid, void *ctx)
{
    (void)ctx;
    return pid == 7;
}

static void test_claim_bind_lookup_release(void **state)
{
    portmap *m = &g_map;
    fvm_error err;
    portmap_init(m);
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 8080, 7, NULL, NULL, &err), FVM_OK);
    assert_int_equal(portmap_real_of(m, PORTMAP_TCP, 4, 8080), 0);   /* not bound yet */
    assert_int_equal(portmap_bound(m, PORTMAP_TCP, 4, 8080, 40001, 7, &err), FVM_OK);
    assert_int_equal(portmap_real_of(m, PORTMAP_TCP, 4, 8080), 40001);
    assert_int_equal(portmap_virtual_of(m, PORTMAP_TCP, 4, 40001), 8080);
    /* Other protocol, other family, other port: separate. */
    assert_int_equal(portmap_real_of(m, PORTMAP_UDP, 4, 8080), 0);
    assert_int_equal(portmap_real_of(m, PORTMAP_TCP, 6, 8080), 0);
    assert_int_equal(portmap_real_of(m, PORTMAP_TCP, 4, 8081), 0);
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 6, 8080, 7, NULL, NULL, &err), FVM_OK);
    assert_int_equal(portmap_claim(m, PORTMAP_UDP, 4, 8080, 7, NULL, NULL, &err), FVM_OK);
    /* The same port twice: in use. */
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 8080, 9, NULL, NULL, &err), FVM_E_EXISTS);
    /* Another process cannot bind (or release) a claim it does not hold. */
    assert_int_equal(portmap_bound(m, PORTMAP_TCP, 6, 8080, 40002, 9, &err), FVM_E_NOTFOUND);
    assert_int_equal(portmap_release(m, PORTMAP_TCP, 4, 8080, 9), 0);
    /* Two virtual ports cannot share a real one. */
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 9090, 7, NULL, NULL, &err), FVM_OK);
    assert_int_equal(portmap_bound(m, PORTMAP_TCP, 4, 9090, 40001, 7, &err), FVM_E_EXISTS);
    assert_int_equal(portmap_release(m, PORTMAP_TCP, 4, 8080, 7), 1);
    assert_int_equal(portmap_real_of(m, PORTMAP_TCP, 4, 8080), 0);
    assert_int_equal(portmap_virtual_of(m, PORTMAP_TCP, 4, 40001), 0);
    assert_int_equal(portmap_forget_pid(m, 7), 3);
    assert_int_equal(m->count, 0);
}

static void test_owner_that_ended_gives_way(void **state)
{
    portmap *m = &g_map;
    fvm_error err;
    portmap_init(m);
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 80, 5, NULL, NULL, &err), FVM_OK);
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 81, 7, NULL, NULL, &err), FVM_OK);
    /* pid 5 ended: its port is free for 7; 7's own is not free for 8. */
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 80, 7, only_pid_7_alive, NULL, &err), FVM_OK);
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 81, 8, only_pid_7_alive, NULL, &err), FVM_E_EXISTS);
    assert_int_equal(m->count, 2);
    assert_int_equal(m->seq & 1, 0);
}

static void test_bad_claims_and_a_full_map(void **state)
{
    portmap *m = &g_map;
    fvm_error err;
    portmap_init(m);
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 4, 0, 1, NULL, NULL, &err), FVM_E_INVALID);
    assert_int_equal(portmap_claim(m, 3, 4, 80, 1, NULL, NULL, &err), FVM_E_INVALID);
    assert_int_equal(portmap_claim(m, PORTMAP_TCP, 5, 80, 1, NULL, NULL, &err), FVM_E_INVALID);
    for (unsigned i = 0; i < PORTMAP_MAX; i++)
        assert_int_equal(portmap_claim(m, PORTMAP_UDP, 4, (uint16_t)(1000 + i), 1, NULL, NULL, &err), FVM_OK);
    assert_int_equal(portmap_claim(m, PORTMAP_UDP, 4, 999, 1, NULL, NULL, &err), FVM_E_RANGE);
    /* A reader with the writer stopped mid-write gives up: no mapping. */
    m->seq |= 1;
    assert_int_equal(portmap_real_of(m, PORTMAP_UDP, 4, 1000), 0);
    m->seq++;
    portmap_entry entries[PORTMAP_MAX];
    portmap_publish pub[4];
    size_t npub;
    assert_int_equal(portmap_snapshot(m, entries, PORTMAP_MAX, pub, 4, &npub), PORTMAP_MAX);
    assert_int_equal(npub, 0);
    /* A map that is not one answers nothing. */
    m->magic = 0;
    assert_int_equal(portmap_virtual_of(m, PORTMAP_UDP, 4, 1000), 0);
}

static void test_publish_parse_and_lookup(void **state)
{
    portmap_publish p[PORTMAP_PUBLISH_MAX];
    size_t n;
    fvm_error err;
    const char *text = "18080:8080, 5353:53/udp 443:8443/tcp";
    assert_int_equal(portmap_publish_parse(text, strlen(text), p, PORTMAP_PUBLISH_MAX, &n, &err), FVM_OK);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].host, 18080);
    assert_int_equal(p[0].box, 8080);
    assert_int_equal(p[0].proto, PORTMAP_TCP);
    assert_int_equal(p[1].proto, PORTMAP_UDP);
    assert_int_equal(p[2].box, 8443);
    char out[128];
    portmap_publish_format(p, n, out, sizeof out);
    assert_string_equal(out, "18080:8080,5353:53/udp,443:8443");
    portmap *m = &g_map;
    portmap_init(m);
    portmap_set_publish(m, p, n);
    assert_int_equal(portmap_published(m, PORTMAP_TCP, 8080), 18080);
    assert_int_equal(portmap_published(m, PORTMAP_UDP, 53), 5353);
    assert_int_equal(portmap_published(m, PORTMAP_TCP, 53), 0);
    assert_int_equal(portmap_publish_parse("none", 4, p, 4, &n, &err), FVM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(portmap_publish_parse("", 0, p, 4, &n, &err), FVM_OK);
    assert_int_equal(n, 0);
    portmap_publish_format(p, 0, out, sizeof out);
    assert_string_equal(out, "none");
}

static void expect_error(const char *text, const char *message)
{
    portmap_publish p[4];
    size_t n;
    fvm_error err;
    assert_int_equal(portmap_publish_parse(text, strlen(text), p, 4, &n, &err), FVM_E_PARSE);
    assert_string_equal(err.message, message);
}

static void test_publish_errors_name_the_column(void **state)
{
    expect_error("8080", "column 5: expected HOSTPORT:BOXPORT, got '8080'");
    expect_error("80:99999", "column 4: bad box port in '80:99999'");
    expect_error("0:80", "column 1: bad host port in '0:80'");
    expect_error("80:81/sctp", "column 7: the protocol is tcp or udp, not 'sctp'");
    expect_error("80:81x", "column 6: unexpected text after '80:81x'");
    expect_error("80:81,80:82", "column 7: host port published twice: '80:82'");
    expect_error("80:81 90:81", "column 7: box port published twice: '90:81'");
    portmap_publish p[1];
    size_t n;
    fvm_error err;
    assert_int_equal(portmap_publish_parse("1:2,3:4", 7, p, 1, &n, &err), FVM_E_RANGE);
    /* The same ports over two protocols are two publications. */
    portmap_publish q[4];
    assert_int_equal(portmap_publish_parse("53:53,53:53/udp", 15, q, 4, &n, &err), FVM_OK);
    assert_int_equal(n, 2);
}

static void test_request_round_trip_and_refusals(void **state)
{
    portmap_request r = {PORTMAP_OP_BOUND, PORTMAP_TCP, 6, 8080, 40001}, back;
    uint8_t buf[32];
    fvm_error err;
    size_t n = portmap_request_encode(&r, buf, sizeof buf);
    assert_int_equal(n, PORTMAP_REQUEST_SIZE);
    assert_true(portmap_is_request(buf, n));
    assert_int_equal(portmap_request_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.op, PORTMAP_OP_BOUND);
    assert_int_equal(back.family, 6);
    assert_int_equal(back.vport, 8080);
    assert_int_equal(back.real, 40001);
    assert_int_equal(portmap_request_encode(&r, buf, 19), 0);
    for (size_t len = 0; len < n; len++)
        assert_int_equal(portmap_request_decode(buf, len, &back, &err), FVM_E_INVALID);
    uint8_t bad[32];
    memcpy(bad, buf, n);
    bad[8] = 9;   /* op */
    assert_int_equal(portmap_request_decode(bad, n, &back, &err), FVM_E_INVALID);
    memcpy(bad, buf, n);
    bad[12] = 3;   /* proto raw */
    assert_int_equal(portmap_request_decode(bad, n, &back, &err), FVM_E_INVALID);
    memcpy(bad, buf, n);
    bad[16] = bad[17] = 0;   /* BOUND to port 0 */
    assert_int_equal(portmap_request_decode(bad, n, &back, &err), FVM_E_INVALID);
    memcpy(bad, buf, n);
    bad[0] = 'X';
    assert_false(portmap_is_request(bad, n));
}

static void test_shared_ports_join_only_shared_bound_entries(void **state)
{
    portmap *m = &g_map;
    fvm_error err;
    uint16_t join = 99;
    portmap_init(m);
    assert_int_equal(portmap_claim_flags(m, PORTMAP_UDP, 4, 5353, 7, PORTMAP_SHARED, NULL, NULL, &join, &err), FVM_OK);
    assert_int_equal(join, 0);
    /* Still being bound: nothing to join yet. */
    assert_int_equal(portmap_claim_flags(m, PORTMAP_UDP, 4, 5353, 8, PORTMAP_SHARED, NULL, NULL, &join, &err),
                     FVM_E_EXISTS);
    assert_int_equal(portmap_bound(m, PORTMAP_UDP, 4, 5353, 40001, 7, &err), FVM_OK);
    /* A socket without SO_REUSEADDR cannot take it; one with it joins. */
    assert_int_equal(portmap_claim_flags(m, PORTMAP_UDP, 4, 5353, 8, 0, NULL, NULL, &join, &err), FVM_E_EXISTS);
    assert_int_equal(portmap_claim_flags(m, PORTMAP_UDP, 4, 5353, 8, PORTMAP_SHARED, NULL, NULL, &join, &err), FVM_OK);
    assert_int_equal(join, 40001);
    assert_int_equal(portmap_bound(m, PORTMAP_UDP, 4, 5353, 40001, 8, &err), FVM_OK);
    assert_int_equal(portmap_virtual_of(m, PORTMAP_UDP, 4, 40001), 5353);
    /* One leaves: the port stays the other's. */
    assert_int_equal(portmap_release(m, PORTMAP_UDP, 4, 5353, 7), 1);
    assert_int_equal(portmap_real_of(m, PORTMAP_UDP, 4, 5353), 40001);
    /* The real port is not another box port's, shared or not. */
    assert_int_equal(portmap_claim_flags(m, PORTMAP_UDP, 4, 6000, 9, PORTMAP_SHARED, NULL, NULL, &join, &err), FVM_OK);
    assert_int_equal(portmap_bound(m, PORTMAP_UDP, 4, 6000, 40001, 9, &err), FVM_E_EXISTS);
    /* A port held without SO_REUSEADDR is never joined. */
    assert_int_equal(portmap_claim_flags(m, PORTMAP_TCP, 4, 80, 7, 0, NULL, NULL, &join, &err), FVM_OK);
    assert_int_equal(portmap_bound(m, PORTMAP_TCP, 4, 80, 40002, 7, &err), FVM_OK);
    assert_int_equal(portmap_claim_flags(m, PORTMAP_TCP, 4, 80, 8, PORTMAP_SHARED, NULL, NULL, &join, &err),
                     FVM_E_EXISTS);
    assert_int_equal(portmap_claim_flags(m, PORTMAP_TCP, 4, 81, 8, 4, NULL, NULL, &join, &err), FVM_E_INVALID);
}

static void test_request_keeps_flags(void **state)
{
    portmap_request r = {PORTMAP_OP_CLAIM, PORTMAP_UDP, 4, 53, 0, PORTMAP_SHARED}, back;
    uint8_t buf[PORTMAP_REQUEST_SIZE];
    fvm_error err;
    assert_int_equal(portmap_request_encode(&r, buf, sizeof buf), PORTMAP_REQUEST_SIZE);
    assert_int_equal(portmap_request_decode(buf, sizeof buf, &back, &err), FVM_OK);
    assert_int_equal(back.flags, PORTMAP_SHARED);
    buf[18] = 2;
    assert_int_equal(portmap_request_decode(buf, sizeof buf, &back, &err), FVM_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_bind_lookup_release),
        cmocka_unit_test(test_shared_ports_join_only_shared_bound_entries),
        cmocka_unit_test(test_request_keeps_flags),
        cmocka_unit_test(test_owner_that_ended_gives_way),
        cmocka_unit_test(test_bad_claims_and_a_full_map),
        cmocka_unit_test(test_publish_parse_and_lookup),
        cmocka_unit_test(test_publish_errors_name_the_column),
        cmocka_unit_test(test_request_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

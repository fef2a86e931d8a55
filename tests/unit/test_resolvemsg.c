/* test_resolvemsg.c - name resolution through the broker (core/resolvemsg.c):
 * the request and reply round trip, every refusal naming its offset, and
 * the ADDRINFOA block the program gets walked as Winsock would walk it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/resolvemsg.h"

static resolve_request make_request(const char *node, const char *service)
{
    resolve_request r;
    memset(&r, 0, sizeof r);
    r.flags = 2;   /* AI_CANONNAME */
    r.family = RESOLVE_AF_UNSPEC;
    r.socktype = 1;
    r.protocol = 6;
    r.node_len = strlen(node);
    r.service_len = strlen(service);
    memcpy(r.node, node, r.node_len);
    memcpy(r.service, service, r.service_len);
    return r;
}

static void test_request_round_trip(void **state)
{
    resolve_request r = make_request("deb.debian.org", "443"), back;
    uint8_t buf[RESOLVE_REQUEST_MAX];
    fvm_error err;
    size_t n = resolve_request_encode(&r, buf, sizeof buf);
    assert_int_equal(n, RESOLVE_REQUEST_HEADER + 14 + 3);
    assert_true(resolve_is_request(buf, n));
    assert_int_equal(resolve_request_decode(buf, n, &back, &err), FVM_OK);
    assert_string_equal(back.node, "deb.debian.org");
    assert_string_equal(back.service, "443");
    assert_int_equal(back.flags, 2);
    assert_int_equal(back.socktype, 1);
    assert_int_equal(back.protocol, 6);
    /* No service at all is a request too (getaddrinfo's service may be NULL). */
    r = make_request("vm", "");
    n = resolve_request_encode(&r, buf, sizeof buf);
    assert_int_equal(resolve_request_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.service_len, 0);
}

static void test_request_refusals(void **state)
{
    resolve_request r = make_request("", "80"), back;
    uint8_t buf[RESOLVE_REQUEST_MAX + 8];
    fvm_error err;
    assert_int_equal(resolve_request_encode(&r, buf, sizeof buf), 0);   /* empty node */
    r = make_request("a b", "80");
    assert_int_equal(resolve_request_encode(&r, buf, sizeof buf), 0);   /* a space */
    r = make_request("host", "80");
    assert_int_equal(resolve_request_encode(&r, buf, 10), 0);           /* no room */
    size_t n = resolve_request_encode(&r, buf, sizeof buf);
    assert_int_equal(resolve_request_decode(buf, n - 1, &back, &err), FVM_E_INVALID);   /* short */
    assert_non_null(strstr(err.message, "header says"));
    buf[n] = 'x';
    assert_int_equal(resolve_request_decode(buf, n + 1, &back, &err), FVM_E_INVALID);   /* trailing byte */
    buf[28] = 1;
    assert_int_equal(resolve_request_decode(buf, n, &back, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "at 28"));
    buf[28] = 0;
    buf[RESOLVE_REQUEST_HEADER + 1] = 0;   /* a NUL inside the node */
    assert_int_equal(resolve_request_decode(buf, n, &back, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "node not printable"));
    buf[RESOLVE_REQUEST_HEADER + 1] = 'o';
    buf[24] = 0;   /* node_len 0 */
    buf[25] = 0;
    assert_int_equal(resolve_request_decode(buf, n, &back, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "at 24"));
    buf[0] = 'X';
    assert_false(resolve_is_request(buf, n));
    assert_int_equal(resolve_request_decode(buf, n, &back, &err), FVM_E_INVALID);
}

static resolve_entry v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    resolve_entry e;
    memset(&e, 0, sizeof e);
    e.family = RESOLVE_AF_INET;
    e.socktype = 1;
    e.protocol = 6;
    e.addr_len = 16;
    e.addr[0] = RESOLVE_AF_INET;
    e.addr[2] = (uint8_t)(port >> 8);
    e.addr[3] = (uint8_t)port;
    e.addr[4] = a, e.addr[5] = b, e.addr[6] = c, e.addr[7] = d;
    return e;
}

static resolve_entry v6_loopback(void)
{
    resolve_entry e;
    memset(&e, 0, sizeof e);
    e.family = RESOLVE_AF_INET6;
    e.socktype = 1;
    e.protocol = 6;
    e.addr_len = 28;
    e.addr[0] = RESOLVE_AF_INET6;
    e.addr[23] = 1;   /* ::1 (sin6_addr at 8) */
    return e;
}

static resolve_reply two_addresses(void)
{
    resolve_reply r;
    memset(&r, 0, sizeof r);
    r.count = 2;
    r.entries[0] = v4(192, 0, 2, 7, 443);
    r.entries[1] = v6_loopback();
    memcpy(r.canon, "www.example.org", 15);
    r.canon_len = 15;
    return r;
}

static void test_reply_round_trip_and_refusals(void **state)
{
    resolve_reply r = two_addresses(), back;
    uint8_t buf[RESOLVE_REPLY_MAX];
    fvm_error err;
    size_t n = resolve_reply_encode(&r, buf, sizeof buf);
    assert_int_equal(n, RESOLVE_REPLY_HEADER + 15 + 2 * RESOLVE_ENTRY_SIZE);
    assert_int_equal(resolve_reply_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.count, 2);
    assert_string_equal(back.canon, "www.example.org");
    assert_memory_equal(back.entries[0].addr, r.entries[0].addr, 16);
    assert_memory_equal(back.entries[1].addr, r.entries[1].addr, 28);
    /* An address whose own family field lies is refused (both ways). */
    uint8_t *first = buf + RESOLVE_REPLY_HEADER + 15;
    first[20] = RESOLVE_AF_INET6;
    assert_int_equal(resolve_reply_decode(buf, n, &back, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "entry 0"));
    r.entries[1].addr_len = 16;
    assert_int_equal(resolve_reply_encode(&r, buf, sizeof buf), 0);
    /* An error carries no entries. */
    resolve_reply fail;
    memset(&fail, 0, sizeof fail);
    fail.error = 11001;
    n = resolve_reply_encode(&fail, buf, sizeof buf);
    assert_int_equal(n, RESOLVE_REPLY_HEADER);
    assert_int_equal(resolve_reply_decode(buf, n, &back, &err), FVM_OK);
    assert_int_equal(back.error, 11001);
    buf[8] = 1;   /* one entry said, none there */
    assert_int_equal(resolve_reply_decode(buf, n, &back, &err), FVM_E_INVALID);
    buf[8] = 0;
    buf[0] = 2;
    assert_int_equal(resolve_reply_decode(buf, n, &back, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "version"));
    buf[0] = 1;
    buf[8] = RESOLVE_MAX_ENTRIES + 1;
    assert_int_equal(resolve_reply_decode(buf, n, &back, &err), FVM_E_INVALID);
}

/* Winsock's ADDRINFOA as the program reads it (x64). */
typedef struct {
    int32_t flags, family, socktype, protocol;
    uint64_t addrlen;
    uint64_t canonname, addr, next;
} addrinfo64;

static void test_layout_is_a_walkable_addrinfo_list(void **state)
{
    resolve_reply r = two_addresses();
    size_t size = resolve_layout_size(&r);
    assert_int_equal(size, 2 * 48 + 2 * 32 + 16);
    uint64_t block[64];
    resolve_layout(&r, block, (uint64_t)(uintptr_t)block);
    const addrinfo64 *ai = (const addrinfo64 *)block;
    int count = 0;
    for (; ai; ai = (const addrinfo64 *)(uintptr_t)ai->next, count++) {
        assert_int_equal(ai->family, r.entries[count].family);
        assert_int_equal(ai->socktype, 1);
        assert_int_equal(ai->addrlen, r.entries[count].addr_len);
        assert_memory_equal((const void *)(uintptr_t)ai->addr, r.entries[count].addr, ai->addrlen);
        assert_true(ai->addr >= (uint64_t)(uintptr_t)block && ai->addr + 28 <= (uint64_t)(uintptr_t)block + size);
        if (count == 0)
            assert_string_equal((const char *)(uintptr_t)ai->canonname, "www.example.org");
        else
            assert_int_equal(ai->canonname, 0);
    }
    assert_int_equal(count, 2);
    /* Without a canonical name the block has no room for one. */
    r.canon_len = 0;
    assert_int_equal(resolve_layout_size(&r), 2 * 48 + 2 * 32);
    resolve_layout(&r, block, (uint64_t)(uintptr_t)block);
    assert_int_equal(((const addrinfo64 *)block)->canonname, 0);
}

static void test_reverse_round_trip_and_refusals(void **state)
{
    resolve_reverse r, back;
    memset(&r, 0, sizeof r);
    resolve_entry e = v4(203, 0, 113, 80, 80);
    r.flags = 4;   /* NI_NAMEREQD */
    r.addr_len = e.addr_len;
    memcpy(r.addr, e.addr, 28);
    uint8_t buf[RESOLVE_REVERSE_SIZE + 1];
    fvm_error err;
    assert_int_equal(resolve_reverse_encode(&r, buf, sizeof buf), RESOLVE_REVERSE_SIZE);
    assert_true(resolve_is_reverse(buf, RESOLVE_REVERSE_SIZE));
    assert_false(resolve_is_request(buf, RESOLVE_REVERSE_SIZE));
    assert_int_equal(resolve_reverse_decode(buf, RESOLVE_REVERSE_SIZE, &back, &err), FVM_OK);
    assert_memory_equal(&back, &r, sizeof r);
    assert_int_equal(resolve_reverse_decode(buf, RESOLVE_REVERSE_SIZE + 1, &back, &err), FVM_E_INVALID);
    buf[12] = 28;   /* an IPv4 address said to be IPv6-long */
    assert_int_equal(resolve_reverse_decode(buf, RESOLVE_REVERSE_SIZE, &back, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "at 12"));
    r.addr[0] = 99;
    assert_int_equal(resolve_reverse_encode(&r, buf, sizeof buf), 0);

    resolve_names n, got;
    memset(&n, 0, sizeof n);
    memcpy(n.host, "deb.debian.org", 14);
    n.host_len = 14;
    memcpy(n.serv, "http", 4);
    n.serv_len = 4;
    uint8_t reply[RESOLVE_NAMES_MAX];
    size_t len = resolve_names_encode(&n, reply, sizeof reply);
    assert_int_equal(len, RESOLVE_NAMES_HEADER + 18);
    assert_int_equal(resolve_names_decode(reply, len, &got, &err), FVM_OK);
    assert_string_equal(got.host, "deb.debian.org");
    assert_string_equal(got.serv, "http");
    reply[RESOLVE_NAMES_HEADER] = '\n';
    assert_int_equal(resolve_names_decode(reply, len, &got, &err), FVM_E_INVALID);
    assert_int_equal(resolve_names_decode(reply, len - 1, &got, &err), FVM_E_INVALID);
    n.error = 11001;   /* an error with names is no reply */
    assert_int_equal(resolve_names_encode(&n, reply, sizeof reply), 0);
    n.host_len = n.serv_len = 0;
    len = resolve_names_encode(&n, reply, sizeof reply);
    assert_int_equal(resolve_names_decode(reply, len, &got, &err), FVM_OK);
    assert_int_equal(got.error, 11001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_reply_round_trip_and_refusals),
        cmocka_unit_test(test_layout_is_a_walkable_addrinfo_list),
        cmocka_unit_test(test_reverse_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_regbase.c - fingerprints of a registry key's values (core/regbase):
 * the same values in any order give the same fingerprint; a changed name,
 * type or data, an added or removed value, a different one; an empty key
 * has a fingerprint that is not "unknown" (all zero). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/regbase.h"

typedef struct val {
    const char *name;
    uint32_t type;
    const char *data;
} val;

static boxindex_base fingerprint(const val *v, size_t n)
{
    regbase_ctx ctx;
    regbase_init(&ctx);
    for (size_t i = 0; i < n; i++) {
        uint16_t name[64];
        size_t len = strlen(v[i].name);
        for (size_t k = 0; k < len; k++)
            name[k] = (uint8_t)v[i].name[k];
        regbase_add_value(&ctx, name, len, v[i].type, v[i].data, strlen(v[i].data));
    }
    boxindex_base b;
    regbase_final(&ctx, &b);
    return b;
}

static void test_order_does_not_matter(void **state)
{
    val a[] = {{"One", 1, "x"}, {"Two", 4, "yyyy"}, {"", 1, "default"}};
    val b[] = {{"", 1, "default"}, {"One", 1, "x"}, {"Two", 4, "yyyy"}};
    boxindex_base fa = fingerprint(a, 3), fb = fingerprint(b, 3);
    assert_true(regbase_equal(&fa, &fb));
    assert_int_equal(fa.size, 3);
    assert_true(fa.mtime == REGBASE_MARK);
}

static void test_any_change_shows(void **state)
{
    val base[] = {{"One", 1, "x"}, {"Two", 4, "yyyy"}};
    boxindex_base f = fingerprint(base, 2);
    val data[] = {{"One", 1, "z"}, {"Two", 4, "yyyy"}};
    val type[] = {{"One", 2, "x"}, {"Two", 4, "yyyy"}};
    val name[] = {{"one", 1, "x"}, {"Two", 4, "yyyy"}};
    val added[] = {{"One", 1, "x"}, {"Two", 4, "yyyy"}, {"Three", 1, ""}};
    boxindex_base fd = fingerprint(data, 2), ft = fingerprint(type, 2), fn = fingerprint(name, 2),
                  fa = fingerprint(added, 3), fr = fingerprint(base, 1);
    assert_false(regbase_equal(&f, &fd));
    assert_false(regbase_equal(&f, &ft));
    assert_false(regbase_equal(&f, &fn));
    assert_false(regbase_equal(&f, &fa));
    assert_false(regbase_equal(&f, &fr));
    /* The boundary between name and data is part of the digest. */
    val s1[] = {{"ab", 1, "c"}}, s2[] = {{"a", 1, "bc"}};
    boxindex_base f1 = fingerprint(s1, 1), f2 = fingerprint(s2, 1);
    assert_false(regbase_equal(&f1, &f2));
}

static void test_empty_key_is_known(void **state)
{
    boxindex_base e = fingerprint(NULL, 0);
    static const uint8_t zero[32];
    assert_int_equal(e.size, 0);
    assert_memory_not_equal(e.content_hash, zero, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_does_not_matter),
        cmocka_unit_test(test_any_change_shows),
        cmocka_unit_test(test_empty_key_is_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

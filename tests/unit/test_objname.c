/* test_objname.c - names of the object manager's namespace (core/objname.c):
 * which counted names can be decided, the registry's reading of separators,
 * the join with a root handle's name, and the Global/Local/Session links. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/objname.h"

#define U(s) ((const uint16_t *)u##s)

static size_t ulen(const uint16_t *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static void assert_units(const uint16_t *got, size_t got_len, const char *want)
{
    size_t n = strlen(want);
    char text[512];
    size_t k;
    for (k = 0; k < got_len && k + 1 < sizeof text; k++)
        text[k] = got[k] < 128 ? (char)got[k] : '?';
    text[k] = 0;
    if (got_len != n)
        fail_msg("got '%s' (%zu units), want '%s'", text, got_len, want);
    for (size_t i = 0; i < n; i++)
        if (got[i] != (uint16_t)(unsigned char)want[i])
            fail_msg("got '%s', want '%s'", text, want);
}

static objname_problem check(const uint16_t *s, unsigned rules)
{
    return objname_check(s, ulen(s) * 2, rules, 0, NULL);
}

static void test_check_names_each_problem(void **state)
{
    size_t at = 99;
    assert_int_equal(check(U("\\BaseNamedObjects\\X"), OBJNAME_ABSOLUTE), OBJNAME_OK);
    assert_int_equal(objname_check(U("\\A\\B"), 7, 0, 0, &at), OBJNAME_ODD_LENGTH);
    assert_int_equal(at, 3);
    const uint16_t nul[] = {'\\', 'A', 0, 'B'};
    assert_int_equal(objname_check(nul, sizeof nul, 0, 0, &at), OBJNAME_EMBEDDED_NUL);
    assert_int_equal(at, 2);
    assert_int_equal(objname_check(NULL, 4, 0, 0, NULL), OBJNAME_EMBEDDED_NUL);
    assert_int_equal(objname_check(U("\\A\\\\B"), 10, 0, 0, &at), OBJNAME_EMPTY_COMPONENT);
    assert_int_equal(at, 3);
    assert_int_equal(check(U("\\\\A"), 0), OBJNAME_EMPTY_COMPONENT);
    assert_int_equal(check(U("\\A\\"), 0), OBJNAME_TRAILING_SEPARATOR);
    assert_int_equal(check(U("A"), OBJNAME_ABSOLUTE), OBJNAME_NOT_ABSOLUTE);
    assert_int_equal(objname_check(U("\\ABCDEF"), 14, 0, 4, NULL), OBJNAME_TOO_LONG);
    assert_int_equal(objname_check(U(""), 0, 0, 0, NULL), OBJNAME_EMPTY_COMPONENT);
    assert_int_equal(objname_check(U(""), 0, OBJNAME_ALLOW_EMPTY, 0, NULL), OBJNAME_OK);
    /* The registry's rules let separators run; a NUL is still refused. */
    assert_int_equal(check(U("\\A\\\\B\\"), OBJNAME_COLLAPSES), OBJNAME_OK);
    assert_int_equal(objname_check(nul, sizeof nul, OBJNAME_COLLAPSES, 0, NULL), OBJNAME_EMBEDDED_NUL);
    /* "." and ".." are ordinary names to the object manager and the registry. */
    assert_int_equal(check(U("\\A\\.\\..\\B"), OBJNAME_ABSOLUTE), OBJNAME_OK);
    for (int p = OBJNAME_OK; p <= OBJNAME_OUTSIDE_NAMESPACE; p++)
        assert_non_null(objname_problem_text((objname_problem)p));
}

static void test_collapse_reads_separators_as_the_registry_does(void **state)
{
    uint16_t s[32];
    const uint16_t *in = U("\\REGISTRY\\\\A\\\\\\B\\\\");
    memcpy(s, in, ulen(in) * 2);
    size_t n = objname_collapse(s, ulen(in));
    assert_units(s, n, "\\REGISTRY\\A\\B");
    memcpy(s, U("\\"), 2);
    assert_int_equal(objname_collapse(s, 1), 1);
    memcpy(s, U("\\\\\\"), 6);
    assert_units(s, objname_collapse(s, 3), "\\");
}

static objname_problem join(objname_space space, const char *root, const uint16_t *rel, size_t rel_bytes,
                            uint16_t *out, size_t *out_len)
{
    uint16_t r[256];
    size_t rn = 0;
    if (root)
        for (; root[rn]; rn++)
            r[rn] = (uint16_t)(unsigned char)root[rn];
    return objname_join(space, root ? r : NULL, rn, rel, rel_bytes, out, 256, out_len);
}

static void test_join_keys(void **state)
{
    uint16_t out[256];
    size_t n = 0;
    const uint16_t *name = U("\\Registry\\User\\S\\Software\\\\X");
    assert_int_equal(join(OBJNAME_SPACE_KEY, NULL, name, ulen(name) * 2, out, &n), OBJNAME_OK);
    assert_units(out, n, "\\Registry\\User\\S\\Software\\X");
    name = U("\\\\Registry\\User");
    assert_int_equal(join(OBJNAME_SPACE_KEY, NULL, name, ulen(name) * 2, out, &n), OBJNAME_EMPTY_COMPONENT);
    name = U("Software\\X");
    assert_int_equal(join(OBJNAME_SPACE_KEY, NULL, name, ulen(name) * 2, out, &n), OBJNAME_NOT_ABSOLUTE);
    name = U("\\Device\\X");
    assert_int_equal(join(OBJNAME_SPACE_KEY, NULL, name, ulen(name) * 2, out, &n), OBJNAME_OUTSIDE_NAMESPACE);
    name = U("X\\\\Y\\\\");
    assert_int_equal(join(OBJNAME_SPACE_KEY, "\\REGISTRY\\MACHINE\\Software", name, ulen(name) * 2, out, &n),
                     OBJNAME_OK);
    assert_units(out, n, "\\REGISTRY\\MACHINE\\Software\\X\\Y");
    assert_int_equal(join(OBJNAME_SPACE_KEY, "\\REGISTRY\\MACHINE", U(""), 0, out, &n), OBJNAME_OK);
    assert_units(out, n, "\\REGISTRY\\MACHINE");
    name = U("\\X");
    assert_int_equal(join(OBJNAME_SPACE_KEY, "\\REGISTRY\\MACHINE", name, 4, out, &n), OBJNAME_ROOTED_RELATIVE);
    const uint16_t nul[] = {'X', 0, 'Y'};
    assert_int_equal(join(OBJNAME_SPACE_KEY, "\\REGISTRY\\MACHINE", nul, sizeof nul, out, &n),
                     OBJNAME_EMBEDDED_NUL);
    assert_int_equal(join(OBJNAME_SPACE_KEY, "\\REGISTRY\\MACHINE", U("XY"), 3, out, &n), OBJNAME_ODD_LENGTH);
}

static void test_join_objects(void **state)
{
    uint16_t out[256];
    size_t n = 0;
    const uint16_t *name = U("\\Sessions\\1\\BaseNamedObjects\\Global\\X");
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, NULL, name, ulen(name) * 2, out, &n), OBJNAME_OK);
    assert_units(out, n, "\\BaseNamedObjects\\X");
    name = U("Local\\Y");
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, "\\Sessions\\1\\BaseNamedObjects", name, ulen(name) * 2, out, &n),
                     OBJNAME_OK);
    assert_units(out, n, "\\Sessions\\1\\BaseNamedObjects\\Y");
    name = U("Sessions\\1");
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, "\\", name, ulen(name) * 2, out, &n), OBJNAME_OK);
    assert_units(out, n, "\\Sessions\\1");
    /* A doubled separator anywhere, also where root and name meet. */
    name = U("\\X");
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, "\\Sessions\\1\\BaseNamedObjects", name, 4, out, &n),
                     OBJNAME_EMPTY_COMPONENT);
    name = U("\\Sessions\\1\\BaseNamedObjects\\\\X");
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, NULL, name, ulen(name) * 2, out, &n), OBJNAME_EMPTY_COMPONENT);
    name = U("\\BaseNamedObjects\\X\\");
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, NULL, name, ulen(name) * 2, out, &n), OBJNAME_TRAILING_SEPARATOR);
    name = U("X");
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, NULL, name, 2, out, &n), OBJNAME_NOT_ABSOLUTE);
    const uint16_t nul[] = {'\\', 'X', 0};
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, NULL, nul, sizeof nul, out, &n), OBJNAME_EMBEDDED_NUL);
    /* A name too long for the output. */
    uint16_t big[300];
    big[0] = '\\';
    for (size_t i = 1; i < 300; i++)
        big[i] = 'A';
    assert_int_equal(join(OBJNAME_SPACE_OBJECT, NULL, big, sizeof big, out, &n), OBJNAME_TOO_LONG);
}

static void resolves(const char *in, const char *want)
{
    uint16_t n[128];
    size_t len = strlen(in);
    for (size_t i = 0; i < len; i++)
        n[i] = (uint16_t)(unsigned char)in[i];
    assert_true(objname_resolve_links(n, &len, 128));
    assert_units(n, len, want);
}

static void test_links(void **state)
{
    resolves("\\Sessions\\1\\BaseNamedObjects\\Global\\X", "\\BaseNamedObjects\\X");
    resolves("\\Sessions\\1\\BaseNamedObjects\\local\\X", "\\Sessions\\1\\BaseNamedObjects\\X");
    resolves("\\Sessions\\1\\BaseNamedObjects\\Session\\2\\X", "\\Sessions\\2\\BaseNamedObjects\\X");
    resolves("\\Sessions\\1\\BaseNamedObjects\\Session\\2\\Global\\X", "\\BaseNamedObjects\\X");
    resolves("\\BaseNamedObjects\\Global\\X", "\\BaseNamedObjects\\X");
    resolves("\\BaseNamedObjects\\Local\\X", "\\BaseNamedObjects\\X");
    resolves("\\BaseNamedObjects\\Session\\3", "\\Sessions\\3\\BaseNamedObjects");
    resolves("\\BaseNamedObjects\\GlobalX", "\\BaseNamedObjects\\GlobalX");
    resolves("\\Sessions\\1\\BaseNamedObjects\\Global", "\\BaseNamedObjects");
    resolves("\\KernelObjects\\Global\\X", "\\KernelObjects\\Global\\X");
    /* No room: refused. */
    uint16_t n[64];
    const char *in = "\\BaseNamedObjects\\Session\\3\\X";
    size_t len = strlen(in);
    for (size_t i = 0; i < len; i++)
        n[i] = (uint16_t)(unsigned char)in[i];
    assert_false(objname_resolve_links(n, &len, len));
    assert_true(objname_in_named_objects(U("\\BaseNamedObjects"), 17));
    assert_true(objname_in_named_objects(U("\\Sessions\\1\\BaseNamedObjects\\X"), 30));
    assert_false(objname_in_named_objects(U("\\BaseNamedObjectsX"), 18));
    assert_false(objname_in_named_objects(U("\\KernelObjects\\X"), 16));
}

static void test_win32_root(void **state)
{
    objname_root r;
    assert_true(objname_win32_root(U("Global\\X"), 8, &r));
    assert_int_equal(r.scope, OBJNAME_SCOPE_GLOBAL);
    assert_int_equal(r.rest, 7);
    assert_true(objname_win32_root(U("local\\X"), 7, &r));
    assert_int_equal(r.scope, OBJNAME_SCOPE_SESSION);
    assert_int_equal(r.rest, 6);
    assert_true(objname_win32_root(U("Session\\12\\X"), 12, &r));
    assert_int_equal(r.scope, OBJNAME_SCOPE_NUMBERED);
    assert_int_equal(r.session, 12);
    assert_int_equal(r.rest, 11);
    assert_false(objname_win32_root(U("Session\\X"), 9, &r));
    assert_false(objname_win32_root(U("Session\\1X"), 10, &r));
    assert_true(objname_win32_root(U("Plain"), 5, &r));
    assert_int_equal(r.scope, OBJNAME_SCOPE_SESSION);
    assert_int_equal(r.rest, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_names_each_problem),
        cmocka_unit_test(test_collapse_reads_separators_as_the_registry_does),
        cmocka_unit_test(test_join_keys),
        cmocka_unit_test(test_join_objects),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_win32_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

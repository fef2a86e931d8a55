/* test_listmerge.c - the merged listing of a box folder or key
 * (core/listmerge.c): order, the box winning over the host, dots first for
 * folders, stability, and a larger random case against a simple model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/listmerge.h"

#define MAX_ENTRIES 4096

typedef struct names {
    uint16_t text[MAX_ENTRIES][32];
    listmerge_entry e[MAX_ENTRIES];
    listmerge_entry tmp[MAX_ENTRIES];
    size_t count;
} names;

static names g;

static void reset(void)
{
    g.count = 0;
}

static void add(const char *name, int from_box)
{
    size_t i = g.count++, n = strlen(name);
    for (size_t k = 0; k < n; k++)
        g.text[i][k] = (uint16_t)(unsigned char)name[k];
    g.e[i].name = g.text[i];
    g.e[i].len = n;
    g.e[i].ref = (uint32_t)i;
    g.e[i].from_box = (uint8_t)from_box;
}

static size_t merge(unsigned flags)
{
    return listmerge_sort_unique(g.e, g.count, g.tmp, flags);
}

static void expect(size_t kept, const char *const *want, const int *want_box)
{
    for (size_t i = 0; want[i]; i++) {
        assert_true(i < kept);
        char got[33] = {0};
        for (size_t k = 0; k < g.e[i].len && k < 32; k++)
            got[k] = (char)g.e[i].name[k];
        assert_string_equal(got, want[i]);
        if (want_box)
            assert_int_equal(g.e[i].from_box, want_box[i]);
        if (!want[i + 1])
            assert_int_equal(kept, i + 1);
    }
}

static void test_sorts_case_insensitively_shorter_first(void **state)
{
    reset();
    add("beta", 0);
    add("Alpha", 0);
    add("ALPHABET", 0);
    add("b", 0);
    add("_x", 0);   /* '_' (0x5f) sorts after the upper-cased letters */
    static const char *const want[] = {"Alpha", "ALPHABET", "b", "beta", "_x", NULL};
    expect(merge(0), want, NULL);
}

static void test_the_box_entry_replaces_the_host_entry(void **state)
{
    reset();
    add("shared", 0);
    add("host-only", 0);
    add("SHARED", 1);   /* the box's copy, another case */
    add("box-only", 1);
    static const char *const want[] = {"box-only", "host-only", "SHARED", NULL};
    static const int box[] = {1, 0, 1};
    expect(merge(0), want, box);
}

static void test_dots_first_for_folders_only(void **state)
{
    reset();
    add("a", 0);
    add("..", 0);
    add("-", 0);
    add(".", 0);
    add("..", 1);
    add(".", 1);
    static const char *const folder[] = {".", "..", "-", "a", NULL};
    static const int box[] = {1, 1, 0, 0};
    expect(merge(LISTMERGE_DOTS_FIRST), folder, box);

    reset();
    add("a", 0);
    add("..", 0);
    add("-", 0);   /* '-' (0x2d) before '.' (0x2e) by plain order */
    add(".", 0);
    static const char *const key[] = {"-", ".", "..", "a", NULL};
    expect(merge(0), key, NULL);
}

static void test_keeps_the_first_of_equal_entries_of_one_side(void **state)
{
    reset();
    add("x", 0);
    add("X", 0);
    size_t kept = merge(0);
    assert_int_equal(kept, 1);
    assert_int_equal(g.e[0].ref, 0);   /* stable: the first given */
}

static void test_empty_and_single(void **state)
{
    reset();
    assert_int_equal(merge(0), 0);
    assert_int_equal(listmerge_sort_unique(NULL, 0, NULL, 0), 0);
    add("only", 1);
    assert_int_equal(merge(0), 1);
    assert_int_equal(g.e[0].ref, 0);
}

/* Random names over a small alphabet (many collisions, both cases), checked
 * against the model: sorted, unique, and box-won for every name the box
 * has. */
static void test_random_listings_match_the_model(void **state)
{
    srand(15);
    for (int round = 0; round < 50; round++) {
        reset();
        size_t n = (size_t)(rand() % 600);
        static char buf[8];
        for (size_t i = 0; i < n; i++) {
            size_t len = 1 + (size_t)(rand() % 3);
            for (size_t k = 0; k < len; k++)
                buf[k] = "aAbB.c"[rand() % 6];
            buf[len] = 0;
            add(buf, rand() % 2);
        }
        static listmerge_entry given[MAX_ENTRIES];
        memcpy(given, g.e, n * sizeof *given);
        size_t kept = merge(LISTMERGE_DOTS_FIRST);
        for (size_t i = 1; i < kept; i++)
            assert_true(listmerge_compare_names(g.e[i - 1].name, g.e[i - 1].len, g.e[i].name, g.e[i].len,
                                                LISTMERGE_DOTS_FIRST) < 0);
        for (size_t i = 0; i < n; i++) {
            size_t found = kept;
            for (size_t k = 0; k < kept; k++)
                if (!listmerge_compare_names(g.e[k].name, g.e[k].len, given[i].name, given[i].len,
                                             LISTMERGE_DOTS_FIRST))
                    found = k;
            assert_true(found < kept);   /* every name is listed */
            if (given[i].from_box)
                assert_int_equal(g.e[found].from_box, 1);   /* and the box's wins */
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorts_case_insensitively_shorter_first),
        cmocka_unit_test(test_the_box_entry_replaces_the_host_entry),
        cmocka_unit_test(test_dots_first_for_folders_only),
        cmocka_unit_test(test_keeps_the_first_of_equal_entries_of_one_side),
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_random_listings_match_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

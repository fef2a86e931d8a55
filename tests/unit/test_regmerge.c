/* test_regmerge.c - the three-way decision for a box's registry values
 * (core/regmerge): the box's own change is kept where the host left the
 * value alone; a value the host now has too, or one the box never really
 * changed, follows the host; both changed differently is a conflict;
 * tombstones count as absent; names compare without case. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/regmerge.h"

#define DEL REGMERGE_DELETED

/* Up to 8 values with ASCII names and string data. */
typedef struct values {
    regmerge_value v[8];
    uint16_t names[8][32];
    size_t count;
} values;

static void add(values *vs, const char *name, uint32_t type, const char *data)
{
    size_t i = vs->count++, n = strlen(name);
    for (size_t k = 0; k < n; k++)
        vs->names[i][k] = (uint8_t)name[k];
    vs->v[i] = (regmerge_value){vs->names[i], n, type, (const uint8_t *)data, data ? strlen(data) : 0};
}

static regmerge_decision decide(const char *name, uint32_t type, const char *data, const values *base,
                                const values *host)
{
    values box = {0};
    add(&box, name, type, data);
    return regmerge_decide(&box.v[0], base->v, base->count, host->v, host->count);
}

static void test_host_left_it_alone_box_keeps_its_change(void **state)
{
    values base = {0}, host = {0};
    add(&base, "Color", 1, "red");
    add(&base, "Size", 4, "1234");
    add(&host, "Color", 1, "red");
    add(&host, "Size", 4, "9999");   /* the host changed another value */
    assert_int_equal(decide("Color", 1, "blue", &base, &host), REGMERGE_KEEP);
    assert_int_equal(decide("New", 1, "x", &base, &host), REGMERGE_KEEP);   /* new in the box, not on the host */
}

static void test_host_has_the_same_now_follows(void **state)
{
    values base = {0}, host = {0};
    add(&base, "Color", 1, "red");
    add(&host, "Color", 1, "blue");
    assert_int_equal(decide("Color", 1, "blue", &base, &host), REGMERGE_FOLLOW);
}

static void test_box_never_really_changed_it_follows(void **state)
{
    values base = {0}, host = {0};
    add(&base, "Color", 1, "red");
    add(&host, "Color", 1, "green");
    assert_int_equal(decide("Color", 1, "red", &base, &host), REGMERGE_FOLLOW);
}

static void test_both_changed_differently_conflicts(void **state)
{
    values base = {0}, host = {0};
    add(&base, "Color", 1, "red");
    add(&host, "Color", 1, "green");
    assert_int_equal(decide("Color", 1, "blue", &base, &host), REGMERGE_CONFLICT);
    /* the same bytes under another type is another value */
    assert_int_equal(decide("Color", 2, "green", &base, &host), REGMERGE_CONFLICT);
    /* both added a value of that name, differently */
    add(&host, "Added", 1, "host's");
    assert_int_equal(decide("Added", 1, "box's", &base, &host), REGMERGE_CONFLICT);
}

static void test_tombstones_are_absent(void **state)
{
    values base = {0}, host = {0};
    add(&base, "Gone", 1, "old");
    add(&base, "Kept", 1, "k");
    add(&host, "Kept", 1, "k2");
    /* the box deleted Gone, the host deleted it too: follows */
    assert_int_equal(decide("Gone", DEL, NULL, &base, &host), REGMERGE_FOLLOW);
    /* the box deleted Kept, the host changed it: conflict */
    assert_int_equal(decide("Kept", DEL, NULL, &base, &host), REGMERGE_CONFLICT);
    /* a tombstone in the host's list (as a store may give) is absent too */
    values host2 = {0};
    add(&host2, "Gone", DEL, NULL);
    add(&host2, "Kept", 1, "k");
    assert_int_equal(decide("Gone", DEL, NULL, &base, &host2), REGMERGE_FOLLOW);
    /* the box deleted a value the host left alone: its deletion stays */
    assert_int_equal(decide("Kept", DEL, NULL, &base, &host2), REGMERGE_KEEP);
}

static void test_names_compare_without_case(void **state)
{
    values base = {0}, host = {0};
    add(&base, "color", 1, "red");
    add(&host, "COLOR", 1, "red");
    assert_int_equal(decide("Color", 1, "blue", &base, &host), REGMERGE_KEEP);
    values host2 = {0};
    add(&host2, "COLOR", 1, "blue");
    assert_int_equal(decide("Color", 1, "blue", &base, &host2), REGMERGE_FOLLOW);
    assert_null(regmerge_find(host2.v, host2.count, (const uint16_t *)u"colour", 6));
    assert_non_null(regmerge_find(host2.v, host2.count, (const uint16_t *)u"color", 5));
}

static void test_default_value_and_empty_data(void **state)
{
    values base = {0}, host = {0};
    add(&base, "", 1, "");
    add(&host, "", 1, "now");
    assert_int_equal(decide("", 1, "", &base, &host), REGMERGE_FOLLOW);
    assert_int_equal(decide("", 1, "mine", &base, &host), REGMERGE_CONFLICT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_left_it_alone_box_keeps_its_change),
        cmocka_unit_test(test_host_has_the_same_now_follows),
        cmocka_unit_test(test_box_never_really_changed_it_follows),
        cmocka_unit_test(test_both_changed_differently_conflicts),
        cmocka_unit_test(test_tombstones_are_absent),
        cmocka_unit_test(test_names_compare_without_case),
        cmocka_unit_test(test_default_value_and_empty_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_notifyrec.c - folder change records rewritten as the host reports
 * them (core/notifyrec.c): a copy-up's ADDED becomes MODIFIED, is dropped
 * when the filter asks for no modifications or when a MODIFIED of the same
 * name follows, other records pass as they are; layout, overflow and
 * malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/notifyrec.h"

#define FILTER_NAME_AND_WRITE 0x11u   /* FILE_NOTIFY_CHANGE_FILE_NAME | LAST_WRITE */
#define FILTER_NAME_ONLY      0x01u

typedef struct list {
    uint8_t bytes[1024];
    size_t len, last;
} list;

static int g_packed;   /* lay records out as Wine does: no padding */

/* Appends a record (action, ASCII name) as Windows lays it out. */
static void add(list *l, uint32_t action, const char *name)
{
    size_t start = g_packed ? l->len : (l->len + 3) & ~(size_t)3, n = strlen(name);
    if (l->len) {
        uint32_t next = (uint32_t)(start - l->last);
        memcpy(l->bytes + l->last, &next, 4);
    }
    uint32_t zero = 0, bytes = (uint32_t)(n * 2);
    memcpy(l->bytes + start, &zero, 4);
    memcpy(l->bytes + start + 4, &action, 4);
    memcpy(l->bytes + start + 8, &bytes, 4);
    for (size_t i = 0; i < n; i++) {
        uint16_t c = (uint16_t)(unsigned char)name[i];
        memcpy(l->bytes + start + 12 + i * 2, &c, 2);
    }
    l->last = start;
    l->len = start + 12 + n * 2;
}

/* The records of out as "action name;..." */
static void describe(const uint8_t *out, size_t len, char *text)
{
    size_t at = 0;
    text[0] = 0;
    while (len) {
        uint32_t next, action, bytes;
        memcpy(&next, out + at, 4);
        memcpy(&action, out + at + 4, 4);
        memcpy(&bytes, out + at + 8, 4);
        char *end = text + strlen(text);
        *end++ = (char)('0' + action);
        *end++ = ' ';
        for (uint32_t i = 0; i < bytes; i += 2)
            *end++ = (char)out[at + 12 + i];
        *end++ = ';';
        *end = 0;
        assert_true(at + 12 + bytes <= len);
        if (!next) {
            assert_int_equal(at + 12 + bytes, len);
            break;
        }
        if (!g_packed)
            assert_int_equal(next % 4, 0);
        at += next;
    }
}

/* Names starting with "host" are copy-ups; "hostsame..." ones still hold
 * the host's content. */
static int host_names(void *ctx, const uint16_t *name, size_t len)
{
    (*(int *)ctx)++;
    if (!(len >= 4 && name[0] == 'h' && name[1] == 'o' && name[2] == 's' && name[3] == 't'))
        return 0;
    if (len >= 8 && name[4] == 's' && name[5] == 'a' && name[6] == 'm' && name[7] == 'e')
        return NOTIFYREC_COPY_UP_UNCHANGED;
    return NOTIFYREC_COPY_UP;
}

static notifyrec_result run(const list *l, uint32_t filter, size_t cap, char *text)
{
    uint8_t out[1024];
    size_t out_len = 99;
    int asked = 0;
    notifyrec_result r = notifyrec_translate(l->bytes, l->len, filter, host_names, &asked, out, cap, &out_len);
    if (r == NOTIFYREC_OK)
        describe(out, out_len, text);
    else
        assert_int_equal(out_len, 0);
    return r;
}

static void copy_up_added_becomes_modified(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "host.txt");
    assert_int_equal(run(&l, FILTER_NAME_AND_WRITE, 1024, text), NOTIFYREC_OK);
    assert_string_equal(text, "3 host.txt;");
}

static void box_new_names_stay_added(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "new.txt");
    add(&l, NOTIFYREC_ACTION_REMOVED, "host.txt");
    add(&l, NOTIFYREC_ACTION_RENAMED_OLD_NAME, "a");
    add(&l, NOTIFYREC_ACTION_RENAMED_NEW_NAME, "host.b");
    assert_int_equal(run(&l, FILTER_NAME_AND_WRITE, 1024, text), NOTIFYREC_OK);
    assert_string_equal(text, "1 new.txt;2 host.txt;4 a;5 host.b;");
}

static void copy_up_then_write_is_one_change(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "host.txt");
    add(&l, NOTIFYREC_ACTION_ADDED, "x");
    add(&l, NOTIFYREC_ACTION_MODIFIED, "HOST.TXT");
    assert_int_equal(run(&l, FILTER_NAME_AND_WRITE, 1024, text), NOTIFYREC_OK);
    assert_string_equal(text, "1 x;3 HOST.TXT;");
}

static void copy_up_without_modify_filter_is_dropped(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "host1");
    add(&l, NOTIFYREC_ACTION_ADDED, "box1");
    add(&l, NOTIFYREC_ACTION_ADDED, "host2");
    assert_int_equal(run(&l, FILTER_NAME_ONLY, 1024, text), NOTIFYREC_OK);
    assert_string_equal(text, "1 box1;");
}

static void unchanged_copy_is_dropped(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "hostsame.txt");
    add(&l, NOTIFYREC_ACTION_ADDED, "hostnew.txt");
    assert_int_equal(run(&l, FILTER_NAME_AND_WRITE, 1024, text), NOTIFYREC_OK);
    assert_string_equal(text, "3 hostnew.txt;");
    list only = {0};
    add(&only, NOTIFYREC_ACTION_ADDED, "hostsame.txt");
    assert_int_equal(run(&only, FILTER_NAME_AND_WRITE, 1024, text), NOTIFYREC_EMPTY);
}

static void nothing_left_is_empty(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "host1");
    assert_int_equal(run(&l, FILTER_NAME_ONLY, 1024, text), NOTIFYREC_EMPTY);
    list none = {0};
    assert_int_equal(run(&none, FILTER_NAME_ONLY, 1024, text), NOTIFYREC_EMPTY);
}

static void too_small_overflows(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "abc");    /* 18 bytes */
    add(&l, NOTIFYREC_ACTION_ADDED, "de");     /* at 20, 16 bytes: 36 in all */
    assert_int_equal(run(&l, FILTER_NAME_ONLY, 36, text), NOTIFYREC_OK);
    assert_string_equal(text, "1 abc;1 de;");
    assert_int_equal(run(&l, FILTER_NAME_ONLY, 35, text), NOTIFYREC_OVERFLOW);
    assert_int_equal(run(&l, FILTER_NAME_ONLY, 8, text), NOTIFYREC_OVERFLOW);
    assert_int_equal(run(&l, FILTER_NAME_ONLY, 0, text), NOTIFYREC_OVERFLOW);
}

static void malformed_is_refused(void **state)
{
    (void)state;
    char text[256];
    list l = {0};
    add(&l, NOTIFYREC_ACTION_ADDED, "abc");
    add(&l, NOTIFYREC_ACTION_ADDED, "de");
    list bad = l;
    uint32_t v = 6;                               /* not 4-aligned */
    memcpy(bad.bytes, &v, 4);
    assert_int_equal(run(&bad, FILTER_NAME_ONLY, 1024, text), NOTIFYREC_MALFORMED);
    bad = l;
    v = 400;                                      /* past the end */
    memcpy(bad.bytes, &v, 4);
    assert_int_equal(run(&bad, FILTER_NAME_ONLY, 1024, text), NOTIFYREC_MALFORMED);
    bad = l;
    v = 4000;                                     /* name longer than the buffer */
    memcpy(bad.bytes + 8, &v, 4);
    assert_int_equal(run(&bad, FILTER_NAME_ONLY, 1024, text), NOTIFYREC_MALFORMED);
    bad = l;
    bad.len = 10;                                 /* a cut head */
    assert_int_equal(run(&bad, FILTER_NAME_ONLY, 1024, text), NOTIFYREC_MALFORMED);
}

static void wine_spacing_is_kept(void **state)
{
    (void)state;
    g_packed = 1;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_ADDED, "hostf");      /* 22 bytes, the next at 22 */
    add(&l, NOTIFYREC_ACTION_ADDED, "abc");
    add(&l, NOTIFYREC_ACTION_REMOVED, "xy");
    uint8_t out[256];
    size_t out_len;
    int asked = 0;
    assert_int_equal(notifyrec_translate(l.bytes, l.len, FILTER_NAME_ONLY, host_names, &asked, out, sizeof out,
                                         &out_len), NOTIFYREC_OK);
    describe(out, out_len, text);
    assert_string_equal(text, "1 abc;2 xy;");
    assert_int_equal(out_len, 18 + 16);
    g_packed = 0;
}

static void host_records_for_box_names_are_filtered(void **state)
{
    (void)state;
    list l = {0};
    char text[256];
    add(&l, NOTIFYREC_ACTION_MODIFIED, "host.txt");
    add(&l, NOTIFYREC_ACTION_ADDED, "other");
    add(&l, NOTIFYREC_ACTION_REMOVED, "hostdir");
    uint8_t out[256];
    size_t out_len;
    int asked = 0;
    assert_int_equal(notifyrec_filter(l.bytes, l.len, host_names, &asked, out, sizeof out, &out_len), NOTIFYREC_OK);
    describe(out, out_len, text);
    assert_string_equal(text, "1 other;");
    assert_int_equal(asked, 3);
    list only = {0};
    add(&only, NOTIFYREC_ACTION_MODIFIED, "host.txt");
    assert_int_equal(notifyrec_filter(only.bytes, only.len, host_names, &asked, out, sizeof out, &out_len),
                     NOTIFYREC_EMPTY);
}

static void appended_lists_are_one(void **state)
{
    (void)state;
    list a = {0}, b = {0};
    char text[256];
    add(&a, NOTIFYREC_ACTION_ADDED, "abc");
    add(&b, NOTIFYREC_ACTION_MODIFIED, "de");
    add(&b, NOTIFYREC_ACTION_REMOVED, "f");
    uint8_t queue[64];
    size_t queued = 0, last = 0;
    assert_int_equal(notifyrec_append(queue, sizeof queue, &queued, &last, a.bytes, a.len), NOTIFYREC_OK);
    assert_int_equal(notifyrec_append(queue, sizeof queue, &queued, &last, b.bytes, b.len), NOTIFYREC_OK);
    describe(queue, queued, text);
    assert_string_equal(text, "1 abc;3 de;2 f;");
    size_t before = queued;
    assert_int_equal(notifyrec_append(queue, sizeof queue, &queued, &last, b.bytes, b.len), NOTIFYREC_OVERFLOW);
    assert_int_equal(queued, before);
    describe(queue, queued, text);
    assert_string_equal(text, "1 abc;3 de;2 f;");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copy_up_added_becomes_modified),
        cmocka_unit_test(box_new_names_stay_added),
        cmocka_unit_test(copy_up_then_write_is_one_change),
        cmocka_unit_test(copy_up_without_modify_filter_is_dropped),
        cmocka_unit_test(unchanged_copy_is_dropped),
        cmocka_unit_test(nothing_left_is_empty),
        cmocka_unit_test(too_small_overflows),
        cmocka_unit_test(malformed_is_refused),
        cmocka_unit_test(wine_spacing_is_kept),
        cmocka_unit_test(host_records_for_box_names_are_filtered),
        cmocka_unit_test(appended_lists_are_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

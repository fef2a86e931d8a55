/* test_regfile.c - the registry delta's text format (core/regfile): exact
 * round trips of every kind of name, type and data, the readable forms it
 * promises, and errors that name line and column. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/regfile.h"

/* What a parse reported, flattened: "K:<units>" and "V:<units>|type|hex". */
typedef struct record {
    char text[16384];
    size_t len;
    int keys, values;
} record;

static void add(record *r, const char *s)
{
    size_t n = strlen(s);
    assert_true(r->len + n < sizeof r->text);
    memcpy(r->text + r->len, s, n + 1);
    r->len += n;
}

static void add_units(record *r, const uint16_t *u, size_t n)
{
    char t[8];
    for (size_t i = 0; i < n; i++) {
        snprintf(t, sizeof t, "%04x.", u[i]);
        add(r, t);
    }
}

static fvm_status on_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    record *r = ctx;
    add(r, "K:");
    add_units(r, path, len);
    add(r, "\n");
    r->keys++;
    return FVM_OK;
}

static fvm_status on_value(void *ctx, const uint16_t *name, size_t len, uint32_t type, const uint8_t *data,
                           size_t size, fvm_error *err)
{
    record *r = ctx;
    char t[32];
    add(r, "V:");
    add_units(r, name, len);
    snprintf(t, sizeof t, "|%lx|", (unsigned long)type);
    add(r, t);
    for (size_t i = 0; i < size; i++) {
        snprintf(t, sizeof t, "%02x", data[i]);
        add(r, t);
    }
    add(r, "\n");
    r->values++;
    return FVM_OK;
}

static fvm_status parse(const char *text, record *r, fvm_error *err)
{
    memset(r, 0, sizeof *r);
    regfile_visitor v = {on_key, on_value, r};
    return regfile_parse(text, strlen(text), &v, err);
}

/* Parses text and expects the error status with both strings in its message. */
static void refuses(const char *text, fvm_status status, const char *where, const char *why)
{
    record r;
    fvm_error err = {0};
    assert_int_equal(parse(text, &r, &err), status);
    if (!strstr(err.message, where) || !strstr(err.message, why))
        fail_msg("message for <%s> was '%s', expected '%s' and '%s'", text, err.message, where, why);
}

static uint16_t *w(const char *ascii, size_t *len)
{
    static uint16_t buf[4][256];
    static int next;
    uint16_t *out = buf[next++ & 3];
    size_t n = strlen(ascii);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)ascii[i];
    *len = n;
    return out;
}

static void test_readable_forms(void **state)
{
    regfile_buf b = {0};
    fvm_error err;
    size_t n, m;
    uint16_t *key = w("MACHINE\\SOFTWARE\\Vendor", &n);
    assert_int_equal(regfile_put_header(&b, &err), FVM_OK);
    assert_int_equal(regfile_put_key(&b, key, n, &err), FVM_OK);
    static const uint8_t sz[] = {'h', 0, 'i', 0, 0, 0};
    static const uint8_t multi[] = {'a', 0, 0, 0, 'b', 0, 0, 0, 0, 0};
    static const uint8_t dword[] = {0x2a, 0, 0, 0};
    static const uint8_t qword[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t bin[] = {0, 0xff, 0x10};
    uint16_t *name = w("Count", &m);
    assert_int_equal(regfile_put_value(&b, name, 0, 1, sz, sizeof sz, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, name, m, 4, dword, sizeof dword, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, name, 1, 11, qword, sizeof qword, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, name, 2, 7, multi, sizeof multi, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, name, 3, 3, bin, sizeof bin, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, name, 4, REGFILE_TYPE_DELETED, NULL, 0, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, name, 4, 2, sz, 4, &err), FVM_OK);   /* no terminator: hex */
    assert_int_equal(regfile_put_end(&b, &err), FVM_OK);
    const char *expect = "FVM REGISTRY 1\n"
                         "[MACHINE\\\\SOFTWARE\\\\Vendor]\n"
                         "\"\"=sz:\"hi\"\n"
                         "\"Count\"=dword:0000002a\n"
                         "\"C\"=qword:0807060504030201\n"
                         "\"Co\"=multi_sz:\"a\\0b\\0\"\n"
                         "\"Cou\"=hex(3):00ff10\n"
                         "\"Coun\"=deleted\n"
                         "\"Coun\"=hex(2):68006900\n"
                         "END\n";
    assert_int_equal(b.len, strlen(expect));
    assert_memory_equal(b.data, expect, b.len);
    regfile_buf_free(&b);
}

/* Everything a name can hold, and data of every shape, survive exactly. */
static void test_round_trip_exact(void **state)
{
    static const uint16_t odd_name[] = {'"', '\\', ']', 0, '\n', '\r', '\t', 0x7f, 0x85, 0xe9, 0x4e2d, 0xd83d,
                                        0xde00, 0xd800, 'x', 0xdc00, 0xffff, 0xfeff, '[', '='};
    static const uint16_t path[] = {'M', '"', ']', '\\', 0xd801, '\\', 0, 'k', 0x1f};
    static const uint8_t sz_odd[] = {'a', 0, 'b'};                   /* odd size */
    static const uint8_t sz_quote[] = {'"', 0, '\\', 0, '\n', 0, 0x00, 0xd8, 0, 0};
    static const uint8_t dword5[] = {1, 2, 3, 4, 5};
    uint8_t big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    regfile_buf b = {0};
    fvm_error err;
    assert_int_equal(regfile_put_header(&b, &err), FVM_OK);
    assert_int_equal(regfile_put_key(&b, NULL, 0, &err), FVM_OK);        /* the root */
    assert_int_equal(regfile_put_key(&b, path, 9, &err), FVM_OK);        /* an empty key */
    assert_int_equal(regfile_put_key(&b, path, 3, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, odd_name, 20, 1, sz_odd, 3, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, odd_name, 1, 1, sz_quote, sizeof sz_quote, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, odd_name, 2, 4, dword5, 5, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, odd_name, 3, 0xffffffffu, big, sizeof big, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, odd_name, 4, 0, NULL, 0, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, odd_name, 5, REGFILE_TYPE_DELETED, big, 2, &err), FVM_OK);
    assert_int_equal(regfile_put_value(&b, odd_name, 6, 7, big, 0, &err), FVM_OK);
    assert_int_equal(regfile_put_end(&b, &err), FVM_OK);
    assert_null(memchr(b.data, 0, b.len));       /* text: no NUL, no raw control character but '\n' */
    for (size_t i = 0; i < b.len; i++)
        assert_true((unsigned char)b.data[i] >= 0x20 || b.data[i] == '\n');

    static record got, want;
    memset(&got, 0, sizeof got);
    memset(&want, 0, sizeof want);
    regfile_visitor v = {on_key, on_value, &got};
    assert_int_equal(regfile_parse(b.data, b.len, &v, &err), FVM_OK);
    on_key(&want, NULL, 0, NULL);
    on_key(&want, path, 9, NULL);
    on_key(&want, path, 3, NULL);
    on_value(&want, odd_name, 20, 1, sz_odd, 3, NULL);
    on_value(&want, odd_name, 1, 1, sz_quote, sizeof sz_quote, NULL);
    on_value(&want, odd_name, 2, 4, dword5, 5, NULL);
    on_value(&want, odd_name, 3, 0xffffffffu, big, sizeof big, NULL);
    on_value(&want, odd_name, 4, 0, NULL, 0, NULL);
    on_value(&want, odd_name, 5, REGFILE_TYPE_DELETED, big, 2, NULL);
    on_value(&want, odd_name, 6, 7, big, 0, NULL);
    assert_string_equal(got.text, want.text);
    assert_int_equal(got.keys, 3);
    assert_int_equal(got.values, 7);
    regfile_buf_free(&b);
}

/* Parsing what was written and writing it again gives the same text. */
typedef struct rewrite {
    regfile_buf out;
} rewrite;

static fvm_status re_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    return regfile_put_key(&((rewrite *)ctx)->out, path, len, err);
}

static fvm_status re_value(void *ctx, const uint16_t *name, size_t len, uint32_t type, const uint8_t *data,
                           size_t size, fvm_error *err)
{
    return regfile_put_value(&((rewrite *)ctx)->out, name, len, type, data, size, err);
}

static void rewrites_to(const char *text, const char *expect)
{
    rewrite r = {{0}};
    fvm_error err = {0};
    regfile_visitor v = {re_key, re_value, &r};
    assert_int_equal(regfile_put_header(&r.out, &err), FVM_OK);
    if (regfile_parse(text, strlen(text), &v, &err) != FVM_OK)
        fail_msg("parse of <%s> failed: %s", text, err.message);
    assert_int_equal(regfile_put_end(&r.out, &err), FVM_OK);
    if (r.out.len != strlen(expect) || memcmp(r.out.data, expect, r.out.len))
        fail_msg("<%s> rewrote to <%.*s>, expected <%s>", text, (int)r.out.len, r.out.data, expect);
    regfile_buf_free(&r.out);
}

static void test_parse_then_write_is_stable(void **state)
{
    const char *canonical = "FVM REGISTRY 1\n"
                            "[]\n"
                            "[USER\\\\S-1-5-21-0-0-0-1000\\\\Software\\\\Caf\xc3\xa9 \xe4\xb8\xad]\n"
                            "\"a\\\"b\\\\c\\0\\n\\u0001\\ud800\xf0\x9f\x98\x80\"=expand_sz:\"%PATH%\"\n"
                            "\"x\"=hex(46564d44):00\n"
                            "\"y\"=hex(0):\n"
                            "[A\\]B]\n"
                            "END\n";
    rewrites_to(canonical, canonical);
    /* Accepted variants: CRLF, comments, blank lines, upper-case hex, escaped
     * forms of what is written as UTF-8 or literally. */
    rewrites_to("FVM REGISTRY 1\r\n; a comment\r\n\r\n[K]\r\n\"\\u0041\\uD83D\\uDE00\"=dword:0000ABCD\r\n"
                "\"q\"=hex(B):0102030405060708\r\nEND\r\n\r\n; trailing comment\n",
                "FVM REGISTRY 1\n[K]\n\"A\xf0\x9f\x98\x80\"=dword:0000abcd\n\"q\"=qword:0807060504030201\nEND\n");
    rewrites_to("FVM REGISTRY 1\n[K]\n\"s\"=hex(1):610000\n\"t\"=hex(1):61000000\nEND",
                "FVM REGISTRY 1\n[K]\n\"s\"=hex(1):610000\n\"t\"=sz:\"a\"\nEND\n");
}

static void test_reports_line_and_column(void **state)
{
    refuses("", FVM_E_PARSE, "line 1, column 1", "not an FVM registry file");
    refuses("REGEDIT4\n", FVM_E_PARSE, "line 1, column 1", "not an FVM registry file");
    refuses("FVM REGISTRY 2\nEND\n", FVM_E_UNSUPPORTED, "line 1, column 14", "version");
    refuses("FVM REGISTRY 1\n[K]\n", FVM_E_PARSE, "line 2, column 4", "truncated");
    refuses("FVM REGISTRY 1\n\"v\"=dword:00000001\nEND\n", FVM_E_PARSE, "line 2, column 1", "before any key");
    refuses("FVM REGISTRY 1\n[K\nEND\n", FVM_E_PARSE, "line 2, column 1", "no closing ']'");
    refuses("FVM REGISTRY 1\n[A\\\\\\\\B]\nEND\n", FVM_E_PARSE, "line 2, column 1", "empty name");
    refuses("FVM REGISTRY 1\n[\\\\A]\nEND\n", FVM_E_PARSE, "line 2", "empty name");
    refuses("FVM REGISTRY 1\n[A\\\\]\nEND\n", FVM_E_PARSE, "line 2", "empty name");
    refuses("FVM REGISTRY 1\n[K] x\nEND\n", FVM_E_PARSE, "line 2, column 4", "after the end");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=dword:1\nEND\n", FVM_E_PARSE, "line 3, column 11", "8 hex digits");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=qword:00000000000000001\nEND\n", FVM_E_PARSE, "line 3, column 27",
            "after the end");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=hex(3):abc\nEND\n", FVM_E_PARSE, "line 3, column 14", "two hex digits");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=hex(123456789):\nEND\n", FVM_E_PARSE, "line 3, column 9", "1 to 8");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=hex():\nEND\n", FVM_E_PARSE, "line 3, column 9", "1 to 8");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=hex(1)00\nEND\n", FVM_E_PARSE, "line 3, column 10", "'):'");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=string:\"x\"\nEND\n", FVM_E_PARSE, "line 3, column 5", "unknown value data");
    refuses("FVM REGISTRY 1\n[K]\n\"v\" =deleted\nEND\n", FVM_E_PARSE, "line 3, column 4", "expected '='");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=deleted!\nEND\n", FVM_E_PARSE, "line 3, column 12", "after the end");
    refuses("FVM REGISTRY 1\n[K]\n\"a\\qb\"=deleted\nEND\n", FVM_E_PARSE, "line 3, column 3", "unknown escape");
    refuses("FVM REGISTRY 1\n[K]\n\"a\\u12g4\"=deleted\nEND\n", FVM_E_PARSE, "line 3, column 3", "four hex");
    refuses("FVM REGISTRY 1\n[K]\n\"a\tb\"=deleted\nEND\n", FVM_E_PARSE, "line 3, column 3", "control character");
    refuses("FVM REGISTRY 1\n[K]\n\"a\xc3\"=deleted\nEND\n", FVM_E_PARSE, "line 3, column 3", "invalid UTF-8");
    refuses("FVM REGISTRY 1\n[K]\n\"\xc0\x80\"=deleted\nEND\n", FVM_E_PARSE, "line 3, column 2", "invalid UTF-8");
    refuses("FVM REGISTRY 1\n[K]\n\"\xed\xa0\x80\"=deleted\nEND\n", FVM_E_PARSE, "column 2", "invalid UTF-8");
    refuses("FVM REGISTRY 1\n[K]\n\"\xf4\x90\x80\x80\"=deleted\nEND\n", FVM_E_PARSE, "column 2", "invalid UTF-8");
    refuses("FVM REGISTRY 1\n[K]\n\"v\"=sz:\"abc\nEND\n", FVM_E_PARSE, "line 3, column 8", "no closing '\"'");
    refuses("FVM REGISTRY 1\n[K]\nkey=value\nEND\n", FVM_E_PARSE, "line 3, column 1", "expected a key line");
    refuses("FVM REGISTRY 1\n[K]\nEND\n[L]\n", FVM_E_PARSE, "line 4, column 1", "after the END");
    refuses("FVM REGISTRY 1\n[K]\n\"a\\", FVM_E_PARSE, "line 3, column 3", "end of the line");
}

/* A callback's error stops the parse and keeps its status, with the line. */
static fvm_status refuse_second_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    int *seen = ctx;
    if (++*seen == 2)
        return fvm_error_set(err, FVM_E_IO, "cannot create key");
    return FVM_OK;
}

static void test_callback_error_stops(void **state)
{
    int seen = 0;
    regfile_visitor v = {refuse_second_key, NULL, &seen};
    fvm_error err;
    const char *text = "FVM REGISTRY 1\n[A]\n\"v\"=deleted\n[B]\n[C]\nEND\n";
    assert_int_equal(regfile_parse(text, strlen(text), &v, &err), FVM_E_IO);
    assert_int_equal(seen, 2);
    assert_string_equal(err.message, "line 4: cannot create key");
    /* No visitor at all: validation only. */
    assert_int_equal(regfile_parse(text, strlen(text), NULL, &err), FVM_OK);
}

static void test_writer_refuses_empty_names(void **state)
{
    regfile_buf b = {0};
    fvm_error err;
    static const uint16_t bad1[] = {'\\', 'A'}, bad2[] = {'A', '\\'}, bad3[] = {'A', '\\', '\\', 'B'};
    assert_int_equal(regfile_put_key(&b, bad1, 2, &err), FVM_E_INVALID);
    assert_int_equal(regfile_put_key(&b, bad2, 2, &err), FVM_E_INVALID);
    assert_int_equal(regfile_put_key(&b, bad3, 4, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "empty name"));
    static const uint16_t one[] = {'\\'};
    assert_int_equal(regfile_put_key(&b, one, 1, &err), FVM_E_INVALID);
    regfile_buf_free(&b);
}

/* Random keys and values: the parser gives back exactly what was written. */
static void test_random_round_trips(void **state)
{
    srand(12345);
    for (int round = 0; round < 300; round++) {
        regfile_buf b = {0};
        static record want, got;
        fvm_error err;
        memset(&want, 0, sizeof want);
        assert_int_equal(regfile_put_header(&b, &err), FVM_OK);
        for (int item = 0; item < 6; item++) {
            uint16_t units[12];
            uint8_t data[12];
            size_t n = (size_t)(rand() % 12), size = (size_t)(rand() % 12);
            for (size_t i = 0; i < n; i++) {
                static const uint16_t pick[] = {0, 'a', '"', '\\', ']', '\n', 0xd800, 0xdc00, 0xe9, 0xffff, 0x7f};
                units[i] = rand() % 2 ? pick[rand() % 11] : (uint16_t)rand();
            }
            for (size_t i = 0; i < size; i++)
                data[i] = rand() % 3 ? 0 : (uint8_t)rand();
            uint32_t type = rand() % 4 ? (uint32_t)(rand() % 12) : (uint32_t)rand() * 7919u;
            if (item == 0 || rand() % 3 == 0) {
                for (size_t i = 0; i < n; i++)   /* a path: no empty names */
                    if (units[i] == '\\' && (i == 0 || i + 1 == n || units[i - 1] == '\\'))
                        units[i] = 'k';
                assert_int_equal(regfile_put_key(&b, units, n, &err), FVM_OK);
                on_key(&want, units, n, NULL);
            } else {
                assert_int_equal(regfile_put_value(&b, units, n, type, data, size, &err), FVM_OK);
                on_value(&want, units, n, type, data, size, NULL);
            }
        }
        assert_int_equal(regfile_put_end(&b, &err), FVM_OK);
        memset(&got, 0, sizeof got);
        regfile_visitor v = {on_key, on_value, &got};
        if (regfile_parse(b.data, b.len, &v, &err) != FVM_OK)
            fail_msg("round %d: %s\n%.*s", round, err.message, (int)b.len, b.data);
        assert_string_equal(got.text, want.text);
        regfile_buf_free(&b);
    }
}

/* An escape written at the very end of the caller's buffer stays inside it
 * (ASan checks the bytes written). */
static void test_escape_fills_buffer_exactly(void **state)
{
    for (size_t room = 1; room < 16; room++) {
        regfile_buf b;
        fvm_error err;
        b.cap = 64;
        b.data = malloc(b.cap);
        assert_non_null(b.data);
        size_t at = b.len = b.cap - room;
        static const uint16_t name[] = {1};
        assert_int_equal(regfile_put_value(&b, name, 1, REGFILE_TYPE_DELETED, NULL, 0, &err), FVM_OK);
        assert_int_equal(b.len, at + 17);
        assert_memory_equal(b.data + at, "\"\\u0001\"=deleted\n", 17);
        regfile_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readable_forms),
        cmocka_unit_test(test_round_trip_exact),
        cmocka_unit_test(test_parse_then_write_is_stable),
        cmocka_unit_test(test_reports_line_and_column),
        cmocka_unit_test(test_callback_error_stops),
        cmocka_unit_test(test_writer_refuses_empty_names),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_escape_fills_buffer_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

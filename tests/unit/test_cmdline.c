/* test_cmdline.c - Windows command line splitting, checked against the
 * documented CRT rules (the examples in Microsoft's "Parsing C++ command-line
 * arguments" table among them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <uchar.h>
#include <cmocka.h>

#include "core/cmdline.h"

static void to_ascii(const uint16_t *in, char *out, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (char)in[i];
    out[i] = 0;
}

/* Splits line (program first) and compares with the expected '|'-joined args. */
static void expect_split(const char16_t *line, const char *expected)
{
    const uint16_t *l = (const uint16_t *)line;
    char joined[512] = "";
    uint16_t value[128];
    char ascii[128];
    cmdline_token tok;
    size_t pos = 0;
    int first = 1;
    while (first ? cmdline_next_program(l, &pos, &tok, value, 128) : cmdline_next(l, &pos, &tok, value, 128)) {
        to_ascii(value, ascii, sizeof ascii);
        if (!first)
            strcat(joined, "|");
        strcat(joined, ascii);
        first = 0;
    }
    assert_string_equal(joined, expected);
}

static void test_plain_words(void **state)
{
    expect_split(u"prog a b  c", "prog|a|b|c");
    expect_split(u"  prog\ta ", "prog|a");
    expect_split(u"", "");
}

static void test_microsoft_examples(void **state)
{
    expect_split(u"p \"a b c\" d e", "p|a b c|d|e");
    expect_split(u"p \"ab\\\"c\" \"\\\\\" d", "p|ab\"c|\\|d");
    expect_split(u"p a\\\\\\b d\"e f\"g h", "p|a\\\\\\b|de fg|h");
    expect_split(u"p a\\\\\\\"b c d", "p|a\\\"b|c|d");
    expect_split(u"p a\\\\\\\\\"b c\" d e", "p|a\\\\b c|d|e");
    expect_split(u"p a\"b\"\" c d", "p|ab\" c d");
}

static void test_program_rules(void **state)
{
    /* backslashes are literal in the program name; quotes only delimit */
    expect_split(u"\"C:\\Program Files\\x.exe\" y", "C:\\Program Files\\x.exe|y");
    expect_split(u"C:\\a\\\"b c\" d", "C:\\a\\b c|d");
}

static void test_offsets_keep_raw_tail(void **state)
{
    const uint16_t *l = (const uint16_t *)u"fvm.exe run --box b cmd /c \"echo hi > x\"";
    size_t pos = 0;
    cmdline_token tok;
    uint16_t value[64];
    char ascii[64];
    assert_true(cmdline_next_program(l, &pos, &tok, NULL, 0));
    for (int i = 0; i < 3; i++)
        assert_true(cmdline_next(l, &pos, &tok, NULL, 0));
    assert_true(cmdline_next(l, &pos, &tok, value, 64));
    to_ascii(value, ascii, sizeof ascii);
    assert_string_equal(ascii, "cmd");
    to_ascii(l + tok.start, ascii, sizeof ascii);
    assert_string_equal(ascii, "cmd /c \"echo hi > x\"");
}

static void test_value_truncated_safely(void **state)
{
    const uint16_t *l = (const uint16_t *)u"p abcdefghij";
    size_t pos = 0;
    cmdline_token tok;
    uint16_t value[4];
    assert_true(cmdline_next_program(l, &pos, &tok, NULL, 0));
    assert_true(cmdline_next(l, &pos, &tok, value, 4));
    assert_int_equal(value[3], 0);
    assert_int_equal(tok.end - tok.start, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_words),
        cmocka_unit_test(test_microsoft_examples),
        cmocka_unit_test(test_program_rules),
        cmocka_unit_test(test_offsets_keep_raw_tail),
        cmocka_unit_test(test_value_truncated_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_syncpolicy.c - the [sync] section (core/syncpolicy): rules, the last
 * matching rule deciding, the wildcard forms, registry abbreviations, and
 * errors with file:line:column. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/syncpolicy.h"

static const char *vars(void *ctx, const char *name, size_t len)
{
    if (len == 11 && !memcmp(name, "USERPROFILE", 11))
        return "C:\\Users\\me";
    return NULL;
}

typedef struct diags {
    char text[2048];
    int count;
} diags;

static void on_diag(void *ctx, const char *file, unsigned line, unsigned column, const char *message)
{
    diags *d = ctx;
    size_t n = strlen(d->text);
    snprintf(d->text + n, sizeof d->text - n, "%s:%u:%u: %s\n", file, line, column, message);
    d->count++;
}

static sync_action decide(const sync_policy *p, const char *path)
{
    return sync_policy_decide(p, path, strlen(path), NULL);
}

static void test_last_matching_rule_decides(void **state)
{
    const char *text = "[file]\nread C:\\x\\**\n[sync]\n# comment\ncommit %USERPROFILE%\\Documents\\**\n"
                       "deny %USERPROFILE%\\Documents\\secret\\**\nask C:/data/*.txt\n";
    sync_policy p;
    fvm_error err;
    assert_int_equal(sync_policy_parse("policy.ini", text, strlen(text), vars, NULL, NULL, NULL, &p, &err), FVM_OK);
    assert_int_equal(p.count, 3);
    assert_int_equal(decide(&p, "C:\\Users\\me\\Documents\\a.txt"), SYNC_COMMIT);
    assert_int_equal(decide(&p, "c:\\users\\ME\\documents\\deep\\b\\c.doc"), SYNC_COMMIT);
    assert_int_equal(decide(&p, "C:\\Users\\me\\Documents"), SYNC_COMMIT);
    assert_int_equal(decide(&p, "C:\\Users\\me\\Documents\\secret\\k"), SYNC_DENY);
    assert_int_equal(decide(&p, "C:\\data\\x.txt"), SYNC_ASK);
    assert_int_equal(decide(&p, "C:\\data\\sub\\x.txt"), SYNC_DENY);
    assert_int_equal(decide(&p, "C:\\other"), SYNC_DENY);
    const sync_rule *r;
    assert_int_equal(sync_policy_decide(&p, "C:\\data\\y.txt", 13, &r), SYNC_ASK);
    assert_non_null(r);
    assert_int_equal(r->line, 7);
    assert_string_equal(r->file, "policy.ini");
    sync_policy_free(&p);
}

static void test_no_section_denies_everything(void **state)
{
    sync_policy p;
    fvm_error err;
    assert_int_equal(sync_policy_parse("p", "[file]\nread C:\\**\n", 18, NULL, NULL, NULL, NULL, &p, &err), FVM_OK);
    assert_int_equal(p.count, 0);
    assert_int_equal(decide(&p, "C:\\a"), SYNC_DENY);
    sync_policy_free(&p);
}

static void test_wildcards(void **state)
{
#define M(pat, path) sync_pattern_match(pat, strlen(pat), path, strlen(path))
    assert_true(M("C:\\a\\*", "C:\\a\\b"));
    assert_false(M("C:\\a\\*", "C:\\a\\b\\c"));
    assert_true(M("C:\\a\\**", "C:\\a\\b\\c"));
    assert_true(M("C:\\a\\**", "C:\\a"));
    assert_true(M("C:\\a\\**\\x", "C:\\a\\x"));
    assert_true(M("C:\\a\\**\\x", "C:\\a\\b\\c\\x"));
    assert_false(M("C:\\a\\**\\x", "C:\\a\\bx"));
    assert_true(M("C:\\a\\?.t*t", "C:\\A\\b.TXT"));
    assert_false(M("C:\\a\\?", "C:\\a\\\\"));
    assert_true(M("*:\\tmp\\**", "D:\\tmp\\x"));
    assert_false(M("C:\\abc", "C:\\ab"));
    assert_false(M("C:\\ab", "C:\\abc"));
    assert_true(M("**", ""));
    /* Many stars stay polynomial. */
    char pat[400], path[2000];
    for (int i = 0; i < 199; i++) {
        pat[2 * i] = '*';
        pat[2 * i + 1] = 'a';
    }
    pat[398] = 'b';
    pat[399] = 0;
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = 0;
    assert_false(M(pat, path));
#undef M
}

static void test_registry_abbreviations(void **state)
{
    const char *text = "[sync]\ncommit HKCU\\Software\\App\\**\ncommit hklm/software/x\n";
    sync_policy p;
    fvm_error err;
    assert_int_equal(sync_policy_parse("p", text, strlen(text), NULL, NULL, NULL, NULL, &p, &err), FVM_OK);
    assert_string_equal(p.rules[0].pattern, "HKEY_CURRENT_USER\\Software\\App\\**");
    assert_int_equal(decide(&p, "HKEY_CURRENT_USER\\SOFTWARE\\App\\k"), SYNC_COMMIT);
    assert_int_equal(decide(&p, "HKCU\\Software\\App"), SYNC_COMMIT);
    assert_int_equal(decide(&p, "HKEY_LOCAL_MACHINE\\SOFTWARE\\X"), SYNC_COMMIT);
    assert_int_equal(decide(&p, "HKEY_LOCAL_MACHINE\\SOFTWARE\\Y"), SYNC_DENY);
    sync_policy_free(&p);
}

static void test_errors_name_line_and_column(void **state)
{
    const char *text = "[sync]\ncommit C:\\ok\\**\n  copy C:\\x\ncommit\nask relative\\path\ncommit %NOPE%\\x\n"
                       "[file]\nnonsense here is not ours\n[ sync ]\ndeny \"C:\\unterminated\n";
    sync_policy p;
    fvm_error err;
    diags d = {{0}, 0};
    assert_int_equal(sync_policy_parse("box.ini", text, strlen(text), vars, NULL, on_diag, &d, &p, &err),
                     FVM_E_PARSE);
    assert_int_equal(d.count, 5);
    assert_non_null(strstr(d.text, "box.ini:3:3: unknown [sync] action 'copy'"));
    assert_non_null(strstr(d.text, "box.ini:4:7: 'commit' needs a path pattern"));
    assert_non_null(strstr(d.text, "box.ini:5:5: 'relative\\path' is not a full path"));
    assert_non_null(strstr(d.text, "box.ini:6:8: unknown variable %NOPE%"));
    assert_non_null(strstr(d.text, "box.ini:10:6: a quoted pattern"));
    assert_non_null(strstr(err.message, "box.ini:3:3:"));
    assert_non_null(strstr(err.message, "5 errors"));
    assert_null(p.rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_matching_rule_decides),
        cmocka_unit_test(test_no_section_denies_everything),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_registry_abbreviations),
        cmocka_unit_test(test_errors_name_line_and_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_policy_process.c - the [process] section (core/policy_process.c):
 * image path rules in the file pattern form, SHA-256 rules (canonical form,
 * every malformed hash refused with file:line:column), the start decision
 * combining the two (a matching hash rule wins over any path rule, also
 * over "deny **"), the default (start allowed), audit flags, program
 * scopes, and whether a policy has hash rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/policy.h"
#include "core/policy_process.h"

static char diags[8192];

static void collect_diag(void *ctx, const policy_diag *d)
{
    (void)ctx;
    char line[1024];
    policy_diag_format(d, line, sizeof line);
    strncat(diags, line, sizeof diags - strlen(diags) - 2);
    strcat(diags, "\n");
}

static const ntpath_volume volumes[] = {{(const uint16_t *)u"\\Device\\HarddiskVolume1", 23, 'C'}};
static ntpath_context path_ctx;

static policy_env env(void)
{
    memset(&path_ctx, 0, sizeof path_ctx);
    path_ctx.volumes = volumes;
    path_ctx.volume_count = 1;
    path_ctx.system_root.units = (const uint16_t *)u"C:\\Windows";
    path_ctx.system_root.len = 10;
    policy_env e;
    memset(&e, 0, sizeof e);
    e.path_ctx = &path_ctx;
    e.diag = collect_diag;
    return e;
}

typedef struct compiled {
    policy *p;
    void *blob;
    size_t len;
    policy_view view;
} compiled;

static void compile(const char *text, compiled *c)
{
    policy_env e = env();
    fvm_error err = {0};
    diags[0] = 0;
    if (policy_load_text("box.ini", text, strlen(text), &e, &c->p, &err) != FVM_OK)
        fail_msg("load: %s\n%s", err.message, diags);
    if (policy_compile(c->p, &c->blob, &c->len, &err) != FVM_OK || policy_blob_open(c->blob, c->len, &c->view, &err))
        fail_msg("compile: %s", err.message);
}

static void release(compiled *c)
{
    policy_blob_free(c->blob);
    policy_free(c->p);
}

static void load_fails(const char *text, const char *expected)
{
    policy_env e = env();
    policy *p = NULL;
    fvm_error err = {0};
    diags[0] = 0;
    assert_int_equal(policy_load_text("box.ini", text, strlen(text), &e, &p, &err), FVM_E_PARSE);
    assert_null(p);
    if (!strstr(diags, expected))
        fail_msg("expected '%s' in:\n%s", expected, diags);
}

static size_t units(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    for (size_t i = 0; i <= n; i++)
        out[i] = (uint16_t)(unsigned char)s[i];
    return n;
}

static policy_decision start(const compiled *c, const char *image, const char *hash, const char *program)
{
    uint16_t name[512], prog[512];
    size_t n = units(image, name), pn = program ? units(program, prog) : 0;
    policy_decision d;
    assert_int_equal(policy_process_decide(&c->view, name, n, hash, program ? prog : NULL, pn, &d), FVM_OK);
    return d;
}

#define HASH_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HASH_B "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

static void hash_form_is_canonical(void **state)
{
    uint16_t in[128], out[POLICY_PROCESS_HASH_UNITS];
    fvm_error err;
    size_t bad = 99;
    size_t n = units("SHA256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789ABCDEF", in);
    assert_true(policy_process_is_hash(in, n));
    assert_int_equal(policy_process_hash_form(in, n, out, &bad, &err), POLICY_PROCESS_HASH_UNITS);
    char text[POLICY_PROCESS_HASH_UNITS + 1];
    for (size_t i = 0; i < POLICY_PROCESS_HASH_UNITS; i++)
        text[i] = (char)out[i];
    text[POLICY_PROCESS_HASH_UNITS] = 0;
    assert_string_equal(text, "sha256\\" HASH_A);
    n = units("C:\\sha256:x.exe", in);
    assert_false(policy_process_is_hash(in, n));
}

static void malformed_hashes_are_refused(void **state)
{
    uint16_t in[200], out[POLICY_PROCESS_HASH_UNITS];
    fvm_error err;
    size_t bad;
    size_t n = units("sha256:0123", in);
    assert_int_equal(policy_process_hash_form(in, n, out, &bad, &err), 0);
    assert_non_null(strstr(err.message, "64 hexadecimal digits, this one has 4"));
    n = units("sha256:" HASH_A "0", in);
    assert_int_equal(policy_process_hash_form(in, n, out, &bad, &err), 0);
    assert_int_equal(bad, 7 + 64);
    n = units("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", in);
    assert_int_equal(policy_process_hash_form(in, n, out, &bad, &err), 0);
    assert_int_equal(bad, 7 + 63);
    n = units("sha256:*", in);
    assert_int_equal(policy_process_hash_form(in, n, out, &bad, &err), 0);
    assert_non_null(strstr(err.message, "wildcards"));
    n = units("md5:abc", in);
    assert_int_equal(policy_process_hash_form(in, n, out, &bad, &err), 0);

    /* Through the parser: file:line:column of the pattern. */
    load_fails("[process]\ndeny sha256:12345\n", "box.ini:2:6: error: a SHA-256 is 64 hexadecimal digits");
    load_fails("[process]\n\n  audit.exe: deny audit sha256:" HASH_A "x\n", "box.ini:3:25: error: a SHA-256 is 64 hexadecimal digits: character 65");
    load_fails("[process]\ndeny sha256:" HASH_A "\ndeny sha256:zz\n", "box.ini:3:6: error:");
    /* Image path patterns are file patterns: relative or broken ones fail. */
    load_fails("[process]\ndeny notepad.exe\n", "box.ini:2:6: error:");
    load_fails("[process]\ndeny C:\\a**b\\x.exe\n", "box.ini:2:6: error:");
}

static void path_rules_decide_starts(void **state)
{
    compiled c;
    compile("[process]\ndeny **\\powershell.exe\nhide audit C:\\Tools\\**\ncow C:\\Tools\\ok.exe\n"
            "cmd.exe: deny C:\\Windows\\System32\\reg.exe\n", &c);
    policy_decision d = start(&c, "\\??\\C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell.exe", NULL, NULL);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_int_equal(d.line, 2);
    d = start(&c, "\\??\\C:\\Tools\\x.exe", NULL, NULL);
    assert_int_equal(d.action, POLICY_ACTION_HIDE);
    assert_true(d.audit);
    d = start(&c, "\\??\\C:\\Tools\\ok.exe", NULL, NULL);
    assert_int_equal(d.action, POLICY_ACTION_COW);
    assert_false(d.audit);
    /* No rule: the program starts (in the box). */
    d = start(&c, "\\??\\C:\\Windows\\notepad.exe", NULL, NULL);
    assert_int_equal(d.action, POLICY_ACTION_COW);
    assert_true(d.is_default);
    /* Program scope: only cmd.exe may not start reg.exe. */
    assert_int_equal(start(&c, "\\??\\C:\\Windows\\System32\\reg.exe", NULL, "C:\\x\\cmd.exe").action,
                     POLICY_ACTION_DENY);
    assert_int_equal(start(&c, "\\??\\C:\\Windows\\System32\\reg.exe", NULL, "C:\\x\\app.exe").action,
                     POLICY_ACTION_COW);
    assert_false(policy_process_has_hash_rules(&c.view));
    release(&c);
}

static void hash_rules_win_over_paths(void **state)
{
    compiled c;
    compile("[process]\ndeny **\ncow sha256:" HASH_A "\ndeny audit SHA256:" HASH_B "\n"
            "cow C:\\Allowed\\**\n", &c);
    assert_true(policy_process_has_hash_rules(&c.view));
    /* An allow-list by hash: everything else is denied by "deny **". */
    policy_decision d = start(&c, "\\??\\C:\\Anywhere\\tool.exe", HASH_A, NULL);
    assert_int_equal(d.action, POLICY_ACTION_COW);
    assert_int_equal(d.line, 3);
    d = start(&c, "\\??\\C:\\Anywhere\\tool.exe", "0000000000000000000000000000000000000000000000000000000000000000",
              NULL);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_int_equal(d.line, 2);
    /* A denied hash is denied wherever the file sits. */
    d = start(&c, "\\??\\C:\\Allowed\\renamed.exe", HASH_B, NULL);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_true(d.audit);
    /* Without a hash (could not be read) the path decides. */
    assert_int_equal(start(&c, "\\??\\C:\\Allowed\\renamed.exe", NULL, NULL).action, POLICY_ACTION_COW);
    /* Upper-case digits from a caller match too. */
    d = start(&c, "\\??\\C:\\x.exe", "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF", NULL);
    assert_int_equal(d.action, POLICY_ACTION_COW);
    /* A short hash string is ignored, never read past its end. */
    assert_int_equal(start(&c, "\\??\\C:\\x.exe", "0123", NULL).action, POLICY_ACTION_DENY);
    release(&c);
}

static void open_and_read_rules_for_outside_processes(void **state)
{
    compiled c;
    compile("[process]\nopen C:\\Windows\\explorer.exe\nread **\\services.exe\n", &c);
    assert_int_equal(start(&c, "\\??\\C:\\Windows\\explorer.exe", NULL, NULL).action, POLICY_ACTION_OPEN);
    assert_int_equal(start(&c, "\\??\\C:\\Windows\\System32\\services.exe", NULL, NULL).action, POLICY_ACTION_READ);
    assert_true(policy_type_enforced(POLICY_TYPE_PROCESS));
    assert_int_equal(policy_type_default_action(POLICY_TYPE_PROCESS), POLICY_ACTION_COW);
    release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_form_is_canonical),
        cmocka_unit_test(malformed_hashes_are_refused),
        cmocka_unit_test(path_rules_decide_starts),
        cmocka_unit_test(hash_rules_win_over_paths),
        cmocka_unit_test(open_and_read_rules_for_outside_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

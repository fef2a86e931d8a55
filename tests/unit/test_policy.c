/* test_policy.c - the policy engine: parser (syntax, every error with
 * file:line:column, variables, includes, templates, groups), canonical
 * patterns for files (every path form, as the runtime normalizes names),
 * keys and objects, the compiler and the blob validator (every corrupted
 * byte is caught), the matcher (wildcards, case, program scopes) and each
 * precedence step in both orders, the explanation, and the shipped policies
 * in policy/ (read from the repository: run from its top, as make test
 * does, or set FVM_TOP). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/policy.h"

/* ---- fixtures ---------------------------------------------------------------- */

static char diags[32768];
static int diag_errors, diag_warnings, diag_notes;

static void collect_diag(void *ctx, const policy_diag *d)
{
    (void)ctx;
    char line[1024];
    policy_diag_format(d, line, sizeof line);
    strncat(diags, line, sizeof diags - strlen(diags) - 2);
    strcat(diags, "\n");
    if (d->severity == POLICY_DIAG_ERROR)
        diag_errors++;
    else if (d->severity == POLICY_DIAG_WARNING)
        diag_warnings++;
    else
        diag_notes++;
}

static void reset_diags(void)
{
    diags[0] = 0;
    diag_errors = diag_warnings = diag_notes = 0;
}

static const policy_var test_vars[] = {
    {"USERPROFILE", "C:\\Users\\me"},
    {"APPDATA", "C:\\Users\\me\\AppData\\Roaming"},
    {"LOCALAPPDATA", "C:\\Users\\me\\AppData\\Local"},
    {"ProgramFiles(x86)", "C:\\Program Files (x86)"},
};

static const ntpath_volume test_volumes[] = {
    {(const uint16_t *)u"\\Device\\HarddiskVolume1", 23, 'C'},
    {(const uint16_t *)u"\\Device\\HarddiskVolume2", 23, 'D'},
};

static ntpath_context test_path_ctx;
static policy_memory_file memory_files[8];
static policy_memory_files memory = {memory_files, 0};

static policy_env test_env(void)
{
    memset(&test_path_ctx, 0, sizeof test_path_ctx);
    test_path_ctx.volumes = test_volumes;
    test_path_ctx.volume_count = 2;
    test_path_ctx.computer_name.units = (const uint16_t *)u"MYPC";
    test_path_ctx.computer_name.len = 4;
    test_path_ctx.system_root.units = (const uint16_t *)u"C:\\Windows";
    test_path_ctx.system_root.len = 10;
    policy_env env;
    memset(&env, 0, sizeof env);
    env.vars = test_vars;
    env.var_count = sizeof test_vars / sizeof test_vars[0];
    env.user_sid = "S-1-5-21-1000";
    env.session_objects = "\\Sessions\\1\\BaseNamedObjects";
    env.path_ctx = &test_path_ctx;
    env.read = policy_memory_read;
    env.read_ctx = &memory;
    env.diag = collect_diag;
    return env;
}

static void set_files(size_t count, ...)
{
    va_list ap;
    va_start(ap, count);
    for (size_t i = 0; i < count; i++) {
        memory_files[i].name = va_arg(ap, const char *);
        memory_files[i].text = va_arg(ap, const char *);
    }
    va_end(ap);
    memory.count = count;
}

static policy *load_env(const char *text, const policy_env *env)
{
    reset_diags();
    policy *p = NULL;
    fvm_error err = {0};
    fvm_status st = policy_load_text("box.ini", text, strlen(text), env, &p, &err);
    if (st != FVM_OK)
        fail_msg("policy did not load (%s):\n%s", err.message, diags);
    return p;
}

static policy *load_ok(const char *text)
{
    policy_env env = test_env();
    return load_env(text, &env);
}

/* Loading must fail and the messages must contain each expected line. */
static void load_fails(const char *text, const char *expected)
{
    policy_env env = test_env();
    reset_diags();
    policy *p = (policy *)1;
    fvm_error err = {0};
    fvm_status st = policy_load_text("box.ini", text, strlen(text), &env, &p, &err);
    assert_int_equal(st, FVM_E_PARSE);
    assert_null(p);
    if (!strstr(diags, expected))
        fail_msg("expected '%s' in:\n%s", expected, diags);
}

typedef struct compiled {
    policy *p;
    void *blob;
    size_t len;
    policy_view view;
} compiled;

static void compile_policy(policy *p, compiled *c)
{
    fvm_error err = {0};
    c->p = p;
    if (policy_compile(p, &c->blob, &c->len, &err) != FVM_OK)
        fail_msg("compile: %s", err.message);
    if (policy_blob_open(c->blob, c->len, &c->view, &err) != FVM_OK)
        fail_msg("open: %s", err.message);
}

static void compile_text(const char *text, compiled *c)
{
    compile_policy(load_ok(text), c);
}

static void release(compiled *c)
{
    policy_blob_free(c->blob);
    policy_free(c->p);
    memset(c, 0, sizeof *c);
}

static size_t to_units(const char *s, uint16_t *out, size_t cap)
{
    size_t bad;
    size_t n = policy_utf8_to_utf16(s, strlen(s), out, cap - 1, &bad);
    assert_true(n != (size_t)-1);
    out[n] = 0;
    return n;
}

static void to_ascii(const uint16_t *u, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, u[i] < 0x80 ? "%c" : "\\u%04X", u[i]);
    out[o] = 0;
}

/* Decides for a canonical name written as ASCII/UTF-8. */
static policy_decision decide(const compiled *c, policy_type type, const char *name, const char *program)
{
    uint16_t n[1024], p[256];
    size_t nl = to_units(name, n, 1024), pl = program ? to_units(program, p, 256) : 0;
    policy_decision d;
    fvm_status st = policy_match(&c->view, type, n, nl, program ? p : NULL, pl, &d);
    assert_int_equal(st, FVM_OK);
    return d;
}

/* The decision must be `action` by the rule on `line` of `file` (line 0:
 * the default). */
static void expect_in(const compiled *c, policy_type type, const char *name, const char *program,
                      policy_action action, const char *file, uint32_t line)
{
    policy_decision d = decide(c, type, name, program);
    char label[128];
    policy_decision_label(&d, label, sizeof label);
    if (d.action != action || (line == 0) != (d.is_default != 0) ||
        (line && (d.line != line || d.file_len != strlen(file) || memcmp(d.file, file, d.file_len) != 0)))
        fail_msg("%s '%s' (program %s): got %s by %s, expected %s by %s:%u", policy_type_name(type), name,
                 program ? program : "-", policy_action_name(d.action), label, policy_action_name(action), file,
                 line);
}

static void expect(const compiled *c, policy_type type, const char *name, const char *program, policy_action action,
                   uint32_t line)
{
    expect_in(c, type, name, program, action, "box.ini", line);
}

/* What the runtime does: normalize whatever spelling the program used, then
 * match the canonical path. */
static ntpath host_path;
static policy_decision decide_spelling(const compiled *c, const char *spelling, const char *program)
{
    uint16_t u[1024], p[256];
    size_t n = to_units(spelling, u, 1024), pl = program ? to_units(program, p, 256) : 0;
    policy_env env = test_env();
    ntpath_context ctx = *env.path_ctx;
    ctx.current_dir.units = (const uint16_t *)u"C:\\Users\\me";
    ctx.current_dir.len = 11;
    fvm_error err;
    if (ntpath_normalize(u, n, &ctx, &host_path, &err) != FVM_OK)
        fail_msg("'%s' does not normalize: %s", spelling, err.message);
    policy_decision d;
    assert_int_equal(policy_match(&c->view, POLICY_TYPE_FILE, host_path.path, host_path.len, program ? p : NULL, pl,
                                  &d),
                     FVM_OK);
    return d;
}

/* The canonical pattern(s) a one-rule policy produces. */
static void expect_pattern_env(const char *section, const char *pattern, const char *canonical,
                               const char *second, const policy_env *env)
{
    char text[1024];
    snprintf(text, sizeof text, "[%s]\nread %s\n", section, pattern);
    policy *p = load_env(text, env);
    assert_int_equal(policy_rule_count(p), 1);
    const policy_rule *r = policy_rule_at(p, 0);
    char got[1024];
    to_ascii(r->patterns[0].units, r->patterns[0].len, got, sizeof got);
    if (strcmp(got, canonical) != 0)
        fail_msg("[%s] '%s' -> '%s', expected '%s'", section, pattern, got, canonical);
    assert_int_equal(r->pattern_count, second ? 2 : 1);
    if (second) {
        to_ascii(r->patterns[1].units, r->patterns[1].len, got, sizeof got);
        if (strcmp(got, second) != 0)
            fail_msg("[%s] '%s' second form -> '%s', expected '%s'", section, pattern, got, second);
    }
    policy_free(p);
}

static void expect_pattern(const char *section, const char *pattern, const char *canonical)
{
    policy_env env = test_env();
    expect_pattern_env(section, pattern, canonical, NULL, &env);
}

/* ---- syntax ----------------------------------------------------------------------- */

/* policy_view_possible: what a type's decisions can be, so that a
 * virtualizer can skip work (a listing filter when nothing can hide). */
static void possible_decisions_per_type(void **state)
{
    (void)state;
    compiled c;
    compile_text("[file]\ndeny C:\\pagefile.sys\nread audit C:\\Docs\\**\n"
                 "[key]\nhide HKLM\\Software\\Secret\n"
                 "[object]\nask \\BaseNamedObjects\\x\n", &c);
    uint32_t file = policy_view_possible(&c.view, POLICY_TYPE_FILE);
    assert_true(file & (1u << POLICY_ACTION_COW));    /* the default */
    assert_true(file & (1u << POLICY_ACTION_DENY));
    assert_true(file & (1u << POLICY_ACTION_READ));
    assert_false(file & (1u << POLICY_ACTION_HIDE));
    assert_true(file & POLICY_POSSIBLE_AUDIT);
    uint32_t key = policy_view_possible(&c.view, POLICY_TYPE_KEY);
    assert_true(key & (1u << POLICY_ACTION_HIDE));
    assert_false(key & (1u << POLICY_ACTION_DENY));
    assert_false(key & POLICY_POSSIBLE_AUDIT);
    /* A rule that asks can end in any action. */
    uint32_t object = policy_view_possible(&c.view, POLICY_TYPE_OBJECT);
    for (int a = POLICY_ACTION_OPEN; a <= POLICY_ACTION_MAX; a++)
        assert_true(object & (1u << a));
    /* No rule at all: only the default. */
    uint32_t process = policy_view_possible(&c.view, POLICY_TYPE_PROCESS);
    assert_int_equal(process & ~POLICY_POSSIBLE_AUDIT, process);
    assert_int_equal(__builtin_popcount(process), 1);
    assert_int_equal(policy_view_possible(&c.view, (policy_type)POLICY_TYPE_COUNT), 0);
    release(&c);
}

static void parses_sections_comments_and_actions(void **state)
{
    policy *p = load_ok("\xEF\xBB\xBF# a comment\r\n"
                        "; another comment\r\n"
                        "\r\n"
                        "[file]\r\n"
                        "  cow  C:\\A\\**\r\n"
                        "READ C:\\B\\**\n"
                        "Open C:\\C\\**\n"
                        "hide audit C:\\D\\**\n"
                        "deny\tC:\\E\\**\n"
                        "ask C:\\F\\**\n"
                        "ask(timeout=2s, default=hide) C:\\G\\**\n"
                        "ask( timeout = 500ms ) C:\\H\\**\n"
                        "ask(default=open,timeout=1m) C:\\I\\**\n"
                        "[ key ]\n"
                        "deny HKLM\\Software\\X\n");
    assert_int_equal(policy_rule_count(p), 10);
    static const policy_action actions[] = {POLICY_ACTION_COW,  POLICY_ACTION_READ, POLICY_ACTION_OPEN,
                                            POLICY_ACTION_HIDE, POLICY_ACTION_DENY, POLICY_ACTION_ASK,
                                            POLICY_ACTION_ASK,  POLICY_ACTION_ASK,  POLICY_ACTION_ASK,
                                            POLICY_ACTION_DENY};
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(policy_rule_at(p, i)->action, actions[i]);
    assert_int_equal(policy_rule_at(p, 0)->line, 5);
    assert_int_equal(policy_rule_at(p, 0)->column, 3);
    assert_string_equal(policy_rule_at(p, 0)->text, "C:\\A\\**");
    assert_false(policy_rule_at(p, 2)->audit);
    assert_true(policy_rule_at(p, 3)->audit);
    assert_int_equal(policy_rule_at(p, 5)->ask_timeout_ms, POLICY_ASK_DEFAULT_TIMEOUT_MS);
    assert_int_equal(policy_rule_at(p, 5)->ask_default, POLICY_ACTION_DENY);
    assert_int_equal(policy_rule_at(p, 6)->ask_timeout_ms, 2000);
    assert_int_equal(policy_rule_at(p, 6)->ask_default, POLICY_ACTION_HIDE);
    assert_int_equal(policy_rule_at(p, 7)->ask_timeout_ms, 500);
    assert_int_equal(policy_rule_at(p, 8)->ask_timeout_ms, 60000);
    assert_int_equal(policy_rule_at(p, 8)->ask_default, POLICY_ACTION_OPEN);
    assert_int_equal(policy_rule_at(p, 9)->type, POLICY_TYPE_KEY);
    assert_int_equal(diag_errors + diag_warnings + diag_notes, 0);
    policy_free(p);
}

static void patterns_with_spaces_and_quotes(void **state)
{
    policy *p = load_ok("[file]\n"
                        "read C:\\Program Files\\App\\**   \n"
                        "read \"C:\\Quoted Dir\\x\"\n"
                        "\"my app.exe\": deny C:\\Y\n");
    policy_free(p);
    p = load_ok("[object]\nread audit\n"); /* an object named "audit": a pattern, not the flag */
    assert_false(policy_rule_at(p, 0)->audit);
    policy_free(p);
    compiled c;
    compile_text("[file]\nread C:\\Program Files\\App\\**\n\"my app.exe\": deny \"C:\\Quoted Dir\\x\"\n", &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Program Files\\App\\a.dll", NULL, POLICY_ACTION_READ, 2);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Quoted Dir\\x", "C:\\bin\\My App.exe", POLICY_ACTION_DENY, 3);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Quoted Dir\\x", "other.exe", POLICY_ACTION_COW, 0);
    release(&c);
}

/* Every kind of error, each with file:line:column, all reported in one run. */
static void reports_every_error_with_place(void **state)
{
    const char *text = "read C:\\x\n"                           /* 1: outside a section */
                       "[file]\n"                               /* 2 */
                       "frobnicate C:\\x\n"                     /* 3: unknown action */
                       "read C:\\x\\%NOPE%\\y\n"                /* 4: unknown variable at col 11 */
                       "read %USERPROFILE\\x\n"                 /* 5: unterminated variable at col 6 */
                       "read relative\\path\n"                  /* 6: bad pattern (relative) */
                       "deny\n"                                 /* 7: missing pattern (col 5) */
                       "audit C:\\x\n"                          /* 8: audit is a flag */
                       "ask(timeout=5) C:\\x\n"                 /* 9: timeout without unit at col 13 */
                       "ask(default=ask) C:\\x\n"               /* 10 */
                       "ask(colour=red) C:\\x\n"                /* 11 */
                       "C:\\dir\\x.exe: read C:\\x\n"           /* 12: program with a folder */
                       "@nogroup: read C:\\x\n"                 /* 13: unknown group (reported at the end) */
                       "read C:\\x\\a**b\n"                     /* 14: ** inside a name */
                       "read \\\\.\\pipe\\x\n"                  /* 15: pipe in [file] */
                       "read C:\\x:stream\n"                    /* 16: stream */
                       "[files]\n"                              /* 17: unknown section */
                       "read C:\\x\n"                           /* 18: skipped */
                       "[group:g]\n"                            /* 19 */
                       "a.exe\n"                                /* 20 */
                       "[group:G]\n"                            /* 21: duplicate group (case-insensitive) */
                       "[key]\n"                                /* 22 */
                       "read HKXX\\Software\n"                  /* 23: bad key root */
                       "read HKLM\\\\Software\n"                /* 24: empty name */
                       "[file\n"                                /* 25: no closing bracket */
                       "[memory]\n"                             /* 26: note */
                       "deny capture\n"                         /* 27: fine */
                       "[file]\n"
                       "read C:\\**\\..\\x\n"                   /* 29: .. after a wildcard */
                       "read \"C:\\x\n";                        /* 30: unterminated quote */
    load_fails(text, "box.ini:1:1: error: a rule outside a section");
    static const char *const expected[] = {
        "box.ini:3:1: error: unknown action 'frobnicate'",
        "box.ini:4:11: error: unknown variable %NOPE%",
        "box.ini:5:6: error: unterminated variable",
        "box.ini:6:6: error: bad file pattern",
        "box.ini:7:5: error: a pattern is missing after 'deny'",
        "box.ini:8:1: error: 'audit' is a flag, not an action",
        "box.ini:9:13: error: bad timeout '5'",
        "box.ini:10:13: error: bad default 'ask'",
        "box.ini:11:5: error: unknown ask parameter 'colour'",
        "box.ini:12:1: error: a program is named by its file name",
        "box.ini:13:1: error: unknown group '@nogroup'",
        "box.ini:14:6: error: '**' must be a whole name",
        "box.ini:15:6: error: a named pipe or mailslot is an object",
        "box.ini:16:6: error: names a stream",
        "box.ini:17:2: error: unknown section [files]",
        "box.ini:21:8: error: duplicate group 'G' (first defined at box.ini:19)",
        "box.ini:23:6: error: a key starts with HKLM",
        "box.ini:24:6: error: empty name",
        "box.ini:25:1: error: section header without a closing ']'",
        "box.ini:26:1: note: [memory] rules are checked and compiled, but not enforced yet",
        "box.ini:29:6: error: '..' after a wildcard",
        "box.ini:30:6: error: unterminated quote",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr(diags, expected[i]))
            fail_msg("expected '%s' in:\n%s", expected[i], diags);
    assert_int_equal(diag_errors, 22);
    assert_null(strstr(diags, "box.ini:18:"));
    assert_null(strstr(diags, "box.ini:27:"));
}

static void columns_count_characters_and_limit_stops(void **state)
{
    /* "é" is two bytes, one column. */
    load_fails("[file]\n\xC3\xA9 C:\\x\n", "box.ini:2:1: error: unknown action");
    load_fails("[file]\nread C:\\\xC3\xA9\\%X%\n", "box.ini:2:11: error: unknown variable %X%");
    load_fails("[file]\nread C:\\x\xFF\n", "box.ini:2:10: error: invalid UTF-8");
    load_fails("\xFF\xFE[\0f\0", "box.ini:1:1: error: the file is UTF-16");

    char text[4096] = "[file]\n";
    for (int i = 0; i < 80; i++)
        strcat(text, "bogus C:\\x\n");
    policy_env env = test_env();
    env.max_errors = 10;
    reset_diags();
    policy *p;
    fvm_error err;
    assert_int_equal(policy_load_text("box.ini", text, strlen(text), &env, &p, &err), FVM_E_PARSE);
    assert_int_equal(diag_errors, 10);
    assert_non_null(strstr(diags, "box.ini:11:1: note: too many errors; stopping here"));
    assert_non_null(strstr(err.message, "10 errors in box.ini"));
}

static void diag_format(void **state)
{
    char out[128];
    policy_diag d = {POLICY_DIAG_WARNING, "a.ini", 3, 7, "watch out"};
    policy_diag_format(&d, out, sizeof out);
    assert_string_equal(out, "a.ini:3:7: warning: watch out");
    d.line = 0;
    d.severity = POLICY_DIAG_ERROR;
    policy_diag_format(&d, out, sizeof out);
    assert_string_equal(out, "a.ini: error: watch out");
}

/* ---- variables, includes, templates, groups ------------------------------------------ */

static void variables(void **state)
{
    expect_pattern("file", "%USERPROFILE%\\Documents\\**", "\\??\\C:\\Users\\me\\Documents\\**");
    expect_pattern("file", "%userprofile%\\x", "\\??\\C:\\Users\\me\\x");
    expect_pattern("file", "%ProgramFiles(x86)%\\App\\*", "\\??\\C:\\Program Files (x86)\\App\\*");
    expect_pattern("object", "Global\\100%%", "\\BaseNamedObjects\\100%");
    compiled c;
    compile_text("[vars]\n"
                 "DATA = D:\\Shared Data\n"
                 "REPORTS = %DATA%\\Reports\n"
                 "[file]\n"
                 "deny %REPORTS%\\**\n",
                 &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\D:\\Shared Data\\Reports\\q1.xlsx", NULL, POLICY_ACTION_DENY, 5);
    release(&c);
    load_fails("[vars]\nUSERPROFILE = x\n", "box.ini:2:1: error: %USERPROFILE% is supplied by the system");
    load_fails("[vars]\nA = 1\nA = 2\n", "box.ini:3:1: error: variable %A% is already defined at box.ini:2");
    load_fails("[vars]\nno equals sign\n", "box.ini:2:1: error: expected NAME = value");
    load_fails("[vars]\nA = %B%\n", "box.ini:2:5: error: unknown variable %B%");
}

static void includes_and_templates(void **state)
{
    set_files(3, "common.ini", "[file]\nhide C:\\Secret\\**\n[group:office]\nwinword.exe\n",
              "templates/untrusted.ini", "[file]\ndeny C:\\Untrusted\\**\ninclude common.ini\n",
              "default.ini", "[key]\nread HKLM\\Software\\**\n");
    compiled c;
    compile_text("[file]\n"
                 "read C:\\Secret\\**\n"          /* line 2: same rank as common.ini's, but earlier: loses */
                 "include common.ini\n"           /* line 3 */
                 "template untrusted\n"           /* includes common.ini again: read once */
                 "template default\n"
                 "open C:\\Untrusted\\**\n"       /* after the include: still [file] */
                 "@office: open C:\\Secret\\**\n",
                 &c);
    expect_in(&c, POLICY_TYPE_FILE, "\\??\\C:\\Secret\\a", NULL, POLICY_ACTION_HIDE, "common.ini", 2);
    expect_in(&c, POLICY_TYPE_FILE, "\\??\\C:\\Untrusted\\a", NULL, POLICY_ACTION_DENY, "templates/untrusted.ini", 2);
    expect_in(&c, POLICY_TYPE_KEY, "\\REGISTRY\\MACHINE\\SOFTWARE\\X", NULL, POLICY_ACTION_READ, "default.ini", 2);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Secret\\a", "WinWord.exe", POLICY_ACTION_OPEN, 7);
    release(&c);

    set_files(2, "a.ini", "[file]\ninclude b.ini\n", "b.ini", "\n\ninclude a.ini\n");
    load_fails("include a.ini\n", "b.ini:3:9: error: include cycle: a.ini -> b.ini -> a.ini");
    set_files(1, "self.ini", "include self.ini\n");
    load_fails("include self.ini\n", "self.ini:1:9: error: include cycle");
    load_fails("include missing.ini\n", "box.ini:1:9: error: cannot include 'missing.ini': no such file");
    load_fails("template nosuch\n", "box.ini:1:10: error: cannot template 'nosuch'");
    load_fails("include\n", "box.ini:1:8: error: include needs a name");

    /* A missing file deep in a chain is reported where it is included. */
    static char names[8][24], texts[8][40];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "d%d.ini", i);
        snprintf(texts[i], sizeof texts[i], "include d%d.ini\n", i + 1);
        memory_files[i].name = names[i];
        memory_files[i].text = texts[i];
    }
    memory.count = 8;
    load_fails("include d0.ini\n", "d7.ini:1:9: error: cannot include 'd8.ini': no such file 'd8.ini'");
    memory.count = 0;
}

static fvm_status endless_reader(void *ctx, policy_include_kind kind, const char *name, const char *from,
                                 char **text, size_t *len, char resolved[POLICY_NAME_MAX], fvm_error *err)
{
    int *counter = ctx;
    const char *body = "include next\n";
    *text = malloc(strlen(body) + 1);
    strcpy(*text, body);
    *len = strlen(body);
    snprintf(resolved, POLICY_NAME_MAX, "level%d.ini", ++*counter);
    return FVM_OK;
}

static void include_depth_is_limited(void **state)
{
    policy_env env = test_env();
    int counter = 0;
    env.read = endless_reader;
    env.read_ctx = &counter;
    reset_diags();
    policy *p;
    fvm_error err;
    assert_int_equal(policy_load_text("box.ini", "include next\n", 13, &env, &p, &err), FVM_E_PARSE);
    assert_non_null(strstr(diags, "level15.ini:1:9: error: include depth: more than 16 nested includes"));
    assert_int_equal(counter, 15);
}

static void load_file_uses_reader(void **state)
{
    set_files(1, "p.ini", "[file]\nread C:\\x\n");
    policy_env env = test_env();
    policy *p;
    fvm_error err;
    reset_diags();
    assert_int_equal(policy_load_file("p.ini", &env, &p, &err), FVM_OK);
    assert_string_equal(policy_rule_at(p, 0)->file, "p.ini");
    policy_free(p);
    assert_int_equal(policy_load_file("nope.ini", &env, &p, &err), FVM_E_NOTFOUND);
    assert_non_null(strstr(err.message, "nope.ini"));
    env.read = NULL;
    assert_int_equal(policy_load_file("p.ini", &env, &p, &err), FVM_E_INVALID);
}

static void groups(void **state)
{
    compiled c;
    compile_text("[file]\n"
                 "@browsers: open %USERPROFILE%\\Downloads\\**\n" /* used before defined */
                 "deny %USERPROFILE%\\Downloads\\**\n"
                 "[group:browsers]\n"
                 "firefox.exe\n"
                 "\"Google Chrome.exe\"\n"
                 "FIREFOX.EXE\n" /* warning: listed twice */
                 "[group:empty]\n",
                 &c);
    assert_non_null(strstr(diags, "box.ini:7:1: warning: 'FIREFOX.EXE' is already in group 'browsers'"));
    assert_non_null(strstr(diags, "box.ini:8:1: warning: group 'empty' has no programs"));
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\me\\Downloads\\a.zip", "firefox.exe", POLICY_ACTION_OPEN, 2);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\me\\Downloads\\a.zip", "C:\\Apps\\google chrome.EXE",
           POLICY_ACTION_OPEN, 2);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\me\\Downloads\\a.zip", "notepad.exe", POLICY_ACTION_DENY, 3);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\me\\Downloads\\a.zip", NULL, POLICY_ACTION_DENY, 3);
    release(&c);
    load_fails("[group:bad name]\n", "box.ini:1:8: error: bad group name");
    load_fails("[group:g]\nx\\y.exe\n", "box.ini:2:1: error: a program is named by its file name");
}

/* ---- canonical patterns ------------------------------------------------------------------ */

static void file_patterns_every_form(void **state)
{
    expect_pattern("file", "C:\\Data\\*.docx", "\\??\\C:\\Data\\*.docx");
    expect_pattern("file", "c:/data/x", "\\??\\C:\\data\\x");
    expect_pattern("file", "\\\\?\\C:\\Data\\x", "\\??\\C:\\Data\\x");
    expect_pattern("file", "\\??\\C:\\Data\\x", "\\??\\C:\\Data\\x");
    expect_pattern("file", "\\\\.\\C:\\Data\\x", "\\??\\C:\\Data\\x");
    expect_pattern("file", "\\DosDevices\\C:\\Data\\x", "\\??\\C:\\Data\\x");
    expect_pattern("file", "\\Device\\HarddiskVolume2\\Data\\**", "\\??\\D:\\Data\\**");
    expect_pattern("file", "\\\\server\\share\\x\\**", "\\??\\UNC\\server\\share\\x\\**");
    expect_pattern("file", "\\\\localhost\\C$\\Data\\x", "\\??\\C:\\Data\\x");
    expect_pattern("file", "\\\\MYPC\\d$\\x", "\\??\\D:\\x");
    expect_pattern("file", "C:\\Data\\.\\sub\\..\\x", "\\??\\C:\\Data\\x");
    expect_pattern("file", "C:\\Data\\x. ", "\\??\\C:\\Data\\x");
    expect_pattern("file", "C:\\Data\\", "\\??\\C:\\Data");
    expect_pattern("file", "C:\\", "\\??\\C:\\");
    expect_pattern("file", "C:\\**\\**\\x", "\\??\\C:\\**\\x");
    expect_pattern("file", "\\SystemRoot\\System32\\**", "\\??\\C:\\Windows\\System32\\**");
    expect_pattern("file", "**", "**");
    expect_pattern("file", "**\\*.tmp", "**\\*.tmp");
    expect_pattern("file", "*:\\Secret\\**", "\\??\\*:\\Secret\\**");
    expect_pattern("file", "?:\\x", "\\??\\?:\\x");
    expect_pattern("file", "\\\\.\\PhysicalDrive0", "\\??\\PhysicalDrive0");
    expect_pattern("file", "C:\\x\\NUL.txt", "\\??\\NUL");
    load_fails("[file]\nread C:relative\n", "box.ini:2:6: error: a drive-relative path");
    load_fails("[file]\nread relative\n", "box.ini:2:6: error: bad file pattern");
    load_fails("[file]\nread \\BaseNamedObjects\\x\n", "box.ini:2:6: error: bad file pattern");
    load_fails("[file]\nread \\\\.\\mailslot\\x\n", "is an object");
    load_fails("[file]\nread **\\NUL\n", "after '**' comes a device");

    /* A short name is allowed, with a warning. */
    policy *p = load_ok("[file]\nread C:\\PROGRA~1\\x\n");
    assert_non_null(strstr(diags, "box.ini:2:6: warning: a name looks like a short 8.3 alias"));
    policy_free(p);
}

static void key_patterns(void **state)
{
    expect_pattern("key", "HKLM\\Software\\X", "\\REGISTRY\\MACHINE\\Software\\X");
    expect_pattern("key", "HKEY_LOCAL_MACHINE\\Software\\X\\", "\\REGISTRY\\MACHINE\\Software\\X");
    expect_pattern("key", "hklm", "\\REGISTRY\\MACHINE");
    expect_pattern("key", "HKCU\\Software\\**", "\\REGISTRY\\USER\\S-1-5-21-1000\\Software\\**");
    expect_pattern("key", "HKEY_CURRENT_USER\\x", "\\REGISTRY\\USER\\S-1-5-21-1000\\x");
    expect_pattern("key", "HKU\\.DEFAULT\\x", "\\REGISTRY\\USER\\.DEFAULT\\x");
    expect_pattern("key", "HKCC\\x",
                   "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current\\x");
    expect_pattern("key", "\\Registry\\Machine\\x", "\\REGISTRY\\Machine\\x");
    expect_pattern("key", "**\\Run", "**\\Run");
    policy_env env = test_env();
    expect_pattern_env("key", "HKCR\\.txt", "\\REGISTRY\\MACHINE\\SOFTWARE\\Classes\\.txt",
                       "\\REGISTRY\\USER\\S-1-5-21-1000_Classes\\.txt", &env);
    env.user_sid = NULL;
    reset_diags();
    policy *p;
    fvm_error err;
    assert_int_equal(policy_load_text("box.ini", "[key]\nread HKCU\\x\n", 18, &env, &p, &err), FVM_E_PARSE);
    assert_non_null(strstr(diags, "box.ini:2:6: error: HKCU needs the current user's SID"));
    load_fails("[key]\nread \\Machine\\x\n", "must start with \\REGISTRY");
    load_fails("[key]\nread HKLMX\\x\n", "a key starts with HKLM");

    /* Both halves of HKCR match, from one rule. */
    compiled c;
    compile_text("[key]\ndeny HKCR\\.exe\\**\n", &c);
    expect(&c, POLICY_TYPE_KEY, "\\REGISTRY\\MACHINE\\SOFTWARE\\CLASSES\\.exe\\shell", NULL, POLICY_ACTION_DENY, 2);
    expect(&c, POLICY_TYPE_KEY, "\\REGISTRY\\USER\\S-1-5-21-1000_CLASSES\\.exe", NULL, POLICY_ACTION_DENY, 2);
    expect(&c, POLICY_TYPE_KEY, "\\REGISTRY\\USER\\S-1-5-21-1000\\.exe", NULL, POLICY_ACTION_COW, 0);
    release(&c);
}

static void object_patterns(void **state)
{
    expect_pattern("object", "Global\\MyMutex", "\\BaseNamedObjects\\MyMutex");
    expect_pattern("object", "global\\Foo*", "\\BaseNamedObjects\\Foo*");
    expect_pattern("object", "Local\\Foo", "\\Sessions\\1\\BaseNamedObjects\\Foo");
    expect_pattern("object", "Foo", "\\Sessions\\1\\BaseNamedObjects\\Foo");
    expect_pattern("object", "Session\\2\\Foo", "\\Sessions\\2\\BaseNamedObjects\\Foo");
    expect_pattern("object", "\\BaseNamedObjects\\Foo", "\\BaseNamedObjects\\Foo");
    expect_pattern("object", "\\RPC Control\\epmapper", "\\RPC Control\\epmapper");
    expect_pattern("object", "pipe:MyPipe", "\\Device\\NamedPipe\\MyPipe");
    expect_pattern("object", "pipe:\\MyPipe", "\\Device\\NamedPipe\\MyPipe");
    expect_pattern("object", "\\\\.\\pipe\\My\\Nested", "\\Device\\NamedPipe\\My\\Nested");
    expect_pattern("object", "mailslot:slot", "\\Device\\MailSlot\\slot");
    expect_pattern("object", "class:Shell_TrayWnd", "class:Shell_TrayWnd");
    expect_pattern("object", "**\\Foo", "**\\Foo");
    policy_env env = test_env();
    env.session_objects = NULL;
    expect_pattern_env("object", "Local\\Foo", "\\Sessions\\*\\BaseNamedObjects\\Foo", NULL, &env);
    load_fails("[object]\nread pipe:\n", "box.ini:2:6: error: a name is missing after '\\Device\\NamedPipe'");
    load_fails("[object]\nread class:\n", "a window class name is missing");
    load_fails("[object]\nread Session\\x\\Foo\n", "must be followed by a session number");
    load_fails("[object]\nread \\\n", "alone is not a name");

    compiled c;
    compile_text("[object]\nopen class:Shell_TrayWnd\nopen pipe:\\lsarpc\n", &c);
    expect(&c, POLICY_TYPE_OBJECT, "class:SHELL_TRAYWND", NULL, POLICY_ACTION_OPEN, 2);
    expect(&c, POLICY_TYPE_OBJECT, "\\class:Shell_TrayWnd", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_OBJECT, "\\Device\\NamedPipe\\LSARPC", NULL, POLICY_ACTION_OPEN, 3);
    release(&c);
}

static void canonical_names_for_explain(void **state)
{
    policy_env env = test_env();
    uint16_t out[512];
    size_t n;
    char got[512];
    fvm_error err;
    assert_int_equal(policy_canonical_name(POLICY_TYPE_FILE, "%USERPROFILE%\\x.txt", &env, out, 512, &n, &err), FVM_OK);
    to_ascii(out, n, got, sizeof got);
    assert_string_equal(got, "\\??\\C:\\Users\\me\\x.txt");
    assert_int_equal(policy_canonical_name(POLICY_TYPE_KEY, "HKCR\\.txt", &env, out, 512, &n, &err), FVM_OK);
    to_ascii(out, n, got, sizeof got);
    assert_string_equal(got, "\\REGISTRY\\MACHINE\\SOFTWARE\\Classes\\.txt");
    assert_int_equal(policy_canonical_name(POLICY_TYPE_OBJECT, "pipe:x", &env, out, 512, &n, &err), FVM_OK);
    assert_int_equal(policy_canonical_name(POLICY_TYPE_FILE, "C:\\x", &env, out, 5, &n, &err), FVM_E_RANGE);
    assert_int_equal(policy_canonical_name(POLICY_TYPE_FILE, "%NOPE%", &env, out, 512, &n, &err), FVM_E_NOTFOUND);
    assert_int_equal(policy_canonical_name(POLICY_TYPE_FILE, "rel", &env, out, 512, &n, &err), FVM_E_INVALID);
}

/* ---- matching ------------------------------------------------------------------------------ */

/* The names a program can use for one file all get the rule for it. */
static void every_path_form_gets_the_same_decision(void **state)
{
    compiled c;
    compile_text("[file]\ndeny C:\\Data\\Secret\\**\nread \\\\server\\share\\docs\\**\n", &c);
    static const char *const spellings[] = {
        "C:\\Data\\Secret\\a.txt",
        "c:\\data\\secret\\A.TXT",
        "C:/Data/Secret/a.txt",
        "\\\\?\\C:\\Data\\Secret\\a.txt",
        "\\??\\C:\\Data\\Secret\\a.txt",
        "\\\\.\\C:\\Data\\Secret\\a.txt",
        "\\DosDevices\\C:\\Data\\Secret\\a.txt",
        "\\GLOBAL??\\C:\\Data\\Secret\\a.txt",
        "\\Device\\HarddiskVolume1\\Data\\Secret\\a.txt",
        "\\\\localhost\\C$\\Data\\Secret\\a.txt",
        "\\\\127.0.0.1\\c$\\Data\\Secret\\a.txt",
        "\\\\MYPC\\C$\\Data\\Secret\\a.txt",
        "\\\\?\\UNC\\localhost\\C$\\Data\\Secret\\a.txt",
        "C:\\Data\\Other\\..\\Secret\\a.txt",
        "C:\\Data\\.\\Secret\\a.txt",
        "C:\\Data\\Secret.\\a.txt",
        "C:\\Data\\Secret \\a.txt",
        "C:\\Data\\Secret\\a.txt::$DATA",
        "C:\\Data\\Secret\\a.txt:stream",
        "..\\..\\Data\\Secret\\a.txt",
        "\\Data\\Secret\\a.txt",
        "C:\\Data\\Secret",
    };
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        policy_decision d = decide_spelling(&c, spellings[i], NULL);
        if (d.action != POLICY_ACTION_DENY || d.line != 2)
            fail_msg("'%s': %s, expected deny by line 2", spellings[i], policy_action_name(d.action));
    }
    static const char *const unc[] = {"\\\\server\\share\\docs\\x", "\\\\SERVER\\Share\\Docs\\x",
                                      "\\\\?\\UNC\\server\\share\\docs\\x", "\\??\\UNC\\server\\share\\docs\\x",
                                      "\\Device\\Mup\\server\\share\\docs\\x"};
    for (size_t i = 0; i < sizeof unc / sizeof unc[0]; i++) {
        policy_decision d = decide_spelling(&c, unc[i], NULL);
        if (d.action != POLICY_ACTION_READ)
            fail_msg("'%s': %s, expected read", unc[i], policy_action_name(d.action));
    }
    static const char *const outside[] = {"C:\\Data\\Secret2\\a.txt", "C:\\Data\\Secre", "D:\\Data\\Secret\\a",
                                          "\\\\server\\share\\docs2\\x"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        policy_decision d = decide_spelling(&c, outside[i], NULL);
        if (!d.is_default)
            fail_msg("'%s': decided by line %u, expected the default", outside[i], d.line);
    }
    release(&c);
}

static void wildcards(void **state)
{
    compiled c;
    compile_text("[file]\n"
                 "deny C:\\Data\\*.docx\n"        /* 2 */
                 "hide C:\\Data\\report-??.pdf\n" /* 3 */
                 "read C:\\Src\\**\\*.c\n"        /* 4 */
                 "open C:\\Users\\*\\Pub\\**\n"   /* 5 */
                 "deny **\\*.kdbx\n"              /* 6 */
                 "read *:\\Shared\\**\n"          /* 7 */
                 "hide C:\\A*B*C\n",              /* 8 */
                 &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\a.docx", NULL, POLICY_ACTION_DENY, 2);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\.docx", NULL, POLICY_ACTION_DENY, 2);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\a.docx.bak", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\sub\\a.docx", NULL, POLICY_ACTION_COW, 0); /* '*' stays in a name */
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\report-07.pdf", NULL, POLICY_ACTION_HIDE, 3);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\report-7.pdf", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\report-123.pdf", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Src\\main.c", NULL, POLICY_ACTION_READ, 4); /* '**' = zero names */
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Src\\a\\b\\c\\x.C", NULL, POLICY_ACTION_READ, 4);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Src\\a\\b\\c\\x.h", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\bob\\Pub", NULL, POLICY_ACTION_OPEN, 5);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\bob\\Pub\\x\\y", NULL, POLICY_ACTION_OPEN, 5);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\bob\\x\\Pub", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_FILE, "\\??\\D:\\deep\\down\\pw.KDBX", NULL, POLICY_ACTION_DENY, 6);
    expect(&c, POLICY_TYPE_FILE, "\\??\\UNC\\srv\\sh\\pw.kdbx", NULL, POLICY_ACTION_DENY, 6);
    expect(&c, POLICY_TYPE_FILE, "\\??\\Z:\\Shared\\x", NULL, POLICY_ACTION_READ, 7);
    expect(&c, POLICY_TYPE_FILE, "\\??\\UNC\\Shared\\x", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\AxxBxxC", NULL, POLICY_ACTION_HIDE, 8);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\ABCBC", NULL, POLICY_ACTION_HIDE, 8);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\ABCB", NULL, POLICY_ACTION_COW, 0);
    release(&c);
}

static void case_insensitive_beyond_ascii(void **state)
{
    compiled c;
    compile_text("[file]\ndeny C:\\Donn\xC3\xA9\x65s\\\xC3\xA9t\xC3\xA9*\\**\n" /* Données\été* */
                 "[key]\nread HKLM\\SOFTWARE\\\xD0\x9A\xD0\xBB\xD1\x8E\xD1\x87\n", /* Ключ */
                 &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\c:\\DONN\xC3\x89\x45S\\\xC3\x89T\xC3\x89 2024\\x", NULL, POLICY_ACTION_DENY, 2);
    expect(&c, POLICY_TYPE_KEY, "\\registry\\machine\\software\\\xD0\xBA\xD0\x9B\xD0\xAE\xD0\xA7", NULL,
           POLICY_ACTION_READ, 4);
    release(&c);
}

static void defaults_per_type(void **state)
{
    compiled c;
    compile_text("[file]\nread C:\\x\n", &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\y", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_KEY, "\\REGISTRY\\MACHINE\\X", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_OBJECT, "\\BaseNamedObjects\\X", NULL, POLICY_ACTION_COW, 0);
    expect(&c, POLICY_TYPE_NET, "tcp:example.com:80", NULL, POLICY_ACTION_OPEN, 0);
    policy_decision d = decide(&c, POLICY_TYPE_FILE, "\\??\\C:\\y", NULL);
    char label[32];
    policy_decision_label(&d, label, sizeof label);
    assert_string_equal(label, "default");
    assert_int_equal(d.rule, POLICY_NO_RULE);
    assert_false(d.audit);
    d = decide(&c, POLICY_TYPE_FILE, "\\??\\C:\\X", NULL);
    policy_decision_label(&d, label, sizeof label);
    assert_string_equal(label, "box.ini:2");
    uint16_t name[] = {'x'};
    assert_int_equal(policy_match(&c.view, POLICY_TYPE_COUNT, name, 1, NULL, 0, &d), FVM_E_INVALID);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_int_equal(policy_match(&c.view, POLICY_TYPE_FILE, name, 0, NULL, 0, &d), FVM_E_INVALID);
    release(&c);

    /* No policy at all: the defaults. */
    compile_policy(NULL, &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\y", NULL, POLICY_ACTION_COW, 0);
    release(&c);
}

static void reserved_types_compile_and_match(void **state)
{
    compiled c;
    compile_text("[net]\ndeny tcp:*.example.com:443\nopen tcp:*:*\n"
                 "[process]\ndeny **\\powershell.exe\n"
                 "[memory]\ndeny capture\n",
                 &c);
    assert_int_equal(diag_notes, 1);   /* [process] and [net] are enforced now (test_policy_process.c, test_netrules.c) */
    expect(&c, POLICY_TYPE_NET, "tcp:www.example.com:443", NULL, POLICY_ACTION_DENY, 2);
    expect(&c, POLICY_TYPE_NET, "tcp:www.example.org:443", NULL, POLICY_ACTION_OPEN, 3);
    expect(&c, POLICY_TYPE_PROCESS, "\\??\\C:\\Windows\\System32\\PowerShell.exe", NULL, POLICY_ACTION_DENY, 5);
    expect(&c, POLICY_TYPE_MEMORY, "capture", NULL, POLICY_ACTION_DENY, 7);
    expect(&c, POLICY_TYPE_PRINT, "anything", NULL, POLICY_ACTION_OPEN, 0);
    release(&c);
}

/* [screen] and [desktop] are enforced (runtime/screen.c, runtime/clipboard.c):
 * no note, closed by default, opened per program. */
static void screen_and_desktop_are_closed_by_default(void **state)
{
    compiled c;
    assert_true(policy_type_enforced(POLICY_TYPE_SCREEN));
    assert_true(policy_type_enforced(POLICY_TYPE_DESKTOP));
    assert_int_equal(policy_type_default_action(POLICY_TYPE_SCREEN), POLICY_ACTION_DENY);
    assert_int_equal(policy_type_default_action(POLICY_TYPE_DESKTOP), POLICY_ACTION_DENY);
    compile_text("[screen]\nrecorder.exe: open capture\n"
                 "[desktop]\nopen clipboard-in\neditor.exe: open clipboard-out\n",
                 &c);
    assert_int_equal(diag_notes, 0);
    expect(&c, POLICY_TYPE_SCREEN, "capture", NULL, POLICY_ACTION_DENY, 0);
    expect(&c, POLICY_TYPE_SCREEN, "capture", "recorder.exe", POLICY_ACTION_OPEN, 2);
    expect(&c, POLICY_TYPE_DESKTOP, "clipboard-in", NULL, POLICY_ACTION_OPEN, 4);
    expect(&c, POLICY_TYPE_DESKTOP, "clipboard-out", NULL, POLICY_ACTION_DENY, 0);
    expect(&c, POLICY_TYPE_DESKTOP, "clipboard-out", "editor.exe", POLICY_ACTION_OPEN, 5);
    release(&c);
    compile_policy(NULL, &c);
    expect(&c, POLICY_TYPE_SCREEN, "capture", NULL, POLICY_ACTION_DENY, 0);
    expect(&c, POLICY_TYPE_DESKTOP, "clipboard-in", NULL, POLICY_ACTION_DENY, 0);
    release(&c);
    load_fails("[data]\nread \\\\\n", "box.ini:2:6: error: no name left in the pattern"); /* found by fuzzing */
    load_fails("[data]\nread a\\\\b\n", "box.ini:2:6: error: empty name");
}

/* ---- precedence, each step in both orders ----------------------------------------------------- */

/* Two rules that differ in one step; the winner must win in either order. */
static void expect_winner(const char *section, const char *winner, const char *loser, policy_type type,
                          const char *name, const char *program, policy_action action, policy_tiebreak step)
{
    for (int order = 0; order < 2; order++) {
        char text[1024];
        snprintf(text, sizeof text, "[group:g]\nwinword.exe\n[%s]\n%s\n%s\n", section, order ? loser : winner,
                 order ? winner : loser);
        compiled c;
        compile_text(text, &c);
        policy_decision d = decide(&c, type, name, program);
        uint32_t winner_line = order ? 5 : 4;
        if (d.action != action || d.line != winner_line)
            fail_msg("'%s' should beat '%s' for %s (order %d): got %s by line %u", winner, loser, name, order,
                     policy_action_name(d.action), d.line);
        /* The explanation names the step. */
        uint16_t n[512], p[64];
        size_t nl = to_units(name, n, 512), pl = program ? to_units(program, p, 64) : 0;
        char explanation[4096], wanted[64];
        fvm_error err;
        assert_int_equal(policy_explain(&c.view, type, n, nl, program ? p : NULL, pl, explanation,
                                        sizeof explanation, &err),
                         FVM_OK);
        snprintf(wanted, sizeof wanted, "lost at step %d, %s", (int)step, policy_tiebreak_text(step));
        if (!strstr(explanation, wanted))
            fail_msg("explanation lacks '%s':\n%s", wanted, explanation);
        release(&c);
    }
}

static void precedence_step1_scope(void **state)
{
    expect_winner("file", "winword.exe: open C:\\Data\\**", "deny C:\\Data\\Secret\\*.docx", POLICY_TYPE_FILE,
                  "\\??\\C:\\Data\\Secret\\a.docx", "WINWORD.EXE", POLICY_ACTION_OPEN, POLICY_TIE_SCOPE);
    expect_winner("file", "@g: read C:\\Data\\**", "deny C:\\Data\\Secret\\**", POLICY_TYPE_FILE,
                  "\\??\\C:\\Data\\Secret\\a.docx", "winword.exe", POLICY_ACTION_READ, POLICY_TIE_SCOPE);
    expect_winner("file", "winword.exe: open C:\\**", "@g: deny C:\\Data\\Secret\\**", POLICY_TYPE_FILE,
                  "\\??\\C:\\Data\\Secret\\a.docx", "winword.exe", POLICY_ACTION_OPEN, POLICY_TIE_SCOPE);
}

static void precedence_step2_literals(void **state)
{
    expect_winner("file", "open C:\\Data\\Sub\\**", "deny C:\\Data\\**", POLICY_TYPE_FILE, "\\??\\C:\\Data\\Sub\\x",
                  NULL, POLICY_ACTION_OPEN, POLICY_TIE_LITERALS);
    expect_winner("file", "open C:\\Data\\*.docx", "deny C:\\Data\\**", POLICY_TYPE_FILE, "\\??\\C:\\Data\\x.docx",
                  NULL, POLICY_ACTION_OPEN, POLICY_TIE_LITERALS);
    expect_winner("key", "open HKLM\\Software\\Vendor\\App", "deny HKLM\\Software\\**", POLICY_TYPE_KEY,
                  "\\REGISTRY\\MACHINE\\Software\\Vendor\\App", NULL, POLICY_ACTION_OPEN, POLICY_TIE_LITERALS);
}

static void precedence_step3_globstars(void **state)
{
    expect_winner("file", "open C:\\**\\Data\\x", "deny C:\\**\\Data\\**\\x", POLICY_TYPE_FILE,
                  "\\??\\C:\\Data\\x", NULL, POLICY_ACTION_OPEN, POLICY_TIE_GLOBSTARS);
}

static void precedence_step4_stars(void **state)
{
    expect_winner("file", "open C:\\Data\\a*b", "deny C:\\Data\\a*b*", POLICY_TYPE_FILE, "\\??\\C:\\Data\\ab", NULL,
                  POLICY_ACTION_OPEN, POLICY_TIE_STARS);
}

static void precedence_step5_qmarks(void **state)
{
    expect_winner("file", "open C:\\Data\\*b", "deny C:\\Data\\*?b", POLICY_TYPE_FILE, "\\??\\C:\\Data\\xb", NULL,
                  POLICY_ACTION_OPEN, POLICY_TIE_QMARKS);
}

static void precedence_step6_action(void **state)
{
    static const char *const words[] = {"deny", "hide", "ask", "read", "cow", "open"};
    static const policy_action actions[] = {POLICY_ACTION_DENY, POLICY_ACTION_HIDE, POLICY_ACTION_ASK,
                                            POLICY_ACTION_READ, POLICY_ACTION_COW,  POLICY_ACTION_OPEN};
    for (int a = 0; a < 6; a++) {
        for (int b = a + 1; b < 6; b++) {
            char winner[64], loser[64];
            snprintf(winner, sizeof winner, "%s C:\\Data\\x", words[a]);
            snprintf(loser, sizeof loser, "%s C:\\Data\\x", words[b]);
            expect_winner("file", winner, loser, POLICY_TYPE_FILE, "\\??\\C:\\Data\\x", NULL, actions[a],
                          POLICY_TIE_ACTION);
        }
    }
}

static void precedence_step7_later_line(void **state)
{
    compiled c;
    compile_text("[file]\ndeny C:\\x\ndeny audit C:\\x\n", &c);
    policy_decision d = decide(&c, POLICY_TYPE_FILE, "\\??\\C:\\x", NULL);
    assert_int_equal(d.line, 3);
    assert_true(d.audit);
    release(&c);
    compile_text("[file]\ndeny audit C:\\x\ndeny C:\\x\n", &c);
    d = decide(&c, POLICY_TYPE_FILE, "\\??\\C:\\x", NULL);
    assert_int_equal(d.line, 3);
    assert_false(d.audit);
    release(&c);
    /* The included rule sits where the include line is. */
    set_files(1, "inc.ini", "[file]\ndeny audit C:\\x\n");
    compile_text("[file]\ndeny C:\\x\ninclude inc.ini\n", &c);
    expect_in(&c, POLICY_TYPE_FILE, "\\??\\C:\\x", NULL, POLICY_ACTION_DENY, "inc.ini", 2);
    release(&c);
    compile_text("include inc.ini\n[file]\ndeny C:\\x\n", &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\x", NULL, POLICY_ACTION_DENY, 3);
    release(&c);
}

/* The examples table of docs/policy.md, so the documentation stays true. */
static void documented_precedence_examples(void **state)
{
    static const struct {
        const char *first, *second, *program;
        policy_action action;
        uint32_t line;
    } rows[] = {
        {"winword.exe: open C:\\Data\\**", "deny C:\\Data\\Secret\\*.docx", "winword.exe", POLICY_ACTION_OPEN, 2},
        {"read C:\\Data\\**", "deny C:\\Data\\Secret\\**", NULL, POLICY_ACTION_DENY, 3},
        {"open C:\\**\\Secret\\a.docx", "deny C:\\**\\Secret\\**\\a.docx", NULL, POLICY_ACTION_OPEN, 2},
        {"read C:\\Data\\Secret\\a*x", "deny C:\\Data\\Secret\\a*x*", NULL, POLICY_ACTION_READ, 2},
        {"read C:\\Data\\Secret\\*docx", "deny C:\\Data\\Secret\\*?docx", NULL, POLICY_ACTION_READ, 2},
        {"open C:\\Data\\Secret\\a.docx", "deny C:\\Data\\Secret\\a.docx", NULL, POLICY_ACTION_DENY, 3},
        {"deny C:\\Data\\**", "deny audit C:\\Data\\**", NULL, POLICY_ACTION_DENY, 3},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "[file]\n%s\n%s\n", rows[i].first, rows[i].second);
        compiled c;
        compile_text(text, &c);
        expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\Secret\\a.docx", rows[i].program, rows[i].action,
               rows[i].line);
        release(&c);
    }
    policy *p = load_ok("[file]\nread C:\\Data\\*.docx\nread C:\\Data\\**\n");
    assert_int_equal(policy_rule_at(p, 0)->patterns[0].literal_chars, 13);
    assert_int_equal(policy_rule_at(p, 1)->patterns[0].literal_chars, 8);
    policy_free(p);
}

static void rank_compare_is_a_total_order(void **state)
{
    policy_rank a = {POLICY_SCOPE_ALL, 10, 1, 1, 1, POLICY_ACTION_COW, 5}, b = a;
    policy_tiebreak tie;
    assert_int_equal(policy_rank_compare(&a, &b, &tie), 0);
    assert_int_equal(tie, POLICY_TIE_NONE);
    b.order = 6;
    assert_true(policy_rank_compare(&b, &a, &tie) > 0);
    assert_int_equal(tie, POLICY_TIE_ORDER);
    assert_true(policy_rank_compare(&a, &b, NULL) < 0);
    b = a;
    b.scope = POLICY_SCOPE_GROUP;
    b.literal_chars = 0;
    assert_true(policy_rank_compare(&b, &a, &tie) > 0);
    assert_int_equal(tie, POLICY_TIE_SCOPE);
}

/* ---- the matcher against a reference ------------------------------------------------------------ */

/* The obvious matcher: recursion over components, every rule tried. */
typedef struct span16 {
    const uint16_t *u;
    size_t n;
} span16;

static size_t split16(const uint16_t *u, size_t n, span16 *out, size_t cap)
{
    size_t count = 0;
    for (size_t start = 0; count < cap;) {
        size_t end = start;
        while (end < n && u[end] != '\\')
            end++;
        out[count].u = u + start;
        out[count++].n = end - start;
        if (end == n)
            break;
        start = end + 1;
    }
    return count;
}

static uint16_t up(uint16_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint16_t)(c - 32) : c;
}

static int ref_glob(const uint16_t *p, size_t pn, const uint16_t *s, size_t sn)
{
    if (pn == 0)
        return sn == 0;
    if (p[0] == '*')
        return ref_glob(p + 1, pn - 1, s, sn) || (sn > 0 && ref_glob(p, pn, s + 1, sn - 1));
    return sn > 0 && (p[0] == '?' || up(p[0]) == up(s[0])) && ref_glob(p + 1, pn - 1, s + 1, sn - 1);
}

static int ref_match(const span16 *p, size_t np, const span16 *s, size_t ns)
{
    if (np == 0)
        return ns == 0;
    policy_component_kind kind = policy_component_classify(p[0].u, p[0].n);
    if (kind == POLICY_COMPONENT_GLOBSTAR)
        return ref_match(p + 1, np - 1, s, ns) || (ns > 0 && ref_match(p, np, s + 1, ns - 1));
    if (ns == 0)
        return 0;
    int first;
    if (kind == POLICY_COMPONENT_LITERAL) {
        first = p[0].n == s[0].n;
        for (size_t i = 0; first && i < p[0].n; i++)
            first = up(p[0].u[i]) == up(s[0].u[i]);
    } else {
        first = ref_glob(p[0].u, p[0].n, s[0].u, s[0].n);
    }
    return first && ref_match(p + 1, np - 1, s + 1, ns - 1);
}

static void random_policies_match_the_reference(void **state)
{
    static const char *const pattern_parts[] = {"a", "b", "ab", "*", "a*", "?", "??", "**", "*b", "a?", "A"};
    static const char *const name_parts[] = {"a", "b", "ab", "ba", "aab", "??", "x", "AB"};
    static const char *const actions[] = {"open", "cow", "read", "hide", "deny", "ask"};
    static const char *const scopes[] = {"", "", "", "p1.exe: ", "@g: "};
    static const char *const programs[] = {NULL, "p1.exe", "p2.exe", "C:\\bin\\P1.EXE"};
    srand(1234);
    char text[8192];
    int hits = 0, queries = 0;
    for (int round = 0; round < 1000; round++) {
        size_t len = (size_t)snprintf(text, sizeof text, "[group:g]\np2.exe\n[data]\n");
        int rules = 1 + rand() % 25;
        for (int r = 0; r < rules; r++) {
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s ", scopes[rand() % 5], actions[rand() % 6]);
            int parts = 1 + rand() % 4;
            for (int k = 0; k < parts; k++)
                len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", k ? "\\" : "",
                                        pattern_parts[rand() % 11]);
            len += (size_t)snprintf(text + len, sizeof text - len, "\n");
        }
        compiled c;
        compile_text(text, &c);
        for (int q = 0; q < 60; q++) {
            char name[128];
            size_t n = 0;
            int parts = 1 + rand() % 5;
            for (int k = 0; k < parts; k++)
                n += (size_t)snprintf(name + n, sizeof name - n, "%s%s", k ? "\\" : "", name_parts[rand() % 8]);
            const char *program = programs[rand() % 4];
            uint16_t u[128];
            size_t un = to_units(name, u, 128);
            span16 name_parts16[16];
            size_t nn = split16(u, un, name_parts16, 16);
            /* The reference winner. */
            const policy_rule *best = NULL;
            policy_rank best_rank;
            for (size_t i = 0; i < policy_rule_count(c.p); i++) {
                const policy_rule *r = policy_rule_at(c.p, i);
                span16 pp[POLICY_MAX_COMPONENTS];
                size_t np = split16(r->patterns[0].units, r->patterns[0].len, pp, POLICY_MAX_COMPONENTS);
                int applies = r->scope == POLICY_SCOPE_ALL ||
                              (program && r->scope == POLICY_SCOPE_PROGRAM && strstr(program, "1")) ||
                              (program && r->scope == POLICY_SCOPE_GROUP && strstr(program, "2"));
                if (!applies || !ref_match(pp, np, name_parts16, nn))
                    continue;
                policy_rank rank = {r->scope, r->patterns[0].literal_chars, r->patterns[0].globstars,
                                    r->patterns[0].stars, r->patterns[0].qmarks, r->action, r->order};
                if (!best || policy_rank_compare(&rank, &best_rank, NULL) > 0) {
                    best = r;
                    best_rank = rank;
                }
            }
            policy_decision d = decide(&c, POLICY_TYPE_DATA, name, program);
            hits += best != NULL;
            queries++;
            if (best ? (d.is_default || d.line != best->line) : !d.is_default)
                fail_msg("policy:\n%s\nname '%s' program %s: matcher says line %u, reference line %u", text, name,
                         program ? program : "-", d.is_default ? 0 : d.line, best ? best->line : 0);
        }
        release(&c);
    }
    /* The names are drawn so that a good share is decided by some rule. */
    assert_true(hits > queries / 4 && hits < queries);
}

/* ---- explain -------------------------------------------------------------------------------------- */

static void explain_lists_winner_losers_and_others(void **state)
{
    compiled c;
    compile_text("[group:office]\nwinword.exe\n"
                 "[file]\n"
                 "read %USERPROFILE%\\**\n"                      /* 4 */
                 "deny audit %USERPROFILE%\\Documents\\*.docx\n" /* 5 */
                 "excel.exe: open %USERPROFILE%\\**\n"           /* 6 */
                 "ask(timeout=3s, default=hide) C:\\Ask\\*\n",   /* 7 */
                 &c);
    uint16_t n[256], p[64];
    size_t nl = to_units("\\??\\C:\\Users\\me\\Documents\\a.docx", n, 256), pl = to_units("notepad.exe", p, 64);
    char out[4096];
    fvm_error err;
    assert_int_equal(policy_explain(&c.view, POLICY_TYPE_FILE, n, nl, p, pl, out, sizeof out, &err), FVM_OK);
    static const char *const expected[] = {
        "file \\??\\C:\\Users\\me\\Documents\\a.docx\n",
        "program: notepad.exe\n",
        "decision: deny, audited\n",
        "  by box.ini:5:1  deny audit %USERPROFILE%\\Documents\\*.docx\n",
        "      pattern \\??\\C:\\Users\\me\\Documents\\*.docx\n",
        "for every program; 25 literal characters, 0 '**', 1 '*', 0 '?'",
        "it beat:\n  box.ini:4:1  read %USERPROFILE%\\**\n",
        "lost at step 2, more literal characters: 11 literal characters against the winner's 25",
        "also matching, but scoped to other programs:\n  box.ini:6:1  open excel.exe: %USERPROFILE%\\**\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr(out, expected[i]))
            fail_msg("expected '%s' in:\n%s", expected[i], out);

    nl = to_units("\\??\\C:\\Other\\x", n, 256);
    assert_int_equal(policy_explain(&c.view, POLICY_TYPE_FILE, n, nl, NULL, 0, out, sizeof out, &err), FVM_OK);
    assert_non_null(strstr(out, "program: (any)\ndecision: cow, not audited\n  no rule matches: cow is the default"));
    nl = to_units("\\??\\C:\\Ask\\x", n, 256);
    assert_int_equal(policy_explain(&c.view, POLICY_TYPE_FILE, n, nl, NULL, 0, out, sizeof out, &err), FVM_OK);
    assert_non_null(strstr(out, "decision: ask (timeout 3000 ms, then hide), not audited"));
    /* Cut to the buffer, never past it. */
    char small[40];
    memset(small, 'x', sizeof small);
    assert_int_equal(policy_explain(&c.view, POLICY_TYPE_FILE, n, nl, NULL, 0, small, 32, &err), FVM_OK);
    assert_int_equal(strlen(small), 31);
    assert_int_equal(small[33], 'x');
    release(&c);
}

/* ---- compiler and blob ----------------------------------------------------------------------------- */

static void blob_every_corrupted_byte_is_caught(void **state)
{
    compiled c;
    compile_text("[group:g]\na.exe\n[file]\nread C:\\x\\**\n@g: deny C:\\x\\*.y\n[key]\nread HKLM\\z\n", &c);
    fvm_error err;
    uint8_t *copy = aligned_alloc(8, (c.len + 7) & ~(size_t)7);
    for (size_t i = 0; i < c.len; i++) {
        memcpy(copy, c.blob, c.len);
        copy[i] ^= 0x41;
        if (policy_blob_validate(copy, c.len, &err) == FVM_OK)
            fail_msg("flipping byte %lu went unnoticed", (unsigned long)i);
    }
    memcpy(copy, c.blob, c.len);
    assert_int_equal(policy_blob_validate(copy, c.len, &err), FVM_OK);
    assert_int_equal(policy_blob_validate(copy, c.len - 8, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "truncated"));
    assert_int_equal(policy_blob_validate(copy, 10, &err), FVM_E_INVALID);
    assert_int_equal(policy_blob_validate(NULL, 0, &err), FVM_E_INVALID);
    free(copy);
    release(&c);
}

/* Corruptions with a recomputed checksum: the structural checks. */
static uint8_t *section_at(uint8_t *blob, const policy_blob_header *h, int section)
{
    return blob + h->sections[section].offset;
}

static void m_version(policy_blob_header *h, uint8_t *blob) { h->version = 2; }
static void m_magic(policy_blob_header *h, uint8_t *blob) { memcpy(h->magic, "NOTAPOLI", 8); }
static void m_states(policy_blob_header *h, uint8_t *blob) { h->max_states = POLICY_MATCH_MAX_STATES + 1; }
static void m_rule_count(policy_blob_header *h, uint8_t *blob) { h->sections[POLICY_BLOB_RULES].count += 1000; }
static void m_units_offset(policy_blob_header *h, uint8_t *blob) { h->sections[POLICY_BLOB_UNITS].offset += 4; }
static void m_root(policy_blob_header *h, uint8_t *blob) { h->roots[POLICY_TYPE_KEY] = 12345; }
static void m_default(policy_blob_header *h, uint8_t *blob) { h->default_actions[POLICY_TYPE_FILE] = 9; }

static void m_node(policy_blob_header *h, uint8_t *blob)
{
    policy_blob_node node;
    memcpy(&node, section_at(blob, h, POLICY_BLOB_NODES), sizeof node);
    node.globstar = 999;
    memcpy(section_at(blob, h, POLICY_BLOB_NODES), &node, sizeof node);
}

static void m_rule(policy_blob_header *h, uint8_t *blob)
{
    policy_blob_rule rule;
    memcpy(&rule, section_at(blob, h, POLICY_BLOB_RULES), sizeof rule);
    rule.action = 0;
    memcpy(section_at(blob, h, POLICY_BLOB_RULES), &rule, sizeof rule);
}

static void m_slot(policy_blob_header *h, uint8_t *blob)
{
    for (uint32_t i = 0; i < h->sections[POLICY_BLOB_LITERALS].count; i++) {
        policy_blob_slot s;
        uint8_t *at = section_at(blob, h, POLICY_BLOB_LITERALS) + i * sizeof s;
        memcpy(&s, at, sizeof s);
        if (s.value != POLICY_NONE) {
            s.name_len = 100000;
            memcpy(at, &s, sizeof s);
            return;
        }
    }
}

static void m_edge(policy_blob_header *h, uint8_t *blob)
{
    policy_blob_edge e;
    memcpy(&e, section_at(blob, h, POLICY_BLOB_WILDCARDS), sizeof e);
    e.child = 77777;
    memcpy(section_at(blob, h, POLICY_BLOB_WILDCARDS), &e, sizeof e);
}

static void blob_structure_is_checked(void **state)
{
    static const struct {
        void (*mutate)(policy_blob_header *h, uint8_t *blob);
        const char *message;
    } cases[] = {
        {m_version, "version 2"},
        {m_magic, "bad magic"},
        {m_states, "live-state bound"},
        {m_rule_count, "section 'rules'"},
        {m_units_offset, "section 'units'"},
        {m_root, "root of type key"},
        {m_default, "bad default action"},
        {m_node, "node 0"},
        {m_rule, "rule 0"},
        {m_slot, "literal slots entry"},
        {m_edge, "wildcard edge 0"},
    };
    compiled c;
    compile_text("[file]\nread C:\\x\\**\ndeny C:\\x\\*.y\n", &c);
    uint8_t *copy = aligned_alloc(8, (c.len + 8) & ~(size_t)7);
    fvm_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        policy_blob_header h;
        memcpy(copy, c.blob, c.len);
        memcpy(&h, copy, sizeof h);
        cases[i].mutate(&h, copy);
        memcpy(copy, &h, sizeof h);
        h.checksum = policy_blob_checksum(copy, c.len);
        memcpy(copy, &h, sizeof h);
        assert_int_equal(policy_blob_validate(copy, c.len, &err), FVM_E_INVALID);
        if (!strstr(err.message, cases[i].message))
            fail_msg("case %lu: expected '%s', got '%s'", (unsigned long)i, cases[i].message, err.message);
    }
    /* Misaligned in memory. */
    memcpy(copy + 1, c.blob, c.len - 1);
    assert_int_equal(policy_blob_validate(copy + 1, c.len, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "aligned"));
    free(copy);
    release(&c);
}

static void many_literal_rules_compile_and_match(void **state)
{
    size_t cap = 10000 * 48 + 64;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "[file]\n");
    for (int i = 0; i < 10000; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s C:\\Data\\dir%05d\\**\n", i % 2 ? "read" : "deny", i);
    compiled c;
    compile_text(text, &c);
    free(text);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\dir04242\\sub\\file.txt", NULL, POLICY_ACTION_DENY, 4244);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\DIR09999", NULL, POLICY_ACTION_READ, 10001);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Data\\dir10000\\x", NULL, POLICY_ACTION_COW, 0);
    release(&c);
}

/* Wildcard rules that can all be alive for one name are bounded at compile
 * time, so the matcher's fixed state arrays never overflow. */
static void overlapping_wildcards_are_bounded(void **state)
{
    size_t cap = 400 * 40 + 64;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "[file]\n");
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(text + len, cap - len, "read C:\\Data\\*%d\\**\n", i);
    policy *p = load_ok(text);
    void *blob;
    size_t blob_len;
    fvm_error err;
    assert_int_equal(policy_compile(p, &blob, &blob_len, &err), FVM_E_RANGE);
    assert_non_null(strstr(err.message, "[file] rules are too many overlapping wildcards"));
    policy_free(p);

    /* The same number of rules below one wildcard folder is fine. */
    len = (size_t)snprintf(text, cap, "[file]\n");
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(text + len, cap - len, "read C:\\Users\\*\\d%d\\**\n", i);
    compiled c;
    compile_text(text, &c);
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\bob\\d299\\x", NULL, POLICY_ACTION_READ, 301);
    release(&c);
    free(text);
}

/* ---- the shipped policies ---------------------------------------------------------------------------- */

static fvm_status disk_reader(void *ctx, policy_include_kind kind, const char *name, const char *from, char **text,
                              size_t *len, char resolved[POLICY_NAME_MAX], fvm_error *err)
{
    const char *top = getenv("FVM_TOP") ? getenv("FVM_TOP") : ".";
    char path[1024];
    if (kind == POLICY_INCLUDE_TEMPLATE && strcmp(name, "default") == 0)
        snprintf(path, sizeof path, "%s/policy/default.ini", top);
    else if (kind == POLICY_INCLUDE_TEMPLATE)
        snprintf(path, sizeof path, "%s/policy/templates/%s.ini", top, name);
    else
        snprintf(path, sizeof path, "%s/%s", top, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fvm_error_set(err, FVM_E_NOTFOUND, "cannot open %s (run from the repository top or set FVM_TOP)",
                             path);
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    *text = buf;
    *len = n;
    snprintf(resolved, POLICY_NAME_MAX, "%s", path + strlen(top) + 1);
    return FVM_OK;
}

static void shipped_policies_are_clean(void **state)
{
    static const char *const files[] = {"policy/default.ini", "policy/templates/untrusted.ini",
                                        "policy/templates/data-protection.ini", "policy/templates/multi-instance.ini"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        policy_env env = test_env();
        env.read = disk_reader;
        env.read_ctx = NULL;
        reset_diags();
        policy *p;
        fvm_error err;
        if (policy_load_file(files[i], &env, &p, &err) != FVM_OK)
            fail_msg("%s: %s\n%s", files[i], err.message, diags);
        if (diag_errors || diag_warnings)
            fail_msg("%s has messages:\n%s", files[i], diags);
        assert_true(policy_rule_count(p) > 0);
        compiled c;
        compile_policy(p, &c);
        release(&c);
    }
    /* A box policy built on them. */
    policy_env env = test_env();
    env.read = disk_reader;
    reset_diags();
    policy *p = load_env("template default\ntemplate untrusted\ntemplate data-protection\n"
                         "[file]\nfirefox.exe: open %USERPROFILE%\\Downloads\\**\n",
                         &env);
    compiled c;
    compile_policy(p, &c);
    policy_decision d = decide(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\me\\.ssh\\id_ed25519", NULL);
    assert_int_equal(d.action, POLICY_ACTION_HIDE);
    assert_true(d.audit);
    assert_memory_equal(d.file, "policy/templates/untrusted.ini", d.file_len);
    /* A template's rule is loosened by a more specific one: here a program
     * scope (an identical pattern would lose to the stricter action). */
    expect(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\me\\Downloads\\setup.exe", "firefox.exe", POLICY_ACTION_OPEN, 5);
    d = decide(&c, POLICY_TYPE_FILE, "\\??\\C:\\Users\\me\\Downloads\\setup.exe", "other.exe");
    assert_int_equal(d.action, POLICY_ACTION_HIDE);
    release(&c);
}

/* The folders of the rules policy_hidden_folders returns, as UTF-8,
 * joined by '|'. */
static const char *hidden_folders(const char *text)
{
    static char joined[1024];
    compiled c;
    compile_text(text, &c);
    uint32_t rules[16];
    size_t n = policy_hidden_folders(&c.view, rules, 16);
    assert_true(n <= 16);
    joined[0] = 0;
    for (size_t i = 0; i < n; i++) {
        policy_rule_info info;
        assert_int_equal(policy_view_rule(&c.view, rules[i], &info), FVM_OK);
        size_t len = policy_hidden_folder_length(info.pattern, info.pattern_len);
        assert_true(len > 0);
        size_t at = strlen(joined);
        if (at)
            joined[at++] = '|';
        for (size_t k = 0; k < len && at + 1 < sizeof joined; k++)
            joined[at++] = (char)info.pattern[k];
        joined[at] = 0;
    }
    release(&c);
    return joined;
}

static void hidden_folders_are_those_no_allowing_rule_reaches(void **state)
{
    (void)state;
    assert_string_equal(hidden_folders("[file]\nhide C:\\Users\\me\\.ssh\\**\n"), "\\??\\C:\\Users\\me\\.ssh");
    assert_string_equal(hidden_folders("[file]\ndeny C:\\secret\\**\ncow **\nopen C:\\data\\**\n"),
                        "\\??\\C:\\secret");
    /* Not of the form FOLDER\**, not for every program, not hide/deny. */
    assert_string_equal(hidden_folders("[file]\nhide C:\\a\\*.txt\nhide C:\\b\\x\\*\napp.exe: hide C:\\c\\**\n"
                                       "read C:\\d\\**\n"),
                        "");
    /* An allowing rule beneath the folder outranks it (more literals). */
    assert_string_equal(hidden_folders("[file]\nhide C:\\s\\**\nopen C:\\s\\pub\\**\n"), "");
    /* ...or one for a program, or a wildcard that reaches in with more literals. */
    assert_string_equal(hidden_folders("[file]\nhide C:\\s\\**\napp.exe: cow **\n"), "");
    assert_string_equal(hidden_folders("[file]\nhide C:\\s\\**\nopen C:\\**\\known_hosts_and_more\n"), "");
    /* A hide beneath a hidden folder, or an allow elsewhere, changes nothing. */
    assert_string_equal(hidden_folders("[file]\nhide C:\\s\\**\nhide C:\\s\\t\\**\nopen C:\\sx\\**\n"),
                        "\\??\\C:\\s|\\??\\C:\\s\\t");
    /* Case does not matter for reaching. */
    assert_string_equal(hidden_folders("[file]\nhide C:\\S\\**\nopen c:\\s\\deeper\\more\\**\n"), "");
    /* The folder as a drive path; none for a share, or too small a buffer. */
    uint16_t win[32];
    assert_int_equal(policy_hidden_folder_win32((const uint16_t *)u"\\??\\C:\\Users\\me\\**", 18, win, 32), 11);
    assert_memory_equal(win, u"C:\\Users\\me", 12 * sizeof(uint16_t));
    assert_int_equal(policy_hidden_folder_win32((const uint16_t *)u"\\??\\C:\\Users\\me\\**", 18, win, 11), 0);
    assert_int_equal(policy_hidden_folder_win32((const uint16_t *)u"\\??\\UNC\\srv\\sh\\**", 17, win, 32), 0);
    assert_int_equal(policy_hidden_folder_win32((const uint16_t *)u"\\??\\C:\\a\\*.txt", 14, win, 32), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_sections_comments_and_actions),
        cmocka_unit_test(possible_decisions_per_type),
        cmocka_unit_test(patterns_with_spaces_and_quotes),
        cmocka_unit_test(reports_every_error_with_place),
        cmocka_unit_test(columns_count_characters_and_limit_stops),
        cmocka_unit_test(diag_format),
        cmocka_unit_test(variables),
        cmocka_unit_test(includes_and_templates),
        cmocka_unit_test(include_depth_is_limited),
        cmocka_unit_test(load_file_uses_reader),
        cmocka_unit_test(groups),
        cmocka_unit_test(file_patterns_every_form),
        cmocka_unit_test(key_patterns),
        cmocka_unit_test(object_patterns),
        cmocka_unit_test(canonical_names_for_explain),
        cmocka_unit_test(every_path_form_gets_the_same_decision),
        cmocka_unit_test(wildcards),
        cmocka_unit_test(case_insensitive_beyond_ascii),
        cmocka_unit_test(random_policies_match_the_reference),
        cmocka_unit_test(defaults_per_type),
        cmocka_unit_test(reserved_types_compile_and_match),
        cmocka_unit_test(screen_and_desktop_are_closed_by_default),
        cmocka_unit_test(precedence_step1_scope),
        cmocka_unit_test(precedence_step2_literals),
        cmocka_unit_test(precedence_step3_globstars),
        cmocka_unit_test(precedence_step4_stars),
        cmocka_unit_test(precedence_step5_qmarks),
        cmocka_unit_test(precedence_step6_action),
        cmocka_unit_test(precedence_step7_later_line),
        cmocka_unit_test(documented_precedence_examples),
        cmocka_unit_test(rank_compare_is_a_total_order),
        cmocka_unit_test(explain_lists_winner_losers_and_others),
        cmocka_unit_test(blob_every_corrupted_byte_is_caught),
        cmocka_unit_test(blob_structure_is_checked),
        cmocka_unit_test(many_literal_rules_compile_and_match),
        cmocka_unit_test(overlapping_wildcards_are_bounded),
        cmocka_unit_test(shipped_policies_are_clean),
        cmocka_unit_test(hidden_folders_are_those_no_allowing_rule_reaches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

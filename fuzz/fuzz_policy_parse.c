/* fuzz_policy_parse.c - libFuzzer target for the policy parser (and what
 * follows it: compiler, validator, matcher, explainer).
 *
 * Input: byte 0 picks options (which environment variables and SID exist,
 * the error limit, and - bit 7 - whether a built-in valid policy comes
 * first, so mutations start from deep inside the grammar); the rest is the
 * policy. Lines "--- NAME" split it into
 * files that include/template lines can reach through the in-memory
 * reader, so includes, cycles and depth are fuzzed too.
 *
 * Besides "never crash", it traps when a property the runtime relies on
 * breaks:
 *  - every message is NUL-terminated and points at a line >= 1 (or 0 for a
 *    whole-file problem);
 *  - a policy that loads compiles (or is refused as too complex), and the
 *    compiler's blob passes the validator;
 *  - for each rule whose pattern has no wildcard, the pattern itself is a
 *    name it matches: the decision for that name (and the rule's program)
 *    comes from a rule at least as specific, never the default;
 *  - a folder the floor may hide (policy_hidden_folders) gets hide or deny
 *    for every literal rule's name beneath it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

#define MAX_FILES 8

static void check_diag(void *ctx, const policy_diag *d)
{
    (void)ctx;
    CHECK(d->file && d->message);
    CHECK(strlen(d->message) < 1024);
    char out[64];
    policy_diag_format(d, out, sizeof out);
    CHECK(memchr(out, 0, sizeof out) != NULL);
}

static size_t to_units(const char *s, uint16_t *out, size_t cap)
{
    size_t bad, n = policy_utf8_to_utf16(s, strlen(s), out, cap, &bad);
    return n == (size_t)-1 ? 0 : n;
}

static int has_wildcard(const policy_pattern *p)
{
    return p->globstars || p->stars || p->qmarks;
}

/* A program the rule applies to, or NULL for every program. */
static const char *program_for(const policy *p, const policy_rule *r)
{
    if (r->scope == POLICY_SCOPE_PROGRAM)
        return r->scope_name;
    if (r->scope == POLICY_SCOPE_GROUP) {
        for (size_t i = 0; i < policy_group_count(p); i++) {
            const policy_group *g = policy_group_at(p, i);
            if (strcasecmp(g->name, r->scope_name) == 0)
                return g->program_count ? g->programs[0] : NULL;
        }
    }
    return NULL;
}

static void check_literal_rules(const policy *p, const policy_view *view)
{
    static uint16_t program[512];
    static char explanation[8192];
    for (size_t i = 0; i < policy_rule_count(p) && i < 64; i++) {
        const policy_rule *r = policy_rule_at(p, i);
        for (size_t k = 0; k < r->pattern_count; k++) {
            const policy_pattern *pat = &r->patterns[k];
            const char *prog = program_for(p, r);
            if (r->scope != POLICY_SCOPE_ALL && !prog)
                continue; /* an empty group: applies to nobody */
            size_t program_len = prog ? to_units(prog, program, 512) : 0;
            policy_decision d;
            fvm_status st = policy_match(view, r->type, pat->units, pat->len, prog ? program : NULL, program_len, &d);
            CHECK(st == FVM_OK || (st == FVM_E_INVALID && pat->len == 0));
            if (st != FVM_OK)
                continue;
            fvm_error err;
            CHECK(policy_explain(view, r->type, pat->units, pat->len, prog ? program : NULL, program_len,
                                 explanation, sizeof explanation, &err) == FVM_OK);
            CHECK(memchr(explanation, 0, sizeof explanation) != NULL);
            if (has_wildcard(pat))
                continue;
            CHECK(!d.is_default);
            policy_rule_info winner;
            CHECK(policy_view_rule(view, d.rule, &winner) == FVM_OK);
            policy_rank mine = {r->scope, pat->literal_chars, pat->globstars, pat->stars, pat->qmarks, r->action,
                                r->order};
            CHECK(policy_rank_compare(&winner.rank, &mine, NULL) >= 0);
        }
    }
}

/* A folder policy_hidden_folders lets the floor hide: every literal
 * [file] rule beneath it, matched for its own program (or every program),
 * is decided hide or deny (nothing allowing can win there). */
static void check_hidden_folders(const policy *p, const policy_view *view)
{
    static uint16_t program[512];
    uint32_t hidden[16];
    size_t n = policy_hidden_folders(view, hidden, 16);
    for (size_t h = 0; h < n && h < 16; h++) {
        policy_rule_info info;
        CHECK(policy_view_rule(view, hidden[h], &info) == FVM_OK);
        CHECK(info.type == POLICY_TYPE_FILE && info.rank.scope == POLICY_SCOPE_ALL &&
              (info.action == POLICY_ACTION_HIDE || info.action == POLICY_ACTION_DENY));
        size_t folder = policy_hidden_folder_length(info.pattern, info.pattern_len);
        CHECK(folder > 0 && folder < info.pattern_len);
        for (size_t i = 0; i < policy_rule_count(p) && i < 64; i++) {
            const policy_rule *r = policy_rule_at(p, i);
            if (r->type != POLICY_TYPE_FILE)
                continue;
            for (size_t k = 0; k < r->pattern_count; k++) {
                const policy_pattern *pat = &r->patterns[k];
                if (has_wildcard(pat) || pat->len <= folder + 1 || pat->units[folder] != '\\')
                    continue;
                int beneath = 1;
                for (size_t c = 0; beneath && c < folder; c++)
                    beneath = ntpath_upcase(NULL, pat->units[c]) == ntpath_upcase(NULL, info.pattern[c]);
                const char *prog = program_for(p, r);
                if (!beneath || (r->scope != POLICY_SCOPE_ALL && !prog))
                    continue;
                size_t program_len = prog ? to_units(prog, program, 512) : 0;
                policy_decision d;
                if (policy_match(view, POLICY_TYPE_FILE, pat->units, pat->len, prog ? program : NULL, program_len,
                                 &d) != FVM_OK)
                    continue;
                CHECK(d.action == POLICY_ACTION_HIDE || d.action == POLICY_ACTION_DENY);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    static const char base[] =
        "[vars]\nDATA = D:\\Data\n[group:office]\nwinword.exe\n"
        "[file]\nread %DATA%\\**\nwinword.exe: deny audit C:\\x\\*.docx\n@office: hide \\\\srv\\sh\\?\n"
        "ask(timeout=1s, default=hide) **\\*.tmp\n[key]\nread HKLM\\Software\\X\n"
        "[object]\nopen Global\\Foo\nopen pipe:x\nopen class:Y\n[net]\ndeny tcp:*:25\nopen publish:18080:8080\n";
    uint8_t mode = data[0];
    size_t prefix = (mode & 0x80) ? sizeof base - 1 : 0;
    char *text = malloc(prefix + size);
    memcpy(text, base, prefix);
    memcpy(text + prefix, data + 1, size - 1);
    text[prefix + size - 1] = 0;

    /* Split into files at lines "--- NAME". */
    policy_memory_file files[MAX_FILES];
    size_t count = 0;
    char *top = text, *cursor = text;
    while ((cursor = strstr(cursor, "\n--- ")) && count < MAX_FILES) {
        *cursor = 0;
        char *name = cursor + 5, *end = strchr(name, '\n');
        if (!end)
            break;
        *end = 0;
        files[count].name = name;
        files[count].text = end + 1;
        count++;
        cursor = end + 1;
    }
    policy_memory_files memory = {files, count};

    static const policy_var vars[] = {{"USERPROFILE", "C:\\Users\\me"}, {"APPDATA", "C:\\Users\\me\\AppData\\Roaming"},
                                      {"EMPTY", ""}, {"WILD", "C:\\*\\**"}};
    static const ntpath_volume volumes[] = {{(const uint16_t *)u"\\Device\\HarddiskVolume1", 23, 'C'}};
    ntpath_context path_ctx;
    memset(&path_ctx, 0, sizeof path_ctx);
    path_ctx.volumes = volumes;
    path_ctx.volume_count = 1;
    policy_env env;
    memset(&env, 0, sizeof env);
    env.read = policy_memory_read;
    env.read_ctx = &memory;
    env.vars = vars;
    env.var_count = (mode & 1) ? 4 : 0;
    env.user_sid = (mode & 2) ? "S-1-5-21-7" : NULL;
    env.session_objects = (mode & 4) ? "\\Sessions\\1\\BaseNamedObjects" : NULL;
    env.path_ctx = (mode & 8) ? &path_ctx : NULL;
    env.diag = check_diag;
    env.max_errors = ((mode >> 4) & 7) * 4;

    policy *p = NULL;
    fvm_error err;
    fvm_status st = policy_load_text("fuzz.ini", top, strlen(top), &env, &p, &err);
    CHECK((st == FVM_OK) == (p != NULL));
    CHECK(memchr(err.message, 0, sizeof err.message) != NULL || st == FVM_OK);
    if (st == FVM_OK) {
        void *blob;
        size_t len;
        st = policy_compile(p, &blob, &len, &err);
        CHECK(st == FVM_OK || st == FVM_E_RANGE);
        if (st == FVM_OK) {
            policy_view view;
            CHECK(policy_blob_open(blob, len, &view, &err) == FVM_OK);
            check_literal_rules(p, &view);
            check_hidden_folders(p, &view);
            policy_blob_free(blob);
        }
        policy_free(p);
    }
    free(text);
    return 0;
}

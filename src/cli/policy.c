/* policy.c - fvm policy check and fvm policy explain: the administrator's
 * front ends to the policy engine (core/policy.h).
 *
 * Both read policies exactly as the broker does (common/policyload.c: the
 * same reader, variables, SID and session), so what `check` accepts is what
 * a box will run with, and `explain` answers with the runtime's own matcher
 * on the box's compiled policy. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/policyload.h"

typedef struct diag_counts {
    unsigned errors, warnings, notes;
    FILE *to;
    int errors_only;
} diag_counts;

static void print_diag(void *ctx, const policy_diag *d)
{
    diag_counts *c = ctx;
    if (d->severity == POLICY_DIAG_ERROR)
        c->errors++;
    else if (d->severity == POLICY_DIAG_WARNING)
        c->warnings++;
    else
        c->notes++;
    if (c->errors_only && d->severity != POLICY_DIAG_ERROR)
        return;
    char line[2048];
    policy_diag_format(d, line, sizeof line);
    fprintf(c->to, "%s\n", line);
}

static const char *plural(unsigned n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static int policy_check(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            return cli_error("policy check: unknown option '%s'", argv[i]), EXIT_USAGE;
        if (file)
            return cli_error("policy check: unexpected argument '%s'", argv[i]), EXIT_USAGE;
        file = argv[i];
    }
    if (!file)
        return cli_error("usage: fvm policy check FILE"), EXIT_USAGE;
    wchar_t path[FVM_PATH_MAX];
    cli_wide(file, path, FVM_PATH_MAX);

    static fvm_policy_context ctx;
    char why[1024];
    if (fvm_policy_context_init(&ctx, why, sizeof why) != FVM_OK)
        return cli_error("policy check: %s", why);
    diag_counts counts = {0, 0, 0, stdout, 0};
    policy *p = NULL;
    fvm_status st = fvm_policy_load_with(&ctx, path, &p, print_diag, &counts, why, sizeof why);
    if (st != FVM_OK && st != FVM_E_PARSE) {
        /* The file itself could not be read: nothing was checked. */
        fvm_policy_context_free(&ctx);
        return cli_error("policy check: %s", why);
    }
    size_t rules = 0;
    if (st == FVM_OK) {
        /* The compiler has limits of its own (wildcard states, size): a
         * policy that loads but does not compile cannot be used either. */
        void *blob;
        size_t blob_len;
        fvm_error err;
        rules = policy_rule_count(p);
        if (policy_compile(p, &blob, &blob_len, &err) != FVM_OK) {
            printf("%s: error: %s\n", ctx.file_count ? ctx.files[0].display : file, err.message);
            counts.errors++;
        } else {
            policy_blob_free(blob);
        }
        policy_free(p);
    }
    fvm_policy_context_free(&ctx);
    counts.errors += sync_check_policy_file(path, stdout);   /* [sync]: core/syncpolicy.c */
    if (counts.errors == 0 && st == FVM_OK) {
        printf("%s: ok, %lu %s (%u %s, %u %s)\n", file, (unsigned long)rules, rules == 1 ? "rule" : "rules",
               counts.warnings, plural(counts.warnings, "warning", "warnings"), counts.notes,
               plural(counts.notes, "note", "notes"));
        return 0;
    }
    printf("%s: %u %s, %u %s, %u %s: the policy cannot be used\n", file, counts.errors,
           plural(counts.errors, "error", "errors"), counts.warnings, plural(counts.warnings, "warning", "warnings"),
           counts.notes, plural(counts.notes, "note", "notes"));
    return EXIT_FAIL;
}

static int policy_explain_cmd(int argc, char **argv)
{
    const char *box_name = NULL, *name = NULL, *program = NULL, *type_name = "file";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--program") && i + 1 < argc)
            program = argv[++i];
        else if (!strcmp(argv[i], "--type") && i + 1 < argc)
            type_name = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return cli_error("policy explain: unknown option '%s'", argv[i]), EXIT_USAGE;
        else if (!box_name)
            box_name = argv[i];
        else if (!name)
            name = argv[i];
        else
            return cli_error("policy explain: unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    if (!box_name || !name)
        return cli_error("usage: fvm policy explain NAME PATH [--program X] [--type file|key|object|...]"),
               EXIT_USAGE;
    policy_type type;
    if (!policy_type_from_name(type_name, strlen(type_name), &type))
        return cli_error("policy explain: unknown type '%s' (file, key, object, process, net, service, screen, "
                         "print, desktop, memory or data)", type_name), EXIT_USAGE;
    box b;
    if (!box_init(&b, box_name))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", box_name);

    wchar_t policy_path[FVM_PATH_MAX];
    char shown[FVM_PATH_MAX * 3], why[1024];
    if (fvm_policy_box_path(b.path, policy_path, FVM_PATH_MAX) != FVM_OK)
        return cli_error("policy explain: the path of box '%s' is too long", box_name);
    cli_utf8(policy_path, shown, sizeof shown);

    static fvm_policy_context ctx;
    if (fvm_policy_context_init(&ctx, why, sizeof why) != FVM_OK)
        return cli_error("policy explain: %s", why);
    diag_counts counts = {0, 0, 0, stderr, 1};
    policy *p = NULL;
    void *blob = NULL;
    size_t blob_len = 0;
    uint16_t *canonical = NULL;
    char *text = NULL;
    int rc = EXIT_FAIL;
    fvm_error err;
    policy_view view;
    size_t canonical_len;
    const size_t canonical_cap = NTPATH_MAX_UNITS + 1, text_cap = 64 * 1024;
    fvm_status st = fvm_policy_load_with(&ctx, policy_path, &p, print_diag, &counts, why, sizeof why);
    if (st != FVM_OK) {
        cli_error("the policy of box '%s' (%s) cannot be used: %s", box_name, shown, why);
        goto done;
    }
    if (policy_compile(p, &blob, &blob_len, &err) != FVM_OK || policy_blob_open(blob, blob_len, &view, &err) != FVM_OK) {
        cli_error("the policy of box '%s' (%s) cannot be compiled: %s", box_name, shown, err.message);
        goto done;
    }
    canonical = malloc(canonical_cap * sizeof *canonical);
    text = malloc(text_cap);
    if (!canonical || !text) {
        cli_error("policy explain: out of memory");
        goto done;
    }
    /* The name goes through the code that makes patterns canonical, so any
     * spelling a rule could use is accepted. */
    if (policy_canonical_name(type, name, &ctx.env, canonical, canonical_cap, &canonical_len, &err) != FVM_OK) {
        cli_error("policy explain: '%s' is not a %s name: %s", name, policy_type_name(type), err.message);
        goto done;
    }
    wchar_t wprogram[FVM_PATH_MAX] = L"";
    if (program)
        cli_wide(program, wprogram, FVM_PATH_MAX);
    if (policy_explain(&view, type, canonical, canonical_len, (const uint16_t *)wprogram, wcslen(wprogram), text,
                       text_cap, &err) != FVM_OK) {
        cli_error("policy explain: %s", err.message);
        goto done;
    }
    printf("policy: %s\n%s", shown, text);
    rc = 0;
done:
    free(text);
    free(canonical);
    if (blob)
        policy_blob_free(blob);
    if (p)
        policy_free(p);
    fvm_policy_context_free(&ctx);
    return rc;
}

int cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "check"))
        return policy_check(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "explain"))
        return policy_explain_cmd(argc - 1, argv + 1);
    return cli_error("usage: fvm policy check FILE\n"
                     "       fvm policy explain NAME PATH [--program X] [--type file|key|object|...]"),
           EXIT_USAGE;
}

/* bench_policy_match.c - shows that policy matching costs the same with 10
 * rules and with 10,000: the matcher walks a trie over the name's
 * components, so its cost follows the name's length, not the rule count.
 *
 * Native benchmark, not part of the test suite and not built by the
 * Makefile (bench/ holds Windows programs). Build and run from the
 * repository top:
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Isrc tools/bench_policy_match.c \
 *      src/core/policy_*.c src/core/ntpath*.c src/core/error.c src/core/netrules.c \
 *      src/core/objname.c -o /tmp/bench_policy_match
 *   /tmp/bench_policy_match [lookups-per-round]
 *
 * For each scenario it builds the policy with 10 and with 10,000 rules,
 * compiles it, then times policy_match over 1,000 names (5 to 12
 * components long) in 9 rounds and reports the median ns per lookup and
 * the ratio 10,000 / 10, for two sets of names:
 *   same      names decided by the same kind of rule in both policies (their
 *             folder is one of the first 10 rules'), so both do the same
 *             walk: this ratio isolates the rule count, and is about 1;
 *   spread    names over the whole range of 10,000 folders: with the big
 *             policy half of them hit a rule and walk deeper, where the
 *             small one stops at the first unknown folder, and they touch
 *             a 3 MB blob instead of a 4 KB one (cache misses). This ratio
 *             shows what a real lookup mix costs; it stays small too.
 * Scenarios:
 *   literal   "read C:\Data\dirNNNNN\**": literal prefixes, one per rule;
 *   mixed     the same plus 12 wildcard rules every policy has (**\*.tmp,
 *             C:\Users\*\..., *.docx in a folder) and program scopes;
 *   keys      "deny HKLM\Software\VendorNNNNN\App\**" over registry names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/policy.h"

#define NAMES 1000
#define ROUNDS 9

static uint16_t names[NAMES][128];
static size_t name_lens[NAMES];
static const uint16_t program[] = u"C:\\Program Files\\Office\\WINWORD.EXE";

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t to_units(const char *s, uint16_t *out)
{
    size_t n = 0;
    while (s[n]) {
        out[n] = (uint8_t)s[n];
        n++;
    }
    return n;
}

static char *policy_text(const char *scenario, int rules)
{
    size_t cap = (size_t)rules * 64 + 4096, len = 0;
    char *text = malloc(cap);
    int keys = strcmp(scenario, "keys") == 0;
    len += (size_t)snprintf(text + len, cap - len, keys ? "[key]\n" : "[file]\n");
    for (int i = 0; i < rules; i++) {
        if (keys)
            len += (size_t)snprintf(text + len, cap - len, "%s HKLM\\Software\\Vendor%05d\\App\\**\n",
                                    i % 3 ? "read" : "deny", i);
        else
            len += (size_t)snprintf(text + len, cap - len, "%s C:\\Data\\dir%05d\\**\n", i % 3 ? "read" : "deny", i);
    }
    if (strcmp(scenario, "mixed") == 0) {
        len += (size_t)snprintf(text + len, cap - len,
                                "[group:office]\nwinword.exe\nexcel.exe\n[file]\n"
                                "deny audit **\\*.kdbx\ncow **\\*.tmp\nread C:\\Users\\*\\AppData\\**\n"
                                "hide C:\\Users\\*\\Documents\\Secret\\**\ndeny C:\\Data\\*.docx\n"
                                "@office: open C:\\Data\\**\nwinword.exe: read C:\\Data\\dir0000?\\**\n"
                                "read C:\\Windows\\**\nread C:\\Program Files\\**\nopen C:\\Temp\\**\n"
                                "deny C:\\Data\\dir*\\private\\**\nread *:\\Shared\\**\n");
    }
    return text;
}

static void make_names(const char *scenario, int spread)
{
    char buf[256];
    srand(42);
    for (int i = 0; i < NAMES; i++) {
        int dir = spread ? rand() % 20000 : rand() % 10; /* spread: half hit a rule of the big policy */
        int depth = rand() % 5;
        if (strcmp(scenario, "keys") == 0) {
            int n = snprintf(buf, sizeof buf, "\\REGISTRY\\MACHINE\\SOFTWARE\\Vendor%05d\\App", dir);
            for (int d = 0; d < depth; d++)
                n += snprintf(buf + n, sizeof buf - (size_t)n, "\\Sub%d", d);
        } else {
            int n = snprintf(buf, sizeof buf, "\\??\\C:\\Data\\dir%05d", dir);
            for (int d = 0; d < depth; d++)
                n += snprintf(buf + n, sizeof buf - (size_t)n, "\\folder%d", d);
            snprintf(buf + n, sizeof buf - (size_t)n, "\\report%d.%s", i, i % 4 ? "docx" : "tmp");
        }
        name_lens[i] = to_units(buf, names[i]);
    }
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median ns per lookup. */
static double time_lookups(const policy_view *view, policy_type type, int lookups)
{
    double rounds[ROUNDS];
    volatile unsigned sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double start = now_ns();
        for (int k = 0; k < lookups; k++) {
            policy_decision d;
            int i = k % NAMES;
            policy_match(view, type, names[i], name_lens[i], program, sizeof program / 2 - 1, &d);
            sink += (unsigned)d.action;
        }
        rounds[r] = (now_ns() - start) / lookups;
    }
    qsort(rounds, ROUNDS, sizeof rounds[0], compare_doubles);
    (void)sink;
    return rounds[ROUNDS / 2];
}

static double run(const char *scenario, int rules, int lookups, size_t *blob_size, double *compile_ms)
{
    char *text = policy_text(scenario, rules);
    policy_env env;
    memset(&env, 0, sizeof env);
    policy *p;
    fvm_error err;
    double start = now_ns();
    if (policy_load_text("bench.ini", text, strlen(text), &env, &p, &err) != FVM_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        exit(1);
    }
    void *blob;
    size_t len;
    if (policy_compile(p, &blob, &len, &err) != FVM_OK) {
        fprintf(stderr, "compile: %s\n", err.message);
        exit(1);
    }
    *compile_ms = (now_ns() - start) / 1e6;
    *blob_size = len;
    policy_view view;
    if (policy_blob_open(blob, len, &view, &err) != FVM_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        exit(1);
    }
    double ns = time_lookups(&view, strcmp(scenario, "keys") == 0 ? POLICY_TYPE_KEY : POLICY_TYPE_FILE, lookups);
    policy_blob_free(blob);
    policy_free(p);
    free(text);
    return ns;
}

int main(int argc, char **argv)
{
    int lookups = argc > 1 ? atoi(argv[1]) : 200000;
    static const char *const scenarios[] = {"literal", "mixed", "keys"};
    printf("%-8s %-7s %6s %11s %11s %10s\n", "scenario", "names", "rules", "blob bytes", "compile ms", "ns/lookup");
    int ok = 1;
    for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++) {
        for (int spread = 0; spread < 2; spread++) {
            const char *set = spread ? "spread" : "same";
            make_names(scenarios[s], spread);
            size_t small_blob, big_blob;
            double small_compile, big_compile;
            double small = run(scenarios[s], 10, lookups, &small_blob, &small_compile);
            double big = run(scenarios[s], 10000, lookups, &big_blob, &big_compile);
            printf("%-8s %-7s %6d %11lu %11.1f %10.1f\n", scenarios[s], set, 10, (unsigned long)small_blob,
                   small_compile, small);
            printf("%-8s %-7s %6d %11lu %11.1f %10.1f   ratio %.2f\n", scenarios[s], set, 10000,
                   (unsigned long)big_blob, big_compile, big, big / small);
            if (!spread && big / small > 1.5)
                ok = 0;
        }
    }
    printf(ok ? "\nsame walk, 1000x the rules: every ratio <= 1.5 - matching cost does not follow the rule count\n"
              : "\nWARNING: a 'same' ratio above 1.5: matching cost grows with the rule count\n");
    return ok ? 0 : 1;
}

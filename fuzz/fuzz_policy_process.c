/* fuzz_policy_process.c - libFuzzer target for the [process] section: the
 * input is the body of a [process] section (so every line is a process rule:
 * image path patterns and sha256: hashes), loaded, compiled and matched, and
 * also fed straight to the hash-pattern checker.
 *
 * Properties it traps on, besides "never crash":
 *  - the hash checker accepts exactly "sha256:" + 64 hex digits, and its
 *    canonical form is "sha256\" + 64 lower-case hex digits;
 *  - a policy that loads compiles, and every hash rule of it decides its own
 *    hash (the start decision for that hash comes from a hash rule);
 *  - the start decision never reads past a short hash string. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy.h"
#include "core/policy_process.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static void ignore_diag(void *ctx, const policy_diag *d)
{
    (void)ctx;
    CHECK(d->file && d->message);
}

static int hex(uint16_t u)
{
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'f') || (u >= 'A' && u <= 'F');
}

static void check_hash_form(const uint8_t *data, size_t size)
{
    uint16_t in[128], out[POLICY_PROCESS_HASH_UNITS];
    size_t n = size < 128 ? size : 128;
    for (size_t i = 0; i < n; i++)
        in[i] = data[i];
    fvm_error err;
    size_t bad = 0;
    size_t got = policy_process_hash_form(in, n, out, &bad, &err);
    int valid = n == 71 && policy_process_is_hash(in, n);
    for (size_t i = 7; valid && i < n; i++)
        valid = hex(in[i]);
    CHECK((got != 0) == valid);
    if (got) {
        CHECK(got == POLICY_PROCESS_HASH_UNITS);
        for (size_t i = 7; i < got; i++)
            CHECK((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'));
    } else {
        CHECK(bad <= n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_hash_form(data, size);
    if (size > 4096)
        return 0;
    char *text = malloc(size + 16);
    if (!text)
        return 0;
    memcpy(text, "[process]\n", 10);
    memcpy(text + 10, data, size);
    static const ntpath_volume volumes[] = {{(const uint16_t *)u"\\Device\\HarddiskVolume1", 23, 'C'}};
    ntpath_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.volumes = volumes;
    ctx.volume_count = 1;
    policy_env env;
    memset(&env, 0, sizeof env);
    env.path_ctx = &ctx;
    env.diag = ignore_diag;
    policy *p = NULL;
    fvm_error err;
    if (policy_load_text("box.ini", text, size + 10, &env, &p, &err) == FVM_OK) {
        void *blob = NULL;
        size_t len = 0;
        policy_view view;
        if (policy_compile(p, &blob, &len, &err) == FVM_OK) {
            CHECK(policy_blob_open(blob, len, &view, &err) == FVM_OK);
            uint16_t image[] = {'\\', '?', '?', '\\', 'C', ':', '\\', 'x', '.', 'e', 'x', 'e'};
            policy_decision d;
            CHECK(policy_process_decide(&view, image, 12, "0123", NULL, 0, &d) == FVM_OK);
            for (size_t i = 0; i < policy_rule_count(p); i++) {
                const policy_rule *r = policy_rule_at(p, i);
                if (r->type != POLICY_TYPE_PROCESS || r->scope != POLICY_SCOPE_ALL ||
                    r->patterns[0].len != POLICY_PROCESS_HASH_UNITS || r->patterns[0].units[0] != 's')
                    continue;
                char hash[65];
                for (int k = 0; k < 64; k++)
                    hash[k] = (char)r->patterns[0].units[7 + k];
                hash[64] = 0;
                CHECK(policy_process_decide(&view, image, 12, hash, NULL, 0, &d) == FVM_OK);
                CHECK(!d.is_default);
            }
            policy_blob_free(blob);
        }
        policy_free(p);
    }
    free(text);
    return 0;
}

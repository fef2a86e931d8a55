/* fuzz_policy_blob.c - libFuzzer target for the compiled-policy loader: a
 * blob on disk is outside input, so policy_blob_open must refuse anything
 * the matcher could not walk safely, and the matcher, match_each and
 * explain must never fault on a blob it accepted.
 *
 * Random bytes rarely get past the magic and the checksum, so byte 0 picks
 * how the input is used:
 *  - odd:  the rest is the blob itself (checksum and all);
 *  - even: a real blob compiled from a built-in policy is patched with the
 *          input's (offset, byte) pairs and its checksum recomputed, which
 *          drives the structural checks behind the checksum.
 * After a blob is accepted, a few names made from the input (and every
 * rule's own pattern) are matched and explained. */
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

static const char base_policy[] =
    "[group:office]\nwinword.exe\nexcel.exe\n"
    "[file]\nread C:\\Users\\*\\**\ndeny audit C:\\Data\\*.docx\nwinword.exe: open C:\\Data\\**\n"
    "@office: hide C:\\Secret\\**\nask(timeout=2s, default=hide) C:\\Ask\\?x*\ncow **\\*.tmp\n"
    "[key]\nread HKLM\\Software\\**\ndeny HKCR\\.exe\n"
    "[object]\nopen Global\\Foo*\nopen pipe:\\MyPipe\nopen class:Shell_TrayWnd\n"
    "[net]\ndeny tcp:*.example.com:443\n";

static void *base_blob;
static size_t base_len;

static void build_base(void)
{
    if (base_blob)
        return;
    policy_env env;
    memset(&env, 0, sizeof env);
    env.user_sid = "S-1-5-21-7";
    policy *p;
    fvm_error err;
    CHECK(policy_load_text("base.ini", base_policy, sizeof base_policy - 1, &env, &p, &err) == FVM_OK);
    CHECK(policy_compile(p, &base_blob, &base_len, &err) == FVM_OK);
    policy_free(p);
}

static void count_rule(void *ctx, uint32_t rule)
{
    (*(size_t *)ctx)++;
    (void)rule;
}

static void exercise(const policy_view *view, const uint8_t *data, size_t size)
{
    static char explanation[4096];
    static const uint16_t program[] = u"C:\\Apps\\WINWORD.EXE";
    uint16_t name[256];
    size_t n = 0;
    for (size_t i = 0; i + 1 < size && n < 256; i += 2)
        name[n++] = (uint16_t)(data[i] | data[i + 1] << 8);
    fvm_error err;
    for (int type = 0; type < POLICY_TYPE_COUNT; type++) {
        policy_decision d;
        fvm_status st = policy_match(view, (policy_type)type, name, n, program, 19, &d);
        CHECK(st == FVM_OK || st == FVM_E_RANGE || (st == FVM_E_INVALID && n == 0));
        CHECK(d.action >= POLICY_ACTION_OPEN && d.action <= POLICY_ACTION_DENY);
        char label[64];
        policy_decision_label(&d, label, sizeof label);
        size_t matches = 0;
        policy_match_each(view, (policy_type)type, name, n, count_rule, &matches);
        if (st == FVM_OK)
            CHECK(policy_explain(view, (policy_type)type, name, n, NULL, 0, explanation, sizeof explanation, &err) ==
                  FVM_OK);
    }
    /* Every rule's own canonical pattern as a name. */
    size_t rules = policy_view_rule_count(view);
    for (uint32_t r = 0; r < rules && r < 32; r++) {
        policy_rule_info info;
        CHECK(policy_view_rule(view, r, &info) == FVM_OK);
        policy_decision d;
        if (info.pattern_len)
            policy_match(view, info.type, info.pattern, info.pattern_len, program, 19, &d);
        policy_rule_applies(view, r, program, 19);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    build_base();
    uint8_t *blob;
    size_t len;
    if (data[0] & 1) {
        len = size - 1;
        blob = aligned_alloc(8, (len + 8) & ~(size_t)7);
        memcpy(blob, data + 1, len);
    } else {
        len = base_len;
        blob = aligned_alloc(8, (len + 8) & ~(size_t)7);
        memcpy(blob, base_blob, len);
        /* (offset lo, offset hi, byte) triples, up to 16 of them. */
        size_t i = 1;
        for (int k = 0; k < 16 && i + 3 <= size; k++, i += 3) {
            size_t at = (size_t)(data[i] | data[i + 1] << 8) % len;
            blob[at] = data[i + 2];
        }
        if (len >= sizeof(policy_blob_header)) {
            policy_blob_header h;
            memcpy(&h, blob, sizeof h);
            h.checksum = policy_blob_checksum(blob, len);
            memcpy(blob, &h, sizeof h);
        }
        data += i;
        size -= i;
    }
    policy_view view;
    fvm_error err;
    if (policy_blob_open(blob, len, &view, &err) == FVM_OK)
        exercise(&view, data, size);
    else
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    free(blob);
    return 0;
}

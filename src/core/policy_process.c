/* policy_process.c - the [process] section's own pieces: hash patterns and
 * the start decision that combines a program's path and hash rules (see
 * policy_process.h for the language). The rest of a [process] rule (scope,
 * action, audit, image path patterns) is the common rule syntax of
 * policy_parse.c, which calls in here for hash patterns. */
#include "core/policy_process.h"

#include <string.h>

static const char hash_root[] = "sha256\\";

static uint16_t lower_unit(uint16_t u)
{
    return u >= 'A' && u <= 'Z' ? (uint16_t)(u - 'A' + 'a') : u;
}

static int is_hex(uint16_t u)
{
    u = lower_unit(u);
    return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'f');
}

int policy_process_is_hash(const uint16_t *in, size_t n)
{
    const char *prefix = POLICY_PROCESS_HASH_PREFIX;
    size_t len = strlen(prefix);
    if (!in || n < len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (lower_unit(in[i]) != (uint16_t)prefix[i])
            return 0;
    return 1;
}

size_t policy_process_hash_form(const uint16_t *in, size_t n, uint16_t out[POLICY_PROCESS_HASH_UNITS],
                                size_t *bad_at, fvm_error *err)
{
    size_t start = strlen(POLICY_PROCESS_HASH_PREFIX), digits = n - start;
    if (!policy_process_is_hash(in, n)) {
        if (bad_at)
            *bad_at = 0;
        fvm_error_set(err, FVM_E_INVALID, "a hash pattern starts with 'sha256:'");
        return 0;
    }
    for (size_t i = start; i < n; i++) {
        if (!is_hex(in[i])) {
            if (bad_at)
                *bad_at = i;
            fvm_error_set(err, FVM_E_INVALID, "a SHA-256 is 64 hexadecimal digits: character %u of the hash is "
                          "not one (wildcards are not allowed in a hash)", (unsigned)(i - start + 1));
            return 0;
        }
    }
    if (digits != 64) {
        if (bad_at)
            *bad_at = digits > 64 ? start + 64 : n;
        fvm_error_set(err, FVM_E_INVALID, "a SHA-256 is 64 hexadecimal digits, this one has %u", (unsigned)digits);
        return 0;
    }
    size_t w = 0;
    for (const char *r = hash_root; *r; r++)
        out[w++] = (uint16_t)*r;
    for (size_t i = start; i < n; i++)
        out[w++] = lower_unit(in[i]);
    return w;
}

static int pattern_is_hash(const uint16_t *pattern, size_t len)
{
    size_t root = strlen(hash_root);
    if (len != POLICY_PROCESS_HASH_UNITS)
        return 0;
    for (size_t i = 0; i < root; i++)
        if (lower_unit(pattern[i]) != (uint16_t)hash_root[i])
            return 0;
    return 1;
}

int policy_process_has_hash_rules(const policy_view *view)
{
    size_t count = view ? policy_view_rule_count(view) : 0;
    for (size_t i = 0; i < count; i++) {
        policy_rule_info info;
        if (policy_view_rule(view, (uint32_t)i, &info) == FVM_OK && info.type == POLICY_TYPE_PROCESS &&
            pattern_is_hash(info.pattern, info.pattern_len))
            return 1;
    }
    return 0;
}

fvm_status policy_process_decide(const policy_view *view, const uint16_t *image, size_t image_len,
                                 const char *hash_hex, const uint16_t *program, size_t program_len,
                                 policy_decision *out)
{
    fvm_status st = policy_match(view, POLICY_TYPE_PROCESS, image, image_len, program, program_len, out);
    if (st != FVM_OK || !hash_hex)
        return st;
    uint16_t name[POLICY_PROCESS_HASH_UNITS];
    size_t w = 0;
    for (const char *r = hash_root; *r; r++)
        name[w++] = (uint16_t)*r;
    for (size_t i = 0; i < 64; i++) {
        if (!hash_hex[i])
            return FVM_OK;   /* not a whole hash: the path decides */
        name[w++] = lower_unit((uint16_t)(uint8_t)hash_hex[i]);
    }
    policy_decision by_hash;
    if (policy_match(view, POLICY_TYPE_PROCESS, name, w, program, program_len, &by_hash) != FVM_OK) {
        *out = by_hash;   /* deny */
        return FVM_OK;
    }
    policy_rule_info info;
    if (!by_hash.is_default && policy_view_rule(view, by_hash.rule, &info) == FVM_OK &&
        pattern_is_hash(info.pattern, info.pattern_len))
        *out = by_hash;
    return FVM_OK;
}

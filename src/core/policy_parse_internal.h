/* policy_parse_internal.h - what policy_parse.c (the policy language: lines,
 * sections, rules, includes) and policy_canonical.c (a pattern's text ->
 * its canonical form) share and nobody else may use: the growable UTF-16
 * string and the canonical result, two small helpers, and the three
 * functions policy_canonical.c gives the parser. Not part of the runtime. */
#ifndef FVM_CORE_POLICY_PARSE_INTERNAL_H
#define FVM_CORE_POLICY_PARSE_INTERNAL_H

#include "core/policy.h"

#include <stdlib.h>

/* Grows *array to hold at least need elements. */
static inline int reserve(void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *grown = realloc(*array, n * elem);
    if (!grown)
        return 0;
    *array = grown;
    *cap = n;
    return 1;
}


static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* A growable UTF-16 string. */
typedef struct ustr {
    uint16_t *units;
    size_t len, cap;
} ustr;

/* What a pattern became: one canonical form, two for HKCR. */
typedef struct canonical {
    ustr forms[2];
    size_t count;
    uint32_t ntpath_flags;         /* file patterns: for warnings */
    size_t bad_at;                 /* [net] patterns: the unit an error is at (core/netrules.c) */
} canonical;

/* Defined in policy_canonical.c. */
void canonical_free(canonical *c);
fvm_status canonicalize(const policy_env *env, policy_type type, const uint16_t *in, size_t n, ntpath *scratch,
                        canonical *out, fvm_error *err);
fvm_status analyze_pattern(ustr *form, policy_pattern *counts, fvm_error *err);

#endif

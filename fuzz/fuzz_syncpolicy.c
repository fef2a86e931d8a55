/* fuzz_syncpolicy.c - libFuzzer target for the [sync] section parser and
 * matcher (core/syncpolicy), which read a box's policy.ini: outside input.
 *
 * Never crash or read out of bounds; every rule the parser keeps is a
 * canonical full path pattern; matching any pattern against a path derived
 * from the input terminates quickly (the matcher has no backtracking). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/syncpolicy.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

static const char *vars(void *ctx, const char *name, size_t len)
{
    return len == 1 && name[0] == 'X' ? "C:\\x" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sync_policy p;
    fvm_error err;
    fvm_status st = sync_policy_parse("fuzz.ini", (const char *)data, size, vars, NULL, NULL, NULL, &p, &err);
    if (st != FVM_OK)
        return 0;
    for (size_t i = 0; i < p.count; i++) {
        size_t n = strlen(p.rules[i].pattern);
        CHECK(n > 0);
        CHECK(!strchr(p.rules[i].pattern, '/'));
    }
    /* The input itself, cut at 512 bytes, as a path. */
    size_t n = size < 512 ? size : 512;
    sync_policy_decide(&p, (const char *)data, n, NULL);
    sync_policy_free(&p);
    return 0;
}

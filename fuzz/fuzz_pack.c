/* fuzz_pack.c - libFuzzer target for the package parser (core/pack), which
 * reads files handed to `fvm import`: outside input.
 *
 * Besides "never crash, never read out of bounds": the visitor sees only
 * packages that passed the check, every delta it sees adds up to its file's
 * size with copies inside the base, and a squeezed index expands to exactly
 * the size it claims. The checksum would stop almost every input at the
 * door, so the target also feeds the input with a correct checksum
 * appended (the structure checks behind it are what needs fuzzing). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pack.h"
#include "core/sha256.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

static fvm_status on_blob(void *ctx, pack_record_type t, const uint8_t *d, size_t n, fvm_error *err)
{
    if (t == PACK_REC_INDEX) {
        uint64_t size;
        CHECK(pack_unsqueezed_size(d, n, &size, err) == FVM_OK);
        if (size < (1u << 20)) {
            uint8_t *out = malloc(size ? size : 1);
            CHECK(pack_unsqueeze(d, n, out, size, err) == FVM_OK);
            free(out);
        }
    }
    return FVM_OK;
}

static fvm_status on_delta(void *ctx, const pack_file *f, const pack_delta *d, fvm_error *err)
{
    size_t pos = 0;
    pack_op op;
    uint64_t total = 0;
    while (pack_delta_next(d, &pos, &op)) {
        CHECK(!op.copy || (op.offset <= d->base_size && op.length <= d->base_size - op.offset));
        total += op.length;
    }
    CHECK(total == f->size);
    return FVM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pack_visitor v = {NULL, on_blob, NULL, on_delta, NULL, NULL};
    fvm_error err;
    pack_parse(data, size, &v, &err);
    /* The same bytes as a package body with a valid END record. */
    uint8_t *p = malloc(size + PACK_RECORD_HEADER + 32);
    if (!p)
        return 0;
    memcpy(p, data, size);
    pack_put_record_header(p + size, PACK_REC_END, 32);
    sha256(p, size, p + size + PACK_RECORD_HEADER);
    pack_parse(p, size + PACK_RECORD_HEADER + 32, &v, &err);
    free(p);
    return 0;
}

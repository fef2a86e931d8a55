/* fuzz_regfile.c - libFuzzer target for the registry delta's text format
 * (core/regfile), which is read from <box>\registry.dat: outside input.
 *
 * Besides "never crash, never read or write out of bounds", it checks the
 * property persistence relies on, and traps when it breaks: what the parser
 * accepts, written out again, parses to exactly the same keys and values
 * (so a save of a loaded tree loses nothing), and writing that again gives
 * the same text (the writer's output is canonical). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/regfile.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

/* A visitor that writes what it sees. */
static fvm_status copy_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    return regfile_put_key(ctx, path, len, err);
}

static fvm_status copy_value(void *ctx, const uint16_t *name, size_t len, uint32_t type, const uint8_t *data,
                             size_t size, fvm_error *err)
{
    return regfile_put_value(ctx, name, len, type, data, size, err);
}

/* Parses text and writes what it reports into out; the parse status. */
static fvm_status rewrite(const char *text, size_t len, regfile_buf *out)
{
    fvm_error err;
    regfile_visitor v = {copy_key, copy_value, out};
    CHECK(regfile_put_header(out, &err) == FVM_OK);
    fvm_status st = regfile_parse(text, len, &v, &err);
    if (st == FVM_OK)
        CHECK(regfile_put_end(out, &err) == FVM_OK);
    else
        CHECK(err.message[0] != 0 && (st == FVM_E_PARSE || st == FVM_E_UNSUPPORTED || st == FVM_E_NOMEM));
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    /* The input is mostly a registry file: prepend the header unless the
     * first byte asks for raw input, so the fuzzer reaches the body. */
    char *text = malloc(size + 32);
    if (!text)
        return 0;
    size_t len = 0;
    if (size == 0 || data[0] != 'F') {
        memcpy(text, REGFILE_HEADER "\n", sizeof REGFILE_HEADER);
        len = sizeof REGFILE_HEADER;
    }
    memcpy(text + len, data, size);
    len += size;

    regfile_buf once = {0}, twice = {0};
    if (rewrite(text, len, &once) == FVM_OK) {
        CHECK(rewrite(once.data, once.len, &twice) == FVM_OK);
        CHECK(twice.len == once.len && !memcmp(twice.data, once.data, once.len));
    }
    regfile_buf_free(&once);
    regfile_buf_free(&twice);
    free(text);
    return 0;
}

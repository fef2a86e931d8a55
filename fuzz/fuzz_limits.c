/* fuzz_limits.c - libFuzzer target for the box limits' text (fvm create
 * options, fvm set arguments and box.ini values are outside input).
 * Byte 0 picks the limit; the rest, NUL-terminated, is the value and also a
 * key=value assignment. Never crash; an accepted value prints to a text
 * that parses back to the same value; messages are terminated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    limit_key key = (limit_key)(data[0] % LIMIT_KEY_COUNT);
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    fvm_error err;
    uint64_t v;
    if (limit_value_parse(key, text, &v, &err) == FVM_OK) {
        char printed[32];
        uint64_t back;
        limit_format(key, v, printed, sizeof printed);
        CHECK(limit_value_parse(key, printed, &back, &err) == FVM_OK && back == v);
    } else {
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    }
    limit_key k2;
    if (limit_assignment_parse(text, &k2, &v, &err) == FVM_OK)
        CHECK(k2 < LIMIT_KEY_COUNT);
    else
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
    free(text);
    return 0;
}

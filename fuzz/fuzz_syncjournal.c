/* fuzz_syncjournal.c - libFuzzer target for the commit journal parser
 * (core/syncjournal), which reads <box>\commit.journal: outside input.
 *
 * Never crash; what it accepts, formatted again and parsed again, gives the
 * same steps (the "done" marks aside): a journal means one thing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/syncjournal.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sync_journal j, k;
    fvm_error err;
    if (sync_journal_parse((const char *)data, size, &j, &err) != FVM_OK)
        return 0;
    CHECK(j.done_count <= j.count);
    char *text;
    size_t len;
    CHECK(sync_journal_format(&j, &text, &len, &err) == FVM_OK);
    CHECK(sync_journal_parse(text, len, &k, &err) == FVM_OK);
    CHECK(k.count == j.count && k.done_count == 0);
    for (size_t i = 0; i < j.count; i++) {
        CHECK(k.steps[i].kind == j.steps[i].kind);
        CHECK(!strcmp(k.steps[i].path, j.steps[i].path));
        CHECK(!j.steps[i].path2 == !k.steps[i].path2);
        CHECK(!j.steps[i].path2 || !strcmp(k.steps[i].path2, j.steps[i].path2));
    }
    free(text);
    sync_journal_free(&j);
    sync_journal_free(&k);
    return 0;
}

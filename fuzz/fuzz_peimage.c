/* fuzz_peimage.c - libFuzzer target for core/peimage: any head of a file.
 * Checks: never reads past the bytes given (ASan), asks for more only within
 * PEIMAGE_MAX_HEAD and only beyond what it had, and gives the same answer
 * when handed the bytes it asked for. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/peimage.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t need = 0;
    uint16_t machine;
    int pe32;
    peimage_kind kind = peimage_classify(data, size, &need, &machine, &pe32);
    if (kind == PEIMAGE_NEED_MORE) {
        CHECK(need > size && need <= PEIMAGE_MAX_HEAD);
    } else {
        CHECK(need == 0);
    }
    if (kind == PEIMAGE_X64)
        CHECK(machine == 0x8664 && !pe32);
    /* A prefix that already decides must decide the same with more bytes
     * only when it did not need them: classify the first half too. */
    size_t half = size / 2;
    peimage_kind first = peimage_classify(data, half, &need, NULL, NULL);
    if (first == PEIMAGE_X64 || first == PEIMAGE_PE_OTHER || first == PEIMAGE_ELF || first == PEIMAGE_SCRIPT)
        CHECK(first == kind);
    return 0;
}

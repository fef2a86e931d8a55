/* fuzz_printname.c - libFuzzer target for the printer-name reader
 * (core/printname.c): printer names come from boxed programs.
 *
 * The input is UTF-16 units. Never crash; a decided name lies inside the
 * input, holds no comma and no NUL, is not empty for printers, jobs and
 * ports and empty otherwise; reading the decided name again as a printer
 * gives it back unchanged (a name decided once is decided the same way
 * when a program passes it as written). The audit name is never longer than
 * its room and finds the printer again. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/printname.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = size / 2;
    if (n > 1024)
        return 0;
    uint16_t in[1024];
    memcpy(in, data, n * 2);
    printname pn;
    printname_parse(in, n, &pn);
    int named = pn.kind == PRINTNAME_PRINTER || pn.kind == PRINTNAME_JOB || pn.kind == PRINTNAME_PORT;
    CHECK(named ? pn.len > 0 : pn.len == 0);
    if (!named)
        return 0;
    CHECK(pn.name >= in && pn.name + pn.len <= in + n);
    for (size_t i = 0; i < pn.len; i++)
        CHECK(pn.name[i] != ',' && pn.name[i] != 0);
    if (pn.kind == PRINTNAME_PRINTER && !(pn.len >= 2 && pn.name[0] == '\\' && pn.name[1] == '\\')) {
        printname again;
        printname_parse(pn.name, pn.len, &again);
        CHECK(again.kind == PRINTNAME_PRINTER && again.len == pn.len && !memcmp(again.name, pn.name, pn.len * 2));
    }
    uint16_t out[64];
    size_t m = printname_audit_name(pn.name, pn.len, in, n, out, 64);
    CHECK(m <= 64);
    if (pn.len + 12 <= 64)
        CHECK(printname_audit_printer_len(out, m) == pn.len);
    return 0;
}

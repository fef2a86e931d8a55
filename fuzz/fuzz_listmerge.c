/* fuzz_listmerge.c - libFuzzer target for core/listmerge.c, the merged
 * listing of box folders and keys (names come from the file system and the
 * registry: outside input).
 *
 * The input is a list of entries: one byte (bit 0: from the box, bit 1:
 * LISTMERGE_DOTS_FIRST for the whole run when on the first entry), one
 * length byte, then that many UTF-16 units. The merge must leave the names
 * strictly ascending, list every name given, and keep the box's entry for
 * every name the box has. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/listmerge.h"

#define MAX_ENTRIES 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static listmerge_entry entries[MAX_ENTRIES], given[MAX_ENTRIES], tmp[MAX_ENTRIES];
    static uint16_t units[MAX_ENTRIES][64];
    size_t n = 0, at = 0;
    unsigned flags = size && (data[0] & 2) ? LISTMERGE_DOTS_FIRST : 0;
    while (at + 2 <= size && n < MAX_ENTRIES) {
        uint8_t side = data[at], len = (uint8_t)(data[at + 1] % 64);
        at += 2;
        if (at + (size_t)len * 2 > size)
            len = (uint8_t)((size - at) / 2);
        for (size_t k = 0; k < len; k++)
            units[n][k] = (uint16_t)(data[at + 2 * k] | data[at + 2 * k + 1] << 8);
        at += (size_t)len * 2;
        entries[n].name = units[n];
        entries[n].len = len;
        entries[n].ref = (uint32_t)n;
        entries[n].from_box = side & 1;
        n++;
    }
    memcpy(given, entries, n * sizeof *given);
    size_t kept = listmerge_sort_unique(entries, n, tmp, flags);
    if (kept > n)
        abort();
    for (size_t i = 1; i < kept; i++)
        if (listmerge_compare_names(entries[i - 1].name, entries[i - 1].len, entries[i].name, entries[i].len,
                                    flags) >= 0)
            abort();
    for (size_t i = 0; i < n; i++) {
        size_t found = kept;
        for (size_t k = 0; k < kept && found == kept; k++)
            if (!listmerge_compare_names(entries[k].name, entries[k].len, given[i].name, given[i].len, flags))
                found = k;
        if (found == kept)
            abort();
        if (given[i].from_box && !entries[found].from_box)
            abort();
        if (entries[found].ref >= n)
            abort();
    }
    return 0;
}

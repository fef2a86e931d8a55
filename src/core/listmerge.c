/* listmerge.c - the merged listing of a box folder or key (listmerge.h).
 *
 * A bottom-up merge sort: O(n log n), stable, no recursion and no
 * allocation, then one pass that keeps the first of each run of equal
 * names. Ties sort the box's entry first, so that pass keeps it. */
#include "core/listmerge.h"

#include <string.h>

#include "core/ntpath.h"

static int dot_rank(const uint16_t *name, size_t len)
{
    if (len == 1 && name[0] == '.')
        return 1;
    if (len == 2 && name[0] == '.' && name[1] == '.')
        return 2;
    return 3;
}

int listmerge_compare_names(const uint16_t *a, size_t alen, const uint16_t *b, size_t blen, unsigned flags)
{
    if (flags & LISTMERGE_DOTS_FIRST) {
        int ra = dot_rank(a, alen), rb = dot_rank(b, blen);
        if (ra != rb)
            return ra < rb ? -1 : 1;
        if (ra != 3)
            return 0;
    }
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        uint16_t x = ntpath_upcase(NULL, a[i]), y = ntpath_upcase(NULL, b[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int entry_compare(const listmerge_entry *a, const listmerge_entry *b, unsigned flags)
{
    int c = listmerge_compare_names(a->name, a->len, b->name, b->len, flags);
    if (c)
        return c;
    return a->from_box == b->from_box ? 0 : a->from_box ? -1 : 1;
}

size_t listmerge_sort_unique(listmerge_entry *entries, size_t count, listmerge_entry *tmp, unsigned flags)
{
    if (!entries || !count)
        return 0;
    for (size_t width = 1; width < count; width *= 2) {
        for (size_t lo = 0; lo < count; lo += 2 * width) {
            size_t mid = lo + width < count ? lo + width : count;
            size_t hi = lo + 2 * width < count ? lo + 2 * width : count;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = entry_compare(&entries[j], &entries[i], flags) < 0 ? entries[j++] : entries[i++];
            while (i < mid)
                tmp[k++] = entries[i++];
            while (j < hi)
                tmp[k++] = entries[j++];
        }
        memcpy(entries, tmp, count * sizeof *entries);
    }
    size_t kept = 1;
    for (size_t i = 1; i < count; i++) {
        const listmerge_entry *last = &entries[kept - 1];
        if (listmerge_compare_names(last->name, last->len, entries[i].name, entries[i].len, flags) != 0)
            entries[kept++] = entries[i];
    }
    return kept;
}

/* listmerge.h - one merged, sorted listing of a folder or key that exists
 * both in the box and on the host.
 *
 * A boxed folder (file_dir.c) or key (key_read.c) lists as one view: the
 * host's entries and the box's, sorted by upper-cased name (NTFS and the
 * registry order names so), a box entry replacing the host entry of the same
 * name. The caller collects both sides into one array of entries that point
 * at its own storage (name and a reference); listmerge_sort_unique orders it
 * and keeps one entry per name. Portable and allocation-free: the caller
 * gives the scratch space, so the runtime (no C runtime) and the unit tests
 * use the same code. */
#ifndef FVM_CORE_LISTMERGE_H
#define FVM_CORE_LISTMERGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct listmerge_entry {
    const uint16_t *name;   /* not NUL-terminated */
    size_t len;             /* units */
    uint32_t ref;           /* the caller's: where the entry lives */
    uint8_t from_box;       /* 1: the box's entry, 0: the host's */
} listmerge_entry;

/* "." and ".." sort before every other name, in that order (folders). */
#define LISTMERGE_DOTS_FIRST 0x1

/* Compares two names as the listing orders them: upper-cased unit by unit
 * (ntpath_upcase), a shorter prefix first; with LISTMERGE_DOTS_FIRST "." and
 * ".." first. */
int listmerge_compare_names(const uint16_t *a, size_t alen, const uint16_t *b, size_t blen, unsigned flags);

/* Sorts entries (both sides, any order) and drops every entry whose name
 * equals an earlier one's: of equal names the box's is kept (then the one
 * given first). Stable. tmp: count entries of scratch. Returns the number
 * of entries kept, at the start of entries. */
size_t listmerge_sort_unique(listmerge_entry *entries, size_t count, listmerge_entry *tmp, unsigned flags);

#endif

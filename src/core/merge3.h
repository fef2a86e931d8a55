/* merge3.h - three-way merge of text files, line by line (for fvm rebase).
 *
 * Given the base a box copy started from, the box's version ("ours") and
 * the host's newer version ("theirs"), the result keeps every change either
 * side made to the base. A stretch both changed differently is a conflict:
 * written as
 *     <<<<<<< OURS_LABEL
 *     (ours)
 *     =======
 *     (theirs)
 *     >>>>>>> THEIRS_LABEL
 * and counted. The idea is diff3's: lines of the base that both sides kept
 * (by a longest common subsequence with each side) split the files into
 * stable lines and changed chunks; a chunk changed on one side only takes
 * that side, the same change on both sides is taken once.
 *
 * Text only: a NUL byte makes it FVM_E_UNSUPPORTED. The LCS is a dynamic
 * programme over the part between the common prefix and suffix, refused
 * (FVM_E_RANGE) beyond MERGE3_MAX_CELLS cells. Portable C11; allocates. */
#ifndef FVM_CORE_MERGE3_H
#define FVM_CORE_MERGE3_H

#include <stddef.h>

#include "core/error.h"

#define MERGE3_MAX_CELLS (16u * 1024u * 1024u)

typedef struct merge3_result {
    char *text;          /* malloc'd, text[len] == 0 */
    size_t len;
    unsigned conflicts;  /* conflicting chunks written with markers */
} merge3_result;

fvm_status merge3(const char *base, size_t base_len, const char *ours, size_t ours_len, const char *theirs,
                  size_t theirs_len, const char *ours_label, const char *theirs_label, merge3_result *out,
                  fvm_error *err);

void merge3_free(merge3_result *r);

#endif

/* providerline.h - a decision provider's question, passed on for a box
 * with a Wine server of its own (cli/relay.c).
 *
 * The question is one line of tab-separated fields (include/fvm/provider.h):
 * FVMASK/1, the box, the pid, the program, the type, the operation, the
 * name. The relay reads it from any process of the box, so it sets the box
 * field itself: a program cannot ask in another box's name. The rest is
 * passed on as it came; the provider parses it as from any box. Pure. */
#ifndef FVM_CORE_PROVIDERLINE_H
#define FVM_CORE_PROVIDERLINE_H

#include <stddef.h>

#include "core/error.h"

/* line[0..len) with its second field replaced by box (no tab, newline or
 * NUL in it) into out; *out_len its length. FVM_E_INVALID for a line
 * without a second field or a box name that is not one field, FVM_E_RANGE
 * when out is too small. */
fvm_status provider_line_set_box(const char *line, size_t len, const char *box, char *out, size_t cap,
                                 size_t *out_len, fvm_error *err);

#endif

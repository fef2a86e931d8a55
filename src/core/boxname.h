/* boxname.h - validation of box names.
 *
 * A box name becomes a folder name under the FVM root and part of kernel
 * object names, so it is restricted to a portable, unambiguous alphabet and
 * never a Windows reserved device name. */
#ifndef FVM_CORE_BOXNAME_H
#define FVM_CORE_BOXNAME_H

#include "core/error.h"

#define FVM_BOX_NAME_MAX_LEN 32

/* Returns FVM_OK or FVM_E_INVALID with a message naming the rule broken and
 * the character position. `name` is UTF-8 (any non-ASCII byte is refused). */
fvm_status fvm_box_name_validate(const char *name, fvm_error *err);

#endif

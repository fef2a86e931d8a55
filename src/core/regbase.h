/* regbase.h - the base version of a registry key's values, for commit's
 * three-way check.
 *
 * When the runtime first copies a host key up into the box, it records in
 * the box index (the entry's base, as for a file) a fingerprint of the host
 * key's values as they were: their count and a digest of (name, type,
 * data) of each. `fvm commit` computes the same over the host key as it is
 * now: a different fingerprint means the host changed a value of that key
 * since the box copied it, and the box's changes to that key's values are
 * conflicts (never silently written over the host's), as for files.
 *
 * The digest is order-independent (the sum, lane by lane, of each value's
 * SHA-256), so any enumeration order gives the same fingerprint. Names are
 * compared as stored (the host keeps a value's case). It is not meant to
 * resist a crafted collision: the host's values are not the box's to
 * choose. Portable C11, no allocation (usable in the runtime). */
#ifndef FVM_CORE_REGBASE_H
#define FVM_CORE_REGBASE_H

#include <stddef.h>
#include <stdint.h>

#include "core/boxindex.h"

typedef struct regbase_ctx {
    uint64_t sum[4];
    uint64_t count;
} regbase_ctx;

void regbase_init(regbase_ctx *ctx);
/* One value of the key: name in UTF-16 units (not terminated), type, data. */
void regbase_add_value(regbase_ctx *ctx, const uint16_t *name, size_t name_len, uint32_t type, const void *data,
                       size_t size);
/* The fingerprint as an index base: size = the number of values, mtime =
 * REGBASE_MARK (tells a key's base from a file's), content_hash = digest. */
void regbase_final(const regbase_ctx *ctx, boxindex_base *out);

#define REGBASE_MARK ((int64_t)0x5245474241534531ll)   /* "REGBASE1" */

/* 1 when both are the same fingerprint. */
int regbase_equal(const boxindex_base *a, const boxindex_base *b);

#endif

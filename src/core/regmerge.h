/* regmerge.h - the three-way decision for a box's registry values when the
 * host changed their key (fvm rebase, cli/regrebase.c).
 *
 * A box keeps, per key, only the values it set or deleted (an overlay over
 * the host key; a deletion is a tombstone value). When the host changes the
 * key after the box copied it, each of the box's values is judged against
 * the key's base (the host's values when the box copied it, kept by rebase)
 * and the host's values now, as a text merge judges lines:
 *   - the box's value is what the host has now: nothing of the box's own is
 *     left in it, FOLLOW (drop it; the box sees the host's value);
 *   - the host did not change that value (host = base): KEEP the box's;
 *   - the box had not really changed it (box = base) but the host did:
 *     FOLLOW;
 *   - both changed it, differently: CONFLICT (fvm commit decides).
 * "Absent" and a tombstone are the same thing. Value names compare without
 * case, as the registry does. Portable C11, no allocation. */
#ifndef FVM_CORE_REGMERGE_H
#define FVM_CORE_REGMERGE_H

#include <stddef.h>
#include <stdint.h>

/* A value; type REGMERGE_DELETED is a tombstone (the value deleted). */
typedef struct regmerge_value {
    const uint16_t *name;
    size_t name_len;
    uint32_t type;
    const uint8_t *data;
    size_t size;
} regmerge_value;

#define REGMERGE_DELETED 0x46564D44u   /* = REGFILE_TYPE_DELETED */

typedef enum regmerge_decision {
    REGMERGE_KEEP,       /* the box's own change: it stays */
    REGMERGE_FOLLOW,     /* no change of the box's own is left: drop it, the host's shows */
    REGMERGE_CONFLICT,   /* both changed it, differently */
} regmerge_decision;

/* The value of that name in values[0..count), or NULL (absent). */
const regmerge_value *regmerge_find(const regmerge_value *values, size_t count, const uint16_t *name,
                                    size_t name_len);

/* One box value against the base's and the host's values of its key. */
regmerge_decision regmerge_decide(const regmerge_value *box, const regmerge_value *base, size_t base_count,
                                  const regmerge_value *host, size_t host_count);

#endif

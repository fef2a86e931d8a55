/* regmerge.c - three-way decision for a box's registry values (regmerge.h). */
#include "core/regmerge.h"

#include <string.h>

#include "core/ntpath.h"

static int same_name(const uint16_t *a, size_t an, const uint16_t *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (a[i] != b[i] && ntpath_upcase(NULL, a[i]) != ntpath_upcase(NULL, b[i]))
            return 0;
    return 1;
}

const regmerge_value *regmerge_find(const regmerge_value *values, size_t count, const uint16_t *name,
                                    size_t name_len)
{
    for (size_t i = 0; i < count; i++)
        if (same_name(values[i].name, values[i].name_len, name, name_len))
            return values[i].type == REGMERGE_DELETED ? NULL : &values[i];
    return NULL;
}

/* Equal as values: both absent, or the same type and bytes. */
static int same_value(const regmerge_value *a, const regmerge_value *b)
{
    if (a && a->type == REGMERGE_DELETED)
        a = NULL;
    if (b && b->type == REGMERGE_DELETED)
        b = NULL;
    if (!a || !b)
        return a == b;
    return a->type == b->type && a->size == b->size && (!a->size || !memcmp(a->data, b->data, a->size));
}

regmerge_decision regmerge_decide(const regmerge_value *box, const regmerge_value *base, size_t base_count,
                                  const regmerge_value *host, size_t host_count)
{
    const regmerge_value *was = regmerge_find(base, base_count, box->name, box->name_len);
    const regmerge_value *now = regmerge_find(host, host_count, box->name, box->name_len);
    if (same_value(box, now))
        return REGMERGE_FOLLOW;
    if (same_value(now, was))
        return REGMERGE_KEEP;
    if (same_value(box, was))
        return REGMERGE_FOLLOW;
    return REGMERGE_CONFLICT;
}

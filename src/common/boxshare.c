/* boxshare.c - the layout of the box's published section (boxshare.h). */
#include "common/boxshare.h"

#include <string.h>

#include "common/boxlimits.h"
#include "core/portmap.h"

#define PART_ALIGN 64u

static uint32_t align_part(uint64_t at)
{
    return (uint32_t)((at + PART_ALIGN - 1) & ~(uint64_t)(PART_ALIGN - 1));
}

uint32_t fvm_shared_layout(fvm_shared_header *h, int ports, size_t policy_size)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, FVM_SHARED_MAGIC, 8);
    uint64_t at = align_part(sizeof *h);
    h->hint_offset = (uint32_t)at;
    at = align_part(at + sizeof(fvm_limits_hint));
    if (ports) {
        h->ports_offset = (uint32_t)at;
        at = align_part(at + sizeof(portmap));
    }
    if (policy_size) {
        if (policy_size > 0x40000000u)
            return 0;
        h->policy_offset = (uint32_t)at;
        h->policy_size = (uint32_t)policy_size;
        at = align_part(at + policy_size);
    }
    h->size = (uint32_t)at;
    return h->size;
}

/* [offset, offset + size) lies in the view, past the header, aligned. */
static int part_fits(uint32_t offset, uint64_t size, size_t view_size)
{
    return offset >= sizeof(fvm_shared_header) && offset % 8 == 0 && (uint64_t)offset + size <= view_size;
}

int fvm_shared_open(const void *view, size_t view_size, fvm_shared_parts *parts)
{
    memset(parts, 0, sizeof *parts);
    if (!view || view_size < sizeof(fvm_shared_header))
        return 0;
    fvm_shared_header h;
    memcpy(&h, view, sizeof h);   /* one read of each field: the section is shared */
    if (memcmp(h.magic, FVM_SHARED_MAGIC, 8) != 0 || h.size > view_size ||
        !part_fits(h.hint_offset, sizeof(fvm_limits_hint), h.size) ||
        (h.ports_offset && !part_fits(h.ports_offset, sizeof(portmap), h.size)) ||
        (h.policy_offset && (!h.policy_size || !part_fits(h.policy_offset, h.policy_size, h.size))))
        return 0;
    const uint8_t *base = view;
    parts->hint = base + h.hint_offset;
    parts->ports = h.ports_offset ? base + h.ports_offset : NULL;
    parts->policy = h.policy_offset ? base + h.policy_offset : NULL;
    parts->policy_size = h.policy_offset ? h.policy_size : 0;
    return 1;
}

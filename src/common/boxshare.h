/* boxshare.h - the one section a running box's broker publishes to the
 * box's processes (FVM_OBJ_SHARED): which resource limits are on
 * (boxlimits.h), the loopback port map (core/portmap.h) and the compiled
 * policy (core/policy.h), at the offsets its header gives.
 *
 * Why one section: every boxed process maps what the broker publishes at
 * its start, and under Wine each named section costs an open, a query, a
 * descriptor passed over the server's socket and a mapping (about 0.25 ms
 * of a process start each); three sections were three of those. The parts
 * keep their own rules: the broker alone writes (its view is the only
 * writable one), processes map the whole section read-only and never
 * trust it further than their own box (a boxed program reaches it only by
 * stepping around the hooks, and then changes only its own box's view;
 * the broker decides from its private copy of the policy, not this one). */
#ifndef FVM_COMMON_BOXSHARE_H
#define FVM_COMMON_BOXSHARE_H

#include <stddef.h>
#include <stdint.h>

#define FVM_SHARED_MAGIC "FVMSHR01"

typedef struct fvm_shared_header {
    char magic[8];             /* FVM_SHARED_MAGIC, no NUL */
    uint32_t size;             /* the whole published layout, bytes (the section is page-rounded) */
    uint32_t hint_offset;      /* fvm_limits_hint */
    uint32_t ports_offset;     /* portmap; 0 when the box's net is shared (no map) */
    uint32_t policy_offset;    /* the compiled policy blob; 0 when the box has none */
    uint32_t policy_size;      /* its bytes */
    uint32_t reserved;
} fvm_shared_header;

/* Lays the parts out for a box with (ports != 0) or without a port map and
 * a policy blob of policy_size bytes (0: none): fills h (magic and
 * offsets) and returns the bytes the section needs, 0 if too large. */
uint32_t fvm_shared_layout(fvm_shared_header *h, int ports, size_t policy_size);

/* The parts of a mapped section of view_size bytes, checked: every part
 * inside the view, aligned, not overlapping the header. NULL for an absent
 * part. Returns 0 (all parts NULL) when the header is damaged. */
typedef struct fvm_shared_parts {
    const void *hint;      /* fvm_limits_hint */
    const void *ports;     /* portmap */
    const void *policy;    /* blob */
    size_t policy_size;
} fvm_shared_parts;
int fvm_shared_open(const void *view, size_t view_size, fvm_shared_parts *parts);

#endif

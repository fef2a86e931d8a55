/* guard.h - reading and writing the caller's memory without trusting it.
 *
 * A hook reads the OBJECT_ATTRIBUTES, names and buffers a program passes;
 * Windows answers a bad pointer with STATUS_ACCESS_VIOLATION, so a hook must
 * never fault where the real call would not. These probes touch the caller's
 * memory under a fault guard (guard.c) and say whether it is there. */
#ifndef FVM_RUNTIME_GUARD_H
#define FVM_RUNTIME_GUARD_H

#include "runtime/runtime.h"

/* Copies n bytes from src to dst; FALSE (dst partly written) if either
 * faults. Costs a plain copy when nothing faults. */
BOOL guard_copy(void *dst, const void *src, SIZE_T n);

/* Whether [p, p+n) can be read / written (a byte per page is touched;
 * writes put back the byte they read). */
BOOL guard_readable(const void *p, SIZE_T n);
BOOL guard_writable(void *p, SIZE_T n);

/* STATUS_SUCCESS when the attributes, their UNICODE_STRING and its buffer
 * can be read; STATUS_ACCESS_VIOLATION otherwise (what the system call
 * returns for them). A NULL oa or name is the real call's to judge: success. */
NTSTATUS guard_attributes(const OBJECT_ATTRIBUTES *oa);

/* The same for a counted string and its buffer (a NULL one is the real
 * call's to judge). */
NTSTATUS guard_unicode(const UNICODE_STRING *us);

/* At the top of a hook: returns what the system call would for unreadable
 * attributes, before anything reads them. */
#define GUARD_ATTRIBUTES(oa)                                   \
    do {                                                       \
        NTSTATUS guard_status_ = guard_attributes(oa);         \
        if (guard_status_ < 0)                                 \
            return guard_status_;                              \
    } while (0)

#endif

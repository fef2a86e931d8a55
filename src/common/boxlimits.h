/* boxlimits.h - a box's resource limits as box.ini holds them (issue 12),
 * read with the core's strict parser (core/limits.h), and the broker's
 * read-only hint section that tells boxed processes which limits are on.
 *
 * box.ini keys, in [box]: cpu, memory, process_memory, io_bandwidth,
 * io_ops, procs (the numbers as limit_format prints them, e.g. cpu=25%,
 * memory=512M). fvm create and fvm set write them; the broker reads them at
 * start and again whenever box.ini changes, so a running box follows. */
#ifndef FVM_COMMON_BOXLIMITS_H
#define FVM_COMMON_BOXLIMITS_H

#include <windows.h>

#include "core/limits.h"

/* Reads every limit from box.ini into out (absent: 0). A value that does
 * not parse is left 0 and its message goes into problem (when problem is
 * not NULL; the first problem only); returns FALSE then. */
BOOL box_limits_read(const wchar_t *ini, box_limits *out, char *problem, size_t problem_cap);

/* Writes one limit into box.ini (value 0 removes the key). */
BOOL box_limits_write(const wchar_t *ini, limit_key key, uint64_t value);

/* The broker's hint to boxed processes (in the section it publishes,
 * boxshare.h: the broker writes it, processes map it read-only): which
 * limits are on now. Only a hint on whether to ask: the broker holds every
 * count and decides. */
typedef struct fvm_limits_hint {
    volatile LONG generation;     /* changes with every update */
    volatile LONG memory_limited; /* memory or process-memory is set: commits ask the broker */
    volatile LONG io_limited;     /* io-bandwidth or io-ops is set */
} fvm_limits_hint;

/* What the box's processes read and wrote from files while no I/O limit is
 * on (FVM_OBJ_IO_TALLY section: the broker creates it, processes map it
 * writable and add to it), so that fvm stats shows an I/O rate for every
 * box without making an unlimited box ask the broker. Written by boxed
 * code, so only as true as the box: shown, never used for a limit (a
 * limited box's I/O is counted by the broker itself, from its leases). */
typedef struct fvm_io_tally {
    volatile LONG64 bytes[2];     /* [read, write] */
    volatile LONG64 ops[2];
} fvm_io_tally;

#endif

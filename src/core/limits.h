/* limits.h - a box's resource limits (issue 12): their names, their text
 * and their checks, in one place for fvm create, fvm set, box.ini and the
 * broker.
 *
 * A limit is a number, 0 meaning "no limit":
 *   cpu             percent of one CPU the whole box may use, 1..100
 *                   ("25%" or "25")
 *   memory          bytes of memory the whole box may commit ("512M")
 *   process-memory  bytes one process of the box may commit
 *   io-bandwidth    bytes per second of file reads and writes ("20MB/s")
 *   io-ops          file reads and writes per second ("500" or "500/s")
 *   procs           processes at once
 * Sizes use binary units (K = 1024, M = 2^20, G = 2^30, T = 2^40; "MB",
 * "MiB" and "M" are the same), so 20MB/s moves 256 MiB in 12.8 s. The text
 * "none" clears a limit. Everything is strict: trailing junk, zero, a cpu
 * share over 100% or an unknown unit is refused with a message that names
 * the limit and what is wrong. */
#ifndef FVM_CORE_LIMITS_H
#define FVM_CORE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum limit_key {
    LIMIT_CPU,
    LIMIT_MEMORY,
    LIMIT_PROCESS_MEMORY,
    LIMIT_IO_BANDWIDTH,
    LIMIT_IO_OPS,
    LIMIT_PROCS,
    LIMIT_KEY_COUNT
} limit_key;

typedef struct box_limits {
    uint64_t value[LIMIT_KEY_COUNT];   /* 0: no limit */
} box_limits;

/* The smallest memory limits accepted: below this no Windows program starts. */
#define LIMIT_MEMORY_MIN   (4ull << 20)
#define LIMIT_IO_BANDWIDTH_MIN (4ull << 10)

/* "cpu", "memory", ... (the fvm set / --option spelling). */
const char *limit_name(limit_key key);
/* "cpu", "memory", "process_memory", ... (the box.ini key). */
const char *limit_ini_key(limit_key key);

/* A limit's name, either spelling ("io-bandwidth", "io_bandwidth"). */
fvm_status limit_key_parse(const char *name, size_t len, limit_key *out, fvm_error *err);

/* A value for key; "none" gives 0. */
fvm_status limit_value_parse(limit_key key, const char *text, uint64_t *out, fvm_error *err);

/* "key=value" (fvm set). */
fvm_status limit_assignment_parse(const char *text, limit_key *key, uint64_t *value, fvm_error *err);

/* The value as a person reads it: "25%", "512M", "20M/s", "500/s", "20",
 * "none". Always terminated; cap of 32 is enough. */
void limit_format(limit_key key, uint64_t value, char *out, size_t cap);

#endif

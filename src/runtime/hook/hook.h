/* hook.h - inline hooks on x64 functions, installed atomically in batches.
 *
 * Each hooked function gets a 5-byte `jmp rel32` at its first byte. It
 * jumps to a relay (`jmp [rip+0]; dq detour`) in a 64 KiB block allocated
 * within +-2 GB of the function, and the same block holds the trampoline:
 * the overwritten instructions, relocated by core/x64dis, and a jump back.
 * Because the trampoline is near the original, RIP-relative operands in the
 * stolen bytes always stay in reach.
 *
 * A batch is all-or-nothing: every target is decoded and its trampoline
 * built before any byte of any function changes; if one target cannot be
 * hooked the call fails, names the function and the byte in `why`, and the
 * process is left as it was. The patches themselves are written with every
 * other thread of the process suspended; a thread stopped inside the bytes
 * being replaced is moved to the same instruction in the trampoline. Works
 * from DllMain (loader lock held) and in a single-threaded process.
 *
 * Freestanding: uses only ntdll and kernel32, no heap and no C runtime. */
#ifndef FVM_RUNTIME_HOOK_H
#define FVM_RUNTIME_HOOK_H

#include <windows.h>
#include <winternl.h>
#include <stddef.h>

typedef struct hook_spec {
    const char *name;  /* for messages, e.g. "NtCreateFile" or "ntdll!NtCreateFile" */
    void *target;      /* the function to patch */
    void *detour;      /* where calls to target go instead */
    void **original;   /* receives the trampoline: call it to run the original */
} hook_spec;

/* The most specs one batch may hold. */
#define HOOK_MAX_BATCH 256

/* Installs every hook in specs, or none. On failure writes a message naming
 * the function (and the byte, for undecodable code) to why and returns:
 *   STATUS_INVALID_PARAMETER     a NULL field, too many specs, overlapping
 *                                targets, or a target that is not code
 *   STATUS_NOT_SUPPORTED         code the engine refuses to relocate
 *                                (unknown opcode, function shorter than the
 *                                patch, branch into the patched bytes...)
 *   STATUS_INVALID_IMAGE_FORMAT  bytes that are not valid x64 code
 *   STATUS_NO_MEMORY             no free memory within +-2 GB of a target
 *   STATUS_CONFLICTING_ADDRESSES a RIP-relative operand out of the
 *                                trampoline's reach
 *   STATUS_RETRY                 another thread stopped at a place that
 *                                cannot be moved (try again)
 *   other                        the failing system call's status
 * why may be NULL; it is always NUL-terminated when why_size > 0.
 * Concurrent calls are serialised. */
NTSTATUS hook_install_batch(hook_spec *specs, size_t count, char *why, size_t why_size);

/* Counters, for tests and diagnostics. */
typedef struct hook_stats {
    unsigned long batches;           /* batches installed */
    unsigned long hooks;             /* hooks installed */
    unsigned long blocks;            /* 64 KiB near blocks allocated */
    unsigned long threads_suspended; /* other threads suspended, summed over batches */
    unsigned long threads_moved;     /* threads moved from patched bytes into a trampoline */
} hook_stats;

void hook_get_stats(hook_stats *out);

#endif

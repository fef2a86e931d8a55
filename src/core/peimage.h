/* peimage.h - what kind of program a file is, from its first bytes.
 *
 * A boxed process may only start a 64-bit Windows (PE32+, x64) image: Wine
 * runs a file that is not a PE image ("MZ") as a native Linux program, with
 * no box around it, and has no 32-bit support on our machines. The runtime
 * (NtCreateUserProcess) and `fvm run` read the head of the image and ask
 * here before the real creation call. Portable C11, no allocation. */
#ifndef FVM_CORE_PEIMAGE_H
#define FVM_CORE_PEIMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum peimage_kind {
    PEIMAGE_X64,          /* PE32+ for x64: may start */
    PEIMAGE_PE_OTHER,     /* a PE image for another machine (32-bit x86, ARM...) */
    PEIMAGE_MZ_ONLY,      /* "MZ" without a PE header (DOS, NE, LE): Windows' own business */
    PEIMAGE_NEED_MORE,    /* the PE header lies beyond the bytes given: read *need bytes */
    PEIMAGE_ELF,          /* a Linux (ELF) program */
    PEIMAGE_SCRIPT,       /* "#!": a Unix script */
    PEIMAGE_NOT_MZ        /* anything else (a batch file, text, empty) */
} peimage_kind;

/* head: the first len bytes of the file. For PEIMAGE_NEED_MORE, *need says
 * how many bytes from the start would do (at most PEIMAGE_MAX_HEAD). For
 * PEIMAGE_PE_OTHER and PEIMAGE_X64, *machine is the COFF machine field and
 * *is_pe32 whether the optional header is the 32-bit one. */
#define PEIMAGE_MAX_HEAD 65536u
peimage_kind peimage_classify(const uint8_t *head, size_t len, size_t *need, uint16_t *machine, int *is_pe32);

/* Whether Linux could execute a file of this kind (execve runs ELF and "#!"). */
int peimage_runs_on_linux(peimage_kind kind);

#endif

/* inject.h - putting fvm.dll into a new process before any of its code runs.
 *
 * The idea: while the new process is still suspended, its main image's import
 * directory is replaced (in the child's memory only) by a copy whose first
 * entry imports fvm.dll. The loader then loads and initialises fvm.dll as the
 * first static import, before every other DLL's DllMain, before TLS callbacks
 * and before the entry point: nothing of the program runs unhooked. The new
 * import table lives in an "injection block" that also carries the box
 * configuration; fvm.dll finds the block through its own import descriptor,
 * takes the configuration and puts the original import directory back.
 *
 * Speed: every cross-process memory call is a round trip (about 100 us each
 * under Wine, which attaches to the target for it), so the block is compact
 * and, when it fits, goes into the unused tail of the image's first page,
 * right after the section headers: then one read (the image base) and one
 * write do the whole injection when the caller has the image file open, and
 * one more read (the header page) when not. Otherwise it goes into memory
 * allocated just above the image (import RVAs are 32-bit). */
#ifndef FVM_COMMON_INJECT_H
#define FVM_COMMON_INJECT_H

#include "common/boxcfg.h"

#define FVM_INJECT_MAGIC "FVMINJ05"

/* Variable-length: strings and descriptors follow in data[]. Offsets are
 * from the start of the block, lengths in characters. */
typedef struct fvm_inject_block {
    char     magic[8];
    uint32_t block_size;
    uint32_t import_rva, import_size;      /* the image's original directories */
    uint32_t bound_rva, bound_size;
    uint32_t descriptors_offset;           /* fvm.dll's, the originals, a zero one */
    uint64_t image_base;
    uint32_t config_version, config_flags;
    uint64_t quota_bytes;
    uint64_t given_index, given_index_size, given_tally;   /* fvm_box_config's */
    uint32_t given_index_number, reserved;
    uint16_t box_name_offset, box_name_len;
    uint16_t box_path_offset, box_path_len;
    uint16_t dll_path_offset, dll_path_len;
    uint16_t provider_offset, provider_len;
    IMAGE_THUNK_DATA64 lookup[2];          /* imports ordinal 1 of fvm.dll */
    IMAGE_THUNK_DATA64 iat[2];
    char     data[];                       /* starts with the ANSI path of fvm.dll */
} fvm_inject_block;

/* TRUE for a process Wine has created but not started: no PEB recorded
 * yet. Terminating one then crashes Wine 8's server (see inject.c); a
 * caller that stops processes leaves it for a later round. */
BOOL fvm_process_not_started(HANDLE process);

/* Injects into a process created suspended. image_file, if not NULL, is
 * the process's image, held open by the caller so that nobody can write it:
 * the headers and the import directory are then read from it rather than
 * from the child (one cross-process read instead of three). On failure
 * returns the NTSTATUS and leaves a message in why; the caller must then
 * not let the process run. */
NTSTATUS fvm_inject_process(HANDLE process, HANDLE image_file, const fvm_box_config *config,
                            char *why, size_t why_size);

/* In the new process (from fvm.dll's entry point): locates the block through
 * the main image's first import descriptor, or returns NULL. */
const fvm_inject_block *fvm_inject_find_block(void);

/* Rebuilds the box configuration carried by the block. FALSE if malformed. */
BOOL fvm_inject_read_config(const fvm_inject_block *block, fvm_box_config *config);

/* Puts the original import directory back into the image headers, so the
 * program sees its own unmodified headers. */
NTSTATUS fvm_inject_restore_headers(const fvm_inject_block *block);

#endif

/* blockprint.h - the block fingerprints of a base file, shared by fvm
 * export (cli/pack.c) and the broker's base hasher (broker/hasher.c).
 *
 * export sends a changed box copy as a delta against its host base: fixed
 * FVM_DELTA_BLOCK blocks, each either the base's (same offset) or new. To
 * tell which, it needs the base's blocks: reading the base costs as much as
 * reading the copy. So each base's block fingerprints (16 bytes per block)
 * are kept in <box>\sync\blocks2\<base sha256> (keyed by content, so valid
 * whatever the file's name or time): written by the broker when it hashes a
 * base (it reads the whole base then anyway) or by an export that had to
 * read the base; an export that finds them reads the box copy only. Both
 * writers use the one function here, so the stored fingerprints always
 * match what export computes. A cache: a missing or short file is ignored.
 *
 * Not for fvm.dll (it uses the C runtime and SSE2/AVX2). */
#ifndef FVM_COMMON_BLOCKPRINT_H
#define FVM_COMMON_BLOCKPRINT_H

#include <windows.h>
#include <stddef.h>
#include <stdint.h>

#define FVM_DELTA_BLOCK 4096u
#define FVM_DELTA_MIN_SIZE (64u * 1024u)   /* smaller files travel whole: no fingerprints */

/* The 128-bit fingerprint of one block of n <= FVM_DELTA_BLOCK bytes (not
 * cryptographic: only compared with the same base's). */
void fvm_block_fingerprint(const uint8_t *p, size_t n, uint64_t out[2]);

/* The stored fingerprints of a base with this SHA-256 and count blocks,
 * read a window at a time as the blocks are asked for in order: no array
 * of them all is allocated, whose first touch (about a page fault per 4 KiB,
 * 256 for a 256 MiB base) cost an export several ms here. */
#define FVM_BLOCKS_WINDOW 4096   /* fingerprints per read: 64 KiB */
typedef struct fvm_blocks_reader {
    HANDLE file;
    size_t count;                        /* blocks of the base */
    size_t first, in_window;             /* the blocks in window */
    uint64_t window[2 * FVM_BLOCKS_WINDOW];
} fvm_blocks_reader;
/* FALSE when none is stored for this base (or not for count blocks). */
BOOL fvm_blocks_open(fvm_blocks_reader *r, const wchar_t *box_path, const uint8_t hash[32], size_t count);
/* Block's two values; NULL past the end or when the file cannot be read. */
const uint64_t *fvm_blocks_get(fvm_blocks_reader *r, size_t block);
void fvm_blocks_close(fvm_blocks_reader *r);
/* Stores them (temporary file, then renamed over: a reader never sees half). */
void fvm_blocks_save(const wchar_t *box_path, const uint8_t hash[32], const uint64_t *v, size_t count);

#endif

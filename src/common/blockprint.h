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

/* The fingerprints of a base with this SHA-256 and count blocks: a malloc'd
 * array of 2 * count values (free it), or NULL when none is stored. */
uint64_t *fvm_blocks_load(const wchar_t *box_path, const uint8_t hash[32], size_t count);
/* Stores them (temporary file, then renamed over: a reader never sees half). */
void fvm_blocks_save(const wchar_t *box_path, const uint8_t hash[32], const uint64_t *v, size_t count);

#endif

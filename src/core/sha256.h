/* sha256.h - SHA-256 (FIPS 180-4, unchanged since 180-2), small and
 * dependency-free.
 *
 * The audit trail chains its records with it, and the runtime may reuse it
 * for content hashes of copied-up files. Portable C11, no allocation, only
 * memcpy/memset: usable in the CRT-free runtime. Incremental use: init,
 * update any number of times with any lengths, final. */
#ifndef FVM_CORE_SHA256_H
#define FVM_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32u
#define SHA256_BLOCK_SIZE  64u
#define SHA256_HEX_SIZE    65u   /* 64 hex digits and a NUL */

typedef struct sha256_ctx {
    uint32_t state[8];
    uint64_t total_bytes;              /* message length so far */
    uint8_t block[SHA256_BLOCK_SIZE];  /* the partial block not yet compressed */
    size_t block_len;
} sha256_ctx;

void sha256_init(sha256_ctx *ctx);
void sha256_update(sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest; ctx must be initialized again before reuse. */
void sha256_final(sha256_ctx *ctx, uint8_t digest[SHA256_DIGEST_SIZE]);

/* One-shot convenience. */
void sha256(const void *data, size_t len, uint8_t digest[SHA256_DIGEST_SIZE]);

/* Lower-case hex of a digest, NUL-terminated (65 bytes). */
void sha256_to_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char hex[SHA256_HEX_SIZE]);

/* Parses exactly 64 hex digits (either case). Returns 1 on success. */
int sha256_from_hex(const char *hex, size_t len, uint8_t digest[SHA256_DIGEST_SIZE]);

#endif

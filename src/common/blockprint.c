/* blockprint.c - base block fingerprints (blockprint.h). */
#include "common/blockprint.h"

#include <emmintrin.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/boxcfg.h"
#include "core/sha256.h"

/* A fast 128-bit fingerprint of one block (not cryptographic), used only
 * to find which blocks of a box copy still equal its base's. SSE2, 64
 * bytes a round: each 16-byte lane is XORed with a key that moves on every
 * round (so where a stripe sits counts, not only what it holds), its two
 * 32-bit halves multiplied (a 64-bit product per half-lane) and added, with
 * the raw data, into one of eight 64-bit accumulators; a multiply-rotate
 * fold of the accumulators and the length makes the 128 bits. About 4x
 * faster than the multiply-rotate lanes it replaced, so hashing costs a
 * fraction of reading the block from the cache. A short last block is
 * zero-padded (the length is mixed in). */
static uint64_t rotl64(uint64_t v, int r)
{
    return (v << r) | (v >> (64 - r));
}

static void fingerprint_fold(const uint64_t lanes[8], size_t n, uint64_t out[2])
{
    const uint64_t m1 = 0x9E3779B97F4A7C15ull, m2 = 0xD6E8FEB86659FD93ull;
    uint64_t h0 = (uint64_t)n * m1, h1 = ~(uint64_t)n;
    for (int l = 0; l < 8; l++) {
        h0 = rotl64(h0 ^ (lanes[l] * m2), 31) * m1;
        h1 = (rotl64(h1 + lanes[l], 27) * m2) ^ h0;
    }
    h0 ^= h0 >> 29;
    h0 *= m2;
    h0 ^= h0 >> 32;
    h1 ^= h1 >> 31;
    h1 *= m1;
    h1 ^= h1 >> 29;
    out[0] = h0;
    out[1] = h1;
}

static void block_fingerprint_sse2(const uint8_t *p, size_t n, uint64_t out[2])
{
    const uint64_t m1 = 0x9E3779B97F4A7C15ull, m2 = 0xD6E8FEB86659FD93ull;
    __m128i acc[4], key[4];
    for (int j = 0; j < 4; j++) {
        acc[j] = _mm_set_epi64x((long long)(m1 * (uint64_t)(2 * j + 1)), (long long)(m2 * (uint64_t)(2 * j + 2)));
        key[j] = _mm_set_epi64x((long long)rotl64(m2, 8 * j + 5), (long long)rotl64(m1, 8 * j + 3));
    }
    const __m128i step = _mm_set_epi64x((long long)m2, (long long)m1);
    uint8_t tail[64];
    for (size_t i = 0; i < n; i += 64) {
        const uint8_t *q = p + i;
        if (n - i < 64) {
            memset(tail, 0, sizeof tail);
            memcpy(tail, q, n - i);
            q = tail;
        }
        for (int j = 0; j < 4; j++) {
            __m128i d = _mm_loadu_si128((const __m128i *)(q + 16 * j));
            key[j] = _mm_add_epi64(key[j], step);
            __m128i k = _mm_xor_si128(d, key[j]);
            __m128i prod = _mm_mul_epu32(k, _mm_srli_epi64(k, 32));
            acc[j] = _mm_add_epi64(acc[j], _mm_add_epi64(prod, _mm_shuffle_epi32(d, _MM_SHUFFLE(1, 0, 3, 2))));
        }
    }
    uint64_t lanes[8];
    memcpy(lanes, acc, sizeof lanes);
    fingerprint_fold(lanes, n, out);
}

/* The same function with AVX2: lanes 0-1 and 2-3 of the SSE2 version side
 * by side in two 256-bit registers (every operation used works within a
 * 128-bit half exactly as its SSE2 form), so the fingerprints are
 * identical, bit for bit; about half the instructions per round. */
__attribute__((target("avx2"))) static void block_fingerprint_avx2(const uint8_t *p, size_t n, uint64_t out[2])
{
    const uint64_t m1 = 0x9E3779B97F4A7C15ull, m2 = 0xD6E8FEB86659FD93ull;
    __m256i acc[2], key[2];
    for (int h = 0; h < 2; h++) {
        int j = 2 * h;   /* SSE2 lanes j (low half) and j + 1 (high half) */
        acc[h] = _mm256_set_epi64x((long long)(m1 * (uint64_t)(2 * (j + 1) + 1)),
                                   (long long)(m2 * (uint64_t)(2 * (j + 1) + 2)),
                                   (long long)(m1 * (uint64_t)(2 * j + 1)), (long long)(m2 * (uint64_t)(2 * j + 2)));
        key[h] = _mm256_set_epi64x((long long)rotl64(m2, 8 * (j + 1) + 5), (long long)rotl64(m1, 8 * (j + 1) + 3),
                                   (long long)rotl64(m2, 8 * j + 5), (long long)rotl64(m1, 8 * j + 3));
    }
    const __m256i step = _mm256_set_epi64x((long long)m2, (long long)m1, (long long)m2, (long long)m1);
    uint8_t tail[64];
    for (size_t i = 0; i < n; i += 64) {
        const uint8_t *q = p + i;
        if (n - i < 64) {
            memset(tail, 0, sizeof tail);
            memcpy(tail, q, n - i);
            q = tail;
        }
        for (int h = 0; h < 2; h++) {
            __m256i d = _mm256_loadu_si256((const __m256i *)(q + 32 * h));
            key[h] = _mm256_add_epi64(key[h], step);
            __m256i k = _mm256_xor_si256(d, key[h]);
            __m256i prod = _mm256_mul_epu32(k, _mm256_srli_epi64(k, 32));
            acc[h] = _mm256_add_epi64(acc[h], _mm256_add_epi64(prod, _mm256_shuffle_epi32(d, _MM_SHUFFLE(1, 0, 3, 2))));
        }
    }
    uint64_t lanes[8];
    memcpy(lanes, acc, sizeof lanes);
    fingerprint_fold(lanes, n, out);
}

typedef void (*fingerprint_fn)(const uint8_t *p, size_t n, uint64_t out[2]);

/* AVX2 where the processor has it and it gives the SSE2 version's
 * fingerprints on a sample of lengths (stored fingerprints must keep
 * matching), else SSE2; FVM_FINGERPRINT_SSE2=1 forces SSE2 (bench/sync.sh
 * compares the two). */
static fingerprint_fn pick_fingerprint(void)
{
    if (!__builtin_cpu_supports("avx2") || getenv("FVM_FINGERPRINT_SSE2"))
        return block_fingerprint_sse2;
    static uint8_t sample[4096 + 64];
    uint64_t x = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < sizeof sample; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        sample[i] = (uint8_t)(x >> 56);
    }
    static const size_t lengths[] = {0, 1, 63, 64, 65, 1000, 4095, 4096};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        uint64_t a[2], b[2];
        block_fingerprint_sse2(sample + i, lengths[i], a);
        block_fingerprint_avx2(sample + i, lengths[i], b);
        if (a[0] != b[0] || a[1] != b[1])
            return block_fingerprint_sse2;
    }
    return block_fingerprint_avx2;
}

void fvm_block_fingerprint(const uint8_t *p, size_t n, uint64_t out[2])
{
    static fingerprint_fn fn;
    if (!fn)
        fn = pick_fingerprint();
    fn(p, n, out);
}


#define BLOCKS_PATH (FVM_PATH_MAX * 2)

static void blocks_path(const wchar_t *box_path, const uint8_t hash[32], wchar_t *out)
{
    char hex[65];
    sha256_to_hex(hash, hex);
    _snwprintf(out, BLOCKS_PATH, L"%ls\\sync\\blocks2\\%hs", box_path, hex);
    out[BLOCKS_PATH - 1] = 0;
}

BOOL fvm_blocks_open(fvm_blocks_reader *r, const wchar_t *box_path, const uint8_t hash[32], size_t count)
{
    wchar_t path[BLOCKS_PATH];
    memset(r, 0, sizeof *r);
    r->file = INVALID_HANDLE_VALUE;
    if (!count || count > 0x7ffffff0u / 16)
        return FALSE;
    blocks_path(box_path, hash, path);
    r->file = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                          OPEN_EXISTING, FILE_FLAG_SEQUENTIAL_SCAN, NULL);
    LARGE_INTEGER size;
    if (r->file == INVALID_HANDLE_VALUE || !GetFileSizeEx(r->file, &size) || (uint64_t)size.QuadPart != count * 16) {
        fvm_blocks_close(r);
        return FALSE;
    }
    r->count = count;
    return TRUE;
}

const uint64_t *fvm_blocks_get(fvm_blocks_reader *r, size_t block)
{
    if (block >= r->count || r->file == INVALID_HANDLE_VALUE)
        return NULL;
    if (block < r->first || block >= r->first + r->in_window) {
        /* Blocks are asked in order: the next window starts at this one. */
        size_t n = r->count - block < FVM_BLOCKS_WINDOW ? r->count - block : FVM_BLOCKS_WINDOW;
        LARGE_INTEGER at;
        DWORD got = 0;
        at.QuadPart = (LONGLONG)block * 16;
        if (!SetFilePointerEx(r->file, at, NULL, FILE_BEGIN) ||
            !ReadFile(r->file, r->window, (DWORD)(n * 16), &got, NULL) || got != n * 16)
            return NULL;   /* shortened meanwhile: the caller falls back */
        r->first = block;
        r->in_window = n;
    }
    return r->window + 2 * (block - r->first);
}

void fvm_blocks_close(fvm_blocks_reader *r)
{
    if (r->file != INVALID_HANDLE_VALUE)
        CloseHandle(r->file);
    r->file = INVALID_HANDLE_VALUE;
}

void fvm_blocks_save(const wchar_t *box_path, const uint8_t hash[32], const uint64_t *v, size_t count)
{
    wchar_t path[BLOCKS_PATH], tmp[BLOCKS_PATH + 8];
    if (count > 0x7ffffff0u / 16)
        return;
    _snwprintf(path, BLOCKS_PATH, L"%ls\\sync", box_path);
    CreateDirectoryW(path, NULL);
    _snwprintf(path, BLOCKS_PATH, L"%ls\\sync\\blocks2", box_path);
    CreateDirectoryW(path, NULL);
    blocks_path(box_path, hash, path);
    /* The broker and an export may both write one: each its own temporary. */
    _snwprintf(tmp, BLOCKS_PATH + 8, L"%ls.%lu.tmp", path, (unsigned long)GetCurrentProcessId());
    HANDLE h = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    DWORD wrote;
    BOOL ok = h != INVALID_HANDLE_VALUE && WriteFile(h, v, (DWORD)(count * 16), &wrote, NULL) && wrote == count * 16;
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    if (!ok || !MoveFileExW(tmp, path, MOVEFILE_REPLACE_EXISTING))
        DeleteFileW(tmp);
}

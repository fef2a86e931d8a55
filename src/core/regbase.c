/* regbase.c - fingerprints of a registry key's values (see regbase.h). */
#include "core/regbase.h"
#include "core/bytes.h"

#include <string.h>

#include "core/sha256.h"

void regbase_init(regbase_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
}

void regbase_add_value(regbase_ctx *ctx, const uint16_t *name, size_t name_len, uint32_t type, const void *data,
                       size_t size)
{
    sha256_ctx h;
    uint8_t head[12], digest[32];
    put_le32(head, (uint32_t)name_len);
    put_le32(head + 4, type);
    put_le32(head + 8, (uint32_t)size);
    sha256_init(&h);
    sha256_update(&h, head, sizeof head);
    for (size_t i = 0; i < name_len; i++) {   /* little-endian whatever the host */
        uint8_t u[2] = {(uint8_t)name[i], (uint8_t)(name[i] >> 8)};
        sha256_update(&h, u, 2);
    }
    if (size)
        sha256_update(&h, data, size);
    sha256_final(&h, digest);
    for (int lane = 0; lane < 4; lane++) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)digest[lane * 8 + i] << (8 * i);
        ctx->sum[lane] += v;
    }
    ctx->count++;
}

void regbase_final(const regbase_ctx *ctx, boxindex_base *out)
{
    out->size = ctx->count;
    out->mtime = REGBASE_MARK;
    for (int lane = 0; lane < 4; lane++)
        for (int i = 0; i < 8; i++)
            out->content_hash[lane * 8 + i] = (uint8_t)(ctx->sum[lane] >> (8 * i));
    /* An empty key still has a fingerprint that is not all zero ("unknown"). */
    out->content_hash[0] ^= 0x80;
}

int regbase_equal(const boxindex_base *a, const boxindex_base *b)
{
    return a->size == b->size && a->mtime == b->mtime && !memcmp(a->content_hash, b->content_hash, 32);
}

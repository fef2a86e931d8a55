/* pack.c - reading and checking box packages (pack.h, docs/pack-format.md).
 *
 * Two passes over the bytes: the first checks the checksum and every
 * record's structure without calling anyone, the second hands the records
 * to the visitor. Every length is checked against what is left before it
 * is used, so no input makes a read leave the buffer. */
#include "core/pack.h"
#include "core/bytes.h"

#ifndef FVM_RUNTIME

#include <string.h>

#include "core/sha256.h"

/* ---- writing helpers ---- */

size_t pack_put_header(uint8_t *out, uint32_t flags, int64_t created, const char *name, size_t name_len)
{
    memcpy(out, PACK_MAGIC, PACK_MAGIC_LEN);
    put_le32(out + 8, PACK_VERSION);
    put_le32(out + 12, flags);
    put_le64(out + 16, (uint64_t)created);
    out[24] = (uint8_t)name_len;
    out[25] = 0;
    memcpy(out + PACK_HEADER_FIXED, name, name_len);
    return PACK_HEADER_FIXED + name_len;
}

void pack_put_record_header(uint8_t out[PACK_RECORD_HEADER], pack_record_type type, uint64_t payload_len)
{
    memset(out, 0, PACK_RECORD_HEADER);
    out[0] = (uint8_t)type;
    put_le64(out + 8, payload_len);
}

size_t pack_put_file(uint8_t *out, const pack_file *f)
{
    put_le32(out, f->attributes);
    put_le64(out + 4, (uint64_t)f->ctime);
    put_le64(out + 12, (uint64_t)f->atime);
    put_le64(out + 20, (uint64_t)f->mtime);
    put_le64(out + 28, f->size);
    put_le32(out + 36, (uint32_t)f->path_len);
    out[40] = out[41] = 0;
    for (size_t i = 0; i < f->path_len; i++) {
        out[PACK_FILE_FIXED + 2 * i] = (uint8_t)f->path[i];
        out[PACK_FILE_FIXED + 2 * i + 1] = (uint8_t)(f->path[i] >> 8);
    }
    return PACK_FILE_FIXED + 2 * f->path_len;
}

void pack_put_base(uint8_t out[PACK_BASE_LEN], uint64_t size, int64_t mtime, const uint8_t hash[32])
{
    put_le64(out, size);
    put_le64(out + 8, (uint64_t)mtime);
    memcpy(out + 16, hash, 32);
}

size_t pack_put_op(uint8_t out[17], int copy, uint64_t offset, uint64_t length)
{
    out[0] = copy ? 1 : 0;
    if (copy) {
        put_le64(out + 1, offset);
        put_le64(out + 9, length);
        return 17;
    }
    put_le64(out + 1, length);
    return 9;
}

/* ---- zero squeezing ---- */

size_t pack_squeeze_bound(size_t n)
{
    return 8 + n + 8 * (n / 16 + 2);
}

size_t pack_squeeze(const uint8_t *in, size_t n, uint8_t *out)
{
    /* A zero run shorter than 16 bytes stays in the literal (a run costs 8
     * bytes of lengths), except at the very end. Runs fit 32 bits: a longer
     * one is split by an empty literal. */
    size_t o = 8, i = 0;
    put_le64(out, n);
    while (i < n) {
        size_t j = i, z = i;
        while (j < n) {
            if (in[j] != 0) {
                j++;
                continue;
            }
            z = j;
            while (z < n && in[z] == 0 && z - j < 0xFFFFFFF0u)
                z++;
            if (z - j >= 16 || z == n)
                break;
            j = z;
        }
        if (j >= n)
            z = n;
        size_t lit = j - i;
        if (lit > 0xFFFFFFF0u) {   /* a literal longer than 32 bits: cut it */
            lit = 0xFFFFFFF0u;
            j = z = i + lit;
        }
        put_le32(out + o, (uint32_t)lit);
        memcpy(out + o + 4, in + i, lit);
        o += 4 + lit;
        put_le32(out + o, (uint32_t)(z - j));
        o += 4;
        i = z;
    }
    return o;
}

fvm_status pack_unsqueezed_size(const uint8_t *in, size_t n, uint64_t *size, fvm_error *err)
{
    if (n < 8)
        return fvm_error_set(err, FVM_E_INVALID, "squeezed blob shorter than its size field");
    uint64_t total = get_le64(in), got = 0;
    size_t i = 8;
    while (i < n) {
        if (n - i < 4)
            return fvm_error_set(err, FVM_E_INVALID, "squeezed blob: literal length cut at byte %lu",
                                 (unsigned long)i);
        uint32_t lit = get_le32(in + i);
        i += 4;
        if (lit > n - i)
            return fvm_error_set(err, FVM_E_INVALID, "squeezed blob: literal past the end at byte %lu",
                                 (unsigned long)i);
        i += lit;
        if (n - i < 4)
            return fvm_error_set(err, FVM_E_INVALID, "squeezed blob: zero run cut at byte %lu", (unsigned long)i);
        uint32_t zeros = get_le32(in + i);
        i += 4;
        got += (uint64_t)lit + zeros;
        if (got > total)
            return fvm_error_set(err, FVM_E_INVALID, "squeezed blob: more bytes than its size says");
    }
    if (got != total)
        return fvm_error_set(err, FVM_E_INVALID, "squeezed blob: %llu bytes, its size says %llu",
                             (unsigned long long)got, (unsigned long long)total);
    *size = total;
    return FVM_OK;
}

fvm_status pack_unsqueeze(const uint8_t *in, size_t n, uint8_t *out, size_t out_len, fvm_error *err)
{
    uint64_t total;
    fvm_status st = pack_unsqueezed_size(in, n, &total, err);
    if (st != FVM_OK)
        return st;
    if (total != out_len)
        return fvm_error_set(err, FVM_E_RANGE, "squeezed blob expands to %llu bytes, not %lu",
                             (unsigned long long)total, (unsigned long)out_len);
    size_t i = 8, o = 0;
    while (i < n) {
        uint32_t lit = get_le32(in + i);
        memcpy(out + o, in + i + 4, lit);
        i += 4 + lit;
        o += lit;
        uint32_t zeros = get_le32(in + i);
        memset(out + o, 0, zeros);
        i += 4;
        o += zeros;
    }
    return FVM_OK;
}

/* ---- parsing ---- */

int pack_delta_next(const pack_delta *d, size_t *pos, pack_op *op)
{
    if (*pos >= d->ops_len)
        return 0;
    const uint8_t *p = d->ops + *pos;
    op->copy = p[0] == 1;
    if (op->copy) {
        op->offset = get_le64(p + 1);
        op->length = get_le64(p + 9);
        op->data = NULL;
        *pos += 17;
    } else {
        op->offset = 0;
        op->length = get_le64(p + 1);
        op->data = p + 9;
        *pos += 9 + (size_t)op->length;
    }
    return 1;
}

/* Checks a delta's ops: each within the payload and the base, adding up to size. */
static fvm_status check_ops(const pack_delta *d, uint64_t size, size_t at, fvm_error *err)
{
    size_t i = 0;
    uint64_t total = 0;
    while (i < d->ops_len) {
        const uint8_t *p = d->ops + i;
        size_t left = d->ops_len - i;
        if (p[0] == 1) {
            if (left < 17)
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: copy op cut short", (unsigned long)(at + i));
            uint64_t off = get_le64(p + 1), len = get_le64(p + 9);
            if (off > d->base_size || len > d->base_size - off || len == 0)
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: copy op outside its base",
                                     (unsigned long)(at + i));
            total += len;
            i += 17;
        } else if (p[0] == 0) {
            if (left < 9)
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: data op cut short", (unsigned long)(at + i));
            uint64_t len = get_le64(p + 1);
            if (len > left - 9 || len == 0)
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: data op longer than its record",
                                     (unsigned long)(at + i));
            total += len;
            i += 9 + (size_t)len;
        } else {
            return fvm_error_set(err, FVM_E_INVALID, "byte %lu: unknown delta op %u", (unsigned long)(at + i),
                                 (unsigned)p[0]);
        }
        if (total > size)
            return fvm_error_set(err, FVM_E_INVALID, "byte %lu: delta longer than its file", (unsigned long)(at + i));
    }
    if (total != size)
        return fvm_error_set(err, FVM_E_INVALID, "byte %lu: delta makes %llu bytes, the file has %llu",
                             (unsigned long)at, (unsigned long long)total, (unsigned long long)size);
    return FVM_OK;
}

/* Reads the file part of a payload; *used: its bytes. */
static fvm_status read_file_part(const uint8_t *p, size_t n, size_t at, pack_file *f, size_t *used, fvm_error *err)
{
    if (n < PACK_FILE_FIXED)
        return fvm_error_set(err, FVM_E_INVALID, "byte %lu: file record too short", (unsigned long)at);
    f->attributes = get_le32(p);
    f->ctime = (int64_t)get_le64(p + 4);
    f->atime = (int64_t)get_le64(p + 12);
    f->mtime = (int64_t)get_le64(p + 20);
    f->size = get_le64(p + 28);
    uint32_t units = get_le32(p + 36);
    if (units == 0 || units > PACK_MAX_PATH_UNITS || (size_t)units * 2 > n - PACK_FILE_FIXED)
        return fvm_error_set(err, FVM_E_INVALID, "byte %lu: bad path length %lu", (unsigned long)at,
                             (unsigned long)units);
    f->path = (const uint16_t *)(p + PACK_FILE_FIXED);
    f->path_len = units;
    /* "\??\" then something; no NUL; no "." or ".." component (a package
     * must not write outside the box folder). */
    const uint8_t *s = p + PACK_FILE_FIXED;
    uint16_t u[4];
    for (int i = 0; i < 4 && i < (int)units; i++)
        u[i] = (uint16_t)(s[2 * i] | s[2 * i + 1] << 8);
    if (units < 5 || u[0] != '\\' || u[1] != '?' || u[2] != '?' || u[3] != '\\')
        return fvm_error_set(err, FVM_E_INVALID, "byte %lu: path is not an NT path (\\??\\...)", (unsigned long)at);
    size_t comp_start = 4;
    for (size_t i = 4; i <= units; i++) {
        uint16_t c = i < units ? (uint16_t)(s[2 * i] | s[2 * i + 1] << 8) : '\\';
        if (c == 0 || c == '/')
            return fvm_error_set(err, FVM_E_INVALID, "byte %lu: path has a NUL or '/'", (unsigned long)at);
        if (c == '\\') {
            size_t len = i - comp_start;
            uint16_t c0 = len ? (uint16_t)(s[2 * comp_start] | s[2 * comp_start + 1] << 8) : 0;
            uint16_t c1 = len > 1 ? (uint16_t)(s[2 * comp_start + 2] | s[2 * comp_start + 3] << 8) : 0;
            if (len == 0 || (len == 1 && c0 == '.') || (len == 2 && c0 == '.' && c1 == '.'))
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: path has an empty, '.' or '..' component",
                                     (unsigned long)at);
            comp_start = i + 1;
        }
    }
    *used = PACK_FILE_FIXED + (size_t)units * 2;
    return FVM_OK;
}

/* One pass: check (v NULL) or visit. */
static fvm_status walk(const uint8_t *data, size_t len, const pack_visitor *v, fvm_error *err)
{
    size_t name_len = data[24];
    size_t pos = PACK_HEADER_FIXED + name_len;
    if (v && v->header) {
        pack_header h = {get_le32(data + 8), get_le32(data + 12), (int64_t)get_le64(data + 16), (const char *)data + 26,
                         name_len};
        fvm_status st = v->header(v->ctx, &h, err);
        if (st != FVM_OK)
            return st;
    }
    int index_seen = 0, policy_seen = 0, registry_seen = 0;
    for (;;) {
        if (len - pos < PACK_RECORD_HEADER)
            return fvm_error_set(err, FVM_E_INVALID, "byte %lu: record header cut short (truncated package?)",
                                 (unsigned long)pos);
        const uint8_t *r = data + pos;
        for (int i = 1; i < 8; i++)
            if (r[i])
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: reserved bytes of a record are not zero",
                                     (unsigned long)pos);
        uint64_t plen = get_le64(r + 8);
        size_t at = pos + PACK_RECORD_HEADER;
        if (plen > len - at)
            return fvm_error_set(err, FVM_E_INVALID, "byte %lu: record longer than the package (truncated?)",
                                 (unsigned long)pos);
        const uint8_t *p = data + at;
        size_t n = (size_t)plen;
        fvm_status st = FVM_OK;
        switch (r[0]) {
        case PACK_REC_END:
            if (n != 32 || at + n != len)
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: END record is not the 32-byte last record",
                                     (unsigned long)pos);
            return FVM_OK;
        case PACK_REC_POLICY:
        case PACK_REC_REGISTRY:
        case PACK_REC_INDEX: {
            int *seen = r[0] == PACK_REC_POLICY ? &policy_seen : r[0] == PACK_REC_INDEX ? &index_seen
                                                                                          : &registry_seen;
            if ((*seen)++)
                return fvm_error_set(err, FVM_E_INVALID, "byte %lu: a second record of type %u", (unsigned long)pos,
                                     (unsigned)r[0]);
            if (r[0] == PACK_REC_INDEX && !v) {
                uint64_t size;
                fvm_error e;
                if (pack_unsqueezed_size(p, n, &size, &e) != FVM_OK)
                    return fvm_error_set(err, FVM_E_INVALID, "byte %lu: index: %s", (unsigned long)at, e.message);
            }
            if (v && v->blob)
                st = v->blob(v->ctx, (pack_record_type)r[0], p, n, err);
            break;
        }
        case PACK_REC_FILE:
        case PACK_REC_DIR:
        case PACK_REC_DELTA: {
            pack_file f;
            size_t used = 0;
            st = read_file_part(p, n, at, &f, &used, err);
            if (st != FVM_OK)
                return st;
            if (r[0] == PACK_REC_FILE) {
                if (f.size != n - used)
                    return fvm_error_set(err, FVM_E_INVALID, "byte %lu: file data is %lu bytes, its size says %llu",
                                         (unsigned long)at, (unsigned long)(n - used), (unsigned long long)f.size);
                if (v && v->file)
                    st = v->file(v->ctx, &f, p + used, err);
            } else if (r[0] == PACK_REC_DIR) {
                if (n != used)
                    return fvm_error_set(err, FVM_E_INVALID, "byte %lu: folder record with data", (unsigned long)at);
                if (v && v->dir)
                    st = v->dir(v->ctx, &f, err);
            } else {
                if (n - used < PACK_BASE_LEN)
                    return fvm_error_set(err, FVM_E_INVALID, "byte %lu: delta record without its base",
                                         (unsigned long)at);
                pack_delta d;
                const uint8_t *b = p + used;
                d.base_size = get_le64(b);
                d.base_mtime = (int64_t)get_le64(b + 8);
                memcpy(d.base_hash, b + 16, 32);
                d.ops = b + PACK_BASE_LEN;
                d.ops_len = n - used - PACK_BASE_LEN;
                if (!v && (st = check_ops(&d, f.size, at + used + PACK_BASE_LEN, err)) != FVM_OK)
                    return st;
                if (v && v->delta)
                    st = v->delta(v->ctx, &f, &d, err);
            }
            break;
        }
        default:
            return fvm_error_set(err, FVM_E_INVALID, "byte %lu: unknown record type %u", (unsigned long)pos,
                                 (unsigned)r[0]);
        }
        if (st != FVM_OK)
            return st;
        pos = at + n;
    }
}

fvm_status pack_parse(const uint8_t *data, size_t len, const pack_visitor *v, fvm_error *err)
{
    if (len < PACK_HEADER_FIXED || memcmp(data, PACK_MAGIC, PACK_MAGIC_LEN))
        return fvm_error_set(err, FVM_E_INVALID, "not an FVM package (bad magic)");
    uint32_t version = get_le32(data + 8);
    if (version != PACK_VERSION)
        return fvm_error_set(err, FVM_E_UNSUPPORTED, "package format version %lu; this fvm reads version %u",
                             (unsigned long)version, PACK_VERSION);
    size_t name_len = data[24];
    if (data[25] || name_len == 0 || len - PACK_HEADER_FIXED < name_len)
        return fvm_error_set(err, FVM_E_INVALID, "bad box name in the package header");
    if (len < PACK_HEADER_FIXED + name_len + PACK_RECORD_HEADER + 32)
        return fvm_error_set(err, FVM_E_INVALID, "package too short (truncated?)");
    /* The checksum covers everything before the END record. */
    uint8_t digest[32];
    sha256(data, len - 32 - PACK_RECORD_HEADER, digest);
    const uint8_t *end = data + len - 32 - PACK_RECORD_HEADER;
    if (end[0] != PACK_REC_END || memcmp(digest, data + len - 32, 32))
        return fvm_error_set(err, FVM_E_INVALID, "package checksum does not match (corrupt or truncated)");
    fvm_status st = walk(data, len, NULL, err);
    if (st != FVM_OK || !v)
        return st;
    return walk(data, len, v, err);
}

#endif /* FVM_RUNTIME */

/* brokermsg.c - see brokermsg.h. */
#include "core/brokermsg.h"
#include "core/bytes.h"

#include <string.h>

size_t brokermsg_audit_encode(const brokermsg_audit *msg, uint8_t *out, size_t cap)
{
    const brokermsg_text *texts[6] = {&msg->op, &msg->decision, &msg->rule, &msg->image, &msg->name, &msg->target};
    int with_target = msg->target.len != 0;
    size_t header = with_target ? BROKERMSG_AUDIT2_HEADER : BROKERMSG_AUDIT_HEADER;
    size_t size = header;
    for (int i = 0; i < 6; i++) {
        if (i != 4 && texts[i]->len > 0xffff)
            return 0;
        size += texts[i]->len;
    }
    if (size > cap || size > BROKERMSG_MAX || msg->name.len > 0xffffffffu || msg->target.len > BROKERMSG_TARGET_MAX)
        return 0;
    memcpy(out, with_target ? BROKERMSG_AUDIT2_MAGIC : BROKERMSG_AUDIT_MAGIC, 8);
    put_le32(out + 8, msg->type);
    put_le32(out + 12, msg->pid);
    for (int i = 0; i < 4; i++)
        put_le16(out + 16 + 2 * i, (uint16_t)texts[i]->len);
    put_le32(out + 24, (uint32_t)msg->name.len);
    if (with_target) {
        put_le16(out + 28, (uint16_t)msg->target.len);
        put_le16(out + 30, 0);
    }
    size_t at = header;
    for (int i = 0; i < (with_target ? 6 : 5); i++) {
        if (texts[i]->len)
            memcpy(out + at, texts[i]->text, texts[i]->len);
        at += texts[i]->len;
    }
    return size;
}

int brokermsg_is_audit(const uint8_t *buf, size_t len)
{
    return len >= 8 && (!memcmp(buf, BROKERMSG_AUDIT_MAGIC, 8) || !memcmp(buf, BROKERMSG_AUDIT2_MAGIC, 8));
}

fvm_status brokermsg_audit_decode(const uint8_t *buf, size_t len, brokermsg_audit *out, fvm_error *err)
{
    if (len < BROKERMSG_AUDIT_HEADER)
        return fvm_error_set(err, FVM_E_INVALID, "audit message of %lu bytes is shorter than its header (%d)",
                             (unsigned long)len, BROKERMSG_AUDIT_HEADER);
    if (!brokermsg_is_audit(buf, len))
        return fvm_error_set(err, FVM_E_INVALID, "audit message: bad magic at offset 0");
    int with_target = !memcmp(buf, BROKERMSG_AUDIT2_MAGIC, 8);
    size_t header = with_target ? BROKERMSG_AUDIT2_HEADER : BROKERMSG_AUDIT_HEADER;
    if (len < header)
        return fvm_error_set(err, FVM_E_INVALID, "audit message of %lu bytes is shorter than its header (%lu)",
                             (unsigned long)len, (unsigned long)header);
    if (len > BROKERMSG_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "audit message of %lu bytes is larger than %d",
                             (unsigned long)len, BROKERMSG_MAX);
    memset(out, 0, sizeof *out);
    out->type = get_le32(buf + 8);
    out->pid = get_le32(buf + 12);
    brokermsg_text *texts[6] = {&out->op, &out->decision, &out->rule, &out->image, &out->name, &out->target};
    size_t lens[6] = {0};
    for (int i = 0; i < 4; i++)
        lens[i] = get_le16(buf + 16 + 2 * i);
    lens[4] = get_le32(buf + 24);
    if (with_target) {
        lens[5] = get_le16(buf + 28);
        if (get_le16(buf + 30) != 0)
            return fvm_error_set(err, FVM_E_INVALID, "audit message: reserved bytes at offset 30 are not zero");
        if (lens[5] == 0 || lens[5] > BROKERMSG_TARGET_MAX)
            return fvm_error_set(err, FVM_E_INVALID, "audit message: target of %lu bytes at offset 28 (1 to %d)",
                                 (unsigned long)lens[5], BROKERMSG_TARGET_MAX);
    }
    size_t at = header;
    for (int i = 0; i < (with_target ? 6 : 5); i++) {
        if (lens[i] > len - at)
            return fvm_error_set(err, FVM_E_INVALID,
                                 "audit message: string %d of %lu bytes at offset %lu runs past the end (%lu)", i,
                                 (unsigned long)lens[i], (unsigned long)at, (unsigned long)len);
        texts[i]->text = (const char *)buf + at;
        texts[i]->len = lens[i];
        at += lens[i];
    }
    if (at != len)
        return fvm_error_set(err, FVM_E_INVALID, "audit message: %lu bytes left over at offset %lu",
                             (unsigned long)(len - at), (unsigned long)at);
    return FVM_OK;
}

size_t brokermsg_quota_encode(const brokermsg_quota *msg, uint8_t *out, size_t cap)
{
    size_t size = msg->kind == BROKERMSG_RESERVE ? BROKERMSG_RESERVE_SIZE : BROKERMSG_FREED_SIZE;
    if ((msg->kind != BROKERMSG_RESERVE && msg->kind != BROKERMSG_FREED) || cap < size)
        return 0;
    memcpy(out, msg->kind == BROKERMSG_RESERVE ? BROKERMSG_RESERVE_MAGIC : BROKERMSG_FREED_MAGIC, 8);
    put_le64(out + 8, msg->bytes);
    if (msg->kind == BROKERMSG_RESERVE)
        put_le64(out + 16, msg->leftover);
    return size;
}

int brokermsg_is_quota(const uint8_t *buf, size_t len)
{
    return len >= 8 && (!memcmp(buf, BROKERMSG_RESERVE_MAGIC, 8) || !memcmp(buf, BROKERMSG_FREED_MAGIC, 8));
}

fvm_status brokermsg_quota_decode(const uint8_t *buf, size_t len, brokermsg_quota *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!brokermsg_is_quota(buf, len))
        return fvm_error_set(err, FVM_E_INVALID, "quota message: bad magic at offset 0");
    out->kind = !memcmp(buf, BROKERMSG_RESERVE_MAGIC, 8) ? BROKERMSG_RESERVE : BROKERMSG_FREED;
    size_t want = out->kind == BROKERMSG_RESERVE ? BROKERMSG_RESERVE_SIZE : BROKERMSG_FREED_SIZE;
    if (len != want)
        return fvm_error_set(err, FVM_E_INVALID, "quota message of %lu bytes, expected %lu", (unsigned long)len,
                             (unsigned long)want);
    out->bytes = get_le64(buf + 8);
    if (out->kind == BROKERMSG_RESERVE)
        out->leftover = get_le64(buf + 16);
    if (out->bytes > ((uint64_t)1 << 62) || out->leftover > ((uint64_t)1 << 62))
        return fvm_error_set(err, FVM_E_INVALID, "quota message: %llu bytes at offset 8 is out of range",
                             (unsigned long long)(out->bytes > out->leftover ? out->bytes : out->leftover));
    return FVM_OK;
}

/* ---- box index writes ---- */

static int index_well_formed(uint32_t op, size_t len, size_t to_len)
{
    if (op < BROKERMSG_INDEX_COPY_UP || op > BROKERMSG_INDEX_UPDATE)
        return 0;
    if (!len || len > BROKERMSG_INDEX_MAX_UNITS || to_len > BROKERMSG_INDEX_MAX_UNITS)
        return 0;
    return (op == BROKERMSG_INDEX_RENAME) == (to_len != 0);
}

size_t brokermsg_index_encode(const brokermsg_index *msg, uint8_t *out, size_t cap)
{
    if (!index_well_formed(msg->op, msg->len, msg->to_len) || !msg->key || (msg->to_len && !msg->to_key))
        return 0;
    size_t units = msg->len * (msg->path ? 2 : 1) + msg->to_len * (msg->to_path ? 2 : 1);
    size_t size = BROKERMSG_INDEX_HEADER + units * 2;
    if (size > cap || size > BROKERMSG_MAX)
        return 0;
    memcpy(out, BROKERMSG_INDEX_MAGIC, 8);
    put_le32(out + 8, msg->op);
    put_le32(out + 12, msg->flags);
    put_le64(out + 16, msg->base_size);
    put_le64(out + 24, (uint64_t)msg->base_mtime);
    memcpy(out + 32, msg->base_hash, 32);
    put_le16(out + 64, (uint16_t)msg->len);
    put_le16(out + 66, (uint16_t)msg->to_len);
    put_le32(out + 68, (msg->path ? 1u : 0u) | (msg->to_len && msg->to_path ? 2u : 0u));
    size_t at = BROKERMSG_INDEX_HEADER;
    const uint16_t *parts[4] = {msg->key, msg->path, msg->to_key, msg->to_path};
    size_t lens[4] = {msg->len, msg->len, msg->to_len, msg->to_len};
    for (int i = 0; i < 4; i++) {
        if (!parts[i] || !lens[i])
            continue;
        for (size_t k = 0; k < lens[i]; k++)
            put_le16(out + at + 2 * k, parts[i][k]);
        at += lens[i] * 2;
    }
    return size;
}

int brokermsg_is_index(const uint8_t *buf, size_t len)
{
    return len >= 8 && !memcmp(buf, BROKERMSG_INDEX_MAGIC, 8);
}

fvm_status brokermsg_index_decode(const uint8_t *buf, size_t len, brokermsg_index *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < BROKERMSG_INDEX_HEADER || !brokermsg_is_index(buf, len))
        return fvm_error_set(err, FVM_E_INVALID, "index message of %lu bytes: no header", (unsigned long)len);
    if (len > BROKERMSG_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "index message of %lu bytes is larger than %d", (unsigned long)len,
                             BROKERMSG_MAX);
    out->op = get_le32(buf + 8);
    out->flags = get_le32(buf + 12);
    out->base_size = get_le64(buf + 16);
    out->base_mtime = (int64_t)get_le64(buf + 24);
    memcpy(out->base_hash, buf + 32, 32);
    out->len = get_le16(buf + 64);
    out->to_len = get_le16(buf + 66);
    uint32_t paths = get_le32(buf + 68);
    if (!index_well_formed(out->op, out->len, out->to_len))
        return fvm_error_set(err, FVM_E_INVALID, "index message: op %lu with key %lu and target %lu units at offset 8",
                             (unsigned long)out->op, (unsigned long)out->len, (unsigned long)out->to_len);
    if (paths & ~3u || ((paths & 2u) && !out->to_len))
        return fvm_error_set(err, FVM_E_INVALID, "index message: path bits 0x%lx at offset 68", (unsigned long)paths);
    size_t units = out->len * (paths & 1u ? 2 : 1) + out->to_len * (paths & 2u ? 2 : 1);
    if (len != BROKERMSG_INDEX_HEADER + units * 2)
        return fvm_error_set(err, FVM_E_INVALID, "index message of %lu bytes, its lengths say %lu", (unsigned long)len,
                             (unsigned long)(BROKERMSG_INDEX_HEADER + units * 2));
    const uint16_t *at = (const uint16_t *)(const void *)(buf + BROKERMSG_INDEX_HEADER);
    out->key = at;
    at += out->len;
    if (paths & 1u) {
        out->path = at;
        at += out->len;
    }
    if (out->to_len) {
        out->to_key = at;
        at += out->to_len;
        if (paths & 2u)
            out->to_path = at;
    }
    return FVM_OK;
}

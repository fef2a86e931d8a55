/* brokermsg.c - see brokermsg.h. */
#include "core/brokermsg.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

size_t brokermsg_audit_encode(const brokermsg_audit *msg, uint8_t *out, size_t cap)
{
    const brokermsg_text *texts[5] = {&msg->op, &msg->decision, &msg->rule, &msg->image, &msg->name};
    size_t size = BROKERMSG_AUDIT_HEADER;
    for (int i = 0; i < 5; i++) {
        if (i < 4 && texts[i]->len > 0xffff)
            return 0;
        size += texts[i]->len;
    }
    if (size > cap || size > BROKERMSG_MAX || msg->name.len > 0xffffffffu)
        return 0;
    memcpy(out, BROKERMSG_AUDIT_MAGIC, 8);
    put32(out + 8, msg->type);
    put32(out + 12, msg->pid);
    for (int i = 0; i < 4; i++)
        put16(out + 16 + 2 * i, (uint16_t)texts[i]->len);
    put32(out + 24, (uint32_t)msg->name.len);
    size_t at = BROKERMSG_AUDIT_HEADER;
    for (int i = 0; i < 5; i++) {
        if (texts[i]->len)
            memcpy(out + at, texts[i]->text, texts[i]->len);
        at += texts[i]->len;
    }
    return size;
}

int brokermsg_is_audit(const uint8_t *buf, size_t len)
{
    return len >= 8 && !memcmp(buf, BROKERMSG_AUDIT_MAGIC, 8);
}

fvm_status brokermsg_audit_decode(const uint8_t *buf, size_t len, brokermsg_audit *out, fvm_error *err)
{
    if (len < BROKERMSG_AUDIT_HEADER)
        return fvm_error_set(err, FVM_E_INVALID, "audit message of %lu bytes is shorter than its header (%d)",
                             (unsigned long)len, BROKERMSG_AUDIT_HEADER);
    if (!brokermsg_is_audit(buf, len))
        return fvm_error_set(err, FVM_E_INVALID, "audit message: bad magic at offset 0");
    if (len > BROKERMSG_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "audit message of %lu bytes is larger than %d",
                             (unsigned long)len, BROKERMSG_MAX);
    memset(out, 0, sizeof *out);
    out->type = get32(buf + 8);
    out->pid = get32(buf + 12);
    brokermsg_text *texts[5] = {&out->op, &out->decision, &out->rule, &out->image, &out->name};
    size_t lens[5];
    for (int i = 0; i < 4; i++)
        lens[i] = get16(buf + 16 + 2 * i);
    lens[4] = get32(buf + 24);
    size_t at = BROKERMSG_AUDIT_HEADER;
    for (int i = 0; i < 5; i++) {
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

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

size_t brokermsg_quota_encode(const brokermsg_quota *msg, uint8_t *out, size_t cap)
{
    size_t size = msg->kind == BROKERMSG_RESERVE ? BROKERMSG_RESERVE_SIZE : BROKERMSG_FREED_SIZE;
    if ((msg->kind != BROKERMSG_RESERVE && msg->kind != BROKERMSG_FREED) || cap < size)
        return 0;
    memcpy(out, msg->kind == BROKERMSG_RESERVE ? BROKERMSG_RESERVE_MAGIC : BROKERMSG_FREED_MAGIC, 8);
    put64(out + 8, msg->bytes);
    if (msg->kind == BROKERMSG_RESERVE)
        put64(out + 16, msg->leftover);
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
    out->bytes = get64(buf + 8);
    if (out->kind == BROKERMSG_RESERVE)
        out->leftover = get64(buf + 16);
    if (out->bytes > ((uint64_t)1 << 62) || out->leftover > ((uint64_t)1 << 62))
        return fvm_error_set(err, FVM_E_INVALID, "quota message: %llu bytes at offset 8 is out of range",
                             (unsigned long long)(out->bytes > out->leftover ? out->bytes : out->leftover));
    return FVM_OK;
}

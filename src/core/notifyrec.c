/* notifyrec.c - folder change records rewritten as the host would report
 * them (see notifyrec.h). */
#include "core/notifyrec.h"

#include <string.h>

typedef struct record {
    uint32_t next;      /* offset of the next record from this one; 0: last */
    uint32_t action;
    uint32_t name_bytes;
    const uint8_t *name;
} record;

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/* The record at offset at of in, or 0 when it is not well formed. */
static int read_record(const uint8_t *in, size_t in_len, size_t at, record *r)
{
    if (at > in_len || in_len - at < NOTIFYREC_HEAD_BYTES)
        return 0;
    r->next = get32(in + at);
    r->action = get32(in + at + 4);
    r->name_bytes = get32(in + at + 8);
    r->name = in + at + NOTIFYREC_HEAD_BYTES;
    if (r->name_bytes % 2 || r->name_bytes > in_len - at - NOTIFYREC_HEAD_BYTES)
        return 0;
    if (r->next && (r->next % 4 || r->next < NOTIFYREC_HEAD_BYTES + r->name_bytes || r->next > in_len - at))
        return 0;
    return 1;
}

static uint16_t upcase(uint16_t c)
{
    return c >= 'a' && c <= 'z' ? (uint16_t)(c - 32) : c;
}

static int same_name(const record *a, const record *b)
{
    if (a->name_bytes != b->name_bytes)
        return 0;
    for (uint32_t i = 0; i < a->name_bytes; i += 2) {
        uint16_t x, y;
        memcpy(&x, a->name + i, 2);
        memcpy(&y, b->name + i, 2);
        if (upcase(x) != upcase(y))
            return 0;
    }
    return 1;
}

/* Is a MODIFIED record for r's name somewhere after offset at? */
static int modified_follows(const uint8_t *in, size_t in_len, size_t at, const record *r)
{
    record later = *r;
    while (later.next) {
        at += later.next;
        if (!read_record(in, in_len, at, &later))
            return 0;
        if (later.action == NOTIFYREC_ACTION_MODIFIED && same_name(&later, r))
            return 1;
    }
    return 0;
}

notifyrec_result notifyrec_translate(const uint8_t *in, size_t in_len, uint32_t filter,
                                     notifyrec_is_copy_up_fn is_copy_up, void *ctx, uint8_t *out, size_t out_cap,
                                     size_t *out_len)
{
    size_t at = 0, written = 0, last = (size_t)-1;
    *out_len = 0;
    if (!in_len)
        return NOTIFYREC_EMPTY;
    for (;;) {
        record r;
        if (!read_record(in, in_len, at, &r))
            return NOTIFYREC_MALFORMED;
        uint32_t action = r.action;
        if (action == NOTIFYREC_ACTION_ADDED && is_copy_up &&
            is_copy_up(ctx, (const uint16_t *)(const void *)r.name, r.name_bytes / 2)) {
            if (!(filter & NOTIFYREC_MODIFY_FILTER) || modified_follows(in, in_len, at, &r))
                action = 0;   /* dropped */
            else
                action = NOTIFYREC_ACTION_MODIFIED;
        }
        if (action) {
            size_t size = NOTIFYREC_HEAD_BYTES + r.name_bytes;
            size_t start = (written + 3) & ~(size_t)3;
            if (start > out_cap || out_cap - start < size)
                return NOTIFYREC_OVERFLOW;
            if (last != (size_t)-1)
                put32(out + last, (uint32_t)(start - last));
            if (start > written)
                memset(out + written, 0, start - written);
            put32(out + start, 0);
            put32(out + start + 4, action);
            put32(out + start + 8, r.name_bytes);
            memcpy(out + start + NOTIFYREC_HEAD_BYTES, r.name, r.name_bytes);
            last = start;
            written = start + size;
        }
        if (!r.next)
            break;
        at += r.next;
    }
    *out_len = written;
    return written ? NOTIFYREC_OK : NOTIFYREC_EMPTY;
}

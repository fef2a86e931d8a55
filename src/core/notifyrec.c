/* notifyrec.c - folder change records rewritten as the host would report
 * them (see notifyrec.h). */
#include "core/notifyrec.h"
#include "core/bytes.h"

#include <string.h>

typedef struct record {
    uint32_t next;      /* offset of the next record from this one; 0: last */
    uint32_t action;
    uint32_t name_bytes;
    const uint8_t *name;
} record;

/* The record at offset at of in, or 0 when it is not well formed. */
static int read_record(const uint8_t *in, size_t in_len, size_t at, record *r)
{
    if (at > in_len || in_len - at < NOTIFYREC_HEAD_BYTES)
        return 0;
    r->next = get_le32(in + at);
    r->action = get_le32(in + at + 4);
    r->name_bytes = get_le32(in + at + 8);
    r->name = in + at + NOTIFYREC_HEAD_BYTES;
    if (r->name_bytes % 2 || r->name_bytes > in_len - at - NOTIFYREC_HEAD_BYTES)
        return 0;
    if (r->next && (r->next < NOTIFYREC_HEAD_BYTES + r->name_bytes || r->next > in_len - at))
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

/* translate: copy-ups rewritten; otherwise the names drop says so are left out. */
static notifyrec_result rewrite(const uint8_t *in, size_t in_len, uint32_t filter, notifyrec_is_copy_up_fn is_copy_up,
                                notifyrec_is_copy_up_fn drop, void *ctx, uint8_t *out, size_t out_cap,
                                size_t *out_len)
{
    size_t at = 0, written = 0, next_start = 0, last = (size_t)-1;
    *out_len = 0;
    if (!in_len)
        return NOTIFYREC_EMPTY;
    for (;;) {
        record r;
        if (!read_record(in, in_len, at, &r))
            return NOTIFYREC_MALFORMED;
        uint32_t action = r.action;
        int copy_up = action == NOTIFYREC_ACTION_ADDED && is_copy_up
                          ? is_copy_up(ctx, (const uint16_t *)(const void *)r.name, r.name_bytes / 2)
                          : 0;
        if (copy_up) {
            if (copy_up == NOTIFYREC_COPY_UP_UNCHANGED || !(filter & NOTIFYREC_MODIFY_FILTER) ||
                modified_follows(in, in_len, at, &r))
                action = 0;   /* dropped */
            else
                action = NOTIFYREC_ACTION_MODIFIED;
        }
        if (drop && drop(ctx, (const uint16_t *)(const void *)r.name, r.name_bytes / 2))
            action = 0;
        if (action) {
            size_t size = NOTIFYREC_HEAD_BYTES + r.name_bytes;
            size_t start = next_start;
            if (start > out_cap || out_cap - start < size)
                return NOTIFYREC_OVERFLOW;
            if (last != (size_t)-1)
                put_le32(out + last, (uint32_t)(start - last));
            if (start > written)
                memset(out + written, 0, start - written);
            put_le32(out + start, 0);
            put_le32(out + start + 4, action);
            put_le32(out + start + 8, r.name_bytes);
            memcpy(out + start + NOTIFYREC_HEAD_BYTES, r.name, r.name_bytes);
            last = start;
            written = start + size;
            next_start = start + (r.next ? r.next : size);   /* the input's spacing */
        }
        if (!r.next)
            break;
        at += r.next;
    }
    *out_len = written;
    return written ? NOTIFYREC_OK : NOTIFYREC_EMPTY;
}

notifyrec_result notifyrec_translate(const uint8_t *in, size_t in_len, uint32_t filter,
                                     notifyrec_is_copy_up_fn is_copy_up, void *ctx, uint8_t *out, size_t out_cap,
                                     size_t *out_len)
{
    return rewrite(in, in_len, filter, is_copy_up, NULL, ctx, out, out_cap, out_len);
}

notifyrec_result notifyrec_filter(const uint8_t *in, size_t in_len, notifyrec_is_copy_up_fn drop, void *ctx,
                                  uint8_t *out, size_t out_cap, size_t *out_len)
{
    return rewrite(in, in_len, 0, NULL, drop, ctx, out, out_cap, out_len);
}

notifyrec_result notifyrec_append(uint8_t *queue, size_t cap, size_t *queued, size_t *last, const uint8_t *recs,
                                  size_t recs_len)
{
    if (!recs_len)
        return NOTIFYREC_OK;
    size_t start = (*queued + 3) & ~(size_t)3;
    if (start > cap || cap - start < recs_len)
        return NOTIFYREC_OVERFLOW;
    /* The last record of recs, to remember. */
    size_t at = 0;
    record r;
    while (read_record(recs, recs_len, at, &r) && r.next)
        at += r.next;
    if (*queued)
        put_le32(queue + *last, (uint32_t)(start - *last));
    if (start > *queued)
        memset(queue + *queued, 0, start - *queued);
    memcpy(queue + start, recs, recs_len);
    *last = start + at;
    *queued = start + recs_len;
    return NOTIFYREC_OK;
}

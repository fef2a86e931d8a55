/* portmap.c - a box's loopback port space: the map the broker writes and
 * the box's processes read (see portmap.h for the idea).
 *
 * Readers and the one writer share the structure without a lock: the
 * writer makes seq odd, changes entries, makes it even again; a reader
 * copies what it needs between two reads of an even, unchanged seq and
 * otherwise reads again. A reader never waits for the writer (a broker
 * stopped mid-write leaves seq odd: readers give up after a bounded number
 * of tries and answer "no mapping"). */
#include "core/portmap.h"
#include "core/bytes.h"

#include <string.h>

#define READ_TRIES 10000

static uint32_t seq_load(const portmap *m)
{
    return __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
}

static void write_begin(portmap *m)
{
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void write_end(portmap *m)
{
    __atomic_store_n(&m->seq, m->seq + 1, __ATOMIC_RELEASE);
}

void portmap_init(portmap *m)
{
    memset(m, 0, sizeof *m);
    m->magic = PORTMAP_MAGIC;
}

static int valid_key(uint8_t proto, uint8_t family)
{
    return (proto == PORTMAP_TCP || proto == PORTMAP_UDP) && (family == 4 || family == 6);
}

/* What a reader looks for: by virtual port, by real port, or a published port. */
typedef enum { FIND_REAL_OF, FIND_VIRTUAL_OF, FIND_PUBLISHED } find_kind;

static uint16_t find(const portmap *m, find_kind kind, uint8_t proto, uint8_t family, uint16_t port)
{
    if (!m || m->magic != PORTMAP_MAGIC || !port)
        return 0;
    for (int tries = 0; tries < READ_TRIES; tries++) {
        uint32_t before = seq_load(m);
        if (before & 1)
            continue;
        uint16_t found = 0;
        const volatile portmap *v = m;
        if (kind == FIND_PUBLISHED) {
            uint32_t n = v->publish_count;
            for (uint32_t i = 0; i < n && i < PORTMAP_PUBLISH_MAX && !found; i++)
                if (v->publish[i].proto == proto && v->publish[i].box == port)
                    found = v->publish[i].host;
        } else {
            uint32_t n = v->count;
            for (uint32_t i = 0; i < n && i < PORTMAP_MAX && !found; i++) {
                const volatile portmap_entry *e = &v->entries[i];
                if (e->proto != proto || e->family != family)
                    continue;
                if (kind == FIND_REAL_OF && e->vport == port)
                    found = e->real;
                else if (kind == FIND_VIRTUAL_OF && e->real == port)
                    found = e->vport;
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (seq_load(m) == before)
            return found;
    }
    return 0;
}

uint16_t portmap_real_of(const portmap *m, uint8_t proto, uint8_t family, uint16_t vport)
{
    return find(m, FIND_REAL_OF, proto, family, vport);
}

uint16_t portmap_virtual_of(const portmap *m, uint8_t proto, uint8_t family, uint16_t real)
{
    return find(m, FIND_VIRTUAL_OF, proto, family, real);
}

uint16_t portmap_published(const portmap *m, uint8_t proto, uint16_t vport)
{
    return find(m, FIND_PUBLISHED, proto, 0, vport);
}

size_t portmap_snapshot(const portmap *m, portmap_entry *entries, size_t cap, portmap_publish *publish,
                        size_t publish_cap, size_t *publish_count)
{
    *publish_count = 0;
    if (!m || m->magic != PORTMAP_MAGIC)
        return 0;
    for (int tries = 0; tries < READ_TRIES; tries++) {
        uint32_t before = seq_load(m);
        if (before & 1)
            continue;
        const volatile portmap *v = m;
        size_t n = v->count, p = v->publish_count;
        if (n > PORTMAP_MAX)
            n = PORTMAP_MAX;
        if (p > PORTMAP_PUBLISH_MAX)
            p = PORTMAP_PUBLISH_MAX;
        if (n > cap)
            n = cap;
        if (p > publish_cap)
            p = publish_cap;
        for (size_t i = 0; i < n; i++)
            memcpy(&entries[i], (const void *)&v->entries[i], sizeof entries[i]);
        for (size_t i = 0; i < p; i++)
            memcpy(&publish[i], (const void *)&v->publish[i], sizeof publish[i]);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (seq_load(m) == before) {
            *publish_count = p;
            return n;
        }
    }
    return 0;
}

/* ---- the writer ---- */

/* Removes entries[i] (the last one takes its place); inside a write. */
static void remove_at(portmap *m, uint32_t i)
{
    m->entries[i] = m->entries[m->count - 1];
    memset(&m->entries[m->count - 1], 0, sizeof m->entries[0]);
    m->count--;
}

static int same_key(const portmap_entry *e, uint8_t proto, uint8_t family, uint16_t vport)
{
    return e->proto == proto && e->family == family && e->vport == vport;
}

fvm_status portmap_claim_flags(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint32_t pid, uint16_t flags,
                               int (*alive)(uint32_t pid, void *ctx), void *ctx, uint16_t *join, fvm_error *err)
{
    if (join)
        *join = 0;
    if (!valid_key(proto, family) || !vport || (flags & ~PORTMAP_SHARED))
        return fvm_error_set(err, FVM_E_INVALID, "portmap: bad claim (proto %u, family %u, port %u)", proto, family,
                             vport);
    /* Entries of processes that ended go first. */
    for (uint32_t i = 0; alive && i < m->count;) {
        if (same_key(&m->entries[i], proto, family, vport) && !alive(m->entries[i].pid, ctx)) {
            write_begin(m);
            remove_at(m, i);
            write_end(m);
        } else {
            i++;
        }
    }
    const portmap_entry *taken = NULL;
    uint16_t real = 0;
    int all_shared = 1;
    for (uint32_t i = 0; i < m->count; i++) {
        const portmap_entry *e = &m->entries[i];
        if (!same_key(e, proto, family, vport))
            continue;
        taken = e;
        if (!(e->flags & PORTMAP_SHARED))
            all_shared = 0;
        if (e->real)
            real = e->real;
    }
    if (taken && (!(flags & PORTMAP_SHARED) || !all_shared || !real))
        return fvm_error_set(err, FVM_E_EXISTS, "port %u is bound in the box by process %u", vport, taken->pid);
    if (m->count >= PORTMAP_MAX)
        return fvm_error_set(err, FVM_E_RANGE, "the box has %u bound ports, the most it keeps", PORTMAP_MAX);
    write_begin(m);
    portmap_entry *e = &m->entries[m->count++];
    e->vport = vport;
    e->real = 0;
    e->proto = proto;
    e->family = family;
    e->flags = flags;
    e->pid = pid;
    write_end(m);
    if (join)
        *join = taken ? real : 0;
    return FVM_OK;
}

fvm_status portmap_claim(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint32_t pid,
                         int (*alive)(uint32_t pid, void *ctx), void *ctx, fvm_error *err)
{
    return portmap_claim_flags(m, proto, family, vport, pid, 0, alive, ctx, NULL, err);
}

fvm_status portmap_bound(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint16_t real, uint32_t pid,
                         fvm_error *err)
{
    portmap_entry *e = NULL;
    for (uint32_t i = 0; i < m->count; i++)   /* pid's claim still being bound first */
        if (same_key(&m->entries[i], proto, family, vport) && m->entries[i].pid == pid &&
            (!e || (e->real && !m->entries[i].real)))
            e = &m->entries[i];
    if (!e || !real)
        return fvm_error_set(err, FVM_E_NOTFOUND, "port %u: no claim of process %u", vport, pid);
    for (uint32_t i = 0; i < m->count; i++) {
        const portmap_entry *o = &m->entries[i];
        if (o != e && o->proto == proto && o->family == family && o->real == real &&
            !(o->vport == vport && (o->flags & e->flags & PORTMAP_SHARED)))
            return fvm_error_set(err, FVM_E_EXISTS, "real port %u stands for box port %u already", real, o->vport);
    }
    write_begin(m);
    e->real = real;
    write_end(m);
    return FVM_OK;
}

int portmap_release(portmap *m, uint8_t proto, uint8_t family, uint16_t vport, uint32_t pid)
{
    for (uint32_t i = 0; i < m->count; i++) {
        portmap_entry *e = &m->entries[i];
        if (e->proto == proto && e->family == family && e->vport == vport && e->pid == pid) {
            write_begin(m);
            remove_at(m, i);
            write_end(m);
            return 1;
        }
    }
    return 0;
}

size_t portmap_forget_pid(portmap *m, uint32_t pid)
{
    size_t gone = 0;
    write_begin(m);
    for (uint32_t i = 0; i < m->count;) {
        if (m->entries[i].pid == pid) {
            remove_at(m, i);
            gone++;
        } else {
            i++;
        }
    }
    write_end(m);
    return gone;
}

void portmap_set_publish(portmap *m, const portmap_publish *list, size_t count)
{
    if (count > PORTMAP_PUBLISH_MAX)
        count = PORTMAP_PUBLISH_MAX;
    write_begin(m);
    memset(m->publish, 0, sizeof m->publish);
    if (count)
        memcpy(m->publish, list, count * sizeof list[0]);
    m->publish_count = (uint32_t)count;
    write_end(m);
}

/* ---- the publish setting ---- */

static int is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t';
}

/* A port 1..65535 at text[*at]; advances *at. */
static int parse_port(const char *text, size_t len, size_t *at, uint16_t *out)
{
    uint32_t v = 0;
    size_t start = *at;
    while (*at < len && text[*at] >= '0' && text[*at] <= '9' && *at - start < 6)
        v = v * 10 + (uint32_t)(text[(*at)++] - '0');
    if (*at == start || v == 0 || v > 65535 || (*at < len && text[*at] >= '0' && text[*at] <= '9')) {
        *at = start;   /* the error names where the port starts */
        return 0;
    }
    *out = (uint16_t)v;
    return 1;
}

static fvm_status bad(fvm_error *err, size_t column, const char *what, const char *text, size_t from, size_t len)
{
    size_t to = from;
    while (to < len && !is_sep(text[to]))
        to++;
    int n = (int)(to - from > 40 ? 40 : to - from);
    return fvm_error_set(err, FVM_E_PARSE, "column %u: %s '%.*s'", (unsigned)column, what, n, text + from);
}

fvm_status portmap_publish_parse(const char *text, size_t len, portmap_publish *out, size_t cap, size_t *count,
                                 fvm_error *err)
{
    *count = 0;
    size_t at = 0;
    while (at < len && is_sep(text[at]))
        at++;
    if (len - at == 4 && !memcmp(text + at, "none", 4))
        return FVM_OK;
    while (at < len) {
        size_t item = at;
        portmap_publish p;
        memset(&p, 0, sizeof p);
        p.proto = PORTMAP_TCP;
        if (!parse_port(text, len, &at, &p.host))
            return bad(err, at + 1, "bad host port in", text, item, len);
        if (at >= len || text[at] != ':')
            return bad(err, at + 1, "expected HOSTPORT:BOXPORT, got", text, item, len);
        at++;
        if (!parse_port(text, len, &at, &p.box))
            return bad(err, at + 1, "bad box port in", text, item, len);
        if (at < len && text[at] == '/') {
            at++;
            if (len - at >= 3 && !memcmp(text + at, "tcp", 3))
                p.proto = PORTMAP_TCP;
            else if (len - at >= 3 && !memcmp(text + at, "udp", 3))
                p.proto = PORTMAP_UDP;
            else
                return bad(err, at + 1, "the protocol is tcp or udp, not", text, at, len);
            at += 3;
        }
        if (at < len && !is_sep(text[at]))
            return bad(err, at + 1, "unexpected text after", text, item, len);
        for (size_t i = 0; i < *count; i++)
            if (out[i].proto == p.proto && (out[i].host == p.host || out[i].box == p.box))
                return bad(err, item + 1, out[i].host == p.host ? "host port published twice:" : "box port published twice:",
                           text, item, len);
        if (*count >= cap)
            return fvm_error_set(err, FVM_E_RANGE, "column %u: more than %u published ports", (unsigned)(item + 1),
                                 (unsigned)cap);
        out[(*count)++] = p;
        while (at < len && is_sep(text[at]))
            at++;
    }
    return FVM_OK;
}

static size_t put_uint(char *out, size_t at, size_t cap, unsigned v)
{
    char digits[8];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k && at + 1 < cap)
        out[at++] = digits[--k];
    return at;
}

size_t portmap_publish_format(const portmap_publish *list, size_t count, char *out, size_t cap)
{
    size_t at = 0;
    if (!cap)
        return 0;
    if (!count) {
        const char *none = "none";
        while (*none && at + 1 < cap)
            out[at++] = *none++;
    }
    for (size_t i = 0; i < count; i++) {
        if (i && at + 1 < cap)
            out[at++] = ',';
        at = put_uint(out, at, cap, list[i].host);
        if (at + 1 < cap)
            out[at++] = ':';
        at = put_uint(out, at, cap, list[i].box);
        if (list[i].proto == PORTMAP_UDP)
            for (const char *s = "/udp"; *s && at + 1 < cap; s++)
                out[at++] = *s;
    }
    out[at] = 0;
    return at;
}

/* ---- the request ---- */

size_t portmap_request_encode(const portmap_request *r, uint8_t *out, size_t cap)
{
    if (cap < PORTMAP_REQUEST_SIZE)
        return 0;
    memcpy(out, PORTMAP_REQUEST_MAGIC, 8);
    out[8] = (uint8_t)r->op;
    out[9] = (uint8_t)(r->op >> 8);
    out[10] = (uint8_t)(r->op >> 16);
    out[11] = (uint8_t)(r->op >> 24);
    out[12] = r->proto;
    out[13] = r->family;
    put_le16(out + 14, r->vport);
    put_le16(out + 16, r->real);
    put_le16(out + 18, r->flags);
    return PORTMAP_REQUEST_SIZE;
}

int portmap_is_request(const uint8_t *buf, size_t len)
{
    return len >= 8 && !memcmp(buf, PORTMAP_REQUEST_MAGIC, 8);
}

fvm_status portmap_request_decode(const uint8_t *buf, size_t len, portmap_request *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    if (len != PORTMAP_REQUEST_SIZE || !portmap_is_request(buf, len))
        return fvm_error_set(err, FVM_E_INVALID, "port request: %u bytes, not %u with the magic", (unsigned)len,
                             PORTMAP_REQUEST_SIZE);
    out->op = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24;
    out->proto = buf[12];
    out->family = buf[13];
    out->vport = get_le16(buf + 14);
    out->real = get_le16(buf + 16);
    out->flags = get_le16(buf + 18);
    if (out->flags & ~PORTMAP_SHARED)
        return fvm_error_set(err, FVM_E_INVALID, "port request at 18: unknown flags %#x", out->flags);
    if (out->op < PORTMAP_OP_CLAIM || out->op > PORTMAP_OP_RELEASE)
        return fvm_error_set(err, FVM_E_INVALID, "port request at 8: unknown op %u", out->op);
    if (!valid_key(out->proto, out->family))
        return fvm_error_set(err, FVM_E_INVALID, "port request at 12: bad proto %u or family %u", out->proto,
                             out->family);
    if (!out->vport || (out->op == PORTMAP_OP_BOUND && !out->real))
        return fvm_error_set(err, FVM_E_INVALID, "port request at 14: port 0");
    return FVM_OK;
}

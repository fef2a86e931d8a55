/* resolvemsg.c - the name-resolution messages between a boxed process and
 * its broker, and the ADDRINFOA block the program gets (resolvemsg.h).
 *
 * Fixed-width little-endian fields and bounded strings: the decoders only
 * check bounds and ranges, and every string is copied NUL-terminated, so
 * neither side ever reads past what it received. */
#include "core/resolvemsg.h"
#include "core/bytes.h"

#include <string.h>

/* Printable ASCII, the only characters a host name or service name here has
 * (an international name reaches getaddrinfo as punycode). */
static int printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int resolve_is_request(const uint8_t *buf, size_t len)
{
    return len >= 8 && !memcmp(buf, RESOLVE_REQUEST_MAGIC, 8);
}

size_t resolve_request_encode(const resolve_request *r, uint8_t *out, size_t cap)
{
    size_t size = RESOLVE_REQUEST_HEADER + r->node_len + r->service_len;
    if (!r->node_len || r->node_len > RESOLVE_NODE_MAX || r->service_len > RESOLVE_SERVICE_MAX || size > cap ||
        !printable(r->node, r->node_len) || !printable(r->service, r->service_len))
        return 0;
    memcpy(out, RESOLVE_REQUEST_MAGIC, 8);
    put_le32(out + 8, (uint32_t)r->flags);
    put_le32(out + 12, (uint32_t)r->family);
    put_le32(out + 16, (uint32_t)r->socktype);
    put_le32(out + 20, (uint32_t)r->protocol);
    put_le16(out + 24, (uint16_t)r->node_len);
    put_le16(out + 26, (uint16_t)r->service_len);
    put_le32(out + 28, 0);
    memcpy(out + RESOLVE_REQUEST_HEADER, r->node, r->node_len);
    memcpy(out + RESOLVE_REQUEST_HEADER + r->node_len, r->service, r->service_len);
    return size;
}

fvm_status resolve_request_decode(const uint8_t *buf, size_t len, resolve_request *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < RESOLVE_REQUEST_HEADER || !resolve_is_request(buf, len))
        return fvm_error_set(err, FVM_E_INVALID, "resolve request: %u bytes, no header", (unsigned)len);
    out->flags = (int32_t)get_le32(buf + 8);
    out->family = (int32_t)get_le32(buf + 12);
    out->socktype = (int32_t)get_le32(buf + 16);
    out->protocol = (int32_t)get_le32(buf + 20);
    out->node_len = get_le16(buf + 24);
    out->service_len = get_le16(buf + 26);
    if (get_le32(buf + 28))
        return fvm_error_set(err, FVM_E_INVALID, "resolve request at 28: reserved field not 0");
    if (!out->node_len || out->node_len > RESOLVE_NODE_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "resolve request at 24: node of %u bytes", (unsigned)out->node_len);
    if (out->service_len > RESOLVE_SERVICE_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "resolve request at 26: service of %u bytes",
                             (unsigned)out->service_len);
    if (len != RESOLVE_REQUEST_HEADER + out->node_len + out->service_len)
        return fvm_error_set(err, FVM_E_INVALID, "resolve request: %u bytes, the header says %u", (unsigned)len,
                             (unsigned)(RESOLVE_REQUEST_HEADER + out->node_len + out->service_len));
    const char *node = (const char *)buf + RESOLVE_REQUEST_HEADER;
    const char *service = node + out->node_len;
    if (!printable(node, out->node_len))
        return fvm_error_set(err, FVM_E_INVALID, "resolve request at %u: node not printable ASCII",
                             RESOLVE_REQUEST_HEADER);
    if (!printable(service, out->service_len))
        return fvm_error_set(err, FVM_E_INVALID, "resolve request at %u: service not printable ASCII",
                             (unsigned)(RESOLVE_REQUEST_HEADER + out->node_len));
    memcpy(out->node, node, out->node_len);
    memcpy(out->service, service, out->service_len);
    return FVM_OK;
}

int resolve_entry_valid(const resolve_entry *e)
{
    uint16_t own = get_le16(e->addr);
    if (e->family == RESOLVE_AF_INET)
        return e->addr_len == 16 && own == RESOLVE_AF_INET;
    if (e->family == RESOLVE_AF_INET6)
        return e->addr_len == 28 && own == RESOLVE_AF_INET6;
    return 0;
}

size_t resolve_reply_encode(const resolve_reply *r, uint8_t *out, size_t cap)
{
    size_t size = RESOLVE_REPLY_HEADER + r->canon_len + (size_t)r->count * RESOLVE_ENTRY_SIZE;
    if (r->count > RESOLVE_MAX_ENTRIES || r->canon_len > 255 || size > cap || !printable(r->canon, r->canon_len))
        return 0;
    for (uint32_t i = 0; i < r->count; i++)
        if (!resolve_entry_valid(&r->entries[i]))
            return 0;
    put_le32(out, RESOLVE_VERSION);
    put_le32(out + 4, (uint32_t)r->error);
    put_le16(out + 8, (uint16_t)r->count);
    put_le16(out + 10, (uint16_t)r->canon_len);
    memcpy(out + RESOLVE_REPLY_HEADER, r->canon, r->canon_len);
    uint8_t *p = out + RESOLVE_REPLY_HEADER + r->canon_len;
    for (uint32_t i = 0; i < r->count; i++, p += RESOLVE_ENTRY_SIZE) {
        const resolve_entry *e = &r->entries[i];
        put_le32(p, (uint32_t)e->flags);
        put_le32(p + 4, (uint32_t)e->family);
        put_le32(p + 8, (uint32_t)e->socktype);
        put_le32(p + 12, (uint32_t)e->protocol);
        put_le32(p + 16, e->addr_len);
        memcpy(p + 20, e->addr, 28);
    }
    return size;
}

fvm_status resolve_reply_decode(const uint8_t *buf, size_t len, resolve_reply *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < RESOLVE_REPLY_HEADER)
        return fvm_error_set(err, FVM_E_INVALID, "resolve reply: %u bytes, no header", (unsigned)len);
    if (get_le32(buf) != RESOLVE_VERSION)
        return fvm_error_set(err, FVM_E_INVALID, "resolve reply at 0: version %u", (unsigned)get_le32(buf));
    out->error = (int32_t)get_le32(buf + 4);
    out->count = get_le16(buf + 8);
    out->canon_len = get_le16(buf + 10);
    if (out->count > RESOLVE_MAX_ENTRIES)
        return fvm_error_set(err, FVM_E_INVALID, "resolve reply at 8: %u entries", (unsigned)out->count);
    if (out->canon_len > 255)
        return fvm_error_set(err, FVM_E_INVALID, "resolve reply at 10: name of %u bytes", (unsigned)out->canon_len);
    if (len != RESOLVE_REPLY_HEADER + out->canon_len + (size_t)out->count * RESOLVE_ENTRY_SIZE)
        return fvm_error_set(err, FVM_E_INVALID, "resolve reply: %u bytes, the header says %u", (unsigned)len,
                             (unsigned)(RESOLVE_REPLY_HEADER + out->canon_len + out->count * RESOLVE_ENTRY_SIZE));
    if (out->error && out->count)
        return fvm_error_set(err, FVM_E_INVALID, "resolve reply at 4: an error with entries");
    if (!printable((const char *)buf + RESOLVE_REPLY_HEADER, out->canon_len))
        return fvm_error_set(err, FVM_E_INVALID, "resolve reply at %u: name not printable ASCII",
                             RESOLVE_REPLY_HEADER);
    memcpy(out->canon, buf + RESOLVE_REPLY_HEADER, out->canon_len);
    const uint8_t *p = buf + RESOLVE_REPLY_HEADER + out->canon_len;
    for (uint32_t i = 0; i < out->count; i++, p += RESOLVE_ENTRY_SIZE) {
        resolve_entry *e = &out->entries[i];
        e->flags = (int32_t)get_le32(p);
        e->family = (int32_t)get_le32(p + 4);
        e->socktype = (int32_t)get_le32(p + 8);
        e->protocol = (int32_t)get_le32(p + 12);
        e->addr_len = get_le32(p + 16);
        memcpy(e->addr, p + 20, 28);
        if (!resolve_entry_valid(e))
            return fvm_error_set(err, FVM_E_INVALID, "resolve reply at %u: entry %u is no IPv4 or IPv6 address",
                                 (unsigned)(p - buf), (unsigned)i);
    }
    return FVM_OK;
}

/* An address as a reply entry carries it: family, length and the
 * address's own family field agree. */
static int address_valid(uint32_t addr_len, const uint8_t addr[28])
{
    resolve_entry e;
    memset(&e, 0, sizeof e);
    e.family = get_le16(addr);
    e.addr_len = addr_len;
    memcpy(e.addr, addr, 28);
    return resolve_entry_valid(&e);
}

int resolve_is_reverse(const uint8_t *buf, size_t len)
{
    return len >= 8 && !memcmp(buf, RESOLVE_REVERSE_MAGIC, 8);
}

size_t resolve_reverse_encode(const resolve_reverse *r, uint8_t *out, size_t cap)
{
    if (cap < RESOLVE_REVERSE_SIZE || !address_valid(r->addr_len, r->addr))
        return 0;
    memcpy(out, RESOLVE_REVERSE_MAGIC, 8);
    put_le32(out + 8, (uint32_t)r->flags);
    put_le32(out + 12, r->addr_len);
    memcpy(out + 16, r->addr, 28);
    return RESOLVE_REVERSE_SIZE;
}

fvm_status resolve_reverse_decode(const uint8_t *buf, size_t len, resolve_reverse *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    if (len != RESOLVE_REVERSE_SIZE || !resolve_is_reverse(buf, len))
        return fvm_error_set(err, FVM_E_INVALID, "reverse request: %u bytes, not %u with the magic", (unsigned)len,
                             RESOLVE_REVERSE_SIZE);
    out->flags = (int32_t)get_le32(buf + 8);
    out->addr_len = get_le32(buf + 12);
    memcpy(out->addr, buf + 16, 28);
    if (!address_valid(out->addr_len, out->addr))
        return fvm_error_set(err, FVM_E_INVALID, "reverse request at 12: no IPv4 or IPv6 address");
    return FVM_OK;
}

size_t resolve_names_encode(const resolve_names *r, uint8_t *out, size_t cap)
{
    size_t size = RESOLVE_NAMES_HEADER + r->host_len + r->serv_len;
    if (r->host_len > 255 || r->serv_len > RESOLVE_SERVICE_MAX || size > cap || !printable(r->host, r->host_len) ||
        !printable(r->serv, r->serv_len) || (r->error && (r->host_len || r->serv_len)))
        return 0;
    put_le32(out, RESOLVE_VERSION);
    put_le32(out + 4, (uint32_t)r->error);
    put_le16(out + 8, (uint16_t)r->host_len);
    put_le16(out + 10, (uint16_t)r->serv_len);
    memcpy(out + RESOLVE_NAMES_HEADER, r->host, r->host_len);
    memcpy(out + RESOLVE_NAMES_HEADER + r->host_len, r->serv, r->serv_len);
    return size;
}

fvm_status resolve_names_decode(const uint8_t *buf, size_t len, resolve_names *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < RESOLVE_NAMES_HEADER)
        return fvm_error_set(err, FVM_E_INVALID, "names reply: %u bytes, no header", (unsigned)len);
    if (get_le32(buf) != RESOLVE_VERSION)
        return fvm_error_set(err, FVM_E_INVALID, "names reply at 0: version %u", (unsigned)get_le32(buf));
    out->error = (int32_t)get_le32(buf + 4);
    out->host_len = get_le16(buf + 8);
    out->serv_len = get_le16(buf + 10);
    if (out->host_len > 255 || out->serv_len > RESOLVE_SERVICE_MAX)
        return fvm_error_set(err, FVM_E_INVALID, "names reply at 8: names of %u and %u bytes", (unsigned)out->host_len,
                             (unsigned)out->serv_len);
    if (len != RESOLVE_NAMES_HEADER + out->host_len + out->serv_len)
        return fvm_error_set(err, FVM_E_INVALID, "names reply: %u bytes, the header says %u", (unsigned)len,
                             (unsigned)(RESOLVE_NAMES_HEADER + out->host_len + out->serv_len));
    if (out->error && (out->host_len || out->serv_len))
        return fvm_error_set(err, FVM_E_INVALID, "names reply at 4: an error with names");
    const char *host = (const char *)buf + RESOLVE_NAMES_HEADER, *serv = host + out->host_len;
    if (!printable(host, out->host_len) || !printable(serv, out->serv_len))
        return fvm_error_set(err, FVM_E_INVALID, "names reply at %u: a name not printable ASCII",
                             RESOLVE_NAMES_HEADER);
    memcpy(out->host, host, out->host_len);
    memcpy(out->serv, serv, out->serv_len);
    return FVM_OK;
}

#define ADDR_SLOT 32

size_t resolve_layout_size(const resolve_reply *r)
{
    return (size_t)r->count * (RESOLVE_ADDRINFO_SIZE + ADDR_SLOT) + (r->canon_len ? r->canon_len + 1 : 0);
}

void resolve_layout(const resolve_reply *r, void *block, uint64_t base)
{
    uint8_t *b = block;
    size_t addrs = (size_t)r->count * RESOLVE_ADDRINFO_SIZE;
    size_t canon = addrs + (size_t)r->count * ADDR_SLOT;
    memset(b, 0, resolve_layout_size(r));
    for (uint32_t i = 0; i < r->count; i++) {
        const resolve_entry *e = &r->entries[i];
        uint8_t *ai = b + (size_t)i * RESOLVE_ADDRINFO_SIZE;
        size_t addr = addrs + (size_t)i * ADDR_SLOT;
        put_le32(ai, (uint32_t)e->flags);
        put_le32(ai + 4, (uint32_t)e->family);
        put_le32(ai + 8, (uint32_t)e->socktype);
        put_le32(ai + 12, (uint32_t)e->protocol);
        put_le64(ai + 16, e->addr_len);
        put_le64(ai + 24, i == 0 && r->canon_len ? base + canon : 0);
        put_le64(ai + 32, base + addr);
        put_le64(ai + 40, i + 1 < r->count ? base + (uint64_t)(i + 1) * RESOLVE_ADDRINFO_SIZE : 0);
        memcpy(b + addr, e->addr, e->addr_len);
    }
    if (r->canon_len)
        memcpy(b + canon, r->canon, r->canon_len);   /* the terminator: memset's */
}

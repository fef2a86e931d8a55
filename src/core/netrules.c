/* netrules.c - [net] patterns parsed into a small structure, and matched
 * against one socket operation (core/netrules.h has the syntax).
 *
 * The policy engine's trie matches names by components; an address rule
 * needs arithmetic instead (a CIDR prefix, a port range), so [net] rules
 * are kept in the blob as written and each process parses its own rules
 * once, at start, with this file; a decision is then a pass over those few
 * rules. Parsing is strict: anything that is not exactly one of the forms
 * is an error naming the unit where it went wrong, never a rule that
 * silently matches something else. */
#include "core/netrules.h"

#include <string.h>

static char lower_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower_ascii(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static int word_is(const char *s, size_t n, const char *word)
{
    size_t k = 0;
    for (; k < n && word[k]; k++)
        if (lower_ascii(s[k]) != word[k])
            return 0;
    return k == n && !word[k];
}

/* ---- addresses ---- */

static int parse_ipv4(const char *s, size_t n, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && is_digit(s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
            return 0;   /* empty, too large, or a leading zero (octal in some parsers) */
        out[part] = (uint8_t)v;
    }
    return i == n;
}

static int parse_ipv6(const char *s, size_t n, uint8_t out[16])
{
    uint16_t words[8];
    int count = 0, gap = -1;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    } else if (n >= 1 && s[0] == ':') {
        return 0;
    }
    while (i < n) {
        if (count >= 8)
            return 0;
        size_t start = i;
        unsigned v = 0;
        while (i < n && hex_value(s[i]) >= 0 && i - start < 4)
            v = v * 16 + (unsigned)hex_value(s[i++]);
        if (i < n && s[i] == '.') {
            /* An embedded IPv4 address ends the text. */
            uint8_t v4[4];
            if (count > 6 || !parse_ipv4(s + start, n - start, v4))
                return 0;
            words[count++] = (uint16_t)(v4[0] << 8 | v4[1]);
            words[count++] = (uint16_t)(v4[2] << 8 | v4[3]);
            i = n;
            break;
        }
        if (i == start)
            return 0;
        words[count++] = (uint16_t)v;
        if (i == n)
            break;
        if (s[i] != ':')
            return 0;
        i++;
        if (i < n && s[i] == ':') {
            if (gap >= 0)
                return 0;   /* two "::" */
            gap = count;
            i++;
        } else if (i == n) {
            return 0;       /* a trailing single ':' */
        }
    }
    if (gap < 0 && count != 8)
        return 0;
    if (gap >= 0 && count > 7)
        return 0;
    uint16_t full[8] = {0};
    if (gap < 0) {
        memcpy(full, words, sizeof full);
    } else {
        int tail = count - gap;
        for (int k = 0; k < gap; k++)
            full[k] = words[k];
        for (int k = 0; k < tail; k++)
            full[8 - tail + k] = words[gap + k];
    }
    for (int k = 0; k < 8; k++) {
        out[2 * k] = (uint8_t)(full[k] >> 8);
        out[2 * k + 1] = (uint8_t)full[k];
    }
    return 1;
}

void net_addr_normalize(net_addr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a->family == 6 && !memcmp(a->bytes, mapped, 12)) {
        uint8_t v4[4];
        memcpy(v4, a->bytes + 12, 4);
        memset(a->bytes, 0, sizeof a->bytes);
        memcpy(a->bytes, v4, 4);
        a->family = 4;
    }
}

int net_addr_parse(const char *text, size_t n, net_addr *out)
{
    memset(out, 0, sizeof *out);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    } else if (parse_ipv4(text, n, out->bytes)) {
        out->family = 4;
        return 1;
    }
    if (!parse_ipv6(text, n, out->bytes))
        return 0;
    out->family = 6;
    net_addr_normalize(out);
    return 1;
}

static size_t put(char *out, size_t cap, size_t at, const char *s)
{
    while (*s) {
        if (at + 1 < cap)
            out[at] = *s;
        at++;
        s++;
    }
    return at;
}

static size_t put_number(char *out, size_t cap, size_t at, unsigned v, int base)
{
    char digits[12];
    int k = 0;
    do {
        digits[k++] = "0123456789abcdef"[v % (unsigned)base];
        v /= (unsigned)base;
    } while (v);
    while (k)
        at = put(out, cap, at, (char[2]){digits[--k], 0});
    return at;
}

size_t net_addr_format(const net_addr *a, int port, char *out, size_t cap)
{
    size_t at = 0;
    if (a->family == 4) {
        for (int k = 0; k < 4; k++) {
            if (k)
                at = put(out, cap, at, ".");
            at = put_number(out, cap, at, a->bytes[k], 10);
        }
    } else if (a->family == 6) {
        uint16_t w[8];
        for (int k = 0; k < 8; k++)
            w[k] = (uint16_t)(a->bytes[2 * k] << 8 | a->bytes[2 * k + 1]);
        int best = -1, best_len = 1;   /* the longest run of two or more zero words becomes "::" */
        for (int k = 0; k < 8;) {
            int len = 0;
            while (k + len < 8 && !w[k + len])
                len++;
            if (len > best_len) {
                best = k;
                best_len = len;
            }
            k += len ? len : 1;
        }
        at = put(out, cap, at, "[");
        for (int k = 0; k < 8; k++) {
            if (k == best) {
                at = put(out, cap, at, "::");
                k += best_len - 1;
                continue;
            }
            if (k && k != best + best_len)
                at = put(out, cap, at, ":");
            at = put_number(out, cap, at, w[k], 16);
        }
        at = put(out, cap, at, "]");
    } else {
        at = put(out, cap, at, "*");
    }
    if (port >= 0) {
        at = put(out, cap, at, ":");
        at = put_number(out, cap, at, (unsigned)port, 10);
    }
    if (cap)
        out[at < cap ? at : cap - 1] = 0;
    return at < cap ? at : cap - 1;
}

const char *net_proto_name(net_proto proto)
{
    switch (proto) {
    case NET_PROTO_TCP: return "tcp";
    case NET_PROTO_UDP: return "udp";
    case NET_PROTO_RAW: return "raw";
    case NET_PROTO_ICMP: return "icmp";
    default: return "*";
    }
}

/* ---- parsing a pattern ---- */

typedef struct cursor {
    const char *s;
    size_t n;
    size_t base;      /* offset of s in the whole pattern */
} cursor;

static fvm_status fail(size_t *bad_at, size_t at, fvm_error *err, const char *what)
{
    if (bad_at)
        *bad_at = at;
    return fvm_error_set(err, FVM_E_INVALID, "%s", what);
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535 || (n > 1 && s[0] == '0'))
        return 0;
    *out = (uint16_t)v;
    return 1;
}

static fvm_status parse_ports(cursor c, net_rule *r, size_t *bad_at, fvm_error *err)
{
    if (c.n == 1 && c.s[0] == '*')
        return FVM_OK;
    size_t dash = 0;
    while (dash < c.n && c.s[dash] != '-')
        dash++;
    if (!parse_port(c.s, dash, &r->port_lo))
        return fail(bad_at, c.base, err, "bad port (a number 0-65535, a range 8000-8999, or *)");
    r->port_hi = r->port_lo;
    if (dash < c.n) {
        if (!parse_port(c.s + dash + 1, c.n - dash - 1, &r->port_hi))
            return fail(bad_at, c.base + dash + 1, err, "bad port range (write 8000-8999)");
        if (r->port_hi < r->port_lo)
            return fail(bad_at, c.base, err, "the port range ends before it starts");
    }
    return FVM_OK;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.' || c == '_' ||
           c == '*' || c == '?';
}

static fvm_status parse_prefix(cursor c, size_t slash, unsigned max, net_rule *r, size_t *bad_at, fvm_error *err)
{
    const char *p = c.s + slash + 1;
    size_t n = c.n - slash - 1;
    unsigned v = 0;
    if (n == 0 || n > 3)
        return fail(bad_at, c.base + slash + 1, err, "bad prefix length after '/'");
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return fail(bad_at, c.base + slash + 1 + i, err, "bad prefix length after '/'");
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > max)
        return fail(bad_at, c.base + slash + 1, err, max == 32 ? "an IPv4 prefix is at most /32"
                                                               : "an IPv6 prefix is at most /128");
    r->prefix = (uint8_t)v;
    return FVM_OK;
}

static fvm_status parse_host(cursor c, net_rule *r, size_t *bad_at, fvm_error *err)
{
    if (c.n == 0)
        return fail(bad_at, c.base, err, "the host is missing (write * for any)");
    if (c.n == 1 && c.s[0] == '*') {
        r->host_kind = NET_HOST_ANY;
        return FVM_OK;
    }
    if (word_is(c.s, c.n, "localhost")) {
        r->host_kind = NET_HOST_LOCALHOST;
        return FVM_OK;
    }
    if (c.s[0] == '[') {
        size_t close = 1;
        while (close < c.n && c.s[close] != ']')
            close++;
        if (close == c.n)
            return fail(bad_at, c.base, err, "an IPv6 address without its closing ']'");
        if (!net_addr_parse(c.s, close + 1, &r->addr))
            return fail(bad_at, c.base + 1, err, "bad IPv6 address");
        r->host_kind = NET_HOST_ADDR;
        r->prefix = r->addr.family == 4 ? 32 : 128;
        if (close + 1 == c.n)
            return FVM_OK;
        if (c.s[close + 1] != '/')
            return fail(bad_at, c.base + close + 1, err, "unexpected text after the IPv6 address");
        /* A mapped address ([::ffff:10.0.0.0]/104) became IPv4: its prefix shrinks by 96. */
        fvm_status st = parse_prefix(c, close + 1, 128, r, bad_at, err);
        if (st == FVM_OK && r->addr.family == 4)
            r->prefix = r->prefix >= 96 ? (uint8_t)(r->prefix - 96) : 0;
        return st;
    }
    size_t slash = 0;
    int digits_only = 1;
    while (slash < c.n && c.s[slash] != '/') {
        if (!is_digit(c.s[slash]) && c.s[slash] != '.' && c.s[slash] != '*' && c.s[slash] != '?')
            digits_only = 0;
        slash++;
    }
    if (digits_only || slash < c.n) {
        if (!parse_ipv4(c.s, slash, r->addr.bytes))
            return fail(bad_at, c.base, err, "bad IPv4 address (write 10.1.2.3, or 10.0.0.0/8 for a range; "
                                             "IPv6 in brackets: [::1])");
        r->addr.family = 4;
        r->host_kind = NET_HOST_ADDR;
        r->prefix = 32;
        return slash < c.n ? parse_prefix(c, slash, 32, r, bad_at, err) : FVM_OK;
    }
    if (c.n > NET_NAME_MAX)
        return fail(bad_at, c.base, err, "a host name is at most 253 characters");
    for (size_t i = 0; i < c.n; i++) {
        if (c.s[i] == ':')
            return fail(bad_at, c.base + i, err, "an IPv6 address is written in brackets: [::1]");
        if (!name_char(c.s[i]))
            return fail(bad_at, c.base + i, err, "a host name has letters, digits, '-', '.', '_' and the "
                                                 "wildcards '*' and '?'");
        r->name[i] = lower_ascii(c.s[i]);
    }
    r->name[c.n] = 0;
    r->name_len = (uint16_t)c.n;
    r->host_kind = NET_HOST_NAME;
    return FVM_OK;
}

/* The ':' that ends the host: after a bracketed address, or the first. */
static size_t host_end(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '[') {
        while (i < n && s[i] != ']')
            i++;
    }
    while (i < n && s[i] != ':')
        i++;
    return i;
}

/* "publish:" [tcp: | udp:] HOSTPORT ":" BOXPORT, after the "publish:". */
static fvm_status parse_publish(cursor c, net_rule *r, size_t *bad_at, fvm_error *err)
{
    r->dir = NET_DIR_PUBLISH;
    r->proto = NET_PROTO_TCP;
    size_t i = 0;
    if (c.n >= 4 && word_is(c.s, 4, "tcp:")) {
        i = 4;
    } else if (c.n >= 4 && word_is(c.s, 4, "udp:")) {
        r->proto = NET_PROTO_UDP;
        i = 4;
    } else if (c.n && !is_digit(c.s[0])) {
        return fail(bad_at, c.base, err, "a publish rule names tcp or udp, or starts with the host port "
                                         "(publish:18080:8080, publish:udp:5353:53)");
    }
    size_t colon = i;
    while (colon < c.n && c.s[colon] != ':')
        colon++;
    if (colon == c.n)
        return fail(bad_at, c.base + c.n, err, "a publish rule is publish:HOSTPORT:BOXPORT (e.g. publish:18080:8080)");
    if (!parse_port(c.s + i, colon - i, &r->publish_host) || !r->publish_host)
        return fail(bad_at, c.base + i, err, "bad host port (a number 1-65535)");
    for (size_t k = colon + 1; k < c.n; k++)
        if (c.s[k] == ':')
            return fail(bad_at, c.base + k, err, "too many ':' in a publish rule (publish:HOSTPORT:BOXPORT)");
    if (!parse_port(c.s + colon + 1, c.n - colon - 1, &r->publish_box) || !r->publish_box)
        return fail(bad_at, c.base + colon + 1, err, "bad box port (a number 1-65535)");
    r->port_lo = r->port_hi = r->publish_box;
    return FVM_OK;
}

int net_rule_is_publish(const uint16_t *text, size_t n)
{
    static const char word[] = "publish:";
    if (n < 8)
        return 0;
    for (size_t i = 0; i < 8; i++)
        if (text[i] > 0x7f || lower_ascii((char)text[i]) != word[i])
            return 0;
    return 1;
}

fvm_status net_rule_parse(const uint16_t *text, size_t n, net_rule *out, size_t *bad_at, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    out->port_hi = 65535;
    char s[NET_NAME_MAX + 64];
    if (n == 0)
        return fail(bad_at, 0, err, "empty pattern");
    if (n >= sizeof s)
        return fail(bad_at, 0, err, "a [net] pattern is at most 300 characters");
    for (size_t i = 0; i < n; i++) {
        if (text[i] <= ' ' || text[i] > '~')
            return fail(bad_at, i, err, text[i] == ' ' ? "a space inside a [net] pattern"
                                                       : "a [net] pattern is plain ASCII");
        s[i] = (char)text[i];
    }
    if (n == 1 && s[0] == '*')
        return FVM_OK;
    size_t i = 0;
    if (n >= 3 && word_is(s, 3, "in:")) {
        out->dir = NET_DIR_IN;
        i = 3;
    } else if (n >= 4 && word_is(s, 4, "out:")) {
        out->dir = NET_DIR_OUT;
        i = 4;
    } else if (n >= 7 && word_is(s, 7, "accept:")) {
        out->dir = NET_DIR_ACCEPT;
        i = 7;
    } else if (n >= 8 && word_is(s, 8, "publish:")) {
        return parse_publish((cursor){s + 8, n - 8, 8}, out, bad_at, err);
    }
    size_t colon = i;
    while (colon < n && s[colon] != ':')
        colon++;
    const char *proto = s + i;
    size_t proto_len = colon - i;
    if (proto_len == 1 && proto[0] == '*')
        out->proto = NET_PROTO_ANY;
    else if (word_is(proto, proto_len, "tcp"))
        out->proto = NET_PROTO_TCP;
    else if (word_is(proto, proto_len, "udp"))
        out->proto = NET_PROTO_UDP;
    else if (word_is(proto, proto_len, "raw"))
        out->proto = NET_PROTO_RAW;
    else if (word_is(proto, proto_len, "icmp"))
        out->proto = NET_PROTO_ICMP;
    else
        return fail(bad_at, i, err, "a [net] pattern starts with a protocol: tcp, udp, raw, icmp or * "
                                    "(e.g. tcp:*.example.com:443)");
    if (colon == n)
        return fail(bad_at, n, err, "the host is missing after the protocol (e.g. tcp:*:443)");
    i = colon + 1;
    size_t end = i + host_end(s + i, n - i);
    fvm_status st = parse_host((cursor){s + i, end - i, i}, out, bad_at, err);
    if (st != FVM_OK || end == n)
        return st;
    i = end + 1;
    for (size_t k = i; k < n; k++)
        if (s[k] == ':')
            return fail(bad_at, k, err, "too many ':' (an IPv6 address is written in brackets: [::1]:80)");
    return parse_ports((cursor){s + i, n - i, i}, out, bad_at, err);
}

/* ---- matching ---- */

int net_name_glob(const char *pattern, size_t plen, const char *name, size_t nlen)
{
    size_t p = 0, q = 0, star_p = (size_t)-1, star_q = 0;
    while (q < nlen) {
        if (p < plen && (pattern[p] == '?' || lower_ascii(pattern[p]) == lower_ascii(name[q]))) {
            p++;
            q++;
        } else if (p < plen && pattern[p] == '*') {
            star_p = p++;
            star_q = q;
        } else if (star_p != (size_t)-1) {
            p = star_p + 1;
            q = ++star_q;
        } else {
            return 0;
        }
    }
    while (p < plen && pattern[p] == '*')
        p++;
    return p == plen;
}

static int prefix_matches(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole))
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static int is_loopback(const net_addr *a)
{
    static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return (a->family == 4 && a->bytes[0] == 127) || (a->family == 6 && !memcmp(a->bytes, v6_loopback, 16));
}

static int host_matches(const net_rule *r, const net_query *q)
{
    net_addr addr = q->addr;
    net_addr_normalize(&addr);
    switch (r->host_kind) {
    case NET_HOST_ANY:
        return 1;
    case NET_HOST_LOCALHOST:
        return is_loopback(&addr) || (q->host && word_is(q->host, q->host_len, "localhost"));
    case NET_HOST_ADDR:
        return addr.family == r->addr.family && prefix_matches(addr.bytes, r->addr.bytes, r->prefix);
    case NET_HOST_NAME:
        return q->host && net_name_glob(r->name, r->name_len, q->host, q->host_len);
    default:
        return 0;
    }
}

int net_rule_matches(const net_rule *r, const net_query *q)
{
    if (r->dir == NET_DIR_PUBLISH || (r->dir != NET_DIR_ANY && r->dir != q->dir))
        return 0;   /* a publish rule decides nothing */
    if (q->dir == NET_DIR_ACCEPT && r->dir != NET_DIR_ACCEPT)
        return 0;   /* accepts meet accept: rules only (an opt-in: a rule without a direction keeps its meaning) */
    switch (r->proto) {
    case NET_PROTO_ANY:
        if (q->proto != NET_PROTO_TCP && q->proto != NET_PROTO_UDP)
            return 0;
        break;
    case NET_PROTO_RAW:
        if (q->proto != NET_PROTO_RAW && q->proto != NET_PROTO_ICMP)
            return 0;
        break;
    default:
        if (r->proto != q->proto)
            return 0;
    }
    if (q->port < r->port_lo || q->port > r->port_hi)
        return 0;
    return host_matches(r, q);
}

/* Host specificity: a whole address or a literal name 4, a CIDR or a
 * wildcard name 3, localhost 2, any 1; then the prefix length or the
 * literal characters. */
static void host_rank(const net_rule *r, int *klass, unsigned *detail)
{
    *detail = 0;
    switch (r->host_kind) {
    case NET_HOST_ADDR:
        *klass = r->prefix == (r->addr.family == 4 ? 32 : 128) ? 4 : 3;
        *detail = r->addr.family == 4 ? r->prefix + 96u : r->prefix;   /* comparable across families */
        return;
    case NET_HOST_NAME: {
        int wild = 0;
        for (size_t i = 0; i < r->name_len; i++) {
            if (r->name[i] == '*' || r->name[i] == '?')
                wild = 1;
            else
                (*detail)++;
        }
        *klass = wild ? 3 : 4;
        return;
    }
    case NET_HOST_LOCALHOST:
        *klass = 2;
        return;
    default:
        *klass = 1;
    }
}

int net_rule_compare(const net_rule *a, const net_rule *b)
{
    int ka, kb;
    unsigned da, db;
    host_rank(a, &ka, &da);
    host_rank(b, &kb, &db);
    if (ka != kb)
        return ka > kb ? 1 : -1;
    if (da != db)
        return da > db ? 1 : -1;
    unsigned wa = (unsigned)a->port_hi - a->port_lo, wb = (unsigned)b->port_hi - b->port_lo;
    if (wa != wb)
        return wa < wb ? 1 : -1;
    if ((a->proto != NET_PROTO_ANY) != (b->proto != NET_PROTO_ANY))
        return a->proto != NET_PROTO_ANY ? 1 : -1;
    if ((a->dir != NET_DIR_ANY) != (b->dir != NET_DIR_ANY))
        return a->dir != NET_DIR_ANY ? 1 : -1;
    return 0;
}

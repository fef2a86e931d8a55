/* regfile.c - the text format of a box's registry delta (see regfile.h for
 * the format).
 *
 * Writing: every string is escaped unit by unit into the buffer (worst case
 * six bytes a unit, reserved up front), valid non-control text as UTF-8 so
 * that names stay readable. Reading: one pass over the lines; strings are
 * decoded strictly (well-formed UTF-8 only, control characters escaped) into
 * buffers sized from the longest line, so no input can make the parser write
 * or read out of bounds. Not in the runtime build: it allocates. */
#ifndef FVM_RUNTIME

#include "core/regfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { REG_SZ_T = 1, REG_EXPAND_SZ_T = 2, REG_DWORD_T = 4, REG_MULTI_SZ_T = 7, REG_QWORD_T = 11 };

/* ---- writing ------------------------------------------------------------- */

void regfile_buf_free(regfile_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

static fvm_status reserve(regfile_buf *buf, size_t more, fvm_error *err)
{
    if (more > SIZE_MAX / 2 - buf->len)
        return fvm_error_set(err, FVM_E_NOMEM, "registry text too large");
    size_t need = buf->len + more;
    if (need <= buf->cap)
        return FVM_OK;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < need)
        cap *= 2;
    char *grown = realloc(buf->data, cap);
    if (!grown)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory for %lu bytes of registry text", (unsigned long)cap);
    buf->data = grown;
    buf->cap = cap;
    return FVM_OK;
}

static fvm_status put(regfile_buf *buf, const char *s, size_t n, fvm_error *err)
{
    fvm_status st = reserve(buf, n, err);
    if (st == FVM_OK) {
        memcpy(buf->data + buf->len, s, n);
        buf->len += n;
    }
    return st;
}

fvm_status regfile_put_header(regfile_buf *buf, fvm_error *err)
{
    return put(buf, REGFILE_HEADER "\n", sizeof REGFILE_HEADER, err);
}

fvm_status regfile_put_end(regfile_buf *buf, fvm_error *err)
{
    return put(buf, "END\n", 4, err);
}

/* Unit i of a string held either as uint16_t (names, paths) or as
 * little-endian bytes (value data, which need not be aligned). */
static unsigned unit_at(const void *s, size_t i, int le_bytes)
{
    if (le_bytes) {
        const uint8_t *b = s;
        return (unsigned)b[2 * i] | ((unsigned)b[2 * i + 1] << 8);
    }
    return ((const uint16_t *)s)[i];
}

static char *put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    }
    *o++ = (char)(0x80 | (cp & 0x3F));
    return o;
}

/* Appends units s[0..n) escaped; quote is the character that would end
 * the text ('"' in a string, ']' in a key path) and is escaped too. */
static fvm_status put_escaped(regfile_buf *buf, const void *s, size_t n, int le_bytes, char quote, fvm_error *err)
{
    if (n > SIZE_MAX / 8)
        return fvm_error_set(err, FVM_E_NOMEM, "registry string too long");
    fvm_status st = reserve(buf, n * 6 + 1, err);   /* + the NUL snprintf writes after an escape */
    if (st != FVM_OK)
        return st;
    char *o = buf->data + buf->len;
    for (size_t i = 0; i < n; i++) {
        unsigned u = unit_at(s, i, le_bytes);
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < n) {
            unsigned lo = unit_at(s, i + 1, le_bytes);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                o = put_utf8(o, 0x10000 + ((uint32_t)(u - 0xD800) << 10) + (lo - 0xDC00));
                i++;
                continue;
            }
        }
        if (u == '\\' || u == (unsigned char)quote) {
            *o++ = '\\';
            *o++ = (char)u;
        } else if (u == 0 || u == '\n' || u == '\r' || u == '\t') {
            *o++ = '\\';
            *o++ = u == 0 ? '0' : u == '\n' ? 'n' : u == '\r' ? 'r' : 't';
        } else if (u < 0x20 || u == 0x7F || (u >= 0x80 && u < 0xA0) || (u >= 0xD800 && u <= 0xDFFF)) {
            o += snprintf(o, 7, "\\u%04x", u);
        } else if (u < 0x80) {
            *o++ = (char)u;
        } else {
            o = put_utf8(o, u);
        }
    }
    buf->len = (size_t)(o - buf->data);
    return FVM_OK;
}

fvm_status regfile_put_key(regfile_buf *buf, const uint16_t *path, size_t len, fvm_error *err)
{
    for (size_t i = 0; i < len; i++) {
        if (path[i] == '\\' && (i == 0 || i + 1 == len || path[i + 1] == '\\'))
            return fvm_error_set(err, FVM_E_INVALID, "registry key path has an empty name at unit %lu", (unsigned long)i);
    }
    fvm_status st = put(buf, "[", 1, err);
    if (st == FVM_OK)
        st = put_escaped(buf, path, len, 0, ']', err);
    if (st == FVM_OK)
        st = put(buf, "]\n", 2, err);
    return st;
}

static fvm_status put_hex(regfile_buf *buf, const uint8_t *data, size_t size, fvm_error *err)
{
    if (size > SIZE_MAX / 4)
        return fvm_error_set(err, FVM_E_NOMEM, "registry value too large");
    fvm_status st = reserve(buf, size * 2, err);
    if (st != FVM_OK)
        return st;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        buf->data[buf->len++] = digits[data[i] >> 4];
        buf->data[buf->len++] = digits[data[i] & 15];
    }
    return FVM_OK;
}

static fvm_status put_data(regfile_buf *buf, uint32_t type, const uint8_t *data, size_t size, fvm_error *err)
{
    char text[64];
    if (type == REGFILE_TYPE_DELETED && size == 0)
        return put(buf, "deleted", 7, err);
    if ((type == REG_SZ_T || type == REG_EXPAND_SZ_T || type == REG_MULTI_SZ_T) && size >= 2 && size % 2 == 0 &&
        data[size - 2] == 0 && data[size - 1] == 0) {
        const char *prefix = type == REG_SZ_T ? "sz:\"" : type == REG_EXPAND_SZ_T ? "expand_sz:\"" : "multi_sz:\"";
        fvm_status st = put(buf, prefix, strlen(prefix), err);
        if (st == FVM_OK)
            st = put_escaped(buf, data, size / 2 - 1, 1, '"', err);
        return st == FVM_OK ? put(buf, "\"", 1, err) : st;
    }
    if (type == REG_DWORD_T && size == 4) {
        uint32_t v = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
        int n = snprintf(text, sizeof text, "dword:%08lx", (unsigned long)v);
        return put(buf, text, (size_t)n, err);
    }
    if (type == REG_QWORD_T && size == 8) {
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
            v = v << 8 | data[i];
        int n = snprintf(text, sizeof text, "qword:%016llx", (unsigned long long)v);
        return put(buf, text, (size_t)n, err);
    }
    int n = snprintf(text, sizeof text, "hex(%lx):", (unsigned long)type);
    fvm_status st = put(buf, text, (size_t)n, err);
    return st == FVM_OK ? put_hex(buf, data, size, err) : st;
}

fvm_status regfile_put_value(regfile_buf *buf, const uint16_t *name, size_t name_len, uint32_t type,
                             const void *data, size_t size, fvm_error *err)
{
    fvm_status st = put(buf, "\"", 1, err);
    if (st == FVM_OK)
        st = put_escaped(buf, name, name_len, 0, '"', err);
    if (st == FVM_OK)
        st = put(buf, "\"=", 2, err);
    if (st == FVM_OK)
        st = put_data(buf, type, data, size, err);
    if (st == FVM_OK)
        st = put(buf, "\n", 1, err);
    return st;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct parser {
    const char *text;
    size_t len;
    size_t line_start;           /* offset of the current line */
    size_t line_end;             /* its end, without "\n" or "\r\n" */
    unsigned long line;          /* 1-based */
    const regfile_visitor *visitor;
    uint16_t *key;               /* path of the last key line */
    uint16_t *name;              /* name of the current value */
    uint16_t *units;             /* data of the current value: units, then bytes */
    int have_key;
    fvm_error *err;
} parser;

static fvm_status fail_at(parser *p, size_t at, fvm_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static fvm_status fail_at(parser *p, size_t at, fvm_status status, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return fvm_error_set(p->err, status, "line %lu, column %lu: %s", p->line, (unsigned long)(at - p->line_start + 1), why);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads n hex digits at *at into *out (n <= 16). */
static int read_hex(parser *p, size_t *at, unsigned n, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (*at >= p->line_end || hex_digit(p->text[*at]) < 0)
            return 0;
        v = v << 4 | (uint64_t)hex_digit(p->text[(*at)++]);
    }
    *out = v;
    return 1;
}

/* One UTF-8 sequence at *at (its first byte >= 0x80): the code point, or
 * -1 when it is not well-formed (overlong, surrogate, beyond U+10FFFF). */
static long read_utf8(parser *p, size_t *at)
{
    const unsigned char *s = (const unsigned char *)p->text;
    unsigned char b = s[*at];
    size_t n;
    uint32_t cp;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
        cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        cp = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0;
        if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        cp = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;
        if (b == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    if (p->line_end - *at < n)
        return -1;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = s[*at + i];
        if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xBF))
            return -1;
        cp = cp << 6 | (c & 0x3F);
    }
    *at += n;
    return (long)cp;
}

/* Decodes escaped text from *at up to the closing quote into out; *at ends
 * after the quote. out has room for one unit per byte of the line. */
static fvm_status read_chars(parser *p, size_t *at, char quote, uint16_t *out, size_t *out_len)
{
    size_t n = 0;
    size_t open = *at - 1;
    for (;;) {
        if (*at >= p->line_end)
            return fail_at(p, open, FVM_E_PARSE, "no closing '%c' on this line", quote);
        size_t here = *at;
        unsigned char c = (unsigned char)p->text[*at];
        if (c == (unsigned char)quote) {
            (*at)++;
            *out_len = n;
            return FVM_OK;
        }
        if (c == '\\') {
            if (here + 1 >= p->line_end)
                return fail_at(p, here, FVM_E_PARSE, "'\\' at the end of the line");
            char e = p->text[here + 1];
            *at += 2;
            switch (e) {
            case '\\': out[n++] = '\\'; break;
            case '"': out[n++] = '"'; break;
            case ']': out[n++] = ']'; break;
            case '0': out[n++] = 0; break;
            case 'n': out[n++] = '\n'; break;
            case 'r': out[n++] = '\r'; break;
            case 't': out[n++] = '\t'; break;
            case 'u': {
                uint64_t v;
                if (!read_hex(p, at, 4, &v))
                    return fail_at(p, here, FVM_E_PARSE, "'\\u' needs four hex digits");
                out[n++] = (uint16_t)v;
                break;
            }
            default:
                if ((unsigned char)e < 0x20 || (unsigned char)e >= 0x7F)
                    return fail_at(p, here, FVM_E_PARSE, "unknown escape '\\' followed by byte 0x%02x",
                                   (unsigned char)e);
                return fail_at(p, here, FVM_E_PARSE, "unknown escape '\\%c'", e);
            }
            continue;
        }
        if (c < 0x20 || c == 0x7F)
            return fail_at(p, here, FVM_E_PARSE, "control character 0x%02x must be written as an escape", c);
        if (c < 0x80) {
            out[n++] = c;
            (*at)++;
            continue;
        }
        long cp = read_utf8(p, at);
        if (cp < 0)
            return fail_at(p, here, FVM_E_PARSE, "invalid UTF-8");
        if (cp >= 0x10000) {
            out[n++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
            out[n++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
            out[n++] = (uint16_t)cp;
        }
    }
}

static int line_has(parser *p, size_t at, const char *word)
{
    size_t n = strlen(word);
    return p->line_end - at >= n && !memcmp(p->text + at, word, n);
}

static fvm_status expect_line_end(parser *p, size_t at)
{
    if (at != p->line_end)
        return fail_at(p, at, FVM_E_PARSE, "unexpected text after the end of the item");
    return FVM_OK;
}

/* A callback's error, with the place in front of its message. */
static fvm_status callback_failed(parser *p, fvm_status st)
{
    char why[sizeof p->err->message];
    if (!p->err)
        return st;
    memcpy(why, p->err->message, sizeof why);
    why[sizeof why - 1] = 0;
    return fvm_error_set(p->err, st, "line %lu: %s", p->line, why);
}

static fvm_status parse_key(parser *p)
{
    size_t at = p->line_start + 1, len;
    fvm_status st = read_chars(p, &at, ']', p->key, &len);
    if (st != FVM_OK || (st = expect_line_end(p, at)) != FVM_OK)
        return st;
    for (size_t i = 0; i < len; i++) {
        if (p->key[i] == '\\' && (i == 0 || i + 1 == len || p->key[i + 1] == '\\'))
            return fail_at(p, p->line_start, FVM_E_PARSE, "key path has an empty name (a leading, trailing or "
                                                          "doubled '\\')");
    }
    p->have_key = 1;
    if (p->visitor && p->visitor->key && (st = p->visitor->key(p->visitor->ctx, p->key, len, p->err)) != FVM_OK)
        return callback_failed(p, st);
    return FVM_OK;
}

/* The data after '=' into p->units as bytes; sets type and size. */
static fvm_status parse_data(parser *p, size_t at, uint32_t *type, size_t *size)
{
    uint8_t *bytes = (uint8_t *)p->units;
    static const struct { const char *prefix; uint32_t type; } strings[] = {
        {"sz:\"", REG_SZ_T}, {"expand_sz:\"", REG_EXPAND_SZ_T}, {"multi_sz:\"", REG_MULTI_SZ_T}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (!line_has(p, at, strings[i].prefix))
            continue;
        size_t n;
        at += strlen(strings[i].prefix);
        fvm_status st = read_chars(p, &at, '"', p->units, &n);
        if (st != FVM_OK || (st = expect_line_end(p, at)) != FVM_OK)
            return st;
        p->units[n++] = 0;
        for (size_t u = 0; u < n; u++) {   /* to little-endian bytes, in place */
            uint16_t v = p->units[u];
            bytes[2 * u] = (uint8_t)v;
            bytes[2 * u + 1] = (uint8_t)(v >> 8);
        }
        *type = strings[i].type;
        *size = n * 2;
        return FVM_OK;
    }
    if (line_has(p, at, "dword:") || line_has(p, at, "qword:")) {
        unsigned digits = p->text[at] == 'd' ? 8 : 16;
        uint64_t v;
        size_t start = at += 6;
        if (!read_hex(p, &at, digits, &v))
            return fail_at(p, start, FVM_E_PARSE, "%s needs exactly %u hex digits", digits == 8 ? "dword" : "qword",
                           digits);
        fvm_status st = expect_line_end(p, at);
        if (st != FVM_OK)
            return st;
        for (unsigned i = 0; i < digits / 2; i++)
            bytes[i] = (uint8_t)(v >> (8 * i));
        *type = digits == 8 ? REG_DWORD_T : REG_QWORD_T;
        *size = digits / 2;
        return FVM_OK;
    }
    if (line_has(p, at, "deleted")) {
        fvm_status st = expect_line_end(p, at + 7);
        *type = REGFILE_TYPE_DELETED;
        *size = 0;
        return st;
    }
    if (line_has(p, at, "hex(")) {
        size_t start = at += 4;
        uint64_t t = 0;
        unsigned n = 0;
        while (at < p->line_end && hex_digit(p->text[at]) >= 0 && n < 9) {
            t = t << 4 | (uint64_t)hex_digit(p->text[at++]);
            n++;
        }
        if (n == 0 || n > 8)
            return fail_at(p, start, FVM_E_PARSE, "hex( needs a type of 1 to 8 hex digits");
        if (!line_has(p, at, "):"))
            return fail_at(p, at, FVM_E_PARSE, "expected '):' after the type");
        at += 2;
        size_t count = 0;
        while (at < p->line_end) {
            uint64_t b;
            size_t here = at;
            if (!read_hex(p, &at, 2, &b))
                return fail_at(p, here, FVM_E_PARSE, "expected two hex digits per byte");
            bytes[count++] = (uint8_t)b;
        }
        *type = (uint32_t)t;
        *size = count;
        return FVM_OK;
    }
    return fail_at(p, at, FVM_E_PARSE, "unknown value data: expected sz:, expand_sz:, multi_sz:, dword:, qword:, "
                                       "hex(TYPE): or deleted");
}

static fvm_status parse_value(parser *p)
{
    size_t at = p->line_start + 1, name_len, size;
    uint32_t type;
    if (!p->have_key)
        return fail_at(p, p->line_start, FVM_E_PARSE, "a value before any key line");
    fvm_status st = read_chars(p, &at, '"', p->name, &name_len);
    if (st != FVM_OK)
        return st;
    if (at >= p->line_end || p->text[at] != '=')
        return fail_at(p, at, FVM_E_PARSE, "expected '=' after the value name");
    if ((st = parse_data(p, at + 1, &type, &size)) != FVM_OK)
        return st;
    if (p->visitor && p->visitor->value &&
        (st = p->visitor->value(p->visitor->ctx, p->name, name_len, type, (const uint8_t *)p->units, size,
                                p->err)) != FVM_OK)
        return callback_failed(p, st);
    return FVM_OK;
}

/* Moves to the next line; 0 at the end of the text. */
static int next_line(parser *p, size_t from)
{
    if (from >= p->len)
        return 0;
    p->line++;
    p->line_start = from;
    const char *nl = memchr(p->text + from, '\n', p->len - from);
    p->line_end = nl ? (size_t)(nl - p->text) : p->len;
    if (p->line_end > from && p->text[p->line_end - 1] == '\r')
        p->line_end--;
    return 1;
}

static size_t after_line(const parser *p)
{
    const char *nl = memchr(p->text + p->line_end, '\n', p->len - p->line_end);
    return nl ? (size_t)(nl - p->text) + 1 : p->len;
}

static fvm_status parse_lines(parser *p)
{
    if (!next_line(p, 0) || p->line_end - p->line_start != strlen(REGFILE_HEADER) ||
        memcmp(p->text, REGFILE_HEADER, strlen(REGFILE_HEADER)) != 0) {
        p->line = 1;
        if (p->len >= 13 && !memcmp(p->text, "FVM REGISTRY ", 13))
            return fail_at(p, 13, FVM_E_UNSUPPORTED, "registry file format version not supported (expected '%s')",
                           REGFILE_HEADER);
        return fail_at(p, 0, FVM_E_PARSE, "not an FVM registry file (expected '%s')", REGFILE_HEADER);
    }
    int ended = 0;
    while (next_line(p, after_line(p))) {
        size_t n = p->line_end - p->line_start;
        char first = n ? p->text[p->line_start] : 0;
        fvm_status st = FVM_OK;
        if (n == 0 || first == ';')
            continue;
        if (ended)
            return fail_at(p, p->line_start, FVM_E_PARSE, "text after the END line");
        if (first == '[')
            st = parse_key(p);
        else if (first == '"')
            st = parse_value(p);
        else if (n == 3 && !memcmp(p->text + p->line_start, "END", 3))
            ended = 1;
        else
            st = fail_at(p, p->line_start, FVM_E_PARSE, "expected a key line '[...]', a value line '\"name\"=...' "
                                                         "or END");
        if (st != FVM_OK)
            return st;
    }
    if (!ended)
        return fail_at(p, p->line_end, FVM_E_PARSE, "no END line: the file is truncated");
    return FVM_OK;
}

fvm_status regfile_parse(const char *text, size_t len, const regfile_visitor *visitor, fvm_error *err)
{
    /* Every decoded unit takes at least one byte of its line, and hex data
     * two: buffers of one unit per byte of the longest line always fit. */
    size_t longest = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (end - at > longest)
            longest = end - at;
        at = end + 1;
    }
    if (longest > SIZE_MAX / 8)
        return fvm_error_set(err, FVM_E_NOMEM, "registry file too large");
    size_t units = longest + 1;
    uint16_t *mem = malloc(units * 3 * sizeof(uint16_t));
    if (!mem)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory parsing %lu bytes of registry text", (unsigned long)len);
    parser p = {.text = text, .len = len, .visitor = visitor, .err = err};
    p.key = mem;
    p.name = mem + units;
    p.units = mem + 2 * units;
    fvm_status st = parse_lines(&p);
    free(mem);
    return st;
}

#endif /* FVM_RUNTIME */

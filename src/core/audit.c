/* audit.c - see audit.h: JSON Lines records chained with SHA-256, the head
 * file, a strict JSON reader and the verifier.
 *
 * Everything is written without the C library's formatting (the runtime has
 * none): a small bounded appender builds lines and messages, numbers are
 * converted by hand. The reader is a complete RFC 8259 validator (any JSON
 * value, nesting bounded), because "not valid JSON at column C" has to be
 * true for any line a person or a tool might have edited; on top of it the
 * record's own shape is checked. */
#include "core/audit.h"

#include <string.h>

/* ---- a bounded appender ---------------------------------------------------- */

typedef struct sink {
    char *out;
    size_t cap, len;
    int overflow;
} sink;

static void put_bytes(sink *s, const char *p, size_t n)
{
    if (s->overflow || n >= s->cap - s->len) {
        s->overflow = 1;
        return;
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
    s->out[s->len] = 0;
}

static void put_str(sink *s, const char *p)
{
    put_bytes(s, p, strlen(p));
}

static void put_char(sink *s, char c)
{
    put_bytes(s, &c, 1);
}

static void put_u64(sink *s, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_bytes(s, digits + sizeof digits - n, n);
}

/* Zero-padded to width. */
static void put_padded(sink *s, uint64_t v, int width)
{
    char digits[20];
    for (int i = width - 1; i >= 0; i--) {
        digits[i] = (char)('0' + v % 10);
        v /= 10;
    }
    put_bytes(s, digits, (size_t)width);
}

static void put_hex(sink *s, const uint8_t digest[SHA256_DIGEST_SIZE])
{
    char hex[SHA256_HEX_SIZE];
    sha256_to_hex(digest, hex);
    put_bytes(s, hex, 64);
}

/* ---- JSON strings out --------------------------------------------------------- */

static void put_escape_u(sink *s, uint32_t unit)
{
    static const char digits[] = "0123456789abcdef";
    char e[6] = {'\\', 'u', digits[(unit >> 12) & 15], digits[(unit >> 8) & 15], digits[(unit >> 4) & 15],
                 digits[unit & 15]};
    put_bytes(s, e, 6);
}

/* An ASCII character with JSON's escapes. */
static void put_ascii_escaped(sink *s, char c)
{
    switch (c) {
    case '"': put_str(s, "\\\""); break;
    case '\\': put_str(s, "\\\\"); break;
    case '\n': put_str(s, "\\n"); break;
    case '\r': put_str(s, "\\r"); break;
    case '\t': put_str(s, "\\t"); break;
    case '\b': put_str(s, "\\b"); break;
    case '\f': put_str(s, "\\f"); break;
    default:
        if ((unsigned char)c < 0x20)
            put_escape_u(s, (unsigned char)c);
        else
            put_char(s, c);
    }
}

static size_t encode_utf8(uint32_t cp, char b[4])
{
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A code point inside a JSON string: ASCII escaped as JSON requires, the
 * rest as raw UTF-8. */
static void put_code_point(sink *s, uint32_t cp)
{
    if (cp < 0x80) {
        put_ascii_escaped(s, (char)cp);
        return;
    }
    char b[4];
    put_bytes(s, b, encode_utf8(cp, b));
}

/* One UTF-8 code point at p[i]; its length, 0 when invalid. */
static size_t utf8_decode(const unsigned char *p, size_t n, size_t i, uint32_t *cp)
{
    unsigned char c = p[i];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0)
        len = 2, v = c & 0x1Fu, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        len = 3, v = c & 0x0Fu, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        len = 4, v = c & 0x07u, min = 0x10000;
    else
        return 0;
    if (i + len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[i + k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i + k] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static void put_json_utf8(sink *s, const char *text)
{
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    size_t n = strlen((const char *)p);
    put_char(s, '"');
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(p, n, i, &cp);
        if (len == 0) { /* not UTF-8: the replacement character, one per bad byte */
            cp = 0xFFFD;
            len = 1;
        }
        put_code_point(s, cp);
        i += len;
    }
    put_char(s, '"');
}

static void put_json_utf16(sink *s, const uint16_t *u, size_t n)
{
    put_char(s, '"');
    for (size_t i = 0; i < n; i++) {
        uint32_t c = u[i];
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF) {
            put_code_point(s, 0x10000 + ((c - 0xD800) << 10) + (u[++i] - 0xDC00u));
        } else if (c >= 0xD800 && c <= 0xDFFF) {
            put_escape_u(s, c); /* unpaired: kept exactly */
        } else {
            put_code_point(s, c);
        }
    }
    put_char(s, '"');
}

/* ---- time ---------------------------------------------------------------------- */

/* Days since 1970-01-01 -> civil date (proleptic Gregorian), by eras of
 * 400 years (146097 days), each starting on March 1 so the leap day is the
 * last day of its year. */
static void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    days += 719468; /* from 0000-03-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    uint64_t day_of_era = (uint64_t)(days - era * 146097);
    uint64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    uint64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    uint64_t month_index = (5 * day_of_year + 2) / 153; /* 0 = March */
    *day = (unsigned)(day_of_year - (153 * month_index + 2) / 5 + 1);
    *month = (unsigned)(month_index < 10 ? month_index + 3 : month_index - 9);
    *year = (int64_t)year_of_era + era * 400 + (*month <= 2);
}

/* 253402300800000 ms is 10000-01-01. */
#define AUDIT_TIME_MAX_MS 253402300799999LL

static void put_time(sink *s, int64_t ms)
{
    int64_t days = ms / 86400000, in_day = ms % 86400000;
    int64_t year;
    unsigned month, day;
    civil_from_days(days, &year, &month, &day);
    put_padded(s, (uint64_t)year, 4);
    put_char(s, '-');
    put_padded(s, month, 2);
    put_char(s, '-');
    put_padded(s, day, 2);
    put_char(s, 'T');
    put_padded(s, (uint64_t)(in_day / 3600000), 2);
    put_char(s, ':');
    put_padded(s, (uint64_t)(in_day / 60000 % 60), 2);
    put_char(s, ':');
    put_padded(s, (uint64_t)(in_day / 1000 % 60), 2);
    put_char(s, '.');
    put_padded(s, (uint64_t)(in_day % 1000), 3);
    put_char(s, 'Z');
}

/* ---- writing records ---------------------------------------------------------------- */

void audit_chain_init(audit_chain *chain)
{
    memset(chain, 0, sizeof *chain);
}

fvm_status audit_format_record(const audit_record *r, uint64_t seq, const uint8_t prev[SHA256_DIGEST_SIZE],
                               char *out, size_t cap, size_t *out_len, uint8_t hash[SHA256_DIGEST_SIZE],
                               fvm_error *err)
{
    if (!out || cap == 0)
        return fvm_error_set(err, FVM_E_RANGE, "audit record: no output buffer");
    if (r->time_ms < 0 || r->time_ms > AUDIT_TIME_MAX_MS)
        return fvm_error_set(err, FVM_E_RANGE, "audit record: time outside the years 1970..9999");
    sink s = {out, cap, 0, 0};
    out[0] = 0;
    put_str(&s, "{\"seq\":");
    put_u64(&s, seq);
    put_str(&s, ",\"time\":\"");
    put_time(&s, r->time_ms);
    put_str(&s, "\",\"box\":");
    put_json_utf8(&s, r->box);
    put_str(&s, ",\"pid\":");
    put_u64(&s, r->pid);
    put_str(&s, ",\"image\":");
    if (r->image16)
        put_json_utf16(&s, r->image16, r->image16_len);
    else
        put_json_utf8(&s, r->image);
    put_str(&s, ",\"type\":");
    put_json_utf8(&s, r->type);
    put_str(&s, ",\"op\":");
    put_json_utf8(&s, r->op);
    put_str(&s, ",\"name\":");
    if (r->name16)
        put_json_utf16(&s, r->name16, r->name16_len);
    else
        put_json_utf8(&s, r->name);
    put_str(&s, ",\"decision\":");
    put_json_utf8(&s, r->decision);
    put_str(&s, ",\"rule\":");
    put_json_utf8(&s, r->rule);
    if (r->subject) {
        put_str(&s, ",\"subject\":");
        put_json_utf8(&s, r->subject);
    }
    if (r->target) {
        put_str(&s, ",\"target\":");
        put_json_utf8(&s, r->target);
    }
    if (r->decided) {
        put_str(&s, ",\"decided\":");
        put_json_utf8(&s, r->decided);
    }
    if (r->claim) {
        put_str(&s, ",\"claim\":");
        put_json_utf8(&s, r->claim);
    }
    put_str(&s, ",\"prev\":\"");
    put_hex(&s, prev);
    put_char(&s, '"');
    if (!s.overflow)
        sha256(out, s.len, hash);
    put_str(&s, ",\"hash\":\"");
    if (!s.overflow)
        put_hex(&s, hash);
    put_str(&s, "\"}\n");
    if (s.overflow) {
        out[0] = 0;
        return fvm_error_set(err, FVM_E_RANGE, "audit record: longer than the %lu-byte buffer", (unsigned long)cap);
    }
    *out_len = s.len;
    return FVM_OK;
}

fvm_status audit_chain_next(audit_chain *chain, const audit_record *record, char *out, size_t cap, size_t *out_len,
                            fvm_error *err)
{
    uint8_t hash[SHA256_DIGEST_SIZE];
    fvm_status st = audit_format_record(record, chain->seq + 1, chain->hash, out, cap, out_len, hash, err);
    if (st != FVM_OK)
        return st;
    chain->seq++;
    memcpy(chain->hash, hash, sizeof hash);
    return FVM_OK;
}

fvm_status audit_head_format(const audit_chain *chain, char *out, size_t cap, size_t *out_len, fvm_error *err)
{
    if (!out || cap == 0)
        return fvm_error_set(err, FVM_E_RANGE, "audit head: no output buffer");
    sink s = {out, cap, 0, 0};
    out[0] = 0;
    put_str(&s, "{\"seq\":");
    put_u64(&s, chain->seq);
    put_str(&s, ",\"hash\":\"");
    put_hex(&s, chain->hash);
    put_str(&s, "\"}\n");
    if (s.overflow)
        return fvm_error_set(err, FVM_E_RANGE, "audit head: buffer too small");
    *out_len = s.len;
    return FVM_OK;
}

/* ---- reading JSON ------------------------------------------------------------------------- */

#define JSON_MAX_DEPTH 64

typedef struct json {
    const unsigned char *p;
    size_t n, i;
    const char *problem;            /* NULL while fine */
} json;

static int json_fail(json *j, const char *problem)
{
    if (!j->problem)
        j->problem = problem;
    return 0;
}

static void json_space(json *j)
{
    while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' || j->p[j->i] == '\r' || j->p[j->i] == '\n'))
        j->i++;
}

static int is_hex_digit(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at j->i (which is '"'); its contents' span. */
static int json_string(json *j, audit_span *span)
{
    size_t start = ++j->i;
    while (j->i < j->n) {
        unsigned char c = j->p[j->i];
        if (c == '"') {
            if (span) {
                span->text = (const char *)j->p + start;
                span->len = j->i - start;
            }
            j->i++;
            return 1;
        }
        if (c < 0x20)
            return json_fail(j, "control character in a string");
        if (c == '\\') {
            if (++j->i >= j->n)
                break;
            c = j->p[j->i];
            if (c == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (j->i + k >= j->n || !is_hex_digit(j->p[j->i + k]))
                        return json_fail(j, "bad \\u escape");
                j->i += 5;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
                j->i++;
            } else {
                return json_fail(j, "bad escape");
            }
            continue;
        }
        uint32_t cp;
        size_t len = utf8_decode(j->p, j->n, j->i, &cp);
        if (len == 0)
            return json_fail(j, "invalid UTF-8");
        j->i += len;
    }
    return json_fail(j, "unterminated string");
}

static int digits(json *j)
{
    size_t start = j->i;
    while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
        j->i++;
    return j->i > start;
}

static int json_number(json *j)
{
    if (j->p[j->i] == '-')
        j->i++;
    if (j->i < j->n && j->p[j->i] == '0')
        j->i++;
    else if (!digits(j))
        return json_fail(j, "bad number");
    if (j->i < j->n && j->p[j->i] == '.') {
        j->i++;
        if (!digits(j))
            return json_fail(j, "bad number: digits must follow '.'");
    }
    if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-'))
            j->i++;
        if (!digits(j))
            return json_fail(j, "bad number: digits must follow the exponent");
    }
    return 1;
}

static int json_literal(json *j, const char *word)
{
    size_t n = strlen(word);
    if (j->n - j->i < n || memcmp(j->p + j->i, word, n) != 0)
        return json_fail(j, "unexpected character");
    j->i += n;
    return 1;
}

static int json_value(json *j, int depth);

/* An object or array; for the top-level object, member() sees each member. */
typedef struct member_sink {
    int (*member)(void *ctx, json *j, const audit_span *key, size_t member_start, size_t value_start);
    void *ctx;
} member_sink;

static int json_object(json *j, int depth, const member_sink *members)
{
    j->i++; /* '{' */
    json_space(j);
    if (j->i < j->n && j->p[j->i] == '}') {
        j->i++;
        return 1;
    }
    for (;;) {
        size_t member_start = j->i;
        json_space(j);
        if (j->i >= j->n || j->p[j->i] != '"')
            return json_fail(j, "expected a member name in quotes");
        audit_span key;
        if (!json_string(j, &key))
            return 0;
        json_space(j);
        if (j->i >= j->n || j->p[j->i] != ':')
            return json_fail(j, "expected ':'");
        j->i++;
        json_space(j);
        size_t value_start = j->i;
        if (!json_value(j, depth + 1))
            return 0;
        if (members && !members->member(members->ctx, j, &key, member_start, value_start))
            return 0;
        json_space(j);
        if (j->i >= j->n)
            return json_fail(j, "unterminated object");
        if (j->p[j->i] == '}') {
            j->i++;
            return 1;
        }
        if (j->p[j->i] != ',')
            return json_fail(j, "expected ',' or '}'");
        j->i++;
    }
}

static int json_array(json *j, int depth)
{
    j->i++; /* '[' */
    json_space(j);
    if (j->i < j->n && j->p[j->i] == ']') {
        j->i++;
        return 1;
    }
    for (;;) {
        json_space(j);
        if (!json_value(j, depth + 1))
            return 0;
        json_space(j);
        if (j->i >= j->n)
            return json_fail(j, "unterminated array");
        if (j->p[j->i] == ']') {
            j->i++;
            return 1;
        }
        if (j->p[j->i] != ',')
            return json_fail(j, "expected ',' or ']'");
        j->i++;
    }
}

static int json_value(json *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return json_fail(j, "nested too deep");
    if (j->i >= j->n)
        return json_fail(j, "a value is missing");
    switch (j->p[j->i]) {
    case '{': return json_object(j, depth, NULL);
    case '[': return json_array(j, depth);
    case '"': return json_string(j, NULL);
    case 't': return json_literal(j, "true");
    case 'f': return json_literal(j, "false");
    case 'n': return json_literal(j, "null");
    default:
        if (j->p[j->i] == '-' || (j->p[j->i] >= '0' && j->p[j->i] <= '9'))
            return json_number(j);
        return json_fail(j, "unexpected character");
    }
}

/* ---- records --------------------------------------------------------------------------------- */

enum {
    F_SEQ, F_TIME, F_BOX, F_PID, F_IMAGE, F_TYPE, F_OP, F_NAME, F_DECISION, F_RULE, F_PREV, F_HASH, F_SUBJECT,
    F_TARGET, F_DECIDED, F_CLAIM, F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "seq", "time", "box", "pid", "image", "type", "op", "name", "decision", "rule", "prev", "hash", "subject",
    "target", "decided", "claim",
};

typedef struct record_reader {
    audit_fields *out;
    unsigned seen;                  /* bit per field */
    size_t last_member_start;       /* of the member read last: just after its ',' */
    int last_was_hash;
    const char *problem;
    size_t problem_at;
} record_reader;

static int span_is(const audit_span *s, const char *word)
{
    size_t n = strlen(word);
    return s->len == n && memcmp(s->text, word, n) == 0;
}

static int read_u64(const unsigned char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || (n > 1 && p[0] == '0'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (max - (p[i] - '0')) / 10)
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static int is_lower_hex64(const audit_span *s)
{
    if (s->len != 64)
        return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = s->text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static int record_member(void *ctx, json *j, const audit_span *key, size_t member_start, size_t value_start)
{
    record_reader *r = ctx;
    r->last_member_start = member_start;
    r->last_was_hash = 0;
    int field = -1;
    for (int f = 0; f < F_COUNT; f++)
        if (span_is(key, field_names[f]))
            field = f;
    if (field < 0)
        return 1; /* members of later versions are allowed, and hashed like the rest */
    if (r->seen & (1u << field)) {
        r->problem = "a member appears twice";
        r->problem_at = value_start;
        return json_fail(j, "duplicate member");
    }
    r->seen |= 1u << field;
    r->last_was_hash = field == F_HASH;
    const unsigned char *v = j->p + value_start;
    size_t vlen = j->i - value_start;
    if (field == F_SEQ || field == F_PID) {
        uint64_t number;
        if (!read_u64(v, vlen, field == F_SEQ ? UINT64_MAX : 0xFFFFFFFFu, &number)) {
            r->problem = field == F_SEQ ? "seq is not a whole number" : "pid is not a whole number";
            r->problem_at = value_start;
            return json_fail(j, "bad field");
        }
        if (field == F_SEQ)
            r->out->seq = number;
        else
            r->out->pid = (uint32_t)number;
        return 1;
    }
    if (vlen < 2 || v[0] != '"') {
        r->problem = "a field that must be a string is not";
        r->problem_at = value_start;
        return json_fail(j, "bad field");
    }
    audit_span s = {(const char *)v + 1, vlen - 2};
    audit_span *slots[F_COUNT] = {NULL,          &r->out->time, &r->out->box,      NULL,
                                  &r->out->image, &r->out->type, &r->out->op,       &r->out->name,
                                  &r->out->decision, &r->out->rule, &r->out->prev, &r->out->hash,
                                  &r->out->subject, &r->out->target, &r->out->decided, &r->out->claim};
    *slots[field] = s;
    if ((field == F_PREV || field == F_HASH) && !is_lower_hex64(&s)) {
        r->problem = field == F_PREV ? "prev is not 64 lower-case hex digits" : "hash is not 64 lower-case hex digits";
        r->problem_at = value_start;
        return json_fail(j, "bad field");
    }
    return 1;
}

fvm_status audit_parse_line(const char *line, size_t len, audit_fields *out, size_t *column, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    *column = 0;
    record_reader r;
    memset(&r, 0, sizeof r);
    r.out = out;
    member_sink members = {record_member, &r};
    json j = {(const unsigned char *)line, len, 0, NULL};
    json_space(&j);
    int ok;
    if (j.i >= j.n || j.p[j.i] != '{')
        ok = json_fail(&j, j.i >= j.n ? "empty line" : "a record is a JSON object: expected '{'");
    else
        ok = json_object(&j, 1, &members);
    if (ok) {
        json_space(&j);
        if (j.i < j.n)
            ok = json_fail(&j, "text after the record");
    }
    if (!ok) {
        if (r.problem) {
            *column = r.problem_at + 1;
            return fvm_error_set(err, FVM_E_INVALID, "%s", r.problem);
        }
        *column = j.i + 1;
        return fvm_error_set(err, FVM_E_PARSE, "%s", j.problem ? j.problem : "invalid JSON");
    }
    for (int f = 0; f < F_COUNT; f++)
        if (!(r.seen & (1u << f)) && (f == F_SEQ || f == F_PREV || f == F_HASH))
            return fvm_error_set(err, FVM_E_INVALID, "the field \"%s\" is missing", field_names[f]);
    if (!r.last_was_hash)
        return fvm_error_set(err, FVM_E_INVALID, "\"hash\" is not the last field");
    out->hashed_len = r.last_member_start - 1; /* the ',' before "hash" */
    return FVM_OK;
}

static uint32_t hex4(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

size_t audit_unescape(const audit_span *span, char *out, size_t cap)
{
    char dummy[1];
    sink s = {cap ? out : dummy, cap ? cap : 1, 0, 0};
    s.out[0] = 0;
    size_t wanted = 0;
    const char *p = span->text;
    for (size_t i = 0; i < span->len;) {
        uint32_t cp = (unsigned char)p[i++];
        if (cp == '\\' && i < span->len) {
            char e = p[i++];
            if (e == 'u' && i + 4 <= span->len) {
                cp = hex4(p + i);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= span->len && p[i] == '\\' && p[i + 1] == 'u' &&
                    hex4(p + i + 2) >= 0xDC00 && hex4(p + i + 2) <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + i + 2) - 0xDC00);
                    i += 6;
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD;
            } else {
                cp = (unsigned char)(e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == 'b' ? '\b'
                                     : e == 'f' ? '\f' : e);
            }
        } else if (cp >= 0x80) { /* raw UTF-8 (the reader checked it): copied as it is */
            char byte = (char)cp;
            wanted++;
            put_bytes(&s, &byte, 1);
            continue;
        }
        char encoded[4];
        size_t n = encode_utf8(cp, encoded);
        wanted += n;
        put_bytes(&s, encoded, n);
    }
    return wanted;
}

fvm_status audit_head_parse(const char *text, size_t len, audit_chain *chain, fvm_error *err)
{
    /* {"seq":N,"hash":"<hex>"} with an optional newline, nothing else. */
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    static const char seq_part[] = "{\"seq\":", hash_part[] = ",\"hash\":\"";
    size_t i = sizeof seq_part - 1;
    if (len < i || memcmp(text, seq_part, i) != 0)
        return fvm_error_set(err, FVM_E_INVALID, "audit head: expected {\"seq\":N,\"hash\":\"...\"}");
    size_t digits_start = i;
    while (i < len && text[i] >= '0' && text[i] <= '9')
        i++;
    uint64_t seq;
    if (!read_u64((const unsigned char *)text + digits_start, i - digits_start, UINT64_MAX, &seq))
        return fvm_error_set(err, FVM_E_INVALID, "audit head: seq is not a whole number");
    if (len - i != sizeof hash_part - 1 + 64 + 2 || memcmp(text + i, hash_part, sizeof hash_part - 1) != 0 ||
        memcmp(text + len - 2, "\"}", 2) != 0)
        return fvm_error_set(err, FVM_E_INVALID, "audit head: expected {\"seq\":N,\"hash\":\"...\"}");
    audit_span hex = {text + i + sizeof hash_part - 1, 64};
    if (!is_lower_hex64(&hex) || !sha256_from_hex(hex.text, 64, chain->hash))
        return fvm_error_set(err, FVM_E_INVALID, "audit head: hash is not 64 lower-case hex digits");
    chain->seq = seq;
    return FVM_OK;
}

/* ---- verification ------------------------------------------------------------------------------ */

static void report_problem(audit_verifier *v, size_t line, size_t column, const char *a, uint64_t n1, const char *b,
                           uint64_t n2, const char *c)
{
    sink s = {v->report.message, sizeof v->report.message, 0, 0};
    v->report.message[0] = 0;
    if (line) {
        put_str(&s, "line ");
        put_u64(&s, line);
        put_str(&s, ": ");
    }
    put_str(&s, a);
    if (b) {
        put_u64(&s, n1);
        put_str(&s, b);
        if (c) {
            put_u64(&s, n2);
            put_str(&s, c);
        }
    }
    v->report.ok = 0;
    v->report.line = line;
    v->report.column = column;
    v->failed = 1;
}

void audit_verifier_init(audit_verifier *v, const audit_chain *start)
{
    memset(v, 0, sizeof *v);
    if (start)
        v->expect = *start;
    v->report.ok = 1;
    v->report.last = v->expect;
}

int audit_verifier_line(audit_verifier *v, const char *line, size_t len)
{
    if (v->failed)
        return 0;
    size_t number = (size_t)++v->line;
    audit_fields f;
    size_t column;
    fvm_error err;
    fvm_status st = audit_parse_line(line, len, &f, &column, &err);
    if (st == FVM_E_PARSE) {
        char msg[200];
        sink s = {msg, sizeof msg, 0, 0};
        put_str(&s, "not valid JSON at column ");
        put_u64(&s, column);
        put_str(&s, " (");
        put_str(&s, err.message);
        put_str(&s, ")");
        report_problem(v, number, column, msg, 0, NULL, 0, NULL);
        return 0;
    }
    if (st != FVM_OK) {
        char msg[200];
        sink s = {msg, sizeof msg, 0, 0};
        put_str(&s, "not an audit record: ");
        put_str(&s, err.message);
        report_problem(v, number, column, msg, 0, NULL, 0, NULL);
        return 0;
    }
    uint8_t hash[SHA256_DIGEST_SIZE], recorded[SHA256_DIGEST_SIZE], prev[SHA256_DIGEST_SIZE];
    sha256(line, f.hashed_len, hash);
    sha256_from_hex(f.hash.text, 64, recorded);
    sha256_from_hex(f.prev.text, 64, prev);
    if (memcmp(hash, recorded, sizeof hash) != 0) {
        report_problem(v, number, 0, "hash mismatch (edited?)", 0, NULL, 0, NULL);
        return 0;
    }
    if (f.seq != v->expect.seq + 1) {
        report_problem(v, number, 0, "sequence jumps from ", v->expect.seq, " to ", f.seq,
                       " (records deleted or inserted)");
        return 0;
    }
    if (memcmp(prev, v->expect.hash, sizeof prev) != 0) {
        if (number == 1) {
            report_problem(v, number, 0, "prev does not match the start anchor (the log does not continue the "
                           "chain it should)", 0, NULL, 0, NULL);
        } else {
            char msg[96];
            sink s = {msg, sizeof msg, 0, 0};
            put_str(&s, "prev does not match line ");
            put_u64(&s, number - 1);
            report_problem(v, number, 0, msg, 0, NULL, 0, NULL);
        }
        return 0;
    }
    if (v->require_subject && !span_is(&f.subject, "broker")) {
        report_problem(v, number, 0, "record ", f.seq, " does not have its subject from the broker's own view "
                       "(its pid and image are the sender's word)", 0, NULL);
        return 0;
    }
    if (v->require_subject && span_is(&f.decided, "sender"))
        v->report.senders_word++;
    if (v->require_subject && span_is(&f.decided, "forged") && !v->report.forged++) {
        /* Kept for the end: the chain must verify first, whatever was forged. */
        char claim[80], decision[16], rule[80];
        audit_unescape(&f.claim, claim, sizeof claim);
        audit_unescape(&f.decision, decision, sizeof decision);
        audit_unescape(&f.rule, rule, sizeof rule);
        sink s = {v->forged_note, sizeof v->forged_note, 0, 0};
        put_str(&s, "it claimed \"");
        put_str(&s, claim);
        put_str(&s, "\", the broker's policy gives \"");
        put_str(&s, decision);
        put_str(&s, " by ");
        put_str(&s, rule);
        put_str(&s, "\"");
        v->first_forged_line = number;
        v->first_forged_seq = f.seq;
    }
    v->expect.seq = f.seq;
    memcpy(v->expect.hash, hash, sizeof hash);
    v->report.records++;
    v->report.last = v->expect;
    return 1;
}

fvm_status audit_verifier_finish(audit_verifier *v, int last_line_complete, const audit_chain *head,
                                 audit_verify_report *report)
{
    if (!v->failed && !last_line_complete)
        report_problem(v, 0, 0, "truncated: last line incomplete (line ", v->line, ")", 0, NULL);
    if (!v->failed && head) {
        uint64_t last = v->expect.seq;
        if (last < head->seq) {
            report_problem(v, 0, 0, "truncated: the log ends at record ", last, " but the head says ", head->seq,
                           " (records removed from the end)");
        } else if (last == head->seq && memcmp(v->expect.hash, head->hash, sizeof head->hash) != 0) {
            report_problem(v, (size_t)v->line, 0, "record ", last,
                           " differs from the head (the log or the head was replaced)", 0, NULL);
        } else if (last > head->seq) {
            /* The record at the head's seq is line head.seq - first + 1. */
            uint64_t first = v->report.last.seq - v->report.records + 1;
            size_t line = head->seq + 1 >= first ? (size_t)(head->seq + 1 - first + 1) : 1;
            char msg[200];
            sink s = {msg, sizeof msg, 0, 0};
            put_str(&s, "record ");
            put_u64(&s, head->seq + 1);
            put_str(&s, " is past the head (");
            put_u64(&s, head->seq);
            put_str(&s, "): the writer stopped between writing it and updating the head, or records were appended");
            report_problem(v, line, 0, msg, 0, NULL, 0, NULL);
        }
    }
    if (!v->failed && v->report.forged) {
        char msg[256];
        sink s = {msg, sizeof msg, 0, 0};
        put_str(&s, "record ");
        put_u64(&s, v->first_forged_seq);
        put_str(&s, ": the sender forged its decision (");
        put_str(&s, v->forged_note);
        put_str(&s, "); ");
        put_u64(&s, v->report.forged);
        put_str(&s, v->report.forged == 1 ? " such record" : " such records");
        report_problem(v, (size_t)v->first_forged_line, 0, msg, 0, NULL, 0, NULL);
    }
    if (!v->failed) {
        sink s = {v->report.message, sizeof v->report.message, 0, 0};
        v->report.message[0] = 0;
        put_str(&s, "ok: ");
        put_u64(&s, v->report.records);
        put_str(&s, v->report.records == 1 ? " record" : " records");
        if (head)
            put_str(&s, ", ends at the head");
        else
            put_str(&s, " (no head given: truncation at the end cannot be detected)");
        if (v->report.senders_word) {
            put_str(&s, "; ");
            put_u64(&s, v->report.senders_word);
            put_str(&s, v->report.senders_word == 1 ? " decision is" : " decisions are");
            put_str(&s, " the sender's word (the broker could not decide them again)");
        }
    }
    if (report)
        *report = v->report;
    return v->failed ? FVM_E_INVALID : FVM_OK;
}

fvm_status audit_verify(const char *text, size_t len, const audit_chain *start, const audit_chain *head,
                        audit_verify_report *report)
{
    audit_verifier v;
    audit_verifier_init(&v, start);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && text[end] != '\n')
            end++;
        if (end == len) /* no newline: the writer was cut off mid-line */
            break;
        if (!audit_verifier_line(&v, text + i, end - i))
            break;
        i = end + 1;
    }
    int complete = i >= len;
    if (!v.failed && !complete)
        v.line++; /* the incomplete line's number */
    return audit_verifier_finish(&v, complete, head, report);
}

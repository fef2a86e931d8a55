/* ntpath_internal.h - what ntpath.c and ntpath_names.c share and nobody else
 * may use: the parsing state, the syntax and name rules, the small helpers
 * both call for every unit (writing the output, errors, characters), and
 * the functions ntpath_names.c defines for ntpath.c.
 *
 * The split: ntpath.c parses the root of a path (every input form, the
 * dispatch on drives, shares, pipes, devices and object directories) and
 * holds the public functions (normalize, join, box mapping, comparison);
 * ntpath_names.c appends the names after the root (".." and ".", streams,
 * invalid characters, DOS device names). ntpath.c's top comment gives the
 * idea. Both are compiled into the CRT-free runtime DLL too. */
#ifndef FVM_CORE_NTPATH_INTERNAL_H
#define FVM_CORE_NTPATH_INTERNAL_H

#include "core/ntpath.h"

#include <string.h>

/* Parsing state: where the output goes and which string is being read. */
typedef struct parse {
    ntpath *out;
    const ntpath_context *ctx;
    fvm_error *err;
    const uint16_t *s;   /* the string being read */
    size_t n;
    const char *what;    /* names that string in messages: "path", "current directory", ... */
    ntpath_input input;
    int depth;           /* > 0 while parsing a current directory or the system root */
    int links;           /* GLOBALROOT links followed (each one recurses) */
} parse;

/* How the root components of a path are found and which rules the names
 * after the root follow. */
typedef enum syntax {
    SYNTAX_NT,           /* backslashes only; NT rules for names */
    SYNTAX_WIN32,        /* '/' too; Win32 rules for names (drive, UNC, relative forms) */
    SYNTAX_WIN32_DEVICE  /* "\\.\" forms: like WIN32, but ".." can climb over the device name */
} syntax;

/* Rules for appending names (bit set). */
enum {
    RULE_SLASH = 1u << 0, /* '/' separates names */
    RULE_WIN32 = 1u << 1, /* Win32 normalisation: "." and ".." are ordinary, flags only beyond Win32 */
    RULE_FILE  = 1u << 2  /* file system names: trailing dots, streams, invalid characters */
};

enum { MAX_NESTING = 2 }; /* current directory -> \SystemRoot, no further */
enum { MAX_LINKS = 8 };   /* "\??\GLOBALROOT\??\GLOBALROOT\..." is refused past this */

static const ntpath_context no_context;
static const unsigned WIN32_FILE_RULES = RULE_SLASH | RULE_WIN32 | RULE_FILE;

/* Defined in ntpath_names.c. */
int next_root_name(parse *p, size_t *pos, size_t *start, size_t *len, syntax syn);
unsigned rules_for(syntax syn);
fvm_status append_names(parse *p, size_t pos, unsigned rules);
fvm_status append_verbatim(parse *p, size_t pos, int add_separator);
fvm_status parse_stream(parse *p, size_t at, size_t n, int last, int win32);
fvm_status check_name_characters(parse *p, size_t at, size_t n, const char *what);
int win32_last_name_is_device(const parse *p, size_t from, size_t *base_at, size_t *base_len);
int is_dos_device(const uint16_t *s, size_t n);
int is_physical_drive(const uint16_t *s, size_t n);
int is_storage_name(const uint16_t *s, size_t n);
int is_known_device(const uint16_t *s, size_t n);
fvm_status storage_not_mapped(parse *p, size_t at, size_t n);

/* Defined in ntpath.c: errors are the cold path, so not inline. */
fvm_status fail_at(parse *p, fvm_status status, size_t at, size_t n, const char *problem);
const char *render(const uint16_t *s, size_t n, char *buf, size_t cap);

/* The helpers below are called for every unit and name, from both files:
 * inline here so that splitting the file costs no calls. */

static inline void reset_output(ntpath *out, const ntpath_context *ctx);
static inline void reopen_for_append(ntpath *out);
static inline fvm_status emit(parse *p, const uint16_t *units, size_t n, size_t at);
static inline fvm_status emit_unit(parse *p, uint16_t c, size_t at);
static inline fvm_status emit_ascii(parse *p, const char *lit, size_t at);
static inline int equals_folded(const uint16_t *table, const uint16_t *a, size_t an, const uint16_t *b, size_t bn);
static inline int equals_ascii(const uint16_t *s, size_t n, const char *lit);
static inline int starts_with_ascii(const uint16_t *s, size_t n, const char *lit);
static inline uint16_t ascii_upper(uint16_t c);
static inline int is_separator(uint16_t c, int slash);
static inline int is_ascii_letter(uint16_t c);
static inline int is_ascii_digit(uint16_t c);
static inline int is_dot(const uint16_t *s, size_t n);
static inline int is_dot_dot(const uint16_t *s, size_t n);
static inline size_t without_trailing_dots_and_spaces(const uint16_t *s, size_t n);
static inline size_t find_unit(const uint16_t *s, size_t n, uint16_t c);

/* ---- characters and strings ---------------------------------------------- */

/* Case-insensitive equality of two UTF-16 strings under a folding table. */
static inline int equals_folded(const uint16_t *table, const uint16_t *a, size_t an, const uint16_t *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (a[i] != b[i] && ntpath_upcase(table, a[i]) != ntpath_upcase(table, b[i]))
            return 0;
    return 1;
}

/* Case-insensitive comparison with an ASCII literal (object and device names
 * are ASCII, and ASCII folding is the same in every upcase table). */
static inline int equals_ascii(const uint16_t *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n; i++) {
        if (!lit[i] || ascii_upper(s[i]) != ascii_upper((uint16_t)(unsigned char)lit[i]))
            return 0;
    }
    return lit[i] == 0;
}

static inline int starts_with_ascii(const uint16_t *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; lit[i]; i++) {
        if (i >= n || ascii_upper(s[i]) != ascii_upper((uint16_t)(unsigned char)lit[i]))
            return 0;
    }
    return 1;
}

static inline uint16_t ascii_upper(uint16_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint16_t)(c - 32) : c;
}

static inline int is_separator(uint16_t c, int slash)
{
    return c == '\\' || (slash && c == '/');
}

static inline int is_ascii_letter(uint16_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int is_ascii_digit(uint16_t c)
{
    return c >= '0' && c <= '9';
}

static inline int is_dot(const uint16_t *s, size_t n)
{
    return n == 1 && s[0] == '.';
}

static inline int is_dot_dot(const uint16_t *s, size_t n)
{
    return n == 2 && s[0] == '.' && s[1] == '.';
}

static inline size_t without_trailing_dots_and_spaces(const uint16_t *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '.' || s[n - 1] == ' '))
        n--;
    return n;
}

static inline size_t find_unit(const uint16_t *s, size_t n, uint16_t c)
{
    size_t i = 0;
    while (i < n && s[i] != c)
        i++;
    return i;
}

/* ---- writing the output -------------------------------------------------- */

static inline void reset_output(ntpath *out, const ntpath_context *ctx)
{
    out->kind = NTPATH_KIND_NONE;
    out->flags = 0;
    out->drive = 0;
    out->len = 0;
    out->root_len = 0;
    out->server_offset = out->server_len = 0;
    out->share_offset = out->share_len = 0;
    out->name_offset = 0;
    out->short_name_end = 0;
    out->stream_len = 0;
    out->stream[0] = 0;
    out->path[0] = 0;
    out->upcase_table = ctx->upcase_table;
}

/* Makes a finished path ready for more names: a root loses its separator. */
static inline void reopen_for_append(ntpath *out)
{
    if (out->flags & NTPATH_FLAG_ROOT)
        out->len = out->root_len;
    out->flags &= ~(uint32_t)(NTPATH_FLAG_ROOT | NTPATH_FLAG_TRAILING_SEPARATOR);
}

static inline fvm_status emit(parse *p, const uint16_t *units, size_t n, size_t at)
{
    ntpath *out = p->out;
    if (n > NTPATH_MAX_UNITS - out->len)
        return fvm_error_set(p->err, FVM_E_RANGE,
                             "the canonical path would be longer than %lu units (reached at offset %lu of the %s)",
                             (unsigned long)NTPATH_MAX_UNITS, (unsigned long)at, p->what);
    memcpy(out->path + out->len, units, n * sizeof *units);
    out->len += n;
    return FVM_OK;
}

static inline fvm_status emit_unit(parse *p, uint16_t c, size_t at)
{
    return emit(p, &c, 1, at);
}

static inline fvm_status emit_ascii(parse *p, const char *lit, size_t at)
{
    fvm_status st = FVM_OK;
    for (size_t i = 0; lit[i] && st == FVM_OK; i++)
        st = emit_unit(p, (uint16_t)(unsigned char)lit[i], at);
    return st;
}

#endif

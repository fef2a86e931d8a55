/* policy_parse.c - policy text -> rule list (docs/policy.md is the language
 * reference).
 *
 * A policy is INI-like: [sections], one rule a line, whole-line comments
 * ('#' or ';'). A rule is
 *     [SCOPE:] ACTION [audit] PATTERN
 * SCOPE is a program's file name ("winword.exe:") or a group ("@office:");
 * ACTION is cow, read, open, hide, deny or ask(timeout=..., default=...).
 * Sections: [file] [key] [object], the reserved types ([process] [net] ...),
 * [group:NAME] (one program a line), [vars] (NAME = value). "include NAME"
 * and "template NAME" work in any section; the included file starts with no
 * section and the including file's section continues after it.
 *
 * The parser never stops at the first problem: each line is parsed on its
 * own, every error is reported with file:line:column (up to max_errors) and
 * the line is skipped. Sources come through the caller's reader, so the core
 * does no I/O. Patterns leave here canonical (see policy.h): file patterns go
 * through ntpath_normalize, exactly what the runtime does to the names it
 * decides on, after %VARIABLES% are expanded from the caller's table.
 *
 * Pattern texts are made canonical by policy_canonical.c; what the two
 * files share is in policy_parse_internal.h.
 *
 * Not part of the runtime (FVM_RUNTIME): it allocates and formats. */
#include "core/objname.h"
#include "core/policy.h"
#include "core/netrules.h"
#include "core/policy_process.h"

#ifndef FVM_RUNTIME

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy_parse_internal.h"

/* ---- the policy object ---------------------------------------------------- */

struct policy {
    policy_rule *rules;
    size_t rule_count, rule_cap;
    policy_group *groups;
    size_t group_count, group_cap;
    void **owned;                  /* every allocation the rules and groups point into */
    size_t owned_count, owned_cap;
};

/* Keeps ptr until policy_free; frees it and returns NULL when that fails. */
static void *own(policy *p, void *ptr)
{
    if (!ptr)
        return NULL;
    if (!reserve((void **)&p->owned, &p->owned_cap, p->owned_count + 1, sizeof(void *))) {
        free(ptr);
        return NULL;
    }
    p->owned[p->owned_count++] = ptr;
    return ptr;
}

static char *own_string(policy *p, const char *s, size_t n)
{
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = 0;
    return own(p, copy);
}

void policy_free(policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->owned_count; i++)
        free(p->owned[i]);
    for (size_t i = 0; i < p->group_count; i++)
        free(p->groups[i].programs);
    free(p->owned);
    free(p->rules);
    free(p->groups);
    free(p);
}

size_t policy_rule_count(const policy *p)
{
    return p ? p->rule_count : 0;
}

const policy_rule *policy_rule_at(const policy *p, size_t index)
{
    return p && index < p->rule_count ? &p->rules[index] : NULL;
}

size_t policy_group_count(const policy *p)
{
    return p ? p->group_count : 0;
}

const policy_group *policy_group_at(const policy *p, size_t index)
{
    return p && index < p->group_count ? &p->groups[index] : NULL;
}

/* ---- small text helpers ------------------------------------------------------ */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}


static int equals_ci(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!word[i] || lower(s[i]) != lower(word[i]))
            return 0;
    return word[i] == 0;
}

static int starts_with_ci(const char *s, size_t n, const char *prefix)
{
    size_t i = 0;
    for (; prefix[i]; i++)
        if (i >= n || lower(s[i]) != lower(prefix[i]))
            return 0;
    return 1;
}

static size_t skip_spaces(const char *s, size_t n, size_t i)
{
    while (i < n && is_space(s[i]))
        i++;
    return i;
}

static size_t trim_end(const char *s, size_t n)
{
    while (n > 0 && is_space(s[n - 1]))
        n--;
    return n;
}

/* 1-based column of byte offset at: one per UTF-8 code point. */
static uint32_t column_of(const char *line, size_t at)
{
    uint32_t col = 1;
    for (size_t i = 0; i < at; i++)
        if (((unsigned char)line[i] & 0xC0) != 0x80)
            col++;
    return col;
}

/* ---- UTF-8 --------------------------------------------------------------------- */

/* Decodes one code point at s[i]; returns its length, 0 when invalid. */
static size_t decode_utf8(const unsigned char *s, size_t n, size_t i, uint32_t *cp)
{
    unsigned char c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t min, v;
    if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, v = c & 0x07;
    } else {
        return 0;
    }
    if (i + len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

size_t policy_utf8_to_utf16(const char *in, size_t len, uint16_t *out, size_t cap, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = decode_utf8(s, len, i, &cp);
        if (n == 0 || cp == 0) {
            if (bad_offset)
                *bad_offset = i;
            return (size_t)-1;
        }
        size_t need = cp >= 0x10000 ? 2 : 1;
        if (o + need > cap) {
            if (bad_offset)
                *bad_offset = len;
            return (size_t)-1;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            out[o++] = (uint16_t)(0xD800 + (cp >> 10));
            out[o++] = (uint16_t)(0xDC00 + (cp & 0x3FF));
        } else {
            out[o++] = (uint16_t)cp;
        }
        i += n;
    }
    return o;
}

/* Offset of the first invalid byte (or NUL) of a line, or n when valid. */
static size_t first_invalid_utf8(const char *line, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = decode_utf8((const unsigned char *)line, n, i, &cp);
        if (len == 0 || cp == 0)
            return i;
        i += len;
    }
    return n;
}

/* ---- diagnostics ------------------------------------------------------------------ */

size_t policy_diag_format(const policy_diag *d, char *out, size_t cap)
{
    static const char *const severities[] = {"error", "warning", "note"};
    const char *severity = (unsigned)d->severity <= POLICY_DIAG_NOTE ? severities[d->severity] : "error";
    int n;
    if (d->line)
        n = snprintf(out, cap, "%s:%lu:%lu: %s: %s", d->file ? d->file : "?", (unsigned long)d->line,
                     (unsigned long)d->column, severity, d->message);
    else
        n = snprintf(out, cap, "%s: %s: %s", d->file ? d->file : "?", severity, d->message);
    return n < 0 ? 0 : (size_t)n;
}

/* ---- variables ---------------------------------------------------------------------- */

typedef struct policy_variable {
    char *name, *value;
    const char *file;
    uint32_t line;
} policy_variable;

typedef struct var_scope {
    const policy_env *env;
    const policy_variable *own;    /* the policy's [vars], may be NULL */
    size_t own_count;
} var_scope;

static const char *find_env_var(const policy_env *env, const char *name, size_t n)
{
    for (size_t i = 0; env && i < env->var_count; i++)
        if (env->vars[i].name && equals_ci(name, n, env->vars[i].name))
            return env->vars[i].value ? env->vars[i].value : "";
    return NULL;
}

static const char *find_var(const var_scope *scope, const char *name, size_t n)
{
    for (size_t i = 0; i < scope->own_count; i++)
        if (equals_ci(name, n, scope->own[i].name))
            return scope->own[i].value;
    return find_env_var(scope->env, name, n);
}

/* Expands %NAME% ("%%" is a '%'). On failure *bad is the offset of the
 * offending '%' and err says why. The result is malloc'd. */
static fvm_status expand_vars(const var_scope *scope, const char *in, size_t n, char **out, size_t *out_len,
                              size_t *bad, fvm_error *err)
{
    size_t cap = n + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n;) {
        const char *piece = in + i;
        size_t piece_len = 1, advance = 1;
        if (in[i] == '%') {
            size_t close = i + 1;
            while (close < n && in[close] != '%')
                close++;
            if (close == n) {
                free(buf);
                *bad = i;
                return fvm_error_set(err, FVM_E_INVALID, "unterminated variable: '%%' without a closing '%%' "
                                     "(write '%%%%' for a literal '%%')");
            }
            if (close == i + 1) {
                advance = 2;
            } else {
                piece = find_var(scope, in + i + 1, close - i - 1);
                if (!piece) {
                    free(buf);
                    *bad = i;
                    return fvm_error_set(err, FVM_E_NOTFOUND, "unknown variable %%%.*s%%", (int)(close - i - 1),
                                         in + i + 1);
                }
                piece_len = strlen(piece);
                advance = close - i + 1;
            }
        }
        if (!reserve((void **)&buf, &cap, len + piece_len + 1, 1)) {
            free(buf);
            return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        }
        memcpy(buf + len, piece, piece_len);
        len += piece_len;
        i += advance;
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return FVM_OK;
}

/* ---- the parser ------------------------------------------------------------------------ */

typedef enum section_kind {
    SECTION_NONE = 0,   /* before the first header of a file */
    SECTION_RULES,      /* [file], [key], ... */
    SECTION_VARS,       /* [vars] */
    SECTION_GROUP,      /* [group:NAME] */
    SECTION_SKIP        /* after a bad header: its lines are not looked at */
} section_kind;

typedef struct source {
    const char *name;   /* resolved name, owned by the policy */
    section_kind section;
    policy_type type;
    size_t group;
} source;

/* The line being parsed, for messages. */
typedef struct line_ref {
    const char *file;
    uint32_t number;
    const char *text;
    size_t len;
} line_ref;

typedef struct parser {
    const policy_env *env;
    policy *pol;
    unsigned errors, max_errors;
    int stopped;                     /* too many errors, or out of memory */
    int out_of_memory;
    const char *stack[POLICY_MAX_INCLUDE_DEPTH + 1];  /* files being read, outermost first */
    size_t depth;
    const char **seen;               /* every file read (include-once) */
    size_t seen_count, seen_cap;
    policy_variable *vars;
    size_t var_count, var_cap;
    ntpath *scratch;                 /* 64 KB: on the heap */
    unsigned noted_types;            /* reserved types already given their note */
} parser;

static void report_at(parser *p, policy_severity severity, const char *file, uint32_t line, uint32_t column,
                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

static void report_at(parser *p, policy_severity severity, const char *file, uint32_t line, uint32_t column,
                      const char *fmt, ...)
{
    if (p->stopped)
        return;
    char message[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (p->env && p->env->diag) {
        policy_diag d = {severity, file, line, column, message};
        p->env->diag(p->env->diag_ctx, &d);
    }
    if (severity != POLICY_DIAG_ERROR)
        return;
    if (++p->errors >= p->max_errors) {
        if (p->env && p->env->diag) {
            policy_diag d = {POLICY_DIAG_NOTE, file, line, column, "too many errors; stopping here"};
            p->env->diag(p->env->diag_ctx, &d);
        }
        p->stopped = 1;
    }
}

/* A message about the byte at offset of the current line. */
#define REPORT(p, severity, l, offset, ...) \
    report_at((p), (severity), (l)->file, (l)->number, column_of((l)->text, (offset)), __VA_ARGS__)

static void out_of_memory(parser *p)
{
    p->out_of_memory = 1;
    p->stopped = 1;
}

/* ---- sections ---- */

static int group_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return 0;
    }
    return 1;
}

static policy_group *find_group(policy *pol, const char *name, size_t n)
{
    for (size_t i = 0; i < pol->group_count; i++)
        if (equals_ci(name, n, pol->groups[i].name))
            return &pol->groups[i];
    return NULL;
}

static void section_header(parser *p, source *s, const line_ref *l, size_t start, size_t end)
{
    const char *t = l->text;
    s->section = SECTION_SKIP;
    if (t[end - 1] != ']') {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "section header without a closing ']'");
        return;
    }
    size_t a = skip_spaces(t, end - 1, start + 1), b = trim_end(t, end - 1);
    const char *name = t + a;
    size_t n = b > a ? b - a : 0;
    policy_type type;
    if (starts_with_ci(name, n, "group:")) {
        size_t g = skip_spaces(name, n, 6);
        const char *gname = name + g;
        size_t glen = n - g;
        if (!group_name_ok(gname, glen)) {
            REPORT(p, POLICY_DIAG_ERROR, l, a + g, "bad group name '%.*s' (use letters, digits, '-', '_' and '.')",
                   (int)glen, gname);
            return;
        }
        policy_group *existing = find_group(p->pol, gname, glen);
        if (existing) {
            REPORT(p, POLICY_DIAG_ERROR, l, a + g, "duplicate group '%.*s' (first defined at %s:%lu)", (int)glen,
                   gname, existing->file, (unsigned long)existing->line);
            return;
        }
        policy *pol = p->pol;
        if (!reserve((void **)&pol->groups, &pol->group_cap, pol->group_count + 1, sizeof *pol->groups)) {
            out_of_memory(p);
            return;
        }
        policy_group *group = &pol->groups[pol->group_count];
        memset(group, 0, sizeof *group);
        group->name = own_string(pol, gname, glen);
        group->file = s->name;
        group->line = l->number;
        if (!group->name) {
            out_of_memory(p);
            return;
        }
        s->group = pol->group_count++;
        s->section = SECTION_GROUP;
    } else if (equals_ci(name, n, "vars")) {
        s->section = SECTION_VARS;
    } else if (equals_ci(name, n, "sync")) {
        s->section = SECTION_SKIP;   /* fvm commit's rules: core/syncpolicy.c */
    } else if (policy_type_from_name(name, n, &type)) {
        s->section = SECTION_RULES;
        s->type = type;
        if (!policy_type_enforced(type) && !(p->noted_types & (1u << type))) {
            p->noted_types |= 1u << type;
            REPORT(p, POLICY_DIAG_NOTE, l, start, "[%s] rules are checked and compiled, but not enforced yet",
                   policy_type_name(type));
        }
    } else {
        REPORT(p, POLICY_DIAG_ERROR, l, a, "unknown section [%.*s] (expected file, key, object, group:NAME, vars, "
               "or one of the reserved types process, net, service, screen, print, desktop, memory, data)",
               (int)n, name);
    }
}

/* ---- [vars] ---- */

static void var_line(parser *p, const line_ref *l, size_t start, size_t end)
{
    const char *t = l->text;
    size_t eq = start;
    while (eq < end && t[eq] != '=')
        eq++;
    if (eq == end) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "expected NAME = value in [vars]");
        return;
    }
    size_t name_end = trim_end(t, eq);
    const char *name = t + start;
    size_t name_len = name_end > start ? name_end - start : 0;
    if (name_len == 0 || memchr(name, '%', name_len)) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "bad variable name '%.*s'", (int)name_len, name);
        return;
    }
    if (find_env_var(p->env, name, name_len)) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "%%%.*s%% is supplied by the system; choose another name",
               (int)name_len, name);
        return;
    }
    for (size_t i = 0; i < p->var_count; i++) {
        if (equals_ci(name, name_len, p->vars[i].name)) {
            REPORT(p, POLICY_DIAG_ERROR, l, start, "variable %%%.*s%% is already defined at %s:%lu", (int)name_len,
                   name, p->vars[i].file, (unsigned long)p->vars[i].line);
            return;
        }
    }
    size_t value_start = skip_spaces(t, end, eq + 1);
    var_scope scope = {p->env, p->vars, p->var_count};
    char *value;
    size_t value_len, bad;
    fvm_error err;
    fvm_status st = expand_vars(&scope, t + value_start, end - value_start, &value, &value_len, &bad, &err);
    if (st == FVM_E_NOMEM) {
        out_of_memory(p);
        return;
    }
    if (st != FVM_OK) {
        REPORT(p, POLICY_DIAG_ERROR, l, value_start + bad, "%s", err.message);
        return;
    }
    char *name_copy = own_string(p->pol, name, name_len);
    if (!own(p->pol, value) || !name_copy ||
        !reserve((void **)&p->vars, &p->var_cap, p->var_count + 1, sizeof *p->vars)) {
        out_of_memory(p);
        return;
    }
    policy_variable *v = &p->vars[p->var_count++];
    v->name = name_copy;
    v->value = value;
    v->file = l->file;
    v->line = l->number;
}

/* ---- [group:NAME] ---- */

/* A program is named by its file name: no path, no wildcard. NULL when ok. */
static const char *program_name_problem(const char *s, size_t n)
{
    if (n == 0)
        return "empty program name";
    if (n > 255)
        return "program name longer than 255 characters";
    if (s[0] == '@')
        return "a program name cannot start with '@' (that names a group)";
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\\' || s[i] == '/')
            return "a program is named by its file name, without a folder (e.g. winword.exe)";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ':' || c == '*' || c == '?' || c == '"' || c == '<' || c == '>' || c == '|' || (unsigned char)c < 0x20)
            return "a program name cannot contain : * ? \" < > |";
    }
    return NULL;
}

/* A token in double quotes loses them; 0 when the quote is not closed. */
static int unquote(const char **s, size_t *n)
{
    if (*n == 0 || (*s)[0] != '"')
        return 1;
    if (*n < 2 || (*s)[*n - 1] != '"')
        return 0;
    (*s)++;
    *n -= 2;
    return 1;
}

static void group_line(parser *p, source *s, const line_ref *l, size_t start, size_t end)
{
    const char *name = l->text + start;
    size_t n = end - start;
    if (!unquote(&name, &n)) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "unterminated quote");
        return;
    }
    const char *problem = program_name_problem(name, n);
    if (problem) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "%s", problem);
        return;
    }
    policy_group *g = &p->pol->groups[s->group];
    for (size_t i = 0; i < g->program_count; i++) {
        if (equals_ci(name, n, g->programs[i])) {
            REPORT(p, POLICY_DIAG_WARNING, l, start, "'%.*s' is already in group '%s'", (int)n, name, g->name);
            return;
        }
    }
    size_t cap = g->program_count; /* grown one at a time: groups are small */
    const char **grown = realloc(g->programs, (cap + 1) * sizeof *grown);
    char *copy = own_string(p->pol, name, n);
    if (!grown || !copy) {
        if (grown)
            g->programs = grown;
        out_of_memory(p);
        return;
    }
    g->programs = grown;
    g->programs[g->program_count++] = copy;
}

/* ---- rules ---- */

static const struct {
    const char *word;
    policy_action action;
} action_words[] = {
    {"open", POLICY_ACTION_OPEN}, {"cow", POLICY_ACTION_COW},   {"read", POLICY_ACTION_READ},
    {"ask", POLICY_ACTION_ASK},   {"hide", POLICY_ACTION_HIDE}, {"deny", POLICY_ACTION_DENY},
};

static policy_action action_from_word(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof action_words / sizeof action_words[0]; i++)
        if (equals_ci(s, n, action_words[i].word))
            return action_words[i].action;
    return POLICY_ACTION_NONE;
}

static int is_action_token(const char *s, size_t n)
{
    return action_from_word(s, n) != POLICY_ACTION_NONE || starts_with_ci(s, n, "ask(");
}

/* The end of the token at i: up to a space; a quoted token up to its
 * closing quote (and a ':' right after it); "ask(" up to its ')'. */
static size_t token_end(const char *t, size_t n, size_t i)
{
    if (t[i] == '"') {
        size_t j = i + 1;
        while (j < n && t[j] != '"')
            j++;
        if (j == n)
            return n;
        j++;
        return (j < n && t[j] == ':') ? j + 1 : j;
    }
    if (starts_with_ci(t + i, n - i, "ask(")) {
        size_t j = i + 4;
        while (j < n && t[j] != ')')
            j++;
        return j < n ? j + 1 : n;
    }
    while (i < n && !is_space(t[i]))
        i++;
    return i;
}

/* "2s", "500ms", "1m" -> milliseconds; 0 on error. */
static uint32_t parse_timeout(const char *s, size_t n)
{
    uint64_t value = 0;
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && value <= POLICY_ASK_MAX_TIMEOUT_MS)
        value = value * 10 + (uint64_t)(s[i++] - '0');
    if (i == 0)
        return 0;
    const char *unit = s + i;
    size_t unit_len = n - i;
    uint64_t scale = equals_ci(unit, unit_len, "ms") ? 1 : equals_ci(unit, unit_len, "s") ? 1000
                   : equals_ci(unit, unit_len, "m") ? 60000 : 0;
    value *= scale;
    return (value == 0 || value > POLICY_ASK_MAX_TIMEOUT_MS) ? 0 : (uint32_t)value;
}

/* The action token at [start, end): fills rule->action and the ask
 * parameters. 0 after reporting an error. */
static int parse_action(parser *p, const line_ref *l, size_t start, size_t end, policy_rule *rule)
{
    const char *t = l->text;
    rule->action = action_from_word(t + start, end - start);
    if (rule->action == POLICY_ACTION_ASK) {
        rule->ask_timeout_ms = POLICY_ASK_DEFAULT_TIMEOUT_MS;
        rule->ask_default = POLICY_ACTION_DENY;
        return 1;
    }
    if (rule->action != POLICY_ACTION_NONE)
        return 1;
    if (!starts_with_ci(t + start, end - start, "ask(")) {
        if (equals_ci(t + start, end - start, "audit"))
            REPORT(p, POLICY_DIAG_ERROR, l, start, "'audit' is a flag, not an action: write it after one "
                   "(e.g. 'cow audit PATTERN')");
        else
            REPORT(p, POLICY_DIAG_ERROR, l, start, "unknown action '%.*s' (expected cow, read, open, hide, deny or "
                   "ask; a program scope ends with ':')", (int)(end - start), t + start);
        return 0;
    }
    if (t[end - 1] != ')') {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "'ask(' without a closing ')'");
        return 0;
    }
    rule->action = POLICY_ACTION_ASK;
    rule->ask_timeout_ms = POLICY_ASK_DEFAULT_TIMEOUT_MS;
    rule->ask_default = POLICY_ACTION_DENY;
    for (size_t i = start + 4; i < end - 1;) {
        size_t param_end = i;
        while (param_end < end - 1 && t[param_end] != ',')
            param_end++;
        size_t a = skip_spaces(t, param_end, i), b = trim_end(t, param_end);
        size_t eq = a;
        while (eq < b && t[eq] != '=')
            eq++;
        size_t key_end = trim_end(t, eq), value = skip_spaces(t, b, eq + 1 < b ? eq + 1 : b);
        if (a == b) {
            REPORT(p, POLICY_DIAG_ERROR, l, a, "empty parameter in ask(...)");
            return 0;
        }
        if (eq == b) {
            REPORT(p, POLICY_DIAG_ERROR, l, a, "expected NAME=VALUE in ask(...): timeout=2s, default=deny");
            return 0;
        }
        if (equals_ci(t + a, key_end - a, "timeout")) {
            rule->ask_timeout_ms = parse_timeout(t + value, b - value);
            if (rule->ask_timeout_ms == 0) {
                REPORT(p, POLICY_DIAG_ERROR, l, value, "bad timeout '%.*s' (a number with ms, s or m, from 1ms "
                       "to 60m)", (int)(b - value), t + value);
                return 0;
            }
        } else if (equals_ci(t + a, key_end - a, "default")) {
            rule->ask_default = action_from_word(t + value, b - value);
            if (rule->ask_default == POLICY_ACTION_NONE || rule->ask_default == POLICY_ACTION_ASK) {
                REPORT(p, POLICY_DIAG_ERROR, l, value, "bad default '%.*s' for ask (expected deny, hide, read, cow "
                       "or open)", (int)(b - value), t + value);
                return 0;
            }
        } else {
            REPORT(p, POLICY_DIAG_ERROR, l, a, "unknown ask parameter '%.*s' (expected timeout or default)",
                   (int)(key_end - a), t + a);
            return 0;
        }
        i = param_end + 1;
    }
    return 1;
}

/* Turns the pattern text into the rule's canonical patterns. */
static int make_patterns(parser *p, const line_ref *l, size_t start, size_t end, policy_type type, policy_rule *rule)
{
    const char *text = l->text + start;
    size_t n = end - start;
    size_t column_offset = start;
    if (text[0] == '"') {
        if (!unquote(&text, &n)) {
            REPORT(p, POLICY_DIAG_ERROR, l, start, "unterminated quote");
            return 0;
        }
        column_offset++;
    }
    var_scope scope = {p->env, p->vars, p->var_count};
    char *expanded;
    size_t expanded_len, bad;
    fvm_error err;
    fvm_status st = expand_vars(&scope, text, n, &expanded, &expanded_len, &bad, &err);
    if (st != FVM_OK) {
        if (st == FVM_E_NOMEM)
            out_of_memory(p);
        else
            REPORT(p, POLICY_DIAG_ERROR, l, column_offset + bad, "%s", err.message);
        return 0;
    }
    uint16_t *units = malloc((expanded_len + 1) * sizeof *units);
    if (!units) {
        free(expanded);
        out_of_memory(p);
        return 0;
    }
    size_t units_len = policy_utf8_to_utf16(expanded, expanded_len, units, expanded_len, &bad);
    free(expanded);
    if (units_len == (size_t)-1) {
        free(units);
        REPORT(p, POLICY_DIAG_ERROR, l, start, "a variable's value is not valid UTF-8");
        return 0;
    }
    canonical c;
    st = canonicalize(p->env, type, units, units_len, p->scratch, &c, &err);
    free(units);
    if (st != FVM_OK) {
        /* A [net] error names its unit; the column is exact when no variable changed the text. */
        size_t at = c.bad_at && expanded_len == n ? column_offset + c.bad_at : start;
        if (st == FVM_E_NOMEM)
            out_of_memory(p);
        else
            REPORT(p, POLICY_DIAG_ERROR, l, at, "%s", err.message);
        return 0;
    }
    if (type == POLICY_TYPE_NET && c.count && net_rule_is_publish(c.forms[0].units, c.forms[0].len) &&
        (rule->action != POLICY_ACTION_OPEN || rule->scope != POLICY_SCOPE_ALL)) {
        /* A published port is the box's, not a program's, and says where a
         * port lives rather than what may be done with it. */
        REPORT(p, POLICY_DIAG_ERROR, l, start, "%s", rule->action != POLICY_ACTION_OPEN
               ? "a publish rule is an open rule (open publish:18080:8080)"
               : "a publish rule is the box's: it takes no program or group scope");
        canonical_free(&c);
        return 0;
    }
    rule->pattern_count = c.count;
    for (size_t i = 0; i < c.count; i++) {
        st = analyze_pattern(&c.forms[i], &rule->patterns[i], &err);
        if (st != FVM_OK) {
            REPORT(p, POLICY_DIAG_ERROR, l, start, "%s", err.message);
            canonical_free(&c);
            return 0;
        }
        rule->patterns[i].units = c.forms[i].units;
        rule->patterns[i].len = c.forms[i].len;
        c.forms[i].units = NULL;
        if (!own(p->pol, rule->patterns[i].units)) {
            canonical_free(&c);
            out_of_memory(p);
            return 0;
        }
    }
    uint32_t path_flags = c.ntpath_flags;
    canonical_free(&c);
    if (type == POLICY_TYPE_FILE && (path_flags & NTPATH_FLAG_SHORT_NAME))
        REPORT(p, POLICY_DIAG_WARNING, l, start, "a name looks like a short 8.3 alias (e.g. PROGRA~1): the runtime "
               "decides on long names, write the long name");
    return 1;
}

static void rule_line(parser *p, source *s, const line_ref *l, size_t start, size_t end)
{
    const char *t = l->text;
    policy_rule rule;
    memset(&rule, 0, sizeof rule);
    rule.type = s->type;
    rule.file = s->name;
    rule.line = l->number;
    rule.column = column_of(t, start);

    size_t i = start, tok = token_end(t, end, i);
    if (!is_action_token(t + i, tok - i) && tok - i > 1 && t[tok - 1] == ':') {
        const char *scope = t + i;
        size_t n = tok - i - 1;
        if (!unquote(&scope, &n)) {
            REPORT(p, POLICY_DIAG_ERROR, l, i, "unterminated quote");
            return;
        }
        if (n > 0 && scope[0] == '@') {
            if (!group_name_ok(scope + 1, n - 1)) {
                REPORT(p, POLICY_DIAG_ERROR, l, i, "bad group name '%.*s'", (int)n, scope);
                return;
            }
            rule.scope = POLICY_SCOPE_GROUP;
            scope++;
            n--;
        } else {
            const char *problem = program_name_problem(scope, n);
            if (problem) {
                REPORT(p, POLICY_DIAG_ERROR, l, i, "%s", problem);
                return;
            }
            rule.scope = POLICY_SCOPE_PROGRAM;
        }
        if (!(rule.scope_name = own_string(p->pol, scope, n))) {
            out_of_memory(p);
            return;
        }
        i = skip_spaces(t, end, tok);
        if (i == end) {
            REPORT(p, POLICY_DIAG_ERROR, l, i, "an action is missing after the program scope");
            return;
        }
        tok = token_end(t, end, i);
    }
    if (!parse_action(p, l, i, tok, &rule))
        return;
    i = skip_spaces(t, end, tok);
    size_t word = token_end(t, end, i);
    if (equals_ci(t + i, word - i, "audit") && skip_spaces(t, end, word) < end) {
        rule.audit = 1;
        i = skip_spaces(t, end, word);
    }
    if (i == end) {
        REPORT(p, POLICY_DIAG_ERROR, l, end, "a pattern is missing after '%s'", policy_action_name(rule.action));
        return;
    }
    if (!(rule.text = own_string(p->pol, t + i, end - i)))
        out_of_memory(p);
    if (!rule.text || !make_patterns(p, l, i, end, s->type, &rule))
        return;
    policy *pol = p->pol;
    if (!reserve((void **)&pol->rules, &pol->rule_cap, pol->rule_count + 1, sizeof *pol->rules)) {
        out_of_memory(p);
        return;
    }
    rule.order = (uint32_t)pol->rule_count;
    pol->rules[pol->rule_count++] = rule;
}

/* ---- includes ---- */

static void parse_text(parser *p, const char *name, const char *text, size_t len);

static int was_seen(const parser *p, const char *name)
{
    for (size_t i = 0; i < p->seen_count; i++)
        if (strcmp(p->seen[i], name) == 0)
            return 1;
    return 0;
}

/* Reads and parses an included file; name as resolved by the reader is
 * what cycles and include-once compare. */
static void include_file(parser *p, source *s, const line_ref *l, policy_include_kind kind, size_t start, size_t end)
{
    const char *keyword = kind == POLICY_INCLUDE_TEMPLATE ? "template" : "include";
    const char *arg = l->text + start;
    size_t n = end - start;
    if (n == 0) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "%s needs a name", keyword);
        return;
    }
    if (!unquote(&arg, &n)) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "unterminated quote");
        return;
    }
    var_scope scope = {p->env, p->vars, p->var_count};
    char *name;
    size_t name_len, bad;
    fvm_error err;
    fvm_status st = expand_vars(&scope, arg, n, &name, &name_len, &bad, &err);
    if (st != FVM_OK) {
        if (st == FVM_E_NOMEM)
            out_of_memory(p);
        else
            REPORT(p, POLICY_DIAG_ERROR, l, start + bad, "%s", err.message);
        return;
    }
    if (!p->env || !p->env->read) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "cannot %s '%s': no file reader was supplied", keyword, name);
        free(name);
        return;
    }
    if (p->depth >= POLICY_MAX_INCLUDE_DEPTH) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "include depth: more than %u nested includes ('%s' not read)",
               POLICY_MAX_INCLUDE_DEPTH, name);
        free(name);
        return;
    }
    char resolved[POLICY_NAME_MAX] = "";
    char *text = NULL;
    size_t len = 0;
    st = p->env->read(p->env->read_ctx, kind, name, s->name, &text, &len, resolved, &err);
    if (st != FVM_OK) {
        REPORT(p, POLICY_DIAG_ERROR, l, start, "cannot %s '%s': %s", keyword, name, err.message);
        free(name);
        return;
    }
    free(name);
    resolved[POLICY_NAME_MAX - 1] = 0;
    for (size_t k = 0; k < p->depth; k++) {
        if (strcmp(p->stack[k], resolved) == 0) {
            char chain[1024] = "";
            for (size_t j = k; j < p->depth; j++) {
                strncat(chain, p->stack[j], sizeof chain - strlen(chain) - 1);
                strncat(chain, " -> ", sizeof chain - strlen(chain) - 1);
            }
            strncat(chain, resolved, sizeof chain - strlen(chain) - 1);
            REPORT(p, POLICY_DIAG_ERROR, l, start, "include cycle: %s", chain);
            free(text);
            return;
        }
    }
    if (was_seen(p, resolved)) { /* include-once: a template shared by two includes is read once */
        free(text);
        return;
    }
    char *owned = own_string(p->pol, resolved, strlen(resolved));
    if (!owned || !reserve((void **)&p->seen, &p->seen_cap, p->seen_count + 1, sizeof *p->seen)) {
        free(text);
        out_of_memory(p);
        return;
    }
    p->seen[p->seen_count++] = owned;
    parse_text(p, owned, text, len);
    free(text);
}

/* ---- lines and files ---- */

static void parse_line(parser *p, source *s, const line_ref *l)
{
    const char *t = l->text;
    size_t bad = first_invalid_utf8(t, l->len);
    if (bad < l->len) {
        REPORT(p, POLICY_DIAG_ERROR, l, bad, "invalid UTF-8 (or a NUL byte): save the policy as UTF-8");
        return;
    }
    size_t start = skip_spaces(t, l->len, 0), end = trim_end(t, l->len);
    if (start >= end || t[start] == '#' || t[start] == ';')
        return;
    if (t[start] == '[') {
        section_header(p, s, l, start, end);
        return;
    }
    size_t word = token_end(t, end, start);
    int include = equals_ci(t + start, word - start, "include");
    if (include || equals_ci(t + start, word - start, "template")) {
        include_file(p, s, l, include ? POLICY_INCLUDE_FILE : POLICY_INCLUDE_TEMPLATE, skip_spaces(t, end, word), end);
        return;
    }
    switch (s->section) {
    case SECTION_NONE:
        REPORT(p, POLICY_DIAG_ERROR, l, start, "a rule outside a section: start one with [file], [key], [object], "
               "[group:NAME] or [vars]");
        break;
    case SECTION_SKIP:
        break;
    case SECTION_VARS:
        var_line(p, l, start, end);
        break;
    case SECTION_GROUP:
        group_line(p, s, l, start, end);
        break;
    case SECTION_RULES:
        rule_line(p, s, l, start, end);
        break;
    }
}

static void parse_text(parser *p, const char *name, const char *text, size_t len)
{
    source s = {name, SECTION_NONE, POLICY_TYPE_FILE, 0};
    if (len >= 2 && (((unsigned char)text[0] == 0xFF && (unsigned char)text[1] == 0xFE) ||
                     ((unsigned char)text[0] == 0xFE && (unsigned char)text[1] == 0xFF))) {
        report_at(p, POLICY_DIAG_ERROR, name, 1, 1, "the file is UTF-16: save it as UTF-8");
        return;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { /* Notepad's byte order mark */
        text += 3;
        len -= 3;
    }
    p->stack[p->depth++] = name;
    uint32_t number = 1;
    for (size_t start = 0; start < len && !p->stopped; number++) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        line_ref l = {name, number, text + start, end - start};
        parse_line(p, &s, &l);
        start = end + 1;
    }
    p->depth--;
}

/* Rules name groups that may be defined later (or in another file). */
static void check_group_references(parser *p)
{
    for (size_t i = 0; i < p->pol->rule_count; i++) {
        const policy_rule *r = &p->pol->rules[i];
        if (r->scope == POLICY_SCOPE_GROUP && !find_group(p->pol, r->scope_name, strlen(r->scope_name)))
            report_at(p, POLICY_DIAG_ERROR, r->file, r->line, r->column, "unknown group '@%s' (define it with "
                      "[group:%s])", r->scope_name, r->scope_name);
    }
    for (size_t i = 0; i < p->pol->group_count; i++)
        if (p->pol->groups[i].program_count == 0)
            report_at(p, POLICY_DIAG_WARNING, p->pol->groups[i].file, p->pol->groups[i].line, 1,
                      "group '%s' has no programs: its rules apply to nothing", p->pol->groups[i].name);
}

static fvm_status load(const char *name, const char *text, size_t len, const policy_env *env, policy **out,
                       fvm_error *err)
{
    *out = NULL;
    parser p;
    memset(&p, 0, sizeof p);
    p.env = env;
    p.max_errors = env && env->max_errors ? env->max_errors : POLICY_DEFAULT_MAX_ERRORS;
    p.pol = calloc(1, sizeof *p.pol);
    p.scratch = malloc(sizeof *p.scratch);
    const char *owned = p.pol ? own_string(p.pol, name, strlen(name)) : NULL;
    if (!p.pol || !p.scratch || !owned ||
        !reserve((void **)&p.seen, &p.seen_cap, 1, sizeof *p.seen)) {
        policy_free(p.pol);
        free(p.scratch);
        free(p.seen);
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory loading %s", name);
    }
    p.seen[p.seen_count++] = owned;
    parse_text(&p, owned, text, len);
    if (!p.stopped)
        check_group_references(&p);
    free(p.scratch);
    free(p.seen);
    free(p.vars);
    if (p.out_of_memory) {
        policy_free(p.pol);
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory loading %s", name);
    }
    if (p.errors) {
        policy_free(p.pol);
        return fvm_error_set(err, FVM_E_PARSE, "%u error%s in %s", p.errors, p.errors == 1 ? "" : "s", name);
    }
    *out = p.pol;
    return FVM_OK;
}

fvm_status policy_load_text(const char *name, const char *text, size_t len, const policy_env *env, policy **out,
                            fvm_error *err)
{
    return load(name ? name : "<policy>", text ? text : "", text ? len : 0, env, out, err);
}

fvm_status policy_load_file(const char *name, const policy_env *env, policy **out, fvm_error *err)
{
    *out = NULL;
    if (!env || !env->read)
        return fvm_error_set(err, FVM_E_INVALID, "cannot read %s: no file reader was supplied", name);
    char resolved[POLICY_NAME_MAX] = "";
    char *text = NULL;
    size_t len = 0;
    fvm_error read_err;
    fvm_status st = env->read(env->read_ctx, POLICY_INCLUDE_TOP, name, NULL, &text, &len, resolved, &read_err);
    if (st != FVM_OK)
        return fvm_error_set(err, st, "cannot read %s: %s", name, read_err.message);
    resolved[POLICY_NAME_MAX - 1] = 0;
    st = load(resolved[0] ? resolved : name, text, len, env, out, err);
    free(text);
    return st;
}

/* ---- names for explain ---------------------------------------------------------------- */

fvm_status policy_canonical_name(policy_type type, const char *text, const policy_env *env, uint16_t *out,
                                 size_t cap, size_t *out_len, fvm_error *err)
{
    if ((unsigned)type >= POLICY_TYPE_COUNT || !text)
        return fvm_error_set(err, FVM_E_INVALID, "bad type or name");
    var_scope scope = {env, NULL, 0};
    char *expanded;
    size_t expanded_len, bad;
    fvm_status st = expand_vars(&scope, text, strlen(text), &expanded, &expanded_len, &bad, err);
    if (st != FVM_OK)
        return st;
    uint16_t *units = malloc((expanded_len + 1) * sizeof *units);
    ntpath *scratch = malloc(sizeof *scratch);
    size_t n = units ? policy_utf8_to_utf16(expanded, expanded_len, units, expanded_len, &bad) : 0;
    free(expanded);
    canonical c;
    if (!units || !scratch)
        st = fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    else if (n == (size_t)-1)
        st = fvm_error_set(err, FVM_E_INVALID, "'%s' is not valid UTF-8", text);
    else
        st = canonicalize(env, type, units, n, scratch, &c, err);
    free(units);
    free(scratch);
    if (st != FVM_OK)
        return st;
    /* HKCR names the merged view: its machine part stands for it. */
    if (c.forms[0].len + 1 > cap) {
        canonical_free(&c);
        return fvm_error_set(err, FVM_E_RANGE, "canonical name needs %lu units", (unsigned long)(c.forms[0].len + 1));
    }
    memcpy(out, c.forms[0].units, c.forms[0].len * sizeof *out);
    out[c.forms[0].len] = 0;
    *out_len = c.forms[0].len;
    canonical_free(&c);
    return FVM_OK;
}

/* ---- an in-memory reader ----------------------------------------------------------------- */

fvm_status policy_memory_read(void *ctx, policy_include_kind kind, const char *name, const char *from, char **text,
                              size_t *len, char resolved[POLICY_NAME_MAX], fvm_error *err)
{
    const policy_memory_files *files = ctx;
    char wanted[POLICY_NAME_MAX];
    if (kind == POLICY_INCLUDE_TEMPLATE && strcmp(name, "default") == 0)
        snprintf(wanted, sizeof wanted, "default.ini");
    else if (kind == POLICY_INCLUDE_TEMPLATE)
        snprintf(wanted, sizeof wanted, "templates/%s.ini", name);
    else
        snprintf(wanted, sizeof wanted, "%s", name);
    for (size_t i = 0; files && i < files->count; i++) {
        if (strcmp(files->files[i].name, wanted) != 0)
            continue;
        size_t n = strlen(files->files[i].text);
        char *copy = malloc(n + 1);
        if (!copy)
            return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        memcpy(copy, files->files[i].text, n + 1);
        *text = copy;
        *len = n;
        snprintf(resolved, POLICY_NAME_MAX, "%s", wanted);
        return FVM_OK;
    }
    return fvm_error_set(err, FVM_E_NOTFOUND, "no such file '%s'", wanted);
}

#else
typedef int policy_parse_not_in_runtime;
#endif

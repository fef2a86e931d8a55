/* syncpolicy.c - parsing and deciding the [sync] section (syncpolicy.h).
 *
 * The parser walks the text line by line, keeps only the lines under a
 * [sync] header and turns each into a rule; any problem is reported with
 * file:line:column and the line skipped, so one run shows every mistake.
 * Matching is a dynamic programme over the pattern's tokens with one row of
 * path positions (O(pattern x path) time, O(path) memory): no backtracking,
 * so no pattern can make it exponential (the parser is fuzzed with that in
 * mind). */
#include "core/syncpolicy.h"

#ifndef FVM_RUNTIME

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_PATTERN_MAX 4096u

const char *sync_action_name(sync_action a)
{
    switch (a) {
    case SYNC_COMMIT:
        return "commit";
    case SYNC_ASK:
        return "ask";
    default:
        return "deny";
    }
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int word_is(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i]; i++)
        if (lower(s[i]) != word[i])
            return 0;
    return i == n && !word[i];
}

/* ---- canonical paths ----------------------------------------------------- */

static const struct {
    const char *abbrev, *full;
} registry_roots[] = {
    {"hklm", "HKEY_LOCAL_MACHINE"},
    {"hkcu", "HKEY_CURRENT_USER"},
    {"hku", "HKEY_USERS"},
    {"hkcr", "HKEY_CLASSES_ROOT"},
};

size_t sync_canonical_path(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    size_t first = 0;
    while (first < len && in[first] != '\\' && in[first] != '/')
        first++;
    for (size_t r = 0; r < sizeof registry_roots / sizeof registry_roots[0]; r++) {
        if (word_is(in, first, registry_roots[r].abbrev)) {
            size_t n = strlen(registry_roots[r].full);
            if (n >= cap)
                return (size_t)-1;
            memcpy(out, registry_roots[r].full, n);
            o = n;
            i = first;
            break;
        }
    }
    for (; i < len; i++) {
        if (o + 1 >= cap)
            return (size_t)-1;
        out[o++] = in[i] == '/' ? '\\' : in[i];
    }
    /* No trailing separator, except a drive root ("C:\"). */
    while (o > 0 && out[o - 1] == '\\' && !(o == 3 && out[1] == ':'))
        o--;
    out[o] = 0;
    return o;
}

/* ---- matching ------------------------------------------------------------ */

static int same_char(char a, char b)
{
    return lower(a) == lower(b);
}

static int match_dp(const char *pat, size_t plen, const char *path, size_t n)
{
    unsigned char *cur = calloc(n + 1, 1), *next = calloc(n + 1, 1);
    int result = 0;
    if (!cur || !next)
        goto out;
    cur[0] = 1;
    size_t j = 0;
    while (j < plen) {
        memset(next, 0, n + 1);
        int any = 0;
        if (pat[j] == '*' && j + 1 < plen && pat[j + 1] == '*') {
            j += 2;
            if (j < plen && pat[j] == '\\') {
                /* "**\": nothing, or anything that ends with '\' */
                j++;
                int seen = 0;
                for (size_t i = 0; i <= n; i++) {
                    next[i] = cur[i] || (i > 0 && path[i - 1] == '\\' && seen);
                    if (i < n && cur[i])
                        seen = 1;
                    any |= next[i];
                }
            } else {
                for (size_t i = 0; i <= n; i++) {
                    next[i] = cur[i] || (i > 0 && next[i - 1]);
                    any |= next[i];
                }
            }
        } else if (pat[j] == '*') {
            j++;
            for (size_t i = 0; i <= n; i++) {
                next[i] = cur[i] || (i > 0 && next[i - 1] && path[i - 1] != '\\');
                any |= next[i];
            }
        } else {
            char c = pat[j++];
            for (size_t i = 0; i < n; i++) {
                if (cur[i] && (c == '?' ? path[i] != '\\' : same_char(path[i], c))) {
                    next[i + 1] = 1;
                    any = 1;
                }
            }
        }
        unsigned char *t = cur;
        cur = next;
        next = t;
        if (!any)
            goto out;
    }
    result = cur[n];
out:
    free(cur);
    free(next);
    return result;
}

int sync_pattern_match(const char *pattern, size_t plen, const char *path, size_t len)
{
    if (match_dp(pattern, plen, path, len))
        return 1;
    /* "X\**" also matches X itself. */
    return plen >= 3 && !memcmp(pattern + plen - 3, "\\**", 3) && match_dp(pattern, plen - 3, path, len);
}

sync_action sync_policy_decide(const sync_policy *p, const char *path, size_t len, const sync_rule **rule)
{
    char canon[SYNC_PATTERN_MAX * 8];
    size_t n = sync_canonical_path(path, len, canon, sizeof canon);
    if (rule)
        *rule = NULL;
    if (!p || n == (size_t)-1)
        return SYNC_DENY;
    for (size_t i = p->count; i-- > 0;) {
        if (sync_pattern_match(p->rules[i].pattern, strlen(p->rules[i].pattern), canon, n)) {
            if (rule)
                *rule = &p->rules[i];
            return p->rules[i].action;
        }
    }
    return SYNC_DENY;
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct parser {
    const char *file;
    sync_diag_fn diag;
    void *diag_ctx;
    sync_var_fn vars;
    void *vars_ctx;
    unsigned errors;
    char first[200];    /* the first problem; zero-filled, so always terminated */
    sync_policy *out;
    size_t cap;
    int nomem;
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void report(parser *p, unsigned line, size_t column, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p->errors++) {
        int at = snprintf(p->first, sizeof p->first, "%s:%u:%u: ", p->file, line, (unsigned)column + 1);
        if (at > 0 && (size_t)at < sizeof p->first)
            memcpy(p->first + at, msg, strnlen(msg, sizeof p->first - (size_t)at - 1));
    }
    if (p->diag)
        p->diag(p->diag_ctx, p->file, line, (unsigned)column + 1, msg);
}

/* Expands %NAME% into out; 0 and a report when a variable is unknown. */
static int expand(parser *p, unsigned line, size_t col0, const char *s, size_t n, char *out, size_t cap,
                  size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            size_t close = i + 1;
            while (close < n && s[close] != '%')
                close++;
            if (close == n || close == i + 1) {
                report(p, line, col0 + i, "a '%%' without its closing '%%' (write %%NAME%%)");
                return 0;
            }
            const char *value = p->vars ? p->vars(p->vars_ctx, s + i + 1, close - i - 1) : NULL;
            if (!value) {
                report(p, line, col0 + i, "unknown variable %%%.*s%%", (int)(close - i - 1), s + i + 1);
                return 0;
            }
            size_t vl = strlen(value);
            if (o + vl >= cap) {
                report(p, line, col0 + i, "pattern too long (the limit is %u bytes)", SYNC_PATTERN_MAX);
                return 0;
            }
            memcpy(out + o, value, vl);
            o += vl;
            i = close;
            continue;
        }
        if (o + 1 >= cap) {
            report(p, line, col0 + i, "pattern too long (the limit is %u bytes)", SYNC_PATTERN_MAX);
            return 0;
        }
        out[o++] = s[i];
    }
    out[o] = 0;
    *out_len = o;
    return 1;
}

static void rule_line(parser *p, unsigned line, const char *t, size_t start, size_t end)
{
    size_t w = start;
    while (w < end && !is_space(t[w]))
        w++;
    sync_action action;
    if (word_is(t + start, w - start, "commit"))
        action = SYNC_COMMIT;
    else if (word_is(t + start, w - start, "ask"))
        action = SYNC_ASK;
    else if (word_is(t + start, w - start, "deny") || word_is(t + start, w - start, "never"))
        action = SYNC_DENY;
    else {
        report(p, line, start, "unknown [sync] action '%.*s' (expected commit, ask or deny)", (int)(w - start),
               t + start);
        return;
    }
    size_t a = w;
    while (a < end && is_space(t[a]))
        a++;
    if (a == end) {
        report(p, line, w, "'%s' needs a path pattern", sync_action_name(action));
        return;
    }
    size_t b = end;
    while (b > a && is_space(t[b - 1]))
        b--;
    /* A quoted pattern may hold spaces; the quotes are not part of it. */
    if (t[a] == '"') {
        if (b - a < 2 || t[b - 1] != '"') {
            report(p, line, a, "a quoted pattern without its closing '\"'");
            return;
        }
        a++;
        b--;
    }
    for (size_t i = a; i < b; i++) {
        if ((unsigned char)t[i] < 0x20) {
            report(p, line, i, "control character in a pattern");
            return;
        }
    }
    char expanded[SYNC_PATTERN_MAX], canon[SYNC_PATTERN_MAX + 32];
    size_t elen;
    if (!expand(p, line, a, t + a, b - a, expanded, sizeof expanded, &elen))
        return;
    size_t clen = sync_canonical_path(expanded, elen, canon, sizeof canon);
    if (clen == (size_t)-1 || clen == 0) {
        report(p, line, a, clen ? "pattern too long" : "empty pattern");
        return;
    }
    int drive = clen >= 2 && canon[1] == ':';
    int unc = clen >= 2 && canon[0] == '\\' && canon[1] == '\\';
    int registry = !strncmp(canon, "HKEY_", 5);
    int anywhere = canon[0] == '*';
    if (!drive && !unc && !registry && !anywhere) {
        report(p, line, a, "'%.*s' is not a full path: write C:\\dir\\..., \\\\server\\share\\..., or a registry "
               "key HKLM\\... / HKCU\\...", (int)(b - a), t + a);
        return;
    }
    if (p->out->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        sync_rule *grown = realloc(p->out->rules, cap * sizeof *grown);
        if (!grown) {
            p->nomem = 1;
            return;
        }
        p->out->rules = grown;
        p->cap = cap;
    }
    char *copy = malloc(clen + 1);
    if (!copy) {
        p->nomem = 1;
        return;
    }
    memcpy(copy, canon, clen + 1);
    sync_rule *r = &p->out->rules[p->out->count++];
    r->action = action;
    r->pattern = copy;
    r->file = p->out->file;
    r->line = line;
}

fvm_status sync_policy_parse(const char *file, const char *text, size_t len, sync_var_fn vars, void *vars_ctx,
                             sync_diag_fn diag, void *diag_ctx, sync_policy *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    size_t flen = strlen(file);
    out->file = malloc(flen + 1);
    if (!out->file)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    memcpy(out->file, file, flen + 1);
    parser p = {file, diag, diag_ctx, vars, vars_ctx, 0, {0}, out, 0, 0};
    int in_sync = 0;
    unsigned line = 0;
    size_t pos = 0;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        pos = 3;   /* a UTF-8 byte-order mark */
    while (pos < len && !p.nomem) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line++;
        const char *t = text + pos;
        size_t n = end - pos;
        size_t a = 0;
        while (a < n && is_space(t[a]))
            a++;
        size_t b = n;
        while (b > a && is_space(t[b - 1]))
            b--;
        if (memchr(t, 0, n)) {
            if (in_sync)
                report(&p, line, 0, "NUL character in the policy");
        } else if (a == b || t[a] == '#' || t[a] == ';') {
            /* blank or comment */
        } else if (t[a] == '[') {
            size_t c = b;
            if (t[b - 1] != ']') {
                in_sync = 0;   /* the main parser reports it */
            } else {
                size_t s = a + 1;
                while (s < c - 1 && is_space(t[s]))
                    s++;
                size_t e = c - 1;
                while (e > s && is_space(t[e - 1]))
                    e--;
                in_sync = word_is(t + s, e - s, "sync");
            }
        } else if (in_sync) {
            rule_line(&p, line, t, a, b);
        }
        pos = end + 1;
    }
    if (p.nomem) {
        sync_policy_free(out);
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    }
    if (p.errors) {
        fvm_error_set(err, FVM_E_PARSE, "%s (%u error%s in [sync])", p.first, p.errors, p.errors == 1 ? "" : "s");
        sync_policy_free(out);
        return FVM_E_PARSE;
    }
    return FVM_OK;
}

void sync_policy_free(sync_policy *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->rules[i].pattern);
    free(p->rules);
    free(p->file);
    memset(p, 0, sizeof *p);
}

#endif /* FVM_RUNTIME */

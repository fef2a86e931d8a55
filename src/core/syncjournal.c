/* syncjournal.c - the commit journal's text form (syncjournal.h).
 *
 * Writing is plain concatenation; parsing is strict: a journal either reads
 * back exactly as written (plus its "done" lines) or is refused with the
 * line that is wrong, so a damaged journal never drives a half-understood
 * commit. */
#include "core/syncjournal.h"

#ifndef FVM_RUNTIME

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sync_step_kind_valid(int kind, int *needs_path2)
{
    int two = 0;
    switch (kind) {
    case SYNC_STEP_LAND_AS:
    case SYNC_STEP_REG_VALUE:
    case SYNC_STEP_REG_DELVALUE:
    case SYNC_STEP_REG_DROP:
        two = 1;
        break;
    case SYNC_STEP_LAND:
    case SYNC_STEP_DROP:
    case SYNC_STEP_MKDIR:
    case SYNC_STEP_DELETE:
    case SYNC_STEP_RMDIR:
    case SYNC_STEP_REG_KEY:
    case SYNC_STEP_REG_DELKEY:
    case SYNC_STEP_REG_SAVE:
        break;
    default:
        return 0;
    }
    if (needs_path2)
        *needs_path2 = two;
    return 1;
}

static int text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

static char *copy_n(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

static fvm_status add_n(sync_journal *j, int kind, const char *path, size_t plen, const char *path2, size_t p2len,
                        fvm_error *err)
{
    int two;
    if (!sync_step_kind_valid(kind, &two))
        return fvm_error_set(err, FVM_E_INVALID, "unknown step kind '%c'", kind > 0x20 && kind < 0x7f ? kind : '?');
    if (two != (path2 != NULL))
        return fvm_error_set(err, FVM_E_INVALID, "step '%c' %s a second path", kind, two ? "needs" : "has no");
    /* An empty value name (a key's default value) is a valid second path. */
    if (plen == 0 || !text_ok(path, plen) || (path2 && !text_ok(path2, p2len)))
        return fvm_error_set(err, FVM_E_INVALID, "a path of step '%c' is empty or has a control character", kind);
    if (j->count == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 16;
        sync_step *grown = realloc(j->steps, cap * sizeof *grown);
        if (!grown)
            return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        j->steps = grown;
        j->cap = cap;
    }
    sync_step *s = &j->steps[j->count];
    s->kind = (sync_step_kind)kind;
    s->done = 0;
    s->path = copy_n(path, plen);
    s->path2 = path2 ? copy_n(path2, p2len) : NULL;
    if (!s->path || (path2 && !s->path2)) {
        free(s->path);
        free(s->path2);
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    }
    j->count++;
    return FVM_OK;
}

fvm_status sync_journal_add(sync_journal *j, sync_step_kind kind, const char *path, const char *path2,
                            fvm_error *err)
{
    return add_n(j, (int)kind, path, path ? strlen(path) : 0, path2, path2 ? strlen(path2) : 0, err);
}

fvm_status sync_journal_format(const sync_journal *j, char **text, size_t *len, fvm_error *err)
{
    size_t need = sizeof SYNCJOURNAL_MAGIC + 32;
    for (size_t i = 0; i < j->count; i++)
        need += 12 + strlen(j->steps[i].path) + (j->steps[i].path2 ? strlen(j->steps[i].path2) + 1 : 0);
    char *out = malloc(need);
    if (!out)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    size_t at = (size_t)snprintf(out, need, "%s\n", SYNCJOURNAL_MAGIC);
    for (size_t i = 0; i < j->count; i++) {
        const sync_step *s = &j->steps[i];
        at += (size_t)snprintf(out + at, need - at, "step\t%c\t%s%s%s\n", (char)s->kind, s->path,
                               s->path2 ? "\t" : "", s->path2 ? s->path2 : "");
    }
    at += (size_t)snprintf(out + at, need - at, "end %lu\n", (unsigned long)j->count);
    *text = out;
    *len = at;
    return FVM_OK;
}

/* A decimal number filling s[0..n) exactly. */
static int parse_count(const char *s, size_t n, size_t *out)
{
    size_t v = 0;
    if (n == 0 || n > 9)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 1;
}

fvm_status sync_journal_parse(const char *text, size_t len, sync_journal *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    size_t pos = 0, line = 0;
    int ended = 0;
    fvm_status st = FVM_OK;
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        if (end == len)
            break;   /* a last line cut short by a crash: never acknowledged */
        line++;
        const char *t = text + pos;
        size_t n = end - pos;
        pos = end + 1;
        if (line == 1) {
            if (n != strlen(SYNCJOURNAL_MAGIC) || memcmp(t, SYNCJOURNAL_MAGIC, n)) {
                st = fvm_error_set(err, FVM_E_INVALID, "commit journal line 1: not a journal of this version "
                                   "(expected '%s')", SYNCJOURNAL_MAGIC);
                goto fail;
            }
            continue;
        }
        if (!ended && n >= 8 && !memcmp(t, "step\t", 5) && t[6] == '\t') {
            const char *p = t + 7, *stop = t + n;
            const char *tab = memchr(p, '\t', (size_t)(stop - p));
            fvm_error e;
            st = add_n(out, (unsigned char)t[5], p, (size_t)((tab ? tab : stop) - p), tab ? tab + 1 : NULL,
                       tab ? (size_t)(stop - tab - 1) : 0, &e);
            if (st != FVM_OK) {
                fvm_error_set(err, st, "commit journal line %lu: %s", (unsigned long)line, e.message);
                goto fail;
            }
            continue;
        }
        size_t v;
        if (!ended && n > 4 && !memcmp(t, "end ", 4) && parse_count(t + 4, n - 4, &v)) {
            if (v != out->count) {
                st = fvm_error_set(err, FVM_E_INVALID, "commit journal line %lu: end says %lu steps, %lu listed",
                                   (unsigned long)line, (unsigned long)v, (unsigned long)out->count);
                goto fail;
            }
            ended = 1;
            continue;
        }
        if (ended && n > 5 && !memcmp(t, "done ", 5) && parse_count(t + 5, n - 5, &v) && v < out->count) {
            if (!out->steps[v].done) {
                out->steps[v].done = 1;
                out->done_count++;
            }
            continue;
        }
        st = fvm_error_set(err, FVM_E_INVALID, "commit journal line %lu: unexpected '%.*s'", (unsigned long)line,
                           (int)(n > 40 ? 40 : n), t);
        goto fail;
    }
    if (!ended) {
        st = fvm_error_set(err, FVM_E_INVALID, "commit journal: incomplete plan (no 'end' line)");
        goto fail;
    }
    return FVM_OK;
fail:
    sync_journal_free(out);
    return st;
}

void sync_journal_free(sync_journal *j)
{
    for (size_t i = 0; i < j->count; i++) {
        free(j->steps[i].path);
        free(j->steps[i].path2);
    }
    free(j->steps);
    memset(j, 0, sizeof *j);
}

#endif /* FVM_RUNTIME */

/* merge3.c - line-based three-way merge (merge3.h). */
#include "core/merge3.h"

#ifndef FVM_RUNTIME

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct line {
    const char *p;
    size_t n;            /* with its '\n', if any */
    uint64_t h;
} line;

typedef struct lines {
    line *v;
    size_t count;
} lines;

static fvm_status split(const char *s, size_t len, lines *out, fvm_error *err)
{
    out->v = NULL;
    out->count = 0;
    if (memchr(s, 0, len))
        return fvm_error_set(err, FVM_E_UNSUPPORTED, "not a text file (it has NUL bytes)");
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    out->v = malloc((n + 1) * sizeof *out->v);
    if (!out->v)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len ? i > start : s[i] == '\n') {
            size_t end = i == len ? i : i + 1;
            uint64_t h = 1469598103934665603ull;
            for (size_t k = start; k < end; k++)
                h = (h ^ (unsigned char)s[k]) * 1099511628211ull;
            out->v[out->count++] = (line){s + start, end - start, h};
            start = end;
        }
    }
    return FVM_OK;
}

static int same(const line *a, const line *b)
{
    return a->h == b->h && a->n == b->n && !memcmp(a->p, b->p, a->n);
}

/* match[i] = index in b of base line i kept by the LCS, or -1. */
static fvm_status lcs(const lines *base, const lines *b, long *match, fvm_error *err)
{
    size_t n = base->count, m = b->count, pre = 0, suf = 0;
    for (size_t i = 0; i < n; i++)
        match[i] = -1;
    while (pre < n && pre < m && same(&base->v[pre], &b->v[pre])) {
        match[pre] = (long)pre;
        pre++;
    }
    while (suf < n - pre && suf < m - pre && same(&base->v[n - 1 - suf], &b->v[m - 1 - suf])) {
        match[n - 1 - suf] = (long)(m - 1 - suf);
        suf++;
    }
    size_t rn = n - pre - suf, rm = m - pre - suf;
    if (rn == 0 || rm == 0)
        return FVM_OK;
    if ((rn + 1) > MERGE3_MAX_CELLS / (rm + 1))
        return fvm_error_set(err, FVM_E_RANGE, "the versions differ in too many lines to merge");
    uint32_t *t = calloc((rn + 1) * (rm + 1), sizeof *t);
    if (!t)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
#define T(i, j) t[(i) * (rm + 1) + (j)]
    for (size_t i = rn; i-- > 0;)
        for (size_t j = rm; j-- > 0;)
            T(i, j) = same(&base->v[pre + i], &b->v[pre + j]) ? T(i + 1, j + 1) + 1
                      : T(i + 1, j) > T(i, j + 1)             ? T(i + 1, j)
                                                              : T(i, j + 1);
    for (size_t i = 0, j = 0; i < rn && j < rm;) {
        if (same(&base->v[pre + i], &b->v[pre + j])) {
            match[pre + i] = (long)(pre + j);
            i++;
            j++;
        } else if (T(i + 1, j) >= T(i, j + 1)) {
            i++;
        } else {
            j++;
        }
    }
#undef T
    free(t);
    return FVM_OK;
}

typedef struct out_buf {
    char *p;
    size_t len, cap;
    int failed;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *g = realloc(o->p, cap);
        if (!g) {
            o->failed = 1;
            return;
        }
        o->p = g;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

static void put_lines(out_buf *o, const lines *l, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        put(o, l->v[i].p, l->v[i].n);
}

static int chunks_equal(const lines *a, size_t a0, size_t a1, const lines *b, size_t b0, size_t b1)
{
    if (a1 - a0 != b1 - b0)
        return 0;
    for (size_t i = 0; i < a1 - a0; i++)
        if (!same(&a->v[a0 + i], &b->v[b0 + i]))
            return 0;
    return 1;
}

/* A conflict marker line; a chunk that ends without '\n' gets one first. */
static void marker(out_buf *o, const char *mark, const char *label)
{
    if (o->len && o->p[o->len - 1] != '\n')
        put(o, "\n", 1);
    put(o, mark, strlen(mark));
    if (label) {
        put(o, " ", 1);
        put(o, label, strlen(label));
    }
    put(o, "\n", 1);
}

fvm_status merge3(const char *base, size_t base_len, const char *ours, size_t ours_len, const char *theirs,
                  size_t theirs_len, const char *ours_label, const char *theirs_label, merge3_result *out,
                  fvm_error *err)
{
    memset(out, 0, sizeof *out);
    lines b = {0}, a = {0}, t = {0};
    long *ma = NULL, *mt = NULL;
    out_buf o = {0};
    fvm_status st;
    if ((st = split(base, base_len, &b, err)) != FVM_OK || (st = split(ours, ours_len, &a, err)) != FVM_OK ||
        (st = split(theirs, theirs_len, &t, err)) != FVM_OK)
        goto done;
    ma = malloc((b.count + 1) * sizeof *ma);
    mt = malloc((b.count + 1) * sizeof *mt);
    if (!ma || !mt) {
        st = fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        goto done;
    }
    if ((st = lcs(&b, &a, ma, err)) != FVM_OK || (st = lcs(&b, &t, mt, err)) != FVM_OK)
        goto done;
    put(&o, "", 0);
    size_t i = 0, j = 0, k = 0;
    for (;;) {
        size_t s = i;
        while (s < b.count && !(ma[s] >= (long)j && mt[s] >= (long)k))
            s++;
        size_t a_end = s < b.count ? (size_t)ma[s] : a.count, t_end = s < b.count ? (size_t)mt[s] : t.count;
        if (s > i || a_end > j || t_end > k) {
            int a_same = chunks_equal(&a, j, a_end, &b, i, s), t_same = chunks_equal(&t, k, t_end, &b, i, s);
            if (a_same)
                put_lines(&o, &t, k, t_end);
            else if (t_same || chunks_equal(&a, j, a_end, &t, k, t_end))
                put_lines(&o, &a, j, a_end);
            else {
                out->conflicts++;
                marker(&o, "<<<<<<<", ours_label);
                put_lines(&o, &a, j, a_end);
                marker(&o, "=======", NULL);
                put_lines(&o, &t, k, t_end);
                marker(&o, ">>>>>>>", theirs_label);
            }
        }
        if (s >= b.count)
            break;
        put_lines(&o, &b, s, s + 1);
        i = s + 1;
        j = a_end + 1;
        k = t_end + 1;
    }
    if (o.failed) {
        st = fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        goto done;
    }
    out->text = o.p;
    out->len = o.len;
    o.p = NULL;
done:
    free(o.p);
    free(b.v);
    free(a.v);
    free(t.v);
    free(ma);
    free(mt);
    return st;
}

void merge3_free(merge3_result *r)
{
    free(r->text);
    memset(r, 0, sizeof *r);
}

#endif /* FVM_RUNTIME */

/* regdiff.c - the registry part of `fvm diff`: the box's changes to host
 * keys and values, as lines after the file changes.
 *
 * The truth is the box's registry delta - the live tree HKU\FVM.<h> while
 * the box runs (or after its broker died), else <box>\registry.dat, read
 * the same way through its text form (common/regstore.h) - and the key
 * states in the box index (\REGISTRY\... keys: COPIED, OPAQUE, CREATED,
 * TOMBSTONE). Each box key is compared with the host key it mirrors, in one
 * of three modes inherited down the tree:
 *  - added: the host has no such key (or the index says CREATED): the key
 *    and every value in it are A;
 *  - merged: the box key lies over the host key: a box value the host lacks
 *    is A, one that differs is C, a tombstone over a host value is D;
 *  - opaque: the box key replaces the host key (OPAQUE, or below one): as
 *    merged, and every host value and subkey the box lacks is D.
 * TOMBSTONE keys of the index are D (outermost only, when the host has the
 * key). Placeholder keys (no value of their own changed) print nothing. */
#include "cli/cli.h"

#include <sddl.h>
#include <stdlib.h>
#include <string.h>

#include "common/regstore.h"
#include "core/boxindex.h"
#include "core/ntpath.h"

/* ---- the box's tree, read from its text --------------------------------- */

typedef struct rvalue {
    wchar_t *name;
    size_t len;
    uint32_t type;
    uint8_t *data;
    size_t size;
} rvalue;

typedef struct rkey {
    wchar_t *path;        /* below the tree root: MACHINE\SOFTWARE\X */
    size_t len;
    rvalue *values;
    size_t count, cap;
} rkey;

typedef struct rtree {
    rkey *keys;
    size_t count, cap;
} rtree;

static void *dup_mem(const void *p, size_t n)
{
    void *copy = malloc(n ? n : 1);
    if (copy && n)
        memcpy(copy, p, n);
    return copy;
}

static fvm_status tree_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    rtree *t = ctx;
    if (t->count == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        rkey *grown = realloc(t->keys, cap * sizeof *grown);
        if (!grown)
            return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        t->keys = grown;
        t->cap = cap;
    }
    rkey *k = &t->keys[t->count];
    memset(k, 0, sizeof *k);
    if (!(k->path = dup_mem(path, len * sizeof(wchar_t))))
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    k->len = len;
    t->count++;
    return FVM_OK;
}

static fvm_status tree_value(void *ctx, const uint16_t *name, size_t len, uint32_t type, const uint8_t *data,
                             size_t size, fvm_error *err)
{
    rtree *t = ctx;
    rkey *k = &t->keys[t->count - 1];
    if (k->count == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 8;
        rvalue *grown = realloc(k->values, cap * sizeof *grown);
        if (!grown)
            return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        k->values = grown;
        k->cap = cap;
    }
    rvalue *v = &k->values[k->count];
    v->name = dup_mem(name, len * sizeof(wchar_t));
    v->data = dup_mem(data, size);
    if (!v->name || !v->data)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    v->len = len;
    v->type = type;
    v->size = size;
    k->count++;
    return FVM_OK;
}

static void tree_free(rtree *t)
{
    for (size_t i = 0; i < t->count; i++) {
        for (size_t j = 0; j < t->keys[i].count; j++) {
            free(t->keys[i].values[j].name);
            free(t->keys[i].values[j].data);
        }
        free(t->keys[i].values);
        free(t->keys[i].path);
    }
    free(t->keys);
}

/* Paths in tree order: case-insensitive, '\' before any other unit, so a
 * key comes right before its subkeys. */
static int compare_paths(const wchar_t *a, size_t an, const wchar_t *b, size_t bn)
{
    for (size_t i = 0; i < an && i < bn; i++) {
        unsigned x = a[i] == L'\\' ? 0 : ntpath_upcase(NULL, a[i]) + 1u;
        unsigned y = b[i] == L'\\' ? 0 : ntpath_upcase(NULL, b[i]) + 1u;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return an < bn ? -1 : an > bn;
}

static int compare_keys(const void *a, const void *b)
{
    const rkey *x = a, *y = b;
    return compare_paths(x->path, x->len, y->path, y->len);
}

/* The box's registry text: the live tree when there is one, else the file.
 * 0 with *text NULL when the box has no registry delta. */
static int read_box_registry(const box *b, char **text, size_t *len, BOOL file_only)
{
    HANDLE tree;
    fvm_error err;
    *text = NULL;
    *len = 0;
    if (!file_only && regstore_open_tree(b->path, KEY_READ, &tree) >= 0) {
        regfile_buf buf = {0};
        fvm_status st = regstore_dump(tree, &buf, NULL, &err);
        CloseHandle(tree);
        if (st != FVM_OK)
            return cli_error("cannot read the registry tree of box '%s': %s", b->name, err.message);
        *text = buf.data;
        *len = buf.len;
        return 0;
    }
    wchar_t file[FVM_PATH_MAX];
    regstore_file_path(b->path, file, FVM_PATH_MAX);
    fvm_status st = regstore_read_file(file, text, len, &err);
    if (st == FVM_E_NOTFOUND)
        return 0;
    if (st != FVM_OK)
        return cli_error("cannot read registry.dat of box '%s': %s", b->name, err.message);
    return 0;
}

/* ---- output lines -------------------------------------------------------- */

typedef regdiff_change rline;   /* cli.h: what commit reads too */

typedef struct rlines {
    rline *items;
    size_t count, cap;
} rlines;

/* A growing wide string. */
typedef struct wstr {
    wchar_t *s;
    size_t len, cap;
} wstr;

static void ws_add(wstr *w, const wchar_t *s, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        size_t cap = (w->len + n + 1) * 2;
        wchar_t *grown = realloc(w->s, cap * sizeof(wchar_t));
        if (!grown)
            return;   /* keeps what fits; the line is only printed */
        w->s = grown;
        w->cap = cap;
    }
    memcpy(w->s + w->len, s, n * sizeof(wchar_t));
    w->len += n;
    w->s[w->len] = 0;
}

static void ws_addz(wstr *w, const wchar_t *s)
{
    ws_add(w, s, wcslen(s));
}

/* Names as text on one line: control characters (NUL too) as \uXXXX, and
 * in a value name '"' and '\' escaped. */
static void ws_add_name(wstr *w, const wchar_t *s, size_t n, BOOL quoted)
{
    for (size_t i = 0; i < n; i++) {
        wchar_t esc[8];
        if (s[i] < 0x20 || s[i] == 0x7F) {
            _snwprintf(esc, 8, L"\\u%04x", (unsigned)s[i]);
            ws_add(w, esc, 6);
        } else if (quoted && (s[i] == L'"' || s[i] == L'\\')) {
            esc[0] = L'\\';
            esc[1] = s[i];
            ws_add(w, esc, 2);
        } else {
            ws_add(w, s + i, 1);
        }
    }
}

typedef struct ctx ctx;
static void add_line_data(ctx *c, char kind, const wchar_t *path, size_t len, const wchar_t *value,
                          size_t value_len, const rvalue *data);

struct ctx {
    const box *b;
    const boxindex *idx;         /* NULL: no index (yet) */
    wchar_t user_sid[192];       /* the current user's SID, S-1-5-... */
    rtree tree;
    rlines lines;
};

/* The host name of a key path below the tree root, as the user knows it:
 * MACHINE\X -> HKEY_LOCAL_MACHINE\X, USER\<current SID>\X ->
 * HKEY_CURRENT_USER\X, USER\S\X -> HKEY_USERS\S\X. */
static void display_key(const ctx *c, wstr *w, const wchar_t *path, size_t len)
{
    size_t first = 0;
    while (first < len && path[first] != L'\\')
        first++;
    const wchar_t *rest = path + first;
    size_t rest_len = len - first;
    if (first == 7 && !_wcsnicmp(path, L"MACHINE", 7)) {
        ws_addz(w, L"HKEY_LOCAL_MACHINE");
    } else if (first == 4 && !_wcsnicmp(path, L"USER", 4)) {
        size_t sid_len = 0;
        while (sid_len + 1 < rest_len && rest[1 + sid_len] != L'\\')
            sid_len++;
        size_t mine = wcslen(c->user_sid);
        if (rest_len > 1 && sid_len == mine && mine && !_wcsnicmp(rest + 1, c->user_sid, mine)) {
            ws_addz(w, L"HKEY_CURRENT_USER");
            rest += 1 + sid_len;
            rest_len -= 1 + sid_len;
        } else {
            ws_addz(w, L"HKEY_USERS");
        }
    } else {
        ws_addz(w, L"\\REGISTRY\\");
        ws_add_name(w, path, first, FALSE);
    }
    ws_add_name(w, rest, rest_len, FALSE);
    ws_add(w, L"\\", 1);
}

static void add_line(ctx *c, char kind, const wchar_t *path, size_t len, const wchar_t *value, size_t value_len)
{
    add_line_data(c, kind, path, len, value, value_len, NULL);
}

static void add_line_data(ctx *c, char kind, const wchar_t *path, size_t len, const wchar_t *value,
                          size_t value_len, const rvalue *data)
{
    wstr w = {0};
    display_key(c, &w, path, len);
    if (value) {
        ws_addz(&w, L" value \"");
        ws_add_name(&w, value, value_len, TRUE);
        ws_add(&w, L"\"", 1);
    }
    if (!w.s)
        return;
    if (c->lines.count == c->lines.cap) {
        size_t cap = c->lines.cap ? c->lines.cap * 2 : 64;
        rline *grown = realloc(c->lines.items, cap * sizeof *grown);
        if (!grown) {
            free(w.s);
            return;
        }
        c->lines.items = grown;
        c->lines.cap = cap;
    }
    rline *l = &c->lines.items[c->lines.count];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->text = w.s;
    /* The raw names and the box's data, for commit. */
    l->key = dup_mem(path, len * sizeof(wchar_t));
    l->key_len = len;
    l->is_value = value != NULL;
    if (value) {
        l->value = dup_mem(value, value_len * sizeof(wchar_t));
        l->value_len = value_len;
    }
    if (data) {
        l->type = data->type;
        l->data = dup_mem(data->data, data->size);
        l->size = data->size;
    }
    c->lines.count++;
}

static int compare_lines(const void *a, const void *b)
{
    return _wcsicmp(((const rline *)a)->text, ((const rline *)b)->text);
}

/* ---- host and index ------------------------------------------------------ */

/* Opens the host key that a tree path mirrors (\REGISTRY\<path>). */
static HANDLE open_host(const wchar_t *path, size_t len)
{
    wstr w = {0};
    HANDLE key = NULL;
    ws_addz(&w, L"\\REGISTRY\\");
    ws_add(&w, path, len);
    if (w.s && regstore_open_key(NULL, w.s, w.len, KEY_READ, &key) < 0)
        key = NULL;
    free(w.s);
    return key;
}

/* The index state of the key a tree path mirrors. */
static boxindex_state index_state(const ctx *c, const wchar_t *path, size_t len, uint32_t *flags)
{
    *flags = 0;
    if (!c->idx || len + 10 > BOXINDEX_MAX_KEY_UNITS)
        return BOXINDEX_ABSENT;
    uint16_t *key = malloc((len + 10) * sizeof *key);
    if (!key)
        return BOXINDEX_ABSENT;
    static const char root[] = "\\REGISTRY\\";
    for (size_t i = 0; i < 10; i++)
        key[i] = (uint16_t)root[i];
    for (size_t i = 0; i < len; i++)
        key[10 + i] = ntpath_upcase(NULL, path[i]);
    boxindex_entry e;
    boxindex_state st = boxindex_lookup(c->idx, boxindex_key_hash(key, len + 10), key, len + 10, &e);
    if (st != BOXINDEX_ABSENT)
        *flags = e.flags;
    free(key);
    return st;
}

/* ---- the comparison ------------------------------------------------------ */

typedef enum mode { MODE_NONE, MODE_SKIP, MODE_ADDED, MODE_MERGED, MODE_OPAQUE } mode;

static BOOL box_has_key(const ctx *c, const wchar_t *path, size_t len)
{
    rkey probe = {.path = (wchar_t *)path, .len = len};
    return bsearch(&probe, c->tree.keys, c->tree.count, sizeof probe, compare_keys) != NULL;
}

static int value_named(const rkey *k, const wchar_t *name, size_t len)
{
    for (size_t i = 0; i < k->count; i++)
        if (k->values[i].len == len && !compare_paths(k->values[i].name, len, name, len))
            return (int)i;
    return -1;
}

/* Opaque: host values and subkeys the box key lacks are deleted. */
typedef struct opaque_walk {
    ctx *c;
    const rkey *k;
} opaque_walk;

static int host_value_hidden(void *arg, const wchar_t *name, size_t len, ULONG type, const uint8_t *data, ULONG size)
{
    opaque_walk *o = arg;
    if (value_named(o->k, name, len) < 0)
        add_line(o->c, 'D', o->k->path, o->k->len, name, len);
    return 0;
}

static int host_subkey_hidden(void *arg, const wchar_t *name, size_t len)
{
    opaque_walk *o = arg;
    wstr w = {0};
    ws_add(&w, o->k->path, o->k->len);
    ws_add(&w, L"\\", 1);
    ws_add(&w, name, len);
    if (w.s && !box_has_key(o->c, w.s, w.len))
        add_line(o->c, 'D', w.s, w.len, NULL, 0);
    free(w.s);
    return 0;
}

static mode key_mode(const ctx *c, const rkey *k, mode parent, HANDLE *host)
{
    uint32_t flags;
    boxindex_state own = index_state(c, k->path, k->len, &flags);
    *host = NULL;
    if (parent == MODE_SKIP || own == BOXINDEX_TOMBSTONE || own == BOXINDEX_RENAMED)
        return MODE_SKIP;
    if (own == BOXINDEX_CREATED || parent == MODE_ADDED)
        return MODE_ADDED;
    *host = open_host(k->path, k->len);
    if (!*host)
        return MODE_ADDED;
    if ((own == BOXINDEX_COPIED && (flags & BOXINDEX_FLAG_OPAQUE)) || parent == MODE_OPAQUE)
        return MODE_OPAQUE;
    return MODE_MERGED;
}

static void compare_key(ctx *c, const rkey *k, mode m, HANDLE host)
{
    if (m == MODE_ADDED) {
        add_line(c, 'A', k->path, k->len, NULL, 0);
        for (size_t i = 0; i < k->count; i++)
            if (k->values[i].type != REG_FVM_DELETED)
                add_line_data(c, 'A', k->path, k->len, k->values[i].name, k->values[i].len, &k->values[i]);
        return;
    }
    for (size_t i = 0; i < k->count; i++) {
        const rvalue *v = &k->values[i];
        ULONG type, size;
        uint8_t *data;
        BOOL on_host = regstore_query_value(host, v->name, v->len, &type, &data, &size) >= 0;
        if (v->type == REG_FVM_DELETED) {
            if (on_host)
                add_line(c, 'D', k->path, k->len, v->name, v->len);
        } else if (!on_host) {
            add_line_data(c, 'A', k->path, k->len, v->name, v->len, v);
        } else if (type != v->type || size != v->size || (size && memcmp(data, v->data, size))) {
            add_line_data(c, 'C', k->path, k->len, v->name, v->len, v);
        }
        free(data);
    }
    if (m == MODE_OPAQUE) {
        opaque_walk o = {c, k};
        regstore_enum_values(host, host_value_hidden, &o);
        regstore_enum_subkeys(host, host_subkey_hidden, &o);
    }
}

/* Walks the sorted tree with a stack of the modes of the keys above. */
static void compare_tree(ctx *c)
{
    size_t depth = 0;
    size_t *stack = malloc((c->tree.count + 1) * sizeof *stack);
    mode *modes = malloc((c->tree.count + 1) * sizeof *modes);
    if (!stack || !modes) {
        free(stack);
        free(modes);
        return;
    }
    for (size_t i = 0; i < c->tree.count; i++) {
        const rkey *k = &c->tree.keys[i];
        if (i && !compare_paths(k->path, k->len, c->tree.keys[i - 1].path, c->tree.keys[i - 1].len))
            continue;   /* a key listed twice: the first one holds the comparison */
        while (depth) {
            const rkey *up = &c->tree.keys[stack[depth - 1]];
            if (k->len > up->len && k->path[up->len] == L'\\' &&
                !compare_paths(k->path, up->len, up->path, up->len))
                break;
            depth--;
        }
        if (k->len == 0)
            continue;   /* the root mirrors nothing */
        HANDLE host;
        mode m = key_mode(c, k, depth ? modes[depth - 1] : MODE_NONE, &host);
        if (m != MODE_SKIP)
            compare_key(c, k, m, host);
        if (host)
            CloseHandle(host);
        stack[depth] = i;
        modes[depth] = m;
        depth++;
    }
    free(stack);
    free(modes);
}

/* TOMBSTONE (and RENAMED) registry keys of the index, outermost only. */
static int index_deleted(void *arg, const boxindex_entry *e)
{
    ctx *c = arg;
    boxindex_entry hider;
    if ((e->state != BOXINDEX_TOMBSTONE && e->state != BOXINDEX_RENAMED) || !boxindex_key_is_registry(e->key, e->len) ||
        e->len <= 10 || boxindex_hidden_by_ancestor(c->idx, e->key, e->len, &hider))
        return 0;
    const wchar_t *path = (const wchar_t *)e->path + 10;
    HANDLE host = open_host(path, e->len - 10);
    if (host) {
        add_line(c, 'D', path, e->len - 10, NULL, 0);
        CloseHandle(host);
    }
    return 0;
}

static void current_user_sid(wchar_t *out, size_t cap)
{
    HANDLE token;
    out[0] = 0;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return;
    union {
        TOKEN_USER user;
        char space[256];
    } info;
    DWORD got;
    wchar_t *text = NULL;
    if (GetTokenInformation(token, TokenUser, &info, sizeof info, &got) &&
        ConvertSidToStringSidW(info.user.User.Sid, &text)) {
        fvm_wcscpy(out, cap, text);
        LocalFree(text);
    }
    CloseHandle(token);
}

int regdiff_collect(const box *b, const boxindex *idx, BOOL file_only, regdiff_change **out, size_t *count)
{
    ctx c;
    memset(&c, 0, sizeof c);
    c.b = b;
    c.idx = idx;
    current_user_sid(c.user_sid, sizeof c.user_sid / sizeof c.user_sid[0]);
    char *text;
    size_t len;
    int rc = read_box_registry(b, &text, &len, file_only);
    if (rc)
        return rc;
    if (text) {
        fvm_error err;
        regfile_visitor v = {tree_key, tree_value, &c.tree};
        if (regfile_parse(text, len, &v, &err) != FVM_OK) {
            free(text);
            tree_free(&c.tree);
            return cli_error("the registry of box '%s' (registry.dat) cannot be read: %s", b->name, err.message);
        }
        free(text);
        qsort(c.tree.keys, c.tree.count, sizeof *c.tree.keys, compare_keys);
        compare_tree(&c);
    }
    if (idx)
        boxindex_foreach(idx, index_deleted, &c);
    qsort(c.lines.items, c.lines.count, sizeof *c.lines.items, compare_lines);
    /* One line per change: a change seen twice keeps its first. */
    size_t kept = 0;
    for (size_t i = 0; i < c.lines.count; i++) {
        if (kept && !_wcsicmp(c.lines.items[i].text, c.lines.items[kept - 1].text))
            regdiff_free(&c.lines.items[i], 1, FALSE);
        else
            c.lines.items[kept++] = c.lines.items[i];
    }
    tree_free(&c.tree);
    *out = c.lines.items;
    *count = kept;
    return 0;
}

void regdiff_free(regdiff_change *changes, size_t count, BOOL array_too)
{
    for (size_t i = 0; i < count; i++) {
        free(changes[i].text);
        free(changes[i].key);
        free(changes[i].value);
        free(changes[i].data);
    }
    if (array_too)
        free(changes);
}

void regdiff_display(const wchar_t *path, size_t len, const wchar_t *value, size_t value_len, wchar_t *out,
                     size_t cap)
{
    ctx c;
    memset(&c, 0, sizeof c);
    current_user_sid(c.user_sid, sizeof c.user_sid / sizeof c.user_sid[0]);
    wstr w = {0};
    display_key(&c, &w, path, len);
    if (value) {
        ws_addz(&w, L" value \"");
        ws_add_name(&w, value, value_len, TRUE);
        ws_addz(&w, L"\"");
    }
    fvm_wcscpy(out, cap, w.s ? w.s : L"");
    free(w.s);
}

int regdiff_print(const box *b, const boxindex *idx)
{
    regdiff_change *changes;
    size_t count;
    int rc = regdiff_collect(b, idx, FALSE, &changes, &count);
    if (rc)
        return rc;
    for (size_t i = 0; i < count; i++) {
        size_t n = wcslen(changes[i].text) * 3 + 1;
        char *utf8 = malloc(n);
        if (utf8) {
            cli_utf8(changes[i].text, utf8, n);
            printf("%c %s\n", changes[i].kind, utf8);
            free(utf8);
        }
    }
    regdiff_free(changes, count, TRUE);
    return 0;
}

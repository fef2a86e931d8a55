/* regrebase.c - the registry part of fvm rebase: host updates into the
 * box's registry values.
 *
 * A box keeps, per key, only the values it set or deleted (registry.dat:
 * an overlay over the host key, a deletion a tombstone), so every value it
 * never touched already follows the host. What can go stale is a value the
 * box did set: the host may have changed it since, or set it to the same
 * thing. When the runtime copied a host key up it recorded a fingerprint of
 * the host's values as the key's base (core/regbase.h); a key whose host
 * values no longer match it was changed by the host, and each value the box
 * keeps in it is judged three ways (core/regmerge.h) against the base's
 * values and the host's now:
 *   - the box's value is the host's now, or the box had not really changed
 *     it: it follows the host again (dropped from registry.dat);
 *   - the host left that value alone: the box's stays;
 *   - both changed it, differently: a conflict, and nothing of that key
 *     changes (fvm commit --ours/--theirs decides).
 * When a key has no conflict its base becomes the host's values now, so a
 * later commit judges what the box keeps against them.
 *
 * The base's values: the index keeps only their fingerprint. So, as for
 * text files, rebase keeps them itself: each run writes the host values of
 * every key the box keeps values in whose host is still the base into
 * <box>\sync\regbases\<fingerprint> (registry text, one key); a key the
 * host changed before any rebase saw it cannot be merged (reported).
 *
 * registry.dat is rewritten once (atomically) before the index's bases
 * move: a kill between the two leaves old bases, and the next rebase makes
 * the same decisions again. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/regstore.h"
#include "core/boxindex.h"
#include "core/regbase.h"
#include "core/regfile.h"
#include "core/regmerge.h"
#include "core/sha256.h"

#define REG_ROOT_LEN 10   /* "\REGISTRY\" */
#define LINE_MAX_CHARS (FVM_PATH_MAX * 2)

/* ---- keys and values in memory --------------------------------------------- */

typedef struct rr_value {
    uint16_t *name;
    size_t name_len;
    uint32_t type;
    uint8_t *data;
    size_t size;
    BOOL dropped;
} rr_value;

typedef struct rr_key {
    uint16_t *path;   /* below \REGISTRY\ */
    size_t len;
    rr_value *values;
    size_t count, cap;
} rr_key;

typedef struct rr_keys {
    rr_key *items;
    size_t count, cap;
} rr_keys;

static void *dup_units(const void *p, size_t bytes)
{
    void *copy = malloc(bytes ? bytes : 1);
    if (copy && bytes)
        memcpy(copy, p, bytes);
    return copy;
}

static rr_key *add_key(rr_keys *ks, const uint16_t *path, size_t len)
{
    if (ks->count == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 64;
        rr_key *grown = realloc(ks->items, cap * sizeof *grown);
        if (!grown)
            return NULL;
        ks->items = grown;
        ks->cap = cap;
    }
    rr_key *k = &ks->items[ks->count];
    memset(k, 0, sizeof *k);
    if (!(k->path = dup_units(path, len * sizeof *path)))
        return NULL;
    k->len = len;
    ks->count++;
    return k;
}

static BOOL add_value(rr_key *k, const uint16_t *name, size_t name_len, uint32_t type, const uint8_t *data,
                      size_t size)
{
    if (k->count == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 8;
        rr_value *grown = realloc(k->values, cap * sizeof *grown);
        if (!grown)
            return FALSE;
        k->values = grown;
        k->cap = cap;
    }
    rr_value *v = &k->values[k->count];
    v->name = dup_units(name, name_len * sizeof *name);
    v->data = dup_units(data, size);
    if (!v->name || !v->data) {
        free(v->name);
        free(v->data);
        return FALSE;
    }
    v->name_len = name_len;
    v->type = type;
    v->size = size;
    v->dropped = FALSE;
    k->count++;
    return TRUE;
}

static void free_key(rr_key *k)
{
    for (size_t i = 0; i < k->count; i++) {
        free(k->values[i].name);
        free(k->values[i].data);
    }
    free(k->values);
    free(k->path);
}

static void free_keys(rr_keys *ks)
{
    for (size_t i = 0; i < ks->count; i++)
        free_key(&ks->items[i]);
    free(ks->items);
    memset(ks, 0, sizeof *ks);
}

static fvm_status on_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    return add_key(ctx, path, len) ? FVM_OK : fvm_error_set(err, FVM_E_NOMEM, "out of memory");
}

static fvm_status on_value(void *ctx, const uint16_t *name, size_t name_len, uint32_t type, const uint8_t *data,
                           size_t size, fvm_error *err)
{
    rr_keys *ks = ctx;
    if (!ks->count)
        return fvm_error_set(err, FVM_E_PARSE, "a value before any key");
    return add_value(&ks->items[ks->count - 1], name, name_len, type, data, size)
               ? FVM_OK
               : fvm_error_set(err, FVM_E_NOMEM, "out of memory");
}

/* Registry text (registry.dat, or a kept base) into keys; FVM_E_NOTFOUND when the file does not exist. */
static fvm_status read_keys(const wchar_t *file, rr_keys *ks, fvm_error *err)
{
    char *text;
    size_t len;
    fvm_status st = regstore_read_file(file, &text, &len, err);
    if (st != FVM_OK)
        return st;
    regfile_visitor v = {on_key, on_value, ks};
    st = regfile_parse(text, len, &v, err);
    free(text);
    return st;
}

static fvm_status write_keys(const wchar_t *file, const rr_keys *ks, fvm_error *err)
{
    regfile_buf out = {0};
    fvm_status st = regfile_put_header(&out, err);
    for (size_t i = 0; i < ks->count && st == FVM_OK; i++) {
        const rr_key *k = &ks->items[i];
        st = regfile_put_key(&out, k->path, k->len, err);
        for (size_t j = 0; j < k->count && st == FVM_OK; j++)
            if (!k->values[j].dropped)
                st = regfile_put_value(&out, k->values[j].name, k->values[j].name_len, k->values[j].type,
                                       k->values[j].data, k->values[j].size, err);
    }
    if (st == FVM_OK)
        st = regfile_put_end(&out, err);
    if (st == FVM_OK)
        st = regstore_write_file(file, out.data, out.len, err);
    regfile_buf_free(&out);
    return st;
}

/* ---- the host's values and the kept bases ------------------------------------- */

static int host_value(void *ctx, const wchar_t *name, size_t len, ULONG type, const uint8_t *data, ULONG size)
{
    return add_value(ctx, (const uint16_t *)name, len, type, data, size) ? 0 : 1;
}

/* The host key's values (key->path below \REGISTRY\); FALSE when it is gone. */
static BOOL read_host(const wchar_t *nt, rr_key *out)
{
    HANDLE key;
    memset(out, 0, sizeof *out);
    if (regstore_open_key(NULL, nt, wcslen(nt), KEY_QUERY_VALUE, &key) < 0)
        return FALSE;
    NTSTATUS st = regstore_enum_values(key, host_value, out);
    CloseHandle(key);
    return st >= 0;
}

static void kept_base_path(const box *b, const boxindex_base *base, wchar_t *out, size_t cap)
{
    char hex[65];
    sha256_to_hex(base->content_hash, hex);
    _snwprintf(out, cap, L"%ls\\sync\\regbases\\%llu-%hs", b->path, (unsigned long long)base->size, hex);
    out[cap - 1] = 0;
}

/* Keeps the host values (which are the base: same fingerprint) as the base's. */
static void keep_base(const box *b, const boxindex_base *base, const rr_key *host)
{
    wchar_t file[FVM_PATH_MAX * 2], dir[FVM_PATH_MAX * 2];
    kept_base_path(b, base, file, FVM_PATH_MAX * 2);
    if (GetFileAttributesW(file) != INVALID_FILE_ATTRIBUTES)
        return;
    _snwprintf(dir, FVM_PATH_MAX * 2, L"%ls\\sync", b->path);
    CreateDirectoryW(dir, NULL);
    _snwprintf(dir, FVM_PATH_MAX * 2, L"%ls\\sync\\regbases", b->path);
    CreateDirectoryW(dir, NULL);
    static const uint16_t name[] = {'B', 'A', 'S', 'E'};
    rr_key one = *host;
    one.path = (uint16_t *)name;
    one.len = 4;
    rr_keys ks = {&one, 1, 1};
    fvm_error err;
    write_keys(file, &ks, &err);   /* a cache: not kept, the next run tries again */
}

/* The base's values, as kept; FALSE when they were not. */
static BOOL read_base(const box *b, const boxindex_base *base, rr_key *out)
{
    wchar_t file[FVM_PATH_MAX * 2];
    kept_base_path(b, base, file, FVM_PATH_MAX * 2);
    rr_keys ks = {0};
    fvm_error err;
    if (read_keys(file, &ks, &err) != FVM_OK || ks.count != 1) {
        free_keys(&ks);
        return FALSE;
    }
    /* The kept values must still be the base they are named after. */
    regbase_ctx ctx;
    regbase_init(&ctx);
    for (size_t i = 0; i < ks.items[0].count; i++)
        regbase_add_value(&ctx, ks.items[0].values[i].name, ks.items[0].values[i].name_len, ks.items[0].values[i].type,
                          ks.items[0].values[i].data, ks.items[0].values[i].size);
    boxindex_base check;
    regbase_final(&ctx, &check);
    if (!regbase_equal(&check, base)) {
        free_keys(&ks);
        return FALSE;
    }
    *out = ks.items[0];
    free(ks.items);
    return TRUE;
}

static regmerge_value *as_merge_values(const rr_key *k)
{
    regmerge_value *v = malloc((k->count ? k->count : 1) * sizeof *v);
    for (size_t i = 0; v && i < k->count; i++)
        v[i] = (regmerge_value){k->values[i].name, k->values[i].name_len, k->values[i].type, k->values[i].data,
                                k->values[i].size};
    return v;
}

/* ---- the keys to look at --------------------------------------------------------- */

typedef struct candidate {
    uint16_t *key, *path;   /* upper-cased and original-case "\REGISTRY\..." */
    size_t len;
    uint64_t hash;
    uint32_t flags;
    boxindex_base base;
} candidate;

typedef struct candidates {
    candidate *items;
    size_t count, cap;
    BOOL failed;
} candidates;

static int collect(void *ctx, const boxindex_entry *e)
{
    candidates *c = ctx;
    if (e->state != BOXINDEX_COPIED || !boxindex_key_is_registry(e->key, e->len) ||
        !(e->flags & BOXINDEX_FLAG_HAS_BASE) || (e->flags & BOXINDEX_FLAG_OPAQUE) || e->base.mtime != REGBASE_MARK ||
        e->len <= REG_ROOT_LEN)
        return 0;
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        candidate *grown = realloc(c->items, cap * sizeof *grown);
        if (!grown)
            return c->failed = TRUE, 1;
        c->items = grown;
        c->cap = cap;
    }
    candidate *it = &c->items[c->count];
    it->key = dup_units(e->key, e->len * sizeof *e->key);
    it->path = dup_units(e->path, (e->len + 1) * sizeof *e->path);
    if (!it->key || !it->path) {
        free(it->key);
        free(it->path);
        return c->failed = TRUE, 1;
    }
    it->path[e->len] = 0;
    it->len = e->len;
    it->hash = e->key_hash;
    it->flags = e->flags;
    it->base = e->base;
    c->count++;
    return 0;
}

/* The key of registry.dat a candidate mirrors (same path below \REGISTRY\, any case). */
static rr_key *box_key_of(rr_keys *ks, const candidate *c)
{
    const wchar_t *below = (const wchar_t *)c->path + REG_ROOT_LEN;
    size_t len = c->len - REG_ROOT_LEN;
    for (size_t i = 0; i < ks->count; i++)
        if (ks->items[i].len == len && !_wcsnicmp((const wchar_t *)ks->items[i].path, below, len))
            return &ks->items[i];
    return NULL;
}

static void say(char kind, const candidate *c, const rr_value *value, const char *what)
{
    wchar_t line[LINE_MAX_CHARS];
    regdiff_display((const wchar_t *)c->path + REG_ROOT_LEN, c->len - REG_ROOT_LEN,
                    value ? (const wchar_t *)value->name : NULL, value ? value->name_len : 0, line, LINE_MAX_CHARS);
    char text[LINE_MAX_CHARS * 3];
    cli_utf8(line, text, sizeof text);
    printf("%c %s  (%s)\n", kind, text, what);
}

/* ---- one key --------------------------------------------------------------------- */

typedef struct key_result {
    BOOL rebased;            /* its base moves to the host's values now */
    boxindex_base now;
} key_result;

static void rebase_key(const box *b, const candidate *c, rr_key *mine, BOOL dry_run, rebase_counts *counts,
                       key_result *res)
{
    size_t live = 0;   /* the box's values in it */
    for (size_t i = 0; mine && i < mine->count; i++)
        live += !mine->values[i].dropped;
    rr_key host;
    if (!read_host((const wchar_t *)c->path, &host)) {
        if (live) {
            say('!', c, NULL, "deleted on the host since the box copied it; fvm commit decides");
            counts->unmergeable++;
        }
        return;
    }
    regbase_ctx ctx;
    regbase_init(&ctx);
    for (size_t i = 0; i < host.count; i++)
        regbase_add_value(&ctx, host.values[i].name, host.values[i].name_len, host.values[i].type,
                          host.values[i].data, host.values[i].size);
    regbase_final(&ctx, &res->now);
    if (regbase_equal(&res->now, &c->base)) {
        if (live && !dry_run)
            keep_base(b, &c->base, &host);
        free_key(&host);
        return;
    }
    if (!live) {   /* nothing of the box's in it: only the base moves on */
        res->rebased = !dry_run;
        free_key(&host);
        return;
    }
    rr_key base;
    if (!read_base(b, &c->base, &base)) {
        say('!', c, NULL,
            "the host changed this key and the box has values in it; the base's values were not kept (rebase "
            "keeps them from its first run on), fvm commit decides");
        counts->unmergeable++;
        free_key(&host);
        return;
    }
    regmerge_value *base_v = as_merge_values(&base), *host_v = as_merge_values(&host);
    unsigned conflicts = 0, follow = 0, keep = 0;
    regmerge_decision *decided = malloc(mine->count * sizeof *decided);
    if (!base_v || !host_v || !decided) {
        say('!', c, NULL, "out of memory; not rebased");
        counts->unmergeable++;
        goto out;
    }
    for (size_t i = 0; i < mine->count; i++) {
        const rr_value *v = &mine->values[i];
        if (v->dropped)
            continue;
        regmerge_value x = {v->name, v->name_len, v->type, v->data, v->size};
        decided[i] = regmerge_decide(&x, base_v, base.count, host_v, host.count);
        conflicts += decided[i] == REGMERGE_CONFLICT;
        follow += decided[i] == REGMERGE_FOLLOW;
        keep += decided[i] == REGMERGE_KEEP;
    }
    if (conflicts) {
        for (size_t i = 0; i < mine->count; i++)
            if (!mine->values[i].dropped && decided[i] == REGMERGE_CONFLICT)
                say('!', c, &mine->values[i], "both changed it; nothing of this key changed, fvm commit decides");
        counts->conflicts++;
        goto out;
    }
    for (size_t i = 0; i < mine->count; i++)
        if (!mine->values[i].dropped && decided[i] == REGMERGE_FOLLOW) {
            say('U', c, &mine->values[i], "the box's value is the host's, or the box had not changed it: "
                                          "it follows the host again");
            mine->values[i].dropped = !dry_run;
        }
    if (keep) {
        char what[120];
        snprintf(what, sizeof what, "both changed this key; merged: the box keeps %u value%s the host left alone",
                 keep, keep == 1 ? "" : "s");
        say('M', c, NULL, what);
        counts->merged++;
    } else {
        counts->followed++;
    }
    res->rebased = !dry_run;
    if (!dry_run)
        keep_base(b, &res->now, &host);
out:
    free(decided);
    free(base_v);
    free(host_v);
    free_key(&base);
    free_key(&host);
}

int regrebase_run(const box *b, index_rw *ir, BOOL dry_run, rebase_counts *counts)
{
    HANDLE live;
    if (regstore_open_tree(b->path, KEY_READ, &live) >= 0) {
        CloseHandle(live);
        printf("registry: not rebased: the box's registry is still in its live tree (its broker did not save it); "
               "run the box once to save it\n");
        return 0;
    }
    candidates cs = {0};
    if (boxindex_foreach(&ir->idx, collect, &cs) || cs.failed) {
        for (size_t i = 0; i < cs.count; i++) {
            free(cs.items[i].key);
            free(cs.items[i].path);
        }
        free(cs.items);
        return cli_error("out of memory");
    }
    wchar_t file[FVM_PATH_MAX];
    regstore_file_path(b->path, file, FVM_PATH_MAX);
    rr_keys ks = {0};
    fvm_error err;
    int rc = 0;
    fvm_status st = read_keys(file, &ks, &err);
    if (st != FVM_OK && st != FVM_E_NOTFOUND)
        rc = cli_error("the registry of box '%s' (registry.dat) cannot be read: %s", b->name, err.message);
    key_result *results = calloc(cs.count ? cs.count : 1, sizeof *results);
    if (!rc && !results)
        rc = cli_error("out of memory");
    size_t dropped = 0;
    for (size_t i = 0; i < cs.count && !rc; i++) {
        rr_key *mine = box_key_of(&ks, &cs.items[i]);
        rebase_key(b, &cs.items[i], mine, dry_run, counts, &results[i]);
    }
    for (size_t i = 0; i < ks.count; i++)
        for (size_t j = 0; j < ks.items[i].count; j++)
            dropped += ks.items[i].values[j].dropped;
    /* registry.dat first, then the bases (see the top of the file). */
    if (!rc && dropped && (st = write_keys(file, &ks, &err)) != FVM_OK)
        rc = cli_error("cannot rewrite registry.dat of box '%s': %s", b->name, err.message);
    for (size_t i = 0; i < cs.count && !rc; i++) {
        if (!results[i].rebased)
            continue;
        const candidate *c = &cs.items[i];
        boxindex_key k = {c->hash, c->key, c->path, c->len};
        boxindex_info info = {c->flags | BOXINDEX_FLAG_HAS_BASE, results[i].now};
        if (boxindex_update(&ir->idx, &k, &info, &err) != FVM_OK)
            rc = cli_error("cannot update the index: %s", err.message);
    }
    free(results);
    free_keys(&ks);
    for (size_t i = 0; i < cs.count; i++) {
        free(cs.items[i].key);
        free(cs.items[i].path);
    }
    free(cs.items);
    return rc;
}

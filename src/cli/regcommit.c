/* regcommit.c - the registry part of fvm commit: the box's registry
 * changes (registry.dat, the key states in the box index) applied to the
 * host registry.
 *
 * The changes are exactly the registry lines of `fvm diff` (regdiff.c
 * computes both), each judged by the [sync] rules on its key path
 * ("HKEY_LOCAL_MACHINE\SOFTWARE\X") or, for a value, on the key path and the
 * value's name ("...\X\Name"). They become journal steps like the file
 * changes (commit.c): k (create key), v (set value), x (delete value),
 * X (delete key tree), and a last S that takes the committed values out of
 * registry.dat (rewritten atomically) and updates the key states in the
 * index, so the box keeps no copy of what it committed. Each step is
 * idempotent: v re-reads the box's value from the changes still pending
 * (a value already equal on the host is no longer a change: nothing to do),
 * so a commit killed anywhere is finished by the next run.
 *
 * Three-way check (core/regbase.h): when the runtime first copied a host
 * key up, it recorded a fingerprint of the host key's values as the index
 * entry's base. A value change (or a key delete) in a key whose host values
 * no longer match that fingerprint is a conflict, as for files: reported,
 * never written over the host's, unless --ours (commit anyway) or --theirs
 * (y: the box's value dropped, the host's stays). The granularity is the
 * key: a host change to any value of it makes each of the box's value
 * changes in it a conflict. After a commit the key's base becomes the
 * host's values as they are then (the S step), so what the box keeps in
 * that key is judged against them next time. Keys copied up before bases
 * were recorded have none: the box's value wins there, as before. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/regstore.h"
#include "core/boxindex.h"
#include "core/ntpath.h"
#include "core/regbase.h"
#include "core/regfile.h"
#include "core/syncjournal.h"

#define REG_ROOT L"\\REGISTRY\\"

static BOOL has_control(const wchar_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20)
            return TRUE;
    return FALSE;
}

/* "\REGISTRY\<key>" in UTF-8. */
static void nt_key_utf8(const wchar_t *key, size_t len, char *out, size_t cap)
{
    wchar_t *w = malloc((len + 16) * sizeof(wchar_t));
    if (!w) {
        out[0] = 0;
        return;
    }
    _snwprintf(w, len + 16, L"%ls%.*ls", REG_ROOT, (int)len, key);
    w[len + 15] = 0;
    cli_utf8(w, out, cap);
    free(w);
}

/* What the policy judges: the key's display path without its '\', and for
 * a value "\<name>" after it. */
static void policy_path(const regdiff_change *c, wchar_t *out, size_t cap)
{
    const wchar_t *cut = c->is_value ? wcsstr(c->text, L"\\ value \"") : NULL;
    size_t n = cut ? (size_t)(cut - c->text) : wcslen(c->text);
    while (n && c->text[n - 1] == L'\\')
        n--;
    if (c->is_value)
        _snwprintf(out, cap, L"%.*ls\\%.*ls", (int)n, c->text, (int)c->value_len, c->value);
    else
        _snwprintf(out, cap, L"%.*ls", (int)n, c->text);
    out[cap - 1] = 0;
}

/* ---- the three-way check -------------------------------------------------- */

static int add_to_fingerprint(void *ctx, const wchar_t *name, size_t len, ULONG type, const uint8_t *data, ULONG size)
{
    regbase_add_value(ctx, (const uint16_t *)name, len, type, data, size);
    return 0;
}

/* The host key's values now, as a base; FALSE when the host key is gone. */
BOOL regcommit_host_fingerprint(const wchar_t *nt, boxindex_base *out)
{
    HANDLE key;
    if (regstore_open_key(NULL, nt, wcslen(nt), KEY_QUERY_VALUE, &key) < 0)
        return FALSE;
    regbase_ctx ctx;
    regbase_init(&ctx);
    NTSTATUS st = regstore_enum_values(key, add_to_fingerprint, &ctx);
    CloseHandle(key);
    if (st < 0)
        return FALSE;
    regbase_final(&ctx, out);
    return TRUE;
}

/* The index key of a registry key path "\REGISTRY\..." (upper case). */
static BOOL reg_index_key(const wchar_t *nt, uint16_t *key, size_t cap, boxindex_key *k);

/* Whether the host changed the values of key nt ("\REGISTRY\...") since the
 * box copied it up: 1 changed, 0 not (or no base recorded). */
static int host_key_changed(const boxindex *idx, const wchar_t *nt)
{
    static uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];
    boxindex_key k;
    boxindex_entry e;
    if (!idx || !reg_index_key(nt, key, BOXINDEX_MAX_KEY_UNITS + 1, &k) ||
        boxindex_lookup(idx, k.hash, key, k.len, &e) != BOXINDEX_COPIED || !(e.flags & BOXINDEX_FLAG_HAS_BASE) ||
        e.base.mtime != REGBASE_MARK)
        return 0;
    boxindex_base now;
    return !regcommit_host_fingerprint(nt, &now) || !regbase_equal(&now, &e.base);
}

int regcommit_plan(const box *b, const boxindex *idx, const sync_hooks *h, sync_journal *j, unsigned *planned)
{
    HANDLE live;
    if (regstore_open_tree(b->path, KEY_READ, &live) >= 0) {
        CloseHandle(live);
        printf("registry: not committed: the box's registry is still in its live tree (its broker did not save "
               "it); run the box once to save it\n");
        return 0;
    }
    regdiff_change *changes;
    size_t count;
    int rc = regdiff_collect(b, idx, TRUE, &changes, &count);
    if (rc)
        return rc;
    size_t before = j->count;
    for (size_t i = 0; i < count && !rc; i++) {
        const regdiff_change *c = &changes[i];
        wchar_t judged[FVM_PATH_MAX * 2];
        policy_path(c, judged, FVM_PATH_MAX * 2);
        if (!h->allow(h->ctx, judged, c->text, c->kind))
            continue;
        if (has_control(c->key, c->key_len) || (c->is_value && has_control(c->value, c->value_len))) {
            char text[FVM_PATH_MAX * 6];
            cli_utf8(c->text, text, sizeof text);
            printf("  %c %s: not committed: names with control characters are not supported\n", c->kind, text);
            continue;
        }
        char key[FVM_PATH_MAX * 6], value[FVM_PATH_MAX * 6];
        nt_key_utf8(c->key, c->key_len, key, sizeof key);
        sync_step_kind kind;
        if (c->is_value) {
            wchar_t *name = malloc((c->value_len + 1) * sizeof(wchar_t));
            if (!name)
                return cli_error("out of memory");
            memcpy(name, c->value, c->value_len * sizeof(wchar_t));
            name[c->value_len] = 0;
            cli_utf8(name, value, sizeof value);
            free(name);
            kind = c->kind == 'D' ? SYNC_STEP_REG_DELVALUE : SYNC_STEP_REG_VALUE;
        } else {
            kind = c->kind == 'D' ? SYNC_STEP_REG_DELKEY : SYNC_STEP_REG_KEY;
        }
        char text[FVM_PATH_MAX * 6];
        cli_utf8(c->text, text, sizeof text);
        /* Values, and deletes of keys the host had: the host's values must
         * still be those the box started from. */
        wchar_t *nt_key = (c->is_value || kind == SYNC_STEP_REG_DELKEY) ? malloc((c->key_len + 16) * sizeof(wchar_t))
                                                                        : NULL;
        int changed = 0;
        if (nt_key) {
            _snwprintf(nt_key, c->key_len + 16, L"%ls%.*ls", REG_ROOT, (int)c->key_len, c->key);
            nt_key[c->key_len + 15] = 0;
            changed = host_key_changed(idx, nt_key);
            free(nt_key);
        }
        if (changed && h->resolve == 1) {
            printf("%c %s  (conflict, --ours: the box's version wins)\n", c->kind, text);
        } else if (changed && h->resolve == 2 && c->is_value) {
            printf("%c %s  (conflict, --theirs: the host's value stays, the box's is dropped)\n", c->kind, text);
            kind = SYNC_STEP_REG_DROP;
        } else if (changed) {
            printf("! %s  CONFLICT: the host changed this key's values since the box copied it; not committed "
                   "(choose with %s)\n", text, c->is_value ? "--ours or --theirs" : "--ours");
            h->conflict(h->ctx, c->text);
            continue;
        } else {
            printf("%c %s\n", c->kind, text);
        }
        fvm_error err;
        if (sync_journal_add(j, kind, key, c->is_value ? value : NULL, &err) != FVM_OK)
            rc = cli_error("cannot plan the registry commit: %s", err.message);
    }
    regdiff_free(changes, count, TRUE);
    if (!rc && j->count > before) {
        *planned += (unsigned)(j->count - before);
        fvm_error err;
        if (sync_journal_add(j, SYNC_STEP_REG_SAVE, "registry.dat", NULL, &err) != FVM_OK)
            rc = cli_error("cannot plan the registry commit: %s", err.message);
    }
    return rc;
}

/* ---- applying ------------------------------------------------------------ */

/* The changes still pending, read once per run (for the data of v steps). */
static regdiff_change *g_pending;
static size_t g_pending_count;
static BOOL g_pending_read;

static const regdiff_change *pending_value(const box *b, const boxindex *idx, const wchar_t *key, size_t key_len,
                                           const wchar_t *name)
{
    if (!g_pending_read) {
        g_pending_read = TRUE;
        if (regdiff_collect(b, idx, TRUE, &g_pending, &g_pending_count))
            g_pending_count = 0;
    }
    size_t name_len = wcslen(name);
    for (size_t i = 0; i < g_pending_count; i++) {
        const regdiff_change *c = &g_pending[i];
        if (c->is_value && c->kind != 'D' && c->key_len == key_len && !_wcsnicmp(c->key, key, key_len) &&
            c->value_len == name_len && !wcsncmp(c->value, name, name_len))
            return c;
    }
    return NULL;
}

static wchar_t *wide(const char *s)
{
    size_t n = strlen(s) + 1;
    wchar_t *w = malloc(n * sizeof(wchar_t));
    if (w)
        cli_wide(s, w, n);
    return w;
}

/* The index key of a registry key path "\REGISTRY\..." (upper case). */
static BOOL reg_index_key(const wchar_t *nt, uint16_t *key, size_t cap, boxindex_key *k)
{
    size_t len = wcslen(nt);
    if (len >= cap)
        return FALSE;
    for (size_t i = 0; i < len; i++)
        key[i] = ntpath_upcase(NULL, nt[i]);
    *k = (boxindex_key){boxindex_key_hash(key, len), key, (const uint16_t *)nt, len};
    return TRUE;
}

/* The S step: committed values out of registry.dat, key states updated. */
typedef struct rewrite {
    regfile_buf out;
    const sync_journal *j;
    BOOL skip_key;         /* the current key is below a deleted one */
    char key[FVM_PATH_MAX * 6];
    size_t dropped;
} rewrite;

static BOOL journal_has(const sync_journal *j, sync_step_kind kind, const char *key, const char *value)
{
    for (size_t i = 0; i < j->count; i++) {
        const sync_step *s = &j->steps[i];
        if (s->kind != kind || _stricmp(s->path, key))
            continue;
        if (!value || (s->path2 && !strcmp(s->path2, value)))
            return TRUE;
    }
    return FALSE;
}

static BOOL below_deleted_key(const sync_journal *j, const char *key)
{
    for (size_t i = 0; i < j->count; i++) {
        const sync_step *s = &j->steps[i];
        size_t n = strlen(s->path);
        if (s->kind == SYNC_STEP_REG_DELKEY && !_strnicmp(s->path, key, n) && (key[n] == 0 || key[n] == '\\'))
            return TRUE;
    }
    return FALSE;
}

static fvm_status rewrite_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    rewrite *r = ctx;
    nt_key_utf8((const wchar_t *)path, len, r->key, sizeof r->key);
    r->skip_key = below_deleted_key(r->j, r->key);
    if (r->skip_key) {
        r->dropped++;
        return FVM_OK;
    }
    return regfile_put_key(&r->out, path, len, err);
}

static fvm_status rewrite_value(void *ctx, const uint16_t *name, size_t len, uint32_t type, const uint8_t *data,
                                size_t size, fvm_error *err)
{
    rewrite *r = ctx;
    if (r->skip_key)
        return FVM_OK;
    wchar_t *w = malloc((len + 1) * sizeof(wchar_t));
    if (!w)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    memcpy(w, name, len * sizeof(wchar_t));
    w[len] = 0;
    char value[FVM_PATH_MAX * 6];
    cli_utf8(w, value, sizeof value);
    free(w);
    BOOL committed = !has_control((const wchar_t *)name, len) &&
                     (journal_has(r->j, type == REG_FVM_DELETED ? SYNC_STEP_REG_DELVALUE : SYNC_STEP_REG_VALUE,
                                  r->key, value) ||
                      journal_has(r->j, SYNC_STEP_REG_DROP, r->key, value));
    if (committed) {
        r->dropped++;
        return FVM_OK;
    }
    return regfile_put_value(&r->out, name, len, type, data, size, err);
}

static int save_registry(const box *b, boxindex *idx, const sync_journal *j)
{
    wchar_t file[FVM_PATH_MAX];
    regstore_file_path(b->path, file, FVM_PATH_MAX);
    char *text;
    size_t len;
    fvm_error err;
    fvm_status st = regstore_read_file(file, &text, &len, &err);
    if (st == FVM_OK) {
        rewrite r = {{0}, j, FALSE, {0}, 0};
        regfile_visitor v = {rewrite_key, rewrite_value, &r};
        st = regfile_put_header(&r.out, &err);
        if (st == FVM_OK)
            st = regfile_parse(text, len, &v, &err);
        if (st == FVM_OK)
            st = regfile_put_end(&r.out, &err);
        if (st == FVM_OK && r.dropped)
            st = regstore_write_file(file, r.out.data, r.out.len, &err);
        regfile_buf_free(&r.out);
        free(text);
        if (st != FVM_OK)
            return cli_error("cannot rewrite registry.dat of box '%s': %s", b->name, err.message);
    } else if (st != FVM_E_NOTFOUND) {
        return cli_error("cannot read registry.dat of box '%s': %s", b->name, err.message);
    }
    /* Key states: a key made on the host now merges (COPIED); a deleted
     * host key is gone, its tombstone with it. */
    if (!idx)
        return 0;
    static uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];
    /* A key whose values this commit set, deleted or dropped: its base is
     * now the host's values (what the box keeps there differs from those). */
    for (size_t i = 0; i < j->count; i++) {
        const sync_step *s = &j->steps[i];
        if (s->kind != SYNC_STEP_REG_VALUE && s->kind != SYNC_STEP_REG_DELVALUE && s->kind != SYNC_STEP_REG_DROP)
            continue;
        wchar_t *nt = wide(s->path);
        boxindex_key k;
        boxindex_entry e;
        boxindex_base now;
        if (nt && reg_index_key(nt, key, BOXINDEX_MAX_KEY_UNITS + 1, &k) &&
            boxindex_lookup(idx, k.hash, key, k.len, &e) == BOXINDEX_COPIED && !(e.flags & BOXINDEX_FLAG_OPAQUE) &&
            regcommit_host_fingerprint(nt, &now) &&
            !((e.flags & BOXINDEX_FLAG_HAS_BASE) && regbase_equal(&now, &e.base))) {
            boxindex_info info = {e.flags | BOXINDEX_FLAG_HAS_BASE, now};
            if (boxindex_update(idx, &k, &info, &err) != FVM_OK) {
                free(nt);
                return cli_error("cannot update the index: %s", err.message);
            }
        }
        free(nt);
    }
    for (size_t i = 0; i < j->count; i++) {
        const sync_step *s = &j->steps[i];
        if (s->kind != SYNC_STEP_REG_KEY && s->kind != SYNC_STEP_REG_DELKEY)
            continue;
        wchar_t *nt = wide(s->path);
        boxindex_key k;
        if (!nt || !reg_index_key(nt, key, BOXINDEX_MAX_KEY_UNITS + 1, &k)) {
            free(nt);
            continue;
        }
        boxindex_entry e;
        boxindex_state state = boxindex_lookup(idx, k.hash, key, k.len, &e);
        if (state == BOXINDEX_CREATED || (s->kind == SYNC_STEP_REG_DELKEY && state != BOXINDEX_ABSENT)) {
            if (boxindex_forget(idx, &k, &err) != FVM_OK) {
                free(nt);
                return cli_error("cannot update the index: %s", err.message);
            }
        }
        if (s->kind == SYNC_STEP_REG_KEY && state == BOXINDEX_CREATED) {
            boxindex_info info = {0, {0}};
            fvm_status cs = boxindex_copy_up(idx, &k, &info, &err);
            if (cs != FVM_OK && cs != FVM_E_EXISTS && cs != FVM_E_NOTFOUND) {
                free(nt);
                return cli_error("cannot update the index: %s", err.message);
            }
        }
        free(nt);
    }
    return 0;
}

int regcommit_step(const box *b, boxindex *idx, const sync_journal *j, size_t i, const sync_hooks *h)
{
    const sync_step *s = &j->steps[i];
    if (s->kind == SYNC_STEP_REG_SAVE)
        return save_registry(b, idx, j);
    wchar_t *nt = wide(s->path), *name = s->path2 ? wide(s->path2) : NULL;
    if (!nt || (s->path2 && !name)) {
        free(nt);
        free(name);
        return cli_error("out of memory");
    }
    int rc = 0;
    HANDLE key = NULL;
    NTSTATUS st;
    switch (s->kind) {
    case SYNC_STEP_REG_KEY:
        st = regstore_create_key(NULL, nt, wcslen(nt), &key, NULL);
        if (st < 0)
            rc = cli_error("cannot create the host key %ls (status 0x%08lx)", nt, (unsigned long)st);
        else
            h->audit(h->ctx, "key", "commit-create", nt, "commit", "policy");
        break;
    case SYNC_STEP_REG_VALUE: {
        size_t root = wcslen(REG_ROOT);
        const regdiff_change *c = pending_value(b, idx, nt + root, wcslen(nt) - root, name);
        if (!c)
            break;   /* no longer a change: set by the run that was killed */
        st = regstore_create_key(NULL, nt, wcslen(nt), &key, NULL);
        LSTATUS e = st < 0 ? ERROR_ACCESS_DENIED
                           : RegSetValueExW((HKEY)key, name, 0, c->type, c->data, (DWORD)c->size);
        if (e != ERROR_SUCCESS)
            rc = cli_win_error((DWORD)e, "cannot set %ls value \"%ls\" on the host", nt, name);
        else
            h->audit(h->ctx, "key", "commit-set", nt, "commit", "policy");
        break;
    }
    case SYNC_STEP_REG_DELVALUE:
        if (regstore_open_key(NULL, nt, wcslen(nt), KEY_SET_VALUE | KEY_QUERY_VALUE, &key) >= 0) {
            LSTATUS e = RegDeleteValueW((HKEY)key, name);
            if (e != ERROR_SUCCESS && e != ERROR_FILE_NOT_FOUND)
                rc = cli_win_error((DWORD)e, "cannot delete %ls value \"%ls\" on the host", nt, name);
            else
                h->audit(h->ctx, "key", "commit-delete-value", nt, "commit", "policy");
        }
        break;
    case SYNC_STEP_REG_DROP:
        h->audit(h->ctx, "key", "commit-drop", nt, "commit", "--theirs");   /* the S step drops it from the box */
        break;
    case SYNC_STEP_REG_DELKEY:
        if (regstore_open_key(NULL, nt, wcslen(nt), DELETE | KEY_ENUMERATE_SUB_KEYS | KEY_QUERY_VALUE, &key) >= 0) {
            st = regstore_delete_tree(key);
            if (st < 0)
                rc = cli_error("cannot delete the host key %ls (status 0x%08lx)", nt, (unsigned long)st);
            else
                h->audit(h->ctx, "key", "commit-delete-key", nt, "commit", "policy");
        }
        break;
    default:
        rc = cli_error("step '%c' of the journal is not a registry step", (char)s->kind);
    }
    if (key)
        CloseHandle(key);
    free(nt);
    free(name);
    return rc;
}

/* rebase.c - fvm rebase: host updates into the box's copies.
 *
 * Untouched host files are always live in a box; a box copy is not: it
 * froze the host file at copy-up. rebase looks at every box copy whose host
 * file is no longer the base version the index recorded (size, time,
 * SHA-256, as commit's three-way check) and:
 *  - when the box never changed its copy (its SHA-256 is the base's), drops
 *    the copy: the box follows the host again;
 *  - when both changed a text file and the base's content is known, merges
 *    the three line by line (core/merge3.c); a clean merge becomes the box
 *    copy (written next to it, renamed over it) and the host's version its
 *    new base, so a later commit sees no conflict; a merge with conflicts
 *    is reported and nothing changes;
 *  - otherwise reports it (fvm commit --ours/--theirs/--keep-both decide).
 *
 * The base's content: the index keeps only its size, time and hash, and
 * the host overwrites it when it changes. So rebase keeps it itself: each
 * run copies the host file of every text box copy (up to 4 MiB) whose host
 * is still the base into <box>\sync\bases\<sha256>; a base changed before
 * any rebase saw it cannot be merged (reported as such).
 *
 * Registry values: regrebase.c (the same three-way idea, value by value). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "core/merge3.h"
#include "core/sha256.h"

#define WPATH (FVM_PATH_MAX * 2)
#define BASE_KEEP_MAX (4u << 20)

typedef struct rebase_ctx {
    const box *b;
    index_rw *ir;
    BOOL dry_run;
    unsigned followed, merged, conflicts, unmergeable;
    /* entries to act on, collected first (writes during foreach are not allowed) */
    struct todo {
        wchar_t *nt;
        boxindex_base base;
        uint32_t flags;
    } *todo;
    size_t count, cap;
} rebase_ctx;

static int collect(void *ctx, const boxindex_entry *e)
{
    rebase_ctx *r = ctx;
    if (e->state != BOXINDEX_COPIED || !(e->flags & BOXINDEX_FLAG_HAS_BASE) || (e->flags & BOXINDEX_FLAG_DIRECTORY) ||
        boxindex_key_is_registry(e->key, e->len))
        return 0;
    if (r->count == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->todo = realloc(r->todo, r->cap * sizeof *r->todo);
        if (!r->todo)
            return 1;
    }
    wchar_t *nt = malloc((e->len + 1) * sizeof(wchar_t));
    if (!nt)
        return 1;
    memcpy(nt, e->path, e->len * sizeof(wchar_t));
    nt[e->len] = 0;
    r->todo[r->count++] = (struct todo){nt, e->base, e->flags};
    return 0;
}

static char *read_all(const wchar_t *path, size_t max, size_t *len)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return NULL;
    LARGE_INTEGER size;
    char *data = NULL;
    DWORD got = 0;
    if (GetFileSizeEx(h, &size) && (uint64_t)size.QuadPart <= max && (data = malloc((size_t)size.QuadPart + 1)) &&
        (!ReadFile(h, data, (DWORD)size.QuadPart, &got, NULL) || got != size.QuadPart)) {
        free(data);
        data = NULL;
    }
    CloseHandle(h);
    if (data) {
        data[got] = 0;
        *len = got;
    }
    return data;
}

static BOOL is_text(const char *s, size_t n)
{
    return memchr(s, 0, n) == NULL;
}

static void base_path(const box *b, const uint8_t hash[32], wchar_t *out)
{
    char hex[65];
    sha256_to_hex(hash, hex);
    _snwprintf(out, WPATH, L"%ls\\sync\\bases\\%hs", b->path, hex);
    out[WPATH - 1] = 0;
}

/* Keeps the host file as the content of base (the host still is it). */
static void keep_base(const box *b, const wchar_t *host, const boxindex_base *base)
{
    static const uint8_t zero[32];
    if (!memcmp(base->content_hash, zero, 32) || base->size > BASE_KEEP_MAX)
        return;
    wchar_t kept[WPATH], dir[WPATH];
    base_path(b, base->content_hash, kept);
    if (GetFileAttributesW(kept) != INVALID_FILE_ATTRIBUTES)
        return;
    size_t len;
    char *data = read_all(host, BASE_KEEP_MAX, &len);
    uint8_t digest[32];
    if (data && is_text(data, len)) {
        sha256(data, len, digest);
        if (!memcmp(digest, base->content_hash, 32)) {
            _snwprintf(dir, WPATH, L"%ls\\sync", b->path);
            CreateDirectoryW(dir, NULL);
            _snwprintf(dir, WPATH, L"%ls\\sync\\bases", b->path);
            CreateDirectoryW(dir, NULL);
            CopyFileW(host, kept, TRUE);
        }
    }
    free(data);
}

static void say(char kind, const wchar_t *host, const char *what)
{
    char p[WPATH * 3];
    cli_utf8(host, p, sizeof p);
    printf("%c %s  (%s)\n", kind, p, what);
}

/* The new base after a merge: the host's current version. */
static int set_base(rebase_ctx *r, const wchar_t *nt, const wchar_t *host, uint32_t flags)
{
    WIN32_FILE_ATTRIBUTE_DATA d;
    if (!GetFileAttributesExW(host, GetFileExInfoStandard, &d))
        return cli_win_error(GetLastError(), "cannot read %ls", host);
    boxindex_info info = {flags | BOXINDEX_FLAG_HAS_BASE, {0}};
    info.base.size = ((uint64_t)d.nFileSizeHigh << 32) | d.nFileSizeLow;
    info.base.mtime = (int64_t)(((uint64_t)d.ftLastWriteTime.dwHighDateTime << 32) | d.ftLastWriteTime.dwLowDateTime);
    if (!sync_hash_file(host, info.base.content_hash))
        return cli_win_error(GetLastError(), "cannot read %ls", host);
    static ntpath path;
    static uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];
    size_t len;
    if (!sync_index_key_of(nt, &path, key, &len))
        return cli_error("cannot form the index key of %ls", nt);
    boxindex_key k = {ntpath_hash(&path), key, path.path, len};
    fvm_error err;
    if (boxindex_update(&r->ir->idx, &k, &info, &err) != FVM_OK)
        return cli_error("cannot update the index: %s", err.message);
    keep_base(r->b, host, &info.base);
    return 0;
}

static int rebase_one(rebase_ctx *r, const struct todo *t)
{
    wchar_t host[WPATH], copy[WPATH];
    sync_nt_to_win32(t->nt, host, WPATH);
    if (!sync_box_copy_path(r->b, t->nt, copy, WPATH) || GetFileAttributesW(copy) == INVALID_FILE_ATTRIBUTES)
        return 0;
    if (!sync_host_changed(host, &t->base)) {
        if (!r->dry_run)
            keep_base(r->b, host, &t->base);
        return 0;
    }
    if (GetFileAttributesW(host) == INVALID_FILE_ATTRIBUTES) {
        say('!', host, "deleted on the host since the box copied it; fvm commit decides");
        r->unmergeable++;
        return 0;
    }
    uint8_t mine_hash[32];
    static const uint8_t zero[32];
    if (memcmp(t->base.content_hash, zero, 32) && sync_hash_file(copy, mine_hash) &&
        !memcmp(mine_hash, t->base.content_hash, 32)) {
        say('U', host, "the box never changed its copy: it follows the host again");
        r->followed++;
        if (r->dry_run)
            return 0;
        SetFileAttributesW(copy, FILE_ATTRIBUTE_NORMAL);
        if (!DeleteFileW(copy))
            return cli_win_error(GetLastError(), "cannot delete the box copy %ls", copy);
        return sync_index_forget(r->ir, t->nt);
    }
    wchar_t kept[WPATH];
    base_path(r->b, t->base.content_hash, kept);
    size_t bl = 0, ml = 0, hl = 0;
    char *base = memcmp(t->base.content_hash, zero, 32) ? read_all(kept, BASE_KEEP_MAX, &bl) : NULL;
    char *mine = base ? read_all(copy, 4 * BASE_KEEP_MAX, &ml) : NULL;
    char *theirs = mine ? read_all(host, 4 * BASE_KEEP_MAX, &hl) : NULL;
    int rc = 0;
    if (!base || !mine || !theirs) {
        say('!', host, base ? "both changed; too large to merge, fvm commit decides"
                            : "both changed; the base's content was not kept (rebase keeps it from its first run "
                              "on), fvm commit decides");
        r->unmergeable++;
        goto out;
    }
    merge3_result m;
    fvm_error err;
    if (merge3(base, bl, mine, ml, theirs, hl, "box", "host", &m, &err) != FVM_OK) {
        char why[300];
        snprintf(why, sizeof why, "both changed; not merged: %s", err.message);
        say('!', host, why);
        r->unmergeable++;
        goto out;
    }
    if (m.conflicts) {
        char why[120];
        snprintf(why, sizeof why, "both changed; the merge has %u conflicting part%s; nothing changed", m.conflicts,
                 m.conflicts == 1 ? "" : "s");
        say('!', host, why);
        r->conflicts++;
    } else {
        say('M', host, "both changed; merged into the box copy");
        r->merged++;
        if (!r->dry_run) {
            wchar_t tmp[WPATH];
            _snwprintf(tmp, WPATH, L"%ls.fvm-merge", copy);
            HANDLE h = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
            DWORD wrote;
            BOOL ok = h != INVALID_HANDLE_VALUE && WriteFile(h, m.text, (DWORD)m.len, &wrote, NULL) && wrote == m.len;
            if (h != INVALID_HANDLE_VALUE)
                CloseHandle(h);
            SetFileAttributesW(copy, FILE_ATTRIBUTE_NORMAL);
            if (!ok || !MoveFileExW(tmp, copy, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
                rc = cli_win_error(GetLastError(), "cannot write the merged box copy %ls", copy);
                DeleteFileW(tmp);
            } else {
                rc = set_base(r, t->nt, host, t->flags);
            }
        }
    }
    merge3_free(&m);
out:
    free(base);
    free(mine);
    free(theirs);
    return rc;
}

int cmd_rebase(int argc, char **argv)
{
    const char *name = NULL;
    BOOL dry_run = FALSE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n"))
            dry_run = TRUE;
        else if (argv[i][0] == '-' || name)
            return cli_error("usage: fvm rebase NAME [--dry-run]"), EXIT_USAGE;
        else
            name = argv[i];
    }
    if (!name)
        return cli_error("usage: fvm rebase NAME [--dry-run]"), EXIT_USAGE;
    box b;
    if (!box_init(&b, name))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", name);
    DWORD procs = box_process_count(&b);
    if (procs)
        return cli_error("box '%s' is running (%lu processes): rebase refuses a running box; stop it first",
                         b.name, (unsigned long)procs);
    int rc = box_stop_unless_running(&b, FALSE);
    if (rc)
        return rc;
    wchar_t lock_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b.path, FVM_OBJ_LOCK, lock_name, FVM_OBJ_NAME_MAX);
    HANDLE lock = CreateMutexW(NULL, FALSE, lock_name);
    if (!lock)
        return cli_win_error(GetLastError(), "cannot create the lock of box '%s'", b.name);
    WaitForSingleObject(lock, INFINITE);
    index_rw ir;
    rebase_ctx r;
    memset(&r, 0, sizeof r);
    r.b = &b;
    r.ir = &ir;
    r.dry_run = dry_run;
    if ((rc = sync_index_open(&b, &ir)) == 0 && ir.ok) {
        if (boxindex_foreach(&ir.idx, collect, &r))
            rc = cli_error("out of memory");
        for (size_t i = 0; i < r.count && !rc; i++)
            rc = rebase_one(&r, &r.todo[i]);
        rebase_counts keys = {0};
        if (!rc)
            rc = regrebase_run(&b, &ir, dry_run, &keys);
        r.followed += keys.followed;
        r.merged += keys.merged;
        r.conflicts += keys.conflicts;
        r.unmergeable += keys.unmergeable;
        for (size_t i = 0; i < r.count; i++)
            free(r.todo[i].nt);
        free(r.todo);
    }
    if (ir.ok)
        sync_index_close(&ir);
    ReleaseMutex(lock);
    CloseHandle(lock);
    if (!rc)
        printf("%s%u box cop%s (files, registry keys) follow the host again, %u merged, %u with merge conflicts, "
               "%u not mergeable\n",
               dry_run ? "dry run: " : "", r.followed, r.followed == 1 ? "y" : "ies", r.merged, r.conflicts,
               r.unmergeable);
    return rc ? rc : (r.conflicts || r.unmergeable) ? EXIT_CONFLICT : 0;
}

/* commit.c - fvm commit: the box's file changes applied to the host.
 *
 * Three phases.
 *  1. Plan. The box index (core/boxindex) lists what the box did to each
 *     host path: COPIED (a box copy of a host file, with the host version it
 *     started from: size, last-write time, SHA-256), CREATED, TOMBSTONE,
 *     RENAMED. Each entry is judged by the policy's [sync] rules
 *     (core/syncpolicy) and, when it replaces or deletes a host file, by a
 *     three-way check: the host file must still be the base version the box
 *     copied (or, for a new file, still absent). A host that moved on is a
 *     conflict: never overwritten unless --ours says so (--theirs keeps the
 *     host's and drops the box's, --keep-both lands the box's next to it).
 *  2. Journal. The decided steps are written as <root>\journals\NAME-CREATED.commit.journal
 *     (core/syncjournal), atomically, before anything changes.
 *  3. Apply. Steps run in order (folders made, files landed, files deleted,
 *     folders removed, deepest first), each idempotent, each followed by
 *     "done N" in the journal. A file lands atomically: the box copy is
 *     renamed over the host file (same volume), or copied to
 *     "<host>.fvm-commit" next to it and that renamed over it, so a reader
 *     of the host sees the old file or the new one. Then the box copy (if
 *     still there) is deleted and the index entry forgotten: the box keeps
 *     no copy of what it committed, and its view (now the host's) is the
 *     same.
 *
 * A commit killed at any point (FVM_COMMIT_KILL_AT=K kills it at its K-th
 * step, for the tests) leaves each host file old or new, never a mix; the
 * next `fvm commit NAME` finds the journal and finishes it first.
 *
 * A running box is never committed: the verb refuses while the box has
 * processes and holds the box lock (the one `fvm run` takes to start the
 * broker) for its whole run, so no box process starts under it. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/auditlog.h"
#include "common/policyload.h"
#include "core/boxindex.h"
#include "core/ntpath.h"
#include "core/sha256.h"
#include "core/syncjournal.h"
#include "core/syncpolicy.h"

#define WPATH (FVM_PATH_MAX * 2)

/* ---- small helpers ------------------------------------------------------- */

/* \??\C:\x -> C:\x ; \??\UNC\s\sh\x -> \\s\sh\x */
void sync_nt_to_win32(const wchar_t *nt, wchar_t *out, size_t cap)
{
    if (!wcsncmp(nt, L"\\??\\UNC\\", 8))
        _snwprintf(out, cap, L"\\\\%ls", nt + 8);
    else if (!wcsncmp(nt, L"\\??\\", 4))
        _snwprintf(out, cap, L"%ls", nt + 4);
    else
        _snwprintf(out, cap, L"%ls", nt);
    out[cap - 1] = 0;
}

/* Where the box keeps its copy of a host path: <box>\drive\C\x, <box>\unc\s\sh\x. */
BOOL sync_box_copy_path(const box *b, const wchar_t *nt, wchar_t *out, size_t cap)
{
    if (!wcsncmp(nt, L"\\??\\UNC\\", 8))
        _snwprintf(out, cap, L"%ls\\unc\\%ls", b->path, nt + 8);
    else if (!wcsncmp(nt, L"\\??\\", 4) && nt[4] && nt[5] == L':')
        _snwprintf(out, cap, L"%ls\\drive\\%lc%ls", b->path, nt[4], nt + 6);
    else
        return FALSE;
    out[cap - 1] = 0;
    return TRUE;
}

static int64_t filetime64(FILETIME ft)
{
    return (int64_t)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
}

typedef struct file_facts {
    BOOL exists, directory;
    uint64_t size;
    int64_t mtime;
    DWORD attributes;
} file_facts;

static file_facts facts_of(const wchar_t *path)
{
    file_facts f = {0};
    WIN32_FILE_ATTRIBUTE_DATA d;
    if (GetFileAttributesExW(path, GetFileExInfoStandard, &d)) {
        f.exists = TRUE;
        f.directory = (d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
        f.size = ((uint64_t)d.nFileSizeHigh << 32) | d.nFileSizeLow;
        f.mtime = filetime64(d.ftLastWriteTime);
        f.attributes = d.dwFileAttributes;
    }
    return f;
}

BOOL sync_hash_file(const wchar_t *path, uint8_t digest[32])
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_FLAG_SEQUENTIAL_SCAN, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    static uint8_t buf[1 << 20];
    sha256_ctx ctx;
    sha256_init(&ctx);
    DWORD got;
    BOOL ok;
    while ((ok = ReadFile(h, buf, sizeof buf, &got, NULL)) && got)
        sha256_update(&ctx, buf, got);
    CloseHandle(h);
    sha256_final(&ctx, digest);
    return ok;
}

BOOL sync_host_changed(const wchar_t *host, const boxindex_base *base)
{
    file_facts f = facts_of(host);
    if (!f.exists || f.directory || f.size != base->size)
        return TRUE;
    if (f.mtime == base->mtime)
        return FALSE;
    /* Touched, same size: the content decides when the base's hash is known. */
    static const uint8_t zero[32];
    uint8_t now[32];
    return !memcmp(base->content_hash, zero, 32) || !sync_hash_file(host, now) || memcmp(now, base->content_hash, 32);
}

/* Off a terminal, progress is a plain line every interval ms (FVM_PROGRESS_MS
 * overrides it: 0 prints one per file or step, for the tests). */
ULONGLONG sync_progress_interval(ULONGLONG fallback)
{
    const char *v = getenv("FVM_PROGRESS_MS");
    return v && *v ? (ULONGLONG)strtoull(v, NULL, 10) : fallback;
}

/* ---- the kill point (tests) ---------------------------------------------- */

static long g_kill_at = -1, g_step_no;

static void step_point(void)
{
    if (g_kill_at >= 0 && ++g_step_no == g_kill_at) {
        fflush(stdout);
        TerminateProcess(GetCurrentProcess(), 9);   /* as abrupt as kill -9: nothing flushed, nothing unwound */
    }
}

/* ---- the index, writable ------------------------------------------------- */

static int lock_mutex(void *ctx)
{
    DWORD w = WaitForSingleObject(((index_rw *)ctx)->mutex, INFINITE);
    return w == WAIT_OBJECT_0 || w == WAIT_ABANDONED ? 0 : 1;
}

static void unlock_mutex(void *ctx)
{
    ReleaseMutex(((index_rw *)ctx)->mutex);
}

/* Maps the box's newest index (the one not retired) read-write, with the
 * box's index mutex as the writers' lock. ok FALSE: the box has no index
 * (it never ran); an index that cannot be opened is an error. */
int sync_index_open(const box *b, index_rw *ir)
{
    memset(ir, 0, sizeof *ir);
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_INDEX_LOCK, name, FVM_OBJ_NAME_MAX);
    ir->mutex = CreateMutexW(NULL, FALSE, name);
    if (!ir->mutex)
        return cli_win_error(GetLastError(), "cannot create the index lock of box '%s'", b->name);
    ir->lock = (boxindex_lock){lock_mutex, unlock_mutex, ir};
    for (unsigned n = 1; n <= 64; n++) {
        wchar_t path[FVM_PATH_MAX];
        _snwprintf(path, FVM_PATH_MAX, L"%ls\\index-%u.fvm", b->path, n);
        HANDLE file = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE |
                                  FILE_SHARE_DELETE, NULL, OPEN_EXISTING, 0, NULL);
        if (file == INVALID_HANDLE_VALUE)
            continue;
        LARGE_INTEGER size;
        HANDLE mapping = GetFileSizeEx(file, &size) && size.QuadPart > 0
                             ? CreateFileMappingW(file, NULL, PAGE_READWRITE, 0, 0, NULL) : NULL;
        void *view = mapping ? MapViewOfFile(mapping, FILE_MAP_WRITE, 0, 0, 0) : NULL;
        if (mapping)
            CloseHandle(mapping);
        CloseHandle(file);
        if (!view)
            return cli_win_error(GetLastError(), "cannot map index-%u.fvm of box '%s'", n, b->name);
        fvm_error err;
        if (boxindex_open(&ir->idx, view, (size_t)size.QuadPart, &ir->lock, &err) != FVM_OK) {
            UnmapViewOfFile(view);
            return cli_error("the index of box '%s' (index-%u.fvm) is damaged: %s (fvm check %s)", b->name, n,
                             err.message, b->name);
        }
        if (boxindex_is_retired(&ir->idx)) {
            UnmapViewOfFile(view);
            continue;
        }
        if (boxindex_recover(&ir->idx, &err) != FVM_OK) {
            UnmapViewOfFile(view);
            return cli_error("the index of box '%s' cannot be repaired: %s", b->name, err.message);
        }
        ir->view = view;
        ir->ok = TRUE;
        return 0;
    }
    return 0;
}

void sync_index_close(index_rw *ir)
{
    if (ir->view) {
        FlushViewOfFile(ir->view, 0);
        UnmapViewOfFile(ir->view);
    }
    if (ir->mutex)
        CloseHandle(ir->mutex);
    memset(ir, 0, sizeof *ir);
}

/* The index key of an NT path; FALSE when it does not normalise. */
BOOL sync_index_key_of(const wchar_t *nt, ntpath *path, uint16_t *key, size_t *len)
{
    static const ntpath_context ctx = {.input = NTPATH_INPUT_NT};
    fvm_error err;
    return ntpath_normalize((const uint16_t *)nt, wcslen(nt), &ctx, path, &err) == FVM_OK &&
           ntpath_key(path, key, BOXINDEX_MAX_KEY_UNITS + 1, len, &err) == FVM_OK;
}

/* Forgets the entry of nt (no entry: nothing to do). */
int sync_index_forget(index_rw *ir, const wchar_t *nt)
{
    if (!ir->ok)
        return 0;
    static ntpath path;
    static uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];
    size_t len;
    if (!sync_index_key_of(nt, &path, key, &len))
        return cli_error("cannot form the index key of %ls", nt);
    boxindex_key k = {ntpath_hash(&path), key, path.path, len};
    if (boxindex_lookup(&ir->idx, k.hash, key, len, NULL) == BOXINDEX_ABSENT)
        return 0;
    fvm_error err;
    if (boxindex_forget(&ir->idx, &k, &err) != FVM_OK)
        return cli_error("cannot update the index: %s", err.message);
    return 0;
}

/* A folder made on the host stays in the box as a COPIED folder (the box's
 * folder now merges over the host's): forget CREATED, then copy_up. */
static int index_folder_now_on_host(index_rw *ir, const wchar_t *nt)
{
    if (!ir->ok)
        return 0;
    static ntpath path;
    static uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];
    size_t len;
    if (!sync_index_key_of(nt, &path, key, &len))
        return cli_error("cannot form the index key of %ls", nt);
    boxindex_key k = {ntpath_hash(&path), key, path.path, len};
    boxindex_entry e;
    boxindex_state st = boxindex_lookup(&ir->idx, k.hash, key, len, &e);
    fvm_error err;
    if (st == BOXINDEX_CREATED && boxindex_forget(&ir->idx, &k, &err) != FVM_OK)
        return cli_error("cannot update the index: %s", err.message);
    step_point();
    if (st == BOXINDEX_COPIED)
        return 0;
    boxindex_info info = {BOXINDEX_FLAG_DIRECTORY, {0}};
    fvm_status s = boxindex_copy_up(&ir->idx, &k, &info, &err);
    if (s != FVM_OK && s != FVM_E_EXISTS)
        return cli_error("cannot update the index: %s", err.message);
    return 0;
}

/* ---- the plan ------------------------------------------------------------ */

typedef struct item {
    boxindex_state state;
    BOOL directory, opaque, has_base;
    boxindex_base base;
    wchar_t *nt;            /* host path, NT form */
    wchar_t *win;           /* host path, Win32 form */
    wchar_t *renamed_to;    /* RENAMED: Win32 form of where it went */
} item;

typedef struct item_list {
    item *items;
    size_t count, cap;
} item_list;

static wchar_t *wdup_n(const uint16_t *s, size_t n)
{
    wchar_t *c = malloc((n + 1) * sizeof(wchar_t));
    if (c) {
        memcpy(c, s, n * sizeof(wchar_t));
        c[n] = 0;
    }
    return c;
}

static int collect_item(void *ctx, const boxindex_entry *e)
{
    item_list *list = ctx;
    if (boxindex_key_is_registry(e->key, e->len))
        return 0;
    /* Streams ("\??\C:\A\F:S", the ':' past the drive's) are not committed. */
    for (size_t i = 6; i < e->len; i++)
        if (e->key[i] == ':')
            return 0;
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 64;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
        if (!list->items)
            return 1;
    }
    item *it = &list->items[list->count++];
    memset(it, 0, sizeof *it);
    it->state = e->state;
    it->directory = (e->flags & BOXINDEX_FLAG_DIRECTORY) != 0;
    it->opaque = (e->flags & BOXINDEX_FLAG_OPAQUE) != 0;
    it->has_base = (e->flags & BOXINDEX_FLAG_HAS_BASE) != 0;
    it->base = e->base;
    it->nt = wdup_n(e->path, e->len);
    it->win = malloc(WPATH * sizeof(wchar_t));
    if (!it->nt || !it->win)
        return 1;
    sync_nt_to_win32(it->nt, it->win, WPATH);
    if (e->state == BOXINDEX_RENAMED && e->renamed_to) {
        wchar_t *to = wdup_n(e->renamed_to, e->renamed_to_len);
        it->renamed_to = malloc(WPATH * sizeof(wchar_t));
        if (!to || !it->renamed_to)
            return 1;
        sync_nt_to_win32(to, it->renamed_to, WPATH);
        free(to);
    }
    return 0;
}

static int compare_items(const void *a, const void *b)
{
    return _wcsicmp(((const item *)a)->nt, ((const item *)b)->nt);
}

typedef enum resolution { RESOLVE_NONE, RESOLVE_OURS, RESOLVE_THEIRS, RESOLVE_KEEP_BOTH } resolution;

typedef struct commit_opts {
    BOOL dry_run;
    resolution resolve;
    wchar_t paths[16][WPATH];   /* only changes at or below these (none: all) */
    int path_count;
} commit_opts;

typedef struct commit_state {
    const box *b;
    commit_opts *opts;
    sync_policy policy;
    wchar_t policy_name[FVM_PATH_MAX];
    BOOL interactive;           /* stdin is a terminal: `ask` rules ask */
    fvm_audit_log audit;
    BOOL audit_open;
    unsigned conflicts, refused, planned;
} commit_state;

static BOOL selected(const commit_opts *o, const wchar_t *win)
{
    if (!o->path_count)
        return TRUE;
    for (int i = 0; i < o->path_count; i++) {
        size_t n = wcslen(o->paths[i]);
        if (!_wcsnicmp(win, o->paths[i], n) && (win[n] == 0 || win[n] == L'\\' || (n && o->paths[i][n - 1] == L'\\')))
            return TRUE;
    }
    return FALSE;
}

static void audit(commit_state *cs, const char *type, const char *op, const wchar_t *win, const char *decision,
                  const char *rule)
{
    if (!cs->audit_open || cs->opts->dry_run)
        return;
    FILETIME now;
    GetSystemTimeAsFileTime(&now);
    char name[WPATH * 3], image[FVM_PATH_MAX * 3];
    wchar_t wimage[FVM_PATH_MAX];
    cli_utf8(win, name, sizeof name);
    GetModuleFileNameW(NULL, wimage, FVM_PATH_MAX);
    cli_utf8(wimage, image, sizeof image);
    audit_record r = {0};
    r.time_ms = (int64_t)(((uint64_t)filetime64(now) - 116444736000000000ULL) / 10000);
    r.box = cs->b->name;
    r.pid = GetCurrentProcessId();
    r.image = image;
    r.type = type;
    r.op = op;
    r.name = name;
    r.decision = decision;
    r.rule = rule;
    r.subject = "broker";   /* fvm.exe runs unboxed: pid and image are its own view of itself */
    /* Unsynced: three flushes per record (log, head, rename) cost more than
     * landing a file by rename; the records are flushed and the head moved
     * once, at the end of the commit (commit_audit_sync). */
    char why[256];
    if (fvm_audit_log_append_unsynced(&cs->audit, &r, why, sizeof why) != FVM_OK)
        fprintf(stderr, "fvm: warning: audit log: %s\n", why);
}

static void rule_label(const sync_rule *r, char *out, size_t cap)
{
    if (r)
        snprintf(out, cap, "%s:%u", r->file, r->line);
    else
        snprintf(out, cap, "default");
}

/* The policy's word on one path: 1 commit, 0 not (said why). judged is
 * what the rules match, display what the user reads (fvm diff's line). */
static int allowed_as(commit_state *cs, const wchar_t *judged, const wchar_t *display, char kind, char *label,
                      size_t label_cap)
{
    char path[WPATH * 3], judged8[WPATH * 3];
    cli_utf8(display, path, sizeof path);
    cli_utf8(judged, judged8, sizeof judged8);
    const wchar_t *win = display;
    const sync_rule *rule;
    sync_action a = sync_policy_decide(&cs->policy, judged8, strlen(judged8), &rule);
    rule_label(rule, label, label_cap);
    if (a == SYNC_COMMIT)
        return 1;
    if (a == SYNC_ASK && cs->interactive && !cs->opts->dry_run) {
        printf("commit %c %s ? [y/N] ", kind, path);
        fflush(stdout);
        char answer[16];
        if (fgets(answer, sizeof answer, stdin) && (answer[0] == 'y' || answer[0] == 'Y'))
            return 1;
        printf("  not committed (answered no)\n");
    } else if (a == SYNC_ASK) {
        printf("  %c %s: not committed: the policy says ask (%s) and this run has no terminal to ask on\n", kind,
               path, label);
    } else {
        printf("  %c %s: not committed: the policy does not allow it (%s)\n", kind, path, label);
    }
    cs->refused++;
    audit(cs, win[0] == L'H' ? "key" : "file", "commit", win, a == SYNC_ASK ? "ask" : "deny", label);
    return 0;
}

static int allowed(commit_state *cs, const wchar_t *win, char kind, char *label, size_t label_cap)
{
    return allowed_as(cs, win, win, kind, label, label_cap);
}

/* The hooks the registry part uses. */
static int hook_allow(void *ctx, const wchar_t *judged, const wchar_t *display, char kind)
{
    char label[POLICY_NAME_MAX + 16];
    return allowed_as(ctx, judged, display, kind, label, sizeof label);
}

static void hook_audit(void *ctx, const char *type, const char *op, const wchar_t *name, const char *decision,
                       const char *rule)
{
    audit(ctx, type, op, name, decision, rule);
}

static void hook_conflict(void *ctx, const wchar_t *display)
{
    commit_state *cs = ctx;
    cs->conflicts++;
    audit(cs, "key", "commit", display, "conflict", "three-way check");
}

static sync_hooks hooks_of(commit_state *cs)
{
    return (sync_hooks){.allow = hook_allow, .audit = hook_audit, .conflict = hook_conflict,
                        .resolve = (int)cs->opts->resolve, .ctx = cs};
}

/* "dir\name.ext" -> "dir\name (box NAME).ext", then " 2", " 3"... until free. */
static void keep_both_name(const commit_state *cs, const wchar_t *win, wchar_t *out, size_t cap)
{
    const wchar_t *slash = wcsrchr(win, L'\\');
    const wchar_t *dot = wcsrchr(win, L'.');
    if (!dot || dot < slash)
        dot = win + wcslen(win);
    for (int n = 1;; n++) {
        wchar_t suffix[FVM_BOX_NAME_MAX + 32];
        if (n == 1)
            _snwprintf(suffix, FVM_BOX_NAME_MAX + 32, L" (box %ls)", cs->b->wname);
        else
            _snwprintf(suffix, FVM_BOX_NAME_MAX + 32, L" (box %ls %d)", cs->b->wname, n);
        _snwprintf(out, cap, L"%.*ls%ls%ls", (int)(dot - win), win, suffix, dot);
        out[cap - 1] = 0;
        if (!facts_of(out).exists || n > 99)
            return;
    }
}

static void win_to_nt(const wchar_t *win, wchar_t *out, size_t cap)
{
    if (win[0] == L'\\' && win[1] == L'\\')
        _snwprintf(out, cap, L"\\??\\UNC\\%ls", win + 2);
    else
        _snwprintf(out, cap, L"\\??\\%ls", win);
    out[cap - 1] = 0;
}

static void print_plan_line(char kind, const wchar_t *win, const wchar_t *to, const char *note)
{
    char a[WPATH * 3], b[WPATH * 3];
    cli_utf8(win, a, sizeof a);
    if (to) {
        cli_utf8(to, b, sizeof b);
        printf("%c %s -> %s%s\n", kind, a, b, note);
    } else {
        printf("%c %s%s\n", kind, a, note);
    }
}

static int add_step(sync_journal *j, sync_step_kind kind, const wchar_t *nt, const wchar_t *nt2)
{
    char a[WPATH * 3], b[WPATH * 3];
    cli_utf8(nt, a, sizeof a);
    if (nt2)
        cli_utf8(nt2, b, sizeof b);
    fvm_error err;
    if (sync_journal_add(j, kind, a, nt2 ? b : NULL, &err) != FVM_OK)
        return cli_error("cannot plan the commit: %s", err.message);
    return 0;
}

/* A conflict: the resolution's step, or none (reported). */
static int plan_conflict(commit_state *cs, sync_journal *j, const item *it, char kind, const char *why)
{
    switch (cs->opts->resolve) {
    case RESOLVE_OURS:
        print_plan_line(kind, it->win, NULL, "  (conflict, --ours: the box's version wins)");
        return add_step(j, it->state == BOXINDEX_TOMBSTONE || it->state == BOXINDEX_RENAMED ? SYNC_STEP_DELETE
                                                                                               : SYNC_STEP_LAND,
                        it->nt, NULL);
    case RESOLVE_THEIRS:
        print_plan_line(kind, it->win, NULL, "  (conflict, --theirs: the host's version stays, the box's is dropped)");
        return add_step(j, SYNC_STEP_DROP, it->nt, NULL);
    case RESOLVE_KEEP_BOTH:
        if (it->state == BOXINDEX_TOMBSTONE || it->state == BOXINDEX_RENAMED) {
            print_plan_line(kind, it->win, NULL, "  (conflict, --keep-both: the host's changed file stays)");
            return add_step(j, SYNC_STEP_DROP, it->nt, NULL);
        } else {
            wchar_t other[WPATH], other_nt[WPATH];
            keep_both_name(cs, it->win, other, WPATH);
            win_to_nt(other, other_nt, WPATH);
            print_plan_line(kind, it->win, other, "  (conflict, --keep-both: the box's version lands beside)");
            return add_step(j, SYNC_STEP_LAND_AS, it->nt, other_nt);
        }
    default:
        break;
    }
    char note[256];
    snprintf(note, sizeof note, "  CONFLICT: %s; not committed (choose with --ours, --theirs or --keep-both)", why);
    print_plan_line('!', it->win, NULL, note);
    cs->conflicts++;
    audit(cs, "file", "commit", it->win, "conflict", "three-way check");
    return 0;
}

static int plan_item(commit_state *cs, sync_journal *j, const item *it)
{
    char label[POLICY_NAME_MAX + 16];
    wchar_t copy[WPATH];
    if (!sync_box_copy_path(cs->b, it->nt, copy, WPATH))
        return 0;
    file_facts host = facts_of(it->win);
    if (it->directory) {
        if (it->state == BOXINDEX_CREATED) {
            if (host.exists)
                return 0;   /* made on the host too: nothing to do */
            if (!allowed(cs, it->win, 'A', label, sizeof label))
                return 0;
            print_plan_line('A', it->win, NULL, "\\");
            return add_step(j, SYNC_STEP_MKDIR, it->nt, NULL);
        }
        if (it->state == BOXINDEX_COPIED && it->opaque) {
            print_plan_line('!', it->win, NULL, "\\  not committed: a folder deleted and re-created in the box "
                                                "(replacing a host folder's content is not supported yet)");
            cs->refused++;
            return 0;
        }
        if (it->state == BOXINDEX_TOMBSTONE || it->state == BOXINDEX_RENAMED) {
            if (!host.exists)
                return add_step(j, SYNC_STEP_RMDIR, it->nt, NULL);   /* gone already: drop the tombstone */
            if (!allowed(cs, it->win, 'D', label, sizeof label))
                return 0;
            print_plan_line(it->state == BOXINDEX_RENAMED ? 'R' : 'D', it->win, it->renamed_to, "\\");
            return add_step(j, SYNC_STEP_RMDIR, it->nt, NULL);
        }
        return 0;   /* a COPIED folder: a container of box copies, nothing of its own */
    }
    if (it->state == BOXINDEX_COPIED || it->state == BOXINDEX_CREATED) {
        file_facts mine = facts_of(copy);
        if (!mine.exists)
            return 0;   /* an entry without a copy (a crash before the copy): no change */
        char kind = it->state == BOXINDEX_COPIED ? 'C' : 'A';
        if (!allowed(cs, it->win, kind, label, sizeof label))
            return 0;
        if (it->state == BOXINDEX_COPIED) {
            if (!it->has_base)
                return plan_conflict(cs, j, it, kind, "no base version was recorded at copy-up");
            if (sync_host_changed(it->win, &it->base))
                return plan_conflict(cs, j, it, kind, host.exists ? "the host file changed since the box copied it"
                                                                  : "the host file was deleted since the box "
                                                                    "copied it");
        } else if (host.exists) {
            return plan_conflict(cs, j, it, kind, "the host has a file of that name now");
        }
        print_plan_line(kind, it->win, NULL, "");
        return add_step(j, SYNC_STEP_LAND, it->nt, NULL);
    }
    if (it->state == BOXINDEX_TOMBSTONE || it->state == BOXINDEX_RENAMED) {
        char kind = it->state == BOXINDEX_RENAMED ? 'R' : 'D';
        if (!host.exists)
            return add_step(j, SYNC_STEP_DELETE, it->nt, NULL);   /* gone already: drop the tombstone */
        if (!allowed(cs, it->win, kind, label, sizeof label))
            return 0;
        if (it->has_base && sync_host_changed(it->win, &it->base))
            return plan_conflict(cs, j, it, kind, "the host file changed since the box saw it");
        print_plan_line(kind, it->win, it->renamed_to, "");
        return add_step(j, SYNC_STEP_DELETE, it->nt, NULL);
    }
    return 0;
}

/* The order steps run in: folders made (parents first), files landed or
 * dropped, files deleted, folders removed (children first). */
static int step_rank(const sync_step *s)
{
    switch (s->kind) {
    case SYNC_STEP_MKDIR:
        return 0;
    case SYNC_STEP_DELETE:
        return 2;
    case SYNC_STEP_RMDIR:
        return 3;
    case SYNC_STEP_REG_KEY:
        return 4;
    case SYNC_STEP_REG_VALUE:
    case SYNC_STEP_REG_DELVALUE:
    case SYNC_STEP_REG_DROP:
        return 5;
    case SYNC_STEP_REG_DELKEY:
        return 6;
    case SYNC_STEP_REG_SAVE:
        return 7;
    default:
        return 1;
    }
}

static int compare_steps(const void *pa, const void *pb)
{
    const sync_step *a = pa, *b = pb;
    int ra = step_rank(a), rb = step_rank(b);
    if (ra != rb)
        return ra - rb;
    int c = strcmp(a->path, b->path);
    return ra == 3 || ra == 6 ? -c : c;   /* removals deepest first */
}

/* ---- applying ------------------------------------------------------------ */

static BOOL make_parent_dirs(const wchar_t *path)
{
    wchar_t dir[WPATH];
    _snwprintf(dir, WPATH, L"%ls", path);
    dir[WPATH - 1] = 0;
    wchar_t *slash = wcsrchr(dir, L'\\');
    if (!slash || slash - dir < 3)
        return TRUE;
    *slash = 0;
    if (GetFileAttributesW(dir) != INVALID_FILE_ATTRIBUTES)
        return TRUE;
    return make_parent_dirs(dir) && (CreateDirectoryW(dir, NULL) || GetLastError() == ERROR_ALREADY_EXISTS);
}

typedef struct progress {
    BOOL terminal;
    size_t step, steps;
    const wchar_t *what;
} progress;

static DWORD CALLBACK copy_progress(LARGE_INTEGER total, LARGE_INTEGER done, LARGE_INTEGER s1, LARGE_INTEGER s2,
                                    DWORD stream, DWORD reason, HANDLE src, HANDLE dst, LPVOID ctx)
{
    progress *p = ctx;
    if (p && p->terminal && total.QuadPart > (16 << 20)) {
        int width = 30, filled = (int)(done.QuadPart * width / (total.QuadPart ? total.QuadPart : 1));
        printf("\r  [%.*s%*s] %3d%%", filled, "##############################", width - filled, "",
               (int)(done.QuadPart * 100 / (total.QuadPart ? total.QuadPart : 1)));
        fflush(stdout);
    }
    return PROGRESS_CONTINUE;
}

/* FVM_COMMIT_TIMING=1: the time of each part of landing a file, on stderr. */
static BOOL g_timing;

static void timing(const char *what, const wchar_t *path)
{
    static LARGE_INTEGER last;
    LARGE_INTEGER now, f;
    if (!g_timing)
        return;
    QueryPerformanceCounter(&now);
    QueryPerformanceFrequency(&f);
    if (last.QuadPart)
        fprintf(stderr, "timing: %-10s %8.1f ms  %ls\n", what, (now.QuadPart - last.QuadPart) * 1000.0 / f.QuadPart,
                path);
    last = now;
}

/* The box copy copied to tmp (next to the host file), with a bar on a terminal. */
static int copy_to_host(const wchar_t *copy, const wchar_t *tmp, uint64_t size, progress *pg)
{
    BOOL cancel = FALSE;
    if (!CopyFileExW(copy, tmp, pg->terminal ? copy_progress : NULL, pg, &cancel, 0))
        return cli_win_error(GetLastError(), "cannot copy %ls to the host", tmp);
    if (pg->terminal && size > (16 << 20))
        printf("\r%60s\r", "");
    return 0;
}

/* FVM_COMMIT_COPY=1 makes commit copy even where it could rename (bench/sync.sh
 * measures both ways). */
static BOOL g_force_copy;
/* Files land by copying (forced, or a rename found another volume): the
 * copies of later steps are made ahead on a second thread (commitcopy.c). */
static BOOL g_copying;
static copy_ahead *g_ahead;

/* The box copy of nt lands at target_win. The box copy is dropped right
 * after, so where box and host share a volume it is simply renamed over the
 * host file: one atomic rename, no byte copied (a reader of the host sees
 * the old file or the new one). Elsewhere (another volume, a share) it is
 * copied next to the host file and that copy renamed over it. */
static int land_file(commit_state *cs, const wchar_t *nt, const wchar_t *target_win, progress *pg)
{
    wchar_t copy[WPATH], tmp[WPATH];
    sync_box_copy_path(cs->b, nt, copy, WPATH);
    file_facts mine = facts_of(copy);
    if (!mine.exists)
        return 0;   /* landed (renamed, or copied and dropped) by the run that was killed */
    file_facts host = facts_of(target_win);
    if (host.exists && host.size == mine.size && host.mtime == mine.mtime && host.attributes == mine.attributes)
        return 0;   /* landed by the run that was killed, before it dropped the copy */
    if (!make_parent_dirs(target_win))
        return cli_win_error(GetLastError(), "cannot create the folder of %ls", target_win);
    BOOL unset_readonly = host.exists && (host.attributes & FILE_ATTRIBUTE_READONLY);
    if (unset_readonly)
        SetFileAttributesW(target_win, host.attributes & ~FILE_ATTRIBUTE_READONLY);
    _snwprintf(tmp, WPATH, L"%ls.fvm-commit", target_win);
    tmp[WPATH - 1] = 0;
    BOOL made_ahead = copy_ahead_take(g_ahead, tmp);   /* copied by commitcopy.c in this run */
    if (!made_ahead && facts_of(tmp).exists) {   /* a copy the killed run made and never renamed */
        SetFileAttributesW(tmp, FILE_ATTRIBUTE_NORMAL);
        DeleteFileW(tmp);
    }
    /* No MOVEFILE_WRITE_THROUGH: a killed process loses nothing the page
     * cache holds, and flushing each landed file (as Wine does for it)
     * halved the commit's throughput; power loss is not covered. */
    /* A rename keeps the renamed file's security: the box copy first gets
     * what a copy onto the host would have (landsec.c). */
    int rc;
    if (!g_force_copy && !made_ahead) {
        if ((rc = sync_give_landing_security(copy, target_win, host.exists)) != 0) {
            if (unset_readonly)
                SetFileAttributesW(target_win, host.attributes);
            return rc;
        }
        if (MoveFileExW(copy, target_win, MOVEFILE_REPLACE_EXISTING)) {
            step_point();
            return 0;
        }
        g_copying = TRUE;   /* another volume: the later steps' copies are made ahead */
    }
    timing(made_ahead ? "made ahead" : "prepared", target_win);
    if (!made_ahead && (rc = copy_to_host(copy, tmp, mine.size, pg)) != 0) {
        if (unset_readonly)
            SetFileAttributesW(target_win, host.attributes);
        return rc;
    }
    timing("copied", target_win);
    /* The copy, new in the host folder, has what the folder gives; a
     * changed file keeps the host file's own. */
    if (host.exists && (rc = sync_give_landing_security(tmp, target_win, TRUE)) != 0) {
        DeleteFileW(tmp);
        if (unset_readonly)
            SetFileAttributesW(target_win, host.attributes);
        return rc;
    }
    step_point();
    if (!MoveFileExW(tmp, target_win, MOVEFILE_REPLACE_EXISTING)) {
        DWORD e = GetLastError();
        DeleteFileW(tmp);
        if (unset_readonly)
            SetFileAttributesW(target_win, host.attributes);
        return cli_win_error(e, "cannot replace %ls", target_win);
    }
    timing("renamed", target_win);
    step_point();
    return 0;
}

/* ---- freeing box copies ----------------------------------------------------
 *
 * Where a file lands by a copy (another volume) its box copy is then
 * dropped, and deleting a large file is not free: on this machine an
 * unlink of 64 MiB takes 20-55 ms (its blocks and cached pages freed; the
 * root file system is mounted with online discard), about as long as
 * copying it, and Wine unlinks inside the wineserver, where every Wine call
 * of every process waits meanwhile. So the step renames the box copy aside
 * into <box>\sync\landed (one rename on the box's own volume: the box no
 * longer holds it, the step is done, crash-safe as before) and the blocks
 * are freed after the commit has returned, by a detached `fvm __reap NAME`
 * (reap.c). The commit's "applied" time is the landing; the free is not in
 * it (docs/design.md gives both numbers). */

static unsigned g_set_aside;

static void landed_dir(const box *b, wchar_t *out)
{
    _snwprintf(out, FVM_PATH_MAX, L"%ls\\sync\\landed", b->path);
    out[FVM_PATH_MAX - 1] = 0;
}

/* The box forgets nt: its copy set aside (see above), its index entry gone. */
static int drop_from_box(commit_state *cs, index_rw *ir, const wchar_t *nt)
{
    wchar_t copy[WPATH];
    if (sync_box_copy_path(cs->b, nt, copy, WPATH)) {
        file_facts mine = facts_of(copy);
        if (mine.exists && !mine.directory) {
            wchar_t dir[FVM_PATH_MAX], aside[FVM_PATH_MAX];
            landed_dir(cs->b, dir);
            _snwprintf(aside, FVM_PATH_MAX, L"%ls\\%lu-%u", dir, (unsigned long)GetCurrentProcessId(),
                       ++g_set_aside);
            if (!pack_make_dirs(dir) || !MoveFileExW(copy, aside, MOVEFILE_REPLACE_EXISTING)) {
                if (mine.attributes & FILE_ATTRIBUTE_READONLY)
                    SetFileAttributesW(copy, FILE_ATTRIBUTE_NORMAL);
                if (!DeleteFileW(copy))
                    return cli_win_error(GetLastError(), "cannot delete the box copy %ls", copy);
            }
            timing("dropped", copy);
            step_point();
        }
    }
    return sync_index_forget(ir, nt);
}

static int run_step(commit_state *cs, index_rw *ir, const sync_step *s, progress *pg, BOOL *kept)
{
    wchar_t nt[WPATH], nt2[WPATH], win[WPATH], win2[WPATH];
    cli_wide(s->path, nt, WPATH);
    sync_nt_to_win32(nt, win, WPATH);
    int rc = 0;
    switch (s->kind) {
    case SYNC_STEP_LAND:
        if (!(rc = land_file(cs, nt, win, pg)) && !(rc = drop_from_box(cs, ir, nt)))
            audit(cs, "file", "commit-write", win, "commit", "policy");
        return rc;
    case SYNC_STEP_LAND_AS:
        cli_wide(s->path2, nt2, WPATH);
        sync_nt_to_win32(nt2, win2, WPATH);
        if (!(rc = land_file(cs, nt, win2, pg)) && !(rc = drop_from_box(cs, ir, nt)))
            audit(cs, "file", "commit-keep-both", win2, "commit", "--keep-both");
        return rc;
    case SYNC_STEP_DROP:
        if (!(rc = drop_from_box(cs, ir, nt)))
            audit(cs, "file", "commit-drop", win, "commit", "--theirs");
        return rc;
    case SYNC_STEP_MKDIR:
        if (!CreateDirectoryW(win, NULL) && GetLastError() != ERROR_ALREADY_EXISTS &&
            (!make_parent_dirs(win) || (!CreateDirectoryW(win, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)))
            return cli_win_error(GetLastError(), "cannot create the folder %ls", win);
        step_point();
        if (!(rc = index_folder_now_on_host(ir, nt)))
            audit(cs, "file", "commit-mkdir", win, "commit", "policy");
        return rc;
    case SYNC_STEP_DELETE: {
        file_facts host = facts_of(win);
        if (host.exists) {
            if (host.attributes & FILE_ATTRIBUTE_READONLY)
                SetFileAttributesW(win, FILE_ATTRIBUTE_NORMAL);
            if (!DeleteFileW(win))
                return cli_win_error(GetLastError(), "cannot delete %ls", win);
            step_point();
            audit(cs, "file", "commit-delete", win, "commit", "policy");
        }
        return sync_index_forget(ir, nt);
    }
    case SYNC_STEP_RMDIR:
        if (facts_of(win).exists && !RemoveDirectoryW(win)) {
            DWORD e = GetLastError();
            if (e == ERROR_DIR_NOT_EMPTY) {
                char path[WPATH * 3];
                cli_utf8(win, path, sizeof path);
                printf("! %s\\  kept in the box: the host folder has content the box did not delete\n", path);
                *kept = TRUE;
                return 0;
            }
            return cli_win_error(e, "cannot remove the folder %ls", win);
        }
        step_point();
        audit(cs, "file", "commit-rmdir", win, "commit", "policy");
        return sync_index_forget(ir, nt);
    default:
        return cli_error("step '%c' of the journal is not a file step", (char)s->kind);
    }
}

/* The copies of the file steps from the i-th on, made ahead (commitcopy.c):
 * those still to land, as land_file will name them. */
static void start_copy_ahead(commit_state *cs, const sync_journal *j, size_t i)
{
    if (!(g_ahead = copy_ahead_new()))
        return;   /* every step copies for itself */
    for (; i < j->count; i++) {
        const sync_step *s = &j->steps[i];
        if (s->done || (s->kind != SYNC_STEP_LAND && s->kind != SYNC_STEP_LAND_AS))
            continue;
        wchar_t nt[WPATH], target_nt[WPATH], target[WPATH], copy[WPATH], tmp[WPATH];
        cli_wide(s->path, nt, WPATH);
        cli_wide(s->kind == SYNC_STEP_LAND ? s->path : s->path2, target_nt, WPATH);
        sync_nt_to_win32(target_nt, target, WPATH);
        if (!sync_box_copy_path(cs->b, nt, copy, WPATH))
            continue;
        file_facts mine = facts_of(copy), host = facts_of(target);
        if (!mine.exists ||
            (host.exists && host.size == mine.size && host.mtime == mine.mtime && host.attributes == mine.attributes))
            continue;   /* land_file has nothing to copy for it */
        _snwprintf(tmp, WPATH, L"%ls.fvm-commit", target);
        tmp[WPATH - 1] = 0;
        if (!copy_ahead_add(g_ahead, copy, tmp))
            break;
    }
    copy_ahead_begin(g_ahead);
}

static int run_any_step(commit_state *cs, index_rw *ir, const sync_journal *j, size_t i, progress *pg, BOOL *kept)
{
    if (sync_step_kind_valid(j->steps[i].kind, NULL) && step_rank(&j->steps[i]) >= 4) {
        sync_hooks h = hooks_of(cs);
        return regcommit_step(cs->b, ir->ok ? &ir->idx : NULL, j, i, &h);
    }
    return run_step(cs, ir, &j->steps[i], pg, kept);
}

/* The journal lives outside the box folder, in <root>\\journals: the box
 * folder is writable by the box's own programs (the floor allows it), and
 * a journal's steps run with host paths and no policy check when resumed,
 * so one a box program planted there would make the user's next commit
 * write or delete host files the policy refuses. Its name carries the
 * box's creation time (box.ini created=), so a box made again under the
 * same name never resumes its predecessor's journal. */
static void journal_path(const box *b, wchar_t *out, const wchar_t *suffix)
{
    wchar_t root[FVM_PATH_MAX], ini[FVM_PATH_MAX], created[64], stamp[64];
    box_root(root, FVM_PATH_MAX);
    _snwprintf(ini, FVM_PATH_MAX, L"%ls\\box.ini", b->path);
    ini[FVM_PATH_MAX - 1] = 0;
    GetPrivateProfileStringW(L"box", L"created", L"", created, 64, ini);
    size_t n = 0;
    for (const wchar_t *c = created; *c && n < 63; c++)
        if (*c >= L'0' && *c <= L'9')
            stamp[n++] = *c;
    stamp[n] = 0;
    _snwprintf(out, FVM_PATH_MAX, L"%ls\\journals\\%ls-%ls.commit.journal%ls", root, b->wname, stamp, suffix);
    out[FVM_PATH_MAX - 1] = 0;
}

/* A commit journal inside the box folder (an older FVM's, or planted by a
 * box program) is never run: said, and left for the user. */
static void warn_box_journal(const box *b)
{
    wchar_t old[FVM_PATH_MAX];
    _snwprintf(old, FVM_PATH_MAX, L"%ls\\commit.journal", b->path);
    if (GetFileAttributesW(old) != INVALID_FILE_ATTRIBUTES)
        fprintf(stderr, "fvm: warning: box '%s' has a commit journal inside its folder (%ls): not run (journals "
                        "live in the FVM root's journals folder now; one in the box folder may have been written "
                        "by a program in the box); delete it\n", b->name, old);
}

static BOOL write_all(HANDLE h, const char *data, size_t len)
{
    DWORD wrote;
    return WriteFile(h, data, (DWORD)len, &wrote, NULL) && wrote == len;
}

/* Writes the plan as the journal, atomically. */
static int write_journal(const box *b, const sync_journal *j)
{
    char *text;
    size_t len;
    fvm_error err;
    if (sync_journal_format(j, &text, &len, &err) != FVM_OK)
        return cli_error("cannot write the commit journal: %s", err.message);
    wchar_t path[FVM_PATH_MAX], tmp[FVM_PATH_MAX];
    journal_path(b, path, L"");
    journal_path(b, tmp, L".tmp");
    wchar_t dir[FVM_PATH_MAX];
    wcscpy(dir, path);
    *wcsrchr(dir, L'\\') = 0;
    pack_make_dirs(dir);
    HANDLE h = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    BOOL ok = h != INVALID_HANDLE_VALUE && write_all(h, text, len) && FlushFileBuffers(h);
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    free(text);
    if (!ok || !MoveFileExW(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
        return cli_win_error(GetLastError(), "cannot write the commit journal of box '%s'", b->name);
    return 0;
}

/* Runs the steps not done yet, marking each done. */
static int apply_journal(commit_state *cs, index_rw *ir, sync_journal *j)
{
    wchar_t path[FVM_PATH_MAX];
    journal_path(cs->b, path, L"");
    HANDLE h = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return cli_win_error(GetLastError(), "cannot open the commit journal of box '%s'", cs->b->name);
    progress pg = {0};
    DWORD mode;
    pg.terminal = GetConsoleMode(GetStdHandle(STD_OUTPUT_HANDLE), &mode);
    pg.steps = j->count;
    int rc = 0;
    BOOL kept = FALSE;
    ULONGLONG last_line = GetTickCount64(), started = last_line;
    for (size_t i = 0; i < j->count && !rc; i++) {
        if (j->steps[i].done)
            continue;
        pg.step = i + 1;
        if ((g_force_copy || g_copying) && !g_ahead &&
            (j->steps[i].kind == SYNC_STEP_LAND || j->steps[i].kind == SYNC_STEP_LAND_AS))
            start_copy_ahead(cs, j, i);   /* at the first file step: its folders are made */
        rc = run_any_step(cs, ir, j, i, &pg, &kept);
        if (rc)
            break;
        timing("step", L"");
        char line[32];
        int n = snprintf(line, sizeof line, "done %lu\n", (unsigned long)i);
        if (!write_all(h, line, (size_t)n))
            rc = cli_win_error(GetLastError(), "cannot write the commit journal");
        step_point();
        /* Progress: a bar on a terminal, a plain line every second or so otherwise. */
        if (pg.terminal) {
            int width = 30, filled = (int)((i + 1) * width / j->count);
            printf("\r[%.*s%*s] %lu/%lu", filled, "##############################", width - filled, "",
                   (unsigned long)(i + 1), (unsigned long)j->count);
            fflush(stdout);
        } else if ((j->count > 50 || getenv("FVM_PROGRESS_MS")) &&
                   GetTickCount64() - last_line >= sync_progress_interval(1000)) {
            printf("progress: %lu/%lu steps\n", (unsigned long)(i + 1), (unsigned long)j->count);
            last_line = GetTickCount64();
        }
    }
    copy_ahead_end(g_ahead);   /* copies made for steps that did not run are deleted */
    g_ahead = NULL;
    if (pg.terminal)
        printf("\n");
    printf("applied %lu steps in %llu ms\n", (unsigned long)j->count, (unsigned long long)(GetTickCount64() - started));
    CloseHandle(h);
    if (!rc && !DeleteFileW(path))
        rc = cli_win_error(GetLastError(), "cannot delete the finished commit journal");
    if (!rc && kept)
        cs->conflicts++;
    return rc;
}

/* A journal left by a killed commit: finish it. */
static int finish_interrupted(commit_state *cs, index_rw *ir)
{
    wchar_t path[FVM_PATH_MAX], tmp[FVM_PATH_MAX];
    journal_path(cs->b, path, L"");
    journal_path(cs->b, tmp, L".tmp");
    DeleteFileW(tmp);   /* a plan never completed: nothing was done under it */
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return 0;
    LARGE_INTEGER size;
    GetFileSizeEx(h, &size);
    char *text = malloc((size_t)size.QuadPart + 1);
    DWORD got = 0;
    BOOL ok = text && ReadFile(h, text, (DWORD)size.QuadPart, &got, NULL) && got == size.QuadPart;
    CloseHandle(h);
    if (!ok) {
        free(text);
        return cli_error("cannot read the commit journal of box '%s'", cs->b->name);
    }
    sync_journal j;
    fvm_error err;
    if (sync_journal_parse(text, got, &j, &err) != FVM_OK) {
        free(text);
        return cli_error("box '%s': %s; the interrupted commit cannot be finished (inspect or delete %ls)",
                         cs->b->name, err.message, path);
    }
    free(text);
    printf("finishing an interrupted commit of box '%s' (%lu of %lu steps were done)\n", cs->b->name,
           (unsigned long)j.done_count, (unsigned long)j.count);
    int rc = cs->opts->dry_run ? 0 : apply_journal(cs, ir, &j);
    sync_journal_free(&j);
    return rc;
}

/* ---- the policy ---------------------------------------------------------- */

static const char *env_var(void *ctx, const char *name, size_t len)
{
    static char values[8][FVM_PATH_MAX * 3];
    static int next;
    wchar_t wname[128], wvalue[FVM_PATH_MAX];
    char aname[128];
    if (len >= sizeof aname)
        return NULL;
    memcpy(aname, name, len);
    aname[len] = 0;
    cli_wide(aname, wname, 128);
    DWORD n = GetEnvironmentVariableW(wname, wvalue, FVM_PATH_MAX);
    if (!n || n >= FVM_PATH_MAX)
        return NULL;
    char *out = values[next++ % 8];
    cli_utf8(wvalue, out, sizeof values[0]);
    return out;
}

static void print_diag(void *ctx, const char *file, unsigned line, unsigned column, const char *message)
{
    fprintf(ctx ? (FILE *)ctx : stderr, "%s:%u:%u: error: %s\n", file, line, column, message);
}

/* Reads a policy file and parses its [sync] rules, diagnostics to diag_out. */
static fvm_status parse_policy_file(const wchar_t *path, FILE *diag_out, sync_policy *out, fvm_error *err)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return fvm_error_set(err, FVM_E_IO, "cannot read the policy (error %lu)", (unsigned long)GetLastError());
    LARGE_INTEGER size;
    GetFileSizeEx(h, &size);
    char *text = size.QuadPart <= (64 << 20) ? malloc((size_t)size.QuadPart + 1) : NULL;
    DWORD got = 0;
    BOOL ok = text && ReadFile(h, text, (DWORD)size.QuadPart, &got, NULL);
    CloseHandle(h);
    if (!ok) {
        free(text);
        return fvm_error_set(err, FVM_E_IO, "cannot read the policy");
    }
    const wchar_t *leaf = wcsrchr(path, L'\\');
    char name[FVM_PATH_MAX * 3];
    cli_utf8(leaf ? leaf + 1 : path, name, sizeof name);
    fvm_status st = sync_policy_parse(name, text, got, env_var, NULL, print_diag, diag_out, out, err);
    free(text);
    return st;
}

int sync_load_policy(const box *b, sync_policy *out)
{
    wchar_t path[FVM_PATH_MAX];
    if (fvm_policy_box_path(b->path, path, FVM_PATH_MAX) != FVM_OK)
        return cli_error("the policy path of box '%s' is too long", b->name);
    fvm_error err;
    fvm_status st = parse_policy_file(path, stderr, out, &err);
    if (st == FVM_E_IO)
        return cli_error("box '%s': %s", b->name, err.message);
    if (st != FVM_OK)
        return cli_error("the [sync] rules of box '%s' have errors: %s", b->name, err.message);
    return 0;
}

unsigned sync_check_policy_file(const wchar_t *path, FILE *out)
{
    sync_policy p;
    fvm_error err;
    fvm_status st = parse_policy_file(path, out, &p, &err);
    if (st == FVM_OK) {
        sync_policy_free(&p);
        return 0;
    }
    return st == FVM_E_PARSE ? 1 : 0;   /* each error was printed; the file itself was checked by the caller */
}

/* ---- the verb ------------------------------------------------------------ */

static const char usage_text[] =
    "usage: fvm commit NAME [PATHS...] [--dry-run] [--ours | --theirs | --keep-both]";

static int parse_args(int argc, char **argv, commit_opts *o, const char **name)
{
    memset(o, 0, sizeof *o);
    *name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        resolution r = RESOLVE_NONE;
        if (!strcmp(a, "--dry-run") || !strcmp(a, "-n"))
            o->dry_run = TRUE;
        else if (!strcmp(a, "--ours"))
            r = RESOLVE_OURS;
        else if (!strcmp(a, "--theirs"))
            r = RESOLVE_THEIRS;
        else if (!strcmp(a, "--keep-both"))
            r = RESOLVE_KEEP_BOTH;
        else if (a[0] == '-')
            return cli_error("commit: unknown option '%s'\n%s", a, usage_text), EXIT_USAGE;
        else if (!*name)
            *name = a;
        else if (o->path_count < 16) {
            wchar_t w[WPATH];
            cli_wide(a, w, WPATH);
            if (!GetFullPathNameW(w, WPATH, o->paths[o->path_count], NULL))
                return cli_error("commit: bad path '%s'", a), EXIT_USAGE;
            size_t n = wcslen(o->paths[o->path_count]);
            while (n > 3 && o->paths[o->path_count][n - 1] == L'\\')
                o->paths[o->path_count][--n] = 0;
            o->path_count++;
        } else
            return cli_error("commit: at most 16 paths"), EXIT_USAGE;
        if (r != RESOLVE_NONE) {
            if (o->resolve != RESOLVE_NONE && o->resolve != r)
                return cli_error("commit: choose one of --ours, --theirs, --keep-both"), EXIT_USAGE;
            o->resolve = r;
        }
    }
    if (!*name)
        return cli_error("%s", usage_text), EXIT_USAGE;
    return 0;
}

static void free_items(item_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].nt);
        free(list->items[i].win);
        free(list->items[i].renamed_to);
    }
    free(list->items);
}

static int commit_changes(commit_state *cs, index_rw *ir)
{
    item_list list = {0};
    if (ir->ok && boxindex_foreach(&ir->idx, collect_item, &list)) {
        free_items(&list);
        return cli_error("out of memory");
    }
    qsort(list.items, list.count, sizeof *list.items, compare_items);
    sync_journal j = {0};
    int rc = 0;
    for (size_t i = 0; i < list.count && !rc; i++)
        if (selected(cs->opts, list.items[i].win))
            rc = plan_item(cs, &j, &list.items[i]);
    free_items(&list);
    if (!rc && !cs->opts->path_count) {   /* PATHS name files: the registry goes with a commit of everything */
        sync_hooks h = hooks_of(cs);
        rc = regcommit_plan(cs->b, ir->ok ? &ir->idx : NULL, &h, &j, &cs->planned);
    }
    if (!rc && j.count) {
        qsort(j.steps, j.count, sizeof *j.steps, compare_steps);
        for (size_t i = 0; i < j.count; i++)
            cs->planned += step_rank(&j.steps[i]) < 4;   /* registry steps were counted by regcommit_plan */
        if (!cs->opts->dry_run && !(rc = write_journal(cs->b, &j)))
            rc = apply_journal(cs, ir, &j);
    }
    sync_journal_free(&j);
    return rc;
}

int cmd_commit(int argc, char **argv)
{
    commit_opts *opts = calloc(1, sizeof *opts);
    const char *name = NULL;
    int rc = opts ? parse_args(argc, argv, opts, &name) : cli_error("out of memory");
    if (rc) {
        free(opts);
        return rc;
    }
    box b;
    if (!box_init(&b, name)) {
        free(opts);
        return EXIT_FAIL;
    }
    if (!box_exists(&b)) {
        free(opts);
        return cli_error("no box named '%s'", name);
    }
    char *kill_at = getenv("FVM_COMMIT_KILL_AT");
    g_kill_at = kill_at ? atol(kill_at) : -1;
    g_timing = getenv("FVM_COMMIT_TIMING") != NULL;
    char *force_copy = getenv("FVM_COMMIT_COPY");
    g_force_copy = force_copy && *force_copy && strcmp(force_copy, "0");

    /* Never under a running box: refuse, then hold the box lock (what `fvm
     * run` takes to start the box) so that nothing starts meanwhile. */
    DWORD procs = box_process_count(&b);
    if (procs) {
        free(opts);
        return cli_error("box '%s' is running (%lu processes): commit refuses a running box; stop it first "
                         "(fvm stop %s)", b.name, (unsigned long)procs, b.name);
    }
    if ((rc = box_stop_unless_running(&b, FALSE)) != 0) {
        free(opts);
        return rc;
    }
    wchar_t lock_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b.path, FVM_OBJ_LOCK, lock_name, FVM_OBJ_NAME_MAX);
    HANDLE lock = CreateMutexW(NULL, FALSE, lock_name);
    if (!lock) {
        free(opts);
        return cli_win_error(GetLastError(), "cannot create the lock of box '%s'", b.name);
    }
    WaitForSingleObject(lock, INFINITE);
    sync_reap_hold(&b);   /* no reaper of an earlier commit works on sync\\landed meanwhile */
    if (box_process_count(&b)) {
        rc = cli_error("box '%s' started meanwhile: commit refuses a running box", b.name);
        goto out_lock;
    }

    commit_state cs = {&b, opts};
    DWORD console_mode;   /* a console, not merely a character device (NUL is one) */
    cs.interactive = GetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), &console_mode);
    if ((rc = sync_load_policy(&b, &cs.policy)) != 0)
        goto out_lock;
    if (!opts->dry_run) {
        char why[256];
        if (fvm_audit_log_open(b.path, &cs.audit, why, sizeof why) == FVM_OK)
            cs.audit_open = TRUE;
        else
            fprintf(stderr, "fvm: warning: commits of box '%s' are not audited: %s\n", b.name, why);
    }
    index_rw ir;
    warn_box_journal(&b);
    if ((rc = sync_index_open(&b, &ir)) == 0) {
        rc = finish_interrupted(&cs, &ir);
        if (!rc)
            rc = commit_changes(&cs, &ir);
        sync_index_close(&ir);
    }
    if (cs.audit_open) {
        char why[256];
        if (fvm_audit_log_sync(&cs.audit, why, sizeof why) != FVM_OK)
            fprintf(stderr, "fvm: warning: audit log: %s\n", why);
        fvm_audit_log_close(&cs.audit);
    }
    sync_policy_free(&cs.policy);
    if (!rc) {
        if (opts->dry_run)
            printf("dry run: %u change%s would be committed, %u conflict%s, %u not allowed\n", cs.planned,
                   cs.planned == 1 ? "" : "s", cs.conflicts, cs.conflicts == 1 ? "" : "s", cs.refused);
        else
            printf("committed %u change%s of box '%s'; %u conflict%s, %u not allowed\n", cs.planned,
                   cs.planned == 1 ? "" : "s", b.name, cs.conflicts, cs.conflicts == 1 ? "" : "s", cs.refused);
        if (cs.conflicts)
            rc = EXIT_CONFLICT;
    }
out_lock:
    ReleaseMutex(lock);
    CloseHandle(lock);
    if (!opts->dry_run)
        sync_reap_detached(&b);   /* frees the box copies set aside, once this process has exited */
    free(opts);
    return rc;
}

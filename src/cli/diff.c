/* diff.c - fvm diff and fvm discard: the box's changes to the host.
 * (Files here; the registry's changes, printed after them, in regdiff.c.)
 *
 * The truth is two things: the box folder (<box>\drive\X\... and
 * <box>\unc\server\share\..., the box copies of host files) and the box
 * index (core/boxindex.c: what was copied, created, deleted, renamed).
 * `fvm diff` walks the box folder for A (added: no host file there) and C
 * (changed: a box copy of a host file), and the index for D (deleted or
 * renamed away); a file is judged by its index entry when it has one, else
 * by whether the host has it. The index is read from a private copy of its
 * file: a reader never writes to a box's index. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "core/boxindex.h"
#include "core/ntpath.h"
#include "core/sha256.h"

typedef struct change {
    char kind;            /* 'A', 'C', 'D' */
    wchar_t *path;        /* host path, Win32 form */
    BOOL has_base;        /* C: the host version the box copy started from */
    boxindex_base base;
} change;

typedef struct change_list {
    change *items;
    size_t count, cap;
} change_list;

static void add_change(change_list *list, char kind, const wchar_t *path, size_t len, BOOL directory)
{
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 64;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
    }
    wchar_t *copy = malloc((len + 2) * sizeof(wchar_t));
    memcpy(copy, path, len * sizeof(wchar_t));
    if (directory)
        copy[len++] = L'\\';
    copy[len] = 0;
    list->items[list->count].kind = kind;
    list->items[list->count].path = copy;
    list->items[list->count].has_base = FALSE;
    list->count++;
}

static int compare_changes(const void *a, const void *b)
{
    return _wcsicmp(((const change *)a)->path, ((const change *)b)->path);
}

/* The index, read into private memory (FILE_MAP_COPY). */
typedef struct index_copy {
    boxindex idx;
    void *view;
    BOOL ok;
} index_copy;

static void open_index_copy(const box *b, index_copy *ic)
{
    memset(ic, 0, sizeof *ic);
    for (unsigned n = 64; n >= 1; n--) {
        wchar_t name[FVM_PATH_MAX];
        _snwprintf(name, FVM_PATH_MAX, L"%ls\\index-%u.fvm", b->path, n);
        HANDLE file = CreateFileW(name, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                                  OPEN_EXISTING, 0, NULL);
        if (file == INVALID_HANDLE_VALUE)
            continue;
        LARGE_INTEGER size;
        HANDLE mapping = GetFileSizeEx(file, &size) && size.QuadPart > 0
                             ? CreateFileMappingW(file, NULL, PAGE_WRITECOPY, 0, 0, NULL) : NULL;
        ic->view = mapping ? MapViewOfFile(mapping, FILE_MAP_COPY, 0, 0, 0) : NULL;
        if (mapping)
            CloseHandle(mapping);
        CloseHandle(file);
        fvm_error err;
        if (ic->view && boxindex_open(&ic->idx, ic->view, (size_t)size.QuadPart, NULL, &err) == FVM_OK &&
            !boxindex_is_retired(&ic->idx)) {
            ic->ok = TRUE;
            return;
        }
        if (ic->view)
            fprintf(stderr, "fvm: warning: box index index-%u.fvm of box '%s' is damaged: %s\n", n, b->name,
                    err.message);
        if (ic->view)
            UnmapViewOfFile(ic->view);
        ic->view = NULL;
    }
}

/* \??\C:\x -> C:\x and \??\UNC\s\sh\x -> \\s\sh\x */
static size_t win32_form(const uint16_t *nt, size_t len, wchar_t *out, size_t cap)
{
    size_t at = 0;
    if (len >= 8 && !memcmp(nt, L"\\??\\UNC\\", 16)) {
        out[at++] = L'\\';
        out[at++] = L'\\';
        nt += 8;
        len -= 8;
    } else if (len >= 4 && !memcmp(nt, L"\\??\\", 8)) {
        nt += 4;
        len -= 4;
    }
    for (size_t i = 0; i < len && at + 1 < cap; i++)
        out[at++] = nt[i];
    out[at] = 0;
    return at;
}

static boxindex_state index_state_of(const index_copy *ic, const ntpath *path, uint16_t *key, boxindex_entry *e)
{
    size_t len;
    fvm_error err;
    if (!ic->ok || ntpath_key(path, key, BOXINDEX_MAX_KEY_UNITS + 1, &len, &err) != FVM_OK)
        return BOXINDEX_ABSENT;
    return boxindex_lookup(&ic->idx, ntpath_hash(path), key, len, e);
}

typedef struct walk {
    const index_copy *ic;
    change_list *list;
    ntpath *path;
    uint16_t *key;
} walk;

/* Walks a box folder whose host counterpart is host_nt (NT form). */
static void walk_box_folder(walk *w, const wchar_t *box_dir, const wchar_t *host_nt)
{
    wchar_t pattern[FVM_PATH_MAX * 2];
    _snwprintf(pattern, FVM_PATH_MAX * 2, L"%ls\\*", box_dir);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return;
    do {
        if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L"..") || wcsstr(fd.cFileName, L".fvm-copy-"))
            continue;
        wchar_t child_box[FVM_PATH_MAX * 2], child_host[FVM_PATH_MAX * 2];
        _snwprintf(child_box, FVM_PATH_MAX * 2, L"%ls\\%ls", box_dir, fd.cFileName);
        _snwprintf(child_host, FVM_PATH_MAX * 2, L"%ls\\%ls", host_nt, fd.cFileName);
        BOOL directory = (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
        static const ntpath_context nt = {.input = NTPATH_INPUT_NT};
        fvm_error err;
        if (ntpath_normalize((const uint16_t *)child_host, wcslen(child_host), &nt, w->path, &err) == FVM_OK) {
            boxindex_entry e;
            boxindex_state st = index_state_of(w->ic, w->path, w->key, &e);
            wchar_t display[FVM_PATH_MAX * 2];
            size_t n = win32_form(w->path->path, w->path->len, display, FVM_PATH_MAX * 2);
            BOOL on_host = GetFileAttributesW(display) != INVALID_FILE_ATTRIBUTES && st != BOXINDEX_CREATED;
            if (!directory) {
                add_change(w->list, on_host || st == BOXINDEX_COPIED ? 'C' : 'A', display, n, FALSE);
                if (st == BOXINDEX_COPIED && (e.flags & BOXINDEX_FLAG_HAS_BASE)) {
                    w->list->items[w->list->count - 1].has_base = TRUE;
                    w->list->items[w->list->count - 1].base = e.base;
                }
            }
            else if (!on_host && st != BOXINDEX_COPIED)
                add_change(w->list, 'A', display, n, TRUE);
        }
        if (directory)
            walk_box_folder(w, child_box, child_host);
    } while (FindNextFileW(h, &fd));
    FindClose(h);
}

typedef struct deleted_ctx {
    change_list *list;
    const index_copy *ic;
} deleted_ctx;

static int collect_deleted(void *ctx, const boxindex_entry *e)
{
    deleted_ctx *dc = ctx;
    if ((e->state != BOXINDEX_TOMBSTONE && e->state != BOXINDEX_RENAMED) || boxindex_key_is_registry(e->key, e->len))
        return 0;   /* registry keys are regdiff.c's */
    /* Only the outermost deleted folder: what is below it goes with it. */
    boxindex_entry hider;
    if (boxindex_hidden_by_ancestor(&dc->ic->idx, e->key, e->len, &hider))
        return 0;
    wchar_t display[FVM_PATH_MAX * 2];
    size_t n = win32_form(e->path, e->len, display, FVM_PATH_MAX * 2);
    add_change(dc->list, 'D', display, n, (e->flags & BOXINDEX_FLAG_DIRECTORY) != 0);
    return 0;
}

static int collect_changes(const box *b, const index_copy *ic, change_list *list)
{
    walk w = {ic, list, malloc(sizeof(ntpath)), malloc((BOXINDEX_MAX_KEY_UNITS + 1) * sizeof(uint16_t))};
    if (!w.path || !w.key)
        return cli_error("out of memory");

    /* <box>\drive\X -> \??\X: ; <box>\unc\server\share -> \??\UNC\server\share */
    wchar_t drives[FVM_PATH_MAX], pattern[FVM_PATH_MAX];
    _snwprintf(drives, FVM_PATH_MAX, L"%ls\\drive", b->path);
    _snwprintf(pattern, FVM_PATH_MAX, L"%ls\\*", drives);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (fd.cFileName[0] == L'.' || fd.cFileName[1])
                continue;
            wchar_t box_dir[FVM_PATH_MAX], host_nt[16];
            _snwprintf(box_dir, FVM_PATH_MAX, L"%ls\\%ls", drives, fd.cFileName);
            _snwprintf(host_nt, 16, L"\\??\\%lc:", fd.cFileName[0]);
            walk_box_folder(&w, box_dir, host_nt);
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    wchar_t unc[FVM_PATH_MAX];
    _snwprintf(unc, FVM_PATH_MAX, L"%ls\\unc", b->path);
    _snwprintf(pattern, FVM_PATH_MAX, L"%ls\\*", unc);
    h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (fd.cFileName[0] == L'.')
                continue;
            wchar_t server_dir[FVM_PATH_MAX], share_pattern[FVM_PATH_MAX];
            _snwprintf(server_dir, FVM_PATH_MAX, L"%ls\\%ls", unc, fd.cFileName);
            _snwprintf(share_pattern, FVM_PATH_MAX, L"%ls\\*", server_dir);
            WIN32_FIND_DATAW sd;
            HANDLE sh = FindFirstFileW(share_pattern, &sd);
            if (sh == INVALID_HANDLE_VALUE)
                continue;
            do {
                if (sd.cFileName[0] == L'.')
                    continue;
                wchar_t box_dir[FVM_PATH_MAX], host_nt[FVM_PATH_MAX];
                _snwprintf(box_dir, FVM_PATH_MAX, L"%ls\\%ls", server_dir, sd.cFileName);
                _snwprintf(host_nt, FVM_PATH_MAX, L"\\??\\UNC\\%ls\\%ls", fd.cFileName, sd.cFileName);
                walk_box_folder(&w, box_dir, host_nt);
            } while (FindNextFileW(sh, &sd));
            FindClose(sh);
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    if (ic->ok) {
        deleted_ctx dc = {list, ic};
        boxindex_foreach(&ic->idx, collect_deleted, &dc);
    }
    free(w.path);
    free(w.key);
    return 0;
}

int cmd_diff(int argc, char **argv)
{
    const char *name = NULL;
    BOOL show_base = FALSE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--base"))
            show_base = TRUE;
        else if (!name)
            name = argv[i];
        else
            return cli_error("usage: fvm diff NAME [--base]"), EXIT_USAGE;
    }
    if (!name)
        return cli_error("usage: fvm diff NAME [--base]"), EXIT_USAGE;
    box b;
    if (!box_init(&b, name))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", name);
    change_list list = {0};
    index_copy ic;
    open_index_copy(&b, &ic);
    int rc = collect_changes(&b, &ic, &list);
    if (rc)
        return rc;
    qsort(list.items, list.count, sizeof *list.items, compare_changes);
    for (size_t i = 0; i < list.count; i++) {
        if (i && !_wcsicmp(list.items[i].path, list.items[i - 1].path))
            continue;
        char path[FVM_PATH_MAX * 6];
        cli_utf8(list.items[i].path, path, sizeof path);
        printf("%c %s", list.items[i].kind, path);
        /* A host file that moved on since the box copied it: commit stops there. */
        if (list.items[i].has_base && sync_host_changed(list.items[i].path, &list.items[i].base))
            printf("  (conflict: the host file changed since the box copied it)");
        if (show_base && list.items[i].has_base) {
            /* The host version the box copy started from: what a commit
             * compares the host with before it writes. */
            static const uint8_t zero[32];
            char hex[65] = "unknown";
            if (memcmp(list.items[i].base.content_hash, zero, 32))
                sha256_to_hex(list.items[i].base.content_hash, hex);
            printf("  [base size=%llu sha256=%s]", (unsigned long long)list.items[i].base.size, hex);
        }
        printf("\n");
    }
    for (size_t i = 0; i < list.count; i++)
        free(list.items[i].path);
    free(list.items);
    /* Then the registry's changes (regdiff.c). */
    rc = regdiff_print(&b, ic.ok ? &ic.idx : NULL);
    if (ic.ok)
        UnmapViewOfFile(ic.view);
    return rc;
}

int cmd_discard(int argc, char **argv)
{
    box b;
    BOOL force;
    int rc = box_parse_name_force(argc, argv, "fvm discard NAME [--force]", &b, &force);
    if (rc || (rc = box_stop_unless_running(&b, force)) != 0)
        return rc;
    rc = box_discard_delta(&b);
    if (rc == 0)
        printf("discarded the changes of box '%s'\n", b.name);
    return rc;
}

int cmd_check(int argc, char **argv)
{
    if (argc != 2)
        return cli_error("usage: fvm check NAME"), EXIT_USAGE;
    box b;
    if (!box_init(&b, argv[1]))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box named '%s'", argv[1]);
    int checked = 0, bad = 0;
    for (unsigned n = 1; n <= 64; n++) {
        wchar_t name[FVM_PATH_MAX];
        _snwprintf(name, FVM_PATH_MAX, L"%ls\\index-%u.fvm", b.path, n);
        HANDLE file = CreateFileW(name, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                                  OPEN_EXISTING, 0, NULL);
        if (file == INVALID_HANDLE_VALUE)
            continue;
        HANDLE mapping = CreateFileMappingW(file, NULL, PAGE_READONLY, 0, 0, NULL);
        LARGE_INTEGER size;
        const void *view = mapping ? MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0) : NULL;
        GetFileSizeEx(file, &size);
        fvm_error err;
        checked++;
        if (!view) {
            bad++;
            cli_win_error(GetLastError(), "cannot read index-%u.fvm of box '%s'", n, b.name);
        } else if (boxindex_validate(view, (size_t)size.QuadPart, &err) != FVM_OK) {
            bad++;
            printf("index-%u.fvm: DAMAGED: %s\n", n, err.message);
        } else {
            boxindex idx;
            boxindex_stats st;
            memset(&st, 0, sizeof st);
            void *copy = malloc((size_t)size.QuadPart);
            if (copy) {
                memcpy(copy, view, (size_t)size.QuadPart);
                if (boxindex_open(&idx, copy, (size_t)size.QuadPart, NULL, &err) == FVM_OK)
                    boxindex_stats_get(&idx, &st);
                free(copy);
            }
            printf("index-%u.fvm: OK (%lu entries, %lu deleted or renamed%s)\n", n, (unsigned long)st.entries,
                   (unsigned long)st.hidden, st.retired ? ", retired" : "");
        }
        if (view)
            UnmapViewOfFile(view);
        if (mapping)
            CloseHandle(mapping);
        CloseHandle(file);
    }
    if (!checked)
        printf("no index yet (the box has not run)\n");
    return bad ? EXIT_FAIL : 0;
}

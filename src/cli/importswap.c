/* importswap.c - the last part of an incremental `fvm import`: the staged
 * files swapped into the box, all or nothing, even across a kill.
 *
 * An incremental package updates a box that exists. pack.c writes all of
 * it first into <box>\sync\import (a staging copy of the box folder's
 * layout: policy.ini, registry.dat, index-1.fvm, drive\...). Only then are
 * the files swapped in, by renames within the box folder: each box file
 * replaced or no longer known to the new index is moved to
 * <box>\sync\import-old, then the staged file is moved into place.
 *
 * Every move is journalled before it is made, in <box>\sync\import.journal
 * (UTF-8 lines: "M\tFROM\tTO" a move, "D\tDIR" a folder made, "C" the swap
 * complete). Undoing reads the journal back and walks it newest first: a
 * move is undone when its target exists and its source does not (so a
 * journalled move the process never made is skipped), a folder made is
 * removed. The same undo serves a failed move (a full disk) in this
 * process and a process killed half way: the next fvm verb that opens the
 * box (box_exists, cli/box.c) finds the journal and either finishes the
 * swap (it was complete: "C" written; only the clean-up is left) or rolls
 * it back, so the box is either the old state or the new one, whole.
 * The journal is not flushed: a killed process loses nothing the page
 * cache holds; power loss is not covered (as for commit's journal).
 *
 * FVM_IMPORT_PAUSE_AT=K (tests): at the K-th point of the swap (after each
 * move and each folder made) the process prints "paused" and waits
 * forever, to be killed from outside; FVM_IMPORT_PAUSE_AT=complete pauses
 * right after the "C" line, before the clean-up. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "core/boxindex.h"
#include "core/ntpath.h"

#define WPATH (FVM_PATH_MAX * 2)

typedef struct swap {
    const box *b;
    wchar_t stage[FVM_PATH_MAX], old[FVM_PATH_MAX], journal[FVM_PATH_MAX];
    HANDLE jh;
    boxindex idx;                /* the new index */
    BOOL have_idx, failed;
    char problem[WPATH * 3 + 64];
} swap;

static long g_pause_at = -1, g_point_no;
static BOOL g_pause_complete;

static void pause_now(void)
{
    printf("paused\n");
    fflush(stdout);
    for (;;)
        Sleep(INFINITE);
}

static void pause_point(void)
{
    if (g_pause_at >= 0 && ++g_point_no == g_pause_at)
        pause_now();
}

static void journal_path_of(const box *b, wchar_t *out)
{
    _snwprintf(out, FVM_PATH_MAX, L"%ls\\sync\\import.journal", b->path);
    out[FVM_PATH_MAX - 1] = 0;
}

static void swap_failed(swap *sw, const char *what, const wchar_t *path)
{
    if (sw->failed)
        return;
    sw->failed = TRUE;
    char p[WPATH * 3];
    cli_utf8(path, p, sizeof p);
    DWORD e = GetLastError();
    snprintf(sw->problem, sizeof sw->problem, "%s %s (error %lu)", what, p, (unsigned long)e);
}

/* One line appended to the journal, in one write (a kill cuts it whole or not at all). */
static BOOL journal_line(swap *sw, char kind, const wchar_t *a, const wchar_t *b)
{
    static char line[WPATH * 6 + 8];
    char pa[WPATH * 3], pb[WPATH * 3];
    cli_utf8(a ? a : L"", pa, sizeof pa);
    cli_utf8(b ? b : L"", pb, sizeof pb);
    int n = b ? snprintf(line, sizeof line, "%c\t%s\t%s\n", kind, pa, pb)
              : a ? snprintf(line, sizeof line, "%c\t%s\n", kind, pa) : snprintf(line, sizeof line, "%c\n", kind);
    DWORD wrote;
    return n > 0 && (size_t)n < sizeof line && WriteFile(sw->jh, line, (DWORD)n, &wrote, NULL) && wrote == (DWORD)n;
}

/* from -> to, journalled first. */
static BOOL move_one(swap *sw, const wchar_t *from, const wchar_t *to)
{
    if (!journal_line(sw, 'M', from, to))
        return FALSE;
    if (pack_injected_failure() || !MoveFileExW(from, to, 0))
        return FALSE;
    pause_point();
    return TRUE;
}

static BOOL make_dir(swap *sw, const wchar_t *dir)
{
    if (!journal_line(sw, 'D', dir, NULL) || !CreateDirectoryW(dir, NULL))
        return FALSE;
    pause_point();
    return TRUE;
}

/* The box file at path (below the box folder) goes to import-old. */
static void move_away(swap *sw, const wchar_t *path)
{
    if (sw->failed)
        return;
    wchar_t to[WPATH], parent[WPATH];
    _snwprintf(to, WPATH, L"%ls\\%ls", sw->old, path + wcslen(sw->b->path) + 1);
    to[WPATH - 1] = 0;
    _snwprintf(parent, WPATH, L"%ls", to);
    parent[WPATH - 1] = 0;
    *wcsrchr(parent, L'\\') = 0;
    if (!pack_make_dirs(parent) || !move_one(sw, path, to))
        swap_failed(sw, "cannot move aside", path);
}

/* Box files the new index does not know are no longer the box's. */
static void prune(swap *sw, const wchar_t *box_dir, const wchar_t *host_nt)
{
    wchar_t pattern[WPATH];
    _snwprintf(pattern, WPATH, L"%ls\\*", box_dir);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return;
    do {
        if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
            continue;
        wchar_t child_box[WPATH], child_host[WPATH];
        _snwprintf(child_box, WPATH, L"%ls\\%ls", box_dir, fd.cFileName);
        _snwprintf(child_host, WPATH, L"%ls\\%ls", host_nt, fd.cFileName);
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
            prune(sw, child_box, child_host);
            continue;
        }
        static ntpath path;
        static uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];
        static const ntpath_context ctx = {.input = NTPATH_INPUT_NT};
        size_t len;
        fvm_error err;
        if (ntpath_normalize((const uint16_t *)child_host, wcslen(child_host), &ctx, &path, &err) == FVM_OK &&
            ntpath_key(&path, key, BOXINDEX_MAX_KEY_UNITS + 1, &len, &err) == FVM_OK) {
            boxindex_state st = boxindex_lookup(&sw->idx, ntpath_hash(&path), key, len, NULL);
            if (st != BOXINDEX_COPIED && st != BOXINDEX_CREATED)
                move_away(sw, child_box);
        }
    } while (!sw->failed && FindNextFileW(h, &fd));
    FindClose(h);
}

/* Every staged file into the box (what it replaces moved aside first). */
static void place(swap *sw, const wchar_t *staged_dir, const wchar_t *box_dir)
{
    wchar_t pattern[WPATH];
    _snwprintf(pattern, WPATH, L"%ls\\*", staged_dir);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return;
    do {
        if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
            continue;
        wchar_t from[WPATH], to[WPATH];
        _snwprintf(from, WPATH, L"%ls\\%ls", staged_dir, fd.cFileName);
        _snwprintf(to, WPATH, L"%ls\\%ls", box_dir, fd.cFileName);
        DWORD there = GetFileAttributesW(to);
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
            if (there == INVALID_FILE_ATTRIBUTES) {
                if (!make_dir(sw, to))
                    swap_failed(sw, "cannot create the folder", to);
            } else if (!(there & FILE_ATTRIBUTE_DIRECTORY)) {
                move_away(sw, to);
                if (!sw->failed && !make_dir(sw, to))
                    swap_failed(sw, "cannot create the folder", to);
            }
            if (!sw->failed)
                place(sw, from, to);
            continue;
        }
        if (there != INVALID_FILE_ATTRIBUTES)
            move_away(sw, to);   /* a folder the file replaces goes aside whole */
        if (sw->failed)
            break;
        if (!move_one(sw, from, to))
            swap_failed(sw, "cannot move into place", to);
    } while (!sw->failed && FindNextFileW(h, &fd));
    FindClose(h);
}

/* ---- the journal read back ------------------------------------------------ */

typedef struct entry {
    char kind;
    wchar_t *a, *b;
} entry;

typedef struct journal {
    entry *e;
    size_t count;
    BOOL complete;
} journal;

static void journal_free(journal *j)
{
    for (size_t i = 0; i < j->count; i++) {
        free(j->e[i].a);
        free(j->e[i].b);
    }
    free(j->e);
    memset(j, 0, sizeof *j);
}

static wchar_t *wide_of(const char *s, size_t n)
{
    char tmp[WPATH * 3];
    if (n >= sizeof tmp)
        return NULL;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    wchar_t *w = malloc(WPATH * sizeof(wchar_t));
    if (w)
        cli_wide(tmp, w, WPATH);
    return w;
}

/* Every path an import moves is below the box folder (the box's files,
 * sync\import, sync\import-old). The box folder is writable by the box's
 * own programs, so a journal naming anything else (or "." or ".." parts)
 * is not one fvm wrote: the unboxed fvm.exe must not move host files for
 * a box. */
static BOOL in_box(const box *b, const wchar_t *p)
{
    size_t n = wcslen(b->path);
    if (_wcsnicmp(p, b->path, n) || p[n] != L'\\')
        return FALSE;
    for (const wchar_t *part = p + n; *part; ) {
        part++;   /* past the backslash */
        const wchar_t *end = wcschr(part, L'\\');
        size_t len = end ? (size_t)(end - part) : wcslen(part);
        if (!len || (len == 1 && part[0] == L'.') || (len == 2 && part[0] == L'.' && part[1] == L'.') ||
            wmemchr(part, L':', len))
            return FALSE;
        part += len;
    }
    return TRUE;
}

/* Reads the journal; a last line cut short (no newline) is ignored: the
 * step it announced was never started. FALSE: unreadable, or a path in it
 * outside the box folder. */
static BOOL journal_read(const box *b, const wchar_t *path, journal *j)
{
    memset(j, 0, sizeof *j);
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    LARGE_INTEGER size;
    char *text = NULL;
    DWORD got = 0;
    BOOL ok = GetFileSizeEx(h, &size) && size.QuadPart < (256 << 20) &&
              (text = malloc((size_t)size.QuadPart + 1)) != NULL &&
              ReadFile(h, text, (DWORD)size.QuadPart, &got, NULL) && got == (DWORD)size.QuadPart;
    CloseHandle(h);
    if (!ok) {
        free(text);
        return FALSE;
    }
    size_t cap = 0;
    for (char *line = text, *end; (end = memchr(line, '\n', (size_t)(text + got - line))) != NULL; line = end + 1) {
        if (end == line)
            continue;
        if (line[0] == 'C') {
            j->complete = TRUE;
            continue;
        }
        char *tab1 = memchr(line, '\t', (size_t)(end - line));
        if (!tab1 || (line[0] != 'M' && line[0] != 'D')) {
            ok = FALSE;
            break;
        }
        char *tab2 = line[0] == 'M' ? memchr(tab1 + 1, '\t', (size_t)(end - tab1 - 1)) : NULL;
        if (line[0] == 'M' && !tab2) {
            ok = FALSE;
            break;
        }
        if (j->count == cap) {
            cap = cap ? cap * 2 : 64;
            entry *grown = realloc(j->e, cap * sizeof *grown);
            if (!grown) {
                ok = FALSE;
                break;
            }
            j->e = grown;
        }
        entry *e = &j->e[j->count++];
        e->kind = line[0];
        e->a = wide_of(tab1 + 1, (size_t)((tab2 ? tab2 : end) - tab1 - 1));
        e->b = tab2 ? wide_of(tab2 + 1, (size_t)(end - tab2 - 1)) : NULL;
        if (!e->a || (tab2 && !e->b) || !in_box(b, e->a) || (e->b && !in_box(b, e->b))) {
            ok = FALSE;
            break;
        }
    }
    free(text);
    if (!ok)
        journal_free(j);
    return ok;
}

static BOOL exists(const wchar_t *path)
{
    return GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES;
}

/* Undoes the journal's moves and folders, newest first. FALSE if one could not be undone. */
static BOOL journal_roll_back(const journal *j)
{
    BOOL ok = TRUE;
    for (size_t i = j->count; i-- > 0;) {
        const entry *e = &j->e[i];
        if (e->kind == 'M') {
            if (exists(e->b) && !exists(e->a))
                ok &= MoveFileExW(e->b, e->a, 0);
        } else if (e->kind == 'D') {
            if (exists(e->a))
                ok &= RemoveDirectoryW(e->a);
        }
    }
    return ok;
}

/* After a finished or undone swap: import-old and the staging gone, then the journal. */
static void clean_up(const box *b, const wchar_t *journal_file)
{
    wchar_t dir[FVM_PATH_MAX];
    _snwprintf(dir, FVM_PATH_MAX, L"%ls\\sync\\import-old", b->path);
    pack_remove_tree(dir);
    _snwprintf(dir, FVM_PATH_MAX, L"%ls\\sync\\import", b->path);
    pack_remove_tree(dir);
    DeleteFileW(journal_file);
}

int import_recover(const box *b)
{
    wchar_t path[FVM_PATH_MAX];
    journal_path_of(b, path);
    if (!exists(path))
        return 0;
    /* The box lock, as import holds it: no box process starts meanwhile
     * (a killed import's lock is abandoned, and so free). */
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(b->path, FVM_OBJ_LOCK, name, FVM_OBJ_NAME_MAX);
    HANDLE lock = CreateMutexW(NULL, FALSE, name);
    if (lock)
        WaitForSingleObject(lock, INFINITE);
    int rc = 0;
    journal j;
    if (!exists(path)) {
        /* another fvm finished it while this one waited */
    } else if (!journal_read(b, path, &j)) {
        rc = cli_error("box '%s': the journal of an interrupted import (%ls) cannot be read, or names a path outside "
                       "the box: nothing was moved; its old files are in sync\\import-old", b->name, path);
    } else if (j.complete) {
        clean_up(b, path);
        fprintf(stderr, "fvm: box '%s': finished an interrupted import (its files were all in place)\n", b->name);
        journal_free(&j);
    } else if (journal_roll_back(&j)) {
        clean_up(b, path);
        fprintf(stderr, "fvm: box '%s': rolled back an interrupted import: the box is as it was before it\n",
                b->name);
        journal_free(&j);
    } else {
        rc = cli_win_error(GetLastError(), "box '%s': an interrupted import could not be rolled back (the old files "
                           "are in sync\\import-old; the journal %ls is kept)", b->name, path);
        journal_free(&j);
    }
    if (lock) {
        ReleaseMutex(lock);
        CloseHandle(lock);
    }
    return rc;
}

int import_swap_in(const box *b, const wchar_t *stage, uint8_t *index, size_t index_len, const char *file)
{
    char *pause_at = getenv("FVM_IMPORT_PAUSE_AT");
    g_pause_complete = pause_at && !strcmp(pause_at, "complete");
    g_pause_at = pause_at && !g_pause_complete ? atol(pause_at) : -1;
    swap *sw = calloc(1, sizeof *sw);
    if (!sw)
        return cli_error("out of memory");
    sw->b = b;
    wcscpy(sw->stage, stage);
    _snwprintf(sw->old, FVM_PATH_MAX, L"%ls\\sync\\import-old", b->path);
    journal_path_of(b, sw->journal);
    fvm_error err;
    sw->have_idx = index && boxindex_open(&sw->idx, index, index_len, NULL, &err) == FVM_OK;
    sw->jh = CreateFileW(sw->journal, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, 0, NULL);
    if (sw->jh == INVALID_HANDLE_VALUE) {
        int rc = cli_win_error(GetLastError(), "cannot write the import journal %ls; the box is as it was",
                               sw->journal);
        free(sw);
        return rc;
    }
    if (!CreateDirectoryW(sw->old, NULL))
        swap_failed(sw, "cannot create", sw->old);
    /* The box's index files (any generation) make way for the staged index-1.fvm. */
    wchar_t pattern[FVM_PATH_MAX], path[FVM_PATH_MAX];
    _snwprintf(pattern, FVM_PATH_MAX, L"%ls\\index-*.fvm", b->path);
    WIN32_FIND_DATAW fd;
    HANDLE h = index && !sw->failed ? FindFirstFileW(pattern, &fd) : INVALID_HANDLE_VALUE;
    if (h != INVALID_HANDLE_VALUE) {
        do {
            _snwprintf(path, FVM_PATH_MAX, L"%ls\\%ls", b->path, fd.cFileName);
            move_away(sw, path);
        } while (!sw->failed && FindNextFileW(h, &fd));
        FindClose(h);
    }
    if (sw->have_idx && !sw->failed) {
        wchar_t dir[WPATH];
        _snwprintf(dir, WPATH, L"%ls\\drive", b->path);
        _snwprintf(pattern, FVM_PATH_MAX, L"%ls\\*", dir);
        h = FindFirstFileW(pattern, &fd);
        if (h != INVALID_HANDLE_VALUE) {
            do {
                if (fd.cFileName[0] == L'.' || fd.cFileName[1])
                    continue;
                wchar_t box_dir[WPATH], host_nt[16];
                _snwprintf(box_dir, WPATH, L"%ls\\%ls", dir, fd.cFileName);
                _snwprintf(host_nt, 16, L"\\??\\%lc:", fd.cFileName[0]);
                prune(sw, box_dir, host_nt);
            } while (!sw->failed && FindNextFileW(h, &fd));
            FindClose(h);
        }
    }
    if (!sw->failed)
        place(sw, sw->stage, b->path);
    if (!sw->failed && !journal_line(sw, 'C', NULL, NULL))
        swap_failed(sw, "cannot write the journal", sw->journal);
    CloseHandle(sw->jh);
    int rc = 0;
    if (sw->failed) {
        journal j;
        BOOL undone = journal_read(b, sw->journal, &j) && journal_roll_back(&j);
        if (undone)
            journal_free(&j);
        rc = undone ? cli_error("import of '%s' failed: %s; the box is as it was", file, sw->problem)
                    : cli_error("import of '%s' failed: %s, and undoing it failed too: the box's old files are in "
                                "%ls (the next fvm command on the box tries again)", file, sw->problem, sw->old);
        if (undone)
            clean_up(b, sw->journal);
    } else {
        if (g_pause_complete)
            pause_now();
        clean_up(b, sw->journal);
    }
    free(sw);
    return rc;
}

/* reap.c - freeing the box copies a commit set aside (<box>\sync\landed).
 *
 * A commit that lands files by copying (another volume) renames each box
 * copy aside instead of deleting it (commit.c says why: freeing a large
 * file costs about what copying it does here). `fvm __reap NAME`, started
 * detached when the commit ends, frees them: each file truncated to zero
 * first (under Wine the truncation runs in this process, not in the
 * wineserver, which an unlink of a large file would hold up for every
 * process), then deleted, then the folder removed. It holds the box's reap
 * mutex (the box lock's name + ".reap") meanwhile; commit, rm and discard
 * hold it for their whole run (sync_reap_hold), so a reaper and they never
 * work on the box at once, whichever starts first (a reaper that starts
 * after rm finds nothing). Files a killed reaper left are freed by the
 * next one. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

static HANDLE reap_mutex(const box *b)
{
    wchar_t name[FVM_OBJ_NAME_MAX + 8];
    fvm_box_object_name(b->path, FVM_OBJ_LOCK, name, FVM_OBJ_NAME_MAX);
    wcscat(name, L".reap");
    return CreateMutexW(NULL, FALSE, name);
}

void sync_reap_hold(const box *b)
{
    static HANDLE held;
    if (held)
        return;
    HANDLE m = reap_mutex(b);
    if (!m)
        return;
    DWORD w = WaitForSingleObject(m, 120000);
    if (w == WAIT_OBJECT_0 || w == WAIT_ABANDONED)
        held = m;   /* until this process exits */
    else
        CloseHandle(m);
}

static BOOL free_file(const wchar_t *path)
{
    SetFileAttributesW(path, FILE_ATTRIBUTE_NORMAL);
    HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h != INVALID_HANDLE_VALUE) {
        FILE_END_OF_FILE_INFO eof;
        eof.EndOfFile.QuadPart = 0;
        SetFileInformationByHandle(h, FileEndOfFileInfo, &eof, sizeof eof);
        CloseHandle(h);
    }
    return DeleteFileW(path);
}

/* Frees every file in <box>\sync\landed and the folder; FALSE if one stays. */
static BOOL free_landed(const box *b)
{
    wchar_t dir[FVM_PATH_MAX], pattern[FVM_PATH_MAX], path[FVM_PATH_MAX];
    _snwprintf(dir, FVM_PATH_MAX, L"%ls\\sync\\landed", b->path);
    _snwprintf(pattern, FVM_PATH_MAX, L"%ls\\*", dir);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return TRUE;
    BOOL ok = TRUE;
    do {
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
            continue;
        _snwprintf(path, FVM_PATH_MAX, L"%ls\\%ls", dir, fd.cFileName);
        ok &= free_file(path);
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    return RemoveDirectoryW(dir) && ok;
}

void sync_reap_detached(const box *b)
{
    wchar_t dir[FVM_PATH_MAX];
    _snwprintf(dir, FVM_PATH_MAX, L"%ls\\sync\\landed", b->path);
    if (GetFileAttributesW(dir) == INVALID_FILE_ATTRIBUTES)
        return;
    wchar_t exe[FVM_PATH_MAX], cmdline[FVM_PATH_MAX + 64];
    cli_exe_dir(exe, FVM_PATH_MAX);
    _snwprintf(cmdline, sizeof cmdline / sizeof cmdline[0], L"\"%ls\\fvm.exe\" __reap %ls", exe, b->wname);
    cmdline[sizeof cmdline / sizeof cmdline[0] - 1] = 0;
    STARTUPINFOW si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (cli_create_process(NULL, cmdline, FALSE, DETACHED_PROCESS | CREATE_NO_WINDOW, NULL, &si, &pi)) {
        CloseHandle(pi.hThread);
        CloseHandle(pi.hProcess);
        return;
    }
    /* No second process: freed here, the commit's caller waits for it. */
    HANDLE m = reap_mutex(b);
    if (m)
        WaitForSingleObject(m, 120000);
    free_landed(b);
    if (m) {
        ReleaseMutex(m);
        CloseHandle(m);
    }
}

int cmd_reap(int argc, char **argv)
{
    if (argc != 2)
        return cli_error("usage: fvm __reap NAME"), EXIT_USAGE;
    box b;
    if (!box_init(&b, argv[1]))
        return EXIT_FAIL;
    HANDLE m = reap_mutex(&b);
    if (m)
        WaitForSingleObject(m, INFINITE);
    BOOL ok = free_landed(&b);
    if (m) {
        ReleaseMutex(m);
        CloseHandle(m);
    }
    return ok ? 0 : EXIT_FAIL;
}

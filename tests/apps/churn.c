/* churn.c - churn.exe: many processes of one box changing one folder at once.
 *
 *   churn.exe spawn DIR WORKERS N   start WORKERS copies of "churn.exe work DIR ID N"
 *                                   and wait for all; exit 0 if all exited 0
 *   churn.exe work DIR ID N         for i < N: create w<ID>_<i>.txt with "<ID> <i>";
 *                                   i%3==1: rename it to r<ID>_<i>.txt; i%3==2: delete it.
 *                                   Then, on host files h<ID>_0..2 (made by the test):
 *                                   delete h<ID>_0, rename h<ID>_1 to hr<ID>_1, append to h<ID>_2.
 *
 * Each worker has its own names in the shared folder, so the final content
 * does not depend on the interleaving: the test compares it with the result
 * of the same operations run one after the other. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static int fail(const char *what, const wchar_t *name)
{
    printf("churn: %s %ls failed: %lu\n", what, name, (unsigned long)GetLastError());
    return 1;
}

static int work(const wchar_t *dir, int id, int n)
{
    wchar_t a[MAX_PATH], b[MAX_PATH];
    for (int i = 0; i < n; i++) {
        _snwprintf(a, MAX_PATH, L"%ls\\w%d_%d.txt", dir, id, i);
        HANDLE h = CreateFileW(a, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("create", a);
        char text[32];
        DWORD len = (DWORD)snprintf(text, sizeof text, "%d %d", id, i), written;
        WriteFile(h, text, len, &written, NULL);
        CloseHandle(h);
        if (i % 3 == 1) {
            _snwprintf(b, MAX_PATH, L"%ls\\r%d_%d.txt", dir, id, i);
            if (!MoveFileExW(a, b, 0))
                return fail("rename", a);
        } else if (i % 3 == 2 && !DeleteFileW(a)) {
            return fail("delete", a);
        }
    }
    _snwprintf(a, MAX_PATH, L"%ls\\h%d_0.txt", dir, id);
    if (!DeleteFileW(a))
        return fail("delete host", a);
    _snwprintf(a, MAX_PATH, L"%ls\\h%d_1.txt", dir, id);
    _snwprintf(b, MAX_PATH, L"%ls\\hr%d_1.txt", dir, id);
    if (!MoveFileExW(a, b, 0))
        return fail("rename host", a);
    _snwprintf(a, MAX_PATH, L"%ls\\h%d_2.txt", dir, id);
    HANDLE h = CreateFileW(a, FILE_APPEND_DATA, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return fail("append host", a);
    DWORD written;
    WriteFile(h, "+", 1, &written, NULL);
    CloseHandle(h);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc == 5 && !wcscmp(argv[1], L"work"))
        return work(argv[2], _wtoi(argv[3]), _wtoi(argv[4]));
    if (argc != 5 || wcscmp(argv[1], L"spawn"))
        return 2;
    int workers = _wtoi(argv[3]);
    HANDLE procs[64];
    wchar_t self[MAX_PATH], cmd[MAX_PATH * 2];
    GetModuleFileNameW(NULL, self, MAX_PATH);
    for (int id = 0; id < workers && id < 64; id++) {
        _snwprintf(cmd, MAX_PATH * 2, L"\"%ls\" work \"%ls\" %d %ls", self, argv[2], id, argv[4]);
        STARTUPINFOW si = {sizeof si};
        PROCESS_INFORMATION pi;
        if (!CreateProcessW(self, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
            return fail("spawn", self);
        CloseHandle(pi.hThread);
        procs[id] = pi.hProcess;
    }
    WaitForMultipleObjects((DWORD)workers, procs, TRUE, INFINITE);
    int rc = 0;
    for (int id = 0; id < workers; id++) {
        DWORD code = 1;
        GetExitCodeProcess(procs[id], &code);
        rc |= code != 0;
        CloseHandle(procs[id]);
    }
    printf("churn: %d workers done, rc=%d\n", workers, rc);
    return rc;
}

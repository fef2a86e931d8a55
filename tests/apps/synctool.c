/* synctool.c - synctool.exe: small file operations for the sync tests and
 * benchmark (fvm commit/export), run in a box or on the host.
 *
 *   synctool poke PATH OFFSET TEXT   write TEXT at OFFSET of an existing file, in place (no truncation)
 *   synctool copy FROM TO [FROM TO...]  CopyFileW of each pair, back to back, timed: "OK <milliseconds>"
 *   synctool read PATH               read the whole file once, timed: prints "OK <milliseconds>"
 *   synctool sd PATH                 its owner, group and DACL as SDDL: prints "OK <sddl>"
 *   synctool setsd PATH SDDL         sets owner, group and DACL (those SDDL names) on PATH
 *
 * Prints "OK" or "ERR <what> <code>" and exits 0 or 1. */
#include <windows.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static int fail(const char *what)
{
    printf("ERR %s %lu\n", what, (unsigned long)GetLastError());
    return 1;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc >= 5 && !wcscmp(argv[1], L"poke")) {
        HANDLE h = CreateFileW(argv[2], GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("open");
        LARGE_INTEGER at;
        at.QuadPart = _wtoi64(argv[3]);
        char text[1024];
        int n = WideCharToMultiByte(CP_UTF8, 0, argv[4], -1, text, sizeof text, NULL, NULL) - 1;
        DWORD wrote;
        if (!SetFilePointerEx(h, at, NULL, FILE_BEGIN) || !WriteFile(h, text, (DWORD)n, &wrote, NULL))
            return fail("write");
        CloseHandle(h);
        printf("OK\n");
        return 0;
    }
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    if (argc >= 4 && argc % 2 == 0 && !wcscmp(argv[1], L"copy")) {
        /* Pairs copied back to back, as one commit lands its files; the
         * total time of all of them. */
        QueryPerformanceCounter(&t0);
        for (int i = 2; i + 1 < argc; i += 2)
            if (!CopyFileW(argv[i], argv[i + 1], FALSE))
                return fail("copy");
        QueryPerformanceCounter(&t1);
        printf("OK %.1f\n", (t1.QuadPart - t0.QuadPart) * 1000.0 / f.QuadPart);
        return 0;
    }
    if (argc >= 3 && !wcscmp(argv[1], L"read")) {
        QueryPerformanceCounter(&t0);
        HANDLE h = CreateFileW(argv[2], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_FLAG_SEQUENTIAL_SCAN,
                               NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("open");
        static char buf[1 << 20];
        DWORD got;
        while (ReadFile(h, buf, sizeof buf, &got, NULL) && got)
            ;
        CloseHandle(h);
        QueryPerformanceCounter(&t1);
        printf("OK %.1f\n", (t1.QuadPart - t0.QuadPart) * 1000.0 / f.QuadPart);
        return 0;
    }
    SECURITY_INFORMATION what = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION |
                                DACL_SECURITY_INFORMATION;
    if (argc >= 3 && !wcscmp(argv[1], L"sd")) {
        static char buf[1 << 16];
        DWORD need = 0;
        LPWSTR text = NULL;
        if (!GetFileSecurityW(argv[2], what, (PSECURITY_DESCRIPTOR)buf, sizeof buf, &need))
            return fail("get");
        if (!ConvertSecurityDescriptorToStringSecurityDescriptorW((PSECURITY_DESCRIPTOR)buf, SDDL_REVISION_1, what,
                                                                  &text, NULL))
            return fail("sddl");
        printf("OK %ls\n", text);
        LocalFree(text);
        return 0;
    }
    if (argc >= 4 && !wcscmp(argv[1], L"setsd")) {
        PSECURITY_DESCRIPTOR sd = NULL;
        if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(argv[3], SDDL_REVISION_1, &sd, NULL))
            return fail("sddl");
        SECURITY_INFORMATION set = 0;
        if (wcsstr(argv[3], L"O:"))
            set |= OWNER_SECURITY_INFORMATION;
        if (wcsstr(argv[3], L"G:"))
            set |= GROUP_SECURITY_INFORMATION;
        if (wcsstr(argv[3], L"D:"))
            set |= DACL_SECURITY_INFORMATION;
        if (!SetFileSecurityW(argv[2], set, sd))
            return fail("set");
        LocalFree(sd);
        printf("OK\n");
        return 0;
    }
    printf("usage: synctool poke PATH OFFSET TEXT | copy FROM TO | read PATH | sd PATH | setsd PATH SDDL\n");
    return 2;
}

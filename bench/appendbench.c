/* appendbench.c - the write path of a box with a storage quota: N appends
 * of SIZE bytes to a new file, each growing it (so each is reserved against
 * the quota). Prints "<ns per append>". Used by bench/quota.sh. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: appendbench FILE N SIZE\n");
        return 2;
    }
    long n = wcstol(argv[2], NULL, 10), size = wcstol(argv[3], NULL, 10);
    static char buf[65536];
    if (n <= 0 || size <= 0 || size > (long)sizeof buf)
        return 2;
    memset(buf, 'a', sizeof buf);
    HANDLE h = CreateFileW(argv[1], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "appendbench: CreateFile %lu\n", GetLastError());
        return 1;
    }
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    for (long i = 0; i < n; i++) {
        DWORD w;
        if (!WriteFile(h, buf, (DWORD)size, &w, NULL)) {
            fprintf(stderr, "appendbench: WriteFile %lu after %ld\n", GetLastError(), i);
            return 1;
        }
    }
    QueryPerformanceCounter(&t1);
    CloseHandle(h);
    DeleteFileW(argv[1]);
    printf("%.0f\n", (double)(t1.QuadPart - t0.QuadPart) * 1e9 / (double)f.QuadPart / (double)n);
    return 0;
}

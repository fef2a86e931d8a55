/* proclist.c - proclist.exe: the cost of one process listing, many times.
 *
 *   proclist.exe toolhelp|ntquery N
 *
 * toolhelp: CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS) + a walk over it +
 * CloseHandle (what Task Manager-like programs and taskkill do); ntquery:
 * NtQuerySystemInformation(SystemProcessInformation) into a 1 MiB buffer
 * (what Toolhelp, EnumProcesses and WTSEnumerateProcesses use inside). In a
 * box the listing keeps only the box's processes: each other entry costs a
 * membership check (runtime/process.c). Prints one line:
 *
 *   NAME ops=N self_boxed=0|1 entries=E median_us=.. min_us=.. p90_us=.. */
#include <windows.h>
#include <winternl.h>
#include <tlhelp32.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int list_toolhelp(void)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    PROCESSENTRY32W e = {sizeof e};
    int n = 0;
    for (BOOL more = Process32FirstW(snap, &e); more; more = Process32NextW(snap, &e))
        n++;
    CloseHandle(snap);
    return n;
}

static int list_ntquery(void)
{
    static unsigned char buf[1 << 20];
    ULONG got = 0;
    if (NtQuerySystemInformation(SystemProcessInformation, buf, sizeof buf, &got) < 0)
        return -1;
    int n = 0;
    for (ULONG off = 0;; n++) {
        SYSTEM_PROCESS_INFORMATION *e = (SYSTEM_PROCESS_INFORMATION *)(buf + off);
        if (!e->NextEntryOffset)
            return n + 1;
        off += e->NextEntryOffset;
    }
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3)
        return fprintf(stderr, "usage: proclist.exe toolhelp|ntquery N\n"), 2;
    int (*list)(void) = !wcscmp(argv[1], L"toolhelp") ? list_toolhelp : list_ntquery;
    long n = wcstol(argv[2], NULL, 10);
    if (n < 1)
        n = 1;
    double *us = malloc(n * sizeof *us);
    LARGE_INTEGER f, a, b;
    QueryPerformanceFrequency(&f);
    int entries = 0;
    for (int i = 0; i < 5; i++)
        entries = list();   /* warm-up */
    for (long i = 0; i < n; i++) {
        QueryPerformanceCounter(&a);
        list();
        QueryPerformanceCounter(&b);
        us[i] = (double)(b.QuadPart - a.QuadPart) * 1e6 / (double)f.QuadPart;
    }
    qsort(us, n, sizeof *us, compare);
    printf("%ls ops=%ld self_boxed=%d entries=%d median_us=%.3f min_us=%.3f p90_us=%.3f\n", argv[1], n,
           GetModuleHandleW(L"fvm.dll") != NULL, entries, us[n / 2], us[0], us[n * 9 / 10]);
    return 0;
}

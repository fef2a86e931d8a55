/* quotatool.c - quotatool.exe: the workloads of the resource-limit tests
 * (tests/e2e/test_limits.py).
 *
 *   quotatool spin N MS       N busy processes (itself and N-1 children)
 *                             spinning for MS ms of wall time; each prints
 *                             "busy cpu_ms=C wall_ms=W" with the CPU time
 *                             it used while spinning
 *   quotatool busy MS         one busy process (a child of spin)
 *   quotatool commit CHUNK_MB MAX_MB
 *                             commits CHUNK_MB at a time until a commit
 *                             fails or MAX_MB are held: "committed_mb=X
 *                             status=0x... error=E"; then frees it all and
 *                             commits one chunk again: "again=1"; then
 *                             grows the heap 1 MiB at a time the same way:
 *                             "malloc_mb=Y"; "done" at the end (it did not
 *                             crash)
 *   quotatool work M          M million loop rounds, then "work_ms=W" (a
 *                             fixed CPU-bound job, for bench/limits.sh)
 *   quotatool allocs N        N VirtualAlloc commits of 64 KiB each freed
 *                             again, then "allocs_ms=W"
 *   quotatool hold MB MS      commits MB, signals the box event
 *                             "quotatool-held", sleeps MS
 *   quotatool share HOLD_MB CHUNK_MB MAX_MB
 *                             a child holds HOLD_MB (hold), then commit as
 *                             above: the box's total counts the child too
 *   quotatool copy SRC DST CHUNK_KB
 *                             copies file SRC to DST (created) CHUNK_KB at
 *                             a time with ReadFile/WriteFile: "copy_ms=W
 *                             bytes=B who=0 start=T0 end=T1" (T: ms on the
 *                             machine's monotonic clock)
 *   quotatool copies N SRC DST CHUNK_KB
 *                             N processes (itself and N-1 children) each
 *                             copy SRC to DST.<i> at once (each prints its
 *                             copy line, with "who=i")
 *   quotatool ops DST COUNT   COUNT writes of 512 bytes to DST: "ops_ms=W"
 *   quotatool iowork SRC DST ROUNDS
 *                             copies SRC to DST ROUNDS times, 4 KiB a call
 *                             (an I/O-bound job of many small calls, for
 *                             bench/limits.sh): "io_ms=W"
 *   quotatool reads SRC SECONDS
 *                             reads SRC (64 KiB at a time, from the start
 *                             again at its end) for SECONDS s, printing
 *                             "second=S bytes=B" every second */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef LONG (NTAPI *alloc_fn)(HANDLE, void **, ULONG_PTR, SIZE_T *, ULONG, ULONG);

static unsigned long long cpu_ms(void)
{
    FILETIME c, e, k, u;
    GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u);
    return ((((unsigned long long)k.dwHighDateTime << 32) | k.dwLowDateTime) +
            (((unsigned long long)u.dwHighDateTime << 32) | u.dwLowDateTime)) / 10000;
}

static void spin(DWORD ms)
{
    DWORD start = GetTickCount();
    unsigned long long cpu_start = cpu_ms();
    volatile unsigned long long x = 0;
    while (GetTickCount() - start < ms)
        for (int i = 0; i < 100000; i++)
            x++;
    printf("busy cpu_ms=%llu wall_ms=%lu\n", cpu_ms() - cpu_start, (unsigned long)(GetTickCount() - start));
    fflush(stdout);
}

static HANDLE start_self(const char *args)
{
    char exe[MAX_PATH], line[MAX_PATH + 200];
    GetModuleFileNameA(NULL, exe, MAX_PATH);
    snprintf(line, sizeof line, "\"%s\" %s", exe, args);
    STARTUPINFOA si = {sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        printf("start failed error=%lu\n", GetLastError());
        return NULL;
    }
    CloseHandle(pi.hThread);
    return pi.hProcess;
}

static void commit_loop(unsigned chunk_mb, unsigned max_mb)
{
    alloc_fn nt_alloc = (alloc_fn)(void *)GetProcAddress(GetModuleHandleA("ntdll.dll"), "NtAllocateVirtualMemory");
    void *blocks[4096];
    unsigned n = 0, held = 0;
    LONG status = 0;
    DWORD error = 0;
    while (held + chunk_mb <= max_mb && n < 4096) {
        void *p = NULL;
        SIZE_T size = (SIZE_T)chunk_mb << 20;
        status = nt_alloc(GetCurrentProcess(), &p, 0, &size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
        if (status < 0) {
            SetLastError(0);
            void *q = VirtualAlloc(NULL, (SIZE_T)chunk_mb << 20, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
            error = GetLastError();
            if (q)
                VirtualFree(q, 0, MEM_RELEASE), error = 0;
            break;
        }
        memset(p, 1, 4096);
        blocks[n++] = p;
        held += chunk_mb;
    }
    printf("committed_mb=%u status=0x%08lx error=%lu\n", held, (unsigned long)status, (unsigned long)error);
    for (unsigned i = 0; i < n; i++)
        VirtualFree(blocks[i], 0, MEM_RELEASE);
    void *again = VirtualAlloc(NULL, (SIZE_T)chunk_mb << 20, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    printf("again=%d\n", again != NULL);
    if (again)
        VirtualFree(again, 0, MEM_RELEASE);
    static void *chunks[8192];
    unsigned m = 0;
    while (m < max_mb && m < 8192 && (chunks[m] = malloc(1 << 20)) != NULL)
        memset(chunks[m++], 2, 64);
    printf("malloc_mb=%u\n", m);
    for (unsigned i = 0; i < m; i++)
        free(chunks[i]);
    printf("done\n");
    fflush(stdout);
}

static unsigned long long now_ms(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (unsigned long long)(c.QuadPart * 1000 / f.QuadPart);
}

static int copy_file(const char *src, const char *dst, unsigned chunk_kb, int who)
{
    HANDLE in = CreateFileA(src, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    HANDLE out = CreateFileA(dst, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (in == INVALID_HANDLE_VALUE || out == INVALID_HANDLE_VALUE) {
        printf("open failed error=%lu\n", GetLastError());
        return 1;
    }
    DWORD chunk = chunk_kb << 10, got, put;
    char *buf = malloc(chunk);
    unsigned long long start = now_ms(), total = 0;
    while (ReadFile(in, buf, chunk, &got, NULL) && got) {
        if (!WriteFile(out, buf, got, &put, NULL) || put != got) {
            printf("write failed error=%lu\n", GetLastError());
            return 1;
        }
        total += got;
    }
    unsigned long long end = now_ms();
    /* start and end on the machine's monotonic clock: comparable between processes */
    printf("copy_ms=%llu bytes=%llu who=%d start=%llu end=%llu\n", end - start, total, who, start, end);
    fflush(stdout);
    CloseHandle(in);
    CloseHandle(out);
    free(buf);
    return 0;
}

static int run(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "copy"))
        return copy_file(argv[2], argv[3], (unsigned)atoi(argv[4]), 0);
    if (argc == 6 && !strcmp(argv[1], "copies")) {
        int n = atoi(argv[2]);
        HANDLE kids[16];
        int k = 0;
        char args[MAX_PATH * 3];
        for (int i = 1; i < n && k < 16; i++) {
            snprintf(args, sizeof args, "copyas %d \"%s\" \"%s.%d\" %s", i, argv[3], argv[4], i, argv[5]);
            if ((kids[k] = start_self(args)) != NULL)
                k++;
        }
        char dst[MAX_PATH * 3];
        snprintf(dst, sizeof dst, "%s.0", argv[4]);
        int rc = copy_file(argv[3], dst, (unsigned)atoi(argv[5]), 0);
        if (k)
            WaitForMultipleObjects((DWORD)k, kids, TRUE, 120000);
        return rc;
    }
    if (argc == 6 && !strcmp(argv[1], "copyas"))
        return copy_file(argv[3], argv[4], (unsigned)atoi(argv[5]), atoi(argv[2]));
    if (argc == 5 && !strcmp(argv[1], "iowork")) {
        static char buf[4096];
        unsigned long long start = now_ms();
        for (int round = atoi(argv[4]); round > 0; round--) {
            HANDLE in = CreateFileA(argv[2], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
            HANDLE out = CreateFileA(argv[3], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
            DWORD got, put;
            if (in == INVALID_HANDLE_VALUE || out == INVALID_HANDLE_VALUE)
                return 1;
            while (ReadFile(in, buf, sizeof buf, &got, NULL) && got)
                WriteFile(out, buf, got, &put, NULL);
            CloseHandle(in);
            CloseHandle(out);
        }
        printf("io_ms=%llu\n", now_ms() - start);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "ops")) {
        HANDLE out = CreateFileA(argv[2], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
        char block[512];
        memset(block, 'o', sizeof block);
        DWORD put;
        unsigned long long start = now_ms();
        for (long n = atol(argv[3]); n > 0; n--)
            if (!WriteFile(out, block, sizeof block, &put, NULL)) {
                printf("write failed error=%lu\n", GetLastError());
                return 1;
            }
        printf("ops_ms=%llu\n", now_ms() - start);
        CloseHandle(out);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "reads")) {
        HANDLE in = CreateFileA(argv[2], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        if (in == INVALID_HANDLE_VALUE)
            return 1;
        static char buf[65536];
        unsigned long long start = now_ms(), bytes = 0;
        int second = 1, seconds = atoi(argv[3]);
        DWORD got;
        while (second <= seconds) {
            got = 0;
            if (!ReadFile(in, buf, sizeof buf, &got, NULL) || !got)
                SetFilePointer(in, 0, NULL, FILE_BEGIN);
            bytes += got;
            if (now_ms() - start >= (unsigned long long)second * 1000) {
                printf("second=%d bytes=%llu\n", second, bytes);
                fflush(stdout);
                bytes = 0;
                second++;
            }
        }
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "spin")) {
        int n = atoi(argv[2]);
        HANDLE kids[64];
        int k = 0;
        char args[64];
        snprintf(args, sizeof args, "busy %s", argv[3]);
        for (int i = 1; i < n && k < 64; i++)
            if ((kids[k] = start_self(args)) != NULL)
                k++;
        spin((DWORD)atoi(argv[3]));
        if (k)
            WaitForMultipleObjects((DWORD)k, kids, TRUE, 120000);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "work")) {
        DWORD start = GetTickCount();
        volatile unsigned long long x = 0;
        for (long m = atol(argv[2]); m > 0; m--)
            for (int i = 0; i < 1000000; i++)
                x++;
        printf("work_ms=%lu\n", (unsigned long)(GetTickCount() - start));
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "allocs")) {
        DWORD start = GetTickCount();
        for (long n = atol(argv[2]); n > 0; n--) {
            void *p = VirtualAlloc(NULL, 65536, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
            if (p)
                VirtualFree(p, 0, MEM_RELEASE);
        }
        printf("allocs_ms=%lu\n", (unsigned long)(GetTickCount() - start));
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "busy")) {
        spin((DWORD)atoi(argv[2]));
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "commit")) {
        commit_loop((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "hold")) {
        SIZE_T size = (SIZE_T)atoi(argv[2]) << 20;
        void *p = VirtualAlloc(NULL, size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
        printf("hold=%d\n", p != NULL);
        fflush(stdout);
        HANDLE ev = CreateEventA(NULL, TRUE, FALSE, "quotatool-held");
        SetEvent(ev);
        Sleep((DWORD)atoi(argv[3]));
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "share")) {
        HANDLE ev = CreateEventA(NULL, TRUE, FALSE, "quotatool-held");
        char args[64];
        snprintf(args, sizeof args, "hold %s 60000", argv[2]);
        HANDLE kid = start_self(args);
        if (!kid || WaitForSingleObject(ev, 60000) != WAIT_OBJECT_0) {
            printf("hold failed\n");
            return 1;
        }
        commit_loop((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
        TerminateProcess(kid, 0);
        return 0;
    }
    fprintf(stderr, "usage: quotatool spin N MS | busy MS | commit CHUNK_MB MAX_MB | hold MB MS | share HOLD CHUNK MAX\n");
    return 2;
}

int wmain(int argc, wchar_t **wargv)
{
    char *argv[16] = {0};
    for (int i = 0; i < argc && i < 16; i++) {
        argv[i] = malloc(MAX_PATH * 3);
        WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, argv[i], MAX_PATH * 3, NULL, NULL);
    }
    return run(argc < 16 ? argc : 16, argv);
}

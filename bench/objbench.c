/* objbench.c - objbench.exe: the cost of named objects and pipe connects,
 * boxed or not (bench/objects.sh runs it both ways).
 *
 *   objbench.exe mutex N      CreateMutexW(named) + CloseHandle
 *   objbench.exe event N      OpenEventW of an existing named event + CloseHandle
 *   objbench.exe pipe N       a client connect to a named pipe: CreateFileW +
 *                             CloseHandle, with the server's instances already
 *                             listening (made and recycled untimed)
 *
 * N operations in batches of 100 (after one untimed batch); prints
 *   NAME ops=N self_boxed=0|1 median_us=.. min_us=.. p90_us=..
 * over the batches' per-operation times. Exit code 0 unless an operation
 * failed (1) or the arguments were wrong (2). */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define BATCH 100

static double g_freq;

static double now_us(void)
{
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1e6 / g_freq;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, double *us, long batches)
{
    qsort(us, (size_t)batches, sizeof *us, cmp);
    printf("%s ops=%ld self_boxed=%d median_us=%.3f min_us=%.3f p90_us=%.3f\n", name, batches * BATCH,
           GetModuleHandleW(L"fvm.dll") != NULL, us[batches / 2], us[0], us[(batches * 9) / 10]);
    fflush(stdout);
}

static int bench_mutex(long batches)
{
    double *us = malloc(sizeof *us * (size_t)batches);
    wchar_t name[64];
    _snwprintf(name, 64, L"objbench.%lu", (unsigned long)GetCurrentProcessId());
    for (long b = -1; b < batches; b++) {
        double t0 = now_us();
        for (int i = 0; i < BATCH; i++) {
            HANDLE h = CreateMutexW(NULL, FALSE, name);
            if (!h)
                return fprintf(stderr, "CreateMutexW failed (%lu)\n", GetLastError()), 1;
            CloseHandle(h);
        }
        if (b >= 0)
            us[b] = (now_us() - t0) / BATCH;
    }
    report("mutex", us, batches);
    return 0;
}

static int bench_event(long batches)
{
    double *us = malloc(sizeof *us * (size_t)batches);
    wchar_t name[64];
    _snwprintf(name, 64, L"objbench.ev.%lu", (unsigned long)GetCurrentProcessId());
    HANDLE keep = CreateEventW(NULL, TRUE, FALSE, name);
    if (!keep)
        return 1;
    for (long b = -1; b < batches; b++) {
        double t0 = now_us();
        for (int i = 0; i < BATCH; i++) {
            HANDLE h = OpenEventW(SYNCHRONIZE, FALSE, name);
            if (!h)
                return fprintf(stderr, "OpenEventW failed (%lu)\n", GetLastError()), 1;
            CloseHandle(h);
        }
        if (b >= 0)
            us[b] = (now_us() - t0) / BATCH;
    }
    report("event", us, batches);
    CloseHandle(keep);
    return 0;
}

static int bench_pipe(long batches)
{
    double *us = malloc(sizeof *us * (size_t)batches);
    wchar_t name[64];
    _snwprintf(name, 64, L"\\\\.\\pipe\\objbench.%lu", (unsigned long)GetCurrentProcessId());
    HANDLE server[BATCH];
    OVERLAPPED ov[BATCH];
    for (int i = 0; i < BATCH; i++) {
        server[i] = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED, PIPE_TYPE_BYTE | PIPE_WAIT,
                                     PIPE_UNLIMITED_INSTANCES, 512, 512, 0, NULL);
        if (server[i] == INVALID_HANDLE_VALUE)
            return fprintf(stderr, "CreateNamedPipeW failed (%lu)\n", GetLastError()), 1;
        memset(&ov[i], 0, sizeof ov[i]);
        ov[i].hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    }
    for (long b = -1; b < batches; b++) {
        for (int i = 0; i < BATCH; i++) {   /* every instance listening */
            ResetEvent(ov[i].hEvent);
            if (!ConnectNamedPipe(server[i], &ov[i]) && GetLastError() != ERROR_IO_PENDING)
                return fprintf(stderr, "ConnectNamedPipe failed (%lu)\n", GetLastError()), 1;
        }
        double t0 = now_us();
        for (int i = 0; i < BATCH; i++) {
            HANDLE h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
            if (h == INVALID_HANDLE_VALUE)
                return fprintf(stderr, "CreateFileW of the pipe failed (%lu)\n", GetLastError()), 1;
            CloseHandle(h);
        }
        if (b >= 0)
            us[b] = (now_us() - t0) / BATCH;
        for (int i = 0; i < BATCH; i++) {
            DWORD n;
            GetOverlappedResult(server[i], &ov[i], &n, TRUE);
            DisconnectNamedPipe(server[i]);
        }
    }
    report("pipe", us, batches);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    g_freq = (double)f.QuadPart;
    long n = argc > 2 ? wcstol(argv[2], NULL, 10) : 0;
    if (argc != 3 || n < BATCH) {
        fprintf(stderr, "usage: objbench mutex|event|pipe N   (N >= %d)\n", BATCH);
        return 2;
    }
    long batches = n / BATCH;
    if (!wcscmp(argv[1], L"mutex"))
        return bench_mutex(batches);
    if (!wcscmp(argv[1], L"event"))
        return bench_event(batches);
    if (!wcscmp(argv[1], L"pipe"))
        return bench_pipe(batches);
    fprintf(stderr, "objbench: unknown benchmark\n");
    return 2;
}

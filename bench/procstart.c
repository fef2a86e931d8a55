/* procstart.c - procstart.exe: wall time of one process start, many times.
 *
 *   procstart.exe N [NOP_EXE] [--warmup W] [--raw]
 *
 * Starts NOP_EXE (default: nop.exe next to procstart.exe) W times untimed,
 * then N times timed. One start is CreateProcessW + WaitForSingleObject +
 * CloseHandle of the process and thread handles, timed with
 * QueryPerformanceCounter. Prints one machine-readable line:
 *
 *   procstart runs=N warmup=W failures=F self_boxed=0|1 child_boxed=0|1|-1
 *             median_ms=.. mean_ms=.. trimmed_mean_ms=.. p10_ms=.. p90_ms=..
 *             min_ms=.. max_ms=.. stdev_ms=..
 *
 * (all on one line). trimmed_mean drops the lowest and highest 10% of the
 * runs. --raw also prints every timed run as "sample I MS".
 *
 * Run unboxed, the children are plain processes. Run inside a box
 * (fvm run -- procstart.exe ...), procstart.exe is boxed and so is every
 * child it creates (fvm.dll hooks NtCreateUserProcess), so the difference
 * between the two medians is what boxing adds to one process start.
 * self_boxed says whether fvm.dll is loaded in procstart.exe; child_boxed
 * comes from one extra, untimed "nop.exe check" run after the timed ones
 * (1 boxed, 0 not, -1 could not tell). A timing is never an error: the exit
 * code is 0 unless a start failed or a child exited with a non-zero code. */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define MAX_RUNS 1000000

static void win_error(const char *what)
{
    fprintf(stderr, "procstart: %s (error %lu)\n", what, (unsigned long)GetLastError());
}

/* Starts the program once and waits for it. Returns FALSE if it could not be
 * started; *code gets its exit code. */
static BOOL start_once(const wchar_t *exe, const wchar_t *cmdline_src, DWORD *code)
{
    wchar_t cmdline[MAX_PATH * 2 + 32];
    wcscpy(cmdline, cmdline_src);   /* CreateProcessW may write to it */
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(exe, cmdline, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
        return FALSE;
    WaitForSingleObject(pi.hProcess, INFINITE);
    if (!GetExitCodeProcess(pi.hProcess, code))
        *code = (DWORD)-1;
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return TRUE;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile p (0..100) of sorted[0..n-1], linearly interpolated. */
static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 1)
        return sorted[0];
    double pos = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = pos - (double)lo;
    return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

static void usage(void)
{
    fputs("usage: procstart.exe N [NOP_EXE] [--warmup W] [--raw]\n"
          "  starts NOP_EXE (default: nop.exe next to procstart.exe) W times untimed\n"
          "  (default: N/10, at least 5, at most 50), then N times timed, and prints\n"
          "  the median, mean, trimmed mean, p10 and p90 wall time per start\n", stderr);
}

int wmain(int argc, wchar_t **argv)
{
    long runs = -1, warmup = -1;
    int raw = 0;
    const wchar_t *nop_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!wcscmp(argv[i], L"--warmup") && i + 1 < argc) {
            warmup = wcstol(argv[++i], NULL, 10);
            if (warmup < 0) {
                usage();
                return 2;
            }
        } else if (!wcscmp(argv[i], L"--raw")) {
            raw = 1;
        } else if (!wcscmp(argv[i], L"--help") || !wcscmp(argv[i], L"-h")) {
            usage();
            return 0;
        } else if (runs < 0) {
            wchar_t *end;
            runs = wcstol(argv[i], &end, 10);
            if (*end || runs < 1 || runs > MAX_RUNS) {
                fprintf(stderr, "procstart: N must be a number from 1 to %d\n", MAX_RUNS);
                return 2;
            }
        } else if (!nop_arg) {
            nop_arg = argv[i];
        } else {
            usage();
            return 2;
        }
    }
    if (runs < 0) {
        usage();
        return 2;
    }
    if (warmup < 0) {
        warmup = runs / 10;
        if (warmup < 5)
            warmup = 5;
        if (warmup > 50)
            warmup = 50;
    }

    /* The program to start, as a full path. */
    wchar_t exe[MAX_PATH];
    if (nop_arg) {
        DWORD n = GetFullPathNameW(nop_arg, MAX_PATH, exe, NULL);
        if (!n || n >= MAX_PATH) {
            win_error("cannot resolve the path of NOP_EXE");
            return 2;
        }
    } else {
        DWORD n = GetModuleFileNameW(NULL, exe, MAX_PATH);
        if (!n || n >= MAX_PATH) {
            win_error("cannot find procstart.exe's own path");
            return 2;
        }
        while (n && exe[n - 1] != L'\\' && exe[n - 1] != L'/')
            n--;
        exe[n] = 0;
        if (n + 8 >= MAX_PATH) {
            fputs("procstart: path too long\n", stderr);
            return 2;
        }
        wcscat(exe, L"nop.exe");
    }
    if (GetFileAttributesW(exe) == INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "procstart: cannot find '%ls'\n", exe);
        return 2;
    }
    wchar_t cmdline[MAX_PATH * 2 + 32], check_cmdline[MAX_PATH * 2 + 32];
    _snwprintf(cmdline, sizeof cmdline / sizeof cmdline[0], L"\"%ls\"", exe);
    cmdline[sizeof cmdline / sizeof cmdline[0] - 1] = 0;
    _snwprintf(check_cmdline, sizeof check_cmdline / sizeof check_cmdline[0], L"\"%ls\" check", exe);
    check_cmdline[sizeof check_cmdline / sizeof check_cmdline[0] - 1] = 0;

    double *ms = malloc((size_t)runs * sizeof *ms);
    if (!ms) {
        fputs("procstart: out of memory\n", stderr);
        return 2;
    }
    LARGE_INTEGER freq;
    QueryPerformanceFrequency(&freq);

    long failures = 0;
    DWORD code;
    for (long i = 0; i < warmup; i++) {
        if (!start_once(exe, cmdline, &code)) {
            win_error("CreateProcessW failed (warm-up)");
            return 1;
        }
        if (code != 0)
            failures++;
    }
    for (long i = 0; i < runs; i++) {
        LARGE_INTEGER t0, t1;
        QueryPerformanceCounter(&t0);
        BOOL ok = start_once(exe, cmdline, &code);
        QueryPerformanceCounter(&t1);
        if (!ok) {
            win_error("CreateProcessW failed");
            return 1;
        }
        if (code != 0)
            failures++;
        ms[i] = (double)(t1.QuadPart - t0.QuadPart) * 1000.0 / (double)freq.QuadPart;
    }

    int child_boxed = -1;
    if (start_once(exe, check_cmdline, &code))
        child_boxed = code == 10 ? 1 : code == 11 ? 0 : -1;
    int self_boxed = GetModuleHandleW(L"fvm.dll") != NULL;

    if (raw)
        for (long i = 0; i < runs; i++)
            printf("sample %ld %.4f\n", i, ms[i]);

    double sum = 0;
    for (long i = 0; i < runs; i++)
        sum += ms[i];
    double mean = sum / (double)runs;
    double var = 0;
    for (long i = 0; i < runs; i++)
        var += (ms[i] - mean) * (ms[i] - mean);
    double stdev = runs > 1 ? __builtin_sqrt(var / (double)(runs - 1)) : 0;

    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    size_t n = (size_t)runs, cut = n / 10;
    double tsum = 0;
    for (size_t i = cut; i < n - cut; i++)
        tsum += ms[i];
    double trimmed = tsum / (double)(n - 2 * cut);

    printf("procstart runs=%ld warmup=%ld failures=%ld self_boxed=%d child_boxed=%d"
           " median_ms=%.3f mean_ms=%.3f trimmed_mean_ms=%.3f p10_ms=%.3f p90_ms=%.3f"
           " min_ms=%.3f max_ms=%.3f stdev_ms=%.3f\n",
           runs, warmup, failures, self_boxed, child_boxed, percentile(ms, n, 50), mean, trimmed,
           percentile(ms, n, 10), percentile(ms, n, 90), ms[0], ms[n - 1], stdev);
    fflush(stdout);
    free(ms);
    if (failures) {
        fprintf(stderr, "procstart: %ld start(s) exited with a non-zero code\n", failures);
        return 1;
    }
    return 0;
}

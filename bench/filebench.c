/* filebench.c - filebench.exe: the cost of file operations, boxed or not.
 *
 *   filebench.exe open PATH N [--warmup W] [--batch B]
 *   filebench.exe attrs PATH N [--warmup W] [--batch B]
 *   filebench.exe listing DIR N [--warmup W]
 *   filebench.exe copyup SRC
 *   filebench.exe copyfile SRC DST
 *   filebench.exe mutate DIR TOTAL MODIFY CREATE DELETE
 *   filebench.exe churn DIR N
 *
 * Each timed sub-benchmark runs W untimed iterations, then N timed ones in
 * batches of B (timed with QueryPerformanceCounter around the whole batch,
 * per-operation time = batch time / B), and prints one machine-readable line
 * whose first word names it:
 *
 *   open ops=N batch=B warmup=W failures=F self_boxed=0|1 median_us=..
 *        mean_us=.. trimmed_mean_us=.. p10_us=.. p90_us=.. min_us=..
 *        max_us=.. stdev_us=..
 *
 * (all on one line; the statistics are over the batches' per-operation
 * times; trimmed_mean drops the lowest and highest 10 % of the batches).
 *
 *   open      CreateFileW(GENERIC_READ, OPEN_EXISTING) + CloseHandle of PATH.
 *             If PATH is a folder, its files are opened in turn.
 *   attrs     GetFileAttributesW(PATH): prints "attrs ..." for PATH (which
 *             must exist) and "attrs_missing ..." for PATH + "-missing"
 *             (which must not), each N times.
 *   listing   FindFirstFileW(DIR\*) + FindNextFileW to the end + FindClose;
 *             one operation is one whole listing (batch 1). The line also has
 *             entries=E (without "." and "..") and bytes=S (their sizes
 *             summed), from the first listing; a later listing that differs
 *             counts as a failure.
 *   copyup    the first write to SRC: CreateFileW(GENERIC_WRITE, OPEN_EXISTING)
 *             + WriteFile of 1 byte at offset 0 + CloseHandle, timed once.
 *             The byte written is the one already there (read first, untimed),
 *             so the content does not change. Inside a box this copies the
 *             whole host file into the box first. Prints
 *               copyup bytes=.. ms=.. mb_s=.. self_boxed=..
 *             with mb_s = file size / elapsed time, MB = 10^6 bytes.
 *   copyfile  CopyFileW(SRC, DST, FALSE), timed once (DST is deleted first
 *             and after, untimed). Prints "copyfile bytes=.. ms=.. mb_s=..".
 *   mutate    not a benchmark: changes a folder made of files fNNNN.txt
 *             (NNNN = 0000..TOTAL-1): appends a line to MODIFY of them,
 *             creates CREATE new files fNNNNn.txt and deletes DELETE of them,
 *             spread evenly over the folder. Run inside a box it gives the box
 *             a changed view of the folder. Prints
 *               mutate modified=.. created=.. deleted=.. expected_entries=..
 *
 * A timing is never an error: the exit code is 0 unless an operation failed
 * (or the arguments were wrong: 2). */
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define MAX_OPS 10000000L

static void win_error(const char *what)
{
    fprintf(stderr, "filebench: %s (error %lu)\n", what, (unsigned long)GetLastError());
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

static double qpc_freq;

static double now_us(void)
{
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1e6 / qpc_freq;
}

static int self_boxed(void)
{
    return GetModuleHandleW(L"fvm.dll") != NULL;
}

/* Prints the statistics line of a timed sub-benchmark. us[] holds one
 * per-operation time per batch and is sorted here. extra is appended. */
static void report(const char *name, double *us, size_t batches, long batch, long warmup, long failures,
                   const char *extra)
{
    double sum = 0;
    for (size_t i = 0; i < batches; i++)
        sum += us[i];
    double mean = sum / (double)batches;
    double var = 0;
    for (size_t i = 0; i < batches; i++)
        var += (us[i] - mean) * (us[i] - mean);
    double stdev = batches > 1 ? __builtin_sqrt(var / (double)(batches - 1)) : 0;
    qsort(us, batches, sizeof *us, cmp_double);
    size_t cut = batches / 10;
    double tsum = 0;
    for (size_t i = cut; i < batches - cut; i++)
        tsum += us[i];
    double trimmed = tsum / (double)(batches - 2 * cut);
    printf("%s ops=%ld batch=%ld warmup=%ld failures=%ld self_boxed=%d median_us=%.3f mean_us=%.3f"
           " trimmed_mean_us=%.3f p10_us=%.3f p90_us=%.3f min_us=%.3f max_us=%.3f stdev_us=%.3f%s%s\n",
           name, (long)batches * batch, batch, warmup, failures, self_boxed(), percentile(us, batches, 50), mean,
           trimmed, percentile(us, batches, 10), percentile(us, batches, 90), us[0], us[batches - 1], stdev,
           extra && *extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

/* ---- open ----------------------------------------------------------------- */

typedef struct name_list {
    wchar_t **names;
    size_t count;
} name_list;

/* The files to open: PATH itself, or every file of the folder PATH. */
static BOOL open_targets(const wchar_t *path, name_list *out)
{
    DWORD attrs = GetFileAttributesW(path);
    if (attrs == INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "filebench: cannot find '%ls'\n", path);
        return FALSE;
    }
    out->count = 0;
    out->names = NULL;
    if (!(attrs & FILE_ATTRIBUTE_DIRECTORY)) {
        out->names = malloc(sizeof *out->names);
        out->names[0] = _wcsdup(path);
        out->count = 1;
        return TRUE;
    }
    size_t cap = 0, len = wcslen(path);
    wchar_t pattern[MAX_PATH + 4];
    if (len + 3 >= MAX_PATH)
        return FALSE;
    _snwprintf(pattern, MAX_PATH + 4, L"%ls\\*", path);
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE) {
        win_error("FindFirstFileW failed");
        return FALSE;
    }
    do {
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
            continue;
        if (out->count == cap) {
            cap = cap ? cap * 2 : 64;
            out->names = realloc(out->names, cap * sizeof *out->names);
        }
        size_t n = len + wcslen(fd.cFileName) + 2;
        wchar_t *full = malloc(n * sizeof *full);
        _snwprintf(full, n, L"%ls\\%ls", path, fd.cFileName);
        out->names[out->count++] = full;
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    if (!out->count) {
        fprintf(stderr, "filebench: no files in '%ls'\n", path);
        return FALSE;
    }
    return TRUE;
}

static BOOL open_once(const wchar_t *path)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    CloseHandle(h);
    return TRUE;
}

static int bench_open(const wchar_t *path, long batches, long batch, long warmup)
{
    name_list t;
    if (!open_targets(path, &t))
        return 2;
    double *us = malloc((size_t)batches * sizeof *us);
    long failures = 0;
    size_t k = 0;
    for (long i = 0; i < warmup; i++) {
        if (!open_once(t.names[k]))
            failures++;
        k = (k + 1) % t.count;
    }
    if (failures) {
        fprintf(stderr, "filebench: cannot open '%ls' (error %lu)\n", t.names[0], (unsigned long)GetLastError());
        return 1;
    }
    for (long b = 0; b < batches; b++) {
        double t0 = now_us();
        for (long i = 0; i < batch; i++) {
            if (!open_once(t.names[k]))
                failures++;
            k = (k + 1) % t.count;
        }
        us[b] = (now_us() - t0) / (double)batch;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "files=%lu", (unsigned long)t.count);
    report("open", us, (size_t)batches, batch, warmup, failures, extra);
    return failures ? 1 : 0;
}

/* ---- attrs ---------------------------------------------------------------- */

static long attrs_run(const wchar_t *path, BOOL should_exist, double *us, long batches, long batch, long warmup)
{
    long failures = 0;
    for (long i = 0; i < warmup; i++)
        if ((GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES) != should_exist)
            failures++;
    for (long b = 0; b < batches; b++) {
        double t0 = now_us();
        for (long i = 0; i < batch; i++)
            if ((GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES) != should_exist)
                failures++;
        us[b] = (now_us() - t0) / (double)batch;
    }
    return failures;
}

static int bench_attrs(const wchar_t *path, long batches, long batch, long warmup)
{
    size_t len = wcslen(path);
    if (len + 9 >= MAX_PATH) {
        fputs("filebench: path too long\n", stderr);
        return 2;
    }
    wchar_t missing[MAX_PATH];
    _snwprintf(missing, MAX_PATH, L"%ls-missing", path);
    if (GetFileAttributesW(path) == INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "filebench: cannot find '%ls'\n", path);
        return 2;
    }
    if (GetFileAttributesW(missing) != INVALID_FILE_ATTRIBUTES) {
        fprintf(stderr, "filebench: '%ls' exists; it must not\n", missing);
        return 2;
    }
    double *us = malloc((size_t)batches * sizeof *us);
    long f1 = attrs_run(path, TRUE, us, batches, batch, warmup);
    report("attrs", us, (size_t)batches, batch, warmup, f1, NULL);
    long f2 = attrs_run(missing, FALSE, us, batches, batch, warmup);
    report("attrs_missing", us, (size_t)batches, batch, warmup, f2, NULL);
    return f1 || f2 ? 1 : 0;
}

/* ---- listing -------------------------------------------------------------- */

static BOOL list_once(const wchar_t *pattern, long *entries, unsigned long long *bytes)
{
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    long n = 0;
    unsigned long long sum = 0;
    do {
        if (fd.cFileName[0] == L'.' &&
            (!fd.cFileName[1] || (fd.cFileName[1] == L'.' && !fd.cFileName[2])))
            continue;
        n++;
        sum += ((unsigned long long)fd.nFileSizeHigh << 32) | fd.nFileSizeLow;
    } while (FindNextFileW(h, &fd));
    BOOL ok = GetLastError() == ERROR_NO_MORE_FILES;
    FindClose(h);
    *entries = n;
    *bytes = sum;
    return ok;
}

static int bench_listing(const wchar_t *dir, long runs, long warmup)
{
    wchar_t pattern[MAX_PATH + 4];
    if (wcslen(dir) + 3 >= MAX_PATH) {
        fputs("filebench: path too long\n", stderr);
        return 2;
    }
    _snwprintf(pattern, MAX_PATH + 4, L"%ls\\*", dir);
    long entries, e;
    unsigned long long bytes, b;
    if (!list_once(pattern, &entries, &bytes)) {
        win_error("cannot list the folder");
        return 1;
    }
    long failures = 0;
    for (long i = 0; i < warmup; i++)
        if (!list_once(pattern, &e, &b) || e != entries || b != bytes)
            failures++;
    double *us = malloc((size_t)runs * sizeof *us);
    for (long r = 0; r < runs; r++) {
        double t0 = now_us();
        BOOL ok = list_once(pattern, &e, &b);
        us[r] = now_us() - t0;
        if (!ok || e != entries || b != bytes)
            failures++;
    }
    /* us_per_entry: the median listing's time per entry. */
    char extra[128];
    double *sorted = malloc((size_t)runs * sizeof *sorted);
    memcpy(sorted, us, (size_t)runs * sizeof *us);
    qsort(sorted, (size_t)runs, sizeof *sorted, cmp_double);
    double med = percentile(sorted, (size_t)runs, 50);
    snprintf(extra, sizeof extra, "entries=%ld bytes=%llu us_per_entry=%.3f", entries, bytes,
             entries ? med / (double)entries : 0.0);
    report("listing", us, (size_t)runs, 1, warmup, failures, extra);
    return failures ? 1 : 0;
}

/* ---- copyup / copyfile ---------------------------------------------------- */

static BOOL file_size(const wchar_t *path, unsigned long long *size)
{
    WIN32_FILE_ATTRIBUTE_DATA d;
    if (!GetFileAttributesExW(path, GetFileExInfoStandard, &d))
        return FALSE;
    *size = ((unsigned long long)d.nFileSizeHigh << 32) | d.nFileSizeLow;
    return TRUE;
}

static void report_copy(const char *name, unsigned long long size, double us)
{
    printf("%s bytes=%llu ms=%.3f mb_s=%.1f self_boxed=%d\n", name, size, us / 1000.0,
           us > 0 ? (double)size / us : 0.0, self_boxed());
    fflush(stdout);
}

static int bench_copyup(const wchar_t *src)
{
    unsigned long long size;
    if (!file_size(src, &size)) {
        win_error("cannot read the size of SRC");
        return 2;
    }
    /* The byte at offset 0, read untimed (a read: no copy-up). */
    char byte = 0;
    HANDLE h = CreateFileW(src, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD n = 0;
    if (h == INVALID_HANDLE_VALUE || !ReadFile(h, &byte, 1, &n, NULL) || n != 1) {
        win_error("cannot read the first byte of SRC");
        return 1;
    }
    CloseHandle(h);
    if (!self_boxed())
        fputs("filebench: note: not in a box, copyup only writes one byte in place\n", stderr);

    double t0 = now_us();
    h = CreateFileW(src, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        win_error("CreateFileW(GENERIC_WRITE) failed");
        return 1;
    }
    BOOL ok = WriteFile(h, &byte, 1, &n, NULL) && n == 1;
    CloseHandle(h);
    double us = now_us() - t0;
    if (!ok) {
        win_error("WriteFile failed");
        return 1;
    }
    report_copy("copyup", size, us);
    return 0;
}

static int bench_copyfile(const wchar_t *src, const wchar_t *dst)
{
    unsigned long long size;
    if (!file_size(src, &size)) {
        win_error("cannot read the size of SRC");
        return 2;
    }
    DeleteFileW(dst);
    double t0 = now_us();
    BOOL ok = CopyFileW(src, dst, FALSE);
    double us = now_us() - t0;
    if (!ok) {
        win_error("CopyFileW failed");
        return 1;
    }
    unsigned long long got = 0;
    if (!file_size(dst, &got) || got != size) {
        fprintf(stderr, "filebench: the copy has %llu bytes, not %llu\n", got, size);
        return 1;
    }
    DeleteFileW(dst);
    report_copy("copyfile", size, us);
    return 0;
}

/* ---- mutate --------------------------------------------------------------- */

static int mutate(const wchar_t *dir, long total, long modify, long create, long del)
{
    long modified = 0, created = 0, deleted = 0;
    wchar_t path[MAX_PATH];
    if (wcslen(dir) + 16 >= MAX_PATH || modify > total || del > total || create > total ||
        modify + del > total) {
        fputs("filebench: mutate: bad arguments\n", stderr);
        return 2;
    }
    /* Modified: every (total/modify)-th file from 0; deleted: every
     * (total/del)-th from half a step, skipping modified ones; created:
     * fNNNNn.txt, next to every (total/create)-th file. */
    char *touched = calloc((size_t)total, 1);
    for (long i = 0; i < modify; i++) {
        long k = i * total / modify;
        touched[k] = 1;
        _snwprintf(path, MAX_PATH, L"%ls\\f%04ld.txt", dir, k);
        HANDLE h = CreateFileW(path, FILE_APPEND_DATA, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                               FILE_ATTRIBUTE_NORMAL, NULL);
        DWORD n;
        if (h == INVALID_HANDLE_VALUE || !WriteFile(h, "changed in the box\r\n", 20, &n, NULL)) {
            fprintf(stderr, "filebench: cannot append to '%ls' (error %lu)\n", path, (unsigned long)GetLastError());
            return 1;
        }
        CloseHandle(h);
        modified++;
    }
    for (long i = 0; i < del; i++) {
        long k = (i * total + total / 2) / del % total;
        while (touched[k])
            k = (k + 1) % total;
        touched[k] = 1;
        _snwprintf(path, MAX_PATH, L"%ls\\f%04ld.txt", dir, k);
        if (!DeleteFileW(path)) {
            fprintf(stderr, "filebench: cannot delete '%ls' (error %lu)\n", path, (unsigned long)GetLastError());
            return 1;
        }
        deleted++;
    }
    for (long i = 0; i < create; i++) {
        long k = i * total / create;
        _snwprintf(path, MAX_PATH, L"%ls\\f%04ldn.txt", dir, k);
        HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
        DWORD n;
        if (h == INVALID_HANDLE_VALUE || !WriteFile(h, "new in the box\r\n", 16, &n, NULL)) {
            fprintf(stderr, "filebench: cannot create '%ls' (error %lu)\n", path, (unsigned long)GetLastError());
            return 1;
        }
        CloseHandle(h);
        created++;
    }
    printf("mutate modified=%ld created=%ld deleted=%ld expected_entries=%ld self_boxed=%d\n", modified, created,
           deleted, total + created - deleted, self_boxed());
    return 0;
}

/* ---- churn: the index's writes ------------------------------------------ */

/* N new files in DIR, each created (16 bytes written), renamed and deleted:
 * in a box each step is one box index change (a create, a rename, a
 * delete), so this is what index writes cost. Timed as a whole; prints
 * "churn n=.. ms=.. us_per_file=.." */
static int bench_churn(const wchar_t *dir, long n)
{
    wchar_t a[MAX_PATH], b[MAX_PATH];
    LARGE_INTEGER t0, t1;
    QueryPerformanceCounter(&t0);
    for (long i = 0; i < n; i++) {
        _snwprintf(a, MAX_PATH, L"%ls\\churn%05ld.tmp", dir, i);
        _snwprintf(b, MAX_PATH, L"%ls\\churn%05ld.ren", dir, i);
        HANDLE h = CreateFileW(a, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
        DWORD done;
        if (h == INVALID_HANDLE_VALUE || !WriteFile(h, "0123456789abcdef", 16, &done, NULL)) {
            fprintf(stderr, "filebench: cannot create '%ls' (error %lu)\n", a, (unsigned long)GetLastError());
            return 1;
        }
        CloseHandle(h);
        if (!MoveFileW(a, b) || !DeleteFileW(b)) {
            fprintf(stderr, "filebench: cannot rename or delete '%ls' (error %lu)\n", a, (unsigned long)GetLastError());
            return 1;
        }
    }
    QueryPerformanceCounter(&t1);
    double us = (double)(t1.QuadPart - t0.QuadPart) * 1e6 / qpc_freq;
    printf("churn n=%ld ms=%.1f us_per_file=%.1f self_boxed=%d\n", n, us / 1000, us / n, self_boxed());
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
    fputs("usage: filebench.exe open PATH N [--warmup W] [--batch B]\n"
          "       filebench.exe attrs PATH N [--warmup W] [--batch B]\n"
          "       filebench.exe listing DIR N [--warmup W]\n"
          "       filebench.exe copyup SRC\n"
          "       filebench.exe copyfile SRC DST\n"
          "       filebench.exe mutate DIR TOTAL MODIFY CREATE DELETE\n"
          "       filebench.exe churn DIR N\n"
          "  open/attrs/listing: W untimed then N timed operations, in batches of B,\n"
          "  timed with QueryPerformanceCounter; one result line each (see filebench.c)\n",
          stderr);
}

static BOOL parse_long(const wchar_t *s, long lo, long hi, long *out)
{
    wchar_t *end;
    long v = wcstol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return FALSE;
    *out = v;
    return TRUE;
}

int wmain(int argc, wchar_t **argv)
{
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    qpc_freq = (double)f.QuadPart;
    if (argc < 2) {
        usage();
        return 2;
    }
    const wchar_t *op = argv[1];
    if (!wcscmp(op, L"--help") || !wcscmp(op, L"-h")) {
        usage();
        return 0;
    }

    if (!wcscmp(op, L"copyup") && argc == 3)
        return bench_copyup(argv[2]);
    if (!wcscmp(op, L"copyfile") && argc == 4)
        return bench_copyfile(argv[2], argv[3]);
    if (!wcscmp(op, L"churn") && argc == 4) {
        long n;
        if (!parse_long(argv[3], 1, 99999, &n)) {
            usage();
            return 2;
        }
        return bench_churn(argv[2], n);
    }
    if (!wcscmp(op, L"mutate") && argc == 7) {
        long v[4];
        for (int i = 0; i < 4; i++)
            if (!parse_long(argv[3 + i], 0, 9999, &v[i])) {
                usage();
                return 2;
            }
        if (v[0] < 1) {
            usage();
            return 2;
        }
        return mutate(argv[2], v[0], v[1], v[2], v[3]);
    }

    int is_open = !wcscmp(op, L"open"), is_attrs = !wcscmp(op, L"attrs"), is_list = !wcscmp(op, L"listing");
    if (!(is_open || is_attrs || is_list) || argc < 4) {
        usage();
        return 2;
    }
    long n, warmup = -1, batch = is_open ? 10 : is_attrs ? 20 : 1;
    if (!parse_long(argv[3], 1, MAX_OPS, &n)) {
        fprintf(stderr, "filebench: N must be a number from 1 to %ld\n", MAX_OPS);
        return 2;
    }
    for (int i = 4; i < argc; i++) {
        if (!wcscmp(argv[i], L"--warmup") && i + 1 < argc && parse_long(argv[i + 1], 0, MAX_OPS, &warmup)) {
            i++;
        } else if (!wcscmp(argv[i], L"--batch") && !is_list && i + 1 < argc &&
                   parse_long(argv[i + 1], 1, 100000, &batch)) {
            i++;
        } else {
            usage();
            return 2;
        }
    }
    if (warmup < 0) {
        warmup = n / 10;
        if (warmup < 5)
            warmup = 5;
        if (warmup > 200)
            warmup = 200;
    }
    long batches = n / batch;
    if (batches < 1) {
        batches = 1;
        batch = n;
    }
    if (is_open)
        return bench_open(argv[2], batches, batch, warmup);
    if (is_attrs)
        return bench_attrs(argv[2], batches, batch, warmup);
    return bench_listing(argv[2], n, warmup);
}

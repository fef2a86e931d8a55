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
 *   trustattack claims PORT
 *       connects to 127.0.0.1:PORT (a box whose policy denies and audits
 *       it: the runtime sends a truthful [net] record and connects to the
 *       broker), then on the runtime's broker connections claims an allow
 *       by a made-up rule for [net] and [process] targets the policy
 *       decides otherwise (with targets, FVMAUD02), an allow for a target
 *       no rule audits, an allow for an operation only ever refused, and a
 *       process start claimed without its target. Prints
 *       "pid P pipes N claims C connect E" (E: WSAGetLastError).
 *   trustattack index BOXDIR INDEXFILE SHORTPATH OTHERBOX DENIED
 *       opens DENIED first (an audited deny: the runtime connects to the
 *       broker, and the index does not change), then tries to write the box's index (BOXDIR\INDEXFILE, the Windows path of
 *       the box folder; SHORTPATH: the same file's 8.3 name, "-" if none) by
 *       every path form (Win32, \??\, \Device\..., \\?\GLOBALROOT, 8.3,
 *       relative to a handle of the drive root, of the box folder), by
 *       duplicating the runtime's own index handles (file and section) with
 *       more access, by making its read-only view writable; then sends the
 *       broker forged index requests on the runtime's connections (a key in
 *       FVM's storage, a key and path that disagree, a malformed key) and on
 *       OTHERBOX's broker pipe. Prints one "FORM name result" line per try
 *       and "wrote W accepted A": W writes that reached the index, A forged
 *       requests the broker accepted (both must be 0).
 *   trustattack sleep SECONDS
 *   trustattack iolimit SRC DST
 *       in a box with an I/O limit: makes every small read-only mapped
 *       view writable and clears what looks like the broker's limits hint
 *       ({generation, memory_limited, io_limited = 1}), sends forged "io"
 *       requests (zero amounts, a bad direction, moved counts of 2^63) on
 *       the runtime's broker connections, then copies SRC to DST 64 KiB a
 *       call and prints how long it took: "unlocked U sent S copy_ms=W".
 */
#include <winsock2.h>
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

/* The same with a target (FVMAUD02): what the policy decided on. */
static size_t audit_message_target(uint8_t *out, uint32_t type, const char *op, const char *decision, const char *rule,
                                   const char *name, const char *target)
{
    size_t n = audit_message(out + 4, type, 0, op, decision, rule, "", name, strlen(name));
    /* move the strings 4 bytes on: the FVMAUD02 header is 32 bytes */
    memmove(out, out + 4, 28);
    memcpy(out, "FVMAUD02", 8);
    uint16_t tl = (uint16_t)strlen(target), zero = 0;
    memcpy(out + 28, &tl, 2);
    memcpy(out + 30, &zero, 2);
    memcpy(out + n + 4, target, tl);
    return n + 4 + tl;
}

static int cmd_claims(int argc, wchar_t **argv)
{
    if (argc < 3)
        return 2;
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
    SOCKET sock = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_port = htons((u_short)_wtoi(argv[2]));
    to.sin_addr.s_addr = htonl(0x7f000001);
    int refused = connect(sock, (struct sockaddr *)&to, sizeof to) ? WSAGetLastError() : 0;
    closesocket(sock);
    char target[64];
    snprintf(target, sizeof target, "out:tcp:127.0.0.1:%d", _wtoi(argv[2]));
    HANDLE pipes[8];
    int npipes = broker_pipes(pipes, 8);
    static uint8_t msg[4096];
    unsigned claims = 0;
    const char *ps = "\\??\\C:\\windows\\system32\\WindowsPowerShell\\v1.0\\powershell.exe";
    for (int i = 0; i < npipes; i++) {
        size_t n[5];
        uint8_t *m[5];
        static uint8_t bufs[5][4096];
        for (int k = 0; k < 5; k++)
            m[k] = bufs[k];
        /* 4 = policy_type net, 3 = process */
        n[0] = audit_message_target(m[0], 4, "connect", "open", "made-up.ini:1", target, target);
        n[1] = audit_message_target(m[1], 3, "start", "cow", "made-up.ini:2", "powershell.exe -c whoami", ps);
        n[2] = audit_message_target(m[2], 4, "connect", "open", "made-up.ini:3", "out:tcp:127.0.0.1:7",
                                    "out:tcp:127.0.0.1:7");
        n[3] = audit_message(m[3], 3, 0, "terminate", "open", "made-up.ini:4", "", "pid 4", 5);
        n[4] = audit_message(m[4], 3, 0, "start", "open", "made-up.ini:5", "", "powershell.exe", 14);
        for (int k = 0; k < 5; k++) {
            DWORD done;
            if (WriteFile(pipes[i], m[k], (DWORD)n[k], &done, NULL))
                claims++;
        }
    }
    (void)msg;
    printf("pid %lu pipes %d claims %u connect %d\n", GetCurrentProcessId(), npipes, claims, refused);
    return 0;
}

/* ---- the box index ---- */

#include "common/boxcfg.h"
#include "core/brokermsg.h"

static unsigned g_wrote, g_accepted;

NTSTATUS NTAPI NtWriteFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, PLARGE_INTEGER, PULONG);

typedef NTSTATUS(NTAPI *create_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG,
                                   ULONG, ULONG, ULONG, PVOID, ULONG);

/* Opens name (NT form, relative to root when not NULL) for writing, and
 * writes a byte at offset 8 if it could. */
static void try_nt(const char *form, HANDLE root, const wchar_t *name)
{
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, name);
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
    IO_STATUS_BLOCK io;
    HANDLE h = NULL;
    NTSTATUS st = NtCreateFile(&h, FILE_WRITE_DATA | SYNCHRONIZE, &oa, &io, NULL, 0,
                               FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, FILE_OPEN,
                               FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, NULL, 0);
    if (st >= 0) {
        LARGE_INTEGER at = {.QuadPart = 8};
        uint8_t junk = 0x5a;
        if (NtWriteFile(h, NULL, NULL, NULL, &io, &junk, 1, &at, NULL) >= 0)
            g_wrote++;
        NtClose(h);
    }
    printf("FORM %s 0x%08lx\n", form, (unsigned long)st);
}

static void try_win32(const char *form, const wchar_t *name)
{
    HANDLE h = CreateFileW(name, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, 0, NULL);
    DWORD error = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    if (h != INVALID_HANDLE_VALUE) {
        DWORD done;
        SetFilePointer(h, 8, NULL, FILE_BEGIN);
        if (WriteFile(h, "Z", 1, &done, NULL) && done == 1)
            g_wrote++;
        CloseHandle(h);
    }
    printf("FORM %s error %lu\n", form, (unsigned long)error);
}

/* The runtime's own handles to the index: duplicated with more access. */
static void try_duplicates(void)
{
    unsigned found = 0;
    for (uintptr_t v = 4; v < 0x4000; v += 4) {
        HANDLE h = (HANDLE)v;
        struct {
            UNICODE_STRING name;
            WCHAR buffer[512];
        } info;
        ULONG len = 0;
        if (NtQueryObject(h, (OBJECT_INFORMATION_CLASS)2 /* ObjectTypeInformation */, &info, sizeof info, &len) < 0 ||
            !info.name.Buffer)
            continue;
        BOOL section = info.name.Length == 14 && !wcsncmp(info.name.Buffer, L"Section", 7);
        BOOL file = info.name.Length == 8 && !wcsncmp(info.name.Buffer, L"File", 4);
        if (file) {
            if (NtQueryObject(h, (OBJECT_INFORMATION_CLASS)1, &info, sizeof info, &len) < 0 || !info.name.Buffer)
                continue;
            info.name.Buffer[info.name.Length / 2 < 511 ? info.name.Length / 2 : 511] = 0;
            if (!wcsstr(info.name.Buffer, L"index-") || !wcsstr(info.name.Buffer, L".fvm"))
                continue;
            found++;
            HANDLE dup = NULL;
            BOOL ok = DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup,
                                      GENERIC_WRITE | FILE_WRITE_DATA, FALSE, 0);
            DWORD error = ok ? 0 : GetLastError();
            if (ok) {
                DWORD done;
                OVERLAPPED at = {0};
                at.Offset = 8;
                if (WriteFile(dup, "Z", 1, &done, &at) && done == 1)
                    g_wrote++;
                else
                    error = GetLastError();
                CloseHandle(dup);
            }
            printf("FORM duplicate-file error %lu\n", (unsigned long)error);
        } else if (section) {
            found++;
            HANDLE dup = NULL;
            BOOL ok = DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &dup, SECTION_ALL_ACCESS, FALSE, 0);
            DWORD error = ok ? 0 : GetLastError();
            if (ok) {
                void *view = MapViewOfFile(dup, FILE_MAP_WRITE, 0, 0, 0);
                if (view) {
                    /* Only an index view counts: its magic. */
                    MEMORY_BASIC_INFORMATION mbi;
                    if (VirtualQuery(view, &mbi, sizeof mbi) && !memcmp(view, "FVMBOXIX", 8)) {
                        ((volatile uint8_t *)view)[8] ^= 0x5a;
                        g_wrote++;
                    }
                    UnmapViewOfFile(view);
                } else {
                    error = GetLastError();
                }
                CloseHandle(dup);
            }
            printf("FORM duplicate-section error %lu\n", (unsigned long)error);
        }
    }
    printf("FORM index-handles %u\n", found);   /* the index file handles and any section handle (the runtime keeps its index section) */
}

/* The runtime's read-only view of the index, made writable. */
static void try_reprotect(void)
{
    MEMORY_BASIC_INFORMATION mbi;
    for (uint8_t *p = NULL; VirtualQuery(p, &mbi, sizeof mbi); p = (uint8_t *)mbi.BaseAddress + mbi.RegionSize) {
        if (mbi.Type != MEM_MAPPED || mbi.State != MEM_COMMIT || mbi.AllocationBase != mbi.BaseAddress ||
            !(mbi.Protect & (PAGE_READONLY | PAGE_READWRITE)) || mbi.RegionSize < 64 ||
            memcmp(mbi.BaseAddress, "FVMBOXIX", 8) != 0)
            continue;
        DWORD old;
        BOOL ok = VirtualProtect(mbi.BaseAddress, 4096, PAGE_READWRITE, &old);
        DWORD error = ok ? 0 : GetLastError();
        if (ok) {
            ((volatile uint8_t *)mbi.BaseAddress)[8] ^= 0x5a;
            g_wrote++;
        }
        printf("FORM reprotect error %lu\n", (unsigned long)error);
    }
}

/* A forged index request on pipe: the broker's reply status (0 = written). */
static uint32_t forge_request(HANDLE pipe, const wchar_t *key, const wchar_t *path)
{
    static uint8_t buf[8192];
    brokermsg_index m;
    memset(&m, 0, sizeof m);
    m.op = BROKERMSG_INDEX_CREATE;
    m.key = (const uint16_t *)key;
    m.path = (const uint16_t *)path;
    m.len = wcslen(key);
    size_t n = brokermsg_index_encode(&m, buf, sizeof buf);
    uint32_t reply[2] = {0, 0xffffffffu};
    DWORD done;
    if (!n || !WriteFile(pipe, buf, (DWORD)n, &done, NULL) || !ReadFile(pipe, reply, sizeof reply, &done, NULL))
        return 0xfffffffeu;
    if (reply[1] == 0)
        g_accepted++;
    return reply[1];
}

static void upcase(wchar_t *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s -= 32;
}

static int cmd_index(int argc, wchar_t **argv)
{
    if (argc < 7)
        return 2;
    const wchar_t *box = argv[2], *file = argv[3], *shortname = argv[4], *other = argv[5];
    HANDLE denied = CreateFileW(argv[6], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (denied != INVALID_HANDLE_VALUE)
        CloseHandle(denied);
    wchar_t win[1024], nt[1100];
    _snwprintf(win, 1024, L"%ls\\%ls", box, file);
    try_win32("win32", win);
    _snwprintf(nt, 1100, L"\\\\?\\%ls", win);
    try_win32("win32-long", nt);
    _snwprintf(nt, 1100, L"\\??\\%ls", win);
    try_nt("nt-dos", NULL, nt);
    wchar_t device[512];
    wchar_t drive[3] = {box[0], L':', 0};
    if (QueryDosDeviceW(drive, device, 512)) {
        _snwprintf(nt, 1100, L"%ls%ls", device, win + 2);
        try_nt("nt-device", NULL, nt);
        _snwprintf(nt, 1100, L"\\\\?\\GLOBALROOT%ls%ls", device, win + 2);
        try_win32("globalroot", nt);
    } else {
        printf("FORM nt-device none %lu\n", (unsigned long)GetLastError());
    }
    if (wcscmp(shortname, L"-"))
        try_win32("short-name", shortname);
    /* Relative to a handle of the drive root, and of the box folder. */
    wchar_t root[8] = {L'\\', L'?', L'?', L'\\', box[0], L':', L'\\', 0};
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, root);
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    IO_STATUS_BLOCK io;
    HANDLE dir = NULL;
    if (NtOpenFile(&dir, FILE_TRAVERSE | FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                   FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                   FILE_SYNCHRONOUS_IO_NONALERT | FILE_DIRECTORY_FILE) >= 0) {
        _snwprintf(nt, 1100, L"%ls", win + 3);
        try_nt("relative-to-drive", dir, nt);
        NtClose(dir);
    }
    _snwprintf(nt, 1100, L"\\??\\%ls", box);
    RtlInitUnicodeString(&us, nt);
    NTSTATUS st = NtOpenFile(&dir, FILE_TRAVERSE | FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                             FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                             FILE_SYNCHRONOUS_IO_NONALERT | FILE_DIRECTORY_FILE);
    if (st >= 0) {
        try_nt("relative-to-box", dir, file);
        NtClose(dir);
    } else {
        printf("FORM box-folder 0x%08lx\n", (unsigned long)st);
    }
    try_duplicates();
    try_reprotect();
    /* Forged requests on the runtime's own connections. */
    HANDLE pipes[8];
    int npipes = broker_pipes(pipes, 8);
    wchar_t key[1100], path[1100];
    _snwprintf(path, 1100, L"\\??\\%ls\\forged.txt", box);
    wcscpy(key, path);
    upcase(key);
    for (int i = 0; i < npipes; i++) {
        printf("FORM request-storage %lu\n", (unsigned long)forge_request(pipes[i], key, path));
        printf("FORM request-mismatch %lu\n",
               (unsigned long)forge_request(pipes[i], L"\\??\\C:\\ONE.TXT", L"\\??\\C:\\two.txt"));
        printf("FORM request-lowercase %lu\n",
               (unsigned long)forge_request(pipes[i], L"\\??\\C:\\lower.txt", NULL));
        printf("FORM request-kind %lu\n", (unsigned long)forge_request(pipes[i], L"\\DEVICE\\X", NULL));
    }
    /* Another box's broker. */
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(other, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    HANDLE pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (pipe != INVALID_HANDLE_VALUE) {
        DWORD mode = PIPE_READMODE_MESSAGE;
        SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
        printf("FORM other-box-request %lu\n",
               (unsigned long)forge_request(pipe, L"\\??\\C:\\FROM-ANOTHER-BOX.TXT", L"\\??\\C:\\from-another-box.txt"));
        CloseHandle(pipe);
    } else {
        printf("FORM other-box-pipe error %lu\n", (unsigned long)GetLastError());
    }
    printf("pipes %d wrote %u accepted %u\n", npipes, g_wrote, g_accepted);
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
    if (argc >= 2 && !wcscmp(argv[1], L"index"))
        return cmd_index(argc, argv);
    if (argc >= 3 && !wcscmp(argv[1], L"sleep")) {
        Sleep((DWORD)_wtoi(argv[2]) * 1000);
        return 0;
    }
    if (argc >= 2 && !wcscmp(argv[1], L"claims"))
        return cmd_claims(argc, argv);
    if (argc >= 2 && !wcscmp(argv[1], L"iolimit"))
        return cmd_iolimit(argc, argv);
    fprintf(stderr, "usage: trustattack quota QUOTA FILE BYTES\n");
    return 2;
}

/* proctool.c - proctool.exe: the target probe and the hostile program of the
 * process-isolation tests (tests/e2e/test_process_isolation.py).
 *
 *   proctool target STOP SECONDS   the probe: prints "info PID TID SECRET FREE
 *                                  APC REMOTE EVENT" (what an attacker needs:
 *                                  ids, addresses, a handle value), then
 *                                  watches itself until the file STOP exists
 *                                  or SECONDS pass, and
 *                                  prints one line "report k=v ..." saying
 *                                  whether anything arrived: its secret page
 *                                  hashed as at start, APCs and remote
 *                                  threads run, the longest stall, its page's
 *                                  protection, a free address still free, its
 *                                  event unsignalled and its handle still
 *                                  open, no debugger, its priority class
 *   proctool attack PID TID SECRET FREE APC REMOTE EVENT
 *                                  every cross-boundary attempt against the
 *                                  target so described, one line each:
 *                                  "<attempt> refused|DONE <detail>"
 *                                  (terminate comes last)
 *   proctool pidof NAME            pids of processes with that image name
 *   proctool list PID              whether PID shows in each listing:
 *                                  "toolhelp=0 enumprocesses=0 ntquery=0
 *                                  nextprocess=0 handles=0"
 *   proctool plunder PID           open PID; duplicate out every handle value
 *                                  4..4096; try to end it: "open=0 dup=0 kill=0"
 *   proctool give TARGET TO FILE   (unboxed) a handle to process TARGET put
 *                                  into process TO; its value written to FILE
 *   proctool use FILE SECRET       print "pid N", wait for FILE, read a
 *                                  process handle value from it and try to
 *                                  read SECRET / write / end through it
 *   proctool kids N                start N children (proctool sleep 1500),
 *                                  find them in a Toolhelp listing by parent
 *                                  id, open each by id and wait on it:
 *                                  "started=N found=N waited=N"
 *   proctool sleep MS
 *   proctool spawn N MS            start N children sleeping MS each, kept
 *                                  alive at once: "started=K failed=F error=E"
 *   proctool unlock PID            (unboxed) rewrite PID's DACL, then read its
 *                                  memory: "rewrite=0 read=0 error=5"
 *   proctool dacl PID              the process's DACL as SDDL: "dacl D:..."
 *   proctool readmem PID           ReadProcessMemory of PID's image header:
 *                                  "read=1" or "read=0 error=E" */
#include <windows.h>
#include <winternl.h>
#include <psapi.h>
#include <aclapi.h>
#include <sddl.h>
#include <tlhelp32.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

typedef NTSTATUS (NTAPI *next_process_fn)(HANDLE, ACCESS_MASK, ULONG, ULONG, HANDLE *);

/* NtGetNextProcess (Windows 10; absent on Wine 8, where it "fails"). */
static NTSTATUS NtGetNextProcess(HANDLE from, ACCESS_MASK access, ULONG attributes, ULONG flags, HANDLE *next)
{
    next_process_fn fn = (next_process_fn)(void (*)(void))GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                                                         "NtGetNextProcess");
    return fn ? fn(from, access, attributes, flags, next) : (NTSTATUS)0xC0000002L;
}
NTSTATUS NTAPI NtSuspendProcess(HANDLE);
NTSTATUS NTAPI NtResumeProcess(HANDLE);
NTSTATUS NTAPI NtMapViewOfSection(HANDLE, HANDLE, void **, ULONG_PTR, SIZE_T, LARGE_INTEGER *, SIZE_T *, ULONG,
                                  ULONG, ULONG);
NTSTATUS NTAPI NtOpenProcess(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, CLIENT_ID *);

#define SECRET_SIZE 4096

/* ---- the probe ---- */

static volatile LONG g_apcs, g_remote;
static uint8_t *g_secret;

static void CALLBACK apc_arrived(ULONG_PTR arg)
{
    InterlockedIncrement(&g_apcs);
}

static DWORD WINAPI remote_arrived(void *arg)
{
    InterlockedIncrement(&g_remote);
    return 0;
}

static unsigned long long page_hash(const uint8_t *p, size_t n)
{
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int target(const char *info, int seconds)
{
    g_secret = VirtualAlloc(NULL, SECRET_SIZE, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    for (int i = 0; i < SECRET_SIZE; i++)
        g_secret[i] = (uint8_t)(i * 7 + 3);
    memcpy(g_secret, "TOP-SECRET", 10);
    unsigned long long start_hash = page_hash(g_secret, SECRET_SIZE);
    /* A free address an attacker could try to allocate at. */
    uint8_t *free_spot = VirtualAlloc(NULL, 65536, MEM_RESERVE, PAGE_NOACCESS);
    VirtualFree(free_spot, 0, MEM_RELEASE);
    HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD priority = GetPriorityClass(GetCurrentProcess());
    HANDLE me;
    DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &me, 0, FALSE,
                    DUPLICATE_SAME_ACCESS);

    printf("info %lu %lu %p %p %p %p %p\n", (unsigned long)GetCurrentProcessId(), (unsigned long)GetCurrentThreadId(),
           (void *)g_secret, (void *)free_spot, (void *)apc_arrived, (void *)remote_arrived, (void *)event);
    fflush(stdout);
    const char *stop = info;
    DWORD began = GetTickCount(), last = began, max_gap = 0;
    while (GetTickCount() - began < (DWORD)seconds * 1000 && GetFileAttributesA(stop) == INVALID_FILE_ATTRIBUTES) {
        SleepEx(50, TRUE);   /* alertable: an APC that arrives runs here */
        DWORD now = GetTickCount();
        if (now - last > max_gap)
            max_gap = now - last;
        last = now;
    }
    MEMORY_BASIC_INFORMATION mbi, spot;
    VirtualQuery(g_secret, &mbi, sizeof mbi);
    VirtualQuery(free_spot, &spot, sizeof spot);
    int hash_ok = mbi.State == MEM_COMMIT && mbi.Protect == PAGE_READWRITE &&
                  page_hash(g_secret, SECRET_SIZE) == start_hash;
    DWORD flags;
    BOOL debugger = FALSE;
    CheckRemoteDebuggerPresent(GetCurrentProcess(), &debugger);
    printf("report hash_ok=%d apcs=%ld remote=%ld maxgap_ms=%lu prot_ok=%d free_ok=%d event_signaled=%d "
           "event_valid=%d debugger=%d priority_ok=%d\n",
           hash_ok, g_apcs, g_remote, (unsigned long)max_gap,
           mbi.State == MEM_COMMIT && mbi.Protect == PAGE_READWRITE, spot.State == MEM_FREE,
           WaitForSingleObject(event, 0) == WAIT_OBJECT_0, GetHandleInformation(event, &flags) != 0,
           debugger || IsDebuggerPresent(), GetPriorityClass(GetCurrentProcess()) == priority);
    fflush(stdout);
    return 0;
}

/* ---- the attacker ---- */

static void result(const char *attempt, BOOL done, const char *detail)
{
    printf("%s %s %s\n", attempt, done ? "DONE" : "refused", detail ? detail : "");
    fflush(stdout);
}

static void result_error(const char *attempt, BOOL done)
{
    char detail[32];
    snprintf(detail, sizeof detail, "error=%lu", done ? 0ul : (unsigned long)GetLastError());
    result(attempt, done, detail);
}

static HANDLE open_full(DWORD pid)
{
    return OpenProcess(PROCESS_ALL_ACCESS, FALSE, pid);
}

static int attack(char **info)
{
    unsigned long pid = strtoul(info[0], NULL, 10), tid = strtoul(info[1], NULL, 10);
    void *secret, *free_spot, *apc_fn, *remote_fn, *event;
    sscanf(info[2], "%p", &secret);
    sscanf(info[3], "%p", &free_spot);
    sscanf(info[4], "%p", &apc_fn);
    sscanf(info[5], "%p", &remote_fn);
    sscanf(info[6], "%p", &event);

    HANDLE p = open_full(pid);
    result_error("open-process", p != NULL);
    HANDLE pq = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, pid);
    result_error("open-process-query", pq != NULL);
    HANDLE t = OpenThread(THREAD_ALL_ACCESS, FALSE, tid);
    result_error("open-thread", t != NULL);
    /* Without a handle of its own, a program walks to one. */
    HANDLE walk = NULL, next;
    BOOL walked = FALSE;
    while (!walked && NtGetNextProcess(walk, PROCESS_ALL_ACCESS, 0, 0, &next) >= 0) {
        if (walk)
            CloseHandle(walk);
        walk = next;
        walked = GetProcessId(walk) == pid;
    }
    result("next-process", walked, NULL);
    if (walked && !p)
        p = walk;   /* go on with what the walk gave */
    HANDLE use = p ? p : pq;

    char buf[16] = {0};
    SIZE_T n = 0;
    BOOL ok = ReadProcessMemory(use, secret, buf, 10, &n) && !memcmp(buf, "TOP-SECRET", 10);
    result_error("read-memory", ok);
    ok = WriteProcessMemory(use, secret, "HACKED", 6, &n);
    result_error("write-memory", ok);
    DWORD old;
    ok = VirtualProtectEx(use, secret, SECRET_SIZE, PAGE_READONLY, &old);
    result_error("protect-memory", ok);
    MEMORY_BASIC_INFORMATION mbi;
    ok = VirtualQueryEx(use, secret, &mbi, sizeof mbi) != 0;
    result_error("query-memory", ok);
    ok = VirtualAllocEx(use, free_spot, 4096, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE) != NULL;
    result_error("allocate-memory", ok);
    ok = VirtualFreeEx(use, secret, 0, MEM_RELEASE);
    result_error("free-memory", ok);
    HANDLE section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 4096, NULL);
    void *view = NULL;
    SIZE_T size = 0;
    ok = NtMapViewOfSection(section, use, &view, 0, 0, NULL, &size, 2, 0, PAGE_READWRITE) >= 0;
    result("map-memory", ok, NULL);
    CloseHandle(section);
    HANDLE remote = CreateRemoteThread(use, NULL, 0, (LPTHREAD_START_ROUTINE)remote_fn, NULL, 0, NULL);
    result_error("remote-thread", remote != NULL);
    if (remote)
        WaitForSingleObject(remote, 2000);
    /* A thread handle from an open, or else from a remote thread's
     * neighbour: the target's main thread. */
    HANDLE th = t;
    ok = th && QueueUserAPC((PAPCFUNC)apc_fn, th, 0);
    result_error("queue-apc", ok);
    ok = th && SuspendThread(th) != (DWORD)-1;
    result_error("suspend-thread", ok);
    if (ok) {
        Sleep(800);
        ResumeThread(th);
    }
    ok = th && ResumeThread(th) != (DWORD)-1;
    result_error("resume-thread", ok);
    CONTEXT ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.ContextFlags = CONTEXT_FULL;
    ok = th && GetThreadContext(th, &ctx);
    result_error("get-context", ok);
    ok = th && ctx.Rip && SetThreadContext(th, &ctx);
    result_error("set-context", ok);
    ok = NtSuspendProcess(use) >= 0;
    result("suspend-process", ok, NULL);
    if (ok) {
        Sleep(800);
        NtResumeProcess(use);
    }
    ok = SetPriorityClass(use, IDLE_PRIORITY_CLASS);
    result_error("set-information", ok);
    HANDLE stolen = NULL;
    ok = DuplicateHandle(use, (HANDLE)event, GetCurrentProcess(), &stolen, 0, FALSE, DUPLICATE_SAME_ACCESS);
    if (ok)
        SetEvent(stolen);
    result_error("duplicate-out", ok);
    HANDLE mine = CreateEventW(NULL, FALSE, FALSE, NULL), planted = NULL;
    ok = DuplicateHandle(GetCurrentProcess(), mine, use, &planted, 0, FALSE, DUPLICATE_SAME_ACCESS);
    result_error("duplicate-in", ok);
    ok = DuplicateHandle(use, (HANDLE)event, NULL, NULL, 0, FALSE, DUPLICATE_CLOSE_SOURCE);
    result_error("close-remote-handle", ok);
    ok = DebugActiveProcess(pid);
    if (ok)
        DebugActiveProcessStop(pid);
    result_error("debug-attach", ok);
    ok = th && TerminateThread(th, 9);
    result_error("terminate-thread", ok);
    ok = TerminateProcess(use, 9);
    result_error("terminate-process", ok);
    return 0;
}

/* ---- listings ---- */

static int in_toolhelp(DWORD pid, DWORD *count)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    PROCESSENTRY32W e = {sizeof e};
    int found = 0;
    *count = 0;
    for (BOOL more = Process32FirstW(snap, &e); more; more = Process32NextW(snap, &e)) {
        (*count)++;
        found |= e.th32ProcessID == pid;
    }
    CloseHandle(snap);
    return found;
}

static int in_handle_list(DWORD pid)
{
    ULONG size = 1 << 20, got = 0;
    uint8_t *buf = malloc(size);
    NTSTATUS st;
    while ((st = NtQuerySystemInformation((SYSTEM_INFORMATION_CLASS)64, buf, size, &got)) ==
           (NTSTATUS)0xC0000004L && size < (64u << 20)) {
        size *= 2;
        buf = realloc(buf, size);
    }
    int found = 0;
    if (st >= 0) {
        ULONG_PTR count = *(ULONG_PTR *)buf;
        for (ULONG_PTR i = 0; i < count && 16 + (i + 1) * 40 <= got; i++)
            found |= *(ULONG_PTR *)(buf + 16 + i * 40 + 8) == pid;
    }
    free(buf);
    return found;
}

static int list(DWORD pid)
{
    DWORD count;
    int toolhelp = in_toolhelp(pid, &count);
    DWORD pids[4096], bytes = 0;
    int enumerated = 0;
    if (EnumProcesses(pids, sizeof pids, &bytes))
        for (DWORD i = 0; i < bytes / sizeof(DWORD); i++)
            enumerated |= pids[i] == pid;
    ULONG size = 1 << 20, got = 0;
    uint8_t *buf = malloc(size);
    int ntquery = 0;
    if (NtQuerySystemInformation(SystemProcessInformation, buf, size, &got) >= 0) {
        for (ULONG off = 0;;) {
            SYSTEM_PROCESS_INFORMATION *e = (SYSTEM_PROCESS_INFORMATION *)(buf + off);
            ntquery |= (DWORD)(ULONG_PTR)e->UniqueProcessId == pid;
            if (!e->NextEntryOffset)
                break;
            off += e->NextEntryOffset;
        }
    }
    free(buf);
    HANDLE walk = NULL, next;
    int walked = 0;
    while (NtGetNextProcess(walk, PROCESS_QUERY_LIMITED_INFORMATION, 0, 0, &next) >= 0) {
        if (walk)
            CloseHandle(walk);
        walk = next;
        walked |= GetProcessId(walk) == pid;
    }
    printf("toolhelp=%d enumprocesses=%d ntquery=%d nextprocess=%d handles=%d count=%lu\n", toolhelp, enumerated,
           ntquery, walked, in_handle_list(pid), (unsigned long)count);
    return 0;
}

static int pidof(const wchar_t *name)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    PROCESSENTRY32W e = {sizeof e};
    for (BOOL more = Process32FirstW(snap, &e); more; more = Process32NextW(snap, &e))
        if (!_wcsicmp(e.szExeFile, name))
            printf("%lu\n", (unsigned long)e.th32ProcessID);
    CloseHandle(snap);
    return 0;
}

/* What issue 17 did to another box's broker. */
static int plunder(DWORD pid)
{
    HANDLE p = open_full(pid);
    int dup = 0;
    for (ULONG_PTR h = 4; p && h <= 4096; h += 4) {
        HANDLE got;
        if (DuplicateHandle(p, (HANDLE)h, GetCurrentProcess(), &got, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
            dup++;
            CloseHandle(got);
        }
    }
    int killed = p && TerminateProcess(p, 7);
    printf("open=%d dup=%d kill=%d\n", p != NULL, dup, killed);
    return 0;
}

static int give(DWORD target_pid, DWORD to_pid, const char *file)
{
    HANDLE target = open_full(target_pid), to = open_full(to_pid), planted = NULL;
    if (!target || !to || !DuplicateHandle(GetCurrentProcess(), target, to, &planted, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return printf("ERR give %lu\n", (unsigned long)GetLastError()), 1;
    char tmp[MAX_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    fprintf(f, "%p\n", (void *)planted);
    fclose(f);
    MoveFileExA(tmp, file, MOVEFILE_REPLACE_EXISTING);
    printf("given %p\n", (void *)planted);
    return 0;
}

static int use(const char *file, const char *secret_text)
{
    printf("pid %lu\n", (unsigned long)GetCurrentProcessId());
    fflush(stdout);
    void *h = NULL;
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(file, "r");
        if (f) {
            int got = fscanf(f, "%p", &h);
            fclose(f);
            if (got == 1)
                break;
        }
        Sleep(50);
    }
    void *secret = NULL;
    sscanf(secret_text, "%p", &secret);
    if (!h)
        return printf("ERR use\n"), 2;
    char buf[16] = {0};
    SIZE_T n;
    BOOL ok = ReadProcessMemory(h, secret, buf, 10, &n) && !memcmp(buf, "TOP-SECRET", 10);
    result_error("given-read-memory", ok);
    ok = WriteProcessMemory(h, secret, "HACKED", 6, &n);
    result_error("given-write-memory", ok);
    ok = TerminateProcess(h, 9);
    result_error("given-terminate", ok);
    return 0;
}

static int kids(int count)
{
    wchar_t self[MAX_PATH], cmd[MAX_PATH + 32];
    GetModuleFileNameW(NULL, self, MAX_PATH);
    swprintf(cmd, MAX_PATH + 32, L"\"%ls\" sleep 1500", self);
    int started = 0;
    for (int i = 0; i < count; i++) {
        STARTUPINFOW si = {sizeof si};
        PROCESS_INFORMATION pi;
        wchar_t line[MAX_PATH + 32];
        wcscpy(line, cmd);
        if (CreateProcessW(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
            started++;
            CloseHandle(pi.hThread);
            CloseHandle(pi.hProcess);
        }
    }
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    PROCESSENTRY32W e = {sizeof e};
    int found = 0, waited = 0;
    for (BOOL more = Process32FirstW(snap, &e); more; more = Process32NextW(snap, &e)) {
        if (e.th32ParentProcessID != GetCurrentProcessId())
            continue;
        found++;
        HANDLE child = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, e.th32ProcessID);
        if (child && WaitForSingleObject(child, 10000) == WAIT_OBJECT_0)
            waited++;
        if (child)
            CloseHandle(child);
    }
    CloseHandle(snap);
    printf("started=%d found=%d waited=%d\n", started, found, waited);
    return 0;
}

static int spawn(int count, int ms)
{
    wchar_t self[MAX_PATH], line[MAX_PATH + 32];
    GetModuleFileNameW(NULL, self, MAX_PATH);
    HANDLE children[64];
    int started = 0, failed = 0;
    DWORD error = 0;
    for (int i = 0; i < count && i < 64; i++) {
        swprintf(line, MAX_PATH + 32, L"\"%ls\" sleep %d", self, ms);
        STARTUPINFOW si = {sizeof si};
        PROCESS_INFORMATION pi;
        if (CreateProcessW(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
            CloseHandle(pi.hThread);
            children[started++] = pi.hProcess;
        } else {
            failed++;
            error = GetLastError();
        }
    }
    printf("started=%d failed=%d error=%lu\n", started, failed, (unsigned long)error);
    fflush(stdout);
    for (int i = 0; i < started; i++)
        WaitForSingleObject(children[i], 30000);
    return 0;
}

static int readmem(DWORD pid)
{
    HANDLE p = OpenProcess(PROCESS_VM_READ | PROCESS_QUERY_INFORMATION, FALSE, pid);
    char buf[2];
    SIZE_T n;
    BOOL ok = p && ReadProcessMemory(p, (void *)GetModuleHandleW(L"ntdll.dll"), buf, 2, &n);
    printf("read=%d error=%lu\n", ok, ok ? 0ul : (unsigned long)GetLastError());
    return 0;
}

/* The DACL of a process as SDDL (confidential boxes set one). */
static int dacl(DWORD pid)
{
    HANDLE p = OpenProcess(READ_CONTROL | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    PSECURITY_DESCRIPTOR sd = NULL;
    wchar_t *text = NULL;
    if (!p || GetSecurityInfo(p, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL, NULL, &sd) ||
        !ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text,
                                                              NULL))
        return printf("ERR dacl %lu\n", (unsigned long)GetLastError()), 1;
    printf("dacl %ls\n", text);
    return 0;
}

/* A host program that owns the process tries to rewrite its DACL, then
 * reads it: "rewrite=0 read=0". */
static int unlock(DWORD pid)
{
    HANDLE p = OpenProcess(WRITE_DAC, FALSE, pid);
    BOOL rewrote = p && SetSecurityInfo(p, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL, NULL) ==
                           ERROR_SUCCESS;
    printf("rewrite=%d ", rewrote);
    return readmem(pid);
}

int wmain(int argc, wchar_t **wargv)
{
    char *argv[16] = {0};
    for (int i = 0; i < argc && i < 16; i++) {
        argv[i] = malloc(MAX_PATH * 3);
        WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, argv[i], MAX_PATH * 3, NULL, NULL);
    }
    if (argc >= 4 && !strcmp(argv[1], "target"))
        return target(argv[2], atoi(argv[3]));
    if (argc >= 9 && !strcmp(argv[1], "attack"))
        return attack(argv + 2);
    if (argc >= 3 && !strcmp(argv[1], "pidof")) {
        wchar_t name[MAX_PATH];
        MultiByteToWideChar(CP_ACP, 0, argv[2], -1, name, MAX_PATH);
        return pidof(name);
    }
    if (argc >= 3 && !strcmp(argv[1], "list"))
        return list((DWORD)strtoul(argv[2], NULL, 10));
    if (argc >= 3 && !strcmp(argv[1], "plunder"))
        return plunder((DWORD)strtoul(argv[2], NULL, 10));
    if (argc >= 5 && !strcmp(argv[1], "give"))
        return give((DWORD)strtoul(argv[2], NULL, 10), (DWORD)strtoul(argv[3], NULL, 10), argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "use"))
        return use(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "kids"))
        return kids(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "sleep"))
        return Sleep((DWORD)atoi(argv[2])), 0;
    if (argc >= 4 && !strcmp(argv[1], "spawn"))
        return spawn(atoi(argv[2]), atoi(argv[3]));
    if (argc >= 3 && !strcmp(argv[1], "unlock"))
        return unlock((DWORD)strtoul(argv[2], NULL, 10));
    if (argc >= 3 && !strcmp(argv[1], "dacl"))
        return dacl((DWORD)strtoul(argv[2], NULL, 10));
    if (argc >= 3 && !strcmp(argv[1], "readmem"))
        return readmem((DWORD)strtoul(argv[2], NULL, 10));
    fprintf(stderr, "usage: proctool target|attack|pidof|list|plunder|give|use|kids|sleep|spawn|readmem ...\n");
    return 2;
}

/* guard.c - every process in the box's job runs the runtime, or is stopped.
 *
 * A process enters the job by inheritance: every process a boxed program
 * creates is in it, hooked or not. The runtime boxes what it creates, but
 * the platform can start processes on a boxed process's behalf before that
 * process is hooked (conhost.exe from kernelbase's console set-up did, and
 * wrote the host registry). So the broker checks each new member the job
 * reports: it is boxed when fvm.dll (the one next to this broker) is loaded
 * in it, or when its main image still carries the injection (its first
 * import is that fvm.dll: created suspended, the loader will load it or
 * refuse to start the process). A member that shows neither within
 * GUARD_WAIT_MS (the creating hook injects within milliseconds) is
 * terminated and the case audited.
 *
 * Wine's desktop process, which a boxed program's first window would start
 * below the hooks, is started by the broker before the box runs (below).
 *
 * The first look is the completion-port loop's own, GUARD_FIRST_LOOK_MS
 * after the process appeared, on the handle procs.c keeps for the member
 * (no second open, no thread woken): a process that has ended by then (its
 * exit news drops it first) costs nothing, one that runs fvm.dll at its
 * preferred base (nearly all) one call. Anything else - the injection still
 * pending, fvm.dll elsewhere, no fvm.dll - goes to the thread pool with a
 * handle of its own, where the slower checks (cross-process reads, the
 * module list) and the waiting never hold up the loop. */
#include <windows.h>
#include <winternl.h>
#include <psapi.h>
#include <stdint.h>
#include <string.h>
#include <wchar.h>

#include "broker/broker.h"
#include "common/inject.h"
#include "core/policy.h"

#define GUARD_WAIT_MS 3000
/* The first look: by then most processes have loaded fvm.dll (two calls to
 * tell) or ended (none); before it, a starting process still needs the
 * header reads, each of which stops it under Wine's ptrace-based
 * cross-process reads. */
#define GUARD_FIRST_LOOK_MS 60
#define GUARD_EXIT_CODE 0xC0000022u   /* STATUS_ACCESS_DENIED */

typedef enum member_state { MEMBER_PENDING, MEMBER_BOXED, MEMBER_GONE } member_state;

static wchar_t g_runtime_path[MAX_PATH];   /* fvm.dll next to fvm-broker.exe */
static char g_runtime_path_ansi[MAX_PATH];

static BOOL read_remote(HANDLE process, uint64_t addr, void *buf, size_t size)
{
    SIZE_T done = 0;
    return ReadProcessMemory(process, (void *)(UINT_PTR)addr, buf, size, &done) && done == size;
}

static uint64_t g_runtime_base;   /* fvm.dll's preferred base, from its headers */

/* fvm.dll mapped at its preferred base (where it nearly always loads): one
 * call, where listing the modules reads the whole loader list remotely. The
 * mapped file's name is a request to the server; a VirtualQueryEx (the old
 * first call) is an APC that the target must wake up to run under Wine. */
static BOOL runtime_at_base(HANDLE process)
{
    wchar_t mapped[MAX_PATH];
    if (!g_runtime_base || !K32GetMappedFileNameW(process, (void *)(UINT_PTR)g_runtime_base, mapped, MAX_PATH))
        return FALSE;
    const wchar_t *base = wcsrchr(mapped, L'\\');
    return base && !_wcsicmp(base, L"\\fvm.dll");
}

/* fvm.dll, by full path, among the process's loaded modules. */
static BOOL runtime_loaded(HANDLE process)
{
    HMODULE modules[512];
    DWORD needed = 0;
    if (!K32EnumProcessModulesEx(process, modules, sizeof modules, &needed, LIST_MODULES_ALL))
        return FALSE;
    DWORD count = needed / sizeof modules[0];
    if (count > 512)
        count = 512;
    for (DWORD i = 0; i < count; i++) {
        wchar_t name[MAX_PATH];
        if (K32GetModuleFileNameExW(process, modules[i], name, MAX_PATH) && !_wcsicmp(name, g_runtime_path))
            return TRUE;
    }
    return FALSE;
}

/* The main image's first import names fvm.dll: injected, not yet loaded. */
static BOOL injection_pending(HANDLE process)
{
    PROCESS_BASIC_INFORMATION info;
    ULONG got = 0;
    if (NtQueryInformationProcess(process, ProcessBasicInformation, &info, sizeof info, &got) < 0 ||
        !info.PebBaseAddress)
        return FALSE;
    uint64_t base = 0;   /* PEB.ImageBaseAddress (x64) */
    if (!read_remote(process, (uint64_t)(UINT_PTR)info.PebBaseAddress + 0x10, &base, sizeof base) || !base)
        return FALSE;
    IMAGE_DOS_HEADER dos;
    IMAGE_NT_HEADERS64 nt;
    if (!read_remote(process, base, &dos, sizeof dos) || dos.e_magic != IMAGE_DOS_SIGNATURE ||
        dos.e_lfanew <= 0 || dos.e_lfanew > 0x10000 ||
        !read_remote(process, base + (uint32_t)dos.e_lfanew, &nt, sizeof nt) || nt.Signature != IMAGE_NT_SIGNATURE)
        return FALSE;
    uint32_t imports = nt.OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT].VirtualAddress;
    IMAGE_IMPORT_DESCRIPTOR first;
    if (!imports || !read_remote(process, base + imports, &first, sizeof first) || !first.Name)
        return FALSE;
    char name[MAX_PATH];
    size_t len = strlen(g_runtime_path_ansi) + 1;
    return len <= sizeof name && read_remote(process, base + first.Name, name, len) &&
           !_stricmp(name, g_runtime_path_ansi);
}

static member_state check(HANDLE process)
{
    if (WaitForSingleObject(process, 0) == WAIT_OBJECT_0)
        return MEMBER_GONE;
    if (runtime_at_base(process) || injection_pending(process) || runtime_loaded(process))
        return MEMBER_BOXED;
    return MEMBER_PENDING;
}

static void audit_stopped(DWORD pid, HANDLE process)
{
    wchar_t image[MAX_PATH] = L"?";
    DWORD len = MAX_PATH;
    QueryFullProcessImageNameW(process, 0, image, &len);
    char image_utf8[MAX_PATH * 3];
    int n = WideCharToMultiByte(CP_UTF8, 0, image, -1, image_utf8, sizeof image_utf8, NULL, NULL);
    size_t image_len = n > 0 ? (size_t)n - 1 : 0;
    static const char op[] = "unboxed-member", decision[] = "deny", rule[] = "built-in:0";
    brokermsg_audit msg = {
        POLICY_TYPE_PROCESS, pid, {op, sizeof op - 1}, {decision, sizeof decision - 1}, {rule, sizeof rule - 1},
        {image_utf8, image_len}, {image_utf8, image_len},
    };
    broker_audit_write(&msg);
}

typedef struct guard_work {
    HANDLE process;
    DWORD pid;
} guard_work;

static HANDLE g_job;

/* On the pool: a member the first look did not settle, looked at again
 * (first at once) until GUARD_WAIT_MS. */
static DWORD WINAPI guard_member(void *arg)
{
    guard_work *work = arg;
    HANDLE process = work->process;
    DWORD pid = work->pid;
    HeapFree(GetProcessHeap(), 0, work);
    /* Pids are reused quickly: act only on a process that is in the job. */
    BOOL in_job = FALSE;
    if (!IsProcessInJob(process, g_job, &in_job) || !in_job) {
        CloseHandle(process);
        return 0;
    }
    member_state state = check(process);
    for (DWORD waited = GUARD_FIRST_LOOK_MS, step = 2 * GUARD_FIRST_LOOK_MS;
         state == MEMBER_PENDING && waited < GUARD_WAIT_MS; waited += step, step = step < 200 ? step * 2 : step) {
        Sleep(step);
        state = check(process);
    }
    /* Not even started (a loaded machine): terminating it now would crash
     * Wine's server (fvm_process_not_started); wait a while longer for its
     * start or end. One that never starts (its creator died before Wine
     * spawned it) runs nothing and is terminated as it is. */
    for (int i = 0; i < 25 && state == MEMBER_PENDING && fvm_process_not_started(process) &&
                    WaitForSingleObject(process, 200) == WAIT_TIMEOUT; i++)
        ;
    if (state == MEMBER_PENDING && (state = check(process)) == MEMBER_PENDING) {
        TerminateProcess(process, GUARD_EXIT_CODE);
        audit_stopped(pid, process);
    }
    CloseHandle(process);
    return 0;
}

/* Wine's desktop process (explorer.exe /desktop) is started by the first
 * process that needs a window, from win32u's Unix side, below every hook:
 * started by a boxed program it joined the box's job unboxed (the guard
 * stopped it, and the box's windows with it), and it would have ended with
 * the box. With a display, the broker makes sure the desktop runs before the
 * box's first process, so it is started here, outside the job; the broker
 * uses the desktop for the box's lifetime, so it does not close meanwhile.
 * user32 is loaded only then: a box without a display pays nothing. */
static void desktop_outside_the_box(void)
{
    wchar_t display[64];
    if (!GetEnvironmentVariableW(L"DISPLAY", display, 64) || !display[0])
        return;
    HMODULE user32 = LoadLibraryW(L"user32.dll");
    HWND (WINAPI *desktop_window)(void) =
        user32 ? (HWND (WINAPI *)(void))(void *)GetProcAddress(user32, "GetDesktopWindow") : NULL;
    if (desktop_window)
        desktop_window();
}

BOOL broker_guard_start(HANDLE job)
{
    g_job = job;
    desktop_outside_the_box();
    DWORD n = GetModuleFileNameW(NULL, g_runtime_path, MAX_PATH);
    if (!n || n >= MAX_PATH)
        return FALSE;
    wchar_t *slash = wcsrchr(g_runtime_path, L'\\');
    if (!slash || (size_t)(slash - g_runtime_path) + 9 >= MAX_PATH)
        return FALSE;
    wcscpy(slash + 1, L"fvm.dll");
    HANDLE file = CreateFileW(g_runtime_path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL,
                              OPEN_EXISTING, 0, NULL);
    if (file != INVALID_HANDLE_VALUE) {
        uint8_t head[4096];
        DWORD got = 0;
        if (ReadFile(file, head, sizeof head, &got, NULL) && got >= sizeof(IMAGE_DOS_HEADER)) {
            const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)head;
            if (dos->e_lfanew > 0 && (size_t)dos->e_lfanew + sizeof(IMAGE_NT_HEADERS64) <= got) {
                const IMAGE_NT_HEADERS64 *nt = (const IMAGE_NT_HEADERS64 *)(head + dos->e_lfanew);
                if (nt->Signature == IMAGE_NT_SIGNATURE)
                    g_runtime_base = nt->OptionalHeader.ImageBase;
            }
        }
        CloseHandle(file);
    }
    /* The injector names fvm.dll by this ANSI path (common/inject.c). */
    return WideCharToMultiByte(CP_ACP, 0, g_runtime_path, -1, g_runtime_path_ansi, sizeof g_runtime_path_ansi,
                               NULL, NULL) > 0;
}

/* Hands a member to the pool with a handle of its own (its entry's handle
 * is procs.c's and closes at the member's exit). */
static void to_pool(uint32_t pid, HANDLE borrowed)
{
    HANDLE process = NULL;
    if (borrowed)
        DuplicateHandle(GetCurrentProcess(), borrowed, GetCurrentProcess(), &process, 0, FALSE,
                        DUPLICATE_SAME_ACCESS);
    else
        process = OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ | PROCESS_TERMINATE | SYNCHRONIZE, FALSE,
                              pid);
    if (!process)
        return;   /* already gone */
    guard_work *work = HeapAlloc(GetProcessHeap(), 0, sizeof *work);
    if (!work) {
        CloseHandle(process);
        return;
    }
    work->process = process;
    work->pid = pid;
    if (!QueueUserWorkItem(guard_member, work, WT_EXECUTELONGFUNCTION))
        guard_member(work);
}

/* Members waiting for their first look, oldest first (their due times
 * only grow). Touched by the main loop only, under its sync lock. */
#define GUARD_PENDING_MAX 1024
typedef struct pending_member {
    uint32_t pid;
    HANDLE process;   /* procs.c's, valid until broker_guard_gone(pid) */
    DWORD due;        /* GetTickCount of the first look */
} pending_member;
static pending_member g_pending[GUARD_PENDING_MAX];
static size_t g_pending_count;

void broker_guard_member(uint32_t pid, HANDLE process)
{
    if (!process || g_pending_count == GUARD_PENDING_MAX) {
        to_pool(pid, process);
        return;
    }
    g_pending[g_pending_count++] = (pending_member){pid, process, GetTickCount() + GUARD_FIRST_LOOK_MS};
}

void broker_guard_gone(uint32_t pid)
{
    for (size_t i = 0; i < g_pending_count; i++) {
        if (g_pending[i].pid == pid) {
            memmove(g_pending + i, g_pending + i + 1, (g_pending_count - i - 1) * sizeof g_pending[0]);
            g_pending_count--;
            return;
        }
    }
}

DWORD broker_guard_looks(void)
{
    DWORD now = GetTickCount();
    size_t done = 0;
    for (; done < g_pending_count && (LONG)(g_pending[done].due - now) <= 0; done++) {
        pending_member *m = &g_pending[done];
        if (WaitForSingleObject(m->process, 0) == WAIT_OBJECT_0 || runtime_at_base(m->process))
            continue;   /* ended (its news not read yet), or boxed */
        to_pool(m->pid, m->process);
    }
    memmove(g_pending, g_pending + done, (g_pending_count - done) * sizeof g_pending[0]);
    g_pending_count -= done;
    if (!g_pending_count)
        return INFINITE;
    LONG left = (LONG)(g_pending[0].due - GetTickCount());
    return left > 0 ? (DWORD)left : 0;
}

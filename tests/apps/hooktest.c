/* hooktest.c - proves the hook engine (src/runtime/hook) on real code.
 *
 * Links the engine's objects directly and, under Wine, hooks in one batch a
 * representative set of real functions, one for each prologue shape the
 * engine must relocate: ntdll syscall stubs, a kernelbase hot-patch
 * prologue, the kernel32 `ff 25` thunk, user32!GetDC (`ff 25` at byte 0),
 * user32!SetWindowDisplayAffinity (`test [rip],1` in the stolen bytes),
 * ws2_32!connect, winspool!OpenPrinterW (`call rel32` after the patch).
 * Each detour counts the calls made on the main thread and forwards to the
 * trampoline; each function is then called normally and must give the same
 * result as before hooking. Meanwhile a second thread hammers two hooked
 * functions while the batch is installed, and a third thread is parked by
 * hand in the middle of the bytes being patched: it only survives if the
 * engine moves it into the trampoline. Further batches check refusals
 * (nothing may change), installation under the loader lock, and hooking a
 * hooked function again.
 *
 * Output: one line per check, `HOOK <name> calls=<n> result=<ok|...>` for
 * the hooked functions, and `ALL OK` last if every check passed. */
#include <winsock2.h>
#include <windows.h>
#include <winternl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "runtime/hook/hook.h"

/* ---- local functions with known prologues --------------------------------- */

/* Five one-byte nops first, so a thread can be stopped at bytes 1-4, inside
 * the 5-byte patch. Each returns rcx+1. refuse_bad starts with 3DNow!
 * (0f 0f), which the decoder refuses; refuse_short is shorter than a patch. */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl hot_target\n"
        "hot_target:\n"
        "    nop\n    nop\n    nop\n    nop\n    nop\n"
        "    leal 1(%rcx), %eax\n"
        "    ret\n"
        ".p2align 4\n"
        ".globl park_target\n"
        "park_target:\n"
        "    nop\n    nop\n    nop\n    nop\n    nop\n"
        "    leal 1(%rcx), %eax\n"
        "    ret\n"
        ".p2align 4\n"
        ".globl solo_target\n"
        "solo_target:\n"
        "    nop\n    nop\n    nop\n    nop\n    nop\n"
        "    leal 1(%rcx), %eax\n"
        "    ret\n"
        ".p2align 4\n"
        ".globl refuse_good\n"
        "refuse_good:\n"
        "    nop\n    nop\n    nop\n    nop\n    nop\n"
        "    leal 1(%rcx), %eax\n"
        "    ret\n"
        ".p2align 4\n"
        ".globl refuse_bad\n"
        "refuse_bad:\n"
        "    .byte 0x0f, 0x0f, 0xc1, 0x9e\n"
        "    ret\n"
        ".p2align 4\n"
        ".globl refuse_short\n"
        "refuse_short:\n"
        "    ret\n"
        "    int3\n    int3\n    int3\n    int3\n"
        /* Where the parked thread returns to: ends it with the value
         * park_target computed. Entered by `ret`, so rsp is 16-aligned. */
        ".p2align 4\n"
        ".globl parked_exit\n"
        "parked_exit:\n"
        "    subq $32, %rsp\n"
        "    movl %eax, %ecx\n"
        "    call *__imp_ExitThread(%rip)\n"
        "    int3\n");

int hot_target(int x);
int park_target(int x);
int solo_target(int x);
int refuse_good(int x);
int refuse_bad(int x);
int refuse_short(int x);
void parked_exit(void);

/* ---- the hooked functions ---------------------------------------------------- */

typedef struct file_basic_information {
    LARGE_INTEGER creation, last_access, last_write, change;
    ULONG attributes;
} file_basic_information;

typedef NTSTATUS(NTAPI *NtCreateFile_fn)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, IO_STATUS_BLOCK *,
                                         LARGE_INTEGER *, ULONG, ULONG, ULONG, ULONG, void *, ULONG);
typedef NTSTATUS(NTAPI *NtQueryAttributesFile_fn)(OBJECT_ATTRIBUTES *, file_basic_information *);
typedef NTSTATUS(NTAPI *NtCreateMutant_fn)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, BOOLEAN);
typedef NTSTATUS(NTAPI *LdrLoadDll_fn)(const WCHAR *, ULONG *, UNICODE_STRING *, HANDLE *);
typedef HANDLE(WINAPI *CreateFileW_fn)(const WCHAR *, DWORD, DWORD, SECURITY_ATTRIBUTES *, DWORD, DWORD, HANDLE);
typedef HDC(WINAPI *GetDC_fn)(HWND);
typedef BOOL(WINAPI *SetWindowDisplayAffinity_fn)(HWND, DWORD);
typedef int(WINAPI *StartDocW_fn)(HDC, const DOCINFOW *);
typedef int(WSAAPI *connect_fn)(SOCKET, const struct sockaddr *, int);
typedef BOOL(WINAPI *OpenPrinterW_fn)(WCHAR *, HANDLE *, void *);
typedef int (*local_fn)(int);

NTSTATUS NTAPI LdrLockLoaderLock(ULONG flags, ULONG *disposition, ULONG_PTR *cookie);
NTSTATUS NTAPI LdrUnlockLoaderLock(ULONG flags, ULONG_PTR cookie);

enum hooked {
    H_NtCreateFile,
    H_NtQueryAttributesFile,
    H_NtCreateMutant,
    H_kernelbase_CreateFileW,
    H_kernel32_CreateFileW,
    H_GetDC,
    H_SetWindowDisplayAffinity,
    H_StartDocW,
    H_connect,
    H_OpenPrinterW,
    H_hot_target,
    H_park_target,
    H_LdrLoadDll,
    H_hot_target_again,
    H_solo_target,
    H_COUNT
};

static const char *const hooked_names[H_COUNT] = {
    "ntdll!NtCreateFile", "ntdll!NtQueryAttributesFile", "ntdll!NtCreateMutant", "kernelbase!CreateFileW",
    "kernel32!CreateFileW", "user32!GetDC", "user32!SetWindowDisplayAffinity", "gdi32!StartDocW",
    "ws2_32!connect", "winspool!OpenPrinterW", "hooktest!hot_target", "hooktest!park_target",
    "ntdll!LdrLoadDll", "hooktest!hot_target(2nd hook)", "hooktest!solo_target",
};

static DWORD g_main_thread;
static volatile LONG g_main_calls[H_COUNT];  /* detour entries on the main thread */
static volatile LONG g_other_calls[H_COUNT]; /* ... on any other thread */
static void *g_target[H_COUNT];
static void *g_original[H_COUNT];

static void count_call(enum hooked which)
{
    InterlockedIncrement(GetCurrentThreadId() == g_main_thread ? &g_main_calls[which] : &g_other_calls[which]);
}

#define ORIGINAL(which, type) ((type)g_original[which])

static NTSTATUS NTAPI detour_NtCreateFile(HANDLE *h, ACCESS_MASK a, OBJECT_ATTRIBUTES *o, IO_STATUS_BLOCK *io,
                                          LARGE_INTEGER *size, ULONG attr, ULONG share, ULONG disp, ULONG opt,
                                          void *ea, ULONG ea_len)
{
    count_call(H_NtCreateFile);
    return ORIGINAL(H_NtCreateFile, NtCreateFile_fn)(h, a, o, io, size, attr, share, disp, opt, ea, ea_len);
}

static NTSTATUS NTAPI detour_NtQueryAttributesFile(OBJECT_ATTRIBUTES *o, file_basic_information *info)
{
    count_call(H_NtQueryAttributesFile);
    return ORIGINAL(H_NtQueryAttributesFile, NtQueryAttributesFile_fn)(o, info);
}

static NTSTATUS NTAPI detour_NtCreateMutant(HANDLE *h, ACCESS_MASK a, OBJECT_ATTRIBUTES *o, BOOLEAN owner)
{
    count_call(H_NtCreateMutant);
    return ORIGINAL(H_NtCreateMutant, NtCreateMutant_fn)(h, a, o, owner);
}

static NTSTATUS NTAPI detour_LdrLoadDll(const WCHAR *path, ULONG *flags, UNICODE_STRING *name, HANDLE *module)
{
    count_call(H_LdrLoadDll);
    return ORIGINAL(H_LdrLoadDll, LdrLoadDll_fn)(path, flags, name, module);
}

static HANDLE WINAPI detour_kernelbase_CreateFileW(const WCHAR *n, DWORD a, DWORD s, SECURITY_ATTRIBUTES *sa,
                                                   DWORD c, DWORD f, HANDLE t)
{
    count_call(H_kernelbase_CreateFileW);
    return ORIGINAL(H_kernelbase_CreateFileW, CreateFileW_fn)(n, a, s, sa, c, f, t);
}

static HANDLE WINAPI detour_kernel32_CreateFileW(const WCHAR *n, DWORD a, DWORD s, SECURITY_ATTRIBUTES *sa,
                                                 DWORD c, DWORD f, HANDLE t)
{
    count_call(H_kernel32_CreateFileW);
    return ORIGINAL(H_kernel32_CreateFileW, CreateFileW_fn)(n, a, s, sa, c, f, t);
}

static HDC WINAPI detour_GetDC(HWND window)
{
    count_call(H_GetDC);
    return ORIGINAL(H_GetDC, GetDC_fn)(window);
}

static BOOL WINAPI detour_SetWindowDisplayAffinity(HWND window, DWORD affinity)
{
    count_call(H_SetWindowDisplayAffinity);
    return ORIGINAL(H_SetWindowDisplayAffinity, SetWindowDisplayAffinity_fn)(window, affinity);
}

static int WINAPI detour_StartDocW(HDC dc, const DOCINFOW *doc)
{
    count_call(H_StartDocW);
    return ORIGINAL(H_StartDocW, StartDocW_fn)(dc, doc);
}

static int WSAAPI detour_connect(SOCKET s, const struct sockaddr *addr, int len)
{
    count_call(H_connect);
    return ORIGINAL(H_connect, connect_fn)(s, addr, len);
}

static BOOL WINAPI detour_OpenPrinterW(WCHAR *name, HANDLE *printer, void *defaults)
{
    count_call(H_OpenPrinterW);
    return ORIGINAL(H_OpenPrinterW, OpenPrinterW_fn)(name, printer, defaults);
}

static int detour_hot_target(int x)
{
    count_call(H_hot_target);
    return ORIGINAL(H_hot_target, local_fn)(x);
}

static int detour_park_target(int x)
{
    count_call(H_park_target);
    return ORIGINAL(H_park_target, local_fn)(x);
}

static int detour_hot_target_again(int x)
{
    count_call(H_hot_target_again);
    return ORIGINAL(H_hot_target_again, local_fn)(x);
}

static int detour_solo_target(int x)
{
    count_call(H_solo_target);
    return ORIGINAL(H_solo_target, local_fn)(x);
}

static void *const detours[H_COUNT] = {
    (void *)detour_NtCreateFile, (void *)detour_NtQueryAttributesFile, (void *)detour_NtCreateMutant,
    (void *)detour_kernelbase_CreateFileW, (void *)detour_kernel32_CreateFileW, (void *)detour_GetDC,
    (void *)detour_SetWindowDisplayAffinity, (void *)detour_StartDocW, (void *)detour_connect,
    (void *)detour_OpenPrinterW, (void *)detour_hot_target, (void *)detour_park_target,
    (void *)detour_LdrLoadDll, (void *)detour_hot_target_again, (void *)detour_solo_target,
};

/* ---- calling each function ------------------------------------------------------ */

static WCHAR g_win_ini_nt[] = L"\\??\\C:\\windows\\win.ini";
static UNICODE_STRING g_win_ini_name;
static OBJECT_ATTRIBUTES g_win_ini_attributes;
static int g_failures;

static void *resolve(const WCHAR *module, const char *function)
{
    HMODULE handle = LoadLibraryW(module);
    return handle ? (void *)GetProcAddress(handle, function) : NULL;
}

/* What a call returned, reduced to what must be identical before and after
 * hooking (a status, a handle's validity, a return value and error code). */
typedef struct outcome {
    long long value;
    unsigned long error;
} outcome;

static outcome call_function(enum hooked which)
{
    outcome out = { 0, 0 };
    switch (which) {
    case H_NtCreateFile: {
        HANDLE h = NULL;
        IO_STATUS_BLOCK io;
        out.value = ((NtCreateFile_fn)g_target[which])(&h, GENERIC_READ | SYNCHRONIZE, &g_win_ini_attributes, &io,
                                                       NULL, 0, FILE_SHARE_READ, 1 /* FILE_OPEN */,
                                                       0x20 /* FILE_SYNCHRONOUS_IO_NONALERT */, NULL, 0);
        if (h) CloseHandle(h);
        break;
    }
    case H_NtQueryAttributesFile: {
        file_basic_information info;
        out.value = ((NtQueryAttributesFile_fn)g_target[which])(&g_win_ini_attributes, &info);
        break;
    }
    case H_NtCreateMutant: {
        HANDLE h = NULL;
        out.value = ((NtCreateMutant_fn)g_target[which])(&h, MUTANT_ALL_ACCESS, NULL, FALSE);
        if (h) CloseHandle(h);
        break;
    }
    case H_kernelbase_CreateFileW:
    case H_kernel32_CreateFileW: {
        HANDLE h = ((CreateFileW_fn)g_target[which])(L"C:\\windows\\win.ini", GENERIC_READ, FILE_SHARE_READ, NULL,
                                                     OPEN_EXISTING, 0, NULL);
        out.value = h != INVALID_HANDLE_VALUE;
        out.error = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
        if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
        break;
    }
    case H_GetDC: {
        /* without a display this may fail; it must fail the same way */
        HDC dc = ((GetDC_fn)g_target[which])(NULL);
        out.value = dc != NULL;
        if (dc) ReleaseDC(NULL, dc);
        break;
    }
    case H_SetWindowDisplayAffinity:
        SetLastError(0);
        out.value = ((SetWindowDisplayAffinity_fn)g_target[which])(NULL, 0);
        out.error = GetLastError();
        break;
    case H_StartDocW: {
        DOCINFOW doc = { sizeof doc, L"fvm hooktest", NULL, NULL, 0 };
        out.value = ((StartDocW_fn)g_target[which])(NULL, &doc);
        break;
    }
    case H_connect: {
        SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
        struct sockaddr_in to;
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        to.sin_port = htons(1); /* nothing listens there: refused at once */
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out.value = ((connect_fn)g_target[which])(s, (struct sockaddr *)&to, sizeof to);
        out.error = out.value ? (unsigned long)WSAGetLastError() : 0;
        closesocket(s);
        break;
    }
    case H_OpenPrinterW: {
        HANDLE printer = NULL;
        WCHAR name[] = L"FvmNoSuchPrinter";
        SetLastError(0);
        out.value = ((OpenPrinterW_fn)g_target[which])(name, &printer, NULL);
        out.error = GetLastError();
        break;
    }
    case H_hot_target:
    case H_park_target:
    case H_solo_target:
        out.value = ((local_fn)g_target[which])(41);
        break;
    default:
        break;
    }
    return out;
}

static void fail_check(void) { g_failures++; }

/* Calls the hooked function once on the main thread: its detour must run
 * exactly once and the result must equal the unhooked one. */
static void check_hooked_call(enum hooked which, const outcome *before)
{
    LONG calls_before = g_main_calls[which];
    outcome after = call_function(which);
    LONG calls = g_main_calls[which] - calls_before;
    int same = after.value == before->value && after.error == before->error;
    if (calls == 1 && same) {
        printf("HOOK %s calls=%ld result=ok\n", hooked_names[which], calls);
    } else {
        printf("HOOK %s calls=%ld result=%s(before=%lld/%lu after=%lld/%lu)\n", hooked_names[which], calls,
               same ? "wrong-call-count" : "different-result", before->value, before->error, after.value,
               after.error);
        fail_check();
    }
}

/* ---- threads ------------------------------------------------------------------ */

static volatile LONG g_hammer_stop;
static volatile LONG g_hammer_iterations;
static volatile LONG g_hammer_bad;

/* Calls two hooked functions as fast as it can, before, during and after
 * the installation; any wrong result or crash fails the test. */
static DWORD WINAPI hammer_thread(void *unused)
{
    (void)unused;
    while (!g_hammer_stop) {
        for (int i = 0; i < 1000; i++)
            if (hot_target(i) != i + 1)
                InterlockedIncrement(&g_hammer_bad);
        file_basic_information info;
        if (((NtQueryAttributesFile_fn)g_target[H_NtQueryAttributesFile])(&g_win_ini_attributes, &info) != 0)
            InterlockedIncrement(&g_hammer_bad);
        InterlockedIncrement(&g_hammer_iterations);
    }
    return 0;
}

static volatile LONG g_park_spin = 1;

static DWORD WINAPI park_thread(void *unused)
{
    (void)unused;
    while (g_park_spin)
        YieldProcessor();
    return 0;
}

/* Stops a spinning thread and rewrites its context so that it stands at
 * park_target+2 - inside the 5 bytes the next batch replaces - as if it had
 * been called with rcx=41 and will return to parked_exit. */
static HANDLE park_thread_inside_patch(void)
{
    static CONTEXT context; /* 16-byte aligned */
    HANDLE thread = CreateThread(NULL, 0, park_thread, NULL, 0, NULL);
    if (!thread)
        return NULL;
    Sleep(50);
    if (SuspendThread(thread) == (DWORD)-1)
        return NULL;
    context.ContextFlags = CONTEXT_CONTROL | CONTEXT_INTEGER;
    if (!GetThreadContext(thread, &context))
        return NULL;
    DWORD64 rsp = ((context.Rsp - 0x1000) & ~(DWORD64)15) - 8; /* as at a function's entry */
    *(DWORD64 *)(uintptr_t)rsp = (DWORD64)(uintptr_t)parked_exit;
    context.Rsp = rsp;
    context.Rip = (DWORD64)(uintptr_t)park_target + 2;
    context.Rcx = 41;
    if (!SetThreadContext(thread, &context))
        return NULL;
    return thread;
}

/* ---- batches -------------------------------------------------------------------- */

static hook_spec spec_for(enum hooked which)
{
    hook_spec spec = { hooked_names[which], g_target[which], detours[which], &g_original[which] };
    return spec;
}

static int resolve_targets(void)
{
    g_target[H_NtCreateFile] = resolve(L"ntdll.dll", "NtCreateFile");
    g_target[H_NtQueryAttributesFile] = resolve(L"ntdll.dll", "NtQueryAttributesFile");
    g_target[H_NtCreateMutant] = resolve(L"ntdll.dll", "NtCreateMutant");
    g_target[H_LdrLoadDll] = resolve(L"ntdll.dll", "LdrLoadDll");
    g_target[H_kernelbase_CreateFileW] = resolve(L"kernelbase.dll", "CreateFileW");
    g_target[H_kernel32_CreateFileW] = resolve(L"kernel32.dll", "CreateFileW");
    g_target[H_GetDC] = resolve(L"user32.dll", "GetDC");
    g_target[H_SetWindowDisplayAffinity] = resolve(L"user32.dll", "SetWindowDisplayAffinity");
    g_target[H_StartDocW] = resolve(L"gdi32.dll", "StartDocW");
    g_target[H_connect] = resolve(L"ws2_32.dll", "connect");
    g_target[H_OpenPrinterW] = resolve(L"winspool.drv", "OpenPrinterW");
    g_target[H_hot_target] = (void *)hot_target;
    g_target[H_park_target] = (void *)park_target;
    g_target[H_hot_target_again] = (void *)hot_target;
    g_target[H_solo_target] = (void *)solo_target;
    for (int i = 0; i < H_COUNT; i++) {
        if (!g_target[i]) {
            printf("RESOLVE %s result=missing\n", hooked_names[i]);
            return 0;
        }
    }
    return 1;
}

/* A batch with one bad target must fail, say why, and change nothing. */
static void check_refusal(const char *label, void *bad, const char *bad_name, const char *expected_why)
{
    static void *good_original, *bad_original;
    uint8_t good_bytes[16], bad_bytes[16];
    char why[256];
    hook_spec specs[2] = {
        { "refuse_good", (void *)refuse_good, (void *)detour_hot_target, &good_original },
        { bad_name, bad, (void *)detour_hot_target, &bad_original },
    };
    memcpy(good_bytes, (void *)refuse_good, sizeof good_bytes);
    memcpy(bad_bytes, bad, sizeof bad_bytes);
    NTSTATUS status = hook_install_batch(specs, 2, why, sizeof why);
    int unchanged = memcmp(good_bytes, (void *)refuse_good, sizeof good_bytes) == 0 &&
                    memcmp(bad_bytes, bad, sizeof bad_bytes) == 0 && !good_original && !bad_original &&
                    refuse_good(1) == 2;
    int ok = status == (NTSTATUS)0xC00000BB && strstr(why, expected_why) && unchanged;
    printf("REFUSE %s status=0x%08lx why=\"%s\" unchanged=%s result=%s\n", label, (unsigned long)status, why,
           unchanged ? "yes" : "no", ok ? "ok" : "wrong");
    if (!ok)
        fail_check();
}

static int install(const char *label, enum hooked *which, size_t count)
{
    hook_spec specs[H_COUNT];
    char why[512];
    for (size_t i = 0; i < count; i++)
        specs[i] = spec_for(which[i]);
    NTSTATUS status = hook_install_batch(specs, count, why, sizeof why);
    printf("BATCH %s hooks=%u status=0x%08lx%s%s result=%s\n", label, (unsigned)count, (unsigned long)status,
           status ? " why=" : "", status ? why : "", status ? "failed" : "ok");
    if (status)
        fail_check();
    return status == 0;
}

int wmain(void)
{
    enum hooked main_batch[] = { H_NtCreateFile, H_NtQueryAttributesFile, H_NtCreateMutant,
                                 H_kernelbase_CreateFileW, H_kernel32_CreateFileW, H_GetDC,
                                 H_SetWindowDisplayAffinity, H_StartDocW, H_connect, H_OpenPrinterW,
                                 H_hot_target, H_park_target };
    enum hooked second_batch[] = { H_LdrLoadDll, H_hot_target_again };
    enum hooked solo_batch[] = { H_solo_target };
    outcome before[H_COUNT];
    hook_stats stats;
    WSADATA wsa;

    setvbuf(stdout, NULL, _IONBF, 0);
    g_main_thread = GetCurrentThreadId();
    WSAStartup(MAKEWORD(2, 2), &wsa);
    RtlInitUnicodeString(&g_win_ini_name, g_win_ini_nt);
    InitializeObjectAttributes(&g_win_ini_attributes, &g_win_ini_name, OBJ_CASE_INSENSITIVE, NULL, NULL);
    if (!resolve_targets())
        return 1;
    for (int i = 0; i < H_COUNT; i++)
        before[i] = call_function((enum hooked)i);

    /* 1. Refusals, while this is the only thread (the single-thread path). */
    check_refusal("unknown-opcode", (void *)refuse_bad, "refuse_bad",
                  "refuse_bad: unsupported opcode 0f 0f at byte 0");
    check_refusal("too-short", (void *)refuse_short, "refuse_short",
                  "refuse_short: function ends at byte 0 (ret) before the 5-byte patch");

    /* ...and a batch that succeeds with no other thread to suspend. */
    hook_get_stats(&stats);
    unsigned long suspended_before = stats.threads_suspended;
    if (!install("single-thread", solo_batch, 1))
        return 1;
    hook_get_stats(&stats);
    printf("SINGLE other_threads_suspended=%lu\n", stats.threads_suspended - suspended_before);
    check_hooked_call(H_solo_target, &before[H_solo_target]);

    /* 2. The main batch, with a thread hammering hot_target and
     *    NtQueryAttributesFile and another parked inside park_target's patch. */
    HANDLE parked = park_thread_inside_patch();
    HANDLE hammer = CreateThread(NULL, 0, hammer_thread, NULL, 0, NULL);
    while (g_hammer_iterations < 3)
        Sleep(1);
    if (!install("main", main_batch, sizeof main_batch / sizeof main_batch[0]))
        return 1;
    LONG iterations_at_install = g_hammer_iterations;

    /* The parked thread continues in the trampoline and exits with 41+1. */
    DWORD parked_exit_code = 0;
    if (parked) {
        ResumeThread(parked);
        WaitForSingleObject(parked, 10000);
        GetExitCodeThread(parked, &parked_exit_code);
        CloseHandle(parked);
    }
    hook_get_stats(&stats);
    int parked_ok = parked && parked_exit_code == 42 && stats.threads_moved >= 1;
    printf("PARKED thread_in_patch_bytes moved=%lu exit=%lu result=%s\n", stats.threads_moved,
           (unsigned long)parked_exit_code, parked_ok ? "ok" : "wrong");
    if (!parked_ok)
        fail_check();

    /* 3. Each hooked function, called normally. */
    for (size_t i = 0; i < sizeof main_batch / sizeof main_batch[0]; i++)
        check_hooked_call(main_batch[i], &before[main_batch[i]]);

    /* kernel32!CreateFileW forwards through its relocated `jmp [rip]` to
     * kernelbase, which calls NtCreateFile: all three detours run. */
    LONG k32 = g_main_calls[H_kernel32_CreateFileW], kb = g_main_calls[H_kernelbase_CreateFileW],
         nt = g_main_calls[H_NtCreateFile];
    call_function(H_kernel32_CreateFileW);
    k32 = g_main_calls[H_kernel32_CreateFileW] - k32;
    kb = g_main_calls[H_kernelbase_CreateFileW] - kb;
    nt = g_main_calls[H_NtCreateFile] - nt;
    int chain_ok = k32 == 1 && kb == 1 && nt >= 1;
    printf("CHAIN kernel32!CreateFileW->kernelbase!CreateFileW->ntdll!NtCreateFile calls=%ld/%ld/%ld result=%s\n",
           k32, kb, nt, chain_ok ? "ok" : "wrong");
    if (!chain_ok)
        fail_check();

    /* 4. A second batch under the loader lock (as from DllMain), with the
     *    hammer still running: LdrLoadDll, and hot_target hooked again. */
    ULONG_PTR cookie = 0;
    NTSTATUS locked = LdrLockLoaderLock(0, NULL, &cookie);
    int second_ok = install("loader-lock", second_batch, sizeof second_batch / sizeof second_batch[0]);
    if (locked == 0)
        LdrUnlockLoaderLock(0, cookie);
    if (second_ok) {
        LONG calls_before = g_main_calls[H_LdrLoadDll];
        HMODULE version = LoadLibraryW(L"version.dll");
        LONG calls = g_main_calls[H_LdrLoadDll] - calls_before;
        printf("HOOK %s calls=%ld result=%s\n", hooked_names[H_LdrLoadDll], calls,
               version && calls >= 1 ? "ok" : "wrong");
        if (!version || calls < 1)
            fail_check();

        LONG outer = g_main_calls[H_hot_target_again], inner = g_main_calls[H_hot_target];
        int value = hot_target(41);
        outer = g_main_calls[H_hot_target_again] - outer;
        inner = g_main_calls[H_hot_target] - inner;
        int again_ok = outer == 1 && inner == 1 && value == 42;
        printf("HOOK %s calls=%ld inner=%ld value=%d result=%s\n", hooked_names[H_hot_target_again], outer, inner,
               value, again_ok ? "ok" : "wrong");
        if (!again_ok)
            fail_check();
    }

    /* 5. The hammer ran through both installations without a wrong result,
     *    and its calls went through the detours once installed. */
    while (g_hammer_iterations < iterations_at_install + 3)
        Sleep(1);
    InterlockedExchange(&g_hammer_stop, 1);
    WaitForSingleObject(hammer, 10000);
    CloseHandle(hammer);
    int hammer_ok = g_hammer_bad == 0 && g_other_calls[H_hot_target] > 0 &&
                    g_other_calls[H_NtQueryAttributesFile] > 0;
    printf("HAMMER iterations=%ld hooked_calls=%ld/%ld bad=%ld result=%s\n", g_hammer_iterations,
           g_other_calls[H_hot_target], g_other_calls[H_NtQueryAttributesFile], g_hammer_bad,
           hammer_ok ? "ok" : "wrong");
    if (!hammer_ok)
        fail_check();

    hook_get_stats(&stats);
    printf("STATS batches=%lu hooks=%lu blocks=%lu threads_suspended=%lu threads_moved=%lu\n", stats.batches,
           stats.hooks, stats.blocks, stats.threads_suspended, stats.threads_moved);
    if (g_failures) {
        printf("FAILED %d check(s)\n", g_failures);
        return 1;
    }
    printf("ALL OK\n");
    return 0;
}

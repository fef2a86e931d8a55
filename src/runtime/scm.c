/* scm.c - services: each box has its own service control manager.
 *
 * The host's service manager (services.exe) is a host process: a service it
 * creates or starts for a boxed program would be a host service, running
 * unboxed. So a box runs its own: Wine's services.exe, started as a boxed
 * process the first time a boxed program opens \pipe\svcctl (sechost's RPC
 * endpoint). That pipe is box-private (ipc.c), so every client in the box -
 * sechost, a renamed copy of it, a program speaking RPC on the pipe itself -
 * reaches the box's manager and never the host's (issue 17 item 3). The
 * box's manager reads and writes its database in the box's registry view
 * (copy-on-write: a service created, changed or deleted in the box exists
 * only in the box's delta) and starts each service with CreateProcess, so
 * the service is a boxed process (proc.c) whose control pipe
 * (\pipe\net\NtControlPipeN) and start event live in the box's namespace.
 *
 * Who starts it: the runtime of the client, from pipe.c's client open of
 * svcctl, under the box's FVM.<hash>.scm mutex (FVM's own object, out of
 * programs' reach): if the box's __wine_SvcctlStarted event does not exist
 * (the manager holds it while it lives), it creates the event, starts
 * system32\services.exe boxed, and waits for the event or the process's end.
 *
 * In the box's manager itself (this process's image is system32\services.exe):
 *  - no host service is auto-started: services.exe auto-starts from its main
 *    thread before it signals readiness, so every CreateProcess on that thread
 *    is refused (audited as service "autostart:<image file name>"): the host's
 *    auto-start services already run on the host, and a driver host
 *    (winedevice.exe) has no business in a box. Services are started in the
 *    box only on request (StartService), from the manager's RPC threads.
 *  - it ends itself when it is the box's last process (checked each second,
 *    then again under the mutex), so an idle manager never keeps a box
 *    running; a running service does, until it stops or the box is stopped.
 *
 * [service] rules decide by service name at the API (sechost OpenServiceW/A,
 * CreateServiceW/A, a late group): cow (default) and open, the box's
 * manager; read, opened for queries only, not created; hide, does not exist;
 * deny, access denied. A program speaking raw RPC skips these rules, but
 * reaches only the box's manager. */
#include "runtime/runtime.h"
#include "runtime/guard.h"
#include "runtime/ipc.h"

#define SCM_WAIT_MS 30000
#define SERVICE_NAME_UNITS 256
#define SERVICE_READ_RIGHTS                                                                                     \
    (SERVICE_QUERY_CONFIG | SERVICE_QUERY_STATUS | SERVICE_ENUMERATE_DEPENDENTS | SERVICE_INTERROGATE |         \
     READ_CONTROL | GENERIC_READ)

static BOOL g_box_scm;            /* this process is the box's services.exe */
static DWORD g_scm_main_thread;   /* its main thread: auto-start runs there */

/* ---- the manager's mutex ------------------------------------------------- */

static HANDLE scm_mutex_take(void)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_SCM, name, FVM_OBJ_NAME_MAX);
    runtime_bypass_enter();
    HANDLE mutex = CreateMutexW(NULL, FALSE, name);
    runtime_bypass_leave();
    if (mutex)
        WaitForSingleObject(mutex, SCM_WAIT_MS);   /* abandoned (a manager that ended) is ours too */
    return mutex;
}

static void scm_mutex_give(HANDLE mutex)
{
    if (mutex) {
        ReleaseMutex(mutex);
        CloseHandle(mutex);
    }
}

/* ---- starting the box's manager (in a client) ----------------------------- */

static BOOL system_file(const wchar_t *file, wchar_t *out, UINT cap)
{
    UINT n = GetSystemDirectoryW(out, cap);
    size_t k = 0;
    while (file[k])
        k++;
    if (!n || n + 1 + k + 1 > cap)
        return FALSE;
    out[n] = L'\\';
    memcpy(out + n + 1, file, (k + 1) * sizeof(wchar_t));
    return TRUE;
}

void scm_box_manager_ensure(void)
{
    if (g_box_scm)
        return;
    DWORD saved = GetLastError();
    HANDLE mutex = scm_mutex_take();
    /* The event's name is box-private (ipc.c): it is this box's manager's. */
    HANDLE started = OpenEventW(SYNCHRONIZE, FALSE, L"__wine_SvcctlStarted");
    if (started) {
        WaitForSingleObject(started, SCM_WAIT_MS);   /* one may be starting */
    } else if ((started = CreateEventW(NULL, TRUE, FALSE, L"__wine_SvcctlStarted"))) {
        wchar_t image[MAX_PATH], dir[MAX_PATH];
        STARTUPINFOW si;
        PROCESS_INFORMATION pi;
        memset(&si, 0, sizeof si);
        si.cb = sizeof si;
        UINT n = GetSystemDirectoryW(dir, MAX_PATH);
        if (n && n < MAX_PATH && system_file(L"services.exe", image, MAX_PATH) &&
            CreateProcessW(image, NULL, NULL, NULL, FALSE, DETACHED_PROCESS, NULL, dir, &si, &pi)) {
            HANDLE waits[2] = {started, pi.hProcess};
            if (WaitForMultipleObjects(2, waits, FALSE, SCM_WAIT_MS) != WAIT_OBJECT_0)
                fvm_report("the box's service manager did not start");
            CloseHandle(pi.hThread);
            CloseHandle(pi.hProcess);
        } else {
            fvm_report("the box's service manager could not be started (error %lu)", GetLastError());
        }
    }
    if (started)
        CloseHandle(started);
    scm_mutex_give(mutex);
    SetLastError(saved);
}

/* ---- in the box's manager --------------------------------------------------- */

static DWORD box_processes(void)
{
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
    HANDLE job = runtime_box_job();
    if (!job || !QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct, NULL))
        return ~0u;   /* unknown: keep running */
    return acct.ActiveProcesses;
}

/* Ends the manager once it is the box's only process. The mutex makes the
 * end and a client's start-up check one at a time: a client holding it is
 * a process of the box, so the count is above one. */
static DWORD WINAPI scm_idle_watch(void *unused)
{
    (void)unused;
    for (;;) {
        Sleep(1000);
        if (box_processes() != 1)
            continue;
        HANDLE mutex = scm_mutex_take();
        if (box_processes() == 1)
            TerminateProcess(GetCurrentProcess(), 0);
        scm_mutex_give(mutex);
    }
    return 0;
}

typedef BOOL (WINAPI *CreateProcessW_fn)(LPCWSTR, LPWSTR, LPSECURITY_ATTRIBUTES, LPSECURITY_ATTRIBUTES, BOOL, DWORD,
                                         LPVOID, LPCWSTR, LPSTARTUPINFOW, LPPROCESS_INFORMATION);
static CreateProcessW_fn real_CreateProcessW;

static BOOL exe_ends_at(const wchar_t *s, size_t i)   /* s[i-4..i) is ".exe", then a space or the end */
{
    return i >= 4 && s[i - 4] == L'.' && fvm_wupcase(s[i - 3]) == L'E' && fvm_wupcase(s[i - 2]) == L'X' &&
           fvm_wupcase(s[i - 1]) == L'E' && (!s[i] || s[i] == L' ');
}

/* The file name of a command line's image ("C:\dir\x.exe" args -> x.exe),
 * appended to name: what autostart refusals are decided and audited as. */
static void image_file_name(const wchar_t *command, uint16_t *name, size_t *len, size_t cap)
{
    if (!command)
        return;
    size_t begin = command[0] == L'"', end = begin;
    if (begin) {
        while (command[end] && command[end] != L'"')
            end++;
    } else {
        /* Unquoted (services.exe passes ImagePath as it is): up to the first
         * ".exe " (a path may hold spaces), else the first space. */
        size_t space = 0;
        while (command[end] && !exe_ends_at(command, end)) {
            if (command[end] == L' ' && !space)
                space = end;
            end++;
        }
        if (!command[end] && !exe_ends_at(command, end) && space)
            end = space;
    }
    size_t start = begin;
    for (size_t i = begin; i < end; i++)
        if (command[i] == L'\\' || command[i] == L'/')
            start = i + 1;
    for (size_t i = start; i < end && *len < cap; i++)
        name[(*len)++] = command[i];
}

/* services.exe's own calls (not a program's): its start-up auto-start runs
 * on the main thread, requested starts on RPC threads. */
static BOOL WINAPI box_CreateProcessW(LPCWSTR app, LPWSTR cmd, LPSECURITY_ATTRIBUTES pa, LPSECURITY_ATTRIBUTES ta,
                                      BOOL inherit, DWORD flags, LPVOID env, LPCWSTR dir, LPSTARTUPINFOW si,
                                      LPPROCESS_INFORMATION pi)
{
    if (GetCurrentThreadId() != g_scm_main_thread)
        return real_CreateProcessW(app, cmd, pa, ta, inherit, flags, env, dir, si, pi);
    uint16_t name[10 + 260];
    size_t len = 10;
    memcpy(name, u"autostart:", 10 * 2);
    image_file_name(app ? app : cmd, name, &len, sizeof name / 2);
    policy_decision d;
    runtime_policy_decide(POLICY_TYPE_SERVICE, name, len, &d);
    d.action = POLICY_ACTION_DENY;   /* whatever the rules: never auto-started in a box */
    runtime_audit(POLICY_TYPE_SERVICE, "autostart", &d, name, len);
    SetLastError(ERROR_ACCESS_DENIED);
    return FALSE;
}

/* Is this process system32\services.exe? */
static BOOL is_service_manager_image(void)
{
    wchar_t want[MAX_PATH];
    if (!system_file(L"services.exe", want, MAX_PATH))
        return FALSE;
    wchar_t image[MAX_PATH];
    DWORD n = GetModuleFileNameW(NULL, image, MAX_PATH), k = 0;
    while (want[k])
        k++;
    if (n != k)
        return FALSE;
    for (DWORD i = 0; i < n; i++)
        if (fvm_wupcase(image[i]) != fvm_wupcase(want[i]))
            return FALSE;
    return TRUE;
}

static BOOL scm_start(void)
{
    if (!is_service_manager_image())
        return TRUE;
    g_box_scm = TRUE;
    g_scm_main_thread = GetCurrentThreadId();
    HANDLE watch = CreateThread(NULL, 0, scm_idle_watch, NULL, 0, NULL);
    if (watch)
        CloseHandle(watch);
    return TRUE;
}

BOOL scm_hides_value(const UNICODE_STRING *name)
{
    /* services.exe starts a delayed auto-start service from a threadpool
     * timer, not its main thread, where the refusal above looks: PlugPlay
     * and the event log, delayed in a box's own Wine server (the copy of
     * HKLM it loads, cli/ownserver.c), started boxed 1 ms after the box's
     * manager, and any service delayed on the host would have after 2 min.
     * Without the value they are plain auto-start services: refused at the
     * start, started when asked, as in any box. */
    static const char delayed[] = "delayedautostart";
    if (!g_box_scm || !name || !name->Buffer || name->Length != (sizeof delayed - 1) * sizeof(WCHAR))
        return FALSE;
    for (size_t i = 0; i < sizeof delayed - 1; i++) {
        WCHAR c = name->Buffer[i];
        if ((c >= L'A' && c <= L'Z' ? c + 32 : c) != (WCHAR)delayed[i])
            return FALSE;
    }
    return TRUE;
}

static void scm_hooks(hook_table *table)
{
    if (g_box_scm)
        FVM_HOOK(table, "kernelbase.dll", CreateProcessW);
}

/* ---- [service] rules at the API --------------------------------------------- */

typedef SC_HANDLE (WINAPI *OpenServiceW_fn)(SC_HANDLE, LPCWSTR, DWORD);
typedef SC_HANDLE (WINAPI *OpenServiceA_fn)(SC_HANDLE, LPCSTR, DWORD);
typedef SC_HANDLE (WINAPI *CreateServiceW_fn)(SC_HANDLE, LPCWSTR, LPCWSTR, DWORD, DWORD, DWORD, DWORD, LPCWSTR,
                                             LPCWSTR, LPDWORD, LPCWSTR, LPCWSTR, LPCWSTR);
typedef SC_HANDLE (WINAPI *CreateServiceA_fn)(SC_HANDLE, LPCSTR, LPCSTR, DWORD, DWORD, DWORD, DWORD, LPCSTR,
                                             LPCSTR, LPDWORD, LPCSTR, LPCSTR, LPCSTR);
static OpenServiceW_fn real_OpenServiceW;
static OpenServiceA_fn real_OpenServiceA;
static CreateServiceW_fn real_CreateServiceW;
static CreateServiceA_fn real_CreateServiceA;

/* The caller's service name, copied without trusting the pointer: its
 * length, or 0 (NULL, unreadable or too long: the real call decides). */
static size_t copy_name(const void *src, BOOL wide, uint16_t *out)
{
    for (size_t i = 0; src && i < SERVICE_NAME_UNITS; i++) {
        if (wide) {
            if (!guard_copy(&out[i], (const uint16_t *)src + i, 2))
                return 0;
        } else {
            unsigned char c;
            if (!guard_copy(&c, (const char *)src + i, 1))
                return 0;
            out[i] = c;   /* service names are ASCII in practice; others are decided by their bytes */
        }
        if (!out[i])
            return i;
    }
    return 0;
}

/* The decision on one service for an open with these rights (create: a
 * new service): 0 to go on, else the error the call fails with. */
static DWORD service_refusal(const void *name, BOOL wide, DWORD access, BOOL create)
{
    uint16_t copy[SERVICE_NAME_UNITS];
    size_t len = copy_name(name, wide, copy);
    if (!len)
        return 0;
    DWORD saved = GetLastError();
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_SERVICE, copy, len, &d);
    DWORD error = 0;
    if (action == POLICY_ACTION_DENY)
        error = ERROR_ACCESS_DENIED;
    else if (action == POLICY_ACTION_HIDE)
        error = create ? ERROR_ACCESS_DENIED : ERROR_SERVICE_DOES_NOT_EXIST;
    else if (action == POLICY_ACTION_READ && (create || (access & ~SERVICE_READ_RIGHTS)))
        error = ERROR_ACCESS_DENIED;
    runtime_audit(POLICY_TYPE_SERVICE, create ? "create" : "open", &d, copy, len);
    SetLastError(saved);
    return error;
}

static SC_HANDLE WINAPI box_OpenServiceW(SC_HANDLE manager, LPCWSTR name, DWORD access)
{
    DWORD error = service_refusal(name, TRUE, access, FALSE);
    if (error) {
        SetLastError(error);
        return NULL;
    }
    return real_OpenServiceW(manager, name, access);
}

static SC_HANDLE WINAPI box_OpenServiceA(SC_HANDLE manager, LPCSTR name, DWORD access)
{
    DWORD error = service_refusal(name, FALSE, access, FALSE);
    if (error) {
        SetLastError(error);
        return NULL;
    }
    return real_OpenServiceA(manager, name, access);
}

static SC_HANDLE WINAPI box_CreateServiceW(SC_HANDLE manager, LPCWSTR name, LPCWSTR display, DWORD access,
                                           DWORD type, DWORD start, DWORD error_control, LPCWSTR path,
                                           LPCWSTR group, LPDWORD tag, LPCWSTR deps, LPCWSTR account,
                                           LPCWSTR password)
{
    DWORD error = service_refusal(name, TRUE, access, TRUE);
    if (error) {
        SetLastError(error);
        return NULL;
    }
    return real_CreateServiceW(manager, name, display, access, type, start, error_control, path, group, tag, deps,
                               account, password);
}

static SC_HANDLE WINAPI box_CreateServiceA(SC_HANDLE manager, LPCSTR name, LPCSTR display, DWORD access,
                                           DWORD type, DWORD start, DWORD error_control, LPCSTR path, LPCSTR group,
                                           LPDWORD tag, LPCSTR deps, LPCSTR account, LPCSTR password)
{
    DWORD error = service_refusal(name, FALSE, access, TRUE);
    if (error) {
        SetLastError(error);
        return NULL;
    }
    return real_CreateServiceA(manager, name, display, access, type, start, error_control, path, group, tag, deps,
                               account, password);
}

static void add_rules(hook_table *table)
{
    FVM_HOOK(table, "sechost.dll", OpenServiceW);
    FVM_HOOK(table, "sechost.dll", OpenServiceA);
    FVM_HOOK(table, "sechost.dll", CreateServiceW);
    FVM_HOOK(table, "sechost.dll", CreateServiceA);
}

static late_hooks g_late[] = {
    {"sechost.dll", add_rules, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer service_virtualizer = {
    .name = "services",
    .policy = POLICY_TYPE_SERVICE,
    .start = scm_start,
    .hooks = scm_hooks,
    .late = g_late,
};

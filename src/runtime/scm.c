/* scm.c - services: read-only from a box until services are virtualized.
 *
 * The service control manager is a host process (services.exe), so a
 * service created, changed or started from a box would be a host service,
 * running unboxed. Until boxes get services of their own, every call that
 * changes a service or starts or controls one is refused with
 * ERROR_ACCESS_DENIED; queries still work. The calls live in sechost.dll
 * (advapi32 forwards to it), which a program loads when it needs it: the
 * hooks go in at start-up if it is already loaded, else from the loader's
 * DLL notification the moment it loads. If they cannot go in then, the
 * process is ended rather than left able to change host services.
 *
 * A program that talks to the SCM's RPC pipe directly, without sechost,
 * bypasses this (as any user-mode layer can be bypassed by raw calls). */
#include "runtime/runtime.h"


static const char *const g_refused[] = {
    "CreateServiceW", "CreateServiceA", "DeleteService", "ChangeServiceConfigW", "ChangeServiceConfigA",
    "ChangeServiceConfig2W", "ChangeServiceConfig2A", "StartServiceW", "StartServiceA", "ControlService",
    "ControlServiceExW", "ControlServiceExA", "SetServiceObjectSecurity",
};
#define REFUSED_COUNT (sizeof g_refused / sizeof g_refused[0])
static void *g_originals[REFUSED_COUNT];
static volatile LONG g_installed;
static void *g_cookie;

/* Every refused call returns FALSE or a NULL handle: zero either way. The
 * caller cleans the stack on x64, so one detour serves them all. */
static ULONG_PTR WINAPI refuse_service_change(void)
{
    SetLastError(ERROR_ACCESS_DENIED);
    return 0;
}

static void add_refusals(hook_table *table)
{
    for (size_t i = 0; i < REFUSED_COUNT; i++)
        hook_table_add_optional(table, "sechost.dll", g_refused[i], (void *)refuse_service_change, &g_originals[i]);
}

static void CALLBACK on_dll_loaded(ULONG reason, const dll_loaded_notification *data, void *ctx)
{
    static const WCHAR sechost[] = L"sechost.dll";
    if (reason != DLL_NOTIFICATION_LOADED || !data->base_name || data->base_name->Length != 22 ||
        fvm_wcsicmp_n(data->base_name->Buffer, sechost, 11) != 0)
        return;
    if (InterlockedExchange(&g_installed, 1))
        return;
    static hook_table table;
    add_refusals(&table);
    char why[256];
    NTSTATUS status = hook_install_batch(table.specs, table.count, why, sizeof why);
    if (status < 0) {
        fvm_report("services: cannot hook sechost.dll (%s); ending the process rather than let it change host "
                   "services", why);
        TerminateProcess(GetCurrentProcess(), (UINT)STATUS_ACCESS_DENIED);
    }
}

BOOL scm_hooks(hook_table *table)
{
    if (runtime_loaded_module("sechost.dll")) {
        g_installed = 1;
        add_refusals(table);
        return TRUE;
    }
    LdrRegisterDllNotification_fn reg = (LdrRegisterDllNotification_fn)(void *)GetProcAddress(
        runtime_loaded_module("ntdll.dll"), "LdrRegisterDllNotification");
    if (!reg || reg(0, on_dll_loaded, NULL, &g_cookie) < 0) {
        fvm_report("services: cannot watch for sechost.dll being loaded; refusing to run unboxed");
        return FALSE;
    }
    return TRUE;
}

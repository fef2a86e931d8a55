/* scm.c - services: read-only from a box until services are virtualized.
 *
 * The service control manager is a host process (services.exe), so a
 * service created, changed or started from a box would be a host service,
 * running unboxed. Until boxes get services of their own, every call that
 * changes a service or starts or controls one is refused with
 * ERROR_ACCESS_DENIED; queries still work. The calls live in sechost.dll
 * (advapi32 forwards to it), which a program loads when it needs it: the
 * refusals are a late group (runtime.h, late_hooks), in the start-up batch
 * if sechost is already loaded, else installed from the loader's DLL
 * notification the moment it loads (and again if it is reloaded). If they
 * cannot go in then, the process is ended rather than left able to change
 * host services.
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

/* Every refused call returns FALSE or a NULL handle: zero either way. The
 * caller cleans the stack on x64, so one detour serves them all (hooked
 * with the untyped hook_table_add_optional: no one type to check). It
 * preserves nothing: LastError is the refusal. */
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

static late_hooks g_late[] = {
    {"sechost.dll", add_refusals, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer service_virtualizer = {
    .name = "services",
    .policy = POLICY_TYPE_SERVICE,
    .late = g_late,
};

/* hooks.c - how every virtualizer's hooks go in: the start-up batch and the
 * groups for DLLs that load later.
 *
 * At start-up every virtualizer adds its hooks to one table (FVM_HOOK), and
 * the table is installed as one all-or-nothing batch (hook/hook.c): the
 * process runs fully boxed or not at all. A virtualizer may also hook a DLL
 * the program loads only when it needs it (sechost.dll for services,
 * win32u.dll and user32.dll for windows). Such a group joins the start-up
 * batch if its DLL is loaded already; otherwise one loader DLL notification,
 * shared by every group, installs it the moment its DLL is mapped, before
 * any of the DLL's code runs. A DLL that is unloaded and loaded again is
 * hooked again (its group is marked not installed when it unloads). If a
 * group cannot be installed the process is ended: it must not go on able to
 * reach what the group guards. */
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

/* GetModuleHandle of a DLL that is not loaded makes Wine's loader look for
 * the file on disk (hundreds of microseconds per call, several calls per
 * process start); the loader's own list of loaded modules answers at once.
 * Called with the loader lock held (DllMain, DLL notifications). */
HMODULE runtime_loaded_module(const char *name)
{
    size_t len = strlen(name);
    PEB *peb;
    __asm__("movq %%gs:0x60, %0" : "=r"(peb));   /* TEB.ProcessEnvironmentBlock (x64) */
    PEB_LDR_DATA *ldr = peb->Ldr;
    LIST_ENTRY *head = &ldr->InMemoryOrderModuleList;
    for (LIST_ENTRY *e = head->Flink; e && e != head; e = e->Flink) {
        LDR_DATA_TABLE_ENTRY *mod = CONTAINING_RECORD(e, LDR_DATA_TABLE_ENTRY, InMemoryOrderLinks);
        const WCHAR *full = mod->FullDllName.Buffer;
        size_t n = mod->FullDllName.Length / 2, base = n;
        while (base > 0 && full[base - 1] != L'\\' && full[base - 1] != L'/')
            base--;
        if (!full || n - base != len)
            continue;
        size_t i = 0;
        while (i < len && fvm_wupcase(full[base + i]) == fvm_wupcase((wchar_t)(unsigned char)name[i]))
            i++;
        if (i == len)
            return (HMODULE)mod->DllBase;
    }
    return NULL;
}

void hook_table_add(hook_table *table, const char *module, const char *name, void *detour, void **original)
{
    HMODULE mod = runtime_loaded_module(module);
    void *target = mod ? (void *)GetProcAddress(mod, name) : NULL;
    if (table->count >= sizeof table->specs / sizeof table->specs[0]) {
        table->overflow = TRUE;
        return;
    }
    hook_spec *spec = &table->specs[table->count++];
    spec->name = name;
    spec->target = target;
    spec->detour = detour;
    spec->original = original;
}

void hook_table_add_optional(hook_table *table, const char *module, const char *name, void *detour,
                             void **original)
{
    HMODULE mod = runtime_loaded_module(module);
    if (mod && GetProcAddress(mod, name))
        hook_table_add(table, module, name, detour, original);
}

static void say(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

/* Installs a table as one batch; why gets the reason on failure. */
static NTSTATUS install(hook_table *table, char *why, size_t why_size)
{
    if (table->overflow) {
        say(why, why_size, "more hooks than the table holds (%u)",
                  (unsigned)(sizeof table->specs / sizeof table->specs[0]));
        return STATUS_BUFFER_OVERFLOW;
    }
    for (size_t i = 0; i < table->count; i++) {
        if (!table->specs[i].target) {
            say(why, why_size, "cannot find %s to hook", table->specs[i].name);
            return STATUS_PROCEDURE_NOT_FOUND;
        }
    }
    return hook_install_batch(table->specs, table->count, why, why_size);
}

/* ---- late groups ---------------------------------------------------------------- */

static void *g_cookie;

static BOOL base_name_is(const UNICODE_STRING *base_name, const char *dll)
{
    size_t n = strlen(dll);
    if (!base_name || !base_name->Buffer || base_name->Length != n * sizeof(WCHAR))
        return FALSE;
    for (size_t i = 0; i < n; i++)
        if (fvm_wupcase(base_name->Buffer[i]) != fvm_wupcase((wchar_t)(unsigned char)dll[i]))
            return FALSE;
    return TRUE;
}

/* The DLL of a group has just been mapped: install the group, or end the
 * process. Called with the loader lock held, before the DLL's own code. */
static void install_late(const fvm_virtualizer *v, late_hooks *group)
{
    static hook_table table;   /* the loader lock serialises notifications */
    table.count = 0;
    table.overflow = FALSE;
    group->hooks(&table);
    char why[256] = "";
    NTSTATUS status = install(&table, why, sizeof why);
    if (status >= 0)
        return;
    fvm_report("%s: cannot hook %s (status 0x%08lx: %s); ending the process rather than let it run half-boxed",
               v->name, group->dll, (unsigned long)status, why);
    TerminateProcess(GetCurrentProcess(), (UINT)STATUS_ACCESS_DENIED);
}

static void CALLBACK on_dll_notification(ULONG reason, const dll_loaded_notification *data, void *ctx)
{
    if (!data || (reason != DLL_NOTIFICATION_LOADED && reason != DLL_NOTIFICATION_UNLOADED))
        return;
    for (size_t i = 0; i < g_virtualizer_count; i++) {
        const fvm_virtualizer *v = g_virtualizers[i];
        for (late_hooks *g = v->late; g && g->dll; g++) {
            if (!base_name_is(data->base_name, g->dll))
                continue;
            if (reason == DLL_NOTIFICATION_UNLOADED)
                InterlockedExchange(&g->installed, 0);   /* its code is gone; a new copy is hooked anew */
            else if (!InterlockedExchange(&g->installed, 1))
                install_late(v, g);
        }
    }
}

/* ---- start-up --------------------------------------------------------------------- */

BOOL runtime_hooks_start(void)
{
    static hook_table table;
    BOOL pending = FALSE;
    handle_hooks(&table);
    for (size_t i = 0; i < g_virtualizer_count; i++) {
        const fvm_virtualizer *v = g_virtualizers[i];
        if (v->hooks)
            v->hooks(&table);
        for (late_hooks *g = v->late; g && g->dll; g++) {
            if (runtime_loaded_module(g->dll)) {
                g->installed = 1;
                g->hooks(&table);
            } else {
                pending = TRUE;
            }
        }
    }
    if (pending) {
        LdrRegisterDllNotification_fn reg = (LdrRegisterDllNotification_fn)(void *)GetProcAddress(
            runtime_loaded_module("ntdll.dll"), "LdrRegisterDllNotification");
        if (!reg || reg(0, on_dll_notification, NULL, &g_cookie) < 0) {
            fvm_report("runtime: cannot watch for DLLs being loaded; refusing to run unboxed");
            return FALSE;
        }
    }
    char why[256] = "";
    NTSTATUS status = install(&table, why, sizeof why);
    if (status < 0) {
        fvm_report("runtime: hooks not installed (status 0x%08lx): %s; refusing to run unboxed",
                   (unsigned long)status, why);
        return FALSE;
    }
    return TRUE;
}

/* dllmain.c - start-up of fvm.dll in a boxed process.
 *
 * fvm.dll arrives as the main image's first static import (common/inject.c),
 * so this entry point runs before any other DLL's initialisation, before TLS
 * callbacks and before the program's entry point. It takes the box
 * configuration from the injection block, restores the image's import
 * directory and installs every hook in one atomic batch. If any of that
 * fails the entry point returns FALSE: the loader then refuses to start the
 * process, because a boxed process that is not hooked must not run. */
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/inject.h"

fvm_runtime g_fvm;

void fvm_report(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n = (int)strlen(memcpy(line, "fvm: ", 6));
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - n - 2, fmt, ap);
    va_end(ap);
    n = (int)strlen(line);
    line[n++] = '\n';
    DWORD written;
    WriteFile(GetStdHandle(STD_ERROR_HANDLE), line, (DWORD)n, &written, NULL);
}

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

void hook_table_add(hook_table *table, const char *module, const char *name,
                    void *detour, void **original)
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

void hook_table_add_optional(hook_table *table, const char *module, const char *name,
                             void *detour, void **original)
{
    HMODULE mod = runtime_loaded_module(module);
    if (mod && GetProcAddress(mod, name))
        hook_table_add(table, module, name, detour, original);
}

static BOOL runtime_start(HMODULE module)
{
    const fvm_inject_block *block = fvm_inject_find_block();
    if (!block)
        return TRUE;   /* loaded outside a box (e.g. by a tool): stay inert */
    if (!fvm_inject_read_config(block, &g_fvm.config) || g_fvm.config.version != FVM_BOX_CONFIG_VERSION) {
        fvm_report("runtime: malformed box configuration (version %u, expected %u)",
                   g_fvm.config.version, FVM_BOX_CONFIG_VERSION);
        return FALSE;
    }
    g_fvm.module = module;
    fvm_inject_restore_headers(block);

    if (!runtime_policy_start())
        return FALSE;
    static hook_table table;
    proc_hooks(&table);
    key_hooks(&table);
    ipc_hooks(&table);
    if (!scm_hooks(&table))
        return FALSE;
    if (!gui_hooks(&table))
        return FALSE;
    if (!file_hooks(&table))
        return FALSE;
    if (table.overflow) {
        fvm_report("runtime: more hooks than the table holds (%u); refusing to run unboxed",
                   (unsigned)(sizeof table.specs / sizeof table.specs[0]));
        return FALSE;
    }
    for (size_t i = 0; i < table.count; i++) {
        if (!table.specs[i].target) {
            fvm_report("runtime: cannot find %s to hook; refusing to run unboxed", table.specs[i].name);
            return FALSE;
        }
    }
    char why[256];
    NTSTATUS status = hook_install_batch(table.specs, table.count, why, sizeof why);
    if (status < 0) {
        fvm_report("runtime: hooks not installed (status 0x%08lx): %s; refusing to run unboxed",
                   (unsigned long)status, why);
        return FALSE;
    }
    g_fvm.active = TRUE;
    proc_after_hooks();
    return TRUE;
}

BOOL WINAPI fvm_dll_entry(HINSTANCE instance, DWORD reason, void *reserved)
{
    if (reason == DLL_PROCESS_ATTACH)
        return runtime_start(instance);
    if (reason == DLL_THREAD_DETACH && g_fvm.active) {
        file_thread_detach();
        key_thread_detach();
        runtime_policy_thread_detach();
    }
    return TRUE;
}

/* Ordinal 1: the import the injector names, so the loader has something to
 * resolve. */
__declspec(dllexport) void fvm_runtime_marker(void)
{
}

/* For test programs: whether this process runs boxed, and in which box. */
__declspec(dllexport) BOOL fvm_runtime_status(wchar_t *box_name, DWORD chars)
{
    if (box_name && chars)
        fvm_wcscpy(box_name, chars, g_fvm.active ? g_fvm.config.box_name : L"");
    return g_fvm.active;
}

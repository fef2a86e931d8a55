/* dllmain.c - start-up of fvm.dll in a boxed process.
 *
 * fvm.dll arrives as the main image's first static import (common/inject.c),
 * so this entry point runs before any other DLL's initialisation, before TLS
 * callbacks and before the program's entry point. It takes the box
 * configuration from the injection block, restores the image's import
 * directory, starts the services every virtualizer shares (the per-thread
 * block, the policy, the box index), starts each virtualizer of the table
 * (virtualizers.c) and installs every hook in one atomic batch. It knows no
 * virtualizer by name. If any of that fails the entry point returns FALSE:
 * the loader then refuses to start the process, because a boxed process
 * that is not hooked must not run. */
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/inject.h"
#include "runtime/floor.h"

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

/* FVM_START_TIMING=1 in a boxed process's environment: one line on stderr
 * with the microseconds each start-up phase took (thread block, published
 * section, policy, floor, index, each virtualizer in table order, hooks),
 * for finding where a boxed start's time goes (docs/design.md). Costs
 * nothing otherwise but the clock reads. */
typedef struct start_clock {
    LARGE_INTEGER ticks[48];
    int count;
} start_clock;

static BOOL start_clock_tick(start_clock *clock)
{
    if (clock->count < (int)(sizeof clock->ticks / sizeof clock->ticks[0]))
        QueryPerformanceCounter(&clock->ticks[clock->count++]);
    return TRUE;
}

static void start_clock_report(const start_clock *clock)
{
    char line[400];
    LARGE_INTEGER frequency;
    if (!GetEnvironmentVariableA("FVM_START_TIMING", line, sizeof line) || line[0] != '1' ||
        !QueryPerformanceFrequency(&frequency) || !frequency.QuadPart)
        return;
    int n = 0;
    for (int i = 1; i < clock->count && n < (int)sizeof line - 16; i++)
        n += snprintf(line + n, sizeof line - n, " %d",
                      (int)((clock->ticks[i].QuadPart - clock->ticks[i - 1].QuadPart) * 1000000 / frequency.QuadPart));
    fvm_report("start-up phases (us):%s", line);
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

    start_clock clock = {0};
    start_clock_tick(&clock);
    if (!runtime_thread_start() || !start_clock_tick(&clock) || !runtime_shared_start() || !start_clock_tick(&clock) ||
        !runtime_policy_start() || !start_clock_tick(&clock) ||
        !floor_start() || !start_clock_tick(&clock) || !box_index_start() || !start_clock_tick(&clock))
        return FALSE;
    for (size_t i = 0; i < g_virtualizer_count; i++)
        if ((g_virtualizers[i]->start && !g_virtualizers[i]->start()) || !start_clock_tick(&clock))
            return FALSE;
    if (!runtime_hooks_start())
        return FALSE;
    start_clock_tick(&clock);
    start_clock_report(&clock);
    g_fvm.active = TRUE;
    proc_after_hooks();
    return TRUE;
}

BOOL WINAPI fvm_dll_entry(HINSTANCE instance, DWORD reason, void *reserved)
{
    if (reason == DLL_PROCESS_ATTACH)
        return runtime_start(instance);
    if (reason == DLL_THREAD_DETACH && g_fvm.active)
        runtime_thread_detach();
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

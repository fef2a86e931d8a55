/* shared.c - what the box's broker publishes to every boxed process
 * (common/boxshare.h): the compiled policy (policy.c), which limits are on
 * (memquota.c, ioquota.c) and the loopback port map (net_ports.c), in one
 * section mapped read-only once at start, before any virtualizer starts.
 * No section (a broker that failed, or none) leaves every part NULL: each
 * user falls back to its built-in behaviour. */
#include "runtime/runtime.h"

#include "common/boxshare.h"

static fvm_shared_parts g_parts;

BOOL runtime_shared_start(void)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_SHARED, name, FVM_OBJ_NAME_MAX);
    runtime_bypass_enter();
    HANDLE section = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
    const void *view = section ? MapViewOfFile(section, FILE_MAP_READ, 0, 0, 0) : NULL;
    if (section)
        CloseHandle(section);
    runtime_bypass_leave();
    if (!view)
        return TRUE;
    MEMORY_BASIC_INFORMATION mbi;
    if (!VirtualQuery(view, &mbi, sizeof mbi) || !fvm_shared_open(view, mbi.RegionSize, &g_parts)) {
        fvm_report("the box's published section is damaged; this process cannot run boxed");
        return FALSE;
    }
    return TRUE;
}

const fvm_shared_parts *runtime_shared(void)
{
    return &g_parts;
}

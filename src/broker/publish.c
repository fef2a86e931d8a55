/* publish.c - the section the broker publishes to the box's processes
 * (common/boxshare.h): made once per box start, before the first process,
 * with the compiled policy copied in and room for the limits hint and, in
 * an isolated box, the port map. limits.c and net.c write their parts
 * through the pointers given here; the broker's is the only writable view
 * and the section handle stays open for the box's lifetime. */
#include "broker/broker.h"

#include <string.h>

#include "common/boxcfg.h"
#include "common/boxlimits.h"
#include "common/boxshare.h"
#include "core/portmap.h"

static uint8_t *g_view;
static fvm_shared_header g_layout;

BOOL broker_publish_start(const wchar_t *box_path, const void *policy, size_t policy_size)
{
    uint32_t size = fvm_shared_layout(&g_layout, broker_net_isolated(box_path), policy_size);
    if (!size)
        return FALSE;
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_SHARED, name, FVM_OBJ_NAME_MAX);
    HANDLE section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, size, name);
    g_view = section ? MapViewOfFile(section, FILE_MAP_WRITE, 0, 0, size) : NULL;
    if (!g_view)
        return FALSE;
    /* A section a previous broker left (processes of the last run still
     * held it) is laid out again from scratch. */
    memset(g_view, 0, size);
    if (policy_size)
        memcpy(g_view + g_layout.policy_offset, policy, policy_size);
    memcpy(g_view, &g_layout, sizeof g_layout);
    return TRUE;
}

fvm_limits_hint *broker_published_hint(void)
{
    return g_view ? (fvm_limits_hint *)(g_view + g_layout.hint_offset) : NULL;
}

portmap *broker_published_ports(void)
{
    return g_view && g_layout.ports_offset ? (portmap *)(g_view + g_layout.ports_offset) : NULL;
}

/* policy.c - the broker compiles the box's policy once per box start and
 * publishes the blob in a named section that boxed processes map read-only
 * (runtime/policy.c). The section starts with the blob's size (8 bytes),
 * since a section's own size is rounded up to pages. The broker keeps the
 * section open for the box's lifetime. */
#include "broker/broker.h"

#include <string.h>

#include "common/boxcfg.h"
#include "common/policyload.h"

BOOL broker_policy_publish(const wchar_t *box_path)
{
    wchar_t path[FVM_PATH_MAX], name[FVM_OBJ_NAME_MAX];
    char why[512];
    void *blob = NULL;
    size_t len = 0;
    if (fvm_policy_box_path(box_path, path, FVM_PATH_MAX) != FVM_OK ||
        fvm_policy_compile_file(path, &blob, &len, NULL, NULL, why, sizeof why) != FVM_OK)
        return FALSE;
    fvm_box_object_name(box_path, FVM_OBJ_POLICY, name, FVM_OBJ_NAME_MAX);
    HANDLE section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)(len + 8), name);
    uint8_t *view = section ? MapViewOfFile(section, FILE_MAP_WRITE, 0, 0, len + 8) : NULL;
    if (view) {
        uint64_t size = len;
        memcpy(view, &size, 8);
        memcpy(view + 8, blob, len);
        UnmapViewOfFile(view);
    }
    policy_blob_free(blob);
    return view != NULL;   /* the section handle stays open: the box's lifetime */
}

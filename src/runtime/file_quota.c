/* file_quota.c - the storage quota of a box: bytes its delta may take.
 *
 * The broker measures the box folder when the box starts and publishes
 * {used, quota} in a small named section (FVM_OBJ_USAGE). Every process of
 * the box reserves bytes there, with one interlocked add, before any call
 * that would grow a box file: a write past the end, a larger end of file, a
 * copy-up. If the reservation would pass the quota the call fails with
 * STATUS_DISK_FULL before anything is written, so nothing is half-written.
 * Deleting and shrinking box files give bytes back. Counting is
 * conservative (two processes growing one file both reserve) and is measured
 * afresh at every box start. A box without a quota does not hook NtWriteFile
 * at all. */
#include "runtime/file.h"

static NtWriteFile_fn real_NtWriteFile;
static fvm_box_usage *g_usage;

/* Handles to box files opened for writing - the only ones whose writes can
 * grow the delta - are marked in the runtime's handle registry (handles.c;
 * a copy made with DuplicateHandle is marked too). */
#define TRACKED ((void *)1)

void quota_track(HANDLE handle)
{
    if (g_usage)
        handle_put(handle, &file_virtualizer, FILE_TAG_QUOTA, TRACKED);
}

static BOOL is_tracked(HANDLE handle)
{
    return handle_find(handle, &file_virtualizer, FILE_TAG_QUOTA, NULL, NULL) != NULL;
}

NTSTATUS quota_reserve(LONG64 bytes)
{
    if (!g_usage || bytes <= 0)
        return STATUS_SUCCESS;
    LONG64 used = InterlockedAdd64(&g_usage->used_bytes, bytes);
    if (used > g_usage->quota_bytes) {
        InterlockedAdd64(&g_usage->used_bytes, -bytes);
        return STATUS_DISK_FULL;
    }
    return STATUS_SUCCESS;
}

void quota_release(LONG64 bytes)
{
    if (g_usage && bytes > 0)
        InterlockedAdd64(&g_usage->used_bytes, -bytes);
}

LONG64 quota_file_size(HANDLE handle)
{
    FILE_STANDARD_INFORMATION std;
    IO_STATUS_BLOCK io;
    if (NtQueryInformationFile(handle, &io, &std, sizeof std, FileStandardInformation) < 0)
        return -1;
    return std.EndOfFile.QuadPart;
}

BOOL quota_active(void)
{
    return g_usage != NULL;
}

#define WRITE_TO_END_OF_FILE     0xffffffff
#define USE_FILE_POINTER_POSITION 0xfffffffe

static NTSTATUS NTAPI box_NtWriteFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                      PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, PLARGE_INTEGER offset,
                                      PULONG key)
{
    if (!length || !is_tracked(handle))
        return real_NtWriteFile(handle, event, apc, apc_context, io, buffer, length, offset, key);
    LONG64 end = quota_file_size(handle);
    LONG64 at;
    if (offset && offset->HighPart == -1 && offset->LowPart == WRITE_TO_END_OF_FILE) {
        at = end;
    } else if (offset && !(offset->HighPart == -1 && offset->LowPart == USE_FILE_POINTER_POSITION)) {
        at = offset->QuadPart;
    } else {
        FILE_POSITION_INFORMATION pos;
        IO_STATUS_BLOCK pio;
        at = NtQueryInformationFile(handle, &pio, &pos, sizeof pos, FilePositionInformation) >= 0
                 ? pos.CurrentByteOffset.QuadPart : end;
    }
    LONG64 growth = end >= 0 && at + (LONG64)length > end ? at + (LONG64)length - end : 0;
    NTSTATUS status = quota_reserve(growth);
    if (status < 0)
        return status;
    status = real_NtWriteFile(handle, event, apc, apc_context, io, buffer, length, offset, key);
    if (status < 0)
        quota_release(growth);
    return status;
}

BOOL file_quota_start(void)
{
    if (!g_fvm.config.quota_bytes)
        return TRUE;
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_USAGE, name, FVM_OBJ_NAME_MAX);
    HANDLE section = OpenFileMappingW(FILE_MAP_WRITE | FILE_MAP_READ, FALSE, name);
    g_usage = section ? MapViewOfFile(section, FILE_MAP_WRITE | FILE_MAP_READ, 0, 0, sizeof *g_usage) : NULL;
    if (section)
        CloseHandle(section);
    if (!g_usage) {
        fvm_report("file: the box has a storage quota but its usage counter cannot be opened (error %lu)",
                   (unsigned long)GetLastError());
        return FALSE;
    }
    return TRUE;
}

/* A box without a quota does not hook NtWriteFile at all. */
void file_quota_hooks(hook_table *table)
{
    if (g_usage)
        FVM_HOOK(table, "ntdll.dll", NtWriteFile);
}

/* file_quota.c - the storage quota of a box: bytes its delta may take.
 *
 * The broker is the quota's only authority (broker/quota.c): no boxed
 * process can see or change the count. Every process of the box reserves
 * bytes before any call that would grow a box file (a write past the end, a
 * larger end of file, a copy-up); if the reservation fails the call fails
 * with STATUS_DISK_FULL before anything is written, so nothing is
 * half-written. Reservations are served from a lease the broker granted this
 * process; only when the lease runs out does the process ask the broker, on
 * its own connection to the control pipe (one round trip per lease, and the
 * broker grants up to 1 MiB beyond what is asked). Bytes a failed call did
 * not write go back to the lease; deleting and shrinking box files only tell
 * the broker, which believes its own measure of the box folder, not us.
 * NtWriteFile's hook is ioquota.c's (the I/O limits); it calls
 * file_quota_write when the box has a quota. */
#include "runtime/file.h"
#include "runtime/ipc.h"

#include "core/brokermsg.h"
#include "common/brokerproto.h"

static BOOL g_quota_on;
static SRWLOCK g_lease_lock = SRWLOCK_INIT;
static LONG64 g_lease;            /* bytes granted to this process and not yet used */
static HANDLE g_broker;           /* our connection to the control pipe (under g_lease_lock) */

/* Handles to box files opened for writing - the only ones whose writes can
 * grow the delta - are marked in the runtime's handle registry (handles.c;
 * a copy made with DuplicateHandle is marked too). */
#define TRACKED ((void *)1)

void quota_track(HANDLE handle)
{
    if (g_quota_on)
        handle_put(handle, &file_virtualizer, FILE_TAG_QUOTA, TRACKED);
}

static BOOL is_tracked(HANDLE handle)
{
    return handle_find(handle, &file_virtualizer, FILE_TAG_QUOTA, NULL, NULL) != NULL;
}

/* Connects once (with g_lease_lock held); a broken connection is
 * retried on the next request. */
static HANDLE broker_connection(void)
{
    if (!g_broker)
        g_broker = runtime_broker_connect();
    return g_broker;
}

/* One message to the broker, and its 8-byte reply when reply is not NULL.
 * With g_lease_lock held. */
static BOOL broker_call(const brokermsg_quota *msg, uint64_t *reply)
{
    uint8_t buf[BROKERMSG_RESERVE_SIZE];
    size_t n = brokermsg_quota_encode(msg, buf, sizeof buf);
    for (int attempt = 0; attempt < 2; attempt++) {
        HANDLE pipe = broker_connection();
        DWORD done = 0;
        if (!pipe)
            return FALSE;
        if (WriteFile(pipe, buf, (DWORD)n, &done, NULL) &&
            (!reply || (ReadFile(pipe, reply, sizeof *reply, &done, NULL) && done == sizeof *reply)))
            return TRUE;
        CloseHandle(pipe);
        g_broker = NULL;
    }
    return FALSE;
}

NTSTATUS quota_reserve(LONG64 bytes)
{
    if (!g_quota_on || bytes <= 0)
        return STATUS_SUCCESS;
    NTSTATUS status = STATUS_SUCCESS;
    DWORD saved = GetLastError();
    AcquireSRWLockExclusive(&g_lease_lock);
    if (g_lease >= bytes) {
        g_lease -= bytes;
    } else {
        brokermsg_quota ask = {BROKERMSG_RESERVE, (uint64_t)(bytes - g_lease), (uint64_t)g_lease};
        uint64_t granted = 0;
        if (broker_call(&ask, &granted) && granted >= ask.bytes && granted < ((uint64_t)1 << 62))
            g_lease = g_lease + (LONG64)granted - bytes;
        else
            status = STATUS_DISK_FULL;   /* refused, or no broker to ask: fail closed */
    }
    ReleaseSRWLockExclusive(&g_lease_lock);
    SetLastError(saved);
    return status;
}

void quota_unreserve(LONG64 bytes)
{
    if (!g_quota_on || bytes <= 0)
        return;
    AcquireSRWLockExclusive(&g_lease_lock);
    g_lease += bytes;
    ReleaseSRWLockExclusive(&g_lease_lock);
}

void quota_release(LONG64 bytes)
{
    if (!g_quota_on || bytes <= 0)
        return;
    DWORD saved = GetLastError();
    brokermsg_quota freed = {BROKERMSG_FREED, (uint64_t)bytes, 0};
    AcquireSRWLockExclusive(&g_lease_lock);
    broker_call(&freed, NULL);
    ReleaseSRWLockExclusive(&g_lease_lock);
    SetLastError(saved);
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
    return g_quota_on;
}

#define WRITE_TO_END_OF_FILE     0xffffffff
#define USE_FILE_POINTER_POSITION 0xfffffffe

NTSTATUS file_quota_write(NtWriteFile_fn real_NtWriteFile, HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                          PVOID apc_context, PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, PLARGE_INTEGER offset,
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
        quota_unreserve(growth);
    return status;
}

BOOL file_quota_start(void)
{
    g_quota_on = g_fvm.config.quota_bytes != 0;
    return TRUE;
}

/* ---- sharing modes across copy-up (issue 18) ----------------------------------
 * Asked here because this file holds the process's connection to the broker.
 * The broker opens the host file with the program's rights and share mode
 * and closes it (broker/share.c): wineserver's sharing check then meets the
 * handles others hold on the host file, as the program's own open would
 * have on the host. No answer (no broker, a name too long) is no refusal. */
NTSTATUS file_share_probe(const uint16_t *path, size_t len, ACCESS_MASK access, ULONG share)
{
    if (access & (GENERIC_READ | MAXIMUM_ALLOWED | GENERIC_ALL))
        access |= FILE_READ_DATA;
    if (access & (GENERIC_WRITE | MAXIMUM_ALLOWED | GENERIC_ALL))
        access |= FILE_WRITE_DATA | FILE_APPEND_DATA;
    if (access & (GENERIC_EXECUTE | GENERIC_ALL))
        access |= FILE_EXECUTE;
    if (access & GENERIC_ALL)
        access |= DELETE;
    access &= FILE_READ_DATA | FILE_EXECUTE | FILE_WRITE_DATA | FILE_APPEND_DATA | DELETE;
    if (!access || len > FVM_SHARE_NAME_UNITS)
        return STATUS_SUCCESS;
    fvm_share_request *req = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *req);
    if (!req)
        return STATUS_SUCCESS;
    memcpy(req->magic, FVM_BROKER_REQ_SHARE, 8);
    req->access = access;
    req->share = share;
    req->units = (uint32_t)len;
    memcpy(req->name, path, len * 2);
    fvm_share_reply reply = {0, 0};
    DWORD saved = GetLastError(), done = 0;
    AcquireSRWLockExclusive(&g_lease_lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        HANDLE pipe = broker_connection();
        if (!pipe)
            break;
        if (WriteFile(pipe, req, sizeof *req, &done, NULL) && ReadFile(pipe, &reply, sizeof reply, &done, NULL) &&
            done == sizeof reply)
            break;
        CloseHandle(pipe);
        g_broker = NULL;
        reply.status = 0;
    }
    ReleaseSRWLockExclusive(&g_lease_lock);
    SetLastError(saved);
    HeapFree(GetProcessHeap(), 0, req);
    return reply.version == FVM_BROKER_PROTO_VERSION && reply.status == (uint32_t)STATUS_SHARING_VIOLATION
               ? STATUS_SHARING_VIOLATION
               : STATUS_SUCCESS;
}

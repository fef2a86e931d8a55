/* ioquota.c - a box's I/O limits on the process's side (issue 12):
 * io-bandwidth and io-ops, for file reads and writes.
 *
 * The broker holds the box's token buckets (broker/limits.c,
 * core/iobucket.h); this file only takes from them. NtReadFile and
 * NtWriteFile are hooked in every boxed process, but while the broker's
 * read-only hint (in its published section, shared.c) says no I/O limit is
 * on, the detour only adds a file call's bytes to the box's tally for fvm
 * stats (FVM_OBJ_IO_TALLY: two atomic adds, and one device query per new
 * handle to tell a file from a pipe): a box without I/O limits never talks
 * to the broker.
 *
 * With a limit on, a read or write on a file handle (a disk device: pipes,
 * sockets and the console are not counted; the answer is kept per handle in
 * the handle registry) first takes its bytes and one op from this process's
 * lease for that direction. When the lease is short the process asks the
 * broker for the need; the broker adds a lease of about 1/32 s of its rate,
 * takes it all from the box's buckets and answers how long to wait. The
 * thread waits that long, then does its I/O: every process of the box draws
 * on the same buckets, in the order they asked, so the box as a whole moves
 * at most the limit. Bytes a read did not get (end of file, a short read)
 * go back to the lease. Leases are dropped when the hint's generation
 * changes (fvm set), so a new or lowered limit holds at once.
 *
 * NtWriteFile is also the storage quota's hook (file_quota.c): the detour
 * here calls it when the box has a storage quota. Not counted: the gather
 * and scatter calls (NtReadFileScatter, NtWriteFileGather), file mappings
 * (a mapped view's page faults are not calls), and a program's raw system
 * calls, which escape every user-mode hook. */
#include "runtime/file.h"
#include "runtime/ipc.h"
#include "runtime/guard.h"

#include "common/boxlimits.h"
#include "common/brokerproto.h"

const fvm_limits_hint *memquota_hint(void);   /* memquota.c: the mapped hint, or NULL */
NTSTATUS NTAPI NtDelayExecution(BOOLEAN alertable, const LARGE_INTEGER *timeout);

static NtWriteFile_fn real_NtWriteFile;
typedef NTSTATUS(NTAPI *NtReadFile_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG,
                                       PLARGE_INTEGER, PULONG);
static NtReadFile_fn real_NtReadFile;

static const fvm_limits_hint *g_hint;
static fvm_io_tally *g_tally;   /* the box's tally for fvm stats, while no I/O limit is on */
static HANDLE g_tally_section;  /* its section, kept for io_tally_give */

/* The lease, by direction (0 read, 1 write), under g_lock; taken under the
 * generation of the hint it was granted in. */
static SRWLOCK g_lock = SRWLOCK_INIT;
static uint64_t g_lease_bytes[2], g_lease_ops[2];
static LONG g_lease_generation;
static uint64_t g_moved_bytes[2], g_moved_ops[2];   /* since the last ask, for fvm stats */
static HANDLE g_broker = INVALID_HANDLE_VALUE;   /* our connection (under g_lock) */

enum { IOQ_TAG_KIND = 1 };
#define KIND_FILE ((void *)1)    /* counted */
#define KIND_OTHER ((void *)2)   /* a pipe, a socket, the console, a device */

extern const fvm_virtualizer ioquota_virtualizer;

#include <winioctl.h>   /* FILE_DEVICE_* */

/* Whether the handle is a file on a disk (asked once per handle). */
static BOOL counted(HANDLE handle)
{
    void *kind = handle_find(handle, &ioquota_virtualizer, IOQ_TAG_KIND, NULL, NULL);
    if (!kind) {
        FILE_FS_DEVICE_INFORMATION dev;
        IO_STATUS_BLOCK io;
        memset(&dev, 0, sizeof dev);
        BOOL file = NtQueryVolumeInformationFile(handle, &io, &dev, sizeof dev, FileFsDeviceInformation) >= 0 &&
                    (dev.DeviceType == FILE_DEVICE_DISK || dev.DeviceType == FILE_DEVICE_DISK_FILE_SYSTEM ||
                     dev.DeviceType == FILE_DEVICE_CD_ROM || dev.DeviceType == FILE_DEVICE_VIRTUAL_DISK ||
                     dev.DeviceType == FILE_DEVICE_NETWORK_FILE_SYSTEM);
        kind = file ? KIND_FILE : KIND_OTHER;
        handle_put(handle, &ioquota_virtualizer, IOQ_TAG_KIND, kind);
    }
    return kind == KIND_FILE;
}

/* Connects once (g_lock held); a broken connection is retried next time. */
static HANDLE broker_connection(void)
{
    if (g_broker == INVALID_HANDLE_VALUE) {
        HANDLE pipe = runtime_broker_connect();
        g_broker = pipe ? pipe : INVALID_HANDLE_VALUE;
    }
    return g_broker;
}

/* Asks the broker for bytes and ops (g_lock held); FALSE: no broker. */
static BOOL ask_broker(int dir, uint64_t bytes, uint64_t ops, fvm_io_reply *reply)
{
    fvm_io_request req;
    memset(&req, 0, sizeof req);
    memcpy(req.magic, FVM_BROKER_REQ_IO, 8);
    req.direction = (uint32_t)dir;
    req.bytes = bytes;
    req.ops = ops;
    req.moved_bytes = g_moved_bytes[dir];
    req.moved_ops = g_moved_ops[dir];
    for (int attempt = 0; attempt < 2; attempt++) {
        HANDLE pipe = broker_connection();
        DWORD done = 0;
        if (pipe == INVALID_HANDLE_VALUE)
            return FALSE;
        if (WriteFile(pipe, &req, sizeof req, &done, NULL) && ReadFile(pipe, reply, sizeof *reply, &done, NULL) &&
            done == sizeof *reply && reply->version == FVM_BROKER_PROTO_VERSION && reply->status == 0) {
            g_moved_bytes[dir] = g_moved_ops[dir] = 0;
            return TRUE;
        }
        CloseHandle(pipe);
        g_broker = INVALID_HANDLE_VALUE;
    }
    return FALSE;
}

/* g_lock is held only for a lease update or one broker round trip. A
 * thread ended while holding it (TerminateThread, or ExitProcess ending the
 * others) must not hang the process's last writes: after a few seconds the
 * call goes on uncounted. */
static volatile LONG g_lock_lost;   /* it happened once: this process stops counting */

static BOOL lock_lease(void)
{
    for (int tries = 0; tries < 5000 && !g_lock_lost; tries++) {
        if (TryAcquireSRWLockExclusive(&g_lock))
            return TRUE;
        Sleep(tries < 10 ? 0 : 1);
    }
    InterlockedExchange(&g_lock_lost, 1);
    return FALSE;
}

/* Takes bytes and one op for a call in direction dir, waiting as the
 * broker says when the lease is short. */
static void take(int dir, uint64_t bytes)
{
    uint64_t wait_us = 0, extra_bytes = 0, extra_ops = 0;
    DWORD saved = GetLastError();
    if (!lock_lease())
        return;
    LONG generation = g_hint->generation;
    if (generation != g_lease_generation) {   /* the limits changed: old leases go */
        memset(g_lease_bytes, 0, sizeof g_lease_bytes);
        memset(g_lease_ops, 0, sizeof g_lease_ops);
        g_lease_generation = generation;
    }
    if (g_lease_bytes[dir] >= bytes && g_lease_ops[dir] >= 1) {
        g_lease_bytes[dir] -= bytes;
        g_lease_ops[dir] -= 1;
    } else {
        uint64_t need_bytes = g_lease_bytes[dir] >= bytes ? 0 : bytes - g_lease_bytes[dir];
        uint64_t need_ops = g_lease_ops[dir] >= 1 ? 0 : 1;
        fvm_io_reply reply;
        memset(&reply, 0, sizeof reply);
        if (ask_broker(dir, need_bytes, need_ops, &reply)) {
            /* The need is used now; the rest of the grant becomes lease
             * after the wait, so no other thread uses it before it is due. */
            g_lease_bytes[dir] -= bytes - need_bytes;
            g_lease_ops[dir] -= 1 - need_ops;
            uint64_t granted_bytes = reply.granted_bytes >= need_bytes ? reply.granted_bytes : need_bytes;
            uint64_t granted_ops = reply.granted_ops >= need_ops ? reply.granted_ops : need_ops;
            extra_bytes = granted_bytes - need_bytes;
            extra_ops = granted_ops - need_ops;
            wait_us = reply.wait_us;
        }
        /* No broker: the I/O goes on uncounted rather than fail a program
         * whose box lost its broker (the box is ending). */
    }
    ReleaseSRWLockExclusive(&g_lock);
    if (wait_us) {
        LARGE_INTEGER delay;
        if (wait_us > 60ull * 1000000)
            wait_us = 60ull * 1000000;   /* a forged ask's debt: still throttled, never hung forever */
        delay.QuadPart = -(LONGLONG)(wait_us * 10);
        NtDelayExecution(FALSE, &delay);
    }
    if ((extra_bytes || extra_ops) && lock_lease()) {
        if (g_lease_generation == generation) {
            /* An unlimited dimension's lease is 2^40 an ask: kept far from wrapping. */
            g_lease_bytes[dir] = g_lease_bytes[dir] + extra_bytes < (1ull << 50) ? g_lease_bytes[dir] + extra_bytes
                                                                                 : (1ull << 50);
            g_lease_ops[dir] = g_lease_ops[dir] + extra_ops < (1ull << 50) ? g_lease_ops[dir] + extra_ops : (1ull << 50);
        }
        ReleaseSRWLockExclusive(&g_lock);
    }
    SetLastError(saved);
}

/* A call took length bytes and moved `moved`: the rest goes back to the
 * lease. */
static void account(int dir, uint64_t length, uint64_t moved, LONG generation)
{
    if (!lock_lease())
        return;
    if (g_lease_generation == generation)
        g_lease_bytes[dir] += length - moved;
    g_moved_bytes[dir] += moved;
    g_moved_ops[dir]++;
    ReleaseSRWLockExclusive(&g_lock);
}

/* Whether a call must take from the lease (the fast path is the first test). */
static inline BOOL limited(HANDLE handle, ULONG length)
{
    return g_hint && g_hint->io_limited && length && g_fvm.active && handle != g_broker && counted(handle);
}

/* No limit on: the call's bytes go into the box's tally for fvm stats (two
 * atomic adds for a file; a pipe, socket or console is not counted). */
static inline BOOL tallied(HANDLE handle, ULONG length)
{
    return g_tally && length && g_fvm.active && handle != g_broker && counted(handle);
}

static void tally(int dir, NTSTATUS status, PIO_STATUS_BLOCK io, ULONG length)
{
    IO_STATUS_BLOCK done;
    uint64_t moved = 0;
    if (status == STATUS_PENDING)
        moved = length;   /* asynchronous: counted as asked */
    else if (status >= 0 && guard_copy(&done, io, sizeof done) && done.Information <= length)
        moved = done.Information;
    else
        return;
    InterlockedAdd64(&g_tally->bytes[dir], (LONG64)moved);
    InterlockedIncrement64(&g_tally->ops[dir]);
}

/* After a call that took length bytes: what it did not move goes back. */
static void settle(int dir, NTSTATUS status, PIO_STATUS_BLOCK io, ULONG length, LONG generation)
{
    IO_STATUS_BLOCK done;
    uint64_t moved = 0;
    if (status == STATUS_PENDING)
        moved = length;   /* asynchronous: counted as asked */
    else if (status >= 0 && guard_copy(&done, io, sizeof done) && done.Information <= length)
        moved = done.Information;
    account(dir, length, moved, generation);
}

static NTSTATUS NTAPI box_NtReadFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                     PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, PLARGE_INTEGER offset, PULONG key)
{
    if (!limited(handle, length)) {
        if (!tallied(handle, length))
            return real_NtReadFile(handle, event, apc, apc_context, io, buffer, length, offset, key);
        NTSTATUS status = real_NtReadFile(handle, event, apc, apc_context, io, buffer, length, offset, key);
        DWORD saved = GetLastError();
        tally(0, status, io, length);
        SetLastError(saved);
        return status;
    }
    take(0, length);
    LONG generation = g_lease_generation;
    NTSTATUS status = real_NtReadFile(handle, event, apc, apc_context, io, buffer, length, offset, key);
    settle(0, status, io, length, generation);
    return status;
}

static NTSTATUS write_file(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                           PVOID buffer, ULONG length, PLARGE_INTEGER offset, PULONG key)
{
    if (quota_active())
        return file_quota_write(real_NtWriteFile, handle, event, apc, apc_context, io, buffer, length, offset, key);
    return real_NtWriteFile(handle, event, apc, apc_context, io, buffer, length, offset, key);
}

static NTSTATUS NTAPI box_NtWriteFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                      PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, PLARGE_INTEGER offset,
                                      PULONG key)
{
    if (!limited(handle, length)) {
        if (!tallied(handle, length))
            return write_file(handle, event, apc, apc_context, io, buffer, length, offset, key);
        NTSTATUS status = write_file(handle, event, apc, apc_context, io, buffer, length, offset, key);
        DWORD saved = GetLastError();
        tally(1, status, io, length);
        SetLastError(saved);
        return status;
    }
    take(1, length);
    LONG generation = g_lease_generation;
    NTSTATUS status = write_file(handle, event, apc, apc_context, io, buffer, length, offset, key);
    settle(1, status, io, length, generation);
    return status;
}

static BOOL ioquota_start(void)
{
    g_hint = memquota_hint();
    /* Mapped at start, not at the first counted call (that would save a
     * process that never touches a file about 0.2 ms): a mapping made later
     * lands in address space the program may have just freed and expects
     * still free (test_process_isolation's probe does). */
    HANDLE given = (HANDLE)(ULONG_PTR)g_fvm.config.given_tally;
    if (g_hint) {
        /* Handed by the boxed process that created this one (one map
         * instead of a named open), else opened by name. */
        runtime_bypass_enter();
        HANDLE section = given;
        if (section && !(g_tally = MapViewOfFile(section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, sizeof *g_tally)))
            CloseHandle(section);
        given = NULL;
        if (!g_tally) {
            wchar_t name[FVM_OBJ_NAME_MAX];
            fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_IO_TALLY, name, FVM_OBJ_NAME_MAX);
            section = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, name);
            if (section && !(g_tally = MapViewOfFile(section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, sizeof *g_tally)))
                CloseHandle(section);
        }
        if (g_tally)
            g_tally_section = section;   /* kept: boxed processes may write the tally anyway */
        runtime_bypass_leave();
    }
    if (given)
        CloseHandle(given);   /* no hint any more (cannot happen: the hint outlives the box's processes) */
    if (g_hint && g_hint->io_limited && lock_lease()) {
        broker_connection();   /* at start, while no lock of the program is held */
        ReleaseSRWLockExclusive(&g_lock);
    }
    return TRUE;
}

void io_tally_give(HANDLE process, fvm_box_config *config)
{
    HANDLE in_child = NULL;
    if (g_tally_section &&
        DuplicateHandle(GetCurrentProcess(), g_tally_section, process, &in_child, 0, FALSE, DUPLICATE_SAME_ACCESS))
        config->given_tally = (uint64_t)(ULONG_PTR)in_child;
}

/* Hooked whenever there is a hint to follow (a limit may be set on the
 * running box) or a storage quota (whose write hook this is). */
static void ioquota_hooks(hook_table *table)
{
    if (g_hint) {
        FVM_HOOK(table, "ntdll.dll", NtReadFile);
        FVM_HOOK(table, "ntdll.dll", NtWriteFile);
    } else if (quota_active()) {
        FVM_HOOK(table, "ntdll.dll", NtWriteFile);
    }
}

/* A copy of a handle is the same kind of object. */
static void *ioquota_handle_duplicated(HANDLE from, HANDLE to, unsigned tag, void *data)
{
    return data;
}

const fvm_virtualizer ioquota_virtualizer = {
    .name = "I/O quota",
    .policy = POLICY_TYPE_FILE,
    .start = ioquota_start,
    .hooks = ioquota_hooks,
    .handle_duplicated = ioquota_handle_duplicated,
};

/* memquota.c - a box's memory limit, on the process's side (issue 12).
 *
 * The broker holds the limit and the counts (broker/limits.c); this file
 * only asks. When the broker's read-only hint says a memory limit is on, a
 * commit of the process's own memory (NtAllocateVirtualMemory with
 * MEM_COMMIT on the current process) first takes the bytes it will newly
 * commit from a lease the broker granted; when the lease is short it asks
 * the broker for the need plus a few MiB more. A refusal fails the call with
 * STATUS_COMMITMENT_LIMIT, as a job's memory limit does on Windows, so the
 * program sees an ordinary allocation failure (VirtualAlloc returns NULL,
 * GetLastError 1455; malloc returns NULL). Freed and decommitted bytes go
 * back to the lease, and a large unused lease goes back to the broker.
 *
 * Only pages not committed yet count (a commit over committed pages costs
 * nothing, as on Windows). Not counted: what was committed before fvm.dll
 * started, thread stacks the system allocates, section views (file mappings
 * and pagefile-backed sections) and memory committed in another process.
 * A program that makes raw system calls escapes this, as it escapes every
 * user-mode hook (docs/design.md). process.c owns the hooks of these two
 * functions (its guard against other processes comes first) and calls in
 * here. The broker call's own allocations (pipe buffers, the per-thread
 * block) are not counted: the thread is marked while it asks. */
#include "runtime/runtime.h"

#include "common/boxlimits.h"
#include "common/boxshare.h"
#include "common/brokerproto.h"
#include "runtime/guard.h"

#ifndef STATUS_COMMITMENT_LIMIT
#define STATUS_COMMITMENT_LIMIT ((NTSTATUS)0xC000012DL)
#endif

#define PAGE 4096u
#define LEASE (4u << 20)               /* asked for beyond the need */
#define KEEP_MAX (16u << 20)           /* unused lease above this goes back */
#define ASKING_MAX 64

static const fvm_limits_hint *g_hint;
static volatile LONG64 g_lease;        /* granted by the broker, not committed yet */
static volatile DWORD g_asking[ASKING_MAX];   /* threads inside a broker call */

/* The process's own connection to the broker, opened at start (no file
 * name to resolve and no heap to touch when a commit asks: a commit may be
 * the heap's own growth, with its lock held). One request at a time. */
static HANDLE g_pipe = INVALID_HANDLE_VALUE;
static SRWLOCK g_pipe_lock = SRWLOCK_INIT;

static BOOL memquota_start(void)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    g_hint = runtime_shared()->hint;   /* shared.c: the broker's published section */
    runtime_bypass_enter();
    if (g_hint && g_hint->memory_limited) {
        fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
        for (int attempt = 0; attempt < 50 && g_pipe == INVALID_HANDLE_VALUE; attempt++) {
            g_pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
            if (g_pipe == INVALID_HANDLE_VALUE && !WaitNamedPipeW(name, 200))
                Sleep(10);
        }
        DWORD mode = PIPE_READMODE_MESSAGE;
        if (g_pipe != INVALID_HANDLE_VALUE)
            SetNamedPipeHandleState(g_pipe, &mode, NULL, NULL);
    }
    runtime_bypass_leave();
    /* No section (an old broker) or no connection: commits are not counted
     * for this process if it had no limit at start; with a limit and no
     * connection every counted commit is refused (no answer, no grant). */
    return TRUE;
}
/* The broker's hint, mapped read-only (or NULL): ioquota.c reads it too. */
const fvm_limits_hint *memquota_hint(void)
{
    return g_hint;
}

/* A limit set on a running box applies to the processes started after it
 * (the ones before have no connection): they stay uncounted. */
static BOOL limited(HANDLE process)
{
    if (!g_hint || !g_hint->memory_limited || process != (HANDLE)(LONG_PTR)-1 || !g_fvm.active)
        return FALSE;
    return g_pipe != INVALID_HANDLE_VALUE;
}

/* Whether this thread is asking the broker (its own allocations are free). */
static BOOL asking(DWORD tid)
{
    for (int i = 0; i < ASKING_MAX; i++)
        if (g_asking[i] == tid)
            return TRUE;
    return FALSE;
}

/* The broker's answer: bytes granted (need and perhaps more), or 0. */
static uint64_t ask_broker(uint64_t need, uint64_t give_back)
{
    DWORD tid = GetCurrentThreadId();
    int slot = -1;
    for (int i = 0; i < ASKING_MAX && slot < 0; i++)
        if (InterlockedCompareExchange((volatile LONG *)&g_asking[i], (LONG)tid, 0) == 0)
            slot = i;
    if (slot < 0)
        return 0;   /* 64 threads asking at once: refused, never uncounted */
    DWORD saved = GetLastError();
    fvm_memory_request req;
    fvm_memory_reply reply;
    memset(&req, 0, sizeof req);
    memset(&reply, 0, sizeof reply);
    memcpy(req.magic, FVM_BROKER_REQ_MEMORY, 8);
    req.need = need;
    req.lease = need ? LEASE : 0;
    req.give_back = give_back;
    DWORD put = 0, got = 0;
    AcquireSRWLockExclusive(&g_pipe_lock);
    BOOL ok = g_pipe != INVALID_HANDLE_VALUE && WriteFile(g_pipe, &req, sizeof req, &put, NULL) &&
              put == sizeof req && ReadFile(g_pipe, &reply, sizeof reply, &got, NULL);
    ReleaseSRWLockExclusive(&g_pipe_lock);
    SetLastError(saved);
    g_asking[slot] = 0;
    if (!ok || got != sizeof reply || reply.version != FVM_BROKER_PROTO_VERSION || reply.status != 0)
        return 0;
    return reply.granted >= need ? reply.granted : 0;
}

/* Takes need bytes from the lease, asking the broker for what the lease
 * lacks (the whole lease is used before the broker is asked). */
static BOOL take(uint64_t need)
{
    LONG64 have;
    for (;;) {
        have = g_lease;
        LONG64 after = (uint64_t)have >= need ? have - (LONG64)need : 0;
        if (InterlockedCompareExchange64(&g_lease, after, have) == have)
            break;
    }
    if ((uint64_t)have >= need)
        return TRUE;
    uint64_t missing = need - (uint64_t)have;
    uint64_t granted = ask_broker(missing, 0);
    if (!granted) {
        InterlockedExchangeAdd64(&g_lease, have);
        return FALSE;
    }
    InterlockedExchangeAdd64(&g_lease, (LONG64)(granted - missing));
    return TRUE;
}

/* Bytes back into the lease; a large unused lease goes back to the broker. */
static void give(uint64_t bytes)
{
    LONG64 now = InterlockedExchangeAdd64(&g_lease, (LONG64)bytes) + (LONG64)bytes;
    if (now > (LONG64)KEEP_MAX) {
        LONG64 back = now - (LONG64)LEASE;
        if (InterlockedCompareExchange64(&g_lease, now - back, now) == now)
            ask_broker(0, (uint64_t)back);
    }
}

/* Bytes of [start, end) in the given state (MEM_COMMIT or not), or
 * all of it when the query fails. */
static uint64_t bytes_in_state(uintptr_t start, uintptr_t end, BOOL committed)
{
    uint64_t total = 0;
    uintptr_t at = start;
    for (int regions = 0; at < end && regions < 1024; regions++) {
        MEMORY_BASIC_INFORMATION mbi;
        if (VirtualQuery((void *)at, &mbi, sizeof mbi) != sizeof mbi)
            return committed ? total : total + (end - at);
        uintptr_t region_end = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
        if (region_end <= at)
            break;
        uintptr_t stop = region_end < end ? region_end : end;
        if ((mbi.State == MEM_COMMIT) == committed)
            total += stop - at;
        at = stop;
    }
    return total;
}

/* Committed bytes of one allocation, from its base to its end. */
static uint64_t allocation_committed(uintptr_t base)
{
    uint64_t total = 0;
    uintptr_t at = base;
    for (int regions = 0; regions < 4096; regions++) {
        MEMORY_BASIC_INFORMATION mbi;
        if (VirtualQuery((void *)at, &mbi, sizeof mbi) != sizeof mbi || (uintptr_t)mbi.AllocationBase != base ||
            mbi.State == MEM_FREE)
            break;
        if (mbi.State == MEM_COMMIT)
            total += mbi.RegionSize;
        at = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
    }
    return total;
}

NTSTATUS memquota_allocate(NTSTATUS(NTAPI *real)(HANDLE, void **, ULONG_PTR, SIZE_T *, ULONG, ULONG), HANDLE process,
                           void **address, ULONG_PTR zero_bits, SIZE_T *size, ULONG type, ULONG protect)
{
    void *base = NULL;
    SIZE_T want = 0;
    if (!(type & MEM_COMMIT) || !limited(process) || asking(GetCurrentThreadId()) ||
        !guard_copy(&base, address, sizeof base) || !guard_copy(&want, size, sizeof want) || !want)
        return real(process, address, zero_bits, size, type, protect);
    uint64_t need;
    if (!base) {
        need = ((uint64_t)want + PAGE - 1) & ~(uint64_t)(PAGE - 1);
    } else {
        uintptr_t start = (uintptr_t)base & ~(uintptr_t)(PAGE - 1);
        uintptr_t end = ((uintptr_t)base + want + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
        if (end <= start)
            return real(process, address, zero_bits, size, type, protect);
        need = (type & MEM_RESERVE) ? end - start : bytes_in_state(start, end, FALSE);
    }
    if (need && !take(need))
        return STATUS_COMMITMENT_LIMIT;
    NTSTATUS st = real(process, address, zero_bits, size, type, protect);
    if (st < 0 && need)
        give(need);
    return st;
}

NTSTATUS memquota_free(NTSTATUS(NTAPI *real)(HANDLE, void **, SIZE_T *, ULONG), HANDLE process, void **address,
                       SIZE_T *size, ULONG type)
{
    void *base = NULL;
    SIZE_T n = 0;
    if (!limited(process) || asking(GetCurrentThreadId()) || !guard_copy(&base, address, sizeof base) ||
        !guard_copy(&n, size, sizeof n) || !base)
        return real(process, address, size, type);
    uint64_t freed;
    if (n == 0) {
        MEMORY_BASIC_INFORMATION mbi;
        uintptr_t alloc_base = VirtualQuery(base, &mbi, sizeof mbi) == sizeof mbi ? (uintptr_t)mbi.AllocationBase : 0;
        if (!alloc_base)
            return real(process, address, size, type);
        if (type & MEM_RELEASE)
            freed = allocation_committed(alloc_base);
        else   /* decommit from base to the allocation's end */
            freed = allocation_committed(alloc_base) -
                    bytes_in_state(alloc_base, (uintptr_t)base & ~(uintptr_t)(PAGE - 1), TRUE);
    } else {
        uintptr_t start = (uintptr_t)base & ~(uintptr_t)(PAGE - 1);
        uintptr_t end = ((uintptr_t)base + n + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
        freed = end > start ? bytes_in_state(start, end, TRUE) : 0;
    }
    NTSTATUS st = real(process, address, size, type);
    if (st >= 0 && freed)
        give(freed);
    return st;
}

const fvm_virtualizer memquota_virtualizer = {
    .name = "memory quota",
    .policy = POLICY_TYPE_MEMORY,
    .start = memquota_start,
};

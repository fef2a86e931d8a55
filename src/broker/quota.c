/* quota.c - the storage quota's authority: bytes the box's delta may take.
 *
 * The broker alone holds the quota and the count; no boxed process can
 * write either (they used to share a writable {used, quota} section, and a
 * box raised its own quota). A process asks for bytes before it grows a box
 * file (core/brokermsg.h, "reserve"); the broker grants them in leases, so
 * a process writing a large file asks once per lease, not once per write.
 *
 * The count is   used = measured + granted
 *   measured  the bytes of <box>\drive and <box>\unc at the last measure;
 *   granted   every lease granted since, whether written yet or not.
 * A process's write only moves bytes from "granted" to the disk, so the sum
 * never undercounts. Freeing bytes (delete, shrink) is only a hint: the
 * broker believes the disk, not the sender, and measures the tree again the
 * next time a request does not fit. Then "granted" restarts from what the
 * live processes still hold unwritten, which each says with its request
 * ("leftover") and which the broker caps at what it granted that process:
 * a boxed program that forges requests on its runtime's connection can only
 * make the count larger, or hide at most its own last lease from one
 * measure. The audit log counts too (audit.c reserves its appends here).
 * Every sum is under one lock; requests are rare (one per lease). */
#include "broker/broker.h"

#include <stdio.h>
#include <string.h>

#include "common/boxcfg.h"
#include "common/boxlife.h"

#define LEASE_MAX   (1ull << 20)   /* the most one grant gives beyond what was asked */
#define LEASE_SHARE 8              /* ...and at most this share of the free space */
#define HOLDERS_MAX 4096

typedef struct holder {
    uint32_t pid;
    HANDLE process;         /* kept, so that "has it ended" is never asked of a reused pid */
    uint64_t outstanding;   /* granted to pid and, as far as the broker knows, not yet written */
} holder;

static CRITICAL_SECTION g_lock;
static wchar_t g_box_path[FVM_PATH_MAX];
static uint64_t g_quota, g_measured, g_granted;
static BOOL g_freed_since_measure;
static DWORD g_measured_at;
static holder g_holders[HOLDERS_MAX];
static size_t g_holder_count;

/* What the delta takes on disk: the box copies and the audit log (not
 * box.ini, the index or the registry file, which FVM itself sizes). */
static uint64_t measure(void)
{
    wchar_t path[FVM_PATH_MAX];
    uint64_t used = 0;
    _snwprintf(path, FVM_PATH_MAX, L"%ls\\drive", g_box_path);
    used += boxlife_tree_size(path);
    _snwprintf(path, FVM_PATH_MAX, L"%ls\\unc", g_box_path);
    used += boxlife_tree_size(path);
    WIN32_FILE_ATTRIBUTE_DATA log;
    _snwprintf(path, FVM_PATH_MAX, L"%ls\\audit.jsonl", g_box_path);
    if (GetFileAttributesExW(path, GetFileExInfoStandard, &log))
        used += ((uint64_t)log.nFileSizeHigh << 32) | log.nFileSizeLow;
    return used;
}

BOOL broker_quota_start(const wchar_t *box_path, uint64_t quota)
{
    InitializeCriticalSection(&g_lock);
    _snwprintf(g_box_path, FVM_PATH_MAX, L"%ls", box_path);
    g_quota = quota;
    g_measured = quota ? measure() : 0;
    g_measured_at = GetTickCount();
    return TRUE;
}

static BOOL holder_ended(const holder *h)
{
    return WaitForSingleObject(h->process, 0) != WAIT_TIMEOUT;
}

/* The holder of a live process (process: a handle the caller gives up), or
 * NULL when the table is full. A pid that ended and came back is a new
 * holder: the old one's lease ended with it. */
static holder *find_holder(uint32_t pid, HANDLE process)
{
    for (size_t i = 0; i < g_holder_count; i++) {
        if (g_holders[i].pid == pid && !holder_ended(&g_holders[i])) {
            CloseHandle(process);
            return &g_holders[i];
        }
    }
    if (g_holder_count == HOLDERS_MAX) {
        CloseHandle(process);
        return NULL;
    }
    holder *h = &g_holders[g_holder_count++];
    h->pid = pid;
    h->process = process;
    h->outstanding = 0;
    return h;
}

/* A fresh measure; what live processes hold unwritten stays granted. */
static void measure_again(void)
{
    g_measured = measure();
    g_granted = 0;
    for (size_t i = 0; i < g_holder_count;) {
        if (!holder_ended(&g_holders[i])) {
            g_granted += g_holders[i].outstanding;
            i++;
        } else {
            CloseHandle(g_holders[i].process);
            g_holders[i] = g_holders[--g_holder_count];   /* ended: its lease is gone */
        }
    }
    g_freed_since_measure = FALSE;
    g_measured_at = GetTickCount();
}

/* Worth measuring again: bytes were freed, or a process that held a lease
 * ended (what it did not write is no longer anyone's), or a while passed. */
static BOOL measure_is_stale(void)
{
    if (g_freed_since_measure || GetTickCount() - g_measured_at > 1000)
        return TRUE;
    for (size_t i = 0; i < g_holder_count; i++)
        if (holder_ended(&g_holders[i]))
            return TRUE;
    return FALSE;
}

static uint64_t free_bytes(void)
{
    uint64_t used = g_measured + g_granted;
    return used >= g_quota ? 0 : g_quota - used;
}

uint64_t broker_quota_reserve(uint32_t pid, uint64_t need, uint64_t leftover)
{
    /* Only a live process of the box gets bytes of the box (asked of the
     * job: main.c); pid 0 is the broker. */
    HANDLE process = pid ? broker_open_member(pid) : NULL;
    if (pid && !process)
        return 0;
    if (!g_quota) {
        if (process)
            CloseHandle(process);
        return need;   /* no quota: everything fits */
    }
    EnterCriticalSection(&g_lock);
    holder *h = pid ? find_holder(pid, process) : NULL;
    if (pid && !h) {
        LeaveCriticalSection(&g_lock);
        return 0;   /* the holder table is full: fail closed */
    }
    /* Believed only up to what this process was granted. */
    uint64_t still_held = h ? (leftover < h->outstanding ? leftover : h->outstanding) : 0;
    if (h)
        h->outstanding = still_held;
    if (need > free_bytes() && measure_is_stale())
        measure_again();
    uint64_t grant = 0;
    uint64_t room = free_bytes();
    if (need <= room) {
        uint64_t extra = room / LEASE_SHARE;
        grant = need + (extra < LEASE_MAX ? extra : LEASE_MAX);
        if (grant > room)
            grant = room;
        if (!pid)
            grant = need;   /* the broker's own use (the audit log): exactly what it writes */
        g_granted += grant;
        if (h)
            h->outstanding += grant;
    }
    LeaveCriticalSection(&g_lock);
    return grant;
}

void broker_quota_freed(void)
{
    if (!g_quota)
        return;
    EnterCriticalSection(&g_lock);
    g_freed_since_measure = TRUE;
    LeaveCriticalSection(&g_lock);
}

BOOL broker_quota_active(void)
{
    return g_quota != 0;
}

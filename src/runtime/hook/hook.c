/* hook.c - installs inline hooks atomically (see hook.h).
 *
 * Two phases. Prepare: for each target, read its first bytes, find or
 * allocate a near block, build the relay and the trampoline there (they are
 * unreachable until the patch exists, so writing them is harmless) and
 * compute the 5-byte patch. Any failure here leaves every function as it
 * was. Commit: suspend every other thread (repeating the enumeration until
 * no new thread appears), read each one's RIP, move those stopped inside the
 * 5 bytes about to be replaced into the trampoline, write all patches, then
 * resume. Between suspend and resume only system calls that cannot wait on
 * a lock a suspended thread holds are made: no heap, no loader, no CRT.
 *
 * Everything lives in static storage guarded by one spin lock, because the
 * runtime has no heap of its own and a hook batch may run inside DllMain. */
#include "runtime/hook/hook.h"

#include <stdint.h>
#include <string.h>

#include "core/x64dis.h"

#define HOOK_STATUS(code) ((NTSTATUS)(code))
#define HOOK_SUCCESS HOOK_STATUS(0x00000000L)
#define HOOK_INFO_LENGTH_MISMATCH HOOK_STATUS(0xC0000004L)
#define HOOK_INVALID_PARAMETER HOOK_STATUS(0xC000000DL)
#define HOOK_NO_MEMORY HOOK_STATUS(0xC0000017L)
#define HOOK_CONFLICTING_ADDRESSES HOOK_STATUS(0xC0000018L)
#define HOOK_INVALID_IMAGE_FORMAT HOOK_STATUS(0xC000007BL)
#define HOOK_INSUFFICIENT_RESOURCES HOOK_STATUS(0xC000009AL)
#define HOOK_NOT_SUPPORTED HOOK_STATUS(0xC00000BBL)
#define HOOK_RETRY HOOK_STATUS(0xC000022DL)
#define HOOK_UNSUCCESSFUL HOOK_STATUS(0xC0000001L)

/* The patch over each function: jmp rel32 to its relay. */
#define HOOK_PATCH_LEN X64_JMP_REL32_LEN
/* Windows' allocation granularity: VirtualAlloc places blocks at multiples. */
#define HOOK_BLOCK_SIZE 0x10000u
#define HOOK_MAX_BLOCKS 64
/* How far a block may be from its target: rel32 reach less a margin, so
 * the target's RIP-relative data (also within 2 GB) stays reachable too. */
#define HOOK_REACH 0x7ff00000ull
/* Per hook: the relay, then the trampoline, each 16-byte aligned. */
#define HOOK_RELAY_SLOT 16
#define HOOK_TRAMPOLINE_CAP X64_TRAMPOLINE_CAP(HOOK_PATCH_LEN)
#define HOOK_SLOT_MAX (HOOK_RELAY_SLOT + ((HOOK_TRAMPOLINE_CAP + 15) & ~15u))
/* How many bytes of a target we read to decode it. */
#define HOOK_READ_LEN 32
/* Threads we can hold suspended at once. */
#define HOOK_MAX_THREADS 2048
/* Rounds of "enumerate, suspend the new ones" before giving up. */
#define HOOK_SUSPEND_ROUNDS 16

/* ---- messages ------------------------------------------------------------ */

/* A bounded string builder for `why`: the runtime has no snprintf it can
 * rely on while other threads are suspended, and needs none. */
typedef struct message {
    char *buf;
    size_t size;
    size_t len;
} message;

static void message_put(message *m, const char *text)
{
    if (!m->buf || !m->size)
        return;
    for (; text && *text && m->len + 1 < m->size; text++)
        m->buf[m->len++] = *text;
    m->buf[m->len] = 0;
}

static void message_hex(message *m, uint64_t value, int min_digits)
{
    char digits[17];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value & 15];
        value >>= 4;
    } while (value || n < min_digits);
    char text[17];
    for (int i = 0; i < n; i++)
        text[i] = digits[n - 1 - i];
    text[n] = 0;
    message_put(m, text);
}

static void message_dec(message *m, uint64_t value)
{
    char text[21];
    int n = 20;
    text[n] = 0;
    do {
        text[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    message_put(m, text + n);
}

static void message_bytes(message *m, const uint8_t *bytes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (i)
            message_put(m, " ");
        message_hex(m, bytes[i], 2);
    }
}

static const char *spec_name(const hook_spec *spec)
{
    return spec->name ? spec->name : "(unnamed)";
}

/* "<name>: <text>" as the start of a failure message. */
static void message_about(message *m, const hook_spec *spec, const char *text)
{
    m->len = 0;
    message_put(m, spec_name(spec));
    message_put(m, ": ");
    message_put(m, text);
}

/* ---- state ----------------------------------------------------------------- */

typedef struct near_block {
    uint8_t *base;
    size_t used;
    int writable;      /* opened for this batch's writes (RWX); closed at its end */
    DWORD old_protect;
} near_block;

/* One target, ready to patch. */
typedef struct prepared_hook {
    uint8_t *target;
    size_t stolen_len;
    uint8_t *trampoline;
    x64_trampoline_map map;
    uint8_t patch[HOOK_PATCH_LEN];
    DWORD old_protect;
    int protect_changed;
} prepared_hook;

typedef struct suspended_thread {
    HANDLE handle;
    DWORD id;
    int move;          /* set RIP to new_rip before resuming */
    DWORD64 new_rip;
} suspended_thread;

static volatile LONG g_busy;
static near_block g_blocks[HOOK_MAX_BLOCKS];
static size_t g_block_count;
static prepared_hook g_prepared[HOOK_MAX_BATCH];
static suspended_thread g_threads[HOOK_MAX_THREADS];
static size_t g_thread_count;
static CONTEXT g_context; /* 1.2 KiB: kept off the stack (no stack probes here) */
static hook_stats g_stats;

static void lock_engine(void)
{
    while (InterlockedCompareExchange(&g_busy, 1, 0) != 0)
        SwitchToThread();
}

static void unlock_engine(void)
{
    InterlockedExchange(&g_busy, 0);
}

void hook_get_stats(hook_stats *out)
{
    if (!out)
        return;
    lock_engine();
    *out = g_stats;
    unlock_engine();
}

/* ---- near memory ----------------------------------------------------------- */

static uintptr_t align_down(uintptr_t value, uintptr_t to) { return value & ~(to - 1); }
static uintptr_t align_up(uintptr_t value, uintptr_t to) { return (value + to - 1) & ~(to - 1); }

/* The address window a block for target must lie in, clipped to user space. */
static void reach_window(uintptr_t target, uintptr_t *low, uintptr_t *high)
{
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    uintptr_t min_app = align_up((uintptr_t)info.lpMinimumApplicationAddress, HOOK_BLOCK_SIZE);
    uintptr_t max_app = (uintptr_t)info.lpMaximumApplicationAddress;
    *low = target > min_app + HOOK_REACH ? target - HOOK_REACH : min_app;
    *high = target + HOOK_REACH < max_app ? target + HOOK_REACH : max_app;
}

static int block_reaches(const near_block *block, uintptr_t target)
{
    uintptr_t base = (uintptr_t)block->base;
    uintptr_t far_end = base + HOOK_BLOCK_SIZE;
    return (base >= target || target - base <= HOOK_REACH) &&
           (far_end <= target || far_end - target <= HOOK_REACH);
}

/* The first free, aligned 64 KiB at or above *cursor and below high;
 * 0 if none. Leaves *cursor there so a failed allocation can step on. */
static uintptr_t free_slot_above(uintptr_t *cursor, uintptr_t high)
{
    while (*cursor + HOOK_BLOCK_SIZE <= high) {
        MEMORY_BASIC_INFORMATION mbi;
        if (!VirtualQuery((void *)*cursor, &mbi, sizeof mbi))
            return 0;
        uintptr_t region_end = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
        if (mbi.State == MEM_FREE && *cursor + HOOK_BLOCK_SIZE <= region_end)
            return *cursor;
        *cursor = align_up(region_end, HOOK_BLOCK_SIZE);
    }
    return 0;
}

/* The same, searching downwards from *cursor to low. */
static uintptr_t free_slot_below(uintptr_t *cursor, uintptr_t low)
{
    while (*cursor >= low && *cursor != 0) {
        MEMORY_BASIC_INFORMATION mbi;
        if (!VirtualQuery((void *)*cursor, &mbi, sizeof mbi))
            return 0;
        uintptr_t region_end = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
        if (mbi.State == MEM_FREE && *cursor + HOOK_BLOCK_SIZE <= region_end)
            return *cursor;
        /* skip the whole allocation (a DLL image, a heap) in one step */
        uintptr_t start = mbi.State == MEM_FREE ? (uintptr_t)mbi.BaseAddress : (uintptr_t)mbi.AllocationBase;
        uintptr_t next = align_down(start, HOOK_BLOCK_SIZE);
        if (next >= *cursor)
            next = *cursor - HOOK_BLOCK_SIZE;
        if (next > *cursor) /* wrapped below zero */
            return 0;
        *cursor = next;
    }
    return 0;
}

/* Allocates a fresh block as close to target as possible, so that its
 * trampolines reach as much of the target's RIP-relative data as they can. */
static uint8_t *allocate_block_near(uintptr_t target)
{
    uintptr_t low, high;
    reach_window(target, &low, &high);
    uintptr_t up = align_up(target, HOOK_BLOCK_SIZE);
    uintptr_t down = align_down(target, HOOK_BLOCK_SIZE);
    for (int attempt = 0; attempt < 4096; attempt++) {
        uintptr_t above = free_slot_above(&up, high);
        uintptr_t below = free_slot_below(&down, low);
        if (!above && !below)
            return NULL;
        int use_above = above && (!below || above - target < target - below);
        uintptr_t candidate = use_above ? above : below;
        void *block = VirtualAlloc((void *)candidate, HOOK_BLOCK_SIZE, MEM_RESERVE | MEM_COMMIT,
                                   PAGE_EXECUTE_READ);
        if (block)
            return block;
        /* taken meanwhile by another thread: step past it */
        if (use_above)
            up += HOOK_BLOCK_SIZE;
        else
            down -= HOOK_BLOCK_SIZE;
    }
    return NULL;
}

/* The nearest block that reaches target and has room, or a new one. */
static near_block *block_for(uintptr_t target)
{
    near_block *best = NULL;
    uint64_t best_distance = UINT64_MAX;
    for (size_t i = 0; i < g_block_count; i++) {
        near_block *block = &g_blocks[i];
        uintptr_t base = (uintptr_t)block->base;
        uint64_t distance = base > target ? base - target : target - base;
        if (block->used + HOOK_SLOT_MAX <= HOOK_BLOCK_SIZE && block_reaches(block, target) &&
            distance < best_distance) {
            best = block;
            best_distance = distance;
        }
    }
    if (best || g_block_count == HOOK_MAX_BLOCKS)
        return best;
    uint8_t *base = allocate_block_near(target);
    if (!base)
        return NULL;
    g_blocks[g_block_count].base = base;
    g_blocks[g_block_count].used = 0;
    g_stats.blocks++;
    return &g_blocks[g_block_count++];
}

/* Writes into a block whose earlier slots may be executing right now: the
 * block goes RX -> RWX for the batch (never losing execute permission) and
 * back to RX once at the batch's end (close_blocks), so a batch of a
 * hundred hooks changes protections a few times, not hundreds. */
static BOOL write_code(uint8_t *dst, const uint8_t *src, size_t len)
{
    for (size_t i = 0; i < g_block_count; i++) {
        near_block *block = &g_blocks[i];
        if (dst < block->base || dst + len > block->base + HOOK_BLOCK_SIZE)
            continue;
        if (!block->writable) {
            if (!VirtualProtect(block->base, HOOK_BLOCK_SIZE, PAGE_EXECUTE_READWRITE, &block->old_protect))
                return FALSE;
            block->writable = 1;
        }
        memcpy(dst, src, len);
        return TRUE;
    }
    return FALSE;
}

static void close_blocks(void)
{
    for (size_t i = 0; i < g_block_count; i++) {
        near_block *block = &g_blocks[i];
        DWORD ignored;
        if (!block->writable)
            continue;
        VirtualProtect(block->base, HOOK_BLOCK_SIZE, block->old_protect, &ignored);
        FlushInstructionCache(GetCurrentProcess(), block->base, HOOK_BLOCK_SIZE);
        block->writable = 0;
    }
}

/* ---- prepare ----------------------------------------------------------------- */

static int is_executable(DWORD protect)
{
    DWORD base = protect & 0xff;
    return base == PAGE_EXECUTE_READ || base == PAGE_EXECUTE_READWRITE || base == PAGE_EXECUTE_WRITECOPY;
}

/* The last region readable_code found to be executable code, valid for
 * one batch's preparation (nothing changes the targets' protections until
 * the batch is committed). Most hooks of a batch lie in one DLL's code
 * section: one query serves them all, where a query per hook cost the
 * start of every boxed process some 200 queries (under Wine each takes the
 * virtual-memory lock with signals blocked: two system calls). */
static const uint8_t *g_code_start, *g_code_end;

/* How many of the up to HOOK_READ_LEN bytes at target are committed,
 * executable code (possibly across several regions). */
static size_t readable_code(const uint8_t *target)
{
    if (target >= g_code_start && target + HOOK_READ_LEN <= g_code_end)
        return HOOK_READ_LEN;
    size_t have = 0;
    while (have < HOOK_READ_LEN) {
        MEMORY_BASIC_INFORMATION mbi;
        if (!VirtualQuery(target + have, &mbi, sizeof mbi) || mbi.State != MEM_COMMIT ||
            !is_executable(mbi.Protect) || (mbi.Protect & PAGE_GUARD))
            break;
        const uint8_t *start = mbi.BaseAddress, *end = start + mbi.RegionSize;
        if (!have && end >= target + HOOK_READ_LEN) {
            g_code_start = start;
            g_code_end = end;
        }
        have = (size_t)(end - target);
    }
    return have < HOOK_READ_LEN ? have : HOOK_READ_LEN;
}

static NTSTATUS status_for(fvm_status status)
{
    switch (status) {
    case FVM_E_UNSUPPORTED: return HOOK_NOT_SUPPORTED;
    case FVM_E_RANGE: return HOOK_CONFLICTING_ADDRESSES;
    default: return HOOK_INVALID_IMAGE_FORMAT;
    }
}

static NTSTATUS prepare_hook(const hook_spec *spec, size_t index, message *why)
{
    prepared_hook *hook = &g_prepared[index];
    uint8_t code[HOOK_READ_LEN];
    uint8_t trampoline[HOOK_TRAMPOLINE_CAP];
    uint8_t relay[HOOK_RELAY_SLOT];
    fvm_error err;

    memset(hook, 0, sizeof *hook);
    if (!spec->target || !spec->detour || !spec->original) {
        message_about(why, spec, !spec->target   ? "no target address"
                                 : !spec->detour ? "no detour"
                                                 : "no original pointer");
        return HOOK_INVALID_PARAMETER;
    }
    hook->target = spec->target;
    size_t avail = readable_code(hook->target);
    if (avail < HOOK_PATCH_LEN) {
        message_about(why, spec, "target 0x");
        message_hex(why, (uintptr_t)hook->target, 1);
        message_put(why, " is not executable code");
        return HOOK_INVALID_PARAMETER;
    }
    memcpy(code, hook->target, avail);

    near_block *block = block_for((uintptr_t)hook->target);
    if (!block) {
        message_about(why, spec, "no free memory within 2 GB of the function for its trampoline");
        return HOOK_NO_MEMORY;
    }
    uint8_t *slot = block->base + block->used;
    size_t tramp_len;
    fvm_status built = x64_build_trampoline(code, avail, (uintptr_t)hook->target, HOOK_PATCH_LEN, trampoline,
                                            (uintptr_t)(slot + HOOK_RELAY_SLOT), sizeof trampoline,
                                            &hook->stolen_len, &tramp_len, &hook->map, &err);
    if (built != FVM_OK) {
        message_about(why, spec, err.message);
        message_put(why, " (first bytes: ");
        message_bytes(why, code, avail < 16 ? avail : 16);
        message_put(why, ")");
        return status_for(built);
    }

    memset(relay, 0xcc, sizeof relay);
    x64_write_jmp_abs(relay, sizeof relay, (uintptr_t)spec->detour, NULL);
    if (x64_write_jmp_rel32(hook->patch, sizeof hook->patch, (uintptr_t)hook->target, (uintptr_t)slot, &err) !=
        FVM_OK) {
        message_about(why, spec, err.message);
        return HOOK_CONFLICTING_ADDRESSES;
    }
    if (!write_code(slot, relay, sizeof relay) || !write_code(slot + HOOK_RELAY_SLOT, trampoline, tramp_len)) {
        message_about(why, spec, "cannot write the trampoline block (VirtualProtect error ");
        message_dec(why, GetLastError());
        message_put(why, ")");
        return HOOK_UNSUCCESSFUL;
    }
    hook->trampoline = slot + HOOK_RELAY_SLOT;
    block->used += HOOK_RELAY_SLOT + ((tramp_len + 15) & ~(size_t)15);
    return HOOK_SUCCESS;
}

/* Two hooks on overlapping bytes would relocate each other's patch. */
static NTSTATUS check_overlaps(const hook_spec *specs, size_t count, message *why)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < i; j++) {
            const prepared_hook *a = &g_prepared[i], *b = &g_prepared[j];
            if (a->target < b->target + b->stolen_len && b->target < a->target + a->stolen_len) {
                message_about(why, &specs[i], "overlaps the hook on ");
                message_put(why, spec_name(&specs[j]));
                return HOOK_INVALID_PARAMETER;
            }
        }
    }
    return HOOK_SUCCESS;
}

/* ---- suspend / resume --------------------------------------------------------- */

/* SystemProcessInformation records, x64 layout (documented; Wine fills it
 * the same way). Only the fields used are named. */
typedef struct sys_thread_info {
    LARGE_INTEGER kernel_time, user_time, create_time;
    ULONG wait_time;
    PVOID start_address;
    CLIENT_ID client_id;
    LONG priority, base_priority;
    ULONG context_switches, thread_state, wait_reason;
} sys_thread_info;

typedef struct sys_process_info {
    ULONG next_entry_offset;
    ULONG thread_count;
    BYTE unused1[72];
    HANDLE process_id;
    BYTE unused2[168];
    sys_thread_info threads[1];
} sys_process_info;

_Static_assert(sizeof(sys_thread_info) == 80, "SYSTEM_THREAD_INFORMATION is 80 bytes on x64");
_Static_assert(offsetof(sys_thread_info, client_id) == 40, "ClientId at 40");
_Static_assert(offsetof(sys_process_info, process_id) == 80, "UniqueProcessId at 80");
_Static_assert(offsetof(sys_process_info, threads) == 256, "Threads at 256");

static int already_suspended(DWORD id)
{
    for (size_t i = 0; i < g_thread_count; i++)
        if (g_threads[i].id == id)
            return 1;
    return 0;
}

static void resume_all(void)
{
    for (size_t i = 0; i < g_thread_count; i++) {
        ResumeThread(g_threads[i].handle);
        CloseHandle(g_threads[i].handle);
    }
    g_thread_count = 0;
}

/* Reads the process list into a buffer from VirtualAlloc (not the heap: a
 * suspended thread may hold the heap lock), growing it as needed. */
static NTSTATUS query_processes(void **buffer, SIZE_T *size)
{
    for (;;) {
        ULONG needed = 0;
        if (!*buffer) {
            *buffer = VirtualAlloc(NULL, *size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
            if (!*buffer)
                return HOOK_NO_MEMORY;
        }
        NTSTATUS status = NtQuerySystemInformation(SystemProcessInformation, *buffer, (ULONG)*size, &needed);
        if (status != HOOK_INFO_LENGTH_MISMATCH)
            return status;
        VirtualFree(*buffer, 0, MEM_RELEASE);
        *buffer = NULL;
        *size = (needed > *size ? needed : *size) * 2;
    }
}

/* True when the calling thread is the only one in the process. One cheap
 * query, where enumerating the system's processes is costly (under Wine it
 * walks every process through the server): in a new process, when fvm.dll
 * installs its hooks from its entry point, there is normally no other thread,
 * and none can appear meanwhile because only this thread runs code. */
static int is_only_thread(void)
{
    ULONG last = 0;
    return NtQueryInformationThread(GetCurrentThread(), (THREADINFOCLASS)12 /* ThreadAmILastThread */, &last,
                                    sizeof last, NULL) >= 0 && last;
}

/* Suspends every thread of this process but the caller, repeating until an
 * enumeration finds no thread that is not yet suspended (a thread may have
 * started one between our enumeration and its suspension). */
static NTSTATUS suspend_other_threads(message *why)
{
    g_thread_count = 0;
    if (is_only_thread())
        return HOOK_SUCCESS;

    void *buffer = NULL;
    SIZE_T size = 256 * 1024;
    DWORD self_process = GetCurrentProcessId(), self_thread = GetCurrentThreadId();
    NTSTATUS status = HOOK_RETRY;

    g_thread_count = 0;
    for (int round = 0; round < HOOK_SUSPEND_ROUNDS && status == HOOK_RETRY; round++) {
        int found_new = 0;
        NTSTATUS queried = query_processes(&buffer, &size);
        if (queried < 0) {
            why->len = 0;
            message_put(why, "cannot enumerate threads: NtQuerySystemInformation status 0x");
            message_hex(why, (ULONG)queried, 8);
            status = queried;
            break;
        }
        const sys_process_info *process = buffer;
        while ((DWORD)(uintptr_t)process->process_id != self_process && process->next_entry_offset)
            process = (const sys_process_info *)((const BYTE *)process + process->next_entry_offset);
        if ((DWORD)(uintptr_t)process->process_id != self_process) {
            status = HOOK_SUCCESS; /* not listed: there is nothing we could suspend */
            break;
        }
        for (ULONG t = 0; t < process->thread_count && status == HOOK_RETRY; t++) {
            DWORD id = (DWORD)(uintptr_t)process->threads[t].client_id.UniqueThread;
            if (id == self_thread || already_suspended(id))
                continue;
            if (g_thread_count == HOOK_MAX_THREADS) {
                why->len = 0;
                message_put(why, "more than ");
                message_dec(why, HOOK_MAX_THREADS);
                message_put(why, " threads to suspend");
                status = HOOK_INSUFFICIENT_RESOURCES;
                break;
            }
            HANDLE handle = OpenThread(THREAD_SUSPEND_RESUME | THREAD_GET_CONTEXT | THREAD_SET_CONTEXT |
                                           THREAD_QUERY_LIMITED_INFORMATION,
                                       FALSE, id);
            if (!handle)
                continue; /* exited since the enumeration */
            if (SuspendThread(handle) == (DWORD)-1) {
                CloseHandle(handle);
                continue; /* exiting */
            }
            g_threads[g_thread_count].handle = handle;
            g_threads[g_thread_count].id = id;
            g_threads[g_thread_count].move = 0;
            g_thread_count++;
            found_new = 1;
        }
        if (status == HOOK_RETRY && !found_new)
            status = HOOK_SUCCESS;
    }
    if (status == HOOK_RETRY) {
        why->len = 0;
        message_put(why, "threads kept appearing while suspending them");
    }
    if (buffer)
        VirtualFree(buffer, 0, MEM_RELEASE);
    return status;
}

/* Decides where each suspended thread must continue. GetThreadContext also
 * waits until the suspension has really taken effect (it is asynchronous,
 * notably under Wine). A thread at the first byte is left alone: it will
 * simply run the new jump. */
static NTSTATUS plan_thread_moves(const hook_spec *specs, size_t count, message *why)
{
    for (size_t i = 0; i < g_thread_count; i++) {
        suspended_thread *thread = &g_threads[i];
        g_context.ContextFlags = CONTEXT_CONTROL;
        if (!GetThreadContext(thread->handle, &g_context))
            continue; /* terminating: it runs no more user code */
        uintptr_t rip = (uintptr_t)g_context.Rip;
        for (size_t h = 0; h < count; h++) {
            const prepared_hook *hook = &g_prepared[h];
            uintptr_t start = (uintptr_t)hook->target;
            size_t dst_offset;
            if (rip <= start || rip >= start + HOOK_PATCH_LEN)
                continue;
            if (!x64_trampoline_map_offset(&hook->map, rip - start, &dst_offset)) {
                message_about(why, &specs[h], "thread ");
                message_dec(why, thread->id);
                message_put(why, " is stopped inside an instruction at byte ");
                message_dec(why, rip - start);
                return HOOK_RETRY;
            }
            thread->move = 1;
            thread->new_rip = (uintptr_t)hook->trampoline + dst_offset;
        }
    }
    return HOOK_SUCCESS;
}

static NTSTATUS apply_thread_moves(message *why)
{
    for (size_t i = 0; i < g_thread_count; i++) {
        suspended_thread *thread = &g_threads[i];
        if (!thread->move)
            continue;
        g_context.ContextFlags = CONTEXT_CONTROL;
        if (!GetThreadContext(thread->handle, &g_context))
            continue;
        g_context.Rip = thread->new_rip;
        if (!SetThreadContext(thread->handle, &g_context)) {
            why->len = 0;
            message_put(why, "cannot move thread ");
            message_dec(why, thread->id);
            message_put(why, " out of the patched bytes (SetThreadContext error ");
            message_dec(why, GetLastError());
            message_put(why, ")");
            return HOOK_UNSUCCESSFUL;
        }
        g_stats.threads_moved++;
    }
    return HOOK_SUCCESS;
}

/* ---- commit ---------------------------------------------------------------------- */

/* The code pages a batch patches are made writable in runs: the pages of
 * one memory region (VirtualQuery's: same allocation, same protection)
 * from the first patched one to the last, in one VirtualProtect, and put
 * back in one more. Under Wine each VirtualProtect is ~5 us here (a
 * mprotect and two sigprocmask system calls); a process's first batch
 * patches 99 functions on ~14 pages of three or four DLLs, so per page it
 * was 28 calls, and in runs it is twice the number of DLLs. The unpatched
 * pages between are writable for as long, while every other thread of the
 * process is suspended. */
#define HOOK_PAGE 0x1000u

typedef struct protected_run {
    uintptr_t start;
    SIZE_T size;
    DWORD old_protect;
} protected_run;

static uintptr_t g_pages[HOOK_MAX_BATCH * 2];   /* distinct pages to patch, sorted */
static size_t g_page_count;
static protected_run g_runs[HOOK_MAX_BATCH * 2];
static size_t g_run_count;

static void add_page(uintptr_t page)
{
    size_t at = g_page_count;
    while (at > 0 && g_pages[at - 1] > page)
        at--;
    if (at > 0 && g_pages[at - 1] == page)
        return;
    memmove(&g_pages[at + 1], &g_pages[at], (g_page_count - at) * sizeof g_pages[0]);
    g_pages[at] = page;
    g_page_count++;
}

/* Makes every page of g_pages writable, a run per region. */
static BOOL open_pages(void)
{
    g_run_count = 0;
    for (size_t i = 0; i < g_page_count;) {
        MEMORY_BASIC_INFORMATION mbi;
        if (!VirtualQuery((void *)g_pages[i], &mbi, sizeof mbi))
            return FALSE;
        uintptr_t region_end = (uintptr_t)mbi.BaseAddress + mbi.RegionSize;
        size_t last = i;
        while (last + 1 < g_page_count && g_pages[last + 1] < region_end)
            last++;
        protected_run *run = &g_runs[g_run_count];
        run->start = g_pages[i];
        run->size = g_pages[last] + HOOK_PAGE - g_pages[i];
        if (!VirtualProtect((void *)run->start, run->size, PAGE_EXECUTE_READWRITE, &run->old_protect))
            return FALSE;
        g_run_count++;
        i = last + 1;
    }
    return TRUE;
}

static void restore_protections(size_t count)
{
    for (size_t i = 0; i < g_run_count; i++) {
        DWORD ignored;
        VirtualProtect((void *)g_runs[i].start, g_runs[i].size, g_runs[i].old_protect, &ignored);
        FlushInstructionCache(GetCurrentProcess(), (void *)g_runs[i].start, g_runs[i].size);
    }
    g_run_count = g_page_count = 0;
    for (size_t i = 0; i < count; i++)
        g_prepared[i].protect_changed = 0;
}

/* The 5 bytes usually lie within one aligned 8-byte word (functions are
 * 16-byte aligned): then one locked cmpxchg publishes them all at once, so
 * even a thread we could not suspend never sees half a jump. */
static void write_patch(uint8_t *target, const uint8_t *patch)
{
    uintptr_t address = (uintptr_t)target;
    size_t shift = address & 7;
    if (shift + HOOK_PATCH_LEN <= 8) {
        volatile LONG64 *word = (volatile LONG64 *)(address - shift);
        LONG64 old_word, new_word;
        do {
            old_word = *word;
            new_word = old_word;
            memcpy((uint8_t *)&new_word + shift, patch, HOOK_PATCH_LEN);
        } while (InterlockedCompareExchange64(word, new_word, old_word) != old_word);
        return;
    }
    memcpy(target, patch, HOOK_PATCH_LEN);
}

static NTSTATUS commit_batch(hook_spec *specs, size_t count, message *why)
{
    NTSTATUS status = suspend_other_threads(why);
    if (status < 0) {
        resume_all();
        return status;
    }
    g_stats.threads_suspended += (unsigned long)g_thread_count;

    status = plan_thread_moves(specs, count, why);
    g_page_count = g_run_count = 0;
    for (size_t i = 0; i < count; i++) {
        uintptr_t target = (uintptr_t)g_prepared[i].target;
        add_page(target & ~(uintptr_t)(HOOK_PAGE - 1));
        add_page((target + HOOK_PATCH_LEN - 1) & ~(uintptr_t)(HOOK_PAGE - 1));
    }
    if (status >= 0) {
        if (open_pages()) {
            for (size_t i = 0; i < count; i++)
                g_prepared[i].protect_changed = 1;
        } else {
            why->len = 0;
            message_put(why, "VirtualProtect of the patched pages failed with error ");
            message_dec(why, GetLastError());
            status = HOOK_UNSUCCESSFUL;
        }
    }
    if (status >= 0)
        status = apply_thread_moves(why);
    if (status < 0) {
        restore_protections(count);
        resume_all();
        return status;
    }

    for (size_t i = 0; i < count; i++)
        *specs[i].original = g_prepared[i].trampoline;
    for (size_t i = 0; i < count; i++)
        write_patch(g_prepared[i].target, g_prepared[i].patch);
    restore_protections(count);
    resume_all();
    return HOOK_SUCCESS;
}

NTSTATUS hook_install_batch(hook_spec *specs, size_t count, char *why, size_t why_size)
{
    message msg = { why, why_size, 0 };
    size_t used_before[HOOK_MAX_BLOCKS];
    NTSTATUS status = HOOK_SUCCESS;

    message_put(&msg, "");
    if (count == 0)
        return HOOK_SUCCESS;
    if (!specs || count > HOOK_MAX_BATCH) {
        message_put(&msg, !specs ? "no hook specs" : "too many hooks in one batch");
        return HOOK_INVALID_PARAMETER;
    }

    lock_engine();
    g_code_start = g_code_end = NULL;   /* regions may have changed since the last batch */
    for (size_t i = 0; i < HOOK_MAX_BLOCKS; i++)
        used_before[i] = g_blocks[i].used;
    for (size_t i = 0; status >= 0 && i < count; i++)
        status = prepare_hook(&specs[i], i, &msg);
    if (status >= 0)
        status = check_overlaps(specs, count, &msg);
    close_blocks();   /* trampolines written: RX again before anything runs them */
    if (status >= 0)
        status = commit_batch(specs, count, &msg);
    if (status >= 0) {
        g_stats.batches++;
        g_stats.hooks += (unsigned long)count;
        msg.len = 0;
        message_put(&msg, "");
    } else {
        /* nothing was patched: give the carved slots back */
        for (size_t i = 0; i < HOOK_MAX_BLOCKS; i++)
            g_blocks[i].used = used_before[i];
    }
    unlock_engine();
    return status;
}

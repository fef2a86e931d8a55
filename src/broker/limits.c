/* limits.c - the box's CPU, memory and I/O limits, held and enforced by
 * the broker (issue 12), and the numbers `fvm stats` shows.
 *
 * The limits live in box.ini (common/boxlimits.h). The broker reads them at
 * start and again whenever box.ini changes, so `fvm set` works on a running
 * box. It also sets the real Windows job limits (job and process memory, CPU
 * rate, I/O rate) so that they hold on Windows; Wine accepts and ignores
 * them (docs/design.md), so FVM enforces the CPU and memory limits itself:
 *
 * CPU: a token bucket of CPU time, filled at the allowed share of one CPU
 * (cpu=25%: 250 ms of CPU per second of wall time) and drained by what the
 * box's processes used, measured as the sum of their threads' times
 * (GetThreadTimes: Wine reads it from /proc for another process's thread;
 * process times and the job's accounting read 0 for other processes on
 * Wine). When the bucket is empty every process of the box is suspended
 * (NtSuspendProcess) until it has filled again, so the average over any
 * second or more is the limit, however many processes and cores the box
 * has. An overshoot within one tick is paid back, since the bucket goes
 * into debt. A box without a cpu limit is only measured (twice a second,
 * for fvm stats), never suspended.
 *
 * Memory: the broker is the authority. A boxed process asks before it
 * commits memory beyond its lease (runtime/memquota.c); the broker keeps
 * each process's granted bytes, by the pipe's client pid, and refuses a
 * grant that would take the box past `memory` or the process past
 * `process-memory`: the process's allocation then fails with
 * STATUS_COMMITMENT_LIMIT, as a job's memory limit makes it fail on
 * Windows. A process's grants are forgotten when it ends. No boxed process
 * can write a limit or a count; the only thing it shares is a read-only
 * hint that says whether to ask at all (in the published section, publish.c).
 *
 * I/O: the broker keeps the box's token buckets (core/iobucket.h): bytes
 * and ops, for reads and for writes. A boxed process takes what its file
 * reads and writes need from a lease and asks for more when it is short
 * (runtime/ioquota.c); the broker takes it from the buckets and answers how
 * long the process must wait, so every process of the box draws on one
 * budget. A process can only take, never add.
 *
 * Quota hits are audited (type process, op "quota"): the first refusal of
 * memory per process, the first throttle per process, I/O waits at most one
 * record per process and limit every 10 s (with the count since the last),
 * and a limit lowered below what the box uses now. */
#include "broker/broker.h"

#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <winternl.h>

#include "common/boxcfg.h"
#include "common/boxlimits.h"
#include "common/brokerproto.h"
#include "core/iobucket.h"
#include "core/policy.h"

#ifndef STATUS_COMMITMENT_LIMIT
#define STATUS_COMMITMENT_LIMIT ((NTSTATUS)0xC000012DL)
#endif

NTSTATUS NTAPI NtSuspendProcess(HANDLE process);
NTSTATUS NTAPI NtResumeProcess(HANDLE process);

#define MAX_MEMBERS 512
#define MAX_THREADS 2048
#define TICK_LIMITED_MS 30      /* measuring tick while a cpu limit is on */
#define TICK_IDLE_MS 500        /* ... and without one (fvm stats only) */
#define BURST_MS 100            /* the most CPU time the bucket holds, at 100% */
#define LEASE_MAX (4ull << 20)  /* the most a memory grant adds beyond the need */
#define IO_AUDIT_EVERY_US (10ull * 1000000)   /* one I/O wait record per process and limit */

typedef struct member {
    uint32_t pid;
    HANDLE handle;
    BOOL suspended;
    BOOL cpu_audited, memory_audited;
    BOOL present;             /* in the latest list */
    uint64_t granted;         /* memory bytes granted and not given back */
    uint64_t cpu;             /* 100 ns units used, as measured */
    uint64_t io_audit_us[2];  /* last I/O wait record, by limit (bandwidth, ops); 0: none */
    uint64_t io_waits[2];     /* I/O waits since that record */
} member;

typedef struct seen_thread {
    DWORD tid, pid;
    HANDLE handle;
    uint64_t cpu;             /* its user + kernel time at the last look */
    BOOL present;
} seen_thread;

static CRITICAL_SECTION g_lock;
static wchar_t g_ini[FVM_PATH_MAX];
static HANDLE g_job;
static box_limits g_limits;
static FILETIME g_ini_time;
static fvm_limits_hint *g_hint;
static member g_members[MAX_MEMBERS];
static uint32_t g_member_count;
static seen_thread g_threads[MAX_THREADS];
static uint32_t g_thread_count;
static int64_t g_budget;           /* CPU bucket, 100 ns units; negative: debt */
static BOOL g_throttled;
static uint64_t g_throttled_ms, g_cpu_total, g_memory_refusals;
static double g_cpu_percent;       /* of one CPU, smoothed over about a second */
static volatile LONG g_stopping;
static io_limiter g_io;                /* the box's I/O buckets, under g_lock */
static uint64_t g_io_taken[2][2];      /* [read, write][bytes, ops] taken since start */
static uint64_t g_io_seen[2][2];       /* ... at the last stats tick */
static double g_io_rate[2][2];         /* per second, smoothed over about a second */
static uint64_t g_io_waits, g_io_wait_us;
static fvm_io_tally *g_tally;          /* what processes counted while no I/O limit was on */

/* Bytes (k 0) or ops (k 1) read (d 0) or written (d 1) since the start:
 * the broker's own count of a limited box's leases, plus what processes
 * tallied while no limit was on. */
static uint64_t io_total(int d, int k)
{
    uint64_t tallied = 0;
    if (g_tally) {
        LONG64 v = k == 0 ? g_tally->bytes[d] : g_tally->ops[d];
        tallied = v > 0 ? (uint64_t)v : 0;
    }
    return g_io_taken[d][k] + tallied;
}

static uint64_t now_100ns(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (uint64_t)((double)c.QuadPart * 1e7 / (double)f.QuadPart);
}

static void audit_quota(uint32_t pid, HANDLE process, const char *decision, const char *what)
{
    char image[FVM_PATH_MAX * 3] = "";
    wchar_t wimage[FVM_PATH_MAX];
    DWORD n = FVM_PATH_MAX;
    if (process && QueryFullProcessImageNameW(process, 0, wimage, &n))
        WideCharToMultiByte(CP_UTF8, 0, wimage, -1, image, sizeof image, NULL, NULL);
    brokermsg_audit msg;
    memset(&msg, 0, sizeof msg);
    msg.type = POLICY_TYPE_PROCESS;
    msg.pid = pid;
    msg.op = (brokermsg_text){"quota", 5};
    msg.decision = (brokermsg_text){decision, strlen(decision)};
    msg.rule = (brokermsg_text){"box.ini", 7};
    msg.image = (brokermsg_text){image, strlen(image)};
    msg.name = (brokermsg_text){what, strlen(what)};
    broker_audit_write(&msg);
}

/* ---- the limits: box.ini, the Windows job limits, the hint --------------- */

static uint64_t memory_in_use(void)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < g_member_count; i++)
        total += g_members[i].granted;
    return total;
}

/* The real job limits, for Windows (Wine accepts and ignores them). */
static void set_job_limits(const box_limits *l)
{
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION info;
    memset(&info, 0, sizeof info);
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (l->value[LIMIT_PROCS]) {
        info.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
        info.BasicLimitInformation.ActiveProcessLimit = (DWORD)l->value[LIMIT_PROCS];
    }
    if (l->value[LIMIT_MEMORY]) {
        info.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
        info.JobMemoryLimit = (SIZE_T)l->value[LIMIT_MEMORY];
    }
    if (l->value[LIMIT_PROCESS_MEMORY]) {
        info.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
        info.ProcessMemoryLimit = (SIZE_T)l->value[LIMIT_PROCESS_MEMORY];
    }
    SetInformationJobObject(g_job, JobObjectExtendedLimitInformation, &info, sizeof info);

    /* Windows' CPU rate is a share of the whole machine, in 1/100 %. */
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION rate;
    memset(&rate, 0, sizeof rate);
    if (l->value[LIMIT_CPU]) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        DWORD cpus = si.dwNumberOfProcessors ? si.dwNumberOfProcessors : 1;
        rate.ControlFlags = JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP;
        rate.CpuRate = (DWORD)(l->value[LIMIT_CPU] * 100 / cpus);
        if (!rate.CpuRate)
            rate.CpuRate = 1;
    }
    SetInformationJobObject(g_job, JobObjectCpuRateControlInformation, &rate, sizeof rate);

    /* SetIoRateControlInformationJobObject: Windows 10 and later; Wine has none. */
    typedef struct {
        LONG64 MaxIops, MaxBandwidth, ReservationIops;
        PCWSTR VolumeName;
        ULONG BaseIoSize, ControlFlags;
    } io_rate;
    typedef DWORD(WINAPI * set_io_fn)(HANDLE, io_rate *);
    set_io_fn set_io =
        (set_io_fn)(void *)GetProcAddress(GetModuleHandleW(L"kernel32.dll"), "SetIoRateControlInformationJobObject");
    if (set_io) {
        io_rate io = {(LONG64)l->value[LIMIT_IO_OPS], (LONG64)l->value[LIMIT_IO_BANDWIDTH], 0, NULL, 0,
                      (l->value[LIMIT_IO_OPS] || l->value[LIMIT_IO_BANDWIDTH]) ? 1u : 0u};
        set_io(g_job, &io);
    }
}

/* Reads box.ini if it changed since the last read; applies what changed. */
static void follow_ini(BOOL first)
{
    WIN32_FILE_ATTRIBUTE_DATA attr;
    if (!GetFileAttributesExW(g_ini, GetFileExInfoStandard, &attr))
        return;
    if (!first && !CompareFileTime(&attr.ftLastWriteTime, &g_ini_time))
        return;
    box_limits l;
    char problem[256] = "";
    if (!box_limits_read(g_ini, &l, problem, sizeof problem)) {
        char what[300];
        snprintf(what, sizeof what, "box.ini: %s (that limit is off)", problem);
        audit_quota(0, NULL, "invalid", what);
    }
    EnterCriticalSection(&g_lock);
    g_ini_time = attr.ftLastWriteTime;
    box_limits old = g_limits;
    g_limits = l;
    uint64_t used = memory_in_use();
    if (l.value[LIMIT_CPU] != old.value[LIMIT_CPU])
        g_budget = 0;
    if (first)
        io_limiter_init(&g_io, l.value[LIMIT_IO_BANDWIDTH], l.value[LIMIT_IO_OPS], now_100ns() / 10);
    else
        io_limiter_set(&g_io, l.value[LIMIT_IO_BANDWIDTH], l.value[LIMIT_IO_OPS], now_100ns() / 10);
    LeaveCriticalSection(&g_lock);
    if (!first && l.value[LIMIT_MEMORY] && l.value[LIMIT_MEMORY] != old.value[LIMIT_MEMORY] &&
        used > l.value[LIMIT_MEMORY]) {
        char what[160];
        snprintf(what, sizeof what, "memory %llu bytes: lowered below the %llu the box holds; new commits refused until it frees",
                 (unsigned long long)l.value[LIMIT_MEMORY], (unsigned long long)used);
        audit_quota(0, NULL, "over", what);
    }
    if (!first && l.value[LIMIT_PROCS] != old.value[LIMIT_PROCS])
        broker_procs_set_limit((uint32_t)l.value[LIMIT_PROCS]);
    if (g_hint) {
        g_hint->memory_limited = (l.value[LIMIT_MEMORY] || l.value[LIMIT_PROCESS_MEMORY]) ? 1 : 0;
        g_hint->io_limited = (l.value[LIMIT_IO_BANDWIDTH] || l.value[LIMIT_IO_OPS]) ? 1 : 0;
        InterlockedIncrement(&g_hint->generation);
    }
    set_job_limits(&l);
}

/* ---- members ---------------------------------------------------------------- */

/* The member for pid, added if new; NULL when the table is full or the
 * process cannot be opened. Under g_lock. */
static member *member_for(uint32_t pid)
{
    for (uint32_t i = 0; i < g_member_count; i++)
        if (g_members[i].pid == pid)
            return &g_members[i];
    if (g_member_count >= MAX_MEMBERS)
        return NULL;
    HANDLE h = OpenProcess(PROCESS_SUSPEND_RESUME | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, pid);
    if (!h)
        return NULL;
    member *m = &g_members[g_member_count++];
    memset(m, 0, sizeof *m);
    m->pid = pid;
    m->handle = h;
    return m;
}

/* Syncs the table with the box's live processes; drops the ended ones (and
 * with them their memory grants). A process that asked for memory before
 * the job's news of it arrived stays until it ends. Under g_lock. */
static void members_refresh(void)
{
    static uint32_t pids[MAX_MEMBERS];
    uint32_t n = broker_procs_list(pids, MAX_MEMBERS);
    for (uint32_t i = 0; i < g_member_count; i++)
        g_members[i].present = FALSE;
    for (uint32_t i = 0; i < n; i++) {
        member *m = member_for(pids[i]);
        if (m)
            m->present = TRUE;
    }
    for (uint32_t i = 0; i < g_member_count;) {
        member *m = &g_members[i];
        BOOL ended = WaitForSingleObject(m->handle, 0) == WAIT_OBJECT_0;
        if (ended) {
            CloseHandle(m->handle);
            g_members[i] = g_members[--g_member_count];
            continue;
        }
        i++;
    }
}

/* ---- CPU -------------------------------------------------------------------- */

/* The system's process and thread list (SYSTEM_PROCESS_INFORMATION and its
 * SYSTEM_THREAD_INFORMATION entries, x64 layout): one NtQuerySystemInformation
 * is one request to Wine's server, where a Toolhelp snapshot maps and unmaps
 * its section once per entry (about 150 server requests per tick). */
typedef struct listed_thread {
    LARGE_INTEGER kernel_time, user_time, create_time;
    ULONG wait_time;
    PVOID start_address;
    CLIENT_ID client_id;
    LONG priority, base_priority;
    ULONG context_switches, thread_state, wait_reason;
} listed_thread;

typedef struct listed_process {
    ULONG next_entry_offset;
    ULONG thread_count;
    BYTE unused1[72];
    HANDLE process_id;
    BYTE unused2[168];
    listed_thread threads[1];
} listed_process;

_Static_assert(sizeof(listed_thread) == 80, "SYSTEM_THREAD_INFORMATION is 80 bytes on x64");
_Static_assert(offsetof(listed_process, process_id) == 80, "UniqueProcessId at 80");
_Static_assert(offsetof(listed_process, threads) == 256, "Threads at 256");

static void *g_list;          /* the last list's buffer, kept between ticks */
static ULONG g_list_size;

static const listed_process *system_process_list(void)
{
    for (int tries = 0; tries < 4; tries++) {
        ULONG needed = 0;
        if (!g_list) {
            g_list_size = g_list_size ? g_list_size : 256 * 1024;
            if (!(g_list = HeapAlloc(GetProcessHeap(), 0, g_list_size)))
                return NULL;
        }
        NTSTATUS st = NtQuerySystemInformation(SystemProcessInformation, g_list, g_list_size, &needed);
        if (st >= 0)
            return g_list;
        if (st != (NTSTATUS)0xC0000004L)   /* STATUS_INFO_LENGTH_MISMATCH */
            return NULL;
        HeapFree(GetProcessHeap(), 0, g_list);
        g_list = NULL;
        g_list_size = (needed > g_list_size ? needed : g_list_size) * 2;
    }
    return NULL;
}

/* CPU time the box's threads used since the last call, 100 ns units.
 * Under g_lock. */
static uint64_t cpu_used_since_last(void)
{
    uint64_t used = 0;
    const listed_process *p = system_process_list();
    if (!p)
        return 0;
    for (uint32_t i = 0; i < g_thread_count; i++)
        g_threads[i].present = FALSE;
    for (;; p = (const listed_process *)((const BYTE *)p + p->next_entry_offset)) {
        DWORD pid = (DWORD)(ULONG_PTR)p->process_id;
        member *m = NULL;
        for (uint32_t i = 0; i < g_member_count && !m; i++)
            if (g_members[i].pid == pid)
                m = &g_members[i];
        for (ULONG k = 0; m && k < p->thread_count; k++) {
            DWORD tid = (DWORD)(ULONG_PTR)p->threads[k].client_id.UniqueThread;
            seen_thread *t = NULL;
            for (uint32_t i = 0; i < g_thread_count && !t; i++)
                if (g_threads[i].tid == tid && g_threads[i].pid == pid)
                    t = &g_threads[i];
            if (!t) {
                if (g_thread_count >= MAX_THREADS)
                    continue;
                HANDLE h = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, tid);
                if (!h)
                    continue;
                t = &g_threads[g_thread_count++];
                t->tid = tid;
                t->pid = pid;
                t->handle = h;
                t->cpu = 0;   /* new: all its time so far is new to the box */
            }
            t->present = TRUE;
            FILETIME c, e, kt, ut;
            if (GetThreadTimes(t->handle, &c, &e, &kt, &ut)) {
                uint64_t now = (((uint64_t)kt.dwHighDateTime << 32) | kt.dwLowDateTime) +
                               (((uint64_t)ut.dwHighDateTime << 32) | ut.dwLowDateTime);
                if (now > t->cpu) {
                    used += now - t->cpu;
                    m->cpu += now - t->cpu;
                }
                t->cpu = now;
            }
        }
        if (!p->next_entry_offset)
            break;
    }
    for (uint32_t i = 0; i < g_thread_count;) {
        if (!g_threads[i].present) {
            CloseHandle(g_threads[i].handle);
            g_threads[i] = g_threads[--g_thread_count];
            continue;
        }
        i++;
    }
    return used;
}

/* Suspends (or resumes) every member to match g_throttled. Under g_lock. */
static void apply_throttle(void)
{
    for (uint32_t i = 0; i < g_member_count; i++) {
        member *m = &g_members[i];
        if (g_throttled && !m->suspended) {
            if (NtSuspendProcess(m->handle) >= 0)
                m->suspended = TRUE;
            if (!m->cpu_audited) {
                char what[64];
                m->cpu_audited = TRUE;
                snprintf(what, sizeof what, "cpu %llu%%: throttled", (unsigned long long)g_limits.value[LIMIT_CPU]);
                audit_quota(m->pid, m->handle, "throttle", what);
            }
        } else if (!g_throttled && m->suspended) {
            NtResumeProcess(m->handle);
            m->suspended = FALSE;
        }
    }
}

static DWORD WINAPI cpu_thread(void *arg)
{
    uint64_t last = now_100ns(), last_ini_check = last;
    while (!g_stopping) {
        EnterCriticalSection(&g_lock);
        uint64_t cpu_limit = g_limits.value[LIMIT_CPU];
        DWORD sleep_ms = cpu_limit ? TICK_LIMITED_MS : TICK_IDLE_MS;
        if (cpu_limit && g_throttled && g_budget < 0) {
            /* Sleep until the debt is paid, at most a few ticks. */
            uint64_t ms = (uint64_t)(-g_budget) * 100 / cpu_limit / 10000;
            sleep_ms = (DWORD)(ms < 5 ? 5 : ms > 100 ? 100 : ms);
        }
        LeaveCriticalSection(&g_lock);
        Sleep(sleep_ms);
        if (g_stopping)
            break;

        uint64_t now = now_100ns();
        if (now - last_ini_check >= 2500000) {   /* box.ini: every 250 ms */
            last_ini_check = now;
            follow_ini(FALSE);
        }
        EnterCriticalSection(&g_lock);
        members_refresh();
        uint64_t used = cpu_used_since_last();
        uint64_t elapsed = now - last;
        last = now;
        g_cpu_total += used;
        if (elapsed) {
            double sample = 100.0 * (double)used / (double)elapsed;
            double weight = (double)elapsed / 1e7;   /* about a one-second average */
            if (weight > 1)
                weight = 1;
            g_cpu_percent += (sample - g_cpu_percent) * weight;
            for (int d = 0; d < 2; d++)
                for (int k = 0; k < 2; k++) {
                    uint64_t total = io_total(d, k);
                    double rate = total >= g_io_seen[d][k] ? (double)(total - g_io_seen[d][k]) * 1e7 / (double)elapsed
                                                           : 0;
                    g_io_seen[d][k] = total;
                    g_io_rate[d][k] += (rate - g_io_rate[d][k]) * weight;
                }
        }
        cpu_limit = g_limits.value[LIMIT_CPU];
        if (cpu_limit) {
            int64_t burst = (int64_t)(BURST_MS * 10000ull * cpu_limit / 100);
            g_budget += (int64_t)(elapsed * cpu_limit / 100);
            g_budget -= (int64_t)used;
            if (g_budget > burst)
                g_budget = burst;
            if (g_throttled)
                g_throttled_ms += elapsed / 10000;
            g_throttled = g_budget < 0;
        } else {
            g_throttled = FALSE;
        }
        apply_throttle();
        LeaveCriticalSection(&g_lock);
    }
    return 0;
}

/* ---- memory ----------------------------------------------------------------- */

void broker_limits_memory(uint32_t pid, const void *request, size_t len, void *reply_buf, size_t *reply_len)
{
    fvm_memory_reply *reply = reply_buf;
    fvm_memory_request req;
    memset(reply, 0, sizeof *reply);
    reply->version = FVM_BROKER_PROTO_VERSION;
    reply->status = (uint32_t)STATUS_COMMITMENT_LIMIT;
    *reply_len = sizeof *reply;
    if (len != sizeof req || !pid)
        return;
    memcpy(&req, request, sizeof req);
    if (req.need > (1ull << 50) || req.lease > (1ull << 50))
        return;
    char what[200] = "";
    HANDLE audit_process = NULL;
    EnterCriticalSection(&g_lock);
    member *m = member_for(pid);
    if (m) {
        m->granted -= req.give_back < m->granted ? req.give_back : m->granted;
        uint64_t box_limit = g_limits.value[LIMIT_MEMORY], process_limit = g_limits.value[LIMIT_PROCESS_MEMORY];
        uint64_t used = memory_in_use();
        uint64_t room = UINT64_MAX;
        if (box_limit)
            room = used < box_limit ? box_limit - used : 0;
        if (process_limit) {
            uint64_t own = m->granted < process_limit ? process_limit - m->granted : 0;
            if (own < room)
                room = own;
        }
        if (req.need <= room) {
            uint64_t extra = req.lease < LEASE_MAX ? req.lease : LEASE_MAX;
            if (room != UINT64_MAX && extra > (room - req.need) / 4)
                extra = (room - req.need) / 4;
            reply->granted = req.need + extra;
            reply->status = 0;
            m->granted += reply->granted;
        } else if (req.need) {
            g_memory_refusals++;
            if (!m->memory_audited) {
                m->memory_audited = TRUE;
                audit_process = m->handle;
                BOOL own_limit = process_limit && m->granted + req.need > process_limit;
                snprintf(what, sizeof what, "%s %llu bytes: refused %llu more (process holds %llu, box %llu)",
                         own_limit ? "process-memory" : "memory",
                         (unsigned long long)(own_limit ? process_limit : box_limit), (unsigned long long)req.need,
                         (unsigned long long)m->granted, (unsigned long long)used);
            }
        } else {
            reply->status = 0;   /* only giving back */
        }
    }
    LeaveCriticalSection(&g_lock);
    if (what[0])
        audit_quota(pid, audit_process, "deny", what);
}

/* ---- I/O -------------------------------------------------------------------- */

void broker_limits_io(uint32_t pid, const void *request, size_t len, void *reply_buf, size_t *reply_len)
{
    fvm_io_reply *reply = reply_buf;
    fvm_io_request req;
    memset(reply, 0, sizeof *reply);
    reply->version = FVM_BROKER_PROTO_VERSION;
    *reply_len = sizeof *reply;
    if (len != sizeof req || !pid) {
        reply->status = (uint32_t)STATUS_INVALID_PARAMETER;
        return;
    }
    memcpy(&req, request, sizeof req);
    io_direction dir = req.direction ? IO_WRITE : IO_READ;
    char what[200] = "";
    HANDLE audit_process = NULL;
    EnterCriticalSection(&g_lock);
    uint64_t now_us = now_100ns() / 10;
    int which = 0;
    uint64_t bytes = req.bytes < IO_BUCKET_TAKE_MAX ? req.bytes : IO_BUCKET_TAKE_MAX;
    uint64_t ops = req.ops < IO_BUCKET_TAKE_MAX ? req.ops : IO_BUCKET_TAKE_MAX;
    /* The lease: about 1/32 s of the rate (at least 64 KiB, one op); an
     * unlimited dimension gets one that does not run out. */
    const io_bucket *bb = &g_io.bytes[dir], *ob = &g_io.ops[dir];
    uint64_t lease_bytes = bb->rate ? io_bucket_lease(bb, 64 << 10) : IO_BUCKET_TAKE_MAX;
    uint64_t lease_ops = ob->rate ? io_bucket_lease(ob, 1) : IO_BUCKET_TAKE_MAX;
    uint64_t wait = io_limiter_take(&g_io, dir, bytes + (bb->rate ? lease_bytes : 0), ops + (ob->rate ? lease_ops : 0),
                                    now_us, &which);
    /* Counts for fvm stats: what the process says it moved (its word, for
     * display only). */
    g_io_taken[dir][0] += req.moved_bytes < IO_BUCKET_TAKE_MAX ? req.moved_bytes : 0;
    g_io_taken[dir][1] += req.moved_ops < IO_BUCKET_TAKE_MAX ? req.moved_ops : 0;
    reply->wait_us = wait;
    reply->granted_bytes = bytes + lease_bytes;
    reply->granted_ops = ops + lease_ops;
    reply->which = (uint32_t)which;
    if (which) {
        g_io_waits++;
        g_io_wait_us += wait;
        member *m = member_for(pid);
        if (m) {
            int k = which - 1;
            m->io_waits[k]++;
            if (!m->io_audit_us[k] || now_us - m->io_audit_us[k] >= IO_AUDIT_EVERY_US) {
                uint64_t limit = k == 0 ? g_limits.value[LIMIT_IO_BANDWIDTH] : g_limits.value[LIMIT_IO_OPS];
                char limit_text[32];
                limit_format(k == 0 ? LIMIT_IO_BANDWIDTH : LIMIT_IO_OPS, limit, limit_text, sizeof limit_text);
                snprintf(what, sizeof what, "%s %s: %s waited %llu ms (%llu waits since the last record)",
                         k == 0 ? "io-bandwidth" : "io-ops", limit_text, dir == IO_WRITE ? "write" : "read",
                         (unsigned long long)(wait / 1000), (unsigned long long)m->io_waits[k]);
                m->io_audit_us[k] = now_us;
                m->io_waits[k] = 0;
                audit_process = m->handle;
            }
        }
    }
    LeaveCriticalSection(&g_lock);
    if (what[0])
        audit_quota(pid, audit_process, "throttle", what);
}

/* ---- fvm stats -------------------------------------------------------------- */

size_t broker_limits_stats(char *out, size_t cap)
{
    EnterCriticalSection(&g_lock);
    int n = snprintf(out, cap,
                     "{\"cpu_percent\":%.1f,\"cpu_seconds\":%.2f,\"cpu_limit\":%llu,\"throttled\":%s,"
                     "\"throttled_ms\":%llu,\"processes\":%u,\"procs_limit\":%llu,\"memory_bytes\":%llu,"
                     "\"memory_limit\":%llu,\"process_memory_limit\":%llu,\"memory_refusals\":%llu,"
                     "\"io_bandwidth_limit\":%llu,\"io_ops_limit\":%llu,\"io_measured\":%s,"
                     "\"io_read_bytes_per_s\":%.0f,\"io_write_bytes_per_s\":%.0f,\"io_read_ops_per_s\":%.1f,"
                     "\"io_write_ops_per_s\":%.1f,\"io_read_bytes\":%llu,\"io_write_bytes\":%llu,"
                     "\"io_waits\":%llu,\"io_wait_ms\":%llu}",
                     g_cpu_percent, (double)g_cpu_total / 1e7, (unsigned long long)g_limits.value[LIMIT_CPU],
                     g_throttled ? "true" : "false", (unsigned long long)g_throttled_ms, g_member_count,
                     (unsigned long long)g_limits.value[LIMIT_PROCS], (unsigned long long)memory_in_use(),
                     (unsigned long long)g_limits.value[LIMIT_MEMORY],
                     (unsigned long long)g_limits.value[LIMIT_PROCESS_MEMORY], (unsigned long long)g_memory_refusals,
                     (unsigned long long)g_limits.value[LIMIT_IO_BANDWIDTH],
                     (unsigned long long)g_limits.value[LIMIT_IO_OPS],
                     (g_tally || g_limits.value[LIMIT_IO_BANDWIDTH] || g_limits.value[LIMIT_IO_OPS]) ? "true" : "false",
                     g_io_rate[0][0], g_io_rate[1][0], g_io_rate[0][1], g_io_rate[1][1],
                     (unsigned long long)io_total(0, 0), (unsigned long long)io_total(1, 0),
                     (unsigned long long)g_io_waits, (unsigned long long)(g_io_wait_us / 1000));
    LeaveCriticalSection(&g_lock);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- start and stop ----------------------------------------------------------- */

void broker_limits_start(const wchar_t *box_path, HANDLE job)
{
    InitializeCriticalSection(&g_lock);
    g_job = job;
    _snwprintf(g_ini, FVM_PATH_MAX, L"%ls\\box.ini", box_path);
    wchar_t name[FVM_OBJ_NAME_MAX];
    g_hint = broker_published_hint();   /* publish.c: in the section every process maps */
    fvm_box_object_name(box_path, FVM_OBJ_IO_TALLY, name, FVM_OBJ_NAME_MAX);
    HANDLE section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, sizeof(fvm_io_tally), name);
    g_tally = section ? MapViewOfFile(section, FILE_MAP_WRITE, 0, 0, sizeof *g_tally) : NULL;
    follow_ini(TRUE);
    HANDLE thread = CreateThread(NULL, 0, cpu_thread, NULL, 0, NULL);
    if (thread)
        CloseHandle(thread);
}

void broker_limits_stop(void)
{
    InterlockedExchange(&g_stopping, 1);
    EnterCriticalSection(&g_lock);
    g_throttled = FALSE;
    apply_throttle();
    LeaveCriticalSection(&g_lock);
}

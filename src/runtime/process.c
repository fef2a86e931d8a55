/* process.c - processes and threads as objects: what a boxed program can see
 * and touch of other processes.
 *
 * The idea: the box's job object is the membership list. Every process the
 * box starts is in the job (proc.c makes sure), the broker and fvm.exe are
 * not, host processes and other boxes' processes are not. So every way a
 * boxed program reaches another process goes through one question, "is the
 * process behind this handle in the box's job?" (NtIsProcessInJob, one
 * server call):
 *   - opening by id (NtOpenProcess, NtOpenThread) and walking
 *     (NtGetNextProcess/Thread): an outside process does not exist for the
 *     box (STATUS_INVALID_CID, what Windows returns for an id that is not
 *     there) unless a [process] rule opens it (`open`: full access; `read`:
 *     query and wait only); the FVM programs themselves (broker, fvm.exe:
 *     every image in FVM's folder) are never opened;
 *   - listings (NtQuerySystemInformation process and handle classes, and
 *     through them Toolhelp, EnumProcesses, WTSEnumerateProcesses) keep only
 *     the box's processes;
 *   - every cross-process action takes the handle it acts on, however the
 *     program got it (opened, inherited, duplicated in by someone else), and
 *     asks again: memory read/write/protect/allocate/free/query/map,
 *     remote threads, APCs, suspend/resume, terminate, get/set context,
 *     debug attach, set information, and NtDuplicateObject in or out of
 *     another process. A handle to an outside process gets
 *     STATUS_ACCESS_DENIED, as on Windows for a handle without the right.
 * Every refused cross-boundary attempt is audited, whatever the policy says.
 *
 * Starting a program (process_start_check, called by proc.c before the real
 * NtCreateUserProcess): the [process] rules by image path and by SHA-256 of
 * the image (core/policy_process.h), and the box's process-count quota, kept
 * by the broker (one request on its control pipe, answered under its lock,
 * so concurrent starts cannot both take the last slot). */
#include "runtime/runtime.h"
#include "runtime/guard.h"
#include "runtime/ipc.h"

#include "common/brokerproto.h"
#include "core/policy_process.h"
#include "core/sha256.h"

#ifndef STATUS_PROCESS_IN_JOB
#define STATUS_PROCESS_IN_JOB ((NTSTATUS)0x00000123L)
#endif
#define CURRENT_PROCESS ((HANDLE)(LONG_PTR)-1)
#define CURRENT_THREAD  ((HANDLE)(LONG_PTR)-2)

/* Access a `read` rule grants on an outside process. */
#define READ_ONLY_PROCESS_ACCESS (PROCESS_QUERY_INFORMATION | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | \
                                  READ_CONTROL)
#define READ_ONLY_THREAD_ACCESS (THREAD_QUERY_INFORMATION | THREAD_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | \
                                 READ_CONTROL)

/* What NtIsProcessInJob needs of a process handle: Windows asks for the
 * limited query right, Wine for the full one. */
#define MEMBERSHIP_ACCESS (PROCESS_QUERY_INFORMATION | PROCESS_QUERY_LIMITED_INFORMATION)

enum { INFO_CLASS_PROCESS_BASIC = 0, INFO_CLASS_IMAGE_WIN32 = 43 };
enum {
    SYS_PROCESS = 5, SYS_HANDLE = 16, SYS_SESSION_PROCESS = 53, SYS_EXTENDED_PROCESS = 57,
    SYS_EXTENDED_HANDLE = 64, SYS_PROCESS_ID = 88, SYS_FULL_PROCESS = 148
};

typedef struct thread_basic_info {
    NTSTATUS exit_status;
    void *teb;
    CLIENT_ID client;
    ULONG_PTR affinity;
    LONG priority, base_priority;
} thread_basic_info;

typedef struct process_basic_info {
    NTSTATUS exit_status;
    void *peb;
    ULONG_PTR affinity;
    LONG base_priority;
    ULONG_PTR pid, parent_pid;
} process_basic_info;

NTSTATUS NTAPI NtIsProcessInJob(HANDLE process, HANDLE job);
NTSTATUS NTAPI NtQueryInformationProcess(HANDLE, PROCESSINFOCLASS, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtQueryInformationThread(HANDLE, THREADINFOCLASS, void *, ULONG, ULONG *);
NTSTATUS NTAPI NtDuplicateObject(HANDLE, HANDLE, HANDLE, HANDLE *, ACCESS_MASK, ULONG, ULONG);
NTSTATUS NTAPI NtSetSecurityObject(HANDLE, SECURITY_INFORMATION, PSECURITY_DESCRIPTOR);
NTSTATUS NTAPI RtlInitializeSid(PSID, PSID_IDENTIFIER_AUTHORITY, UCHAR);
PULONG NTAPI RtlSubAuthoritySid(PSID, ULONG);
NTSTATUS NTAPI RtlCreateAcl(PACL, ULONG, ULONG);
NTSTATUS NTAPI RtlAddAccessAllowedAce(PACL, ULONG, ACCESS_MASK, PSID);
NTSTATUS NTAPI RtlCreateSecurityDescriptor(PSECURITY_DESCRIPTOR, ULONG);
NTSTATUS NTAPI RtlSetDaclSecurityDescriptor(PSECURITY_DESCRIPTOR, BOOLEAN, PACL, BOOLEAN);
NTSTATUS NTAPI RtlSetOwnerSecurityDescriptor(PSECURITY_DESCRIPTOR, PSID, BOOLEAN);

/* ---- the real functions ---- */

typedef NTSTATUS (NTAPI *open_fn)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, CLIENT_ID *);
typedef NTSTATUS (NTAPI *next_process_fn)(HANDLE, ACCESS_MASK, ULONG, ULONG, HANDLE *);
typedef NTSTATUS (NTAPI *next_thread_fn)(HANDLE, HANDLE, ACCESS_MASK, ULONG, ULONG, HANDLE *);
typedef NTSTATUS (NTAPI *query_system_fn)(ULONG, void *, ULONG, ULONG *);
typedef NTSTATUS (NTAPI *vm_rw_fn)(HANDLE, void *, void *, SIZE_T, SIZE_T *);
typedef NTSTATUS (NTAPI *vm_protect_fn)(HANDLE, void **, SIZE_T *, ULONG, ULONG *);
typedef NTSTATUS (NTAPI *vm_alloc_fn)(HANDLE, void **, ULONG_PTR, SIZE_T *, ULONG, ULONG);
typedef NTSTATUS (NTAPI *vm_alloc_ex_fn)(HANDLE, void **, SIZE_T *, ULONG, ULONG, void *, ULONG);
typedef NTSTATUS (NTAPI *vm_free_fn)(HANDLE, void **, SIZE_T *, ULONG);
typedef NTSTATUS (NTAPI *vm_query_fn)(HANDLE, void *, ULONG, void *, SIZE_T, SIZE_T *);
typedef NTSTATUS (NTAPI *map_view_fn)(HANDLE, HANDLE, void **, ULONG_PTR, SIZE_T, LARGE_INTEGER *, SIZE_T *, ULONG,
                                      ULONG, ULONG);
typedef NTSTATUS (NTAPI *map_view_ex_fn)(HANDLE, HANDLE, void **, LARGE_INTEGER *, SIZE_T *, ULONG, ULONG, void *,
                                         ULONG);
typedef NTSTATUS (NTAPI *unmap_view_fn)(HANDLE, void *);
typedef NTSTATUS (NTAPI *unmap_view_ex_fn)(HANDLE, void *, ULONG);
typedef NTSTATUS (NTAPI *create_thread_ex_fn)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, HANDLE, void *, void *,
                                              ULONG, SIZE_T, SIZE_T, SIZE_T, void *);
typedef NTSTATUS (NTAPI *queue_apc_fn)(HANDLE, void *, ULONG_PTR, ULONG_PTR, ULONG_PTR);
typedef NTSTATUS (NTAPI *queue_apc_ex_fn)(HANDLE, HANDLE, void *, ULONG_PTR, ULONG_PTR, ULONG_PTR);
typedef NTSTATUS (NTAPI *handle_only_fn)(HANDLE);
typedef NTSTATUS (NTAPI *handle_count_fn)(HANDLE, ULONG *);
typedef NTSTATUS (NTAPI *handle_status_fn)(HANDLE, NTSTATUS);
typedef NTSTATUS (NTAPI *context_fn)(HANDLE, CONTEXT *);
typedef NTSTATUS (NTAPI *debug_fn)(HANDLE, HANDLE);
typedef NTSTATUS (NTAPI *set_info_fn)(HANDLE, ULONG, void *, ULONG);

static open_fn real_NtOpenProcess, real_NtOpenThread;
static next_process_fn real_NtGetNextProcess;
static next_thread_fn real_NtGetNextThread;
static query_system_fn real_NtQuerySystemInformation;
static vm_rw_fn real_NtReadVirtualMemory, real_NtWriteVirtualMemory;
static vm_protect_fn real_NtProtectVirtualMemory;
static vm_alloc_fn real_NtAllocateVirtualMemory;
static vm_alloc_ex_fn real_NtAllocateVirtualMemoryEx;
static vm_free_fn real_NtFreeVirtualMemory;
static vm_query_fn real_NtQueryVirtualMemory;
static map_view_fn real_NtMapViewOfSection;
static map_view_ex_fn real_NtMapViewOfSectionEx;
static unmap_view_fn real_NtUnmapViewOfSection;
static unmap_view_ex_fn real_NtUnmapViewOfSectionEx;
static create_thread_ex_fn real_NtCreateThreadEx;
static queue_apc_fn real_NtQueueApcThread;
static queue_apc_ex_fn real_NtQueueApcThreadEx;
static handle_only_fn real_NtSuspendProcess, real_NtResumeProcess;
static handle_count_fn real_NtSuspendThread, real_NtResumeThread, real_NtAlertResumeThread;
static handle_status_fn real_NtTerminateProcess, real_NtTerminateThread;
static context_fn real_NtGetContextThread, real_NtSetContextThread;
static debug_fn real_NtDebugActiveProcess;
static set_info_fn real_NtSetInformationProcess, real_NtSetInformationThread;

/* ---- membership ---- */

/* The box's job, opened once for every module (boxjob.c). OpenJobObject
 * sets LastError; hooks of Win32-level callers must not. */
static HANDLE box_job_handle(void)
{
    if (g_fvm.job)
        return g_fvm.job;
    DWORD saved = GetLastError();
    HANDLE job = runtime_box_job();
    SetLastError(saved);
    return job;
}

/* STATUS_SUCCESS when the process behind the handle is in the box; else
 * the status to refuse with (an invalid handle stays an invalid handle). */
static NTSTATUS process_membership(HANDLE process)
{
    if (process == CURRENT_PROCESS)
        return STATUS_SUCCESS;
    HANDLE job = box_job_handle();
    if (!job)
        return STATUS_ACCESS_DENIED;   /* no job, no way to tell: fail closed */
    NTSTATUS st = NtIsProcessInJob(process, job);
    if (st == STATUS_PROCESS_IN_JOB)
        return STATUS_SUCCESS;
    if (st == STATUS_INVALID_HANDLE || st == STATUS_OBJECT_TYPE_MISMATCH)
        return st;
    if (st == STATUS_ACCESS_DENIED) {
        /* A handle without query rights (Windows enforces them): ask through
         * a copy that has them. */
        HANDLE query;
        if (NtDuplicateObject(CURRENT_PROCESS, process, CURRENT_PROCESS, &query, MEMBERSHIP_ACCESS, 0, 0) >= 0) {
            st = NtIsProcessInJob(query, job);
            NtClose(query);
            if (st == STATUS_PROCESS_IN_JOB)
                return STATUS_SUCCESS;
        }
    }
    return STATUS_ACCESS_DENIED;
}

static NTSTATUS pid_membership(ULONG_PTR pid)
{
    if (pid == GetCurrentProcessId())
        return STATUS_SUCCESS;
    if (!pid)
        return STATUS_INVALID_CID;
    OBJECT_ATTRIBUTES oa = {sizeof oa};
    CLIENT_ID cid = {(HANDLE)pid, 0};
    HANDLE process;
    NTSTATUS st = real_NtOpenProcess(&process, MEMBERSHIP_ACCESS, &oa, &cid);
    if (st == STATUS_ACCESS_DENIED)
        st = real_NtOpenProcess(&process, PROCESS_QUERY_LIMITED_INFORMATION, &oa, &cid);
    if (st < 0)
        return STATUS_INVALID_CID;
    st = process_membership(process);
    NtClose(process);
    return st;
}

/* The process a thread handle belongs to; 0 when it cannot be told. */
static ULONG_PTR thread_pid(HANDLE thread, NTSTATUS *why)
{
    thread_basic_info tbi;
    NTSTATUS st = NtQueryInformationThread(thread, ThreadBasicInformation, &tbi, sizeof tbi, NULL);
    if (st < 0) {
        *why = st == STATUS_INVALID_HANDLE || st == STATUS_OBJECT_TYPE_MISMATCH ? st : STATUS_ACCESS_DENIED;
        return 0;
    }
    return (ULONG_PTR)tbi.client.UniqueProcess;
}

static NTSTATUS thread_membership(HANDLE thread, ULONG_PTR *pid_out)
{
    *pid_out = 0;
    if (thread == CURRENT_THREAD)
        return STATUS_SUCCESS;
    NTSTATUS why = STATUS_ACCESS_DENIED;
    ULONG_PTR pid = thread_pid(thread, &why);
    if (!pid)
        return why;
    *pid_out = pid;
    NTSTATUS st = pid_membership(pid);
    return st == STATUS_INVALID_CID ? STATUS_ACCESS_DENIED : st;
}

/* ---- the target's identity: for rules and audit records ---- */

/* The image of a process as "\??\C:\dir\x.exe" (the canonical file form the
 * [process] rules are written in); 0 units when it cannot be read. */
static size_t process_image(HANDLE process, uint16_t *out, size_t cap)
{
    struct {
        UNICODE_STRING s;
        wchar_t buf[FVM_PATH_MAX];
    } image;
    if (NtQueryInformationProcess(process, (PROCESSINFOCLASS)INFO_CLASS_IMAGE_WIN32, &image, sizeof image, NULL) < 0 ||
        !image.s.Buffer || (size_t)image.s.Length / 2 + 4 >= cap)
        return 0;
    size_t n = image.s.Length / 2, at = 0;
    if (n >= 2 && image.s.Buffer[1] == L':') {
        static const uint16_t prefix[4] = {'\\', '?', '?', '\\'};
        memcpy(out, prefix, sizeof prefix);
        at = 4;
    }
    memcpy(out + at, image.s.Buffer, n * 2);
    return at + n;
}

static ULONG_PTR process_pid(HANDLE process)
{
    process_basic_info pbi;
    if (NtQueryInformationProcess(process, (PROCESSINFOCLASS)INFO_CLASS_PROCESS_BASIC, &pbi, sizeof pbi, NULL) < 0)
        return 0;
    return pbi.pid;
}

/* Is the image in FVM's own folder (the broker, fvm.exe)? Those are never
 * reachable from a box, whatever the policy says. */
static BOOL image_is_fvm(const uint16_t *image, size_t len)
{
    const wchar_t *dll = g_fvm.config.dll_path;
    size_t dir = fvm_wcslen(dll);
    while (dir > 0 && dll[dir - 1] != L'\\')
        dir--;
    if (len >= 4 && image[0] == '\\' && image[1] == '?' && image[2] == '?' && image[3] == '\\') {
        image += 4;
        len -= 4;
    }
    return dir > 0 && len > dir && !fvm_wcsicmp_n((const wchar_t *)image, dll, dir);
}

/* An always-audited refusal of a cross-boundary attempt. */
static void audit_refusal(const char *op, ULONG_PTR pid, const uint16_t *image, size_t image_len)
{
    uint16_t name[FVM_PATH_MAX + 32];
    size_t n = 0;
    char digits[24];
    int d = 0;
    ULONG_PTR v = pid;
    do {
        digits[d++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && d < 20);
    static const char head[] = "pid ";
    for (const char *c = head; *c; c++)
        name[n++] = (uint16_t)*c;
    while (d > 0)
        name[n++] = (uint16_t)digits[--d];
    if (image_len && image_len < FVM_PATH_MAX) {
        name[n++] = ' ';
        memcpy(name + n, image, image_len * 2);
        n += image_len;
    }
    policy_decision refused;
    memset(&refused, 0, sizeof refused);
    refused.action = POLICY_ACTION_DENY;
    refused.audit = 1;
    refused.is_default = 1;
    refused.rule = POLICY_NO_RULE;
    DWORD saved = GetLastError();
    runtime_audit(POLICY_TYPE_PROCESS, op, &refused, name, n);
    SetLastError(saved);
}

/* The gate of every action on a process handle. */
static NTSTATUS guard_process(HANDLE process, const char *op)
{
    /* FVM's own calls: proc.c injecting into the child it has just created
     * (a member from its creation: children inherit the job). */
    if (process == CURRENT_PROCESS || !g_fvm.active || runtime_bypassed())
        return STATUS_SUCCESS;
    NTSTATUS st = process_membership(process);
    if (st >= 0 || st == STATUS_INVALID_HANDLE || st == STATUS_OBJECT_TYPE_MISMATCH)
        return st;
    /* A child this process created whose boxing failed (proc.c ends it
     * before it ran a single instruction). */
    process_basic_info pbi;
    if (!strcmp(op, "terminate") && NtQueryInformationProcess(process, (PROCESSINFOCLASS)INFO_CLASS_PROCESS_BASIC, &pbi, sizeof pbi,
                                                              NULL) >= 0 && pbi.parent_pid == GetCurrentProcessId())
        return STATUS_SUCCESS;
    /* An outside process the policy opens (`open` rule) may be acted on. */
    uint16_t image[FVM_PATH_MAX];
    size_t len = process_image(process, image, FVM_PATH_MAX);
    policy_decision d;
    if (len && !image_is_fvm(image, len) &&
        runtime_policy_decide(POLICY_TYPE_PROCESS, image, len, &d) == POLICY_ACTION_OPEN)
        return STATUS_SUCCESS;
    audit_refusal(op, process_pid(process), image, len);
    return STATUS_ACCESS_DENIED;
}

/* The first resume of a child this thread has just created and boxed
 * (proc.c): known to be the box's without asking. Only once, and only by
 * the thread that created it. */
static BOOL resuming_own_child(HANDLE thread, const char *op)
{
    fvm_thread *t = fvm_thread_peek();
    if (!t || !t->created_thread)
        return FALSE;
    BOOL own = thread == t->created_thread && !strcmp(op, "resume");
    t->created_thread = NULL;
    return own;
}

static NTSTATUS guard_thread(HANDLE thread, const char *op)
{
    if (thread == CURRENT_THREAD || !g_fvm.active || runtime_bypassed() || resuming_own_child(thread, op))
        return STATUS_SUCCESS;
    ULONG_PTR pid;
    NTSTATUS st = thread_membership(thread, &pid);
    if (st >= 0 || st == STATUS_INVALID_HANDLE || st == STATUS_OBJECT_TYPE_MISMATCH || !pid)
        return st;
    OBJECT_ATTRIBUTES oa = {sizeof oa};
    CLIENT_ID cid = {(HANDLE)pid, 0};
    HANDLE process;
    if (real_NtOpenProcess(&process, MEMBERSHIP_ACCESS, &oa, &cid) >= 0) {
        st = guard_process(process, op);   /* the policy's `open`, and the audit record */
        NtClose(process);
        return st;
    }
    audit_refusal(op, pid, NULL, 0);
    return STATUS_ACCESS_DENIED;
}

/* ---- opening and walking ---- */

/* After a successful open of something outside the box: may the box keep
 * it? Only through an `open` rule (any access) or a `read` rule (query and
 * wait), never for FVM's own programs. */
static BOOL outside_open_allowed(HANDLE process, ACCESS_MASK access, ACCESS_MASK read_only, const char *op)
{
    uint16_t image[FVM_PATH_MAX];
    size_t len = process_image(process, image, FVM_PATH_MAX);
    policy_decision d;
    policy_action a = len && !image_is_fvm(image, len)
                          ? runtime_policy_decide(POLICY_TYPE_PROCESS, image, len, &d) : POLICY_ACTION_HIDE;
    if (a == POLICY_ACTION_OPEN || (a == POLICY_ACTION_READ && !(access & ~read_only) && access != MAXIMUM_ALLOWED))
        return TRUE;
    audit_refusal(op, process_pid(process), image, len);
    return FALSE;
}

/* A process of the box whose image a rule hides or denies. */
static NTSTATUS inside_open_status(HANDLE process)
{
    if (!runtime_policy_active())
        return STATUS_SUCCESS;
    uint16_t image[FVM_PATH_MAX];
    size_t len = process_image(process, image, FVM_PATH_MAX);
    policy_decision d;
    policy_action a = len ? runtime_policy_decide(POLICY_TYPE_PROCESS, image, len, &d) : POLICY_ACTION_COW;
    if (len)
        runtime_audit(POLICY_TYPE_PROCESS, "open", &d, image, len);
    return a == POLICY_ACTION_DENY ? STATUS_ACCESS_DENIED : a == POLICY_ACTION_HIDE ? STATUS_INVALID_CID
                                                                                   : STATUS_SUCCESS;
}

static NTSTATUS NTAPI box_NtOpenProcess(HANDLE *out, ACCESS_MASK access, OBJECT_ATTRIBUTES *attributes,
                                        CLIENT_ID *client)
{
    if (!g_fvm.active)
        return real_NtOpenProcess(out, access, attributes, client);
    /* Opened with the rights the checks need, handed back with the rights
     * asked for. */
    ACCESS_MASK wide = access & MAXIMUM_ALLOWED ? access : access | MEMBERSHIP_ACCESS;
    NTSTATUS st = real_NtOpenProcess(out, wide, attributes, client);
    if (st == STATUS_ACCESS_DENIED && wide != access)
        st = real_NtOpenProcess(out, wide = access, attributes, client);
    if (st < 0)
        return st;
    HANDLE process = *out;
    NTSTATUS member = process_membership(process);
    NTSTATUS verdict = member >= 0 ? inside_open_status(process)
                                   : outside_open_allowed(process, access, READ_ONLY_PROCESS_ACCESS, "open-process")
                                         ? STATUS_SUCCESS : STATUS_INVALID_CID;
    if (verdict < 0) {
        NtClose(process);
        *out = NULL;
        return verdict;
    }
    if (wide != access) {
        ULONG attributes_flags = attributes ? attributes->Attributes & OBJ_INHERIT : 0;
        NTSTATUS narrowed = NtDuplicateObject(CURRENT_PROCESS, process, CURRENT_PROCESS, out, access,
                                              attributes_flags, DUPLICATE_CLOSE_SOURCE);
        if (narrowed < 0) {
            *out = NULL;
            return narrowed;
        }
    }
    return st;
}

static NTSTATUS NTAPI box_NtOpenThread(HANDLE *out, ACCESS_MASK access, OBJECT_ATTRIBUTES *attributes,
                                       CLIENT_ID *client)
{
    NTSTATUS st = real_NtOpenThread(out, access, attributes, client);
    if (st < 0 || !g_fvm.active)
        return st;
    ULONG_PTR pid;
    NTSTATUS member = thread_membership(*out, &pid);
    if (member >= 0)
        return st;
    BOOL allowed = FALSE;
    OBJECT_ATTRIBUTES oa = {sizeof oa};
    CLIENT_ID cid = {(HANDLE)pid, 0};
    HANDLE process;
    if (pid && real_NtOpenProcess(&process, MEMBERSHIP_ACCESS, &oa, &cid) >= 0) {
        allowed = outside_open_allowed(process, access, READ_ONLY_THREAD_ACCESS, "open-thread");
        NtClose(process);
    }
    if (!allowed) {
        NtClose(*out);
        *out = NULL;
        return STATUS_INVALID_CID;
    }
    return st;
}

/* Skips every process outside the box: the walk goes on from each skipped
 * handle, which is then closed. */
static NTSTATUS NTAPI box_NtGetNextProcess(HANDLE process, ACCESS_MASK access, ULONG attributes, ULONG flags,
                                           HANDLE *next)
{
    if (!g_fvm.active)
        return real_NtGetNextProcess(process, access, attributes, flags, next);
    HANDLE from = process, skipped = NULL;
    for (;;) {
        HANDLE candidate;
        NTSTATUS st = real_NtGetNextProcess(from, access | MEMBERSHIP_ACCESS, attributes, flags,
                                            &candidate);
        if (skipped)
            NtClose(skipped);
        if (st < 0)
            return st;
        if (process_membership(candidate) >= 0 && inside_open_status(candidate) >= 0) {
            *next = candidate;
            return st;
        }
        from = skipped = candidate;
    }
}

static NTSTATUS NTAPI box_NtGetNextThread(HANDLE process, HANDLE thread, ACCESS_MASK access, ULONG attributes,
                                          ULONG flags, HANDLE *next)
{
    NTSTATUS st = guard_process(process, "list-threads");
    if (st < 0)
        return st;
    return real_NtGetNextThread(process, thread, access, attributes, flags, next);
}

/* ---- listings ---- */

/* Membership verdicts for one listing: a pid is asked about once. */
typedef struct pid_verdicts {
    ULONG_PTR pid[256];
    BOOL in[256];
    unsigned count;
} pid_verdicts;

static BOOL pid_in_box(pid_verdicts *v, ULONG_PTR pid)
{
    for (unsigned i = 0; i < v->count; i++)
        if (v->pid[i] == pid)
            return v->in[i];
    BOOL in = pid_membership(pid) >= 0;
    if (v->count < 256) {
        v->pid[v->count] = pid;
        v->in[v->count++] = in;
    }
    return in;
}

/* Verdicts of earlier listings, by pid and creation time: a process never
 * changes sides (a member stays one until it exits; an outside process
 * cannot join the box's job), so a process seen once costs no server call
 * again. Outside verdicts are kept only for processes older than two
 * seconds: proc.c may still be putting a just-created child in the job. */
#define LISTING_CACHE 128
typedef struct listed_process {
    ULONG_PTR pid;
    LONGLONG created;
    BOOL in;
} listed_process;
static listed_process g_listed[LISTING_CACHE];
static unsigned g_listed_next;
static SRWLOCK g_listed_lock = SRWLOCK_INIT;

static BOOL listed_in_box(pid_verdicts *v, ULONG_PTR pid, LONGLONG created, LONGLONG now)
{
    if (created) {
        AcquireSRWLockShared(&g_listed_lock);
        for (unsigned i = 0; i < LISTING_CACHE; i++) {
            if (g_listed[i].pid == pid && g_listed[i].created == created) {
                BOOL in = g_listed[i].in;
                ReleaseSRWLockShared(&g_listed_lock);
                return in;
            }
        }
        ReleaseSRWLockShared(&g_listed_lock);
    }
    BOOL in = pid_in_box(v, pid);
    if (created && (in || now - created > 20000000)) {
        AcquireSRWLockExclusive(&g_listed_lock);
        g_listed[g_listed_next++ % LISTING_CACHE] = (listed_process){pid, created, in};
        ReleaseSRWLockExclusive(&g_listed_lock);
    }
    return in;
}

/* SYSTEM_PROCESS_INFORMATION entries (and their extended forms, which have
 * the same header) of outside processes are cut out; the kept ones are
 * moved up, their image-name pointers with them. */
static ULONG filter_process_list(uint8_t *buf, ULONG len)
{
    pid_verdicts *verdicts = HeapAlloc(GetProcessHeap(), 0, sizeof *verdicts);
    if (!verdicts)
        return 0;
    verdicts->count = 0;
    ULONG read = 0, write = 0, last_kept = (ULONG)-1;
    LARGE_INTEGER time;
    GetSystemTimeAsFileTime((FILETIME *)&time);
    LONGLONG now = time.QuadPart;
    for (;;) {
        SYSTEM_PROCESS_INFORMATION *e = (SYSTEM_PROCESS_INFORMATION *)(buf + read);
        if (read + sizeof *e > len)
            break;
        ULONG next = e->NextEntryOffset;
        ULONG size = next ? next : len - read;
        LONGLONG created = *(const LONGLONG *)((const uint8_t *)e + 32);   /* CreateTime */
        if (listed_in_box(verdicts, (ULONG_PTR)e->UniqueProcessId, created, now)) {
            uint8_t *old = buf + read, *now = buf + write;
            if (now != old) {
                memmove(now, old, size);
                SYSTEM_PROCESS_INFORMATION *moved = (SYSTEM_PROCESS_INFORMATION *)now;
                uint8_t *name = (uint8_t *)moved->ImageName.Buffer;
                if (name >= old && name < old + size)
                    moved->ImageName.Buffer = (PWSTR)(name - (old - now));
            }
            ((SYSTEM_PROCESS_INFORMATION *)now)->NextEntryOffset = size;
            last_kept = write;
            write += size;
        }
        if (!next)
            break;
        read += next;
    }
    if (last_kept != (ULONG)-1)
        ((SYSTEM_PROCESS_INFORMATION *)(buf + last_kept))->NextEntryOffset = 0;
    HeapFree(GetProcessHeap(), 0, verdicts);
    return write;
}

/* SystemHandleInformation: a ULONG count (padded to 8), then 24-byte entries
 * whose first USHORT is the owner pid. SystemExtendedHandleInformation: two
 * ULONG_PTRs, then 40-byte entries with the owner pid at offset 8. */
static ULONG filter_handle_list(uint8_t *buf, ULONG len, BOOL extended)
{
    pid_verdicts *verdicts = HeapAlloc(GetProcessHeap(), 0, sizeof *verdicts);
    if (!verdicts)
        return 0;
    verdicts->count = 0;
    size_t header = extended ? 16 : 8, entry = extended ? 40 : 24;
    ULONG_PTR count = extended ? *(ULONG_PTR *)buf : *(ULONG *)buf, kept = 0;
    for (ULONG_PTR i = 0; i < count && header + (i + 1) * entry <= len; i++) {
        uint8_t *e = buf + header + i * entry;
        ULONG_PTR pid = extended ? *(ULONG_PTR *)(e + 8) : *(USHORT *)e;
        if (pid_in_box(verdicts, pid))
            memmove(buf + header + kept++ * entry, e, entry);
    }
    if (extended)
        *(ULONG_PTR *)buf = kept;
    else
        *(ULONG *)buf = (ULONG)kept;
    HeapFree(GetProcessHeap(), 0, verdicts);
    return (ULONG)(header + kept * entry);
}

static NTSTATUS NTAPI box_NtQuerySystemInformation(ULONG info_class, void *info, ULONG len, ULONG *returned)
{
    if (!g_fvm.active)
        return real_NtQuerySystemInformation(info_class, info, len, returned);
    if (info_class == SYS_SESSION_PROCESS || info_class == SYS_FULL_PROCESS)
        return STATUS_INVALID_INFO_CLASS;   /* not filtered: not offered */
    ULONG_PTR asked_pid = 0;
    if (info_class == SYS_PROCESS_ID && info && len >= sizeof(ULONG_PTR)) {
        if (!guard_copy(&asked_pid, info, sizeof asked_pid))
            return STATUS_ACCESS_VIOLATION;   /* the caller's buffer, as the system call answers */
        if (pid_membership(asked_pid) < 0)
            return STATUS_INVALID_CID;
    }
    NTSTATUS st = real_NtQuerySystemInformation(info_class, info, len, returned);
    if (st < 0 || !info)
        return st;
    ULONG size = returned && *returned <= len ? *returned : len;
    if (info_class == SYS_PROCESS || info_class == SYS_EXTENDED_PROCESS)
        size = filter_process_list(info, size);
    else if (info_class == SYS_HANDLE || info_class == SYS_EXTENDED_HANDLE)
        size = filter_handle_list(info, size, info_class == SYS_EXTENDED_HANDLE);
    else
        return st;
    if (returned)
        *returned = size;
    return st;
}

/* ---- actions on another process or thread ---- */

#define GUARD_PROCESS(h, op)                    \
    do {                                        \
        NTSTATUS refused_ = guard_process(h, op); \
        if (refused_ < 0)                       \
            return refused_;                    \
    } while (0)
#define GUARD_THREAD(h, op)                     \
    do {                                        \
        NTSTATUS refused_ = guard_thread(h, op); \
        if (refused_ < 0)                       \
            return refused_;                    \
    } while (0)

static NTSTATUS NTAPI box_NtReadVirtualMemory(HANDLE p, void *a, void *b, SIZE_T n, SIZE_T *done)
{
    GUARD_PROCESS(p, "read-memory");
    return real_NtReadVirtualMemory(p, a, b, n, done);
}

static NTSTATUS NTAPI box_NtWriteVirtualMemory(HANDLE p, void *a, void *b, SIZE_T n, SIZE_T *done)
{
    GUARD_PROCESS(p, "write-memory");
    return real_NtWriteVirtualMemory(p, a, b, n, done);
}

static NTSTATUS NTAPI box_NtProtectVirtualMemory(HANDLE p, void **a, SIZE_T *n, ULONG prot, ULONG *old)
{
    GUARD_PROCESS(p, "protect-memory");
    return real_NtProtectVirtualMemory(p, a, n, prot, old);
}

static NTSTATUS NTAPI box_NtAllocateVirtualMemory(HANDLE p, void **a, ULONG_PTR z, SIZE_T *n, ULONG t, ULONG prot)
{
    GUARD_PROCESS(p, "allocate-memory");
    return memquota_allocate(real_NtAllocateVirtualMemory, p, a, z, n, t, prot);   /* memquota.c: the box's memory limit */
}

static NTSTATUS NTAPI box_NtAllocateVirtualMemoryEx(HANDLE p, void **a, SIZE_T *n, ULONG t, ULONG prot, void *x,
                                                    ULONG c)
{
    GUARD_PROCESS(p, "allocate-memory");
    return real_NtAllocateVirtualMemoryEx(p, a, n, t, prot, x, c);
}

static NTSTATUS NTAPI box_NtFreeVirtualMemory(HANDLE p, void **a, SIZE_T *n, ULONG t)
{
    GUARD_PROCESS(p, "free-memory");
    return memquota_free(real_NtFreeVirtualMemory, p, a, n, t);   /* memquota.c */
}

static NTSTATUS NTAPI box_NtQueryVirtualMemory(HANDLE p, void *a, ULONG c, void *info, SIZE_T n, SIZE_T *done)
{
    GUARD_PROCESS(p, "query-memory");
    return real_NtQueryVirtualMemory(p, a, c, info, n, done);
}

static NTSTATUS NTAPI box_NtMapViewOfSection(HANDLE s, HANDLE p, void **a, ULONG_PTR z, SIZE_T commit,
                                             LARGE_INTEGER *off, SIZE_T *n, ULONG inherit, ULONG t, ULONG prot)
{
    GUARD_PROCESS(p, "map-memory");
    return real_NtMapViewOfSection(s, p, a, z, commit, off, n, inherit, t, prot);
}

static NTSTATUS NTAPI box_NtMapViewOfSectionEx(HANDLE s, HANDLE p, void **a, LARGE_INTEGER *off, SIZE_T *n,
                                               ULONG t, ULONG prot, void *x, ULONG c)
{
    GUARD_PROCESS(p, "map-memory");
    return real_NtMapViewOfSectionEx(s, p, a, off, n, t, prot, x, c);
}

static NTSTATUS NTAPI box_NtUnmapViewOfSection(HANDLE p, void *a)
{
    GUARD_PROCESS(p, "unmap-memory");
    return real_NtUnmapViewOfSection(p, a);
}

static NTSTATUS NTAPI box_NtUnmapViewOfSectionEx(HANDLE p, void *a, ULONG f)
{
    GUARD_PROCESS(p, "unmap-memory");
    return real_NtUnmapViewOfSectionEx(p, a, f);
}

static NTSTATUS NTAPI box_NtCreateThreadEx(HANDLE *t, ACCESS_MASK access, OBJECT_ATTRIBUTES *oa, HANDLE p,
                                           void *start, void *param, ULONG flags, SIZE_T zero, SIZE_T stack,
                                           SIZE_T reserve, void *attributes)
{
    GUARD_PROCESS(p, "create-thread");
    return real_NtCreateThreadEx(t, access, oa, p, start, param, flags, zero, stack, reserve, attributes);
}

static NTSTATUS NTAPI box_NtQueueApcThread(HANDLE t, void *fn, ULONG_PTR a1, ULONG_PTR a2, ULONG_PTR a3)
{
    GUARD_THREAD(t, "queue-apc");
    return real_NtQueueApcThread(t, fn, a1, a2, a3);
}

static NTSTATUS NTAPI box_NtQueueApcThreadEx(HANDLE t, HANDLE reserve, void *fn, ULONG_PTR a1, ULONG_PTR a2,
                                             ULONG_PTR a3)
{
    GUARD_THREAD(t, "queue-apc");
    return real_NtQueueApcThreadEx(t, reserve, fn, a1, a2, a3);
}

static NTSTATUS NTAPI box_NtSuspendProcess(HANDLE p)
{
    GUARD_PROCESS(p, "suspend");
    return real_NtSuspendProcess(p);
}

static NTSTATUS NTAPI box_NtResumeProcess(HANDLE p)
{
    GUARD_PROCESS(p, "resume");
    return real_NtResumeProcess(p);
}

static NTSTATUS NTAPI box_NtSuspendThread(HANDLE t, ULONG *count)
{
    GUARD_THREAD(t, "suspend");
    return real_NtSuspendThread(t, count);
}

static NTSTATUS NTAPI box_NtResumeThread(HANDLE t, ULONG *count)
{
    GUARD_THREAD(t, "resume");
    return real_NtResumeThread(t, count);
}

static NTSTATUS NTAPI box_NtAlertResumeThread(HANDLE t, ULONG *count)
{
    GUARD_THREAD(t, "resume");
    return real_NtAlertResumeThread(t, count);
}

static NTSTATUS NTAPI box_NtTerminateProcess(HANDLE p, NTSTATUS status)
{
    if (p)   /* NULL: every other thread of this process, at exit */
        GUARD_PROCESS(p, "terminate");
    return real_NtTerminateProcess(p, status);
}

static NTSTATUS NTAPI box_NtTerminateThread(HANDLE t, NTSTATUS status)
{
    if (t)
        GUARD_THREAD(t, "terminate");
    return real_NtTerminateThread(t, status);
}

static NTSTATUS NTAPI box_NtGetContextThread(HANDLE t, CONTEXT *c)
{
    GUARD_THREAD(t, "get-context");
    return real_NtGetContextThread(t, c);
}

static NTSTATUS NTAPI box_NtSetContextThread(HANDLE t, CONTEXT *c)
{
    GUARD_THREAD(t, "set-context");
    return real_NtSetContextThread(t, c);
}

static NTSTATUS NTAPI box_NtDebugActiveProcess(HANDLE p, HANDLE debug)
{
    GUARD_PROCESS(p, "debug");
    return real_NtDebugActiveProcess(p, debug);
}

static NTSTATUS NTAPI box_NtSetInformationProcess(HANDLE p, ULONG c, void *info, ULONG n)
{
    GUARD_PROCESS(p, "set-information");
    return real_NtSetInformationProcess(p, c, info, n);
}

static NTSTATUS NTAPI box_NtSetInformationThread(HANDLE t, ULONG c, void *info, ULONG n)
{
    GUARD_THREAD(t, "set-information");
    return real_NtSetInformationThread(t, c, info, n);
}

/* NtDuplicateObject (hooked once, in handles.c, which asks here first): in
 * or out of another process, both ends must be in the box. */
NTSTATUS process_duplicate_check(HANDLE source_process, HANDLE target_process)
{
    NTSTATUS refused = guard_process(source_process, "duplicate-handle");
    if (refused >= 0 && target_process)
        refused = guard_process(target_process, "duplicate-handle");
    return refused;
}

/* ---- starting a program ---- */

/* Whether the policy has SHA-256 rules: then each start hashes its image. */
static int g_hash_rules = -1;

static BOOL hash_file(const wchar_t *path, char hex[65])
{
    HANDLE file = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING, 0, NULL);
    if (file == INVALID_HANDLE_VALUE)
        return FALSE;
    sha256_ctx ctx;
    sha256_init(&ctx);
    uint8_t *chunk = HeapAlloc(GetProcessHeap(), 0, 64 * 1024);
    DWORD got = 0;
    BOOL ok = chunk != NULL;
    while (ok && (ok = ReadFile(file, chunk, 64 * 1024, &got, NULL)) && got)
        sha256_update(&ctx, chunk, got);
    CloseHandle(file);
    if (chunk)
        HeapFree(GetProcessHeap(), 0, chunk);
    if (!ok)
        return FALSE;
    uint8_t digest[32];
    sha256_final(&ctx, digest);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = 0;
    return TRUE;
}

/* A request to the broker about the box's process quota (only for a box
 * with one): "start" asks for one more process, which it grants by
 * counting the box's live processes and the starts it granted that have
 * not appeared yet, under its lock; "unstart" gives a grant back. */
static NTSTATUS quota_ask(const char *request)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    DWORD saved = GetLastError();
    uint32_t reply[2] = {0, (uint32_t)STATUS_QUOTA_EXCEEDED};
    DWORD got = 0;
    ipc_bypass_enter();
    BOOL ok = FALSE;
    for (int attempt = 0; attempt < 20 && !ok; attempt++) {
        ok = CallNamedPipeW(name, (void *)request, (DWORD)strlen(request), reply, sizeof reply, &got, 2000);
        if (!ok)
            Sleep(10);
    }
    ipc_bypass_leave();
    SetLastError(saved);
    if (!ok || got != sizeof reply || reply[0] != FVM_BROKER_PROTO_VERSION)
        return STATUS_QUOTA_EXCEEDED;   /* no answer: no grant */
    return (NTSTATUS)reply[1];
}

static NTSTATUS quota_grant(void)
{
    return quota_ask(FVM_BROKER_REQ_START);
}

void process_start_failed(void)
{
    if (g_fvm.active && (g_fvm.config.flags & FVM_BOX_FLAG_PROCS_LIMIT))
        quota_ask(FVM_BROKER_REQ_UNSTART);
}

NTSTATUS process_start_check(const void *parameters)
{
    /* The caller's memory: copied under the fault guard (guard.c). */
    RTL_USER_PROCESS_PARAMETERS local;
    if (!g_fvm.active || !parameters)
        return STATUS_SUCCESS;
    if (!guard_copy(&local, parameters, sizeof local))
        return STATUS_ACCESS_VIOLATION;
    const RTL_USER_PROCESS_PARAMETERS *params = &local;
    uint16_t image[FVM_PATH_MAX + 8];
    size_t len = 0;
    const UNICODE_STRING *path = &params->ImagePathName;
    if (path->Buffer && path->Length / 2 + 5 < FVM_PATH_MAX) {
        size_t n = path->Length / 2;
        if (n >= 2 && path->Buffer[1] == L':') {
            static const uint16_t prefix[4] = {'\\', '?', '?', '\\'};
            memcpy(image, prefix, sizeof prefix);
            len = 4;
        }
        if (!guard_copy(image + len, path->Buffer, n * 2))
            return STATUS_ACCESS_VIOLATION;
        len += n;
    }
    image[len] = 0;   /* the parameters' strings need not be terminated */
    if (len && runtime_policy_active()) {
        if (g_hash_rules < 0)
            g_hash_rules = policy_process_has_hash_rules(runtime_policy_view());
        char hex[65];
        wchar_t dos[FVM_PATH_MAX];
        const char *hash = NULL;
        if (g_hash_rules && fvm_wcscpy(dos, FVM_PATH_MAX, (const wchar_t *)image + (image[0] == '\\' ? 4 : 0)) &&
            hash_file(dos, hex))
            hash = hex;
        policy_decision d;
        policy_process_decide(runtime_policy_view(), image, len, hash, runtime_policy_program(),
                              runtime_policy_program_len(), &d);
        /* The whole command line says what was started, and how. */
        if (d.audit) {
            static uint16_t line[2048];   /* under the audit: starts are rare enough to share it */
            const UNICODE_STRING *cmd = &params->CommandLine;
            size_t units = cmd->Length / 2 < 2048 ? cmd->Length / 2 : 2048;
            BOOL have = cmd->Buffer && units && guard_copy(line, cmd->Buffer, units * 2);
            runtime_audit_target(POLICY_TYPE_PROCESS, "start", &d, have ? line : image, have ? units : len, image, len);
        }
        if (d.action == POLICY_ACTION_DENY || d.action == POLICY_ACTION_HIDE) {
            fvm_report("starting %.*ls is refused by the box's policy", (int)(path->Length / 2), path->Buffer);
            return d.action == POLICY_ACTION_DENY ? STATUS_ACCESS_DENIED : STATUS_OBJECT_NAME_NOT_FOUND;
        }
    }
    if (g_fvm.config.flags & FVM_BOX_FLAG_PROCS_LIMIT) {
        NTSTATUS st = quota_grant();
        if (st < 0) {
            uint16_t what[] = {'p', 'r', 'o', 'c', 'e', 's', 's', ' ', 'q', 'u', 'o', 't', 'a'};
            policy_decision refused;
            memset(&refused, 0, sizeof refused);
            refused.action = POLICY_ACTION_DENY;
            refused.audit = 1;
            refused.is_default = 1;
            refused.rule = POLICY_NO_RULE;
            runtime_audit(POLICY_TYPE_PROCESS, "start", &refused, what, sizeof what / 2);
            return st;
        }
    }
    return STATUS_SUCCESS;
}

/* ---- confidential boxes ---- */

/* A confidential box's process lets nobody else read or change it: its DACL
 * grants everyone only query and wait, an OWNER RIGHTS entry takes away the
 * owner's implicit right to rewrite the DACL (Windows), and SYSTEM becomes
 * the owner where that is allowed (Wine: always; Windows: with the restore
 * privilege), so the user's own host programs cannot rewrite it either.
 * Wine checks a process's DACL when a handle is opened: measured, a host
 * program's OpenProcess for memory access, or for WRITE_DAC, is refused.
 * Left open: a program with the debug privilege on Windows; and in the box
 * too, no process can read or end a confidential process (taskkill inside a
 * confidential box fails). */
static void make_confidential(void)
{
    static const SID_IDENTIFIER_AUTHORITY world = {SECURITY_WORLD_SID_AUTHORITY},
                                         nt = {SECURITY_NT_AUTHORITY}, creator = {SECURITY_CREATOR_SID_AUTHORITY};
    struct {
        SID sid;
    } everyone, system, owner_rights;
    RtlInitializeSid(&everyone.sid, (SID_IDENTIFIER_AUTHORITY *)&world, 1);
    *RtlSubAuthoritySid(&everyone.sid, 0) = SECURITY_WORLD_RID;
    RtlInitializeSid(&system.sid, (SID_IDENTIFIER_AUTHORITY *)&nt, 1);
    *RtlSubAuthoritySid(&system.sid, 0) = SECURITY_LOCAL_SYSTEM_RID;
    RtlInitializeSid(&owner_rights.sid, (SID_IDENTIFIER_AUTHORITY *)&creator, 1);
    *RtlSubAuthoritySid(&owner_rights.sid, 0) = 4;   /* S-1-3-4 OWNER RIGHTS */
    static union {
        ACL acl;
        uint8_t bytes[256];
    } dacl;
    SECURITY_DESCRIPTOR sd;
    /* Query (which Wine's job-membership check needs) and wait; never
     * memory, threads, handles or termination. */
    const ACCESS_MASK look = PROCESS_QUERY_INFORMATION | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE;
    NTSTATUS st = RtlCreateAcl(&dacl.acl, sizeof dacl, ACL_REVISION);
    if (st >= 0)
        st = RtlAddAccessAllowedAce(&dacl.acl, ACL_REVISION, PROCESS_ALL_ACCESS, &system.sid);
    if (st >= 0)
        st = RtlAddAccessAllowedAce(&dacl.acl, ACL_REVISION, look, &everyone.sid);
    if (st >= 0)
        st = RtlAddAccessAllowedAce(&dacl.acl, ACL_REVISION, look, &owner_rights.sid);
    if (st >= 0)
        st = RtlCreateSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
    if (st >= 0)
        st = RtlSetDaclSecurityDescriptor(&sd, TRUE, &dacl.acl, FALSE);
    /* With SYSTEM as owner, the user's programs lose the owner's implicit
     * right to rewrite the DACL (Windows grants that only with the restore
     * privilege; Wine checks no privilege). Without it, the DACL alone. */
    NTSTATUS owned = st >= 0 ? RtlSetOwnerSecurityDescriptor(&sd, &system.sid, FALSE) : st;
    if (owned >= 0)
        owned = NtSetSecurityObject(CURRENT_PROCESS, DACL_SECURITY_INFORMATION | OWNER_SECURITY_INFORMATION, &sd);
    if (st >= 0 && owned < 0)
        st = NtSetSecurityObject(CURRENT_PROCESS, DACL_SECURITY_INFORMATION, &sd);
    if (st < 0)
        fvm_report("confidential: cannot set the process's security descriptor (status 0x%08lx)", (unsigned long)st);
}

static BOOL processes_start(void)
{
    if (g_fvm.config.flags & FVM_BOX_FLAG_CONFIDENTIAL)
        make_confidential();
    return TRUE;
}

static void processes_hooks(hook_table *table)
{
#define HOOK(name) FVM_HOOK(table, "ntdll.dll", name)
#define HOOK_OPTIONAL(name) FVM_HOOK_OPTIONAL(table, "ntdll.dll", name)
    HOOK(NtOpenProcess);
    HOOK(NtOpenThread);
    HOOK_OPTIONAL(NtGetNextProcess);   /* Windows 10; Wine 8 has none */
    HOOK(NtGetNextThread);
    HOOK(NtQuerySystemInformation);
    HOOK(NtReadVirtualMemory);
    HOOK(NtWriteVirtualMemory);
    HOOK(NtProtectVirtualMemory);
    HOOK(NtAllocateVirtualMemory);
    HOOK_OPTIONAL(NtAllocateVirtualMemoryEx);
    HOOK(NtFreeVirtualMemory);
    HOOK(NtQueryVirtualMemory);
    HOOK(NtMapViewOfSection);
    HOOK_OPTIONAL(NtMapViewOfSectionEx);
    HOOK(NtUnmapViewOfSection);
    HOOK_OPTIONAL(NtUnmapViewOfSectionEx);
    HOOK(NtCreateThreadEx);
    HOOK(NtQueueApcThread);
    HOOK_OPTIONAL(NtQueueApcThreadEx);
    HOOK(NtSuspendProcess);
    HOOK(NtResumeProcess);
    HOOK(NtSuspendThread);
    HOOK(NtResumeThread);
    HOOK_OPTIONAL(NtAlertResumeThread);
    HOOK(NtTerminateProcess);
    HOOK(NtTerminateThread);
    HOOK(NtGetContextThread);
    HOOK(NtSetContextThread);
    HOOK(NtDebugActiveProcess);
    HOOK(NtSetInformationProcess);
    HOOK(NtSetInformationThread);
#undef HOOK
#undef HOOK_OPTIONAL
}

/* The virtualizer of processes and threads as objects (proc.c's
 * process_virtualizer makes new processes boxed). */
const fvm_virtualizer processes_virtualizer = {
    .name = "processes",
    .policy = POLICY_TYPE_PROCESS,
    .start = processes_start,
    .hooks = processes_hooks,
};

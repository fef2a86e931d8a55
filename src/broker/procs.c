/* procs.c - the broker's account of the box's processes: the process-count
 * quota (box.ini `procs = N`, from `fvm create --procs N`) and the audit
 * records of process starts and exits.
 *
 * Quota: Windows' job limit (JOB_OBJECT_LIMIT_ACTIVE_PROCESS) is set on the
 * box's job, and enforced by FVM itself because Wine ignores it: a boxed
 * process asks the broker before each start (runtime/process.c). The broker
 * answers under one lock from its own view: the live processes of the job
 * (each held by a handle, so liveness is a wait of zero, not a guess from
 * messages that may still be queued) plus the grants it gave that have not
 * shown up as a new process of the job yet (a start that fails after its
 * grant gives it back; one that dies without a word expires after 30 s).
 * Two concurrent starts cannot both take the last slot; children of
 * children count, since every start of the box asks. The (N+1)-th gets STATUS_QUOTA_EXCEEDED, what
 * Windows gives for a job's active-process limit (ERROR_NOT_ENOUGH_QUOTA).
 *
 * Audit: when a [process] rule with `audit` matches a process's image, its
 * start (pid, parent, image) and exit (exit code) are recorded by the
 * broker, from what the broker sees, not what the process says. */
#include "broker/broker.h"

#include <stdio.h>
#include <string.h>
#include <winternl.h>

#include "common/boxcfg.h"
#include "core/policy.h"

#define MAX_TRACKED 4096
#define MAX_GRANTS 256
/* A grant lives until its process shows up as a new member of the job, its
 * start says it failed ("unstart"), or this long: the fallback for a
 * starting process that died without a word. Not shorter: under load a
 * start takes seconds between the grant and the job's news (with 5 s, two
 * busy test workers once let a box run 7 processes under `procs = 6`). */
#define GRANT_LIFETIME_MS 30000

typedef struct tracked {
    uint32_t pid;
    HANDLE handle;
    BOOL audited;
    BOOL resolved;     /* its image was read (Wine knows it only once the process runs) */
    BOOL own_checked, fvm_own;   /* fvm.exe's launcher (fvm run's __start): not the box's program */
    BOOL parent_outside;         /* created from outside the box (fvm run), seen when it appeared */
    char image[FVM_PATH_MAX * 3];
    char rule[160];
} tracked;

static CRITICAL_SECTION g_lock;
static tracked g_tracked[MAX_TRACKED];
static uint32_t g_tracked_count;
static DWORD g_grants[MAX_GRANTS];   /* GetTickCount of each outstanding grant */
static uint32_t g_grant_count;
static uint32_t g_limit;
static HANDLE g_job;
/* Whether some [process] rule audits: only then is a new process's image
 * read (decided once: the broker's policy does not change while it runs). */
static BOOL g_audit_rules;

void broker_procs_start(const wchar_t *box_path, HANDLE job)
{
    InitializeCriticalSection(&g_lock);
    wchar_t ini[FVM_PATH_MAX];
    _snwprintf(ini, FVM_PATH_MAX, L"%ls\\box.ini", box_path);
    g_limit = GetPrivateProfileIntW(L"box", L"procs", 0, ini);
    g_job = job;
    if (g_limit) {
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
        memset(&limits, 0, sizeof limits);
        QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits, NULL);
        limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS | JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        limits.BasicLimitInformation.ActiveProcessLimit = g_limit;
        SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits);
    }
    const policy_view *view = broker_policy_view();   /* policy.c: the broker's own copy */
    g_audit_rules = view && (policy_view_possible(view, POLICY_TYPE_PROCESS) & POLICY_POSSIBLE_AUDIT);
}

static BOOL alive(const tracked *t)
{
    return t->handle && WaitForSingleObject(t->handle, 0) == WAIT_TIMEOUT;
}

/* Whether a new member's parent is outside the job: true of fvm run's
 * launcher (its parent is the unboxed fvm.exe, which waits for it), never of
 * a process a boxed program created (the runtime puts every child in the
 * job, and a boxed program cannot open a host process to name it as the
 * parent). The parent of a boxed process is a member the broker heard of
 * before it (the job reports processes in the order they were created, and
 * main.c lists a whole batch before announcing any), so the member list
 * answers without asking the server. A parent wrongly taken for outside
 * only matters for an image that is fvm.exe itself (fvm_own). */
static BOOL parent_outside_job(HANDLE process)
{
    PROCESS_BASIC_INFORMATION pbi;
    if (!process || NtQueryInformationProcess(process, ProcessBasicInformation, &pbi, sizeof pbi, NULL) < 0)
        return FALSE;
    return !broker_member_listed((uint32_t)pbi.InheritedFromUniqueProcessId);
}

/* fvm run starts the program through a boxed copy of fvm.exe (`fvm.exe
 * __start`, cli/run.c) that exits once the program runs: FVM's own helper,
 * not one of the box's processes, so the quota does not count it. It is
 * recognised by its image, the fvm.exe beside this broker, and by its
 * parent, outside the box: a boxed program that starts fvm.exe itself (a
 * `__start` can be made to wait 30 s) gets a counted process like any
 * other. */
static BOOL fvm_own(tracked *t)
{
    static wchar_t launcher[FVM_PATH_MAX];
    if (t->own_checked || !t->handle || !t->parent_outside)
        return t->fvm_own;
    if (!launcher[0]) {
        DWORD n = GetModuleFileNameW(NULL, launcher, FVM_PATH_MAX);
        wchar_t *slash = n ? wcsrchr(launcher, L'\\') : NULL;
        if (!slash || (size_t)(slash - launcher) + 9 >= FVM_PATH_MAX)
            return FALSE;
        wcscpy(slash + 1, L"fvm.exe");
    }
    wchar_t image[FVM_PATH_MAX];
    DWORD n = FVM_PATH_MAX;
    if (!QueryFullProcessImageNameW(t->handle, 0, image, &n))
        return FALSE;   /* not known yet: counted, asked again at the next grant */
    t->own_checked = TRUE;
    t->fvm_own = !_wcsicmp(image, launcher);
    return t->fvm_own;
}

static void record(const char *op, uint32_t pid, const char *name, const char *decision, const char *rule,
                   const char *image)
{
    brokermsg_audit msg;
    memset(&msg, 0, sizeof msg);
    msg.type = POLICY_TYPE_PROCESS;
    msg.pid = pid;
    msg.op = (brokermsg_text){op, strlen(op)};
    msg.decision = (brokermsg_text){decision, strlen(decision)};
    msg.rule = (brokermsg_text){rule, strlen(rule)};
    msg.image = (brokermsg_text){image, strlen(image)};
    msg.name = (brokermsg_text){name, strlen(name)};
    broker_audit_write(&msg);
}

/* Whether a rule asks for this image's starts and exits to be recorded. */
static BOOL audit_wanted(HANDLE process, char *image_utf8, size_t cap, char *rule, size_t rule_cap)
{
    wchar_t image[FVM_PATH_MAX + 4] = L"\\??\\";
    DWORD n = FVM_PATH_MAX;
    image_utf8[0] = 0;
    const policy_view *view = broker_policy_view();
    if (!view || !QueryFullProcessImageNameW(process, 0, image + 4, &n))
        return FALSE;
    WideCharToMultiByte(CP_UTF8, 0, image + 4, -1, image_utf8, (int)cap, NULL, NULL);
    policy_decision d;
    if (policy_match(view, POLICY_TYPE_PROCESS, (const uint16_t *)image, n + 4, (const uint16_t *)(image + 4), n,
                     &d) != FVM_OK || !d.audit)
        return FALSE;
    policy_decision_label(&d, rule, rule_cap);
    return TRUE;
}

/* Reads the image and decides on auditing; writes the start record. */
static void resolve(tracked *t)
{
    if (t->resolved || !t->handle)
        return;
    wchar_t probe[8];
    DWORD n = 8;
    if (!QueryFullProcessImageNameW(t->handle, 0, probe, &n) && GetLastError() != ERROR_INSUFFICIENT_BUFFER)
        return;   /* not yet known: asked again later */
    t->resolved = TRUE;
    t->audited = audit_wanted(t->handle, t->image, sizeof t->image, t->rule, sizeof t->rule);
    if (!t->audited)
        return;
    PROCESS_BASIC_INFORMATION pbi;
    ULONG_PTR parent = 0;
    char name[128];
    if (NtQueryInformationProcess(t->handle, ProcessBasicInformation, &pbi, sizeof pbi, NULL) >= 0)
        parent = (ULONG_PTR)pbi.InheritedFromUniqueProcessId;
    snprintf(name, sizeof name, "pid %lu parent %lu", (unsigned long)t->pid, (unsigned long)parent);
    record("process-start", t->pid, name, "audit", t->rule, t->image);
}

HANDLE broker_procs_new(uint32_t pid)
{
    /* The guard's rights too: it looks through this handle (guard.c). */
    HANDLE process = OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ |
                                 PROCESS_TERMINATE | SYNCHRONIZE, FALSE, pid);
    HANDLE kept = NULL;
    BOOL outside = parent_outside_job(process);
    EnterCriticalSection(&g_lock);
    if (g_grant_count) {   /* the oldest grant has become this process */
        memmove(g_grants, g_grants + 1, (g_grant_count - 1) * sizeof g_grants[0]);
        g_grant_count--;
    }
    if (g_tracked_count < MAX_TRACKED) {
        tracked *t = &g_tracked[g_tracked_count++];
        memset(t, 0, sizeof *t);
        t->pid = pid;
        t->handle = process;
        t->parent_outside = outside;
        t->resolved = !g_audit_rules;   /* nothing to audit: the image need not be read */
        resolve(t);
        kept = process;
    } else if (process) {
        CloseHandle(process);
    }
    LeaveCriticalSection(&g_lock);
    return kept;
}

void broker_procs_poll(void)
{
    EnterCriticalSection(&g_lock);
    for (uint32_t i = 0; i < g_tracked_count; i++)
        resolve(&g_tracked[i]);
    LeaveCriticalSection(&g_lock);
}

void broker_procs_exit(uint32_t pid)
{
    static tracked gone;
    BOOL found = FALSE;
    EnterCriticalSection(&g_lock);
    for (uint32_t i = 0; i < g_tracked_count && !found; i++) {
        if (g_tracked[i].pid == pid) {
            resolve(&g_tracked[i]);
            gone = g_tracked[i];
            g_tracked[i] = g_tracked[--g_tracked_count];
            found = TRUE;
        }
    }
    LeaveCriticalSection(&g_lock);
    if (!found || !gone.handle)
        return;
    if (gone.audited) {
        DWORD code = 0;
        char name[128];
        GetExitCodeProcess(gone.handle, &code);
        snprintf(name, sizeof name, "pid %lu exit %lu", (unsigned long)pid, (unsigned long)code);
        record("process-exit", pid, name, "audit", gone.rule, gone.image);
    }
    CloseHandle(gone.handle);
}

/* The box is ending: the handles of processes whose exit was not reported
 * yet go now. Each keeps its process object, and through it the job, alive
 * on Wine: a run starting right after this broker would otherwise reuse the
 * old job, whose completion port reports nothing to its new broker. */
void broker_procs_stop(void)
{
    EnterCriticalSection(&g_lock);
    for (uint32_t i = 0; i < g_tracked_count; i++)
        if (g_tracked[i].handle)
            CloseHandle(g_tracked[i].handle);
    g_tracked_count = 0;
    LeaveCriticalSection(&g_lock);
}

/* limits.c: the limit changed in box.ini while the box runs. */
void broker_procs_set_limit(uint32_t limit)
{
    EnterCriticalSection(&g_lock);
    g_limit = limit;
    LeaveCriticalSection(&g_lock);
}

/* limits.c: the box's live processes (fvm run's launcher left out). */
uint32_t broker_procs_list(uint32_t *pids, uint32_t max)
{
    uint32_t n = 0;
    EnterCriticalSection(&g_lock);
    for (uint32_t i = 0; i < g_tracked_count && n < max; i++)
        if (alive(&g_tracked[i]) && !fvm_own(&g_tracked[i]))
            pids[n++] = g_tracked[i].pid;
    LeaveCriticalSection(&g_lock);
    return n;
}

void broker_procs_ungrant(void)
{
    EnterCriticalSection(&g_lock);
    if (g_grant_count)
        g_grant_count--;   /* the newest: grants are alike, only their count matters */
    LeaveCriticalSection(&g_lock);
}

uint32_t broker_procs_grant(void)
{
    if (!g_limit)
        return STATUS_SUCCESS;
    EnterCriticalSection(&g_lock);
    DWORD now = GetTickCount();
    /* Only the broker's own view counts: Wine's job accounting keeps
     * counting a process assigned to the job after it has exited (fvm run's
     * launcher), which made every later run of the box one slot short. */
    uint32_t live = 0, kept = 0;
    for (uint32_t i = 0; i < g_tracked_count; i++)
        if (alive(&g_tracked[i]) && !fvm_own(&g_tracked[i]))
            live++;
    for (uint32_t i = 0; i < g_grant_count; i++)
        if (now - g_grants[i] < GRANT_LIFETIME_MS)
            g_grants[kept++] = g_grants[i];
    g_grant_count = kept;
    NTSTATUS st = STATUS_QUOTA_EXCEEDED;
    if (live + g_grant_count < g_limit && g_grant_count < MAX_GRANTS) {
        g_grants[g_grant_count++] = now;
        st = STATUS_SUCCESS;
    }
    LeaveCriticalSection(&g_lock);
    return (uint32_t)st;
}

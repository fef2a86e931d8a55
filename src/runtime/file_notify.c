/* file_notify.c - folder change notifications in the box's view.
 *
 * A program watches a folder (NtNotifyChangeDirectoryFile, behind
 * ReadDirectoryChangesW and FindFirstChangeNotification) through the handle
 * it opened. A host folder the box has not touched is opened as the host's,
 * but every change the box makes inside it lands in the folder's box copy,
 * so a watch on the host handle would never fire for the box's own changes
 * (issue 18, F128). The watch is therefore made on the box copy: on the
 * first notify call through a handle to a host folder that the policy
 * copies on write, the folder is copied up (an empty box folder merged over
 * the host's: the program's view is unchanged) and a handle of FVM's own to
 * the box copy is opened in the same synchronous mode, kept with the
 * program's handle (closed with it).
 *
 * FVM owns the completion of the program's request (F129): it makes its own
 * request on the box copy (its buffer, status block and event), and when
 * that completes, rewrites the records as the host would report them
 * (core/notifyrec.c: a host file's copy-up lands in the box copy as "added",
 * where on the host the file only changed) and completes the program's
 * request as the I/O manager would: the records copied into its buffer
 * (STATUS_NOTIFY_ENUM_DIR when they do not fit), its status block, its
 * event, its APC queued to the thread that asked, or a packet on the
 * completion port associated with its handle (learnt from
 * NtSetInformationFile, kept by net.c). A report left empty by the rewrite
 * is not one: FVM's request is made again. A copy-up is recognized by the
 * box index: the name's own entry is COPIED (the index notes a copy-up
 * before the copy lands, and notes a file the box made, or made again after
 * deleting it, as CREATED) and the host still has the name.
 *
 * Cancelling: CancelIoEx (NtCancelIoFileEx, hooked in net_async.c) and
 * CancelIo (NtCancelIoFile, the calling thread's requests) on the program's
 * handle cancel FVM's requests for it, which then complete the program's
 * with STATUS_CANCELLED; closing the program's handle closes FVM's, which
 * ends them as the system ends them (Wine: STATUS_HANDLES_CLOSED, Windows:
 * STATUS_NOTIFY_CLEANUP). Not seen, so: changes host programs make in the
 * host folder while the box watches; a wait on the program's handle itself
 * (FindFirstChangeNotification waits so) is not signalled (the I/O runs on
 * FVM's handle); NtNotifyChangeDirectoryFileEx with extended records is
 * passed on unrewritten. */
#include "runtime/file.h"

#include "core/notifyrec.h"
#include "runtime/guard.h"
#include "runtime/net.h"

typedef NTSTATUS (NTAPI *NtNotifyChangeDirectoryFile_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK,
                                                         PVOID, ULONG, ULONG, BOOLEAN);
typedef NTSTATUS (NTAPI *NtNotifyChangeDirectoryFileEx_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID,
                                                           PIO_STATUS_BLOCK, PVOID, ULONG, ULONG, BOOLEAN, ULONG);
typedef NTSTATUS (NTAPI *NtCancelIoFile_fn)(HANDLE, PIO_STATUS_BLOCK);
typedef NTSTATUS (NTAPI *NtSetIoCompletion_fn)(HANDLE, ULONG_PTR, PVOID, NTSTATUS, SIZE_T);
typedef NTSTATUS (NTAPI *NtQueueApcThread_fn)(HANDLE, void *, PVOID, PVOID, PVOID);
static NtNotifyChangeDirectoryFile_fn real_NtNotifyChangeDirectoryFile;
static NtNotifyChangeDirectoryFileEx_fn real_NtNotifyChangeDirectoryFileEx;
static NtCancelIoFile_fn real_NtCancelIoFile;
static NtSetIoCompletion_fn set_io_completion;
static NtQueueApcThread_fn queue_apc_thread;

#define FILE_MODE_INFORMATION_CLASS 16
#define MODE_SYNC_MASK (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT)
#define FILE_NOTIFY_INFORMATION_CLASS 1
#ifndef STATUS_NOTIFY_CLEANUP
#define STATUS_NOTIFY_CLEANUP ((NTSTATUS)0x0000010BL)
#endif
#ifndef STATUS_NOTIFY_ENUM_DIR
#define STATUS_NOTIFY_ENUM_DIR ((NTSTATUS)0x0000010CL)
#endif

/* A watched host folder: FVM's handle to its box copy. Kept with the
 * program's handle, and by each request in flight. */
typedef struct watch {
    volatile LONG refs;
    SRWLOCK lock;        /* box and closed, against the program's close */
    BOOL closed;
    HANDLE box;
    ntpath dir;          /* the host folder (copy-up checks) */
} watch;

/* One program request FVM completes. */
#define JOB_DATA (64 * 1024)
typedef struct notify_job {
    struct notify_job *next;       /* g_jobs: requests in flight (cancelling, closing) */
    watch *w;
    HANDLE handle, event, thread, mine;
    PIO_APC_ROUTINE apc;
    PVOID apc_context;
    PIO_STATUS_BLOCK io;           /* the program's */
    PVOID buffer;
    ULONG length, filter;
    BOOLEAN subtree;
    DWORD tid;                     /* the thread that asked (CancelIo) */
    volatile LONG ended;           /* cancelled: STATUS_CANCELLED */
    IO_STATUS_BLOCK my_io;
    uint8_t data[JOB_DATA] __attribute__((aligned(8)));   /* FVM's records */
    uint8_t out[JOB_DATA] __attribute__((aligned(8)));    /* the program's, rewritten */
} notify_job;

static notify_job *g_jobs;
static SRWLOCK g_jobs_lock = SRWLOCK_INIT;

static void watch_release(watch *w)
{
    if (InterlockedDecrement(&w->refs) == 0)
        HeapFree(GetProcessHeap(), 0, w);
}

static void copy_watch(void *data, void *ctx)
{
    watch *w = data;
    InterlockedIncrement(&w->refs);
    *(watch **)ctx = w;
}

/* The watch a notify call through handle goes to (a reference), or NULL:
 * the program's handle itself is watched (a folder the box made, one the
 * policy opens or only reads, no folder, or no box copy could be made).
 * A handle to a folder's box copy gets one too: its reports need the same
 * rewriting. */
static watch *watch_of(HANDLE handle)
{
    watch *w = NULL;
    if (handle_find(handle, &file_virtualizer, FILE_TAG_WATCH, copy_watch, &w))
        return w;
    file_scratch *s = scratch_acquire();
    if (!s)
        return NULL;
    BOOL in_box = FALSE;
    fvm_error err;
    policy_decision d;
    if (handle_path(handle, s, &in_box) &&
        (s->dir.kind == NTPATH_KIND_DRIVE || s->dir.kind == NTPATH_KIND_UNC) &&
        runtime_policy_decide(POLICY_TYPE_FILE, s->dir.path, s->dir.len, &d) == POLICY_ACTION_COW) {
        memcpy(&s->path, &s->dir, sizeof s->path);
        DWORD host = path_attributes(s->path.path, s->path.len);
        if (host != INVALID_FILE_ATTRIBUTES && (host & FILE_ATTRIBUTE_DIRECTORY) &&
            ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                          &err) == FVM_OK &&
            file_box_folder(s) >= 0) {
            /* The program's handle's mode: FVM's request behaves as the
             * program's would (waits, or returns pending). */
            struct { ULONG mode; } mode = {0};
            IO_STATUS_BLOCK io;
            NtQueryInformationFile(handle, &io, &mode, sizeof mode, FILE_MODE_INFORMATION_CLASS);
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            init_attributes(&oa, &us, s->box, s->box_len, NULL);
            HANDLE h;
            watch *made = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *made);
            if (made && real_NtOpenFile(&h, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                                        FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                        FILE_DIRECTORY_FILE | (mode.mode & MODE_SYNC_MASK)) >= 0) {
                made->refs = 2;   /* the program's handle's, and the caller's */
                InitializeSRWLock(&made->lock);
                made->box = h;
                memcpy(&made->dir, &s->dir, sizeof made->dir);
                if (handle_put(handle, &file_virtualizer, FILE_TAG_WATCH, made)) {
                    w = made;
                    made = NULL;
                } else {
                    real_NtClose(h);
                }
            }
            if (made)
                HeapFree(GetProcessHeap(), 0, made);
        }
    }
    scratch_release(s);
    return w;
}

static void job_unlink(notify_job *job)
{
    AcquireSRWLockExclusive(&g_jobs_lock);
    for (notify_job **at = &g_jobs; *at; at = &(*at)->next)
        if (*at == job) {
            *at = job->next;
            break;
        }
    ReleaseSRWLockExclusive(&g_jobs_lock);
}

static void job_free(notify_job *job)
{
    if (job->thread)
        CloseHandle(job->thread);
    if (job->mine)
        CloseHandle(job->mine);
    watch_release(job->w);
    HeapFree(GetProcessHeap(), 0, job);
}

/* Cancels FVM's request of job (the caller holds g_jobs_lock). */
static NTSTATUS job_cancel(notify_job *job, NTSTATUS why)
{
    InterlockedCompareExchange(&job->ended, why, 0);
    NTSTATUS status = STATUS_NOT_FOUND;
    IO_STATUS_BLOCK io;
    AcquireSRWLockShared(&job->w->lock);
    if (!job->w->closed)
        status = net_real_cancel_ex(job->w->box, &job->my_io, &io);
    ReleaseSRWLockShared(&job->w->lock);
    return status;
}

/* The program closed its handle: FVM's closes too, and FVM's requests end
 * as the system ends a request whose handle is closed (passed on). */
void file_watch_closed(void *data)
{
    watch *w = data;
    AcquireSRWLockExclusive(&w->lock);
    w->closed = TRUE;
    real_NtClose(w->box);
    ReleaseSRWLockExclusive(&w->lock);
    watch_release(w);
}

/* Makes FVM's request for job on the box copy. */
static NTSTATUS job_issue(notify_job *job)
{
    NTSTATUS status = job->ended;
    if (status)
        return status;
    AcquireSRWLockShared(&job->w->lock);
    if (job->w->closed) {
        status = STATUS_NOTIFY_CLEANUP;
    } else {
        job->my_io.Status = STATUS_PENDING;
        job->my_io.Information = 0;
        ResetEvent(job->mine);
        status = real_NtNotifyChangeDirectoryFile(job->w->box, job->mine, NULL, NULL, &job->my_io,
                                                  job->buffer ? job->data : NULL, job->buffer ? JOB_DATA : 0,
                                                  job->filter, job->subtree);
    }
    ReleaseSRWLockShared(&job->w->lock);
    /* A cancel that came between two requests of this job. */
    if (status == STATUS_PENDING && job->ended)
        job_cancel(job, job->ended);
    return status;
}

/* Is name (relative to the watched folder) a host entry the box copied up? */
static int is_copy_up(void *ctx, const uint16_t *name, size_t len)
{
    watch *w = ctx;
    file_scratch *s = scratch_acquire();
    if (!s)
        return 0;
    fvm_error err;
    int copied = ntpath_join(&w->dir, name, len, NULL, &s->path, &err) == FVM_OK &&
                 index_entry_state(&s->path, s->key, BOXINDEX_MAX_KEY_UNITS + 1) == BOXINDEX_COPIED &&
                 path_attributes(s->path.path, s->path.len) != INVALID_FILE_ATTRIBUTES;
    scratch_release(s);
    return copied;
}

/* FVM's request of job is done (status: what the call or its completion
 * said): the program's result, or FALSE when nothing was left to report and
 * FVM's request was made again (pending). */
static BOOL job_result(notify_job *job, NTSTATUS status, NTSTATUS *result, ULONG_PTR *info)
{
    for (;;) {
        if (status == STATUS_PENDING)
            return FALSE;
        *info = 0;
        if (job->ended && status == STATUS_CANCELLED) {
            *result = job->ended;
            return TRUE;
        }
        if (status != STATUS_SUCCESS || !job->buffer) {
            *result = status;
            if (status == STATUS_SUCCESS)
                *info = job->my_io.Information;
            return TRUE;
        }
        size_t out_len = 0;
        size_t in_len = job->my_io.Information < JOB_DATA ? job->my_io.Information : JOB_DATA;
        size_t cap = job->length < JOB_DATA ? job->length : JOB_DATA;
        switch (notifyrec_translate(job->data, in_len, job->filter, is_copy_up, job->w, job->out, cap, &out_len)) {
        case NOTIFYREC_OK:
            *result = guard_copy(job->buffer, job->out, out_len) ? STATUS_SUCCESS : STATUS_ACCESS_VIOLATION;
            *info = *result == STATUS_SUCCESS ? out_len : 0;
            return TRUE;
        case NOTIFYREC_EMPTY:
            status = job_issue(job);
            if (status != STATUS_PENDING && status >= 0)
                status = job->my_io.Status;
            continue;
        case NOTIFYREC_OVERFLOW:
        case NOTIFYREC_MALFORMED:
        default:
            *result = STATUS_NOTIFY_ENUM_DIR;   /* the program lists the folder again */
            return TRUE;
        }
    }
}

/* Completes the program's request as the I/O manager would. */
static void job_deliver(notify_job *job, NTSTATUS status, ULONG_PTR info)
{
    /* The count before the status: a poller that sees the status final
     * reads the count of the same report. */
    guard_copy(&job->io->Information, &info, sizeof info);
    MemoryBarrier();
    guard_copy(&job->io->Status, &status, sizeof status);
    if (job->event)
        SetEvent(job->event);
    HANDLE port;
    ULONG_PTR key;
    if (job->apc) {
        if (job->thread && queue_apc_thread)
            queue_apc_thread(job->thread, (void *)job->apc, job->apc_context, job->io, NULL);
    } else if (job->apc_context && set_io_completion && net_completion_port_of(job->handle, &port, &key)) {
        set_io_completion(port, key, job->apc_context, status, info);
    }
}

static void CALLBACK job_ready(PTP_CALLBACK_INSTANCE instance, PVOID context, PTP_WAIT wait, TP_WAIT_RESULT result)
{
    (void)instance, (void)result;
    CloseThreadpoolWait(wait);
    notify_job *job = context;
    NTSTATUS status;
    ULONG_PTR info;
    if (!job_result(job, job->my_io.Status, &status, &info)) {
        PTP_WAIT again = CreateThreadpoolWait(job_ready, job, NULL);
        if (again) {
            SetThreadpoolWait(again, job->mine, NULL);
            return;
        }
        status = STATUS_NO_MEMORY;
        info = 0;
    }
    job_unlink(job);
    job_deliver(job, status, info);
    job_free(job);
}

/* The program's call, completed by FVM. */
static NTSTATUS notify_owned(watch *w, HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                             PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, ULONG filter, BOOLEAN subtree)
{
    notify_job *job = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *job);
    if (!job) {
        watch_release(w);
        return STATUS_NO_MEMORY;
    }
    job->w = w;
    job->handle = handle;
    job->event = event;
    job->apc = apc;
    job->apc_context = apc_context;
    job->io = io;
    job->buffer = buffer;
    job->length = length;
    job->filter = filter;
    job->subtree = subtree;
    job->tid = GetCurrentThreadId();
    job->mine = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (apc)
        DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &job->thread, 0, FALSE,
                        DUPLICATE_SAME_ACCESS);
    PTP_WAIT wait = job->mine ? CreateThreadpoolWait(job_ready, job, NULL) : NULL;
    if (!wait) {
        job_free(job);
        return STATUS_NO_MEMORY;
    }
    if (event)
        ResetEvent(event);   /* as the I/O manager does when a request starts */
    AcquireSRWLockExclusive(&g_jobs_lock);
    job->next = g_jobs;
    g_jobs = job;
    ReleaseSRWLockExclusive(&g_jobs_lock);
    NTSTATUS status = job_issue(job);
    if (status == STATUS_PENDING) {
        IO_STATUS_BLOCK pending = {.Status = STATUS_PENDING, .Information = 0};
        guard_copy(io, &pending, sizeof pending);
        SetThreadpoolWait(wait, job->mine, NULL);
        return STATUS_PENDING;
    }
    /* Done within the call (a handle whose requests wait), or refused. */
    CloseThreadpoolWait(wait);
    NTSTATUS result = status;
    ULONG_PTR info = 0;
    if (status >= 0) {
        status = job->my_io.Status;
        while (!job_result(job, status, &result, &info)) {
            NtWaitForSingleObject(job->mine, FALSE, NULL);
            status = job->my_io.Status;
        }
    }
    job_unlink(job);
    if (status >= 0 || result != status)
        job_deliver(job, result, info);
    job_free(job);
    return result;
}

static NTSTATUS NTAPI box_NtNotifyChangeDirectoryFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                                                      PVOID apc_context, PIO_STATUS_BLOCK io, PVOID buffer,
                                                      ULONG length, ULONG filter, BOOLEAN subtree)
{
    watch *w = runtime_bypassed() ? NULL : watch_of(handle);
    if (!w)
        return real_NtNotifyChangeDirectoryFile(handle, event, apc, apc_context, io, buffer, length, filter,
                                                subtree);
    return notify_owned(w, handle, event, apc, apc_context, io, buffer, length, filter, subtree);
}

static NTSTATUS NTAPI box_NtNotifyChangeDirectoryFileEx(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                                                        PVOID apc_context, PIO_STATUS_BLOCK io, PVOID buffer,
                                                        ULONG length, ULONG filter, BOOLEAN subtree, ULONG klass)
{
    watch *w = runtime_bypassed() ? NULL : watch_of(handle);
    if (w && klass == FILE_NOTIFY_INFORMATION_CLASS)
        return notify_owned(w, handle, event, apc, apc_context, io, buffer, length, filter, subtree);
    NTSTATUS status = real_NtNotifyChangeDirectoryFileEx(w ? w->box : handle, event, apc, apc_context, io, buffer,
                                                         length, filter, subtree, klass);
    if (w)
        watch_release(w);
    return status;
}

BOOL file_notify_cancel(HANDLE handle, PIO_STATUS_BLOCK io)
{
    if (!g_jobs)
        return FALSE;
    BOOL found = FALSE;
    AcquireSRWLockShared(&g_jobs_lock);
    for (notify_job *job = g_jobs; job; job = job->next)
        if (job->handle == handle && (!io || job->io == io)) {
            job_cancel(job, STATUS_CANCELLED);
            found = TRUE;
        }
    ReleaseSRWLockShared(&g_jobs_lock);
    return found;
}

/* CancelIo: the calling thread's requests on the handle, FVM's among them. */
static NTSTATUS NTAPI box_NtCancelIoFile(HANDLE handle, PIO_STATUS_BLOCK status_out)
{
    if (g_jobs) {
        DWORD tid = GetCurrentThreadId();
        AcquireSRWLockShared(&g_jobs_lock);
        for (notify_job *job = g_jobs; job; job = job->next)
            if (job->handle == handle && job->tid == tid)
                job_cancel(job, STATUS_CANCELLED);
        ReleaseSRWLockShared(&g_jobs_lock);
    }
    return real_NtCancelIoFile(handle, status_out);
}

void file_notify_hooks(hook_table *table)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    set_io_completion = (NtSetIoCompletion_fn)(void *)GetProcAddress(ntdll, "NtSetIoCompletion");
    queue_apc_thread = (NtQueueApcThread_fn)(void *)GetProcAddress(ntdll, "NtQueueApcThread");
    FVM_HOOK(table, "ntdll.dll", NtNotifyChangeDirectoryFile);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtNotifyChangeDirectoryFileEx);
    FVM_HOOK(table, "ntdll.dll", NtCancelIoFile);
}

/* file_notify.c - folder change notifications in the box's view.
 *
 * A program watches a folder (NtNotifyChangeDirectoryFile, behind
 * ReadDirectoryChangesW and FindFirstChangeNotification) through the handle
 * it opened. Every change the box makes inside a host folder lands in the
 * folder's box copy, so a watch on the host folder would never fire for the
 * box's own changes (issue 18, F128), and a watch on the box copy sees a
 * host file's copy-up as the file added (F129). So FVM watches for the
 * program: on the first notify call through a handle to a host folder that
 * the policy copies on write (or to its box copy), the folder is copied up
 * (an empty box folder merged over the host's: the view is unchanged) and
 * FVM opens two handles of its own, to the box copy and to the host folder,
 * kept with the program's handle (closed with it). On each it keeps a
 * request of its own in flight for as long as the handle lives (its buffer,
 * status block, event; the first call's filter and subtree flag, as the
 * file system keeps them), so changes made between two of the program's
 * calls are kept, as the system keeps them.
 *
 * Records are rewritten into the view before the program sees them: the
 * box copy's by core/notifyrec.c (a host file's copy-up, reported added,
 * becomes modified, or is dropped); the host folder's are kept only for
 * names the box has not touched (index verdict untouched: a host change to
 * a file the box copied or deleted does not change the view; this also
 * drops the host's record of FVM's own read for a copy-up). A copy-up is
 * recognized by the box index: the name's own entry is COPIED (noted before
 * the copy lands; a file the box made, or made again after deleting it, is
 * CREATED) and the host still has the name. The records wait in the
 * watch's queue (at most 64 KiB, past that the next call gets
 * STATUS_NOTIFY_ENUM_DIR, as when the system's buffer overflows).
 *
 * The program's call is completed as the I/O manager would: the queue
 * copied into its buffer (STATUS_NOTIFY_ENUM_DIR when it does not fit, the
 * records dropped), its status block, its event, its APC queued to the
 * thread that asked, or a packet on the completion port associated with its
 * handle (learnt from NtSetInformationFile, kept by net.c). On a
 * synchronous handle the call returns pending under Wine (as Wine's own
 * does) and waits for the completion on Windows. CancelIoEx (hooked in
 * net_async.c) and CancelIo (the calling thread's) on the program's handle
 * complete its waiting calls with STATUS_CANCELLED; closing the handle ends
 * them with the status the system ended FVM's request with (Wine:
 * STATUS_HANDLES_CLOSED). Not seen, so: a wait on the program's handle
 * itself (FindFirstChangeNotification waits so) is not signalled;
 * NtNotifyChangeDirectoryFileEx with extended records is passed on to the
 * box copy unrewritten. */
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
static BOOL g_on_wine;

#define FILE_MODE_INFORMATION_CLASS 16
#define MODE_SYNC_MASK (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT)
#define FILE_NOTIFY_INFORMATION_CLASS 1
#ifndef STATUS_NOTIFY_CLEANUP
#define STATUS_NOTIFY_CLEANUP ((NTSTATUS)0x0000010BL)
#endif
#ifndef STATUS_NOTIFY_ENUM_DIR
#define STATUS_NOTIFY_ENUM_DIR ((NTSTATUS)0x0000010CL)
#endif

#define WATCH_DATA (64 * 1024)

/* One of the program's calls, waiting for records. */
typedef struct notify_job {
    struct notify_job *next;
    HANDLE handle, event, thread, done;   /* done: a synchronous call waits on it (Windows) */
    PIO_APC_ROUTINE apc;
    PVOID apc_context;
    PIO_STATUS_BLOCK io;
    PVOID buffer;
    ULONG length;
    DWORD tid;                     /* the thread that asked (CancelIo) */
    NTSTATUS status;               /* the result, once taken off the watch */
    ULONG_PTR info;
} notify_job;

struct watch;

/* FVM's own request on one side (the box copy or the host folder). */
typedef struct side {
    struct watch *w;
    HANDLE handle, event;
    BOOL host;
    IO_STATUS_BLOCK io;
    uint8_t data[WATCH_DATA] __attribute__((aligned(8)));
} side;

/* A watched host folder, kept with the program's handle and by FVM's
 * requests in flight. */
typedef struct watch {
    volatile LONG refs;
    SRWLOCK lock;                  /* everything below */
    HANDLE program;                /* the program's handle */
    BOOL closed, started, overflow;
    BOOL box_pending;              /* FVM's request on the box copy is in flight */
    NTSTATUS ended;                /* the status FVM's request ended with when closed */
    ULONG mode, filter;
    BOOLEAN subtree;
    notify_job *jobs;              /* the program's calls waiting, oldest first */
    size_t queued, last;           /* bytes of records waiting; offset of the last one */
    side box, host;
    uint8_t queue[WATCH_DATA] __attribute__((aligned(8)));
    uint8_t scratch[WATCH_DATA] __attribute__((aligned(8)));
    ntpath dir;                    /* the host folder */
} watch;

/* Every live watch, for CancelIoEx / CancelIo by handle. */
typedef struct watch_link {
    struct watch_link *next;
    watch *w;
} watch_link;
static watch_link *g_watches;
static SRWLOCK g_watches_lock = SRWLOCK_INIT;

static void watch_release(watch *w)
{
    if (InterlockedDecrement(&w->refs) == 0) {
        if (w->box.event)
            CloseHandle(w->box.event);
        if (w->host.event)
            CloseHandle(w->host.event);
        VirtualFree(w, 0, MEM_RELEASE);
    }
}

static void copy_watch(void *data, void *ctx)
{
    watch *w = data;
    InterlockedIncrement(&w->refs);
    *(watch **)ctx = w;
}

static HANDLE open_dir(const uint16_t *path, size_t len)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE h;
    init_attributes(&oa, &us, path, len, NULL);
    return real_NtOpenFile(&h, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, FILE_DIRECTORY_FILE) >= 0
               ? h
               : NULL;
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
            struct { ULONG mode; } mode = {0};
            IO_STATUS_BLOCK io;
            NtQueryInformationFile(handle, &io, &mode, sizeof mode, FILE_MODE_INFORMATION_CLASS);
            watch *made = VirtualAlloc(NULL, sizeof *made, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
            watch_link *link = HeapAlloc(GetProcessHeap(), 0, sizeof *link);
            if (made && link) {
                made->refs = 2;   /* the program's handle's, and the caller's */
                InitializeSRWLock(&made->lock);
                made->program = handle;
                made->mode = mode.mode & MODE_SYNC_MASK;
                made->box.w = made->host.w = made;
                made->host.host = TRUE;
                made->box.handle = open_dir(s->box, s->box_len);
                made->host.handle = open_dir(s->dir.path, s->dir.len);
                made->box.event = CreateEventW(NULL, TRUE, FALSE, NULL);
                made->host.event = CreateEventW(NULL, TRUE, FALSE, NULL);
                memcpy(&made->dir, &s->dir, sizeof made->dir);
                if (made->box.handle && made->box.event && made->host.event &&
                    handle_put(handle, &file_virtualizer, FILE_TAG_WATCH, made)) {
                    w = made;
                    made = NULL;
                    link->w = w;
                    AcquireSRWLockExclusive(&g_watches_lock);
                    link->next = g_watches;
                    g_watches = link;
                    ReleaseSRWLockExclusive(&g_watches_lock);
                    link = NULL;
                }
            }
            if (made) {
                if (made->box.handle)
                    real_NtClose(made->box.handle);
                if (made->host.handle)
                    real_NtClose(made->host.handle);
                made->refs = 1;
                watch_release(made);
            }
            if (link)
                HeapFree(GetProcessHeap(), 0, link);
        }
    }
    scratch_release(s);
    return w;
}

/* Completes the program's call as the I/O manager would. */
static void job_deliver(notify_job *job)
{
    /* The count before the status: a poller that sees the status final
     * reads the count of the same report. */
    guard_copy(&job->io->Information, &job->info, sizeof job->info);
    MemoryBarrier();
    guard_copy(&job->io->Status, &job->status, sizeof job->status);
    if (job->event)
        SetEvent(job->event);   /* a program's tag bits in it were dropped when it was kept */
    HANDLE port;
    ULONG_PTR key;
    if (job->apc) {
        if (job->thread && queue_apc_thread)
            queue_apc_thread(job->thread, (void *)job->apc, job->apc_context, job->io, NULL);
    } else if (job->apc_context && set_io_completion && net_completion_port_of(job->handle, &port, &key)) {
        set_io_completion(port, key, job->apc_context, job->status, job->info);
    }
    if (job->done) {
        SetEvent(job->done);   /* the waiting call delivers nothing more and frees it */
        return;
    }
    if (job->thread)
        CloseHandle(job->thread);
    HeapFree(GetProcessHeap(), 0, job);
}

/* Takes the oldest waiting call off the watch with what the queue holds
 * (the caller holds the lock), or NULL. */
static notify_job *take_ready(watch *w)
{
    notify_job *job = w->jobs;
    if (!job)
        return NULL;
    if (w->closed) {
        if (!w->ended && w->box_pending)
            return NULL;   /* the status FVM's own request ends with is yet to come */
        job->status = w->ended ? w->ended : STATUS_NOTIFY_CLEANUP;
        job->info = 0;
    } else if (w->overflow) {
        job->status = STATUS_NOTIFY_ENUM_DIR;
        job->info = 0;
    } else if (w->queued) {
        if (!job->buffer) {
            job->status = STATUS_SUCCESS;   /* as Wine: no buffer, no records */
            job->info = 0;
        } else if (w->queued > job->length) {
            job->status = STATUS_NOTIFY_ENUM_DIR;
            job->info = 0;
        } else {
            job->status = guard_copy(job->buffer, w->queue, w->queued) ? STATUS_SUCCESS : STATUS_ACCESS_VIOLATION;
            job->info = job->status == STATUS_SUCCESS ? w->queued : 0;
        }
    } else {
        return NULL;
    }
    if (!w->closed) {
        w->overflow = FALSE;
        w->queued = 0;
    }
    w->jobs = job->next;
    return job;
}

static void deliver_ready(watch *w)
{
    for (;;) {
        AcquireSRWLockExclusive(&w->lock);
        notify_job *job = take_ready(w);
        ReleaseSRWLockExclusive(&w->lock);
        if (!job)
            return;
        job_deliver(job);
    }
}

/* Is name (relative to the watched folder) a host entry the box copied up
 * (core/notifyrec.h)? Still the host's content when the box copy has the
 * host file's size and last write (copy_up_file copies both; a copy made
 * by an overwriting open is a new, empty file), and always for a folder. */
static int is_copy_up(void *ctx, const uint16_t *name, size_t len)
{
    watch *w = ctx;
    file_scratch *s = scratch_acquire();
    if (!s)
        return 0;
    fvm_error err;
    int copy_up = 0;
    FILE_NETWORK_OPEN_INFORMATION host, box;
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    if (ntpath_join(&w->dir, name, len, NULL, &s->path, &err) == FVM_OK &&
        index_entry_state(&s->path, s->key, BOXINDEX_MAX_KEY_UNITS + 1) == BOXINDEX_COPIED) {
        init_attributes(&oa, &us, s->path.path, s->path.len, NULL);
        if (real_NtQueryFullAttributesFile(&oa, &host) >= 0) {
            /* A folder's copy is an empty folder merged over the host's: no change. */
            copy_up = host.FileAttributes & FILE_ATTRIBUTE_DIRECTORY ? NOTIFYREC_COPY_UP_UNCHANGED
                                                                      : NOTIFYREC_COPY_UP;
            if (copy_up == NOTIFYREC_COPY_UP &&
                ntpath_to_box(&s->path, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                              &err) == FVM_OK) {
                init_attributes(&oa, &us, s->box, s->box_len, NULL);
                if (real_NtQueryFullAttributesFile(&oa, &box) >= 0 &&
                    box.EndOfFile.QuadPart == host.EndOfFile.QuadPart &&
                    box.LastWriteTime.QuadPart == host.LastWriteTime.QuadPart)
                    copy_up = NOTIFYREC_COPY_UP_UNCHANGED;
            }
        }
    }
    scratch_release(s);
    return copy_up;
}

/* Is the host's record for name invisible in the box (the box copied,
 * made or deleted that name, or a folder above it)? */
static int box_shadows(void *ctx, const uint16_t *name, size_t len)
{
    watch *w = ctx;
    file_scratch *s = scratch_acquire();
    if (!s)
        return 0;
    fvm_error err;
    int shadowed = ntpath_join(&w->dir, name, len, NULL, &s->path, &err) == FVM_OK &&
                   index_check(&s->path, s->key, BOXINDEX_MAX_KEY_UNITS + 1) != INDEX_UNTOUCHED;
    scratch_release(s);
    return shadowed;
}

/* Appends a side's records, rewritten, to the queue (the caller holds the
 * lock). */
static void queue_records(watch *w, side *sd)
{
    size_t in_len = sd->io.Information < WATCH_DATA ? sd->io.Information : WATCH_DATA;
    size_t out_len = 0;
    notifyrec_result r = sd->host ? notifyrec_filter(sd->data, in_len, box_shadows, w, w->scratch, WATCH_DATA,
                                                     &out_len)
                                  : notifyrec_translate(sd->data, in_len, w->filter, is_copy_up, w, w->scratch,
                                                        WATCH_DATA, &out_len);
    if (r == NOTIFYREC_EMPTY)
        return;
    if (r != NOTIFYREC_OK ||
        notifyrec_append(w->queue, WATCH_DATA, &w->queued, &w->last, w->scratch, out_len) != NOTIFYREC_OK)
        w->overflow = TRUE;
}

static void CALLBACK side_ready(PTP_CALLBACK_INSTANCE instance, PVOID context, PTP_WAIT wait, TP_WAIT_RESULT result);

/* Makes FVM's request on one side (the caller holds the lock); FALSE when
 * it could not be made (the side stops). */
static BOOL side_issue(side *sd)
{
    watch *w = sd->w;
    if (w->closed || !sd->handle)
        return FALSE;
    PTP_WAIT wait = CreateThreadpoolWait(side_ready, sd, NULL);
    if (!wait)
        return FALSE;
    sd->io.Status = STATUS_PENDING;
    sd->io.Information = 0;
    ResetEvent(sd->event);
    NTSTATUS status = real_NtNotifyChangeDirectoryFile(sd->handle, sd->event, NULL, NULL, &sd->io, sd->data,
                                                       WATCH_DATA, w->filter, w->subtree);
    if (status < 0 && status != STATUS_PENDING) {
        CloseThreadpoolWait(wait);
        return FALSE;
    }
    if (status != STATUS_PENDING) {
        sd->io.Status = status;
        SetEvent(sd->event);
    }
    InterlockedIncrement(&w->refs);
    if (!sd->host)
        w->box_pending = TRUE;
    SetThreadpoolWait(wait, sd->event, NULL);
    return TRUE;
}

static void CALLBACK side_ready(PTP_CALLBACK_INSTANCE instance, PVOID context, PTP_WAIT wait, TP_WAIT_RESULT result)
{
    (void)instance, (void)result;
    CloseThreadpoolWait(wait);
    side *sd = context;
    watch *w = sd->w;
    AcquireSRWLockExclusive(&w->lock);
    NTSTATUS status = sd->io.Status;
    if (!sd->host)
        w->box_pending = FALSE;
    if (w->closed) {
        if (!sd->host && !w->ended)
            w->ended = status;   /* how the system ends a request whose handle closed */
    } else if (status == STATUS_SUCCESS) {
        queue_records(w, sd);
        side_issue(sd);
    } else if (status == STATUS_NOTIFY_ENUM_DIR) {
        w->overflow = TRUE;
        side_issue(sd);
    }
    ReleaseSRWLockExclusive(&w->lock);
    deliver_ready(w);
    watch_release(w);
}

void file_watch_closed(void *data)
{
    watch *w = data;
    AcquireSRWLockExclusive(&g_watches_lock);
    for (watch_link **at = &g_watches; *at; at = &(*at)->next)
        if ((*at)->w == w) {
            watch_link *gone = *at;
            *at = gone->next;
            HeapFree(GetProcessHeap(), 0, gone);
            break;
        }
    ReleaseSRWLockExclusive(&g_watches_lock);
    AcquireSRWLockExclusive(&w->lock);
    w->closed = TRUE;
    BOOL started = w->started;
    real_NtClose(w->box.handle);
    if (w->host.handle)
        real_NtClose(w->host.handle);
    ReleaseSRWLockExclusive(&w->lock);
    /* Without a request in flight nothing else will end the waiting calls. */
    if (!started)
        deliver_ready(w);
    watch_release(w);
}

/* The program's call, completed by FVM. */
static NTSTATUS notify_owned(watch *w, HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                             PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, ULONG filter, BOOLEAN subtree)
{
    if (!filter || (filter & ~0xFFFu)) {
        watch_release(w);
        return STATUS_INVALID_PARAMETER;
    }
    notify_job *job = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *job);
    if (!job) {
        watch_release(w);
        return STATUS_NO_MEMORY;
    }
    job->handle = handle;
    job->event = (HANDLE)((ULONG_PTR)event & ~(ULONG_PTR)3);   /* handle tag bits (kernel32's "no port" bit) */
    job->apc = apc;
    job->apc_context = apc_context;
    job->io = io;
    job->buffer = buffer;
    job->length = length;
    job->tid = GetCurrentThreadId();
    if (apc)
        DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &job->thread, 0, FALSE,
                        DUPLICATE_SAME_ACCESS);
    /* A synchronous handle's call waits for its completion, except under
     * Wine, whose own call returns pending there too. */
    BOOL waits = w->mode && !g_on_wine;
    BOOLEAN alertable = (w->mode & FILE_SYNCHRONOUS_IO_ALERT) != 0;
    if (waits)
        job->done = CreateEventW(NULL, TRUE, FALSE, NULL);
    waits = job->done != NULL;
    if (job->event)
        ResetEvent(job->event);   /* as the I/O manager does when a request starts */
    IO_STATUS_BLOCK pending = {.Status = STATUS_PENDING, .Information = 0};
    guard_copy(io, &pending, sizeof pending);

    AcquireSRWLockExclusive(&w->lock);
    if (!w->started) {
        /* The first call's filter and subtree flag hold for the handle. */
        w->filter = filter;
        w->subtree = subtree;
        w->started = side_issue(&w->box);
        if (w->started)
            side_issue(&w->host);
    }
    BOOL started = w->started;
    if (started) {
        notify_job **at = &w->jobs;
        while (*at)
            at = &(*at)->next;
        *at = job;
    }
    ReleaseSRWLockExclusive(&w->lock);
    if (!started) {
        if (job->thread)
            CloseHandle(job->thread);
        if (job->done)
            CloseHandle(job->done);
        HeapFree(GetProcessHeap(), 0, job);
        watch_release(w);
        return STATUS_NO_MEMORY;
    }
    deliver_ready(w);
    watch_release(w);
    if (!waits)
        return STATUS_PENDING;
    /* Alerted (an APC ran): the call is still on the watch, wait on. */
    NTSTATUS waited;
    do
        waited = NtWaitForSingleObject(job->done, alertable, NULL);
    while (waited == STATUS_USER_APC || waited == STATUS_ALERTED);
    NTSTATUS status = job->status;
    CloseHandle(job->done);
    if (job->thread)
        CloseHandle(job->thread);
    HeapFree(GetProcessHeap(), 0, job);
    return status;
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
    NTSTATUS status = real_NtNotifyChangeDirectoryFileEx(w ? w->box.handle : handle, event, apc, apc_context, io,
                                                         buffer, length, filter, subtree, klass);
    if (w)
        watch_release(w);
    return status;
}

/* Takes the program's waiting calls on handle off their watch (io: the one
 * with that status block; tid: the calling thread's) and completes them
 * with STATUS_CANCELLED. */
static BOOL cancel_jobs(HANDLE handle, PIO_STATUS_BLOCK io, DWORD tid)
{
    notify_job *cancelled = NULL;
    AcquireSRWLockShared(&g_watches_lock);
    for (watch_link *link = g_watches; link; link = link->next) {
        watch *w = link->w;
        if (w->program != handle)
            continue;
        AcquireSRWLockExclusive(&w->lock);
        for (notify_job **at = &w->jobs; *at;) {
            notify_job *job = *at;
            if ((!io || job->io == io) && (!tid || job->tid == tid)) {
                *at = job->next;
                job->next = cancelled;
                cancelled = job;
            } else {
                at = &job->next;
            }
        }
        ReleaseSRWLockExclusive(&w->lock);
    }
    ReleaseSRWLockShared(&g_watches_lock);
    BOOL found = cancelled != NULL;
    while (cancelled) {
        notify_job *job = cancelled;
        cancelled = job->next;
        job->status = STATUS_CANCELLED;
        job->info = 0;
        job_deliver(job);
    }
    return found;
}

BOOL file_notify_cancel(HANDLE handle, PIO_STATUS_BLOCK io)
{
    return g_watches && cancel_jobs(handle, io, 0);
}

/* CancelIo: the calling thread's requests on the handle, FVM's among them. */
static NTSTATUS NTAPI box_NtCancelIoFile(HANDLE handle, PIO_STATUS_BLOCK status_out)
{
    if (g_watches)
        cancel_jobs(handle, NULL, GetCurrentThreadId());
    return real_NtCancelIoFile(handle, status_out);
}

void file_notify_hooks(hook_table *table)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    set_io_completion = (NtSetIoCompletion_fn)(void *)GetProcAddress(ntdll, "NtSetIoCompletion");
    queue_apc_thread = (NtQueueApcThread_fn)(void *)GetProcAddress(ntdll, "NtQueueApcThread");
    g_on_wine = GetProcAddress(ntdll, "wine_get_version") != NULL;
    FVM_HOOK(table, "ntdll.dll", NtNotifyChangeDirectoryFile);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtNotifyChangeDirectoryFileEx);
    FVM_HOOK(table, "ntdll.dll", NtCancelIoFile);
}

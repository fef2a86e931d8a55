/* net_async.c - socket requests FVM completes itself (issue 11): AcceptEx
 * (IOCTL_AFD_WINE_ACCEPT_INTO) when accept: rules or the box's port space
 * must see the connection, and an overlapped recvfrom / WSARecvFrom /
 * WSARecvMsg in an isolated box, whose source address must name box ports.
 *
 * Also accept() (IOCTL_AFD_WINE_ACCEPT) when the caller gives an APC or a
 * completion context instead of an event to wait on (Winsock never does;
 * a program that drives the driver itself may): decided the same way, a
 * refused connection closed and the request made again.
 *
 * The idea. These requests complete after the program's call returns, and
 * what FVM must look at (the peer, the addresses) arrives with the
 * completion, which goes straight to the program (its event, APC or
 * completion port). So the request is made again as FVM's own: the same
 * socket and parameters, FVM's event and status block, no APC and no
 * completion context (nothing reaches the program's port), and for AcceptEx
 * a private output buffer. The program is told STATUS_PENDING. When FVM's
 * request completes (a thread-pool wait on its event), FVM decides and
 * rewrites, then completes the program's request as the driver would: its
 * status block, its event, its APC (queued to the thread that asked), or a
 * packet with the byte count on the completion port the socket is
 * associated with (learnt when the program associated it:
 * NtSetInformationFile(FileCompletionInformation), file.c tells net.c).
 * Wine's IOCTL_AFD_WINE_COMPLETE_ASYNC is not used for this: it posts
 * nothing for a socket set to skip the port on success, and no byte count.
 *
 * Cancelling: CancelIoEx(socket, overlapped) names the program's status
 * block, which the driver does not know; NtCancelIoFileEx is hooked here and
 * cancels FVM's request for it (which then completes the program's with
 * STATUS_CANCELLED). CancelIo (the calling thread's requests) and closing the
 * socket reach FVM's request as they would the program's: it was made on
 * the program's thread, on its handle.
 *
 * AcceptEx refusal: the connection is shut down at once with no linger (the
 * peer sees it closed, then reset), the program's buffer is left alone, and
 * its request fails with STATUS_CONNECTION_REFUSED (WSAECONNREFUSED, what
 * WSAAccept gives for a connection its condition function refused); the
 * accepting socket is spent, as after any failed AcceptEx the program closes
 * it. */
#include "runtime/net.h"

#include "runtime/file.h"
#include "runtime/guard.h"

#define AFD_WINE_SHUTDOWN      CTL_CODE(FILE_DEVICE_NETWORK, 204, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_SET_SO_LINGER CTL_CODE(FILE_DEVICE_NETWORK, 226, METHOD_BUFFERED, FILE_ANY_ACCESS)

typedef NTSTATUS (NTAPI *NtSetIoCompletion_fn)(HANDLE, ULONG_PTR, PVOID, NTSTATUS, SIZE_T);
typedef NTSTATUS (NTAPI *NtQueueApcThread_fn)(HANDLE, void *, PVOID, PVOID, PVOID);
typedef NTSTATUS (NTAPI *NtCancelIoFileEx_fn)(HANDLE, PIO_STATUS_BLOCK, PIO_STATUS_BLOCK);
static NtSetIoCompletion_fn real_NtSetIoCompletion;
static NtQueueApcThread_fn real_NtQueueApcThread;
static NtCancelIoFileEx_fn real_NtCancelIoFileEx;

typedef enum {
    JOB_ACCEPT,          /* AcceptEx: into an accepting socket */
    JOB_ACCEPT_HANDLE,   /* accept() completed by APC or port: a new socket's handle */
    JOB_RECV
} job_kind;

typedef struct io_job {
    struct io_job *next;           /* g_jobs: requests in flight (for cancelling) */
    job_kind kind;
    HANDLE handle, event, mine, thread;
    PIO_APC_ROUTINE apc;
    PVOID apc_context;
    PIO_STATUS_BLOCK io;           /* the program's */
    IO_STATUS_BLOCK my_io;
    HANDLE acceptor;               /* JOB_ACCEPT */
    afd_accept_into accept;
    uint8_t *out;                  /* the program's output buffer (JOB_ACCEPT) */
    ULONG out_length;
    afd_recvmsg recv;              /* JOB_RECV */
    ULONG code;                    /* JOB_ACCEPT_HANDLE: the request, to make again */
    uint8_t in[64];
    ULONG in_length;
    uint8_t buf[];                 /* FVM's output buffer (JOB_ACCEPT) */
} io_job;

static io_job *g_jobs;
static SRWLOCK g_jobs_lock = SRWLOCK_INIT;

void net_async_start(void)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    real_NtSetIoCompletion = (NtSetIoCompletion_fn)(void *)GetProcAddress(ntdll, "NtSetIoCompletion");
    real_NtQueueApcThread = (NtQueueApcThread_fn)(void *)GetProcAddress(ntdll, "NtQueueApcThread");
}

static void job_unlink(io_job *job)
{
    AcquireSRWLockExclusive(&g_jobs_lock);
    for (io_job **at = &g_jobs; *at; at = &(*at)->next)
        if (*at == job) {
            *at = job->next;
            break;
        }
    ReleaseSRWLockExclusive(&g_jobs_lock);
}

static void job_free(io_job *job)
{
    if (job->thread)
        CloseHandle(job->thread);
    if (job->mine)
        CloseHandle(job->mine);
    HeapFree(GetProcessHeap(), 0, job);
}

/* AcceptEx done: decide, rewrite, copy to the program's buffer. */
static NTSTATUS accept_done(io_job *job, ULONG_PTR *info)
{
    size_t local_at = job->accept.recv_len, remote_at = local_at + job->accept.local_len;
    if (remote_at + 4 <= job->out_length && job->accept.local_len >= 4) {
        int local_len, remote_len;
        memcpy(&local_len, job->buf + local_at, 4);
        memcpy(&remote_len, job->buf + remote_at, 4);
        if (local_len < 0 || (size_t)local_len > job->accept.local_len - 4)
            local_len = 0;
        if (remote_len < 0 || (size_t)remote_len > job->out_length - remote_at - 4)
            remote_len = 0;
        if (net_accepted(job->acceptor, job->buf + local_at + 4, (size_t)local_len, job->buf + remote_at + 4,
                         (size_t)remote_len) < 0) {
            struct { uint16_t onoff, linger; } no_linger = {1, 0};
            int how = 2;   /* SD_BOTH */
            IO_STATUS_BLOCK sio;
            net_real_ioctl(job->acceptor, NULL, NULL, NULL, &sio, AFD_WINE_SET_SO_LINGER, &no_linger,
                           sizeof no_linger, NULL, 0);
            net_real_ioctl(job->acceptor, NULL, NULL, NULL, &sio, AFD_WINE_SHUTDOWN, &how, sizeof how, NULL, 0);
            *info = 0;
            return STATUS_CONNECTION_REFUSED;
        }
    }
    return guard_copy(job->out, job->buf, job->out_length) ? STATUS_SUCCESS : STATUS_ACCESS_VIOLATION;
}

static void job_finish(io_job *job)
{
    job_unlink(job);
    NTSTATUS status = job->my_io.Status;
    ULONG_PTR info = job->my_io.Information;
    if (status >= 0 && job->kind == JOB_ACCEPT) {
        status = accept_done(job, &info);
    } else if (status >= 0 && job->kind == JOB_ACCEPT_HANDLE) {
        if (!guard_copy(job->out, job->buf, job->out_length))
            status = STATUS_ACCESS_VIOLATION;
    } else if (status >= 0) {
        int len = 0;
        if (guard_copy(&len, job->recv.addr_len, sizeof len) && len > 0)
            net_address_as_box_sees(job->recv.addr, (size_t)len, net_socket_portmap_proto(job->handle), FALSE);
    }
    IO_STATUS_BLOCK done = {.Status = status, .Information = info};
    guard_copy(job->io, &done, sizeof done);
    if (job->event)
        SetEvent((HANDLE)((ULONG_PTR)job->event & ~(ULONG_PTR)1));   /* ws2_32's low bit: "no port" */
    HANDLE port;
    ULONG_PTR key;
    if (job->apc) {
        if (job->thread && real_NtQueueApcThread)
            real_NtQueueApcThread(job->thread, (void *)job->apc, job->apc_context, job->io, NULL);
    } else if (job->apc_context && real_NtSetIoCompletion && net_completion_port_of(job->handle, &port, &key)) {
        real_NtSetIoCompletion(port, key, job->apc_context, status, info);
    }
    job_free(job);
}

static void CALLBACK job_ready(PTP_CALLBACK_INSTANCE instance, PVOID context, PTP_WAIT wait, TP_WAIT_RESULT result);

/* accept() by APC or port: a refused connection is closed and the request
 * made again, so the program only ever gets an allowed one (as a blocking
 * accept). TRUE when it was made again (the job goes on). */
static BOOL accept_again(io_job *job)
{
    uint32_t value = 0;
    if (job->my_io.Status != STATUS_SUCCESS || job->out_length < sizeof value)
        return FALSE;
    memcpy(&value, job->buf, sizeof value);
    HANDLE conn = (HANDLE)(ULONG_PTR)value;
    if (net_accepted_socket(conn) >= 0)
        return FALSE;
    CloseHandle(conn);   /* the peer sees its connection closed */
    ResetEvent(job->mine);
    job->my_io.Status = STATUS_PENDING;
    job->my_io.Information = 0;
    PTP_WAIT wait = CreateThreadpoolWait(job_ready, job, NULL);
    if (!wait) {
        job->my_io.Status = STATUS_NO_MEMORY;
        return FALSE;
    }
    NTSTATUS status = net_real_ioctl(job->handle, job->mine, NULL, NULL, &job->my_io, job->code,
                                     job->in_length ? job->in : NULL, job->in_length, job->buf, job->out_length);
    if (status < 0 && status != STATUS_PENDING) {
        CloseThreadpoolWait(wait);
        job->my_io.Status = status;
        return FALSE;
    }
    if (status != STATUS_PENDING)
        SetEvent(job->mine);
    SetThreadpoolWait(wait, job->mine, NULL);
    return TRUE;
}

static void CALLBACK job_ready(PTP_CALLBACK_INSTANCE instance, PVOID context, PTP_WAIT wait, TP_WAIT_RESULT result)
{
    (void)instance, (void)result;
    CloseThreadpoolWait(wait);
    io_job *job = context;
    if (job->kind == JOB_ACCEPT_HANDLE && accept_again(job))
        return;
    job_finish(job);
}

static io_job *job_new(job_kind kind, size_t extra, HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                       PVOID apc_context, PIO_STATUS_BLOCK io)
{
    io_job *job = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *job + extra);
    if (!job)
        return NULL;
    job->kind = kind;
    job->handle = handle;
    job->event = event;
    job->apc = apc;
    job->apc_context = apc_context;
    job->io = io;
    job->my_io.Status = STATUS_PENDING;
    if (apc)
        DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &job->thread, 0, FALSE,
                        DUPLICATE_SAME_ACCESS);
    job->mine = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!job->mine) {
        job_free(job);
        return NULL;
    }
    return job;
}

/* Makes FVM's request (code, in, out) for job; the program's answer. */
static NTSTATUS job_start(io_job *job, ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length)
{
    PTP_WAIT wait = CreateThreadpoolWait(job_ready, job, NULL);
    if (!wait) {
        PIO_STATUS_BLOCK io = job->io;
        job_free(job);
        IO_STATUS_BLOCK done = {.Status = STATUS_NO_MEMORY, .Information = 0};
        guard_copy(io, &done, sizeof done);
        return STATUS_NO_MEMORY;
    }
    AcquireSRWLockExclusive(&g_jobs_lock);
    job->next = g_jobs;
    g_jobs = job;
    ReleaseSRWLockExclusive(&g_jobs_lock);
    NTSTATUS status = net_real_ioctl(job->handle, job->mine, NULL, NULL, &job->my_io, code, in, in_length, out,
                                     out_length);
    if (status < 0 && status != STATUS_PENDING) {
        /* Refused at once (a bad socket, a used acceptor): as the driver said. */
        CloseThreadpoolWait(wait);
        job_unlink(job);
        PIO_STATUS_BLOCK io = job->io;
        job_free(job);
        IO_STATUS_BLOCK done = {.Status = status, .Information = 0};
        guard_copy(io, &done, sizeof done);
        return status;
    }
    IO_STATUS_BLOCK pending = {.Status = STATUS_PENDING, .Information = 0};
    guard_copy(job->io, &pending, sizeof pending);
    if (status != STATUS_PENDING)
        SetEvent(job->mine);   /* done at once: finished on the pool all the same, after "pending" */
    SetThreadpoolWait(wait, job->mine, NULL);
    return STATUS_PENDING;
}

NTSTATUS net_accept_into(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                         ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length)
{
    afd_accept_into params;
    if (in_length != sizeof params || !guard_copy(&params, in, sizeof params) || !out || out_length > (16u << 20) ||
        (uint64_t)params.recv_len + params.local_len > out_length) {
        /* Not what ws2_32 sends (12 bytes, an output for the addresses):
         * refused, never passed on undecided. */
        IO_STATUS_BLOCK done = {.Status = STATUS_INVALID_PARAMETER, .Information = 0};
        guard_copy(io, &done, sizeof done);
        return STATUS_INVALID_PARAMETER;
    }
    io_job *job = job_new(JOB_ACCEPT, out_length, handle, event, apc, apc_context, io);
    if (!job) {
        IO_STATUS_BLOCK done = {.Status = STATUS_NO_MEMORY, .Information = 0};
        guard_copy(io, &done, sizeof done);
        return STATUS_NO_MEMORY;
    }
    job->accept = params;
    job->acceptor = (HANDLE)(ULONG_PTR)params.accept_handle;
    job->out = out;
    job->out_length = out_length;
    return job_start(job, code, &job->accept, sizeof job->accept, job->buf, out_length);
}

NTSTATUS net_accept_async(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                          ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length)
{
    io_job *job = NULL;
    if (in_length <= sizeof job->in && out && out_length && out_length <= 64)
        job = job_new(JOB_ACCEPT_HANDLE, out_length, handle, event, apc, apc_context, io);
    if (!job || (in_length && !guard_copy(job->in, in, in_length))) {
        /* Never passed on undecided: an accept FVM cannot make its own is refused. */
        NTSTATUS status = job ? STATUS_ACCESS_VIOLATION : out && out_length && out_length <= 64 && in_length <= 64
                                                              ? STATUS_NO_MEMORY
                                                              : STATUS_INVALID_PARAMETER;
        if (job)
            job_free(job);
        IO_STATUS_BLOCK done = {.Status = status, .Information = 0};
        guard_copy(io, &done, sizeof done);
        return status;
    }
    job->code = code;
    job->in_length = in_length;
    job->out = out;
    job->out_length = out_length;
    return job_start(job, code, in_length ? job->in : NULL, in_length, job->buf, out_length);
}

NTSTATUS net_recvmsg_async(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                           ULONG code, const afd_recvmsg *params, ULONG in_length)
{
    io_job *job = job_new(JOB_RECV, 0, handle, event, apc, apc_context, io);
    if (!job) {
        IO_STATUS_BLOCK done = {.Status = STATUS_NO_MEMORY, .Information = 0};
        guard_copy(io, &done, sizeof done);
        return STATUS_NO_MEMORY;
    }
    job->recv = *params;
    return job_start(job, code, &job->recv, in_length, NULL, 0);
}

/* CancelIoEx(socket, overlapped): the program's status block stands for
 * FVM's request. */
static NTSTATUS NTAPI box_NtCancelIoFileEx(HANDLE handle, PIO_STATUS_BLOCK io, PIO_STATUS_BLOCK status_out)
{
    /* A folder watch FVM completes (file_notify.c). */
    if (!runtime_bypassed() && file_notify_cancel(handle, io)) {
        if (!io)
            real_NtCancelIoFileEx(handle, NULL, status_out);   /* the handle's own requests too */
        IO_STATUS_BLOCK done = {.Status = STATUS_SUCCESS, .Information = 0};
        guard_copy(status_out, &done, sizeof done);
        return STATUS_SUCCESS;
    }
    if (!io || !g_jobs)
        return real_NtCancelIoFileEx(handle, io, status_out);
    /* Under the lock: the job cannot be finished and freed meanwhile (its
     * completion waits for the lock to unlink it). */
    AcquireSRWLockShared(&g_jobs_lock);
    PIO_STATUS_BLOCK mine = NULL;
    for (io_job *job = g_jobs; job && !mine; job = job->next)
        if (job->io == io && job->handle == handle)
            mine = &job->my_io;
    NTSTATUS status = real_NtCancelIoFileEx(handle, mine ? mine : io, status_out);
    ReleaseSRWLockShared(&g_jobs_lock);
    return status;
}

NTSTATUS net_real_cancel_ex(HANDLE handle, PIO_STATUS_BLOCK io, PIO_STATUS_BLOCK status_out)
{
    return real_NtCancelIoFileEx(handle, io, status_out);
}

void net_async_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtCancelIoFileEx);
}

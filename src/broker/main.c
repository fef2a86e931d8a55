/* main.c - fvm-broker.exe, the per-box service process.
 *
 * One broker runs per running box. It owns the box's job object, so the job
 * (and with it the box's membership list, its kill switch and, on Windows,
 * its limits) outlives whichever fvm.exe started the first process, and it
 * exits once the box has no process left. Later capabilities (the audit
 * writer, quotas, decisions needing a global view) live here too.
 *
 * Guard: each new member must run the runtime or is stopped (guard.c).
 *
 * Membership: the broker keeps its own list of the box's processes, from
 * the job's own process list (read on every wake-up and before each `fvm
 * ps` answer) and, faster, the job's completion-port messages (NEW_PROCESS
 * / EXIT_PROCESS), and serves it on the box's control pipe
 * (common/brokerproto.h) to `fvm ps`.
 *
 * Start-up handshake: fvm run, holding the box lock, starts the broker with an
 * inherited event; the broker creates the job and the named "ready" event and
 * signals. Exit: when the job reports that its last process ended (or, polled,
 * that it is empty), the broker takes the box lock, checks again and only then
 * closes its objects, so a concurrent fvm run either sees it alive with the
 * job open or starts a fresh one. */
#include <windows.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "common/boxcfg.h"
#include "common/brokerproto.h"
#include "broker/broker.h"
#include "core/resolvemsg.h"
#include "common/boxserver.h"
#include "common/boxlife.h"
#include "core/brokermsg.h"

static CRITICAL_SECTION members_lock;
static uint32_t members[FVM_BROKER_MAX_MEMBERS];
static uint32_t member_count;
static HANDLE g_members_job;
/* Orders whole membership changes (a sync against the job's list, a port
 * message): a sync from `fvm ps`'s thread must not compare a list read
 * before a port message with members changed after it. */
static CRITICAL_SECTION sync_lock;

/* Adds a pid unless it is already a member; TRUE if it was added. Callers
 * hold members_lock. */
static BOOL member_add_locked(uint32_t pid)
{
    for (uint32_t i = 0; i < member_count; i++)
        if (members[i] == pid)
            return FALSE;
    if (member_count >= FVM_BROKER_MAX_MEMBERS)
        return FALSE;
    members[member_count++] = pid;
    return TRUE;
}

/* A process the job reported new (completion port). The procs module and
 * the guard are told once per process, whichever of the port and the job's
 * list shows it first. */
static void member_add(uint32_t pid)
{
    EnterCriticalSection(&members_lock);
    BOOL added = member_add_locked(pid);
    LeaveCriticalSection(&members_lock);
    if (added)
        broker_guard_member(pid, broker_procs_new(pid));
}

/* Whether pid is on the member list (no request to the server; the list
 * can be a wake-up behind the job, see below). */
BOOL broker_member_listed(uint32_t pid)
{
    BOOL listed = FALSE;
    EnterCriticalSection(&members_lock);
    for (uint32_t i = 0; i < member_count && !listed; i++)
        listed = members[i] == pid;
    LeaveCriticalSection(&members_lock);
    return listed;
}

static HANDLE g_job;

/* Membership for the quota and the audit subject is asked of the job
 * itself, never of the list above: the list follows the job (its news, or
 * its process list at the next wake-up), so it can be behind a process's
 * first request, and with no news at all (a box restarted right after it
 * ended gets the previous broker's job back, whose completion port cannot
 * be associated again) it is a wake-up behind. Waiting for the list
 * refused every process of such a box (the quota test that failed now and
 * then). A
 * process is in the job before any of its code runs (fvm run and proc.c
 * assign it while it is suspended; children inherit the job), so the
 * answer is right at its first request. PROCESS_QUERY_INFORMATION, not the
 * limited right: Wine's NtIsProcessInJob asks for it. */
HANDLE broker_open_member(uint32_t pid)
{
    if (!pid)
        return NULL;
    HANDLE process = OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE,
                                 FALSE, pid);
    if (!process)
        return NULL;
    BOOL in_job = FALSE;
    if (!IsProcessInJob(process, g_job, &in_job) || !in_job || WaitForSingleObject(process, 0) != WAIT_TIMEOUT) {
        CloseHandle(process);
        return NULL;
    }
    return process;
}

BOOL broker_is_member(uint32_t pid)
{
    HANDLE process = broker_open_member(pid);
    if (process)
        CloseHandle(process);
    return process != NULL;
}

static void member_remove(uint32_t pid)
{
    BOOL removed = FALSE;
    EnterCriticalSection(&members_lock);
    for (uint32_t i = 0; i < member_count; i++) {
        if (members[i] == pid) {
            members[i] = members[--member_count];
            removed = TRUE;
            break;
        }
    }
    LeaveCriticalSection(&members_lock);
    if (removed) {
        broker_guard_gone(pid);   /* before procs.c closes the handle the guard uses */
        broker_procs_exit(pid);
        broker_net_process_exit(pid);
    }
}

/* Brings the member list in line with the job's own process list. The
 * completion port alone is not enough: a job can outlive its broker (a
 * process of the last run still being torn down holds it), the next broker
 * then opens the same job, and a job takes one completion port only, so
 * that broker would hear of no process at all (`fvm ps` listed nothing
 * after `fvm run A; fvm run B`). The job's list is the truth; the port is
 * the fast path that wakes the broker. Returns FALSE if the list could not
 * be read (the members are then left as they are). */
static BOOL members_sync(void)
{
    /* JOBOBJECT_BASIC_PROCESS_ID_LIST declares its pid array with one
     * element; indexing past it is undefined (GCC read only the first pid),
     * so the reply is read as a plain array: two ULONG counts (one
     * ULONG_PTR on x64), then the pids. */
    static ULONG_PTR ids[1 + FVM_BROKER_MAX_MEMBERS + 1];
    const ULONG_PTR *listed_pids = ids + 1;
    static uint32_t gone[FVM_BROKER_MAX_MEMBERS], fresh[FVM_BROKER_MAX_MEMBERS];
    if (!g_members_job)
        return FALSE;
    EnterCriticalSection(&sync_lock);
    _Static_assert(offsetof(JOBOBJECT_BASIC_PROCESS_ID_LIST, ProcessIdList) == sizeof(ULONG_PTR),
                   "pids follow the two counts");
    memset(ids, 0, sizeof ids[0]);
    if (!QueryInformationJobObject(g_members_job, JobObjectBasicProcessIdList, ids, sizeof ids, NULL)) {
        LeaveCriticalSection(&sync_lock);
        return FALSE;
    }
    uint32_t listed = ((const JOBOBJECT_BASIC_PROCESS_ID_LIST *)ids)->NumberOfProcessIdsInList;
    uint32_t gone_count = 0, fresh_count = 0;
    if (listed > FVM_BROKER_MAX_MEMBERS + 1)
        listed = FVM_BROKER_MAX_MEMBERS + 1;
    EnterCriticalSection(&members_lock);
    for (uint32_t i = 0; i < member_count; i++) {
        BOOL still = FALSE;
        for (uint32_t j = 0; j < listed && !still; j++)
            still = (uint32_t)listed_pids[j] == members[i];
        if (!still)
            gone[gone_count++] = members[i];
    }
    for (uint32_t j = 0; j < listed; j++) {
        uint32_t pid = (uint32_t)listed_pids[j];
        BOOL known = FALSE;
        for (uint32_t i = 0; i < member_count && !known; i++)
            known = members[i] == pid;
        if (!known && fresh_count < FVM_BROKER_MAX_MEMBERS)
            fresh[fresh_count++] = pid;
    }
    /* All the new ones are listed before any is announced, so that a
     * child found in the same pass as its parent sees its parent listed. */
    uint32_t added = 0;
    for (uint32_t i = 0; i < fresh_count; i++)
        if (member_add_locked(fresh[i]))
            fresh[added++] = fresh[i];
    LeaveCriticalSection(&members_lock);
    for (uint32_t i = 0; i < added; i++)
        broker_guard_member(fresh[i], broker_procs_new(fresh[i]));
    for (uint32_t i = 0; i < gone_count; i++)
        member_remove(gone[i]);
    LeaveCriticalSection(&sync_lock);
    return TRUE;
}

/* Connections being served; the broker drains them before it exits, so the
 * last audit records of a box's last process are written, not lost. */
static volatile LONG g_connections;
/* Several threads each keep a pipe instance listening, so that while one
 * of them is between a connection and its next instance a client still
 * finds one (with a single listener, a client arriving in that gap found no
 * instance at all and its audit records were lost). Each instance waiting
 * for the next client is noted: a client may already be connected to it
 * before its thread has counted the connection. */
#define CONTROL_LISTENERS 3
static HANDLE volatile g_listening[CONTROL_LISTENERS] = {INVALID_HANDLE_VALUE, INVALID_HANDLE_VALUE,
                                                         INVALID_HANDLE_VALUE};
static const wchar_t *g_control_pipe_name;

/* True while a connection is being served or has just arrived. */
static BOOL connections_pending(void)
{
    if (g_connections > 0)
        return TRUE;
    for (int i = 0; i < CONTROL_LISTENERS; i++) {
        HANDLE listening = g_listening[i];
        DWORD available = 0;
        /* PeekNamedPipe succeeds only once a client is connected to the
         * instance (it fails with ERROR_PIPE_LISTENING before). */
        if (listening != INVALID_HANDLE_VALUE && PeekNamedPipe(listening, NULL, 0, NULL, &available, NULL))
            return TRUE;
    }
    return FALSE;
}

/* One client of the control pipe: `fvm ps` asks for the members and hangs
 * up; a boxed process keeps its connection and sends one audit message per
 * audited decision. Everything read here is outside input. */
static DWORD WINAPI serve_connection(void *arg)
{
    HANDLE pipe = arg;
    uint8_t *buf = malloc(BROKERMSG_MAX);
    ULONG client_pid = 0;
    audit_sender *sender = NULL;   /* made on the first audit message */
    if (!buf) {
        CloseHandle(pipe);
        return 1;
    }
    GetNamedPipeClientProcessId(pipe, &client_pid);
    for (;;) {
        DWORD got = 0, written;
        if (!ReadFile(pipe, buf, BROKERMSG_MAX, &got, NULL)) {
            if (GetLastError() != ERROR_MORE_DATA)
                break;
            /* An oversized message: drain and drop it. */
            while (!ReadFile(pipe, buf, BROKERMSG_MAX, &got, NULL) && GetLastError() == ERROR_MORE_DATA)
                ;
            continue;
        }
        if (got == strlen(FVM_BROKER_REQ_MEMBERS) && !memcmp(buf, FVM_BROKER_REQ_MEMBERS, got)) {
            static fvm_members_reply reply;
            members_sync();
            EnterCriticalSection(&members_lock);
            reply.version = FVM_BROKER_PROTO_VERSION;
            reply.count = member_count;
            memcpy(reply.pids, members, member_count * sizeof members[0]);
            WriteFile(pipe, &reply, (DWORD)(8 + reply.count * sizeof(uint32_t)), &written, NULL);
            LeaveCriticalSection(&members_lock);
            FlushFileBuffers(pipe);
        } else if (got == strlen(FVM_BROKER_REQ_START) && !memcmp(buf, FVM_BROKER_REQ_START, got)) {
            uint32_t reply[2] = {FVM_BROKER_PROTO_VERSION, broker_procs_grant()};
            WriteFile(pipe, reply, sizeof reply, &written, NULL);
            FlushFileBuffers(pipe);
        } else if (got == strlen(FVM_BROKER_REQ_UNSTART) && !memcmp(buf, FVM_BROKER_REQ_UNSTART, got)) {
            broker_procs_ungrant();
            uint32_t reply[2] = {FVM_BROKER_PROTO_VERSION, 0};
            WriteFile(pipe, reply, sizeof reply, &written, NULL);
            FlushFileBuffers(pipe);
        } else if (brokermsg_is_quota(buf, got)) {
            brokermsg_quota q;
            fvm_error err;
            if (brokermsg_quota_decode(buf, got, &q, &err) != FVM_OK)
                continue;
            if (q.kind == BROKERMSG_FREED) {
                broker_quota_freed();
                continue;
            }
            /* Only a process of the box gets bytes of the box (quota.c asks the job). */
            uint64_t granted = client_pid ? broker_quota_reserve(client_pid, q.bytes, q.leftover) : 0;
            WriteFile(pipe, &granted, sizeof granted, &written, NULL);
        } else if (got == 8 && !memcmp(buf, BROKERMSG_HELLO, 8)) {
            uint32_t ack = 1;
            if (!sender && (sender = malloc(sizeof *sender)) != NULL)
                broker_audit_sender_init(sender, client_pid);
            WriteFile(pipe, &ack, sizeof ack, &written, NULL);
        } else if (got == sizeof(fvm_memory_request) && !memcmp(buf, FVM_BROKER_REQ_MEMORY, 8)) {
            fvm_memory_reply reply;
            size_t reply_len = 0;
            broker_limits_memory(client_pid, buf, got, &reply, &reply_len);
            WriteFile(pipe, &reply, (DWORD)reply_len, &written, NULL);
            FlushFileBuffers(pipe);
        } else if (got == sizeof(fvm_share_request) && !memcmp(buf, FVM_BROKER_REQ_SHARE, 8)) {
            fvm_share_reply reply;
            broker_share_probe(buf, got, &reply);
            WriteFile(pipe, &reply, sizeof reply, &written, NULL);
        } else if (got == sizeof(fvm_io_request) && !memcmp(buf, FVM_BROKER_REQ_IO, 8)) {
            fvm_io_reply reply;
            size_t reply_len = 0;
            broker_limits_io(client_pid, buf, got, &reply, &reply_len);
            WriteFile(pipe, &reply, (DWORD)reply_len, &written, NULL);
        } else if (got == strlen(FVM_BROKER_REQ_STATS) && !memcmp(buf, FVM_BROKER_REQ_STATS, got)) {
            char text[FVM_BROKER_STATS_MAX];
            size_t n = broker_limits_stats(text, sizeof text);
            WriteFile(pipe, text, (DWORD)n, &written, NULL);
            FlushFileBuffers(pipe);
        } else if (portmap_is_request(buf, got)) {
            portmap_reply reply;
            broker_net_request(client_pid, buf, got, &reply);
            WriteFile(pipe, &reply, sizeof reply, &written, NULL);
            FlushFileBuffers(pipe);
        } else if (resolve_is_request(buf, got) || resolve_is_reverse(buf, got)) {
            static const uint8_t refused[RESOLVE_REPLY_HEADER] = {1, 0, 0, 0, 0xfb, 0x2a};   /* version 1, WSANO_RECOVERY */
            uint8_t reply[RESOLVE_REPLY_MAX];   /* more than RESOLVE_NAMES_MAX */
            size_t n = broker_resolve_request(client_pid, buf, got, reply, sizeof reply);
            WriteFile(pipe, n ? reply : refused, n ? (DWORD)n : sizeof refused, &written, NULL);
        } else if (brokermsg_is_index(buf, got)) {
            /* The box index's only writer (index.c): checks the sender and
             * the keys, then writes. */
            uint32_t reply[2] = {FVM_BROKER_PROTO_VERSION, broker_index_request(client_pid, buf, got)};
            WriteFile(pipe, reply, sizeof reply, &written, NULL);
        } else if (brokermsg_is_audit(buf, got)) {
            brokermsg_audit msg;
            fvm_error err;
            if (!sender) {
                sender = malloc(sizeof *sender);
                if (!sender)
                    break;
                broker_audit_sender_init(sender, client_pid);
            }
            /* Only what the message says was decided is the sender's word:
             * pid, image and box are the broker's (audit.c). */
            if (brokermsg_audit_decode(buf, got, &msg, &err) == FVM_OK)
                broker_audit_submit(sender, &msg);
        }
    }
    DisconnectNamedPipe(pipe);
    CloseHandle(pipe);
    free(buf);
    free(sender);
    InterlockedDecrement(&g_connections);
    return 0;
}

/* Accepts connections on the control pipe, each served by its own thread,
 * until the process exits. */
static DWORD WINAPI control_pipe_server(void *arg)
{
    const wchar_t *pipe_name = g_control_pipe_name;
    size_t slot = (size_t)(UINT_PTR)arg;
    for (;;) {
        HANDLE pipe = CreateNamedPipeW(pipe_name, PIPE_ACCESS_DUPLEX,
                                       PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT,
                                       PIPE_UNLIMITED_INSTANCES, sizeof(fvm_members_reply), BROKERMSG_MAX, 0, NULL);
        if (pipe == INVALID_HANDLE_VALUE)
            return 1;
        g_listening[slot] = pipe;
        if (!ConnectNamedPipe(pipe, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) {
            g_listening[slot] = INVALID_HANDLE_VALUE;
            CloseHandle(pipe);
            continue;
        }
        InterlockedIncrement(&g_connections);
        g_listening[slot] = INVALID_HANDLE_VALUE;
        HANDLE thread = CreateThread(NULL, 0, serve_connection, pipe, 0, NULL);
        if (thread) {
            CloseHandle(thread);
        } else {
            InterlockedDecrement(&g_connections);
            CloseHandle(pipe);
        }
    }
}

/* Not the job's own count: a thread-less process Wine left in the job
 * would keep the box running for good (boxlife_job_live_processes). */
static DWORD active_processes(HANDLE job)
{
    return boxlife_job_live_processes(job);
}

int wmain(int argc, wchar_t **argv)
{
    if (argc != 4)
        return 2;
    HANDLE started = (HANDLE)(UINT_PTR)_wcstoui64(argv[1], NULL, 10);
    const wchar_t *box_path = argv[2];

    static wchar_t pipe_name[FVM_OBJ_NAME_MAX];
    wchar_t job_name[FVM_OBJ_NAME_MAX], lock_name[FVM_OBJ_NAME_MAX], ready_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    fvm_box_object_name(box_path, FVM_OBJ_LOCK, lock_name, FVM_OBJ_NAME_MAX);
    fvm_box_object_name(box_path, FVM_OBJ_READY, ready_name, FVM_OBJ_NAME_MAX);
    fvm_box_object_name(box_path, FVM_OBJ_PIPE, pipe_name, FVM_OBJ_NAME_MAX);
    InitializeCriticalSection(&members_lock);
    InitializeCriticalSection(&sync_lock);

    /* In the box's own Wine server: the box runs while this broker lives
     * (common/boxserver.h), whatever its server does after. */
    boxserver_broker_claim(box_path);
    HANDLE job = CreateJobObjectW(NULL, job_name);
    if (!job)
        return 3;
    g_job = job;
    /* The job of a previous broker can outlive it while its last processes
     * are being torn down; it is then reused, and since a job takes only one
     * completion port, the loop below also polls. */
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!port)
        return 4;
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT assoc = {job, port};
    BOOL port_associated = SetInformationJobObject(job, JobObjectAssociateCompletionPortInformation, &assoc,
                                                   sizeof assoc);
    g_members_job = job;
    /* If the broker dies, its job handle closes and the box's processes go
     * with it rather than running on unaccounted. */
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
    memset(&limits, 0, sizeof limits);
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits);

    if (!broker_policy_publish(box_path))
        return 8;
    const wchar_t *box_name = wcsrchr(box_path, L'\\');
    if (!broker_audit_start(box_path, box_name ? box_name + 1 : box_path))
        return 9;
    broker_procs_start(box_path, job);
    if (!broker_guard_start(job))
        return 13;
    broker_limits_start(box_path, job);
    int registry_failed = broker_registry_start(box_path);
    if (registry_failed)
        return registry_failed;
    if (!broker_quota_start(box_path, _wcstoui64(argv[3], NULL, 10)))
        return 7;
    if (!broker_net_start(box_path))
        return 14;
    if (!broker_index_start(box_path))
        return 15;
    int display_failed = broker_display_start(box_path);
    if (display_failed)
        return display_failed;
    HANDLE ready = CreateEventW(NULL, TRUE, TRUE, ready_name);
    HANDLE lock = CreateMutexW(NULL, FALSE, lock_name);
    if (!ready || !lock)
        return 5;
    g_control_pipe_name = pipe_name;
    for (size_t i = 0; i < CONTROL_LISTENERS; i++) {
        HANDLE server = CreateThread(NULL, 0, control_pipe_server, (void *)(UINT_PTR)i, 0, NULL);
        if (!server)
            return 6;
        CloseHandle(server);
    }
    SetEvent(started);
    CloseHandle(started);

    DWORD guard_wait = INFINITE;
    ULONGLONG hashed_at = 0;
    for (;;) {
        DWORD message = 0;
        ULONG_PTR key;
        LPOVERLAPPED data;
        /* Without the port's news the job's list is read every 20 ms, so
         * that new processes, and the box's end, which the run that
         * started it waits for, show without delay. That is the common
         * case for a box run again at once: Wine keeps a job about half a
         * second after its last process has gone, a run started in that
         * time reuses it, and a job takes only one completion port. (With
         * 100 ms, back-to-back runs of nop.exe took 340 ms on average here,
         * 273 ms with 20.) The guard's first looks (guard.c) wake the loop
         * too. */
        DWORD idle_wait = port_associated ? 1000 : 20;
        DWORD wait = guard_wait < idle_wait ? guard_wait : idle_wait;
        BOOL got = GetQueuedCompletionStatus(port, &message, &key, &data, wait);
        BOOL idle = !got && wait == idle_wait;
        /* With the port's news the list is read only when the port is
         * quiet: two requests less per process started. */
        if (idle || !port_associated)
            members_sync();
        broker_procs_poll();
        if (idle && GetTickCount64() - hashed_at >= 1000) {
            broker_hash_bases(box_path);   /* idle: fill in base hashes, at most once a second */
            hashed_at = GetTickCount64();
        }
        EnterCriticalSection(&sync_lock);
        if (got && message == JOB_OBJECT_MSG_NEW_PROCESS)
            member_add((uint32_t)(ULONG_PTR)data);
        if (got && (message == JOB_OBJECT_MSG_EXIT_PROCESS || message == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS))
            member_remove((uint32_t)(ULONG_PTR)data);
        guard_wait = broker_guard_looks();
        LeaveCriticalSection(&sync_lock);
        if (got ? message != JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO : !idle)
            continue;
        if (active_processes(job) != 0)
            continue;
        broker_hash_bases(box_path);   /* before the lock: a new run need not wait for it */
        WaitForSingleObject(lock, INFINITE);
        if (active_processes(job) == 0) {
            /* Every process is gone, so every connection is ending: let the
             * threads read what is still in the pipes. */
            for (int waited = 0; connections_pending() && waited < 5000; waited += 10)
                Sleep(10);
            broker_audit_flush();
            broker_registry_stop();
            broker_limits_stop();
            broker_procs_stop();
            broker_display_stop();
            CloseHandle(ready);
            CloseHandle(job);
            ReleaseMutex(lock);
            return 0;
        }
        ReleaseMutex(lock);
    }
}

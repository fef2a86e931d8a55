/* main.c - fvm-broker.exe, the per-box service process.
 *
 * One broker runs per running box. It owns the box's job object, so the job
 * (and with it the box's membership list, its kill switch and, on Windows,
 * its limits) outlives whichever fvm.exe started the first process, and it
 * exits once the box has no process left. Later capabilities (the audit
 * writer, quotas, decisions needing a global view) live here too.
 *
 * Start-up handshake: fvm run, holding the box lock, starts the broker with an
 * inherited event; the broker creates the job and the named "ready" event and
 * signals. Exit: when the job reports that its last process ended (or, polled,
 * that it is empty), the broker takes the box lock, checks again and only then
 * closes its objects, so a concurrent fvm run either sees it alive with the
 * job open or starts a fresh one. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#include "common/boxcfg.h"

static DWORD active_processes(HANDLE job)
{
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
    if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct, NULL))
        return 0;
    return acct.ActiveProcesses;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc != 3)
        return 2;
    HANDLE started = (HANDLE)(UINT_PTR)_wcstoui64(argv[1], NULL, 10);
    const wchar_t *box_path = argv[2];

    wchar_t job_name[FVM_OBJ_NAME_MAX], lock_name[FVM_OBJ_NAME_MAX], ready_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    fvm_box_object_name(box_path, FVM_OBJ_LOCK, lock_name, FVM_OBJ_NAME_MAX);
    fvm_box_object_name(box_path, FVM_OBJ_READY, ready_name, FVM_OBJ_NAME_MAX);

    HANDLE job = CreateJobObjectW(NULL, job_name);
    if (!job)
        return 3;
    /* The job of a previous broker can outlive it while its last processes
     * are being torn down; it is then reused, and since a job takes only one
     * completion port, the loop below also polls. */
    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!port)
        return 4;
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT assoc = {job, port};
    SetInformationJobObject(job, JobObjectAssociateCompletionPortInformation, &assoc, sizeof assoc);
    /* If the broker dies, its job handle closes and the box's processes go
     * with it rather than running on unaccounted. */
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
    memset(&limits, 0, sizeof limits);
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits);

    HANDLE ready = CreateEventW(NULL, TRUE, TRUE, ready_name);
    HANDLE lock = CreateMutexW(NULL, FALSE, lock_name);
    if (!ready || !lock)
        return 5;
    SetEvent(started);
    CloseHandle(started);

    for (;;) {
        DWORD message = 0;
        ULONG_PTR key;
        LPOVERLAPPED data;
        BOOL got = GetQueuedCompletionStatus(port, &message, &key, &data, 1000);
        if (got && message != JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO)
            continue;
        if (active_processes(job) != 0)
            continue;
        WaitForSingleObject(lock, INFINITE);
        if (active_processes(job) == 0) {
            CloseHandle(ready);
            CloseHandle(job);
            ReleaseMutex(lock);
            return 0;
        }
        ReleaseMutex(lock);
    }
}

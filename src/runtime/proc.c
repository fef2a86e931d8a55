/* proc.c - processes: every process created from inside a box is boxed.
 *
 * All of Windows' creation paths (CreateProcess*, ShellExecute, WinExec,
 * system(), _spawn, cmd chains) end in ntdll!NtCreateUserProcess. The hook
 * forces the new process to start suspended, injects fvm.dll into it
 * (common/inject.c), makes sure it belongs to the box's job object, and only
 * then lets it run (or leaves it suspended if the caller asked for that).
 * If any step fails the new process is terminated before it executes a
 * single instruction of its own, and the caller gets the error. The legacy
 * NtCreateProcess(Ex) path creates a process without injection, so it is
 * refused. */
#include "runtime/runtime.h"

#include "common/inject.h"

#define PROCESS_CREATE_FLAGS_BREAKAWAY       0x00000001
#define THREAD_CREATE_FLAGS_CREATE_SUSPENDED 0x00000001

typedef NTSTATUS (NTAPI *NtCreateUserProcess_fn)(PHANDLE process, PHANDLE thread,
    ACCESS_MASK process_access, ACCESS_MASK thread_access,
    POBJECT_ATTRIBUTES process_attributes, POBJECT_ATTRIBUTES thread_attributes,
    ULONG process_flags, ULONG thread_flags, void *parameters, void *create_info,
    void *attribute_list);
typedef NTSTATUS (NTAPI *NtCreateProcessEx_fn)(PHANDLE process, ACCESS_MASK access,
    POBJECT_ATTRIBUTES attributes, HANDLE parent, ULONG flags, HANDLE section,
    HANDLE debug_port, HANDLE token, ULONG reserved);

static NtCreateUserProcess_fn real_NtCreateUserProcess;
static NtCreateProcessEx_fn real_NtCreateProcessEx;

/* Makes a just-created, still suspended process a member of the box. */
static NTSTATUS box_new_process(HANDLE process)
{
    char why[200];
    NTSTATUS status = fvm_inject_process(process, &g_fvm.config, why, sizeof why);
    if (status < 0) {
        fvm_report("cannot box a new process (%s); it was not started", why);
        return status;
    }
    /* Children inherit the job; a caller could have named another parent
     * (PROC_THREAD_ATTRIBUTE_PARENT_PROCESS), so check and repair. */
    HANDLE job = runtime_box_job();
    BOOL in_job = FALSE;
    if (!job || !IsProcessInJob(process, job, &in_job)) {
        fvm_report("cannot open the box's job object (error %lu); the new process was not started",
                   (unsigned long)GetLastError());
        return STATUS_ACCESS_DENIED;
    }
    if (!in_job && !AssignProcessToJobObject(job, process)) {
        fvm_report("a new process could not be put in the box's job (error %lu); it was not started",
                   (unsigned long)GetLastError());
        return STATUS_ACCESS_DENIED;
    }
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI box_NtCreateUserProcess(PHANDLE process, PHANDLE thread,
    ACCESS_MASK process_access, ACCESS_MASK thread_access,
    POBJECT_ATTRIBUTES process_attributes, POBJECT_ATTRIBUTES thread_attributes,
    ULONG process_flags, ULONG thread_flags, void *parameters, void *create_info,
    void *attribute_list)
{
    NTSTATUS status = real_NtCreateUserProcess(process, thread,
        process_access | PROCESS_VM_OPERATION | PROCESS_VM_READ | PROCESS_VM_WRITE |
            PROCESS_QUERY_INFORMATION | PROCESS_SET_QUOTA | PROCESS_TERMINATE,
        thread_access | THREAD_SUSPEND_RESUME, process_attributes, thread_attributes,
        process_flags & ~PROCESS_CREATE_FLAGS_BREAKAWAY,
        thread_flags | THREAD_CREATE_FLAGS_CREATE_SUSPENDED,
        parameters, create_info, attribute_list);
    if (status < 0)
        return status;

    NTSTATUS boxed = box_new_process(*process);
    if (boxed < 0) {
        NtTerminateProcess(*process, boxed);
        CloseHandle(*thread);
        CloseHandle(*process);
        *thread = *process = NULL;
        return boxed;
    }
    if (!(thread_flags & THREAD_CREATE_FLAGS_CREATE_SUSPENDED))
        NtResumeThread(*thread, NULL);
    return status;
}

static NTSTATUS NTAPI box_NtCreateProcessEx(PHANDLE process, ACCESS_MASK access,
    POBJECT_ATTRIBUTES attributes, HANDLE parent, ULONG flags, HANDLE section,
    HANDLE debug_port, HANDLE token, ULONG reserved)
{
    fvm_report("legacy process creation (NtCreateProcessEx) is refused in a box");
    return STATUS_ACCESS_DENIED;
}

static void proc_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtCreateUserProcess);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtCreateProcessEx);
}

const fvm_virtualizer process_virtualizer = {
    .name = "process",
    .policy = POLICY_TYPE_PROCESS,
    .hooks = proc_hooks,
};

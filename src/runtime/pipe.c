/* pipe.c - named pipes and mailslots in the box's namespace.
 *
 * A pipe server made in a box listens on a box-private name:
 *   \\.\pipe\X  (\Device\NamedPipe\X)  ->  \Device\NamedPipe\FVM.<hash>\X
 * and a mailslot likewise (\Device\MailSlot\FVM.<hash>\X). Clients in the
 * box reach it by the plain name; clients on the host or in another box do
 * not, and a boxed client does not reach a host server: a program that
 * checks for its running copy through a pipe finds only its box's copy.
 * The decision on each name is ipc.c's (policy type object, canonical names
 * \Device\NamedPipe\X and \Device\MailSlot\X): cow (default) box-private,
 * open the host's pipe, read a client without write rights (no server), hide,
 * deny. Names of a remote server (\\server\pipe\X) pass unchanged.
 *
 * The paths into the pipe file system:
 *   servers   NtCreateNamedPipeFile, NtCreateMailslotFile (hooked here);
 *   clients   NtCreateFile / NtOpenFile: file.c classifies the name and
 *             hands it to pipe_client_decide;
 *   waits     WaitNamedPipe opens the pipe root and sends FSCTL_PIPE_WAIT
 *             with the name in its input buffer (NtFsControlFile, hooked);
 *   CallNamedPipe is a client open (and a wait) plus a transaction.
 * Name queries on such handles hide the box part (ipc_program_name and
 * ipc_program_pipe_file_name, used by file_name.c). */
#include "runtime/ipc.h"
#include "runtime/guard.h"

#include "runtime/file.h"

#define FSCTL_PIPE_WAIT_CODE 0x00110018

typedef NTSTATUS (NTAPI *NtCreateNamedPipeFile_fn)(PHANDLE, ULONG, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG,
                                                   ULONG, ULONG, ULONG, ULONG, ULONG, ULONG, ULONG, PLARGE_INTEGER);
typedef NTSTATUS (NTAPI *NtCreateMailslotFile_fn)(PHANDLE, ULONG, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG,
                                                  ULONG, PLARGE_INTEGER);
typedef NTSTATUS (NTAPI *NtFsControlFile_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, ULONG, PVOID,
                                             ULONG, PVOID, ULONG);

static NtCreateNamedPipeFile_fn real_NtCreateNamedPipeFile;
static NtCreateMailslotFile_fn real_NtCreateMailslotFile;
static NtFsControlFile_fn real_NtFsControlFile;

/* Rights a `read` client may have. */
#define PIPE_READ_RIGHTS (FILE_READ_DATA | FILE_READ_ATTRIBUTES | FILE_READ_EA | READ_CONTROL | SYNCHRONIZE | GENERIC_READ)

static BOOL local_pipe_name(const uint16_t *path, size_t len)
{
    static const char *const roots[] = {"\\DEVICE\\NAMEDPIPE\\", "\\DEVICE\\MAILSLOT\\"};
    for (int r = 0; r < 2; r++) {
        size_t k = strlen(roots[r]), i = 0;
        for (; i < k && i < len; i++)
            if (fvm_wupcase(path[i]) != (wchar_t)roots[r][i])
                break;
        if (i == k && len > k)
            return TRUE;
    }
    return FALSE;
}

/* \Device\NamedPipe\svcctl: the service manager's RPC endpoint. */
static BOOL is_svcctl(const uint16_t *path, size_t len)
{
    static const char name[] = "\\DEVICE\\NAMEDPIPE\\SVCCTL";
    if (len != sizeof name - 1)
        return FALSE;
    for (size_t i = 0; i < len; i++)
        if (fvm_wupcase(path[i]) != (wchar_t)name[i])
            return FALSE;
    return TRUE;
}

/* Decides one canonical pipe or mailslot name into call. */
static ipc_route decide(ipc_call *call, const uint16_t *path, size_t len, BOOL creating, const char *op)
{
    if (!local_pipe_name(path, len))
        return IPC_PASS;
    if (len > IPC_NAME_UNITS) {
        call->status = STATUS_NAME_TOO_LONG;
        return IPC_FAIL;
    }
    memcpy(call->name, path, len * 2);
    call->len = len;
    return ipc_decide_pipe(call, creating, op);
}

NTSTATUS pipe_client_decide(const uint16_t *path, size_t len, ACCESS_MASK access, uint16_t *out, size_t cap,
                            size_t *out_len)
{
    *out_len = 0;
    ipc_call *call = ipc_call_new();
    if (!call)
        return STATUS_NO_MEMORY;
    NTSTATUS status = STATUS_SUCCESS;
    switch (decide(call, path, len, FALSE, "open-pipe")) {
    case IPC_FAIL:
        status = call->status;
        break;
    case IPC_HOST_READ:
        if (access & ~PIPE_READ_RIGHTS) {
            status = STATUS_ACCESS_DENIED;
            break;
        }
        /* fall through */
    case IPC_BOX:
        /* The box's service manager is started on its first client. */
        if (is_svcctl(path, len))
            scm_box_manager_ensure();
        /* fall through */
    case IPC_HOST:
        if (call->target_len > cap) {
            status = STATUS_NAME_TOO_LONG;
            break;
        }
        memcpy(out, call->target, call->target_len * 2);
        *out_len = call->target_len;
        break;
    case IPC_PASS:
        break;
    }
    ipc_call_free(call);
    return status;
}

/* The canonical name of a server's OBJECT_ATTRIBUTES, into s->path:
 * STATUS_SUCCESS, or the status the creation is refused with. A name that
 * cannot be made canonical is refused (and audited), never passed to the
 * host as spelled (issue 19). */
static NTSTATUS server_name(POBJECT_ATTRIBUTES oa, file_scratch *s, const char *op)
{
    static const ntpath_context nt = {.input = NTPATH_INPUT_NT};
    fvm_error err;
    const UNICODE_STRING *name = oa->ObjectName;
    NTSTATUS status = runtime_name_gate(POLICY_TYPE_OBJECT, op, name, OBJNAME_ALLOW_EMPTY | OBJNAME_COLLAPSES);
    if (status < 0)
        return status;
    if (oa->RootDirectory) {
        /* Relative to the pipe or mailslot root (rare): its name, then ours. */
        static const ntpath_context any = {.input = NTPATH_INPUT_ANY};
        union {
            OBJECT_NAME_INFORMATION info;
            uint8_t bytes[sizeof(OBJECT_NAME_INFORMATION) + 512 * 2];
        } root;
        ULONG got;
        if (!real_NtQueryObject || real_NtQueryObject(oa->RootDirectory, ObjectNameInformation, &root, sizeof root,
                                                      &got) < 0 || !root.info.Name.Buffer) {
            runtime_name_refused(POLICY_TYPE_OBJECT, op, "a root handle FVM cannot name",
                                 (const uint16_t *)name->Buffer, name->Length / 2);
            return STATUS_INVALID_HANDLE;
        }
        if (ntpath_normalize((const uint16_t *)root.info.Name.Buffer, root.info.Name.Length / 2, &any, &s->dir,
                             &err) != FVM_OK ||
            ntpath_join(&s->dir, (const uint16_t *)name->Buffer, name->Length / 2, &nt, &s->path, &err) != FVM_OK)
            goto invalid;
    } else if (ntpath_normalize((const uint16_t *)name->Buffer, name->Length / 2, &nt, &s->path, &err) != FVM_OK) {
        goto invalid;
    }
    if ((s->path.kind == NTPATH_KIND_PIPE || s->path.kind == NTPATH_KIND_MAILSLOT) &&
        !(s->path.flags & NTPATH_FLAG_ROOT))
        return STATUS_SUCCESS;
invalid:
    runtime_name_refused(POLICY_TYPE_OBJECT, op, "no pipe or mailslot name FVM can make canonical",
                         (const uint16_t *)name->Buffer, name->Length / 2);
    return STATUS_OBJECT_NAME_INVALID;
}

/* A server: where its name goes. NULL with *status when refused; the
 * caller's own attributes when not ours to change. */
static POBJECT_ATTRIBUTES server_attributes(POBJECT_ATTRIBUTES attributes, ipc_call **call, OBJECT_ATTRIBUTES *oa,
                                            UNICODE_STRING *us, const char *op, NTSTATUS *status)
{
    *call = NULL;
    if (runtime_bypassed() || !attributes || !attributes->ObjectName ||
        (!attributes->ObjectName->Buffer && !attributes->ObjectName->Length))
        return attributes;
    file_scratch *s = scratch_acquire();
    ipc_call *c = s ? ipc_call_new() : NULL;
    if (!c) {
        if (s)
            scratch_release(s);
        *status = STATUS_NO_MEMORY;
        return NULL;
    }
    NTSTATUS named = server_name(attributes, s, op);
    ipc_route route = named >= 0 ? decide(c, s->path.path, s->path.len, TRUE, op) : IPC_FAIL;
    if (named < 0)
        c->status = named;
    scratch_release(s);
    if (route == IPC_FAIL) {
        *status = c->status;
        ipc_call_free(c);
        return NULL;
    }
    if (route == IPC_PASS) {
        ipc_call_free(c);
        return attributes;
    }
    if (c->target_len > IPC_STRING_UNITS) {   /* the box's tag made it longer than any name */
        *status = STATUS_NAME_TOO_LONG;
        ipc_call_free(c);
        return NULL;
    }
    *call = c;
    *oa = *attributes;
    oa->RootDirectory = NULL;
    us->Buffer = (PWSTR)c->target;
    us->Length = us->MaximumLength = (USHORT)(c->target_len * 2);
    oa->ObjectName = us;
    return oa;
}

static NTSTATUS NTAPI box_NtCreateNamedPipeFile(PHANDLE handle, ULONG access, POBJECT_ATTRIBUTES attributes,
                                                PIO_STATUS_BLOCK io, ULONG share, ULONG disposition, ULONG options,
                                                ULONG type, ULONG read_mode, ULONG completion, ULONG instances,
                                                ULONG in_quota, ULONG out_quota, PLARGE_INTEGER timeout)
{
    GUARD_ATTRIBUTES(attributes);
    ipc_call *call;
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    NTSTATUS status;
    POBJECT_ATTRIBUTES use = server_attributes(attributes, &call, &oa, &us, "create-pipe", &status);
    if (!use)
        return status;
    status = real_NtCreateNamedPipeFile(handle, access, use, io, share, disposition, options, type, read_mode,
                                        completion, instances, in_quota, out_quota, timeout);
    if (call)
        ipc_call_free(call);
    return status;
}

static NTSTATUS NTAPI box_NtCreateMailslotFile(PHANDLE handle, ULONG access, POBJECT_ATTRIBUTES attributes,
                                               PIO_STATUS_BLOCK io, ULONG options, ULONG quota, ULONG max_size,
                                               PLARGE_INTEGER timeout)
{
    GUARD_ATTRIBUTES(attributes);
    ipc_call *call;
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    NTSTATUS status;
    POBJECT_ATTRIBUTES use = server_attributes(attributes, &call, &oa, &us, "create-mailslot", &status);
    if (!use)
        return status;
    status = real_NtCreateMailslotFile(handle, access, use, io, options, quota, max_size, timeout);
    if (call)
        ipc_call_free(call);
    return status;
}

/* WaitNamedPipe: FSCTL_PIPE_WAIT on the pipe root names the pipe (relative
 * to \Device\NamedPipe) in FILE_PIPE_WAIT_FOR_BUFFER. */
typedef struct pipe_wait_buffer {
    LARGE_INTEGER timeout;
    ULONG name_length;   /* bytes */
    BOOLEAN timeout_specified;
    WCHAR name[1];
} pipe_wait_buffer;

static NTSTATUS NTAPI box_NtFsControlFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                          PIO_STATUS_BLOCK io, ULONG code, PVOID in, ULONG in_length, PVOID out,
                                          ULONG out_length)
{
    if (code != FSCTL_PIPE_WAIT_CODE || runtime_bypassed() || !in ||
        in_length < offsetof(pipe_wait_buffer, name))
        return real_NtFsControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    const pipe_wait_buffer *wait = in;
    size_t name_units = wait->name_length / 2;
    if (wait->name_length > in_length - offsetof(pipe_wait_buffer, name) || name_units + 32 > IPC_NAME_UNITS)
        return real_NtFsControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    ipc_call *call = ipc_call_new();
    pipe_wait_buffer *mine = HeapAlloc(GetProcessHeap(), 0, sizeof *mine + (IPC_NAME_UNITS + 64) * 2);
    NTSTATUS status = STATUS_NO_MEMORY;
    if (call && mine) {
        static const uint16_t root[] = u"\\Device\\NamedPipe\\";
        uint16_t *path = mine->name;   /* scratch for the full name */
        memcpy(path, root, 18 * 2);
        memcpy(path + 18, wait->name, name_units * 2);
        switch (decide(call, path, 18 + name_units, FALSE, "wait-pipe")) {
        case IPC_FAIL:
            status = call->status;
            break;
        case IPC_BOX:
        case IPC_HOST:
        case IPC_HOST_READ:
            /* The target relative to the pipe root. */
            *mine = *wait;
            mine->name_length = (ULONG)((call->target_len - 18) * 2);
            memcpy(mine->name, call->target + 18, mine->name_length);
            status = real_NtFsControlFile(handle, event, apc, apc_context, io, code, mine,
                                          (ULONG)offsetof(pipe_wait_buffer, name) + mine->name_length, out,
                                          out_length);
            break;
        case IPC_PASS:
            status = real_NtFsControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
            break;
        }
    }
    if (call)
        ipc_call_free(call);
    if (mine)
        HeapFree(GetProcessHeap(), 0, mine);
    return status;
}

void pipe_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtCreateNamedPipeFile);
    FVM_HOOK(table, "ntdll.dll", NtCreateMailslotFile);
    FVM_HOOK(table, "ntdll.dll", NtFsControlFile);
}

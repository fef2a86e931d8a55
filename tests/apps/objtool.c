/* objtool.c - objtool.exe: one named-object or pipe operation per
 * invocation, through the Win32 or NT call a real program would use, for the
 * object-namespace tests (tests/e2e/test_objects.py).
 *
 *   objtool create TYPE NAME [HOLD]   create a named object; prints "created" or
 *                                     "exists", then (with HOLD, a file path)
 *                                     keeps it until that file exists
 *   objtool open TYPE NAME            open it; prints "opened"
 *   objtool signal NAME               OpenEvent(EVENT_MODIFY_STATE) + SetEvent
 *   objtool mapwrite NAME             OpenFileMapping(FILE_MAP_WRITE) + a writable view
 *   objtool name TYPE NAME            create it and print the NtQueryObject name
 *   objtool list NTDIR                the entries of an object directory
 *   objtool single NAME HOLD          a single-instance check: named mutex and
 *                                     pipe server; prints "first" or "second"
 *   objtool pipe-server NAME HOLD     serve \\.\pipe\NAME (reply "pong:MSG")
 *                                     until HOLD exists; prints "listening"
 *   objtool pipe-client NAME MSG      CreateFile + write + read; prints the reply
 *   objtool pipe-wait NAME MS         WaitNamedPipe; prints "available"
 *   objtool pipe-call NAME MSG        CallNamedPipe; prints the reply
 *   objtool pipe-rel NAME MSG         NtCreateFile relative to the pipe root
 *                                     handle (\Device\NamedPipe\), then as client
 *                                     (Wine 8 refuses such opens: not in the tests)
 *   objtool pipe-names NAME           create a pipe server, print its names
 *   objtool mailslot-server NAME HOLD print every message until HOLD exists
 *   objtool mailslot-send NAME MSG    write one message
 *   objtool session                   the session id
 *
 * TYPE: mutex event semaphore section timer job (Win32 names: "X",
 * "Local\X", "Global\X"), iocp symlink dir (NT names, e.g.
 * \Sessions\1\BaseNamedObjects\X, or relative to the session's
 * BaseNamedObjects when they do not start with a backslash).
 * Errors print "ERR <what> <code>" and exit 1. */
#include <windows.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

NTSTATUS NTAPI NtCreateIoCompletion(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG);
NTSTATUS NTAPI NtOpenIoCompletion(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtCreateSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PUNICODE_STRING);
NTSTATUS NTAPI NtOpenSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtCreateDirectoryObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtOpenDirectoryObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQueryDirectoryObject(HANDLE, PVOID, ULONG, BOOLEAN, BOOLEAN, PULONG, PULONG);
NTSTATUS NTAPI NtCreateFile(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG,
                            ULONG, ULONG, ULONG, PVOID, ULONG);
NTSTATUS NTAPI NtOpenFile(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG);
NTSTATUS NTAPI NtQueryObject(HANDLE, OBJECT_INFORMATION_CLASS, PVOID, ULONG, PULONG);
ULONG NTAPI RtlNtStatusToDosError(NTSTATUS);

static int fail(const char *what, DWORD code)
{
    printf("ERR %s %lu\n", what, (unsigned long)code);
    fflush(stdout);
    return 1;
}

static void say(const char *text)
{
    printf("%s\n", text);
    fflush(stdout);
}

static void hold_until(const wchar_t *path)
{
    if (!path)
        return;
    while (GetFileAttributesW(path) == INVALID_FILE_ATTRIBUTES)
        Sleep(20);
}

static DWORD session_id(void)
{
    DWORD id = 0;
    ProcessIdToSessionId(GetCurrentProcessId(), &id);
    return id;
}

/* An NT name: as given when absolute, else below the session's
 * BaseNamedObjects. */
static void nt_name(const wchar_t *name, wchar_t *out, size_t cap, UNICODE_STRING *us, OBJECT_ATTRIBUTES *oa)
{
    if (name[0] == L'\\')
        _snwprintf(out, cap, L"%ls", name);
    else
        _snwprintf(out, cap, L"\\Sessions\\%lu\\BaseNamedObjects\\%ls", (unsigned long)session_id(), name);
    out[cap - 1] = 0;
    us->Buffer = out;
    us->Length = (USHORT)(wcslen(out) * 2);
    us->MaximumLength = us->Length;
    InitializeObjectAttributes(oa, us, OBJ_CASE_INSENSITIVE | OBJ_OPENIF, NULL, NULL);
}

/* Creates (or with open=TRUE opens) an object; *existed from the call. */
static HANDLE make(const wchar_t *type, const wchar_t *name, BOOL open, BOOL *existed, DWORD *error)
{
    HANDLE h = NULL;
    wchar_t full[1024];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    NTSTATUS st = 0;
    *existed = FALSE;
    SetLastError(0);
    if (!wcscmp(type, L"mutex"))
        h = open ? OpenMutexW(SYNCHRONIZE | MUTEX_MODIFY_STATE, FALSE, name) : CreateMutexW(NULL, FALSE, name);
    else if (!wcscmp(type, L"event"))
        h = open ? OpenEventW(SYNCHRONIZE, FALSE, name) : CreateEventW(NULL, TRUE, FALSE, name);
    else if (!wcscmp(type, L"semaphore"))
        h = open ? OpenSemaphoreW(SYNCHRONIZE, FALSE, name) : CreateSemaphoreW(NULL, 1, 5, name);
    else if (!wcscmp(type, L"section"))
        h = open ? OpenFileMappingW(FILE_MAP_READ, FALSE, name)
                 : CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 4096, name);
    else if (!wcscmp(type, L"timer"))
        h = open ? OpenWaitableTimerW(SYNCHRONIZE, FALSE, name) : CreateWaitableTimerW(NULL, TRUE, name);
    else if (!wcscmp(type, L"job"))
        h = open ? OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, name) : CreateJobObjectW(NULL, name);
    else {
        nt_name(name, full, 1024, &us, &oa);
        if (open)
            oa.Attributes &= ~OBJ_OPENIF;
        if (!wcscmp(type, L"iocp"))
            st = open ? NtOpenIoCompletion(&h, 0x1f0003, &oa) : NtCreateIoCompletion(&h, 0x1f0003, &oa, 0);
        else if (!wcscmp(type, L"symlink")) {
            UNICODE_STRING target;
            RtlInitUnicodeString(&target, L"\\BaseNamedObjects");
            st = open ? NtOpenSymbolicLinkObject(&h, 1, &oa) : NtCreateSymbolicLinkObject(&h, 0xf0001, &oa, &target);
        } else if (!wcscmp(type, L"dir"))
            st = open ? NtOpenDirectoryObject(&h, 3, &oa) : NtCreateDirectoryObject(&h, 0xf000f, &oa);
        else {
            *error = ERROR_INVALID_PARAMETER;
            return NULL;
        }
        if (st < 0) {
            h = NULL;
            SetLastError(RtlNtStatusToDosError(st));
        } else if (st == (NTSTATUS)0x40000000L /* STATUS_OBJECT_NAME_EXISTS */) {
            SetLastError(ERROR_ALREADY_EXISTS);
        }
    }
    *error = GetLastError();
    *existed = h && *error == ERROR_ALREADY_EXISTS;
    return h;
}

static int cmd_create(const wchar_t *type, const wchar_t *name, const wchar_t *hold, BOOL open)
{
    BOOL existed;
    DWORD error;
    HANDLE h = make(type, name, open, &existed, &error);
    if (!h)
        return fail(open ? "open" : "create", error);
    say(open ? "opened" : existed ? "exists" : "created");
    hold_until(hold);
    CloseHandle(h);
    return 0;
}

static int print_name(HANDLE h, const char *label)
{
    union {
        OBJECT_NAME_INFORMATION info;
        BYTE bytes[4096];
    } name;
    ULONG got = 0;
    NTSTATUS st = NtQueryObject(h, ObjectNameInformation, &name, sizeof name, &got);
    if (st < 0)
        return fail("NtQueryObject", (DWORD)st);
    printf("%s: %.*ls\n", label, (int)(name.info.Name.Length / 2), name.info.Name.Buffer ? name.info.Name.Buffer : L"");
    fflush(stdout);
    return 0;
}

static int cmd_name(const wchar_t *type, const wchar_t *name)
{
    BOOL existed;
    DWORD error;
    HANDLE h = make(type, name, FALSE, &existed, &error);
    if (!h)
        return fail("create", error);
    int rc = print_name(h, "name");
    CloseHandle(h);
    return rc;
}

static int cmd_list(const wchar_t *dir)
{
    wchar_t full[1024];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    nt_name(dir, full, 1024, &us, &oa);
    oa.Attributes &= ~OBJ_OPENIF;
    HANDLE h;
    NTSTATUS st = NtOpenDirectoryObject(&h, 3, &oa);
    if (st < 0)
        return fail("NtOpenDirectoryObject", RtlNtStatusToDosError(st));
    ULONG context = 0, got;
    union {
        struct {
            UNICODE_STRING name, type;
        } info;
        BYTE bytes[4096];
    } entry;
    while (NtQueryDirectoryObject(h, &entry, sizeof entry, TRUE, context == 0, &context, &got) >= 0)
        printf("entry: %.*ls %.*ls\n", (int)(entry.info.name.Length / 2), entry.info.name.Buffer,
               (int)(entry.info.type.Length / 2), entry.info.type.Buffer);
    fflush(stdout);
    CloseHandle(h);
    return 0;
}

static void pipe_path(const wchar_t *name, wchar_t *out, size_t cap)
{
    if (name[0] == L'\\')
        _snwprintf(out, cap, L"%ls", name);
    else
        _snwprintf(out, cap, L"\\\\.\\pipe\\%ls", name);
    out[cap - 1] = 0;
}

/* Serves one exchange per connection until hold exists. */
static void serve(HANDLE pipe, const wchar_t *hold)
{
    OVERLAPPED ov = {0};
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    for (;;) {
        ResetEvent(ov.hEvent);
        BOOL connected = ConnectNamedPipe(pipe, &ov);
        DWORD err = GetLastError();
        if (!connected && err == ERROR_IO_PENDING) {
            while (WaitForSingleObject(ov.hEvent, 50) == WAIT_TIMEOUT)
                if (hold && GetFileAttributesW(hold) != INVALID_FILE_ATTRIBUTES) {
                    CancelIo(pipe);
                    return;
                }
            DWORD n;
            connected = GetOverlappedResult(pipe, &ov, &n, FALSE);
        } else if (!connected && err == ERROR_PIPE_CONNECTED) {
            connected = TRUE;
        }
        if (connected) {
            char buf[512], reply[600];
            DWORD n = 0, written;
            ResetEvent(ov.hEvent);
            if (ReadFile(pipe, buf, sizeof buf - 1, NULL, &ov) || GetLastError() == ERROR_IO_PENDING) {
                if (GetOverlappedResult(pipe, &ov, &n, TRUE)) {
                    buf[n] = 0;
                    int len = snprintf(reply, sizeof reply, "pong:%s", buf);
                    ResetEvent(ov.hEvent);
                    if (WriteFile(pipe, reply, (DWORD)len, NULL, &ov) || GetLastError() == ERROR_IO_PENDING)
                        GetOverlappedResult(pipe, &ov, &written, TRUE);
                    FlushFileBuffers(pipe);
                }
            }
        }
        DisconnectNamedPipe(pipe);
        if (hold && GetFileAttributesW(hold) != INVALID_FILE_ATTRIBUTES)
            return;
    }
}

static HANDLE make_server(const wchar_t *name, DWORD *error)
{
    wchar_t path[1024];
    pipe_path(name, path, 1024);
    HANDLE pipe = CreateNamedPipeW(path, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                   PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT, 1, 4096, 4096, 0, NULL);
    *error = GetLastError();
    return pipe;
}

static int cmd_pipe_server(const wchar_t *name, const wchar_t *hold)
{
    DWORD error;
    HANDLE pipe = make_server(name, &error);
    if (pipe == INVALID_HANDLE_VALUE)
        return fail("CreateNamedPipe", error);
    say("listening");
    serve(pipe, hold);
    CloseHandle(pipe);
    return 0;
}

static int cmd_pipe_client(const wchar_t *name, const wchar_t *msg)
{
    wchar_t path[1024];
    pipe_path(name, path, 1024);
    HANDLE pipe = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (pipe == INVALID_HANDLE_VALUE)
        return fail("CreateFile", GetLastError());
    DWORD mode = PIPE_READMODE_MESSAGE;
    SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
    char out[512], in[600];
    int n = WideCharToMultiByte(CP_UTF8, 0, msg, -1, out, sizeof out, NULL, NULL) - 1;
    DWORD done;
    if (!WriteFile(pipe, out, (DWORD)n, &done, NULL))
        return fail("WriteFile", GetLastError());
    if (!ReadFile(pipe, in, sizeof in - 1, &done, NULL))
        return fail("ReadFile", GetLastError());
    in[done] = 0;
    say(in);
    CloseHandle(pipe);
    return 0;
}

/* A client that names the pipe relative to the pipe file system's root. */
static int cmd_pipe_rel(const wchar_t *name, const wchar_t *msg)
{
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK io;
    HANDLE root, pipe;
    RtlInitUnicodeString(&us, L"\\Device\\NamedPipe\\");
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    NTSTATUS st = NtOpenFile(&root, SYNCHRONIZE | FILE_READ_ATTRIBUTES, &oa, &io, FILE_SHARE_READ | FILE_SHARE_WRITE,
                             FILE_SYNCHRONOUS_IO_NONALERT);
    if (st < 0)
        return fail("NtOpenFile root", RtlNtStatusToDosError(st));
    RtlInitUnicodeString(&us, name);
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
    st = NtCreateFile(&pipe, GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE, &oa, &io, NULL, 0,
                      FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
    CloseHandle(root);
    if (st < 0)
        return fail("NtCreateFile", RtlNtStatusToDosError(st));
    DWORD mode = PIPE_READMODE_MESSAGE;
    SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
    char out[512], in[600];
    int n = WideCharToMultiByte(CP_UTF8, 0, msg, -1, out, sizeof out, NULL, NULL) - 1;
    DWORD done;
    if (!WriteFile(pipe, out, (DWORD)n, &done, NULL) || !ReadFile(pipe, in, sizeof in - 1, &done, NULL))
        return fail("pipe I/O", GetLastError());
    in[done] = 0;
    say(in);
    CloseHandle(pipe);
    return 0;
}

static int cmd_pipe_wait(const wchar_t *name, const wchar_t *ms)
{
    wchar_t path[1024];
    pipe_path(name, path, 1024);
    if (!WaitNamedPipeW(path, (DWORD)wcstoul(ms, NULL, 10)))
        return fail("WaitNamedPipe", GetLastError());
    say("available");
    return 0;
}

static int cmd_pipe_call(const wchar_t *name, const wchar_t *msg)
{
    wchar_t path[1024];
    pipe_path(name, path, 1024);
    char out[512], in[600];
    int n = WideCharToMultiByte(CP_UTF8, 0, msg, -1, out, sizeof out, NULL, NULL) - 1;
    DWORD done = 0;
    if (!CallNamedPipeW(path, out, (DWORD)n, in, sizeof in - 1, &done, 5000))
        return fail("CallNamedPipe", GetLastError());
    in[done] = 0;
    say(in);
    return 0;
}

static int cmd_pipe_names(const wchar_t *name)
{
    DWORD error;
    HANDLE pipe = make_server(name, &error);
    if (pipe == INVALID_HANDLE_VALUE)
        return fail("CreateNamedPipe", error);
    int rc = print_name(pipe, "name");
    union {
        FILE_NAME_INFO info;
        BYTE bytes[4096];
    } fn;
    if (GetFileInformationByHandleEx(pipe, FileNameInfo, &fn, sizeof fn))
        printf("file: %.*ls\n", (int)(fn.info.FileNameLength / 2), fn.info.FileName);
    else
        printf("file: ERR %lu\n", (unsigned long)GetLastError());
    fflush(stdout);
    CloseHandle(pipe);
    return rc;
}

static int cmd_single(const wchar_t *name, const wchar_t *hold)
{
    wchar_t mutex_name[512];
    _snwprintf(mutex_name, 512, L"Local\\%ls.instance", name);
    mutex_name[511] = 0;
    HANDLE mutex = CreateMutexW(NULL, TRUE, mutex_name);
    BOOL mutex_taken = mutex && GetLastError() == ERROR_ALREADY_EXISTS;
    DWORD error;
    HANDLE pipe = make_server(name, &error);
    BOOL pipe_taken = pipe == INVALID_HANDLE_VALUE;
    if (mutex_taken || pipe_taken) {
        /* What a real second copy does: hand its work to the first one. */
        printf("second mutex=%d pipe=%d\n", mutex_taken, pipe_taken);
        fflush(stdout);
        return 3;
    }
    say("first");
    serve(pipe, hold);
    CloseHandle(pipe);
    CloseHandle(mutex);
    return 0;
}

static int cmd_mailslot_server(const wchar_t *name, const wchar_t *hold)
{
    wchar_t path[1024];
    _snwprintf(path, 1024, L"\\\\.\\mailslot\\%ls", name);
    HANDLE slot = CreateMailslotW(path, 0, 50, NULL);
    if (slot == INVALID_HANDLE_VALUE)
        return fail("CreateMailslot", GetLastError());
    say("listening");
    for (;;) {
        char buf[512];
        DWORD n;
        if (ReadFile(slot, buf, sizeof buf - 1, &n, NULL)) {
            buf[n] = 0;
            printf("message: %s\n", buf);
            fflush(stdout);
        }
        if (GetFileAttributesW(hold) != INVALID_FILE_ATTRIBUTES)
            break;
    }
    CloseHandle(slot);
    return 0;
}

static int cmd_mailslot_send(const wchar_t *name, const wchar_t *msg)
{
    wchar_t path[1024];
    _snwprintf(path, 1024, L"\\\\.\\mailslot\\%ls", name);
    HANDLE slot = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (slot == INVALID_HANDLE_VALUE)
        return fail("CreateFile", GetLastError());
    char out[512];
    int n = WideCharToMultiByte(CP_UTF8, 0, msg, -1, out, sizeof out, NULL, NULL) - 1;
    DWORD done;
    if (!WriteFile(slot, out, (DWORD)n, &done, NULL))
        return fail("WriteFile", GetLastError());
    say("sent");
    CloseHandle(slot);
    return 0;
}

static int cmd_signal(const wchar_t *name)
{
    HANDLE h = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
    if (!h)
        return fail("OpenEvent", GetLastError());
    if (!SetEvent(h))
        return fail("SetEvent", GetLastError());
    say("signalled");
    CloseHandle(h);
    return 0;
}

static int cmd_mapwrite(const wchar_t *name)
{
    HANDLE h = OpenFileMappingW(FILE_MAP_WRITE, FALSE, name);
    if (!h)
        return fail("OpenFileMapping", GetLastError());
    char *view = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
    if (!view)
        return fail("MapViewOfFile", GetLastError());
    view[0] = 'w';
    say("mapped");
    UnmapViewOfFile(view);
    CloseHandle(h);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: objtool COMMAND ...\n");
        return 2;
    }
    const wchar_t *c = argv[1];
    const wchar_t *a = argc > 2 ? argv[2] : NULL, *b = argc > 3 ? argv[3] : NULL, *d = argc > 4 ? argv[4] : NULL;
    if (!wcscmp(c, L"create") && b)
        return cmd_create(a, b, d, FALSE);
    if (!wcscmp(c, L"open") && b)
        return cmd_create(a, b, NULL, TRUE);
    if (!wcscmp(c, L"mapwrite") && a)
        return cmd_mapwrite(a);
    if (!wcscmp(c, L"signal") && a)
        return cmd_signal(a);
    if (!wcscmp(c, L"name") && b)
        return cmd_name(a, b);
    if (!wcscmp(c, L"list") && a)
        return cmd_list(a);
    if (!wcscmp(c, L"single") && b)
        return cmd_single(a, b);
    if (!wcscmp(c, L"pipe-server") && b)
        return cmd_pipe_server(a, b);
    if (!wcscmp(c, L"pipe-client") && b)
        return cmd_pipe_client(a, b);
    if (!wcscmp(c, L"pipe-wait") && b)
        return cmd_pipe_wait(a, b);
    if (!wcscmp(c, L"pipe-rel") && b)
        return cmd_pipe_rel(a, b);
    if (!wcscmp(c, L"pipe-call") && b)
        return cmd_pipe_call(a, b);
    if (!wcscmp(c, L"pipe-names") && a)
        return cmd_pipe_names(a);
    if (!wcscmp(c, L"mailslot-server") && b)
        return cmd_mailslot_server(a, b);
    if (!wcscmp(c, L"mailslot-send") && b)
        return cmd_mailslot_send(a, b);
    if (!wcscmp(c, L"session")) {
        printf("session %lu\n", (unsigned long)session_id());
        return 0;
    }
    fprintf(stderr, "objtool: bad command\n");
    return 2;
}

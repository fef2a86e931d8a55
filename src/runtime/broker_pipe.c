/* broker_pipe.c - one request, one reply, with the box's broker.
 *
 * The broker's control pipe is message-mode (common/brokerproto.h): a
 * request is one message and its reply one message. Virtualizers that ask
 * the broker something now and then share this one connection, made on
 * first use and made again when the broker hung up (it restarts with the
 * box's next run only, but a listener may be between two clients); the
 * connection is FVM's own, so it is made with the bypass set. A question
 * that may take long (a host name, which the broker resolves over the
 * network) gets a connection of its own instead (runtime_broker_call_alone):
 * the broker serves each connection on a thread of its own, so such
 * questions run side by side and hold nobody up. Callers that
 * talk to the broker on every file write keep connections of their own
 * (file_index.c, file_quota.c, ioquota.c; made by runtime_broker_connect),
 * so they never wait behind a slow question here.
 *
 * A box with a Wine server of its own has a pipe namespace of its own, and
 * some questions are for the host's side: those go to the box's relay
 * (cli/relay.c), a process of the host's server listening on unix sockets in
 * the box's server directory (<root>\servers\<hash>\NAME), which the box's
 * processes reach: one connection per question, the request written and the
 * writing side shut, the answer read until the relay closes. */
#include "runtime/runtime.h"

#include "runtime/linux_syscall.h"

static HANDLE g_pipe;
static SRWLOCK g_pipe_lock = SRWLOCK_INIT;

/* How long a connect keeps trying while the broker's listeners are all
 * taken (a burst of clients: each listener is between two clients for a
 * moment); then the broker is taken to be gone. */
#define CONNECT_PATIENCE_MS 2000

HANDLE runtime_broker_connect(void)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    HANDLE pipe = NULL;
    DWORD deadline = GetTickCount() + CONNECT_PATIENCE_MS;
    runtime_bypass_enter();   /* the broker's pipe, FVM's own */
    for (;;) {
        pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (pipe != INVALID_HANDLE_VALUE) {
            DWORD mode = PIPE_READMODE_MESSAGE;
            SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
            break;
        }
        pipe = NULL;
        DWORD error = GetLastError();
        LONG left = (LONG)(deadline - GetTickCount());
        if (left <= 0 || (error != ERROR_PIPE_BUSY && error != ERROR_FILE_NOT_FOUND))
            break;
        if (error == ERROR_PIPE_BUSY)
            WaitNamedPipeW(name, left < 200 ? (DWORD)left : 200);
        else
            Sleep(10);   /* the broker's listeners are between two clients */
    }
    runtime_bypass_leave();
    return pipe;
}

static HANDLE connection(void)
{
    if (!g_pipe)
        g_pipe = runtime_broker_connect();
    return g_pipe;
}

static BOOL exchange(HANDLE pipe, const void *request, DWORD len, void *reply, DWORD cap, DWORD *got)
{
    DWORD put = 0;
    return WriteFile(pipe, request, len, &put, NULL) && put == len && ReadFile(pipe, reply, cap, got, NULL);
}

BOOL runtime_broker_call(const void *request, DWORD len, void *reply, DWORD cap, DWORD *got)
{
    DWORD saved = GetLastError();
    BOOL ok = FALSE;
    *got = 0;
    runtime_bypass_enter();
    AcquireSRWLockExclusive(&g_pipe_lock);
    for (int attempt = 0; attempt < 2 && !ok; attempt++) {
        HANDLE pipe = connection();
        if (!pipe)
            break;
        ok = exchange(pipe, request, len, reply, cap, got);
        if (!ok) {
            CloseHandle(pipe);
            g_pipe = NULL;
            *got = 0;
        }
    }
    ReleaseSRWLockExclusive(&g_pipe_lock);
    runtime_bypass_leave();
    SetLastError(saved);
    return ok;
}

BOOL runtime_broker_call_alone(const void *request, DWORD len, void *reply, DWORD cap, DWORD *got)
{
    DWORD saved = GetLastError();
    *got = 0;
    runtime_bypass_enter();
    HANDLE pipe = runtime_broker_connect();
    BOOL ok = pipe && exchange(pipe, request, len, reply, cap, got);
    if (pipe)
        CloseHandle(pipe);
    runtime_bypass_leave();
    SetLastError(saved);
    return ok;
}

int runtime_relay_call(const char *socket_name, const void *request, size_t len, void *reply, size_t cap,
                       DWORD deadline)
{
    wchar_t dir[FVM_PATH_MAX];
    if (!fvm_box_server_dir(g_fvm.config.box_path, dir, FVM_PATH_MAX))
        return -1;
    char *(CDECL * to_unix)(const wchar_t *) =
        (char *(CDECL *)(const wchar_t *))(void *)GetProcAddress(GetModuleHandleW(L"kernel32.dll"),
                                                                "wine_get_unix_file_name");
    DWORD saved = GetLastError();
    char *unix_dir = to_unix ? to_unix(dir) : NULL;
    SetLastError(saved);
    if (!unix_dir)
        return -1;
    int64_t dir_fd = LSYS(LNR_openat, L_AT_FDCWD, unix_dir, L_O_PATH | L_O_DIRECTORY | L_O_CLOEXEC);
    HeapFree(GetProcessHeap(), 0, unix_dir);
    if (dir_fd < 0)
        return -1;
    struct l_sockaddr_un addr;
    l_unix_address_in(&addr, dir_fd, socket_name);
    int got = -1;
    int64_t s = LSYS(LNR_socket, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | L_O_CLOEXEC, 0);
    if (s >= 0 && LSYS(LNR_connect, s, &addr, sizeof addr) == 0 && LSYS(LNR_write, s, request, len) == (int64_t)len) {
        LSYS(48 /* shutdown */, s, 1 /* SHUT_WR */, 0);
        size_t at = 0;
        for (;;) {
            struct l_pollfd pfd = {(int32_t)s, 1 /* POLLIN */, 0};
            LONG left = (LONG)(deadline - GetTickCount());
            if (left <= 0 || LSYS(LNR_poll, &pfd, 1, left) <= 0)
                break;
            int64_t n = at < cap ? LSYS(LNR_read, s, (char *)reply + at, cap - at) : -1;
            if (n <= 0) {
                got = n == 0 ? (int)at : -1;   /* the relay closed: the whole answer */
                break;
            }
            at += (size_t)n;
        }
    }
    if (s >= 0)
        LSYS(LNR_close, s, 0, 0);
    LSYS(LNR_close, dir_fd, 0, 0);
    return got;
}

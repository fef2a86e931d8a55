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
 * (file_index.c, file_quota.c, ioquota.c), so they never wait behind a slow
 * question here. */
#include "runtime/runtime.h"

static HANDLE g_pipe;
static SRWLOCK g_pipe_lock = SRWLOCK_INIT;

/* A new connection to the broker (message mode), or NULL. */
static HANDLE connect_broker(void)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    for (int attempt = 0; attempt < 40; attempt++) {
        HANDLE pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (pipe != INVALID_HANDLE_VALUE) {
            DWORD mode = PIPE_READMODE_MESSAGE;
            SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
            return pipe;
        }
        if (GetLastError() == ERROR_PIPE_BUSY)
            WaitNamedPipeW(name, 200);
        else if (GetLastError() == ERROR_FILE_NOT_FOUND)
            Sleep(10);   /* the broker's listeners are between two clients */
        else
            break;
    }
    return NULL;
}

static HANDLE connection(void)
{
    if (!g_pipe)
        g_pipe = connect_broker();
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
    HANDLE pipe = connect_broker();
    BOOL ok = pipe && exchange(pipe, request, len, reply, cap, got);
    if (pipe)
        CloseHandle(pipe);
    runtime_bypass_leave();
    SetLastError(saved);
    return ok;
}

/* relay.c - the host's side of a box with a Wine server of its own: the
 * decision provider, and host names.
 *
 * A provider (include/fvm/provider.h) listens on a named pipe of the
 * host's Wine server; a box with its own server has a pipe namespace of its
 * own, where that pipe does not exist. So the first run of such a box whose
 * policy has ask rules (or lets some traffic out: names, below) starts
 * this relay: `fvm.exe __box-relay NAME`,
 * a process of the host's server, outside the box's domain. It listens on
 * the unix socket <dir>/provider of the box's server directory (which the
 * box's processes reach: runtime/policy.c asks there), and for each
 * connection reads one question line, asks the provider named in the box's
 * box.ini (never a pipe the box names) and writes its answer back. It ends
 * with the box's init (<dir>/init, common/boxserver.h).
 *
 * The line is outside input: at most FVM_PROVIDER_MAX_LINE bytes, ended by
 * a newline, passed on as it is but for its box field, which the relay
 * sets to its own box (a program cannot ask in another box's name); the
 * provider parses the rest as from any box. The answer is at most 64
 * bytes, as the runtime reads it.
 *
 * Host names: each run of such a box is in an empty network namespace of
 * its own (ownserver.c), broker and programs alike, so their runtime sends
 * each name lookup (core/resolvemsg.h) to the unix socket <dir>/resolve,
 * and the relay, in the host's network, answers with common/resolver.c
 * after the box's policy. Which program asks it cannot tell (the socket's
 * peer is a process of the box's server), so the [net] rules for every
 * program decide here; the runtime has decided the program's own before it
 * asks. The request is read until the asker shuts its side, at most
 * RESOLVE_REQUEST_MAX bytes.
 *
 * The relay also ends when its sockets are no longer the ones in the
 * folder: a new init (the box's policy changed) starts a relay of its own,
 * which makes them again. */
#include "cli/cli.h"

#include <string.h>

#include "common/boxserver.h"
#include "common/resolver.h"
#include "core/providerline.h"
#include "core/resolvemsg.h"
#include "fvm/provider.h"
#include "runtime/linux_syscall.h"

#define EXCHANGE_MS 60000   /* the longest ask timeout a rule may set is the runtime's to keep */
#define ANSWER_MAX 64

static wchar_t g_pipe[FVM_PATH_MAX];
static const char *g_box_name;
static const struct policy_view *g_policy;   /* the box's, loaded at start (a changed one: a new init, a new relay) */

/* Reads up to cap bytes until a newline, within the deadline; the length, or -1. */
static int64_t read_line(int64_t fd, char *buf, size_t cap, DWORD deadline)
{
    size_t got = 0;
    while (got < cap) {
        LONG left = (LONG)(deadline - GetTickCount());
        struct l_pollfd pfd = {(int32_t)fd, 1 /* POLLIN */, 0};
        if (left <= 0 || LSYS(LNR_poll, &pfd, 1, left) <= 0)
            return -1;
        int64_t n = LSYS(LNR_read, fd, buf + got, cap - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        if (memchr(buf + got - (size_t)n, '\n', (size_t)n))
            return (int64_t)got;
    }
    return -1;
}

/* One question to the host's provider; the answer's length, or -1. */
static int ask_host(const char *line, DWORD len, char *answer, DWORD deadline)
{
    HANDLE pipe = INVALID_HANDLE_VALUE;
    while (pipe == INVALID_HANDLE_VALUE) {
        pipe = CreateFileW(g_pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
        if (pipe != INVALID_HANDLE_VALUE)
            break;
        LONG left = (LONG)(deadline - GetTickCount());
        if (GetLastError() != ERROR_PIPE_BUSY || left <= 0 || !WaitNamedPipeW(g_pipe, (DWORD)left))
            return -1;
    }
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD done = 0;
    BOOL ok = ov.hEvent && (WriteFile(pipe, line, len, NULL, &ov) || GetLastError() == ERROR_IO_PENDING);
    LONG left = (LONG)(deadline - GetTickCount());
    ok = ok && left > 0 && WaitForSingleObject(ov.hEvent, (DWORD)left) == WAIT_OBJECT_0 &&
         GetOverlappedResult(pipe, &ov, &done, FALSE);
    if (ok) {
        ResetEvent(ov.hEvent);
        ok = ReadFile(pipe, answer, ANSWER_MAX, NULL, &ov) || GetLastError() == ERROR_IO_PENDING;
        left = (LONG)(deadline - GetTickCount());
        ok = ok && left > 0 && WaitForSingleObject(ov.hEvent, (DWORD)left) == WAIT_OBJECT_0 &&
             GetOverlappedResult(pipe, &ov, &done, FALSE);
    }
    if (!ok)
        CancelIo(pipe);
    if (ov.hEvent)
        CloseHandle(ov.hEvent);
    CloseHandle(pipe);
    return ok ? (int)done : -1;
}

static DWORD WINAPI serve(void *arg)
{
    int64_t conn = (int64_t)(INT_PTR)arg;
    char line[FVM_PROVIDER_MAX_LINE], question[FVM_PROVIDER_MAX_LINE + 3 * FVM_BOX_NAME_MAX];
    char answer[ANSWER_MAX];
    DWORD deadline = GetTickCount() + EXCHANGE_MS;
    int64_t len = read_line(conn, line, sizeof line, deadline);
    size_t asked = 0;
    int got = len > 0 && provider_line_set_box(line, (size_t)len, g_box_name, question, sizeof question, &asked,
                                               NULL) == FVM_OK
                  ? ask_host(question, (DWORD)asked, answer, deadline)
                  : -1;
    if (got > 0)
        LSYS(LNR_write, conn, answer, got);
    LSYS(LNR_close, conn, 0, 0);
    return 0;
}

/* Lookups answered at once; a box that opens more connections than this
 * (and leaves them hanging: each waits up to 5 s for its request) has the
 * rest closed unanswered rather than a thread each. */
#define RESOLVE_THREADS_MAX 32
static volatile LONG g_resolve_threads;

/* One name lookup: the request until the asker shuts its side, the answer. */
static DWORD WINAPI serve_resolve(void *arg)
{
    int64_t conn = (int64_t)(INT_PTR)arg;
    uint8_t request[RESOLVE_REQUEST_MAX], reply[RESOLVE_REPLY_MAX];
    DWORD deadline = GetTickCount() + 5000;
    size_t got = 0;
    for (;;) {
        LONG left = (LONG)(deadline - GetTickCount());
        struct l_pollfd pfd = {(int32_t)conn, 1 /* POLLIN */, 0};
        if (left <= 0 || LSYS(LNR_poll, &pfd, 1, left) <= 0)
            break;
        int64_t n = got < sizeof request ? LSYS(LNR_read, conn, request + got, sizeof request - got) : -1;
        if (n <= 0) {
            if (n == 0) {   /* the whole request */
                size_t len = resolver_answer(g_policy, NULL, 0, request, got, reply, sizeof reply);
                if (len)
                    LSYS(LNR_write, conn, reply, len);
            }
            break;
        }
        got += (size_t)n;
    }
    LSYS(LNR_close, conn, 0, 0);
    InterlockedDecrement(&g_resolve_threads);
    return 0;
}

/* A listening socket NAME in the server folder; its path's inode in *inode. */
static int64_t listen_at(int64_t dir_fd, const char *name, struct l_sockaddr_un *addr, uint64_t *inode)
{
    int64_t listener = LSYS(LNR_socket, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | L_O_CLOEXEC, 0);
    l_unix_address_in(addr, dir_fd, name);
    LSYS(LNR_unlink, addr->path, 0, 0);
    if (listener < 0 || LSYS(LNR_bind, listener, addr, sizeof *addr) != 0 || LSYS(LNR_listen, listener, 16, 0) != 0) {
        if (listener >= 0)
            LSYS(LNR_close, listener, 0, 0);
        return -1;
    }
    uint8_t st[144];   /* struct stat: st_ino at 8 */
    *inode = LSYS(4 /* stat */, addr->path, st, 0) == 0 ? *(uint64_t *)(st + 8) : 0;
    return listener;
}

/* Whether the socket file is still the one this relay made. */
static BOOL still_ours(const struct l_sockaddr_un *addr, uint64_t inode)
{
    uint8_t st[144];
    return LSYS(4 /* stat */, addr->path, st, 0) == 0 && *(uint64_t *)(st + 8) == inode;
}

int cmd_box_relay(int argc, char **argv)
{
    box b;
    if (argc != 2 || !cli_on_linux() || !box_init(&b, argv[1]) || !box_exists(&b))
        return EXIT_USAGE;
    g_box_name = b.name;
    g_policy = own_server_policy_view(&b);
    fvm_box_config cfg;
    box_config(&b, &cfg);
    fvm_wcscpy(g_pipe, FVM_PATH_MAX, L"\\\\.\\pipe\\");
    fvm_wcscat(g_pipe, FVM_PATH_MAX, cfg.provider[0] ? cfg.provider : L"" FVM_PROVIDER_DEFAULT);
    wchar_t dir[FVM_PATH_MAX];
    static char unix_dir[FVM_PATH_MAX * 3];
    if (!fvm_box_server_dir(b.path, dir, FVM_PATH_MAX) || !boxserver_linux_path(dir, unix_dir, sizeof unix_dir))
        return EXIT_FAIL;
    int64_t dir_fd = LSYS(LNR_openat, L_AT_FDCWD, unix_dir, L_O_PATH | L_O_DIRECTORY | L_O_CLOEXEC);
    if (dir_fd < 0)
        return EXIT_FAIL;
    struct l_sockaddr_un addrs[2];
    uint64_t inodes[2];
    int64_t listeners[2] = {listen_at(dir_fd, "provider", &addrs[0], &inodes[0]),
                            listen_at(dir_fd, "resolve", &addrs[1], &inodes[1])};
    if (listeners[0] < 0 || listeners[1] < 0)
        return EXIT_FAIL;
    /* Ends with the box's init (which holds its lock before it says it is
     * ready, and this starts after that), whatever ends the init, or when
     * a newer relay has taken the sockets' names. */
    while (boxserver_init_alive(unix_dir) && still_ours(&addrs[0], inodes[0]) && still_ours(&addrs[1], inodes[1])) {
        struct l_pollfd pfd[2] = {{(int32_t)listeners[0], 1 /* POLLIN */, 0}, {(int32_t)listeners[1], 1, 0}};
        if (LSYS(LNR_poll, pfd, 2, 500) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(pfd[i].revents & 1))
                continue;
            int64_t conn = LSYS(LNR_accept4, listeners[i], 0, L_O_CLOEXEC);
            if (conn < 0)
                continue;
            if (i == 1 && InterlockedIncrement(&g_resolve_threads) > RESOLVE_THREADS_MAX) {
                InterlockedDecrement(&g_resolve_threads);
                LSYS(LNR_close, conn, 0, 0);
                continue;
            }
            HANDLE thread = CreateThread(NULL, 0, i == 0 ? serve : serve_resolve, (void *)(INT_PTR)conn, 0, NULL);
            if (thread) {
                CloseHandle(thread);
            } else {
                if (i == 1)
                    InterlockedDecrement(&g_resolve_threads);
                LSYS(LNR_close, conn, 0, 0);
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (still_ours(&addrs[i], inodes[i]))
            LSYS(LNR_unlink, addrs[i].path, 0, 0);
    return 0;
}

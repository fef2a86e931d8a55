/* ownserver.c - fvm run, and the verbs that talk to a running box, for a
 * box with a Wine server of its own (box.ini server=own; why:
 * common/boxserver.h).
 *
 * The box's server must run inside the box's Landlock domain, and so must
 * every client of it: Landlock lets a process read or write another's
 * memory (Wine's server does that for ReadProcessMemory, which fvm itself
 * uses to inject) only inside its own domain or one nested in it, and two
 * fvm runs set up two sibling domains. So one process per running box, the
 * box's *init*, holds the domain, and every run of the box is started by it:
 *
 *   fvm run (Windows, in the host's server) --unix socket--> box init
 *        (Linux, raw system calls only; a fork of the first fvm run)
 *            --fork--> runner --fork+execve--> fvm.exe run (in the box's
 *            server: broker, launcher, program as usual)
 *
 * The init, started by the first fvm run of the box:
 *   1. enters a user and mount namespace, hides the host's Wine server
 *      directories and binds the box's server directory where Wine looks
 *      for the prefix's server (/tmp/wine-XXXXXX, named by the prefix's
 *      `wineserver` file in Debian's build; /tmp/.wine-UID upstream);
 *   2. enters the box's Landlock domain (common/floor_domain.c: the floor's
 *      rules, plus the server directory and the wineserver binary), with
 *      no TCP rule (the server makes Winsock's connections; the hooks decide
 *      them by [net]), signals scoped (every client of the server is in
 *      this domain or one inside it, as every run starts here);
 *   3. listens on <dir>/launch (reached as /proc/self/fd/N/launch: a unix
 *      socket path is limited to 108 bytes), and for each request forks a
 *      runner, which starts the box's wineserver if none runs (-f -p0;
 *      output to <dir>.log) with its keeper (start_keeper: the server's
 *      first Wine process, which runs wineboot and keeps the server up),
 *      then fvm.exe with the caller's arguments, environment, directory and
 *      standard streams (passed as descriptors), and sends back its exit
 *      status. If the caller goes away, the runner kills that fvm.exe (as
 *      killing fvm run does: the program, a process of the box, goes on);
 *   4. lets the server linger when the box has ended (no runner, no
 *      broker: <dir>/busy, common/boxserver.h), so that the box's next run
 *      joins it (+0.1 s) instead of starting Wine's services again (+0.9 s;
 *      docs/design.md), and ends it after LINGER_MS idle; then ends itself,
 *      under <dir>.lock, which a caller holds from connecting to starting
 *      an init, so a request is never left to an init that is ending.
 * A caller holds the host server's box lock until its fvm.exe has been
 * started: `fvm commit`, which takes that lock and then asks whether the
 * box runs (boxserver_busy), does not start in between. A run that finds
 * the server idle first saves the host registry and compares it, and its
 * floor and display, with what the init was started from
 * (same_as_loaded); if they differ, that init and its server end and a new
 * one starts.
 *
 * The box's first process then sets up the floor as always (a domain inside
 * this one, with its seccomp filter); its namespace is the init's. The
 * verbs that talk to a running box's broker (stop, ps, stats) are sent to
 * the init the same way (own_server_join), and never start one. */
#include "cli/cli.h"
#include "cli/ownserver.h"

#include <stdlib.h>
#include <string.h>

#include "common/boxserver.h"
#include "common/floor_domain.h"
#include "common/floor_namespace.h"
#include "common/rawtext.h"
#include "common/xdisplay.h"
#include "common/policyload.h"
#include "core/floor_rules.h"
#include "core/policy.h"
#include "core/policy_net.h"
#include "core/runrequest.h"
#include "runtime/linux_syscall.h"

enum {
    LNR_rt_sigprocmask = 14, LNR_access_ = 21, LNR_dup2 = 33, LNR_nanosleep = 35,
    LNR_sendmsg = 46, LNR_recvmsg = 47, LNR_fcntl = 72, LNR_flock = 73, LNR_chdir = 80, LNR_chmod = 90,
    LNR_getuid_ = 102, LNR_setsid = 112, LNR_pipe2 = 293, LNR_close_range = 436,
};
#define SERVER_WAIT_MS 15000
#define MARKER "FVM_OWN_SERVER=1"
#define REPLY_STARTED 1
#define REPLY_STATUS 2
/* How long an idle server stays up for the box's next run
 * (FVM_SERVER_LINGER_MS changes it): a cold start runs Wine's wineboot,
 * services and devices, about 0.5 s (docs/design.md). */
#define LINGER_MS 5000


typedef struct reply {
    uint32_t kind;
    int32_t value;
} reply;

struct l_iovec {
    void *base;
    uint64_t len;
};
struct l_msghdr {
    void *name;
    int32_t namelen, pad;
    struct l_iovec *iov;
    uint64_t iovlen;
    void *control;
    uint64_t controllen;
    int32_t flags, pad2;
};
struct l_cmsg_fds {
    uint64_t len;
    int32_t level, type;   /* SOL_SOCKET 1, SCM_RIGHTS 1 */
    int32_t fds[3];
    int32_t pad;
};

static server_plan g_plan;

BOOL own_server_inside(void)
{
    const char *v = cli_linux_env("FVM_OWN_SERVER");
    return v && !strcmp(v, "1");
}

/* ---- raw helpers (the init and runners run no C runtime code) ----------- */

void own_server_say(int fd, const char *a, const char *b)
{
    const char *parts[] = {"fvm: the box's own Wine server: ", a, b, "\n"};
    for (int i = 0; i < 4; i++)
        if (parts[i])
            LSYS(LNR_write, fd, parts[i], strlen(parts[i]));
}

static int64_t now_ms(void)
{
    int64_t ts[2] = {0, 0};
    LSYS(228 /* clock_gettime */, 1 /* CLOCK_MONOTONIC */, ts, 0);
    return ts[0] * 1000 + ts[1] / 1000000;
}

static void sleep_ms(int ms)
{
    int64_t ts[2] = {0, (int64_t)ms * 1000000};
    LSYS(LNR_nanosleep, ts, 0, 0);
}

static void set_signal_mask(BOOL all)
{
    uint64_t mask = all ? ~0ull : 0;
    linux_syscall6(LNR_rt_sigprocmask, 2 /* SIG_SETMASK */, (int64_t)&mask, 0, 8, 0, 0);
}

/* All of len bytes through read or write (nr), across short transfers. */
static BOOL transfer_all(int64_t nr, int64_t fd, void *data, size_t len)
{
    char *p = data;
    while (len) {
        int64_t n = LSYS(nr, fd, p, len);
        if (n == -4 /* EINTR */)
            continue;
        if (n <= 0)
            return FALSE;
        p += n;
        len -= (size_t)n;
    }
    return TRUE;
}

static BOOL write_all(int64_t fd, const void *data, size_t len)
{
    return transfer_all(LNR_write, fd, (void *)data, len);
}

static BOOL read_all(int64_t fd, void *data, size_t len)
{
    return transfer_all(LNR_read, fd, data, len);
}

/* "/proc/self/fd/N/launch" for the server directory opened as N. */
/* The socket exists in dir/server-DEV-INO and the server holds its lock. */
static BOOL server_up(const server_plan *p)
{
    if (!boxserver_holder(p->dir))
        return FALSE;
    static char buf[4096], path[FVM_PATH_MAX * 3 + 300];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, p->dir, L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
    if (fd < 0)
        return FALSE;
    BOOL found = FALSE;
    int64_t n;
    while (!found && (n = LSYS(LNR_getdents64, fd, buf, sizeof buf)) > 0)
        for (int64_t off = 0; !found && off < n;) {
            const char *name = buf + off + 19;
            off += *(uint16_t *)(buf + off + 16);
            if (strncmp(name, "server-", 7))
                continue;
            size_t at = raw_put(path, sizeof path, 0, p->dir);
            at = raw_put(path, sizeof path, at, "/");
            at = raw_put(path, sizeof path, at, name);
            raw_put(path, sizeof path, at, "/socket");
            found = LSYS(LNR_access_, path, 0, 0) == 0;
        }
    LSYS(LNR_close, fd, 0, 0);
    return found;
}

/* ---- the runner: one request ---------------------------------------------- */

static int start_server(server_plan *p, char **envp, int err_fd)
{
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid == 0) {
        set_signal_mask(FALSE);
        LSYS(LNR_setsid, 0, 0, 0);
        int64_t null_fd = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
        if (null_fd >= 0)
            LSYS(LNR_dup2, null_fd, 0, 0);
        if (p->log_fd >= 0) {
            LSYS(LNR_dup2, p->log_fd, 1, 0);
            LSYS(LNR_dup2, p->log_fd, 2, 0);
        }
        LSYS(LNR_close_range, 3, ~0u, 0);
        /* Winsock's sockets are the server's (own_box_udp_closed): a server
         * without this filter would be a way around the policy's UDP deny. */
        if (p->no_datagrams && floor_domain_seccomp_no_datagrams() != 0) {
            own_server_say(2, "cannot install the filter that refuses the box's Wine server UDP sockets", NULL);
            LSYS(LNR_exit, 126, 0, 0);
        }
        if (p->check_connects)
            own_supervise_connects(p);
        char *argv[] = {p->wineserver, "-f", "-p0", NULL};
        LSYS(LNR_execve, p->wineserver, argv, envp);
        LSYS(LNR_exit, 127, 0, 0);
    }
    if (pid < 0) {
        own_server_say(err_fd, "cannot fork to start it", NULL);
        return 1;
    }
    for (int waited = 0; waited < SERVER_WAIT_MS; waited += 5) {
        if (server_up(p))
            return 0;
        int32_t status;
        if (LSYS(LNR_wait4, pid, &status, 1 /* WNOHANG */) == pid) {
            /* Ended: another runner's server won the race for its lock
             * (then it comes up), or it failed (see the log). */
            for (int more = 0; more < 2000 && !server_up(p); more += 5)
                sleep_ms(5);
            if (server_up(p))
                return 0;
            own_server_say(err_fd, "it ended at start; see its log next to ", p->dir);
            return 1;
        }
        sleep_ms(5);
    }
    own_server_say(err_fd, "it did not start within 15 s: ", p->dir);
    return 1;
}

/* The first Wine process of a new server, and what keeps that server up
 * while it lingers: `fvm.exe __sleep`, with /dev/null for its streams.
 * Wine's first process (one started from Linux) runs wineboot, which
 * starts services.exe, winedevice.exe, explorer.exe and the rest with the
 * streams it got: those of a caller would stay open in them (its pipe
 * would not end) while the server lingers. And Wine's own processes shut
 * down about 2 s after the server's last process of the user's ends;
 * this one never does, until the init ends the server. */
static void start_keeper(const server_plan *p, char **argv, char **envp)
{
    if (!argv[0] || !argv[1])
        return;
    int32_t ready[2];
    if (LSYS(LNR_pipe2, ready, L_O_CLOEXEC, 0) != 0)
        ready[0] = ready[1] = -1;
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid != 0) {
        /* The box's program only once the keeper runs: the first process
         * of a new server starts wineboot, and wineboot Wine's services,
         * with its standard streams; had the program's fvm.exe been first,
         * they would hold the caller's (`fvm run ... | cat` waited for the
         * server's end, measured 6 s). The keeper says so on the pipe; its
         * end (a failed keeper) does too. */
        if (ready[1] >= 0)
            LSYS(LNR_close, ready[1], 0, 0);
        /* Or once wineboot runs: the keeper started it, so it is the first,
         * and the program's start overlaps wineboot's work (it waits for
         * wineboot anyway), instead of following it (+0.3 s measured). */
        for (int waited = 0; ready[0] >= 0 && pid > 0 && waited < SERVER_WAIT_MS; waited += 5) {
            struct l_pollfd pfd = {ready[0], 1 /* POLLIN */, 0};
            if (LSYS(LNR_poll, &pfd, 1, 5) != 0 || boxserver_namespace_runs("wineboot.exe"))
                break;
        }
        if (ready[0] >= 0)
            LSYS(LNR_close, ready[0], 0, 0);
        return;
    }
    set_signal_mask(FALSE);
    LSYS(LNR_setsid, 0, 0, 0);
    int64_t null_fd = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
    for (int i = 0; i < 3 && null_fd >= 0; i++)
        LSYS(LNR_dup2, null_fd, i, 0);
    if (ready[1] == 3)
        LSYS(LNR_fcntl, 3, 2 /* F_SETFD */, 0);
    else if (ready[1] >= 0)
        LSYS(LNR_dup2, ready[1], 3, 0);   /* clears close-on-exec */
    LSYS(LNR_close_range, ready[1] >= 0 ? 4 : 3, ~0u, 0);
    LSYS(LNR_chdir, "/", 0, 0);
    if (p->floor && floor_domain_seccomp() != 0)
        LSYS(LNR_exit, 1, 0, 0);
    /* Without winemenubuilder, which wineboot starts from RunServices: it
     * writes the user's desktop menus, which the box's domain refuses
     * anyway, and its start took a Wine process's CPU at every cold start.
     * Only wineboot and Wine's services inherit this environment; the
     * box's programs get the run's. */
    static char overrides[2048];
    static char *keeper_env[RUN_REQUEST_ENV_MAX + 2];
    size_t n = 0;
    BOOL said = FALSE;
    for (; envp[n] && n < RUN_REQUEST_ENV_MAX; n++) {
        keeper_env[n] = envp[n];
        if (!strncmp(envp[n], "WINEDLLOVERRIDES=", 17) && strlen(envp[n]) + 32 < sizeof overrides) {
            snprintf(overrides, sizeof overrides, "%s;winemenubuilder.exe=d", envp[n]);
            keeper_env[n] = overrides;
            said = TRUE;
        } else if (!strncmp(envp[n], "WINEDLLOVERRIDES=", 17)) {
            said = TRUE;   /* too long to add to: left as it is */
        }
    }
    if (!said)
        keeper_env[n++] = "WINEDLLOVERRIDES=winemenubuilder.exe=d";
    keeper_env[n] = NULL;
    /* argv[0] is Wine's loader, argv[1] fvm.exe (cli_again_command). */
    char *keep[] = {argv[0], argv[1], "__sleep", "2000000000", "--ready-fd", "3", NULL};
    if (ready[1] < 0)
        keep[4] = NULL;
    LSYS(LNR_execve, argv[0], keep, keeper_env);
    LSYS(LNR_exit, 127, 0, 0);
}

static void send_reply(int64_t conn, uint32_t kind, int32_t value)
{
    reply r = {kind, value};
    write_all(conn, &r, sizeof r);
}

static void runner_main(server_plan *p, int64_t conn)
{
    static char data[RUN_REQUEST_BYTES_MAX];
    static char *argv[RUN_REQUEST_ARGS_MAX + 1], *envp[RUN_REQUEST_ENV_MAX + 2];
    run_request_header h;
    struct l_cmsg_fds cmsg;
    memset(&cmsg, 0, sizeof cmsg);
    struct l_iovec iov = {&h, sizeof h};
    struct l_msghdr msg = {0};
    msg.iov = &iov;
    msg.iovlen = 1;
    msg.control = &cmsg;
    msg.controllen = sizeof cmsg;
    int64_t n = LSYS(LNR_recvmsg, conn, &msg, 0x40000000 /* MSG_CMSG_CLOEXEC */);
    if (n < (int64_t)sizeof h && n > 0)
        n = read_all(conn, (char *)&h + n, sizeof h - (size_t)n) ? (int64_t)sizeof h : -1;
    /* The descriptors first: a refused request still closes them. */
    if (cmsg.level != 1 || cmsg.type != 1 || cmsg.len != 16 + 3 * 4)
        LSYS(LNR_exit, 2, 0, 0);
    char *cwd;
    if (n != (int64_t)sizeof h || run_request_check(&h, NULL) != FVM_OK || !read_all(conn, data, h.bytes) ||
        run_request_decode(&h, data, &cwd, argv, RUN_REQUEST_ARGS_MAX + 1, envp, RUN_REQUEST_ENV_MAX + 1, NULL) !=
            FVM_OK) {
        own_server_say(cmsg.fds[2], "a malformed request was refused", NULL);
        LSYS(LNR_exit, 2, 0, 0);
    }
    int err_fd = cmsg.fds[2];
    /* A run that wants the floor never joins a server started without it
     * (its first run had --no-floor); the other way round is safe. */
    BOOL wants_floor = FALSE;
    for (uint32_t i = 0; i < h.envc && envp[i]; i++)
        wants_floor |= !strcmp(envp[i], "FVM_OWN_SERVER_FLOOR=1");
    own_display_set_env(p, envp, RUN_REQUEST_ENV_MAX + 2);   /* h.envc no longer counts envp after this */
    if (wants_floor && !p->floor) {
        own_server_say(err_fd, "it runs without its kernel floor (the run that started it had --no-floor); "
                       "stop the box (fvm stop) and run again", NULL);
        send_reply(conn, REPLY_STATUS, 1 << 8);
        LSYS(LNR_exit, 1, 0, 0);
    }
    /* The box counts as running from here until this runner ends
     * (boxserver.h); the lock goes with this process. */
    boxserver_hold_busy(p->dir);
    if (!server_up(p)) {
        if (start_server(p, envp, err_fd) != 0) {
            send_reply(conn, REPLY_STATUS, 1 << 8);
            LSYS(LNR_exit, 1, 0, 0);
        }
        start_keeper(p, argv, envp);
    }
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid == 0) {
        set_signal_mask(FALSE);
        for (int i = 0; i < 3; i++)
            LSYS(LNR_dup2, cmsg.fds[i], i, 0);
        LSYS(LNR_close_range, 3, ~0u, 0);
        if (LSYS(LNR_chdir, cwd, 0, 0) != 0)
            LSYS(LNR_chdir, "/", 0, 0);
        /* The run (fvm.exe, its broker, the box's programs) in an empty
         * network namespace of its own, as in a box on the host's server
         * (runtime/floor_ns.c): their raw sockets, UDP too, reach nothing.
         * The server, whose sockets Winsock's are, stays in the init's
         * network; names go to the relay (relay.c). A box whose policy
         * lets nothing leave is in the init's empty one already. */
        if (p->floor && !p->offline && LSYS(LNR_unshare, 0x40000000 /* CLONE_NEWNET */, 0, 0) != 0) {
            own_server_say(2, "the kernel refused a network namespace for the box's programs (see fvm doctor)", NULL);
            LSYS(LNR_exit, 1, 0, 0);
        }
        /* fvm.exe and the broker get the floor's seccomp filter too (the
         * server, which they share the domain with, does not): a box
         * program that took one of them over through the server (its own
         * NtWriteVirtualMemory stub) gets no ptrace, no namespace, no mount. */
        if (p->floor && floor_domain_seccomp() != 0) {
            own_server_say(2, "cannot install the seccomp filter for fvm.exe", NULL);
            LSYS(LNR_exit, 1, 0, 0);
        }
        LSYS(LNR_execve, argv[0], argv, envp);
        own_server_say(2, "cannot start fvm.exe in it: ", argv[0]);
        LSYS(LNR_exit, 127, 0, 0);
    }
    for (int i = 0; i < 3; i++)
        LSYS(LNR_close, cmsg.fds[i], 0, 0);
    if (pid < 0) {
        send_reply(conn, REPLY_STATUS, 1 << 8);
        LSYS(LNR_exit, 1, 0, 0);
    }
    send_reply(conn, REPLY_STARTED, 0);
    for (;;) {
        int32_t status = 0;
        if (LSYS(LNR_wait4, pid, &status, 1 /* WNOHANG */) == pid) {
            send_reply(conn, REPLY_STATUS, status);
            LSYS(LNR_exit, 0, 0, 0);
        }
        struct l_pollfd pfd = {(int32_t)conn, 1 /* POLLIN */, 0};
        if (LSYS(LNR_poll, &pfd, 1, 100) > 0) {
            char byte;
            if (LSYS(LNR_read, conn, &byte, 1) <= 0) {   /* the caller is gone */
                LSYS(LNR_kill, pid, 9, 0);
                LSYS(LNR_wait4, pid, &status, 0);
                LSYS(LNR_exit, 0, 0, 0);
            }
        }
    }
}

/* ---- the init -------------------------------------------------------------- */

static int64_t lock_file(const server_plan *p)
{
    int64_t fd = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)p->lock_path, L_O_RDWR | L_O_CREAT | L_O_CLOEXEC,
                                0600, 0, 0);
    if (fd >= 0)
        LSYS(LNR_flock, fd, 2 /* LOCK_EX */, 0);
    return fd;
}

/* The box's server has been idle for its linger time: what is left in it
 * is Wine's own processes and the keeper. So it ends now, with them
 * (boxserver_end), unless a caller is connecting (it holds the lock file
 * until it has connected). */
static void end_server(const server_plan *p, struct l_pollfd *pfd)
{
    int64_t lock = lock_file(p);
    pfd->revents = 0;
    int pid = boxserver_holder(p->dir);
    if (pid && LSYS(LNR_poll, pfd, 1, 0) == 0) {
        boxserver_end(pid);   /* Wine's own processes too: the server's end leaves them */
        for (int waited = 0; waited < 3000 && boxserver_holder(p->dir); waited += 5)
            sleep_ms(5);
    }
    LSYS(LNR_close, lock, 0, 0);
}

/* The init's end before it serves: the display it started goes with it. */
static void init_exit(server_plan *p, int code)
{
    own_display_end(p);
    LSYS(LNR_exit, code, 0, 0);
}

static void init_main(server_plan *p)
{
    set_signal_mask(TRUE);
    LSYS(LNR_setsid, 0, 0, 0);
    /* Only what the init needs: the ready pipe (3), the log (4), the
     * ruleset (5); the rest of the caller's descriptors (its connection to
     * the host's server among them) are closed. */
    int64_t ready = LSYS(LNR_fcntl, p->ready[1], 0 /* F_DUPFD */, 900);
    int64_t log = p->log_fd >= 0 ? LSYS(LNR_fcntl, p->log_fd, 0, 900) : -1;
    int64_t ruleset = p->floor ? LSYS(LNR_fcntl, p->domain.ruleset, 0, 900) : -1;
    LSYS(LNR_dup2, ready, 3, 0);
    if (log >= 0)
        LSYS(LNR_dup2, log, 4, 0);
    if (ruleset >= 0)
        LSYS(LNR_dup2, ruleset, 5, 0);
    LSYS(LNR_close_range, 6, ~0u, 0);
    p->log_fd = p->log_fd >= 0 ? 4 : -1;
    p->domain.ruleset = p->floor ? 5 : -1;
    int64_t null_fd = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
    LSYS(LNR_dup2, null_fd, 0, 0);
    LSYS(LNR_dup2, null_fd, 1, 0);
    LSYS(LNR_close, null_fd, 0, 0);
    LSYS(LNR_chdir, "/", 0, 0);
    /* A nested display first: its Xephyr is a client of the user's display,
     * which the box's namespace hides. */
    int display_failed = own_display_start_outside(p);
    if (display_failed)
        LSYS(LNR_exit, display_failed, 0, 0);
    int network_cut = 0;
    if (floor_namespace_enter(p->offline, &network_cut) != FLOOR_NS_APPLIED) {
        own_server_say(2, "the kernel refused a user and mount namespace (see fvm doctor)", NULL);
        init_exit(p, 1);
    }
    if (p->offline && !network_cut) {
        own_server_say(2, "the kernel refused a network namespace for a box whose policy lets nothing leave", NULL);
        init_exit(p, 1);
    }
    floor_namespace_hide_servers();
    display_failed = own_display_start_inside(p);
    if (display_failed)
        init_exit(p, display_failed);
    if (floor_namespace_bind_dir(p->dir, p->mount_point) != 0) {
        own_server_say(2, "cannot bind its directory (no mount here: fvm inside a Landlock domain or a container? "
                  "fvm doctor says; a box on the host's server, --host-server, needs none) over ", p->mount_point);
        init_exit(p, 1);
    }
    for (int i = 0; i < p->hives; i++)
        if (floor_namespace_bind_file(p->hive_copy[i], p->hive_file[i]) != 0) {
            own_server_say(2, "cannot bind the host registry's copy over ", p->hive_file[i]);
            init_exit(p, 1);
        }
    if (p->root[0]) {
        /* Other boxes and fvm's storage out of sight, names too (the domain
         * keeps their contents out of reach; listing is allowed there). */
        const char *keep[3] = {p->box_unix, p->dir, p->lock_path};
        const int keep_is_dir[3] = {1, 1, 0};
        if (floor_namespace_hide_root(p->root, keep, keep_is_dir, 3) != 0) {
            own_server_say(2, "cannot hide the other boxes in ", p->root);
            init_exit(p, 1);
        }
    }
    for (int i = 0; i < p->hidden_count; i++)
        floor_namespace_hide_folder(p->hidden[i]);
    if (p->floor && !floor_domain_restrict(&p->domain)) {
        own_server_say(2, "cannot enter the box's Landlock domain: ", p->domain.why);
        init_exit(p, 1);
    }
    boxserver_hold_init(p->dir);   /* while this init lives (the provider relay looks: relay.c) */
    int64_t dir_fd = LSYS(LNR_openat, L_AT_FDCWD, p->dir, L_O_PATH | L_O_DIRECTORY | L_O_CLOEXEC);
    int64_t listener = LSYS(LNR_socket, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | L_O_CLOEXEC, 0);
    struct l_sockaddr_un addr;
    l_unix_address_in(&addr, dir_fd, "launch");
    LSYS(LNR_unlink, addr.path, 0, 0);
    if (dir_fd < 0 || listener < 0 || LSYS(LNR_bind, listener, &addr, sizeof addr) != 0 ||
        LSYS(LNR_listen, listener, 64, 0) != 0) {
        own_server_say(2, "cannot listen in ", p->dir);
        init_exit(p, 1);
    }
    LSYS(LNR_write, 3, "1", 1);
    LSYS(LNR_close, 3, 0, 0);
    int64_t null2 = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
    LSYS(LNR_dup2, null2, 2, 0);
    LSYS(LNR_close, null2, 0, 0);
    int64_t runners[256];
    int count = 0;
    int64_t busy_at = now_ms();   /* when the box was last seen running */
    for (;;) {
        struct l_pollfd pfd = {(int32_t)listener, 1 /* POLLIN */, 0};
        if (LSYS(LNR_poll, &pfd, 1, count ? 20 : 250) > 0) {
            int64_t conn = LSYS(LNR_accept4, listener, 0, L_O_CLOEXEC /* SOCK_CLOEXEC */);
            if (conn >= 0 && count < 256) {
                int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
                if (pid == 0) {
                    LSYS(LNR_close, listener, 0, 0);
                    runner_main(p, conn);
                }
                if (pid > 0)
                    runners[count++] = pid;
            }
            if (conn >= 0)
                LSYS(LNR_close, conn, 0, 0);
        }
        for (int i = 0; i < count;) {
            int32_t status;
            if (LSYS(LNR_wait4, runners[i], &status, 1 /* WNOHANG */) == runners[i])
                runners[i] = runners[--count];
            else
                i++;
        }
        BOOL up = server_up(p);
        if (count || (up && boxserver_busy_dir(p->dir))) {
            busy_at = now_ms();
            continue;
        }
        if (up) {
            /* Idle: the box has ended, its server lingers for a next run. */
            if (now_ms() - busy_at >= p->linger_ms)
                end_server(p, &pfd);
            continue;
        }
        /* Nothing left: end, unless a caller connected meanwhile. */
        int64_t lock = lock_file(p);
        pfd.revents = 0;
        if (LSYS(LNR_poll, &pfd, 1, 0) > 0) {
            LSYS(LNR_close, lock, 0, 0);
            continue;
        }
        LSYS(LNR_unlink, addr.path, 0, 0);
        LSYS(LNR_close, listener, 0, 0);
        /* Whatever of the box's namespace is left (Wine's own processes
         * of a server that ended) ends with its init. */
        boxserver_end((int)LSYS(39 /* getpid */, 0, 0, 0));
        own_display_end(p);
        LSYS(LNR_close, lock, 0, 0);
        LSYS(LNR_exit, 0, 0, 0);
    }
}

/* ---- the caller (fvm.exe in the host's server) --------------------------- */

/* Where Wine looks for the prefix's server: /tmp/<name> from the prefix's
 * `wineserver` file (Debian's build), else /tmp/.wine-UID (upstream). */
static BOOL find_mount_point(server_plan *p)
{
    const char *prefix = cli_linux_env("WINEPREFIX"), *home = cli_linux_env("HOME");
    static char path[FVM_PATH_MAX * 3], name[256];
    if (prefix)
        snprintf(path, sizeof path, "%s/wineserver", prefix);
    else if (home)
        snprintf(path, sizeof path, "%s/.wine/wineserver", home);
    else
        return FALSE;
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_RDONLY | L_O_CLOEXEC);
    int64_t n = fd >= 0 ? LSYS(LNR_read, fd, name, sizeof name - 1) : -1;
    if (fd >= 0)
        LSYS(LNR_close, fd, 0, 0);
    if (n > 0) {
        name[n] = 0;
        name[strcspn(name, "\r\n")] = 0;
        if (!name[0] || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
            return FALSE;
        snprintf(p->mount_point, sizeof p->mount_point, "/tmp/%s", name);
    } else {
        snprintf(p->mount_point, sizeof p->mount_point, "/tmp/.wine-%lld", (long long)LSYS(LNR_getuid_, 0, 0, 0));
    }
    return TRUE;
}

/* The wineserver binary next to Wine's loader (WINESERVER overrides). */
static BOOL find_wineserver(server_plan *p)
{
    const char *env = cli_linux_env("WINESERVER");
    if (env) {
        snprintf(p->wineserver, sizeof p->wineserver, "%s", env);
        return LSYS(LNR_access_, p->wineserver, 1 /* X_OK */, 0) == 0 &&
               floor_domain_real_path(p->wineserver, sizeof p->wineserver);
    }
    static char loader[FVM_PATH_MAX * 3];
    if (!cli_wine_loader(loader, sizeof loader))
        return FALSE;
    char *slash = strrchr(loader, '/');
    if (!slash)
        return FALSE;
    *slash = 0;
    /* Debian's `wineserver` is a shell script choosing wineserver64. */
    static const char *const names[] = {"wineserver64", "wineserver"};
    for (int i = 0; i < 2; i++) {
        snprintf(p->wineserver, sizeof p->wineserver, "%s/%s", loader, names[i]);
        if (LSYS(LNR_access_, p->wineserver, 1 /* X_OK */, 0) == 0)
            return floor_domain_real_path(p->wineserver, sizeof p->wineserver);
    }
    return FALSE;
}

static int plan_paths(const box *b, int display, BOOL floor, server_plan *p)
{
    memset(p, 0, sizeof *p);
    p->display = display;
    own_display_plan(b, p);
    p->floor = floor;
    p->log_fd = -1;
    p->domain.ruleset = -1;
    p->ready[0] = p->ready[1] = -1;
    wchar_t dir[FVM_PATH_MAX], parent[FVM_PATH_MAX];
    if (!fvm_box_server_dir(b->path, dir, FVM_PATH_MAX))
        return cli_error("box '%s': its server directory's path is too long", b->name);
    fvm_wcscpy(parent, FVM_PATH_MAX, dir);
    *wcsrchr(parent, L'\\') = 0;
    CreateDirectoryW(parent, NULL);
    if (!CreateDirectoryW(dir, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
        return cli_win_error(GetLastError(), "box '%s': cannot create its server directory", b->name);
    if (!boxserver_linux_path(dir, p->dir, sizeof p->dir) || !floor_domain_real_path(p->dir, sizeof p->dir))
        return cli_error("box '%s': cannot find its server directory's Linux path", b->name);
    /* Wine's server refuses a directory others can reach. */
    LSYS(LNR_chmod, p->dir, 0700, 0);
    snprintf(p->lock_path, sizeof p->lock_path, "%s.lock", p->dir);
    if (!find_mount_point(p))
        return cli_error("box '%s': cannot tell where Wine looks for its server (WINEPREFIX)", b->name);
    return 0;
}

/* ---- the box's policy (ownserver.h), and the host registry the box's server
 *      loads (ownserver_registry.c) ------------------------------------------ */

const loaded_policy *own_box_policy(const box *b)
{
    static loaded_policy cache;
    if (cache.loaded && !wcscmp(cache.owner, b->path))
        return &cache;
    if (cache.pol)
        policy_free(cache.pol);
    if (cache.blob)
        policy_blob_free(cache.blob);
    if (cache.net_rules)
        HeapFree(GetProcessHeap(), 0, cache.net_rules);
    memset(&cache, 0, sizeof cache);
    cache.loaded = TRUE;
    fvm_wcscpy(cache.owner, FVM_PATH_MAX, b->path);
    wchar_t ini[FVM_PATH_MAX], mode[16], publish[8];
    _snwprintf(ini, FVM_PATH_MAX, L"%ls\\box.ini", b->path);
    ini[FVM_PATH_MAX - 1] = 0;
    GetPrivateProfileStringW(L"box", L"net", L"", mode, 16, ini);
    GetPrivateProfileStringW(L"box", L"publish", L"", publish, 8, ini);
    cache.isolated = !_wcsicmp(mode, L"isolated");
    cache.published = publish[0] != 0;
    wchar_t path[FVM_PATH_MAX];
    char why[256];
    if (fvm_policy_box_path(b->path, path, FVM_PATH_MAX) != FVM_OK ||
        fvm_policy_load(path, &cache.pol, NULL, NULL, why, sizeof why) != FVM_OK) {
        cache.pol = NULL;
        return &cache;
    }
    /* The hash is of the compiled form so that a change in an included
     * file counts too. */
    fvm_error err;
    if (policy_compile(cache.pol, &cache.blob, &cache.blob_len, &err) == FVM_OK) {
        uint64_t h = 1469598103934665603ull;   /* FNV-1a */
        for (size_t i = 0; i < cache.blob_len; i++)
            h = (h ^ ((const uint8_t *)cache.blob)[i]) * 1099511628211ull;
        cache.hash = h;
        cache.has_view = policy_blob_open(cache.blob, cache.blob_len, &cache.view, &err) == FVM_OK;
        size_t bad = 0, count = cache.has_view ? net_policy_load_every(&cache.view, NULL, 0, &bad) : 0;
        if (count && (cache.net_rules = HeapAlloc(GetProcessHeap(), 0, count * sizeof *cache.net_rules)))
            cache.net_count = net_policy_load_every(&cache.view, cache.net_rules, count, &bad);
    } else {
        cache.blob = NULL;
    }
    return &cache;
}

const struct policy_view *own_server_policy_view(const box *b)
{
    const loaded_policy *lp = own_box_policy(b);
    return lp->has_view ? &lp->view : NULL;
}

static void stamp_text(const box *b, const server_plan *p, char *out, size_t cap)
{
    /* The net mode too: the TCP ports of the domain depend on it. */
    const loaded_policy *lp = own_box_policy(b);
    snprintf(out, cap, "floor=%d display=%d nested=%d:%.64s policy=%016llx isolated=%d offline=%d\n", p->floor ? 1 : 0,
             p->display, p->nested ? 1 : 0, p->nested ? p->host_display : "", (unsigned long long)lp->hash,
             lp->isolated ? 1 : 0, own_box_offline(b) ? 1 : 0);
}

/* Whether the fresh save and the run's plan match what the box's init was
 * started from. */
static BOOL same_as_loaded(const box *b, const server_plan *p)
{
    wchar_t next[FVM_PATH_MAX], loaded[FVM_PATH_MAX];
    for (int i = 0; i < OWN_HIVES; i++)
        if (!own_hive_copy_path(b, "next.", i, next) || !own_hive_copy_path(b, "", i, loaded) || !own_same_file(next, loaded))
            return FALSE;
    char want[192];
    stamp_text(b, p, want, sizeof want);
    DWORD len = 0;
    char *had = own_hive_copy_path(b, "", OWN_HIVES, loaded) ? own_read_whole(loaded, &len) : NULL;
    BOOL same = had && len == strlen(want) && !memcmp(had, want, len);
    if (had)
        HeapFree(GetProcessHeap(), 0, had);
    return same;
}

/* The last bytes of what was copied, to find the nested desktop's sections
 * at the end of a copy of HKCU. */
typedef struct copy_tail {
    char bytes[sizeof OWN_NESTED_DESKTOP_SECTIONS];
    size_t len;
    uint64_t total;
} copy_tail;

static void tail_keep(copy_tail *t, const char *data, size_t n)
{
    size_t cap = sizeof t->bytes, keep = n < cap ? n : cap;
    size_t old = t->len + keep > cap ? cap - keep : t->len;   /* how much of the previous tail stays */
    memmove(t->bytes, t->bytes + t->len - old, old);
    memcpy(t->bytes + old, data + n - keep, keep);
    t->len = old + keep;
    t->total += n;
}

/* A prefix whose host server has not written a hive yet (a new prefix:
 * Wine's server writes the registry about every 30 s and at its end) has
 * no file to bind the copy over, and the init failed. The copy is what that
 * server would write (RegSaveKey of the hive's root is the same text), so
 * it is put there, under a temporary name first and linked in only if
 * the file is still missing: a save of the host's server wins. A nested
 * box's copy of HKCU ends with the box's virtual desktop (nest_desktop),
 * which is the box's, not the host's: the prefix's file is cut before it
 * (a host whose registry had it got Wine's virtual desktop for every
 * program, session 20). */
static void give_prefix_its_hive(const char *copy, const char *target)
{
    if (LSYS(LNR_access_, target, 0, 0) == 0)
        return;
    static char tmp[FVM_PATH_MAX * 3 + 16], data[64 * 1024];
    static const char nested[] = OWN_NESTED_DESKTOP_SECTIONS;
    snprintf(tmp, sizeof tmp, "%s.fvm-new", target);
    LSYS(LNR_unlink, tmp, 0, 0);
    int64_t in = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)copy, L_O_RDONLY | L_O_CLOEXEC, 0, 0, 0);
    int64_t out = in < 0 ? -1 : linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)tmp,
                                               L_O_WRONLY | L_O_CREAT | 0200 /* O_EXCL */ | L_O_CLOEXEC, 0600, 0, 0);
    BOOL ok = out >= 0;
    copy_tail tail = {{0}, 0, 0};
    for (int64_t n; ok && (n = LSYS(LNR_read, in, data, sizeof data)) != 0;) {
        ok = n > 0 && write_all(out, data, (size_t)n);
        if (ok)
            tail_keep(&tail, data, (size_t)n);
    }
    size_t nested_len = sizeof nested - 1;
    if (ok && tail.len >= nested_len && !memcmp(tail.bytes + tail.len - nested_len, nested, nested_len))
        ok = LSYS(LNR_truncate, tmp, tail.total - nested_len, 0) == 0;
    if (in >= 0)
        LSYS(LNR_close, in, 0, 0);
    if (out >= 0)
        LSYS(LNR_close, out, 0, 0);
    if (ok)
        LSYS(LNR_link, tmp, target, 0);   /* EEXIST: the host's server wrote it meanwhile */
    LSYS(LNR_unlink, tmp, 0, 0);
}

/* The fresh save becomes what the new init binds over the prefix's files. */
static void promote_host_registry(const box *b, server_plan *p)
{
    const char *prefix = cli_linux_env("WINEPREFIX"), *home = cli_linux_env("HOME");
    static char prefix_dir[FVM_PATH_MAX * 3];
    if (prefix)
        snprintf(prefix_dir, sizeof prefix_dir, "%s", prefix);
    else if (home)
        snprintf(prefix_dir, sizeof prefix_dir, "%s/.wine", home);
    else
        prefix_dir[0] = 0;
    BOOL have_prefix = prefix_dir[0] && floor_domain_real_path(prefix_dir, sizeof prefix_dir);
    wchar_t next[FVM_PATH_MAX], loaded[FVM_PATH_MAX];
    p->hives = 0;
    for (int i = 0; i < OWN_HIVES; i++) {
        if (!own_hive_copy_path(b, "next.", i, next) || !own_hive_copy_path(b, "", i, loaded))
            continue;
        DeleteFileW(loaded);
        if (!MoveFileW(next, loaded) || !have_prefix)
            continue;
        int n = p->hives;
        if (boxserver_linux_path(loaded, p->hive_copy[n], sizeof p->hive_copy[n]) &&
            LSYS(LNR_chmod, p->hive_copy[n], 0600, 0) == 0) {   /* the user's registry: theirs alone */
            snprintf(p->hive_file[n], sizeof p->hive_file[n], "%s/%s", prefix_dir, own_hive_file(i));
            give_prefix_its_hive(p->hive_copy[n], p->hive_file[n]);
            p->hives++;
        }
    }
    char text[192];
    stamp_text(b, p, text, sizeof text);
    HANDLE f = own_hive_copy_path(b, "", OWN_HIVES, loaded)
                   ? CreateFileW(loaded, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL)
                   : INVALID_HANDLE_VALUE;
    DWORD put;
    if (f != INVALID_HANDLE_VALUE) {
        WriteFile(f, text, (DWORD)strlen(text), &put, NULL);
        CloseHandle(f);
    }
}

/* The Linux folder a file pattern's literal part names (\??\C:\data\*.txt:
 * C:\data), FALSE for a pattern that is not of a drive or names none. */
static BOOL pattern_folder(const policy_pattern *pat, char *out, size_t cap)
{
    const uint16_t *u = pat->units;
    if (pat->len < 7 || u[0] != '\\' || u[1] != '?' || u[2] != '?' || u[3] != '\\' || u[5] != ':' || u[6] != '\\')
        return FALSE;
    size_t literal = 4;
    while (literal < pat->len && u[literal] != '*' && u[literal] != '?')
        literal++;
    /* A whole name without wildcards: its folder, where it is made and renamed. */
    size_t end = literal;
    while (end > 6 && u[end - 1] != '\\')
        end--;
    wchar_t win[FVM_PATH_MAX];
    if (end - 4 >= FVM_PATH_MAX)
        return FALSE;
    for (size_t i = 4; i < end; i++)
        win[i - 4] = (wchar_t)u[i];
    win[end - 4] = 0;
    return boxserver_linux_path(win, out, cap) && floor_domain_real_path(out, cap);
}

/* Whether child is parent or lies beneath it (Linux paths). */
static BOOL inside(const char *child, const char *parent)
{
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        n--;
    if (n == 1 && parent[0] == '/')
        return TRUE;
    return !strncmp(child, parent, n) && (child[n] == 0 || child[n] == '/');
}

/* `open` file rules reach the host's files through the box's server, which
 * runs in the box's domain: each rule's folder (its pattern up to the first
 * wildcard) is made writable there, as far as it exists. The hooks still
 * match the rule's whole pattern for a program's calls; one that steps
 * around them may write anywhere in such a folder (docs/design.md). A
 * folder that holds the FVM root, or lies in it, is never opened so: other
 * boxes and fvm's own storage stay out of reach. */
/* An open rule for a key, the screen or the clipboard reaches the host's
 * thing through the host's Wine server; in a box with a server of its own
 * it reaches that server's copy, if any (docs/design.md, "What only the
 * host's server has"). Said once per rule when the box's server starts, so
 * that a policy written for the host's server does not quietly do less.
 * Not for [object] rules: the shipped policy's own (\RPC Control\**, the
 * tray window's class) are meant for whatever server the box is on, where
 * the box's RPC servers and windows are, and would be said at every start
 * of every box. */
static void say_open_rules_stay_in_the_box(const box *b)
{
    const policy *pol = own_box_policy(b)->pol;
    for (size_t i = 0; pol && i < policy_rule_count(pol); i++) {
        const policy_rule *r = policy_rule_at(pol, i);
        if (r->action != POLICY_ACTION_OPEN ||
            (r->type != POLICY_TYPE_KEY && r->type != POLICY_TYPE_SCREEN && r->type != POLICY_TYPE_DESKTOP))
            continue;
        fprintf(stderr, "fvm: box '%s': %s:%u: 'open %s' reaches the copy in the box's own Wine server, not the "
                        "host's (a box created with --host-server reaches the host's)\n",
                b->name, r->file, r->line, r->text ? r->text : policy_type_name(r->type));
    }
}

static BOOL add_open_folders(const box *b, const char *box_unix, floor_domain *d)
{
    const policy *pol = own_box_policy(b)->pol;
    static char root[FVM_PATH_MAX * 3], folder[FVM_PATH_MAX * 3];
    fvm_error err;
    if (!pol)
        return TRUE;   /* the run's own load of the policy says what is wrong with it */
    BOOL ok = floor_fvm_root(box_unix, root, sizeof root, &err) == FVM_OK;
    for (size_t i = 0; ok && i < policy_rule_count(pol); i++) {
        const policy_rule *r = policy_rule_at(pol, i);
        if (r->type != POLICY_TYPE_FILE || r->action != POLICY_ACTION_OPEN)
            continue;
        for (size_t k = 0; ok && k < r->pattern_count; k++) {
            if (!pattern_folder(&r->patterns[k], folder, sizeof folder))
                continue;
            if (inside(folder, root) || inside(root, folder)) {
                fprintf(stderr, "fvm: box '%s': %s:%u: the open rule's folder %s holds fvm's storage; it stays "
                                "read-only for the box's Wine server\n", b->name, r->file, r->line, folder);
                continue;
            }
            ok = floor_domain_add(d, folder, LL_BOX_RIGHTS, 0);
        }
    }
    return ok;
}

/* The folders the box's policy hides or denies whole to every program
 * (core/policy_floor.c), for the init to lay an empty tmpfs over: the box's
 * server, which opens files for its programs, finds nothing there either.
 * Never one that holds or lies in the FVM root, nor a missing one. */
static void plan_hidden_folders(const box *b, server_plan *p)
{
    const loaded_policy *lp = own_box_policy(b);
    uint32_t rules[16];
    size_t n = lp->has_view ? policy_hidden_folders(&lp->view, rules, 16) : 0;
    p->hidden_count = 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        policy_rule_info info;
        if (policy_view_rule(&lp->view, rules[i], &info) != FVM_OK)
            continue;
        wchar_t win[FVM_PATH_MAX];
        char *folder = p->hidden[p->hidden_count];
        if (!policy_hidden_folder_win32(info.pattern, info.pattern_len, (uint16_t *)win, FVM_PATH_MAX) ||
            !boxserver_linux_path(win, folder, FVM_PATH_MAX) || !floor_domain_real_path(folder, FVM_PATH_MAX) ||
            LSYS(LNR_access_, folder, 0, 0) != 0 || inside(folder, p->root) || inside(p->root, folder))
            continue;
        p->hidden_count++;
    }
}

/* What only starting an init needs: the wineserver, the log, the domain. */
static int plan_init(const box *b, server_plan *p)
{
    if (!find_wineserver(p))
        return cli_error("box '%s': cannot find Wine's wineserver next to its loader (set WINESERVER)", b->name);
    const char *linger = cli_linux_env("FVM_SERVER_LINGER_MS");
    p->linger_ms = linger ? atoll(linger) : LINGER_MS;
    static char log_unix[FVM_PATH_MAX * 3];
    snprintf(log_unix, sizeof log_unix, "%s.log", p->dir);
    p->log_fd = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)log_unix,
                               L_O_WRONLY | L_O_CREAT | L_O_CLOEXEC | 02000 /* O_APPEND */, 0600, 0, 0);
    /* Even without the floor: a namespace is not Landlock, and --no-floor
     * says nothing about the policy's network. */
    p->offline = own_box_offline(b);
    if (!p->floor)
        return 0;
    own_plan_network(b, p);
    char *box_unix = p->box_unix;
    if (!boxserver_linux_path(b->path, box_unix, sizeof p->box_unix) ||
        !floor_domain_real_path(box_unix, sizeof p->box_unix))
        return cli_error("box '%s': cannot find the box folder's Linux path", b->name);
    fvm_error root_err;
    if (floor_fvm_root(box_unix, p->root, sizeof p->root, &root_err) != FVM_OK)
        p->root[0] = 0;   /* the domain says what is wrong with it (floor_domain_box) */
    else
        plan_hidden_folders(b, p);
    /* Abstract sockets as the floor has them (runtime/floor.c): scoped for a
     * box with a display of its own or none, else libxcb cannot reach X. */
    BOOL scope_abstract = p->display >= 0 || p->nested || !cli_linux_env("DISPLAY");
    static uint8_t denied[8192];
    size_t tcp_denied = own_tcp_connect_denied(b, denied);
    floor_domain *d = &p->domain;
    BOOL ok = floor_domain_begin(d, tcp_denied ? LL_NET_CONNECT_TCP : 0,
                                 LL_SCOPE_SIGNAL | (scope_abstract ? LL_SCOPE_ABSTRACT_UNIX : 0)) &&
              floor_domain_box(d, box_unix) &&
              floor_domain_add(d, p->dir, LL_BOX_RIGHTS, 1) &&
              floor_domain_add(d, p->wineserver, LL_EXECUTE | LL_READ_FILE, 1);
    /* The copies of the host registry, bound over the prefix's files, are
     * reached through their own inodes (Landlock does not look at the
     * mount point a bind covers), which lie in the FVM root, hidden. */
    for (int i = 0; ok && i < p->hives; i++)
        ok = floor_domain_add(d, p->hive_copy[i], LL_READ_FILE, 1);
    ok = ok && add_open_folders(b, box_unix, d);
    say_open_rules_stay_in_the_box(b);
    /* Every port but the denied ones (Landlock only allows). */
    for (uint32_t port = 1; ok && tcp_denied && d->abi >= 4 && port <= 65535; port++)
        if (!(denied[port / 8] & (1u << (port % 8))))
            ok = floor_domain_add_port(d, (uint16_t)port, LL_NET_CONNECT_TCP);
    if (!ok) {
        floor_domain_drop(d);
        return cli_error("box '%s': its Wine server's kernel floor cannot be set up: %s (fvm run --no-floor starts "
                         "it without)", b->name, d->why);
    }
    return 0;
}

static int64_t connect_init(const server_plan *p)
{
    int64_t dir_fd = LSYS(LNR_openat, L_AT_FDCWD, p->dir, L_O_PATH | L_O_DIRECTORY | L_O_CLOEXEC);
    if (dir_fd < 0)
        return -1;
    int64_t s = LSYS(LNR_socket, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | L_O_CLOEXEC, 0);
    struct l_sockaddr_un addr;
    l_unix_address_in(&addr, dir_fd, "launch");
    if (s >= 0 && LSYS(LNR_connect, s, &addr, sizeof addr) != 0) {
        LSYS(LNR_close, s, 0, 0);
        s = -1;
    }
    LSYS(LNR_close, dir_fd, 0, 0);
    return s;
}

/* Ends an init and everything of its namespace (its server, lingering
 * idle), found as the process that listens on the connection's other end. */
static void end_idle_init(int64_t conn)
{
    struct {
        int32_t pid, uid, gid;
    } cred = {0, 0, 0};
    uint32_t len = sizeof cred;
    if (linux_syscall6(55 /* getsockopt */, conn, 1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, (int64_t)&cred, (int64_t)&len, 0) != 0 || cred.pid <= 0)
        return;
    boxserver_end(cred.pid);
    char proc[32];
    snprintf(proc, sizeof proc, "/proc/%d", cred.pid);
    for (int waited = 0; waited < 3000 && LSYS(LNR_access_, proc, 0, 0) == 0; waited += 5)
        sleep_ms(5);
}

static int start_init(const box *b, server_plan *p)
{
    if (LSYS(LNR_pipe2, p->ready, L_O_CLOEXEC, 0) != 0)
        return cli_error("box '%s': cannot create a pipe", b->name);
    fflush(stdout);
    fflush(stderr);
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid == 0) {
        /* A fork whose own child is the init, so the init is nobody's child here. */
        int64_t init = LSYS(LNR_clone, 17, 0, 0);
        if (init == 0)
            init_main(p);
        LSYS(LNR_exit, init < 0, 0, 0);
    }
    LSYS(LNR_close, p->ready[1], 0, 0);
    int32_t status;
    if (pid > 0)
        while (LSYS(LNR_wait4, pid, &status, 0) == -4)
            ;
    char byte = 0;
    int64_t n;
    while ((n = LSYS(LNR_read, p->ready[0], &byte, 1)) == -4)
        ;
    LSYS(LNR_close, p->ready[0], 0, 0);
    floor_domain_drop(&p->domain);
    if (p->log_fd >= 0)
        LSYS(LNR_close, p->log_fd, 0, 0);
    if (pid < 0 || n != 1)
        return cli_error("box '%s': its Wine server's init did not start (see above)", b->name);
    return 0;
}

/* A command of fvm's own run inside the box's server with its standard
 * output captured (own_server_capture), instead of this fvm.exe's command
 * line and streams. */
typedef struct captured {
    const char *const *args;   /* fvm.exe's arguments, NULL-ended */
    int32_t out[2];            /* the pipe its standard output goes to */
    char *buf;                 /* what it wrote, up to cap - 1 bytes, 0-ended */
    size_t cap, got;
} captured;

/* Reads fd to its end (what does not fit is read and dropped). */
static size_t drain(int64_t fd, char *buf, size_t cap)
{
    size_t got = 0;
    char spill[512];
    for (;;) {
        BOOL room = got + 1 < cap;
        int64_t n = LSYS(LNR_read, fd, room ? buf + got : spill, room ? cap - 1 - got : sizeof spill);
        if (n == -4 /* EINTR */)
            continue;
        if (n <= 0)
            break;
        if (room)
            got += (size_t)n;
    }
    buf[got] = 0;
    return got;
}

/* Whether the box's policy has a rule a decision provider answers. */
static BOOL policy_asks(const box *b)
{
    const policy *pol = own_box_policy(b)->pol;
    BOOL asks = FALSE;
    for (size_t i = 0; pol && !asks && i < policy_rule_count(pol); i++)
        asks = policy_rule_at(pol, i)->action == POLICY_ACTION_ASK;
    return asks;
}

/* The relay (relay.c) of a new init whose box's policy asks or lets some
 * traffic out (its programs' names are resolved there): a
 * process of the host's server, started from Linux as nobody's child here,
 * with /dev/null for its streams (a caller's pipe must end with its run). */
static void start_relay(const box *b)
{
    if (!policy_asks(b) && own_box_offline(b))
        return;   /* nothing to ask, no name to resolve */
    run_again plan = {{NULL}, {"WINESERVERSOCKET=", MARKER}, NULL, NULL, NULL};
    char **argv, **envp;
    if (!cli_again_command(b, &plan, &argv, &envp))
        return;
    argv[2] = "__box-relay";   /* argv[0], argv[1]: Wine's loader and fvm.exe */
    argv[3] = (char *)b->name;
    argv[4] = NULL;
    fflush(stdout);
    fflush(stderr);
    int64_t pid = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (pid == 0) {
        if (LSYS(LNR_clone, 17, 0, 0) == 0) {
            LSYS(LNR_setsid, 0, 0, 0);
            int64_t null_fd = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
            for (int i = 0; i < 3 && null_fd >= 0; i++)
                LSYS(LNR_dup2, null_fd, i, 0);
            LSYS(LNR_close_range, 3, ~0u, 0);
            set_signal_mask(FALSE);
            LSYS(LNR_execve, argv[0], argv, envp);
        }
        LSYS(LNR_exit, 0, 0, 0);
    }
    int32_t status;
    if (pid > 0)
        while (LSYS(LNR_wait4, pid, &status, 0) == -4)
            ;
}

static BOOL send_request(const box *b, int64_t conn, char **argv, char **envp, int32_t out_fd)
{
    static char data[RUN_REQUEST_BYTES_MAX];
    static char cwd[FVM_PATH_MAX * 3];
    int64_t n = LSYS(LNR_readlink, "/proc/self/cwd", cwd, sizeof cwd - 1);
    cwd[n > 0 ? n : 0] = 0;
    run_request_header h;
    fvm_error err;
    if (run_request_encode(n > 0 ? cwd : "/", argv, envp, data, sizeof data, &h, &err) != FVM_OK)
        return cli_error("box '%s': %s", b->name, err.message), FALSE;
    struct l_cmsg_fds cmsg = {16 + 3 * 4, 1, 1, {0, out_fd, 2}, 0};
    struct l_iovec iov = {&h, sizeof h};
    struct l_msghdr msg = {0};
    msg.iov = &iov;
    msg.iovlen = 1;
    msg.control = &cmsg;
    msg.controllen = sizeof cmsg;
    if (LSYS(LNR_sendmsg, conn, &msg, 0x4000 /* MSG_NOSIGNAL */) != (int64_t)sizeof h || !write_all(conn, data, h.bytes))
        return cli_error("box '%s': cannot send the command to its Wine server's init", b->name), FALSE;
    return TRUE;
}

/* Sends this fvm.exe's command to the box's init (started first if none
 * runs and start); 1 with *exit_code, or 0 when no init runs and none was
 * to be started. */
static int request(const box *b, int display, BOOL no_floor, BOOL start, captured *capture, int *exit_code)
{
    server_plan *p = &g_plan;
    if ((*exit_code = plan_paths(b, display, !no_floor, p)) != 0)
        return 1;
    HANDLE box_lock = NULL;
    if (start) {
        wchar_t lock_name[FVM_OBJ_NAME_MAX];
        fvm_box_object_name(b->path, FVM_OBJ_LOCK, lock_name, FVM_OBJ_NAME_MAX);
        if (!(box_lock = CreateMutexW(NULL, FALSE, lock_name)))
            return (*exit_code = cli_win_error(GetLastError(), "cannot create the lock of box '%s'", b->name)), 1;
        WaitForSingleObject(box_lock, INFINITE);
    }
    int64_t lock = lock_file(p);
    int64_t conn = connect_init(p);
    BOOL saved = FALSE;
    if (conn >= 0 && start && !boxserver_busy_dir(p->dir)) {
        /* The box is not running: its server, if up, lingers from its last
         * run, with the host registry of then. A run starts from the
         * host's registry as it is now, so the server starts again when
         * that differs (or the floor or display asked for). */
        own_save_host_registry(b);
        saved = TRUE;
        if (!same_as_loaded(b, p)) {
            end_idle_init(conn);
            LSYS(LNR_close, conn, 0, 0);
            conn = -1;
        }
    }
    if (conn < 0 && start && boxserver_pid(b->path)) {
        /* A server with no init (the init was killed): no run can join it
         * any more (a new init's domain would be a sibling of its), so it
         * is ended, and its box's processes with it. */
        fprintf(stderr, "fvm: box '%s': its Wine server had lost its init; ending it\n", b->name);
        boxserver_kill(b->path, 3000);
    }
    if (conn < 0 && start) {
        if (!saved)
            own_save_host_registry(b);
        promote_host_registry(b, p);
        *exit_code = plan_init(b, p);
        if (!*exit_code)
            *exit_code = start_init(b, p);
        if (!*exit_code)
            start_relay(b);
        if (!*exit_code && (conn = connect_init(p)) < 0)
            *exit_code = cli_error("box '%s': cannot reach its Wine server's init", b->name);
    }
    if (lock >= 0)
        LSYS(LNR_close, lock, 0, 0);
    int handled = conn >= 0 || *exit_code != 0;
    if (conn >= 0) {
        static char set_display[32], set_marker[40];
        run_again plan = {{MARKER, no_floor ? "FVM_OWN_SERVER_FLOOR=0" : "FVM_OWN_SERVER_FLOOR=1"},
                          {"WINESERVERSOCKET="}, NULL, NULL, NULL};
        if (display >= 0) {
            snprintf(set_display, sizeof set_display, "DISPLAY=:%d", display);
            snprintf(set_marker, sizeof set_marker, "FVM_OWN_DISPLAY=%d", display);
            plan.set[2] = set_display;
            plan.set[3] = set_marker;
        }
        char **argv, **envp;
        reply r = {0, 0};
        BOOL ok = cli_again_command(b, &plan, &argv, &envp);
        if (ok && capture) {   /* argv[0], argv[1]: Wine's loader and fvm.exe */
            size_t n = 0;
            for (; capture->args[n] && n < 64; n++)
                argv[2 + n] = (char *)capture->args[n];
            argv[2 + n] = NULL;
        }
        if (ok)
            ok = send_request(b, conn, argv, envp, capture ? capture->out[1] : 1);
        if (capture) {   /* the command holds its end now: EOF comes when it ends */
            LSYS(LNR_close, capture->out[1], 0, 0);
            capture->out[1] = -1;
        }
        if (!ok)
            *exit_code = EXIT_FAIL;
        else if (read_all(conn, &r, sizeof r) && r.kind == REPLY_STARTED) {
            if (box_lock) {
                ReleaseMutex(box_lock);
                CloseHandle(box_lock);
                box_lock = NULL;
            }
            if (capture)   /* drained before the status: the command may fill the pipe */
                capture->got = drain(capture->out[0], capture->buf, capture->cap);
            if (!read_all(conn, &r, sizeof r))
                r.kind = 0;
        }
        if (!*exit_code && r.kind == REPLY_STATUS)
            *exit_code = cli_exit_status(r.value);
        else if (!*exit_code)
            *exit_code = cli_error("box '%s': its Wine server's init ended the command", b->name);
        LSYS(LNR_close, conn, 0, 0);
    }
    if (box_lock) {
        ReleaseMutex(box_lock);
        CloseHandle(box_lock);
    }
    return handled;
}

int own_server_run(const box *b, int display, BOOL no_floor, int *exit_code)
{
    if (!cli_on_linux() || own_server_inside())
        return 0;
    return request(b, display, no_floor, TRUE, NULL, exit_code);
}

int own_server_join(const box *b, int *exit_code)
{
    if (!cli_on_linux() || own_server_inside() || !fvm_box_own_server(b->path) || !boxserver_busy(b->path))
        return 0;
    /* fvm's own verbs: no floor asked of the server (stop must reach one started with --no-floor). */
    return request(b, own_display_number(b), TRUE, FALSE, NULL, exit_code);
}

BOOL own_server_capture(const box *b, const char *const *args, char *out, size_t cap)
{
    if (!cap || !cli_on_linux() || own_server_inside() || !fvm_box_own_server(b->path) || !boxserver_busy(b->path))
        return FALSE;
    captured c = {args, {-1, -1}, out, cap, 0};
    if (LSYS(LNR_pipe2, c.out, L_O_CLOEXEC, 0) != 0)
        return FALSE;
    int code = 0;
    int handled = request(b, own_display_number(b), TRUE, FALSE, &c, &code);
    LSYS(LNR_close, c.out[0], 0, 0);
    if (c.out[1] >= 0)
        LSYS(LNR_close, c.out[1], 0, 0);
    out[c.got < cap ? c.got : cap - 1] = 0;
    return handled && code == 0;
}

void own_server_end_idle(const box *b)
{
    /* Its broker exits a moment after the box's last process. */
    for (int waited = 0; waited < 5000 && boxserver_busy(b->path); waited += 20)
        Sleep(20);
    if (!boxserver_busy(b->path))
        boxserver_kill(b->path, 3000);
}

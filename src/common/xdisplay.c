/* xdisplay.c - a box's own X display: starting its Xvfb (xdisplay.h).
 *
 * The display listens on its pathname socket only (`-nolisten local`: no
 * abstract socket, `-nolisten tcp`). That is what lets the floor scope the
 * box's abstract unix sockets (runtime/floor.c): libxcb tries the abstract
 * socket first and gives up on anything but ENOENT/ECONNREFUSED; with the
 * scope, a host display's abstract socket answers EPERM, while the box's own
 * display has no abstract socket, so the attempt gets ECONNREFUSED and
 * libxcb goes on to /tmp/.X11-unix/XN. Everything the child needs is ready
 * before the fork, and the child runs no code but raw calls. */
#include "common/xdisplay.h"

#include "common/rawtext.h"
#include "runtime/linux_syscall.h"

enum { LNR_access = 21, LNR_dup2 = 33, LNR_setsid = 112, LNR_pipe2 = 293, LNR_close_range = 436 };
#define L_SIGTERM 15
#define L_SIGKILL 9
#define L_PR_SET_PDEATHSIG 1
#define L_WNOHANG 1
#define L_SIGCHLD 17

void xdisplay_socket_path(int number, char *out, size_t cap)
{
    raw_put_number(out, cap, raw_put(out, cap, 0, "/tmp/.X11-unix/X"), (uint64_t)number);
}

/* Standard streams on /dev/null, and every descriptor from first on
 * closed (those between 2 and first are kept). */
static void streams_to_null(int first)
{
    int64_t null = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
    if (null >= 0)
        for (int fd = 0; fd < 3; fd++)
            LSYS(LNR_dup2, null, fd, 0);
    if (null >= first)
        LSYS(LNR_close, null, 0, 0);
    linux_syscall6(LNR_close_range, first, ~0u, 0, 0, 0, 0);
}

static void nap_ms(int ms)
{
    LSYS(LNR_poll, 0, 0, ms);
}

int64_t xdisplay_spawn(int number)
{
    static char display[24];
    raw_put_number(display, sizeof display, raw_put(display, sizeof display, 0, ":"), (uint64_t)number);
    static char *argv[] = {"Xvfb", display, "-nolisten", "tcp", "-nolisten", "local", "-screen", "0",
                           "1280x1024x24", 0};
    static char *const envp[] = {"PATH=/usr/bin:/bin", 0};
    int64_t pid = LSYS(LNR_clone, L_SIGCHLD, 0, 0);
    if (pid == 0) {
        LSYS(LNR_setsid, 0, 0, 0);
        uint64_t none = 0;   /* a caller may block signals (the init does); Xvfb inherits the mask */
        linux_syscall6(14 /* rt_sigprocmask */, 2 /* SIG_SETMASK */, (int64_t)&none, 0, 8, 0, 0);
        LSYS(LNR_prctl, L_PR_SET_PDEATHSIG, L_SIGTERM, 0);
        /* Standard streams on /dev/null (a closed fd 2 would send Xvfb's
         * messages into whatever it opens next), nothing else of ours. */
        streams_to_null(3);
        LSYS(LNR_execve, "/usr/bin/Xvfb", argv, envp);
        LSYS(LNR_exit, 127, 0, 0);
    }
    return pid;
}

/* Xephyr's guard, a child of the caller outside every namespace the caller
 * enters later: the parent of Xephyr, it ends Xephyr (SIGTERM, so it takes
 * its socket and lock file with it) when the caller's end of the life pipe
 * closes, however the caller ended (its SIGKILL too: the box's end kills
 * everything in the box's namespace, and a parent-death signal is dropped
 * by the kernel when an exec gains capabilities, as root's does). It
 * exits when Xephyr does. */
static void guard_main(int64_t life, char *const *argv, char *const *envp, int32_t display_fd)
{
    int64_t xephyr = LSYS(LNR_clone, L_SIGCHLD, 0, 0);
    if (xephyr == 0) {
        LSYS(LNR_setsid, 0, 0, 0);
        LSYS(LNR_prctl, L_PR_SET_PDEATHSIG, L_SIGTERM, 0);
        if (display_fd == 3)
            LSYS(72 /* fcntl */, 3, 2 /* F_SETFD */, 0);
        else
            LSYS(LNR_dup2, display_fd, 3, 0);   /* dup2 clears close-on-exec */
        streams_to_null(4);
        LSYS(LNR_execve, "/usr/bin/Xephyr", argv, envp);
        LSYS(LNR_exit, 127, 0, 0);
    }
    /* Nothing of the caller's but the life pipe: its standard streams (a
     * caller's pipe would not end while the display lives), the init's
     * ready pipe (whose end tells fvm run the init failed), its log. */
    if (life != 3)
        LSYS(LNR_dup2, life, 3, 0);
    life = 3;
    streams_to_null(4);
    for (;;) {
        if (xephyr < 0 || LSYS(LNR_wait4, xephyr, 0, L_WNOHANG) != 0)
            LSYS(LNR_exit, 0, 0, 0);
        struct { int32_t fd; int16_t events, revents; } pfd = {(int32_t)life, 1 /* POLLIN */, 0};
        if (LSYS(LNR_poll, &pfd, 1, 500) > 0)
            break;   /* EOF: the caller is gone, or ends the display */
    }
    xdisplay_stop(xephyr);
    LSYS(LNR_exit, 0, 0, 0);
}

int xdisplay_free_number(int from)
{
    const int span = XDISPLAY_LAST - XDISPLAY_FIRST + 1;
    int start = from >= XDISPLAY_FIRST && from <= XDISPLAY_LAST ? from - XDISPLAY_FIRST : 0;
    for (int i = 0; i < span; i++) {
        int n = XDISPLAY_FIRST + (start + i) % span;
        char socket_path[48], lock_path[48];
        xdisplay_socket_path(n, socket_path, sizeof socket_path);
        raw_put(lock_path, sizeof lock_path, raw_put_number(lock_path, sizeof lock_path,
                                                            raw_put(lock_path, sizeof lock_path, 0, "/tmp/.X"),
                                                            (uint64_t)n),
                "-lock");
        if (LSYS(LNR_access, socket_path, 0, 0) < 0 && LSYS(LNR_access, lock_path, 0, 0) < 0)
            return n;
    }
    return -1;
}

int64_t xdisplay_spawn_nested(int number, const char *host_display, const char *xauthority, const char *home,
                              const char *title, int64_t *ready_fd, int64_t *life_fd)
{
    static char env_display[512], env_xauthority[4200], env_home[4200];
    static char *envp[5];
    int n = 0;
    envp[n++] = "PATH=/usr/bin:/bin";
    raw_put(env_display, sizeof env_display, raw_put(env_display, sizeof env_display, 0, "DISPLAY="), host_display);
    envp[n++] = env_display;
    if (xauthority && *xauthority) {
        raw_put(env_xauthority, sizeof env_xauthority,
                raw_put(env_xauthority, sizeof env_xauthority, 0, "XAUTHORITY="), xauthority);
        envp[n++] = env_xauthority;
    }
    if (home && *home) {
        raw_put(env_home, sizeof env_home, raw_put(env_home, sizeof env_home, 0, "HOME="), home);
        envp[n++] = env_home;
    }
    envp[n] = 0;
    /* -no-host-grab: Ctrl+Shift does not grab the user's keyboard and
     * mouse for the box's window. Not -resizeable: the box's desktop is a
     * Wine virtual desktop of the screen's size (cli/ownserver.c). */
    /* The number is given, not left to -displayfd's search: with only a
     * pathname socket to listen on, that search takes display 0's socket
     * path over from a running server (Xtrans unlinks a socket in the way),
     * where a given number is first locked (/tmp/.XN-lock), and a taken
     * one fails. */
    static char number_text[24];
    raw_put_number(number_text, sizeof number_text, raw_put(number_text, sizeof number_text, 0, ":"),
                   (uint64_t)number);
    static char *argv[] = {"Xephyr", 0, "-displayfd", "3", "-nolisten", "tcp", "-nolisten", "local", "-screen",
                           XDISPLAY_NESTED_SCREEN, "-no-host-grab", "-title", 0, 0};
    argv[1] = number_text;
    argv[sizeof argv / sizeof argv[0] - 2] = (char *)title;   /* after -title */
    int32_t display_pipe[2], life_pipe[2];
    if (LSYS(LNR_pipe2, display_pipe, L_O_CLOEXEC, 0) != 0)
        return -24;
    if (LSYS(LNR_pipe2, life_pipe, L_O_CLOEXEC, 0) != 0) {
        LSYS(LNR_close, display_pipe[0], 0, 0);
        LSYS(LNR_close, display_pipe[1], 0, 0);
        return -24;
    }
    int64_t guard = LSYS(LNR_clone, L_SIGCHLD, 0, 0);
    if (guard == 0) {
        /* In the caller's session (the init's): not a session leader, so
         * it is not taken for an init (which is one). */
        uint64_t none = 0;   /* a caller may block signals (the init does) */
        linux_syscall6(14 /* rt_sigprocmask */, 2 /* SIG_SETMASK */, (int64_t)&none, 0, 8, 0, 0);
        LSYS(LNR_close, display_pipe[0], 0, 0);
        LSYS(LNR_close, life_pipe[1], 0, 0);
        guard_main(life_pipe[0], argv, envp, display_pipe[1]);
    }
    LSYS(LNR_close, display_pipe[1], 0, 0);
    LSYS(LNR_close, life_pipe[0], 0, 0);
    if (guard < 0) {
        LSYS(LNR_close, display_pipe[0], 0, 0);
        LSYS(LNR_close, life_pipe[1], 0, 0);
        return guard;
    }
    *ready_fd = display_pipe[0];
    *life_fd = life_pipe[1];
    return guard;
}

void xdisplay_end_nested(int64_t guard, int64_t life_fd)
{
    if (guard <= 0)
        return;
    LSYS(LNR_close, life_fd, 0, 0);
    for (int waited = 0; waited < 3000; waited += 10) {
        if (LSYS(LNR_wait4, guard, 0, L_WNOHANG) != 0)
            return;
        nap_ms(10);
    }
}

int xdisplay_wait_nested(int64_t pid, int64_t ready_fd, int timeout_ms)
{
    char text[16];
    size_t len = 0;
    int number = -2;   /* the time ran out */
    for (int waited = 0; waited < timeout_ms && number < 0; waited += 10) {
        struct { int32_t fd; int16_t events, revents; } pfd = {(int32_t)ready_fd, 1 /* POLLIN */, 0};
        if (LSYS(LNR_poll, &pfd, 1, 10) > 0) {
            int64_t got = LSYS(LNR_read, ready_fd, text + len, sizeof text - 1 - len);
            if (got <= 0) {
                number = -1;   /* Xephyr ended without saying a number */
                break;
            }
            len += (size_t)got;
            int line = 0;
            for (size_t i = 0; i < len && !line; i++)
                if (text[i] == '\n') {
                    line = 1;
                    number = i ? 0 : -1;
                    for (size_t j = 0; j < i && number >= 0; j++)
                        number = text[j] >= '0' && text[j] <= '9' && number < 100000 ? number * 10 + (text[j] - '0')
                                                                                     : -1;
                }
            if (line)
                break;
            if (len >= sizeof text - 1) {
                number = -1;
                break;
            }
        } else if (LSYS(LNR_wait4, pid, 0, L_WNOHANG) != 0) {
            number = -1;
            break;
        }
    }
    LSYS(LNR_close, ready_fd, 0, 0);
    return number;
}

int xdisplay_wait_ready(int64_t pid, int number, int timeout_ms)
{
    char socket_path[48];
    xdisplay_socket_path(number, socket_path, sizeof socket_path);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (LSYS(LNR_access, socket_path, 0, 0) == 0)
            return 1;
        if (LSYS(LNR_wait4, pid, 0, L_WNOHANG) != 0)
            return 0;
        nap_ms(10);
    }
    return 0;
}

void xdisplay_stop(int64_t pid)
{
    if (pid <= 0)
        return;
    LSYS(LNR_kill, pid, L_SIGTERM, 0);
    for (int waited = 0; waited < 2000; waited += 10) {
        if (LSYS(LNR_wait4, pid, 0, L_WNOHANG) != 0)   /* reaped, or not ours to reap (SIGCHLD ignored) */
            return;
        nap_ms(10);
    }
    LSYS(LNR_kill, pid, L_SIGKILL, 0);
    LSYS(LNR_wait4, pid, 0, 0);
}

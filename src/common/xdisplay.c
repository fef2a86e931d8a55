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

enum { LNR_access = 21, LNR_dup2 = 33, LNR_setsid = 112, LNR_close_range = 436 };
#define L_SIGTERM 15
#define L_SIGKILL 9
#define L_PR_SET_PDEATHSIG 1
#define L_WNOHANG 1
#define L_SIGCHLD 17

void xdisplay_socket_path(int number, char *out, size_t cap)
{
    raw_put_number(out, cap, raw_put(out, cap, 0, "/tmp/.X11-unix/X"), (uint64_t)number);
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
        int64_t null = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
        if (null >= 0)
            for (int fd = 0; fd < 3; fd++)
                LSYS(LNR_dup2, null, fd, 0);
        linux_syscall6(LNR_close_range, 3, ~0u, 0, 0, 0, 0);
        LSYS(LNR_execve, "/usr/bin/Xvfb", argv, envp);
        LSYS(LNR_exit, 127, 0, 0);
    }
    return pid;
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

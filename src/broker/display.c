/* display.c - a box's own X display (box.ini `display=own`).
 *
 * X11 lets any client of a display read every window and the input of the
 * others, and Wine's X11 driver is such a client. A box with a display of
 * its own reaches no window, pixel or key of the user's session through X.
 * The broker starts an Xvfb for the box when the box starts and stops it
 * when the box ends; fvm run gives the box's processes DISPLAY=:N.
 *
 * The display listens on its pathname socket only (`-nolisten local`: no
 * abstract socket, `-nolisten tcp`). That is what lets the floor scope the
 * box's abstract unix sockets (runtime/floor.c): libxcb tries the abstract
 * socket first and gives up on anything but ENOENT/ECONNREFUSED; with the
 * scope, a host display's abstract socket answers EPERM (so the box cannot
 * reach the user's display that way), while the box's own display has no
 * abstract socket, so the attempt gets ECONNREFUSED and libxcb goes on to
 * /tmp/.X11-unix/XN. A box with the host's display cannot be scoped so.
 *
 * The number was chosen when the box was created (box.ini display_number,
 * cli/owndisplay.c), so fvm run knows it before the box starts. Xvfb is a
 * Linux program, started here with raw Linux calls
 * (runtime/linux_syscall.h): fork, then in the child only raw calls (its
 * own session, SIGTERM when the broker's main thread dies, standard streams
 * on /dev/null, execve); ready when its socket appears. The broker writes
 * ":N" to <box>\display while it runs. The broker's main thread calls
 * start and stop, so the parent-death signal follows the broker's life. */
#include "broker/broker.h"

#include <stdio.h>
#include <string.h>

#include "runtime/linux_syscall.h"

enum { LNR_access = 21, LNR_dup2 = 33, LNR_setsid = 112, LNR_close_range = 436 };
#define L_SIGTERM 15
#define L_SIGKILL 9
#define L_PR_SET_PDEATHSIG 1
#define L_WNOHANG 1
#define L_SIGCHLD 17

static int64_t g_server_pid;
static wchar_t g_display_file[FVM_PATH_MAX];

int broker_display_start(const wchar_t *box_path)
{
    int number = fvm_box_display_number(box_path);
    if (number == -1)
        return 0;
    if (number < 0 || !GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version"))
        return 16;   /* no number, or no Linux underneath (real Windows): no X display to own */
    /* Everything the child needs is ready before the fork: it runs no code
     * but raw calls (a fork of a Wine process has only the calling thread). */
    static char display[16], socket_path[48];
    snprintf(display, sizeof display, ":%d", number);
    snprintf(socket_path, sizeof socket_path, "/tmp/.X11-unix/X%d", number);
    static char *argv[] = {"Xvfb", display, "-nolisten", "tcp", "-nolisten", "local", "-screen", "0",
                           "1280x1024x24", NULL};
    static char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    int64_t pid = LSYS(LNR_clone, L_SIGCHLD, 0, 0);
    if (pid == 0) {
        LSYS(LNR_setsid, 0, 0, 0);
        LSYS(LNR_prctl, L_PR_SET_PDEATHSIG, L_SIGTERM, 0);
        /* Standard streams on /dev/null (the broker has none: a closed fd 2
         * would send Xvfb's messages into whatever it opens next), nothing
         * else of the broker's. */
        int64_t null = LSYS(LNR_openat, L_AT_FDCWD, "/dev/null", L_O_RDWR);
        if (null >= 0)
            for (int fd = 0; fd < 3; fd++)
                LSYS(LNR_dup2, null, fd, 0);
        linux_syscall6(LNR_close_range, 3, ~0u, 0, 0, 0, 0);
        LSYS(LNR_execve, "/usr/bin/Xvfb", argv, envp);
        LSYS(LNR_exit, 127, 0, 0);
    }
    if (pid < 0)
        return 16;
    g_server_pid = pid;
    /* Ready when its socket is there; gone (not installed, the number
     * taken): it exited. */
    BOOL ready = FALSE;
    for (int waited = 0; waited < 15000 && !ready; waited += 10) {
        if (LSYS(LNR_access, socket_path, 0, 0) == 0)
            ready = TRUE;
        else if (LSYS(LNR_wait4, pid, 0, L_WNOHANG) != 0)
            break;
        else
            Sleep(10);
    }
    if (!ready) {
        broker_display_stop();
        return 16;
    }
    _snwprintf(g_display_file, FVM_PATH_MAX, L"%ls\\display", box_path);
    g_display_file[FVM_PATH_MAX - 1] = 0;
    HANDLE f = CreateFileW(g_display_file, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, 0, NULL);
    char text[24];
    int len = snprintf(text, sizeof text, "%s\n", display);
    DWORD wrote = 0;
    BOOL ok = f != INVALID_HANDLE_VALUE && WriteFile(f, text, (DWORD)len, &wrote, NULL) && wrote == (DWORD)len;
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    if (!ok) {
        broker_display_stop();
        return 16;
    }
    return 0;
}

void broker_display_stop(void)
{
    if (g_display_file[0]) {
        DeleteFileW(g_display_file);
        g_display_file[0] = 0;
    }
    if (g_server_pid <= 0)
        return;
    LSYS(LNR_kill, g_server_pid, L_SIGTERM, 0);
    for (int waited = 0; waited < 2000; waited += 10) {
        if (LSYS(LNR_wait4, g_server_pid, 0, L_WNOHANG) != 0)   /* reaped, or not ours to reap (SIGCHLD ignored) */
            break;
        Sleep(10);
    }
    if (LSYS(LNR_wait4, g_server_pid, 0, L_WNOHANG) == 0) {
        LSYS(LNR_kill, g_server_pid, L_SIGKILL, 0);
        LSYS(LNR_wait4, g_server_pid, 0, 0);
    }
    g_server_pid = 0;
}

/* owndisplay.c - the CLI's part of a box's own X display (box.ini
 * display=own, broker/display.c).
 *
 * The box's display number is chosen when the box is created (the first
 * free one from 100 on: no /tmp/.X11-unix/XN socket or /tmp/.XN-lock) and
 * kept in box.ini (display_number=N); its broker starts an Xvfb on it.
 *
 * Wine's X11 driver opens the display named by the *Linux* environment's
 * DISPLAY, and a Wine process's children inherit its Linux environment, not
 * its Windows one (SetEnvironmentVariable does not reach it; measured). So
 * fvm run, when its own Linux DISPLAY is not the box's, runs itself again
 * as a Linux program with DISPLAY=:N and FVM_OWN_DISPLAY=N, so it never
 * loops (runagain.c), and returns that run's exit code. A box with a Wine
 * server of its own gets the same variables through its init instead
 * (ownserver.c). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "common/xdisplay.h"
#include "runtime/linux_syscall.h"


int own_display_number(const box *b)
{
    int n = fvm_box_display_number(b->path);
    return n >= 0 ? n : -1;
}

int own_display_start_point(void)
{
    /* The process and the time, not 100: the number is taken when the box
     * first runs, so two boxes made one after the other, or by two FVM
     * roots at once (two test workers), would otherwise both pick the
     * first free one. */
    const int span = XDISPLAY_LAST - XDISPLAY_FIRST + 1;
    return XDISPLAY_FIRST +
           (int)(((uint32_t)GetCurrentProcessId() * 2654435761u ^ (uint32_t)GetTickCount()) % (uint32_t)span);
}

int own_display_pick(void)
{
    return cli_on_linux() ? xdisplay_free_number(own_display_start_point()) : -1;
}

int own_display_reexec(const box *b, int number, int *exit_code)
{
    if (!cli_on_linux())
        return 0;
    char want[32], marker[40];
    snprintf(want, sizeof want, ":%d", number);
    snprintf(marker, sizeof marker, "%d", number);
    const char *display = cli_linux_env("DISPLAY"), *done = cli_linux_env("FVM_OWN_DISPLAY");
    if (display && !strcmp(display, want))
        return 0;   /* already the box's display */
    if (done && !strcmp(done, marker))
        return (*exit_code = cli_error("box '%s' has a display of its own (:%d), and fvm could not give it to the box's "
                                       "programs", b->name, number)), 1;
    /* The host server's desktop (explorer.exe /desktop), started now if it
     * is not, on the user's display: Wine starts it for the first process
     * of the server that needs a window, with that process's DISPLAY, and
     * from the box's program that is the box's display, where the box's
     * window then failed ("cannot create the window", measured when the
     * host's server had no desktop yet). */
    HMODULE user32 = LoadLibraryW(L"user32.dll");
    HWND(WINAPI * desktop)(void) = user32 ? (HWND(WINAPI *)(void))(void *)GetProcAddress(user32, "GetDesktopWindow")
                                          : NULL;
    if (display && desktop)
        desktop();
    static char set_display[32], set_marker[40];
    snprintf(set_display, sizeof set_display, "DISPLAY=:%d", number);
    snprintf(set_marker, sizeof set_marker, "FVM_OWN_DISPLAY=%d", number);
    run_again plan = {{set_display, set_marker, NULL}, {NULL}, NULL, NULL, NULL};
    cli_run_again(b, &plan, exit_code);
    return 1;
}

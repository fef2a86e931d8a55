/* display.c - a box's own X display (box.ini `display=own`).
 *
 * X11 lets any client of a display read every window and the input of the
 * others, and Wine's X11 driver is such a client. A box with a display of
 * its own reaches no window, pixel or key of the user's session through X.
 * The broker starts an Xvfb for the box when the box starts and stops it
 * when the box ends (common/xdisplay.c, which says why it listens on its
 * pathname socket only); fvm run gives the box's processes DISPLAY=:N.
 *
 * A box with a Wine server of its own is different: its broker runs in the
 * box's Landlock domain, which may neither execute Xvfb nor make a socket
 * in /tmp/.X11-unix, so the box's init starts the display in the box's
 * mount namespace, where no one outside the box sees its socket
 * (cli/ownserver.c), and it lives as long as that server. The broker then
 * only checks that it is there.
 *
 * The number was chosen when the box was created (box.ini display_number,
 * cli/owndisplay.c), so fvm run knows it before the box starts. A nested
 * display (display=nested) is the init's too, its number Xephyr's pick,
 * given to the box in DISPLAY. The broker
 * writes ":N" to <box>\display while the box runs. The broker's main
 * thread calls start and stop, so Xvfb's parent-death signal follows the
 * broker's life. */
#include "broker/broker.h"

#include <stdio.h>
#include <string.h>

#include "common/xdisplay.h"
#include "runtime/linux_syscall.h"

static int64_t g_server_pid;
static wchar_t g_display_file[FVM_PATH_MAX];

int broker_display_start(const wchar_t *box_path)
{
    int number = fvm_box_display_number(box_path);
    if (number == -1 && fvm_box_display_nested(box_path)) {
        /* The init's nested display (cli/ownserver_display.c), which the
         * runner named in DISPLAY; none when the box was started without a
         * user's display. */
        wchar_t value[16];
        DWORD n = GetEnvironmentVariableW(L"DISPLAY", value, 16);
        if (n < 2 || n >= 16 || value[0] != L':')
            return 0;
        number = _wtoi(value + 1);
        if (number < 0)
            return 0;
    } else if (number == -1) {
        return 0;
    }
    if (number < 0 || !GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version"))
        return 16;   /* no number, or no Linux underneath (real Windows): no X display to own */
    static char display[16];
    snprintf(display, sizeof display, ":%d", number);
    if (fvm_box_own_server(box_path) || fvm_box_display_nested(box_path)) {
        char socket_path[48];
        xdisplay_socket_path(number, socket_path, sizeof socket_path);
        if (LSYS(21 /* access */, socket_path, 0, 0) != 0)
            return 16;   /* the init did not start it: it said why */
    } else {
        int64_t pid = xdisplay_spawn(number);
        if (pid < 0)
            return 16;
        g_server_pid = pid;
        if (!xdisplay_wait_ready(pid, number, 15000)) {
            broker_display_stop();
            return 16;
        }
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
    xdisplay_stop(g_server_pid);
    g_server_pid = 0;
}

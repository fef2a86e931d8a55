/* ownserver_display.c - the X display a box on its own Wine server gets
 * from its init (cli/ownserver.c).
 *
 * X11 lets any client of a display read every window, the clipboard and
 * the input of the others, below every hook: a box that shares the user's
 * display (box.ini display=host) lets a program that speaks X11 itself
 * read the user's session. So a box has a display of its own, and its
 * namespace's /tmp/.X11-unix holds that display's socket and no other
 * (the user's abstract socket is another network namespace's, and the
 * floor scopes abstract sockets besides):
 *
 *   display=nested (the default): Xephyr, an X server that shows its
 *     screen as one window on the user's display. It is the only client of
 *     the user's display the box has, trusted code started by the init
 *     before the init enters the box's namespace and domain, so it is in
 *     neither; it ends with the init (its guard: xdisplay.h). Its number
 *     is a free one from a pick of the caller's on (owndisplay.c).
 *     Run without a user's display (no DISPLAY), the box gets no display.
 *   display=own: a headless Xvfb, started in the namespace (xdisplay.h),
 *     whose windows nobody sees; the number is box.ini's.
 *   display=host (--host-display, and every box on the host's server):
 *     the user's display, shared; said by fvm doctor and the docs.
 *
 * The runner gives each run DISPLAY=:N for the box's display (or none),
 * whatever the caller's: a run joining a running box sees the display the
 * box has. */
#include "cli/ownserver.h"

#include <stdlib.h>
#include <string.h>

#include "common/floor_namespace.h"
#include "common/rawtext.h"
#include "common/xdisplay.h"
#include "runtime/linux_syscall.h"

#define DISPLAY_WAIT_MS 15000
#define NESTED_WAIT_MS 10000

static void copy_env(const char *name, char *out, size_t cap)
{
    const char *value = cli_linux_env(name);
    out[0] = 0;
    if (value && strlen(value) < cap)
        memcpy(out, value, strlen(value) + 1);
}

void own_display_plan(const box *b, server_plan *p)
{
    p->nested = p->display < 0 && fvm_box_display_nested(b->path);
    p->host_display[0] = p->xauthority[0] = p->home[0] = 0;
    if (!p->nested)
        return;
    copy_env("DISPLAY", p->host_display, sizeof p->host_display);
    copy_env("XAUTHORITY", p->xauthority, sizeof p->xauthority);
    copy_env("HOME", p->home, sizeof p->home);
    snprintf(p->title, sizeof p->title, "FVM box %s", b->name);
    /* Where the init looks for a free number from (it looks itself, with
     * raw calls, only when it starts: not at every request). */
    p->nested_from = own_display_start_point();
}

int own_display_start_outside(server_plan *p)
{
    if (!p->nested || !p->host_display[0])
        return 0;
    /* From the caller's pick on; a number another server takes between
     * the look and Xephyr's lock makes Xephyr fail, and the next is tried. */
    int number = -1, from = p->nested_from;
    int64_t pid = -1, life = -1;
    for (int attempt = 0; attempt < 8 && number < 0; attempt++) {
        int candidate = xdisplay_free_number(from);
        if (candidate < 0)
            break;
        int64_t ready = -1;
        pid = xdisplay_spawn_nested(candidate, p->host_display, p->xauthority, p->home, p->title, &ready, &life);
        int got = pid > 0 ? xdisplay_wait_nested(pid, ready, NESTED_WAIT_MS) : -1;
        if (got == candidate) {
            number = candidate;
            break;
        }
        xdisplay_end_nested(pid, life);
        /* Only a number taken meanwhile is worth another try (Xephyr then
         * ends at once); one that did not answer in time is not retried. */
        if (got == -2)
            break;
        from = candidate + 1;
    }
    if (number < 0 && LSYS(21 /* access */, "/usr/bin/Xephyr", 1 /* X_OK */, 0) != 0) {
        own_server_say(2, "cannot show the box's display on the user's display: no /usr/bin/Xephyr (Debian's "
                          "xserver-xephyr; fvm doctor says), or create the box with --host-display to share the "
                          "user's display ",
                       p->host_display);
        return 16;
    }
    if (number < 0) {
        /* Xephyr is there but could not open the user's display (a stale
         * DISPLAY, a refused cookie): the box runs with no display at all,
         * as a run without DISPLAY does, which is what its programs would
         * have had from that display too. */
        own_server_say(2, "Xephyr could not open the user's display, so the box has none (its windows cannot "
                          "open): ",
                       p->host_display);
        return 0;
    }
    p->display = number;
    p->nested_pid = pid;
    p->nested_life = life;
    return 0;
}

void own_display_end(server_plan *p)
{
    xdisplay_end_nested(p->nested_pid, p->nested_life);
    p->nested_pid = 0;
}

int own_display_start_inside(server_plan *p)
{
    char socket_path[48];
    if (p->nested) {
        /* The nested display's socket (made by Xephyr in the host's
         * /tmp/.X11-unix) alone, or no socket at all. */
        if (p->display >= 0 ? floor_namespace_keep_display(p->display) != 0
                            : floor_namespace_private_displays() != 0) {
            own_server_say(2, "cannot hide the user's X display from the box (no mount here: fvm inside a Landlock "
                              "domain or a container? fvm doctor says; a box on the host's server, --host-server, "
                              "needs none)", NULL);
            return 16;
        }
        return 0;
    }
    if (p->display < 0)
        return 0;   /* display=host: the user's display, shared */
    /* The box's own Xvfb, in the namespace only: started before the
     * domain, which may not execute Xvfb. It ends with the init (its
     * parent-death signal, and the init's end of the namespace). */
    int64_t xvfb = floor_namespace_private_displays() == 0 ? xdisplay_spawn(p->display) : -1;
    if (xvfb < 0 || !xdisplay_wait_ready(xvfb, p->display, DISPLAY_WAIT_MS)) {
        xdisplay_socket_path(p->display, socket_path, sizeof socket_path);
        own_server_say(2, "cannot start its own X display (/usr/bin/Xvfb; fvm doctor says whether it is there) at ",
                       socket_path);
        return 16;
    }
    return 0;
}

void own_display_set_env(const server_plan *p, char **envp, size_t max)
{
    if (!p->nested)
        return;   /* display=own: the caller set it (ownserver.c); host: the caller's */
    static char display[24];
    raw_put_number(display, sizeof display, raw_put(display, sizeof display, 0, "DISPLAY=:"), (uint64_t)p->display);
    size_t n = 0, kept = 0;
    for (; envp[n]; n++)
        if (strncmp(envp[n], "DISPLAY=", 8))
            envp[kept++] = envp[n];
    if (p->display >= 0 && kept + 1 < max)
        envp[kept++] = display;
    envp[kept] = NULL;
}

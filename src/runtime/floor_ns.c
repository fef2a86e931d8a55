/* floor_ns.c - the floor's mount namespace in the box's first process:
 * the host's Wine servers and X displays out of a box's sight.
 *
 * Landlock ABI 7 has no rule for connect() to a pathname unix socket, so a
 * raw client in a box could reach the host's wineserver socket (and speak
 * Wine's protocol as a new process of its own, outside the hooks and the
 * box's job) and any X display's socket. A boxed process never needs
 * either path: a Wine child gets its server connection from its parent
 * (a socket pair through the server, WINESERVERSOCKET), and only a process
 * started from outside Wine opens the socket by name. So the box's first
 * process, before Landlock (a Landlock domain may not mount) and before the
 * seccomp filter (which refuses unshare and mount), enters a user and mount
 * namespace of its own and lays an empty, inaccessible tmpfs over every
 * Wine server directory in /tmp; a box with a display of its own also gets
 * /tmp/.X11-unix with only its own display's socket. Its children inherit
 * the namespace with the domain. The mechanics are common/floor_namespace.c
 * (fvm run does the same for a box with a Wine server of its own, before
 * that server starts; in such a box this process is already in a domain,
 * its mounts fail, and the outer namespace has done the hiding).
 *
 * Best effort: a kernel without unprivileged user namespaces leaves the box
 * without this layer (floor_ns_state says which), and the rest of the floor
 * stands. */
#include "runtime/runtime.h"

#include <stdio.h>
#include <string.h>

#include "common/floor_namespace.h"
#include "core/floor_rules.h"
#include "core/policy_net.h"
#include "runtime/floor.h"

static int g_ns_state;   /* FLOOR_NS_* */
static int g_network_cut;

int floor_ns_network_cut(void)
{
    return g_network_cut;
}

BOOL floor_ns_names_forwarded(void)
{
    return (g_fvm.config.flags & FVM_BOX_FLAG_NAMES_FORWARDED) != 0;
}

/* Whether the box's policy lets nothing leave (core/policy_net.h). Every
 * box's programs get an empty network namespace of their own: a program's
 * raw sockets (UDP too, which Landlock has no rule for) reach nothing, and
 * abstract unix sockets are the namespace's, so none of the host's is
 * there. Winsock's sockets are the host's Wine server's, made in the
 * host's network, and the hooks decide them as before; names are resolved
 * by the box's broker (net_resolve.c), unless the policy lets nothing
 * leave: then nothing is forwarded, and the program's own lookups find the
 * hosts file only. Only the box's first process gets here, with one
 * thread: static buffers are safe. */
static BOOL box_offline(void)
{
    static net_policy_rule rules[256];
    static uint8_t scratch[8192];
    const policy_view *view = runtime_policy_view();
    size_t bad = 0, count = view ? net_policy_load_every(view, rules, 256, &bad) : 0;
    return view && count <= 256 && net_policy_offline(rules, count, scratch);
}

int floor_ns_state(void)
{
    return g_ns_state;
}

/* The box's own display number, from DISPLAY (":N", set by fvm run), or -1. */
static int own_display_number(void)
{
    if (!(g_fvm.config.flags & FVM_BOX_FLAG_OWN_DISPLAY))
        return -1;
    wchar_t value[16];
    DWORD n = GetEnvironmentVariableW(L"DISPLAY", value, 16);
    if (n < 2 || n >= 16 || value[0] != L':')
        return -1;
    int number = 0;
    for (DWORD i = 1; i < n; i++) {
        if (value[i] < L'0' || value[i] > L'9')
            return -1;
        number = number * 10 + (value[i] - L'0');
    }
    return number;
}

/* Whether child is parent or lies beneath it (Linux paths). */
static BOOL path_inside(const char *child, const char *parent)
{
    size_t n = 0;   /* fvm.dll has no strncmp (no C runtime) */
    while (parent[n] && child[n] == parent[n])
        n++;
    return !parent[n] && (child[n] == 0 || child[n] == '/' || (n == 1 && parent[0] == '/'));
}

/* The folders the policy hides or denies whole to every program
 * (core/policy_floor.c), out of sight in the namespace, so a program that
 * steps around the hooks finds nothing there either. Never one that holds
 * or lies in the FVM root (the box itself, other boxes: hide_root's), nor a
 * missing one. */
static void hide_policy_folders(const char *root)
{
    static uint32_t rules[64];
    static char folder[4096];
    const policy_view *view = runtime_policy_view();
    size_t n = view ? policy_hidden_folders(view, rules, 64) : 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        policy_rule_info info;
        if (policy_view_rule(view, rules[i], &info) != FVM_OK)
            continue;
        static wchar_t win[2048];
        if (!policy_hidden_folder_win32(info.pattern, info.pattern_len, (uint16_t *)win, 2048) ||
            !floor_unix_path(win, folder, sizeof folder) || path_inside(folder, root) || path_inside(root, folder))
            continue;
        floor_namespace_hide_folder(folder);
    }
}

void floor_ns_apply(const char *box)
{
    if (g_fvm.config.flags & FVM_BOX_FLAG_OWN_SERVER) {
        /* fvm run's runner put this run in an empty network namespace
         * (cli/ownserver.c) unless the policy lets nothing leave, where the
         * init's namespace has no network at all: names go to the relay. */
        g_ns_state = FLOOR_NS_SERVER;
        if (!box_offline())
            g_fvm.config.flags |= FVM_BOX_FLAG_NAMES_FORWARDED;
        return;
    }
    BOOL offline = box_offline();
    g_ns_state = floor_namespace_enter(1, &g_network_cut);
    if (g_network_cut && !offline)   /* inherited by the children, in the namespace with it */
        g_fvm.config.flags |= FVM_BOX_FLAG_NAMES_FORWARDED;
    if (g_ns_state == FLOOR_NS_UNAVAILABLE)
        return;
    floor_namespace_hide_servers();
    /* Other boxes and fvm's storage out of sight, names too; a root that
     * cannot be hidden leaves them listable only (the domain still keeps
     * their contents out of reach). */
    static char root[4096];
    fvm_error err;
    const char *keep[1] = {box};
    const int keep_is_dir[1] = {1};
    if (floor_fvm_root(box, root, sizeof root, &err) == FVM_OK) {
        floor_namespace_hide_root(root, keep, keep_is_dir, 1);
        hide_policy_folders(root);
    }
    int display = own_display_number();
    if (display >= 0)
        floor_namespace_keep_display(display);
}

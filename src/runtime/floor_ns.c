/* floor_ns.c - the floor's mount namespace: the host's Wine servers and
 * X displays out of a box's sight.
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
 * Wine server directory in /tmp (`wine-XXXXXX` in Debian's build, `.wine-UID`
 * upstream). Its children inherit the namespace with the domain.
 *
 * A box with a display of its own also gets /tmp/.X11-unix with only its
 * own display's socket in it (a tmpfs, the socket bind-mounted back), so
 * the user's display is out of reach even by its pathname socket. A box on
 * the host's display needs that display's socket, and keeps the directory.
 *
 * The user namespace maps the process's own uid and gid to themselves, so
 * files look the same; what it drops is privilege over the host (a box run
 * as root keeps root's rights only inside its namespace). Best effort: a
 * kernel without unprivileged user namespaces leaves the box without this
 * layer (floor_ns_state says which), and the rest of the floor stands. */
#include "runtime/runtime.h"

#include <stdio.h>

#include "runtime/floor.h"
#include "runtime/linux_syscall.h"

enum { LNR_getuid = 102, LNR_getgid = 104, LNR_mount = 165 };
#define L_CLONE_NEWNS   0x00020000
#define L_CLONE_NEWUSER 0x10000000
#define L_MS_NOSUID  2
#define L_MS_NODEV   4
#define L_MS_NOEXEC  8
#define L_MS_BIND    4096
#define L_MS_REC     16384
#define L_MS_PRIVATE (1 << 18)

static int g_ns_state;   /* FLOOR_NS_* */

int floor_ns_state(void)
{
    return g_ns_state;
}

static BOOL write_proc(const char *path, const char *text)
{
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_WRONLY | L_O_CLOEXEC);
    if (fd < 0)
        return FALSE;
    size_t n = strlen(text);
    int64_t w = LSYS(LNR_write, fd, text, n);
    LSYS(LNR_close, fd, 0, 0);
    return w == (int64_t)n;
}

static BOOL starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return FALSE;
    return TRUE;
}

/* Every Wine server directory in /tmp, under an empty tmpfs. */
static void hide_servers(void)
{
    static char buf[8192], path[512];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, "/tmp", L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
    if (fd < 0)
        return;
    int64_t n;
    while ((n = LSYS(LNR_getdents64, fd, buf, sizeof buf)) > 0) {
        for (int64_t off = 0; off < n;) {
            uint16_t reclen = *(uint16_t *)(buf + off + 16);
            uint8_t type = *(uint8_t *)(buf + off + 18);
            const char *name = buf + off + 19;
            off += reclen;
            if (type != 4 /* DT_DIR */ || (!starts_with(name, "wine-") && !starts_with(name, ".wine-")))
                continue;
            snprintf(path, sizeof path, "/tmp/%s", name);
            linux_syscall6(LNR_mount, (int64_t) "none", (int64_t)path, (int64_t) "tmpfs",
                           L_MS_NOSUID | L_MS_NODEV | L_MS_NOEXEC, (int64_t) "size=4k,mode=000", 0);
        }
    }
    LSYS(LNR_close, fd, 0, 0);
}

/* /tmp/.X11-unix with only display N's socket. */
static void keep_only_display(int number)
{
    char socket_path[64], mount_point[64], via[40];
    snprintf(socket_path, sizeof socket_path, "/tmp/.X11-unix/X%d", number);
    int64_t keep = LSYS(LNR_openat, L_AT_FDCWD, socket_path, L_O_PATH | L_O_CLOEXEC);
    if (keep < 0)
        return;
    if (linux_syscall6(LNR_mount, (int64_t) "none", (int64_t) "/tmp/.X11-unix", (int64_t) "tmpfs",
                       L_MS_NOSUID | L_MS_NODEV | L_MS_NOEXEC, (int64_t) "size=4k,mode=755", 0) == 0) {
        snprintf(mount_point, sizeof mount_point, "/tmp/.X11-unix/X%d", number);
        int64_t made = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)mount_point, L_O_WRONLY | L_O_CREAT | L_O_CLOEXEC,
                                      0666, 0, 0);
        if (made >= 0)
            LSYS(LNR_close, made, 0, 0);
        snprintf(via, sizeof via, "/proc/self/fd/%d", (int)keep);
        linux_syscall6(LNR_mount, (int64_t)via, (int64_t)mount_point, 0, L_MS_BIND, 0, 0);
    }
    LSYS(LNR_close, keep, 0, 0);
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

void floor_ns_apply(void)
{
    int64_t uid = LSYS(LNR_getuid, 0, 0, 0), gid = LSYS(LNR_getgid, 0, 0, 0);
    if (LSYS(LNR_unshare, L_CLONE_NEWUSER | L_CLONE_NEWNS, 0, 0) != 0) {
        g_ns_state = FLOOR_NS_UNAVAILABLE;
        return;
    }
    char map[64];
    snprintf(map, sizeof map, "%lld %lld 1\n", (long long)uid, (long long)uid);
    BOOL mapped = write_proc("/proc/self/setgroups", "deny") && write_proc("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "%lld %lld 1\n", (long long)gid, (long long)gid);
    mapped = mapped && write_proc("/proc/self/gid_map", map);
    /* Nothing we mount here is seen outside. */
    linux_syscall6(LNR_mount, 0, (int64_t) "/", 0, L_MS_REC | L_MS_PRIVATE, 0, 0);
    hide_servers();
    int display = own_display_number();
    if (display >= 0)
        keep_only_display(display);
    g_ns_state = mapped ? FLOOR_NS_APPLIED : FLOOR_NS_UNMAPPED;
}

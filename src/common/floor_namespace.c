/* floor_namespace.c - a box's user and mount namespace (floor_namespace.h).
 *
 * The user namespace maps the process's own uid and gid to themselves, so
 * files look the same; what it drops is privilege over the host (a box run
 * as root keeps root's rights only inside its namespace). Every mount here
 * is private to the namespace and inherited by its children. */
#include "common/floor_namespace.h"

#include <stdint.h>
#include <string.h>

#include "common/rawtext.h"
#include "runtime/linux_syscall.h"

enum { LNR_getuid = 102, LNR_getgid = 104, LNR_mount = 165 };
#define L_CLONE_NEWNS   0x00020000
#define L_CLONE_NEWUSER 0x10000000
#define L_CLONE_NEWNET  0x40000000
#define L_MS_NOSUID  2
#define L_MS_NODEV   4
#define L_MS_NOEXEC  8
#define L_MS_BIND    4096
#define L_MS_REC     16384
#define L_MS_PRIVATE (1 << 18)

static int write_proc(const char *path, const char *text)
{
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_WRONLY | L_O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t n = strlen(text);
    int64_t w = LSYS(LNR_write, fd, text, n);
    LSYS(LNR_close, fd, 0, 0);
    return w == (int64_t)n;
}

/* "ID ID 1\n": the id mapped to itself. */
static void id_map(char *out, size_t cap, int64_t id)
{
    size_t at = raw_put_number(out, cap, 0, (uint64_t)id);
    at = raw_put(out, cap, at, " ");
    at = raw_put_number(out, cap, at, (uint64_t)id);
    raw_put(out, cap, at, " 1\n");
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

int floor_namespace_enter(int new_network, int *network_cut)
{
    int64_t uid = LSYS(LNR_getuid, 0, 0, 0), gid = LSYS(LNR_getgid, 0, 0, 0);
    /* A network namespace of the box's own is made in the same step: a new
     * one has only a loopback device, down, so nothing leaves it. */
    int cut = new_network && LSYS(LNR_unshare, L_CLONE_NEWUSER | L_CLONE_NEWNS | L_CLONE_NEWNET, 0, 0) == 0;
    if (network_cut)
        *network_cut = cut;
    if (!cut && LSYS(LNR_unshare, L_CLONE_NEWUSER | L_CLONE_NEWNS, 0, 0) != 0)
        return FLOOR_NS_UNAVAILABLE;
    char map[64];
    id_map(map, sizeof map, uid);
    int mapped = write_proc("/proc/self/setgroups", "deny") && write_proc("/proc/self/uid_map", map);
    id_map(map, sizeof map, gid);
    mapped = mapped && write_proc("/proc/self/gid_map", map);
    /* Nothing we mount here is seen outside. */
    linux_syscall6(LNR_mount, 0, (int64_t) "/", 0, L_MS_REC | L_MS_PRIVATE, 0, 0);
    return mapped ? FLOOR_NS_APPLIED : FLOOR_NS_UNMAPPED;
}

void floor_namespace_hide_servers(void)
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
            raw_put(path, sizeof path, raw_put(path, sizeof path, 0, "/tmp/"), name);
            linux_syscall6(LNR_mount, (int64_t) "none", (int64_t)path, (int64_t) "tmpfs",
                           L_MS_NOSUID | L_MS_NODEV | L_MS_NOEXEC, (int64_t) "size=4k,mode=000", 0);
        }
    }
    LSYS(LNR_close, fd, 0, 0);
}

int floor_namespace_keep_display(int number)
{
    char socket_path[64], via[40];
    raw_put_number(socket_path, sizeof socket_path, raw_put(socket_path, sizeof socket_path, 0, "/tmp/.X11-unix/X"),
                   (uint64_t)number);
    int64_t keep = LSYS(LNR_openat, L_AT_FDCWD, socket_path, L_O_PATH | L_O_CLOEXEC);
    if (keep < 0)
        return (int)keep;
    int64_t done = linux_syscall6(LNR_mount, (int64_t) "none", (int64_t) "/tmp/.X11-unix", (int64_t) "tmpfs",
                                  L_MS_NOSUID | L_MS_NODEV | L_MS_NOEXEC, (int64_t) "size=4k,mode=755", 0);
    if (done == 0) {
        /* The same path, now in the new tmpfs. */
        int64_t made = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)socket_path, L_O_WRONLY | L_O_CREAT | L_O_CLOEXEC,
                                      0666, 0, 0);
        if (made >= 0)
            LSYS(LNR_close, made, 0, 0);
        raw_put_number(via, sizeof via, raw_put(via, sizeof via, 0, "/proc/self/fd/"), (uint64_t)keep);
        done = linux_syscall6(LNR_mount, (int64_t)via, (int64_t)socket_path, 0, L_MS_BIND, 0, 0);
    }
    LSYS(LNR_close, keep, 0, 0);
    return (int)done;
}

int floor_namespace_private_displays(void)
{
    /* Xvfb would make the folder itself when missing (no X server on this
     * machine yet); mounting needs it first. */
    int64_t made = LSYS(LNR_mkdir, "/tmp/.X11-unix", 01777, 0);
    if (made < 0 && made != -17 /* EEXIST */)
        return (int)made;
    return (int)linux_syscall6(LNR_mount, (int64_t) "none", (int64_t) "/tmp/.X11-unix", (int64_t) "tmpfs",
                               L_MS_NOSUID | L_MS_NODEV | L_MS_NOEXEC, (int64_t) "size=64k,mode=1777", 0);
}

/* mkdir -p of path's components below base (path lies under base). */
static int make_dirs_below(const char *base, const char *path)
{
    static char part[4096];
    size_t n = 0, base_len = 0;
    while (base[base_len])
        base_len++;
    for (size_t i = 0; path[i] && n + 1 < sizeof part; i++) {
        part[n++] = path[i];
        if ((path[i + 1] == '/' || path[i + 1] == 0) && n > base_len) {
            part[n] = 0;
            int64_t r = LSYS(LNR_mkdir, part, 0700, 0);
            if (r < 0 && r != -17 /* EEXIST */)
                return (int)r;
        }
    }
    return 0;
}

int floor_namespace_hide_root(const char *root, const char *const *keep, const int *keep_is_dir, int count)
{
    int64_t fds[8];
    if (count > 8)
        return -7;   /* E2BIG */
    size_t root_len = 0;
    while (root[root_len])
        root_len++;
    for (int i = 0; i < count; i++)
        if (!starts_with(keep[i], root) || keep[i][root_len] != '/')
            return -22;   /* EINVAL: a path outside the root is not hidden by it, nothing to keep */
    for (int i = 0; i < count; i++)
        if ((fds[i] = LSYS(LNR_openat, L_AT_FDCWD, keep[i], L_O_PATH | L_O_CLOEXEC)) < 0) {
            int64_t err = fds[i];
            while (i-- > 0)
                LSYS(LNR_close, fds[i], 0, 0);
            return (int)err;
        }
    int r = (int)linux_syscall6(LNR_mount, (int64_t) "none", (int64_t)root, (int64_t) "tmpfs",
                                L_MS_NOSUID | L_MS_NODEV | L_MS_NOEXEC, (int64_t) "size=64k,mode=755", 0);
    for (int i = 0; r == 0 && i < count; i++) {
        /* The same place in the new tmpfs, then the real one bound over it
         * (through the descriptor opened before it was hidden). */
        static char parent[4096];
        size_t n = raw_put(parent, sizeof parent, 0, keep[i]);
        while (n > 0 && parent[n - 1] != '/')
            n--;
        parent[n > 1 ? n - 1 : 1] = 0;
        r = make_dirs_below(root, parent);
        if (r == 0 && keep_is_dir[i]) {
            int64_t made = LSYS(LNR_mkdir, keep[i], 0700, 0);
            r = made < 0 && made != -17 ? (int)made : 0;
        } else if (r == 0) {
            int64_t made = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)keep[i], L_O_WRONLY | L_O_CREAT | L_O_CLOEXEC,
                                          0600, 0, 0);
            r = made < 0 ? (int)made : (LSYS(LNR_close, made, 0, 0), 0);
        }
        char via[40];
        raw_put_number(via, sizeof via, raw_put(via, sizeof via, 0, "/proc/self/fd/"), (uint64_t)fds[i]);
        if (r == 0)
            r = (int)linux_syscall6(LNR_mount, (int64_t)via, (int64_t)keep[i], 0, L_MS_BIND, 0, 0);
    }
    for (int i = 0; i < count; i++)
        LSYS(LNR_close, fds[i], 0, 0);
    return r;
}

int floor_namespace_hide_folder(const char *path)
{
    return (int)linux_syscall6(LNR_mount, (int64_t) "none", (int64_t)path, (int64_t) "tmpfs",
                               L_MS_NOSUID | L_MS_NODEV | L_MS_NOEXEC, (int64_t) "size=4k,mode=000", 0);
}

int floor_namespace_bind_dir(const char *source, const char *target)
{
    int64_t r = LSYS(LNR_mkdir, target, 0700, 0);
    if (r < 0 && r != -17 /* EEXIST */)
        return (int)r;
    return (int)linux_syscall6(LNR_mount, (int64_t)source, (int64_t)target, 0, L_MS_BIND, 0, 0);
}

int floor_namespace_bind_file(const char *source, const char *target)
{
    return (int)linux_syscall6(LNR_mount, (int64_t)source, (int64_t)target, 0, L_MS_BIND, 0, 0);
}

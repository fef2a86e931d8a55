/* boxserver.c - where a box's own Wine server lives, and whether it runs
 * (boxserver.h). The probe reads the server's own lock with F_GETLK from
 * outside the box's namespace: the directory is the same on disk. */
#include "common/boxserver.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/boxcfg.h"
#include "common/rawtext.h"
#include "runtime/linux_syscall.h"

#define LNR_fcntl 72
#define LNR_nanosleep 35
#define L_F_GETLK 5
#define L_F_SETLK 6
#define L_F_RDLCK 0
#define L_F_WRLCK 1
#define L_F_UNLCK 2

struct l_flock {
    int16_t l_type, l_whence;
    int32_t pad;
    int64_t l_start, l_len;
    int32_t l_pid, pad2;
};

static BOOL under_wine(void)
{
    return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
}

/* The holder of any lock on path (F_GETLK, which takes nothing), 0 if none. */
static int lock_holder(const char *path)
{
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_RDONLY | L_O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct l_flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = L_F_WRLCK;
    int pid = LSYS(LNR_fcntl, fd, L_F_GETLK, &fl) == 0 && fl.l_type != L_F_UNLCK ? fl.l_pid : 0;
    LSYS(LNR_close, fd, 0, 0);
    return pid;
}

BOOL boxserver_linux_path(const wchar_t *win, char *out, size_t cap)
{
    char *(CDECL * to_unix)(const wchar_t *) =
        (char *(CDECL *)(const wchar_t *))(void *)GetProcAddress(GetModuleHandleW(L"kernel32.dll"),
                                                                "wine_get_unix_file_name");
    char *unix_name = to_unix ? to_unix(win) : NULL;
    if (!unix_name)
        return FALSE;
    size_t n = strlen(unix_name);
    BOOL ok = n > 0 && n < cap;
    if (ok)
        memcpy(out, unix_name, n + 1);
    HeapFree(GetProcessHeap(), 0, unix_name);
    return ok;
}

int boxserver_holder(const char *dir)
{
    static char buf[4096], lock[4096 + 300];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, dir, L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
    if (fd < 0)
        return 0;
    int pid = 0;
    int64_t n;
    while (!pid && (n = LSYS(LNR_getdents64, fd, buf, sizeof buf)) > 0) {
        for (int64_t off = 0; !pid && off < n;) {
            const char *name = buf + off + 19;
            off += *(uint16_t *)(buf + off + 16);
            if (strncmp(name, "server-", 7))
                continue;
            raw_put(lock, sizeof lock, raw_put(lock, sizeof lock, raw_put(lock, sizeof lock, raw_put(lock, sizeof lock, 0, dir), "/"),
                                                               name), "/lock");
            pid = lock_holder(lock);
        }
    }
    LSYS(LNR_close, fd, 0, 0);
    return pid;
}

static void busy_path(const char *dir, char *out, size_t cap)
{
    raw_put(out, cap, raw_put(out, cap, 0, dir), "/busy");
}

static int hold_lock(const char *path, int16_t type)
{
    int64_t fd = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)path, L_O_RDWR | L_O_CREAT | L_O_CLOEXEC, 0600, 0, 0);
    if (fd < 0)
        return -1;
    struct l_flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    if (LSYS(LNR_fcntl, fd, L_F_SETLK, &fl) != 0) {
        LSYS(LNR_close, fd, 0, 0);
        return -1;
    }
    return (int)fd;
}

int boxserver_hold_busy(const char *dir)
{
    static char path[4096 + 8];
    busy_path(dir, path, sizeof path);
    return hold_lock(path, L_F_RDLCK);   /* shared: every runner and the broker hold one */
}

int boxserver_hold_init(const char *dir)
{
    static char path[4096 + 8];
    raw_put(path, sizeof path, raw_put(path, sizeof path, 0, dir), "/init");
    return hold_lock(path, L_F_WRLCK);
}

BOOL boxserver_init_alive(const char *dir)
{
    static char path[4096 + 8];
    raw_put(path, sizeof path, raw_put(path, sizeof path, 0, dir), "/init");
    return lock_holder(path) != 0;
}

BOOL boxserver_busy_dir(const char *dir)
{
    static char path[4096 + 8];
    busy_path(dir, path, sizeof path);
    return lock_holder(path) != 0;
}

/* The box's server directory's Linux path, from the box's Windows path. */
static BOOL linux_dir_of(const wchar_t *box_path, char *out, size_t cap)
{
    wchar_t dir[FVM_PATH_MAX];
    return fvm_box_server_dir(box_path, dir, FVM_PATH_MAX) && boxserver_linux_path(dir, out, cap);
}

/* The box's server directory's Linux path when the caller stands outside
 * the box's own server, the only place its server's state is asked from. */
static BOOL outside_server_dir(const wchar_t *box_path, char *out, size_t cap)
{
    /* Inside the box's server (fvm run and the verbs its init starts) the
     * box's job is in sight and tells; the server is that of the caller
     * itself, never to be ended from here. */
    wchar_t inside[4];
    if (!under_wine() || !fvm_box_own_server(box_path) ||
        (GetEnvironmentVariableW(L"FVM_OWN_SERVER", inside, 4) == 1 && inside[0] == L'1'))
        return FALSE;
    return linux_dir_of(box_path, out, cap);
}

BOOL boxserver_busy(const wchar_t *box_path)
{
    static char unix_dir[FVM_PATH_MAX * 3];
    return outside_server_dir(box_path, unix_dir, sizeof unix_dir) && boxserver_holder(unix_dir) &&
           boxserver_busy_dir(unix_dir);
}

void boxserver_broker_claim(const wchar_t *box_path)
{
    /* Held until the broker exits (the kernel drops it then, whatever the
     * end): after that the box's registry is saved and nothing of the box
     * runs, though its server may linger. */
    wchar_t inside[4];
    static char unix_dir[FVM_PATH_MAX * 3];
    if (under_wine() && fvm_box_own_server(box_path) &&
        GetEnvironmentVariableW(L"FVM_OWN_SERVER", inside, 4) == 1 && inside[0] == L'1' &&
        linux_dir_of(box_path, unix_dir, sizeof unix_dir))
        boxserver_hold_busy(unix_dir);
}

int boxserver_pid(const wchar_t *box_path)
{
    static char unix_dir[FVM_PATH_MAX * 3];
    return outside_server_dir(box_path, unix_dir, sizeof unix_dir) ? boxserver_holder(unix_dir) : 0;
}

/* "user:[INODE]" of a process, or "" */
static void user_namespace_of(const char *pid, char *out, size_t cap)
{
    char path[64];
    raw_put(path, sizeof path, raw_put(path, sizeof path, raw_put(path, sizeof path, 0, "/proc/"), pid), "/ns/user");
    int64_t n = LSYS(LNR_readlink, path, out, cap - 1);
    out[n > 0 ? n : 0] = 0;
}

/* Each process (but the caller) of the user namespace `target` names
 * ("user:[INODE]"): killed with `kill`, or looked at for `name_part` in its
 * command line. How many were killed or matched. */
static int scan_namespace(const char *target, int kill, const char *name_part)
{
    int64_t me = LSYS(39 /* getpid */, 0, 0, 0);
    static char buf[8192], seen[64], path[64], cmdline[512];
    int found = 0;
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, "/proc", L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
    if (fd < 0)
        return 0;
    int64_t n;
    while ((n = LSYS(LNR_getdents64, fd, buf, sizeof buf)) > 0)
        for (int64_t off = 0; off < n;) {
            const char *name = buf + off + 19;
            off += *(uint16_t *)(buf + off + 16);
            if (name[0] < '1' || name[0] > '9')
                continue;
            int64_t pid = 0;
            for (const char *c = name; *c >= '0' && *c <= '9'; c++)
                pid = pid * 10 + (*c - '0');
            if (pid == me)
                continue;
            user_namespace_of(name, seen, sizeof seen);
            if (!seen[0] || strcmp(seen, target))
                continue;
            if (kill) {
                LSYS(LNR_kill, pid, 9 /* SIGKILL */, 0);
                found++;
                continue;
            }
            raw_put(path, sizeof path, raw_put(path, sizeof path, raw_put(path, sizeof path, 0, "/proc/"), name),
                    "/cmdline");
            int64_t cfd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_RDONLY | L_O_CLOEXEC);
            int64_t len = cfd >= 0 ? LSYS(LNR_read, cfd, cmdline, sizeof cmdline - 1) : -1;
            if (cfd >= 0)
                LSYS(LNR_close, cfd, 0, 0);
            for (int64_t i = 0; i < len; i++)
                if (!cmdline[i])
                    cmdline[i] = ' ';
            cmdline[len > 0 ? len : 0] = 0;
            found += strstr(cmdline, name_part) != NULL;
        }
    LSYS(LNR_close, fd, 0, 0);
    return found;
}

int boxserver_end(int server_pid)
{
    char number[24], target[64];
    raw_put_number(number, sizeof number, 0, (uint64_t)server_pid);
    user_namespace_of(number, target, sizeof target);
    if (!target[0])
        return 0;
    int killed = 0;
    for (int round = 0; round < 20; round++) {
        int found = scan_namespace(target, 1, NULL);
        killed += found;
        if (!found)
            break;
        int64_t ts[2] = {0, 10 * 1000000};
        LSYS(LNR_nanosleep, ts, 0, 0);
    }
    return killed;
}

int boxserver_namespace_runs(const char *name_part)
{
    char target[64];
    user_namespace_of("self", target, sizeof target);
    return target[0] ? scan_namespace(target, 0, name_part) : 0;
}

BOOL boxserver_kill(const wchar_t *box_path, DWORD wait_ms)
{
    int pid = boxserver_pid(box_path);
    if (!pid)
        return TRUE;
    boxserver_end(pid);
    for (DWORD waited = 0; waited < wait_ms; waited += 20) {
        if (!boxserver_pid(box_path))
            return TRUE;
        Sleep(20);
    }
    return FALSE;
}

/* Deletes dir and what is in it, to depth levels below (raw calls: Wine's
 * DeleteFile does not remove the server's unix sockets). */
static void remove_linux_tree(const char *dir, int depth)
{
    static char buf[4][4096];
    char child[4096 + 300];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, dir, L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC | L_O_NOFOLLOW);
    if (fd >= 0 && depth < 4) {
        int64_t n;
        while ((n = LSYS(LNR_getdents64, fd, buf[depth], sizeof buf[depth])) > 0)
            for (int64_t off = 0; off < n;) {
                const char *name = buf[depth] + off + 19;
                uint8_t type = *(uint8_t *)(buf[depth] + off + 18);
                off += *(uint16_t *)(buf[depth] + off + 16);
                if (!strcmp(name, ".") || !strcmp(name, ".."))
                    continue;
                raw_put(child, sizeof child, raw_put(child, sizeof child, raw_put(child, sizeof child, 0, dir), "/"), name);
                if (type == 4 /* DT_DIR */)
                    remove_linux_tree(child, depth + 1);
                else
                    LSYS(LNR_unlink, child, 0, 0);
            }
    }
    if (fd >= 0)
        LSYS(LNR_close, fd, 0, 0);
    LSYS(84 /* rmdir */, dir, 0, 0);
}

void boxserver_remove_files(const wchar_t *box_path)
{
    static char unix_dir[FVM_PATH_MAX * 3], other[FVM_PATH_MAX * 3 + 8];
    if (!under_wine() || !linux_dir_of(box_path, unix_dir, sizeof unix_dir))
        return;
    remove_linux_tree(unix_dir, 0);
    static const char *const suffixes[] = {".log", ".lock", ".stamp", ".system.reg", ".user.reg", ".userdef.reg",
                                           ".next.system.reg", ".next.user.reg", ".next.userdef.reg"};
    for (int i = 0; i < 9; i++) {
        raw_put(other, sizeof other, raw_put(other, sizeof other, 0, unix_dir), suffixes[i]);
        LSYS(LNR_unlink, other, 0, 0);
    }
}

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

BOOL boxserver_dir(const wchar_t *box_path, wchar_t *out, size_t cap)
{
    /* <root>\boxes\<name>: two levels up. */
    if (!fvm_wcscpy(out, cap, box_path))
        return FALSE;
    for (int level = 0; level < 2; level++) {
        size_t n = fvm_wcslen(out);
        while (n > 0 && out[n - 1] != L'\\' && out[n - 1] != L'/')
            n--;
        if (n < 2)
            return FALSE;
        out[n - 1] = 0;
    }
    wchar_t hash[24];
    swprintf(hash, 24, L"%016llx", (unsigned long long)fvm_hash_path(box_path));
    return fvm_wcscat(out, cap, L"\\servers\\") && fvm_wcscat(out, cap, hash);
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
            int64_t lfd = LSYS(LNR_openat, L_AT_FDCWD, lock, L_O_RDONLY | L_O_CLOEXEC);
            if (lfd < 0)
                continue;
            struct l_flock fl;
            memset(&fl, 0, sizeof fl);
            fl.l_type = L_F_WRLCK;
            if (LSYS(LNR_fcntl, lfd, L_F_GETLK, &fl) == 0 && fl.l_type != L_F_UNLCK)
                pid = fl.l_pid;
            LSYS(LNR_close, lfd, 0, 0);
        }
    }
    LSYS(LNR_close, fd, 0, 0);
    return pid;
}

int boxserver_pid(const wchar_t *box_path)
{
    /* Inside the box's server (fvm run and the verbs its init starts) the
     * box's job is in sight and tells; the server is that of the caller
     * itself, never to be ended from here. */
    wchar_t inside[4];
    if (!under_wine() || !fvm_box_own_server(box_path) ||
        (GetEnvironmentVariableW(L"FVM_OWN_SERVER", inside, 4) == 1 && inside[0] == L'1'))
        return 0;
    wchar_t dir[FVM_PATH_MAX];
    static char unix_dir[FVM_PATH_MAX * 3];
    if (!boxserver_dir(box_path, dir, FVM_PATH_MAX) || !boxserver_linux_path(dir, unix_dir, sizeof unix_dir))
        return 0;
    return boxserver_holder(unix_dir);
}

/* "user:[INODE]" of a process, or "" */
static void user_namespace_of(const char *pid, char *out, size_t cap)
{
    char path[64];
    raw_put(path, sizeof path, raw_put(path, sizeof path, raw_put(path, sizeof path, 0, "/proc/"), pid), "/ns/user");
    int64_t n = LSYS(LNR_readlink, path, out, cap - 1);
    out[n > 0 ? n : 0] = 0;
}

int boxserver_end(int server_pid)
{
    char number[24], target[64], seen[64];
    raw_put_number(number, sizeof number, 0, (uint64_t)server_pid);
    user_namespace_of(number, target, sizeof target);
    if (!target[0])
        return 0;
    int64_t me = LSYS(39 /* getpid */, 0, 0, 0);
    static char buf[8192];
    int killed = 0;
    for (int round = 0; round < 20; round++) {
        int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, "/proc", L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
        if (fd < 0)
            return killed;
        int found = 0;
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
                if (seen[0] && !strcmp(seen, target)) {
                    LSYS(LNR_kill, pid, 9 /* SIGKILL */, 0);
                    found++;
                    killed++;
                }
            }
        LSYS(LNR_close, fd, 0, 0);
        if (!found)
            break;
        int64_t ts[2] = {0, 10 * 1000000};
        LSYS(LNR_nanosleep, ts, 0, 0);
    }
    return killed;
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
    wchar_t dir[FVM_PATH_MAX];
    static char unix_dir[FVM_PATH_MAX * 3], other[FVM_PATH_MAX * 3 + 8];
    if (!under_wine() || !boxserver_dir(box_path, dir, FVM_PATH_MAX) || !boxserver_linux_path(dir, unix_dir, sizeof unix_dir))
        return;
    remove_linux_tree(unix_dir, 0);
    static const char *const suffixes[] = {".log", ".lock", ".system.reg", ".user.reg", ".userdef.reg"};
    for (int i = 0; i < 5; i++) {
        raw_put(other, sizeof other, raw_put(other, sizeof other, 0, unix_dir), suffixes[i]);
        LSYS(LNR_unlink, other, 0, 0);
    }
}

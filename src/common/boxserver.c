/* boxserver.c - where a box's own Wine server lives, and whether it runs
 * (boxserver.h). The probe reads the server's own lock with F_GETLK from
 * outside the box's namespace: the directory is the same on disk. */
#include "common/boxserver.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/boxcfg.h"
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

static BOOL linux_path(const wchar_t *win, char *out, size_t cap)
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

static size_t put(char *out, size_t cap, size_t at, const char *text)
{
    while (*text && at + 1 < cap)
        out[at++] = *text++;
    out[at] = 0;
    return at;
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
            put(lock, sizeof lock, put(lock, sizeof lock, put(lock, sizeof lock, put(lock, sizeof lock, 0, dir), "/"),
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
    if (!under_wine() || !fvm_box_own_server(box_path))
        return 0;
    wchar_t dir[FVM_PATH_MAX];
    static char unix_dir[FVM_PATH_MAX * 3];
    if (!boxserver_dir(box_path, dir, FVM_PATH_MAX) || !linux_path(dir, unix_dir, sizeof unix_dir))
        return 0;
    return boxserver_holder(unix_dir);
}

BOOL boxserver_kill(const wchar_t *box_path, DWORD wait_ms)
{
    int pid = boxserver_pid(box_path);
    if (!pid)
        return TRUE;
    LSYS(LNR_kill, pid, 15 /* SIGTERM */, 0);
    for (DWORD waited = 0; waited < wait_ms; waited += 20) {
        Sleep(20);
        if (!boxserver_pid(box_path))
            return TRUE;
    }
    LSYS(LNR_kill, pid, 9 /* SIGKILL */, 0);
    for (int i = 0; i < 100; i++) {
        Sleep(20);
        if (!boxserver_pid(box_path))
            return TRUE;
    }
    return FALSE;
}

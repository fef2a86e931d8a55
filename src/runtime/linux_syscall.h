/* linux_syscall.h - raw Linux system calls from Windows code under Wine.
 *
 * Under Wine the `syscall` instruction in Windows code is an ordinary Linux
 * system call (measured: shared/docs/wine-platform.md), so fvm.dll, which
 * links no C runtime, can set up the kernel-enforced floor (Landlock,
 * seccomp) itself, and the hostile test programs can try what an attacker
 * would. Windows is LLP64: every argument is a 64-bit integer here, never a
 * `long`. On real Windows these calls must never be made: callers check
 * linux_syscall_available() first (ntdll exports wine_get_version). */
#ifndef FVM_RUNTIME_LINUX_SYSCALL_H
#define FVM_RUNTIME_LINUX_SYSCALL_H

#include <stdint.h>

#include "common/rawtext.h"

static inline int64_t linux_syscall6(int64_t nr, int64_t a, int64_t b, int64_t c, int64_t d, int64_t e,
                                     int64_t f)
{
    int64_t ret;
    register int64_t r10 __asm__("r10") = d;
    register int64_t r8 __asm__("r8") = e;
    register int64_t r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#define LSYS(nr, a, b, c) linux_syscall6((nr), (int64_t)(a), (int64_t)(b), (int64_t)(c), 0, 0, 0)

/* x86_64 system call numbers used by FVM and its tests. */
enum {
    LNR_read = 0, LNR_write = 1, LNR_close = 3, LNR_poll = 7, LNR_ioctl = 16, LNR_socket = 41, LNR_connect = 42,
    LNR_bind = 49, LNR_listen = 50, LNR_clone = 56, LNR_fork = 57, LNR_execve = 59, LNR_exit = 60,
    LNR_wait4 = 61, LNR_kill = 62, LNR_truncate = 76, LNR_getdents64 = 217, LNR_rename = 82,
    LNR_mkdir = 83, LNR_link = 86, LNR_unlink = 87, LNR_symlink = 88, LNR_readlink = 89,
    LNR_ptrace = 101, LNR_getppid = 110, LNR_prctl = 157, LNR_gettid = 186, LNR_openat = 257,
    LNR_unshare = 272, LNR_accept4 = 288, LNR_process_vm_readv = 310, LNR_process_vm_writev = 311, LNR_seccomp = 317,
    LNR_landlock_create_ruleset = 444, LNR_landlock_add_rule = 445, LNR_landlock_restrict_self = 446,
};

/* struct sockaddr_un (AF_UNIX) and struct pollfd. */
struct l_sockaddr_un {
    uint16_t family;
    char path[108];
};
struct l_pollfd {
    int32_t fd;
    int16_t events, revents;
};

/* The address of the unix socket `name` in the folder open as dir_fd
 * (O_PATH), as /proc/self/fd/N/name: a socket's path is limited to 108
 * bytes, and a box's server folder can be longer. */
static inline void l_unix_address_in(struct l_sockaddr_un *addr, int64_t dir_fd, const char *name)
{
    for (size_t i = 0; i < sizeof *addr; i++)
        ((char *)addr)[i] = 0;
    addr->family = 1;   /* AF_UNIX */
    size_t at = raw_put(addr->path, sizeof addr->path, 0, "/proc/self/fd/");
    at = raw_put_number(addr->path, sizeof addr->path, at, (uint64_t)dir_fd);
    at = raw_put(addr->path, sizeof addr->path, at, "/");
    raw_put(addr->path, sizeof addr->path, at, name);
}

#define L_AT_FDCWD     (-100)
#define L_O_RDONLY     0
#define L_O_WRONLY     1
#define L_O_RDWR       2
#define L_O_CREAT      0100
#define L_O_TRUNC      01000
#define L_O_DIRECTORY  0200000
#define L_O_NOFOLLOW   0400000
#define L_O_CLOEXEC    02000000
#define L_O_PATH       010000000

#define L_EPERM   1
#define L_ENOENT  2
#define L_EACCES  13
#define L_EINVAL  22
#define L_ENOSYS  38

#endif

/* floor_domain.c - a box's Landlock domain, built rule by rule (see
 * floor_domain.h for who builds it and why twice).
 *
 * Landlock only allows, so "everything but the FVM root" is laid as read
 * rules on each sibling along the path from / down to the root (the walk is
 * core/floor_rules.c's), plus the box's own folder. Symbolic links are
 * resolved first: a rule holds the inode it was opened on. */
#include "common/floor_domain.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/floor_rules.h"
#include "runtime/linux_syscall.h"

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

#pragma pack(push, 1)
struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
};
#pragma pack(pop)

struct ll_net_port {
    uint64_t allowed_access;
    uint64_t port;
};
#define LL_RULE_NET_PORT 2

#define PR_SET_NO_NEW_PRIVS 38

static void say(floor_domain *fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fd->why, sizeof fd->why, fmt, ap);
    va_end(ap);
    fd->why[sizeof fd->why - 1] = 0;
}

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    if (a + slash + b + 1 > cap)
        return 0;
    memcpy(out, dir, a);
    if (slash)
        out[a++] = '/';
    memcpy(out + a, name, b + 1);
    return 1;
}

int floor_domain_real_path(char *path, size_t cap)
{
    static char link[64], real[4096];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_PATH | L_O_CLOEXEC);
    if (fd < 0)
        return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", (int)fd);
    int64_t n = LSYS(LNR_readlink, link, real, sizeof real - 1);
    LSYS(LNR_close, fd, 0, 0);
    if (n <= 0 || (size_t)n >= cap || real[0] != '/')
        return 0;
    memcpy(path, real, (size_t)n);
    path[n] = 0;
    return 1;
}

int floor_domain_abi(void)
{
    return (int)LSYS(LNR_landlock_create_ruleset, 0, 0, LL_CREATE_RULESET_VERSION);
}

int floor_domain_begin(floor_domain *fd, uint64_t net, uint64_t scoped)
{
    memset(fd, 0, sizeof *fd);
    fd->ruleset = -1;
    fd->abi = floor_domain_abi();
    if (fd->abi < 1) {
        say(fd, "Landlock is not available (%d)", fd->abi);
        return 0;
    }
    int abi = fd->abi;
    fd->handled = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_READ_DIR | LL_REMOVE_DIR | LL_REMOVE_FILE |
                  LL_MAKE_CHAR | LL_MAKE_DIR | LL_MAKE_REG | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK |
                  LL_MAKE_SYM | (abi >= 2 ? LL_REFER : 0) | (abi >= 3 ? LL_TRUNCATE : 0) |
                  (abi >= 5 ? LL_IOCTL_DEV : 0);
    struct ll_ruleset_attr attr = {fd->handled, abi >= 4 ? net : 0, abi >= 6 ? scoped : 0};
    /* ABI 1-3 know only the first field, 4-5 the first two. */
    size_t attr_size = abi >= 6 ? sizeof attr : abi >= 4 ? 16 : 8;
    int64_t ruleset = LSYS(LNR_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0) {
        say(fd, "landlock_create_ruleset failed (%d)", (int)ruleset);
        return 0;
    }
    fd->ruleset = (int)ruleset;
    return 1;
}

int floor_domain_add(floor_domain *fd, const char *path, uint64_t access, int required)
{
    int64_t pfd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_PATH | L_O_CLOEXEC);
    if (pfd < 0) {
        if (required)
            say(fd, "cannot open %s (errno %d)", path, (int)-pfd);
        return !required;
    }
    struct ll_path_beneath rule = {access & fd->handled, (int32_t)pfd};
    int64_t r = LSYS(LNR_landlock_add_rule, fd->ruleset, LL_RULE_PATH_BENEATH, &rule);
    if (r == -L_EINVAL) {
        rule.allowed_access &= LL_FILE_RIGHTS;
        r = rule.allowed_access ? LSYS(LNR_landlock_add_rule, fd->ruleset, LL_RULE_PATH_BENEATH, &rule) : 0;
    }
    LSYS(LNR_close, pfd, 0, 0);
    if (r < 0) {
        say(fd, "landlock_add_rule(%s) failed (errno %d)", path, (int)-r);
        return 0;
    }
    fd->rules++;
    return 1;
}

int floor_domain_add_port(floor_domain *fd, uint16_t port, uint64_t access)
{
    struct ll_net_port rule = {access, port};
    int64_t r = LSYS(LNR_landlock_add_rule, fd->ruleset, LL_RULE_NET_PORT, &rule);
    if (r < 0) {
        say(fd, "landlock_add_rule(port %u) failed (errno %d)", (unsigned)port, (int)-r);
        return 0;
    }
    fd->rules++;
    return 1;
}

/* Read rights on every entry of dir except skip (a name), symbolic links
 * (they lead to an entry that has its own rule, or to one that must not
 * be reached) and . and .. */
static int read_siblings(floor_domain *fd, const char *dir, const char *skip, uint64_t access)
{
    static char buf[8192], child[4096];
    int64_t dfd = LSYS(LNR_openat, L_AT_FDCWD, dir, L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
    if (dfd < 0) {
        say(fd, "cannot list %s (errno %d)", dir, (int)-dfd);
        return 0;
    }
    int ok = 1;
    int64_t n;
    while (ok && (n = LSYS(LNR_getdents64, dfd, buf, sizeof buf)) > 0) {
        for (int64_t off = 0; ok && off < n;) {
            uint16_t reclen = *(uint16_t *)(buf + off + 16);
            uint8_t type = *(uint8_t *)(buf + off + 18);
            const char *name = buf + off + 19;
            off += reclen;
            if (type == 10 /* DT_LNK */ || !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, skip))
                continue;
            ok = path_join(child, sizeof child, dir, name) && floor_domain_add(fd, child, access, 0);
        }
    }
    LSYS(LNR_close, dfd, 0, 0);
    return ok;
}

static fvm_status visit_siblings(void *ctx, const char *dir, const char *skip)
{
    return read_siblings(ctx, dir, skip, LL_READ_FILE) ? FVM_OK : FVM_E_IO;
}

/* Read everywhere but below `hidden` (core/floor_rules.c walks the way). */
static int read_all_but(floor_domain *fd, const char *hidden)
{
    fvm_error err;
    fvm_status st = floor_walk_to(hidden, visit_siblings, fd, &err);
    if (st != FVM_OK && st != FVM_E_IO)
        say(fd, "%s", err.message);
    return st == FVM_OK;
}

/* The loader's ELF interpreter: execve opens it for execution too. Wine's
 * loader is a small binary whose first page holds its program headers. */
static int elf_interpreter(const char *exe, char *out, size_t cap)
{
    static unsigned char page[4096];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, exe, L_O_RDONLY | L_O_CLOEXEC);
    if (fd < 0)
        return 0;
    int64_t n = LSYS(LNR_read, fd, page, sizeof page);
    LSYS(LNR_close, fd, 0, 0);
    fvm_error err;
    return n > 0 && floor_elf_interpreter(page, (size_t)n, out, cap, &err) == FVM_OK;
}

/* Wine's loader: a Windows child is a fork + execve of it, and its ELF
 * interpreter. (The interpreter can also load any readable program:
 * `ld.so /bin/sh` runs, but inside this same domain and filter.) */
static int allow_wine_loader(floor_domain *fd)
{
    static char exe[4096], interp[4096];
    int64_t n = LSYS(LNR_readlink, "/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        say(fd, "cannot read /proc/self/exe (errno %d)", (int)-n);
        return 0;
    }
    exe[n] = 0;
    if (!floor_domain_add(fd, exe, LL_EXECUTE | LL_READ_FILE, 1))
        return 0;
    if (!elf_interpreter(exe, interp, sizeof interp))
        return 1;   /* a static loader */
    return floor_domain_real_path(interp, sizeof interp) && floor_domain_add(fd, interp, LL_EXECUTE | LL_READ_FILE, 1);
}

/* Devices a Wine process opens for writing itself (measured, design.md). */
static int allow_devices(floor_domain *fd)
{
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                          "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts",
                                          "/dev/shm", "/dev/dri"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (!floor_domain_add(fd, devices[i],
                              LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE | LL_IOCTL_DEV | LL_READ_DIR |
                                  (i == 8 ? LL_MAKE_REG | LL_REMOVE_FILE : 0),
                              0))
            return 0;
    return 1;
}

int floor_domain_box(floor_domain *fd, const char *box)
{
    static char root[4096];
    fvm_error err;
    if (floor_fvm_root(box, root, sizeof root, &err) != FVM_OK) {
        say(fd, "%s", err.message);
        return 0;
    }
    return floor_domain_add(fd, "/", LL_READ_DIR, 1) &&
           read_all_but(fd, root) &&
           floor_domain_add(fd, box, LL_BOX_RIGHTS, 1) &&
           allow_wine_loader(fd) &&
           allow_devices(fd);
}

int floor_domain_restrict(floor_domain *fd)
{
    int64_t r = LSYS(LNR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0);
    if (r != 0)
        say(fd, "prctl(NO_NEW_PRIVS) failed (%d)", (int)r);
    else if ((r = LSYS(LNR_landlock_restrict_self, fd->ruleset, 0, 0)) != 0)
        say(fd, "landlock_restrict_self failed (%d)", (int)r);
    floor_domain_drop(fd);
    return r == 0;
}

void floor_domain_drop(floor_domain *fd)
{
    if (fd->ruleset >= 0)
        LSYS(LNR_close, fd->ruleset, 0, 0);
    fd->ruleset = -1;
}

struct sock_fprog_x64 {
    uint16_t len;
    uint16_t pad[3];
    const floor_bpf_insn *filter;
};

/* A filter from core/floor_rules.c on the calling process, stacked on any
 * it has: for all its threads (SECCOMP_FILTER_FLAG_TSYNC), or with a
 * listener (SECCOMP_FILTER_FLAG_NEW_LISTENER, a single-threaded caller). */
static int64_t install_filter(size_t (*make)(floor_bpf_insn *, size_t), int64_t flags)
{
    static floor_bpf_insn filter[FLOOR_BPF_MAX];
    struct sock_fprog_x64 prog = {(uint16_t)make(filter, FLOOR_BPF_MAX), {0, 0, 0}, filter};
    return LSYS(LNR_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, flags, &prog);
}

int floor_domain_seccomp(void)
{
    return (int)install_filter(floor_seccomp_filter, 1 /* TSYNC */);
}

int floor_domain_seccomp_no_datagrams(void)
{
    return (int)install_filter(floor_seccomp_no_inet_datagrams, 1 /* TSYNC */);
}

int64_t floor_domain_seccomp_notify_connects(void)
{
    return install_filter(floor_seccomp_notify_connect, 8 /* NEW_LISTENER */);
}

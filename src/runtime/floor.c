/* floor.c - containment a hostile program cannot undo: the Linux kernel's
 * Landlock and seccomp, set up by fvm.dll in every boxed process.
 *
 * The hooks virtualize; they cannot contain, because a program can issue
 * raw `syscall` instructions (under Wine they are Linux system calls), build
 * its own NT stubs or restore the hooked bytes. So before the hooks go in
 * and before any code of the program runs, this file puts the process into
 * a Landlock domain and a seccomp filter. Both are kept by the kernel across
 * fork and execve and can only be tightened, never lifted, so every thread
 * and child (Windows or native Linux) stays inside.
 *
 * The domain (docs/design.md, "The floor", has the measurements):
 * - read: every file except the FVM root (other boxes, FVM's own storage);
 *   Landlock only allows, so the read rules are laid on each sibling along
 *   the path from / down to the FVM root, and on the box's own folder.
 *   Directory listings stay allowed everywhere (Wine's case-insensitive
 *   lookup reads directories in the client).
 * - write: only the box folder, and the few devices Wine uses.
 * - execute: only Wine's loader (a Wine child is a fork + execve of it), so
 *   no native Linux program starts from a box.
 * - scope (ABI 6): no signal and no abstract unix socket to a process
 *   outside the domain.
 * The seccomp filter refuses ptrace, process_vm_readv/writev, namespaces,
 * mounts, kernel modules, BPF, io_uring, handle-based opens and TIOCSTI.
 *
 * Landlock applies to the calling thread and its future children; at this
 * point a Wine process has one Linux thread (measured; checked here, and
 * refused otherwise: ABI 7 has no LANDLOCK_RESTRICT_SELF_TSYNC). A child
 * created by a boxed process is a fork of it, so it arrives inside; it sees
 * the seccomp filter (PR_GET_SECCOMP) and adds no second layer (Landlock
 * allows 16). */
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

#include "runtime/floor.h"
#include "runtime/linux_syscall.h"

/* Landlock's UAPI (linux/landlock.h), which mingw does not ship. */
#define LL_CREATE_RULESET_VERSION 1u
#define LL_RULE_PATH_BENEATH      1
#define LL_EXECUTE      (1ull << 0)
#define LL_WRITE_FILE   (1ull << 1)
#define LL_READ_FILE    (1ull << 2)
#define LL_READ_DIR     (1ull << 3)
#define LL_REMOVE_DIR   (1ull << 4)
#define LL_REMOVE_FILE  (1ull << 5)
#define LL_MAKE_CHAR    (1ull << 6)
#define LL_MAKE_DIR     (1ull << 7)
#define LL_MAKE_REG     (1ull << 8)
#define LL_MAKE_SOCK    (1ull << 9)
#define LL_MAKE_FIFO    (1ull << 10)
#define LL_MAKE_BLOCK   (1ull << 11)
#define LL_MAKE_SYM     (1ull << 12)
#define LL_REFER        (1ull << 13)   /* ABI 2 */
#define LL_TRUNCATE     (1ull << 14)   /* ABI 3 */
#define LL_IOCTL_DEV    (1ull << 15)   /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0)   /* ABI 6 */
#define LL_SCOPE_SIGNAL        (1ull << 1)
/* Rights a rule on a non-directory may carry. */
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)

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

#define PR_GET_SECCOMP       21
#define PR_SET_NO_NEW_PRIVS  38
#define SECCOMP_MODE_FILTER  2
#define SECCOMP_SET_MODE_FILTER   1
#define SECCOMP_FILTER_FLAG_TSYNC 1

static int g_floor_state = FLOOR_OFF;

/* snprintf without a C runtime (crt.c has vsnprintf). */
static void say(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    out[cap - 1] = 0;
}
static int g_floor_abi;

/* Returns what floor_start did (FLOOR_*) and the Landlock ABI it used. */
__declspec(dllexport) int fvm_runtime_floor(int *abi)
{
    if (abi)
        *abi = g_floor_abi;
    return g_floor_state;
}

static BOOL under_wine(void)
{
    HMODULE ntdll = runtime_loaded_module("ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version");
}

/* ---- small path helpers (no C runtime) ----------------------------------- */

static BOOL path_join(char *out, size_t cap, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    BOOL slash = a > 0 && dir[a - 1] != '/';
    if (a + slash + b + 1 > cap)
        return FALSE;
    memcpy(out, dir, a);
    if (slash)
        out[a++] = '/';
    memcpy(out + a, name, b + 1);
    return TRUE;
}

/* Cuts the last component off an absolute path in place ("/a/b" -> "/a",
 * "/a" -> "/"). */
static void path_parent(char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] != '/')
        n--;
    path[n > 1 ? n - 1 : 1] = 0;
}

static const char *path_last(const char *path)
{
    const char *last = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' && p[1])
            last = p + 1;
    return last;
}

/* Resolves symbolic links in place (Wine names C: through
 * $WINEPREFIX/dosdevices/c:, a link): Landlock rules and the walk from / to
 * the FVM root must follow the real directories. */
static BOOL resolve_links(char *path, size_t cap)
{
    static char link[64], real[4096];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_PATH | L_O_CLOEXEC);
    if (fd < 0)
        return FALSE;
    say(link, sizeof link, "/proc/self/fd/%d", (int)fd);
    int64_t n = LSYS(LNR_readlink, link, real, sizeof real - 1);
    LSYS(LNR_close, fd, 0, 0);
    if (n <= 0 || (size_t)n >= cap || real[0] != '/')
        return FALSE;
    memcpy(path, real, (size_t)n);
    path[n] = 0;
    return TRUE;
}

/* The real Linux path of a Windows path, through Wine's own mapping. */
static BOOL unix_path_of(const wchar_t *win, char *out, size_t cap)
{
    HMODULE k32 = runtime_loaded_module("kernel32.dll");
    char *(CDECL *to_unix)(const wchar_t *) =
        k32 ? (char *(CDECL *)(const wchar_t *))(void *)GetProcAddress(k32, "wine_get_unix_file_name") : NULL;
    char *unix_name = to_unix ? to_unix(win) : NULL;
    if (!unix_name)
        return FALSE;
    size_t n = strlen(unix_name);
    BOOL ok = n > 0 && n < cap && unix_name[0] == '/';
    if (ok) {
        memcpy(out, unix_name, n + 1);
        while (n > 1 && out[n - 1] == '/')
            out[--n] = 0;
    }
    HeapFree(GetProcessHeap(), 0, unix_name);
    return ok && resolve_links(out, cap);
}

/* ---- Landlock rules ------------------------------------------------------ */

typedef struct floor_build {
    int ruleset;
    uint64_t handled;
    int rules;
    char why[200];
} floor_build;

/* Adds a path-beneath rule. A missing path is skipped (returns TRUE) unless
 * it is required; a non-directory keeps only the rights files can carry. */
static BOOL add_rule(floor_build *fb, const char *path, uint64_t access, BOOL required)
{
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_PATH | L_O_CLOEXEC);
    if (fd < 0) {
        if (required)
            say(fb->why, sizeof fb->why, "cannot open %s (errno %d)", path, (int)-fd);
        return !required;
    }
    struct ll_path_beneath rule = {access & fb->handled, (int32_t)fd};
    int64_t r = LSYS(LNR_landlock_add_rule, fb->ruleset, LL_RULE_PATH_BENEATH, &rule);
    if (r == -L_EINVAL) {
        rule.allowed_access &= LL_FILE_RIGHTS;
        r = rule.allowed_access ? LSYS(LNR_landlock_add_rule, fb->ruleset, LL_RULE_PATH_BENEATH, &rule) : 0;
    }
    LSYS(LNR_close, fd, 0, 0);
    if (r < 0) {
        say(fb->why, sizeof fb->why, "landlock_add_rule(%s) failed (errno %d)", path, (int)-r);
        return FALSE;
    }
    fb->rules++;
    return TRUE;
}

/* Read rights on every entry of dir except skip (a name), symbolic links
 * (they lead to an entry that has its own rule, or to one that must not
 * be reached) and . and .. */
static BOOL read_siblings(floor_build *fb, const char *dir, const char *skip, uint64_t access)
{
    static char buf[8192], child[4096];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, dir, L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
    if (fd < 0) {
        say(fb->why, sizeof fb->why, "cannot list %s (errno %d)", dir, (int)-fd);
        return FALSE;
    }
    BOOL ok = TRUE;
    int64_t n;
    while (ok && (n = LSYS(LNR_getdents64, fd, buf, sizeof buf)) > 0) {
        for (int64_t off = 0; ok && off < n;) {
            uint16_t reclen = *(uint16_t *)(buf + off + 16);
            uint8_t type = *(uint8_t *)(buf + off + 18);
            const char *name = buf + off + 19;
            off += reclen;
            if (type == 10 /* DT_LNK */ || !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, skip))
                continue;
            ok = path_join(child, sizeof child, dir, name) && add_rule(fb, child, access, FALSE);
        }
    }
    LSYS(LNR_close, fd, 0, 0);
    return ok;
}

/* Read (and execute nothing) everywhere but below `hidden`. */
static BOOL read_all_but(floor_build *fb, const char *hidden)
{
    static char dir[4096], next[4096];
    /* From the top down: at each ancestor of hidden, every entry but the
     * one leading to hidden. */
    size_t depth = 0;
    for (const char *p = hidden; *p; p++)
        depth += *p == '/' && p[1];
    for (size_t level = 0; level < depth; level++) {
        memcpy(dir, hidden, strlen(hidden) + 1);
        for (size_t up = level + 1; up < depth; up++)
            path_parent(dir);
        memcpy(next, dir, strlen(dir) + 1);   /* the component below dir on the way to hidden */
        path_parent(dir);
        if (!read_siblings(fb, dir, path_last(next), LL_READ_FILE))
            return FALSE;
    }
    return TRUE;
}

/* The ELF interpreter (PT_INTERP) the loader names: execve opens it for
 * execution too. Wine's loader is a small fixed binary, so its first page
 * holds the program headers. */
static BOOL elf_interpreter(const char *exe, char *out, size_t cap)
{
    static unsigned char page[4096];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, exe, L_O_RDONLY | L_O_CLOEXEC);
    if (fd < 0)
        return FALSE;
    int64_t n = LSYS(LNR_read, fd, page, sizeof page);
    LSYS(LNR_close, fd, 0, 0);
    if (n < 64 || memcmp(page, "\177ELF\2", 5) != 0)
        return FALSE;
    uint64_t phoff = *(uint64_t *)(page + 32);
    uint16_t phentsize = *(uint16_t *)(page + 54), phnum = *(uint16_t *)(page + 56);
    for (uint16_t i = 0; i < phnum; i++) {
        uint64_t at = phoff + (uint64_t)i * phentsize;
        if (at + 56 > (uint64_t)n)
            return FALSE;
        if (*(uint32_t *)(page + at) != 3 /* PT_INTERP */)
            continue;
        uint64_t off = *(uint64_t *)(page + at + 8), size = *(uint64_t *)(page + at + 32);
        if (off + size > (uint64_t)n || size == 0 || size >= cap)
            return FALSE;
        memcpy(out, page + off, size);
        out[size - 1] = 0;
        return TRUE;
    }
    return FALSE;
}

/* Wine's loader: a Windows child is a fork + execve of it, and its ELF
 * interpreter. (The interpreter can also load any readable program:
 * `ld.so /bin/sh` runs, but inside this same domain and filter.) */
static BOOL allow_wine_loader(floor_build *fb)
{
    static char exe[4096], interp[4096];
    int64_t n = LSYS(LNR_readlink, "/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        say(fb->why, sizeof fb->why, "cannot read /proc/self/exe (errno %d)", (int)-n);
        return FALSE;
    }
    exe[n] = 0;
    if (!add_rule(fb, exe, LL_EXECUTE | LL_READ_FILE, TRUE))
        return FALSE;
    if (!elf_interpreter(exe, interp, sizeof interp))
        return TRUE;   /* a static loader */
    return resolve_links(interp, sizeof interp) && add_rule(fb, interp, LL_EXECUTE | LL_READ_FILE, TRUE);
}

/* Devices a Wine process opens for writing itself (measured, design.md). */
static BOOL allow_devices(floor_build *fb)
{
    static const char *const devices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                          "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts",
                                          "/dev/shm", "/dev/dri"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (!add_rule(fb, devices[i],
                      LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE | LL_IOCTL_DEV | LL_READ_DIR |
                          (i == 8 ? LL_MAKE_REG | LL_REMOVE_FILE : 0),
                      FALSE))
            return FALSE;
    return TRUE;
}

/* The folder that holds every box and FVM's own files: <root> for a box at
 * <root>/boxes/<name>, else the box's own parent folder. */
static void fvm_root_of(const char *box, char *root)
{
    memcpy(root, box, strlen(box) + 1);
    path_parent(root);
    if (!strcmp(path_last(root), "boxes") && strcmp(root, "/boxes") != 0)
        path_parent(root);
}

static BOOL build_domain(floor_build *fb, int abi)
{
    static char box[4096], root[4096];
    if (!unix_path_of(g_fvm.config.box_path, box, sizeof box)) {
        say(fb->why, sizeof fb->why, "cannot find the Linux path of the box folder");
        return FALSE;
    }
    fvm_root_of(box, root);
    const uint64_t box_rights = LL_READ_FILE | LL_READ_DIR | LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE |
                                LL_MAKE_DIR | LL_MAKE_REG | LL_MAKE_SYM | LL_MAKE_FIFO | LL_MAKE_SOCK |
                                LL_REFER | LL_TRUNCATE;
    return add_rule(fb, "/", LL_READ_DIR, TRUE) &&
           read_all_but(fb, root) &&
           add_rule(fb, box, box_rights, TRUE) &&
           allow_wine_loader(fb) &&
           allow_devices(fb);
}

/* ---- seccomp ------------------------------------------------------------- */

struct sock_filter_insn { uint16_t code; uint8_t jt, jf; uint32_t k; };
struct sock_fprog_x64 { uint16_t len; uint16_t pad[3]; const struct sock_filter_insn *filter; };

#define BPF_LD_ABS  0x20
#define BPF_JEQ     0x15
#define BPF_JGE     0x35
#define BPF_JSET    0x45
#define BPF_RET     0x06
#define RET_ALLOW   0x7fff0000u
#define RET_ERRNO   0x00050000u
#define AUDIT_ARCH_X86_64 0xc000003eu

/* Refused outright: reaching into other processes, leaving the mount or
 * user namespace, kernel-level facilities, and opens that skip path checks. */
static const uint16_t g_denied[] = {
    101 /* ptrace */, 310 /* process_vm_readv */, 311 /* process_vm_writev */, 438 /* pidfd_getfd */,
    312 /* kcmp */, 272 /* unshare */, 308 /* setns */, 165 /* mount */, 166 /* umount2 */,
    155 /* pivot_root */, 161 /* chroot */, 428 /* open_tree */, 429 /* move_mount */, 430 /* fsopen */,
    431 /* fsconfig */, 432 /* fsmount */, 433 /* fspick */, 442 /* mount_setattr */,
    303 /* name_to_handle_at */, 304 /* open_by_handle_at */, 175 /* init_module */,
    313 /* finit_module */, 176 /* delete_module */, 246 /* kexec_load */, 320 /* kexec_file_load */,
    321 /* bpf */, 298 /* perf_event_open */, 323 /* userfaultfd */, 425 /* io_uring_setup */,
    426 /* io_uring_enter */, 427 /* io_uring_register */, 248 /* add_key */, 249 /* request_key */,
    250 /* keyctl */, 172 /* iopl */, 173 /* ioperm */, 169 /* reboot */, 167 /* swapon */,
    168 /* swapoff */, 103 /* syslog */, 163 /* acct */, 300 /* fanotify_init */,
};
#define CLONE_NAMESPACES 0x7e020080u   /* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME */

static size_t build_filter(struct sock_filter_insn *f)
{
    size_t n = 0, ndenied = sizeof g_denied / sizeof g_denied[0];
#define EMIT(c, t, e, kk) (f[n].code = (c), f[n].jt = (uint8_t)(t), f[n].jf = (uint8_t)(e), f[n].k = (kk), n++)
    /* Layout: [0..2] arch, [3] nr, [4] x32, denied list, clone (4), clone3 (2),
     * ioctl (5), allow, deny. Jumps are relative to the next instruction. */
    size_t deny = 3 + 1 + 1 + ndenied + 4 + 2 + 5 + 1;
    EMIT(BPF_LD_ABS, 0, 0, 4);                                 /* arch */
    EMIT(BPF_JEQ, 1, 0, AUDIT_ARCH_X86_64);
    EMIT(BPF_RET, 0, 0, RET_ERRNO | L_EPERM);                  /* i386 int 0x80 and others */
    EMIT(BPF_LD_ABS, 0, 0, 0);                                 /* nr */
    EMIT(BPF_JGE, deny - n - 1, 0, 0x40000000u);               /* x32 */
    for (size_t i = 0; i < ndenied; i++)
        EMIT(BPF_JEQ, deny - n - 1, 0, g_denied[i]);
    EMIT(BPF_JEQ, 0, 3, LNR_clone);
    EMIT(BPF_LD_ABS, 0, 0, 16);                                /* flags (low half of args[0]) */
    EMIT(BPF_JSET, deny - n - 1, 0, CLONE_NAMESPACES);
    EMIT(BPF_RET, 0, 0, RET_ALLOW);
    EMIT(BPF_JEQ, 0, 1, 435 /* clone3: its flags are out of reach; libc falls back to clone */);
    EMIT(BPF_RET, 0, 0, RET_ERRNO | L_ENOSYS);
    EMIT(BPF_JEQ, 0, 4, LNR_ioctl);
    EMIT(BPF_LD_ABS, 0, 0, 24);                                /* request (low half of args[1]) */
    EMIT(BPF_JEQ, deny - n - 1, 0, 0x5412 /* TIOCSTI: type into the terminal */);
    EMIT(BPF_JEQ, deny - n - 1, 0, 0x541c /* TIOCLINUX */);
    EMIT(BPF_RET, 0, 0, RET_ALLOW);
    EMIT(BPF_RET, 0, 0, RET_ALLOW);
    EMIT(BPF_RET, 0, 0, RET_ERRNO | L_EPERM);                  /* deny */
#undef EMIT
    return n;
}

static BOOL install_filter(char *why, size_t why_size)
{
    static struct sock_filter_insn filter[96];
    struct sock_fprog_x64 prog = {(uint16_t)build_filter(filter), {0, 0, 0}, filter};
    int64_t r = LSYS(LNR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (r != 0) {
        say(why, why_size, "seccomp filter refused (%d)", (int)r);
        return FALSE;
    }
    return TRUE;
}

/* ---- start --------------------------------------------------------------- */

static int count_threads(void)
{
    static char buf[4096];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, "/proc/self/task", L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC);
    if (fd < 0)
        return -1;
    int count = 0;
    int64_t n;
    while ((n = LSYS(LNR_getdents64, fd, buf, sizeof buf)) > 0)
        for (int64_t off = 0; off < n; off += *(uint16_t *)(buf + off + 16))
            count += buf[off + 19] != '.';
    LSYS(LNR_close, fd, 0, 0);
    return count;
}

static void audit_floor_off(void)
{
    policy_decision d;
    memset(&d, 0, sizeof d);
    d.action = POLICY_ACTION_OPEN;
    d.audit = 1;
    d.is_default = 1;
    d.rule = POLICY_NO_RULE;
    d.file = "";
    static const uint16_t what[] = {'f', 'l', 'o', 'o', 'r'};
    runtime_audit(POLICY_TYPE_PROCESS, "no-floor", &d, what, 5);
}

static BOOL floor_apply(char *why, size_t why_size)
{
    int threads = count_threads();
    if (threads != 1) {
        /* Landlock ABI 7 restricts only the calling thread (no TSYNC). */
        say(why, why_size, "%d Linux threads at start (expected 1)", threads);
        return FALSE;
    }
    int64_t abi = LSYS(LNR_landlock_create_ruleset, 0, 0, LL_CREATE_RULESET_VERSION);
    if (abi < 1) {
        say(why, why_size, "Landlock is not available (%d)", (int)abi);
        return FALSE;
    }
    floor_build fb;
    memset(&fb, 0, sizeof fb);
    fb.handled = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_READ_DIR | LL_REMOVE_DIR | LL_REMOVE_FILE |
                 LL_MAKE_CHAR | LL_MAKE_DIR | LL_MAKE_REG | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK |
                 LL_MAKE_SYM | (abi >= 2 ? LL_REFER : 0) | (abi >= 3 ? LL_TRUNCATE : 0) |
                 (abi >= 5 ? LL_IOCTL_DEV : 0);
    struct ll_ruleset_attr attr = {fb.handled, 0, abi >= 6 ? LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL : 0};
    size_t attr_size = abi >= 6 ? sizeof attr : 8;   /* ABI 1-3 know only the first field */
    int64_t ruleset = LSYS(LNR_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0) {
        say(why, why_size, "landlock_create_ruleset failed (%d)", (int)ruleset);
        return FALSE;
    }
    fb.ruleset = (int)ruleset;
    BOOL ok = build_domain(&fb, (int)abi);
    int64_t r = 0;
    if (ok && (r = LSYS(LNR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0)) != 0)
        say(fb.why, sizeof fb.why, "prctl(NO_NEW_PRIVS) failed (%d)", (int)r), ok = FALSE;
    if (ok && (r = LSYS(LNR_landlock_restrict_self, ruleset, 0, 0)) != 0)
        say(fb.why, sizeof fb.why, "landlock_restrict_self failed (%d)", (int)r), ok = FALSE;
    LSYS(LNR_close, ruleset, 0, 0);
    if (!ok) {
        memcpy(why, fb.why, why_size < sizeof fb.why ? why_size : sizeof fb.why);
        why[why_size - 1] = 0;
        return FALSE;
    }
    /* Only after the domain: the filter is what children test to know the
     * domain is already there. */
    if (!install_filter(why, why_size))
        return FALSE;
    g_floor_abi = (int)abi;
    return TRUE;
}

BOOL floor_start(void)
{
    if (!under_wine())
        return TRUE;   /* real Windows: the restricted token and job are the floor there */
    if (g_fvm.config.flags & FVM_BOX_FLAG_NO_FLOOR) {
        audit_floor_off();
        return TRUE;
    }
    if (LSYS(LNR_prctl, PR_GET_SECCOMP, 0, 0) == SECCOMP_MODE_FILTER) {
        g_floor_state = FLOOR_INHERITED;
        g_floor_abi = (int)LSYS(LNR_landlock_create_ruleset, 0, 0, LL_CREATE_RULESET_VERSION);
        return TRUE;
    }
    char why[256];
    if (!floor_apply(why, sizeof why)) {
        fvm_report("floor: the box's kernel floor cannot be set up: %s; refusing to run "
                   "(fvm run --no-floor starts it without, audited)", why);
        return FALSE;
    }
    g_floor_state = FLOOR_APPLIED;
    return TRUE;
}

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
 * - scope (ABI 6): no signal to a process outside the domain, and no
 *   abstract unix socket either unless the box is on the host's X display
 *   (a box with a display of its own is scoped: broker/display.c).
 * Before the domain, floor_ns.c puts the process into a user and mount
 * namespace that hides the host's Wine server directories (Landlock has no
 * rule for connecting to their pathname sockets).
 * The seccomp filter refuses ptrace, process_vm_readv/writev, namespaces,
 * mounts, kernel modules, BPF, io_uring, handle-based opens and TIOCSTI.
 *
 * Landlock applies to the calling thread and its future children; at this
 * point a Wine process has one Linux thread (measured; checked here, and
 * refused otherwise: ABI 7 has no LANDLOCK_RESTRICT_SELF_TSYNC). A child
 * created by a boxed process is a fork of it, so it arrives inside; it sees
 * FVM_BOX_FLAG_FLOOR_SET in the configuration its parent injected and the
 * seccomp filter (PR_GET_SECCOMP), and adds no second layer (Landlock
 * allows 16). */
#include "runtime/runtime.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/floor_rules.h"
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
#define LL_NET_BIND_TCP    (1ull << 0)   /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
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
static int g_floor_rules, g_floor_us;   /* rules of the domain, time to set it up */

/* Returns what floor_start did (FLOOR_*) and the Landlock ABI it used. */
__declspec(dllexport) int fvm_runtime_floor(int *abi)
{
    if (abi)
        *abi = g_floor_abi;
    return g_floor_state;
}

/* Microseconds floor_start took in this process, and the Landlock rules. */
__declspec(dllexport) int fvm_runtime_floor_cost(int *rules)
{
    if (rules)
        *rules = g_floor_rules;
    return g_floor_us;
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

static fvm_status visit_siblings(void *ctx, const char *dir, const char *skip)
{
    return read_siblings(ctx, dir, skip, LL_READ_FILE) ? FVM_OK : FVM_E_IO;
}

/* Read everywhere but below `hidden` (core/floor_rules.c walks the way). */
static BOOL read_all_but(floor_build *fb, const char *hidden)
{
    fvm_error err;
    fvm_status st = floor_walk_to(hidden, visit_siblings, fb, &err);
    if (st != FVM_OK && st != FVM_E_IO)
        say(fb->why, sizeof fb->why, "%s", err.message);
    return st == FVM_OK;
}

/* The loader's ELF interpreter: execve opens it for execution too. Wine's
 * loader is a small binary whose first page holds its program headers. */
static BOOL elf_interpreter(const char *exe, char *out, size_t cap)
{
    static unsigned char page[4096];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, exe, L_O_RDONLY | L_O_CLOEXEC);
    if (fd < 0)
        return FALSE;
    int64_t n = LSYS(LNR_read, fd, page, sizeof page);
    LSYS(LNR_close, fd, 0, 0);
    fvm_error err;
    return n > 0 && floor_elf_interpreter(page, (size_t)n, out, cap, &err) == FVM_OK;
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

static BOOL build_domain(floor_build *fb)
{
    static char box[4096], root[4096];
    if (!unix_path_of(g_fvm.config.box_path, box, sizeof box)) {
        say(fb->why, sizeof fb->why, "cannot find the Linux path of the box folder");
        return FALSE;
    }
    fvm_error err;
    if (floor_fvm_root(box, root, sizeof root, &err) != FVM_OK) {
        say(fb->why, sizeof fb->why, "%s", err.message);
        return FALSE;
    }
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

struct sock_fprog_x64 {
    uint16_t len;
    uint16_t pad[3];
    const floor_bpf_insn *filter;
};

static BOOL install_filter(char *why, size_t why_size)
{
    static floor_bpf_insn filter[FLOOR_BPF_MAX];
    struct sock_fprog_x64 prog = {(uint16_t)floor_seccomp_filter(filter, FLOOR_BPF_MAX), {0, 0, 0}, filter};
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
    /* First the namespace (floor_ns.c): a Landlock domain may not mount,
     * and the filter refuses unshare. */
    floor_ns_apply();
    if (floor_ns_state() == FLOOR_NS_UNMAPPED) {
        say(why, why_size, "the box's user namespace could not map this user");
        return FALSE;
    }
    floor_build fb;
    memset(&fb, 0, sizeof fb);
    fb.handled = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_READ_DIR | LL_REMOVE_DIR | LL_REMOVE_FILE |
                 LL_MAKE_CHAR | LL_MAKE_DIR | LL_MAKE_REG | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK |
                 LL_MAKE_SYM | (abi >= 2 ? LL_REFER : 0) | (abi >= 3 ? LL_TRUNCATE : 0) |
                 (abi >= 5 ? LL_IOCTL_DEV : 0);
    /* With the host's display, abstract sockets stay reachable: libxcb 1.15
     * tries X11's abstract socket first and gives up on EPERM instead of
     * falling back to /tmp/.X11-unix (measured), and ABI 7 cannot restrict
     * that pathname socket anyway. A box with a display of its own
     * (broker/display.c) is scoped: that display has no abstract socket, so
     * libxcb's first try fails with ECONNREFUSED and it goes on to the
     * pathname socket. */
    BOOL scope_abstract = (g_fvm.config.flags & FVM_BOX_FLAG_OWN_DISPLAY) || !GetEnvironmentVariableW(L"DISPLAY", NULL, 0);
    uint64_t scoped = abi < 6 ? 0 : LL_SCOPE_SIGNAL | (scope_abstract ? LL_SCOPE_ABSTRACT_UNIX : 0);
    /* TCP bind and connect, with no port allowed: under Wine 8 the server
     * makes those calls for Winsock (server/sock.c: IOCTL_AFD_BIND and
     * IOCTL_AFD_WINE_CONNECT run bind()/connect() in wineserver, outside this
     * domain), and the hooks decide them by [net]. So only a boxed program's
     * own raw connect()/bind() is refused (EACCES), whatever port. UDP and
     * raw sockets are outside Landlock (docs/design.md, The floor). */
    uint64_t net = abi >= 4 ? LL_NET_BIND_TCP | LL_NET_CONNECT_TCP : 0;
    struct ll_ruleset_attr attr = {fb.handled, net, scoped};
    /* ABI 1-3 know only the first field, 4-5 the first two. */
    size_t attr_size = abi >= 6 ? sizeof attr : abi >= 4 ? 16 : 8;
    int64_t ruleset = LSYS(LNR_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0) {
        say(why, why_size, "landlock_create_ruleset failed (%d)", (int)ruleset);
        return FALSE;
    }
    fb.ruleset = (int)ruleset;
    BOOL ok = build_domain(&fb);
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
    g_floor_rules = fb.rules;
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
    /* A child of a floored process is a fork of it. The flag alone could be
     * forged only by a process that creates the child itself (so the child
     * inherits its domain); the filter alone is no proof (a container's
     * runtime installs one too). */
    if ((g_fvm.config.flags & FVM_BOX_FLAG_FLOOR_SET) &&
        LSYS(LNR_prctl, PR_GET_SECCOMP, 0, 0) == SECCOMP_MODE_FILTER) {
        g_floor_state = FLOOR_INHERITED;
        g_floor_abi = (int)LSYS(LNR_landlock_create_ruleset, 0, 0, LL_CREATE_RULESET_VERSION);
        return TRUE;
    }
    char why[256];
    LARGE_INTEGER t0, t1, freq;
    QueryPerformanceCounter(&t0);
    BOOL ok = floor_apply(why, sizeof why);
    QueryPerformanceCounter(&t1);
    QueryPerformanceFrequency(&freq);
    g_floor_us = (int)((t1.QuadPart - t0.QuadPart) * 1000000 / freq.QuadPart);
    if (!ok) {
        fvm_report("floor: the box's kernel floor cannot be set up: %s; refusing to run "
                   "(fvm run --no-floor starts it without, audited)", why);
        return FALSE;
    }
    g_floor_state = FLOOR_APPLIED;
    g_fvm.config.flags |= FVM_BOX_FLAG_FLOOR_SET;   /* the configuration children are injected with */
    return TRUE;
}

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

#include "common/floor_domain.h"
#include "core/floor_rules.h"
#include "runtime/floor.h"
#include "runtime/linux_syscall.h"

#define PR_GET_SECCOMP       21
#define SECCOMP_MODE_FILTER  2

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

/* The real Linux path of a Windows path, through Wine's own mapping. */
BOOL floor_unix_path(const wchar_t *win, char *out, size_t cap)
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
    /* Wine names C: through $WINEPREFIX/dosdevices/c:, a link. */
    return ok && floor_domain_real_path(out, cap);
}

static BOOL install_filter(char *why, size_t why_size)
{
    int64_t r = floor_domain_seccomp();
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

/* No capability, now or after an execve: root in the box's user namespace
 * (or, without one, root itself) would otherwise pass every file mode, the
 * empty mode-000 folders laid over what the policy hides among them
 * (floor_ns.c). The bounding set and the securebits need CAP_SETPCAP, which
 * a process without capabilities lacks and then does not need. */
static BOOL drop_capabilities(char *why, size_t why_size)
{
    for (int cap = 0; cap < 64; cap++)
        if (LSYS(LNR_prctl, 24 /* PR_CAPBSET_DROP */, cap, 0) == -22 /* EINVAL: past the last */)
            break;
    /* SECBIT_NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each locked,
     * and KEEP_CAPS locked off: uid 0 gains nothing at an execve. */
    LSYS(LNR_prctl, 28 /* PR_SET_SECUREBITS */, 0xef, 0);
    linux_syscall6(LNR_prctl, 47 /* PR_CAP_AMBIENT */, 4 /* CLEAR_ALL */, 0, 0, 0, 0);
    struct {
        uint32_t version;
        int32_t pid;
    } header = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
    struct {
        uint32_t effective, permitted, inheritable;
    } none[2] = {{0, 0, 0}, {0, 0, 0}};
    int64_t r = LSYS(126 /* capset */, &header, none, 0);
    if (r != 0) {
        say(why, why_size, "cannot drop the process's capabilities (%d)", (int)r);
        return FALSE;
    }
    return TRUE;
}

static BOOL floor_apply(char *why, size_t why_size)
{
    int threads = count_threads();
    if (threads != 1) {
        /* Landlock ABI 7 restricts only the calling thread (no TSYNC). */
        say(why, why_size, "%d Linux threads at start (expected 1)", threads);
        return FALSE;
    }
    int abi = floor_domain_abi();
    if (abi < 1) {
        say(why, why_size, "Landlock is not available (%d)", abi);
        return FALSE;
    }
    static char box[4096];
    if (!floor_unix_path(g_fvm.config.box_path, box, sizeof box)) {
        say(why, why_size, "cannot find the Linux path of the box folder");
        return FALSE;
    }
    /* First the namespace (floor_ns.c): a Landlock domain may not mount,
     * and the filter refuses unshare. */
    floor_ns_apply(box);
    if (floor_ns_state() == FLOOR_NS_UNMAPPED) {
        say(why, why_size, "the box's user namespace could not map this user");
        return FALSE;
    }
    /* With the host's display, abstract sockets stay reachable: libxcb 1.15
     * tries X11's abstract socket first and gives up on EPERM instead of
     * falling back to /tmp/.X11-unix (measured), and ABI 7 cannot restrict
     * that pathname socket anyway. A box with a display of its own
     * (broker/display.c) is scoped: that display has no abstract socket, so
     * libxcb's first try fails with ECONNREFUSED and it goes on to the
     * pathname socket. */
    BOOL scope_abstract = (g_fvm.config.flags & FVM_BOX_FLAG_OWN_DISPLAY) || !GetEnvironmentVariableW(L"DISPLAY", NULL, 0);
    uint64_t scoped = LL_SCOPE_SIGNAL | (scope_abstract ? LL_SCOPE_ABSTRACT_UNIX : 0);
    /* TCP bind and connect, with no port allowed: under Wine 8 the server
     * makes those calls for Winsock (server/sock.c: IOCTL_AFD_BIND and
     * IOCTL_AFD_WINE_CONNECT run bind()/connect() in wineserver, outside this
     * domain), and the hooks decide them by [net]. So only a boxed program's
     * own raw connect()/bind() is refused (EACCES), whatever port. UDP and
     * raw sockets are outside Landlock (docs/design.md, The floor). */
    uint64_t net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
    floor_domain fd;
    BOOL ok = floor_domain_begin(&fd, net, scoped);
    ok = ok && floor_domain_box(&fd, box);
    int rules = fd.rules;
    if (ok)
        ok = floor_domain_restrict(&fd);
    else
        floor_domain_drop(&fd);
    if (!ok) {
        say(why, why_size, "%s", fd.why);
        return FALSE;
    }
    if (!drop_capabilities(why, why_size))
        return FALSE;
    /* Only after the domain: the filter is what children test to know the
     * domain is already there. */
    if (!install_filter(why, why_size))
        return FALSE;
    g_floor_abi = (int)abi;
    g_floor_rules = rules;
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

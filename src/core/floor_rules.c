/* floor_rules.c - the decisions of the floor, without system calls (see
 * floor_rules.h; runtime/floor.c makes the calls). */
#include "core/floor_rules.h"
#include "core/bytes.h"

#include <string.h>

/* Length of the parent of path[0..len): "/a/b" -> 2 ("/a"), "/a" -> 1 ("/"). */
static size_t parent_len(const char *path, size_t len)
{
    while (len > 1 && path[len - 1] != '/')
        len--;
    return len > 1 ? len - 1 : 1;
}

static fvm_status check_absolute(const char *path, fvm_error *err)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || path[0] != '/')
        return fvm_error_set(err, FVM_E_INVALID, "floor: '%s' is not an absolute Linux path", path ? path : "");
    if (n > 1 && path[n - 1] == '/')
        return fvm_error_set(err, FVM_E_INVALID, "floor: '%s' ends with a slash", path);
    /* No empty, "." or ".." component (the runtime resolves links first). */
    for (size_t at = 1; n > 1 && at <= n;) {
        size_t end = at;
        while (end < n && path[end] != '/')
            end++;
        size_t len = end - at;
        if (len == 0 || (len == 1 && path[at] == '.') || (len == 2 && path[at] == '.' && path[at + 1] == '.'))
            return fvm_error_set(err, FVM_E_INVALID, "floor: '%s' is not a resolved path", path);
        at = end + 1;
    }
    return FVM_OK;
}

fvm_status floor_fvm_root(const char *box, char *root, size_t cap, fvm_error *err)
{
    fvm_status st = check_absolute(box, err);
    if (st != FVM_OK)
        return st;
    size_t n = strlen(box);
    if (n == 1)
        return fvm_error_set(err, FVM_E_INVALID, "floor: the box folder cannot be /");
    size_t len = parent_len(box, n), grand = parent_len(box, len);
    const char *name = box + (grand > 1 ? grand + 1 : 1);   /* the parent's own name */
    if (len > 1 && grand > 1 && (size_t)(box + len - name) == 5 && !memcmp(name, "boxes", 5))
        len = grand;   /* <root>/boxes/<name>; a root of / itself would hide everything */
    if (len + 1 > cap)
        return fvm_error_set(err, FVM_E_RANGE, "floor: no room for the FVM root of '%s'", box);
    memcpy(root, box, len);
    root[len] = 0;
    return FVM_OK;
}

fvm_status floor_walk_to(const char *hidden, floor_visit_fn visit, void *ctx, fvm_error *err)
{
    fvm_status st = check_absolute(hidden, err);
    if (st != FVM_OK)
        return st;
    char dir[4096], skip[256];
    size_t n = strlen(hidden);
    if (n >= sizeof dir)
        return fvm_error_set(err, FVM_E_RANGE, "floor: path too long");
    /* Each component after the first '/' in turn: dir is what precedes it. */
    for (size_t at = 1; at < n;) {
        size_t end = at;
        while (end < n && hidden[end] != '/')
            end++;
        if (end - at >= sizeof skip)
            return fvm_error_set(err, FVM_E_RANGE, "floor: a component of '%s' is too long", hidden);
        size_t dir_len = at > 1 ? at - 1 : 1;
        memcpy(dir, hidden, dir_len);
        dir[dir_len] = 0;
        memcpy(skip, hidden + at, end - at);
        skip[end - at] = 0;
        st = visit(ctx, dir, skip);
        if (st != FVM_OK)
            return st;
        at = end + 1;
    }
    return FVM_OK;
}

/* ---- seccomp ------------------------------------------------------------ */

#define BPF_LD_ABS_W 0x20
#define BPF_JEQ_K    0x15
#define BPF_JGE_K    0x35
#define BPF_JSET_K   0x45
#define BPF_RET_K    0x06
#define RET_ALLOW    0x7fff0000u
#define RET_ERRNO    0x00050000u
#define AUDIT_ARCH_X86_64 0xc000003eu
#define ERRNO_EPERM  1u
#define ERRNO_ENOSYS 38u

/* Refused outright: reaching into other processes, leaving the mount or
 * user namespace, kernel-level facilities, opens that skip path checks. */
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
#define NR_SOCKET 41u
#define AF_INET_  2u
#define AF_INET6_ 10u
#define AF_PACKET_ 17u
#define SOCK_RAW_ 3u
#define BPF_ALU_AND_K 0x54
#define NR_IOCTL  16u
#define NR_CLONE  56u
#define NR_CLONE3 435u
/* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME */
#define CLONE_NAMESPACES 0x7e020080u

size_t floor_seccomp_filter(floor_bpf_insn *f, size_t cap)
{
    size_t ndenied = sizeof g_denied / sizeof g_denied[0];
    /* Layout: arch (3), nr (1), x32 (1), the denied list, clone (4),
     * clone3 (2), socket (9), ioctl (5), allow (1), deny (1). Jumps count
     * from the next instruction. */
    size_t total = 3 + 1 + 1 + ndenied + 4 + 2 + 9 + 5 + 1 + 1, deny = total - 1, n = 0;
    if (cap < total)
        return 0;
#define EMIT(c, t, e, kk) (f[n].code = (c), f[n].jt = (uint8_t)(t), f[n].jf = (uint8_t)(e), f[n].k = (kk), n++)
#define TO_DENY (deny - n - 1)
    EMIT(BPF_LD_ABS_W, 0, 0, 4);                               /* seccomp_data.arch */
    EMIT(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64);
    EMIT(BPF_RET_K, 0, 0, RET_ERRNO | ERRNO_EPERM);            /* int 0x80 and other ABIs */
    EMIT(BPF_LD_ABS_W, 0, 0, 0);                               /* seccomp_data.nr */
    EMIT(BPF_JGE_K, TO_DENY, 0, 0x40000000u);                  /* x32 numbers */
    for (size_t i = 0; i < ndenied; i++)
        EMIT(BPF_JEQ_K, TO_DENY, 0, g_denied[i]);
    EMIT(BPF_JEQ_K, 0, 3, NR_CLONE);
    EMIT(BPF_LD_ABS_W, 0, 0, 16);                              /* clone flags: low half of args[0] */
    EMIT(BPF_JSET_K, TO_DENY, 0, CLONE_NAMESPACES);
    EMIT(BPF_RET_K, 0, 0, RET_ALLOW);
    EMIT(BPF_JEQ_K, 0, 1, NR_CLONE3);                          /* flags in memory: libc falls back to clone */
    EMIT(BPF_RET_K, 0, 0, RET_ERRNO | ERRNO_ENOSYS);
    /* Raw IP and packet sockets (a root box could forge traffic past
     * [net]). Wine's server makes Winsock's sockets; the client's own are
     * DNS (UDP) and X11/pipes (unix), which stay allowed. */
    EMIT(BPF_JEQ_K, 0, 8, NR_SOCKET);
    EMIT(BPF_LD_ABS_W, 0, 0, 16);                              /* domain: low half of args[0] */
    EMIT(BPF_JEQ_K, TO_DENY, 0, AF_PACKET_);
    EMIT(BPF_JEQ_K, 1, 0, AF_INET_);
    EMIT(BPF_JEQ_K, 0, 3, AF_INET6_);
    EMIT(BPF_LD_ABS_W, 0, 0, 24);                              /* type: low half of args[1] */
    EMIT(BPF_ALU_AND_K, 0, 0, 0xfu);                           /* without SOCK_NONBLOCK/CLOEXEC */
    EMIT(BPF_JEQ_K, TO_DENY, 0, SOCK_RAW_);
    EMIT(BPF_RET_K, 0, 0, RET_ALLOW);
    EMIT(BPF_JEQ_K, 0, 4, NR_IOCTL);
    EMIT(BPF_LD_ABS_W, 0, 0, 24);                              /* request: low half of args[1] */
    EMIT(BPF_JEQ_K, TO_DENY, 0, 0x5412u);                      /* TIOCSTI: type into the terminal */
    EMIT(BPF_JEQ_K, TO_DENY, 0, 0x541cu);                      /* TIOCLINUX */
    EMIT(BPF_RET_K, 0, 0, RET_ALLOW);
    EMIT(BPF_RET_K, 0, 0, RET_ALLOW);
    EMIT(BPF_RET_K, 0, 0, RET_ERRNO | ERRNO_EPERM);            /* deny */
#undef TO_DENY
#undef EMIT
    return n;
}

/* The box's Wine server makes Winsock's sockets for the box's programs
 * (server/sock.c), in the host's network: a program that gets around the
 * hooks has its datagrams sent where the server can. For a policy that
 * lets no program use UDP (core/policy_net.h) the server is refused IPv4
 * and IPv6 datagram sockets, EACCES as Landlock refuses a connect (Wine
 * reports it as WSAEACCES). Stacked on the domain; not the programs' filter
 * (their own UDP is in an empty network namespace already). */
#define SOCK_DGRAM_ 2u
#define ERRNO_EACCES 13u
#define EMIT(c, t, e, kk) (f[n].code = (c), f[n].jt = (uint8_t)(t), f[n].jf = (uint8_t)(e), f[n].k = (kk), n++)

/* The start of the small filters stacked on a box's Wine server: another
 * ABI's calls (int 0x80's socketcall too) are refused, and the system
 * call's number is loaded. Four instructions. */
static size_t x86_64_only(floor_bpf_insn *f)
{
    size_t n = 0;
    EMIT(BPF_LD_ABS_W, 0, 0, 4);                               /* seccomp_data.arch */
    EMIT(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64);
    EMIT(BPF_RET_K, 0, 0, RET_ERRNO | ERRNO_EPERM);
    EMIT(BPF_LD_ABS_W, 0, 0, 0);                               /* seccomp_data.nr */
    return n;
}

size_t floor_seccomp_no_inet_datagrams(floor_bpf_insn *f, size_t cap)
{
    if (cap < 13)
        return 0;
    size_t n = x86_64_only(f);
    EMIT(BPF_JEQ_K, 0, 6, NR_SOCKET);
    EMIT(BPF_LD_ABS_W, 0, 0, 16);                              /* domain: low half of args[0] */
    EMIT(BPF_JEQ_K, 1, 0, AF_INET_);
    EMIT(BPF_JEQ_K, 0, 3, AF_INET6_);
    EMIT(BPF_LD_ABS_W, 0, 0, 24);                              /* type: low half of args[1] */
    EMIT(BPF_ALU_AND_K, 0, 0, 0xfu);                           /* without SOCK_NONBLOCK/CLOEXEC */
    EMIT(BPF_JEQ_K, 1, 0, SOCK_DGRAM_);
    EMIT(BPF_RET_K, 0, 0, RET_ALLOW);
    EMIT(BPF_RET_K, 0, 0, RET_ERRNO | ERRNO_EACCES);
    return n;
}

/* A policy that denies some addresses (core/policy_net.h,
 * net_policy_connect_checks_needed): the box's server's connect() calls go
 * to a supervisor (core/floor_supervise.h), which reads the address and
 * answers. Landlock's TCP rules name ports only and it has no UDP rule. */
#define NR_CONNECT 42u
#define RET_USER_NOTIF 0x7fc00000u

size_t floor_seccomp_notify_connect(floor_bpf_insn *f, size_t cap)
{
    if (cap < 7)
        return 0;
    size_t n = x86_64_only(f);
    EMIT(BPF_JEQ_K, 0, 1, NR_CONNECT);
    EMIT(BPF_RET_K, 0, 0, RET_USER_NOTIF);
    EMIT(BPF_RET_K, 0, 0, RET_ALLOW);
#undef EMIT
    return n;
}

/* ---- ELF ---------------------------------------------------------------- */

fvm_status floor_elf_interpreter(const unsigned char *head, size_t n, char *out, size_t cap, fvm_error *err)
{
    if (n < 64 || memcmp(head, "\177ELF\2\1", 6) != 0)
        return fvm_error_set(err, FVM_E_INVALID, "floor: not a little-endian ELF64 file");
    uint64_t phoff = get_le64(head + 32);
    uint16_t phentsize = get_le16(head + 54), phnum = get_le16(head + 56);
    if (phentsize < 56)
        return fvm_error_set(err, FVM_E_INVALID, "floor: program header entries of %u bytes", phentsize);
    for (uint16_t i = 0; i < phnum; i++) {
        if (phoff > n || (uint64_t)i * phentsize > n - phoff || n - phoff - (uint64_t)i * phentsize < 56)
            return fvm_error_set(err, FVM_E_INVALID, "floor: program headers beyond the first %lu bytes", (unsigned long)n);
        const unsigned char *ph = head + phoff + (uint64_t)i * phentsize;
        if (get_le32(ph) != 3 /* PT_INTERP */)
            continue;
        uint64_t off = get_le64(ph + 8), size = get_le64(ph + 32);
        if (size == 0 || off > n || size > n - off || head[off + size - 1] != 0)
            return fvm_error_set(err, FVM_E_INVALID, "floor: PT_INTERP lies beyond the first %lu bytes", (unsigned long)n);
        if (size > cap)
            return fvm_error_set(err, FVM_E_RANGE, "floor: interpreter path of %llu bytes", (unsigned long long)size);
        memcpy(out, head + off, size);
        return FVM_OK;
    }
    return fvm_error_set(err, FVM_E_NOTFOUND, "floor: no PT_INTERP (a static binary)");
}

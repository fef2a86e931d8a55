/* test_floor_rules.c - the floor's decisions (core/floor_rules.c): the FVM
 * root of a box, the walk that lays read rules around it, the ELF
 * interpreter, and the seccomp filter, which is loaded into a real forked
 * child to check what it refuses and what it lets through. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/floor_rules.h"
#include "core/floor_supervise.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

static void root_is(const char *box, const char *expect)
{
    char root[256];
    fvm_error err = {0};
    assert_int_equal(floor_fvm_root(box, root, sizeof root, &err), FVM_OK);
    assert_string_equal(root, expect);
}

static void test_fvm_root(void **state)
{
    root_is("/work/p/drive_c/FVM/boxes/web", "/work/p/drive_c/FVM");
    root_is("/tmp/elsewhere/mybox", "/tmp/elsewhere");      /* not under boxes/: its parent */
    root_is("/boxes/x", "/boxes");                          /* never / itself */
    root_is("/a/boxesx/b", "/a/boxesx");
    fvm_error err = {0};
    char root[8];
    assert_int_equal(floor_fvm_root("relative/boxes/x", root, sizeof root, &err), FVM_E_INVALID);
    assert_int_equal(floor_fvm_root("/a/../boxes/x", root, sizeof root, &err), FVM_E_INVALID);
    assert_int_equal(floor_fvm_root("/a/b/", root, sizeof root, &err), FVM_E_INVALID);
    assert_int_equal(floor_fvm_root("/", root, sizeof root, &err), FVM_E_INVALID);
    assert_int_equal(floor_fvm_root("/long/folder/name/boxes/x", root, sizeof root, &err), FVM_E_RANGE);
}

typedef struct visits { char seen[8][2][64]; int n; int fail_at; } visits;

static fvm_status record(void *ctx, const char *dir, const char *skip)
{
    visits *v = ctx;
    if (v->n == v->fail_at)
        return FVM_E_IO;
    snprintf(v->seen[v->n][0], 64, "%s", dir);
    snprintf(v->seen[v->n][1], 64, "%s", skip);
    v->n++;
    return FVM_OK;
}

static void test_walk_visits_each_ancestor_with_the_way_on(void **state)
{
    visits v = {.fail_at = -1};
    fvm_error err = {0};
    assert_int_equal(floor_walk_to("/work/p/FVM", record, &v, &err), FVM_OK);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.seen[0][0], "/");
    assert_string_equal(v.seen[0][1], "work");
    assert_string_equal(v.seen[1][0], "/work");
    assert_string_equal(v.seen[1][1], "p");
    assert_string_equal(v.seen[2][0], "/work/p");
    assert_string_equal(v.seen[2][1], "FVM");
    visits none = {.fail_at = -1};
    assert_int_equal(floor_walk_to("/", record, &none, &err), FVM_OK);
    assert_int_equal(none.n, 0);
    visits stop = {.fail_at = 1};
    assert_int_equal(floor_walk_to("/a/b/c", record, &stop, &err), FVM_E_IO);
    assert_int_equal(stop.n, 1);
    assert_int_equal(floor_walk_to("/a//b", record, &v, &err), FVM_E_INVALID);
    assert_int_equal(floor_walk_to("a/b", record, &v, &err), FVM_E_INVALID);
}

static size_t elf_with_interp(unsigned char *buf, size_t cap, const char *interp)
{
    memset(buf, 0, cap);
    memcpy(buf, "\177ELF\2\1\1", 7);
    buf[32] = 64;           /* e_phoff */
    buf[54] = 56;           /* e_phentsize */
    buf[56] = 2;            /* e_phnum */
    buf[64] = 6;            /* PT_PHDR */
    unsigned char *ph = buf + 64 + 56;
    ph[0] = 3;              /* PT_INTERP */
    size_t len = strlen(interp) + 1;
    ph[8] = 200;            /* p_offset */
    ph[32] = (unsigned char)len;   /* p_filesz */
    memcpy(buf + 200, interp, len);
    return 200 + len;
}

static void test_elf_interpreter(void **state)
{
    unsigned char elf[512];
    char out[64];
    fvm_error err = {0};
    size_t n = elf_with_interp(elf, sizeof elf, "/lib64/ld-linux-x86-64.so.2");
    assert_int_equal(floor_elf_interpreter(elf, n, out, sizeof out, &err), FVM_OK);
    assert_string_equal(out, "/lib64/ld-linux-x86-64.so.2");
    assert_int_equal(floor_elf_interpreter(elf, 150, out, sizeof out, &err), FVM_E_INVALID);  /* cut */
    assert_int_equal(floor_elf_interpreter(elf, n, out, 8, &err), FVM_E_RANGE);
    elf[64 + 56] = 1;   /* no PT_INTERP any more */
    assert_int_equal(floor_elf_interpreter(elf, n, out, sizeof out, &err), FVM_E_NOTFOUND);
    elf[0] = 'X';
    assert_int_equal(floor_elf_interpreter(elf, n, out, sizeof out, &err), FVM_E_INVALID);
    elf_with_interp(elf, sizeof elf, "/x");
    elf[64 + 56 + 8] = 0xff;   /* offset beyond the buffer */
    elf[64 + 56 + 9] = 0xff;
    assert_int_equal(floor_elf_interpreter(elf, n, out, sizeof out, &err), FVM_E_INVALID);
}

/* In a forked child: load the filter, try calls, report errnos. */
static int run_with(size_t (*make)(floor_bpf_insn *, size_t), long (*attempt)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        floor_bpf_insn insns[FLOOR_BPF_MAX];
        size_t n = make(insns, FLOOR_BPF_MAX);
        struct sock_fprog prog = {(unsigned short)n, (struct sock_filter *)insns};
        if (!n || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
            _exit(200);
        long r = attempt();
        _exit(r == -1 ? (errno & 0x7f) : 100);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_filtered(long (*attempt)(void))
{
    return run_with(floor_seccomp_filter, attempt);
}

static long try_ptrace(void) { return ptrace(PTRACE_ATTACH, getppid(), 0, 0); }
static long try_unshare(void) { return syscall(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */); }
static long try_vm_readv(void) { return syscall(SYS_process_vm_readv, getppid(), 0, 0, 0, 0, 0); }
static long try_clone_newns(void) { return syscall(SYS_clone, 0x00020000 | 17 /* CLONE_NEWNS|SIGCHLD */, 0, 0, 0, 0); }
static long try_clone3(void) { return syscall(435, 0, 0); }
static long try_tiocsti(void) { char c = 'x'; return syscall(SYS_ioctl, 0, 0x5412, &c); }
static long try_getpid(void) { return syscall(SYS_getpid) > 0 ? 0 : -1; }
static long try_fork(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    if (p < 0)
        return -1;
    waitpid(p, NULL, 0);
    return 0;
}
static long try_raw_socket(void) { return syscall(SYS_socket, 2 /* AF_INET */, 3 | 0x80000 /* SOCK_RAW|CLOEXEC */, 1); }
static long try_raw6_socket(void) { return syscall(SYS_socket, 10 /* AF_INET6 */, 3 /* SOCK_RAW */, 58); }
static long try_packet_socket(void) { return syscall(SYS_socket, 17 /* AF_PACKET */, 3 /* SOCK_RAW */, 0); }
static long try_udp_socket(void) { long fd = syscall(SYS_socket, 2, 2 /* SOCK_DGRAM */, 0); return fd >= 0 ? 0 : -1; }
static long try_unix_socket(void) { long fd = syscall(SYS_socket, 1, 1 | 0x800 /* NONBLOCK */, 0); return fd >= 0 ? 0 : -1; }
static long try_open(void) { return syscall(SYS_openat, AT_FDCWD, "/dev/null", 0) >= 0 ? 0 : -1; }

static void test_filter_refuses_escape_calls_and_allows_ordinary_ones(void **state)
{
    assert_int_equal(run_filtered(try_ptrace), EPERM);
    assert_int_equal(run_filtered(try_unshare), EPERM);
    assert_int_equal(run_filtered(try_vm_readv), EPERM);
    assert_int_equal(run_filtered(try_clone_newns), EPERM);
    assert_int_equal(run_filtered(try_clone3), ENOSYS);
    assert_int_equal(run_filtered(try_tiocsti), EPERM);
    assert_int_equal(run_filtered(try_getpid), 100);
    assert_int_equal(run_filtered(try_fork), 100);   /* glibc's fork: clone without namespace flags */
    assert_int_equal(run_filtered(try_open), 100);
    assert_int_equal(run_filtered(try_raw_socket), EPERM);
    assert_int_equal(run_filtered(try_raw6_socket), EPERM);
    assert_int_equal(run_filtered(try_packet_socket), EPERM);
    assert_int_equal(run_filtered(try_udp_socket), 100);     /* the client's own DNS lookups */
    assert_int_equal(run_filtered(try_unix_socket), 100);    /* X11 */
}

static long try_udp6_socket(void) { long fd = syscall(SYS_socket, 10, 2 | 0x80000 /* CLOEXEC */, 17); return fd >= 0 ? 0 : -1; }
static long try_tcp_socket(void) { long fd = syscall(SYS_socket, 2, 1 /* SOCK_STREAM */, 0); return fd >= 0 ? 0 : -1; }
static long try_unix_dgram(void) { long fd = syscall(SYS_socket, 1, 2 /* SOCK_DGRAM */, 0); return fd >= 0 ? 0 : -1; }
static long try_udp_nonblock(void) { long fd = syscall(SYS_socket, 2, 2 | 0x800 /* NONBLOCK */, 0); return fd >= 0 ? 0 : -1; }

static void test_datagram_filter_refuses_inet_datagram_sockets_only(void **state)
{
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_udp_socket), EACCES);
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_udp6_socket), EACCES);
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_udp_nonblock), EACCES);
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_tcp_socket), 100);
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_unix_dgram), 100);
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_unix_socket), 100);
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_open), 100);
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_fork), 100);
    /* It leaves what the domain's filter refuses to that filter. */
    assert_int_equal(run_with(floor_seccomp_no_inet_datagrams, try_getpid), 100);
    floor_bpf_insn small[12];
    assert_int_equal(floor_seccomp_no_inet_datagrams(small, 12), 0);
}

/* ---- the connect supervisor (core/floor_supervise.c) -------------------- */

static int64_t raw_syscall(int64_t nr, int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f)
{
    long r = syscall(nr, a, b, c, d, e, f);
    return r == -1 ? -errno : r;
}

static uint16_t g_denied_port;

/* Denies TCP (or a socket whose type is unknown) to g_denied_port on
 * 127.0.0.1. */
static int deny_one_port(void *ctx, const floor_connect *c)
{
    (void)ctx;
    int loopback = c->addr.family == 4 && c->addr.bytes[0] == 127 && c->addr.bytes[3] == 1;
    return loopback && c->port == g_denied_port && c->proto != NET_PROTO_UDP ? EACCES : 0;
}

static int tcp_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* errno of a connect() of a new socket of type to 127.0.0.1:port (or of
 * the IPv4-mapped form), 0 if it connected. */
static int try_connect(int family, int type, uint16_t port)
{
    int fd = socket(family, type, 0), r;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {0};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        a.sin6_addr.s6_addr[10] = a.sin6_addr.s6_addr[11] = 0xff;
        a.sin6_addr.s6_addr[12] = 127;
        a.sin6_addr.s6_addr[15] = 1;
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    int e = r ? errno : 0;
    close(fd);
    return e;
}

static int try_unix_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {0};
    a.sun_family = AF_UNIX;
    strcpy(a.sun_path, "/nonexistent/fvm-test-socket");
    int r = connect(fd, (struct sockaddr *)&a, sizeof a), e = r ? errno : 0;
    close(fd);
    return e;
}

/* A child under the notify filter, its parent supervising: each connect
 * gets the decision; exit bits say which outcomes were as expected. */
static void test_supervisor_decides_each_connect_by_address_and_protocol(void **state)
{
    uint16_t denied, allowed;
    int l1 = tcp_listener(&denied), l2 = tcp_listener(&allowed);
    g_denied_port = denied;
    pid_t supervisor = fork();
    if (supervisor == 0) {
        floor_bpf_insn insns[FLOOR_BPF_MAX];
        size_t n = floor_seccomp_notify_connect(insns, FLOOR_BPF_MAX);
        struct sock_fprog prog = {(unsigned short)n, (struct sock_filter *)insns};
        long listener = n && !prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
                            ? syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog)
                            : -1;
        if (listener < 0)
            _exit(200);
        pid_t child = fork();
        if (child == 0) {
            int bits = 0;
            bits |= (try_connect(AF_INET, SOCK_STREAM, denied) == EACCES) << 0;
            bits |= (try_connect(AF_INET, SOCK_STREAM, allowed) == 0) << 1;
            bits |= (try_connect(AF_INET6, SOCK_STREAM, denied) == EACCES) << 2;   /* mapped IPv4 */
            bits |= (try_connect(AF_INET, SOCK_DGRAM, denied) == 0) << 3;          /* the type is read */
            bits |= (try_unix_connect() == ENOENT) << 4;                          /* other families go on */
            bits |= (syscall(SYS_connect, 0, (void *)8, 16) == -1 && errno == EACCES) << 5;   /* unreadable */
            _exit(bits);
        }
        int status = floor_supervise_connects(raw_syscall, listener, child, deny_one_port, NULL);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 201);
    }
    int status = 0;
    waitpid(supervisor, &status, 0);
    close(l1);
    close(l2);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0x3f);
}

static void test_sockaddr_parse(void **state)
{
    net_addr a;
    uint16_t port = 0;
    const uint8_t v4[16] = {2, 0, 0x01, 0xbb, 10, 1, 2, 3};
    assert_int_equal(floor_sockaddr_parse(v4, sizeof v4, &a, &port), 1);
    assert_int_equal(a.family, 4);
    assert_int_equal(port, 443);
    assert_int_equal(a.bytes[0], 10);
    assert_int_equal(a.bytes[3], 3);
    assert_int_equal(floor_sockaddr_parse(v4, 7, &a, &port), -1);   /* cut short */
    uint8_t v6[28] = {10, 0, 0, 80};
    v6[8 + 15] = 1;   /* ::1 */
    assert_int_equal(floor_sockaddr_parse(v6, sizeof v6, &a, &port), 1);
    assert_int_equal(a.family, 6);
    assert_int_equal(port, 80);
    assert_int_equal(floor_sockaddr_parse(v6, 20, &a, &port), -1);
    const uint8_t unix_sa[4] = {1, 0, '/', 0};
    assert_int_equal(floor_sockaddr_parse(unix_sa, sizeof unix_sa, &a, &port), 0);
    assert_int_equal(floor_sockaddr_parse(unix_sa, 1, &a, &port), -1);
    floor_bpf_insn small[6];
    assert_int_equal(floor_seccomp_notify_connect(small, 6), 0);
}

static void test_filter_needs_room(void **state)
{
    floor_bpf_insn small[10];
    assert_int_equal(floor_seccomp_filter(small, 10), 0);
    floor_bpf_insn full[FLOOR_BPF_MAX];
    size_t n = floor_seccomp_filter(full, FLOOR_BPF_MAX);
    assert_true(n > 40 && n <= FLOOR_BPF_MAX);
    assert_int_equal(full[n - 1].k, 0x00050001u);   /* the deny target: EPERM */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fvm_root),
        cmocka_unit_test(test_walk_visits_each_ancestor_with_the_way_on),
        cmocka_unit_test(test_elf_interpreter),
        cmocka_unit_test(test_filter_refuses_escape_calls_and_allows_ordinary_ones),
        cmocka_unit_test(test_datagram_filter_refuses_inet_datagram_sockets_only),
        cmocka_unit_test(test_filter_needs_room),
        cmocka_unit_test(test_supervisor_decides_each_connect_by_address_and_protocol),
        cmocka_unit_test(test_sockaddr_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

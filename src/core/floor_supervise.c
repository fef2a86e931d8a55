/* floor_supervise.c - answers a box's Wine server's connect() calls
 * (core/floor_supervise.h): seccomp user notifications, the address read
 * from the server's memory, the caller's decision. */
#include "core/floor_supervise.h"

#include <string.h>

enum {
    NR_POLL = 7, NR_CLOSE = 3, NR_IOCTL = 16, NR_GETSOCKOPT = 55, NR_WAIT4 = 61, NR_CONNECT = 42,
    NR_PROCESS_VM_READV = 310, NR_PIDFD_OPEN = 434, NR_PIDFD_GETFD = 438,
};
#define NOTIF_RECV 0xc0502100u       /* SECCOMP_IOCTL_NOTIF_RECV: _IOWR('!', 0, struct seccomp_notif) */
#define NOTIF_SEND 0xc0182101u       /* SECCOMP_IOCTL_NOTIF_SEND: _IOWR('!', 1, struct seccomp_notif_resp) */
#define NOTIF_ID_VALID 0x40082102u   /* SECCOMP_IOCTL_NOTIF_ID_VALID: _IOW('!', 2, __u64) */
#define FLAG_CONTINUE 1u             /* SECCOMP_USER_NOTIF_FLAG_CONTINUE */
#define E_INTR 4
#define E_ACCES 13

struct notif {             /* struct seccomp_notif */
    uint64_t id;
    uint32_t pid, flags;
    int32_t nr;
    uint32_t arch;
    uint64_t ip;
    uint64_t args[6];
};
struct notif_resp {        /* struct seccomp_notif_resp */
    uint64_t id;
    int64_t val;
    int32_t error;
    uint32_t flags;
};
struct iov {
    void *base;
    uint64_t len;
};
struct pollfd_ {
    int32_t fd;
    int16_t events, revents;
};

int floor_sockaddr_parse(const uint8_t *sa, size_t len, net_addr *addr, uint16_t *port)
{
    if (len < 2)
        return -1;
    uint16_t family = (uint16_t)(sa[0] | sa[1] << 8);
    memset(addr, 0, sizeof *addr);
    if (family == 2 /* AF_INET */) {
        if (len < 8)
            return -1;
        addr->family = 4;
        memcpy(addr->bytes, sa + 4, 4);
    } else if (family == 10 /* AF_INET6 */) {
        if (len < 24)
            return -1;
        addr->family = 6;
        memcpy(addr->bytes, sa + 8, 16);
        net_addr_normalize(addr);
    } else {
        return 0;
    }
    *port = (uint16_t)(sa[2] << 8 | sa[3]);
    return 1;
}

/* SOCK_STREAM or SOCK_DGRAM of descriptor fd of process pid, as a
 * net_proto; NET_PROTO_ANY if it cannot be told. */
static uint8_t socket_proto(floor_syscall_fn sys, uint32_t pid, int64_t fd)
{
    int64_t pidfd = sys(NR_PIDFD_OPEN, pid, 0, 0, 0, 0, 0);
    if (pidfd < 0)
        return NET_PROTO_ANY;
    int64_t copy = sys(NR_PIDFD_GETFD, pidfd, fd, 0, 0, 0, 0);
    sys(NR_CLOSE, pidfd, 0, 0, 0, 0, 0);
    if (copy < 0)
        return NET_PROTO_ANY;
    int32_t type = 0;
    uint32_t len = sizeof type;
    int64_t r = sys(NR_GETSOCKOPT, copy, 1 /* SOL_SOCKET */, 3 /* SO_TYPE */, (int64_t)(uintptr_t)&type,
                    (int64_t)(uintptr_t)&len, 0);
    sys(NR_CLOSE, copy, 0, 0, 0, 0, 0);
    if (r != 0)
        return NET_PROTO_ANY;
    return type == 1 ? NET_PROTO_TCP : type == 2 ? NET_PROTO_UDP : NET_PROTO_ANY;
}

/* The answer to one connect(): 0 to go on, else an errno. */
static int decide_one(floor_syscall_fn sys, int64_t listener, const struct notif *n, floor_connect_decide_fn decide,
                      void *ctx)
{
    if (n->nr != NR_CONNECT)
        return 0;   /* the filter sends nothing else */
    uint8_t sa[128];
    uint64_t len = n->args[2] < sizeof sa ? n->args[2] : sizeof sa;
    struct iov local = {sa, len}, remote = {(void *)(uintptr_t)n->args[1], len};
    int64_t got = len ? sys(NR_PROCESS_VM_READV, n->pid, (int64_t)(uintptr_t)&local, 1, (int64_t)(uintptr_t)&remote,
                            1, 0)
                      : 0;
    /* The process may have ended and its pid been reused meanwhile. */
    uint64_t id = n->id;
    if (sys(NR_IOCTL, listener, NOTIF_ID_VALID, (int64_t)(uintptr_t)&id, 0, 0, 0) != 0)
        return E_ACCES;
    floor_connect c;
    memset(&c, 0, sizeof c);
    int kind = got > 0 ? floor_sockaddr_parse(sa, (size_t)got, &c.addr, &c.port) : -1;
    if (kind == 0)
        return 0;   /* a unix socket, AF_UNSPEC (dissolving an association) */
    if (kind < 0)
        return E_ACCES;
    c.proto = socket_proto(sys, n->pid, (int64_t)n->args[0]);
    return decide(ctx, &c);
}

int floor_supervise_connects(floor_syscall_fn sys, int64_t listener, int64_t child, floor_connect_decide_fn decide,
                             void *ctx)
{
    for (;;) {
        int32_t status = 0;
        int64_t ended = sys(NR_WAIT4, child, (int64_t)(uintptr_t)&status, 1 /* WNOHANG */, 0, 0, 0);
        if (ended == child)
            return status;
        if (ended < 0 && ended != -E_INTR)
            return -1;
        struct pollfd_ p = {(int32_t)listener, 1 /* POLLIN */, 0};
        int64_t ready = sys(NR_POLL, (int64_t)(uintptr_t)&p, 1, 250, 0, 0, 0);
        if (ready <= 0 || !(p.revents & 1))
            continue;
        struct notif n;
        memset(&n, 0, sizeof n);
        if (sys(NR_IOCTL, listener, NOTIF_RECV, (int64_t)(uintptr_t)&n, 0, 0, 0) != 0)
            continue;   /* the caller ended, or was interrupted, before it was read */
        int error = decide_one(sys, listener, &n, decide, ctx);
        struct notif_resp r = {n.id, 0, error ? -error : 0, error ? 0 : FLAG_CONTINUE};
        sys(NR_IOCTL, listener, NOTIF_SEND, (int64_t)(uintptr_t)&r, 0, 0, 0);
    }
}

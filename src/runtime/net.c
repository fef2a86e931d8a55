/* net.c - network: [net] rules on every socket a boxed program makes,
 * connects, binds, listens on or sends to.
 *
 * The choke point. Winsock (ws2_32) is a thin layer over the socket driver:
 * on Windows every socket is a handle to \Device\Afd, and every operation
 * an NtDeviceIoControlFile on it. Wine 8 keeps that shape: ws2_32 is a PE
 * DLL that opens \Device\Afd and sends the driver IOCTL_AFD_BIND,
 * IOCTL_AFD_LISTEN and Wine's own IOCTL_AFD_WINE_CREATE, _CONNECT
 * (connect, WSAConnect and ConnectEx alike), _SENDMSG (sendto, WSASendTo,
 * WSASendMsg) to ntdll, which passes them to wineserver or the Unix side.
 * So the one hook here, NtDeviceIoControlFile, sees every socket operation
 * of every path: Winsock's functions, a program that talks to the driver
 * itself, a socket handle duplicated or inherited from a parent (the
 * decision reads the operation, not state FVM made for the handle).
 *
 * What is decided (core/policy_net.c, with the program's [net] rules loaded
 * once at start):
 *   create   raw and ICMP sockets (refused unless a rule names raw/icmp),
 *            families other than IPv4/IPv6 (AF_UNIX among them: refused);
 *   connect  out, the remote address (TCP, and UDP's connect);
 *   send-to  out, for datagram and raw sockets given an address;
 *   bind     in, the local address, for datagram sockets and a fixed port;
 *   listen   in, the address the socket is bound to (asked of the driver);
 *   accept   accept, the peer's address and the server's port: a
 *            blocking accept here (a refused connection is closed and the
 *            call waits for the next); AcceptEx, and an accept completed by
 *            APC or completion port, as FVM's own request (net_async.c);
 *   resolve  getaddrinfo / GetAddrInfoW / GetAddrInfoExW / gethostbyname
 *            (ws2_32, a late group): a name the
 *            rules deny for every port fails as an unknown host; the
 *            addresses other names resolve to are remembered, so a rule on a
 *            name for some ports applies at connect and send-to.
 * In an isolated box (net_ports.c) every address the program reads names
 * box ports: getsockname, getpeername, a datagram's source (recvfrom here,
 * an overlapped receive in net_async.c), AcceptEx's addresses.
 * A refusal is STATUS_ACCESS_DENIED, which Winsock reports as WSAEACCES,
 * as for a socket operation a Windows firewall blocks. Audit records carry
 * the operation (op), and as the name the direction, protocol, address and
 * port in the rule syntax, the socket's own address and the resolved name
 * ("out:tcp:127.0.0.1:8080 from 127.0.0.1:50123 host vm"); the record's
 * pid, program and box come with every record.
 *
 * The buffers the program passed are copied before they are decided on and
 * the copies are what the real call gets, so another thread cannot change
 * an address between the decision and the call. */
#include "runtime/runtime.h"

#include <winioctl.h>

#include "core/policy_net.h"
#include "runtime/guard.h"
#include "runtime/net.h"

typedef NTSTATUS (NTAPI *NtDeviceIoControlFile_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, ULONG,
                                                   PVOID, ULONG, PVOID, ULONG);
static NtDeviceIoControlFile_fn real_NtDeviceIoControlFile;

/* The socket driver's codes as Wine 8 defines them (include/wine/afd.h). */
#define AFD_BIND        CTL_CODE(FILE_DEVICE_BEEP, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS)
#define AFD_LISTEN      CTL_CODE(FILE_DEVICE_BEEP, 0x802, METHOD_NEITHER, FILE_ANY_ACCESS)
#define AFD_GETSOCKNAME CTL_CODE(FILE_DEVICE_BEEP, 0x80b, METHOD_NEITHER, FILE_ANY_ACCESS)
#define AFD_WINE_CREATE   CTL_CODE(FILE_DEVICE_NETWORK, 200, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_ACCEPT   CTL_CODE(FILE_DEVICE_NETWORK, 201, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_ACCEPT_INTO CTL_CODE(FILE_DEVICE_NETWORK, 202, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_CONNECT  CTL_CODE(FILE_DEVICE_NETWORK, 203, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_RECVMSG  CTL_CODE(FILE_DEVICE_NETWORK, 205, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_GET_SO_REUSEADDR CTL_CODE(FILE_DEVICE_NETWORK, 233, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_SENDMSG  CTL_CODE(FILE_DEVICE_NETWORK, 206, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_GETPEERNAME CTL_CODE(FILE_DEVICE_NETWORK, 216, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define AFD_WINE_GET_INFO CTL_CODE(FILE_DEVICE_NETWORK, 218, METHOD_BUFFERED, FILE_ANY_ACCESS)

typedef struct afd_create { int family, type, protocol; unsigned flags; } afd_create;
typedef struct afd_info { int family, type, protocol; } afd_info;
typedef struct afd_connect { int addr_len; int synchronous; /* then the address, then data */ } afd_connect;
typedef struct afd_sendmsg {
    const void *addr;
    unsigned addr_len;
    unsigned ws_flags;
    int force_async;
    unsigned count;
    const void *buffers;
} afd_sendmsg;

/* Winsock's numbers (what the driver is given). */
enum { WS_AF_UNSPEC = 0, WS_AF_INET = 2, WS_AF_INET6 = 23 };
enum { WS_SOCK_STREAM = 1, WS_SOCK_DGRAM = 2, WS_SOCK_RAW = 3 };
enum { WS_IPPROTO_ICMP = 1, WS_IPPROTO_ICMPV6 = 58 };
#define SOCKADDR_MAX 128   /* SOCKADDR_STORAGE */

#define NET_RULES_MAX 128
static net_policy_rule g_rules[NET_RULES_MAX];
static size_t g_rule_count;
static BOOL g_accept_rules;   /* an accept: rule exists: accepts are looked at (else they cost nothing) */

extern const fvm_virtualizer net_virtualizer;

static BOOL net_start(void)
{
    net_async_start();
    netports_start();
    const policy_view *view = runtime_policy_view();
    if (!view)
        return TRUE;   /* no compiled policy: defaults only (raw sockets refused) */
    size_t bad = 0;
    size_t total = net_policy_load(view, runtime_policy_program(), runtime_policy_program_len(), g_rules,
                                   NET_RULES_MAX, &bad);
    if (total > NET_RULES_MAX || bad) {
        fvm_report("net: %s [net] rules for this program (the runtime holds %u)",
                   bad ? "unreadable" : "too many", (unsigned)NET_RULES_MAX);
        return FALSE;   /* never run with half the rules */
    }
    g_rule_count = total;
    for (size_t i = 0; i < total; i++)
        if (g_rules[i].rule.dir == NET_DIR_ACCEPT &&
            (g_rules[i].rule.proto == NET_PROTO_TCP || g_rules[i].rule.proto == NET_PROTO_ANY))
            g_accept_rules = TRUE;
    return TRUE;
}

/* ---- what a socket is ---- */

static net_proto proto_of(int type, int protocol)
{
    if (type == WS_SOCK_STREAM)
        return NET_PROTO_TCP;
    if (type == WS_SOCK_DGRAM)
        return NET_PROTO_UDP;
    if (type == WS_SOCK_RAW && (protocol == WS_IPPROTO_ICMP || protocol == WS_IPPROTO_ICMPV6))
        return NET_PROTO_ICMP;
    return NET_PROTO_RAW;   /* raw, and any other kind (seqpacket, rdm) */
}

/* The handle's protocol, kept per handle from its creation; a handle FVM
 * did not see made (inherited, duplicated, from a parent) is asked of the
 * driver once. 0: not a socket. */
#define NET_TAG_PROTO 1u
/* A socket that bound a port of the box's port space (net = isolated):
 * proto << 24 | family << 16 | the port the program bound. Closing the
 * handle gives the port back to the box. */
#define NET_TAG_PORT 2u
/* The completion port a socket handle is associated with (net_iocp), kept
 * so FVM can post the completion of an AcceptEx it finished itself. */
#define NET_TAG_IOCP 3u

typedef struct net_iocp { HANDLE port; ULONG_PTR key; } net_iocp;

void net_completion_port_set(HANDLE file, const void *info, ULONG length)
{
    net_iocp given;
    if (length < sizeof given || !guard_copy(&given, info, sizeof given))
        return;
    net_iocp *kept = HeapAlloc(GetProcessHeap(), 0, sizeof *kept);
    if (!kept)
        return;
    *kept = given;
    if (!handle_put(file, &net_virtualizer, NET_TAG_IOCP, kept))
        HeapFree(GetProcessHeap(), 0, kept);
}

static void copy_iocp(void *data, void *ctx)
{
    *(net_iocp *)ctx = *(net_iocp *)data;
}

static net_proto socket_proto(HANDLE handle)
{
    void *known = handle_find(handle, &net_virtualizer, NET_TAG_PROTO, NULL, NULL);
    if (known)
        return (net_proto)(ULONG_PTR)known;
    afd_info info;
    IO_STATUS_BLOCK io;
    memset(&info, 0, sizeof info);
    if (real_NtDeviceIoControlFile(handle, NULL, NULL, NULL, &io, AFD_WINE_GET_INFO, NULL, 0, &info, sizeof info) < 0)
        return NET_PROTO_ANY;
    net_proto proto = proto_of(info.type, info.protocol);
    handle_put(handle, &net_virtualizer, NET_TAG_PROTO, (void *)(ULONG_PTR)proto);
    return proto;
}

/* A Winsock address: IPv4 (16 bytes) or IPv6 (24 or 28). FALSE for any
 * other family or a short buffer. */
BOOL net_read_sockaddr(const uint8_t *sa, size_t len, net_addr *a, uint16_t *port)
{
    memset(a, 0, sizeof *a);
    if (len < 2)
        return FALSE;
    uint16_t family = (uint16_t)(sa[0] | sa[1] << 8);
    if (family == WS_AF_INET && len >= 16) {
        a->family = 4;
        memcpy(a->bytes, sa + 4, 4);
    } else if (family == WS_AF_INET6 && len >= 24) {
        a->family = 6;
        memcpy(a->bytes, sa + 8, 16);
        net_addr_normalize(a);
    } else {
        return FALSE;
    }
    *port = (uint16_t)(sa[2] << 8 | sa[3]);
    return TRUE;
}

/* ---- deciding ---- */

static size_t put_ascii(uint16_t *out, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        out[at++] = (uint8_t)*s++;
    return at;
}

/* The record's name in the rule syntax, "out:tcp:127.0.0.1:8080". */
static size_t query_text(const net_query *q, uint16_t *name, size_t cap)
{
    char addr[64];
    size_t n = put_ascii(name, 0, cap, q->dir == NET_DIR_IN ? "in:" : q->dir == NET_DIR_ACCEPT ? "accept:" : "out:");
    n = put_ascii(name, n, cap, net_proto_name(q->proto));
    n = put_ascii(name, n, cap, ":");
    net_addr_format(&q->addr, q->addr.family ? q->port : -1, addr, sizeof addr);
    return put_ascii(name, n, cap, addr);
}

/* The socket's own address as the program sees it (a real port of the
 * box's space reads as its box port); FALSE when it has none yet. */
static BOOL local_address(HANDLE sock, net_addr *a, uint16_t *port)
{
    uint8_t sa[SOCKADDR_MAX];
    IO_STATUS_BLOCK sio;
    if (!sock || real_NtDeviceIoControlFile(sock, NULL, NULL, NULL, &sio, AFD_GETSOCKNAME, NULL, 0, sa, sizeof sa) < 0 ||
        !net_read_sockaddr(sa, sio.Information, a, port))
        return FALSE;
    uint8_t proto = netports_active() ? netports_proto(socket_proto(sock)) : 0;
    uint16_t v = proto && *port ? portmap_virtual_of(netports_map(), proto, a->family, *port) : 0;
    if (v)
        *port = v;
    return TRUE;
}

/* Writes the audit record of a decision; sock (may be NULL): the socket
 * whose local address the record names after " from " ("*" when it has
 * none yet: a refused connect of a socket never bound); then " host NAME"
 * when the address was resolved from a name:
 * "out:tcp:10.1.2.3:443 from 10.0.0.5:50123 host www.example.com". */
static void record(const net_query *q, const char *op, const policy_decision *d, HANDLE sock, BOOL with_local)
{
    uint16_t name[128 + NET_NAME_MAX];
    size_t n = query_text(q, name, 128);
    if (with_local) {
        net_addr local;
        uint16_t port;
        char text[64] = "*";
        if (local_address(sock, &local, &port))
            net_addr_format(&local, port, text, sizeof text);
        n = put_ascii(name, n, 128, " from ");
        n = put_ascii(name, n, 128, text);
    }
    if (q->host_len) {   /* the name the program resolved the address from */
        n = put_ascii(name, n, 128 + NET_NAME_MAX, " host ");
        for (size_t i = 0; i < q->host_len && n < 128 + NET_NAME_MAX; i++)
            name[n++] = (uint8_t)q->host[i];
    }
    /* The target the broker decides again: what the policy decided on, and
     * the host name the address was resolved from, which name rules match
     * too. */
    uint16_t target[96 + 1 + NET_NAME_MAX];
    size_t t = query_text(q, target, 96);
    if (q->host && q->host_len && q->host_len <= NET_NAME_MAX) {
        target[t++] = '|';
        for (size_t i = 0; i < q->host_len; i++)
            target[t++] = (uint8_t)q->host[i];
    }
    runtime_audit_target(POLICY_TYPE_NET, op, d, name, n, target, t);
}

/* STATUS_SUCCESS, or STATUS_ACCESS_DENIED (audited when a rule asks, and
 * always for a default refusal). With later (connect, send-to): an allowed
 * operation to be audited is not recorded here but left in *later for the
 * caller to record after the real call, when the socket has its local
 * address (later->audit 0: nothing to record). */
static NTSTATUS decide_from(const net_query *q, const char *op, HANDLE sock, BOOL with_local, policy_decision *later)
{
    policy_decision d;
    if (later)
        later->audit = 0;
    net_policy_decide(runtime_policy_view(), g_rules, g_rule_count, q, &d);
    if (!d.audit && d.action != POLICY_ACTION_ASK) {
        if (d.action == POLICY_ACTION_DENY || d.action == POLICY_ACTION_HIDE)
            return STATUS_ACCESS_DENIED;
        return STATUS_SUCCESS;
    }
    if (d.action == POLICY_ACTION_ASK) {
        uint16_t name[96];
        size_t n = query_text(q, name, 96);
        d.action = runtime_policy_ask(POLICY_TYPE_NET, name, n, &d);
    }
    BOOL denied = d.action == POLICY_ACTION_DENY || d.action == POLICY_ACTION_HIDE;
    if (!denied && later) {
        *later = d;
        return STATUS_SUCCESS;
    }
    record(q, op, &d, sock, with_local);
    return denied ? STATUS_ACCESS_DENIED : STATUS_SUCCESS;
}

static NTSTATUS decide(const net_query *q, const char *op)
{
    return decide_from(q, op, NULL, FALSE, NULL);
}

static NTSTATUS refuse(PIO_STATUS_BLOCK io, NTSTATUS status)
{
    IO_STATUS_BLOCK done;
    done.Status = status;
    done.Information = 0;
    guard_copy(io, &done, sizeof done);   /* a bad block is the program's: it gets the status anyway */
    return status;
}

/* A socket being made: its family and kind. */
static NTSTATUS check_create(HANDLE handle, const void *in, ULONG in_length)
{
    afd_create create;
    if (in_length < sizeof create || !guard_copy(&create, in, sizeof create))
        return STATUS_SUCCESS;   /* the driver refuses it itself */
    net_query q;
    memset(&q, 0, sizeof q);
    q.dir = NET_DIR_OUT;
    q.proto = proto_of(create.type, create.protocol);
    if (create.family != WS_AF_INET && create.family != WS_AF_INET6 && create.family != WS_AF_UNSPEC) {
        /* AF_UNIX (a path on the host's file system), IPX, IrDA...: not
         * networks the rules can name. */
        policy_decision d;
        memset(&d, 0, sizeof d);
        d.action = POLICY_ACTION_DENY;
        d.audit = 1;
        d.is_default = 1;
        d.rule = POLICY_NO_RULE;
        d.file = "";
        uint16_t name[32];
        size_t n = put_ascii(name, 0, 32, "family:");
        char digits[12];
        int k = 0;
        unsigned v = (unsigned)create.family;
        do {
            digits[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (k)
            name[n++] = (uint8_t)digits[--k];
        runtime_audit(POLICY_TYPE_NET, "socket", &d, name, n);
        return STATUS_ACCESS_DENIED;
    }
    if (q.proto == NET_PROTO_RAW || q.proto == NET_PROTO_ICMP) {
        NTSTATUS status = decide(&q, "socket");
        if (status < 0)
            return status;
    }
    handle_put(handle, &net_virtualizer, NET_TAG_PROTO, (void *)(ULONG_PTR)q.proto);
    return STATUS_SUCCESS;
}

/* ---- the box's port space (net = isolated; net_ports.c) ---- */

static void put_port(uint8_t *sa, uint16_t port)
{
    sa[2] = (uint8_t)(port >> 8);
    sa[3] = (uint8_t)port;
}

/* A destination of 0.0.0.0 or :: is this machine's loopback on Linux (and
 * Wine passes it on): it is made the loopback address it stands for before
 * anything is decided, so it meets the rules on localhost and the box's
 * port space like 127.0.0.1 and ::1 (else it would step around both). */
static void unspecified_to_loopback(uint8_t *sa, net_query *q)
{
    static const uint8_t zero[16];
    if (!q->addr.family || memcmp(q->addr.bytes, zero, 16))
        return;
    uint16_t family = (uint16_t)(sa[0] | sa[1] << 8);
    if (family == WS_AF_INET) {
        sa[4] = 127, sa[7] = 1;
    } else if (q->addr.family == 4) {   /* ::ffff:0.0.0.0 */
        sa[8 + 12] = 127, sa[8 + 15] = 1;
    } else {
        sa[8 + 15] = 1;
    }
    if (q->addr.family == 4)
        q->addr.bytes[0] = 127, q->addr.bytes[3] = 1;
    else
        q->addr.bytes[15] = 1;
}

/* A connect or send-to to a loopback address goes to the box's own server
 * on that port, when the box has one (its real port), else unchanged. */
static void redirect_to_box(uint8_t *sa, const net_query *q)
{
    uint8_t proto = netports_proto(q->proto);
    if (!proto || !netports_local(&q->addr, FALSE))
        return;
    uint16_t real = portmap_real_of(netports_map(), proto, q->addr.family, q->port);
    if (real)
        put_port(sa, real);
}

/* getsockname / getpeername: a real port of the box's space reads as the
 * port the program bound (or connected to). */
static NTSTATUS name_query(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                           ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length)
{
    NTSTATUS status =
        real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    IO_STATUS_BLOCK done;
    if (status != STATUS_SUCCESS || !out || !guard_copy(&done, io, sizeof done))
        return status;
    uint8_t sa[SOCKADDR_MAX];
    size_t len = done.Information < out_length ? done.Information : out_length;
    if (len > sizeof sa)
        len = sizeof sa;
    net_addr a;
    uint16_t port;
    if (!guard_copy(sa, out, len) || !net_read_sockaddr(sa, len, &a, &port) || !port)
        return status;
    if (code == AFD_WINE_GETPEERNAME && !netports_local(&a, FALSE))
        return status;
    uint8_t proto = netports_proto(socket_proto(handle));
    uint16_t v = proto ? portmap_virtual_of(netports_map(), proto, a.family, port) : 0;
    if (v) {
        put_port(sa, v);
        guard_copy((uint8_t *)out + 2, sa + 2, 2);
    }
    return status;
}

/* A bind of a loopback or wildcard address with a fixed port in an
 * isolated box: the broker's consent first (the port may be the box's
 * already), then the real bind on the port it names (a published host
 * port, or the real port of the box's other sockets on the port when they
 * and this one have SO_REUSEADDR) or on any free one, then the real port
 * told to the broker. The program's output address gets the port it asked
 * for. */
static NTSTATUS bind_in_box(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                            uint8_t *copy, ULONG in_length, PVOID out, ULONG out_length, uint8_t proto,
                            uint8_t family, uint16_t vport)
{
    uint16_t bind_port;
    int reuse = 0;
    IO_STATUS_BLOCK rio;
    if (real_NtDeviceIoControlFile(handle, NULL, NULL, NULL, &rio, AFD_WINE_GET_SO_REUSEADDR, NULL, 0, &reuse,
                                   sizeof reuse) < 0)
        reuse = 0;
    NTSTATUS status = netports_claim(proto, family, vport, reuse != 0, &bind_port);
    if (status < 0)
        return refuse(io, status);
    put_port(copy + 4, bind_port);
    status = real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, AFD_BIND, copy, in_length, out,
                                        out_length);
    /* Wine 8 binds at once; a driver that pends is waited for, since the
     * real port is needed before the program goes on. */
    for (int waited = 0; status == STATUS_PENDING && waited < 5000; waited++) {
        IO_STATUS_BLOCK now;
        if (!guard_copy(&now, io, sizeof now))
            break;
        if (now.Status != STATUS_PENDING)
            status = now.Status;
        else
            Sleep(1);
    }
    if (status < 0 || status == STATUS_PENDING) {
        netports_release(proto, family, vport);
        return status;
    }
    uint8_t local[SOCKADDR_MAX];
    IO_STATUS_BLOCK sio;
    net_addr got;
    uint16_t real = 0;
    if (real_NtDeviceIoControlFile(handle, NULL, NULL, NULL, &sio, AFD_GETSOCKNAME, NULL, 0, local, sizeof local) < 0 ||
        !net_read_sockaddr(local, sio.Information, &got, &real))
        real = 0;
    NTSTATUS told = real ? netports_bound(proto, family, vport, real) : STATUS_ACCESS_DENIED;
    if (told < 0) {
        netports_release(proto, family, vport);
        return refuse(io, told);
    }
    handle_put(handle, &net_virtualizer, NET_TAG_PORT,
               (void *)(ULONG_PTR)((uint32_t)proto << 24 | (uint32_t)family << 16 | vport));
    if (out && out_length >= 4) {
        uint8_t be[2] = {(uint8_t)(vport >> 8), (uint8_t)vport};
        guard_copy((uint8_t *)out + 2, be, 2);
    }
    return status;
}

/* A connection a server accepts, decided on its peer's address and the
 * server's own port (the box port in an isolated box): accept (and
 * WSAAccept) send IOCTL_AFD_WINE_ACCEPT and, for a blocking socket, wait on
 * their event. A refused connection is closed at once and the call goes on
 * waiting for the next, so the program never sees it, as behind a
 * firewall; a non-blocking socket then answers "would block". An
 * overlapped accept (an APC or completion context) is passed on
 * undecided: its connection arrives after this call returns. */
/* A connection accept() returned (its new socket): STATUS_SUCCESS, or
 * STATUS_CONNECTION_REFUSED when accept: rules refuse its peer (audited as
 * they ask; the caller closes it). */
NTSTATUS net_accepted_socket(HANDLE conn)
{
    uint8_t sa[SOCKADDR_MAX];
    IO_STATUS_BLOCK sio;
    net_query q;
    net_addr local;
    uint16_t peer_port;
    memset(&q, 0, sizeof q);
    q.dir = NET_DIR_ACCEPT;
    q.proto = NET_PROTO_TCP;
    if (real_NtDeviceIoControlFile(conn, NULL, NULL, NULL, &sio, AFD_WINE_GETPEERNAME, NULL, 0, sa, sizeof sa) < 0 ||
        !net_read_sockaddr(sa, sio.Information, &q.addr, &peer_port) ||
        real_NtDeviceIoControlFile(conn, NULL, NULL, NULL, &sio, AFD_GETSOCKNAME, NULL, 0, sa, sizeof sa) < 0 ||
        !net_read_sockaddr(sa, sio.Information, &local, &q.port))
        return STATUS_SUCCESS;   /* a connection without addresses (reset already): nothing to decide on */
    uint16_t boxed = netports_active() ? portmap_virtual_of(netports_map(), PORTMAP_TCP, local.family, q.port) : 0;
    if (boxed)
        q.port = boxed;
    return decide_from(&q, "accept", conn, TRUE, NULL) >= 0 ? STATUS_SUCCESS : STATUS_CONNECTION_REFUSED;
}

static NTSTATUS accept_decided(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                               PIO_STATUS_BLOCK io, ULONG code, PVOID in, ULONG in_length, PVOID out,
                               ULONG out_length)
{
    /* Completed by an APC or a completion port, or waited for on the
     * handle: FVM's own request, decided when it completes (net_async.c). */
    if (apc || apc_context || !event)
        return net_accept_async(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    for (;;) {
        NTSTATUS status =
            real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
        if (status == STATUS_PENDING) {
            if (WaitForSingleObject(event, INFINITE) != WAIT_OBJECT_0)
                return status;
            IO_STATUS_BLOCK done;
            if (!guard_copy(&done, io, sizeof done))
                return status;
            status = done.Status;
        }
        uint32_t value = 0;
        if (status != STATUS_SUCCESS || !out || out_length < sizeof value || !guard_copy(&value, out, sizeof value))
            return status;
        HANDLE conn = (HANDLE)(ULONG_PTR)value;
        if (net_accepted_socket(conn) >= 0)
            return status;
        CloseHandle(conn);   /* refused: the peer sees the connection closed */
        ResetEvent(event);
    }
}

/* An address the program reads (a datagram's source, an accepted
 * connection's peer or local address): a real port of the box's space
 * reads as its box port, for a loopback peer (the box's own sockets) or
 * when local (the socket's own address). In place, in the program's
 * buffer. */
void net_address_as_box_sees(uint8_t *user_sa, size_t len, uint8_t proto, BOOL local)
{
    uint8_t sa[SOCKADDR_MAX];
    net_addr a;
    uint16_t port;
    if (!proto || !user_sa || len < 4)
        return;
    if (len > sizeof sa)
        len = sizeof sa;
    if (!guard_copy(sa, user_sa, len) || !net_read_sockaddr(sa, len, &a, &port) || !port ||
        (!local && !netports_local(&a, FALSE)))
        return;
    uint16_t v = portmap_virtual_of(netports_map(), proto, a.family, port);
    if (v) {
        put_port(sa, v);
        guard_copy(user_sa + 2, sa + 2, 2);
    }
}

/* recvfrom / WSARecvFrom / WSARecvMsg in an isolated box: the source of a
 * datagram from another socket of the box names its box port. A blocking
 * call's answer is waited for here (as ws2_32 would: alertably) so the
 * address can be read before the program sees it; an overlapped receive
 * is made FVM's own request and completed to the program after the address
 * is read (net_async.c). */
static NTSTATUS recvmsg_in_box(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                               PIO_STATUS_BLOCK io, ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length)
{
    afd_recvmsg params;
    if (in_length < sizeof params || !guard_copy(&params, in, sizeof params) || !params.addr || !params.addr_len)
        return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    if (params.force_async)   /* overlapped: completes after this call (net_async.c) */
        return net_recvmsg_async(handle, event, apc, apc_context, io, code, &params, sizeof params);
    NTSTATUS status = real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, &params, sizeof params, out,
                                                 out_length);
    if (status == STATUS_PENDING) {
        if (apc || apc_context || !event)
            return status;
        DWORD w;
        while ((w = WaitForSingleObjectEx(event, INFINITE, TRUE)) == WAIT_IO_COMPLETION)
            ;
        IO_STATUS_BLOCK done;
        if (w != WAIT_OBJECT_0 || !guard_copy(&done, io, sizeof done))
            return status;
        status = done.Status;
    }
    int len = 0;
    if (status >= 0 && guard_copy(&len, params.addr_len, sizeof len) && len > 0)
        net_address_as_box_sees(params.addr, (size_t)len, netports_proto(socket_proto(handle)), FALSE);
    return status;
}

/* A connection AcceptEx took (net_async.c): decided on its peer's address
 * and the server's box port, as accept() is; STATUS_SUCCESS or
 * STATUS_CONNECTION_REFUSED. The addresses in the buffer (GetAcceptExSockaddrs'
 * layout) are put in box ports. */
NTSTATUS net_accepted(HANDLE acceptor, uint8_t *local_sa, size_t local_len, uint8_t *remote_sa, size_t remote_len)
{
    if (g_accept_rules) {
        net_query q;
        net_addr local;
        uint16_t peer_port;
        memset(&q, 0, sizeof q);
        q.dir = NET_DIR_ACCEPT;
        q.proto = NET_PROTO_TCP;
        if (net_read_sockaddr(remote_sa, remote_len, &q.addr, &peer_port) &&
            net_read_sockaddr(local_sa, local_len, &local, &q.port)) {
            uint16_t boxed =
                netports_active() ? portmap_virtual_of(netports_map(), PORTMAP_TCP, local.family, q.port) : 0;
            if (boxed)
                q.port = boxed;
            if (decide_from(&q, "accept", acceptor, TRUE, NULL) < 0)
                return STATUS_CONNECTION_REFUSED;
        }
    }
    if (netports_active()) {
        net_address_as_box_sees(local_sa, local_len, PORTMAP_TCP, TRUE);
        net_address_as_box_sees(remote_sa, remote_len, PORTMAP_TCP, FALSE);
    }
    return STATUS_SUCCESS;
}

BOOL net_completion_port_of(HANDLE file, HANDLE *port, ULONG_PTR *key)
{
    net_iocp found = {0};
    if (!handle_find(file, &net_virtualizer, NET_TAG_IOCP, copy_iocp, &found) || !found.port)
        return FALSE;
    *port = found.port;
    *key = found.key;
    return TRUE;
}

NTSTATUS net_real_ioctl(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                        ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length)
{
    return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
}

uint8_t net_socket_portmap_proto(HANDLE handle)
{
    return netports_proto(socket_proto(handle));
}

static NTSTATUS NTAPI box_NtDeviceIoControlFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                                PIO_STATUS_BLOCK io, ULONG code, PVOID in, ULONG in_length, PVOID out,
                                                ULONG out_length)
{
    if (runtime_bypassed() ||
        (code != AFD_WINE_CREATE && code != AFD_WINE_CONNECT && code != AFD_WINE_SENDMSG && code != AFD_BIND &&
         code != AFD_LISTEN && !(code == AFD_WINE_ACCEPT && g_accept_rules) &&
         !(code == AFD_WINE_ACCEPT_INTO && (g_accept_rules || netports_active())) &&
         !(code == AFD_WINE_RECVMSG && netports_active()) &&
         !((code == AFD_GETSOCKNAME || code == AFD_WINE_GETPEERNAME) && netports_active())))
        return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);

    if (code == AFD_WINE_ACCEPT_INTO)
        return net_accept_into(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    if (code == AFD_WINE_RECVMSG)
        return recvmsg_in_box(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    if (code == AFD_WINE_ACCEPT)
        return accept_decided(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    if (code == AFD_GETSOCKNAME || code == AFD_WINE_GETPEERNAME)
        return name_query(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);

    if (code == AFD_WINE_CREATE) {
        NTSTATUS status = check_create(handle, in, in_length);
        if (status < 0)
            return refuse(io, status);
        return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    }

    net_query q;
    memset(&q, 0, sizeof q);
    if (code == AFD_LISTEN) {
        q.proto = socket_proto(handle);
        uint8_t local[SOCKADDR_MAX];
        IO_STATUS_BLOCK sio;
        if (q.proto != NET_PROTO_ANY &&
            real_NtDeviceIoControlFile(handle, NULL, NULL, NULL, &sio, AFD_GETSOCKNAME, NULL, 0, local, sizeof local) >= 0 &&
            net_read_sockaddr(local, sio.Information, &q.addr, &q.port)) {
            q.dir = NET_DIR_IN;
            /* Decided on the port the program bound, not its real one. */
            uint8_t proto = netports_active() ? netports_proto(q.proto) : 0;
            uint16_t bound = proto ? portmap_virtual_of(netports_map(), proto, q.addr.family, q.port) : 0;
            if (bound)
                q.port = bound;
            NTSTATUS status = decide(&q, "listen");
            if (status < 0)
                return refuse(io, status);
        }
        return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    }

    if (code == AFD_BIND) {
        /* {int; sockaddr}: a datagram socket's fixed port is where it
         * receives; a stream socket is decided when it listens. */
        uint8_t copy[4 + SOCKADDR_MAX];
        if (in_length < 4 + 2 || in_length > sizeof copy)
            return refuse(io, STATUS_INVALID_PARAMETER);   /* Winsock never sends more: nothing to decide on */
        if (!guard_copy(copy, in, in_length))
            return refuse(io, STATUS_ACCESS_VIOLATION);
        q.proto = socket_proto(handle);
        if (q.proto != NET_PROTO_ANY && q.proto != NET_PROTO_TCP &&
            net_read_sockaddr(copy + 4, in_length - 4, &q.addr, &q.port) &&
            q.port != 0) {
            q.dir = NET_DIR_IN;
            NTSTATUS status = decide(&q, "bind");
            if (status < 0)
                return refuse(io, status);
        }
        if (netports_active() && netports_proto(q.proto)) {
            net_addr local;
            uint16_t port;
            if (net_read_sockaddr(copy + 4, in_length - 4, &local, &port) && port && netports_local(&local, TRUE))
                return bind_in_box(handle, event, apc, apc_context, io, copy, in_length, out, out_length,
                                   netports_proto(q.proto), local.family, port);
        }
        return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, copy, in_length, out, out_length);
    }

    if (code == AFD_WINE_CONNECT) {
        /* {addr_len, synchronous}, the address, then ConnectEx's first data. */
        if (in_length < sizeof(afd_connect) || in_length > 0x7fffffff)
            return refuse(io, STATUS_INVALID_PARAMETER);
        uint8_t small[256];
        uint8_t *copy = in_length <= sizeof small ? small : HeapAlloc(GetProcessHeap(), 0, in_length);
        if (!copy)
            return refuse(io, STATUS_NO_MEMORY);
        NTSTATUS status = STATUS_SUCCESS;
        policy_decision later;
        later.audit = 0;
        afd_connect head;
        if (!guard_copy(copy, in, in_length)) {
            status = STATUS_ACCESS_VIOLATION;
        } else {
            memcpy(&head, copy, sizeof head);
            size_t addr_len = head.addr_len < 0 ? 0 : (size_t)head.addr_len;
            if (addr_len > in_length - sizeof head)
                addr_len = in_length - sizeof head;
            q.proto = socket_proto(handle);
            if (q.proto != NET_PROTO_ANY) {
                if (net_read_sockaddr(copy + sizeof head, addr_len, &q.addr, &q.port)) {
                    char host[NET_NAME_MAX + 1];
                    unspecified_to_loopback(copy + sizeof head, &q);
                    q.dir = NET_DIR_OUT;
                    q.host_len = g_rule_count ? net_resolved_name(&q.addr, host) : 0;
                    q.host = q.host_len ? host : NULL;
                    status = decide_from(&q, "connect", handle, TRUE, &later);
                    if (status >= 0 && netports_active())
                        redirect_to_box(copy + sizeof head, &q);
                } else if (!(addr_len >= 2 && copy[sizeof head] == WS_AF_UNSPEC && copy[sizeof head + 1] == 0)) {
                    status = STATUS_INVALID_PARAMETER;   /* an address no rule can judge never reaches the driver */
                }
            }
        }
        if (status >= 0) {
            status = real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, copy, in_length, out,
                                                out_length);
            if (later.audit)   /* the connect has begun: the socket has its local address */
                record(&q, "connect", &later, handle, TRUE);
        } else
            refuse(io, status);
        if (copy != small)
            HeapFree(GetProcessHeap(), 0, copy);
        return status;
    }

    /* AFD_WINE_SENDMSG: only an address given with the data is new. */
    afd_sendmsg params;
    if (in_length < sizeof params)
        return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, in, in_length, out, out_length);
    if (!guard_copy(&params, in, sizeof params))
        return refuse(io, STATUS_ACCESS_VIOLATION);
    if (!params.addr)
        return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, &params, sizeof params, out,
                                          out_length);
    uint8_t addr[SOCKADDR_MAX];
    if (params.addr_len > sizeof addr)
        return refuse(io, STATUS_INVALID_PARAMETER);
    if (!guard_copy(addr, params.addr, params.addr_len))
        return refuse(io, STATUS_ACCESS_VIOLATION);
    params.addr = addr;
    q.proto = socket_proto(handle);
    if (q.proto != NET_PROTO_ANY && q.proto != NET_PROTO_TCP) {
        if (!net_read_sockaddr(addr, params.addr_len, &q.addr, &q.port))
            return refuse(io, STATUS_INVALID_PARAMETER);
        unspecified_to_loopback(addr, &q);
        char host[NET_NAME_MAX + 1];
        q.host_len = g_rule_count ? net_resolved_name(&q.addr, host) : 0;
        q.host = q.host_len ? host : NULL;
        q.dir = NET_DIR_OUT;
        policy_decision later;
        NTSTATUS status = decide_from(&q, "sendto", handle, TRUE, &later);
        if (status < 0)
            return refuse(io, status);
        if (netports_active())
            redirect_to_box(addr, &q);
        status = real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, &params, sizeof params, out,
                                            out_length);
        if (later.audit)   /* sent: the socket has its local address */
            record(&q, "sendto", &later, handle, TRUE);
        return status;
    }
    return real_NtDeviceIoControlFile(handle, event, apc, apc_context, io, code, &params, sizeof params, out,
                                      out_length);
}

/* ---- names: net_resolve.c has the ws2_32 hooks; the rules are here ---- */

/* 1: resolving the name is denied (audited when asked). A name that is
 * an address literal, empty, too long or not ASCII is no name rule's. */
int net_name_denied(const char *name, size_t len)
{
    net_addr literal;
    if (!len || len > 200 || net_addr_parse(name, len, &literal))
        return 0;
    policy_decision d;
    net_policy_decide_name(runtime_policy_view(), g_rules, g_rule_count, name, len, &d);
    if (d.audit || d.action == POLICY_ACTION_ASK) {
        uint16_t text[6 + 200];
        size_t n = put_ascii(text, 0, 6, "name:");
        for (size_t i = 0; i < len; i++)
            text[n++] = (uint8_t)name[i];
        if (d.action == POLICY_ACTION_ASK)
            d.action = runtime_policy_ask(POLICY_TYPE_NET, text, n, &d);
        runtime_audit(POLICY_TYPE_NET, "resolve", &d, text, n);
    }
    return d.action == POLICY_ACTION_DENY || d.action == POLICY_ACTION_HIDE;
}

static late_hooks g_late[] = {
    {"ws2_32.dll", net_resolve_hooks, 0},
    {NULL, NULL, 0},
};

static void net_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtDeviceIoControlFile);
    net_async_hooks(table);
}

static void net_handle_closed(HANDLE handle, unsigned tag, void *data)
{
    (void)handle;   /* the state is a number, nothing to free */
    if (tag == NET_TAG_PORT) {
        uint32_t v = (uint32_t)(ULONG_PTR)data;
        netports_release((uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint16_t)v);
    } else if (tag == NET_TAG_IOCP) {
        HeapFree(GetProcessHeap(), 0, data);
    }
}

static void *net_handle_duplicated(HANDLE from, HANDLE to, unsigned tag, void *data)
{
    (void)from, (void)to;
    /* A copy is the same socket; the box port goes back when the handle
     * that bound it closes (or the process ends), not with each copy. */
    if (tag == NET_TAG_IOCP) {   /* the same file object: the same completion port */
        net_iocp *copy = HeapAlloc(GetProcessHeap(), 0, sizeof *copy);
        if (copy)
            *copy = *(net_iocp *)data;
        return copy;
    }
    return tag == NET_TAG_PORT ? NULL : data;
}

const fvm_virtualizer net_virtualizer = {
    .name = "network",
    .policy = POLICY_TYPE_NET,
    .start = net_start,
    .hooks = net_hooks,
    .late = g_late,
    .handle_closed = net_handle_closed,
    .handle_duplicated = net_handle_duplicated,
    .thread_detach = net_thread_detach,
};

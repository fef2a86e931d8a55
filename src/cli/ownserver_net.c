/* ownserver_net.c - the network of a box's own Wine server, below the
 * hooks: what the init's plan takes from the box's [net] rules (the TCP
 * ports Landlock refuses the server, an empty network namespace for a
 * policy that lets nothing leave, no UDP sockets for one that closes UDP)
 * and the supervisor that decides the server's connect() calls by address
 * when the policy denies addresses to every program (core/floor_supervise.h).
 * Wine's server makes Winsock's sockets and connections for the box's
 * programs, so what holds for the server holds for a program that gets
 * around the hooks. Split from ownserver.c, which calls these. */
#include "cli/cli.h"
#include "cli/ownserver.h"

#include <string.h>

#include "common/floor_domain.h"
#include "core/floor_supervise.h"
#include "core/policy_net.h"
#include "runtime/linux_syscall.h"

/* The kernel's ephemeral port range (net.ipv4.ip_local_port_range). */
static void ephemeral_ports(uint32_t *lo, uint32_t *hi)
{
    *lo = 32768;
    *hi = 60999;
    char text[64];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, "/proc/sys/net/ipv4/ip_local_port_range", L_O_RDONLY | L_O_CLOEXEC);
    int64_t n = fd >= 0 ? LSYS(LNR_read, fd, text, sizeof text - 1) : -1;
    if (fd >= 0)
        LSYS(LNR_close, fd, 0, 0);
    unsigned a, z;
    if (n > 0 && (text[n] = 0, sscanf(text, "%u %u", &a, &z) == 2) && a >= 1 && a <= z && z <= 65535) {
        *lo = a;
        *hi = z;
    }
}

/* The TCP ports the kernel refuses the box's server to connect to: the
 * policy's denies that hold for every program and host (core/policy_net.h;
 * Landlock's connect rules name ports only). Wine's server makes
 * Winsock's connections, so a program that gets around the hooks (its own
 * NtDeviceIoControlFile) meets them here. In an isolated box the kernel's
 * ephemeral range stays open: the box's servers really listen there (a
 * box port is remapped, core/portmap.h), and the hooks decide by the box
 * port. Bit p of denied; returns how many. */
size_t own_tcp_connect_denied(const box *b, uint8_t denied[8192])
{
    const loaded_policy *lp = own_box_policy(b);
    if (!lp->net_count)
        return 0;
    size_t n = net_policy_tcp_connect_denied(lp->net_rules, lp->net_count, denied);
    if (n && lp->isolated) {
        uint32_t lo, hi;
        ephemeral_ports(&lo, &hi);
        for (uint32_t port = lo; port <= hi; port++)
            if (denied[port / 8] & (1u << (port % 8))) {
                denied[port / 8] &= (uint8_t) ~(1u << (port % 8));
                n--;
            }
    }
    return n;
}

/* Whether the box's server runs in a network namespace of its own with no
 * network: its policy lets nothing leave (core/policy_net.h), and nothing
 * must come in either (an isolated box, no published port: a shared box's
 * servers are reached on the host's ports). Then Wine's server makes
 * Winsock's sockets where no packet goes, raw sockets and the programs'
 * own DNS lookups too (UDP, which Landlock cannot hold). */
BOOL own_box_offline(const box *b)
{
    const loaded_policy *lp = own_box_policy(b);
    static uint8_t scratch[8192];
    return lp->net_count && lp->isolated && !lp->published &&
           net_policy_offline(lp->net_rules, lp->net_count, scratch);
}

/* Whether the box's server is refused IPv4 and IPv6 datagram sockets: its
 * policy lets no program use UDP (core/policy_net.h). Wine's server makes
 * Winsock's sockets, in the host's network for a box that is not offline,
 * so a program that gets around the hooks (its own NtDeviceIoControlFile)
 * would otherwise send UDP the policy denies. A policy that denies UDP only
 * to some hosts, ports or programs is the hooks' alone (design.md). */
BOOL own_box_udp_closed(const box *b)
{
    const loaded_policy *lp = own_box_policy(b);
    static uint8_t scratch[8192];
    return lp->net_count && net_policy_udp_closed(lp->net_rules, lp->net_count, scratch);
}

/* Whether the box's server's connect() calls are decided one by one by its
 * parent (supervise_connects): the policy denies some address, CIDR or
 * localhost, or some UDP, to every program. */
BOOL own_box_connects_checked(const box *b)
{
    const loaded_policy *lp = own_box_policy(b);
    return lp->net_count && net_policy_connect_checks_needed(lp->net_rules, lp->net_count, own_box_udp_closed(b));
}

int own_server_network_cut(const box *b)
{
    if (fvm_box_own_server(b->path))   /* the init's namespace, or each run's (runner_main) */
        return own_box_offline(b) ? 2 : 3;
    /* A box on the host's server: its programs are in an empty network
     * namespace of their own in any case (runtime/floor_ns.c, which loads
     * up to 256 rules); 3 when the policy lets some traffic out, so their
     * host names are resolved outside the box. */
    const loaded_policy *lp = own_box_policy(b);
    static uint8_t scratch[8192];
    return lp->net_count && lp->net_count <= 256 && net_policy_offline(lp->net_rules, lp->net_count, scratch) ? 1 : 3;
}

BOOL own_server_udp_closed(const box *b)
{
    return fvm_box_own_server(b->path) && own_box_udp_closed(b);
}

BOOL own_server_connects_checked(const box *b)
{
    return fvm_box_own_server(b->path) && own_box_connects_checked(b);
}

long own_server_tcp_denied(const box *b, uint8_t denied[8192])
{
    if (!fvm_box_own_server(b->path))
        return -1;
    memset(denied, 0, 8192);
    return (long)own_tcp_connect_denied(b, denied);
}

static int64_t raw_call(int64_t nr, int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f)
{
    return linux_syscall6(nr, a, b, c, d, e, f);
}

/* A connect() of the box's server (core/floor_supervise.h): refused with
 * EACCES, as Landlock refuses one, when the policy denies the address to
 * every program (net_policy_connect_held); a socket of unknown type is
 * refused if either protocol is. */
static int server_connect_decision(void *ctx, const floor_connect *c)
{
    const server_plan *p = ctx;
    if (c->port >= p->open_lo && c->port <= p->open_hi)
        return 0;
    BOOL held = c->proto == NET_PROTO_ANY
                    ? net_policy_connect_held(p->connect_rules, p->connect_count, NET_PROTO_TCP, &c->addr, c->port) ||
                          net_policy_connect_held(p->connect_rules, p->connect_count, NET_PROTO_UDP, &c->addr, c->port)
                    : net_policy_connect_held(p->connect_rules, p->connect_count, c->proto, &c->addr, c->port);
    return held ? 13 /* EACCES */ : 0;
}

/* In the server's child before exec, for a policy that denies addresses:
 * the filter that hands its connect() calls over, and a fork: the child
 * goes on to exec the server, this process answers its calls until it
 * ends and then ends with its status (so the runner's wait sees the
 * server's end as before). */
void own_supervise_connects(server_plan *p)
{
    int64_t listener = floor_domain_seccomp_notify_connects();
    if (listener < 0) {
        own_server_say(2, "cannot install the filter that decides the box's Wine server connections", NULL);
        LSYS(LNR_exit, 126, 0, 0);
    }
    int64_t server = LSYS(LNR_clone, 17 /* SIGCHLD */, 0, 0);
    if (server == 0) {
        LSYS(LNR_close, listener, 0, 0);
        return;
    }
    if (server < 0)
        LSYS(LNR_exit, 126, 0, 0);
    int status = floor_supervise_connects(raw_call, listener, server, server_connect_decision, p);
    LSYS(LNR_exit, status < 0 ? 126 : (status & 0x7f) ? 128 + (status & 0x7f) : (status >> 8) & 0xff, 0, 0);
}

void own_plan_network(const box *b, server_plan *p)
{
    const loaded_policy *lp = own_box_policy(b);
    p->no_datagrams = own_box_udp_closed(b);
    p->check_connects = own_box_connects_checked(b);
    p->connect_rules = lp->net_rules;
    p->connect_count = lp->net_count;
    p->open_lo = 1;
    p->open_hi = 0;
    if (lp->isolated)
        ephemeral_ports(&p->open_lo, &p->open_hi);
}

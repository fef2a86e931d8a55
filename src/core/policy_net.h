/* policy_net.h - decisions on socket operations from a compiled policy's
 * [net] rules (core/netrules.h has the pattern syntax).
 *
 * The blob keeps each [net] pattern as written; a process loads the rules
 * that apply to its program once (net_policy_load) into an array it owns,
 * and decides each operation with net_policy_decide: among the matching
 * rules, a program scope beats a group beats everyone, then the more
 * specific pattern (net_rule_compare), then the stricter action, then the
 * later rule. No rule: the operation is allowed, except raw and ICMP
 * sockets, which are refused (and always audited).
 * CRT-free, no allocation: fvm.dll links it. */
#ifndef FVM_CORE_POLICY_NET_H
#define FVM_CORE_POLICY_NET_H

#include "core/netrules.h"
#include "core/policy.h"

typedef struct net_policy_rule {
    net_rule rule;
    uint32_t index;              /* in the blob */
    uint8_t scope;               /* policy_scope_kind */
    uint8_t action;              /* policy_action */
} net_policy_rule;

/* The [net] rules whose scope includes the program, up to cap of them;
 * returns how many there are in all (more than cap: the caller's array was
 * too small and must not be used to decide). A rule the blob holds but
 * netrules cannot parse (a blob not made by this parser) is skipped and
 * counted in *bad (may be NULL). */
size_t net_policy_load(const policy_view *view, const uint16_t *program, size_t program_len, net_policy_rule *out,
                       size_t cap, size_t *bad);

/* The decision for one operation (the winning rule's, or the default). */
void net_policy_decide(const policy_view *view, const net_policy_rule *rules, size_t count, const net_query *q,
                       policy_decision *out);

/* The decision for resolving a host name (ASCII, any case): among the rules
 * on host names that match it, for every port and the out direction, the
 * winner as above; none: allowed. Rules on a name for some ports only are
 * decided at connect, on the addresses the name resolved to. */
void net_policy_decide_name(const policy_view *view, const net_policy_rule *rules, size_t count, const char *name,
                            size_t len, policy_decision *out);

/* Every [net] rule of the policy, whatever its scope (for what holds for
 * all of a box's programs at once: net_policy_tcp_connect_denied), as
 * net_policy_load counts and fills. */
size_t net_policy_load_every(const policy_view *view, net_policy_rule *out, size_t cap, size_t *bad);

/* The TCP ports no program of the box may connect to, whatever the host:
 * what the kernel's floor can mirror, Landlock's connect rules naming a
 * port and nothing else. A port is in when a rule for every program
 * denies (or hides) outgoing TCP to any host on it and every rule that
 * could allow it for some program or host (open, cow, read, ask, on
 * outgoing TCP, any scope and host) loses to that rule; never stricter
 * than the policy, so an allowed connection is never refused below it.
 * rules: net_policy_load_every's. Sets bit p (denied[p / 8] & 1 << p % 8)
 * for each such port 1-65535, clears the rest; returns how many. */
size_t net_policy_tcp_connect_denied(const net_policy_rule *rules, size_t count, uint8_t denied[8192]);

/* Whether an outgoing connection of proto (NET_PROTO_TCP or UDP) to addr
 * and port is denied to every program, by a rule for every program that
 * names the address (an address, a CIDR, localhost, or any host) and wins
 * over every rule that could allow it for some program or through some
 * host name (a name rule may match any address: the kernel's floor does
 * not see names). What the box's Wine server may be refused below the
 * hooks, which Landlock cannot do by address; never stricter than the
 * policy. rules: net_policy_load_every's. */
int net_policy_connect_held(const net_policy_rule *rules, size_t count, uint8_t proto, const net_addr *addr,
                            uint16_t port);

/* Whether the connections the box's server makes are worth deciding one
 * by one (net_policy_connect_held): some rule for every program denies
 * outgoing TCP to an address, a CIDR or localhost, or outgoing UDP (to
 * any host: Landlock has no UDP rule; a datagram a program sends without
 * connecting is still the hooks' alone) unless udp_refused (the server
 * gets no datagram socket at all: net_policy_udp_closed). TCP denies for
 * any host are Landlock's (net_policy_tcp_connect_denied). */
int net_policy_connect_checks_needed(const net_policy_rule *rules, size_t count, int udp_refused);

/* Whether the policy lets no program send anything to any host: every TCP
 * and UDP port denied outgoing (as net_policy_tcp_connect_denied decides
 * it), no rule allowing raw or ICMP sockets, no publish: rule. Such a box
 * may run in a network namespace of its own with no network at all, which
 * the kernel holds for raw sockets and the program's own DNS lookups too.
 * scratch: 8192 bytes of the caller's. */
int net_policy_offline(const net_policy_rule *rules, size_t count, uint8_t scratch[8192]);

/* Whether the policy lets no program use UDP at all: every port denied
 * outgoing and for binds (port 0 too), to and on any host, for every
 * program, as net_policy_tcp_connect_denied decides a port; no rule
 * allowing raw or ICMP sockets (ICMP echo is a datagram socket); no
 * publish:udp: rule. Then the box's Wine server, which makes Winsock's
 * sockets, may be refused IPv4 and IPv6 datagram sockets by the kernel
 * (core/floor_rules.h), which holds a program that gets around the hooks.
 * scratch: 8192 bytes of the caller's. */
int net_policy_udp_closed(const net_policy_rule *rules, size_t count, uint8_t scratch[8192]);

/* The publish: rules of a compiled policy (core/netrules.h): box ports
 * host clients reach. Only open rules for every program count (the parser
 * refuses others). Up to cap written; returns how many there are. */
typedef struct net_publish {
    uint8_t proto;        /* NET_PROTO_TCP / NET_PROTO_UDP */
    uint16_t host, box;   /* host port, box port */
    uint32_t index;       /* the rule, in the blob */
} net_publish;
size_t net_policy_published(const policy_view *view, net_publish *out, size_t cap);

#endif

/* netrules.h - the [net] section: what a network rule names, and whether a
 * socket operation matches it.
 *
 * A [net] pattern is
 *     [in: | out:] PROTO : HOST [: PORTS]      or "*" (any tcp/udp anywhere)
 *   PROTO  tcp | udp | raw | icmp | *   ("*" is tcp and udp only: raw and
 *          ICMP sockets are never allowed by a wildcard, only by a rule that
 *          names raw or icmp; "raw" covers icmp too)
 *   HOST   *                       any address
 *          localhost               127.0.0.0/8, ::1 and the name "localhost"
 *          10.1.2.3, 10.0.0.0/8    IPv4, CIDR
 *          [::1], [fe80::]/10      IPv6 (always in brackets), CIDR
 *          www.example.com         a host name; '*' and '?' wildcards
 *                                  ("*.example.com"); matches an address the
 *                                  program resolved from a matching name
 *   PORTS  * | 443 | 8000-8999     (absent: any port)
 * The direction is out (connect, send-to), in (bind, listen: the local
 * address) or accept (a connection a server accepts: HOST is the peer's
 * address, PORTS the server's own port); a pattern without one matches
 * out and in (accepts are decided by accept: rules only).
 *
 * One more form publishes a port of an isolated box to the host (as
 * `docker run -p` does; the box setting `publish =` does the same):
 *     publish: [tcp: | udp:] HOSTPORT : BOXPORT      ("open publish:18080:8080")
 * ports 1-65535, tcp when no protocol is named. It decides nothing (it
 * matches no operation); the box's broker reads such rules, which must be
 * `open` rules for every program (policy_parse.c says so with the column).
 * IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d) are matched as the IPv4 address they carry, in rules and
 * in queries, so a program cannot step around an IPv4 rule with them.
 *
 * Precedence among matching rules of the same program scope: the more
 * specific host (an address or literal name > a CIDR or wildcard name, the
 * longer prefix / more literal characters first > localhost > any), then the
 * narrower port range, then a named protocol, then a named direction; the
 * caller breaks remaining ties (stricter action, later rule).
 *
 * CRT-free (memcpy/memset only), no allocation: fvm.dll links it. */
#ifndef FVM_CORE_NETRULES_H
#define FVM_CORE_NETRULES_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define NET_NAME_MAX 253u   /* a DNS name's longest text form */

typedef enum net_proto {
    NET_PROTO_ANY = 0,   /* in a rule: tcp or udp */
    NET_PROTO_TCP,
    NET_PROTO_UDP,
    NET_PROTO_RAW,       /* in a rule: raw and icmp */
    NET_PROTO_ICMP
} net_proto;

typedef enum net_dir {
    NET_DIR_ANY = 0,     /* in a rule: both */
    NET_DIR_OUT,         /* connect, send-to: the remote address */
    NET_DIR_IN,          /* bind, listen: the local address */
    NET_DIR_ACCEPT,      /* accept: the peer's address, the local port */
    NET_DIR_PUBLISH      /* publish: not a decision: a box port host clients reach (below) */
} net_dir;

typedef enum net_host_kind {
    NET_HOST_ANY = 0,
    NET_HOST_LOCALHOST,
    NET_HOST_ADDR,       /* addr/prefix */
    NET_HOST_NAME        /* name, a glob */
} net_host_kind;

/* An address: family 4 (bytes[0..3]) or 6 (bytes[0..15]); 0 for none. */
typedef struct net_addr {
    uint8_t family;
    uint8_t bytes[16];
} net_addr;

typedef struct net_rule {
    uint8_t dir;         /* net_dir */
    uint8_t proto;       /* net_proto */
    uint8_t host_kind;   /* net_host_kind */
    uint8_t prefix;      /* NET_HOST_ADDR: bits that count */
    net_addr addr;
    uint16_t port_lo, port_hi;
    uint16_t name_len;
    char name[NET_NAME_MAX + 1];   /* NET_HOST_NAME: lower case, NUL-terminated */
    uint16_t publish_host, publish_box;   /* NET_DIR_PUBLISH: host port, box port */
} net_rule;

/* Parses a pattern (UTF-16, as the policy holds it). On failure
 * FVM_E_INVALID with a message, and *bad_at (may be NULL) the offset of
 * the unit where the problem is. */
fvm_status net_rule_parse(const uint16_t *text, size_t n, net_rule *out, size_t *bad_at, fvm_error *err);

/* One operation a boxed program attempts. */
typedef struct net_query {
    net_dir dir;
    net_proto proto;     /* never ANY */
    net_addr addr;       /* remote (out) or local (in); family 0 for none (a socket being made) */
    uint16_t port;
    const char *host;    /* the name the address was resolved from, or NULL */
    size_t host_len;
} net_query;

int net_rule_matches(const net_rule *rule, const net_query *q);

/* Is the pattern (as the policy holds it) of the publish: form? */
int net_rule_is_publish(const uint16_t *text, size_t n);

/* > 0 when a is more specific than b, < 0 when b is, 0 when they tie. */
int net_rule_compare(const net_rule *a, const net_rule *b);

/* Parses an address as a rule writes it ("10.1.2.3", "[::1]", or "::1"
 * without brackets); returns 1 on success. Mapped IPv4 becomes IPv4. */
int net_addr_parse(const char *text, size_t n, net_addr *out);
/* Makes an IPv4-mapped IPv6 address (::ffff:a.b.c.d) the IPv4 address. */
void net_addr_normalize(net_addr *a);
/* "10.1.2.3:80", "[::1]:80" (port < 0: without the port). NUL-terminated,
 * cut to cap; returns the length written. */
size_t net_addr_format(const net_addr *a, int port, char *out, size_t cap);
const char *net_proto_name(net_proto proto);   /* "tcp", "udp", "raw", "icmp", "*" */

/* Is a glob over host names ('*', '?', case-insensitive) matching name? */
int net_name_glob(const char *pattern, size_t plen, const char *name, size_t nlen);

#endif

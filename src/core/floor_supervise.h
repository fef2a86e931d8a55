/* floor_supervise.h - the supervisor of a box's Wine server's connections.
 *
 * Wine's server makes Winsock's connections for the box's programs (Wine 8,
 * server/sock.c), so a program that gets around the hooks has them made
 * where the server can reach. Landlock's TCP rules name ports only and it
 * has no UDP rule; a seccomp filter cannot read a connect()'s address. So
 * when the policy denies addresses to every program, the server runs under
 * floor_seccomp_notify_connect (core/floor_rules.h), which hands each
 * connect() to this loop, in the server's parent: it reads the address from
 * the server's memory, asks the caller's decision and answers "go on" or an
 * errno. The server is Wine's own code, not the box's, so the address it
 * passes does not change between the check and the call.
 *
 * System calls go through a function the caller gives (fvm.exe's raw
 * Linux calls; syscall(2) in the unit tests), so the same loop is tested
 * natively against the real kernel. No allocation, no C runtime but
 * memset/memcpy: it runs in a forked copy of a Wine process. */
#ifndef FVM_CORE_FLOOR_SUPERVISE_H
#define FVM_CORE_FLOOR_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>

#include "core/netrules.h"

typedef int64_t (*floor_syscall_fn)(int64_t nr, int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f);

/* One connect() the supervised process makes. */
typedef struct floor_connect {
    net_addr addr;       /* IPv4-mapped IPv6 made IPv4 */
    uint16_t port;
    uint8_t proto;       /* NET_PROTO_TCP or NET_PROTO_UDP; NET_PROTO_ANY if the socket's type is unknown */
} floor_connect;

/* 0 lets the call go on; otherwise the errno it fails with. */
typedef int (*floor_connect_decide_fn)(void *ctx, const floor_connect *c);

/* The address of a struct sockaddr of len bytes: 1 for AF_INET and
 * AF_INET6 (filled), 0 for any other family, -1 if too short. */
int floor_sockaddr_parse(const uint8_t *sa, size_t len, net_addr *addr, uint16_t *port);

/* Answers the notifications of listener (SECCOMP_FILTER_FLAG_NEW_LISTENER)
 * until the process child has ended; returns its wait status, -1 if it
 * could not be waited for. A connect() whose address cannot be read is
 * refused (EACCES); one of another family goes on. */
int floor_supervise_connects(floor_syscall_fn sys, int64_t listener, int64_t child, floor_connect_decide_fn decide,
                             void *ctx);

#endif

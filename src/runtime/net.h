/* net.h - between net.c (the socket-driver hook, [net] rules) and
 * net_ports.c (the box's loopback port space, net = isolated). */
#ifndef FVM_RUNTIME_NET_H
#define FVM_RUNTIME_NET_H

#include "runtime/runtime.h"

#include "core/netrules.h"
#include "core/portmap.h"

/* Maps the broker's port map if the box has one (net = isolated). */
BOOL netports_start(void);
BOOL netports_active(void);
const portmap *netports_map(void);
/* PORTMAP_TCP / PORTMAP_UDP, or 0 for a protocol without ports. */
uint8_t netports_proto(net_proto proto);
/* A loopback address (127.0.0.0/8, ::1); with wildcard_too also 0.0.0.0
 * and :: (a bind there is in the box's port space too). */
BOOL netports_local(const net_addr *a, BOOL wildcard_too);
/* Before a bind of vport: the broker's consent and the real port to bind
 * (0: any). STATUS_SHARING_VIOLATION (WSAEADDRINUSE, as the driver says) when the box has the port,
 * unless shared (the socket has SO_REUSEADDR) and every socket that has it
 * does too: then the real port they share. */
NTSTATUS netports_claim(uint8_t proto, uint8_t family, uint16_t vport, BOOL shared, uint16_t *bind_port);
/* After the bind: the real port it got. */
NTSTATUS netports_bound(uint8_t proto, uint8_t family, uint16_t vport, uint16_t real);
/* The socket is closed (or its bind failed): the port is free in the box. */
void netports_release(uint8_t proto, uint8_t family, uint16_t vport);

/* net.c: the program associated a file handle with a completion port
 * (NtSetInformationFile FileCompletionInformation, told by file.c after
 * the real call succeeded): kept for the AcceptEx requests FVM completes. */
void net_completion_port_set(HANDLE file, const void *info, ULONG length);

#endif

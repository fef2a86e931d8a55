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

/* ---- between net.c and net_async.c (requests FVM completes itself) ---- */

/* AcceptEx: the listener gets this; the new connection goes into the
 * socket accept_handle names, and the output buffer is [recv_len bytes of
 * first data][local_len: int length, local address][the rest: int length,
 * remote address] (what GetAcceptExSockaddrs reads). */
typedef struct afd_accept_into { uint32_t accept_handle, recv_len, local_len; } afd_accept_into;
/* recvfrom, WSARecvFrom, WSARecvMsg: the driver writes the source address
 * to addr (and its length to addr_len) when the datagram arrives. */
typedef struct afd_recvmsg {
    void *control;
    uint8_t *addr;
    int *addr_len;
    unsigned *ws_flags;
    int force_async;   /* 0: a blocking call (recvfrom, WSARecvFrom without OVERLAPPED) */
    unsigned count;
    void *buffers;
} afd_recvmsg;

/* net.c */
NTSTATUS net_real_ioctl(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                        ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length);
NTSTATUS net_accepted_socket(HANDLE conn);
NTSTATUS net_accepted(HANDLE acceptor, uint8_t *local_sa, size_t local_len, uint8_t *remote_sa, size_t remote_len);
void net_address_as_box_sees(uint8_t *user_sa, size_t len, uint8_t proto, BOOL local);
uint8_t net_socket_portmap_proto(HANDLE handle);
BOOL net_completion_port_of(HANDLE file, HANDLE *port, ULONG_PTR *key);
/* NtCancelIoFileEx itself (net_async.c hooks it). */
NTSTATUS net_real_cancel_ex(HANDLE handle, PIO_STATUS_BLOCK io, PIO_STATUS_BLOCK status_out);

/* A Winsock address: IPv4 (16 bytes) or IPv6 (24 or 28). FALSE for any
 * other family or a short buffer. */
BOOL net_read_sockaddr(const uint8_t *sa, size_t len, net_addr *a, uint16_t *port);
/* 1: the program's [net] rules deny (or hide) resolving this name
 * (audited, or asked, as a rule says). */
int net_name_denied(const char *name, size_t len);
/* The thread ends: what net_resolve.c kept for it goes. */
void net_thread_detach(fvm_thread *t);

/* net_resolve.c: the ws2_32 name hooks (a late group), and the name an
 * address was last resolved from (0: none), for rules on names. */
void net_resolve_hooks(hook_table *table);
size_t net_resolved_name(const net_addr *addr, char name[NET_NAME_MAX + 1]);

/* net_async.c */
void net_async_start(void);
void net_async_hooks(hook_table *table);
NTSTATUS net_accept_into(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                         ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length);
NTSTATUS net_accept_async(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                          ULONG code, PVOID in, ULONG in_length, PVOID out, ULONG out_length);
NTSTATUS net_recvmsg_async(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context, PIO_STATUS_BLOCK io,
                           ULONG code, const afd_recvmsg *params, ULONG in_length);

/* net.c: the program associated a file handle with a completion port
 * (NtSetInformationFile FileCompletionInformation, told by file.c after
 * the real call succeeded): kept for the AcceptEx requests FVM completes. */
void net_completion_port_set(HANDLE file, const void *info, ULONG length);

#endif

/* net_ports.c - the box's loopback port space, on the process's side
 * (net = isolated; the map and its idea: core/portmap.h, its owner:
 * broker/net.c). net.c calls in here from its socket-driver hook.
 *
 * Lookups (connect, send-to, getsockname, getpeername, listen's decision)
 * read the broker's map, mapped read-only at start (shared.c): no message, so a
 * connect costs a scan of a few entries. Changes (a bind to claim a port,
 * the real port it got, a close to give it back) are requests to the
 * broker (runtime_broker_call, broker_pipe.c); the broker answers each. When the map is absent the box's net is shared and
 * nothing here runs. */
#include "runtime/net.h"

#include "common/boxshare.h"
#include "common/brokerproto.h"

static const portmap *g_map;

BOOL netports_start(void)
{
    g_map = runtime_shared()->ports;   /* shared.c: the broker's published section */
    if (g_map && g_map->magic != PORTMAP_MAGIC)
        g_map = NULL;
    return TRUE;   /* no map: a shared box (or no broker): ports are the host's */
}

BOOL netports_active(void)
{
    return g_map != NULL;
}

const portmap *netports_map(void)
{
    return g_map;
}

uint8_t netports_proto(net_proto proto)
{
    return proto == NET_PROTO_TCP ? PORTMAP_TCP : proto == NET_PROTO_UDP ? PORTMAP_UDP : 0;
}

BOOL netports_local(const net_addr *a, BOOL wildcard_too)
{
    static const uint8_t zero[16], loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (a->family == 4)
        return a->bytes[0] == 127 || (wildcard_too && !memcmp(a->bytes, zero, 4));
    if (a->family == 6)
        return !memcmp(a->bytes, loop6, 16) || (wildcard_too && !memcmp(a->bytes, zero, 16));
    return FALSE;
}

/* One request and its answer; FALSE when the broker cannot be reached. */
static BOOL ask(uint32_t op, uint8_t proto, uint8_t family, uint16_t vport, uint16_t real, uint16_t flags,
                portmap_reply *reply)
{
    portmap_request r = {op, proto, family, vport, real, flags};
    uint8_t msg[PORTMAP_REQUEST_SIZE];
    portmap_request_encode(&r, msg, sizeof msg);
    DWORD got = 0;
    return runtime_broker_call(msg, sizeof msg, reply, sizeof *reply, &got) && got == sizeof *reply;
}

NTSTATUS netports_claim(uint8_t proto, uint8_t family, uint16_t vport, BOOL shared, uint16_t *bind_port)
{
    portmap_reply reply;
    *bind_port = 0;
    if (!ask(PORTMAP_OP_CLAIM, proto, family, vport, 0, shared ? PORTMAP_SHARED : 0, &reply))
        return STATUS_ACCESS_DENIED;   /* no broker: never a port outside the box's space */
    if (reply.status == PORTMAP_IN_USE)
        return STATUS_SHARING_VIOLATION;   /* what the driver answers for a port in use: WSAEADDRINUSE */
    if (reply.status != PORTMAP_OK)
        return reply.status == PORTMAP_FULL ? STATUS_TOO_MANY_ADDRESSES : STATUS_ACCESS_DENIED;
    *bind_port = reply.real;
    return STATUS_SUCCESS;
}

NTSTATUS netports_bound(uint8_t proto, uint8_t family, uint16_t vport, uint16_t real)
{
    portmap_reply reply;
    if (!ask(PORTMAP_OP_BOUND, proto, family, vport, real, 0, &reply))
        return STATUS_ACCESS_DENIED;
    return reply.status == PORTMAP_OK ? STATUS_SUCCESS
           : reply.status == PORTMAP_IN_USE ? STATUS_SHARING_VIOLATION
                                            : STATUS_ACCESS_DENIED;
}

void netports_release(uint8_t proto, uint8_t family, uint16_t vport)
{
    portmap_reply reply;
    ask(PORTMAP_OP_RELEASE, proto, family, vport, 0, 0, &reply);
}

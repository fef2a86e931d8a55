/* net.c - the box's loopback port space, on the broker's side (issue 11).
 *
 * A box with `net = isolated` in box.ini (the default for boxes made by
 * fvm create) has a port map (core/portmap.h): for each loopback or
 * wildcard port a boxed server bound, the real host port it got. The
 * broker owns it: it lives in the section the broker publishes
 * (publish.c, FVM_OBJ_SHARED), the only writable view is the broker's, and
 * the box's processes map it read-only to look ports
 * up on every connect. A process changes the map only by asking here
 * (claim a port before it binds, say which real port it got, give it
 * back when it closes the socket); the broker takes the process from the
 * pipe and asks the box's job whether it is a member, so a process can
 * change only its own box's map, and only its own entries. A process that
 * ends loses its entries (main.c tells us), and a claim on a port whose
 * owner ended succeeds.
 *
 * Published ports (box.ini `publish = 18080:8080,...`) are read again on
 * every claim, so a change applies to the next bind without a restart:
 * the reply to a claim then names the host port to bind, and host clients
 * reach the box's server there. A box without `net`, or with `net =
 * shared`, has no map: its servers bind the host's ports (the behaviour
 * before isolation). */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "core/policy_net.h"
#include "core/portmap.h"

static portmap *g_map;   /* the writable view; NULL: the box's net is shared */
static CRITICAL_SECTION g_lock;
static wchar_t g_ini[FVM_PATH_MAX];

/* box.ini [box] key as ASCII; "" when absent. */
static void ini_text(const wchar_t *key, char *out, size_t cap)
{
    wchar_t value[512];
    GetPrivateProfileStringW(L"box", key, L"", value, 512, g_ini);
    WideCharToMultiByte(CP_UTF8, 0, value, -1, out, (int)cap, NULL, NULL);
    out[cap - 1] = 0;
}

static void read_publish(void)
{
    char text[512];
    ini_text(L"publish", text, sizeof text);
    portmap_publish list[PORTMAP_PUBLISH_MAX];
    size_t count = 0;
    fvm_error err;
    if (portmap_publish_parse(text, strlen(text), list, PORTMAP_PUBLISH_MAX, &count, &err) != FVM_OK)
        count = 0;   /* fvm create and fvm net check it; a hand-edited bad line publishes nothing */
    /* Then the policy's publish: rules ([net] open publish:18080:8080), for
     * ports box.ini does not publish already (its line comes first). */
    net_publish rules[PORTMAP_PUBLISH_MAX];
    size_t n = net_policy_published(broker_policy_view(), rules, PORTMAP_PUBLISH_MAX);
    for (size_t i = 0; i < n && i < PORTMAP_PUBLISH_MAX && count < PORTMAP_PUBLISH_MAX; i++) {
        uint8_t proto = rules[i].proto == NET_PROTO_UDP ? PORTMAP_UDP : PORTMAP_TCP;
        BOOL clash = FALSE;
        for (size_t k = 0; k < count && !clash; k++)
            clash = list[k].proto == proto && (list[k].host == rules[i].host || list[k].box == rules[i].box);
        if (clash)
            continue;
        memset(&list[count], 0, sizeof list[count]);
        list[count].host = rules[i].host;
        list[count].box = rules[i].box;
        list[count].proto = proto;
        count++;
    }
    portmap_set_publish(g_map, list, count);
}

BOOL broker_net_isolated(const wchar_t *box_path)
{
    _snwprintf(g_ini, FVM_PATH_MAX, L"%ls\\box.ini", box_path);
    g_ini[FVM_PATH_MAX - 1] = 0;
    char mode[32];
    ini_text(L"net", mode, sizeof mode);
    return !_stricmp(mode, "isolated");   /* else shared (or absent: a box made before isolation) */
}

BOOL broker_net_start(const wchar_t *box_path)
{
    InitializeCriticalSection(&g_lock);
    if (!broker_net_isolated(box_path))
        return TRUE;
    /* publish.c made room for the map in the published section (fresh for
     * this broker: entries of a previous run's processes are gone). */
    g_map = broker_published_ports();
    if (!g_map)
        return FALSE;
    portmap_init(g_map);
    read_publish();
    return TRUE;
}

static int member_alive(uint32_t pid, void *ctx)
{
    (void)ctx;
    return broker_is_member(pid);
}

void broker_net_request(uint32_t pid, const uint8_t *buf, size_t len, portmap_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    reply->status = PORTMAP_REFUSED;
    portmap_request r;
    fvm_error err;
    if (!g_map || !pid || portmap_request_decode(buf, len, &r, &err) != FVM_OK || !broker_is_member(pid))
        return;
    EnterCriticalSection(&g_lock);
    fvm_status s;
    switch (r.op) {
    case PORTMAP_OP_CLAIM:
        read_publish();
        uint16_t join = 0;
        s = portmap_claim_flags(g_map, r.proto, r.family, r.vport, pid, r.flags, member_alive, NULL, &join, &err);
        reply->status = s == FVM_OK ? PORTMAP_OK : s == FVM_E_EXISTS ? PORTMAP_IN_USE : s == FVM_E_RANGE ? PORTMAP_FULL
                                                                                                         : PORTMAP_REFUSED;
        /* A shared port (SO_REUSEADDR) binds the real port its first socket has. */
        if (s == FVM_OK)
            reply->real = join ? join : portmap_published(g_map, r.proto, r.vport);
        break;
    case PORTMAP_OP_BOUND:
        s = portmap_bound(g_map, r.proto, r.family, r.vport, r.real, pid, &err);
        reply->status = s == FVM_OK ? PORTMAP_OK : s == FVM_E_EXISTS ? PORTMAP_IN_USE : PORTMAP_REFUSED;
        break;
    default:
        portmap_release(g_map, r.proto, r.family, r.vport, pid);
        reply->status = PORTMAP_OK;
        break;
    }
    LeaveCriticalSection(&g_lock);
}

void broker_net_process_exit(uint32_t pid)
{
    if (!g_map)
        return;
    EnterCriticalSection(&g_lock);
    portmap_forget_pid(g_map, pid);
    LeaveCriticalSection(&g_lock);
}

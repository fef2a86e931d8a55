/* resolver.c - host names resolved for a box's programs, outside the box
 * (resolver.h).
 *
 * The box's programs run in an empty network namespace of their own, where
 * the C library's DNS lookups reach nothing; their runtime sends the name
 * (core/resolvemsg.h) to a process in the host's network that answers
 * here: the box's broker (broker/resolve.c) for a box on the host's Wine
 * server, the box's relay (cli/relay.c) for a box with a server of its own.
 * This resolves with Winsock (getaddrinfo, getnameinfo).
 *
 * The request is outside input: any boxed program can write it without the
 * runtime. So what the runtime decided is decided again: a box whose policy
 * lets nothing leave resolves nothing (its programs never had a network to
 * ask), and a name the [net] rules deny or hide to the asking program is
 * not found (when the asker's image is not known, the rules for every
 * program decide). An `ask` name rule was asked by the runtime; it cannot
 * be asked again here, so it lets the name through (the runtime's answer
 * decides at connect). Audit records of resolving are the runtime's. */
#include <winsock2.h>   /* before windows.h */
#include <ws2tcpip.h>
#include <windows.h>

#include "common/resolver.h"

#include <stdlib.h>
#include <string.h>

#include "common/boxcfg.h"
#include "core/policy_net.h"
#include "core/resolvemsg.h"

#define NET_RULES_CHECKED 256   /* as policy.c's redecide */

static INIT_ONCE g_wsa_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK wsa_start(INIT_ONCE *once, void *param, void **ctx)
{
    WSADATA data;
    return WSAStartup(MAKEWORD(2, 2), &data) == 0;
}

static BOOL printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return FALSE;
    return TRUE;
}

/* Whether the box's policy lets nothing leave (then nothing is resolved
 * here: the box's programs never had a network to ask); TRUE also when the
 * rules are too many to tell, failing closed. */
static BOOL box_offline(const policy_view *view)
{
    if (!view)
        return FALSE;
    net_policy_rule *rules = malloc(NET_RULES_CHECKED * sizeof *rules);
    uint8_t *scratch = malloc(8192);
    size_t bad = 0, count = rules ? net_policy_load_every(view, rules, NET_RULES_CHECKED, &bad) : 0;
    BOOL offline = !rules || !scratch || count > NET_RULES_CHECKED || net_policy_offline(rules, count, scratch);
    free(rules);
    free(scratch);
    return offline;
}

/* WSAHOST_NOT_FOUND, or 0 when the policy lets this process resolve the name. */
static int policy_refuses(const policy_view *view, const wchar_t *image, size_t image_len,
                          const resolve_request *req)
{
    if (!view)
        return 0;   /* no policy: every name may be resolved */
    if (box_offline(view))
        return WSAHOST_NOT_FOUND;
    net_policy_rule *rules = malloc(NET_RULES_CHECKED * sizeof *rules);
    int refused = WSAHOST_NOT_FOUND;
    size_t bad = 0, count;
    if (!rules)
        goto done;
    count = net_policy_load(view, (const uint16_t *)(image ? image : L""), image ? image_len : 0, rules,
                            NET_RULES_CHECKED, &bad);
    if (count > NET_RULES_CHECKED)
        goto done;   /* too many rules to tell: fail closed */
    policy_decision d;
    net_policy_decide_name(view, rules, count, req->node, req->node_len, &d);
    if (d.action != POLICY_ACTION_DENY && d.action != POLICY_ACTION_HIDE)
        refused = 0;
done:
    free(rules);
    return refused;
}

static void fill(resolve_reply *reply, const ADDRINFOA *list)
{
    for (const ADDRINFOA *ai = list; ai && reply->count < RESOLVE_MAX_ENTRIES; ai = ai->ai_next) {
        resolve_entry *e = &reply->entries[reply->count];
        memset(e, 0, sizeof *e);
        e->flags = ai->ai_flags;
        e->family = ai->ai_family;
        e->socktype = ai->ai_socktype;
        e->protocol = ai->ai_protocol;
        if (!ai->ai_addr || ai->ai_addrlen > sizeof e->addr)
            continue;
        e->addr_len = (uint32_t)ai->ai_addrlen;
        memcpy(e->addr, ai->ai_addr, ai->ai_addrlen);
        if (resolve_entry_valid(e))
            reply->count++;
    }
    const char *canon = list ? list->ai_canonname : NULL;
    size_t n = canon ? strlen(canon) : 0;
    if (n && n <= 255 && printable(canon, n)) {   /* else not a name the reply can carry: none */
        memcpy(reply->canon, canon, n);
        reply->canon_len = n;
    }
}

/* A reverse lookup (FVMRNI01): the names getnameinfo gives for the address. */
static size_t reverse_request(const policy_view *view, const uint8_t *buf, size_t len, uint8_t *out, size_t cap)
{
    resolve_reverse req;
    resolve_names names;
    fvm_error err;
    memset(&names, 0, sizeof names);
    if (resolve_reverse_decode(buf, len, &req, &err) != FVM_OK)
        names.error = WSAEINVAL;
    else if (view && box_offline(view))
        names.error = WSAHOST_NOT_FOUND;
    else if (!InitOnceExecuteOnce(&g_wsa_once, wsa_start, NULL, NULL))
        names.error = WSANOTINITIALISED;
    else
        names.error = getnameinfo((const struct sockaddr *)req.addr, (socklen_t)req.addr_len, names.host,
                                  sizeof names.host, names.serv, sizeof names.serv, req.flags);
    if (!names.error) {
        names.host_len = strlen(names.host);
        names.serv_len = strlen(names.serv);
        if (!printable(names.host, names.host_len) || !printable(names.serv, names.serv_len))
            names.error = WSANO_RECOVERY;   /* not a name the reply can carry */
    }
    if (names.error)
        names.host_len = names.serv_len = 0;
    return resolve_names_encode(&names, out, cap);
}

size_t resolver_answer(const policy_view *view, const wchar_t *image, size_t image_len, const uint8_t *buf,
                       size_t len, uint8_t *out, size_t cap)
{
    if (resolve_is_reverse(buf, len))
        return reverse_request(view, buf, len, out, cap);
    resolve_reply *reply = calloc(1, sizeof *reply);   /* each connection has its own thread */
    resolve_request req;
    fvm_error err;
    if (!reply)
        return 0;
    if (resolve_request_decode(buf, len, &req, &err) != FVM_OK) {
        reply->error = WSAEINVAL;
    } else if ((reply->error = policy_refuses(view, image, image_len, &req)) == 0) {
        ADDRINFOA hints, *list = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_flags = req.flags;
        hints.ai_family = req.family;
        hints.ai_socktype = req.socktype;
        hints.ai_protocol = req.protocol;
        if (!InitOnceExecuteOnce(&g_wsa_once, wsa_start, NULL, NULL))
            reply->error = WSANOTINITIALISED;
        else
            reply->error = getaddrinfo(req.node, req.service_len ? req.service : NULL, &hints, &list);
        if (!reply->error) {
            fill(reply, list);
            if (!reply->count)
                reply->error = WSAHOST_NOT_FOUND;
        }
        if (list)
            freeaddrinfo(list);
    }
    if (reply->error)
        reply->count = 0, reply->canon_len = 0;
    size_t n = resolve_reply_encode(reply, out, cap);
    free(reply);
    return n;
}

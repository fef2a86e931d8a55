/* policy_net.c - [net] decisions: the rules of a compiled policy that apply
 * to one program, and the winner among those matching an operation
 * (core/policy_net.h). */
#include "core/policy_net.h"

#include <string.h>

static size_t load(const policy_view *view, int every, const uint16_t *program, size_t program_len,
                   net_policy_rule *out, size_t cap, size_t *bad)
{
    size_t count = 0, rules = policy_view_rule_count(view);
    if (bad)
        *bad = 0;
    for (size_t i = 0; i < rules; i++) {
        policy_rule_info info;
        if (policy_view_rule(view, (uint32_t)i, &info) != FVM_OK || info.type != POLICY_TYPE_NET)
            continue;
        if (!every && !policy_rule_applies(view, (uint32_t)i, program, program_len))
            continue;
        net_rule rule;
        fvm_error err;
        if (net_rule_parse(info.pattern, info.pattern_len, &rule, NULL, &err) != FVM_OK) {
            if (bad)
                (*bad)++;
            continue;
        }
        if (count < cap) {
            out[count].rule = rule;
            out[count].index = (uint32_t)i;
            out[count].scope = (uint8_t)info.rank.scope;
            out[count].action = (uint8_t)info.action;
        }
        count++;
    }
    return count;
}

size_t net_policy_load(const policy_view *view, const uint16_t *program, size_t program_len, net_policy_rule *out,
                       size_t cap, size_t *bad)
{
    return load(view, 0, program, program_len, out, cap, bad);
}

size_t net_policy_load_every(const policy_view *view, net_policy_rule *out, size_t cap, size_t *bad)
{
    return load(view, 1, NULL, 0, out, cap, bad);
}

/* > 0 when a beats b. */
static int beats(const net_policy_rule *a, const net_policy_rule *b)
{
    if (a->scope != b->scope)
        return a->scope > b->scope;
    int c = net_rule_compare(&a->rule, &b->rule);
    if (c)
        return c > 0;
    if (a->action != b->action)
        return a->action > b->action;
    return a->index > b->index;
}

static void fill(const policy_view *view, const net_policy_rule *best, int raw, policy_decision *out)
{
    memset(out, 0, sizeof *out);
    out->rule = POLICY_NO_RULE;
    out->file = "";
    policy_rule_info info;
    if (best && view && policy_view_rule(view, best->index, &info) == FVM_OK) {
        out->action = info.action;
        out->audit = info.audit;
        out->rule = best->index;
        out->ask_timeout_ms = info.ask_timeout_ms;
        out->ask_default = info.ask_default;
        out->file = info.file;
        out->file_len = info.file_len;
        out->line = info.line;
        out->column = info.column;
        return;
    }
    out->is_default = 1;
    out->action = raw ? POLICY_ACTION_DENY : POLICY_ACTION_OPEN;   /* raw and ICMP sockets only by a rule */
    out->audit = raw;
}

void net_policy_decide(const policy_view *view, const net_policy_rule *rules, size_t count, const net_query *q,
                       policy_decision *out)
{
    const net_policy_rule *best = NULL;
    for (size_t i = 0; i < count; i++)
        if (net_rule_matches(&rules[i].rule, q) && (!best || beats(&rules[i], best)))
            best = &rules[i];
    fill(view, best, q->proto == NET_PROTO_RAW || q->proto == NET_PROTO_ICMP, out);
}

void net_policy_decide_name(const policy_view *view, const net_policy_rule *rules, size_t count, const char *name,
                            size_t len, policy_decision *out)
{
    const net_policy_rule *best = NULL;
    for (size_t i = 0; i < count; i++) {
        const net_rule *r = &rules[i].rule;
        if (r->host_kind != NET_HOST_NAME || r->dir == NET_DIR_IN || r->dir == NET_DIR_ACCEPT ||
            r->dir == NET_DIR_PUBLISH || r->port_lo != 0 || r->port_hi != 65535 ||
            r->proto == NET_PROTO_RAW || r->proto == NET_PROTO_ICMP)
            continue;
        if (net_name_glob(r->name, r->name_len, name, len) && (!best || beats(&rules[i], best)))
            best = &rules[i];
    }
    fill(view, best, 0, out);
}

/* A rule that decides traffic of proto (TCP or UDP) in direction dir (out:
 * to some port of any host; in: a bind of some local port), for some
 * program. */
static int decides(const net_rule *r, uint8_t dir, uint8_t proto)
{
    return (r->dir == NET_DIR_ANY || r->dir == dir) && (r->proto == NET_PROTO_ANY || r->proto == proto);
}

static int denies(uint8_t action)
{
    return action == POLICY_ACTION_DENY || action == POLICY_ACTION_HIDE;
}

/* The ports are cut into runs that every rule either covers whole or not
 * at all (between one rule's edge and the next), and each run is decided
 * once: O(rules^2) with no allocation. In a run, the best (by precedence)
 * rule that denies every host for every program wins over each allowing
 * rule, or the run stays open; if the best one does not, no weaker deny
 * does either (precedence is a total order). */
static size_t ports_denied(const net_policy_rule *rules, size_t count, uint8_t dir, uint8_t proto, uint32_t first,
                           uint8_t denied[8192])
{
    for (size_t i = 0; i < 8192; i++)
        denied[i] = 0;
    size_t total = 0;
    uint32_t lo = first;
    while (lo <= 65535) {
        uint32_t next = 65536;   /* the first port past the run */
        for (size_t i = 0; i < count; i++) {
            const net_rule *r = &rules[i].rule;
            if (!decides(r, dir, proto))
                continue;
            if (r->port_lo > lo && r->port_lo < next)
                next = r->port_lo;
            if ((uint32_t)r->port_hi + 1 > lo && (uint32_t)r->port_hi + 1 < next)
                next = (uint32_t)r->port_hi + 1;
        }
        const net_policy_rule *best = NULL;
        for (size_t i = 0; i < count; i++) {
            const net_rule *r = &rules[i].rule;
            if (decides(r, dir, proto) && denies(rules[i].action) && rules[i].scope == POLICY_SCOPE_ALL &&
                r->host_kind == NET_HOST_ANY && r->port_lo <= lo && r->port_hi >= lo &&
                (!best || beats(&rules[i], best)))
                best = &rules[i];
        }
        for (size_t i = 0; best && i < count; i++) {
            const net_rule *r = &rules[i].rule;
            if (decides(r, dir, proto) && !denies(rules[i].action) && r->port_lo <= lo && r->port_hi >= lo &&
                !beats(best, &rules[i]))
                best = NULL;
        }
        if (best)
            for (uint32_t p = lo; p < next; p++, total++)
                denied[p / 8] |= (uint8_t)(1u << (p % 8));
        lo = next;
    }
    return total;
}

/* Outgoing: ports 1-65535 (port 0 is no destination). */
static size_t out_ports_denied(const net_policy_rule *rules, size_t count, uint8_t proto, uint8_t denied[8192])
{
    return ports_denied(rules, count, NET_DIR_OUT, proto, 1, denied);
}

size_t net_policy_tcp_connect_denied(const net_policy_rule *rules, size_t count, uint8_t denied[8192])
{
    return out_ports_denied(rules, count, NET_PROTO_TCP, denied);
}

/* Whether rule r could match q for some program, whatever name the
 * address was resolved from (a name rule matches an address only through
 * the name the program resolved, which the kernel's floor never sees). */
static int may_match(const net_rule *r, const net_query *q)
{
    if (r->host_kind != NET_HOST_NAME)
        return net_rule_matches(r, q);
    net_rule any = *r;
    any.host_kind = NET_HOST_ANY;
    return net_rule_matches(&any, q);
}

/* As ports_denied decides a port, for one address: the best rule for
 * every program that denies this destination by its address (not by a
 * name) must win over each rule that could allow it for some program or
 * name. */
int net_policy_connect_held(const net_policy_rule *rules, size_t count, uint8_t proto, const net_addr *addr,
                            uint16_t port)
{
    if (port == 0 || (proto != NET_PROTO_TCP && proto != NET_PROTO_UDP))
        return 0;
    net_query q;
    memset(&q, 0, sizeof q);
    q.dir = NET_DIR_OUT;
    q.proto = (net_proto)proto;
    q.addr = *addr;
    q.port = port;
    net_addr_normalize(&q.addr);
    const net_policy_rule *best = NULL;
    for (size_t i = 0; i < count; i++)
        if (denies(rules[i].action) && rules[i].scope == POLICY_SCOPE_ALL && rules[i].rule.host_kind != NET_HOST_NAME &&
            net_rule_matches(&rules[i].rule, &q) && (!best || beats(&rules[i], best)))
            best = &rules[i];
    for (size_t i = 0; best && i < count; i++)
        if (!denies(rules[i].action) && may_match(&rules[i].rule, &q) && !beats(best, &rules[i]))
            best = NULL;
    return best != NULL;
}

int net_policy_connect_checks_needed(const net_policy_rule *rules, size_t count, int udp_refused)
{
    for (size_t i = 0; i < count; i++) {
        const net_rule *r = &rules[i].rule;
        if (!denies(rules[i].action) || rules[i].scope != POLICY_SCOPE_ALL || r->host_kind == NET_HOST_NAME)
            continue;
        if (decides(r, NET_DIR_OUT, NET_PROTO_UDP) && !udp_refused)
            return 1;   /* Landlock has no UDP rule at all */
        if (decides(r, NET_DIR_OUT, NET_PROTO_TCP) && r->host_kind != NET_HOST_ANY)
            return 1;   /* its TCP rules name ports only */
    }
    return 0;
}

/* A rule that lets some program have raw or ICMP sockets (ICMP echo is a
 * datagram socket under Linux). */
static int allows_raw_or_icmp(const net_policy_rule *r)
{
    return (r->rule.proto == NET_PROTO_RAW || r->rule.proto == NET_PROTO_ICMP) && !denies(r->action) &&
           r->rule.dir != NET_DIR_ACCEPT;
}

int net_policy_offline(const net_policy_rule *rules, size_t count, uint8_t scratch[8192])
{
    for (size_t i = 0; i < count; i++) {
        const net_rule *r = &rules[i].rule;
        if (r->dir == NET_DIR_PUBLISH)
            return 0;   /* a port the host reaches: it must live in the host's network */
        if (allows_raw_or_icmp(&rules[i]))
            return 0;   /* raw and ICMP sockets are allowed only by such a rule */
    }
    return out_ports_denied(rules, count, NET_PROTO_TCP, scratch) == 65535 &&
           out_ports_denied(rules, count, NET_PROTO_UDP, scratch) == 65535;
}

int net_policy_udp_closed(const net_policy_rule *rules, size_t count, uint8_t scratch[8192])
{
    for (size_t i = 0; i < count; i++) {
        const net_rule *r = &rules[i].rule;
        if (r->dir == NET_DIR_PUBLISH && r->proto == NET_PROTO_UDP)
            return 0;   /* host clients send to a box port */
        if (allows_raw_or_icmp(&rules[i]))
            return 0;
    }
    /* Every destination port out, and every local port to bind, 0 (the
     * system's choice) included. */
    return out_ports_denied(rules, count, NET_PROTO_UDP, scratch) == 65535 &&
           ports_denied(rules, count, NET_DIR_IN, NET_PROTO_UDP, 0, scratch) == 65536;
}

size_t net_policy_published(const policy_view *view, net_publish *out, size_t cap)
{
    size_t count = 0, rules = view ? policy_view_rule_count(view) : 0;
    for (size_t i = 0; i < rules; i++) {
        policy_rule_info info;
        net_rule rule;
        fvm_error err;
        if (policy_view_rule(view, (uint32_t)i, &info) != FVM_OK || info.type != POLICY_TYPE_NET ||
            info.action != POLICY_ACTION_OPEN || info.rank.scope != POLICY_SCOPE_ALL ||
            !net_rule_is_publish(info.pattern, info.pattern_len) ||
            net_rule_parse(info.pattern, info.pattern_len, &rule, NULL, &err) != FVM_OK)
            continue;
        if (count < cap) {
            out[count].proto = rule.proto;
            out[count].host = rule.publish_host;
            out[count].box = rule.publish_box;
            out[count].index = (uint32_t)i;
        }
        count++;
    }
    return count;
}

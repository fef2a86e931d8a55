/* fuzz_netrules.c - libFuzzer target for [net] patterns (core/netrules.c)
 * and the [net] section (core/policy_net.c).
 *
 * The input is fed three ways: as one pattern to net_rule_parse, as an
 * address to net_addr_parse, and as the body of a [net] section loaded,
 * compiled and decided on. Properties it traps on, besides "never crash":
 *  - a failed parse names an offset inside the pattern (or its end);
 *  - a parsed rule is well formed (port_lo <= port_hi, prefix within the
 *    family, a name that is NUL-terminated at name_len);
 *  - an address that parses formats back into text that parses to the same
 *    address;
 *  - every [net] rule of a compiled policy loads again in the runtime's way
 *    (none skipped as unparseable);
 *  - a publish: rule has both ports and tcp or udp, and in a compiled
 *    policy is an open rule for every program;
 *  - the kernel's mirror of the TCP denies (net_policy_tcp_connect_denied)
 *    is never stricter than the policy: at each rule's edge ports that it
 *    refuses, every program the rules name (and one they do not) is
 *    denied outgoing TCP to every host a rule names (and to others);
 *  - a policy called offline (net_policy_offline) denies a program no rule
 *    names any outgoing TCP, UDP, raw or ICMP traffic. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/netrules.h"
#include "core/policy.h"
#include "core/policy_net.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static void ignore_diag(void *ctx, const policy_diag *d)
{
    (void)ctx;
    CHECK(d->file && d->message);
}

static void check_pattern(const uint8_t *data, size_t size)
{
    uint16_t in[400];
    size_t n = size < 400 ? size : 400;
    for (size_t i = 0; i < n; i++)
        in[i] = data[i];
    net_rule r;
    size_t bad = (size_t)-1;
    fvm_error err;
    if (net_rule_parse(in, n, &r, &bad, &err) != FVM_OK) {
        CHECK(bad <= n);
        return;
    }
    CHECK(r.port_lo <= r.port_hi);
    CHECK(r.dir != NET_DIR_PUBLISH || (r.publish_host && r.publish_box && net_rule_is_publish(in, n) &&
                                       (r.proto == NET_PROTO_TCP || r.proto == NET_PROTO_UDP)));
    CHECK(r.host_kind != NET_HOST_ADDR || r.prefix <= (r.addr.family == 4 ? 32 : 128));
    CHECK(r.host_kind != NET_HOST_NAME || (r.name_len <= NET_NAME_MAX && r.name[r.name_len] == 0));
}

static void check_address(const uint8_t *data, size_t size)
{
    net_addr a, b;
    if (!net_addr_parse((const char *)data, size, &a))
        return;
    char text[64];
    size_t n = net_addr_format(&a, -1, text, sizeof text);
    CHECK(net_addr_parse(text, n, &b));
    CHECK(a.family == b.family && !memcmp(a.bytes, b.bytes, 16));
}

static int port_denied(const uint8_t *denied, uint32_t port)
{
    return port >= 1 && port <= 65535 && ((denied[port / 8] >> (port % 8)) & 1);
}

/* One outgoing TCP query to the host that rule r names (or, r NULL, to
 * 8.8.8.8 by no name) on port: denied for the program? */
static int denied_for(const policy_view *view, const uint16_t *program, size_t program_len, const net_rule *r,
                      uint16_t port)
{
    static net_policy_rule rules[64];
    size_t bad = 0, count = net_policy_load(view, program, program_len, rules, 64, &bad);
    net_query q;
    memset(&q, 0, sizeof q);
    q.dir = NET_DIR_OUT;
    q.proto = NET_PROTO_TCP;
    q.port = port;
    q.addr.family = 4;
    q.addr.bytes[0] = 8;
    q.addr.bytes[1] = 8;
    q.addr.bytes[2] = 8;
    q.addr.bytes[3] = 8;
    if (r && r->host_kind == NET_HOST_ADDR)
        q.addr = r->addr;
    if (r && r->host_kind == NET_HOST_LOCALHOST) {
        memset(&q.addr, 0, sizeof q.addr);
        q.addr.family = 4;
        q.addr.bytes[0] = 127;
        q.addr.bytes[3] = 1;
    }
    if (r && r->host_kind == NET_HOST_NAME && !strpbrk(r->name, "*?")) {
        q.host = r->name;
        q.host_len = r->name_len;
    }
    policy_decision d;
    net_policy_decide(view, rules, count < 64 ? count : 64, &q, &d);
    return d.action == POLICY_ACTION_DENY || d.action == POLICY_ACTION_HIDE;
}

static void check_tcp_mirror(const policy *p, const policy_view *view)
{
    static net_policy_rule every[64];
    static uint8_t denied[8192];
    size_t bad = 0, count = net_policy_load_every(view, every, 64, &bad);
    CHECK(bad == 0);
    if (count > 64)
        return;   /* the caller's array was too small: not decided on */
    /* Offline: nothing may leave, so any outgoing query is denied. */
    if (net_policy_offline(every, count, denied)) {
        static net_policy_rule mine[64];
        size_t mbad = 0, m = net_policy_load(view, (const uint16_t *)u"zz.exe", 6, mine, 64, &mbad);
        net_query q;
        memset(&q, 0, sizeof q);
        q.dir = NET_DIR_OUT;
        q.addr.family = 4;
        q.addr.bytes[0] = 8;
        q.addr.bytes[3] = 8;
        policy_decision d;
        for (int proto = NET_PROTO_TCP; proto <= NET_PROTO_ICMP; proto++) {
            q.proto = (net_proto)proto;
            q.port = proto == NET_PROTO_UDP ? 53 : 443;
            net_policy_decide(view, mine, m < 64 ? m : 64, &q, &d);
            CHECK(d.action == POLICY_ACTION_DENY || d.action == POLICY_ACTION_HIDE);
        }
    }
    size_t n = net_policy_tcp_connect_denied(every, count, denied);
    CHECK(n <= 65535 && !port_denied(denied, 0));
    if (!n)
        return;
    /* The programs: one no rule names, and those the rules name. */
    static uint16_t names[9][64];
    size_t lens[9];
    size_t programs = 1;
    memcpy(names[0], u"zz.exe", 6 * sizeof(uint16_t));
    lens[0] = 6;
    for (size_t i = 0; i < policy_rule_count(p) && programs < 9; i++) {
        const policy_rule *r = policy_rule_at(p, i);
        if (r->scope != POLICY_SCOPE_PROGRAM || !r->scope_name)
            continue;
        size_t bad_at, len = policy_utf8_to_utf16(r->scope_name, strlen(r->scope_name), names[programs], 64, &bad_at);
        if (len != (size_t)-1 && len <= 64)
            lens[programs++] = len;
    }
    for (size_t i = 0; i < count; i++) {
        const net_rule *edge = &every[i].rule;
        uint32_t ports[4] = {edge->port_lo, edge->port_hi, (uint32_t)edge->port_lo - 1, (uint32_t)edge->port_hi + 1};
        for (int k = 0; k < 4; k++) {
            if (!port_denied(denied, ports[k]))
                continue;
            for (size_t g = 0; g < programs; g++) {
                CHECK(denied_for(view, names[g], lens[g], NULL, (uint16_t)ports[k]));
                for (size_t h = 0; h < count; h++)
                    CHECK(denied_for(view, names[g], lens[g], &every[h].rule, (uint16_t)ports[k]));
            }
        }
    }
}

static void check_section(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 7);
    if (!text)
        return;
    memcpy(text, "[net]\n", 6);
    memcpy(text + 6, data, size);
    policy_env env;
    memset(&env, 0, sizeof env);
    env.diag = ignore_diag;
    policy *p = NULL;
    fvm_error err;
    if (policy_load_text("box.ini", text, size + 6, &env, &p, &err) == FVM_OK) {
        void *blob;
        size_t len;
        policy_view view;
        if (policy_compile(p, &blob, &len, &err) == FVM_OK) {
            CHECK(policy_blob_open(blob, len, &view, &err) == FVM_OK);
            static net_policy_rule rules[64];
            size_t bad = 0;
            size_t count = net_policy_load(&view, (const uint16_t *)u"a.exe", 5, rules, 64, &bad);
            CHECK(bad == 0);
            net_query q;
            memset(&q, 0, sizeof q);
            q.dir = NET_DIR_OUT;
            q.proto = NET_PROTO_TCP;
            q.addr.family = 4;
            q.addr.bytes[0] = 127;
            q.addr.bytes[3] = 1;
            q.port = 80;
            q.host = "localhost";
            q.host_len = 9;
            policy_decision d;
            net_policy_decide(&view, rules, count < 64 ? count : 64, &q, &d);
            CHECK(d.action >= POLICY_ACTION_OPEN && d.action <= POLICY_ACTION_MAX);
            net_policy_decide_name(&view, rules, count < 64 ? count : 64, "www.example.com", 15, &d);
            CHECK(d.action >= POLICY_ACTION_OPEN && d.action <= POLICY_ACTION_MAX);
            /* publish: rules: listed with their ports, open and for everyone (the parser saw to it). */
            net_publish pub[8];
            size_t np = net_policy_published(&view, pub, 8);
            for (size_t i = 0; i < np && i < 8; i++) {
                CHECK(pub[i].host && pub[i].box);
                CHECK(pub[i].proto == NET_PROTO_TCP || pub[i].proto == NET_PROTO_UDP);
            }
            for (size_t i = 0; i < count && i < 64; i++)
                CHECK(rules[i].rule.dir != NET_DIR_PUBLISH ||
                      (rules[i].action == POLICY_ACTION_OPEN && rules[i].scope == POLICY_SCOPE_ALL));
            check_tcp_mirror(p, &view);
            policy_blob_free(blob);
        }
        policy_free(p);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_pattern(data, size);
    check_address(data, size);
    check_section(data, size);
    return 0;
}

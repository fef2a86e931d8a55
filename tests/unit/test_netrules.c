/* test_netrules.c - the [net] section (core/netrules.c, core/policy_net.c):
 * every pattern form, every malformed one refused with file:line:column,
 * matching by direction, protocol, IPv4/IPv6 address, CIDR, localhost,
 * host name, port and range, IPv4-mapped addresses, precedence, program
 * scopes, and the defaults (allowed; raw and ICMP refused and audited). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/netrules.h"
#include "core/policy.h"
#include "core/policy_net.h"

static char diags[8192];

static void collect_diag(void *ctx, const policy_diag *d)
{
    (void)ctx;
    char line[1024];
    policy_diag_format(d, line, sizeof line);
    strncat(diags, line, sizeof diags - strlen(diags) - 2);
    strcat(diags, "\n");
}

static policy_env env(void)
{
    policy_env e;
    memset(&e, 0, sizeof e);
    e.diag = collect_diag;
    return e;
}

static size_t units(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    for (size_t i = 0; i <= n; i++)
        out[i] = (uint16_t)(unsigned char)s[i];
    return n;
}

static net_rule parse_ok(const char *text)
{
    uint16_t u[512];
    size_t n = units(text, u);
    net_rule r;
    fvm_error err = {0};
    if (net_rule_parse(u, n, &r, NULL, &err) != FVM_OK)
        fail_msg("'%s': %s", text, err.message);
    return r;
}

static void parse_bad(const char *text, size_t at, const char *message)
{
    uint16_t u[512];
    size_t n = units(text, u), bad = 999;
    net_rule r;
    fvm_error err = {0};
    assert_int_equal(net_rule_parse(u, n, &r, &bad, &err), FVM_E_INVALID);
    if (bad != at || !strstr(err.message, message))
        fail_msg("'%s': at %zu '%s', expected at %zu '%s'", text, bad, err.message, at, message);
}

static net_query query(net_dir dir, net_proto proto, const char *addr, uint16_t port, const char *host)
{
    net_query q;
    memset(&q, 0, sizeof q);
    q.dir = dir;
    q.proto = proto;
    if (addr && !net_addr_parse(addr, strlen(addr), &q.addr))
        fail_msg("bad test address %s", addr);
    q.port = port;
    q.host = host;
    q.host_len = host ? strlen(host) : 0;
    return q;
}

static int matches(const char *rule, net_dir dir, net_proto proto, const char *addr, uint16_t port, const char *host)
{
    net_rule r = parse_ok(rule);
    net_query q = query(dir, proto, addr, port, host);
    return net_rule_matches(&r, &q);
}

static void pattern_forms_parse(void **state)
{
    (void)state;
    net_rule r = parse_ok("*");
    assert_int_equal(r.proto, NET_PROTO_ANY);
    assert_int_equal(r.host_kind, NET_HOST_ANY);
    assert_int_equal(r.port_lo, 0);
    assert_int_equal(r.port_hi, 65535);
    r = parse_ok("tcp:*.Example.COM:443");
    assert_int_equal(r.proto, NET_PROTO_TCP);
    assert_int_equal(r.host_kind, NET_HOST_NAME);
    assert_string_equal(r.name, "*.example.com");
    assert_int_equal(r.port_lo, 443);
    assert_int_equal(r.port_hi, 443);
    r = parse_ok("out:udp:10.0.0.0/8:8000-8999");
    assert_int_equal(r.dir, NET_DIR_OUT);
    assert_int_equal(r.proto, NET_PROTO_UDP);
    assert_int_equal(r.host_kind, NET_HOST_ADDR);
    assert_int_equal(r.prefix, 8);
    assert_int_equal(r.port_lo, 8000);
    assert_int_equal(r.port_hi, 8999);
    r = parse_ok("IN:*:[fe80::]/10:*");
    assert_int_equal(r.dir, NET_DIR_IN);
    assert_int_equal(r.addr.family, 6);
    assert_int_equal(r.prefix, 10);
    assert_int_equal(r.addr.bytes[0], 0xfe);
    assert_int_equal(r.addr.bytes[1], 0x80);
    r = parse_ok("tcp:[::ffff:10.0.0.0]/104");   /* mapped: an IPv4 /8 */
    assert_int_equal(r.addr.family, 4);
    assert_int_equal(r.prefix, 8);
    r = parse_ok("raw:*");
    assert_int_equal(r.proto, NET_PROTO_RAW);
    r = parse_ok("tcp:localhost:80");
    assert_int_equal(r.host_kind, NET_HOST_LOCALHOST);
    r = parse_ok("tcp:[::1]:65535");
    assert_int_equal(r.addr.bytes[15], 1);
}

static void malformed_patterns_are_refused_where_they_go_wrong(void **state)
{
    (void)state;
    parse_bad("", 0, "empty");
    parse_bad("smtp:*:25", 0, "starts with a protocol");
    parse_bad("out:ftp:*", 4, "starts with a protocol");
    parse_bad("tcp", 3, "host is missing");
    parse_bad("tcp::80", 4, "host is missing");
    parse_bad("tcp:256.1.1.1:80", 4, "bad IPv4 address");
    parse_bad("tcp:10.0.*.*:80", 4, "bad IPv4 address");
    parse_bad("tcp:010.1.1.1", 4, "bad IPv4 address");
    parse_bad("tcp:10.0.0.0/33", 13, "at most /32");
    parse_bad("tcp:10.0.0.0/x", 13, "prefix length");
    parse_bad("tcp:10.0.0.0/", 13, "prefix length");
    parse_bad("tcp:[::1", 4, "closing ']'");
    parse_bad("tcp:[::1::2]:80", 5, "bad IPv6 address");
    parse_bad("tcp:[12345::1]", 5, "bad IPv6 address");
    parse_bad("tcp:[::1]/129", 10, "at most /128");
    parse_bad("tcp:[::1]x", 9, "unexpected text");
    parse_bad("tcp:::1:80", 4, "host is missing");
    parse_bad("tcp:fe80::1", 9, "written in brackets");
    parse_bad("tcp:*:65536", 6, "bad port");
    parse_bad("tcp:*:80-", 9, "bad port range");
    parse_bad("tcp:*:90-80", 6, "ends before it starts");
    parse_bad("tcp:*:08", 6, "bad port");
    parse_bad("tcp:*:http", 6, "bad port");
    parse_bad("tcp:*:80:90", 8, "too many ':'");
    parse_bad("tcp:ex ample.com", 6, "space");
    parse_bad("tcp:exa$mple.com", 7, "host name has");
    uint16_t u[] = {'t', 'c', 'p', ':', 0xe9, 'x'};
    net_rule r;
    size_t bad = 0;
    fvm_error err;
    assert_int_equal(net_rule_parse(u, 6, &r, &bad, &err), FVM_E_INVALID);
    assert_int_equal(bad, 4);
}

static void policy_errors_carry_file_line_column(void **state)
{
    (void)state;
    const char *text = "[net]\n"
                       "deny tcp:*:25\n"
                       "deny   tcp:10.0.0.0/40:25\n"
                       "open \"udp:*:99999\"\n"
                       "p.exe: deny smtp:*\n";
    policy_env e = env();
    policy *p = NULL;
    fvm_error err = {0};
    diags[0] = 0;
    assert_int_equal(policy_load_text("box.ini", text, strlen(text), &e, &p, &err), FVM_E_PARSE);
    assert_null(p);
    static const char *const expected[] = {
        "box.ini:3:21: error: an IPv4 prefix is at most /32",
        "box.ini:4:13: error: bad port",
        "box.ini:5:13: error: a [net] pattern starts with a protocol",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr(diags, expected[i]))
            fail_msg("expected '%s' in:\n%s", expected[i], diags);
    assert_null(strstr(diags, "not enforced"));
}

static void matching_by_each_part(void **state)
{
    (void)state;
    /* protocol: '*' is tcp and udp, never raw; raw covers icmp */
    assert_true(matches("*", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 80, NULL));
    assert_true(matches("*", NET_DIR_IN, NET_PROTO_UDP, "1.2.3.4", 80, NULL));
    assert_false(matches("*", NET_DIR_OUT, NET_PROTO_RAW, NULL, 0, NULL));
    assert_false(matches("*:*", NET_DIR_OUT, NET_PROTO_ICMP, NULL, 0, NULL));
    assert_true(matches("raw:*", NET_DIR_OUT, NET_PROTO_ICMP, NULL, 0, NULL));
    assert_false(matches("icmp:*", NET_DIR_OUT, NET_PROTO_RAW, NULL, 0, NULL));
    assert_false(matches("udp:*", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 80, NULL));
    /* direction */
    assert_true(matches("out:tcp:*", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 80, NULL));
    assert_false(matches("out:tcp:*", NET_DIR_IN, NET_PROTO_TCP, "1.2.3.4", 80, NULL));
    assert_true(matches("in:tcp:*", NET_DIR_IN, NET_PROTO_TCP, "0.0.0.0", 80, NULL));
    /* accept: the peer's address, the server's port; accept: rules only */
    assert_true(matches("accept:tcp:10.0.0.0/8:8080", NET_DIR_ACCEPT, NET_PROTO_TCP, "10.1.2.3", 8080, NULL));
    assert_false(matches("accept:tcp:10.0.0.0/8:8080", NET_DIR_ACCEPT, NET_PROTO_TCP, "10.1.2.3", 8081, NULL));
    assert_false(matches("accept:tcp:10.0.0.0/8", NET_DIR_IN, NET_PROTO_TCP, "10.1.2.3", 80, NULL));
    assert_false(matches("in:tcp:*", NET_DIR_ACCEPT, NET_PROTO_TCP, "10.1.2.3", 80, NULL));
    assert_false(matches("tcp:10.0.0.0/8", NET_DIR_ACCEPT, NET_PROTO_TCP, "10.1.2.3", 80, NULL));
    assert_false(matches("*", NET_DIR_ACCEPT, NET_PROTO_TCP, "10.1.2.3", 80, NULL));
    assert_true(matches("ACCEPT:tcp:localhost", NET_DIR_ACCEPT, NET_PROTO_TCP, "127.0.0.2", 80, NULL));
    /* addresses and CIDR */
    assert_true(matches("tcp:10.0.0.0/8", NET_DIR_OUT, NET_PROTO_TCP, "10.200.3.4", 1, NULL));
    assert_false(matches("tcp:10.0.0.0/8", NET_DIR_OUT, NET_PROTO_TCP, "11.0.0.1", 1, NULL));
    assert_true(matches("tcp:192.168.1.0/25", NET_DIR_OUT, NET_PROTO_TCP, "192.168.1.127", 1, NULL));
    assert_false(matches("tcp:192.168.1.0/25", NET_DIR_OUT, NET_PROTO_TCP, "192.168.1.128", 1, NULL));
    assert_true(matches("tcp:0.0.0.0/0", NET_DIR_OUT, NET_PROTO_TCP, "8.8.8.8", 1, NULL));
    assert_false(matches("tcp:0.0.0.0/0", NET_DIR_OUT, NET_PROTO_TCP, "::2", 1, NULL));
    assert_true(matches("tcp:[fe80::]/10", NET_DIR_OUT, NET_PROTO_TCP, "[febf::1]", 1, NULL));
    assert_false(matches("tcp:[fe80::]/10", NET_DIR_OUT, NET_PROTO_TCP, "[fec0::1]", 1, NULL));
    assert_true(matches("tcp:[::1]", NET_DIR_OUT, NET_PROTO_TCP, "::1", 1, NULL));
    /* a mapped address is the IPv4 address, both ways */
    assert_true(matches("tcp:127.0.0.1", NET_DIR_OUT, NET_PROTO_TCP, "[::ffff:127.0.0.1]", 1, NULL));
    assert_true(matches("tcp:[::ffff:7f00:1]", NET_DIR_OUT, NET_PROTO_TCP, "127.0.0.1", 1, NULL));
    /* localhost */
    assert_true(matches("tcp:localhost", NET_DIR_OUT, NET_PROTO_TCP, "127.9.9.9", 1, NULL));
    assert_true(matches("tcp:localhost", NET_DIR_OUT, NET_PROTO_TCP, "::1", 1, NULL));
    assert_true(matches("tcp:localhost", NET_DIR_OUT, NET_PROTO_TCP, "[::ffff:127.0.0.1]", 1, NULL));
    assert_false(matches("tcp:localhost", NET_DIR_OUT, NET_PROTO_TCP, "10.0.0.1", 1, NULL));
    /* names: only with a name the address came from */
    assert_true(matches("tcp:*.example.com", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 1, "www.EXAMPLE.com"));
    assert_true(matches("tcp:*.example.com", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 1, "a.b.example.com"));
    assert_false(matches("tcp:*.example.com", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 1, "example.com"));
    assert_false(matches("tcp:*.example.com", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 1, NULL));
    assert_true(matches("tcp:db?.corp", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 1, "db1.corp"));
    /* ports */
    assert_true(matches("tcp:*:8000-8999", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 8000, NULL));
    assert_true(matches("tcp:*:8000-8999", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 8999, NULL));
    assert_false(matches("tcp:*:8000-8999", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 9000, NULL));
    assert_false(matches("tcp:*:443", NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 80, NULL));
}

static void addresses_format(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"127.0.0.1", "127.0.0.1:80"},     {"::1", "[::1]:80"},         {"[::]", "[::]:80"},
        {"fe80::1:0:0:2", "[fe80::1:0:0:2]:80"}, {"1:0:0:2:0:0:0:3", "[1:0:0:2::3]:80"},
        {"::ffff:10.1.2.3", "10.1.2.3:80"}, {"1:2:3:4:5:6:7:8", "[1:2:3:4:5:6:7:8]:80"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        net_addr a;
        assert_true(net_addr_parse(cases[i][0], strlen(cases[i][0]), &a));
        char out[64];
        net_addr_format(&a, 80, out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
    net_addr a;
    assert_true(net_addr_parse("10.0.0.1", 8, &a));
    char small[6];
    assert_int_equal(net_addr_format(&a, 8080, small, sizeof small), 5);
    assert_string_equal(small, "10.0.");
}

typedef struct compiled {
    policy *p;
    void *blob;
    size_t len;
    policy_view view;
    net_policy_rule rules[64];
    size_t count;
} compiled;

/* The policy loaded, compiled and opened; no rule loaded yet. */
static void build(const char *text, compiled *c)
{
    policy_env e = env();
    fvm_error err = {0};
    diags[0] = 0;
    if (policy_load_text("box.ini", text, strlen(text), &e, &c->p, &err) != FVM_OK)
        fail_msg("load: %s\n%s", err.message, diags);
    if (policy_compile(c->p, &c->blob, &c->len, &err) != FVM_OK || policy_blob_open(c->blob, c->len, &c->view, &err))
        fail_msg("compile: %s", err.message);
}

static void compile(const char *text, const char *program, compiled *c)
{
    build(text, c);
    uint16_t prog[128];
    size_t pn = program ? units(program, prog) : 0;
    size_t bad = 9;
    c->count = net_policy_load(&c->view, program ? prog : NULL, pn, c->rules, 64, &bad);
    assert_true(c->count <= 64);
    assert_int_equal(bad, 0);
}

static void release(compiled *c)
{
    policy_blob_free(c->blob);
    policy_free(c->p);
}

static policy_decision decide(const compiled *c, net_dir dir, net_proto proto, const char *addr, uint16_t port,
                              const char *host)
{
    net_query q = query(dir, proto, addr, port, host);
    policy_decision d;
    net_policy_decide(&c->view, c->rules, c->count, &q, &d);
    return d;
}

static void decisions_follow_precedence_and_scope(void **state)
{
    (void)state;
    compiled c;
    compile("[net]\n"
            "deny tcp:*\n"                        /* 2 */
            "open tcp:127.0.0.1:8000-8999\n"      /* 3 */
            "deny audit tcp:127.0.0.1:8080\n"     /* 4 */
            "open tcp:10.0.0.0/8\n"               /* 5 */
            "deny tcp:10.1.0.0/16\n"              /* 6 */
            "open tcp:*.example.com:443\n"        /* 7 */
            "deny tcp:bad.example.com:443\n"      /* 8 */
            "other.exe: open tcp:*\n"             /* 9 */
            "app.exe: open udp:[::1]:53\n"        /* 10 */
            "open icmp:*\n"                       /* 11 */
            "deny in:udp:*\n"                     /* 12 */
            "open in:udp:*:5353\n",               /* 13 */
            "C:\\bin\\app.exe", &c);
    assert_int_equal(c.count, 11);   /* other.exe's rule is not loaded */
    policy_decision d = decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 80, NULL);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_int_equal(d.line, 2);
    d = decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "127.0.0.1", 8081, NULL);
    assert_int_equal(d.action, POLICY_ACTION_OPEN);
    assert_int_equal(d.line, 3);
    d = decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "127.0.0.1", 8080, NULL);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_int_equal(d.line, 4);
    assert_true(d.audit);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "10.2.0.1", 1, NULL).line, 5);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "10.1.0.1", 1, NULL).line, 6);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 443, "www.example.com").line, 7);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 443, "bad.example.com").line, 8);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_UDP, "::1", 53, NULL).line, 10);
    /* UDP out elsewhere: no rule, allowed by default */
    d = decide(&c, NET_DIR_OUT, NET_PROTO_UDP, "1.2.3.4", 53, NULL);
    assert_true(d.is_default);
    assert_int_equal(d.action, POLICY_ACTION_OPEN);
    assert_int_equal(decide(&c, NET_DIR_IN, NET_PROTO_UDP, "0.0.0.0", 53, NULL).line, 12);
    assert_int_equal(decide(&c, NET_DIR_IN, NET_PROTO_UDP, "0.0.0.0", 5353, NULL).line, 13);
    /* raw: refused by default and audited; icmp allowed by its rule */
    d = decide(&c, NET_DIR_OUT, NET_PROTO_RAW, NULL, 0, NULL);
    assert_true(d.is_default);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_true(d.audit);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_ICMP, NULL, 0, NULL).line, 11);
    release(&c);

    /* the program's own scope wins over a more specific rule for everyone */
    compile("[net]\ndeny tcp:127.0.0.1:80\nother.exe: open tcp:*\n", "other.exe", &c);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "127.0.0.1", 80, NULL).line, 3);
    release(&c);
    /* equal patterns: the stricter action */
    compile("[net]\ndeny tcp:*:80\nopen tcp:*:80\n", NULL, &c);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "1.1.1.1", 80, NULL).line, 2);
    release(&c);
    /* no policy rules at all */
    compile("[file]\nread C:\\x\n", NULL, &c);
    assert_int_equal(c.count, 0);
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "1.1.1.1", 80, NULL).action, POLICY_ACTION_OPEN);
    release(&c);
}

static void name_decisions_take_rules_for_every_port(void **state)
{
    (void)state;
    compiled c;
    compile("[net]\n"
            "deny tcp:*.example.com\n"        /* 2: every port */
            "open tcp:www.example.com\n"      /* 3: more literal characters */
            "deny tcp:mail.example.org:25\n"  /* 4: one port: decided at connect */
            "deny in:tcp:in.example.net\n"    /* 5: in: not a resolution */
            "deny raw:raw.example.net\n"      /* 6: raw: not a resolution */
            "deny accept:tcp:acc.example.net\n", /* 7: accept: not a resolution */
            NULL, &c);
    policy_decision d;
    net_policy_decide_name(&c.view, c.rules, c.count, "A.Example.com", 13, &d);
    assert_int_equal(d.action, POLICY_ACTION_DENY);
    assert_int_equal(d.line, 2);
    net_policy_decide_name(&c.view, c.rules, c.count, "www.example.com", 15, &d);
    assert_int_equal(d.line, 3);
    net_policy_decide_name(&c.view, c.rules, c.count, "mail.example.org", 16, &d);
    assert_true(d.is_default);
    assert_int_equal(d.action, POLICY_ACTION_OPEN);
    net_policy_decide_name(&c.view, c.rules, c.count, "in.example.net", 14, &d);
    assert_true(d.is_default);
    net_policy_decide_name(&c.view, c.rules, c.count, "raw.example.net", 15, &d);
    assert_true(d.is_default);
    net_policy_decide_name(&c.view, c.rules, c.count, "acc.example.net", 15, &d);
    assert_true(d.is_default);
    /* the port rule applies at connect to the address the name resolved to */
    assert_int_equal(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 25, "mail.example.org").line, 4);
    assert_true(decide(&c, NET_DIR_OUT, NET_PROTO_TCP, "1.2.3.4", 25, NULL).is_default);
    release(&c);
}

static void too_many_rules_are_counted(void **state)
{
    (void)state;
    compiled c;
    compile("[net]\ndeny tcp:*:1\ndeny tcp:*:2\ndeny tcp:*:3\n", NULL, &c);
    net_policy_rule two[2];
    assert_int_equal(net_policy_load(&c.view, NULL, 0, two, 2, NULL), 3);
    release(&c);
}

static void publish_rules_parse_publish_and_decide_nothing(void **state)
{
    (void)state;
    net_rule r;
    size_t bad;
    fvm_error err;
    uint16_t text[64];
    struct { const char *pattern; size_t at; } wrong[] = {
        {"publish:0:80", 8}, {"publish:80:99999", 11}, {"publish:smtp:1:2", 8},
        {"publish:80", 10}, {"publish:1:2:3", 11}, {"publish:tcp:80:", 15}, {"publish:", 8},
    };
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++) {
        size_t n = strlen(wrong[k].pattern);
        for (size_t i = 0; i < n; i++)
            text[i] = (uint8_t)wrong[k].pattern[i];
        bad = 999;
        if (net_rule_parse(text, n, &r, &bad, &err) == FVM_OK)
            fail_msg("'%s' parsed", wrong[k].pattern);
        if (bad != wrong[k].at)
            fail_msg("'%s': error at %zu, not %zu (%s)", wrong[k].pattern, bad, wrong[k].at, err.message);
    }
    const char *ok = "PUBLISH:udp:5353:53";
    for (size_t i = 0; i < strlen(ok); i++)
        text[i] = (uint8_t)ok[i];
    assert_int_equal(net_rule_parse(text, strlen(ok), &r, &bad, &err), FVM_OK);
    assert_int_equal(r.dir, NET_DIR_PUBLISH);
    assert_int_equal(r.proto, NET_PROTO_UDP);
    assert_int_equal(r.publish_host, 5353);
    assert_int_equal(r.publish_box, 53);
    assert_true(net_rule_is_publish(text, strlen(ok)));

    /* In a policy: listed for the broker, matching no operation. */
    const char *policy_text = "[net]\nopen publish:18080:8080\nopen audit publish:udp:5353:53\n";
    policy_env e = env();
    policy *p = NULL;
    assert_int_equal(policy_load_text("box.ini", policy_text, strlen(policy_text), &e, &p, &err), FVM_OK);
    void *blob;
    size_t len;
    policy_view view;
    assert_int_equal(policy_compile(p, &blob, &len, &err), FVM_OK);
    assert_int_equal(policy_blob_open(blob, len, &view, &err), FVM_OK);
    net_publish pub[4];
    assert_int_equal(net_policy_published(&view, pub, 4), 2);
    assert_int_equal(pub[0].proto, NET_PROTO_TCP);
    assert_int_equal(pub[0].host, 18080);
    assert_int_equal(pub[0].box, 8080);
    assert_int_equal(pub[1].proto, NET_PROTO_UDP);
    net_policy_rule rules[8];
    size_t count = net_policy_load(&view, (const uint16_t *)u"a.exe", 5, rules, 8, NULL);
    assert_int_equal(count, 2);
    net_query q;
    memset(&q, 0, sizeof q);
    q.dir = NET_DIR_IN;
    q.proto = NET_PROTO_TCP;
    q.addr.family = 4;
    q.addr.bytes[0] = 127;
    q.addr.bytes[3] = 1;
    q.port = 8080;
    policy_decision d;
    net_policy_decide(&view, rules, count, &q, &d);
    assert_true(d.is_default);
    policy_blob_free(blob);
    policy_free(p);

    /* Only open rules for every program publish; errors carry their column. */
    const char *bad_text = "[net]\n"
                           "deny publish:1:2\n"
                           "p.exe: open publish:1:2\n"
                           "open   publish:80:0\n";
    diags[0] = 0;
    p = NULL;
    assert_int_equal(policy_load_text("box.ini", bad_text, strlen(bad_text), &e, &p, &err), FVM_E_PARSE);
    static const char *const expected[] = {
        "box.ini:2:6: error: a publish rule is an open rule",
        "box.ini:3:13: error: a publish rule is the box's: it takes no program or group scope",
        "box.ini:4:19: error: bad box port",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr(diags, expected[i]))
            fail_msg("expected '%s' in:\n%s", expected[i], diags);
}

static int port_denied(const uint8_t *denied, unsigned port)
{
    return (denied[port / 8] >> (port % 8)) & 1;
}

/* What the kernel's floor may refuse (policy_net.h): only ports that no
 * program may reach on any host; an allowing rule that could win anywhere
 * keeps its ports open. */
/* Every [net] rule of the policy, whatever its scope. */
static void compile_every(const char *text, compiled *c)
{
    build(text, c);
    size_t bad = 9;
    c->count = net_policy_load_every(&c->view, c->rules, 64, &bad);
    assert_true(c->count <= 64);
    assert_int_equal(bad, 0);
}

static size_t mirror(const char *text, uint8_t *denied)
{
    compiled c;
    compile_every(text, &c);
    size_t n = net_policy_tcp_connect_denied(c.rules, c.count, denied);
    release(&c);
    return n;
}

static void tcp_connect_mirror_keeps_every_port_some_rule_may_allow(void **state)
{
    (void)state;
    static uint8_t denied[8192];
    /* No rule, or rules that never deny every host: nothing. */
    assert_int_equal(mirror("[net]\nopen tcp:*:80\n", denied), 0);
    assert_int_equal(mirror("[net]\ndeny tcp:10.0.0.0/8\ndeny tcp:*.tracker.net\n", denied), 0);
    /* One port, a range, for every host. */
    assert_int_equal(mirror("[net]\ndeny tcp:*:25\n", denied), 1);
    assert_true(port_denied(denied, 25) && !port_denied(denied, 24) && !port_denied(denied, 26));
    assert_int_equal(mirror("[net]\ndeny audit *:*:6000-6010\nhide tcp:*:7000\n", denied), 12);
    assert_true(port_denied(denied, 6000) && port_denied(denied, 6010) && port_denied(denied, 7000));
    /* Not TCP out: udp, in:, accept:, raw; nor scoped to one program. */
    assert_int_equal(mirror("[net]\ndeny udp:*\ndeny in:tcp:*\ndeny accept:tcp:*\ndeny raw:*\n"
                            "app.exe: deny tcp:*\n",
                            denied),
                     0);
    /* Everything denied but what is opened: the opened ports stay, any
     * host, any program's. */
    assert_int_equal(mirror("[net]\ndeny tcp:*\nopen tcp:127.0.0.1:8000-8999\nbrowser.exe: open tcp:*:443\n"
                            "ask tcp:*.example.com:22\nopen udp:*:53\n",
                            denied),
                     65535 - 1000 - 1 - 1);
    assert_true(port_denied(denied, 1) && port_denied(denied, 7999) && !port_denied(denied, 8000) &&
                !port_denied(denied, 8999) && port_denied(denied, 9000) && !port_denied(denied, 443) &&
                !port_denied(denied, 22) && port_denied(denied, 53) && port_denied(denied, 65535));
    assert_false(port_denied(denied, 0));
    /* An allowing rule that loses everywhere to the deny (same host, wider
     * range) does not keep its ports; one that wins does. */
    assert_int_equal(mirror("[net]\nopen tcp:*:1-1000\ndeny tcp:*:25\n", denied), 1);
    assert_int_equal(mirror("[net]\nopen tcp:*:25\ndeny tcp:*:1-1000\n", denied), 999);
    assert_false(port_denied(denied, 25));
    /* At equal rank the stricter action wins: the deny holds. */
    assert_int_equal(mirror("[net]\nopen tcp:*:25\ndeny tcp:*:25\n", denied), 1);
    /* "*" (tcp and udp anywhere) denies every port. */
    assert_int_equal(mirror("[net]\ndeny *\n", denied), 65535);
}

/* A whole-policy question (net_policy_offline, net_policy_udp_closed)
 * asked of the policy text. */
typedef int (*policy_question)(const net_policy_rule *rules, size_t count, uint8_t scratch[8192]);

static int ask(policy_question question, const char *text)
{
    compiled c;
    compile_every(text, &c);
    static uint8_t scratch[8192];
    int result = question(c.rules, c.count, scratch);
    release(&c);
    return result;
}

static int offline(const char *text)
{
    return ask(net_policy_offline, text);
}

static void offline_only_when_nothing_may_leave(void **state)
{
    (void)state;
    assert_true(offline("[net]\ndeny *\n"));
    assert_true(offline("[net]\ndeny tcp:*\ndeny udp:*\ndeny in:tcp:*\n"));
    assert_true(offline("[net]\ndeny *\nopen in:tcp:*:8080\nopen accept:tcp:*:8080\n"));   /* nobody can reach it */
    assert_false(offline("[net]\n"));                                                  /* the default allows */
    assert_false(offline("[net]\ndeny tcp:*\n"));                                      /* UDP may leave */
    assert_false(offline("[net]\ndeny *\nopen udp:*:53\n"));
    assert_false(offline("[net]\ndeny *\nopen tcp:localhost:8000\n"));                 /* the box's own loopback */
    assert_false(offline("[net]\ndeny *\napp.exe: open tcp:*:443\n"));
    assert_false(offline("[net]\ndeny *\nopen icmp:*\n"));
    assert_false(offline("[net]\ndeny *\nopen publish:18080:8080\n"));
}

static int udp_closed(const char *text)
{
    return ask(net_policy_udp_closed, text);
}

/* The box's server may be refused datagram sockets only when no program
 * may send or receive UDP anywhere: never stricter than the policy. */
static void udp_closed_only_when_no_program_may_use_udp(void **state)
{
    (void)state;
    assert_true(udp_closed("[net]\ndeny *\n"));
    assert_true(udp_closed("[net]\ndeny udp:*\n"));
    assert_true(udp_closed("[net]\ndeny udp:*\nopen tcp:*:443\n"));        /* TCP stays open */
    assert_true(udp_closed("[net]\ndeny out:udp:*\ndeny in:udp:*\n"));
    assert_true(udp_closed("[net]\ndeny *\nopen accept:tcp:*:8080\n"));
    assert_false(udp_closed("[net]\n"));                                    /* the default allows */
    assert_false(udp_closed("[net]\ndeny tcp:*\n"));
    assert_false(udp_closed("[net]\ndeny out:udp:*\n"));                   /* binds may receive */
    assert_false(udp_closed("[net]\ndeny in:udp:*\n"));
    assert_false(udp_closed("[net]\ndeny udp:*:1-65535\n"));               /* a bind of port 0 may */
    assert_false(udp_closed("[net]\ndeny udp:*\nopen udp:*:53\n"));
    assert_false(udp_closed("[net]\ndeny udp:*\nopen udp:10.0.0.1\n"));   /* one host */
    assert_false(udp_closed("[net]\ndeny udp:*\nopen in:udp:localhost:5353\n"));
    assert_false(udp_closed("[net]\ndeny udp:*\ndns.exe: open udp:*:53\n"));   /* one program */
    assert_false(udp_closed("[net]\ndeny udp:*\napp.exe: deny udp:*\nopen udp:*:53\n"));
    assert_false(udp_closed("[net]\napp.exe: deny udp:*\n"));               /* others may */
    assert_false(udp_closed("[net]\ndeny udp:*\nopen icmp:*\n"));          /* echo is a datagram socket */
    assert_false(udp_closed("[net]\ndeny udp:*\nopen raw:*\n"));
    assert_false(udp_closed("[net]\ndeny udp:*\nopen publish:udp:5353:53\n"));
    assert_true(udp_closed("[net]\ndeny udp:*\nopen publish:18080:8080\n"));   /* TCP published */
}

/* Whether the box's server may be refused an outgoing connection of proto
 * to "ADDR" ("10.1.2.3", "[::1]") and port, under the policy text. */
static int held(const char *text, uint8_t proto, const char *addr, uint16_t port)
{
    compiled c;
    compile_every(text, &c);
    net_addr a;
    assert_true(net_addr_parse(addr, strlen(addr), &a));
    int result = net_policy_connect_held(c.rules, c.count, proto, &a, port);
    release(&c);
    return result;
}

static int checks_needed(const char *text)
{
    compiled c;
    compile_every(text, &c);
    static uint8_t scratch[8192];
    int result = net_policy_connect_checks_needed(c.rules, c.count, net_policy_udp_closed(c.rules, c.count, scratch));
    release(&c);
    return result;
}

/* The server's connections are refused by address only where every
 * program is denied, whatever name an address came from. */
static void connects_held_by_address_only_where_no_program_may(void **state)
{
    (void)state;
    const uint8_t tcp = NET_PROTO_TCP, udp = NET_PROTO_UDP;
    const char *cidr = "[net]\ndeny tcp:10.0.0.0/8\n";
    assert_true(held(cidr, tcp, "10.1.2.3", 443));
    assert_false(held(cidr, tcp, "11.1.2.3", 443));
    assert_false(held(cidr, udp, "10.1.2.3", 53));                           /* TCP only */
    assert_true(held(cidr, tcp, "[::ffff:10.1.2.3]", 80));                   /* mapped IPv4 is IPv4 */
    assert_true(held("[net]\ndeny *:192.168.1.5:22\n", udp, "192.168.1.5", 22));
    assert_false(held("[net]\ndeny *:192.168.1.5:22\n", tcp, "192.168.1.5", 23));
    assert_true(held("[net]\ndeny tcp:[fe80::]/10\n", tcp, "[fe80::1]", 80));
    assert_true(held("[net]\nhide tcp:localhost:5432\n", tcp, "127.0.0.1", 5432));
    assert_true(held("[net]\ndeny udp:*:53\n", udp, "8.8.8.8", 53));         /* any host, UDP */
    /* The default allows; in: and accept: rules decide no connection. */
    assert_false(held("[net]\n", tcp, "10.1.2.3", 80));
    assert_false(held("[net]\ndeny in:tcp:10.0.0.0/8\ndeny accept:tcp:*\n", tcp, "10.1.2.3", 80));
    /* A more specific open, for every program or one, keeps it open. */
    assert_false(held("[net]\ndeny tcp:10.0.0.0/8\nopen tcp:10.1.2.3:443\n", tcp, "10.1.2.3", 443));
    assert_true(held("[net]\ndeny tcp:10.0.0.0/8\nopen tcp:10.1.2.3:443\n", tcp, "10.1.2.4", 443));
    assert_false(held("[net]\ndeny tcp:10.0.0.0/8\nbrowser.exe: open tcp:*:443\n", tcp, "10.1.2.3", 443));
    assert_false(held("[net]\ndeny tcp:10.0.0.0/8\nask tcp:10.1.0.0/16\n", tcp, "10.1.2.3", 443));
    /* A literal name outranks a CIDR: it may have resolved to this address. */
    assert_false(held("[net]\ndeny tcp:10.0.0.0/8\nopen tcp:intranet.corp\n", tcp, "10.1.2.3", 80));
    /* ...but not an address rule, nor a name rule for other ports. */
    assert_true(held("[net]\ndeny tcp:10.1.2.3\nopen tcp:intranet.corp\n", tcp, "10.1.2.3", 80));
    assert_true(held("[net]\ndeny tcp:10.0.0.0/8\nopen tcp:intranet.corp:443\n", tcp, "10.1.2.3", 80));
    /* A name deny is not held (no name is seen), nor a program's own. */
    assert_false(held("[net]\ndeny tcp:*.tracker.net\n", tcp, "10.1.2.3", 80));
    assert_false(held("[net]\napp.exe: deny tcp:10.0.0.0/8\n", tcp, "10.1.2.3", 80));
    /* Port 0 is no destination; raw and ICMP are not asked. */
    assert_false(held(cidr, tcp, "10.1.2.3", 0));
    assert_false(held("[net]\ndeny raw:10.0.0.0/8\n", NET_PROTO_RAW, "10.1.2.3", 1));

    /* Worth a check per connection: an address deny for every program, or
     * any UDP deny; TCP for any host is Landlock's, names are not seen. */
    assert_true(checks_needed(cidr));
    assert_true(checks_needed("[net]\ndeny tcp:localhost:5432\n"));
    assert_true(checks_needed("[net]\ndeny udp:*:53\n"));
    assert_true(checks_needed("[net]\ndeny udp:*:53\nopen tcp:*:443\n"));
    /* UDP closed altogether: the server gets no datagram socket to connect. */
    assert_false(checks_needed("[net]\ndeny *\nopen tcp:*:443\n"));
    assert_true(checks_needed("[net]\ndeny *\nopen tcp:*:443\ndeny tcp:10.0.0.0/8\n"));
    assert_false(checks_needed("[net]\n"));
    assert_false(checks_needed("[net]\ndeny tcp:*:25\n"));
    assert_false(checks_needed("[net]\ndeny tcp:*.tracker.net\n"));
    assert_false(checks_needed("[net]\napp.exe: deny tcp:10.0.0.0/8\n"));
    assert_false(checks_needed("[net]\ndeny in:tcp:10.0.0.0/8\nopen tcp:10.0.0.0/8\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pattern_forms_parse),
        cmocka_unit_test(malformed_patterns_are_refused_where_they_go_wrong),
        cmocka_unit_test(policy_errors_carry_file_line_column),
        cmocka_unit_test(matching_by_each_part),
        cmocka_unit_test(addresses_format),
        cmocka_unit_test(decisions_follow_precedence_and_scope),
        cmocka_unit_test(name_decisions_take_rules_for_every_port),
        cmocka_unit_test(too_many_rules_are_counted),
        cmocka_unit_test(publish_rules_parse_publish_and_decide_nothing),
        cmocka_unit_test(tcp_connect_mirror_keeps_every_port_some_rule_may_allow),
        cmocka_unit_test(offline_only_when_nothing_may_leave),
        cmocka_unit_test(udp_closed_only_when_no_program_may_use_udp),
        cmocka_unit_test(connects_held_by_address_only_where_no_program_may),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

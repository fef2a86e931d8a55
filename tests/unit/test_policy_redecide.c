/* test_policy_redecide.c - the broker decides [net] and [process] audit
 * claims again (core/policy_redecide.c, issue 17.7): a truthful claim is
 * confirmed, an allow by a made-up rule is forged (and the broker's own
 * decision comes back), FVM's own refusals are the sender's word, claims
 * the runtime never makes are refused, and every target form parses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/policy.h"
#include "core/policy_redecide.h"

static char diags[8192];

static void collect_diag(void *ctx, const policy_diag *d)
{
    char line[1024];
    policy_diag_format(d, line, sizeof line);
    strncat(diags, line, sizeof diags - strlen(diags) - 2);
    strcat(diags, "\n");
}

static const ntpath_volume volumes[] = {{(const uint16_t *)u"\\Device\\HarddiskVolume1", 23, 'C'}};
static ntpath_context path_ctx;

typedef struct compiled {
    policy *p;
    void *blob;
    size_t len;
    policy_view view;
} compiled;

static void compile(const char *text, compiled *c)
{
    memset(&path_ctx, 0, sizeof path_ctx);
    path_ctx.volumes = volumes;
    path_ctx.volume_count = 1;
    path_ctx.system_root.units = (const uint16_t *)u"C:\\Windows";
    path_ctx.system_root.len = 10;
    policy_env e;
    memset(&e, 0, sizeof e);
    e.path_ctx = &path_ctx;
    e.diag = collect_diag;
    fvm_error err = {0};
    diags[0] = 0;
    if (policy_load_text("policy.ini", text, strlen(text), &e, &c->p, &err) != FVM_OK)
        fail_msg("load: %s\n%s", err.message, diags);
    if (policy_compile(c->p, &c->blob, &c->len, &err) != FVM_OK || policy_blob_open(c->blob, c->len, &c->view, &err))
        fail_msg("compile: %s", err.message);
}

static void release(compiled *c)
{
    policy_blob_free(c->blob);
    policy_free(c->p);
}

static net_policy_rule scratch[32];

static redecide_result claim(const compiled *c, uint32_t type, const char *op, const char *decision, const char *rule,
                             const char *name, const char *target, redecide_outcome *out)
{
    redecide_claim k = {type, op, strlen(op), decision, strlen(decision), rule, strlen(rule), name, strlen(name),
                        target ? target : "", target ? strlen(target) : 0};
    static const uint16_t program[] = u"C:\\box\\app.exe";
    return policy_redecide(&c->view, &k, program, 14, scratch, 32, out);
}

static void net_claims(void **state)
{
    compiled c;
    compile("[net]\n"
            "deny audit out:tcp:10.0.0.0/8\n"       /* 2 */
            "open audit out:tcp:127.0.0.1:8080\n"   /* 3 */
            "deny audit out:*:*.bad.example\n"      /* 4 */
            "open out:tcp:192.168.1.1\n",           /* 5: not audited */
            &c);
    redecide_outcome o;
    /* truthful */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "deny", "policy.ini:2", "out:tcp:10.1.2.3:80", "out:tcp:10.1.2.3:80", &o),
                     REDECIDE_CONFIRMED);
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "open", "policy.ini:3", "out:tcp:127.0.0.1:8080", NULL, &o),
                     REDECIDE_CONFIRMED);
    /* an allow by a made-up rule: the broker's decision comes back */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "open", "made-up.ini:1", "out:tcp:10.1.2.3:80", NULL, &o),
                     REDECIDE_FORGED);
    assert_string_equal(o.decision, "deny");
    assert_string_equal(o.rule, "policy.ini:2");
    /* the right rule, the wrong decision */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "open", "policy.ini:2", "out:tcp:10.1.2.3:80", NULL, &o),
                     REDECIDE_FORGED);
    /* a decision the policy does not audit made no record */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "open", "policy.ini:5", "out:tcp:192.168.1.1:80", NULL, &o),
                     REDECIDE_FORGED);
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "open", "default", "out:tcp:8.8.8.8:53", NULL, &o),
                     REDECIDE_FORGED);
    assert_string_equal(o.rule, "default");
    /* raw sockets: refused by default, always audited */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "socket", "deny", "default", "out:raw:*", NULL, &o), REDECIDE_CONFIRMED);
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "socket", "open", "made-up.ini:9", "out:icmp:*", NULL, &o),
                     REDECIDE_FORGED);
    /* IPv6 */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "bind", "open", "x:1", "in:udp:[::1]:53", NULL, &o), REDECIDE_FORGED);
    assert_string_equal(o.decision, "open");
    assert_string_equal(o.rule, "default");
    /* name rules: resolving, and a connect to an address resolved from a name */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "resolve", "deny", "policy.ini:4", "name:www.bad.example", NULL, &o),
                     REDECIDE_CONFIRMED);
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "resolve", "open", "made-up:1", "name:www.bad.example", NULL, &o),
                     REDECIDE_FORGED);
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "deny", "policy.ini:4", "out:tcp:1.2.3.4:443",
                           "out:tcp:1.2.3.4:443|www.bad.example", &o),
                     REDECIDE_SENDERS_WORD);   /* only the sender resolved it */
    /* the family refusal */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "socket", "deny", "default", "family:1", NULL, &o), REDECIDE_CONFIRMED);
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "socket", "deny", "default", "family:2", NULL, &o), REDECIDE_REFUSED);
    /* a target that is not the name, or does not parse */
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "deny", "policy.ini:2", "out:tcp:10.1.2.3:80", "out:tcp:8.8.8.8:80", &o),
                     REDECIDE_REFUSED);
    assert_int_equal(claim(&c, POLICY_TYPE_NET, "connect", "open", "x:1", "somewhere", NULL, &o), REDECIDE_REFUSED);
    release(&c);
}

static void process_claims(void **state)
{
    compiled c;
    compile("[process]\n"
            "deny audit **\\powershell.exe\n"      /* 2 */
            "cow audit C:\\Tools\\**\n",           /* 3 */
            &c);
    redecide_outcome o;
    const char *ps = "\\??\\C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe";
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "start", "deny", "policy.ini:2", "powershell -c 1", ps, &o),
                     REDECIDE_CONFIRMED);
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "start", "cow", "made-up.ini:7", "powershell -c 1", ps, &o),
                     REDECIDE_FORGED);
    assert_string_equal(o.decision, "deny");
    assert_string_equal(o.rule, "policy.ini:2");
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "start", "cow", "policy.ini:3", "x", "\\??\\C:\\Tools\\x.exe", &o),
                     REDECIDE_CONFIRMED);
    /* an allow claimed without a target, or for an operation only ever refused */
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "start", "open", "made-up.ini:7", "x", NULL, &o), REDECIDE_REFUSED);
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "terminate", "open", "made-up.ini:7", "pid 4", NULL, &o),
                     REDECIDE_REFUSED);
    /* FVM's own refusals: the sender's word */
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "open-process", "deny", "default", "pid 4 \\??\\C:\\x.exe", NULL, &o),
                     REDECIDE_SENDERS_WORD);
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "no-floor", "open", "default", "floor", NULL, &o),
                     REDECIDE_SENDERS_WORD);
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "no-floor", "open", "made-up:1", "floor", NULL, &o),
                     REDECIDE_REFUSED);
    /* open of a process of the box: the name is the image */
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "open", "deny", "policy.ini:2", ps, NULL, &o), REDECIDE_CONFIRMED);
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "open", "open", "made-up.ini:1", ps, NULL, &o), REDECIDE_FORGED);
    release(&c);
    /* hash rules: the broker does not hash the image */
    compile("[process]\ndeny sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", &c);
    assert_int_equal(claim(&c, POLICY_TYPE_PROCESS, "start", "cow", "x:1", "x", "\\??\\C:\\x.exe", &o),
                     REDECIDE_SENDERS_WORD);
    release(&c);
}

static void net_targets_parse(void **state)
{
    net_query q;
    size_t head;
    assert_true(policy_redecide_net_target("out:tcp:10.1.2.3:80", 19, &q, &head));
    assert_int_equal(q.dir, NET_DIR_OUT);
    assert_int_equal(q.proto, NET_PROTO_TCP);
    assert_int_equal(q.port, 80);
    assert_int_equal(q.addr.family, 4);
    assert_int_equal(head, 19);
    const char *t = "accept:udp:[fe80::1]:65535|h.example";
    assert_true(policy_redecide_net_target(t, strlen(t), &q, &head));
    assert_int_equal(q.dir, NET_DIR_ACCEPT);
    assert_int_equal(q.addr.family, 6);
    assert_int_equal(q.port, 65535);
    assert_int_equal(q.host_len, 9);
    assert_int_equal(head, strlen("accept:udp:[fe80::1]:65535"));
    static const char *bad[] = {"out:tcp:10.1.2.3:65536", "out:tcp:10.1.2.3:", "out:tcp:10.1.2.3", "out:*:1.2.3.4:1",
                                "sideways:tcp:1.2.3.4:1", "out:tcp:[::1]", "out:tcp:[::1:80", "out:tcp:1.2.3.4:08",
                                "out:tcp:1.2.3.4:80|", "out:tcp:1.2.3.4:80|a b", "out:tcp:[1.2.3.4]:80", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (policy_redecide_net_target(bad[i], strlen(bad[i]), &q, &head))
            fail_msg("'%s' parsed", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(net_claims),
        cmocka_unit_test(process_claims),
        cmocka_unit_test(net_targets_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_brokermsg.c - the broker parses audit messages a boxed program can
 * forge (audit records, quota requests): arbitrary bytes must be refused or decoded within bounds, and a
 * decoded message must encode back to the same bytes. The target of a
 * [net] record (FVMAUD02) is parsed back into a query by the broker
 * (core/policy_redecide.c): it is fed the decoded target and the raw bytes. */
#include <stdint.h>
#include <string.h>

#include "core/brokermsg.h"
#include "core/policy_redecide.h"

/* A small policy with [net] and [process] rules, compiled once: every
 * decoded record is decided again against it, as the broker does. */
static policy_view g_view;
static int g_have_view = -1;

static void load_policy(void)
{
    static const ntpath_volume volumes[] = {{(const uint16_t *)u"\\Device\\HarddiskVolume1", 23, 'C'}};
    static ntpath_context ctx;
    ctx.volumes = volumes;
    ctx.volume_count = 1;
    ctx.system_root.units = (const uint16_t *)u"C:\\Windows";
    ctx.system_root.len = 10;
    policy_env e;
    memset(&e, 0, sizeof e);
    e.path_ctx = &ctx;
    static const char text[] = "[net]\ndeny audit out:tcp:10.0.0.0/8\nopen audit out:*:*.example.com\n"
                               "[process]\ndeny audit **\\x.exe\ncow audit C:\\Tools\\**\n";
    static policy *p;      /* kept for the whole run (static: not a leak) */
    static void *blob;
    static size_t len;
    fvm_error err;
    g_have_view = policy_load_text("policy.ini", text, sizeof text - 1, &e, &p, &err) == FVM_OK &&
                  policy_compile(p, &blob, &len, &err) == FVM_OK && policy_blob_open(blob, len, &g_view, &err) == FVM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_have_view < 0)
        load_policy();
    brokermsg_audit m;
    brokermsg_quota q;
    fvm_error err;
    if (brokermsg_quota_decode(data, size, &q, &err) == FVM_OK) {
        uint8_t back[BROKERMSG_RESERVE_SIZE];
        if (brokermsg_quota_encode(&q, back, sizeof back) != size || memcmp(back, data, size) != 0)
            __builtin_trap();
    }
    /* Index writes (the broker is the index's only writer): decoded within
     * bounds, and encoded back to the same bytes. Copied to an aligned
     * buffer, as the broker's own is. */
    static uint16_t aligned[BROKERMSG_MAX / 2 + 1];
    if (size <= BROKERMSG_MAX) {
        memcpy(aligned, data, size);
        brokermsg_index ix;
        if (brokermsg_index_decode((const uint8_t *)aligned, size, &ix, &err) == FVM_OK) {
            static uint8_t back[BROKERMSG_MAX];
            if (brokermsg_index_encode(&ix, back, sizeof back) != size || memcmp(back, aligned, size) != 0)
                __builtin_trap();
        }
    }
    net_query nq;
    size_t head;
    if (policy_redecide_net_target((const char *)data, size, &nq, &head) && (head > size || nq.host_len > size))
        __builtin_trap();
    if (brokermsg_audit_decode(data, size, &m, &err) != FVM_OK)
        return 0;
    if (m.target.len && policy_redecide_net_target(m.target.text, m.target.len, &nq, &head) &&
        (head > m.target.len || (nq.host && (nq.host < m.target.text || nq.host + nq.host_len > m.target.text + m.target.len))))
        __builtin_trap();
    if (g_have_view) {
        static net_policy_rule rules[16];
        redecide_claim c = {m.type,          m.op.text,   m.op.len,   m.decision.text, m.decision.len, m.rule.text,
                            m.rule.len,      m.name.text, m.name.len, m.target.text,   m.target.len};
        redecide_outcome o;
        static const uint16_t program[] = u"C:\\app.exe";
        redecide_result r = policy_redecide(&g_view, &c, program, 10, rules, 16, &o);
        if (r > REDECIDE_REFUSED || !memchr(o.decision, 0, sizeof o.decision) || !memchr(o.rule, 0, sizeof o.rule))
            __builtin_trap();
    }
    static uint8_t again[BROKERMSG_MAX];
    size_t n = brokermsg_audit_encode(&m, again, sizeof again);
    if (n != size || memcmp(again, data, size) != 0)
        __builtin_trap();
    return 0;
}

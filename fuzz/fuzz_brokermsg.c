/* fuzz_brokermsg.c - the broker parses audit messages a boxed program can
 * forge (audit records, quota requests): arbitrary bytes must be refused or decoded within bounds, and a
 * decoded message must encode back to the same bytes. The target of a
 * [net] record (FVMAUD02) is parsed back into a query by the broker
 * (core/policy_redecide.c): it is fed the decoded target and the raw bytes. */
#include <stdint.h>
#include <string.h>

#include "core/brokermsg.h"
#include "core/policy_redecide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    brokermsg_audit m;
    brokermsg_quota q;
    fvm_error err;
    if (brokermsg_quota_decode(data, size, &q, &err) == FVM_OK) {
        uint8_t back[BROKERMSG_RESERVE_SIZE];
        if (brokermsg_quota_encode(&q, back, sizeof back) != size || memcmp(back, data, size) != 0)
            __builtin_trap();
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
    static uint8_t again[BROKERMSG_MAX];
    size_t n = brokermsg_audit_encode(&m, again, sizeof again);
    if (n != size || memcmp(again, data, size) != 0)
        __builtin_trap();
    return 0;
}

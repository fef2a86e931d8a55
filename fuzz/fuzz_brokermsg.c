/* fuzz_brokermsg.c - the broker parses audit messages a boxed program can
 * forge (audit records, quota requests): arbitrary bytes must be refused or decoded within bounds, and a
 * decoded message must encode back to the same bytes. */
#include <stdint.h>
#include <string.h>

#include "core/brokermsg.h"

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
    if (brokermsg_audit_decode(data, size, &m, &err) != FVM_OK)
        return 0;
    static uint8_t again[BROKERMSG_MAX];
    size_t n = brokermsg_audit_encode(&m, again, sizeof again);
    if (n != size || memcmp(again, data, size) != 0)
        __builtin_trap();
    return 0;
}

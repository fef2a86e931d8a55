/* fuzz_iobucket.c - libFuzzer target for the I/O limit token buckets: the
 * broker feeds them amounts a boxed process asked for (outside input) and
 * times from its clock. Any sequence of inits, rate changes, takes and
 * give-backs, with any numbers and times going any way: never a crash or
 * an overflow (UBSan), the level stays within [-2^62, burst], a wait is
 * the debt over the rate, a lease never exceeds the burst. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/iobucket.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void check_bucket(const io_bucket *b)
{
    CHECK(b->rate <= IO_BUCKET_RATE_MAX);
    if (!b->rate)
        return;
    int64_t burst = (int64_t)b->rate * 100000;
    if (burst < 1000000)
        burst = 1000000;
    CHECK(b->level <= burst && b->level >= -(1ll << 62));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    io_bucket b;
    io_limiter l;
    io_bucket_init(&b, 1000, 0);
    io_limiter_init(&l, 1 << 20, 100, 0);
    for (size_t at = 0; at + 17 <= size; at += 17) {
        uint8_t op = data[at];
        uint64_t a = rd64(data + at + 1), t = rd64(data + at + 9);
        switch (op % 7) {
        case 0:
            io_bucket_init(&b, a, t);
            break;
        case 1:
            io_bucket_set_rate(&b, a, t);
            break;
        case 2: {
            uint64_t wait = io_bucket_take(&b, a, t);
            if (!b.rate)
                CHECK(wait == 0);
            else if (b.level >= 0)
                CHECK(wait == 0);
            else
                CHECK(wait == ((uint64_t)(-b.level) + b.rate - 1) / b.rate);
            break;
        }
        case 3:
            io_bucket_give(&b, a, t);
            break;
        case 4: {
            uint64_t lease = io_bucket_lease(&b, a);
            if (!b.rate)
                CHECK(lease == 0);
            else
                CHECK(lease <= (b.rate / 10 > 1 ? b.rate / 10 : 1));
            break;
        }
        case 5:
            io_limiter_set(&l, a, t >> 20, t);
            break;
        default: {
            int which = -1;
            uint64_t wait = io_limiter_take(&l, (io_direction)(op & 1), a, t & 0xffff, t, &which);
            CHECK(which >= 0 && which <= 2 && (wait == 0) == (which == 0));
            break;
        }
        }
        check_bucket(&b);
        for (int d = 0; d < 2; d++) {
            check_bucket(&l.bytes[d]);
            check_bucket(&l.ops[d]);
        }
    }
    return 0;
}

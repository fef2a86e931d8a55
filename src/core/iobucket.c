/* iobucket.c - token buckets for a box's file I/O limits (iobucket.h).
 *
 * The level is kept in millionths of a token so that a fill is an exact
 * integer product: rate (tokens/s) times elapsed microseconds is the level
 * gained in millionths. A debt is capped (IO_DEBT_MAX) so that no sum can
 * overflow whatever a taker asks; the wait is the debt divided by the rate. */
#include "core/iobucket.h"

#define MILLION 1000000ll
#define IO_DEBT_MAX (1ll << 62)

static int64_t burst_of(uint64_t rate)
{
    /* A tenth of a second's worth, at least one token. */
    int64_t burst = (int64_t)rate * (MILLION / 10);
    return burst < MILLION ? MILLION : burst;
}

static uint64_t clamp_rate(uint64_t rate)
{
    return rate > IO_BUCKET_RATE_MAX ? IO_BUCKET_RATE_MAX : rate;
}

static void fill(io_bucket *b, uint64_t now_us)
{
    if (now_us <= b->last_us) {
        return;   /* time never goes back; an equal or older time adds nothing */
    }
    uint64_t elapsed = now_us - b->last_us;
    b->last_us = now_us;
    if (!b->rate)
        return;
    int64_t burst = burst_of(b->rate);
    /* Enough time to pay any debt and fill up: no product needed. */
    if (elapsed >= (uint64_t)(IO_DEBT_MAX / (int64_t)b->rate)) {
        b->level = burst;
        return;
    }
    b->level += (int64_t)(elapsed * b->rate);
    if (b->level > burst)
        b->level = burst;
}

void io_bucket_init(io_bucket *b, uint64_t rate, uint64_t now_us)
{
    b->rate = clamp_rate(rate);
    b->level = b->rate ? burst_of(b->rate) : 0;
    b->last_us = now_us;
}

void io_bucket_set_rate(io_bucket *b, uint64_t rate, uint64_t now_us)
{
    rate = clamp_rate(rate);
    fill(b, now_us);
    if (rate == b->rate)
        return;
    if (!b->rate) {
        io_bucket_init(b, rate, now_us);
        return;
    }
    b->rate = rate;
    if (!rate) {
        b->level = 0;
        return;
    }
    int64_t burst = burst_of(rate);
    if (b->level > burst)
        b->level = burst;
}

uint64_t io_bucket_take(io_bucket *b, uint64_t n, uint64_t now_us)
{
    if (!b->rate)
        return 0;
    fill(b, now_us);
    if (n > IO_BUCKET_TAKE_MAX)
        n = IO_BUCKET_TAKE_MAX;
    int64_t cost = (int64_t)n * MILLION;
    if (b->level - cost < -IO_DEBT_MAX)
        b->level = -IO_DEBT_MAX;
    else
        b->level -= cost;
    if (b->level >= 0)
        return 0;
    uint64_t debt = (uint64_t)(-b->level);
    return (debt + b->rate - 1) / b->rate;
}

void io_bucket_give(io_bucket *b, uint64_t n, uint64_t now_us)
{
    if (!b->rate)
        return;
    fill(b, now_us);
    if (n > IO_BUCKET_TAKE_MAX)
        n = IO_BUCKET_TAKE_MAX;
    int64_t burst = burst_of(b->rate);
    b->level += (int64_t)n * MILLION;
    if (b->level > burst)
        b->level = burst;
}

uint64_t io_bucket_lease(const io_bucket *b, uint64_t min)
{
    if (!b->rate)
        return 0;
    uint64_t lease = b->rate / 32;
    uint64_t burst = (uint64_t)burst_of(b->rate) / MILLION;
    if (lease < min)
        lease = min;
    if (lease > burst)
        lease = burst;
    return lease;
}

void io_limiter_init(io_limiter *l, uint64_t bandwidth, uint64_t ops, uint64_t now_us)
{
    for (int d = 0; d < 2; d++) {
        io_bucket_init(&l->bytes[d], bandwidth, now_us);
        io_bucket_init(&l->ops[d], ops, now_us);
    }
}

void io_limiter_set(io_limiter *l, uint64_t bandwidth, uint64_t ops, uint64_t now_us)
{
    for (int d = 0; d < 2; d++) {
        io_bucket_set_rate(&l->bytes[d], bandwidth, now_us);
        io_bucket_set_rate(&l->ops[d], ops, now_us);
    }
}

uint64_t io_limiter_take(io_limiter *l, io_direction dir, uint64_t bytes, uint64_t ops, uint64_t now_us,
                         int *which_out)
{
    int d = dir == IO_WRITE ? 1 : 0;
    uint64_t wait_bytes = bytes ? io_bucket_take(&l->bytes[d], bytes, now_us) : 0;
    uint64_t wait_ops = ops ? io_bucket_take(&l->ops[d], ops, now_us) : 0;
    if (which_out)
        *which_out = !wait_bytes && !wait_ops ? 0 : wait_bytes >= wait_ops ? 1 : 2;
    return wait_bytes > wait_ops ? wait_bytes : wait_ops;
}

/* test_iobucket.c - the I/O limit token buckets (core/iobucket.h): the
 * long-run rate is the limit, concurrent takers queue, a burst is bounded,
 * rate changes and extreme asks behave, reads and writes are separate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/iobucket.h"

#define SEC 1000000ull

static void test_unlimited_never_waits(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 0, 5);
    for (int i = 0; i < 100; i++)
        assert_int_equal(io_bucket_take(&b, 1ull << 30, 5), 0);
    assert_int_equal(io_bucket_lease(&b, 4096), 0);
}

static void test_burst_then_rate(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 1000, 0);          /* 1000 tokens/s, burst 100 */
    assert_int_equal(io_bucket_take(&b, 100, 0), 0);
    /* Empty: one more token waits a millisecond. */
    assert_int_equal(io_bucket_take(&b, 1, 0), 1000);
    /* And 999 more wait a second in all. */
    assert_int_equal(io_bucket_take(&b, 999, 0), SEC);
    /* A second later the debt is paid, nothing more. */
    assert_int_equal(io_bucket_take(&b, 0, SEC), 0);
    assert_int_equal(io_bucket_take(&b, 1, SEC), 1000);
}

/* A taker that waits what it is told moves rate tokens a second. */
static void test_long_run_rate(void **state)
{
    io_bucket b;
    uint64_t now = 1000;
    io_bucket_init(&b, 8ull << 20, now);   /* 8 MiB/s */
    uint64_t moved = 0;
    while (moved < (48ull << 20)) {
        now += io_bucket_take(&b, 65536, now);
        moved += 65536;
        now += 20;   /* the I/O itself */
    }
    double seconds = (double)(now - 1000) / 1e6;
    /* 48 MiB at 8 MiB/s: 6 s less the first burst (0.1 s). */
    assert_true(seconds > 5.85 && seconds < 6.05);
}

/* Two takers interleaved share the rate: together they move rate a second. */
static void test_shared_by_two(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 1000, 0);
    uint64_t ready[2] = {0, 0};
    uint64_t moved = 0;
    while (moved < 10000) {
        int who = ready[0] <= ready[1] ? 0 : 1;
        ready[who] += io_bucket_take(&b, 10, ready[who]);
        moved += 10;
    }
    uint64_t end = ready[0] > ready[1] ? ready[0] : ready[1];
    assert_true(end > 9 * SEC && end < 11 * SEC);
}

static void test_idle_does_not_hoard(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 1000, 0);
    /* An hour idle fills only the burst. */
    assert_int_equal(io_bucket_take(&b, 100, 3600 * SEC), 0);
    assert_true(io_bucket_take(&b, 100, 3600 * SEC) >= 99000);
}

static void test_give_back(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 1000, 0);
    assert_int_equal(io_bucket_take(&b, 300, 0), 200000);
    io_bucket_give(&b, 200, 0);
    assert_int_equal(io_bucket_take(&b, 0, 0), 0);
    /* Given back beyond the burst: capped. */
    io_bucket_give(&b, 1000000, 0);
    assert_int_equal(io_bucket_take(&b, 100, 0), 0);
    assert_true(io_bucket_take(&b, 1, 0) > 0);
}

static void test_set_rate(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 1000, 0);
    io_bucket_take(&b, 1100, 0);            /* a second of debt */
    io_bucket_set_rate(&b, 2000, 0);        /* the debt is paid twice as fast */
    assert_int_equal(io_bucket_take(&b, 0, 0), 500000);
    io_bucket_set_rate(&b, 0, 0);           /* lifted: no wait */
    assert_int_equal(io_bucket_take(&b, 1000000, 0), 0);
    io_bucket_set_rate(&b, 10, 0);          /* set again: starts full */
    assert_int_equal(io_bucket_take(&b, 1, 0), 0);
    assert_int_equal(io_bucket_take(&b, 1, 0), 100000);
}

static void test_extremes(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 1, 0);               /* one token a second */
    for (int i = 0; i < 64; i++)
        io_bucket_take(&b, UINT64_MAX, 0);  /* capped, never wraps */
    uint64_t wait = io_bucket_take(&b, 0, 0);
    assert_true(wait > 0);
    /* Far in the future every debt is paid. */
    assert_int_equal(io_bucket_take(&b, 1, UINT64_MAX / 2), 0);
    /* Time going back adds nothing and breaks nothing. */
    assert_int_equal(io_bucket_take(&b, 0, 5), 0);
    io_bucket_init(&b, UINT64_MAX, 0);       /* cut to IO_BUCKET_RATE_MAX */
    assert_int_equal(b.rate, IO_BUCKET_RATE_MAX);
    assert_int_equal(io_bucket_take(&b, 1ull << 30, 0), 0);
    /* At the highest rate, the most one take asks (2^40) after a full
     * bucket (a tenth of a second's worth) waits the other 0.9 s. */
    assert_int_equal(io_bucket_take(&b, UINT64_MAX, UINT64_MAX), 900000);
}

static void test_lease(void **state)
{
    io_bucket b;
    io_bucket_init(&b, 8ull << 20, 0);
    assert_int_equal(io_bucket_lease(&b, 4096), (8ull << 20) / 32);
    io_bucket_init(&b, 500, 0);
    assert_int_equal(io_bucket_lease(&b, 1), 15);
    io_bucket_init(&b, 5, 0);
    assert_int_equal(io_bucket_lease(&b, 1), 1);     /* burst is one token */
    io_bucket_init(&b, 4096, 0);
    assert_int_equal(io_bucket_lease(&b, 65536), 409);   /* never more than the burst */
}

static void test_limiter_directions(void **state)
{
    io_limiter l;
    int which = -1;
    io_limiter_init(&l, 1000, 10, 0);
    /* Reads and writes have their own buckets. */
    assert_int_equal(io_limiter_take(&l, IO_READ, 100, 1, 0, &which), 0);
    assert_int_equal(which, 0);
    assert_int_equal(io_limiter_take(&l, IO_WRITE, 100, 1, 0, &which), 0);
    assert_int_equal(io_limiter_take(&l, IO_READ, 100, 0, 0, &which), 100000);
    assert_int_equal(which, 1);
    /* Ops: burst 1, 10/s: the second op waits 100 ms, more than 1 byte does. */
    assert_int_equal(io_limiter_take(&l, IO_WRITE, 0, 1, 0, &which), 100000);
    assert_int_equal(which, 2);
    io_limiter_set(&l, 0, 0, 0);
    assert_int_equal(io_limiter_take(&l, IO_WRITE, 1ull << 30, 1000, 0, &which), 0);
    assert_int_equal(which, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited_never_waits), cmocka_unit_test(test_burst_then_rate),
        cmocka_unit_test(test_long_run_rate),          cmocka_unit_test(test_shared_by_two),
        cmocka_unit_test(test_idle_does_not_hoard),    cmocka_unit_test(test_give_back),
        cmocka_unit_test(test_set_rate),               cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_lease),                  cmocka_unit_test(test_limiter_directions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

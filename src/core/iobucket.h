/* iobucket.h - the token buckets that hold a box's file I/O to its limits
 * (issue 12: io-bandwidth, io-ops), kept by the broker.
 *
 * One bucket per limit and direction: read bytes, write bytes, read ops,
 * write ops (reads and writes are limited separately, like cgroup v2's
 * rbps/wbps: a copy of N MiB at B MiB/s takes N/B s). A bucket fills at
 * its rate up to a burst of a tenth of a second's worth and is drained by
 * what is taken. A take is never refused: the bucket goes into debt and the
 * taker is told how long to wait before it may go on, so concurrent takers
 * queue in the order they asked and the long-run rate is the limit however
 * many processes share it. Time is the caller's (microseconds, any origin,
 * never going back); nothing here reads a clock, so it is portable and
 * tested with made-up times. */
#ifndef FVM_CORE_IOBUCKET_H
#define FVM_CORE_IOBUCKET_H

#include <stdint.h>

typedef struct io_bucket {
    uint64_t rate;       /* tokens per second; 0: no limit */
    int64_t level;       /* tokens now, in millionths (rate * microseconds); negative: debt */
    uint64_t last_us;    /* time of the last fill */
} io_bucket;

typedef enum io_direction { IO_READ = 0, IO_WRITE = 1 } io_direction;

typedef struct io_limiter {
    io_bucket bytes[2];  /* by io_direction */
    io_bucket ops[2];
} io_limiter;

/* The most a single take may ask for (a larger ask is cut to this): keeps
 * every product below 2^63. */
#define IO_BUCKET_TAKE_MAX (1ull << 40)
/* The highest rate accepted (higher is cut to it). */
#define IO_BUCKET_RATE_MAX (1ull << 40)

/* A bucket at rate (0: unlimited), full, as of now_us. */
void io_bucket_init(io_bucket *b, uint64_t rate, uint64_t now_us);

/* Changes the rate (fvm set on a running box): what is in the bucket stays,
 * cut to the new burst; a debt is kept (it was taken). */
void io_bucket_set_rate(io_bucket *b, uint64_t rate, uint64_t now_us);

/* Takes n tokens at now_us; returns how long the taker must wait, in
 * microseconds, before using them (0: at once). Unlimited: always 0. */
uint64_t io_bucket_take(io_bucket *b, uint64_t n, uint64_t now_us);

/* Gives back n tokens that were taken and not used (capped at the burst). */
void io_bucket_give(io_bucket *b, uint64_t n, uint64_t now_us);

/* The limiter of a box: bandwidth (bytes/s) and ops (/s), each for reads
 * and for writes; 0 is no limit. */
void io_limiter_init(io_limiter *l, uint64_t bandwidth, uint64_t ops, uint64_t now_us);
void io_limiter_set(io_limiter *l, uint64_t bandwidth, uint64_t ops, uint64_t now_us);

/* Takes bytes and ops for one direction; the wait is the longer of the two
 * buckets' waits. which_out (may be NULL) says which limit made the wait:
 * 0 none, 1 bandwidth, 2 ops. */
uint64_t io_limiter_take(io_limiter *l, io_direction dir, uint64_t bytes, uint64_t ops, uint64_t now_us,
                         int *which_out);

/* A lease size: how many tokens a process should take beyond its need so
 * that it asks about 32 times a second at full rate (at least min, and not
 * more than the burst). 0 for an unlimited bucket. */
uint64_t io_bucket_lease(const io_bucket *b, uint64_t min);

#endif

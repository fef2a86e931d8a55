/* brokermsg.h - messages boxed processes send to their box's broker.
 *
 * An audit record travels from the runtime (which decided) to the broker
 * (the box's single audit writer) as one message on the broker's control
 * pipe. The broker treats it as outside input: a boxed program can write
 * anything to that pipe. The format is binary and length-prefixed, so the
 * parser only checks bounds; every string is UTF-8, not NUL-terminated.
 *
 *   "FVMAUD01"  8 bytes
 *   uint32 type           policy_type
 *   uint32 pid
 *   uint16 op_len, decision_len, rule_len, image_len
 *   uint32 name_len
 *   op, decision, rule, image, name   the strings, in this order
 *
 * The storage quota's authority is the broker (broker/quota.c): a process
 * asks it for bytes before it grows a box file, and tells it when it freed
 * some. Both are fixed-size:
 *
 *   "FVMQRS01" uint64 need, uint64 leftover    reserve; reply: uint64 granted
 *                                              (0: refused, else >= need)
 *   "FVMQFR01" uint64 bytes                    freed (a hint, no reply)
 *
 * leftover is what the process still holds of earlier grants; the broker
 * believes it only up to what it granted that process.
 */
#ifndef FVM_CORE_BROKERMSG_H
#define FVM_CORE_BROKERMSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define BROKERMSG_AUDIT_MAGIC "FVMAUD01"
/* Sent once on a new audit connection; the broker answers 4 bytes after it
 * has taken the sender's pid and image from the pipe (the sender is alive
 * while it waits, so a record sent just before it exits still has them). */
#define BROKERMSG_HELLO "FVMHELO1"
#define BROKERMSG_AUDIT_HEADER 28
#define BROKERMSG_MAX (64 * 1024)

typedef struct brokermsg_text {
    const char *text;
    size_t len;
} brokermsg_text;

typedef struct brokermsg_audit {
    uint32_t type, pid;
    brokermsg_text op, decision, rule, image, name;
} brokermsg_audit;

/* Writes the message into out (cap bytes); returns its size, 0 if it does not fit. */
size_t brokermsg_audit_encode(const brokermsg_audit *msg, uint8_t *out, size_t cap);

/* Parses a message; the texts point into buf. FVM_E_INVALID with the
 * offset of the problem for anything malformed. */
fvm_status brokermsg_audit_decode(const uint8_t *buf, size_t len, brokermsg_audit *out, fvm_error *err);

/* 1 when buf starts like an audit message. */
int brokermsg_is_audit(const uint8_t *buf, size_t len);

#define BROKERMSG_RESERVE_MAGIC "FVMQRS01"
#define BROKERMSG_FREED_MAGIC   "FVMQFR01"
#define BROKERMSG_RESERVE_SIZE  24
#define BROKERMSG_FREED_SIZE    16

typedef struct brokermsg_quota {
    enum { BROKERMSG_RESERVE = 1, BROKERMSG_FREED = 2 } kind;
    uint64_t bytes;      /* RESERVE: need; FREED: bytes freed */
    uint64_t leftover;   /* RESERVE only */
} brokermsg_quota;

/* Writes the message into out (cap >= its size); returns its size, 0 if not. */
size_t brokermsg_quota_encode(const brokermsg_quota *msg, uint8_t *out, size_t cap);

/* 1 when buf starts like a quota message. */
int brokermsg_is_quota(const uint8_t *buf, size_t len);

/* Parses a quota message; FVM_E_INVALID for a wrong size or magic, or a
 * need above 2^62 (no file grows that much at once). */
fvm_status brokermsg_quota_decode(const uint8_t *buf, size_t len, brokermsg_quota *out, fvm_error *err);

#endif

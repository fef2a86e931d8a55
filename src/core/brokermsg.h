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
 */
#ifndef FVM_CORE_BROKERMSG_H
#define FVM_CORE_BROKERMSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define BROKERMSG_AUDIT_MAGIC "FVMAUD01"
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

#endif

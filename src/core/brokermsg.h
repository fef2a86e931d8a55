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
 * A record whose decision is not a plain name match (a socket operation, a
 * process start) also carries its target, what the policy decided on, so
 * that the broker can decide it again (issue 17.7): then the magic is
 * "FVMAUD02", the header has a uint16 target_len and two zero bytes after
 * name_len (BROKERMSG_AUDIT2_HEADER), and the target follows the name. A
 * message without a target is always written as FVMAUD01 (one encoding per
 * message: FVMAUD02 with an empty target is refused).
 *   target of [net] records:     the name ("out:tcp:10.1.2.3:80"), then
 *                                 "|" and the host name the address was
 *                                 resolved from, when there is one
 *   target of [process] starts:  the image's canonical file name
 *                                 ("\??\C:\dir\x.exe"; the name is the
 *                                 command line)
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
#define BROKERMSG_AUDIT2_MAGIC "FVMAUD02"
#define BROKERMSG_AUDIT_HEADER 28
#define BROKERMSG_AUDIT2_HEADER 32
#define BROKERMSG_TARGET_MAX 1024
#define BROKERMSG_MAX (64 * 1024)

typedef struct brokermsg_text {
    const char *text;
    size_t len;
} brokermsg_text;

typedef struct brokermsg_audit {
    uint32_t type, pid;
    brokermsg_text op, decision, rule, image, name;
    brokermsg_text target;   /* empty: none (FVMAUD01) */
} brokermsg_audit;

/* Writes the message into out (cap bytes); returns its size, 0 if it does not fit. */
size_t brokermsg_audit_encode(const brokermsg_audit *msg, uint8_t *out, size_t cap);

/* Parses a message; the texts point into buf. FVM_E_INVALID with the
 * offset of the problem for anything malformed. */
fvm_status brokermsg_audit_decode(const uint8_t *buf, size_t len, brokermsg_audit *out, fvm_error *err);

/* 1 when buf starts like an audit message (either version). */
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

/* Box index writes (issue 17.7: the broker is the index's only writer;
 * broker/index.c, runtime/file_index.c). A boxed process maps the index
 * read-only and asks the broker for every change:
 *
 *   "FVMIDX01"  8 bytes
 *   uint32 op              BROKERMSG_INDEX_COPY_UP .. _UPDATE
 *   uint32 flags           boxindex_info.flags
 *   uint64 base_size, int64 base_mtime, 32 bytes base_hash
 *   uint16 key_len         units of the key (and of its path)
 *   uint16 to_len          units of the rename target's key (rename only, else 0)
 *   uint32 paths           bit 0: the key's original-case path follows it,
 *                          bit 1: the same for the target; no other bit
 *   key, [path], [to_key, [to_path]]   UTF-16LE units
 *
 * reply: uint32 version (1), uint32 fvm_status of the boxindex call
 * (the broker grows the index itself; FVM_E_RANGE means it could not). */
#define BROKERMSG_INDEX_MAGIC  "FVMIDX01"
#define BROKERMSG_INDEX_HEADER 72
#define BROKERMSG_INDEX_MAX_UNITS 8192   /* more than BOXINDEX_MAX_KEY_UNITS */

typedef enum brokermsg_index_op {
    BROKERMSG_INDEX_COPY_UP = 1,
    BROKERMSG_INDEX_CREATE,
    BROKERMSG_INDEX_DELETE,
    BROKERMSG_INDEX_RENAME,
    BROKERMSG_INDEX_UPDATE
} brokermsg_index_op;

typedef struct brokermsg_index {
    uint32_t op, flags;
    uint64_t base_size;
    int64_t base_mtime;
    uint8_t base_hash[32];
    const uint16_t *key, *path;         /* path NULL: none */
    size_t len;
    const uint16_t *to_key, *to_path;   /* rename only */
    size_t to_len;
} brokermsg_index;

/* Writes the message into out; returns its size, 0 if it does not fit or
 * is not well-formed (an unknown op, a rename without a target, a target
 * on another op, an empty key, a key over BROKERMSG_INDEX_MAX_UNITS). */
size_t brokermsg_index_encode(const brokermsg_index *msg, uint8_t *out, size_t cap);
int brokermsg_is_index(const uint8_t *buf, size_t len);
/* Parses one; the units point into buf (which must be 2-byte aligned for
 * them to be read as uint16_t: the caller's buffer is). FVM_E_INVALID with
 * the offset for anything malformed. */
fvm_status brokermsg_index_decode(const uint8_t *buf, size_t len, brokermsg_index *out, fvm_error *err);

#endif

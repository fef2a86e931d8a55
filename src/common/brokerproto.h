/* brokerproto.h - the control pipe between fvm.exe and a box's broker.
 *
 * One request per connection on the box's message-mode pipe
 * (fvm_box_object_name(FVM_OBJ_PIPE)). Version 1 knows one request:
 *   request  "members"            (ASCII, no terminator)
 *   reply    uint32 version = 1, uint32 count, count x uint32 pid
 * The pid list is the broker's own account of box membership: the job's
 * process list (children that inherit the job included), with the job's
 * completion-port messages as the fast path (broker/main.c). */
#ifndef FVM_COMMON_BROKERPROTO_H
#define FVM_COMMON_BROKERPROTO_H

#include <stdint.h>

#define FVM_BROKER_PROTO_VERSION 1
#define FVM_BROKER_MAX_MEMBERS   4096
#define FVM_BROKER_REQ_MEMBERS   "members"
/* A boxed process about to start another, in a box with a process quota:
 *   request  "start"
 *   reply    uint32 version = 1, uint32 NTSTATUS (0: granted; else
 *            STATUS_QUOTA_EXCEEDED, which Windows gives for a job's
 *            active-process limit)
 * The broker counts live members plus the grants not yet seen as a new
 * process of the job, under its lock, so concurrent starts cannot both take
 * the last slot. */
#define FVM_BROKER_REQ_START     "start"
/* The start a grant was given for failed before any process joined the
 * job (the real creation failed, or Wine ran a program that is not a
 * Windows process): the grant is given back at once instead of holding a
 * slot until it expires.
 *   request  "unstart"
 *   reply    uint32 version = 1, uint32 0 */
#define FVM_BROKER_REQ_UNSTART   "unstart"

typedef struct fvm_members_reply {
    uint32_t version;
    uint32_t count;
    uint32_t pids[FVM_BROKER_MAX_MEMBERS];
} fvm_members_reply;

/* Resource limits (issue 12, broker/limits.c). A boxed process of a box
 * with a memory limit asks before it commits memory beyond what it holds:
 *   request  fvm_memory_request ("memory\0\0", need, lease, give_back)
 *   reply    fvm_memory_reply (version, NTSTATUS, bytes granted)
 * The broker grants `need` plus up to `lease` more when the box's and the
 * process's limits allow, or nothing and STATUS_COMMITMENT_LIMIT. It keeps
 * the count per process (the pipe's client pid, not the message's word)
 * and forgets it when the process ends; give_back returns unused lease
 * (capped at what that process holds). Nothing about a limit is writable
 * by a boxed process. */
#define FVM_BROKER_REQ_MEMORY "memory\0\0"
typedef struct fvm_memory_request {
    char magic[8];
    uint64_t need, lease, give_back;
} fvm_memory_request;
typedef struct fvm_memory_reply {
    uint32_t version;
    uint32_t status;
    uint64_t granted;
} fvm_memory_reply;
/* I/O limits (issue 12, broker/limits.c, runtime/ioquota.c). A boxed
 * process of a box with io-bandwidth or io-ops set takes bytes and ops for
 * its file reads and writes from a lease; when the lease is short it asks:
 *   request  fvm_io_request ("io\0\0\0\0\0\0", direction 0 read / 1 write,
 *            bytes, ops: what it needs now; moved_bytes, moved_ops: what
 *            it moved in that direction since its last ask, for fvm stats)
 *   reply    fvm_io_reply (version, 0, wait_us, granted_bytes, granted_ops,
 *            which)
 * Nothing is refused: the broker adds a lease (about 1/32 s of the rate),
 * takes need plus lease from the box's token buckets (core/iobucket.h) and
 * says how long the process must wait before it uses them (which: 0 none,
 * 1 bandwidth, 2 ops made the wait). An unlimited dimension is granted a
 * lease that does not run out; leases end when the hint's generation
 * changes. The buckets are the broker's; a process can only take more,
 * never add; its moved_* counts only feed fvm stats. */
#define FVM_BROKER_REQ_IO "io\0\0\0\0\0\0"
typedef struct fvm_io_request {
    char magic[8];
    uint32_t direction;
    uint32_t reserved;
    uint64_t bytes, ops;
    uint64_t moved_bytes, moved_ops;
} fvm_io_request;
typedef struct fvm_io_reply {
    uint32_t version;
    uint32_t status;
    uint64_t wait_us;
    uint64_t granted_bytes, granted_ops;
    uint32_t which;
    uint32_t reserved;
} fvm_io_reply;
/* fvm stats:  request "stats"  reply: one line of JSON (broker_limits_stats). */
#define FVM_BROKER_REQ_STATS "stats"
#define FVM_BROKER_STATS_MAX 2048

/* Sharing modes across copy-up (issue 18, broker/share.c). A boxed
 * process about to copy a host file into the box for a write open asks
 * whether the host would refuse that open for sharing (another handle to
 * the host file, of the box or of the host, does not share what the open
 * asks for):
 *   request  fvm_share_request ("share\0\0\0", access, share, units, the
 *            file's NT name \??\X:\... in units UTF-16 units)
 *   reply    fvm_share_reply (version, NTSTATUS: STATUS_SHARING_VIOLATION
 *            or 0)
 * The broker opens the host file itself with those rights and closes it at
 * once (a boxed process must never hold a writable host handle, not even
 * for a moment); only a file on a file system (no device, pipe or folder)
 * is opened with data rights. */
#define FVM_BROKER_REQ_SHARE "share\0\0\0"
#define FVM_SHARE_NAME_UNITS 2048
typedef struct fvm_share_request {
    char magic[8];
    uint32_t access, share, units, reserved;
    uint16_t name[FVM_SHARE_NAME_UNITS];
} fvm_share_request;
typedef struct fvm_share_reply {
    uint32_t version;
    uint32_t status;
} fvm_share_reply;

#endif

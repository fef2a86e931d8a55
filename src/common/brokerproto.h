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
/* fvm stats:  request "stats"  reply: one line of JSON (broker_limits_stats). */
#define FVM_BROKER_REQ_STATS "stats"
#define FVM_BROKER_STATS_MAX 2048

#endif

/* brokerproto.h - the control pipe between fvm.exe and a box's broker.
 *
 * One request per connection on the box's message-mode pipe
 * (fvm_box_object_name(FVM_OBJ_PIPE)). Version 1 knows one request:
 *   request  "members"            (ASCII, no terminator)
 *   reply    uint32 version = 1, uint32 count, count x uint32 pid
 * The pid list is the broker's own account of box membership, kept from the
 * job's completion-port messages: Wine's JobObjectBasicProcessIdList lists
 * only processes assigned directly, not the children that inherit the job. */
#ifndef FVM_COMMON_BROKERPROTO_H
#define FVM_COMMON_BROKERPROTO_H

#include <stdint.h>

#define FVM_BROKER_PROTO_VERSION 1
#define FVM_BROKER_MAX_MEMBERS   4096
#define FVM_BROKER_REQ_MEMBERS   "members"

typedef struct fvm_members_reply {
    uint32_t version;
    uint32_t count;
    uint32_t pids[FVM_BROKER_MAX_MEMBERS];
} fvm_members_reply;

#endif

/* broker.h - the pieces of fvm-broker.exe (see main.c for the idea). */
#ifndef FVM_BROKER_BROKER_H
#define FVM_BROKER_BROKER_H

#include <windows.h>
#include <stdint.h>

#include "common/boxcfg.h"
#include "core/brokermsg.h"

/* audit.c: the box's single audit writer. One audit_sender per connection
 * of a boxed process: its subject as the broker sees it, and its rate. */
typedef struct audit_sender {
    uint32_t pid;                 /* the pipe's client, not the message's word */
    BOOL member;                  /* a process of the box's job */
    char image[FVM_PATH_MAX * 3]; /* that process's image, UTF-8 */
    wchar_t image16[FVM_PATH_MAX];
    double tokens;
    DWORD refilled;
} audit_sender;
BOOL broker_audit_start(const wchar_t *box_path, const wchar_t *box_name);
void broker_audit_sender_init(audit_sender *s, uint32_t pid);
/* Queues the message's record with the sender's subject, or drops (and
 * counts) it: see audit.c for the limits. */
void broker_audit_submit(audit_sender *s, const brokermsg_audit *msg);
/* Queues a record of the broker's own (procs.c: process starts and exits,
 * whose pid and image the broker took from the process itself), within the
 * same size, backlog and quota limits. */
void broker_audit_write(const brokermsg_audit *msg);
/* Writes every queued record; the broker calls it before it exits. */
void broker_audit_flush(void);

/* guard.c: each new member of the box's job must run fvm.dll; one that
 * does not is terminated and audited. */
BOOL broker_guard_start(HANDLE job);
/* A new member; process: procs.c's handle to it (NULL: none), which the
 * guard may use until broker_guard_gone(pid). The main loop's, under its
 * sync lock, like the two below. */
void broker_guard_member(uint32_t pid, HANDLE process);
void broker_guard_gone(uint32_t pid);
/* Takes the first looks that are due; returns the ms until the next one
 * (INFINITE: none waiting). */
DWORD broker_guard_looks(void);

/* main.c: TRUE when pid is a live process of the box (asked of the box's
 * job, not of the list built from its news). */
BOOL broker_is_member(uint32_t pid);
BOOL broker_member_listed(uint32_t pid);   /* on the list, without asking the server */
/* The same, keeping the process: a handle (query, synchronize) or NULL. */
HANDLE broker_open_member(uint32_t pid);

/* display.c: the box's own X display (box.ini display=own): an Xvfb
 * started with the box, its number in <box>\display; 0, or 16 when it could
 * not be started. Called from the main thread only (the server is tied to
 * it by a parent-death signal). */
int broker_display_start(const wchar_t *box_path);
void broker_display_stop(void);

/* quota.c: the storage quota's authority (see there). A box without a quota
 * grants everything. pid 0 is the broker itself. */
BOOL broker_quota_start(const wchar_t *box_path, uint64_t quota);
BOOL broker_quota_active(void);
/* Bytes granted: 0 (refused, or pid is not a live process of the box) or
 * at least need. */
uint64_t broker_quota_reserve(uint32_t pid, uint64_t need, uint64_t leftover);
/* A process says it freed bytes: the next refusal measures again. */
void broker_quota_freed(void);

/* hasher.c: content hashes of copied-up files' host base versions. */
void broker_hash_bases(const wchar_t *box_path);

/* procs.c: the process-count quota and process start/exit audit records.
 * new/exit come from the job's messages; grant answers a boxed process's
 * "start" request (0 or STATUS_QUOTA_EXCEEDED). */
void broker_procs_start(const wchar_t *box_path, HANDLE job);
/* Returns the handle it keeps to the process (NULL if none), valid until
 * broker_procs_exit(pid) or broker_procs_stop. */
HANDLE broker_procs_new(uint32_t pid);
void broker_procs_exit(uint32_t pid);
void broker_procs_poll(void);   /* reads the images of processes that have started running */
uint32_t broker_procs_grant(void);
/* A granted start failed: its grant is given back. */
void broker_procs_ungrant(void);
void broker_procs_stop(void);   /* the box ends: closes the process handles it keeps */
void broker_procs_set_limit(uint32_t limit);              /* box.ini procs= changed */
uint32_t broker_procs_list(uint32_t *pids, uint32_t max); /* live box processes */

/* limits.c: CPU, memory and I/O limits (issue 12), read from box.ini and
 * followed while the box runs; the CPU duty cycle; the memory authority
 * (answers FVM_BROKER_REQ_MEMORY); the numbers of fvm stats. */
void broker_limits_start(const wchar_t *box_path, HANDLE job);
/* A boxed process's memory request (brokerproto.h); pid from the pipe. */
void broker_limits_memory(uint32_t pid, const void *request, size_t len, void *reply, size_t *reply_len);
/* share.c: would the host refuse this open of a host file for sharing? */
struct fvm_share_reply;
void broker_share_probe(const void *request, size_t len, struct fvm_share_reply *reply);
/* fvm stats: the box's numbers now, as one line of JSON. */
size_t broker_limits_stats(char *out, size_t cap);
/* An I/O lease (FVM_BROKER_REQ_IO): takes from the box's buckets, says how
 * long to wait. */
void broker_limits_io(uint32_t pid, const void *request, size_t len, void *reply, size_t *reply_len);
void broker_limits_stop(void);   /* the box ends: everything suspended resumes */

/* net.c: the box's loopback port map (core/portmap.h) when box.ini says
 * net = isolated; start FALSE: the map cannot be made (the broker exits).
 * request answers a boxed process's FVMPRT01 message (pid from the pipe);
 * process_exit drops the entries of a process that ended. */
#include "core/portmap.h"
BOOL broker_net_start(const wchar_t *box_path);
void broker_net_request(uint32_t pid, const uint8_t *buf, size_t len, portmap_reply *reply);
void broker_net_process_exit(uint32_t pid);

/* resolve.c: a host name resolved for a boxed process (FVMRSV01,
 * core/resolvemsg.h), the policy's name rules decided again for the
 * process the pipe names; writes the reply into out, returns its size (0:
 * nothing to send, out of memory). */
size_t broker_resolve_request(uint32_t pid, const uint8_t *buf, size_t len, uint8_t *out, size_t cap);

/* index.c: the box index's only writer while the box runs (boxed processes
 * map it read-only and send FVMIDX01 requests). start: opens the newest
 * index, or creates index-1.fvm, before the box's first process. request:
 * the fvm_status of the write, FVM_E_INVALID for a sender outside the box
 * or a key the index may not hold. */
BOOL broker_index_start(const wchar_t *box_path);
uint32_t broker_index_request(uint32_t pid, const uint8_t *buf, size_t len);

/* policy.c: compiles the box's policy, keeps it, and publishes a copy
 * (publish.c). */
BOOL broker_policy_publish(const wchar_t *box_path);

/* publish.c: the section every boxed process maps read-only at its start
 * (common/boxshare.h), made before the box's first process. The parts are
 * NULL before start; the port map also in a shared box. */
struct fvm_limits_hint;
struct portmap;
BOOL broker_publish_start(const wchar_t *box_path, const void *policy, size_t policy_size);
struct fvm_limits_hint *broker_published_hint(void);
struct portmap *broker_published_ports(void);
/* net.c: whether box.ini says `net = isolated` (the box has a port map). */
BOOL broker_net_isolated(const wchar_t *box_path);
/* The compiled policy the broker published (NULL before, or if it failed). */
const struct policy_view *broker_policy_view(void);
/* TRUE when the box's policy, decided again by the broker for this name and
 * image, gives this decision by this rule, and audits it (*decided_again),
 * or the claim is a refusal (taken as claimed, *decided_again FALSE). */
BOOL broker_policy_confirms(uint32_t type, const char *name, const wchar_t *image, const char *decision,
                            const char *rule, BOOL *decided_again);
/* [net] and [process] records (core/policy_redecide.h): the broker decides
 * the record's target again for the sender's image. */
#include "core/policy_redecide.h"
redecide_result broker_policy_redecide(const brokermsg_audit *msg, const wchar_t *image, redecide_outcome *out);

/* registry.c: the box registry's live tree and <box>\registry.dat. Start
 * (before the box's first process) loads the file into the tree unless the
 * tree outlived a previous broker; stop (the box is empty, under its lock)
 * saves the tree and deletes it. */
enum {
    BROKER_EXIT_REGISTRY_FILE = 10,   /* registry.dat cannot be read or loaded */
    BROKER_EXIT_REGISTRY_TREE = 11,   /* the live tree cannot be opened or created */
    BROKER_EXIT_REGISTRY_WATCH = 12   /* its change notification cannot be set up */
};
/* 0, or the broker's exit code (fvm run shows it). */
int broker_registry_start(const wchar_t *box_path);
void broker_registry_stop(void);

#endif

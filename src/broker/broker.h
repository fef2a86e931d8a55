/* broker.h - the pieces of fvm-broker.exe (see main.c for the idea). */
#ifndef FVM_BROKER_BROKER_H
#define FVM_BROKER_BROKER_H

#include <windows.h>
#include <stdint.h>

#include "core/brokermsg.h"

/* audit.c: the box's single audit writer. */
BOOL broker_audit_start(const wchar_t *box_path, const wchar_t *box_name);
void broker_audit_write(const brokermsg_audit *msg);
/* Writes every queued record; the broker calls it before it exits. */
void broker_audit_flush(void);

/* guard.c: each new member of the box's job must run fvm.dll; one that
 * does not is terminated and audited. */
BOOL broker_guard_start(HANDLE job);
void broker_guard_member(uint32_t pid);

/* hasher.c: content hashes of copied-up files' host base versions. */
void broker_hash_bases(const wchar_t *box_path);

/* procs.c: the process-count quota and process start/exit audit records.
 * new/exit come from the job's messages; grant answers a boxed process's
 * "start" request (0 or STATUS_QUOTA_EXCEEDED). */
void broker_procs_start(const wchar_t *box_path, HANDLE job);
void broker_procs_new(uint32_t pid);
void broker_procs_exit(uint32_t pid);
void broker_procs_poll(void);   /* reads the images of processes that have started running */
uint32_t broker_procs_grant(void);
void broker_procs_stop(void);   /* the box ends: closes the process handles it keeps */

/* policy.c: compiles the box's policy and publishes it read-only. */
BOOL broker_policy_publish(const wchar_t *box_path);

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

/* boxlife.h - a box's life cycle on disk and in the system: create, count
 * its processes, stop, remove, throw away its delta, weigh it.
 *
 * One implementation for every front end: fvm.exe's verbs (cli/box.c), the
 * SDK (sdk/fvm_sdk.c, which used to run fvm.exe for these) and the broker
 * (the storage quota weighs the box with boxlife_tree_size). Nothing here
 * prints: each call fills a boxlife_error whose message names the box and
 * what failed, and the caller shows it its own way. Not part of fvm.dll
 * (the runtime links no C runtime; it never creates or removes boxes).
 *
 * A box is the folder <root>\boxes\<name> holding box.ini; box.ini is
 * written last on create and the folder is removed on any failure before,
 * so a box either exists whole or not at all. */
#ifndef FVM_COMMON_BOXLIFE_H
#define FVM_COMMON_BOXLIFE_H

#include <windows.h>
#include <stdint.h>

#include "common/boxlimits.h"
#include "core/error.h"
#include "core/policy.h"

typedef struct boxlife_error {
    fvm_status status;    /* FVM_E_EXISTS, FVM_E_NOTFOUND, FVM_E_BUSY, FVM_E_PARSE (policy), FVM_E_IO */
    DWORD win32;          /* the Windows error behind FVM_E_IO, 0 if none */
    char message[640];    /* one line naming the box and what failed */
} boxlife_error;

/* What `fvm create` takes. Every field may be left zero. */
typedef struct boxlife_options {
    const wchar_t *policy_file;   /* copied into the box with its includes; NULL: the shipped default */
    const wchar_t *shipped_dir;   /* where shipped templates are (NULL: next to this program) */
    uint64_t quota_bytes;         /* storage quota, 0 for none */
    unsigned long procs;          /* process-count limit, 0 for none */
    BOOL confidential;
    BOOL own_display;            /* display=own: an X display of its own (broker/display.c) */
    int display_number;          /* its number (display_number=), with own_display */
    BOOL host_display;           /* display=host: the user's display, shared (the default on the host's server);
                                  * neither: a box on its own server gets display=nested */
    BOOL own_server;             /* server=own: a Wine server of its own (common/boxserver.h) */
    BOOL host_server;            /* server=host: the host's Wine server. Neither: boxlife_wants_own_server */
    const box_limits *limits;     /* CPU, memory, I/O limits (NULL: none) */
    const char *net_mode;         /* "isolated" (NULL: the default) or "shared" (cli/net.c) */
    const char *publish;          /* published ports, "18080:8080,5353:53/udp" (NULL: none) */
    /* Each diagnostic of the policy (errors and warnings), if set. */
    void (*policy_diag)(void *ctx, const policy_diag *d);
    void *policy_diag_ctx;
} boxlife_options;

/* Whether a box made with these options gets a Wine server of its own:
 * as asked, and when neither is asked, yes under Wine (since session 18 the
 * default: what Wine's server does for a program is then held by the
 * box's kernel floor too), unless FVM_CREATE_HOST_SERVER=1 (a developer's
 * switch, to run the test suite with every box on the host's server).
 * create writes the answer to box.ini (server=own|host); a box.ini without
 * it, from before, means the host's server. */
BOOL boxlife_wants_own_server(const boxlife_options *opt);

/* <box_path>\box.ini exists. */
BOOL boxlife_exists(const wchar_t *box_path);

/* Creates the box folder and its files (policy, settings, box.ini last).
 * FVM_E_EXISTS if the box exists, FVM_E_PARSE for a policy with errors
 * (message: the first, as file:line:column), FVM_E_IO otherwise; on any
 * failure nothing of the box is left. */
fvm_status boxlife_create(const wchar_t *box_path, const char *name, const boxlife_options *opt,
                          boxlife_error *err);

/* Sets one [box] key of box.ini (value NULL: removes it), atomically: the
 * whole file is written under a temporary name and renamed over box.ini,
 * so a reader (the broker, a crash) sees the old file or the new one.
 * FVM_E_NOTFOUND without a box, FVM_E_IO otherwise. The caller decides
 * whether the box may be running. */
fvm_status boxlife_set_setting(const wchar_t *box_path, const char *name, const char *key, const char *value,
                               boxlife_error *err);

/* The job's process ids into pids[0..cap) (at most cap; on Windows the
 * first cap when there are more), read as a plain array: the struct
 * declares its pid array with one element and indexing past it is
 * undefined (GCC read only the first pid; broker/main.c members_sync).
 * -1 if the job has no list. */
int boxlife_job_pids(HANDLE job, ULONG_PTR *pids, int cap);

/* Processes of the job that still run. Wine can leave a process with no
 * thread in a job for good (its creator was terminated between creating it
 * and giving it its first thread; seen in about 1 of 40 stops of a process
 * storm): it runs nothing and its handle is signaled, but the job counts it
 * active forever. So a member counts only while its handle is not
 * signaled. The job's own count when its list cannot be read. */
DWORD boxlife_job_live_processes(HANDLE job);

/* Processes of the box right now (0 if it is not running). */
DWORD boxlife_process_count(const wchar_t *box_path);

/* Terminates every process of the box, including ones spawned meanwhile,
 * waiting up to wait_ms for the job to empty. A stopped box is success. */
fvm_status boxlife_stop(const wchar_t *box_path, const char *name, DWORD wait_ms, boxlife_error *err);

/* Refuses a running box (FVM_E_BUSY) unless force, which stops it; then
 * waits until its broker has exited (its last act saves the registry). */
fvm_status boxlife_stop_unless_running(const wchar_t *box_path, const char *name, BOOL force,
                                       boxlife_error *err);

/* Removes the box: stops it when force (else FVM_E_BUSY if it runs), then
 * its registry delta and its folder. */
fvm_status boxlife_remove(const wchar_t *box_path, const char *name, BOOL force, boxlife_error *err);

/* Throws away the box's delta (index first, files, registry); the box stays.
 * The box must not be running (the caller checks). */
fvm_status boxlife_discard_delta(const wchar_t *box_path, const char *name, boxlife_error *err);

/* Bytes stored below a folder: the weight of a box's delta. */
uint64_t boxlife_tree_size(const wchar_t *dir);

/* Deletes a folder tree, read-only files too; FALSE with GetLastError set. */
BOOL boxlife_remove_tree(const wchar_t *dir);

#endif

/* cli.h - shared pieces of fvm.exe, the command-line front end.
 *
 * fvm.exe is an ordinary (unboxed) program: it manages box folders, starts
 * the per-box broker and launches the first process of a box. Each verb lives
 * in its own file; they share the box helpers below. Messages are UTF-8. */
#ifndef FVM_CLI_CLI_H
#define FVM_CLI_CLI_H

#include <windows.h>
#include <stdio.h>

#include "common/boxcfg.h"
#include "core/boxindex.h"

/* Exit codes of fvm.exe itself (fvm run passes the program's code through). */
enum { EXIT_USAGE = 2, EXIT_FAIL = 1, EXIT_CONFLICT = 3 /* fvm commit: conflicts left */ };

typedef struct box {
    char    name[FVM_BOX_NAME_MAX];       /* UTF-8 */
    wchar_t wname[FVM_BOX_NAME_MAX];
    wchar_t path[FVM_PATH_MAX];           /* <root>\boxes\<name> */
} box;

/* Prints "fvm: <message>" to stderr and returns EXIT_FAIL. */
int  cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "fvm: <what>: <Windows message for code>" */
int  cli_win_error(DWORD code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_utf8(const wchar_t *in, char *out, size_t cap);
void cli_wide(const char *in, wchar_t *out, size_t cap);

/* The FVM root: %FVM_ROOT% or C:\FVM. */
void box_root(wchar_t *out, size_t cap);
/* Validates the name and fills b; prints the error and returns FALSE if bad. */
BOOL box_init(box *b, const char *name);
BOOL box_exists(const box *b);
/* Creates the box folder and its files; fails if it exists. */
int  box_create(const box *b, const char *policy_file, uint64_t quota);
/* The storage quota in box.ini, 0 for none. */
uint64_t box_quota(const box *b);
/* process settings (cli/ps.c): box.ini procs= and confidential= as
 * fvm_box_config flags; written by `fvm create --procs N --confidential`
 * (common/boxlife.c). */
uint32_t box_process_flags(const wchar_t *ini);
/* Processes of the box right now (0 if the box is not running). */
DWORD box_process_count(const box *b);
/* Terminates every process of the box, including ones spawned meanwhile. */
int  box_stop(const box *b, DWORD wait_ms);
/* NAME [--force] of rm and discard: fills b (an existing box); 0 or an exit code. */
int  box_parse_name_force(int argc, char **argv, const char *usage, box *b, BOOL *force);
/* Refuses a running box unless force, else stops it; 0 or an exit code. */
int  box_stop_unless_running(const box *b, BOOL force);
/* Throws away the box's delta (files, index); the box stays. */
int  box_discard_delta(const box *b);
/* Fills cfg for processes of this box. */
void box_config(const box *b, fvm_box_config *cfg);

/* Directory of fvm.exe (where fvm.dll and fvm-broker.exe live). */
void cli_exe_dir(wchar_t *out, size_t cap);
/* CreateProcessW, tried once more when the new process died before it ran
 * any code (ERROR_INTERNAL_ERROR: under Wine, the child's Unix process
 * ended before it connected to the server, seen about once per suite run
 * under load). Any other failure is returned at once. */
BOOL cli_create_process(const wchar_t *app, wchar_t *cmdline, BOOL inherit, DWORD flags, const wchar_t *dir,
                        STARTUPINFOW *si, PROCESS_INFORMATION *pi);

/* regdiff.c: prints the registry lines of `fvm diff` (idx: the box index,
 * NULL if none); 0 or an exit code. */
struct boxindex;
int regdiff_print(const box *b, const struct boxindex *idx);
/* The same changes as data (sorted, one per line of `fvm diff`), for commit:
 * the tree path (MACHINE\X, below the box's tree root), the value name (when
 * is_value), and for A/C values the box's type and data. file_only: read
 * registry.dat even when a live tree exists. Free with regdiff_free. */
typedef struct regdiff_change {
    char kind;                 /* 'A', 'C', 'D' */
    wchar_t *text;             /* the line of fvm diff, without the kind */
    wchar_t *key;
    size_t key_len;
    BOOL is_value;
    wchar_t *value;
    size_t value_len;
    uint32_t type;
    uint8_t *data;
    size_t size;
} regdiff_change;
int regdiff_collect(const box *b, const struct boxindex *idx, BOOL file_only, regdiff_change **out, size_t *count);
void regdiff_free(regdiff_change *changes, size_t count, BOOL array_too);
/* A key path below \REGISTRY\ as fvm diff shows it (HKEY_LOCAL_MACHINE\...\),
 * with ` value "NAME"` after it when value is not NULL. */
void regdiff_display(const wchar_t *path, size_t len, const wchar_t *value, size_t value_len, wchar_t *out,
                     size_t cap);

int cmd_create(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_run(int argc, char **argv, const wchar_t *raw_cmdline);
/* owndisplay.c: a box's own X display (box.ini display=own). Its number
 * (display_number=), or -1 for a box on the host's display; a free number
 * for a new box (-1: none, or not on Linux); and fvm run started again as a
 * Linux program with DISPLAY=:N when its own Linux DISPLAY is another: 0
 * when not needed, else 1 with *exit_code set (its exit code, or ours after
 * an error, printed). */
int own_display_number(const box *b);
int own_display_pick(void);
/* Where a search for a free display number starts (owndisplay.c). */
int own_display_start_point(void);
int own_display_reexec(const box *b, int number, int *exit_code);

/* runagain.c: fvm.exe runs itself again as a Linux program (Wine's loader,
 * same arguments) with its Linux environment changed, and waits for it. */
typedef struct run_again {
    const char *set[8];    /* "NAME=value" entries set, replacing NAME (NULL-ended) */
    const char *drop[8];   /* "NAME=" entries removed (NULL-ended) */
    /* In the child before execve, raw system calls only (a fork of a
     * multi-threaded process); envp is what execve will get. 0 to go on,
     * else the child's exit code. */
    int (*before_exec)(void *ctx, char **envp);
    void (*after_fork)(void *ctx);   /* in the parent, once the child exists */
    void *ctx;
} run_again;
BOOL cli_on_linux(void);
/* A variable of this process's Linux environment, NULL if unset. */
const char *cli_linux_env(const char *name);
BOOL cli_wine_loader(char *out, size_t cap);
/* 0 with *exit_code the child's (128 + signal if killed), else an error
 * was printed and *exit_code is the error's exit code. */
int cli_run_again(const box *b, const run_again *plan, int *exit_code);
/* The argv and envp cli_run_again would execve (static storage); FALSE
 * after printing why. */
BOOL cli_again_command(const box *b, const run_again *plan, char ***argv, char ***envp);
/* A Linux wait status as an exit code (128 + signal for a killed one). */
int cli_exit_status(int32_t status);

/* ownserver.c: fvm run and the verbs that talk to a running box, for a box
 * with a Wine server of its own (box.ini server=own, common/boxserver.h). */
/* Each returns 0 when the caller goes on in this process (not on Linux, a
 * box without its own server, already inside it, or for join: the box is
 * not running), else 1 with *exit_code the re-run's (or an error's). */
BOOL own_server_inside(void);
int own_server_run(const box *b, int display, BOOL no_floor, int *exit_code);
int own_server_join(const box *b, int *exit_code);
/* Runs `fvm.exe ARGS...` inside such a box's server while the box runs,
 * its standard output into out (0-ended, cut to cap - 1 bytes): how fvm
 * outside asks the box's broker, which is in that server. TRUE when it ran
 * and exited 0; FALSE for any other box, or when not running. */
BOOL own_server_capture(const box *b, const char *const *args, char *out, size_t cap);
/* fvm stop of such a box, after its stop inside: ends its server, which
 * would linger idle. */
void own_server_end_idle(const box *b);
/* The TCP ports the kernel refuses such a box's server to connect to (the
 * policy's denies for every program and host): bit p of denied, how many;
 * -1 for a box on the host's server (nothing is mirrored there). */
long own_server_tcp_denied(const box *b, uint8_t denied[8192]);
/* Whether a box on its own server has that server refused UDP sockets
 * (its policy lets no program use UDP; ownserver.c box_udp_closed). */
BOOL own_server_udp_closed(const box *b);
/* Whether a box on its own server has that server's connect() calls
 * decided by address (its policy denies an address, a CIDR or localhost,
 * or UDP, to every program; ownserver.c supervise_connects). */
BOOL own_server_connects_checked(const box *b);
/* Whether the box runs without network: 1, its programs (a box on the
 * host's server, whose Winsock sockets are that server's, and whose policy
 * lets nothing leave); 3, its programs, their host names resolved outside
 * the box (by its broker, or with a server of its own by its relay; the
 * policy lets some traffic out); 2, its programs and its own Wine server
 * (its policy lets nothing leave). */
int own_server_network_cut(const box *b);
/* The box's compiled policy (loaded once per process), NULL when it has
 * none or it does not load. */
struct policy_view;
const struct policy_view *own_server_policy_view(const box *b);
int cmd_start_in_box(const wchar_t *raw_cmdline);   /* fvm run's boxed launcher */
int cmd_ps(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_discard(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_policy(int argc, char **argv);        /* policy check | policy explain */
int cmd_logs(int argc, char **argv);
int cmd_audit_append(int argc, char **argv);  /* hidden: appends audit records, for tests */
int cmd_internal(int argc, char **argv);   /* hidden helpers used by doctor */

/* Sync (commit.c, regcommit.c): fvm commit. */
struct boxindex_base;
struct sync_policy;
struct sync_journal;
int cmd_commit(int argc, char **argv);
/* 1 when the host file is no longer the base version (size, time, SHA-256). */
BOOL sync_host_changed(const wchar_t *host, const struct boxindex_base *base);
/* \??\C:\x -> C:\x, \??\UNC\s\sh\x -> \\s\sh\x */
void sync_nt_to_win32(const wchar_t *nt, wchar_t *out, size_t cap);
/* Where the box keeps its copy of a host path (NT form): <box>\drive\C\x, <box>\unc\s\sh\x. */
BOOL sync_box_copy_path(const box *b, const wchar_t *nt, wchar_t *out, size_t cap);
BOOL sync_hash_file(const wchar_t *path, uint8_t digest[32]);
/* Off a terminal: ms between plain progress lines (FVM_PROGRESS_MS, else fallback). */
ULONGLONG sync_progress_interval(ULONGLONG fallback);
/* landsec.c: file (about to be renamed over target) gets the security a
 * copy onto the host would have: target's own (host_exists) or what
 * target's folder gives a new file. 0 or an error (printed). */
int sync_give_landing_security(const wchar_t *file, const wchar_t *target, BOOL host_exists);
/* reap.c: the box copies a commit set aside (<box>\\sync\\landed) freed by a
 * detached `fvm __reap NAME`; commit, rm and discard hold the box's reap
 * mutex (until they exit) so they never run with a reaper. */
void sync_reap_hold(const box *b);
void sync_reap_detached(const box *b);
int cmd_reap(int argc, char **argv);
/* commitcopy.c: copies a commit makes ahead, on a second thread, when files
 * land by copying: items (box copy -> X.fvm-commit) added in step order,
 * then begun; take (NULL: none) says whether the copy to `to` was made in
 * this run (else the step copies it itself); end stops the thread and
 * deletes copies no step took. */
typedef struct copy_ahead copy_ahead;
copy_ahead *copy_ahead_new(void);
BOOL copy_ahead_add(copy_ahead *ca, const wchar_t *from, const wchar_t *to);
void copy_ahead_begin(copy_ahead *ca);
BOOL copy_ahead_take(copy_ahead *ca, const wchar_t *to);
void copy_ahead_end(copy_ahead *ca);
int cmd_export(int argc, char **argv);
int cmd_rebase(int argc, char **argv);
/* The box's newest index, mapped read-write, with the box's index mutex as
 * the writers' lock; ok FALSE: the box has no index. 0 or an exit code. */
typedef struct index_rw {
    struct boxindex idx;
    HANDLE mutex;
    void *view;
    boxindex_lock lock;
    BOOL ok;
} index_rw;
int sync_index_open(const box *b, index_rw *ir);
void sync_index_close(index_rw *ir);
/* Forgets the index entry of an NT path (none: nothing to do). */
int sync_index_forget(index_rw *ir, const wchar_t *nt);
/* The index key of an NT path; FALSE when it does not normalise. */
BOOL sync_index_key_of(const wchar_t *nt, ntpath *path, uint16_t *key, size_t *len);
int cmd_import(int argc, char **argv);
/* pack.c's helpers for importswap.c: folders made down to path; a tree
 * removed; FVM_IMPORT_FAIL_AT's injected failure (TRUE: fail this write). */
BOOL pack_make_dirs(const wchar_t *path);
BOOL pack_remove_tree(const wchar_t *dir);
BOOL pack_injected_failure(void);
/* importswap.c: the staged incremental import swapped in, journalled; 0 or
 * an error (printed) with the box as it was. */
int import_swap_in(const box *b, const wchar_t *stage, uint8_t *index, size_t index_len, const char *file);
/* An import a kill interrupted in its swap: finished or rolled back (box_exists calls it); 0 or an error. */
int import_recover(const box *b);
/* The [sync] rules of the box's policy; 0 or an exit code (errors printed). */
int sync_load_policy(const box *b, struct sync_policy *out);
/* fvm policy check: the [sync] rules of a policy file, errors printed to out; 1 when it has any. */
unsigned sync_check_policy_file(const wchar_t *path, FILE *out);
/* What the registry part of a commit asks of the file part: the policy's
 * word on a path (1: commit; else it said why), and audit records. */
typedef struct sync_hooks {
    int (*allow)(void *ctx, const wchar_t *policy_path, const wchar_t *display, char kind);
    void (*audit)(void *ctx, const char *type, const char *op, const wchar_t *name, const char *decision,
                  const char *rule);
    /* A change the three-way check refused (the host changed too): counted, audited. */
    void (*conflict)(void *ctx, const wchar_t *display);
    int resolve;                 /* 0 none, 1 --ours, 2 --theirs, 3 --keep-both */
    void *ctx;
} sync_hooks;
/* Adds the registry steps (and the final S) to the journal; *planned counts them. */
int regcommit_plan(const box *b, const struct boxindex *idx, const sync_hooks *h, struct sync_journal *j,
                   unsigned *planned);
/* Runs registry step i of the journal (idx may be NULL). */
int regcommit_step(const box *b, struct boxindex *idx, const struct sync_journal *j, size_t i, const sync_hooks *h);
/* The host key's values now as a base (core/regbase.h); FALSE when the key is gone. */
BOOL regcommit_host_fingerprint(const wchar_t *nt, struct boxindex_base *out);
/* regrebase.c: the registry part of fvm rebase (the box stopped, its index
 * open for writing); adds to the counts; 0 or an exit code. */
typedef struct rebase_counts {
    unsigned followed, merged, conflicts, unmergeable;
} rebase_counts;
int regrebase_run(const box *b, index_rw *ir, BOOL dry_run, rebase_counts *counts);

/* limits.c: the box resource limits (issue 12). limits_create_option
 * handles one `fvm create` limit option at argv[*i] (-1: not one; 0: taken,
 * *i moved past its value; else an exit code); fvm create writes them into
 * box.ini through common/boxlife.c. */
#include "core/limits.h"
int limits_create_option(int argc, char **argv, int *i, box_limits *limits);
/* net.c: the box's network settings (net = isolated|shared, publish =)
 * and `fvm net NAME`. net_create_option handles --net and --publish at
 * argv[*i] like limits_create_option; net_write_settings writes the ones
 * given into box.ini. */
typedef struct net_settings {
    char mode[16];       /* "isolated", "shared", or "" (unchanged) */
    char publish[512];   /* the publish list as given */
    BOOL publish_set;
} net_settings;
int net_create_option(int argc, char **argv, int *i, net_settings *s);
int net_write_settings(const box *b, const net_settings *s);
int cmd_net(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_stats(int argc, char **argv);
/* stats.c: the running box's broker numbers (JSON), and one number of them. */
BOOL stats_query(const box *b, char *out, size_t cap);
int cmd_stats_json(int argc, char **argv);
/* relay.c: fvm __box-relay NAME, the host's side of a box with its own server: the decision
 * provider and host names. */
int cmd_box_relay(int argc, char **argv);
double stats_field(const char *json, const char *key);
/* box.c: bytes stored under a folder (a box's delta weight). */
ULONGLONG tree_size(const wchar_t *dir);

#endif

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

/* Exit codes of fvm.exe itself (fvm run passes the program's code through). */
enum { EXIT_USAGE = 2, EXIT_FAIL = 1 };

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

/* regdiff.c: prints the registry lines of `fvm diff` (idx: the box index,
 * NULL if none); 0 or an exit code. */
struct boxindex;
int regdiff_print(const box *b, const struct boxindex *idx);

int cmd_create(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_run(int argc, char **argv, const wchar_t *raw_cmdline);
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

#endif

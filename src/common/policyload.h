/* policyload.h - reading a policy file on Windows, for fvm.exe and the
 * broker (not for fvm.dll, which only matches compiled blobs).
 *
 * The core parser (core/policy.h) does no I/O and knows nothing about the
 * machine. This file supplies what it asks for:
 *   - a reader for the policy file and its includes: `include NAME` relative
 *     to the including file's folder, `template NAME` from the shipped
 *     policy folder next to the executable (<exe folder>\policy\templates\
 *     NAME.ini, and `template default` is <exe folder>\policy\default.ini);
 *   - the variables: the standard Windows folder and identity variables of
 *     this process's environment (USERPROFILE, APPDATA, LOCALAPPDATA, TEMP,
 *     SystemRoot, ProgramFiles...). Only that fixed list, never the whole
 *     environment, so a policy means the same whoever starts the box and
 *     whatever their shell happens to define (and [vars] names cannot clash
 *     with a stray environment variable);
 *   - the user's SID (for HKCU), the session's object directory (for Local\
 *     objects), the volume table, system root and computer name (for file
 *     patterns written with \Device\HarddiskVolumeN, \SystemRoot or
 *     \\THISPC\C$).
 *
 * Names in messages and in rule labels ("policy.ini:12", what the audit log
 * records) are short: a file in the top policy's folder (or below) is named
 * relative to that folder, a shipped file relative to the shipped folder
 * ("templates\untrusted.ini"), anything else by its full path. The core uses
 * these names to read a file once and to detect include cycles, so the
 * reader guarantees that one file always gets one name and two files never
 * share one (the second falls back to its full path). Files are told apart
 * by their full path, case-insensitively.
 *
 * Everything here is compiled out of the runtime build (FVM_RUNTIME). */
#ifndef FVM_COMMON_POLICYLOAD_H
#define FVM_COMMON_POLICYLOAD_H

#ifndef FVM_RUNTIME

#include "common/boxcfg.h"
#include "core/policy.h"

#define FVM_POLICY_MAX_VARS   40u
#define FVM_POLICY_MAX_FILES  64u     /* distinct files one load may read */

/* One file the reader has handed to the parser. */
typedef struct fvm_policy_file {
    wchar_t *full_path;               /* identity (compared case-insensitively) */
    char display[POLICY_NAME_MAX];    /* the name the core sees, UTF-8 */
} fvm_policy_file;

/* What a policy is read against on this machine. `env` points into the
 * structure itself: initialise it in place and do not copy it. */
typedef struct fvm_policy_context {
    policy_env env;                   /* ready for policy_load_file, policy_canonical_name... */

    /* env's storage */
    policy_var vars[FVM_POLICY_MAX_VARS];
    char *var_text;                   /* names and values, one malloc block */
    char user_sid[192];
    char session_objects[64];
    ntpath_context path_ctx;
    ntpath_volume volumes[26];
    uint16_t volume_names[26][64];
    uint16_t system_root[MAX_PATH];
    uint16_t computer_name[64];

    /* the reader's state, reset by each load */
    wchar_t shipped_dir[FVM_PATH_MAX]; /* <exe folder>\policy */
    wchar_t top_dir[FVM_PATH_MAX];    /* folder of the policy being loaded */
    fvm_policy_file files[FVM_POLICY_MAX_FILES];
    size_t file_count;
} fvm_policy_context;

/* Fills ctx for this process (environment, token, session, volumes). The
 * user's SID or the session may be unavailable (then HKCU rules, resp. Local\
 * objects in every session, behave as core/policy.h says); only running out
 * of memory fails. diag/diag_ctx may be set in ctx->env afterwards. */
fvm_status fvm_policy_context_init(fvm_policy_context *ctx, char *why, size_t why_size);
void fvm_policy_context_free(fvm_policy_context *ctx);

/* Loads the policy file `path` (with its includes) against ctx. Every
 * problem goes to diag as file:line:column (diag may be NULL); warnings and
 * notes do not fail the load. Returns FVM_OK with *out set (free with
 * policy_free), FVM_E_PARSE when the policy has errors (why: "N errors in
 * FILE"), or the status of a file that cannot be read (why names it). */
fvm_status fvm_policy_load_with(fvm_policy_context *ctx, const wchar_t *path, policy **out, policy_diag_fn diag,
                                void *diag_ctx, char *why, size_t why_size);

/* The same with a context of its own. */
fvm_status fvm_policy_load(const wchar_t *path, policy **out, policy_diag_fn diag, void *diag_ctx, char *why,
                           size_t why_size);

/* Loads and compiles: *blob (free with policy_blob_free) holds *blob_len
 * bytes ready for policy_blob_open. Fails like fvm_policy_load, or with the
 * compiler's status (FVM_E_RANGE: too many wildcard states, why says where). */
fvm_status fvm_policy_compile_file(const wchar_t *path, void **blob, size_t *blob_len, policy_diag_fn diag,
                                   void *diag_ctx, char *why, size_t why_size);

/* <exe folder>\policy: where default.ini and templates\ are shipped. */
fvm_status fvm_policy_shipped_dir(wchar_t *out, size_t cap);

/* The policy a box uses: <box>\policy.ini when it exists, else the shipped
 * <exe folder>\policy\default.ini. FVM_E_RANGE when out is too small. */
fvm_status fvm_policy_box_path(const wchar_t *box_path, wchar_t *out, size_t cap);

#endif /* FVM_RUNTIME */
#endif

/* fvm/fvm.h - the FVM SDK: a C library (build/win/libfvm.a) for programs that
 * manage FVM boxes, ask what a policy decides, and follow a box's audit log.
 *
 * The idea: one implementation of every operation. Box lifecycle calls
 * (create, remove, run, stop) run fvm.exe itself - the SDK builds the command
 * line, waits, and turns a failure into an error code plus fvm.exe's own
 * message - so a box made by the SDK is exactly a box made by the CLI.
 * Questions that need no process (does a box exist, how many processes does
 * it have, what does a policy decide, what is in the audit log) are answered
 * in-process by the same code fvm.exe and the broker use.
 *
 * Conventions:
 *   - Every call returns an fvm_result: FVM_SDK_OK (0) or a negative
 *     FVM_SDK_E_* code. Every call takes an optional fvm_sdk_error *err (may
 *     be NULL) that receives the code and a UTF-8 message with context
 *     ("box 'x': ...", "policy.ini:3:7: error: ...").
 *   - Strings: box names, policy paths, resource names and audit fields are
 *     UTF-8 (char); paths of FVM's own installation and command lines are
 *     UTF-16 (wchar_t), as Windows gives them.
 *   - Nothing aborts; nothing is printed.
 *
 * Threading: an fvm_sdk is read-only after fvm_sdk_open, so any call may be
 * made from any thread concurrently, except fvm_sdk_close, which must come
 * last (after every subscription is unsubscribed). Audit callbacks run on the
 * subscription's own thread.
 *
 * Linking: libfvm.a contains the SDK and the FVM core and common objects it
 * needs; link with -lfvm -ladvapi32 -lshlwapi -lntdll (see docs/sdk.md). */
#ifndef FVM_FVM_H
#define FVM_FVM_H

#include <windows.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int fvm_result;

#define FVM_SDK_OK          0
#define FVM_SDK_E_INVALID  (-1)  /* a bad argument: NULL, bad box name, unknown type, bad resource name */
#define FVM_SDK_E_NOTFOUND (-2)  /* no such box, file or FVM installation */
#define FVM_SDK_E_EXISTS   (-3)  /* the box already exists */
#define FVM_SDK_E_POLICY   (-4)  /* the policy has errors (message: the first as file:line:column) */
#define FVM_SDK_E_FAILED   (-5)  /* fvm.exe reported a failure (message: what it printed) */
#define FVM_SDK_E_SYSTEM   (-6)  /* a Windows call failed (message names it and the error) */
#define FVM_SDK_E_NOMEM    (-7)
#define FVM_SDK_E_BUSY     (-8)  /* the box is running and force was not given */
#define FVM_SDK_E_TAMPERED (-9)  /* the audit log does not verify (message: where) */

typedef struct fvm_sdk_error {
    int code;                    /* the call's fvm_result */
    char message[512];           /* UTF-8, NUL-terminated; "" on success */
} fvm_sdk_error;

typedef struct fvm_sdk fvm_sdk;

/* ---- opening ---------------------------------------------------------------------- */

/* Opens the SDK.
 *   fvm_exe_dir: the folder holding fvm.exe, fvm-broker.exe, fvm.dll and the
 *                shipped policy\ folder. NULL: %FVM_HOME% when set, else the
 *                folder of the module the SDK is linked into.
 *   fvm_root:    the FVM root (boxes live in <root>\boxes\NAME). NULL:
 *                %FVM_ROOT% when set, else C:\FVM. The SDK passes it to every
 *                fvm.exe it runs (as FVM_ROOT), whatever the caller's
 *                environment says.
 * Fails with FVM_SDK_E_NOTFOUND when fvm.exe is not in that folder. On
 * success *out is a handle to free with fvm_sdk_close. */
fvm_result fvm_sdk_open(const wchar_t *fvm_exe_dir, const wchar_t *fvm_root, fvm_sdk **out, fvm_sdk_error *err);

/* Frees the handle (NULL is fine). Unsubscribe every audit subscription first. */
void fvm_sdk_close(fvm_sdk *sdk);

/* The folders the SDK resolved (valid until fvm_sdk_close). */
const wchar_t *fvm_sdk_exe_dir(const fvm_sdk *sdk);
const wchar_t *fvm_sdk_root(const fvm_sdk *sdk);

/* ---- box lifecycle (runs fvm.exe) ----------------------------------------------------- */

/* Creates box `name`: `fvm create NAME [--policy FILE] [--quota BYTES]`.
 * policy_path (UTF-8, may be NULL: the shipped default policy) is compiled
 * first, so a policy with errors is refused with FVM_SDK_E_POLICY and the
 * first error as "file:line:column: error: ..." before any folder is made.
 * quota_bytes: 0 for no storage quota. FVM_SDK_E_EXISTS if the box exists. */
fvm_result fvm_box_create(fvm_sdk *sdk, const char *name, const char *policy_path, uint64_t quota_bytes,
                          fvm_sdk_error *err);

/* Removes box `name` and every trace of it: `fvm rm NAME [--force]`. A
 * running box is refused (FVM_SDK_E_BUSY) unless force, which stops it
 * first. FVM_SDK_E_NOTFOUND if there is no such box. */
fvm_result fvm_box_remove(fvm_sdk *sdk, const char *name, int force, fvm_sdk_error *err);

/* *exists = 1 when box `name` exists (its box.ini is there), else 0.
 * In-process. */
fvm_result fvm_box_exists(fvm_sdk *sdk, const char *name, int *exists, fvm_sdk_error *err);

#define FVM_RUN_WAIT 1u          /* wait for the program and return its exit code */

/* Runs command_line (UTF-16, the program and its arguments as one Windows
 * command line) in box `name`: `fvm run --box NAME -- COMMAND_LINE`. The box
 * must exist and its policy must compile (both checked first, with
 * messages). The program inherits the caller's standard handles.
 *   flags & FVM_RUN_WAIT: waits; *exit_code (may be NULL) receives the
 *     program's exit code. *process (may be NULL) is set to NULL.
 *   otherwise: returns at once; *process (may be NULL; then the handle is
 *     closed) receives the handle of the fvm.exe process that runs the
 *     program. The caller owns it (CloseHandle). It ends when the program
 *     ends and its exit code is the program's; exit_code is not used.
 * Once the program started, fvm.exe's own failures (rare: the broker did not
 * start, the program could not be boxed) go to the standard error handle
 * and show as exit code 1. */
fvm_result fvm_box_run(fvm_sdk *sdk, const char *name, const wchar_t *command_line, unsigned flags,
                       HANDLE *process, DWORD *exit_code, fvm_sdk_error *err);

/* Ends every process of the box, children included: `fvm stop NAME`. A box
 * that is not running is fine. */
fvm_result fvm_box_stop(fvm_sdk *sdk, const char *name, fvm_sdk_error *err);

/* *count = the box's processes right now (0 when it is not running).
 * In-process, from the box's job object. */
fvm_result fvm_box_process_count(fvm_sdk *sdk, const char *name, unsigned long *count, fvm_sdk_error *err);

/* ---- policy evaluation (in-process) ---------------------------------------------------------- */

/* Values are those of the policy engine; a larger value is stricter. */
typedef enum fvm_action {
    FVM_ACTION_OPEN = 1,         /* the host itself */
    FVM_ACTION_COW = 2,          /* copy-on-write into the box (no rule: the default) */
    FVM_ACTION_READ = 3,         /* the host's content, read-only */
    FVM_ACTION_ASK = 4,          /* a decision provider answers (include/fvm/provider.h) */
    FVM_ACTION_HIDE = 5,         /* does not exist */
    FVM_ACTION_DENY = 6          /* access denied */
} fvm_action;

typedef struct fvm_decision {
    fvm_action action;
    char action_name[8];         /* "open", "cow", "read", "ask", "hide", "deny" */
    int audit;                   /* 1 when the decision is written to the audit log */
    int is_default;              /* 1 when no rule matched (then rule is "default") */
    char rule[300];              /* the audit log's rule label: "policy.ini:12" or "default" */
    fvm_action ask_default;      /* ask only: the answer when the provider is absent or slow */
    unsigned ask_timeout_ms;     /* ask only */
} fvm_decision;

/* What the policy file policy_path (UTF-8) decides for one resource, with
 * the matcher boxed processes use, after loading and compiling the file as
 * the broker does (its includes; `template` from <fvm_exe_dir>\policy).
 *   type:     "file", "key" or "object" (the reserved types are accepted too).
 *   resource: any form a rule could use: "C:\Data\a.txt", "%USERPROFILE%\x",
 *             "\??\C:\x"; "HKLM\Software\X", "HKCU\..."; "Global\Foo",
 *             "pipe:name"... (made canonical by the policy engine).
 *   program:  the program's file name or path (scoped rules), or NULL.
 * Errors: FVM_SDK_E_POLICY (first error as file:line:column),
 * FVM_SDK_E_NOTFOUND (no such policy file), FVM_SDK_E_INVALID (unknown type,
 * a resource that is not a name of that type). The policy is read on every
 * call (a few milliseconds): cache decisions if you need many. */
fvm_result fvm_policy_evaluate(fvm_sdk *sdk, const char *policy_path, const char *type, const char *resource,
                               const char *program, fvm_decision *out, fvm_sdk_error *err);

/* The same with the policy box `name` runs with: <box>\policy.ini, else the
 * shipped <fvm_exe_dir>\policy\default.ini. */
fvm_result fvm_box_policy_evaluate(fvm_sdk *sdk, const char *name, const char *type, const char *resource,
                                   const char *program, fvm_decision *out, fvm_sdk_error *err);

/* ---- the audit stream (in-process) ------------------------------------------------------------- */

/* One record of <box>\audit.jsonl (docs/policy.md, "The audit log"), its
 * strings unescaped to UTF-8. Valid during the callback only. */
typedef struct fvm_audit_event {
    uint64_t seq;                /* 1, 2, 3... without gaps */
    uint32_t pid;
    const char *time;            /* "2026-11-25T17:41:12.345Z" (UTC) */
    const char *box;
    const char *image;           /* the program's path */
    const char *type;            /* "file", "key", "object" */
    const char *op;              /* "open", "create", "write", "delete", "rename", "query"... */
    const char *name;            /* the canonical resource name */
    const char *decision;        /* "deny", "hide", "open", "read", "cow" */
    const char *rule;            /* "policy.ini:12" or "default" */
    const char *hash;            /* the record's chain hash, 64 hex digits */
    const char *line;            /* the record exactly as in the log, without the newline */
    size_t line_len;
} fvm_audit_event;

/* Called once per record, in log order, on the subscription's thread.
 * Return 0 to go on, non-zero to stop following (then call
 * fvm_audit_unsubscribe as usual). Must not call fvm_audit_unsubscribe
 * on its own subscription. */
typedef int (*fvm_audit_callback)(void *ctx, const fvm_audit_event *event);

typedef struct fvm_audit_subscription fvm_audit_subscription;

/* Follows box `name`'s audit log: starts a thread that reads the records
 * with seq >= from_seq (0 or 1: from the first) already in the log, then
 * polls every 100 ms for new ones, and calls callback(ctx, event) for each.
 * A log that does not exist yet is waited for; a log that got shorter (cut
 * or replaced) is read again from its start, without delivering a seq
 * twice. Lines that are not records are skipped (fvm_audit_verify tells
 * whether the log is intact). FVM_SDK_E_NOTFOUND when there is no such box.
 * *out is owned by the caller until fvm_audit_unsubscribe. */
fvm_result fvm_audit_subscribe(fvm_sdk *sdk, const char *name, uint64_t from_seq, fvm_audit_callback callback,
                               void *ctx, fvm_audit_subscription **out, fvm_sdk_error *err);

/* Stops the thread, waits for it (a callback in progress finishes first)
 * and frees the subscription. NULL is fine. */
void fvm_audit_unsubscribe(fvm_audit_subscription *subscription);

/* Records delivered so far (readable from any thread). */
uint64_t fvm_audit_delivered(const fvm_audit_subscription *subscription);

/* Verifies the box's audit log (hash chain and head), as `fvm logs
 * --verify`. FVM_SDK_OK: intact (*records, may be NULL, receives how many;
 * 0 when nothing was recorded yet); FVM_SDK_E_TAMPERED with the verifier's
 * words ("line 3: hash mismatch (edited?)") otherwise. */
fvm_result fvm_audit_verify(fvm_sdk *sdk, const char *name, uint64_t *records, fvm_sdk_error *err);

#ifdef __cplusplus
}
#endif

#endif

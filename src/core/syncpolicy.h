/* syncpolicy.h - the [sync] section of a box policy: which of the box's
 * changes `fvm commit` may apply to the host.
 *
 * The rest of a policy decides what a boxed program may touch while it
 * runs; [sync] decides what leaves the box afterwards. One rule a line:
 *
 *     [sync]
 *     commit C:\Users\*\Documents\**
 *     ask    HKCU\Software\MyApp\**
 *     deny   C:\Users\*\Documents\secret\**
 *
 * commit: the change may be committed; ask: only after a yes from the user
 * (a run without a terminal refuses it and says so); deny: never. The LAST
 * rule that matches a path decides (later lines refine earlier ones, like a
 * .gitignore); a path no rule matches is not committed (deny by default: a
 * box's changes leave it only where the policy says so).
 *
 * Patterns are Win32 paths (C:\dir\file, \\server\share\x) or registry keys
 * (HKEY_LOCAL_MACHINE\..., HKLM\..., HKEY_CURRENT_USER\..., HKCU\..., HKU\...,
 * HKCR\...); '/' is '\'; case is ignored (ASCII). '?' is one character
 * except '\', '*' any run of characters without '\', '**' anything
 * (including '\'); "\**" at the end also matches the folder itself and
 * "**\" in the middle also matches no folder at all. %NAME% is expanded
 * through the caller's variable lookup (the CLI: the process environment).
 *
 * The parser reads one policy text and skips every other section (the
 * main policy parser, core/policy_parse.c, skips [sync] in turn). Errors are
 * reported as file:line:column and do not stop the parse; a policy with any
 * error is refused as a whole. Portable C11; allocates. */
#ifndef FVM_CORE_SYNCPOLICY_H
#define FVM_CORE_SYNCPOLICY_H

#include <stddef.h>

#include "core/error.h"

typedef enum sync_action {
    SYNC_DENY = 0,
    SYNC_COMMIT = 1,
    SYNC_ASK = 2
} sync_action;

typedef struct sync_rule {
    sync_action action;
    char *pattern;          /* expanded and canonical: '\' separators, registry roots spelled out */
    const char *file;       /* the policy's name as given to the parser */
    unsigned line;
} sync_rule;

typedef struct sync_policy {
    sync_rule *rules;
    size_t count;
    char *file;             /* owned copy of the name */
} sync_policy;

/* One problem: "file:line:column: message". */
typedef void (*sync_diag_fn)(void *ctx, const char *file, unsigned line, unsigned column, const char *message);
/* %NAME% lookup: the value (NUL-terminated) or NULL when not defined. */
typedef const char *(*sync_var_fn)(void *ctx, const char *name, size_t len);

/* Parses the [sync] sections of text[0..len). Every problem goes to diag
 * (may be NULL). FVM_OK: *out is filled (free with sync_policy_free; no rules
 * when the text has no [sync] section); FVM_E_PARSE when any line is bad
 * (err: the first problem and the count), FVM_E_NOMEM. */
fvm_status sync_policy_parse(const char *file, const char *text, size_t len, sync_var_fn vars, void *vars_ctx,
                             sync_diag_fn diag, void *diag_ctx, sync_policy *out, fvm_error *err);
void sync_policy_free(sync_policy *p);

/* The action for a path (Win32 file path or registry key, as above); *rule
 * (may be NULL) gets the deciding rule or NULL (the default, deny). */
sync_action sync_policy_decide(const sync_policy *p, const char *path, size_t len, const sync_rule **rule);

/* 1 when the canonical pattern matches path (exposed for tests). */
int sync_pattern_match(const char *pattern, size_t plen, const char *path, size_t len);

/* The canonical form of a path for matching: '/' -> '\', registry root
 * abbreviations spelled out, no trailing '\'. Writes at most cap bytes with
 * the NUL; returns the length, or (size_t)-1 when it does not fit. */
size_t sync_canonical_path(const char *in, size_t len, char *out, size_t cap);

const char *sync_action_name(sync_action a);

#endif

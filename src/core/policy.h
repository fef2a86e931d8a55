/* policy.h - the unified policy engine: one policy per box decides, for every
 * resource a boxed program touches, what happens (cow, read, open, hide,
 * deny, ask) and whether it is audited.
 *
 * Three stages, each its own file:
 *   policy_parse.c    policy text -> rule list (policy_load_file/_text).
 *                     Includes and templates are read through a callback, so
 *                     the core does no I/O; environment variables, the user's
 *                     SID and the volume table come from the caller. Every
 *                     pattern is turned into the canonical name form the
 *                     runtime matches on (see "Canonical names" below).
 *   policy_compile.c  rule list -> an immutable, position-independent blob
 *                     (offsets, never pointers; a header with magic,
 *                     version, size and checksum). The broker compiles once
 *                     per box start; every boxed process maps it read-only.
 *   policy_match.c    blob + resource type + canonical name + program ->
 *                     decision. No allocation, no C library beyond
 *                     memcpy/memset/memcmp/strlen, bounded stack (under 3 KB):
 *                     usable inside the CRT-free fvm.dll.
 *   policy_explain.c  a human explanation: the winning rule and each rule it
 *                     beat, with the tie-break step that decided.
 * The parser and the compiler allocate; they are compiled out of the runtime
 * build (FVM_RUNTIME), which only matches.
 *
 * Matching cost is proportional to the name's length, not to the number of
 * rules: patterns are compiled into a trie over name components (the parts
 * between backslashes). Each trie node keeps its literal children in a hash
 * table, its wildcard children ("*.docx", "a?c") in a list and its "**"
 * child apart. Matching walks the name once, keeping the set of trie nodes
 * whose pattern prefix matches the name so far. Per component, each live
 * node costs one hash probe (O(component length)) plus one glob test per
 * wildcard child. Bound: O(L x W), L = name length, W = live nodes plus
 * wildcard children tested per component; W depends on how many wildcard
 * patterns can match the same name prefix, never on the number of literal
 * rules. The compiler computes an upper bound of live nodes for the policy
 * and refuses policies above POLICY_MATCH_MAX_STATES, so the matcher's fixed
 * state arrays can never overflow on a blob it compiled.
 *
 * Canonical names (what policy_match expects, and what patterns become):
 *   file    the canonical NT path of core/ntpath.h ("\??\C:\Dir\File",
 *           "\??\UNC\server\share\x", "\??\C:" for a volume, "\??\NUL"),
 *           without the stream. Pipes and mailslots are objects, not files.
 *   key     the NT registry path as NtQueryKey reports it:
 *           "\REGISTRY\MACHINE\SOFTWARE\X", "\REGISTRY\USER\<SID>\...".
 *   object  the full object-manager path ("\BaseNamedObjects\Foo",
 *           "\Sessions\1\BaseNamedObjects\Foo", "\RPC Control\x"); named
 *           pipes "\Device\NamedPipe\name"; mailslots "\Device\MailSlot\name";
 *           window classes "class:Name" (no leading backslash, so no object
 *           path can collide with it).
 *   net     the pattern as written (core/netrules.h); the runtime matches
 *           [net] rules with core/netrules.c, not with the trie.
 *   reserved types (process, ...): the name as the future runtime will
 *           report it; backslashes separate components.
 * All comparisons are case-insensitive with ntpath_upcase's built-in folding.
 * Names are split into components at every backslash; a leading backslash
 * gives an empty first component, so "\x" and "x" never match each other.
 *
 * Precedence (most specific rule wins; docs/policy.md has examples). Among
 * the rules whose pattern matches the name and whose scope includes the
 * program, compare in this order and stop at the first difference:
 *   1. scope: a rule for a named program beats a rule for a group of
 *      programs, which beats a rule for every program;
 *   2. more literal characters in the pattern (every character that is not
 *      a wildcard; separators not counted);
 *   3. fewer "**" components;
 *   4. fewer '*';
 *   5. fewer '?';
 *   6. the stricter action: deny > hide > ask > read > cow > open;
 *   7. the rule that comes later in load order (an include's rules sit where
 *      the include line is).
 * Step 7 makes the order total: two different rules never tie. */
#ifndef FVM_CORE_POLICY_H
#define FVM_CORE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/ntpath.h"

/* ---- vocabulary ------------------------------------------------------------ */

typedef enum policy_type {
    POLICY_TYPE_FILE = 0,
    POLICY_TYPE_KEY,
    POLICY_TYPE_OBJECT,
    /* Reserved: parsed, checked and compiled now, enforced by later runtime
     * capabilities. */
    POLICY_TYPE_PROCESS,
    POLICY_TYPE_NET,
    POLICY_TYPE_SERVICE,
    POLICY_TYPE_SCREEN,
    POLICY_TYPE_PRINT,
    POLICY_TYPE_DESKTOP,
    POLICY_TYPE_MEMORY,
    POLICY_TYPE_DATA,
    POLICY_TYPE_COUNT
} policy_type;

/* Numeric order is strictness order (precedence step 6): a larger value is
 * stricter. NONE is never the action of a rule. */
typedef enum policy_action {
    POLICY_ACTION_NONE = 0,
    POLICY_ACTION_OPEN,  /* direct host access */
    POLICY_ACTION_COW,   /* copy-on-write into the box (default for file/key/object) */
    POLICY_ACTION_READ,  /* host content, read-only */
    POLICY_ACTION_ASK,   /* a decision provider answers; ask_default after the timeout */
    POLICY_ACTION_HIDE,  /* does not exist */
    POLICY_ACTION_DENY   /* access denied */
} policy_action;
#define POLICY_ACTION_MAX POLICY_ACTION_DENY

/* Numeric order is precedence step 1. */
typedef enum policy_scope_kind {
    POLICY_SCOPE_ALL = 0,     /* every program */
    POLICY_SCOPE_GROUP = 1,   /* "@group:" */
    POLICY_SCOPE_PROGRAM = 2  /* "program.exe:" */
} policy_scope_kind;

const char *policy_type_name(policy_type type);        /* "file", "key", ... or "?" */
const char *policy_action_name(policy_action action);  /* "deny", ... or "?" */
int policy_type_enforced(policy_type type);            /* 1 for file, key, object, process, service, net, print, screen, desktop */
/* The action when no rule matches: cow for file/key/object/process/service, deny for screen
 * and desktop (runtime/screen.c, runtime/clipboard.c), open for net, print and the reserved
 * types (which nothing enforces yet). */
policy_action policy_type_default_action(policy_type type);

/* ---- precedence -------------------------------------------------------------- */

/* What precedence looks at, for one rule (one canonical pattern). */
typedef struct policy_rank {
    policy_scope_kind scope;
    uint32_t literal_chars;
    uint32_t globstars;      /* "**" components */
    uint32_t stars;          /* '*' inside components */
    uint32_t qmarks;         /* '?' */
    policy_action action;
    uint32_t order;          /* load order, 0-based */
} policy_rank;

/* The step that decided a comparison (numbered as in the list above). */
typedef enum policy_tiebreak {
    POLICY_TIE_NONE = 0,     /* identical ranks (the same rule) */
    POLICY_TIE_SCOPE = 1,
    POLICY_TIE_LITERALS,
    POLICY_TIE_GLOBSTARS,
    POLICY_TIE_STARS,
    POLICY_TIE_QMARKS,
    POLICY_TIE_ACTION,
    POLICY_TIE_ORDER
} policy_tiebreak;

/* > 0 when a wins over b, < 0 when b wins, 0 when identical. decided_by
 * (may be NULL) receives the step that decided. */
int policy_rank_compare(const policy_rank *a, const policy_rank *b, policy_tiebreak *decided_by);
const char *policy_tiebreak_text(policy_tiebreak step);   /* "program scope", ... */

/* ---- parsing ------------------------------------------------------------------- */

#define POLICY_NAME_MAX          260u  /* bytes of a source file's display name, with the NUL */
#define POLICY_MAX_INCLUDE_DEPTH 16u
#define POLICY_DEFAULT_MAX_ERRORS 50u
#define POLICY_MAX_COMPONENTS    256u  /* names in one pattern */
#define POLICY_ASK_DEFAULT_TIMEOUT_MS 30000u
#define POLICY_ASK_MAX_TIMEOUT_MS     3600000u

typedef enum policy_severity {
    POLICY_DIAG_ERROR = 0,
    POLICY_DIAG_WARNING,
    POLICY_DIAG_NOTE
} policy_severity;

/* One message of `fvm policy check`. Strings are valid during the callback
 * only. line and column are 1-based; column counts characters (UTF-8 code
 * points), a tab is one column. */
typedef struct policy_diag {
    policy_severity severity;
    const char *file;
    uint32_t line, column;
    const char *message;
} policy_diag;

typedef void (*policy_diag_fn)(void *ctx, const policy_diag *diag);

/* "file:line:column: error: message" (NUL-terminated, cut to cap). Returns
 * the length it wanted. */
size_t policy_diag_format(const policy_diag *diag, char *out, size_t cap);

typedef enum policy_include_kind {
    POLICY_INCLUDE_TOP = 0,   /* the policy file itself (from is NULL) */
    POLICY_INCLUDE_FILE,      /* "include NAME": resolve NAME relative to `from` */
    POLICY_INCLUDE_TEMPLATE   /* "template NAME": a shipped template: policy/templates/NAME.ini, and
                                 "template default" is policy/default.ini */
} policy_include_kind;

/* Reads a policy source for the parser. name is as written (variables
 * expanded); from is the resolved name of the including file. On success:
 * *text is a buffer from malloc holding *len bytes (the parser frees it),
 * and resolved receives the canonical name of the file (NUL-terminated, at
 * most POLICY_NAME_MAX bytes), used in messages, for include-once and cycle
 * detection. On failure: a status and a message in err; the parser reports
 * it at the include line (or as the whole load's failure for the top file). */
typedef fvm_status (*policy_read_fn)(void *ctx, policy_include_kind kind, const char *name, const char *from,
                                     char **text, size_t *len, char resolved[POLICY_NAME_MAX], fvm_error *err);

/* A variable for %NAME% (names compare case-insensitively). */
typedef struct policy_var {
    const char *name;
    const char *value;
} policy_var;

/* Everything the parser cannot know by itself. All optional except where
 * the policy needs it (a missing reader makes include an error, a missing
 * user_sid makes HKCU rules errors). */
typedef struct policy_env {
    policy_read_fn read;
    void *read_ctx;
    const policy_var *vars;       /* the box's environment: USERPROFILE, APPDATA, ... */
    size_t var_count;
    const char *user_sid;         /* "S-1-5-21-...": HKCU is \REGISTRY\USER\<sid> */
    /* Where Local\ and unprefixed object names live, e.g.
     * "\Sessions\1\BaseNamedObjects". NULL: "\Sessions\*\BaseNamedObjects". */
    const char *session_objects;
    /* Volume table, system root, computer name for file patterns. Its
     * current_dir is ignored: relative patterns are errors. */
    const ntpath_context *path_ctx;
    policy_diag_fn diag;
    void *diag_ctx;
    unsigned max_errors;          /* 0: POLICY_DEFAULT_MAX_ERRORS */
} policy_env;

/* A canonical pattern of a rule (HKCR rules have two: machine and user
 * classes) with its precedence counts. */
typedef struct policy_pattern {
    uint16_t *units;              /* canonical, original case, NUL-terminated */
    size_t len;
    uint32_t literal_chars, globstars, stars, qmarks;
} policy_pattern;

/* One rule as parsed. Strings live as long as the policy. */
typedef struct policy_rule {
    policy_type type;
    policy_action action;
    int audit;
    uint32_t ask_timeout_ms;      /* ask only */
    policy_action ask_default;    /* ask only: the answer when nobody answers in time */
    policy_scope_kind scope;
    const char *scope_name;       /* program name or group name (no '@'); NULL for ALL */
    const char *text;             /* the pattern as written, before expansion */
    const char *file;             /* resolved name of the source file */
    uint32_t line, column;        /* of the rule's first character */
    uint32_t order;               /* load order */
    size_t pattern_count;
    policy_pattern patterns[2];
} policy_rule;

typedef struct policy_group {
    const char *name;
    const char *file;
    uint32_t line;
    const char **programs;        /* base names as written */
    size_t program_count;
} policy_group;

typedef struct policy policy;

/* Loads a policy: reads `name` through env->read (kind TOP), then its
 * includes. Every problem goes to env->diag as file:line:column; up to
 * max_errors errors are reported, not just the first. Returns FVM_OK with
 * *out set, or FVM_E_PARSE (err: "N errors in FILE") with *out NULL, or
 * FVM_E_NOMEM / the reader's status for the top file. Warnings and notes do
 * not fail the load. */
fvm_status policy_load_file(const char *name, const policy_env *env, policy **out, fvm_error *err);

/* The same for text already in memory (name is used in messages). */
fvm_status policy_load_text(const char *name, const char *text, size_t len, const policy_env *env, policy **out,
                            fvm_error *err);

void policy_free(policy *p);
size_t policy_rule_count(const policy *p);
const policy_rule *policy_rule_at(const policy *p, size_t index);
size_t policy_group_count(const policy *p);
const policy_group *policy_group_at(const policy *p, size_t index);

/* Turns a name as an administrator or `fvm policy explain` writes it
 * ("%USERPROFILE%\x.txt", "HKCU\Software\X", "Global\Foo", "pipe:x") into
 * the canonical name policy_match expects, with the same code that turns
 * patterns canonical. out receives NUL-terminated UTF-16 (cap counts the
 * NUL). Errors: FVM_E_INVALID / FVM_E_NOTFOUND with a message;
 * FVM_E_RANGE when cap is too small. */
fvm_status policy_canonical_name(policy_type type, const char *text, const policy_env *env, uint16_t *out,
                                 size_t cap, size_t *out_len, fvm_error *err);

/* An in-memory reader for tests, fuzzing and embedded defaults: files[i]
 * names a text; TOP and FILE look the name up as is, TEMPLATE as
 * "templates/NAME.ini" ("default.ini" for the template "default"), which is
 * the layout of the shipped policy/ folder the CLI's reader should follow. Use with env.read = policy_memory_read and
 * env.read_ctx = a policy_memory_files. */
typedef struct policy_memory_file {
    const char *name;
    const char *text;
} policy_memory_file;
typedef struct policy_memory_files {
    const policy_memory_file *files;
    size_t count;
} policy_memory_files;
fvm_status policy_memory_read(void *ctx, policy_include_kind kind, const char *name, const char *from, char **text,
                              size_t *len, char resolved[POLICY_NAME_MAX], fvm_error *err);

/* Parses a type name as written in a section header ("file", "net"...). */
int policy_type_from_name(const char *name, size_t len, policy_type *out);

/* Strict UTF-8 -> UTF-16 (no overlong forms, surrogates or values above
 * U+10FFFF). Returns the number of units written (at most cap), or
 * (size_t)-1 for invalid UTF-8 (*bad_offset: the byte where it fails) or
 * when cap is too small (*bad_offset == len). */
size_t policy_utf8_to_utf16(const char *in, size_t len, uint16_t *out, size_t cap, size_t *bad_offset);

/* ---- compiling ------------------------------------------------------------------- */

/* The most trie nodes that can be alive at once while matching one name. */
#define POLICY_MATCH_MAX_STATES 256u

#define POLICY_BLOB_VERSION 1u

/* Compiles p (NULL: no rules, defaults only) into a blob allocated with
 * malloc (free with policy_blob_free). Fails with FVM_E_RANGE when the
 * policy is too large for 32-bit offsets or could keep more than
 * POLICY_MATCH_MAX_STATES wildcard states alive; the message says which
 * resource type. */
fvm_status policy_compile(const policy *p, void **blob, size_t *blob_len, fvm_error *err);
void policy_blob_free(void *blob);

/* ---- matching ----------------------------------------------------------------------- */

/* A validated blob. Keep the blob mapped for as long as the view is used;
 * decisions point into it. */
typedef struct policy_view {
    const uint8_t *base;
    size_t size;
} policy_view;

/* Checks everything before use, since a blob on disk is outside input: size,
 * magic, version, checksum, every section's bounds and alignment, every
 * offset, index and count, every enum value. On success fills view.
 * FVM_E_INVALID with a message naming the first problem otherwise. */
fvm_status policy_blob_open(const void *blob, size_t len, policy_view *view, fvm_error *err);
fvm_status policy_blob_validate(const void *blob, size_t len, fvm_error *err);

#define POLICY_NO_RULE 0xFFFFFFFFu

typedef struct policy_decision {
    policy_action action;
    int audit;
    int is_default;               /* no rule matched: the type's default action */
    uint32_t rule;                /* rule index in the blob, POLICY_NO_RULE for a default */
    uint32_t ask_timeout_ms;      /* ask only */
    policy_action ask_default;    /* ask only */
    const char *file;             /* the rule's source file (UTF-8, not NUL-terminated; "" for a default) */
    uint32_t file_len;
    uint32_t line, column;
} policy_decision;

/* Decides for one name. name is the canonical name (see above) in UTF-16,
 * len units; program is the image's file name or full path (only the part
 * after the last '\' or '/' counts), may be NULL. Returns FVM_OK;
 * FVM_E_INVALID for a bad type or an empty name (out is then deny); FVM_E_RANGE
 * if the live-state bound is exceeded, which only a blob not made by
 * policy_compile can cause (out is then deny: fail closed). */
fvm_status policy_match(const policy_view *view, policy_type type, const uint16_t *name, size_t len,
                        const uint16_t *program, size_t program_len, policy_decision *out);

/* Every rule whose pattern matches the name, whatever its scope, in no
 * particular order (a rule with two patterns can come twice). For explain
 * and tests. Returns as policy_match. */
typedef void (*policy_match_fn)(void *ctx, uint32_t rule);
fvm_status policy_match_each(const policy_view *view, policy_type type, const uint16_t *name, size_t len,
                             policy_match_fn fn, void *ctx);

/* A rule of the blob, for explanations and audit records. Text spans point
 * into the blob (UTF-8, not NUL-terminated); pattern is the canonical
 * pattern (UTF-16). */
typedef struct policy_rule_info {
    policy_type type;
    policy_action action;
    int audit;
    uint32_t ask_timeout_ms;
    policy_action ask_default;
    policy_rank rank;
    const char *scope_name;  uint32_t scope_name_len;
    const char *text;        uint32_t text_len;
    const char *file;        uint32_t file_len;
    uint32_t line, column;
    const uint16_t *pattern; uint32_t pattern_len;
} policy_rule_info;

size_t policy_view_rule_count(const policy_view *view);
/* What decisions a name of this type can get at all, as bits: 1u << action
 * for the type's default action and each rule's action, every action for a
 * rule that asks (a provider may answer anything), and POLICY_POSSIBLE_AUDIT
 * when some rule of the type audits. Lets a virtualizer skip work that only
 * some decision needs, such as filtering a listing when nothing can be
 * hidden. */
#define POLICY_POSSIBLE_AUDIT (1u << 16)
uint32_t policy_view_possible(const policy_view *view, policy_type type);

fvm_status policy_view_rule(const policy_view *view, uint32_t rule, policy_rule_info *out);
/* Does the rule's scope include this program (file name or path, may be
 * NULL)? */
int policy_rule_applies(const policy_view *view, uint32_t rule, const uint16_t *program, size_t program_len);

/* The audit record's "rule" field: "FILE:LINE" for a rule, "default" for a
 * default decision. NUL-terminated, cut to cap; returns the length wanted. */
size_t policy_decision_label(const policy_decision *d, char *out, size_t cap);

/* ---- below the hooks (policy_floor.c) -------------------------------------------------- */

/* The [file] rules ("FOLDER\**", for every program, hide or deny) whose
 * folder the kernel's floor may take out of the box's sight whole: no rule
 * that allows (open, cow, read, ask) and may reach a name beneath the
 * folder outranks them. Their indices into out, up to cap; returns how many
 * in all. policy_hidden_folder_length gives the folder's length in such a
 * rule's pattern (0 for a pattern of another form). */
size_t policy_hidden_folders(const policy_view *view, uint32_t *out, size_t cap);
size_t policy_hidden_folder_length(const uint16_t *pattern, size_t len);
/* Such a rule's folder as a drive path ("C:\Users\me\.ssh"), NUL-ended in
 * out; its length, or 0 for another form (UNC, a device) or too small a cap. */
size_t policy_hidden_folder_win32(const uint16_t *pattern, size_t len, uint16_t *out, size_t cap);

/* ---- explaining ------------------------------------------------------------------------ */

/* A multi-line human explanation of policy_match's decision: the decision,
 * the rule that made it, each other matching rule with the precedence step
 * that made it lose, and the rules that match the name but are scoped to
 * other programs. UTF-8, NUL-terminated, cut (with "...") to cap. */
fvm_status policy_explain(const policy_view *view, policy_type type, const uint16_t *name, size_t len,
                          const uint16_t *program, size_t program_len, char *out, size_t cap, fvm_error *err);

/* ---- blob format (shared by policy_compile.c and policy_match.c) ------------------------
 *
 * Little-endian (both targets are), every section 8-byte aligned, every
 * reference an index or an offset from the start of the blob, so the blob
 * can be mapped at any address. The checksum is FNV-1a (64-bit) over the
 * whole blob with the checksum field read as zero: it catches corruption,
 * not forgery (whoever can write the blob can write the policy). */

#define POLICY_BLOB_MAGIC "FVMPOLCY"
#define POLICY_NONE 0xFFFFFFFFu

enum {
    POLICY_BLOB_NODES = 0,    /* policy_blob_node[] */
    POLICY_BLOB_LITERALS,     /* policy_blob_slot[]: per node, an open-addressing table of literal children */
    POLICY_BLOB_WILDCARDS,    /* policy_blob_edge[]: per node, its wildcard children */
    POLICY_BLOB_NODE_RULES,   /* uint32_t[]: per node, the rules whose pattern ends there */
    POLICY_BLOB_RULES,        /* policy_blob_rule[] */
    POLICY_BLOB_PROGRAMS,     /* policy_blob_slot[]: program name -> program id (open addressing) */
    POLICY_BLOB_SCOPE_IDS,    /* uint32_t[]: per rule, the sorted ids of the programs in its scope */
    POLICY_BLOB_UNITS,        /* uint16_t[]: upper-cased component names and patterns; canonical patterns */
    POLICY_BLOB_TEXT,         /* char[]: UTF-8 display text (file names, patterns as written, scopes) */
    POLICY_BLOB_SECTION_COUNT
};

typedef struct policy_blob_section {
    uint32_t offset;          /* from the start of the blob */
    uint32_t count;           /* elements, not bytes */
} policy_blob_section;

typedef struct policy_blob_header {
    char magic[8];            /* POLICY_BLOB_MAGIC, no NUL */
    uint32_t version;         /* POLICY_BLOB_VERSION */
    uint32_t header_size;     /* sizeof(policy_blob_header) */
    uint32_t total_size;      /* the whole blob */
    uint32_t max_states;      /* compiler's bound of live states, <= POLICY_MATCH_MAX_STATES */
    uint64_t checksum;
    policy_blob_section sections[POLICY_BLOB_SECTION_COUNT];
    uint32_t roots[POLICY_TYPE_COUNT];           /* trie root per type, POLICY_NONE when no rule */
    uint8_t default_actions[POLICY_TYPE_COUNT];  /* action when no rule matches */
    uint8_t reserved[5];
} policy_blob_header;

#define POLICY_NODE_GLOBSTAR 1u   /* a "**" node: stays alive on every component */

typedef struct policy_blob_node {
    uint32_t literal_first, literal_slots;   /* slots: 0 or a power of two */
    uint32_t wildcard_first, wildcard_count;
    uint32_t globstar;                       /* the "**" child, POLICY_NONE if none */
    uint32_t rules_first, rules_count;       /* into NODE_RULES */
    uint32_t flags;                          /* POLICY_NODE_* */
} policy_blob_node;

/* A hash slot: a literal child (value = child node) or a program (value =
 * program id). value POLICY_NONE marks an empty slot. name: UNITS, upper case. */
typedef struct policy_blob_slot {
    uint32_t hash;
    uint32_t name_offset, name_len;
    uint32_t value;
} policy_blob_slot;

typedef struct policy_blob_edge {
    uint32_t pattern_offset, pattern_len;    /* UNITS, upper case, with '*' and '?' */
    uint32_t child;
} policy_blob_edge;

typedef struct policy_blob_rule {
    uint8_t type, action, audit, scope;
    uint8_t ask_default, reserved[3];
    uint32_t ask_timeout_ms;
    uint32_t order;
    uint32_t literal_chars, globstars, stars, qmarks;
    uint32_t scope_first, scope_count;       /* SCOPE_IDS, ascending */
    uint32_t scope_name_offset, scope_name_len;  /* TEXT */
    uint32_t text_offset, text_len;          /* TEXT: the pattern as written */
    uint32_t file_offset, file_len;          /* TEXT */
    uint32_t line, column;
    uint32_t pattern_offset, pattern_len;    /* UNITS: canonical pattern, original case */
} policy_blob_rule;

/* FNV-1a over upper-cased UTF-16 units: the hash of literal children and
 * program names. */
uint32_t policy_name_hash(const uint16_t *units, size_t len);

/* How the compiler reads one component of a canonical pattern (the parser
 * counts precedence with the same rule): exactly "**" is a globstar;
 * exactly "??" is the literal name of the DOS devices directory; any other
 * component with '*' or '?' is a glob; the rest are literal names. */
typedef enum policy_component_kind {
    POLICY_COMPONENT_LITERAL = 0,
    POLICY_COMPONENT_GLOB,
    POLICY_COMPONENT_GLOBSTAR
} policy_component_kind;
policy_component_kind policy_component_classify(const uint16_t *units, size_t len);

/* The header's checksum: FNV-1a 64 over the blob, the checksum field read as
 * zero. len must be at least sizeof(policy_blob_header). */
uint64_t policy_blob_checksum(const void *blob, size_t len);

#endif

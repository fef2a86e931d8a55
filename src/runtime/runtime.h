/* runtime.h - the base layer of fvm.dll, the runtime injected into every
 * boxed process, and the shape of a virtualizer.
 *
 * fvm.dll is built without a C runtime: it links only ntdll and kernel32, so
 * loading it costs little and runs no foreign initialisation code. Each
 * virtualized object type (files, keys, objects, windows...) is a
 * *virtualizer*: one file (or a few) that describes itself with one
 * fvm_virtualizer descriptor, listed in virtualizers.c. dllmain.c walks that
 * table; it knows no virtualizer by name. What every virtualizer needs and
 * none owns is here, once:
 *
 *   hooks        FVM_HOOK (one token per hook, type-checked), the start-up
 *                batch, groups of hooks for DLLs that load later (hooks.c);
 *   handles      one registry of per-handle state with close and duplicate
 *                callbacks; NtClose, NtDuplicateObject and NtQueryObject are
 *                hooked once and dispatch to the owner (handles.c);
 *   threads      one per-thread block, one TLS slot (thread.c);
 *   the box      its job object (boxjob.c), its index (file_index.c, started
 *                before any virtualizer), what its broker publishes
 *                (shared.c), its policy (policy.c).
 *
 * docs/adding-a-virtualizer.md is the checklist for a new one. */
#ifndef FVM_RUNTIME_RUNTIME_H
#define FVM_RUNTIME_RUNTIME_H

#include <windows.h>
#include <winternl.h>
#include <stdint.h>

#include "common/boxcfg.h"
#include "core/policy.h"
#include "runtime/hook/hook.h"
#include "runtime/nt.h"

typedef struct fvm_runtime {
    fvm_box_config config;     /* the box this process belongs to */
    BOOL           active;     /* hooks installed; the process is boxed */
    HMODULE        module;     /* fvm.dll itself */
    HANDLE         job;        /* the box's job object, opened on first use (runtime_box_job) */
} fvm_runtime;

extern fvm_runtime g_fvm;

/* Writes "fvm: <message>" to the process's standard error; for failures a
 * user must see (a process refused because it could not be boxed). */
void fvm_report(const char *fmt, ...);

/* ---- hooks (hooks.c) ------------------------------------------------------- */

/* The hooks of one batch: the start-up batch, or one late group. */
typedef struct hook_table {
    hook_spec specs[192];
    size_t    count;
    BOOL      overflow;   /* a spec did not fit: the process must not run half-hooked */
} hook_table;

/* FVM_HOOK(table, "ntdll.dll", NtOpenKey): hooks NtOpenKey with the detour
 * box_NtOpenKey, its original in real_NtOpenKey. Every detour is named
 * box_<function>; the build fails if its type is not the type of the
 * original's pointer (so a detour with a missing or misplaced parameter
 * cannot be installed). A missing function makes the batch fail: the
 * process does not start. FVM_HOOK_OPTIONAL skips a function the platform
 * lacks (Wine has no NtCreateProcessEx). */
#define FVM_HOOK_CHECK(NAME)                                                                             \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&box_##NAME), __typeof__(real_##NAME)),    \
                   "the detour box_" #NAME " does not have the type of real_" #NAME)
#define FVM_HOOK(table, dll, NAME)                                                                       \
    do {                                                                                                 \
        FVM_HOOK_CHECK(NAME);                                                                            \
        hook_table_add((table), (dll), #NAME, (void *)box_##NAME, (void **)&real_##NAME);                \
    } while (0)
#define FVM_HOOK_OPTIONAL(table, dll, NAME)                                                              \
    do {                                                                                                 \
        FVM_HOOK_CHECK(NAME);                                                                            \
        hook_table_add_optional((table), (dll), #NAME, (void *)box_##NAME, (void **)&real_##NAME);       \
    } while (0)

/* The untyped forms, for one detour that serves many functions (a blanket
 * refusal); prefer FVM_HOOK. */
void hook_table_add(hook_table *table, const char *module, const char *name, void *detour, void **original);
void hook_table_add_optional(hook_table *table, const char *module, const char *name, void *detour,
                             void **original);

/* A loaded module by file name ("user32.dll"), or NULL; never loads or
 * searches (GetModuleHandle of an absent DLL searches the disk on Wine). */
HMODULE runtime_loaded_module(const char *name);

/* Hooks for a DLL the program may load after start-up (sechost.dll,
 * win32u.dll). If the DLL is loaded at start-up they join the start-up
 * batch; otherwise they are installed, as one batch, from the loader's DLL
 * notification the moment it loads (again if it is unloaded and loaded
 * again). If they cannot be installed then, the process is ended: it must
 * not go on half-boxed. A virtualizer lists its groups in an array that
 * ends with {NULL}. */
typedef struct late_hooks {
    const char *dll;                    /* "win32u.dll" */
    void (*hooks)(hook_table *table);   /* adds the group's hooks */
    volatile LONG installed;            /* in the live copy of the DLL (hooks.c) */
} late_hooks;

/* ---- the per-thread block (thread.c) --------------------------------------- */

struct file_scratch;
struct key_name;
struct decision_cache;

/* Everything the runtime keeps per thread, in one TLS slot. A virtualizer
 * that needs per-thread state adds a field here and frees it in its
 * thread_detach. */
typedef struct fvm_thread {
    LONG bypass;                          /* FVM's own calls in progress (runtime_bypass_enter) */
    struct decision_cache *policy_cache;  /* policy.c */
    struct file_scratch *file_scratch;    /* file.c */
    struct key_name *key_name;            /* key.c: a spare name buffer */
    struct ipc_call *ipc_call;            /* ipc.c: a spare call buffer */
    struct net_hostent *hostent;          /* net_resolve.c: gethostbyname's answer to this thread */
    HANDLE created_thread;                /* proc.c: the first thread of the child this thread has just
                                             created and boxed, until its creator resumes it (process.c) */
} fvm_thread;

/* The calling thread's block, made on first use; NULL only when out of
 * memory. Neither call changes the thread's LastError (TlsGetValue clears
 * it on Wine and Windows: the block is read from the TEB instead), so
 * Win32-level hooks may use them freely. */
fvm_thread *fvm_thread_get(void);
/* The block if the thread has one, else NULL (never allocates). */
fvm_thread *fvm_thread_peek(void);
BOOL runtime_thread_start(void);
/* The thread is ending: each virtualizer's thread_detach, then the block. */
void runtime_thread_detach(void);

/* FVM's own calls (the broker pipe, the box job, the index lock...) run
 * with the bypass set: the object virtualizer lets them reach the host's
 * objects unchanged. */
void runtime_bypass_enter(void);
void runtime_bypass_leave(void);
BOOL runtime_bypassed(void);
#define ipc_bypass_enter runtime_bypass_enter
#define ipc_bypass_leave runtime_bypass_leave
#define ipc_bypassed     runtime_bypassed

/* ---- the virtualizer descriptor --------------------------------------------- */

typedef struct fvm_virtualizer {
    const char *name;                   /* "file": for messages */
    policy_type policy;                 /* the type its names are decided as */
    /* State it needs before any hook runs; FALSE: the process must not run
     * (the virtualizer has reported why). Called in table order, after the
     * policy and the box index have started. May be NULL. */
    BOOL (*start)(void);
    /* Adds its start-up hooks (FVM_HOOK); the table installs them all in
     * one batch. May be NULL. */
    void (*hooks)(hook_table *table);
    /* Groups of hooks for DLLs that load later; NULL or ends with {NULL}. */
    late_hooks *late;
    /* A handle it registered (handle_put) was closed, or closed as the source
     * of DUPLICATE_CLOSE_SOURCE: free data. Called after the real close. */
    void (*handle_closed)(HANDLE handle, unsigned tag, void *data);
    /* A handle it registered was duplicated into this process: the state
     * for the copy (registered under the same tag), or NULL for none. May be
     * NULL: copies start with no state. Called with the registry's lock
     * held: it must not call handle_*. */
    void *(*handle_duplicated)(HANDLE from, HANDLE to, unsigned tag, void *data);
    /* NtQueryObject(ObjectNameInformation): translates, in place, a name the
     * object manager reports for one of its box objects to the name the
     * program knows; returns the new length, or 0 if the name is not its.
     * May be NULL. */
    size_t (*program_name)(uint16_t *name, size_t len);
    /* The thread is ending: free what it keeps in the thread's block. May
     * be NULL. */
    void (*thread_detach)(fvm_thread *thread);
} fvm_virtualizer;

/* virtualizers.c: every virtualizer, in start order. */
extern const fvm_virtualizer *const g_virtualizers[];
extern const size_t g_virtualizer_count;

/* hooks.c: the start-up batch of every virtualizer and its late groups. */
BOOL runtime_hooks_start(void);

/* ---- handles (handles.c) ------------------------------------------------------ */

/* Per-handle state, keyed by (handle value, owner, tag): a virtualizer may
 * keep several kinds (tag) for one handle. The owner's handle_closed
 * callback frees it when the program closes the handle. */
/* Registers data for a handle; replaces (and hands to handle_closed) state a
 * close FVM did not see left for the same handle value. FALSE: no memory. */
BOOL handle_put(HANDLE handle, const fvm_virtualizer *owner, unsigned tag, void *data);
/* The state, or NULL. under_lock (may be NULL) is called with it while the
 * registry's lock is held, so the state cannot be freed meanwhile: to take a
 * reference, or to copy it out. It must not call handle_*. */
void *handle_find(HANDLE handle, const fvm_virtualizer *owner, unsigned tag,
                  void (*under_lock)(void *data, void *ctx), void *ctx);
/* Removes the state and returns it (no callback), or NULL. */
void *handle_take(HANDLE handle, const fvm_virtualizer *owner, unsigned tag);
/* A name kept as a handle's state (a copy; the owner's handle_closed frees
 * it with HeapFree). FALSE: no memory. */
BOOL handle_put_name(HANDLE handle, const fvm_virtualizer *owner, unsigned tag, const uint16_t *name, size_t len);
/* That name copied into out (up to cap units, copied under the registry's
 * lock); FALSE when none is kept or it is longer than cap. */
BOOL handle_find_name(HANDLE handle, const fvm_virtualizer *owner, unsigned tag, uint16_t *out, size_t cap,
                      size_t *len);
void handle_hooks(hook_table *table);

/* ---- the box ------------------------------------------------------------------ */

/* boxjob.c: the box's job object (opened once, shared by every module), or
 * NULL if it cannot be opened. */
HANDLE runtime_box_job(void);

/* file_index.c: the box index, shared by files and keys; started before any
 * virtualizer. FALSE: the process must not run. */
BOOL box_index_start(void);

/* What a boxed process hands a boxed process it creates, still suspended,
 * so that the child maps them instead of opening them by name: duplicates
 * of its sections, set in the child's config (fvm_box_config.given_*).
 * Nothing is set if there is nothing to hand or the duplicate fails.
 * file_index.c: the index; ioquota.c: the I/O tally. */
void box_index_give(HANDLE process, fvm_box_config *config);
void io_tally_give(HANDLE process, fvm_box_config *config);

/* broker_pipe.c: a new connection to the box's broker's control pipe
 * (message mode, made with the bypass set, retried for up to 2 s while the
 * broker's listeners are all taken), or NULL. */
HANDLE runtime_broker_connect(void);
/* One request to the box's broker and its reply (at most
 * cap bytes; a longer reply fails). FALSE when the broker cannot be
 * reached; LastError is left as it was. */
BOOL runtime_broker_call(const void *request, DWORD len, void *reply, DWORD cap, DWORD *got);
/* The same on a connection of its own, for a question that may take long
 * (net_resolve.c): it holds no other caller up. */
BOOL runtime_broker_call_alone(const void *request, DWORD len, void *reply, DWORD cap, DWORD *got);
/* In a box with a Wine server of its own: one question to the box's relay
 * on the host's side (cli/relay.c), on its unix socket socket_name, within
 * the deadline (a GetTickCount value); the answer's length, or -1. */
int runtime_relay_call(const char *socket_name, const void *request, size_t len, void *reply, size_t cap,
                       DWORD deadline);

/* shared.c: what the broker publishes to the box (common/boxshare.h),
 * mapped read-only once at start, before the policy. Parts are NULL when
 * absent. */
struct fvm_shared_parts;
BOOL runtime_shared_start(void);
const struct fvm_shared_parts *runtime_shared(void);

/* policy.c: the box's compiled policy and the audit records it asks for. */
BOOL runtime_policy_start(void);
BOOL runtime_policy_active(void);
/* Can any name of this type be decided `action` (POLICY_ACTION_*), or be
 * audited (POLICY_POSSIBLE_AUDIT)? FALSE lets a virtualizer skip work only
 * such a decision needs; without a policy only the built-in behaviour is
 * possible, so FALSE. */
BOOL runtime_policy_may(policy_type type, uint32_t what);
policy_action runtime_policy_decide(policy_type type, const uint16_t *name, size_t len, policy_decision *out);
/* An `ask` decision a virtualizer made itself (net.c): the provider's
 * answer, or the rule's default when it is absent or slow. */
policy_action runtime_policy_ask(policy_type type, const uint16_t *name, size_t len, const policy_decision *d);
void runtime_policy_thread_detach(fvm_thread *thread);   /* frees the thread's decision cache */
void runtime_audit(policy_type type, const char *op, const policy_decision *d, const uint16_t *name, size_t len);
/* The same for a decision that is not a plain match of the name: target is
 * what the policy decided on (core/brokermsg.h says the forms), so that
 * the broker can decide it again (issue 17.7). */
void runtime_audit_target(policy_type type, const char *op, const policy_decision *d, const uint16_t *name,
                          size_t len, const uint16_t *target, size_t target_len);
/* The one rule for names (issue 19): a name a virtualizer cannot decide is
 * refused, never passed to the host as spelled, and the attempt audited.
 * runtime_name_gate checks a call's counted name against core/objname rules
 * (OBJNAME_*) before any decision: STATUS_SUCCESS, or the refusal status
 * (already audited). runtime_name_refused audits a refusal a virtualizer
 * made itself (why: a short phrase); runtime_name_status maps a problem. */
#include "core/objname.h"
#define RUNTIME_NAME_OPEN (1u << 8)   /* rules: the call only opens (a NUL: not found rather than invalid) */
NTSTATUS runtime_name_gate(policy_type type, const char *op, const UNICODE_STRING *name, unsigned rules);
void runtime_name_refused(policy_type type, const char *op, const char *why, const uint16_t *name, size_t len);
NTSTATUS runtime_name_status(objname_problem problem);

/* process.c: other processes and threads (the process virtualizer). */
NTSTATUS process_start_check(const void *process_parameters);   /* [process] rules and quota, before a start */
void process_start_failed(void);   /* a start process_start_check let through failed: its quota grant goes back */
NTSTATUS process_duplicate_check(HANDLE source_process, HANDLE target_process);   /* NtDuplicateObject */
const policy_view *runtime_policy_view(void);   /* NULL without a policy */
const uint16_t *runtime_policy_program(void);   /* this process's image, and its length */
size_t runtime_policy_program_len(void);

/* gui.c, for desktop.c: whether the box may act on a window (send it
 * messages, move it, read its title), and whether a process is the box's. */
BOOL gui_window_in_box(HWND hwnd);
BOOL gui_process_in_box(DWORD pid);
/* clipboard.c: whether [desktop] `open clipboard-in` lets the box read what
 * programs outside it put on the clipboard. */
BOOL clipboard_host_readable(void);
/* ... and `open clipboard-out` lets it write to the desktop's clipboard. */
BOOL clipboard_host_writable(void);
/* title.c: a window was created (gui.c's CreateWindowEx hook); marks its
 * title with the box name when show_box_in_title is on. */
void title_window_created(HWND hwnd);
void proc_after_hooks(void);   /* proc.c, once hooked: the console kernelbase was not let to make */

/* memquota.c: the box's memory limit; process.c's hooks of these two
 * functions call in here with the original. */
NTSTATUS memquota_allocate(NTSTATUS(NTAPI *real)(HANDLE, void **, ULONG_PTR, SIZE_T *, ULONG, ULONG), HANDLE process,
                           void **address, ULONG_PTR zero_bits, SIZE_T *size, ULONG type, ULONG protect);
NTSTATUS memquota_free(NTSTATUS(NTAPI *real)(HANDLE, void **, SIZE_T *, ULONG), HANDLE process, void **address,
                       SIZE_T *size, ULONG type);

#endif

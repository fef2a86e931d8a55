/* runtime.h - state shared by the modules of fvm.dll, the runtime injected
 * into every boxed process.
 *
 * fvm.dll is built without a C runtime: it links only ntdll and kernel32, so
 * loading it costs little and runs no foreign initialisation code. Each
 * virtualized object type has its own file (proc.c, file.c, ...) that
 * declares its hooks through a *_hooks() function called from dllmain.c. */
#ifndef FVM_RUNTIME_RUNTIME_H
#define FVM_RUNTIME_RUNTIME_H

#include <windows.h>
#include <winternl.h>
#include <stdint.h>

#include "common/boxcfg.h"
#include "runtime/hook/hook.h"

typedef struct fvm_runtime {
    fvm_box_config config;     /* the box this process belongs to */
    BOOL           active;     /* hooks installed; the process is boxed */
    HMODULE        module;     /* fvm.dll itself */
    HANDLE         job;        /* the box's job object, opened on first use */
} fvm_runtime;

extern fvm_runtime g_fvm;

/* Writes "fvm: <message>" to the process's standard error; for failures a
 * user must see (a process refused because it could not be boxed). */
void fvm_report(const char *fmt, ...);

/* Each module appends its hook specs to the table installed at start-up. */
typedef struct hook_table {
    hook_spec specs[192];
    size_t    count;
    BOOL      overflow;   /* a spec did not fit: the process must not run half-hooked */
} hook_table;

/* LdrRegisterDllNotification (ntdll; no SDK header has it): scm.c and gui.c
 * hook DLLs the moment they load. */
typedef struct dll_loaded_notification {
    ULONG flags;
    const UNICODE_STRING *full_name;
    const UNICODE_STRING *base_name;
    void *base;
    ULONG size;
} dll_loaded_notification;

typedef void (CALLBACK *dll_notification_fn)(ULONG reason, const dll_loaded_notification *data, void *ctx);
typedef NTSTATUS (NTAPI *LdrRegisterDllNotification_fn)(ULONG flags, dll_notification_fn callback, void *ctx,
                                                        void **cookie);
#define DLL_NOTIFICATION_LOADED 1

/* A loaded module by file name ("user32.dll"), or NULL; never loads or
 * searches (GetModuleHandle of an absent DLL searches the disk on Wine). */
HMODULE runtime_loaded_module(const char *name);

void hook_table_add(hook_table *table, const char *module, const char *name,
                    void *detour, void **original);
/* For functions some platforms lack (Wine has no NtCreateProcessEx): hooked
 * where they exist, skipped where they do not. */
void hook_table_add_optional(hook_table *table, const char *module, const char *name,
                             void *detour, void **original);

/* policy.c: the box's compiled policy and the audit records it asks for. */
#include "core/policy.h"
BOOL runtime_policy_start(void);
BOOL runtime_policy_active(void);
policy_action runtime_policy_decide(policy_type type, const uint16_t *name, size_t len, policy_decision *out);
void runtime_policy_thread_detach(void);   /* frees the thread's decision cache */
void runtime_audit(policy_type type, const char *op, const policy_decision *d, const uint16_t *name, size_t len);

void proc_hooks(hook_table *table);
void proc_after_hooks(void);   /* once hooked: the console kernelbase was not let to make */
void key_hooks(hook_table *table);
void key_handle_closed(HANDLE handle);                  /* NtClose of any handle */
void key_thread_detach(void);
size_t key_translate_box_name(uint16_t *name, size_t len);   /* box key name -> host name, in place */
void ipc_hooks(hook_table *table);   /* named objects, pipes and mailslots */
BOOL scm_hooks(hook_table *table);   /* FALSE: cannot start */
BOOL gui_hooks(hook_table *table);   /* FALSE: cannot start */
BOOL file_hooks(hook_table *table);   /* FALSE: cannot start */
void file_thread_detach(void);

#endif

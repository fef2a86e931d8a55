/* ipc.h - internals shared by the object-namespace modules: ipc.c (named
 * kernel objects) and pipe.c (named pipes and mailslots), and the small
 * hand-offs into them from file.c, file_dir.c and file_name.c. See ipc.c for
 * the idea. */
#ifndef FVM_RUNTIME_IPC_H
#define FVM_RUNTIME_IPC_H

#include "runtime/runtime.h"

/* The most units one UNICODE_STRING holds: the object manager's limit for
 * a name as passed (relative to its RootDirectory, or absolute). */
#define IPC_STRING_UNITS 32767
/* Longest canonical name we decide on (units): a root directory's name and
 * a relative name below it, each up to IPC_STRING_UNITS, so the box takes
 * every name the host takes. A box name that does not fit one string (the
 * box's directory in front) is passed relative to the box's directory of
 * the object (ipc.c, begin). */
#define IPC_NAME_UNITS (2 * IPC_STRING_UNITS)

/* Where a named object call goes. */
typedef enum ipc_route {
    IPC_PASS,       /* not a name we virtualize (or FVM's own call): unchanged */
    IPC_BOX,        /* the box's private copy of the name (target) */
    IPC_HOST,       /* the host's object, by its canonical name (target) */
    IPC_HOST_READ,  /* the host's object, without rights to change it */
    IPC_FAIL        /* refused with status */
} ipc_route;

typedef struct ipc_call {
    uint16_t name[IPC_NAME_UNITS];    /* canonical name as the program sees it */
    size_t len;
    uint16_t target[IPC_NAME_UNITS + 64];   /* the name the real call gets */
    size_t target_len;
    NTSTATUS status;                  /* IPC_FAIL */
} ipc_call;

/* An ipc_call (large: names up to IPC_NAME_UNITS) from the thread's spare,
 * or a new one when the spare is in use (a call within a call); NULL when
 * out of memory. ipc_call_free gives it back. */
ipc_call *ipc_call_new(void);
void ipc_call_free(ipc_call *call);

/* FVM's own calls run with the runtime's bypass set (runtime_bypassed,
 * runtime.h): they reach the host's objects unchanged. */
extern const fvm_virtualizer object_virtualizer;

/* The box's tag "FVM.<16 hex>" and whether a name component is any box's. */
extern uint16_t g_ipc_tag[21];
BOOL ipc_is_fvm_component(const uint16_t *s, size_t len);

/* Decides a pipe or mailslot name (canonical \Device\NamedPipe\X or
 * \Device\MailSlot\X, in call->name): fills call->target with the box's
 * \Device\NamedPipe\FVM.<hash>\X or the host name. */
ipc_route ipc_decide_pipe(ipc_call *call, BOOL creating, const char *op);

/* Translates a name the object manager reports for a handle (a box object,
 * pipe or mailslot) to the program's name, in place; 0 if not the box's. */
size_t ipc_program_name(uint16_t *name, size_t len);
/* Same for a pipe's file name (\FVM.<hash>\X -> \X). */
size_t ipc_program_pipe_file_name(uint16_t *name, size_t len);

void pipe_hooks(hook_table *table);

/* scm.c: starts the box's service manager if it is not running (a client
 * is about to open the box's \pipe\svcctl); LastError is kept. */
void scm_box_manager_ensure(void);

/* scm.c: whether the registry value `name` does not exist for this process:
 * DelayedAutostart in the box's service manager, so that a delayed
 * auto-start service is an auto-start one there, whose start at the
 * manager's start is refused like the others' (key_read.c asks). */
BOOL scm_hides_value(const UNICODE_STRING *name);

/* file.c's hand-off for client opens (and attribute queries) of a pipe
 * or mailslot, canonical name in path: fills out with the name to use
 * (*out_len 0: the caller's own), or returns the status to fail with. */
NTSTATUS pipe_client_decide(const uint16_t *path, size_t len, ACCESS_MASK access, uint16_t *out, size_t cap,
                            size_t *out_len);

#endif

/* floor.h - the kernel-enforced floor under the hooks (floor.c). */
#ifndef FVM_RUNTIME_FLOOR_H
#define FVM_RUNTIME_FLOOR_H

#include <windows.h>

/* Puts the calling process into the box's Landlock domain and seccomp
 * filter (or finds it already there, inherited from its boxed parent).
 * Called once from fvm.dll's start, after the policy is mapped and before
 * the hooks and any code of the program. FALSE: the floor could not be set
 * up and the process must not run (fvm_report says why). */
BOOL floor_start(void);

/* What floor_start did, for fvm_runtime_floor (tests, fvm doctor). */
enum {
    FLOOR_OFF = 0,          /* --no-floor, or not under Wine */
    FLOOR_APPLIED = 1,      /* this process set the domain up */
    FLOOR_INHERITED = 2,    /* the parent's domain and filter were inherited */
};

/* floor_ns.c: the floor's user and mount namespace, which hides the host's
 * Wine server directories (and, for a box with its own display, the other
 * X displays) from the box. Called by floor.c before Landlock. */
#include "common/floor_namespace.h"   /* FLOOR_NS_* */
void floor_ns_apply(const char *box);   /* box: the box folder's real Linux path */
int floor_ns_state(void);
int floor_ns_network_cut(void);   /* 1: this process made the box's empty network namespace */
/* TRUE: the box's programs have no network of their own but the policy
 * lets some out, so their host names are resolved by the broker. */
BOOL floor_ns_names_forwarded(void);
/* The real Linux path of a Windows path (wine_get_unix_file_name, links
 * resolved); FALSE when there is none. */
BOOL floor_unix_path(const wchar_t *win, char *out, size_t cap);

#endif

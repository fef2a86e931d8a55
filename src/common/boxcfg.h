/* boxcfg.h - what a boxed process knows about its box, and the names FVM
 * derives from it.
 *
 * The same structure travels in the injection block (inject.c) from the
 * process that creates a boxed process to the fvm.dll of the new process, so
 * a child inherits the box from its parent's runtime, never from anything the
 * program can set (environment, command line). Compiled both into the CRT
 * programs (fvm.exe, fvm-broker.exe) and the CRT-free runtime: only Win32/NT
 * calls and the tiny string helpers below. */
#ifndef FVM_COMMON_BOXCFG_H
#define FVM_COMMON_BOXCFG_H

#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <stdint.h>

#define FVM_PATH_MAX      520      /* characters, with the terminator */
#define FVM_BOX_NAME_MAX  64       /* characters, with the terminator */
#define FVM_OBJ_NAME_MAX  128

typedef struct fvm_box_config {
    uint32_t version;                    /* FVM_BOX_CONFIG_VERSION */
    uint32_t flags;
    uint64_t quota_bytes;                /* storage quota of the delta; 0 = none */
    wchar_t  box_name[FVM_BOX_NAME_MAX];
    wchar_t  box_path[FVM_PATH_MAX];     /* Win32 path of the box folder */
    wchar_t  dll_path[FVM_PATH_MAX];     /* fvm.dll to inject into children */
    wchar_t  provider[FVM_BOX_NAME_MAX * 2]; /* decision provider pipe name (box.ini provider=) */
    /* For one new process only (never inherited): sections its creator, a
     * boxed process, duplicated into it, as handle values valid in it (0:
     * none), so that its runtime maps them instead of opening them by name
     * and path (runtime/file_index.c, ioquota.c): the index (its number N
     * of index-N.fvm and its size) and the I/O tally. */
    uint64_t given_index, given_index_size, given_tally;
    uint32_t given_index_number;
} fvm_box_config;

#define FVM_BOX_CONFIG_VERSION 1
/* flags */
/* One flags word with the flags below: the values must not overlap (they did:
 * confidential was 0x1 = NO_FLOOR, procs 0x2 = FLOOR_SET, so a confidential
 * box ran without its floor). */
#define FVM_BOX_FLAG_CONFIDENTIAL 0x10u  /* box.ini confidential=yes: processes shut others out */
#define FVM_BOX_FLAG_PROCS_LIMIT  0x20u  /* box.ini procs=N: each start asks the broker */
#define FVM_BOX_FLAG_SHOW_TITLE   0x100u /* box.ini show_box_in_title=yes: "[#NAME]" in title bars (runtime/title.c) */
#define FVM_BOX_FLAG_OWN_DISPLAY  0x200u /* box.ini display=own: an X display of its own (broker/display.c);
                                          * the floor then scopes abstract sockets (runtime/floor.c) */
#define FVM_BOX_FLAG_OWN_SERVER   0x400u /* box.ini server=own: a Wine server of its own, whose namespace fvm run
                                          * set up (common/boxserver.h); the floor makes none of its own */

/* fvm_box_config.flags */
#define FVM_BOX_FLAG_NO_FLOOR 0x1u   /* fvm run --no-floor: no kernel floor (runtime/floor.c), audited */
#define FVM_BOX_FLAG_FLOOR_SET 0x2u  /* set by a floored fvm.dll for its children: they are forks of it */
#define FVM_BOX_FLAG_NAMES_FORWARDED 0x800u   /* set by the box's first process for its children: they are in
                                               * its empty network namespace, the broker resolves their host
                                               * names (runtime/net_resolve.c) */
/* fvm_box_config.flags, for one new process only (never inherited): its
 * console is to be allocated by its runtime once hooked, not by kernelbase
 * before (which would start conhost.exe unboxed); see runtime/proc.c. */
#define FVM_BOX_FLAG_ALLOC_CONSOLE     0x4u
#define FVM_BOX_FLAG_CONSOLE_NO_WINDOW 0x8u
#define FVM_BOX_FLAGS_ONE_PROCESS (FVM_BOX_FLAG_ALLOC_CONSOLE | FVM_BOX_FLAG_CONSOLE_NO_WINDOW)

/* Named kernel objects of a box. They are derived from a hash of the box
 * folder's path, so two FVM roots with boxes of the same name never meet. */
typedef enum fvm_box_object {
    FVM_OBJ_JOB,        /* job object holding every process of the box */
    FVM_OBJ_LOCK,       /* mutex serialising broker start/exit and launches */
    FVM_OBJ_READY,      /* event: broker is up and owns the job */
    FVM_OBJ_PIPE,       /* broker's control pipe */
    FVM_OBJ_INDEX_LOCK, /* mutex of the box index's writers */
    FVM_OBJ_USAGE,      /* unused: the quota's count lives in the broker alone */
    FVM_OBJ_SHARED,     /* section: what the broker publishes to the box's processes, read-only for them:
                           limits on, port map, compiled policy (common/boxshare.h) */
    FVM_OBJ_SCM,        /* mutex: starting and ending the box's service manager (runtime/scm.c) */
    FVM_OBJ_CLIPBOARD_LOCK, /* mutex: the box's own clipboard store (runtime/clipboard.c) */
    FVM_OBJ_IO_TALLY    /* section: the box's file I/O tally for fvm stats (boxlimits.h), written by its
                           processes when no I/O limit is on */
} fvm_box_object;

/* Writes the object's full Win32 name (e.g. "Global\\FVM.<hash>.job" or
 * "\\\\.\\pipe\\FVM.<hash>.ctl") into out. */
void fvm_box_object_name(const wchar_t *box_path, fvm_box_object which,
                         wchar_t *out, size_t out_chars);

/* A box's own X display (box.ini [box] display=own, display_number=N;
 * broker/display.c): N, -1 for a box on the host's display, -2 for
 * display=own without a valid number. One reader for the broker and fvm. */
int fvm_box_display_number(const wchar_t *box_path);

/* A box with a nested display (box.ini [box] display=nested, the default
 * of a box on its own server under Wine): an X server of its own, shown as
 * one window on the user's display (cli/ownserver_display.c). */
BOOL fvm_box_display_nested(const wchar_t *box_path);

/* A box with a Wine server of its own (box.ini [box] server=own;
 * common/boxserver.h). */
BOOL fvm_box_own_server(const wchar_t *box_path);
/* <root>\servers\<hash> for the box at <root>\boxes\<name> (hash: the box
 * path's, as for its object names): its own Wine server's directory
 * (common/boxserver.h). FALSE when it does not fit. */
BOOL fvm_box_server_dir(const wchar_t *box_path, wchar_t *out, size_t cap);

/* Small string helpers usable without a CRT. All bounded; they always
 * terminate the destination and return FALSE when it was too small. */
size_t fvm_wcslen(const wchar_t *s);
BOOL   fvm_wcscpy(wchar_t *dst, size_t dst_chars, const wchar_t *src);
BOOL   fvm_wcscat(wchar_t *dst, size_t dst_chars, const wchar_t *src);
wchar_t fvm_wupcase(wchar_t c);
int    fvm_wcsicmp_n(const wchar_t *a, const wchar_t *b, size_t n);
uint64_t fvm_hash_path(const wchar_t *path);   /* FNV-1a of the upcased path */

#endif

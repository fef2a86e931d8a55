/* file.h - internals shared by the file virtualizer's modules: file.c
 * (opens, creates, copy-up, renames) and file_dir.c (merged listings).
 * See file.c for the idea. */
#ifndef FVM_RUNTIME_FILE_H
#define FVM_RUNTIME_FILE_H

#include "runtime/runtime.h"
#include "core/ntpath.h"
#include "core/boxindex.h"

#define FILE_RENAME_INFORMATION_EX_CLASS 65
#define FILE_LINK_INFORMATION_EX_CLASS   72

/* Access rights that can change a file or its metadata. MAXIMUM_ALLOWED
 * and GENERIC_ALL would include them, so they count as writes too. */
#define WRITE_INTENT_ACCESS (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_ATTRIBUTES | FILE_WRITE_EA | \
                             DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL | MAXIMUM_ALLOWED)


extern NtCreateFile_fn real_NtCreateFile;
extern NtOpenFile_fn real_NtOpenFile;
extern NtQueryAttributesFile_fn real_NtQueryAttributesFile;
extern NtQueryFullAttributesFile_fn real_NtQueryFullAttributesFile;
extern NtSetInformationFile_fn real_NtSetInformationFile;

extern ntpath g_box_root;   /* \??\C:\FVM\boxes\NAME */
extern ntpath g_fvm_root;   /* \??\C:\FVM: the storage of every box */
extern BOOL g_paths_ready;

/* file_box.c: the two paths above, once; the per-thread scratch. */
BOOL file_paths_start(void);
void file_thread_detach(fvm_thread *thread);

/* Per-thread scratch: ntpath structures are large (64 KiB each), too large
 * for the stack of an arbitrary thread. */
/* A resolved attribute query, kept per thread (file.c, query_attributes). */
#define RESOLVED_NAME_UNITS 260
typedef struct resolved_name {
    uint64_t generation;               /* index generation it holds for; 0: empty */
    uint16_t name_len;
    uint16_t target_len;
    int side;                          /* lookup_side */
    NTSTATUS fail;
    uint16_t name[RESOLVED_NAME_UNITS];   /* the program's NT name */
    uint16_t target[RESOLVED_NAME_UNITS + 64];   /* the name the real call gets */
} resolved_name;

typedef struct file_scratch {
    ntpath path;                       /* the canonical host path */
    ntpath dir;                        /* RootDirectory's path, or a parent */
    uint16_t box[NTPATH_MAX_UNITS + 1];
    size_t box_len;
    uint16_t key[BOXINDEX_MAX_KEY_UNITS + 1];   /* index keys */
    policy_decision decision;          /* the policy's word on s->path (PLACE_HOST only) */
    ACCESS_MASK open_access;           /* the open being decided: its rights and share mode */
    ULONG open_share;                  /*   (a copy-up checks them against the host's handles) */
    BOOL in_use;
    resolved_name resolved[4];         /* the last attribute queries of this thread */
    unsigned resolved_next;
} file_scratch;

file_scratch *scratch_acquire(void);
void scratch_release(file_scratch *s);

typedef enum file_place {
    PLACE_PASS,     /* not a file-system path we virtualize: pass the call through */
    PLACE_HOST,     /* a host drive/UNC path: decide */
    PLACE_PIPE,     /* a named pipe or mailslot: ipc.c's namespace (pipe.c) */
    PLACE_DENY,     /* FVM's own storage, or a name that would bypass the box */
    PLACE_INVALID,  /* a name the path core refuses, or one Windows finds invalid */
    PLACE_NO_PATH   /* a folder name Windows reads as another folder, which the box does not have */
} file_place;

/* Canonical host path (s->path) and box path (s->box) of a call's name. */
file_place resolve(POBJECT_ATTRIBUTES attributes, file_scratch *s);
NTSTATUS place_status(file_place place);
/* The host path an open handle stands for, into s->dir (s->path is scratch). */
BOOL handle_path(HANDLE handle, file_scratch *s, BOOL *in_box);
/* file_alias.c: s->path (a drive path) becomes the name Wine gives that
 * file (Z:\<prefix>\drive_c\x is C:\x); FALSE when it has none. */
BOOL file_alias_canonical(file_scratch *s);
/* Opens a file as the box sees it (as the program's own open would be
 * decided) and gives the NT name the real open was given, NUL-terminated. */
NTSTATUS file_open_viewed(POBJECT_ATTRIBUTES attributes, ACCESS_MASK access, ULONG share, ULONG options,
                          HANDLE *handle, uint16_t *name, size_t cap, size_t *name_len);
void init_attributes(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, const uint16_t *path, size_t len,
                     const OBJECT_ATTRIBUTES *like);
/* Attributes of an NT path, or INVALID_FILE_ATTRIBUTES. */
DWORD path_attributes(const uint16_t *path, size_t len);

/* ---- the box index (file_index.c) ---- */
#include "core/boxindex.h"

typedef enum index_verdict {
    INDEX_UNTOUCHED,       /* the host decides */
    INDEX_IN_BOX,          /* created or copied: the box copy is the file */
    INDEX_BOX_ONLY,        /* below a folder made in the box: the host's entries there do not count */
    INDEX_DELETED,         /* deleted or renamed away in the box */
    INDEX_PARENT_DELETED   /* a folder above it was deleted in the box */
} index_verdict;

/* Changes with every write to the index (and when it is replaced by a
 * larger one); 0 when there is no index. */
uint64_t index_generation(void);
/* key_buf: BOXINDEX_MAX_KEY_UNITS + 1 units of scratch. */
index_verdict index_check(const ntpath *path, uint16_t *key_buf, size_t cap);
/* The entry of path itself (folders above are not looked at). */
boxindex_state index_entry_state(const ntpath *path, uint16_t *key_buf, size_t cap);
int index_hidden_child(const ntpath *dir, const uint16_t *name, size_t name_len, uint16_t *key_buf, size_t cap);
int index_folder_is_opaque(const ntpath *dir, uint16_t *key_buf, size_t cap);
int index_has_hidden_children(const ntpath *dir, uint16_t *key_buf, size_t cap);
/* 1 when the index has no entry for the folder dir and none whose parent it
 * is: its box side then adds nothing to a listing (a name in the box folder
 * with no entry is never what an open finds either). */
int index_folder_untouched(const ntpath *dir, uint16_t *key_buf, size_t cap);
NTSTATUS index_note_copy_up(const ntpath *path, uint16_t *key_buf, size_t cap, BOOL directory,
                            const boxindex_base *base);
NTSTATUS index_note_create(const ntpath *path, uint16_t *key_buf, size_t cap, BOOL directory);
NTSTATUS index_note_delete(const ntpath *path, uint16_t *key_buf, size_t cap, BOOL directory);
NTSTATUS index_note_rename(const ntpath *from, const ntpath *to, uint16_t *key_buf, size_t cap, BOOL directory);

/* Registry keys (key.c) share the index: upper-cased "\REGISTRY\..." keys. */
typedef enum reg_verdict {
    REG_VERDICT_HOST,       /* untouched: the host key is the key */
    REG_VERDICT_MERGED,     /* the box key merges over the host key */
    REG_VERDICT_BOX,        /* the box key alone (made in the box, or re-created over a deleted one) */
    REG_VERDICT_BOX_BELOW,  /* no entry of its own, below a box-only key: the box key alone */
    REG_VERDICT_DELETED     /* deleted in the box (itself or a key above it) */
} reg_verdict;
typedef enum reg_index_op { REG_INDEX_COPY_UP, REG_INDEX_CREATE, REG_INDEX_DELETE, REG_INDEX_UPDATE } reg_index_op;
BOOL index_ready(void);
reg_verdict index_check_registry(const uint16_t *key, size_t len, uint64_t hash);
/* A key the box made as a link key (REG_OPTION_CREATE_LINK): its entry
 * carries this caller flag, and key.c follows its SymbolicLinkValue itself. */
#define REG_INDEX_FLAG_LINK 0x0100u
reg_verdict index_check_registry_link(const uint16_t *key, size_t len, uint64_t hash, BOOL whole, size_t *link_at);
BOOL index_registry_is_link(const uint16_t *key, size_t len, uint64_t hash);
boxindex_state index_registry_entry(const uint16_t *key, size_t len, uint64_t hash);
NTSTATUS index_note_registry(reg_index_op op, const uint16_t *key, const uint16_t *path, size_t len, uint32_t flags);
/* The same with the base a COPY_UP records (a key's values: core/regbase.h); NULL: none. */
NTSTATUS index_note_registry_base(reg_index_op op, const uint16_t *key, const uint16_t *path, size_t len,
                                  uint32_t flags, const boxindex_base *base);

extern NtQueryDirectoryFile_fn real_NtQueryDirectoryFile;
int dir_enumerate(const uint16_t *path, size_t len, int (*visit)(void *ctx, const FILE_DIRECTORY_INFORMATION *entry),
                  void *ctx);
/* s->path (host) and s->box: is the folder empty in the merged view? */
BOOL dir_is_empty_merged(file_scratch *s);

/* ---- the storage quota (file_quota.c) ---- */
BOOL file_quota_start(void);
/* The storage quota's part of NtWriteFile (ioquota.c owns the hook). */
NTSTATUS file_quota_write(NtWriteFile_fn real_NtWriteFile, HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                          PVOID apc_context, PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, PLARGE_INTEGER offset,
                          PULONG key);
BOOL quota_active(void);
NTSTATUS quota_reserve(LONG64 bytes);    /* STATUS_DISK_FULL past the quota */
void quota_unreserve(LONG64 bytes);     /* a reservation the call did not use */
void quota_release(LONG64 bytes);       /* bytes freed on disk (tells the broker) */
void quota_track(HANDLE handle);         /* a box file opened for writing */
LONG64 quota_file_size(HANDLE handle);   /* -1 if unknown */

void file_dir_hooks(hook_table *table);
void file_name_hooks(hook_table *table);
/* file_notify.c: folder watches made on the folder's box copy. */
void file_notify_hooks(hook_table *table);
void file_watch_closed(void *data);
/* NtCancelIoFileEx on a handle with watches FVM completes: cancels FVM's
 * requests for it (io: the program's status block, NULL: all); FALSE when
 * none was the program's. */
BOOL file_notify_cancel(HANDLE handle, PIO_STATUS_BLOCK io);
/* file_quota.c: STATUS_SHARING_VIOLATION when the host would refuse an open
 * of host file path with these rights and share mode (asked of the broker). */
NTSTATUS file_share_probe(const uint16_t *path, size_t len, ACCESS_MASK access, ULONG share);
/* The box copy of the host folder s->path (box path in s->box) made if the
 * box has none (an empty folder merged over the host's), as a write inside
 * it would; a status < 0 when the folder is deleted in the box or cannot be
 * made. */
NTSTATUS file_box_folder(file_scratch *s);
/* A box file's full NT name made the host's, in place (NtQueryObject). */
size_t file_program_name(uint16_t *name, size_t len);

/* The file virtualizer's state per handle (handles.c), by tag. */
extern const fvm_virtualizer file_virtualizer;
enum { FILE_TAG_LISTING = 1, FILE_TAG_QUOTA = 2, FILE_TAG_DELETE = 3, FILE_TAG_WATCH = 4, FILE_TAG_DIR_NAME = 5 };
void file_dir_listing_closed(void *listing);
/* A directory handle the open hooks opened for the program, and the
 * canonical host-view path they opened: a listing on it needs no name query
 * (file_dir.c). Used by listings only, never to resolve a name: a handle
 * closed below the hooks could leave a stale entry (handle_put replaces it
 * at the next directory open of the same value). */
void file_dir_remember(HANDLE handle, const ntpath *path);

#endif

/* key.h - internals shared by the registry virtualizer's modules: key.c
 * (names, handles, opens, creates and every change), key_tree.c (rename
 * and save of whole subtrees) and key_read.c (the merged read view). See
 * key.c for the idea. */
#ifndef FVM_RUNTIME_KEY_H
#define FVM_RUNTIME_KEY_H

#include "runtime/file.h"

/* REG_FVM_DELETED (common/regstore.h): a value of that type in a box key is
 * a tombstone - deleted in the box, it hides the host's value of that name.
 * Programs cannot set it inside a box. */
#include "common/regstore.h"

/* "\REGISTRY": the units every absolute key name starts with. */
#define REGISTRY_PREFIX_UNITS 9

/* Longest key path handled (units); longer names are refused. */
#define KEY_PATH_UNITS 4096

typedef enum KEY_INFO_CLASS_FVM {
    KEY_BASIC_INFO = 0,
    KEY_NODE_INFO = 1,
    KEY_FULL_INFO = 2,
    KEY_NAME_INFO = 3,
    KEY_CACHED_INFO = 4
} KEY_INFO_CLASS_FVM;

typedef enum KEY_VALUE_INFO_CLASS_FVM {
    KEY_VALUE_BASIC_INFO = 0,
    KEY_VALUE_FULL_INFO = 1,
    KEY_VALUE_PARTIAL_INFO = 2
} KEY_VALUE_INFO_CLASS_FVM;

/* The key information structures (x64 layout; winternl.h lacks them). */
typedef struct KEY_BASIC_INFORMATION {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex;
    ULONG NameLength;
    WCHAR Name[1];
} KEY_BASIC_INFORMATION;

typedef struct KEY_NODE_INFORMATION {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex;
    ULONG ClassOffset;
    ULONG ClassLength;
    ULONG NameLength;
    WCHAR Name[1];
} KEY_NODE_INFORMATION;

typedef struct KEY_FULL_INFORMATION {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex;
    ULONG ClassOffset;
    ULONG ClassLength;
    ULONG SubKeys;
    ULONG MaxNameLen;
    ULONG MaxClassLen;
    ULONG Values;
    ULONG MaxValueNameLen;
    ULONG MaxValueDataLen;
    WCHAR Class[1];
} KEY_FULL_INFORMATION;

typedef struct KEY_CACHED_INFORMATION {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex;
    ULONG SubKeys;
    ULONG MaxNameLen;
    ULONG Values;
    ULONG MaxValueNameLen;
    ULONG MaxValueDataLen;
    ULONG NameLength;
} KEY_CACHED_INFORMATION;

typedef struct KEY_VALUE_BASIC_INFORMATION {
    ULONG TitleIndex;
    ULONG Type;
    ULONG NameLength;
    WCHAR Name[1];
} KEY_VALUE_BASIC_INFORMATION;

typedef struct KEY_VALUE_FULL_INFORMATION {
    ULONG TitleIndex;
    ULONG Type;
    ULONG DataOffset;
    ULONG DataLength;
    ULONG NameLength;
    WCHAR Name[1];
} KEY_VALUE_FULL_INFORMATION;

typedef struct KEY_VALUE_PARTIAL_INFORMATION {
    ULONG TitleIndex;
    ULONG Type;
    ULONG DataLength;
    UCHAR Data[1];
} KEY_VALUE_PARTIAL_INFORMATION;

typedef NTSTATUS (NTAPI *NtCreateKey_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG, PUNICODE_STRING, ULONG,
                                         PULONG);
typedef NTSTATUS (NTAPI *NtOpenKey_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
typedef NTSTATUS (NTAPI *NtOpenKeyEx_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG);
typedef NTSTATUS (NTAPI *NtSetValueKey_fn)(HANDLE, PUNICODE_STRING, ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS (NTAPI *NtQueryKey_fn)(HANDLE, ULONG, PVOID, ULONG, PULONG);
typedef NTSTATUS (NTAPI *NtQueryValueKey_fn)(HANDLE, PUNICODE_STRING, ULONG, PVOID, ULONG, PULONG);
typedef NTSTATUS (NTAPI *NtEnumerateKey_fn)(HANDLE, ULONG, ULONG, PVOID, ULONG, PULONG);
typedef NTSTATUS (NTAPI *NtHandleOp_fn)(HANDLE);
typedef NTSTATUS (NTAPI *NtDeleteValueKey_fn)(HANDLE, PUNICODE_STRING);

extern NtCreateKey_fn real_NtCreateKey;
extern NtOpenKey_fn real_NtOpenKey;
extern NtSetValueKey_fn real_NtSetValueKey;
extern NtQueryKey_fn real_NtQueryKey;
extern NtQueryValueKey_fn real_NtQueryValueKey;
extern NtEnumerateKey_fn real_NtEnumerateKey;
extern NtEnumerateKey_fn real_NtEnumerateValueKey;
extern NtDeleteValueKey_fn real_NtDeleteValueKey;

/* A merged listing of a key's subkeys or values, kept per handle between
 * the calls of one enumeration (NtEnumerateKey asks by index). */
typedef struct key_listing_item {
    uint16_t *name;
    size_t len;
    BOOL from_box;
    ULONG index;               /* in its source key */
    void *info;                /* its KeyNodeInformation / KeyValueFullInformation, as collected */
    ULONG info_len;
} key_listing_item;

typedef struct key_listing {
    key_listing_item *items;
    size_t count;
    BOOL valid;
} key_listing;

/* What FVM knows about one open key handle of the program. */
typedef struct key_handle {
    struct key_handle *next;
    volatile LONG refs;
    HANDLE handle;             /* the program's handle */
    enum { HANDLE_IS_HOST, HANDLE_IS_BOX, HANDLE_IS_OTHER } kind;   /* what it is: the host key (read-only),
                                  the box key, or neither (renamed away, or an entry FVM made for itself) */
    BOOL deleted;              /* deleted through this process */
    ACCESS_MASK asked;         /* rights the program asked for, generic rights mapped */
    policy_action action;      /* COW, OPEN or READ */
    SRWLOCK lock;              /* guards box, host and the listings */
    HANDLE own_box;            /* the box key, opened on demand (all access), unless handle is it */
    HANDLE own_host;           /* the host key, opened on demand (read), unless handle is it */
    key_listing subkeys, values;
    uint64_t hash;
    size_t len;
    uint16_t *path;            /* the host path, "\REGISTRY\MACHINE\Software\X" */
    uint16_t *key;             /* the same upper-cased: the index key */
} key_handle;

/* The handle's entry (a reference: key_handle_release it), made from the
 * handle's name when the program got the handle some other way. NULL: not
 * a key FVM can name. */
key_handle *key_handle_get(HANDLE handle);
void key_handle_release(key_handle *kh);

/* What a handle stands for at this moment (another process of the box may
 * have changed the key since it was opened). */
typedef struct key_view {
    reg_verdict verdict;
    HANDLE box;                /* NULL when the box has no key there */
    HANDLE host;               /* NULL when the host has no key there (or it does not count) */
} key_view;

/* STATUS_KEY_DELETED when the key is gone in the box's view. need: the
 * rights the caller will use the view's handles with. Call with kh->lock
 * held exclusively (it opens FVM's own handles on demand). */
NTSTATUS key_view_of(key_handle *kh, key_view *view, ACCESS_MASK need);
/* The same; with_host FALSE leaves a merged key's host key unopened (for a
 * caller that may find what it wants in the box alone). */
NTSTATUS key_view_parts(key_handle *kh, key_view *view, ACCESS_MASK need, BOOL with_host);

/* The merged listings (key_read.c); call with kh->lock held exclusively. */
NTSTATUS key_listing_subkeys(key_handle *kh, const key_view *view, BOOL rebuild);
NTSTATUS key_listing_values(key_handle *kh, const key_view *view, BOOL rebuild);


/* ---- key.c's helpers for key_tree.c ---- */

/* A key name being built: the host path and its index key. */
typedef struct key_name {
    uint16_t path[KEY_PATH_UNITS + 1];
    uint16_t key[KEY_PATH_UNITS + 1];
    size_t len;
    uint64_t hash;
} key_name;

/* "\REGISTRY\USER\FVM.<16 hex>": the box's key tree. */
extern uint16_t g_key_box_tree[64];
extern size_t g_key_box_tree_len;
extern NtHandleOp_fn real_NtDeleteKey;

/* The thread's spare name (NULL if none can be had); given back with
 * key_name_free. */
key_name *key_name_alloc(void);
void key_name_free(key_name *n);
/* Fills n->key and n->hash from n->path; FALSE if the name is too long. */
BOOL key_name_finish(key_name *n);
void key_attributes_for(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, const uint16_t *path, size_t len,
                        HANDLE root);
/* Where a change through handle goes (see key.c). */
NTSTATUS key_change_target(HANDLE handle, ACCESS_MASK need, const char *op, key_handle **kh_out, HANDLE *target);
/* Creates the box key of n (and its parents), noted in the index. */
NTSTATUS key_copy_up(const key_name *n, BOOL host_has_it, ULONG options, HANDLE *out);
key_handle *key_entry_new(HANDLE handle, const key_name *n, int kind, ACCESS_MASK asked, policy_action action);
void key_table_put(key_handle *kh);
/* Whether n exists in the box's view (box key, or an untouched host key). */
BOOL key_exists_in_view(const key_name *n);

void key_read_hooks(hook_table *table);
void key_tree_hooks(hook_table *table);   /* key_tree.c */
extern const fvm_virtualizer key_virtualizer;
void close_key(HANDLE key);   /* closes a handle FVM opened for itself */

#endif

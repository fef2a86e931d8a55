/* handles.c - one registry of what the virtualizers know about the
 * program's handles, and the three handle calls hooked once for all of them.
 *
 * A virtualizer keeps state per open handle: the key a handle stands for and
 * the rights the program asked for (key.c), a merged directory listing
 * being served (file_dir.c), a box file whose writes count against the
 * quota (file_quota.c), the name of an object directory (ipc.c). All of it
 * lives here, keyed by (handle value, owner, tag), in one hash table behind
 * one reader/writer lock, with a count that lets the common case - a handle
 * nobody registered - pass without taking the lock.
 *
 * NtClose hands the state of the closed handle to its owner's handle_closed
 * callback. NtDuplicateObject does the same for a source closed with
 * DUPLICATE_CLOSE_SOURCE, and offers the state of a handle duplicated
 * within the process to its owner's handle_duplicated callback, so the copy
 * can be tracked too (a copy of a box file opened for writing still counts
 * against the quota). NtQueryObject's ObjectNameInformation goes to each
 * virtualizer's program_name in turn: a box object reports the name the
 * program knows, never the box's. */
#include "runtime/runtime.h"

#include "core/ntpath.h"

typedef struct handle_entry {
    struct handle_entry *next;
    HANDLE handle;
    const fvm_virtualizer *owner;
    unsigned tag;
    void *data;
} handle_entry;

#define BUCKETS 1024
static handle_entry *g_buckets[BUCKETS];
static SRWLOCK g_lock = SRWLOCK_INIT;
static volatile LONG g_count;

NtClose_fn real_NtClose;
NtQueryObject_fn real_NtQueryObject;
static NtDuplicateObject_fn real_NtDuplicateObject;

static size_t bucket_of(HANDLE handle)
{
    return ((uintptr_t)handle >> 2) % BUCKETS;
}

static handle_entry **find_link(HANDLE handle, const fvm_virtualizer *owner, unsigned tag)
{
    handle_entry **p = &g_buckets[bucket_of(handle)];
    while (*p && !((*p)->handle == handle && (*p)->owner == owner && (*p)->tag == tag))
        p = &(*p)->next;
    return p;
}

BOOL handle_put(HANDLE handle, const fvm_virtualizer *owner, unsigned tag, void *data)
{
    handle_entry *e = HeapAlloc(GetProcessHeap(), 0, sizeof *e);
    if (!e)
        return FALSE;
    e->handle = handle;
    e->owner = owner;
    e->tag = tag;
    e->data = data;
    AcquireSRWLockExclusive(&g_lock);
    handle_entry **p = find_link(handle, owner, tag);
    handle_entry *stale = *p;
    if (stale)
        *p = stale->next;
    else
        InterlockedIncrement(&g_count);
    e->next = g_buckets[bucket_of(handle)];
    g_buckets[bucket_of(handle)] = e;
    ReleaseSRWLockExclusive(&g_lock);
    if (stale) {   /* a close FVM did not see left it */
        if (owner->handle_closed)
            owner->handle_closed(handle, tag, stale->data);
        HeapFree(GetProcessHeap(), 0, stale);
    }
    return TRUE;
}

void *handle_find(HANDLE handle, const fvm_virtualizer *owner, unsigned tag,
                  void (*under_lock)(void *data, void *ctx), void *ctx)
{
    if (!g_count)
        return NULL;
    AcquireSRWLockShared(&g_lock);
    handle_entry *e = *find_link(handle, owner, tag);
    void *data = e ? e->data : NULL;
    if (data && under_lock)
        under_lock(data, ctx);
    ReleaseSRWLockShared(&g_lock);
    return data;
}

void *handle_take(HANDLE handle, const fvm_virtualizer *owner, unsigned tag)
{
    if (!g_count)
        return NULL;
    AcquireSRWLockExclusive(&g_lock);
    handle_entry **p = find_link(handle, owner, tag);
    handle_entry *e = *p;
    if (e) {
        *p = e->next;
        InterlockedDecrement(&g_count);
    }
    ReleaseSRWLockExclusive(&g_lock);
    if (!e)
        return NULL;
    void *data = e->data;
    HeapFree(GetProcessHeap(), 0, e);
    return data;
}

typedef struct kept_name {
    size_t len;
    uint16_t units[];
} kept_name;

BOOL handle_put_name(HANDLE handle, const fvm_virtualizer *owner, unsigned tag, const uint16_t *name, size_t len)
{
    kept_name *n = HeapAlloc(GetProcessHeap(), 0, sizeof *n + len * sizeof(uint16_t));
    if (!n)
        return FALSE;
    n->len = len;
    memcpy(n->units, name, len * sizeof(uint16_t));
    if (handle_put(handle, owner, tag, n))
        return TRUE;
    HeapFree(GetProcessHeap(), 0, n);
    return FALSE;
}

typedef struct name_copy {
    uint16_t *out;
    size_t cap, len;
} name_copy;

static void copy_name(void *data, void *ctx)
{
    const kept_name *n = data;
    name_copy *c = ctx;
    if (n->len <= c->cap) {
        memcpy(c->out, n->units, n->len * sizeof(uint16_t));
        c->len = n->len;
    }
}

BOOL handle_find_name(HANDLE handle, const fvm_virtualizer *owner, unsigned tag, uint16_t *out, size_t cap,
                      size_t *len)
{
    name_copy c = {out, cap, 0};
    if (!handle_find(handle, owner, tag, copy_name, &c) || !c.len)
        return FALSE;
    *len = c.len;
    return TRUE;
}

static BOOL registered(HANDLE handle)
{
    if (!g_count)
        return FALSE;
    BOOL known = FALSE;
    AcquireSRWLockShared(&g_lock);
    for (handle_entry *e = g_buckets[bucket_of(handle)]; e && !known; e = e->next)
        known = e->handle == handle;
    ReleaseSRWLockShared(&g_lock);
    return known;
}

/* The handle is going away: its entries leave the registry (a handle value
 * the system gives out again starts clean), to be handed to their owners. */
static handle_entry *detach(HANDLE handle)
{
    if (!registered(handle))   /* most handles closed were never registered: shared lock only */
        return NULL;
    handle_entry *gone = NULL;
    AcquireSRWLockExclusive(&g_lock);
    for (handle_entry **p = &g_buckets[bucket_of(handle)]; *p;) {
        handle_entry *e = *p;
        if (e->handle == handle) {
            *p = e->next;
            e->next = gone;
            gone = e;
            InterlockedDecrement(&g_count);
        } else {
            p = &e->next;
        }
    }
    ReleaseSRWLockExclusive(&g_lock);
    return gone;
}

/* Every owner frees its state; the handle is closed already (so an owner
 * can see what the close did: file.c's delete-on-close). */
static void hand_to_owners(HANDLE handle, handle_entry *gone)
{
    while (gone) {
        handle_entry *e = gone;
        gone = e->next;
        if (e->owner->handle_closed)
            e->owner->handle_closed(handle, e->tag, e->data);
        HeapFree(GetProcessHeap(), 0, e);
    }
}

static void forget(HANDLE handle)
{
    hand_to_owners(handle, detach(handle));
}

static NTSTATUS NTAPI box_NtClose(HANDLE handle)
{
    handle_entry *gone = detach(handle);
    NTSTATUS status = real_NtClose(handle);
    hand_to_owners(handle, gone);
    return status;
}

/* ---- duplication ---------------------------------------------------------------- */

static BOOL is_this_process(HANDLE process)
{
    return process == GetCurrentProcess() || GetProcessId(process) == GetCurrentProcessId();
}

#define MAX_COPIES 8

typedef struct handle_copy {
    const fvm_virtualizer *owner;
    unsigned tag;
    void *data;
} handle_copy;

/* The state of from, offered to its owners for the copy to. */
static size_t collect_copies(HANDLE from, HANDLE to, handle_copy *copies)
{
    size_t n = 0;
    AcquireSRWLockShared(&g_lock);
    for (handle_entry *e = g_buckets[bucket_of(from)]; e && n < MAX_COPIES; e = e->next) {
        if (e->handle != from || !e->owner->handle_duplicated)
            continue;
        void *data = e->owner->handle_duplicated(from, to, e->tag, e->data);
        if (data) {
            copies[n].owner = e->owner;
            copies[n].tag = e->tag;
            copies[n++].data = data;
        }
    }
    ReleaseSRWLockShared(&g_lock);
    return n;
}

static NTSTATUS NTAPI box_NtDuplicateObject(HANDLE source_process, HANDLE source, HANDLE target_process,
                                            PHANDLE target, ACCESS_MASK access, ULONG attributes, ULONG options)
{
    NTSTATUS refused = process_duplicate_check(source_process, target_process);   /* process.c */
    if (refused < 0)
        return refused;
    NTSTATUS status = real_NtDuplicateObject(source_process, source, target_process, target, access, attributes,
                                             options);
    if (status < 0 || !registered(source) || !is_this_process(source_process))
        return status;
    handle_copy copies[MAX_COPIES];
    size_t n = 0;
    HANDLE copy = NULL;
    if (target && target_process && is_this_process(target_process)) {
        copy = *target;
        n = collect_copies(source, copy, copies);
    }
    /* Before the copy's state goes in: Wine gives the copy the source's
     * handle value when the source is closed by the same call. */
    if (options & DUPLICATE_CLOSE_SOURCE)
        forget(source);
    for (size_t i = 0; i < n; i++)
        if (!handle_put(copy, copies[i].owner, copies[i].tag, copies[i].data) && copies[i].owner->handle_closed)
            copies[i].owner->handle_closed(copy, copies[i].tag, copies[i].data);
    return status;
}

/* ---- names ------------------------------------------------------------------------ */

/* Asks each virtualizer whether the name is one of its box objects. */
static size_t program_name(uint16_t *name, size_t len)
{
    for (size_t i = 0; i < g_virtualizer_count; i++) {
        size_t (*translate)(uint16_t *, size_t) = g_virtualizers[i]->program_name;
        size_t n = translate ? translate(name, len) : 0;
        if (n)
            return n;
    }
    return 0;
}

static NTSTATUS NTAPI box_NtQueryObject(HANDLE handle, OBJECT_INFORMATION_CLASS klass, PVOID info, ULONG length,
                                        PULONG returned)
{
    if (klass != ObjectNameInformation)
        return real_NtQueryObject(handle, klass, info, length, returned);
    ULONG private_size = sizeof(OBJECT_NAME_INFORMATION) + (NTPATH_MAX_UNITS + 1) * 2;
    OBJECT_NAME_INFORMATION *mine = HeapAlloc(GetProcessHeap(), 0, private_size);
    if (!mine)
        return real_NtQueryObject(handle, klass, info, length, returned);
    ULONG got = 0;
    NTSTATUS status = real_NtQueryObject(handle, klass, mine, private_size, &got);
    size_t name_len = status >= 0 && mine->Name.Buffer ? mine->Name.Length / 2 : 0;
    size_t program_len = name_len ? program_name((uint16_t *)mine->Name.Buffer, name_len) : 0;
    if (!program_len) {
        HeapFree(GetProcessHeap(), 0, mine);
        return real_NtQueryObject(handle, klass, info, length, returned);
    }
    ULONG required = (ULONG)(sizeof(OBJECT_NAME_INFORMATION) + (program_len + 1) * 2);
    if (returned)
        *returned = required;
    if (length < sizeof(OBJECT_NAME_INFORMATION)) {
        status = STATUS_INFO_LENGTH_MISMATCH;
    } else if (length < required) {
        status = STATUS_BUFFER_OVERFLOW;
    } else {
        OBJECT_NAME_INFORMATION *out = info;
        WCHAR *text = (WCHAR *)(out + 1);
        memcpy(text, mine->Name.Buffer, program_len * 2);
        text[program_len] = 0;
        out->Name.Buffer = text;
        out->Name.Length = (USHORT)(program_len * 2);
        out->Name.MaximumLength = (USHORT)((program_len + 1) * 2);
        status = STATUS_SUCCESS;
    }
    HeapFree(GetProcessHeap(), 0, mine);
    return status;
}

void handle_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtClose);
    FVM_HOOK(table, "ntdll.dll", NtDuplicateObject);
    FVM_HOOK(table, "ntdll.dll", NtQueryObject);
}

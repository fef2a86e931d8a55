/* file_dir.c - directory listings: one merged, sorted view of a folder that
 * exists both on the host and in the box.
 *
 * A boxed folder's box copy holds only what the box changed; its host
 * counterpart holds everything else. When a program lists a folder that
 * exists on both sides, the first NtQueryDirectoryFile on the handle reads
 * both sides completely, through private handles, with the caller's
 * information class and mask (so the file system applies its own wildcard
 * rules, DOS wildcards included), merges them (a box entry replaces the host
 * entry of the same name), sorts by upper-cased name as NTFS does, and then
 * serves the entries from that snapshot call after call, honouring
 * ReturnSingleEntry, RestartScan and the buffer size. Entries are copied
 * verbatim in the caller's class; only the offset and name fields are known
 * per class. A folder on one side only is listed by the real call. */
#include "runtime/file.h"
#include "runtime/ipc.h"
#include "runtime/guard.h"

#include "core/listmerge.h"

typedef NTSTATUS (NTAPI *NtQueryDirectoryFileEx_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK,
                                                    PVOID, ULONG, FILE_INFORMATION_CLASS, ULONG, PUNICODE_STRING);

NtQueryDirectoryFile_fn real_NtQueryDirectoryFile;
static NtQueryDirectoryFileEx_fn real_NtQueryDirectoryFileEx;

#define SL_RESTART_SCAN        0x01
#define SL_RETURN_SINGLE_ENTRY 0x02

/* Where the name lives in each directory information class (x64 layout). */
typedef struct dir_class {
    ULONG klass;
    ULONG name_length_offset;
    ULONG name_offset;
} dir_class;

static const dir_class dir_classes[] = {
    {1, 60, 64},    /* FileDirectoryInformation */
    {2, 60, 68},    /* FileFullDirectoryInformation */
    {3, 60, 94},    /* FileBothDirectoryInformation */
    {12, 8, 12},    /* FileNamesInformation */
    {37, 60, 104},  /* FileIdBothDirectoryInformation */
    {38, 60, 80},   /* FileIdFullDirectoryInformation */
    {50, 60, 92},   /* FileIdGlobalTxDirectoryInformation */
    {60, 60, 88},   /* FileIdExtdDirectoryInformation */
    {63, 60, 114},  /* FileIdExtdBothDirectoryInformation */
};

static const dir_class *find_class(ULONG klass)
{
    for (size_t i = 0; i < sizeof dir_classes / sizeof dir_classes[0]; i++)
        if (dir_classes[i].klass == klass)
            return &dir_classes[i];
    return NULL;
}

typedef struct dir_entry {
    ULONG offset;        /* of the raw entry in the listing's arena */
    ULONG size;          /* name_offset + name bytes */
    BOOL from_box;
} dir_entry;

typedef struct dir_listing {
    struct dir_listing *next;
    HANDLE handle;
    BOOL passthrough;          /* one side only: the real call lists it */
    const dir_class *cls;
    uint8_t *arena;
    size_t arena_used, arena_cap;
    dir_entry *entries;
    ULONG count, cap, position;
    BOOL returned_any;
} dir_listing;

static void listing_free(dir_listing *l)
{
    if (l->arena)
        VirtualFree(l->arena, 0, MEM_RELEASE);
    if (l->entries)
        HeapFree(GetProcessHeap(), 0, l->entries);
    HeapFree(GetProcessHeap(), 0, l);
}

/* Listings live in the runtime's handle registry (handles.c), freed when
 * their handle is closed. */
static dir_listing *listing_find(HANDLE handle)
{
    return handle_find(handle, &file_virtualizer, FILE_TAG_LISTING, NULL, NULL);
}

static void listing_insert(dir_listing *l)
{
    if (!handle_put(l->handle, &file_virtualizer, FILE_TAG_LISTING, l))
        listing_free(l);
}

void file_dir_listing_closed(void *listing)
{
    listing_free(listing);
}

static void file_dir_close(HANDLE handle)
{
    dir_listing *l = handle_take(handle, &file_virtualizer, FILE_TAG_LISTING);
    if (l)
        listing_free(l);
}

/* ---- the names of directory handles ---------------------------------------
 *
 * kernelbase looks up each folder of a program's path with a one-name
 * listing on a handle it has just opened; asking the server for that
 * handle's name was a request per folder (6 per process start from a path
 * six folders deep). The open hooks know the name: they leave it here. */

void file_dir_remember(HANDLE handle, const ntpath *path)
{
    handle_put_name(handle, &file_virtualizer, FILE_TAG_DIR_NAME, path->path, path->len);
}

/* The remembered name of the handle into s->dir (s->box is scratch). */
static BOOL remembered_path(HANDLE handle, file_scratch *s)
{
    static const ntpath_context any_form = {.input = NTPATH_INPUT_ANY};
    size_t len;
    fvm_error err;
    if (!handle_find_name(handle, &file_virtualizer, FILE_TAG_DIR_NAME, s->box, NTPATH_MAX_UNITS, &len) ||
        ntpath_normalize(s->box, len, &any_form, &s->dir, &err) != FVM_OK)
        return FALSE;
    if (ntpath_is_within(&s->dir, &g_box_root)) {   /* as handle_path: a box path stands for its host path */
        if (ntpath_from_box(&s->dir, g_box_root.path, g_box_root.len, &s->path, &err) != FVM_OK)
            return FALSE;
        memcpy(&s->dir, &s->path, sizeof s->path);
    }
    return TRUE;
}

/* ---- reading one side ----------------------------------------------------- */

static const WCHAR *entry_name(const dir_listing *l, const dir_entry *e, ULONG *units)
{
    const uint8_t *raw = l->arena + e->offset;
    *units = *(const ULONG *)(raw + l->cls->name_length_offset) / 2;
    return (const WCHAR *)(raw + l->cls->name_offset);
}

static BOOL arena_reserve(dir_listing *l, size_t more)
{
    if (l->arena_used + more <= l->arena_cap)
        return TRUE;
    size_t cap = l->arena_cap ? l->arena_cap * 2 : 256 * 1024;
    while (cap < l->arena_used + more)
        cap *= 2;
    uint8_t *arena = VirtualAlloc(NULL, cap, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (!arena)
        return FALSE;
    if (l->arena) {
        memcpy(arena, l->arena, l->arena_used);
        VirtualFree(l->arena, 0, MEM_RELEASE);
    }
    l->arena = arena;
    l->arena_cap = cap;
    return TRUE;
}

static BOOL entries_reserve(dir_listing *l)
{
    if (l->count < l->cap)
        return TRUE;
    ULONG cap = l->cap ? l->cap * 2 : 256;
    dir_entry *entries = l->entries ? HeapReAlloc(GetProcessHeap(), 0, l->entries, cap * sizeof *entries)
                                    : HeapAlloc(GetProcessHeap(), 0, cap * sizeof *entries);
    if (!entries)
        return FALSE;
    l->entries = entries;
    l->cap = cap;
    return TRUE;
}

/* FVM's own temporary names (an interrupted copy-up) are never listed. */
static BOOL is_internal_name(const WCHAR *name, ULONG units)
{
    static const WCHAR marker[] = L".fvm-copy-";
    const ULONG marker_len = sizeof marker / sizeof marker[0] - 1;
    for (ULONG i = 0; i + marker_len <= units; i++)
        if (!memcmp(name + i, marker, marker_len * sizeof(WCHAR)))
            return TRUE;
    return FALSE;
}

/* True when the policy hides dir\name: it is then left out of listings. */
static BOOL policy_hides_child(const ntpath *dir, const WCHAR *name, size_t name_len, uint16_t *buf, size_t cap)
{
    if (!runtime_policy_may(POLICY_TYPE_FILE, POLICY_ACTION_HIDE) || dir->len + 1 + name_len > cap)
        return FALSE;
    size_t len = dir->len;
    memcpy(buf, dir->path, len * 2);
    if (len && buf[len - 1] != L'\\')
        buf[len++] = L'\\';
    memcpy(buf + len, name, name_len * 2);
    len += name_len;
    policy_decision d;
    return runtime_policy_decide(POLICY_TYPE_FILE, buf, len, &d) == POLICY_ACTION_HIDE;
}

/* Appends every entry of the folder at path (NT, len units) to l. */
static NTSTATUS read_side(dir_listing *l, const uint16_t *path, size_t len, PUNICODE_STRING mask, BOOL from_box,
                          file_scratch *hide)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE dir;
    init_attributes(&oa, &us, path, len, NULL);
    NTSTATUS status = real_NtOpenFile(&dir, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                                      FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                      FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    if (status < 0)
        return status;
    enum { CHUNK = 64 * 1024 };
    uint8_t *buf = VirtualAlloc(NULL, CHUNK, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (!buf) {
        real_NtClose(dir);
        return STATUS_NO_MEMORY;
    }
    BOOL first = TRUE;
    for (;;) {
        status = real_NtQueryDirectoryFile(dir, NULL, NULL, NULL, &io, buf, CHUNK,
                                           (FILE_INFORMATION_CLASS)l->cls->klass, FALSE, first ? mask : NULL,
                                           first);
        first = FALSE;
        if (status == STATUS_NO_MORE_FILES || status == STATUS_NO_SUCH_FILE) {
            status = STATUS_SUCCESS;
            break;
        }
        if (status < 0)
            break;
        for (ULONG off = 0;;) {
            const uint8_t *raw = buf + off;
            ULONG next = *(const ULONG *)raw;
            ULONG name_bytes = *(const ULONG *)(raw + l->cls->name_length_offset);
            ULONG size = l->cls->name_offset + name_bytes;
            const WCHAR *name = (const WCHAR *)(raw + l->cls->name_offset);
            if (!is_internal_name(name, name_bytes / 2) &&
                !(hide && (index_hidden_child(&hide->dir, name, name_bytes / 2, hide->key, BOXINDEX_MAX_KEY_UNITS + 1) ||
                           policy_hides_child(&hide->dir, name, name_bytes / 2, hide->box, NTPATH_MAX_UNITS)))) {
                if (!arena_reserve(l, size + 8) || !entries_reserve(l)) {
                    status = STATUS_NO_MEMORY;
                    break;
                }
                memcpy(l->arena + l->arena_used, raw, size);
                l->entries[l->count].offset = (ULONG)l->arena_used;
                l->entries[l->count].size = size;
                l->entries[l->count].from_box = from_box;
                l->count++;
                l->arena_used = (l->arena_used + size + 7) & ~(size_t)7;
            }
            if (!next)
                break;
            off += next;
        }
        if (status < 0)
            break;
    }
    VirtualFree(buf, 0, MEM_RELEASE);
    real_NtClose(dir);
    return status;
}

/* ---- merging -------------------------------------------------------------- */

static int is_dot_name(const WCHAR *name, ULONG units)
{
    if (units == 1 && name[0] == L'.')
        return 1;
    if (units == 2 && name[0] == L'.' && name[1] == L'.')
        return 2;
    return 0;
}

/* NTFS order ("." and ".." first, then by upper-cased name), one entry
 * per name, the box's entry winning over the host's (core/listmerge.c, the
 * merger the registry's listings use too). */
static BOOL merge_entries(dir_listing *l)
{
    if (l->count < 2)
        return TRUE;
    listmerge_entry *m = HeapAlloc(GetProcessHeap(), 0, 2 * (size_t)l->count * sizeof *m);
    dir_entry *merged = HeapAlloc(GetProcessHeap(), 0, (size_t)l->count * sizeof *merged);
    BOOL ok = m && merged;
    if (ok) {
        for (ULONG i = 0; i < l->count; i++) {
            ULONG units;
            m[i].name = (const uint16_t *)entry_name(l, &l->entries[i], &units);
            m[i].len = units;
            m[i].ref = i;
            m[i].from_box = (uint8_t)(l->entries[i].from_box != FALSE);
        }
        size_t kept = listmerge_sort_unique(m, l->count, m + l->count, LISTMERGE_DOTS_FIRST);
        for (size_t k = 0; k < kept; k++)
            merged[k] = l->entries[m[k].ref];
        memcpy(l->entries, merged, kept * sizeof *merged);
        l->count = (ULONG)kept;
    }
    if (m)
        HeapFree(GetProcessHeap(), 0, m);
    if (merged)
        HeapFree(GetProcessHeap(), 0, merged);
    return ok;
}

/* The merged view of s->dir (s->box: its box side), unless a side settles
 * it: box_untouched when the index has nothing in the folder, may_hide when
 * host names may have to be filtered out. */
static void build_merged(dir_listing *l, file_scratch *s, PUNICODE_STRING mask, BOOL box_untouched, BOOL may_hide)
{
    DWORD host = path_attributes(s->dir.path, s->dir.len);
    DWORD boxed = box_untouched ? INVALID_FILE_ATTRIBUTES : path_attributes(s->box, s->box_len);
    BOOL host_dir = host != INVALID_FILE_ATTRIBUTES && (host & FILE_ATTRIBUTE_DIRECTORY);
    BOOL box_dir = boxed != INVALID_FILE_ATTRIBUTES && (boxed & FILE_ATTRIBUTE_DIRECTORY);
    /* The host side counts unless the folder was re-created over a deleted
     * one; deleted names are filtered out of it. */
    if (host_dir && box_dir && index_folder_is_opaque(&s->dir, s->key, BOXINDEX_MAX_KEY_UNITS + 1))
        host_dir = FALSE;
    BOOL filter = host_dir && may_hide;
    if (!host_dir || !(box_dir || filter))
        return;
    l->passthrough = FALSE;
    NTSTATUS st = STATUS_SUCCESS;
    if (box_dir)
        st = read_side(l, s->box, s->box_len, mask, TRUE, NULL);
    /* s->box is free from here: policy_hides_child builds names in it. */
    if (st >= 0 && host_dir)
        st = read_side(l, s->dir.path, s->dir.len, mask, FALSE, filter ? s : NULL);
    if (st < 0 || !merge_entries(l)) {
        l->passthrough = TRUE;   /* fall back to the handle's own side */
        l->count = 0;
    }
}

/* Decides whether the handle's folder needs a merged view and builds it. */
static dir_listing *listing_create(HANDLE handle, ULONG klass, PUNICODE_STRING mask)
{
    dir_listing *l = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *l);
    if (!l)
        return NULL;
    l->handle = handle;
    l->cls = find_class(klass);
    l->passthrough = TRUE;
    file_scratch *s = scratch_acquire();
    if (!s) {
        HeapFree(GetProcessHeap(), 0, l);
        return NULL;
    }
    fvm_error err;
    /* A folder the index knows nothing in has nothing in the box to add,
     * and looking its box side up is the costly part when it does not
     * exist (Wine scans the last folder that does for another case of the
     * name): kernelbase's lookup of a program's path lists each of its
     * folders, six per process start in the bench. If no host name can be
     * hidden either, the listing is the handle's own: no lookup at all. */
    if (l->cls && (remembered_path(handle, s) || handle_path(handle, s, NULL)) &&
        (s->dir.kind == NTPATH_KIND_DRIVE || s->dir.kind == NTPATH_KIND_UNC) &&
        ntpath_to_box(&s->dir, g_box_root.path, g_box_root.len, s->box, NTPATH_MAX_UNITS + 1, &s->box_len,
                      &err) == FVM_OK) {
        BOOL untouched = index_folder_untouched(&s->dir, s->key, BOXINDEX_MAX_KEY_UNITS + 1);
        /* Host names are filtered when the index deleted some or the policy
         * has a rule that hides files (a program's image lookup lists each
         * folder of its path: reading and filtering them all when nothing
         * can be hidden cost every process start about 40 server requests). */
        BOOL may_hide = index_has_hidden_children(&s->dir, s->key, BOXINDEX_MAX_KEY_UNITS + 1) ||
                        runtime_policy_may(POLICY_TYPE_FILE, POLICY_ACTION_HIDE);
        if (!untouched || may_hide)
            build_merged(l, s, mask, untouched, may_hide);
    }
    scratch_release(s);
    return l;
}

/* ---- serving -------------------------------------------------------------- */

static NTSTATUS serve(dir_listing *l, PIO_STATUS_BLOCK io, uint8_t *out, ULONG length, BOOL single)
{
    ULONG used = 0, prev = 0;
    BOOL any = FALSE;
    NTSTATUS status = STATUS_SUCCESS;
    if (l->position >= l->count) {
        status = l->returned_any || l->count ? STATUS_NO_MORE_FILES : STATUS_NO_SUCH_FILE;
        io->Status = status;
        io->Information = 0;
        return status;
    }
    if (length < l->cls->name_offset)
        return STATUS_INFO_LENGTH_MISMATCH;
    while (l->position < l->count) {
        const dir_entry *e = &l->entries[l->position];
        ULONG at = any ? (used + 7) & ~7u : 0;
        if (at + e->size > length) {
            if (any)
                break;
            /* Not even one whole entry fits: give what fits, as NT does. */
            memcpy(out, l->arena + e->offset, length);
            *(ULONG *)out = 0;
            used = length;
            status = STATUS_BUFFER_OVERFLOW;
            break;
        }
        memcpy(out + at, l->arena + e->offset, e->size);
        *(ULONG *)(out + at) = 0;
        if (any)
            *(ULONG *)(out + prev) = at - prev;
        prev = at;
        used = at + e->size;
        any = TRUE;
        l->position++;
        l->returned_any = TRUE;
        if (single)
            break;
    }
    io->Status = status;
    io->Information = used;
    return status;
}

static NTSTATUS query_directory(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                PIO_STATUS_BLOCK io, PVOID buffer, ULONG length, FILE_INFORMATION_CLASS klass,
                                BOOL single, PUNICODE_STRING mask, BOOL restart, BOOL *handled)
{
    dir_listing *l = listing_find(handle);
    if (l && !l->passthrough && (restart || l->cls->klass != (ULONG)klass)) {
        /* A new scan (perhaps with a new mask or class): read it afresh. */
        file_dir_close(handle);
        l = NULL;
    }
    if (!l) {
        l = listing_create(handle, (ULONG)klass, mask);
        if (!l)
            return STATUS_NO_MEMORY;
        listing_insert(l);
    }
    if (l->passthrough) {
        *handled = FALSE;
        return STATUS_SUCCESS;
    }
    *handled = TRUE;
    if (!guard_writable(buffer, length))
        return STATUS_ACCESS_VIOLATION;   /* what the system call says; the hook must not fault */
    NTSTATUS status = serve(l, io, buffer, length, single);
    if (event)
        NtSetEvent(event, NULL);
    (void)apc;
    (void)apc_context;
    return status;
}

static NTSTATUS NTAPI box_NtQueryDirectoryFile(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                               PIO_STATUS_BLOCK io, PVOID buffer, ULONG length,
                                               FILE_INFORMATION_CLASS klass, BOOLEAN single, PUNICODE_STRING mask,
                                               BOOLEAN restart)
{
    BOOL handled;
    NTSTATUS status = query_directory(handle, event, apc, apc_context, io, buffer, length, klass, single, mask,
                                      restart, &handled);
    if (handled || status < 0)
        return status;
    return real_NtQueryDirectoryFile(handle, event, apc, apc_context, io, buffer, length, klass, single, mask,
                                     restart);
}

static NTSTATUS NTAPI box_NtQueryDirectoryFileEx(HANDLE handle, HANDLE event, PIO_APC_ROUTINE apc,
                                                 PVOID apc_context, PIO_STATUS_BLOCK io, PVOID buffer, ULONG length,
                                                 FILE_INFORMATION_CLASS klass, ULONG flags, PUNICODE_STRING mask)
{
    BOOL handled;
    NTSTATUS status = query_directory(handle, event, apc, apc_context, io, buffer, length, klass,
                                      (flags & SL_RETURN_SINGLE_ENTRY) != 0, mask, (flags & SL_RESTART_SCAN) != 0,
                                      &handled);
    if (handled || status < 0)
        return status;
    return real_NtQueryDirectoryFileEx(handle, event, apc, apc_context, io, buffer, length, klass, flags, mask);
}

/* Calls visit for every entry of the folder at path (NT, len units) except
 * "." and "..", with FileDirectoryInformation; stops when visit returns
 * non-zero and returns that value (or a negative NTSTATUS on failure). */
int dir_enumerate(const uint16_t *path, size_t len, int (*visit)(void *ctx, const FILE_DIRECTORY_INFORMATION *entry),
                  void *ctx)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE dir;
    init_attributes(&oa, &us, path, len, NULL);
    NTSTATUS status = real_NtOpenFile(&dir, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io,
                                      FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                      FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    if (status < 0)
        return (int)status;
    enum { CHUNK = 16 * 1024 };
    uint8_t *buf = VirtualAlloc(NULL, CHUNK, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    int result = buf ? 0 : (int)STATUS_NO_MEMORY;
    for (BOOL first = TRUE; buf && !result; first = FALSE) {
        status = real_NtQueryDirectoryFile(dir, NULL, NULL, NULL, &io, buf, CHUNK, FileDirectoryInformation, FALSE,
                                           NULL, first);
        if (status < 0) {
            if (status != STATUS_NO_MORE_FILES && status != STATUS_NO_SUCH_FILE)
                result = (int)status;
            break;
        }
        for (ULONG off = 0; !result;) {
            const FILE_DIRECTORY_INFORMATION *e = (const FILE_DIRECTORY_INFORMATION *)(buf + off);
            if (!is_dot_name(e->FileName, e->FileNameLength / 2) &&
                !is_internal_name(e->FileName, e->FileNameLength / 2))
                result = visit(ctx, e);
            if (!e->NextEntryOffset)
                break;
            off += e->NextEntryOffset;
        }
    }
    if (buf)
        VirtualFree(buf, 0, MEM_RELEASE);
    real_NtClose(dir);
    return result;
}

typedef struct emptiness {
    const ntpath *host_dir;
    uint16_t *key_buf;
} emptiness;

static int any_entry(void *ctx, const FILE_DIRECTORY_INFORMATION *e)
{
    return 1;
}

static int any_visible_host_entry(void *ctx, const FILE_DIRECTORY_INFORMATION *e)
{
    emptiness *em = ctx;
    return !index_hidden_child(em->host_dir, e->FileName, e->FileNameLength / 2, em->key_buf,
                               BOXINDEX_MAX_KEY_UNITS + 1);
}

BOOL dir_is_empty_merged(file_scratch *s)
{
    if (dir_enumerate(s->box, s->box_len, any_entry, NULL) == 1)
        return FALSE;
    if (index_folder_is_opaque(&s->path, s->key, BOXINDEX_MAX_KEY_UNITS + 1))
        return TRUE;
    emptiness em = {&s->path, s->key};
    return dir_enumerate(s->path.path, s->path.len, any_visible_host_entry, &em) != 1;
}

void file_dir_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtQueryDirectoryFile);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtQueryDirectoryFileEx);
}

/* file_index.c - the box index as the runtime uses it (core/boxindex.c).
 *
 * The index records what the box did to host paths: copied up, created,
 * deleted (tombstones), renamed. Every process of the box maps the same file,
 * <box>\index-N.fvm, READ-ONLY, so a lookup is a few probes in shared memory
 * and no system call: an untouched host path costs nothing extra. The broker
 * is the index's only writer while the box runs (issue 17.7,
 * broker/index.c): every change goes to it as one FVMIDX01 request on this
 * process's own connection to the control pipe, and the reply comes after
 * the change is in the shared file, so the next lookup here sees it. The
 * broker creates index-1.fvm before the box's first process, and when the
 * index is full rebuilds it into index-(N+1).fvm, twice as large, and marks
 * the old one retired: every process switches on its next lookup. A boxed
 * process holds only a read-only view of the index and the section
 * (PAGE_READONLY, over the file opened for reading, which is closed), which
 * it hands to the boxed processes it creates (box_index_give): no handle
 * of it gives a writable view (map_index_section); the file hooks refuse
 * it FVM's storage by every name.
 *
 * Decisions (see index_check): a path is hidden when it or a folder above it
 * is a tombstone or was renamed away; it is box-only when a folder above it
 * was created in the box over a deleted host folder (OPAQUE); it is in the
 * box when its own entry is live; otherwise the host decides. */
#include "runtime/file.h"

#include "core/boxindex.h"
#include "core/brokermsg.h"
#include "common/brokerproto.h"
#include "runtime/ipc.h"


typedef struct runtime_index {
    boxindex idx;
    HANDLE mapping;           /* the section, kept for box_index_give */
    void *view;
    uint64_t size;
    unsigned number;          /* N of index-N.fvm */
    BOOL ready;
} runtime_index;

static runtime_index g_index;
static SRWLOCK g_index_switch = SRWLOCK_INIT;   /* guards g_index while it is swapped */
static SRWLOCK g_rpc_lock = SRWLOCK_INIT;      /* one request at a time on g_broker */
static HANDLE g_broker;                         /* this process's connection for index writes */

static void index_file_name(unsigned number, wchar_t *out)
{
    wchar_t digits[12];
    int n = 0;
    do {
        digits[n++] = (wchar_t)(L'0' + number % 10);
        number /= 10;
    } while (number);
    fvm_wcscpy(out, FVM_PATH_MAX, g_fvm.config.box_path);
    fvm_wcscat(out, FVM_PATH_MAX, L"\\index-");
    size_t len = fvm_wcslen(out);
    while (n)
        out[len++] = digits[--n];
    out[len] = 0;
    fvm_wcscat(out, FVM_PATH_MAX, L".fvm");
}

static void unmap(runtime_index *ri)
{
    if (ri->view)
        UnmapViewOfFile(ri->view);
    if (ri->mapping)
        CloseHandle(ri->mapping);
    memset(ri, 0, sizeof *ri);
}

/* The runtime's own files (the index) are opened through the unhooked
 * NtCreateFile: through the hooks, a boxed process is denied the FVM root. */

static HANDLE open_own_file(const wchar_t *win32_path, ULONG disposition, ACCESS_MASK access, ULONG options)
{
    uint16_t nt[FVM_PATH_MAX + 8] = u"\\??\\";
    size_t len = 4;
    for (size_t i = 0; win32_path[i] && len < FVM_PATH_MAX + 4; i++)
        nt[len++] = win32_path[i];
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE handle = NULL;
    init_attributes(&oa, &us, nt, len, NULL);
    NtCreateFile_fn create = real_NtCreateFile ? real_NtCreateFile : NtCreateFile;
    if (create(&handle, access | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL,
               FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, disposition,
               options | FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, NULL, 0) < 0)
        return NULL;
    return handle;
}

/* Maps the section of index-N.fvm, size bytes, read-only (FILE_MAP_READ),
 * and keeps the section handle: the process's children are handed a
 * duplicate of it (box_index_give). A duplicate with more access is no
 * way to write the index: the section is PAGE_READONLY over a file opened
 * for reading, and a writable view of it is refused (checked under Wine 8:
 * DuplicateHandle with FILE_MAP_ALL_ACCESS succeeds, MapViewOfFile with
 * FILE_MAP_WRITE then fails with ERROR_ACCESS_DENIED; a copy-on-write view
 * writes only private pages). */
static NTSTATUS map_index_section(HANDLE section, unsigned number, uint64_t size, runtime_index *out)
{
    memset(out, 0, sizeof *out);
    out->mapping = section;
    out->view = MapViewOfFile(section, FILE_MAP_READ, 0, 0, (SIZE_T)size);
    if (!out->view) {
        unmap(out);
        return STATUS_NO_MEMORY;
    }
    fvm_error err;
    if (boxindex_open(&out->idx, out->view, (size_t)size, NULL, &err) != FVM_OK) {
        fvm_report("file: box index %u: %s", number, err.message);
        unmap(out);
        return STATUS_FILE_CORRUPT_ERROR;
    }
    out->number = number;
    out->size = size;
    out->ready = TRUE;
    return STATUS_SUCCESS;
}

/* Maps index-N.fvm read-only: the file opened for reading only (and closed
 * once the section holds it), the section PAGE_READONLY. */
static NTSTATUS map_index(unsigned number, runtime_index *out)
{
    wchar_t name[FVM_PATH_MAX];
    index_file_name(number, name);
    memset(out, 0, sizeof *out);
    HANDLE file = open_own_file(name, FILE_OPEN, GENERIC_READ, 0);
    if (!file)
        return STATUS_OBJECT_NAME_NOT_FOUND;
    LARGE_INTEGER size;
    HANDLE section = NULL;
    if (GetFileSizeEx(file, &size) && size.QuadPart > 0)
        section = CreateFileMappingW(file, NULL, PAGE_READONLY, (DWORD)(size.QuadPart >> 32), (DWORD)size.QuadPart,
                                     NULL);
    NtClose(file);
    if (!section)
        return STATUS_FILE_CORRUPT_ERROR;
    return map_index_section(section, number, (uint64_t)size.QuadPart, out);
}

/* The newest index file: the one after the last retired one. */
static NTSTATUS open_newest(unsigned from, runtime_index *out)
{
    for (unsigned n = from ? from : 1; n < from + 64; n++) {
        NTSTATUS st = map_index(n, out);
        if (st < 0)
            return st;
        if (!boxindex_is_retired(&out->idx))
            return STATUS_SUCCESS;
        unmap(out);
    }
    return STATUS_FILE_CORRUPT_ERROR;
}

/* A service of its own, started by dllmain.c before any virtualizer: the
 * file and registry virtualizers both read it from their first call. The
 * broker made the index before the box's first process. */
BOOL box_index_start(void)
{
    NTSTATUS st = -1;
    /* Handed by the boxed process that created this one: the index it had
     * mapped, one map instead of a path walk, an open and a section
     * (about 0.5 ms here). If that one is retired by now, the first lookup
     * moves on, as in any process. */
    if (g_fvm.config.given_index)
        st = map_index_section((HANDLE)(ULONG_PTR)g_fvm.config.given_index, g_fvm.config.given_index_number,
                               g_fvm.config.given_index_size, &g_index);
    if (st < 0)
        st = open_newest(1, &g_index);
    if (st < 0) {
        fvm_report("file: cannot open the box index (status 0x%08lx)", (unsigned long)st);
        return FALSE;
    }
    return TRUE;
}

void box_index_give(HANDLE process, fvm_box_config *config)
{
    HANDLE in_child = NULL;
    AcquireSRWLockShared(&g_index_switch);
    if (g_index.ready && g_index.mapping &&
        DuplicateHandle(GetCurrentProcess(), g_index.mapping, process, &in_child, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
        config->given_index = (uint64_t)(ULONG_PTR)in_child;
        config->given_index_size = g_index.size;
        config->given_index_number = g_index.number;
    }
    ReleaseSRWLockShared(&g_index_switch);
}

/* Switches to the successor when another process retired ours. Called
 * before each use; the common case is one load of a header field. */
static void follow_retirement(void)
{
    if (!boxindex_is_retired(&g_index.idx))
        return;
    AcquireSRWLockExclusive(&g_index_switch);
    if (boxindex_is_retired(&g_index.idx)) {
        runtime_index next;
        if (open_newest(g_index.number + 1, &next) >= 0) {
            /* Lookups in flight on the old view keep it mapped: it is
             * retired, never unmapped while this process lives. */
            HANDLE old_section = g_index.mapping;
            g_index = next;
            CloseHandle(old_section);   /* its view stays */
        }
    }
    ReleaseSRWLockExclusive(&g_index_switch);
}

/* Makes the key of a canonical path into buf. */
static BOOL make_key(const ntpath *path, uint16_t *buf, size_t cap, boxindex_key *key)
{
    fvm_error err;
    size_t len;
    if (ntpath_key(path, buf, cap, &len, &err) != FVM_OK)
        return FALSE;
    key->hash = ntpath_hash(path);
    key->key = buf;
    key->path = NULL;
    key->len = len;
    return TRUE;
}

index_verdict index_check(const ntpath *path, uint16_t *key_buf, size_t cap)
{
    if (!g_index.ready)
        return INDEX_UNTOUCHED;
    follow_retirement();
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    if (!stats.entries)
        return INDEX_UNTOUCHED;      /* a box that changed nothing yet: no work at all */
    boxindex_key key;
    if (!make_key(path, key_buf, cap, &key))
        return INDEX_UNTOUCHED;
    /* Folders above, outermost first: a deleted folder hides everything
     * below; a folder re-created over a deleted one makes the host's content
     * below it invisible. */
    index_verdict below = INDEX_UNTOUCHED;
    /* One pass: the hash of key[0..i) is at hand at every separator. */
    uint64_t prefix_hash = boxindex_key_hash_start(key.key, key.len);
    for (size_t i = 0; i < key.len; prefix_hash = boxindex_key_hash_extend(prefix_hash, &key.key[i], 1), i++) {
        if (key.key[i] != L'\\' || i < path->root_len)
            continue;
        boxindex_entry entry;
        boxindex_state st = boxindex_lookup(&g_index.idx, prefix_hash, key.key, i, &entry);
        if (st == BOXINDEX_TOMBSTONE || st == BOXINDEX_RENAMED)
            return INDEX_PARENT_DELETED;
        if ((st == BOXINDEX_COPIED || st == BOXINDEX_CREATED) && (entry.flags & BOXINDEX_FLAG_OPAQUE))
            below = INDEX_BOX_ONLY;
        if (st == BOXINDEX_CREATED)
            below = INDEX_BOX_ONLY;
    }
    boxindex_entry entry;
    switch (boxindex_lookup(&g_index.idx, key.hash, key.key, key.len, &entry)) {
    case BOXINDEX_COPIED:
    case BOXINDEX_CREATED:
        return INDEX_IN_BOX;
    case BOXINDEX_TOMBSTONE:
    case BOXINDEX_RENAMED:
        return INDEX_DELETED;
    default:
        return below;
    }
}

int index_hidden_child(const ntpath *dir, const uint16_t *name, size_t name_len, uint16_t *key_buf, size_t cap)
{
    if (!g_index.ready)
        return 0;
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    if (!stats.hidden)
        return 0;
    boxindex_key key;
    if (!make_key(dir, key_buf, cap, &key) || key.len + 1 + name_len >= cap)
        return 0;
    size_t len = key.len;
    if (len && key_buf[len - 1] != L'\\')
        key_buf[len++] = L'\\';
    for (size_t i = 0; i < name_len; i++)
        key_buf[len++] = ntpath_upcase(NULL, name[i]);
    boxindex_entry entry;
    boxindex_state st = boxindex_lookup(&g_index.idx, boxindex_key_hash(key_buf, len), key_buf, len, &entry);
    return st == BOXINDEX_TOMBSTONE || st == BOXINDEX_RENAMED;
}

int index_folder_is_opaque(const ntpath *dir, uint16_t *key_buf, size_t cap)
{
    if (!g_index.ready)
        return 0;
    boxindex_key key;
    boxindex_entry entry;
    if (!make_key(dir, key_buf, cap, &key))
        return 0;
    boxindex_state st = boxindex_lookup(&g_index.idx, key.hash, key.key, key.len, &entry);
    return (st == BOXINDEX_COPIED || st == BOXINDEX_CREATED) && (entry.flags & BOXINDEX_FLAG_OPAQUE);
}

int index_has_hidden_children(const ntpath *dir, uint16_t *key_buf, size_t cap)
{
    if (!g_index.ready)
        return 0;
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    return stats.hidden != 0;
}

static int any_child(void *ctx, const boxindex_entry *entry)
{
    return 1;
}

int index_folder_untouched(const ntpath *dir, uint16_t *key_buf, size_t cap)
{
    if (!g_index.ready)
        return 0;
    follow_retirement();
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    if (!stats.entries)
        return 1;
    boxindex_key key;
    boxindex_entry entry;
    if (!make_key(dir, key_buf, cap, &key))
        return 0;
    return boxindex_lookup(&g_index.idx, key.hash, key.key, key.len, &entry) == BOXINDEX_ABSENT &&
           !boxindex_children(&g_index.idx, key.hash, key.key, key.len, any_child, NULL);
}

/* ---- writes: requests to the broker ---- */

/* Connects once (with g_rpc_lock held); a broken connection is retried. */
static HANDLE broker_connection(void)
{
    if (!g_broker)
        g_broker = runtime_broker_connect();
    return g_broker;
}

/* One change, made by the broker: its fvm_status (FVM_E_IO when the broker
 * cannot be reached). */
static fvm_status broker_write(brokermsg_index_op op, const boxindex_key *key, const boxindex_info *info,
                               const boxindex_key *to)
{
    static uint8_t buf[BROKERMSG_MAX];   /* under g_rpc_lock */
    brokermsg_index m;
    memset(&m, 0, sizeof m);
    m.op = op;
    m.flags = info->flags;
    m.base_size = info->base.size;
    m.base_mtime = info->base.mtime;
    memcpy(m.base_hash, info->base.content_hash, 32);
    m.key = key->key;
    m.path = key->path;
    m.len = key->len;
    if (to) {
        m.to_key = to->key;
        m.to_path = to->path;
        m.to_len = to->len;
    }
    DWORD saved = GetLastError();
    AcquireSRWLockExclusive(&g_rpc_lock);
    fvm_status st = FVM_E_IO;
    size_t n = brokermsg_index_encode(&m, buf, sizeof buf);
    for (int attempt = 0; n && attempt < 2; attempt++) {
        HANDLE pipe = broker_connection();
        if (!pipe)
            break;
        uint32_t reply[2];
        DWORD done = 0;
        if (WriteFile(pipe, buf, (DWORD)n, &done, NULL) && ReadFile(pipe, reply, sizeof reply, &done, NULL) &&
            done == sizeof reply && reply[0] == FVM_BROKER_PROTO_VERSION) {
            st = (fvm_status)reply[1];
            break;
        }
        CloseHandle(pipe);
        g_broker = NULL;
    }
    ReleaseSRWLockExclusive(&g_rpc_lock);
    SetLastError(saved);
    if (!n)
        st = FVM_E_RANGE;
    return st;
}

static NTSTATUS write_key(brokermsg_index_op op, const boxindex_key *key, const boxindex_info *info)
{
    fvm_status st = broker_write(op, key, info, NULL);
    follow_retirement();   /* the broker may have grown the index */
    switch (st) {
    case FVM_OK:
    case FVM_E_EXISTS:
        return STATUS_SUCCESS;
    case FVM_E_NOTFOUND:
        return STATUS_OBJECT_PATH_NOT_FOUND;
    case FVM_E_RANGE:
        return STATUS_DISK_FULL;
    default:
        fvm_report("file: the broker refused or failed a box index write (fvm_status %d)", (int)st);
        return STATUS_INTERNAL_ERROR;
    }
}

static NTSTATUS write_entry(brokermsg_index_op write, const ntpath *path, uint16_t *key_buf, size_t cap,
                            const boxindex_info *info)
{
    if (!g_index.ready)
        return STATUS_SUCCESS;
    follow_retirement();
    boxindex_key key;
    if (!make_key(path, key_buf, cap, &key))
        return STATUS_OBJECT_NAME_INVALID;
    key.path = path->path;   /* same length as the key for a path without stream */
    if (path->stream_len)
        key.path = NULL;
    return write_key(write, &key, info);
}

uint64_t index_generation(void)
{
    if (!g_index.ready)
        return 0;
    follow_retirement();
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    /* The file number too: a rebuilt index starts its count afresh. */
    return (stats.generation << 8 ^ g_index.number) + 1;
}

/* ---- registry keys (key.c): same index, keys "\REGISTRY\..." ---- */

BOOL index_ready(void)
{
    return g_index.ready;
}

reg_verdict index_check_registry(const uint16_t *key, size_t len, uint64_t hash)
{
    return index_check_registry_link(key, len, hash, FALSE, NULL);
}

/* The verdict, and (link_at not NULL) the length of the outermost key on
 * the way that the box made as a link key (REG_INDEX_FLAG_LINK), the key
 * itself included when whole; 0 when there is none. One walk answers both:
 * a link costs no extra lookup. */
reg_verdict index_check_registry_link(const uint16_t *key, size_t len, uint64_t hash, BOOL whole, size_t *link_at)
{
    if (link_at)
        *link_at = 0;
    if (!g_index.ready)
        return REG_VERDICT_HOST;
    follow_retirement();
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    if (!stats.entries)
        return REG_VERDICT_HOST;
    /* Keys above, outermost first (root "\REGISTRY\" is 10 units): a
     * deleted key hides everything below; below a key made in the box (or
     * re-created over a deleted one) the host has nothing to say. */
    BOOL box_only = FALSE;
    uint64_t prefix_hash = boxindex_key_hash_start(key, len);
    for (size_t i = 0; i < len; prefix_hash = boxindex_key_hash_extend(prefix_hash, &key[i], 1), i++) {
        if (key[i] != L'\\' || i <= 10)
            continue;
        boxindex_entry entry;
        boxindex_state st = boxindex_lookup(&g_index.idx, prefix_hash, key, i, &entry);
        if (st == BOXINDEX_TOMBSTONE || st == BOXINDEX_RENAMED)
            return REG_VERDICT_DELETED;
        if (st == BOXINDEX_CREATED || (st == BOXINDEX_COPIED && (entry.flags & BOXINDEX_FLAG_OPAQUE)))
            box_only = TRUE;
        if (link_at && !*link_at && st == BOXINDEX_CREATED && (entry.flags & REG_INDEX_FLAG_LINK))
            *link_at = i;
    }
    boxindex_entry entry;
    switch (boxindex_lookup(&g_index.idx, hash, key, len, &entry)) {
    case BOXINDEX_COPIED:
        return box_only || (entry.flags & BOXINDEX_FLAG_OPAQUE) ? REG_VERDICT_BOX : REG_VERDICT_MERGED;
    case BOXINDEX_CREATED:
        if (link_at && !*link_at && whole && (entry.flags & REG_INDEX_FLAG_LINK))
            *link_at = len;
        return REG_VERDICT_BOX;
    case BOXINDEX_TOMBSTONE:
    case BOXINDEX_RENAMED:
        return REG_VERDICT_DELETED;
    default:
        return box_only ? REG_VERDICT_BOX_BELOW : REG_VERDICT_HOST;
    }
}

/* Whether the box made the key at key[0..len) as a link key. */
BOOL index_registry_is_link(const uint16_t *key, size_t len, uint64_t hash)
{
    if (!g_index.ready)
        return FALSE;
    follow_retirement();
    boxindex_entry entry;
    return boxindex_lookup(&g_index.idx, hash, key, len, &entry) == BOXINDEX_CREATED &&
           (entry.flags & REG_INDEX_FLAG_LINK);
}

boxindex_state index_registry_entry(const uint16_t *key, size_t len, uint64_t hash)
{
    if (!g_index.ready)
        return BOXINDEX_ABSENT;
    follow_retirement();
    return boxindex_lookup(&g_index.idx, hash, key, len, NULL);
}

NTSTATUS index_note_registry(reg_index_op op, const uint16_t *key, const uint16_t *path, size_t len, uint32_t flags)
{
    return index_note_registry_base(op, key, path, len, flags, NULL);
}

NTSTATUS index_note_registry_base(reg_index_op op, const uint16_t *key, const uint16_t *path, size_t len,
                                  uint32_t flags, const boxindex_base *base)
{
    if (!g_index.ready)
        return STATUS_SUCCESS;
    follow_retirement();
    boxindex_key k = {boxindex_key_hash(key, len), key, path, len};
    boxindex_info info = {flags, {0}};
    if (base) {
        info.flags |= BOXINDEX_FLAG_HAS_BASE;
        info.base = *base;
    }
    NTSTATUS st;
    switch (op) {
    case REG_INDEX_COPY_UP:
        st = write_key(BROKERMSG_INDEX_COPY_UP, &k, &info);
        if (st != STATUS_OBJECT_PATH_NOT_FOUND)
            return st;
        info = (boxindex_info){flags, {0}};   /* below a deleted key: made anew, no base */
        return write_key(BROKERMSG_INDEX_CREATE, &k, &info);
    case REG_INDEX_CREATE:
        return write_key(BROKERMSG_INDEX_CREATE, &k, &info);
    case REG_INDEX_DELETE:
        st = write_key(BROKERMSG_INDEX_DELETE, &k, &info);
        return st == STATUS_OBJECT_PATH_NOT_FOUND ? STATUS_SUCCESS : st;
    case REG_INDEX_UPDATE:
        return write_key(BROKERMSG_INDEX_UPDATE, &k, &info);
    }
    return STATUS_INVALID_PARAMETER;
}

NTSTATUS index_note_copy_up(const ntpath *path, uint16_t *key_buf, size_t cap, BOOL directory,
                            const boxindex_base *base)
{
    boxindex_info info = {directory ? BOXINDEX_FLAG_DIRECTORY : 0, {0}};
    if (base) {
        info.flags |= BOXINDEX_FLAG_HAS_BASE;
        info.base = *base;
    }
    NTSTATUS st = write_entry(BROKERMSG_INDEX_COPY_UP, path, key_buf, cap, &info);
    /* Deleted before: re-created over the tombstone. */
    return st == STATUS_OBJECT_PATH_NOT_FOUND ? write_entry(BROKERMSG_INDEX_CREATE, path, key_buf, cap, &info) : st;
}

NTSTATUS index_note_create(const ntpath *path, uint16_t *key_buf, size_t cap, BOOL directory)
{
    boxindex_info info = {directory ? BOXINDEX_FLAG_DIRECTORY : 0, {0}};
    return write_entry(BROKERMSG_INDEX_CREATE, path, key_buf, cap, &info);
}

NTSTATUS index_note_delete(const ntpath *path, uint16_t *key_buf, size_t cap, BOOL directory)
{
    /* A tombstone hides a host path; where the host has nothing and the
     * index knows nothing (a file made below a folder made in the box),
     * there is nothing to record. */
    boxindex_key key;
    boxindex_entry entry;
    if (g_index.ready && path_attributes(path->path, path->len) == INVALID_FILE_ATTRIBUTES &&
        make_key(path, key_buf, cap, &key) &&
        boxindex_lookup(&g_index.idx, key.hash, key.key, key.len, &entry) == BOXINDEX_ABSENT)
        return STATUS_SUCCESS;
    boxindex_info info = {directory ? BOXINDEX_FLAG_DIRECTORY : 0, {0}};
    NTSTATUS st = write_entry(BROKERMSG_INDEX_DELETE, path, key_buf, cap, &info);
    return st == STATUS_OBJECT_PATH_NOT_FOUND ? STATUS_SUCCESS : st;   /* deleted already */
}

NTSTATUS index_note_rename(const ntpath *from, const ntpath *to, uint16_t *key_buf, size_t cap, BOOL directory)
{
    if (!g_index.ready)
        return STATUS_SUCCESS;
    follow_retirement();
    uint16_t *to_buf = HeapAlloc(GetProcessHeap(), 0, cap * sizeof(uint16_t));
    if (!to_buf)
        return STATUS_NO_MEMORY;
    boxindex_key from_key, to_key;
    NTSTATUS status = STATUS_OBJECT_NAME_INVALID;
    if (make_key(from, key_buf, cap, &from_key) && make_key(to, to_buf, cap, &to_key)) {
        from_key.path = from->stream_len ? NULL : from->path;
        to_key.path = to->stream_len ? NULL : to->path;
        boxindex_info info = {directory ? BOXINDEX_FLAG_DIRECTORY : 0, {0}};
        fvm_status st = broker_write(BROKERMSG_INDEX_RENAME, &from_key, &info, &to_key);
        follow_retirement();
        status = st == FVM_OK || st == FVM_E_EXISTS ? STATUS_SUCCESS
                 : st == FVM_E_NOTFOUND            ? STATUS_OBJECT_PATH_NOT_FOUND
                 : st == FVM_E_RANGE               ? STATUS_DISK_FULL
                                                   : STATUS_INTERNAL_ERROR;
    }
    HeapFree(GetProcessHeap(), 0, to_buf);
    return status;
}

boxindex_state index_entry_state(const ntpath *path, uint16_t *key_buf, size_t cap)
{
    if (!g_index.ready)
        return BOXINDEX_ABSENT;
    follow_retirement();
    boxindex_key key;
    if (!make_key(path, key_buf, cap, &key))
        return BOXINDEX_ABSENT;
    boxindex_entry entry;
    return boxindex_lookup(&g_index.idx, key.hash, key.key, key.len, &entry);
}

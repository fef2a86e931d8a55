/* file_index.c - the box index as the runtime uses it (core/boxindex.c).
 *
 * The index records what the box did to host paths: copied up, created,
 * deleted (tombstones), renamed. Every process of the box maps the same file,
 * <box>\index-N.fvm, so a lookup is a few probes in shared memory and no
 * system call: an untouched host path costs nothing extra. Writers take a
 * named mutex; if its holder died (WAIT_ABANDONED) the library repairs the
 * half-done write. When the index is full it is rebuilt into index-(N+1).fvm,
 * twice as large, and the old one is marked retired: every process switches
 * on its next lookup. The index is created by the first boxed process that
 * starts, so a box that never ran weighs only its box.ini.
 *
 * Decisions (see index_check): a path is hidden when it or a folder above it
 * is a tombstone or was renamed away; it is box-only when a folder above it
 * was created in the box over a deleted host folder (OPAQUE); it is in the
 * box when its own entry is live; otherwise the host decides. */
#include "runtime/file.h"

#include "core/boxindex.h"

#define INDEX_FIRST_ENTRIES 256
#define INDEX_FIRST_ARENA   (64 * 1024)

typedef struct runtime_index {
    boxindex idx;
    HANDLE file, mapping;
    void *view;
    unsigned number;          /* N of index-N.fvm */
    BOOL ready;
} runtime_index;

static runtime_index g_index;
static HANDLE g_index_mutex;
static SRWLOCK g_index_switch = SRWLOCK_INIT;   /* guards g_index while it is swapped */

static int index_lock(void *ctx)
{
    DWORD w = WaitForSingleObject(g_index_mutex, INFINITE);
    return w == WAIT_OBJECT_0 || w == WAIT_ABANDONED ? 0 : -1;
}

static void index_unlock(void *ctx)
{
    ReleaseMutex(g_index_mutex);
}

static const boxindex_lock g_lock = {index_lock, index_unlock, NULL};

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
    if (ri->file)
        CloseHandle(ri->file);
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

static void delete_own_file(const wchar_t *win32_path)
{
    HANDLE h = open_own_file(win32_path, FILE_OPEN, DELETE, FILE_DELETE_ON_CLOSE);
    if (h)
        NtClose(h);
}

/* Maps index-N.fvm; creates and lays it out when create_size is non-zero
 * and it does not exist. */
static NTSTATUS map_index(unsigned number, size_t create_size, uint32_t create_entries, runtime_index *out)
{
    wchar_t name[FVM_PATH_MAX];
    index_file_name(number, name);
    memset(out, 0, sizeof *out);
    BOOL created = FALSE;
    out->file = open_own_file(name, FILE_OPEN, GENERIC_READ | GENERIC_WRITE, 0);
    if (!out->file && create_size) {
        out->file = open_own_file(name, FILE_CREATE, GENERIC_READ | GENERIC_WRITE, 0);
        created = out->file != NULL;
    }
    if (!out->file)
        return STATUS_OBJECT_NAME_NOT_FOUND;
    LARGE_INTEGER size;
    if (created) {
        size.QuadPart = (LONGLONG)create_size;
    } else if (!GetFileSizeEx(out->file, &size) || size.QuadPart <= 0) {
        unmap(out);
        return STATUS_FILE_CORRUPT_ERROR;
    }
    out->mapping = CreateFileMappingW(out->file, NULL, PAGE_READWRITE, (DWORD)(size.QuadPart >> 32),
                                      (DWORD)size.QuadPart, NULL);
    out->view = out->mapping ? MapViewOfFile(out->mapping, FILE_MAP_WRITE, 0, 0, (SIZE_T)size.QuadPart) : NULL;
    if (!out->view) {
        unmap(out);
        return STATUS_NO_MEMORY;
    }
    fvm_error err;
    fvm_status st = created ? boxindex_init(&out->idx, out->view, (size_t)size.QuadPart, create_entries, &g_lock, &err)
                            : boxindex_open(&out->idx, out->view, (size_t)size.QuadPart, &g_lock, &err);
    if (st != FVM_OK) {
        fvm_report("file: box index %ls: %s", name, err.message);
        unmap(out);
        return STATUS_FILE_CORRUPT_ERROR;
    }
    out->number = number;
    out->ready = TRUE;
    return STATUS_SUCCESS;
}

/* The newest index file: the one after the last retired one. */
static NTSTATUS open_newest(unsigned from, runtime_index *out)
{
    for (unsigned n = from ? from : 1; n < from + 64; n++) {
        NTSTATUS st = map_index(n, 0, 0, out);
        if (st < 0)
            return st;
        if (!boxindex_is_retired(&out->idx))
            return STATUS_SUCCESS;
        unmap(out);
    }
    return STATUS_FILE_CORRUPT_ERROR;
}

/* A service of its own, started by dllmain.c before any virtualizer: the
 * file and registry virtualizers both read it from their first call. */
BOOL box_index_start(void)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_INDEX_LOCK, name, FVM_OBJ_NAME_MAX);
    g_index_mutex = CreateMutexW(NULL, FALSE, name);
    if (!g_index_mutex) {
        fvm_report("file: cannot create the box index lock (error %lu)", (unsigned long)GetLastError());
        return FALSE;
    }
    if (open_newest(1, &g_index) >= 0)
        return TRUE;
    /* First process of the box: create index-1.fvm, under the lock so two
     * first processes do not both lay it out. */
    index_lock(NULL);
    NTSTATUS st = open_newest(1, &g_index);
    if (st == STATUS_OBJECT_NAME_NOT_FOUND)
        st = map_index(1, boxindex_size_for(INDEX_FIRST_ENTRIES, INDEX_FIRST_ARENA), INDEX_FIRST_ENTRIES, &g_index);
    index_unlock(NULL);
    if (st < 0) {
        fvm_report("file: cannot open the box index (status 0x%08lx)", (unsigned long)st);
        return FALSE;
    }
    return TRUE;
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
            g_index = next;
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

/* Rebuilds the index into the next file, twice as large. With the lock. */
static NTSTATUS grow(void)
{
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    uint32_t entries = stats.max_entries * 2;
    size_t arena = (size_t)stats.arena_size * 2;
    runtime_index next;
    memset(&next, 0, sizeof next);
    wchar_t name[FVM_PATH_MAX];
    index_file_name(g_index.number + 1, name);
    delete_own_file(name);   /* a leftover of a grow that died before retiring the old one */
    NTSTATUS st = map_index(g_index.number + 1, boxindex_size_for(entries, arena), entries, &next);
    if (st < 0)
        return st;
    fvm_error err;
    boxindex rebuilt;
    if (boxindex_rebuild_into(&g_index.idx, next.view, boxindex_size_for(entries, arena), entries, &g_lock,
                              &rebuilt, &err) != FVM_OK) {
        fvm_report("file: cannot grow the box index: %s", err.message);
        unmap(&next);
        delete_own_file(name);
        return STATUS_DISK_FULL;
    }
    next.idx = rebuilt;
    AcquireSRWLockExclusive(&g_index_switch);
    g_index = next;
    ReleaseSRWLockExclusive(&g_index_switch);
    return STATUS_SUCCESS;
}

typedef fvm_status (*index_write_fn)(boxindex *, const boxindex_key *, const boxindex_info *, fvm_error *);

/* One write of key, growing the index when it is full and following a
 * retirement by another process. */
static NTSTATUS write_key(index_write_fn write, const boxindex_key *key, const boxindex_info *info)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        fvm_error err;
        fvm_status st = write(&g_index.idx, key, info, &err);
        switch (st) {
        case FVM_OK:
        case FVM_E_EXISTS:
            return STATUS_SUCCESS;
        case FVM_E_NOTFOUND:
            return STATUS_OBJECT_PATH_NOT_FOUND;
        case FVM_E_RANGE:
            index_lock(NULL);
            NTSTATUS grown = boxindex_is_retired(&g_index.idx) ? STATUS_SUCCESS : grow();
            index_unlock(NULL);
            if (grown < 0)
                return grown;
            follow_retirement();
            continue;
        default:
            if (boxindex_is_retired(&g_index.idx)) {
                follow_retirement();
                continue;
            }
            fvm_report("file: box index write failed: %s", err.message);
            return STATUS_INTERNAL_ERROR;
        }
    }
    return STATUS_INTERNAL_ERROR;
}

static NTSTATUS write_entry(index_write_fn write, const ntpath *path, uint16_t *key_buf, size_t cap,
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
        st = write_key(boxindex_copy_up, &k, &info);
        if (st != STATUS_OBJECT_PATH_NOT_FOUND)
            return st;
        info = (boxindex_info){flags, {0}};   /* below a deleted key: made anew, no base */
        return write_key(boxindex_create, &k, &info);
    case REG_INDEX_CREATE:
        return write_key(boxindex_create, &k, &info);
    case REG_INDEX_DELETE:
        st = write_key(boxindex_delete, &k, &info);
        return st == STATUS_OBJECT_PATH_NOT_FOUND ? STATUS_SUCCESS : st;
    case REG_INDEX_UPDATE:
        return write_key(boxindex_update, &k, &info);
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
    NTSTATUS st = write_entry(boxindex_copy_up, path, key_buf, cap, &info);
    /* Deleted before: re-created over the tombstone. */
    return st == STATUS_OBJECT_PATH_NOT_FOUND ? write_entry(boxindex_create, path, key_buf, cap, &info) : st;
}

NTSTATUS index_note_create(const ntpath *path, uint16_t *key_buf, size_t cap, BOOL directory)
{
    boxindex_info info = {directory ? BOXINDEX_FLAG_DIRECTORY : 0, {0}};
    return write_entry(boxindex_create, path, key_buf, cap, &info);
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
    NTSTATUS st = write_entry(boxindex_delete, path, key_buf, cap, &info);
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
        for (int attempt = 0; attempt < 4; attempt++) {
            fvm_error err;
            fvm_status st = boxindex_rename(&g_index.idx, &from_key, &to_key, &info, &info, &err);
            if (st == FVM_OK || st == FVM_E_EXISTS) {
                status = STATUS_SUCCESS;
                break;
            }
            if (st == FVM_E_RANGE) {
                index_lock(NULL);
                NTSTATUS grown = boxindex_is_retired(&g_index.idx) ? STATUS_SUCCESS : grow();
                index_unlock(NULL);
                follow_retirement();
                if (grown < 0) {
                    status = grown;
                    break;
                }
                continue;
            }
            /* Another process rebuilt the index meanwhile: writes to the
             * retired one fail; redo the rename in its successor. */
            if (st != FVM_E_NOTFOUND && boxindex_is_retired(&g_index.idx)) {
                follow_retirement();
                continue;
            }
            status = st == FVM_E_NOTFOUND ? STATUS_OBJECT_PATH_NOT_FOUND : STATUS_INTERNAL_ERROR;
            break;
        }
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

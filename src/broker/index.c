/* index.c - the box index's only writer inside a running box (issue 17.7).
 *
 * Boxed processes map <box>\index-N.fvm read-only (runtime/file_index.c)
 * and send every change - copy-up, create, tombstone, rename, update - as
 * one FVMIDX01 request on the control pipe (core/brokermsg.h). The broker
 * checks that the sender is a live process of the box's job (the pipe's
 * client pid, asked of the job), that the keys are canonical names of the
 * kinds the index holds (a drive or UNC path, or a registry key), that each
 * key and its original-case path agree, and that no key names FVM's own
 * storage; then it makes the change with core/boxindex.c under the index's
 * named mutex (the hasher and `fvm commit` take it too), growing the index
 * into index-(N+1).fvm when it is full, exactly as the runtime did before.
 * The index's guarantees are boxindex's: a write is one journaled
 * operation, readers never lock, a writer killed at any instruction is
 * repaired by the next one (WAIT_ABANDONED). Requests are handled one at a
 * time (g_lock): many processes of a box write in one order.
 *
 * The broker creates index-1.fvm at its start, before the box's first
 * process, so a boxed process never needs to create or write any index
 * file. */
#include "broker/broker.h"

#include <stdio.h>
#include <string.h>

#include "core/boxindex.h"

#define INDEX_FIRST_ENTRIES 256
#define INDEX_FIRST_ARENA   (64 * 1024)

typedef struct mapped_index {
    boxindex idx;
    HANDLE file, mapping;
    void *view;
    unsigned number;
} mapped_index;

static CRITICAL_SECTION g_lock;
static HANDLE g_mutex;
static mapped_index g_index;
static BOOL g_ready;
static wchar_t g_box_path[FVM_PATH_MAX];
static uint16_t g_storage_key[FVM_PATH_MAX + 8];   /* "\??\<FVM storage root>", upper-cased ASCII */
static size_t g_storage_len;

static int lock_index(void *ctx)
{
    DWORD w = WaitForSingleObject(g_mutex, INFINITE);
    return w == WAIT_OBJECT_0 || w == WAIT_ABANDONED ? 0 : -1;
}

static void unlock_index(void *ctx)
{
    ReleaseMutex(g_mutex);
}

static const boxindex_lock g_index_lock = {lock_index, unlock_index, NULL};

static void file_name(unsigned number, wchar_t *out)
{
    _snwprintf(out, FVM_PATH_MAX, L"%ls\\index-%u.fvm", g_box_path, number);
    out[FVM_PATH_MAX - 1] = 0;
}

static void unmap(mapped_index *m)
{
    if (m->view)
        UnmapViewOfFile(m->view);
    if (m->mapping)
        CloseHandle(m->mapping);
    if (m->file && m->file != INVALID_HANDLE_VALUE)
        CloseHandle(m->file);
    memset(m, 0, sizeof *m);
}

/* Maps index-N.fvm read-write; creates and lays it out when create_size is
 * not zero and the file does not exist. */
static BOOL map_index(unsigned number, size_t create_size, uint32_t create_entries, mapped_index *out)
{
    wchar_t name[FVM_PATH_MAX];
    file_name(number, name);
    memset(out, 0, sizeof *out);
    BOOL created = FALSE;
    out->file = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                            NULL, OPEN_EXISTING, 0, NULL);
    if (out->file == INVALID_HANDLE_VALUE && create_size) {
        out->file = CreateFileW(name, GENERIC_READ | GENERIC_WRITE,
                                FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, CREATE_NEW, 0, NULL);
        created = out->file != INVALID_HANDLE_VALUE;
    }
    if (out->file == INVALID_HANDLE_VALUE) {
        out->file = NULL;
        return FALSE;
    }
    LARGE_INTEGER size;
    if (created)
        size.QuadPart = (LONGLONG)create_size;
    else if (!GetFileSizeEx(out->file, &size) || size.QuadPart <= 0) {
        unmap(out);
        return FALSE;
    }
    out->mapping = CreateFileMappingW(out->file, NULL, PAGE_READWRITE, (DWORD)(size.QuadPart >> 32),
                                      (DWORD)size.QuadPart, NULL);
    out->view = out->mapping ? MapViewOfFile(out->mapping, FILE_MAP_WRITE, 0, 0, (SIZE_T)size.QuadPart) : NULL;
    fvm_error err;
    if (!out->view ||
        (created ? boxindex_init(&out->idx, out->view, (size_t)size.QuadPart, create_entries, &g_index_lock, &err)
                 : boxindex_open(&out->idx, out->view, (size_t)size.QuadPart, &g_index_lock, &err)) != FVM_OK) {
        unmap(out);
        return FALSE;
    }
    out->number = number;
    return TRUE;
}

/* The newest index: the one after the last retired one. */
static BOOL open_newest(unsigned from, mapped_index *out)
{
    for (unsigned n = from ? from : 1; n < from + 64; n++) {
        if (!map_index(n, 0, 0, out))
            return FALSE;
        if (!boxindex_is_retired(&out->idx))
            return TRUE;
        unmap(out);
    }
    return FALSE;
}

BOOL broker_index_start(const wchar_t *box_path)
{
    InitializeCriticalSection(&g_lock);
    fvm_wcscpy(g_box_path, FVM_PATH_MAX, box_path);
    /* FVM's storage: the folder that holds the boxes. */
    size_t len = wcslen(box_path);
    while (len > 0 && box_path[len - 1] != L'\\')
        len--;
    if (len > 0)
        len--;
    static const uint16_t prefix[4] = {'\\', '?', '?', '\\'};
    memcpy(g_storage_key, prefix, sizeof prefix);
    g_storage_len = 4;
    for (size_t i = 0; i < len && g_storage_len < FVM_PATH_MAX; i++)
        g_storage_key[g_storage_len++] = (uint16_t)towupper(box_path[i]);
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_INDEX_LOCK, name, FVM_OBJ_NAME_MAX);
    g_mutex = CreateMutexW(NULL, FALSE, name);
    if (!g_mutex)
        return FALSE;
    lock_index(NULL);
    g_ready = open_newest(1, &g_index) ||
              map_index(1, boxindex_size_for(INDEX_FIRST_ENTRIES, INDEX_FIRST_ARENA), INDEX_FIRST_ENTRIES, &g_index);
    unlock_index(NULL);
    return g_ready;
}

/* Rebuilds the index into the next file, twice as large. With g_lock and the mutex. */
static fvm_status grow(void)
{
    boxindex_stats stats;
    boxindex_stats_get(&g_index.idx, &stats);
    uint32_t entries = stats.max_entries * 2;
    size_t arena = (size_t)stats.arena_size * 2;
    wchar_t name[FVM_PATH_MAX];
    file_name(g_index.number + 1, name);
    DeleteFileW(name);   /* a leftover of a grow that died before retiring the old one */
    mapped_index next;
    if (!map_index(g_index.number + 1, boxindex_size_for(entries, arena), entries, &next))
        return FVM_E_IO;
    boxindex rebuilt;
    fvm_error err;
    if (boxindex_rebuild_into(&g_index.idx, next.view, boxindex_size_for(entries, arena), entries, &g_index_lock,
                              &rebuilt, &err) != FVM_OK) {
        unmap(&next);
        DeleteFileW(name);
        return FVM_E_RANGE;
    }
    next.idx = rebuilt;
    /* The retired index stays mapped by the boxed processes; the broker lets
     * its own view go. */
    unmap(&g_index);
    g_index = next;
    return FVM_OK;
}

/* Follows a retirement made by another writer (fvm commit, an older runtime). */
static void follow_retirement(void)
{
    if (!boxindex_is_retired(&g_index.idx))
        return;
    mapped_index next;
    if (open_newest(g_index.number + 1, &next)) {
        unmap(&g_index);
        g_index = next;
    }
}

/* A key the index may hold, and its path (when sent) the same name in its
 * own case: "\??\X:\..." or "\??\UNC\...", or "\REGISTRY\...", no NUL, not
 * FVM's own storage. The runtime's upcase table is the system's: only
 * ASCII is compared. */
static BOOL key_acceptable(const uint16_t *key, const uint16_t *path, size_t len)
{
    static const uint16_t reg[10] = {'\\', 'R', 'E', 'G', 'I', 'S', 'T', 'R', 'Y', '\\'};
    static const uint16_t unc[8] = {'\\', '?', '?', '\\', 'U', 'N', 'C', '\\'};
    BOOL registry = len > 10 && !memcmp(key, reg, sizeof reg);
    BOOL drive = len >= 7 && key[0] == '\\' && key[1] == '?' && key[2] == '?' && key[3] == '\\' && key[4] >= 'A' &&
                 key[4] <= 'Z' && key[5] == ':' && key[6] == '\\';
    BOOL is_unc = len > 8 && !memcmp(key, unc, sizeof unc);
    if (!registry && !drive && !is_unc)
        return FALSE;
    for (size_t i = 0; i < len; i++) {
        if (!key[i] || (key[i] >= 'a' && key[i] <= 'z'))
            return FALSE;
        if (path) {
            uint16_t p = path[i] >= 'a' && path[i] <= 'z' ? (uint16_t)(path[i] - 32) : path[i];
            if (!path[i] || (p < 0x80 && p != key[i]))
                return FALSE;
        }
    }
    if (!registry && len >= g_storage_len && !memcmp(key, g_storage_key, g_storage_len * 2) &&
        (len == g_storage_len || key[g_storage_len] == '\\'))
        return FALSE;
    return TRUE;
}

static fvm_status apply(const brokermsg_index *m)
{
    boxindex_key key = {boxindex_key_hash(m->key, m->len), m->key, m->path, m->len};
    boxindex_info info = {m->flags, {m->base_size, m->base_mtime, {0}}};
    memcpy(info.base.content_hash, m->base_hash, 32);
    fvm_error err;
    switch (m->op) {
    case BROKERMSG_INDEX_COPY_UP:
        return boxindex_copy_up(&g_index.idx, &key, &info, &err);
    case BROKERMSG_INDEX_CREATE:
        return boxindex_create(&g_index.idx, &key, &info, &err);
    case BROKERMSG_INDEX_DELETE:
        return boxindex_delete(&g_index.idx, &key, &info, &err);
    case BROKERMSG_INDEX_UPDATE:
        return boxindex_update(&g_index.idx, &key, &info, &err);
    case BROKERMSG_INDEX_RENAME: {
        boxindex_key to = {boxindex_key_hash(m->to_key, m->to_len), m->to_key, m->to_path, m->to_len};
        return boxindex_rename(&g_index.idx, &key, &to, &info, &info, &err);
    }
    default:
        return FVM_E_INVALID;
    }
}

uint32_t broker_index_request(uint32_t pid, const uint8_t *buf, size_t len)
{
    brokermsg_index m;
    fvm_error err;
    if (!g_ready || brokermsg_index_decode(buf, len, &m, &err) != FVM_OK)
        return FVM_E_INVALID;
    /* Only a live process of this box's job changes this box's index. */
    if (!pid || !broker_is_member(pid))
        return FVM_E_INVALID;
    if (!key_acceptable(m.key, m.path, m.len) || (m.to_len && !key_acceptable(m.to_key, m.to_path, m.to_len)))
        return FVM_E_INVALID;
    EnterCriticalSection(&g_lock);
    fvm_status st = FVM_E_INVALID;
    for (int attempt = 0; attempt < 4; attempt++) {
        follow_retirement();
        st = apply(&m);
        if (st != FVM_E_RANGE)
            break;
        lock_index(NULL);
        fvm_status grown = boxindex_is_retired(&g_index.idx) ? FVM_OK : grow();
        unlock_index(NULL);
        if (grown != FVM_OK) {
            st = grown;
            break;
        }
    }
    LeaveCriticalSection(&g_lock);
    return (uint32_t)st;
}

/* hasher.c - fills in the content hash of copied-up files' host base version.
 *
 * A copy-up records the host file's size and last-write time in the box
 * index at once, but not its SHA-256: hashing at copy-up would cost more than
 * the copy (about 300 MB/s against several GB/s), on the program's time. So
 * the broker, while the box runs and again before it exits, hashes the HOST
 * file of every COPIED entry without a hash, provided the host file's size
 * and last-write time still equal the recorded base: then its bytes are the
 * base's bytes. If the host changed first, the hash stays unknown and size
 * and time already tell the change. Updates go through the index's lock like
 * any writer's. The same read gives the base's block fingerprints for fvm
 * export (common/blockprint.h), so a box's first export reads only its
 * copies, not their bases. */
#include "broker/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winternl.h>

#include "common/blockprint.h"
#include "common/boxcfg.h"
#include "core/boxindex.h"
#include "core/sha256.h"

static HANDLE g_index_mutex;

static int lock_index(void *ctx)
{
    DWORD w = WaitForSingleObject(g_index_mutex, INFINITE);
    return w == WAIT_OBJECT_0 || w == WAIT_ABANDONED ? 0 : -1;
}

static void unlock_index(void *ctx)
{
    ReleaseMutex(g_index_mutex);
}

static const boxindex_lock g_lock = {lock_index, unlock_index, NULL};

typedef struct pending {
    uint16_t *key, *path;
    size_t len;
    uint64_t hash;
    uint32_t flags;
    boxindex_base base;
} pending;

typedef struct pending_list {
    pending *items;
    size_t count, cap;
} pending_list;

static int collect(void *ctx, const boxindex_entry *e)
{
    pending_list *list = ctx;
    static const uint8_t zero[32];
    if (e->state != BOXINDEX_COPIED || !(e->flags & BOXINDEX_FLAG_HAS_BASE) ||
        (e->flags & BOXINDEX_FLAG_DIRECTORY) || memcmp(e->base.content_hash, zero, 32) != 0)
        return 0;
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 32;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
    }
    pending *p = &list->items[list->count++];
    p->key = malloc(e->len * 2);
    p->path = malloc((e->len + 1) * 2);
    memcpy(p->key, e->key, e->len * 2);
    memcpy(p->path, e->path, e->len * 2);
    p->path[e->len] = 0;
    p->len = e->len;
    p->hash = e->key_hash;
    p->flags = e->flags;
    p->base = e->base;
    return 0;
}

/* SHA-256 of the host file at nt_path if it still has the base's size and
 * last-write time; and, into *blocks (malloc'd, NULL if not made), the
 * base's block fingerprints for fvm export (common/blockprint.h) when the
 * file is large enough to travel as a delta: the bytes are being read
 * anyway, and an export that finds them reads the box copy only. */
static BOOL hash_if_unchanged(const uint16_t *nt_path, size_t len, const boxindex_base *base, uint8_t out[32],
                             uint64_t **blocks)
{
    *blocks = NULL;
    UNICODE_STRING us = {(USHORT)(len * 2), (USHORT)(len * 2), (PWSTR)nt_path};
    OBJECT_ATTRIBUTES oa = {.Length = sizeof oa, .ObjectName = &us, .Attributes = OBJ_CASE_INSENSITIVE};
    IO_STATUS_BLOCK io;
    HANDLE file;
    if (NtOpenFile(&file, FILE_READ_DATA | FILE_READ_ATTRIBUTES | SYNCHRONIZE, &oa, &io,
                   FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                   FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE) < 0)
        return FALSE;
    BY_HANDLE_FILE_INFORMATION info;
    BOOL same = GetFileInformationByHandle(file, &info) &&
                (((uint64_t)info.nFileSizeHigh << 32) | info.nFileSizeLow) == base->size &&
                (int64_t)(((uint64_t)info.ftLastWriteTime.dwHighDateTime << 32) | info.ftLastWriteTime.dwLowDateTime) ==
                    base->mtime;
    if (same) {
        sha256_ctx ctx;
        sha256_init(&ctx);
        enum { CHUNK = 1 << 20 };   /* a multiple of the block: blocks never straddle two reads */
        uint8_t *buf = malloc(CHUNK);
        size_t count = (size_t)((base->size + FVM_DELTA_BLOCK - 1) / FVM_DELTA_BLOCK);
        uint64_t *prints = base->size >= FVM_DELTA_MIN_SIZE && count <= 0x7ffffff0u / 16 ? malloc(count * 16 + 1) : NULL;
        uint64_t at = 0;
        DWORD got;
        while (buf && ReadFile(file, buf, CHUNK, &got, NULL) && got) {
            sha256_update(&ctx, buf, got);
            if (prints && (at % FVM_DELTA_BLOCK || at + got > base->size)) {
                free(prints);   /* a short read mid-file: no fingerprints this time */
                prints = NULL;
            }
            for (DWORD i = 0; prints && i < got; i += FVM_DELTA_BLOCK)
                fvm_block_fingerprint(buf + i, got - i < FVM_DELTA_BLOCK ? got - i : FVM_DELTA_BLOCK,
                                      prints + 2 * ((at + i) / FVM_DELTA_BLOCK));
            at += got;
        }
        free(buf);
        sha256_final(&ctx, out);
        if (prints && at == base->size)
            *blocks = prints;
        else
            free(prints);
        /* Changed while we read: the hash would not be the base's. */
        BY_HANDLE_FILE_INFORMATION after;
        same = buf && GetFileInformationByHandle(file, &after) &&
               after.ftLastWriteTime.dwLowDateTime == info.ftLastWriteTime.dwLowDateTime &&
               after.ftLastWriteTime.dwHighDateTime == info.ftLastWriteTime.dwHighDateTime;
    }
    CloseHandle(file);
    if (!same) {
        free(*blocks);
        *blocks = NULL;
    }
    return same;
}

void broker_hash_bases(const wchar_t *box_path)
{
    if (!g_index_mutex) {
        wchar_t name[FVM_OBJ_NAME_MAX];
        fvm_box_object_name(box_path, FVM_OBJ_INDEX_LOCK, name, FVM_OBJ_NAME_MAX);
        g_index_mutex = CreateMutexW(NULL, FALSE, name);
        if (!g_index_mutex)
            return;
    }
    /* The newest index file (numbers grow as the index is rebuilt larger). */
    for (unsigned n = 64; n >= 1; n--) {
        wchar_t file_name[FVM_PATH_MAX];
        _snwprintf(file_name, FVM_PATH_MAX, L"%ls\\index-%u.fvm", box_path, n);
        HANDLE file = CreateFileW(file_name, GENERIC_READ | GENERIC_WRITE,
                                  FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING, 0, NULL);
        if (file == INVALID_HANDLE_VALUE)
            continue;
        LARGE_INTEGER size;
        HANDLE mapping = GetFileSizeEx(file, &size) ? CreateFileMappingW(file, NULL, PAGE_READWRITE, 0, 0, NULL) : NULL;
        void *view = mapping ? MapViewOfFile(mapping, FILE_MAP_WRITE, 0, 0, 0) : NULL;
        boxindex idx;
        fvm_error err;
        if (view && boxindex_open(&idx, view, (size_t)size.QuadPart, &g_lock, &err) == FVM_OK &&
            !boxindex_is_retired(&idx)) {
            pending_list list = {0};
            boxindex_foreach(&idx, collect, &list);
            for (size_t i = 0; i < list.count; i++) {
                pending *p = &list.items[i];
                boxindex_info info = {p->flags, p->base};
                uint64_t *blocks;
                if (hash_if_unchanged(p->path, p->len, &p->base, info.base.content_hash, &blocks)) {
                    if (blocks)
                        fvm_blocks_save(box_path, info.base.content_hash, blocks,
                                        (size_t)((p->base.size + FVM_DELTA_BLOCK - 1) / FVM_DELTA_BLOCK));
                    boxindex_key key = {p->hash, p->key, p->path, p->len};
                    boxindex_update(&idx, &key, &info, &err);
                }
                free(blocks);
                free(p->key);
                free(p->path);
            }
            free(list.items);
        }
        if (view)
            UnmapViewOfFile(view);
        if (mapping)
            CloseHandle(mapping);
        CloseHandle(file);
        break;
    }
}

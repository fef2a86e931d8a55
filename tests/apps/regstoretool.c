/* regstoretool.c - box registry storage helper of the e2e tests, run
 * unboxed: it does what reg.exe cannot (a value of any type, such as FVM's
 * tombstone type, under an absolute NT key path; names with any character),
 * shows a box's live tree as common/regstore sees it, and records key states
 * in a box's index as the registry virtualizer would.
 *
 *   regstoretool tree BOXPATH              prints FVM.<h>, the box's tree name
 *   regstoretool set NTKEY NAME TYPE [HEX] creates NTKEY and sets a value
 *                                          (TYPE in hex, data as hex bytes)
 *   regstoretool dump NTKEY                prints the tree below NTKEY as text
 *   regstoretool load NTKEY FILE           creates NTKEY and loads registry
 *                                          text (core/regfile.h) into it
 *   regstoretool exists NTKEY              exit 0 if the key exists, 1 if not
 *   regstoretool index BOXPATH OP NTKEY    records a key state in index-1.fvm
 *                                          of a box that has run: OP is delete
 *                                          (TOMBSTONE), create (CREATED) or
 *                                          recreate (delete, create: OPAQUE) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "common/regstore.h"
#include "core/boxindex.h"
#include "core/ntpath.h"

static HANDLE g_mutex;

static int lock_index(void *ctx)
{
    DWORD w = WaitForSingleObject(g_mutex, 10000);
    return w == WAIT_OBJECT_0 || w == WAIT_ABANDONED ? 0 : -1;
}

static void unlock_index(void *ctx)
{
    ReleaseMutex(g_mutex);
}

static int index_key(const wchar_t *box_path, const wchar_t *op, const wchar_t *nt_key)
{
    wchar_t file[FVM_PATH_MAX], lock_name[FVM_OBJ_NAME_MAX];
    _snwprintf(file, FVM_PATH_MAX, L"%ls\\index-1.fvm", box_path);
    fvm_box_object_name(box_path, FVM_OBJ_INDEX_LOCK, lock_name, FVM_OBJ_NAME_MAX);
    g_mutex = CreateMutexW(NULL, FALSE, lock_name);
    HANDLE h = CreateFileW(file, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, 0, NULL);
    LARGE_INTEGER size;
    if (h == INVALID_HANDLE_VALUE || !GetFileSizeEx(h, &size)) {
        fprintf(stderr, "regstoretool: cannot open %ls: %lu\n", file, (unsigned long)GetLastError());
        return 2;
    }
    HANDLE mapping = CreateFileMappingW(h, NULL, PAGE_READWRITE, 0, 0, NULL);
    void *view = mapping ? MapViewOfFile(mapping, FILE_MAP_WRITE, 0, 0, 0) : NULL;
    static const boxindex_lock lock = {lock_index, unlock_index, NULL};
    boxindex idx;
    fvm_error err;
    if (!view || boxindex_open(&idx, view, (size_t)size.QuadPart, &lock, &err) != FVM_OK) {
        fprintf(stderr, "regstoretool: cannot map the index\n");
        return 2;
    }
    size_t len = wcslen(nt_key);
    uint16_t *key = malloc((len + 1) * sizeof *key);
    for (size_t i = 0; i < len; i++)
        key[i] = ntpath_upcase(NULL, nt_key[i]);
    boxindex_key k = {boxindex_key_hash(key, len), key, (const uint16_t *)nt_key, len};
    boxindex_info info = {BOXINDEX_FLAG_DIRECTORY};
    fvm_status st = FVM_E_INVALID;
    if (!wcscmp(op, L"delete") || !wcscmp(op, L"recreate"))
        st = boxindex_delete(&idx, &k, &info, &err);
    if (!wcscmp(op, L"create") || (!wcscmp(op, L"recreate") && st == FVM_OK))
        st = boxindex_create(&idx, &k, &info, &err);
    FlushViewOfFile(view, 0);
    if (st != FVM_OK) {
        fprintf(stderr, "regstoretool: index %ls: %s\n", op, err.message);
        return 2;
    }
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc == 3 && !wcscmp(argv[1], L"tree")) {
        wchar_t name[REGSTORE_TREE_NAME_CHARS];
        regstore_tree_name(argv[2], name);
        printf("%ls\n", name);
        return 0;
    }
    if (argc == 5 && !wcscmp(argv[1], L"index"))
        return index_key(argv[2], argv[3], argv[4]);
    if (argc == 3 && !wcscmp(argv[1], L"exists")) {
        HANDLE key;
        NTSTATUS st = regstore_open_key(NULL, argv[2], wcslen(argv[2]), KEY_READ, &key);
        if (st >= 0)
            CloseHandle(key);
        return st >= 0 ? 0 : 1;
    }
    if ((argc == 5 || argc == 6) && !wcscmp(argv[1], L"set")) {
        HANDLE key;
        NTSTATUS st = regstore_create_key(NULL, argv[2], wcslen(argv[2]), &key, NULL);
        if (st < 0) {
            fprintf(stderr, "regstoretool: cannot create %ls: 0x%08lx\n", argv[2], (unsigned long)st);
            return 2;
        }
        uint8_t data[1024];
        size_t size = 0;
        for (const wchar_t *h = argc == 6 ? argv[5] : L""; h[0] && h[1] && size < sizeof data; h += 2) {
            wchar_t pair[3] = {h[0], h[1], 0};
            data[size++] = (uint8_t)wcstoul(pair, NULL, 16);
        }
        /* The text form of the value goes through the same loader the
         * broker uses, so any type and name reach the registry as given. */
        regfile_buf text = {0};
        fvm_error err;
        regfile_put_header(&text, &err);
        regfile_put_key(&text, NULL, 0, &err);
        regfile_put_value(&text, (const uint16_t *)argv[3], wcslen(argv[3]), (uint32_t)wcstoul(argv[4], NULL, 16),
                          data, size, &err);
        regfile_put_end(&text, &err);
        fvm_status fs = regstore_load(key, text.data, text.len, &err);
        CloseHandle(key);
        if (fs != FVM_OK) {
            fprintf(stderr, "regstoretool: %s\n", err.message);
            return 2;
        }
        return 0;
    }
    if (argc == 4 && !wcscmp(argv[1], L"load")) {
        char *text;
        size_t len;
        fvm_error err;
        HANDLE key;
        if (regstore_read_file(argv[3], &text, &len, &err) != FVM_OK) {
            fprintf(stderr, "regstoretool: %s\n", err.message);
            return 2;
        }
        NTSTATUS st = regstore_create_key(NULL, argv[2], wcslen(argv[2]), &key, NULL);
        if (st < 0) {
            fprintf(stderr, "regstoretool: cannot create %ls: 0x%08lx\n", argv[2], (unsigned long)st);
            return 2;
        }
        fvm_status fs = regstore_load(key, text, len, &err);
        CloseHandle(key);
        free(text);
        if (fs != FVM_OK) {
            fprintf(stderr, "regstoretool: %s\n", err.message);
            return 2;
        }
        return 0;
    }
    if (argc == 3 && !wcscmp(argv[1], L"dump")) {
        HANDLE key;
        NTSTATUS st = regstore_open_key(NULL, argv[2], wcslen(argv[2]), KEY_READ, &key);
        if (st < 0) {
            fprintf(stderr, "regstoretool: cannot open %ls: 0x%08lx\n", argv[2], (unsigned long)st);
            return 1;
        }
        regfile_buf text = {0};
        fvm_error err;
        BOOL empty;
        if (regstore_dump(key, &text, &empty, &err) != FVM_OK) {
            fprintf(stderr, "regstoretool: %s\n", err.message);
            return 2;
        }
        fwrite(text.data, 1, text.len, stdout);
        return 0;
    }
    fprintf(stderr, "usage: regstoretool tree BOXPATH | set NTKEY NAME TYPE [HEX] | dump NTKEY | load NTKEY FILE | exists NTKEY | index BOXPATH OP NTKEY\n");
    return 2;
}

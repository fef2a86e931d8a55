/* regstore.c - the box registry's live tree and its file (see regstore.h).
 *
 * Everything goes through the NT registry calls with counted names, so a
 * dump followed by a load gives back every key and value exactly (the Win32
 * calls stop names at the first NUL). A dump walks the tree depth-first and
 * writes one key line per key (an empty key too) followed by its values; a
 * load creates what each line names. The file is replaced by a rename, never
 * rewritten in place. */
#include "common/regstore.h"

static void append_hex64(wchar_t *out, uint64_t v)
{
    for (int i = 15; i >= 0; i--) {
        out[i] = L"0123456789abcdef"[v & 15];
        v >>= 4;
    }
    out[16] = 0;
}

void regstore_tree_name(const wchar_t *box_path, wchar_t out[REGSTORE_TREE_NAME_CHARS])
{
    fvm_wcscpy(out, REGSTORE_TREE_NAME_CHARS, L"FVM.");
    append_hex64(out + 4, fvm_hash_path(box_path));
}

void regstore_tree_path(const wchar_t *box_path, wchar_t out[REGSTORE_TREE_PATH_CHARS])
{
    wchar_t name[REGSTORE_TREE_NAME_CHARS];
    regstore_tree_name(box_path, name);
    fvm_wcscpy(out, REGSTORE_TREE_PATH_CHARS, L"\\REGISTRY\\USER\\");
    fvm_wcscat(out, REGSTORE_TREE_PATH_CHARS, name);
}

#ifndef FVM_RUNTIME

#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ---- the NT registry calls (not declared by mingw's headers) ------------- */

typedef struct key_basic_info {
    LARGE_INTEGER last_write;
    ULONG title_index;
    ULONG name_length;   /* bytes */
    WCHAR name[1];
} key_basic_info;

typedef struct key_value_full_info {
    ULONG title_index;
    ULONG type;
    ULONG data_offset;
    ULONG data_length;
    ULONG name_length;   /* bytes */
    WCHAR name[1];
} key_value_full_info;

typedef struct key_value_partial_info {
    ULONG title_index;
    ULONG type;
    ULONG data_length;
    UCHAR data[1];
} key_value_partial_info;

enum { KEY_BASIC_INFORMATION_CLASS = 0, KEY_VALUE_FULL_INFORMATION_CLASS = 1,
       KEY_VALUE_PARTIAL_INFORMATION_CLASS = 2 };

NTSTATUS NTAPI NtOpenKey(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtCreateKey(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG, PUNICODE_STRING, ULONG, PULONG);
NTSTATUS NTAPI NtEnumerateKey(HANDLE, ULONG, ULONG, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtEnumerateValueKey(HANDLE, ULONG, ULONG, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtQueryValueKey(HANDLE, PUNICODE_STRING, ULONG, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtSetValueKey(HANDLE, PUNICODE_STRING, ULONG, ULONG, PVOID, ULONG);
NTSTATUS NTAPI NtDeleteKey(HANDLE);
NTSTATUS NTAPI NtClose(HANDLE);

#ifndef REG_CREATED_NEW_KEY
#define REG_CREATED_NEW_KEY 1
#endif

void regstore_file_path(const wchar_t *box_path, wchar_t *out, size_t cap)
{
    fvm_wcscpy(out, cap, box_path);
    fvm_wcscat(out, cap, L"\\registry.dat");
}

/* A counted name as a UNICODE_STRING; FALSE when it is too long for one. */
static BOOL counted(UNICODE_STRING *us, const wchar_t *name, size_t len)
{
    if (len > 0x7FFF)
        return FALSE;
    us->Buffer = (PWSTR)name;
    us->Length = us->MaximumLength = (USHORT)(len * sizeof(wchar_t));
    return TRUE;
}

/* ---- keys --------------------------------------------------------------- */

NTSTATUS regstore_open_key(HANDLE root, const wchar_t *name, size_t len, ACCESS_MASK access, HANDLE *key)
{
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    *key = NULL;
    if (!counted(&us, name, len))
        return STATUS_NAME_TOO_LONG;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
    return NtOpenKey(key, access, &oa);
}

static NTSTATUS create_one(HANDLE root, const wchar_t *name, size_t len, HANDLE *key, BOOL *created)
{
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    ULONG disposition = 0;
    if (!counted(&us, name, len))
        return STATUS_NAME_TOO_LONG;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
    NTSTATUS st = NtCreateKey(key, KEY_ALL_ACCESS, &oa, 0, NULL, 0, &disposition);
    if (st >= 0 && created)
        *created = disposition == REG_CREATED_NEW_KEY;
    return st;
}

NTSTATUS regstore_create_key(HANDLE root, const wchar_t *name, size_t len, HANDLE *key, BOOL *created)
{
    *key = NULL;
    if (created)
        *created = FALSE;
    NTSTATUS st = create_one(root, name, len, key, created);
    if (st != STATUS_OBJECT_NAME_NOT_FOUND && st != STATUS_OBJECT_PATH_NOT_FOUND)
        return st;
    /* A parent is missing: create the path name by name. */
    HANDLE at = root;
    size_t start = 0;
    if (!root) {
        /* An absolute path: its first two names (\REGISTRY\X) always
         * exist; the rest is created below them. */
        size_t cut = 0;
        for (int seps = 0; cut < len && seps < 3; cut++)
            if (name[cut] == L'\\' && ++seps == 3)
                break;
        if (cut >= len)
            return st;
        HANDLE base;
        st = regstore_open_key(NULL, name, cut, KEY_CREATE_SUB_KEY, &base);
        if (st < 0)
            return st;
        st = regstore_create_key(base, name + cut + 1, len - cut - 1, key, created);
        NtClose(base);
        return st;
    }
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != L'\\')
            continue;
        HANDLE next;
        BOOL made = FALSE;
        st = create_one(at, name + start, i - start, &next, &made);
        if (at != root)
            NtClose(at);
        if (st < 0)
            return st;
        if (created && i == len)
            *created = made;
        at = next;
        start = i + 1;
    }
    *key = at;
    return STATUS_SUCCESS;
}

NTSTATUS regstore_query_value(HANDLE key, const wchar_t *name, size_t len, ULONG *type, uint8_t **data,
                              ULONG *size)
{
    UNICODE_STRING us;
    *data = NULL;
    if (!counted(&us, name, len))
        return STATUS_NAME_TOO_LONG;
    ULONG cap = 512, got = 0;
    for (;;) {
        key_value_partial_info *info = malloc(cap);
        if (!info)
            return STATUS_NO_MEMORY;
        NTSTATUS st = NtQueryValueKey(key, &us, KEY_VALUE_PARTIAL_INFORMATION_CLASS, info, cap, &got);
        if (st == STATUS_BUFFER_OVERFLOW || st == STATUS_BUFFER_TOO_SMALL) {
            free(info);
            if (got <= cap)
                return st;
            cap = got;
            continue;
        }
        if (st < 0) {
            free(info);
            return st;
        }
        *type = info->type;
        *size = info->data_length;
        /* The data moved to the front, so the caller frees what it gets. */
        memmove(info, info->data, info->data_length);
        *data = (uint8_t *)info;
        return STATUS_SUCCESS;
    }
}

/* Entry index of key into *buf (grown as needed). */
static NTSTATUS enum_entry(HANDLE key, BOOL values, ULONG index, void **buf, ULONG *cap)
{
    for (;;) {
        ULONG got = 0;
        NTSTATUS st = values ? NtEnumerateValueKey(key, index, KEY_VALUE_FULL_INFORMATION_CLASS, *buf, *cap, &got)
                             : NtEnumerateKey(key, index, KEY_BASIC_INFORMATION_CLASS, *buf, *cap, &got);
        if (st != STATUS_BUFFER_OVERFLOW && st != STATUS_BUFFER_TOO_SMALL)
            return st;
        if (got <= *cap)
            got = *cap * 2;
        void *grown = realloc(*buf, got);
        if (!grown)
            return STATUS_NO_MEMORY;
        *buf = grown;
        *cap = got;
    }
}

NTSTATUS regstore_enum_values(HANDLE key, regstore_value_fn fn, void *ctx)
{
    ULONG cap = 1024;
    void *buf = malloc(cap);
    NTSTATUS st = buf ? STATUS_SUCCESS : STATUS_NO_MEMORY;
    for (ULONG i = 0; st >= 0; i++) {
        st = enum_entry(key, TRUE, i, &buf, &cap);
        if (st == STATUS_NO_MORE_ENTRIES) {
            st = STATUS_SUCCESS;
            break;
        }
        if (st < 0)
            break;
        key_value_full_info *v = buf;
        if (v->data_offset > cap || v->data_length > cap - v->data_offset) {
            st = STATUS_INTERNAL_ERROR;
            break;
        }
        if (fn(ctx, v->name, v->name_length / sizeof(wchar_t), v->type, (const uint8_t *)buf + v->data_offset,
               v->data_length))
            break;
    }
    free(buf);
    return st;
}

NTSTATUS regstore_enum_subkeys(HANDLE key, regstore_subkey_fn fn, void *ctx)
{
    ULONG cap = 1024;
    void *buf = malloc(cap);
    NTSTATUS st = buf ? STATUS_SUCCESS : STATUS_NO_MEMORY;
    for (ULONG i = 0; st >= 0; i++) {
        st = enum_entry(key, FALSE, i, &buf, &cap);
        if (st == STATUS_NO_MORE_ENTRIES) {
            st = STATUS_SUCCESS;
            break;
        }
        if (st < 0)
            break;
        key_basic_info *k = buf;
        if (fn(ctx, k->name, k->name_length / sizeof(wchar_t)))
            break;
    }
    free(buf);
    return st;
}

/* ---- the tree ----------------------------------------------------------- */

NTSTATUS regstore_open_tree(const wchar_t *box_path, ACCESS_MASK access, HANDLE *tree)
{
    wchar_t path[REGSTORE_TREE_PATH_CHARS];
    regstore_tree_path(box_path, path);
    return regstore_open_key(NULL, path, wcslen(path), access, tree);
}

NTSTATUS regstore_create_tree(const wchar_t *box_path, HANDLE *tree, BOOL *created)
{
    wchar_t path[REGSTORE_TREE_PATH_CHARS];
    regstore_tree_path(box_path, path);
    return regstore_create_key(NULL, path, wcslen(path), tree, created);
}

/* The dump: the path of the key being written (below the root) grows and
 * shrinks as the walk goes down and up. */
typedef struct dump {
    regfile_buf *out;
    wchar_t *path;
    size_t len, cap;
    HANDLE key;
    fvm_status st;
    NTSTATUS nt;
    fvm_error *err;
    BOOL any;      /* the root has values or subkeys */
} dump;

static int dump_value(void *ctx, const wchar_t *name, size_t len, ULONG type, const uint8_t *data, ULONG size)
{
    dump *d = ctx;
    d->any = TRUE;
    d->st = regfile_put_value(d->out, (const uint16_t *)name, len, type, data, size, d->err);
    return d->st != FVM_OK;
}

static int dump_subkey(void *ctx, const wchar_t *name, size_t len);

/* Writes the key line of d->path (unless it is the root and has no
 * values), its values, then each subkey. */
static void dump_key(dump *d, HANDLE key)
{
    BOOL has_values = FALSE;
    if (d->len == 0) {
        /* The root: a key line only if it holds values. */
        ULONG cap = 256;
        void *buf = malloc(cap);
        if (!buf) {
            d->st = fvm_error_set(d->err, FVM_E_NOMEM, "out of memory");
            return;
        }
        NTSTATUS st = enum_entry(key, TRUE, 0, &buf, &cap);
        free(buf);
        has_values = st >= 0;
        d->any |= has_values;
    }
    if (d->len || has_values) {
        d->st = regfile_put_key(d->out, (const uint16_t *)d->path, d->len, d->err);
        if (d->st != FVM_OK)
            return;
        NTSTATUS st = regstore_enum_values(key, dump_value, d);
        if (d->st != FVM_OK)
            return;
        if (st < 0) {
            d->nt = st;
            d->st = fvm_error_set(d->err, FVM_E_IO, "cannot list the values of a registry key (status 0x%08lx)",
                                  (unsigned long)st);
            return;
        }
    }
    HANDLE saved = d->key;
    d->key = key;
    NTSTATUS st = regstore_enum_subkeys(key, dump_subkey, d);
    d->key = saved;
    if (d->st == FVM_OK && st < 0) {
        d->nt = st;
        d->st = fvm_error_set(d->err, FVM_E_IO, "cannot list the subkeys of a registry key (status 0x%08lx)",
                              (unsigned long)st);
    }
}

/* Keys of the tree's top level named ".fvm-..." are the runtime's own
 * scratch keys (e.g. a merged copy being saved by NtSaveKey): never a host
 * path, never part of the delta. */
static BOOL scratch_key(const dump *d, const wchar_t *name, size_t len)
{
    return d->len == 0 && len >= 5 && !memcmp(name, L".fvm-", 5 * sizeof(wchar_t));
}

static int dump_subkey(void *ctx, const wchar_t *name, size_t len)
{
    dump *d = ctx;
    if (scratch_key(d, name, len))
        return 0;
    d->any = TRUE;
    size_t need = d->len + 1 + len;
    if (need > d->cap) {
        size_t cap = need * 2;
        wchar_t *grown = realloc(d->path, cap * sizeof(wchar_t));
        if (!grown) {
            d->st = fvm_error_set(d->err, FVM_E_NOMEM, "out of memory");
            return 1;
        }
        d->path = grown;
        d->cap = cap;
    }
    size_t saved_len = d->len;
    if (d->len)
        d->path[d->len++] = L'\\';
    memcpy(d->path + d->len, name, len * sizeof(wchar_t));
    d->len += len;
    HANDLE child;
    NTSTATUS st = regstore_open_key(d->key, name, len, KEY_READ, &child);
    if (st == STATUS_OBJECT_NAME_NOT_FOUND) {
        d->len = saved_len;   /* deleted since it was listed: not part of the tree any more */
        return 0;
    }
    if (st < 0) {
        d->nt = st;
        d->st = fvm_error_set(d->err, FVM_E_IO, "cannot open a registry key of the tree (status 0x%08lx)",
                              (unsigned long)st);
        return 1;
    }
    BOOL any = d->any;
    dump_key(d, child);
    d->any = any;
    NtClose(child);
    d->len = saved_len;
    return d->st != FVM_OK;
}

fvm_status regstore_dump(HANDLE root, regfile_buf *out, BOOL *empty, fvm_error *err)
{
    dump d = {.out = out, .err = err, .st = FVM_OK};
    d.cap = 256;
    d.path = malloc(d.cap * sizeof(wchar_t));
    if (!d.path)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    d.st = regfile_put_header(out, err);
    if (d.st == FVM_OK)
        dump_key(&d, root);
    if (d.st == FVM_OK)
        d.st = regfile_put_end(out, err);
    free(d.path);
    if (empty)
        *empty = !d.any;
    return d.st;
}

/* The load: the key of the last key line stays open for its values. */
typedef struct load {
    HANDLE root;
    HANDLE key;
} load;

static fvm_status load_key(void *ctx, const uint16_t *path, size_t len, fvm_error *err)
{
    load *l = ctx;
    if (l->key && l->key != l->root)
        NtClose(l->key);
    l->key = NULL;
    if (len == 0) {
        l->key = l->root;
        return FVM_OK;
    }
    NTSTATUS st = regstore_create_key(l->root, (const wchar_t *)path, len, &l->key, NULL);
    if (st < 0)
        return fvm_error_set(err, FVM_E_IO, "cannot create the registry key (status 0x%08lx)", (unsigned long)st);
    return FVM_OK;
}

static fvm_status load_value(void *ctx, const uint16_t *name, size_t len, uint32_t type, const uint8_t *data,
                             size_t size, fvm_error *err)
{
    load *l = ctx;
    UNICODE_STRING us;
    if (!counted(&us, (const wchar_t *)name, len) || size > 0xFFFFFFFFu)
        return fvm_error_set(err, FVM_E_RANGE, "value name or data too long for the registry");
    NTSTATUS st = NtSetValueKey(l->key, &us, 0, type, (PVOID)data, (ULONG)size);
    if (st < 0)
        return fvm_error_set(err, FVM_E_IO, "cannot set the registry value (status 0x%08lx)", (unsigned long)st);
    return FVM_OK;
}

fvm_status regstore_load(HANDLE root, const char *text, size_t len, fvm_error *err)
{
    load l = {root, NULL};
    regfile_visitor v = {load_key, load_value, &l};
    fvm_status st = regfile_parse(text, len, &v, err);
    if (l.key && l.key != root)
        NtClose(l.key);
    return st;
}

NTSTATUS regstore_delete_tree(HANDLE root)
{
    ULONG cap = 512;
    void *buf = malloc(cap);
    if (!buf)
        return STATUS_NO_MEMORY;
    NTSTATUS st;
    /* Always entry 0: each deleted subkey moves the next one there. */
    while ((st = enum_entry(root, FALSE, 0, &buf, &cap)) >= 0) {
        key_basic_info *k = buf;
        HANDLE child;
        st = regstore_open_key(root, k->name, k->name_length / sizeof(wchar_t), DELETE | KEY_ENUMERATE_SUB_KEYS,
                               &child);
        if (st >= 0) {
            st = regstore_delete_tree(child);
            NtClose(child);
        }
        if (st < 0)
            break;
    }
    free(buf);
    if (st == STATUS_NO_MORE_ENTRIES)
        st = NtDeleteKey(root);
    return st;
}

BOOL regstore_delete_box_tree(const wchar_t *box_path)
{
    HANDLE tree;
    NTSTATUS st = regstore_open_tree(box_path, DELETE | KEY_ENUMERATE_SUB_KEYS, &tree);
    if (st == STATUS_OBJECT_NAME_NOT_FOUND)
        return TRUE;
    if (st < 0)
        return FALSE;
    st = regstore_delete_tree(tree);
    NtClose(tree);
    return st >= 0;
}

/* ---- the file ----------------------------------------------------------- */

static const char *win_message(DWORD code, char *buf, size_t cap)
{
    if (!FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, buf, (DWORD)cap,
                        NULL))
        snprintf(buf, cap, "error %lu", (unsigned long)code);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.'))
        buf[--n] = 0;
    return buf;
}

fvm_status regstore_read_file(const wchar_t *path, char **text, size_t *len, fvm_error *err)
{
    char why[256];
    *text = NULL;
    *len = 0;
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
            return fvm_error_set(err, FVM_E_NOTFOUND, "no registry file");
        return fvm_error_set(err, FVM_E_IO, "cannot open the registry file: %s", win_message(e, why, sizeof why));
    }
    LARGE_INTEGER size;
    fvm_status st = FVM_OK;
    if (!GetFileSizeEx(h, &size) || size.QuadPart > 0x7FFFFFFF) {
        st = fvm_error_set(err, FVM_E_IO, "cannot size the registry file (or larger than 2 GB)");
    } else {
        char *buf = malloc((size_t)size.QuadPart + 1);
        DWORD got = 0;
        if (!buf) {
            st = fvm_error_set(err, FVM_E_NOMEM, "out of memory reading the registry file");
        } else if (!ReadFile(h, buf, (DWORD)size.QuadPart, &got, NULL) || got != (DWORD)size.QuadPart) {
            free(buf);
            st = fvm_error_set(err, FVM_E_IO, "cannot read the registry file: %s",
                               win_message(GetLastError(), why, sizeof why));
        } else {
            buf[got] = 0;
            *text = buf;
            *len = got;
        }
    }
    CloseHandle(h);
    return st;
}

fvm_status regstore_write_file(const wchar_t *path, const char *text, size_t len, fvm_error *err)
{
    char why[256];
    wchar_t temp[FVM_PATH_MAX + 32];
    _snwprintf(temp, FVM_PATH_MAX + 32, L"%ls.tmp-%lu", path, (unsigned long)GetCurrentProcessId());
    temp[FVM_PATH_MAX + 31] = 0;
    if (len > 0xFFFFFFFFu)
        return fvm_error_set(err, FVM_E_RANGE, "registry text too large for one file write");
    HANDLE h = CreateFileW(temp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return fvm_error_set(err, FVM_E_IO, "cannot create the registry file's temporary copy: %s",
                             win_message(GetLastError(), why, sizeof why));
    DWORD written = 0;
    BOOL ok = WriteFile(h, text, (DWORD)len, &written, NULL) && written == len && FlushFileBuffers(h);
    DWORD e = GetLastError();
    if (!CloseHandle(h) && ok) {
        ok = FALSE;
        e = GetLastError();
    }
    if (ok && !MoveFileExW(temp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        ok = FALSE;
        e = GetLastError();
    }
    if (!ok) {
        DeleteFileW(temp);
        return fvm_error_set(err, FVM_E_IO, "cannot write the registry file: %s", win_message(e, why, sizeof why));
    }
    return FVM_OK;
}

#endif /* FVM_RUNTIME */

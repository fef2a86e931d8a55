/* key_tree.c - registry operations on whole subtrees: NtRenameKey and
 * NtSaveKey(Ex), part of the registry virtualizer (key.c has the idea).
 *
 * Both need the key's merged content all the way down, which no single real
 * call gives: the host key and the box key each hold part of it. A rename
 * of a key the box has not made itself therefore copies the merged subtree
 * into a box key of the new name (copy_tree), deletes the old box subtree
 * and leaves a tombstone that hides the host's; a save copies the merged
 * subtree into a private box key, saves that with the real call into the
 * program's file, and deletes the copy. Neither touches a host key. */
#include "runtime/key.h"

typedef NTSTATUS (NTAPI *NtRenameKey_fn)(HANDLE, PUNICODE_STRING);
typedef NTSTATUS (NTAPI *NtSaveKey_fn)(HANDLE, HANDLE);
typedef NTSTATUS (NTAPI *NtSaveKeyEx_fn)(HANDLE, HANDLE, ULONG);
static NtRenameKey_fn real_NtRenameKey;
static NtSaveKey_fn real_NtSaveKey;
static NtSaveKeyEx_fn real_NtSaveKeyEx;

/* Copies the merged content of the key at from (values and subkeys, all
 * the way down) into the box key to. */
static NTSTATUS copy_tree(key_handle *from, HANDLE to, int depth);

static NTSTATUS copy_values(key_handle *from, const key_view *view, HANDLE to)
{
    NTSTATUS st = key_listing_values(from, view, TRUE);
    ULONG size = 4096;
    KEY_VALUE_FULL_INFORMATION *info = HeapAlloc(GetProcessHeap(), 0, size);
    for (size_t i = 0; st >= 0 && i < from->values.count; i++) {
        const key_listing_item *it = &from->values.items[i];
        ULONG got = 0;
        HANDLE src = it->from_box ? view->box : view->host;
        for (;;) {
            if (!info)
                return STATUS_NO_MEMORY;
            st = real_NtEnumerateValueKey(src, it->index, KEY_VALUE_FULL_INFO, info, size, &got);
            if (st != STATUS_BUFFER_OVERFLOW && st != STATUS_BUFFER_TOO_SMALL)
                break;
            HeapFree(GetProcessHeap(), 0, info);
            size = got + 64;
            info = HeapAlloc(GetProcessHeap(), 0, size);
        }
        if (st < 0)
            break;
        UNICODE_STRING vn = {(USHORT)info->NameLength, (USHORT)info->NameLength, info->Name};
        st = real_NtSetValueKey(to, &vn, 0, info->Type, (uint8_t *)info + info->DataOffset, info->DataLength);
    }
    if (info)
        HeapFree(GetProcessHeap(), 0, info);
    return st;
}

static NTSTATUS copy_tree(key_handle *from, HANDLE to, int depth)
{
    if (depth > 512)
        return STATUS_NAME_TOO_LONG;
    key_view view;
    NTSTATUS st = key_view_of(from, &view, KEY_READ);
    if (st >= 0)
        st = copy_values(from, &view, to);
    if (st >= 0)
        st = key_listing_subkeys(from, &view, TRUE);
    size_t count = st >= 0 ? from->subkeys.count : 0;
    for (size_t i = 0; st >= 0 && i < count; i++) {
        const key_listing_item *it = &from->subkeys.items[i];
        key_name *child = key_name_alloc();
        if (!child)
            return STATUS_NO_MEMORY;
        if (from->len + 1 + it->len > KEY_PATH_UNITS) {
            key_name_free(child);
            return STATUS_NAME_TOO_LONG;
        }
        memcpy(child->path, from->path, from->len * 2);
        child->path[from->len] = L'\\';
        memcpy(child->path + from->len + 1, it->name, it->len * 2);
        child->len = from->len + 1 + it->len;
        HANDLE made = NULL;
        key_handle *sub = NULL;
        if (!key_name_finish(child)) {
            st = STATUS_OBJECT_NAME_INVALID;
        } else {
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            key_attributes_for(&oa, &us, it->name, it->len, to);
            st = real_NtCreateKey(&made, KEY_ALL_ACCESS & ~KEY_CREATE_LINK, &oa, 0, NULL, 0, NULL);
            /* An entry of FVM's own for the child: host and box keys opened on demand. */
            sub = st >= 0 ? key_entry_new(NULL, child, HANDLE_IS_OTHER, KEY_READ, POLICY_ACTION_COW) : NULL;
            if (st >= 0 && !sub)
                st = STATUS_NO_MEMORY;
            if (sub) {
                AcquireSRWLockExclusive(&sub->lock);
                st = copy_tree(sub, made, depth + 1);
                ReleaseSRWLockExclusive(&sub->lock);
                key_handle_release(sub);
            }
        }
        if (made)
            close_key(made);
        key_name_free(child);
    }
    return st;
}

/* Deletes a box key and everything below it (the box's own keys: no
 * tombstones needed below a key that goes as a whole). */
static void box_tree_delete(HANDLE key)
{
    union {
        KEY_BASIC_INFORMATION info;
        uint8_t bytes[sizeof(KEY_BASIC_INFORMATION) + 520];
    } u;
    ULONG got;
    while (real_NtEnumerateKey(key, 0, KEY_BASIC_INFO, &u, sizeof u, &got) >= 0) {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        HANDLE child;
        key_attributes_for(&oa, &us, (const uint16_t *)u.info.Name, u.info.NameLength / 2, key);
        if (real_NtOpenKey(&child, KEY_ALL_ACCESS & ~KEY_CREATE_LINK, &oa) < 0)
            break;
        box_tree_delete(child);
        close_key(child);
    }
    real_NtDeleteKey(key);
}

/* Rename: the merged key, with everything below it, is copied to its new
 * name in the box (a key of the box alone there) and deleted at the old
 * name; the program's handle then stands for the new key. */
static NTSTATUS NTAPI box_NtRenameKey(HANDLE key, PUNICODE_STRING new_name)
{
    key_handle *kh;
    HANDLE target;
    NTSTATUS st = key_change_target(key, KEY_WRITE, "rename", &kh, &target);
    if (st < 0 || !kh || kh->action == POLICY_ACTION_OPEN) {
        if (st >= 0)
            st = real_NtRenameKey ? real_NtRenameKey(target, new_name) : STATUS_NOT_IMPLEMENTED;
        key_handle_release(kh);
        return st;
    }
    key_name *to = key_name_alloc();
    if (!to || !new_name || !new_name->Buffer || !new_name->Length) {
        key_name_free(to);
        key_handle_release(kh);
        return to ? STATUS_INVALID_PARAMETER : STATUS_NO_MEMORY;
    }
    size_t parent_len = kh->len;
    while (parent_len > 0 && kh->path[parent_len - 1] != L'\\')
        parent_len--;
    size_t rel = new_name->Length / 2;
    for (size_t i = 0; i < rel; i++)
        if (new_name->Buffer[i] == L'\\') {
            key_name_free(to);
            key_handle_release(kh);
            return STATUS_INVALID_PARAMETER;
        }
    st = STATUS_OBJECT_NAME_INVALID;
    if (parent_len > REGISTRY_PREFIX_UNITS + 1 && parent_len + rel <= KEY_PATH_UNITS) {
        memcpy(to->path, kh->path, parent_len * 2);
        memcpy(to->path + parent_len, new_name->Buffer, rel * 2);
        to->len = parent_len + rel;
        if (key_name_finish(to))
            st = key_exists_in_view(to) ? STATUS_CANNOT_DELETE : STATUS_SUCCESS;   /* as the host answers */
    }
    HANDLE made = NULL;
    if (st >= 0)
        st = key_copy_up(to, FALSE, 0, &made);
    if (st >= 0) {
        AcquireSRWLockExclusive(&kh->lock);
        st = copy_tree(kh, made, 0);
        ReleaseSRWLockExclusive(&kh->lock);
    }
    /* The old key goes: its box keys, and a tombstone for the host's. */
    if (st >= 0) {
        key_view view;
        AcquireSRWLockExclusive(&kh->lock);
        key_view_of(kh, &view, KEY_READ);
        reg_verdict verdict = view.verdict;
        HANDLE old_box = view.box;
        ReleaseSRWLockExclusive(&kh->lock);
        if (old_box)
            box_tree_delete(old_box);
        if (verdict != REG_VERDICT_BOX_BELOW)
            st = index_note_registry(REG_INDEX_DELETE, kh->key, kh->path, kh->len, BOXINDEX_FLAG_DIRECTORY);
    }
    if (st >= 0) {
        /* The handle follows the key to its new name. */
        key_handle *moved = key_entry_new(key, to, HANDLE_IS_OTHER, kh->asked, kh->action);
        if (moved) {
            moved->own_box = made;
            made = NULL;
            key_table_put(moved);
        }
    }
    if (made)
        close_key(made);
    key_name_free(to);
    key_handle_release(kh);
    return st;
}

/* Saving a key the box changed saves what the program sees: the merged
 * key is copied into a scratch key of the box's tree, which is saved and
 * deleted again. An untouched key is saved as it is. */
/* Appends "<pid>-<n>" to out[0..n): a name no other process or call of
 * this one uses at the same time. Returns the new length. */
static size_t append_unique_suffix(uint16_t *out, size_t n, LONG count)
{
    uint64_t numbers[2] = {GetCurrentProcessId(), (uint64_t)count};
    for (int k = 0; k < 2; k++) {
        uint16_t digits[24];
        int d = 0;
        do {
            digits[d++] = (uint16_t)('0' + numbers[k] % 10);
            numbers[k] /= 10;
        } while (numbers[k]);
        while (d)
            out[n++] = digits[--d];
        if (k == 0)
            out[n++] = L'-';
    }
    return n;
}

/* Wine's text hive names the saved key in a comment (";; All keys
 * relative to REGISTRY\\User\\FVM.<hash>\\..."). So the scratch key is
 * saved into a file of FVM's own in the box folder, the comment names the
 * key's host path instead, and the result is written to the program's
 * file (which programs open for writing only). */
static NTSTATUS save_through_own_file(HANDLE copy, HANDLE file, ULONG format, BOOL ex, const key_handle *kh)
{
    static const char marker[] = ";; All keys relative to ";
    static volatile LONG counter;
    uint16_t name[FVM_PATH_MAX + 64];
    size_t n = 0;
    name[n++] = L'\\', name[n++] = L'?', name[n++] = L'?', name[n++] = L'\\';
    for (size_t i = 0; g_fvm.config.box_path[i] && n < FVM_PATH_MAX; i++)
        name[n++] = g_fvm.config.box_path[i];
    static const char tag[] = "\\save-";
    for (size_t i = 0; tag[i]; i++)
        name[n++] = (uint16_t)tag[i];
    n = append_unique_suffix(name, n, InterlockedIncrement(&counter));
    name[n++] = L'.', name[n++] = L't', name[n++] = L'm', name[n++] = L'p';
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE own;
    key_attributes_for(&oa, &us, name, n, NULL);
    NTSTATUS st = real_NtCreateFile(&own, GENERIC_READ | GENERIC_WRITE | DELETE | SYNCHRONIZE, &oa, &io, NULL,
                                    FILE_ATTRIBUTE_NORMAL, 0, FILE_OVERWRITE_IF,
                                    FILE_SYNCHRONOUS_IO_NONALERT | FILE_DELETE_ON_CLOSE | FILE_NON_DIRECTORY_FILE,
                                    NULL, 0);
    if (st < 0)
        return ex ? real_NtSaveKeyEx(copy, file, format) : real_NtSaveKey(copy, file);
    st = ex ? real_NtSaveKeyEx(copy, own, format) : real_NtSaveKey(copy, own);
    FILE_STANDARD_INFORMATION fsi;
    char *old = NULL, *fresh = NULL;
    if (st >= 0)
        st = NtQueryInformationFile(own, &io, &fsi, sizeof fsi, FileStandardInformation);
    if (st >= 0 && fsi.EndOfFile.QuadPart > 1024 * 1024 * 1024)
        st = STATUS_FILE_TOO_LARGE;
    ULONG size = st >= 0 ? (ULONG)fsi.EndOfFile.QuadPart : 0;
    if (st >= 0 && (!(old = HeapAlloc(GetProcessHeap(), 0, size + 1)) ||
                    !(fresh = HeapAlloc(GetProcessHeap(), 0, size + kh->len * 2 + 64))))
        st = STATUS_NO_MEMORY;
    LARGE_INTEGER zero = {{0, 0}};
    if (st >= 0 && size)
        st = NtReadFile(own, NULL, NULL, NULL, &io, old, size, &zero, NULL);
    if (st >= 0) {
        size_t out = 0, from = 0;
        for (size_t p = 0; p + sizeof marker - 1 <= size && p < 4096; p++) {
            if (memcmp(old + p, marker, sizeof marker - 1))
                continue;
            /* Up to the marker, then the host path (no leading backslash,
             * backslashes doubled), then from the end of that line. */
            memcpy(fresh, old, p + sizeof marker - 1);
            out = p + sizeof marker - 1;
            for (size_t i = 1; i < kh->len; i++) {
                if (kh->path[i] == L'\\')
                    fresh[out++] = '\\';
                fresh[out++] = kh->path[i] < 0x80 ? (char)kh->path[i] : '?';
            }
            from = p;
            while (from < size && old[from] != '\n' && old[from] != '\r')
                from++;
            break;
        }
        memcpy(fresh + out, old + from, size - from);
        out += size - from;
        st = NtWriteFile(file, NULL, NULL, NULL, &io, fresh, (ULONG)out, NULL, NULL);
    }
    if (old)
        HeapFree(GetProcessHeap(), 0, old);
    if (fresh)
        HeapFree(GetProcessHeap(), 0, fresh);
    NtClose(own);
    return st;
}

static NTSTATUS save_merged(HANDLE key, HANDLE file, ULONG format, BOOL ex)
{
    key_handle *kh = key_handle_get(key);
    NTSTATUS st;
    key_view view;
    if (!kh || kh->action == POLICY_ACTION_OPEN) {
        key_handle_release(kh);
        return ex ? real_NtSaveKeyEx(key, file, format) : real_NtSaveKey(key, file);
    }
    AcquireSRWLockExclusive(&kh->lock);
    st = key_view_of(kh, &view, KEY_READ);
    ReleaseSRWLockExclusive(&kh->lock);
    if (st >= 0 && view.verdict == REG_VERDICT_HOST) {
        key_handle_release(kh);
        return ex ? real_NtSaveKeyEx(view.host, file, format) : real_NtSaveKey(view.host, file);
    }
    static volatile LONG counter;
    key_name *scratch = key_name_alloc();
    HANDLE copy = NULL;
    if (st >= 0 && !scratch)
        st = STATUS_NO_MEMORY;
    if (st >= 0) {
        /* <tree>\.fvm-save-<pid>-<n>: never a host path, so never merged. */
        uint16_t *p = scratch->path;
        size_t n = 0;
        static const char tag[] = ".fvm-save-";
        memcpy(p, g_key_box_tree, g_key_box_tree_len * 2);
        n = g_key_box_tree_len;
        p[n++] = L'\\';
        for (size_t i = 0; tag[i]; i++)
            p[n++] = (uint16_t)tag[i];
        n = append_unique_suffix(p, n, InterlockedIncrement(&counter));
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        key_attributes_for(&oa, &us, p, n, NULL);
        st = real_NtCreateKey(&copy, KEY_ALL_ACCESS & ~KEY_CREATE_LINK, &oa, 0, NULL, 0, NULL);
    }
    if (st >= 0) {
        AcquireSRWLockExclusive(&kh->lock);
        st = copy_tree(kh, copy, 0);
        ReleaseSRWLockExclusive(&kh->lock);
        if (st >= 0)
            st = save_through_own_file(copy, file, format, ex, kh);
        box_tree_delete(copy);
        close_key(copy);
    }
    key_name_free(scratch);
    key_handle_release(kh);
    return st;
}

static NTSTATUS NTAPI box_NtSaveKey(HANDLE key, HANDLE file)
{
    return save_merged(key, file, 0, FALSE);
}

static NTSTATUS NTAPI box_NtSaveKeyEx(HANDLE key, HANDLE file, ULONG format)
{
    return save_merged(key, file, format, TRUE);
}

void key_tree_hooks(hook_table *table)
{
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtRenameKey);
    FVM_HOOK(table, "ntdll.dll", NtSaveKey);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtSaveKeyEx);
}

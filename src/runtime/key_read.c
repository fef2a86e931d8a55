/* key_read.c - the registry as a boxed program reads it: the box's keys
 * merged over the host's.
 *
 * A read through a handle first asks the index what the box did to the key
 * (key_view_of): untouched, the call goes to the host key unchanged; a key
 * of the box alone is read from the box key; a key the box changed is read
 * from both. A value is the box's if the box key has it (a tombstone value
 * means "deleted": not found), else the host's. Subkeys and values of a
 * merged key are listed as one sorted list (Wine keeps both sorted by name,
 * case-insensitively, and so does the merge), without the host's entries the
 * box deleted; the list is built at index 0 of an enumeration and kept with
 * the handle for the calls that follow, so enumerating n entries costs O(n)
 * calls, not O(n^2). NtQueryKey reports the merged counts and the name the
 * program used, never the box's. */
#include "runtime/ipc.h"
#include "runtime/key.h"

#include "core/listmerge.h"

NtQueryValueKey_fn real_NtQueryValueKey;
NtEnumerateKey_fn real_NtEnumerateKey;
NtEnumerateKey_fn real_NtEnumerateValueKey;
typedef NTSTATUS (NTAPI *NtQueryMultipleValueKey_fn)(HANDLE, PVOID, ULONG, PVOID, PULONG, PULONG);
static NtQueryMultipleValueKey_fn real_NtQueryMultipleValueKey;

typedef struct KEY_VALUE_ENTRY_FVM {
    PUNICODE_STRING ValueName;
    ULONG DataLength;
    ULONG DataOffset;
    ULONG Type;
} KEY_VALUE_ENTRY_FVM;

/* ---- listings ------------------------------------------------------------------ */

typedef struct listing_builder {
    key_listing_item *items;
    size_t count, cap;
} listing_builder;

static BOOL builder_add(listing_builder *b, const WCHAR *name, size_t len, BOOL from_box, ULONG index,
                        const void *info, ULONG info_len)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        key_listing_item *grown = b->items ? HeapReAlloc(GetProcessHeap(), 0, b->items, cap * sizeof *grown)
                                           : HeapAlloc(GetProcessHeap(), 0, cap * sizeof *grown);
        if (!grown)
            return FALSE;
        b->items = grown;
        b->cap = cap;
    }
    uint16_t *copy = HeapAlloc(GetProcessHeap(), 0, len * 2 + 2);
    void *blob = info_len ? HeapAlloc(GetProcessHeap(), 0, info_len) : NULL;
    if (!copy || (info_len && !blob)) {
        if (copy)
            HeapFree(GetProcessHeap(), 0, copy);
        return FALSE;
    }
    memcpy(copy, name, len * 2);
    if (blob)
        memcpy(blob, info, info_len);
    key_listing_item *it = &b->items[b->count++];
    it->name = copy;
    it->len = len;
    it->from_box = from_box;
    it->index = index;
    it->info = blob;
    it->info_len = info_len;
    return TRUE;
}

/* Moves an item (its name and info) into b: no copy. */
static BOOL builder_take(listing_builder *b, const key_listing_item *item)
{
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        key_listing_item *grown = b->items ? HeapReAlloc(GetProcessHeap(), 0, b->items, cap * sizeof *grown)
                                           : HeapAlloc(GetProcessHeap(), 0, cap * sizeof *grown);
        if (!grown)
            return FALSE;
        b->items = grown;
        b->cap = cap;
    }
    b->items[b->count++] = *item;
    return TRUE;
}

static void builder_free(listing_builder *b)
{
    for (size_t i = 0; i < b->count; i++) {
        if (b->items[i].name)
            HeapFree(GetProcessHeap(), 0, b->items[i].name);
        if (b->items[i].info)
            HeapFree(GetProcessHeap(), 0, b->items[i].info);
    }
    if (b->items)
        HeapFree(GetProcessHeap(), 0, b->items);
}

/* Every entry of one source key, with its index there and its
 * KeyNodeInformation (subkeys) or KeyValueFullInformation (values): most
 * enumerations ask for those, and are then answered from the listing. */
static NTSTATUS collect(HANDLE key, BOOL values, BOOL from_box, listing_builder *b, ULONG **types)
{
    ULONG size = 4096;
    uint8_t *buf = HeapAlloc(GetProcessHeap(), 0, size);
    NTSTATUS st = STATUS_SUCCESS;
    for (ULONG i = 0; buf;) {
        ULONG got = 0;
        st = values ? real_NtEnumerateValueKey(key, i, KEY_VALUE_FULL_INFO, buf, size, &got)
                    : real_NtEnumerateKey(key, i, KEY_NODE_INFO, buf, size, &got);
        if (st == STATUS_BUFFER_OVERFLOW || st == STATUS_BUFFER_TOO_SMALL) {
            HeapFree(GetProcessHeap(), 0, buf);
            size = got + 64;
            buf = HeapAlloc(GetProcessHeap(), 0, size);
            continue;
        }
        if (st == STATUS_NO_MORE_ENTRIES) {
            st = STATUS_SUCCESS;
            break;
        }
        if (st < 0)
            break;
        const KEY_VALUE_FULL_INFORMATION *v = (const void *)buf;
        const KEY_NODE_INFORMATION *k = (const void *)buf;
        const WCHAR *name = values ? v->Name : k->Name;
        size_t len = (values ? v->NameLength : k->NameLength) / 2;
        if (!builder_add(b, name, len, from_box, i, buf, got)) {
            st = STATUS_NO_MEMORY;
            break;
        }
        if (types) {
            /* Tombstones are told apart by type: remember it per item. */
            ULONG *grown = *types ? HeapReAlloc(GetProcessHeap(), 0, *types, b->cap * sizeof(ULONG))
                                  : HeapAlloc(GetProcessHeap(), 0, b->cap * sizeof(ULONG));
            if (!grown) {
                st = STATUS_NO_MEMORY;
                break;
            }
            *types = grown;
            (*types)[b->count - 1] = v->Type;
        }
        i++;
    }
    if (!buf)
        return STATUS_NO_MEMORY;
    HeapFree(GetProcessHeap(), 0, buf);
    return st;
}

/* Is the host's subkey name of kh deleted in the box? */
static BOOL child_deleted(const key_handle *kh, const uint16_t *name, size_t len)
{
    if (kh->len + 1 + len > KEY_PATH_UNITS)
        return FALSE;
    uint16_t *key = HeapAlloc(GetProcessHeap(), 0, (kh->len + 1 + len) * 2);
    if (!key)
        return FALSE;
    memcpy(key, kh->key, kh->len * 2);
    key[kh->len] = L'\\';
    for (size_t i = 0; i < len; i++)
        key[kh->len + 1 + i] = ntpath_upcase(NULL, name[i]);
    size_t n = kh->len + 1 + len;
    boxindex_state st = index_registry_entry(key, n, boxindex_key_hash(key, n));
    HeapFree(GetProcessHeap(), 0, key);
    return st == BOXINDEX_TOMBSTONE || st == BOXINDEX_RENAMED;
}

/* HKEY_USERS holds the key trees of every box (FVM.<hash>): a boxed
 * program's listing of it leaves them out. */
static BOOL lists_box_trees(const key_handle *kh)
{
    static const char hku[] = "\\REGISTRY\\USER";
    if (kh->len != sizeof hku - 1)
        return FALSE;
    for (size_t i = 0; i < kh->len; i++)
        if (kh->key[i] != (uint16_t)hku[i])
            return FALSE;
    return TRUE;
}

static BOOL is_box_tree_name(const uint16_t *name, size_t len)
{
    return len > 4 && ntpath_upcase(NULL, name[0]) == 'F' && ntpath_upcase(NULL, name[1]) == 'V' &&
           ntpath_upcase(NULL, name[2]) == 'M' && name[3] == '.';
}

/* Builds the merged list: box entries win over host entries of the same
 * name; box tombstone values hide and are hidden; host subkeys the box
 * deleted are dropped. */
static NTSTATUS build_listing(key_handle *kh, const key_view *view, BOOL values, key_listing *out)
{
    listing_builder box = {0}, host = {0}, merged = {0};
    ULONG *box_types = NULL;
    NTSTATUS st = STATUS_SUCCESS;
    if (view->box)
        st = collect(view->box, values, TRUE, &box, values ? &box_types : NULL);
    if (st >= 0 && view->host)
        st = collect(view->host, values, FALSE, &host, NULL);
    /* One sorted list, one entry per name, the box's winning
     * (core/listmerge.c, the merger folders use too); then box tombstones
     * (which have hidden the host's value of their name) and host subkeys
     * the box deleted are left out. */
    size_t total = box.count + host.count;
    listmerge_entry *m = NULL;
    if (st >= 0 && total && !(m = HeapAlloc(GetProcessHeap(), 0, 2 * total * sizeof *m)))
        st = STATUS_NO_MEMORY;
    if (st >= 0 && total) {
        for (size_t i = 0; i < total; i++) {
            const key_listing_item *it = i < box.count ? &box.items[i] : &host.items[i - box.count];
            m[i].name = it->name;
            m[i].len = it->len;
            m[i].ref = (uint32_t)i;
            m[i].from_box = i < box.count;
        }
        size_t kept = listmerge_sort_unique(m, total, m + total, 0);
        for (size_t k = 0; k < kept && st >= 0; k++) {
            size_t r = m[k].ref;
            key_listing_item *src;
            BOOL keep;
            if (r < box.count) {
                src = &box.items[r];
                keep = !(values && box_types[r] == REG_FVM_DELETED);
            } else {
                src = &host.items[r - box.count];
                keep = values || (!child_deleted(kh, src->name, src->len) &&
                                  !(lists_box_trees(kh) && is_box_tree_name(src->name, src->len)));
            }
            if (keep && !builder_take(&merged, src))
                st = STATUS_NO_MEMORY;
            else if (keep)
                src->name = NULL, src->info = NULL;   /* the merged list owns them now */
        }
    }
    if (m)
        HeapFree(GetProcessHeap(), 0, m);
    if (box_types)
        HeapFree(GetProcessHeap(), 0, box_types);
    builder_free(&box);
    builder_free(&host);
    if (st < 0) {
        builder_free(&merged);
        return st;
    }
    listing_builder old = {out->items, out->count, out->count};
    builder_free(&old);
    out->items = merged.items;
    out->count = merged.count;
    out->valid = TRUE;
    return STATUS_SUCCESS;
}

NTSTATUS key_listing_subkeys(key_handle *kh, const key_view *view, BOOL rebuild)
{
    if (!rebuild && kh->subkeys.valid)
        return STATUS_SUCCESS;
    return build_listing(kh, view, FALSE, &kh->subkeys);
}

NTSTATUS key_listing_values(key_handle *kh, const key_view *view, BOOL rebuild)
{
    if (!rebuild && kh->values.valid)
        return STATUS_SUCCESS;
    return build_listing(kh, view, TRUE, &kh->values);
}

/* ---- the hooks ------------------------------------------------------------------ */

/* The view of handle for a read; *kh_out is NULL (and the call passes
 * through) when FVM does not know the handle. */
static NTSTATUS read_view_parts(HANDLE handle, key_handle **kh_out, key_view *view, ACCESS_MASK need,
                                BOOL with_host);

static NTSTATUS read_view(HANDLE handle, key_handle **kh_out, key_view *view, ACCESS_MASK need)
{
    return read_view_parts(handle, kh_out, view, need, TRUE);
}

static NTSTATUS read_view_parts(HANDLE handle, key_handle **kh_out, key_view *view, ACCESS_MASK need,
                                BOOL with_host)
{
    key_handle *kh = key_handle_get(handle);
    *kh_out = kh;
    if (!kh)
        return STATUS_SUCCESS;
    if (kh->action == POLICY_ACTION_OPEN) {
        view->verdict = REG_VERDICT_HOST;
        view->host = handle;
        view->box = NULL;
        return STATUS_SUCCESS;
    }
    AcquireSRWLockExclusive(&kh->lock);
    NTSTATUS st = key_view_parts(kh, view, need, with_host);
    ReleaseSRWLockExclusive(&kh->lock);
    if (st >= 0 && view->host != handle && view->box != handle) {
        /* FVM's own handle answers: the program's rights still apply. */
        ACCESS_MASK allowed = kh->asked;
        if (kh->kind == HANDLE_IS_HOST)
            allowed &= ~(KEY_SET_VALUE | KEY_CREATE_SUB_KEY | KEY_CREATE_LINK | DELETE | WRITE_DAC | WRITE_OWNER);
        if ((allowed & need) != need)
            st = STATUS_ACCESS_DENIED;
    }
    return st;
}

static NTSTATUS NTAPI box_NtQueryValueKey(HANDLE key, PUNICODE_STRING name, ULONG klass, PVOID info, ULONG length,
                                          PULONG returned)
{
    key_handle *kh;
    key_view view;
    if (scm_hides_value(name))
        return STATUS_OBJECT_NAME_NOT_FOUND;
    /* The box first; a merged key's host key is opened only if need be. */
    NTSTATUS st = read_view_parts(key, &kh, &view, KEY_QUERY_VALUE, FALSE);
    if (!kh)
        return real_NtQueryValueKey(key, name, klass, info, length, returned);
    if (st < 0) {
        key_handle_release(kh);
        return st;
    }
    if (view.verdict == REG_VERDICT_HOST) {
        key_handle_release(kh);
        return real_NtQueryValueKey(view.host, name, klass, info, length, returned);
    }
    if (view.box) {
        st = real_NtQueryValueKey(view.box, name, klass, info, length, returned);
        /* Every value class starts with TitleIndex, Type. */
        ULONG type = 0;
        if (st >= 0 || (st == STATUS_BUFFER_OVERFLOW && length >= 8))
            type = ((const ULONG *)info)[1];
        else if (st == STATUS_BUFFER_OVERFLOW || st == STATUS_BUFFER_TOO_SMALL) {
            union {
                KEY_VALUE_BASIC_INFORMATION basic;
                uint8_t bytes[sizeof(KEY_VALUE_BASIC_INFORMATION) + 64];
            } probe;
            ULONG got;
            NTSTATUS p = real_NtQueryValueKey(view.box, name, KEY_VALUE_BASIC_INFO, &probe, sizeof probe, &got);
            if (p >= 0 || p == STATUS_BUFFER_OVERFLOW)
                type = probe.basic.Type;
        }
        if (type == REG_FVM_DELETED && st != STATUS_OBJECT_NAME_NOT_FOUND)
            st = STATUS_OBJECT_NAME_NOT_FOUND;
        if (st != STATUS_OBJECT_NAME_NOT_FOUND || type == REG_FVM_DELETED) {
            key_handle_release(kh);
            return st;
        }
    }
    if (view.verdict == REG_VERDICT_MERGED) {
        AcquireSRWLockExclusive(&kh->lock);
        st = key_view_of(kh, &view, KEY_QUERY_VALUE);
        ReleaseSRWLockExclusive(&kh->lock);
        key_handle_release(kh);
        if (st >= 0 && view.host)
            return real_NtQueryValueKey(view.host, name, klass, info, length, returned);
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    key_handle_release(kh);
    return STATUS_OBJECT_NAME_NOT_FOUND;
}

/* Copies a built answer out as the real call would: too small for the
 * fixed part is BUFFER_TOO_SMALL, too small for the rest BUFFER_OVERFLOW
 * with what fits; *returned is the size needed. */
static NTSTATUS copy_answer(const void *data, ULONG size, ULONG fixed, PVOID info, ULONG length, PULONG returned)
{
    if (returned)
        *returned = size;
    if (length < fixed)
        return STATUS_BUFFER_TOO_SMALL;
    memcpy(info, data, length < size ? length : size);
    return length < size ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}

/* Answers an enumeration step from the information collected with the
 * listing, for the classes it holds; FALSE: ask the source key. */
static BOOL answer_from_listing(const key_listing_item *it, BOOL values, ULONG klass, PVOID info, ULONG length,
                                PULONG returned, NTSTATUS *st)
{
    uint8_t small[600];
    if (!values) {
        const KEY_NODE_INFORMATION *node = it->info;
        if (klass == KEY_NODE_INFO) {
            *st = copy_answer(node, it->info_len, offsetof(KEY_NODE_INFORMATION, Name), info, length, returned);
            return TRUE;
        }
        if (klass != KEY_BASIC_INFO || node->NameLength > sizeof small - 16)
            return FALSE;
        KEY_BASIC_INFORMATION *basic = (KEY_BASIC_INFORMATION *)small;
        basic->LastWriteTime = node->LastWriteTime;
        basic->TitleIndex = node->TitleIndex;
        basic->NameLength = node->NameLength;
        memcpy(basic->Name, node->Name, node->NameLength);
        *st = copy_answer(basic, offsetof(KEY_BASIC_INFORMATION, Name) + node->NameLength,
                          offsetof(KEY_BASIC_INFORMATION, Name), info, length, returned);
        return TRUE;
    }
    const KEY_VALUE_FULL_INFORMATION *full = it->info;
    if (klass == KEY_VALUE_FULL_INFO) {
        *st = copy_answer(full, it->info_len, offsetof(KEY_VALUE_FULL_INFORMATION, Name), info, length, returned);
        return TRUE;
    }
    if (full->DataOffset > it->info_len || full->DataLength > it->info_len - full->DataOffset)
        return FALSE;
    ULONG need = klass == KEY_VALUE_BASIC_INFO ? offsetof(KEY_VALUE_BASIC_INFORMATION, Name) + full->NameLength
               : klass == KEY_VALUE_PARTIAL_INFO ? offsetof(KEY_VALUE_PARTIAL_INFORMATION, Data) + full->DataLength
                                                 : 0;
    if (!need)
        return FALSE;
    uint8_t *out = need <= sizeof small ? small : HeapAlloc(GetProcessHeap(), 0, need);
    if (!out)
        return FALSE;
    if (klass == KEY_VALUE_BASIC_INFO) {
        KEY_VALUE_BASIC_INFORMATION *b = (KEY_VALUE_BASIC_INFORMATION *)out;
        b->TitleIndex = full->TitleIndex;
        b->Type = full->Type;
        b->NameLength = full->NameLength;
        memcpy(b->Name, full->Name, full->NameLength);
        *st = copy_answer(b, need, offsetof(KEY_VALUE_BASIC_INFORMATION, Name), info, length, returned);
    } else {
        KEY_VALUE_PARTIAL_INFORMATION *p = (KEY_VALUE_PARTIAL_INFORMATION *)out;
        p->TitleIndex = full->TitleIndex;
        p->Type = full->Type;
        p->DataLength = full->DataLength;
        memcpy(p->Data, (const uint8_t *)full + full->DataOffset, full->DataLength);
        *st = copy_answer(p, need, offsetof(KEY_VALUE_PARTIAL_INFORMATION, Data), info, length, returned);
    }
    if (out != small)
        HeapFree(GetProcessHeap(), 0, out);
    return TRUE;
}

/* One enumeration step over a merged listing (subkeys or values). */
static NTSTATUS enumerate_merged(HANDLE handle, ULONG index, ULONG klass, PVOID info, ULONG length,
                                 PULONG returned, BOOL values)
{
    key_handle *kh;
    key_view view;
    NTSTATUS st = read_view(handle, &kh, &view, values ? KEY_QUERY_VALUE : KEY_ENUMERATE_SUB_KEYS);
    NtEnumerateKey_fn real = values ? real_NtEnumerateValueKey : real_NtEnumerateKey;
    if (!kh)
        return real(handle, index, klass, info, length, returned);
    BOOL filtered = !values && st >= 0 && view.verdict == REG_VERDICT_HOST && lists_box_trees(kh);
    if (!filtered &&
        (st < 0 || view.verdict == REG_VERDICT_HOST || (view.verdict != REG_VERDICT_MERGED && view.box))) {
        /* One source: no merge to do. */
        key_handle_release(kh);
        if (st < 0)
            return st;
        if (view.verdict != REG_VERDICT_HOST && values) {
            /* A box-only key has no tombstones; a merged one is handled below. */
        }
        return real(view.verdict == REG_VERDICT_HOST ? view.host : view.box, index, klass, info, length, returned);
    }
    AcquireSRWLockExclusive(&kh->lock);
    key_listing *l = values ? &kh->values : &kh->subkeys;
    st = values ? key_listing_values(kh, &view, index == 0 || !l->valid)
                : key_listing_subkeys(kh, &view, index == 0 || !l->valid);
    HANDLE source = NULL;
    ULONG source_index = 0;
    BOOL answered = FALSE;
    if (st >= 0) {
        if (index >= l->count) {
            st = STATUS_NO_MORE_ENTRIES;
        } else if (l->items[index].info) {
            answered = answer_from_listing(&l->items[index], values, klass, info, length, returned, &st);
        }
        if (st >= 0 && !answered && index < l->count) {
            source = l->items[index].from_box ? view.box : view.host;
            source_index = l->items[index].index;
        }
    }
    ReleaseSRWLockExclusive(&kh->lock);
    if (answered) {
        key_handle_release(kh);
        return st;
    }
    key_handle_release(kh);
    if (st < 0)
        return st;
    return real(source, source_index, klass, info, length, returned);
}

static NTSTATUS NTAPI box_NtEnumerateKey(HANDLE key, ULONG index, ULONG klass, PVOID info, ULONG length,
                                         PULONG returned)
{
    return enumerate_merged(key, index, klass, info, length, returned, FALSE);
}

static NTSTATUS NTAPI box_NtEnumerateValueKey(HANDLE key, ULONG index, ULONG klass, PVOID info, ULONG length,
                                              PULONG returned)
{
    return enumerate_merged(key, index, klass, info, length, returned, TRUE);
}

/* KeyNameInformation: the host path, whatever key answers. */
static NTSTATUS fill_name(const key_handle *kh, PVOID info, ULONG length, PULONG returned)
{
    ULONG need = (ULONG)(sizeof(ULONG) + kh->len * 2);
    if (returned)
        *returned = need;
    if (length < sizeof(ULONG))
        return STATUS_BUFFER_TOO_SMALL;
    *(ULONG *)info = (ULONG)(kh->len * 2);
    ULONG room = length - sizeof(ULONG);
    memcpy((uint8_t *)info + sizeof(ULONG), kh->path, room < kh->len * 2 ? room : kh->len * 2);
    return length < need ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}

/* KeyFull/KeyCachedInformation of a merged key: the box key's answer (or
 * the host's) with the merged counts and maximum lengths. The maxima are
 * the registry's own (Wine computes them from the key's present subkeys
 * and values), so they are taken from the merged listings too: a host
 * subkey the box deleted, or a value tombstone, must not count. */
static NTSTATUS query_merged_counts(key_handle *kh, const key_view *view, ULONG klass, PVOID info, ULONG length,
                                    PULONG returned)
{
    HANDLE first = view->host ? view->host : view->box;
    NTSTATUS st = real_NtQueryKey(first, klass, info, length, returned);
    if (st < 0)
        return st;
    ULONG max_name = 0, max_class = 0, max_value_name = 0, max_data = 0;
    AcquireSRWLockExclusive(&kh->lock);
    st = key_listing_subkeys(kh, view, TRUE);
    if (st >= 0)
        st = key_listing_values(kh, view, TRUE);
    ULONG subkeys = (ULONG)kh->subkeys.count, values = (ULONG)kh->values.count;
    for (size_t i = 0; st >= 0 && i < kh->subkeys.count; i++) {
        const key_listing_item *it = &kh->subkeys.items[i];
        const KEY_NODE_INFORMATION *node = it->info;
        if ((ULONG)(it->len * 2) > max_name)
            max_name = (ULONG)(it->len * 2);
        if (node && it->info_len >= offsetof(KEY_NODE_INFORMATION, Name) && node->ClassLength > max_class)
            max_class = node->ClassLength;
    }
    for (size_t i = 0; st >= 0 && i < kh->values.count; i++) {
        const key_listing_item *it = &kh->values.items[i];
        const KEY_VALUE_FULL_INFORMATION *v = it->info;
        if ((ULONG)(it->len * 2) > max_value_name)
            max_value_name = (ULONG)(it->len * 2);
        if (v && it->info_len >= offsetof(KEY_VALUE_FULL_INFORMATION, Name) && v->DataLength > max_data)
            max_data = v->DataLength;
    }
    ReleaseSRWLockExclusive(&kh->lock);
    if (st < 0)
        return st;
    if (klass == KEY_FULL_INFO) {
        KEY_FULL_INFORMATION *f = info;
        f->SubKeys = subkeys;
        f->Values = values;
        f->MaxNameLen = max_name;
        f->MaxClassLen = max_class;
        f->MaxValueNameLen = max_value_name;
        f->MaxValueDataLen = max_data;
    } else {
        KEY_CACHED_INFORMATION *c = info;
        c->SubKeys = subkeys;
        c->Values = values;
        c->MaxNameLen = max_name;
        c->MaxValueNameLen = max_value_name;
        c->MaxValueDataLen = max_data;
    }
    return STATUS_SUCCESS;
}

static NTSTATUS NTAPI box_NtQueryKey(HANDLE key, ULONG klass, PVOID info, ULONG length, PULONG returned)
{
    key_handle *kh;
    key_view view;
    NTSTATUS st = read_view(key, &kh, &view, klass == KEY_NAME_INFO ? 0 : KEY_QUERY_VALUE);
    if (!kh)
        return real_NtQueryKey(key, klass, info, length, returned);
    if (klass == KEY_NAME_INFO) {
        /* The host key's own answer when there is one (its spelling). */
        st = view.host ? real_NtQueryKey(view.host, klass, info, length, returned)
                       : fill_name(kh, info, length, returned);
    } else if (st < 0) {
        /* deleted: the status says so */
    } else if ((view.verdict == REG_VERDICT_MERGED || lists_box_trees(kh)) &&
               (klass == KEY_FULL_INFO || klass == KEY_CACHED_INFO)) {
        st = query_merged_counts(kh, &view, klass, info, length, returned);
    } else {
        /* Basic and node information name the key's last component only;
         * the host key answers for a merged key (its class, its time). */
        HANDLE source = view.verdict == REG_VERDICT_HOST ? view.host : view.host ? view.host : view.box;
        if (view.verdict == REG_VERDICT_BOX || view.verdict == REG_VERDICT_BOX_BELOW)
            source = view.box;
        st = real_NtQueryKey(source, klass, info, length, returned);
    }
    key_handle_release(kh);
    return st;
}

/* Values by name, each through the merged view; the data go one after the
 * other into the buffer, as the real call lays them out. */
static NTSTATUS NTAPI box_NtQueryMultipleValueKey(HANDLE key, PVOID entries_arg, ULONG count, PVOID buffer,
                                                  PULONG length, PULONG required)
{
    key_handle *kh;
    key_view view;
    NTSTATUS st = read_view(key, &kh, &view, KEY_QUERY_VALUE);
    if (!kh || (st >= 0 && view.verdict == REG_VERDICT_HOST)) {
        if (kh)
            key_handle_release(kh);
        return real_NtQueryMultipleValueKey(st >= 0 && kh ? view.host : key, entries_arg, count, buffer, length,
                                            required);
    }
    key_handle_release(kh);
    if (st < 0)
        return st;
    KEY_VALUE_ENTRY_FVM *entries = entries_arg;
    ULONG room = length ? *length : 0, used = 0;
    NTSTATUS result = STATUS_SUCCESS;
    for (ULONG i = 0; i < count; i++) {
        ULONG got = 0;
        union {
            KEY_VALUE_PARTIAL_INFORMATION info;
            uint8_t bytes[sizeof(KEY_VALUE_PARTIAL_INFORMATION) + 64];
        } small;
        KEY_VALUE_PARTIAL_INFORMATION *p = &small.info;
        st = box_NtQueryValueKey(key, entries[i].ValueName, KEY_VALUE_PARTIAL_INFO, p, sizeof small, &got);
        if (st == STATUS_BUFFER_OVERFLOW) {
            p = HeapAlloc(GetProcessHeap(), 0, got);
            if (!p)
                return STATUS_NO_MEMORY;
            st = box_NtQueryValueKey(key, entries[i].ValueName, KEY_VALUE_PARTIAL_INFO, p, got, &got);
        }
        if (st < 0) {
            if (p != &small.info)
                HeapFree(GetProcessHeap(), 0, p);
            return st;
        }
        entries[i].Type = p->Type;
        entries[i].DataLength = p->DataLength;
        entries[i].DataOffset = used;
        if (used + p->DataLength <= room && buffer)
            memcpy((uint8_t *)buffer + used, p->Data, p->DataLength);
        else
            result = STATUS_BUFFER_OVERFLOW;
        used += p->DataLength;
        if (p != &small.info)
            HeapFree(GetProcessHeap(), 0, p);
    }
    if (required)
        *required = used;
    if (length && result >= 0)
        *length = used;
    return result;
}

void key_read_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtQueryKey);
    FVM_HOOK(table, "ntdll.dll", NtQueryValueKey);
    FVM_HOOK(table, "ntdll.dll", NtEnumerateKey);
    FVM_HOOK(table, "ntdll.dll", NtEnumerateValueKey);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtQueryMultipleValueKey);
}

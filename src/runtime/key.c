/* key.c - registry keys: copy-on-write of the host registry into the box.
 *
 * The idea. A boxed program reads the host registry and writes only into the
 * box's own key tree, which lives in the registry itself under
 * \REGISTRY\USER\FVM.<hash of the box path> (the broker loads it from and
 * saves it to <box>\registry.dat). Below that root the tree mirrors host
 * paths: HKLM\Software\X is <root>\MACHINE\Software\X. Because box keys are
 * real keys, every process of the box sees a change at once and handles
 * behave as handles do.
 *
 * What the box did to each key is in the box index (file_index.c, shared
 * with the file virtualizer): COPIED (the box key merges over the host's),
 * CREATED or OPAQUE (the box key alone), TOMBSTONE (deleted; hides all below).
 * A deleted value is a value of type REG_FVM_DELETED in the box key. So the
 * question asked on every call - "has the box touched this key?" - is a few
 * loads from shared memory, and an untouched key costs no extra system call.
 *
 * Handles. An open of an untouched key returns the host key, opened without
 * write rights whatever the program asked for; the rights it asked for are
 * remembered in a per-process table (handle -> host path, rights, policy
 * action). The first change through such a handle copies the key up - the
 * box key and its parents are created, empty, and the index notes them - and
 * the change is made in the box key. An open of a key the box has touched
 * returns the box key itself. Reads through either kind look at the index
 * first and merge box and host (key_read.c). Writing never needs the host
 * key to be writable, so no handle a boxed program holds can change it.
 *
 * The policy decides first for every key name: `deny` and `hide` refuse,
 * `open` gives the host key as asked (writes included), `read` the host key
 * without write rights; `cow` is the above. Names are canonical: the
 * absolute name ("\REGISTRY\MACHINE\...", "\REGISTRY\USER\<SID>\..."), made
 * from RootDirectory's path (from the table, or its name) and the relative
 * name. Hive loading and transacted keys are refused. Link keys the box
 * makes are plain box keys that key.c follows itself, by name, before the
 * policy decides (see "link keys" below): Wine never follows a link in the
 * box tree, so a link cannot point a box write at a host key. */
#include "runtime/key.h"
#include "runtime/guard.h"

#include "core/objname.h"
#include "core/regbase.h"

#define KEY_WRITE_RIGHTS (KEY_SET_VALUE | KEY_CREATE_SUB_KEY | KEY_CREATE_LINK | DELETE | WRITE_DAC | WRITE_OWNER)
#define KEY_GENERIC_MASK (GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL | MAXIMUM_ALLOWED)
#define REG_OPTION_CREATE_LINK_FVM 0x00000002
#define REG_CREATED_NEW_KEY_FVM 1
#define REG_OPENED_EXISTING_KEY_FVM 2

NtCreateKey_fn real_NtCreateKey;
NtOpenKey_fn real_NtOpenKey;
NtSetValueKey_fn real_NtSetValueKey;
NtQueryKey_fn real_NtQueryKey;
NtDeleteValueKey_fn real_NtDeleteValueKey;
static NtOpenKeyEx_fn real_NtOpenKeyEx;
NtHandleOp_fn real_NtDeleteKey;
typedef NTSTATUS (NTAPI *NtSetInformationKey_fn)(HANDLE, ULONG, PVOID, ULONG);
typedef NTSTATUS (NTAPI *NtRestoreKey_fn)(HANDLE, HANDLE, ULONG);
typedef NTSTATUS (NTAPI *NtNotifyChangeKey_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, ULONG,
                                               BOOLEAN, PVOID, ULONG, BOOLEAN);
typedef NTSTATUS (NTAPI *NtNotifyChangeMultipleKeys_fn)(HANDLE, ULONG, OBJECT_ATTRIBUTES *, HANDLE,
                                                        PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, ULONG, BOOLEAN,
                                                        PVOID, ULONG, BOOLEAN);
static NtSetInformationKey_fn real_NtSetInformationKey;
static NtRestoreKey_fn real_NtRestoreKey;
static NtNotifyChangeKey_fn real_NtNotifyChangeKey;
static NtNotifyChangeMultipleKeys_fn real_NtNotifyChangeMultipleKeys;
static void *real_NtLoadKey, *real_NtLoadKey2, *real_NtLoadKeyEx, *real_NtReplaceKey, *real_NtUnloadKey,
    *real_NtCreateKeyTransacted, *real_NtOpenKeyTransacted, *real_NtOpenKeyTransactedEx;

/* "\REGISTRY\USER\FVM.<16 hex>": the box's key tree. */
uint16_t g_key_box_tree[64];
size_t g_key_box_tree_len;
static const uint16_t g_registry_prefix[] = {'\\', 'R', 'E', 'G', 'I', 'S', 'T', 'R', 'Y'};   /* 9 units */
/* Every box's tree starts so; a boxed program may not open any of them. */
static const char g_box_trees_prefix[] = "\\REGISTRY\\USER\\FVM.";

/* ---- names ------------------------------------------------------------------ */

static uint16_t upcase(uint16_t c)
{
    return ntpath_upcase(NULL, c);
}

static BOOL prefix_nocase(const uint16_t *s, size_t n, const uint16_t *prefix, size_t pn)
{
    if (n < pn)
        return FALSE;
    for (size_t i = 0; i < pn; i++)
        if (upcase(s[i]) != upcase(prefix[i]))
            return FALSE;
    return TRUE;
}

static BOOL prefix_ascii_nocase(const uint16_t *s, size_t n, const char *prefix)
{
    size_t pn = strlen(prefix);
    if (n < pn)
        return FALSE;
    for (size_t i = 0; i < pn; i++)
        if (upcase(s[i]) != upcase((uint16_t)(unsigned char)prefix[i]))
            return FALSE;
    return TRUE;
}

/* Each thread keeps one spare key_name in its block (16 KiB: too large
 * for the stack of an arbitrary thread, too costly to allocate on every
 * call). */
key_name *key_name_alloc(void)
{
    fvm_thread *t = fvm_thread_get();
    key_name *spare = t ? t->key_name : NULL;
    if (spare) {
        t->key_name = NULL;
        return spare;
    }
    return HeapAlloc(GetProcessHeap(), 0, sizeof(key_name));
}

void key_name_free(key_name *n)
{
    if (!n)
        return;
    fvm_thread *t = fvm_thread_peek();
    if (t && !t->key_name)
        t->key_name = n;
    else
        HeapFree(GetProcessHeap(), 0, n);
}

static void key_thread_detach(fvm_thread *t)
{
    if (t->key_name) {
        HeapFree(GetProcessHeap(), 0, t->key_name);
        t->key_name = NULL;
    }
}

/* Makes name canonical in place: runs of backslashes read as one and
 * trailing ones dropped, as the registry itself reads a name (Wine and
 * Windows both; core/objname.c), "\REGISTRY" in upper case (the rest as the
 * program spelled it); fills key and hash. FALSE for a name that is no
 * absolute registry name or has a NUL. */
BOOL key_name_finish(key_name *n)
{
    n->len = objname_collapse(n->path, n->len);
    if (!prefix_nocase(n->path, n->len, g_registry_prefix, REGISTRY_PREFIX_UNITS) ||
        (n->len > REGISTRY_PREFIX_UNITS && n->path[REGISTRY_PREFIX_UNITS] != L'\\') ||
        n->len <= REGISTRY_PREFIX_UNITS + 1)
        return FALSE;
    memcpy(n->path, g_registry_prefix, sizeof g_registry_prefix);
    for (size_t i = 0; i < n->len; i++) {
        if (n->path[i] == 0)
            return FALSE;
        n->key[i] = upcase(n->path[i]);
    }
    n->path[n->len] = n->key[n->len] = 0;
    n->hash = boxindex_key_hash(n->key, n->len);
    return TRUE;
}

static BOOL name_set(key_name *n, const uint16_t *units, size_t len)
{
    if (len > KEY_PATH_UNITS)
        return FALSE;
    memcpy(n->path, units, len * 2);
    n->len = len;
    return key_name_finish(n);
}

/* The name of a key handle as the object manager has it, made a host path
 * (a box key's name is mapped back). *in_box tells which it was. */
static BOOL name_of_handle(HANDLE key, key_name *n, BOOL *in_box)
{
    struct {
        ULONG length;
        WCHAR name[KEY_PATH_UNITS + 64];
    } *info = HeapAlloc(GetProcessHeap(), 0, sizeof *info);
    ULONG got = 0;
    BOOL ok = FALSE;
    if (info && real_NtQueryKey(key, KEY_NAME_INFO, info, sizeof *info, &got) >= 0) {
        const uint16_t *s = (const uint16_t *)info->name;
        size_t len = info->length / 2;
        *in_box = FALSE;
        if (prefix_nocase(s, len, g_key_box_tree, g_key_box_tree_len) &&
            (len == g_key_box_tree_len || s[g_key_box_tree_len] == L'\\')) {
            /* <tree>\MACHINE\X -> \REGISTRY\MACHINE\X */
            *in_box = TRUE;
            if (len > g_key_box_tree_len && len - g_key_box_tree_len + REGISTRY_PREFIX_UNITS <= KEY_PATH_UNITS) {
                memcpy(n->path, g_registry_prefix, sizeof g_registry_prefix);
                memcpy(n->path + REGISTRY_PREFIX_UNITS, s + g_key_box_tree_len, (len - g_key_box_tree_len) * 2);
                n->len = REGISTRY_PREFIX_UNITS + len - g_key_box_tree_len;
                ok = key_name_finish(n);
            }
        } else {
            ok = name_set(n, s, len);
        }
    }
    if (info)
        HeapFree(GetProcessHeap(), 0, info);
    return ok;
}

/* The full host name an OBJECT_ATTRIBUTES designate, or the status the
 * call is refused with (audited): a name FVM cannot make canonical is never
 * passed to the host as the program spelled it (issue 19). The registry's
 * reading of a name (runs of separators as one) is core/objname.c's. */
static NTSTATUS name_of_attributes(const OBJECT_ATTRIBUTES *oa, key_name *n, const char *op)
{
    if (!oa || !oa->ObjectName)
        return STATUS_ACCESS_VIOLATION;   /* what the real call says */
    NTSTATUS st = runtime_name_gate(POLICY_TYPE_KEY, op, oa->ObjectName,
                                    OBJNAME_COLLAPSES | OBJNAME_ALLOW_EMPTY | (op[0] == 'o' ? RUNTIME_NAME_OPEN : 0));
    if (st < 0)
        return st;
    const uint16_t *rel = (const uint16_t *)oa->ObjectName->Buffer;
    size_t rel_bytes = oa->ObjectName->Length;
    objname_problem problem;
    if (oa->RootDirectory) {
        key_handle *root = key_handle_get(oa->RootDirectory);
        if (!root) {
            runtime_name_refused(POLICY_TYPE_KEY, op, "a root handle that is no key FVM can name", rel,
                                 rel_bytes / 2);
            return STATUS_INVALID_HANDLE;
        }
        if (root->deleted) {   /* a name below a key this handle deleted: as the host answers */
            key_handle_release(root);
            return STATUS_KEY_DELETED;
        }
        problem = objname_join(OBJNAME_SPACE_KEY, root->path, root->len, rel, rel_bytes, n->path, KEY_PATH_UNITS,
                               &n->len);
        key_handle_release(root);
    } else {
        problem = objname_join(OBJNAME_SPACE_KEY, NULL, 0, rel, rel_bytes, n->path, KEY_PATH_UNITS, &n->len);
    }
    if (problem == OBJNAME_OK && key_name_finish(n))
        return STATUS_SUCCESS;
    if (problem == OBJNAME_OK)
        problem = OBJNAME_OUTSIDE_NAMESPACE;
    runtime_name_refused(POLICY_TYPE_KEY, op, objname_problem_text(problem), rel, rel_bytes / 2);
    return runtime_name_status(problem);
}

/* "<tree>\MACHINE\X" for "\REGISTRY\MACHINE\X", into out (cap units). */
static size_t box_path_of(const key_name *n, uint16_t *out, size_t cap)
{
    size_t rest = n->len - REGISTRY_PREFIX_UNITS;
    if (g_key_box_tree_len + rest + 1 > cap)
        return 0;
    memcpy(out, g_key_box_tree, g_key_box_tree_len * 2);
    memcpy(out + g_key_box_tree_len, n->path + REGISTRY_PREFIX_UNITS, rest * 2);
    out[g_key_box_tree_len + rest] = 0;
    return g_key_box_tree_len + rest;
}

void key_attributes_for(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, const uint16_t *path, size_t len,
                           HANDLE root)
{
    us->Buffer = (PWSTR)path;
    us->Length = us->MaximumLength = (USHORT)(len * 2);
    InitializeObjectAttributes(oa, us, OBJ_CASE_INSENSITIVE, root, NULL);
}

void close_key(HANDLE key)
{
    NtClose(key);
}

/* Opens the host key at n (read rights only) or the box key (all rights). */
static NTSTATUS open_host(const key_name *n, ACCESS_MASK access, HANDLE *out)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    key_attributes_for(&oa, &us, n->path, n->len, NULL);
    return real_NtOpenKey(out, access, &oa);
}

static NTSTATUS open_box(const key_name *n, ACCESS_MASK access, HANDLE *out)
{
    uint16_t *path = HeapAlloc(GetProcessHeap(), 0, (KEY_PATH_UNITS + 80) * 2);
    if (!path)
        return STATUS_NO_MEMORY;
    size_t len = box_path_of(n, path, KEY_PATH_UNITS + 80);
    NTSTATUS st = STATUS_OBJECT_NAME_INVALID;
    if (len) {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        key_attributes_for(&oa, &us, path, len, NULL);
        st = real_NtOpenKey(out, access, &oa);
    }
    HeapFree(GetProcessHeap(), 0, path);
    return st;
}

/* ---- the handle table ----------------------------------------------------------- */

/* Entries live in the runtime's handle registry (handles.c), one per
 * handle, reference-counted: a call in flight keeps its entry alive across a
 * concurrent close. */
#define TAG_KEY_HANDLE 1

static void listing_clear(key_listing *l)
{
    for (size_t i = 0; i < l->count; i++) {
        HeapFree(GetProcessHeap(), 0, l->items[i].name);
        if (l->items[i].info)
            HeapFree(GetProcessHeap(), 0, l->items[i].info);
    }
    if (l->items)
        HeapFree(GetProcessHeap(), 0, l->items);
    l->items = NULL;
    l->count = 0;
    l->valid = FALSE;
}

void key_handle_release(key_handle *kh)
{
    if (!kh || InterlockedDecrement(&kh->refs) != 0)
        return;
    if (kh->own_box)
        close_key(kh->own_box);
    if (kh->own_host)
        close_key(kh->own_host);
    listing_clear(&kh->subkeys);
    listing_clear(&kh->values);
    HeapFree(GetProcessHeap(), 0, kh);
}

key_handle *key_entry_new(HANDLE handle, const key_name *n, int kind, ACCESS_MASK asked, policy_action action)
{
    key_handle *kh = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *kh + (n->len + 1) * 4);
    if (!kh)
        return NULL;
    kh->refs = 1;
    kh->handle = handle;
    kh->kind = kind;
    kh->asked = asked;
    kh->action = action;
    InitializeSRWLock(&kh->lock);
    kh->len = n->len;
    kh->hash = n->hash;
    kh->path = (uint16_t *)(kh + 1);
    kh->key = kh->path + n->len + 1;
    memcpy(kh->path, n->path, (n->len + 1) * 2);
    memcpy(kh->key, n->key, (n->len + 1) * 2);
    return kh;
}

static void retain(void *data, void *ctx)
{
    InterlockedIncrement(&((key_handle *)data)->refs);
}

/* Puts an entry in the table (replacing a stale one for the same handle
 * value, whose close FVM did not see). */
void key_table_put(key_handle *kh)
{
    if (!handle_put(kh->handle, &key_virtualizer, TAG_KEY_HANDLE, kh))
        key_handle_release(kh);
}

static key_handle *table_find(HANDLE handle)
{
    return handle_find(handle, &key_virtualizer, TAG_KEY_HANDLE, retain, NULL);
}

static void key_handle_closed(HANDLE handle, unsigned tag, void *data)
{
    key_handle_release(data);
}

static ACCESS_MASK map_generic(ACCESS_MASK access)
{
    if (access & (GENERIC_ALL | MAXIMUM_ALLOWED))
        access |= KEY_ALL_ACCESS;
    if (access & GENERIC_READ)
        access |= KEY_READ;
    if (access & GENERIC_WRITE)
        access |= KEY_WRITE;
    if (access & GENERIC_EXECUTE)
        access |= KEY_EXECUTE;
    return access & ~KEY_GENERIC_MASK;
}

static ACCESS_MASK read_part(ACCESS_MASK access)
{
    ACCESS_MASK read = map_generic(access) & ~KEY_WRITE_RIGHTS;
    return read ? read : KEY_QUERY_VALUE;
}

static policy_action decide(const key_name *n, const char *op)
{
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_KEY, n->path, n->len, &d);
    runtime_audit(POLICY_TYPE_KEY, op, &d, n->path, n->len);
    return action;
}

key_handle *key_handle_get(HANDLE handle)
{
    if (!handle)
        return NULL;
    key_handle *kh = table_find(handle);
    if (kh)
        return kh;
    /* A handle FVM did not open (inherited, duplicated): name it once. */
    key_name *n = key_name_alloc();
    BOOL in_box = FALSE;
    if (!n || !name_of_handle(handle, n, &in_box)) {
        key_name_free(n);
        return NULL;
    }
    OBJECT_BASIC_INFORMATION basic;
    ACCESS_MASK granted = KEY_READ;
    if (real_NtQueryObject && real_NtQueryObject(handle, ObjectBasicInformation, &basic, sizeof basic, NULL) >= 0)
        granted = basic.GrantedAccess;
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_KEY, n->path, n->len, &d);
    kh = key_entry_new(handle, n, in_box ? HANDLE_IS_BOX : HANDLE_IS_HOST, map_generic(granted), action == POLICY_ACTION_OPEN   ? POLICY_ACTION_OPEN
                                                           : action == POLICY_ACTION_READ ? POLICY_ACTION_READ
                                                                                          : POLICY_ACTION_COW);
    key_name_free(n);
    if (!kh)
        return NULL;
    InterlockedIncrement(&kh->refs);
    key_table_put(kh);
    return kh;
}

/* ---- views and copy-up --------------------------------------------------------------- */

/* The host key for a read needing rights need: the program's handle when
 * it is the host key with those rights, else FVM's own, opened on demand. */
static HANDLE lazy_host(key_handle *kh, ACCESS_MASK need)
{
    if (kh->kind == HANDLE_IS_HOST && (read_part(kh->asked) & need) == need)
        return kh->handle;
    if (!kh->own_host) {
        key_name *n = key_name_alloc();
        HANDLE h;
        if (n && name_set(n, kh->path, kh->len) && open_host(n, KEY_READ, &h) >= 0)
            kh->own_host = h;
        key_name_free(n);
    }
    return kh->own_host;
}

/* The box key, likewise (FVM's own has every right). */
static HANDLE lazy_box(key_handle *kh, ACCESS_MASK need)
{
    if (kh->kind == HANDLE_IS_BOX && (kh->asked & need) == need)
        return kh->handle;
    if (!kh->own_box) {
        key_name *n = key_name_alloc();
        HANDLE h;
        if (n && name_set(n, kh->path, kh->len) && open_box(n, KEY_ALL_ACCESS & ~KEY_CREATE_LINK, &h) >= 0)
            kh->own_box = h;
        key_name_free(n);
    }
    return kh->own_box;
}

NTSTATUS key_view_of(key_handle *kh, key_view *view, ACCESS_MASK need)
{
    return key_view_parts(kh, view, need, TRUE);
}

NTSTATUS key_view_parts(key_handle *kh, key_view *view, ACCESS_MASK need, BOOL with_host)
{
    view->box = view->host = NULL;
    if (kh->deleted)
        return STATUS_KEY_DELETED;
    view->verdict = index_check_registry(kh->key, kh->len, kh->hash);
    switch (view->verdict) {
    case REG_VERDICT_DELETED:
        return STATUS_KEY_DELETED;
    case REG_VERDICT_HOST:
        view->host = lazy_host(kh, need);
        if (!view->host && kh->kind == HANDLE_IS_BOX)
            view->host = kh->handle;   /* the index forgot the key (discarded): keep working */
        return view->host ? STATUS_SUCCESS : STATUS_KEY_DELETED;
    case REG_VERDICT_MERGED:
        view->box = lazy_box(kh, need);
        view->host = with_host ? lazy_host(kh, need) : NULL;
        return STATUS_SUCCESS;
    default:
        view->box = lazy_box(kh, need);
        return view->box ? STATUS_SUCCESS : STATUS_KEY_DELETED;
    }
}

/* The fingerprint of the host key's values at path[0..len) (core/regbase.h),
 * recorded as the key's base when the box first copies it up: fvm commit
 * compares it with the host's values then (a host change since is a
 * conflict). FALSE when the host key cannot be read (no base recorded). */
static BOOL host_values_base(const uint16_t *path, size_t len, boxindex_base *out)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    HANDLE key;
    key_attributes_for(&oa, &us, path, len, NULL);
    if (real_NtOpenKey(&key, KEY_QUERY_VALUE, &oa) < 0)
        return FALSE;
    regbase_ctx ctx;
    regbase_init(&ctx);
    ULONG size = 1024;
    KEY_VALUE_FULL_INFORMATION *info = HeapAlloc(GetProcessHeap(), 0, size);
    NTSTATUS st = info ? STATUS_SUCCESS : STATUS_NO_MEMORY;
    for (ULONG i = 0; st >= 0; i++) {
        ULONG got = 0;
        st = real_NtEnumerateValueKey(key, i, KEY_VALUE_FULL_INFO, info, size, &got);
        if (st == STATUS_BUFFER_OVERFLOW || st == STATUS_BUFFER_TOO_SMALL) {
            HeapFree(GetProcessHeap(), 0, info);
            size = got + 64;
            info = HeapAlloc(GetProcessHeap(), 0, size);
            st = info ? STATUS_SUCCESS : STATUS_NO_MEMORY;
            i--;
            continue;
        }
        if (st == STATUS_NO_MORE_ENTRIES) {
            st = STATUS_SUCCESS;
            break;
        }
        if (st >= 0)
            regbase_add_value(&ctx, info->Name, info->NameLength / 2, info->Type,
                              (const uint8_t *)info + info->DataOffset, info->DataLength);
    }
    if (info)
        HeapFree(GetProcessHeap(), 0, info);
    close_key(key);
    if (st < 0)
        return FALSE;
    regbase_final(&ctx, out);
    return TRUE;
}

/* Notes a host key's copy-up in the index, with its values' base. */
static NTSTATUS note_copied_key(const key_name *n, size_t len)
{
    boxindex_base base;
    return index_note_registry_base(REG_INDEX_COPY_UP, n->key, n->path, len, BOXINDEX_FLAG_DIRECTORY,
                                    host_values_base(n->path, len, &base) ? &base : NULL);
}

/* Creates the box key at n and every key above it that the box lacks, and
 * records in the index the keys above that the box had not touched
 * (COPIED: their view must now merge the box's), and n itself: COPIED when
 * the host has it, else CREATED. Returns the box key (all rights). */
NTSTATUS key_copy_up(const key_name *n, BOOL host_has_it, ULONG options, HANDLE *out)
{
    NTSTATUS st = open_box(n, KEY_ALL_ACCESS & ~KEY_CREATE_LINK, out);
    if (st < 0) {
        uint16_t *path = HeapAlloc(GetProcessHeap(), 0, (KEY_PATH_UNITS + 80) * 2);
        if (!path)
            return STATUS_NO_MEMORY;
        size_t len = box_path_of(n, path, KEY_PATH_UNITS + 80);
        HANDLE parent = NULL;
        st = len ? STATUS_SUCCESS : STATUS_OBJECT_NAME_INVALID;
        /* Level by level from the tree's root: one create per missing key,
         * each relative to its parent (the registry judges a volatile
         * parent through the handle it is given). */
        size_t start = 0;
        for (size_t end = g_key_box_tree_len; st >= 0 && end <= len; end++) {
            if (end < len && path[end] != L'\\')
                continue;
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            HANDLE next;
            key_attributes_for(&oa, &us, path + start, end - start, parent);
            start = end + 1;
            /* The key itself volatile if asked (its children must then be
             * too: Wine refuses a stable one, as the host does). */
            st = real_NtCreateKey(&next, KEY_ALL_ACCESS & ~KEY_CREATE_LINK, &oa, 0, NULL,
                                  end == len ? options & REG_OPTION_VOLATILE : 0, NULL);
            if (parent)
                close_key(parent);
            parent = st >= 0 ? next : NULL;
        }
        HeapFree(GetProcessHeap(), 0, path);
        if (st < 0)
            return st;
        *out = parent;
    }
    /* The index: keys above first ("\REGISTRY\X" is the first level). */
    for (size_t end = REGISTRY_PREFIX_UNITS + 1; end < n->len; end++) {
        if (n->path[end] != L'\\')
            continue;
        uint64_t h = boxindex_key_hash(n->key, end);
        reg_verdict v = index_check_registry(n->key, end, h);
        if (v == REG_VERDICT_BOX || v == REG_VERDICT_BOX_BELOW)
            break;   /* below a box-only key the box is the whole truth */
        if (v == REG_VERDICT_HOST)
            note_copied_key(n, end);
    }
    reg_verdict own = index_check_registry(n->key, n->len, n->hash);
    if (options & REG_OPTION_CREATE_LINK_FVM)   /* a link key is always in the index: key.c follows it */
        st = index_note_registry(REG_INDEX_CREATE, n->key, n->path, n->len,
                                 BOXINDEX_FLAG_DIRECTORY | REG_INDEX_FLAG_LINK);
    else if (own == REG_VERDICT_HOST && host_has_it)
        st = note_copied_key(n, n->len);
    else if (own == REG_VERDICT_HOST || own == REG_VERDICT_DELETED)
        st = index_note_registry(REG_INDEX_CREATE, n->key, n->path, n->len, BOXINDEX_FLAG_DIRECTORY);
    if (st < 0) {
        close_key(*out);
        *out = NULL;
    }
    return st;
}

/* The box key a change through kh goes to, copied up if need be. */
static NTSTATUS box_for_change(key_handle *kh, HANDLE *out)
{
    if (kh->kind == HANDLE_IS_BOX) {
        *out = kh->handle;
        return STATUS_SUCCESS;
    }
    AcquireSRWLockExclusive(&kh->lock);
    NTSTATUS st = STATUS_SUCCESS;
    reg_verdict v = index_check_registry(kh->key, kh->len, kh->hash);
    if (v == REG_VERDICT_DELETED)
        st = STATUS_KEY_DELETED;
    else if (!kh->own_box || v == REG_VERDICT_HOST) {
        key_name *n = key_name_alloc();
        if (!n || !name_set(n, kh->path, kh->len)) {
            st = STATUS_NO_MEMORY;
        } else {
            HANDLE h = NULL;
            st = key_copy_up(n, v != REG_VERDICT_BOX && v != REG_VERDICT_BOX_BELOW, 0, &h);
            if (st >= 0) {
                if (kh->own_box)
                    close_key(h);
                else
                    kh->own_box = h;
            }
        }
        key_name_free(n);
    }
    *out = kh->own_box;
    ReleaseSRWLockExclusive(&kh->lock);
    return st;
}

/* ---- opens and creates ---------------------------------------------------------------------- */

/* Whether the key at n exists in the box's view (for a create's parent). */
BOOL key_exists_in_view(const key_name *n)
{
    HANDLE h;
    switch (index_check_registry(n->key, n->len, n->hash)) {
    case REG_VERDICT_DELETED:
        return FALSE;
    case REG_VERDICT_MERGED:
        return TRUE;
    case REG_VERDICT_HOST:
        if (open_host(n, KEY_QUERY_VALUE, &h) < 0)
            return FALSE;
        break;
    default:
        if (open_box(n, KEY_QUERY_VALUE, &h) < 0)
            return FALSE;
        break;
    }
    close_key(h);
    return TRUE;
}

static BOOL parent_exists(const key_name *n)
{
    size_t end = n->len;
    while (end > 0 && n->path[end - 1] != L'\\')
        end--;
    if (end <= REGISTRY_PREFIX_UNITS + 1)
        return TRUE;   /* a hive's root: \REGISTRY itself */
    key_name *parent = key_name_alloc();
    BOOL yes = parent && name_set(parent, n->path, end - 1) && key_exists_in_view(parent);
    key_name_free(parent);
    return yes;
}

typedef struct open_request {
    ACCESS_MASK access;
    POBJECT_ATTRIBUTES oa;
    ULONG open_options;          /* NtOpenKeyEx */
    BOOL create;
    ULONG title_index;
    PUNICODE_STRING klass;
    ULONG create_options;
    PULONG disposition;
} open_request;

/* The call against the host, by the name decided on (never the program's
 * own spelling, which the registry might read differently), with write
 * rights withheld unless the policy opens the key. */
static NTSTATUS real_open(HANDLE *out, const open_request *r, const key_name *n, ACCESS_MASK access)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    key_attributes_for(&oa, &us, n->path, n->len, NULL);
    oa.Attributes = r->oa->Attributes;
    oa.SecurityDescriptor = r->oa->SecurityDescriptor;
    oa.SecurityQualityOfService = r->oa->SecurityQualityOfService;
    if (r->create)
        return real_NtCreateKey(out, access, &oa, r->title_index, r->klass, r->create_options, r->disposition);
    if (r->open_options && real_NtOpenKeyEx)
        return real_NtOpenKeyEx(out, access, &oa, r->open_options);
    return real_NtOpenKey(out, access, &oa);
}

static NTSTATUS open_in_box(HANDLE *out, const open_request *r, const key_name *n, ACCESS_MASK access,
                            BOOL *created)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    uint16_t *path = HeapAlloc(GetProcessHeap(), 0, (KEY_PATH_UNITS + 80) * 2);
    if (!path)
        return STATUS_NO_MEMORY;
    size_t len = box_path_of(n, path, KEY_PATH_UNITS + 80);
    key_attributes_for(&oa, &us, path, len, NULL);
    oa.Attributes = r->oa->Attributes;
    NTSTATUS st;
    HANDLE parent = NULL;
    if (r->create) {
        /* Relative to the box parent, as the program's create is relative
         * to its parent (Wine refuses a stable key under a volatile one
         * only so: the host's answer). */
        size_t cut = len;
        while (cut > g_key_box_tree_len && path[cut - 1] != L'\\')
            cut--;
        if (cut > g_key_box_tree_len + 1) {
            OBJECT_ATTRIBUTES poa;
            UNICODE_STRING pus;
            key_attributes_for(&poa, &pus, path, cut - 1, NULL);
            if (real_NtOpenKey(&parent, KEY_CREATE_SUB_KEY, &poa) >= 0)
                key_attributes_for(&oa, &us, path + cut, len - cut, parent);
            else
                parent = NULL;
            oa.Attributes = r->oa->Attributes;
        }
        ULONG disposition = 0;
        /* Never a link at Wine's level: box link keys are plain keys that
         * key.c follows itself (follow_link). */
        st = real_NtCreateKey(out, access, &oa, r->title_index, r->klass,
                              r->create_options & ~REG_OPTION_CREATE_LINK_FVM, &disposition);
        *created = disposition == REG_CREATED_NEW_KEY_FVM;
    } else {
        st = real_NtOpenKey(out, access, &oa);
        *created = FALSE;
    }
    if (parent)
        close_key(parent);
    HeapFree(GetProcessHeap(), 0, path);
    return st;
}

/* ---- link keys ------------------------------------------------------------------ */

/* A link key the box makes (REG_OPTION_CREATE_LINK) is a plain box key
 * holding the SymbolicLinkValue the program set, marked in the index
 * (REG_INDEX_FLAG_LINK). Wine never sees a link in the box tree, so no real
 * call can be led out of the box by one; key.c follows the link itself, by
 * name, before the policy decides: the name reached is decided and
 * virtualized like any name the program opens (a write through a link to a
 * host key goes to the box's copy of that key). */
#define KEY_LINK_HOPS 16   /* Wine's limit for links to links */
static const WCHAR g_link_value_name[] = L"SymbolicLinkValue";

/* n goes through the box's link key n->path[0..at): n becomes the link's
 * target followed by the rest of n. */
static NTSTATUS follow_link(key_name *n, size_t at)
{
    key_name *link = key_name_alloc();
    struct {
        KEY_VALUE_PARTIAL_INFORMATION v;
        WCHAR more[KEY_PATH_UNITS + 8];
    } *buf = HeapAlloc(GetProcessHeap(), 0, sizeof *buf);
    NTSTATUS st = STATUS_NO_MEMORY;
    HANDLE h;
    if (link && buf && name_set(link, n->path, at) && (st = open_box(link, KEY_QUERY_VALUE, &h)) >= 0) {
        UNICODE_STRING us;
        ULONG got = 0;
        RtlInitUnicodeString(&us, g_link_value_name);
        st = real_NtQueryValueKey(h, &us, KEY_VALUE_PARTIAL_INFO, buf, sizeof *buf, &got);
        close_key(h);
        size_t target = buf->v.DataLength / 2, rest = n->len - at;
        if (st >= 0 && (buf->v.Type != REG_LINK || target + rest > KEY_PATH_UNITS))
            st = STATUS_OBJECT_NAME_NOT_FOUND;
        if (st >= 0) {
            memmove(n->path + target, n->path + at, rest * 2);
            memcpy(n->path, buf->v.Data, target * 2);
            n->len = target + rest;
            if (!key_name_finish(n))   /* no registry name: Wine finds nothing there either */
                st = STATUS_OBJECT_NAME_NOT_FOUND;
        }
    }
    key_name_free(link);
    if (buf)
        HeapFree(GetProcessHeap(), 0, buf);
    return st < 0 && st != STATUS_NO_MEMORY ? STATUS_OBJECT_NAME_NOT_FOUND : st;
}

/* Follows the box's link keys on the way to n (n itself too when whole),
 * as the registry follows links: every component but the last always, the
 * last unless OBJ_OPENLINK. *verdict is the index's verdict on the name
 * reached. */
static NTSTATUS resolve_links(key_name *n, BOOL whole, reg_verdict *verdict)
{
    for (int hops = 0;; hops++) {
        size_t at = 0;
        *verdict = index_check_registry_link(n->key, n->len, n->hash, whole, &at);
        if (!at)
            return STATUS_SUCCESS;
        if (hops == KEY_LINK_HOPS)
            return STATUS_OBJECT_NAME_NOT_FOUND;
        NTSTATUS st = follow_link(n, at);
        if (st < 0)
            return st;
    }
}

/* NtCreateKey with REG_OPTION_CREATE_LINK: a new box key marked as a link
 * (an existing key of that name is a collision, as on the host). */
static NTSTATUS create_link(HANDLE *out, const open_request *r, const key_name *n, reg_verdict verdict,
                            ACCESS_MASK access)
{
    if (verdict != REG_VERDICT_DELETED && key_exists_in_view(n))
        return STATUS_OBJECT_NAME_COLLISION;
    if (!parent_exists(n))
        return STATUS_OBJECT_NAME_NOT_FOUND;
    HANDLE made;
    NTSTATUS st = key_copy_up(n, FALSE, r->create_options, &made);
    if (st < 0)
        return st;
    close_key(made);
    BOOL created;
    return open_in_box(out, r, n, access, &created);
}

/* A value set on a box link key: only SymbolicLinkValue of type REG_LINK
 * (else STATUS_ACCESS_DENIED, as Wine says), and its target must be a name
 * the policy lets the box see and never a box's own tree (refused and
 * audited). A target that is no registry name is kept: following it finds
 * nothing, as on the host. */
static NTSTATUS check_link_value(const UNICODE_STRING *name, ULONG type, const void *data, ULONG size)
{
    size_t units = sizeof g_link_value_name / 2 - 1;
    if (type != REG_LINK || name->Length != units * 2)
        return STATUS_ACCESS_DENIED;
    for (size_t i = 0; i < units; i++)
        if (upcase(name->Buffer[i]) != upcase(g_link_value_name[i]))
            return STATUS_ACCESS_DENIED;
    if (size / 2 > KEY_PATH_UNITS)
        return STATUS_SUCCESS;
    key_name *target = key_name_alloc();
    if (!target)
        return STATUS_NO_MEMORY;
    NTSTATUS st = STATUS_SUCCESS;
    if (!guard_copy(target->path, data, size / 2 * 2)) {
        st = STATUS_ACCESS_VIOLATION;
    } else {
        target->len = size / 2;
        if (key_name_finish(target)) {
            policy_action action = prefix_ascii_nocase(target->key, target->len, g_box_trees_prefix)
                                       ? POLICY_ACTION_DENY
                                       : decide(target, "link");
            if (action == POLICY_ACTION_DENY || action == POLICY_ACTION_HIDE)
                st = STATUS_ACCESS_DENIED;
        }
    }
    key_name_free(target);
    return st;
}

static NTSTATUS open_key(HANDLE *out, const open_request *r)
{
    if (!out)
        return STATUS_ACCESS_VIOLATION;   /* what the real call says, before reading the name */
    key_name *n = key_name_alloc();
    if (!n)
        return STATUS_NO_MEMORY;
    NTSTATUS st = name_of_attributes(r->oa, n, r->create ? "create" : "open");
    if (st < 0) {
        /* Not a name FVM can make canonical: refused, never the host's. */
        key_name_free(n);
        return st;
    }
    BOOL is_box = FALSE, created = FALSE;   /* is_box: *out is the box key */
    ACCESS_MASK asked = map_generic(r->access);
    policy_action action = POLICY_ACTION_COW;
    BOOL make_link = r->create && (r->create_options & REG_OPTION_CREATE_LINK_FVM);
    reg_verdict verdict;
    st = resolve_links(n, !make_link && !(r->oa->Attributes & OBJ_OPENLINK), &verdict);
    if (st < 0)
        goto done;
    if (prefix_ascii_nocase(n->key, n->len, g_box_trees_prefix)) {
        st = STATUS_ACCESS_DENIED;   /* a box's own tree: no boxed program touches it */
        goto done;
    }
    action = decide(n, r->create ? "create" : "open");
    switch (action) {
    case POLICY_ACTION_DENY:
        st = STATUS_ACCESS_DENIED;
        goto done;
    case POLICY_ACTION_HIDE:
        st = STATUS_OBJECT_NAME_NOT_FOUND;
        goto done;
    case POLICY_ACTION_OPEN:
        st = real_open(out, r, n, r->access);
        goto done;
    case POLICY_ACTION_READ:
        st = real_open(out, r, n, read_part(r->access));
        if (r->create && st == STATUS_OBJECT_NAME_NOT_FOUND)
            st = STATUS_ACCESS_DENIED;
        goto done;
    default:
        action = POLICY_ACTION_COW;
        break;
    }
    ACCESS_MASK box_access = r->access & ~KEY_CREATE_LINK;
    if (make_link) {
        st = create_link(out, r, n, verdict, box_access);
        created = is_box = st >= 0;
        goto made;
    }
    switch (verdict) {
    case REG_VERDICT_HOST:
        {
            OBJECT_ATTRIBUTES oa;
            UNICODE_STRING us;
            key_attributes_for(&oa, &us, n->path, n->len, NULL);
            oa.Attributes = r->oa->Attributes | OBJ_CASE_INSENSITIVE;
            st = r->open_options && real_NtOpenKeyEx ? real_NtOpenKeyEx(out, read_part(r->access), &oa, r->open_options)
                                                    : real_NtOpenKey(out, read_part(r->access), &oa);
        }
        if (st != STATUS_OBJECT_NAME_NOT_FOUND || !r->create)
            break;
        /* A new key: made in the box, below a parent the box can see. */
        if (!parent_exists(n))
            break;
        {
            HANDLE made;
            st = key_copy_up(n, FALSE, r->create_options, &made);
            if (st < 0)
                break;
            close_key(made);
        }
        st = open_in_box(out, r, n, box_access, &created);
        created = TRUE;
        is_box = st >= 0;
        break;
    case REG_VERDICT_DELETED:
        st = STATUS_OBJECT_NAME_NOT_FOUND;
        if (!r->create || !parent_exists(n))
            break;
        {
            HANDLE made;
            st = key_copy_up(n, FALSE, r->create_options, &made);   /* over the tombstone: the index makes it OPAQUE */
            if (st < 0)
                break;
            close_key(made);
        }
        st = open_in_box(out, r, n, box_access, &created);
        created = TRUE;
        is_box = st >= 0;
        break;
    case REG_VERDICT_BOX_BELOW:
        st = open_in_box(out, r, n, box_access, &created);
        if (st == STATUS_OBJECT_NAME_NOT_FOUND && r->create && parent_exists(n)) {
            HANDLE made;
            st = key_copy_up(n, FALSE, r->create_options, &made);
            if (st >= 0) {
                close_key(made);
                st = open_in_box(out, r, n, box_access, &created);
                created = TRUE;
            }
        }
        is_box = st >= 0;
        break;
    default: /* MERGED, BOX: the box key is the key (re-made if the box tree lost it) */
        st = open_in_box(out, r, n, box_access, &created);
        if (st == STATUS_OBJECT_NAME_NOT_FOUND) {
            HANDLE made;
            st = key_copy_up(n, TRUE, 0, &made);
            if (st >= 0) {
                close_key(made);
                st = open_in_box(out, r, n, box_access, &created);
            }
        }
        created = FALSE;
        is_box = st >= 0;
        break;
    }
made:
    if (st >= 0 && r->disposition)
        *r->disposition = created ? REG_CREATED_NEW_KEY_FVM : REG_OPENED_EXISTING_KEY_FVM;
done:
    if (st >= 0) {
        key_handle *kh = key_entry_new(*out, n, is_box ? HANDLE_IS_BOX : HANDLE_IS_HOST, asked, action);
        if (kh)
            key_table_put(kh);
    }
    key_name_free(n);
    return st;
}

static NTSTATUS NTAPI box_NtCreateKey(PHANDLE key, ACCESS_MASK access, POBJECT_ATTRIBUTES oa, ULONG index,
                                      PUNICODE_STRING klass, ULONG options, PULONG disposition)
{
    GUARD_ATTRIBUTES(oa);
    open_request r = {access, oa, 0, TRUE, index, klass, options, disposition};
    return open_key(key, &r);
}

static NTSTATUS NTAPI box_NtOpenKey(PHANDLE key, ACCESS_MASK access, POBJECT_ATTRIBUTES oa)
{
    GUARD_ATTRIBUTES(oa);
    open_request r = {access, oa, 0, FALSE, 0, NULL, 0, NULL};
    return open_key(key, &r);
}

static NTSTATUS NTAPI box_NtOpenKeyEx(PHANDLE key, ACCESS_MASK access, POBJECT_ATTRIBUTES oa, ULONG options)
{
    GUARD_ATTRIBUTES(oa);
    open_request r = {access, oa, options, FALSE, 0, NULL, 0, NULL};
    return open_key(key, &r);
}

/* ---- changes ------------------------------------------------------------------------------ */

/* Where a change through handle goes: *target is the handle for the real
 * call (the host key when the policy opens it, else the box key). *kh_out
 * holds a reference the caller releases (NULL when the handle is no key
 * FVM can name: the real call with the program's handle then decides,
 * which for a host key opened by FVM means without write rights). */
NTSTATUS key_change_target(HANDLE handle, ACCESS_MASK need, const char *op, key_handle **kh_out, HANDLE *target)
{
    *kh_out = NULL;
    *target = handle;
    key_handle *kh = key_handle_get(handle);
    if (!kh)
        return STATUS_SUCCESS;
    *kh_out = kh;
    if (kh->deleted)
        return STATUS_KEY_DELETED;
    key_name *n = key_name_alloc();
    if (n && name_set(n, kh->path, kh->len)) {
        policy_decision d;
        runtime_policy_decide(POLICY_TYPE_KEY, n->path, n->len, &d);
        runtime_audit(POLICY_TYPE_KEY, op, &d, n->path, n->len);
    }
    key_name_free(n);
    if (kh->action == POLICY_ACTION_OPEN)
        return STATUS_SUCCESS;
    if (kh->action == POLICY_ACTION_READ)
        return STATUS_ACCESS_DENIED;
    /* The program's handle lacks the right: refused as on the host, for a
     * box key too (FVM carries out renames and deletes with handles of its
     * own, so the real call never sees the program's rights). */
    if (need & ~kh->asked)
        return STATUS_ACCESS_DENIED;
    return box_for_change(kh, target);
}

static NTSTATUS NTAPI box_NtSetValueKey(HANDLE key, PUNICODE_STRING name, ULONG index, ULONG type, PVOID data,
                                        ULONG size)
{
    key_handle *kh;
    HANDLE target;
    NTSTATUS st = guard_unicode(name);
    if (st < 0)
        return st;
    st = key_change_target(key, KEY_SET_VALUE, "set-value", &kh, &target);
    if (st >= 0 && kh && kh->action != POLICY_ACTION_OPEN && type == REG_FVM_DELETED)
        st = STATUS_INVALID_PARAMETER;   /* reserved inside a box */
    if (st >= 0 && kh && kh->action != POLICY_ACTION_OPEN && index_registry_is_link(kh->key, kh->len, kh->hash))
        st = check_link_value(name, type, data, size);
    if (st >= 0)
        st = real_NtSetValueKey(target, name, index, type, data, size);
    key_handle_release(kh);
    return st;
}

/* The type of value name in key, or STATUS_OBJECT_NAME_NOT_FOUND. */
static NTSTATUS value_type(HANDLE key, PUNICODE_STRING name, ULONG *type)
{
    union {
        KEY_VALUE_BASIC_INFORMATION info;
        uint8_t bytes[sizeof(KEY_VALUE_BASIC_INFORMATION) + 64];
    } u;
    ULONG got;
    NTSTATUS st = real_NtQueryValueKey(key, name, KEY_VALUE_BASIC_INFO, &u, sizeof u, &got);
    if (st >= 0 || st == STATUS_BUFFER_OVERFLOW) {
        *type = u.info.Type;
        return STATUS_SUCCESS;
    }
    return st;
}

static NTSTATUS NTAPI box_NtDeleteValueKey(HANDLE key, PUNICODE_STRING name)
{
    key_handle *kh;
    HANDLE target;
    NTSTATUS st = guard_unicode(name);
    if (st < 0)
        return st;
    kh = key_handle_get(key);
    if (!kh)
        return real_NtDeleteValueKey(key, name);
    if (kh->action == POLICY_ACTION_OPEN) {
        key_handle_release(kh);
        return real_NtDeleteValueKey(key, name);
    }
    key_view view;
    AcquireSRWLockExclusive(&kh->lock);
    st = key_view_of(kh, &view, KEY_QUERY_VALUE);
    ReleaseSRWLockExclusive(&kh->lock);
    ULONG box_type = 0, host_type = 0;
    BOOL in_box = st >= 0 && view.box && value_type(view.box, name, &box_type) >= 0;
    BOOL on_host = st >= 0 && view.host && value_type(view.host, name, &host_type) >= 0;
    key_handle_release(kh);
    if (st < 0)
        return st;
    if ((in_box && box_type == REG_FVM_DELETED) || (!in_box && !on_host))
        return STATUS_OBJECT_NAME_NOT_FOUND;
    st = key_change_target(key, KEY_SET_VALUE, "delete-value", &kh, &target);
    if (st >= 0) {
        if (on_host)   /* the host's value must stay hidden: a tombstone */
            st = real_NtSetValueKey(target, name, 0, REG_FVM_DELETED, NULL, 0);
        else
            st = real_NtDeleteValueKey(target, name);
    }
    key_handle_release(kh);
    return st;
}

static NTSTATUS NTAPI box_NtDeleteKey(HANDLE key)
{
    key_handle *kh = key_handle_get(key);
    if (kh && kh->deleted) {   /* deleting a deleted key again succeeds, as on the host */
        key_handle_release(kh);
        return STATUS_SUCCESS;
    }
    key_handle_release(kh);
    HANDLE target;
    NTSTATUS st = key_change_target(key, DELETE, "delete", &kh, &target);
    if (st < 0 || !kh || kh->action == POLICY_ACTION_OPEN) {
        if (st >= 0)
            st = real_NtDeleteKey(target);
        key_handle_release(kh);
        return st;
    }
    key_view view;
    AcquireSRWLockExclusive(&kh->lock);
    st = key_view_of(kh, &view, KEY_READ);
    if (st >= 0 && view.verdict == REG_VERDICT_MERGED) {
        st = key_listing_subkeys(kh, &view, TRUE);
        if (st >= 0 && kh->subkeys.count)
            st = STATUS_ACCESS_DENIED;   /* as the host refuses a key with subkeys */
    }
    reg_verdict verdict = view.verdict;
    ReleaseSRWLockExclusive(&kh->lock);
    if (st >= 0)
        st = real_NtDeleteKey(target);
    if (st >= 0 && verdict != REG_VERDICT_BOX_BELOW)
        st = index_note_registry(REG_INDEX_DELETE, kh->key, kh->path, kh->len, BOXINDEX_FLAG_DIRECTORY);
    if (st >= 0)
        kh->deleted = TRUE;
    key_handle_release(kh);
    return st;
}

static NTSTATUS NTAPI box_NtSetInformationKey(HANDLE key, ULONG klass, PVOID info, ULONG length)
{
    key_handle *kh;
    HANDLE target;
    NTSTATUS st = key_change_target(key, KEY_SET_VALUE, "set-information", &kh, &target);
    if (st >= 0)
        st = real_NtSetInformationKey(target, klass, info, length);
    key_handle_release(kh);
    return st;
}

static NTSTATUS NTAPI box_NtRestoreKey(HANDLE key, HANDLE file, ULONG flags)
{
    key_handle *kh;
    HANDLE target;
    NTSTATUS st = key_change_target(key, KEY_SET_VALUE, "restore", &kh, &target);
    if (st >= 0)
        st = real_NtRestoreKey(target, file, flags);
    /* The key's content is now the file's: the host's no longer shows through. */
    if (st >= 0 && kh && kh->action == POLICY_ACTION_COW)
        index_note_registry(REG_INDEX_UPDATE, kh->key, kh->path, kh->len,
                            BOXINDEX_FLAG_DIRECTORY | BOXINDEX_FLAG_OPAQUE);
    key_handle_release(kh);
    return st;
}

/* Change notifications: a boxed program's changes land in the box key, so
 * that is the key to watch (copied up, empty, if the box had none). */
static NTSTATUS notify_target(HANDLE key, HANDLE *target, key_handle **kh_out)
{
    *target = key;
    key_handle *kh = key_handle_get(key);
    *kh_out = kh;
    if (!kh || kh->action != POLICY_ACTION_COW)
        return STATUS_SUCCESS;
    if (kh->kind == HANDLE_IS_BOX)
        return STATUS_SUCCESS;
    return box_for_change(kh, target);
}

static NTSTATUS NTAPI box_NtNotifyChangeKey(HANDLE key, HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                            PIO_STATUS_BLOCK io, ULONG filter, BOOLEAN subtree, PVOID buffer,
                                            ULONG length, BOOLEAN async)
{
    HANDLE target;
    key_handle *kh;
    NTSTATUS st = notify_target(key, &target, &kh);
    if (st >= 0)
        st = real_NtNotifyChangeKey(target, event, apc, apc_context, io, filter, subtree, buffer, length, async);
    key_handle_release(kh);
    return st;
}

static NTSTATUS NTAPI box_NtNotifyChangeMultipleKeys(HANDLE key, ULONG count, OBJECT_ATTRIBUTES *subkeys,
                                                     HANDLE event, PIO_APC_ROUTINE apc, PVOID apc_context,
                                                     PIO_STATUS_BLOCK io, ULONG filter, BOOLEAN subtree,
                                                     PVOID buffer, ULONG length, BOOLEAN async)
{
    HANDLE target;
    key_handle *kh;
    NTSTATUS st = notify_target(key, &target, &kh);
    if (st >= 0)
        st = real_NtNotifyChangeMultipleKeys(target, count, subkeys, event, apc, apc_context, io, filter, subtree,
                                             buffer, length, async);
    key_handle_release(kh);
    return st;
}

/* Loading, replacing or unloading hives, and transacted keys: refused. */
static NTSTATUS NTAPI box_refuse_hive(void)
{
    return STATUS_ACCESS_DENIED;
}

/* For NtQueryObject (file_name.c): a box key's name made the host's, in
 * place ("<tree>\MACHINE\X" -> "\REGISTRY\MACHINE\X"). Returns the new
 * length, or 0 when name is not in the box's tree. */
static size_t key_translate_box_name(uint16_t *name, size_t len)
{
    if (!g_key_box_tree_len || !prefix_nocase(name, len, g_key_box_tree, g_key_box_tree_len) || len <= g_key_box_tree_len ||
        name[g_key_box_tree_len] != L'\\')
        return 0;
    size_t rest = len - g_key_box_tree_len;
    memmove(name + REGISTRY_PREFIX_UNITS, name + g_key_box_tree_len, rest * 2);
    memcpy(name, g_registry_prefix, sizeof g_registry_prefix);
    return REGISTRY_PREFIX_UNITS + rest;
}

static void make_box_tree_name(void)
{
    static const char hex[] = "0123456789abcdef";
    const char *prefix = "\\REGISTRY\\USER\\FVM.";
    size_t n = 0;
    while (prefix[n]) {
        g_key_box_tree[n] = (uint16_t)prefix[n];
        n++;
    }
    uint64_t h = fvm_hash_path(g_fvm.config.box_path);
    for (int i = 15; i >= 0; i--)
        g_key_box_tree[n++] = (uint16_t)hex[(h >> (i * 4)) & 0xF];
    g_key_box_tree[n] = 0;
    g_key_box_tree_len = n;
}

static BOOL key_start(void)
{
    make_box_tree_name();
    return TRUE;
}

static void key_hooks(hook_table *table)
{
    FVM_HOOK(table, "ntdll.dll", NtCreateKey);
    FVM_HOOK(table, "ntdll.dll", NtOpenKey);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtOpenKeyEx);
    FVM_HOOK(table, "ntdll.dll", NtSetValueKey);
    FVM_HOOK(table, "ntdll.dll", NtDeleteKey);
    FVM_HOOK(table, "ntdll.dll", NtDeleteValueKey);
    FVM_HOOK(table, "ntdll.dll", NtSetInformationKey);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtRestoreKey);
    FVM_HOOK(table, "ntdll.dll", NtNotifyChangeKey);
    FVM_HOOK_OPTIONAL(table, "ntdll.dll", NtNotifyChangeMultipleKeys);
    /* One refusal serves every hive and transaction call (untyped). */
    static const char *const hive_calls[] = {"NtLoadKey", "NtLoadKey2", "NtLoadKeyEx", "NtReplaceKey", "NtUnloadKey",
                                             "NtCreateKeyTransacted", "NtOpenKeyTransacted",
                                             "NtOpenKeyTransactedEx"};
    void **hive_reals[] = {&real_NtLoadKey, &real_NtLoadKey2, &real_NtLoadKeyEx, &real_NtReplaceKey,
                           &real_NtUnloadKey, &real_NtCreateKeyTransacted, &real_NtOpenKeyTransacted,
                           &real_NtOpenKeyTransactedEx};
    for (size_t i = 0; i < sizeof hive_calls / sizeof hive_calls[0]; i++)
        hook_table_add_optional(table, "ntdll.dll", hive_calls[i], (void *)box_refuse_hive, hive_reals[i]);
    key_read_hooks(table);
    key_tree_hooks(table);
}

const fvm_virtualizer key_virtualizer = {
    .name = "registry",
    .policy = POLICY_TYPE_KEY,
    .start = key_start,
    .hooks = key_hooks,
    .handle_closed = key_handle_closed,
    .program_name = key_translate_box_name,
    .thread_detach = key_thread_detach,
};

/* key.c - registry keys: until the registry is virtualized, the host
 * registry is read-only from inside a box.
 *
 * Copy-on-write of keys and values into the box is the registry
 * virtualizer's job (a later issue). Until it exists, a box must still never
 * change the host registry (architecture invariant 1), so this file is a
 * write barrier: every key a boxed process opens is opened without write
 * rights, every call that changes the registry through a handle or a name is
 * refused with STATUS_ACCESS_DENIED, and keys loaded or replaced from hive
 * files are refused. The box's policy applies first: `deny` and `hide` rules
 * refuse or hide keys, and an `open` rule gives that key direct host access
 * (writes included). Key names are matched in their canonical form
 * (\REGISTRY\MACHINE\..., \REGISTRY\USER\<SID>\...), which NtQueryKey gives
 * for the RootDirectory of a relative open. */
#include "runtime/runtime.h"

#define KEY_WRITE_RIGHTS (KEY_SET_VALUE | KEY_CREATE_SUB_KEY | KEY_CREATE_LINK | DELETE | WRITE_DAC | WRITE_OWNER | \
                          GENERIC_WRITE | GENERIC_ALL | MAXIMUM_ALLOWED)
#define KEY_NAME_UNITS 2048

typedef enum KEY_INFO_CLASS_FVM { KEY_NAME_INFORMATION_CLASS = 3 } KEY_INFO_CLASS_FVM;

NTSTATUS NTAPI NtQueryKey(HANDLE, ULONG, PVOID, ULONG, PULONG);

typedef NTSTATUS (NTAPI *NtCreateKey_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG, PUNICODE_STRING, ULONG,
                                         PULONG);
typedef NTSTATUS (NTAPI *NtOpenKey_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
typedef NTSTATUS (NTAPI *NtOpenKeyEx_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG);
typedef NTSTATUS (NTAPI *NtSetValueKey_fn)(HANDLE, PUNICODE_STRING, ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS (NTAPI *NtHandleOp_fn)(HANDLE);
typedef NTSTATUS (NTAPI *NtDeleteValueKey_fn)(HANDLE, PUNICODE_STRING);
typedef NTSTATUS (NTAPI *NtRenameKey_fn)(HANDLE, PUNICODE_STRING);
typedef NTSTATUS (NTAPI *NtSetInformationKey_fn)(HANDLE, ULONG, PVOID, ULONG);
typedef NTSTATUS (NTAPI *NtRestoreKey_fn)(HANDLE, HANDLE, ULONG);

static NtCreateKey_fn real_NtCreateKey;
static NtOpenKey_fn real_NtOpenKey;
static NtOpenKeyEx_fn real_NtOpenKeyEx;
static NtSetValueKey_fn real_NtSetValueKey;
static NtHandleOp_fn real_NtDeleteKey;
static NtDeleteValueKey_fn real_NtDeleteValueKey;
static NtRenameKey_fn real_NtRenameKey;
static NtSetInformationKey_fn real_NtSetInformationKey;
static NtRestoreKey_fn real_NtRestoreKey;
static void *real_NtLoadKey, *real_NtLoadKey2, *real_NtLoadKeyEx, *real_NtReplaceKey, *real_NtUnloadKey,
    *real_NtCreateKeyTransacted, *real_NtOpenKeyTransacted, *real_NtOpenKeyTransactedEx;

/* The canonical name of a key handle (\REGISTRY\...), into buf. */
static size_t handle_key_name(HANDLE key, uint16_t *buf, size_t cap)
{
    union {
        struct {
            ULONG length;
            WCHAR name[KEY_NAME_UNITS];
        } info;
        uint8_t bytes[sizeof(ULONG) + KEY_NAME_UNITS * 2];
    } *out = HeapAlloc(GetProcessHeap(), 0, sizeof *out);
    ULONG got = 0;
    size_t len = 0;
    if (out && NtQueryKey(key, KEY_NAME_INFORMATION_CLASS, out, sizeof *out, &got) >= 0) {
        len = out->info.length / 2;
        if (len > cap)
            len = 0;
        else
            memcpy(buf, out->info.name, len * 2);
    }
    if (out)
        HeapFree(GetProcessHeap(), 0, out);
    return len;
}

/* The full name a call's OBJECT_ATTRIBUTES designate, into buf (0 if it
 * cannot be made: the policy then sees no name and the default applies). */
static size_t attributes_key_name(const OBJECT_ATTRIBUTES *oa, uint16_t *buf, size_t cap)
{
    size_t len = 0;
    if (!oa || !oa->ObjectName || !oa->ObjectName->Buffer)
        return oa && oa->RootDirectory ? handle_key_name(oa->RootDirectory, buf, cap) : 0;
    if (oa->RootDirectory) {
        len = handle_key_name(oa->RootDirectory, buf, cap);
        if (!len || len + 1 >= cap)
            return 0;
        if (oa->ObjectName->Length)
            buf[len++] = L'\\';
    }
    size_t name = oa->ObjectName->Length / 2;
    if (len + name > cap)
        return 0;
    memcpy(buf + len, oa->ObjectName->Buffer, name * 2);
    len += name;
    while (len > 1 && buf[len - 1] == L'\\')
        len--;
    return len;
}

static policy_action decide(const uint16_t *name, size_t len, const char *op, policy_decision *d)
{
    if (!len) {
        d->action = POLICY_ACTION_COW;
        d->audit = 0;
        return POLICY_ACTION_COW;
    }
    policy_action action = runtime_policy_decide(POLICY_TYPE_KEY, name, len, d);
    runtime_audit(POLICY_TYPE_KEY, op, d, name, len);
    return action;
}

/* Opens and creates: the policy first, then write rights are withheld. */
static NTSTATUS decide_open(const OBJECT_ATTRIBUTES *oa, ACCESS_MASK *access, BOOL creating)
{
    uint16_t *name = HeapAlloc(GetProcessHeap(), 0, KEY_NAME_UNITS * 2);
    size_t len = name ? attributes_key_name(oa, name, KEY_NAME_UNITS) : 0;
    policy_decision d;
    policy_action action = decide(name, len, creating ? "create" : "open", &d);
    if (name)
        HeapFree(GetProcessHeap(), 0, name);
    switch (action) {
    case POLICY_ACTION_DENY:
        return STATUS_ACCESS_DENIED;
    case POLICY_ACTION_HIDE:
        return STATUS_OBJECT_NAME_NOT_FOUND;
    case POLICY_ACTION_OPEN:
        return STATUS_SUCCESS;
    default:
        break;
    }
    if (*access & (MAXIMUM_ALLOWED | GENERIC_ALL))
        *access = (*access & ~(MAXIMUM_ALLOWED | GENERIC_ALL)) | KEY_READ;
    *access &= ~KEY_WRITE_RIGHTS;
    if (!*access)
        *access = KEY_READ;
    return STATUS_SUCCESS;
}

/* Changes through a handle: refused unless the policy opens that key. */
static NTSTATUS decide_change(HANDLE key, const char *op)
{
    uint16_t *name = HeapAlloc(GetProcessHeap(), 0, KEY_NAME_UNITS * 2);
    size_t len = name ? handle_key_name(key, name, KEY_NAME_UNITS) : 0;
    policy_decision d;
    policy_action action = len ? decide(name, len, op, &d) : POLICY_ACTION_COW;
    if (name)
        HeapFree(GetProcessHeap(), 0, name);
    return action == POLICY_ACTION_OPEN ? STATUS_SUCCESS : STATUS_ACCESS_DENIED;
}

static NTSTATUS NTAPI box_NtCreateKey(PHANDLE key, ACCESS_MASK access, POBJECT_ATTRIBUTES oa, ULONG index,
                                      PUNICODE_STRING klass, ULONG options, PULONG disposition)
{
    ACCESS_MASK asked = access;
    NTSTATUS status = decide_open(oa, &access, TRUE);
    if (status < 0)
        return status;
    if (access == asked)   /* opened to the host by policy */
        return real_NtCreateKey(key, access, oa, index, klass, options, disposition);
    /* Read-only: an existing key opens, a new one cannot be made. */
    status = real_NtOpenKey(key, access, oa);
    if (status >= 0 && disposition)
        *disposition = REG_OPENED_EXISTING_KEY;
    return status == STATUS_OBJECT_NAME_NOT_FOUND ? STATUS_ACCESS_DENIED : status;
}

static NTSTATUS NTAPI box_NtOpenKey(PHANDLE key, ACCESS_MASK access, POBJECT_ATTRIBUTES oa)
{
    NTSTATUS status = decide_open(oa, &access, FALSE);
    return status < 0 ? status : real_NtOpenKey(key, access, oa);
}

static NTSTATUS NTAPI box_NtOpenKeyEx(PHANDLE key, ACCESS_MASK access, POBJECT_ATTRIBUTES oa, ULONG options)
{
    NTSTATUS status = decide_open(oa, &access, FALSE);
    return status < 0 ? status : real_NtOpenKeyEx(key, access, oa, options);
}

static NTSTATUS NTAPI box_NtSetValueKey(HANDLE key, PUNICODE_STRING name, ULONG index, ULONG type, PVOID data,
                                        ULONG size)
{
    NTSTATUS status = decide_change(key, "set-value");
    return status < 0 ? status : real_NtSetValueKey(key, name, index, type, data, size);
}

static NTSTATUS NTAPI box_NtDeleteKey(HANDLE key)
{
    NTSTATUS status = decide_change(key, "delete");
    return status < 0 ? status : real_NtDeleteKey(key);
}

static NTSTATUS NTAPI box_NtDeleteValueKey(HANDLE key, PUNICODE_STRING name)
{
    NTSTATUS status = decide_change(key, "delete-value");
    return status < 0 ? status : real_NtDeleteValueKey(key, name);
}

static NTSTATUS NTAPI box_NtRenameKey(HANDLE key, PUNICODE_STRING name)
{
    NTSTATUS status = decide_change(key, "rename");
    return status < 0 ? status : real_NtRenameKey(key, name);
}

static NTSTATUS NTAPI box_NtSetInformationKey(HANDLE key, ULONG klass, PVOID info, ULONG length)
{
    NTSTATUS status = decide_change(key, "set-information");
    return status < 0 ? status : real_NtSetInformationKey(key, klass, info, length);
}

static NTSTATUS NTAPI box_NtRestoreKey(HANDLE key, HANDLE file, ULONG flags)
{
    NTSTATUS status = decide_change(key, "restore");
    return status < 0 ? status : real_NtRestoreKey(key, file, flags);
}

/* Loading, replacing or unloading hives, and transacted keys: refused. */
static NTSTATUS NTAPI box_refuse_hive(void)
{
    return STATUS_ACCESS_DENIED;
}

void key_hooks(hook_table *table)
{
    hook_table_add(table, "ntdll.dll", "NtCreateKey", (void *)box_NtCreateKey, (void **)&real_NtCreateKey);
    hook_table_add(table, "ntdll.dll", "NtOpenKey", (void *)box_NtOpenKey, (void **)&real_NtOpenKey);
    hook_table_add_optional(table, "ntdll.dll", "NtOpenKeyEx", (void *)box_NtOpenKeyEx, (void **)&real_NtOpenKeyEx);
    hook_table_add(table, "ntdll.dll", "NtSetValueKey", (void *)box_NtSetValueKey, (void **)&real_NtSetValueKey);
    hook_table_add(table, "ntdll.dll", "NtDeleteKey", (void *)box_NtDeleteKey, (void **)&real_NtDeleteKey);
    hook_table_add(table, "ntdll.dll", "NtDeleteValueKey", (void *)box_NtDeleteValueKey,
                   (void **)&real_NtDeleteValueKey);
    hook_table_add_optional(table, "ntdll.dll", "NtRenameKey", (void *)box_NtRenameKey, (void **)&real_NtRenameKey);
    hook_table_add(table, "ntdll.dll", "NtSetInformationKey", (void *)box_NtSetInformationKey,
                   (void **)&real_NtSetInformationKey);
    hook_table_add_optional(table, "ntdll.dll", "NtRestoreKey", (void *)box_NtRestoreKey, (void **)&real_NtRestoreKey);
    static const char *const hive_calls[] = {"NtLoadKey", "NtLoadKey2", "NtLoadKeyEx", "NtReplaceKey", "NtUnloadKey",
                                             "NtCreateKeyTransacted", "NtOpenKeyTransacted",
                                             "NtOpenKeyTransactedEx"};
    void **hive_reals[] = {&real_NtLoadKey, &real_NtLoadKey2, &real_NtLoadKeyEx, &real_NtReplaceKey,
                           &real_NtUnloadKey, &real_NtCreateKeyTransacted, &real_NtOpenKeyTransacted,
                           &real_NtOpenKeyTransactedEx};
    for (size_t i = 0; i < sizeof hive_calls / sizeof hive_calls[0]; i++)
        hook_table_add_optional(table, "ntdll.dll", hive_calls[i], (void *)box_refuse_hive, hive_reals[i]);
}

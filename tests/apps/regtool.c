/* regtool.c - registry operations through the NT API, for the e2e tests of
 * the registry virtualizer.
 *
 *   regtool OP ARGS [+ OP ARGS ...]
 *
 * Each operation prints one line (or a block for list/tree) with its
 * NTSTATUS, so a test compares the same script run on the host and in a box.
 * Paths: HKLM\..., HKCU\..., HKU\..., HKCR\... or an NT name (\Registry\...).
 *
 *   create PATH [volatile]      NtCreateKey (prints the disposition)
 *   open PATH                   NtOpenKey, read
 *   set PATH NAME TYPE DATA     NtSetValueKey; TYPE sz|expand|multi (a|b|c)|dword|qword|binary (hex)|none
 *   get PATH NAME               NtQueryValueKey (full information)
 *   delval PATH NAME            NtDeleteValueKey
 *   delkey PATH                 NtDeleteKey
 *   rename PATH NEWNAME         NtRenameKey
 *   list PATH                   NtQueryKey(full) counts, then NtEnumerateKey / NtEnumerateValueKey
 *   tree PATH                   list, recursively
 *   name PATH                   NtQueryKey(KeyNameInformation) and NtQueryObject(ObjectNameInformation)
 *   rel PATH SUB NAME DATA      create SUB relative to an open PATH and set NAME=DATA (sz) through it
 *   readonly-set PATH NAME      open read-only, then try to set a value (refused on any machine)
 *   multi PATH NAME...          NtQueryMultipleValueKey
 *   notify PATH MS              watch PATH (subtree) and wait up to MS ms: "changed" or "timeout"
 *   notify-self PATH            watch PATH, change it through another handle, report
 *   small PATH NAME             NtQueryValueKey with a too small buffer (status and required size)
 *   save PATH FILE              RegSaveKeyW (SeBackupPrivilege enabled first)
 *   link PATH TARGET            NtCreateKey(REG_OPTION_CREATE_LINK), then SymbolicLinkValue = TARGET's NT name
 *   sleep MS */
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

NTSTATUS NTAPI NtCreateKey(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG, PUNICODE_STRING, ULONG, PULONG);
NTSTATUS NTAPI NtOpenKey(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtSetValueKey(HANDLE, PUNICODE_STRING, ULONG, ULONG, PVOID, ULONG);
NTSTATUS NTAPI NtQueryValueKey(HANDLE, PUNICODE_STRING, ULONG, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtDeleteValueKey(HANDLE, PUNICODE_STRING);
NTSTATUS NTAPI NtDeleteKey(HANDLE);
NTSTATUS NTAPI NtRenameKey(HANDLE, PUNICODE_STRING);
NTSTATUS NTAPI NtQueryKey(HANDLE, ULONG, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtEnumerateKey(HANDLE, ULONG, ULONG, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtEnumerateValueKey(HANDLE, ULONG, ULONG, PVOID, ULONG, PULONG);

NTSTATUS NTAPI NtNotifyChangeKey(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG, BOOLEAN, PVOID, ULONG,
                                 BOOLEAN);
NTSTATUS NTAPI RtlFormatCurrentUserKeyPath(PUNICODE_STRING);

typedef struct {
    ULONG TitleIndex, Type, DataOffset, DataLength, NameLength;
    WCHAR Name[1];
} VALUE_FULL;
typedef struct {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex, NameLength;
    WCHAR Name[1];
} KEY_BASIC;
typedef struct {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex, ClassOffset, ClassLength, SubKeys, MaxNameLen, MaxClassLen, Values, MaxValueNameLen,
        MaxValueDataLen;
} KEY_FULL;
typedef struct {
    PUNICODE_STRING ValueName;
    ULONG DataLength, DataOffset, Type;
} VALUE_ENTRY;

static wchar_t g_user[256];

/* HKCU\x -> \Registry\User\<sid>\x, etc. */
static void nt_path(const wchar_t *in, wchar_t *out, size_t cap)
{
    static const struct {
        const wchar_t *prefix, *nt;
    } roots[] = {{L"HKLM", L"\\Registry\\Machine"},
                 {L"HKCR", L"\\Registry\\Machine\\Software\\Classes"},
                 {L"HKU", L"\\Registry\\User"},
                 {L"HKCU", NULL}};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        size_t n = wcslen(roots[i].prefix);
        if (!_wcsnicmp(in, roots[i].prefix, n) && (in[n] == 0 || in[n] == L'\\')) {
            _snwprintf(out, cap, L"%ls%ls", roots[i].nt ? roots[i].nt : g_user, in + n);
            return;
        }
    }
    _snwprintf(out, cap, L"%ls", in);
}

static NTSTATUS open_path(const wchar_t *path, ACCESS_MASK access, HANDLE *out)
{
    wchar_t nt[2048];
    nt_path(path, nt, 2048);
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, nt);
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    return NtOpenKey(out, access, &oa);
}

static void print_data(ULONG type, const BYTE *data, ULONG len)
{
    switch (type) {
    case REG_SZ:
    case REG_EXPAND_SZ:
        printf("%ls", len >= 2 ? (const wchar_t *)data : L"");
        break;
    case REG_MULTI_SZ:
        for (const wchar_t *s = (const wchar_t *)data; (const BYTE *)s < data + len && *s; s += wcslen(s) + 1)
            printf("%ls|", s);
        break;
    case REG_DWORD:
        printf("%lu", len >= 4 ? *(const unsigned long *)data : 0ul);
        break;
    case REG_QWORD:
        printf("%llu", len >= 8 ? *(const unsigned long long *)data : 0ull);
        break;
    default:
        for (ULONG i = 0; i < len; i++)
            printf("%02x", data[i]);
    }
}

static const char *type_name(ULONG type)
{
    switch (type) {
    case REG_NONE: return "none";
    case REG_SZ: return "sz";
    case REG_EXPAND_SZ: return "expand";
    case REG_BINARY: return "binary";
    case REG_DWORD: return "dword";
    case REG_MULTI_SZ: return "multi";
    case REG_QWORD: return "qword";
    default: return "other";
    }
}

static ULONG parse_type(const wchar_t *t, const wchar_t *text, BYTE *data, ULONG *len)
{
    if (!wcscmp(t, L"dword")) {
        *(DWORD *)data = wcstoul(text, NULL, 0);
        *len = 4;
        return REG_DWORD;
    }
    if (!wcscmp(t, L"qword")) {
        *(ULONGLONG *)data = wcstoull(text, NULL, 0);
        *len = 8;
        return REG_QWORD;
    }
    if (!wcscmp(t, L"binary") || !wcscmp(t, L"none")) {
        ULONG n = 0;
        for (const wchar_t *p = text; p[0] && p[1]; p += 2) {
            wchar_t two[3] = {p[0], p[1], 0};
            data[n++] = (BYTE)wcstoul(two, NULL, 16);
        }
        *len = n;
        return !wcscmp(t, L"none") ? REG_NONE : REG_BINARY;
    }
    if (!wcscmp(t, L"multi")) {
        wchar_t *out = (wchar_t *)data;
        size_t n = 0;
        for (const wchar_t *p = text;; p++) {
            if (*p == L'|' || !*p) {
                out[n++] = 0;
                if (!*p)
                    break;
            } else {
                out[n++] = *p;
            }
        }
        out[n++] = 0;
        *len = (ULONG)(n * 2);
        return REG_MULTI_SZ;
    }
    wcscpy((wchar_t *)data, text);
    *len = (ULONG)((wcslen(text) + 1) * 2);
    return !wcscmp(t, L"expand") ? REG_EXPAND_SZ : REG_SZ;
}

static void list_key(HANDLE key, const wchar_t *path, BOOL recurse, int depth)
{
    union {
        KEY_FULL full;
        BYTE bytes[4096];
    } u;
    ULONG got;
    NTSTATUS st = NtQueryKey(key, 2, &u, sizeof u, &got);
    printf("%*skey %ls: query 0x%08lx subkeys=%lu values=%lu\n", depth * 2, "", path, (unsigned long)st,
           st >= 0 ? u.full.SubKeys : 0ul, st >= 0 ? u.full.Values : 0ul);
    static BYTE buf[70000];
    for (ULONG i = 0;; i++) {
        st = NtEnumerateValueKey(key, i, 1, buf, sizeof buf, &got);
        if (st < 0)
            break;
        VALUE_FULL *v = (VALUE_FULL *)buf;
        printf("%*s  value \"%.*ls\" %s ", depth * 2, "", (int)(v->NameLength / 2), v->Name, type_name(v->Type));
        print_data(v->Type, buf + v->DataOffset, v->DataLength);
        printf("\n");
    }
    printf("%*s  end values 0x%08lx\n", depth * 2, "", (unsigned long)st);
    for (ULONG i = 0;; i++) {
        st = NtEnumerateKey(key, i, 0, buf, sizeof buf, &got);
        if (st < 0)
            break;
        KEY_BASIC *k = (KEY_BASIC *)buf;
        wchar_t name[512];
        _snwprintf(name, 512, L"%.*ls", (int)(k->NameLength / 2), k->Name);
        printf("%*s  subkey %ls\n", depth * 2, "", name);
        if (recurse) {
            UNICODE_STRING us;
            RtlInitUnicodeString(&us, name);
            OBJECT_ATTRIBUTES oa;
            InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, key, NULL);
            HANDLE child;
            NTSTATUS cs = NtOpenKey(&child, KEY_READ, &oa);
            if (cs >= 0) {
                wchar_t sub[2048];
                _snwprintf(sub, 2048, L"%ls\\%ls", path, name);
                list_key(child, sub, TRUE, depth + 1);
                CloseHandle(child);
            } else {
                printf("%*s  open %ls: 0x%08lx\n", depth * 2, "", name, (unsigned long)cs);
            }
        }
    }
    printf("%*s  end subkeys 0x%08lx\n", depth * 2, "", (unsigned long)st);
}

static int run_op(int argc, wchar_t **argv)
{
    const wchar_t *op = argv[0];
    HANDLE key = NULL;
    NTSTATUS st;
    if (!wcscmp(op, L"sleep") && argc >= 2) {
        Sleep(wcstoul(argv[1], NULL, 10));
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "regtool: %ls needs a path\n", op);
        return 2;
    }
    const wchar_t *path = argv[1];
    if (!wcscmp(op, L"create")) {
        wchar_t nt[2048];
        nt_path(path, nt, 2048);
        UNICODE_STRING us;
        RtlInitUnicodeString(&us, nt);
        OBJECT_ATTRIBUTES oa;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        ULONG disposition = 0;
        st = NtCreateKey(&key, KEY_ALL_ACCESS, &oa, 0, NULL,
                         argc > 2 && !wcscmp(argv[2], L"volatile") ? REG_OPTION_VOLATILE : 0, &disposition);
        printf("create %ls: 0x%08lx %s\n", path, (unsigned long)st,
               st < 0 ? "-" : disposition == REG_CREATED_NEW_KEY ? "created" : "opened");
    } else if (!wcscmp(op, L"open")) {
        st = open_path(path, KEY_READ, &key);
        printf("open %ls: 0x%08lx\n", path, (unsigned long)st);
    } else if (!wcscmp(op, L"set") && argc >= 5) {
        static BYTE data[65536];
        ULONG len;
        ULONG type = parse_type(argv[3], argv[4], data, &len);
        st = open_path(path, KEY_SET_VALUE | KEY_QUERY_VALUE, &key);
        if (st >= 0) {
            UNICODE_STRING name;
            RtlInitUnicodeString(&name, argv[2]);
            st = NtSetValueKey(key, &name, 0, type, data, len);
        }
        printf("set %ls %ls: 0x%08lx\n", path, argv[2], (unsigned long)st);
    } else if (!wcscmp(op, L"get") && argc >= 3) {
        static BYTE buf[70000];
        ULONG got = 0;
        st = open_path(path, KEY_QUERY_VALUE, &key);
        if (st >= 0) {
            UNICODE_STRING name;
            RtlInitUnicodeString(&name, argv[2]);
            st = NtQueryValueKey(key, &name, 1, buf, sizeof buf, &got);
        }
        printf("get %ls %ls: 0x%08lx", path, argv[2], (unsigned long)st);
        if (st >= 0) {
            VALUE_FULL *v = (VALUE_FULL *)buf;
            printf(" %s ", type_name(v->Type));
            print_data(v->Type, buf + v->DataOffset, v->DataLength);
        }
        printf("\n");
    } else if (!wcscmp(op, L"small") && argc >= 3) {
        BYTE buf[12];
        ULONG got = 0;
        st = open_path(path, KEY_QUERY_VALUE, &key);
        if (st >= 0) {
            UNICODE_STRING name;
            RtlInitUnicodeString(&name, argv[2]);
            st = NtQueryValueKey(key, &name, 2, buf, sizeof buf, &got);
        }
        printf("small %ls %ls: 0x%08lx needs %lu\n", path, argv[2], (unsigned long)st, (unsigned long)got);
    } else if (!wcscmp(op, L"delval") && argc >= 3) {
        st = open_path(path, KEY_SET_VALUE, &key);
        if (st >= 0) {
            UNICODE_STRING name;
            RtlInitUnicodeString(&name, argv[2]);
            st = NtDeleteValueKey(key, &name);
        }
        printf("delval %ls %ls: 0x%08lx\n", path, argv[2], (unsigned long)st);
    } else if (!wcscmp(op, L"link") && argc >= 3) {
        wchar_t nt[2048], target[2048];
        nt_path(path, nt, 2048);
        nt_path(argv[2], target, 2048);
        UNICODE_STRING us;
        RtlInitUnicodeString(&us, nt);
        OBJECT_ATTRIBUTES oa;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        ULONG disposition = 0;
        st = NtCreateKey(&key, KEY_ALL_ACCESS | KEY_CREATE_LINK, &oa, 0, NULL, REG_OPTION_CREATE_LINK, &disposition);
        NTSTATUS set = st;
        if (st >= 0) {
            UNICODE_STRING name;
            RtlInitUnicodeString(&name, L"SymbolicLinkValue");
            set = NtSetValueKey(key, &name, 0, REG_LINK, target, (ULONG)(wcslen(target) * 2));
        }
        printf("link %ls: 0x%08lx target: 0x%08lx\n", path, (unsigned long)st, (unsigned long)set);
    } else if (!wcscmp(op, L"delkey")) {
        st = open_path(path, DELETE, &key);
        if (st >= 0)
            st = NtDeleteKey(key);
        printf("delkey %ls: 0x%08lx\n", path, (unsigned long)st);
    } else if (!wcscmp(op, L"rename") && argc >= 3) {
        st = open_path(path, KEY_WRITE | KEY_READ, &key);
        if (st >= 0) {
            UNICODE_STRING name;
            RtlInitUnicodeString(&name, argv[2]);
            st = NtRenameKey(key, &name);
        }
        printf("rename %ls %ls: 0x%08lx\n", path, argv[2], (unsigned long)st);
    } else if (!wcscmp(op, L"list") || !wcscmp(op, L"tree")) {
        st = open_path(path, KEY_READ, &key);
        if (st < 0)
            printf("list %ls: 0x%08lx\n", path, (unsigned long)st);
        else
            list_key(key, path, !wcscmp(op, L"tree"), 0);
    } else if (!wcscmp(op, L"name")) {
        static BYTE buf[8192];
        ULONG got;
        st = open_path(path, KEY_READ, &key);
        printf("name %ls: 0x%08lx", path, (unsigned long)st);
        if (st >= 0 && NtQueryKey(key, 3, buf, sizeof buf, &got) >= 0)
            printf(" key=%.*ls", (int)(*(ULONG *)buf / 2), (wchar_t *)(buf + 4));
        if (st >= 0 && NtQueryObject(key, ObjectNameInformation, buf, sizeof buf, &got) >= 0) {
            UNICODE_STRING *u = (UNICODE_STRING *)buf;
            printf(" object=%.*ls", (int)(u->Length / 2), u->Buffer);
        }
        printf("\n");
    } else if (!wcscmp(op, L"rel") && argc >= 5) {
        HANDLE root, sub = NULL;
        st = open_path(path, KEY_ALL_ACCESS, &root);
        if (st >= 0) {
            UNICODE_STRING us, name;
            RtlInitUnicodeString(&us, argv[2]);
            OBJECT_ATTRIBUTES oa;
            InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
            st = NtCreateKey(&sub, KEY_ALL_ACCESS, &oa, 0, NULL, 0, NULL);
            if (st >= 0) {
                RtlInitUnicodeString(&name, argv[3]);
                st = NtSetValueKey(sub, &name, 0, REG_SZ, argv[4], (ULONG)((wcslen(argv[4]) + 1) * 2));
                CloseHandle(sub);
            }
            CloseHandle(root);
        }
        printf("rel %ls %ls: 0x%08lx\n", path, argv[2], (unsigned long)st);
    } else if (!wcscmp(op, L"readonly-set") && argc >= 3) {
        st = open_path(path, KEY_READ, &key);
        if (st >= 0) {
            UNICODE_STRING name;
            RtlInitUnicodeString(&name, argv[2]);
            DWORD one = 1;
            st = NtSetValueKey(key, &name, 0, REG_DWORD, &one, 4);
        }
        printf("readonly-set %ls %ls: 0x%08lx\n", path, argv[2], (unsigned long)st);
    } else if (!wcscmp(op, L"multi") && argc >= 3) {
        VALUE_ENTRY entries[16] = {{0}};
        UNICODE_STRING names[16];
        ULONG n = 0;
        for (int i = 2; i < argc && n < 16; i++, n++) {
            RtlInitUnicodeString(&names[n], argv[i]);
            entries[n].ValueName = &names[n];
        }
        static BYTE buf[8192];
        ULONG len = sizeof buf, need = 0;
        st = open_path(path, KEY_QUERY_VALUE, &key);
        if (st >= 0)
            st = NtQueryMultipleValueKey(key, (void *)entries, n, buf, &len, &need);
        printf("multi %ls: 0x%08lx", path, (unsigned long)st);
        for (ULONG i = 0; st >= 0 && i < n; i++) {
            if (entries[i].DataOffset > sizeof buf || entries[i].DataLength > sizeof buf - entries[i].DataOffset) {
                printf(" (bad entry)");   /* Wine's own NtQueryMultipleValueKey is a stub */
                break;
            }
            printf(" %s:", type_name(entries[i].Type));
            print_data(entries[i].Type, buf + entries[i].DataOffset, entries[i].DataLength);
        }
        printf("\n");
    } else if (!wcscmp(op, L"notify") || !wcscmp(op, L"notify-self")) {
        st = open_path(path, KEY_NOTIFY | KEY_READ, &key);
        HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
        IO_STATUS_BLOCK io;
        if (st >= 0)
            st = NtNotifyChangeKey(key, event, NULL, NULL, &io, REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET,
                                   TRUE, NULL, 0, TRUE);
        if (st >= 0 && !wcscmp(op, L"notify-self")) {
            HANDLE other;
            if (open_path(path, KEY_SET_VALUE, &other) >= 0) {
                UNICODE_STRING name;
                RtlInitUnicodeString(&name, L"NotifyProbe");
                DWORD one = 1;
                NtSetValueKey(other, &name, 0, REG_DWORD, &one, 4);
                CloseHandle(other);
            }
        }
        DWORD wait = !wcscmp(op, L"notify") && argc >= 3 ? wcstoul(argv[2], NULL, 10) : 3000;
        if (st >= 0)
            printf("%ls %ls: ready\n", op, path), fflush(stdout);
        DWORD w = st >= 0 ? WaitForSingleObject(event, wait) : WAIT_FAILED;
        printf("%ls %ls: 0x%08lx %s\n", op, path, (unsigned long)st, w == WAIT_OBJECT_0 ? "changed" : "timeout");
        CloseHandle(event);
    } else if (!wcscmp(op, L"save") && argc >= 3) {
        HANDLE token;
        if (OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES, &token)) {
            TOKEN_PRIVILEGES tp = {1};
            LookupPrivilegeValueW(NULL, L"SeBackupPrivilege", &tp.Privileges[0].Luid);
            tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
            AdjustTokenPrivileges(token, FALSE, &tp, 0, NULL, NULL);
            CloseHandle(token);
        }
        HKEY h;
        DeleteFileW(argv[2]);
        LONG rc = RegOpenKeyExW(HKEY_CURRENT_USER, path + 5, 0, KEY_READ, &h);
        if (!rc) {
            rc = RegSaveKeyW(h, argv[2], NULL);
            RegCloseKey(h);
        }
        printf("save %ls: %ld\n", path, rc);
    } else {
        fprintf(stderr, "regtool: unknown operation %ls\n", op);
        return 2;
    }
    if (key)
        CloseHandle(key);
    fflush(stdout);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    UNICODE_STRING user;
    if (RtlFormatCurrentUserKeyPath(&user) >= 0)
        _snwprintf(g_user, 256, L"%.*ls", (int)(user.Length / 2), user.Buffer);
    int start = 1, rc = 0;
    for (int i = 1; i <= argc; i++) {
        if (i == argc || !wcscmp(argv[i], L"+")) {
            if (i > start && (rc = run_op(i - start, argv + start)) != 0)
                return rc;
            start = i + 1;
        }
    }
    return rc;
}

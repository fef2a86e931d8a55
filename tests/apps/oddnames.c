/* oddnames.c - oddnames.exe: a hostile program that hands the NT calls names
 * a careless virtualizer cannot make canonical (doubled and trailing
 * separators, embedded NULs, odd byte lengths, "." and "..", very long
 * names, names relative to a root handle), for tests/e2e/test_odd_names.py.
 *
 *   oddnames create KIND NAME [ROOT]   create (and write through) the object
 *   oddnames open KIND NAME [ROOT]     open an existing object (events: signal it)
 *   oddnames hold KIND NAME MS         create, print the status, keep it MS ms
 *   oddnames state NAME                an event's state: "signalled" or "clear"
 *   oddnames link NAME TARGET [ROOT]   NtCreateSymbolicLinkObject NAME -> TARGET
 *   oddnames dosdev LETTER TARGET      DefineDosDeviceW(LETTER:, TARGET), raw path
 *   oddnames undosdev LETTER           DefineDosDeviceW(DDD_REMOVE_DEFINITION, LETTER:)
 *
 * KIND: key (NtCreateKey + NtSetValueKey "v"), file (NtCreateFile + write),
 * event (NtCreateEvent / NtOpenEvent + NtSetEvent), pipe (create: a server
 * by NtCreateNamedPipeFile; open: a client by NtCreateFile + write).
 * NAME is an NT name (relative when ROOT is given, ROOT then being the NT
 * name of the directory, key or folder to open as RootDirectory; "dir:NAME"
 * opens an object directory whatever the kind), with
 * escapes: "{0}" an embedded NUL unit, "{odd}" (at the end) one more byte
 * of length than the units, "{Nx}" N copies of the next character.
 * Every operation prints "<op> <status hex>" and exits 0. */
#include <windows.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

NTSTATUS NTAPI NtCreateKey(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG, PUNICODE_STRING, ULONG, PULONG);
NTSTATUS NTAPI NtOpenKey(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtSetValueKey(HANDLE, PUNICODE_STRING, ULONG, ULONG, PVOID, ULONG);
NTSTATUS NTAPI NtCreateEvent(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, int, BOOLEAN);
NTSTATUS NTAPI NtOpenEvent(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtSetEvent(HANDLE, PLONG);
NTSTATUS NTAPI NtQueryEvent(HANDLE, int, PVOID, ULONG, PULONG);
NTSTATUS NTAPI NtOpenDirectoryObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtCreateSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PUNICODE_STRING);
NTSTATUS NTAPI NtCreateNamedPipeFile(PHANDLE, ULONG, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG, ULONG, ULONG,
                                     ULONG, ULONG, ULONG, ULONG, ULONG, PLARGE_INTEGER);
NTSTATUS NTAPI NtWriteFile(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, PLARGE_INTEGER,
                           PULONG);

/* Expands the escapes of arg into a counted string (heap, never freed: one
 * call per process). */
static UNICODE_STRING parse_name(const wchar_t *arg)
{
    size_t cap = wcslen(arg) + 1;
    for (const wchar_t *p = arg; *p; p++)
        if (*p == L'{' && iswdigit(p[1]))
            cap += wcstoul(p + 1, NULL, 10);
    wchar_t *out = malloc(cap * sizeof(wchar_t));
    size_t n = 0;
    int odd = 0;
    for (const wchar_t *p = arg; *p;) {
        if (!wcsncmp(p, L"{0}", 3)) {
            out[n++] = 0;
            p += 3;
        } else if (!wcsncmp(p, L"{odd}", 5)) {
            odd = 1;
            p += 5;
        } else if (*p == L'{' && iswdigit(p[1])) {
            wchar_t *end;
            unsigned long count = wcstoul(p + 1, &end, 10);
            if (*end == L'x' && end[1] == L'}' && end[2]) {
                for (unsigned long i = 0; i < count; i++)
                    out[n++] = end[2];
                p = end + 3;
            } else {
                out[n++] = *p++;
            }
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = 0;
    UNICODE_STRING us;
    us.Buffer = out;
    us.Length = (USHORT)(n * 2 + odd);
    us.MaximumLength = (USHORT)(n * 2 + 2);
    return us;
}

static void attributes(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *name, HANDLE root)
{
    InitializeObjectAttributes(oa, name, OBJ_CASE_INSENSITIVE, root, NULL);
}

static HANDLE open_root(const wchar_t *kind, const wchar_t *root_name)
{
    if (!root_name)
        return NULL;
    if (!wcsncmp(root_name, L"dir:", 4)) {   /* an object directory, whatever the kind */
        kind = L"dir";
        root_name += 4;
    }
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, root_name);
    OBJECT_ATTRIBUTES oa;
    attributes(&oa, &us, NULL);
    HANDLE h = NULL;
    NTSTATUS st;
    IO_STATUS_BLOCK io;
    if (!wcscmp(kind, L"key"))
        st = NtOpenKey(&h, KEY_ALL_ACCESS, &oa);
    else if (!wcscmp(kind, L"file") || !wcscmp(kind, L"pipe"))
        st = NtOpenFile(&h, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, FILE_SHARE_READ | FILE_SHARE_WRITE,
                        FILE_SYNCHRONOUS_IO_NONALERT);
    else
        st = NtOpenDirectoryObject(&h, 0xf /* query, traverse, create object, create subdirectory */, &oa);
    printf("root %08lx\n", (unsigned long)st);
    return st >= 0 ? h : NULL;
}

static NTSTATUS do_key(BOOL create, OBJECT_ATTRIBUTES *oa)
{
    HANDLE h;
    ULONG disposition = 0;
    NTSTATUS st = create ? NtCreateKey(&h, KEY_ALL_ACCESS, oa, 0, NULL, 0, &disposition)
                         : NtOpenKey(&h, KEY_ALL_ACCESS, oa);
    if (st < 0)
        return st;
    UNICODE_STRING v;
    RtlInitUnicodeString(&v, L"v");
    NTSTATUS set = NtSetValueKey(h, &v, 0, REG_SZ, L"x", 4);
    printf("setvalue %08lx\n", (unsigned long)set);
    NtClose(h);
    return st;
}

static NTSTATUS do_file(BOOL create, OBJECT_ATTRIBUTES *oa)
{
    HANDLE h;
    IO_STATUS_BLOCK io;
    NTSTATUS st = NtCreateFile(&h, FILE_GENERIC_WRITE | FILE_GENERIC_READ, oa, &io, NULL, FILE_ATTRIBUTE_NORMAL,
                               FILE_SHARE_READ | FILE_SHARE_WRITE, create ? FILE_OPEN_IF : FILE_OPEN,
                               FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, NULL, 0);
    if (st < 0)
        return st;
    NTSTATUS w = NtWriteFile(h, NULL, NULL, NULL, &io, "X", 1, NULL, NULL);
    printf("write %08lx\n", (unsigned long)w);
    NtClose(h);
    return st;
}

static NTSTATUS do_event(BOOL create, OBJECT_ATTRIBUTES *oa, HANDLE *keep)
{
    HANDLE h;
    NTSTATUS st = create ? NtCreateEvent(&h, EVENT_ALL_ACCESS, oa, 0 /* notification */, FALSE)
                         : NtOpenEvent(&h, EVENT_MODIFY_STATE | SYNCHRONIZE, oa);
    if (st < 0)
        return st;
    if (!create)
        printf("setevent %08lx\n", (unsigned long)NtSetEvent(h, NULL));
    *keep = h;
    return st;
}

static NTSTATUS do_pipe(BOOL create, OBJECT_ATTRIBUTES *oa, HANDLE *keep)
{
    HANDLE h;
    IO_STATUS_BLOCK io;
    NTSTATUS st;
    if (create) {
        LARGE_INTEGER timeout;
        timeout.QuadPart = -500000;
        st = NtCreateNamedPipeFile(&h, GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE, oa, &io,
                                   FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN_IF, FILE_SYNCHRONOUS_IO_NONALERT,
                                   0, 0, 0, 4, 4096, 4096, &timeout);
    } else {
        st = NtCreateFile(&h, GENERIC_WRITE | SYNCHRONIZE, oa, &io, NULL, 0, FILE_SHARE_READ | FILE_SHARE_WRITE,
                          FILE_OPEN, FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
        if (st >= 0)
            printf("write %08lx\n", (unsigned long)NtWriteFile(h, NULL, NULL, NULL, &io, "hello", 5, NULL, NULL));
    }
    if (st >= 0)
        *keep = h;
    return st;
}

static NTSTATUS run(const wchar_t *op, const wchar_t *kind, const wchar_t *name_arg, const wchar_t *root_name,
                    HANDLE *keep)
{
    HANDLE root = open_root(kind, root_name);
    if (root_name && !root)
        return STATUS_INVALID_HANDLE;
    UNICODE_STRING name = parse_name(name_arg);
    OBJECT_ATTRIBUTES oa;
    attributes(&oa, &name, root);
    BOOL create = wcscmp(op, L"open") != 0;
    if (!wcscmp(kind, L"key"))
        return do_key(create, &oa);
    if (!wcscmp(kind, L"file"))
        return do_file(create, &oa);
    if (!wcscmp(kind, L"event"))
        return do_event(create, &oa, keep);
    if (!wcscmp(kind, L"pipe"))
        return do_pipe(create, &oa, keep);
    return STATUS_INVALID_PARAMETER;
}

static NTSTATUS event_state(const wchar_t *name_arg)
{
    UNICODE_STRING name = parse_name(name_arg);
    OBJECT_ATTRIBUTES oa;
    attributes(&oa, &name, NULL);
    HANDLE h;
    NTSTATUS st = NtOpenEvent(&h, 0x0001 /* EVENT_QUERY_STATE */ | SYNCHRONIZE, &oa);
    if (st < 0)
        return st;
    struct {
        int type;
        LONG state;
    } info;
    st = NtQueryEvent(h, 0 /* EventBasicInformation */, &info, sizeof info, NULL);
    if (st >= 0)
        printf("%s\n", info.state ? "signalled" : "clear");
    return st;
}

static NTSTATUS make_link(const wchar_t *name_arg, const wchar_t *target_arg, const wchar_t *root_name)
{
    HANDLE root = open_root(L"dir", root_name);
    if (root_name && !root)
        return STATUS_INVALID_HANDLE;
    UNICODE_STRING name = parse_name(name_arg), target = parse_name(target_arg);
    OBJECT_ATTRIBUTES oa;
    attributes(&oa, &name, root);
    HANDLE h;
    /* The link lives while a handle does: the handle is left open for the
     * rest of the run (the next operations follow "+" in this process). */
    return NtCreateSymbolicLinkObject(&h, 0xf0001 /* SYMBOLIC_LINK_ALL_ACCESS */, &oa, &target);
}

int wmain(int argc, wchar_t **argv)
{
    HANDLE keep = NULL;
    /* Operations separated by "+" run in one process (a link made by the
     * first is still there for the second). */
    int i = 1;
    while (i < argc) {
        int end = i;
        while (end < argc && wcscmp(argv[end], L"+"))
            end++;
        int n = end - i;
        wchar_t **a = argv + i;
        NTSTATUS st = STATUS_INVALID_PARAMETER;
        const wchar_t *op = n ? a[0] : L"";
        if (!wcscmp(op, L"create") || !wcscmp(op, L"open")) {
            if (n >= 3)
                st = run(op, a[1], a[2], n >= 4 ? a[3] : NULL, &keep);
        } else if (!wcscmp(op, L"hold") && n >= 4) {
            st = run(op, a[1], a[2], NULL, &keep);
            printf("hold %08lx\n", (unsigned long)st);
            fflush(stdout);
            Sleep(wcstoul(a[3], NULL, 10));
        } else if (!wcscmp(op, L"state") && n >= 2) {
            st = event_state(a[1]);
        } else if (!wcscmp(op, L"link") && n >= 3) {
            st = make_link(a[1], a[2], n >= 4 ? a[3] : NULL);
        } else if (!wcscmp(op, L"dosdev") && n >= 3) {
            wchar_t dev[3] = {a[1][0], L':', 0};
            BOOL ok = DefineDosDeviceW(DDD_RAW_TARGET_PATH, dev, a[2]);
            st = ok ? 0 : (NTSTATUS)(0xC0000000u | GetLastError());
        } else if (!wcscmp(op, L"undosdev") && n >= 2) {
            wchar_t dev[3] = {a[1][0], L':', 0};
            BOOL ok = DefineDosDeviceW(DDD_REMOVE_DEFINITION | DDD_RAW_TARGET_PATH, dev, NULL);
            st = ok ? 0 : (NTSTATUS)(0xC0000000u | GetLastError());
        }
        printf("%ls %08lx\n", op, (unsigned long)st);
        fflush(stdout);
        i = end + 1;
    }
    (void)keep;
    return 0;
}

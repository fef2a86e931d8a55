/* conform.c - conform.exe: the differential conformance checks of issue 18.
 *
 *   conform seed  files DIR      create the host-side fixture of the files group
 *   conform files DIR            file and directory semantics under DIR
 *   conform seed  keys KEY       create the host-side fixture of the keys group
 *   conform keys KEY             registry semantics under KEY (HKCU\...)
 *   conform objects TAG          named objects, directories, symbolic links
 *   conform robust N             robustness case N (one per process: a crash
 *                                must only end that case); "conform robust count"
 *
 * The idea: a boxed program must not be able to tell it is boxed. The same
 * checks run once in a box and once on the host; tests/e2e/test_conformance.py
 * compares the two outputs line by line, and any difference is a bug (or a
 * known one, listed there with its reason). Every line starts with a check id
 * and holds only what must be equal on both sides: statuses, dispositions,
 * sizes, flags and names relative to DIR / KEY / TAG, never the unique names
 * themselves. The box run goes first, so both runs start from the same host
 * state (the box's changes never reach the host). */
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <winternl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* ---- NT declarations the SDK headers leave out -------------------------- */
NTSTATUS NTAPI NtCreateFile(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG,
                            ULONG, ULONG, ULONG, PVOID, ULONG);
NTSTATUS NTAPI NtOpenFile(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG);
NTSTATUS NTAPI NtDeleteFile(POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtSetInformationFile(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, FILE_INFORMATION_CLASS);
NTSTATUS NTAPI NtQueryInformationFile(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, FILE_INFORMATION_CLASS);
NTSTATUS NTAPI NtQueryDirectoryFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG,
                                    FILE_INFORMATION_CLASS, BOOLEAN, PUNICODE_STRING, BOOLEAN);
NTSTATUS NTAPI NtQueryAttributesFile(POBJECT_ATTRIBUTES, PVOID);
NTSTATUS NTAPI NtQueryFullAttributesFile(POBJECT_ATTRIBUTES, PVOID);
NTSTATUS NTAPI NtNotifyChangeDirectoryFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, ULONG,
                                           BOOLEAN);
NTSTATUS NTAPI NtWriteFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, PLARGE_INTEGER, PULONG);
NTSTATUS NTAPI NtReadFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, PLARGE_INTEGER, PULONG);
NTSTATUS NTAPI NtQuerySecurityObject(HANDLE, SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, ULONG, PULONG);
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
NTSTATUS NTAPI NtFlushKey(HANDLE);
NTSTATUS NTAPI NtCreateMutant(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, BOOLEAN);
NTSTATUS NTAPI NtOpenMutant(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtCreateEvent(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, ULONG, BOOLEAN);
NTSTATUS NTAPI NtOpenEvent(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtCreateSemaphore(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, LONG, LONG);
NTSTATUS NTAPI NtCreateDirectoryObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtOpenDirectoryObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQueryDirectoryObject(HANDLE, PVOID, ULONG, BOOLEAN, BOOLEAN, PULONG, PULONG);
NTSTATUS NTAPI NtCreateSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PUNICODE_STRING);
NTSTATUS NTAPI NtOpenSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQuerySymbolicLinkObject(HANDLE, PUNICODE_STRING, PULONG);
NTSTATUS NTAPI NtCreateSection(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PLARGE_INTEGER, ULONG, ULONG, HANDLE);
NTSTATUS NTAPI NtOpenSection(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI RtlFormatCurrentUserKeyPath(PUNICODE_STRING);

/* Registry information records (ntddk; not in the user-mode headers). */
typedef struct { LARGE_INTEGER LastWriteTime; ULONG TitleIndex, NameLength; WCHAR Name[1]; } KEY_BASIC_INFORMATION;
typedef struct {
    LARGE_INTEGER LastWriteTime;
    ULONG TitleIndex, ClassOffset, ClassLength, SubKeys, MaxNameLen, MaxClassLen, Values, MaxValueNameLen,
        MaxValueDataLen;
    WCHAR Class[1];
} KEY_FULL_INFORMATION;
typedef struct { ULONG TitleIndex, Type, NameLength; WCHAR Name[1]; } KEY_VALUE_BASIC_INFORMATION;
typedef struct { ULONG TitleIndex, Type, DataOffset, DataLength, NameLength; WCHAR Name[1]; } KEY_VALUE_FULL_INFORMATION;
typedef struct { ULONG TitleIndex, Type, DataLength; UCHAR Data[1]; } KEY_VALUE_PARTIAL_INFORMATION;
#define DIRECTORY_QUERY 0x0001
#define DIRECTORY_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | 0xF)
#define SYMBOLIC_LINK_QUERY 0x0001
#define SYMBOLIC_LINK_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | 0x1)

#define FILE_CLASS(n) ((FILE_INFORMATION_CLASS)(n))
enum {
    C_FileDirectoryInformation = 1, C_FileFullDirectoryInformation = 2, C_FileBothDirectoryInformation = 3,
    C_FileBasicInformation = 4, C_FileStandardInformation = 5, C_FileInternalInformation = 6,
    C_FileEaInformation = 7, C_FileAccessInformation = 8, C_FileNameInformation = 9,
    C_FileRenameInformation = 10, C_FileLinkInformation = 11, C_FileNamesInformation = 12,
    C_FileDispositionInformation = 13, C_FilePositionInformation = 14, C_FileModeInformation = 16,
    C_FileAlignmentInformation = 17, C_FileAllInformation = 18, C_FileEndOfFileInformation = 20,
    C_FileStreamInformation = 22, C_FileCompressionInformation = 28, C_FileNetworkOpenInformation = 34,
    C_FileAttributeTagInformation = 35, C_FileIdBothDirectoryInformation = 37, C_FileIdFullDirectoryInformation = 38,
};

/* ---- output ---------------------------------------------------------------- */
static void say(const char *id, const char *fmt, ...)
{
    va_list ap;
    printf("%s ", id);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* A wide string as UTF-8 for printing (names relative to the fixture). */
static const char *u8(const wchar_t *s, size_t chars)
{
    static char out[4][1024];
    static int slot;
    char *o = out[slot++ & 3];
    int n = WideCharToMultiByte(CP_UTF8, 0, s, (int)chars, o, sizeof out[0] - 1, NULL, NULL);
    o[n > 0 ? n : 0] = 0;
    return o;
}

/* The part of NAME after the last occurrence of TAG (the fixture's unique
 * name), so the output never holds where the fixture is. */
static const char *after_tag(const wchar_t *name, size_t chars, const wchar_t *tag)
{
    size_t tl = wcslen(tag), last = (size_t)-1;
    for (size_t i = 0; i + tl <= chars; i++)
        if (_wcsnicmp(name + i, tag, tl) == 0)
            last = i + tl;
    if (last == (size_t)-1)
        return "<outside>";
    return u8(name + last, chars - last);
}

/* ---- file helpers ---------------------------------------------------------- */
static wchar_t g_dir[MAX_PATH];   /* DOS path of the fixture folder */
static const wchar_t *g_tag;      /* its last component */

static const wchar_t *dos(const wchar_t *rel)
{
    static wchar_t buf[4][1024];
    static int slot;
    wchar_t *b = buf[slot++ & 3];
    swprintf(b, 1024, rel && *rel ? L"%ls\\%ls" : L"%ls", g_dir, rel);
    return b;
}

static const wchar_t *nt(const wchar_t *rel)
{
    static wchar_t buf[4][1024];
    static int slot;
    wchar_t *b = buf[slot++ & 3];
    swprintf(b, 1024, rel && *rel ? L"\\??\\%ls\\%ls" : L"\\??\\%ls", g_dir, rel);
    return b;
}

static NTSTATUS nt_create(HANDLE *h, const wchar_t *rel, ACCESS_MASK access, ULONG share, ULONG disposition,
                          ULONG options, ULONG_PTR *info)
{
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK io = {0};
    RtlInitUnicodeString(&us, nt(rel));
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    *h = NULL;
    NTSTATUS st = NtCreateFile(h, access | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL, share, disposition,
                               options | FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
    if (info)
        *info = st >= 0 ? io.Information : 0;
    return st;
}

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

static void put_file(const wchar_t *rel, const char *text)
{
    HANDLE h;
    if (nt_create(&h, rel, GENERIC_WRITE, SHARE_ALL, FILE_OVERWRITE_IF, FILE_NON_DIRECTORY_FILE, NULL) >= 0) {
        IO_STATUS_BLOCK io;
        NtWriteFile(h, NULL, NULL, NULL, &io, (void *)text, (ULONG)strlen(text), NULL, NULL);
        CloseHandle(h);
    }
}

static void make_dir(const wchar_t *rel)
{
    HANDLE h;
    if (nt_create(&h, rel, GENERIC_READ, SHARE_ALL, FILE_OPEN_IF, FILE_DIRECTORY_FILE, NULL) >= 0)
        CloseHandle(h);
}

/* Whether REL exists, as NtQueryAttributesFile says (status only). */
static NTSTATUS exists(const wchar_t *rel)
{
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    FILE_BASIC_INFORMATION fbi;
    RtlInitUnicodeString(&us, nt(rel));
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    return NtQueryAttributesFile(&oa, &fbi);
}

static void read_back(const char *id, const wchar_t *rel)
{
    HANDLE h;
    char buf[256] = {0};
    NTSTATUS st = nt_create(&h, rel, GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    if (st < 0) {
        say(id, "read %s: 0x%08lx", u8(rel, wcslen(rel)), st);
        return;
    }
    IO_STATUS_BLOCK io;
    st = NtReadFile(h, NULL, NULL, NULL, &io, buf, sizeof buf - 1, NULL, NULL);
    CloseHandle(h);
    say(id, "read %s: 0x%08lx \"%s\"", u8(rel, wcslen(rel)), st, st >= 0 ? buf : "");
}

/* The names of a folder, in the order NtQueryDirectoryFile gives them. */
static void list_dir(const char *id, const wchar_t *rel, const wchar_t *mask)
{
    HANDLE h;
    NTSTATUS st = nt_create(&h, rel, FILE_LIST_DIRECTORY, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE, NULL);
    if (st < 0) {
        say(id, "list open 0x%08lx", st);
        return;
    }
    char line[4096] = "";
    size_t used = 0;
    BOOLEAN first = TRUE;
    UNICODE_STRING us;
    if (mask)
        RtlInitUnicodeString(&us, mask);
    for (;;) {
        union { FILE_NAMES_INFORMATION info; BYTE raw[4096]; } buf;
        IO_STATUS_BLOCK io;
        st = NtQueryDirectoryFile(h, NULL, NULL, NULL, &io, &buf, sizeof buf, FILE_CLASS(C_FileNamesInformation),
                                  FALSE, mask ? &us : NULL, first);
        first = FALSE;
        if (st < 0)
            break;
        BYTE *p = buf.raw;
        for (;;) {
            FILE_NAMES_INFORMATION *e = (FILE_NAMES_INFORMATION *)p;
            used += snprintf(line + used, sizeof line - used, " %s", u8(e->FileName, e->FileNameLength / 2));
            if (!e->NextEntryOffset || used >= sizeof line - 64)
                break;
            p += e->NextEntryOffset;
        }
    }
    CloseHandle(h);
    say(id, "list end=0x%08lx:%s", st, line);
}

static void std_info(const char *id, HANDLE h)
{
    FILE_STANDARD_INFORMATION s;
    IO_STATUS_BLOCK io;
    NTSTATUS st = NtQueryInformationFile(h, &io, &s, sizeof s, FILE_CLASS(C_FileStandardInformation));
    if (st < 0)
        say(id, "standard 0x%08lx", st);
    else
        say(id, "standard eof=%lld links=%lu delete_pending=%d dir=%d", s.EndOfFile.QuadPart,
            (unsigned long)s.NumberOfLinks, s.DeletePending, s.Directory);
}

static NTSTATUS set_disposition(HANDLE h, BOOLEAN del)
{
    FILE_DISPOSITION_INFORMATION d = { del };
    IO_STATUS_BLOCK io;
    return NtSetInformationFile(h, &io, &d, sizeof d, FILE_CLASS(C_FileDispositionInformation));
}

static NTSTATUS rename_to(HANDLE h, const wchar_t *rel, BOOLEAN replace)
{
    union { FILE_RENAME_INFORMATION r; BYTE raw[2048]; } buf;
    const wchar_t *target = nt(rel);
    memset(&buf, 0, sizeof buf);
    buf.r.ReplaceIfExists = replace;
    buf.r.FileNameLength = (ULONG)(wcslen(target) * 2);
    memcpy(buf.r.FileName, target, buf.r.FileNameLength);
    IO_STATUS_BLOCK io;
    return NtSetInformationFile(h, &io, &buf, sizeof buf, FILE_CLASS(C_FileRenameInformation));
}

/* ---- the files group ---------------------------------------------------------- */
static void seed_files(void)
{
    CreateDirectoryW(g_dir, NULL);
    put_file(L"host.txt", "host data");
    put_file(L"host2.txt", "second");
    put_file(L"gone.txt", "to delete");
    put_file(L"doc.txt", "delete on close");
    make_dir(L"hostdir");
    put_file(L"hostdir\\a.txt", "a");
    put_file(L"hostdir\\b.txt", "b");
    make_dir(L"full");
    put_file(L"full\\inside.txt", "x");
    make_dir(L"watched");
    for (int i = 1; i <= 7; i++) {
        wchar_t name[64];
        swprintf(name, 64, L"watched\\w%d.txt", i);
        put_file(name, "w");
    }
}

static void files_create_dispositions(void)
{
    HANDLE h;
    ULONG_PTR info;
    NTSTATUS st = nt_create(&h, L"new.txt", GENERIC_WRITE, SHARE_ALL, FILE_CREATE, FILE_NON_DIRECTORY_FILE, &info);
    say("F01", "create new: 0x%08lx info=%lu", st, (unsigned long)info);
    if (st >= 0)
        CloseHandle(h);
    st = nt_create(&h, L"new.txt", GENERIC_WRITE, SHARE_ALL, FILE_CREATE, FILE_NON_DIRECTORY_FILE, &info);
    say("F02", "create existing: 0x%08lx", st);
    static const struct { const char *id; const char *what; ULONG disp; } cases[] = {
        { "F03", "open_if", FILE_OPEN_IF }, { "F04", "overwrite_if", FILE_OVERWRITE_IF },
        { "F05", "supersede", FILE_SUPERSEDE }, { "F06", "overwrite", FILE_OVERWRITE }, { "F07", "open", FILE_OPEN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st = nt_create(&h, L"new.txt", GENERIC_WRITE, SHARE_ALL, cases[i].disp, FILE_NON_DIRECTORY_FILE, &info);
        say(cases[i].id, "%s existing: 0x%08lx info=%lu", cases[i].what, st, (unsigned long)info);
        if (st >= 0)
            CloseHandle(h);
    }
    st = nt_create(&h, L"missing.txt", GENERIC_READ, SHARE_ALL, FILE_OPEN, 0, NULL);
    say("F08", "open missing: 0x%08lx", st);
    st = nt_create(&h, L"nodir\\x.txt", GENERIC_READ, SHARE_ALL, FILE_OPEN, 0, NULL);
    say("F09", "open in missing folder: 0x%08lx", st);
    st = nt_create(&h, L"nodir\\x.txt", GENERIC_WRITE, SHARE_ALL, FILE_CREATE, 0, NULL);
    say("F10", "create in missing folder: 0x%08lx", st);
    st = nt_create(&h, L"NEW.TXT", GENERIC_READ, SHARE_ALL, FILE_OPEN, 0, NULL);
    say("F11", "open other case: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(h);
    st = nt_create(&h, L"hostdir", GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F12", "folder as file: 0x%08lx", st);
    st = nt_create(&h, L"host.txt", GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE, NULL);
    say("F13", "file as folder: 0x%08lx", st);
}

static void files_information(void)
{
    HANDLE h;
    NTSTATUS st = nt_create(&h, L"info.txt", GENERIC_READ | GENERIC_WRITE, SHARE_ALL, FILE_OVERWRITE_IF,
                            FILE_NON_DIRECTORY_FILE, NULL);
    if (st < 0) {
        say("F20", "create: 0x%08lx", st);
        return;
    }
    IO_STATUS_BLOCK io;
    char data[100];
    memset(data, 'z', sizeof data);
    st = NtWriteFile(h, NULL, NULL, NULL, &io, data, sizeof data, NULL, NULL);
    say("F20", "write: 0x%08lx n=%lu", st, (unsigned long)io.Information);
    std_info("F21", h);
    FILE_POSITION_INFORMATION pos;
    st = NtQueryInformationFile(h, &io, &pos, sizeof pos, FILE_CLASS(C_FilePositionInformation));
    say("F22", "position: 0x%08lx %lld", st, pos.CurrentByteOffset.QuadPart);
    FILE_BASIC_INFORMATION basic;
    st = NtQueryInformationFile(h, &io, &basic, sizeof basic, FILE_CLASS(C_FileBasicInformation));
    say("F23", "basic: 0x%08lx attrs=0x%lx", st, (unsigned long)basic.FileAttributes);
    union { FILE_NAME_INFORMATION n; BYTE raw[2048]; } name;
    st = NtQueryInformationFile(h, &io, &name, sizeof name, FILE_CLASS(C_FileNameInformation));
    say("F24", "name: 0x%08lx %s", st, st >= 0 ? after_tag(name.n.FileName, name.n.FileNameLength / 2, g_tag) : "");
    /* Every other class: status and the byte count the call reports. */
    static const struct { const char *id; int cls; } classes[] = {
        { "F25", C_FileInternalInformation }, { "F26", C_FileEaInformation }, { "F27", C_FileAccessInformation },
        { "F28", C_FileModeInformation }, { "F29", C_FileAlignmentInformation }, { "F30", C_FileAllInformation },
        { "F31", C_FileStreamInformation }, { "F32", C_FileCompressionInformation },
        { "F33", C_FileNetworkOpenInformation }, { "F34", C_FileAttributeTagInformation },
    };
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        BYTE raw[4096];
        st = NtQueryInformationFile(h, &io, raw, sizeof raw, FILE_CLASS(classes[i].cls));
        say(classes[i].id, "class %d: 0x%08lx", classes[i].cls, st);
    }
    FILE_END_OF_FILE_INFORMATION eof = { { .QuadPart = 10 } };
    st = NtSetInformationFile(h, &io, &eof, sizeof eof, FILE_CLASS(C_FileEndOfFileInformation));
    say("F35", "truncate: 0x%08lx", st);
    std_info("F36", h);
    basic.CreationTime.QuadPart = basic.LastAccessTime.QuadPart = 0;
    basic.LastWriteTime.QuadPart = 126227808000000000LL;   /* 2001-01-01 */
    basic.ChangeTime.QuadPart = 0;
    basic.FileAttributes = FILE_ATTRIBUTE_READONLY;
    st = NtSetInformationFile(h, &io, &basic, sizeof basic, FILE_CLASS(C_FileBasicInformation));
    FILE_BASIC_INFORMATION again;
    NtQueryInformationFile(h, &io, &again, sizeof again, FILE_CLASS(C_FileBasicInformation));
    say("F37", "set basic: 0x%08lx write=%lld attrs=0x%lx", st, again.LastWriteTime.QuadPart,
        (unsigned long)again.FileAttributes);
    basic.FileAttributes = FILE_ATTRIBUTE_NORMAL;
    NtSetInformationFile(h, &io, &basic, sizeof basic, FILE_CLASS(C_FileBasicInformation));
    BYTE sd[4096];
    ULONG need = 0;
    st = NtQuerySecurityObject(h, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, sd, sizeof sd, &need);
    say("F38", "security: 0x%08lx", st);
    CloseHandle(h);

    FILE_NETWORK_OPEN_INFORMATION full;
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    RtlInitUnicodeString(&us, nt(L"info.txt"));
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    st = NtQueryFullAttributesFile(&oa, &full);
    say("F39", "full attributes: 0x%08lx eof=%lld write=%lld", st, full.EndOfFile.QuadPart,
        full.LastWriteTime.QuadPart);
    st = exists(L"missing.txt");
    say("F40", "attributes of missing: 0x%08lx", st);
}

static void files_sharing(void)
{
    HANDLE a, b;
    NTSTATUS st = nt_create(&a, L"host.txt", GENERIC_READ, FILE_SHARE_READ, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F50", "open share-read: 0x%08lx", st);
    NTSTATUS st2 = nt_create(&b, L"host.txt", GENERIC_WRITE, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F51", "second open for write: 0x%08lx", st2);
    if (st2 >= 0)
        CloseHandle(b);
    st2 = nt_create(&b, L"host.txt", GENERIC_READ, FILE_SHARE_READ, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F52", "second open for read: 0x%08lx", st2);
    if (st2 >= 0)
        CloseHandle(b);
    if (st >= 0)
        CloseHandle(a);
    /* Modify a host file: the change is seen through a new handle. */
    HANDLE w;
    st = nt_create(&w, L"host.txt", GENERIC_WRITE, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    if (st >= 0) {
        IO_STATUS_BLOCK io;
        LARGE_INTEGER off = { .QuadPart = 0 };
        NtWriteFile(w, NULL, NULL, NULL, &io, "HOST", 4, &off, NULL);
        CloseHandle(w);
    }
    say("F53", "write host file: 0x%08lx", st);
    read_back("F54", L"host.txt");
}

static void files_delete(void)
{
    HANDLE a, b;
    NTSTATUS st;
    /* Delete-on-close, alone. */
    put_file(L"d1.txt", "1");
    st = nt_create(&a, L"d1.txt", DELETE, SHARE_ALL, FILE_OPEN, FILE_DELETE_ON_CLOSE | FILE_NON_DIRECTORY_FILE, NULL);
    say("F60", "open delete-on-close: 0x%08lx", st);
    say("F61", "exists while open: 0x%08lx", exists(L"d1.txt"));
    if (st >= 0)
        CloseHandle(a);
    say("F62", "exists after close: 0x%08lx", exists(L"d1.txt"));
    /* Delete-on-close while another handle is open: pending until the last close. */
    put_file(L"d2.txt", "2");
    nt_create(&a, L"d2.txt", GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    st = nt_create(&b, L"d2.txt", DELETE, SHARE_ALL, FILE_OPEN, FILE_DELETE_ON_CLOSE | FILE_NON_DIRECTORY_FILE, NULL);
    say("F63", "second handle delete-on-close: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(b);
    std_info("F64", a);
    HANDLE c;
    st = nt_create(&c, L"d2.txt", GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F65", "reopen while pending: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(c);
    say("F66", "exists while pending: 0x%08lx", exists(L"d2.txt"));
    CloseHandle(a);
    say("F67", "exists after last close: 0x%08lx", exists(L"d2.txt"));
    /* Disposition set, then cleared (undelete), then close: kept. */
    put_file(L"d3.txt", "3");
    st = nt_create(&a, L"d3.txt", DELETE | GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F68", "set disposition: 0x%08lx", set_disposition(a, TRUE));
    std_info("F69", a);
    say("F70", "clear disposition: 0x%08lx", set_disposition(a, FALSE));
    if (st >= 0)
        CloseHandle(a);
    say("F71", "exists after undelete: 0x%08lx", exists(L"d3.txt"));
    /* Disposition set, close: gone. */
    st = nt_create(&a, L"d3.txt", DELETE, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    set_disposition(a, TRUE);
    if (st >= 0)
        CloseHandle(a);
    say("F72", "exists after disposition close: 0x%08lx", exists(L"d3.txt"));
    /* DeleteFile while another handle is open. */
    put_file(L"d4.txt", "4");
    nt_create(&a, L"d4.txt", GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    BOOL ok = DeleteFileW(dos(L"d4.txt"));
    say("F73", "DeleteFile with a handle open: %d err=%lu", ok, ok ? 0 : GetLastError());
    say("F74", "exists while open: 0x%08lx", exists(L"d4.txt"));
    CloseHandle(a);
    say("F75", "exists after close: 0x%08lx", exists(L"d4.txt"));
    /* A host file, deleted with delete-on-close and with DeleteFile. */
    st = nt_create(&a, L"doc.txt", DELETE, SHARE_ALL, FILE_OPEN, FILE_DELETE_ON_CLOSE | FILE_NON_DIRECTORY_FILE, NULL);
    say("F76", "host file delete-on-close: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(a);
    say("F77", "host file after close: 0x%08lx", exists(L"doc.txt"));
    ok = DeleteFileW(dos(L"gone.txt"));
    say("F78", "DeleteFile host file: %d err=%lu exists=0x%08lx", ok, ok ? 0 : GetLastError(), exists(L"gone.txt"));
    /* NtDeleteFile. */
    put_file(L"d5.txt", "5");
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    RtlInitUnicodeString(&us, nt(L"d5.txt"));
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
    st = NtDeleteFile(&oa);
    say("F79", "NtDeleteFile: 0x%08lx exists=0x%08lx", st, exists(L"d5.txt"));
    /* A non-empty folder opened delete-on-close is kept. */
    st = nt_create(&a, L"full", DELETE, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE | FILE_DELETE_ON_CLOSE, NULL);
    say("F80", "non-empty folder delete-on-close: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(a);
    say("F81", "folder after close: 0x%08lx inside=0x%08lx", exists(L"full"), exists(L"full\\inside.txt"));
    st = nt_create(&a, L"full", DELETE, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE, NULL);
    say("F82", "non-empty folder disposition: 0x%08lx", st >= 0 ? set_disposition(a, TRUE) : st);
    if (st >= 0)
        CloseHandle(a);
}

static void files_rename(void)
{
    HANDLE a, b;
    put_file(L"r1.txt", "one");
    put_file(L"r2.txt", "two");
    NTSTATUS st = nt_create(&a, L"r1.txt", DELETE | GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F90", "rename over existing, no replace: 0x%08lx", rename_to(a, L"r2.txt", FALSE));
    say("F91", "rename over existing, replace: 0x%08lx", rename_to(a, L"r2.txt", TRUE));
    union { FILE_NAME_INFORMATION n; BYTE raw[2048]; } name;
    IO_STATUS_BLOCK io;
    NTSTATUS qs = NtQueryInformationFile(a, &io, &name, sizeof name, FILE_CLASS(C_FileNameInformation));
    say("F92", "name after rename: 0x%08lx %s", qs, qs >= 0 ? after_tag(name.n.FileName, name.n.FileNameLength / 2, g_tag) : "");
    if (st >= 0)
        CloseHandle(a);
    read_back("F93", L"r2.txt");
    say("F94", "old name: 0x%08lx", exists(L"r1.txt"));
    /* Rename over a file another handle holds open. */
    put_file(L"r3.txt", "three");
    nt_create(&b, L"r2.txt", GENERIC_READ, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    st = nt_create(&a, L"r3.txt", DELETE, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F95", "rename over an open file: 0x%08lx", rename_to(a, L"r2.txt", TRUE));
    if (st >= 0)
        CloseHandle(a);
    CloseHandle(b);
    read_back("F96", L"r2.txt");
    /* A host file renamed; host folder renamed. */
    st = nt_create(&a, L"host2.txt", DELETE, SHARE_ALL, FILE_OPEN, FILE_NON_DIRECTORY_FILE, NULL);
    say("F97", "rename host file: 0x%08lx", st >= 0 ? rename_to(a, L"moved2.txt", FALSE) : st);
    if (st >= 0)
        CloseHandle(a);
    read_back("F98", L"moved2.txt");
    say("F99", "host name after rename: 0x%08lx", exists(L"host2.txt"));
    BOOL ok = MoveFileExW(dos(L"moved2.txt"), dos(L"host.txt"), 0);
    say("F100", "MoveFileEx onto existing: %d err=%lu", ok, ok ? 0 : GetLastError());
    ok = MoveFileExW(dos(L"moved2.txt"), dos(L"host.txt"), MOVEFILE_REPLACE_EXISTING);
    say("F101", "MoveFileEx replace: %d err=%lu", ok, ok ? 0 : GetLastError());
    read_back("F102", L"host.txt");
    ok = CopyFileW(dos(L"host.txt"), dos(L"copy.txt"), TRUE);
    say("F103", "CopyFile: %d", ok);
    ok = CopyFileW(dos(L"host.txt"), dos(L"copy.txt"), TRUE);
    say("F104", "CopyFile fail-if-exists: %d err=%lu", ok, ok ? 0 : GetLastError());
    ok = CreateHardLinkW(dos(L"hard.txt"), dos(L"copy.txt"), NULL);
    say("F105", "hard link: %d err=%lu", ok, ok ? 0 : GetLastError());
}

static void files_folders(void)
{
    /* A folder made here: files created, listed, removed one by one, then the folder. */
    BOOL ok = CreateDirectoryW(dos(L"made"), NULL);
    say("F110", "CreateDirectory: %d", ok);
    ok = CreateDirectoryW(dos(L"made"), NULL);
    say("F111", "CreateDirectory again: %d err=%lu", ok, ok ? 0 : GetLastError());
    for (int i = 0; i < 5; i++) {
        wchar_t rel[64];
        swprintf(rel, 64, L"made\\f%d.txt", i);
        put_file(rel, "x");
    }
    list_dir("F112", L"made", NULL);
    ok = RemoveDirectoryW(dos(L"made"));
    say("F113", "rmdir non-empty: %d err=%lu", ok, ok ? 0 : GetLastError());
    WIN32_FIND_DATAW fd;
    HANDLE find = FindFirstFileW(dos(L"made\\*"), &fd);
    int deleted = 0, failed = 0;
    if (find != INVALID_HANDLE_VALUE) {
        do {
            if (fd.cFileName[0] == L'.')
                continue;
            wchar_t rel[300];
            swprintf(rel, 300, L"made\\%ls", fd.cFileName);
            if (DeleteFileW(dos(rel)))
                deleted++;
            else
                failed++;
        } while (FindNextFileW(find, &fd));
        FindClose(find);
    }
    say("F114", "deleted during listing: %d failed %d", deleted, failed);
    ok = RemoveDirectoryW(dos(L"made"));
    say("F115", "rmdir emptied: %d err=%lu", ok, ok ? 0 : GetLastError());
    /* A host folder: listing, mask, changes merged. */
    put_file(L"hostdir\\c.txt", "c");
    DeleteFileW(dos(L"hostdir\\a.txt"));
    list_dir("F116", L"hostdir", NULL);
    list_dir("F117", L"hostdir", L"*.txt");
    list_dir("F118", L"hostdir", L"?.txt");
    list_dir("F119", L"hostdir", L"c*");
    list_dir("F120", L"", NULL);
    /* Directory classes, one entry at a time. */
    HANDLE h;
    NTSTATUS st = nt_create(&h, L"hostdir", FILE_LIST_DIRECTORY, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE, NULL);
    static const struct { const char *id; int cls; } classes[] = {
        { "F121", C_FileDirectoryInformation }, { "F122", C_FileFullDirectoryInformation },
        { "F123", C_FileBothDirectoryInformation }, { "F124", C_FileIdBothDirectoryInformation },
        { "F125", C_FileIdFullDirectoryInformation }, { "F126", C_FileNamesInformation },
    };
    for (size_t i = 0; st >= 0 && i < sizeof classes / sizeof classes[0]; i++) {
        BYTE raw[4096];
        IO_STATUS_BLOCK io;
        int count = 0;
        NTSTATUS q = NtQueryDirectoryFile(h, NULL, NULL, NULL, &io, raw, sizeof raw, FILE_CLASS(classes[i].cls), TRUE,
                                          NULL, TRUE);
        while (q >= 0) {
            count++;
            q = NtQueryDirectoryFile(h, NULL, NULL, NULL, &io, raw, sizeof raw, FILE_CLASS(classes[i].cls), TRUE,
                                     NULL, FALSE);
        }
        say(classes[i].id, "class %d single entries: %d end=0x%08lx", classes[i].cls, count, q);
    }
    if (st >= 0) {
        BYTE tiny[8];
        IO_STATUS_BLOCK io;
        NTSTATUS q = NtQueryDirectoryFile(h, NULL, NULL, NULL, &io, tiny, sizeof tiny,
                                          FILE_CLASS(C_FileDirectoryInformation), TRUE, NULL, TRUE);
        say("F127", "tiny buffer: 0x%08lx", q);
        CloseHandle(h);
    }
    /* Change notification: a file made through another handle is reported. */
    st = nt_create(&h, L"hostdir", FILE_LIST_DIRECTORY, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE, NULL);
    if (st >= 0) {
        HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
        BYTE raw[1024];
        IO_STATUS_BLOCK io;
        HANDLE async;
        UNICODE_STRING us;
        OBJECT_ATTRIBUTES oa;
        RtlInitUnicodeString(&us, nt(L"hostdir"));
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        IO_STATUS_BLOCK oio;
        NtOpenFile(&async, FILE_LIST_DIRECTORY, &oa, &oio, SHARE_ALL, FILE_DIRECTORY_FILE);
        NTSTATUS n = NtNotifyChangeDirectoryFile(async, event, NULL, NULL, &io, raw, sizeof raw,
                                                 FILE_NOTIFY_CHANGE_FILE_NAME, FALSE);
        put_file(L"hostdir\\notified.txt", "n");
        DWORD w = WaitForSingleObject(event, 2000);
        const char *name = "";
        if (w == WAIT_OBJECT_0 && io.Status >= 0 && io.Information) {
            FILE_NOTIFY_INFORMATION *fni = (FILE_NOTIFY_INFORMATION *)raw;
            name = u8(fni->FileName, fni->FileNameLength / 2);
        }
        say("F128", "notify: 0x%08lx wait=%lu %s", n, (unsigned long)w, name);
        CloseHandle(async);
        CloseHandle(event);
        CloseHandle(h);
    }
    /* A change to a host file in a watched folder (in a box: its copy-up)
     * is reported by its own name: the first record of the first report. */
    st = nt_create(&h, L"hostdir", FILE_LIST_DIRECTORY, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE, NULL);
    if (st >= 0) {
        HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
        BYTE raw[4096];
        IO_STATUS_BLOCK io;
        NTSTATUS n = NtNotifyChangeDirectoryFile(h, event, NULL, NULL, &io, raw, sizeof raw,
                                                 FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_SIZE |
                                                     FILE_NOTIFY_CHANGE_LAST_WRITE, FALSE);
        HANDLE f;
        if (nt_create(&f, L"hostdir\\b.txt", FILE_APPEND_DATA | SYNCHRONIZE, SHARE_ALL, FILE_OPEN,
                      FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, NULL) >= 0) {
            IO_STATUS_BLOCK wio;
            NtWriteFile(f, NULL, NULL, NULL, &wio, "more", 4, NULL, NULL);
            CloseHandle(f);
        }
        DWORD w = WaitForSingleObject(event, 2000);
        char first[300] = "";
        if (w == WAIT_OBJECT_0 && io.Status >= 0 && io.Information) {
            FILE_NOTIFY_INFORMATION *fni = (FILE_NOTIFY_INFORMATION *)raw;
            snprintf(first, sizeof first, "%lu %s", (unsigned long)fni->Action,
                     u8(fni->FileName, fni->FileNameLength / 2));
        }
        say("F129", "notify change of a host file: 0x%08lx wait=%lu %s", n, (unsigned long)w, first);
        CloseHandle(event);
        CloseHandle(h);
    }
}

static void files_names(void)
{
    HANDLE h;
    /* Win32 name rules: a trailing dot or space of the last component is dropped. */
    HANDLE f = CreateFileW(dos(L"dot.txt."), GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    say("F130", "create with trailing dot: %d", f != INVALID_HANDLE_VALUE);
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    say("F131", "dot.txt: 0x%08lx", exists(L"dot.txt"));
    f = CreateFileW(dos(L"trail\\"), GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    say("F132", "create with trailing backslash: %d err=%lu", f != INVALID_HANDLE_VALUE,
        f == INVALID_HANDLE_VALUE ? GetLastError() : 0);
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    say("F133", "trail: 0x%08lx", exists(L"trail"));
    DWORD attrs = GetFileAttributesW(dos(L"hostdir.\\b.txt"));
    say("F134", "middle component with a dot: 0x%lx err=%lu", (unsigned long)attrs,
        attrs == INVALID_FILE_ATTRIBUTES ? GetLastError() : 0);
    attrs = GetFileAttributesW(dos(L"hostdir \\b.txt"));
    say("F135", "middle component with a space: 0x%lx err=%lu", (unsigned long)attrs,
        attrs == INVALID_FILE_ATTRIBUTES ? GetLastError() : 0);
    wchar_t raw[1024];
    swprintf(raw, 1024, L"\\\\?\\%ls\\hostdir\\..\\host.txt", g_dir);
    attrs = GetFileAttributesW(raw);
    say("F136", "\\\\?\\ with ..: 0x%lx err=%lu", (unsigned long)attrs,
        attrs == INVALID_FILE_ATTRIBUTES ? GetLastError() : 0);
    swprintf(raw, 1024, L"\\\\?\\%ls\\host.txt", g_dir);
    attrs = GetFileAttributesW(raw);
    say("F137", "\\\\?\\ plain: 0x%lx", (unsigned long)attrs);
    f = CreateFileW(L"\\\\.\\NUL", GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    DWORD written = 0;
    BOOL wrote = f != INVALID_HANDLE_VALUE && WriteFile(f, "x", 1, &written, NULL);
    say("F138", "\\\\.\\NUL: %d wrote %d", f != INVALID_HANDLE_VALUE, wrote);
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    f = CreateFileW(L"NUL", GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    say("F139", "NUL: %d", f != INVALID_HANDLE_VALUE);
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    f = CreateFileW(L"\\\\?\\C:\\", 0, SHARE_ALL, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    say("F140", "\\\\?\\C:\\ root: %d err=%lu", f != INVALID_HANDLE_VALUE, f == INVALID_HANDLE_VALUE ? GetLastError() : 0);
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    f = CreateFileW(L"C:\\", 0, SHARE_ALL, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    say("F141", "C:\\ root: %d", f != INVALID_HANDLE_VALUE);
    if (f != INVALID_HANDLE_VALUE)
        CloseHandle(f);
    NTSTATUS st = nt_create(&h, L"host.txt:stream", GENERIC_WRITE, SHARE_ALL, FILE_OVERWRITE_IF, 0, NULL);
    say("F142", "stream create: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(h);
    st = nt_create(&h, L"bad<name>.txt", GENERIC_WRITE, SHARE_ALL, FILE_CREATE, 0, NULL);
    say("F143", "invalid characters: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(h);
    st = nt_create(&h, L"a\\\\b.txt", GENERIC_WRITE, SHARE_ALL, FILE_CREATE, 0, NULL);
    say("F144", "doubled separator: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(h);
    /* Relative to a folder handle. */
    HANDLE dir;
    st = nt_create(&dir, L"hostdir", FILE_LIST_DIRECTORY | FILE_TRAVERSE, SHARE_ALL, FILE_OPEN, FILE_DIRECTORY_FILE, NULL);
    if (st >= 0) {
        UNICODE_STRING us;
        OBJECT_ATTRIBUTES oa;
        IO_STATUS_BLOCK io;
        RtlInitUnicodeString(&us, L"rel.txt");
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, dir, NULL);
        st = NtCreateFile(&h, GENERIC_WRITE | SYNCHRONIZE, &oa, &io, NULL, 0, SHARE_ALL, FILE_CREATE,
                          FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
        say("F145", "create relative: 0x%08lx info=%lu", st, (unsigned long)(st >= 0 ? io.Information : 0));
        if (st >= 0)
            CloseHandle(h);
        RtlInitUnicodeString(&us, L"..\\host.txt");
        st = NtCreateFile(&h, GENERIC_READ | SYNCHRONIZE, &oa, &io, NULL, 0, SHARE_ALL, FILE_OPEN,
                          FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
        say("F146", "relative with ..: 0x%08lx", st);
        if (st >= 0)
            CloseHandle(h);
        RtlInitUnicodeString(&us, L"");
        st = NtCreateFile(&h, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, NULL, 0, SHARE_ALL, FILE_OPEN,
                          FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
        say("F147", "empty name relative: 0x%08lx", st);
        if (st >= 0)
            CloseHandle(h);
        CloseHandle(dir);
    }
    wchar_t full[MAX_PATH], *part = NULL;
    DWORD n = GetFullPathNameW(dos(L"hostdir\\..\\x.txt"), MAX_PATH, full, &part);
    say("F148", "GetFullPathName: %s", n ? after_tag(full, n, g_tag) : "fail");
    f = CreateFileW(dos(L"host.txt"), GENERIC_READ, SHARE_ALL, NULL, OPEN_EXISTING, 0, NULL);
    if (f != INVALID_HANDLE_VALUE) {
        n = GetFinalPathNameByHandleW(f, full, MAX_PATH, FILE_NAME_NORMALIZED);
        say("F149", "final path: %s", n ? after_tag(full, n, g_tag) : "fail");
        n = GetFinalPathNameByHandleW(f, full, MAX_PATH, VOLUME_NAME_NT);
        say("F150", "final path (NT): %s", n ? after_tag(full, n, g_tag) : "fail");
        CloseHandle(f);
    }
}


/* ---- change notification delivery (a host file changed in a watched host folder) ---- */
#define WATCH_FILTER (FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_SIZE | FILE_NOTIFY_CHANGE_LAST_WRITE)

static void append_to(const wchar_t *rel)
{
    HANDLE f;
    if (nt_create(&f, rel, FILE_APPEND_DATA | SYNCHRONIZE, SHARE_ALL, FILE_OPEN,
                  FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, NULL) >= 0) {
        IO_STATUS_BLOCK wio;
        NtWriteFile(f, NULL, NULL, NULL, &wio, "more", 4, NULL, NULL);
        CloseHandle(f);
    }
}

/* "action name" of the first record, and whether the count given ends
 * exactly at the end of the last record. */
static const char *first_record(const BYTE *raw, ULONG_PTR count)
{
    static char text[400];
    if (!count)
        return "none";
    const FILE_NOTIFY_INFORMATION *fni = (const FILE_NOTIFY_INFORMATION *)raw;
    size_t at = 0;
    const FILE_NOTIFY_INFORMATION *last = fni;
    while (last->NextEntryOffset && at + last->NextEntryOffset < count) {
        at += last->NextEntryOffset;
        last = (const FILE_NOTIFY_INFORMATION *)(raw + at);
    }
    int whole = at + 12 + last->FileNameLength == count;
    snprintf(text, sizeof text, "%lu %s count=%s", (unsigned long)fni->Action,
             u8(fni->FileName, fni->FileNameLength / 2), whole ? "whole" : "other");
    return text;
}

static HANDLE open_watched(BOOL overlapped)
{
    return CreateFileW(dos(L"watched"), FILE_LIST_DIRECTORY, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                       NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | (overlapped ? FILE_FLAG_OVERLAPPED : 0),
                       NULL);
}

static volatile LONG g_routine_calls;
static DWORD g_routine_error, g_routine_bytes, g_routine_thread;

static void WINAPI watch_routine(DWORD error, DWORD bytes, LPOVERLAPPED ov)
{
    (void)ov;
    g_routine_error = error;
    g_routine_bytes = bytes;
    g_routine_thread = GetCurrentThreadId();
    InterlockedIncrement(&g_routine_calls);
}

static DWORD WINAPI append_w7(void *go)
{
    /* After the watch is in place: told so when the call returned pending,
     * or (a call that waits) after a second. */
    WaitForSingleObject(go, 1000);
    append_to(L"watched\\w7.txt");
    return 0;
}

static void files_notify_delivery(void)
{
    BYTE raw[4096];
    /* The program's event, status block and buffer. */
    HANDLE h = open_watched(TRUE);
    if (h != INVALID_HANDLE_VALUE) {
        HANDLE event = CreateEventW(NULL, TRUE, TRUE, NULL);   /* set: the call must reset it */
        IO_STATUS_BLOCK io;
        NTSTATUS n = NtNotifyChangeDirectoryFile(h, event, NULL, NULL, &io, raw, sizeof raw, WATCH_FILTER, FALSE);
        DWORD before = WaitForSingleObject(event, 0);
        append_to(L"watched\\w1.txt");
        DWORD w = WaitForSingleObject(event, 5000);
        say("F151", "event: 0x%08lx reset=%d wait=%lu status=0x%08lx %s", n, before == WAIT_TIMEOUT,
            (unsigned long)w, w == WAIT_OBJECT_0 ? io.Status : 0, w == WAIT_OBJECT_0 ? first_record(raw, io.Information) : "");
        CloseHandle(event);
        CloseHandle(h);
    }
    /* The program's APC: ReadDirectoryChangesW with a completion routine,
     * run on the asking thread in an alertable wait. */
    h = open_watched(TRUE);
    if (h != INVALID_HANDLE_VALUE) {
        OVERLAPPED ov = {0};
        g_routine_calls = 0;
        BOOL ok = ReadDirectoryChangesW(h, raw, sizeof raw, FALSE, WATCH_FILTER, NULL, &ov, watch_routine);
        append_to(L"watched\\w2.txt");
        DWORD slept = WAIT_TIMEOUT;
        while (!g_routine_calls && (slept = SleepEx(5000, TRUE)) == WAIT_IO_COMPLETION)
            ;
        say("F152", "apc: %d calls=%ld error=%lu same-thread=%d %s", ok, (long)g_routine_calls,
            (unsigned long)g_routine_error, g_routine_thread == GetCurrentThreadId(),
            g_routine_calls ? first_record(raw, g_routine_bytes) : "");
        CloseHandle(h);
    }
    /* A buffer too small for the report. */
    h = open_watched(TRUE);
    if (h != INVALID_HANDLE_VALUE) {
        HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
        IO_STATUS_BLOCK io;
        BYTE tiny[8];
        NTSTATUS n = NtNotifyChangeDirectoryFile(h, event, NULL, NULL, &io, tiny, sizeof tiny, WATCH_FILTER, FALSE);
        append_to(L"watched\\w3.txt");
        DWORD w = WaitForSingleObject(event, 5000);
        say("F153", "small buffer: 0x%08lx wait=%lu status=0x%08lx count=%lu", n, (unsigned long)w,
            w == WAIT_OBJECT_0 ? io.Status : 0, w == WAIT_OBJECT_0 ? (unsigned long)io.Information : 0);
        CloseHandle(event);
        CloseHandle(h);
    }
    /* Cancelled by the program: CancelIoEx (its overlapped), then CancelIo. */
    h = open_watched(TRUE);
    if (h != INVALID_HANDLE_VALUE) {
        OVERLAPPED ov = {0};
        ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        BOOL ok = ReadDirectoryChangesW(h, raw, sizeof raw, FALSE, WATCH_FILTER, NULL, &ov, NULL);
        BOOL cancelled = CancelIoEx(h, &ov);
        DWORD w = WaitForSingleObject(ov.hEvent, 5000);
        DWORD bytes = 0;
        BOOL got = GetOverlappedResult(h, &ov, &bytes, FALSE);
        say("F154", "CancelIoEx: %d %d wait=%lu result=%d err=%lu status=0x%08lx", ok, cancelled, (unsigned long)w,
            got, got ? 0 : GetLastError(), (unsigned long)ov.Internal);
        BOOL again = CancelIoEx(h, &ov);
        say("F155", "CancelIoEx again: %d err=%lu", again, again ? 0 : GetLastError());
        ResetEvent(ov.hEvent);
        ok = ReadDirectoryChangesW(h, raw, sizeof raw, FALSE, WATCH_FILTER, NULL, &ov, NULL);
        cancelled = CancelIo(h);
        w = WaitForSingleObject(ov.hEvent, 5000);
        say("F156", "CancelIo: %d %d wait=%lu status=0x%08lx", ok, cancelled, (unsigned long)w,
            (unsigned long)ov.Internal);
        CloseHandle(ov.hEvent);
        CloseHandle(h);
    }
    /* A completion port associated with the handle. */
    h = open_watched(TRUE);
    if (h != INVALID_HANDLE_VALUE) {
        HANDLE port = CreateIoCompletionPort(h, NULL, 77, 1);
        OVERLAPPED ov = {0};
        BOOL ok = ReadDirectoryChangesW(h, raw, sizeof raw, FALSE, WATCH_FILTER, NULL, &ov, NULL);
        append_to(L"watched\\w4.txt");
        DWORD bytes = 0;
        ULONG_PTR key = 0;
        LPOVERLAPPED got = NULL;
        BOOL done = port && GetQueuedCompletionStatus(port, &bytes, &key, &got, 5000);
        say("F157", "port: %d %d key=%lu same-overlapped=%d %s", ok, done, (unsigned long)key, got == &ov,
            done ? first_record(raw, bytes) : "");
        CloseHandle(h);
        if (port)
            CloseHandle(port);
    }
    /* The handle closed while its request waits. */
    h = open_watched(TRUE);
    if (h != INVALID_HANDLE_VALUE) {
        HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
        IO_STATUS_BLOCK io;
        NTSTATUS n = NtNotifyChangeDirectoryFile(h, event, NULL, NULL, &io, raw, sizeof raw, WATCH_FILTER, FALSE);
        CloseHandle(h);
        DWORD w = WaitForSingleObject(event, 5000);
        say("F159", "closed: 0x%08lx wait=%lu status=0x%08lx", n, (unsigned long)w, w == WAIT_OBJECT_0 ? io.Status : 0);
        CloseHandle(event);
    }
    /* A synchronous handle: the change is made by another thread, so the
     * call may wait for it (Windows) or return pending (Wine). */
    h = open_watched(FALSE);
    if (h != INVALID_HANDLE_VALUE) {
        IO_STATUS_BLOCK io;
        HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
        HANDLE go = CreateEventW(NULL, TRUE, FALSE, NULL);
        HANDLE t = CreateThread(NULL, 0, append_w7, go, 0, NULL);
        NTSTATUS n = NtNotifyChangeDirectoryFile(h, event, NULL, NULL, &io, raw, sizeof raw, WATCH_FILTER, FALSE);
        SetEvent(go);
        DWORD w = WaitForSingleObject(event, 5000);
        say("F158", "synchronous: %s wait=%lu status=0x%08lx %s", n == STATUS_PENDING ? "pending" : "done",
            (unsigned long)w, w == WAIT_OBJECT_0 ? io.Status : 0, w == WAIT_OBJECT_0 ? first_record(raw, io.Information) : "");
        if (t) {
            WaitForSingleObject(t, 5000);
            CloseHandle(t);
        }
        CloseHandle(go);
        CloseHandle(event);
        CloseHandle(h);
    }
}

static int run_files(void)
{
    files_create_dispositions();
    files_information();
    files_sharing();
    files_delete();
    files_rename();
    files_folders();
    files_names();
    files_notify_delivery();
    return 0;
}

/* ---- the keys group ------------------------------------------------------------- */
static wchar_t g_key[512];   /* NT name of the fixture key: \Registry\User\<sid>\Software\... */

static NTSTATUS key_open_or_create(HANDLE *h, HANDLE root, const wchar_t *name, ACCESS_MASK access, BOOL create,
                                   ULONG options, ULONG *disposition)
{
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    wchar_t full[1024];
    if (!root)
        swprintf(full, 1024, name && *name ? L"%ls\\%ls" : L"%ls", g_key, name);
    RtlInitUnicodeString(&us, root ? name : full);
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
    *h = NULL;
    if (create)
        return NtCreateKey(h, access, &oa, 0, NULL, options, disposition);
    return NtOpenKey(h, access, &oa);
}

static NTSTATUS set_sz(HANDLE key, const wchar_t *name, const wchar_t *data)
{
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, name);
    return NtSetValueKey(key, &us, 0, REG_SZ, (void *)data, (ULONG)((wcslen(data) + 1) * 2));
}

static void show_value(const char *id, HANDLE key, const wchar_t *name)
{
    UNICODE_STRING us;
    union { KEY_VALUE_PARTIAL_INFORMATION v; BYTE raw[1024]; } buf;
    ULONG len = 0;
    RtlInitUnicodeString(&us, name);
    NTSTATUS st = NtQueryValueKey(key, &us, 2 /* KeyValuePartialInformation */, &buf, sizeof buf, &len);
    if (st < 0) {
        say(id, "value %s: 0x%08lx", u8(name, wcslen(name)), st);
        return;
    }
    char hex[200] = "";
    for (ULONG i = 0; i < buf.v.DataLength && i < 60; i++)
        snprintf(hex + 2 * i, 3, "%02x", buf.v.Data[i]);
    say(id, "value %s: type=%lu len=%lu %s", u8(name, wcslen(name)), (unsigned long)buf.v.Type,
        (unsigned long)buf.v.DataLength, hex);
}

static void list_key(const char *id, HANDLE key)
{
    char line[2048] = "";
    size_t used = 0;
    NTSTATUS st;
    ULONG i;
    for (i = 0;; i++) {
        union { KEY_BASIC_INFORMATION b; BYTE raw[1024]; } buf;
        ULONG len;
        st = NtEnumerateKey(key, i, 0 /* KeyBasicInformation */, &buf, sizeof buf, &len);
        if (st < 0)
            break;
        used += snprintf(line + used, sizeof line - used, " k:%s", u8(buf.b.Name, buf.b.NameLength / 2));
    }
    NTSTATUS vst;
    for (i = 0;; i++) {
        union { KEY_VALUE_BASIC_INFORMATION b; BYTE raw[1024]; } buf;
        ULONG len;
        vst = NtEnumerateValueKey(key, i, 0 /* KeyValueBasicInformation */, &buf, sizeof buf, &len);
        if (vst < 0)
            break;
        used += snprintf(line + used, sizeof line - used, " v:%s", u8(buf.b.Name, buf.b.NameLength / 2));
    }
    union { KEY_FULL_INFORMATION f; BYTE raw[1024]; } full;
    ULONG len;
    NTSTATUS fst = NtQueryKey(key, 2 /* KeyFullInformation */, &full, sizeof full, &len);
    say(id, "keys end=0x%08lx values end=0x%08lx full=0x%08lx subkeys=%lu values=%lu maxname=%lu maxvalname=%lu "
        "maxdata=%lu:%s", st, vst, fst, (unsigned long)full.f.SubKeys, (unsigned long)full.f.Values,
        (unsigned long)full.f.MaxNameLen, (unsigned long)full.f.MaxValueNameLen, (unsigned long)full.f.MaxValueDataLen,
        line);
}

static void seed_keys(void)
{
    HANDLE k, s;
    ULONG disp;
    if (key_open_or_create(&k, NULL, L"", KEY_ALL_ACCESS, TRUE, 0, &disp) < 0)
        return;
    set_sz(k, L"Host", L"host value");
    set_sz(k, L"Other", L"other");
    if (key_open_or_create(&s, k, L"HostSub", KEY_ALL_ACCESS, TRUE, 0, &disp) >= 0) {
        set_sz(s, L"In", L"inside");
        CloseHandle(s);
    }
    if (key_open_or_create(&s, k, L"HostLeaf", KEY_ALL_ACCESS, TRUE, 0, &disp) >= 0)
        CloseHandle(s);
    CloseHandle(k);
}

static void keys_basic(HANDLE root)
{
    HANDLE k, again;
    ULONG disp = 0;
    NTSTATUS st = key_open_or_create(&k, root, L"New", KEY_ALL_ACCESS, TRUE, 0, &disp);
    say("K01", "create: 0x%08lx disposition=%lu", st, (unsigned long)disp);
    st = key_open_or_create(&again, root, L"New", KEY_ALL_ACCESS, TRUE, 0, &disp);
    say("K02", "create again: 0x%08lx disposition=%lu", st, (unsigned long)disp);
    if (st >= 0)
        CloseHandle(again);
    if (!k)
        return;
    /* Every value type through the handle the create returned. */
    DWORD dw = 0x12345678;
    ULONGLONG qw = 0x1122334455667788ULL;
    BYTE bin[] = { 1, 2, 3, 0, 255 };
    const wchar_t multi[] = L"a\0bc\0";
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, L"Dword");
    say("K03", "set dword: 0x%08lx", NtSetValueKey(k, &us, 0, REG_DWORD, &dw, sizeof dw));
    RtlInitUnicodeString(&us, L"Qword");
    say("K04", "set qword: 0x%08lx", NtSetValueKey(k, &us, 0, REG_QWORD, &qw, sizeof qw));
    RtlInitUnicodeString(&us, L"Binary");
    say("K05", "set binary: 0x%08lx", NtSetValueKey(k, &us, 0, REG_BINARY, bin, sizeof bin));
    RtlInitUnicodeString(&us, L"Multi");
    say("K06", "set multi: 0x%08lx", NtSetValueKey(k, &us, 0, REG_MULTI_SZ, (void *)multi, sizeof multi));
    RtlInitUnicodeString(&us, L"");
    say("K07", "set default: 0x%08lx", NtSetValueKey(k, &us, 0, REG_SZ, (void *)L"def", 8));
    RtlInitUnicodeString(&us, L"None");
    say("K08", "set none: 0x%08lx", NtSetValueKey(k, &us, 0, REG_NONE, NULL, 0));
    show_value("K09", k, L"Dword");
    show_value("K10", k, L"Qword");
    show_value("K11", k, L"Binary");
    show_value("K12", k, L"Multi");
    show_value("K13", k, L"");
    show_value("K14", k, L"None");
    show_value("K15", k, L"Missing");
    union { KEY_VALUE_FULL_INFORMATION v; BYTE raw[16]; } small;
    ULONG need = 0;
    RtlInitUnicodeString(&us, L"Multi");
    st = NtQueryValueKey(k, &us, 1 /* KeyValueFullInformation */, &small, sizeof small, &need);
    say("K16", "small buffer: 0x%08lx need=%lu", st, (unsigned long)need);
    list_key("K17", k);
    union { KEY_BASIC_INFORMATION b; BYTE raw[512]; } kb;
    st = NtEnumerateKey(k, 99, 0, &kb, sizeof kb, &need);
    say("K18", "enumerate past the end: 0x%08lx", st);
    RtlInitUnicodeString(&us, L"Dword");
    say("K19", "delete value: 0x%08lx", NtDeleteValueKey(k, &us));
    say("K20", "delete missing value: 0x%08lx", NtDeleteValueKey(k, &us));
    CloseHandle(k);
}

static void keys_host(HANDLE root)
{
    HANDLE k;
    NTSTATUS st = key_open_or_create(&k, root, L"HostSub", KEY_ALL_ACCESS, FALSE, 0, NULL);
    say("K30", "open host subkey: 0x%08lx", st);
    if (st >= 0) {
        show_value("K31", k, L"In");
        say("K32", "change host value: 0x%08lx", set_sz(k, L"In", L"changed"));
        show_value("K33", k, L"In");
        CloseHandle(k);
    }
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, L"Other");
    say("K34", "delete host value: 0x%08lx", NtDeleteValueKey(root, &us));
    show_value("K35", root, L"Other");
    st = key_open_or_create(&k, root, L"HostLeaf", KEY_ALL_ACCESS | DELETE, FALSE, 0, NULL);
    say("K36", "delete host leaf: 0x%08lx", st >= 0 ? NtDeleteKey(k) : st);
    if (st >= 0) {
        /* Every operation on a deleted key's handle says so. */
        say("K37", "set on deleted: 0x%08lx", set_sz(k, L"X", L"y"));
        union { KEY_FULL_INFORMATION f; BYTE raw[512]; } full;
        ULONG len;
        say("K38", "query deleted: 0x%08lx", NtQueryKey(k, 2, &full, sizeof full, &len));
        say("K39", "enumerate deleted: 0x%08lx", NtEnumerateKey(k, 0, 0, &full, sizeof full, &len));
        HANDLE child;
        ULONG disp;
        say("K40", "create under deleted: 0x%08lx", key_open_or_create(&child, k, L"C", KEY_ALL_ACCESS, TRUE, 0, &disp));
        say("K41", "delete again: 0x%08lx", NtDeleteKey(k));
        CloseHandle(k);
    }
    st = key_open_or_create(&k, root, L"HostLeaf", KEY_READ, FALSE, 0, NULL);
    say("K42", "open deleted leaf: 0x%08lx", st);
    if (st >= 0)
        CloseHandle(k);
    st = key_open_or_create(&k, root, L"HostSub", KEY_ALL_ACCESS | DELETE, FALSE, 0, NULL);
    if (st >= 0) {
        HANDLE child;
        ULONG disp;
        key_open_or_create(&child, k, L"Deeper", KEY_ALL_ACCESS, TRUE, 0, &disp);
        say("K43", "delete key with a subkey: 0x%08lx", NtDeleteKey(k));
        if (child)
            CloseHandle(child);
        CloseHandle(k);
    }
    list_key("K44", root);
}

static void keys_special(HANDLE root)
{
    HANDLE k, c;
    ULONG disp = 0;
    NTSTATUS st = key_open_or_create(&k, root, L"Volatile", KEY_ALL_ACCESS, TRUE, REG_OPTION_VOLATILE, &disp);
    say("K50", "create volatile: 0x%08lx", st);
    if (st >= 0) {
        st = key_open_or_create(&c, k, L"Stable", KEY_ALL_ACCESS, TRUE, 0, &disp);
        say("K51", "stable under volatile: 0x%08lx", st);
        if (st >= 0)
            CloseHandle(c);
        st = key_open_or_create(&c, k, L"AlsoVolatile", KEY_ALL_ACCESS, TRUE, REG_OPTION_VOLATILE, &disp);
        say("K52", "volatile under volatile: 0x%08lx", st);
        if (st >= 0)
            CloseHandle(c);
        CloseHandle(k);
    }
    /* A link key pointing at a sibling. */
    st = key_open_or_create(&k, root, L"Target", KEY_ALL_ACCESS, TRUE, 0, &disp);
    if (st >= 0) {
        set_sz(k, L"Seen", L"through the link");
        CloseHandle(k);
    }
    st = key_open_or_create(&k, root, L"Link", KEY_ALL_ACCESS | KEY_CREATE_LINK, TRUE,
                            REG_OPTION_CREATE_LINK | REG_OPTION_VOLATILE, &disp);
    say("K53", "create link: 0x%08lx", st);
    if (st >= 0) {
        wchar_t target[1024];
        swprintf(target, 1024, L"%ls\\Target", g_key);
        UNICODE_STRING us;
        RtlInitUnicodeString(&us, L"SymbolicLinkValue");
        st = NtSetValueKey(k, &us, 0, REG_LINK, target, (ULONG)(wcslen(target) * 2));
        say("K54", "set link target: 0x%08lx", st);
        CloseHandle(k);
        st = key_open_or_create(&k, root, L"Link", KEY_READ, FALSE, 0, NULL);
        say("K55", "open through link: 0x%08lx", st);
        if (st >= 0) {
            show_value("K56", k, L"Seen");
            CloseHandle(k);
        }
    }
    /* Rename through a read-only handle, then through a writable one. */
    st = key_open_or_create(&k, root, L"Renamed", KEY_ALL_ACCESS, TRUE, 0, &disp);
    if (st >= 0)
        CloseHandle(k);
    st = key_open_or_create(&k, root, L"Renamed", KEY_READ, FALSE, 0, NULL);
    if (st >= 0) {
        UNICODE_STRING us;
        RtlInitUnicodeString(&us, L"Renamed2");
        say("K57", "rename read-only: 0x%08lx", NtRenameKey(k, &us));
        CloseHandle(k);
    }
    /* Notifications fire for changes made through other handles. */
    st = key_open_or_create(&k, root, L"Watched", KEY_ALL_ACCESS, TRUE, 0, &disp);
    if (st >= 0) {
        HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
        IO_STATUS_BLOCK io;
        NTSTATUS n = NtNotifyChangeKey(k, event, NULL, NULL, &io, REG_NOTIFY_CHANGE_LAST_SET, FALSE, NULL, 0, TRUE);
        HANDLE other;
        key_open_or_create(&other, root, L"Watched", KEY_ALL_ACCESS, FALSE, 0, NULL);
        set_sz(other, L"V", L"1");
        DWORD w = WaitForSingleObject(event, 2000);
        say("K58", "notify value through another handle: 0x%08lx wait=%lu", n, (unsigned long)w);
        ResetEvent(event);
        n = NtNotifyChangeKey(k, event, NULL, NULL, &io, REG_NOTIFY_CHANGE_NAME, FALSE, NULL, 0, TRUE);
        HANDLE sub;
        key_open_or_create(&sub, other, L"NewChild", KEY_ALL_ACCESS, TRUE, 0, &disp);
        w = WaitForSingleObject(event, 2000);
        say("K59", "notify subkey creation: 0x%08lx wait=%lu", n, (unsigned long)w);
        if (sub)
            CloseHandle(sub);
        CloseHandle(other);
        CloseHandle(event);
        CloseHandle(k);
    }
    /* Security of a key. */
    HKEY hk;
    LONG r = RegOpenKeyExW(HKEY_CURRENT_USER, L"Software", 0, KEY_READ, &hk);
    if (r == 0) {
        BYTE sd[4096];
        DWORD sdlen = sizeof sd;
        r = RegGetKeySecurity(hk, DACL_SECURITY_INFORMATION, sd, &sdlen);
        say("K60", "RegGetKeySecurity: %ld", r);
        RegCloseKey(hk);
    }
    st = key_open_or_create(&k, root, L"Secured", KEY_ALL_ACCESS | WRITE_DAC, TRUE, 0, &disp);
    if (st >= 0) {
        SECURITY_DESCRIPTOR sd;
        InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION);
        SetSecurityDescriptorDacl(&sd, TRUE, NULL, FALSE);
        r = RegSetKeySecurity((HKEY)k, DACL_SECURITY_INFORMATION, &sd);
        say("K61", "RegSetKeySecurity: %ld", r);
        CloseHandle(k);
    }
    /* Odd names. */
    static const struct { const char *id; const wchar_t *name; } odd[] = {
        { "K62", L"Trailing\\" }, { "K63", L"Dou\\\\bled" }, { "K64", L"\\Leading" }, { "K65", L"." },
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        st = key_open_or_create(&k, root, odd[i].name, KEY_ALL_ACCESS, TRUE, 0, &disp);
        say(odd[i].id, "create odd name: 0x%08lx", st);
        if (st >= 0)
            CloseHandle(k);
    }
    /* The last error survives successful registry calls. */
    SetLastError(1234);
    r = RegOpenKeyExW(HKEY_CURRENT_USER, L"Software", 0, KEY_READ, &hk);
    DWORD last = GetLastError();
    if (r == 0)
        RegCloseKey(hk);
    say("K66", "last error after RegOpenKeyEx: %lu", (unsigned long)last);
    list_key("K67", root);
}

static int run_keys(void)
{
    HANDLE root;
    NTSTATUS st = key_open_or_create(&root, NULL, L"", KEY_ALL_ACCESS, FALSE, 0, NULL);
    say("K00", "open fixture: 0x%08lx", st);
    if (st < 0)
        return 1;
    keys_basic(root);
    keys_host(root);
    keys_special(root);
    CloseHandle(root);
    /* Creates under ordinary roots. */
    static const struct { const char *id; const wchar_t *root; } roots[] = {
        { "K70", L"\\Registry\\Machine\\Software" }, { "K71", L"\\Registry\\User\\.Default\\Software" },
        { "K72", L"\\Registry\\Machine\\System\\CurrentControlSet\\Control" },
    };
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        wchar_t name[512];
        swprintf(name, 512, L"%ls\\%ls", roots[i].root, g_tag);
        UNICODE_STRING us;
        OBJECT_ATTRIBUTES oa;
        RtlInitUnicodeString(&us, name);
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        HANDLE k;
        ULONG disp = 0;
        st = NtCreateKey(&k, KEY_ALL_ACCESS | DELETE, &oa, 0, NULL, 0, &disp);
        NTSTATUS set = st >= 0 ? set_sz(k, L"V", L"x") : st;
        say(roots[i].id, "create under a root: 0x%08lx disposition=%lu set=0x%08lx", st, (unsigned long)disp, set);
        if (st >= 0) {
            NtDeleteKey(k);
            CloseHandle(k);
        }
    }
    return 0;
}

/* ---- the objects group ---------------------------------------------------------- */
static NTSTATUS open_oa(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, const wchar_t *name, HANDLE root)
{
    RtlInitUnicodeString(us, name);
    InitializeObjectAttributes(oa, us, OBJ_CASE_INSENSITIVE, root, NULL);
    return 0;
}

static void object_name(const char *id, HANDLE h)
{
    union { OBJECT_NAME_INFORMATION n; BYTE raw[2048]; } buf;
    ULONG len = 0;
    NTSTATUS st = NtQueryObject(h, ObjectNameInformation, &buf, sizeof buf, &len);
    say(id, "name 0x%08lx %s", st, st >= 0 ? after_tag(buf.n.Name.Buffer, buf.n.Name.Length / 2, g_tag) : "");
}

static int run_objects(void)
{
    wchar_t name[512];
    HANDLE a, b;
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    /* Win32 names in each namespace prefix. */
    static const struct { const char *id; const wchar_t *fmt; } forms[] = {
        { "O01", L"%lsM" }, { "O02", L"Local\\%lsM" }, { "O03", L"Global\\%lsM" },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        swprintf(name, 512, forms[i].fmt, g_tag);
        a = CreateMutexW(NULL, FALSE, name);
        DWORD err = GetLastError();
        b = CreateMutexW(NULL, FALSE, name);
        DWORD err2 = GetLastError();
        say(forms[i].id, "mutex: %d err=%lu again err=%lu", a != NULL, (unsigned long)err, (unsigned long)err2);
        HANDLE c = OpenMutexW(SYNCHRONIZE, FALSE, name);
        say(forms[i].id, "open: %d", c != NULL);
        if (a)
            object_name(forms[i].id, a);
        if (c)
            CloseHandle(c);
        if (b)
            CloseHandle(b);
        /* A different type under the same name. */
        HANDLE e = CreateEventW(NULL, FALSE, FALSE, name);
        say(forms[i].id, "event of the same name: %d err=%lu", e != NULL, (unsigned long)GetLastError());
        if (e)
            CloseHandle(e);
        if (a)
            CloseHandle(a);
    }
    swprintf(name, 512, L"%lsNone", g_tag);
    a = OpenEventW(SYNCHRONIZE, FALSE, name);
    say("O04", "open missing event: %d err=%lu", a != NULL, (unsigned long)GetLastError());
    swprintf(name, 512, L"NoSuchDir\\%ls", g_tag);
    a = CreateEventW(NULL, FALSE, FALSE, name);
    say("O05", "event in a missing directory: %d err=%lu", a != NULL, (unsigned long)GetLastError());
    /* A directory object, objects in it, a symbolic link to it. */
    swprintf(name, 512, L"\\Sessions\\1\\BaseNamedObjects\\%lsDir", g_tag);
    open_oa(&oa, &us, name, NULL);
    HANDLE dir = NULL;
    NTSTATUS st = NtCreateDirectoryObject(&dir, DIRECTORY_ALL_ACCESS, &oa);
    say("O10", "create directory: 0x%08lx", st);
    if (st >= 0) {
        object_name("O11", dir);
        open_oa(&oa, &us, L"Inner", dir);
        st = NtCreateMutant(&a, MUTANT_ALL_ACCESS, &oa, FALSE);
        say("O12", "mutant in directory: 0x%08lx", st);
        if (st >= 0)
            object_name("O13", a);
        open_oa(&oa, &us, L"Ev", dir);
        st = NtCreateEvent(&b, EVENT_ALL_ACCESS, &oa, 0, FALSE);
        say("O14", "event in directory: 0x%08lx", st);
        BYTE raw[1024];
        ULONG ctx = 0, len = 0;
        char line[512] = "";
        size_t used = 0;
        BOOLEAN first = TRUE;
        while ((st = NtQueryDirectoryObject(dir, raw, sizeof raw, TRUE, first, &ctx, &len)) >= 0) {
            UNICODE_STRING *entry = (UNICODE_STRING *)raw;   /* OBJECT_DIRECTORY_INFORMATION: Name, TypeName */
            used += snprintf(line + used, sizeof line - used, " %s:%s", u8(entry[0].Buffer, entry[0].Length / 2),
                             u8(entry[1].Buffer, entry[1].Length / 2));
            first = FALSE;
        }
        say("O15", "directory listing end=0x%08lx:%s", st, line);
        swprintf(name, 512, L"%lsDir\\Inner", g_tag);
        HANDLE m = OpenMutexW(SYNCHRONIZE, FALSE, name);
        say("O16", "Win32 open through directory: %d", m != NULL);
        if (m)
            CloseHandle(m);
        /* A symbolic link in the session directory pointing at ours. */
        swprintf(name, 512, L"\\Sessions\\1\\BaseNamedObjects\\%lsLink", g_tag);
        wchar_t target[512];
        swprintf(target, 512, L"\\Sessions\\1\\BaseNamedObjects\\%lsDir", g_tag);
        UNICODE_STRING tus;
        RtlInitUnicodeString(&tus, target);
        open_oa(&oa, &us, name, NULL);
        HANDLE link;
        st = NtCreateSymbolicLinkObject(&link, SYMBOLIC_LINK_ALL_ACCESS, &oa, &tus);
        say("O17", "create symbolic link: 0x%08lx", st);
        if (st >= 0) {
            wchar_t back[512];
            UNICODE_STRING bus = { 0, sizeof back, back };
            ULONG blen = 0;
            NTSTATUS q = NtQuerySymbolicLinkObject(link, &bus, &blen);
            say("O18", "link target: 0x%08lx %s", q, q >= 0 ? after_tag(bus.Buffer, bus.Length / 2, g_tag) : "");
            swprintf(name, 512, L"%lsLink\\Inner", g_tag);
            m = OpenMutexW(SYNCHRONIZE, FALSE, name);
            say("O19", "open through link: %d", m != NULL);
            if (m) {
                object_name("O20", m);
                CloseHandle(m);
            }
            CloseHandle(link);
        }
        if (a)
            CloseHandle(a);
        if (b)
            CloseHandle(b);
        CloseHandle(dir);
    }
    /* Well-known directories. */
    static const struct { const char *id; const wchar_t *path; } known[] = {
        { "O30", L"\\BaseNamedObjects" }, { "O31", L"\\Sessions\\1\\BaseNamedObjects" }, { "O32", L"\\??" },
        { "O33", L"\\KernelObjects" }, { "O34", L"\\NoSuchDirectory" },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        open_oa(&oa, &us, known[i].path, NULL);
        st = NtOpenDirectoryObject(&dir, DIRECTORY_QUERY, &oa);
        say(known[i].id, "open directory: 0x%08lx", st);
        if (st >= 0)
            CloseHandle(dir);
    }
    open_oa(&oa, &us, L"\\??\\C:", NULL);
    HANDLE link;
    st = NtOpenSymbolicLinkObject(&link, SYMBOLIC_LINK_QUERY, &oa);
    if (st >= 0) {
        wchar_t back[512];
        UNICODE_STRING bus = { 0, sizeof back, back };
        ULONG blen = 0;
        NTSTATUS q = NtQuerySymbolicLinkObject(link, &bus, &blen);
        say("O35", "C: link: 0x%08lx %s", q, u8(bus.Buffer, bus.Length / 2));
        CloseHandle(link);
    } else {
        say("O35", "C: link: 0x%08lx", st);
    }
    /* Sections and semaphores by name. */
    swprintf(name, 512, L"%lsSection", g_tag);
    a = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 4096, name);
    say("O40", "section: %d err=%lu", a != NULL, (unsigned long)GetLastError());
    b = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
    say("O41", "open section: %d", b != NULL);
    if (a && b) {
        char *w = MapViewOfFile(a, FILE_MAP_WRITE, 0, 0, 0);
        char *r = MapViewOfFile(b, FILE_MAP_READ, 0, 0, 0);
        if (w && r) {
            strcpy(w, "shared");
            say("O42", "view: %s", r);
        }
    }
    swprintf(name, 512, L"%lsSem", g_tag);
    HANDLE s = CreateSemaphoreW(NULL, 1, 5, name);
    HANDLE s2 = CreateSemaphoreW(NULL, 1, 5, name);
    say("O43", "semaphore: %d again err=%lu", s != NULL, (unsigned long)GetLastError());
    LONG prev = -1;
    ReleaseSemaphore(s2, 1, &prev);
    say("O44", "release through second handle: prev=%ld", prev);
    /* A long name. */
    static wchar_t longname[2100];
    for (int i = 0; i < 2000; i++)
        longname[i] = L'a' + i % 26;
    longname[2000] = 0;
    a = CreateEventW(NULL, FALSE, FALSE, longname);
    say("O45", "event with a 2000-character name: %d err=%lu", a != NULL, (unsigned long)GetLastError());
    if (a)
        CloseHandle(a);
    /* Near the object manager's limit (32767 units with
     * \Sessions\1\BaseNamedObjects\ in front): the box's own directory
     * in front must not make it fail where the host takes it. */
    static wchar_t longest[32768];
    for (int i = 0; i < 32700; i++)
        longest[i] = L'a' + i % 26;
    longest[32700] = 0;
    a = CreateEventW(NULL, FALSE, FALSE, longest);
    say("O46", "event with a 32700-character name: %d err=%lu", a != NULL, (unsigned long)GetLastError());
    HANDLE again = OpenEventW(EVENT_MODIFY_STATE, FALSE, longest);
    say("O47", "open it again: %d", again != NULL);
    if (again)
        CloseHandle(again);
    if (a)
        CloseHandle(a);
    longest[32760] = 0;
    for (int i = 32700; i < 32760; i++)
        longest[i] = L'b';
    a = CreateEventW(NULL, FALSE, FALSE, longest);
    say("O48", "event with a 32760-character name: %d err=%lu", a != NULL, (unsigned long)GetLastError());
    if (a)
        CloseHandle(a);
    return 0;
}

/* ---- robustness: hooks must not trust the caller's memory ----------------------- */
static int run_robust(int which)
{
    HANDLE h = NULL;
    IO_STATUS_BLOCK io;
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    NTSTATUS st = 0;
    switch (which) {
    case 0: {   /* NtQueryDirectoryFile with a NULL buffer */
        RtlInitUnicodeString(&us, L"\\??\\C:\\windows");
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        NtOpenFile(&h, FILE_LIST_DIRECTORY | SYNCHRONIZE, &oa, &io, SHARE_ALL,
                   FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
        st = NtQueryDirectoryFile(h, NULL, NULL, NULL, &io, NULL, 4096, FILE_CLASS(C_FileNamesInformation), FALSE,
                                  NULL, TRUE);
        break;
    }
    case 1:   /* NtCreateFile with NULL OBJECT_ATTRIBUTES */
        st = NtCreateFile(&h, GENERIC_READ, NULL, &io, NULL, 0, SHARE_ALL, FILE_OPEN, 0, NULL, 0);
        break;
    case 2:   /* NtOpenKey with a garbage name pointer */
        InitializeObjectAttributes(&oa, (PUNICODE_STRING)(ULONG_PTR)0x1000, OBJ_CASE_INSENSITIVE, NULL, NULL);
        st = NtOpenKey(&h, KEY_READ, &oa);
        break;
    case 3:   /* a mutant name whose buffer is garbage */
        us.Length = us.MaximumLength = 20;
        us.Buffer = (PWSTR)(ULONG_PTR)0x1000;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        st = NtCreateMutant(&h, MUTANT_ALL_ACCESS, &oa, FALSE);
        break;
    case 4:   /* a file name of odd byte length */
        RtlInitUnicodeString(&us, L"\\??\\C:\\windows\\win.ini");
        us.Length -= 1;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        st = NtCreateFile(&h, GENERIC_READ | SYNCHRONIZE, &oa, &io, NULL, 0, SHARE_ALL, FILE_OPEN,
                          FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
        break;
    case 5:   /* NtQueryAttributesFile with NULL OBJECT_ATTRIBUTES */
        st = NtQueryAttributesFile(NULL, &io);
        break;
    case 6:   /* Length above MaximumLength */
        RtlInitUnicodeString(&us, L"\\??\\C:\\windows\\win.ini");
        us.Length = us.MaximumLength + 2;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        st = NtCreateFile(&h, GENERIC_READ | SYNCHRONIZE, &oa, &io, NULL, 0, SHARE_ALL, FILE_OPEN,
                          FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
        break;
    case 7:   /* NtQueryObject name into a NULL buffer */
        h = CreateEventW(NULL, FALSE, FALSE, L"FvmConformRobust");
        st = NtQueryObject(h, ObjectNameInformation, NULL, 0, NULL);
        break;
    case 8:   /* NtOpenKey with NULL OBJECT_ATTRIBUTES */
        st = NtOpenKey(&h, KEY_READ, NULL);
        break;
    case 9:   /* NtCreateKey with a garbage name buffer */
        us.Length = us.MaximumLength = 20;
        us.Buffer = (PWSTR)(ULONG_PTR)0x1000;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        st = NtCreateKey(&h, KEY_READ, &oa, 0, NULL, 0, NULL);
        break;
    case 10:   /* NtOpenFile with a garbage name buffer */
        us.Length = us.MaximumLength = 20;
        us.Buffer = (PWSTR)(ULONG_PTR)0x1000;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        st = NtOpenFile(&h, GENERIC_READ, &oa, &io, SHARE_ALL, 0);
        break;
    case 11:   /* NtQueryInformationFile(FileNameInformation) into a NULL buffer */
        h = CreateFileW(L"C:\\windows\\win.ini", GENERIC_READ, SHARE_ALL, NULL, OPEN_EXISTING, 0, NULL);
        st = NtQueryInformationFile(h, &io, NULL, 4096, FILE_CLASS(C_FileNameInformation));
        break;
    case 12:   /* NtSetInformationFile(FileRenameInformation) with a garbage buffer */
        h = CreateFileW(L"C:\\windows\\win.ini", DELETE, SHARE_ALL, NULL, OPEN_EXISTING, 0, NULL);
        st = NtSetInformationFile(h, &io, (PVOID)(ULONG_PTR)0x1000, 600, FILE_CLASS(C_FileRenameInformation));
        break;
    case 13:   /* NtSetValueKey with a garbage value name */
        RtlInitUnicodeString(&us, L"\\Registry\\Machine\\Software");
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        NtOpenKey(&h, KEY_ALL_ACCESS, &oa);
        st = NtSetValueKey(h, (PUNICODE_STRING)(ULONG_PTR)0x1000, 0, REG_SZ, L"x", 4);
        break;
    case 14:   /* NtDeleteValueKey with a garbage name */
        RtlInitUnicodeString(&us, L"\\Registry\\Machine\\Software");
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        NtOpenKey(&h, KEY_ALL_ACCESS, &oa);
        st = NtDeleteValueKey(h, (PUNICODE_STRING)(ULONG_PTR)0x1000);
        break;
    case 15:   /* NtOpenDirectoryObject with a garbage name */
        us.Length = us.MaximumLength = 20;
        us.Buffer = (PWSTR)(ULONG_PTR)0x1000;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        st = NtOpenDirectoryObject(&h, DIRECTORY_QUERY, &oa);
        break;
    default:
        return 2;
    }
    say("R", "case %d: 0x%08lx", which, st);
    return 0;
}
#define ROBUST_CASES 16

int wmain(int argc, wchar_t **argv)
{
    if (argc >= 3 && !wcscmp(argv[1], L"robust")) {
        if (!wcscmp(argv[2], L"count")) {
            printf("%d\n", ROBUST_CASES);
            return 0;
        }
        return run_robust(_wtoi(argv[2]));
    }
    BOOL seed = argc >= 4 && !wcscmp(argv[1], L"seed");
    const wchar_t *group = argv[seed ? 2 : 1];
    const wchar_t *where = argv[seed ? 3 : 2];
    if (argc < 3 || !group || !where) {
        fprintf(stderr, "usage: conform [seed] files DIR | [seed] keys KEY | objects TAG | robust N|count\n");
        return 2;
    }
    if (!wcscmp(group, L"files")) {
        wcsncpy(g_dir, where, MAX_PATH - 1);
        g_tag = wcsrchr(g_dir, L'\\') ? wcsrchr(g_dir, L'\\') + 1 : g_dir;
        if (seed) {
            seed_files();
            return 0;
        }
        return run_files();
    }
    if (!wcscmp(group, L"keys")) {
        /* KEY is HKCU\<path>: the NT name of HKCU comes from the platform. */
        if (_wcsnicmp(where, L"HKCU\\", 5) != 0) {
            fprintf(stderr, "conform: KEY must start with HKCU\\\n");
            return 2;
        }
        UNICODE_STRING user;
        RtlFormatCurrentUserKeyPath(&user);
        swprintf(g_key, 512, L"%.*ls\\%ls", user.Length / 2, user.Buffer, where + 5);
        g_tag = wcsrchr(where, L'\\') + 1;
        if (seed) {
            seed_keys();
            return 0;
        }
        return run_keys();
    }
    if (!wcscmp(group, L"objects")) {
        g_tag = where;
        return run_objects();
    }
    fprintf(stderr, "conform: unknown group\n");
    return 2;
}

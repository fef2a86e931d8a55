/* filetool.c - filetool.exe: one file operation per invocation, through the
 * exact Win32 or NT call named, for the file virtualization tests.
 *
 *   filetool write PATH TEXT         CreateFileW(CREATE_ALWAYS) + WriteFile
 *   filetool append PATH TEXT        OPEN_ALWAYS, write at end
 *   filetool read PATH               print the content
 *   filetool attrs PATH              GetFileAttributesW, in hex
 *   filetool finalpath PATH          GetFinalPathNameByHandleW (DOS and NT forms)
 *   filetool names PATH              NtQueryObject and FileNameInformation names
 *   filetool list DIR [MASK]         FindFirstFileW/FindNextFileW names, one a line
 *   filetool move A B [replace]      MoveFileExW
 *   filetool link A B                CreateHardLinkW
 *   filetool delete PATH             DeleteFileW
 *   filetool rmdir PATH              RemoveDirectoryW
 *   filetool mkdir PATH              CreateDirectoryW
 *   filetool truncate PATH N         SetFilePointerEx + SetEndOfFile
 *   filetool setattr PATH HEX        SetFileAttributesW
 *   filetool settime PATH            SetFileTime to 2001-01-01
 *   filetool mmap PATH TEXT          write TEXT at offset 0 through a mapped view
 *   filetool ntcreate NTPATH TEXT    NtCreateFile(FILE_OVERWRITE_IF) on a raw NT name, write TEXT
 *   filetool ntopenw NTPATH          NtCreateFile(FILE_OPEN, FILE_WRITE_DATA) and write "X"
 *   filetool relcreate DIR NAME TEXT NtCreateFile relative to a handle of DIR
 *   filetool ntdelete NTPATH         NtDeleteFile
 *   filetool deleteonclose PATH      CreateFileW(FILE_FLAG_DELETE_ON_CLOSE) + CloseHandle
 *   filetool dupwrite PATH TEXT      open read-only, DuplicateHandle with write access, write
 *   filetool symlink LINK TARGET [dir]  CreateSymbolicLinkW
 *   filetool ntrename PATH NTTARGET  NtSetInformationFile(FileRenameInformation) to a raw NT name
 *   filetool fill PATH BYTES         write BYTES bytes (64 KiB at a time) to a new file; prints how many went in
 *   filetool dupfill PATH BYTES      the same through a DuplicateHandle copy (the original closed first)
 *   filetool hold PATH UNTIL         open for reading, sharing reading only; print "OK held"; keep the
 *                                    handle until the file UNTIL exists (60 s at most)
 *   filetool watch DIR MS            ReadDirectoryChangesW (file names, size, last write) on DIR; print
 *                                    "OK watching", then each record as "<action> <name>" until MS
 *                                    pass without one; then "OK end"
 *
 * Prints "OK" (plus the result) or "ERR <what> <code>" and exits 0 or 1. */
#include <windows.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

NTSTATUS NTAPI NtCreateFile(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG,
                            ULONG, ULONG, ULONG, PVOID, ULONG);
NTSTATUS NTAPI NtDeleteFile(POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtSetInformationFile(HANDLE, PIO_STATUS_BLOCK, PVOID, ULONG, FILE_INFORMATION_CLASS);

static int fail(const char *what, DWORD code)
{
    printf("ERR %s %lu\n", what, (unsigned long)code);
    return 1;
}

static int fail_nt(const char *what, NTSTATUS status)
{
    printf("ERR %s 0x%08lx\n", what, (unsigned long)status);
    return 1;
}

static int write_handle(HANDLE h, const wchar_t *text)
{
    char buf[4096];
    int n = WideCharToMultiByte(CP_UTF8, 0, text, -1, buf, sizeof buf, NULL, NULL) - 1;
    DWORD written;
    if (!WriteFile(h, buf, (DWORD)n, &written, NULL))
        return fail("write", GetLastError());
    return 0;
}

static void init_nt(OBJECT_ATTRIBUTES *oa, UNICODE_STRING *us, const wchar_t *name, HANDLE root)
{
    RtlInitUnicodeString(us, name);
    InitializeObjectAttributes(oa, us, OBJ_CASE_INSENSITIVE, root, NULL);
}

static int nt_create_and_write(const wchar_t *name, HANDLE root, const wchar_t *text, ULONG disposition,
                               ACCESS_MASK access)
{
    OBJECT_ATTRIBUTES oa;
    UNICODE_STRING us;
    IO_STATUS_BLOCK io;
    HANDLE h;
    init_nt(&oa, &us, name, root);
    NTSTATUS st = NtCreateFile(&h, access | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL,
                               FILE_SHARE_READ | FILE_SHARE_WRITE, disposition,
                               FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, NULL, 0);
    if (st < 0)
        return fail_nt("NtCreateFile", st);
    int rc = write_handle(h, text);
    CloseHandle(h);
    if (!rc)
        printf("OK\n");
    return rc;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3)
        return fail("usage", 0);
    const wchar_t *op = argv[1], *path = argv[2];
    const wchar_t *arg3 = argc > 3 ? argv[3] : L"";

    if (!wcscmp(op, L"write") || !wcscmp(op, L"append")) {
        BOOL append = !wcscmp(op, L"append");
        HANDLE h = CreateFileW(path, append ? FILE_APPEND_DATA : GENERIC_WRITE, FILE_SHARE_READ, NULL,
                               append ? OPEN_ALWAYS : CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        int rc = write_handle(h, arg3);
        CloseHandle(h);
        if (!rc)
            printf("OK\n");
        return rc;
    }
    if (!wcscmp(op, L"watch") && argc >= 4) {
        HANDLE h = CreateFileW(path, FILE_LIST_DIRECTORY, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                               NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OVERLAPPED, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        static DWORD records[4096];
        OVERLAPPED ov = {0};
        ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        DWORD filter = FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_SIZE | FILE_NOTIFY_CHANGE_LAST_WRITE;
        if (!ReadDirectoryChangesW(h, records, sizeof records, FALSE, filter, NULL, &ov, NULL))
            return fail("ReadDirectoryChangesW", GetLastError());
        printf("OK watching\n");
        fflush(stdout);
        DWORD ms = (DWORD)_wtoi(arg3), bytes;
        while (WaitForSingleObject(ov.hEvent, ms) == WAIT_OBJECT_0 && GetOverlappedResult(h, &ov, &bytes, FALSE)) {
            for (const BYTE *at = (const BYTE *)records; bytes;) {
                const FILE_NOTIFY_INFORMATION *fni = (const FILE_NOTIFY_INFORMATION *)at;
                printf("%lu %.*ls\n", (unsigned long)fni->Action, (int)(fni->FileNameLength / 2), fni->FileName);
                if (!fni->NextEntryOffset)
                    break;
                at += fni->NextEntryOffset;
            }
            fflush(stdout);
            ResetEvent(ov.hEvent);
            if (!ReadDirectoryChangesW(h, records, sizeof records, FALSE, filter, NULL, &ov, NULL))
                return fail("ReadDirectoryChangesW", GetLastError());
        }
        printf("OK end\n");
        CloseHandle(h);
        return 0;
    }
    if (!wcscmp(op, L"hold") && argc >= 4) {
        HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        printf("OK held\n");
        fflush(stdout);
        for (int i = 0; i < 1200 && GetFileAttributesW(argv[3]) == INVALID_FILE_ATTRIBUTES; i++)
            Sleep(50);
        CloseHandle(h);
        return 0;
    }
    if (!wcscmp(op, L"read")) {
        HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        char buf[65536];
        DWORD got = 0;
        ReadFile(h, buf, sizeof buf - 1, &got, NULL);
        buf[got] = 0;
        CloseHandle(h);
        printf("OK %s\n", buf);
        return 0;
    }
    if (!wcscmp(op, L"attrs")) {
        DWORD a = GetFileAttributesW(path);
        if (a == INVALID_FILE_ATTRIBUTES)
            return fail("GetFileAttributes", GetLastError());
        printf("OK %lx\n", (unsigned long)a);
        return 0;
    }
    if (!wcscmp(op, L"finalpath") || !wcscmp(op, L"names")) {
        HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                               FILE_FLAG_BACKUP_SEMANTICS, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        wchar_t a[1024], b[1024];
        if (!wcscmp(op, L"finalpath")) {
            DWORD n1 = GetFinalPathNameByHandleW(h, a, 1024, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
            DWORD n2 = GetFinalPathNameByHandleW(h, b, 1024, FILE_NAME_NORMALIZED | VOLUME_NAME_NT);
            CloseHandle(h);
            if (!n1 || !n2)
                return fail("GetFinalPathNameByHandle", GetLastError());
            printf("OK %ls|%ls\n", a, b);
            return 0;
        }
        union {
            OBJECT_NAME_INFORMATION oni;
            char bytes[4096];
        } on;
        union {
            FILE_NAME_INFORMATION fni;
            char bytes[4096];
        } fn;
        ULONG got;
        IO_STATUS_BLOCK io;
        NTSTATUS s1 = NtQueryObject(h, ObjectNameInformation, &on, sizeof on, &got);
        NTSTATUS s2 = NtQueryInformationFile(h, &io, &fn, sizeof fn, (FILE_INFORMATION_CLASS)9);
        CloseHandle(h);
        if (s1 < 0 || s2 < 0)
            return fail_nt("name query", s1 < 0 ? s1 : s2);
        printf("OK %.*ls|%.*ls\n", (int)(on.oni.Name.Length / 2), on.oni.Name.Buffer,
               (int)(fn.fni.FileNameLength / 2), fn.fni.FileName);
        return 0;
    }
    if (!wcscmp(op, L"list")) {
        wchar_t pattern[1024];
        _snwprintf(pattern, 1024, L"%ls\\%ls", path, argc > 3 ? arg3 : L"*");
        WIN32_FIND_DATAW fd;
        HANDLE f = FindFirstFileW(pattern, &fd);
        if (f == INVALID_HANDLE_VALUE)
            return fail("FindFirstFile", GetLastError());
        printf("OK\n");
        do
            printf("%ls\n", fd.cFileName);
        while (FindNextFileW(f, &fd));
        FindClose(f);
        return 0;
    }
    if (!wcscmp(op, L"move")) {
        DWORD flags = MOVEFILE_COPY_ALLOWED | (argc > 4 ? MOVEFILE_REPLACE_EXISTING : 0);
        if (!MoveFileExW(path, arg3, flags))
            return fail("MoveFileEx", GetLastError());
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"link")) {
        if (!CreateHardLinkW(arg3, path, NULL))
            return fail("CreateHardLink", GetLastError());
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"delete")) {
        if (!DeleteFileW(path))
            return fail("DeleteFile", GetLastError());
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"rmdir")) {
        if (!RemoveDirectoryW(path))
            return fail("RemoveDirectory", GetLastError());
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"mkdir")) {
        if (!CreateDirectoryW(path, NULL))
            return fail("CreateDirectory", GetLastError());
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"truncate")) {
        HANDLE h = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        LARGE_INTEGER at = {.QuadPart = _wtoi64(arg3)};
        BOOL ok = SetFilePointerEx(h, at, NULL, FILE_BEGIN) && SetEndOfFile(h);
        DWORD e = GetLastError();
        CloseHandle(h);
        if (!ok)
            return fail("SetEndOfFile", e);
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"setattr")) {
        if (!SetFileAttributesW(path, (DWORD)wcstoul(arg3, NULL, 16)))
            return fail("SetFileAttributes", GetLastError());
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"settime")) {
        HANDLE h = CreateFileW(path, FILE_WRITE_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                               FILE_FLAG_BACKUP_SEMANTICS, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        SYSTEMTIME st = {2001, 1, 1, 1, 0, 0, 0, 0};
        FILETIME ft;
        SystemTimeToFileTime(&st, &ft);
        BOOL ok = SetFileTime(h, &ft, &ft, &ft);
        DWORD e = GetLastError();
        CloseHandle(h);
        if (!ok)
            return fail("SetFileTime", e);
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"mmap")) {
        HANDLE h = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        HANDLE m = CreateFileMappingW(h, NULL, PAGE_READWRITE, 0, 0, NULL);
        if (!m)
            return fail("CreateFileMapping", GetLastError());
        char *view = MapViewOfFile(m, FILE_MAP_WRITE, 0, 0, 0);
        if (!view)
            return fail("MapViewOfFile", GetLastError());
        for (size_t i = 0; arg3[i]; i++)
            view[i] = (char)arg3[i];
        FlushViewOfFile(view, 0);
        UnmapViewOfFile(view);
        CloseHandle(m);
        CloseHandle(h);
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"ntcreate"))
        return nt_create_and_write(path, NULL, arg3, FILE_OVERWRITE_IF, FILE_GENERIC_WRITE);
    if (!wcscmp(op, L"ntopenw"))
        return nt_create_and_write(path, NULL, L"X", FILE_OPEN, FILE_WRITE_DATA);
    if (!wcscmp(op, L"relcreate")) {
        HANDLE dir = CreateFileW(path, FILE_LIST_DIRECTORY, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING,
                                 FILE_FLAG_BACKUP_SEMANTICS, NULL);
        if (dir == INVALID_HANDLE_VALUE)
            return fail("CreateFile dir", GetLastError());
        int rc = nt_create_and_write(arg3, dir, argc > 4 ? argv[4] : L"", FILE_OVERWRITE_IF, FILE_GENERIC_WRITE);
        CloseHandle(dir);
        return rc;
    }
    if (!wcscmp(op, L"ntdelete")) {
        OBJECT_ATTRIBUTES oa;
        UNICODE_STRING us;
        init_nt(&oa, &us, path, NULL);
        NTSTATUS st = NtDeleteFile(&oa);
        if (st < 0)
            return fail_nt("NtDeleteFile", st);
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"deleteonclose")) {
        HANDLE h = CreateFileW(path, DELETE, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                               FILE_FLAG_DELETE_ON_CLOSE, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        CloseHandle(h);
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"dupwrite")) {
        HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        HANDLE w;
        if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &w, GENERIC_WRITE, FALSE, 0))
            return fail("DuplicateHandle", GetLastError());
        int rc = write_handle(w, arg3);
        if (!rc)
            printf("OK\n");
        return rc;
    }
    if (!wcscmp(op, L"symlink")) {
        DWORD flags = (argc > 4 ? SYMBOLIC_LINK_FLAG_DIRECTORY : 0) | 2 /* ALLOW_UNPRIVILEGED_CREATE */;
        if (!CreateSymbolicLinkW(path, arg3, flags))
            return fail("CreateSymbolicLink", GetLastError());
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"ntrename")) {
        HANDLE h = CreateFileW(path, DELETE | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                               NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        size_t n = wcslen(arg3);
        FILE_RENAME_INFORMATION *ri = calloc(1, sizeof *ri + n * 2);
        ri->ReplaceIfExists = TRUE;
        ri->FileNameLength = (ULONG)(n * 2);
        memcpy(ri->FileName, arg3, n * 2);
        IO_STATUS_BLOCK io;
        NTSTATUS st = NtSetInformationFile(h, &io, ri, (ULONG)(sizeof *ri + n * 2), FileRenameInformation);
        CloseHandle(h);
        if (st < 0)
            return fail_nt("NtSetInformationFile", st);
        printf("OK\n");
        return 0;
    }
    if (!wcscmp(op, L"fill") || !wcscmp(op, L"dupfill")) {
        HANDLE h = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
        if (h == INVALID_HANDLE_VALUE)
            return fail("CreateFile", GetLastError());
        if (!wcscmp(op, L"dupfill")) {
            HANDLE copy;
            if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &copy, 0, FALSE,
                                 DUPLICATE_SAME_ACCESS))
                return fail("DuplicateHandle", GetLastError());
            CloseHandle(h);
            h = copy;
        }
        static char chunk[65536];
        memset(chunk, 'f', sizeof chunk);
        long long want = _wtoi64(arg3), done = 0;
        while (done < want) {
            DWORD n = (DWORD)(want - done < (long long)sizeof chunk ? want - done : (long long)sizeof chunk), w = 0;
            if (!WriteFile(h, chunk, n, &w, NULL)) {
                DWORD e = GetLastError();
                CloseHandle(h);
                printf("ERR WriteFile %lu after %lld\n", (unsigned long)e, done);
                return 1;
            }
            done += w;
        }
        CloseHandle(h);
        printf("OK %lld\n", done);
        return 0;
    }
    return fail("unknown-op", 0);
}

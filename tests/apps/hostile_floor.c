/* hostile_floor.c - a program that tries, as an attacker would, to get
 * around FVM's hooks from inside a box (tests/e2e/test_floor.py).
 *
 *   hostile_floor floor                      prints "floor STATE ABI (R rules, T us)" (runtime/floor.h)
 *   hostile_floor raw-write PATH             raw Linux openat(O_WRONLY|O_TRUNC) + write
 *   hostile_floor raw-create PATH            raw openat(O_CREAT) + write
 *   hostile_floor raw-read PATH              raw openat(O_RDONLY) + read
 *   hostile_floor raw-unlink PATH | raw-rmdir... see the table below
 *   hostile_floor raw-exec PROGRAM [ARG...]  raw fork + execve, waits for the child
 *   hostile_floor raw-kill PID               raw kill(PID, SIGTERM)
 *   hostile_floor raw-ptrace PID             ptrace(PTRACE_ATTACH)
 *   hostile_floor raw-vmwrite PID            process_vm_writev
 *   hostile_floor raw-procmem PID            open /proc/PID/mem for writing
 *   hostile_floor raw-abstract NAME          connect to the abstract unix socket @NAME
 *   hostile_floor raw-unix PATH              connect to the pathname unix socket PATH
 *   hostile_floor raw-unshare                unshare(CLONE_NEWUSER)
 *   hostile_floor raw-tcp PORT               raw socket + connect to 127.0.0.1:PORT (TCP)
 *   hostile_floor raw-list DIR               raw open + getdents64: prints "entry NAME" for each, then
 *                                            "list: N" (the count) or the error
 *   hostile_floor raw-udp PORT               raw socket + sendto 127.0.0.1:PORT (UDP, which Landlock cannot hold)
 *   hostile_floor raw-resolve DIR NAME       the relay's socket DIR/resolve asked for NAME by hand (raw calls):
 *                                            "relay: ERROR COUNT"
 *   hostile_floor raw-bind-tcp               raw socket + bind to 127.0.0.1, any port, + listen
 *   hostile_floor raw-icmp-socket            raw socket(AF_INET, SOCK_RAW, ICMP) (forged traffic as root)
 *   hostile_floor stub-create NTPATH TEXT    NtCreateFile through an own stub, then write
 *   hostile_floor stub-read NTPATH           NtCreateFile (read, open existing) through an own stub, then read
 *   hostile_floor stub-broker-resolve BOXPATH NAME   the box's broker asked to resolve NAME by
 *                                            hand (its pipe opened by an own stub): "broker: ERROR COUNT"
 *   hostile_floor stub-delete NTPATH         NtDeleteFile through an own stub
 *   hostile_floor stub-rename NTPATH NEWNT   NtCreateFile + NtSetInformationFile(rename), own stubs
 *   hostile_floor stub-setvalue KEY NAME     NtCreateKey + NtSetValueKey through own stubs
 *   hostile_floor unhook-write PATH TEXT     restore ntdll!NtCreateFile from disk, then write
 *   hostile_floor unhook-connect PORT        restore ntdll!NtDeviceIoControlFile (the [net] hook) from
 *                                            disk, then Winsock connect to 127.0.0.1:PORT ("connect: 0",
 *                                            or minus the WSA error)
 *   hostile_floor unhook-sendto PORT         the same restore, then a Winsock UDP socket and sendto
 *                                            127.0.0.1:PORT ("sendto: 4", or "socket:"/"sendto:" minus
 *                                            the WSA error)
 *   hostile_floor unhook-udp-connect PORT    the same restore, a Winsock UDP socket connected to
 *                                            127.0.0.1:PORT (Wine's server connects it), then send
 *                                            ("send: 4", or "socket:"/"connect:"/"send:" minus the error)
 *
 * Paths of raw-* commands are Linux paths. Prints one line "<command>:
 * <result>" and exits 0 when the attempt was refused, 1 when it went
 * through, 2 on a usage error. The test decides from the host's state. */
#define WIN32_NO_STATUS
#include <winsock2.h>
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <winternl.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "common/boxcfg.h"
#include "runtime/linux_syscall.h"

static char *utf8(const wchar_t *w)
{
    static char bufs[4][2048];
    static int next;
    char *b = bufs[next++ & 3];
    WideCharToMultiByte(CP_UTF8, 0, w, -1, b, 2048, NULL, NULL);
    return b;
}

static int outcome(const char *cmd, int64_t r)
{
    printf("%s: %lld\n", cmd, (long long)r);
    return r < 0 ? 0 : 1;
}

/* ---- raw Linux system calls --------------------------------------------- */

static int raw_write(const char *path, int flags)
{
    int64_t fd = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)path, flags | L_O_CLOEXEC, 0644, 0, 0);
    if (fd < 0)
        return outcome("open", fd);
    int64_t w = LSYS(LNR_write, fd, "HOSTILE", 7);
    LSYS(LNR_close, fd, 0, 0);
    return outcome("write", w);
}

static int raw_read(const char *path)
{
    char buf[64];
    int64_t fd = LSYS(LNR_openat, L_AT_FDCWD, path, L_O_RDONLY | L_O_CLOEXEC);
    if (fd < 0)
        return outcome("open", fd);
    int64_t r = LSYS(LNR_read, fd, buf, sizeof buf);
    LSYS(LNR_close, fd, 0, 0);
    return outcome("read", r);
}

static int raw_exec(int argc, char **argv)
{
    static char *args[16];
    static char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    for (int i = 0; i < argc && i < 15; i++)
        args[i] = argv[i];
    int64_t pid = LSYS(LNR_fork, 0, 0, 0);
    if (pid == 0) {
        int64_t e = LSYS(LNR_execve, args[0], args, envp);
        LSYS(LNR_exit, e < 0 ? (int)-e : 127, 0, 0);
    }
    if (pid < 0)
        return outcome("fork", pid);
    int status = 0;
    int64_t w = linux_syscall6(LNR_wait4, pid, (int64_t)&status, 0, 0, 0, 0);
    int code = (status >> 8) & 0xff;
    printf("child exit %d (errno of execve if it failed)\n", code);
    return outcome("exec", w < 0 ? w : code ? -code : 0);
}

static int raw_abstract(const char *name)
{
    struct { uint16_t family; char path[108]; } addr = {1 /* AF_UNIX */, {0}};
    size_t n = strlen(name);
    memcpy(addr.path + 1, name, n);
    int64_t fd = LSYS(LNR_socket, 1, 1 /* SOCK_STREAM */, 0);
    if (fd < 0)
        return outcome("socket", fd);
    int64_t r = LSYS(LNR_connect, fd, &addr, 2 + 1 + n);
    LSYS(LNR_close, fd, 0, 0);
    return outcome("connect", r);
}

/* A pathname unix socket (Wine's server, an X display): Landlock ABI 7
 * has no rule for connecting to one. */
static int raw_unix(const char *path)
{
    struct { uint16_t family; char path[108]; } addr = {1 /* AF_UNIX */, {0}};
    size_t n = strlen(path);
    if (n >= sizeof addr.path)
        return outcome("connect", -L_EINVAL);
    memcpy(addr.path, path, n);
    int64_t fd = LSYS(LNR_socket, 1, 1 /* SOCK_STREAM */, 0);
    if (fd < 0)
        return outcome("socket", fd);
    int64_t r = LSYS(LNR_connect, fd, &addr, 2 + n + 1);
    LSYS(LNR_close, fd, 0, 0);
    return outcome("connect", r);
}

/* An FVMRSV01 request for node (core/resolvemsg.h), built by hand as a
 * program without the runtime would: its length, 0 for a bad name. */
static size_t resolve_request(const char *node, unsigned char msg[32 + 256])
{
    size_t len = strlen(node);
    if (!len || len > 255)
        return 0;
    memset(msg, 0, 32);
    memcpy(msg, "FVMRSV01", 8);
    msg[16] = 1;   /* SOCK_STREAM */
    msg[24] = (unsigned char)len;
    memcpy(msg + 32, node, len);
    return 32 + len;
}

/* "WHO: <Winsock error> <addresses>" from a reply (12 bytes at least). */
static void say_resolve_reply(const char *who, const unsigned char *reply)
{
    printf("%s: %d %u\n", who, reply[4] | reply[5] << 8 | reply[6] << 16 | reply[7] << 24,
           (unsigned)(reply[8] | reply[9] << 8));
}

/* The box's relay (a box with its own server, cli/relay.c) asked by hand
 * to resolve NAME: an FVMRSV01 request (core/resolvemsg.h) written to the
 * unix socket DIR/resolve with raw calls, without the hooks.
 * "relay: <Winsock error> <addresses>". */
static int raw_resolve(const char *dir, const char *node)
{
    unsigned char msg[32 + 256], reply[4096];
    size_t len = resolve_request(node, msg);
    if (!len)
        return outcome("name", -L_EINVAL);
    int64_t dir_fd = LSYS(LNR_openat, L_AT_FDCWD, dir, L_O_PATH | L_O_DIRECTORY | L_O_CLOEXEC);
    if (dir_fd < 0)
        return outcome("open", dir_fd);
    struct { uint16_t family; char path[108]; } addr = {1 /* AF_UNIX */, {0}};
    snprintf(addr.path, sizeof addr.path, "/proc/self/fd/%d/resolve", (int)dir_fd);
    int64_t fd = LSYS(LNR_socket, 1, 1 /* SOCK_STREAM */, 0);
    int64_t r = fd < 0 ? fd : LSYS(LNR_connect, fd, &addr, sizeof addr);
    if (r < 0)
        return outcome("connect", r);
    LSYS(LNR_write, fd, msg, len);
    LSYS(48 /* shutdown */, fd, 1 /* SHUT_WR */, 0);
    int64_t got = 0, n;
    while ((n = LSYS(LNR_read, fd, reply + got, sizeof reply - (size_t)got)) > 0)
        got += n;
    LSYS(LNR_close, fd, 0, 0);
    if (got < 12)
        return outcome("read", n < 0 ? n : -L_EINVAL);
    say_resolve_reply("relay", reply);
    return 0;
}

/* struct sockaddr_in for 127.0.0.1:port (port 0: any). */
typedef struct { uint16_t family; uint16_t port_be; uint32_t addr_be; uint8_t zero[8]; } raw_sockaddr_in;
static raw_sockaddr_in loopback(unsigned port)
{
    raw_sockaddr_in a = {2 /* AF_INET */, (uint16_t)((port >> 8) | ((port & 0xff) << 8)), 0x0100007f, {0}};
    return a;
}

static int raw_tcp(unsigned port)
{
    raw_sockaddr_in addr = loopback(port);
    int64_t fd = LSYS(LNR_socket, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
    if (fd < 0)
        return outcome("socket", fd);
    int64_t r = LSYS(LNR_connect, fd, &addr, sizeof addr);
    LSYS(LNR_close, fd, 0, 0);
    return outcome("connect", r);
}

static int raw_list(const char *dir)
{
    static char buf[16384];
    int64_t fd = linux_syscall6(LNR_openat, L_AT_FDCWD, (int64_t)dir, L_O_RDONLY | L_O_DIRECTORY | L_O_CLOEXEC, 0, 0, 0);
    if (fd < 0)
        return outcome("open", fd);
    int64_t n, count = 0;
    while ((n = LSYS(LNR_getdents64, fd, buf, sizeof buf)) > 0)
        for (int64_t off = 0; off < n;) {
            const char *name = buf + off + 19;
            off += *(uint16_t *)(buf + off + 16);
            if (strcmp(name, ".") && strcmp(name, "..")) {
                printf("entry %s\n", name);
                count++;
            }
        }
    LSYS(LNR_close, fd, 0, 0);
    return outcome("list", n < 0 ? n : count);
}

static int raw_udp(unsigned port)
{
    raw_sockaddr_in addr = loopback(port);
    int64_t fd = LSYS(LNR_socket, 2 /* AF_INET */, 2 /* SOCK_DGRAM */, 0);
    if (fd < 0)
        return outcome("socket", fd);
    int64_t r = linux_syscall6(44 /* sendto */, fd, (int64_t) "LEAK", 4, 0, (int64_t)&addr, sizeof addr);
    LSYS(LNR_close, fd, 0, 0);
    return outcome("sendto", r);
}

static int raw_bind_tcp(void)
{
    raw_sockaddr_in addr = loopback(0);
    int64_t fd = LSYS(LNR_socket, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
    if (fd < 0)
        return outcome("socket", fd);
    int64_t r = LSYS(LNR_bind, fd, &addr, sizeof addr);
    if (r == 0)
        r = LSYS(LNR_listen, fd, 1, 0);
    LSYS(LNR_close, fd, 0, 0);
    return outcome("bind", r);
}

static int raw_vmwrite(int64_t pid)
{
    char data[8] = "HOSTILE";
    struct { void *base; size_t len; } local = {data, sizeof data}, remote = {(void *)0x400000, sizeof data};
    return outcome("process_vm_writev",
                   linux_syscall6(LNR_process_vm_writev, pid, (int64_t)&local, 1, (int64_t)&remote, 1, 0));
}

static int raw_procmem(const char *pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/mem", pid);
    return outcome("open", LSYS(LNR_openat, L_AT_FDCWD, path, L_O_RDWR | L_O_CLOEXEC));
}

/* ---- own NT stubs, from ntdll.dll on disk ------------------------------- */

static unsigned char *g_ntdll_file;

static unsigned char *file_at(IMAGE_NT_HEADERS64 *nt, IMAGE_SECTION_HEADER *sec, DWORD rva)
{
    for (int i = 0; i < nt->FileHeader.NumberOfSections; i++)
        if (rva >= sec[i].VirtualAddress && rva < sec[i].VirtualAddress + sec[i].SizeOfRawData)
            return g_ntdll_file + sec[i].PointerToRawData + (rva - sec[i].VirtualAddress);
    return NULL;
}

/* The bytes of an ntdll export as the file on disk has them (the hooks
 * changed the ones in memory). */
static const unsigned char *disk_function(const char *name)
{
    if (!g_ntdll_file) {
        wchar_t path[MAX_PATH];
        GetSystemDirectoryW(path, MAX_PATH);
        wcscat(path, L"\\ntdll.dll");
        HANDLE f = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
        DWORD size = GetFileSize(f, NULL), got = 0;
        g_ntdll_file = HeapAlloc(GetProcessHeap(), 0, size);
        if (f == INVALID_HANDLE_VALUE || !ReadFile(f, g_ntdll_file, size, &got, NULL) || got != size)
            return NULL;
        CloseHandle(f);
    }
    IMAGE_NT_HEADERS64 *nt = (IMAGE_NT_HEADERS64 *)(g_ntdll_file + ((IMAGE_DOS_HEADER *)g_ntdll_file)->e_lfanew);
    IMAGE_SECTION_HEADER *sec = IMAGE_FIRST_SECTION(nt);
#define AT(rva) file_at(nt, sec, (rva))
    IMAGE_EXPORT_DIRECTORY *exp = (IMAGE_EXPORT_DIRECTORY *)AT(
        nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT].VirtualAddress);
    DWORD *names = (DWORD *)AT(exp->AddressOfNames), *funcs = (DWORD *)AT(exp->AddressOfFunctions);
    WORD *ords = (WORD *)AT(exp->AddressOfNameOrdinals);
    for (DWORD i = 0; i < exp->NumberOfNames; i++)
        if (!strcmp((char *)AT(names[i]), name))
            return AT(funcs[ords[i]]);
#undef AT
    return NULL;
}

/* A stub of our own: a copy, in memory of ours, of the 32-byte stub of
 * the disk's ntdll (mov r10,rcx; mov eax,N; ...; call [0x7ffe1000]; ret:
 * Wine's dispatcher expects that exact layout around its return address). */
static void *own_stub(const char *name)
{
    const unsigned char *f = disk_function(name);
    if (!f || f[0] != 0x4c || f[3] != 0xb8) {
        printf("no syscall stub for %s on disk\n", name);
        return NULL;
    }
    unsigned char *stub = VirtualAlloc(NULL, 64, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE);
    memcpy(stub, f, 32);
    return stub;
}

typedef NTSTATUS(NTAPI *create_file_fn)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, IO_STATUS_BLOCK *,
                                        LARGE_INTEGER *, ULONG, ULONG, ULONG, ULONG, void *, ULONG);

static NTSTATUS stub_open(const wchar_t *ntpath, ACCESS_MASK access, ULONG disposition, ULONG options, HANDLE *h)
{
    create_file_fn create = (create_file_fn)own_stub("NtCreateFile");
    if (!create)
        return STATUS_NOT_FOUND;
    UNICODE_STRING name = {(USHORT)(wcslen(ntpath) * 2), (USHORT)(wcslen(ntpath) * 2 + 2), (wchar_t *)ntpath};
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &name, OBJ_CASE_INSENSITIVE, NULL, NULL);
    IO_STATUS_BLOCK io;
    return create(h, access | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL,
                  FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, disposition,
                  options | FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
}

static int stub_create(const wchar_t *ntpath, const wchar_t *text)
{
    HANDLE h;
    NTSTATUS st = stub_open(ntpath, GENERIC_WRITE, FILE_OVERWRITE_IF, FILE_NON_DIRECTORY_FILE, &h);
    if (st < 0)
        return outcome("NtCreateFile", (int64_t)(int32_t)st);
    const char *t = utf8(text);
    DWORD written = 0;
    BOOL ok = WriteFile(h, t, (DWORD)strlen(t), &written, NULL);
    CloseHandle(h);
    return outcome("write", ok ? (int64_t)written : -(int64_t)GetLastError());
}

/* The box's broker asked to resolve NAME by hand: its pipe opened through
 * an own stub (the hooks refuse a program its broker's pipe) and an
 * FVMRSV01 request (core/resolvemsg.h) written to it, as a program that
 * wants the broker's resolver without its own [net] rules would.
 * "broker: <Winsock error> <addresses>". */
static int stub_broker_resolve(const wchar_t *box_path, const wchar_t *node_w)
{
    unsigned char msg[32 + 256], reply[4096];
    size_t len = resolve_request(utf8(node_w), msg);
    if (!len)
        return outcome("name", -22);
    wchar_t name[FVM_OBJ_NAME_MAX], nt[FVM_OBJ_NAME_MAX + 8];
    fvm_box_object_name(box_path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    swprintf(nt, FVM_OBJ_NAME_MAX + 8, L"\\??\\%ls", name + 4);   /* \\.\pipe\X -> \??\pipe\X */
    HANDLE h;
    NTSTATUS st = stub_open(nt, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, FILE_NON_DIRECTORY_FILE, &h);
    if (st < 0)
        return outcome("NtCreateFile", (int64_t)(int32_t)st);
    DWORD mode = PIPE_READMODE_MESSAGE;
    SetNamedPipeHandleState(h, &mode, NULL, NULL);
    DWORD put = 0, got = 0;
    BOOL ok = WriteFile(h, msg, (DWORD)len, &put, NULL) && ReadFile(h, reply, sizeof reply, &got, NULL);
    CloseHandle(h);
    if (!ok || got < 12)
        return outcome("broker", -(int64_t)GetLastError());
    say_resolve_reply("broker", reply);
    return 0;
}

static int stub_read(const wchar_t *ntpath)
{
    HANDLE h;
    NTSTATUS st = stub_open(ntpath, GENERIC_READ, FILE_OPEN, FILE_NON_DIRECTORY_FILE, &h);
    if (st < 0)
        return outcome("NtCreateFile", (int64_t)(int32_t)st);
    char buf[64];
    DWORD got = 0;
    BOOL ok = ReadFile(h, buf, sizeof buf, &got, NULL);
    CloseHandle(h);
    return outcome("read", ok ? (int64_t)got : -(int64_t)GetLastError());
}

static int stub_delete(const wchar_t *ntpath)
{
    NTSTATUS(NTAPI *del)(OBJECT_ATTRIBUTES *) = (NTSTATUS(NTAPI *)(OBJECT_ATTRIBUTES *))own_stub("NtDeleteFile");
    UNICODE_STRING name = {(USHORT)(wcslen(ntpath) * 2), (USHORT)(wcslen(ntpath) * 2 + 2), (wchar_t *)ntpath};
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &name, OBJ_CASE_INSENSITIVE, NULL, NULL);
    return outcome("NtDeleteFile", del ? (int64_t)(int32_t)del(&oa) : -1);
}

static int stub_rename(const wchar_t *from, const wchar_t *to)
{
    HANDLE h;
    NTSTATUS st = stub_open(from, DELETE, FILE_OPEN, 0, &h);
    if (st < 0)
        return outcome("NtCreateFile", (int64_t)(int32_t)st);
    NTSTATUS(NTAPI *set)(HANDLE, IO_STATUS_BLOCK *, void *, ULONG, ULONG) =
        (NTSTATUS(NTAPI *)(HANDLE, IO_STATUS_BLOCK *, void *, ULONG, ULONG))own_stub("NtSetInformationFile");
    static union { FILE_RENAME_INFORMATION info; char buf[4096]; } r;
    r.info.ReplaceIfExists = TRUE;
    r.info.RootDirectory = NULL;
    r.info.FileNameLength = (ULONG)(wcslen(to) * 2);
    memcpy(r.info.FileName, to, r.info.FileNameLength);
    IO_STATUS_BLOCK io;
    st = set(h, &io, &r, sizeof r, 10 /* FileRenameInformation */);
    CloseHandle(h);
    return outcome("NtSetInformationFile", (int64_t)(int32_t)st);
}

static int stub_setvalue(const wchar_t *key, const wchar_t *value)
{
    NTSTATUS(NTAPI *create)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, ULONG, UNICODE_STRING *, ULONG, ULONG *) =
        (NTSTATUS(NTAPI *)(HANDLE *, ACCESS_MASK, OBJECT_ATTRIBUTES *, ULONG, UNICODE_STRING *, ULONG, ULONG *))
            own_stub("NtCreateKey");
    NTSTATUS(NTAPI *set)(HANDLE, UNICODE_STRING *, ULONG, ULONG, const void *, ULONG) =
        (NTSTATUS(NTAPI *)(HANDLE, UNICODE_STRING *, ULONG, ULONG, const void *, ULONG))own_stub("NtSetValueKey");
    if (!create || !set)
        return 2;
    UNICODE_STRING name = {(USHORT)(wcslen(key) * 2), (USHORT)(wcslen(key) * 2 + 2), (wchar_t *)key};
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &name, OBJ_CASE_INSENSITIVE, NULL, NULL);
    HANDLE h;
    NTSTATUS st = create(&h, KEY_ALL_ACCESS, &oa, 0, NULL, 0, NULL);
    if (st < 0)
        return outcome("NtCreateKey", (int64_t)(int32_t)st);
    UNICODE_STRING vn = {(USHORT)(wcslen(value) * 2), (USHORT)(wcslen(value) * 2 + 2), (wchar_t *)value};
    DWORD data = 0x1337;
    st = set(h, &vn, 0, REG_DWORD, &data, sizeof data);
    CloseHandle(h);
    return outcome("NtSetValueKey", (int64_t)(int32_t)st);
}

/* Puts the disk bytes of an ntdll function back over its hook. */
static BOOL unhook(const char *name)
{
    const unsigned char *disk = disk_function(name);
    unsigned char *mem = (unsigned char *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), name);
    DWORD old;
    if (!disk || !mem || !VirtualProtect(mem, 32, PAGE_EXECUTE_READWRITE, &old))
        return FALSE;
    memcpy(mem, disk, 32);
    VirtualProtect(mem, 32, old, &old);
    FlushInstructionCache(GetCurrentProcess(), mem, 32);
    return TRUE;
}

/* Puts the disk bytes of NtCreateFile back over the hook, then writes
 * through the ordinary Win32 API. */
static int unhook_write(const wchar_t *path, const wchar_t *text)
{
    if (!unhook("NtCreateFile"))
        return 2;
    HANDLE h = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return outcome("CreateFileW", -(int64_t)GetLastError());
    const char *t = utf8(text);
    DWORD written = 0;
    BOOL ok = WriteFile(h, t, (DWORD)strlen(t), &written, NULL);
    CloseHandle(h);
    return outcome("write", ok ? (int64_t)written : -(int64_t)GetLastError());
}

/* Winsock's connect with the [net] hook gone: Wine's server makes the
 * connection, so only the server's own kernel floor can refuse it. */
static int unhook_connect(const wchar_t *port)
{
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
        return 2;
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);   /* before: creating one is decided too */
    if (s == INVALID_SOCKET || !unhook("NtDeviceIoControlFile"))
        return 2;
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_port = htons((u_short)_wtoi(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(s, (struct sockaddr *)&to, sizeof to);
    int64_t result = r == 0 ? 0 : -(int64_t)WSAGetLastError();
    closesocket(s);
    return outcome("connect", result);
}

/* A Winsock UDP socket with the [net] hook undone, and 127.0.0.1:port in
 * *to; INVALID_SOCKET with *result the exit code (after printing the
 * outcome, or 2 for a usage error). */
static SOCKET unhooked_udp_socket(const wchar_t *port, struct sockaddr_in *to, int *result)
{
    WSADATA wsa;
    *result = 2;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0 || !unhook("NtDeviceIoControlFile"))
        return INVALID_SOCKET;
    SOCKET s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (s == INVALID_SOCKET) {
        *result = outcome("socket", -(int64_t)WSAGetLastError());
        return INVALID_SOCKET;
    }
    memset(to, 0, sizeof *to);
    to->sin_family = AF_INET;
    to->sin_port = htons((u_short)_wtoi(port));
    to->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return s;
}

/* Wine's server makes the socket, in the host's network, and the program's
 * own process sends on it: only the server's floor can refuse it. */
static int unhook_sendto(const wchar_t *port)
{
    struct sockaddr_in to;
    int result;
    SOCKET s = unhooked_udp_socket(port, &to, &result);
    if (s == INVALID_SOCKET)
        return result;
    int r = sendto(s, "ping", 4, 0, (struct sockaddr *)&to, sizeof to);
    int64_t sent = r >= 0 ? r : -(int64_t)WSAGetLastError();
    closesocket(s);
    return outcome("sendto", sent);
}

/* A connected datagram socket: Wine's server makes the connect() call,
 * the program's own process then sends on it. */
static int unhook_udp_connect(const wchar_t *port)
{
    struct sockaddr_in to;
    int result;
    SOCKET s = unhooked_udp_socket(port, &to, &result);
    if (s == INVALID_SOCKET)
        return result;
    if (connect(s, (struct sockaddr *)&to, sizeof to) != 0) {
        int64_t e = -(int64_t)WSAGetLastError();
        closesocket(s);
        return outcome("connect", e);
    }
    int r = send(s, "ping", 4, 0);
    int64_t sent = r >= 0 ? r : -(int64_t)WSAGetLastError();
    closesocket(s);
    return outcome("send", sent);
}

static int floor_state(void)
{
    HMODULE fvm = GetModuleHandleW(L"fvm.dll");
    int (*get)(int *) = fvm ? (int (*)(int *))(void *)GetProcAddress(fvm, "fvm_runtime_floor") : NULL;
    int (*cost)(int *) = fvm ? (int (*)(int *))(void *)GetProcAddress(fvm, "fvm_runtime_floor_cost") : NULL;
    int abi = 0, state = get ? get(&abi) : -1, rules = 0, us = cost ? cost(&rules) : 0;
    printf("floor %d %d (%d rules, %d us)\n", state, abi, rules, us);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 2)
        return 2;
    const wchar_t *op = argv[1];
    char *a[16] = {0};
    for (int i = 2; i < argc && i < 18; i++)
        a[i - 2] = utf8(argv[i]), a[i - 2] = strcpy(HeapAlloc(GetProcessHeap(), 0, strlen(a[i - 2]) + 1), a[i - 2]);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!wcscmp(op, L"floor"))
        return floor_state();
    if (!wcscmp(op, L"raw-write") && argc == 3)
        return raw_write(a[0], L_O_WRONLY | L_O_TRUNC);
    if (!wcscmp(op, L"raw-create") && argc == 3)
        return raw_write(a[0], L_O_WRONLY | L_O_CREAT);
    if (!wcscmp(op, L"raw-read") && argc == 3)
        return raw_read(a[0]);
    if (!wcscmp(op, L"raw-unlink") && argc == 3)
        return outcome("unlink", LSYS(LNR_unlink, a[0], 0, 0));
    if (!wcscmp(op, L"raw-rmdir") && argc == 3)
        return outcome("rmdir", LSYS(84, a[0], 0, 0));
    if (!wcscmp(op, L"raw-rename") && argc == 4)
        return outcome("rename", LSYS(LNR_rename, a[0], a[1], 0));
    if (!wcscmp(op, L"raw-mkdir") && argc == 3)
        return outcome("mkdir", LSYS(LNR_mkdir, a[0], 0755, 0));
    if (!wcscmp(op, L"raw-symlink") && argc == 4)
        return outcome("symlink", LSYS(LNR_symlink, a[0], a[1], 0));
    if (!wcscmp(op, L"raw-link") && argc == 4)
        return outcome("link", LSYS(LNR_link, a[0], a[1], 0));
    if (!wcscmp(op, L"raw-truncate") && argc == 3)
        return outcome("truncate", LSYS(LNR_truncate, a[0], 0, 0));
    if (!wcscmp(op, L"raw-exec") && argc >= 3)
        return raw_exec(argc - 2, a);
    if (!wcscmp(op, L"raw-kill") && argc == 3)
        return outcome("kill", LSYS(LNR_kill, _wtoi(argv[2]), 15, 0));
    if (!wcscmp(op, L"raw-ptrace") && argc == 3)
        return outcome("ptrace", LSYS(LNR_ptrace, 16 /* PTRACE_ATTACH */, _wtoi(argv[2]), 0));
    if (!wcscmp(op, L"raw-vmwrite") && argc == 3)
        return raw_vmwrite(_wtoi(argv[2]));
    if (!wcscmp(op, L"raw-procmem") && argc == 3)
        return raw_procmem(a[0]);
    if (!wcscmp(op, L"raw-abstract") && argc == 3)
        return raw_abstract(a[0]);
    if (!wcscmp(op, L"raw-unix") && argc == 3)
        return raw_unix(a[0]);
    if (!wcscmp(op, L"raw-tcp") && argc == 3)
        return raw_tcp((unsigned)_wtoi(argv[2]));
    if (!wcscmp(op, L"raw-list") && argc == 3)
        return raw_list(utf8(argv[2]));
    if (!wcscmp(op, L"raw-resolve") && argc == 4)
        return raw_resolve(utf8(argv[2]), utf8(argv[3]));
    if (!wcscmp(op, L"raw-udp") && argc == 3)
        return raw_udp((unsigned)_wtoi(argv[2]));
    if (!wcscmp(op, L"raw-icmp-socket") && argc == 2) {
        int64_t fd = LSYS(LNR_socket, 2 /* AF_INET */, 3 /* SOCK_RAW */, 1 /* ICMP */);
        if (fd >= 0)
            LSYS(LNR_close, fd, 0, 0);
        return outcome("socket", fd);
    }
    if (!wcscmp(op, L"raw-bind-tcp") && argc == 2)
        return raw_bind_tcp();
    if (!wcscmp(op, L"raw-unshare") && argc == 2)
        return outcome("unshare", LSYS(LNR_unshare, 0x10000000 /* CLONE_NEWUSER */, 0, 0));
    if (!wcscmp(op, L"stub-create") && argc == 4)
        return stub_create(argv[2], argv[3]);
    if (!wcscmp(op, L"stub-delete") && argc == 3)
        return stub_delete(argv[2]);
    if (!wcscmp(op, L"stub-broker-resolve") && argc == 4)
        return stub_broker_resolve(argv[2], argv[3]);
    if (!wcscmp(op, L"stub-read") && argc == 3)
        return stub_read(argv[2]);
    if (!wcscmp(op, L"stub-rename") && argc == 4)
        return stub_rename(argv[2], argv[3]);
    if (!wcscmp(op, L"stub-setvalue") && argc == 4)
        return stub_setvalue(argv[2], argv[3]);
    if (!wcscmp(op, L"unhook-write") && argc == 4)
        return unhook_write(argv[2], argv[3]);
    if (!wcscmp(op, L"unhook-connect") && argc == 3)
        return unhook_connect(argv[2]);
    if (!wcscmp(op, L"unhook-sendto") && argc == 3)
        return unhook_sendto(argv[2]);
    if (!wcscmp(op, L"unhook-udp-connect") && argc == 3)
        return unhook_udp_connect(argv[2]);
    fprintf(stderr, "hostile_floor: unknown command or wrong arguments\n");
    return 2;
}

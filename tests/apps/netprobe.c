/* netprobe.c - socket operations for the network tests (test_net.py), each
 * by a different path to the socket driver, so the tests can show that
 * every path follows the box's [net] rules.
 *
 *   netprobe connect tcp|udp HOST PORT   connect, send "ping", read a reply (tcp)
 *   netprobe connectex HOST PORT         ConnectEx (overlapped), then send
 *   netprobe sendto HOST PORT            a UDP datagram with WSASendTo
 *   netprobe listen tcp|udp HOST PORT    bind (and listen for tcp)
 *   netprobe raw                         WSASocket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
 *   netprobe rawip                       WSASocket(AF_INET, SOCK_RAW, IPPROTO_RAW)
 *   netprobe unix                        socket(AF_UNIX, SOCK_STREAM)
 *   netprobe dup HOST PORT               connect on a DuplicateHandle copy of a socket
 *   netprobe inherit HOST PORT           a child connects on a socket it inherited
 *   netprobe name NAME PORT              GetAddrInfoW(NAME), then connect to it (tcp)
 *   netprobe hostbyname NAME PORT        the same by gethostbyname
 *   netprobe addrinfoex NAME PORT        the same by GetAddrInfoExW (synchronous)
 *   netprobe direct HOST PORT            no Winsock: NtCreateFile(\Device\Afd) and the
 *                                        driver's create and connect requests by hand
 *   netprobe serve tcp|udp HOST PORT TAG a server: binds, prints "LISTEN <port getsockname
 *                                        reports>", answers TAG to each connection (tcp)
 *                                        or datagram (udp) until 60 s pass without one
 *   netprobe rebind HOST PORT            bind and listen (tcp), close, the same again:
 *                                        "OK" when the second bind got the port
 *   netprobe names HOST PORT             connects, prints "NAMES <local port> <peer port>"
 *   netprobe lookup NAME                 getaddrinfo (any family, canonical name) and
 *                                        gethostbyname: "CANON c", "ADDR a port"..., "HOSTNAME
 *                                        h", "HOST a"...
 *   netprobe asyncname NAME              WSAAsyncGetHostByName, answered to a message-only
 *                                        window: "ASYNC <address>"
 *   netprobe lookups THREADS NAME        THREADS threads resolve NAME 5 times each at once:
 *                                        "LOOKUPS <answered> <failed>"
 *   netprobe reverse IPV4                getnameinfo and gethostbyaddr: "NAMEINFO host serv"
 *                                        (or "NAMEINFO ERR e"), "HOSTBYADDR name" (or ERR e)
 *   netprobe forge BOXPATH               (hostile) opens the port map section and the
 *                                        broker pipe of the box at BOXPATH by name:
 *                                        prints "FORGE write <error> read <error> pipe
 *                                        <error>" (0: it could)
 *   netprobe acceptex HOST PORT TAG event|iocp
 *                                        a server taking connections with AcceptEx (its
 *                                        completion by the event or a completion port):
 *                                        "LISTEN <port>", then per request "ACCEPT <local
 *                                        port> <peer port>" (GetAcceptExSockaddrs) and TAG
 *                                        to the client, or "FAIL <WSA error>"; 60 s idle ends it
 *   netprobe acceptself PORT1 PORT2 event|iocp
 *                                        a listener on 127.0.0.1:PORT1, a client bound to
 *                                        127.0.0.1:PORT2 connects to it, AcceptEx takes it:
 *                                        "ACCEPTEX <local> <remote> PEER <getpeername port>"
 *   netprobe udpself PORT1 PORT2         a UDP socket on 127.0.0.1:PORT2 sends to one on
 *                                        127.0.0.1:PORT1: "FROM <recvfrom's source port>
 *                                        <WSARecvMsg's> <an overlapped WSARecvFrom's, by a
 *                                        completion port> <one's by a completion routine>"
 *   netprobe acceptport HOST PORT TAG    (hostile) a server that sends the driver's accept
 *                                        request by hand with a completion port and no
 *                                        event: "LISTEN <port>", then per connection
 *                                        "ACCEPT <peer address> TAG" (closed unanswered), or
 *                                        "FAIL <NTSTATUS>"
 *   netprobe acceptcancel                an AcceptEx nobody answers, cancelled with
 *                                        CancelIoEx: "CANCEL <its error>"
 *   netprobe reuse tcp|udp HOST PORT     two sockets with SO_REUSEADDR bind HOST:PORT:
 *                                        "REUSE <0 or the second bind's WSA error>", and for
 *                                        udp, with both bound, whether a datagram to the port
 *                                        arrives ("GOT" or "NONE")
 * HOST is an IPv4 or IPv6 literal. Output: "OK" or "ERR <step> <WSA error or
 * NTSTATUS>"; exit code 0 on success, 1 otherwise. */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
#include <winternl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/boxcfg.h"

/* One line in one write (stdout is unbuffered: printf would write it in
 * pieces, which a reader of the shared output file can see interleaved). */
static void say(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        fwrite(line, 1, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, stdout);
}

static int fail(const char *step, long code)
{
    printf("ERR %s %ld\n", step, code);
    return 1;
}

static int address(const char *host, const char *port, struct sockaddr_storage *sa, int *len)
{
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (InetPtonA(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((u_short)atoi(port));
        *len = sizeof *v4;
        return AF_INET;
    }
    if (InetPtonA(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((u_short)atoi(port));
        *len = sizeof *v6;
        return AF_INET6;
    }
    return 0;
}

static int talk(SOCKET s)
{
    if (send(s, "ping", 4, 0) != 4)
        return fail("send", WSAGetLastError());
    char reply[16];
    int n = recv(s, reply, sizeof reply, 0);
    if (n <= 0)
        return fail("recv", WSAGetLastError());
    printf("OK %.*s\n", n, reply);
    return 0;
}

static int do_connect(const char *proto, const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    int udp = !strcmp(proto, "udp");
    SOCKET s = socket(family, udp ? SOCK_DGRAM : SOCK_STREAM, udp ? IPPROTO_UDP : IPPROTO_TCP);
    if (s == INVALID_SOCKET)
        return fail("socket", WSAGetLastError());
    if (connect(s, (struct sockaddr *)&sa, len))
        return fail("connect", WSAGetLastError());
    return talk(s);
}

static int do_connectex(const char *host, const char *port)
{
    struct sockaddr_storage sa, any;
    int len, family = address(host, port, &sa, &len);
    SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);
    memset(&any, 0, sizeof any);
    any.ss_family = (ADDRESS_FAMILY)family;
    if (bind(s, (struct sockaddr *)&any, len))
        return fail("bind", WSAGetLastError());
    LPFN_CONNECTEX connect_ex = NULL;
    GUID guid = WSAID_CONNECTEX;
    DWORD got;
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &connect_ex, sizeof connect_ex, &got,
                 NULL, NULL))
        return fail("WSAIoctl", WSAGetLastError());
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD sent = 0;
    if (!connect_ex(s, (struct sockaddr *)&sa, len, NULL, 0, &sent, &ov)) {
        int e = WSAGetLastError();
        if (e != ERROR_IO_PENDING)
            return fail("ConnectEx", e);
        DWORD flags;
        if (!WSAGetOverlappedResult(s, &ov, &sent, TRUE, &flags))
            return fail("ConnectEx", WSAGetLastError());
    }
    setsockopt(s, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0);
    return talk(s);
}

static int do_sendto(const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    SOCKET s = socket(family, SOCK_DGRAM, IPPROTO_UDP);
    WSABUF buf = {4, "ping"};
    DWORD sent;
    if (WSASendTo(s, &buf, 1, &sent, 0, (struct sockaddr *)&sa, len, NULL, NULL))
        return fail("WSASendTo", WSAGetLastError());
    printf("OK\n");
    return 0;
}

static int do_listen(const char *proto, const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    int udp = !strcmp(proto, "udp");
    SOCKET s = socket(family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (bind(s, (struct sockaddr *)&sa, len))
        return fail("bind", WSAGetLastError());
    if (!udp && listen(s, 5))
        return fail("listen", WSAGetLastError());
    printf("OK\n");
    return 0;
}

static int do_socket(int family, int type, int protocol)
{
    SOCKET s = WSASocketW(family, type, protocol, NULL, 0, 0);
    if (s == INVALID_SOCKET)
        return fail("socket", WSAGetLastError());
    printf("OK\n");
    return 0;
}

static int do_dup(const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);
    HANDLE copy;
    if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)s, GetCurrentProcess(), &copy, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
        return fail("DuplicateHandle", GetLastError());
    closesocket(s);
    if (connect((SOCKET)copy, (struct sockaddr *)&sa, len))
        return fail("connect", WSAGetLastError());
    printf("OK connected\n");   /* Wine's send() refuses a DuplicateHandle copy (WSAENOTSOCK): connect is the test */
    return 0;
}

static int do_inherit(const char *self, const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len;
    address(host, port, &sa, &len);
    SOCKET s = WSASocketW(sa.ss_family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, 0);
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "\"%s\" child %llu %s %s", self, (unsigned long long)s, host, port);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
        return fail("CreateProcess", GetLastError());
    WaitForSingleObject(pi.hProcess, 60000);
    DWORD code = 1;
    GetExitCodeProcess(pi.hProcess, &code);
    return (int)code;
}

static int do_child(const char *handle, const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len;
    address(host, port, &sa, &len);
    SOCKET s = (SOCKET)_strtoui64(handle, NULL, 10);
    if (connect(s, (struct sockaddr *)&sa, len))
        return fail("connect", WSAGetLastError());
    printf("OK connected\n");   /* as for dup: Wine's send() refuses an inherited handle */
    return 0;
}

/* getaddrinfo (any family, the canonical name asked, port 80), then
 * gethostbyname, as the program sees them. */
static int do_lookup(const char *name)
{
    ADDRINFOA hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_CANONNAME;
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(name, "80", &hints, &res);
    if (e)
        return fail("getaddrinfo", e);
    printf("CANON %s\n", res->ai_canonname ? res->ai_canonname : "-");
    for (ADDRINFOA *ai = res; ai; ai = ai->ai_next) {
        char text[64] = "?";
        if (ai->ai_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, text, sizeof text);
        else if (ai->ai_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, text, sizeof text);
        printf("ADDR %s %u\n", text, ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port));
    }
    freeaddrinfo(res);
    struct hostent *h = gethostbyname(name);
    if (!h)
        return fail("gethostbyname", WSAGetLastError());
    printf("HOSTNAME %s\n", h->h_name);
    for (int i = 0; h->h_addr_list[i]; i++)
        printf("HOST %s\n", inet_ntoa(*(struct in_addr *)h->h_addr_list[i]));
    return 0;
}

/* getnameinfo (no flags, port 80) and gethostbyaddr of an IPv4 address:
 * "NAMEINFO host serv" or "NAMEINFO ERR e", then "HOSTBYADDR name" or
 * "HOSTBYADDR ERR e". */
static int do_reverse(const char *ip)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
        return fail("address", 0);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    int e = getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv, 0);
    if (e)
        printf("NAMEINFO ERR %d\n", e);
    else
        printf("NAMEINFO %s %s\n", host, serv);
    struct hostent *h = gethostbyaddr((const char *)&sa.sin_addr, 4, AF_INET);
    if (h)
        printf("HOSTBYADDR %s\n", h->h_name);
    else
        printf("HOSTBYADDR ERR %d\n", WSAGetLastError());
    return 0;
}

/* THREADS threads resolve NAME 5 times each, all at once (getaddrinfo):
 * "LOOKUPS <answered> <failed>". */
static const char *g_lookup_name;
static volatile LONG g_lookups_ok, g_lookups_failed;

static DWORD WINAPI lookup_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        ADDRINFOA hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(g_lookup_name, "80", &hints, &res) == 0 && res) {
            InterlockedIncrement(&g_lookups_ok);
            freeaddrinfo(res);
        } else {
            InterlockedIncrement(&g_lookups_failed);
        }
    }
    return 0;
}

static int do_lookups(const char *threads, const char *name)
{
    int n = atoi(threads);
    HANDLE t[64];
    if (n < 1 || n > 64)
        return fail("threads", n);
    g_lookup_name = name;
    for (int i = 0; i < n; i++)
        t[i] = CreateThread(NULL, 0, lookup_thread, NULL, 0, NULL);
    WaitForMultipleObjects((DWORD)n, t, TRUE, 60000);
    printf("LOOKUPS %ld %ld\n", (long)g_lookups_ok, (long)g_lookups_failed);
    return 0;
}

/* WSAAsyncGetHostByName, its answer taken from a message-only window:
 * "ASYNC <address>" or "ERR WSAAsyncGetHostByName <error>". */
static int do_async_name(const char *name)
{
    HWND window = CreateWindowExW(0, L"STATIC", L"", 0, 0, 0, 0, 0, HWND_MESSAGE, NULL, NULL, NULL);
    static char buf[MAXGETHOSTSTRUCT];
    if (!window)
        return fail("window", (int)GetLastError());
    if (!WSAAsyncGetHostByName(window, WM_USER + 1, name, buf, sizeof buf))
        return fail("WSAAsyncGetHostByName", WSAGetLastError());
    MSG msg;
    DWORD end = GetTickCount() + 30000;
    while ((LONG)(end - GetTickCount()) > 0) {
        if (!PeekMessageW(&msg, window, 0, 0, PM_REMOVE)) {
            Sleep(10);
            continue;
        }
        if (msg.message != WM_USER + 1)
            continue;
        int error = WSAGETASYNCERROR(msg.lParam);
        if (error)
            return fail("WSAAsyncGetHostByName", error);
        struct hostent *h = (struct hostent *)buf;
        printf("ASYNC %s\n", inet_ntoa(*(struct in_addr *)h->h_addr_list[0]));
        return 0;
    }
    return fail("WSAAsyncGetHostByName", WAIT_TIMEOUT);
}

static int do_name(const char *name, const char *port)
{
    wchar_t wname[256], wport[16];
    MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 256);
    MultiByteToWideChar(CP_UTF8, 0, port, -1, wport, 16);
    ADDRINFOW hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int e = GetAddrInfoW(wname, wport, &hints, &res);
    if (e)
        return fail("GetAddrInfoW", e);
    SOCKET s = socket(res->ai_family, SOCK_STREAM, IPPROTO_TCP);
    if (connect(s, res->ai_addr, (int)res->ai_addrlen))
        return fail("connect", WSAGetLastError());
    return talk(s);
}

static int connect_v4(const void *addr4, const char *port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((u_short)atoi(port));
    memcpy(&sa.sin_addr, addr4, 4);
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa))
        return fail("connect", WSAGetLastError());
    return talk(s);
}

static int do_hostbyname(const char *name, const char *port)
{
    struct hostent *h = gethostbyname(name);
    if (!h || h->h_addrtype != AF_INET || !h->h_addr_list[0])
        return fail("gethostbyname", WSAGetLastError());
    return connect_v4(h->h_addr_list[0], port);
}

static int do_addrinfoex(const char *name, const char *port)
{
    wchar_t wname[256];
    MultiByteToWideChar(CP_UTF8, 0, name, -1, wname, 256);
    ADDRINFOEXW hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int e = GetAddrInfoExW(wname, NULL, NS_DNS, NULL, &hints, &res, NULL, NULL, NULL, NULL);
    if (e)
        return fail("GetAddrInfoExW", e);
    return connect_v4(&((struct sockaddr_in *)res->ai_addr)->sin_addr, port);
}

/* ---- no Winsock: the driver's requests as Wine 8's ws2_32 makes them ---- */

typedef NTSTATUS(NTAPI *create_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG,
                                   ULONG, ULONG, ULONG, PVOID, ULONG);
typedef NTSTATUS(NTAPI *ioctl_fn)(HANDLE, HANDLE, PIO_APC_ROUTINE, PVOID, PIO_STATUS_BLOCK, ULONG, PVOID, ULONG, PVOID,
                                  ULONG);
#define WINE_AFD_CREATE  CTL_CODE(FILE_DEVICE_NETWORK, 200, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define WINE_AFD_CONNECT CTL_CODE(FILE_DEVICE_NETWORK, 203, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define WINE_AFD_ACCEPT  CTL_CODE(FILE_DEVICE_NETWORK, 201, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define WINE_AFD_GETPEERNAME CTL_CODE(FILE_DEVICE_NETWORK, 216, METHOD_BUFFERED, FILE_ANY_ACCESS)

static int do_direct(const char *host, const char *port)
{
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    create_fn create = (create_fn)(void *)GetProcAddress(ntdll, "NtCreateFile");
    ioctl_fn ioctl = (ioctl_fn)(void *)GetProcAddress(ntdll, "NtDeviceIoControlFile");
    UNICODE_STRING name;
    RtlInitUnicodeString(&name, L"\\Device\\Afd");
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &name, 0, NULL, NULL);
    IO_STATUS_BLOCK io;
    HANDLE h;
    NTSTATUS st = create(&h, GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE, &oa, &io, NULL, 0,
                         FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, NULL, 0);
    if (st < 0)
        return fail("NtCreateFile", st);
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    int create_params[4] = {family, SOCK_STREAM, IPPROTO_TCP, 0};
    st = ioctl(h, NULL, NULL, NULL, &io, WINE_AFD_CREATE, create_params, sizeof create_params, NULL, 0);
    if (st < 0)
        return fail("create", st);
    struct {
        int addr_len, synchronous;
        struct sockaddr_storage addr;
    } params;
    params.addr_len = len;
    params.synchronous = 1;
    memcpy(&params.addr, &sa, len);
    HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
    st = ioctl(h, event, NULL, NULL, &io, WINE_AFD_CONNECT, &params, 8 + len, NULL, 0);
    if (st == STATUS_PENDING) {
        WaitForSingleObject(event, 10000);
        st = io.Status;
    }
    if (st < 0)
        return fail("connect", st);
    printf("OK\n");
    return 0;
}

static int do_serve(const char *proto, const char *host, const char *port, const char *tag)
{
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    int udp = !strcmp(proto, "udp");
    SOCKET s = socket(family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (bind(s, (struct sockaddr *)&sa, len))
        return fail("bind", WSAGetLastError());
    if (!udp && listen(s, 16))
        return fail("listen", WSAGetLastError());
    struct sockaddr_storage me;
    int me_len = sizeof me;
    if (getsockname(s, (struct sockaddr *)&me, &me_len))
        return fail("getsockname", WSAGetLastError());
    printf("LISTEN %u\n", ntohs(((struct sockaddr_in *)&me)->sin_port));
    fflush(stdout);
    for (;;) {
        fd_set ready;
        FD_ZERO(&ready);
        FD_SET(s, &ready);
        struct timeval idle = {60, 0};
        if (select(0, &ready, NULL, NULL, &idle) <= 0)
            return 0;
        char buf[64];
        if (udp) {
            struct sockaddr_storage from;
            int from_len = sizeof from;
            if (recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len) >= 0)
                sendto(s, tag, (int)strlen(tag), 0, (struct sockaddr *)&from, from_len);
            continue;
        }
        SOCKET c = accept(s, NULL, NULL);
        if (c == INVALID_SOCKET)
            continue;
        recv(c, buf, sizeof buf, 0);
        send(c, tag, (int)strlen(tag), 0);
        shutdown(c, SD_SEND);
        closesocket(c);
    }
}

static int do_rebind(const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    for (int round = 0; round < 2; round++) {
        SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);
        if (bind(s, (struct sockaddr *)&sa, len))
            return fail(round ? "rebind" : "bind", WSAGetLastError());
        if (listen(s, 4))
            return fail("listen", WSAGetLastError());
        closesocket(s);
    }
    printf("OK\n");
    return 0;
}

static int do_names(const char *host, const char *port)
{
    struct sockaddr_storage sa, me, peer;
    int len, family = address(host, port, &sa, &len);
    SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);
    if (connect(s, (struct sockaddr *)&sa, len))
        return fail("connect", WSAGetLastError());
    int me_len = sizeof me, peer_len = sizeof peer;
    if (getsockname(s, (struct sockaddr *)&me, &me_len) || getpeername(s, (struct sockaddr *)&peer, &peer_len))
        return fail("names", WSAGetLastError());
    printf("NAMES %u %u\n", ntohs(((struct sockaddr_in *)&me)->sin_port), ntohs(((struct sockaddr_in *)&peer)->sin_port));
    return 0;
}

static int do_forge(const wchar_t *box_path)
{
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_SHARED, name, FVM_OBJ_NAME_MAX);   /* the port map's section */
    HANDLE w = OpenFileMappingW(FILE_MAP_WRITE, FALSE, name);
    DWORD write_error = w ? 0 : GetLastError();
    HANDLE r = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
    DWORD read_error = r ? 0 : GetLastError();
    if (w) {   /* it could: try to point the box's port 1 somewhere */
        volatile unsigned *map = MapViewOfFile(w, FILE_MAP_WRITE, 0, 0, 0);
        if (!map)
            write_error = GetLastError();
    }
    fvm_box_object_name(box_path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    HANDLE pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    DWORD pipe_error = pipe != INVALID_HANDLE_VALUE ? 0 : GetLastError();
    printf("FORGE write %lu read %lu pipe %lu\n", (unsigned long)write_error, (unsigned long)read_error,
           (unsigned long)pipe_error);
    return 0;
}

/* ---- AcceptEx ---- */

static LPFN_ACCEPTEX accept_ex_of(SOCKET s)
{
    LPFN_ACCEPTEX fn = NULL;
    GUID guid = WSAID_ACCEPTEX;
    DWORD got;
    WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &fn, sizeof fn, &got, NULL, NULL);
    return fn;
}

/* One AcceptEx on listener into a new socket; waits by event or port.
 * Returns the accepted socket (INVALID_SOCKET, *error set, on failure).
 * Each request's OVERLAPPED has an address of its own (a ring, never
 * reused within a run's few requests), so that a completion packet that is
 * not this request's - a second packet for an earlier one - is seen: it is
 * printed as "STRAY" (the tests assert there is none) and waited past. */
static OVERLAPPED g_overlapped_ring[64];
static unsigned g_overlapped_next;

static SOCKET accept_one(SOCKET listener, int family, HANDLE port, char *buf, DWORD idle_ms, int *error)
{
    LPFN_ACCEPTEX accept_ex = accept_ex_of(listener);
    SOCKET a = socket(family, SOCK_STREAM, IPPROTO_TCP);
    OVERLAPPED *ov = &g_overlapped_ring[g_overlapped_next++ % 64];
    memset(ov, 0, sizeof *ov);
    if (!port)
        ov->hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD got = 0;
    *error = 0;
    if (!accept_ex || !accept_ex(listener, a, buf, 0, sizeof(struct sockaddr_storage) + 16,
                                 sizeof(struct sockaddr_storage) + 16, &got, ov)) {
        int e = WSAGetLastError();
        if (e != ERROR_IO_PENDING) {
            *error = e;
            closesocket(a);
            return INVALID_SOCKET;
        }
        if (port) {
            ULONG_PTR key;
            OVERLAPPED *done = NULL;
            for (;;) {
                done = NULL;
                if (!GetQueuedCompletionStatus(port, &got, &key, &done, idle_ms) && !done) {
                    *error = -1;   /* nothing in time */
                    closesocket(a);
                    return INVALID_SOCKET;
                }
                if (done == ov)
                    break;
                say("STRAY %ld\n", done ? (long)(done - g_overlapped_ring) : -1L);
            }
        } else if (WaitForSingleObject(ov->hEvent, idle_ms) != WAIT_OBJECT_0) {
            *error = -1;
            closesocket(a);
            return INVALID_SOCKET;
        }
        DWORD flags;
        if (!WSAGetOverlappedResult(listener, ov, &got, FALSE, &flags)) {
            *error = WSAGetLastError();
            closesocket(a);
            if (ov->hEvent)
                CloseHandle(ov->hEvent);
            return INVALID_SOCKET;
        }
    }
    if (ov->hEvent)
        CloseHandle(ov->hEvent);
    setsockopt(a, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (char *)&listener, sizeof listener);
    return a;
}

static void acceptex_addresses(SOCKET listener, char *buf, unsigned *local, unsigned *remote)
{
    LPFN_GETACCEPTEXSOCKADDRS sockaddrs = NULL;
    GUID guid = WSAID_GETACCEPTEXSOCKADDRS;
    DWORD got;
    WSAIoctl(listener, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &sockaddrs, sizeof sockaddrs, &got, NULL,
             NULL);
    struct sockaddr *l = NULL, *r = NULL;
    int llen = 0, rlen = 0;
    if (sockaddrs)
        sockaddrs(buf, 0, sizeof(struct sockaddr_storage) + 16, sizeof(struct sockaddr_storage) + 16, &l, &llen, &r,
                  &rlen);
    *local = l && llen ? ntohs(((struct sockaddr_in *)l)->sin_port) : 0;
    *remote = r && rlen ? ntohs(((struct sockaddr_in *)r)->sin_port) : 0;
}

static SOCKET listener_on(const char *host, const char *port, int *family, HANDLE *iocp, int use_port)
{
    struct sockaddr_storage sa;
    int len;
    *family = address(host, port, &sa, &len);
    SOCKET s = socket(*family, SOCK_STREAM, IPPROTO_TCP);
    if (bind(s, (struct sockaddr *)&sa, len) || listen(s, 16))
        return INVALID_SOCKET;
    *iocp = NULL;
    if (use_port)
        *iocp = CreateIoCompletionPort((HANDLE)s, NULL, 7, 0);
    return s;
}

static int do_acceptex(const char *host, const char *port, const char *tag, const char *mode)
{
    int family;
    HANDLE iocp;
    SOCKET s = listener_on(host, port, &family, &iocp, !strcmp(mode, "iocp"));
    if (s == INVALID_SOCKET)
        return fail("bind", WSAGetLastError());
    struct sockaddr_storage me;
    int me_len = sizeof me;
    getsockname(s, (struct sockaddr *)&me, &me_len);
    say("LISTEN %u\n", ntohs(((struct sockaddr_in *)&me)->sin_port));
    for (;;) {
        char buf[2 * (sizeof(struct sockaddr_storage) + 16)];
        int error;
        SOCKET a = accept_one(s, family, iocp, buf, 60000, &error);
        if (a == INVALID_SOCKET) {
            if (error == -1)
                return 0;
            say("FAIL %d\n", error);
            continue;
        }
        unsigned local, remote;
        acceptex_addresses(s, buf, &local, &remote);
        say("ACCEPT %u %u\n", local, remote);
        char in[64];
        recv(a, in, sizeof in, 0);
        send(a, tag, (int)strlen(tag), 0);
        shutdown(a, SD_SEND);
        closesocket(a);
    }
}

static int do_acceptself(const char *port1, const char *port2, const char *mode)
{
    int family;
    HANDLE iocp;
    SOCKET s = listener_on("127.0.0.1", port1, &family, &iocp, !strcmp(mode, "iocp"));
    if (s == INVALID_SOCKET)
        return fail("bind", WSAGetLastError());
    struct sockaddr_storage to, from;
    int to_len, from_len;
    address("127.0.0.1", port1, &to, &to_len);
    address("127.0.0.1", port2, &from, &from_len);
    SOCKET c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (bind(c, (struct sockaddr *)&from, from_len))
        return fail("bind2", WSAGetLastError());
    if (connect(c, (struct sockaddr *)&to, to_len))
        return fail("connect", WSAGetLastError());
    char buf[2 * (sizeof(struct sockaddr_storage) + 16)];
    int error;
    SOCKET a = accept_one(s, family, iocp, buf, 20000, &error);
    if (a == INVALID_SOCKET)
        return fail("AcceptEx", error);
    unsigned local, remote;
    acceptex_addresses(s, buf, &local, &remote);
    struct sockaddr_storage peer;
    int peer_len = sizeof peer;
    if (getpeername(a, (struct sockaddr *)&peer, &peer_len))
        return fail("getpeername", WSAGetLastError());
    say("ACCEPTEX %u %u PEER %u\n", local, remote, ntohs(((struct sockaddr_in *)&peer)->sin_port));
    return 0;
}

/* ---- UDP source addresses ---- */

static volatile int g_routine_done;
static struct sockaddr_storage g_routine_from;
static int g_routine_from_len = sizeof g_routine_from;

static void CALLBACK routine_done(DWORD error, DWORD bytes, LPWSAOVERLAPPED ov, DWORD flags)
{
    (void)ov, (void)flags;
    g_routine_done = error == 0 && bytes == 4 ? 1 : -1;
}

static int do_udpself(const char *port1, const char *port2)
{
    struct sockaddr_storage a1, a2;
    int l1, l2;
    address("127.0.0.1", port1, &a1, &l1);
    address("127.0.0.1", port2, &a2, &l2);
    SOCKET r = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP), w = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (bind(r, (struct sockaddr *)&a1, l1) || bind(w, (struct sockaddr *)&a2, l2))
        return fail("bind", WSAGetLastError());
    unsigned ports[4] = {0, 0, 0, 0};
    HANDLE port = CreateIoCompletionPort((HANDLE)r, NULL, 9, 0);
    for (int round = 0; round < 3; round++) {
        if (sendto(w, "ping", 4, 0, (struct sockaddr *)&a1, l1) != 4)
            return fail("sendto", WSAGetLastError());
        struct sockaddr_storage src;
        int src_len = sizeof src;
        char buf[16];
        if (round == 0) {
            if (recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&src, &src_len) < 0)
                return fail("recvfrom", WSAGetLastError());
        } else if (round == 2) {   /* overlapped, completion by the port */
            WSABUF data = {sizeof buf, buf};
            DWORD got = 0, flags = 0;
            OVERLAPPED ov;
            memset(&ov, 0, sizeof ov);
            if (WSARecvFrom(r, &data, 1, &got, &flags, (struct sockaddr *)&src, &src_len, &ov, NULL) &&
                WSAGetLastError() != WSA_IO_PENDING)
                return fail("WSARecvFrom", WSAGetLastError());
            ULONG_PTR key;
            OVERLAPPED *done = NULL;
            if (!GetQueuedCompletionStatus(port, &got, &key, &done, 10000) || done != &ov || got != 4)
                return fail("GetQueuedCompletionStatus", (long)GetLastError());
        } else {
            LPFN_WSARECVMSG recv_msg = NULL;
            GUID guid = WSAID_WSARECVMSG;
            DWORD got;
            if (WSAIoctl(r, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &recv_msg, sizeof recv_msg, &got,
                         NULL, NULL))
                return fail("WSAIoctl", WSAGetLastError());
            WSABUF data = {sizeof buf, buf};
            WSAMSG msg;
            memset(&msg, 0, sizeof msg);
            msg.name = (struct sockaddr *)&src;
            msg.namelen = sizeof src;
            msg.lpBuffers = &data;
            msg.dwBufferCount = 1;
            if (recv_msg(r, &msg, &got, NULL, NULL))
                return fail("WSARecvMsg", WSAGetLastError());
        }
        ports[round] = ntohs(((struct sockaddr_in *)&src)->sin_port);
    }
    /* A completion routine (an APC) on a socket with no port. */
    SOCKET r2 = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    struct sockaddr_storage a3;
    int l3;
    address("127.0.0.1", "0", &a3, &l3);
    if (bind(r2, (struct sockaddr *)&a3, l3) || getsockname(r2, (struct sockaddr *)&a3, &l3))
        return fail("bind3", WSAGetLastError());
    {
        char buf[16];
        WSABUF data = {sizeof buf, buf};
        DWORD got = 0, flags = 0;
        OVERLAPPED ov;
        memset(&ov, 0, sizeof ov);
        g_routine_done = 0;
        if (WSARecvFrom(r2, &data, 1, &got, &flags, (struct sockaddr *)&g_routine_from, &g_routine_from_len, &ov,
                        routine_done) &&
            WSAGetLastError() != WSA_IO_PENDING)
            return fail("WSARecvFrom2", WSAGetLastError());
        if (sendto(w, "ping", 4, 0, (struct sockaddr *)&a3, l3) != 4)
            return fail("sendto2", WSAGetLastError());
        for (int waited = 0; !g_routine_done && waited < 100; waited++)
            SleepEx(100, TRUE);
        if (!g_routine_done)
            return fail("routine", 0);
        ports[3] = ntohs(((struct sockaddr_in *)&g_routine_from)->sin_port);
    }
    printf("FROM %u %u %u %u\n", ports[0], ports[1], ports[2], ports[3]);
    return 0;
}

static int do_acceptcancel(void)
{
    int family;
    HANDLE iocp;
    SOCKET s = listener_on("127.0.0.1", "0", &family, &iocp, 0);
    if (s == INVALID_SOCKET)
        return fail("bind", WSAGetLastError());
    LPFN_ACCEPTEX accept_ex = accept_ex_of(s);
    SOCKET a = socket(family, SOCK_STREAM, IPPROTO_TCP);
    char buf[2 * (sizeof(struct sockaddr_storage) + 16)];
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD got;
    if (accept_ex(s, a, buf, 0, sizeof(struct sockaddr_storage) + 16, sizeof(struct sockaddr_storage) + 16, &got, &ov) ||
        WSAGetLastError() != ERROR_IO_PENDING)
        return fail("AcceptEx", WSAGetLastError());
    if (!CancelIoEx((HANDLE)s, &ov))
        return fail("CancelIoEx", (long)GetLastError());
    if (WaitForSingleObject(ov.hEvent, 5000) != WAIT_OBJECT_0)
        return fail("wait", 0);
    DWORD flags;
    printf("CANCEL %d\n", WSAGetOverlappedResult(s, &ov, &got, FALSE, &flags) ? 0 : WSAGetLastError());
    return 0;
}

static int do_acceptport(const char *host, const char *port, const char *tag)
{
    int family;
    HANDLE iocp;
    SOCKET s = listener_on(host, port, &family, &iocp, 1);
    if (s == INVALID_SOCKET || !iocp)
        return fail("bind", WSAGetLastError());
    ioctl_fn ioctl = (ioctl_fn)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtDeviceIoControlFile");
    say("LISTEN %s\n", port);
    for (;;) {
        IO_STATUS_BLOCK io;
        unsigned int h = 0;
        NTSTATUS st = ioctl((HANDLE)s, NULL, NULL, &io, &io, WINE_AFD_ACCEPT, NULL, 0, &h, sizeof h);
        if (st == STATUS_PENDING) {
            DWORD got;
            ULONG_PTR key;
            OVERLAPPED *done = NULL;
            if (!GetQueuedCompletionStatus(iocp, &got, &key, &done, 60000) && !done)
                return 0;
            st = io.Status;
        }
        if (st) {
            say("FAIL %ld\n", (long)st);
            continue;
        }
        /* Wine's send() refuses a socket ws2_32 did not make (WSAENOTSOCK):
         * the peer's address, asked of the driver, is the answer. */
        HANDLE c = (HANDLE)(ULONG_PTR)h;
        unsigned char peer[128];
        char text[64] = "?";
        IO_STATUS_BLOCK pio;
        if (!ioctl(c, NULL, NULL, NULL, &pio, WINE_AFD_GETPEERNAME, NULL, 0, peer, sizeof peer) && peer[0] == AF_INET)
            InetNtopA(AF_INET, peer + 4, text, sizeof text);
        CloseHandle(c);
        say("ACCEPT %s %s\n", text, tag);
    }
}

/* ---- SO_REUSEADDR ---- */

static int do_reuse(const char *proto, const char *host, const char *port)
{
    struct sockaddr_storage sa;
    int len, family = address(host, port, &sa, &len);
    int udp = !strcmp(proto, "udp");
    SOCKET s[2];
    BOOL on = TRUE;
    for (int i = 0; i < 2; i++) {
        s[i] = socket(family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
        setsockopt(s[i], SOL_SOCKET, SO_REUSEADDR, (char *)&on, sizeof on);
    }
    if (bind(s[0], (struct sockaddr *)&sa, len))
        return fail("bind", WSAGetLastError());
    if (!udp && listen(s[0], 4))
        return fail("listen", WSAGetLastError());
    int second = bind(s[1], (struct sockaddr *)&sa, len) ? WSAGetLastError() : 0;
    if (!udp || second) {
        printf("REUSE %d\n", second);
        return 0;
    }
    SOCKET w = socket(family, SOCK_DGRAM, 0);
    sendto(w, "ping", 4, 0, (struct sockaddr *)&sa, len);
    fd_set ready;
    FD_ZERO(&ready);
    FD_SET(s[0], &ready);
    FD_SET(s[1], &ready);
    struct timeval wait = {5, 0};
    printf("REUSE 0 %s\n", select(0, &ready, NULL, NULL, &wait) > 0 ? "GOT" : "NONE");
    return 0;
}

int wmain(int argc, wchar_t **wargv)
{
    static char args[8][512];
    char *argv[8];
    if (argc > 8)
        argc = 8;
    for (int i = 0; i < argc; i++) {
        WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, args[i], sizeof args[i], NULL, NULL);
        argv[i] = args[i];
    }
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return fail("usage", 0);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "connect") && argc == 5)
        return do_connect(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "connectex") && argc == 4)
        return do_connectex(argv[2], argv[3]);
    if (!strcmp(cmd, "sendto") && argc == 4)
        return do_sendto(argv[2], argv[3]);
    if (!strcmp(cmd, "listen") && argc == 5)
        return do_listen(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "raw"))
        return do_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (!strcmp(cmd, "rawip"))
        return do_socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (!strcmp(cmd, "unix"))
        return do_socket(1 /* AF_UNIX */, SOCK_STREAM, 0);
    if (!strcmp(cmd, "dup") && argc == 4)
        return do_dup(argv[2], argv[3]);
    if (!strcmp(cmd, "inherit") && argc == 4)
        return do_inherit(argv[0], argv[2], argv[3]);
    if (!strcmp(cmd, "child") && argc == 5)
        return do_child(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "asyncname") && argc == 3)
        return do_async_name(argv[2]);
    if (!strcmp(cmd, "lookups") && argc == 4)
        return do_lookups(argv[2], argv[3]);
    if (!strcmp(cmd, "reverse") && argc == 3)
        return do_reverse(argv[2]);
    if (!strcmp(cmd, "lookup") && argc == 3)
        return do_lookup(argv[2]);
    if (!strcmp(cmd, "name") && argc == 4)
        return do_name(argv[2], argv[3]);
    if (!strcmp(cmd, "serve") && argc == 6)
        return do_serve(argv[2], argv[3], argv[4], argv[5]);
    if (!strcmp(cmd, "hostbyname") && argc == 4)
        return do_hostbyname(argv[2], argv[3]);
    if (!strcmp(cmd, "addrinfoex") && argc == 4)
        return do_addrinfoex(argv[2], argv[3]);
    if (!strcmp(cmd, "forge") && argc == 3)
        return do_forge(wargv[2]);
    if (!strcmp(cmd, "rebind") && argc == 4)
        return do_rebind(argv[2], argv[3]);
    if (!strcmp(cmd, "names") && argc == 4)
        return do_names(argv[2], argv[3]);
    if (!strcmp(cmd, "acceptex") && argc == 6)
        return do_acceptex(argv[2], argv[3], argv[4], argv[5]);
    if (!strcmp(cmd, "acceptself") && argc == 5)
        return do_acceptself(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "acceptport") && argc == 5)
        return do_acceptport(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "acceptcancel"))
        return do_acceptcancel();
    if (!strcmp(cmd, "udpself") && argc == 4)
        return do_udpself(argv[2], argv[3]);
    if (!strcmp(cmd, "reuse") && argc == 5)
        return do_reuse(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "direct") && argc == 4)
        return do_direct(argv[2], argv[3]);
    return fail("usage", 0);
}
